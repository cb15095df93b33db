import { describe, expect, it } from "vitest";
import { hashInputs } from "../../guest-images/inputs.ts";

describe("hashInputs (image cache keys)", () => {
  const base = { "linux-source": "6.1.192-2", "kernel.config": "CONFIG_SWAP=y\n", "patches/0001-a.patch": new Uint8Array([1, 2, 3]) };

  it("is stable and independent of key order", () => {
    const reordered = { "patches/0001-a.patch": new Uint8Array([1, 2, 3]), "kernel.config": "CONFIG_SWAP=y\n", "linux-source": "6.1.192-2" };
    expect(hashInputs(base)).toBe(hashInputs(reordered));
  });

  it("changes when any one input changes: a patch byte, a version, the config, a new patch", () => {
    const h = hashInputs(base);
    expect(hashInputs({ ...base, "patches/0001-a.patch": new Uint8Array([1, 2, 4]) })).not.toBe(h);
    expect(hashInputs({ ...base, "linux-source": "6.1.193-1" })).not.toBe(h);
    expect(hashInputs({ ...base, "kernel.config": "CONFIG_SWAP=y\nCONFIG_X=y\n" })).not.toBe(h);
    expect(hashInputs({ ...base, "patches/0002-b.patch": "" })).not.toBe(h);
  });

  it("cannot be fooled by moving bytes between a name and its value", () => {
    expect(hashInputs({ ab: "c" })).not.toBe(hashInputs({ a: "bc" }));
  });
});
