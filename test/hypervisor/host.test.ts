import { describe, expect, it } from "vitest";
import type { VirtioBalloonStatRecord } from "../../hypervisor/balloon/stats.ts";
import { ArrayGuestMemory } from "../../hypervisor/guest-memory.ts";
import { MemoryHost, type HostedGuest } from "../../hypervisor/host.ts";
import { createMemoryPolicy } from "../../hypervisor/scheduler/policy.ts";
import { TmemStore } from "../../hypervisor/tmem/store.ts";

const MIB = 1024 * 1024;

/** A guest whose balloon obeys at once and reports the stats the test sets. */
function fakeGuest(name: string, ramMib: number) {
  const memory = new ArrayGuestMemory(ramMib * MIB);
  let listener: { onInflate(p: number[]): void; onDeflate(p: number[]): void } | undefined;
  let held: number[] = [];
  const ever = new Set<number>(); // frames ever put on the inflate queue
  const g: { stats: VirtioBalloonStatRecord | undefined; memory: ArrayGuestMemory; held(): number[]; ever(): Set<number>; guest: HostedGuest } = {
    stats: undefined,
    memory,
    held: () => held,
    ever: () => ever,
    guest: {
      name,
      ramMib,
      memory,
      balloon: {
        setTargetPages(pages: number) {
          if (pages > held.length) {
            const add = Array.from({ length: pages - held.length }, (_, i) => 0x400 + held.length + i);
            held = held.concat(add);
            for (const pfn of add) ever.add(pfn);
            listener?.onInflate(add);
          } else {
            const give = held.slice(pages);
            held = held.slice(0, pages);
            listener?.onDeflate(give);
          }
        },
        listen(l: typeof listener) {
          listener = l;
        },
        stats: async () => g.stats,
      },
    },
  };
  return g;
}

const idleStats = (ramMib: number): VirtioBalloonStatRecord => ({
  MEMTOT: (ramMib - 20) * MIB,
  AVAIL: (ramMib - 40) * MIB,
  MEMFREE: (ramMib - 45) * MIB,
  CACHES: 5 * MIB,
  SWAP_IN: 0,
  SWAP_OUT: 0,
  MAJFLT: 0,
  MINFLT: 100,
});

describe("MemoryHost", () => {
  it("static: gives the store exactly the budget the guests' RAM leaves, and never moves a balloon", async () => {
    const guests = [fakeGuest("a", 128), fakeGuest("b", 128)];
    const store = new TmemStore({ budgetMib: 256 });
    const host = new MemoryHost(512, createMemoryPolicy("static"), store);
    for (const g of guests) host.addGuest(g.guest);
    for (let t = 0; t < 5; t++) await host.tick(t);
    expect(store.budgetFrames).toBe(256 * 256);
    expect(host.snapshot().map((s) => s.balloonPages)).toEqual([0, 0]);
  });

  it("selfballoon: idle guests give memory back, the ledger holds the frames, and the store grows by them", async () => {
    const guests = [fakeGuest("a", 256), fakeGuest("b", 256)];
    const policy = createMemoryPolicy("selfballoon");
    const total = 768;
    const store = new TmemStore({ budgetFrames: policy.maxStoreBudgetFrames(total, guests.map((g) => ({ name: g.guest.name, ramMib: 256 }))) });
    const host = new MemoryHost(total, policy, store);
    for (const g of guests) {
      g.stats = idleStats(256);
      g.memory.bytes.fill(0xa5); // the guest's data, in every frame
      host.addGuest(g.guest);
    }
    for (let t = 0; t < 40; t++) {
      // The guest's view: what it has available shrinks as its balloon grows.
      for (const g of guests) {
        const ballooned = (host.ledger(g.guest.name)?.pages ?? 0) * 4096;
        g.stats = { ...idleStats(256), AVAIL: (256 - 40) * MIB - ballooned, MEMFREE: (256 - 45) * MIB - ballooned };
      }
      await host.tick(t * 2);
    }
    const snaps = host.snapshot();
    for (const s of snaps) expect(s.balloonPages).toBeGreaterThan(0);
    const ballooned = snaps.reduce((n, s) => n + s.balloonPages, 0);
    // Memory accounting: guest RAM not ballooned out + store budget stays within the total.
    expect(2 * 256 * 256 - ballooned + store.budgetFrames).toBeLessThanOrEqual(total * 256);
    expect(store.budgetFrames).toBeGreaterThanOrEqual((total - 512) * 256 + ballooned - 256 * 8);
    // Ballooned frames were zeroed in guest memory (they now belong to the host); the frames the
    // guest kept still hold its data.
    for (const g of guests) {
      const ledger = host.ledger(g.guest.name)!;
      const held = [...ledger.heldFrames()];
      expect(held).toEqual([...g.held()].sort((x, y) => x - y));
      expect(held.length).toBeGreaterThan(0);
      // Every frame that went through the balloon (held now, or given back and not written since)
      // is zeros; every other frame is untouched.
      const zeros = Buffer.alloc(4096, 0);
      const data = Buffer.alloc(4096, 0xa5);
      const wrong: number[] = [];
      for (let pfn = 0; pfn < ledger.frames; pfn++) {
        const page = Buffer.from(g.memory.bytes.buffer, pfn * 4096, 4096);
        if (!page.equals(g.ever().has(pfn) ? zeros : data)) wrong.push(pfn);
      }
      expect(wrong, `frames of ${g.guest.name} with the wrong content`).toEqual([]);
    }
  });

  it("selfballoon: a guest that starts swapping gets memory back in one decision", async () => {
    const g = fakeGuest("a", 256);
    const policy = createMemoryPolicy("selfballoon");
    const store = new TmemStore({ budgetFrames: policy.maxStoreBudgetFrames(512, [{ name: "a", ramMib: 256 }]) });
    const host = new MemoryHost(512, policy, store);
    host.addGuest(g.guest);
    for (let t = 0; t < 30; t++) {
      const ballooned = (host.ledger("a")?.pages ?? 0) * 4096;
      g.stats = { ...idleStats(256), AVAIL: (256 - 40) * MIB - ballooned };
      await host.tick(t * 2);
    }
    const before = host.snapshot()[0]!.balloonPages;
    expect(before).toBeGreaterThan(0);
    g.stats = { ...idleStats(256), AVAIL: 2 * MIB, SWAP_OUT: 50 * MIB, SWAP_IN: 10 * MIB, MAJFLT: 500 };
    await host.tick(100);
    expect(host.snapshot()[0]!.balloonPages).toBeLessThan(before);
  });
});
