/**
 * --threads on|off (run, bench): each guest's vCPU in a worker thread of its own, or every guest
 * time-sliced in the main thread (the default). The store and the memory host stay in the main
 * thread either way. Off is the default because, on the 2-core machine this was measured on, the
 * tmem-heavy built-in workloads run slower threaded (the default run: about 57 s against 37 s):
 * every hypercall needs the store's thread on a core, and 2 or 3 busy guest threads leave it none.
 * CPU-bound guests gain about 2x with two (docs/scaling.md).
 */
import { Option } from "commander";

export const THREADS_MODES = ["on", "off"] as const;
export type ThreadsMode = (typeof THREADS_MODES)[number];

export function threadsOption(): Option {
  return new Option("--threads <mode>", "each guest in a worker thread of its own (on: faster for CPU-bound workloads; tmem-heavy ones need a core per guest plus one for the store to gain; docs/scaling.md), or every guest in the main thread (off)").choices([...THREADS_MODES]).default("off");
}

/** The flag as RunOptions.threads. */
export function threadsFlag(mode: ThreadsMode | undefined): boolean {
  return mode === "on";
}
