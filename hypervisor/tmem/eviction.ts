/**
 * The store's eviction policy (Xen's tmem_evict, with weighted shares), apart from the store's
 * bookkeeping: which ephemeral page to evict when a put finds no room.
 *
 * A client is over its weighted share when chargedBytes * W > budgetBytes * weight, W being the sum
 * of the weights of the clients that are charged anything. Charges are per page reference (a page
 * that shares a deduplicated object is charged the object's slot as if it held its own copy), so a
 * client's share never depends on what other clients happen to store.
 *
 * Victims: the putting client's least recently used ephemeral data page if it is over its share and
 * has one, else the least recently used one of all. For a page record (the maxPages cap): the least
 * recently used same-filled ephemeral page first, as it frees a record without freeing data.
 */

import { NIL, type PageTable } from "./page-table.ts";

export function overShare(chargedBytes: number, weight: number, weightSum: number, budgetBytes: number): boolean {
  return chargedBytes > 0 && chargedBytes * weightSum > budgetBytes * weight;
}

/**
 * The page to evict to free data room: the LRU page of C-list `putterLru` if `putterOverShare`,
 * else the LRU page of G-list `globalLru`; NIL if there is none.
 */
export function dataVictim<O>(pt: PageTable<O>, putterLru: number, putterOverShare: boolean, globalLru: number): number {
  let victim = NIL;
  if (putterLru !== NIL && putterOverShare) victim = pt.firstC(putterLru);
  if (victim === NIL) victim = pt.firstG(globalLru);
  return victim;
}

/** The page to evict to free a page record: the LRU same-filled page, else as dataVictim. */
export function recordVictim<O>(
  pt: PageTable<O>,
  fillLru: number,
  putterLru: number,
  putterOverShare: boolean,
  globalLru: number,
): number {
  const victim = pt.firstG(fillLru);
  return victim !== NIL ? victim : dataVictim(pt, putterLru, putterOverShare, globalLru);
}

/**
 * Frames compaction must be able to free before the store compacts instead of evicting: at least
 * COMPACT_MIN_FRAMES and 1/COMPACT_FRACTION of the frames in use, so fragmentation stays below that
 * bound and compaction (which moves objects) runs rarely.
 */
export const COMPACT_MIN_FRAMES = 8;
export const COMPACT_FRACTION = 32;

export function compactionThreshold(framesUsed: number): number {
  return Math.max(COMPACT_MIN_FRAMES, Math.ceil(framesUsed / COMPACT_FRACTION));
}

/**
 * Scan resistance for ephemeral pages (the store's `scanResistant` option): a loop over more data
 * than page cache + store (the refault workload with a small store) is LRU's worst case, as every
 * put evicts the page that will be read next and nothing is ever hit. Two insertion policies for a
 * put that finds the store full, after DIP (Qureshi et al., "Adaptive insertion policies for high
 * performance caching", ISCA 2007), for a store whose private gets are exclusive (a hit takes the
 * page out, so there is no promotion on hit):
 *
 *  - LRU: evict the least recently used page, as the store does without this option;
 *  - BIP (bimodal): refuse the put, except one in BIP_ADMIT_EVERY, which evicts as LRU does. The
 *    store keeps what it holds (and serves it to the loop every round) and still turns over
 *    slowly when the working set moves.
 *
 * Which one: DIP's leader sets cannot be had in one fully associative list (pages of both leader
 * groups share the LRU order, so both miss alike in a loop), so two shadow caches of keys only
 * (no data) replay the puts and gets of a sample of 1/DUEL_GROUPS of the keys, at 1/DUEL_GROUPS of
 * the store's capacity in pages, one with each policy; a saturating counter moves towards the one
 * whose get hit where the other's missed, and the store follows it. Flushes are not replayed (a
 * flushed key the shadows still hold costs them at most a wrong hit, and ages out).
 */
export const DUEL_GROUPS = 32;
export const BIP_ADMIT_EVERY = 32;
/** The counter saturates at 0 and PSEL_MAX; above the middle the store uses BIP. */
export const PSEL_MAX = 1023;

/** Whether a key is in the sample the shadow caches replay. */
export function sampled(keyHash: number): boolean {
  return (keyHash >>> 0) % DUEL_GROUPS === 0;
}

/**
 * A 32-bit hash of a page's place in its pool: object (lo, hi) and index (not the pool: clients of
 * a shared pool number it differently, and the same page should be sampled for all or none).
 */
export function pageKeyHash(lo: number, hi: number, index: number): number {
  let h = Math.imul(lo ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ hi ^ (h >>> 13), 0x85ebca6b);
  h = Math.imul(h ^ index ^ (h >>> 16), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Keys only, in LRU order (a Map keeps insertion order: the first key is the least recent). */
export class ShadowCache {
  private readonly keys = new Map<number, true>();
  private admits = 0;

  constructor(readonly bimodal: boolean) {}

  get size(): number {
    return this.keys.size;
  }

  put(key: number, capacity: number): void {
    if (this.keys.delete(key)) {
      this.keys.set(key, true);
      return;
    }
    if (this.keys.size >= capacity) {
      if (this.bimodal && ++this.admits < BIP_ADMIT_EVERY) return; // refused
      this.admits = 0;
      for (const k of this.keys.keys()) {
        if (this.keys.size < capacity) break;
        this.keys.delete(k);
      }
    }
    this.keys.set(key, true);
  }

  /** A get: whether it hits; an exclusive hit takes the key out, a shared one makes it the most recent. */
  get(key: number, exclusive: boolean): boolean {
    if (!this.keys.delete(key)) return false;
    if (!exclusive) this.keys.set(key, true);
    return true;
  }
}

export class ScanResistance {
  readonly lru = new ShadowCache(false);
  readonly bip = new ShadowCache(true);
  /** Starts in the middle, on the LRU side (the store's behaviour without this option). */
  private psel = PSEL_MAX >> 1;
  private admits = 0;
  /** Puts the store refused under BIP (it counts them as refused puts too). */
  refusals = 0;

  /** Whether the store uses BIP now. */
  get bimodal(): boolean {
    return this.psel > PSEL_MAX >> 1;
  }

  /** An ephemeral put of the page `keyHash` to a store holding `capacityPages` pages when full. */
  put(keyHash: number, capacityPages: number): void {
    if (!sampled(keyHash)) return;
    const cap = Math.max(1, Math.floor(capacityPages / DUEL_GROUPS));
    this.lru.put(keyHash, cap);
    this.bip.put(keyHash, cap);
  }

  /** An ephemeral get of the page `keyHash` (exclusive: a private pool's). */
  get(keyHash: number, exclusive: boolean): void {
    if (!sampled(keyHash)) return;
    const l = this.lru.get(keyHash, exclusive);
    const b = this.bip.get(keyHash, exclusive);
    if (b && !l) this.psel = Math.min(PSEL_MAX, this.psel + 1);
    else if (l && !b) this.psel = Math.max(0, this.psel - 1);
  }

  /** A put found the store full: true to evict (LRU), false to refuse it (BIP, all but one in BIP_ADMIT_EVERY). */
  admit(): boolean {
    if (!this.bimodal) return true;
    if (++this.admits >= BIP_ADMIT_EVERY) {
      this.admits = 0;
      return true;
    }
    this.refusals++;
    return false;
  }
}
