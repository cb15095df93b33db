/**
 * The tmem store's semantics (DESIGN.md "tmem semantics"), exercised the way a guest does: through
 * the hypercall handler with guest memory. Each test names the rule it checks.
 */

import { afterEach, describe, expect, it } from "vitest";
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
} from "../../../hypervisor/tmem/abi.ts";
import { FRAMES_PER_MIB, TmemStore } from "../../../hypervisor/tmem/store.ts";
import { TmemuError } from "../../../hypervisor/user-errors.ts";
import type { CreateClientOptions } from "../../../hypervisor/tmem/store.ts";
import { TestGuest } from "./test-guest.ts";

const EPHEMERAL = 0;
const PERSISTENT = TMEM_POOL_PERSIST;
const SHARED = TMEM_POOL_SHARED;
const UUID_A = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
const UUID_B = "11111111-2222-3333-4444-555555555555";
/** Frames used as sources and destinations in guest memory (below the hole). */
const SRC = 16;
const DST = 64;

let stores: TmemStore[] = [];

function newStore(budgetFrames: number, maxPages?: number): TmemStore {
  const store = new TmemStore(maxPages === undefined ? { budgetFrames } : { budgetFrames, maxPages });
  stores.push(store);
  return store;
}

function guest(store: TmemStore, name: string, client: CreateClientOptions = {}): TestGuest {
  const g = new TestGuest(store, name, { client });
  expect(g.probe()).toBe(0x4d454d54);
  return g;
}

/** Puts a distinct page (from seed) at (pool, obj, index); returns its bytes. */
function putDistinct(g: TestGuest, pool: number, obj: bigint, index: number, seed: number): Uint8Array {
  const bytes = g.fillDistinct(SRC, seed);
  expect(g.put(pool, obj, index, SRC)).toBe(TMEM_HIT);
  return bytes;
}

/** Gets (pool, obj, index) into DST; returns [result, bytes of DST after]. */
function getInto(g: TestGuest, pool: number, obj: bigint, index: number): [number, Uint8Array] {
  g.page(DST).fill(0xee);
  const r = g.get(pool, obj, index, DST);
  return [r, g.pageCopy(DST)];
}

afterEach(() => {
  // Every test leaves the store's accounting balanced.
  for (const store of stores) store.checkInvariants();
  stores = [];
});

describe("private ephemeral pool", () => {
  it("returns the page on get and the page leaves the store (exclusive get)", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    const data = putDistinct(g, pool, 1n, 0, 1);
    expect(store.metrics().framesUsed).toBe(1);
    const [r, got] = getInto(g, pool, 1n, 0);
    expect(r).toBe(TMEM_HIT);
    expect(got).toEqual(data);
    expect(store.metrics().framesUsed).toBe(0);
    expect(getInto(g, pool, 1n, 0)[0]).toBe(TMEM_MISS);
  });

  it("answers a miss without touching the guest frame", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    const [r, after] = getInto(g, pool, 5n, 5);
    expect(r).toBe(TMEM_MISS);
    expect(after.every((b) => b === 0xee)).toBe(true);
  });

  it("keeps pages of different objects and indexes apart", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    const a = putDistinct(g, pool, 1n, 0, 10);
    const b = putDistinct(g, pool, 1n, 1, 11);
    const c = putDistinct(g, pool, 2n, 0, 12);
    expect(getInto(g, pool, 2n, 0)).toEqual([TMEM_HIT, c]);
    expect(getInto(g, pool, 1n, 1)).toEqual([TMEM_HIT, b]);
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, a]);
  });

  it("tells full 64-bit object ids apart, around 2^53 and at the top of the range", () => {
    const store = newStore(16);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    const ids = [2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 64n - 2n, 0xffffffff00000000n, 0xffffffffn];
    const data = ids.map((id, i) => putDistinct(g, pool, id, 7, 100 + i));
    ids.forEach((id, i) => expect(getInto(g, pool, id, 7)).toEqual([TMEM_HIT, data[i]]));
  });
});

