/**
 * The guest-image build: `ensureImages` returns the kernel, initramfs and BIOS for the current
 * inputs, building what the cache does not hold yet. Two cached stages, each keyed by a hash of all
 * of its inputs (inputs.ts):
 *   kernel/<key>/   bzImage, config, headers/, nolibc/, manifest.json
 *   initrd/<key>/   initrd.cpio, manifest.json
 * under cacheRoot() (~/.cache/tmemu), beside debs/ (downloaded packages), resolutions.json (the
 * package versions chosen, packages.ts), bios/ and logs/. A stage's manifest.json records what
 * went into it (versions asked for and used, patches with their sha256, gcc) and is written last:
 * a directory without one is an unfinished build.
 *
 * Several tmemu processes may share the cache. A stage that has to be built is built under a lock
 * (lock.ts, locks/<stage>-<key>.lock): a second process waits, then finds it built. A stage is
 * built in <dir>.tmp and moved into place with rename(2), so a process that reads the cache without
 * the lock sees the old stage or the new one, never half of one.
 */
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { TmemuError } from "../hypervisor/user-errors.ts";
import type { GuestImages } from "../emulator/guest.ts";
import { checkInitrdSize } from "../emulator/memory-size.ts";
import { query, run } from "./exec.ts";
import { ensureHostTools } from "./host-tools.ts";
import { buildInitramfs } from "./initramfs.ts";
import { dirInputs, hashInputs } from "./inputs.ts";
import { buildKernel, listPatches, removeTreeInBackground } from "./kernel.ts";
import { tryLock, withLock } from "./lock.ts";
import { cachedPackage, choosePins, KERNEL_PACKAGE, ResolutionStore, resolvePackage, systemApt, type Apt, type Resolution, type ResolvedPackage } from "./packages.ts";
import { cacheRoot, DEFAULT_PATCHES_DIR, GUEST_IMAGES_DIR } from "./paths.ts";
import { silentProgress, type ProgressSink } from "./progress.ts";

/** Which package versions to build from (the CLI's --kernel-version and --versions). */
export interface VersionChoice {
  /** linux-source-6.1 at exactly this version; an error if the archive does not offer it. */
  kernelVersion?: string;
  /** A versions file in the format of guest-images/versions.json, instead of that one; explicit too. */
  versionsFile?: string;
}

export interface EnsureImagesOptions extends VersionChoice {
  rebuild?: boolean;
  /** Choose the package versions again from the archive instead of the remembered choice. */
  refresh?: boolean;
  patchesDir?: string;
  progress?: ProgressSink;
  cacheDir?: string;
  /** The archive (tests give a fake one). */
  apt?: Apt;
}

/** A package as built: the version used, the version asked for and, if the archive was asked, how it chose. */
export interface ImagePackage {
  name: string;
  version: string;
  asked: string;
  /** When the choice was made and what the archive offered then (absent: the asked .deb was cached). */
  resolvedAt?: string;
  offered?: string[];
}

/** The kernel stage's manifest.json, as `tmemu images` shows it. Fields an older tmemu did not record are absent. */
export interface KernelBuildRecord {
  release: string;
  linuxSource: string;
  linuxSourceAsked?: string;
  patches: { name: string; sha256?: string }[];
  gcc?: string;
  builtAt: string;
}

export interface ImageSet {
  kernelDir: string;
  kernelKey: string;
  kernelRelease: string;
  initrdPath: string;
  initrdKey: string;
  biosPath: string;
  vgaBiosPath: string;
  packages: ImagePackage[];
  patches: string[];
  /** What the cached kernel was built from (its manifest.json). */
  kernel: KernelBuildRecord;
  /** What the cached initramfs was built from. */
  initrd: { busybox: string; programs: string[]; builtAt: string };
  built: { kernel: boolean; initrd: boolean };
  /** Wall time of this call, and of the last build of each stage. */
  seconds: { total: number; kernelBuild: number; initrdBuild: number };
}

interface StageManifest {
  key: string;
  builtAt: string;
  seconds: number;
  [k: string]: unknown;
}

const DEFAULT_KERNEL_LINES = 1250;

function readManifest(dir: string): StageManifest | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")) as StageManifest;
  } catch {
    return undefined;
  }
}

/** Moves the finished build `tmp` to `dir`, replacing what was there with one rename. */
function replaceDir(tmp: string, dir: string): void {
  const old = `${dir}.old-${process.pid}`;
  const hadOld = existsSync(dir);
  if (hadOld) renameSync(dir, old);
  renameSync(tmp, dir);
  if (hadOld) rmSync(old, { recursive: true, force: true });
}

