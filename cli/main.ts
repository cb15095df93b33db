/** The tmemu command line (commander). Each command lives in its own module under cli/. */
import { Command, Option } from "commander";
import { benchCommand } from "./bench-command.ts";
import { BENCH_CONFIG_NAMES } from "./bench.ts";
import { bootCommand } from "./boot.ts";
import { migrateCommand } from "./migrate.ts";
import { reportError } from "./errors.ts";
import { imagesCommand } from "./images.ts";
import { addVersionOptions, intOption, memoryMibOption } from "./options.ts";
import { threadsOption } from "./threads.ts";
import { runCommand } from "./run-command.ts";
import { reportCommand } from "./report-command.ts";
import { parseUiPort, UI_CONSOLE_MODES } from "./ui/live.ts";
import { MEMORY_POLICY_NAMES } from "../hypervisor/scheduler/policy.ts";
import { DEDUP_MODES } from "../hypervisor/tmem/store.ts";
import { WORKLOAD_NAMES } from "../workloads/builtin.ts";
import { CHECK_NAMES, DEFAULT_FUZZ_SECONDS } from "./validate.ts";
import { validateCommand } from "./validate-command.ts";

export function buildProgram(): Command {
  const program = new Command("tmemu")
    .description("transcendent memory (tmem) for real Linux guests in Node.js on the v86 emulator")
    .exitOverride()
    .showHelpAfterError("(run the command with --help for its options)")
    .configureOutput({ outputError: (str, write) => write(`tmemu: ${str.replace(/^error: /, "")}`) });

  addVersionOptions(
    program
      .command("images")
      .description("build the guest kernel, initramfs and BIOS, or find them in the cache (~/.cache/tmemu)")
      .addHelpText(
        "after",
        [
          "",
          "Package versions: guest-images/versions.json asks for one version of each Debian package. When the",
          "archive no longer offers it, the newest it offers is used, with one warning. That choice is kept in",
          "the cache (resolutions.json: asked, chosen, offered, when), so later runs ask apt nothing and print",
          "nothing. --refresh asks the archive again. --kernel-version and --versions are exact: a version the",
          "archive does not offer is an error that lists the versions it offers.",
        ].join("\n"),
      )
      .option("--rebuild", "build again even when the cache holds the images")
      .option("--refresh", "choose the package versions again from the archive (apt-get update if needed), instead of the choice kept in the cache")
      .option("--json", "print what was built or found as JSON")
      .option("--patches <dir>", "kernel patch series to apply (default: patches/)"),
  ).action(async (flags) => {
    process.exitCode = await imagesCommand(flags);
  });

  addVersionOptions(
    program.command("boot")
      .description("boot one guest; run --cmd in it and exit with its exit code, or open its console")
      .addOption(memoryMibOption("guest RAM in MiB"))
      .option("--files <dir>", "put this folder's content on the guest's data disk, mounted at /data (on PATH)")
      .option("--cmd <command>", "shell command to run in the guest (busybox sh)")
      .addOption(new Option("--timeout-s <s>", "limit for boot and for the command").default(600).argParser(intOption("--timeout-s", 1, 86400)))
      .addOption(new Option("--swap-mib <n>", "size of the guest's swap disk, 0 for none").default(64).argParser(intOption("--swap-mib", 0, 4096)))
      .option("--kernel-args <args>", "extra kernel command line arguments")
      .option("--console", "echo the guest's serial console (boot log) to stderr")
      .option("--stats", "print boot time, command time and disk sectors to stderr")
      .option("--no-tmem", "boot without the tmem device")
      .addOption(new Option("--store-mib <n>", "size of the tmem store (default: the guest's RAM)").argParser(intOption("--store-mib", 1, 65536)))
      .option("--cold-boot", "boot the kernel instead of starting from the cached boot snapshot")
      .option("--save <file>", "save the guest (state, disks, tmem client) to this file when the command is done, the console is left or on Ctrl-C")
      .addOption(new Option("--save-at <s>", "with --save and --cmd: save this many seconds into the command and exit; the command goes on after --restore").argParser(intOption("--save-at", 1, 86400)))
      .option("--restore <file>", "start the guest saved in this file (tmemu boot --save); a command that was running goes on")
      .option("--migrate-to <host:port>", "with --cmd and --migrate-at: move the running guest to a `tmemu migrate --listen` there")
      .addOption(new Option("--migrate-at <s>", "seconds into the command at which to migrate").argParser(intOption("--migrate-at", 1, 86400)))
  ).action(async (flags) => {
    process.exitCode = await bootCommand(flags);
  });

  addVersionOptions(
    program.command("migrate")
      .description("receive a guest live-migrated by `tmemu boot --migrate-to` (with its tmem client), run it here and exit with its command's exit code")
      .requiredOption("--listen <[host:]port>", "where to wait for the guest (default host 127.0.0.1)")
      .addOption(new Option("--store-mib <n>", "size of the tmem store here (default: the guest's RAM)").argParser(intOption("--store-mib", 1, 65536)))
      .addOption(new Option("--timeout-s <s>", "limit for the arrival and for the command").default(600).argParser(intOption("--timeout-s", 1, 86400)))
      .option("--stats", "print the persistent pages at the end to stderr")
  ).action(async (flags) => {
    process.exitCode = await migrateCommand(flags);
  });

  addVersionOptions(
    program.command("run", { isDefault: false })
      .description("several guests, one tmem store, one memory budget: run a workload under a memory policy")
      .addOption(new Option("--guests <n>", "number of guests").default(3).argParser(intOption("--guests", 1, 16)))
      .addOption(memoryMibOption("RAM of each guest, MiB"))
      .addOption(new Option("--budget-mib <n>", "memory for everything: guest RAM not ballooned out + the store (default 1.5 x guests x RAM)").argParser(intOption("--budget-mib", 1, 65536)))
      .addOption(new Option("--policy <name>", "memory policy").choices([...MEMORY_POLICY_NAMES]).default("selfballoon"))
      .addOption(new Option("--workload <name>", "built-in workload").choices([...WORKLOAD_NAMES]))
      .option("--cmd <command>", "run this shell command in every guest instead of a workload")
      .option("--files <dir>", "with --cmd: this folder on every guest's data disk (read-only, /data)")
      .addOption(new Option("--duration-s <s>", "stop after this long").argParser(intOption("--duration-s", 1, 86400)))
      .addOption(new Option("--seed <n>", "workload seed").default(1).argParser(intOption("--seed", 0, 2 ** 31)))
      .addOption(new Option("--phase-s <s>", "phased: seconds between guests' peaks").argParser(intOption("--phase-s", 0, 3600)))
      .option("--no-tmem", "boot the guests without the tmem device")
      .option("--no-compression", "keep every page of the tmem store whole (default: LZ4 where it pays)")
      .addOption(dedupOption())
      .option("--kernel-args <args>", "extra kernel command line arguments for every guest")
      .addOption(threadsOption())
      .option("--cold-boot", "boot every guest's kernel instead of starting it from the cached boot snapshot")
      .option("--json <file>", "write the summary as JSON")
      .addOption(new Option("--ui [port]", "live dashboard on http://127.0.0.1:PORT (a free port if none; the URL with its token is printed); stays up after the run until Ctrl-C").argParser(parseUiPort))
      .addOption(new Option("--ui-console <mode>", "with --ui: the guests' consoles read-only or typing allowed").choices([...UI_CONSOLE_MODES]))
  ).action(async (flags) => {
    process.exitCode = await runCommand(flags);
  });

  addVersionOptions(
    program.command("bench")
      .description("the same workload with the same total memory under disk, zswap, tmem (and tmem+selfballoon), K times each: medians, targets, chart")
      .addOption(new Option("--workload <name>", "built-in workload").choices([...WORKLOAD_NAMES]).makeOptionMandatory())
      .addOption(new Option("--guests <n>", "number of guests").default(3).argParser(intOption("--guests", 1, 16)))
      .addOption(memoryMibOption("RAM of each guest, MiB"))
      .addOption(new Option("--budget-mib <n>", "total memory of every configuration: guest RAM + the store (default 1.5 x guests x RAM)").argParser(intOption("--budget-mib", 1, 65536)))
      .addOption(new Option("--repeat <k>", "runs of each configuration").default(3).argParser(intOption("--repeat", 1, 100)))
      .addOption(new Option("--seed <n>", "workload seed, the same for every run").default(1).argParser(intOption("--seed", 0, 2 ** 31)))
      .addOption(new Option("--phase-s <s>", "phased: seconds between guests' peaks").argParser(intOption("--phase-s", 0, 3600)))
      .addOption(new Option("--disk-latency-us <us>", "latency per disk request of the model that estimates time saved (a model, reported apart)").default(100).argParser(intOption("--disk-latency-us", 0, 10_000_000)))
      .addOption(new Option("--configs <names...>", "run only these configurations").choices([...BENCH_CONFIG_NAMES]))
      .addOption(dedupOption("in the tmem configurations with the default store (tmem-raw has none)"))
      .addOption(threadsOption())
      .option("--cold-boot", "boot every guest's kernel instead of starting it from the cached boot snapshot")
      .option("--json <file>", "write the results as JSON")
      .option("--out <dir>", "write bench-<workload>.json, .svg (and .png) into this folder")
      .addOption(new Option("--ui [port]", "live dashboard on http://127.0.0.1:PORT (a free port if none; the URL with its token is printed); stays up after the bench until Ctrl-C").argParser(parseUiPort))
      .addOption(new Option("--ui-console <mode>", "with --ui: the guests' consoles read-only or typing allowed").choices([...UI_CONSOLE_MODES]))
  ).action(async (flags) => {
    process.exitCode = await benchCommand(flags);
  });

  program
    .command("report")
    .description("the dashboard page, static, from a run or bench JSON: one self-contained HTML file (DIR/index.html) that opens from disk with no network")
    .argument("<file>", "a run JSON (tmemu run --json) or a bench JSON (tmemu bench --json)")
    .option("--out <dir>", "folder to write index.html into (default: FILE without .json, plus -report)")
    .action(async (file: string, flags) => {
      process.exitCode = await reportCommand(file, flags);
    });

  addVersionOptions(
    program.command("validate")
      .description("apply a kernel patch series, build, boot real guests and run the end-to-end tmem checks")
      .option("--patches <dir>", "the patch series to validate (default: patches/)")
      .addOption(memoryMibOption("guest RAM in MiB"))
      .addOption(new Option("--only <checks...>", "run only these checks").choices([...CHECK_NAMES]))
      .option("--json <file>", "also write the report as JSON")
      .addOption(new Option("--fuzz-seconds <s>", "how long the fuzz check fires hypercalls").default(DEFAULT_FUZZ_SECONDS).argParser(intOption("--fuzz-seconds", 1, 86400)))
      .option("--cold-boot", "boot every check's guests cold (by default all but inert's start from the cached boot snapshot)")
  ).action(async (flags) => {
    process.exitCode = await validateCommand(flags);
  });

  return program;
}

/** --dedup: identical pages in the tmem store share memory; across guests only when asked. */
function dedupOption(where = ""): Option {
  return new Option(
    "--dedup <mode>",
    `identical pages share store memory${where ? ` ${where}` : ""}: client (within each guest), off, or global (across guests: ` +
      "only for guests of one trust group, as cross-VM dedup lets one guest learn another's page contents through timing: Dedup Est Machina, Flip Feng Shui)",
  )
    .choices([...DEDUP_MODES])
    .default("client");
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

await main(process.argv);
