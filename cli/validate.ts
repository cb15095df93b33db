/**
 * `tmemu validate [--patches DIR]`: kernel-patch validation. Builds the guest kernel with the
 * series (ours by default), boots real guests and runs the end-to-end checks below, then prints a
 * pass/fail report per check with its numbers. Exit code 0 only when every check passes.
 *
 *  swap integrity       memtouch over twice the guest's RAM: 0 mismatches; frontswap stores and
 *                       loads > 0 on both sides; host and guest counters agree exactly
 *  swap, store full     the same with a store budget so small that most stores are refused: the
 *                       swap disk takes them, still 0 mismatches
 *  cleancache           a file set about twice the page cache, read twice: hits > 0, and far fewer
 *                       data-disk sectors on the second pass than a guest with tmem.cleancache=0;
 *                       every checksum unchanged
 *  cleancache coherence files whose pages are in tmem and not in the page cache, changed by each
 *                       path that does not re-put the new page (truncate and extend over a hole,
 *                       punch hole, collapse range, O_DIRECT write; and a buffered overwrite), read
 *                       back with their new content; each read-back asked cleancache, and an
 *                       unchanged file came back from it
 *  inert                no tmem device: the same kernel boots, says so once, and the workloads pass;
 *                       and with no device but something listening on the hypercall port, the
 *                       kernel never writes to it (it looks for the PCI function first)
 *  hostile-shared, reprobe, refused-put, lost-persistent, fuzz: the host contract, see
 *                       validate-contract.ts
 *
 * Every check with a tmem device also fails on any host internal error (a bug in the host), any
 * host error result other than the refusals the ABI allows (TMEM_ENOSPC, TMEM_EBUSY on a put) and
 * any guest hypercall_errors; host and guest counters, refusals and errors included, must agree.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Guest, GuestImages } from "../emulator/guest.ts";
import { makeDataDisk, makeSwapImage } from "../guest-images/disks.ts";
import { ensureImages, loadGuestImages, type VersionChoice } from "../guest-images/index.ts";
import { imagesKeyOf } from "../guest-images/snapshots.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { delta, type TmemGuestStats } from "../hypervisor/guest/stats.ts";
import type { TmemErrorName } from "../hypervisor/tmem/abi.ts";
import type { ClientMetricsJson } from "../hypervisor/tmem/metrics.ts";
import { TmemStore } from "../hypervisor/tmem/store.ts";
import { md5sumListing, seededBytes, writeFileSet } from "../workloads/files.ts";
import { bootTmemGuest, guestMemTotalMib, guestTmemStats, guestVmstat, type TmemGuest } from "./tmem-guest.ts";
import { qemuInertBoot } from "./qemu-inert.ts";
import { fuzzCheck, hostileSharedCheck, lostPersistentCheck, portWritesWithoutDevice, refusedPutCheck, reprobeCheck, startCheckGuest } from "./validate-contract.ts";

export interface CheckResult {
  name: string;
  pass: boolean;
  /** Why it failed, in one line; empty when it passed. */
  reason: string;
  numbers: Record<string, number | string>;
  seconds: number;
}

export interface ValidateOptions {
  /** Boot every check's guests cold (--cold-boot); by default all but inert's start from the boot snapshot. */
  coldBoot?: boolean;
  patchesDir?: string;
  /** --kernel-version / --versions: the package versions to build from. */
  versions?: VersionChoice;
  memoryMib: number;
  only?: string[];
  /** How long the fuzz check fires hypercalls (default DEFAULT_FUZZ_SECONDS). */
  fuzzSeconds?: number;
  log?: (line: string) => void;
}

export const DEFAULT_FUZZ_SECONDS = 180;

const MIB = 1024 * 1024;

export const CHECK_NAMES = ["swap", "swap-store-full", "cleancache", "coherence", "inert", "hostile-shared", "reprobe", "refused-put", "lost-persistent", "fuzz"] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

