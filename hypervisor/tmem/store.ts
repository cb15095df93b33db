/**
 * The tmem store: clients, pools, objects and pages, with the semantics of DESIGN.md ("tmem
 * semantics", after Xen's public/tmem.h and common/tmem.c) and the numbers of tmem_abi.h (abi.ts).
 *
 * Model:
 *  - A client is one guest, created and destroyed by the host. It holds up to TMEM_MAX_POOLS local
 *    pool ids.
 *  - A pool is ephemeral or persistent, private or shared. A shared pool is named by a 128-bit uuid
 *    and joined only by clients the host authorised for that uuid; shared + persistent is refused
 *    (TMEM_EINVAL), as Xen did. A shared pool lives while any member holds it; each member has its
 *    own local id for it (joining a pool the client already holds returns that same id). Its pages
 *    are charged to one member, the owner (first the creator; when the owner leaves, the member
 *    that joined earliest), as in Xen.
 *  - A page is named by (pool, 64-bit object id, u32 index). Objects are Map entries of their pool,
 *    pages Map entries (index -> page slot) of their object; page records live in a PageTable.
 *  - Every page that is not same-filled occupies one slab frame; a same-filled page (1024 equal
 *    32-bit words) is kept as that word, without a frame.
 *
 * Semantics:
 *  - get from a private ephemeral pool is exclusive (the page leaves the store); get from a shared
 *    ephemeral pool keeps the page and makes it most recently used; get from a persistent pool keeps
 *    it.
 *  - put to an existing handle replaces the data. A refused put (TMEM_ENOSPC, TMEM_EBUSY) flushes
 *    whatever the handle held: a later get can miss, never return stale data.
 *  - Frames are the budget. When a put needs a frame and none is free, the store evicts one
 *    ephemeral page: the putting client's own least recently used page if it is over its weighted
 *    share, else the globally least recently used one (Xen's tmem_evict). A client is over its share
 *    when framesInUse * W > budgetFrames * weight, W being the sum of the weights of the clients that
 *    have frames in use. Nothing evictable: TMEM_ENOSPC. Persistent pages are never evicted.
 *  - Puts to a persistent pool that would take a client past its persistentAllowancePages (if set)
 *    are refused with TMEM_ENOSPC; the allowance counts pages, same-filled ones included.
 *  - A frozen client's puts are refused with TMEM_EBUSY (the handle is flushed); gets and flushes
 *    still work.
 *  - Page records are capped at maxPages, so a guest that stores only same-filled pages cannot grow
 *    host memory without bound: at the cap, a new page first evicts an ephemeral same-filled page,
 *    else an ephemeral frame-backed one, else is refused with TMEM_ENOSPC.
 *
 * Guest ops (newPool, destroyPool, putPage, getPage, flushPage, flushObject) take words as a guest
 * passes them (taken mod 2^32) and never throw for anything a guest can do: they return a TMEM_*
 * result and count it. A guest op for a client id that is not (or no longer) in the store returns
 * TMEM_ENOENT. Their `pfn` must have passed checkGuestFrame (the hypercall layer does it). Host ops
 * (createClient, setWeight, ...) throw TmemuError (user-errors.ts, code BAD_INPUT) on bad arguments.
 */

import {
  TMEM_EBUSY,
  TMEM_EINVAL,
  TMEM_EMFILE,
  TMEM_ENOENT,
  TMEM_ENOSPC,
  TMEM_EPERM,
  TMEM_HIT,
  TMEM_MAX_POOLS,
  TMEM_MISS,
  TMEM_POOL_PERSIST,
  TMEM_POOL_SHARED,
} from "./abi.ts";
import { BugIndicatingError } from "../errors.ts";
import { TmemuError } from "../user-errors.ts";
import type { GuestMemory } from "../guest-memory.ts";
import { isReservedIndex, isReservedObject, objectKey, parseUuid, uuidFromWords } from "./handle.ts";
import type { ObjectKey, UuidText } from "./handle.ts";
import {
  ClientCounters,
  PoolCounters,
  type ClientMetricsJson,
  type PoolMetricsJson,
  type StoreMetricsJson,
} from "./metrics.ts";
import { NIL, PageTable } from "./page-table.ts";
import { NOT_SAME_FILLED, sameFilledWord } from "./same-filled.ts";
import { FRAME_SIZE, FRAME_WORDS, NO_FRAME, Slab } from "./slab.ts";

export const FRAMES_PER_MIB = (1024 * 1024) / FRAME_SIZE;
/** Weights are integers in [0, MAX_WEIGHT]; products with frame counts stay exact in a double. */
export const MAX_WEIGHT = 1_000_000;
export const DEFAULT_WEIGHT = 1;

export type TmemStoreOptions = (
  | { budgetMib: number; budgetFrames?: never }
  | { budgetFrames: number; budgetMib?: never }
) & {
  /** Cap on page records (frame-backed and same-filled). Default: max(8 * budget, 65536). */
  maxPages?: number;
  /** Back the slab with a SharedArrayBuffer (for worker threads to map frames later). */
  sharedBuffer?: boolean;
};

