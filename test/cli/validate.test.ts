/**
 * The pure decisions of `tmemu validate`: which host and guest error counts fail a check, what the
 * coherence check demands before it believes a read-back, what each coherence path must read back,
 * and the test-only fault seam that makes the host's put path fail.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  COHERENCE_PATHS,
  coherenceProblems,
  counterDisagreements,
  tmemErrorNumbers,
  tmemErrorProblems,
  type CoherenceReadBack,
} from "../../cli/validate.ts";
import { TMEM_GUEST_STAT_NAMES, type TmemGuestStats } from "../../hypervisor/guest/stats.ts";
import { TMEM_EINVAL, TMEM_HIT, TMEM_MAGIC, TMEM_MISS, TMEM_POOL_PERSIST } from "../../hypervisor/tmem/abi.ts";
import { INJECT_FAULT_ENV, INJECTED_PUT_FAULT_EVERY, LOST_PERSISTENT_GET } from "../../hypervisor/tmem/hypercall.ts";
import { TmemStore } from "../../hypervisor/tmem/store.ts";
import { TestGuest } from "../hypervisor/tmem/test-guest.ts";

function guestStats(over: Partial<TmemGuestStats> = {}): TmemGuestStats {
  const g = {} as TmemGuestStats;
  for (const n of TMEM_GUEST_STAT_NAMES) g[n] = 0;
  return { ...g, ...over };
}

/** A real store's metrics for one client, after `calls` ran against it. */
function hostMetrics(calls: (g: TestGuest) => void = () => undefined) {
  const store = new TmemStore({ budgetFrames: 4 });
  const g = new TestGuest(store, "g");
  expect(g.probe()).toBe(TMEM_MAGIC);
  calls(g);
  return { metrics: store.clientMetrics(g.clientId), guest: g };
}

describe("tmemErrorProblems", () => {
  it("passes a clean client, refusals included", () => {
    const { metrics } = hostMetrics();
    const refused = { ...metrics, putsRefused: 3, errors: { ...metrics.errors, ENOSPC: 2, EBUSY: 1 } };
    expect(tmemErrorProblems(refused, guestStats({ hypercall_refusals: 3 }))).toEqual([]);
    expect(tmemErrorNumbers(refused, guestStats({ hypercall_refusals: 3 }))).toEqual({
      hostInternalErrors: 0,
      hostErrors: 0,
      hostRefusals: 3,
      guestHypercallErrors: 0,
      guestHypercallRefusals: 3,
    });
  });

  it("fails on a host internal error, naming the last one, and not twice as an EINVAL", () => {
    const { metrics } = hostMetrics();
    const bad = { ...metrics, internalErrors: 2, errors: { ...metrics.errors, EINVAL: 2 } };
    expect(tmemErrorProblems(bad, guestStats({ hypercall_errors: 2 }), new Error("boom"))).toEqual([
      "host internal errors: 2 (last: boom)",
      "guest hypercall_errors: 2",
    ]);
  });

  it("fails on a host error result other than a refusal", () => {
    const { metrics } = hostMetrics();
    const bad = { ...metrics, errors: { ...metrics.errors, EFAULT: 1, ENOSPC: 5 } };
    expect(tmemErrorProblems(bad, guestStats())).toEqual(["host error results other than refusals: EFAULT 1"]);
    expect(tmemErrorNumbers(bad, guestStats())).toMatchObject({ hostErrors: 1, hostRefusals: 5 });
  });

  it("fails on guest hypercall errors alone, but not on guest refusals", () => {
    const { metrics } = hostMetrics();
    expect(tmemErrorProblems(metrics, guestStats({ hypercall_errors: 1 }))).toEqual(["guest hypercall_errors: 1"]);
    expect(tmemErrorProblems(metrics, guestStats({ hypercall_refusals: 9 }))).toEqual([]);
  });

  it("compares refusals and errors with the guest's counts", () => {
    const { metrics } = hostMetrics();
    const host = { ...metrics, putsRefused: 2, errors: { ...metrics.errors, ENOSPC: 2, EFAULT: 1 } };
    expect(counterDisagreements(host, guestStats({ hypercall_refusals: 2, hypercall_errors: 1 }))).toEqual([]);
    expect(counterDisagreements(host, guestStats({ hypercall_refusals: 1, hypercall_errors: 2 }))).toEqual([
      "refusals: host 2, guest 1",
      "errors: host 1, guest 2",
    ]);
  });
});

