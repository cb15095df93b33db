/**
 * The whole-page fast path of a put (store.ts putWhole): when the put does not compress and a frame
 * is free within the budget, the guest page is read straight into its frame, not into scratch
 * space first. These tests check that the path is taken where it should be and that what it
 * stores, counts and gives back is what the two-step path would have.
 */

import { describe, expect, it } from "vitest";
import { ArrayGuestMemory, PAGE_SIZE } from "../../../hypervisor/guest-memory.ts";
import { TMEM_ENOSPC, TMEM_HIT, TMEM_MISS, TMEM_POOL_PERSIST } from "../../../hypervisor/tmem/abi.ts";
import { TmemStore, type TmemStoreOptions } from "../../../hypervisor/tmem/store.ts";

const FRAMES = 8;
const SRC = 16;
const DST = 64;

/** Guest memory that records the buffer each readPage fills, and can be told to fail. */
class WatchedMemory extends ArrayGuestMemory {
  readonly reads: ArrayBufferLike[] = [];
  failReads = false;

  override readPage(pfn: number, dst: Uint8Array): void {
    this.reads.push(dst.buffer);
    if (this.failReads) throw new Error("guest memory: read failed");
    super.readPage(pfn, dst);
  }

  /** Whether the last read went into a buffer of the slab's size (a frame), not a scratch page. */
  lastReadIntoSlab(): boolean {
    return this.reads[this.reads.length - 1]!.byteLength === FRAMES * PAGE_SIZE;
  }
}

