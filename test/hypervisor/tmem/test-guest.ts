/**
 * Test utility: a guest as the hypervisor sees it — an ArrayGuestMemory, a register file and a
 * TmemHypercallHandler — with one method per hypercall of tmem_abi.h. Results are returned signed
 * (EAX read back as an i32), the way the guest frontend reads them.
 */

import { expect } from "vitest";
import { ArrayGuestMemory, PAGE_SIZE } from "../../../hypervisor/guest-memory.ts";
import {
  TMEM_ABI_VERSION,
  TMEM_DESTROY_POOL,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_GET_PAGE,
  TMEM_NEW_POOL,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
} from "../../../hypervisor/tmem/abi.ts";
import { uuidToWords, type UuidText } from "../../../hypervisor/tmem/handle.ts";
import { encodeEax, TmemHypercallHandler, type TrapRegisters } from "../../../hypervisor/tmem/hypercall.ts";
import type { CreateClientOptions, TmemStore } from "../../../hypervisor/tmem/store.ts";

/** 1 MiB: 256 frames, frames 0xA0-0xBF being the hole. */
export const DEFAULT_MEMORY_BYTES = 1 << 20;

/** A 64-bit object id as (lo, hi) words. */
export function objectWords(id: bigint): [number, number] {
  const v = BigInt.asUintN(64, id);
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

export class TestGuest {
  readonly memory: ArrayGuestMemory;
  readonly handler: TmemHypercallHandler;
  readonly regs: TrapRegisters = { eax: 0, ebx: 0, ecx: 0, edx: 0, esi: 0, edi: 0 };
  readonly clientId: number;

  constructor(
    readonly store: TmemStore,
    name: string,
    options: { memoryBytes?: number; client?: CreateClientOptions; clientId?: number } = {},
  ) {
    this.clientId = options.clientId ?? store.createClient(name, options.client ?? {});
    this.memory = new ArrayGuestMemory(options.memoryBytes ?? DEFAULT_MEMORY_BYTES);
    this.handler = new TmemHypercallHandler(store, this.clientId, this.memory);
  }

  /** Issues one hypercall with these register values; returns EAX as an i32. */
  call(eax: number, ebx = 0, ecx = 0, esi = 0, edi = 0, edx = 0): number {
    const r = this.regs;
    r.eax = eax;
    r.ebx = ebx;
    r.ecx = ecx;
    r.esi = esi;
    r.edi = edi;
    r.edx = edx;
    this.handler.handle(r);
    return r.eax | 0;
  }

  probe(version = TMEM_ABI_VERSION): number {
    return this.call(encodeEax(TMEM_PROBE), version);
  }

  /** A new pool (flags TMEM_POOL_*); `uuid` for a shared pool. */
  newPool(flags = 0, uuid?: UuidText): number {
    const [w0, w1, w2, w3] = uuid === undefined ? [0, 0, 0, 0] : uuidToWords(uuid);
    return this.call(encodeEax(TMEM_NEW_POOL, 0, flags), w0, w1, w2, w3);
  }

  destroyPool(pool: number): number {
    return this.call(encodeEax(TMEM_DESTROY_POOL, pool));
  }

  put(pool: number, object: bigint, index: number, pfn: number): number {
    const [lo, hi] = objectWords(object);
    return this.call(encodeEax(TMEM_PUT_PAGE, pool), lo, hi, index, pfn);
  }

  get(pool: number, object: bigint, index: number, pfn: number): number {
    const [lo, hi] = objectWords(object);
    return this.call(encodeEax(TMEM_GET_PAGE, pool), lo, hi, index, pfn);
  }

  flushPage(pool: number, object: bigint, index: number): number {
    const [lo, hi] = objectWords(object);
    return this.call(encodeEax(TMEM_FLUSH_PAGE, pool), lo, hi, index);
  }

  flushObject(pool: number, object: bigint): number {
    const [lo, hi] = objectWords(object);
    return this.call(encodeEax(TMEM_FLUSH_OBJECT, pool), lo, hi);
  }

  /** Live view of frame `pfn`. */
  page(pfn: number): Uint8Array {
    return this.memory.page(pfn);
  }

  /** A copy of frame `pfn`. */
  pageCopy(pfn: number): Uint8Array {
    return this.memory.page(pfn).slice();
  }

  /** Fills frame `pfn` with bytes that are not same-filled and depend on `seed`. */
  fillDistinct(pfn: number, seed: number): Uint8Array {
    const page = this.memory.page(pfn);
    page.set(distinctPage(seed));
    return page.slice();
  }

  /** Fills frame `pfn` with one 32-bit word repeated (native byte order). */
  fillWord(pfn: number, word: number): Uint8Array {
    const page = this.memory.page(pfn);
    new Uint32Array(page.buffer, page.byteOffset, PAGE_SIZE / 4).fill(word);
    return page.slice();
  }
}

/** A page of bytes that is never same-filled and differs for every seed. */
export function distinctPage(seed: number): Uint8Array {
  const words = new Uint32Array(PAGE_SIZE / 4);
  let x = (seed * 2654435761 + 1) >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
  const page = new Uint8Array(words.buffer);
  page[0] = seed & 0xff;
  page[1] = (seed >>> 8) & 0xff;
  // Bytes 2 and 6 differ, so words 0 and 1 differ: never same-filled.
  page[2] = 0x5a;
  page[6] = 0x00;
  return page;
}

/** Independent same-filled check for tests: every byte equals the byte 4 positions earlier. */
export function isSameFilled(page: Uint8Array): boolean {
  for (let i = 4; i < page.length; i++) if (page[i] !== page[i - 4]) return false;
  return true;
}

/** Fast byte equality for property tests (expect().toEqual on 4 KiB arrays is slow). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/**
 * Assertions for hot property-test loops: vitest's expect() costs microseconds per call, so these
 * call it only when the check fails (to report it as usual).
 */
export function checkEqual<T>(actual: T, expected: T, what: string | (() => string)): void {
  if (!Object.is(actual, expected)) expect(actual, typeof what === "string" ? what : what()).toBe(expected);
}

export function checkTrue(condition: boolean, what: string | (() => string)): void {
  if (!condition) expect(condition, typeof what === "string" ? what : what()).toBe(true);
}