describe("put", () => {
  it("to an existing handle replaces the data and keeps one page", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    putDistinct(g, pool, 1n, 0, 1);
    const newer = putDistinct(g, pool, 1n, 0, 2);
    expect(store.metrics().pages).toBe(1);
    expect(store.metrics().framesUsed).toBe(1);
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, newer]);
  });

  it("replacing a page with a same-filled one frees its frame, and back takes one", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    putDistinct(g, pool, 1n, 0, 1);
    const zero = g.fillWord(SRC, 0);
    expect(g.put(pool, 1n, 0, SRC)).toBe(TMEM_HIT);
    expect(store.metrics()).toMatchObject({ pages: 1, framesUsed: 0, sameFilledPages: 1 });
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, zero]);
    const data = putDistinct(g, pool, 1n, 0, 3);
    expect(store.metrics()).toMatchObject({ pages: 1, framesUsed: 1, sameFilledPages: 0 });
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, data]);
  });

  it("to an existing frame-backed handle succeeds even when the store is full of persistent pages", () => {
    const store = newStore(2);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    putDistinct(g, pool, 1n, 0, 1);
    putDistinct(g, pool, 1n, 1, 2);
    const newer = putDistinct(g, pool, 1n, 0, 3);
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, newer]);
  });

  it("that is refused flushes the old data at that handle (never stale data)", () => {
    const store = newStore(1);
    const g = guest(store, "g");
    const pers = g.newPool(PERSISTENT);
    const eph = g.newPool(EPHEMERAL);
    g.fillWord(SRC, 0x01010101);
    expect(g.put(eph, 9n, 9, SRC)).toBe(TMEM_HIT); // same-filled: no frame
    putDistinct(g, pers, 1n, 0, 1); // the only frame, never evictable
    g.fillDistinct(SRC, 2);
    expect(g.put(eph, 9n, 9, SRC)).toBe(TMEM_ENOSPC);
    expect(getInto(g, eph, 9n, 9)[0]).toBe(TMEM_MISS);
    expect(store.clientMetrics(g.clientId).putsRefused).toBe(1);
  });

  it("names no reserved object or index: TMEM_EINVAL for every op that takes a handle", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    const reserved = 0xffffffffffffffffn;
    g.fillDistinct(SRC, 1);
    expect(g.put(pool, reserved, 0, SRC)).toBe(TMEM_EINVAL);
    expect(g.get(pool, reserved, 0, DST)).toBe(TMEM_EINVAL);
    expect(g.flushPage(pool, reserved, 0)).toBe(TMEM_EINVAL);
    expect(g.flushObject(pool, reserved)).toBe(TMEM_EINVAL);
    expect(g.put(pool, 1n, 0xffffffff, SRC)).toBe(TMEM_EINVAL);
    expect(g.get(pool, 1n, 0xffffffff, DST)).toBe(TMEM_EINVAL);
    expect(g.flushPage(pool, 1n, 0xffffffff)).toBe(TMEM_EINVAL);
    // One all-ones word alone is an ordinary id; 0xfffffffe is an ordinary index.
    expect(g.put(pool, 0xffffffffn, 0xfffffffe, SRC)).toBe(TMEM_HIT);
    expect(g.put(pool, 0xffffffff00000000n, 0, SRC)).toBe(TMEM_HIT);
    expect(store.metrics().pages).toBe(2);
    expect(store.clientMetrics(g.clientId).errors.EINVAL).toBe(7);
  });
});

describe("same-filled pages", () => {
  it("are stored without a frame and come back byte for byte (zero and a repeated word)", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    const zero = g.fillWord(SRC, 0);
    expect(g.put(pool, 1n, 0, SRC)).toBe(TMEM_HIT);
    const word = g.fillWord(SRC, 0xdeadbeef);
    expect(g.put(pool, 1n, 1, SRC)).toBe(TMEM_HIT);
    expect(store.metrics()).toMatchObject({ pages: 2, framesUsed: 0, sameFilledPages: 2 });
    expect(store.clientMetrics(g.clientId)).toMatchObject({ sameFilledPages: 2, framesInUse: 0 });
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, zero]);
    expect(getInto(g, pool, 1n, 1)).toEqual([TMEM_HIT, word]);
  });

  it("differing in one byte is not same-filled and takes a frame", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    g.fillWord(SRC, 0);
    g.page(SRC)[4095] = 1;
    const data = g.pageCopy(SRC);
    expect(g.put(pool, 1n, 0, SRC)).toBe(TMEM_HIT);
    expect(store.metrics()).toMatchObject({ framesUsed: 1, sameFilledPages: 0 });
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, data]);
  });

  it("are accepted by a store with no frames at all, which refuses every other page", () => {
    const store = newStore(0);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    g.fillWord(SRC, 0);
    expect(g.put(pool, 1n, 0, SRC)).toBe(TMEM_HIT);
    g.fillDistinct(SRC, 1);
    expect(g.put(pool, 1n, 1, SRC)).toBe(TMEM_ENOSPC);
  });

  it("do not evict anything when the store is full", () => {
    const store = newStore(2);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    const a = putDistinct(g, pool, 1n, 0, 1);
    const b = putDistinct(g, pool, 1n, 1, 2);
    g.fillWord(SRC, 0);
    expect(g.put(pool, 1n, 2, SRC)).toBe(TMEM_HIT);
    expect(store.metrics().evictions).toBe(0);
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, a]);
    expect(getInto(g, pool, 1n, 1)).toEqual([TMEM_HIT, b]);
  });

  it("are capped by maxPages: at the cap an ephemeral same-filled page is evicted first", () => {
    const store = newStore(2, 3);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    putDistinct(g, pool, 1n, 0, 1);
    g.fillWord(SRC, 0);
    expect(g.put(pool, 2n, 0, SRC)).toBe(TMEM_HIT);
    expect(g.put(pool, 2n, 1, SRC)).toBe(TMEM_HIT);
    expect(g.put(pool, 2n, 2, SRC)).toBe(TMEM_HIT); // at the cap: evicts (2, 0), the LRU same-filled page
    expect(store.metrics()).toMatchObject({ pages: 3, evictions: 1 });
    expect(g.get(pool, 2n, 0, DST)).toBe(TMEM_MISS);
    expect(g.get(pool, 1n, 0, DST)).toBe(TMEM_HIT);
  });

  it("in a persistent pool at the page cap are refused with TMEM_ENOSPC", () => {
    const store = newStore(1, 2);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    g.fillWord(SRC, 0);
    expect(g.put(pool, 1n, 0, SRC)).toBe(TMEM_HIT);
    expect(g.put(pool, 1n, 1, SRC)).toBe(TMEM_HIT);
    expect(g.put(pool, 1n, 2, SRC)).toBe(TMEM_ENOSPC);
    expect(store.metrics().pages).toBe(2);
  });
});