export interface CreateClientOptions {
  /** Share of the budget relative to the other clients; default DEFAULT_WEIGHT. */
  weight?: number;
  /** Cap on this client's persistent pages; default none. */
  persistentAllowancePages?: number;
}

/** A page-carrying unit of a pool, named by its 64-bit object id. */
class TmemObject {
  readonly pages = new Map<number, number>();

  constructor(
    readonly pool: Pool,
    readonly key: ObjectKey,
  ) {}
}

class Pool {
  readonly objects = new Map<ObjectKey, TmemObject>();
  /** Member clients and the local pool id each one uses (just the owner for a private pool). */
  readonly members = new Map<Client, number>();
  readonly counters = new PoolCounters();
  /** Gauges of the pages in this pool. */
  pages = 0;
  frames = 0;
  sameFilled = 0;

  constructor(
    readonly persistent: boolean,
    readonly uuid: UuidText | undefined,
    /** The client charged for this pool's pages. */
    public owner: Client,
  ) {}

  get shared(): boolean {
    return this.uuid !== undefined;
  }
}

class Client {
  readonly pools: (Pool | undefined)[] = new Array<Pool | undefined>(TMEM_MAX_POOLS).fill(undefined);
  readonly authorisedUuids = new Set<UuidText>();
  readonly counters = new ClientCounters();
  frozen = false;
  /** Gauges of the pages charged to this client. */
  ephemeralPages = 0;
  persistentPages = 0;
  sameFilledPages = 0;
  framesInUse = 0;

  constructor(
    readonly id: number,
    readonly name: string,
    public weight: number,
    /** Infinity when no allowance is set. */
    public persistentAllowance: number,
    /** Sentinel of this client's LRU list (PageTable pair C) of ephemeral frame-backed pages. */
    readonly lru: number,
  ) {}
}

function checkCount(what: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new TmemuError("BAD_INPUT", `tmem: ${what} ${value} is out of range`, `give an integer from 0 to ${max}`);
  }
  return value;
}

export class TmemStore {
  private readonly slab: Slab;
  private readonly pt = new PageTable<TmemObject>();
  private budget: number;
  readonly maxPages: number;

  private readonly clients = new Map<number, Client>();
  private nextClientId = 1;
  private readonly sharedPools = new Map<UuidText, Pool>();

  /** Sentinel (pair G) of the global LRU list of ephemeral frame-backed pages. */
  private readonly frameLru: number;
  /** Sentinel (pair G) of the global LRU list of ephemeral same-filled pages. */
  private readonly fillLru: number;

  /** Store-wide gauges and counters. */
  private pages = 0;
  private ephemeralPages = 0;
  private persistentPages = 0;
  private sameFilledPages = 0;
  private persistentFrames = 0;
  private evictions = 0;
  /** Sum of the weights of the clients with framesInUse > 0 (W in the share rule). */
  private weightSum = 0;

  /** A page's worth of scratch space: reads while the slab is full, same-filled materialisation. */
  private readonly scratch = new Uint8Array(FRAME_SIZE);
  private readonly scratchWords = new Uint32Array(this.scratch.buffer);

  constructor(options: TmemStoreOptions) {
    const frames =
      options.budgetFrames !== undefined
        ? checkCount("budgetFrames", options.budgetFrames)
        : checkCount("budgetMib", options.budgetMib ?? Number.NaN) * FRAMES_PER_MIB;
    const maxSlabFrames = Math.floor(0x7fffffff / FRAME_SIZE);
    if (frames > maxSlabFrames) {
      throw new TmemuError(
        "BAD_INPUT",
        `tmem: a budget of ${frames} frames is too large`,
        `give at most ${maxSlabFrames} frames (${maxSlabFrames / FRAMES_PER_MIB} MiB)`,
      );
    }
    this.maxPages =
      options.maxPages !== undefined
        ? checkCount("maxPages", options.maxPages)
        : Math.max(8 * frames, 65536);
    if (this.maxPages < frames) {
      throw new TmemuError(
        "BAD_INPUT",
        `tmem: maxPages (${this.maxPages}) is below the budget (${frames} frames)`,
        "give maxPages at least as large as the budget in frames, or leave it out",
      );
    }
    this.slab = Slab.allocate(frames, { shared: options.sharedBuffer === true });
    this.budget = frames;
    this.frameLru = this.pt.newList();
    this.fillLru = this.pt.newList();
  }

  // ---------------------------------------------------------------------------------------------
  // Guest ops. Results per tmem_abi.h; never throw for guest input.

