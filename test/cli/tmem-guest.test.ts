import { describe, expect, it } from "vitest";
import { parseMemTotalMib, parseOomCount } from "../../cli/tmem-guest.ts";

describe("reading guest numbers (an unreadable number is an error, never 0)", () => {
  it("turns MemTotal in kB into MiB", () => {
    expect(parseMemTotalMib("g0", "101444\n")).toBe(99);
  });
  it("refuses MemTotal output that is not one number, quoting it", () => {
    expect(() => parseMemTotalMib("g0", "")).toThrow(/g0: cannot read MemTotal from \/proc\/meminfo: got ""/);
    expect(() => parseMemTotalMib("g0", "sed: /proc/meminfo: No such file\n")).toThrow(/got "sed: \/proc\/meminfo: No such file\\n"/);
    expect(() => parseMemTotalMib("g0", "101444\n101444\n")).toThrow(/cannot read MemTotal/);
    // Under 1 MiB would size every workload to memtouch 1.
    expect(() => parseMemTotalMib("g0", "12\n")).toThrow(/cannot read MemTotal/);
  });
  it("reads grep -c's OOM count, 0 included", () => {
    expect(parseOomCount("g1", "0\n")).toBe(0);
    expect(parseOomCount("g1", "2\n")).toBe(2);
  });
  it("refuses an OOM count that is not a number, quoting it", () => {
    expect(() => parseOomCount("g1", "sh: dmesg: not found\n")).toThrow(/g1: cannot count OOM kills: `dmesg \| grep -c` printed "sh: dmesg: not found\\n"/);
    expect(() => parseOomCount("g1", "")).toThrow(/cannot count OOM kills/);
  });
});