interface Ctx {
  images: GuestImages;
  memoryMib: number;
  /**
   * See ContractCtx.start. Cold whatever this says: inert (the boot path without a device) and the
   * checks whose host and guest tmem counters must agree over the guest's whole life (swap,
   * swap-store-full, cleancache, coherence): a guest from the boot snapshot has counters from the
   * snapshot's boot (another client) and one TMEM_E_RESET answer for its re-probe handshake.
   */
  start: { imagesKey: string; coldBoot: boolean };
  fuzzSeconds: number;
  log: (line: string) => void;
}

function parseMemtouch(output: string): number {
  const m = /mismatches=(\d+)/.exec(output);
  return m?.[1] !== undefined ? Number(m[1]) : Number.NaN;
}

/** The host's counters of one client against the guest's own, op by op; differences as text. */
export function counterDisagreements(host: ClientMetricsJson, g: TmemGuestStats): string[] {
  return counterPairs(host, g).filter(([, h, gs]) => h !== gs).map(([n, h, gs]) => `${n}: host ${h}, guest ${gs}`);
}

/**
 * Host and guest counters, compared when the guest is quiet. The guest's kernel can put pages at
 * any moment (reclaim runs in the background), so "the same moment" is found, not assumed: read the
 * guest's counters, the host's, the guest's again; equal guest reads mean no hypercall happened in
 * between, and then the host must agree exactly. A guest that stays busy for 5 tries must at least
 * have the host's counters between its two reads.
 */
async function agreeingCounters(guest: Guest, store: TmemStore, clientId: number): Promise<{ problems: string[]; host: ClientMetricsJson; guest: TmemGuestStats | undefined }> {
  let last: { problems: string[]; host: ClientMetricsJson; guest: TmemGuestStats | undefined } | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const before = await guestTmemStats(guest);
    const host = store.clientMetrics(clientId);
    const after = await guestTmemStats(guest);
    if (!before || !after) return { problems: ["the guest has no tmem frontend"], host, guest: after };
    const quiet = JSON.stringify(before) === JSON.stringify(after);
    if (quiet) return { problems: counterDisagreements(host, after), host, guest: after };
    last = { problems: [...counterLowerBound(host, before), ...counterUpperBound(host, after)], host, guest: after };
  }
  return last ?? { problems: ["no counters"], host: store.clientMetrics(clientId), guest: undefined };
}

function counterPairs(host: ClientMetricsJson, g: TmemGuestStats): [string, number, number][] {
  return [
    ["puts", host.puts, g.cleancache_puts + g.frontswap_stores],
    ["gets", host.gets, g.cleancache_gets + g.frontswap_loads],
    ["getHits", host.getHits, g.cleancache_hits + (g.frontswap_loads - g.frontswap_loads_failed)],
    ["flushPages", host.flushPages, g.cleancache_invalidates + g.frontswap_invalidates],
    ["flushObjects", host.flushObjects, g.cleancache_inode_invalidates + g.frontswap_area_invalidates],
    ["refusals", host.putsRefused, g.hypercall_refusals],
    ["errors", hostErrorTotal(host) - hostRefusals(host), g.hypercall_errors],
  ];
}

/** The negative results the ABI allows a host to give at any time: a put refused for room or a freeze. */
export const ALLOWED_REFUSALS: readonly TmemErrorName[] = ["ENOSPC", "EBUSY"];

function hostErrorTotal(host: ClientMetricsJson): number {
  return Object.values(host.errors).reduce((a, b) => a + b, 0);
}

function hostRefusals(host: ClientMetricsJson): number {
  return ALLOWED_REFUSALS.reduce((a, n) => a + host.errors[n], 0);
}

/** Host error results that are not allowed refusals nor internal errors, by name ("EFAULT 2"). */
function hostGuestErrors(host: ClientMetricsJson): string[] {
  const out: string[] = [];
  for (const [name, count] of Object.entries(host.errors) as [TmemErrorName, number][]) {
    // An internal error is answered TMEM_EINVAL and counted in errors.EINVAL too.
    const n = name === "EINVAL" ? count - host.internalErrors : count;
    if (n > 0 && !ALLOWED_REFUSALS.includes(name)) out.push(`${name} ${n}`);
  }
  return out;
}

