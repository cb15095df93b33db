/**
 * The chart of `tmemu bench --out`: a grouped bar chart, hand-written SVG (no dependency). One group
 * per main metric, one bar per configuration: the median, a min-max whisker, the absolute median
 * printed on the bar. Each group is scaled to its own largest value so that sectors and seconds share
 * one axis. PNG through @resvg/resvg-js when that optional package loads (renderPng), else none.
 */
import type { BenchConfigName } from "./bench.ts";
import type { BenchDocument, MetricKey, Stat } from "./bench-report.ts";

export interface ChartGroup {
  key: MetricKey;
  label: string;
  unit: "sectors" | "ops" | "s" | "x";
}

/** The main metrics of the chart, in order. */
export const CHART_GROUPS: readonly ChartGroup[] = [
  { key: "dataDiskSectorsRead", label: "data-disk sectors read", unit: "sectors" },
  { key: "swapSectorsRead", label: "swap sectors read", unit: "sectors" },
  { key: "swapSectorsWritten", label: "swap sectors written", unit: "sectors" },
  { key: "tmemGetHits", label: "tmem get hits", unit: "ops" },
  { key: "workloadSecondsSlowestGuest", label: "workload time, slowest guest", unit: "s" },
  { key: "storePagesPerFrame", label: "store pages per frame (at peak)", unit: "x" },
];

export const CONFIG_COLOURS: Record<BenchConfigName, string> = {
  disk: "#7f7f7f",
  zswap: "#e08a1e",
  tmem: "#2f6fd0",
  "tmem-raw": "#93b7ea",
  "tmem+selfballoon": "#2e9e4f",
};

export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&apos;");
}