describe("shared ephemeral pool", () => {
  it("is refused to a client the host has not authorised for the uuid (TMEM_EPERM)", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    expect(a.newPool(SHARED, UUID_A)).toBe(TMEM_EPERM);
    store.authorizeShared(a.clientId, UUID_B);
    expect(a.newPool(SHARED, UUID_A)).toBe(TMEM_EPERM);
    expect(store.clientMetrics(a.clientId).errors.EPERM).toBe(2);
  });

  it("is found by uuid: members share pages, each with its own local pool id", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    const b = guest(store, "b");
    store.authorizeShared(a.clientId, UUID_A);
    store.authorizeShared(b.clientId, UUID_A);
    b.newPool(EPHEMERAL); // b's local id 0 is taken
    const pa = a.newPool(SHARED, UUID_A);
    const pb = b.newPool(SHARED, UUID_A);
    expect(pa).toBe(0);
    expect(pb).toBe(1);
    const data = putDistinct(a, pa, 3n, 3, 1);
    expect(getInto(b, pb, 3n, 3)).toEqual([TMEM_HIT, data]);
    expect(store.poolMetrics(a.clientId, pa).members).toEqual([a.clientId, b.clientId]);
  });

  it("keeps the page on get, for every member, every time", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    const b = guest(store, "b");
    store.authorizeShared(a.clientId, UUID_A);
    store.authorizeShared(b.clientId, UUID_A);
    const pa = a.newPool(SHARED, UUID_A);
    const pb = b.newPool(SHARED, UUID_A);
    const data = putDistinct(a, pa, 1n, 0, 1);
    for (let i = 0; i < 3; i++) {
      expect(getInto(a, pa, 1n, 0)).toEqual([TMEM_HIT, data]);
      expect(getInto(b, pb, 1n, 0)).toEqual([TMEM_HIT, data]);
    }
    expect(store.metrics().pages).toBe(1);
  });

  it("refreshes the LRU position of a page on get", () => {
    const store = newStore(2);
    const a = guest(store, "a");
    store.authorizeShared(a.clientId, UUID_A);
    const pool = a.newPool(SHARED, UUID_A);
    const first = putDistinct(a, pool, 1n, 0, 1);
    putDistinct(a, pool, 1n, 1, 2);
    expect(a.get(pool, 1n, 0, DST)).toBe(TMEM_HIT); // (1,0) becomes most recently used
    putDistinct(a, pool, 1n, 2, 3); // evicts the LRU page: (1,1)
    expect(a.get(pool, 1n, 1, DST)).toBe(TMEM_MISS);
    expect(getInto(a, pool, 1n, 0)).toEqual([TMEM_HIT, first]);
  });

  it("joined twice by the same client gives the same local id", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    store.authorizeShared(a.clientId, UUID_A);
    const p = a.newPool(SHARED, UUID_A);
    expect(a.newPool(SHARED, UUID_A)).toBe(p);
    expect(store.clientMetrics(a.clientId).pools).toHaveLength(1);
  });

  it("that is also persistent is refused with TMEM_EINVAL, as in Xen", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    store.authorizeShared(a.clientId, UUID_A);
    expect(a.newPool(SHARED | PERSISTENT, UUID_A)).toBe(TMEM_EINVAL);
  });

  it("lives while any member holds it, and its pages go with the last one", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    const b = guest(store, "b");
    store.authorizeShared(a.clientId, UUID_A);
    store.authorizeShared(b.clientId, UUID_A);
    const pa = a.newPool(SHARED, UUID_A);
    const pb = b.newPool(SHARED, UUID_A);
    const data = putDistinct(a, pa, 1n, 0, 1);
    expect(a.destroyPool(pa)).toBe(0);
    expect(a.get(pa, 1n, 0, DST)).toBe(TMEM_ENOENT);
    expect(getInto(b, pb, 1n, 0)).toEqual([TMEM_HIT, data]);
    expect(b.destroyPool(pb)).toBe(0);
    expect(store.metrics()).toMatchObject({ pages: 0, framesUsed: 0 });
    // A new pool under the same uuid starts empty.
    const again = a.newPool(SHARED, UUID_A);
    expect(a.get(again, 1n, 0, DST)).toBe(TMEM_MISS);
  });

  it("charges its pages to its owner, and to the next member when the owner leaves", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    const b = guest(store, "b");
    store.authorizeShared(a.clientId, UUID_A);
    store.authorizeShared(b.clientId, UUID_A);
    const pa = a.newPool(SHARED, UUID_A);
    const pb = b.newPool(SHARED, UUID_A);
    putDistinct(b, pb, 1n, 0, 1);
    putDistinct(b, pb, 1n, 1, 2);
    expect(store.clientMetrics(a.clientId)).toMatchObject({ pagesEphemeral: 2, framesInUse: 2 });
    expect(store.clientMetrics(b.clientId)).toMatchObject({ pagesEphemeral: 0, framesInUse: 0 });
    store.destroyClient(a.clientId);
    expect(store.poolMetrics(b.clientId, pb)).toMatchObject({ owner: b.clientId, pages: 2 });
    expect(store.clientMetrics(b.clientId)).toMatchObject({ pagesEphemeral: 2, framesInUse: 2 });
    expect(pa).toBe(0);
  });

  it("stays held after the host revokes the authorisation, but cannot be joined again", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    store.authorizeShared(a.clientId, UUID_A);
    const p = a.newPool(SHARED, UUID_A);
    store.revokeShared(a.clientId, UUID_A);
    putDistinct(a, p, 1n, 0, 1);
    expect(a.destroyPool(p)).toBe(0);
    expect(a.newPool(SHARED, UUID_A)).toBe(TMEM_EPERM);
  });
});

