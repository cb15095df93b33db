import { describe, expect, it } from "vitest";
import { compressPage, CompressionGate, decompressPage, hashPage, MAX_SKIP } from "../../../hypervisor/tmem/codec.ts";
import { FRAME_SIZE } from "../../../hypervisor/tmem/slab.ts";
import { MAX_PACKED_SIZE } from "../../../hypervisor/tmem/zpool.ts";
import { distinctPage } from "./test-guest.ts";

/** memtouch's kind of page: half random words, half one repeated word. */
function halfRandom(seed: number): Uint8Array {
  const page = distinctPage(seed);
  new Uint32Array(page.buffer, 2048, 512).fill(0x9e3779b9 * seed);
  return page;
}

describe("compressPage / decompressPage", () => {
  it("compress a half-random page to about half, and give it back byte for byte", () => {
    const page = halfRandom(3);
    const stored = compressPage(page);
    expect(stored.length).toBeGreaterThan(2048);
    expect(stored.length).toBeLessThan(2200);
    const out = new Uint8Array(FRAME_SIZE);
    decompressPage(stored, out);
    expect(out).toEqual(page);
  });
  it("keep a page that does not compress below the threshold whole (the page itself)", () => {
    const page = distinctPage(9);
    const stored = compressPage(page);
    expect(stored).toBe(page);
    const out = new Uint8Array(FRAME_SIZE);
    decompressPage(stored, out);
    expect(out).toEqual(page);
    // 3/4 random: compresses to just over the threshold, so it is kept whole too.
    const mostlyRandom = distinctPage(10);
    new Uint32Array(mostlyRandom.buffer, 3072 + 64, 240).fill(1);
    expect(compressPage(mostlyRandom).length).toBe(FRAME_SIZE);
    expect(MAX_PACKED_SIZE).toBe(3072);
  });
  it("read a page from a subarray of a bigger buffer", () => {
    const big = new Uint8Array(3 * FRAME_SIZE);
    big.set(halfRandom(5), FRAME_SIZE);
    const out = new Uint8Array(FRAME_SIZE);
    decompressPage(compressPage(big.subarray(FRAME_SIZE, 2 * FRAME_SIZE)), out);
    expect(out).toEqual(halfRandom(5));
  });
  it("refuse stored data that does not decompress to a page", () => {
    const packed = compressPage(new Uint8Array(FRAME_SIZE).fill(1, 0, 100));
    expect(() => decompressPage(packed.subarray(0, 5), new Uint8Array(FRAME_SIZE))).toThrow();
  });
});

describe("CompressionGate", () => {
  it("skips the compressor for a doubling number of pages after incompressible ones, up to MAX_SKIP, and resets on success", () => {
    const g = new CompressionGate();
    const skipped = () => {
      let n = 0;
      while (!g.shouldTry()) n++;
      return n;
    };
    expect(g.shouldTry()).toBe(true);
    g.record(false);
    expect(skipped()).toBe(1);
    g.record(false);
    expect(skipped()).toBe(2);
    g.record(false);
    expect(skipped()).toBe(4);
    for (let i = 0; i < 10; i++) {
      g.record(false);
      skipped();
    }
    g.record(false);
    expect(skipped()).toBe(MAX_SKIP);
    g.record(true);
    expect(g.shouldTry()).toBe(true);
    g.record(false);
    expect(skipped()).toBe(1);
  });
});

describe("hashPage", () => {
  it("is equal for equal pages and differs when one word differs", () => {
    const a = new Uint32Array(distinctPage(1).buffer);
    const b = a.slice();
    expect(hashPage(a)).toBe(hashPage(b));
    for (const i of [0, 1, 511, 1023]) {
      const c = a.slice();
      c[i]! ^= 1;
      expect(hashPage(c)).not.toBe(hashPage(a));
    }
    const big = new Uint32Array(2048);
    big.set(a, 1024);
    expect(hashPage(big, 1024)).toBe(hashPage(a));
  });
});
