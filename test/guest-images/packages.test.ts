import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  cachedPackage,
  choosePins,
  parseMadison,
  readPins,
  ResolutionStore,
  resolvePackage,
  systemApt,
  type Apt,
  type PackagePin,
  type ResolveContext,
} from "../../guest-images/packages.ts";
import { silentProgress, type ProgressSink } from "../../guest-images/progress.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

/** An archive that offers `offered` (newest first), `afterUpdate` once apt-get update ran; records every call. */
class FakeApt implements Apt {
  readonly calls: string[] = [];
  private updated = false;
  constructor(
    private readonly offered: Record<string, string[]>,
    private readonly afterUpdate: Record<string, string[]> = offered,
  ) {}

  versions(p: { name: string }): string[] {
    this.calls.push(`versions ${p.name}`);
    return (this.updated ? this.afterUpdate : this.offered)[p.name] ?? [];
  }

  update(): void {
    this.calls.push("update");
    this.updated = true;
  }

  async download(p: { name: string; arch: string }, version: string, dir: string): Promise<void> {
    this.calls.push(`download ${p.name} ${version}`);
    writeFileSync(join(dir, `${p.name}_${version}_${p.arch}.deb`), `deb of ${version}`);
  }
}

function recordingProgress(): ProgressSink & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentProgress, warn: (m: string) => void warnings.push(m), warnings };
}

const KERNEL: PackagePin = { name: "linux-source-6.1", version: "6.1.192-2", arch: "all" };
const NOW = new Date("2026-11-30T03:00:00Z");

