import { describe, expect, it } from "vitest";
import { randomFillSync } from "node:crypto";
import { ArrayGuestMemory, PAGE_SIZE } from "../../../hypervisor/guest-memory.ts";
import { TMEM_HIT, TMEM_POOL_PERSIST } from "../../../hypervisor/tmem/abi.ts";
import {
  BIP_ADMIT_EVERY,
  compactionThreshold,
  DUEL_GROUPS,
  COMPACT_FRACTION,
  COMPACT_MIN_FRAMES,
  dataVictim,
  overShare,
  pageKeyHash,
  PSEL_MAX,
  recordVictim,
  sampled,
  ScanResistance,
  ShadowCache,
} from "../../../hypervisor/tmem/eviction.ts";
import { NIL, PageTable } from "../../../hypervisor/tmem/page-table.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";

describe("overShare", () => {
  it("is true past budget x weight / W, false at it and for a client charged nothing", () => {
    // budget 400 bytes, W = 4: a client of weight 1 may hold 100
    expect(overShare(100, 1, 4, 400)).toBe(false);
    expect(overShare(101, 1, 4, 400)).toBe(true);
    expect(overShare(300, 3, 4, 400)).toBe(false);
    expect(overShare(0, 0, 4, 400)).toBe(false);
    expect(overShare(1, 0, 4, 400)).toBe(true);
  });
});

describe("victims", () => {
  function lists() {
    const pt = new PageTable<object>();
    const global = pt.newList();
    const fill = pt.newList();
    const mine = pt.newList();
    const [a, b, c, f] = [pt.allocSlot(), pt.allocSlot(), pt.allocSlot(), pt.allocSlot()];
    pt.linkG(global, a); // a: someone else's, least recently used
    pt.linkG(global, b);
    pt.linkC(mine, b); // b: mine
    pt.linkG(global, c);
    pt.linkC(mine, c);
    pt.linkG(fill, f);
    return { pt, global, fill, mine, a, b, f };
  }
  it("take the putter's own LRU page when it is over its share, else the global LRU page", () => {
    const { pt, global, mine, a, b } = lists();
    expect(dataVictim(pt, mine, true, global)).toBe(b);
    expect(dataVictim(pt, mine, false, global)).toBe(a);
    expect(dataVictim(pt, NIL, true, global)).toBe(a);
    const empty = pt.newList();
    expect(dataVictim(pt, empty, true, global)).toBe(a);
    expect(dataVictim(pt, empty, true, empty)).toBe(NIL);
  });
  it("for a page record, take a same-filled page first", () => {
    const { pt, global, fill, mine, a, b, f } = lists();
    expect(recordVictim(pt, fill, mine, true, global)).toBe(f);
    pt.unlinkG(f);
    expect(recordVictim(pt, fill, mine, true, global)).toBe(b);
    expect(recordVictim(pt, fill, mine, false, global)).toBe(a);
  });
});

describe("compactionThreshold", () => {
  it("is COMPACT_MIN_FRAMES, or 1/COMPACT_FRACTION of the frames used when more", () => {
    expect(compactionThreshold(0)).toBe(COMPACT_MIN_FRAMES);
    expect(compactionThreshold(COMPACT_FRACTION * COMPACT_MIN_FRAMES)).toBe(COMPACT_MIN_FRAMES);
    expect(compactionThreshold(16384)).toBe(16384 / COMPACT_FRACTION);
  });
});

/** Sampled keys (hashes of object 1, indexes 0..). */
function sampledKeys(n: number): number[] {
  const keys: number[] = [];
  for (let i = 0; keys.length < n; i++) if (sampled(pageKeyHash(1, 0, i))) keys.push(pageKeyHash(1, 0, i));
  return keys;
}

