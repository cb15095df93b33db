/** `tmemu run`: flags to RunOptions, the live table on the terminal, Ctrl-C, the summary. */
import { ensureImages, loadGuestImages } from "../guest-images/index.ts";
import { imagesKeyOf } from "../guest-images/snapshots.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { createMemoryPolicy } from "../hypervisor/scheduler/policy.ts";
import type { DedupMode } from "../hypervisor/tmem/store.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { commandLine } from "./bench-command.ts";
import { checkFolderFlag, checkOutputFileFlag, versionChoice, type VersionFlags } from "./options.ts";
import { failedGuests, formatSummary, runExitCode, runGuests, writeSummaryJson } from "./run.ts";
import { checkUiFlags, LiveUi, type UiFlags } from "./ui/live.ts";
import { threadsFlag, type ThreadsMode } from "./threads.ts";

export interface RunFlags extends VersionFlags, UiFlags {
  guests: number;
  memoryMib: number;
  budgetMib?: number;
  policy: string;
  workload?: string;
  cmd?: string;
  files?: string;
  durationS?: number;
  seed: number;
  phaseS?: number;
  tmem: boolean;
  /** The store's compression (--no-compression) and --dedup mode. */
  compression?: boolean;
  dedup?: DedupMode;
  kernelArgs?: string;
  /** --threads on|off (default off). */
  threads?: ThreadsMode;
  /** --cold-boot: boot every guest instead of starting it from the boot snapshot. */
  coldBoot?: boolean;
  json?: string;
}

export async function runCommand(flags: RunFlags): Promise<number> {
  if (flags.workload && flags.cmd !== undefined) throw new TmemuError("USAGE", "give either --workload or --cmd, not both", "drop one of them");
  if (flags.files && flags.cmd === undefined) throw new TmemuError("USAGE", "--files goes with --cmd", "built-in workloads make their own files");
  // Every flag is checked before the images are resolved (a cold cache builds for minutes);
  // --memory-mib and the numbers were checked as they were parsed (options.ts).
  if (flags.files) checkFolderFlag("--files", flags.files, "pass a folder whose content every guest should see on /data");
  if (flags.json) checkOutputFileFlag("--json", flags.json);
  if (flags.budgetMib !== undefined) {
    // The policy's own check (budget against the guests' RAM), as runGuests makes it.
    const guests = Array.from({ length: flags.guests }, (_, i) => ({ name: `g${i}`, ramMib: flags.memoryMib }));
    createMemoryPolicy(flags.policy).maxStoreBudgetFrames(flags.budgetMib, guests);
  }
  checkUiFlags(flags);
  const versions = versionChoice(flags);
  const workload = flags.cmd === undefined ? (flags.workload ?? "refault") : undefined;
  const ui = await LiveUi.start(flags, "run", commandLine(process.argv.slice(2)), (line) => process.stderr.write(`${line}\n`));
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write("\n[tmemu] stopping (Ctrl-C); the summary follows\n");
    controller.abort();
  };
  process.once("SIGINT", onSigint);
  const tty = Boolean(process.stderr.isTTY);
  let lastLines = 0;
  try {
    const set = await ensureImages({ progress: new StderrProgress(), ...versions });
    const summary = await runGuests({
      images: loadGuestImages(set),
      imagesKey: imagesKeyOf(set),
      ...(flags.coldBoot ? { coldBoot: true } : {}),
      guests: flags.guests,
      memoryMib: flags.memoryMib,
      ...(flags.budgetMib !== undefined ? { budgetMib: flags.budgetMib } : {}),
      policy: flags.policy,
      ...(workload ? { workload } : {}),
      ...(flags.cmd !== undefined ? { cmd: flags.cmd } : {}),
      ...(flags.files ? { files: flags.files } : {}),
      ...(flags.durationS !== undefined ? { durationS: flags.durationS } : {}),
      ...(flags.phaseS !== undefined ? { phaseS: flags.phaseS } : {}),
      seed: flags.seed,
      tmem: flags.tmem,
      threads: threadsFlag(flags.threads),
      store: { ...(flags.compression !== undefined ? { compression: flags.compression } : {}), ...(flags.dedup !== undefined ? { dedup: flags.dedup } : {}) },
      ...(flags.kernelArgs ? { kernelArgs: flags.kernelArgs.split(/\s+/).filter(Boolean) } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
      onTable: (table) => {
        if (tty) {
          process.stderr.write(`${lastLines ? `\x1b[${lastLines}F\x1b[J` : ""}${table}\n`);
          lastLines = table.split("\n").length;
        } else if (Math.floor(Date.now() / 10_000) !== Math.floor((Date.now() - 2000) / 10_000)) {
          process.stderr.write(`${table}\n`);
        }
      },
      signal: controller.signal,
      ...ui?.runHooks({ guests: flags.guests, memoryMib: flags.memoryMib, ...(flags.budgetMib !== undefined ? { budgetMib: flags.budgetMib } : {}), policy: flags.policy, ...(workload ? { workload } : {}) }),
    });
    process.stdout.write(formatSummary(summary));
    if (flags.json) writeSummaryJson(flags.json, summary);
    ui?.runEnded(summary, flags.json);
    const failed = failedGuests(summary);
    for (const g of failed) process.stderr.write(`tmemu: ${g.name}: workload not valid: ${g.reasons.join("; ")}\n`);
    const unfinished = summary.guests.filter((g) => g.status === "unfinished");
    if (summary.stopped === "duration" && unfinished.length) {
      process.stderr.write(`[tmemu] stopped at --duration-s ${flags.durationS ?? ""}: ${unfinished.map((g) => g.name).join(", ")} unfinished (a planned stop, not a failure)\n`);
    }
    process.off("SIGINT", onSigint);
    await ui?.hold();
    return runExitCode(summary);
  } finally {
    process.off("SIGINT", onSigint);
    await ui?.close();
  }
}
