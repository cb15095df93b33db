/**
 * The records of the tmem store (store.ts): objects, pools and clients with their gauges. The
 * store's ops keep these consistent; TmemStore.checkInvariants says what consistent means.
 */

import { TMEM_MAX_POOLS } from "./abi.ts";
import { CompressionGate } from "./codec.ts";
import type { ObjectKey, UuidText } from "./handle.ts";
import { ClientCounters, PoolCounters } from "./metrics.ts";
import { FRAME_SIZE } from "./slab.ts";

/** A page-carrying unit of a pool, named by its 64-bit object id. */
export class TmemObject {
  readonly pages = new Map<number, number>();

  constructor(
    readonly pool: Pool,
    readonly key: ObjectKey,
  ) {}
}

export class Pool {
  readonly objects = new Map<ObjectKey, TmemObject>();
  /** Member clients and the local pool id each one uses (just the owner for a private pool). */
  readonly members = new Map<Client, number>();
  readonly counters = new PoolCounters();
  /** Gauges of the pages in this pool: all, with data, same-filled; bytes of their data. */
  pages = 0;
  frames = 0;
  sameFilled = 0;
  chargedBytes = 0;
  storedBytes = 0;

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

export class Client {
  readonly pools: (Pool | undefined)[] = new Array<Pool | undefined>(TMEM_MAX_POOLS).fill(undefined);
  readonly authorisedUuids = new Set<UuidText>();
  readonly counters = new ClientCounters();
  frozen = false;
  /** Set by TmemStore.resetClient({ pending: true }): guest ops answer TMEM_E_RESET until a probe. */
  resetPending = false;
  /** Gauges of the pages charged to this client; bytes of their data (per reference). */
  ephemeralPages = 0;
  persistentPages = 0;
  sameFilledPages = 0;
  dataPages = 0;
  chargedBytes = 0;
  storedBytes = 0;
  /** Charged bytes of the data of its persistent pages (for the allowance, which counts memory). */
  persistentChargedBytes = 0;
  persistentDataPages = 0;
  /** Whether compressing its ephemeral pages pays (persistent pages are always compressed if asked). */
  readonly gate = new CompressionGate();

  constructor(
    readonly id: number,
    readonly name: string,
    public weight: number,
    /** Infinity when no allowance is set. */
    public persistentAllowance: number,
    /** Sentinel of this client's LRU list (PageTable pair C) of ephemeral frame-backed pages. */
    readonly lru: number,
    /** Compress pages of ephemeral / persistent pools. */
    readonly compress: [boolean, boolean],
  ) {}

  /**
   * What counts against the persistent allowance, in 4 KiB units: a page with data its class slot
   * (a whole page 1, a page compressed into a 2,128-byte slot 0.52), a same-filled page 1.
   */
  persistentUnits(): number {
    return this.persistentPages - this.persistentDataPages + this.persistentChargedBytes / FRAME_SIZE;
  }
}
