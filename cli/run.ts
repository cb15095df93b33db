/**
 * `tmemu run`: several guests, one tmem store, one memory budget, a memory policy and a workload;
 * a live table while it runs, a summary at the end (also as JSON with --json). Ctrl-C stops the
 * guests and still prints the summary.
 *
 * Validity: each guest's workload is judged (workloads/builtin.ts judgeWorkload): it must have run
 * to the end, exited 0, printed its required lines, with no OOM kill and its data intact. The
 * summary says `valid` with `reasons`, per guest and for the run, and how the run stopped.
 *
 * One measurement window: every counter in the summary (disk sectors and requests, the store's
 * per-client counters, /proc/vmstat, the guest's tmem counters) is a delta from the workload's start
 * (all guests booted, baselines read) to its end (all workloads finished, or the stop). Store pages
 * and frames are levels at the end. The MemTotal probe (a guest booted before the run to size the
 * workload) is timed apart (`setup`).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GuestImages } from "../emulator/guest.ts";
import { SAMPLE_EVERY, trapWaitBetween, type TrapWaitSummary } from "../emulator/trap-timer.ts";
import { makeDataDisk, makeSwapImage } from "../guest-images/disks.ts";
import { ensureImages, loadGuestImages } from "../guest-images/index.ts";
import { imagesKeyOf } from "../guest-images/snapshots.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { delta, type TmemGuestStats, type VmStats } from "../hypervisor/guest/stats.ts";
import { MemoryHost } from "../hypervisor/host.ts";
import { createMemoryPolicy } from "../hypervisor/scheduler/policy.ts";
import { StoreDensityTracker, type StoreDensityJson, type StoreMetricsJson } from "../hypervisor/tmem/metrics.ts";
import { Ext4PageVerifier } from "../hypervisor/tmem/shared-verify.ts";
import { TmemStore, type DedupMode } from "../hypervisor/tmem/store.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { writeFileSet } from "../workloads/files.ts";
import { judgeWorkload, planWorkload, REASON_INTERRUPTED, REASON_NOT_STARTED, REASON_UNFINISHED, type WorkloadEnd, type WorkloadPlan } from "../workloads/builtin.ts";
import { TimelineRecorder, type PolicyEvent, type RunTimeline, type TimelineSample } from "./ui/timeline.ts";
import type { GuestApi } from "../emulator/threaded-guest.ts";
import { startGuest, startGuestOn, type GuestStart, type StartedGuest } from "./snapshot-guest.ts";
import { guestMemTotalMib, guestTmemStats, guestVmstat, hostedGuest, oomKills, type TmemGuest as AnyTmemGuest } from "./tmem-guest.ts";

type TmemGuest = AnyTmemGuest<GuestApi>;

const PAGES_PER_MIB = 256;

export interface RunOptions {
  guests: number;
  memoryMib: number;
  budgetMib?: number;
  policy: string;
  workload?: string;
  cmd?: string;
  files?: string;
  durationS?: number;
  seed: number;
  phaseS?: number;
  /** Kernel arguments for every guest (e.g. tmem.frontswap=0 zswap.enabled=1). */
  kernelArgs?: string[];
  /** Attach the tmem device (default true). */
  tmem?: boolean;
  /** Each guest's vCPU in a worker thread of its own; false (the default): every guest in this thread. */
  threads?: boolean;
  /** The store's compression (default on) and dedup mode (default "client"). */
  store?: { compression?: boolean; dedup?: DedupMode };
  live?: boolean;
  log?: (line: string) => void;
  /** Called with a redrawn table now and then (live view). */
  onTable?: (table: string) => void;
  signal?: AbortSignal;
  /** Boot these images instead of resolving them (bench: every run on the same images). */
  images?: GuestImages;
  /**
   * The identity of `images` (guest-images/snapshots.ts imagesKeyOf), the boot snapshot's cache
   * key: with it every guest starts from the boot snapshot; without it (images given, key not)
   * they boot cold. Found by runGuests when it resolves the images itself.
   */
  imagesKey?: string;
  /** Boot every guest cold, never from the boot snapshot (--cold-boot). */
  coldBoot?: boolean;
  /** MemTotal of a guest of memoryMib, MiB, when already known (bench probes once, apart); else a probe guest is booted. */
  guestRamMib?: number;
  /** Called once per tick with every guest and the store, and the policy's changes of that tick (live page, cli/ui/). */
  onSample?: (sample: TimelineSample, events: PolicyEvent[]) => void;
  /** Called with every guest's console output as it arrives, from boot on. */
  onConsole?: (guest: string, text: string) => void;
  /** Called once the guests are up, with a way to type into each one's serial console. */
  onGuests?: (guests: { name: string; sendInput(text: string): void }[]) => void;
}

