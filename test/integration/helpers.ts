/** Shared by the integration tests: boot a guest from the provided images, run the CLI. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { inject } from "vitest";
import { Guest, type GuestBootOptions } from "../../emulator/guest.ts";
import { loadGuestImages } from "../../guest-images/index.ts";
import { REPO_ROOT } from "../../guest-images/paths.ts";

export function images() {
  return loadGuestImages(inject("images"));
}

export async function bootGuest(opts: Partial<GuestBootOptions> = {}): Promise<Guest> {
  return Guest.boot({ images: images(), memoryMib: 128, bootTimeoutMs: 180_000, ...opts });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `tmemu ARGS` as a user would, in a child process. */
export function tmemu(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 240_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, "bin/tmemu.js"), ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
