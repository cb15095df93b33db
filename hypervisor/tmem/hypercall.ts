/**
 * The tmem hypercall handler: decodes one trap per tmem_abi.h (abi.ts), checks everything a guest
 * can get wrong, calls the store and writes the result back. Transport-independent: the emulator
 * calls handle() from its port trap on TMEM_IO_PORT with the guest's registers; nothing here knows
 * about ports or v86.
 *
 * Registers (tmem_abi.h, "Register use for one hypercall"):
 *   EAX in:  bits 0-7 op, bits 8-15 pool id, bits 16-31 op argument (pool flags for TMEM_NEW_POOL)
 *   EBX, ECX in: object id low, high      (TMEM_NEW_POOL: uuid words 0, 1)
 *   ESI in:  page index                   (TMEM_NEW_POOL: uuid word 2)
 *   EDI in:  guest page frame number      (TMEM_NEW_POOL: uuid word 3)
 *   EAX out: the result as a u32 (a negative TMEM_E* code in two's complement)
 *   TMEM_PROBE: EBX in guest ABI version; out EAX = TMEM_MAGIC, EBX = host version, ECX = 0 or
 *   TMEM_EPROTO. Every other op is answered TMEM_EPROTO until a probe with a matching version has
 *   been accepted; a probe with another version withdraws an earlier acceptance. Every probe is a
 *   full client reset (TmemStore.resetClient: the client leaves all its pools), so a guest that
 *   reboots, kexecs or resumes an image starts with no pools and can never reach TMEM_EMFILE by
 *   rebooting. While the host holds the client in "reset pending" (TmemStore.resetClient with
 *   pending, TmemDevice.requireReprobe), every op but the probe answers TMEM_E_RESET, accepted
 *   probe or not, and changes nothing.
 *
 * Checks, in this order (the first failure is the result): reset pending (TMEM_E_RESET), probe
 * accepted (TMEM_EPROTO), op known
 * (TMEM_ENOSYS), op argument zero for ops that take none (TMEM_EINVAL: bits 16-31 are reserved),
 * frame of a put or get inside guest RAM and outside the hole (TMEM_EFAULT), then the store's own
 * checks (pool: TMEM_ENOENT, reserved object or index: TMEM_EINVAL, ...). The pool field of
 * TMEM_NEW_POOL and TMEM_PROBE is ignored, as Xen ignores it for new_pool.
 *
 * handle() never throws. A guest mistake is a result code plus a per-client counter; an exception
 * inside (a bug in the host) is caught, counted as internalErrors, kept in lastInternalError for the
 * host to report, and answered TMEM_EINVAL.
 */

import {
  TMEM_ABI_VERSION,
  TMEM_DESTROY_POOL,
  TMEM_EFAULT,
  TMEM_EINVAL,
  TMEM_ENOSYS,
  TMEM_EPROTO,
  TMEM_E_RESET,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_FLUSH_RANGE,
  TMEM_FLUSH_RANGE_MAX,
  TMEM_GET_PAGE,
  TMEM_MAGIC,
  TMEM_NEW_POOL,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
} from "./abi.ts";
import { checkGuestFrame, type GuestMemory } from "../guest-memory.ts";
import { TmemuError } from "../user-errors.ts";
import type { TmemStore } from "./store.ts";

/**
 * Test-only fault injection, so that tests can show `tmemu validate` failing on a host bug, read
 * from TMEMU_INJECT_FAULT when a handler is created. Unset (or empty): no fault.
 *   store-put        one TMEM_PUT_PAGE in every INJECTED_PUT_FAULT_EVERY (the 1st, the 17th, ...)
 *                    throws inside the handler after the put is counted, as a bug in the store's put
 *                    path would. The handler then does what it does for any host bug: answers
 *                    TMEM_EINVAL and counts an internal error.
 *   lose-persistent  the host loses one persistent page: the LOST_PERSISTENT_GET-th TMEM_GET_PAGE
 *                    on a persistent pool that would hit finds its page flushed (the store counts
 *                    the flush) and answers TMEM_MISS, once per handler.
 */
