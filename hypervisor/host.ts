/**
 * The memory host: several guests and one tmem store under one memory budget (MiB) — the guests'
 * RAM that is not ballooned out plus the store's frames. Once per tick it samples every guest
 * (balloon ledger, balloon statistics, tmem gauges) and the store, asks the MemoryPolicy for a
 * Decision and applies it: balloon targets, persistent allowances, the store's budget.
 *
 * Pure TypeScript: guests come in as HostedGuest (emulator/ adapts its v86 Guest to it), so the
 * host is tested with fakes. It never imports v86.
 */
import { BalloonLedger } from "./balloon/ledger.ts";
import { toBalloonStats, type BalloonStats, type VirtioBalloonStatRecord } from "./balloon/stats.ts";
import type { GuestMemory } from "./guest-memory.ts";
import type { MemoryPolicy } from "./scheduler/policy.ts";
import type { Decision, GuestSample } from "./scheduler/types.ts";
import type { TmemStore } from "./tmem/store.ts";

export interface HostedBalloon {
  setTargetPages(pages: number): void;
  listen(listener: { onInflate(pfns: number[]): void; onDeflate(pfns: number[]): void } | undefined): void;
  stats(timeoutMs?: number): Promise<VirtioBalloonStatRecord | undefined>;
}

export interface HostedGuest {
  readonly name: string;
  readonly ramMib: number;
  readonly memory: GuestMemory;
  readonly balloon: HostedBalloon | undefined;
}

interface Entry {
  guest: HostedGuest;
  clientId: number | undefined;
  weight: number;
  ledger: BalloonLedger;
  stats: BalloonStats | undefined;
  statsAtS: number | undefined;
  statsBalloonPages: number | undefined;
  balloonTargetPages: number;
}

export interface HostGuestSnapshot {
  name: string;
  ramMib: number;
  weight: number;
  balloonTargetPages: number;
  balloonPages: number;
  memAvailableMib: number | undefined;
  tmemPagesEphemeral: number;
  tmemPagesPersistent: number;
  tmemGetHits: number;
  tmemPuts: number;
}

export class MemoryHost {
  private readonly entries = new Map<string, Entry>();
  lastDecision: Decision | undefined;

  constructor(
    readonly totalBudgetMib: number,
    readonly policy: MemoryPolicy,
    readonly store: TmemStore,
  ) {}

  /** Adds a guest; `clientId` is its tmem store client, if it has the device. */
  addGuest(guest: HostedGuest, opts: { weight?: number; clientId?: number } = {}): void {
    const ledger = new BalloonLedger(guest.memory.sizeBytes);
    const entry: Entry = {
      guest,
      clientId: opts.clientId,
      weight: opts.weight ?? 1,
      ledger,
      stats: undefined,
      statsAtS: undefined,
      statsBalloonPages: undefined,
      balloonTargetPages: 0,
    };
    guest.balloon?.listen({
      onInflate: (pfns) => ledger.inflate(pfns, guest.memory),
      onDeflate: (pfns) => ledger.deflate(pfns),
    });
    this.entries.set(guest.name, entry);
  }

  removeGuest(name: string): void {
    const e = this.entries.get(name);
    if (!e) return;
    e.guest.balloon?.listen(undefined);
    this.entries.delete(name);
  }

  /** Asks every guest for fresh balloon statistics (they answer asynchronously). */
  async sampleStats(nowS: number, timeoutMs = 1000): Promise<void> {
    await Promise.all(
      [...this.entries.values()].map(async (e) => {
        const rec = await e.guest.balloon?.stats(timeoutMs);
        const s = rec ? toBalloonStats(rec) : undefined;
        if (s) {
          e.stats = s;
          e.statsAtS = nowS;
          e.statsBalloonPages = e.ledger.pages;
        }
      }),
    );
  }

  samples(): GuestSample[] {
    return [...this.entries.values()].map((e) => {
      const m = e.clientId !== undefined && this.store.hasClient(e.clientId) ? this.store.clientMetrics(e.clientId) : undefined;
      return {
        name: e.guest.name,
        ramMib: e.guest.ramMib,
        balloonPages: e.ledger.pages,
        weight: e.weight,
        ...(e.stats ? { stats: e.stats } : {}),
        ...(e.statsAtS !== undefined ? { statsAtS: e.statsAtS } : {}),
        ...(e.statsBalloonPages !== undefined ? { statsBalloonPages: e.statsBalloonPages } : {}),
        ...(m ? { tmem: { pagesEphemeral: m.pagesEphemeral, pagesPersistent: m.pagesPersistent, getHits: m.getHits, puts: m.puts } } : {}),
      };
    });
  }

  /** One scheduling step: sample, decide, apply. */
  async tick(nowS: number): Promise<Decision> {
    await this.sampleStats(nowS);
    const m = this.store.metrics();
    const decision = this.policy.decide({
      totalBudgetMib: this.totalBudgetMib,
      guests: this.samples(),
      store: {
        budgetFrames: m.budgetFrames,
        framesUsed: m.framesUsed,
        pagesPersistent: m.pagesPersistent,
        pagesEphemeral: m.pagesEphemeral,
        // compressed persistent pages hold fewer frames than pages: the store says how many
        framesPersistent: m.persistentFrames ?? m.pagesPersistent,
        framesTotal: m.framesTotal,
      },
      nowS,
    });
    this.apply(decision);
    return decision;
  }

  private apply(d: Decision): void {
    // Shrink the store before guests grow into the room it leaves; grow it after they shrank.
    const growStore = d.storeBudgetFrames > this.store.budgetFrames;
    if (!growStore) this.store.setBudgetFrames(d.storeBudgetFrames);
    for (const g of d.guests) {
      const e = this.entries.get(g.name);
      if (!e) continue;
      if (g.balloonTargetPages !== e.balloonTargetPages) {
        e.guest.balloon?.setTargetPages(g.balloonTargetPages);
        e.balloonTargetPages = g.balloonTargetPages;
      }
      if (e.clientId !== undefined && this.store.hasClient(e.clientId)) this.store.setPersistentAllowance(e.clientId, g.persistentAllowancePages);
    }
    if (growStore) this.store.setBudgetFrames(d.storeBudgetFrames);
    this.lastDecision = d;
  }

  snapshot(): HostGuestSnapshot[] {
    return [...this.entries.values()].map((e) => {
      const m = e.clientId !== undefined && this.store.hasClient(e.clientId) ? this.store.clientMetrics(e.clientId) : undefined;
      return {
        name: e.guest.name,
        ramMib: e.guest.ramMib,
        weight: e.weight,
        balloonTargetPages: e.balloonTargetPages,
        balloonPages: e.ledger.pages,
        memAvailableMib: e.stats ? Math.round(e.stats.memAvailableKib / 1024) : undefined,
        tmemPagesEphemeral: m?.pagesEphemeral ?? 0,
        tmemPagesPersistent: m?.pagesPersistent ?? 0,
        tmemGetHits: m?.getHits ?? 0,
        tmemPuts: m?.puts ?? 0,
      };
    });
  }

  ledger(name: string): BalloonLedger | undefined {
    return this.entries.get(name)?.ledger;
  }
}