  /**
   * TMEM_NEW_POOL: `flags` from the op argument, uuid words from EBX, ECX, ESI, EDI (used only for
   * a shared pool). Returns the local pool id, or TMEM_EINVAL (unknown flag bits, shared +
   * persistent), TMEM_EPERM (uuid not authorised), TMEM_EMFILE (no free local id).
   */
  newPool(clientId: number, flags: number, w0: number, w1: number, w2: number, w3: number): number {
    const c = this.clients.get(clientId);
    if (c === undefined) return TMEM_ENOENT;
    c.counters.newPools++;
    flags >>>= 0;
    if ((flags & ~(TMEM_POOL_PERSIST | TMEM_POOL_SHARED)) !== 0) return this.fail(c, TMEM_EINVAL);
    const persistent = (flags & TMEM_POOL_PERSIST) !== 0;
    const shared = (flags & TMEM_POOL_SHARED) !== 0;
    if (shared && persistent) return this.fail(c, TMEM_EINVAL);

    if (!shared) {
      const id = c.pools.indexOf(undefined);
      if (id < 0) return this.fail(c, TMEM_EMFILE);
      const pool = new Pool(persistent, undefined, c);
      pool.members.set(c, id);
      c.pools[id] = pool;
      return id;
    }

    const uuid = uuidFromWords(w0 >>> 0, w1 >>> 0, w2 >>> 0, w3 >>> 0);
    if (!c.authorisedUuids.has(uuid)) return this.fail(c, TMEM_EPERM);
    const existing = this.sharedPools.get(uuid);
    const held = existing?.members.get(c);
    if (held !== undefined) return held;
    const id = c.pools.indexOf(undefined);
    if (id < 0) return this.fail(c, TMEM_EMFILE);
    const pool = existing ?? new Pool(false, uuid, c);
    if (existing === undefined) this.sharedPools.set(uuid, pool);
    pool.members.set(c, id);
    c.pools[id] = pool;
    return id;
  }

  /** TMEM_DESTROY_POOL: 0, or TMEM_ENOENT if the client holds no pool `poolId`. */
  destroyPool(clientId: number, poolId: number): number {
    const c = this.clients.get(clientId);
    if (c === undefined) return TMEM_ENOENT;
    c.counters.destroyPools++;
    const pool = this.poolOf(c, poolId);
    if (pool === undefined) return this.fail(c, TMEM_ENOENT);
    this.leavePool(c, poolId, pool);
    return 0;
  }

  /**
   * TMEM_PUT_PAGE: copies guest frame `pfn` into the store at (poolId, lo:hi, index). Returns
   * TMEM_HIT (stored), or TMEM_ENOENT, TMEM_EINVAL (reserved object or index), TMEM_EBUSY (frozen),
   * TMEM_ENOSPC (no frame, allowance, page cap). A refused put flushes the handle.
   */
  putPage(
    clientId: number,
    poolId: number,
    lo: number,
    hi: number,
    index: number,
    memory: GuestMemory,
    pfn: number,
  ): number {
    const c = this.clients.get(clientId);
    if (c === undefined) return TMEM_ENOENT;
    c.counters.puts++;
    const pool = this.poolOf(c, poolId);
    if (pool === undefined) return this.fail(c, TMEM_ENOENT);
    pool.counters.puts++;
    lo >>>= 0;
    hi >>>= 0;
    index >>>= 0;
    if (isReservedObject(lo, hi) || isReservedIndex(index)) return this.fail(c, TMEM_EINVAL);

    const key = objectKey(lo, hi);
    let obj = pool.objects.get(key);
    const old = obj === undefined ? NIL : (obj.pages.get(index) ?? NIL);
    if (c.frozen) return this.refusePut(c, pool, old, TMEM_EBUSY);
    const evictionsBefore = this.evictions;

    const pt = this.pt;
    const slab = this.slab;
    if (old !== NIL) {
      const f = pt.frame[old]!;
      if (f !== NO_FRAME) {
        // Replace in place: the page keeps its frame, so a full store cannot refuse it.
        this.readGuestPage(memory, pfn, slab.frame(f), NO_FRAME, old);
        const word = sameFilledWord(slab.words, f * FRAME_WORDS);
        this.unaccount(old);
        if (word !== NOT_SAME_FILLED) {
          slab.free(f);
          pt.frame[old] = NO_FRAME;
          pt.fill[old] = word;
        }
        this.account(old);
        return TMEM_HIT;
      }
    } else {
      if (pool.persistent && pool.owner.persistentPages >= pool.owner.persistentAllowance) {
        return this.refusePut(c, pool, NIL, TMEM_ENOSPC);
      }
      if (this.pages >= this.maxPages && !this.evictForRecord(c)) {
        return this.refusePut(c, pool, NIL, TMEM_ENOSPC);
      }
    }

    // A new page, or an existing same-filled one: find room for the data.
    let f = this.freeFrame();
    let word: number;
    if (f !== NO_FRAME) {
      this.readGuestPage(memory, pfn, slab.frame(f), f, old); // the one copy of the fast path
      word = sameFilledWord(slab.words, f * FRAME_WORDS);
      if (word !== NOT_SAME_FILLED) {
        slab.free(f);
        f = NO_FRAME;
      }
    } else {
      // Full: look at the data before evicting anything, a same-filled page needs no frame.
      this.readGuestPage(memory, pfn, this.scratch, NO_FRAME, old);
      word = sameFilledWord(this.scratchWords, 0);
      if (word === NOT_SAME_FILLED) {
        if (!this.evictFrame(c)) return this.refusePut(c, pool, old, TMEM_ENOSPC);
        f = this.freeFrame();
        if (f === NO_FRAME) throw new BugIndicatingError("tmem store: no free frame after an eviction");
        slab.bytes.set(this.scratch, f * FRAME_SIZE);
      }
    }

    if (old !== NIL) {
      // Eviction takes frame-backed pages only, so `old` (same-filled) is still there.
      this.unaccount(old);
      pt.frame[old] = f;
      pt.fill[old] = f === NO_FRAME ? word : 0;
      this.account(old);
      return TMEM_HIT;
    }
    let s: number;
    try {
      s = pt.allocSlot(); // may grow the page table, which may fail
    } catch (error) {
      if (f !== NO_FRAME) slab.free(f);
      throw error;
    }
    // An eviction may have removed `obj` (with its last page): look it up again.
    if (this.evictions !== evictionsBefore) obj = pool.objects.get(key);
    if (obj === undefined) {
      obj = new TmemObject(pool, key);
      pool.objects.set(key, obj);
    }
    pt.frame[s] = f;
    pt.fill[s] = f === NO_FRAME ? word : 0;
    pt.index[s] = index;
    pt.obj[s] = obj;
    obj.pages.set(index, s);
    this.account(s);
    return TMEM_HIT;
  }

