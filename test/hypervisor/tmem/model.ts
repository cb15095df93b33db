/**
 * Test utility: a small reference model of the tmem semantics (DESIGN.md "tmem semantics",
 * tmem_abi.h) at the register level, written with plain Maps and no code from hypervisor/ beyond
 * the ABI numbers. It models a store with room for everything: no eviction, no frame budget, no
 * page cap. Property tests run it side by side with the real handler and store.
 */

import {
  TMEM_ABI_VERSION,
  TMEM_DESTROY_POOL,
  TMEM_EBUSY,
  TMEM_EFAULT,
  TMEM_EINVAL,
  TMEM_EMFILE,
  TMEM_ENOENT,
  TMEM_ENOSPC,
  TMEM_ENOSYS,
  TMEM_EPERM,
  TMEM_EPROTO,
  TMEM_E_RESET,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_FLUSH_RANGE,
  TMEM_GET_PAGE,
  TMEM_HIT,
  TMEM_MAGIC,
  TMEM_MAX_POOLS,
  TMEM_MISS,
  TMEM_NEW_POOL,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
} from "../../../hypervisor/tmem/abi.ts";

const PAGE = 4096;

export interface Regs {
  eax: number;
  ebx: number;
  ecx: number;
  esi: number;
  edi: number;
}

export interface ModelOutcome {
  /** EAX as an i32. */
  eax: number;
  /** TMEM_PROBE only: EBX and ECX as u32. */
  probe?: { ebx: number; ecx: number };
  /** A hit of TMEM_GET_PAGE: the bytes the guest frame must hold now. */
  got?: { pfn: number; data: Uint8Array };
  /** The pool a data op named (set once the pool was found), for reconciliation. */
  pool?: ModelPool;
}

export interface ModelPool {
  readonly persistent: boolean;
  readonly uuid: string | undefined;
  /** member client index -> local pool id */
  readonly members: Map<number, number>;
  /** "lo:hi" -> index -> data */
  readonly objects: Map<string, Map<number, Uint8Array>>;
}

interface ModelClient {
  accepted: boolean;
  /** The host reset the client and wants a probe: every op but the probe is TMEM_E_RESET. */
  resetPending: boolean;
  frozen: boolean;
  allowance: number;
  readonly auth: Set<string>;
  readonly pools: (ModelPool | undefined)[];
}

function u32(v: number): number {
  return v >>> 0;
}

function hex8(w: number): string {
  // bytes of w, little-endian, as hex
  let s = "";
  for (let i = 0; i < 4; i++) s += ((w >>> (8 * i)) & 0xff).toString(16).padStart(2, "0");
  return s;
}

