/**
 * Model-based property tests: random hypercall sequences from two guests, run against the real
 * handler + store and against the reference model (model.ts).
 *  - With a budget that holds everything, the store and the model agree on every result, every
 *    register the probe writes and every byte a get writes, and the store's gauges equal the model's
 *    page counts.
 *  - With a small budget and page cap, the store may evict ephemeral pages and refuse puts, but a
 *    hit always returns exactly the data last put at that handle (never stale), persistent pages
 *    are never lost, and the slab's frame accounting balances after every step.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  TMEM_DESTROY_POOL,
  TMEM_EBUSY,
  TMEM_EFAULT,
  TMEM_ENOSPC,
  TMEM_EPERM,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_RANGE,
  TMEM_FLUSH_PAGE,
  TMEM_GET_PAGE,
  TMEM_HIT,
  TMEM_MISS,
  TMEM_NEW_POOL,
  TMEM_POOL_PERSIST,
  TMEM_POOL_SHARED,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
} from "../../../hypervisor/tmem/abi.ts";
import { uuidToWords } from "../../../hypervisor/tmem/handle.ts";
import { encodeEax } from "../../../hypervisor/tmem/hypercall.ts";
import { TmemStore, type TmemStoreOptions } from "../../../hypervisor/tmem/store.ts";
import { compressPage } from "../../../hypervisor/tmem/codec.ts";
import { FRAME_SIZE as PAGE_SIZE, Slab } from "../../../hypervisor/tmem/slab.ts";
import { Zpool } from "../../../hypervisor/tmem/zpool.ts";
import { TmemModel, type ModelOutcome, type Regs } from "./model.ts";
import { bytesEqual, checkEqual, checkTrue, distinctPage, isSameFilled, objectWords, TestGuest } from "./test-guest.ts";

const UUIDS = ["aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002", "cccccccc-0000-0000-0000-000000000003"];
/** Guest 0 may use UUIDS[0] and UUIDS[1]; guest 1 only UUIDS[0]; nobody UUIDS[2]. */
const AUTH: readonly (readonly string[])[] = [[UUIDS[0]!, UUIDS[1]!], [UUIDS[0]!]];
const OBJECTS = [0n, 1n, 2n, 2n ** 53n, 2n ** 53n + 1n, 0xffffffffn, 2n ** 64n - 1n /* reserved */];
const INDEXES = [0, 1, 2, 0xfffffffe, 0xffffffff /* reserved */];
/** Frames puts read from and gets write to; their content changes as gets land on them. */
const FRAMES = [16, 17, 18, 19, 20, 21, 22, 23];
const BAD_FRAMES = [0xa0, 0xbf, 256, 0xffffffff];
const MEMORY_BYTES = 1 << 20;

type Cmd =
  | { k: "call"; g: number; regs: Regs }
  | { k: "freeze" | "thaw"; g: number }
  | { k: "reset"; g: number; pending: boolean }
  | { k: "allowance"; g: number; pages: number | undefined };

// Mostly a few handles in the pools the setup creates, so that ops meet each other's pages.
const guestIdx = fc.constantFrom(0, 1);
const poolId = fc.oneof({ weight: 10, arbitrary: fc.nat(2) }, { weight: 1, arbitrary: fc.nat(17) }, { weight: 1, arbitrary: fc.constant(255) });
const object = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...OBJECTS.slice(1, 3)) }, { weight: 2, arbitrary: fc.constantFrom(...OBJECTS) });
const index = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...INDEXES.slice(0, 2)) }, { weight: 2, arbitrary: fc.constantFrom(...INDEXES) });
const frame = fc.oneof({ weight: 9, arbitrary: fc.constantFrom(...FRAMES) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_FRAMES) });
/** The op argument: zero nearly always (non-zero is refused for data ops). */
const argBits = fc.oneof({ weight: 19, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xffff }) });

function dataOp(op: number) {
  return fc.record({ g: guestIdx, pool: poolId, obj: object, idx: index, pfn: frame, arg: argBits }).map(({ g, pool, obj, idx, pfn, arg }): Cmd => {
    const [lo, hi] = objectWords(obj);
    return { k: "call", g, regs: { eax: encodeEax(op, pool, arg), ebx: lo, ecx: hi, esi: idx, edi: pfn } };
  });
}

