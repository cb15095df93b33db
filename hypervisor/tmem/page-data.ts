/**
 * The data of the store's pages: compression (codec.ts), deduplication and the size-class
 * allocator (zpool.ts), behind handles. The store (store.ts) keeps one handle per page that is not
 * same-filled and knows nothing of how its bytes are kept.
 *
 * A put is two steps, so that the store can evict between them without compressing twice:
 * prepare(page) finds a stored copy to share (deduplication) or compresses the page into a pending
 * object; commit(frameLimit) finds room for the pending object (NO_HANDLE: none within the limit;
 * the store evicts or compacts and calls commit again).
 *
 * Deduplication: identical pages put in one dedup scope share one object. A page's hash picks a
 * candidate, which is decompressed and compared in full before it is shared; a handle counts its
 * references, and release() frees the object with the last one. Objects are never written after
 * commit, so a flush or replace of one page (a release, then maybe a new object) never changes
 * another page that shared it: copy on flush. The store chooses the scope: by default one client
 * and pool type (no sharing, and so no timing channel, across guests), or one for all clients with
 * cross-guest dedup on (Dedup Est Machina, Flip Feng Shui: only for guests of one trust group).
 * Persistent (pinned) and ephemeral objects never share, so eviction can always free what it drops.
 */

import { BugIndicatingError } from "../errors.ts";
import { compressPage, decompressPage, hashPage } from "./codec.ts";
import { compactionThreshold } from "./eviction.ts";
import { FRAME_SIZE } from "./slab.ts";
import { NO_HANDLE, Zpool, type ZpoolStats } from "./zpool.ts";
import type { Slab } from "./slab.ts";

/** A dedup scope that shares with nothing. */
export const NO_DEDUP = -1;

export interface PageDataStats extends ZpoolStats {
  /** Puts that shared an object already stored (after a full compare). */
  dedupHits: number;
  /** Hash matches whose full compare differed. */
  dedupCollisions: number;
  /** Page references to objects (pages that are not same-filled). */
  references: number;
  /** Puts stored compressed, and stored whole (compression off, skipped or not worth it). */
  compressedPuts: number;
  wholePuts: number;
}

export class PageData {
  readonly zpool: Zpool;
  private refs = new Int32Array(1024);
  /** The dedup key of each handle, or NaN. */
  private keys = new Float64Array(1024).fill(Number.NaN);
  private readonly index = new Map<number, number>();
  private readonly page = new Uint8Array(FRAME_SIZE);
  private readonly pageWords = new Uint32Array(this.page.buffer);
  private pending: Uint8Array | undefined;
  private pendingKey = Number.NaN;
  private references = 0;
  private dedupHits = 0;
  private dedupCollisions = 0;
  private compressedPuts = 0;
  private wholePuts = 0;

  constructor(slab: Slab) {
    this.zpool = new Zpool(slab);
  }

  /**
   * Step one of a put of `page` (FRAME_SIZE bytes, left unchanged): with `scope` !== NO_DEDUP and an
   * equal page stored in that scope, takes a reference to it and returns its handle; else makes the
   * pending object (compressed if `compress` and worth it) and returns NO_HANDLE.
   */
  prepare(page: Uint8Array, words: Uint32Array, compress: boolean, scope: number): number {
    this.pending = undefined;
    this.pendingKey = Number.NaN;
    if (scope !== NO_DEDUP) {
      const key = scope * 0x1_0000_0000 + hashPage(words);
      const h = this.index.get(key);
      if (h !== undefined) {
        this.load(h, this.page);
        if (Buffer.compare(this.page, page) === 0) {
          this.refs[h]!++;
          this.references++;
          this.dedupHits++;
          return h;
        }
        this.dedupCollisions++;
      } else {
        this.pendingKey = key;
      }
    }
    this.pending = compress ? compressPage(page) : page;
    if (this.pending.length < FRAME_SIZE) this.compressedPuts++;
    else this.wholePuts++;
    return NO_HANDLE;
  }

  /** Whether the last prepare() compressed its page. */
  get pendingCompressed(): boolean {
    return this.pending !== undefined && this.pending.length < FRAME_SIZE;
  }

  /**
   * Step two: stores the pending object, taking new frames only up to `frameLimit`. Returns its
   * handle (one reference), or NO_HANDLE if there is no room; the pending object stays for a retry.
   */
  commit(frameLimit: number, pinned: boolean): number {
    const data = this.pending;
    if (data === undefined) throw new BugIndicatingError("page data: commit without a pending page");
    const h = this.zpool.alloc(data.length, frameLimit, pinned);
    if (h === NO_HANDLE) return NO_HANDLE;
    this.zpool.write(h, data);
    this.pending = undefined;
    this.grow(h);
    this.refs[h] = 1;
    this.references++;
    this.keys[h] = this.pendingKey;
    if (!Number.isNaN(this.pendingKey)) this.index.set(this.pendingKey, h);
    this.pendingKey = Number.NaN;
    return h;
  }

