import { describe, expect, it } from "vitest";
import { judgeWorkload, parseWorkloadOutput, parseWorkloadPhases, planWorkload, REASON_NOT_STARTED, REASON_UNFINISHED, WORKLOAD_NAMES, type WorkloadRunFacts } from "../../workloads/builtin.ts";
import { md5sumListing, seededBytes } from "../../workloads/files.ts";

describe("built-in workloads", () => {
  const p = { guestRamMib: 100, seed: 7, guests: 3 };

  it("sizes each workload from the guest's RAM", () => {
    expect(planWorkload("refault", p).fileSetMib).toBe(150);
    expect(planWorkload("swap", p).command(0)).toBe("memtouch 150 7 2 512");
    expect(planWorkload("swap", p).command(2)).toBe("memtouch 150 9 2 512");
    expect(planWorkload("mixed", p).fileSetMib).toBe(75);
  });

  it("chains the phased workload's guests by default: each starts when the previous one is done", () => {
    const w = planWorkload("phased", p);
    expect(w.chained).toBe(true);
    expect(w.startDelayS).toBeUndefined();
  });

  it("staggers the phased workload's guests by --phase-s when given", () => {
    const w = planWorkload("phased", { ...p, phaseS: 30 });
    expect(w.startDelayS?.(0)).toBe(0);
    expect(w.startDelayS?.(2)).toBe(60);
    expect(w.command(2)).toMatch(/stamp memtouch; memtouch /);
  });

  it("rejects an unknown workload with the list of known ones", () => {
    expect(() => planWorkload("fast", p)).toThrow(/unknown workload "fast"/);
    expect(WORKLOAD_NAMES).toEqual(["refault", "swap", "mixed", "phased"]);
  });

  it("reads mismatches and the file check from a workload's output", () => {
    expect(parseWorkloadOutput("memtouch: mib=1 mismatches=0 x\nmemtouch: mib=1 mismatches=3 y\nfiles: ok\n")).toEqual({ mismatches: 3, memtouchRuns: 2, filesOk: true });
  });

  it("gives no mismatch count (null, never 0) when no memtouch result line was printed", () => {
    expect(parseWorkloadOutput("files: CORRUPT\n")).toEqual({ mismatches: null, memtouchRuns: 0, filesOk: false });
    expect(parseWorkloadOutput("")).toEqual({ mismatches: null, memtouchRuns: 0, filesOk: undefined });
    // memtouch.c's error lines are not result lines.
    expect(parseWorkloadOutput("memtouch: cannot map 400 MiB\n").mismatches).toBeNull();
    expect(parseWorkloadOutput("memtouch: MIB must be 1..2048, RANDOM_WORDS 1..1024, SEED and PASSES whole numbers 0..4294967295\n").memtouchRuns).toBe(0);
  });

  it("says what each workload's command must print: setcheck over every page of the set", () => {
    expect(planWorkload("refault", p).requires).toEqual({ memtouchLines: 0, filesLine: true, setcheckPages: 150 * 256 });
    expect(planWorkload("swap", p).requires).toEqual({ memtouchLines: 1, filesLine: false });
    expect(planWorkload("mixed", p).requires).toEqual({ memtouchLines: 1, filesLine: true, setcheckPages: 75 * 256 });
    expect(planWorkload("phased", p).requires).toEqual({ memtouchLines: 1, filesLine: true, setcheckPages: 75 * 256 });
  });

  it("verifies the file set with setcheck (seed, pages, pages per file), not md5sum, after the read rounds", () => {
    const refault = planWorkload("refault", p).command(0);
    expect(refault).toContain("setcheck /data/set 7 38400 1024");
    expect(refault).not.toContain("md5sum");
    expect(refault.indexOf("cat /data/set/*")).toBeLessThan(refault.indexOf("setcheck"));
    expect(refault).toMatch(/exit \$vrc$/);
    expect(planWorkload("mixed", p).command(1)).toContain("setcheck /data/set 7 19200 1024");
    expect(planWorkload("phased", { ...p, seed: 9 }).command(2)).toContain("setcheck /data/set 9 19200 1024");
  });

  it("reads setcheck's result line", () => {
    expect(parseWorkloadOutput("setcheck: files=38 pages=38400 mismatches=2 ms=9000\nfiles: CORRUPT\n")).toEqual({
      mismatches: null,
      memtouchRuns: 0,
      filesOk: false,
      setcheck: { pages: 38400, mismatches: 2 },
    });
  });

  it("reads the phases a command's stamps mark", () => {
    const out = "phase: read 10.00\nfiles: ok\nphase: verify 70.25\nsetcheck: x\nphase: end 80.5\n";
    expect(parseWorkloadPhases(out)).toEqual([
      { name: "read", seconds: 60.25 },
      { name: "verify", seconds: 10.25 },
    ]);
    expect(parseWorkloadPhases("")).toEqual([]);
  });
});

