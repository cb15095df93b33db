/**
 * How long a guest's vCPU waits on its port traps (its hypercalls), as the guest's own thread sees
 * it: from the trap to the return into the guest. In one thread that is the handler's time; for a
 * guest in a worker thread it includes the crossing to the main thread and back
 * (trap-channel.ts), so the same numbers compare `--threads on` and `off` within one workload.
 *
 * One trap in SAMPLE_EVERY is timed (two clock reads), so the cost is a counter increment on the
 * others. Times go into a histogram of geometric buckets, BUCKETS_PER_OCTAVE per doubling from
 * FIRST_EDGE_US up; a percentile is reported as its bucket's upper edge (within 19%), the mean
 * exactly. Counts are cumulative; a window is the difference of two snapshots.
 *
 * No node: imports, so it runs in the guest's worker and in the main thread alike.
 */

export const SAMPLE_EVERY = 16;
const BUCKETS_PER_OCTAVE = 4;
const FIRST_EDGE_US = 0.25;
/** Bucket 0: under FIRST_EDGE_US; the last: FIRST_EDGE_US * 2^22 (about 1 s) and over. */
export const TRAP_WAIT_BUCKETS = 22 * BUCKETS_PER_OCTAVE + 2;

/** Cumulative counts of one guest's traps (plain data: crosses threads in the worker's status). */
export interface TrapWaitCounts {
  traps: number;
  timed: number;
  /** Sum of the timed traps' waits, µs. */
  sumUs: number;
  buckets: number[];
}

/** One window of TrapWaitCounts, as the run summary reports it. */
export interface TrapWaitSummary {
  traps: number;
  /** Traps timed (one in SAMPLE_EVERY). */
  timed: number;
  meanUs: number;
  /** Upper edges of the buckets holding the median, the 90th and the 99th percentile. */
  p50Us: number;
  p90Us: number;
  p99Us: number;
}

/** No trap yet (a guest whose worker has not reported, or a status from before the timer). */
export function emptyTrapWait(): TrapWaitCounts {
  return { traps: 0, timed: 0, sumUs: 0, buckets: [] };
}

/** The upper edge of bucket `i`, µs. */
export function bucketUpperUs(i: number): number {
  return FIRST_EDGE_US * 2 ** (i / BUCKETS_PER_OCTAVE);
}

export function bucketOf(us: number): number {
  if (!(us >= FIRST_EDGE_US)) return 0;
  return Math.min(TRAP_WAIT_BUCKETS - 1, Math.floor(BUCKETS_PER_OCTAVE * Math.log2(us / FIRST_EDGE_US)) + 1);
}

export class TrapTimer {
  private traps = 0;
  private timed = 0;
  private sumUs = 0;
  private readonly buckets = new Array<number>(TRAP_WAIT_BUCKETS).fill(0);

  /** Runs `trap` (one port trap, start to finish), timing one call in SAMPLE_EVERY. */
  run(trap: () => void): void {
    if (++this.traps % SAMPLE_EVERY !== 0) {
      trap();
      return;
    }
    const t0 = performance.now();
    try {
      trap();
    } finally {
      this.record((performance.now() - t0) * 1000);
    }
  }

  /** @internal run's sample, and tests. */
  record(us: number): void {
    this.timed++;
    this.sumUs += us;
    const b = bucketOf(us);
    this.buckets[b] = (this.buckets[b] ?? 0) + 1;
  }

  counts(): TrapWaitCounts {
    return { traps: this.traps, timed: this.timed, sumUs: this.sumUs, buckets: this.buckets.slice() };
  }
}

/** The traps between two snapshots; undefined when none was timed in between. */
export function trapWaitBetween(from: TrapWaitCounts | undefined, to: TrapWaitCounts): TrapWaitSummary | undefined {
  const buckets = to.buckets.map((n, i) => n - (from?.buckets[i] ?? 0));
  const timed = to.timed - (from?.timed ?? 0);
  if (timed <= 0) return undefined;
  const percentile = (q: number): number => {
    const rank = Math.ceil(q * timed);
    let seen = 0;
    for (let i = 0; i < buckets.length; i++) {
      seen += buckets[i] ?? 0;
      if (seen >= rank) return bucketUpperUs(i);
    }
    return bucketUpperUs(buckets.length - 1);
  };
  return {
    traps: to.traps - (from?.traps ?? 0),
    timed,
    meanUs: (to.sumUs - (from?.sumUs ?? 0)) / timed,
    p50Us: percentile(0.5),
    p90Us: percentile(0.9),
    p99Us: percentile(0.99),
  };
}
