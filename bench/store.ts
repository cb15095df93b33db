/**
 * Store throughput through the hypercall path, against the raw copy limit.
 *
 * "store put+get": one guest (ArrayGuestMemory) with a private ephemeral pool issues TMEM_PUT_PAGE
 * for N random (never same-filled) 4 KiB pages from a source region, then TMEM_GET_PAGE for each
 * into a destination region, all through TmemHypercallHandler.handle(): EAX decode, frame checks,
 * store lookups, LRU and slab bookkeeping and the copy. Each put and each get moves one page, so
 * the rate is in page ops per second.
 *
 * "copy limit": the same N pages moved the same way with nothing but Uint8Array.set (source region
 * to a slab-sized buffer, back to the destination region): 2N page copies per round.
 *
 * "LZ4 limit": the compressed store's pages through the store's own codec calls (codec.ts
 * compressPage, then decompressPage into the destination) and nothing else: 2N page ops per round,
 * like put+get. It says how much of the compressed store's time is LZ4 itself: a compressed page
 * costs one LZ4 compression and one decompression whatever the store around them does.
 *
 * The ratio of the two medians is the share of the copy limit the store keeps. Three stores:
 *  - "whole pages": compression and dedup off, random pages (target >= 0.5);
 *  - "compressed": the default store (LZ4, dedup within the client) on memtouch's kind of page, half
 *    random and half one word, which LZ4 halves: put = hash + compress + size-class copy, get =
 *    decompress (target >= 0.25);
 *  - "default, random pages": the default store on pages that do not compress (kept whole after the
 *    compressor says so; the gate then skips it for a while).
 *
 * "put evicting LRU": puts into a full store, each evicting the least recently used page, at two
 * store sizes 16x apart; equal rates show that eviction and LRU upkeep are O(1) per page. (A put
 * into a full store copies twice: into scratch space first, so that a same-filled page, which
 * needs no frame, never evicts anything.)
 */

import { randomFillSync } from "node:crypto";
import { ArrayGuestMemory, PAGE_SIZE } from "../hypervisor/guest-memory.ts";
import { TMEM_ABI_VERSION, TMEM_GET_PAGE, TMEM_HIT, TMEM_MAGIC, TMEM_PROBE, TMEM_PUT_PAGE } from "../hypervisor/tmem/abi.ts";
import { TMEM_NEW_POOL } from "../hypervisor/tmem/abi.ts";
import { encodeEax, TmemHypercallHandler, type TrapRegisters } from "../hypervisor/tmem/hypercall.ts";
import { compressPage, decompressPage } from "../hypervisor/tmem/codec.ts";
import { TmemStore } from "../hypervisor/tmem/store.ts";
import { median, rate, type BenchDefinition, type BenchOptions, type BenchResult } from "./harness.ts";

/** Pages moved per round: 16 MiB, well beyond the CPU caches, as guest page traffic is. */
const PAGES = 4096;
/** First source frame: 1 MiB, above the hole 0xA0000-0xBFFFF. */
const SRC_PFN = 256;
const DST_PFN = SRC_PFN + PAGES;
const MEMORY_BYTES = (DST_PFN + PAGES) * PAGE_SIZE;
const TARGET_RATIO = 0.5;
const COMPRESSED_TARGET_RATIO = 0.25;
/** Store sizes for the eviction measurement: 16 MiB and 256 MiB, both beyond the CPU caches. */
const EVICT_SMALL_FRAMES = 4096;
const EVICT_LARGE_FRAMES = 65536;

function fail(message: string): never {
  throw new Error(`bench store: ${message}`);
}

type StoreKind = "whole" | "compressed" | "default-random";