describe("resolvePackage: choosing a version", () => {
  let root: string;
  let ctx: (apt: Apt, progress?: ProgressSink, refresh?: boolean) => ResolveContext;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "tmemu-resolve-"));
    ctx = (apt, progress = silentProgress, refresh = false) => ({
      debDir: join(root, "debs"),
      logFile: join(root, "log"),
      progress,
      apt,
      store: new ResolutionStore(root),
      refresh,
      now: () => NOW,
    });
  });

  it("uses the asked version when the archive offers it: no update, no warning, one download, remembered", async () => {
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.192-2", "6.1.176-1"] });
    const progress = recordingProgress();
    const r = await resolvePackage(KERNEL, ctx(apt, progress));
    expect(r.version).toBe("6.1.192-2");
    expect(r.asked).toBe("6.1.192-2");
    expect(r.deb).toBe(join(root, "debs", "linux-source-6.1_6.1.192-2_all.deb"));
    expect(readFileSync(r.deb, "utf8")).toBe("deb of 6.1.192-2");
    expect(apt.calls).toEqual(["versions linux-source-6.1", "download linux-source-6.1 6.1.192-2"]);
    expect(progress.warnings).toEqual([]);
    expect(new ResolutionStore(root).get(KERNEL, "6.1.192-2")).toEqual({
      name: "linux-source-6.1",
      arch: "all",
      asked: "6.1.192-2",
      chosen: "6.1.192-2",
      offered: ["6.1.192-2", "6.1.176-1"],
      resolvedAt: NOW.toISOString(),
      explicit: false,
    });
  });

  it("refreshes the package lists once when the asked version is missing, and takes it if the update brings it", async () => {
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.176-1"] }, { "linux-source-6.1": ["6.1.192-2", "6.1.176-1"] });
    const progress = recordingProgress();
    const r = await resolvePackage(KERNEL, ctx(apt, progress));
    expect(r.version).toBe("6.1.192-2");
    expect(apt.calls).toEqual(["versions linux-source-6.1", "update", "versions linux-source-6.1", "download linux-source-6.1 6.1.192-2"]);
    expect(progress.warnings).toEqual([]);
  });

  it("falls back to the newest offered when the pin is gone, with one warning naming both, and remembers the choice", async () => {
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.176-1", "6.1.170-3"] });
    const progress = recordingProgress();
    const r = await resolvePackage(KERNEL, ctx(apt, progress));
    expect(r.version).toBe("6.1.176-1");
    expect(r.asked).toBe("6.1.192-2");
    expect(apt.calls).toEqual(["versions linux-source-6.1", "update", "versions linux-source-6.1", "download linux-source-6.1 6.1.176-1"]);
    expect(progress.warnings).toHaveLength(1);
    expect(progress.warnings[0]).toMatch(/^linux-source-6\.1 6\.1\.192-2 .* is no longer in the archive, which offers 6\.1\.176-1, 6\.1\.170-3; using the newest, 6\.1\.176-1\./);
    expect(progress.warnings[0]).toMatch(/tmemu images --refresh/);
    const remembered = new ResolutionStore(root).get(KERNEL, "6.1.192-2");
    expect(remembered).toMatchObject({ asked: "6.1.192-2", chosen: "6.1.176-1", offered: ["6.1.176-1", "6.1.170-3"], resolvedAt: NOW.toISOString() });
  });

  it("answers a warm run from the cache alone: no apt call, no warning, the remembered choice", async () => {
    await resolvePackage(KERNEL, ctx(new FakeApt({ "linux-source-6.1": ["6.1.176-1", "6.1.170-3"] })));
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.999-1"] });
    const progress = recordingProgress();
    const r = await resolvePackage(KERNEL, ctx(apt, progress));
    expect(apt.calls).toEqual([]);
    expect(progress.warnings).toEqual([]);
    expect(r.version).toBe("6.1.176-1");
    expect(r.asked).toBe("6.1.192-2");
    expect(r.resolution?.resolvedAt).toBe(NOW.toISOString());
    expect(cachedPackage(KERNEL, ctx(apt))?.version).toBe("6.1.176-1");
  });

  it("asks the archive again when the remembered choice's .deb is gone from the cache", async () => {
    await resolvePackage(KERNEL, ctx(new FakeApt({ "linux-source-6.1": ["6.1.176-1"] })));
    const debDir = join(root, "debs");
    for (const f of readdirSync(debDir)) unlinkSync(join(debDir, f));
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.180-1", "6.1.176-1"] });
    const r = await resolvePackage(KERNEL, ctx(apt));
    expect(r.version).toBe("6.1.180-1");
    expect(apt.calls).toContain("download linux-source-6.1 6.1.180-1");
  });

  it("--refresh asks the archive again, warns again and remembers the new choice", async () => {
    await resolvePackage(KERNEL, ctx(new FakeApt({ "linux-source-6.1": ["6.1.176-1"] })));
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.180-1", "6.1.176-1"] });
    const progress = recordingProgress();
    const r = await resolvePackage(KERNEL, ctx(apt, progress, true));
    expect(r.version).toBe("6.1.180-1");
    expect(progress.warnings).toHaveLength(1);
    expect(new ResolutionStore(root).get(KERNEL, "6.1.192-2")?.chosen).toBe("6.1.180-1");
  });

  it("refuses an explicit version the archive does not offer, listing what it offers; nothing downloaded or remembered", async () => {
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.176-1", "6.1.170-3"] });
    const progress = recordingProgress();
    const err = await resolvePackage({ ...KERNEL, version: "6.1.150-1", explicit: true }, ctx(apt, progress)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TmemuError);
    expect((err as TmemuError).code).toBe("PACKAGE_UNAVAILABLE");
    expect((err as TmemuError).message).toBe("linux-source-6.1 6.1.150-1 is not in the archive; it offers 6.1.176-1, 6.1.170-3");
    expect((err as TmemuError).hint).toMatch(/--kernel-version/);
    expect(progress.warnings).toEqual([]);
    expect(apt.calls.filter((c) => c.startsWith("download"))).toEqual([]);
    expect(existsSync(new ResolutionStore(root).file)).toBe(false);
  });

  it("takes an explicit version the archive offers, even when it is not the newest", async () => {
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.176-1", "6.1.170-3"] });
    const r = await resolvePackage({ ...KERNEL, version: "6.1.170-3", explicit: true }, ctx(apt));
    expect(r.version).toBe("6.1.170-3");
    expect(new ResolutionStore(root).get(KERNEL, "6.1.170-3")).toMatchObject({ chosen: "6.1.170-3", explicit: true });
  });

  it("keeps the choices of different asked versions apart", async () => {
    const apt = new FakeApt({ "linux-source-6.1": ["6.1.176-1", "6.1.170-3"] });
    await resolvePackage(KERNEL, ctx(apt));
    await resolvePackage({ ...KERNEL, version: "6.1.170-3", explicit: true }, ctx(apt));
    const store = new ResolutionStore(root);
    expect(store.get(KERNEL, "6.1.192-2")?.chosen).toBe("6.1.176-1");
    expect(store.get(KERNEL, "6.1.170-3")?.chosen).toBe("6.1.170-3");
  });
});

describe("parseMadison", () => {
  it("lists each version once, in apt's order, for the package and its arch-qualified name only", () => {
    const out = [
      "linux-source-6.1 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages",
      "linux-source-6.1 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main i386 Packages",
      "linux-source-6.1 |  6.1.170-3 | http://deb.debian.org/debian bookworm/main amd64 Packages",
      "linux-source-6.10 |  6.10.1-1 | http://deb.debian.org/debian trixie/main amd64 Packages",
      "",
    ].join("\n");
    expect(parseMadison(out, { name: "linux-source-6.1", arch: "all" })).toEqual(["6.1.176-1", "6.1.170-3"]);
    const bb = "busybox-static:i386 | 1:1.35.0-4+deb12u1+b1 | http://deb.debian.org/debian bookworm/main i386 Packages\n";
    expect(parseMadison(bb, { name: "busybox-static", arch: "i386" })).toEqual(["1:1.35.0-4+deb12u1+b1"]);
  });
});