  /**
   * TMEM_GET_PAGE: on a hit writes the page into guest frame `pfn` and returns TMEM_HIT; TMEM_MISS
   * if the handle holds nothing; TMEM_ENOENT, TMEM_EINVAL as for put.
   */
  getPage(
    clientId: number,
    poolId: number,
    lo: number,
    hi: number,
    index: number,
    memory: GuestMemory,
    pfn: number,
  ): number {
    const c = this.clients.get(clientId);
    if (c === undefined) return TMEM_ENOENT;
    c.counters.gets++;
    const pool = this.poolOf(c, poolId);
    if (pool === undefined) return this.fail(c, TMEM_ENOENT);
    pool.counters.gets++;
    lo >>>= 0;
    hi >>>= 0;
    index >>>= 0;
    if (isReservedObject(lo, hi) || isReservedIndex(index)) return this.fail(c, TMEM_EINVAL);
    const obj = pool.objects.get(objectKey(lo, hi));
    if (obj === undefined) return TMEM_MISS;
    const s = obj.pages.get(index);
    if (s === undefined) return TMEM_MISS;

    const f = this.pt.frame[s]!;
    if (f !== NO_FRAME) {
      memory.writePage(pfn, this.slab.frame(f));
    } else {
      this.scratchWords.fill(this.pt.fill[s]!);
      memory.writePage(pfn, this.scratch);
    }
    c.counters.getHits++;
    pool.counters.getHits++;
    if (pool.persistent) {
      // Persistent pages stay until flushed and are in no LRU list.
    } else if (pool.shared) {
      this.touch(s, pool.owner);
    } else {
      this.removePage(s);
    }
    return TMEM_HIT;
  }

  /** TMEM_FLUSH_PAGE: 1 if a page was removed, 0 if there was none; TMEM_ENOENT, TMEM_EINVAL. */
  flushPage(clientId: number, poolId: number, lo: number, hi: number, index: number): number {
    const c = this.clients.get(clientId);
    if (c === undefined) return TMEM_ENOENT;
    c.counters.flushPages++;
    const pool = this.poolOf(c, poolId);
    if (pool === undefined) return this.fail(c, TMEM_ENOENT);
    pool.counters.flushPages++;
    lo >>>= 0;
    hi >>>= 0;
    index >>>= 0;
    if (isReservedObject(lo, hi) || isReservedIndex(index)) return this.fail(c, TMEM_EINVAL);
    const s = pool.objects.get(objectKey(lo, hi))?.pages.get(index);
    if (s === undefined) return 0;
    this.removePage(s);
    c.counters.pagesFlushed++;
    pool.counters.pagesFlushed++;
    return 1;
  }

  /** TMEM_FLUSH_OBJECT: the number of pages removed; TMEM_ENOENT, TMEM_EINVAL (reserved object). */
  flushObject(clientId: number, poolId: number, lo: number, hi: number): number {
    const c = this.clients.get(clientId);
    if (c === undefined) return TMEM_ENOENT;
    c.counters.flushObjects++;
    const pool = this.poolOf(c, poolId);
    if (pool === undefined) return this.fail(c, TMEM_ENOENT);
    pool.counters.flushObjects++;
    lo >>>= 0;
    hi >>>= 0;
    if (isReservedObject(lo, hi)) return this.fail(c, TMEM_EINVAL);
    const obj = pool.objects.get(objectKey(lo, hi));
    if (obj === undefined) return 0;
    const n = this.dropObject(obj);
    c.counters.pagesFlushed += n;
    pool.counters.pagesFlushed += n;
    return n;
  }

  /**
   * Counts a hypercall that the hypercall layer answered itself with `result` (TMEM_PROBE, or an op
   * refused before reaching one of the ops above): once under its op, once under its error if
   * `result` is negative.
   */
  countHypercall(clientId: number, op: number, result: number): void {
    const counters = this.clients.get(clientId)?.counters;
    if (counters === undefined) return;
    counters.countOp(op);
    counters.countResult(result);
  }

  /** The live counters of a client, for the hypercall layer (probes, internal errors). */
  clientCounters(clientId: number): ClientCounters | undefined {
    return this.clients.get(clientId)?.counters;
  }

