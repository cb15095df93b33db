import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { acquireLock, tryLock, withLock } from "../../guest-images/lock.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("acquireLock (flock between tmemu processes sharing a cache)", () => {
  it("lets one holder in at a time: the second waits, is told so, and gets the lock on release", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "tmemu-lock-")), "kernel-x.lock");
    const first = await acquireLock(path);
    let waited = 0;
    let second = false;
    const p = acquireLock(path, () => waited++, 50).then((l) => {
      second = true;
      return l;
    });
    await sleep(300);
    expect(second).toBe(false);
    expect(waited).toBe(1);
    await first.release();
    await (await p).release();
    expect(second).toBe(true);
  });

  it("withLock runs critical sections one after the other and releases on a throw", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "tmemu-lock-")), "initrd-y.lock");
    const events: string[] = [];
    const section = (name: string, fail = false) =>
      withLock(path, async () => {
        events.push(`${name} in`);
        await sleep(100);
        events.push(`${name} out`);
        if (fail) throw new Error(`${name} failed`);
      });
    const results = await Promise.allSettled([section("a", true), section("b")]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect(events).toHaveLength(4);
    expect(events[0]?.endsWith("in") && events[1]?.endsWith("out") && events[0]?.[0] === events[1]?.[0]).toBe(true);
  });

  it("gives a TmemuError, not a stack trace, when the lock file cannot be created", async () => {
    const err = await acquireLock("/proc/version/x.lock").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TmemuError);
    expect((err as TmemuError).message).toMatch(/cannot lock \/proc\/version\/x\.lock/);
  });
});

describe("acquireLock when the holder dies", () => {
  it("is free again once a holder process is killed with SIGKILL (no stale lock)", async () => {
    const { spawn } = await import("node:child_process");
    const path = join(mkdtempSync(join(tmpdir(), "tmemu-lock-")), "bios.lock");
    const holder = spawn(
      process.execPath,
      ["--import", "tsx", "-e", `import("./guest-images/lock.ts").then(async (m) => { await m.acquireLock(${JSON.stringify(path)}); console.log("held"); setInterval(() => {}, 1000); });`],
      { cwd: join(import.meta.dirname, "../.."), stdio: ["ignore", "pipe", "inherit"] },
    );
    await new Promise<void>((resolve) => holder.stdout.on("data", (b: Buffer) => b.toString().includes("held") && resolve()));
    let got = false;
    const p = acquireLock(path).then((l) => {
      got = true;
      return l;
    });
    await sleep(200);
    expect(got).toBe(false);
    holder.kill("SIGKILL");
    await (await p).release();
    expect(got).toBe(true);
  }, 20_000);
});

describe("tryLock", () => {
  it("takes a free lock, and answers undefined at once while another holder has it", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "tmemu-lock-")), "kernel-z.lock");
    const first = await tryLock(path);
    expect(first).toBeDefined();
    expect(await tryLock(path)).toBeUndefined();
    await first?.release();
    const again = await tryLock(path);
    expect(again).toBeDefined();
    await again?.release();
  });
});
