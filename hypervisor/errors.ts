/**
 * The two kinds of error that reach a person (STYLE.md, "two layers of errors").
 *
 * - TmemuError: something the user can fix (a flag, a missing tool or image, a guest command that
 *   failed). It carries a stable `code` for scripts and a `hint` that says what to do; the CLI
 *   prints `tmemu: <message>` and the hint on one line each and exits non-zero, without a stack.
 * - BugIndicatingError: a broken invariant inside tmemu. It is never the user's fault and never the
 *   guest's: it says so, and it keeps its stack.
 *
 * What a *guest* does wrong is neither: it becomes an ABI error code and a counter (hypervisor/tmem).
 */

export type TmemuErrorCode =
  | "USAGE"
  | "MISSING_TOOL"
  | "NOT_ROOT"
  | "PACKAGE_UNAVAILABLE"
  | "PATCH_FAILED"
  | "CONFIG_DROPPED"
  | "BUILD_FAILED"
  | "IMAGE_MISSING"
  | "MEMORY_TOO_SMALL"
  | "BOOT_FAILED"
  | "TIMEOUT"
  | "GUEST_COMMAND_FAILED"
  | "GUEST_GONE"
  | "BAD_INPUT";

export class TmemuError extends Error {
  override readonly name = "TmemuError";
  constructor(
    readonly code: TmemuErrorCode,
    message: string,
    /** What the user should do about it, one sentence. */
    readonly hint?: string,
    /** Exit code the CLI uses for this error; defaults to 1. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export class BugIndicatingError extends Error {
  override readonly name = "BugIndicatingError";
  constructor(message: string) {
    super(`tmemu bug: ${message}`);
  }
}
