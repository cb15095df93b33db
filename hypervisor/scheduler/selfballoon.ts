/**
 * The `selfballoon` memory policy, in the spirit of Xen's self-ballooning (Linux
 * drivers/xen/xen-selfballoon.c, Dan Magenheimer, 2009-2011): shrink each guest toward what it
 * actively uses plus a reserve, slowly and with hysteresis; give memory back quickly when it is
 * short; never below a floor. Memory the guests give becomes room for the tmem store, where their
 * evicted clean pages (cleancache) and swapped pages (frontswap) can live.
 *
 * Xen's driver runs inside the guest and aims its balloon at goal = Committed_AS + reserve, moving
 * 1/downhysteresis (default 8) of the distance down per interval and all of it up. Here the policy
 * runs in the host and sees the guest only through virtio-balloon statistics (virtio spec 1.2,
 * 5.5.6.3; balloon/stats.ts), which are hints: missing, late or wrong. So:
 *
 * Per guest, each decision (R its RAM, b the frames its balloon holds now, pages of 4 KiB):
 *  - floor F = floorMib(R) (default max(48 MiB, 40% of R)), so the largest balloon is R - F;
 *  - reserve r = reserveMib(R) (default max(16 MiB, 10% of R)), times the guest's relative weight if
 *    that is above 1 (relative weight = weight * N / sum of weights);
 *  - active memory A = (R - bs) - MemAvailable, bs being the balloon when the guest took the stats:
 *    MemTotal - MemAvailable ("Committed-ish") plus what the kernel keeps out of MemTotal; the goal
 *    is the balloon that leaves the guest A + r, i.e. goal = clamp(bs + MemAvailable - r, 0, R - F);
 *  - pressure = the guest swapped in or out, had >= growMajorFaults major faults, or grew its
 *    persistent (frontswap) pages in the store since the previous sample, or MemAvailable < r.
 *    Under pressure the balloon is deflated at once by at least growStepMib (default max(32 MiB,
 *    25% of R)) and to the goal if that is lower: target = max(0, min(goal, b - growStep, current));
 *    no shrinking for holdoffS (default 10 s) afterwards;
 *  - without pressure, a goal above the current target by more than bandMib (default max(4 MiB, 5%
 *    of R)) is approached by ceil(distance / downHysteresis) (default 8, Xen's), at most
 *    shrinkStepMib (default max(4 MiB, R/8)) per decision, divided by the relative weight if that is
 *    above 1: a guest with a bigger weight gives later and keeps more. Within the band: no move
 *    (hysteresis). A goal below the current target lowers it to the goal ("ease");
 *  - a target never runs more than one shrink step ahead of what the balloon holds (b + step), so a
 *    guest that cannot inflate (or rebooted with an empty balloon) is not asked for ever more;
 *  - the first statistics of a guest (and the first after its counters went backwards: a reboot) are
 *    a baseline: counters are recorded, nothing shrinks; no or stale statistics: no change.
 * Then budget.ts: the store gets B - sum (R - min(b, target)), never less than the frames of
 * persistent pages (growth is cut back instead, bigger weights first); persistent allowances are
 * weighted shares of the store budget.
 *
 * A guest is never driven into an OOM kill by the balloon: it keeps at least its floor and, as far as
 * the hints tell, its reserve; it only shrinks while it shows no pressure, and gets memory back as
 * soon as it does. (Linux's virtio_balloon allocates balloon pages with __GFP_NORETRY, so inflation
 * itself never invokes the OOM killer; the danger is memory the guest needs later, hence the
 * reserve, the floor and the fast growth.)
 *
 * Deterministic: state (previous counters, targets, last pressure time) lives in the policy and is
 * a function of the inputs seen; saveState() / the constructor round-trip it. Units: pages/frames of
 * 4 KiB, MiB, seconds.
 */

import { PAGE_SIZE } from "../guest-memory.ts";
import { TmemuError } from "../user-errors.ts";
import {
  checkGuestsFitBudget,
  finishDecision,
  mibToPages,
  PAGES_PER_MIB,
  validateInput,
  type GuestConfig,
  type ProposedTarget,
} from "./budget.ts";
import type { MemoryPolicy } from "./policy.ts";
import type { BalloonStats, Decision, GuestSample, PolicyInput } from "./types.ts";

