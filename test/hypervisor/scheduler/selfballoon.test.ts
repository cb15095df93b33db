import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SelfBalloonPolicy, SELFBALLOON_DEFAULTS } from "../../../hypervisor/scheduler/selfballoon.ts";
import { createMemoryPolicy } from "../../../hypervisor/scheduler/policy.ts";
import type { Decision, PolicyInput } from "../../../hypervisor/scheduler/types.ts";
import { TmemuError } from "../../../hypervisor/user-errors.ts";
import { heldPages, PAGES_PER_MIB, sampleOf, SimHost, simGuest, statsOf, type SimGuest } from "./plant.ts";

const MIB = PAGES_PER_MIB;

/** Runs `n` decisions; returns the targets of guest `i` after each. */
function run(host: SimHost, n: number, i = 0): number[] {
  const targets: number[] = [];
  for (let k = 0; k < n; k++) targets.push(host.step().guests[i]!.balloonTargetPages);
  return targets;
}

function residentMib(g: SimGuest): number {
  return g.ramMib - g.balloonPages / MIB;
}

describe("selfballoon: an idle guest", () => {
  it("does not move on its first statistics (a baseline), then starts to shrink", () => {
    const host = new SimHost(new SelfBalloonPolicy(), 768, [simGuest("a", 256)]);
    const first = host.step();
    expect(first.guests[0]).toMatchObject({ balloonTargetPages: 0, reason: "baseline" });
    const second = host.step();
    expect(second.guests[0]!.reason).toBe("shrink");
    expect(second.guests[0]!.balloonTargetPages).toBeGreaterThan(0);
  });

  it("shrinks toward active + reserve over several decisions, a bounded step at a time", () => {
    // 256 MiB, 12 MiB kernel overhead, 40 MiB used: active 52 MiB, reserve 25.6 MiB -> 77.6 MiB.
    const host = new SimHost(new SelfBalloonPolicy({ floorMib: 48 }), 768, [simGuest("a", 256)]);
    const targets = run(host, 60);
    const step = 32 * MIB; // default shrinkStepMib for 256 MiB: RAM / 8
    for (let k = 1; k < targets.length; k++) {
      expect(targets[k]!).toBeGreaterThanOrEqual(targets[k - 1]!);
      expect(targets[k]! - targets[k - 1]!).toBeLessThanOrEqual(step);
    }
    const moves = targets.filter((t, k) => k > 0 && t !== targets[k - 1]).length;
    expect(moves).toBeGreaterThan(3); // not in one go
    const resident = residentMib(host.guest("a"));
    expect(resident).toBeGreaterThanOrEqual(52 + 25.6);
    expect(resident).toBeLessThanOrEqual(52 + 25.6 + 12.8 + 1 / MIB); // within the band (5% of RAM)
  });

  it("never goes below its floor (default max(48 MiB, 40% of RAM)), however little it uses", () => {
    const host = new SimHost(new SelfBalloonPolicy(), 768, [simGuest("a", 256, { usedMib: 1, overheadMib: 1 })]);
    const floorPages = Math.ceil(0.4 * 256 * MIB);
    for (const t of run(host, 100)) expect(t).toBeLessThanOrEqual(256 * MIB - floorPages);
    expect(residentMib(host.guest("a"))).toBeGreaterThanOrEqual(0.4 * 256);
    expect(residentMib(host.guest("a"))).toBeLessThanOrEqual(0.4 * 256 + 12.8 + 1 / MIB);

    const small = new SimHost(new SelfBalloonPolicy(), 768, [simGuest("s", 64, { usedMib: 1, overheadMib: 1 })]);
    run(small, 100);
    expect(residentMib(small.guest("s"))).toBeGreaterThanOrEqual(48); // 48 MiB beats 40% of 64
  });

  it("does not move while it reports no statistics, or only stale ones", () => {
    const host = new SimHost(new SelfBalloonPolicy(), 768, [simGuest("a", 256, { silent: true })]);
    expect(run(host, 5)).toEqual([0, 0, 0, 0, 0]);
    expect(host.decisions.every((d) => d.guests[0]!.reason === "no-stats")).toBe(true);

    const policy = new SelfBalloonPolicy();
    const g = simGuest("a", 256);
    const at = (statsAtS: number, nowS: number): Decision =>
      policy.decide({
        totalBudgetMib: 768,
        guests: [{ ...sampleOf(g), statsAtS }],
        store: { budgetFrames: 0, framesUsed: 0, pagesPersistent: 0, pagesEphemeral: 0 },
        nowS,
      });
    at(1, 1); // baseline
    const shrunk = at(2, 2).guests[0]!;
    expect(shrunk.reason).toBe("shrink");
    g.balloonPages = shrunk.balloonTargetPages;
    const stale = at(2, 3).guests[0]!; // same statsAtS as before: stale
    expect(stale).toMatchObject({ reason: "no-stats", balloonTargetPages: shrunk.balloonTargetPages });
  });

  it("ignores statistics that do not fit together (available above total, total above RAM)", () => {
    const policy = new SelfBalloonPolicy();
    const g = simGuest("a", 128);
    const s = statsOf(g)!;
    const base: PolicyInput = {
      totalBudgetMib: 512,
      guests: [{ ...sampleOf(g), stats: { ...s, memAvailableKib: s.memTotalKib + 1 } }],
      store: { budgetFrames: 0, framesUsed: 0, pagesPersistent: 0, pagesEphemeral: 0 },
      nowS: 0,
    };
    expect(policy.decide(base).guests[0]!.reason).toBe("no-stats");
    const tooBig = { ...base, guests: [{ ...sampleOf(g), stats: { ...s, memTotalKib: 129 * 1024, memAvailableKib: 0 } }] };
    expect(policy.decide(tooBig).guests[0]!.reason).toBe("no-stats");
    const nan = { ...base, guests: [{ ...sampleOf(g), stats: { ...s, majorFaults: Number.NaN } }] };
    expect(policy.decide(nan).guests[0]!.reason).toBe("no-stats");
  });
});