const command: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 120, arbitrary: dataOp(TMEM_PUT_PAGE) },
  { weight: 100, arbitrary: dataOp(TMEM_GET_PAGE) },
  { weight: 32, arbitrary: dataOp(TMEM_FLUSH_PAGE) },
  { weight: 16, arbitrary: dataOp(TMEM_FLUSH_OBJECT) },
  {
    weight: 12,
    arbitrary: fc
      .record({ g: guestIdx, pool: poolId, obj: object, idx: index, n: fc.constantFrom(0, 1, 2, 3, 512, 513), arg: argBits })
      .map(({ g, pool, obj, idx, n, arg }): Cmd => {
        const [lo, hi] = objectWords(obj);
        return { k: "call", g, regs: { eax: encodeEax(TMEM_FLUSH_RANGE, pool, arg), ebx: lo, ecx: hi, esi: idx, edi: n } };
      }),
  },
  {
    weight: 32,
    arbitrary: fc
      .record({ g: guestIdx, flags: fc.constantFrom(0, 0, 1, 1, 2, 2, 3, 4, 0x8001), uuid: fc.constantFrom(...UUIDS) })
      .map(({ g, flags, uuid }): Cmd => {
        const [w0, w1, w2, w3] = uuidToWords(uuid);
        return { k: "call", g, regs: { eax: encodeEax(TMEM_NEW_POOL, 0, flags), ebx: w0, ecx: w1, esi: w2, edi: w3 } };
      }),
  },
  {
    weight: 4,
    arbitrary: fc.record({ g: guestIdx, pool: poolId, arg: argBits }).map(({ g, pool, arg }): Cmd => ({
      k: "call",
      g,
      regs: { eax: encodeEax(TMEM_DESTROY_POOL, pool, arg), ebx: 0, ecx: 0, esi: 0, edi: 0 },
    })),
  },
  {
    // Rare: every probe is a full client reset (the pools the setup made are gone)
    weight: 1,
    arbitrary: fc.record({ g: guestIdx, version: fc.constantFrom(1, 1, 1, 1, 1, 1, 0, 2) }).map(({ g, version }): Cmd => ({
      k: "call",
      g,
      regs: { eax: encodeEax(TMEM_PROBE), ebx: version, ecx: 0, esi: 0, edi: 0 },
    })),
  },
  {
    weight: 8,
    arbitrary: fc
      .record({ g: guestIdx, eax: fc.integer({ min: 0, max: 0xffffffff }), ebx: fc.nat(3), pfn: frame })
      .map(({ g, eax, ebx, pfn }): Cmd => ({ k: "call", g, regs: { eax, ebx, ecx: 0, esi: 0, edi: pfn } })),
  },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("freeze" as const), g: guestIdx }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("reset" as const), g: guestIdx, pending: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant("thaw" as const), g: guestIdx }) },
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constant("allowance" as const), g: guestIdx, pages: fc.option(fc.nat(3), { nil: undefined }) }),
  },
);

/** Setup every run starts with, so that random ops find pools: see AUTH for the uuids. */
function setupCommands(): Cmd[] {
  const call = (g: number, eax: number, ebx = 0, ecx = 0, esi = 0, edi = 0): Cmd => ({ k: "call", g, regs: { eax, ebx, ecx, esi, edi } });
  const [w0, w1, w2, w3] = uuidToWords(UUIDS[0]!);
  return [
    call(0, encodeEax(TMEM_PROBE), 1),
    call(1, encodeEax(TMEM_PROBE), 1),
    call(0, encodeEax(TMEM_NEW_POOL, 0, 0)), // guest 0: 0 private ephemeral
    call(0, encodeEax(TMEM_NEW_POOL, 0, TMEM_POOL_PERSIST)), // 1 persistent
    call(0, encodeEax(TMEM_NEW_POOL, 0, TMEM_POOL_SHARED), w0, w1, w2, w3), // 2 shared
    call(1, encodeEax(TMEM_NEW_POOL, 0, TMEM_POOL_SHARED), w0, w1, w2, w3), // guest 1: 0 shared (same pool)
    call(1, encodeEax(TMEM_NEW_POOL, 0, TMEM_POOL_PERSIST)), // 1 persistent
    call(1, encodeEax(TMEM_NEW_POOL, 0, 0)), // 2 private ephemeral
  ];
}

/**
 * Guest memory content every run starts from: distinct (random, so incompressible), zero and
 * repeated-word pages, and compressible ones (half random, half one word, like memtouch's).
 */
