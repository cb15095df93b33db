import { describe, expect, it } from "vitest";
import { intOption } from "../../cli/options.ts";

describe("intOption", () => {
  const mem = intOption("--memory-mib", 1, 2048);
  it("accepts whole numbers in range", () => {
    expect(mem("128")).toBe(128);
  });
  it("rejects words, fractions, negatives and out-of-range values with a message that names the flag", () => {
    expect(() => mem("lots")).toThrow(/--memory-mib takes a whole number/);
    expect(() => mem("1.5")).toThrow(/whole number/);
    expect(() => mem("-3")).toThrow(/whole number/);
    expect(() => mem("4096")).toThrow(/between 1 and 2048/);
  });
});
