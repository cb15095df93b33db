import { describe, expect, it } from "vitest";
import { delta, parseNameValues, parseTmemStats, parseVmstat, TMEM_GUEST_STAT_NAMES } from "../../../hypervisor/guest/stats.ts";

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

  it("says undefined when the guest has no tmem frontend", () => {
    expect(parseTmemStats("no-tmem-debugfs 1\n")).toBeUndefined();
    expect(parseTmemStats("")).toBeUndefined();
  });

  it("reads the 6.1 /proc/vmstat names", () => {
    const v = parseVmstat("nr_free_pages 100\npswpin 5\npswpout 9\npgmajfault 3\nworkingset_refault_file 12\n");
    expect(v).toMatchObject({ pswpin: 5, pswpout: 9, pgmajfault: 3, workingset_refault_file: 12, workingset_refault_anon: 0 });
  });

  it("subtracts counters", () => {
    expect(delta({ a: 5, b: 7 }, { a: 2, b: 7 })).toEqual({ a: 3, b: 0 });
  });
});
