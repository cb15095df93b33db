/**
 * What the dashboard page shows, and the events that change it. The live server (server.ts) keeps
 * one UiState, applies every event to it and forwards the event to the open pages (server-sent
 * events); a page that opens late gets the state so far first. `tmemu report` builds the final
 * state from a run or bench JSON and inlines it. The page (page/app.ts) applies the same events
 * with the same function, so live and static pages show the same thing.
 *
 * Pure; imported by the page too (no Node imports here).
 */
import type { BenchDocument } from "../bench-report.ts";
import type { RunSummary } from "../run.ts";
import type { PolicyEvent, TimelineSample } from "./timeline.ts";

export interface RunMeta {
  /** "tmemu run: 3 guests x 128 MiB, budget 576 MiB, policy selfballoon, workload phased". */
  title: string;
  guests: string[];
  memoryMib: number;
  /** null: the default of the run, known with the summary. */
  budgetMib: number | null;
  policy: string;
  workload: string;
}

export interface Link {
  label: string;
  /** A path on the live server; empty for a static page, which offers `inline` as a download. */
  href: string;
  /** The file's content, for a static page (downloaded from a blob, no network). */
  inline?: string;
  mime?: string;
  filename?: string;
}

export interface RunView {
  meta: RunMeta;
  samples: TimelineSample[];
  decisions: PolicyEvent[];
  /** Serial console text so far, per guest (its tail, CONSOLE_KEEP_CHARS at most). */
  consoles: Record<string, string>;
  /** Where the console text comes from ("serial console", or the workload output of a report). */
  consoleSource: string;
  summary: RunSummary | null;
  /** formatSummary(summary): the CLI's summary, word for word. */
  summaryText: string | null;
  links: Link[];
}

export interface BenchView {
  progress: string[];
  /** Runs done so far, one line each. */
  runsDone: string[];
  doc: BenchDocument | null;
  /** formatBenchTable(doc). */
  tableText: string | null;
  /** benchChartSvg(doc). */
  svg: string | null;
  links: Link[];
}

export interface UiState {
  kind: "run" | "bench";
  /** Served live (updates arrive) or a static report. */
  live: boolean;
  /** Typing into the consoles is allowed (--ui-console rw). */
  consoleWritable: boolean;
  /** The run or bench is over (the page stays readable). */
  ended: boolean;
  /** The current run (a bench's current run). */
  run: RunView | null;
  bench: BenchView | null;
  /** What made this page ("tmemu run --ui", "tmemu report FILE"). */
  source: string;
}

export type UiEvent =
  | { type: "run-start"; meta: RunMeta }
  | { type: "sample"; sample: TimelineSample; events: PolicyEvent[] }
  | { type: "console"; guest: string; text: string }
  | { type: "run-end"; summary: RunSummary; summaryText: string; links: Link[] }
  | { type: "bench-progress"; line: string }
  | { type: "bench-end"; doc: BenchDocument; tableText: string; svg: string; links: Link[] }
  | { type: "end" };

/** Console text kept per guest (the tail). */
export const CONSOLE_KEEP_CHARS = 256 * 1024;

export function emptyState(kind: UiState["kind"], live: boolean, consoleWritable: boolean, source: string): UiState {
  return { kind, live, consoleWritable, ended: false, run: null, bench: kind === "bench" ? { progress: [], runsDone: [], doc: null, tableText: null, svg: null, links: [] } : null, source };
}

export function newRunView(meta: RunMeta, consoleSource = "serial console"): RunView {
  return { meta, samples: [], decisions: [], consoles: Object.fromEntries(meta.guests.map((g) => [g, ""])), consoleSource, summary: null, summaryText: null, links: [] };
}

/** Applies one event to the state (in place) and returns it. */
export function applyEvent(state: UiState, ev: UiEvent): UiState {
  switch (ev.type) {
    case "run-start":
      state.run = newRunView(ev.meta);
      break;
    case "sample":
      if (state.run) {
        state.run.samples.push(ev.sample);
        state.run.decisions.push(...ev.events);
      }
      break;
    case "console":
      if (state.run) {
        const text = (state.run.consoles[ev.guest] ?? "") + ev.text;
        state.run.consoles[ev.guest] = text.length > CONSOLE_KEEP_CHARS ? text.slice(-CONSOLE_KEEP_CHARS) : text;
      }
      break;
    case "run-end":
      if (state.run) {
        state.run.summary = ev.summary;
        state.run.summaryText = ev.summaryText;
        state.run.links = ev.links;
        if (ev.summary.budgetMib) state.run.meta.budgetMib = ev.summary.budgetMib;
      }
      if (state.bench) state.bench.runsDone.push(runLine(ev.summary));
      break;
    case "bench-progress":
      state.bench?.progress.push(ev.line);
      break;
    case "bench-end":
      if (state.bench) {
        state.bench.doc = ev.doc;
        state.bench.tableText = ev.tableText;
        state.bench.svg = ev.svg;
        state.bench.links = ev.links;
      }
      break;
    case "end":
      state.ended = true;
      break;
  }
  return state;
}

function runLine(s: RunSummary): string {
  return `${s.policy}, ${s.guests.length} guests: ${s.valid ? "valid" : `NOT valid (${s.reasons.join("; ")})`}, disk sectors ${s.totals.diskSectors}, window ${s.window.seconds.toFixed(1)} s`;
}

/** "tmemu run: 3 guests x 128 MiB, budget 576 MiB, policy selfballoon, workload phased". */
export function runTitle(m: { guests: number; memoryMib: number; budgetMib: number | null; policy: string; workload: string }): string {
  return `tmemu run: ${m.guests} guest${m.guests === 1 ? "" : "s"} x ${m.memoryMib} MiB, budget ${m.budgetMib === null ? "default" : `${m.budgetMib} MiB`}, policy ${m.policy}, workload ${m.workload}`;
}
