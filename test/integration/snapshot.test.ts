/**
 * Snapshots end to end through the CLI, as a user runs them (issue 11): a warm `tmemu boot` starts
 * from the cached boot snapshot and takes up this run's disks; --cold-boot boots the kernel; a
 * guest saved in the middle of memtouch with frontswap is restored in a new process with every
 * swapped page and the command going on; a live migration over TCP during memtouch; a truncated
 * file and a file from other images are refused.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { decodeSnapshot, writeSnapshotFile, type SnapshotHeader } from "../../emulator/snapshot-file.ts";
import { REPO_ROOT } from "../../guest-images/paths.ts";
import { tmemu } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "tmemu-snapshot-it-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bootSeconds = (stderr: string) => Number(/tmemu: boot ([\d.]+) s, /.exec(stderr)?.[1]);
const persistent = (stderr: string, re: RegExp) => Number(re.exec(stderr)?.[1]);

describe("boot snapshot", () => {
  it("a warm boot starts from the cached snapshot, finds its data and swap disks, and keeps the --stats line", async () => {
    const files = join(dir, "files");
    mkdirSync(files, { recursive: true });
    writeFileSync(join(files, "hello"), "hello from the data disk\n");
    await tmemu(["boot", "--swap-mib", "32", "--cmd", "true"]); // makes the snapshot for these options if missing (the data disk is not in its key)
    const r = await tmemu(["boot", "--files", files, "--swap-mib", "32", "--stats", "--cmd", "cat /data/hello; grep -c partition /proc/swaps"]);
    expect(r.stderr).toMatch(/tmemu: started from the cached boot snapshot/);
    expect(r.stdout).toBe("hello from the data disk\n1\n");
    expect(r.code).toBe(0);
    expect(bootSeconds(r.stderr)).toBeGreaterThan(0);
  });

  it("--cold-boot boots the kernel", async () => {
    const r = await tmemu(["boot", "--cold-boot", "--stats", "--cmd", "grep -c /dev/sda /proc/swaps"]);
    expect(r.stderr).toMatch(/tmemu: boot [\d.]+ s, command/);
    expect(r.stderr).toMatch(/started by a cold boot/);
    expect(r.stdout).toBe("1\n");
  });
});

describe("save and restore", () => {
  const file = join(dir, "mt.snap");

  it("memtouch over 1.5x RAM with frontswap, saved while it runs, restored in a new process: 0 mismatches, same persistent pages", async () => {
    const args = ["--memory-mib", "128", "--swap-mib", "256", "--store-mib", "256"];
    // 8 verify rounds: long enough that 20 s in it is still running on a quiet machine too (with 2
    // rounds a quiet machine finished before 20 s, and the file was saved at the end instead).
    const saved = await tmemu(["boot", ...args, "--save", file, "--save-at", "20", "--cmd", "memtouch 190 1 8 512"], {}, 600_000);
    expect(saved.code, saved.stderr).toBe(0);
    expect(saved.stderr).toMatch(/still running/);
    const before = persistent(saved.stderr, /(\d+) persistent tmem pages\)/);
    expect(before).toBeGreaterThan(0); // it was swapping into frontswap when saved (fill starts at once; 190 MiB > 128)
    const restored = await tmemu(["boot", "--store-mib", "256", "--restore", file], {}, 600_000);
    expect(restored.code, restored.stderr).toBe(0);
    expect(persistent(restored.stderr, /; (\d+) persistent tmem pages\)/)).toBe(before);
    expect(restored.stdout).toMatch(/memtouch: mib=190 .* mismatches=0 /);
  });

  it("refuses a truncated file and a file from other images (exit 1, what and what to do)", async () => {
    const bytes = readFileSync(file);
    const cut = join(dir, "cut.snap");
    writeFileSync(cut, bytes.subarray(0, bytes.byteLength >> 1));
    const r1 = await tmemu(["boot", "--restore", cut]);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toMatch(/cut\.snap: truncated: .* bytes, its header says/);

    // The same guest, signed as made by other images.
    const ours = (JSON.parse(bytes.subarray(16, 16 + bytes.readUInt32LE(12)).toString("utf8")) as SnapshotHeader).imagesKey;
    const { header, sections } = decodeSnapshot(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file, { kind: "save", imagesKey: ours });
    const other = join(dir, "other.snap");
    const { sections: _s, ...rest } = header;
    writeSnapshotFile(other, { ...rest, imagesKey: "0000.1111.2222" }, sections);
    const r2 = await tmemu(["boot", "--restore", other]);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/made with other guest images \(key 0000\.1111\.2222; these are /);
  });
});

describe("live migration", () => {
  it("moves a guest during a memtouch verify loop to another process: 0 mismatches, downtime and bytes reported", async () => {
    const port = String(7700 + Math.floor(Math.random() * 200));
    const receiver = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [join(REPO_ROOT, "bin/tmemu.js"), "migrate", "--listen", `127.0.0.1:${port}`, "--store-mib", "256"], { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    await new Promise((r) => setTimeout(r, 4000)); // the receiver loads its images and listens
    const sender = await tmemu(
      ["boot", "--memory-mib", "128", "--swap-mib", "256", "--store-mib", "256", "--migrate-to", `127.0.0.1:${port}`, "--migrate-at", "15", "--cmd", "memtouch 190 1 3 512"],
      {},
      600_000,
    );
    expect(sender.code, sender.stderr).toBe(0);
    expect(sender.stderr).toMatch(/tmemu: migrated to 127\.0\.0\.1:\d+ 15 s into the command: downtime \d+ ms, [\d.]+ MiB sent \((\d+) persistent pages pre-copied/);
    const r = await receiver;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/memtouch: mib=190 .* mismatches=0 /);
  });
});