/** Short absolute numbers for bar labels: 987, 12.3k, 4.56M, 45.2 s. */
export function compactNumber(v: number, unit: ChartGroup["unit"]): string {
  if (unit === "s") return `${v.toFixed(1)} s`;
  if (unit === "x") return v.toFixed(2);
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${(v / 1e3).toPrecision(3)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

const FONT = "DejaVu Sans, Arial, Helvetica, sans-serif";
const BAR_W = 34;
const BAR_GAP = 4;
const GROUP_GAP = 34;
/** Room for a group's label however few bars it has. */
const MIN_GROUP_PITCH = 200;
const LEFT = 64;
const RIGHT = 24;
const TOP = 96;
const PLOT_H = 260;
const BOTTOM = 86;

const r1 = (n: number) => Math.round(n * 10) / 10;

/** The SVG chart of a bench report. */
export function benchChartSvg(doc: BenchDocument): string {
  const runs = doc.runs;
  const n = Math.max(1, runs.length);
  const groupW = n * BAR_W + (n - 1) * BAR_GAP;
  const pitch = Math.max(MIN_GROUP_PITCH, groupW + GROUP_GAP);
  const width = LEFT + CHART_GROUPS.length * pitch + RIGHT;
  const height = TOP + PLOT_H + BOTTOM;
  const baseY = TOP + PLOT_H;
  const y = (fraction: number) => r1(baseY - fraction * PLOT_H);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<rect class="background" x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text class="title" x="${LEFT}" y="24" font-size="16" font-weight="bold">${escapeXml(
      `tmemu bench: workload ${doc.workload}, ${doc.guests} guests x ${doc.memoryMib} MiB, ${doc.budgetMib} MiB in all, ${doc.repeat} repeats${doc.interrupted ? " (interrupted)" : ""}`,
    )}</text>`,
    `<text class="command" x="${LEFT}" y="42" font-size="11" font-family="DejaVu Sans Mono, monospace" fill="#444444">${escapeXml(doc.command)}</text>`,
  );

  // legend
  let lx = LEFT;
  for (const r of runs) {
    const label = `${r.config} (${r.repeat} runs${r.invalidRuns ? `, ${r.invalidRuns} invalid left out` : ""})`;
    parts.push(
      `<rect class="legend" x="${lx}" y="56" width="12" height="12" fill="${CONFIG_COLOURS[r.config]}"/>`,
      `<text class="legend-label" x="${lx + 16}" y="66" font-size="12">${escapeXml(label)}</text>`,
    );
    lx += 16 + Math.ceil(label.length * 7.2) + 20;
  }

  // axis: 0..100% of each group's largest value
  for (const f of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line class="grid" x1="${LEFT}" y1="${y(f)}" x2="${width - RIGHT}" y2="${y(f)}" stroke="${f === 0 ? "#000000" : "#dddddd"}" stroke-width="1"/>`,
      `<text class="tick" x="${LEFT - 6}" y="${y(f) + 4}" font-size="10" text-anchor="end">${f * 100}%</text>`,
    );
  }
  parts.push(
    `<text class="axis-label" transform="translate(16 ${TOP + PLOT_H / 2}) rotate(-90)" font-size="11" text-anchor="middle">share of the group's largest value</text>`,
  );

  CHART_GROUPS.forEach((g, gi) => {
    const gx = LEFT + gi * pitch + (pitch - groupW) / 2;
    const stats = runs.map((r) => r[g.key]);
    const top = Math.max(0, ...stats.map((s) => (s ? Math.max(s.max, s.median) : 0)));
    const frac = (v: number) => (top > 0 ? Math.max(0, v) / top : 0);
    runs.forEach((r, i) => {
      const s: Stat | null = stats[i] ?? null;
      const x = r1(gx + i * (BAR_W + BAR_GAP));
      const cx = r1(x + BAR_W / 2);
      const h = s ? r1(frac(s.median) * PLOT_H) : 0;
      const label = s ? compactNumber(s.median, g.unit) : "n/a";
      parts.push(
        `<rect class="bar" data-config="${escapeXml(r.config)}" data-metric="${g.key}" x="${x}" y="${r1(baseY - h)}" width="${BAR_W}" height="${h}" fill="${CONFIG_COLOURS[r.config]}"><title>${escapeXml(
          s ? `${r.config}, ${g.label}: median ${s.median}, min ${s.min}, max ${s.max}` : `${r.config}, ${g.label}: not measured`,
        )}</title></rect>`,
      );
      let labelY = r1(baseY - h - 4);
      if (s && s.max > s.min) {
        const yMin = y(frac(s.min));
        const yMax = y(frac(s.max));
        parts.push(
          `<line class="whisker" x1="${cx}" y1="${yMin}" x2="${cx}" y2="${yMax}" stroke="#000000" stroke-width="1.2"/>`,
          `<line class="whisker-cap" x1="${r1(cx - 5)}" y1="${yMin}" x2="${r1(cx + 5)}" y2="${yMin}" stroke="#000000" stroke-width="1.2"/>`,
          `<line class="whisker-cap" x1="${r1(cx - 5)}" y1="${yMax}" x2="${r1(cx + 5)}" y2="${yMax}" stroke="#000000" stroke-width="1.2"/>`,
        );
        labelY = Math.min(labelY, r1(yMax - 4));
      }
      parts.push(`<text class="value" x="${cx}" y="${labelY}" font-size="10" text-anchor="middle">${escapeXml(label)}</text>`);
    });
    parts.push(
      `<text class="group-label" x="${r1(gx + groupW / 2)}" y="${baseY + 18}" font-size="12" text-anchor="middle">${escapeXml(g.label)}</text>`,
      `<text class="group-unit" x="${r1(gx + groupW / 2)}" y="${baseY + 32}" font-size="10" text-anchor="middle" fill="#555555">${escapeXml(
        g.unit === "s" ? "seconds" : g.unit === "sectors" ? "512-byte sectors" : "store ops",
      )}</text>`,
    );
  });

  parts.push(
    `<text class="footnote" x="${LEFT}" y="${height - 30}" font-size="10" fill="#444444">${escapeXml(
      "Bars: median over the valid repeats, whiskers: min to max; counts are summed over the guests; n/a: not measured (no tmem device, or no valid run).",
    )}</text>`,
    `<text class="footnote" x="${LEFT}" y="${height - 16}" font-size="10" fill="#444444">${escapeXml(
      "Each group is scaled to its own largest value; the numbers on the bars are absolute. Measured, not modelled.",
    )}</text>`,
    "</svg>",
  );
  return `${parts.join("\n")}\n`;
}

interface ResvgModule {
  Resvg: new (svg: string, opts?: { font?: { loadSystemFonts?: boolean; defaultFontFamily?: string }; fitTo?: { mode: "zoom"; value: number } }) => {
    render(): { asPng(): Uint8Array };
  };
}

/**
 * The chart as PNG, through the optional @resvg/resvg-js (prebuilt binaries from the npm registry);
 * `{png: undefined, reason}` when it does not load here.
 */
export async function renderPng(svg: string): Promise<{ png: Uint8Array; reason?: undefined } | { png: undefined; reason: string }> {
  const name = "@resvg/resvg-js";
  let mod: ResvgModule;
  try {
    mod = (await import(name)) as ResvgModule;
  } catch (err) {
    return { png: undefined, reason: `${name} did not load (${err instanceof Error ? err.message.split("\n")[0] : String(err)}); install it for PNG charts` };
  }
  try {
    const png = new mod.Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" }, fitTo: { mode: "zoom", value: 2 } }).render().asPng();
    return { png };
  } catch (err) {
    return { png: undefined, reason: `${name} could not render the chart: ${err instanceof Error ? err.message : String(err)}` };
  }
}