/** The error counts of one tmem client, host and guest side, for a check's report. */
export function tmemErrorNumbers(host: ClientMetricsJson, g: TmemGuestStats | undefined): Record<string, number> {
  return {
    hostInternalErrors: host.internalErrors,
    hostErrors: hostErrorTotal(host) - hostRefusals(host),
    hostRefusals: hostRefusals(host),
    guestHypercallErrors: g?.hypercall_errors ?? -1,
    guestHypercallRefusals: g?.hypercall_refusals ?? -1,
  };
}

/**
 * Why one tmem client's run is not clean: any host internal error (with the last one's message),
 * any host error result other than an allowed refusal, any guest hypercall error. Refusals are
 * fine; they are what the ABI promises a guest may get. Empty when clean.
 */
export function tmemErrorProblems(host: ClientMetricsJson, g: TmemGuestStats | undefined, lastInternalError?: unknown): string[] {
  const problems: string[] = [];
  if (host.internalErrors > 0) {
    const why = lastInternalError instanceof Error ? lastInternalError.message : lastInternalError === undefined ? "" : String(lastInternalError);
    problems.push(`host internal errors: ${host.internalErrors}${why ? ` (last: ${why})` : ""}`);
  }
  const other = hostGuestErrors(host);
  if (other.length > 0) problems.push(`host error results other than refusals: ${other.join(", ")}`);
  if (g && g.hypercall_errors > 0) problems.push(`guest hypercall_errors: ${g.hypercall_errors}`);
  return problems;
}

/** tmemErrorProblems for a booted guest: its device's host counters and its own. */
function deviceErrorProblems(tg: TmemGuest, host: ClientMetricsJson, g: TmemGuestStats | undefined): string[] {
  return tmemErrorProblems(host, g, tg.device?.handler.lastInternalError);
}

function counterLowerBound(host: ClientMetricsJson, before: TmemGuestStats): string[] {
  return counterPairs(host, before).filter(([, h, gs]) => h < gs).map(([n, h, gs]) => `${n}: host ${h} below the guest's earlier ${gs}`);
}

function counterUpperBound(host: ClientMetricsJson, after: TmemGuestStats): string[] {
  return counterPairs(host, after).filter(([, h, gs]) => h > gs).map(([n, h, gs]) => `${n}: host ${h} above the guest's later ${gs}`);
}

async function swapCheck(ctx: Ctx, storeMib: number, expectRefusals: boolean): Promise<Omit<CheckResult, "name" | "seconds">> {
  const store = new TmemStore({ budgetMib: storeMib });
  const tg = await bootTmemGuest({ images: ctx.images, name: "swap", memoryMib: ctx.memoryMib, store, swapDisk: makeSwapImage(ctx.memoryMib * 3) });
  try {
    const ramMib = await guestMemTotalMib(tg.guest);
    const touchMib = 2 * ramMib;
    const vm0 = await guestVmstat(tg.guest);
    const out = await tg.guest.runChecked(`memtouch ${touchMib} 1234 2`, { timeoutMs: 1_800_000 });
    const vm = delta(await guestVmstat(tg.guest), vm0);
    const agree = await agreeingCounters(tg.guest, store, tg.device!.clientId);
    const { host, guest: gs } = agree;
    const mismatches = parseMemtouch(out);
    const numbers = {
      guestRamMib: ramMib,
      touchedMib: touchMib,
      storeBudgetMib: storeMib,
      mismatches,
      frontswapStores: gs?.frontswap_stores ?? -1,
      frontswapStoresFailed: gs?.frontswap_stores_failed ?? -1,
      frontswapLoads: gs?.frontswap_loads ?? -1,
      hostPuts: host.puts,
      hostPutsRefused: host.putsRefused,
      hostGetHits: host.getHits,
      swapSectorsWritten: tg.guest.disks.swap.sectorsWritten,
      swapSectorsRead: tg.guest.disks.swap.sectorsRead,
      pswpout: vm.pswpout,
      pswpin: vm.pswpin,
      ...tmemErrorNumbers(host, gs),
    };
    const problems: string[] = [];
    if (mismatches !== 0) problems.push(`memtouch mismatches=${mismatches}`);
    problems.push(...deviceErrorProblems(tg, host, gs));
    if (!gs) problems.push("the guest has no tmem frontend (no /sys/kernel/debug/tmem)");
    else {
      if (!(gs.frontswap_stores > 0 && gs.frontswap_loads > 0)) problems.push("guest frontswap stores or loads are 0");
      if (!(host.puts > 0 && host.getHits > 0)) problems.push("host puts or get hits are 0");
      problems.push(...agree.problems);
      if (expectRefusals) {
        if (!(gs.frontswap_stores_failed * 2 > gs.frontswap_stores)) problems.push("fewer than half the stores were refused");
        if (!(tg.guest.disks.swap.sectorsWritten > 0)) problems.push("nothing reached the swap disk");
      }
    }
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    await tg.dispose();
  }
}

