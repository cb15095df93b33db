/**
 * Debian's chromium for the browser tests, driven by playwright-core (which downloads nothing).
 * Missing and root: installed from Debian's archive as the image build installs its tools
 * (guest-images/host-tools.ts); otherwise, or if that fails, an error that says what to run.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { isRoot } from "../../guest-images/host-tools.ts";

export const CHROMIUM = "/usr/bin/chromium";

export const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

function apt(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync("apt-get", args, { encoding: "utf8", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, timeout: 900_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n").slice(-3).join(" / ") };
}

/** The path of chromium, installing Debian's package first if it is missing and we are root. */
export function ensureChromium(): string {
  if (existsSync(CHROMIUM)) return CHROMIUM;
  if (!isRoot()) throw new Error(`the browser test needs Debian's chromium at ${CHROMIUM}: run \`sudo apt-get install -y chromium\` (as root the test installs it itself)`);
  process.stderr.write("[test] installing Debian's chromium (apt-get install -y chromium)\n");
  let r = apt(["install", "-y", "-q", "chromium"]);
  if (!r.ok) {
    apt(["update", "-q"]);
    r = apt(["install", "-y", "-q", "chromium"]);
  }
  if (!r.ok || !existsSync(CHROMIUM)) throw new Error(`the browser test needs Debian's chromium, and \`apt-get install -y chromium\` failed: ${r.out}`);
  return CHROMIUM;
}

/** A headless chromium with a fresh profile. */
export async function launchChromium(viewport = { width: 1600, height: 1000 }): Promise<BrowserContext> {
  const executablePath = ensureChromium();
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "tmemu-chromium-")), { executablePath, headless: true, viewport, args: CHROMIUM_ARGS });
}
