/**
 * Random tmem hypercall sequences for worker-trap.test.ts, the same for the in-thread and the
 * threaded run: a probe, pools, then puts (each after filling its frame), gets, flushes, with
 * wrong frames, pools and ops mixed in.
 */
import { ArrayGuestMemory, PAGE_SIZE } from "../../hypervisor/guest-memory.ts";
import {
  TMEM_ABI_VERSION,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_GET_PAGE,
  TMEM_NEW_POOL,
  TMEM_POOL_PERSIST,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
} from "../../hypervisor/tmem/abi.ts";
import { encodeEax, type TrapRegisters } from "../../hypervisor/tmem/hypercall.ts";

export interface TrapStep {
  fill?: { pfn: number; seed: number };
  regs: TrapRegisters;
}

export function fillFrame(memory: ArrayGuestMemory, pfn: number, seed: number): void {
  const words = new Uint32Array(PAGE_SIZE / 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    // a page that is sometimes all one word (the same-filled path), else pseudo-random words
    if (seed % 7 !== 0) x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    words[i] = x;
  }
  memory.writePage(pfn, new Uint8Array(words.buffer));
}

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

function regs(eax: number, ebx = 0, ecx = 0, esi = 0, edi = 0): TrapRegisters {
  return { eax: eax >>> 0, ebx: ebx >>> 0, ecx: ecx >>> 0, edx: 0, esi: esi >>> 0, edi: edi >>> 0 };
}

/** `n` random steps for a guest of `frames` frames. */
export function randomSteps(seed: number, n: number, frames: number): TrapStep[] {
  const r = prng(seed);
  const pick = (k: number) => Math.floor(r() * k);
  const steps: TrapStep[] = [
    { regs: regs(encodeEax(TMEM_PROBE), TMEM_ABI_VERSION) },
    { regs: regs(encodeEax(TMEM_NEW_POOL, 0, 0), 1, 2, 3, 4) },
    { regs: regs(encodeEax(TMEM_NEW_POOL, 0, TMEM_POOL_PERSIST), 5, 6, 7, 8) },
  ];
  // frames the guest uses: a few low ones, some near the top, one in the hole, one past the end
  const pfnOf = () => {
    const k = pick(20);
    if (k === 0) return 0xa0 + pick(0x20);
    if (k === 1) return frames + pick(4);
    return 1 + pick(Math.min(64, frames - 1));
  };
  for (let i = 0; i < n; i++) {
    const pool = pick(10) === 0 ? 2 + pick(3) : pick(2);
    const obj = pick(4);
    const index = pick(16);
    const pfn = pfnOf();
    const k = pick(10);
    if (k < 4) steps.push({ fill: pfn < frames && (pfn < 0xa0 || pfn >= 0xc0) ? { pfn, seed: pick(1000) } : undefined, regs: regs(encodeEax(TMEM_PUT_PAGE, pool), obj, 0, index, pfn) } as TrapStep);
    else if (k < 8) steps.push({ regs: regs(encodeEax(TMEM_GET_PAGE, pool), obj, 0, index, pfn) });
    else if (k < 9) steps.push({ regs: regs(encodeEax(TMEM_FLUSH_PAGE, pool), obj, 0, index) });
    else steps.push({ regs: regs(encodeEax(pick(3) === 0 ? 0x55 : TMEM_FLUSH_OBJECT, pool), obj, 0) });
  }
  return steps.map((s) => (s.fill === undefined ? { regs: s.regs } : s));
}
