/**
 * Several guests, one store (`tmemu run`): guests reading the same read-only image share one
 * shared ephemeral pool, so the store holds the data once, however many guests read it; and the
 * self-ballooning host moves memory without OOM kills or data errors.
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runGuests } from "../../cli/run.ts";
import { writeFileSet } from "../../workloads/files.ts";

describe("tmemu run", () => {
  it("shares one pool for one read-only image: store frames grow with the data, not with the guests", { timeout: 1_800_000 }, async () => {
    const cmd = "cat /data/set/* > /dev/null; echo 3 > /proc/sys/vm/drop_caches; cat /data/set/* > /dev/null";
    // The same 48 MiB file set, read by 1 and by 3 guests.
    const files = mkdtempSync(join(tmpdir(), "tmemu-share-"));
    writeFileSet(files, "set", 48, 4, 5);
    const r1 = await runGuests({ guests: 1, memoryMib: 128, budgetMib: 128 + 256, policy: "static", cmd, files, seed: 1 });
    const r3 = await runGuests({ guests: 3, memoryMib: 128, budgetMib: 3 * 128 + 256, policy: "static", cmd, files, seed: 1 });
    const used1 = r1.store.pagesEphemeral;
    const used3 = r3.store.pagesEphemeral;
    process.stderr.write(`shared pool: 1 guest -> ${used1} ephemeral pages, 3 guests -> ${used3}; hits ${r3.guests.map((g) => g.tmem?.getHits).join(",")}\n`);
    expect(used1).toBeGreaterThan(8 * 256);
    expect(used3).toBeLessThan(used1 * 1.5);
    // Guests after the first find the blocks in tmem: the later guests read far less from disk.
    for (const g of r3.guests) expect(g.exitCode).toBe(0);
  });
});