/** The store's counters for one client: deltas over the window, except the two page levels. */
export interface GuestStoreCounters {
  puts: number;
  gets: number;
  getHits: number;
  putsRefused: number;
  evictions: number;
  /** Level at the end of the window. */
  pagesEphemeral: number;
  /** Level at the end of the window. */
  pagesPersistent: number;
}

export interface GuestSummary {
  name: string;
  ramMib: number;
  /** How the guest started: a cold boot, from the boot snapshot, or the cold boot that made the snapshot and a restore (absent in summaries from before snapshots). */
  start?: GuestStart;
  exitCode: number | null;
  seconds: number | null;
  /** How the workload command ended (workloads/builtin.ts WorkloadEnd). */
  status: WorkloadEnd;
  /** The workload ran to the end and passed every check; otherwise `reasons` says why not. */
  valid: boolean;
  reasons: string[];
  /** null: no memtouch result line was printed (never 0 then). */
  mismatches: number | null;
  memtouchRuns: number;
  filesOk: boolean | null;
  oomKills: number;
  dataSectorsRead: number;
  dataReadRequests: number;
  swapSectorsRead: number;
  swapSectorsWritten: number;
  swapRequests: number;
  balloonPagesEnd: number;
  balloonPagesMax: number;
  tmem: GuestStoreCounters | null;
  guestTmem: TmemGuestStats | null;
  vmstat: VmStats | null;
  /**
   * How long the guest's vCPU waited on its hypercalls over the window, one trap in 16 timed
   * (emulator/trap-timer.ts; threaded: in the guest's thread, the crossing included, as of its
   * last status). null: no trap was timed. Absent in summaries from before it.
   */
  hypercallWait?: TrapWaitSummary | null;
  output: string;
}

export interface RunSummary {
  policy: string;
  workload: string;
  seed: number;
  guests: GuestSummary[];
  store: StoreMetricsJson;
  /** The store's density over the run: frames at its peak, pages per frame there, fragmentation. */
  storeDensity?: StoreDensityJson;
  budgetMib: number;
  memoryMib: number;
  /** Each guest ran in a worker thread of its own (--threads on); absent in summaries from before threads. */
  threads?: boolean;
  seconds: number;
  /** Ctrl-C (a --duration-s stop is not an interruption). */
  interrupted: boolean;
  /** How the run ended: every workload finished, the --duration-s stop, or Ctrl-C. */
  stopped: RunStop;
  /** Every guest's workload ran to the end and passed its checks. */
  valid: boolean;
  /** "g0: OOM-killed (1 kill)", one per guest reason; empty when valid. */
  reasons: string[];
  /** The window every counter of this summary covers. */
  window: MeasurementWindow;
  /** Host work done before the run proper (null: none in this run). */
  setup: RunSetup | null;
  /** Every guest and the store once per tick over the window, and the policy's decisions (cli/ui/timeline.ts). */
  timeline?: RunTimeline;
  totals: {
    dataSectorsRead: number;
    swapSectorsRead: number;
    swapSectorsWritten: number;
    diskSectors: number;
    mismatches: number;
    oomKills: number;
    slowestGuestS: number | null;
    /** From the first guest's start until the last guest's workload finished (null if interrupted). */
    completionS: number | null;
  };
}

export type RunStop = "finished" | "duration" | "interrupted";

export interface MeasurementWindow {
  from: "workload start";
  to: "all workloads finished" | "stop";
  seconds: number;
  counters: string;
  levels: string;
}

