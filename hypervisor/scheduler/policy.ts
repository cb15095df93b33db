/**
 * MemoryPolicy: what a memory scheduler policy is, and the policies by name.
 *
 * A policy turns one sample of the host (every guest's configuration, balloon and statistics, and
 * the store's gauges; types.ts) into a Decision: every guest's balloon target, every guest's
 * persistent allowance in the store, and the store's budget. It only sets targets and quotas
 * (STYLE.md, item 3): the host applies them, the balloon device and the store carry them out.
 *
 * Contract of decide():
 *  - deterministic: the same sequence of inputs gives the same sequence of decisions (no clock, no
 *    randomness; time is input.nowS). A policy may keep state between decisions (selfballoon keeps
 *    the previous counters and targets), exported with its saveState();
 *  - targets are whole pages in [0, RAM - floor]; the store budget is never below the frames held by
 *    persistent pages; guest RAM not ballooned out plus the store budget never exceeds the total
 *    budget unless the inputs made it unavoidable (Decision.overBudgetFrames says by how much);
 *  - throws TmemuError for a configuration the user can fix (budget smaller than the guests' RAM,
 *    bad weights or names), BugIndicatingError for host numbers that cannot be; never throws for
 *    what a guest reports.
 *
 * Units: pages/frames of 4 KiB, MiB, seconds. Policies: `static` (static.ts, the baseline: a fixed
 * partition) and `selfballoon` (selfballoon.ts, after Xen's drivers/xen/xen-selfballoon.c).
 */

import { TmemuError } from "../user-errors.ts";
import type { GuestConfig } from "./budget.ts";
import { SelfBalloonPolicy, type SelfBalloonOptions } from "./selfballoon.ts";
import { StaticPolicy } from "./static.ts";
import type { Decision, PolicyInput } from "./types.ts";

export interface MemoryPolicy {
  readonly name: string;
  decide(input: PolicyInput): Decision;
  /**
   * The largest store budget this policy can ever decide for these guests under this total budget,
   * in frames: the slab size the host should give the store when it creates it.
   */
  maxStoreBudgetFrames(totalBudgetMib: number, guests: readonly GuestConfig[]): number;
}

export const MEMORY_POLICY_NAMES = ["static", "selfballoon"] as const;
export type MemoryPolicyName = (typeof MEMORY_POLICY_NAMES)[number];

/** A policy by name; `selfballoon` takes its options. Throws TmemuError for an unknown name. */
export function createMemoryPolicy(name: string, options: SelfBalloonOptions = {}): MemoryPolicy {
  switch (name) {
    case "static":
      return new StaticPolicy();
    case "selfballoon":
      return new SelfBalloonPolicy(options);
    default:
      throw new TmemuError(
        "USAGE",
        `unknown memory policy "${name}"`,
        `choose one of: ${MEMORY_POLICY_NAMES.join(", ")}`,
      );
  }
}