  // ---------------------------------------------------------------------------------------------
  // Host control surface (CLI, scheduler). Throws TmemuError BAD_INPUT on bad arguments.

  /** Creates a client (one per guest) and returns its id. Ids are never reused. */
  createClient(name: string, options: CreateClientOptions = {}): number {
    const weight = checkCount("weight", options.weight ?? DEFAULT_WEIGHT, MAX_WEIGHT);
    const allowance =
      options.persistentAllowancePages === undefined
        ? Number.POSITIVE_INFINITY
        : checkCount("persistentAllowancePages", options.persistentAllowancePages);
    const id = this.nextClientId++;
    this.clients.set(id, new Client(id, name, weight, allowance, this.pt.newList()));
    return id;
  }

  /** Destroys a client: leaves all its pools and frees every page charged to it, at once. */
  destroyClient(clientId: number): void {
    const c = this.client(clientId);
    c.pools.forEach((pool, id) => {
      if (pool !== undefined) this.leavePool(c, id, pool);
    });
    if (c.framesInUse !== 0 || c.ephemeralPages !== 0 || c.persistentPages !== 0) {
      throw new BugIndicatingError(`tmem store: client ${clientId} still charged after leaving its pools`);
    }
    this.pt.freeList(c.lru);
    this.clients.delete(clientId);
  }

  hasClient(clientId: number): boolean {
    return this.clients.has(clientId);
  }

  listClients(): { id: number; name: string }[] {
    return [...this.clients.values()].map((c) => ({ id: c.id, name: c.name }));
  }

  setWeight(clientId: number, weight: number): void {
    const c = this.client(clientId);
    checkCount("weight", weight, MAX_WEIGHT);
    if (c.framesInUse > 0) this.weightSum += weight - c.weight;
    c.weight = weight;
  }

  /**
   * Caps the client's persistent pages (undefined: no cap). Lowering it below what the client holds
   * keeps those pages and refuses new ones until the client is back under it.
   */
  setPersistentAllowance(clientId: number, pages: number | undefined): void {
    const c = this.client(clientId);
    c.persistentAllowance =
      pages === undefined ? Number.POSITIVE_INFINITY : checkCount("persistentAllowancePages", pages);
  }

  /** From now on the client's puts are refused with TMEM_EBUSY; gets and flushes still work. */
  freeze(clientId: number): void {
    this.client(clientId).frozen = true;
  }

  thaw(clientId: number): void {
    this.client(clientId).frozen = false;
  }

  /** Shared pools with this uuid may now be created or joined by the client. */
  authorizeShared(clientId: number, uuid: string): void {
    this.client(clientId).authorisedUuids.add(parseUuid(uuid));
  }

  /** Takes an authorisation back; a pool the client already holds stays held. */
  revokeShared(clientId: number, uuid: string): void {
    this.client(clientId).authorisedUuids.delete(parseUuid(uuid));
  }

  /**
   * Drops every page charged to the client (its private pools and the shared pools it owns); its
   * pools stay. Returns the number of pages dropped.
   */
  flushClient(clientId: number): number {
    const c = this.client(clientId);
    let n = 0;
    for (const pool of new Set(c.pools)) {
      if (pool === undefined || pool.owner !== c) continue;
      for (const obj of [...pool.objects.values()]) n += this.dropObject(obj);
    }
    return n;
  }

  get budgetFrames(): number {
    return this.budget;
  }

  /**
   * Changes the budget, between 0 and the slab size (the budget the store was created with).
   * Shrinking evicts ephemeral pages (global LRU first); it is refused with BUDGET_BELOW_PERSISTENT
   * below the frames held by persistent pages.
   */
  setBudgetFrames(frames: number): void {
    checkCount("budgetFrames", frames, this.slab.framesTotal);
    if (frames < this.persistentFrames) {
      throw new TmemuError(
        "BAD_INPUT",
        `tmem: cannot shrink the budget to ${frames} frames: persistent pages hold ` +
          `${this.persistentFrames} frames and are never evicted`,
        `choose a budget of at least ${this.persistentFrames} frames, or flush the clients' persistent pages first`,
      );
    }
    this.budget = frames;
    while (this.slab.framesUsed > frames) {
      if (!this.evictFrame(undefined)) {
        throw new BugIndicatingError("tmem store: over budget with nothing evictable");
      }
    }
  }

  clientMetrics(clientId: number): ClientMetricsJson {
    const c = this.client(clientId);
    const k = c.counters;
    const pools: PoolMetricsJson[] = [];
    c.pools.forEach((pool, id) => {
      if (pool !== undefined) pools.push(this.poolJson(pool, id));
    });
    return {
      id: c.id,
      name: c.name,
      weight: c.weight,
      frozen: c.frozen,
      persistentAllowancePages: Number.isFinite(c.persistentAllowance) ? c.persistentAllowance : null,
      pagesEphemeral: c.ephemeralPages,
      pagesPersistent: c.persistentPages,
      sameFilledPages: c.sameFilledPages,
      framesInUse: c.framesInUse,
      probes: k.probes,
      newPools: k.newPools,
      destroyPools: k.destroyPools,
      puts: k.puts,
      putsRefused: k.putsRefused,
      gets: k.gets,
      getHits: k.getHits,
      flushPages: k.flushPages,
      flushObjects: k.flushObjects,
      pagesFlushed: k.pagesFlushed,
      evictions: k.evictions,
      internalErrors: k.internalErrors,
      errors: { ...k.errors },
      pools,
    };
  }

