/**
 * A simulated host for policy tests: guests whose kernels report balloon statistics consistent with
 * their RAM, balloon and working set, and a store whose persistent pages stay within its budget.
 *
 * Guest model (pages of 4 KiB): the kernel keeps `overheadMib` out of MemTotal; the balloon takes
 * its frames off MemTotal (Linux virtio_balloon without DEFLATE_ON_OOM); the workload uses
 * `usedMib`; everything else is available.
 *   MemTotal = R - overhead - balloon, MemAvailable = max(0, MemTotal - used).
 */

import type { BalloonStats, Decision, GuestSample, PolicyInput, StoreSample } from "../../../hypervisor/scheduler/types.ts";
import type { MemoryPolicy } from "../../../hypervisor/scheduler/policy.ts";

export const PAGES_PER_MIB = 256;

export interface SimGuest {
  name: string;
  ramMib: number;
  weight: number;
  overheadMib: number;
  usedMib: number;
  balloonPages: number;
  swapInPages: number;
  swapOutPages: number;
  majorFaults: number;
  pagesPersistent: number;
  /** Report no statistics this round. */
  silent: boolean;
}

export function simGuest(name: string, ramMib: number, init: Partial<SimGuest> = {}): SimGuest {
  return {
    name,
    ramMib,
    weight: 1,
    overheadMib: 12,
    usedMib: 40,
    balloonPages: 0,
    swapInPages: 0,
    swapOutPages: 0,
    majorFaults: 0,
    pagesPersistent: 0,
    silent: false,
    ...init,
  };
}

/** What the guest's kernel would report now, or undefined if it would report nonsense. */
export function statsOf(g: SimGuest): BalloonStats | undefined {
  const totalKib = (g.ramMib - g.overheadMib) * 1024 - g.balloonPages * 4;
  if (totalKib <= 0) return undefined;
  const availKib = Math.max(0, totalKib - Math.round(g.usedMib * 1024));
  return {
    memFreeKib: availKib,
    memAvailableKib: availKib,
    cachesKib: 0,
    memTotalKib: totalKib,
    swapInPages: g.swapInPages,
    swapOutPages: g.swapOutPages,
    majorFaults: g.majorFaults,
    minorFaults: 0,
  };
}

export function sampleOf(g: SimGuest): GuestSample {
  const stats = g.silent ? undefined : statsOf(g);
  return {
    name: g.name,
    ramMib: g.ramMib,
    balloonPages: g.balloonPages,
    weight: g.weight,
    ...(stats === undefined ? {} : { stats }),
    tmem: { pagesEphemeral: 0, pagesPersistent: g.pagesPersistent, getHits: 0, puts: 0 },
  };
}

export class SimHost {
  nowS = 0;
  storeBudgetFrames = 0;
  framesPersistent = 0;
  readonly decisions: Decision[] = [];
  /** Balloon sizes when the last decision was taken. */
  balloonsAtDecision: number[] = [];

  constructor(
    readonly policy: MemoryPolicy,
    readonly totalBudgetMib: number,
    readonly guests: SimGuest[],
    readonly intervalS = 2,
  ) {}

  input(): PolicyInput {
    const store: StoreSample = {
      budgetFrames: this.storeBudgetFrames,
      framesUsed: this.framesPersistent,
      pagesPersistent: this.framesPersistent,
      pagesEphemeral: 0,
      framesPersistent: this.framesPersistent,
    };
    return { totalBudgetMib: this.totalBudgetMib, guests: this.guests.map(sampleOf), store, nowS: this.nowS };
  }

  /** One decision; balloons then move `fraction` of the way to their targets (1: all the way). */
  step(fraction = 1): Decision {
    this.balloonsAtDecision = this.guests.map((g) => g.balloonPages);
    const d = this.policy.decide(this.input());
    this.decisions.push(d);
    this.storeBudgetFrames = d.storeBudgetFrames;
    d.guests.forEach((gd, i) => {
      const g = this.guests[i]!;
      g.balloonPages += Math.round(fraction * (gd.balloonTargetPages - g.balloonPages));
    });
    this.nowS += this.intervalS;
    return d;
  }

  guest(name: string): SimGuest {
    const g = this.guests.find((x) => x.name === name);
    if (g === undefined) throw new Error(`no guest ${name}`);
    return g;
  }
}

/**
 * Guest RAM not ballooned out, in pages: per the decision's targets, and per the balloons as they
 * were when it was taken.
 */
export function heldPages(host: SimHost, d: Decision): { byTarget: number; byBalloon: number } {
  let byTarget = 0;
  let byBalloon = 0;
  host.guests.forEach((g, i) => {
    const r = g.ramMib * PAGES_PER_MIB;
    byTarget += r - d.guests[i]!.balloonTargetPages;
    byBalloon += r - host.balloonsAtDecision[i]!;
  });
  return { byTarget, byBalloon };
}