/** memtouch.c's result line, as it prints it. */
const MT_OK = "memtouch: mib=150 pages=38400 seed=7 passes=2 random_words=512 mismatches=0 fill_ms=900 verify_ms=800\n";
/** setcheck.c's last two lines for the refault set of a 100 MiB guest, all pages intact. */
const SC_OK = "setcheck: files=38 pages=38400 mismatches=0 ms=9000\nfiles: ok\n";
const finished = (over: Partial<WorkloadRunFacts> = {}): WorkloadRunFacts => ({ end: "finished", exitCode: 0, output: "", oomKills: 0, started: true, timeoutS: 4200, ...over });

describe("judgeWorkload (a workload counts only if it ran to the end and passed)", () => {
  const p = { guestRamMib: 100, seed: 7, guests: 3 };
  const swap = planWorkload("swap", p).requires;
  const refault = planWorkload("refault", p).requires;
  const mixed = planWorkload("mixed", p).requires;

  it("is valid for a finished workload with exit 0, every required line, no OOM and good data", () => {
    expect(judgeWorkload(finished({ output: MT_OK }), swap)).toMatchObject({ valid: true, reasons: [] });
    expect(judgeWorkload(finished({ output: `${MT_OK}${SC_OK.replace("38400", "19200")}` }), mixed)).toMatchObject({ valid: true, reasons: [] });
    expect(judgeWorkload(finished({ output: SC_OK }), refault)).toMatchObject({ valid: true, reasons: [] });
  });

  it("fails an OOM-killed memtouch: the kill, the exit code and the missing result line, and no mismatch count", () => {
    const v = judgeWorkload(finished({ exitCode: 137, output: "Killed\n", oomKills: 2 }), swap);
    expect(v.valid).toBe(false);
    expect(v.reasons).toEqual(["OOM-killed (2 kills)", "exit code 137", "no memtouch result line"]);
    expect(v.parsed.mismatches).toBeNull();
  });

  it("fails an OOM kill even when the command still exited 0 with its line", () => {
    expect(judgeWorkload(finished({ output: MT_OK, oomKills: 1 }), swap).reasons).toEqual(["OOM-killed (1 kill)"]);
  });

  it("fails a timed-out workload (its output is only the error text)", () => {
    const v = judgeWorkload(finished({ end: "timed-out", exitCode: null, output: "g0: command `memtouch 150` timed out" }), swap);
    expect(v).toMatchObject({ valid: false, reasons: ["timed out after 4200 s"] });
    expect(v.parsed.mismatches).toBeNull();
  });

  it("fails a guest that died, saying why", () => {
    expect(judgeWorkload(finished({ end: "died", exitCode: null, error: "g0: kernel panic" }), swap).reasons).toEqual(["guest died (g0: kernel panic)"]);
  });

  it("marks an interrupted workload (empty output) as interrupted, not as 0 mismatches", () => {
    const v = judgeWorkload(finished({ end: "interrupted", exitCode: null }), swap);
    expect(v).toMatchObject({ valid: false, reasons: ["interrupted"], problems: [] });
    expect(v.parsed.mismatches).toBeNull();
  });

  it("fails a finished workload that misses a required line", () => {
    expect(judgeWorkload(finished({ output: "" }), refault).reasons).toEqual(["no files: line", "no setcheck result line"]);
    expect(judgeWorkload(finished({ output: SC_OK.replace("38400", "19200") }), mixed).reasons).toEqual(["no memtouch result line"]);
    expect(judgeWorkload(finished({ output: MT_OK + MT_OK }), swap).reasons).toEqual(["2 memtouch result lines, expected 1"]);
  });

  it("fails a verifier that did not finish or did not check every page", () => {
    // A files: ok line alone (as md5sum's check printed) no longer counts: setcheck must report the whole set.
    expect(judgeWorkload(finished({ output: "files: ok\n" }), refault).reasons).toEqual(["no setcheck result line"]);
    expect(judgeWorkload(finished({ output: SC_OK.replace("pages=38400", "pages=38399") }), refault).reasons).toEqual(["setcheck compared 38399 of 38400 pages"]);
    // Killed before its end: problem lines, no result line, no files: line.
    expect(judgeWorkload(finished({ exitCode: 137, output: "setcheck: /data/set/f0001: mismatch at page 3\nKilled\n" }), refault).reasons).toEqual([
      "exit code 137",
      "no files: line",
      "no setcheck result line",
    ]);
  });

  it("fails a set with wrong pages, naming how many", () => {
    const out = "setcheck: /data/set/f0002: mismatch at page 7\nsetcheck: files=38 pages=38400 mismatches=1 ms=9000\nfiles: CORRUPT\n";
    expect(judgeWorkload(finished({ exitCode: 1, output: out }), refault).reasons).toEqual(["exit code 1", "1 file-set pages wrong", "files CORRUPT"]);
  });

  it("fails wrong data: mismatches and a corrupt file set", () => {
    const sc = "setcheck: files=19 pages=19200 mismatches=3 ms=1\nfiles: CORRUPT\n";
    expect(judgeWorkload(finished({ exitCode: 1, output: `${MT_OK.replace("mismatches=0", "mismatches=5")}${sc}` }), mixed).reasons).toEqual([
      "exit code 1",
      "5 memtouch mismatches",
      "3 file-set pages wrong",
      "files CORRUPT",
    ]);
  });

  it("marks a guest stopped by --duration-s as unfinished, and one whose turn never came as never started; a stop is not a problem", () => {
    expect(judgeWorkload(finished({ end: "unfinished", exitCode: null }), swap)).toMatchObject({ valid: false, reasons: [REASON_UNFINISHED], problems: [] });
    expect(judgeWorkload(finished({ end: "unfinished", exitCode: null, started: false }), swap)).toMatchObject({ reasons: [REASON_UNFINISHED, REASON_NOT_STARTED], problems: [] });
    // An OOM kill before the stop is a problem all the same.
    expect(judgeWorkload(finished({ end: "unfinished", exitCode: null, oomKills: 1 }), swap).problems).toEqual(["OOM-killed (1 kill)"]);
  });

  it("judges a --cmd by its exit code alone (no required lines)", () => {
    expect(judgeWorkload(finished({ exitCode: 3, output: "hi\n" }), undefined)).toMatchObject({ valid: false, reasons: ["exit code 3"] });
    expect(judgeWorkload(finished({ output: "hi\n" }), undefined)).toMatchObject({ valid: true, reasons: [] });
  });

  it("fails when the OOM count could not be read", () => {
    expect(judgeWorkload(finished({ output: MT_OK, oomKills: null }), swap).reasons).toEqual(["OOM kills could not be read"]);
  });
});

describe("seeded file sets", () => {
  it("gives the same bytes for the same seed and different bytes otherwise", () => {
    expect(seededBytes(1, "a", 64).equals(seededBytes(1, "a", 64))).toBe(true);
    expect(seededBytes(1, "a", 64).equals(seededBytes(2, "a", 64))).toBe(false);
    expect(seededBytes(1, "a", 64).equals(seededBytes(1, "b", 64))).toBe(false);
  });

  it("lists md5 sums the way busybox md5sum prints them", () => {
    expect(md5sumListing({ dir: "set", files: [{ name: "f0000", md5: "ab", bytes: 1 }] })).toBe("ab  /data/set/f0000\n");
  });
});