  /** Metrics of the client's pool `poolId`. Throws TmemuError if it holds no such pool. */
  poolMetrics(clientId: number, poolId: number): PoolMetricsJson {
    const c = this.client(clientId);
    const pool = this.poolOf(c, poolId);
    if (pool === undefined) {
      throw new TmemuError("BAD_INPUT", `tmem: client ${clientId} holds no pool ${poolId}`, "see clientMetrics() for its pools");
    }
    return this.poolJson(pool, poolId);
  }

  metrics(): StoreMetricsJson {
    return {
      budgetFrames: this.budget,
      framesTotal: this.slab.framesTotal,
      framesUsed: this.slab.framesUsed,
      maxPages: this.maxPages,
      pages: this.pages,
      pagesEphemeral: this.ephemeralPages,
      pagesPersistent: this.persistentPages,
      sameFilledPages: this.sameFilledPages,
      evictions: this.evictions,
      clients: [...this.clients.keys()].map((id) => this.clientMetrics(id)),
    };
  }

  toJSON(): StoreMetricsJson {
    return this.metrics();
  }

  /**
   * Walks every structure and throws BugIndicatingError at the first accounting that does not
   * balance. O(pages): for tests and debugging, not for the hot path.
   */
  checkInvariants(): void {
    const bug = (what: string): never => {
      throw new BugIndicatingError(`tmem store invariant: ${what}`);
    };
    const pt = this.pt;
    const pools = new Set<Pool>();
    for (const c of this.clients.values()) {
      c.pools.forEach((pool, id) => {
        if (pool === undefined) return;
        pools.add(pool);
        if (pool.members.get(c) !== id) bug(`client ${c.id} pool ${id} not in the pool's members`);
        if (pool.shared && this.sharedPools.get(pool.uuid ?? "") !== pool) bug(`shared pool ${id} not indexed`);
      });
    }
    for (const pool of this.sharedPools.values()) if (!pools.has(pool)) bug("shared pool held by nobody");
    const perClient = new Map<Client, { eph: number; pers: number; fill: number; frames: number }>();
    for (const c of this.clients.values()) perClient.set(c, { eph: 0, pers: 0, fill: 0, frames: 0 });
    let pages = 0;
    let fill = 0;
    let frames = 0;
    let persistentFrames = 0;
    let eph = 0;
    const frameSlots = new Set<number>();
    const fillSlots = new Set<number>();
    const usedFrames = new Set<number>();
    for (const pool of pools) {
      if (pool.persistent && pool.shared) bug("shared persistent pool");
      for (const [c, id] of pool.members) if (c.pools[id] !== pool) bug(`member ${c.id} lost pool ${id}`);
      if (!pool.members.has(pool.owner)) bug("pool owner is not a member");
      const owner = perClient.get(pool.owner) ?? bug("pool owner is not a client");
      let pPages = 0;
      let pFrames = 0;
      let pFill = 0;
      for (const [key, obj] of pool.objects) {
        if (obj.key !== key || obj.pool !== pool) bug(`object ${String(key)} misfiled`);
        if (obj.pages.size === 0) bug(`empty object ${String(key)} kept`);
        for (const [index, s] of obj.pages) {
          if (pt.obj[s] !== obj || pt.index[s] !== index) bug(`page slot ${s} misfiled`);
          pPages++;
          const f = pt.frame[s]!;
          if (f === NO_FRAME) {
            pFill++;
            if (!pool.persistent) fillSlots.add(s);
          } else {
            pFrames++;
            if (usedFrames.has(f)) bug(`frame ${f} used twice`);
            if (!this.slab.isAllocated(f)) bug(`frame ${f} used but free`);
            usedFrames.add(f);
            if (pool.persistent) persistentFrames++;
            else frameSlots.add(s);
          }
          if (pool.persistent && (pt.gNext[s] !== NIL || pt.cNext[s] !== NIL)) bug("persistent page in an LRU");
        }
      }
      if (pPages !== pool.pages || pFrames !== pool.frames || pFill !== pool.sameFilled) bug("pool gauges");
      if (pool.persistent) owner.pers += pPages;
      else owner.eph += pPages;
      owner.fill += pFill;
      owner.frames += pFrames;
      pages += pPages;
      fill += pFill;
      frames += pFrames;
      if (!pool.persistent) eph += pPages;
    }
    if (pages !== this.pages || fill !== this.sameFilledPages || eph !== this.ephemeralPages) bug("store gauges");
    if (pages - eph !== this.persistentPages || persistentFrames !== this.persistentFrames) bug("persistent gauges");
    if (frames !== this.slab.framesUsed || frames !== pages - fill) bug("slab frames != frame-backed pages");
    if (this.slab.framesUsed > this.budget) bug("over budget");
    if (pages > this.maxPages) bug("over maxPages");
    let weightSum = 0;
    for (const [c, n] of perClient) {
      if (n.eph !== c.ephemeralPages || n.pers !== c.persistentPages) bug(`client ${c.id} page gauges`);
      if (n.fill !== c.sameFilledPages || n.frames !== c.framesInUse) bug(`client ${c.id} frame gauges`);
      if (c.framesInUse > 0) weightSum += c.weight;
      for (const s of pt.listC(c.lru)) {
        const pool = pt.obj[s]?.pool;
        if (pool?.owner !== c || !frameSlots.has(s)) bug(`client ${c.id} LRU holds slot ${s}`);
      }
    }
    if (weightSum !== this.weightSum) bug("weight sum");
    const globalFrames = pt.listG(this.frameLru);
    const globalFill = pt.listG(this.fillLru);
    if (globalFrames.length !== frameSlots.size || !globalFrames.every((s) => frameSlots.has(s))) {
      bug("global frame LRU");
    }
    if (globalFill.length !== fillSlots.size || !globalFill.every((s) => fillSlots.has(s))) bug("global fill LRU");
    let clientListed = 0;
    for (const c of this.clients.values()) clientListed += pt.listC(c.lru).length;
    if (clientListed !== frameSlots.size) bug("client LRUs do not cover the ephemeral frame pages");
    const sentinels = 2 + this.clients.size;
    if (pt.slotsInUse !== pages + sentinels) bug("page table slots leak");
  }