describe("selfballoon: a guest under pressure", () => {
  function shrunkHost(): SimHost {
    const host = new SimHost(new SelfBalloonPolicy({ floorMib: 48 }), 768, [simGuest("a", 256)]);
    run(host, 60);
    expect(host.guest("a").balloonPages).toBeGreaterThan(100 * MIB);
    return host;
  }

  it("that starts swapping gets its balloon deflated by at least growStepMib in one decision", () => {
    const host = shrunkHost();
    const g = host.guest("a");
    const before = g.balloonPages;
    g.swapOutPages += 50;
    const d = host.step().guests[0]!;
    expect(d.reason).toBe("grow");
    expect(d.balloonTargetPages).toBeLessThanOrEqual(before - 64 * MIB); // max(32 MiB, 25% of 256)
  });

  it("that has major faults, or stores more pages in frontswap, grows too", () => {
    for (const poke of [(g: SimGuest) => (g.majorFaults += 1), (g: SimGuest) => (g.pagesPersistent += 10)]) {
      const host = shrunkHost();
      const g = host.guest("a");
      const before = g.balloonPages;
      poke(g);
      const d = host.step().guests[0]!;
      expect(d.reason).toBe("grow");
      expect(d.balloonTargetPages).toBeLessThanOrEqual(before - 64 * MIB);
    }
  });

  it("whose available memory falls below its reserve gets back at least what restores the reserve, at once", () => {
    const host = shrunkHost();
    const g = host.guest("a");
    g.usedMib += 60; // a burst: available drops far below the reserve
    const d = host.step().guests[0]!;
    expect(d.reason).toBe("grow");
    g.balloonPages = d.balloonTargetPages;
    const avail = statsOf(g)!.memAvailableKib / 1024;
    expect(avail).toBeGreaterThanOrEqual(25.6);
  });

  it("gets nothing taken for holdoffS after pressure, then shrinks again", () => {
    const host = shrunkHost();
    const g = host.guest("a");
    g.swapInPages += 8;
    host.step(); // grow, at t
    const reasons: string[] = [];
    for (let k = 0; k < 8; k++) reasons.push(host.step().guests[0]!.reason);
    // interval 2 s, holdoff 10 s: decisions at t+2 .. t+8 hold, t+10 may shrink
    expect(reasons.slice(0, 4)).toEqual(["hold", "hold", "hold", "hold"]);
    expect(reasons.slice(4)).toContain("shrink");
  });

  it("with a counter that went backwards (a reboot) is a new baseline, not pressure", () => {
    const host = shrunkHost();
    const g = host.guest("a");
    g.majorFaults = 5;
    g.swapInPages = 5;
    expect(host.step().guests[0]!.reason).toBe("grow"); // counters rose: pressure
    g.majorFaults = 1; // went down: the guest rebooted
    g.swapInPages = 0;
    const d = host.step().guests[0]!;
    expect(["baseline", "ease"]).toContain(d.reason);
  });
});

