/**
 * Guests that start from snapshots and are saved into them: the composition of emulator/ (Guest,
 * machine state, snapshot files), guest-images/snapshots.ts (the boot-snapshot cache) and
 * hypervisor/tmem (the device, the client's saved state).
 *
 * - `startGuest` (this thread: boot, validate) and `startGuestOn` (a worker thread per guest, or
 *   this thread with threads off: run, bench) boot a guest cold, or (the default) restore the cached
 *   boot snapshot and let the guest take up this run's disks; both go through tmem-guest.ts's boot. A guest from the boot snapshot is a new tmem client: its
 *   device is put into "reset pending" (tmem_abi.h, PROBE and reset) before its vCPU runs, so its
 *   kernel learns at its first op that its pools are gone and probes and re-creates them.
 * - `saveGuest` writes one file (emulator/snapshot-file.ts, kind "save"): the machine state, the
 *   disks and the tmem client (client-state.ts: pools, weights, persistent pages).
 * - `restoreGuest` starts a guest from such a file in this process: same memory size and images,
 *   the disks of the file, and the client imported into a new client of `store` before the vCPU
 *   runs (no reset: the kernel's pool ids are valid again).
 */
import type { Guest, GuestImages, GuestRestore } from "../emulator/guest.ts";
import type { GuestApi } from "../emulator/threaded-guest.ts";
import { SNAPSHOT_SWAP_CHECK } from "../emulator/snapshot.ts";
import { packSparse, readSnapshotFile, unpackSparse, writeSnapshotFile, type SnapshotHeader } from "../emulator/snapshot-file.ts";
import { ensureBootSnapshot, type BootSnapshotOptions } from "../guest-images/snapshots.ts";
import { encodeClientState, importClientState } from "../hypervisor/tmem/client-state.ts";
import { TmemDevice } from "../hypervisor/tmem/device.ts";
import { TmemStore, type CreateClientOptions } from "../hypervisor/tmem/store.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { bootTmemGuest, bootTmemGuestOn, type TmemGuest, type TmemGuestOptions } from "./tmem-guest.ts";

export interface StartGuestOptions extends Omit<TmemGuestOptions, "restore" | "snapshotable"> {
  /** The images' identity (guest-images/snapshots.ts imagesKeyOf): the boot snapshot's cache key. */
  imagesKey: string;
  /** Boot the kernel (no snapshot is read or made). */
  coldBoot: boolean;
}

/** How a guest started: "cold", "snapshot" (from the cached boot snapshot), "made" (a cold boot made the snapshot, then a restore), "restored" (a save file or a migration). */
export type GuestStart = "cold" | "snapshot" | "made" | "restored";

export interface StartedGuest<G extends GuestApi = Guest> extends TmemGuest<G> {
  start: GuestStart;
}

/**
 * The boot snapshot for these options: taken with a fresh swap image of this run's swap size,
 * swapped on (after the restore this run's fresh image takes its place and nothing is left to do),
 * and with no data disk (its size follows the files: it is found by a rescan).
 */
function bootSnapshotOptions(o: StartGuestOptions): BootSnapshotOptions {
  return { memoryMib: o.memoryMib, kernelArgs: o.kernelArgs ?? [], balloon: o.balloon ?? true, tmem: o.store !== undefined, swapBytes: o.swapDisk?.byteLength ?? 0 };
}

/** Cold boots a guest (in this thread) with no disk and takes its state: what the boot-snapshot cache keeps. */
async function makeBootSnapshot(o: StartGuestOptions): Promise<{ state: Uint8Array; kernelRelease: string }> {
  const { dataDisk: _d, swapDisk, onConsole: _c, onDevice: _o, client: _cl, store, imagesKey: _k, coldBoot: _cb, ...rest } = o;
  const scratch = store ? new TmemStore({ budgetMib: 4 }) : undefined;
  // A pristine copy of this run's swap image: init swaps it on; a later run's fresh image of the
  // same size is then equivalent (snapshot.ts diskPickupCommand).
  const freshSwap = swapDisk ? swapDisk.slice() : undefined;
  const tg = await bootTmemGuest({ ...rest, snapshotable: true, ...(scratch ? { store: scratch } : {}), ...(freshSwap ? { swapDisk: freshSwap } : {}), name: `${o.name}-snapshot` });
  try {
    if (freshSwap) await tg.guest.runChecked(SNAPSHOT_SWAP_CHECK, { timeoutMs: o.bootTimeoutMs ?? 120_000 });
    const state = await tg.guest.saveState();
    return { state, kernelRelease: tg.guest.kernelRelease };
  } finally {
    await tg.dispose();
  }
}

