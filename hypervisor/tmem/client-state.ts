/**
 * One tmem client's state, carried over a save/restore or a live migration, as Xen's tmem did
 * (DESIGN.md, "Xen tmem save/restore"): the client's settings and its pools under the same local
 * ids, every persistent page as (pool, object, index, page); ephemeral pools as metadata only (they
 * come back empty: their pages may vanish at any time anyway, so the guest cannot tell).
 *
 * Layout (little-endian), what encodeClientState writes:
 *   u32  header length H
 *   H    header, UTF-8 JSON (ClientStateHeader)
 *   then header.pages page records of PAGE_RECORD_BYTES each:
 *        u32 pool id, u32 object lo, u32 object hi, u32 index, 4096 bytes of data
 *
 * Import goes into an existing client that holds no pool (a new guest's device, before its vCPU
 * runs). A persistent page the destination store refuses is an error, not a miss: the guest
 * believes it is stored and has no other copy.
 */
import { TMEM_HIT, TMEM_MAX_POOLS, TMEM_POOL_PERSIST, TMEM_POOL_SHARED } from "./abi.ts";
import { uuidToWords } from "./handle.ts";
import type { TmemStore } from "./store.ts";
import type { GuestMemory } from "../guest-memory.ts";
import { PAGE_SIZE } from "../guest-memory.ts";
import { TmemuError } from "../user-errors.ts";

export const CLIENT_STATE_VERSION = 1;
/** Pool id, object lo, object hi, index (u32 each), then the page. */
export const PAGE_RECORD_BYTES = 16 + PAGE_SIZE;

export interface SavedPool {
  id: number;
  persistent: boolean;
  /** Shared (ephemeral) pools: their uuid; the destination authorises it for the client. */
  uuid: string | null;
}

export interface ClientStateHeader {
  version: number;
  weight: number;
  persistentAllowancePages: number | null;
  frozen: boolean;
  /** Whether the guest's probe had been accepted (TmemHypercallHandler.probed): it does not probe again. */
  probed: boolean;
  pools: SavedPool[];
  /** Number of page records that follow. */
  pages: number;
}

/** The client's settings and pools (no pages). */
export function clientStateHeader(store: TmemStore, clientId: number, probed: boolean, pages = 0): ClientStateHeader {
  const m = store.clientMetrics(clientId);
  return {
    version: CLIENT_STATE_VERSION,
    weight: m.weight,
    persistentAllowancePages: m.persistentAllowancePages,
    frozen: m.frozen,
    probed,
    pools: m.pools.map((p) => ({ id: p.poolId, persistent: p.persistent, uuid: p.uuid })),
    pages,
  };
}

/** Writes one page record at `offset` of `out` (PAGE_RECORD_BYTES). */
export function writePageRecord(out: Uint8Array, offset: number, poolId: number, lo: number, hi: number, index: number, page: Uint8Array): void {
  const v = new DataView(out.buffer, out.byteOffset + offset, 16);
  v.setUint32(0, poolId, true);
  v.setUint32(4, lo, true);
  v.setUint32(8, hi, true);
  v.setUint32(12, index, true);
  out.set(page.subarray(0, PAGE_SIZE), offset + 16);
}

export interface PageRecord {
  poolId: number;
  lo: number;
  hi: number;
  index: number;
  /** A view into the encoded bytes. */
  page: Uint8Array;
}

export function readPageRecord(bytes: Uint8Array, offset: number): PageRecord {
  if (offset + PAGE_RECORD_BYTES > bytes.byteLength) throw badState("a page record is cut short");
  const v = new DataView(bytes.buffer, bytes.byteOffset + offset, 16);
  return { poolId: v.getUint32(0, true), lo: v.getUint32(4, true), hi: v.getUint32(8, true), index: v.getUint32(12, true), page: bytes.subarray(offset + 16, offset + PAGE_RECORD_BYTES) };
}

/** The whole client: header and every persistent page. The store is not changed. */
export function encodeClientState(store: TmemStore, clientId: number, probed: boolean): Uint8Array {
  const records: Uint8Array[] = [];
  store.forEachPersistentPage(clientId, (poolId, lo, hi, index, page) => {
    const r = new Uint8Array(PAGE_RECORD_BYTES);
    writePageRecord(r, 0, poolId, lo, hi, index, page);
    records.push(r);
  });
  const header = new TextEncoder().encode(JSON.stringify(clientStateHeader(store, clientId, probed, records.length)));
  const out = new Uint8Array(4 + header.byteLength + records.length * PAGE_RECORD_BYTES);
  new DataView(out.buffer).setUint32(0, header.byteLength, true);
  out.set(header, 4);
  let at = 4 + header.byteLength;
  for (const r of records) {
    out.set(r, at);
    at += PAGE_RECORD_BYTES;
  }
  return out;
}