  /**
   * The whole-page fast path (no compression, no dedup): a put reads the guest page straight into
   * the frame of a reserved object instead of into scratch space and then the object. reserveWhole
   * takes room for a FRAME_SIZE object (one reference; NO_HANDLE if there is none within
   * `frameLimit`: take the two-step path), wholeFrame(h) is the frame to read into, and then either
   * keepWhole(h) (counted as a whole put, as commit() would have) or cancelWhole(h) (a same-filled
   * page or a failed read: frees the object, counted as nothing).
   */
  reserveWhole(frameLimit: number, pinned: boolean): number {
    const h = this.zpool.allocWhole(frameLimit, pinned);
    if (h === NO_HANDLE) return NO_HANDLE;
    this.grow(h);
    this.refs[h] = 1;
    this.references++;
    this.keys[h] = Number.NaN;
    return h;
  }

  /** The frame of reserved whole object `h` (a view of the slab, FRAME_SIZE bytes). */
  wholeFrame(h: number): Uint8Array {
    return this.zpool.read(h);
  }

  keepWhole(_h: number): void {
    this.wholePuts++;
  }

  /**
   * keepWhole(h) with dedup in `scope`: if an equal page is stored in that scope (hash, then a full
   * compare, as prepare()), frees `h` and returns that page's handle with one more reference; else
   * keeps `h`, indexed under its hash as commit() would, and returns it.
   */
  dedupWhole(h: number, scope: number): number {
    const frame = this.zpool.read(h);
    const key = scope * 0x1_0000_0000 + hashPage(this.zpool.slab.words, frame.byteOffset / 4);
    const other = this.index.get(key);
    if (other !== undefined) {
      this.load(other, this.page);
      if (Buffer.compare(this.page, frame) === 0) {
        this.cancelWhole(h);
        this.refs[other]!++;
        this.references++;
        this.dedupHits++;
        return other;
      }
      this.dedupCollisions++;
    } else {
      this.keys[h] = key;
      this.index.set(key, h);
    }
    this.wholePuts++;
    return h;
  }

  cancelWhole(h: number): void {
    if (this.refs[h] !== 1) throw new BugIndicatingError(`page data: cancel of handle ${h} with ${this.refs[h]} references`);
    this.refs[h] = 0;
    this.references--;
    this.zpool.free(h);
  }

  /** Writes the page of handle `h` into `dst` (FRAME_SIZE bytes). */
  load(h: number, dst: Uint8Array): void {
    decompressPage(this.zpool.read(h), dst);
  }

  /**
   * The page of handle `h`: a page kept whole is returned as a view of its frame (no copy), valid
   * until the next change to the store; a compressed one is decompressed into `scratch`.
   */
  pageOf(h: number, scratch: Uint8Array): Uint8Array {
    const stored = this.zpool.read(h);
    if (stored.length === FRAME_SIZE) return stored;
    decompressPage(stored, scratch);
    return scratch;
  }

  /** Drops one reference to `h`; the last one frees the object. */
  release(h: number): void {
    const n = this.refs[h]!;
    if (n < 1) throw new BugIndicatingError(`page data: release of handle ${h} with no references`);
    this.refs[h] = n - 1;
    this.references--;
    if (n > 1) return;
    const key = this.keys[h]!;
    if (!Number.isNaN(key) && this.index.get(key) === h) this.index.delete(key);
    this.keys[h] = Number.NaN;
    this.zpool.free(h);
    // Frees leave holes in zspages (a guest flushing its swap at exit): compact past the bound, as
    // zsmalloc's shrinker does, so that the frames held stay within it of what the data needs.
    if (this.zpool.compactableFrames() >= compactionThreshold(this.zpool.framesUsed)) this.zpool.compact();
  }

  referencesOf(h: number): number {
    return this.refs[h]!;
  }

  /** Bytes of the class slot object `h` occupies: what a page holding it is charged. */
  charge(h: number): number {
    return this.zpool.classFor(this.zpool.length(h)).size;
  }

  /** Stored (compressed) bytes of object `h`. */
  storedBytes(h: number): number {
    return this.zpool.length(h);
  }

  stats(): PageDataStats {
    return {
      ...this.zpool.stats(),
      dedupHits: this.dedupHits,
      dedupCollisions: this.dedupCollisions,
      references: this.references,
      compressedPuts: this.compressedPuts,
      wholePuts: this.wholePuts,
    };
  }

  /** Throws BugIndicatingError unless `expected` (handle -> references held by pages) is exact. */
  checkInvariants(expected: Map<number, number>): void {
    this.zpool.checkInvariants();
    let refs = 0;
    for (const [h, n] of expected) {
      if (this.refs[h] !== n) throw new BugIndicatingError(`page data invariant: handle ${h} has ${this.refs[h]} references, pages hold ${n}`);
      refs += n;
    }
    if (refs !== this.references) throw new BugIndicatingError("page data invariant: reference count");
    if (expected.size !== this.zpool.stats().objects) throw new BugIndicatingError("page data invariant: objects without pages");
    for (const [key, h] of this.index) {
      if (this.keys[h] !== key || !expected.has(h)) throw new BugIndicatingError(`page data invariant: dedup index entry ${key}`);
    }
  }

  private grow(h: number): void {
    if (h < this.refs.length) return;
    let n = this.refs.length;
    while (n <= h) n *= 2;
    const refs = new Int32Array(n);
    refs.set(this.refs);
    this.refs = refs;
    const keys = new Float64Array(n).fill(Number.NaN);
    keys.set(this.keys);
    this.keys = keys;
  }
}
