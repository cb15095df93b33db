import { chmodSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { resolvePackage } from "../../guest-images/packages.ts";
import { silentProgress } from "../../guest-images/progress.ts";

/** apt-cache and apt-get stand-ins on PATH: madison lists 1.0-1; download writes a .deb, or fails. */
function fakeApt(dir: string, downloadFails: boolean): void {
  const bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "apt-cache"), '#!/bin/sh\necho "   demo | 1.0-1 | http://deb.example bookworm/main all Packages"\n');
  writeFileSync(join(bin, "apt-get"), downloadFails ? "#!/bin/sh\necho partial > demo.partial\nexit 100\n" : '#!/bin/sh\necho deb > "demo_1.0-1_all.deb"\n');
  chmodSync(join(bin, "apt-cache"), 0o755);
  chmodSync(join(bin, "apt-get"), 0o755);
  process.env["PATH"] = `${bin}:${process.env["PATH"]}`;
}

describe("resolvePackage: downloading a deb", () => {
  const path = process.env["PATH"];
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tmemu-debs-"));
  });
  afterEach(() => {
    process.env["PATH"] = path;
  });

  it("keeps the deb under its canonical name and leaves no download folder behind", async () => {
    fakeApt(dir, false);
    const debs = join(dir, "debs");
    const r = await resolvePackage({ name: "demo", version: "1.0-1", arch: "all" }, debs, join(dir, "log"), silentProgress);
    expect(r.deb).toBe(join(debs, "demo_1.0-1_all.deb"));
    expect(readdirSync(debs)).toEqual(["demo_1.0-1_all.deb"]);
  });

  it("cleans up the download folder when apt-get download fails", async () => {
    fakeApt(dir, true);
    const debs = join(dir, "debs");
    await expect(resolvePackage({ name: "demo", version: "1.0-1", arch: "all" }, debs, join(dir, "log"), silentProgress)).rejects.toMatchObject({ code: "BUILD_FAILED" });
    expect(readdirSync(debs)).toEqual([]);
  });
});