/**
 * Deletes the build trees in work/ that no process is building: left by a build that failed, or
 * was killed, for a key nobody builds again (a kernel tree is about 1.5 GB). A tree is in use
 * exactly when its stage's lock is held; `except` is the one this process is about to build.
 */
export async function sweepWorkDirs(root: string, except: string): Promise<string[]> {
  const swept: string[] = [];
  let names: string[];
  try {
    names = readdirSync(join(root, "work"));
  } catch {
    return swept;
  }
  for (const name of names) {
    if (name === except || !/^(kernel|initrd)-[0-9a-f]+$/.test(name)) continue;
    const lock = await tryLock(join(root, "locks", `${name}.lock`));
    if (!lock) continue;
    try {
      removeTreeInBackground(join(root, "work", name));
      swept.push(name);
    } finally {
      await lock.release();
    }
  }
  return swept;
}

/** A bad --patches is the user's to fix: say so before any download or build (the CLI calls it first). */
export function checkPatchesDir(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new TmemuError("BAD_INPUT", `patch directory ${dir} does not exist`, "pass --patches DIR with a folder of *.patch files");
  }
  if (!isDir) throw new TmemuError("BAD_INPUT", `--patches ${dir} is a file, not a folder`, "put the patch in a folder of its own (a series applies in name order) and pass that folder");
}

/** `gcc --version`'s first line, as a record of the compiler a build used. */
function gccVersion(): string | undefined {
  return query("gcc", ["--version"])?.split("\n")[0]?.trim();
}

function kernelRecord(m: StageManifest): KernelBuildRecord {
  const patches = Array.isArray(m["patches"]) ? (m["patches"] as unknown[]) : [];
  return {
    release: String(m["release"] ?? ""),
    linuxSource: String(m["linuxSource"] ?? ""),
    ...(typeof m["linuxSourceAsked"] === "string" ? { linuxSourceAsked: m["linuxSourceAsked"] } : {}),
    // Older manifests list names only.
    patches: patches.map((p) => (typeof p === "string" ? { name: p } : (p as { name: string; sha256?: string }))),
    ...(typeof m["gcc"] === "string" ? { gcc: m["gcc"] } : {}),
    builtAt: m.builtAt,
  };
}

function imagePackage(r: ResolvedPackage): ImagePackage {
  const res: Resolution | undefined = r.resolution;
  return { name: r.name, version: r.version, asked: r.asked, ...(res ? { resolvedAt: res.resolvedAt, offered: res.offered } : {}) };
}

function sourceInputs(...names: string[]): Record<string, Uint8Array> {
  return Object.fromEntries(names.map((n) => [`build/${n}`, readFileSync(join(GUEST_IMAGES_DIR, n))]));
}

