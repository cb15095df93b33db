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
 *  - A page that is not same-filled holds a handle to its data (page-data.ts: LZ4-compressed when
 *    that pays, deduplicated within a client by default, in size classes over slab frames); a
 *    same-filled page (1024 equal 32-bit words) is kept as that word, without data.
 *
 * Semantics:
 *  - get from a private ephemeral pool is exclusive (the page leaves the store); get from a shared
 *    ephemeral pool keeps the page and makes it most recently used; get from a persistent pool keeps
 *    it.
 *  - put to an existing handle replaces the data. A refused put (TMEM_ENOSPC, TMEM_EBUSY) flushes
 *    whatever the handle held: a later get can miss, never return stale data.
 *  - Slab frames in use are the budget. When a put's data finds no room, the store compacts (if
 *    that frees enough) or evicts one ephemeral page (eviction.ts: the putting client's own least
 *    recently used page if it is over its weighted share, else the globally least recently used
 *    one, as Xen's tmem_evict), until it fits. Nothing evictable: TMEM_ENOSPC. Persistent pages are
 *    never evicted. A replace releases the old data first, so a full store can refuse it too.
 *  - Puts to a persistent pool that would take a client past its persistentAllowancePages (if set)
 *    are refused with TMEM_ENOSPC. The allowance counts memory in 4 KiB units: a page with data its
 *    size-class slot (Client.persistentUnits), a same-filled page 1 (it holds a record).
 *  - A frozen client's puts are refused with TMEM_EBUSY (the handle is flushed); gets and flushes
 *    still work.
 *  - A put into a shared pool whose uuid has a verifier (verifySharedPuts) is refused with
 *    TMEM_EPERM (the handle is flushed) unless its bytes are the served image's.
 *  - resetClient: the client leaves every pool (TMEM_PROBE does it; with `pending` the host makes
 *    every guest op answer TMEM_E_RESET until the next probe: tmem_abi.h "PROBE and reset").
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
import { isReservedIndex, isReservedObject, objectIdOfKey, objectKey, parseUuid, uuidFromWords } from "./handle.ts";
import type { ObjectKey, UuidText } from "./handle.ts";
import {
  type ClientCounters,
  clientCountersJson,
  dataGaugesJson,
  poolCountersJson,
  type ClientMetricsJson,
  type PoolMetricsJson,
  type StoreMetricsJson,
} from "./metrics.ts";
import { COMPRESSOR } from "./codec.ts";
import { compactionThreshold, dataVictim, overShare, pageKeyHash, recordVictim, ScanResistance } from "./eviction.ts";
import { NIL, PageTable } from "./page-table.ts";
import { NO_DEDUP, PageData } from "./page-data.ts";
import { NOT_SAME_FILLED, sameFilledWord } from "./same-filled.ts";
import { Client, Pool, TmemObject } from "./store-records.ts";
import { FRAME_SIZE, NO_FRAME, Slab } from "./slab.ts";
import type { SharedPageVerifier } from "./shared-verify.ts";
import { NO_HANDLE } from "./zpool.ts";

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
  /** Compress pages (LZ4) by default for every client and pool type; default true. */
  compression?: boolean;
  /**
   * Identical pages share their data: "client" (default: within one client and pool type), "off",
   * or "global" (across clients: only for guests of one trust group, as cross-VM dedup leaks page
   * contents through timing — Dedup Est Machina, Flip Feng Shui).
   */
  dedup?: DedupMode;
  /**
   * Ephemeral puts into a full store follow DIP's adaptive insertion (eviction.ts ScanResistance):
   * LRU eviction, or refusal of most new pages when shadow caches of a sample of the keys show
   * that to hit more (a looping scan larger than page cache + store). Default true; false: LRU.
   */
  scanResistant?: boolean;
};

export const DEDUP_MODES = ["client", "off", "global"] as const;
export type DedupMode = (typeof DEDUP_MODES)[number];

