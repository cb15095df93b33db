/**
 * What the memory scheduler reads and what it decides.
 *
 * The host owns N guests and one tmem store under one memory budget (MiB): the guests' RAM that is
 * not ballooned out plus the store's frames. Once per interval it samples every guest (its
 * configured RAM, the frames its balloon holds, the balloon statistics the guest last reported, its
 * tmem gauges) and the store, asks a MemoryPolicy for a Decision, and applies it: each guest's
 * balloon target (virtio-balloon num_pages), each guest's persistent allowance in the store
 * (TmemStore.setPersistentAllowance) and the store's budget (TmemStore.setBudgetFrames).
 *
 * Units: pages and frames are 4 KiB (PAGE_SIZE; a balloon page is one guest frame, a store frame
 * holds one page); MiB for configured sizes (1 MiB = 256 pages); KiB where virtio-balloon stats are
 * converted (balloon/stats.ts); seconds for time (nowS, host clock, only ever compared).
 *
 * Guest-reported numbers (stats, tmem) are hints: a policy never trusts them for anything that
 * could hurt another guest or the store, and a policy never throws because of them. Host-side
 * numbers (ramMib, weight, balloonPages, the store sample) are facts; a policy throws TmemuError
 * for a configuration a user can fix and BugIndicatingError for host numbers that cannot be.
 *
 * Sources: virtio spec 1.2, 5.5.6.3 "Memory Statistics Tags" (what `stats` carries); Xen's
 * drivers/xen/xen-selfballoon.c (the selfballoon policy) and common/tmem.c (client weights and
 * persistent page allowances).
 */

import type { BalloonStats } from "../balloon/stats.ts";

export type { BalloonStats } from "../balloon/stats.ts";

/** Per-guest tmem gauges and counters, from TmemStore.clientMetrics (hints for the policy). */
export interface GuestTmemSample {
  /** Ephemeral pages charged to the guest now (cleancache). */
  pagesEphemeral: number;
  /** Persistent pages charged to the guest now (frontswap): its anonymous memory living in the store. */
  pagesPersistent: number;
  /** Gets answered with a hit, cumulative. */
  getHits: number;
  /** Puts, cumulative. */
  puts: number;
}

export interface GuestSample {
  /** Unique among the guests of one host. */
  name: string;
  /** Configured guest RAM (v86 memory_size), MiB. */
  ramMib: number;
  /** Frames ballooned out now, from the guest's BalloonLedger (a host fact). */
  balloonPages: number;
  /** Relative share (integer, 0..1_000_000 as in the store); bigger keeps more. */
  weight: number;
  /** The guest's last balloon statistics; missing until the guest has reported once. */
  stats?: BalloonStats;
  /**
   * When the guest produced `stats` (host seconds). A sample whose statsAtS is not newer than the
   * previous one the policy saw is stale: treated as no stats at all. Missing: always fresh.
   */
  statsAtS?: number;
  /** Frames ballooned out when the guest produced `stats`; default balloonPages. */
  statsBalloonPages?: number;
  /** The guest's tmem gauges, if it is a store client. */
  tmem?: GuestTmemSample;
}

export interface StoreSample {
  /** The store's budget now (TmemStore.budgetFrames). */
  budgetFrames: number;
  /** Frames in use now. */
  framesUsed: number;
  /** Persistent pages now (frame-backed and same-filled). */
  pagesPersistent: number;
  /** Ephemeral pages now. */
  pagesEphemeral: number;
  /**
   * Frames that persistent pages hold (never evicted; the store refuses a budget below them).
   * Default: pagesPersistent, an upper bound.
   */
  framesPersistent?: number;
  /** Frames in the store's slab: the largest budget it accepts. Default: no cap. */
  framesTotal?: number;
}

export interface PolicyInput {
  /** Memory for everything, MiB: guest RAM not ballooned out + store frames. */
  totalBudgetMib: number;
  guests: readonly GuestSample[];
  store: StoreSample;
  /** Host clock, seconds; only differences matter. */
  nowS: number;
}

/** Why a guest's balloon target is what it is (for logs and tests). */
export type GuestDecisionReason =
  /** Static partition: balloons stay deflated. */
  | "static"
  /** No fresh statistics: the target does not move. */
  | "no-stats"
  /** First statistics of this guest: counters recorded, nothing shrinks yet. */
  | "baseline"
  /** Shrinking toward active + reserve. */
  | "shrink"
  /** Within the hysteresis band of the goal, or held off after pressure: no move. */
  | "hold"
  /** Swapping, faulting or short of its reserve: deflated by a large step. */
  | "grow"
  /** A previous target asked for more than the guest now needs to give: lowered to the goal. */
  | "ease"
  /** Would have grown, but persistent pages in the store left no room for all of it. */
  | "grow-limited";

export interface GuestDecision {
  name: string;
  /** Frames the guest's balloon should hold (virtio-balloon num_pages); 0 = fully deflated. */
  balloonTargetPages: number;
  /** Cap on the guest's persistent pages in the store (TmemStore.setPersistentAllowance). */
  persistentAllowancePages: number;
  reason: GuestDecisionReason;
}

export interface Decision {
  /** One per input guest, in input order. */
  guests: GuestDecision[];
  /** The store's budget (TmemStore.setBudgetFrames); never below the frames persistent pages hold. */
  storeBudgetFrames: number;
  /**
   * Frames by which guest RAM not ballooned out plus the store budget exceed the total budget, when
   * the inputs left no way to avoid it (a guest took its balloon back unasked, or persistent pages
   * hold more than the budget allows); 0 otherwise.
   */
  overBudgetFrames: number;
}
