/**
 * The built-in workloads of `tmemu run` and `tmemu bench`. Each is a busybox sh command per guest
 * over a seeded, read-only file set on the data disk (/data/set) and anonymous memory (memtouch),
 * sized from the guest's RAM as Linux sees it (MemTotal), so the pressure is the same whatever
 * --memory-mib says.
 *
 *  refault  the file set is 1.5 x RAM, read 3 times, then checksummed: every round after the first
 *           refaults pages the page cache could not keep (cleancache's case)
 *  swap     memtouch over 1.5 x RAM, verified twice: anonymous pages go to swap and come back
 *           (frontswap's case); pages are half random, half one repeated word (about 2:1
 *           compressible)
 *  mixed    both at once, each at half the size
 *  phased   one burst of swap and refault work per guest, at different times: guest i starts when
 *           guest i-1 has finished (or, with --phase-s, i x phase seconds after guest 0): while
 *           one guest peaks the others idle (what self-ballooning is for)
 *
 * Every command prints `memtouch: ...mismatches=N...` and/or `files: ok|CORRUPT` lines that
 * parseWorkloadOutput reads. Each plan says which lines its command must print (`requires`), and
 * judgeWorkload decides whether a guest's workload counts: it ran to the end (no timeout, no stop,
 * the guest alive), exited 0, printed every required line, had no OOM kill, no memtouch mismatch
 * and an intact file set. Anything else is an invalid run, with the reasons.
 */
import { TmemuError } from "../hypervisor/user-errors.ts";

export const WORKLOAD_NAMES = ["refault", "swap", "mixed", "phased"] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export interface WorkloadParams {
  /** MemTotal of the guests, MiB. */
  guestRamMib: number;
  seed: number;
  guests: number;
  /** phased: seconds between one guest's start and the next. */
  phaseS?: number;
}

export interface WorkloadPlan {
  name: WorkloadName;
  /** Size of the read-only file set on the data disk, MiB (0: none). */
  fileSetMib: number;
  fileMib: number;
  /** Swap disk each guest needs, MiB. */
  swapMib: number;
  command(guestIndex: number, expectedMd5Listing: string): string;
  /**
   * Seconds the host waits before it starts guest i's command (phased). The host keeps the time:
   * sleep(1) in the guest returns early under v86 (nanosleep timers expire at once; poll timeouts
   * are right), so guest-side sleeps are not used.
   */
  startDelayS?: (guestIndex: number) => number;
  /** phased without a phase: guest i starts when guest i-1 has finished (peaks never overlap). */
  chained?: boolean;
  /** What the command must print to count as finished. */
  requires: WorkloadRequirements;
}

/** Lines a workload's output must hold (memtouch.c prints one result line per run, at its end). */
export interface WorkloadRequirements {
  /** Exactly this many `memtouch: mib=... mismatches=N ...` result lines. */
  memtouchLines: number;
  /** A `files: ok|CORRUPT` line. */
  filesLine: boolean;
}

const readRounds = (rounds: number) => `r=0; while [ $r -lt ${rounds} ]; do cat /data/set/* > /dev/null; r=$((r+1)); done`;

/** md5sum of the whole listing: one short line to compare instead of the listing itself. */
function verifyFiles(listingMd5: string): string {
  return `if [ "$(md5sum /data/set/* | md5sum | cut -d' ' -f1)" = "${listingMd5}" ]; then echo "files: ok"; else echo "files: CORRUPT"; fi`;
}

export function planWorkload(name: string, p: WorkloadParams): WorkloadPlan {
  const ram = p.guestRamMib;
  // Half of each page random, half one repeated word: compresses about 2:1, like typical anonymous
  // memory, so zswap is compared on data it can compress.
  const mt = (mib: number, seedOffset: number, passes: number) => `memtouch ${Math.max(1, Math.round(mib))} ${p.seed + seedOffset} ${passes} 512`;
  switch (name) {
    case "refault":
      return {
        name,
        fileSetMib: Math.round(1.5 * ram),
        fileMib: 4,
        swapMib: ram,
        command: (_i, listingMd5) => `${readRounds(3)}; ${verifyFiles(listingMd5)}`,
        requires: { memtouchLines: 0, filesLine: true },
      };
    case "swap":
      return { name, fileSetMib: 0, fileMib: 4, swapMib: 2 * ram, command: (i) => mt(1.5 * ram, i, 2), requires: { memtouchLines: 1, filesLine: false } };
    case "mixed":
      return {
        name,
        fileSetMib: Math.round(0.75 * ram),
        fileMib: 4,
        swapMib: 2 * ram,
        command: (i, listingMd5) =>
          `${mt(0.75 * ram, i, 2)} > /tmp/mt 2>&1 & pid=$!; ${readRounds(3)}; wait $pid; rc=$?; cat /tmp/mt; ${verifyFiles(listingMd5)}; exit $rc`,
        requires: { memtouchLines: 1, filesLine: true },
      };
    case "phased": {
      const phase = p.phaseS;
      return {
        name,
        fileSetMib: Math.round(0.75 * ram),
        fileMib: 4,
        swapMib: 2 * ram,
        ...(phase === undefined ? { chained: true } : { startDelayS: (i: number) => i * phase }),
        command: (i, listingMd5) => `${mt(1.25 * ram, i, 2)}; rc=$?; ${readRounds(2)}; ${verifyFiles(listingMd5)}; exit $rc`,
        requires: { memtouchLines: 1, filesLine: true },
      };
    }
    default:
      throw new TmemuError("USAGE", `unknown workload "${name}"`, `use one of: ${WORKLOAD_NAMES.join(", ")}`);
  }
}