describe("ScanResistance (DIP's adaptive insertion, chosen by shadow caches)", () => {
  it("samples 1/32 of the keys", () => {
    let n = 0;
    for (let i = 0; i < 32_000; i++) if (sampled(pageKeyHash(7, 0, i))) n++;
    expect(n).toBeGreaterThan(800);
    expect(n).toBeLessThan(1200);
  });

  it("shadow caches: LRU evicts the least recent key, BIP refuses all but one in BIP_ADMIT_EVERY when full; exclusive gets take the key out", () => {
    const lru = new ShadowCache(false);
    const bip = new ShadowCache(true);
    for (const c of [lru, bip]) for (let k = 0; k < 4; k++) c.put(k, 4);
    lru.put(4, 4);
    expect(lru.get(0, true)).toBe(false);
    expect(lru.get(4, true)).toBe(true);
    expect(lru.get(4, true)).toBe(false);
    for (let k = 100; k < 100 + BIP_ADMIT_EVERY; k++) bip.put(k, 4);
    expect(bip.size).toBe(4);
    expect([0, 1, 2, 3].filter((k) => bip.get(k, false))).toEqual([1, 2, 3]); // one admitted, evicting key 0
    expect(bip.get(100 + BIP_ADMIT_EVERY - 1, false)).toBe(true);
  });

  it("uses LRU until the BIP shadow hits where the LRU one misses, then refuses all but one in BIP_ADMIT_EVERY; back with LRU's hits", () => {
    const s = new ScanResistance();
    expect(s.bimodal).toBe(false);
    expect(s.admit()).toBe(true);
    // A loop over 3 keys through shadows of 2 (capacity 64 pages / 32): LRU never hits, BIP keeps its two.
    const [a, b, c] = sampledKeys(3) as [number, number, number];
    for (let r = 0; r < 4; r++) for (const k of [a, b, c]) {
      s.get(k, true);
      s.put(k, 64);
    }
    expect(s.bimodal).toBe(true);
    const admitted = Array.from({ length: 2 * BIP_ADMIT_EVERY }, () => s.admit()).filter(Boolean).length;
    expect(admitted).toBe(2);
    expect(s.refusals).toBe(2 * BIP_ADMIT_EVERY - 2);
    // Keys outside the sample change nothing.
    const before = s.bimodal;
    s.get(pageKeyHash(1, 0, 1), true);
    expect(s.bimodal).toBe(before);
    // A new working set that fits: the LRU shadow takes it at once, BIP only one put in 32.
    const fresh = sampledKeys(40).slice(3, 5);
    for (let r = 0; r < 40 && s.bimodal; r++) for (const k of fresh) {
      s.get(k, true);
      s.put(k, 64);
    }
    expect(s.bimodal).toBe(false);
  });

  it("saturates: after a long loop, a new working set brings LRU back within PSEL_MAX / 2 steps", () => {
    const s = new ScanResistance();
    const CAP = 64 * DUEL_GROUPS; // store pages: shadows of 64 keys
    const keys = sampledKeys(96 + 2 * PSEL_MAX);
    const loopKeys = keys.slice(0, 96);
    for (let r = 0; r < 40; r++) for (const k of loopKeys) {
      s.get(k, true);
      s.put(k, CAP);
    }
    expect(s.bimodal).toBe(true);
    // A new working set read soon after it is put, 64 pages at a time: LRU's shadow holds them all,
    // BIP's, full of the loop's keys, refuses all but one in 32.
    const fresh = keys.slice(96);
    let steps = 0;
    while (s.bimodal && steps < fresh.length) {
      const batch = fresh.slice(steps, steps + 64);
      for (const k of batch) s.put(k, CAP);
      for (const k of batch) s.get(k, true);
      steps += batch.length;
    }
    expect(s.bimodal).toBe(false);
    expect(steps).toBeLessThanOrEqual(PSEL_MAX);
  });
});

