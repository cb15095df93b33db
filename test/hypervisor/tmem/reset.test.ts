/**
 * PROBE as a full client reset and the host's "reset pending" (tmem_abi.h, "PROBE and reset"):
 * a guest that reboots never runs out of pool ids, a reset takes every pool of the client and
 * nothing else, and a client the host reset answers TMEM_E_RESET to everything but a probe.
 */
import { describe, expect, it } from "vitest";
import {
  TMEM_DESTROY_POOL,
  TMEM_E_RESET,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_GET_PAGE,
  TMEM_HIT,
  TMEM_MAGIC,
  TMEM_MAX_POOLS,
  TMEM_MISS,
  TMEM_NEW_POOL,
  TMEM_POOL_PERSIST,
  TMEM_POOL_SHARED,
  TMEM_PCI_DEVICE_ID,
  TMEM_PCI_VENDOR_ID,
  TMEM_PUT_PAGE,
  TMEM_ENOENT,
} from "../../../hypervisor/tmem/abi.ts";
import { encodeEax, type TrapRegisters } from "../../../hypervisor/tmem/hypercall.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";
import { TmemDevice } from "../../../hypervisor/tmem/device.ts";
import { pciConfigSpace, type PciDeviceSpec } from "../../../hypervisor/tmem/pci.ts";
import { ArrayGuestMemory } from "../../../hypervisor/guest-memory.ts";
import { TestGuest } from "./test-guest.ts";

const UUID = "aaaaaaaa-0000-0000-0000-000000000001";
const SRC = 16;
const DST = 17;

describe("TMEM_PROBE", () => {
  it("is a full client reset: a guest that reboots 100 times with 16 pools each never gets TMEM_EMFILE", () => {
    const store = new TmemStore({ budgetFrames: 64 });
    const g = new TestGuest(store, "g");
    for (let boot = 0; boot < 100; boot++) {
      expect(g.probe()).toBe(TMEM_MAGIC);
      for (let i = 0; i < TMEM_MAX_POOLS; i++) expect(g.newPool(i % 2 === 0 ? 0 : TMEM_POOL_PERSIST)).toBe(i);
      g.fillDistinct(SRC, boot);
      expect(g.put(1, 7n, 0, SRC)).toBe(TMEM_HIT);
    }
    expect(store.clientMetrics(g.clientId).pools).toHaveLength(TMEM_MAX_POOLS);
    expect(store.clientMetrics(g.clientId).pagesPersistent).toBe(1);
    store.checkInvariants();
  });

  it("takes the client's pages, and leaves a shared pool to its other members with its pages", () => {
    const store = new TmemStore({ budgetFrames: 64 });
    const a = new TestGuest(store, "a", { memoryBytes: 1 << 20 });
    const b = new TestGuest(store, "b", { memoryBytes: 1 << 20 });
    store.authorizeShared(a.clientId, UUID);
    store.authorizeShared(b.clientId, UUID);
    a.probe();
    b.probe();
    const sharedA = a.newPool(TMEM_POOL_SHARED, UUID);
    const sharedB = b.newPool(TMEM_POOL_SHARED, UUID);
    const persistA = a.newPool(TMEM_POOL_PERSIST);
    const want = a.fillDistinct(SRC, 1);
    expect(a.put(sharedA, 5n, 0, SRC)).toBe(TMEM_HIT);
    expect(a.put(persistA, 5n, 0, SRC)).toBe(TMEM_HIT);
    expect(a.probe()).toBe(TMEM_MAGIC);
    expect(store.clientMetrics(a.clientId).pools).toHaveLength(0);
    expect(store.clientMetrics(a.clientId).pagesPersistent).toBe(0);
    expect(a.get(persistA, 5n, 0, DST)).toBe(TMEM_ENOENT);
    // The shared pool and its page live on with b (b now owns it).
    expect(b.get(sharedB, 5n, 0, DST)).toBe(TMEM_HIT);
    expect(Buffer.compare(b.page(DST), want)).toBe(0);
    store.checkInvariants();
  });
});

describe("reset pending (TmemStore.resetClient with pending, TmemDevice.requireReprobe)", () => {
  it("answers TMEM_E_RESET to every op but the probe, changes nothing, and a probe ends it", () => {
    const store = new TmemStore({ budgetFrames: 16 });
    const g = new TestGuest(store, "g");
    g.probe();
    const pool = g.newPool(TMEM_POOL_PERSIST);
    g.fillDistinct(SRC, 3);
    expect(g.put(pool, 1n, 1, SRC)).toBe(TMEM_HIT);
    expect(store.resetClient(g.clientId, { pending: true })).toBe(1);
    expect(store.resetPending(g.clientId)).toBe(true);
    for (const op of [TMEM_NEW_POOL, TMEM_DESTROY_POOL, TMEM_PUT_PAGE, TMEM_GET_PAGE, TMEM_FLUSH_PAGE, TMEM_FLUSH_OBJECT, 3, 200]) {
      expect(g.call(encodeEax(op, pool), 1, 0, 1, SRC)).toBe(TMEM_E_RESET);
    }
    expect(store.clientMetrics(g.clientId).errors.E_RESET).toBe(8);
    expect(store.clientMetrics(g.clientId).pools).toHaveLength(0);
    expect(g.probe()).toBe(TMEM_MAGIC);
    expect(store.resetPending(g.clientId)).toBe(false);
    const again = g.newPool(TMEM_POOL_PERSIST);
    expect(again).toBe(0);
    // The persistent page did not survive: a get misses, it never returns old data.
    expect(g.get(again, 1n, 1, DST)).toBe(TMEM_MISS);
  });

  it("comes before the probe check: a new device for a restored guest answers TMEM_E_RESET, not TMEM_EPROTO", () => {
    const store = new TmemStore({ budgetFrames: 16 });
    const memory = new ArrayGuestMemory(1 << 20);
    const specs: PciDeviceSpec[] = [];
    let trap: ((r: TrapRegisters) => void) | undefined;
    const device = new TmemDevice(store, {
      memory,
      registerPortTrap: (_port, h) => {
        trap = h;
        return { dispose: () => (trap = undefined) };
      },
      registerPciDevice: (spec) => specs.push(spec),
    }, "restored");
    device.requireReprobe();
    const regs: TrapRegisters = { eax: encodeEax(TMEM_PUT_PAGE, 0), ebx: 1, ecx: 0, edx: 0x700, esi: 0, edi: SRC };
    trap!(regs);
    expect(regs.eax | 0).toBe(TMEM_E_RESET);
    // The device announced itself on the PCI bus with tmemu's ids.
    expect(specs).toHaveLength(1);
    const space = pciConfigSpace(specs[0]!);
    expect(space[0]! | (space[1]! << 8)).toBe(TMEM_PCI_VENDOR_ID);
    expect(space[2]! | (space[3]! << 8)).toBe(TMEM_PCI_DEVICE_ID);
    device.dispose();
  });
});
