/** `tmemu run`'s verdict from a summary: which guests failed, the exit code, the table (no guest is booted). */
import { describe, expect, it } from "vitest";
import { failedGuests, formatSummary, runExitCode } from "../../cli/run.ts";
import { judgeWorkload, planWorkload, type WorkloadRunFacts } from "../../workloads/builtin.ts";
import { guest, summary } from "./bench-fixtures.ts";
import type { GuestSummary, RunSummary } from "../../cli/run.ts";

const SWAP = planWorkload("swap", { guestRamMib: 100, seed: 1, guests: 2 }).requires;
const MT_OK = "memtouch: mib=150 pages=38400 seed=1 passes=2 random_words=512 mismatches=0 fill_ms=900 verify_ms=800\n";

/** A guest summary as runGuests builds it: judged by judgeWorkload from how its command ended. */
function judged(name: string, facts: Partial<WorkloadRunFacts>, requires = SWAP as typeof SWAP | undefined): GuestSummary {
  const f: WorkloadRunFacts = { end: "finished", exitCode: 0, output: "", oomKills: 0, started: true, timeoutS: 4200, ...facts };
  const v = judgeWorkload(f, requires);
  return guest({
    name,
    status: f.end,
    exitCode: f.exitCode,
    seconds: f.end === "finished" ? 10 : null,
    valid: v.valid,
    reasons: v.reasons,
    mismatches: v.parsed.mismatches,
    memtouchRuns: v.parsed.memtouchRuns,
    filesOk: v.parsed.filesOk ?? null,
    oomKills: f.oomKills ?? 0,
    vmstat: f.end === "finished" ? guest().vmstat : null,
  });
}

function run(guests: GuestSummary[], over: Partial<RunSummary> = {}): RunSummary {
  return summary(guests, { workload: "swap", ...over });
}

describe("tmemu run's verdict", () => {
  it("exits 0 when every workload finished and passed", () => {
    const s = run([judged("g0", { output: MT_OK }), judged("g1", { output: MT_OK })]);
    expect(s.valid).toBe(true);
    expect(failedGuests(s)).toEqual([]);
    expect(runExitCode(s)).toBe(0);
  });

  it("exits 1 for an OOM-killed guest and names it with the reasons", () => {
    const s = run([judged("g0", { output: MT_OK }), judged("g1", { exitCode: 137, output: "Killed\n", oomKills: 1 })]);
    expect(failedGuests(s).map((g) => [g.name, g.reasons])).toEqual([["g1", ["OOM-killed (1 kill)", "exit code 137", "no memtouch result line"]]]);
    expect(s.reasons).toEqual(["g1: OOM-killed (1 kill)", "g1: exit code 137", "g1: no memtouch result line"]);
    expect(runExitCode(s)).toBe(1);
    expect(formatSummary(s)).toMatch(/g1 .* NO: OOM-killed \(1 kill\); exit code 137; no memtouch result line/);
  });

  it("exits 1 for a timed-out guest and for a guest that never printed its line", () => {
    expect(runExitCode(run([judged("g0", { end: "timed-out", exitCode: null, output: "timed out" })]))).toBe(1);
    expect(runExitCode(run([judged("g0", { output: "" })]))).toBe(1);
  });

  it("exits 1 for a --cmd that exits 3, naming the guest", () => {
    const s = run([judged("g0", { exitCode: 3, output: "hi\n" }, undefined)], { workload: "cmd" });
    expect(failedGuests(s).map((g) => g.name)).toEqual(["g0"]);
    expect(runExitCode(s)).toBe(1);
  });

  it("a --duration-s stop with one guest finished and one unfinished: exit 0, not valid, the unfinished guest has no mismatch count", () => {
    const s = run([judged("g0", { output: MT_OK }), judged("g1", { end: "unfinished", exitCode: null })], { stopped: "duration" });
    expect(s.guests.map((g) => [g.name, g.status, g.valid, g.mismatches])).toEqual([
      ["g0", "finished", true, 0],
      ["g1", "unfinished", false, null],
    ]);
    expect(s.valid).toBe(false);
    expect(s.reasons).toEqual(["g1: unfinished at --duration-s"]);
    expect(failedGuests(s)).toEqual([]);
    expect(runExitCode(s)).toBe(0);
    const text = formatSummary(s);
    expect(text).toContain("(STOPPED at --duration-s)");
    expect(text).toMatch(/g1 .* - .* NO: unfinished at --duration-s/);
  });

  it("a --duration-s stop after a guest was OOM-killed is a failure (exit 1)", () => {
    const s = run([judged("g0", { end: "unfinished", exitCode: null, oomKills: 1 })], { stopped: "duration" });
    expect(runExitCode(s)).toBe(1);
  });

  it("Ctrl-C exits 130, and 1 if a guest had already failed", () => {
    const stopped = { stopped: "interrupted" as const, interrupted: true };
    expect(runExitCode(run([judged("g0", { output: MT_OK }), judged("g1", { end: "interrupted", exitCode: null })], stopped))).toBe(130);
    expect(runExitCode(run([judged("g0", { exitCode: 137, oomKills: 1 }), judged("g1", { end: "interrupted", exitCode: null })], stopped))).toBe(1);
  });

  it("says how each guest started, and nothing for summaries from before snapshots", () => {
    const text = formatSummary(run([guest({ name: "g0", start: "made" }), guest({ name: "g1", start: "snapshot" }), guest({ name: "g2", start: "cold" })]));
    expect(text).toContain("guests started: g0 cold boot that made the boot snapshot, then from it, g1 from the boot snapshot, g2 cold boot\n");
    expect(formatSummary(run([guest({ name: "g0" })]))).not.toContain("guests started");
  });
});
