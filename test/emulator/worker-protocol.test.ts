/** The threaded guest's messages (emulator/worker-protocol.ts): errors and boot options cross intact. */
import { describe, expect, it } from "vitest";
import { deserializeError, FORWARDED_CALLS, FORWARDED_SENDS, serializeError, workerBootOptions } from "../../emulator/worker-protocol.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

describe("worker protocol", () => {
  it("keeps a TmemuError's code and hint across the thread boundary (structured clone drops the class)", () => {
    const wire = structuredClone(serializeError(new TmemuError("TIMEOUT", "g0: command `x` timed out", "raise --timeout-s")));
    const back = deserializeError(wire);
    expect(back).toBeInstanceOf(TmemuError);
    expect(back).toMatchObject({ code: "TIMEOUT", message: "g0: command `x` timed out", hint: "raise --timeout-s" });
    const plain = deserializeError(structuredClone(serializeError(new Error("boom"))));
    expect(plain).not.toBeInstanceOf(TmemuError);
    expect(plain.message).toBe("boom");
  });

  it("sends every boot option but the callbacks, and refuses a callback it does not know", () => {
    const images = { bzImage: new Uint8Array(1), initrd: new Uint8Array(1), bios: new Uint8Array(1) };
    const opts = workerBootOptions({ images, memoryMib: 128, name: "g", kernelArgs: ["a"], onConsole: () => undefined, beforeStart: () => undefined });
    expect(Object.keys(opts).sort()).toEqual(["images", "kernelArgs", "memoryMib", "name"]);
    expect(() => structuredClone(opts)).not.toThrow();
    expect(() => workerBootOptions({ images, memoryMib: 128, ...({ onSomething: () => undefined } as object) })).toThrow(/onSomething is a function/);
    expect(() => workerBootOptions({ images, memoryMib: 128, restore: { state: Promise.resolve(new Uint8Array(1)), kernelRelease: "6.1", pickUpDisks: false } })).toThrow(/restore holds a promise/);
  });

  it("forwards calls and sends that are distinct Guest methods", () => {
    const calls = Object.keys(FORWARDED_CALLS);
    const sends = Object.keys(FORWARDED_SENDS);
    expect(calls).toContain("run");
    expect(sends).toContain("registerPciDevice");
    expect(calls.filter((c) => sends.includes(c))).toEqual([]);
  });
});