export interface RunSetup {
  what: string;
  seconds: number;
  hostCpuSeconds: number;
}

const WINDOW_COUNTERS =
  "deltas over the window: disk sectors and requests, the store's puts/gets/getHits/putsRefused/evictions per client, /proc/vmstat, the guest's tmem counters (vmstat and guest tmem: null for a guest still busy at a stop)";
const WINDOW_LEVELS = "levels at the end of the window: tmem.pagesEphemeral, tmem.pagesPersistent per guest, store.* (frames, pages), balloonPagesEnd";

const memTotalCache = new WeakMap<GuestImages, Map<number, number>>();

/** How guests start: from the boot snapshot of the images named `imagesKey`, unless `coldBoot` (or no key). */
export interface StartFrom {
  imagesKey?: string;
  coldBoot?: boolean;
}

function startOptions(from: StartFrom): { imagesKey: string; coldBoot: boolean } {
  return { imagesKey: from.imagesKey ?? "", coldBoot: from.coldBoot === true || from.imagesKey === undefined };
}

/** Guest RAM as Linux reports it for a given --memory-mib: boots one guest and asks (once per images and size). */
export async function measureMemTotalMib(images: GuestImages, memoryMib: number, from: StartFrom = {}): Promise<number> {
  const cached = memTotalCache.get(images)?.get(memoryMib);
  if (cached !== undefined) return cached;
  const mib = await probeMemTotalMib(images, memoryMib, from);
  const sizes = memTotalCache.get(images) ?? new Map<number, number>();
  sizes.set(memoryMib, mib);
  memTotalCache.set(images, sizes);
  return mib;
}

async function probeMemTotalMib(images: GuestImages, memoryMib: number, from: StartFrom): Promise<number> {
  const probe = await startGuest({ images, name: "probe", memoryMib, balloon: false, ...startOptions(from) });
  try {
    return await guestMemTotalMib(probe.guest);
  } finally {
    await probe.dispose();
  }
}

