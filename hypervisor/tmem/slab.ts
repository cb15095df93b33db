/**
 * The slab: one preallocated buffer of 4 KiB frames (TMEM_PAGE_SHIFT in tmem_abi.h / abi.ts) and a
 * LIFO free list in an Int32Array. The tmem store keeps every non-same-filled page in one frame.
 *
 * There is never one ArrayBuffer per page: frame f is bytes [f * 4096, (f + 1) * 4096) of a single
 * buffer, which may be a SharedArrayBuffer so that worker threads can later map the same frames.
 * Only the frame data lives in that buffer; the allocator state (free list, allocation bitmap) is
 * private to the thread that owns the Slab, so only that thread allocates and frees.
 *
 * Freeing a frame that is not allocated (double free, or a frame never handed out) is a bug in the
 * caller and throws BugIndicatingError; framesUsed + framesFree === framesTotal always.
 */

import { TMEM_PAGE_SIZE } from "./abi.ts";
import { BugIndicatingError } from "../errors.ts";

export const FRAME_SIZE = TMEM_PAGE_SIZE;
/** 32-bit words per frame. */
export const FRAME_WORDS = TMEM_PAGE_SIZE / 4;
/** alloc() result when every frame is in use. */
export const NO_FRAME = -1;

export class Slab {
  readonly framesTotal: number;
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  /** All frames, byte view. Frame f starts at f * FRAME_SIZE. */
  readonly bytes: Uint8Array;
  /** All frames, 32-bit word view (native byte order). Frame f starts at f * FRAME_WORDS. */
  readonly words: Uint32Array;

  /** freeStack[0 .. freeTop) are the free frames; the top is handed out next. */
  private readonly freeStack: Int32Array;
  private freeTop: number;
  /** 1 while a frame is allocated: catches double frees and frees of frames never handed out. */
  private readonly allocated: Uint8Array;

  /** A slab of `frames` frames over a new ArrayBuffer, or a SharedArrayBuffer if `shared`. */
  static allocate(frames: number, options: { shared?: boolean } = {}): Slab {
    if (!Number.isSafeInteger(frames) || frames < 0 || frames > 0x7fffffff / FRAME_SIZE) {
      throw new RangeError(`slab size ${frames} frames is out of range`);
    }
    const bytes = frames * FRAME_SIZE;
    return new Slab(options.shared === true ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));
  }

  /** A slab over `buffer`, whose length must be a whole number of frames. All frames start free. */
  constructor(buffer: ArrayBuffer | SharedArrayBuffer) {
    if (buffer.byteLength % FRAME_SIZE !== 0) {
      throw new RangeError(`slab buffer of ${buffer.byteLength} bytes is not a whole number of frames`);
    }
    const frames = buffer.byteLength / FRAME_SIZE;
    this.framesTotal = frames;
    this.buffer = buffer;
    this.bytes = new Uint8Array(buffer);
    this.words = new Uint32Array(buffer);
    this.freeStack = new Int32Array(frames);
    this.allocated = new Uint8Array(frames);
    // Hand frames out in ascending order at first: stack top is frame 0.
    for (let i = 0; i < frames; i++) this.freeStack[i] = frames - 1 - i;
    this.freeTop = frames;
  }

  get framesFree(): number {
    return this.freeTop;
  }

  get framesUsed(): number {
    return this.framesTotal - this.freeTop;
  }

  /** Takes a free frame, or returns NO_FRAME when none is left. The frame's bytes are stale. */
  alloc(): number {
    if (this.freeTop === 0) return NO_FRAME;
    const frame = this.freeStack[--this.freeTop]!;
    this.allocated[frame] = 1;
    return frame;
  }

  /** Gives frame `frame` back. Throws BugIndicatingError if it is not allocated. */
  free(frame: number): void {
    if (!this.isAllocated(frame)) {
      throw new BugIndicatingError(`slab: free of frame ${frame}, which is not allocated`);
    }
    this.allocated[frame] = 0;
    this.freeStack[this.freeTop++] = frame;
  }

  isAllocated(frame: number): boolean {
    return Number.isInteger(frame) && frame >= 0 && frame < this.framesTotal && this.allocated[frame] === 1;
  }

  /** A view of allocated frame `frame` (no copy). Throws BugIndicatingError if it is not allocated. */
  frame(frame: number): Uint8Array {
    if (!this.isAllocated(frame)) {
      throw new BugIndicatingError(`slab: access to frame ${frame}, which is not allocated`);
    }
    const start = frame * FRAME_SIZE;
    return this.bytes.subarray(start, start + FRAME_SIZE);
  }
}
