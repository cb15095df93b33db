/**
 * Metrics of the tmem store: counters per client and per pool, and store totals, in the spirit of
 * Xen's `xl tmem-list` (per client, then per pool) and Firecracker's metrics.rs (named counters with
 * a documented JSON shape, no loose globals).
 *
 * Counters (monotonic) live in ClientCounters / PoolCounters objects owned by the store; gauges
 * (pages held now) are read from the store's accounting when a snapshot is taken. The JSON shapes
 * below are what TmemStore.clientMetrics / poolMetrics / metrics (and JSON.stringify(store)) return.
 *
 * Op counters count hypercalls that name the op, whatever their result: every TMEM_PUT_PAGE counts
 * once in `puts`, including one refused for a bad frame or before a probe. Every negative result
 * counts once in `errors` under its name (tmem_abi.h TMEM_E*); `internalErrors` counts hypercalls
 * that hit a bug in the host (answered TMEM_EINVAL, and also counted in errors.EINVAL).
 */

import {
  TMEM_DESTROY_POOL,
  TMEM_ERRORS,
  TMEM_FLUSH_OBJECT,
  TMEM_FLUSH_PAGE,
  TMEM_GET_PAGE,
  TMEM_NEW_POOL,
  TMEM_PROBE,
  TMEM_PUT_PAGE,
  type TmemErrorName,
} from "./abi.ts";
import { BugIndicatingError } from "../errors.ts";
import { FRAME_SIZE } from "./slab.ts";

/** Negative results returned to one client, by TMEM_E* name (e.g. { "ENOSPC": 3, ... }). */
export type TmemErrorCounts = Record<TmemErrorName, number>;

const ERROR_NAMES = Object.keys(TMEM_ERRORS) as TmemErrorName[];

const ERROR_NAME_BY_CODE = new Map<number, TmemErrorName>(
  ERROR_NAMES.map((name) => [TMEM_ERRORS[name], name]),
);

export function emptyErrorCounts(): TmemErrorCounts {
  const counts = {} as TmemErrorCounts;
  for (const name of ERROR_NAMES) counts[name] = 0;
  return counts;
}

/** The TMEM_E* name of a negative result. Throws BugIndicatingError for a code not in the ABI. */
export function errorName(code: number): TmemErrorName {
  const name = ERROR_NAME_BY_CODE.get(code);
  if (name === undefined) throw new BugIndicatingError(`tmem: result ${code} is not a TMEM_E* code`);
  return name;
}

/** Monotonic counters of one client (guest). */
export class ClientCounters {
  /** TMEM_PROBE hypercalls. */
  probes = 0;
  /** TMEM_NEW_POOL hypercalls. */
  newPools = 0;
  /** TMEM_DESTROY_POOL hypercalls. */
  destroyPools = 0;
  /** TMEM_PUT_PAGE hypercalls. */
  puts = 0;
  /** Puts answered TMEM_ENOSPC (store full, over allowance) or TMEM_EBUSY (client frozen). */
  putsRefused = 0;
  /** TMEM_GET_PAGE hypercalls. */
  gets = 0;
  /** Gets answered TMEM_HIT. */
  getHits = 0;
  /** TMEM_FLUSH_PAGE hypercalls. */
  flushPages = 0;
  /** TMEM_FLUSH_OBJECT hypercalls. */
  flushObjects = 0;
  /** Pages removed by TMEM_FLUSH_PAGE and TMEM_FLUSH_OBJECT. */
  pagesFlushed = 0;
  /** Pages charged to this client that the store evicted to make room. */
  evictions = 0;
  /** Hypercalls that hit a bug in the host (see TmemHypercallHandler.lastInternalError). */
  internalErrors = 0;
  /** Puts whose data an equal page already stored was shared for (deduplication). */
  dedupHits = 0;
  readonly errors: TmemErrorCounts = emptyErrorCounts();

  /** Counts one hypercall under its op's counter (nothing for an unknown op). */
  countOp(op: number): void {
    switch (op) {
      case TMEM_PROBE:
        this.probes++;
        break;
      case TMEM_NEW_POOL:
        this.newPools++;
        break;
      case TMEM_DESTROY_POOL:
        this.destroyPools++;
        break;
      case TMEM_PUT_PAGE:
        this.puts++;
        break;
      case TMEM_GET_PAGE:
        this.gets++;
        break;
      case TMEM_FLUSH_PAGE:
        this.flushPages++;
        break;
      case TMEM_FLUSH_OBJECT:
        this.flushObjects++;
        break;
      default:
        break;
    }
  }

  /** Counts a negative result under its name; non-negative results are not errors. */
  countResult(result: number): void {
    if (result < 0) this.errors[errorName(result)]++;
  }
}

/** Monotonic counters of one pool (for a shared pool: all members together). */
export class PoolCounters {
  puts = 0;
  putsRefused = 0;
  gets = 0;
  getHits = 0;
  flushPages = 0;
  flushObjects = 0;
  pagesFlushed = 0;
  evictions = 0;
  dedupHits = 0;
}

