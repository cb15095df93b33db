/**
 * What a guest changes in its tmem client while its persistent pages are being copied to another
 * host (live migration, cli/migrate.ts), as Xen logged invalidations during the live phase: the
 * handles it put or flushed, the objects it flushed, and whether its pools changed at all (a new,
 * destroyed or reset pool: then every page is sent again at the pause).
 *
 * The log observes the hypercall handler's ops (the registers of tmem_abi.h, hypercall.ts) before
 * the handler runs them; it never changes a result. It logs every op that may change a persistent
 * page, whatever the pool, and the sender looks each handle up at the pause.
 */
import { TMEM_DESTROY_POOL, TMEM_FLUSH_OBJECT, TMEM_FLUSH_PAGE, TMEM_FLUSH_RANGE, TMEM_FLUSH_RANGE_MAX, TMEM_NEW_POOL, TMEM_PROBE, TMEM_PUT_PAGE } from "./abi.ts";
import type { TmemHypercallHandler, TrapRegisters } from "./hypercall.ts";

/** A page handle as text: "pool:lo:hi:index" (u32 decimal). */
export type HandleKey = string;
/** An object as text: "pool:lo:hi". */
export type ObjectText = string;

export function handleKey(pool: number, lo: number, hi: number, index: number): HandleKey {
  return `${pool}:${lo >>> 0}:${hi >>> 0}:${index >>> 0}`;
}

export function parseHandleKey(key: HandleKey): { pool: number; lo: number; hi: number; index: number } {
  const [pool, lo, hi, index] = key.split(":").map(Number);
  return { pool: pool ?? 0, lo: lo ?? 0, hi: hi ?? 0, index: index ?? 0 };
}

export class ClientChangeLog {
  /** Handles put or flushed since the log started (or was last taken). */
  readonly handles = new Set<HandleKey>();
  /** Objects flushed whole. */
  readonly objects = new Set<ObjectText>();
  /** A pool was created, destroyed or reset: pool ids may now name other pools. */
  poolsChanged = false;
  private detach: (() => void) | undefined;

  /** Starts observing `handler` (one log per handler at a time). */
  constructor(handler: TmemHypercallHandler) {
    const original = handler.handle;
    const log = this;
    handler.handle = function observed(this: TmemHypercallHandler, regs: TrapRegisters): void {
      log.observe(regs);
      original.call(this, regs);
    };
    this.detach = () => {
      handler.handle = original;
    };
  }

  /** Notes the op in `regs` (before the handler runs it). */
  observe(regs: TrapRegisters): void {
    const eax = regs.eax >>> 0;
    const op = eax & 0xff;
    const pool = (eax >>> 8) & 0xff;
    switch (op) {
      case TMEM_PUT_PAGE:
      case TMEM_FLUSH_PAGE:
        this.handles.add(handleKey(pool, regs.ebx, regs.ecx, regs.esi));
        break;
      case TMEM_FLUSH_RANGE: {
        const first = regs.esi >>> 0;
        const count = Math.min(regs.edi >>> 0, TMEM_FLUSH_RANGE_MAX);
        for (let i = 0; i < count && first + i < 0xffffffff; i++) this.handles.add(handleKey(pool, regs.ebx, regs.ecx, first + i));
        break;
      }
      case TMEM_FLUSH_OBJECT:
        this.objects.add(`${pool}:${regs.ebx >>> 0}:${regs.ecx >>> 0}`);
        break;
      case TMEM_NEW_POOL:
      case TMEM_DESTROY_POOL:
      case TMEM_PROBE:
        this.poolsChanged = true;
        break;
      default:
        break;
    }
  }

  /** Whether `key` lies in an object flushed whole. */
  inFlushedObject(key: HandleKey): boolean {
    const { pool, lo, hi } = parseHandleKey(key);
    return this.objects.has(`${pool}:${lo}:${hi}`);
  }

  /** Stops observing; the handler is as it was. */
  dispose(): void {
    this.detach?.();
    this.detach = undefined;
  }
}