export interface CreateClientOptions {
  /** Share of the budget relative to the other clients; default DEFAULT_WEIGHT. */
  weight?: number;
  /** Cap on this client's persistent pages; default none. */
  persistentAllowancePages?: number;
  /** Compress this client's ephemeral / persistent pages; default the store's `compression`. */
  compression?: { ephemeral?: boolean; persistent?: boolean };
}

/** storeData's answer when no room could be made. */
const NO_ROOM = -2;

/** Index 0: ephemeral pools, 1: persistent. */
const kind = (persistent: boolean): 0 | 1 => (persistent ? 1 : 0);

function checkCount(what: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new TmemuError("BAD_INPUT", `tmem: ${what} ${value} is out of range`, `give an integer from 0 to ${max}`);
  }
  return value;
}

export class TmemStore {
  private readonly slab: Slab;
  private readonly data: PageData;
  /** Adaptive insertion for ephemeral puts into a full store, unless off (the scanResistant option). */
  private readonly scan: ScanResistance | undefined;
  readonly compression: boolean;
  readonly dedup: DedupMode;
  private readonly pt = new PageTable<TmemObject>();
  private budget: number;
  readonly maxPages: number;

  private readonly clients = new Map<number, Client>();
  private nextClientId = 1;
  private readonly sharedPools = new Map<UuidText, Pool>();
  /** Shared pools whose puts must equal the image the host serves (shared-verify.ts). */
  private readonly verifiers = new Map<UuidText, SharedPageVerifier>();

  /** Sentinel (pair G) of the global LRU list of ephemeral frame-backed pages. */
  private readonly frameLru: number;
  /** Sentinel (pair G) of the global LRU list of ephemeral same-filled pages. */
  private readonly fillLru: number;

  /** Store-wide gauges and counters. */
  private pages = 0;
  private ephemeralPages = 0;
  private persistentPages = 0;
  private sameFilledPages = 0;
  private evictions = 0;
  /** Sum of the weights of the clients with chargedBytes > 0 (W in the share rule). */
  private weightSum = 0;

  /** A page's worth of scratch space: reads while the slab is full, same-filled materialisation. */
  private readonly scratch: Uint8Array = Buffer.alloc(FRAME_SIZE); // a Buffer: the compressor takes it as is
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
    this.data = new PageData(this.slab);
    this.compression = options.compression ?? true;
    this.dedup = options.dedup ?? "client";
    if (!DEDUP_MODES.includes(this.dedup)) {
      throw new TmemuError("BAD_INPUT", `tmem: unknown dedup mode "${String(this.dedup)}"`, `use one of: ${DEDUP_MODES.join(", ")}`);
    }
    this.scan = options.scanResistant !== false ? new ScanResistance() : undefined;
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