  // ---------------------------------------------------------------------------------------------
  // Internals. Every change to a page's gauges and list membership goes through account/unaccount.

  private client(clientId: number): Client {
    const c = this.clients.get(clientId);
    if (c === undefined) {
      throw new TmemuError("BAD_INPUT", `tmem: no client ${clientId}`, "see listClients() for the clients that exist");
    }
    return c;
  }

  private poolOf(c: Client, poolId: number): Pool | undefined {
    return Number.isInteger(poolId) && poolId >= 0 && poolId < TMEM_MAX_POOLS ? c.pools[poolId] : undefined;
  }

  private fail(c: Client, code: number): number {
    c.counters.countResult(code);
    return code;
  }

  /** Refuses a put: flushes what the handle held (never leave stale data), counts, returns `code`. */
  private refusePut(c: Client, pool: Pool, old: number, code: number): number {
    if (old !== NIL) this.removePage(old);
    c.counters.putsRefused++;
    pool.counters.putsRefused++;
    return this.fail(c, code);
  }

  /**
   * Reads guest frame `pfn` into `dst`. GuestMemory is outside code: if it throws, the put fails
   * without leaking `fresh` (a frame not yet attached) and without leaving `old` (the page at the
   * handle, possibly half overwritten) behind, then the exception goes on to the hypercall layer.
   */
  private readGuestPage(memory: GuestMemory, pfn: number, dst: Uint8Array, fresh: number, old: number): void {
    try {
      memory.readPage(pfn, dst);
    } catch (error) {
      if (fresh !== NO_FRAME) this.slab.free(fresh);
      if (old !== NIL) this.removePage(old);
      throw error;
    }
  }

  /** A free frame within the budget, or NO_FRAME. */
  private freeFrame(): number {
    return this.slab.framesUsed < this.budget ? this.slab.alloc() : NO_FRAME;
  }

  private chargeFrames(c: Client, delta: number): void {
    const before = c.framesInUse;
    const after = before + delta;
    c.framesInUse = after;
    if (before === 0 && after > 0) this.weightSum += c.weight;
    else if (before > 0 && after === 0) this.weightSum -= c.weight;
  }

  /** Adds page `s` (frame/fill and obj set) to the gauges, and to the LRU lists at the MRU end. */
  private account(s: number): void {
    const pt = this.pt;
    const pool = pt.obj[s]!.pool;
    const c = pool.owner;
    pool.pages++;
    this.pages++;
    if (pool.persistent) {
      c.persistentPages++;
      this.persistentPages++;
    } else {
      c.ephemeralPages++;
      this.ephemeralPages++;
    }
    if (pt.frame[s] !== NO_FRAME) {
      pool.frames++;
      this.chargeFrames(c, 1);
      if (pool.persistent) {
        this.persistentFrames++;
      } else {
        pt.linkG(this.frameLru, s);
        pt.linkC(c.lru, s);
      }
    } else {
      pool.sameFilled++;
      c.sameFilledPages++;
      this.sameFilledPages++;
      if (!pool.persistent) pt.linkG(this.fillLru, s);
    }
  }

  /** Exact inverse of account(s). */
  private unaccount(s: number): void {
    const pt = this.pt;
    const pool = pt.obj[s]!.pool;
    const c = pool.owner;
    pool.pages--;
    this.pages--;
    if (pool.persistent) {
      c.persistentPages--;
      this.persistentPages--;
    } else {
      c.ephemeralPages--;
      this.ephemeralPages--;
    }
    if (pt.frame[s] !== NO_FRAME) {
      pool.frames--;
      this.chargeFrames(c, -1);
      if (pool.persistent) {
        this.persistentFrames--;
      } else {
        pt.unlinkG(s);
        pt.unlinkC(s);
      }
    } else {
      pool.sameFilled--;
      c.sameFilledPages--;
      this.sameFilledPages--;
      if (!pool.persistent) pt.unlinkG(s);
    }
  }

