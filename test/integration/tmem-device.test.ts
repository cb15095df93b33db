/**
 * The tmem device end to end from user space in a real guest: the hyperbench program probes the
 * port and does put+get through the real trap, registers, guest memory and store. Also the
 * discovery rule: without the device, the probe finds nothing (EAX comes back unchanged).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Guest } from "../../emulator/guest.ts";
import { TMEM_IO_PORT, TMEM_PROBE } from "../../hypervisor/tmem/abi.ts";
import { TmemDevice } from "../../hypervisor/tmem/device.ts";
import { TmemStore } from "../../hypervisor/tmem/store.ts";
import { bootGuest } from "./helpers.ts";

describe("tmem device in a real guest", () => {
  const store = new TmemStore({ budgetMib: 4 });
  let device: TmemDevice | undefined;
  let guest: Guest;
  let bare: Guest;

  beforeAll(async () => {
    guest = await bootGuest({ name: "with-tmem", beforeStart: (g) => (device = new TmemDevice(store, g, "with-tmem")) });
    bare = await bootGuest({ name: "without-tmem" });
  });
  afterAll(async () => {
    device?.dispose();
    await guest?.dispose();
    await bare?.dispose();
  });

  it("answers the probe with the magic, the ABI version and status 0", async () => {
    expect(await guest.run(`hyperbench probe ${TMEM_IO_PORT}`)).toEqual({ output: "magic=0x4d454d54 version=1 status=0\n", exitCode: 0 });
  });

  it("stores and returns guest pages exactly, and the store counts every call", async () => {
    const r = await guest.run(`hyperbench putget ${TMEM_IO_PORT} 1000`);
    expect(r.output).toMatch(/putget errors=0/);
    expect(r.exitCode).toBe(0);
    const m = store.clientMetrics(device!.clientId);
    expect(m.puts).toBe(1000);
    expect(m.gets).toBe(1000);
    expect(m.getHits).toBe(1000);
    // Private ephemeral gets are exclusive: nothing is left behind.
    expect(m.pagesEphemeral).toBe(0);
    expect(store.metrics().framesUsed).toBe(0);
  });

  it("is not there for a guest without the device: EAX comes back as the guest left it", async () => {
    const r = await bare.run(`hyperbench probe ${TMEM_IO_PORT}`);
    expect(r.output).toBe(`magic=0x${TMEM_PROBE.toString(16)} version=1 status=0\n`);
    expect(r.exitCode).toBe(1);
  });
});
