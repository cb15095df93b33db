import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  isReservedIndex,
  isReservedObject,
  objectIdOfKey,
  objectKey,
  parseUuid,
  uuidFromWords,
  uuidToWords,
} from "../../../hypervisor/tmem/handle.ts";
import { TmemuError } from "../../../hypervisor/user-errors.ts";

const u32 = fc.integer({ min: 0, max: 0xffffffff });

describe("objectKey", () => {
  it("is exact and distinct around 2^53, where hi * 2^32 + lo stops being exact", () => {
    const ids: [number, number][] = [
      [0xffffffff, 0x1fffff], // 2^53 - 1: largest number key
      [0xfffffffe, 0x1fffff],
      [0, 0x200000], // 2^53: first string key
      [1, 0x200000], // 2^53 + 1: not representable as a double
      [0xffffffff, 0xfffffffe],
      [0xfffffffe, 0xffffffff],
    ];
    const keys = ids.map(([lo, hi]) => objectKey(lo, hi));
    expect(new Set(keys).size).toBe(ids.length);
    ids.forEach(([lo, hi], i) => expect(objectIdOfKey(keys[i]!)).toBe((BigInt(hi) << 32n) | BigInt(lo)));
  });

  it("maps every 64-bit id to a key that gives the id back (so no two ids share a key)", () => {
    fc.assert(
      fc.property(u32, u32, (lo, hi) => {
        expect(objectIdOfKey(objectKey(lo, hi))).toBe((BigInt(hi) << 32n) | BigInt(lo));
      }),
    );
  });
});

describe("reserved handle values", () => {
  it("reserve the object only when both words are 0xffffffff", () => {
    expect(isReservedObject(0xffffffff, 0xffffffff)).toBe(true);
    expect(isReservedObject(0xffffffff, 0)).toBe(false);
    expect(isReservedObject(0, 0xffffffff)).toBe(false);
    expect(isReservedIndex(0xffffffff)).toBe(true);
    expect(isReservedIndex(0xfffffffe)).toBe(false);
  });
});

describe("uuids", () => {
  it("read the four words as the uuid's bytes 0-15, little-endian", () => {
    // bytes 00 11 22 33 | 44 55 66 77 | 88 99 aa bb | cc dd ee ff
    expect(uuidFromWords(0x33221100, 0x77665544, 0xbbaa9988, 0xffeeddcc)).toBe(
      "00112233-4455-6677-8899-aabbccddeeff",
    );
    expect(uuidToWords("00112233-4455-6677-8899-AABBCCDDEEFF")).toEqual([
      0x33221100, 0x77665544, 0xbbaa9988, 0xffeeddcc,
    ]);
  });

  it("round-trip through words for any four u32 values", () => {
    fc.assert(
      fc.property(u32, u32, u32, u32, (a, b, c, d) => {
        expect(uuidToWords(uuidFromWords(a, b, c, d))).toEqual([a, b, c, d]);
      }),
    );
  });

  it("reject host text that is not a uuid with a TmemuError BAD_INPUT", () => {
    for (const bad of [
      "",
      "nope",
      "00112233445566778899aabbccddeeff",
      "0011223-4455-6677-8899-aabbccddeeff0",
      "g0112233-4455-6677-8899-aabbccddeeff",
      "00112233-4455-6677-8899-aabbccddeeff\n",
    ]) {
      let thrown: unknown;
      try {
        parseUuid(bad);
      } catch (error) {
        thrown = error;
      }
      // Outside the catch: a parseUuid that returns instead of throwing fails here.
      expect(thrown, JSON.stringify(bad)).toBeInstanceOf(TmemuError);
      expect((thrown as TmemuError).code, JSON.stringify(bad)).toBe("BAD_INPUT");
    }
  });
});
