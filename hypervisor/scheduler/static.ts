/**
 * The `static` memory policy: a fixed partition, the baseline the other policies are measured
 * against.
 *
 * What it decides:
 *  - balloon targets: 0 pages for every guest, always (balloons never move; a balloon that holds
 *    frames is deflated);
 *  - store budget: the total budget minus the guests' RAM, in frames (B - sum R_i), constant;
 *  - persistent allowance of a guest: its weighted share of the store budget (budget.ts).
 * It reads no statistics. If the guests' RAM alone exceeds the total budget it throws TmemuError
 * (MEMORY_TOO_SMALL) naming the numbers: at construction when given the configuration, else at
 * the first decision.
 *
 * Units: frames/pages of 4 KiB; MiB for the budget and RAM.
 */

import { checkGuestsFitBudget, finishDecision, mibToPages, validateInput, type GuestConfig } from "./budget.ts";
import type { MemoryPolicy } from "./policy.ts";
import type { Decision, PolicyInput } from "./types.ts";

export class StaticPolicy implements MemoryPolicy {
  readonly name = "static";

  /** With `config`, checks at once that the guests' RAM fits the budget (else TmemuError). */
  constructor(config?: { totalBudgetMib: number; guests: readonly GuestConfig[] }) {
    if (config !== undefined) checkGuestsFitBudget(config.totalBudgetMib, config.guests);
  }

  decide(input: PolicyInput): Decision {
    validateInput(input);
    return finishDecision(
      input,
      input.guests.map(() => ({ balloonTargetPages: 0, reason: "static" as const })),
    );
  }

  maxStoreBudgetFrames(totalBudgetMib: number, guests: readonly GuestConfig[]): number {
    checkGuestsFitBudget(totalBudgetMib, guests);
    return mibToPages(totalBudgetMib) - guests.reduce((sum, g) => sum + mibToPages(g.ramMib), 0);
  }
}
