import { describe, expect, it } from "vitest";
import { guestMemoryOf } from "../../emulator/memory.ts";
import type { V86Cpu } from "../../emulator/v86-internals.ts";

const RAM = 2 << 20;

/** read_blob and write_blob as v86 0.5.462 has them: mem8.subarray and mem8.set, unchecked. */
function fakeCpu() {
  const mem8 = new Uint8Array(RAM + 4096); // what lies past guest RAM in v86's wasm memory
  const cpu = {
    memory_size: new Uint32Array([RAM]),
    read_blob: (addr: number, len: number) => mem8.subarray(addr, addr + len),
    write_blob: (bytes: Uint8Array, addr: number) => mem8.set(bytes, addr),
  } as unknown as V86Cpu;
  return { cpu, mem8 };
}

describe("guestMemoryOf (v86 guest-physical memory)", () => {
  it("reads and writes whole 4 KiB frames at pfn * 4096 (happy path)", () => {
    const { cpu, mem8 } = fakeCpu();
    const mem = guestMemoryOf(cpu);
    expect(mem.sizeBytes).toBe(RAM);
    mem.writePage(3, new Uint8Array(4096).fill(7));
    expect(mem8[3 * 4096]).toBe(7);
    expect(mem8[4 * 4096]).toBe(0);
    const dst = new Uint8Array(4096);
    mem.readPage(3, dst);
    expect(dst.every((b) => b === 7)).toBe(true);
  });

  it("refuses frames past the end of RAM, negative, fractional and in the hole 0xA0000-0xBFFFF", () => {
    const mem = guestMemoryOf(fakeCpu().cpu);
    const page = new Uint8Array(4096);
    for (const pfn of [RAM / 4096, -1, 1.5, Number.NaN, 0xa0, 0xbf]) {
      expect(() => mem.readPage(pfn, page)).toThrow(RangeError);
      expect(() => mem.writePage(pfn, page)).toThrow(RangeError);
    }
    expect(() => mem.readPage(RAM / 4096 - 1, page)).not.toThrow();
    expect(() => mem.readPage(0x9f, page)).not.toThrow();
    expect(() => mem.readPage(0xc0, page)).not.toThrow();
  });

  it("refuses buffers that are not one page, instead of moving part of a page", () => {
    const { cpu, mem8 } = fakeCpu();
    const mem = guestMemoryOf(cpu);
    expect(() => mem.writePage(1, new Uint8Array(100).fill(9))).toThrow(RangeError);
    expect(() => mem.writePage(1, new Uint8Array(8192).fill(9))).toThrow(RangeError);
    expect(mem8.subarray(4096, 8192).every((b) => b === 0)).toBe(true);
    expect(() => mem.readPage(1, new Uint8Array(8192))).toThrow(RangeError);
  });
});
