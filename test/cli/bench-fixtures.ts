/** Synthetic RunSummary values for the tests of `tmemu bench` and `tmemu run` (no guest is booted). */
import { TmemStore } from "../../hypervisor/tmem/store.ts";
import type { GuestSummary, RunSummary } from "../../cli/run.ts";

export function guest(over: Partial<GuestSummary> = {}): GuestSummary {
  return {
    name: "g0",
    ramMib: 128,
    exitCode: 0,
    seconds: 10,
    status: "finished",
    valid: true,
    reasons: [],
    mismatches: 0,
    memtouchRuns: 1,
    filesOk: true,
    oomKills: 0,
    dataSectorsRead: 0,
    dataReadRequests: 0,
    swapSectorsRead: 0,
    swapSectorsWritten: 0,
    swapRequests: 0,
    balloonPagesEnd: 0,
    balloonPagesMax: 0,
    tmem: null,
    guestTmem: null,
    vmstat: { pswpin: 0, pswpout: 0, pgmajfault: 0, workingset_refault_file: 0, workingset_refault_anon: 0, pgpgin: 0, pgpgout: 0 },
    output: "",
    ...over,
  };
}

export function tmemCounters(over: Partial<NonNullable<GuestSummary["tmem"]>> = {}): NonNullable<GuestSummary["tmem"]> {
  return { puts: 0, gets: 0, getHits: 0, putsRefused: 0, evictions: 0, pagesEphemeral: 0, pagesPersistent: 0, ...over };
}

export function summary(guests: GuestSummary[], over: Partial<RunSummary> = {}): RunSummary {
  const secs = guests.map((g) => g.seconds).filter((s): s is number => s !== null);
  const sum = (f: (g: GuestSummary) => number) => guests.reduce((n, g) => n + f(g), 0);
  return {
    policy: "static",
    workload: "refault",
    seed: 1,
    guests,
    store: new TmemStore({ budgetFrames: 16 }).metrics(),
    budgetMib: 576,
    memoryMib: 128,
    seconds: 60,
    interrupted: false,
    stopped: "finished",
    valid: guests.every((g) => g.valid),
    reasons: guests.flatMap((g) => g.reasons.map((r) => `${g.name}: ${r}`)),
    window: { from: "workload start", to: "all workloads finished", seconds: 60, counters: "deltas", levels: "levels" },
    setup: null,
    totals: {
      dataSectorsRead: sum((g) => g.dataSectorsRead),
      swapSectorsRead: sum((g) => g.swapSectorsRead),
      swapSectorsWritten: sum((g) => g.swapSectorsWritten),
      completionS: 60,
      diskSectors: sum((g) => g.dataSectorsRead + g.swapSectorsRead + g.swapSectorsWritten),
      mismatches: sum((g) => g.mismatches ?? 0),
      oomKills: sum((g) => g.oomKills),
      slowestGuestS: secs.length === guests.length && secs.length ? Math.max(...secs) : null,
    },
    ...over,
  };
}
