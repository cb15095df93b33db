import { describe, expect, it } from "vitest";
import {
  defaultBudgetMib,
  formatDuration,
  formatProgress,
  planBenchConfigs,
  runBench,
  runOptionsFor,
  zswapMaxPoolPercent,
  type BenchOptions,
} from "../../cli/bench.ts";
import { benchExitCode, commandLine } from "../../cli/bench-command.ts";
import { formatBenchTable, formatTarget } from "../../cli/bench-report.ts";
import type { RunOptions, RunSummary } from "../../cli/run.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";
import { guest, summary, tmemCounters } from "./bench-fixtures.ts";

const MEMORY = { guests: 3, memoryMib: 128, budgetMib: 576 };

describe("zswapMaxPoolPercent (zswap's pool gets at most the store's share per guest)", () => {
  it("is 50% when the total is 1.5 x the guests' RAM", () => {
    expect(zswapMaxPoolPercent(MEMORY)).toBe(50);
  });
  it("rounds down so that zswap never gets more than the store", () => {
    expect(zswapMaxPoolPercent({ guests: 3, memoryMib: 100, budgetMib: 400 })).toBe(33);
  });
  it("is 0 without memory beyond guest RAM, and at most 100", () => {
    expect(zswapMaxPoolPercent({ guests: 2, memoryMib: 128, budgetMib: 256 })).toBe(0);
    expect(zswapMaxPoolPercent({ guests: 1, memoryMib: 128, budgetMib: 1024 })).toBe(100);
  });
});