describe("persistent pool", () => {
  it("keeps the page on get", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    const data = putDistinct(g, pool, 1n, 0, 1);
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, data]);
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, data]);
  });

  it("pages are never evicted: a full store refuses new puts, persistent or ephemeral", () => {
    const store = newStore(3);
    const g = guest(store, "g");
    const other = guest(store, "other");
    const pers = g.newPool(PERSISTENT);
    const eph = other.newPool(EPHEMERAL);
    const data = [0, 1, 2].map((i) => putDistinct(g, pers, 1n, i, i));
    g.fillDistinct(SRC, 9);
    expect(g.put(pers, 1n, 3, SRC)).toBe(TMEM_ENOSPC);
    other.fillDistinct(SRC, 9);
    expect(other.put(eph, 1n, 0, SRC)).toBe(TMEM_ENOSPC);
    expect(store.metrics().evictions).toBe(0);
    data.forEach((d, i) => expect(getInto(g, pers, 1n, i)).toEqual([TMEM_HIT, d]));
  });

  it("puts evict ephemeral pages to make room", () => {
    const store = newStore(2);
    const g = guest(store, "g");
    const eph = g.newPool(EPHEMERAL);
    const pers = g.newPool(PERSISTENT);
    putDistinct(g, eph, 1n, 0, 1);
    putDistinct(g, eph, 1n, 1, 2);
    putDistinct(g, pers, 1n, 0, 3);
    expect(store.metrics()).toMatchObject({ evictions: 1, pagesPersistent: 1, pagesEphemeral: 1 });
    expect(g.get(eph, 1n, 0, DST)).toBe(TMEM_MISS);
  });

  it("puts beyond the client's allowance are refused with TMEM_ENOSPC; replacing is not", () => {
    const store = newStore(16);
    const g = guest(store, "g", { persistentAllowancePages: 2 });
    const pool = g.newPool(PERSISTENT);
    putDistinct(g, pool, 1n, 0, 1);
    g.fillWord(SRC, 0);
    expect(g.put(pool, 1n, 1, SRC)).toBe(TMEM_HIT); // same-filled pages count too
    g.fillDistinct(SRC, 3);
    expect(g.put(pool, 1n, 2, SRC)).toBe(TMEM_ENOSPC);
    const replaced = putDistinct(g, pool, 1n, 1, 4);
    expect(getInto(g, pool, 1n, 1)).toEqual([TMEM_HIT, replaced]);
    expect(g.flushPage(pool, 1n, 0)).toBe(1);
    putDistinct(g, pool, 1n, 2, 5);
    expect(store.clientMetrics(g.clientId)).toMatchObject({ pagesPersistent: 2, persistentAllowancePages: 2 });
  });

  it("allowance applies to persistent pages only, and can be changed or lifted by the host", () => {
    const store = newStore(16);
    const g = guest(store, "g", { persistentAllowancePages: 0 });
    const pers = g.newPool(PERSISTENT);
    const eph = g.newPool(EPHEMERAL);
    g.fillDistinct(SRC, 1);
    expect(g.put(pers, 1n, 0, SRC)).toBe(TMEM_ENOSPC);
    expect(g.put(eph, 1n, 0, SRC)).toBe(TMEM_HIT);
    store.setPersistentAllowance(g.clientId, 1);
    expect(g.put(pers, 1n, 0, SRC)).toBe(TMEM_HIT);
    expect(g.put(pers, 1n, 1, SRC)).toBe(TMEM_ENOSPC);
    store.setPersistentAllowance(g.clientId, undefined);
    expect(g.put(pers, 1n, 1, SRC)).toBe(TMEM_HIT);
    expect(store.clientMetrics(g.clientId).persistentAllowancePages).toBeNull();
  });
});

