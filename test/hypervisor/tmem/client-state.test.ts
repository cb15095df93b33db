/**
 * A tmem client carried over a save/restore (client-state.ts): pools under the same ids, settings,
 * every persistent page with its bytes; ephemeral pools empty; damaged state refused.
 */
import { describe, expect, it } from "vitest";
import { TMEM_HIT, TMEM_MISS, TMEM_POOL_PERSIST, TMEM_POOL_SHARED } from "../../../hypervisor/tmem/abi.ts";
import {
  decodeClientStateHeader,
  encodeClientState,
  importClientState,
  PAGE_RECORD_BYTES,
} from "../../../hypervisor/tmem/client-state.ts";
import { uuidToWords } from "../../../hypervisor/tmem/handle.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";
import { ArrayGuestMemory } from "../../../hypervisor/guest-memory.ts";
import { TmemuError } from "../../../hypervisor/user-errors.ts";

const PAGE = 4096;
const UUID = "aaaaaaaa-0000-0000-0000-000000000001";

function fill(mem: ArrayGuestMemory, pfn: number, seed: number): void {
  const v = new DataView(mem.bytes.buffer, pfn * PAGE, PAGE);
  for (let i = 0; i < PAGE / 4; i++) v.setUint32(i * 4, (seed * 2654435761 + i * 40503) >>> 0, true);
}

/** A source store with: pool 0 ephemeral, pool 1 free (destroyed), pool 2 persistent, pool 3 shared. */
function source() {
  const store = new TmemStore({ budgetMib: 4 });
  const id = store.createClient("src", { weight: 7, persistentAllowancePages: 500 });
  store.authorizeShared(id, UUID);
  const mem = new ArrayGuestMemory(64 * PAGE);
  expect(store.newPool(id, 0, 0, 0, 0, 0)).toBe(0);
  expect(store.newPool(id, 0, 0, 0, 0, 0)).toBe(1);
  expect(store.newPool(id, TMEM_POOL_PERSIST, 0, 0, 0, 0)).toBe(2);
  const [w0, w1, w2, w3] = uuidToWords(UUID);
  expect(store.newPool(id, TMEM_POOL_SHARED, w0, w1, w2, w3)).toBe(3);
  store.destroyPool(id, 1);
  for (let i = 0; i < 20; i++) {
    fill(mem, i, i + 1);
    expect(store.putPage(id, 2, i % 3, i === 7 ? 0x1234 : 0, i * 11, mem, i)).toBe(TMEM_HIT);
  }
  // A same-filled persistent page and a few ephemeral ones (which are dropped).
  mem.bytes.fill(0x5a, 30 * PAGE, 31 * PAGE);
  expect(store.putPage(id, 2, 9, 9, 9, mem, 30)).toBe(TMEM_HIT);
  for (let i = 0; i < 5; i++) expect(store.putPage(id, 0, 1, 0, i, mem, i)).toBe(TMEM_HIT);
  return { store, id, mem };
}

describe("client state: save -> restore", () => {
  it("round trip: same pool ids and kinds, settings, every persistent page with its bytes; ephemeral pools empty", () => {
    const { store, id, mem } = source();
    const bytes = encodeClientState(store, id, true);
    expect(decodeClientStateHeader(bytes).header.pages).toBe(21);

    const dst = new TmemStore({ budgetMib: 4 });
    dst.createClient("other"); // client ids differ between stores
    const to = dst.createClient("dst");
    const header = importClientState(dst, to, bytes);
    expect(header.probed).toBe(true);
    const m = dst.clientMetrics(to);
    expect(m.weight).toBe(7);
    expect(m.persistentAllowancePages).toBe(500);
    expect(m.pools.map((p) => [p.poolId, p.persistent, p.shared])).toEqual([
      [0, false, false],
      [2, true, false],
      [3, false, true],
    ]);
    expect(m.pagesPersistent).toBe(store.clientMetrics(id).pagesPersistent);
    expect(m.pagesEphemeral).toBe(0);

    const out = new ArrayGuestMemory(64 * PAGE);
    for (let i = 0; i < 20; i++) {
      expect(dst.getPage(to, 2, i % 3, i === 7 ? 0x1234 : 0, i * 11, out, 40)).toBe(TMEM_HIT);
      expect(out.bytes.subarray(40 * PAGE, 41 * PAGE)).toEqual(mem.bytes.subarray(i * PAGE, (i + 1) * PAGE));
    }
    expect(dst.getPage(to, 2, 9, 9, 9, out, 41)).toBe(TMEM_HIT);
    expect(out.bytes.subarray(41 * PAGE, 42 * PAGE).every((b) => b === 0x5a)).toBe(true);
    expect(dst.getPage(to, 0, 1, 0, 0, out, 42)).toBe(TMEM_MISS);
    dst.checkInvariants();
  });

  it("a frozen client comes back frozen, with its pages", () => {
    const { store, id } = source();
    store.freeze(id);
    const dst = new TmemStore({ budgetMib: 4 });
    const to = dst.createClient("dst");
    importClientState(dst, to, encodeClientState(store, id, false));
    expect(dst.clientMetrics(to).frozen).toBe(true);
    expect(dst.clientMetrics(to).pagesPersistent).toBe(21);
  });

  it("refuses a client that already holds pools", () => {
    const { store, id } = source();
    const dst = new TmemStore({ budgetMib: 4 });
    const to = dst.createClient("dst");
    dst.newPool(to, 0, 0, 0, 0, 0);
    expect(() => importClientState(dst, to, encodeClientState(store, id, true))).toThrow(/already holds pools/);
  });

  it("error: a store too small for the persistent pages refuses the import (never a silent miss)", () => {
    const { store, id } = source();
    const dst = new TmemStore({ budgetFrames: 4 });
    const to = dst.createClient("dst");
    expect(() => importClientState(dst, to, encodeClientState(store, id, true))).toThrow(/refused a saved persistent page/);
  });

  it("invalid input: truncated, padded, bad version and a page in a non-persistent pool are refused", () => {
    const { store, id } = source();
    const bytes = encodeClientState(store, id, true);
    const dst = new TmemStore({ budgetMib: 4 });
    const fresh = () => dst.createClient("dst");
    expect(() => importClientState(dst, fresh(), bytes.subarray(0, bytes.byteLength - 1))).toThrow(TmemuError);
    const padded = new Uint8Array(bytes.byteLength + PAGE_RECORD_BYTES);
    padded.set(bytes);
    expect(() => importClientState(dst, fresh(), padded)).toThrow(/page records/);
    const { header, pagesOffset } = decodeClientStateHeader(bytes);
    const reencode = (h: object, pages: Uint8Array) => {
      const json = new TextEncoder().encode(JSON.stringify(h));
      const out = new Uint8Array(4 + json.byteLength + pages.byteLength);
      new DataView(out.buffer).setUint32(0, json.byteLength, true);
      out.set(json, 4);
      out.set(pages, 4 + json.byteLength);
      return out;
    };
    const pages = bytes.subarray(pagesOffset);
    expect(() => importClientState(dst, fresh(), reencode({ ...header, version: 99 }, pages))).toThrow(/version 99/);
    const wrongPool = pages.slice();
    new DataView(wrongPool.buffer).setUint32(0, 0, true); // first record into ephemeral pool 0
    expect(() => importClientState(dst, fresh(), reencode(header, wrongPool))).toThrow(/not a saved persistent pool/);
  });
});
