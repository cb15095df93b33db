/**
 * ThreadedGuest's boot through a real worker (emulator/guest-worker.ts), without booting a kernel:
 * an error inside the worker's Guest.boot reaches the caller as the same TmemuError, at once, and
 * leaves no worker behind; the guest's traps registered in beforeStart stay in this thread.
 */
import { describe, expect, it } from "vitest";
import { ThreadedGuest } from "../../emulator/threaded-guest.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

const MIB = 1024 * 1024;

describe("ThreadedGuest boot", () => {
  it("reports the worker's boot error as the same TmemuError, promptly", async () => {
    const images = { bzImage: new Uint8Array(16), initrd: new Uint8Array(5 * MIB), bios: new Uint8Array(16) };
    const t0 = Date.now();
    let seen: unknown;
    let ports: number[] = [];
    try {
      await ThreadedGuest.boot({
        images,
        memoryMib: 128,
        name: "bad",
        beforeStart: (g) => {
          g.registerPortTrap(0x700, () => undefined);
          ports = [0x700];
        },
      });
    } catch (err) {
      seen = err;
    }
    expect(seen).toBeInstanceOf(TmemuError);
    expect(seen).toMatchObject({ code: "IMAGE_MISSING", message: expect.stringMatching(/initrd is 5\.0 MiB/) });
    expect(ports).toEqual([0x700]);
    // no 5 s wait for a dispose answer from a worker that already gave up
    expect(Date.now() - t0).toBeLessThan(4_000);
  }, 30_000);

  it("refuses a guest memory size before starting a worker", async () => {
    const images = { bzImage: new Uint8Array(16), initrd: new Uint8Array(16), bios: new Uint8Array(16) };
    await expect(ThreadedGuest.boot({ images, memoryMib: 8, name: "small" })).rejects.toMatchObject({ code: "MEMORY_TOO_SMALL" });
  });
});
