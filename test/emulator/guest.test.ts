import { describe, expect, it } from "vitest";
import { minimumMemoryMib } from "../../emulator/guest.ts";

describe("minimumMemoryMib", () => {
  it("leaves room for v86's fixed initrd at 64 MiB, the reserved top 16 MiB and the kernel's work", () => {
    expect(minimumMemoryMib(0)).toBe(64 + 0 + 16 + 8);
    expect(minimumMemoryMib(1)).toBe(64 + 1 + 16 + 8);
    expect(minimumMemoryMib(2.5 * 1024 * 1024)).toBe(64 + 3 + 16 + 8);
  });
});
