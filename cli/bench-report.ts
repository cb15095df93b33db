/**
 * What `tmemu bench` reports, from the RunSummary of each run (pure, unit-tested):
 *
 *  - one RepeatSample per run: the guests' counters summed (disk sectors and requests, tmem store
 *    counters, the guests' own tmem and /proc/vmstat deltas), the workload's time (median guest and
 *    slowest guest), host CPU and wall time;
 *  - per configuration, each metric as {median, min, max} over the repeats (null: not measured in
 *    that configuration, e.g. tmem counters without a tmem device);
 *  - a disk-latency MODEL, apart from what was measured: estimated disk time = disk requests x
 *    latency (the emulated disks answer from memory, so measured times do not show saved I/O);
 *  - the targets of the workload, each met / missed with the measured reduction;
 *  - the JSON document (BenchDocument) and the terminal table.
 *
 * Validity: a run whose RunSummary is not valid (a guest's workload did not run to the end, exited
 * non-zero, missed a required line, was OOM-killed, or its data came back wrong) is a failed run: its
 * sample is kept with `valid: false` and its reasons, and left out of the medians. A target is
 * evaluated only when both of its configurations have at least one valid run.
 *
 * JSON shape (key names are the interface): {"workload", "command", "guests", "memoryMib",
 * "budgetMib", "seed", "repeat", "diskLatencyUs", "interrupted", "valid", "reasons", "setup",
 * "wallSeconds", "runs": [{"config", "repeat" (valid runs), "invalidRuns", "valid", "reasons",
 * "policy", "tmem", "kernelArgs", "storeMaxMib", "unusedMib", <metric>: {"median", "min", "max"} |
 * null for every key of BENCH_METRICS (valid runs only), "estimatedDiskTimeS": {...} | null,
 * "estimatedSavedS": n | null, "mismatches", "filesCorrupt", "oomKills", "failedGuestRuns" (all runs),
 * "failures": [...], "samples": [RepeatSample...] (all runs, each with "valid" and "reasons")}],
 * "model", "targets", "notes", "warnings"}.
 */
import { median } from "../bench/harness.ts";
import type { WorkloadName } from "../workloads/builtin.ts";
import type { BenchConfig, BenchConfigName, BenchMemory, RunFailure } from "./bench.ts";
import type { GuestSummary, RunSummary } from "./run.ts";

export interface Stat {
  median: number;
  min: number;
  max: number;
}

/** Median, min and max of the values that were measured (null values are left out; none: null). */
export function stat(values: readonly (number | null)[]): Stat | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x));
  if (v.length === 0) return null;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v) };
}

/** One run's numbers, summed over its guests (null: not measured in this run). */
export interface RepeatMetrics {
  /** 512-byte sectors read from the data disks. */
  dataDiskSectorsRead: number | null;
  dataDiskReadRequests: number | null;
  swapSectorsRead: number | null;
  swapSectorsWritten: number | null;
  /** Swap disk requests, reads + writes. */
  swapIOs: number | null;
  /** Disk requests of all kinds: data reads + swap reads and writes. */
  diskRequests: number | null;
  /** Sectors of all kinds: data read + swap read + swap written. */
  diskSectors: number | null;
  /** The store's counters for the guests' clients (null without a tmem device). */
  tmemPuts: number | null;
  tmemGets: number | null;
  tmemGetHits: number | null;
  tmemEvictions: number | null;
  tmemPutsRefused: number | null;
  /** The guest kernels' own tmem frontend counters (debugfs). */
  cleancacheHits: number | null;
  frontswapStores: number | null;
  frontswapLoads: number | null;
  /** /proc/vmstat deltas over the workload. */
  pswpin: number | null;
  pswpout: number | null;
  workingsetRefaultFile: number | null;
  majorFaults: number | null;
  /** Wall time of the workload command in the guests (guest clock = host clock): median guest, slowest guest. */
  workloadSecondsMedianGuest: number | null;
  workloadSecondsSlowestGuest: number | null;
  /** From the first guest's start until every guest's workload finished (phased: the whole chain). */
  workloadCompletionSeconds: number | null;
  /** The tmem store at its peak (summary.storeDensity): frames held, pages with data per frame, and the most frames fragmented at a tick. */
  storePeakFrames?: number | null;
  storePagesPerFrame?: number | null;
  storeFragmentationFrames?: number | null;
  /** Puts that shared data with an equal page (store.dedupHits). */
  storeDedupHits?: number | null;
  /**
   * Mean time a guest's vCPU waited on a hypercall over the window, all guests' timed traps
   * together (GuestSummary.hypercallWait: one trap in 16; threaded, the crossing included).
   */
  hypercallWaitMeanUs?: number | null;
  /** Host CPU time (user + system) of the whole run: boots, file set, workload; all guests share one thread. */
  hostCpuSeconds: number | null;
  /** Wall time of the whole run, boots included. */
  wallSeconds: number | null;
}

