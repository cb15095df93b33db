import { describe, expect, it } from "vitest";
import { checkGuestMemoryMib, checkInitrdSize, INITRD_MAX_MIB, MIN_GUEST_MEMORY_MIB, minimumMemoryMib } from "../../emulator/memory-size.ts";

describe("the guest memory range, known before any image exists", () => {
  it("starts where the largest initrd the build allows still fits", () => {
    expect(MIN_GUEST_MEMORY_MIB).toBe(minimumMemoryMib(INITRD_MAX_MIB * 1024 * 1024));
    expect(MIN_GUEST_MEMORY_MIB).toBe(64 + INITRD_MAX_MIB + 16 + 8);
  });

  it("accepts MIN..2048 and refuses one below, one above and fractions, naming the size to use", () => {
    expect(() => checkGuestMemoryMib(MIN_GUEST_MEMORY_MIB)).not.toThrow();
    expect(() => checkGuestMemoryMib(2048)).not.toThrow();
    for (const bad of [MIN_GUEST_MEMORY_MIB - 1, 2049, 100.5]) {
      expect(() => checkGuestMemoryMib(bad)).toThrow(
        expect.objectContaining({ code: "MEMORY_TOO_SMALL", message: `guest memory ${bad} MiB is outside ${MIN_GUEST_MEMORY_MIB}..2048 MiB`, hint: expect.stringMatching(new RegExp(`use --memory-mib ${MIN_GUEST_MEMORY_MIB} or more$`)) }),
      );
    }
  });

  it("refuses an initrd larger than the range allows for", () => {
    expect(() => checkInitrdSize(INITRD_MAX_MIB * 1024 * 1024)).not.toThrow();
    expect(() => checkInitrdSize(INITRD_MAX_MIB * 1024 * 1024 + 1)).toThrow(expect.objectContaining({ code: "IMAGE_MISSING" }));
  });
});