export function modelUuid(w0: number, w1: number, w2: number, w3: number): string {
  const h = hex8(w0) + hex8(w1) + hex8(w2) + hex8(w3);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export class TmemModel {
  readonly clients: ModelClient[] = [];
  private readonly shared = new Map<string, ModelPool>();

  /**
   * `units(data)`: what one persistent page counts against its client's allowance, in pages (the
   * store counts memory: a compressed page its size-class slot / 4 KiB). Default: 1 (page counting).
   */
  constructor(
    private readonly memoryBytes: number,
    private readonly units: (data: Uint8Array) => number = () => 1,
  ) {}

  addClient(auth: readonly string[] = [], allowance = Number.POSITIVE_INFINITY): number {
    this.clients.push({
      accepted: false,
      resetPending: false,
      frozen: false,
      allowance,
      auth: new Set(auth),
      pools: new Array<ModelPool | undefined>(TMEM_MAX_POOLS).fill(undefined),
    });
    return this.clients.length - 1;
  }

  client(ci: number): ModelClient {
    const c = this.clients[ci];
    if (c === undefined) throw new Error(`model: no client ${ci}`);
    return c;
  }

  /** Every pool that exists, once. */
  allPools(): ModelPool[] {
    const pools = new Set<ModelPool>();
    for (const c of this.clients) for (const p of c.pools) if (p !== undefined) pools.add(p);
    return [...pools];
  }

  /** Every stored page's data. */
  allPages(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const p of this.allPools()) for (const obj of p.objects.values()) out.push(...obj.values());
    return out;
  }

  private goodFrame(pfn: number): boolean {
    const start = pfn * PAGE;
    const inHole = start < 0xc0000 && start + PAGE > 0xa0000;
    return start + PAGE <= this.memoryBytes && !inHole;
  }

  /** The client's persistent pages, each counted as `units` says. */
  private persistentPages(ci: number): number {
    let n = 0;
    for (const p of this.client(ci).pools) {
      if (p?.persistent !== true) continue;
      for (const obj of p.objects.values()) for (const data of obj.values()) n += this.units(data);
    }
    return n;
  }

  /** One hypercall by client `ci`; `readPage(pfn)` gives the guest's frame content for a put. */
  hypercall(ci: number, r: Regs, readPage: (pfn: number) => Uint8Array): ModelOutcome {
    const c = this.client(ci);
    const eax = u32(r.eax);
    const op = eax & 0xff;
    const poolId = (eax >>> 8) & 0xff;
    const arg = eax >>> 16;
    if (op === TMEM_PROBE) {
      this.reset(ci, false); // every probe is a full client reset
      c.accepted = u32(r.ebx) === TMEM_ABI_VERSION;
      return { eax: TMEM_MAGIC | 0, probe: { ebx: TMEM_ABI_VERSION, ecx: c.accepted ? 0 : u32(TMEM_EPROTO) } };
    }
    if (c.resetPending) return { eax: TMEM_E_RESET };
    if (!c.accepted) return { eax: TMEM_EPROTO };
    const lo = u32(r.ebx);
    const hi = u32(r.ecx);
    const index = u32(r.esi);
    const pfn = u32(r.edi);
    const objKey = `${lo}:${hi}`;
    const reservedObj = lo === 0xffffffff && hi === 0xffffffff;
    const reservedIdx = index === 0xffffffff;
    const pool = poolId < TMEM_MAX_POOLS ? c.pools[poolId] : undefined;

    switch (op) {
      case TMEM_NEW_POOL: {
        if ((arg & ~3) !== 0 || arg === 3) return { eax: TMEM_EINVAL };
        const slot = c.pools.indexOf(undefined);
        if ((arg & 2) === 0) {
          if (slot < 0) return { eax: TMEM_EMFILE };
          c.pools[slot] = { persistent: (arg & 1) !== 0, uuid: undefined, members: new Map([[ci, slot]]), objects: new Map() };
          return { eax: slot };
        }
        const uuid = modelUuid(lo, hi, index, pfn);
        if (!c.auth.has(uuid)) return { eax: TMEM_EPERM };
        const existing = this.shared.get(uuid);
        const held = existing?.members.get(ci);
        if (held !== undefined) return { eax: held };
        if (slot < 0) return { eax: TMEM_EMFILE };
        const p = existing ?? { persistent: false, uuid, members: new Map<number, number>(), objects: new Map() };
        this.shared.set(uuid, p);
        p.members.set(ci, slot);
        c.pools[slot] = p;
        return { eax: slot };
      }
      case TMEM_DESTROY_POOL: {
        if (arg !== 0) return { eax: TMEM_EINVAL };
        if (pool === undefined) return { eax: TMEM_ENOENT };
        this.leave(ci, poolId, pool);
        return { eax: 0 };
      }
      case TMEM_PUT_PAGE: {
        if (arg !== 0) return { eax: TMEM_EINVAL };
        if (!this.goodFrame(pfn)) return { eax: TMEM_EFAULT };
        if (pool === undefined) return { eax: TMEM_ENOENT };
        if (reservedObj || reservedIdx) return { eax: TMEM_EINVAL, pool };
        const obj = pool.objects.get(objKey);
        const exists = obj?.has(index) === true;
        if (c.frozen) {
          this.remove(pool, objKey, index);
          return { eax: TMEM_EBUSY, pool };
        }
        if (!exists && pool.persistent && this.persistentPages(ci) >= c.allowance) return { eax: TMEM_ENOSPC, pool };
        const data = readPage(pfn).slice();
        if (obj === undefined) pool.objects.set(objKey, new Map([[index, data]]));
        else obj.set(index, data);
        return { eax: TMEM_HIT, pool };
      }
      case TMEM_GET_PAGE: {
        if (arg !== 0) return { eax: TMEM_EINVAL };
        if (!this.goodFrame(pfn)) return { eax: TMEM_EFAULT };
        if (pool === undefined) return { eax: TMEM_ENOENT };
        if (reservedObj || reservedIdx) return { eax: TMEM_EINVAL, pool };
        const data = pool.objects.get(objKey)?.get(index);
        if (data === undefined) return { eax: TMEM_MISS, pool };
        if (!pool.persistent && pool.uuid === undefined) this.remove(pool, objKey, index);
        return { eax: TMEM_HIT, got: { pfn, data }, pool };
      }
      case TMEM_FLUSH_PAGE: {
        if (arg !== 0) return { eax: TMEM_EINVAL };
        if (pool === undefined) return { eax: TMEM_ENOENT };
        if (reservedObj || reservedIdx) return { eax: TMEM_EINVAL, pool };
        return { eax: this.remove(pool, objKey, index) ? 1 : 0, pool };
      }
      case TMEM_FLUSH_OBJECT: {
        if (arg !== 0) return { eax: TMEM_EINVAL };
        if (pool === undefined) return { eax: TMEM_ENOENT };
        if (reservedObj) return { eax: TMEM_EINVAL, pool };
        const n = pool.objects.get(objKey)?.size ?? 0;
        pool.objects.delete(objKey);
        return { eax: n, pool };
      }
      case TMEM_FLUSH_RANGE: {
        const count = pfn;
        if (arg !== 0 || count < 1 || count > 512 || index + count - 1 >= 0xffffffff) return { eax: TMEM_EINVAL };
        if (pool === undefined) return { eax: TMEM_ENOENT };
        if (reservedObj) return { eax: TMEM_EINVAL, pool };
        let n = 0;
        for (let i = 0; i < count; i++) if (this.remove(pool, objKey, index + i)) n++;
        return { eax: n, pool };
      }
      default:
        return { eax: TMEM_ENOSYS };
    }
  }

  /** The client leaves every pool it holds; `pending`: ops answer TMEM_E_RESET until a probe. */
  reset(ci: number, pending: boolean): void {
    const c = this.client(ci);
    c.pools.forEach((p, id) => {
      if (p !== undefined) this.leave(ci, id, p);
    });
    c.resetPending = pending;
  }

  private leave(ci: number, poolId: number, pool: ModelPool): void {
    this.client(ci).pools[poolId] = undefined;
    pool.members.delete(ci);
    if (pool.members.size === 0) {
      pool.objects.clear();
      if (pool.uuid !== undefined) this.shared.delete(pool.uuid);
    }
  }

  /** Removes one page; true if it was there. */
  remove(pool: ModelPool, objKey: string, index: number): boolean {
    const obj = pool.objects.get(objKey);
    if (obj?.delete(index) !== true) return false;
    if (obj.size === 0) pool.objects.delete(objKey);
    return true;
  }
}
