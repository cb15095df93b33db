/**
 * Test fixture, run in a worker thread by worker-trap.test.ts: plays a guest's vCPU. Its RAM is an
 * ArrayGuestMemory over a SharedArrayBuffer the test can read; each step may fill a frame with a
 * pattern, then traps with the step's registers through a TrapClient (emulator/trap-channel.ts).
 * Posts the registers after every trap, and how many traps it slept on.
 */
import { parentPort, workerData } from "node:worker_threads";
import { TrapClient } from "../../emulator/trap-channel.ts";
import { ArrayGuestMemory } from "../../hypervisor/guest-memory.ts";
import type { TrapRegisters } from "../../hypervisor/tmem/hypercall.ts";
import { fillFrame, type TrapStep } from "./trap-steps.ts";

const data = workerData as { slot: SharedArrayBuffer; doorbell: SharedArrayBuffer; ram: SharedArrayBuffer; port: number; steps: TrapStep[]; clientSpinUs?: number };
const memory = new ArrayGuestMemory(data.ram);
const client = new TrapClient(data.slot, data.doorbell, memory, data.clientSpinUs ?? 0);
const out: TrapRegisters[] = [];
for (const step of data.steps) {
  if (step.fill) fillFrame(memory, step.fill.pfn, step.fill.seed);
  const regs = { ...step.regs };
  client.trap(data.port, regs);
  out.push(regs);
}
parentPort?.postMessage({ out, sleeps: client.sleeps });