describe("planBenchConfigs (equal memory in every configuration)", () => {
  it("runs disk, zswap, tmem, tmem-raw and tmem+selfballoon for several guests", () => {
    expect(planBenchConfigs(MEMORY).map((c) => c.name)).toEqual(["disk", "zswap", "tmem", "tmem-raw", "tmem+selfballoon"]);
  });
  it("leaves tmem+selfballoon out for one guest", () => {
    expect(planBenchConfigs({ guests: 1, memoryMib: 128, budgetMib: 192 }).map((c) => c.name)).toEqual(["disk", "zswap", "tmem", "tmem-raw"]);
  });
  it("turns the tmem frontends off and attaches no device for disk and zswap, and turns zswap on with the pool limit", () => {
    const [disk, zswap, tmem, raw, sb] = planBenchConfigs(MEMORY);
    expect(disk).toMatchObject({ tmem: false, policy: "static", kernelArgs: ["tmem.cleancache=0", "tmem.frontswap=0"], storeMaxMib: null, unusedMib: 192 });
    expect(zswap).toMatchObject({
      tmem: false,
      policy: "static",
      kernelArgs: ["tmem.frontswap=0", "tmem.cleancache=0", "zswap.enabled=1", "zswap.max_pool_percent=50"],
      unusedMib: 192,
    });
    expect(tmem).toMatchObject({ tmem: true, policy: "static", kernelArgs: [], storeMaxMib: 192, unusedMib: 0 });
    expect(tmem!.store).toBeUndefined(); // the default store: compression and dedup on
    expect(raw).toMatchObject({ tmem: true, policy: "static", kernelArgs: [], storeMaxMib: 192, unusedMib: 0, store: { compression: false, dedup: "off" } });
    expect(sb).toMatchObject({ tmem: true, policy: "selfballoon", unusedMib: 0 });
    expect(sb!.storeMaxMib).toBeGreaterThanOrEqual(192);
  });
  it("keeps the run order when --configs picks some", () => {
    expect(planBenchConfigs(MEMORY, ["tmem", "disk"]).map((c) => c.name)).toEqual(["disk", "tmem"]);
  });
  it("refuses a total below the guests' RAM, and tmem+selfballoon for one guest, as usage errors", () => {
    expect(() => planBenchConfigs({ guests: 3, memoryMib: 128, budgetMib: 300 })).toThrow(TmemuError);
    expect(() => planBenchConfigs({ guests: 3, memoryMib: 128, budgetMib: 300 })).toThrow(/less than the guests' RAM \(3 x 128 = 384 MiB\)/);
    expect(() => planBenchConfigs({ guests: 1, memoryMib: 128, budgetMib: 192 }, ["tmem+selfballoon"])).toThrow(/needs at least 2 guests/);
  });
  it("defaults the total to 1.5 x the guests' RAM", () => {
    expect(defaultBudgetMib(3, 128)).toBe(576);
  });
});

const OPTS: BenchOptions = { workload: "swap", guests: 3, memoryMib: 128, repeat: 3, seed: 7, diskLatencyUs: 100, commandLine: "tmemu bench --workload swap" };

describe("runOptionsFor", () => {
  it("gives every configuration the same guests, RAM, total memory, workload and seed", () => {
    const all = planBenchConfigs(MEMORY).map((c) => runOptionsFor(c, { ...OPTS, phaseS: 5 }, 576));
    for (const o of all) expect(o).toMatchObject({ guests: 3, memoryMib: 128, budgetMib: 576, workload: "swap", seed: 7, phaseS: 5 });
    expect(all.map((o) => [o.policy, o.tmem])).toEqual([
      ["static", false],
      ["static", false],
      ["static", true],
      ["static", true],
      ["selfballoon", true],
    ]);
    expect(all.map((o) => o.store)).toEqual([undefined, undefined, undefined, { compression: false, dedup: "off" }, undefined]);
    const global = planBenchConfigs(MEMORY).map((c) => runOptionsFor(c, { ...OPTS, dedup: "global" }, 576).store);
    expect(global).toEqual([{ dedup: "global" }, { dedup: "global" }, { dedup: "global" }, { compression: false, dedup: "off" }, { dedup: "global" }]);
  });
});

describe("progress", () => {
  it("formats durations as 45s, 3m12s, 1h02m", () => {
    expect(formatDuration(45)).toBe("45s");
    expect(formatDuration(192)).toBe("3m12s");
    expect(formatDuration(3720)).toBe("1h02m");
  });
  it("says which configuration and repeat runs, the time so far and the time left from the mean run", () => {
    expect(formatProgress({ configIndex: 2, configCount: 4, config: "zswap", repeat: 1, repeats: 3, elapsedS: 192, runsDone: 1, runsTotal: 12 })).toBe(
      "[tmemu bench] config 2/4 (zswap) repeat 1/3, elapsed 3m12s, about 35m12s left",
    );
    expect(formatProgress({ configIndex: 1, configCount: 4, config: "disk", repeat: 1, repeats: 3, elapsedS: 0, runsDone: 0, runsTotal: 12 })).toBe(
      "[tmemu bench] config 1/4 (disk) repeat 1/3, elapsed 0s, time left known after the first run",
    );
  });
});

/** A fake runGuests: one fixed summary per call, a clock that advances 60 s per run, 10 s CPU per run. */
function fakeRunner(opts: { fail?: (call: number) => Error | undefined; interruptAt?: number; controller?: AbortController } = {}) {
  const calls: RunOptions[] = [];
  let clockMs = 0;
  let cpuUs = 0;
  const run = async (o: RunOptions): Promise<RunSummary> => {
    calls.push(o);
    clockMs += 60_000;
    cpuUs += 10_000_000;
    const err = opts.fail?.(calls.length);
    if (err) throw err;
    if (opts.interruptAt === calls.length) {
      opts.controller?.abort();
      return summary([guest()], { interrupted: true });
    }
    const withTmem = o.tmem === true;
    return summary([
      guest({ swapSectorsRead: withTmem ? 8 : 80, swapRequests: withTmem ? 2 : 20, tmem: withTmem ? tmemCounters({ puts: 100, getHits: 90 }) : null }),
      guest({ swapSectorsRead: withTmem ? 8 : 80, swapRequests: withTmem ? 2 : 20, tmem: withTmem ? tmemCounters({ puts: 100, getHits: 90 }) : null }),
    ]);
  };
  return { calls, deps: { run, now: () => clockMs, cpuUsage: () => ({ user: cpuUs, system: 0 }) } };
}

describe("runBench", () => {
  it("runs every configuration K times, interleaved, with the same seed, and aggregates per configuration", async () => {
    const { calls, deps } = fakeRunner();
    const lines: string[] = [];
    const doc = await runBench({ ...OPTS, progress: (l) => lines.push(l) }, deps);
    expect(calls.map((c) => `${c.policy}/${c.tmem}/${c.kernelArgs?.includes("zswap.enabled=1") ? "z" : "-"}`)).toEqual(
      Array.from({ length: 3 }, () => ["static/false/-", "static/false/z", "static/true/-", "static/true/-", "selfballoon/true/-"]).flat(),
    );
    expect(new Set(calls.map((c) => c.seed))).toEqual(new Set([7]));
    expect(new Set(calls.map((c) => c.budgetMib))).toEqual(new Set([576]));
    expect(doc.runs.map((r) => [r.config, r.repeat])).toEqual([
      ["disk", 3],
      ["zswap", 3],
      ["tmem", 3],
      ["tmem-raw", 3],
      ["tmem+selfballoon", 3],
    ]);
    expect(doc.runs[0]?.swapSectorsRead).toEqual({ median: 160, min: 160, max: 160 });
    expect(doc.runs[2]?.tmemGetHits).toEqual({ median: 180, min: 180, max: 180 });
    expect(doc.runs[0]?.hostCpuSeconds).toEqual({ median: 10, min: 10, max: 10 });
    expect(doc.targets.map((t) => [t.description, t.status])).toEqual([
      ["tmem swap-disk I/Os at least 75% below disk", "met"],
      ["tmem swap-disk I/Os below zswap", "met"],
    ]);
    expect(lines).toHaveLength(15);
    expect(lines[1]).toBe("[tmemu bench] config 2/5 (zswap) repeat 1/3, elapsed 1m00s, about 14m00s left");
    expect(lines[14]).toBe("[tmemu bench] config 5/5 (tmem+selfballoon) repeat 3/3, elapsed 14m00s, about 1m00s left");
    expect(doc.wallSeconds).toBe(900);
    expect(doc.interrupted).toBe(false);
  });

  it("throws when the very first run fails (it would fail every time)", async () => {
    const { deps } = fakeRunner({ fail: (n) => (n === 1 ? new TmemuError("IMAGE_MISSING", "no kernel") : undefined) });
    await expect(runBench(OPTS, deps)).rejects.toThrow("no kernel");
  });

  it("records a later failed run and goes on with the others", async () => {
    const { calls, deps } = fakeRunner({ fail: (n) => (n === 2 ? new Error("zswap guest did not boot") : undefined) });
    const doc = await runBench(OPTS, deps);
    expect(calls).toHaveLength(15);
    expect(doc.runs[1]).toMatchObject({ config: "zswap", repeat: 2, failures: [{ repeat: 1, message: "zswap guest did not boot" }] });
    expect(doc.warnings).toContain("zswap repeat 1 failed: zswap guest did not boot");
  });

  it("stops at Ctrl-C, drops the interrupted run and reports what completed", async () => {
    const controller = new AbortController();
    const { calls, deps } = fakeRunner({ interruptAt: 6, controller });
    const doc = await runBench({ ...OPTS, signal: controller.signal }, deps);
    expect(calls).toHaveLength(6);
    expect(doc.interrupted).toBe(true);
    expect(doc.runs.map((r) => r.repeat)).toEqual([1, 1, 1, 1, 1]);
  });
});

/** A guest OOM-killed in the middle of memtouch, as runGuests reports it. */
const oomGuest = (name: string) => guest({ name, status: "finished", exitCode: 137, valid: false, reasons: ["OOM-killed (2 kills)", "exit code 137", "no memtouch result line"], mismatches: null, memtouchRuns: 0, oomKills: 2, swapRequests: 1 });

describe("runBench with invalid runs", () => {
  /** swap workload, 1 guest: zswap is OOM-killed in the runs `zswapFails` says. */
  function runner(zswapFails: (repeat: number) => boolean) {
    const calls: RunOptions[] = [];
    const zswapRuns: number[] = [];
    const run = async (o: RunOptions): Promise<RunSummary> => {
      calls.push(o);
      const zswap = o.kernelArgs?.includes("zswap.enabled=1") === true;
      if (zswap) {
        zswapRuns.push(zswapRuns.length + 1);
        if (zswapFails(zswapRuns.length)) return summary([oomGuest("g0")], { workload: "swap" });
        return summary([guest({ swapRequests: 500 })], { workload: "swap" });
      }
      return summary([guest({ swapRequests: o.tmem ? 100 : 1000, tmem: o.tmem ? tmemCounters({ puts: 10 }) : null })], { workload: "swap" });
    };
    return { calls, run };
  }
  const OPTS1: BenchOptions = { ...OPTS, guests: 1, repeat: 2, configs: ["disk", "zswap", "tmem"] };

  it("does not evaluate a target whose baseline failed in every run, and says why", async () => {
    const { run } = runner(() => true);
    const doc = await runBench(OPTS1, { run });
    const zswap = doc.runs.find((r) => r.config === "zswap")!;
    expect(zswap).toMatchObject({ repeat: 0, invalidRuns: 2, valid: false, swapIOs: null, oomKills: 4, failedGuestRuns: 2 });
    expect(zswap.samples.map((x) => x.valid)).toEqual([false, false]);
    // No memtouch result line in any zswap run: no mismatch count, never 0.
    expect(zswap.mismatches).toBeNull();
    expect(zswap.samples.map((x) => x.mismatches)).toEqual([null, null]);
    expect(doc.runs.find((r) => r.config === "disk")?.mismatches).toBe(0);
    expect(formatBenchTable(doc).split("\n").find((l) => l.startsWith("memtouch mismatches"))).toMatch(/0\s+n\/a\s+0$/);
    expect(zswap.failures[0]).toMatchObject({ repeat: 1, reasons: ["g0: OOM-killed (2 kills)", "g0: exit code 137", "g0: no memtouch result line"] });
    const vsZswap = doc.targets.find((t) => t.baseline === "zswap")!;
    expect(vsZswap).toMatchObject({ status: "not-evaluated", reductionPct: null });
    expect(vsZswap.reason).toBe("zswap: 2 of 2 runs invalid: g0: OOM-killed (2 kills); g0: exit code 137; g0: no memtouch result line");
    expect(formatTarget(vsZswap)).toContain("NOT EVALUATED (zswap: 2 of 2 runs invalid: g0: OOM-killed (2 kills)");
    // The target against disk (both sides valid) is still evaluated.
    expect(doc.targets.find((t) => t.baseline === "disk")).toMatchObject({ status: "met", reductionPct: 90 });
    expect(doc.valid).toBe(false);
    expect(doc.reasons).toEqual(["zswap: 2 of 2 runs invalid: g0: OOM-killed (2 kills); g0: exit code 137; g0: no memtouch result line"]);
    expect(doc.runs.find((r) => r.config === "tmem")).toMatchObject({ valid: true, reasons: [], invalidRuns: 0 });
    expect(benchExitCode(doc)).toBe(1);
  });

  it("leaves an invalid run out of the medians and evaluates from the valid ones, saying so", async () => {
    const { run } = runner((n) => n === 1);
    const doc = await runBench(OPTS1, { run });
    const zswap = doc.runs.find((r) => r.config === "zswap")!;
    expect(zswap).toMatchObject({ repeat: 1, invalidRuns: 1, valid: false, swapIOs: { median: 500, min: 500, max: 500 } });
    const vsZswap = doc.targets.find((t) => t.baseline === "zswap")!;
    expect(vsZswap).toMatchObject({ status: "met", baselineValue: 500, value: 100 });
    expect(vsZswap.reason).toMatch(/^from the valid runs only; zswap: 1 of 2 runs invalid/);
    expect(benchExitCode(doc)).toBe(1);
  });

  it("a bench with every run valid is valid and exits 0", async () => {
    const { run } = runner(() => false);
    const doc = await runBench(OPTS1, { run });
    expect(doc).toMatchObject({ valid: true, reasons: [] });
    expect(doc.runs.every((r) => r.valid)).toBe(true);
    expect(benchExitCode(doc)).toBe(0);
  });

  it("probes MemTotal once, apart: its time and host CPU are setup, every run gets its answer", async () => {
    const { calls, run } = runner(() => false);
    let clock = 0;
    let cpu = 0;
    const doc = await runBench(OPTS1, {
      run: async (o) => {
        clock += 60_000;
        cpu += 10_000_000;
        return run(o);
      },
      probe: async (mib) => {
        clock += 8_000;
        cpu += 7_000_000;
        return mib - 27;
      },
      now: () => clock,
      cpuUsage: () => ({ user: cpu, system: 0 }),
    });
    expect(doc.setup).toHaveLength(1);
    expect(doc.setup[0]).toMatchObject({ seconds: 8, hostCpuSeconds: 7 });
    expect(doc.setup[0]?.what).toMatch(/MemTotal probe/);
    expect(new Set(calls.map((c) => c.guestRamMib))).toEqual(new Set([101]));
    // The first configuration's host CPU is its own run only.
    expect(doc.runs[0]?.hostCpuSeconds).toEqual({ median: 10, min: 10, max: 10 });
  });

  it("takes a probe a run did itself out of that run's numbers and reports it as setup", async () => {
    const { run } = runner(() => false);
    let cpu = 0;
    const doc = await runBench({ ...OPTS1, repeat: 1 }, {
      run: async (o) => {
        cpu += 10_000_000;
        const s = await run(o);
        return o.tmem === false && !o.kernelArgs?.includes("zswap.enabled=1") ? { ...s, seconds: 60, setup: { what: "MemTotal probe", seconds: 9, hostCpuSeconds: 4 } } : s;
      },
      cpuUsage: () => ({ user: cpu, system: 0 }),
    });
    expect(doc.runs[0]).toMatchObject({ config: "disk", hostCpuSeconds: { median: 6 }, wallSeconds: { median: 51 } });
    expect(doc.runs[1]).toMatchObject({ config: "zswap", hostCpuSeconds: { median: 10 } });
    expect(doc.setup.map((x) => x.what)).toEqual(["MemTotal probe (in disk repeat 1, taken out of its numbers)"]);
  });
});

describe("commandLine", () => {
  it("gives the command as it could be typed again", () => {
    expect(commandLine(["bench", "--workload", "swap", "--out", "my dir"])).toBe("tmemu bench --workload swap --out 'my dir'");
  });
});
