/** `tmemu images`: build (or find in the cache) the guest kernel, initramfs and BIOS, and say what they were built from. */
import { checkPatchesDir, ensureImages, type ImageSet } from "../guest-images/index.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { versionChoice, type VersionFlags } from "./options.ts";

export interface ImagesFlags extends VersionFlags {
  rebuild?: boolean;
  refresh?: boolean;
  json?: boolean;
  patches?: string;
}

export async function imagesCommand(flags: ImagesFlags): Promise<number> {
  if (flags.patches) checkPatchesDir(flags.patches);
  const versions = versionChoice(flags);
  const set = await ensureImages({
    rebuild: Boolean(flags.rebuild),
    refresh: Boolean(flags.refresh),
    progress: new StderrProgress(),
    ...versions,
    ...(flags.patches ? { patchesDir: flags.patches } : {}),
  });
  if (flags.json) process.stdout.write(`${JSON.stringify(set, null, 2)}\n`);
  else process.stdout.write(describeImages(set));
  return 0;
}

const day = (iso: string | undefined) => (iso ? iso.slice(0, 10) : "?");

export function describeImages(set: ImageSet): string {
  const state = (built: boolean, s: number) => (built ? `built now in ${s.toFixed(0)} s` : `cached (built in ${s.toFixed(0)} s)`);
  const k = set.kernel;
  const source = k.linuxSourceAsked && k.linuxSourceAsked !== k.linuxSource ? `${k.linuxSource} (asked ${k.linuxSourceAsked})` : k.linuxSource;
  const pkg = (p: ImageSet["packages"][number]) => {
    const asked = p.asked !== p.version ? `, asked ${p.asked}: not in the archive` : "";
    const when = p.resolvedAt ? `, chosen ${day(p.resolvedAt)} from ${p.offered?.length ? p.offered.join(" ") : "nothing offered"}` : "";
    return `${p.name} ${p.version}${asked || when ? ` (${(asked + when).slice(2)})` : ""}`;
  };
  return [
    `kernel   ${set.kernelRelease}  ${set.kernelDir}/bzImage  ${state(set.built.kernel, set.seconds.kernelBuild)}`,
    `         linux-source-6.1 ${source}, ${k.gcc ?? "gcc (not recorded)"}, built ${k.builtAt}`,
    `initrd   ${set.initrdPath}  ${state(set.built.initrd, set.seconds.initrdBuild)}`,
    `         busybox-static ${set.initrd.busybox}, programs ${set.initrd.programs.join(", ") || "(none)"}`,
    `bios     ${set.biosPath}`,
    `packages ${set.packages.map(pkg).join("\n         ")}`,
    `patches  ${k.patches.length ? k.patches.map((p) => `${p.name}${p.sha256 ? ` ${p.sha256.slice(0, 12)}` : ""}`).join("\n         ") : "(none)"}`,
    `took     ${set.seconds.total.toFixed(1)} s  (package choices are kept in the cache; --refresh asks the archive again)`,
    "",
  ].join("\n");
}
