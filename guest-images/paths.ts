/** Where tmemu keeps what it builds and downloads, and where the repository's inputs are. */
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const GUEST_IMAGES_DIR = join(REPO_ROOT, "guest-images");
export const DEFAULT_PATCHES_DIR = join(REPO_ROOT, "patches");

/** $TMEMU_CACHE_DIR, else $XDG_CACHE_HOME/tmemu, else ~/.cache/tmemu. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env["TMEMU_CACHE_DIR"]) return resolve(env["TMEMU_CACHE_DIR"]);
  const xdg = env["XDG_CACHE_HOME"];
  return join(xdg ? resolve(xdg) : join(homedir(), ".cache"), "tmemu");
}
