/**
 * Errors that reach a person (STYLE.md, "two layers of errors"): something the user can fix — a
 * flag, a missing tool or image, a guest command that failed. Each carries a stable `code` for
 * scripts and a `hint` that says what to do; the CLI prints `tmemu: <message>` and the hint, and
 * exits non-zero, without a stack. Broken invariants are BugIndicatingError (errors.ts); what a
 * guest does wrong is an ABI error code and a counter (tmem/).
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
  | "BOOT_FAILED"
  | "MEMORY_TOO_SMALL"
  | "TIMEOUT"
  | "GUEST_COMMAND_FAILED"
  | "GUEST_GONE"
  | "BAD_INPUT"
  | "BAD_SNAPSHOT";

export class TmemuError extends Error {
  override readonly name = "TmemuError";
  constructor(
    readonly code: TmemuErrorCode,
    message: string,
    /** What the user should do about it. */
    readonly hint?: string,
  ) {
    super(message);
  }
}