/**
 * The data of a client's or pool's pages that are not same-filled (counted per page, so a page
 * sharing deduplicated data counts that data again):
 *  "framesInUse":    chargedBytes in 4 KiB frames, rounded up
 *  "dataPages":      pages with data (not same-filled)
 *  "chargedBytes":   bytes of the size-class slots their data takes (what the share rule counts)
 *  "compressedBytes": bytes of their data as stored (compressed, or 4096 for a page kept whole)
 *  "pagesPerFrame":  dataPages per 4096 charged bytes, null without data
 */
export interface DataGaugesJson {
  framesInUse: number;
  // Optional (here and in the newer keys below): documents written before compression lack them.
  dataPages?: number;
  chargedBytes?: number;
  compressedBytes?: number;
  pagesPerFrame?: number | null;
}

export function dataGaugesJson(dataPages: number, chargedBytes: number, storedBytes: number): Required<DataGaugesJson> {
  return {
    framesInUse: Math.ceil(chargedBytes / FRAME_SIZE),
    dataPages,
    chargedBytes,
    compressedBytes: storedBytes,
    pagesPerFrame: chargedBytes > 0 ? (dataPages * FRAME_SIZE) / chargedBytes : null,
  };
}

type PoolCountersJson = Pick<PoolMetricsJson, "puts" | "putsRefused" | "gets" | "getHits" | "flushPages" | "flushObjects" | "pagesFlushed" | "evictions" | "dedupHits">;

export function poolCountersJson(k: PoolCounters, gauges: Required<DataGaugesJson>): Required<DataGaugesJson> & Required<PoolCountersJson> {
  return {
    ...gauges,
    puts: k.puts,
    putsRefused: k.putsRefused,
    gets: k.gets,
    getHits: k.getHits,
    flushPages: k.flushPages,
    flushObjects: k.flushObjects,
    pagesFlushed: k.pagesFlushed,
    evictions: k.evictions,
    dedupHits: k.dedupHits,
  };
}

export function clientCountersJson(k: ClientCounters, gauges: Required<DataGaugesJson>) {
  return {
    ...poolCountersJson(k, gauges),
    probes: k.probes,
    newPools: k.newPools,
    destroyPools: k.destroyPools,
    internalErrors: k.internalErrors,
    errors: { ...k.errors },
  };
}

/**
 * One pool as seen by one member client:
 * {
 *   "poolId": 0,                  // the client's local pool id (EAX bits 8-15)
 *   "persistent": false, "shared": true,
 *   "uuid": "…" | null,           // shared pools only, canonical text form
 *   "owner": 1,                   // client charged for the pool's pages
 *   "members": [1, 2],            // client ids holding the pool (just the owner if private)
 *   "objects": 10, "pages": 120, "sameFilledPages": 20,
 *   DataGaugesJson ("framesInUse", "dataPages", "chargedBytes", "compressedBytes", "pagesPerFrame"),
 *   "puts": …, "putsRefused": …, "gets": …, "getHits": …, "flushPages": …, "flushObjects": …,
 *   "pagesFlushed": …, "evictions": …, "dedupHits": …
 * }
 */
export interface PoolMetricsJson extends DataGaugesJson {
  poolId: number;
  persistent: boolean;
  shared: boolean;
  uuid: string | null;
  owner: number;
  members: number[];
  objects: number;
  pages: number;
  sameFilledPages: number;
  puts: number;
  putsRefused: number;
  gets: number;
  getHits: number;
  flushPages: number;
  flushObjects: number;
  pagesFlushed: number;
  evictions: number;
  dedupHits?: number;
}

/**
 * One client (guest); gauges count the pages charged to it (its private pools and the shared pools
 * it owns):
 * {
 *   "id": 1, "name": "guest0", "weight": 1, "frozen": false,
 *   "persistentAllowancePages": 4096 | null,   // null: no allowance set
 *   "pagesEphemeral": …, "pagesPersistent": …, "sameFilledPages": …,
 *   DataGaugesJson ("framesInUse", "dataPages", "chargedBytes", "compressedBytes", "pagesPerFrame"),
 *   "probes": …, "newPools": …, "destroyPools": …, "puts": …, "putsRefused": …, "gets": …,
 *   "getHits": …, "flushPages": …, "flushObjects": …, "pagesFlushed": …, "evictions": …,
 *   "internalErrors": …, "dedupHits": …,
 *   "compression": { "ephemeral": true, "persistent": true },   // pages of each pool type compressed
 *   "errors": { "EPERM": 0, "ENOENT": 0, "EFAULT": 0, "EBUSY": 0, "EINVAL": 0, "EMFILE": 0,
 *               "ENOSPC": 0, "ENOSYS": 0, "EPROTO": 0 },
 *   "pools": [PoolMetricsJson, …]               // in local pool id order
 * }
 */
