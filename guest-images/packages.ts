/**
 * Debian packages the guest is built from, and how a version is chosen.
 *
 * guest-images/versions.json asks for one version of each package. Debian keeps only a few
 * linux-source-6.1 versions in its archive and drops old ones every few weeks, so an asked version
 * may be gone: then the newest the archive offers is chosen, with one warning. That choice is a
 * *resolution*, made once and remembered in the cache (resolutions.json beside debs/): the version
 * asked for, the one chosen, the versions the archive offered and when. A later run that finds the
 * resolution and the chosen .deb in the cache uses them without asking apt anything and without a
 * warning (warm runs are silent and offline). `tmemu images --refresh` makes the resolutions again.
 *
 * A version asked for explicitly (`--kernel-version`, or a `--versions FILE`) is never replaced:
 * when the archive does not offer it, that is an error that lists what it offers.
 *
 * apt is reached only through the `Apt` interface, so the choice can be tested without apt.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { query, run } from "./exec.ts";
import { aptUpdate, isRoot } from "./host-tools.ts";
import { GUEST_IMAGES_DIR } from "./paths.ts";
import type { ProgressSink } from "./progress.ts";

export const DEFAULT_VERSIONS_FILE = join(GUEST_IMAGES_DIR, "versions.json");
export const KERNEL_PACKAGE = "linux-source-6.1";

export interface PackagePin {
  name: string;
  version: string;
  arch: string;
  /** Asked for by the user (--kernel-version, --versions): never replaced by another version. */
  explicit?: boolean;
}

/** One package's choice, as remembered in resolutions.json. */
export interface Resolution {
  name: string;
  arch: string;
  asked: string;
  chosen: string;
  /** What `apt-cache madison` listed when the choice was made, newest first. */
  offered: string[];
  /** ISO time of the choice. */
  resolvedAt: string;
  explicit: boolean;
}

export interface ResolvedPackage {
  name: string;
  arch: string;
  /** The version used. */
  version: string;
  /** The version asked for (equal to `version` unless the archive no longer had it). */
  asked: string;
  deb: string;
  /** How the version was chosen, when the archive was asked (absent: the asked .deb was in the cache). */
  resolution?: Resolution;
}

/** The archive, as tmemu uses it. */
export interface Apt {
  /** The versions the archive offers, newest first, each once. */
  versions(pkg: { name: string; arch: string }): string[];
  /** Refreshes the package lists (apt-get update); may do nothing (not root). */
  update(): void;
  /** Downloads the .deb of `version` into the empty folder `dir`. */
  download(pkg: { name: string; arch: string }, version: string, dir: string, logFile: string): Promise<void>;
}

interface VersionsDoc {
  packages: Record<string, { version: string; arch: string }>;
}

/** The pins of a versions file (the format of guest-images/versions.json); a malformed file is BAD_INPUT. */
export function readPins(file = DEFAULT_VERSIONS_FILE, explicit = false): PackagePin[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new TmemuError("BAD_INPUT", `cannot read the versions file ${file}: ${why}`, 'give a JSON file like guest-images/versions.json: {"packages": {"linux-source-6.1": {"version": "...", "arch": "all"}, ...}}');
  }
  const packages = (doc as Partial<VersionsDoc> | null)?.packages;
  const bad = (what: string) =>
    new TmemuError("BAD_INPUT", `the versions file ${file} ${what}`, 'follow guest-images/versions.json: {"packages": {"<name>": {"version": "<version>", "arch": "<arch>"}}}');
  if (typeof packages !== "object" || packages === null) throw bad('has no "packages" object');
  return Object.entries(packages).map(([name, p]) => {
    if (typeof p?.version !== "string" || !p.version || typeof p.arch !== "string" || !p.arch) throw bad(`gives ${name} no "version" and "arch" strings`);
    return { name, version: p.version, arch: p.arch, ...(explicit ? { explicit: true } : {}) };
  });
}

/**
 * The pins for one build: the versions file (explicit when the user gave it), with the kernel
 * source's version replaced by `kernelVersion` (always explicit) when given.
 */
