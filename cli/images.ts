/** `tmemu images`: build (or find in the cache) the guest kernel, initramfs and BIOS. */
import { ensureImages, type ImageSet } from "../guest-images/index.ts";
import { StderrProgress } from "../guest-images/progress.ts";

export interface ImagesFlags {
  rebuild?: boolean;
  json?: boolean;
  patches?: string;
}

export async function imagesCommand(flags: ImagesFlags): Promise<number> {
  const set = await ensureImages({ rebuild: Boolean(flags.rebuild), progress: new StderrProgress(), ...(flags.patches ? { patchesDir: flags.patches } : {}) });
  if (flags.json) process.stdout.write(`${JSON.stringify(set, null, 2)}\n`);
  else process.stdout.write(describeImages(set));
  return 0;
}

export function describeImages(set: ImageSet): string {
  const state = (built: boolean, s: number) => (built ? `built now in ${s.toFixed(0)} s` : `cached (built in ${s.toFixed(0)} s)`);
  return [
    `kernel   ${set.kernelRelease}  ${set.kernelDir}/bzImage  ${state(set.built.kernel, set.seconds.kernelBuild)}`,
    `initrd   ${set.initrdPath}  ${state(set.built.initrd, set.seconds.initrdBuild)}`,
    `bios     ${set.biosPath}`,
    `packages ${set.packages.map((p) => `${p.name} ${p.version}${p.pinned ? ` (pinned ${p.pinned} unavailable)` : ""}`).join(", ")}`,
    `patches  ${set.patches.length ? set.patches.join(", ") : "(none)"}`,
    `took     ${set.seconds.total.toFixed(1)} s`,
    "",
  ].join("\n");
}