export type MetricKey = keyof RepeatMetrics;

export interface MetricInfo {
  key: MetricKey;
  label: string;
  unit: "sectors" | "requests" | "pages" | "ops" | "faults" | "s" | "frames" | "x" | "us";
}

/** Every metric, in report order. */
export const BENCH_METRICS: readonly MetricInfo[] = [
  { key: "dataDiskSectorsRead", label: "data-disk sectors read", unit: "sectors" },
  { key: "dataDiskReadRequests", label: "data-disk read requests", unit: "requests" },
  { key: "swapSectorsRead", label: "swap sectors read", unit: "sectors" },
  { key: "swapSectorsWritten", label: "swap sectors written", unit: "sectors" },
  { key: "swapIOs", label: "swap I/O requests (rd+wr)", unit: "requests" },
  { key: "diskRequests", label: "disk requests (data+swap)", unit: "requests" },
  { key: "diskSectors", label: "disk sectors (data+swap)", unit: "sectors" },
  { key: "tmemPuts", label: "tmem puts", unit: "ops" },
  { key: "tmemGets", label: "tmem gets", unit: "ops" },
  { key: "tmemGetHits", label: "tmem get hits", unit: "ops" },
  { key: "tmemEvictions", label: "tmem evictions", unit: "pages" },
  { key: "tmemPutsRefused", label: "tmem puts refused", unit: "ops" },
  { key: "cleancacheHits", label: "cleancache hits (guest)", unit: "ops" },
  { key: "frontswapStores", label: "frontswap stores (guest)", unit: "ops" },
  { key: "frontswapLoads", label: "frontswap loads (guest)", unit: "ops" },
  { key: "pswpin", label: "pswpin", unit: "pages" },
  { key: "pswpout", label: "pswpout", unit: "pages" },
  { key: "workingsetRefaultFile", label: "workingset_refault_file", unit: "pages" },
  { key: "majorFaults", label: "major faults (pgmajfault)", unit: "faults" },
  { key: "workloadSecondsMedianGuest", label: "workload time, median guest", unit: "s" },
  { key: "workloadSecondsSlowestGuest", label: "workload time, slowest guest", unit: "s" },
  { key: "workloadCompletionSeconds", label: "workload completion (all guests)", unit: "s" },
  { key: "storePeakFrames", label: "store frames at its peak", unit: "frames" },
  { key: "storePagesPerFrame", label: "store pages per frame (at peak)", unit: "x" },
  { key: "storeFragmentationFrames", label: "store fragmentation, most frames", unit: "frames" },
  { key: "storeDedupHits", label: "store dedup hits", unit: "ops" },
  { key: "hypercallWaitMeanUs", label: "hypercall wait, mean (µs)", unit: "us" },
  { key: "hostCpuSeconds", label: "host CPU time (whole run)", unit: "s" },
  { key: "wallSeconds", label: "wall time (whole run)", unit: "s" },
];

export interface RepeatSample {
  /** 1-based repeat number. */
  repeat: number;
  metrics: RepeatMetrics;
  /** memtouch mismatches over the guests that printed a result line (must be 0); null when none did (never 0 then). */
  mismatches: number | null;
  /** Guests whose file set checksum came back wrong. */
  filesCorrupt: number;
  oomKills: number;
  /** Guests whose workload was not valid (did not finish, did not exit 0, missed a line, OOM, wrong data). */
  failedGuests: number;
  /** The run's workload ran to the end in every guest and passed its checks (only valid samples make the medians). */
  valid: boolean;
  /** Why not, "g0: OOM-killed (1 kill)", ...; empty when valid. */
  reasons: string[];
}

