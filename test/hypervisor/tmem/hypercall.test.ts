/**
 * The hypercall handler: EAX decoding, probe-first, frame checks, result encoding, counters, and
 * that nothing a guest puts in its registers (nor a host bug) ever makes handle() throw.
 */

import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  TMEM_ABI_VERSION,
  TMEM_DESTROY_POOL,
  TMEM_EFAULT,
  TMEM_EINVAL,
  TMEM_ENOENT,
  TMEM_ENOSYS,
  TMEM_EPROTO,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_FLUSH_RANGE,
  TMEM_GET_PAGE,
  TMEM_HIT,
  TMEM_MAGIC,
  TMEM_MISS,
  TMEM_NEW_POOL,
  TMEM_POOL_PERSIST,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
} from "../../../hypervisor/tmem/abi.ts";
import { decodeEax, encodeEax, TmemHypercallHandler, type TrapRegisters } from "../../../hypervisor/tmem/hypercall.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";
import { ArrayGuestMemory, PAGE_SIZE, type GuestMemory } from "../../../hypervisor/guest-memory.ts";
import { BugIndicatingError } from "../../../hypervisor/errors.ts";
import { TestGuest } from "./test-guest.ts";

const KNOWN_OPS = [TMEM_NEW_POOL, TMEM_DESTROY_POOL, TMEM_PUT_PAGE, TMEM_GET_PAGE, TMEM_FLUSH_PAGE, TMEM_FLUSH_OBJECT, TMEM_FLUSH_RANGE, TMEM_PROBE];
const UNKNOWN_OPS = Array.from({ length: 256 }, (_, op) => op).filter((op) => !KNOWN_OPS.includes(op));
const SRC = 16;
const DST = 17;

function probedGuest(budgetFrames = 16): { store: TmemStore; g: TestGuest } {
  const store = new TmemStore({ budgetFrames });
  const g = new TestGuest(store, "g");
  expect(g.probe()).toBe(TMEM_MAGIC);
  return { store, g };
}

describe("EAX layout", () => {
  it("is op in bits 0-7, pool in bits 8-15, argument in bits 16-31", () => {
    expect(encodeEax(TMEM_PUT_PAGE, 3)).toBe(0x0304);
    expect(encodeEax(TMEM_NEW_POOL, 0, TMEM_POOL_PERSIST)).toBe(0x00010001);
    expect(encodeEax(0xff, 0xff, 0xffff)).toBe(0xffffffff);
    expect(decodeEax(0xabcd1234)).toEqual({ op: 0x34, pool: 0x12, arg: 0xabcd });
    expect(decodeEax(-1)).toEqual({ op: 0xff, pool: 0xff, arg: 0xffff });
  });
});

describe("probe", () => {
  it("answers TMEM_MAGIC in EAX, the host version in EBX and 0 in ECX for a matching version", () => {
    const store = new TmemStore({ budgetFrames: 4 });
    const g = new TestGuest(store, "g");
    expect(g.call(encodeEax(TMEM_PROBE), TMEM_ABI_VERSION, 0x1234) >>> 0).toBe(TMEM_MAGIC);
    expect(g.regs.ebx).toBe(TMEM_ABI_VERSION);
    expect(g.regs.ecx).toBe(0);
    expect(g.handler.probed).toBe(true);
  });

  it("answers TMEM_EPROTO in ECX for another version, and ops stay refused", () => {
    const store = new TmemStore({ budgetFrames: 4 });
    const g = new TestGuest(store, "g");
    for (const version of [0, 2, 0xffffffff]) {
      expect(g.probe(version) >>> 0).toBe(TMEM_MAGIC);
      expect(g.regs.ebx).toBe(TMEM_ABI_VERSION);
      expect(g.regs.ecx).toBe(TMEM_EPROTO >>> 0);
      expect(g.newPool()).toBe(TMEM_EPROTO);
    }
    expect(store.clientMetrics(g.clientId).errors.EPROTO).toBe(6);
    expect(store.clientMetrics(g.clientId).probes).toBe(3);
  });

  it("with another version withdraws an earlier acceptance", () => {
    const { g } = probedGuest();
    expect(g.newPool()).toBe(0);
    g.probe(2);
    expect(g.handler.probed).toBe(false);
    expect(g.newPool()).toBe(TMEM_EPROTO);
  });

  it("ignores the pool and argument fields of EAX", () => {
    const store = new TmemStore({ budgetFrames: 4 });
    const g = new TestGuest(store, "g");
    expect(g.call(encodeEax(TMEM_PROBE, 0xff, 0xffff), TMEM_ABI_VERSION) >>> 0).toBe(TMEM_MAGIC);
    expect(g.handler.probed).toBe(true);
  });

  it("must come first: every other op, known or not, is TMEM_EPROTO and changes nothing", () => {
    const store = new TmemStore({ budgetFrames: 4 });
    const g = new TestGuest(store, "g");
    g.fillDistinct(SRC, 1);
    for (let op = 0; op < 256; op++) {
      if (op === TMEM_PROBE) continue;
      expect(g.call(encodeEax(op), 1, 0, 0, SRC)).toBe(TMEM_EPROTO);
      expect(g.regs).toMatchObject({ ebx: 1, ecx: 0, esi: 0, edi: SRC });
    }
    expect(store.clientMetrics(g.clientId)).toMatchObject({ pools: [], newPools: 1, puts: 1, gets: 1 });
    expect(store.clientMetrics(g.clientId).errors.EPROTO).toBe(255);
    expect(store.metrics().pages).toBe(0);
  });

  it("is forgotten by reset(), as after a guest reboot", () => {
    const { g } = probedGuest();
    g.handler.reset();
    expect(g.newPool()).toBe(TMEM_EPROTO);
  });
});

