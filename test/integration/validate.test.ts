/**
 * The kernel frontends end to end: what `tmemu validate` runs (swap integrity with an ample and a
 * nearly full store, cleancache against a guest without it, coherence after overwrite and
 * truncate, and the inert kernel without a device), in real guests with our patch series.
 */
import { describe, expect, it } from "vitest";
import { formatReport, validate } from "../../cli/validate.ts";

describe("tmemu validate (our patch series)", () => {
  it("passes every end-to-end check, with the numbers to show for it", { timeout: 3_600_000 }, async () => {
    const report = await validate({ memoryMib: 128, log: (l) => process.stderr.write(`${l}\n`) });
    process.stderr.write(formatReport(report));
    for (const r of report.results) expect.soft(r, `${r.name}: ${r.reason}`).toMatchObject({ pass: true });
    expect(report.results.map((r) => r.name)).toEqual(["swap", "swap-store-full", "cleancache", "coherence", "inert"]);
    const byName = Object.fromEntries(report.results.map((r) => [r.name, r.numbers]));
    expect(byName["swap"]?.["mismatches"]).toBe(0);
    expect(byName["swap-store-full"]?.["mismatches"]).toBe(0);
    expect(byName["inert"]?.["mismatches"]).toBe(0);
  });
});
