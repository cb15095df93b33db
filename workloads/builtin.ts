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
 * parseWorkloadOutput reads; a workload "fails" only if its data came back wrong.
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
      };
    case "swap":
      return { name, fileSetMib: 0, fileMib: 4, swapMib: 2 * ram, command: (i) => mt(1.5 * ram, i, 2) };
    case "mixed":
      return {
        name,
        fileSetMib: Math.round(0.75 * ram),
        fileMib: 4,
        swapMib: 2 * ram,
        command: (i, listingMd5) =>
          `${mt(0.75 * ram, i, 2)} > /tmp/mt 2>&1 & pid=$!; ${readRounds(3)}; wait $pid; rc=$?; cat /tmp/mt; ${verifyFiles(listingMd5)}; exit $rc`,
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
      };
    }
    default:
      throw new TmemuError("USAGE", `unknown workload "${name}"`, `use one of: ${WORKLOAD_NAMES.join(", ")}`);
  }
}

export interface WorkloadOutcome {
  /** Sum of memtouch mismatches (0 when none ran). */
  mismatches: number;
  memtouchRuns: number;
  filesOk: boolean | undefined;
}

export function parseWorkloadOutput(output: string): WorkloadOutcome {
  let mismatches = 0;
  let memtouchRuns = 0;
  for (const m of output.matchAll(/memtouch: .*mismatches=(\d+)/g)) {
    mismatches += Number(m[1]);
    memtouchRuns++;
  }
  const files = /files: (ok|CORRUPT)/.exec(output)?.[1];
  return { mismatches, memtouchRuns, filesOk: files === undefined ? undefined : files === "ok" };
}
