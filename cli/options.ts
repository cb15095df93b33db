/** Parsing and checking of numeric CLI options, with errors that say what is accepted. */
import { TmemuError } from "../hypervisor/user-errors.ts";

export function intOption(flag: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    if (!/^\d+$/.test(value.trim())) throw new TmemuError("USAGE", `${flag} takes a whole number, got "${value}"`, `for example ${flag} ${min}`);
    const n = Number.parseInt(value, 10);
    if (n < min || n > max) throw new TmemuError("USAGE", `${flag} must be between ${min} and ${max}, got ${n}`, `pick a value in ${min}..${max}`);
    return n;
  };
}