function setup(options: Partial<TmemStoreOptions> = { compression: false, dedup: "off" }, flags = 0) {
  const store = new TmemStore({ budgetFrames: FRAMES, ...options } as TmemStoreOptions);
  const client = store.createClient("g");
  const pool = store.newPool(client, flags, 0, 0, 0, 0);
  expect(pool).toBe(0);
  const memory = new WatchedMemory(1 << 20);
  const fill = (seed: number): Uint8Array => {
    const page = memory.page(SRC);
    for (let i = 0; i < PAGE_SIZE; i++) page[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
    return page.slice();
  };
  const put = (index: number, obj = 1): number => store.putPage(client, pool, obj, 0, index, memory, SRC);
  const get = (index: number, obj = 1): [number, Uint8Array] => {
    memory.page(DST).fill(0xee);
    const r = store.getPage(client, pool, obj, 0, index, memory, DST);
    return [r, memory.page(DST).slice()];
  };
  return { store, client, memory, fill, put, get };
}

describe("whole-page put fast path", () => {
  it("reads the guest page straight into a frame when compression and dedup are off", () => {
    const { store, memory, fill, put, get } = setup();
    const bytes = fill(1);
    expect(put(0)).toBe(TMEM_HIT);
    expect(memory.lastReadIntoSlab()).toBe(true);
    const m = store.metrics();
    expect([m.framesUsed, m.pages, m.wholePuts, m.compressedPuts, m.sameFilledPages]).toEqual([1, 1, 1, 0, 0]);
    fill(2); // the guest reuses its frame: the store's copy must not change
    expect(get(0)).toEqual([TMEM_HIT, bytes]);
    expect(store.metrics().framesUsed).toBe(0);
    store.checkInvariants();
  });

  it("keeps a same-filled page as its word and gives the frame back", () => {
    const { store, memory, put, get } = setup();
    new Uint32Array(memory.bytes.buffer, SRC * PAGE_SIZE, PAGE_SIZE / 4).fill(0xdeadbeef);
    const expected = memory.page(SRC).slice();
    expect(put(0)).toBe(TMEM_HIT);
    expect(memory.lastReadIntoSlab()).toBe(true);
    const m = store.metrics();
    expect([m.framesUsed, m.pages, m.sameFilledPages, m.wholePuts]).toEqual([0, 1, 1, 0]);
    store.checkInvariants();
    memory.page(SRC).fill(0);
    expect(get(0)).toEqual([TMEM_HIT, expected]);
  });

  it("replaces a page's data, same-filled or not, without leaking frames", () => {
    const { store, fill, put, get, memory } = setup();
    fill(1);
    expect(put(0)).toBe(TMEM_HIT);
    memory.page(SRC).fill(0);
    expect(put(0)).toBe(TMEM_HIT); // data -> same-filled
    expect([store.metrics().framesUsed, store.metrics().sameFilledPages]).toEqual([0, 1]);
    const bytes = fill(3);
    expect(put(0)).toBe(TMEM_HIT); // same-filled -> data
    const replaced = fill(4);
    expect(put(0)).toBe(TMEM_HIT); // data -> data
    expect([store.metrics().framesUsed, store.metrics().pages, store.metrics().sameFilledPages]).toEqual([1, 1, 0]);
    store.checkInvariants();
    expect(get(0)).toEqual([TMEM_HIT, replaced]);
    expect(bytes).not.toEqual(replaced);
  });

  it("a failing guest read leaks no frame and removes the page at the handle", () => {
    const { store, memory, fill, put, get } = setup();
    fill(1);
    expect(put(0)).toBe(TMEM_HIT);
    memory.failReads = true;
    expect(() => put(0)).toThrow("read failed");
    expect(() => put(1)).toThrow("read failed");
    memory.failReads = false;
    const m = store.metrics();
    expect([m.framesUsed, m.pages]).toEqual([0, 0]);
    store.checkInvariants();
    expect(get(0)[0]).toBe(TMEM_MISS);
  });

  it("takes the two-step path in a full store (a same-filled page evicts nothing)", () => {
    const { store, memory, fill, put } = setup();
    for (let i = 0; i < FRAMES; i++) {
      fill(i);
      expect(put(i)).toBe(TMEM_HIT);
    }
    memory.page(SRC).fill(0);
    expect(put(100)).toBe(TMEM_HIT);
    expect(memory.lastReadIntoSlab()).toBe(false);
    expect([store.metrics().evictions, store.metrics().pages]).toEqual([0, FRAMES + 1]);
    fill(99);
    expect(put(101)).toBe(TMEM_HIT);
    expect(store.metrics().evictions).toBe(1);
    store.checkInvariants();
  });

  it("persistent pages count against the allowance as whole pages", () => {
    const store = new TmemStore({ budgetFrames: FRAMES, compression: false, dedup: "off" });
    const client = store.createClient("g", { persistentAllowancePages: 2 });
    const pool = store.newPool(client, TMEM_POOL_PERSIST, 0, 0, 0, 0);
    const memory = new WatchedMemory(1 << 20);
    for (let i = 0; i < 3; i++) {
      memory.page(SRC).fill(i + 1);
      memory.page(SRC)[7] = 0; // not same-filled
      expect(store.putPage(client, pool, 1, 0, i, memory, SRC)).toBe(i < 2 ? TMEM_HIT : TMEM_ENOSPC);
    }
    expect(store.metrics().persistentFrames).toBe(2);
    store.checkInvariants();
  });

  it("with dedup on, shares an equal page (full compare) as the two-step path would", () => {
    const { store, memory, fill, put, get } = setup({ compression: false, dedup: "client" });
    const a = fill(1);
    expect(put(0)).toBe(TMEM_HIT);
    expect(memory.lastReadIntoSlab()).toBe(true);
    expect(put(1)).toBe(TMEM_HIT); // the same page: shared, its frame given back
    expect(memory.lastReadIntoSlab()).toBe(true);
    let m = store.metrics();
    expect([m.framesUsed, m.pages, m.dedupHits, m.wholePuts]).toEqual([1, 2, 1, 1]);
    const b = fill(2);
    expect(put(2)).toBe(TMEM_HIT);
    m = store.metrics();
    expect([m.framesUsed, m.dedupHits, m.wholePuts]).toEqual([2, 1, 2]);
    store.checkInvariants();
    expect(get(1)).toEqual([TMEM_HIT, a]);
    // The page alone again: a put of the same bytes to its handle releases it first, so there is
    // nothing to share (as on the two-step path), and the new object is indexed for later puts.
    fill(1);
    expect(put(0)).toBe(TMEM_HIT);
    m = store.metrics();
    expect([m.framesUsed, m.dedupHits, m.wholePuts]).toEqual([2, 1, 3]);
    expect(put(3)).toBe(TMEM_HIT);
    expect([store.metrics().framesUsed, store.metrics().dedupHits]).toEqual([2, 2]);
    store.checkInvariants();
    expect(get(0)).toEqual([TMEM_HIT, a]);
    expect(get(3)).toEqual([TMEM_HIT, a]);
    expect(get(2)).toEqual([TMEM_HIT, b]);
    expect(store.metrics().framesUsed).toBe(0);
    store.checkInvariants();
  });

  it("with compression on, is taken exactly for the puts the gate skips", () => {
    const { store, memory, put, get } = setup({}); // the default store: LZ4 and dedup within the client
    const random = (seed: number): Uint8Array => {
      const page = memory.page(SRC);
      let x = seed * 2654435761 + 1;
      for (let i = 0; i < PAGE_SIZE; i++) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        page[i] = x >>> 24;
      }
      return page.slice();
    };
    const direct: boolean[] = [];
    const pages: Uint8Array[] = [];
    for (let i = 0; i < 7; i++) {
      pages.push(random(i + 1));
      expect(put(i)).toBe(TMEM_HIT);
      direct.push(memory.lastReadIntoSlab());
    }
    // The compressor refuses each page it tries; the gate then skips 1, then 2, then 4 pages.
    expect(direct).toEqual([false, true, false, true, true, false, true]);
    const m = store.metrics();
    expect([m.framesUsed, m.wholePuts, m.compressedPuts]).toEqual([7, 7, 0]);
    store.checkInvariants();
    pages.forEach((p, i) => expect(get(i)).toEqual([TMEM_HIT, p]));
  });

  it("is not taken for a put that compresses", () => {
    for (const flags of [0, TMEM_POOL_PERSIST]) {
      const { memory, fill, put, get } = setup({ compression: true, dedup: "off" }, flags);
      const bytes = fill(5);
      expect(put(0)).toBe(TMEM_HIT);
      expect(memory.lastReadIntoSlab()).toBe(false);
      expect(get(0)).toEqual([TMEM_HIT, bytes]);
    }
  });
});