const KIB_PER_PAGE = PAGE_SIZE / 1024;

/** A size in MiB, fixed or a function of the guest's RAM in MiB. */
export type MibOption = number | ((ramMib: number) => number);

export interface SelfBalloonOptions {
  /** Least RAM a guest keeps (MiB). Default max(48, 40% of RAM). */
  floorMib?: MibOption;
  /** Memory a guest keeps available beyond what it uses (MiB). Default max(16, 10% of RAM). */
  reserveMib?: MibOption;
  /** Most a guest shrinks in one decision (MiB). Default max(4, RAM / 8). */
  shrinkStepMib?: MibOption;
  /** A guest shrinks by 1/downHysteresis of its distance to the goal per decision. Default 8 (Xen). */
  downHysteresis?: number;
  /** No shrinking while the goal is within this much of the current target (MiB). Default max(4, 5% of RAM). */
  bandMib?: MibOption;
  /** Least a guest under pressure grows by in one decision (MiB). Default max(32, 25% of RAM). */
  growStepMib?: MibOption;
  /** No shrinking for this long after a guest showed pressure (s). Default 10. */
  holdoffS?: number;
  /** Major faults between two samples that count as pressure. Default 1 (any). */
  growMajorFaults?: number;
}

export const SELFBALLOON_DEFAULTS = {
  floorMib: (ramMib: number): number => Math.max(48, 0.4 * ramMib),
  reserveMib: (ramMib: number): number => Math.max(16, 0.1 * ramMib),
  shrinkStepMib: (ramMib: number): number => Math.max(4, ramMib / 8),
  downHysteresis: 8,
  bandMib: (ramMib: number): number => Math.max(4, 0.05 * ramMib),
  growStepMib: (ramMib: number): number => Math.max(32, 0.25 * ramMib),
  holdoffS: 10,
  growMajorFaults: 1,
} as const satisfies Required<SelfBalloonOptions>;

/** The parameters of one guest, in pages, before its weight is applied. */
export interface SelfBalloonParameters {
  ramPages: number;
  floorPages: number;
  /** ramPages - floorPages. */
  maxBalloonPages: number;
  reservePages: number;
  shrinkStepPages: number;
  bandPages: number;
  growStepPages: number;
}

/** Cumulative counters of a guest at its last fresh sample. */
export interface SelfBalloonCounters {
  swapInPages: number;
  swapOutPages: number;
  majorFaults: number;
  /** Its persistent pages in the store; null when it had no tmem sample. */
  pagesPersistent: number | null;
}

export interface SelfBalloonGuestState {
  name: string;
  /** The target of the previous decision; null before the first. */
  lastTargetPages: number | null;
  /** statsAtS of the last fresh sample; null if none had one. */
  lastStatsAtS: number | null;
  /** Counters of the last fresh sample; null before the first. */
  counters: SelfBalloonCounters | null;
  /** When the guest last showed pressure; null if never. */
  lastPressureS: number | null;
}

/** Saved state (STYLE.md, item 7). */
export interface SelfBalloonState {
  version: 1;
  guests: SelfBalloonGuestState[];
}

function badOption(name: string, value: unknown, want: string): TmemuError {
  return new TmemuError("BAD_INPUT", `selfballoon: option ${name} = ${String(value)} is out of range`, `give ${want}`);
}

function checkNumber(name: string, value: number, min: number, integer = false): number {
  if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw badOption(name, value, `${integer ? "an integer" : "a number"} of at least ${min}`);
  }
  return value;
}

function resolveMib(name: string, option: MibOption, ramMib: number, min: number): number {
  const value = typeof option === "number" ? option : option(ramMib);
  return checkNumber(typeof option === "number" ? name : `${name}(${ramMib})`, value, min);
}

/** Counters of a sample, or undefined if one of them is not a count (treated as no stats). */
function sampleCounters(stats: BalloonStats, g: GuestSample): SelfBalloonCounters | undefined {
  const { swapInPages, swapOutPages, majorFaults } = stats;
  for (const v of [swapInPages, swapOutPages, majorFaults]) if (!Number.isSafeInteger(v) || v < 0) return undefined;
  const p = g.tmem?.pagesPersistent;
  const pagesPersistent = p !== undefined && Number.isSafeInteger(p) && p >= 0 ? p : null;
  return { swapInPages, swapOutPages, majorFaults, pagesPersistent };
}

