/**
 * Budget arithmetic shared by the memory policies: unit conversion, input validation, weighted
 * shares, and the step every policy ends with — from the guests' balloon targets to the store's
 * budget and the persistent allowances.
 *
 * The rule (DESIGN.md, the issue "one memory budget"): with B the total budget in frames, R_i a
 * guest's RAM, b_i the frames its balloon holds now and t_i its new target,
 *
 *   store budget S = B - sum_i (R_i - min(b_i, t_i))
 *
 * Memory a guest gives through its balloon becomes room for the store only once it is given
 * (min(b, t): an inflation in progress does not count yet), and memory a guest is about to take
 * back leaves the store at once (a deflation counts at its target). So both what the guests hold now
 * and what they will hold fit: sum (R_i - b_i) + S <= B and sum (R_i - t_i) + S <= B.
 *
 * The store's memory is lent, never given: its ephemeral pages go when a guest needs room (the store
 * evicts them when its budget shrinks), but its persistent pages are never dropped. So S never goes
 * below the frames persistent pages hold (P): growth of the guests (b_i - t_i > 0) is limited to the
 * room the store can give, S0 - P with S0 = B - sum (R_i - b_i), granted to bigger weights first.
 *
 * Persistent allowance of guest i = its weighted share of S (largest remainder, so they add up to S).
 *
 * Units: frames/pages of 4 KiB, MiB for configured sizes (PAGES_PER_MIB = 256).
 */

import { BugIndicatingError } from "../errors.ts";
import { PAGE_SIZE } from "../guest-memory.ts";
import { MAX_WEIGHT } from "../tmem/store.ts";
import { TmemuError } from "../user-errors.ts";
import type { Decision, GuestDecisionReason, GuestSample, PolicyInput, StoreSample } from "./types.ts";

export const PAGES_PER_MIB = (1024 * 1024) / PAGE_SIZE;

/** Whole pages in `mib` MiB (rounded down). */
export function mibToPages(mib: number): number {
  return Math.floor(mib * PAGES_PER_MIB);
}

/** `pages` in MiB, for messages. */
export function pagesToMib(pages: number): number {
  return pages / PAGES_PER_MIB;
}

/** What a policy needs to know of a guest before any sample: its configuration. */
export type GuestConfig = Pick<GuestSample, "name" | "ramMib">;

/**
 * Throws TmemuError (MEMORY_TOO_SMALL) when the guests' RAM alone exceeds the total budget: the
 * store would have a negative budget before any guest balloons anything.
 */
export function checkGuestsFitBudget(totalBudgetMib: number, guests: readonly GuestConfig[]): void {
  checkBudgetMib(totalBudgetMib);
  for (const g of guests) checkRamMib(g);
  const ramMib = guests.reduce((sum, g) => sum + g.ramMib, 0);
  if (ramMib > totalBudgetMib) {
    const list = guests.map((g) => `${g.name} ${g.ramMib}`).join(", ");
    throw new TmemuError(
      "MEMORY_TOO_SMALL",
      `memory budget ${totalBudgetMib} MiB is smaller than the guests' RAM: ${ramMib} MiB (${list}); ` +
        `the store would get ${totalBudgetMib - ramMib} MiB`,
      `raise the memory budget to at least ${ramMib} MiB, or give the guests less RAM`,
    );
  }
}

function checkBudgetMib(totalBudgetMib: number): void {
  if (!Number.isFinite(totalBudgetMib) || totalBudgetMib <= 0) {
    throw new TmemuError("BAD_INPUT", `memory budget ${totalBudgetMib} MiB is not a positive number`, "give the budget in MiB, e.g. 512");
  }
}

function checkRamMib(g: GuestConfig): void {
  if (!Number.isFinite(g.ramMib) || g.ramMib <= 0) {
    throw new TmemuError("BAD_INPUT", `guest ${g.name}: RAM ${g.ramMib} MiB is not a positive number`, "give each guest's RAM in MiB, e.g. 128");
  }
}

function isCount(v: number): boolean {
  return Number.isSafeInteger(v) && v >= 0;
}

/**
 * Checks what the host passes to a policy. Configuration a user chose (budget, RAM, names,
 * weights) -> TmemuError; host measurements that cannot be (a balloon larger than the guest, a
 * negative gauge) -> BugIndicatingError. Guest-reported hints (stats, tmem) are not checked here:
 * policies sanitise them.
 */