export async function ensureImages(opts: EnsureImagesOptions = {}): Promise<ImageSet> {
  const t0 = Date.now();
  const progress = opts.progress ?? silentProgress;
  const root = opts.cacheDir ?? cacheRoot();
  const patchesDir = opts.patchesDir ?? DEFAULT_PATCHES_DIR;
  checkPatchesDir(patchesDir);
  const pins = choosePins(opts);
  const logFile = join(root, "logs", `build-${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}.log`);
  const logHeader = `tmemu guest-image build, ${new Date().toISOString()}\n`;
  try {
    for (const d of ["debs", "kernel", "initrd", "bios", "logs", "work", "locks"]) mkdirSync(join(root, d), { recursive: true });
    writeFileSync(logFile, logHeader);
  } catch (err) {
    throw new TmemuError("BAD_INPUT", `cannot use the cache directory ${root}: ${(err as Error).message}`, "set TMEMU_CACHE_DIR to a folder you can write to");
  }
  const lockFile = (stage: string) => join(root, "locks", `${stage}.lock`);
  const waitNotice = (what: string) => () => progress.warn(`another tmemu is building the ${what} in ${root}; waiting for it`);
  const built = { kernel: false, initrd: false, bios: false };

  // Packages: a warm cache answers from resolutions.json and debs/ alone (no apt, no warning).
  const debDir = join(root, "debs");
  const store = new ResolutionStore(root);
  const refresh = Boolean(opts.refresh);
  const uncached = pins.filter((p) => !cachedPackage(p, { debDir, store, refresh }));
  if (uncached.length) ensureHostTools(progress, uncached.some((p) => p.arch === "i386"));
  const apt = opts.apt ?? systemApt(progress);
  const resolved = new Map<string, ResolvedPackage>();
  for (const p of pins) resolved.set(p.name, await resolvePackage(p, { debDir, logFile, progress, apt, store, refresh }));
  const pkg = (name: string): ResolvedPackage => {
    const r = resolved.get(name);
    if (!r) throw new TmemuError("BUILD_FAILED", `guest-images/versions.json has no ${name}`, "restore versions.json from the repository");
    return r;
  };

  // Stage 1: kernel.
  const patches = listPatches(patchesDir);
  // The bytes the key is made of are the bytes recorded: a patch edited during the build does not
  // change what the manifest says was built.
  const patchInputs = dirInputs(patchesDir, "patches", (n) => n.endsWith(".patch"));
  const patchRecord = patches.map((p) => {
    const name = p.split("/").pop() ?? p;
    const bytes = patchInputs[`patches/${name}`];
    return { name, sha256: createHash("sha256").update(bytes ?? readFileSync(p)).digest("hex") };
  });
  const fragment = readFileSync(join(GUEST_IMAGES_DIR, "kernel.config"), "utf8");
  const kernelKey = hashInputs({
    "linux-source": pkg(KERNEL_PACKAGE).version,
    "kernel.config": fragment,
    ...patchInputs,
    ...sourceInputs("kernel.ts", "kconfig.ts"),
  });
  const kernelDir = join(root, "kernel", kernelKey);
  let kernelManifest = opts.rebuild ? undefined : readManifest(kernelDir);
  const linesFile = join(root, "kernel-build-lines");
  if (!kernelManifest) {
    kernelManifest = await withLock(
      lockFile(`kernel-${kernelKey}`),
      async () => {
        // Another process may have built it while this one waited for the lock.
        const done = opts.rebuild ? undefined : readManifest(kernelDir);
        if (done) return done;
        ensureHostTools(progress, false);
        const started = Date.now();
        const tmpOut = `${kernelDir}.tmp`;
        rmSync(tmpOut, { recursive: true, force: true });
        const workDir = join(root, "work", `kernel-${kernelKey}`);
        await sweepWorkDirs(root, `kernel-${kernelKey}`);
        const expectedLines = existsSync(linesFile) ? Number(readFileSync(linesFile, "utf8")) || DEFAULT_KERNEL_LINES : DEFAULT_KERNEL_LINES;
        let result;
        try {
          result = await buildKernel(
            { linuxSourceDeb: pkg(KERNEL_PACKAGE).deb, patchesDir, configFragment: fragment, workDir, outDir: tmpOut, logFile, expectedLines },
            progress,
          );
        } catch (err) {
          // The log says what went wrong; the 1.5 GB tree is kept only when asked for.
          if (!process.env["TMEMU_KEEP_BUILD"]) removeTreeInBackground(workDir);
          throw err;
        }
        writeFileSync(linesFile, String(result.buildLines));
        const manifest: StageManifest = {
          key: kernelKey,
          builtAt: new Date().toISOString(),
          seconds: (Date.now() - started) / 1000,
          release: result.release,
          linuxSource: pkg(KERNEL_PACKAGE).version,
          linuxSourceAsked: pkg(KERNEL_PACKAGE).asked,
          patches: patchRecord,
          gcc: gccVersion(),
        };
        writeFileSync(join(tmpOut, "manifest.json"), JSON.stringify(manifest, null, 2));
        replaceDir(tmpOut, kernelDir);
        built.kernel = true;
        return manifest;
      },
      waitNotice("guest kernel"),
    );
  }

  // Stage 2: initramfs (depends on the kernel for headers and nolibc).
  const initScript = readFileSync(join(GUEST_IMAGES_DIR, "init"), "utf8");
  const programsDir = join(GUEST_IMAGES_DIR, "programs");
  const initrdKey = hashInputs({
    kernel: kernelKey,
    busybox: pkg("busybox-static").version,
    init: initScript,
    ...dirInputs(programsDir, "programs", (n) => n.endsWith(".c") || n.endsWith(".h")),
    ...sourceInputs("initramfs.ts", "cpio.ts"),
  });
  const initrdDir = join(root, "initrd", initrdKey);
  let initrdManifest = opts.rebuild ? undefined : readManifest(initrdDir);
  if (!initrdManifest) {
    initrdManifest = await withLock(
      lockFile(`initrd-${initrdKey}`),
      async () => {
        const done = opts.rebuild ? undefined : readManifest(initrdDir);
        if (done) return done;
        ensureHostTools(progress, false);
        const started = Date.now();
        const { cpio, programs } = await buildInitramfs(
          { busyboxDeb: pkg("busybox-static").deb, initScript, programsDir, kernelOutDir: kernelDir, workDir: join(root, "work", `initrd-${initrdKey}`), logFile },
          progress,
        );
        // Guest memory sizes are checked before any image exists, against a fixed largest initrd.
        checkInitrdSize(cpio.byteLength);
        const tmpOut = `${initrdDir}.tmp`;
        rmSync(tmpOut, { recursive: true, force: true });
        mkdirSync(tmpOut, { recursive: true });
        writeFileSync(join(tmpOut, "initrd.cpio"), cpio);
        const manifest: StageManifest = { key: initrdKey, builtAt: new Date().toISOString(), seconds: (Date.now() - started) / 1000, programs, busybox: pkg("busybox-static").version };
        writeFileSync(join(tmpOut, "manifest.json"), JSON.stringify(manifest, null, 2));
        replaceDir(tmpOut, initrdDir);
        built.initrd = true;
        return manifest;
      },
      waitNotice("initramfs"),
    );
  }

  // BIOS from Debian's seabios.
  const seabios = pkg("seabios");
  const biosDir = join(root, "bios", seabios.version.replace(/:/g, "_"));
  const biosFiles = ["bios.bin", "vgabios-stdvga.bin"];
  const haveBios = () => biosFiles.every((f) => existsSync(join(biosDir, f)));
  if (!haveBios()) {
    await withLock(
      lockFile(`bios-${seabios.version.replace(/:/g, "_")}`),
      async () => {
        if (haveBios()) return;
        const tmp = `${biosDir}.tmp`;
        rmSync(tmp, { recursive: true, force: true });
        // dpkg-deb -x creates its target folder but not the parents.
        mkdirSync(tmp, { recursive: true });
        await run("dpkg-deb", ["-x", seabios.deb, join(tmp, "deb")], { logFile });
        for (const f of biosFiles) {
          const from = join(tmp, "deb/usr/share/seabios", f);
          if (!existsSync(from)) throw new TmemuError("BUILD_FAILED", `the seabios package ${seabios.version} has no usr/share/seabios/${f}`, `see ${seabios.deb}`);
          copyFileSync(from, join(tmp, f));
        }
        rmSync(join(tmp, "deb"), { recursive: true, force: true });
        replaceDir(tmp, biosDir);
        built.bios = true;
      },
      waitNotice("BIOS"),
    );
  }

  // A run that built nothing leaves no log behind (one per `tmemu boot` would pile up).
  try {
    if (statSync(logFile).size === Buffer.byteLength(logHeader)) unlinkSync(logFile);
  } catch {
    // already gone: fine
  }

  return {
    kernelDir,
    kernelKey,
    kernelRelease: String(kernelManifest["release"] ?? ""),
    initrdPath: join(initrdDir, "initrd.cpio"),
    initrdKey,
    biosPath: join(biosDir, "bios.bin"),
    vgaBiosPath: join(biosDir, "vgabios-stdvga.bin"),
    packages: [...resolved.values()].map(imagePackage),
    patches: patches.map((p) => p.split("/").pop() ?? p),
    kernel: kernelRecord(kernelManifest),
    initrd: {
      busybox: String(initrdManifest["busybox"] ?? ""),
      programs: Array.isArray(initrdManifest["programs"]) ? (initrdManifest["programs"] as string[]) : [],
      builtAt: initrdManifest.builtAt,
    },
    built: { kernel: built.kernel, initrd: built.initrd },
    seconds: { total: (Date.now() - t0) / 1000, kernelBuild: kernelManifest.seconds, initrdBuild: initrdManifest.seconds },
  };
}

export function loadGuestImages(set: ImageSet): GuestImages {
  const read = (path: string): Uint8Array => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new TmemuError("IMAGE_MISSING", `cannot read the guest image ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, "run `tmemu images --rebuild` to build the images again");
    }
  };
  return {
    bzImage: read(join(set.kernelDir, "bzImage")),
    initrd: read(set.initrdPath),
    bios: read(set.biosPath),
    vgaBios: read(set.vgaBiosPath),
  };
}