export async function runGuests(opts: RunOptions): Promise<RunSummary> {
  const t0 = Date.now();
  const log = opts.log ?? (() => undefined);
  if (!opts.workload && opts.cmd === undefined) throw new TmemuError("USAGE", "give --workload NAME or --cmd \"...\"", "for example --workload refault");
  const budgetMib = opts.budgetMib ?? Math.round(opts.guests * opts.memoryMib * 1.5);
  const policy = createMemoryPolicy(opts.policy);
  const guestConfigs = Array.from({ length: opts.guests }, (_, i) => ({ name: `g${i}`, ramMib: opts.memoryMib }));
  const storeFrames = policy.maxStoreBudgetFrames(budgetMib, guestConfigs);
  let images = opts.images;
  let imagesKey = opts.imagesKey;
  if (!images) {
    const set = await ensureImages({ progress: new StderrProgress() });
    images = loadGuestImages(set);
    imagesKey = imagesKeyOf(set);
  }
  const from: StartFrom = { ...(imagesKey !== undefined ? { imagesKey } : {}), ...(opts.coldBoot ? { coldBoot: true } : {}) };

  let plan: WorkloadPlan | undefined;
  let dataDisk: Uint8Array | undefined;
  let setup: RunSetup | null = null;
  const uuid = randomUUID();
  let tmpDir: string | undefined;
  if (opts.workload) {
    let ramMib = opts.guestRamMib ?? memTotalCache.get(images)?.get(opts.memoryMib);
    if (ramMib === undefined) {
      const w0 = Date.now();
      const cpu0 = process.cpuUsage();
      ramMib = await measureMemTotalMib(images, opts.memoryMib, from);
      const cpu = process.cpuUsage(cpu0);
      setup = { what: "MemTotal probe: one guest booted to read MemTotal (sizes the workload)", seconds: (Date.now() - w0) / 1000, hostCpuSeconds: (cpu.user + cpu.system) / 1e6 };
    }
    plan = planWorkload(opts.workload, { guestRamMib: ramMib, seed: opts.seed, guests: opts.guests, ...(opts.phaseS !== undefined ? { phaseS: opts.phaseS } : {}) });
    if (plan.fileSetMib > 0) {
      tmpDir = mkdtempSync(join(tmpdir(), "tmemu-run-"));
      log(`[tmemu] writing a ${plan.fileSetMib} MiB file set (seed ${opts.seed}) for workload ${plan.name}`);
      writeFileSet(tmpDir, "set", plan.fileSetMib, plan.fileMib, opts.seed);
      dataDisk = makeDataDisk({ fromDir: tmpDir, uuid, label: "tmemu-set" });
      rmSync(tmpDir, { recursive: true, force: true });
    }
  } else if (opts.files) {
    dataDisk = makeDataDisk({ fromDir: opts.files, uuid });
  }
  const swapMib = plan?.swapMib ?? opts.memoryMib * 2;

  const store = new TmemStore({
    budgetFrames: storeFrames,
    ...(opts.store?.compression !== undefined ? { compression: opts.store.compression } : {}),
    ...(opts.store?.dedup !== undefined ? { dedup: opts.store.dedup } : {}),
  });
  // The shared pool of the data image holds only what the image holds (tmem_abi.h: verified shared pools).
  if (dataDisk) store.verifySharedPuts(uuid, new Ext4PageVerifier(dataDisk));
  const density = new StoreDensityTracker();
  const host = new MemoryHost(budgetMib, policy, store);
  const tmem = opts.tmem ?? true;
  log(`[tmemu] booting ${opts.guests} guests of ${opts.memoryMib} MiB, budget ${budgetMib} MiB, policy ${policy.name}`);
  const booted: StartedGuest<GuestApi>[] = [];
  try {
    const results = await Promise.allSettled(
      guestConfigs.map((g) =>
        startGuestOn({
          threads: opts.threads ?? false,
          ...startOptions(from),
          images,
          name: g.name,
          memoryMib: g.ramMib,
          ...(tmem ? { store } : {}),
          ...(dataDisk ? { dataDisk } : {}),
          swapDisk: makeSwapImage(swapMib),
          kernelArgs: [...(dataDisk ? ["tmemu.data=ro"] : []), ...(opts.kernelArgs ?? [])],
          bootTimeoutMs: 300_000,
          onDevice: (device) => store.authorizeShared(device.clientId, uuid),
          ...(opts.onConsole ? { onConsole: (text: string) => opts.onConsole?.(g.name, text) } : {}),
        }),
      ),
    );
    for (const r of results) if (r.status === "fulfilled") booted.push(r.value);
    const failed = results.find((r) => r.status === "rejected");
    if (failed && failed.status === "rejected") throw failed.reason;
    for (const tg of booted) host.addGuest(hostedGuest(tg.guest), tg.device ? { clientId: tg.device.clientId } : {});

    // The window opens here: every counter below is read now and again at the end.
    const before = await Promise.all(booted.map(async (tg) => ({ vm: await guestVmstat(tg.guest), gs: await guestTmemStats(tg.guest), oom: await oomKills(tg.guest) })));
    const atStart = booted.map((tg) => windowCounters(tg, store));
    const consoleAtStart = booted.map((tg) => tg.guest.consoleOffset);
    const recorder = new TimelineRecorder(
      booted.map((tg) => ({ name: tg.guest.name, disks: tg.guest.disks, clientId: tg.device?.clientId })),
      host,
      store,
    );
    opts.onGuests?.(booted.map((tg) => ({ name: tg.guest.name, sendInput: (text: string) => tg.guest.sendInput(text) })));
    const started = Date.now();
    const balloonMax = new Map<string, number>();
    const timeoutS = (opts.durationS ?? 3600) + 600;
    let stopKind: "duration" | "interrupted" | undefined;
    type Outcome = { end: WorkloadEnd; output: string; exitCode: number | null; seconds: number | null; error?: string };
    const outcomes: (Outcome | undefined)[] = booted.map(() => undefined);
    const commandStarted: boolean[] = booted.map(() => false);
    const done: Promise<void>[] = [];
    booted.forEach((tg, i) => {
      const command = plan ? plan.command(i) : (opts.cmd as string);
      const delayMs = (plan?.startDelayS?.(i) ?? 0) * 1000;
      // Chained phases: guest i starts when guest i-1 has finished its burst.
      const previous = done[i - 1];
      const gate = plan?.chained && previous ? previous : sleep(delayMs);
      done.push(
        gate.then(async () => {
          if (stopKind) return; // the stop came before this guest's turn
          commandStarted[i] = true;
          const t = Date.now();
          try {
            const r = await tg.guest.run(command, { timeoutMs: timeoutS * 1000 });
            outcomes[i] ??= { end: "finished", output: r.output, exitCode: r.exitCode, seconds: (Date.now() - t) / 1000 };
          } catch (err) {
            const timedOut = err instanceof TmemuError && err.code === "TIMEOUT";
            const message = err instanceof Error ? err.message : String(err);
            outcomes[i] ??= { end: timedOut ? "timed-out" : "died", output: message, exitCode: null, seconds: null, error: message };
          }
        }),
      );
    });
    let finished = false;
    let completionS: number | null = null;
    const all = Promise.all(done).then(() => {
      finished = true;
      completionS = (Date.now() - started) / 1000;
    });
    const stop = new Promise<void>((resolve) => {
      if (opts.durationS !== undefined) {
        setTimeout(() => {
          stopKind ??= "duration";
          resolve();
        }, opts.durationS * 1000).unref();
      }
      const abort = () => {
        stopKind ??= "interrupted";
        resolve();
      };
      if (opts.signal?.aborted) abort();
      else opts.signal?.addEventListener("abort", abort);
    });
    let lastTable = 0;
    while (!finished && !stopKind) {
      const tick = Date.now();
      const decision = await host.tick((tick - started) / 1000);
      const events = recorder.decided((tick - started) / 1000, decision);
      const sample = recorder.sample((Date.now() - started) / 1000);
      opts.onSample?.(sample, events);
      for (const s of host.snapshot()) balloonMax.set(s.name, Math.max(balloonMax.get(s.name) ?? 0, s.balloonPages));
      density.observe(store.metrics());
      if (opts.onTable && tick - lastTable >= 2000) {
        lastTable = tick;
        opts.onTable(liveTable(host, store, booted, (tick - started) / 1000));
      }
      await Promise.race([all, stop, sleep(1000)]);
    }
    // The window closes here (the stop, or the last workload's end).
    const ended = Date.now();
    const stopped: RunStop = finished ? "finished" : (stopKind ?? "interrupted");
    const atEnd = booted.map((tg) => windowCounters(tg, store));
    // How each command stood at the close (one may still end while the summary is read: it stays unfinished).
    const atClose = outcomes.slice();
    const lastSample = recorder.sample((ended - started) / 1000);
    opts.onSample?.(lastSample, []);

    const guests: GuestSummary[] = [];
    for (let i = 0; i < booted.length; i++) {
      const tg = booted[i]!;
      const o: Outcome = atClose[i] ?? { end: stopped === "duration" ? "unfinished" : "interrupted", output: "", exitCode: null, seconds: null };
      // A guest whose command returned can answer more commands; one still busy (a stop) or gone cannot.
      const canAsk = o.end === "finished" && tg.guest.isAlive;
      let vm: VmStats | null = null;
      let gsAfter: TmemGuestStats | undefined;
      let ooms: number | null;
      if (canAsk) {
        try {
          vm = delta(await guestVmstat(tg.guest), before[i]!.vm);
          gsAfter = await guestTmemStats(tg.guest);
        } catch {
          vm = null;
        }
        ooms = await oomKills(tg.guest).then(
          (n) => n - before[i]!.oom,
          () => null,
        );
      } else {
        // The kernel prints each OOM kill on the console (pr_err, loglevel=4 lets it through).
        ooms = countOomKills(tg.guest.textSince(consoleAtStart[i]!));
      }
      const gsBefore = before[i]!.gs;
      const verdict = judgeWorkload(
        { end: o.end, exitCode: o.exitCode, output: o.output, oomKills: ooms, started: commandStarted[i]!, timeoutS, ...(o.error ? { error: o.error } : {}) },
        plan?.requires,
      );
      const parsed = verdict.parsed;
      const c0 = atStart[i]!;
      const c1 = atEnd[i]!;
      guests.push({
        name: tg.guest.name,
        ramMib: tg.guest.memoryMib,
        start: tg.start,
        exitCode: o.exitCode,
        seconds: o.seconds,
        status: o.end,
        valid: verdict.valid,
        reasons: verdict.reasons,
        mismatches: parsed.mismatches,
        memtouchRuns: parsed.memtouchRuns,
        filesOk: parsed.filesOk ?? null,
        oomKills: ooms ?? 0,
        dataSectorsRead: c1.data.sectorsRead - c0.data.sectorsRead,
        dataReadRequests: c1.data.readRequests - c0.data.readRequests,
        swapSectorsRead: c1.swap.sectorsRead - c0.swap.sectorsRead,
        swapSectorsWritten: c1.swap.sectorsWritten - c0.swap.sectorsWritten,
        swapRequests: c1.swap.readRequests + c1.swap.writeRequests - (c0.swap.readRequests + c0.swap.writeRequests),
        balloonPagesEnd: host.ledger(tg.guest.name)?.pages ?? 0,
        balloonPagesMax: balloonMax.get(tg.guest.name) ?? 0,
        tmem:
          c1.tmem && c0.tmem
            ? {
                puts: c1.tmem.puts - c0.tmem.puts,
                gets: c1.tmem.gets - c0.tmem.gets,
                getHits: c1.tmem.getHits - c0.tmem.getHits,
                putsRefused: c1.tmem.putsRefused - c0.tmem.putsRefused,
                evictions: c1.tmem.evictions - c0.tmem.evictions,
                pagesEphemeral: c1.tmem.pagesEphemeral,
                pagesPersistent: c1.tmem.pagesPersistent,
              }
            : null,
        guestTmem: gsAfter && gsBefore ? delta(gsAfter, gsBefore) : null,
        vmstat: vm,
        hypercallWait: trapWaitBetween(c0.traps, c1.traps) ?? null,
        output: o.output.length > 4000 ? `...${o.output.slice(-4000)}` : o.output,
      });
    }
    const sum = (f: (g: GuestSummary) => number) => guests.reduce((n, g) => n + f(g), 0);
    const secs = guests.map((g) => g.seconds).filter((s): s is number => s !== null);
    return {
      policy: policy.name,
      workload: plan?.name ?? "cmd",
      seed: opts.seed,
      guests,
      store: store.metrics(),
      threads: opts.threads ?? false,
      storeDensity: density.toJson(),
      budgetMib,
      memoryMib: opts.memoryMib,
      seconds: (Date.now() - t0) / 1000,
      interrupted: stopped === "interrupted",
      stopped,
      valid: guests.length > 0 && guests.every((g) => g.valid),
      reasons: guests.flatMap((g) => g.reasons.map((r) => `${g.name}: ${r}`)),
      window: { from: "workload start", to: finished ? "all workloads finished" : "stop", seconds: (ended - started) / 1000, counters: WINDOW_COUNTERS, levels: WINDOW_LEVELS },
      setup,
      timeline: recorder.toJson(),
      totals: {
        dataSectorsRead: sum((g) => g.dataSectorsRead),
        swapSectorsRead: sum((g) => g.swapSectorsRead),
        swapSectorsWritten: sum((g) => g.swapSectorsWritten),
        diskSectors: sum((g) => g.dataSectorsRead + g.swapSectorsRead + g.swapSectorsWritten),
        mismatches: sum((g) => g.mismatches ?? 0),
        oomKills: sum((g) => g.oomKills),
        slowestGuestS: secs.length === guests.length && secs.length ? Math.max(...secs) : null,
        completionS,
      },
    };
  } finally {
    await Promise.all(booted.map((tg) => tg.dispose()));
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** Counters that are read at the window's start and end (host side, no guest command needed). */
function windowCounters(tg: TmemGuest, store: TmemStore) {
  const d = tg.guest.disks;
  const m = tg.device ? store.clientMetrics(tg.device.clientId) : undefined;
  return {
    data: { ...d.data },
    swap: { ...d.swap },
    traps: tg.guest.trapWait(),
    tmem: m ? { puts: m.puts, gets: m.gets, getHits: m.getHits, putsRefused: m.putsRefused, evictions: m.evictions, pagesEphemeral: m.pagesEphemeral, pagesPersistent: m.pagesPersistent } : null,
  };
}

/** OOM kills in console text (the kernel's "Out of memory: Killed process" lines). */
export function countOomKills(consoleText: string): number {
  return consoleText.match(/Out of memory: Killed process/g)?.length ?? 0;
}

const STOP_REASONS: ReadonlySet<string> = new Set([REASON_UNFINISHED, REASON_INTERRUPTED, REASON_NOT_STARTED]);

/**
 * Guests whose workload went wrong: invalid for a reason other than the stop itself (a guest merely
 * unfinished at --duration-s, or interrupted by Ctrl-C, is not failed; one OOM-killed before the stop is).
 */
export function failedGuests(s: RunSummary): GuestSummary[] {
  return s.guests.filter((g) => !g.valid && g.reasons.some((r) => !STOP_REASONS.has(r)));
}

/** `tmemu run`'s exit code: 1 when a guest's workload went wrong, else 130 for Ctrl-C, else 0 (a --duration-s stop included). */
export function runExitCode(s: RunSummary): number {
  if (failedGuests(s).length > 0) return 1;
  return s.stopped === "interrupted" ? 130 : 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function pad(cells: (string | number)[], widths: number[]): string {
  return cells.map((c, i) => String(c).padStart(widths[i] ?? 8)).join(" ");
}

const WIDTHS = [6, 8, 8, 9, 9, 9, 10, 9, 9, 8];

function liveTable(host: MemoryHost, store: TmemStore, guests: TmemGuest[], elapsedS: number): string {
  const m = store.metrics();
  const lines = [
    `tmemu run  ${elapsedS.toFixed(0)} s  store ${m.framesUsed}/${m.budgetFrames} frames (${(m.framesUsed / PAGES_PER_MIB).toFixed(0)}/${(m.budgetFrames / PAGES_PER_MIB).toFixed(0)} MiB), evictions ${m.evictions}`,
    `store data: ${storeDataLine(m)}`,
    pad(["guest", "RAM MiB", "balloon", "tmem eph", "tmem pers", "hits", "data rd", "swap in", "swap out", "avail"], WIDTHS),
  ];
  const snaps = host.snapshot();
  for (const s of snaps) {
    const g = guests.find((t) => t.guest.name === s.name)?.guest;
    lines.push(
      pad(
        [
          s.name,
          (s.ramMib - s.balloonPages / PAGES_PER_MIB).toFixed(0),
          (s.balloonPages / PAGES_PER_MIB).toFixed(0),
          s.tmemPagesEphemeral,
          s.tmemPagesPersistent,
          s.tmemGetHits,
          g?.disks.data.sectorsRead ?? 0,
          g?.disks.swap.sectorsRead ?? 0,
          g?.disks.swap.sectorsWritten ?? 0,
          s.memAvailableMib ?? "-",
        ],
        WIDTHS,
      ),
    );
  }
  return lines.join("\n");
}

/** "lz4, 1.85 pages/frame, 12.3 MiB compressed, dedup (client) 120 hits, 3 frames fragmented". */
export function storeDataLine(m: StoreMetricsJson): string {
  const ppf = m.pagesPerFrame === null || m.pagesPerFrame === undefined ? "-" : m.pagesPerFrame.toFixed(2);
  return (
    `${m.compressor ?? "no compression"}, ${ppf} pages/frame, ${((m.compressedBytes ?? 0) / 1048576).toFixed(1)} MiB stored in ${m.objects ?? 0} objects, ` +
    `dedup (${m.dedup ?? "-"}) ${m.dedupHits ?? 0} hits, ${m.fragmentationFrames ?? 0} frames fragmented, ${m.compactions ?? 0} compactions`
  );
}

const STOPPED_TEXT: Record<RunStop, string> = { finished: "", duration: " (STOPPED at --duration-s)", interrupted: " (INTERRUPTED)" };

const START_TEXT: Record<GuestStart, string> = { cold: "cold boot", snapshot: "from the boot snapshot", made: "cold boot that made the boot snapshot, then from it", restored: "restored" };

export function formatSummary(s: RunSummary): string {
  const widths = [6, 5, 8, 9, 4, 10, 9, 9, 9, 8];
  const lines = [
    `tmemu run: ${s.guests.length} guests x ${s.memoryMib} MiB, budget ${s.budgetMib} MiB, policy ${s.policy}, workload ${s.workload}, seed ${s.seed}${STOPPED_TEXT[s.stopped]}`,
    `${pad(["guest", "exit", "time s", "mismatch", "OOM", "data rd", "swap rd", "swap wr", "tmem hit", "balloon"], widths)}  valid`,
  ];
  for (const g of s.guests) {
    lines.push(
      `${pad(
        [g.name, g.exitCode ?? "-", g.seconds?.toFixed(1) ?? "-", g.mismatches ?? "-", g.oomKills, g.dataSectorsRead, g.swapSectorsRead, g.swapSectorsWritten, g.tmem?.getHits ?? "-", `${(g.balloonPagesMax / PAGES_PER_MIB).toFixed(0)}M`],
        widths,
      )}  ${g.valid ? "yes" : `NO: ${g.reasons.join("; ")}`}`,
    );
  }
  const t = s.totals;
  const waits = s.guests.filter((g) => g.hypercallWait);
  if (waits.length > 0) {
    const us = (v: number) => (v < 10 ? v.toFixed(1) : v.toFixed(0));
    lines.push(
      `hypercall wait as each vCPU saw it (1 trap in ${SAMPLE_EVERY} timed${s.threads ? ", the crossing between threads included" : ""}): ${waits
        .map((g) => {
          const w = g.hypercallWait!;
          return `${g.name} median <=${us(w.p50Us)} µs, p99 <=${us(w.p99Us)} µs, mean ${us(w.meanUs)} µs (${w.timed} timed)`;
        })
        .join("; ")}`,
    );
  }
  if (s.guests.some((g) => g.start)) lines.push(`guests started: ${s.guests.map((g) => `${g.name} ${START_TEXT[g.start ?? "cold"]}`).join(", ")}`);
  lines.push(
    `counters: ${s.window.from} to ${s.window.to} (${s.window.seconds.toFixed(1)} s)${s.setup ? `; setup apart: ${s.setup.what}, ${s.setup.seconds.toFixed(1)} s, host CPU ${s.setup.hostCpuSeconds.toFixed(1)} s` : ""}`,
    `total: disk sectors ${t.diskSectors} (data read ${t.dataSectorsRead}, swap read ${t.swapSectorsRead}, swap written ${t.swapSectorsWritten}), mismatches ${t.mismatches}, OOM kills ${t.oomKills}, slowest guest ${t.slowestGuestS?.toFixed(1) ?? "-"} s, all done after ${t.completionS?.toFixed(1) ?? "-"} s`,
    `store (levels at the end): ${s.store.framesUsed}/${s.store.budgetFrames} frames used, ${s.store.pagesEphemeral} ephemeral + ${s.store.pagesPersistent} persistent pages, ${s.store.evictions} evictions since boot; wall time ${s.seconds.toFixed(0)} s`,
    `store data (end): ${storeDataLine(s.store)}`,
    ...(s.storeDensity && s.storeDensity.peakFramesUsed > 0
      ? [
          `store at its peak: ${s.storeDensity.peakFramesUsed} frames held ${s.storeDensity.dataPagesAtPeak} pages with data, ${s.storeDensity.pagesPerFrameAtPeak?.toFixed(2) ?? "-"} pages per frame; fragmentation at most ${s.storeDensity.maxFragmentationFrames} frames (${(100 * s.storeDensity.maxFragmentationFraction).toFixed(1)}% of those used)`,
        ]
      : []),
    `valid: ${s.valid ? "yes" : `NO (${s.reasons.join("; ")})`}`,
  );
  return `${lines.join("\n")}\n`;
}

export function writeSummaryJson(file: string, s: RunSummary): void {
  writeFileSync(file, `${JSON.stringify(s, null, 2)}\n`);
}

