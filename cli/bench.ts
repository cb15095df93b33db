/**
 * `tmemu bench`: the same workload, with the same seed and the same total memory, under each memory
 * configuration, K times, on the same guest images; the numbers of bench-report.ts at the end.
 *
 * The configurations (G guests of M MiB, B MiB in all, B >= G x M):
 *
 *  disk              no tmem, no zswap: the tmem frontends are told off at boot and no tmem device
 *                    is attached; the B - G x M MiB beyond guest RAM stay unused
 *  zswap             Linux's in-guest compressed swap cache (zswap.enabled=1), tmem frontends off;
 *                    zswap.max_pool_percent lets each guest's pool grow to at most the memory the
 *                    store would get per guest, (B - G x M) / G, but that pool comes out of the
 *                    guest's own RAM (see zswapNote)
 *  tmem              cleancache + frontswap to the shared store, static policy: the store gets
 *                    B - G x M MiB; the default store (LZ4 compression, dedup within each guest,
 *                    size classes), its memory counted in frames as zswap's pool is in pages
 *  tmem-raw          the same store with compression and dedup off: one whole frame per page
 *  tmem+selfballoon  (only for G > 1) the same with the selfballoon policy, which may balloon guest
 *                    RAM out into the store; the total stays B
 *
 * Repeats are interleaved (disk, zswap, tmem, ..., then the second round): slow drift of the host (the
 * 2 cores are shared with kernel builds) then weighs on every configuration alike.
 *
 * Pure apart from runBench, which takes the runner (runGuests) as an argument so that tests can give
 * it synthetic RunSummary values.
 */
import { createMemoryPolicy } from "../hypervisor/scheduler/policy.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import type { DedupMode } from "../hypervisor/tmem/store.ts";
import type { WorkloadName } from "../workloads/builtin.ts";
import { buildBenchDocument, sampleFromSummary, type BenchDocument, type BenchSetup, type RepeatSample } from "./bench-report.ts";
import type { RunOptions, RunSummary } from "./run.ts";

export const BENCH_CONFIG_NAMES = ["disk", "zswap", "tmem", "tmem-raw", "tmem+selfballoon"] as const;
export type BenchConfigName = (typeof BENCH_CONFIG_NAMES)[number];

/** Kernel arguments of the tmem frontend driver (patches/) and of Linux's zswap (mm/zswap.c). */
export const TMEM_FRONTENDS_OFF = ["tmem.cleancache=0", "tmem.frontswap=0"] as const;

const PAGES_PER_MIB = 256;

export interface BenchConfig {
  name: BenchConfigName;
  policy: "static" | "selfballoon";
  /** Attach the tmem device. */
  tmem: boolean;
  kernelArgs: string[];
  /** Most the tmem store may hold, MiB (null: no store in this configuration). */
  storeMaxMib: number | null;
  /** The store's compression and dedup (absent: the defaults, or the bench's --dedup). */
  store?: { compression: boolean; dedup: DedupMode };
  /** MiB of the total memory this configuration leaves unused. */
  unusedMib: number;
}

export interface BenchMemory {
  guests: number;
  memoryMib: number;
  budgetMib: number;
}

/** The default total memory: guest RAM plus half as much again for the store (as `tmemu run`). */
export function defaultBudgetMib(guests: number, memoryMib: number): number {
  return Math.round(guests * memoryMib * 1.5);
}

/**
 * zswap.max_pool_percent giving each guest's zswap pool at most the memory the tmem store gets per
 * guest, (B - G x M) / G MiB, as a whole percentage of M rounded down (never more than the store),
 * at most 100. Linux takes the percentage of the RAM it manages (MemTotal, a little under M), so the
 * pool's real cap is a little lower still.
 */
export function zswapMaxPoolPercent(m: BenchMemory): number {
  const extraPerGuestMib = (m.budgetMib - m.guests * m.memoryMib) / m.guests;
  return Math.max(0, Math.min(100, Math.floor((100 * extraPerGuestMib) / m.memoryMib)));
}

function storeMaxMib(policy: "static" | "selfballoon", m: BenchMemory): number {
  const guests = Array.from({ length: m.guests }, (_, i) => ({ name: `g${i}`, ramMib: m.memoryMib }));
  return createMemoryPolicy(policy).maxStoreBudgetFrames(m.budgetMib, guests) / PAGES_PER_MIB;
}

