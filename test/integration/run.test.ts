/**
 * Several guests, one store (`tmemu run`): guests reading the same read-only image share one
 * shared ephemeral pool, so the store holds the data once, however many guests read it, and each
 * guest's second read comes from it; and a workload that is OOM-killed makes the run invalid.
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { failedGuests, runExitCode, runGuests } from "../../cli/run.ts";
import { writeFileSet } from "../../workloads/files.ts";

const SET_MIB = 48;
const SECTORS_PER_MIB = 2048;

describe("tmemu run", () => {
  it("shares one pool for one read-only image: store pages grow with the data, not with the guests; every guest's second read comes from the pool", { timeout: 1_800_000 }, async () => {
    const cmd = "cat /data/set/* > /dev/null; echo 3 > /proc/sys/vm/drop_caches; cat /data/set/* > /dev/null";
    // The same 48 MiB file set, read by 1 and by 3 guests.
    const files = mkdtempSync(join(tmpdir(), "tmemu-share-"));
    writeFileSet(files, "set", SET_MIB, 4, 5);
    const r1 = await runGuests({ guests: 1, memoryMib: 128, budgetMib: 128 + 256, policy: "static", cmd, files, seed: 1 });
    // The 3 guests run in worker threads (--threads on), so the threaded path is checked end to end.
    const r3 = await runGuests({ guests: 3, memoryMib: 128, budgetMib: 3 * 128 + 256, policy: "static", cmd, files, seed: 1, threads: true });
    const used1 = r1.store.pagesEphemeral;
    const used3 = r3.store.pagesEphemeral;
    process.stderr.write(
      `shared pool: 1 guest -> ${used1} ephemeral pages, 3 guests -> ${used3}; hits ${r3.guests.map((g) => g.tmem?.getHits).join(",")}; data sectors read ${r3.guests.map((g) => g.dataSectorsRead).join(",")}\n`,
    );
    expect(r1.valid).toBe(true);
    expect(r3.valid).toBe(true);
    expect(r1.threads).toBe(false);
    expect(r3.threads).toBe(true);
    // Every guest started from the boot snapshot: r1's guest made it (or found it cached), and r3's
    // guests (other count, other data disk, same options) found r1's: the key holds neither.
    expect(["made", "snapshot"]).toContain(r1.guests[0]?.start);
    expect(r3.guests.map((g) => g.start)).toEqual(["snapshot", "snapshot", "snapshot"]);
    expect(used1).toBeGreaterThan(8 * 256);
    expect(used3).toBeLessThan(used1 * 1.5);
    for (const g of r3.guests) {
      // After drop_caches the second read finds the set in the pool: hits for most of its pages ...
      expect(g.tmem?.getHits ?? 0).toBeGreaterThan(0.8 * SET_MIB * 256);
      // ... and no guest reads the disk twice (the window starts with the workload: boot reads are not counted).
      expect(g.dataSectorsRead).toBeLessThan(1.3 * SET_MIB * SECTORS_PER_MIB);
    }
    // The set came from the disk at least once in all. Not once per guest: the guests run in
    // parallel threads, so a guest still in its first read can already find pages in the pool
    // that a faster guest put there after its drop_caches (seen on a quiet machine: 81,936 of
    // 98,304 sectors).
    const sectors3 = r3.guests.reduce((sum, g) => sum + g.dataSectorsRead, 0);
    expect(sectors3).toBeGreaterThan(0.9 * SET_MIB * SECTORS_PER_MIB);
    // Each guest's hypercalls were timed over the window, in one thread and across threads alike
    // (one in 16: a guest's gets alone were at least 0.8 x the set's pages).
    for (const g of [...r1.guests, ...r3.guests]) {
      const w = g.hypercallWait;
      expect(w?.timed ?? 0).toBeGreaterThan((0.8 * SET_MIB * 256) / 16 - 1);
      expect(w!.traps).toBeGreaterThan(0.8 * SET_MIB * 256);
      expect(w!.p50Us).toBeLessThanOrEqual(w!.p99Us);
      expect(w!.meanUs).toBeGreaterThan(0);
    }
  });

  it("calls an OOM-killed workload invalid: the kill, the exit code, no mismatch count, exit 1", { timeout: 600_000 }, async () => {
    // More than the guest can hold (RAM + swap less the kernel), but not more than the kernel lets it map.
    const cmd = "memtouch $(awk '/^(MemTotal|SwapTotal):/ {kb += $2} END {print int(kb / 1024) - 5}' /proc/meminfo)";
    const r = await runGuests({ guests: 1, memoryMib: 96, policy: "static", cmd, seed: 1 });
    const [g] = r.guests;
    process.stderr.write(`OOM run: ${JSON.stringify({ exitCode: g?.exitCode, reasons: g?.reasons, output: g?.output.slice(-200) })}\n`);
    expect(g).toMatchObject({ status: "finished", exitCode: 137, valid: false, mismatches: null });
    expect(["made", "snapshot"]).toContain(g?.start);
    expect(g?.oomKills).toBeGreaterThan(0);
    expect(g?.reasons[0]).toMatch(/^OOM-killed \(\d+ kills?\)$/);
    expect(r.valid).toBe(false);
    expect(failedGuests(r).map((x) => x.name)).toEqual(["g0"]);
    expect(runExitCode(r)).toBe(1);
  });
});
