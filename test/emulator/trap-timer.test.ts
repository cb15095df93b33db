/**
 * The trap-wait histogram (emulator/trap-timer.ts): one trap in SAMPLE_EVERY timed, geometric
 * buckets, percentiles as bucket upper edges, windows as differences of cumulative counts.
 */
import { describe, expect, it } from "vitest";
import { bucketOf, bucketUpperUs, SAMPLE_EVERY, TRAP_WAIT_BUCKETS, TrapTimer, trapWaitBetween } from "../../emulator/trap-timer.ts";

describe("trap timer", () => {
  it("puts a wait in the bucket whose upper edge is the first above it", () => {
    for (const us of [0, 0.1, 0.25, 0.3, 1, 3.7, 5, 47, 270, 1e4, 1e9]) {
      const b = bucketOf(us);
      expect(b).toBeGreaterThanOrEqual(0);
      expect(b).toBeLessThan(TRAP_WAIT_BUCKETS);
      if (b < TRAP_WAIT_BUCKETS - 1) expect(us).toBeLessThan(bucketUpperUs(b));
      if (b > 0) expect(us).toBeGreaterThanOrEqual(bucketUpperUs(b - 1) * (1 - 1e-12));
    }
    expect(bucketOf(Number.NaN)).toBe(0);
  });

  it("times one trap in SAMPLE_EVERY and runs every one", () => {
    const t = new TrapTimer();
    let ran = 0;
    for (let i = 0; i < 10 * SAMPLE_EVERY; i++) t.run(() => void ran++);
    const c = t.counts();
    expect(ran).toBe(10 * SAMPLE_EVERY);
    expect(c.traps).toBe(10 * SAMPLE_EVERY);
    expect(c.timed).toBe(10);
    expect(c.buckets.reduce((a, b) => a + b, 0)).toBe(10);
  });

  it("counts a trap whose handler throws, and lets the throw through", () => {
    const t = new TrapTimer();
    for (let i = 1; i < SAMPLE_EVERY; i++) t.run(() => undefined);
    expect(() =>
      t.run(() => {
        throw new Error("handler");
      }),
    ).toThrow("handler");
    expect(t.counts().timed).toBe(1);
  });

  it("reports a window's percentiles and mean from the difference of two snapshots", () => {
    const t = new TrapTimer();
    for (let i = 0; i < 1000; i++) t.record(1000); // before the window
    const from = t.counts();
    for (let i = 0; i < 98; i++) t.record(4);
    t.record(50);
    t.record(300);
    const w = trapWaitBetween(from, t.counts());
    expect(w).toBeDefined();
    expect(w!.timed).toBe(100);
    expect(w!.meanUs).toBeCloseTo((98 * 4 + 50 + 300) / 100, 6);
    expect(w!.p50Us).toBe(bucketUpperUs(bucketOf(4)));
    expect(w!.p90Us).toBe(bucketUpperUs(bucketOf(4)));
    expect(w!.p99Us).toBe(bucketUpperUs(bucketOf(50)));
    expect(w!.p50Us).toBeGreaterThan(4);
    expect(w!.p50Us).toBeLessThan(4 * 1.2);
    expect(trapWaitBetween(t.counts(), t.counts())).toBeUndefined();
  });
});
