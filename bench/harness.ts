/**
 * The benchmark harness: what a benchmark is, how its samples are summarised and printed. Benchmarks
 * live one per file next to this one and are listed in index.ts.
 */

export interface BenchOptions {
  /** Samples per measurement (each sample is one timed run of at least `minSampleMs`). */
  repeats: number;
  minSampleMs: number;
}

/** One measured quantity: `samples` are rates (or values) in `unit`, one per repeat. */
export interface Measurement {
  name: string;
  unit: string;
  samples: number[];
}

/** A number derived from the medians of measurements (a ratio, a target check). */
export interface Derived {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

export interface BenchResult {
  measurements: Measurement[];
  derived: Derived[];
}

export interface BenchDefinition {
  name: string;
  description: string;
  run(options: BenchOptions): BenchResult | Promise<BenchResult>;
}

export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Runs `round` (which does `opsPerRound` operations) repeatedly for at least `minMs` and returns
 * operations per second.
 */
export function rate(round: () => void, opsPerRound: number, minMs: number): number {
  let rounds = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    round();
    rounds++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (rounds * opsPerRound * 1000) / elapsed;
}

function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 1000) return Math.round(n).toLocaleString("en-US");
  return n.toPrecision(4);
}

/** A plain-text table: one row per measurement (median, min, max) and per derived value. */
export function formatTable(bench: string, result: BenchResult): string {
  const rows: string[][] = [["bench", "measurement", "median", "min", "max", "unit", "samples / note"]];
  for (const m of result.measurements) {
    rows.push([
      bench,
      m.name,
      formatNumber(median(m.samples)),
      formatNumber(Math.min(...m.samples)),
      formatNumber(Math.max(...m.samples)),
      m.unit,
      String(m.samples.length),
    ]);
  }
  for (const d of result.derived) {
    rows.push([bench, d.name, formatNumber(d.value), "", "", d.unit, d.note ?? ""]);
  }
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  const line = (r: string[]): string =>
    r.map((cell, col) => (col >= 2 && col <= 4 ? cell.padStart(widths[col]!) : cell.padEnd(widths[col]!))).join("  ");
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}