describe("eviction", () => {
  /** Two clients a, b each with a private ephemeral pool, budget 8 frames. */
  function twoClients(weightA: number, weightB: number) {
    const store = newStore(8);
    const a = guest(store, "a", { weight: weightA });
    const b = guest(store, "b", { weight: weightB });
    return { store, a, b, pa: a.newPool(EPHEMERAL), pb: b.newPool(EPHEMERAL) };
  }

  it("takes the globally least recently used page when no client is over its share", () => {
    const { store, a, b, pa, pb } = twoClients(1, 1);
    for (let i = 0; i < 4; i++) putDistinct(a, pa, 1n, i, i);
    for (let i = 0; i < 4; i++) putDistinct(b, pb, 1n, i, 10 + i);
    putDistinct(b, pb, 1n, 4, 20); // b at 4 of its share of 4: not over -> global LRU: a's (1,0)
    expect(a.get(pa, 1n, 0, DST)).toBe(TMEM_MISS);
    expect(store.clientMetrics(a.clientId).evictions).toBe(1);
    expect(store.metrics().evictions).toBe(1);
  });

  it("takes the putting client's own LRU page first when it is over its weighted share", () => {
    const { store, a, b, pa, pb } = twoClients(1, 1);
    putDistinct(b, pb, 1n, 0, 100); // b's pages are the globally oldest
    putDistinct(b, pb, 1n, 1, 101);
    for (let i = 0; i < 6; i++) putDistinct(a, pa, 1n, i, i); // a: 6 frames > share 4
    putDistinct(a, pa, 1n, 6, 6); // a over share: evicts a's own LRU (1,0), not b's older page
    expect(a.get(pa, 1n, 0, DST)).toBe(TMEM_MISS);
    expect(b.get(pb, 1n, 0, DST)).toBe(TMEM_HIT);
    expect(store.clientMetrics(a.clientId).evictions).toBe(1);
    expect(store.clientMetrics(b.clientId).evictions).toBe(0);
  });

  it("takes the global LRU page when the putter is within its share, even its own", () => {
    const { a, b, pa, pb } = twoClients(1, 1);
    putDistinct(b, pb, 1n, 0, 100);
    putDistinct(b, pb, 1n, 1, 101);
    for (let i = 0; i < 6; i++) putDistinct(a, pa, 1n, i, i);
    putDistinct(b, pb, 1n, 2, 102); // b (2 frames) within share: global LRU is b's own (1,0)
    expect(b.get(pb, 1n, 0, DST)).toBe(TMEM_MISS);
    expect(a.get(pa, 1n, 0, DST)).toBe(TMEM_HIT);
  });

  it("uses the weights: with weight 3 against 1, six of eight frames are within share", () => {
    const { a, b, pa, pb } = twoClients(3, 1);
    putDistinct(b, pb, 1n, 0, 100);
    putDistinct(b, pb, 1n, 1, 101);
    for (let i = 0; i < 6; i++) putDistinct(a, pa, 1n, i, i); // a: 6 frames == share 6: not over
    putDistinct(a, pa, 1n, 6, 6); // global LRU: b's (1,0)
    expect(b.get(pb, 1n, 0, DST)).toBe(TMEM_MISS);
    expect(a.get(pa, 1n, 0, DST)).toBe(TMEM_HIT);
  });

  it("follows weight changes made by the host", () => {
    const { store, a, b, pa, pb } = twoClients(3, 1);
    putDistinct(b, pb, 1n, 0, 100);
    putDistinct(b, pb, 1n, 1, 101);
    for (let i = 0; i < 6; i++) putDistinct(a, pa, 1n, i, i);
    store.setWeight(a.clientId, 1); // share 4 now: a is over
    putDistinct(a, pa, 1n, 6, 6);
    expect(a.get(pa, 1n, 0, DST)).toBe(TMEM_MISS);
    expect(b.get(pb, 1n, 0, DST)).toBe(TMEM_HIT);
  });

  it("counts a client of weight 0 over its share as soon as it holds a frame", () => {
    const { a, b, pa, pb } = twoClients(0, 1);
    putDistinct(a, pa, 1n, 0, 0); // a's page is the globally oldest
    for (let i = 0; i < 7; i++) putDistinct(b, pb, 1n, i, 100 + i);
    putDistinct(b, pb, 1n, 7, 107); // b: 7 frames, W = 1, share 8: not over -> global LRU: a's page
    expect(a.get(pa, 1n, 0, DST)).toBe(TMEM_MISS);
    putDistinct(a, pa, 1n, 1, 1); // a: 0 frames, not over -> global LRU: b's (1,0)
    putDistinct(a, pa, 1n, 2, 2); // a: 1 frame, weight 0 -> over: evicts its own (1,1)
    expect(a.get(pa, 1n, 1, DST)).toBe(TMEM_MISS);
    expect(b.get(pb, 1n, 1, DST)).toBe(TMEM_HIT);
  });
});

describe("frozen client", () => {
  it("has its puts refused with TMEM_EBUSY and the old data at the handle flushed", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    putDistinct(g, pool, 1n, 0, 1);
    store.freeze(g.clientId);
    g.fillDistinct(SRC, 2);
    expect(g.put(pool, 1n, 0, SRC)).toBe(TMEM_EBUSY);
    expect(g.put(pool, 1n, 1, SRC)).toBe(TMEM_EBUSY);
    expect(g.get(pool, 1n, 0, DST)).toBe(TMEM_MISS);
    expect(store.clientMetrics(g.clientId)).toMatchObject({ frozen: true, putsRefused: 2 });
    expect(store.clientMetrics(g.clientId).errors.EBUSY).toBe(2);
  });

  it("still gets and flushes, and puts again once thawed", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    const a = putDistinct(g, pool, 1n, 0, 1);
    putDistinct(g, pool, 1n, 1, 2);
    putDistinct(g, pool, 2n, 0, 3);
    store.freeze(g.clientId);
    expect(getInto(g, pool, 1n, 0)).toEqual([TMEM_HIT, a]);
    expect(g.flushPage(pool, 1n, 1)).toBe(1);
    expect(g.flushObject(pool, 2n)).toBe(1);
    store.thaw(g.clientId);
    putDistinct(g, pool, 1n, 1, 4);
  });

  it("does not stop the other members of a shared pool", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    const b = guest(store, "b");
    store.authorizeShared(a.clientId, UUID_A);
    store.authorizeShared(b.clientId, UUID_A);
    const pa = a.newPool(SHARED, UUID_A);
    const pb = b.newPool(SHARED, UUID_A);
    store.freeze(a.clientId);
    const data = putDistinct(b, pb, 1n, 0, 1);
    expect(getInto(a, pa, 1n, 0)).toEqual([TMEM_HIT, data]);
  });
});

