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
 * The file set compresses about 2:1 with LZ4, like real files (workloads/files.ts). It is verified
 * in the guest by setcheck (guest-images/programs/setcheck.c), which rebuilds every page from the
 * seed and compares it, naming each wrong page: per page, and cheaper in guest CPU than the md5sum
 * of the whole set it replaces (docs/store-compression.md, "Where a run's time goes").
 *
 * Every command prints `memtouch: ...mismatches=N...` and/or `setcheck: ... pages=P
 * mismatches=M ...` and `files: ok|CORRUPT` lines that parseWorkloadOutput reads, and `phase: NAME
 * UPTIME` stamps (parseWorkloadPhases) that say where the guest's time went. Each plan says which
 * lines its command must print (`requires`), and judgeWorkload decides whether a guest's workload
 * counts: it ran to the end (no timeout, no stop, the guest alive), exited 0, printed every required
 * line, had no OOM kill, no memtouch mismatch, and setcheck compared every page of the set and found
 * them all intact. Anything else is an invalid run, with the reasons.
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
  /** The guest's command (the file set, if any, is verified in the guest by setcheck, page by page). */
  command(guestIndex: number): string;
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
  /** A setcheck result line that compared exactly this many pages (the whole set). */
  setcheckPages?: number;
}

const readRounds = (rounds: number) => `r=0; while [ $r -lt ${rounds} ]; do cat /data/set/* > /dev/null; r=$((r+1)); done`;

/** Pages per MiB of the file set. */
const PAGES_PER_MIB = 256;

/** A shell function that prints `phase: NAME UPTIME` (seconds since the guest booted, 0.01 s steps). */
const STAMP = `stamp() { echo "phase: $1 $(cut -d' ' -f1 /proc/uptime)"; }`;

/** setcheck over the whole set: it prints the `files: ok|CORRUPT` line itself, and only at its end. */
function verifyFiles(seed: number, setMib: number, fileMib: number): string {
  return `setcheck /data/set ${seed} ${setMib * PAGES_PER_MIB} ${fileMib * PAGES_PER_MIB}`;
}

/** Read rounds, then the check, stamped; `before` runs first (stamped as its own phase when named). */
function readAndVerify(rounds: number, seed: number, setMib: number, fileMib: number): string {
  return `stamp read; ${readRounds(rounds)}; stamp verify; ${verifyFiles(seed, setMib, fileMib)}; vrc=$?; stamp end`;
}

export function planWorkload(name: string, p: WorkloadParams): WorkloadPlan {
  const ram = p.guestRamMib;
  // Half of each page random, half one repeated word: compresses about 2:1, like typical anonymous
  // memory, so zswap is compared on data it can compress.
  const mt = (mib: number, seedOffset: number, passes: number) => `memtouch ${Math.max(1, Math.round(mib))} ${p.seed + seedOffset} ${passes} 512`;
  const fileMib = 4;
  switch (name) {
    case "refault": {
      const setMib = Math.round(1.5 * ram);
      return {
        name,
        fileSetMib: setMib,
        fileMib,
        swapMib: ram,
        command: () => `${STAMP}; ${readAndVerify(3, p.seed, setMib, fileMib)}; exit $vrc`,
        requires: { memtouchLines: 0, filesLine: true, setcheckPages: setMib * PAGES_PER_MIB },
      };
    }
    case "swap":
      return { name, fileSetMib: 0, fileMib, swapMib: 2 * ram, command: (i) => mt(1.5 * ram, i, 2), requires: { memtouchLines: 1, filesLine: false } };
    case "mixed": {
      const setMib = Math.round(0.75 * ram);
      return {
        name,
        fileSetMib: setMib,
        fileMib,
        swapMib: 2 * ram,
        command: (i) =>
          `${STAMP}; ${mt(0.75 * ram, i, 2)} > /tmp/mt 2>&1 & pid=$!; ${readAndVerify(3, p.seed, setMib, fileMib)}; wait $pid; rc=$?; stamp memtouch-end; cat /tmp/mt; exit $rc`,
        requires: { memtouchLines: 1, filesLine: true, setcheckPages: setMib * PAGES_PER_MIB },
      };
    }
    case "phased": {
      const phase = p.phaseS;
      const setMib = Math.round(0.75 * ram);
      return {
        name,
        fileSetMib: setMib,
        fileMib,
        swapMib: 2 * ram,
        ...(phase === undefined ? { chained: true } : { startDelayS: (i: number) => i * phase }),
        command: (i) => `${STAMP}; stamp memtouch; ${mt(1.25 * ram, i, 2)}; rc=$?; ${readAndVerify(2, p.seed, setMib, fileMib)}; exit $rc`,
        requires: { memtouchLines: 1, filesLine: true, setcheckPages: setMib * PAGES_PER_MIB },
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
  /** setcheck's result line, when printed: pages compared and pages wrong (or missing, or extra). */
  setcheck?: { pages: number; mismatches: number };
}

/** memtouch.c's result line (its last line; error lines have no `mismatches=`). */
const MEMTOUCH_RESULT = /^memtouch: mib=\d+ .*\bmismatches=(\d+)/gm;
/** setcheck.c's result line. */
const SETCHECK_RESULT = /^setcheck: files=\d+ pages=(\d+) mismatches=(\d+) /m;

export function parseWorkloadOutput(output: string): WorkloadOutcome {
  let mismatches: number | null = null;
  let memtouchRuns = 0;
  for (const m of output.matchAll(MEMTOUCH_RESULT)) {
    mismatches = (mismatches ?? 0) + Number(m[1]);
    memtouchRuns++;
  }
  const files = /^files: (ok|CORRUPT)$/m.exec(output)?.[1];
  const sc = SETCHECK_RESULT.exec(output);
  return {
    mismatches,
    memtouchRuns,
    filesOk: files === undefined ? undefined : files === "ok",
    ...(sc ? { setcheck: { pages: Number(sc[1]), mismatches: Number(sc[2]) } } : {}),
  };
}

/** One phase of a guest's workload: from its `phase:` stamp to the next one, s. */
export interface WorkloadPhase {
  name: string;
  seconds: number;
}

/**
 * The phases a workload's `phase: NAME UPTIME` stamps mark, in order: each lasts until the next
 * stamp (the last stamp, "end", only closes the one before it).
 */
export function parseWorkloadPhases(output: string): WorkloadPhase[] {
  const stamps = [...output.matchAll(/^phase: (\S+) (\d+(?:\.\d+)?)$/gm)].map((m) => ({ name: m[1]!, t: Number(m[2]) }));
  return stamps.slice(0, -1).map((s, i) => ({ name: s.name, seconds: Math.round((stamps[i + 1]!.t - s.t) * 100) / 100 }));
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
      if (requires.setcheckPages !== undefined) {
        if (!parsed.setcheck) problems.push("no setcheck result line");
        else if (parsed.setcheck.pages !== requires.setcheckPages) problems.push(`setcheck compared ${parsed.setcheck.pages} of ${requires.setcheckPages} pages`);
      }
    }
  }
  if (parsed.mismatches !== null && parsed.mismatches > 0) problems.push(`${parsed.mismatches} memtouch mismatches`);
  if (parsed.setcheck && parsed.setcheck.mismatches > 0) problems.push(`${parsed.setcheck.mismatches} file-set pages wrong`);
  if (parsed.filesOk === false) problems.push("files CORRUPT");
  const reasons = [...stop, ...problems];
  return { valid: reasons.length === 0, reasons, problems, parsed };
}