export const INJECT_FAULT_ENV = "TMEMU_INJECT_FAULT";
export const INJECTED_PUT_FAULT_EVERY = 16;
export const LOST_PERSISTENT_GET = 16;

type InjectedFault = "store-put" | "lose-persistent" | undefined;

function injectedFault(): InjectedFault {
  const v = process.env[INJECT_FAULT_ENV];
  if (v === undefined || v === "") return undefined;
  if (v === "store-put" || v === "lose-persistent") return v;
  throw new TmemuError("USAGE", `${INJECT_FAULT_ENV}=${v} is not a fault tmemu can inject`, `use ${INJECT_FAULT_ENV}=store-put or lose-persistent, or unset it`);
}

/**
 * The guest's registers at the trap. Reads give the values as the CPU holds them (u32; a signed
 * view is tolerated, the handler takes every value mod 2^32); writes are truncated to 32 bits by the
 * implementation.
 */
export interface TrapRegisters {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
  esi: number;
  edi: number;
}

/** EAX fields (tmem_abi.h TMEM_EAX_*_SHIFT). */
export function decodeEax(eax: number): { op: number; pool: number; arg: number } {
  const v = eax >>> 0;
  return { op: v & 0xff, pool: (v >>> 8) & 0xff, arg: v >>> 16 };
}

/** The EAX a guest loads for `op` on `pool` with argument `arg` (inverse of decodeEax). */
export function encodeEax(op: number, pool = 0, arg = 0): number {
  return ((op & 0xff) | ((pool & 0xff) << 8) | ((arg & 0xffff) << 16)) >>> 0;
}

export class TmemHypercallHandler {
  private accepted = false;
  private lastError: unknown = undefined;
  private readonly fault = injectedFault();
  private readonly injectPutFault = this.fault === "store-put";
  private putsSeen = 0;
  private persistentGetsSeen = 0;

  constructor(
    private readonly store: TmemStore,
    readonly clientId: number,
    private readonly memory: GuestMemory,
  ) {}

  /** Whether a probe with the host's ABI version has been accepted. */
  get probed(): boolean {
    return this.accepted;
  }

  /** The last exception caught inside handle() (a host bug), for the host to report. */
  get lastInternalError(): unknown {
    return this.lastError;
  }

  /** Forgets the accepted probe (the guest rebooted): ops fail with TMEM_EPROTO until it probes. */
  reset(): void {
    this.accepted = false;
  }

  /**
   * For a guest restored from a save or a migration (client-state.ts) whose client came with it:
   * its kernel probed the host before the save, and does not probe again.
   */
  restoreProbed(probed: boolean): void {
    this.accepted = probed;
  }

  /** Handles one hypercall. Never throws. */
  handle(regs: TrapRegisters): void {
    let result: number;
    try {
      result = this.dispatch(regs);
    } catch (error) {
      result = this.internalError(error);
    }
    try {
      regs.eax = result >>> 0;
    } catch (error) {
      this.internalError(error);
    }
  }