/** MemAvailable in pages, or undefined if the gauges do not fit together or with the guest's RAM. */
function availablePages(stats: BalloonStats, ramMib: number): number | undefined {
  const { memAvailableKib: avail, memTotalKib: total, memFreeKib: free } = stats;
  for (const v of [avail, total, free]) if (!Number.isFinite(v) || v < 0) return undefined;
  if (total === 0 || avail > total || free > total || total > ramMib * 1024) return undefined;
  return Math.floor(avail / KIB_PER_PAGE);
}

export class SelfBalloonPolicy implements MemoryPolicy {
  readonly name = "selfballoon";
  private readonly options: Required<SelfBalloonOptions>;
  private readonly state = new Map<string, SelfBalloonGuestState>();

  constructor(options: SelfBalloonOptions = {}, state?: SelfBalloonState) {
    const o: Required<SelfBalloonOptions> = { ...SELFBALLOON_DEFAULTS, ...options };
    checkNumber("downHysteresis", o.downHysteresis, 1);
    checkNumber("holdoffS", o.holdoffS, 0);
    checkNumber("growMajorFaults", o.growMajorFaults, 1, true);
    for (const key of ["floorMib", "reserveMib", "shrinkStepMib", "bandMib", "growStepMib"] as const) {
      const v = o[key];
      if (typeof v === "number") checkNumber(key, v, key === "shrinkStepMib" || key === "growStepMib" ? 1 / PAGES_PER_MIB : 0);
    }
    this.options = o;
    if (state !== undefined) this.restore(state);
  }

  /** A guest's parameters in pages (weight not applied). Throws TmemuError for bad options. */
  parameters(ramMib: number): SelfBalloonParameters {
    const o = this.options;
    const ramPages = mibToPages(ramMib);
    const pages = (name: string, option: MibOption, min: number): number =>
      Math.min(ramPages, Math.ceil(resolveMib(name, option, ramMib, min) * PAGES_PER_MIB));
    const floorPages = pages("floorMib", o.floorMib, 0);
    return {
      ramPages,
      floorPages,
      maxBalloonPages: ramPages - floorPages,
      reservePages: pages("reserveMib", o.reserveMib, 0),
      shrinkStepPages: Math.max(1, pages("shrinkStepMib", o.shrinkStepMib, 0)),
      bandPages: pages("bandMib", o.bandMib, 0),
      growStepPages: Math.max(1, pages("growStepMib", o.growStepMib, 0)),
    };
  }

  maxStoreBudgetFrames(totalBudgetMib: number, guests: readonly GuestConfig[]): number {
    checkGuestsFitBudget(totalBudgetMib, guests);
    return mibToPages(totalBudgetMib) - guests.reduce((sum, g) => sum + this.parameters(g.ramMib).floorPages, 0);
  }

  decide(input: PolicyInput): Decision {
    validateInput(input);
    const guests = input.guests;
    const weightSum = guests.reduce((sum, g) => sum + g.weight, 0);
    const proposed = guests.map((g) =>
      this.propose(g, input.nowS, weightSum > 0 ? (g.weight * guests.length) / weightSum : 1),
    );
    const decision = finishDecision(input, proposed);

    const present = new Set(guests.map((g) => g.name));
    for (const name of [...this.state.keys()]) if (!present.has(name)) this.state.delete(name);
    decision.guests.forEach((d) => {
      this.guestState(d.name).lastTargetPages = d.balloonTargetPages;
    });
    return decision;
  }

  saveState(): SelfBalloonState {
    return {
      version: 1,
      guests: [...this.state.values()].map((s) => ({
        ...s,
        counters: s.counters === null ? null : { ...s.counters },
      })),
    };
  }

