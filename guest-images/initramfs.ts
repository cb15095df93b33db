/**
 * The initramfs: Debian's static i386 busybox, our /init (guest-images/init) and the workload
 * programs of guest-images/programs/*.c, each built static for i386 against the kernel's own
 * nolibc (no libc), packed as newc cpio by cpio.ts.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { query, run } from "./exec.ts";
import { writeCpio, type CpioEntry } from "./cpio.ts";
import type { ProgressSink } from "./progress.ts";

export interface InitramfsInput {
  busyboxDeb: string;
  initScript: string;
  programsDir: string;
  /** From the kernel build: UAPI headers and nolibc. */
  kernelOutDir: string;
  workDir: string;
  logFile: string;
}

export function listPrograms(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".c"))
    .sort()
    .map((f) => join(dir, f));
}

export async function buildInitramfs(input: InitramfsInput, progress: ProgressSink): Promise<{ cpio: Uint8Array; programs: string[] }> {
  const { workDir, logFile } = input;
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  progress.phase("initramfs: busybox and programs");
  await run("dpkg-deb", ["-x", input.busyboxDeb, join(workDir, "busybox")], { logFile });
  const busybox = readFileSync(join(workDir, "busybox/bin/busybox"));

  const gccInclude = query("gcc", ["-print-file-name=include"])?.trim();
  if (!gccInclude) throw new TmemuError("MISSING_TOOL", "gcc -print-file-name=include failed", "install gcc");
  const programs: { name: string; data: Uint8Array }[] = [];
  for (const src of listPrograms(input.programsDir)) {
    const name = basename(src, ".c");
    const out = join(workDir, name);
    await run(
      "gcc",
      [
        "-m32", "-march=i686", "-static", "-nostdlib", "-nostdinc", "-Os", "-Wall", "-Werror",
        "-fno-asynchronous-unwind-tables", "-fno-ident", "-fno-stack-protector",
        "-isystem", gccInclude,
        "-I", join(input.kernelOutDir, "nolibc"),
        "-I", join(input.kernelOutDir, "headers/include"),
        "-o", out, src,
      ],
      { logFile },
    );
    programs.push({ name, data: readFileSync(out) });
  }

  const entries: CpioEntry[] = [
    ...["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "data", "root", "etc"].map((path) => ({ kind: "dir" as const, path })),
    { kind: "chardev", path: "dev/console", major: 5, minor: 1 },
    { kind: "chardev", path: "dev/null", major: 1, minor: 3, mode: 0o666 },
    { kind: "file", path: "init", data: Buffer.from(input.initScript, "utf8"), mode: 0o755 },
    { kind: "file", path: "bin/busybox", data: busybox, mode: 0o755 },
    ...programs.map((p) => ({ kind: "file" as const, path: `bin/${p.name}`, data: p.data, mode: 0o755 })),
  ];
  const cpio = writeCpio(entries);
  progress.done(`${(cpio.length / 1024).toFixed(0)} KiB, programs: ${programs.map((p) => p.name).join(", ")}`);
  rmSync(workDir, { recursive: true, force: true });
  return { cpio, programs: programs.map((p) => p.name) };
}
