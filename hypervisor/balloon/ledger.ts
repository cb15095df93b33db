/**
 * BalloonLedger: the guest page frames one guest has ballooned out, i.e. given back to the host.
 *
 * What it decides: which frames the host may consider its own. v86's virtio-balloon device counts
 * inflated pages into `actual` and drops their frame numbers (DESIGN.md, "Verified facts about
 * v86"); the emulator hands the frame numbers it sees on the inflate queue (0) and the deflate
 * queue (1) to this ledger, which keeps them. A frame accepted on inflate is zeroed in guest memory
 * at once, so no guest data lingers in memory the host now accounts as returned (as fallow memory
 * lent to the tmem store); a frame is given back on deflate.
 *
 * Units: frames (pfn) of 4 KiB pages, PAGE_SIZE from guest-memory.ts; virtio-balloon's
 * VIRTIO_BALLOON_PFN_SHIFT is 12 and i386 Linux pages are 4 KiB, so one balloon pfn is one guest
 * frame. Sizes in bytes.
 *
 * Trust: frame numbers come from the guest and are hints (STYLE.md, item 10). Inflate ignores and
 * counts a frame out of guest RAM, in the hole 0xA0000-0xBFFFF, not an integer, or already held
 * (including a duplicate within one batch); deflate ignores and counts a frame it does not hold.
 * Nothing a guest sends makes these methods throw.
 *
 * Structure: one bit per guest frame (Uint32Array; a 2 GiB guest has 512 Ki frames = 64 KiB of
 * bitmap) plus a count of set bits.
 *
 * Sources: virtio spec 1.2, section 5.5 "Traditional Memory Balloon Device" (inflateq/deflateq carry
 * arrays of le32 page frame numbers); Linux drivers/virtio/virtio_balloon.c (fill_balloon /
 * leak_balloon send batches of up to VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256 pfns).
 */

import { BugIndicatingError } from "../errors.ts";
import { checkGuestFrame, PAGE_SIZE, type GuestMemory } from "../guest-memory.ts";
import { TmemuError } from "../user-errors.ts";

/** What one inflate or deflate batch did. */
export interface BalloonBatchResult {
  /** Frames that changed hands (taken by the host on inflate, given back on deflate). */
  accepted: number;
  /** Frames ignored (bad, duplicate, or not held). */
  rejected: number;
}

/**
 * JSON shape of a ledger (toJSON):
 * {
 *   "frames": 32768,          // guest frames the bitmap covers (guest RAM / 4 KiB)
 *   "pages": 1024,            // frames held now (ballooned out)
 *   "bytes": 4194304,         // pages * 4096
 *   "inflatedCount": 2048,    // frames accepted on inflate, ever
 *   "inflateFails": 3,        // frames ignored on inflate (out of range, hole, already held)
 *   "deflatedCount": 1024,    // frames given back on deflate, ever
 *   "deflateFails": 1,        // frames ignored on deflate (not held)
 *   "badFrames": 4            // inflateFails + deflateFails
 * }
 */
export interface BalloonLedgerJson {
  frames: number;
  pages: number;
  bytes: number;
  inflatedCount: number;
  inflateFails: number;
  deflatedCount: number;
  deflateFails: number;
  badFrames: number;
}

/** One run of consecutive held frames, in saved state. */
export interface FrameRun {
  firstPfn: number;
  count: number;
}

/**
 * Saved state (STYLE.md, item 7): named fields, frames as runs, so that a snapshot of a guest can
 * carry its balloon. Counters are kept too.
 */
export interface BalloonLedgerState {
  version: 1;
  sizeBytes: number;
  runs: FrameRun[];
  inflatedCount: number;
  inflateFails: number;
  deflatedCount: number;
  deflateFails: number;
}

/** A page of zeros, written over every frame the host takes. Never written to. */
const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

export class BalloonLedger {
  /** Size of the guest RAM the ledger covers, in bytes. */
  readonly sizeBytes: number;
  /** Number of guest frames the bitmap covers. */
  readonly frames: number;
  private readonly bits: Uint32Array;
  private held = 0;

  /** Frames accepted on inflate, ever. */
  inflatedCount = 0;
  /** Frames ignored on inflate. */
  inflateFails = 0;
  /** Frames given back on deflate, ever. */
  deflatedCount = 0;
  /** Frames ignored on deflate. */
  deflateFails = 0;

