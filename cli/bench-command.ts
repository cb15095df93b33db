/**
 * `tmemu bench`: flags to runBench, progress on stderr, Ctrl-C, the table on stdout, the JSON
 * (--json FILE) and the chart with its JSON (--out DIR: bench-<workload>.json, .svg and, when
 * @resvg/resvg-js loads, .png).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DedupMode } from "../hypervisor/tmem/store.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import type { WorkloadName } from "../workloads/builtin.ts";
import { defaultBudgetMib, planBenchConfigs, runBench, type BenchConfigName } from "./bench.ts";
import { formatBenchTable, invalidRunsText, type BenchDocument } from "./bench-report.ts";
import { benchChartSvg, renderPng } from "./chart.ts";
import { measureMemTotalMib, runGuests } from "./run.ts";
import { ensureImages, loadGuestImages } from "../guest-images/index.ts";
import { imagesKeyOf } from "../guest-images/snapshots.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { checkOutputDirFlag, checkOutputFileFlag, versionChoice, type VersionFlags } from "./options.ts";
import { checkUiFlags, LiveUi, type UiFlags } from "./ui/live.ts";
import { threadsFlag, type ThreadsMode } from "./threads.ts";

export interface BenchFlags extends VersionFlags, UiFlags {
  workload: WorkloadName;
  guests: number;
  memoryMib: number;
  budgetMib?: number;
  repeat: number;
  seed: number;
  phaseS?: number;
  diskLatencyUs: number;
  configs?: BenchConfigName[];
  /** The store's dedup mode in the tmem configurations (not tmem-raw). */
  dedup?: DedupMode;
  /** --threads on|off (default off). */
  threads?: ThreadsMode;
  /** --cold-boot: boot every guest instead of starting it from the boot snapshot. */
  coldBoot?: boolean;
  json?: string;
  out?: string;
}

/** The command line as a person would type it again (arguments with spaces quoted). */
export function commandLine(argv: readonly string[]): string {
  return ["tmemu", ...argv].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(" ");
}

/** Writes the --out files; returns the paths written and why there is no PNG, if there is none. */
export async function writeBenchOutputs(dir: string, doc: BenchDocument): Promise<{ written: string[]; pngMissing?: string }> {
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `bench-${doc.workload}`);
  const svg = benchChartSvg(doc);
  writeFileSync(`${base}.json`, `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(`${base}.svg`, svg);
  const written = [`${base}.json`, `${base}.svg`];
  const png = await renderPng(svg);
  if (png.png) {
    writeFileSync(`${base}.png`, png.png);
    written.push(`${base}.png`);
    return { written };
  }
  return { written, pngMissing: png.reason };
}

export async function benchCommand(flags: BenchFlags, argv: readonly string[] = process.argv.slice(2)): Promise<number> {
  if (flags.configs?.length === 0) throw new TmemuError("USAGE", "--configs needs at least one configuration", "for example --configs disk tmem");
  // Every flag is checked before the images are resolved (a cold cache builds for minutes);
  // --memory-mib and the numbers were checked as they were parsed (options.ts).
  planBenchConfigs({ guests: flags.guests, memoryMib: flags.memoryMib, budgetMib: flags.budgetMib ?? defaultBudgetMib(flags.guests, flags.memoryMib) }, flags.configs);
  if (flags.json) checkOutputFileFlag("--json", flags.json);
  if (flags.out) checkOutputDirFlag("--out", flags.out);
  checkUiFlags(flags);
  const versions = versionChoice(flags);
  const ui = await LiveUi.start(flags, "bench", commandLine(argv), (line) => process.stderr.write(`${line}\n`));
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write("\n[tmemu bench] stopping (Ctrl-C) after cleaning up the current run; the results so far follow\n");
    controller.abort();
  };
  process.once("SIGINT", onSigint);
  let doc: BenchDocument;
  // One set of images for every run of this invocation, resolved before the first.
  const set = await ensureImages({ progress: new StderrProgress(), ...versions });
  const images = loadGuestImages(set);
  // Every guest starts from the boot snapshot of its options (made by the first guest that needs it) unless --cold-boot.
  const from = { imagesKey: imagesKeyOf(set), ...(flags.coldBoot ? { coldBoot: true } : {}) };
  try {
    doc = await runBench(
      {
        workload: flags.workload,
        guests: flags.guests,
        memoryMib: flags.memoryMib,
        ...(flags.budgetMib !== undefined ? { budgetMib: flags.budgetMib } : {}),
        repeat: flags.repeat,
        seed: flags.seed,
        ...(flags.phaseS !== undefined ? { phaseS: flags.phaseS } : {}),
        diskLatencyUs: flags.diskLatencyUs,
        ...(flags.configs ? { configs: flags.configs } : {}),
        ...(flags.dedup !== undefined ? { dedup: flags.dedup } : {}),
        ...(flags.threads !== undefined ? { threads: threadsFlag(flags.threads) } : {}),
        commandLine: commandLine(argv),
        signal: controller.signal,
        log: (line) => process.stderr.write(`  ${line}\n`),
        progress: (line) => {
          process.stderr.write(`${line}\n`);
          ui?.benchProgress(line);
        },
      },
      {
        run: async (options) => {
          const summary = await runGuests({ ...options, images, ...from, ...ui?.runHooks(options) });
          ui?.runEnded(summary);
          return summary;
        },
        probe: (memoryMib) => measureMemTotalMib(images, memoryMib, from) },
    );
  } catch (err) {
    await ui?.close();
    throw err;
  } finally {
    process.off("SIGINT", onSigint);
  }
  process.stdout.write(formatBenchTable(doc));
  if (flags.json) writeFileSync(flags.json, `${JSON.stringify(doc, null, 2)}\n`);
  if (flags.out) {
    const { written, pngMissing } = await writeBenchOutputs(flags.out, doc);
    process.stderr.write(`[tmemu bench] wrote ${written.join(", ")}\n`);
    if (pngMissing) process.stderr.write(`[tmemu bench] no PNG: ${pngMissing}\n`);
  }
  const dataWrong = doc.runs.some((r) => (r.mismatches ?? 0) > 0 || r.filesCorrupt > 0);
  if (dataWrong) process.stderr.write("tmemu: data came back wrong in a guest (see mismatches / corrupt file sets above)\n");
  const invalid = doc.runs.filter((r) => r.invalidRuns > 0);
  if (invalid.length) process.stderr.write(`tmemu bench: invalid runs (left out of the numbers): ${invalid.map((r) => invalidRunsText(r)).join(" | ")}\n`);
  if (ui) {
    ui.benchEnded(doc);
    await ui.hold();
  }
  return benchExitCode(doc);
}

/** `tmemu bench`'s exit code: 1 when any run failed or was not valid (or data came back wrong), else 130 for Ctrl-C, else 0. */
export function benchExitCode(doc: BenchDocument): number {
  const dataWrong = doc.runs.some((r) => (r.mismatches ?? 0) > 0 || r.filesCorrupt > 0);
  const failed = doc.runs.some((r) => r.invalidRuns > 0);
  return dataWrong || failed ? 1 : doc.interrupted ? 130 : 0;
}