function sumOrNull(guests: readonly GuestSummary[], f: (g: GuestSummary) => number | null | undefined): number | null {
  let total = 0;
  for (const g of guests) {
    const v = f(g);
    if (v === null || v === undefined) return null;
    total += v;
  }
  return guests.length ? total : null;
}

/** The guests' timed hypercall waits pooled: their mean, µs; null when none was timed. */
function meanHypercallWaitUs(guests: readonly GuestSummary[]): number | null {
  let timed = 0;
  let sumUs = 0;
  for (const g of guests) {
    const w = g.hypercallWait;
    if (!w) continue;
    timed += w.timed;
    sumUs += w.meanUs * w.timed;
  }
  return timed > 0 ? sumUs / timed : null;
}

/**
 * One run's RepeatSample; `hostCpuS` is the process's CPU time measured around the run. A MemTotal
 * probe the run did itself (s.setup) is taken out of its host CPU and wall time: it is reported once,
 * apart, as setup.
 */
export function sampleFromSummary(s: RunSummary, repeat: number, hostCpuS: number): RepeatSample {
  const g = s.guests;
  const secs = g.map((x) => x.seconds).filter((x): x is number => x !== null);
  const swapIOs = sumOrNull(g, (x) => x.swapRequests);
  const dataReq = sumOrNull(g, (x) => x.dataReadRequests);
  return {
    repeat,
    metrics: {
      dataDiskSectorsRead: sumOrNull(g, (x) => x.dataSectorsRead),
      dataDiskReadRequests: dataReq,
      swapSectorsRead: sumOrNull(g, (x) => x.swapSectorsRead),
      swapSectorsWritten: sumOrNull(g, (x) => x.swapSectorsWritten),
      swapIOs,
      diskRequests: swapIOs === null || dataReq === null ? null : swapIOs + dataReq,
      diskSectors: sumOrNull(g, (x) => x.dataSectorsRead + x.swapSectorsRead + x.swapSectorsWritten),
      tmemPuts: sumOrNull(g, (x) => x.tmem?.puts),
      tmemGets: sumOrNull(g, (x) => x.tmem?.gets),
      tmemGetHits: sumOrNull(g, (x) => x.tmem?.getHits),
      tmemEvictions: sumOrNull(g, (x) => x.tmem?.evictions),
      tmemPutsRefused: sumOrNull(g, (x) => x.tmem?.putsRefused),
      cleancacheHits: sumOrNull(g, (x) => x.guestTmem?.cleancache_hits),
      frontswapStores: sumOrNull(g, (x) => x.guestTmem?.frontswap_stores),
      frontswapLoads: sumOrNull(g, (x) => x.guestTmem?.frontswap_loads),
      pswpin: sumOrNull(g, (x) => x.vmstat?.pswpin),
      pswpout: sumOrNull(g, (x) => x.vmstat?.pswpout),
      workingsetRefaultFile: sumOrNull(g, (x) => x.vmstat?.workingset_refault_file),
      majorFaults: sumOrNull(g, (x) => x.vmstat?.pgmajfault),
      workloadSecondsMedianGuest: secs.length ? median(secs) : null,
      workloadSecondsSlowestGuest: s.totals.slowestGuestS,
      workloadCompletionSeconds: s.totals.completionS ?? null,
      storePeakFrames: s.storeDensity && s.storeDensity.samples > 0 ? s.storeDensity.peakFramesUsed : null,
      storePagesPerFrame: s.storeDensity?.pagesPerFrameAtPeak ?? null,
      storeFragmentationFrames: s.storeDensity && s.storeDensity.samples > 0 ? s.storeDensity.maxFragmentationFrames : null,
      storeDedupHits: s.store.dedupHits ?? null,
      hypercallWaitMeanUs: meanHypercallWaitUs(g),
      hostCpuSeconds: hostCpuS - (s.setup?.hostCpuSeconds ?? 0),
      wallSeconds: s.seconds - (s.setup?.seconds ?? 0),
    },
    mismatches: g.every((x) => x.mismatches === null) ? null : g.reduce((n, x) => n + (x.mismatches ?? 0), 0),
    filesCorrupt: g.filter((x) => x.filesOk === false).length,
    oomKills: g.reduce((n, x) => n + x.oomKills, 0),
    failedGuests: g.filter((x) => !x.valid).length,
    valid: s.valid && s.stopped === "finished",
    reasons: s.stopped === "finished" ? [...s.reasons] : [`the run stopped (${s.stopped}) before the workload ended`, ...s.reasons],
  };
}