describe("a looping scan larger than page cache + store (the refault workload's pattern)", () => {
  const FRAMES = 1280;
  const CACHE = 640; // the guest's page cache, LRU: a page it drops is put (cleancache)
  const SET = 3200; // pages read in a loop: 1.7 x page cache + store (100 keys in the shadows' sample)

  /** Rounds of reads over SET pages through the page cache and the store: store hits per round. */
  function loop(scanResistant: boolean, rounds: number): number[] {
    const store = new TmemStore({ budgetFrames: FRAMES, compression: false, dedup: "off", scanResistant });
    const client = store.createClient("g");
    const pool = store.newPool(client, 0, 0, 0, 0, 0);
    const BASE = 256; // guest frames from 1 MiB, above the hole at 0xA0000
    const DST = BASE + SET;
    const memory = new ArrayGuestMemory((DST + 1) * PAGE_SIZE);
    randomFillSync(memory.bytes);
    const cache = new Set<number>(); // insertion order: a loop re-reads nothing the cache holds
    const hits: number[] = [];
    for (let r = 0; r < rounds; r++) {
      let h = 0;
      for (let i = 0; i < SET; i++) {
        if (cache.has(i)) continue;
        if (store.getPage(client, pool, 1, 0, i, memory, DST) === TMEM_HIT) {
          h++;
          const got = memory.bytes.subarray(DST * PAGE_SIZE, (DST + 1) * PAGE_SIZE);
          expect(Buffer.compare(got, memory.bytes.subarray((BASE + i) * PAGE_SIZE, (BASE + i + 1) * PAGE_SIZE))).toBe(0);
        }
        cache.add(i);
        if (cache.size > CACHE) {
          const oldest = cache.values().next().value!;
          cache.delete(oldest);
          store.putPage(client, pool, 1, 0, oldest, memory, BASE + oldest);
        }
      }
      hits.push(h);
    }
    store.checkInvariants();
    return hits;
  }

  it("LRU never hits; with scanResistant the store keeps what it holds and serves it every round", { timeout: 60_000 }, () => {
    expect(loop(false, 8)).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
    const hits = loop(true, 8);
    process.stderr.write(`hits per round: ${hits.join(", ")}\n`);
    // The followers turn to BIP in the first rounds; then most of the store is hit every round.
    expect(hits.slice(3).every((h) => h > 0.6 * FRAMES)).toBe(true);
  });
});

describe("scan resistance in the store", () => {
  it("refuses only where it would evict: with no ephemeral page to evict, a put still gets the last compaction", () => {
    const FRAMES = 16;
    const BASE = 256;
    const store = new TmemStore({ budgetFrames: FRAMES, dedup: "off" });
    const client = store.createClient("g");
    const persistent = store.newPool(client, TMEM_POOL_PERSIST, 0, 0, 0, 0);
    const ephemeral = store.newPool(client, 0, 0, 0, 0, 0);
    const memory = new ArrayGuestMemory((BASE + 128) * PAGE_SIZE);
    // Pages of 960 random bytes and zeros: 1,008-byte objects, four to a one-frame zspage.
    for (let p = 0; p < 64; p++) randomFillSync(memory.bytes, (BASE + p) * PAGE_SIZE, 960);
    randomFillSync(memory.bytes, (BASE + 100) * PAGE_SIZE, PAGE_SIZE); // incompressible: a whole frame
    let put = 0;
    while (put < 4 * FRAMES && store.putPage(client, persistent, 1, 0, put, memory, BASE + put) === TMEM_HIT) put++;
    expect(put).toBe(4 * FRAMES);
    expect(store.putPage(client, persistent, 1, 0, put, memory, BASE)).not.toBe(TMEM_HIT); // full
    // Two frames keep one object each: compaction could free one frame, below the bound that
    // makes the store compact before anything else (8 frames).
    for (let i = 1; i < 4; i++) {
      store.flushPage(client, persistent, 1, 0, i);
      store.flushPage(client, persistent, 1, 0, 4 + i);
    }
    expect(store.metrics()).toMatchObject({ framesUsed: FRAMES, fragmentationFrames: 1, pagesEphemeral: 0 });
    // The store in its bimodal mode, as after a long loop: its shadow caches replayed one.
    const scan = (store as unknown as { scan: ScanResistance }).scan;
    const loopKeys = sampledKeys(96);
    for (let r = 0; r < 40; r++) for (const k of loopKeys) {
      scan.get(k, true);
      scan.put(k, 64 * DUEL_GROUPS);
    }
    expect(scan.bimodal).toBe(true);
    // Nothing ephemeral to evict: the put compacts (one frame) and is stored, never refused.
    expect(store.putPage(client, ephemeral, 2, 0, 0, memory, BASE + 100)).toBe(TMEM_HIT);
    expect(scan.refusals).toBe(0);
    expect(store.metrics().compactions).toBeGreaterThan(0);
    store.checkInvariants();
  });
});
