/**
 * The workloads' file-set verifier in a real guest: setcheck (guest-images/programs/setcheck.c)
 * rebuilds every page of a set written by workloads/files.ts, names each wrong, missing or extra
 * page and any stray file, and the refault workload's own command, run over a small set, is judged
 * valid with its phases stamped.
 */
import { appendFileSync, closeSync, cpSync, mkdtempSync, openSync, readSync, rmSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runGuests } from "../../cli/run.ts";
import { judgeWorkload, parseWorkloadPhases, planWorkload } from "../../workloads/builtin.ts";
import { writeFileSet } from "../../workloads/files.ts";

describe("setcheck", () => {
  it("passes the set the host wrote, names every wrong page and stray file in a damaged copy, and the refault command counts", { timeout: 600_000 }, async () => {
    const plan = planWorkload("refault", { guestRamMib: 8, seed: 3, guests: 1 });
    const dir = mkdtempSync(join(tmpdir(), "tmemu-setcheck-"));
    try {
      const set = writeFileSet(dir, "set", plan.fileSetMib, plan.fileMib, 3);
      expect(set.pages).toBe(plan.fileSetMib * 256);
      cpSync(join(dir, "set"), join(dir, "bad"), { recursive: true });
      // One bit of page 5 of f0001, the last two pages of f0000 gone, a page too many on f0002, a stray file.
      const fd = openSync(join(dir, "bad", "f0001"), "r+");
      const byte = Buffer.alloc(1);
      readSync(fd, byte, 0, 1, 5 * 4096 + 123);
      byte[0] = byte[0]! ^ 0x01; // one bit (a constant could be the byte already there)
      writeSync(fd, byte, 0, 1, 5 * 4096 + 123);
      closeSync(fd);
      truncateSync(join(dir, "bad", "f0000"), 1022 * 4096);
      appendFileSync(join(dir, "bad", "f0002"), Buffer.alloc(4096, 1));
      writeFileSync(join(dir, "bad", "notes.txt"), "hi\n");
      const cmd = `setcheck /data/bad 3 ${set.pages} 1024; echo "bad rc=$?"; setcheck /data/set 4 ${set.pages} 1024 | tail -2; ${plan.command(0)}`;
      const r = await runGuests({ guests: 1, memoryMib: 128, policy: "static", cmd, files: dir, seed: 1 });
      const g = r.guests[0]!;
      process.stderr.write(`setcheck output:\n${g.output}\n`);
      expect(g.output).toContain("setcheck: /data/bad: unexpected entry notes.txt\n");
      expect(g.output).toContain("setcheck: /data/bad/f0000: missing pages from page 1022\n");
      expect(g.output).toContain("setcheck: /data/bad/f0001: mismatch at page 5\n");
      expect(g.output).toContain("setcheck: /data/bad/f0002: extra pages past the end 1\n");
      // 1 stray file + 2 missing + 1 wrong + 1 extra; compared: all but the 2 missing pages.
      expect(g.output).toMatch(new RegExp(`^setcheck: files=3 pages=${set.pages - 2} mismatches=5 ms=\\d+\\nfiles: CORRUPT\\nbad rc=1$`, "m"));
      // The wrong seed: every page wrong.
      expect(g.output).toMatch(new RegExp(`^setcheck: files=3 pages=${set.pages} mismatches=${set.pages} ms=\\d+\\nfiles: CORRUPT$`, "m"));
      // The workload's own command over the intact set: valid, with its phases.
      const own = g.output.slice(g.output.indexOf("phase: read"));
      const v = judgeWorkload({ end: "finished", exitCode: g.exitCode, output: own, oomKills: g.oomKills, started: true, timeoutS: 600 }, plan.requires);
      expect(v).toMatchObject({ valid: true, reasons: [] });
      expect(v.parsed.setcheck).toEqual({ pages: set.pages, mismatches: 0 });
      expect(parseWorkloadPhases(own).map((p) => p.name)).toEqual(["read", "verify"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