function storeRate(options: BenchOptions, kind: StoreKind = "whole"): number {
  let memory: ArrayGuestMemory;
  if (kind === "compressed") {
    memory = halfRandomMemory();
  } else {
    memory = new ArrayGuestMemory(MEMORY_BYTES);
    randomFillSync(memory.bytes);
  }
  const store = new TmemStore(kind === "whole" ? { budgetFrames: PAGES, compression: false, dedup: "off" } : { budgetFrames: PAGES });
  const client = store.createClient("bench");
  const handler = new TmemHypercallHandler(store, client, memory);
  const regs: TrapRegisters = { eax: encodeEax(TMEM_PROBE), ebx: TMEM_ABI_VERSION, ecx: 0, edx: 0, esi: 0, edi: 0 };
  handler.handle(regs);
  if (regs.eax !== TMEM_MAGIC || regs.ecx !== 0) fail("probe refused");
  regs.eax = encodeEax(TMEM_NEW_POOL);
  handler.handle(regs);
  const pool = regs.eax;
  if (pool !== 0) fail(`new pool returned ${pool}`);
  const putEax = encodeEax(TMEM_PUT_PAGE, pool);
  const getEax = encodeEax(TMEM_GET_PAGE, pool);
  let object = 0;

  const round = (): void => {
    object++; // a fresh object per round: every put is a new page, as in cleancache traffic
    for (let i = 0; i < PAGES; i++) {
      regs.eax = putEax;
      regs.ebx = object;
      regs.ecx = 0;
      regs.esi = i;
      regs.edi = SRC_PFN + i;
      handler.handle(regs);
      if (regs.eax !== TMEM_HIT) fail(`put ${i} returned ${regs.eax | 0}`);
    }
    for (let i = 0; i < PAGES; i++) {
      regs.eax = getEax;
      regs.ebx = object;
      regs.ecx = 0;
      regs.esi = i;
      regs.edi = DST_PFN + i;
      handler.handle(regs);
      if (regs.eax !== TMEM_HIT) fail(`get ${i} returned ${regs.eax | 0}`);
    }
  };

  // Warm up, and check once that the pages went through the store and came back intact.
  round();
  const bytes = PAGES * PAGE_SIZE;
  const src = memory.bytes.subarray(SRC_PFN * PAGE_SIZE, SRC_PFN * PAGE_SIZE + bytes);
  const dst = memory.bytes.subarray(DST_PFN * PAGE_SIZE, DST_PFN * PAGE_SIZE + bytes);
  if (Buffer.compare(src, dst) !== 0) fail("pages came back changed");
  const m = store.metrics();
  if (m.framesUsed !== 0 || m.pages !== 0) fail("exclusive gets left pages behind");
  const c = store.clientMetrics(client);
  if (c.getHits !== PAGES || c.sameFilledPages !== 0) fail("unexpected hits or same-filled pages");
  if (kind === "compressed" && (m.compressedPuts ?? 0) !== PAGES) fail(`expected ${PAGES} compressed puts, got ${m.compressedPuts}`);
  if (kind !== "compressed" && (m.compressedPuts ?? 0) !== 0) fail("random pages were stored compressed");
  if (handler.lastInternalError !== undefined) fail(`internal error: ${String(handler.lastInternalError)}`);
  return rate(round, 2 * PAGES, options.minSampleMs);
}

/**
 * Puts into a full store of `frames` frames, so that every put evicts the least recently used page:
 * put rate with eviction. Eviction and LRU upkeep are O(1) per page, so the rate must not depend on
 * how many pages the store holds.
 */
function evictingPutRate(frames: number, options: BenchOptions): number {
  const memory = new ArrayGuestMemory(MEMORY_BYTES);
  randomFillSync(memory.bytes);
  // Whole pages: the source pages repeat every PAGES puts, which dedup would share instead of evicting.
  const store = new TmemStore({ budgetFrames: frames, compression: false, dedup: "off" });
  const client = store.createClient("bench");
  const handler = new TmemHypercallHandler(store, client, memory);
  const regs: TrapRegisters = { eax: encodeEax(TMEM_PROBE), ebx: TMEM_ABI_VERSION, ecx: 0, edx: 0, esi: 0, edi: 0 };
  handler.handle(regs);
  regs.eax = encodeEax(TMEM_NEW_POOL);
  handler.handle(regs);
  const putEax = encodeEax(TMEM_PUT_PAGE, regs.eax);
  let index = 0;
  const put = (): void => {
    regs.eax = putEax;
    regs.ebx = 1;
    regs.ecx = 0;
    regs.esi = index;
    regs.edi = SRC_PFN + (index % PAGES);
    index = (index + 1) >>> 0;
    handler.handle(regs);
    if (regs.eax !== TMEM_HIT) fail(`put returned ${regs.eax | 0}`);
  };
  for (let i = 0; i < frames; i++) put(); // fill the store
  const round = (): void => {
    for (let i = 0; i < PAGES; i++) put();
  };
  round();
  const m = store.metrics();
  if (m.framesUsed !== frames || m.evictions !== PAGES) fail(`expected a full store and ${PAGES} evictions`);
  return rate(round, PAGES, options.minSampleMs);
}

/** Memtouch's kind of page (half random, half one repeated word) at SRC_PFN.. of a fresh memory. */
function halfRandomMemory(): ArrayGuestMemory {
  const memory = new ArrayGuestMemory(MEMORY_BYTES);
  randomFillSync(memory.bytes);
  for (let p = SRC_PFN; p < SRC_PFN + PAGES; p++) new Uint32Array(memory.bytes.buffer, p * PAGE_SIZE + PAGE_SIZE / 2, PAGE_SIZE / 8).fill(p * 0x9e3779b9);
  return memory;
}

