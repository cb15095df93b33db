/**
 * An exclusive lock between tmemu processes that share a cache directory (two `tmemu images` at
 * once, or a test run beside a CLI run), so that only one builds a stage and the other waits and
 * then finds it in the cache.
 *
 * The lock is flock(2) on a lock file, held by a `flock(1)` child process (util-linux, Essential on
 * Debian and Ubuntu): the child takes the lock, says so on stdout, and then waits on its stdin. The
 * kernel drops the lock when the child exits, and the child exits when its stdin closes — when
 * `release` is called, or when this process ends in any way (even SIGKILL). So there are no stale
 * lock files to detect and no process ids to trust. Node has no flock of its own.
 */
import { spawn } from "node:child_process";
import { TmemuError } from "../hypervisor/user-errors.ts";

export interface HeldLock {
  /** Lets the lock go; resolves once it is free for others. */
  release(): Promise<void>;
}

const LOCKED = "locked";
/** flock's exit code when --nonblock finds the lock taken (distinct from its own error codes). */
const BUSY_EXIT = 75;

/**
 * Takes the lock on `path` (created if missing), waiting as long as another process holds it.
 * `onWait` is called once if the lock is not free within `waitNoticeMs`.
 */
export function acquireLock(path: string, onWait: () => void = () => {}, waitNoticeMs = 500): Promise<HeldLock> {
  return lock(path, true, onWait, waitNoticeMs) as Promise<HeldLock>;
}

/** Takes the lock on `path` if no other process holds it; undefined if one does. */
export function tryLock(path: string): Promise<HeldLock | undefined> {
  return lock(path, false, () => {}, 60_000);
}

function lock(path: string, wait: boolean, onWait: () => void, waitNoticeMs: number): Promise<HeldLock | undefined> {
  return new Promise((resolve, reject) => {
    const mode = wait ? [] : ["--nonblock", "--conflict-exit-code", String(BUSY_EXIT)];
    const child = spawn("flock", ["--exclusive", ...mode, path, "sh", "-c", `echo ${LOCKED}; exec cat >/dev/null`], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    let held = false;
    const notice = setTimeout(onWait, waitNoticeMs);
    const exited = new Promise<void>((done) => child.on("close", () => done()));
    const release = () => {
      child.stdin.end();
      return exited;
    };
    child.stdout.on("data", (b: Buffer) => {
      out += b.toString();
      if (!held && out.includes(LOCKED)) {
        held = true;
        clearTimeout(notice);
        resolve({ release });
      }
    });
    child.stderr.on("data", (b: Buffer) => (err += b.toString()));
    // Writing to the stdin of a child that died is not an error worth a crash.
    child.stdin.on("error", () => {});
    child.on("error", (e) => {
      clearTimeout(notice);
      reject(new TmemuError("MISSING_TOOL", `cannot run flock to lock ${path}: ${e.message}`, "install util-linux (it provides flock)"));
    });
    child.on("close", (code) => {
      clearTimeout(notice);
      if (!held && !wait && code === BUSY_EXIT) resolve(undefined);
      else if (!held) reject(new TmemuError("BUILD_FAILED", `cannot lock ${path}: flock exited with ${code}: ${err.trim()}`, "check that the cache directory is writable (or set TMEMU_CACHE_DIR)"));
    });
  });
}

/** Runs `fn` while holding the lock on `path`. */
export async function withLock<T>(path: string, fn: () => Promise<T>, onWait?: () => void): Promise<T> {
  const lock = await acquireLock(path, onWait);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