/**
 * The one way a guest starts, cold or from the boot snapshot (see the header), whichever thread
 * runs it: `boot` is tmem-guest.ts's bootTmemGuest (this thread) or bootTmemGuestOn (a worker).
 */
async function startWith<G extends GuestApi>(o: StartGuestOptions, boot: (opts: TmemGuestOptions) => Promise<TmemGuest<G>>): Promise<StartedGuest<G>> {
  const { imagesKey: _k, coldBoot, onDevice, ...rest } = o;
  let start: GuestStart = "cold";
  let restore: GuestRestore | undefined;
  if (!coldBoot) {
    const snap = await ensureBootSnapshot(o.imagesKey, bootSnapshotOptions(o), () => makeBootSnapshot(o));
    restore = { state: snap.state, kernelRelease: snap.kernelRelease, pickUpDisks: true, knownDisks: { data: false, swap: o.swapDisk !== undefined } };
    start = snap.made ? "made" : "snapshot";
  }
  const tg = await boot({
    ...rest,
    snapshotable: true,
    ...(restore ? { restore } : {}),
    onDevice: (d) => {
      // A guest from the boot snapshot is a new client: its kernel must re-probe before any op.
      if (restore) d.requireReprobe();
      onDevice?.(d);
    },
  });
  return { ...tg, start };
}

/** Starts a guest in this thread (tmemu boot). */
export function startGuest(o: StartGuestOptions): Promise<StartedGuest> {
  return startWith(o, bootTmemGuest);
}

/** Starts a guest in a worker thread of its own when `threads` is true (run, bench, validate). */
export function startGuestOn(o: StartGuestOptions & { threads: boolean; hangTimeoutMs?: number }): Promise<StartedGuest<GuestApi>> {
  const { threads, hangTimeoutMs, ...rest } = o;
  return startWith(rest, (opts) => bootTmemGuestOn({ ...opts, threads, ...(hangTimeoutMs !== undefined ? { hangTimeoutMs } : {}) }));
}

export interface SaveInfo {
  bytes: number;
  persistentPages: number;
  machineBytes: number;
}

/**
 * Pauses the guest and writes it to `path`: machine, disks, tmem client. The guest stays paused
 * (the caller disposes it, or resumes it). `running` is a command in flight, to go on after a restore.
 */
export async function saveGuest(
  path: string,
  g: { guest: Guest; device: TmemDevice | undefined; store: TmemStore | undefined },
  info: { imagesKey: string; kernelArgs: string[]; balloon: boolean; running?: { id: string; command: string } },
): Promise<SaveInfo> {
  const machine = await g.guest.saveState();
  const disks = g.guest.saveDisks();
  const client = g.device && g.store ? encodeClientState(g.store, g.device.clientId, g.device.handler.probed) : undefined;
  const persistentPages = g.device && g.store ? g.store.clientMetrics(g.device.clientId).pagesPersistent : 0;
  const header: Omit<SnapshotHeader, "sections"> = {
    kind: "save",
    imagesKey: info.imagesKey,
    memoryMib: g.guest.memoryMib,
    tmem: g.device !== undefined,
    balloon: info.balloon,
    kernelArgs: info.kernelArgs,
    kernelRelease: g.guest.kernelRelease,
    createdAt: new Date().toISOString(),
    ...(info.running ? { running: info.running } : {}),
  };
  const bytes = writeSnapshotFile(path, header, {
    machine,
    ...(disks.data ? { "data-disk": packSparse(disks.data) } : {}),
    ...(disks.swap ? { "swap-disk": packSparse(disks.swap) } : {}),
    ...(client ? { "tmem-client": client } : {}),
  });
  return { bytes, persistentPages, machineBytes: machine.byteLength };
}