export interface ClientMetricsJson extends DataGaugesJson {
  id: number;
  name: string;
  weight: number;
  frozen: boolean;
  persistentAllowancePages: number | null;
  pagesEphemeral: number;
  pagesPersistent: number;
  sameFilledPages: number;
  probes: number;
  newPools: number;
  destroyPools: number;
  puts: number;
  putsRefused: number;
  gets: number;
  getHits: number;
  flushPages: number;
  flushObjects: number;
  pagesFlushed: number;
  evictions: number;
  internalErrors: number;
  dedupHits?: number;
  errors: TmemErrorCounts;
  compression?: { ephemeral: boolean; persistent: boolean };
  pools: PoolMetricsJson[];
}

/**
 * The whole store:
 * {
 *   "budgetFrames": 65536,        // frames the store may use now (setBudgetFrames)
 *   "framesTotal": 65536,         // frames in the slab (the budget it was created with)
 *   "framesUsed": 600,            // slab frames the size classes hold: what the budget counts
 *   "maxPages": 524288,           // cap on page records, with data or same-filled
 *   "pages": 1200, "pagesEphemeral": 1100, "pagesPersistent": 100, "sameFilledPages": 200,
 *   "evictions": 5,
 *   "persistentFrames": 80,       // frames persistent data needs at least (compacted): the floor
 *                                 // of the budget (setBudgetFrames), as they are never evicted
 *   "compressor": "lz4" | null,   // null: compression off by default
 *   "dedup": "client" | "off" | "global",
 *   "objects": 900,               // data objects (pages that are not same-filled, shared ones once)
 *   "compressedBytes": …,         // bytes of the objects as stored
 *   "allocatedBytes": …,          // bytes of the size-class slots they take
 *   "pagesPerFrame": 1.67 | null, // (pages - sameFilledPages) / framesUsed
 *   "dedupHits": …, "dedupCollisions": …,   // shared after a full compare; hash equal, data not
 *   "compressedPuts": …, "wholePuts": …,     // data stored compressed / whole
 *   "fragmentationFrames": …,     // frames compaction would free now
 *   "compactions": …, "framesCompacted": …, "objectsMoved": …,
 *   "clients": [ClientMetricsJson, …]            // in client id order
 * }
 */
export interface StoreMetricsJson {
  budgetFrames: number;
  framesTotal: number;
  framesUsed: number;
  maxPages: number;
  pages: number;
  pagesEphemeral: number;
  pagesPersistent: number;
  sameFilledPages: number;
  evictions: number;
  persistentFrames?: number;
  compressor?: string | null;
  dedup?: string;
  objects?: number;
  compressedBytes?: number;
  allocatedBytes?: number;
  pagesPerFrame?: number | null;
  dedupHits?: number;
  dedupCollisions?: number;
  compressedPuts?: number;
  wholePuts?: number;
  fragmentationFrames?: number;
  compactions?: number;
  framesCompacted?: number;
  objectsMoved?: number;
  clients: ClientMetricsJson[];
}

/**
 * The store's density over a run, from one StoreMetricsJson per tick (a run's end is no guide: the
 * guests have flushed most pages by then):
 * {
 *   "samples": 120,
 *   "peakFramesUsed": 16384,        // the most frames the store held at a tick
 *   "dataPagesAtPeak": 30000,       // pages with data (not same-filled) at that tick
 *   "pagesPerFrameAtPeak": 1.83,    // dataPagesAtPeak / peakFramesUsed (null: never held a frame)
 *   "compressedBytesAtPeak": …,
 *   "maxFragmentationFrames": 40,   // the most frames compaction could have freed at a tick
 *   "maxFragmentationFraction": 0.003   // the same as a fraction of the frames used then
 * }
 */
export interface StoreDensityJson {
  samples: number;
  peakFramesUsed: number;
  dataPagesAtPeak: number;
  pagesPerFrameAtPeak: number | null;
  compressedBytesAtPeak: number;
  maxFragmentationFrames: number;
  maxFragmentationFraction: number;
}

export class StoreDensityTracker {
  private d: StoreDensityJson = {
    samples: 0,
    peakFramesUsed: 0,
    dataPagesAtPeak: 0,
    pagesPerFrameAtPeak: null,
    compressedBytesAtPeak: 0,
    maxFragmentationFrames: 0,
    maxFragmentationFraction: 0,
  };

  observe(m: StoreMetricsJson): void {
    const d = this.d;
    d.samples++;
    if (m.framesUsed > 0 && m.framesUsed >= d.peakFramesUsed) {
      d.peakFramesUsed = m.framesUsed;
      d.dataPagesAtPeak = m.pages - m.sameFilledPages;
      d.pagesPerFrameAtPeak = d.dataPagesAtPeak / m.framesUsed;
      d.compressedBytesAtPeak = m.compressedBytes ?? 0;
    }
    const frag = m.fragmentationFrames ?? 0;
    d.maxFragmentationFrames = Math.max(d.maxFragmentationFrames, frag);
    if (m.framesUsed > 0) d.maxFragmentationFraction = Math.max(d.maxFragmentationFraction, frag / m.framesUsed);
  }

  toJson(): StoreDensityJson {
    return { ...this.d };
  }
}