export function decodeClientStateHeader(bytes: Uint8Array): { header: ClientStateHeader; pagesOffset: number } {
  if (bytes.byteLength < 4) throw badState("it is shorter than its length field");
  const len = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (4 + len > bytes.byteLength) throw badState("its header is cut short");
  let header: ClientStateHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + len))) as ClientStateHeader;
  } catch {
    throw badState("its header is not JSON");
  }
  if (header.version !== CLIENT_STATE_VERSION) throw badState(`it is version ${String(header.version)}; this tmemu reads version ${CLIENT_STATE_VERSION}`);
  if (!Array.isArray(header.pools) || !Number.isSafeInteger(header.pages) || header.pages < 0 || typeof header.probed !== "boolean") throw badState("its header is malformed");
  for (const p of header.pools) {
    if (!Number.isSafeInteger(p.id) || p.id < 0 || p.id >= TMEM_MAX_POOLS) throw badState(`pool id ${String(p.id)} is out of range`);
  }
  const pagesOffset = 4 + len;
  if (pagesOffset + header.pages * PAGE_RECORD_BYTES !== bytes.byteLength) throw badState(`it should hold ${header.pages} page records`);
  return { header, pagesOffset };
}

/**
 * Gives client `clientId` (which must hold no pool) the settings and pools of `header`, each pool
 * under its saved id. Pages come separately (restorePage).
 */
export function importClientHeader(store: TmemStore, clientId: number, header: ClientStateHeader): void {
  if (store.clientMetrics(clientId).pools.length !== 0) {
    throw new TmemuError("BAD_INPUT", `tmem: client ${clientId} already holds pools; a saved client can only be restored into a new one`);
  }
  store.setWeight(clientId, header.weight);
  store.setPersistentAllowance(clientId, header.persistentAllowancePages ?? undefined);
  const wanted = new Map(header.pools.map((p) => [p.id, p]));
  const top = Math.max(-1, ...header.pools.map((p) => p.id));
  const placeholders: number[] = [];
  // newPool takes the lowest free id: create the pools in id order, filling gaps with placeholders.
  for (let id = 0; id <= top; id++) {
    const p = wanted.get(id);
    let got: number;
    if (p === undefined) {
      got = store.newPool(clientId, 0, 0, 0, 0, 0);
      placeholders.push(got);
    } else if (p.uuid !== null) {
      store.authorizeShared(clientId, p.uuid);
      const [w0, w1, w2, w3] = uuidToWords(p.uuid);
      got = store.newPool(clientId, TMEM_POOL_SHARED, w0, w1, w2, w3);
    } else {
      got = store.newPool(clientId, p.persistent ? TMEM_POOL_PERSIST : 0, 0, 0, 0, 0);
    }
    if (got !== id) throw badState(`pool ${id} could not be re-created under its id (got ${got})`);
  }
  for (const id of placeholders) store.destroyPool(clientId, id);
  if (header.frozen) store.freeze(clientId);
}

/** One page holding `page`, as a guest frame for TmemStore.putPage. */
class OnePage implements GuestMemory {
  readonly sizeBytes = PAGE_SIZE;
  page: Uint8Array = new Uint8Array(PAGE_SIZE);
  readPage(_pfn: number, dst: Uint8Array): void {
    dst.set(this.page);
  }
  writePage(): void {
    throw new Error("client-state: the import page is read only");
  }
}

const onePage = new OnePage();

/** Puts one saved persistent page back. Throws if the store refuses it (see the header). */
export function restorePage(store: TmemStore, clientId: number, r: PageRecord): void {
  onePage.page = r.page;
  const frozen = store.clientMetrics(clientId).frozen;
  if (frozen) store.thaw(clientId);
  const result = store.putPage(clientId, r.poolId, r.lo, r.hi, r.index, onePage, 0);
  if (frozen) store.freeze(clientId);
  if (result !== TMEM_HIT) {
    throw new TmemuError(
      "BAD_INPUT",
      `tmem: the store refused a saved persistent page (pool ${r.poolId}, index ${r.index}: result ${result})`,
      "give the store a larger budget: every persistent page of the saved guest must fit",
    );
  }
}

/** Imports a whole encodeClientState into client `clientId`; returns its header (pages: how many were restored). */
export function importClientState(store: TmemStore, clientId: number, bytes: Uint8Array): ClientStateHeader {
  const { header, pagesOffset } = decodeClientStateHeader(bytes);
  const persistent = new Set(header.pools.filter((p) => p.persistent).map((p) => p.id));
  importClientHeader(store, clientId, header);
  for (let i = 0; i < header.pages; i++) {
    const r = readPageRecord(bytes, pagesOffset + i * PAGE_RECORD_BYTES);
    if (!persistent.has(r.poolId)) throw badState(`page ${i} names pool ${r.poolId}, which is not a saved persistent pool`);
    restorePage(store, clientId, r);
  }
  return header;
}

function badState(what: string): TmemuError {
  return new TmemuError("BAD_INPUT", `tmem: the saved client state is unusable: ${what}`, "the file is damaged or from another tmemu; boot the guest afresh");
}
