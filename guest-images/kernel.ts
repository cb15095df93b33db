/**
 * The guest kernel: Debian's linux-source-6.1, the patch series applied in order, tinyconfig for
 * i386 plus kernel.config, every fragment option checked in the final .config, bzImage built with
 * -j$(nproc). Also installs the UAPI headers and keeps tools/include/nolibc, which the initramfs
 * programs are compiled against.
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { basename, join } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { run } from "./exec.ts";
import { checkKconfig } from "./kconfig.ts";
import type { ProgressSink } from "./progress.ts";

export interface KernelBuildInput {
  linuxSourceDeb: string;
  patchesDir: string;
  configFragment: string;
  workDir: string;
  outDir: string;
  logFile: string;
  /** Output lines of the last full build, to turn lines into a percentage. */
  expectedLines: number;
}

export interface KernelBuildResult {
  release: string;
  buildLines: number;
}

export function listPatches(dir: string): string[] {
  if (!existsSync(dir)) throw new TmemuError("BAD_INPUT", `patch directory ${dir} does not exist`, "pass --patches DIR with a folder of *.patch files");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".patch"))
    .sort()
    .map((f) => join(dir, f));
}

/** "patching file X" followed by "Hunk #N FAILED at L": the first failing hunk, for the error. */
export function firstFailedHunk(patchOutput: string): string | undefined {
  let file = "";
  for (const line of patchOutput.split("\n")) {
    const f = /^patching file (.+)$/.exec(line) ?? /^checking file (.+)$/.exec(line);
    if (f?.[1]) file = f[1];
    const h = /^(Hunk #\d+ FAILED at \d+.*)$/.exec(line);
    if (h?.[1]) return `${file}: ${h[1]}`;
    if (/^(can't find file to patch|No file to patch|Reversed \(or previously applied\) patch detected)/.test(line)) return `${file}: ${line}`;
  }
  return undefined;
}

export function applyPatches(srcDir: string, patches: readonly string[], logFile: string): void {
  for (const p of patches) {
    // Dry run first, so a failing patch leaves the tree as the previous patch left it.
    for (const dry of [true, false]) {
      const r = spawnSync("patch", ["-p1", "--forward", "--batch", ...(dry ? ["--dry-run"] : []), "-i", p], { cwd: srcDir, encoding: "utf8" });
      writeFileSync(logFile, `\n$ patch -p1 ${dry ? "--dry-run " : ""}-i ${p}\n${r.stdout}${r.stderr}`, { flag: "a" });
      if (r.status !== 0) {
        throw new TmemuError(
          "PATCH_FAILED",
          `patch ${basename(p)} does not apply: ${firstFailedHunk(r.stdout + r.stderr) ?? (r.stderr || r.stdout).trim().split("\n")[0]}`,
          `rebase it onto the kernel in use (see ${logFile})`,
        );
      }
    }
  }
}

/**
 * A built kernel tree is about 1.5 GB in 80,000 files: deleting it takes tens of seconds on a busy
 * disk, so it happens in a detached `rm -rf` that outlives this process if need be.
 */
export function removeTreeInBackground(dir: string): void {
  const trash = `${dir}.trash-${process.pid}-${Date.now()}`;
  try {
    renameSync(dir, trash);
  } catch {
    return;
  }
  spawn("rm", ["-rf", trash], { detached: true, stdio: "ignore" }).unref();
}

export async function buildKernel(input: KernelBuildInput, progress: ProgressSink): Promise<KernelBuildResult> {
  const { workDir, outDir, logFile } = input;
  removeTreeInBackground(workDir);
  mkdirSync(workDir, { recursive: true });

  progress.phase("kernel: unpacking linux-source-6.1");
  await run("dpkg-deb", ["-x", input.linuxSourceDeb, join(workDir, "pkg")], { logFile });
  const tarball = readdirSync(join(workDir, "pkg/usr/src")).find((f) => /^linux-source-.*\.tar\.xz$/.test(f));
  if (!tarball) throw new TmemuError("BUILD_FAILED", "the linux-source package holds no linux-source-*.tar.xz", `see ${input.linuxSourceDeb}`);
  await run("tar", ["-xf", join(workDir, "pkg/usr/src", tarball), "-C", workDir], { logFile });
  rmSync(join(workDir, "pkg"), { recursive: true, force: true });
  const srcDir = join(workDir, tarball.replace(/\.tar\.xz$/, ""));
  progress.done();

  const patches = listPatches(input.patchesDir);
  progress.phase(`kernel: applying ${patches.length} patch(es) from ${input.patchesDir}`);
  applyPatches(srcDir, patches, logFile);
  progress.done();

  progress.phase("kernel: configuring (tinyconfig + guest-images/kernel.config)");
  const make = (args: string[], onLine?: (l: string) => void) =>
    run("make", ["ARCH=i386", ...args], {
      cwd: srcDir,
      logFile,
      env: { ...process.env, KBUILD_BUILD_USER: "tmemu", KBUILD_BUILD_HOST: "tmemu", KBUILD_BUILD_TIMESTAMP: "2024-01-01" },
      ...(onLine ? { onLine } : {}),
    });
  await make(["tinyconfig"]);
  const fragmentFile = join(workDir, "tmemu.config");
  writeFileSync(fragmentFile, input.configFragment);
  await run(join(srcDir, "scripts/kconfig/merge_config.sh"), ["-m", "-O", srcDir, join(srcDir, ".config"), fragmentFile], {
    cwd: srcDir,
    logFile,
    env: { ...process.env, ARCH: "i386" },
  });
  await make(["olddefconfig"]);
  const finalConfig = readFileSync(join(srcDir, ".config"), "utf8");
  const dropped = checkKconfig(input.configFragment, finalConfig);
  if (dropped.length) {
    throw new TmemuError(
      "CONFIG_DROPPED",
      `Kconfig did not keep ${dropped.map((d) => `${d.option}=${d.wanted} (got ${d.got})`).join(", ")}`,
      "an option's dependencies are missing from guest-images/kernel.config: add them, or check `make ARCH=i386 menuconfig` for what it depends on",
    );
  }
  progress.done();

  const jobs = availableParallelism();
  progress.phase(`kernel: building bzImage with -j${jobs}`);
  let lines = 0;
  await make([`-j${jobs}`, "bzImage"], (l) => {
    if (/^\s+[A-Z][A-Z0-9_]+\s/.test(l)) lines++;
    progress.update(lines / Math.max(input.expectedLines, 1), l.trim().slice(0, 50));
  });
  progress.done(`${lines} steps`);

  progress.phase("kernel: installing headers");
  mkdirSync(outDir, { recursive: true });
  await make(["headers_install", `INSTALL_HDR_PATH=${join(outDir, "headers")}`]);
  copyFileSync(join(srcDir, "arch/x86/boot/bzImage"), join(outDir, "bzImage"));
  copyFileSync(join(srcDir, ".config"), join(outDir, "config"));
  cpSync(join(srcDir, "tools/include/nolibc"), join(outDir, "nolibc"), { recursive: true });
  const release = readFileSync(join(srcDir, "include/config/kernel.release"), "utf8").trim();
  progress.done();
  if (!process.env["TMEMU_KEEP_BUILD"]) removeTreeInBackground(workDir);
  return { release, buildLines: lines };
}
