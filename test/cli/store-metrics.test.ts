/** The store's compression, dedup and density in the run summary text and in a bench sample. */
import { describe, expect, it } from "vitest";
import { sampleFromSummary } from "../../cli/bench-report.ts";
import { formatSummary, storeDataLine } from "../../cli/run.ts";
import { guest, summary } from "./bench-fixtures.ts";

const STORE = {
  budgetFrames: 16384, framesTotal: 16384, framesUsed: 9000, maxPages: 131072, pages: 17000, pagesEphemeral: 0, pagesPersistent: 17000, sameFilledPages: 500,
  evictions: 0, compressor: "lz4", dedup: "client", objects: 16400, compressedBytes: 16400 * 2120, allocatedBytes: 16400 * 2128, pagesPerFrame: 16500 / 9000,
  dedupHits: 100, dedupCollisions: 0, compressedPuts: 16400, wholePuts: 0, fragmentationFrames: 40, compactions: 2, framesCompacted: 30, objectsMoved: 400, clients: [],
};
const DENSITY = { samples: 60, peakFramesUsed: 9000, dataPagesAtPeak: 17100, pagesPerFrameAtPeak: 1.9, compressedBytesAtPeak: 1, maxFragmentationFrames: 200, maxFragmentationFraction: 0.03 };

describe("store metrics in the run summary and the bench", () => {
  it("say the compressor, pages per frame, dedup hits, fragmentation and compactions", () => {
    expect(storeDataLine(STORE)).toBe("lz4, 1.83 pages/frame, 33.2 MiB stored in 16400 objects, dedup (client) 100 hits, 40 frames fragmented, 2 compactions");
    expect(storeDataLine({ ...STORE, compressor: null, pagesPerFrame: null })).toMatch(/^no compression, - pages\/frame/);
    const s = summary([guest()], { store: STORE, storeDensity: DENSITY });
    const text = formatSummary(s);
    expect(text).toContain("store data (end): lz4, 1.83 pages/frame");
    expect(text).toContain("store at its peak: 9000 frames held 17100 pages with data, 1.90 pages per frame; fragmentation at most 200 frames (3.0% of those used)");
  });
  it("go into the bench sample from the run's density (the end is no guide) and the store's dedup hits", () => {
    const m = sampleFromSummary(summary([guest()], { store: STORE, storeDensity: DENSITY }), 1, 10).metrics;
    expect(m).toMatchObject({ storePeakFrames: 9000, storePagesPerFrame: 1.9, storeFragmentationFrames: 200, storeDedupHits: 100 });
    const old = sampleFromSummary(summary([guest()]), 1, 10).metrics; // a summary from before: no density
    expect(old).toMatchObject({ storePeakFrames: null, storePagesPerFrame: null, storeFragmentationFrames: null });
  });
});

describe("hypercall wait in the run summary and the bench", () => {
  const wait = (timed: number, meanUs: number) => ({ traps: timed * 16, timed, meanUs, p50Us: 8, p90Us: 16, p99Us: 64 });
  it("pools the guests' timed waits into one mean for the bench sample (a guest that timed none counts for nothing)", () => {
    const s = summary([guest({ hypercallWait: wait(100, 10) }), guest({ name: "g1", hypercallWait: wait(300, 50) }), guest({ name: "g2", hypercallWait: null })]);
    expect(sampleFromSummary(s, 1, 10).metrics.hypercallWaitMeanUs).toBeCloseTo((100 * 10 + 300 * 50) / 400, 9);
    expect(sampleFromSummary(summary([guest()]), 1, 10).metrics.hypercallWaitMeanUs).toBeNull();
  });
  it("prints a line per run with each guest's median, p99 and mean, and says when threads are in it", () => {
    const s = summary([guest({ hypercallWait: wait(100, 10) })]);
    expect(formatSummary(s)).toContain("hypercall wait as each vCPU saw it (1 trap in 16 timed): g0 median <=8.0 µs, p99 <=64 µs, mean 10 µs (100 timed)");
    expect(formatSummary({ ...s, threads: true })).toContain("(1 trap in 16 timed, the crossing between threads included)");
    expect(formatSummary(summary([guest()]))).not.toContain("hypercall wait");
  });
});

describe("the bench chart", () => {
  it("has a group for the store's pages per frame, printed with two decimals", async () => {
    const { CHART_GROUPS, compactNumber } = await import("../../cli/chart.ts");
    expect(CHART_GROUPS.map((g) => g.key)).toContain("storePagesPerFrame");
    expect(compactNumber(1.8412, "x")).toBe("1.84");
    expect(compactNumber(1, "x")).toBe("1.00");
  });
});
