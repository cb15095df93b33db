/** Running the build's external commands: output to a log file, errors that name the log. */
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync } from "node:fs";
import { TmemuError } from "../hypervisor/user-errors.ts";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Every output line goes here (appended). */
  logFile: string;
  /** Called with each line of output, for progress. */
  onLine?: (line: string) => void;
  /** Keep the output and return it. */
  capture?: boolean;
}

/** Runs a command to completion; a non-zero exit is a BUILD_FAILED error naming the log. */
export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<string> {
  appendFileSync(opts.logFile, `\n$ ${[cmd, ...args].join(" ")}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let captured = "";
    let partial = "";
    const onData = (buf: Buffer) => {
      const text = buf.toString("utf8");
      appendFileSync(opts.logFile, text);
      if (opts.capture) captured += text;
      if (opts.onLine) {
        const lines = (partial + text).split("\n");
        partial = lines.pop() ?? "";
        for (const l of lines) opts.onLine(l);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (err) =>
      reject(new TmemuError("MISSING_TOOL", `cannot run ${cmd}: ${err.message}`, "run `tmemu images` as root once to install the build tools")),
    );
    child.on("close", (code, signal) => {
      if (code === 0) resolve(captured);
      else
        reject(
          new TmemuError(
            "BUILD_FAILED",
            `\`${[cmd, ...args].join(" ").slice(0, 120)}\` failed (${signal ?? `exit ${code}`})`,
            `the full log is ${opts.logFile}`,
          ),
        );
    });
  });
}

/** A quick command whose output we need; undefined when it fails or does not exist. */
export function query(cmd: string, args: readonly string[]): string | undefined {
  const r = spawnSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return r.status === 0 ? r.stdout : undefined;
}
