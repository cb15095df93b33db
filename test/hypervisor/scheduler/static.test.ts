import { describe, expect, it } from "vitest";
import { StaticPolicy } from "../../../hypervisor/scheduler/static.ts";
import { createMemoryPolicy } from "../../../hypervisor/scheduler/policy.ts";
import { checkGuestsFitBudget } from "../../../hypervisor/scheduler/budget.ts";
import type { PolicyInput } from "../../../hypervisor/scheduler/types.ts";
import { TmemuError } from "../../../hypervisor/user-errors.ts";
import { BugIndicatingError } from "../../../hypervisor/errors.ts";
import { SimHost, simGuest } from "./plant.ts";

const store = { budgetFrames: 0, framesUsed: 0, pagesPersistent: 0, pagesEphemeral: 0 };

function input(totalBudgetMib: number, rams: number[], weights?: number[]): PolicyInput {
  return {
    totalBudgetMib,
    guests: rams.map((ramMib, i) => ({ name: `g${i}`, ramMib, balloonPages: 0, weight: weights?.[i] ?? 1 })),
    store,
    nowS: 0,
  };
}

describe("static policy", () => {
  it("is named static and is what createMemoryPolicy('static') returns", () => {
    expect(new StaticPolicy().name).toBe("static");
    expect(createMemoryPolicy("static")).toBeInstanceOf(StaticPolicy);
  });

  it("never moves a balloon, whatever the guests report", () => {
    const host = new SimHost(new StaticPolicy(), 512, [
      simGuest("idle", 128, { usedMib: 10 }),
      simGuest("busy", 128, { usedMib: 120 }),
      simGuest("mute", 128, { silent: true }),
    ]);
    for (let i = 0; i < 20; i++) {
      const busy = host.guest("busy");
      busy.swapInPages += 100;
      busy.swapOutPages += 100;
      busy.majorFaults += 50;
      const d = host.step();
      expect(d.guests.map((g) => g.balloonTargetPages)).toEqual([0, 0, 0]);
      expect(d.guests.every((g) => g.reason === "static")).toBe(true);
    }
  });

  it("deflates a balloon that holds frames (target 0) and counts the store without them", () => {
    const policy = new StaticPolicy();
    const i = input(400, [128, 128]);
    const d = policy.decide({ ...i, guests: [{ ...i.guests[0]!, balloonPages: 5000 }, i.guests[1]!] });
    expect(d.guests[0]!.balloonTargetPages).toBe(0);
    expect(d.storeBudgetFrames).toBe((400 - 256) * 256);
  });

  it("gives the store the total budget minus the guests' RAM, in 4 KiB frames", () => {
    const d = new StaticPolicy().decide(input(512, [128, 128, 128]));
    expect(d.storeBudgetFrames).toBe(128 * 256);
    expect(d.overBudgetFrames).toBe(0);
  });

  it("gives the store nothing when the guests' RAM is exactly the budget", () => {
    const d = new StaticPolicy().decide(input(384, [128, 128, 128]));
    expect(d.storeBudgetFrames).toBe(0);
    expect(d.guests.map((g) => g.persistentAllowancePages)).toEqual([0, 0, 0]);
  });

  it("splits the store into persistent allowances by weight, adding up to the store budget", () => {
    const d = new StaticPolicy().decide(input(512, [128, 128, 128], [1, 1, 2]));
    expect(d.guests.map((g) => g.persistentAllowancePages)).toEqual([8192, 8192, 16384]);
    const odd = new StaticPolicy().decide(input(385, [128, 128, 128], [1, 1, 1]));
    expect(odd.guests.map((g) => g.persistentAllowancePages)).toEqual([86, 85, 85]);
  });

  it("splits equally when every weight is 0", () => {
    const d = new StaticPolicy().decide(input(512, [128, 128, 128], [0, 0, 0]));
    expect(d.guests.map((g) => g.persistentAllowancePages)).toEqual([10923, 10923, 10922]);
  });

  it("caps the store budget at the store's slab size", () => {
    const d = new StaticPolicy().decide({ ...input(512, [128, 128]), store: { ...store, framesTotal: 1000 } });
    expect(d.storeBudgetFrames).toBe(1000);
  });

  it("reports the largest store budget it will decide, for sizing the store", () => {
    expect(new StaticPolicy().maxStoreBudgetFrames(512, [{ name: "a", ramMib: 128 }, { name: "b", ramMib: 200 }])).toBe(
      184 * 256,
    );
  });

  it("throws MEMORY_TOO_SMALL naming the budget and the guests' RAM when the RAM alone exceeds the budget", () => {
    const run = (): unknown => new StaticPolicy().decide(input(300, [128, 128, 128]));
    expect(run).toThrow(TmemuError);
    try {
      run();
    } catch (e) {
      const err = e as TmemuError;
      expect(err.code).toBe("MEMORY_TOO_SMALL");
      expect(err.message).toContain("300 MiB");
      expect(err.message).toContain("384 MiB");
      expect(err.message).toContain("g0 128");
      expect(err.message).toContain("-84 MiB");
      expect(err.hint).toContain("at least 384 MiB");
    }
  });

  it("throws the same error at construction when given the configuration", () => {
    const guests = [
      { name: "a", ramMib: 256 },
      { name: "b", ramMib: 256 },
    ];
    expect(() => new StaticPolicy({ totalBudgetMib: 500, guests })).toThrow(/512 MiB/);
    expect(() => new StaticPolicy({ totalBudgetMib: 512, guests })).not.toThrow();
    expect(() => checkGuestsFitBudget(500, guests)).toThrow(TmemuError);
  });

  it("rejects bad configuration with TmemuError and impossible host numbers with BugIndicatingError", () => {
    const p = new StaticPolicy();
    expect(() => p.decide(input(0, [128]))).toThrow(TmemuError);
    expect(() => p.decide(input(512, [-1]))).toThrow(TmemuError);
    expect(() => p.decide(input(512, [128, 128], [1, -1]))).toThrow(TmemuError);
    expect(() => p.decide(input(512, [128, 128], [1, 0.5]))).toThrow(TmemuError);
    const dup = input(512, [128, 128]);
    expect(() => p.decide({ ...dup, guests: dup.guests.map((g) => ({ ...g, name: "same" })) })).toThrow(TmemuError);
    const i = input(512, [128]);
    expect(() => p.decide({ ...i, guests: [{ ...i.guests[0]!, balloonPages: 128 * 256 + 1 }] })).toThrow(BugIndicatingError);
    expect(() => p.decide({ ...i, store: { ...store, pagesPersistent: -1 } })).toThrow(BugIndicatingError);
    expect(() => p.decide({ ...i, guests: [{ ...i.guests[0]!, statsBalloonPages: -1 }] })).toThrow(BugIndicatingError);
    expect(() => p.decide({ ...i, guests: [{ ...i.guests[0]!, statsAtS: Number.NaN }] })).toThrow(BugIndicatingError);
    expect(() => p.decide({ ...i, nowS: Number.POSITIVE_INFINITY })).toThrow(BugIndicatingError);
  });

  it("keeps the store budget at its persistent frames and reports the overrun when they exceed the partition", () => {
    const d = new StaticPolicy().decide({ ...input(400, [128, 128]), store: { ...store, pagesPersistent: 40000 } });
    expect(d.storeBudgetFrames).toBe(40000);
    expect(d.overBudgetFrames).toBe(40000 - 144 * 256);
  });
});