/** The configurations to compare, in run order; `only` picks some of them (in this order). */
export function planBenchConfigs(m: BenchMemory, only?: readonly BenchConfigName[]): BenchConfig[] {
  if (m.budgetMib < m.guests * m.memoryMib) {
    throw new TmemuError(
      "USAGE",
      `--budget-mib ${m.budgetMib} is less than the guests' RAM (${m.guests} x ${m.memoryMib} = ${m.guests * m.memoryMib} MiB)`,
      `give at least ${m.guests * m.memoryMib}, or leave it out for ${defaultBudgetMib(m.guests, m.memoryMib)}`,
    );
  }
  if (only?.includes("tmem+selfballoon") && m.guests < 2) {
    throw new TmemuError("USAGE", "tmem+selfballoon needs at least 2 guests", "give --guests 2 or more, or leave tmem+selfballoon out of --configs");
  }
  const unused = m.budgetMib - m.guests * m.memoryMib;
  const all: BenchConfig[] = [
    { name: "disk", policy: "static", tmem: false, kernelArgs: [...TMEM_FRONTENDS_OFF], storeMaxMib: null, unusedMib: unused },
    {
      name: "zswap",
      policy: "static",
      tmem: false,
      kernelArgs: ["tmem.frontswap=0", "tmem.cleancache=0", "zswap.enabled=1", `zswap.max_pool_percent=${zswapMaxPoolPercent(m)}`],
      storeMaxMib: null,
      unusedMib: unused,
    },
    { name: "tmem", policy: "static", tmem: true, kernelArgs: [], storeMaxMib: storeMaxMib("static", m), unusedMib: 0 },
    {
      name: "tmem-raw",
      policy: "static",
      tmem: true,
      kernelArgs: [],
      storeMaxMib: storeMaxMib("static", m),
      unusedMib: 0,
      store: { compression: false, dedup: "off" },
    },
  ];
  if (m.guests > 1) {
    all.push({ name: "tmem+selfballoon", policy: "selfballoon", tmem: true, kernelArgs: [], storeMaxMib: storeMaxMib("selfballoon", m), unusedMib: 0 });
  }
  if (!only || only.length === 0) return all;
  return all.filter((c) => only.includes(c.name));
}

/** "3m12s", "45s", "1h02m". */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

export interface ProgressState {
  configIndex: number;
  configCount: number;
  config: BenchConfigName;
  repeat: number;
  repeats: number;
  elapsedS: number;
  /** Runs finished so far (any outcome) and runs in all: the estimate is the mean time per run. */
  runsDone: number;
  runsTotal: number;
}

/** "[tmemu bench] config 2/4 (zswap) repeat 1/3, elapsed 3m12s, about 9m left". */
export function formatProgress(p: ProgressState): string {
  const head = `[tmemu bench] config ${p.configIndex}/${p.configCount} (${p.config}) repeat ${p.repeat}/${p.repeats}, elapsed ${formatDuration(p.elapsedS)}`;
  if (p.runsDone === 0) return `${head}, time left known after the first run`;
  const leftS = (p.elapsedS / p.runsDone) * (p.runsTotal - p.runsDone);
  return `${head}, about ${formatDuration(leftS)} left`;
}

export interface BenchOptions {
  workload: WorkloadName;
  guests: number;
  memoryMib: number;
  /** Total memory, MiB (default defaultBudgetMib). */
  budgetMib?: number;
  /** Runs per configuration. */
  repeat: number;
  seed: number;
  phaseS?: number;
  /** Latency per disk request of the model that turns saved requests into seconds, µs. */
  diskLatencyUs: number;
  /** Run only these configurations (default: all that apply). */
  configs?: readonly BenchConfigName[];
  /** The store's dedup mode in the configurations that keep the default store (default "client"). */
  dedup?: DedupMode;
  /** Guests in worker threads; false (runGuests' default): every guest in the main thread. */
  threads?: boolean;
  /** The command line, for the report and the chart's title. */
  commandLine: string;
  signal?: AbortSignal;
  /** runGuests' own log lines. */
  log?: (line: string) => void;
  /** One progress line before each run. */
  progress?: (line: string) => void;
}

export interface BenchDeps {
  run: (opts: RunOptions) => Promise<RunSummary>;
  /**
   * MemTotal of a guest of --memory-mib, MiB (boots a probe guest): called once before the runs, its
   * time and host CPU reported apart as setup, its answer given to every run. Without it each run
   * probes for itself (and its sample leaves that probe out).
   */
  probe?: (memoryMib: number) => Promise<number>;
  /** Wall clock, ms (default Date.now). */
  now?: () => number;
  /** Host CPU time of this process, µs (default process.cpuUsage). */
  cpuUsage?: () => { user: number; system: number };
}

/** A run that did not give a valid sample: it threw, stopped before the workload ended, or was not valid. */
export interface RunFailure {
  config: BenchConfigName;
  repeat: number;
  message: string;
  /** The run summary's reasons ("g0: OOM-killed (1 kill)"); [] when the run threw. */
  reasons: string[];
}

