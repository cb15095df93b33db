/**
 * Debian packages the guest is built from (versions.json): asked for at the recorded version
 * first; when the archive has dropped it (Debian keeps only a few linux-source-6.1 versions), the
 * newest is used with a warning. Downloaded .deb files are kept in the cache, so a warm build needs
 * no network and no apt at all.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { query, run } from "./exec.ts";
import { aptUpdate, isRoot } from "./host-tools.ts";
import { GUEST_IMAGES_DIR } from "./paths.ts";
import type { ProgressSink } from "./progress.ts";

export interface PackagePin {
  name: string;
  version: string;
  arch: string;
}

export interface ResolvedPackage extends PackagePin {
  deb: string;
  /** Set when the pinned version was not available. */
  pinned?: string;
}

export function readPins(file = join(GUEST_IMAGES_DIR, "versions.json")): PackagePin[] {
  const doc = JSON.parse(readFileSync(file, "utf8")) as { packages: Record<string, { version: string; arch: string }> };
  return Object.entries(doc.packages).map(([name, p]) => ({ name, version: p.version, arch: p.arch }));
}

function debName(p: PackagePin): string {
  return `${p.name}_${p.version.replace(/:/g, "%3a")}_${p.arch}.deb`;
}

function aptName(p: { name: string; arch: string }): string {
  return p.arch === "all" ? p.name : `${p.name}:${p.arch}`;
}

/** Versions apt can fetch, newest first (apt-cache madison). */
function availableVersions(p: PackagePin): string[] {
  const out = query("apt-cache", ["madison", aptName(p)]) ?? "";
  return out
    .split("\n")
    .map((l) => l.split("|").map((f) => f.trim()))
    .filter((f) => (f[0] === p.name || f[0] === aptName(p)) && f[1])
    .map((f) => f[1] as string);
}

export async function resolvePackage(pin: PackagePin, debDir: string, logFile: string, progress: ProgressSink): Promise<ResolvedPackage> {
  mkdirSync(debDir, { recursive: true });
  const cached = join(debDir, debName(pin));
  if (existsSync(cached)) return { ...pin, deb: cached };

  let versions = availableVersions(pin);
  if (!versions.includes(pin.version)) {
    aptUpdate(progress);
    versions = availableVersions(pin);
  }
  let chosen: PackagePin = pin;
  let fellBack = false;
  if (!versions.includes(pin.version)) {
    const newest = versions[0];
    if (!newest) {
      // Maybe an earlier run fell back and kept a newer deb: use the newest one we hold.
      const kept = readdirSync(debDir).filter((f) => f.startsWith(`${pin.name}_`) && f.endsWith(`_${pin.arch}.deb`)).sort();
      const last = kept[kept.length - 1];
      if (last) {
        const version = (last.split("_")[1] ?? "").replace(/%3a/g, ":");
        progress.warn(`${pin.name} ${pin.version} is not available; using the cached ${version}`);
        return { ...pin, version, deb: join(debDir, last), pinned: pin.version };
      }
      throw new TmemuError(
        "PACKAGE_UNAVAILABLE",
        `apt cannot find ${aptName(pin)}`,
        isRoot() ? "check /etc/apt/sources.list for Debian bookworm and bookworm-security" : "run `sudo apt-get update` (and `sudo dpkg --add-architecture i386` for busybox-static:i386), then try again",
      );
    }
    progress.warn(`${pin.name} ${pin.version} (guest-images/versions.json) is no longer in the archive; using the newest, ${newest}. Record it in versions.json to make the build reproducible again.`);
    chosen = { ...pin, version: newest };
    fellBack = true;
  }
  const target = join(debDir, debName(chosen));
  if (!existsSync(target)) {
    progress.phase(`downloading ${chosen.name} ${chosen.version}`);
    const tmp = join(debDir, `.download-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      await run("apt-get", ["download", `${aptName(chosen)}=${chosen.version}`], { cwd: tmp, logFile });
      const got = readdirSync(tmp).find((f) => f.endsWith(".deb"));
      if (!got) throw new TmemuError("PACKAGE_UNAVAILABLE", `apt-get download ${aptName(chosen)} produced no .deb`, `see ${logFile}`);
      renameSync(join(tmp, got), target);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    progress.done();
  }
  return fellBack ? { ...chosen, deb: target, pinned: pin.version } : { ...chosen, deb: target };
}
