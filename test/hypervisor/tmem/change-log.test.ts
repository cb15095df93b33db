/**
 * The live-migration change log (change-log.ts): which handles, objects and pool changes a guest's
 * ops during the pre-copy leave behind; results unchanged; detached cleanly. And the sender's
 * replay: pre-copied pages + the log give exactly the client's persistent pages at the pause.
 */
import { describe, expect, it } from "vitest";
import { TMEM_HIT, TMEM_POOL_PERSIST } from "../../../hypervisor/tmem/abi.ts";
import { ClientChangeLog, handleKey, parseHandleKey } from "../../../hypervisor/tmem/change-log.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";
import { TestGuest, objectWords } from "./test-guest.ts";

function guest() {
  const store = new TmemStore({ budgetMib: 2 });
  const g = new TestGuest(store, "g");
  g.probe();
  return { store, g };
}

describe("ClientChangeLog", () => {
  it("logs puts, page flushes, object flushes and pool changes; results are the handler's", () => {
    const { g } = guest();
    const pool = g.newPool(TMEM_POOL_PERSIST);
    g.fillDistinct(1, 1);
    const log = new ClientChangeLog(g.handler);
    expect(g.put(pool, 5n, 3, 1)).toBe(TMEM_HIT);
    expect(g.flushPage(pool, 6n, 4)).toBe(0);
    g.flushObject(pool, 7n);
    const [lo, hi] = objectWords(5n);
    expect([...log.handles]).toEqual([handleKey(pool, lo, hi, 3), handleKey(pool, 6, 0, 4)]);
    expect([...log.objects]).toEqual([`${pool}:7:0`]);
    expect(log.inFlushedObject(handleKey(pool, 7, 0, 99))).toBe(true);
    expect(log.poolsChanged).toBe(false);
    g.newPool(0);
    expect(log.poolsChanged).toBe(true);
    log.dispose();
    g.put(pool, 9n, 9, 1);
    expect(log.handles.has(handleKey(pool, 9, 0, 9))).toBe(false); // detached
  });

  it("handle keys round-trip u32 words", () => {
    expect(parseHandleKey(handleKey(3, 0xffffffff, 0x80000000, 0xfffffffe))).toEqual({ pool: 3, lo: 0xffffffff, hi: 0x80000000, index: 0xfffffffe });
  });

  it("pre-copy + log replay = the persistent pages at the pause (what cli/migrate.ts sends)", () => {
    const { store, g } = guest();
    const pool = g.newPool(TMEM_POOL_PERSIST);
    for (let i = 0; i < 40; i++) {
      g.fillDistinct(1, i);
      g.put(pool, BigInt(i % 4), i, 1);
    }
    const log = new ClientChangeLog(g.handler);
    // Pre-copy: the pages as they are now.
    const copy = new Map<string, Uint8Array>();
    store.forEachPersistentPage(g.clientId, (p, lo, hi, index, page) => copy.set(handleKey(p, lo, hi, index), page.slice()));
    // The guest goes on: changes, flushes, an object flush, new pages.
    g.fillDistinct(1, 1000);
    g.put(pool, 0n, 0, 1);
    g.flushPage(pool, 1n, 1);
    g.flushObject(pool, 2n);
    g.fillDistinct(1, 2000);
    g.put(pool, 2n, 2, 1); // re-put into the flushed object
    g.put(pool, 9n, 100, 1);
    log.dispose();
    // The pause: replay as the receiver does.
    for (const key of copy.keys()) if (log.inFlushedObject(key)) copy.delete(key);
    for (const key of log.handles) {
      const { pool: p, lo, hi, index } = parseHandleKey(key);
      const page = store.peekPersistentPage(g.clientId, p, lo, hi, index);
      if (page === undefined) copy.delete(key);
      else copy.set(key, page.slice());
    }
    const truth = new Map<string, Uint8Array>();
    store.forEachPersistentPage(g.clientId, (p, lo, hi, index, page) => truth.set(handleKey(p, lo, hi, index), page.slice()));
    expect(new Set(copy.keys())).toEqual(new Set(truth.keys()));
    for (const [k, v] of truth) expect(copy.get(k)).toEqual(v);
  });
});
