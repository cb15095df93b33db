/** `tmemu validate`: runs the checks of validate.ts and prints the report; exit 0 only if all pass. */
import { writeFileSync } from "node:fs";
import { formatReport, validate, type CheckName } from "./validate.ts";

export interface ValidateFlags {
  patches?: string;
  memoryMib: number;
  only?: CheckName[];
  json?: string;
}

export async function validateCommand(flags: ValidateFlags): Promise<number> {
  const report = await validate({
    memoryMib: flags.memoryMib,
    ...(flags.patches ? { patchesDir: flags.patches } : {}),
    ...(flags.only ? { only: flags.only } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(formatReport(report));
  if (flags.json) writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.results.every((r) => r.pass) ? 0 : 1;
}