/** The latency MODEL: seconds the disk would be busy for `requests` requests of `latencyUs` each. */
export function estimatedDiskTimeS(requests: number, latencyUs: number): number {
  return (requests * latencyUs) / 1e6;
}

export type BenchRunJson = {
  config: BenchConfigName;
  /** Valid runs (the samples behind the medians). */
  repeat: number;
  /** Runs that failed or were not valid (listed in failures, with their reasons). */
  invalidRuns: number;
  /** Every run of this configuration was valid (and there was at least one). */
  valid: boolean;
  /** "repeat 1: g0: OOM-killed (2 kills)", ...; empty when valid. */
  reasons: string[];
  policy: string;
  tmem: boolean;
  kernelArgs: string[];
  storeMaxMib: number | null;
  unusedMib: number;
} & { [K in MetricKey]: Stat | null } & {
  /** MODEL: diskRequests x diskLatencyUs, per repeat. */
  estimatedDiskTimeS: Stat | null;
  /** MODEL: the disk configuration's median estimatedDiskTimeS minus this one's (null without disk). */
  estimatedSavedS: number | null;
  /** Totals over all the repeats, valid or not: must all be 0 (mismatches: null when no memtouch result line was printed in any). */
  mismatches: number | null;
  filesCorrupt: number;
  oomKills: number;
  failedGuestRuns: number;
  failures: { repeat: number; message: string; reasons: string[] }[];
  samples: RepeatSample[];
};

export type TargetStatus = "met" | "missed" | "not-evaluated" | "invalid";

export interface TargetSpec {
  workload: WorkloadName;
  description: string;
  config: BenchConfigName;
  baseline: BenchConfigName;
  metric: MetricKey;
  /** Required reduction of the median, percent of the baseline's median. */
  requiredReductionPct: number;
  /** "at-least": reduction >= required; "more-than": reduction > required. */
  rule: "at-least" | "more-than";
}

export interface TargetResult extends TargetSpec {
  value: number | null;
  baselineValue: number | null;
  /** (1 - value / baselineValue) x 100, from the medians. */
  reductionPct: number | null;
  status: TargetStatus;
  reason: string | null;
}

/** The targets of the issue; they are measured and reported, never tuned for. */
export const BENCH_TARGETS: readonly TargetSpec[] = [
  {
    workload: "refault",
    description: "tmem data-disk sectors read at least 50% below disk",
    config: "tmem",
    baseline: "disk",
    metric: "dataDiskSectorsRead",
    requiredReductionPct: 50,
    rule: "at-least",
  },
  {
    workload: "swap",
    description: "tmem swap-disk I/Os at least 75% below disk",
    config: "tmem",
    baseline: "disk",
    metric: "swapIOs",
    requiredReductionPct: 75,
    rule: "at-least",
  },
  {
    workload: "swap",
    description: "tmem swap-disk I/Os below zswap",
    config: "tmem",
    baseline: "zswap",
    metric: "swapIOs",
    requiredReductionPct: 0,
    rule: "more-than",
  },
  {
    workload: "phased",
    description: "tmem+selfballoon aggregate disk I/O (sectors: data read + swap read and written, all guests) at most half of disk",
    config: "tmem+selfballoon",
    baseline: "disk",
    metric: "diskSectors",
    requiredReductionPct: 50,
    rule: "at-least",
  },
];

