/**
 * Parsing and checking of CLI options, with errors that say what is accepted. Every check here is
 * cheap and runs before the guest images are resolved, built or booted: a bad flag answers at once,
 * even on a cold cache.
 */
import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Option, type Command } from "commander";
import { checkGuestMemoryMib, MAX_GUEST_MEMORY_MIB, MIN_GUEST_MEMORY_MIB } from "../emulator/memory-size.ts";
import type { VersionChoice } from "../guest-images/index.ts";
import { choosePins } from "../guest-images/packages.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";

function wholeNumber(flag: string, value: string, example: number): number {
  if (!/^\d+$/.test(value.trim())) throw new TmemuError("USAGE", `${flag} takes a whole number, got "${value}"`, `for example ${flag} ${example}`);
  return Number.parseInt(value, 10);
}

export function intOption(flag: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = wholeNumber(flag, value, min);
    if (n < min || n > max) throw new TmemuError("USAGE", `${flag} must be between ${min} and ${max}, got ${n}`, `pick a value in ${min}..${max}`);
    return n;
  };
}

/** --memory-mib: a guest RAM size v86 can boot (emulator/memory-size.ts), checked as it is parsed. */
export function memoryMibOption(description: string): Option {
  return new Option("--memory-mib <n>", `${description} (${MIN_GUEST_MEMORY_MIB}..${MAX_GUEST_MEMORY_MIB})`).default(128).argParser((value: string) => {
    const n = wholeNumber("--memory-mib", value, 128);
    checkGuestMemoryMib(n);
    return n;
  });
}

/** A flag naming a folder that must exist (--files). */
export function checkFolderFlag(flag: string, dir: string, hint: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new TmemuError("BAD_INPUT", `${flag} ${dir} does not exist`, hint);
  }
  if (!isDir) throw new TmemuError("BAD_INPUT", `${flag} ${dir} is not a folder`, hint);
}

/** A flag naming a file written at the end (--json): its folder must exist now, not after the run. */
export function checkOutputFileFlag(flag: string, file: string): void {
  let st;
  try {
    st = statSync(dirname(resolve(file)));
  } catch {
    throw new TmemuError("BAD_INPUT", `${flag} ${file}: the folder ${dirname(resolve(file))} does not exist`, "create it first, or write the file elsewhere");
  }
  if (!st.isDirectory()) throw new TmemuError("BAD_INPUT", `${flag} ${file}: ${dirname(resolve(file))} is not a folder`, "write the file elsewhere");
  let target;
  try {
    target = statSync(file);
  } catch {
    return;
  }
  if (target.isDirectory()) throw new TmemuError("BAD_INPUT", `${flag} ${file} is a folder`, "give a file name");
}

/** A flag naming a folder that is created at the end if missing (--out): it must not be a file. */
export function checkOutputDirFlag(flag: string, dir: string): void {
  let st;
  try {
    st = statSync(dir);
  } catch {
    return;
  }
  if (!st.isDirectory()) throw new TmemuError("BAD_INPUT", `${flag} ${dir} is a file, not a folder`, "give a folder (it is created if missing)");
}

export interface VersionFlags {
  kernelVersion?: string;
  versions?: string;
}

/** --kernel-version and --versions, on every command that boots or builds guest images. */
export function addVersionOptions(cmd: Command): Command {
  return cmd
    .option("--kernel-version <version>", "build from exactly this linux-source-6.1 version (an error if the archive does not offer it)")
    .option("--versions <file>", "package versions to build from, in the format of guest-images/versions.json (each one exact)");
}

/** The versions asked for, checked now (a missing or malformed --versions file, a malformed version). */
export function versionChoice(flags: VersionFlags): VersionChoice {
  const choice: VersionChoice = {
    ...(flags.kernelVersion !== undefined ? { kernelVersion: flags.kernelVersion } : {}),
    ...(flags.versions !== undefined ? { versionsFile: flags.versions } : {}),
  };
  choosePins(choice);
  return choice;
}