describe("decoding", () => {
  it("answers every unknown op with TMEM_ENOSYS", () => {
    const { store, g } = probedGuest();
    for (const op of UNKNOWN_OPS) expect(g.call(encodeEax(op, 0, 0))).toBe(TMEM_ENOSYS);
    expect(store.clientMetrics(g.clientId).errors.ENOSYS).toBe(UNKNOWN_OPS.length);
  });

  it("refuses a non-zero argument field on ops that take none (TMEM_EINVAL)", () => {
    const { store, g } = probedGuest();
    const pool = g.newPool();
    g.fillDistinct(SRC, 1);
    for (const op of [TMEM_DESTROY_POOL, TMEM_PUT_PAGE, TMEM_GET_PAGE, TMEM_FLUSH_PAGE, TMEM_FLUSH_OBJECT]) {
      expect(g.call(encodeEax(op, pool, 1), 1, 0, 0, SRC)).toBe(TMEM_EINVAL);
      expect(g.call(encodeEax(op, pool, 0x8000), 1, 0, 0, SRC)).toBe(TMEM_EINVAL);
    }
    expect(store.metrics().pages).toBe(0);
    expect(store.clientMetrics(g.clientId).pools).toHaveLength(1);
  });

  it("ignores the pool field of TMEM_NEW_POOL", () => {
    const { g } = probedGuest();
    expect(g.call(encodeEax(TMEM_NEW_POOL, 9, 0))).toBe(0);
  });

  it("writes results into EAX as u32, negative codes in two's complement", () => {
    const { g } = probedGuest();
    g.call(encodeEax(TMEM_FLUSH_PAGE, 3));
    expect(g.regs.eax).toBe(0xfffffffe); // TMEM_ENOENT
    g.call(encodeEax(200));
    expect(g.regs.eax).toBe(TMEM_ENOSYS >>> 0);
  });

  it("writes only EAX for data ops", () => {
    const { g } = probedGuest();
    const pool = g.newPool();
    g.fillDistinct(SRC, 1);
    g.put(pool, 0x1122334455667788n, 9, SRC);
    expect(g.regs).toMatchObject({ ebx: 0x55667788, ecx: 0x11223344, esi: 9, edi: SRC, edx: 0 });
  });

  it("takes register values mod 2^32, so a signed view of the registers means the same", () => {
    const { store, g } = probedGuest();
    const pool = g.newPool();
    g.fillDistinct(SRC, 1);
    // -1 is 0xffffffff: both object words all-ones is the reserved object.
    expect(g.call(encodeEax(TMEM_PUT_PAGE, pool) | 0, -1, -1, 0, SRC)).toBe(TMEM_EINVAL);
    // a negative pfn is a frame far beyond RAM
    expect(g.call(encodeEax(TMEM_PUT_PAGE, pool) | 0, 1, 0, 0, -SRC)).toBe(TMEM_EFAULT);
    // the same handle, given signed or unsigned, is the same page
    expect(g.call(encodeEax(TMEM_PUT_PAGE, pool), 0xfffffff0, 0x80000000, 0xfffffffe, SRC)).toBe(TMEM_HIT);
    expect(g.call(encodeEax(TMEM_GET_PAGE, pool) | 0, -16, -0x80000000, -2, DST)).toBe(TMEM_HIT);
    expect(g.page(DST)).toEqual(g.page(SRC));
    expect(store.metrics().pages).toBe(0);
  });
});

