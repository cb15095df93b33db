import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { planBenchConfigs } from "../../cli/bench.ts";
import { writeBenchOutputs } from "../../cli/bench-command.ts";
import { buildBenchDocument, sampleFromSummary } from "../../cli/bench-report.ts";
import { guest, summary } from "./bench-fixtures.ts";

const MEMORY = { guests: 1, memoryMib: 128, budgetMib: 192 };

describe("writeBenchOutputs (--out DIR)", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it("creates the folder and writes bench-<workload>.json and .svg, and .png or why not", async () => {
    const root = mkdtempSync(join(tmpdir(), "tmemu-bench-test-"));
    dirs.push(root);
    const out = join(root, "results", "today");
    const s = sampleFromSummary(summary([guest({ swapSectorsRead: 8, swapRequests: 1 })]), 1, 1.5);
    const doc = buildBenchDocument({
      workload: "swap",
      commandLine: "tmemu bench --workload swap --guests 1",
      memory: MEMORY,
      seed: 1,
      repeat: 1,
      diskLatencyUs: 100,
      configs: planBenchConfigs(MEMORY),
      samples: new Map([["disk", [s]]]),
      failures: [],
      interrupted: false,
      wallSeconds: 5,
      zswapMaxPoolPercent: 50,
    });
    const { written, pngMissing } = await writeBenchOutputs(out, doc);
    expect(written.slice(0, 2)).toEqual([join(out, "bench-swap.json"), join(out, "bench-swap.svg")]);
    const json = JSON.parse(readFileSync(join(out, "bench-swap.json"), "utf8")) as { workload: string; runs: { config: string; swapSectorsRead: unknown }[] };
    expect(json.workload).toBe("swap");
    expect(json.runs.map((r) => r.config)).toEqual(["disk", "zswap", "tmem", "tmem-raw"]);
    expect(json.runs[0]?.swapSectorsRead).toEqual({ median: 8, min: 8, max: 8 });
    expect(readFileSync(join(out, "bench-swap.svg"), "utf8")).toMatch(/^<svg [^>]*>[\s\S]*<\/svg>\n$/);
    if (pngMissing === undefined) {
      expect(written[2]).toBe(join(out, "bench-swap.png"));
      expect(readFileSync(join(out, "bench-swap.png")).subarray(1, 4).toString()).toBe("PNG");
    } else {
      expect(existsSync(join(out, "bench-swap.png"))).toBe(false);
      expect(pngMissing).toMatch(/resvg/);
    }
  });
});
