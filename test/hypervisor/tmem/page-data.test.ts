import { describe, expect, it } from "vitest";
import { hashPage } from "../../../hypervisor/tmem/codec.ts";
import { NO_DEDUP, PageData } from "../../../hypervisor/tmem/page-data.ts";
import { FRAME_SIZE, Slab } from "../../../hypervisor/tmem/slab.ts";
import { NO_HANDLE } from "../../../hypervisor/tmem/zpool.ts";
import { distinctPage } from "./test-guest.ts";

function halfRandom(seed: number): Uint8Array {
  const page = distinctPage(seed);
  new Uint32Array(page.buffer, 2048, 512).fill(seed);
  return page;
}
const words = (p: Uint8Array) => new Uint32Array(p.buffer, p.byteOffset, FRAME_SIZE / 4);

function put(d: PageData, page: Uint8Array, scope: number, compress = true, pinned = false): number {
  const h = d.prepare(page, words(page), compress, scope);
  return h !== NO_HANDLE ? h : d.commit(1000, pinned);
}

function load(d: PageData, h: number): Uint8Array {
  const out = new Uint8Array(FRAME_SIZE);
  d.load(h, out);
  return out;
}

describe("PageData", () => {
  it("stores compressed or whole and gives the page back", () => {
    const d = new PageData(Slab.allocate(64));
    const a = put(d, halfRandom(1), NO_DEDUP);
    const b = put(d, distinctPage(2), NO_DEDUP);
    const c = put(d, halfRandom(3), NO_DEDUP, false);
    expect(load(d, a)).toEqual(halfRandom(1));
    expect(load(d, b)).toEqual(distinctPage(2));
    expect(load(d, c)).toEqual(halfRandom(3));
    expect(d.storedBytes(a)).toBeLessThan(2200);
    expect(d.storedBytes(b)).toBe(FRAME_SIZE);
    expect(d.storedBytes(c)).toBe(FRAME_SIZE);
    expect(d.stats()).toMatchObject({ compressedPuts: 1, wholePuts: 2, objects: 3, references: 3, dedupHits: 0 });
    d.checkInvariants(new Map([[a, 1], [b, 1], [c, 1]]));
  });

  it("shares an equal page within a scope, counts references, and frees the data with the last one", () => {
    const d = new PageData(Slab.allocate(64));
    const a = put(d, halfRandom(1), 7);
    const b = put(d, halfRandom(1), 7);
    expect(b).toBe(a);
    expect(d.referencesOf(a)).toBe(2);
    expect(d.stats()).toMatchObject({ dedupHits: 1, objects: 1, references: 2 });
    d.checkInvariants(new Map([[a, 2]]));
    const other = put(d, halfRandom(1), 8); // another scope: its own copy
    expect(other).not.toBe(a);
    const none = put(d, halfRandom(1), NO_DEDUP);
    expect(none).not.toBe(a);
    d.release(a);
    expect(load(d, a)).toEqual(halfRandom(1)); // copy on flush: the other reference still reads it
    d.release(a);
    expect(() => d.release(a)).toThrow(/no references/);
    d.checkInvariants(new Map([[other, 1], [none, 1]]));
    // The index forgot the freed data: an equal page is stored anew, not shared with freed memory.
    const again = put(d, halfRandom(1), 7);
    expect(d.stats().dedupHits).toBe(1);
    expect(load(d, again)).toEqual(halfRandom(1));
  });

  it("compares in full before sharing: a hash collision stores the second page apart", () => {
    const p1 = distinctPage(4);
    const p2 = p1.slice();
    const w1 = words(p1);
    const w2 = words(p2);
    // FNV-1a over words: pick word 0 freely, then word 1 so that the state after word 1 is equal.
    const h0 = 0x811c9dc5;
    w2[0] = w1[0]! ^ 0x5555;
    const s1 = Math.imul(h0 ^ w1[0]!, 0x01000193);
    const s2 = Math.imul(h0 ^ w2[0]!, 0x01000193);
    w2[1] = (s1 ^ w1[1]! ^ s2) >>> 0;
    expect(hashPage(w2)).toBe(hashPage(w1));
    expect(p2).not.toEqual(p1);
    const d = new PageData(Slab.allocate(64));
    const a = put(d, p1, 1);
    const b = put(d, p2, 1);
    expect(b).not.toBe(a);
    expect(load(d, a)).toEqual(p1);
    expect(load(d, b)).toEqual(p2);
    expect(d.stats()).toMatchObject({ dedupHits: 0, dedupCollisions: 1 });
  });

  it("keeps the pending page for a retry when there is no room, and charges the class slot", () => {
    const d = new PageData(Slab.allocate(9));
    const page = distinctPage(5);
    expect(d.prepare(page, words(page), true, NO_DEDUP)).toBe(NO_HANDLE);
    expect(d.commit(0, false)).toBe(NO_HANDLE);
    const h = d.commit(1, false);
    expect(h).not.toBe(NO_HANDLE);
    expect(d.charge(h)).toBe(FRAME_SIZE);
    expect(() => d.commit(1, false)).toThrow(/without a pending page/);
    const small = halfRandom(6);
    d.prepare(small, words(small), true, NO_DEDUP);
    expect(d.commit(8, false)).toBe(NO_HANDLE); // its class takes 8 frames at once, 1 is in use
    const s = d.commit(9, false);
    expect(d.charge(s) % 16).toBe(0);
    expect(d.charge(s)).toBeGreaterThanOrEqual(d.storedBytes(s));
    expect(d.charge(s) - d.storedBytes(s)).toBeLessThan(16);
  });
});

describe("PageData compaction on release", () => {
  it("keeps the frames compaction could free below the bound when pages go without new puts", async () => {
    const { compactionThreshold } = await import("../../../hypervisor/tmem/eviction.ts");
    const d = new PageData(Slab.allocate(512));
    const handles: number[] = [];
    for (let i = 0; i < 900; i++) handles.push(put(d, halfRandom(i + 1), NO_DEDUP)); // class 2128: 60 zspages of 8 frames
    const full = d.zpool.framesUsed;
    expect(full).toBeGreaterThanOrEqual(480); // 60 zspages of 8 frames, or a few more (sizes vary a little)
    let maxFrag = 0;
    handles.forEach((h, i) => {
      if (i % 3 !== 0) d.release(h); // two thirds go, spread over every zspage
      maxFrag = Math.max(maxFrag, d.zpool.compactableFrames());
    });
    expect(maxFrag).toBeLessThan(compactionThreshold(full));
    expect(d.stats().compactions).toBeGreaterThan(0);
    expect(d.zpool.framesUsed).toBeLessThan(full / 2);
    const wrong = handles.filter((h, i) => i % 3 === 0 && Buffer.compare(load(d, h), halfRandom(i + 1)) !== 0);
    expect(wrong).toEqual([]);
  });
});
