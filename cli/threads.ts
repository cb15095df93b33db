/**
 * --threads on|off (run, bench): each guest's vCPU in a worker thread of its own, or every guest
 * time-sliced in the main thread (the default). The store and the memory host stay in the main
 * thread either way. Off is the default because a hypercall that crosses threads costs about 50 µs
 * against 6 µs in one thread (bench scaling, quiet machine): the tmem-heavy built-in workloads run
 * about 1.5x slower threaded, while CPU-bound ones gain 1.5x with 2 guests (docs/scaling.md).
 */
import { Option } from "commander";

export const THREADS_MODES = ["on", "off"] as const;
export type ThreadsMode = (typeof THREADS_MODES)[number];

export function threadsOption(): Option {
  return new Option("--threads <mode>", "each guest in a worker thread of its own (on: faster for CPU-bound workloads, slower for tmem-heavy ones, whose hypercalls then cross threads; docs/scaling.md), or every guest in the main thread (off)").choices([...THREADS_MODES]).default("off");
}

/** The flag as RunOptions.threads. */
export function threadsFlag(mode: ThreadsMode | undefined): boolean {
  return mode === "on";
}