describe("guest frames", () => {
  const HOLE = [0xa0, 0xb0, 0xbf];
  const BEYOND = [256, 257, 0xfffff, 0xffffffff];

  it("in the hole 0xA0000-0xBFFFF or beyond RAM are TMEM_EFAULT for put and get", () => {
    const { store, g } = probedGuest();
    const pool = g.newPool(TMEM_POOL_PERSIST);
    g.fillDistinct(SRC, 1);
    expect(g.put(pool, 1n, 0, SRC)).toBe(TMEM_HIT);
    for (const pfn of [...HOLE, ...BEYOND]) {
      expect(g.put(pool, 1n, 1, pfn)).toBe(TMEM_EFAULT);
      expect(g.get(pool, 1n, 0, pfn)).toBe(TMEM_EFAULT);
    }
    expect(store.clientMetrics(g.clientId).errors.EFAULT).toBe(2 * (HOLE.length + BEYOND.length));
    expect(store.metrics().pages).toBe(1);
  });

  it("next to the hole and at the top of RAM are fine", () => {
    const { g } = probedGuest();
    const pool = g.newPool(TMEM_POOL_PERSIST);
    for (const pfn of [0, 0x9f, 0xc0, 255]) {
      g.fillDistinct(pfn, pfn);
      expect(g.put(pool, 1n, pfn, pfn)).toBe(TMEM_HIT);
    }
  });

  it("are checked before the pool (a bad frame on a bad pool is TMEM_EFAULT)", () => {
    const { g } = probedGuest();
    expect(g.put(7, 1n, 0, 0xa0)).toBe(TMEM_EFAULT);
    expect(g.put(7, 1n, 0, SRC)).toBe(TMEM_ENOENT);
  });

  it("are not looked at by flushes", () => {
    const { g } = probedGuest();
    const pool = g.newPool();
    expect(g.call(encodeEax(TMEM_FLUSH_PAGE, pool), 1, 0, 0, 0xa0)).toBe(TMEM_MISS);
    expect(g.call(encodeEax(TMEM_FLUSH_OBJECT, pool), 1, 0, 0, 0xffffffff)).toBe(0);
  });
});

describe("counters", () => {
  it("count every hypercall under its op and every error under its code, wherever refused", () => {
    const { store, g } = probedGuest();
    const pool = g.newPool();
    g.fillDistinct(SRC, 1);
    g.put(pool, 1n, 0, SRC); // ok
    g.put(pool, 1n, 0, 0xa0); // EFAULT in the handler
    g.put(9, 1n, 0, SRC); // ENOENT in the store
    g.get(pool, 1n, 0, DST); // hit
    g.get(pool, 1n, 0, DST); // miss
    g.call(encodeEax(TMEM_GET_PAGE, pool, 1)); // EINVAL in the handler
    g.flushPage(pool, 1n, 0);
    g.flushObject(pool, 1n);
    g.destroyPool(pool);
    g.call(encodeEax(99)); // ENOSYS
    const m = store.clientMetrics(g.clientId);
    expect(m).toMatchObject({ probes: 1, newPools: 1, destroyPools: 1, puts: 3, gets: 3, getHits: 1, flushPages: 1, flushObjects: 1 });
    expect(m.errors).toEqual({ EPERM: 0, ENOENT: 1, EFAULT: 1, EBUSY: 0, EINVAL: 1, EMFILE: 0, ENOSPC: 0, ENOSYS: 1, EPROTO: 0, E_RESET: 0 });
    expect(m.internalErrors).toBe(0);
  });
});

/** GuestMemory that fails on demand, standing in for a broken emulator adapter. */
class FailingMemory implements GuestMemory {
  readonly inner = new ArrayGuestMemory(1 << 20);
  readonly sizeBytes = this.inner.sizeBytes;
  failReads = false;
  failWrites = false;

  readPage(pfn: number, dst: Uint8Array): void {
    if (this.failReads) {
      dst.fill(0x66, 0, 100); // half a copy, then the failure
      throw new BugIndicatingError("read failed");
    }
    this.inner.readPage(pfn, dst);
  }

  writePage(pfn: number, src: Uint8Array): void {
    if (this.failWrites) throw new RangeError("write failed");
    this.inner.writePage(pfn, src);
  }
}

