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
 *  cleancache coherence a file overwritten or truncated after its pages went to tmem reads back
 *                       with its new content
 *  inert                no tmem device: the same kernel boots, says so once, and the workloads pass
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Guest, GuestImages } from "../emulator/guest.ts";
import { makeDataDisk, makeSwapImage } from "../guest-images/disks.ts";
import { ensureImages, loadGuestImages, type VersionChoice } from "../guest-images/index.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { delta, type TmemGuestStats } from "../hypervisor/guest/stats.ts";
import type { ClientMetricsJson } from "../hypervisor/tmem/metrics.ts";
import { TmemStore } from "../hypervisor/tmem/store.ts";
import { md5sumListing, writeFileSet } from "../workloads/files.ts";
import { bootTmemGuest, guestMemTotalMib, guestTmemStats, guestVmstat } from "./tmem-guest.ts";

export interface CheckResult {
  name: string;
  pass: boolean;
  /** Why it failed, in one line; empty when it passed. */
  reason: string;
  numbers: Record<string, number | string>;
  seconds: number;
}

export interface ValidateOptions {
  patchesDir?: string;
  /** --kernel-version / --versions: the package versions to build from. */
  versions?: VersionChoice;
  memoryMib: number;
  only?: string[];
  log?: (line: string) => void;
}

const MIB = 1024 * 1024;

export const CHECK_NAMES = ["swap", "swap-store-full", "cleancache", "coherence", "inert"] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

interface Ctx {
  images: GuestImages;
  memoryMib: number;
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
  ];
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
    };
    const problems: string[] = [];
    if (mismatches !== 0) problems.push(`memtouch mismatches=${mismatches}`);
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
  const probe = await bootTmemGuest({ images: ctx.images, name: "probe", memoryMib: ctx.memoryMib });
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
        return { pass1, pass2, gs, g1: agree.guest, host: agree.host, agreement: agree.problems, sumsOk: sums === md5sumListing(set) };
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
    };
    const problems: string[] = [];
    if (!on.gs) problems.push("the guest has no tmem frontend");
    else if (!(on.gs.cleancache_hits > 0)) problems.push("no cleancache hits on the second pass");
    if (!(on.pass2 * 2 < off.pass2)) problems.push(`second pass read ${on.pass2} sectors with cleancache vs ${off.pass2} without: not far fewer`);
    if (!on.sumsOk || !off.sumsOk) problems.push("a file's checksum changed");
    problems.push(...on.agreement);
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function coherenceCheck(ctx: Ctx): Promise<Omit<CheckResult, "name" | "seconds">> {
  const dir = mkdtempSync(join(tmpdir(), "tmemu-coh-"));
  try {
    writeFileSync(join(dir, "a"), Buffer.alloc(8 * MIB, 0x61));
    writeFileSync(join(dir, "b"), Buffer.alloc(8 * MIB, 0x62));
    const store = new TmemStore({ budgetMib: 64 });
    const tg = await bootTmemGuest({ images: ctx.images, name: "coherence", memoryMib: ctx.memoryMib, store, dataDisk: makeDataDisk({ fromDir: dir, sizeMib: 64 }) });
    try {
      const g = tg.guest;
      const drop = "sync; echo 3 > /proc/sys/vm/drop_caches";
      // Read both files into the page cache, then drop it: their pages go to cleancache.
      await g.runChecked(`cat /data/a /data/b > /dev/null; ${drop}`);
      const before = await guestTmemStats(g);
      // Overwrite a in place with new bytes, and truncate b to 1 MiB then extend it to 8 MiB.
      await g.runChecked(`dd if=/dev/zero bs=1M count=8 2>/dev/null | tr '\\000' 'z' | dd of=/data/a bs=1M conv=notrunc 2>/dev/null; ${drop}`);
      await g.runChecked(`dd if=/data/b of=/tmp/b1 bs=1M count=1 2>/dev/null; dd if=/tmp/b1 of=/data/b bs=1M 2>/dev/null; dd if=/dev/zero of=/data/b bs=1M seek=8 count=0 2>/dev/null; ${drop}`);
      const a = (await g.runChecked("md5sum < /data/a")).split(" ")[0];
      const b = (await g.runChecked("md5sum < /data/b")).split(" ")[0];
      const agree = await agreeingCounters(g, store, tg.device!.clientId);
      const after = agree.guest;
      const wantA = createHash("md5").update(Buffer.alloc(8 * MIB, 0x7a)).digest("hex");
      const wantB = createHash("md5").update(Buffer.concat([Buffer.alloc(MIB, 0x62), Buffer.alloc(7 * MIB, 0)])).digest("hex");
      const numbers = {
        overwrittenReadsBack: a === wantA ? "new content" : "STALE",
        truncatedReadsBack: b === wantB ? "new content" : "STALE",
        cleancachePutsBeforeWrite: before?.cleancache_puts ?? -1,
        cleancacheHits: after?.cleancache_hits ?? -1,
        invalidates: after ? after.cleancache_invalidates + after.cleancache_inode_invalidates : -1,
      };
      const problems: string[] = [];
      if (!before || !(before.cleancache_puts > 0)) problems.push("no pages went to cleancache before the write");
      if (a !== wantA) problems.push("the overwritten file read back stale data");
      if (b !== wantB) problems.push("the truncated file read back stale data");
      problems.push(...agree.problems);
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
  const tg = await bootTmemGuest({ images: ctx.images, name: "inert", memoryMib: ctx.memoryMib, swapDisk: makeSwapImage(ctx.memoryMib * 3), dataDisk: makeDataDisk({ fromDir: dir }) });
  rmSync(dir, { recursive: true, force: true });
  try {
    const g = tg.guest;
    const ramMib = await guestMemTotalMib(g);
    const dmesg = await g.runChecked("dmesg | grep 'tmem:' || true");
    const out = await g.runChecked(`memtouch ${2 * ramMib} 99 1`, { timeoutMs: 1_800_000 });
    const sum = (await g.runChecked("md5sum < /data/blob")).split(" ")[0];
    const gs = await guestTmemStats(g);
    const numbers = {
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
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    await tg.dispose();
  }
}

const CHECKS: Record<CheckName, { title: string; run: (ctx: Ctx) => Promise<Omit<CheckResult, "name" | "seconds">> }> = {
  swap: { title: "swap integrity (frontswap, ample store)", run: (ctx) => swapCheck(ctx, 4 * ctx.memoryMib, false) },
  "swap-store-full": { title: "swap integrity, store nearly full (refused stores go to disk)", run: (ctx) => swapCheck(ctx, 4, true) },
  cleancache: { title: "cleancache: second read from tmem, not disk", run: cleancacheCheck },
  coherence: { title: "cleancache coherence: overwrite and truncate", run: coherenceCheck },
  inert: { title: "inert: no tmem device, same kernel, same workloads", run: inertCheck },
};

export async function validate(opts: ValidateOptions): Promise<{ results: CheckResult[]; seconds: number; kernel: string; patches: string[] }> {
  const t0 = Date.now();
  const log = opts.log ?? (() => undefined);
  const set = await ensureImages({ progress: new StderrProgress(), ...opts.versions, ...(opts.patchesDir ? { patchesDir: opts.patchesDir } : {}) });
  const ctx: Ctx = { images: loadGuestImages(set), memoryMib: opts.memoryMib, log };
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
