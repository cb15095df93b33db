/**
 * The checks of `tmemu validate` for the host contract (tmem_abi.h, Documentation/misc-devices/
 * tmem.rst in patches/): guests the host must not trust, and a host that resets or loses.
 *
 *  hostile-shared   two guests mount one read-only image with a shared pool; one puts a page of
 *                   garbage under every (inode, index) of its files (tmemcall hostile), before and
 *                   after the pool holds the true pages; the other reads every file back through
 *                   the pool: every byte true, every hostile put refused (TMEM_EPERM)
 *  reprobe          the host resets the guest's client (TmemDevice.requireReprobe) many times more
 *                   than it has pool ids; after each the guest's next op gets TMEM_E_RESET, it
 *                   probes and re-creates its pools: no TMEM_EMFILE, no hypercall error, cleancache
 *                   hits after the last reset, and swap through the re-created frontswap pool is
 *                   intact
 *  refused-put      a frozen client's cleancache puts are refused and the frontend flushes each
 *                   handle anyway (one host flush per refused put); a raw put, refused, after an
 *                   earlier put of the same handle leaves nothing: the get misses, never old data
 *  lost-persistent  the host loses one frontswap page (TMEMU_INJECT_FAULT=lose-persistent): the
 *                   task that swaps it in gets SIGBUS, the kernel logs and counts it, and a second
 *                   run over the same memory is intact
 *  fuzz             a guest issues random hypercalls (ops, pool ids, handles, arguments, frames of
 *                   its own kernel and outside RAM) while another swaps and reads files through
 *                   tmem: no host exception, the honest guest's data intact, and the store back
 *                   to empty after both are gone
 */
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Guest, type GuestImages } from "../emulator/guest.ts";
import { makeDataDisk, makeSwapImage } from "../guest-images/disks.ts";
import { parseNameValues, TMEM_STATS_COMMAND } from "../hypervisor/guest/stats.ts";
import { TMEM_IO_PORT } from "../hypervisor/tmem/abi.ts";
import { INJECT_FAULT_ENV } from "../hypervisor/tmem/hypercall.ts";
import { Ext4PageVerifier } from "../hypervisor/tmem/shared-verify.ts";
import { TmemStore } from "../hypervisor/tmem/store.ts";
import { seededBytes } from "../workloads/files.ts";
import { startGuest, type StartGuestOptions, type StartedGuest } from "./snapshot-guest.ts";
import { guestMemTotalMib, type TmemGuest } from "./tmem-guest.ts";

export interface ContractCtx {
  images: GuestImages;
  memoryMib: number;
  /** How the checks' guests start (snapshot-guest.ts): from the boot snapshot unless coldBoot; the checks of the boot path itself boot cold whatever this says. */
  start: { imagesKey: string; coldBoot: boolean };
  /** How long the fuzz check's guest fires hypercalls. */
  fuzzSeconds: number;
  log: (line: string) => void;
}

/** A check's guest, started as ctx.start says (cold, or from the boot snapshot of its options). */
export function startCheckGuest(ctx: Pick<ContractCtx, "start">, o: Omit<StartGuestOptions, "imagesKey" | "coldBoot">): Promise<StartedGuest> {
  return startGuest({ ...o, ...ctx.start });
}

/** A guest that mounts `image` read-only, its cleancache pool shared under `uuid` (authorised on `store`). */
function sharedImageGuest(ctx: ContractCtx, store: TmemStore, image: Uint8Array, uuid: string, name: string, swap: boolean): Promise<StartedGuest> {
  return startCheckGuest(ctx, {
    images: ctx.images,
    name,
    memoryMib: ctx.memoryMib,
    store,
    dataDisk: image,
    kernelArgs: ["tmemu.data=ro"],
    ...(swap ? { swapDisk: makeSwapImage(ctx.memoryMib * 3) } : {}),
    onDevice: (d) => store.authorizeShared(d.clientId, uuid),
  });
}

export type Outcome = { pass: boolean; reason: string; numbers: Record<string, number | string> };

const MIB = 1024 * 1024;
const PAGE = 4096;
const DROP = "sync; echo 3 > /proc/sys/vm/drop_caches";

