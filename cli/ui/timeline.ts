/**
 * The run over time: one sample per scheduler tick (every guest and the store) and the policy's
 * decisions as timestamped events with their reason. `tmemu run` records it while it runs, hands
 * each sample to the live page (--ui) and puts the whole of it in the summary JSON (`timeline`), so
 * `tmemu report` can draw the same charts later.
 *
 * Time `t` is seconds since the measurement window opened (all guests booted, baselines read). The
 * counters of a sample are deltas since that moment, as the summary's counters are (disk sectors,
 * the store's puts/gets/getHits/putsRefused/evictions per client); pages, frames and balloons are
 * levels. The last sample is taken as the window closes, at the same moment as the summary's
 * counters, so its values are the summary's.
 *
 * Pure: guests, host and store come in through small interfaces (tested with fakes).
 */
import type { DiskCounters } from "../../emulator/disks.ts";
import type { HostGuestSnapshot } from "../../hypervisor/host.ts";
import type { Decision } from "../../hypervisor/scheduler/types.ts";
import type { ClientMetricsJson, StoreMetricsJson } from "../../hypervisor/tmem/metrics.ts";

export interface TimelineGuest {
  name: string;
  /** Configured RAM, MiB. */
  ramMib: number;
  /** Frames the balloon holds now (4 KiB pages). */
  balloonPages: number;
  /** Frames the policy asked the balloon to hold. */
  balloonTargetPages: number;
  /** MemAvailable the guest last reported through the balloon, MiB (null: not yet). */
  memAvailableMib: number | null;
  /** Levels now: pages charged to the guest in the store. */
  tmemPagesEphemeral: number;
  tmemPagesPersistent: number;
  /** Deltas since the window opened. */
  tmemPuts: number;
  tmemGets: number;
  tmemGetHits: number;
  tmemPutsRefused: number;
  tmemEvictions: number;
  dataSectorsRead: number;
  swapSectorsRead: number;
  swapSectorsWritten: number;
}

export interface TimelineClient {
  name: string;
  framesInUse: number;
  pagesEphemeral: number;
  pagesPersistent: number;
}

export interface TimelinePool {
  /** The client charged for the pool (its owner). */
  owner: string;
  poolId: number;
  persistent: boolean;
  shared: boolean;
  pages: number;
  framesInUse: number;
}

export interface TimelineStore {
  budgetFrames: number;
  framesTotal: number;
  framesUsed: number;
  pagesEphemeral: number;
  pagesPersistent: number;
  /** Since the store was created (as the summary's store.evictions). */
  evictions: number;
  /** Refused puts of every client, since the store was created. */
  putsRefused: number;
  clients: TimelineClient[];
  pools: TimelinePool[];
}

export interface TimelineSample {
  /** Seconds since the window opened. */
  t: number;
  guests: TimelineGuest[];
  store: TimelineStore;
}

/** A change the policy made: a guest's balloon target or the store's budget, and why. */
export interface PolicyEvent {
  t: number;
  /** A guest's name, or "store". */
  target: string;
  /** Balloon pages (guest) or budget frames (store), before and after. */
  from: number;
  to: number;
  /** The policy's reason for a guest (GuestDecisionReason); for the store "grow" or "shrink". */
  reason: string;
}

export interface RunTimeline {
  /** What `t`, the counters and the levels mean. */
  note: string;
  samples: TimelineSample[];
  decisions: PolicyEvent[];
}

export const TIMELINE_NOTE =
  "t: seconds since the window opened; per guest tmemPuts/tmemGets/tmemGetHits/tmemPutsRefused/tmemEvictions and disk sectors are deltas since then; pages, frames, balloons and MemAvailable are levels; store.evictions and store.putsRefused count since the store was created; decisions: balloon targets (pages) and the store budget (frames) when the policy changed them";

/** What the recorder reads from one guest (cli/run.ts passes the booted guests). */
export interface TimelineGuestSource {
  name: string;
  disks: { data: DiskCounters; swap: DiskCounters };
  /** Its tmem store client, if it has the device. */
  clientId: number | undefined;
}

interface Counters {
  puts: number;
  gets: number;
  getHits: number;
  putsRefused: number;
  evictions: number;
  dataSectorsRead: number;
  swapSectorsRead: number;
  swapSectorsWritten: number;
}

function countersOf(g: TimelineGuestSource, client: ClientMetricsJson | undefined): Counters {
  return {
    puts: client?.puts ?? 0,
    gets: client?.gets ?? 0,
    getHits: client?.getHits ?? 0,
    putsRefused: client?.putsRefused ?? 0,
    evictions: client?.evictions ?? 0,
    dataSectorsRead: g.disks.data.sectorsRead,
    swapSectorsRead: g.disks.swap.sectorsRead,
    swapSectorsWritten: g.disks.swap.sectorsWritten,
  };
}

