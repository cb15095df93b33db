import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  delta,
  NO_TMEM_DEBUGFS_LINE,
  parseNameValues,
  parseTmemStats,
  parseVmstat,
  TMEM_GUEST_STAT_NAMES,
  tmemStatsCommand,
} from "../../../hypervisor/guest/stats.ts";

/** Runs the guest's counter command with the host's sh (busybox sh, grep and tr behave the same here). */
function runStatsCommand(dir: string): string {
  return execFileSync("sh", ["-c", tmemStatsCommand(dir)], { encoding: "utf8" });
}

describe("guest stats parsers", () => {
  it("reads 'name value' lines and skips anything else", () => {
    expect(parseNameValues("a 1\nb  22 \nnot a line\nc x\n\nd 3")).toEqual({ a: 1, b: 22, d: 3 });
  });

  it("reads every tmem debugfs counter, missing ones as 0", () => {
    const s = parseTmemStats("cleancache_gets 10\ncleancache_hits 4\nfrontswap_stores 7\n");
    expect(s).toBeDefined();
    expect(Object.keys(s!).sort()).toEqual([...TMEM_GUEST_STAT_NAMES].sort());
    expect(s).toMatchObject({ cleancache_gets: 10, cleancache_hits: 4, frontswap_stores: 7, frontswap_loads: 0 });
  });

  it("reads the counters the command prints from a debugfs-like directory, 'enabled' ignored", () => {
    const dir = mkdtempSync(join(tmpdir(), "tmem-debugfs-"));
    try {
      writeFileSync(join(dir, "enabled"), "cleancache=1 frontswap=1 abi=1\n");
      writeFileSync(join(dir, "cleancache_puts"), "12\n");
      writeFileSync(join(dir, "hypercall_refusals"), "3\n");
      writeFileSync(join(dir, "hypercall_errors"), "0\n");
      const s = parseTmemStats(runStatsCommand(dir));
      expect(s).toMatchObject({ cleancache_puts: 12, hypercall_refusals: 3, hypercall_errors: 0, cleancache_gets: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says undefined when the guest has no tmem debugfs directory", () => {
    const out = runStatsCommand("/nonexistent/tmem-debugfs");
    // The marker is a parsable "name value" line, so only the marker check can turn it into undefined.
    expect(out.trim()).toBe(NO_TMEM_DEBUGFS_LINE);
    expect(parseNameValues(out)).toEqual({ no_tmem_debugfs: 1 });
    expect(parseTmemStats(out)).toBeUndefined();
  });

  it("says undefined when the command printed no counter", () => {
    expect(parseTmemStats("")).toBeUndefined();
    expect(parseTmemStats("enabled cleancache=0 frontswap=0 abi=1\n")).toBeUndefined();
  });

  it("reads the 6.1 /proc/vmstat names", () => {
    const v = parseVmstat("nr_free_pages 100\npswpin 5\npswpout 9\npgmajfault 3\nworkingset_refault_file 12\n");
    expect(v).toMatchObject({ pswpin: 5, pswpout: 9, pgmajfault: 3, workingset_refault_file: 12, workingset_refault_anon: 0 });
  });

  it("subtracts counters", () => {
    expect(delta({ a: 5, b: 7 }, { a: 2, b: 7 })).toEqual({ a: 3, b: 0 });
  });
});
