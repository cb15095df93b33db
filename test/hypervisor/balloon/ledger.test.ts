import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { BalloonLedger } from "../../../hypervisor/balloon/ledger.ts";
import { ArrayGuestMemory, PAGE_SIZE, type GuestMemory } from "../../../hypervisor/guest-memory.ts";
import { BugIndicatingError } from "../../../hypervisor/errors.ts";
import { TmemuError } from "../../../hypervisor/user-errors.ts";

const MIB = 1 << 20;
const HOLE_PFN = 0xa0; // first frame of 0xA0000-0xBFFFF

/** Guest memory with every byte set to 0xAB, so zeroed frames stand out. */
function dirtyMemory(sizeBytes: number): ArrayGuestMemory {
  const m = new ArrayGuestMemory(sizeBytes);
  m.bytes.fill(0xab);
  return m;
}

function isZero(page: Uint8Array): boolean {
  return page.every((b) => b === 0);
}

describe("BalloonLedger inflate", () => {
  it("takes valid frames, zeroes each one in guest memory and leaves its neighbours alone", () => {
    const mem = dirtyMemory(4 * MIB);
    const ledger = new BalloonLedger(mem.sizeBytes);
    expect(ledger.inflate([5, 7, 300], mem)).toEqual({ accepted: 3, rejected: 0 });
    for (const pfn of [5, 7, 300]) expect(isZero(mem.page(pfn))).toBe(true);
    for (const pfn of [4, 6, 8, 299, 301]) expect(mem.page(pfn).every((b) => b === 0xab)).toBe(true);
    expect(ledger.pages).toBe(3);
    expect(ledger.bytes).toBe(3 * PAGE_SIZE);
    expect(ledger.inflatedCount).toBe(3);
    expect([...ledger.heldFrames()]).toEqual([5, 7, 300]);
  });

  it("ignores and counts frames beyond guest RAM, in the VGA hole, negative or fractional", () => {
    const mem = dirtyMemory(4 * MIB);
    const ledger = new BalloonLedger(mem.sizeBytes);
    const frames = (4 * MIB) / PAGE_SIZE;
    const result = ledger.inflate([frames, frames + 1, 0xffffffff, HOLE_PFN, 0xbf, -1, 1.5, Number.NaN, 10], mem);
    expect(result).toEqual({ accepted: 1, rejected: 8 });
    expect(ledger.pages).toBe(1);
    expect(ledger.inflateFails).toBe(8);
    expect(ledger.badFrames).toBe(8);
    expect(mem.page(HOLE_PFN - 1).every((b) => b === 0xab)).toBe(true);
  });

  it("counts a frame it already holds as bad, also when it appears twice in one batch", () => {
    const mem = dirtyMemory(1 * MIB);
    const ledger = new BalloonLedger(mem.sizeBytes);
    expect(ledger.inflate([3, 3, 4], mem)).toEqual({ accepted: 2, rejected: 1 });
    expect(ledger.inflate([4], mem)).toEqual({ accepted: 0, rejected: 1 });
    expect(ledger.pages).toBe(2);
    expect(ledger.inflatedCount).toBe(2);
    expect(ledger.inflateFails).toBe(2);
  });

  it("writes each accepted frame exactly once and never touches a rejected one", () => {
    const writes: number[] = [];
    const inner = new ArrayGuestMemory(1 * MIB);
    const spy: GuestMemory = {
      sizeBytes: inner.sizeBytes,
      readPage: (pfn, dst) => inner.readPage(pfn, dst),
      writePage: (pfn, src) => {
        writes.push(pfn);
        inner.writePage(pfn, src);
      },
    };
    const ledger = new BalloonLedger(spy.sizeBytes);
    ledger.inflate([1, 2, 2, 1, 256, 9999], spy);
    expect(writes).toEqual([1, 2]);
  });

  it("throws BugIndicatingError when given another guest's memory", () => {
    const ledger = new BalloonLedger(2 * MIB);
    expect(() => ledger.inflate([1], new ArrayGuestMemory(4 * MIB))).toThrow(BugIndicatingError);
    expect(ledger.pages).toBe(0);
  });
});

describe("BalloonLedger deflate", () => {
  it("gives back held frames and counts frames it does not hold", () => {
    const mem = dirtyMemory(1 * MIB);
    const ledger = new BalloonLedger(mem.sizeBytes);
    ledger.inflate([1, 2, 3], mem);
    expect(ledger.deflate([2, 2, 9, -4, 0xffffffff])).toEqual({ accepted: 1, rejected: 4 });
    expect(ledger.pages).toBe(2);
    expect(ledger.has(2)).toBe(false);
    expect(ledger.has(1)).toBe(true);
    expect(ledger.deflatedCount).toBe(1);
    expect(ledger.deflateFails).toBe(4);
    expect(ledger.badFrames).toBe(4);
  });

  it("lets a deflated frame be inflated again (and zeroed again)", () => {
    const mem = dirtyMemory(1 * MIB);
    const ledger = new BalloonLedger(mem.sizeBytes);
    ledger.inflate([7], mem);
    ledger.deflate([7]);
    mem.page(7).fill(0x55); // the guest used it again
    expect(ledger.inflate([7], mem)).toEqual({ accepted: 1, rejected: 0 });
    expect(isZero(mem.page(7))).toBe(true);
  });

  it("releaseAll gives every frame back and counts them as deflated", () => {
    const mem = dirtyMemory(1 * MIB);
    const ledger = new BalloonLedger(mem.sizeBytes);
    ledger.inflate([1, 2, 31, 32, 33, 255], mem);
    expect(ledger.releaseAll()).toBe(6);
    expect(ledger.pages).toBe(0);
    expect([...ledger.heldFrames()]).toEqual([]);
    expect(ledger.deflatedCount).toBe(6);
  });
});