function fillFrames(g: TestGuest, seed: number): void {
  FRAMES.forEach((pfn, i) => {
    if (i === 5) g.fillWord(pfn, 0);
    else if (i === 6) g.fillWord(pfn, 0xdeadbeef);
    else if (i >= 3) g.page(pfn).set(compressiblePage(seed * 16 + i));
    else g.page(pfn).set(distinctPage(seed * 16 + i));
  });
}

function compressiblePage(seed: number): Uint8Array {
  const page = distinctPage(seed);
  new Uint32Array(page.buffer, 2048, 512).fill(0x01020304 + seed);
  return page;
}

/**
 * Store configurations the model runs against. "whole pages" is the store without compression or
 * dedup: every page with data takes exactly one frame. The others keep compressed, shared data in
 * size classes: the frames they use are what the allocator holds (checkInvariants), within budget.
 */
/** What the compressing store counts against an allowance for a page: its class slot, in pages. */
function compressedUnits(data: Uint8Array): number {
  if (isSameFilled(data)) return 1;
  return ZPOOL.classFor(compressPage(data).length).size / PAGE_SIZE;
}
const ZPOOL = new Zpool(Slab.allocate(0));

const CONFIGS: { name: string; options: Pick<TmemStoreOptions, "compression" | "dedup">; wholePages: boolean }[] = [
  { name: "whole pages", options: { compression: false, dedup: "off" }, wholePages: true },
  { name: "compressed, dedup per client (the default)", options: {}, wholePages: false },
  { name: "compressed, dedup across clients", options: { dedup: "global" }, wholePages: false },
];

interface Run {
  store: TmemStore;
  guests: TestGuest[];
  model: TmemModel;
}

function newRun(budgetFrames: number, maxPages: number | undefined, seed: number, config: (typeof CONFIGS)[number]): Run {
  const store = new TmemStore({ budgetFrames, ...(maxPages === undefined ? {} : { maxPages }), ...config.options });
  const model = new TmemModel(MEMORY_BYTES, config.wholePages ? undefined : compressedUnits);
  const guests = [0, 1].map((g) => {
    const guest = new TestGuest(store, `g${g}`, { memoryBytes: MEMORY_BYTES });
    for (const uuid of AUTH[g]!) store.authorizeShared(guest.clientId, uuid);
    model.addClient(AUTH[g]!);
    fillFrames(guest, seed + g);
    return guest;
  });
  return { store, guests, model };
}

/** Runs one command on both sides; returns the store's and the model's view of a hypercall. */
function step(run: Run, cmd: Cmd): { result: number; outcome: ModelOutcome; before: Uint8Array | undefined; guest: TestGuest } | undefined {
  const guest = run.guests[cmd.g]!;
  const mc = run.model.client(cmd.g);
  switch (cmd.k) {
    case "freeze":
      run.store.freeze(guest.clientId);
      mc.frozen = true;
      return undefined;
    case "thaw":
      run.store.thaw(guest.clientId);
      mc.frozen = false;
      return undefined;
    case "reset":
      run.store.resetClient(guest.clientId, { pending: cmd.pending });
      run.model.reset(cmd.g, cmd.pending);
      return undefined;
    case "allowance":
      run.store.setPersistentAllowance(guest.clientId, cmd.pages);
      mc.allowance = cmd.pages ?? Number.POSITIVE_INFINITY;
      return undefined;
    case "call": {
      const r = cmd.regs;
      const pfn = r.edi >>> 0;
      const before = FRAMES.includes(pfn) ? guest.pageCopy(pfn) : undefined;
      // The model reads the frame before the store runs (a get by the store may change it).
      const outcome = run.model.hypercall(cmd.g, r, (p) => guest.page(p));
      const result = guest.call(r.eax, r.ebx, r.ecx, r.esi, r.edi);
      return { result, outcome, before, guest };
    }
  }
}

/** isSameFilled, remembered per page (model pages are never modified). */
const sameFilledMemo = new WeakMap<Uint8Array, boolean>();
function sameFilledCached(page: Uint8Array): boolean {
  let v = sameFilledMemo.get(page);
  if (v === undefined) {
    v = isSameFilled(page);
    sameFilledMemo.set(page, v);
  }
  return v;
}

/**
 * What the generated runs exercised, so that a test can check it reached the paths it is about
 * (a property that never meets a shared-pool hit proves nothing about shared pools).
 */
class Coverage {
  private readonly seen = new Map<string, number>();

