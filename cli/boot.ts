/**
 * `tmemu boot`: one guest, with the tmem device (a store of --store-mib) unless --no-tmem. With
 * --cmd: start, run the command, print its output, exit with its exit code. Without --cmd on a
 * terminal: an interactive serial console (Ctrl-] quits).
 *
 * The guest starts from the cached boot snapshot (guest-images/snapshots.ts; made by a cold boot
 * the first time) unless --cold-boot. --save FILE writes the guest, its disks and its tmem client
 * to FILE when the command is done (or when the console is left, or on Ctrl-C / SIGINT);
 * with --save-at S it saves S seconds into the command and exits while the command is still
 * running. --restore FILE starts the saved guest in this process: a command that was running goes
 * on (its remaining output is printed and its exit code returned), else --cmd runs.
 */
import { writeSync } from "node:fs";
import type { Guest } from "../emulator/guest.ts";
import { makeDataDisk, makeSwapImage } from "../guest-images/disks.ts";
import { ensureImages, loadGuestImages } from "../guest-images/index.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { imagesKeyOf } from "../guest-images/snapshots.ts";
import { TmemStore } from "../hypervisor/tmem/store.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { checkFolderFlag, checkOutputFileFlag, versionChoice, type VersionFlags } from "./options.ts";
import { migrateOut, parseHostPort } from "./migrate.ts";
import { restoreGuest, saveGuest, startGuest, type RestoredGuest, type StartedGuest } from "./snapshot-guest.ts";

export interface BootFlags extends VersionFlags {
  memoryMib: number;
  files?: string;
  cmd?: string;
  timeoutS: number;
  swapMib: number;
  kernelArgs?: string;
  console?: boolean;
  stats?: boolean;
  /** --no-tmem sets this false. */
  tmem?: boolean;
  storeMib?: number;
  coldBoot?: boolean;
  save?: string;
  saveAt?: number;
  restore?: string;
  /** HOST:PORT of a `tmemu migrate --listen` receiver; with migrateAt. */
  migrateTo?: string;
  migrateAt?: number;
}

const QUIT_KEY = 0x1d; // Ctrl-]

