/**
 * `tmemu boot`: one guest. With --cmd: boot, run the command, print its output, exit with its exit
 * code. Without --cmd on a terminal: an interactive serial console (Ctrl-] quits).
 */
import { Guest } from "../emulator/guest.ts";
import { makeDataDisk, makeSwapImage } from "../guest-images/disks.ts";
import { ensureImages, loadGuestImages } from "../guest-images/index.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { checkFolderFlag, versionChoice, type VersionFlags } from "./options.ts";

export interface BootFlags extends VersionFlags {
  memoryMib: number;
  files?: string;
  cmd?: string;
  timeoutS: number;
  swapMib: number;
  kernelArgs?: string;
  console?: boolean;
  stats?: boolean;
}

const QUIT_KEY = 0x1d; // Ctrl-]

export async function bootCommand(flags: BootFlags): Promise<number> {
  // Every flag is checked before the images are resolved (a cold cache builds for minutes).
  // --memory-mib was checked as it was parsed (options.ts).
  if (flags.cmd === undefined && !process.stdin.isTTY) {
    throw new TmemuError("USAGE", "no --cmd given and stdin is not a terminal", 'pass --cmd "..." to run a command, or run tmemu boot from a terminal for a console');
  }
  if (flags.files !== undefined) checkFolderFlag("--files", flags.files, "pass a folder whose content should appear on /data in the guest");
  const versions = versionChoice(flags);
  const set = await ensureImages({ progress: new StderrProgress(), ...versions });
  const images = loadGuestImages(set);
  const dataDisk = flags.files ? makeDataDisk({ fromDir: flags.files }) : undefined;
  const swapDisk = flags.swapMib > 0 ? makeSwapImage(flags.swapMib) : undefined;
  const t0 = performance.now();
  const guest = await Guest.boot({
    images,
    memoryMib: flags.memoryMib,
    ...(dataDisk ? { dataDisk } : {}),
    ...(swapDisk ? { swapDisk } : {}),
    ...(flags.kernelArgs ? { kernelArgs: flags.kernelArgs.split(/\s+/).filter(Boolean) } : {}),
    bootTimeoutMs: flags.timeoutS * 1000,
    ...(flags.console ? { onConsole: (t: string) => process.stderr.write(t) } : {}),
  });
  const bootMs = performance.now() - t0;
  try {
    if (flags.cmd === undefined) return await interactive(guest);
    const t1 = performance.now();
    const r = await guest.run(flags.cmd, { timeoutMs: flags.timeoutS * 1000 });
    process.stdout.write(r.output);
    if (flags.stats) {
      process.stderr.write(
        `tmemu: boot ${(bootMs / 1000).toFixed(2)} s, command ${((performance.now() - t1) / 1000).toFixed(2)} s, ` +
          `data disk ${guest.disks.data.sectorsRead} sectors read / ${guest.disks.data.sectorsWritten} written, ` +
          `swap ${guest.disks.swap.sectorsRead} read / ${guest.disks.swap.sectorsWritten} written\n`,
      );
    }
    if (r.exitCode !== 0) process.stderr.write(`tmemu: the guest command exited with ${r.exitCode}\n`);
    return r.exitCode;
  } finally {
    await guest.dispose();
  }
}

async function interactive(guest: Guest): Promise<number> {
  process.stderr.write("tmemu: guest console; Ctrl-] quits\n");
  const listener = guest.onConsole((t) => process.stdout.write(t));
  guest.startShell();
  process.stdin.setRawMode(true);
  process.stdin.resume();
  await new Promise<void>((resolve) => {
    process.stdin.on("data", (buf: Buffer) => {
      if (buf.includes(QUIT_KEY)) return resolve();
      guest.sendInput(buf.toString("latin1"));
    });
  });
  process.stdin.setRawMode(false);
  process.stdin.pause();
  listener.dispose();
  return 0;
}
