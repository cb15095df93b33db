import { describe, expect, it } from "vitest";
import { planBenchConfigs, type BenchConfigName } from "../../cli/bench.ts";
import {
  BENCH_METRICS,
  BENCH_TARGETS,
  buildBenchDocument,
  estimatedDiskTimeS,
  evaluateTarget,
  evaluateTargets,
  formatBenchTable,
  formatTarget,
  sampleFromSummary,
  stat,
  type BenchDocumentInput,
  type RepeatMetrics,
  type RepeatSample,
} from "../../cli/bench-report.ts";
import { guest, summary, tmemCounters } from "./bench-fixtures.ts";

const MEMORY = { guests: 3, memoryMib: 128, budgetMib: 576 };

function metrics(over: Partial<RepeatMetrics> = {}): RepeatMetrics {
  const m = {} as RepeatMetrics;
  for (const { key } of BENCH_METRICS) m[key] = 0;
  return { ...m, tmemPuts: null, tmemGets: null, tmemGetHits: null, tmemEvictions: null, tmemPutsRefused: null, ...over };
}

function sample(repeat: number, over: Partial<RepeatMetrics> = {}, extra: Partial<RepeatSample> = {}): RepeatSample {
  return { repeat, metrics: metrics(over), mismatches: 0, filesCorrupt: 0, oomKills: 0, failedGuests: 0, valid: true, reasons: [], ...extra };
}

/** A document with the given per-repeat samples for each configuration. */
function doc(workload: string, samples: Partial<Record<BenchConfigName, RepeatSample[]>>, over: Partial<BenchDocumentInput> = {}) {
  const configs = planBenchConfigs(MEMORY, Object.keys(samples) as BenchConfigName[]);
  return buildBenchDocument({
    workload,
    commandLine: `tmemu bench --workload ${workload}`,
    memory: MEMORY,
    seed: 1,
    repeat: 3,
    diskLatencyUs: 100,
    configs,
    samples: new Map(Object.entries(samples) as [BenchConfigName, RepeatSample[]][]),
    failures: [],
    interrupted: false,
    wallSeconds: 600,
    zswapMaxPoolPercent: 50,
    ...over,
  });
}

