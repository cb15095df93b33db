import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { planBenchConfigs, type BenchConfigName, type RunFailure } from "../../cli/bench.ts";
import { BENCH_METRICS, buildBenchDocument, type RepeatMetrics, type RepeatSample } from "../../cli/bench-report.ts";
import { CHART_GROUPS, benchChartSvg, compactNumber, escapeXml, renderPng } from "../../cli/chart.ts";

const MEMORY = { guests: 2, memoryMib: 128, budgetMib: 384 };

function sample(repeat: number, over: Partial<RepeatMetrics>, extra: Partial<RepeatSample> = {}): RepeatSample {
  const metrics = {} as RepeatMetrics;
  for (const { key } of BENCH_METRICS) metrics[key] = 0;
  return { repeat, metrics: { ...metrics, tmemGetHits: null, ...over }, mismatches: 0, filesCorrupt: 0, oomKills: 0, failedGuests: 0, valid: true, reasons: [], ...extra };
}

function doc(samples: Partial<Record<BenchConfigName, RepeatSample[]>>, commandLine = "tmemu bench --workload refault --guests 2", failures: RunFailure[] = []) {
  return buildBenchDocument({
    workload: "refault",
    commandLine,
    memory: MEMORY,
    seed: 1,
    repeat: 2,
    diskLatencyUs: 100,
    configs: planBenchConfigs(MEMORY, ["disk", "zswap", "tmem", "tmem+selfballoon"]),
    samples: new Map(Object.entries(samples) as [BenchConfigName, RepeatSample[]][]),
    failures,
    interrupted: false,
    wallSeconds: 100,
    zswapMaxPoolPercent: 50,
  });
}

const DOC = doc({
  disk: [sample(1, { dataDiskSectorsRead: 20000, swapSectorsRead: 100, workloadSecondsSlowestGuest: 40 }), sample(2, { dataDiskSectorsRead: 24000, swapSectorsRead: 100, workloadSecondsSlowestGuest: 44 })],
  zswap: [sample(1, { dataDiskSectorsRead: 21000, swapSectorsRead: 50, workloadSecondsSlowestGuest: 42 }), sample(2, { dataDiskSectorsRead: 21000, swapSectorsRead: 50, workloadSecondsSlowestGuest: 42 })],
  tmem: [sample(1, { dataDiskSectorsRead: 8000, tmemGetHits: 1500, workloadSecondsSlowestGuest: 30 }), sample(2, { dataDiskSectorsRead: 9000, tmemGetHits: 1700, workloadSecondsSlowestGuest: 31 })],
  "tmem+selfballoon": [sample(1, { dataDiskSectorsRead: 6000, tmemGetHits: 1900, workloadSecondsSlowestGuest: 29 }), sample(2, { dataDiskSectorsRead: 6000, tmemGetHits: 1900, workloadSecondsSlowestGuest: 29 })],
});
const SVG = benchChartSvg(DOC);

