/**
 * The tmemu command as a user meets it: the main job, and bad input of every kind giving one clear
 * line, a hint, and a non-zero exit code — never a stack trace.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { ImageSet } from "../../guest-images/index.ts";
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

  it("answers a bad --memory-mib on a cold cache at once: no apt, no build, nothing written to the cache", async () => {
    const cache = mkdtempSync(join(tmpdir(), "tmemu-cold-"));
    const t0 = Date.now();
    const r = await tmemu(["boot", "--memory-mib", "64", "--cmd", "true"], { TMEMU_CACHE_DIR: cache });
    const seconds = (Date.now() - t0) / 1000;
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^tmemu: guest memory 64 MiB is outside \d+\.\.2048 MiB\n {2}.*use --memory-mib \d+ or more\n$/);
    // No progress line ("[tmemu] apt-get update ...", "[tmemu] kernel: ...") and no warning.
    expect(r.stderr).not.toMatch(/\[tmemu\]|warning|apt-get update|downloading/i);
    expect(readdirSync(cache)).toEqual([]);
    // About a second when idle; generous for a machine busy building kernels (a build takes minutes).
    expect(seconds).toBeLessThan(20);
  });

  it("refuses to start a console without a terminal", async () => {
    const r = await tmemu(["boot"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no --cmd given and stdin is not a terminal/);
  });
});

describe("every command checks its flags before it resolves or builds images", () => {
  const cases: { args: string[]; error: RegExp }[] = [
    { args: ["run", "--memory-mib", "64"], error: /^tmemu: guest memory 64 MiB is outside/ },
    { args: ["run", "--cmd", "true", "--files", "/nonexistent/dir"], error: /^tmemu: --files \/nonexistent\/dir does not exist/ },
    { args: ["run", "--files", "/tmp"], error: /^tmemu: --files goes with --cmd/ },
    { args: ["run", "--guests", "3", "--memory-mib", "128", "--budget-mib", "200"], error: /^tmemu: memory budget 200 MiB is smaller than the guests' RAM: 384 MiB/ },
    { args: ["run", "--json", "/nonexistent/dir/run.json"], error: /^tmemu: --json \/nonexistent\/dir\/run\.json: the folder \/nonexistent\/dir does not exist/ },
    { args: ["bench", "--workload", "refault", "--memory-mib", "64"], error: /^tmemu: guest memory 64 MiB is outside/ },
    { args: ["bench", "--workload", "refault", "--budget-mib", "200"], error: /^tmemu: --budget-mib 200 is less than the guests' RAM/ },
    { args: ["bench", "--workload", "refault", "--guests", "1", "--configs", "tmem+selfballoon"], error: /^tmemu: tmem\+selfballoon needs at least 2 guests/ },
    { args: ["bench", "--workload", "refault", "--out", "/etc/passwd"], error: /^tmemu: --out \/etc\/passwd is a file, not a folder/ },
    { args: ["validate", "--patches", "/etc/passwd"], error: /^tmemu: --patches \/etc\/passwd is a file, not a folder/ },
    { args: ["validate", "--memory-mib", "64"], error: /^tmemu: guest memory 64 MiB is outside/ },
    { args: ["images", "--versions", "/nonexistent/versions.json"], error: /^tmemu: cannot read the versions file \/nonexistent\/versions\.json: ENOENT/ },
    { args: ["boot", "--cmd", "true", "--kernel-version", "6.1 176"], error: /^tmemu: --kernel-version "6\.1 176" is not a Debian version/ },
  ];
  it.each(cases)("tmemu $args.0: $error", async ({ args, error }) => {
    const cache = mkdtempSync(join(tmpdir(), "tmemu-cold-"));
    const r = await tmemu(args, { TMEMU_CACHE_DIR: cache });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(error);
    // No progress line ("[tmemu] apt-get update ...", "[tmemu] kernel: ...") and no warning.
    expect(r.stderr).not.toMatch(/\[tmemu\]|warning|apt-get update|downloading/i);
    expect(readdirSync(cache)).toEqual([]);
    noStack(r.stderr);
  });
});

describe("tmemu images", () => {
  it("finds the cached images in seconds, silently and without apt, and reports what they were built from as JSON", async () => {
    // apt-cache and apt-get that leave a mark: a warm cache must not call them.
    const dir = mkdtempSync(join(tmpdir(), "tmemu-noapt-"));
    const bin = join(dir, "bin");
    mkdirSync(bin);
    for (const tool of ["apt-cache", "apt-get"]) {
      writeFileSync(join(bin, tool), `#!/bin/sh\necho "$0 $*" >> ${join(dir, "called")}\nexit 1\n`);
      chmodSync(join(bin, tool), 0o755);
    }
    const r = await tmemu(["images", "--json"], { PATH: `${bin}:${process.env["PATH"] ?? ""}` });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(existsSync(join(dir, "called"))).toBe(false);
    const set = JSON.parse(r.stdout) as ImageSet;
    expect(set.built.kernel).toBe(false);
    expect(set.kernelRelease).toMatch(/^6\.1\./);
    expect(set.seconds.total).toBeLessThan(30);
    const kernelPackage = set.packages.find((p) => p.name === "linux-source-6.1");
    expect(kernelPackage?.version).toBe(set.kernel.linuxSource);
    expect(kernelPackage?.asked).toMatch(/^6\.1\.\d+-\d+$/);
    expect(set.initrd.busybox).toBe(set.packages.find((p) => p.name === "busybox-static")?.version);
    expect(set.kernel.patches.map((p) => p.name)).toEqual(set.patches);
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