describe("stat (median, min, max over the repeats)", () => {
  it("gives the middle value of an odd count, and the extremes", () => {
    expect(stat([30, 10, 20])).toEqual({ median: 20, min: 10, max: 30 });
  });
  it("averages the two middle values of an even count", () => {
    expect(stat([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4 });
  });
  it("leaves out values that were not measured, and is null when none was", () => {
    expect(stat([null, 7, Number.NaN, 9])).toEqual({ median: 8, min: 7, max: 9 });
    expect(stat([null, null])).toBeNull();
    expect(stat([])).toBeNull();
  });
});

describe("sampleFromSummary (one run, summed over its guests)", () => {
  const run = summary([
    guest({ name: "g0", dataSectorsRead: 800, dataReadRequests: 10, swapSectorsRead: 64, swapSectorsWritten: 128, swapRequests: 6, seconds: 10 }),
    guest({ name: "g1", dataSectorsRead: 200, dataReadRequests: 5, swapSectorsRead: 16, swapSectorsWritten: 32, swapRequests: 4, seconds: 30 }),
    guest({ name: "g2", dataSectorsRead: 0, dataReadRequests: 0, swapSectorsRead: 0, swapSectorsWritten: 0, swapRequests: 0, seconds: 20 }),
  ]);
  const s = sampleFromSummary(run, 2, 12.5);

  it("sums disk sectors and requests over the guests", () => {
    expect(s.repeat).toBe(2);
    expect(s.metrics.dataDiskSectorsRead).toBe(1000);
    expect(s.metrics.dataDiskReadRequests).toBe(15);
    expect(s.metrics.swapSectorsRead).toBe(80);
    expect(s.metrics.swapSectorsWritten).toBe(160);
    expect(s.metrics.diskSectors).toBe(1240);
  });
  it("counts swap reads and writes as swapIOs, and data reads plus swap I/Os as diskRequests", () => {
    expect(s.metrics.swapIOs).toBe(10);
    expect(s.metrics.diskRequests).toBe(25);
  });
  it("takes the median guest's and the slowest guest's workload time, and the host CPU time given", () => {
    expect(s.metrics.workloadSecondsMedianGuest).toBe(20);
    expect(s.metrics.workloadSecondsSlowestGuest).toBe(30);
    expect(s.metrics.hostCpuSeconds).toBe(12.5);
    expect(s.metrics.wallSeconds).toBe(60);
  });
  it("reports tmem counters as not measured when the guests had no tmem device", () => {
    expect(s.metrics.tmemPuts).toBeNull();
    expect(s.metrics.tmemGetHits).toBeNull();
    expect(s.metrics.frontswapStores).toBeNull();
  });
  it("sums the store's counters and the guests' vmstat deltas when present", () => {
    const t = sampleFromSummary(
      summary([
        guest({ tmem: tmemCounters({ puts: 100, gets: 50, getHits: 40, evictions: 3, putsRefused: 2 }), vmstat: { pswpin: 1, pswpout: 2, pgmajfault: 3, workingset_refault_file: 4, workingset_refault_anon: 0, pgpgin: 0, pgpgout: 0 } }),
        guest({ tmem: tmemCounters({ puts: 10, gets: 5, getHits: 4, evictions: 0, putsRefused: 1 }), vmstat: { pswpin: 10, pswpout: 20, pgmajfault: 30, workingset_refault_file: 40, workingset_refault_anon: 0, pgpgin: 0, pgpgout: 0 } }),
      ]),
      1,
      0,
    );
    expect([t.metrics.tmemPuts, t.metrics.tmemGets, t.metrics.tmemGetHits, t.metrics.tmemEvictions, t.metrics.tmemPutsRefused]).toEqual([110, 55, 44, 3, 3]);
    expect([t.metrics.pswpin, t.metrics.pswpout, t.metrics.majorFaults, t.metrics.workingsetRefaultFile]).toEqual([11, 22, 33, 44]);
  });
  it("does not sum a counter that one guest could not report (its vmstat was lost)", () => {
    const t = sampleFromSummary(summary([guest(), guest({ vmstat: null, seconds: null, exitCode: null, status: "died", valid: false, reasons: ["guest died"] })]), 1, 0);
    expect(t.metrics.pswpin).toBeNull();
    expect(t.metrics.workloadSecondsSlowestGuest).toBeNull();
    expect(t.metrics.workloadSecondsMedianGuest).toBe(10);
    expect(t.failedGuests).toBe(1);
  });
  it("counts memtouch mismatches, corrupt file sets and OOM kills", () => {
    const t = sampleFromSummary(summary([guest({ mismatches: 2, oomKills: 1 }), guest({ filesOk: false, mismatches: 1 })]), 1, 0);
    expect(t.mismatches).toBe(3);
    expect(t.filesCorrupt).toBe(1);
    expect(t.oomKills).toBe(1);
  });
});

describe("the disk-latency model", () => {
  it("is requests x latency in microseconds", () => {
    expect(estimatedDiskTimeS(1000, 100)).toBeCloseTo(0.1, 12);
    expect(estimatedDiskTimeS(0, 5000)).toBe(0);
    expect(estimatedDiskTimeS(2500, 4000)).toBeCloseTo(10, 12);
  });
  it("gives each configuration its estimated disk time and the time saved against disk", () => {
    const d = doc(
      "swap",
      {
        disk: [sample(1, { diskRequests: 3000 }), sample(2, { diskRequests: 2000 }), sample(3, { diskRequests: 4000 })],
        tmem: [sample(1, { diskRequests: 1000 }), sample(2, { diskRequests: 500 }), sample(3, { diskRequests: 1500 })],
      },
      { diskLatencyUs: 5000 },
    );
    const [disk, tmem] = d.runs;
    expect(disk?.estimatedDiskTimeS).toEqual({ median: 15, min: 10, max: 20 });
    expect(tmem?.estimatedDiskTimeS).toEqual({ median: 5, min: 2.5, max: 7.5 });
    expect(disk?.estimatedSavedS).toBe(0);
    expect(tmem?.estimatedSavedS).toBe(10);
    expect(d.model.label).toBe("MODEL, not measured");
    expect(d.model.diskLatencyUs).toBe(5000);
  });
  it("has no saving to report when the disk configuration was not run", () => {
    const d = doc("swap", { tmem: [sample(1, { diskRequests: 10 })] });
    expect(d.runs[0]?.estimatedSavedS).toBeNull();
  });
});

describe("the JSON document", () => {
  const d = doc("refault", {
    disk: [sample(1, { dataDiskSectorsRead: 900 }), sample(2, { dataDiskSectorsRead: 1000 }), sample(3, { dataDiskSectorsRead: 1100 })],
    zswap: [sample(1), sample(2), sample(3)],
    tmem: [sample(1, { tmemGetHits: 70 }), sample(2, { tmemGetHits: 80 }), sample(3, { tmemGetHits: 90 })],
    "tmem+selfballoon": [sample(1), sample(2), sample(3)],
  });
  const json = JSON.parse(JSON.stringify(d)) as Record<string, unknown> & { runs: Record<string, unknown>[] };

  it("has the issue's shape: workload, and runs of config, repeat, {median, min, max} metrics and mismatches", () => {
    expect(json["workload"]).toBe("refault");
    expect(json.runs.map((r) => r["config"])).toEqual(["disk", "zswap", "tmem", "tmem+selfballoon"]);
    const disk = json.runs[0]!;
    expect(disk["repeat"]).toBe(3);
    expect(disk["dataDiskSectorsRead"]).toEqual({ median: 1000, min: 900, max: 1100 });
    expect(Object.keys(disk["swapSectorsRead"] as object).sort()).toEqual(["max", "median", "min"]);
    expect(Object.keys(disk["swapSectorsWritten"] as object).sort()).toEqual(["max", "median", "min"]);
    expect(json.runs[2]!["tmemGetHits"]).toEqual({ median: 80, min: 70, max: 90 });
    expect(disk["mismatches"]).toBe(0);
  });
  it("writes every metric for every configuration, null where it was not measured", () => {
    for (const run of json.runs) for (const { key } of BENCH_METRICS) expect(run).toHaveProperty(key);
    expect(json.runs[0]!["tmemGetHits"]).toBeNull();
  });
  it("lists in BENCH_METRICS every metric a repeat measures", () => {
    expect(BENCH_METRICS.map((m) => m.key).sort()).toEqual(Object.keys(d.runs[0]!.samples[0]!.metrics).sort());
  });
  it("says in its notes how much memory disk and zswap leave unused, and the zswap asymmetry", () => {
    expect(d.notes).toContain("disk and zswap leave 576 - 3 x 128 = 192 MiB unused: that is the memory tmem gets as its store");
    expect(d.notes.some((n) => n.includes("zswap.max_pool_percent=50") && n.includes("comes out of the guest's own RAM"))).toBe(true);
  });
  it("warns when a tmem configuration's store saw no puts (frontends missing) and when data came back wrong", () => {
    const bad = doc("swap", { disk: [sample(1, { swapIOs: 10 })], tmem: [sample(1, { tmemPuts: 0 }, { mismatches: 4 })] });
    expect(bad.warnings.some((w) => w.startsWith("tmem: the store saw no tmem puts"))).toBe(true);
    expect(bad.warnings.some((w) => w.startsWith("DATA CAME BACK WRONG in tmem: 4 memtouch mismatches"))).toBe(true);
    expect(bad.runs[1]?.mismatches).toBe(4);
  });
});

describe("targets (measured and reported, met or missed)", () => {
  const runsFor = (workload: string, disk: Partial<RepeatMetrics>, tmem: Partial<RepeatMetrics>, more: Partial<Record<BenchConfigName, RepeatSample[]>> = {}) =>
    doc(workload, { disk: [sample(1, disk)], tmem: [sample(1, tmem)], ...more }).runs;

  it("refault: met when tmem reads at least 50% fewer data-disk sectors than disk, exactly at the boundary too", () => {
    const [t] = evaluateTargets("refault", runsFor("refault", { dataDiskSectorsRead: 1000 }, { dataDiskSectorsRead: 500 }));
    expect(t).toMatchObject({ status: "met", value: 500, baselineValue: 1000, reductionPct: 50, metric: "dataDiskSectorsRead" });
  });
  it("refault: missed at 49.9% below, with the measured percentage", () => {
    const [t] = evaluateTargets("refault", runsFor("refault", { dataDiskSectorsRead: 1000 }, { dataDiskSectorsRead: 501 }));
    expect(t?.status).toBe("missed");
    expect(t?.reductionPct).toBeCloseTo(49.9, 10);
    expect(formatTarget(t!)).toBe(
      "refault: tmem data-disk sectors read at least 50% below disk: MISSED, measured 49.9% below disk: tmem 501 vs disk 1000 (dataDiskSectorsRead, medians)",
    );
  });
  it("swap: two targets, 75% fewer swap I/Os than disk and fewer than zswap", () => {
    const runs = runsFor("swap", { swapIOs: 1000 }, { swapIOs: 200 }, { zswap: [sample(1, { swapIOs: 300 })] });
    const [vsDisk, vsZswap] = evaluateTargets("swap", runs);
    expect(vsDisk).toMatchObject({ status: "met", baseline: "disk", metric: "swapIOs", reductionPct: 80 });
    expect(vsZswap).toMatchObject({ status: "met", baseline: "zswap", value: 200, baselineValue: 300 });
  });
  it("swap: equal to zswap is not below zswap", () => {
    const runs = runsFor("swap", { swapIOs: 1000 }, { swapIOs: 300 }, { zswap: [sample(1, { swapIOs: 300 })] });
    const [vsDisk, vsZswap] = evaluateTargets("swap", runs);
    expect(vsDisk?.status).toBe("missed");
    expect(vsZswap).toMatchObject({ status: "missed", reductionPct: 0 });
    expect(formatTarget(vsZswap!)).toContain("MISSED, measured 0.0% below zswap");
  });
  it("swap: more I/O than the baseline reads as a percentage above it", () => {
    const [t] = evaluateTargets("swap", runsFor("swap", { swapIOs: 100 }, { swapIOs: 150 }));
    expect(t?.reductionPct).toBeCloseTo(-50, 10);
    expect(formatTarget(t!)).toContain("measured 50.0% above disk");
  });
  it("phased: tmem+selfballoon's aggregate disk sectors at most half of disk's", () => {
    const runs = runsFor("phased", { diskSectors: 800 }, {}, { "tmem+selfballoon": [sample(1, { diskSectors: 400 })] });
    expect(evaluateTargets("phased", runs)).toMatchObject([{ config: "tmem+selfballoon", status: "met", reductionPct: 50 }]);
  });
  it("is not evaluated when a configuration it needs was not run, or the baseline did no such I/O", () => {
    const [vsDisk, vsZswap] = evaluateTargets("swap", runsFor("swap", { swapIOs: 0 }, { swapIOs: 0 }));
    expect(vsDisk).toMatchObject({ status: "not-evaluated", reductionPct: null });
    expect(vsDisk?.reason).toMatch(/disk had no swapIOs to reduce/);
    expect(vsZswap).toMatchObject({ status: "not-evaluated", reason: "zswap was not run" });
    expect(formatTarget(vsZswap!)).toBe("swap: tmem swap-disk I/Os below zswap: NOT EVALUATED (zswap was not run)");
  });
  it("is invalid when data came back wrong in either configuration, whatever the numbers", () => {
    const runs = doc("refault", { disk: [sample(1, { dataDiskSectorsRead: 1000 })], tmem: [sample(1, { dataDiskSectorsRead: 10 }, { filesCorrupt: 1 })] }).runs;
    const [t] = evaluateTargets("refault", runs);
    expect(t).toMatchObject({ status: "invalid", reductionPct: 99 });
    expect(t?.reason).toMatch(/data came back wrong in tmem/);
  });
  it("has none for the mixed workload", () => {
    expect(evaluateTargets("mixed", runsFor("mixed", {}, {}))).toEqual([]);
  });
  it("uses the medians over the repeats", () => {
    const runs = doc("refault", {
      disk: [sample(1, { dataDiskSectorsRead: 1000 }), sample(2, { dataDiskSectorsRead: 10 }), sample(3, { dataDiskSectorsRead: 1000 })],
      tmem: [sample(1, { dataDiskSectorsRead: 400 }), sample(2, { dataDiskSectorsRead: 9000 }), sample(3, { dataDiskSectorsRead: 300 })],
    }).runs;
    const refault = BENCH_TARGETS.find((t) => t.workload === "refault")!;
    expect(evaluateTarget(refault, runs)).toMatchObject({ value: 400, baselineValue: 1000, reductionPct: 60, status: "met" });
  });
});

describe("formatBenchTable", () => {
  const d = doc("refault", {
    disk: [sample(1, { dataDiskSectorsRead: 1000, workloadSecondsSlowestGuest: 12.34 }), sample(2, { dataDiskSectorsRead: 1200, workloadSecondsSlowestGuest: 12.34 })],
    tmem: [sample(1, { dataDiskSectorsRead: 300, tmemGetHits: 50 }), sample(2, { dataDiskSectorsRead: 300, tmemGetHits: 50 })],
  });
  const text = formatBenchTable(d);

  it("has one column per configuration and median [min..max] cells, n/a where not measured", () => {
    const row = text.split("\n").find((l) => l.startsWith("data-disk sectors read"));
    expect(row).toMatch(/1100 \[1000\.\.1200\]\s+300$/);
    expect(text.split("\n").find((l) => l.startsWith("tmem get hits"))).toMatch(/n\/a\s+50$/);
    expect(text).toContain("12.3");
  });
  it("reports the model apart, labelled as a model, and each target with its measured percentage", () => {
    expect(text).toContain("MODEL, not measured: 100 us per disk request");
    expect(text).toContain("target refault: tmem data-disk sectors read at least 50% below disk: MET, measured 72.7% below disk");
  });
});