export function choosePins(opts: { versionsFile?: string; kernelVersion?: string }): PackagePin[] {
  const pins = readPins(opts.versionsFile ?? DEFAULT_VERSIONS_FILE, opts.versionsFile !== undefined);
  if (opts.kernelVersion === undefined) return pins;
  if (!/^[0-9][A-Za-z0-9.+~:-]*$/.test(opts.kernelVersion)) {
    throw new TmemuError("USAGE", `--kernel-version "${opts.kernelVersion}" is not a Debian version`, "for example --kernel-version 6.1.176-1 (see `apt-cache madison linux-source-6.1`)");
  }
  if (!pins.some((p) => p.name === KERNEL_PACKAGE)) throw new TmemuError("BAD_INPUT", `the versions file names no ${KERNEL_PACKAGE}`, `add "${KERNEL_PACKAGE}" to it`);
  return pins.map((p) => (p.name === KERNEL_PACKAGE ? { ...p, version: opts.kernelVersion as string, explicit: true } : p));
}

export function debName(p: { name: string; arch: string }, version: string): string {
  return `${p.name}_${version.replace(/:/g, "%3a")}_${p.arch}.deb`;
}

function aptName(p: { name: string; arch: string }): string {
  return p.arch === "all" ? p.name : `${p.name}:${p.arch}`;
}

/** The versions in `apt-cache madison` output for the package, in its order (newest first), each once. */
export function parseMadison(output: string, p: { name: string; arch: string }): string[] {
  const versions = output
    .split("\n")
    .map((l) => l.split("|").map((f) => f.trim()))
    .filter((f) => (f[0] === p.name || f[0] === aptName(p)) && f[1])
    .map((f) => f[1] as string);
  return [...new Set(versions)];
}

/** The real archive: apt-cache madison, apt-get update (as root), apt-get download. */
export function systemApt(progress: ProgressSink): Apt {
  return {
    versions: (p) => parseMadison(query("apt-cache", ["madison", aptName(p)]) ?? "", p),
    update: () => aptUpdate(progress),
    download: async (p, version, dir, logFile) => {
      await run("apt-get", ["download", `${aptName(p)}=${version}`], { cwd: dir, logFile });
    },
  };
}

/** resolutions.json under the cache root: the choices made so far, by package, arch and version asked. */
export class ResolutionStore {
  readonly file: string;

  constructor(cacheRoot: string) {
    this.file = join(cacheRoot, "resolutions.json");
  }

  private static key(p: { name: string; arch: string }, asked: string): string {
    return `${p.name}:${p.arch}=${asked}`;
  }

  all(): Record<string, Resolution> {
    try {
      const doc = JSON.parse(readFileSync(this.file, "utf8")) as { resolutions?: Record<string, Resolution> };
      return doc.resolutions ?? {};
    } catch {
      // Missing or unreadable: no choice remembered, so the archive is asked again.
      return {};
    }
  }

  get(p: { name: string; arch: string }, asked: string): Resolution | undefined {
    return this.all()[ResolutionStore.key(p, asked)];
  }

