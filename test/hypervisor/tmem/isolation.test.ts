/**
 * ISOLATION: a guest never reads, changes or even notices another guest's private pages
 * (DESIGN.md: a uuid alone is a guessable key; STYLE.md item 10: what a guest says is a hint).
 *
 * Guest B stores pages whose every byte has its top bit set (>= 0x80), in a private ephemeral, a
 * private persistent and a shared pool whose uuid only B is authorised for. Guest A's memory starts
 * with bytes < 0x80 only, and A issues random hypercalls with arbitrary pool ids, object ids,
 * indexes, frames, flags and uuids (B's among them). Then:
 *  - no byte >= 0x80 ever appears in A's memory;
 *  - A's results are exactly those of the reference model of A alone (B changes nothing for A);
 *  - B's pages, counters and pools are exactly as B left them.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  TMEM_DESTROY_POOL,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_GET_PAGE,
  TMEM_HIT,
  TMEM_NEW_POOL,
  TMEM_POOL_PERSIST,
  TMEM_POOL_SHARED,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
} from "../../../hypervisor/tmem/abi.ts";
import { uuidToWords } from "../../../hypervisor/tmem/handle.ts";
import { encodeEax } from "../../../hypervisor/tmem/hypercall.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";
import { PAGE_SIZE } from "../../../hypervisor/guest-memory.ts";
import { TmemModel, type Regs } from "./model.ts";
import { bytesEqual, checkEqual, checkTrue, distinctPage, objectWords, TestGuest } from "./test-guest.ts";

const UUID_A = "a0a0a0a0-1111-2222-3333-444444444444";
const UUID_B = "b0b0b0b0-5555-6666-7777-888888888888";
const B_OBJECTS = [0n, 1n, 2n, 2n ** 53n, 0xffffffffn, 2n ** 64n - 2n];
const B_INDEXES = [0, 1, 7, 0xfffffffe];
const MEMORY_BYTES = 1 << 20;
const HIGH_BITS = 0x80808080;

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const hostilePool = fc.oneof({ weight: 6, arbitrary: fc.nat(3) }, { weight: 1, arbitrary: fc.nat(255) });
const hostileObject = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...B_OBJECTS).map(objectWords) },
  { weight: 1, arbitrary: fc.tuple(u32, u32) },
);
const hostileIndex = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...B_INDEXES) }, { weight: 1, arbitrary: u32 });
const hostileFrame = fc.oneof({ weight: 6, arbitrary: fc.nat(300) }, { weight: 1, arbitrary: u32 });
const hostileUuid = fc.oneof(
  fc.constantFrom(UUID_A, UUID_B).map(uuidToWords),
  fc.tuple(u32, u32, u32, u32),
);

function dataOp(op: number): fc.Arbitrary<Regs> {
  return fc
    .record({ pool: hostilePool, obj: hostileObject, idx: hostileIndex, pfn: hostileFrame })
    .map(({ pool, obj: [lo, hi], idx, pfn }) => ({ eax: encodeEax(op, pool), ebx: lo, ecx: hi, esi: idx, edi: pfn }));
}

const hostileCall: fc.Arbitrary<Regs> = fc.oneof(
  { weight: 8, arbitrary: dataOp(TMEM_PUT_PAGE) },
  { weight: 10, arbitrary: dataOp(TMEM_GET_PAGE) },
  { weight: 4, arbitrary: dataOp(TMEM_FLUSH_PAGE) },
  { weight: 3, arbitrary: dataOp(TMEM_FLUSH_OBJECT) },
  {
    weight: 4,
    arbitrary: fc
      .record({ flags: fc.oneof(fc.constantFrom(0, TMEM_POOL_PERSIST, TMEM_POOL_SHARED), fc.nat(0xffff)), uuid: hostileUuid })
      .map(({ flags, uuid: [w0, w1, w2, w3] }) => ({ eax: encodeEax(TMEM_NEW_POOL, 0, flags), ebx: w0, ecx: w1, esi: w2, edi: w3 })),
  },
  { weight: 1, arbitrary: hostilePool.map((pool) => ({ eax: encodeEax(TMEM_DESTROY_POOL, pool), ebx: 0, ecx: 0, esi: 0, edi: 0 })) },
  { weight: 1, arbitrary: fc.constantFrom(1, 1, 1, 0, 2).map((v) => ({ eax: encodeEax(TMEM_PROBE), ebx: v, ecx: 0, esi: 0, edi: 0 })) },
  { weight: 2, arbitrary: fc.record({ eax: u32, ebx: u32, ecx: u32, esi: u32, edi: hostileFrame }) },
);

/** True if any byte of `bytes` (length a multiple of 4, 4-aligned) has its top bit set. */
function hasHighByte(bytes: Uint8Array): boolean {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  for (let i = 0; i < words.length; i++) if ((words[i]! & HIGH_BITS) !== 0) return true;
  return false;
}