export interface RestoredGuest extends StartedGuest {
  header: SnapshotHeader;
  /** Persistent pages imported into the new client. */
  persistentPages: number;
}

/** What a restore needs besides the images: from a file (restoreGuest) or a migration (cli/migrate.ts). */
export interface SavedGuestParts {
  header: Pick<SnapshotHeader, "memoryMib" | "kernelArgs" | "balloon" | "kernelRelease">;
  /** A promise when it is still on its way (a migration): the emulator is made meanwhile. */
  machine: Uint8Array | Promise<Uint8Array>;
  /** Used in place: a migration fills them before `machine` resolves. */
  dataDisk?: Uint8Array;
  swapDisk?: Uint8Array;
  /**
   * Fills the new (empty) client as soon as its device exists (before the machine state is
   * restored and the vCPU runs); returns whether the saved kernel had probed. Absent: the kernel
   * must re-probe.
   */
  importClient?: (store: TmemStore, clientId: number) => boolean;
}

/** Starts a saved guest in this process (see the header): its disks, its machine, its tmem client. */
export async function startSavedGuest(
  parts: SavedGuestParts,
  o: { images: GuestImages; imagesKey: string; name: string; store: TmemStore | undefined; client?: CreateClientOptions; bootTimeoutMs: number; onConsole?: (text: string) => void },
): Promise<StartedGuest & { persistentPages: number }> {
  let persistentPages = 0;
  const tg = await bootTmemGuest({
    images: o.images,
    name: o.name,
    memoryMib: parts.header.memoryMib,
    kernelArgs: parts.header.kernelArgs,
    balloon: parts.header.balloon,
    bootTimeoutMs: o.bootTimeoutMs,
    restore: { state: parts.machine, kernelRelease: parts.header.kernelRelease, pickUpDisks: false },
    ...(parts.dataDisk ? { dataDisk: parts.dataDisk } : {}),
    ...(parts.swapDisk ? { swapDisk: parts.swapDisk } : {}),
    ...(o.store ? { store: o.store } : {}),
    ...(o.client ? { client: o.client } : {}),
    ...(o.onConsole ? { onConsole: o.onConsole } : {}),
    onDevice: (d) => {
      if (parts.importClient && o.store) {
        d.handler.restoreProbed(parts.importClient(o.store, d.clientId));
      } else {
        d.requireReprobe(); // saved without tmem state: the kernel must start over
      }
    },
  });
  if (tg.device && o.store) persistentPages = o.store.clientMetrics(tg.device.clientId).pagesPersistent;
  return { ...tg, start: "restored", persistentPages };
}

/** Reads, checks and restores a saved guest (see the header). */
export async function restoreGuest(
  path: string,
  o: { images: GuestImages; imagesKey: string; name: string; store: TmemStore | undefined; client?: CreateClientOptions; bootTimeoutMs: number; onConsole?: (text: string) => void },
): Promise<RestoredGuest> {
  const { header, sections } = readSnapshotFile(path, { kind: "save", imagesKey: o.imagesKey, tmem: o.store !== undefined });
  const machine = sections["machine"];
  if (!machine) throw new TmemuError("BAD_SNAPSHOT", `${path}: it holds no machine state`, "give a file written by tmemu boot --save");
  const client = sections["tmem-client"];
  const started = await startSavedGuest(
    {
      header,
      machine,
      ...(sections["data-disk"] ? { dataDisk: unpackSparse(sections["data-disk"], path) } : {}),
      ...(sections["swap-disk"] ? { swapDisk: unpackSparse(sections["swap-disk"], path) } : {}),
      ...(client ? { importClient: (store: TmemStore, clientId: number) => importClientState(store, clientId, client).probed } : {}),
    },
    o,
  );
  return { ...started, header };
}
