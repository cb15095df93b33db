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
