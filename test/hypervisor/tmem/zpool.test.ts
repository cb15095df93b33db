import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { FRAME_SIZE, Slab } from "../../../hypervisor/tmem/slab.ts";
import { CLASS_STEP, framesPerZspage, MAX_PACKED_SIZE, MAX_ZSPAGE_FRAMES, NO_HANDLE, Zpool } from "../../../hypervisor/tmem/zpool.ts";

function bytes(len: number, seed: number): Uint8Array {
  const b = new Uint8Array(len);
  let x = seed * 2654435761 + 7;
  for (let i = 0; i < len; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/**
 * A slab whose free list hands frames out in a scrambled order, so that a zspage's frames are not
 * neighbours in the buffer (an object spanning two frames must then really be read in two parts).
 */
function scrambledSlab(frames: number): Slab {
  const slab = Slab.allocate(frames);
  const all = Array.from({ length: frames }, () => slab.alloc());
  for (let i = 0; i < frames; i++) slab.free(all[(i * 7 + 3) % frames]!);
  return slab;
}

const waste = (size: number, k: number) => ((k * FRAME_SIZE) % size) / (k * FRAME_SIZE);

describe("size classes", () => {
  it("choose the frames per zspage that waste the least, and cover every object size", () => {
    for (let size = CLASS_STEP; size <= MAX_PACKED_SIZE; size += CLASS_STEP) {
      const k = framesPerZspage(size);
      for (let j = 1; j <= MAX_ZSPAGE_FRAMES; j++) expect(waste(size, k)).toBeLessThanOrEqual(waste(size, j) + 1e-9);
    }
    const z = new Zpool(Slab.allocate(1));
    expect(z.classFor(1).size).toBe(CLASS_STEP);
    expect(z.classFor(CLASS_STEP + 1).size).toBe(2 * CLASS_STEP);
    expect(z.classFor(MAX_PACKED_SIZE).size).toBe(MAX_PACKED_SIZE);
    expect(z.classFor(MAX_PACKED_SIZE + 1).size).toBe(FRAME_SIZE);
    expect(z.classFor(FRAME_SIZE)).toMatchObject({ size: FRAME_SIZE, framesPerZspage: 1, perZspage: 1 });
    // memtouch's half-random pages compress to about 2,120 bytes: 15 in 8 frames, 1.875 per frame.
    expect(z.classFor(2120)).toMatchObject({ framesPerZspage: 8, perZspage: 15 });
    expect(() => z.classFor(0)).toThrow(/bug/);
    expect(() => z.classFor(FRAME_SIZE + 1)).toThrow(/bug/);
  });
});

describe("Zpool", () => {
  it("keeps objects that span frame boundaries intact, and packs them densely", () => {
    const slab = scrambledSlab(64);
    slab.bytes.fill(0xa5);
    const z = new Zpool(slab);
    const len = 2120;
    const handles: number[] = [];
    for (let i = 0; i < 30; i++) {
      const h = z.alloc(len, 64);
      expect(h).not.toBe(NO_HANDLE);
      z.write(h, bytes(len, i));
      handles.push(h);
    }
    z.checkInvariants();
    // Nothing was written outside the zspages' own frames.
    for (let f = 0; f < 64; f++) {
      if (!slab.isAllocated(f)) expect(slab.bytes.subarray(f * FRAME_SIZE, (f + 1) * FRAME_SIZE).every((b) => b === 0xa5), `free frame ${f}`).toBe(true);
    }
    expect(z.framesUsed).toBe(16); // two zspages of 8 frames, 15 objects each
    handles.forEach((h, i) => expect(z.read(h)).toEqual(bytes(len, i)));
    expect(z.stats()).toMatchObject({ objects: 30, bytesStored: 30 * len, compactableFrames: 0 });
  });

  it("gives an emptied zspage's frames back at once, and refuses past the frame limit", () => {
    const z = new Zpool(Slab.allocate(8));
    const a = z.alloc(FRAME_SIZE, 2);
    const b = z.alloc(FRAME_SIZE, 2);
    expect(z.alloc(FRAME_SIZE, 2)).toBe(NO_HANDLE);
    expect(z.framesUsed).toBe(2);
    z.free(a);
    expect(z.framesUsed).toBe(1);
    z.free(b);
    expect(z.framesUsed).toBe(0);
    expect(() => z.free(b)).toThrow(/not allocated/);
    z.checkInvariants();
  });

  it("under a limit smaller than a class's zspage, falls back to a whole-page slot", () => {
    const z = new Zpool(Slab.allocate(4));
    const h = z.alloc(2120, 4); // its class wants 8 frames
    expect(h).not.toBe(NO_HANDLE);
    expect(z.framesUsed).toBe(1);
    z.write(h, bytes(2120, 1));
    expect(z.read(h)).toEqual(bytes(2120, 1));
    z.checkInvariants();
  });

  it("compacts a fragmented class into as few zspages as it needs, moving data intact", () => {
    const z = new Zpool(Slab.allocate(256));
    const len = 1000; // class 1008: 4 per frame
    const live = new Map<number, number>();
    for (let i = 0; i < 400; i++) {
      const h = z.alloc(len, 256);
      z.write(h, bytes(len, i));
      live.set(h, i);
    }
    const used = z.framesUsed;
    let n = 0;
    for (const h of [...live.keys()]) if (n++ % 4 !== 0) (z.free(h), live.delete(h));
    z.checkInvariants();
    const expectFree = z.compactableFrames();
    expect(expectFree).toBeGreaterThan(used / 2);
    expect(z.compact()).toBe(expectFree);
    expect(z.compactableFrames()).toBe(0);
    expect(z.stats()).toMatchObject({ compactions: 1, framesCompacted: expectFree });
    z.checkInvariants();
    for (const [h, i] of live) expect(z.read(h)).toEqual(bytes(len, i));
    expect(z.compact()).toBe(0);
  });

  it("counts the frames pinned objects need at least", () => {
    const z = new Zpool(Slab.allocate(64));
    for (let i = 0; i < 5; i++) z.alloc(FRAME_SIZE, 64, true);
    for (let i = 0; i < 16; i++) z.alloc(1000, 64, true); // class 1008: 4 frames of 16 objects
    z.alloc(FRAME_SIZE, 64, false);
    expect(z.minPinnedFrames()).toBe(5 + 4);
  });

  it("keeps its bookkeeping and every object's bytes through random allocs, frees and compactions", () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            { weight: 6, arbitrary: fc.record({ k: fc.constant("alloc" as const), len: fc.oneof(fc.integer({ min: 1, max: FRAME_SIZE }), fc.integer({ min: 1900, max: 2300 })) }) },
            { weight: 4, arbitrary: fc.record({ k: fc.constant("free" as const), pick: fc.nat() }) },
            { weight: 1, arbitrary: fc.record({ k: fc.constant("compact" as const) }) },
          ),
          { maxLength: 200 },
        ),
        fc.integer({ min: 1, max: 40 }),
        (ops, limit) => {
          const z = new Zpool(scrambledSlab(40));
          const live = new Map<number, Uint8Array>();
          let seed = 0;
          for (const op of ops) {
            if (op.k === "alloc") {
              const h = z.alloc(op.len, limit);
              if (h === NO_HANDLE) continue;
              const data = bytes(op.len, seed++);
              z.write(h, data);
              live.set(h, data);
            } else if (op.k === "free") {
              const hs = [...live.keys()];
              if (hs.length === 0) continue;
              const h = hs[op.pick % hs.length]!;
              z.free(h);
              live.delete(h);
            } else {
              z.compact();
            }
            expect(z.framesUsed).toBeLessThanOrEqual(Math.max(limit, 0));
            z.checkInvariants();
          }
          for (const [h, data] of live) expect(z.read(h)).toEqual(data);
        },
      ),
      { numRuns: 100 },
    );
  }, 60_000);
});