describe("selfballoon: hysteresis", () => {
  it("does not oscillate when available memory jitters within less than the band (property)", () => {
    // 256 MiB guest: band max(4, 5%) = 12.8 MiB; jitter of used memory within +-3.2 MiB.
    const bandMib = 12.8;
    fc.assert(
      fc.property(
        fc.integer({ min: 10, max: 150 }),
        fc.array(fc.double({ min: -bandMib / 4, max: bandMib / 4, noNaN: true }), { minLength: 80, maxLength: 80 }),
        (usedMib, jitter) => {
          const host = new SimHost(new SelfBalloonPolicy({ floorMib: 48 }), 768, [simGuest("a", 256, { usedMib })]);
          const targets: number[] = [];
          for (const j of jitter) {
            host.guest("a").usedMib = usedMib + j;
            const d = host.step().guests[0]!;
            expect(["baseline", "shrink", "hold"]).toContain(d.reason);
            targets.push(d.balloonTargetPages);
          }
          // Never a move back: a balloon that only ever inflates or holds does not oscillate.
          for (let k = 1; k < targets.length; k++) expect(targets[k]!).toBeGreaterThanOrEqual(targets[k - 1]!);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("holds a converged guest still while its statistics stay the same", () => {
    const host = new SimHost(new SelfBalloonPolicy({ floorMib: 48 }), 768, [simGuest("a", 256)]);
    run(host, 60);
    const last = run(host, 10);
    expect(new Set(last).size).toBe(1);
    expect(host.decisions.at(-1)!.guests[0]!.reason).toBe("hold");
  });
});

describe("selfballoon: weights", () => {
  it("a guest with a bigger weight gives less and keeps more", () => {
    const host = new SimHost(new SelfBalloonPolicy({ floorMib: 16 }), 768, [
      simGuest("light", 256, { weight: 1 }),
      simGuest("heavy", 256, { weight: 3 }),
    ]);
    host.step();
    const d = host.step();
    expect(d.guests[1]!.balloonTargetPages).toBeLessThan(d.guests[0]!.balloonTargetPages);
    for (let k = 0; k < 80; k++) host.step();
    expect(residentMib(host.guest("heavy"))).toBeGreaterThan(residentMib(host.guest("light")) + 5);
  });

  it("splits the store's persistent allowances by weight", () => {
    const host = new SimHost(new SelfBalloonPolicy(), 768, [
      simGuest("a", 128, { weight: 1 }),
      simGuest("b", 128, { weight: 3 }),
    ]);
    const d = host.step();
    const [a, b] = d.guests.map((g) => g.persistentAllowancePages);
    expect(a! + b!).toBe(d.storeBudgetFrames);
    expect(b!).toBe(3 * a!);
  });

  it("grants the bigger weight first when persistent pages leave room for only part of the growth", () => {
    const policy = new SelfBalloonPolicy({ floorMib: 16 });
    const guests = [simGuest("light", 128, { weight: 1 }), simGuest("heavy", 128, { weight: 5 })];
    for (const g of guests) {
      g.balloonPages = 80 * MIB;
      g.usedMib = 10;
    }
    const store = { budgetFrames: 160 * MIB, framesUsed: 150 * MIB, pagesPersistent: 150 * MIB, pagesEphemeral: 0 };
    const input = (): PolicyInput => ({ totalBudgetMib: 256, guests: guests.map(sampleOf), store, nowS: 0 });
    policy.decide(input()); // baseline
    for (const g of guests) g.swapOutPages += 10; // both under pressure: each wants >= 32 MiB back
    const d = policy.decide({ ...input(), nowS: 2 });
    // Room: 256 - (48 + 48) - 150 = 10 MiB, all to the heavy guest.
    expect(d.guests[1]).toMatchObject({ reason: "grow-limited", balloonTargetPages: 70 * MIB });
    expect(d.guests[0]).toMatchObject({ reason: "grow-limited", balloonTargetPages: 80 * MIB });
    expect(d.storeBudgetFrames).toBe(150 * MIB);
    expect(d.overBudgetFrames).toBe(0);
  });
});

describe("selfballoon: the store budget", () => {
  it("becomes what the guests give back: total budget minus RAM not ballooned out", () => {
    const host = new SimHost(new SelfBalloonPolicy(), 512, [simGuest("a", 128), simGuest("b", 128), simGuest("c", 128)]);
    expect(host.step().storeBudgetFrames).toBe(128 * MIB);
    for (let k = 0; k < 30; k++) host.step();
    const given = host.guests.reduce((s, g) => s + g.balloonPages, 0);
    expect(given).toBeGreaterThan(0);
    const d = host.step();
    expect(d.storeBudgetFrames).toBe(128 * MIB + given);
  });

  it("counts an inflation in progress only once the frames are given, and a deflation at once", () => {
    const policy = new SelfBalloonPolicy({ floorMib: 48 });
    const g = simGuest("a", 256);
    const input = (nowS: number): PolicyInput => ({
      totalBudgetMib: 256,
      guests: [sampleOf(g)],
      store: { budgetFrames: 0, framesUsed: 0, pagesPersistent: 0, pagesEphemeral: 0 },
      nowS,
    });
    policy.decide(input(0));
    const d = policy.decide(input(2));
    expect(d.guests[0]!.balloonTargetPages).toBeGreaterThan(0);
    expect(d.storeBudgetFrames).toBe(0); // nothing given yet
    g.balloonPages = d.guests[0]!.balloonTargetPages;
    g.swapOutPages += 1;
    const grow = policy.decide(input(4));
    expect(grow.storeBudgetFrames).toBe(grow.guests[0]!.balloonTargetPages);
  });

  it("reports the largest store budget it can decide: the total budget minus the guests' floors", () => {
    const p = new SelfBalloonPolicy();
    // floors: max(48, 51.2) MiB = 13108 pages (rounded up), max(48, 102.4) MiB = 26215 pages
    expect(p.maxStoreBudgetFrames(512, [{ name: "a", ramMib: 128 }, { name: "b", ramMib: 256 }])).toBe(
      512 * MIB - 13108 - 26215,
    );
  });
});

describe("selfballoon: safety (property)", () => {
  const guestArb = fc.record({
    ramMib: fc.integer({ min: 32, max: 512 }),
    weight: fc.integer({ min: 0, max: 10 }),
    overheadMib: fc.integer({ min: 0, max: 24 }),
  });
  const roundArb = fc.record({
    usedMib: fc.array(fc.double({ min: 0, max: 600, noNaN: true }), { minLength: 3, maxLength: 3 }),
    swap: fc.array(fc.nat({ max: 3 }), { minLength: 3, maxLength: 3 }),
    faults: fc.array(fc.nat({ max: 2 }), { minLength: 3, maxLength: 3 }),
    silent: fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
    /** How far balloons move toward their targets before the next decision. */
    fraction: fc.constantFrom(0, 0.25, 0.5, 1),
    /** Persistent frames added (or removed) in the store, bounded by its budget. */
    persistentDelta: fc.integer({ min: -2000, max: 8000 }),
  });
  const optionsArb = fc.record(
    {
      floorMib: fc.integer({ min: 0, max: 600 }),
      reserveMib: fc.integer({ min: 0, max: 64 }),
      shrinkStepMib: fc.integer({ min: 1, max: 128 }),
      bandMib: fc.integer({ min: 0, max: 32 }),
      growStepMib: fc.integer({ min: 1, max: 128 }),
    },
    { requiredKeys: [] },
  );

  it("keeps targets in [0, RAM - floor], the store at or above its persistent frames, and the total within the budget", () => {
    fc.assert(
      fc.property(
        fc.array(guestArb, { minLength: 3, maxLength: 3 }),
        fc.integer({ min: 0, max: 512 }),
        optionsArb,
        fc.array(roundArb, { minLength: 1, maxLength: 40 }),
        (configs, extraMib, options, rounds) => {
          const policy = new SelfBalloonPolicy(options);
          const guests = configs.map((c, i) => simGuest(`g${i}`, c.ramMib, { weight: c.weight, overheadMib: c.overheadMib }));
          const budgetMib = guests.reduce((s, g) => s + g.ramMib, 0) + extraMib;
          const host = new SimHost(policy, budgetMib, guests);
          for (const r of rounds) {
            guests.forEach((g, i) => {
              g.usedMib = r.usedMib[i]!;
              g.swapOutPages += r.swap[i]!;
              g.majorFaults += r.faults[i]!;
              g.silent = r.silent[i]!;
            });
            host.framesPersistent = Math.max(0, Math.min(host.storeBudgetFrames, host.framesPersistent + r.persistentDelta));
            const persistent = host.framesPersistent;
            const d = host.step(r.fraction);
            d.guests.forEach((gd, i) => {
              const g = guests[i]!;
              const floorPages = policy.parameters(g.ramMib).floorPages;
              expect(gd.balloonTargetPages).toBeGreaterThanOrEqual(0);
              expect(gd.balloonTargetPages).toBeLessThanOrEqual(g.ramMib * MIB - floorPages);
              expect(Number.isInteger(gd.balloonTargetPages)).toBe(true);
            });
            expect(d.storeBudgetFrames).toBeGreaterThanOrEqual(persistent);
            const held = heldPages(host, d);
            expect(held.byTarget + d.storeBudgetFrames).toBeLessThanOrEqual(budgetMib * MIB);
            expect(held.byBalloon + d.storeBudgetFrames).toBeLessThanOrEqual(budgetMib * MIB);
            expect(d.overBudgetFrames).toBe(0);
            expect(d.guests.reduce((s, g) => s + g.persistentAllowancePages, 0)).toBe(d.storeBudgetFrames);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it("decides the same for the same inputs, also after a save and restore of its state (property)", () => {
    fc.assert(
      fc.property(fc.array(roundArb, { minLength: 2, maxLength: 30 }), fc.nat({ max: 29 }), (rounds, cut) => {
        const mk = (): SimGuest[] => [simGuest("a", 128), simGuest("b", 256, { weight: 2 }), simGuest("c", 96)];
        const a = new SimHost(new SelfBalloonPolicy(), 600, mk());
        const b = new SimHost(new SelfBalloonPolicy(), 600, mk());
        let bPolicy = b.policy as SelfBalloonPolicy;
        const decisionsB: Decision[] = [];
        rounds.forEach((r, k) => {
          for (const host of [a, b]) {
            host.guests.forEach((g, i) => {
              g.usedMib = r.usedMib[i]! / 4;
              g.swapOutPages += r.swap[i]!;
              g.silent = r.silent[i]!;
            });
          }
          a.step(r.fraction);
          if (k === Math.min(cut, rounds.length - 1)) {
            bPolicy = new SelfBalloonPolicy({}, JSON.parse(JSON.stringify(bPolicy.saveState())) as ReturnType<SelfBalloonPolicy["saveState"]>);
          }
          const input = b.input();
          const d = bPolicy.decide(input);
          decisionsB.push(d);
          b.storeBudgetFrames = d.storeBudgetFrames;
          d.guests.forEach((gd, i) => {
            const g = b.guests[i]!;
            g.balloonPages += Math.round(r.fraction * (gd.balloonTargetPages - g.balloonPages));
          });
          b.nowS += b.intervalS;
        });
        expect(decisionsB).toEqual(a.decisions);
      }),
      { numRuns: 40 },
    );
  });
});

describe("selfballoon: saved state", () => {
  it("refuses saved state with a bad version, a duplicate guest or numbers that are not numbers", () => {
    const ok = { name: "a", lastTargetPages: 5, lastStatsAtS: null, counters: null, lastPressureS: null };
    expect(() => new SelfBalloonPolicy({}, { version: 1, guests: [ok] })).not.toThrow();
    expect(() => new SelfBalloonPolicy({}, { version: 2 as 1, guests: [] })).toThrow(TmemuError);
    expect(() => new SelfBalloonPolicy({}, { version: 1, guests: [ok, ok] })).toThrow(TmemuError);
    expect(() => new SelfBalloonPolicy({}, { version: 1, guests: [{ ...ok, lastTargetPages: Number.NaN }] })).toThrow(TmemuError);
    const badCounters = { swapInPages: 0, swapOutPages: Number.POSITIVE_INFINITY, majorFaults: 0, pagesPersistent: null };
    expect(() => new SelfBalloonPolicy({}, { version: 1, guests: [{ ...ok, counters: badCounters }] })).toThrow(TmemuError);
  });
});

describe("selfballoon: options", () => {
  it("is what createMemoryPolicy('selfballoon', options) returns; unknown names are a usage error", () => {
    expect(createMemoryPolicy("selfballoon", { floorMib: 64 })).toBeInstanceOf(SelfBalloonPolicy);
    expect(() => createMemoryPolicy("xen")).toThrow(TmemuError);
  });

  it("documents its defaults: floor max(48 MiB, 40%), reserve max(16 MiB, 10%)", () => {
    expect(SELFBALLOON_DEFAULTS.floorMib(64)).toBe(48);
    expect(SELFBALLOON_DEFAULTS.floorMib(1000)).toBe(400);
    expect(SELFBALLOON_DEFAULTS.reserveMib(64)).toBe(16);
    expect(SELFBALLOON_DEFAULTS.reserveMib(1000)).toBe(100);
    const p = new SelfBalloonPolicy().parameters(128);
    expect(p).toEqual({
      ramPages: 32768,
      floorPages: Math.ceil(51.2 * MIB),
      maxBalloonPages: 32768 - Math.ceil(51.2 * MIB),
      reservePages: 16 * MIB,
      shrinkStepPages: 16 * MIB,
      bandPages: Math.ceil(6.4 * MIB),
      growStepPages: 32 * MIB,
    });
  });

  it("takes options as fixed MiB or as functions of the guest's RAM, and caps the floor at the RAM", () => {
    const p = new SelfBalloonPolicy({ floorMib: (ram) => ram / 2, reserveMib: 8 });
    expect(p.parameters(200)).toMatchObject({ floorPages: 100 * MIB, reservePages: 8 * MIB });
    expect(new SelfBalloonPolicy({ floorMib: 1000 }).parameters(128)).toMatchObject({ floorPages: 32768, maxBalloonPages: 0 });
  });

  it("rejects options out of range with TmemuError", () => {
    expect(() => new SelfBalloonPolicy({ floorMib: -1 })).toThrow(TmemuError);
    expect(() => new SelfBalloonPolicy({ shrinkStepMib: 0 })).toThrow(TmemuError);
    expect(() => new SelfBalloonPolicy({ downHysteresis: 0.5 })).toThrow(TmemuError);
    expect(() => new SelfBalloonPolicy({ growMajorFaults: 0 })).toThrow(TmemuError);
    expect(() => new SelfBalloonPolicy({ holdoffS: Number.NaN })).toThrow(TmemuError);
    expect(() => new SelfBalloonPolicy({ reserveMib: () => -5 }).parameters(128)).toThrow(TmemuError);
  });

  it("throws MEMORY_TOO_SMALL when the guests' RAM exceeds the budget", () => {
    const host = new SimHost(new SelfBalloonPolicy(), 200, [simGuest("a", 128), simGuest("b", 128)]);
    expect(() => host.step()).toThrow(expect.objectContaining({ code: "MEMORY_TOO_SMALL" }));
  });
});
