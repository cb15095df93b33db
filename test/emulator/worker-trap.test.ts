/**
 * Port traps across threads (emulator/trap-channel.ts) against the same traps in one thread: a
 * worker plays the guest's vCPU (trap-worker-fixture.ts), the tmem device and store answer in this
 * thread; every register the guest sees after each trap, its RAM at the end and the store's
 * counters must be those of the in-thread run of the same random sequence.
 */
import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { createDoorbell, createSlot, SlotMemory, SpinWindow, spinWhileEqual, TrapServer } from "../../emulator/trap-channel.ts";
import { ArrayGuestMemory, PAGE_SIZE } from "../../hypervisor/guest-memory.ts";
import { TMEM_IO_PORT } from "../../hypervisor/tmem/abi.ts";
import { TmemDevice, type TrapTarget } from "../../hypervisor/tmem/device.ts";
import type { TrapRegisters } from "../../hypervisor/tmem/hypercall.ts";
import { TmemStore } from "../../hypervisor/tmem/store.ts";
import { fillFrame, randomSteps, type TrapStep } from "./trap-steps.ts";

const RAM_BYTES = 1 << 20; // 256 frames, 0xA0-0xBF the hole
const FRAMES = RAM_BYTES / PAGE_SIZE;

function target(memory: TrapTarget["memory"], handlers: Map<number, (r: TrapRegisters) => void>): TrapTarget {
  return {
    memory,
    registerPortTrap: (port, h) => {
      handlers.set(port, h);
      return { dispose: () => handlers.delete(port) };
    },
    registerPciDevice: () => undefined,
  };
}

function inThread(steps: TrapStep[], store: TmemStore) {
  const memory = new ArrayGuestMemory(RAM_BYTES);
  const handlers = new Map<number, (r: TrapRegisters) => void>();
  const device = new TmemDevice(store, target(memory, handlers), "g");
  const out = steps.map((s) => {
    if (s.fill) fillFrame(memory, s.fill.pfn, s.fill.seed);
    const regs = { ...s.regs };
    handlers.get(TMEM_IO_PORT)?.(regs);
    return regs;
  });
  return { out, ram: memory.bytes.slice(), metrics: store.clientMetrics(device.clientId) };
}

async function threaded(steps: TrapStep[], store: TmemStore, server = new TrapServer(), clientSpinUs = 0) {
  const ram = new SharedArrayBuffer(RAM_BYTES);
  const slot = createSlot();
  const handlers = new Map<number, (r: TrapRegisters) => void>();
  const later: number[] = [];
  const memory = new SlotMemory(RAM_BYTES, (pfn) => later.push(pfn));
  const device = new TmemDevice(store, target(memory, handlers), "g");
  const served = server.attach(slot, memory, handlers);
  const worker = new Worker(new URL("./trap-worker.mjs", import.meta.url), { workerData: { slot, doorbell: server.doorbell, ram, port: TMEM_IO_PORT, steps, clientSpinUs } });
  try {
    const { out, sleeps } = await new Promise<{ out: TrapRegisters[]; sleeps: number }>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
    return { out, sleeps, ram: new Uint8Array(ram).slice(), metrics: store.clientMetrics(device.clientId), later };
  } finally {
    served.dispose();
    await worker.terminate();
  }
}

