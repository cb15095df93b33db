/**
 * Host-verified shared pools in the store: a put whose bytes the verifier refuses is TMEM_EPERM,
 * flushes what the handle held and stores nothing; another member then misses, never reads the
 * hostile bytes; a put the verifier accepts is stored as before; private pools are not verified.
 */
import { describe, expect, it } from "vitest";
import { TMEM_EPERM, TMEM_HIT, TMEM_MISS, TMEM_POOL_SHARED } from "../../../hypervisor/tmem/abi.ts";
import { TmemStore } from "../../../hypervisor/tmem/store.ts";
import type { SharedPageVerifier } from "../../../hypervisor/tmem/shared-verify.ts";
import { TestGuest } from "./test-guest.ts";

const UUID = "aaaaaaaa-0000-0000-0000-000000000001";
const SRC = 16;
const DST = 17;

/** The "image": page (7, i) must be filled with the byte i + 1. */
const truth: SharedPageVerifier & { calls: number } = {
  calls: 0,
  verify(lo, hi, index, page) {
    this.calls++;
    return lo === 7 && hi === 0 && page.every((b) => b === index + 1);
  },
};

function setup(): { store: TmemStore; honest: TestGuest; hostile: TestGuest; ph: number; px: number } {
  const store = new TmemStore({ budgetFrames: 32 });
  const honest = new TestGuest(store, "honest");
  const hostile = new TestGuest(store, "hostile");
  for (const g of [honest, hostile]) {
    store.authorizeShared(g.clientId, UUID);
    g.probe();
  }
  store.verifySharedPuts(UUID, truth);
  return { store, honest, hostile, ph: honest.newPool(TMEM_POOL_SHARED, UUID), px: hostile.newPool(TMEM_POOL_SHARED, UUID) };
}

describe("a verified shared pool", () => {
  it("refuses a hostile put with TMEM_EPERM, flushing the true copy, and the other guest never reads it", () => {
    const { store, honest, hostile, ph, px } = setup();
    honest.page(SRC).fill(3);
    expect(honest.put(ph, 7n, 2, SRC)).toBe(TMEM_HIT);
    hostile.page(SRC).fill(0xee);
    expect(hostile.put(px, 7n, 2, SRC)).toBe(TMEM_EPERM);
    honest.page(DST).fill(0);
    expect(honest.get(ph, 7n, 2, DST)).toBe(TMEM_MISS);
    expect(honest.page(DST).every((b) => b === 0)).toBe(true);
    expect(store.clientMetrics(hostile.clientId).putsRefused).toBe(1);
    expect(store.clientMetrics(hostile.clientId).errors.EPERM).toBe(1);
    store.checkInvariants();
  });

  it("stores a put equal to the image, for every member", () => {
    const { honest, hostile, ph, px } = setup();
    hostile.page(SRC).fill(5);
    expect(hostile.put(px, 7n, 4, SRC)).toBe(TMEM_HIT);
    expect(honest.get(ph, 7n, 4, DST)).toBe(TMEM_HIT);
    expect(honest.page(DST).every((b) => b === 5)).toBe(true);
  });

  it("leaves private pools and unverified uuids alone", () => {
    const { store, honest } = setup();
    const priv = honest.newPool(0);
    honest.page(SRC).fill(0xee);
    const before = truth.calls;
    expect(honest.put(priv, 7n, 2, SRC)).toBe(TMEM_HIT);
    expect(truth.calls).toBe(before);
    store.verifySharedPuts(UUID, undefined);
    expect(honest.put(0, 7n, 2, SRC)).toBe(TMEM_HIT);
  });
});
