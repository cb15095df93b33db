/**
 * `tmemu report FILE.json [--out DIR]`: the dashboard page, static, from a run document
 * (`tmemu run --json`) or a bench document (`tmemu bench --json`), as one self-contained file,
 * DIR/index.html: the data, the charting and terminal libraries and the styles are inlined; it
 * opens from disk and loads nothing from the network.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { formatBenchTable, type BenchDocument } from "./bench-report.ts";
import { benchChartSvg } from "./chart.ts";
import { checkOutputDirFlag } from "./options.ts";
import { formatSummary, type RunSummary } from "./run.ts";
import { pageHtml } from "./ui/bundle.ts";
import { runTimelineSvg } from "./ui/run-chart.ts";
import { emptyState, newRunView, runTitle, type UiState } from "./ui/state.ts";

export interface ReportFlags {
  out?: string;
}

function isRunSummary(v: Record<string, unknown>): boolean {
  return Array.isArray(v["guests"]) && typeof v["store"] === "object" && typeof v["policy"] === "string" && typeof v["totals"] === "object";
}

function isBenchDocument(v: Record<string, unknown>): boolean {
  return Array.isArray(v["runs"]) && typeof v["workload"] === "string" && typeof v["repeat"] === "number";
}

/** The page state of a run or bench document (`name`: the file's name, for the download link). */
export function reportState(doc: unknown, name: string): UiState {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new TmemuError("BAD_INPUT", `${name} is not a run or bench document (not a JSON object)`, "give the file `tmemu run --json` or `tmemu bench --json` wrote");
  const v = doc as Record<string, unknown>;
  const json = `${JSON.stringify(doc, null, 2)}\n`;
  if (isBenchDocument(v)) {
    const bench = normalizeBench(doc as BenchDocument);
    const state = emptyState("bench", false, false, `tmemu report ${name}`);
    const svg = benchChartSvg(bench);
    state.bench = {
      progress: [],
      runsDone: [],
      doc: bench,
      tableText: formatBenchTable(bench),
      svg,
      links: [
        { label: `JSON (${name})`, href: "", inline: json, mime: "application/json", filename: name },
        { label: `SVG (bench-${bench.workload}.svg)`, href: "", inline: svg, mime: "image/svg+xml", filename: `bench-${bench.workload}.svg` },
      ],
    };
    state.ended = true;
    return state;
  }
  if (isRunSummary(v)) {
    const s = doc as RunSummary;
    const state = emptyState("run", false, false, `tmemu report ${name}`);
    const guests = s.guests.map((g) => g.name);
    const run = newRunView(
      { title: runTitle({ guests: guests.length, memoryMib: s.memoryMib, budgetMib: s.budgetMib, policy: s.policy, workload: s.workload }), guests, memoryMib: s.memoryMib, budgetMib: s.budgetMib, policy: s.policy, workload: s.workload },
      "workload output (from the JSON; the whole serial console is on the live page only)",
    );
    run.samples = s.timeline?.samples ?? [];
    run.decisions = s.timeline?.decisions ?? [];
    for (const g of s.guests) run.consoles[g.name] = g.output;
    run.summary = s;
    run.summaryText = summaryTextOf(s);
    run.links = [{ label: `JSON (${name})`, href: "", inline: json, mime: "application/json", filename: name }];
    const svg = runTimelineSvg(s);
    const svgName = `${name.replace(/\.json$/i, "")}.svg`;
    if (svg) run.links.push({ label: `SVG (${svgName})`, href: "", inline: svg, mime: "image/svg+xml", filename: svgName });
    state.run = run;
    state.ended = true;
    return state;
  }
  throw new TmemuError("BAD_INPUT", `${name} is neither a run document nor a bench document`, "give the file `tmemu run --json` or `tmemu bench --json` wrote");
}

/** The CLI's summary; for a run document older than the current format, what it has (totals). */
function summaryTextOf(s: RunSummary): string {
  try {
    return formatSummary(s);
  } catch {
    return `this run document predates the current summary format (no validity or window in it); its totals:\n${JSON.stringify(s.totals, null, 2)}\n`;
  }
}

/**
 * A bench document written before the bench recorded setup and run validity (docs/measurements/
 * 2026-11-26 has some): the missing keys are filled in, and a note says that no run was judged.
 */
export function normalizeBench(doc: BenchDocument): BenchDocument {
  const d = doc as Partial<BenchDocument> & BenchDocument;
  const old = d.valid === undefined;
  const notes = [...(d.notes ?? [])];
  if (old) notes.push("this document predates run validity (no valid/reasons/invalidRuns in it): its runs were not judged; invalid runs are shown as 0");
  return {
    ...d,
    setup: d.setup ?? [],
    valid: d.valid ?? true,
    reasons: d.reasons ?? [],
    notes,
    warnings: d.warnings ?? [],
    targets: d.targets ?? [],
    runs: d.runs.map((r) => ({ ...r, invalidRuns: r.invalidRuns ?? 0, valid: r.valid ?? true, reasons: r.reasons ?? [], failures: r.failures ?? [], samples: r.samples ?? [] })),
  };
}

export async function reportCommand(file: string, flags: ReportFlags): Promise<number> {
  const out = flags.out ?? `${file.replace(/\.json$/i, "")}-report`;
  checkOutputDirFlag("--out", out);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new TmemuError("BAD_INPUT", `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, "give the path of a run or bench JSON file");
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new TmemuError("BAD_INPUT", `${file} is not JSON: ${(err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ")}`, "give the file `tmemu run --json` or `tmemu bench --json` wrote");
  }
  const state = reportState(doc, basename(file));
  const title = state.run?.meta.title ?? `tmemu bench: ${state.bench?.doc?.workload ?? ""}`;
  const html = await pageHtml(state, title);
  mkdirSync(out, { recursive: true });
  const index = join(out, "index.html");
  writeFileSync(index, html);
  process.stderr.write(`[tmemu] wrote ${resolve(index)} (${(html.length / 1024).toFixed(0)} KiB, self-contained)\n`);
  if (state.run && state.run.samples.length === 0) process.stderr.write(`[tmemu] ${file} has no timeline (written before runs recorded one): the page shows the summary only\n`);
  return 0;
}