const bPages = new Map<number, Uint8Array>();

/** B's page for a handle: every byte >= 0x80; some handles same-filled. */
function bPage(pool: number, objIdx: number, index: number): Uint8Array {
  const n = pool * 100 + objIdx * 10 + index;
  let page = bPages.get(n);
  if (page === undefined) {
    if (n % 7 === 3) {
      page = new Uint8Array(PAGE_SIZE).fill(0xb5); // same-filled, word 0xb5b5b5b5
    } else {
      page = distinctPage(n + 1);
      new Uint32Array(page.buffer).forEach((w, i, words) => (words[i] = (w | HIGH_BITS) >>> 0));
    }
    bPages.set(n, page);
  }
  return page;
}

describe("isolation between guests", () => {
  it("guest A never reads, changes or notices what guest B stored in its private pools", () => {
    fc.assert(
      fc.property(fc.array(hostileCall, { minLength: 30, maxLength: 80, size: "max" }), fc.nat(), (calls, seed) => {
        const store = new TmemStore({ budgetFrames: 512 });

        // B fills its pools.
        const b = new TestGuest(store, "b", { memoryBytes: MEMORY_BYTES });
        store.authorizeShared(b.clientId, UUID_B);
        b.probe();
        const bPools = [b.newPool(0), b.newPool(TMEM_POOL_PERSIST), b.newPool(TMEM_POOL_SHARED, UUID_B)];
        expect(bPools).toEqual([0, 1, 2]);
        for (const pool of bPools) {
          B_OBJECTS.forEach((obj, oi) => {
            B_INDEXES.forEach((idx, ii) => {
              b.page(16).set(bPage(pool, oi, ii));
              checkEqual(b.put(pool, obj, idx, 16), TMEM_HIT, "B's put");
            });
          });
        }
        const bBefore = JSON.stringify(store.clientMetrics(b.clientId));

        // A: low bytes only, its own pools at the same local ids as B's, and the model of A alone.
        const a = new TestGuest(store, "a", { memoryBytes: MEMORY_BYTES });
        store.authorizeShared(a.clientId, UUID_A);
        const aWords = new Uint32Array(a.memory.bytes.buffer);
        let x = seed | 1;
        for (let i = 0; i < aWords.length; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          aWords[i] = x & ~HIGH_BITS;
        }
        a.memory.bytes.fill(0, 20 * PAGE_SIZE, 21 * PAGE_SIZE); // a same-filled page of A's own
        const model = new TmemModel(MEMORY_BYTES);
        const ma = model.addClient([UUID_A]);
        const setup: Regs[] = [
          { eax: encodeEax(TMEM_PROBE), ebx: 1, ecx: 0, esi: 0, edi: 0 },
          { eax: encodeEax(TMEM_NEW_POOL, 0, 0), ebx: 0, ecx: 0, esi: 0, edi: 0 },
          { eax: encodeEax(TMEM_NEW_POOL, 0, TMEM_POOL_PERSIST), ebx: 0, ecx: 0, esi: 0, edi: 0 },
          (() => {
            const [w0, w1, w2, w3] = uuidToWords(UUID_A);
            return { eax: encodeEax(TMEM_NEW_POOL, 0, TMEM_POOL_SHARED), ebx: w0, ecx: w1, esi: w2, edi: w3 };
          })(),
        ];

        for (const r of [...setup, ...calls]) {
          const outcome = model.hypercall(ma, r, (p) => a.page(p));
          const result = a.call(r.eax, r.ebx, r.ecx, r.esi, r.edi);
          checkEqual(result, outcome.eax, () => `A's ${JSON.stringify(r)}`);
          if (outcome.got !== undefined) {
            checkTrue(!hasHighByte(a.page(outcome.got.pfn)), () => `B's bytes reached A: ${JSON.stringify(r)}`);
            checkTrue(bytesEqual(a.page(outcome.got.pfn), outcome.got.data), () => `A's data: ${JSON.stringify(r)}`);
          }
        }

        expect(hasHighByte(a.memory.bytes), "B's bytes somewhere in A's memory").toBe(false);
        expect(a.handler.lastInternalError).toBeUndefined();
        expect(JSON.stringify(store.clientMetrics(b.clientId)), "A changed B's pools or counters").toBe(bBefore);
        for (const pool of bPools) {
          B_OBJECTS.forEach((obj, oi) => {
            B_INDEXES.forEach((idx, ii) => {
              checkEqual(b.get(pool, obj, idx, 17), TMEM_HIT, `B's page ${pool}/${obj}/${idx} is gone`);
              checkTrue(bytesEqual(b.page(17), bPage(pool, oi, ii)), `B's page ${pool}/${obj}/${idx} changed`);
            });
          });
        }
        store.checkInvariants();
      }),
      { numRuns: 100 },
    );
  });
});