describe("pools", () => {
  it(`give a client ${TMEM_MAX_POOLS} local ids, lowest free first, then TMEM_EMFILE`, () => {
    const store = newStore(8);
    const g = guest(store, "g");
    for (let i = 0; i < TMEM_MAX_POOLS; i++) expect(g.newPool(i % 2 === 0 ? EPHEMERAL : PERSISTENT)).toBe(i);
    expect(g.newPool(EPHEMERAL)).toBe(TMEM_EMFILE);
    store.authorizeShared(g.clientId, UUID_A);
    expect(g.newPool(SHARED, UUID_A)).toBe(TMEM_EMFILE);
    expect(g.destroyPool(5)).toBe(0);
    expect(g.destroyPool(2)).toBe(0);
    expect(g.newPool(EPHEMERAL)).toBe(2);
    expect(g.newPool(EPHEMERAL)).toBe(5);
  });

  it("are per client: another client's pool id is TMEM_ENOENT", () => {
    const store = newStore(8);
    const a = guest(store, "a");
    const b = guest(store, "b");
    const pa = a.newPool(EPHEMERAL);
    putDistinct(a, pa, 1n, 0, 1);
    expect(b.get(pa, 1n, 0, DST)).toBe(TMEM_ENOENT);
    expect(b.flushObject(pa, 1n)).toBe(TMEM_ENOENT);
    expect(b.destroyPool(pa)).toBe(TMEM_ENOENT);
    expect(store.metrics().pages).toBe(1);
  });

  it("destroyed free their frames at once and answer TMEM_ENOENT after", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    for (let i = 0; i < 5; i++) putDistinct(g, pool, BigInt(i % 2), i, i);
    expect(store.metrics().framesUsed).toBe(5);
    expect(g.destroyPool(pool)).toBe(0);
    expect(store.metrics()).toMatchObject({ framesUsed: 0, pages: 0 });
    expect(g.get(pool, 0n, 0, DST)).toBe(TMEM_ENOENT);
    expect(g.destroyPool(pool)).toBe(TMEM_ENOENT);
  });

  it("ids out of range are TMEM_ENOENT", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    g.newPool(EPHEMERAL);
    for (const pool of [TMEM_MAX_POOLS, 17, 255]) {
      expect(g.flushPage(pool, 1n, 0)).toBe(TMEM_ENOENT);
      expect(g.destroyPool(pool)).toBe(TMEM_ENOENT);
    }
  });

  it("flags other than PERSIST and SHARED are TMEM_EINVAL", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    for (const flags of [0x4, 0x8, 0x100, 0x8000, 0xffff]) expect(g.newPool(flags)).toBe(TMEM_EINVAL);
    expect(store.clientMetrics(g.clientId).pools).toHaveLength(0);
  });
});

describe("flush", () => {
  it("of a page answers 1 when it removed one and 0 when there was none", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    putDistinct(g, pool, 1n, 0, 1);
    expect(g.flushPage(pool, 1n, 0)).toBe(1);
    expect(g.flushPage(pool, 1n, 0)).toBe(0);
    expect(g.get(pool, 1n, 0, DST)).toBe(TMEM_MISS);
  });

  it("of an object removes all its pages, answers their number, and leaves other objects", () => {
    const store = newStore(16);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    for (let i = 0; i < 5; i++) putDistinct(g, pool, 7n, i * 1000, i);
    g.fillWord(SRC, 0);
    expect(g.put(pool, 7n, 99, SRC)).toBe(TMEM_HIT);
    const kept = putDistinct(g, pool, 8n, 0, 50);
    expect(g.flushObject(pool, 7n)).toBe(6);
    expect(g.flushObject(pool, 7n)).toBe(0);
    expect(store.metrics()).toMatchObject({ pages: 1, framesUsed: 1 });
    expect(getInto(g, pool, 8n, 0)).toEqual([TMEM_HIT, kept]);
    expect(store.clientMetrics(g.clientId).pagesFlushed).toBe(6);
  });
});

describe("clients", () => {
  it("destroyed free every page they own at once, keeping shared pools other members hold", () => {
    const store = newStore(16);
    const a = guest(store, "a");
    const b = guest(store, "b");
    store.authorizeShared(a.clientId, UUID_A);
    store.authorizeShared(b.clientId, UUID_A);
    const eph = a.newPool(EPHEMERAL);
    const pers = a.newPool(PERSISTENT);
    const shared = a.newPool(SHARED, UUID_A);
    const pb = b.newPool(SHARED, UUID_A);
    for (let i = 0; i < 3; i++) {
      putDistinct(a, eph, 1n, i, i);
      putDistinct(a, pers, 1n, i, 10 + i);
    }
    const sharedData = putDistinct(a, shared, 1n, 0, 20);
    store.destroyClient(a.clientId);
    expect(store.metrics()).toMatchObject({ pages: 1, framesUsed: 1 });
    expect(getInto(b, pb, 1n, 0)).toEqual([TMEM_HIT, sharedData]);
    expect(store.listClients()).toEqual([{ id: b.clientId, name: "b" }]);
  });

  it("destroyed answer every guest op with TMEM_ENOENT, never with a throw", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    store.destroyClient(g.clientId);
    g.fillDistinct(SRC, 1);
    expect(g.put(pool, 1n, 0, SRC)).toBe(TMEM_ENOENT);
    expect(g.get(pool, 1n, 0, DST)).toBe(TMEM_ENOENT);
    expect(g.newPool(EPHEMERAL)).toBe(TMEM_ENOENT);
    expect(g.handler.lastInternalError).toBeUndefined();
  });

  it("get fresh ids, never a destroyed client's", () => {
    const store = newStore(8);
    const a = store.createClient("a");
    store.destroyClient(a);
    const b = store.createClient("b");
    expect(b).not.toBe(a);
  });

  it("flushed by the host lose their pages and keep their pools", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const eph = g.newPool(EPHEMERAL);
    const pers = g.newPool(PERSISTENT);
    putDistinct(g, eph, 1n, 0, 1);
    putDistinct(g, pers, 1n, 0, 2);
    g.fillWord(SRC, 0);
    expect(g.put(pers, 1n, 1, SRC)).toBe(TMEM_HIT);
    expect(store.flushClient(g.clientId)).toBe(3);
    expect(store.metrics()).toMatchObject({ pages: 0, framesUsed: 0 });
    expect(g.get(pers, 1n, 0, DST)).toBe(TMEM_MISS);
    putDistinct(g, pers, 1n, 0, 3);
  });

  it("are named by id in host calls; an unknown id or a bad value is a TmemuError BAD_INPUT", () => {
    const store = newStore(8);
    const id = store.createClient("a");
    const calls: (() => unknown)[] = [
      () => store.setWeight(999, 1),
      () => store.freeze(999),
      () => store.clientMetrics(999),
      () => store.destroyClient(999),
      () => store.setWeight(id, -1),
      () => store.setWeight(id, 1.5),
      () => store.setWeight(id, 2_000_000),
      () => store.setPersistentAllowance(id, -1),
      () => store.createClient("x", { weight: Number.NaN }),
      () => store.createClient("x", { persistentAllowancePages: 0.5 }),
      () => store.authorizeShared(id, "not-a-uuid"),
      () => store.poolMetrics(id, 0),
    ];
    for (const call of calls) {
      let caught: unknown;
      try {
        call();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(TmemuError);
      expect((caught as TmemuError).code).toBe("BAD_INPUT");
      expect((caught as TmemuError).hint).toBeTruthy();
    }
  });
});

