/**
 * A run's timeline as one SVG (the dashboard links to it at the end of a run, and `tmemu report`
 * offers it): a panel per guest (RAM not ballooned out, balloon, tmem ephemeral and persistent
 * pages, in MiB) and one for the store (budget and frames used, MiB), over the seconds of the
 * measurement window. Pure string building, no library.
 */
import { escapeXml } from "../chart.ts";
import type { RunSummary } from "../run.ts";
import type { TimelineSample } from "./timeline.ts";

const PAGES_PER_MIB = 256;
const W = 900;
const PANEL_H = 150;
const LEFT = 64;
const RIGHT = 190;
const TOP = 80;
const GAP = 50;

interface Line {
  label: string;
  colour: string;
  dash?: boolean;
  values: number[];
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panel(y0: number, title: string, ts: number[], lines: Line[], tMax: number): string {
  const plotW = W - LEFT - RIGHT;
  const yMax = niceMax(Math.max(1, ...lines.flatMap((l) => l.values)));
  const x = (t: number) => LEFT + (tMax > 0 ? (t / tMax) * plotW : 0);
  const y = (v: number) => y0 + PANEL_H - (v / yMax) * PANEL_H;
  const out: string[] = [`<text x="${LEFT}" y="${y0 - 8}" font-size="13" font-weight="600">${escapeXml(title)}</text>`];
  for (let k = 0; k <= 4; k++) {
    const v = (yMax * k) / 4;
    out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${LEFT - 6}" y="${(y(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${+v.toFixed(1)}</text>`);
  }
  out.push(`<text x="16" y="${y0 + PANEL_H / 2}" font-size="11" transform="rotate(-90 16 ${y0 + PANEL_H / 2})" text-anchor="middle">MiB</text>`);
  for (let k = 0; k <= 5; k++) {
    const t = (tMax * k) / 5;
    out.push(`<text x="${x(t).toFixed(1)}" y="${y0 + PANEL_H + 14}" font-size="11" text-anchor="middle">${t.toFixed(0)}</text>`);
  }
  out.push(`<line x1="${LEFT}" x2="${LEFT + plotW}" y1="${y0 + PANEL_H}" y2="${y0 + PANEL_H}" stroke="#444"/>`);
  out.push(`<text x="${LEFT + plotW + 8}" y="${y0 + PANEL_H + 14}" font-size="11">s</text>`);
  lines.forEach((l, i) => {
    const pts = l.values.map((v, j) => `${x(ts[j] ?? 0).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    out.push(`<polyline fill="none" stroke="${l.colour}" stroke-width="1.5"${l.dash ? ' stroke-dasharray="6 4"' : ""} points="${pts}"/>`);
    const ly = y0 + 10 + i * 16;
    const last = l.values[l.values.length - 1] ?? 0;
    out.push(`<line x1="${W - RIGHT + 14}" x2="${W - RIGHT + 30}" y1="${ly - 4}" y2="${ly - 4}" stroke="${l.colour}" stroke-width="2"${l.dash ? ' stroke-dasharray="4 3"' : ""}/>`);
    out.push(`<text x="${W - RIGHT + 36}" y="${ly}" font-size="11">${escapeXml(l.label)}: ${+last.toFixed(1)}</text>`);
  });
  return out.join("\n");
}

/** The SVG of a run's timeline; null when the summary has none. */
export function runTimelineSvg(s: RunSummary): string | null {
  const samples: TimelineSample[] = s.timeline?.samples ?? [];
  if (samples.length === 0) return null;
  const ts = samples.map((x) => x.t);
  const tMax = ts[ts.length - 1] ?? 0;
  const mib = (p: number) => p / PAGES_PER_MIB;
  const panels: string[] = [];
  const names = s.guests.map((g) => g.name);
  names.forEach((name, i) => {
    const col = (f: (g: TimelineSample["guests"][number]) => number) => samples.map((x) => {
      const g = x.guests.find((k) => k.name === name);
      return g ? f(g) : 0;
    });
    panels.push(
      panel(TOP + i * (PANEL_H + GAP), `${name}: memory (MiB)`, ts, [
        { label: "RAM not ballooned", colour: "#1f77b4", values: col((g) => g.ramMib - mib(g.balloonPages)) },
        { label: "balloon", colour: "#d62728", values: col((g) => mib(g.balloonPages)) },
        { label: "tmem ephemeral", colour: "#ff7f0e", values: col((g) => mib(g.tmemPagesEphemeral)) },
        { label: "tmem persistent", colour: "#9467bd", values: col((g) => mib(g.tmemPagesPersistent)) },
      ], tMax),
    );
  });
  panels.push(
    panel(TOP + names.length * (PANEL_H + GAP), "store: frames (MiB)", ts, [
      { label: "budget", colour: "#000000", dash: true, values: samples.map((x) => mib(x.store.budgetFrames)) },
      { label: "used", colour: "#2ca02c", values: samples.map((x) => mib(x.store.framesUsed)) },
    ], tMax),
  );
  const h = TOP + (names.length + 1) * (PANEL_H + GAP) + 10;
  const title = `tmemu run: ${s.guests.length} guests x ${s.memoryMib} MiB, budget ${s.budgetMib} MiB, policy ${s.policy}, workload ${s.workload}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="DejaVu Sans, Liberation Sans, sans-serif">`,
    `<rect width="${W}" height="${h}" fill="#ffffff"/>`,
    `<text x="${LEFT}" y="22" font-size="15" font-weight="700">${escapeXml(title)}</text>`,
    `<text x="${LEFT}" y="38" font-size="11" fill="#555">x: seconds since the window opened (workload start); legend: the value at the end of the window</text>`,
    ...panels,
    "</svg>",
    "",
  ].join("\n");
}