/** A tiny XML check: every tag closes in order, attributes are quoted, no stray '<' or '&'. */
function checkWellFormed(xml: string): string[] {
  const stack: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g;
  let last = 0;
  for (let m = tag.exec(xml); m; m = tag.exec(xml)) {
    const between = xml.slice(last, m.index);
    if (/[<>]/.test(between)) throw new Error(`stray angle bracket before offset ${m.index}: ${between.slice(0, 60)}`);
    if (/&(?!(amp|lt|gt|quot|apos);)/.test(between)) throw new Error(`unescaped & before offset ${m.index}`);
    last = m.index + m[0].length;
    const [, close, name, , selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open ?? "nothing"}>`);
    } else if (!selfClose) {
      stack.push(name!);
    }
  }
  if (xml.slice(last).trim() !== "") throw new Error("text after the root element");
  if (stack.length) throw new Error(`unclosed: ${stack.join(", ")}`);
  return stack;
}

const bars = (svg: string) => [...svg.matchAll(/<rect class="bar" data-config="([^"]+)" data-metric="(\w+)" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)"/g)];

describe("benchChartSvg", () => {
  it("is well-formed SVG: one root, balanced tags, quoted attributes", () => {
    expect(SVG.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(checkWellFormed(SVG)).toEqual([]);
  });
  it("the check itself rejects unbalanced tags and stray characters", () => {
    expect(() => checkWellFormed("<svg><g></svg>")).toThrow(/closes/);
    expect(() => checkWellFormed("<svg><text>a < b</text></svg>")).toThrow(/stray/);
    expect(() => checkWellFormed("<svg><text>a & b</text></svg>")).toThrow(/unescaped/);
  });
  it("draws one bar per metric and configuration, in the configuration's order", () => {
    const b = bars(SVG);
    expect(b).toHaveLength(CHART_GROUPS.length * 4);
    expect(b.slice(0, 4).map((m) => m[1])).toEqual(["disk", "zswap", "tmem", "tmem+selfballoon"]);
    expect(new Set(b.map((m) => m[2]))).toEqual(new Set(CHART_GROUPS.map((g) => g.key)));
  });
  it("scales each group to its largest value and keeps bar heights proportional to the medians", () => {
    const data = bars(SVG).filter((m) => m[2] === "dataDiskSectorsRead").map((m) => Number(m[4]));
    // medians 22000, 21000, 8500, 6000; the whisker top (disk's max, 24000) is the group's 100%
    expect(data[0]).toBeCloseTo((22000 / 24000) * 260, 0);
    expect(data[2]! / data[0]!).toBeCloseTo(8500 / 22000, 2);
  });
  it("prints the absolute medians on the bars, n/a where not measured, and a min-max whisker where they differ", () => {
    for (const label of ["22.0k", "21.0k", "8500", "6000", "1600", "1900", "42.0 s", "30.5 s"]) expect(SVG).toContain(`>${label}</text>`);
    expect(SVG.match(/>n\/a<\/text>/g)).toHaveLength(2);
    expect(SVG).toContain('class="whisker"');
  });
  it("has a legend with every configuration and a title with the workload and the command line", () => {
    for (const c of ["disk", "zswap", "tmem", "tmem+selfballoon"]) expect(SVG).toContain(`>${c} (2 runs)</text>`);
    const failed = doc({ disk: [sample(1, {}), sample(2, {}, { valid: false, reasons: ["g0: OOM-killed (1 kill)"] })], zswap: [], tmem: [], "tmem+selfballoon": [] }, "x", [
      { config: "disk", repeat: 2, message: "not valid: g0: OOM-killed (1 kill)", reasons: ["g0: OOM-killed (1 kill)"] },
    ]);
    expect(benchChartSvg(failed)).toContain(">disk (1 runs, 1 invalid left out)</text>");
    expect(SVG.match(/<rect class="legend"/g)).toHaveLength(4);
    expect(SVG).toContain("tmemu bench: workload refault, 2 guests x 128 MiB");
    expect(SVG).toContain(">tmemu bench --workload refault --guests 2</text>");
  });
  it("escapes what it prints", () => {
    const svg = benchChartSvg(doc({ disk: [], zswap: [], tmem: [], "tmem+selfballoon": [] }, "tmemu bench --out 'a&b<c>'"));
    expect(checkWellFormed(svg)).toEqual([]);
    expect(svg).toContain("--out &apos;a&amp;b&lt;c&gt;&apos;");
    expect(escapeXml(`<"&'>`)).toBe("&lt;&quot;&amp;&apos;&gt;");
  });
});

describe("compactNumber", () => {
  it("shortens large counts and prints seconds with one decimal", () => {
    expect(compactNumber(987, "sectors")).toBe("987");
    expect(compactNumber(12345, "sectors")).toBe("12.3k");
    expect(compactNumber(4_560_000, "ops")).toBe("4.56M");
    expect(compactNumber(45.24, "s")).toBe("45.2 s");
  });
});

describe("renderPng", () => {
  const hasResvg = (() => {
    try {
      createRequire(import.meta.url).resolve("@resvg/resvg-js");
      return true;
    } catch {
      return false;
    }
  })();
  it(hasResvg ? "renders the chart as PNG with @resvg/resvg-js" : "says why there is no PNG without @resvg/resvg-js", async () => {
    const r = await renderPng(SVG);
    if (hasResvg) {
      expect(r.png).toBeDefined();
      expect([...r.png!.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    } else {
      expect(r.png).toBeUndefined();
      expect(r.reason).toMatch(/@resvg\/resvg-js did not load/);
    }
  });
});