  private dispatch(regs: TrapRegisters): number {
    const eax = regs.eax >>> 0;
    const op = eax & 0xff;
    if (op === TMEM_PROBE) return this.probe(regs);
    if (this.store.resetPending(this.clientId)) return this.refuse(op, TMEM_E_RESET);
    if (!this.accepted) return this.refuse(op, TMEM_EPROTO);
    const pool = (eax >>> 8) & 0xff;
    const arg = eax >>> 16;
    const store = this.store;
    const id = this.clientId;
    switch (op) {
      case TMEM_NEW_POOL:
        return store.newPool(id, arg, regs.ebx, regs.ecx, regs.esi, regs.edi);
      case TMEM_DESTROY_POOL:
        if (arg !== 0) return this.refuse(op, TMEM_EINVAL);
        return store.destroyPool(id, pool);
      case TMEM_PUT_PAGE: {
        if (arg !== 0) return this.refuse(op, TMEM_EINVAL);
        const pfn = regs.edi >>> 0;
        if (!checkGuestFrame(pfn, this.memory.sizeBytes)) return this.refuse(op, TMEM_EFAULT);
        if (this.injectPutFault && this.putsSeen++ % INJECTED_PUT_FAULT_EVERY === 0) {
          store.clientCounters(id)?.countOp(op);
          throw new Error(`injected fault in the store's put path (${INJECT_FAULT_ENV}=store-put)`);
        }
        return store.putPage(id, pool, regs.ebx, regs.ecx, regs.esi, this.memory, pfn);
      }
      case TMEM_GET_PAGE: {
        if (arg !== 0) return this.refuse(op, TMEM_EINVAL);
        const pfn = regs.edi >>> 0;
        if (!checkGuestFrame(pfn, this.memory.sizeBytes)) return this.refuse(op, TMEM_EFAULT);
        if (this.fault === "lose-persistent") this.losePersistentPage(pool, regs);
        return store.getPage(id, pool, regs.ebx, regs.ecx, regs.esi, this.memory, pfn);
      }
      case TMEM_FLUSH_PAGE:
        if (arg !== 0) return this.refuse(op, TMEM_EINVAL);
        return store.flushPage(id, pool, regs.ebx, regs.ecx, regs.esi);
      case TMEM_FLUSH_OBJECT:
        if (arg !== 0) return this.refuse(op, TMEM_EINVAL);
        return store.flushObject(id, pool, regs.ebx, regs.ecx);
      case TMEM_FLUSH_RANGE:
        return this.flushRange(regs, pool, arg);
      default:
        return this.refuse(op, TMEM_ENOSYS);
    }
  }

  /**
   * TMEM_FLUSH_RANGE: pages ESI .. ESI + EDI - 1 of one object, as that many TMEM_FLUSH_PAGE would
   * (the store counts each as one), in one trap. TMEM_EINVAL for a count outside 1..TMEM_FLUSH_RANGE_MAX
   * or a range that reaches the reserved index; else the sum of the flushes or the first error.
   */
  private flushRange(regs: TrapRegisters, pool: number, arg: number): number {
    const first = regs.esi >>> 0;
    const count = regs.edi >>> 0;
    if (arg !== 0 || count < 1 || count > TMEM_FLUSH_RANGE_MAX || first + count - 1 >= 0xffffffff) {
      return this.refuse(TMEM_FLUSH_RANGE, TMEM_EINVAL);
    }
    let flushed = 0;
    for (let i = 0; i < count; i++) {
      const r = this.store.flushPage(this.clientId, pool, regs.ebx, regs.ecx, first + i);
      if (r < 0) return r;
      flushed += r;
    }
    return flushed;
  }

  /** TMEMU_INJECT_FAULT=lose-persistent: the LOST_PERSISTENT_GET-th persistent get that would hit misses. */
  private losePersistentPage(pool: number, regs: TrapRegisters): void {
    if (this.persistentGetsSeen >= LOST_PERSISTENT_GET) return;
    const held = this.store.clientMetrics(this.clientId).pools.find((p) => p.poolId === pool);
    if (held?.persistent !== true) return;
    // A flush that finds the page is a get that would have hit.
    if (++this.persistentGetsSeen < LOST_PERSISTENT_GET) return;
    if (this.store.flushPage(this.clientId, pool, regs.ebx, regs.ecx, regs.esi) !== 1) this.persistentGetsSeen--;
  }

  private probe(regs: TrapRegisters): number {
    if (this.store.hasClient(this.clientId)) this.store.resetClient(this.clientId);
    this.accepted = regs.ebx >>> 0 === TMEM_ABI_VERSION;
    const status = this.accepted ? 0 : TMEM_EPROTO;
    this.store.countHypercall(this.clientId, TMEM_PROBE, status);
    regs.ebx = TMEM_ABI_VERSION;
    regs.ecx = status >>> 0;
    return TMEM_MAGIC;
  }

  private refuse(op: number, code: number): number {
    this.store.countHypercall(this.clientId, op, code);
    return code;
  }

  private internalError(error: unknown): number {
    this.lastError = error;
    try {
      const counters = this.store.clientCounters(this.clientId);
      if (counters !== undefined) {
        counters.internalErrors++;
        counters.errors.EINVAL++;
      }
    } catch (nested) {
      this.lastError = nested;
    }
    return TMEM_EINVAL;
  }
}
