/**
 * Guest-physical memory as the hypervisor sees it: whole 4 KiB frames, read and written by frame
 * number (pfn).
 *
 * The emulator implements GuestMemory over v86's cpu.read_blob / cpu.write_blob (DESIGN.md,
 * "Verified facts about v86": writes must go through write_blob so that the JIT drops code compiled
 * from the page). Callers range-check every frame with checkGuestFrame before calling readPage or
 * writePage: a frame number comes from a guest register and is only a hint (STYLE.md, item 10).
 * The hole 0xA0000-0xBFFFF (legacy VGA and option ROMs; GUEST_HOLE_START/END in tmem/abi.ts) is
 * never a valid frame.
 */

import { GUEST_HOLE_END, GUEST_HOLE_START, TMEM_PAGE_SHIFT, TMEM_PAGE_SIZE } from "./tmem/abi.ts";
import { BugIndicatingError } from "./errors.ts";

export const PAGE_SHIFT = TMEM_PAGE_SHIFT;
export const PAGE_SIZE = TMEM_PAGE_SIZE;

export interface GuestMemory {
  /** Size of guest RAM in bytes (v86 memory_size). */
  readonly sizeBytes: number;
  /** Copies the 4 KiB frame `pfn` into `dst` (dst.length === PAGE_SIZE). `pfn` is range-checked. */
  readPage(pfn: number, dst: Uint8Array): void;
  /** Copies `src` (src.length === PAGE_SIZE) into the frame `pfn`. `pfn` is range-checked. */
  writePage(pfn: number, src: Uint8Array): void;
}

/**
 * Whether `pfn` names a whole 4 KiB frame of guest RAM of `sizeBytes` bytes that lies outside the
 * hole 0xA0000-0xBFFFF. Rejects negative, non-integer and non-finite frame numbers.
 */
export function checkGuestFrame(pfn: number, sizeBytes: number): boolean {
  if (!Number.isSafeInteger(pfn) || pfn < 0) return false;
  const frames = Math.floor(sizeBytes / PAGE_SIZE);
  if (!(pfn < frames)) return false; // also false for a NaN size
  const start = pfn * PAGE_SIZE;
  return start + PAGE_SIZE <= GUEST_HOLE_START || start >= GUEST_HOLE_END;
}

/**
 * GuestMemory over a plain ArrayBuffer (or SharedArrayBuffer), for tests and benchmarks. It asserts
 * what real callers guarantee (a checked frame, a page-sized buffer) and throws BugIndicatingError
 * when they do not.
 */
export class ArrayGuestMemory implements GuestMemory {
  readonly sizeBytes: number;
  /** The whole guest RAM, for tests to fill and inspect. */
  readonly bytes: Uint8Array;

  constructor(sizeBytesOrBuffer: number | ArrayBuffer | SharedArrayBuffer) {
    const buffer =
      typeof sizeBytesOrBuffer === "number" ? new ArrayBuffer(sizeBytesOrBuffer) : sizeBytesOrBuffer;
    if (buffer.byteLength % PAGE_SIZE !== 0) {
      throw new RangeError(`guest memory size ${buffer.byteLength} is not a multiple of ${PAGE_SIZE}`);
    }
    this.sizeBytes = buffer.byteLength;
    this.bytes = new Uint8Array(buffer);
  }

  /** A live view of frame `pfn` (no copy), for tests. */
  page(pfn: number): Uint8Array {
    this.assertAccess(pfn, PAGE_SIZE);
    const start = pfn * PAGE_SIZE;
    return this.bytes.subarray(start, start + PAGE_SIZE);
  }

  readPage(pfn: number, dst: Uint8Array): void {
    this.assertAccess(pfn, dst.length);
    const start = pfn * PAGE_SIZE;
    dst.set(this.bytes.subarray(start, start + PAGE_SIZE));
  }

  writePage(pfn: number, src: Uint8Array): void {
    this.assertAccess(pfn, src.length);
    this.bytes.set(src, pfn * PAGE_SIZE);
  }

  private assertAccess(pfn: number, length: number): void {
    if (length !== PAGE_SIZE || !checkGuestFrame(pfn, this.sizeBytes)) {
      throw new BugIndicatingError(
        `guest memory access to frame ${pfn} (${length} bytes) was not range-checked`,
      );
    }
  }
}