  put(r: Resolution): void {
    const all = { ...this.all(), [ResolutionStore.key(r, r.asked)]: r };
    const doc = {
      comment: "tmemu's choice of each Debian package version (guest-images/packages.ts). Remade by `tmemu images --refresh`; deleting this file has the same effect.",
      resolutions: all,
    };
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(doc, null, 2)}\n`);
    renameSync(tmp, this.file);
  }
}

export interface ResolveContext {
  debDir: string;
  logFile: string;
  progress: ProgressSink;
  apt: Apt;
  store: ResolutionStore;
  /** Ask the archive again even when a resolution is remembered. */
  refresh?: boolean;
  /** Wall clock, for resolvedAt. */
  now?: () => Date;
}

/**
 * What resolvePackage would use without asking apt: the remembered choice whose .deb is cached,
 * or the asked version's cached .deb. Undefined when the archive has to be asked.
 */
export function cachedPackage(pin: PackagePin, ctx: Pick<ResolveContext, "debDir" | "store" | "refresh">): ResolvedPackage | undefined {
  if (ctx.refresh) return undefined;
  const r = ctx.store.get(pin, pin.version);
  if (r && existsSync(join(ctx.debDir, debName(pin, r.chosen)))) {
    return { name: pin.name, arch: pin.arch, version: r.chosen, asked: pin.version, deb: join(ctx.debDir, debName(pin, r.chosen)), resolution: r };
  }
  const asked = join(ctx.debDir, debName(pin, pin.version));
  if (existsSync(asked)) return { name: pin.name, arch: pin.arch, version: pin.version, asked: pin.version, deb: asked, ...(r?.chosen === pin.version ? { resolution: r } : {}) };
  return undefined;
}

function chooseVersion(pin: PackagePin, offered: readonly string[], ctx: ResolveContext): string {
  if (offered.includes(pin.version)) return pin.version;
  if (pin.explicit) {
    throw new TmemuError(
      "PACKAGE_UNAVAILABLE",
      offered.length
        ? `${pin.name} ${pin.version} is not in the archive; it offers ${offered.join(", ")}`
        : `${pin.name} ${pin.version} is not in the archive, which offers no ${pin.name} at all`,
      offered.length
        ? `ask for one of those${pin.name === KERNEL_PACKAGE ? " (--kernel-version VERSION)" : ""}, or leave the version out to use guest-images/versions.json`
        : "check /etc/apt/sources.list for Debian bookworm and run `apt-get update`",
    );
  }
  const newest = offered[0];
  if (newest) {
    ctx.progress.warn(
      `${pin.name} ${pin.version} (guest-images/versions.json) is no longer in the archive, which offers ${offered.join(", ")}; using the newest, ${newest}. ` +
        "This choice is kept in the cache; `tmemu images --refresh` makes it again.",
    );
    return newest;
  }
  // The archive knows nothing of the package: maybe an earlier run kept a .deb of it.
  const kept = existsSync(ctx.debDir) ? readdirSync(ctx.debDir).filter((f) => f.startsWith(`${pin.name}_`) && f.endsWith(`_${pin.arch}.deb`)).sort() : [];
  const last = kept[kept.length - 1];
  if (last) {
    const version = (last.split("_")[1] ?? "").replace(/%3a/g, ":");
    ctx.progress.warn(`apt offers no ${aptName(pin)}; using the cached ${pin.name} ${version} instead of ${pin.version}`);
    return version;
  }
  throw new TmemuError(
    "PACKAGE_UNAVAILABLE",
    `apt cannot find ${aptName(pin)}`,
    isRoot() ? "check /etc/apt/sources.list for Debian bookworm and bookworm-security" : "run `sudo apt-get update` (and `sudo dpkg --add-architecture i386` for busybox-static:i386), then try again",
  );
}

/**
 * The .deb to build from for `pin`: from the cache when the choice is already made (no apt call),
 * else chosen from what the archive offers (remembered), and downloaded when not cached.
 */
export async function resolvePackage(pin: PackagePin, ctx: ResolveContext): Promise<ResolvedPackage> {
  const warm = cachedPackage(pin, ctx);
  if (warm) return warm;

  mkdirSync(ctx.debDir, { recursive: true });
  let offered = ctx.apt.versions(pin);
  if (!offered.includes(pin.version)) {
    // The lists may be older than the archive: refresh them once before choosing another version.
    ctx.apt.update();
    offered = ctx.apt.versions(pin);
  }
  const chosen = chooseVersion(pin, offered, ctx);
  const resolution: Resolution = {
    name: pin.name,
    arch: pin.arch,
    asked: pin.version,
    chosen,
    offered,
    resolvedAt: (ctx.now ?? (() => new Date()))().toISOString(),
    explicit: Boolean(pin.explicit),
  };

  const target = join(ctx.debDir, debName(pin, chosen));
  if (!existsSync(target)) {
    ctx.progress.phase(`downloading ${pin.name} ${chosen}`);
    const tmp = join(ctx.debDir, `.download-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    try {
      await ctx.apt.download(pin, chosen, tmp, ctx.logFile);
      const got = readdirSync(tmp).find((f) => f.endsWith(".deb"));
      if (!got) throw new TmemuError("PACKAGE_UNAVAILABLE", `apt-get download ${aptName(pin)}=${chosen} produced no .deb`, `see ${ctx.logFile}`);
      renameSync(join(tmp, got), target);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    ctx.progress.done();
  }
  // Remembered only once the .deb is here: a failed download leaves nothing to trust.
  ctx.store.put(resolution);
  return { name: pin.name, arch: pin.arch, version: chosen, asked: pin.version, deb: target, resolution };
}
