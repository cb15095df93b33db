/**
 * Pure helpers for the parts of a tmem handle and of a shared pool's name, as tmem_abi.h lays them
 * out: a 64-bit object id passed as two u32 words (EBX low, ECX high), a u32 page index (ESI), the
 * reserved values TMEM_OBJECT_RESERVED_LO/HI and TMEM_INDEX_RESERVED, and a 128-bit pool uuid passed
 * as four u32 words (EBX, ECX, ESI, EDI) holding its bytes 0-15 in little-endian order.
 */

import { TMEM_INDEX_RESERVED, TMEM_OBJECT_RESERVED_HI, TMEM_OBJECT_RESERVED_LO } from "./abi.ts";
import { TmemuError } from "../user-errors.ts";

/**
 * A Map key that identifies a 64-bit object id exactly. Ids below 2^53 (high word < 2^21: every
 * inode number and swap type in practice) become the number hi * 2^32 + lo, which is exact; larger
 * ids become the string "hi:lo" in hex. A number and a string are never equal as Map keys, so the
 * mapping is injective over all 2^64 ids.
 */
export type ObjectKey = number | string;

/** 2^21: the first high word for which hi * 2^32 + lo may exceed 2^53. */
const EXACT_HI_LIMIT = 0x200000;
const TWO_TO_32 = 0x100000000;

/** `lo` and `hi` are u32 values (integers in [0, 2^32)). */
export function objectKey(lo: number, hi: number): ObjectKey {
  return hi < EXACT_HI_LIMIT ? hi * TWO_TO_32 + lo : `${hi.toString(16)}:${lo.toString(16)}`;
}

/** The 64-bit id an ObjectKey stands for, as a bigint (for metrics and messages). */
export function objectIdOfKey(key: ObjectKey): bigint {
  if (typeof key === "number") return BigInt(key);
  const [hi, lo] = key.split(":");
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export function isReservedObject(lo: number, hi: number): boolean {
  return lo === TMEM_OBJECT_RESERVED_LO && hi === TMEM_OBJECT_RESERVED_HI;
}

export function isReservedIndex(index: number): boolean {
  return index === TMEM_INDEX_RESERVED;
}

/**
 * A pool uuid in canonical text form, "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case, whose hex
 * digits are the uuid's bytes 0-15 in order (RFC 4122 text form; Linux uuid_t byte order).
 */
export type UuidText = string;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Checks and normalises (to lower case) a uuid given by the host. Throws TmemuError BAD_INPUT. */
export function parseUuid(text: string): UuidText {
  const lower = text.toLowerCase();
  if (!UUID_RE.test(lower)) {
    throw new TmemuError(
      "BAD_INPUT",
      `"${text}" is not a uuid`,
      "write a uuid as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (32 hex digits)",
    );
  }
  return lower;
}

function hexByte(b: number): string {
  return (b & 0xff).toString(16).padStart(2, "0");
}

/** Little-endian bytes of one u32 word, as hex. */
function wordHex(w: number): string {
  return hexByte(w) + hexByte(w >>> 8) + hexByte(w >>> 16) + hexByte(w >>> 24);
}

/** The uuid whose bytes 0-15 are the four u32 words w0..w3 read as little-endian (tmem_abi.h). */
export function uuidFromWords(w0: number, w1: number, w2: number, w3: number): UuidText {
  const hex = wordHex(w0) + wordHex(w1) + wordHex(w2) + wordHex(w3);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The four u32 words a guest passes for `uuid` (inverse of uuidFromWords). */
export function uuidToWords(uuid: UuidText): [number, number, number, number] {
  const hex = parseUuid(uuid).replaceAll("-", "");
  const word = (i: number): number => {
    let w = 0;
    for (let b = 3; b >= 0; b--) w = w * 256 + Number.parseInt(hex.slice((i * 4 + b) * 2, (i * 4 + b) * 2 + 2), 16);
    return w;
  };
  return [word(0), word(1), word(2), word(3)];
}