export function validateInput(input: PolicyInput): void {
  checkGuestsFitBudget(input.totalBudgetMib, input.guests);
  const names = new Set<string>();
  for (const g of input.guests) {
    if (g.name === "" || names.has(g.name)) {
      throw new TmemuError("BAD_INPUT", `guest name "${g.name}" is empty or used twice`, "give every guest a unique name");
    }
    names.add(g.name);
    if (!Number.isSafeInteger(g.weight) || g.weight < 0 || g.weight > MAX_WEIGHT) {
      throw new TmemuError("BAD_INPUT", `guest ${g.name}: weight ${g.weight} is out of range`, `give an integer from 0 to ${MAX_WEIGHT}`);
    }
    if (!isCount(g.balloonPages) || g.balloonPages > mibToPages(g.ramMib)) {
      throw new BugIndicatingError(`guest ${g.name}: balloon holds ${g.balloonPages} pages of ${mibToPages(g.ramMib)}`);
    }
    if (g.statsBalloonPages !== undefined && (!isCount(g.statsBalloonPages) || g.statsBalloonPages > mibToPages(g.ramMib))) {
      throw new BugIndicatingError(`guest ${g.name}: statsBalloonPages = ${g.statsBalloonPages}`);
    }
    if (g.statsAtS !== undefined && !Number.isFinite(g.statsAtS)) {
      throw new BugIndicatingError(`guest ${g.name}: statsAtS = ${g.statsAtS}`);
    }
  }
  const s = input.store;
  for (const key of ["budgetFrames", "framesUsed", "pagesPersistent", "pagesEphemeral"] as const) {
    if (!isCount(s[key])) throw new BugIndicatingError(`store sample ${key} = ${s[key]}`);
  }
  if (s.framesPersistent !== undefined && !isCount(s.framesPersistent)) {
    throw new BugIndicatingError(`store sample framesPersistent = ${s.framesPersistent}`);
  }
  if (s.framesTotal !== undefined && !isCount(s.framesTotal)) {
    throw new BugIndicatingError(`store sample framesTotal = ${s.framesTotal}`);
  }
  if (!Number.isFinite(input.nowS)) throw new BugIndicatingError(`policy input nowS = ${input.nowS}`);
}

/** Frames held by persistent pages: never evicted, so the floor of the store's budget. */
export function persistentFrames(store: StoreSample): number {
  return store.framesPersistent ?? store.pagesPersistent;
}

/**
 * Splits `total` (a non-negative integer) into integer shares proportional to `weights`, adding up
 * to `total` exactly: floor of each exact share, then one more to the largest remainders (ties: the
 * earlier index). All weights zero (or none positive): equal shares.
 */
export function weightedShares(total: number, weights: readonly number[]): number[] {
  const n = weights.length;
  if (n === 0) return [];
  const sum = weights.reduce((a, w) => a + w, 0);
  const w = sum > 0 ? weights : weights.map(() => 1);
  const wsum = sum > 0 ? sum : n;
  const shares = w.map((wi) => Math.floor((total * wi) / wsum));
  let left = total - shares.reduce((a, x) => a + x, 0);
  const order = w
    .map((wi, i) => ({ i, rem: (total * wi) % wsum }))
    .sort((a, b) => b.rem - a.rem || a.i - b.i);
  for (const { i } of order) {
    if (left <= 0) break;
    shares[i]!++;
    left--;
  }
  return shares;
}

/** A guest's proposed balloon target, before the store's constraints. */
export interface ProposedTarget {
  balloonTargetPages: number;
  reason: GuestDecisionReason;
}

/**
 * The common last step of every policy: limits the guests' growth to what the store can give
 * without dropping persistent pages, then sets the store budget and the persistent allowances (see
 * the header). `proposed` is in input order; targets are integers in [0, R_i].
 */
export function finishDecision(input: PolicyInput, proposed: readonly ProposedTarget[]): Decision {
  const guests = input.guests;
  if (proposed.length !== guests.length) {
    throw new BugIndicatingError(`policy proposed ${proposed.length} targets for ${guests.length} guests`);
  }
  const budget = mibToPages(input.totalBudgetMib);
  const ram = guests.map((g) => mibToPages(g.ramMib));
  const targets = proposed.map((p, i) => {
    const t = p.balloonTargetPages;
    if (!Number.isSafeInteger(t) || t < 0 || t > ram[i]!) {
      throw new BugIndicatingError(`policy proposed balloon target ${t} for guest ${guests[i]!.name} of ${ram[i]} pages`);
    }
    return t;
  });
  const reasons = proposed.map((p) => p.reason);
  const persistent = persistentFrames(input.store);

  // Room the store can give to growing guests without going below its persistent frames.
  const heldNow = guests.reduce((sum, g, i) => sum + ram[i]! - g.balloonPages, 0);
  let room = Math.max(0, budget - heldNow - persistent);
  const growth = guests.map((g, i) => Math.max(0, g.balloonPages - targets[i]!));
  if (growth.reduce((a, x) => a + x, 0) > room) {
    const order = guests
      .map((g, i) => ({ i, weight: g.weight, name: g.name }))
      .sort((a, b) => b.weight - a.weight || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const { i } of order) {
      const want = growth[i]!;
      if (want === 0) continue;
      const grant = Math.min(want, room);
      room -= grant;
      if (grant < want) {
        targets[i] = guests[i]!.balloonPages - grant;
        reasons[i] = "grow-limited";
      }
    }
  }

  const held = guests.reduce((sum, g, i) => sum + ram[i]! - Math.min(g.balloonPages, targets[i]!), 0);
  let store = budget - held;
  if (input.store.framesTotal !== undefined) store = Math.min(store, input.store.framesTotal);
  store = Math.max(store, persistent, 0);
  const overBudgetFrames = Math.max(0, held + store - budget);
  const allowances = weightedShares(
    store,
    guests.map((g) => g.weight),
  );
  return {
    guests: guests.map((g, i) => ({
      name: g.name,
      balloonTargetPages: targets[i]!,
      persistentAllowancePages: allowances[i]!,
      reason: reasons[i]!,
    })),
    storeBudgetFrames: store,
    overBudgetFrames,
  };
}