export function evaluateTarget(spec: TargetSpec, runs: readonly BenchRunJson[]): TargetResult {
  const notEvaluated = (reason: string, value: number | null = null, baselineValue: number | null = null): TargetResult => ({
    ...spec,
    value,
    baselineValue,
    reductionPct: null,
    status: "not-evaluated",
    reason,
  });
  const run = runs.find((r) => r.config === spec.config);
  const base = runs.find((r) => r.config === spec.baseline);
  for (const [name, r] of [[spec.config, run], [spec.baseline, base]] as const) if (!r) return notEvaluated(`${name} was not run`);
  const value = run![spec.metric]?.median ?? null;
  const baselineValue = base![spec.metric]?.median ?? null;
  // Wrong data in any run (valid or not) of either side makes the comparison void, whatever the numbers.
  const wrong = [run!, base!].filter((r) => (r.mismatches ?? 0) > 0 || r.filesCorrupt > 0).map((r) => r.config);
  if (wrong.length) {
    const reductionPct = value !== null && baselineValue ? (1 - value / baselineValue) * 100 : null;
    return { ...spec, value, baselineValue, reductionPct, status: "invalid", reason: `data came back wrong in ${wrong.join(" and ")}: the numbers do not count` };
  }
  // Only valid runs count: each side needs at least one.
  const partly: string[] = [];
  for (const r of [run!, base!]) {
    if (r.repeat === 0) return notEvaluated(r.invalidRuns > 0 ? invalidRunsText(r) : `no run of ${r.config} completed`);
    if (r.invalidRuns > 0) partly.push(invalidRunsText(r));
  }
  if (value === null || baselineValue === null) return notEvaluated(`${spec.metric} was not measured`, value, baselineValue);
  if (baselineValue === 0) return notEvaluated(`${spec.baseline} had no ${spec.metric} to reduce (0): the workload put no pressure on that disk`, value, baselineValue);
  const reductionPct = (1 - value / baselineValue) * 100;
  const met = spec.rule === "at-least" ? reductionPct >= spec.requiredReductionPct : reductionPct > spec.requiredReductionPct;
  const reason = partly.length ? `from the valid runs only; ${partly.join("; ")}` : null;
  return { ...spec, value, baselineValue, reductionPct, status: met ? "met" : "missed", reason };
}

/** "zswap: 2 of 2 runs invalid: g0: OOM-killed (1 kill); g1: exit code 137". */
export function invalidRunsText(r: BenchRunJson): string {
  const causes = [...new Set(r.failures.flatMap((f) => (f.reasons.length ? f.reasons : [f.message])))];
  return `${r.config}: ${r.invalidRuns} of ${r.invalidRuns + r.repeat} runs invalid${causes.length ? `: ${causes.join("; ")}` : ""}`;
}

export function evaluateTargets(workload: string, runs: readonly BenchRunJson[]): TargetResult[] {
  return BENCH_TARGETS.filter((t) => t.workload === workload).map((t) => evaluateTarget(t, runs));
}

export interface BenchDocument {
  tool: "tmemu bench";
  workload: string;
  command: string;
  guests: number;
  memoryMib: number;
  budgetMib: number;
  seed: number;
  /** Repeats asked for per configuration (each run says how many completed). */
  repeat: number;
  diskLatencyUs: number;
  interrupted: boolean;
  /** Every run of every configuration was valid, and the bench was not interrupted. */
  valid: boolean;
  /** Why not; empty when valid. */
  reasons: string[];
  /** Host work outside the runs, measured once (the MemTotal probe guest's boot); not in any run's numbers. */
  setup: BenchSetup[];
  wallSeconds: number;
  runs: BenchRunJson[];
  model: { label: string; diskLatencyUs: number; formula: string };
  targets: TargetResult[];
  notes: string[];
  warnings: string[];
}

export interface BenchSetup {
  what: string;
  seconds: number;
  hostCpuSeconds: number;
}

export interface BenchDocumentInput {
  workload: string;
  commandLine: string;
  memory: BenchMemory;
  seed: number;
  repeat: number;
  diskLatencyUs: number;
  configs: readonly BenchConfig[];
  samples: ReadonlyMap<BenchConfigName, readonly RepeatSample[]>;
  failures: readonly RunFailure[];
  interrupted: boolean;
  wallSeconds: number;
  zswapMaxPoolPercent: number;
  setup?: readonly BenchSetup[];
}

export const MODEL_LABEL = "MODEL, not measured";

