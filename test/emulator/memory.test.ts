import { createRequire } from "node:module";
import { V86 } from "v86";
import { afterEach, describe, expect, it } from "vitest";
import { guestMemoryOf } from "../../emulator/memory.ts";
import { internalsOf, type V86Cpu } from "../../emulator/v86-internals.ts";

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

describe("guestMemoryOf, fallback (a CPU without mem8 / jit_dirty_cache: read_blob and write_blob)", () => {
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

/**
 * The fast path, which production takes: a real v86 0.5.462 CPU (the wasm module loaded, no BIOS,
 * no Linux: about 0.1 s; one test runs a 12-byte multiboot program). What memory.ts relies on is
 * v86's own: mem8 is a Proxy over the wasm memory, jit_dirty_cache is the wasm export write_blob
 * calls, and the wasm memory can grow (which detaches every view over the old buffer).
 */
describe("guestMemoryOf, fast path (a real v86 CPU: one cached view of guest RAM)", () => {
  const FAST_RAM = 8 << 20;
  const emulators: V86[] = [];
  afterEach(async () => {
    for (const e of emulators.splice(0)) await e.destroy();
  });

  /** v86's wasm memory (a WebAssembly.Memory; the project's TypeScript libs do not declare it). */
  type RealCpu = V86Cpu & { wasm_memory: { readonly buffer: ArrayBuffer; grow(pages: number): number } };
  async function realCpu(multiboot?: Uint8Array): Promise<{ emulator: V86; cpu: RealCpu; blobCalls: string[]; dirtied: [number, number, boolean][] }> {
    const require = createRequire(import.meta.url);
    const emulator = new V86({
      wasm_path: require.resolve("v86/build/v86.wasm"),
      memory_size: FAST_RAM,
      ...(multiboot ? { multiboot: { buffer: multiboot.slice().buffer } } : {}),
      autostart: false,
      disable_keyboard: true,
      disable_mouse: true,
      disable_speaker: true,
    } as ConstructorParameters<typeof V86>[0]);
    emulators.push(emulator);
    await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
    const cpu = internalsOf(emulator) as RealCpu;
    expect(Object.prototype.toString.call(cpu.wasm_memory)).toBe("[object WebAssembly.Memory]");
    // v86's own read_blob/write_blob stay reachable for the test; calls from guestMemoryOf are
    // recorded (the fast path must not make any).
    const blobCalls: string[] = [];
    const readBlob = cpu.read_blob.bind(cpu);
    const writeBlob = cpu.write_blob.bind(cpu);
    cpu.read_blob = (addr, len) => (blobCalls.push(`read_blob ${addr}`), readBlob(addr, len));
    cpu.write_blob = (bytes, addr) => (blobCalls.push(`write_blob ${addr}`), writeBlob(bytes, addr));
    // The real invalidation, called as memory.ts calls it (unbound), recording each range and
    // whether the page still held its old bytes at that moment (invalidate, then copy).
    const dirty = cpu.jit_dirty_cache;
    expect(typeof dirty).toBe("function");
    const dirtied: [number, number, boolean][] = [];
    cpu.jit_dirty_cache = (start, end) => {
      dirtied.push([start, end, rawPage(cpu, start / 4096).every((b) => b === 0)]);
      dirty!(start, end);
    };
    return { emulator, cpu, blobCalls, dirtied };
  }

  /** Guest frame `pfn` straight from v86's wasm memory (not through guestMemoryOf). */
  function rawPage(cpu: RealCpu, pfn: number): Uint8Array {
    const mem8 = cpu.mem8!;
    return new Uint8Array(cpu.wasm_memory.buffer, mem8.byteOffset + pfn * 4096, 4096);
  }

  function pattern(seed: number): Uint8Array {
    return Uint8Array.from({ length: 4096 }, (_, i) => (i * 31 + seed) & 0xff);
  }

  it("reads the guest's bytes and writes land in guest RAM, without read_blob/write_blob", async () => {
    const { cpu, blobCalls } = await realCpu();
    const mem = guestMemoryOf(cpu);
    expect(mem.sizeBytes).toBe(FAST_RAM);
    // What the guest wrote (through v86's Proxy, as its own stores would land) is what readPage gives.
    cpu.mem8!.set(pattern(1), 5 * 4096);
    const dst = new Uint8Array(4096);
    mem.readPage(5, dst);
    expect(dst).toEqual(pattern(1));
    // writePage lands in the frame and nowhere else.
    mem.writePage(0x300, pattern(2));
    expect(rawPage(cpu, 0x300)).toEqual(pattern(2));
    expect(rawPage(cpu, 0x2ff).every((b) => b === 0)).toBe(true);
    expect(rawPage(cpu, 0x301).every((b) => b === 0)).toBe(true);
    // Top frame of guest RAM.
    const top = FAST_RAM / 4096 - 1;
    mem.writePage(top, pattern(3));
    mem.readPage(top, dst);
    expect(dst).toEqual(pattern(3));
    expect(cpu.read_blob(top * 4096, 4096)).toEqual(pattern(3));
    expect(blobCalls).toEqual(["read_blob " + top * 4096]); // only the test's own call above
  });

  it("invalidates JIT-compiled code on the page before every write, as write_blob does", async () => {
    const { cpu, dirtied } = await realCpu();
    const mem = guestMemoryOf(cpu);
    mem.writePage(7, pattern(4));
    mem.writePage(0x123, pattern(5));
    mem.readPage(7, new Uint8Array(4096)); // a read invalidates nothing
    expect(dirtied).toEqual([
      [7 * 4096, 8 * 4096, true],
      [0x123 * 4096, 0x124 * 4096, true],
    ]);
  });

  it("makes the guest run the new code of a page it overwrites (compiled code for the page is dropped)", async () => {
    // A multiboot image (v86 loads it without a BIOS, in 32-bit protected mode) whose code at
    // guest-physical 0x100020 loops forever on: mov eax, IMM; mov dx, 0x710; out dx, eax.
    const CODE_PAGE = 0x100; // frame of 0x100000
    const IMM = 0x21; // offset of IMM in the page
    const image = new Uint8Array(4096);
    const header = new DataView(image.buffer);
    const MAGIC = 0x1badb002;
    const FLAGS = 0x10000; // the load addresses are in the header
    [MAGIC, FLAGS, -(MAGIC + FLAGS) >>> 0, 0x100000, 0x100000, 0, 0, 0x100020].forEach((w, i) => header.setUint32(i * 4, w, true));
    image.set([0xb8, 0x11, 0x11, 0x11, 0x11, 0x66, 0xba, 0x10, 0x07, 0xef, 0xeb, 0xf4], 0x20);
    const { emulator, cpu } = await realCpu(image);
    let outs = 0;
    let last = 0;
    cpu.io.register_write(0x710, {}, undefined, undefined, (value) => {
      outs++;
      last = value >>> 0;
    });
    /** Lets the guest make `n` more round trips through the loop. */
    const loops = async (n: number) => {
      const until = outs + n;
      const deadline = Date.now() + 60_000;
      while (outs < until) {
        if (Date.now() > deadline) throw new Error(`the guest made ${outs} of ${until} round trips in 60 s`);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    };
    const mem = guestMemoryOf(cpu);
    const withImm = (imm: number) => {
      const page = new Uint8Array(4096);
      mem.readPage(CODE_PAGE, page);
      new DataView(page.buffer).setUint32(IMM, imm, true);
      return page;
    };
    await emulator.run();
    await loops(1_000_000); // hot: v86 runs the loop from compiled code
    expect(last).toBe(0x11111111);
    // The hazard this guards against, shown on this v86: bytes changed without invalidation are
    // not seen, the guest goes on running the old code.
    rawPage(cpu, CODE_PAGE).set(withImm(0x22222222));
    await loops(1_000_000);
    expect(last).toBe(0x11111111);
    // Through guestMemoryOf the guest runs what was written.
    mem.writePage(CODE_PAGE, withImm(0x33333333));
    await loops(1_000_000);
    expect(last).toBe(0x33333333);
  });

  it("keeps working after the wasm memory grows (the cached view is detached and rebuilt)", async () => {
    const { cpu, blobCalls, dirtied } = await realCpu();
    const mem = guestMemoryOf(cpu);
    mem.writePage(9, pattern(6));
    const before = cpu.wasm_memory.buffer;
    cpu.wasm_memory.grow(1);
    expect(before.byteLength).toBe(0); // detached: a view over it has length 0
    const dst = new Uint8Array(4096);
    mem.readPage(9, dst);
    expect(dst).toEqual(pattern(6));
    mem.writePage(10, pattern(7));
    expect(rawPage(cpu, 10)).toEqual(pattern(7));
    expect(dirtied.map(([start]) => start)).toEqual([9 * 4096, 10 * 4096]);
    expect(blobCalls).toEqual([]);
  });

  it("refuses frames past the end of RAM, negative, fractional and in the VGA hole, touching nothing", async () => {
    const { cpu, dirtied } = await realCpu();
    const mem = guestMemoryOf(cpu);
    const end = FAST_RAM / 4096;
    // v86's wasm memory goes on past guest RAM: a write there would corrupt the emulator.
    const past = new Uint8Array(cpu.wasm_memory.buffer, cpu.mem8!.byteOffset + FAST_RAM, 4096);
    const pastBefore = past.slice();
    const page = pattern(8);
    for (const pfn of [end, end + 1, -1, 1.5, Number.NaN, 0xa0, 0xbf]) {
      expect(() => mem.readPage(pfn, new Uint8Array(4096)), `read ${pfn}`).toThrow(RangeError);
      expect(() => mem.writePage(pfn, page), `write ${pfn}`).toThrow(RangeError);
    }
    expect(() => mem.writePage(3, new Uint8Array(100))).toThrow(RangeError);
    expect(() => mem.readPage(3, new Uint8Array(8192))).toThrow(RangeError);
    expect(past).toEqual(pastBefore);
    expect(rawPage(cpu, 0xa0).every((b) => b === 0)).toBe(true);
    expect(rawPage(cpu, 3).every((b) => b === 0)).toBe(true);
    expect(dirtied).toEqual([]);
    expect(() => mem.writePage(end - 1, page)).not.toThrow();
    expect(() => mem.writePage(0x9f, page)).not.toThrow();
    expect(() => mem.writePage(0xc0, page)).not.toThrow();
  });
});