/** The compressed store's LZ4 work alone: compressPage and decompressPage of the same pages, no store. */
function lz4Rate(options: BenchOptions): number {
  const memory = halfRandomMemory();
  const src = Buffer.from(memory.bytes.buffer, memory.bytes.byteOffset, memory.bytes.byteLength);
  const packed: Uint8Array[] = new Array<Uint8Array>(PAGES);
  const round = (): void => {
    for (let i = 0; i < PAGES; i++) {
      const from = (SRC_PFN + i) * PAGE_SIZE;
      packed[i] = compressPage(src.subarray(from, from + PAGE_SIZE));
    }
    for (let i = 0; i < PAGES; i++) {
      const to = (DST_PFN + i) * PAGE_SIZE;
      decompressPage(packed[i]!, memory.bytes.subarray(to, to + PAGE_SIZE));
    }
  };
  round();
  if (packed.some((p) => p.length >= PAGE_SIZE)) fail("LZ4 limit: a half-random page did not compress");
  if (Buffer.compare(src.subarray(SRC_PFN * PAGE_SIZE, DST_PFN * PAGE_SIZE), src.subarray(DST_PFN * PAGE_SIZE)) !== 0) fail("LZ4 limit: pages came back changed");
  return rate(round, 2 * PAGES, options.minSampleMs);
}

function copyRate(options: BenchOptions): number {
  const memory = new Uint8Array(MEMORY_BYTES);
  randomFillSync(memory);
  const slab = new Uint8Array(PAGES * PAGE_SIZE);
  const round = (): void => {
    for (let i = 0; i < PAGES; i++) {
      const from = (SRC_PFN + i) * PAGE_SIZE;
      slab.set(memory.subarray(from, from + PAGE_SIZE), i * PAGE_SIZE);
    }
    for (let i = 0; i < PAGES; i++) {
      const from = i * PAGE_SIZE;
      memory.set(slab.subarray(from, from + PAGE_SIZE), (DST_PFN + i) * PAGE_SIZE);
    }
  };
  round();
  return rate(round, 2 * PAGES, options.minSampleMs);
}

export const storeBench: BenchDefinition = {
  name: "store",
  description: "tmem put+get of 4 KiB pages through the hypercall handler (whole, compressed, default on random) vs. Uint8Array.set",
  run(options: BenchOptions): BenchResult {
    const store: number[] = [];
    const compressed: number[] = [];
    const defaultRandom: number[] = [];
    const copy: number[] = [];
    const lz4: number[] = [];
    const evictSmall: number[] = [];
    const evictLarge: number[] = [];
    // Interleave the measurements so that background load hits them alike.
    for (let i = 0; i < options.repeats; i++) {
      copy.push(copyRate(options));
      store.push(storeRate(options, "whole"));
      compressed.push(storeRate(options, "compressed"));
      lz4.push(lz4Rate(options));
      defaultRandom.push(storeRate(options, "default-random"));
      evictSmall.push(evictingPutRate(EVICT_SMALL_FRAMES, options));
      evictLarge.push(evictingPutRate(EVICT_LARGE_FRAMES, options));
    }
    const ratio = median(store) / median(copy);
    const compressedRatio = median(compressed) / median(copy);
    return {
      measurements: [
        { name: "store put+get, whole pages (no compression or dedup, random)", unit: "pages/s", samples: store },
        { name: "store put+get, compressed (default store, half-random pages)", unit: "pages/s", samples: compressed },
        { name: "store put+get, default store, random pages", unit: "pages/s", samples: defaultRandom },
        { name: "copy limit (Uint8Array.set 4 KiB)", unit: "pages/s", samples: copy },
        { name: "LZ4 limit (compressPage + decompressPage of the compressed store's pages, no store)", unit: "pages/s", samples: lz4 },
        { name: `put evicting LRU, store of ${EVICT_SMALL_FRAMES} frames`, unit: "puts/s", samples: evictSmall },
        { name: `put evicting LRU, store of ${EVICT_LARGE_FRAMES} frames`, unit: "puts/s", samples: evictLarge },
      ],
      derived: [
        {
          name: "store / copy limit",
          value: ratio,
          unit: "ratio",
          note: ratio >= TARGET_RATIO ? `meets target >= ${TARGET_RATIO}` : `BELOW target ${TARGET_RATIO}`,
        },
        {
          name: "compressed store / copy limit",
          value: compressedRatio,
          unit: "ratio",
          note: compressedRatio >= COMPRESSED_TARGET_RATIO ? `meets target >= ${COMPRESSED_TARGET_RATIO}` : `BELOW target ${COMPRESSED_TARGET_RATIO}`,
        },
        {
          name: "compressed store / LZ4 limit",
          value: median(compressed) / median(lz4),
          unit: "ratio",
          note: "the store's share of the compressed path's time is 1 - this",
        },
        { name: "LZ4 limit / copy limit", value: median(lz4) / median(copy), unit: "ratio", note: "the most a compressing store could keep" },
        { name: "default store on random pages / copy limit", value: median(defaultRandom) / median(copy), unit: "ratio" },
        {
          name: `evicting put, ${EVICT_LARGE_FRAMES} / ${EVICT_SMALL_FRAMES} frames`,
          value: median(evictLarge) / median(evictSmall),
          unit: "ratio",
          note: "about 1 when eviction is O(1) per page",
        },
      ],
    };
  },
};