describe("whole-page class", () => {
  it("keeps each object in a plain frame of its own: read, write, free and limits", () => {
    const slab = scrambledSlab(6);
    const z = new Zpool(slab);
    const pages = [0, 1, 2].map((i) => bytes(FRAME_SIZE, 100 + i));
    const hs = pages.map((p) => {
      const h = z.alloc(FRAME_SIZE, 4, false);
      expect(h).not.toBe(NO_HANDLE);
      z.write(h, p);
      return h;
    });
    expect(z.framesUsed).toBe(3);
    const view = z.read(hs[1]!);
    expect(view.buffer).toBe(slab.bytes.buffer); // a view of the frame, no copy
    expect(view.byteOffset % FRAME_SIZE).toBe(0);
    hs.forEach((h, i) => expect(z.read(h)).toEqual(pages[i]));
    // Each object its own frame: writing one leaves the others intact.
    z.write(hs[0]!, bytes(FRAME_SIZE, 7));
    expect(z.read(hs[1]!)).toEqual(pages[1]);
    expect(z.read(hs[2]!)).toEqual(pages[2]);
    // A small object in the whole-page class (a limit below its own class's zspage of 8 frames): one frame.
    const small = z.alloc(2500, 4, true);
    expect(small).not.toBe(NO_HANDLE);
    expect(z.classFor(2500).framesPerZspage).toBeGreaterThan(4);
    z.write(small, bytes(2500, 9));
    expect(z.read(small)).toEqual(bytes(2500, 9));
    expect(z.framesUsed).toBe(4);
    expect(z.minPinnedFrames()).toBe(1);
    expect(z.alloc(FRAME_SIZE, 4, false)).toBe(NO_HANDLE); // at the frame limit
    expect(z.compactableFrames()).toBe(0);
    z.checkInvariants();
    z.free(hs[1]!);
    expect(z.framesUsed).toBe(3);
    expect(z.stats()).toMatchObject({ objects: 3, bytesStored: 2 * FRAME_SIZE + 2500, bytesAllocated: 3 * FRAME_SIZE });
    z.checkInvariants();
    for (const h of [hs[0]!, hs[2]!, small]) z.free(h);
    expect(z.framesUsed).toBe(0);
    expect(z.minPinnedFrames()).toBe(0);
    expect(() => z.free(small)).toThrow();
    z.checkInvariants();
  });
});
