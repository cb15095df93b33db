import { describe, expect, it } from "vitest";
import { parseWorkloadOutput, planWorkload, WORKLOAD_NAMES } from "../../workloads/builtin.ts";
import { md5sumListing, seededBytes } from "../../workloads/files.ts";

describe("built-in workloads", () => {
  const p = { guestRamMib: 100, seed: 7, guests: 3 };

  it("sizes each workload from the guest's RAM", () => {
    expect(planWorkload("refault", p).fileSetMib).toBe(150);
    expect(planWorkload("swap", p).command(0, "")).toBe("memtouch 150 7 2 512");
    expect(planWorkload("swap", p).command(2, "")).toBe("memtouch 150 9 2 512");
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
    expect(w.command(2, "x")).toMatch(/^memtouch /);
  });

  it("rejects an unknown workload with the list of known ones", () => {
    expect(() => planWorkload("fast", p)).toThrow(/unknown workload "fast"/);
    expect(WORKLOAD_NAMES).toEqual(["refault", "swap", "mixed", "phased"]);
  });

  it("reads mismatches and the file check from a workload's output", () => {
    expect(parseWorkloadOutput("memtouch: mib=1 mismatches=0 x\nmemtouch: mib=1 mismatches=3 y\nfiles: ok\n")).toEqual({ mismatches: 3, memtouchRuns: 2, filesOk: true });
    expect(parseWorkloadOutput("files: CORRUPT\n")).toEqual({ mismatches: 0, memtouchRuns: 0, filesOk: false });
    expect(parseWorkloadOutput("")).toEqual({ mismatches: 0, memtouchRuns: 0, filesOk: undefined });
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
