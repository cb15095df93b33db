/**
 * `tmemu run`: several guests, one tmem store, one memory budget, a memory policy and a workload;
 * a live table while it runs, a summary at the end (also as JSON with --json). Ctrl-C stops the
 * guests and still prints the summary.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { GuestImages } from "../emulator/guest.ts";
import { makeDataDisk, makeSwapImage } from "../guest-images/disks.ts";
import { ensureImages, loadGuestImages } from "../guest-images/index.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { delta, type TmemGuestStats, type VmStats } from "../hypervisor/guest/stats.ts";
import { MemoryHost } from "../hypervisor/host.ts";
import { createMemoryPolicy } from "../hypervisor/scheduler/policy.ts";
import type { StoreMetricsJson } from "../hypervisor/tmem/metrics.ts";
import { TmemStore } from "../hypervisor/tmem/store.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { md5sumListing, writeFileSet } from "../workloads/files.ts";
import { parseWorkloadOutput, planWorkload, type WorkloadPlan } from "../workloads/builtin.ts";
import { bootTmemGuest, guestMemTotalMib, guestTmemStats, guestVmstat, hostedGuest, oomKills, type TmemGuest } from "./tmem-guest.ts";

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
  live?: boolean;
  log?: (line: string) => void;
  /** Called with a redrawn table now and then (live view). */
  onTable?: (table: string) => void;
  signal?: AbortSignal;
  /** Boot these images instead of resolving them (bench: every run on the same images). */
  images?: GuestImages;
}

export interface GuestSummary {
  name: string;
  ramMib: number;
  exitCode: number | null;
  seconds: number | null;
  mismatches: number;
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
  tmem: { puts: number; gets: number; getHits: number; putsRefused: number; evictions: number; pagesEphemeral: number; pagesPersistent: number } | null;
  guestTmem: TmemGuestStats | null;
  vmstat: VmStats | null;
  output: string;
}