export function runOptionsFor(config: BenchConfig, opts: BenchOptions, budgetMib: number, guestRamMib?: number): RunOptions {
  return {
    ...(guestRamMib !== undefined ? { guestRamMib } : {}),
    guests: opts.guests,
    memoryMib: opts.memoryMib,
    budgetMib,
    policy: config.policy,
    workload: opts.workload,
    seed: opts.seed,
    ...(opts.phaseS !== undefined ? { phaseS: opts.phaseS } : {}),
    kernelArgs: [...config.kernelArgs],
    tmem: config.tmem,
    ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
    ...(config.store ? { store: { ...config.store } } : opts.dedup !== undefined ? { store: { dedup: opts.dedup } } : {}),
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
}

/**
 * Runs every configuration `repeat` times (interleaved) and returns the report. A run that throws is
 * recorded as a failure and the bench goes on, except for the very first run: a failure there (no
 * images, a kernel that does not boot) would only repeat, so it is thrown. A run whose summary is not
 * valid (a guest OOM-killed, a missing line, a non-zero exit...) is a failed run too: its sample is
 * kept with its reasons but left out of the medians. An abort (Ctrl-C) stops the bench after the
 * current run, which is not counted; the report says `interrupted`.
 */
export async function runBench(opts: BenchOptions, deps: BenchDeps): Promise<BenchDocument> {
  const now = deps.now ?? Date.now;
  const cpuUsage = deps.cpuUsage ?? (() => process.cpuUsage());
  const memory: BenchMemory = { guests: opts.guests, memoryMib: opts.memoryMib, budgetMib: opts.budgetMib ?? defaultBudgetMib(opts.guests, opts.memoryMib) };
  const configs = planBenchConfigs(memory, opts.configs);
  const samples = new Map<BenchConfigName, RepeatSample[]>(configs.map((c) => [c.name, []]));
  const failures: RunFailure[] = [];
  const t0 = now();
  const runsTotal = configs.length * opts.repeat;
  let runsDone = 0;
  let interrupted = false;
  const setup: BenchSetup[] = [];
  let guestRamMib: number | undefined;
  if (deps.probe) {
    const w0 = now();
    const c0 = cpuUsage();
    guestRamMib = await deps.probe(memory.memoryMib);
    const c1 = cpuUsage();
    setup.push({
      what: `MemTotal probe: one ${memory.memoryMib} MiB guest booted once to read MemTotal (${guestRamMib} MiB), which sizes the workload of every run`,
      seconds: (now() - w0) / 1000,
      hostCpuSeconds: (c1.user - c0.user + c1.system - c0.system) / 1e6,
    });
  }

  rounds: for (let repeat = 1; repeat <= opts.repeat; repeat++) {
    for (const [k, config] of configs.entries()) {
      if (opts.signal?.aborted) {
        interrupted = true;
        break rounds;
      }
      opts.progress?.(
        formatProgress({ configIndex: k + 1, configCount: configs.length, config: config.name, repeat, repeats: opts.repeat, elapsedS: (now() - t0) / 1000, runsDone, runsTotal }),
      );
      const cpu0 = cpuUsage();
      let summary: RunSummary;
      try {
        summary = await deps.run(runOptionsFor(config, opts, memory.budgetMib, guestRamMib));
      } catch (err) {
        if (runsDone === 0) throw err;
        failures.push({ config: config.name, repeat, message: err instanceof Error ? err.message : String(err), reasons: [] });
        runsDone++;
        continue;
      }
      const cpu1 = cpuUsage();
      runsDone++;
      if (summary.interrupted && opts.signal?.aborted) {
        interrupted = true;
        break rounds;
      }
      if (summary.setup) setup.push({ ...summary.setup, what: `${summary.setup.what} (in ${config.name} repeat ${repeat}, taken out of its numbers)` });
      const hostCpuS = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / 1e6;
      const sample = sampleFromSummary(summary, repeat, hostCpuS);
      samples.get(config.name)!.push(sample);
      if (!sample.valid) failures.push({ config: config.name, repeat, message: `not valid: ${sample.reasons.join("; ")}`, reasons: sample.reasons });
    }
  }

  return buildBenchDocument({
    workload: opts.workload,
    commandLine: opts.commandLine,
    memory,
    seed: opts.seed,
    repeat: opts.repeat,
    diskLatencyUs: opts.diskLatencyUs,
    configs,
    samples,
    failures,
    interrupted,
    wallSeconds: (now() - t0) / 1000,
    zswapMaxPoolPercent: zswapMaxPoolPercent(memory),
    setup,
  });
}
