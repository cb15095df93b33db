import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { ArrayGuestMemory, checkGuestFrame, PAGE_SIZE } from "../../hypervisor/guest-memory.ts";
import { GUEST_HOLE_END, GUEST_HOLE_START } from "../../hypervisor/tmem/abi.ts";
import { BugIndicatingError } from "../../hypervisor/errors.ts";

const MIB = 1 << 20;
const HOLE_FIRST_PFN = GUEST_HOLE_START / PAGE_SIZE; // 0xa0
const HOLE_LAST_PFN = GUEST_HOLE_END / PAGE_SIZE - 1; // 0xbf

describe("checkGuestFrame", () => {
  it("accepts frames of RAM below and above the hole", () => {
    expect(checkGuestFrame(0, 16 * MIB)).toBe(true);
    expect(checkGuestFrame(HOLE_FIRST_PFN - 1, 16 * MIB)).toBe(true);
    expect(checkGuestFrame(HOLE_LAST_PFN + 1, 16 * MIB)).toBe(true);
    expect(checkGuestFrame((16 * MIB) / PAGE_SIZE - 1, 16 * MIB)).toBe(true);
  });

  it("rejects every frame of the hole 0xA0000-0xBFFFF", () => {
    expect(HOLE_FIRST_PFN).toBe(0xa0);
    expect(HOLE_LAST_PFN).toBe(0xbf);
    for (let pfn = HOLE_FIRST_PFN; pfn <= HOLE_LAST_PFN; pfn++) expect(checkGuestFrame(pfn, 16 * MIB)).toBe(false);
  });

  it("rejects the first frame beyond guest RAM and everything above it", () => {
    expect(checkGuestFrame((16 * MIB) / PAGE_SIZE, 16 * MIB)).toBe(false);
    expect(checkGuestFrame(0xfffff, 16 * MIB)).toBe(false);
    expect(checkGuestFrame(0xffffffff, 16 * MIB)).toBe(false);
    expect(checkGuestFrame(2 ** 53, 16 * MIB)).toBe(false);
  });

  it("rejects a partial last frame when RAM is not a whole number of frames", () => {
    expect(checkGuestFrame(3, 4 * PAGE_SIZE - 1)).toBe(false);
    expect(checkGuestFrame(2, 4 * PAGE_SIZE - 1)).toBe(true);
  });

  it("rejects negative, fractional and non-finite frame numbers", () => {
    for (const pfn of [-1, -0.5, 0.5, 1.000001, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(checkGuestFrame(pfn, 16 * MIB)).toBe(false);
    }
  });

  it("rejects everything when the memory size is zero or not a number", () => {
    expect(checkGuestFrame(0, 0)).toBe(false);
    expect(checkGuestFrame(0, Number.NaN)).toBe(false);
  });

  it("agrees with a byte-range definition for arbitrary frames and sizes", () => {
    fc.assert(
      fc.property(fc.integer({ min: -10, max: 5000 }), fc.integer({ min: 0, max: 4096 }), (pfn, sizeFrames) => {
        const size = sizeFrames * PAGE_SIZE;
        const start = pfn * PAGE_SIZE;
        const end = start + PAGE_SIZE;
        const expected = pfn >= 0 && end <= size && (end <= GUEST_HOLE_START || start >= GUEST_HOLE_END);
        expect(checkGuestFrame(pfn, size)).toBe(expected);
      }),
    );
  });
});

describe("ArrayGuestMemory", () => {
  it("reads and writes whole frames at pfn * 4096", () => {
    const mem = new ArrayGuestMemory(MIB);
    mem.bytes.fill(7, 3 * PAGE_SIZE, 4 * PAGE_SIZE);
    const dst = new Uint8Array(PAGE_SIZE);
    mem.readPage(3, dst);
    expect(dst.every((b) => b === 7)).toBe(true);
    const src = new Uint8Array(PAGE_SIZE).fill(9);
    mem.writePage(5, src);
    expect(mem.bytes[5 * PAGE_SIZE - 1]).toBe(0);
    expect(mem.bytes[5 * PAGE_SIZE]).toBe(9);
    expect(mem.bytes[6 * PAGE_SIZE - 1]).toBe(9);
    expect(mem.bytes[6 * PAGE_SIZE]).toBe(0);
  });

  it("works over a caller's SharedArrayBuffer", () => {
    const buffer = new SharedArrayBuffer(16 * PAGE_SIZE);
    const mem = new ArrayGuestMemory(buffer);
    mem.writePage(1, new Uint8Array(PAGE_SIZE).fill(1));
    expect(new Uint8Array(buffer)[PAGE_SIZE]).toBe(1);
    expect(mem.sizeBytes).toBe(16 * PAGE_SIZE);
  });

  it("refuses a size that is not a whole number of frames", () => {
    expect(() => new ArrayGuestMemory(PAGE_SIZE + 1)).toThrow(RangeError);
  });

  it("treats an unchecked frame or a wrong buffer length as a bug", () => {
    const mem = new ArrayGuestMemory(MIB);
    const page = new Uint8Array(PAGE_SIZE);
    expect(() => mem.readPage(HOLE_FIRST_PFN, page)).toThrow(BugIndicatingError);
    expect(() => mem.writePage(256, page)).toThrow(BugIndicatingError);
    expect(() => mem.readPage(-1, page)).toThrow(BugIndicatingError);
    expect(() => mem.readPage(1, new Uint8Array(PAGE_SIZE - 1))).toThrow(BugIndicatingError);
    expect(() => mem.writePage(1, new Uint8Array(PAGE_SIZE + 1))).toThrow(BugIndicatingError);
  });
});
