/**
 * The boot-snapshot cache: one post-boot machine state per (guest images, memory size, boot
 * options), beside the images under cacheRoot()/snapshots/<key>.snap, in the snapshot file format
 * (emulator/snapshot-file.ts, kind "boot").
 *
 * The key hashes everything the state depends on: the images' keys (kernel and initramfs stage
 * keys and the BIOS build; a changed patch, config or program gives new images and so a new
 * snapshot, and the old file is never read again), memory size, kernel arguments, the balloon and
 * tmem devices, the swap disk's size, the v86 version and the file format version. A file that fails
 * its checks (cut short by a crash, damaged) is deleted and made again. Making one is a cold boot done
 * under a lock (lock.ts), so two processes make it once; calls of one process at once share one read
 * or make. The MAX_CACHED used last are kept.
 */
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, utimesSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join } from "node:path";
import { decodeSnapshot, SNAPSHOT_FORMAT_VERSION, writeSnapshotFile, type SnapshotHeader } from "../emulator/snapshot-file.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import type { ImageSet } from "./index.ts";
import { acquireLock } from "./lock.ts";
import { cacheRoot } from "./paths.ts";

/** What a boot snapshot depends on besides the images. */
export interface BootSnapshotOptions {
  memoryMib: number;
  kernelArgs: readonly string[];
  tmem: boolean;
  balloon: boolean;
  /** Bytes of the swap disk the snapshot is taken with (a fresh swap image, swapped on); 0: none. */
  swapBytes: number;
}

export interface BootSnapshot {
  state: Uint8Array;
  kernelRelease: string;
  /** Where it is cached, and whether this call made it (a cold boot) or read it. */
  path: string;
  made: boolean;
}

/** The images' identity as snapshot and save files record it. */
export function imagesKeyOf(set: Pick<ImageSet, "kernelKey" | "initrdKey" | "biosPath">): string {
  return `${set.kernelKey}.${set.initrdKey}.${basename(dirname(set.biosPath))}`;
}

function v86Version(): string {
  try {
    const require = createRequire(import.meta.url);
    return (JSON.parse(readFileSync(require.resolve("v86/package.json"), "utf8")) as { version?: string }).version ?? "?";
  } catch {
    return "?";
  }
}

/** How a boot snapshot is made (cli/snapshot-guest.ts); a change makes every cached one stale. */
const SNAPSHOT_LAYOUT = 2;

export function bootSnapshotKey(imagesKey: string, o: BootSnapshotOptions): string {
  const text = JSON.stringify({ layout: SNAPSHOT_LAYOUT, imagesKey, memoryMib: o.memoryMib, kernelArgs: o.kernelArgs, tmem: o.tmem, balloon: o.balloon, swapBytes: o.swapBytes, v86: v86Version(), format: SNAPSHOT_FORMAT_VERSION });
  return createHash("sha256").update(text).digest("hex").slice(0, 24);
}

export function bootSnapshotPath(imagesKey: string, o: BootSnapshotOptions, root = cacheRoot()): string {
  return join(root, "snapshots", `${bootSnapshotKey(imagesKey, o)}.snap`);
}

/** Reads the cached snapshot; undefined if there is none, or it failed its checks (then it is deleted). */
export function readBootSnapshot(path: string, imagesKey: string, o: BootSnapshotOptions): BootSnapshot | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch {
    return undefined;
  }
  try {
    const { header, sections } = decodeSnapshot(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path, { kind: "boot", imagesKey, memoryMib: o.memoryMib, tmem: o.tmem });
    const state = sections["machine"];
    if (!state) return undefined;
    touch(path);
    return { state, kernelRelease: header.kernelRelease, path, made: false };
  } catch (err) {
    if (!(err instanceof TmemuError)) throw err;
    try {
      unlinkSync(path);
    } catch {
      // another process may have replaced or removed it
    }
    return undefined;
  }
}

/**
 * The cached boot snapshot for these images and options, made by `make` (a cold boot that returns
 * the machine state, emulator/snapshot.ts) when the cache holds none. Two processes make it once.
 */
export async function ensureBootSnapshot(
  imagesKey: string,
  o: BootSnapshotOptions,
  make: () => Promise<{ state: Uint8Array; kernelRelease: string }>,
  root = cacheRoot(),
): Promise<BootSnapshot> {
  const path = bootSnapshotPath(imagesKey, o, root);
  // Guests of one run start at once: the first call reads or makes the snapshot, the others of
  // this process share its answer (made: false for them) instead of queueing on the file lock.
  const inFlight = pending.get(path);
  if (inFlight) return { ...(await inFlight), made: false };
  const p = readOrMake(path, imagesKey, o, make, root);
  pending.set(path, p);
  try {
    return await p;
  } finally {
    pending.delete(path);
  }
}

const pending = new Map<string, Promise<BootSnapshot>>();

async function readOrMake(path: string, imagesKey: string, o: BootSnapshotOptions, make: () => Promise<{ state: Uint8Array; kernelRelease: string }>, root: string): Promise<BootSnapshot> {
  const cached = readBootSnapshot(path, imagesKey, o);
  if (cached) return cached;
  mkdirSync(join(root, "snapshots"), { recursive: true });
  mkdirSync(join(root, "locks"), { recursive: true });
  const lock = await acquireLock(join(root, "locks", `snapshot-${basename(path, ".snap")}.lock`));
  try {
    const again = readBootSnapshot(path, imagesKey, o);
    if (again) return again;
    const { state, kernelRelease } = await make();
    const header: Omit<SnapshotHeader, "sections"> = {
      kind: "boot",
      imagesKey,
      memoryMib: o.memoryMib,
      tmem: o.tmem,
      balloon: o.balloon,
      kernelArgs: [...o.kernelArgs],
      kernelRelease,
      createdAt: new Date().toISOString(),
    };
    writeSnapshotFile(path, header, { machine: state });
    pruneSnapshots(join(root, "snapshots"));
    return { state, kernelRelease, path, made: true };
  } finally {
    await lock.release();
  }
}

/**
 * Keeps the MAX_CACHED boot snapshots used last (each is 10-40 MB; old images' ones are dead
 * weight). One validate makes about 7 (one per check's options), a default run 2, a bench one per
 * configuration and its probe: fewer would make them again and again.
 */
export const MAX_CACHED = 32;

/** Marks a snapshot as used now (its mtime), for pruneSnapshots. */
function touch(path: string): void {
  try {
    const now = new Date();
    utimesSync(path, now, now);
  } catch {
    // removed meanwhile: it is made again when next needed
  }
}

function pruneSnapshots(dir: string): void {
  const files = readdirSync(dir)
    .filter((n) => n.endsWith(".snap"))
    .map((n) => ({ path: join(dir, n), mtime: statSync(join(dir, n)).mtimeMs }))
    .sort((a, b) => b.mtime - a.mtime);
  for (const f of files.slice(MAX_CACHED)) {
    try {
      unlinkSync(f.path);
    } catch {
      // already gone
    }
  }
}