describe("port traps across threads", () => {
  for (const [seed, spinUs, syncWaitUs, clientSpinUs] of [[1, 0, 0, 0], [2, 0, 200, 0], [3, 50, 0, 0], [4, 200, 200, 50]] as const) {
    it(`answers a random tmem sequence as in one thread (seed ${seed}, server spins ${spinUs} µs, sleeps ${syncWaitUs} µs; guest spins ${clientSpinUs} µs)`, async () => {
      const steps = randomSteps(seed, 600, FRAMES);
      const a = new TmemStore({ budgetFrames: 24 });
      const b = new TmemStore({ budgetFrames: 24 });
      const one = inThread(steps, a);
      const two = await threaded(steps, b, new TrapServer(createDoorbell(), spinUs, syncWaitUs), clientSpinUs);
      expect(two.out).toEqual(one.out);
      expect(Buffer.compare(Buffer.from(two.ram), Buffer.from(one.ram))).toBe(0);
      expect(two.metrics).toEqual(one.metrics);
      expect(two.metrics?.getHits ?? 0).toBeGreaterThan(10);
      expect(two.later).toEqual([]);
      a.checkInvariants();
      b.checkInvariants();
    }, 60_000);
  }

  it("lets the guest's thread catch the answer while it spins, and sleep on every trap when it does not spin", async () => {
    // Windows of 20 ms on both ends: the answer comes within microseconds unless a thread loses
    // its core for that long, so a spinning guest sleeps on few traps. Not a timing test: the
    // count tells whether the spin happens at all (a guest that never spins sleeps on each trap).
    const steps = randomSteps(5, 600, FRAMES);
    const spinning = await threaded(steps, new TmemStore({ budgetFrames: 24 }), new TrapServer(createDoorbell(), 20_000, 0), 20_000);
    const sleeping = await threaded(steps, new TmemStore({ budgetFrames: 24 }), new TrapServer(createDoorbell(), 20_000, 0), 0);
    expect(spinning.out).toEqual(sleeping.out);
    expect(spinning.sleeps).toBeLessThan(steps.length / 2);
    expect(sleeping.sleeps).toBeGreaterThan(steps.length / 2);
  }, 60_000);

  it("serves two guests through one doorbell and one store, each its own pages", async () => {
    // A budget no sequence fills: no eviction, so sharing the store changes nothing a guest sees.
    const store = new TmemStore({ budgetFrames: 4096 });
    const server = new TrapServer(createDoorbell(), 0, 200);
    const [x, y] = await Promise.all([threaded(randomSteps(7, 400, FRAMES), store, server), threaded(randomSteps(8, 400, FRAMES), store, server)]);
    const alone = [inThread(randomSteps(7, 400, FRAMES), new TmemStore({ budgetFrames: 4096 })), inThread(randomSteps(8, 400, FRAMES), new TmemStore({ budgetFrames: 4096 }))];
    for (const [t, s] of [[x, alone[0]!], [y, alone[1]!]] as const) {
      expect(t.out).toEqual(s.out);
      expect(Buffer.compare(Buffer.from(t.ram), Buffer.from(s.ram))).toBe(0);
    }
    expect(server.served).toBe(2 * randomSteps(7, 400, FRAMES).length);
    store.checkInvariants();
  }, 60_000);

  it("keeps the full spin window while rings come within it, halves it to a floor while they come later", () => {
    const w = new SpinWindow(200, 2);
    expect(w.us).toBe(200);
    w.record(150);
    expect(w.us).toBe(200);
    w.record(500);
    expect(w.us).toBe(100);
    for (let i = 0; i < 10; i++) w.record(5000);
    expect(w.us).toBe(2);
    // at its floor the window catches no ring, but a gap seen after a sleep still restores it
    w.record(120);
    expect(w.us).toBe(200);
    const bell = new Int32Array(new SharedArrayBuffer(4));
    const t0 = performance.now();
    expect(spinWhileEqual(bell, 0, 0, 2000)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(2);
    bell[0] = 1;
    expect(spinWhileEqual(bell, 0, 0, 2000)).toBe(true);
    expect(spinWhileEqual(bell, 0, 0, 0)).toBe(true);
  });

  it("writes a page outside a trap later, in order, and refuses reads outside a trap", () => {
    const later: number[] = [];
    const memory = new SlotMemory(RAM_BYTES, (pfn) => later.push(pfn));
    memory.writePage(3, new Uint8Array(PAGE_SIZE));
    expect(later).toEqual([3]);
    expect(() => memory.readPage(3, new Uint8Array(PAGE_SIZE))).toThrow(/outside the trap/);
    expect(() => memory.writePage(0xa0, new Uint8Array(PAGE_SIZE))).toThrow(/range-checked/);
  });
});
