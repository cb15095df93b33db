/**
 * Benchmark runner: `npm run bench [-- [NAME...] [--only NAME] [--repeats N] [--min-ms MS] [--json FILE]]`
 * (a NAME given bare is the same as --only NAME).
 *
 * BENCHES is the registry: add a benchmark by writing bench/<name>.ts exporting a BenchDefinition
 * (harness.ts) and listing it here. Results print as a table (median, min, max of the samples);
 * --json writes { "benches": [{ "name", "description", "measurements": [{ "name", "unit",
 * "samples", "median" }], "derived": [{ "name", "value", "unit", "note"? }] }] } to FILE, plus the
 * top-level fields a bench returns in `top` (scaling: "speedup2", "hypercallRatio", "scaling").
 */

import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { reportError } from "../cli/errors.ts";
import { formatTable, median, type BenchDefinition, type BenchOptions, type BenchResult } from "./harness.ts";
import { guestHypercallBench } from "./guest-hypercalls.ts";
import { scalingBench } from "./scaling.ts";
import { storeBench } from "./store.ts";

export const BENCHES: readonly BenchDefinition[] = [storeBench, guestHypercallBench, scalingBench];

export async function main(argv: readonly string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      only: { type: "string", multiple: true },
      repeats: { type: "string", default: "5" },
      "min-ms": { type: "string", default: "300" },
      json: { type: "string" },
      list: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (values.list) {
    for (const b of BENCHES) console.log(`${b.name}\t${b.description}`);
    return;
  }
  const options: BenchOptions = { repeats: Number(values.repeats), minSampleMs: Number(values["min-ms"]) };
  if (!Number.isInteger(options.repeats) || options.repeats < 1) throw new Error("--repeats must be a positive integer");
  if (!(options.minSampleMs > 0)) throw new Error("--min-ms must be a positive number");
  const only = values.only || positionals.length > 0 ? [...(values.only ?? []), ...positionals] : undefined;
  const selected = only === undefined ? BENCHES : BENCHES.filter((b) => only.includes(b.name));
  const unknown = (only ?? []).filter((name) => !BENCHES.some((b) => b.name === name));
  if (unknown.length > 0) {
    throw new Error(`unknown bench ${unknown.join(", ")}; known: ${BENCHES.map((b) => b.name).join(", ")}`);
  }

  const report = [];
  let top: Record<string, unknown> = {};
  for (const bench of selected) {
    console.log(`# ${bench.name}: ${bench.description} (${options.repeats} x >= ${options.minSampleMs} ms)`);
    const result: BenchResult & { top?: Record<string, unknown> } = await bench.run(options);
    if (result.top) top = { ...top, ...result.top };
    console.log(formatTable(bench.name, result));
    console.log("");
    report.push({
      name: bench.name,
      description: bench.description,
      measurements: result.measurements.map((m) => ({ ...m, median: median(m.samples) })),
      derived: result.derived,
    });
  }
  if (values.json !== undefined) {
    writeFileSync(values.json, `${JSON.stringify({ ...top, benches: report }, null, 2)}\n`);
    console.log(`wrote ${values.json}`);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.exitCode = reportError(error);
  });
}
