/**
 * A broken invariant inside tmemu: never the user's fault and never the guest's. It says so and
 * keeps its stack (VS Code's BugIndicatingError).
 *
 * The other two kinds of error (STYLE.md, "two layers of errors"): what the user can fix is a
 * TmemuError (user-errors.ts, a stable code and a hint); what a guest does wrong is neither, but an
 * ABI error code and a counter (hypervisor/tmem).
 */
export class BugIndicatingError extends Error {
  override readonly name = "BugIndicatingError";
  constructor(message: string) {
    super(`tmemu bug: ${message}`);
  }
}
