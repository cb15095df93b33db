import { describe, expect, it } from "vitest";
import {
  TMEM_DESTROY_POOL,
  TMEM_ERRORS,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_GET_PAGE,
  TMEM_HIT,
  TMEM_NEW_POOL,
  TMEM_POOL_SHARED,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
} from "../../../hypervisor/tmem/abi.ts";
import { ClientCounters, emptyErrorCounts, errorName, StoreDensityTracker, type StoreMetricsJson } from "../../../hypervisor/tmem/metrics.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";
import { BugIndicatingError } from "../../../hypervisor/errors.ts";
import { TestGuest } from "./test-guest.ts";

describe("error names", () => {
  it("name every TMEM_E* code, and a code outside the ABI is a bug", () => {
    for (const [name, code] of Object.entries(TMEM_ERRORS)) expect(errorName(code)).toBe(name);
    for (const code of [-3, -100, 0, 1]) expect(() => errorName(code)).toThrow(BugIndicatingError);
    expect(Object.values(emptyErrorCounts()).every((n) => n === 0)).toBe(true);
    expect(Object.keys(emptyErrorCounts())).toEqual(Object.keys(TMEM_ERRORS));
  });
});

describe("ClientCounters", () => {
  it("count each op under its own counter and nothing for an unknown op", () => {
    const k = new ClientCounters();
    for (const op of [TMEM_PROBE, TMEM_NEW_POOL, TMEM_DESTROY_POOL, TMEM_PUT_PAGE, TMEM_GET_PAGE, TMEM_FLUSH_PAGE, TMEM_FLUSH_OBJECT, 3, 200]) {
      k.countOp(op);
    }
    expect(k).toMatchObject({ probes: 1, newPools: 1, destroyPools: 1, puts: 1, gets: 1, flushPages: 1, flushObjects: 1 });
  });

  it("count negative results by name and ignore the others", () => {
    const k = new ClientCounters();
    for (const r of [0, 1, 17, TMEM_ERRORS.ENOSPC, TMEM_ERRORS.ENOSPC, TMEM_ERRORS.EPROTO]) k.countResult(r);
    expect(k.errors).toEqual({ ...emptyErrorCounts(), ENOSPC: 2, EPROTO: 1 });
  });
});

describe("store metrics", () => {
  it("count evictions and refusals on the pool, its owner and the store", () => {
    const store = new TmemStore({ budgetFrames: 1 });
    const g = new TestGuest(store, "g");
    g.probe();
    const a = g.newPool();
    const b = g.newPool();
    g.fillDistinct(16, 1);
    expect(g.put(a, 1n, 0, 16)).toBe(TMEM_HIT);
    g.fillDistinct(16, 2);
    expect(g.put(b, 1n, 0, 16)).toBe(TMEM_HIT); // evicts a's page
    expect(store.poolMetrics(g.clientId, a)).toMatchObject({ evictions: 1, pages: 0, puts: 1 });
    expect(store.poolMetrics(g.clientId, b)).toMatchObject({ evictions: 0, pages: 1, puts: 1 });
    expect(store.clientMetrics(g.clientId).evictions).toBe(1);
    expect(store.metrics().evictions).toBe(1);
    store.freeze(g.clientId);
    expect(g.put(b, 1n, 0, 16)).toBe(TMEM_ERRORS.EBUSY);
    expect(store.poolMetrics(g.clientId, b)).toMatchObject({ putsRefused: 1, pages: 0 });
  });

  it("show a shared pool under every member, with all members' traffic", () => {
    const store = new TmemStore({ budgetFrames: 4 });
    const uuid = "12345678-9abc-def0-1234-56789abcdef0";
    const [x, y] = [new TestGuest(store, "x"), new TestGuest(store, "y")];
    for (const g of [x, y]) {
      store.authorizeShared(g.clientId, uuid);
      g.probe();
    }
    const px = x.newPool(TMEM_POOL_SHARED, uuid);
    y.newPool(); // y's shared pool gets local id 1
    const py = y.newPool(TMEM_POOL_SHARED, uuid);
    x.fillDistinct(16, 1);
    x.put(px, 5n, 5, 16);
    y.get(py, 5n, 5, 17);
    const seenByX = store.poolMetrics(x.clientId, px);
    const seenByY = store.poolMetrics(y.clientId, py);
    expect(seenByX).toMatchObject({ poolId: 0, shared: true, uuid, owner: x.clientId, members: [x.clientId, y.clientId], puts: 1, getHits: 1 });
    expect(seenByY).toEqual({ ...seenByX, poolId: 1 });
  });

  it("are snapshots: changing one changes nothing in the store", () => {
    const store = new TmemStore({ budgetFrames: 4 });
    const g = new TestGuest(store, "g");
    g.call(0xff);
    const snap = store.clientMetrics(g.clientId);
    snap.errors.EPROTO = 99;
    snap.puts = 99;
    expect(store.clientMetrics(g.clientId).errors.EPROTO).toBe(1);
    expect(store.clientMetrics(g.clientId).puts).toBe(0);
  });
});

describe("StoreDensityTracker", () => {
  const m = (framesUsed: number, pages: number, sameFilledPages: number, fragmentationFrames: number) =>
    ({ budgetFrames: 100, framesTotal: 100, framesUsed, maxPages: 1000, pages, pagesEphemeral: pages, pagesPersistent: 0, sameFilledPages, evictions: 0, compressedBytes: pages * 2000, fragmentationFrames, clients: [] }) as StoreMetricsJson;
  it("keeps the densest tick at the peak of frames used and the most fragmentation", () => {
    const t = new StoreDensityTracker();
    expect(t.toJson()).toMatchObject({ samples: 0, peakFramesUsed: 0, pagesPerFrameAtPeak: null });
    t.observe(m(10, 12, 2, 1));
    t.observe(m(50, 100, 10, 8));
    t.observe(m(20, 30, 0, 5)); // after the peak: the guests flushed
    expect(t.toJson()).toEqual({
      samples: 3,
      peakFramesUsed: 50,
      dataPagesAtPeak: 90,
      pagesPerFrameAtPeak: 90 / 50,
      compressedBytesAtPeak: 200000,
      maxFragmentationFrames: 8,
      maxFragmentationFraction: 0.25,
    });
  });
});