export async function bootCommand(flags: BootFlags): Promise<number> {
  // Every flag is checked before the images are resolved (a cold cache builds for minutes).
  // --memory-mib was checked as it was parsed (options.ts).
  const interactiveWanted = flags.cmd === undefined && flags.restore === undefined;
  if (interactiveWanted && !process.stdin.isTTY) {
    throw new TmemuError("USAGE", "no --cmd given and stdin is not a terminal", 'pass --cmd "..." to run a command, or run tmemu boot from a terminal for a console');
  }
  if (flags.files !== undefined) checkFolderFlag("--files", flags.files, "pass a folder whose content should appear on /data in the guest");
  if (flags.saveAt !== undefined && (flags.save === undefined || flags.cmd === undefined)) {
    throw new TmemuError("USAGE", "--save-at needs --save FILE and --cmd", "--save-at S saves the guest S seconds into the command given with --cmd");
  }
  if (flags.save !== undefined) checkOutputFileFlag("--save", flags.save);
  if ((flags.migrateTo === undefined) !== (flags.migrateAt === undefined) || (flags.migrateTo !== undefined && flags.cmd === undefined && flags.restore === undefined)) {
    throw new TmemuError("USAGE", "--migrate-to and --migrate-at go together, with --cmd", "--migrate-to 127.0.0.1:PORT --migrate-at S moves the guest S seconds into the command to a `tmemu migrate --listen PORT`");
  }
  const migrateTarget = flags.migrateTo !== undefined ? parseHostPort(flags.migrateTo, "--migrate-to") : undefined;
  if (flags.restore !== undefined && (flags.files !== undefined || flags.coldBoot)) {
    throw new TmemuError("USAGE", "--restore takes the guest's disks and state from the file", "leave out --files and --cold-boot with --restore");
  }
  const tmem = flags.tmem !== false;
  const versions = versionChoice(flags);
  const set = await ensureImages({ progress: new StderrProgress(), ...versions });
  const images = loadGuestImages(set);
  const imagesKey = imagesKeyOf(set);
  const kernelArgs = flags.kernelArgs ? flags.kernelArgs.split(/\s+/).filter(Boolean) : [];
  const store = tmem ? new TmemStore({ budgetMib: flags.storeMib ?? flags.memoryMib }) : undefined;
  const bootTimeoutMs = flags.timeoutS * 1000;
  const onConsole = flags.console ? (t: string) => process.stderr.write(t) : undefined;

  const t0 = performance.now();
  let started: StartedGuest;
  let running: { id: string; command: string } | undefined;
  if (flags.restore !== undefined) {
    const r = await restoreGuest(flags.restore, { images, imagesKey, name: "guest", store, bootTimeoutMs, ...(onConsole ? { onConsole } : {}) });
    started = r;
    running = r.header.running;
    process.stderr.write(`tmemu: restored ${flags.restore} (${r.header.memoryMib} MiB guest saved ${r.header.createdAt}; ${r.persistentPages} persistent tmem pages)\n`);
  } else {
    const dataDisk = flags.files ? makeDataDisk({ fromDir: flags.files }) : undefined;
    const swapDisk = flags.swapMib > 0 ? makeSwapImage(flags.swapMib) : undefined;
    started = await startGuest({
      images,
      imagesKey,
      name: "guest",
      memoryMib: flags.memoryMib,
      kernelArgs,
      balloon: true,
      coldBoot: flags.coldBoot === true,
      bootTimeoutMs,
      ...(dataDisk ? { dataDisk } : {}),
      ...(swapDisk ? { swapDisk } : {}),
      ...(store ? { store } : {}),
      ...(onConsole ? { onConsole } : {}),
    });
  }
  const bootMs = performance.now() - t0;
  const { guest } = started;
  const saveInfo = { imagesKey, kernelArgs: "header" in started ? (started as RestoredGuest).header.kernelArgs : kernelArgs, balloon: true };
  const save = async (why: string, runningNow?: { id: string; command: string }) => {
    if (flags.save === undefined) return;
    const t = performance.now();
    const s = await saveGuest(flags.save, { guest, device: started.device, store }, { ...saveInfo, ...(runningNow ? { running: runningNow } : {}) });
    process.stderr.write(
      `tmemu: saved the guest to ${flags.save} ${why}: ${(s.bytes / 2 ** 20).toFixed(1)} MiB (machine ${(s.machineBytes / 2 ** 20).toFixed(1)} MiB, ` +
        `${s.persistentPages} persistent tmem pages) in ${((performance.now() - t) / 1000).toFixed(2)} s\n`,
    );
  };
  // Ctrl-C while a command runs: save (if --save) and leave.
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    process.stderr.write("tmemu: interrupted\n");
    const id = guest.runningCommandId;
    const upTo = guest.consoleOffset;
    void save("on Ctrl-C", id ? { id, command: running?.command ?? flags.cmd ?? "" } : undefined)
      .then(() => {
        if (id && flags.save !== undefined) printOutputSoFar(guest, id, upTo);
      })
      .catch((err: unknown) => process.stderr.write(`tmemu: the save failed: ${String(err)}\n`))
      .finally(() => {
        void started.dispose().finally(() => process.exit(130));
      });
  };
  process.on("SIGINT", onSigint);
  try {
    if (flags.cmd === undefined && running === undefined) {
      const code = await interactive(guest);
      await save("as the console was left");
      return code;
    }
    const t1 = performance.now();
    const commandText = running?.command ?? flags.cmd ?? "";
    const answer = running ? guest.resumeRun(running.id, { timeoutMs: flags.timeoutS * 1000 }) : guest.run(flags.cmd ?? "", { timeoutMs: flags.timeoutS * 1000 });
    answer.catch(() => undefined); // after a save mid-command the guest is disposed under it
    let saveTimer: NodeJS.Timeout | undefined;
    // Resolves only if the guest was saved while the command ran (not if the command ends first).
    const savedMidway = new Promise<"saved">((resolve, reject) => {
      if (flags.saveAt === undefined) return;
      const at = flags.saveAt;
      saveTimer = setTimeout(() => {
        const id = guest.runningCommandId;
        if (!id) return;
        const upTo = guest.consoleOffset;
        save(`${at} s into the command (it is still running: go on with tmemu boot --restore ${flags.save})`, { id, command: commandText })
          .then(() => {
            printOutputSoFar(guest, id, upTo);
            resolve("saved");
          })
          .catch(reject);
      }, at * 1000);
    });
    let migrateTimer: NodeJS.Timeout | undefined;
    const migrated = new Promise<"migrated">((resolve, reject) => {
      if (!migrateTarget || flags.migrateAt === undefined) return;
      migrateTimer = setTimeout(() => {
        const id = guest.runningCommandId;
        if (!id) return;
        migrateOut(migrateTarget, { guest, device: started.device, store }, {
          imagesKey,
          memoryMib: guest.memoryMib,
          kernelArgs: saveInfo.kernelArgs,
          balloon: true,
          tmem: store !== undefined,
          kernelRelease: guest.kernelRelease,
          running: { id, command: commandText },
        })
          .then((m) => {
            process.stderr.write(
              `tmemu: migrated to ${migrateTarget.host}:${migrateTarget.port} ${flags.migrateAt} s into the command: downtime ${m.downtimeMs.toFixed(0)} ms, ` +
                `${(m.bytesSent / 2 ** 20).toFixed(1)} MiB sent (${m.precopyPages} persistent pages pre-copied in ${m.precopyMs.toFixed(0)} ms while the guest ran, ${m.finalPages} sent again at the pause)\n`,
            );
            resolve("migrated");
          })
          .catch(reject);
      }, flags.migrateAt * 1000);
    });
    const first = await Promise.race([answer, savedMidway, migrated]);
    if (saveTimer) clearTimeout(saveTimer);
    if (migrateTimer) clearTimeout(migrateTimer);
    if (first === "saved" || first === "migrated") return 0;
    const result = first;
    process.stdout.write(result.output);
    if (flags.stats) {
      process.stderr.write(
        `tmemu: boot ${(bootMs / 1000).toFixed(2)} s, command ${((performance.now() - t1) / 1000).toFixed(2)} s, ` +
          `data disk ${guest.disks.data.sectorsRead} sectors read / ${guest.disks.data.sectorsWritten} written, ` +
          `swap ${guest.disks.swap.sectorsRead} read / ${guest.disks.swap.sectorsWritten} written\n`,
      );
      process.stderr.write(`tmemu: started ${startText(started.start)}${started.device && store ? `; tmem ${store.clientMetrics(started.device.clientId).pagesPersistent} persistent pages` : "; no tmem device"}\n`);
    }
    if (result.exitCode !== 0) process.stderr.write(`tmemu: the guest command exited with ${result.exitCode}\n`);
    await save("at the end of the command");
    return result.exitCode;
  } finally {
    process.off("SIGINT", onSigint);
    await started.dispose();
  }
}

/** What the running command `id` printed before console offset `upTo` (after a save, the restored guest prints the rest). */
function printOutputSoFar(guest: Guest, id: string, upTo: number): void {
  const all = guest.textSince(0); // what the console log still holds, up to now
  const text = all.slice(0, Math.max(0, upTo - (guest.consoleOffset - all.length)));
  const begin = text.lastIndexOf(`TMEMU-BEGIN ${id}`);
  if (begin >= 0) writeSync(1, text.slice(text.indexOf("\n", begin) + 1).replace(/\r\n/g, "\n"));
}

function startText(start: StartedGuest["start"]): string {
  switch (start) {
    case "cold":
      return "by a cold boot (--cold-boot)";
    case "snapshot":
      return "from the cached boot snapshot";
    case "made":
      return "from the boot snapshot, made now by a cold boot (the next start uses it)";
    case "restored":
      return "from the saved file";
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
