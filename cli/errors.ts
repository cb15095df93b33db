/** How the CLI reports an error: one line of what went wrong, one of what to do, an exit code. */
import { CommanderError } from "commander";
import { TmemuError } from "../hypervisor/user-errors.ts";

export const EXIT_USAGE = 2;

export function reportError(err: unknown, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  if (err instanceof CommanderError) {
    // commander already printed its message ("error: unknown option '--x'").
    return err.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (err instanceof TmemuError) {
    write(`tmemu: ${err.message}\n`);
    if (err.hint) write(`  ${err.hint.replace(/\n/g, "\n  ")}\n`);
    return err.code === "USAGE" || err.code === "BAD_INPUT" || err.code === "MEMORY_TOO_SMALL" ? EXIT_USAGE : 1;
  }
  write(`tmemu: internal error (please report it): ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 70;
}