describe("budget", () => {
  it("is given in MiB or in frames (256 frames per MiB)", () => {
    expect(FRAMES_PER_MIB).toBe(256);
    const store = new TmemStore({ budgetMib: 2 });
    expect(store.metrics()).toMatchObject({ budgetFrames: 512, framesTotal: 512, framesUsed: 0 });
    expect(() => new TmemStore({ budgetMib: -1 })).toThrow(TmemuError);
    expect(() => new TmemStore({ budgetFrames: 8, maxPages: 4 })).toThrow(TmemuError);
  });

  it("shrunk by the host evicts ephemeral pages, LRU first", () => {
    const store = newStore(4);
    const g = guest(store, "g");
    const pool = g.newPool(EPHEMERAL);
    for (let i = 0; i < 4; i++) putDistinct(g, pool, 1n, i, i);
    store.setBudgetFrames(2);
    expect(store.metrics()).toMatchObject({ budgetFrames: 2, framesUsed: 2, evictions: 2 });
    expect(g.get(pool, 1n, 0, DST)).toBe(TMEM_MISS);
    expect(g.get(pool, 1n, 1, DST)).toBe(TMEM_MISS);
    expect(g.get(pool, 1n, 3, DST)).toBe(TMEM_HIT);
    putDistinct(g, pool, 1n, 4, 4);
    putDistinct(g, pool, 1n, 5, 5);
    expect(store.metrics().framesUsed).toBe(2); // the new budget holds
  });

  it("cannot shrink below the frames of persistent pages, nor grow past the slab", () => {
    const store = newStore(4);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    putDistinct(g, pool, 1n, 0, 1);
    putDistinct(g, pool, 1n, 1, 2);
    expect(() => store.setBudgetFrames(1)).toThrow(TmemuError);
    expect(store.budgetFrames).toBe(4);
    expect(() => store.setBudgetFrames(5)).toThrow(TmemuError);
    store.setBudgetFrames(2);
    g.fillDistinct(SRC, 3);
    expect(g.put(pool, 1n, 2, SRC)).toBe(TMEM_ENOSPC);
    store.setBudgetFrames(4);
    expect(g.put(pool, 1n, 2, SRC)).toBe(TMEM_HIT);
  });
});

describe("metrics", () => {
  it("serialise to the documented JSON shape", () => {
    const store = newStore(8);
    const g = guest(store, "g");
    const pool = g.newPool(PERSISTENT);
    putDistinct(g, pool, 1n, 0, 1);
    const json = JSON.parse(JSON.stringify(store)) as Record<string, unknown>;
    expect(Object.keys(json).sort()).toEqual(
      [
        "budgetFrames", "clients", "evictions", "framesTotal", "framesUsed", "maxPages", "pages", "pagesEphemeral", "pagesPersistent", "sameFilledPages",
        // compression, dedup and the allocator (additive)
        "persistentFrames", "compressor", "dedup", "objects", "compressedBytes", "allocatedBytes", "pagesPerFrame", "dedupHits", "dedupCollisions",
        "compressedPuts", "wholePuts", "fragmentationFrames", "compactions", "framesCompacted", "objectsMoved",
      ].sort(),
    );
    // A random page does not compress: kept whole, one frame, one page per frame.
    expect(json).toMatchObject({ compressor: "lz4", dedup: "client", objects: 1, compressedBytes: 4096, allocatedBytes: 4096, pagesPerFrame: 1, wholePuts: 1, compressedPuts: 0 });
    const client = store.clientMetrics(g.clientId);
    expect(client).toMatchObject({
      id: g.clientId,
      name: "g",
      weight: 1,
      frozen: false,
      persistentAllowancePages: null,
      pagesPersistent: 1,
      framesInUse: 1,
      probes: 1,
      newPools: 1,
      puts: 1,
    });
    expect(client.pools).toEqual([
      {
        poolId: pool,
        persistent: true,
        shared: false,
        uuid: null,
        owner: g.clientId,
        members: [g.clientId],
        objects: 1,
        pages: 1,
        sameFilledPages: 0,
        framesInUse: 1,
        dataPages: 1,
        chargedBytes: 4096,
        compressedBytes: 4096,
        pagesPerFrame: 1,
        puts: 1,
        putsRefused: 0,
        gets: 0,
        getHits: 0,
        flushPages: 0,
        flushObjects: 0,
        pagesFlushed: 0,
        evictions: 0,
        dedupHits: 0,
      },
    ]);
  });
});