  /** A ledger for a guest of `sizeBytes` of RAM (v86 memory_size), with nothing held. */
  constructor(sizeBytes: number) {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % PAGE_SIZE !== 0) {
      throw new TmemuError(
        "BAD_INPUT",
        `balloon: guest memory size ${sizeBytes} bytes is not a positive multiple of ${PAGE_SIZE}`,
        "give the guest a whole number of MiB of memory",
      );
    }
    this.sizeBytes = sizeBytes;
    this.frames = sizeBytes / PAGE_SIZE;
    this.bits = new Uint32Array(Math.ceil(this.frames / 32));
  }

  /** Frames held now (ballooned out, returned to the host). */
  get pages(): number {
    return this.held;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.held * PAGE_SIZE;
  }

  /** Frames ignored on inflate or deflate, ever. */
  get badFrames(): number {
    return this.inflateFails + this.deflateFails;
  }

  /** Whether frame `pfn` is held (false for anything that is not a valid guest frame). */
  has(pfn: number): boolean {
    return checkGuestFrame(pfn, this.sizeBytes) && this.testBit(pfn);
  }

  /**
   * The guest put `pfns` on the inflate queue: takes each valid frame that is not held yet, zeroes
   * it in `memory` and records it; ignores and counts the others. `memory` must be this guest's.
   */
  inflate(pfns: Iterable<number>, memory: GuestMemory): BalloonBatchResult {
    if (memory.sizeBytes !== this.sizeBytes) {
      throw new BugIndicatingError(
        `balloon ledger for ${this.sizeBytes} bytes given guest memory of ${memory.sizeBytes} bytes`,
      );
    }
    let accepted = 0;
    let rejected = 0;
    for (const pfn of pfns) {
      if (!checkGuestFrame(pfn, this.sizeBytes) || this.testBit(pfn)) {
        rejected++;
        continue;
      }
      memory.writePage(pfn, ZERO_PAGE);
      this.setBit(pfn);
      accepted++;
    }
    this.held += accepted;
    this.inflatedCount += accepted;
    this.inflateFails += rejected;
    return { accepted, rejected };
  }

  /** The guest put `pfns` on the deflate queue: gives back each held frame, counts the others. */
  deflate(pfns: Iterable<number>): BalloonBatchResult {
    let accepted = 0;
    let rejected = 0;
    for (const pfn of pfns) {
      if (!checkGuestFrame(pfn, this.sizeBytes) || !this.testBit(pfn)) {
        rejected++;
        continue;
      }
      this.clearBit(pfn);
      accepted++;
    }
    this.held -= accepted;
    this.deflatedCount += accepted;
    this.deflateFails += rejected;
    return { accepted, rejected };
  }

  /**
   * Gives every frame back at once (the guest rebooted or its balloon device was reset: a fresh
   * driver owns all of its RAM again). Counted in deflatedCount. Returns the number of frames.
   */
  releaseAll(): number {
    const n = this.held;
    this.bits.fill(0);
    this.held = 0;
    this.deflatedCount += n;
    return n;
  }

  /** The held frames in increasing order. */
  *heldFrames(): Generator<number> {
    const bits = this.bits;
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w]!;
      while (word !== 0) {
        const low = word & -word;
        yield w * 32 + (31 - Math.clz32(low));
        word ^= low;
      }
    }
  }

  toJSON(): BalloonLedgerJson {
    return {
      frames: this.frames,
      pages: this.held,
      bytes: this.bytes,
      inflatedCount: this.inflatedCount,
      inflateFails: this.inflateFails,
      deflatedCount: this.deflatedCount,
      deflateFails: this.deflateFails,
      badFrames: this.badFrames,
    };
  }

  save(): BalloonLedgerState {
    const runs: FrameRun[] = [];
    let last: FrameRun | undefined;
    for (const pfn of this.heldFrames()) {
      if (last !== undefined && last.firstPfn + last.count === pfn) {
        last.count++;
      } else {
        last = { firstPfn: pfn, count: 1 };
        runs.push(last);
      }
    }
    return {
      version: 1,
      sizeBytes: this.sizeBytes,
      runs,
      inflatedCount: this.inflatedCount,
      inflateFails: this.inflateFails,
      deflatedCount: this.deflatedCount,
      deflateFails: this.deflateFails,
    };
  }

  /**
   * A ledger from saved state. Guest memory is not touched: the frames were zeroed when they were
   * taken, and the snapshot restores guest memory as it was. Throws TmemuError for a state that is
   * not one save() could have produced.
   */
  static restore(state: BalloonLedgerState): BalloonLedger {
    const bad = (why: string): TmemuError =>
      new TmemuError("BAD_INPUT", `balloon: saved ledger state is invalid: ${why}`, "restore from an unmodified snapshot");
    if (state.version !== 1) throw bad(`version ${String(state.version)}`);
    const ledger = new BalloonLedger(state.sizeBytes);
    for (const run of state.runs) {
      if (!Number.isSafeInteger(run.count) || run.count < 1) throw bad(`run of ${run.count} frames`);
      for (let pfn = run.firstPfn; pfn < run.firstPfn + run.count; pfn++) {
        if (!checkGuestFrame(pfn, ledger.sizeBytes) || ledger.testBit(pfn)) throw bad(`frame ${pfn}`);
        ledger.setBit(pfn);
        ledger.held++;
      }
    }
    for (const key of ["inflatedCount", "inflateFails", "deflatedCount", "deflateFails"] as const) {
      const v = state[key];
      if (!Number.isSafeInteger(v) || v < 0) throw bad(`${key} ${v}`);
      ledger[key] = v;
    }
    return ledger;
  }

  private testBit(pfn: number): boolean {
    return ((this.bits[pfn >>> 5]! >>> (pfn & 31)) & 1) !== 0;
  }

  private setBit(pfn: number): void {
    this.bits[pfn >>> 5]! |= 1 << (pfn & 31);
  }

  private clearBit(pfn: number): void {
    this.bits[pfn >>> 5]! &= ~(1 << (pfn & 31));
  }
}