  private restore(state: SelfBalloonState): void {
    if (state.version !== 1) {
      throw new TmemuError("BAD_INPUT", `selfballoon: saved state version ${String(state.version)} is not 1`, "restore from an unmodified snapshot");
    }
    const finiteOrNull = (v: number | null): boolean => v === null || Number.isFinite(v);
    for (const s of state.guests) {
      const c = s.counters;
      const ok =
        typeof s.name === "string" &&
        !this.state.has(s.name) &&
        finiteOrNull(s.lastTargetPages) &&
        finiteOrNull(s.lastStatsAtS) &&
        finiteOrNull(s.lastPressureS) &&
        (c === null ||
          ([c.swapInPages, c.swapOutPages, c.majorFaults].every(Number.isFinite) && finiteOrNull(c.pagesPersistent)));
      if (!ok) {
        throw new TmemuError("BAD_INPUT", `selfballoon: saved state of guest "${String(s.name)}" is invalid`, "restore from an unmodified snapshot");
      }
      this.state.set(s.name, { ...s, counters: c === null ? null : { ...c } });
    }
  }

  private guestState(name: string): SelfBalloonGuestState {
    let s = this.state.get(name);
    if (s === undefined) {
      s = { name, lastTargetPages: null, lastStatsAtS: null, counters: null, lastPressureS: null };
      this.state.set(name, s);
    }
    return s;
  }

  /** The target for one guest (before the store's constraints); updates its sample state. */
  private propose(g: GuestSample, nowS: number, relativeWeight: number): ProposedTarget {
    const p = this.parameters(g.ramMib);
    const s = this.guestState(g.name);
    const b = g.balloonPages;
    const keep = Math.max(1, relativeWeight);
    const step = Math.max(1, Math.floor(p.shrinkStepPages / keep));
    const reserve = Math.min(p.ramPages, Math.ceil(p.reservePages * keep));
    const clampTarget = (t: number): number => Math.max(0, Math.min(p.maxBalloonPages, b + step, Math.floor(t)));
    const current = clampTarget(s.lastTargetPages ?? b);
    const result = (t: number, reason: ProposedTarget["reason"]): ProposedTarget => ({
      balloonTargetPages: clampTarget(t),
      reason,
    });

    // Fresh, sane statistics, or no change.
    const stats = g.stats;
    const fresh =
      stats !== undefined &&
      (g.statsAtS === undefined || s.lastStatsAtS === null || g.statsAtS > s.lastStatsAtS);
    const avail = stats === undefined ? undefined : availablePages(stats, g.ramMib);
    const counters = stats === undefined ? undefined : sampleCounters(stats, g);
    if (!fresh || avail === undefined || counters === undefined) return result(current, "no-stats");
    if (g.statsAtS !== undefined) s.lastStatsAtS = g.statsAtS;

    const prev = s.counters;
    s.counters = counters;
    const bs = Math.max(0, Math.min(p.ramPages, g.statsBalloonPages ?? b));
    const goal = Math.max(0, Math.min(p.maxBalloonPages, bs + avail - reserve));

    const rebooted =
      prev !== null &&
      (counters.swapInPages < prev.swapInPages ||
        counters.swapOutPages < prev.swapOutPages ||
        counters.majorFaults < prev.majorFaults);
    const baseline = prev === null || rebooted;
    let swapped = false;
    let faults = 0;
    let frontswapGrew = false;
    if (!baseline) {
      swapped = counters.swapInPages > prev.swapInPages || counters.swapOutPages > prev.swapOutPages;
      faults = counters.majorFaults - prev.majorFaults;
      frontswapGrew =
        counters.pagesPersistent !== null &&
        prev.pagesPersistent !== null &&
        counters.pagesPersistent > prev.pagesPersistent;
    }
    const pressure = swapped || faults >= this.options.growMajorFaults || frontswapGrew || avail < reserve;

    if (pressure) {
      s.lastPressureS = nowS;
      return result(Math.min(goal, b - p.growStepPages, current), "grow");
    }
    if (baseline) return result(Math.min(current, goal), current > goal ? "ease" : "baseline");
    if (goal < current) return result(goal, "ease");
    const heldOff = s.lastPressureS !== null && nowS - s.lastPressureS < this.options.holdoffS;
    if (heldOff || faults > 0 || goal - current <= p.bandPages) return result(current, "hold");
    const inc = Math.min(step, Math.ceil((goal - current) / this.options.downHysteresis));
    const t = clampTarget(Math.min(goal, current + inc));
    return result(t, t > current ? "shrink" : "hold");
  }
}