export function buildRun(config: BenchConfig, allSamples: readonly RepeatSample[], allFailures: readonly RunFailure[], diskLatencyUs: number): BenchRunJson {
  // Only valid runs make the numbers; invalid ones are listed (samples, failures) with their reasons.
  const samples = allSamples.filter((s) => s.valid);
  const failures = allFailures.filter((f) => f.config === config.name);
  const metrics = {} as { [K in MetricKey]: Stat | null };
  for (const m of BENCH_METRICS) metrics[m.key] = stat(samples.map((s) => s.metrics[m.key] ?? null));
  const total = (f: (s: RepeatSample) => number) => allSamples.reduce((n, s) => n + f(s), 0);
  return {
    config: config.name,
    repeat: samples.length,
    invalidRuns: failures.length,
    valid: samples.length > 0 && failures.length === 0,
    reasons: failures.length ? failures.map((f) => `repeat ${f.repeat}: ${f.message}`) : samples.length ? [] : ["no run completed"],
    policy: config.policy,
    tmem: config.tmem,
    kernelArgs: [...config.kernelArgs],
    storeMaxMib: config.storeMaxMib,
    unusedMib: config.unusedMib,
    ...metrics,
    estimatedDiskTimeS: stat(samples.map((s) => (s.metrics.diskRequests === null ? null : estimatedDiskTimeS(s.metrics.diskRequests, diskLatencyUs)))),
    estimatedSavedS: null,
    mismatches: allSamples.every((s) => s.mismatches === null) ? null : total((s) => s.mismatches ?? 0),
    filesCorrupt: total((s) => s.filesCorrupt),
    oomKills: total((s) => s.oomKills),
    failedGuestRuns: total((s) => s.failedGuests),
    failures: failures.map((f) => ({ repeat: f.repeat, message: f.message, reasons: [...f.reasons] })),
    samples: [...allSamples],
  };
}

function memoryNotes(input: BenchDocumentInput): string[] {
  const { guests, memoryMib, budgetMib } = input.memory;
  const names = input.configs.map((c) => c.name);
  const unused = budgetMib - guests * memoryMib;
  const notes = [
    `equal memory: every configuration has ${guests} guests x ${memoryMib} MiB of RAM and ${budgetMib} MiB in all; same workload seed ${input.seed}`,
  ];
  const noStore = names.filter((n) => n === "disk" || n === "zswap");
  if (noStore.length && unused > 0) {
    notes.push(`${noStore.join(" and ")} leave${noStore.length === 1 ? "s" : ""} ${budgetMib} - ${guests} x ${memoryMib} = ${unused} MiB unused: that is the memory tmem gets as its store`);
  }
  if (names.includes("zswap")) {
    const p = input.zswapMaxPoolPercent;
    notes.push(
      `zswap: zswap.max_pool_percent=${p} lets each guest's compressed pool grow to ${p}% of its RAM (about ${((p * memoryMib) / 100).toFixed(0)} MiB; Linux takes the percentage of MemTotal, a little less), ` +
        `at most the ${(unused / guests).toFixed(0)} MiB per guest the tmem store gets. The asymmetry is real: zswap's pool comes out of the guest's own RAM (it competes with the page cache and anonymous memory, and the ${unused} MiB outside the guests stay unused), ` +
        `while the tmem store is host memory outside the guests; zswap (LZ4, zsmalloc) and the tmem store (LZ4, size classes like zsmalloc's) both compress, and both are counted in the 4 KiB frames their allocator holds, not in compressed bytes; zswap caches only swap, the store swap (frontswap) and clean page cache (cleancache)`,
    );
  }
  if (names.includes("tmem-raw")) {
    notes.push("tmem-raw: the tmem store with compression and deduplication off (one whole 4 KiB frame per page), the same budget as tmem");
  }
  if (names.includes("tmem+selfballoon")) {
    notes.push(`tmem+selfballoon: the selfballoon policy may balloon guest RAM out and give it to the store (at most ${input.configs.find((c) => c.name === "tmem+selfballoon")?.storeMaxMib?.toFixed(0) ?? "?"} MiB); the total stays ${budgetMib} MiB`);
  }
  return notes;
}