export interface RunSummary {
  policy: string;
  workload: string;
  seed: number;
  guests: GuestSummary[];
  store: StoreMetricsJson;
  budgetMib: number;
  memoryMib: number;
  seconds: number;
  interrupted: boolean;
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

const memTotalCache = new WeakMap<GuestImages, Map<number, number>>();

/** Guest RAM as Linux reports it for a given --memory-mib: boots one guest and asks (once per images and size). */
async function measureMemTotalMib(images: GuestImages, memoryMib: number): Promise<number> {
  const cached = memTotalCache.get(images)?.get(memoryMib);
  if (cached !== undefined) return cached;
  const mib = await probeMemTotalMib(images, memoryMib);
  const sizes = memTotalCache.get(images) ?? new Map<number, number>();
  sizes.set(memoryMib, mib);
  memTotalCache.set(images, sizes);
  return mib;
}

async function probeMemTotalMib(images: GuestImages, memoryMib: number): Promise<number> {
  const probe = await bootTmemGuest({ images, name: "probe", memoryMib, balloon: false });
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
  const images = opts.images ?? loadGuestImages(await ensureImages({ progress: new StderrProgress() }));

  let plan: WorkloadPlan | undefined;
  let dataDisk: Uint8Array | undefined;
  let listingMd5 = "";
  const uuid = randomUUID();
  let tmpDir: string | undefined;
  if (opts.workload) {
    const ramMib = await measureMemTotalMib(images, opts.memoryMib);
    plan = planWorkload(opts.workload, { guestRamMib: ramMib, seed: opts.seed, guests: opts.guests, ...(opts.phaseS !== undefined ? { phaseS: opts.phaseS } : {}) });
    if (plan.fileSetMib > 0) {
      tmpDir = mkdtempSync(join(tmpdir(), "tmemu-run-"));
      log(`[tmemu] writing a ${plan.fileSetMib} MiB file set (seed ${opts.seed}) for workload ${plan.name}`);
      const set = writeFileSet(tmpDir, "set", plan.fileSetMib, plan.fileMib, opts.seed);
      listingMd5 = createHash("md5").update(md5sumListing(set)).digest("hex");
      dataDisk = makeDataDisk({ fromDir: tmpDir, uuid, label: "tmemu-set" });
      rmSync(tmpDir, { recursive: true, force: true });
    }
  } else if (opts.files) {
    dataDisk = makeDataDisk({ fromDir: opts.files, uuid });
  }
  const swapMib = plan?.swapMib ?? opts.memoryMib * 2;

  const store = new TmemStore({ budgetFrames: storeFrames });
  const host = new MemoryHost(budgetMib, policy, store);
  const tmem = opts.tmem ?? true;
  log(`[tmemu] booting ${opts.guests} guests of ${opts.memoryMib} MiB, budget ${budgetMib} MiB, policy ${policy.name}`);
  const booted: TmemGuest[] = [];
  try {
    const results = await Promise.allSettled(
      guestConfigs.map((g) =>
        bootTmemGuest({
          images,
          name: g.name,
          memoryMib: g.ramMib,
          ...(tmem ? { store } : {}),
          ...(dataDisk ? { dataDisk } : {}),
          swapDisk: makeSwapImage(swapMib),
          kernelArgs: [...(dataDisk ? ["tmemu.data=ro"] : []), ...(opts.kernelArgs ?? [])],
          bootTimeoutMs: 300_000,
          onDevice: (device) => store.authorizeShared(device.clientId, uuid),
        }),
      ),
    );
    for (const r of results) if (r.status === "fulfilled") booted.push(r.value);
    const failed = results.find((r) => r.status === "rejected");
    if (failed && failed.status === "rejected") throw failed.reason;
    for (const tg of booted) host.addGuest(hostedGuest(tg.guest), tg.device ? { clientId: tg.device.clientId } : {});

    const before = await Promise.all(booted.map(async (tg) => ({ vm: await guestVmstat(tg.guest), gs: await guestTmemStats(tg.guest) })));
    const started = Date.now();
    const balloonMax = new Map<string, number>();
    type Outcome = { output: string; exitCode: number | null; seconds: number | null };
    const done: Promise<Outcome>[] = [];
    booted.forEach((tg, i) => {
      const command = plan ? plan.command(i, listingMd5) : (opts.cmd as string);
      const delayMs = (plan?.startDelayS?.(i) ?? 0) * 1000;
      // Chained phases: guest i starts when guest i-1 has finished its burst.
      const previous = done[i - 1];
      const gate = plan?.chained && previous ? previous.then(() => undefined) : sleep(delayMs);
      let t = Date.now();
      done.push(gate
        .then(() => {
          t = Date.now();
          return tg.guest.run(command, { timeoutMs: (opts.durationS ?? 3600) * 1000 + 600_000 });
        })
        .then(
          (r): Outcome => ({ ...r, seconds: (Date.now() - t) / 1000 }),
          (err: unknown): Outcome => ({ output: err instanceof Error ? err.message : String(err), exitCode: null, seconds: null }),
        ));
    });
    let finished = false;
    let completionS: number | null = null;
    const all = Promise.all(done).then((r) => {
      finished = true;
      completionS = (Date.now() - started) / 1000;
      return r;
    });
    let interrupted = false;
    const stop = new Promise<void>((resolve) => {
      if (opts.durationS !== undefined) setTimeout(resolve, opts.durationS * 1000).unref();
      opts.signal?.addEventListener("abort", () => {
        interrupted = true;
        resolve();
      });
    });
    let lastTable = 0;
    while (!finished && !interrupted) {
      const tick = Date.now();
      await host.tick((tick - started) / 1000);
      for (const s of host.snapshot()) balloonMax.set(s.name, Math.max(balloonMax.get(s.name) ?? 0, s.balloonPages));
      if (opts.onTable && tick - lastTable >= 2000) {
        lastTable = tick;
        opts.onTable(liveTable(host, store, booted, (tick - started) / 1000));
      }
      const waited = await Promise.race([all.then(() => "done"), stop.then(() => "stop"), sleep(1000).then(() => "tick")]);
      if (waited === "stop") interrupted = true;
    }
    const outcomes = finished ? await all : done.map(() => ({ output: "", exitCode: null, seconds: null }));
    if (!finished) interrupted = true;

    const guests: GuestSummary[] = [];
    for (let i = 0; i < booted.length; i++) {
      const tg = booted[i]!;
      const o = outcomes[i]!;
      const alive = tg.guest.isAlive && finished;
      const vm = alive ? delta(await guestVmstat(tg.guest), before[i]!.vm) : null;
      const gsAfter = alive ? await guestTmemStats(tg.guest) : undefined;
      const gsBefore = before[i]!.gs;
      const parsed = parseWorkloadOutput(o.output);
      const m = tg.device ? store.clientMetrics(tg.device.clientId) : undefined;
      const d = tg.guest.disks;
      guests.push({
        name: tg.guest.name,
        ramMib: tg.guest.memoryMib,
        exitCode: o.exitCode,
        seconds: o.seconds,
        mismatches: parsed.mismatches,
        memtouchRuns: parsed.memtouchRuns,
        filesOk: parsed.filesOk ?? null,
        oomKills: alive ? await oomKills(tg.guest) : 0,
        dataSectorsRead: d.data.sectorsRead,
        dataReadRequests: d.data.readRequests,
        swapSectorsRead: d.swap.sectorsRead,
        swapSectorsWritten: d.swap.sectorsWritten,
        swapRequests: d.swap.readRequests + d.swap.writeRequests,
        balloonPagesEnd: host.ledger(tg.guest.name)?.pages ?? 0,
        balloonPagesMax: balloonMax.get(tg.guest.name) ?? 0,
        tmem: m ? { puts: m.puts, gets: m.gets, getHits: m.getHits, putsRefused: m.putsRefused, evictions: m.evictions, pagesEphemeral: m.pagesEphemeral, pagesPersistent: m.pagesPersistent } : null,
        guestTmem: gsAfter && gsBefore ? delta(gsAfter, gsBefore) : (gsAfter ?? null),
        vmstat: vm,
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
      budgetMib,
      memoryMib: opts.memoryMib,
      seconds: (Date.now() - t0) / 1000,
      interrupted,
      totals: {
        dataSectorsRead: sum((g) => g.dataSectorsRead),
        swapSectorsRead: sum((g) => g.swapSectorsRead),
        swapSectorsWritten: sum((g) => g.swapSectorsWritten),
        diskSectors: sum((g) => g.dataSectorsRead + g.swapSectorsRead + g.swapSectorsWritten),
        mismatches: sum((g) => g.mismatches),
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

export function formatSummary(s: RunSummary): string {
  const lines = [
    `tmemu run: ${s.guests.length} guests x ${s.memoryMib} MiB, budget ${s.budgetMib} MiB, policy ${s.policy}, workload ${s.workload}, seed ${s.seed}${s.interrupted ? " (INTERRUPTED)" : ""}`,
    pad(["guest", "exit", "time s", "mismatch", "OOM", "data rd", "swap rd", "swap wr", "tmem hit", "balloon"], [6, 5, 8, 9, 4, 10, 9, 9, 9, 8]),
  ];
  for (const g of s.guests) {
    lines.push(
      pad(
        [g.name, g.exitCode ?? "-", g.seconds?.toFixed(1) ?? "-", g.mismatches, g.oomKills, g.dataSectorsRead, g.swapSectorsRead, g.swapSectorsWritten, g.tmem?.getHits ?? "-", `${(g.balloonPagesMax / PAGES_PER_MIB).toFixed(0)}M`],
        [6, 5, 8, 9, 4, 10, 9, 9, 9, 8],
      ),
    );
  }
  const t = s.totals;
  lines.push(
    `total: disk sectors ${t.diskSectors} (data read ${t.dataSectorsRead}, swap read ${t.swapSectorsRead}, swap written ${t.swapSectorsWritten}), mismatches ${t.mismatches}, OOM kills ${t.oomKills}, slowest guest ${t.slowestGuestS?.toFixed(1) ?? "-"} s, all done after ${t.completionS?.toFixed(1) ?? "-"} s`,
    `store: ${s.store.framesUsed}/${s.store.budgetFrames} frames used, ${s.store.pagesEphemeral} ephemeral + ${s.store.pagesPersistent} persistent pages, ${s.store.evictions} evictions; wall time ${s.seconds.toFixed(0)} s`,
  );
  return `${lines.join("\n")}\n`;
}

export function writeSummaryJson(file: string, s: RunSummary): void {
  writeFileSync(file, `${JSON.stringify(s, null, 2)}\n`);
}

