/**
 * The host tools the guest build needs, checked up front. As root, what is missing is installed
 * from Debian's archive (with `dpkg --add-architecture i386` for busybox-static:i386); otherwise
 * one error lists the exact command to run.
 */
import { existsSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { TmemuError } from "../hypervisor/user-errors.ts";
import type { ProgressSink } from "./progress.ts";

/** A tool is a command on PATH or a file that a -dev package installs; each names its package. */
export const REQUIRED_TOOLS: readonly { check: string; pkg: string }[] = [
  { check: "gcc", pkg: "gcc" },
  { check: "make", pkg: "make" },
  { check: "flex", pkg: "flex" },
  { check: "bison", pkg: "bison" },
  { check: "bc", pkg: "bc" },
  { check: "perl", pkg: "perl" },
  { check: "rsync", pkg: "rsync" },
  { check: "patch", pkg: "patch" },
  { check: "xz", pkg: "xz-utils" },
  { check: "mke2fs", pkg: "e2fsprogs" },
  { check: "dpkg-deb", pkg: "dpkg" },
  { check: "apt-get", pkg: "apt" },
  { check: "/usr/include/stdio.h", pkg: "libc6-dev" },
  { check: "/usr/include/libelf.h", pkg: "libelf-dev" },
];

function hasCommand(name: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${name}`], { stdio: "ignore" }).status === 0;
}

export function missingPackages(): string[] {
  const missing = REQUIRED_TOOLS.filter((t) => (t.check.startsWith("/") ? !existsSync(t.check) : !hasCommand(t.check)));
  return [...new Set(missing.map((t) => t.pkg))];
}

/** Root may install packages; TMEMU_NO_INSTALL=1 forbids it (then the build only says what to install). */
export function isRoot(): boolean {
  if (process.env["TMEMU_NO_INSTALL"]) return false;
  return typeof process.getuid === "function" && process.getuid() === 0;
}

function foreignArchs(): string[] {
  const r = spawnSync("dpkg", ["--print-foreign-architectures"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.split("\n").filter(Boolean) : [];
}

export function needsI386(): boolean {
  return !foreignArchs().includes("i386");
}

/** Runs a command; undefined when it succeeded, else what went wrong (its exit code and last lines). */
function trySh(cmd: string, args: string[]): string | undefined {
  const r = spawnSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  return r.status === 0 ? undefined : `${cmd} ${args.join(" ")} exited ${r.status}: ${(r.stderr || r.stdout).trim().split("\n").slice(-2).join(" / ")}`;
}

function sh(cmd: string, args: string[], progress: ProgressSink): boolean {
  const failed = trySh(cmd, args);
  if (failed) progress.warn(failed);
  return failed === undefined;
}

let aptUpdated = false;

/**
 * `apt-get update`, once per process; a mirror mid-sync fails it now and then, so try twice, and
 * warn once if both fail (apt then keeps the lists it had, which is often enough).
 */
export function aptUpdate(progress: ProgressSink): void {
  if (aptUpdated) return;
  if (!isRoot()) return;
  progress.phase("apt-get update");
  const failed = trySh("apt-get", ["update", "-q"]) && trySh("apt-get", ["update", "-q"]);
  if (failed) progress.warn(`${failed} (using the package lists apt has)`);
  aptUpdated = true;
  progress.done();
}

/** Makes sure the tools are there; needI386: busybox-static:i386 still has to be downloaded. */
export function ensureHostTools(progress: ProgressSink, needI386Packages: boolean): void {
  const pkgs = missingPackages();
  const addI386 = needI386Packages && needsI386();
  if (pkgs.length === 0 && !addI386) return;
  if (!isRoot()) {
    const steps = [
      ...(addI386 ? ["sudo dpkg --add-architecture i386"] : []),
      "sudo apt-get update",
      ...(pkgs.length ? [`sudo apt-get install -y ${pkgs.join(" ")}`] : []),
    ];
    throw new TmemuError(
      "NOT_ROOT",
      `the guest build needs ${[...pkgs, ...(addI386 ? ["the i386 architecture in dpkg"] : [])].join(", ")}`,
      `run once: ${steps.join(" && ")}`,
    );
  }
  if (addI386) sh("dpkg", ["--add-architecture", "i386"], progress);
  aptUpdated = false;
  aptUpdate(progress);
  if (pkgs.length) {
    progress.phase(`installing ${pkgs.join(" ")}`);
    if (!sh("apt-get", ["install", "-y", "-q", "--no-install-recommends", ...pkgs], progress)) {
      throw new TmemuError("MISSING_TOOL", `apt-get install ${pkgs.join(" ")} failed`, "run it by hand to see why");
    }
    progress.done();
  }
  const still = missingPackages();
  if (still.length) throw new TmemuError("MISSING_TOOL", `still missing after install: ${still.join(", ")}`, `apt-get install ${still.join(" ")}`);
}
