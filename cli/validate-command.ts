/** `tmemu validate`: runs the checks of validate.ts and prints the report; exit 0 only if all pass. */
import { writeFileSync } from "node:fs";
import { checkPatchesDir } from "../guest-images/index.ts";
import { checkOutputFileFlag, versionChoice, type VersionFlags } from "./options.ts";
import { formatReport, validate, type CheckName } from "./validate.ts";

export interface ValidateFlags extends VersionFlags {
  patches?: string;
  memoryMib: number;
  only?: CheckName[];
  json?: string;
  fuzzSeconds?: number;
  coldBoot?: boolean;
}

export async function validateCommand(flags: ValidateFlags): Promise<number> {
  // Every flag is checked before the images are resolved and built (minutes on a cold cache);
  // --memory-mib was checked as it was parsed (options.ts).
  if (flags.patches) checkPatchesDir(flags.patches);
  if (flags.json) checkOutputFileFlag("--json", flags.json);
  const versions = versionChoice(flags);
  const report = await validate({
    memoryMib: flags.memoryMib,
    versions,
    ...(flags.patches ? { patchesDir: flags.patches } : {}),
    ...(flags.only ? { only: flags.only } : {}),
    ...(flags.fuzzSeconds !== undefined ? { fuzzSeconds: flags.fuzzSeconds } : {}),
    ...(flags.coldBoot ? { coldBoot: true } : {}),
    log: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(formatReport(report));
  if (flags.json) writeFileSync(flags.json, `${JSON.stringify(report, null, 2)}\n`);
  return report.results.every((r) => r.pass) ? 0 : 1;
}
