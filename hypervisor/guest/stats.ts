/**
 * What a guest kernel says about itself, read through shell commands and parsed here (pure, so
 * the parsers are unit-tested). Guest-reported numbers are hints for policy and evidence for
 * checks; they are never trusted for anything that touches another guest.
 *
 * Sources: /proc/vmstat (mm/vmstat.c names in 6.1), /sys/kernel/debug/tmem/* (the tmem frontend
 * driver of patches/, one decimal counter per file), /proc/meminfo.
 */

/** The line TMEM_STATS_COMMAND prints instead of counters when the guest has no tmem debugfs. */
export const NO_TMEM_DEBUGFS_LINE = "no_tmem_debugfs 1";

/**
 * Prints every debugfs counter of the tmem frontend (in `dir`) as "name value" lines, in one grep:
 * few processes, so reading the counters disturbs the guest (and its page cache) as little as
 * possible. Without the directory (a kernel without the frontend) it prints NO_TMEM_DEBUGFS_LINE.
 */
export function tmemStatsCommand(dir = "/sys/kernel/debug/tmem"): string {
  return `cd ${dir} 2>/dev/null && grep . * | tr : " " || echo "${NO_TMEM_DEBUGFS_LINE}"`;
}

export const TMEM_STATS_COMMAND = tmemStatsCommand();

export const VMSTAT_COMMAND = "cat /proc/vmstat";

export interface TmemGuestStats {
  cleancache_gets: number;
  cleancache_hits: number;
  cleancache_puts: number;
  cleancache_puts_failed: number;
  cleancache_invalidates: number;
  cleancache_inode_invalidates: number;
  frontswap_stores: number;
  frontswap_stores_failed: number;
  frontswap_loads: number;
  frontswap_loads_failed: number;
  frontswap_invalidates: number;
  frontswap_area_invalidates: number;
  /** Puts the host refused as the ABI allows: TMEM_ENOSPC (no room, over allowance), TMEM_EBUSY (frozen). */
  hypercall_refusals: number;
  /** Hypercalls (the probe excepted) with any other negative result; validate fails on any. */
  hypercall_errors: number;
}

export const TMEM_GUEST_STAT_NAMES: readonly (keyof TmemGuestStats)[] = [
  "cleancache_gets",
  "cleancache_hits",
  "cleancache_puts",
  "cleancache_puts_failed",
  "cleancache_invalidates",
  "cleancache_inode_invalidates",
  "frontswap_stores",
  "frontswap_stores_failed",
  "frontswap_loads",
  "frontswap_loads_failed",
  "frontswap_invalidates",
  "frontswap_area_invalidates",
  "hypercall_refusals",
  "hypercall_errors",
];

/** "name value" lines to a record of numbers; lines that are not that shape are ignored. */
export function parseNameValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9_]+)\s+(\d+)\s*$/.exec(line.trim());
    if (m?.[1] && m[2] !== undefined) out[m[1]] = Number(m[2]);
  }
  return out;
}

/**
 * The tmem frontend's counters, or undefined when the guest has no tmem debugfs directory
 * (NO_TMEM_DEBUGFS_LINE) or printed no counter at all.
 */
export function parseTmemStats(text: string): TmemGuestStats | undefined {
  const kv = parseNameValues(text);
  if (kv["no_tmem_debugfs"] !== undefined || Object.keys(kv).length === 0) return undefined;
  const out = {} as TmemGuestStats;
  for (const name of TMEM_GUEST_STAT_NAMES) out[name] = kv[name] ?? 0;
  return out;
}

/** The /proc/vmstat counters the measurements use (6.1 names). */
export interface VmStats {
  pswpin: number;
  pswpout: number;
  pgmajfault: number;
  workingset_refault_file: number;
  workingset_refault_anon: number;
  pgpgin: number;
  pgpgout: number;
}

export function parseVmstat(text: string): VmStats {
  const kv = parseNameValues(text);
  return {
    pswpin: kv["pswpin"] ?? 0,
    pswpout: kv["pswpout"] ?? 0,
    pgmajfault: kv["pgmajfault"] ?? 0,
    workingset_refault_file: kv["workingset_refault_file"] ?? 0,
    workingset_refault_anon: kv["workingset_refault_anon"] ?? 0,
    pgpgin: kv["pgpgin"] ?? 0,
    pgpgout: kv["pgpgout"] ?? 0,
  };
}

/** Counter differences after - before, for every key of `after`. */
export function delta<T extends object>(after: T, before: T): T {
  const out = { ...after } as Record<string, number>;
  for (const [k, v] of Object.entries(after)) {
    if (typeof v === "number") out[k] = v - ((before as Record<string, number>)[k] ?? 0);
  }
  return out as T;
}