  /** Makes ephemeral page `s` the most recently used. */
  private touch(s: number, owner: Client): void {
    const pt = this.pt;
    if (pt.frame[s] !== NO_FRAME) {
      pt.unlinkG(s);
      pt.linkG(this.frameLru, s);
      pt.unlinkC(s);
      pt.linkC(owner.lru, s);
    } else {
      pt.unlinkG(s);
      pt.linkG(this.fillLru, s);
    }
  }

  /** Removes page `s` from its object (and the object from its pool if it was the last page). */
  private removePage(s: number): void {
    const pt = this.pt;
    const obj = pt.obj[s]!;
    obj.pages.delete(pt.index[s]!);
    if (obj.pages.size === 0) obj.pool.objects.delete(obj.key);
    this.releasePage(s);
  }

  /** Frees page `s` (frame and slot) without touching its object's map. */
  private releasePage(s: number): void {
    const pt = this.pt;
    this.unaccount(s);
    const f = pt.frame[s]!;
    if (f !== NO_FRAME) this.slab.free(f);
    pt.obj[s] = undefined;
    pt.freeSlot(s);
  }

  /** Removes every page of `obj` and the object itself; returns the number of pages. */
  private dropObject(obj: TmemObject): number {
    const n = obj.pages.size;
    for (const s of obj.pages.values()) this.releasePage(s);
    obj.pages.clear();
    obj.pool.objects.delete(obj.key);
    return n;
  }

  private evict(s: number): void {
    const pool = this.pt.obj[s]!.pool;
    pool.counters.evictions++;
    pool.owner.counters.evictions++;
    this.evictions++;
    this.removePage(s);
  }

  private overShare(c: Client): boolean {
    return c.framesInUse > 0 && c.framesInUse * this.weightSum > this.budget * c.weight;
  }

  /**
   * Evicts one ephemeral frame-backed page to free a frame: the LRU page of `putter` if it is over
   * its weighted share and has one, else the global LRU page. False if there is none.
   */
  private evictFrame(putter: Client | undefined): boolean {
    let victim = NIL;
    if (putter !== undefined && this.overShare(putter)) victim = this.pt.firstC(putter.lru);
    if (victim === NIL) victim = this.pt.firstG(this.frameLru);
    if (victim === NIL) return false;
    this.evict(victim);
    return true;
  }

  /** Evicts one ephemeral page to free a page record: a same-filled one first. */
  private evictForRecord(putter: Client): boolean {
    const victim = this.pt.firstG(this.fillLru);
    if (victim === NIL) return this.evictFrame(putter);
    this.evict(victim);
    return true;
  }

  /** Client `c` gives up its local id `id` for `pool`. The last member takes the pages with it. */
  private leavePool(c: Client, id: number, pool: Pool): void {
    c.pools[id] = undefined;
    if (pool.members.size === 1) {
      for (const obj of [...pool.objects.values()]) this.dropObject(obj);
      pool.members.delete(c);
      if (pool.uuid !== undefined) this.sharedPools.delete(pool.uuid);
      return;
    }
    pool.members.delete(c);
    if (pool.owner === c) {
      const heir = pool.members.keys().next();
      if (heir.done === true) throw new BugIndicatingError("tmem store: shared pool without members");
      this.transferOwnership(pool, heir.value);
    }
  }

  /** Charges a shared (so ephemeral) pool's pages to `to` instead of its owner, keeping LRU order. */
  private transferOwnership(pool: Pool, to: Client): void {
    if (pool.persistent) throw new BugIndicatingError("tmem store: ownership transfer of a persistent pool");
    const from = pool.owner;
    const pt = this.pt;
    for (const s of pt.listC(from.lru)) {
      if (pt.obj[s]!.pool !== pool) continue;
      pt.unlinkC(s);
      pt.linkC(to.lru, s);
    }
    from.ephemeralPages -= pool.pages;
    to.ephemeralPages += pool.pages;
    from.sameFilledPages -= pool.sameFilled;
    to.sameFilledPages += pool.sameFilled;
    this.chargeFrames(from, -pool.frames);
    this.chargeFrames(to, pool.frames);
    pool.owner = to;
  }

  private poolJson(pool: Pool, localId: number): PoolMetricsJson {
    const k = pool.counters;
    return {
      poolId: localId,
      persistent: pool.persistent,
      shared: pool.shared,
      uuid: pool.uuid ?? null,
      owner: pool.owner.id,
      members: [...pool.members.keys()].map((m) => m.id),
      objects: pool.objects.size,
      pages: pool.pages,
      sameFilledPages: pool.sameFilled,
      framesInUse: pool.frames,
      puts: k.puts,
      putsRefused: k.putsRefused,
      gets: k.gets,
      getHits: k.getHits,
      flushPages: k.flushPages,
      flushObjects: k.flushObjects,
      pagesFlushed: k.pagesFlushed,
      evictions: k.evictions,
    };
  }
}
