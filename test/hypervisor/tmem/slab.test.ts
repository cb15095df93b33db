import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { FRAME_SIZE, NO_FRAME, Slab } from "../../../hypervisor/tmem/slab.ts";
import { BugIndicatingError } from "../../../hypervisor/errors.ts";

describe("Slab", () => {
  it("hands out every frame once, then NO_FRAME", () => {
    const slab = Slab.allocate(4);
    const frames = [slab.alloc(), slab.alloc(), slab.alloc(), slab.alloc()];
    expect(new Set(frames)).toEqual(new Set([0, 1, 2, 3]));
    expect(slab.alloc()).toBe(NO_FRAME);
    expect(slab.framesUsed).toBe(4);
    expect(slab.framesFree).toBe(0);
  });

  it("reuses a freed frame and keeps used + free == total", () => {
    const slab = Slab.allocate(3);
    const a = slab.alloc();
    slab.alloc();
    slab.free(a);
    expect(slab.framesUsed + slab.framesFree).toBe(3);
    expect(slab.framesUsed).toBe(1);
    expect(slab.alloc()).toBe(a);
  });

  it("throws BugIndicatingError on a double free", () => {
    const slab = Slab.allocate(2);
    const f = slab.alloc();
    slab.free(f);
    expect(() => slab.free(f)).toThrow(BugIndicatingError);
    expect(slab.framesUsed).toBe(0);
  });

  it("throws BugIndicatingError on freeing a frame never handed out or out of range", () => {
    const slab = Slab.allocate(2);
    slab.alloc(); // frame 0
    expect(() => slab.free(1)).toThrow(BugIndicatingError);
    for (const bad of [-1, 2, 0.5, Number.NaN]) expect(() => slab.free(bad)).toThrow(BugIndicatingError);
    expect(slab.framesUsed).toBe(1);
  });

  it("gives views of allocated frames only, into the one shared buffer", () => {
    const buffer = new SharedArrayBuffer(2 * FRAME_SIZE);
    const slab = new Slab(buffer);
    const f = slab.alloc();
    const view = slab.frame(f);
    expect(view.length).toBe(FRAME_SIZE);
    expect(view.buffer).toBe(buffer);
    view.fill(0xab);
    expect(new Uint8Array(buffer)[f * FRAME_SIZE]).toBe(0xab);
    expect(slab.words[f * (FRAME_SIZE / 4)]).toBe(0xabababab);
    expect(() => slab.frame(1 - f)).toThrow(BugIndicatingError);
  });

  it("refuses a buffer that is not a whole number of frames and a bad size", () => {
    expect(() => new Slab(new ArrayBuffer(FRAME_SIZE + 4))).toThrow(RangeError);
    expect(() => Slab.allocate(-1)).toThrow(RangeError);
    expect(() => Slab.allocate(1.5)).toThrow(RangeError);
    expect(Slab.allocate(0).alloc()).toBe(NO_FRAME);
  });

  it("balances its accounting under any sequence of allocs and frees", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 32 }), fc.array(fc.nat(), { maxLength: 200 }), (size, script) => {
        const slab = Slab.allocate(size);
        const held: number[] = [];
        for (const step of script) {
          if (step % 3 !== 0 || held.length === 0) {
            const f = slab.alloc();
            if (held.length === size) {
              expect(f).toBe(NO_FRAME);
            } else {
              expect(f).toBeGreaterThanOrEqual(0);
              expect(held).not.toContain(f);
              held.push(f);
            }
          } else {
            const [f] = held.splice(step % held.length, 1);
            slab.free(f!);
          }
          expect(slab.framesUsed).toBe(held.length);
          expect(slab.framesUsed + slab.framesFree).toBe(size);
          for (const f of held) expect(slab.isAllocated(f)).toBe(true);
        }
      }),
    );
  });
});