    if (this.scan !== undefined && !pool.persistent) this.scan.put(pageKeyHash(lo, hi, index), this.ephemeralPages);
    const key = objectKey(lo, hi);
    const obj = pool.objects.get(key);
    const old = obj === undefined ? NIL : (obj.pages.get(index) ?? NIL);
    if (c.frozen) return this.refusePut(c, pool, old, TMEM_EBUSY);
    const verifier = pool.uuid === undefined ? undefined : this.verifiers.get(pool.uuid);
    if (verifier !== undefined) {
      this.readGuestPage(memory, pfn, old);
      if (!verifier.verify(lo, hi, index, this.scratch)) return this.refusePut(c, pool, old, TMEM_EPERM);
    }
    if (old === NIL) {
      if (pool.persistent && pool.owner.persistentUnits() >= pool.owner.persistentAllowance) {
        return this.refusePut(c, pool, NIL, TMEM_ENOSPC);
      }
      if (this.pages >= this.maxPages && !this.evictForRecord(c)) {
        return this.refusePut(c, pool, NIL, TMEM_ENOSPC);
      }
    }
    const pt = this.pt;
    const fast = this.putWhole(c, pool, memory, pfn, old);
    if (fast !== NO_ROOM) {
      // Stored (a handle, or NO_FRAME for a same-filled page, its word in the scratch page).
      return this.placePage(pool, key, index, old, fast, fast === NO_FRAME ? this.scratchWords[0]! : 0);
    }
    this.readGuestPage(memory, pfn, old); // the one copy from the guest, into scratch
    this.detachData(old);
    const word = sameFilledWord(this.scratchWords, 0);
    const h = word === NOT_SAME_FILLED ? this.storeData(c, pool) : NO_FRAME;
    if (h === NO_ROOM) {
      if (old !== NIL) this.account(old); // as an empty same-filled page, which refusePut removes
      return this.refusePut(c, pool, old, TMEM_ENOSPC);
    }
    return this.placePage(pool, key, index, old, h, h === NO_FRAME ? word : 0);
  }

  /**
   * The end of a put that stored its data (handle `h`, or NO_FRAME and the same-filled word
   * `fill`): into the page record `old` (its data already released and unaccounted), or a new one.
   */
  private placePage(pool: Pool, key: ObjectKey, index: number, old: number, h: number, fill: number): number {
    const pt = this.pt;
    if (old !== NIL) {
      pt.frame[old] = h;
      pt.fill[old] = fill;
      this.account(old);
      return TMEM_HIT;
    }
    let s: number;
    try {
      s = pt.allocSlot(); // may grow the page table, which may fail
    } catch (error) {
      if (h !== NO_FRAME) this.data.release(h);
      throw error;
    }
    // An eviction (for a record or for room) may have removed the object with its last page.
    let obj = pool.objects.get(key);
    if (obj === undefined) {
      obj = new TmemObject(pool, key);
      pool.objects.set(key, obj);
    }
    pt.frame[s] = h;
    pt.fill[s] = fill;
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
    if (this.scan !== undefined && !pool.persistent) this.scan.get(pageKeyHash(lo, hi, index), !pool.shared);
    const s = pool.objects.get(objectKey(lo, hi))?.pages.get(index);
    if (s === undefined) return TMEM_MISS;

    const h = this.pt.frame[s]!;
    if (h !== NO_FRAME) {
      memory.writePage(pfn, this.data.pageOf(h, this.scratch));
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
    const compress: [boolean, boolean] = [
      options.compression?.ephemeral ?? this.compression,
      options.compression?.persistent ?? this.compression,
    ];
    this.clients.set(id, new Client(id, name, weight, allowance, this.pt.newList(), compress));
    return id;
  }

  /** Destroys a client: leaves all its pools and frees every page charged to it, at once. */
  destroyClient(clientId: number): void {
    const c = this.client(clientId);
    c.pools.forEach((pool, id) => {
      if (pool !== undefined) this.leavePool(c, id, pool);
    });
    if (c.chargedBytes !== 0 || c.ephemeralPages !== 0 || c.persistentPages !== 0) {
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
    if (c.chargedBytes > 0) this.weightSum += weight - c.weight;
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

  /**
   * From now on a put into the shared pool `uuid` is accepted only if `verifier` says its bytes are
   * the image's (else TMEM_EPERM, the handle flushed, counted as a refused put); undefined stops
   * verifying. Pages already in the pool stay.
   */
  verifySharedPuts(uuid: string, verifier: SharedPageVerifier | undefined): void {
    const id = parseUuid(uuid);
    if (verifier === undefined) this.verifiers.delete(id);
    else this.verifiers.set(id, verifier);
  }

  /** Takes an authorisation back; a pool the client already holds stays held. */
  revokeShared(clientId: number, uuid: string): void {
    this.client(clientId).authorisedUuids.delete(parseUuid(uuid));
  }

  /**
   * A full client reset (tmem_abi.h, "PROBE and reset"): the client leaves every pool it holds (its
   * private pools and their pages are freed; a shared pool lives on while other members hold it).
   * Nothing else changes: weight, allowance, frozen and authorisations stay. A TMEM_PROBE does
   * this; the host does it with `pending` for a guest whose tmem state it cannot carry over (a
   * guest restored from a snapshot into this store): until the guest probes again, every guest op
   * but the probe answers TMEM_E_RESET (resetPending). Returns the number of pools left.
   */
  resetClient(clientId: number, options: { pending?: boolean } = {}): number {
    const c = this.client(clientId);
    let n = 0;
    c.pools.forEach((pool, id) => {
      if (pool === undefined) return;
      this.leavePool(c, id, pool);
      n++;
    });
    c.resetPending = options.pending === true;
    return n;
  }

  /** Whether guest ops of the client answer TMEM_E_RESET (resetClient with pending, no probe since). */
  resetPending(clientId: number): boolean {
    return this.clients.get(clientId)?.resetPending === true;
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
   * Shrinking compacts and evicts ephemeral pages (global LRU first); it is refused below the frames
   * persistent pages need when compacted (they are never evicted), changing nothing.
   */
  setBudgetFrames(frames: number): void {
    checkCount("budgetFrames", frames, this.slab.framesTotal);
    const pinned = this.data.zpool.minPinnedFrames();
    if (frames < pinned) {
      throw new TmemuError(
        "BAD_INPUT",
        `tmem: cannot shrink the budget to ${frames} frames: persistent pages hold ` +
          `${pinned} frames and are never evicted`,
        `choose a budget of at least ${pinned} frames, or flush the clients' persistent pages first`,
      );
    }
    this.budget = frames;
    const zpool = this.data.zpool;
    while (this.slab.framesUsed > frames) {
      if (this.slab.framesUsed - zpool.compactableFrames() <= frames && zpool.compact() > 0) continue;
      if (!this.evictData(undefined)) {
        throw new BugIndicatingError("tmem store: over budget with nothing evictable");
      }
    }
  }

  /**
   * Save and restore (client-state.ts): calls `fn` for each page of the client's persistent pools
   * with its pool id, object id words, index and 4 KiB of data (a scratch buffer, valid during the
   * call only). Reads nothing from a guest and counts nothing.
   */
  forEachPersistentPage(clientId: number, fn: (poolId: number, lo: number, hi: number, index: number, page: Uint8Array) => void): void {
    const c = this.client(clientId);
    c.pools.forEach((pool, poolId) => {
      if (pool === undefined || !pool.persistent) return;
      for (const obj of pool.objects.values()) {
        const id = objectIdOfKey(obj.key);
        const lo = Number(id & 0xffffffffn);
        const hi = Number(id >> 32n);
        for (const [index, s] of obj.pages) {
          const h = this.pt.frame[s]!;
          if (h !== NO_FRAME) fn(poolId, lo, hi, index, this.data.pageOf(h, this.scratch));
          else {
            this.scratchWords.fill(this.pt.fill[s]!);
            fn(poolId, lo, hi, index, this.scratch);
          }
        }
      }
    });
  }

  /**
   * Save and restore (live migration, client-state.ts): the data of one page of a persistent pool
   * of the client (a scratch buffer, valid until the next store call), or undefined if the pool is
   * not persistent or holds no such page. Counts nothing.
   */
  peekPersistentPage(clientId: number, poolId: number, lo: number, hi: number, index: number): Uint8Array | undefined {
    const pool = this.clients.get(clientId)?.pools[poolId];
    if (pool === undefined || !pool.persistent) return undefined;
    const s = pool.objects.get(objectKey(lo >>> 0, hi >>> 0))?.pages.get(index >>> 0);
    if (s === undefined) return undefined;
    const h = this.pt.frame[s]!;
    if (h !== NO_FRAME) return this.data.pageOf(h, this.scratch);
    this.scratchWords.fill(this.pt.fill[s]!);
    return this.scratch;
  }

  clientMetrics(clientId: number): ClientMetricsJson {
    const c = this.client(clientId);
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
      ...clientCountersJson(c.counters, dataGaugesJson(c.dataPages, c.chargedBytes, c.storedBytes)),
      compression: { ephemeral: c.compress[0], persistent: c.compress[1] },
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
    const d = this.data.stats();
    const dataPages = this.pages - this.sameFilledPages;
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
      persistentFrames: this.data.zpool.minPinnedFrames(),
      compressor: this.compression ? COMPRESSOR : null,
      dedup: this.dedup,
      objects: d.objects,
      compressedBytes: d.bytesStored,
      allocatedBytes: d.bytesAllocated,
      pagesPerFrame: d.framesUsed > 0 ? dataPages / d.framesUsed : null,
      dedupHits: d.dedupHits,
      dedupCollisions: d.dedupCollisions,
      compressedPuts: d.compressedPuts,
      wholePuts: d.wholePuts,
      fragmentationFrames: d.compactableFrames,
      compactions: d.compactions,
      framesCompacted: d.framesCompacted,
      objectsMoved: d.objectsMoved,
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
    type Gauges = { eph: number; pers: number; fill: number; frames: number; charged: number; stored: number; pCharged: number; pFrames: number };
    const zero = (): Gauges => ({ eph: 0, pers: 0, fill: 0, frames: 0, charged: 0, stored: 0, pCharged: 0, pFrames: 0 });
    const perClient = new Map<Client, Gauges>();
    for (const c of this.clients.values()) perClient.set(c, zero());
    let pages = 0;
    let fill = 0;
    let eph = 0;
    const refs = new Map<number, number>();
    const frameSlots = new Set<number>();
    const fillSlots = new Set<number>();
    for (const pool of pools) {
      if (pool.persistent && pool.shared) bug("shared persistent pool");
      for (const [c, id] of pool.members) if (c.pools[id] !== pool) bug(`member ${c.id} lost pool ${id}`);
      if (!pool.members.has(pool.owner)) bug("pool owner is not a member");
      const owner = perClient.get(pool.owner) ?? bug("pool owner is not a client");
      const p = zero();
      for (const [key, obj] of pool.objects) {
        if (obj.key !== key || obj.pool !== pool) bug(`object ${String(key)} misfiled`);
        if (obj.pages.size === 0) bug(`empty object ${String(key)} kept`);
        for (const [index, s] of obj.pages) {
          if (pt.obj[s] !== obj || pt.index[s] !== index) bug(`page slot ${s} misfiled`);
          p.eph++;
          const h = pt.frame[s]!;
          if (h === NO_FRAME) {
            p.fill++;
            if (!pool.persistent) fillSlots.add(s);
          } else {
            p.frames++;
            refs.set(h, (refs.get(h) ?? 0) + 1);
            if (this.data.zpool.isPinned(h) !== pool.persistent) bug(`handle ${h} pinned unlike its pool`);
            p.charged += this.data.charge(h);
            p.stored += this.data.storedBytes(h);
            if (!pool.persistent) frameSlots.add(s);
          }
          if (pool.persistent && (pt.gNext[s] !== NIL || pt.cNext[s] !== NIL)) bug("persistent page in an LRU");
        }
      }
      if (p.eph !== pool.pages || p.frames !== pool.frames || p.fill !== pool.sameFilled) bug(`pool gauges ${p.eph}/${pool.pages} ${p.frames}/${pool.frames} ${p.fill}/${pool.sameFilled}`);
      if (p.charged !== pool.chargedBytes || p.stored !== pool.storedBytes) bug("pool byte gauges");
      if (pool.persistent) {
        owner.pers += p.eph;
        owner.pCharged += p.charged;
        owner.pFrames += p.frames;
      } else {
        owner.eph += p.eph;
      }
      owner.fill += p.fill;
      owner.frames += p.frames;
      owner.charged += p.charged;
      owner.stored += p.stored;
      pages += p.eph;
      fill += p.fill;
      if (!pool.persistent) eph += p.eph;
    }
    if (pages !== this.pages || fill !== this.sameFilledPages || eph !== this.ephemeralPages) bug("store gauges");
    if (pages - eph !== this.persistentPages) bug("persistent gauges");
    this.data.checkInvariants(refs);
    if (this.slab.framesUsed > this.budget) bug("over budget");
    if (pages > this.maxPages) bug("over maxPages");
    let weightSum = 0;
    for (const [c, n] of perClient) {
      if (n.eph !== c.ephemeralPages || n.pers !== c.persistentPages) bug(`client ${c.id} page gauges`);
      if (n.fill !== c.sameFilledPages || n.frames !== c.dataPages) bug(`client ${c.id} data page gauges`);
      if (n.charged !== c.chargedBytes || n.stored !== c.storedBytes) bug(`client ${c.id} byte gauges`);
      if (n.pCharged !== c.persistentChargedBytes || n.pFrames !== c.persistentDataPages) bug(`client ${c.id} persistent gauges`);
      if (c.chargedBytes > 0) weightSum += c.weight;
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
   * Reads guest frame `pfn` into the scratch page. GuestMemory is outside code: if it throws, the
   * put fails without leaving `old` (the page at the handle) behind, then the exception goes on to
   * the hypercall layer.
   */
  private readGuestPage(memory: GuestMemory, pfn: number, old: number): void {
    try {
      memory.readPage(pfn, this.scratch);
    } catch (error) {
      if (old !== NIL) this.removePage(old);
      throw error;
    }
  }

  /**
   * The whole-page fast path of a put: when this put does not compress (compression off, or the
   * client's gate skipping the compressor) and a frame is free within the budget, reads guest frame
   * `pfn` straight into a new whole-page object (one copy instead of two: into scratch, then into
   * the object), detaches `old`'s data as the two-step path does, then keeps the object, or with
   * dedup shares an equal stored page's (page-data.ts dedupWhole). Returns the handle, or NO_FRAME
   * for a same-filled page (its word then fills the scratch page's first word; the object is given
   * back), or NO_ROOM, having changed nothing, when the put must take the two-step path (it
   * compresses, or no frame is free: making room evicts, and a same-filled page never evicts
   * anything). A failing guest read removes `old`, as readGuestPage does.
   */
  private putWhole(c: Client, pool: Pool, memory: GuestMemory, pfn: number, old: number): number {
    const compress = c.compress[kind(pool.persistent)];
    const gate = pool.persistent ? undefined : c.gate;
    // Not when this put compresses (storeData: compress && the gate lets it try).
    if (compress && (gate === undefined || !gate.skipping)) return NO_ROOM;
    const data = this.data;
    const h = data.reserveWhole(this.budget, pool.persistent);
    if (h === NO_HANDLE) return NO_ROOM;
    const frame = data.wholeFrame(h);
    try {
      memory.readPage(pfn, frame);
    } catch (error) {
      data.cancelWhole(h);
      if (old !== NIL) this.removePage(old);
      throw error;
    }
    this.detachData(old);
    const word = sameFilledWord(this.slab.words, frame.byteOffset / 4);
    if (word !== NOT_SAME_FILLED) {
      data.cancelWhole(h);
      this.scratchWords[0] = word;
      return NO_FRAME;
    }
    if (compress) gate!.shouldTry(); // false (skipping): counts the skip, as storeData would
    const scope = this.dedupScope(c, pool.persistent);
    if (scope === NO_DEDUP) {
      data.keepWhole(h);
      return h;
    }
    const shared = data.dedupWhole(h, scope);
    if (shared !== h) {
      c.counters.dedupHits++;
      pool.counters.dedupHits++;
    }
    return shared;
  }

  /**
   * Detaches the data of page record `old` (if any) before a put stores new data: unaccounted and
   * released, so that it can be reused for the new data, and out of the LRU lists, so that the
   * room-making of the put cannot evict it (nor its object).
   */
  private detachData(old: number): void {
    if (old === NIL) return;
    const pt = this.pt;
    this.unaccount(old);
    if (pt.frame[old] !== NO_FRAME) this.data.release(pt.frame[old]!);
    pt.frame[old] = NO_FRAME;
    pt.fill[old] = 0;
  }

  /** Which pages the scratch page may share data with (page-data.ts). */
  private dedupScope(c: Client, persistent: boolean): number {
    if (this.dedup === "off") return NO_DEDUP;
    return this.dedup === "global" ? kind(persistent) : c.id * 2 + kind(persistent);
  }

  /**
   * Stores the scratch page's data for a put by `c` to `pool`: shares an equal page's, or
   * compresses and finds room, compacting or evicting as needed. Returns the handle, or NO_ROOM.
   */
  private storeData(c: Client, pool: Pool): number {
    const k = kind(pool.persistent);
    const gate = pool.persistent ? undefined : c.gate;
    const compress = c.compress[k] && (gate?.shouldTry() ?? true);
    let h = this.data.prepare(this.scratch, this.scratchWords, compress, this.dedupScope(c, pool.persistent));
    if (h !== NO_HANDLE) {
      c.counters.dedupHits++;
      pool.counters.dedupHits++;
      return h;
    }
    if (compress) gate?.record(this.data.pendingCompressed);
    const zpool = this.data.zpool;
    for (;;) {
      h = this.data.commit(this.budget, pool.persistent);
      if (h !== NO_HANDLE) return h;
      if (zpool.compactableFrames() >= compactionThreshold(this.slab.framesUsed) && zpool.compact() > 0) continue;
      // Scan resistance refuses instead of evicting, only where a page would be evicted.
      if (this.scan !== undefined && !pool.persistent && this.pt.firstG(this.frameLru) !== NIL && !this.scan.admit()) return NO_ROOM;
      if (!this.evictData(c) && zpool.compact() === 0) return NO_ROOM;
    }
  }

  private charge(c: Client, bytes: number): void {
    const before = c.chargedBytes;
    const after = before + bytes;
    c.chargedBytes = after;
    if (before === 0 && after > 0) this.weightSum += c.weight;
    else if (before > 0 && after === 0) this.weightSum -= c.weight;
  }

  /** Adds (sign 1) or takes away (sign -1) page `s`'s data to the gauges of its pool and owner. */
  private accountData(s: number, pool: Pool, c: Client, sign: 1 | -1): void {
    const h = this.pt.frame[s]!;
    const charged = sign * this.data.charge(h);
    const stored = sign * this.data.storedBytes(h);
    pool.frames += sign;
    pool.chargedBytes += charged;
    pool.storedBytes += stored;
    c.dataPages += sign;
    c.storedBytes += stored;
    if (pool.persistent) {
      c.persistentDataPages += sign;
      c.persistentChargedBytes += charged;
    }
    this.charge(c, charged);
  }

  /** Adds page `s` (data/fill and obj set) to the gauges, and to the LRU lists at the MRU end. */
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
      this.accountData(s, pool, c, 1);
      if (!pool.persistent) {
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
      this.accountData(s, pool, c, -1);
      if (!pool.persistent) {
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

  /** Frees page `s` (its data reference and slot) without touching its object's map. */
  private releasePage(s: number): void {
    const pt = this.pt;
    this.unaccount(s);
    const h = pt.frame[s]!;
    if (h !== NO_FRAME) this.data.release(h);
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

  private overShare(c: Client | undefined): boolean {
    return c !== undefined && overShare(c.chargedBytes, c.weight, this.weightSum, this.budget * FRAME_SIZE);
  }

  /** Evicts one ephemeral page with data (eviction.ts). False if there is none. */
  private evictData(putter: Client | undefined): boolean {
    const victim = dataVictim(this.pt, putter?.lru ?? NIL, this.overShare(putter), this.frameLru);
    if (victim === NIL) return false;
    this.evict(victim);
    return true;
  }

  /** Evicts one ephemeral page to free a page record: a same-filled one first. */
  private evictForRecord(putter: Client): boolean {
    const victim = recordVictim(this.pt, this.fillLru, putter.lru, this.overShare(putter), this.frameLru);
    if (victim === NIL) return false;
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
    from.dataPages -= pool.frames;
    to.dataPages += pool.frames;
    from.storedBytes -= pool.storedBytes;
    to.storedBytes += pool.storedBytes;
    this.charge(from, -pool.chargedBytes);
    this.charge(to, pool.chargedBytes);
    pool.owner = to;
  }

  private poolJson(pool: Pool, localId: number): PoolMetricsJson {
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
      ...poolCountersJson(pool.counters, dataGaugesJson(pool.frames, pool.chargedBytes, pool.storedBytes)),
    };
  }
}
