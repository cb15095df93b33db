/**
 * Balloon statistics a guest reports over the virtio-balloon stats queue (2), turned into the
 * shape the memory scheduler reads (BalloonStats). They are hints, not truth (STYLE.md, item 10):
 * a guest may report nothing, late, or nonsense; toBalloonStats() returns undefined rather than a
 * half-valid sample.
 *
 * Units on the wire: the virtio spec's tags SWAP_IN, SWAP_OUT, MEMFREE, MEMTOT, AVAIL and CACHES
 * are bytes; MAJFLT and MINFLT are counts. Linux 6.1's driver (drivers/virtio/virtio_balloon.c,
 * update_balloon_stats) sends pages_to_bytes(PSWPIN / PSWPOUT) for the swap tags, totalram /
 * freeram / si_mem_available() / global_node_page_state(NR_FILE_PAGES) in bytes for the memory
 * tags, and the PGMAJFAULT / PGFAULT event counters. Swap and fault counters are cumulative since
 * the guest booted. Here: KiB for the memory gauges, 4 KiB pages for swap, counts for faults.
 *
 * v86 (src/virtio_balloon.js, GetStats) hands its callback a record keyed by tag name:
 * { SWAP_IN, SWAP_OUT, MAJFLT, MINFLT, MEMFREE, MEMTOT, AVAIL, CACHES, HTLB_PGALLOC, HTLB_PGFAIL }.
 *
 * Sources: virtio spec 1.2, 5.5.6.3 "Memory Statistics Tags"; Linux include/uapi/linux/virtio_balloon.h.
 */

import { PAGE_SIZE } from "../guest-memory.ts";

/** virtio spec 5.5.6.3, VIRTIO_BALLOON_S_* (tag numbers on the wire). */
export const VIRTIO_BALLOON_S_SWAP_IN = 0;
export const VIRTIO_BALLOON_S_SWAP_OUT = 1;
export const VIRTIO_BALLOON_S_MAJFLT = 2;
export const VIRTIO_BALLOON_S_MINFLT = 3;
export const VIRTIO_BALLOON_S_MEMFREE = 4;
export const VIRTIO_BALLOON_S_MEMTOT = 5;
export const VIRTIO_BALLOON_S_AVAIL = 6;
export const VIRTIO_BALLOON_S_CACHES = 7;
export const VIRTIO_BALLOON_S_HTLB_PGALLOC = 8;
export const VIRTIO_BALLOON_S_HTLB_PGFAIL = 9;

/** Tag names as v86 spells them, indexed by tag number. */
export const VIRTIO_BALLOON_STAT_NAMES = [
  "SWAP_IN",
  "SWAP_OUT",
  "MAJFLT",
  "MINFLT",
  "MEMFREE",
  "MEMTOT",
  "AVAIL",
  "CACHES",
  "HTLB_PGALLOC",
  "HTLB_PGFAIL",
] as const;
export type VirtioBalloonStatName = (typeof VIRTIO_BALLOON_STAT_NAMES)[number];

/** What v86's GetStats callback receives: raw wire values by tag name (any may be missing). */
export type VirtioBalloonStatRecord = Partial<Record<VirtioBalloonStatName, number>>;

/**
 * One guest's balloon statistics, as the scheduler reads them. Gauges are a snapshot; counters are
 * cumulative since the guest booted (a counter that goes down means the guest rebooted).
 */
export interface BalloonStats {
  /** MemFree, KiB. */
  memFreeKib: number;
  /** MemAvailable (free + reclaimable, the kernel's estimate), KiB. */
  memAvailableKib: number;
  /** Page cache (NR_FILE_PAGES), KiB. */
  cachesKib: number;
  /** MemTotal, KiB: managed RAM; the Linux driver (without DEFLATE_ON_OOM) takes ballooned pages off it. */
  memTotalKib: number;
  /** Pages swapped in (PSWPIN), cumulative. Frontswap loads do not count here. */
  swapInPages: number;
  /** Pages swapped out (PSWPOUT), cumulative. Frontswap stores do not count here. */
  swapOutPages: number;
  /** Major faults (PGMAJFAULT), cumulative; a swap-in fault is one, frontswap or not. */
  majorFaults: number;
  /** Minor and major faults (PGFAULT), cumulative. */
  minorFaults: number;
}

const KIB = 1024;

function wireValue(v: number | undefined): number | undefined {
  return v !== undefined && Number.isFinite(v) && v >= 0 ? v : undefined;
}

/**
 * BalloonStats from the raw record v86 hands to GetStats' callback, or undefined when the guest
 * did not report MEMTOT and AVAIL (the two the scheduler cannot do without), or reported values that
 * do not fit together (AVAIL or MEMFREE above MEMTOT, MEMTOT zero). Missing counters read as 0.
 */
export function toBalloonStats(record: VirtioBalloonStatRecord): BalloonStats | undefined {
  const total = wireValue(record.MEMTOT);
  const avail = wireValue(record.AVAIL);
  if (total === undefined || avail === undefined || total === 0 || avail > total) return undefined;
  const free = wireValue(record.MEMFREE) ?? avail;
  if (free > total) return undefined;
  return {
    memFreeKib: Math.floor(free / KIB),
    memAvailableKib: Math.floor(avail / KIB),
    cachesKib: Math.floor((wireValue(record.CACHES) ?? 0) / KIB),
    memTotalKib: Math.floor(total / KIB),
    swapInPages: Math.floor((wireValue(record.SWAP_IN) ?? 0) / PAGE_SIZE),
    swapOutPages: Math.floor((wireValue(record.SWAP_OUT) ?? 0) / PAGE_SIZE),
    majorFaults: wireValue(record.MAJFLT) ?? 0,
    minorFaults: wireValue(record.MINFLT) ?? 0,
  };
}

/**
 * The page frame numbers of one inflate or deflate buffer: le32 words (virtio 1.x, VERSION_1 is
 * negotiated by v86). Trailing bytes that do not make a whole word are left out and reported.
 */
export function decodePfns(bytes: Uint8Array): { pfns: Uint32Array; trailingBytes: number } {
  const n = bytes.length >>> 2;
  const pfns = new Uint32Array(n);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < n; i++) pfns[i] = view.getUint32(i * 4, true);
  return { pfns, trailingBytes: bytes.length - n * 4 };
}
