import { describe, expect, it } from "vitest";
import { makeSwapImage } from "../../guest-images/swap.ts";

describe("makeSwapImage (swap v1 header, include/linux/swap.h)", () => {
  it("lays out version, last_page, uuid, label and the SWAPSPACE2 signature", () => {
    const img = makeSwapImage(2, "lbl", "00112233-4455-6677-8899-aabbccddeeff");
    const v = new DataView(img.buffer);
    expect(img.length).toBe(2 * 1024 * 1024);
    expect(v.getUint32(1024, true)).toBe(1);
    expect(v.getUint32(1028, true)).toBe(511);
    expect(v.getUint32(1032, true)).toBe(0);
    expect(Buffer.from(img.subarray(1036, 1052)).toString("hex")).toBe("00112233445566778899aabbccddeeff");
    expect(Buffer.from(img.subarray(1052, 1055)).toString()).toBe("lbl");
    expect(Buffer.from(img.subarray(4086, 4096)).toString()).toBe("SWAPSPACE2");
  });

  it("rejects sizes that are not whole MiB in range", () => {
    expect(() => makeSwapImage(0)).toThrow(RangeError);
    expect(() => makeSwapImage(1.5)).toThrow(RangeError);
  });
});
