/**
 * The tmemu command as a user meets it: the main job, and bad input of every kind giving one clear
 * line, a hint, and a non-zero exit code — never a stack trace.
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tmemu } from "./helpers.ts";

const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at /);

describe("tmemu boot", () => {
  it("boots, runs --cmd, prints its output and exits 0", async () => {
    const r = await tmemu(["boot", "--cmd", "uname -r; free -m | grep -c Mem"]);
    expect(r.stdout).toMatch(/^6\.1\.\d+\n1\n$/);
    expect(r.code).toBe(0);
  });

  it("exits with the guest command's exit code and says so on one line", async () => {
    const r = await tmemu(["boot", "--cmd", "echo before; exit 5"]);
    expect(r.code).toBe(5);
    expect(r.stdout).toBe("before\n");
    expect(r.stderr).toMatch(/tmemu: the guest command exited with 5\n/);
  });

  it("rejects an unknown flag with exit code 2 and a pointer to --help", async () => {
    const r = await tmemu(["boot", "--memroy-mib", "64"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tmemu: unknown option '--memroy-mib'/);
    expect(r.stderr).toMatch(/--help/);
    noStack(r.stderr);
  });

  it("rejects a non-number and a --memory-mib too small for v86's initrd placement", async () => {
    const words = await tmemu(["boot", "--memory-mib", "lots", "--cmd", "true"]);
    expect(words.code).toBe(2);
    expect(words.stderr).toMatch(/tmemu: --memory-mib takes a whole number/);
    const small = await tmemu(["boot", "--memory-mib", "64", "--cmd", "true"]);
    expect(small.code).toBe(2);
    expect(small.stderr).toMatch(/^tmemu: guest memory 64 MiB is outside \d+\.\.2048 MiB\n {2}.*use --memory-mib \d+ or more/);
    noStack(small.stderr);
  });

  it("rejects --files that is not a folder", async () => {
    const r = await tmemu(["boot", "--files", "/nonexistent/dir", "--cmd", "true"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tmemu: --files \/nonexistent\/dir does not exist/);
  });

  it("refuses to start a console without a terminal", async () => {
    const r = await tmemu(["boot"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no --cmd given and stdin is not a terminal/);
  });
});

describe("tmemu images", () => {
  it("finds the cached images in seconds and reports them as JSON", async () => {
    const r = await tmemu(["images", "--json"]);
    expect(r.code).toBe(0);
    const set = JSON.parse(r.stdout) as { built: { kernel: boolean }; kernelRelease: string; seconds: { total: number } };
    expect(set.built.kernel).toBe(false);
    expect(set.kernelRelease).toMatch(/^6\.1\./);
    expect(set.seconds.total).toBeLessThan(30);
  });

  it("names the patch and the hunk when a patch does not apply", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-badpatch-"));
    writeFileSync(
      join(dir, "0001-broken.patch"),
      "--- a/Makefile\n+++ b/Makefile\n@@ -1,3 +1,3 @@\n this line is not in the kernel Makefile\n-nor this\n+but this is added\n context\n",
    );
    const r = await tmemu(["images", "--patches", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tmemu: patch 0001-broken\.patch does not apply: Makefile: Hunk #1 FAILED/);
    noStack(r.stderr);
  });

  it("says exactly what to install when build tools are missing and it may not install them", async () => {
    const cache = mkdtempSync(join(tmpdir(), "tmemu-cold-"));
    const bin = join(cache, "bin");
    mkdirSync(bin);
    // A PATH with nothing on it but node itself.
    symlinkSync(process.execPath, join(bin, "node"));
    const r = await tmemu(["images"], { TMEMU_CACHE_DIR: cache, TMEMU_NO_INSTALL: "1", PATH: bin });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tmemu: the guest build needs .*gcc.*\n {2}run once: .*sudo apt-get install -y .*gcc/);
    noStack(r.stderr);
  });
});