describe("choosePins and readPins", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tmemu-pins-"));
  });

  it("takes guest-images/versions.json as pins that may fall back, --kernel-version as exact", () => {
    const pins = choosePins({});
    expect(pins.map((p) => p.name).sort()).toEqual(["busybox-static", "linux-source-6.1", "seabios"]);
    expect(pins.every((p) => !p.explicit)).toBe(true);
    const chosen = choosePins({ kernelVersion: "6.1.170-3" });
    expect(chosen.find((p) => p.name === "linux-source-6.1")).toEqual({ name: "linux-source-6.1", version: "6.1.170-3", arch: "all", explicit: true });
    expect(chosen.filter((p) => p.explicit)).toHaveLength(1);
  });

  it("takes every version of a --versions file as exact", () => {
    const file = join(dir, "v.json");
    writeFileSync(file, JSON.stringify({ packages: { "linux-source-6.1": { version: "6.1.170-3", arch: "all" }, seabios: { version: "1.16.2-1", arch: "all" } } }));
    expect(choosePins({ versionsFile: file })).toEqual([
      { name: "linux-source-6.1", version: "6.1.170-3", arch: "all", explicit: true },
      { name: "seabios", version: "1.16.2-1", arch: "all", explicit: true },
    ]);
  });

  it("refuses a malformed versions file or version as a user error", () => {
    const file = join(dir, "bad.json");
    writeFileSync(file, JSON.stringify({ packages: { seabios: { version: 3 } } }));
    expect(() => readPins(file)).toThrow(expect.objectContaining({ code: "BAD_INPUT", message: `the versions file ${file} gives seabios no "version" and "arch" strings` }));
    writeFileSync(file, "{not json");
    expect(() => readPins(file)).toThrow(expect.objectContaining({ code: "BAD_INPUT" }));
    expect(() => choosePins({ kernelVersion: "6.1.170-3; rm -rf /" })).toThrow(expect.objectContaining({ code: "USAGE" }));
  });
});

/** apt-cache and apt-get stand-ins on PATH: madison lists 1.0-1; download writes a .deb, or fails. */
function fakeAptOnPath(dir: string, downloadFails: boolean): void {
  const bin = join(dir, "bin");
  mkdirSync(bin);
  writeFileSync(join(bin, "apt-cache"), '#!/bin/sh\necho "   demo | 1.0-1 | http://deb.example bookworm/main all Packages"\n');
  writeFileSync(join(bin, "apt-get"), downloadFails ? "#!/bin/sh\necho partial > demo.partial\nexit 100\n" : '#!/bin/sh\necho deb > "demo_1.0-1_all.deb"\n');
  chmodSync(join(bin, "apt-cache"), 0o755);
  chmodSync(join(bin, "apt-get"), 0o755);
  process.env["PATH"] = `${bin}:${process.env["PATH"]}`;
}

describe("resolvePackage with the system's apt: downloading a deb", () => {
  const path = process.env["PATH"];
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "tmemu-debs-"));
  });
  afterEach(() => {
    process.env["PATH"] = path;
  });
  const ctx = (): ResolveContext => ({ debDir: join(dir, "debs"), logFile: join(dir, "log"), progress: silentProgress, apt: systemApt(silentProgress), store: new ResolutionStore(dir) });

  it("keeps the deb under its canonical name and leaves no download folder behind", async () => {
    fakeAptOnPath(dir, false);
    const r = await resolvePackage({ name: "demo", version: "1.0-1", arch: "all" }, ctx());
    expect(r.deb).toBe(join(dir, "debs", "demo_1.0-1_all.deb"));
    expect(readdirSync(join(dir, "debs"))).toEqual(["demo_1.0-1_all.deb"]);
  });

  it("cleans up the download folder when apt-get download fails, and remembers nothing", async () => {
    fakeAptOnPath(dir, true);
    await expect(resolvePackage({ name: "demo", version: "1.0-1", arch: "all" }, ctx())).rejects.toMatchObject({ code: "BUILD_FAILED" });
    expect(readdirSync(join(dir, "debs"))).toEqual([]);
    expect(existsSync(new ResolutionStore(dir).file)).toBe(false);
  });
});
