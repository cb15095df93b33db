/**
 * Per-disk I/O counters for v86's IDE drives.
 *
 * v86's `ide-read-end` events cannot tell drives apart (DESIGN.md), so tmemu wraps the `get` and
 * `set` of each drive's buffer instead: every call is one request, its length the bytes moved.
 */
import type { V86DiskBuffer } from "./v86-internals.ts";

export const SECTOR_BYTES = 512;

export interface DiskCounters {
  sectorsRead: number;
  sectorsWritten: number;
  readRequests: number;
  writeRequests: number;
}

export function emptyDiskCounters(): DiskCounters {
  return { sectorsRead: 0, sectorsWritten: 0, readRequests: 0, writeRequests: 0 };
}

/** Wraps `buffer` in place so that its traffic is added to `counters`. */
export function countDiskTraffic(buffer: V86DiskBuffer, counters: DiskCounters): void {
  const get = buffer.get.bind(buffer);
  const set = buffer.set.bind(buffer);
  buffer.get = (start, len, fn) => {
    counters.readRequests++;
    counters.sectorsRead += Math.ceil(len / SECTOR_BYTES);
    get(start, len, fn);
  };
  buffer.set = (start, slice, fn) => {
    counters.writeRequests++;
    counters.sectorsWritten += Math.ceil(slice.length / SECTOR_BYTES);
    set(start, slice, fn);
  };
}