describe("BalloonLedger JSON and saved state", () => {
  it("reports its documented JSON shape", () => {
    const mem = dirtyMemory(1 * MIB);
    const ledger = new BalloonLedger(mem.sizeBytes);
    ledger.inflate([1, 2, 999999], mem);
    ledger.deflate([2, 3]);
    expect(JSON.parse(JSON.stringify(ledger))).toEqual({
      frames: 256,
      pages: 1,
      bytes: 4096,
      inflatedCount: 2,
      inflateFails: 1,
      deflatedCount: 1,
      deflateFails: 1,
      badFrames: 2,
    });
  });

  it("round-trips through save and restore, frames as runs", () => {
    const mem = dirtyMemory(1 * MIB);
    const ledger = new BalloonLedger(mem.sizeBytes);
    ledger.inflate([0, 1, 2, 31, 32, 33, 200, HOLE_PFN], mem);
    ledger.deflate([1]);
    const state = ledger.save();
    expect(state.runs).toEqual([
      { firstPfn: 0, count: 1 },
      { firstPfn: 2, count: 1 },
      { firstPfn: 31, count: 3 },
      { firstPfn: 200, count: 1 },
    ]);
    const copy = BalloonLedger.restore(JSON.parse(JSON.stringify(state)) as typeof state);
    expect([...copy.heldFrames()]).toEqual([...ledger.heldFrames()]);
    expect(copy.toJSON()).toEqual(ledger.toJSON());
  });

  it("refuses saved state with frames out of range, overlapping runs or a bad version", () => {
    const base = new BalloonLedger(1 * MIB).save();
    expect(() => BalloonLedger.restore({ ...base, runs: [{ firstPfn: 250, count: 10 }] })).toThrow(TmemuError);
    expect(() => BalloonLedger.restore({ ...base, runs: [{ firstPfn: HOLE_PFN, count: 1 }] })).toThrow(TmemuError);
    expect(() =>
      BalloonLedger.restore({ ...base, runs: [{ firstPfn: 1, count: 3 }, { firstPfn: 2, count: 1 }] }),
    ).toThrow(TmemuError);
    expect(() => BalloonLedger.restore({ ...base, version: 2 as 1 })).toThrow(TmemuError);
  });

  it("refuses a guest memory size that is not a positive number of pages", () => {
    for (const size of [0, -4096, 4095, 1.5 * PAGE_SIZE, Number.NaN]) {
      expect(() => new BalloonLedger(size)).toThrow(TmemuError);
    }
  });

  it("covers a 2 GiB guest (512 Ki frames) with a small bitmap", () => {
    const ledger = new BalloonLedger(2048 * MIB);
    expect(ledger.frames).toBe(512 * 1024);
    expect(ledger.has(512 * 1024 - 1)).toBe(false);
    expect(ledger.deflate([512 * 1024 - 1])).toEqual({ accepted: 0, rejected: 1 });
  });
});

describe("BalloonLedger accounting (property)", () => {
  it("keeps pages equal to the size of a model set over random inflate/deflate sequences", () => {
    const sizeBytes = 1 * MIB; // 256 frames, 32 of them in the hole (0xa0-0xbf)
    const frames = sizeBytes / PAGE_SIZE;
    const pfn = fc.oneof(
      fc.integer({ min: 0, max: frames - 1 }),
      fc.integer({ min: -3, max: frames + 3 }),
      fc.constantFrom(HOLE_PFN, 0xbf, 0xffffffff, 0.5),
    );
    const op = fc.record({ inflate: fc.boolean(), pfns: fc.array(pfn, { maxLength: 40 }) });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const mem = dirtyMemory(sizeBytes);
        const ledger = new BalloonLedger(sizeBytes);
        const model = new Set<number>();
        let bad = 0;
        let inflated = 0;
        let deflated = 0;
        for (const { inflate, pfns } of ops) {
          for (const p of pfns) {
            const valid = Number.isInteger(p) && p >= 0 && p < frames && !(p >= HOLE_PFN && p <= 0xbf);
            if (inflate) {
              if (valid && !model.has(p)) {
                model.add(p);
                inflated++;
              } else bad++;
            } else if (valid && model.has(p)) {
              model.delete(p);
              deflated++;
            } else bad++;
          }
          if (inflate) ledger.inflate(pfns, mem);
          else ledger.deflate(pfns);
          expect(ledger.pages).toBe(model.size);
        }
        expect([...ledger.heldFrames()]).toEqual([...model].sort((a, b) => a - b));
        expect(ledger.badFrames).toBe(bad);
        expect(ledger.inflatedCount).toBe(inflated);
        expect(ledger.deflatedCount).toBe(deflated);
        expect(ledger.inflatedCount - ledger.deflatedCount).toBe(ledger.pages);
        for (const p of model) expect(isZero(mem.page(p))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});