describe("compression and size classes", () => {
  /** memtouch's kind of page: half random, half one word (compresses about 2:1). */
  function putHalf(g: TestGuest, pool: number, obj: bigint, index: number, seed: number): number {
    g.fillDistinct(SRC, seed);
    const page = g.page(SRC);
    new Uint32Array(page.buffer, page.byteOffset + 2048, 512).fill(seed);
    return g.put(pool, obj, index, SRC);
  }

  it("holds about 1.8 half-random pages per frame where whole pages hold 1, within the same budget", () => {
    const packed = newStore(64);
    const raw = new TmemStore({ budgetFrames: 64, compression: false, dedup: "off" });
    for (const store of [packed, raw]) {
      const g = guest(store, "g");
      const pool = g.newPool(PERSISTENT);
      let n = 0;
      while (putHalf(g, pool, 1n, n, n + 1) === TMEM_HIT) n++;
      store.checkInvariants();
      const m = store.metrics();
      expect(m.framesUsed).toBeLessThanOrEqual(64);
      expect(m.pagesPersistent).toBe(n);
    }
    expect(raw.metrics()).toMatchObject({ pagesPersistent: 64, framesUsed: 64, pagesPerFrame: 1, compressor: null });
    expect(packed.metrics().pagesPersistent).toBeGreaterThanOrEqual(112); // 7 zspages of 8 frames, 15 pages each = 105, plus whole-page slots of the last frames
    expect(packed.metrics().pagesPerFrame!).toBeGreaterThan(1.75);
  });

  it("gives every page back byte for byte after evictions and compaction under a full store", () => {
    const store = newStore(32);
    const g = guest(store, "g");
    const pool = g.newPool();
    const kept = new Map<number, Uint8Array>();
    for (let i = 0; i < 300; i++) {
      expect(putHalf(g, pool, 1n, i, i + 1)).toBe(TMEM_HIT);
      kept.set(i, g.pageCopy(SRC));
      if (i % 3 === 0) expect(g.flushPage(pool, 1n, i - 1 < 0 ? 0 : i - 1)).toBeGreaterThanOrEqual(0);
      store.checkInvariants();
    }
    const m = store.metrics();
    expect(m.evictions).toBeGreaterThan(100);
    expect(m.framesUsed).toBeLessThanOrEqual(32);
    let hits = 0;
    for (const [i, page] of kept) {
      const [r, got] = getInto(g, pool, 1n, i);
      if (r === TMEM_HIT) {
        hits++;
        expect(got).toEqual(page);
      }
    }
    expect(hits).toBeGreaterThan(30);
    store.checkInvariants();
  });

  it("shrinks the budget by compacting and evicting, and refuses below what persistent data needs compacted", () => {
    const store = newStore(64);
    const g = guest(store, "g");
    const pers = g.newPool(PERSISTENT);
    const eph = g.newPool();
    for (let i = 0; i < 30; i++) expect(putHalf(g, pers, 1n, i, i + 1)).toBe(TMEM_HIT); // 2 zspages: 16 frames
    for (let i = 0; i < 40; i++) expect(putHalf(g, eph, 1n, i, 100 + i)).toBe(TMEM_HIT);
    for (let i = 0; i < 30; i += 2) expect(g.flushPage(pers, 1n, i)).toBe(1); // 15 left: 1 zspage when compacted
    expect(store.metrics().persistentFrames).toBe(8); // 15 pages: what the policy keeps the budget above
    expect(() => store.setBudgetFrames(7)).toThrow(/persistent pages hold 8 frames/);
    expect(store.budgetFrames).toBe(64);
    store.setBudgetFrames(8);
    store.checkInvariants();
    expect(store.metrics()).toMatchObject({ pagesPersistent: 15, pagesEphemeral: 0, framesUsed: 8 });
    expect(store.metrics().compactions).toBeGreaterThan(0);
    for (let i = 1; i < 30; i += 2) {
      g.fillDistinct(SRC, i + 1);
      const page = g.page(SRC);
      new Uint32Array(page.buffer, page.byteOffset + 2048, 512).fill(i + 1);
      const [r, got] = getInto(g, pers, 1n, i);
      expect(r).toBe(TMEM_HIT);
      expect(got).toEqual(g.pageCopy(SRC));
    }
  });

  it("counts the persistent allowance in memory: compressed pages count their slot, so more of them fit", () => {
    const store = newStore(64);
    const g = guest(store, "g", { persistentAllowancePages: 2 });
    const pool = g.newPool(PERSISTENT);
    let n = 0;
    while (putHalf(g, pool, 1n, n, n + 1) === TMEM_HIT) n++;
    // each half-random page takes a 2,128-byte slot (0.52 of a page): 4 fit under 2 pages
    expect(n).toBe(4);
    expect(store.clientMetrics(g.clientId)).toMatchObject({ pagesPersistent: 4, chargedBytes: 4 * 2128 });
    const raw = new TmemStore({ budgetFrames: 64, compression: false });
    const r = guest(raw, "r", { persistentAllowancePages: 2 });
    const rp = r.newPool(PERSISTENT);
    expect([putHalf(r, rp, 1n, 0, 1), putHalf(r, rp, 1n, 1, 2), putHalf(r, rp, 1n, 2, 3)]).toEqual([TMEM_HIT, TMEM_HIT, TMEM_ENOSPC]);
  });

  it("compresses per client and pool type as the client asks", () => {
    const store = newStore(64);
    const g = guest(store, "g", { compression: { persistent: false } });
    const pers = g.newPool(PERSISTENT);
    const eph = g.newPool();
    expect(putHalf(g, pers, 1n, 0, 1)).toBe(TMEM_HIT);
    expect(putHalf(g, eph, 1n, 0, 2)).toBe(TMEM_HIT);
    const c = store.clientMetrics(g.clientId);
    expect(c.compression).toEqual({ ephemeral: true, persistent: false });
    expect(c.pools.find((p) => p.persistent)).toMatchObject({ compressedBytes: 4096, pagesPerFrame: 1 });
    expect(c.pools.find((p) => !p.persistent)!.compressedBytes).toBeLessThan(2200);
  });
});