describe("internal errors", () => {
  function setup() {
    const store = new TmemStore({ budgetFrames: 4 });
    const id = store.createClient("g");
    const memory = new FailingMemory();
    const handler = new TmemHypercallHandler(store, id, memory);
    const regs: TrapRegisters = { eax: encodeEax(TMEM_PROBE), ebx: TMEM_ABI_VERSION, ecx: 0, edx: 0, esi: 0, edi: 0 };
    handler.handle(regs);
    const call = (op: number, pool: number, lo: number, index: number, pfn: number): number => {
      Object.assign(regs, { eax: encodeEax(op, pool), ebx: lo, ecx: 0, esi: index, edi: pfn });
      handler.handle(regs);
      return regs.eax | 0;
    };
    memory.inner.page(SRC).set(new Uint8Array(PAGE_SIZE).map((_, i) => i * 7 + 1));
    Object.assign(regs, { eax: encodeEax(TMEM_NEW_POOL) });
    handler.handle(regs);
    return { store, id, memory, handler, call, pool: regs.eax };
  }

  it("from a failing put become TMEM_EINVAL, are counted and kept, and leak no frame", () => {
    const { store, id, memory, handler, call, pool } = setup();
    memory.failReads = true;
    expect(() => call(TMEM_PUT_PAGE, pool, 1, 0, SRC)).not.toThrow();
    expect(call(TMEM_PUT_PAGE, pool, 1, 0, SRC)).toBe(TMEM_EINVAL);
    expect(handler.lastInternalError).toBeInstanceOf(BugIndicatingError);
    expect(store.clientMetrics(id).internalErrors).toBe(2);
    expect(store.clientMetrics(id).errors.EINVAL).toBe(2);
    store.checkInvariants();
    expect(store.metrics()).toMatchObject({ pages: 0, framesUsed: 0 });
  });

  it("from a failing put over an existing page flush that page (no half-written data)", () => {
    const { store, memory, call, pool } = setup();
    expect(call(TMEM_PUT_PAGE, pool, 1, 0, SRC)).toBe(TMEM_HIT);
    memory.failReads = true;
    expect(call(TMEM_PUT_PAGE, pool, 1, 0, SRC)).toBe(TMEM_EINVAL);
    memory.failReads = false;
    expect(call(TMEM_GET_PAGE, pool, 1, 0, DST)).toBe(TMEM_MISS);
    store.checkInvariants();
  });

  it("from a failing get leave the page in the store", () => {
    const { store, memory, call, pool } = setup();
    expect(call(TMEM_PUT_PAGE, pool, 1, 0, SRC)).toBe(TMEM_HIT);
    memory.failWrites = true;
    expect(call(TMEM_GET_PAGE, pool, 1, 0, DST)).toBe(TMEM_EINVAL);
    memory.failWrites = false;
    expect(call(TMEM_GET_PAGE, pool, 1, 0, DST)).toBe(TMEM_HIT);
    expect(memory.inner.page(DST)).toEqual(memory.inner.page(SRC));
    store.checkInvariants();
  });

  it("from register accessors that throw never escape handle()", () => {
    const { store, id, handler } = setup();
    const broken = {
      get eax(): number {
        throw new Error("eax read");
      },
      set eax(_v: number) {
        throw new Error("eax write");
      },
      ebx: 0,
      ecx: 0,
      edx: 0,
      esi: 0,
      edi: 0,
    } satisfies TrapRegisters;
    expect(() => handler.handle(broken)).not.toThrow();
    expect(store.clientMetrics(id).internalErrors).toBe(2);
    expect(String(handler.lastInternalError)).toContain("eax write");
  });
});

describe("hostile register values", () => {
  const anyNumber = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.integer({ min: -0x80000000, max: 0x7fffffff }),
    fc.constantFrom(0, -0, 0xffffffff, 0x100000000, 2 ** 53, -(2 ** 53), Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5, -1.5, 1e300),
    fc.double(),
  );
  /** EAX mostly with a known op, so that the op's own decoding is reached. */
  const eax = fc.oneof(
    anyNumber,
    fc.tuple(fc.constantFrom(...KNOWN_OPS), fc.nat(0xff), fc.constantFrom(0, 0, 0, 1, 2, 3, 0xffff)).map(([op, pool, arg]) => encodeEax(op, pool, arg)),
  );

  it("never make handle() throw, always leave a u32 in EAX, and are never internal errors", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(eax, anyNumber, anyNumber, anyNumber, anyNumber, anyNumber), { maxLength: 60 }), (calls) => {
        const store = new TmemStore({ budgetFrames: 4 });
        const g = new TestGuest(store, "g", { memoryBytes: 64 * PAGE_SIZE });
        g.probe();
        for (const [a, b, c, d, s, e] of calls) {
          const regs = g.regs;
          Object.assign(regs, { eax: a, ebx: b, ecx: c, edx: d, esi: s, edi: e });
          expect(() => g.handler.handle(regs)).not.toThrow();
          expect(Number.isInteger(regs.eax) && regs.eax >= 0 && regs.eax <= 0xffffffff).toBe(true);
        }
        expect(g.handler.lastInternalError).toBeUndefined();
        expect(store.clientMetrics(g.clientId).internalErrors).toBe(0);
        store.checkInvariants();
      }),
      { numRuns: 150 },
    );
  });
});
