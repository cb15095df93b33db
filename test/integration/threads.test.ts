/**
 * Guests in worker threads (emulator/threaded-guest.ts) end to end: two real guests, each in its
 * own worker, one tmem store in this thread answering both guests' hypercalls; then a worker that
 * throws and a worker that hangs, each that guest's failure only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ThreadedGuest, type GuestApi } from "../../emulator/threaded-guest.ts";
import { TMEM_IO_PORT } from "../../hypervisor/tmem/abi.ts";
import { TmemStore } from "../../hypervisor/tmem/store.ts";
import { bootTmemGuestOn, type TmemGuest } from "../../cli/tmem-guest.ts";
import { images } from "./helpers.ts";

describe("guests in worker threads", () => {
  const store = new TmemStore({ budgetMib: 8 });
  let a: TmemGuest<GuestApi>;
  let b: TmemGuest<GuestApi>;

  beforeAll(async () => {
    const boot = (name: string) => bootTmemGuestOn({ threads: true, images: images(), name, memoryMib: 128, store, bootTimeoutMs: 300_000, hangTimeoutMs: 5_000 });
    [a, b] = await Promise.all([boot("ta"), boot("tb")]);
  });
  afterAll(async () => {
    await a?.dispose();
    await b?.dispose();
    store.checkInvariants();
  });

  it("runs each guest in a worker and answers both guests' put+get from one store", async () => {
    expect(a.guest).toBeInstanceOf(ThreadedGuest);
    expect(a.guest.kernelRelease).toMatch(/^6\.1\./);
    const [ra, rb] = await Promise.all([a.guest.run(`hyperbench putget ${TMEM_IO_PORT} 2000`), b.guest.run(`hyperbench putget ${TMEM_IO_PORT} 2000`)]);
    expect(ra.output).toMatch(/putget errors=0/);
    expect(rb.output).toMatch(/putget errors=0/);
    for (const tg of [a, b]) {
      const m = store.clientMetrics(tg.device!.clientId);
      expect(m.puts).toBeGreaterThanOrEqual(2000);
      expect(m.getHits).toBeGreaterThanOrEqual(2000);
    }
    // the console is mirrored in this thread: offsets and waits work as in-thread
    const from = a.guest.consoleOffset;
    await a.guest.runChecked("echo mirrored-line");
    expect(a.guest.textSince(from)).toContain("mirrored-line");
  });

  it("a worker that throws is that guest's failure; the other guest goes on", async () => {
    (a.guest as ThreadedGuest).injectFault("throw");
    await expect(a.guest.run("true", { timeoutMs: 60_000 })).rejects.toThrow(/worker thread crashed|worker thread exited/);
    expect(a.guest.isAlive).toBe(false);
    expect(await b.guest.runChecked("echo still-here")).toContain("still-here");
  });

  it("a worker that stops answering is found by the watchdog", async () => {
    (b.guest as ThreadedGuest).injectFault("hang");
    await expect(b.guest.run("true", { timeoutMs: 120_000 })).rejects.toThrow(/stopped answering/);
    expect(b.guest.isAlive).toBe(false);
  });
});