/** Every counter in /sys/kernel/debug/tmem, the new ones (resets, frontswap_lost) included. */
async function counters(g: Guest): Promise<Record<string, number>> {
  return parseNameValues(await g.runChecked(TMEM_STATS_COMMAND, { timeoutMs: 60_000 }));
}

function md5(b: Uint8Array): string {
  return createHash("md5").update(b).digest("hex");
}

/** A folder of `n` files of `mib` MiB of seeded bytes; returns the folder and each file's md5. */
function fileFolder(prefix: string, n: number, mib: number, seed: number): { dir: string; sums: Map<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const sums = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const data = seededBytes(seed, `f${i}`, mib * MIB);
    writeFileSync(join(dir, `f${i}`), data);
    sums.set(`f${i}`, md5(data));
  }
  return { dir, sums };
}

/** md5sum output ("sum  /data/name" lines) against the expected sums: the names that differ. */
function wrongFiles(out: string, sums: Map<string, string>): string[] {
  const got = new Map(out.trim().split("\n").map((l) => {
    const [sum, path] = l.trim().split(/\s+/);
    return [path?.replace(/^\/data\//, "") ?? "", sum ?? ""] as const;
  }));
  return [...sums].filter(([name, sum]) => got.get(name) !== sum).map(([name]) => name);
}

/** The store is back to holding nothing (every client destroyed). */
function storeEmpty(store: TmemStore): { frames: number; pages: number } {
  const m = store.metrics();
  return { frames: m.framesUsed, pages: m.pages };
}

export async function hostileSharedCheck(ctx: ContractCtx): Promise<Outcome> {
  const files = 3;
  const { dir, sums } = fileFolder("tmemu-shared-", files, 1, 31);
  const uuid = "5ea7ed00-7e70-4d54-8000-000000000013";
  const image = makeDataDisk({ fromDir: dir, uuid, sizeMib: 32 });
  rmSync(dir, { recursive: true, force: true });
  const store = new TmemStore({ budgetMib: 64 });
  const verifier = new Ext4PageVerifier(image);
  store.verifySharedPuts(uuid, verifier);
  const boot = (name: string) => sharedImageGuest(ctx, store, image, uuid, name, false);
  const hostile = await boot("hostile");
  let honest: TmemGuest | undefined;
  try {
    honest = await boot("honest");
    const h = hostile.guest;
    const list = (await h.runChecked("stat -c '%i %n' /data/f*")).trim().split("\n");
    const inodes = list
      .map((l) => l.trim().split(/\s+/))
      .filter(([, path]) => path !== undefined && sums.has(path.replace(/^\/data\//, "")))
      .map(([ino]) => Number(ino));
    const pages = MIB / PAGE;
    const attack = async (): Promise<{ hits: number; eperm: number; other: number }> => {
      const t = { hits: 0, eperm: 0, other: 0 };
      for (const ino of inodes) {
        const out = await h.runChecked(`tmemcall hostile ${uuid} ${ino} ${pages} 0xee`);
        const kv = Object.fromEntries([...out.matchAll(/(\w+)=(-?\d+)/g)].map((m) => [m[1], Number(m[2])]));
        t.hits += kv["hits"] ?? 0;
        t.eperm += kv["eperm"] ?? 0;
        t.other += kv["other"] ?? 0;
      }
      return t;
    };
    // 1. Garbage first, into an empty pool; then the hostile guest's own honest puts (its page
    //    cache dropped): the pool now holds the true pages.
    await h.runChecked(`cat /data/f* > /dev/null`);
    const first = await attack();
    await h.runChecked(DROP);
    // 2. The honest guest reads every file: from the pool where it can.
    const g = honest.guest;
    const before = await counters(g);
    const read1 = wrongFiles(await g.runChecked("md5sum /data/f*"), sums);
    // 3. The honest guest drops its page cache (its pages go to the pool), then garbage over the
    //    true pages, then the honest guest reads again: every page it finds in the pool is whatever
    //    the attack left there.
    await g.runChecked(DROP);
    const second = await attack();
    const read2 = wrongFiles(await g.runChecked("md5sum /data/f*"), sums);
    const after = await counters(g);
    const hostileHost = store.clientMetrics(hostile.device!.clientId);
    const numbers = {
      files,
      hostilePuts: (first.hits + first.eperm + first.other) + (second.hits + second.eperm + second.other),
      hostilePutsAccepted: first.hits + second.hits,
      hostilePutsRefused: first.eperm + second.eperm,
      hostilePutsOtherResult: first.other + second.other,
      hostEperm: hostileHost.errors.EPERM,
      verifierAccepted: verifier.accepted,
      verifierRefused: verifier.refused,
      honestCleancacheHits: (after["cleancache_hits"] ?? 0) - (before["cleancache_hits"] ?? 0),
      honestFilesWrong: read1.length + read2.length,
      wrongBytesRead: read1.length + read2.length === 0 ? 0 : "some (a file's md5 differs)",
    };
    const problems: string[] = [];
    if (inodes.length !== files) problems.push(`found ${inodes.length} of the ${files} files' inodes`);
    if (numbers.hostilePutsAccepted > 0) problems.push(`${numbers.hostilePutsAccepted} hostile puts were accepted`);
    if (numbers.hostilePutsRefused !== files * pages * 2) problems.push(`${numbers.hostilePutsRefused} of ${files * pages * 2} hostile puts refused with TMEM_EPERM`);
    if (read1.length + read2.length > 0) problems.push(`the honest guest read wrong data in ${[...read1, ...read2].join(", ")}`);
    if (!(numbers.honestCleancacheHits > 0)) problems.push("the honest guest got no cleancache hits: the shared pool served nothing");
    if (!(verifier.accepted > 0)) problems.push("no honest shared put was verified and accepted");
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    await honest?.dispose();
    await hostile.dispose();
  }
}

export async function reprobeCheck(ctx: ContractCtx): Promise<Outcome> {
  const { dir, sums } = fileFolder("tmemu-reprobe-", 2, 2, 41);
  const store = new TmemStore({ budgetMib: 4 * ctx.memoryMib });
  const tg = await startCheckGuest(ctx, {
    images: ctx.images,
    name: "reprobe",
    memoryMib: ctx.memoryMib,
    store,
    dataDisk: makeDataDisk({ fromDir: dir, sizeMib: 32 }),
    swapDisk: makeSwapImage(ctx.memoryMib * 3),
  });
  rmSync(dir, { recursive: true, force: true });
  try {
    const g = tg.guest;
    const device = tg.device!;
    const resets = 40; // well over TMEM_MAX_POOLS: a pool leaked per reset would reach TMEM_EMFILE
    const c0 = await counters(g);
    let wrong = 0;
    let maxPools = 0;
    for (let i = 0; i < resets; i++) {
      device.requireReprobe();
      // Any op: the page cache drop puts (cleancache), the read gets.
      wrong += wrongFiles(await g.runChecked(`${DROP}; md5sum /data/f*`), sums).length;
      maxPools = Math.max(maxPools, store.clientMetrics(device.clientId).pools.length);
    }
    const c1 = await counters(g);
    wrong += wrongFiles(await g.runChecked(`${DROP}; md5sum /data/f*`), sums).length;
    const c2 = await counters(g);
    const ramMib = await guestMemTotalMib(g);
    const touch = await g.run(`memtouch ${Math.floor(1.5 * ramMib)} 4242 1`, { timeoutMs: 1_800_000 });
    const c3 = await counters(g);
    const host = store.clientMetrics(device.clientId);
    const mismatches = Number(/mismatches=(\d+)/.exec(touch.output)?.[1] ?? Number.NaN);
    const numbers = {
      hostResets: resets,
      guestResets: (c1["resets"] ?? 0) - (c0["resets"] ?? 0),
      hostEResetAnswers: host.errors.E_RESET,
      hostEmfile: host.errors.EMFILE,
      maxPoolsHeld: maxPools,
      poolsHeldAtEnd: host.pools.length,
      guestHypercallErrors: c3["hypercall_errors"] ?? -1,
      cleancacheHitsAfterLastReset: (c2["cleancache_hits"] ?? 0) - (c1["cleancache_hits"] ?? 0),
      frontswapStoresAfter: (c3["frontswap_stores"] ?? 0) - (c2["frontswap_stores"] ?? 0),
      memtouchMismatches: mismatches,
      filesWrong: wrong,
    };
    const problems: string[] = [];
    if (c0["resets"] === undefined) problems.push("the frontend has no resets counter: it does not handle TMEM_E_RESET");
    if (numbers.guestResets !== resets) problems.push(`the guest re-probed ${numbers.guestResets} times for ${resets} resets`);
    if (numbers.hostEmfile > 0) problems.push(`TMEM_EMFILE ${numbers.hostEmfile} times: pools leaked across resets`);
    if (numbers.guestHypercallErrors !== 0) problems.push(`guest hypercall_errors: ${numbers.guestHypercallErrors}`);
    if (!(numbers.cleancacheHitsAfterLastReset > 0)) problems.push("no cleancache hits after the last reset: the pools were not re-created");
    if (!(numbers.frontswapStoresAfter > 0)) problems.push("no frontswap stores after the resets");
    if (touch.exitCode !== 0 || mismatches !== 0) problems.push(`memtouch exit ${touch.exitCode}, mismatches=${mismatches}`);
    if (wrong > 0) problems.push(`${wrong} file reads returned wrong data`);
    if (host.internalErrors > 0) problems.push(`host internal errors: ${host.internalErrors}`);
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    await tg.dispose();
  }
}

export async function refusedPutCheck(ctx: ContractCtx): Promise<Outcome> {
  const { dir, sums } = fileFolder("tmemu-refused-", 1, 4, 51);
  const store = new TmemStore({ budgetMib: 64 });
  const tg = await startCheckGuest(ctx, { images: ctx.images, name: "refused-put", memoryMib: ctx.memoryMib, store, dataDisk: makeDataDisk({ fromDir: dir, sizeMib: 32 }) });
  rmSync(dir, { recursive: true, force: true });
  try {
    const g = tg.guest;
    const id = tg.device!.clientId;
    // 1. The file's pages into tmem, then back into the page cache (private gets are exclusive:
    //    tmem is empty again); then evicted while the client is frozen: every put refused.
    await g.runChecked(`cat /data/f0 > /dev/null; ${DROP}; cat /data/f0 > /dev/null`);
    const h0 = store.clientMetrics(id);
    const c0 = await counters(g);
    store.freeze(id);
    await g.runChecked(DROP);
    store.thaw(id);
    const h1 = store.clientMetrics(id);
    const c1 = await counters(g);
    const refused = h1.putsRefused - h0.putsRefused;
    const flushesAfter = h1.flushPages - h0.flushPages;
    // 2. The contract itself, raw: put A, a refused put of B at the same handle, then get.
    const pool = Number(/pool=(-?\d+)/.exec(await g.runChecked("tmemcall newpool 0"))?.[1]);
    const put1 = Number(/result=(-?\d+)/.exec(await g.runChecked(`tmemcall put ${pool} 77 5 0x11`))?.[1]);
    store.freeze(id);
    const put2 = Number(/result=(-?\d+)/.exec(await g.runChecked(`tmemcall put ${pool} 77 5 0x22`))?.[1]);
    store.thaw(id);
    const get = await g.runChecked(`tmemcall get ${pool} 77 5`);
    const getResult = Number(/result=(-?\d+)/.exec(get)?.[1]);
    const getByte = Number(/byte=(\d+)/.exec(get)?.[1]);
    const sumsOk = wrongFiles(await g.runChecked("md5sum /data/f0"), sums).length === 0;
    const numbers = {
      frozenPutsRefused: refused,
      guestPutsFailed: (c1["cleancache_puts_failed"] ?? 0) - (c0["cleancache_puts_failed"] ?? 0),
      hostFlushesAfterRefusals: flushesAfter,
      rawFirstPut: put1,
      rawRefusedPut: put2,
      rawGet: getResult,
      rawGetByte: `0x${getByte.toString(16)}`,
      checksum: sumsOk ? "unchanged" : "CHANGED",
    };
    const problems: string[] = [];
    if (!(refused > 0)) problems.push("no put was refused while the client was frozen");
    else if (flushesAfter < refused) problems.push(`${refused} refused puts but only ${flushesAfter} flushes: the frontend does not flush after a failed put`);
    if (put1 !== 1) problems.push(`the first raw put answered ${put1}, not 1`);
    if (put2 !== -16) problems.push(`the raw put while frozen answered ${put2}, not TMEM_EBUSY (-16)`);
    if (getResult !== 0 || getByte !== 0x5a) problems.push(`the get after a refused put answered ${getResult} with byte 0x${getByte.toString(16)}: the old copy stayed`);
    if (!sumsOk) problems.push("the file's checksum changed");
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    await tg.dispose();
  }
}

export async function lostPersistentCheck(ctx: ContractCtx): Promise<Outcome> {
  const store = new TmemStore({ budgetMib: 4 * ctx.memoryMib });
  const previous = process.env[INJECT_FAULT_ENV];
  process.env[INJECT_FAULT_ENV] = "lose-persistent";
  let tg: TmemGuest;
  try {
    tg = await startCheckGuest(ctx, { images: ctx.images, name: "lost-persistent", memoryMib: ctx.memoryMib, store, swapDisk: makeSwapImage(ctx.memoryMib * 3) });
  } finally {
    if (previous === undefined) delete process.env[INJECT_FAULT_ENV];
    else process.env[INJECT_FAULT_ENV] = previous;
  }
  try {
    const g = tg.guest;
    const ramMib = await guestMemTotalMib(g);
    const first = await g.run(`memtouch ${2 * ramMib} 7001 2`, { timeoutMs: 1_800_000 });
    const c1 = await counters(g);
    const dmesg = await g.runChecked("dmesg | grep -c 'lost by the host' || true");
    const second = await g.run(`memtouch ${2 * ramMib} 7002 1`, { timeoutMs: 1_800_000 });
    const mismatches = (out: string) => Number(/mismatches=(\d+)/.exec(out)?.[1] ?? Number.NaN);
    const numbers = {
      firstRunExit: first.exitCode,
      firstRunMismatches: Number.isNaN(mismatches(first.output)) ? "none printed (killed)" : mismatches(first.output),
      frontswapLost: c1["frontswap_lost"] ?? -1,
      frontswapLoadsFailed: c1["frontswap_loads_failed"] ?? -1,
      kernelLogLines: Number(dmesg.trim()),
      secondRunExit: second.exitCode,
      secondRunMismatches: mismatches(second.output),
    };
    const problems: string[] = [];
    // SIGBUS: the shell reports 128 + 7.
    if (first.exitCode !== 135) problems.push(`the task that swapped in the lost page exited ${first.exitCode} (mismatches=${numbers.firstRunMismatches}), not killed by SIGBUS (135)`);
    if (numbers.frontswapLost !== 1) problems.push(`frontswap_lost is ${numbers.frontswapLost}, not 1`);
    if (!(numbers.kernelLogLines > 0)) problems.push("the kernel did not log the lost page");
    if (second.exitCode !== 0 || numbers.secondRunMismatches !== 0) problems.push(`the second run exited ${second.exitCode} with mismatches=${numbers.secondRunMismatches}`);
    return { pass: problems.length === 0, reason: problems.join("; "), numbers };
  } finally {
    await tg.dispose();
  }
}

export async function fuzzCheck(ctx: ContractCtx): Promise<Outcome> {
  const { dir, sums } = fileFolder("tmemu-fuzz-", 2, 2, 61);
  const uuid = "f0220000-7e70-4d54-8000-000000000013";
  const image = makeDataDisk({ fromDir: dir, uuid, sizeMib: 32 });
  rmSync(dir, { recursive: true, force: true });
  const store = new TmemStore({ budgetMib: 2 * ctx.memoryMib });
  store.verifySharedPuts(uuid, new Ext4PageVerifier(image));
  const empty0 = storeEmpty(store);
  const boot = (name: string, swap: boolean) => sharedImageGuest(ctx, store, image, uuid, name, swap);
  const honest = await boot("honest", true);
  let fuzzer: TmemGuest | undefined;
  let fuzzed = { calls: 0, ok: 0, eperm: 0, errors: 0, survived: false };
  let rounds = 0;
  let mismatches = 0;
  let wrong = 0;
  let hostErrors = "";
  try {
    fuzzer = await boot("fuzzer", false);
    const frames = (fuzzer.guest.memoryMib * MIB) / PAGE;
    const ramMib = await guestMemTotalMib(honest.guest);
    const fuzzing = fuzzer.guest
      .run(`tmemcall fuzz ${ctx.fuzzSeconds} 1313 ${frames}`, { timeoutMs: (ctx.fuzzSeconds + 600) * 1000 })
      .then((r) => {
        const kv = Object.fromEntries([...r.output.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1], Number(m[2])]));
        fuzzed = { calls: kv["calls"] ?? 0, ok: kv["ok"] ?? 0, eperm: kv["eperm"] ?? 0, errors: kv["errors"] ?? 0, survived: r.exitCode === 0 };
      })
      .catch(() => undefined);
    let done = false;
    void fuzzing.then(() => (done = true));
    // The honest guest swaps and reads through tmem for as long as the fuzzer runs (once at least).
    do {
      const out = await honest.guest.run(`memtouch ${Math.floor(1.5 * ramMib)} ${5000 + rounds} 1`, { timeoutMs: 1_800_000 });
      const m = Number(/mismatches=(\d+)/.exec(out.output)?.[1] ?? Number.NaN);
      mismatches += out.exitCode === 0 && m === 0 ? 0 : Number.isNaN(m) ? 1 : Math.max(m, 1);
      wrong += wrongFiles(await honest.guest.runChecked(`${DROP}; md5sum /data/f*`), sums).length;
      rounds++;
    } while (!done);
    await fuzzing;
    for (const tg of [honest, fuzzer]) {
      const m = store.clientMetrics(tg.device!.clientId);
      if (m.internalErrors > 0) {
        const e = tg.device!.handler.lastInternalError;
        hostErrors += `${tg.guest.name}: ${m.internalErrors} (${e instanceof Error ? e.message : String(e)}) `;
      }
    }
  } finally {
    await fuzzer?.dispose();
    await honest.dispose();
  }
  store.checkInvariants();
  const empty1 = storeEmpty(store);
  const numbers = {
    fuzzSeconds: ctx.fuzzSeconds,
    callsIssued: fuzzed.calls,
    callsSucceeded: fuzzed.ok,
    callsRefusedEperm: fuzzed.eperm,
    callsOtherErrors: fuzzed.errors,
    fuzzerSurvived: fuzzed.survived ? "yes" : "no",
    hostExceptions: hostErrors === "" ? 0 : hostErrors.trim(),
    honestRounds: rounds,
    honestMismatches: mismatches,
    honestFilesWrong: wrong,
    storeFramesBefore: empty0.frames,
    storeFramesAfter: empty1.frames,
    storePagesBefore: empty0.pages,
    storePagesAfter: empty1.pages,
  };
  const problems: string[] = [];
  if (!(fuzzed.calls > 0)) problems.push("the fuzzer issued no calls");
  if (hostErrors !== "") problems.push(`host exceptions: ${hostErrors.trim()}`);
  if (mismatches > 0 || wrong > 0) problems.push(`the honest guest saw ${mismatches} memory mismatches and ${wrong} wrong files`);
  if (empty1.frames !== empty0.frames || empty1.pages !== empty0.pages) problems.push(`the store holds ${empty1.frames} frames and ${empty1.pages} pages after, ${empty0.frames} and ${empty0.pages} before`);
  return { pass: problems.length === 0, reason: problems.join("; "), numbers };
}

/**
 * A guest on plain v86 (no tmem device, no PCI function) with something else listening on the
 * hypercall port: the frontend must never write to it. Returns the number of writes it saw.
 */
export async function portWritesWithoutDevice(images: GuestImages, memoryMib: number): Promise<{ writes: number; dmesg: string }> {
  let writes = 0;
  const guest = await Guest.boot({
    images,
    name: "no-device",
    memoryMib,
    beforeStart: (g) => {
      g.registerPortTrap(TMEM_IO_PORT, () => {
        writes++;
      });
    },
  });
  try {
    const dmesg = await guest.runChecked("dmesg | grep 'tmem' || true");
    return { writes, dmesg };
  } finally {
    await guest.dispose();
  }
}