async function cleancacheCheck(ctx: Ctx): Promise<Omit<CheckResult, "name" | "seconds">> {
  const probe = await startCheckGuest(ctx, { images: ctx.images, name: "probe", memoryMib: ctx.memoryMib });
  const ramMib = await guestMemTotalMib(probe.guest).finally(() => probe.dispose());
  const setMib = 2 * ramMib;
  const dir = mkdtempSync(join(tmpdir(), "tmemu-files-"));
  try {
    const set = writeFileSet(dir, "set", setMib, 4, 42);
    const image = makeDataDisk({ fromDir: dir });
    const read = "cat /data/set/* > /dev/null";
    const run = async (name: string, kernelArgs: string[]) => {
      const store = new TmemStore({ budgetMib: setMib * 2 });
      const tg = await bootTmemGuest({ images: ctx.images, name, memoryMib: ctx.memoryMib, store, kernelArgs, dataDisk: image.slice() });
      try {
        await tg.guest.runChecked(read, { timeoutMs: 1_800_000 });
        const pass1 = tg.guest.disks.data.sectorsRead;
        const g0 = await guestTmemStats(tg.guest);
        await tg.guest.runChecked(read, { timeoutMs: 1_800_000 });
        const pass2 = tg.guest.disks.data.sectorsRead - pass1;
        const g1 = await guestTmemStats(tg.guest);
        const sums = await tg.guest.runChecked("md5sum /data/set/*", { timeoutMs: 1_800_000 });
        const agree = await agreeingCounters(tg.guest, store, tg.device!.clientId);
        const gs = g1 && g0 ? delta(g1, g0) : undefined;
        const errors = deviceErrorProblems(tg, agree.host, agree.guest);
        return { pass1, pass2, gs, g1: agree.guest, host: agree.host, agreement: agree.problems, errors, sumsOk: sums === md5sumListing(set) };
      } finally {
        await tg.dispose();
      }
    };
    const on = await run("cleancache-on", []);
    const off = await run("cleancache-off", ["tmem.cleancache=0"]);
    const numbers = {
      guestRamMib: ramMib,
      fileSetMib: setMib,
      sectorsPass1Tmem: on.pass1,
      sectorsPass2Tmem: on.pass2,
      sectorsPass2NoCleancache: off.pass2,
      pass2Reduction: off.pass2 > 0 ? `${(100 * (1 - on.pass2 / off.pass2)).toFixed(1)}%` : "n/a",
      cleancacheGetsPass2: on.gs?.cleancache_gets ?? -1,
      cleancacheHitsPass2: on.gs?.cleancache_hits ?? -1,
      cleancachePuts: on.g1?.cleancache_puts ?? -1,
      hostGetHits: on.host.getHits,
      checksums: on.sumsOk && off.sumsOk ? "unchanged" : "CHANGED",
      ...tmemErrorNumbers(on.host, on.g1),
      hostInternalErrorsNoCleancache: off.host.internalErrors,
      guestHypercallErrorsNoCleancache: off.g1?.hypercall_errors ?? -1,
    };
    const problems: string[] = [];
    if (!on.gs) problems.push("the guest has no tmem frontend");
    else {
      // The second pass is claimed to come from cleancache: it must have asked, and been answered.
      if (!(on.gs.cleancache_gets > 0)) problems.push("no cleancache gets on the second pass");
      if (!(on.gs.cleancache_hits > 0)) problems.push("no cleancache hits on the second pass");
    }
    if (!(on.host.getHits > 0)) problems.push("the host answered no get with a hit");
    if (!(on.pass2 * 2 < off.pass2)) problems.push(`second pass read ${on.pass2} sectors with cleancache vs ${off.pass2} without: not far fewer`);
    if (!on.sumsOk || !off.sumsOk) problems.push("a file's checksum changed");
    problems.push(...on.agreement, ...on.errors);
    problems.push(...off.agreement.map((p) => `tmem.cleancache=0 guest: ${p}`), ...off.errors.map((p) => `tmem.cleancache=0 guest: ${p}`));
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const COHERENCE_FILE = 4 * MIB;
const PAGE = 4096;

/**
 * One way to change a file whose pages are in cleancache and not in the page cache. `command`
 * changes /data/<name> in the guest; `expect` gives what the file must hold afterwards.
 */
export interface CoherencePath {
  name: string;
  command: string;
  expect: (old: Buffer) => Buffer;
}

const M1 = MIB;

/**
 * The paths of the coherence check. Only the overwrite goes through the page cache (and so can be
 * covered by the eviction putting the new page over the old one); the others change the file
 * behind it, where only an invalidation hook keeps cleancache coherent. Note: ext4 and mpage ask
 * cleancache only for fully mapped pages, so a hole (truncate-extend, punch-hole) reads as zeros
 * whatever cleancache holds; collapse-range moves mapped data to indexes whose old copies the
 * truncate hook must drop, so it is the path where a missing truncate invalidation shows.
 */
export const COHERENCE_PATHS: readonly CoherencePath[] = [
  {
    name: "overwrite",
    command: `dd if=/dev/zero bs=1M count=4 2>/dev/null | tr '\\000' 'z' | dd of=/data/overwrite bs=1M conv=notrunc 2>/dev/null`,
    expect: () => Buffer.alloc(COHERENCE_FILE, 0x7a),
  },
  {
    name: "truncate-extend",
    command: `truncate -s ${M1} /data/truncate-extend && truncate -s ${COHERENCE_FILE} /data/truncate-extend`,
    expect: (old) => Buffer.concat([old.subarray(0, M1), Buffer.alloc(COHERENCE_FILE - M1)]),
  },
  {
    name: "punch-hole",
    command: `fsop punch /data/punch-hole ${M1} ${M1}`,
    expect: (old) => Buffer.concat([old.subarray(0, M1), Buffer.alloc(M1), old.subarray(2 * M1)]),
  },
  {
    name: "collapse-range",
    command: `fsop collapse /data/collapse-range ${M1} ${M1}`,
    expect: (old) => Buffer.concat([old.subarray(0, M1), old.subarray(2 * M1)]),
  },
  {
    name: "direct-write",
    command: `fsop dwrite /data/direct-write ${M1} ${M1} ${0x7a}`,
    expect: (old) => Buffer.concat([old.subarray(0, M1), Buffer.alloc(M1, 0x7a), old.subarray(2 * M1)]),
  },
];

/** The read-back of one file after the change: did it hold what it should, and did it ask cleancache. */
export interface CoherenceReadBack {
  name: string;
  newContent: boolean;
  cleancacheGets: number;
  cleancacheHits: number;
}

/**
 * The coherence verdict (pure). Before the change: every page of every file was put (puts went up
 * by at least `pages`, none refused) and the host held them. After it: each changed file reads back
 * its new content and its read-back asked cleancache (else the path proves nothing), and the
 * unchanged file came back from cleancache (hits), which shows the old pages really were there.
 */
export function coherenceProblems(opts: {
  pages: number;
  putsBefore: number;
  putsFailedBefore: number;
  hostPagesBefore: number;
  readBacks: CoherenceReadBack[];
  unchanged: CoherenceReadBack;
}): string[] {
  const problems: string[] = [];
  if (opts.putsBefore < opts.pages) problems.push(`only ${opts.putsBefore} cleancache puts for the ${opts.pages} pages of the files before the change`);
  if (opts.putsFailedBefore > 0) problems.push(`${opts.putsFailedBefore} of those puts were refused: not every old page was in tmem`);
  if (opts.hostPagesBefore < opts.pages) problems.push(`the host held ${opts.hostPagesBefore} ephemeral pages, fewer than the files' ${opts.pages}`);
  const stale = opts.readBacks.filter((r) => !r.newContent).map((r) => r.name);
  if (stale.length > 0) problems.push(`stale data read back after: ${stale.join(", ")}`);
  const unasked = opts.readBacks.filter((r) => !(r.cleancacheGets > 0)).map((r) => r.name);
  if (unasked.length > 0) problems.push(`the read-back never asked cleancache (the check proves nothing) after: ${unasked.join(", ")}`);
  if (!opts.unchanged.newContent) problems.push("the unchanged file read back changed");
  if (!(opts.unchanged.cleancacheHits > 0)) problems.push("the unchanged file got no cleancache hits: the old pages were not in tmem");
  return problems;
}

async function coherenceCheck(ctx: Ctx): Promise<Omit<CheckResult, "name" | "seconds">> {
  const dir = mkdtempSync(join(tmpdir(), "tmemu-coh-"));
  const names = [...COHERENCE_PATHS.map((p) => p.name), "unchanged"];
  const old = new Map(names.map((n) => [n, seededBytes(7, n, COHERENCE_FILE)]));
  try {
    for (const [n, data] of old) writeFileSync(join(dir, n), data);
    const store = new TmemStore({ budgetMib: 64 });
    const tg = await bootTmemGuest({ images: ctx.images, name: "coherence", memoryMib: ctx.memoryMib, store, dataDisk: makeDataDisk({ fromDir: dir, sizeMib: 64 }) });
    try {
      const g = tg.guest;
      const drop = "sync; echo 3 > /proc/sys/vm/drop_caches";
      const stats = async (): Promise<TmemGuestStats> => {
        const st = await guestTmemStats(g);
        if (!st) throw new Error("the guest has no tmem frontend (no /sys/kernel/debug/tmem)");
        return st;
      };
      // Read every file into the page cache, then drop it: their pages go to cleancache.
      const s0 = await stats();
      await g.runChecked(`cat ${names.map((n) => `/data/${n}`).join(" ")} > /dev/null; ${drop}`);
      const s1 = await stats();
      const hostBefore = store.clientMetrics(tg.device!.clientId);
      // Change each file while none of its pages is in the page cache; drop what the changes cached.
      for (const p of COHERENCE_PATHS) await g.runChecked(p.command, { timeoutMs: 600_000 });
      await g.runChecked(drop);
      const readBack = async (name: string, want: Buffer): Promise<CoherenceReadBack> => {
        const before = await stats();
        const sum = (await g.runChecked(`md5sum < /data/${name}`)).split(" ")[0];
        const after = await stats();
        return {
          name,
          newContent: sum === createHash("md5").update(want).digest("hex"),
          cleancacheGets: after.cleancache_gets - before.cleancache_gets,
          cleancacheHits: after.cleancache_hits - before.cleancache_hits,
        };
      };
      const readBacks: CoherenceReadBack[] = [];
      for (const p of COHERENCE_PATHS) readBacks.push(await readBack(p.name, p.expect(old.get(p.name)!)));
      const unchanged = await readBack("unchanged", old.get("unchanged")!);
      const agree = await agreeingCounters(g, store, tg.device!.clientId);
      const pages = (names.length * COHERENCE_FILE) / PAGE;
      const numbers: Record<string, number | string> = {
        filePages: pages,
        cleancachePutsBeforeChange: s1.cleancache_puts - s0.cleancache_puts,
        cleancachePutsRefusedBeforeChange: s1.cleancache_puts_failed - s0.cleancache_puts_failed,
        hostEphemeralPagesBeforeChange: hostBefore.pagesEphemeral,
      };
      for (const r of [...readBacks, unchanged]) numbers[r.name] = `${r.newContent ? "new content" : "STALE"}, gets ${r.cleancacheGets}, hits ${r.cleancacheHits}`;
      Object.assign(numbers, tmemErrorNumbers(agree.host, agree.guest));
      const problems = coherenceProblems({
        pages,
        putsBefore: s1.cleancache_puts - s0.cleancache_puts,
        putsFailedBefore: s1.cleancache_puts_failed - s0.cleancache_puts_failed,
        hostPagesBefore: hostBefore.pagesEphemeral,
        readBacks,
        unchanged,
      });
      problems.push(...agree.problems, ...deviceErrorProblems(tg, agree.host, agree.guest));
      return { pass: problems.length === 0, reason: problems.join("; "), numbers };
    } finally {
      await tg.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function inertCheck(ctx: Ctx): Promise<Omit<CheckResult, "name" | "seconds">> {
  const dir = mkdtempSync(join(tmpdir(), "tmemu-inert-"));
  const blob = randomBytes(4 * MIB);
  writeFileSync(join(dir, "blob"), blob);
  const want = createHash("md5").update(blob).digest("hex");
  // The boot path itself (no device: the kernel must not probe blindly at boot): always a cold boot.
  const tg = await bootTmemGuest({ images: ctx.images, name: "inert", memoryMib: ctx.memoryMib, swapDisk: makeSwapImage(ctx.memoryMib * 3), dataDisk: makeDataDisk({ fromDir: dir }) });
  rmSync(dir, { recursive: true, force: true });
  try {
    const g = tg.guest;
    const ramMib = await guestMemTotalMib(g);
    const dmesg = await g.runChecked("dmesg | grep 'tmem:' || true");
    const out = await g.runChecked(`memtouch ${2 * ramMib} 99 1`, { timeoutMs: 1_800_000 });
    const sum = (await g.runChecked("md5sum < /data/blob")).split(" ")[0];
    const gs = await guestTmemStats(g);
    const listener = await portWritesWithoutDevice(ctx.images, ctx.memoryMib);
    const qemu = await qemuInertBoot(ctx.images, ctx.memoryMib);
    const numbers = {
      portWritesWithoutDevice: listener.writes,
      qemu: qemu.ran ? `${qemu.booted ? "booted" : "DID NOT BOOT"} in ${qemu.seconds.toFixed(0)} s: ${qemu.tail || "(no tmem line)"}` : `not run: ${qemu.why}`,
      kernelSays: dmesg.trim().split("\n").filter(Boolean).map((l) => l.replace(/^\[[^\]]*\]\s*/, "")).join(" | ") || "(nothing)",
      mismatches: parseMemtouch(out),
      swapSectorsWritten: g.disks.swap.sectorsWritten,
      frontswapStores: gs?.frontswap_stores ?? 0,
      checksum: sum === want ? "unchanged" : "CHANGED",
    };
    const problems: string[] = [];
    if (numbers.mismatches !== 0) problems.push(`memtouch mismatches=${numbers.mismatches}`);
    if (!(g.disks.swap.sectorsWritten > 0)) problems.push("nothing was swapped to disk");
    if (gs && (gs.frontswap_stores > 0 || gs.cleancache_puts > 0)) problems.push("the frontend made hypercalls without a device");
    if (sum !== want) problems.push("file checksum changed");
    if (!/no tmem device/i.test(dmesg)) problems.push('the kernel did not say "no tmem device"');
    if (qemu.ran && !qemu.booted) problems.push("the kernel did not boot to the agent under QEMU");
    if (qemu.ran && (!qemu.saysNoDevice || qemu.foundDevice)) problems.push(`under QEMU the kernel did not stay inert: ${qemu.tail}`);
    if (listener.writes > 0) problems.push(`the kernel wrote ${listener.writes} time(s) to port 0x700 with no tmem device: a blind probe`);
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    await tg.dispose();
  }
}

const CHECKS: Record<CheckName, { title: string; run: (ctx: Ctx) => Promise<Omit<CheckResult, "name" | "seconds">> }> = {
  swap: { title: "swap integrity (frontswap, ample store)", run: (ctx) => swapCheck(ctx, 4 * ctx.memoryMib, false) },
  "swap-store-full": { title: "swap integrity, store nearly full (refused stores go to disk)", run: (ctx) => swapCheck(ctx, 4, true) },
  cleancache: { title: "cleancache: second read from tmem, not disk", run: cleancacheCheck },
  coherence: { title: "cleancache coherence: overwrite, truncate, punch, collapse, direct write", run: coherenceCheck },
  inert: { title: "inert: no tmem device, same kernel, same workloads, no port access", run: inertCheck },
  "hostile-shared": { title: "hostile shared puts refused; the other guest reads true bytes", run: hostileSharedCheck },
  reprobe: { title: "host resets (TMEM_E_RESET): re-probe, pools re-created, no EMFILE", run: reprobeCheck },
  "refused-put": { title: "a refused put leaves nothing under the handle; the frontend flushes it", run: refusedPutCheck },
  "lost-persistent": { title: "a lost persistent page: SIGBUS for its task, logged, counted, nothing else", run: lostPersistentCheck },
  fuzz: { title: "live hypercall fuzzing beside an honest guest", run: fuzzCheck },
};

export async function validate(opts: ValidateOptions): Promise<{ results: CheckResult[]; seconds: number; kernel: string; patches: string[] }> {
  const t0 = Date.now();
  const log = opts.log ?? (() => undefined);
  const set = await ensureImages({ progress: new StderrProgress(), ...opts.versions, ...(opts.patchesDir ? { patchesDir: opts.patchesDir } : {}) });
  const ctx: Ctx = { images: loadGuestImages(set), start: { imagesKey: imagesKeyOf(set), coldBoot: opts.coldBoot === true }, memoryMib: opts.memoryMib, fuzzSeconds: opts.fuzzSeconds ?? DEFAULT_FUZZ_SECONDS, log };
  const results: CheckResult[] = [];
  for (const name of CHECK_NAMES) {
    if (opts.only && !opts.only.includes(name)) continue;
    const check = CHECKS[name];
    log(`[tmemu] check ${name}: ${check.title} ...`);
    const started = Date.now();
    let r: Omit<CheckResult, "name" | "seconds">;
    try {
      r = await check.run(ctx);
    } catch (err) {
      r = { pass: false, reason: err instanceof Error ? err.message : String(err), numbers: {} };
    }
    const result = { name, ...r, seconds: (Date.now() - started) / 1000 };
    log(`[tmemu] check ${name}: ${result.pass ? "PASS" : `FAIL: ${result.reason}`} (${result.seconds.toFixed(0)} s)`);
    results.push(result);
  }
  return { results, seconds: (Date.now() - t0) / 1000, kernel: set.kernelRelease, patches: set.patches };
}

export function formatReport(r: Awaited<ReturnType<typeof validate>>): string {
  const lines = [`tmemu validate: kernel ${r.kernel} with ${r.patches.length} patch(es), ${r.seconds.toFixed(0)} s`];
  for (const c of r.results) {
    lines.push(`${c.pass ? "PASS" : "FAIL"}  ${c.name} (${c.seconds.toFixed(0)} s)${c.pass ? "" : `: ${c.reason}`}`);
    for (const [k, v] of Object.entries(c.numbers)) lines.push(`        ${k} = ${v}`);
  }
  const failed = r.results.filter((c) => !c.pass).length;
  lines.push(failed ? `${failed} of ${r.results.length} checks FAILED` : `all ${r.results.length} checks passed`);
  return `${lines.join("\n")}\n`;
}