  note(op: number, result: number, outcome: ModelOutcome): void {
    const pool = outcome.pool;
    const kind = pool === undefined ? "-" : pool.persistent ? "persistent" : pool.uuid !== undefined ? "shared" : "private";
    const key = `${op}:${result}:${kind}`;
    this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
  }

  dump(): string {
    return [...this.seen].map(([k, v]) => `${k}=${v}`).join(" ");
  }

  count(op: number, result: number | ((r: number) => boolean), kind?: string): number {
    let n = 0;
    for (const [key, v] of this.seen) {
      const [o, r, k] = key.split(":");
      const matches = typeof result === "number" ? Number(r) === result : result(Number(r));
      if (Number(o) === op && matches && (kind === undefined || k === kind)) n += v;
    }
    return n;
  }
}

function opOf(cmd: Cmd): number {
  return cmd.k === "call" ? (cmd.regs.eax >>> 0) & 0xff : -1;
}

describe.each(CONFIGS)("the store ($name) against the reference model", (config) => {
  it("agrees on every result, register and byte when the budget holds everything", () => {
    const coverage = new Coverage();
    fc.assert(
      fc.property(fc.array(command, { minLength: 20, maxLength: 80, size: "max" }), fc.nat(1000), (cmds, seed) => {
        const run = newRun(256, undefined, seed, config);
        for (const cmd of [...setupCommands(), ...cmds]) {
          const s = step(run, cmd);
          if (s !== undefined) {
            const { result, outcome, before, guest } = s;
            coverage.note(opOf(cmd), result, outcome);
            const where = (): string => JSON.stringify(cmd);
            checkEqual(result, outcome.eax, () => `result of ${where()}`);
            if (outcome.probe !== undefined) {
              checkEqual(guest.regs.ebx, outcome.probe.ebx, "EBX after a probe");
              checkEqual(guest.regs.ecx, outcome.probe.ecx, "ECX after a probe");
            }
            if (outcome.got !== undefined) {
              checkTrue(bytesEqual(guest.page(outcome.got.pfn), outcome.got.data), () => `data of ${where()}`);
            } else if (before !== undefined && cmd.k === "call") {
              checkTrue(bytesEqual(guest.page(cmd.regs.edi), before), () => `${where()} wrote to the frame`);
            }
          }
          run.store.checkInvariants();
          const pages = run.model.allPages();
          const sameFilled = pages.filter(sameFilledCached).length;
          const m = run.store.metrics();
          checkEqual(m.pages, pages.length, "pages");
          checkEqual(m.sameFilledPages, sameFilled, "same-filled pages");
          if (config.wholePages) checkEqual(m.framesUsed, pages.length - sameFilled, "frames used");
          else checkTrue((m.objects ?? 0) <= pages.length - sameFilled, "no more data objects than pages with data");
        }
        expect(run.store.metrics().evictions).toBe(0);
        for (const g of run.guests) expect(g.handler.lastInternalError).toBeUndefined();
      }),
      // 300, not 150: the coverage floors below are met by chance of the random sequences, and at
      // 150 "puts over the allowance" counted 9-34 in 24 runs but 4 in a clean clone's npm test
      // (2026-11-30), which failed it; at 300 the expected count is twice as far from the floor.
      { numRuns: 300 },
    );
    for (const kind of ["private", "shared", "persistent"]) {
      expect(coverage.count(TMEM_GET_PAGE, TMEM_HIT, kind), `get hits in ${kind} pools; ${coverage.dump()}`).toBeGreaterThan(20);
      expect(coverage.count(TMEM_PUT_PAGE, TMEM_HIT, kind), `puts in ${kind} pools`).toBeGreaterThan(20);
    }
    expect(coverage.count(TMEM_FLUSH_OBJECT, (r) => r > 0), "flushes of non-empty objects").toBeGreaterThan(5);
    expect(coverage.count(TMEM_FLUSH_PAGE, 1), "flushes that removed a page").toBeGreaterThan(5);
    expect(coverage.count(TMEM_PUT_PAGE, TMEM_EBUSY), "puts while frozen").toBeGreaterThan(5);
    expect(coverage.count(TMEM_PUT_PAGE, TMEM_ENOSPC, "persistent"), "puts over the allowance").toBeGreaterThan(5);
    expect(coverage.count(TMEM_NEW_POOL, TMEM_EPERM), "unauthorised shared pools").toBeGreaterThan(5);
    expect(coverage.count(TMEM_PUT_PAGE, TMEM_EFAULT), "bad frames").toBeGreaterThan(5);
  }, 60_000); // fast-check runs on a shared, loaded machine

  it("never returns stale data and never loses a persistent page when the budget is small", () => {
    const coverage = new Coverage();
    /** Hypercalls where the store and the model differed because the store could not keep a page. */
    const lost = { getMisses: 0, putsRefused: 0, evictions: 0 };
    fc.assert(
      fc.property(
        fc.array(command, { minLength: 20, maxLength: 100, size: "max" }),
        fc.nat(1000),
        fc.integer({ min: 0, max: 4 }),
        fc.nat(4),
        (cmds, seed, budget, extraPages) => {
          const run = newRun(budget, budget + 1 + extraPages, seed, config);
          for (const cmd of [...setupCommands(), ...cmds]) {
            const s = step(run, cmd);
            if (s !== undefined) {
              const { result, outcome, before, guest } = s;
              const op = opOf(cmd);
              const pool = outcome.pool;
              const where = (): string => JSON.stringify(cmd);
              coverage.note(op, result, outcome);
              if (result === TMEM_HIT && op === TMEM_GET_PAGE) {
                // A hit is exactly the data last put at that handle.
                checkEqual(outcome.eax, TMEM_HIT, () => `store hit where the model has nothing: ${where()}`);
                checkTrue(bytesEqual(guest.page(outcome.got!.pfn), outcome.got!.data), () => `stale data: ${where()}`);
              } else if (result !== outcome.eax) {
                // The only differences allowed: pages the store could not keep.
                const [lo, hi] = [cmd.k === "call" ? cmd.regs.ebx >>> 0 : 0, cmd.k === "call" ? cmd.regs.ecx >>> 0 : 0];
                const objKey = `${lo}:${hi}`;
                const idx = cmd.k === "call" ? cmd.regs.esi >>> 0 : 0;
                expect(pool, `unexpected result ${result} (model ${outcome.eax}): ${where()}`).toBeDefined();
                if (op === TMEM_PUT_PAGE) {
                  expect([result, outcome.eax], where()).toEqual([TMEM_ENOSPC, TMEM_HIT]);
                  run.model.remove(pool!, objKey, idx); // a refused put flushes the handle
                  lost.putsRefused++;
                } else {
                  expect(pool!.persistent, `a persistent page was lost: ${where()}`).toBe(false);
                  if (op === TMEM_GET_PAGE) {
                    expect([result, outcome.eax], where()).toEqual([TMEM_MISS, TMEM_HIT]);
                    run.model.remove(pool!, objKey, idx);
                    lost.getMisses++;
                  } else if (op === TMEM_FLUSH_PAGE) {
                    expect([result, outcome.eax], where()).toEqual([0, 1]);
                  } else {
                    expect([TMEM_FLUSH_OBJECT, TMEM_FLUSH_RANGE], where()).toContain(op);
                    expect(result >= 0 && result < outcome.eax, where()).toBe(true);
                  }
                }
              }
              if (result !== TMEM_HIT || op !== TMEM_GET_PAGE) {
                if (before !== undefined && cmd.k === "call") {
                  checkTrue(bytesEqual(guest.page(cmd.regs.edi), before), () => `${where()} wrote to the frame`);
                }
              }
            }
            run.store.checkInvariants();
            const m = run.store.metrics();
            if (config.wholePages) checkEqual(m.framesUsed, m.pages - m.sameFilledPages, "frames used");
            checkTrue(m.framesUsed <= budget, "frames used within the budget");
            checkTrue(m.pages <= m.maxPages, "pages within maxPages");
          }
          for (const g of run.guests) expect(g.handler.lastInternalError).toBeUndefined();
          lost.evictions += run.store.metrics().evictions;
        },
      ),
      { numRuns: 200 },
    );
    expect(lost.evictions, "evictions").toBeGreaterThan(50);
    expect(lost.getMisses, "gets that missed an evicted page").toBeGreaterThan(10);
    expect(lost.putsRefused, "puts refused for want of room").toBeGreaterThan(10);
    for (const kind of ["private", "shared", "persistent"]) {
      expect(coverage.count(TMEM_GET_PAGE, TMEM_HIT, kind), `get hits in ${kind} pools`).toBeGreaterThan(10);
    }
  }, 60_000);
});
