/**
 * --threads on|off (run, bench): each guest's vCPU in a worker thread of its own (the default), or
 * every guest time-sliced in the main thread (the single-thread comparison). The store and the
 * memory host stay in the main thread either way (docs/scaling.md).
 */
import { Option } from "commander";

export const THREADS_MODES = ["on", "off"] as const;
export type ThreadsMode = (typeof THREADS_MODES)[number];

export function threadsOption(): Option {
  return new Option("--threads <mode>", "each guest in a worker thread of its own (on), or every guest in the main thread (off)").choices([...THREADS_MODES]).default("on");
}

/** The flag as RunOptions.threads. */
export function threadsFlag(mode: ThreadsMode | undefined): boolean {
  return mode !== "off";
}