function warningsFor(input: BenchDocumentInput, runs: readonly BenchRunJson[]): string[] {
  const w: string[] = [];
  if (input.interrupted) w.push("interrupted (Ctrl-C): the run in progress was dropped; the numbers cover the repeats that completed");
  for (const f of input.failures) w.push(`${f.config} repeat ${f.repeat} failed: ${f.message}`);
  for (const t of evaluateTargets(input.workload, runs)) if (t.status === "not-evaluated") w.push(`target not evaluated: ${t.description}: ${t.reason ?? ""}`);
  for (const r of runs) {
    if ((r.mismatches ?? 0) > 0 || r.filesCorrupt > 0) {
      w.push(`DATA CAME BACK WRONG in ${r.config}: ${r.mismatches} memtouch mismatches, ${r.filesCorrupt} corrupt file sets over ${r.repeat} repeats`);
    }
    if (r.failedGuestRuns > 0) w.push(`${r.config}: ${r.failedGuestRuns} guest workloads were not valid (see the samples' reasons)`);
    if (r.oomKills > 0) w.push(`${r.config}: ${r.oomKills} OOM kills in the guests`);
    if (r.tmem && r.repeat > 0 && (r.tmemPuts === null || r.tmemPuts.max === 0)) {
      w.push(`${r.config}: the store saw no tmem puts; does the guest kernel have the tmem frontends (cleancache, frontswap)?`);
    }
  }
  const disk = runs.find((r) => r.config === "disk");
  const zswap = runs.find((r) => r.config === "zswap");
  if (disk?.swapIOs && zswap?.swapIOs && disk.swapIOs.median > 0 && zswap.swapIOs.median >= disk.swapIOs.median) {
    w.push(`zswap did not reduce swap I/O below disk (${zswap.swapIOs.median} vs ${disk.swapIOs.median} requests): is zswap in the guest kernel (CONFIG_ZSWAP), with a pool limit above 0 (max_pool_percent=${input.zswapMaxPoolPercent})?`);
  }
  return w;
}

export function buildBenchDocument(input: BenchDocumentInput): BenchDocument {
  const runs = input.configs.map((c) => buildRun(c, input.samples.get(c.name) ?? [], input.failures, input.diskLatencyUs));
  const disk = runs.find((r) => r.config === "disk");
  for (const r of runs) {
    if (disk?.estimatedDiskTimeS && r.estimatedDiskTimeS) r.estimatedSavedS = disk.estimatedDiskTimeS.median - r.estimatedDiskTimeS.median;
  }
  const L = input.diskLatencyUs;
  const setup = [...(input.setup ?? [])];
  const reasons = [...(input.interrupted ? ["interrupted (Ctrl-C)"] : []), ...runs.filter((r) => !r.valid).map((r) => (r.invalidRuns ? invalidRunsText(r) : `${r.config}: no run completed`))];
  return {
    tool: "tmemu bench",
    workload: input.workload,
    command: input.commandLine,
    guests: input.memory.guests,
    memoryMib: input.memory.memoryMib,
    budgetMib: input.memory.budgetMib,
    seed: input.seed,
    repeat: input.repeat,
    diskLatencyUs: L,
    interrupted: input.interrupted,
    valid: reasons.length === 0,
    reasons,
    setup,
    wallSeconds: input.wallSeconds,
    runs,
    model: {
      label: MODEL_LABEL,
      diskLatencyUs: L,
      formula: `estimatedDiskTimeS = diskRequests (data reads + swap reads and writes, summed over guests) x ${L} us / 1e6: aggregate disk busy time, not wall time; estimatedSavedS = disk's median minus this configuration's`,
    },
    targets: evaluateTargets(input.workload, runs),
    notes: [
      ...memoryNotes(input),
      "repeats are interleaved (one run of each configuration, then the next round): drift of the host weighs on every configuration alike",
      "sectors are 512 bytes; disk, tmem and vmstat counters are summed over the guests; each metric is the median over the valid repeats with min and max; invalid runs are listed with their reasons and left out",
      "one window per run: every counter (disk sectors and requests, the store's counters, vmstat, the guests' tmem counters) counts from the workload's start (all guests booted) to its end",
      "workload time is the wall time of each guest's workload command (guest clock = host clock); the emulated disks answer from host memory, so measured times do not include real disk latency: see the model",
      "host CPU time is process.cpuUsage() around each run: the guests' boots, the file set and the workload; all guests share one Node thread. The MemTotal probe (one guest booted once to size the workload) is not in any run: see setup",
    ],
    warnings: warningsFor(input, runs),
  };
}

