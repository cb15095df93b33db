import { describe, expect, it } from "vitest";
import { checkKconfig, parseKconfig } from "../../guest-images/kconfig.ts";

describe("parseKconfig", () => {
  it("reads =y, =m, strings, numbers and 'is not set' lines, and ignores comments", () => {
    const m = parseKconfig(['# a comment', 'CONFIG_A=y', 'CONFIG_B=m', 'CONFIG_C="lzo"', "CONFIG_D=100", "# CONFIG_E is not set", ""].join("\n"));
    expect([...m]).toEqual([
      ["CONFIG_A", "y"],
      ["CONFIG_B", "m"],
      ["CONFIG_C", '"lzo"'],
      ["CONFIG_D", "100"],
      ["CONFIG_E", "n"],
    ]);
  });
});

describe("checkKconfig", () => {
  it("accepts a final config that kept every option of the fragment", () => {
    expect(checkKconfig("CONFIG_SWAP=y\n# CONFIG_X is not set\n", "CONFIG_SWAP=y\nCONFIG_OTHER=y\n")).toEqual([]);
  });

  it("names an option Kconfig silently dropped (missing from .config counts as n)", () => {
    expect(checkKconfig("CONFIG_SWAP=y\nCONFIG_ZSWAP=y\n", "CONFIG_SWAP=y\n# CONFIG_ZSWAP is not set\n")).toEqual([{ option: "CONFIG_ZSWAP", wanted: "y", got: "n" }]);
    expect(checkKconfig("CONFIG_NEW=y\n", "")).toEqual([{ option: "CONFIG_NEW", wanted: "y", got: "n" }]);
  });

  it("names an option whose value changed", () => {
    expect(checkKconfig('CONFIG_ZSWAP_COMPRESSOR_DEFAULT="lzo"\n', 'CONFIG_ZSWAP_COMPRESSOR_DEFAULT="zstd"\n')).toEqual([
      { option: "CONFIG_ZSWAP_COMPRESSOR_DEFAULT", wanted: '"lzo"', got: '"zstd"' },
    ]);
  });
});
