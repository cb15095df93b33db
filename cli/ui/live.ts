/**
 * `--ui [PORT]` and `--ui-console ro|rw` for `tmemu run` and `tmemu bench`: starts the server
 * (server.ts), prints its URL, turns runGuests' hooks into page events, and after the run keeps the
 * page up until Ctrl-C (TMEMU_UI_EXIT=1: close at once, for scripts).
 */
import { basename } from "node:path";
import { TmemuError } from "../../hypervisor/user-errors.ts";
import type { BenchDocument } from "../bench-report.ts";
import { formatBenchTable } from "../bench-report.ts";
import { benchChartSvg } from "../chart.ts";
import { defaultBudgetMib } from "../bench.ts";
import { formatSummary, type RunOptions, type RunSummary } from "../run.ts";
import { runTimelineSvg } from "./run-chart.ts";
import { UiServer } from "./server.ts";
import { runTitle, type Link } from "./state.ts";

export interface UiFlags {
  /** --ui: true (a free port) or the port given. */
  ui?: boolean | number;
  /** --ui-console: "ro" (default) or "rw". */
  uiConsole?: string;
}

export const UI_CONSOLE_MODES = ["ro", "rw"] as const;

/** --ui's value: a port 0..65535 (0: a free one). */
export function parseUiPort(value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new TmemuError("USAGE", `--ui takes a port number, got "${value}"`, "for example --ui 8080, or --ui alone for a free port");
  const n = Number.parseInt(value, 10);
  if (n > 65535) throw new TmemuError("USAGE", `--ui must be a port between 0 and 65535, got ${n}`, "or give --ui alone for a free port");
  return n;
}

/** Checks the UI flags (before anything is built or booted). */
export function checkUiFlags(flags: UiFlags): void {
  if (flags.uiConsole !== undefined && flags.ui === undefined) throw new TmemuError("USAGE", "--ui-console goes with --ui", "add --ui, or drop --ui-console");
}

/** Console text is sent to the page in batches, at most this often. */
const CONSOLE_FLUSH_MS = 100;

export class LiveUi {
  private pending = new Map<string, string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private runNo = 0;

  private constructor(
    readonly server: UiServer,
    private readonly log: (line: string) => void,
  ) {}

  /** Starts the server when --ui was given; prints the URL on stderr. */
  static async start(flags: UiFlags, kind: "run" | "bench", source: string, log: (line: string) => void): Promise<LiveUi | undefined> {
    if (flags.ui === undefined) return undefined;
    const port = flags.ui === true ? 0 : flags.ui === false ? 0 : flags.ui;
    const server = await UiServer.start({ port, kind, consoleWritable: flags.uiConsole === "rw", source });
    log(`[tmemu] dashboard: ${server.url}  (127.0.0.1 only; the token in the URL is needed${flags.uiConsole === "rw" ? "; consoles read-write" : ""})`);
    return new LiveUi(server, log);
  }

  /** The hooks to give runGuests for one run (publishes the run's start). */
  runHooks(o: Pick<RunOptions, "guests" | "memoryMib" | "budgetMib" | "policy" | "workload">): Pick<RunOptions, "onSample" | "onConsole" | "onGuests"> {
    this.runNo++;
    const guests = Array.from({ length: o.guests }, (_, i) => `g${i}`);
    const budgetMib = o.budgetMib ?? defaultBudgetMib(o.guests, o.memoryMib);
    this.flush();
    this.server.publish({
      type: "run-start",
      meta: {
        title: runTitle({ guests: o.guests, memoryMib: o.memoryMib, budgetMib, policy: o.policy, workload: o.workload ?? "cmd" }),
        guests,
        memoryMib: o.memoryMib,
        budgetMib,
        policy: o.policy,
        workload: o.workload ?? "cmd",
      },
    });
    const run = this.runNo;
    return {
      onSample: (sample, events) => {
        this.flush();
        this.server.publish({ type: "sample", sample, events });
      },
      onConsole: (guest, text) => {
        if (run !== this.runNo) return;
        this.pending.set(guest, (this.pending.get(guest) ?? "") + text);
        this.flushTimer ??= setTimeout(() => this.flush(), CONSOLE_FLUSH_MS);
      },
      onGuests: (list) => {
        const byName = new Map(list.map((g) => [g.name, g]));
        this.server.onInput((guest, text) => byName.get(guest)?.sendInput(text));
      },
    };
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    for (const [guest, text] of this.pending) this.server.publish({ type: "console", guest, text });
    this.pending.clear();
  }

  /** The run is over: its summary and links (the JSON; the file --json names, if given). */
  runEnded(summary: RunSummary, jsonFile?: string): void {
    this.flush();
    this.server.onInput(undefined);
    const name = jsonFile ? basename(jsonFile) : `run-${this.runNo}.json`;
    const links: Link[] = [{ label: `JSON (${name})`, href: this.server.addFile(name, "application/json", `${JSON.stringify(summary, null, 2)}\n`) }];
    const svg = runTimelineSvg(summary);
    const svgName = name.replace(/\.json$/i, "") + ".svg";
    if (svg) links.push({ label: `SVG (${svgName})`, href: this.server.addFile(svgName, "image/svg+xml", svg) });
    this.server.publish({ type: "run-end", summary, summaryText: formatSummary(summary), links });
  }

  benchProgress(line: string): void {
    this.server.publish({ type: "bench-progress", line });
  }

  benchEnded(doc: BenchDocument): void {
    this.flush();
    const svg = benchChartSvg(doc);
    const links: Link[] = [
      { label: `JSON (bench-${doc.workload}.json)`, href: this.server.addFile(`bench-${doc.workload}.json`, "application/json", `${JSON.stringify(doc, null, 2)}\n`) },
      { label: `SVG (bench-${doc.workload}.svg)`, href: this.server.addFile(`bench-${doc.workload}.svg`, "image/svg+xml", svg) },
    ];
    this.server.publish({ type: "bench-end", doc, tableText: formatBenchTable(doc), svg, links });
  }

  /** Marks the end, then keeps the page up until Ctrl-C (or at once with TMEMU_UI_EXIT=1); closes the server. */
  async hold(): Promise<void> {
    this.flush();
    this.server.publish({ type: "end" });
    if (!process.env["TMEMU_UI_EXIT"]) {
      this.log(`[tmemu] the dashboard stays up at ${this.server.url} - Ctrl-C to exit`);
      await new Promise<void>((resolve) => process.once("SIGINT", () => resolve()));
    }
    await this.server.close();
  }

  async close(): Promise<void> {
    this.flush();
    await this.server.close();
  }
}