// ---- terminal output ----

export function formatValue(v: number, unit: MetricInfo["unit"]): string {
  if (unit === "s") return v.toFixed(1);
  if (unit === "x") return v.toFixed(2);
  if (unit === "us") return v.toFixed(1);
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

export function formatStat(s: Stat | null, unit: MetricInfo["unit"]): string {
  if (!s) return "n/a";
  const med = formatValue(s.median, unit);
  if (s.min === s.max) return med;
  return `${med} [${formatValue(s.min, unit)}..${formatValue(s.max, unit)}]`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? "").length)));
  return rows.map((r) => r.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!))).join("  ").trimEnd());
}

export function formatPct(p: number): string {
  return `${Math.abs(p).toFixed(1)}% ${p >= 0 ? "below" : "above"}`;
}

export function formatTarget(t: TargetResult): string {
  const head = `${t.workload}: ${t.description}:`;
  if (t.status === "not-evaluated") return `${head} NOT EVALUATED (${t.reason ?? ""})`;
  const measured = `measured ${formatPct(t.reductionPct ?? 0)} ${t.baseline}: ${t.config} ${t.value} vs ${t.baseline} ${t.baselineValue} (${t.metric}, medians)`;
  if (t.status === "invalid") return `${head} INVALID, ${measured}; ${t.reason ?? ""}`;
  return `${head} ${t.status === "met" ? "MET" : "MISSED"}, ${measured}${t.reason ? ` (${t.reason})` : ""}`;
}

/** The terminal report: metrics x configurations (median [min..max]), the model, targets, notes. */
export function formatBenchTable(doc: BenchDocument): string {
  const runs = doc.runs;
  const out = [
    `tmemu bench: workload ${doc.workload}, ${doc.guests} guests x ${doc.memoryMib} MiB, ${doc.budgetMib} MiB in all, seed ${doc.seed}, ${doc.repeat} repeats${doc.interrupted ? " (INTERRUPTED)" : ""}${doc.valid ? "" : " (NOT VALID: see below)"}`,
    `  ${doc.command}`,
    "",
  ];
  const rows: string[][] = [["metric (sum over guests; median [min..max])", ...runs.map((r) => r.config)]];
  rows.push(["valid runs (make the medians)", ...runs.map((r) => String(r.repeat))]);
  rows.push(["invalid runs (left out)", ...runs.map((r) => String(r.invalidRuns))]);
  for (const m of BENCH_METRICS) rows.push([m.label, ...runs.map((r) => formatStat(r[m.key], m.unit))]);
  rows.push(["memtouch mismatches (must be 0)", ...runs.map((r) => (r.mismatches === null ? "n/a" : String(r.mismatches)))]);
  rows.push(["corrupt file sets (must be 0)", ...runs.map((r) => String(r.filesCorrupt))]);
  out.push(...table(rows), "");
  out.push(`${MODEL_LABEL}: ${doc.diskLatencyUs} us per disk request (--disk-latency-us); aggregate disk busy time over all guests`);
  const model: string[][] = [["model", ...runs.map((r) => r.config)]];
  model.push(["estimated disk time (s)", ...runs.map((r) => formatStat(r.estimatedDiskTimeS, "s"))]);
  model.push(["estimated saved vs disk (s)", ...runs.map((r) => (r.estimatedSavedS === null ? "n/a" : r.estimatedSavedS.toFixed(1)))]);
  out.push(...table(model), "");
  if (doc.targets.length === 0) out.push(`targets: none for workload ${doc.workload}`);
  for (const t of doc.targets) out.push(`target ${formatTarget(t)}`);
  out.push("");
  for (const x of doc.setup) out.push(`setup (not in any run): ${x.what}: ${x.seconds.toFixed(1)} s wall, ${x.hostCpuSeconds.toFixed(1)} s host CPU`);
  if (!doc.valid) out.push(`NOT VALID: ${doc.reasons.join("; ")}`);
  for (const n of doc.notes) out.push(`note: ${n}`);
  for (const w of doc.warnings) out.push(`WARNING: ${w}`);
  return `${out.join("\n")}\n`;
}