export class TimelineRecorder {
  readonly samples: TimelineSample[] = [];
  readonly decisions: PolicyEvent[] = [];
  private readonly base: Counters[];
  private readonly targets = new Map<string, number>();
  private storeBudget: number;

  /** Call as the window opens: the counters read now are the zero of every later sample. */
  constructor(
    private readonly guests: readonly TimelineGuestSource[],
    private readonly host: { snapshot(): HostGuestSnapshot[] },
    private readonly store: { metrics(): StoreMetricsJson },
  ) {
    const m = store.metrics();
    this.base = guests.map((g) => countersOf(g, clientOf(m, g.clientId)));
    this.storeBudget = m.budgetFrames;
    for (const s of host.snapshot()) this.targets.set(s.name, s.balloonTargetPages);
  }

  /** The policy's changes in `decision` as events at `t` (kept, and returned). */
  decided(t: number, decision: Decision): PolicyEvent[] {
    const events: PolicyEvent[] = [];
    for (const g of decision.guests) {
      const from = this.targets.get(g.name) ?? 0;
      if (g.balloonTargetPages !== from) events.push({ t, target: g.name, from, to: g.balloonTargetPages, reason: g.reason });
      this.targets.set(g.name, g.balloonTargetPages);
    }
    if (decision.storeBudgetFrames !== this.storeBudget) {
      events.push({ t, target: "store", from: this.storeBudget, to: decision.storeBudgetFrames, reason: decision.storeBudgetFrames < this.storeBudget ? "shrink" : "grow" });
      this.storeBudget = decision.storeBudgetFrames;
    }
    this.decisions.push(...events);
    return events;
  }

  /** Reads every guest and the store now (synchronously: nothing moves while it reads). */
  sample(t: number): TimelineSample {
    const m = this.store.metrics();
    const snaps = new Map(this.host.snapshot().map((s) => [s.name, s]));
    const names = new Map(m.clients.map((c) => [c.id, c.name]));
    const guests = this.guests.map((g, i): TimelineGuest => {
      const client = clientOf(m, g.clientId);
      const now = countersOf(g, client);
      const b = this.base[i]!;
      const s = snaps.get(g.name);
      return {
        name: g.name,
        ramMib: s?.ramMib ?? 0,
        balloonPages: s?.balloonPages ?? 0,
        balloonTargetPages: s?.balloonTargetPages ?? 0,
        memAvailableMib: s?.memAvailableMib ?? null,
        tmemPagesEphemeral: client?.pagesEphemeral ?? 0,
        tmemPagesPersistent: client?.pagesPersistent ?? 0,
        tmemPuts: now.puts - b.puts,
        tmemGets: now.gets - b.gets,
        tmemGetHits: now.getHits - b.getHits,
        tmemPutsRefused: now.putsRefused - b.putsRefused,
        tmemEvictions: now.evictions - b.evictions,
        dataSectorsRead: now.dataSectorsRead - b.dataSectorsRead,
        swapSectorsRead: now.swapSectorsRead - b.swapSectorsRead,
        swapSectorsWritten: now.swapSectorsWritten - b.swapSectorsWritten,
      };
    });
    const sample: TimelineSample = {
      t: Math.round(t * 1000) / 1000,
      guests,
      store: {
        budgetFrames: m.budgetFrames,
        framesTotal: m.framesTotal,
        framesUsed: m.framesUsed,
        pagesEphemeral: m.pagesEphemeral,
        pagesPersistent: m.pagesPersistent,
        evictions: m.evictions,
        putsRefused: m.clients.reduce((n, c) => n + c.putsRefused, 0),
        clients: m.clients.map((c) => ({ name: c.name, framesInUse: c.framesInUse, pagesEphemeral: c.pagesEphemeral, pagesPersistent: c.pagesPersistent })),
        pools: m.clients.flatMap((c) =>
          c.pools
            .filter((p) => p.owner === c.id)
            .map((p) => ({ owner: names.get(p.owner) ?? String(p.owner), poolId: p.poolId, persistent: p.persistent, shared: p.shared, pages: p.pages, framesInUse: p.framesInUse })),
        ),
      },
    };
    this.samples.push(sample);
    return sample;
  }

  toJson(): RunTimeline {
    return { note: TIMELINE_NOTE, samples: this.samples, decisions: this.decisions };
  }
}

function clientOf(m: StoreMetricsJson, clientId: number | undefined): ClientMetricsJson | undefined {
  return clientId === undefined ? undefined : m.clients.find((c) => c.id === clientId);
}
