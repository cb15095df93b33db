/**
 * Hypercall rates seen by a real guest: a user-space loop in a booted Linux guest (the hyperbench
 * program, guest-images/programs/hyperbench.c) issues `outl` to a port whose handler does nothing
 * (the bare trap), then tmem put+get pairs through the real device and store. Rates come from the
 * guest's own clock; the ratio tmem / bare is what the tmem path costs on top of the trap itself.
 */
import { Guest } from "../emulator/guest.ts";
import { ensureImages, loadGuestImages } from "../guest-images/index.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { TMEM_IO_PORT } from "../hypervisor/tmem/abi.ts";
import { TmemDevice } from "../hypervisor/tmem/device.ts";
import { TmemStore } from "../hypervisor/tmem/store.ts";
import { median, type BenchDefinition, type BenchResult } from "./harness.ts";

/** A port whose trap handler does nothing: the crossing alone. */
export const NULL_PORT = TMEM_IO_PORT + 4;
const CALLS = 200_000;

/** The rate `hyperbench WHAT` printed (its result line); a missing line is an error, never 0. */
export function parseRate(output: string, what: string): number {
  const m = new RegExp(`hyperbench: ${what} calls=(\\d+) us=(\\d+) rate=(\\d+)`).exec(output);
  if (!m?.[3]) throw new Error(`hyperbench ${what} printed no rate: ${output.trim()}`);
  return Number(m[3]);
}

export const guestHypercallBench: BenchDefinition = {
  name: "guest-hypercalls",
  description: "hypercalls per second from a loop inside a real guest: bare trap vs. tmem put+get",
  async run(options): Promise<BenchResult> {
    const images = loadGuestImages(await ensureImages({ progress: new StderrProgress() }));
    const store = new TmemStore({ budgetMib: 16 });
    let device: TmemDevice | undefined;
    let traps = 0;
    const guest = await Guest.boot({
      images,
      memoryMib: 128,
      name: "bench",
      beforeStart: (g) => {
        device = new TmemDevice(store, g, "bench");
        g.registerPortTrap(NULL_PORT, () => {
          traps++;
        });
      },
    });
    try {
      const bare: number[] = [];
      const tmem: number[] = [];
      for (let i = 0; i < options.repeats; i++) {
        bare.push(parseRate(await guest.runChecked(`hyperbench bare ${NULL_PORT} ${CALLS}`), "bare"));
        tmem.push(parseRate(await guest.runChecked(`hyperbench putget ${TMEM_IO_PORT} ${CALLS / 2}`), "putget"));
      }
      if (traps !== CALLS * options.repeats) throw new Error(`bare trap count ${traps}, expected ${CALLS * options.repeats}`);
      const ratio = median(tmem) / median(bare);
      return {
        measurements: [
          { name: "guest bare trap (outl, no-op handler)", unit: "calls/s", samples: bare },
          { name: "guest tmem put+get (4 KiB, verified)", unit: "calls/s", samples: tmem },
        ],
        derived: [{ name: "tmem / bare trap", value: ratio, unit: "ratio", note: `target >= 0.5 (${ratio >= 0.5 ? "met" : "missed"}); client ${device?.clientId}` }],
      };
    } finally {
      device?.dispose();
      await guest.dispose();
    }
  },
};