export interface WorkloadOutcome {
  /** Sum of the memtouch mismatches; null when no memtouch result line was printed (never 0 then). */
  mismatches: number | null;
  memtouchRuns: number;
  filesOk: boolean | undefined;
}

/** memtouch.c's result line (its last line; error lines have no `mismatches=`). */
const MEMTOUCH_RESULT = /^memtouch: mib=\d+ .*\bmismatches=(\d+)/gm;

export function parseWorkloadOutput(output: string): WorkloadOutcome {
  let mismatches: number | null = null;
  let memtouchRuns = 0;
  for (const m of output.matchAll(MEMTOUCH_RESULT)) {
    mismatches = (mismatches ?? 0) + Number(m[1]);
    memtouchRuns++;
  }
  const files = /^files: (ok|CORRUPT)$/m.exec(output)?.[1];
  return { mismatches, memtouchRuns, filesOk: files === undefined ? undefined : files === "ok" };
}

/**
 * How a guest's workload command ended:
 *  finished     the command returned (with an exit code)
 *  unfinished   still running (or not yet started) when a planned --duration-s stop came
 *  interrupted  still running (or not yet started) at Ctrl-C
 *  timed-out    the command did not return in time (the guest is then unusable)
 *  died         the guest went away (kernel panic, agent gone) before the command returned
 */
export type WorkloadEnd = "finished" | "unfinished" | "interrupted" | "timed-out" | "died";

export interface WorkloadRunFacts {
  end: WorkloadEnd;
  /** null unless finished. */
  exitCode: number | null;
  output: string;
  /** OOM kills the guest kernel reported during the workload (null: could not be read). */
  oomKills: number | null;
  /** Whether the command had started when the stop came (unfinished / interrupted). */
  started: boolean;
  /** The command's time limit, s (for the timeout reason). */
  timeoutS: number;
  /** Why the guest died, when it did. */
  error?: string;
}

export interface WorkloadVerdict {
  valid: boolean;
  /** Short causes, empty when valid; stop reasons first. */
  reasons: string[];
  /** Reasons other than a stop (an unfinished or interrupted guest with none of these is merely stopped). */
  problems: string[];
  parsed: WorkloadOutcome;
}

export const REASON_UNFINISHED = "unfinished at --duration-s";
export const REASON_INTERRUPTED = "interrupted";
export const REASON_NOT_STARTED = "never started";

/**
 * Whether one guest's workload counts. `requires` undefined: a --cmd, valid when it finished with
 * exit 0 (and no OOM kill). Mismatches and the file check count only from lines actually printed.
 */
export function judgeWorkload(facts: WorkloadRunFacts, requires: WorkloadRequirements | undefined): WorkloadVerdict {
  const parsed = parseWorkloadOutput(facts.output);
  const stop: string[] = [];
  const problems: string[] = [];
  switch (facts.end) {
    case "unfinished":
      stop.push(REASON_UNFINISHED);
      if (!facts.started) stop.push(REASON_NOT_STARTED);
      break;
    case "interrupted":
      stop.push(REASON_INTERRUPTED);
      if (!facts.started) stop.push(REASON_NOT_STARTED);
      break;
    case "timed-out":
      problems.push(`timed out after ${facts.timeoutS} s`);
      break;
    case "died":
      problems.push(facts.error ? `guest died (${facts.error})` : "guest died");
      break;
    case "finished":
      break;
  }
  if (facts.oomKills === null) problems.push("OOM kills could not be read");
  else if (facts.oomKills > 0) problems.push(`OOM-killed (${facts.oomKills} kill${facts.oomKills === 1 ? "" : "s"})`);
  if (facts.end === "finished") {
    if (facts.exitCode !== 0) problems.push(`exit code ${facts.exitCode}`);
    if (requires) {
      if (requires.memtouchLines > 0 && parsed.memtouchRuns === 0) problems.push("no memtouch result line");
      else if (parsed.memtouchRuns !== requires.memtouchLines) problems.push(`${parsed.memtouchRuns} memtouch result lines, expected ${requires.memtouchLines}`);
      if (requires.filesLine && parsed.filesOk === undefined) problems.push("no files: line");
    }
  }
  if (parsed.mismatches !== null && parsed.mismatches > 0) problems.push(`${parsed.mismatches} memtouch mismatches`);
  if (parsed.filesOk === false) problems.push("files CORRUPT");
  const reasons = [...stop, ...problems];
  return { valid: reasons.length === 0, reasons, problems, parsed };
}
