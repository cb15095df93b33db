/** `tmemu run`: flags to RunOptions, the live table on the terminal, Ctrl-C, the summary. */
import { TmemuError } from "../hypervisor/user-errors.ts";
import { formatSummary, runGuests, writeSummaryJson } from "./run.ts";

export interface RunFlags {
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
  kernelArgs?: string;
  json?: string;
}

export async function runCommand(flags: RunFlags): Promise<number> {
  if (flags.workload && flags.cmd !== undefined) throw new TmemuError("USAGE", "give either --workload or --cmd, not both", "drop one of them");
  if (flags.files && flags.cmd === undefined) throw new TmemuError("USAGE", "--files goes with --cmd", "built-in workloads make their own files");
  const workload = flags.cmd === undefined ? (flags.workload ?? "refault") : undefined;
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write("\n[tmemu] stopping (Ctrl-C); the summary follows\n");
    controller.abort();
  };
  process.once("SIGINT", onSigint);
  const tty = Boolean(process.stderr.isTTY);
  let lastLines = 0;
  try {
    const summary = await runGuests({
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
    });
    process.stdout.write(formatSummary(summary));
    if (flags.json) writeSummaryJson(flags.json, summary);
    const bad = summary.totals.mismatches > 0 || summary.guests.some((g) => g.filesOk === false);
    if (bad) process.stderr.write("tmemu: data came back wrong in a guest (see mismatches / files above)\n");
    return bad ? 1 : summary.interrupted ? 130 : 0;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
