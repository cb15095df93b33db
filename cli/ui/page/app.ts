/// <reference lib="dom" />
/**
 * The dashboard page (runs in the browser; bundled by ../bundle.ts with esbuild, uPlot and xterm
 * inlined). It reads the state inlined in the page (#tmemu-data); a live page then follows the
 * server's events (/events, server-sent events) and applies them with the same applyEvent as the
 * server. Charts: uPlot; consoles: @xterm/xterm.
 *
 * Every value shown in a "now" table carries data-key and data-value (the raw number), so a test can
 * read back what the page shows and compare it with the run's JSON. window.tmemu exposes the state
 * and the terminals for the same reason.
 */
import uPlot from "uplot";
import { Terminal } from "@xterm/xterm";
import { applyEvent, type Link, type RunView, type UiEvent, type UiState } from "../state.ts";
import type { TimelineGuest, TimelineSample } from "../timeline.ts";

const PAGES_PER_MIB = 256;
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"];

declare global {
  interface Window {
    tmemu: { state: UiState; terminals: Record<string, Terminal>; renders: number };
  }
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

const mib = (pages: number) => pages / PAGES_PER_MIB;
const fmtMib = (pages: number) => mib(pages).toFixed(1);

interface ChartSpec {
  title: string;
  yLabel: string;
  series: { label: string; colour: string; stepped?: boolean; dash?: boolean }[];
  data: (v: RunView) => (number | null)[][];
}

interface LiveChart {
  spec: ChartSpec;
  plot: uPlot;
  box: HTMLElement;
}

function guestOf(s: TimelineSample, name: string): TimelineGuest | undefined {
  return s.guests.find((g) => g.name === name);
}

function guestCharts(name: string): ChartSpec[] {
  const col = (f: (g: TimelineGuest) => number | null) => (v: RunView) => v.samples.map((s) => {
    const g = guestOf(s, name);
    return g ? f(g) : null;
  });
  return [
    {
      title: `${name}: memory`,
      yLabel: "MiB",
      series: [
        { label: "RAM not ballooned", colour: COLOURS[0]! },
        { label: "balloon", colour: COLOURS[1]! },
        { label: "balloon target", colour: COLOURS[1]!, dash: true, stepped: true },
        { label: "MemAvailable", colour: COLOURS[2]! },
        { label: "tmem ephemeral", colour: COLOURS[3]! },
        { label: "tmem persistent", colour: COLOURS[4]! },
      ],
      data: (v) => [
        col((g) => g.ramMib - mib(g.balloonPages))(v),
        col((g) => mib(g.balloonPages))(v),
        col((g) => mib(g.balloonTargetPages))(v),
        col((g) => g.memAvailableMib)(v),
        col((g) => mib(g.tmemPagesEphemeral))(v),
        col((g) => mib(g.tmemPagesPersistent))(v),
      ],
    },
    {
      title: `${name}: tmem operations (since the window opened)`,
      yLabel: "pages",
      series: [
        { label: "puts", colour: COLOURS[0]! },
        { label: "get hits", colour: COLOURS[2]! },
        { label: "get misses", colour: COLOURS[1]! },
        { label: "refused puts", colour: COLOURS[7]! },
      ],
      data: (v) => [col((g) => g.tmemPuts)(v), col((g) => g.tmemGetHits)(v), col((g) => g.tmemGets - g.tmemGetHits)(v), col((g) => g.tmemPutsRefused)(v)],
    },
    {
      title: `${name}: disk I/O (since the window opened)`,
      yLabel: "sectors (512 B)",
      series: [
        { label: "data disk read", colour: COLOURS[5]! },
        { label: "swap read", colour: COLOURS[3]! },
        { label: "swap written", colour: COLOURS[4]! },
      ],
      data: (v) => [col((g) => g.dataSectorsRead)(v), col((g) => g.swapSectorsRead)(v), col((g) => g.swapSectorsWritten)(v)],
    },
  ];
}

function storeCharts(v: RunView): ChartSpec[] {
  // Store clients are named after their guests; any other client seen in the samples comes after them.
  const clients = [...new Set([...v.meta.guests, ...v.samples.flatMap((s) => s.store.clients.map((c) => c.name))])];
  return [
    {
      title: "store: frames used vs budget, by client",
      yLabel: "MiB",
      series: [
        { label: "budget", colour: "#000000", stepped: true, dash: true },
        { label: "used", colour: COLOURS[0]! },
        ...clients.map((c, i) => ({ label: `${c} frames`, colour: COLOURS[(i + 2) % COLOURS.length]! })),
      ],
      data: (view) => [
        view.samples.map((s) => mib(s.store.budgetFrames)),
        view.samples.map((s) => mib(s.store.framesUsed)),
        ...clients.map((c) => view.samples.map((s) => {
          const x = s.store.clients.find((k) => k.name === c);
          return x ? mib(x.framesInUse) : null;
        })),
      ],
    },
    {
      title: "store: evictions and refused puts (since the store was created)",
      yLabel: "pages",
      series: [
        { label: "evictions", colour: COLOURS[1]! },
        { label: "refused puts", colour: COLOURS[7]! },
      ],
      data: (view) => [view.samples.map((s) => s.store.evictions), view.samples.map((s) => s.store.putsRefused)],
    },
  ];
}

function policyChart(v: RunView): ChartSpec {
  return {
    title: "policy: balloon targets and store budget",
    yLabel: "MiB",
    series: [
      ...v.meta.guests.map((g, i) => ({ label: `${g} balloon target`, colour: COLOURS[i % COLOURS.length]!, stepped: true })),
      { label: "store budget", colour: "#000000", stepped: true, dash: true },
    ],
    data: (view) => [
      ...view.meta.guests.map((g) => view.samples.map((s) => {
        const x = guestOf(s, g);
        return x ? mib(x.balloonTargetPages) : null;
      })),
      view.samples.map((s) => mib(s.store.budgetFrames)),
    ],
  };
}

function makeChart(parent: HTMLElement, spec: ChartSpec, view: RunView, height: number): LiveChart {
  const box = el("div", { class: "chart", "data-chart": spec.title });
  parent.append(box);
  const width = Math.max(240, box.clientWidth || parent.clientWidth || 400);
  const opts: uPlot.Options = {
    title: spec.title,
    width,
    height,
    cursor: { drag: { x: true, y: false } },
    legend: { live: true },
    scales: { x: { time: false } },
    axes: [
      { label: "seconds since the window opened", labelSize: 18, size: 36 },
      { label: spec.yLabel, labelSize: 18, size: 62, values: (_u, ticks) => ticks.map(compact) },
    ],
    series: [
      { label: "t (s)", value: (u, x, _si, idx) => (idx == null ? `${fmtValue(lastOf(u.data[0]))} (latest)` : x == null ? "-" : x.toFixed(0)) },
      ...spec.series.map((s) => ({
        label: s.label,
        stroke: s.colour,
        width: 1.5,
        ...(s.dash ? { dash: [6, 4] } : {}),
        ...(s.stepped ? { paths: uPlot.paths.stepped!({ align: 1 }) } : {}),
        // Without the cursor on the chart, the legend shows the latest value.
        value: (u: uPlot, x: number | null, si: number, idx: number | null) => fmtValue(idx == null ? lastOf(u.data[si]) : x),
      })),
    ],
  };
  const plot = new uPlot(opts, chartData(spec, view), box);
  return { spec, plot, box };
}

function lastOf(a: ArrayLike<number | null | undefined> | undefined): number | null {
  if (!a || a.length === 0) return null;
  return a[a.length - 1] ?? null;
}

function fmtValue(x: number | null): string {
  return x == null ? "-" : Number.isInteger(x) ? String(x) : x.toFixed(1);
}

/** Axis ticks: 1.5k, 200k, 1.2M. */
function compact(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toFixed(0)}k`;
  if (a >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(1));
}

function chartData(spec: ChartSpec, view: RunView): uPlot.AlignedData {
  return [view.samples.map((s) => s.t), ...spec.data(view)] as uPlot.AlignedData;
}

function nowCell(key: string, value: number | null, text?: string, attrs: Record<string, string> = {}): HTMLTableCellElement {
  return el("td", { "data-key": key, "data-value": value === null ? "" : String(value), ...attrs }, value === null ? "-" : (text ?? String(value)));
}

const GUEST_COLUMNS: { key: keyof TimelineGuest | "tmemGetMisses"; head: string; unit?: "mib" }[] = [
  { key: "balloonPages", head: "balloon (pages)" },
  { key: "memAvailableMib", head: "MemAvailable (MiB)" },
  { key: "tmemPagesEphemeral", head: "tmem eph (pages)" },
  { key: "tmemPagesPersistent", head: "tmem pers (pages)" },
  { key: "tmemPuts", head: "puts" },
  { key: "tmemGetHits", head: "hits" },
  { key: "tmemGetMisses", head: "misses" },
  { key: "tmemPutsRefused", head: "refused" },
  { key: "dataSectorsRead", head: "data rd (sect)" },
  { key: "swapSectorsRead", head: "swap rd (sect)" },
  { key: "swapSectorsWritten", head: "swap wr (sect)" },
];

function guestNowRow(name: string, g: TimelineGuest | undefined): HTMLTableRowElement {
  const tr = el("tr", { "data-guest": name });
  tr.append(el("th", {}, name));
  tr.append(nowCell("ramInUseMib", g ? g.ramMib - mib(g.balloonPages) : null, g ? (g.ramMib - mib(g.balloonPages)).toFixed(1) : undefined));
  for (const c of GUEST_COLUMNS) {
    const v = !g ? null : c.key === "tmemGetMisses" ? g.tmemGets - g.tmemGetHits : (g[c.key] as number | null);
    tr.append(nowCell(c.key, v));
  }
  return tr;
}

class Dashboard {
  private state: UiState;
  private charts: LiveChart[] = [];
  private terminals: Record<string, Terminal> = {};
  private runKey: RunView | null = null;
  private dirty = true;
  private readonly root = el("main");

  constructor(state: UiState) {
    this.state = state;
    document.body.append(this.root);
    window.tmemu = { state, terminals: this.terminals, renders: 0 };
    this.rebuild();
    setInterval(() => this.render(), 400);
    window.addEventListener("resize", () => {
      for (const c of this.charts) c.plot.setSize({ width: Math.max(240, c.box.clientWidth), height: c.plot.height });
    });
  }

  replace(state: UiState): void {
    this.state = state;
    window.tmemu.state = state;
    this.rebuild();
  }

  apply(ev: UiEvent): void {
    const before = this.state.run;
    applyEvent(this.state, ev);
    if (this.state.run !== before) {
      this.rebuild();
      return;
    }
    if (ev.type === "console") this.terminals[ev.guest]?.write(ev.text);
    if (ev.type === "run-end" || ev.type === "bench-end" || ev.type === "end") {
      this.rebuild();
      return;
    }
    this.dirty = true;
  }

  private rebuild(): void {
    for (const c of this.charts) c.plot.destroy();
    this.charts = [];
    for (const t of Object.values(this.terminals)) t.dispose();
    for (const k of Object.keys(this.terminals)) delete this.terminals[k];
    this.root.replaceChildren();
    const s = this.state;
    this.runKey = s.run;
    this.root.append(this.header());
    if (s.bench) this.benchSection();
    if (s.run) {
      const run = s.run;
      this.summarySection(run);
      this.guestsSection(run);
      this.storeSection(run);
      this.policySection(run);
    }
    this.dirty = true;
    this.render();
  }

  private header(): HTMLElement {
    const s = this.state;
    // A bench's page is the bench's; the run below it is its current (at the end: its last) run.
    const benchTitle = s.bench?.doc ? `tmemu bench: workload ${s.bench.doc.workload}` : "tmemu bench";
    const title = s.kind === "bench" ? benchTitle : (s.run?.meta.title ?? "tmemu run");
    const status = s.ended ? "finished" : s.live ? "live" : "report";
    document.title = title;
    return el(
      "header",
      {},
      el("h1", {}, title),
      el("div", { id: "status", "data-status": status }, ""),
      el("div", { class: "source" }, s.source),
      ...(s.kind === "bench" && s.run ? [el("div", { class: "source", id: "current-run" }, `${s.ended ? "last run" : "current run"}: ${s.run.meta.title}`)] : []),
    );
  }

  private summarySection(run: RunView): void {
    if (!run.summaryText) return;
    const sec = el("section", { id: "summary" });
    this.root.append(sec);
    const valid = run.summary?.valid ?? false;
    sec.append(el("h2", {}, "summary (as the CLI prints it) ", el("span", { class: valid ? "ok" : "bad", id: "valid" }, valid ? "valid" : "NOT valid")));
    sec.append(el("pre", { id: "summary-text" }, run.summaryText));
    sec.append(linksOf(run.links));
  }

  private guestsSection(run: RunView): void {
    const sec = el("section", { id: "guests" });
    this.root.append(sec);
    sec.append(el("h2", {}, "guests"));
    const table = el("table", { class: "now", id: "guest-now" });
    const head = el("tr", {}, el("th", {}, "guest"), el("th", {}, "RAM in use (MiB)"), ...GUEST_COLUMNS.map((c) => el("th", {}, c.head)));
    table.append(el("thead", {}, head), el("tbody"));
    sec.append(el("p", { class: "note" }, "Latest sample; counters count since the window opened (workload start), as in the JSON."), table);
    for (const name of run.meta.guests) {
      const card = el("div", { class: "guest", "data-guest": name });
      sec.append(card);
      for (const spec of guestCharts(name)) this.charts.push(makeChart(card, spec, run, 220));
      const con = el("div", { class: "console" });
      card.append(con);
      const writable = this.state.consoleWritable && this.state.live;
      con.append(el("h3", {}, `${name}: ${run.consoleSource}${this.state.live ? (writable ? " (read-write: typing goes to the guest)" : " (read-only)") : ""}`));
      const box = el("div", { class: "term", "data-console": name });
      con.append(box);
      const cols = Math.max(40, Math.floor((con.clientWidth || 560) / 7.3));
      const term = new Terminal({ convertEol: true, disableStdin: !writable, rows: 13, cols, fontSize: 12, scrollback: 5000, fontFamily: "DejaVu Sans Mono, Liberation Mono, monospace" });
      term.open(box);
      term.write(run.consoles[name] ?? "");
      if (writable) {
        term.onData((d) => {
          void fetch(`input?guest=${encodeURIComponent(name)}`, { method: "POST", body: d, headers: { "content-type": "text/plain" } });
        });
      }
      this.terminals[name] = term;
    }
  }

  private storeSection(run: RunView): void {
    const sec = el("section", { id: "store" });
    this.root.append(sec);
    sec.append(el("h2", {}, "tmem store"));
    sec.append(el("table", { class: "now", id: "store-now" }), el("div", { class: "pair", id: "store-charts" }), el("table", { class: "now", id: "pools" }));
    const pair = sec.querySelector("#store-charts") as HTMLElement;
    for (const spec of storeCharts(run)) this.charts.push(makeChart(pair, spec, run, 240));
  }

  private policySection(run: RunView): void {
    const sec = el("section", { id: "policy" });
    this.root.append(sec);
    sec.append(el("h2", {}, `policy ${run.meta.policy}: decisions`));
    const pair = el("div", { class: "pair" });
    sec.append(pair);
    this.charts.push(makeChart(pair, policyChart(run), run, 260));
    const box = el("div", { class: "events" });
    box.append(el("table", { class: "now", id: "decisions" }));
    pair.append(box);
  }

  private benchSection(): void {
    const b = this.state.bench!;
    const sec = el("section", { id: "bench" });
    this.root.append(sec);
    sec.append(el("h2", {}, "bench"));
    if (b.tableText) {
      if (b.svg) {
        const fig = el("div", { class: "svg", id: "bench-chart" });
        fig.innerHTML = b.svg;
        sec.append(fig);
      }
      sec.append(el("h3", {}, "the CLI's table"), el("pre", { id: "bench-table" }, b.tableText));
      sec.append(linksOf(b.links));
    } else {
      sec.append(el("pre", { id: "bench-progress" }, b.progress.slice(-1).join("\n")));
    }
    if (b.runsDone.length) sec.append(el("details", {}, el("summary", {}, `runs done: ${b.runsDone.length}`), el("pre", {}, b.runsDone.join("\n"))));
  }

  private render(): void {
    if (!this.dirty) return;
    this.dirty = false;
    window.tmemu.renders++;
    const s = this.state;
    const run = s.run;
    const last = run?.samples[run.samples.length - 1];
    const status = document.getElementById("status");
    if (status) {
      status.dataset["status"] = s.ended ? "finished" : s.live ? "live" : "report";
      const what = s.ended ? "finished" : s.live ? "live" : "static report";
      status.textContent = `${what}${last ? ` · t = ${last.t.toFixed(0)} s · ${run!.samples.length} samples` : ""}`;
    }
    document.body.dataset["samples"] = String(run?.samples.length ?? 0);
    document.body.dataset["ended"] = String(s.ended);
    if (s.bench && !s.bench.tableText) {
      const p = document.getElementById("bench-progress");
      if (p) p.textContent = s.bench.progress.slice(-1).join("\n");
    }
    if (!run || run !== this.runKey) return;
    for (const c of this.charts) c.plot.setData(chartData(c.spec, run));
    const tbody = document.querySelector("#guest-now tbody");
    if (tbody) tbody.replaceChildren(...run.meta.guests.map((g) => guestNowRow(g, last ? guestOf(last, g) : undefined)));
    const st = document.getElementById("store-now");
    if (st && last) {
      const m = last.store;
      st.replaceChildren(
        el("tr", {}, ...["budget (frames)", "used (frames)", "used / budget (MiB)", "ephemeral pages", "persistent pages", "evictions", "refused puts"].map((h) => el("th", {}, h))),
        el(
          "tr",
          {},
          nowCell("budgetFrames", m.budgetFrames),
          nowCell("framesUsed", m.framesUsed),
          el("td", {}, `${fmtMib(m.framesUsed)} / ${fmtMib(m.budgetFrames)}`),
          nowCell("pagesEphemeral", m.pagesEphemeral),
          nowCell("pagesPersistent", m.pagesPersistent),
          nowCell("evictions", m.evictions),
          nowCell("putsRefused", m.putsRefused),
        ),
      );
      const pools = document.getElementById("pools");
      pools?.replaceChildren(
        el("tr", {}, ...["pool (owner / id)", "kind", "shared", "pages", "frames"].map((h) => el("th", {}, h))),
        ...m.pools.map((p) =>
          el("tr", { "data-pool": `${p.owner}/${p.poolId}` }, el("td", {}, `${p.owner} / ${p.poolId}`), el("td", {}, p.persistent ? "persistent" : "ephemeral"), el("td", {}, p.shared ? "shared" : "private"), nowCell("pages", p.pages), nowCell("framesInUse", p.framesInUse)),
        ),
      );
    }
    const dec = document.getElementById("decisions");
    if (dec) {
      const rows = run.decisions.slice(-300).reverse();
      dec.replaceChildren(
        el("tr", {}, ...["t (s)", "what", "from (MiB)", "to (MiB)", "reason"].map((h) => el("th", {}, h))),
        ...rows.map((d) => el("tr", {}, el("td", {}, d.t.toFixed(0)), el("td", {}, d.target === "store" ? "store budget" : `${d.target} balloon target`), el("td", {}, fmtMib(d.from)), el("td", {}, fmtMib(d.to)), el("td", {}, d.reason))),
      );
      if (run.decisions.length === 0) dec.append(el("tr", {}, el("td", { colspan: "5" }, "no change yet")));
    }
  }
}

function linksOf(links: Link[]): HTMLElement {
  const p = el("p", { class: "links" });
  for (const l of links) {
    let href = l.href;
    if (!href && l.inline !== undefined) href = URL.createObjectURL(new Blob([l.inline], { type: l.mime ?? "application/octet-stream" }));
    const a = el("a", { href, ...(l.filename ? { download: l.filename } : {}), target: "_blank" }, l.label);
    p.append(a, " ");
  }
  return p;
}

function start(): void {
  const data = document.getElementById("tmemu-data");
  const state = JSON.parse(data?.textContent ?? "{}") as UiState;
  const dash = new Dashboard(state);
  if (!state.live) return;
  const es = new EventSource("events");
  es.addEventListener("state", (e) => dash.replace(JSON.parse((e as MessageEvent<string>).data) as UiState));
  es.addEventListener("ui", (e) => dash.apply(JSON.parse((e as MessageEvent<string>).data) as UiEvent));
}

start();