describe("the injected put fault (test-only seam)", () => {
  afterEach(() => {
    delete process.env[INJECT_FAULT_ENV];
  });

  it(`makes one put in ${INJECTED_PUT_FAULT_EVERY} an internal error that validate fails on`, () => {
    process.env[INJECT_FAULT_ENV] = "store-put";
    const { metrics, guest } = hostMetrics((g) => {
      const pool = g.newPool();
      expect(pool).toBe(0);
      g.memory.bytes.fill(0x11, 16 * 4096, 17 * 4096);
      const results = Array.from({ length: INJECTED_PUT_FAULT_EVERY + 1 }, (_, i) => g.put(pool, 1n, i, 16));
      expect(results.filter((r) => r === TMEM_EINVAL)).toHaveLength(2);
      expect(results.filter((r) => r === TMEM_HIT)).toHaveLength(INJECTED_PUT_FAULT_EVERY - 1);
    });
    expect(metrics.internalErrors).toBe(2);
    expect(metrics.puts).toBe(INJECTED_PUT_FAULT_EVERY + 1);
    const problems = tmemErrorProblems(metrics, guestStats({ hypercall_errors: 2 }), guest.handler.lastInternalError);
    expect(problems[0]).toMatch(/^host internal errors: 2 \(last: injected fault/);
  });

  it("is off when unset, and refuses a fault it does not know", () => {
    const { metrics } = hostMetrics((g) => {
      g.newPool();
      expect(g.put(0, 1n, 0, 16)).toBe(TMEM_HIT);
    });
    expect(metrics.internalErrors).toBe(0);
    process.env[INJECT_FAULT_ENV] = "store-get";
    expect(() => hostMetrics()).toThrow(/not a fault tmemu can inject/);
  });

  it(`lose-persistent: the ${LOST_PERSISTENT_GET}th persistent get that would hit misses, once; ephemeral gets are untouched`, () => {
    process.env[INJECT_FAULT_ENV] = "lose-persistent";
    hostMetrics((g) => {
      const eph = g.newPool();
      const pers = g.newPool(TMEM_POOL_PERSIST);
      g.memory.bytes.fill(0x22, 16 * 4096, 17 * 4096);
      for (let i = 0; i < 40; i++) expect(g.put(eph, 1n, i, 16)).toBe(TMEM_HIT);
      for (let i = 0; i < 40; i++) expect(g.get(eph, 1n, i, 17)).toBe(TMEM_HIT);
      expect(g.put(pers, 1n, 0, 16)).toBe(TMEM_HIT);
      const results = Array.from({ length: 2 * LOST_PERSISTENT_GET }, () => g.get(pers, 1n, 0, 17));
      expect(results.indexOf(TMEM_MISS)).toBe(LOST_PERSISTENT_GET - 1);
      expect(results.filter((r) => r === TMEM_MISS)).toHaveLength(LOST_PERSISTENT_GET + 1);
      // Put again: it stays (one loss per handler).
      expect(g.put(pers, 1n, 0, 16)).toBe(TMEM_HIT);
      for (let i = 0; i < 2 * LOST_PERSISTENT_GET; i++) expect(g.get(pers, 1n, 0, 17)).toBe(TMEM_HIT);
    });
  });
});

describe("coherence", () => {
  const old = Buffer.alloc(4 << 20);
  for (let i = 0; i < old.length; i += 4096) old.writeUInt32LE(i / 4096 + 1, i);
  const expectOf = (name: string) => COHERENCE_PATHS.find((p) => p.name === name)!.expect(old);

  it("expects each path's own result", () => {
    const page = (b: Buffer, i: number) => b.readUInt32LE(i * 4096);
    const collapse = expectOf("collapse-range");
    expect(collapse.length).toBe(3 << 20);
    expect([page(collapse, 255), page(collapse, 256)]).toEqual([256, 513]);
    const punch = expectOf("punch-hole");
    expect([punch.length, page(punch, 255), page(punch, 256), page(punch, 511), page(punch, 512)]).toEqual([4 << 20, 256, 0, 0, 513]);
    const trunc = expectOf("truncate-extend");
    expect([trunc.length, page(trunc, 255), page(trunc, 256), page(trunc, 1023)]).toEqual([4 << 20, 256, 0, 0]);
    const dio = expectOf("direct-write");
    expect([dio.length, page(dio, 255), dio[256 * 4096], page(dio, 512)]).toEqual([4 << 20, 256, 0x7a, 513]);
    expect(expectOf("overwrite").every((b) => b === 0x7a)).toBe(true);
  });

  const good = (name: string): CoherenceReadBack => ({ name, newContent: true, cleancacheGets: 10, cleancacheHits: 0 });
  const base = () => ({
    pages: 100,
    putsBefore: 100,
    putsFailedBefore: 0,
    hostPagesBefore: 100,
    readBacks: COHERENCE_PATHS.map((p) => good(p.name)),
    unchanged: { ...good("unchanged"), cleancacheHits: 10 },
  });

  it("passes when every path reads back new content after asking cleancache", () => {
    expect(coherenceProblems(base())).toEqual([]);
  });

  it("fails naming each stale path", () => {
    const o = base();
    o.readBacks[3] = { ...o.readBacks[3]!, newContent: false };
    o.readBacks[4] = { ...o.readBacks[4]!, newContent: false };
    expect(coherenceProblems(o)).toEqual(["stale data read back after: collapse-range, direct-write"]);
  });

  it("fails when a read-back never asked cleancache (vacuous)", () => {
    const o = base();
    o.readBacks[1] = { ...o.readBacks[1]!, cleancacheGets: 0 };
    expect(coherenceProblems(o)).toEqual(["the read-back never asked cleancache (the check proves nothing) after: truncate-extend"]);
  });

  it("fails when the old pages were not all in tmem before the change", () => {
    expect(coherenceProblems({ ...base(), putsBefore: 99 })).toEqual(["only 99 cleancache puts for the 100 pages of the files before the change"]);
    expect(coherenceProblems({ ...base(), putsFailedBefore: 1 })).toEqual(["1 of those puts were refused: not every old page was in tmem"]);
    expect(coherenceProblems({ ...base(), hostPagesBefore: 50 })).toEqual(["the host held 50 ephemeral pages, fewer than the files' 100"]);
    expect(coherenceProblems({ ...base(), unchanged: good("unchanged") })).toEqual(["the unchanged file got no cleancache hits: the old pages were not in tmem"]);
  });
});
