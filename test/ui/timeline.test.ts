/** The run over time (cli/ui/timeline.ts) from fake guests, host and store: deltas from the window's start, levels, decisions only when they change. */
import { describe, expect, it } from "vitest";
import { emptyDiskCounters } from "../../emulator/disks.ts";
import type { HostGuestSnapshot } from "../../hypervisor/host.ts";
import type { Decision } from "../../hypervisor/scheduler/types.ts";
import type { ClientMetricsJson, PoolMetricsJson, StoreMetricsJson } from "../../hypervisor/tmem/metrics.ts";
import { emptyErrorCounts } from "../../hypervisor/tmem/metrics.ts";
import { TimelineRecorder } from "../../cli/ui/timeline.ts";

function pool(over: Partial<PoolMetricsJson>): PoolMetricsJson {
  return { poolId: 0, persistent: false, shared: false, uuid: null, owner: 1, members: [1], objects: 0, pages: 0, sameFilledPages: 0, framesInUse: 0, puts: 0, putsRefused: 0, gets: 0, getHits: 0, flushPages: 0, flushObjects: 0, pagesFlushed: 0, evictions: 0, ...over };
}

function client(over: Partial<ClientMetricsJson>): ClientMetricsJson {
  return {
    id: 1, name: "g0", weight: 1, frozen: false, persistentAllowancePages: null, pagesEphemeral: 0, pagesPersistent: 0, sameFilledPages: 0, framesInUse: 0,
    probes: 0, newPools: 0, destroyPools: 0, puts: 0, putsRefused: 0, gets: 0, getHits: 0, flushPages: 0, flushObjects: 0, pagesFlushed: 0, evictions: 0, internalErrors: 0,
    errors: emptyErrorCounts(), pools: [], ...over,
  };
}

function snap(over: Partial<HostGuestSnapshot>): HostGuestSnapshot {
  return { name: "g0", ramMib: 128, weight: 1, balloonTargetPages: 0, balloonPages: 0, memAvailableMib: undefined, tmemPagesEphemeral: 0, tmemPagesPersistent: 0, tmemGetHits: 0, tmemPuts: 0, ...over };
}

describe("TimelineRecorder", () => {
  it("counts from the window's start (deltas), keeps levels as they are, and lists pools once under their owner", () => {
    const disks0 = { data: emptyDiskCounters(), swap: emptyDiskCounters() };
    const disks1 = { data: emptyDiskCounters(), swap: emptyDiskCounters() };
    disks0.data.sectorsRead = 100;
    disks0.swap.sectorsWritten = 7;
    let m: StoreMetricsJson = {
      budgetFrames: 1000, framesTotal: 2000, framesUsed: 10, maxPages: 9999, pages: 10, pagesEphemeral: 10, pagesPersistent: 0, sameFilledPages: 0, evictions: 3,
      clients: [client({ id: 1, name: "g0", puts: 50, gets: 20, getHits: 5, putsRefused: 1 }), client({ id: 2, name: "g1", puts: 9 })],
    };
    let snaps = [snap({ name: "g0", balloonPages: 0 }), snap({ name: "g1" })];
    const rec = new TimelineRecorder(
      [
        { name: "g0", disks: disks0, clientId: 1 },
        { name: "g1", disks: disks1, clientId: 2 },
      ],
      { snapshot: () => snaps },
      { metrics: () => m },
    );
    disks0.data.sectorsRead = 180;
    disks0.swap.sectorsRead = 16;
    disks0.swap.sectorsWritten = 31;
    const shared = pool({ poolId: 1, shared: true, owner: 1, members: [1, 2], pages: 40, framesInUse: 30 });
    m = {
      ...m,
      framesUsed: 60,
      evictions: 5,
      clients: [
        client({ id: 1, name: "g0", puts: 80, gets: 30, getHits: 12, putsRefused: 4, evictions: 2, pagesEphemeral: 40, pagesPersistent: 8, framesInUse: 45, pools: [pool({ persistent: true, pages: 8, framesInUse: 8 }), shared] }),
        client({ id: 2, name: "g1", puts: 9, pools: [shared] }),
      ],
    };
    snaps = [snap({ name: "g0", balloonPages: 512, balloonTargetPages: 600, memAvailableMib: 33 }), snap({ name: "g1" })];
    const s = rec.sample(2.5);
    expect(s.t).toBe(2.5);
    expect(s.guests[0]).toEqual({
      name: "g0", ramMib: 128, balloonPages: 512, balloonTargetPages: 600, memAvailableMib: 33, tmemPagesEphemeral: 40, tmemPagesPersistent: 8,
      tmemPuts: 30, tmemGets: 10, tmemGetHits: 7, tmemPutsRefused: 3, tmemEvictions: 2, dataSectorsRead: 80, swapSectorsRead: 16, swapSectorsWritten: 24,
    });
    expect(s.guests[1]).toMatchObject({ name: "g1", tmemPuts: 0, memAvailableMib: null, dataSectorsRead: 0 });
    expect(s.store).toMatchObject({ budgetFrames: 1000, framesUsed: 60, evictions: 5, putsRefused: 4 });
    expect(s.store.clients.map((c) => [c.name, c.framesInUse])).toEqual([["g0", 45], ["g1", 0]]);
    // The shared pool appears once, under its owner g0, though both members list it.
    expect(s.store.pools).toEqual([
      { owner: "g0", poolId: 0, persistent: true, shared: false, pages: 8, framesInUse: 8 },
      { owner: "g0", poolId: 1, persistent: false, shared: true, pages: 40, framesInUse: 30 },
    ]);
    expect(rec.toJson().samples).toEqual([s]);
  });

  it("records a decision only when a target or the store budget changes, with the policy's reason", () => {
    const m: StoreMetricsJson = { budgetFrames: 1000, framesTotal: 2000, framesUsed: 0, maxPages: 1, pages: 0, pagesEphemeral: 0, pagesPersistent: 0, sameFilledPages: 0, evictions: 0, clients: [] };
    const rec = new TimelineRecorder([], { snapshot: () => [snap({ name: "g0" }), snap({ name: "g1", balloonTargetPages: 100 })] }, { metrics: () => m });
    const d = (t0: number, t1: number, store: number): Decision => ({
      guests: [
        { name: "g0", balloonTargetPages: t0, persistentAllowancePages: 0, reason: "shrink" },
        { name: "g1", balloonTargetPages: t1, persistentAllowancePages: 0, reason: "grow" },
      ],
      storeBudgetFrames: store,
      overBudgetFrames: 0,
    });
    expect(rec.decided(1, d(0, 100, 1000))).toEqual([]);
    expect(rec.decided(2, d(256, 100, 1256))).toEqual([
      { t: 2, target: "g0", from: 0, to: 256, reason: "shrink" },
      { t: 2, target: "store", from: 1000, to: 1256, reason: "grow" },
    ]);
    expect(rec.decided(3, d(256, 0, 1100))).toEqual([
      { t: 3, target: "g1", from: 100, to: 0, reason: "grow" },
      { t: 3, target: "store", from: 1256, to: 1100, reason: "shrink" },
    ]);
    expect(rec.toJson().decisions).toHaveLength(4);
  });
});