describe("ISOLATION of deduplicated data", () => {
  const SRC = 16;
  const DST = 64;
  /** A compressible page, the same bytes for every guest that writes it. */
  function writeShared(g: TestGuest, pfn: number, seed: number): Uint8Array {
    const page = g.page(pfn);
    page.set(distinctPage(seed));
    new Uint32Array(page.buffer, page.byteOffset + 2048, 512).fill(seed);
    return page.slice();
  }
  function setup(dedup?: "client" | "off" | "global") {
    const store = new TmemStore({ budgetFrames: 64, ...(dedup ? { dedup } : {}) });
    const a = new TestGuest(store, "a");
    const b = new TestGuest(store, "b");
    for (const g of [a, b]) g.probe();
    return { store, a, b, pa: a.newPool(), pb: b.newPool() };
  }

  it("by default, never shares data between guests: equal pages of two guests are two objects, and neither guest's ops change the other's", () => {
    const { store, a, b, pa, pb } = setup();
    const page = writeShared(b, SRC, 1);
    writeShared(a, SRC, 1);
    expect(b.put(pb, 1n, 0, SRC)).toBe(TMEM_HIT);
    const before = store.metrics();
    expect(a.put(pa, 1n, 0, SRC)).toBe(TMEM_HIT);
    const after = store.metrics();
    // A's equal page took its own object and its own room: nothing about B's is visible to A.
    expect(after.dedupHits).toBe(0);
    expect(after.objects).toBe((before.objects ?? 0) + 1);
    expect(after.compressedBytes).toBe((before.compressedBytes ?? 0) * 2);
    expect(a.flushPage(pa, 1n, 0)).toBe(1);
    expect(b.get(pb, 1n, 0, DST)).toBe(TMEM_HIT);
    expect(bytesEqual(b.page(DST), page)).toBe(true);
    store.checkInvariants();
  });

  it("by default, shares within one guest and pool type, with copy on flush and on replace", () => {
    const { store, a, pa } = setup();
    const page = writeShared(a, SRC, 2);
    expect(a.put(pa, 1n, 0, SRC)).toBe(TMEM_HIT);
    expect(a.put(pa, 2n, 5, SRC)).toBe(TMEM_HIT);
    expect(a.put(pa, 3n, 0, SRC)).toBe(TMEM_HIT);
    expect(store.metrics()).toMatchObject({ pages: 3, objects: 1, dedupHits: 2 });
    expect(store.clientMetrics(a.clientId)).toMatchObject({ dedupHits: 2, dataPages: 3 });
    expect(a.flushPage(pa, 1n, 0)).toBe(1);
    writeShared(a, SRC, 3); // a different page replaces handle 2:5
    expect(a.put(pa, 2n, 5, SRC)).toBe(TMEM_HIT);
    expect(a.get(pa, 3n, 0, DST)).toBe(TMEM_HIT);
    expect(bytesEqual(a.page(DST), page)).toBe(true);
    store.checkInvariants();
    // Persistent and ephemeral pages never share (eviction must free what it drops).
    const pers = a.newPool(TMEM_POOL_PERSIST);
    writeShared(a, SRC, 2);
    expect(a.put(pers, 1n, 0, SRC)).toBe(TMEM_HIT);
    expect(a.put(pa, 9n, 0, SRC)).toBe(TMEM_HIT);
    expect(store.metrics()).toMatchObject({ objects: 3, dedupHits: 2 });
    store.checkInvariants();
  });

  it("with --dedup off, shares nothing", () => {
    const { store, a, pa } = setup("off");
    writeShared(a, SRC, 2);
    expect(a.put(pa, 1n, 0, SRC)).toBe(TMEM_HIT);
    expect(a.put(pa, 2n, 0, SRC)).toBe(TMEM_HIT);
    expect(store.metrics()).toMatchObject({ objects: 2, dedupHits: 0 });
  });

  it("with --dedup global (one trust group), shares across guests, and one guest's flush still never changes the other's page", () => {
    const { store, a, b, pa, pb } = setup("global");
    const page = writeShared(b, SRC, 4);
    writeShared(a, SRC, 4);
    expect(b.put(pb, 1n, 0, SRC)).toBe(TMEM_HIT);
    expect(a.put(pa, 7n, 0, SRC)).toBe(TMEM_HIT);
    expect(store.metrics()).toMatchObject({ objects: 1, dedupHits: 1 });
    expect(a.flushObject(pa, 7n)).toBe(1);
    expect(b.get(pb, 1n, 0, DST)).toBe(TMEM_HIT);
    expect(bytesEqual(b.page(DST), page)).toBe(true);
    store.checkInvariants();
    expect(store.metrics()).toMatchObject({ pages: 0, objects: 0, framesUsed: 0 });
  });
});
