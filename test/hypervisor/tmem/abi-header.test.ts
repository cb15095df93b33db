/**
 * The two sides of the tmem ABI agree: every #define TMEM_* of include/linux/tmem_abi.h, as the
 * kernel patch series in patches/ adds it, has the same value in hypervisor/tmem/abi.ts, and every
 * TMEM_* constant of abi.ts is in the header (STYLE.md, item 2).
 */

import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import * as abi from "../../../hypervisor/tmem/abi.ts";
import { extractAddedFile, findPatchAdding, HEADER_PATH, parseTmemDefines } from "./abi-header.ts";

const PATCHES_DIR = fileURLToPath(new URL("../../../patches/", import.meta.url));

/**
 * Host-side conveniences in abi.ts that are derived from header values rather than copied from
 * the header, each with the derivation it must satisfy.
 */
const HOST_ONLY: Record<string, (v: number) => boolean> = {
  TMEM_PAGE_SIZE: (v) => v === 1 << abi.TMEM_PAGE_SHIFT,
};

/** Every exported number of abi.ts named TMEM_*. */
function abiNumbers(): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, value] of Object.entries(abi)) {
    if (name.startsWith("TMEM_") && typeof value === "number") out.set(name, value);
  }
  return out;
}

describe("tmem_abi.h in the patch series and abi.ts", () => {
  const found = findPatchAdding(PATCHES_DIR, HEADER_PATH);

  it("the patch series adds include/linux/tmem_abi.h", () => {
    expect(found, `no patch in ${PATCHES_DIR} adds ${HEADER_PATH}`).toBeDefined();
  });

  const header = parseTmemDefines(found?.text ?? "");

  it("give every #define TMEM_* of the header the same value in abi.ts", () => {
    expect(header.size).toBeGreaterThan(25);
    const ts = abiNumbers();
    for (const [name, value] of header) {
      expect(ts.has(name), `${name} is in tmem_abi.h but not in abi.ts`).toBe(true);
      expect(ts.get(name), `${name}: header ${value}, abi.ts ${ts.get(name)}`).toBe(value);
    }
  });

  it("have every TMEM_* constant of abi.ts in the header, or derived from it", () => {
    for (const [name, value] of abiNumbers()) {
      if (name in HOST_ONLY) {
        expect(header.has(name), `${name} is now in the header: drop it from HOST_ONLY`).toBe(false);
        expect(HOST_ONLY[name]!(value), `${name} = ${value} does not follow from the header`).toBe(true);
        continue;
      }
      expect(header.get(name), `${name} is in abi.ts but not in tmem_abi.h`).toBe(value);
    }
  });

  it("list exactly the header's TMEM_E* results in TMEM_ERRORS, by name", () => {
    const headerErrors = [...header].filter(([name]) => /^TMEM_E_?[A-Z]+$/.test(name));
    expect(Object.keys(abi.TMEM_ERRORS).sort()).toEqual(headerErrors.map(([name]) => name.slice(5)).sort());
    for (const [name, value] of headerErrors) {
      expect(abi.TMEM_ERRORS[name.slice(5) as abi.TmemErrorName]).toBe(value);
    }
  });

  it("spell TMEM_MAGIC as the bytes \"TMEM\" in little-endian order", () => {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32LE(abi.TMEM_MAGIC);
    expect(bytes.toString("latin1")).toBe("TMEM");
  });
});

describe("reading the header out of a patch", () => {
  const patch = (body: string[], count = body.length): string =>
    [
      "From 0 Mon Sep 17 00:00:00 2001",
      "Subject: [PATCH] x",
      "---",
      "diff --git a/other.c b/other.c",
      "--- a/other.c",
      "+++ b/other.c",
      "@@ -1 +1 @@",
      "-#define TMEM_X 1",
      "+#define TMEM_X 2",
      `diff --git a/${HEADER_PATH} b/${HEADER_PATH}`,
      "new file mode 100644",
      "index 0000000..1111111",
      "--- /dev/null",
      `+++ b/${HEADER_PATH}`,
      `@@ -0,0 +1,${count} @@`,
      ...body.map((l) => `+${l}`),
      "-- ",
      "2.39.5",
    ].join("\n");

  it("takes the added file's lines without their '+' and nothing from other files", () => {
    expect(extractAddedFile(patch(["#define TMEM_A 1", "", "#endif"]), HEADER_PATH)).toBe("#define TMEM_A 1\n\n#endif\n");
  });

  it("finds nothing in a patch that only modifies the file, or does not touch it", () => {
    const modifies = [`diff --git a/${HEADER_PATH} b/${HEADER_PATH}`, `--- a/${HEADER_PATH}`, `+++ b/${HEADER_PATH}`, "@@ -1 +1 @@", "-a", "+b"].join("\n");
    expect(extractAddedFile(modifies, HEADER_PATH)).toBeUndefined();
    expect(extractAddedFile(patch(["x"]), "include/linux/other.h")).toBeUndefined();
  });

  it("throws when the hunk is shorter than it says", () => {
    const short = patch(["a", "b"], 5);
    expect(() => extractAddedFile(short, HEADER_PATH)).toThrow(/line 3 of the hunk does not start with '\+'/);
    const truncated = short.split("\n").slice(0, -2).join("\n"); // no "-- " trailer either
    expect(() => extractAddedFile(truncated, HEADER_PATH)).toThrow(/promises 5 lines, patch has 2/);
  });
});

describe("parsing #define TMEM_*", () => {
  it("reads decimal, hex, negative and parenthesised values, ignoring comments and other macros", () => {
    const defines = parseTmemDefines(
      [
        "#ifndef _LINUX_TMEM_ABI_H",
        "#define _LINUX_TMEM_ABI_H",
        "#define TMEM_A\t\t1\t/* one */",
        "#define TMEM_B 0x4d454d54 // magic",
        "#define TMEM_C (-71)\t/* no accepted probe */",
        "# define TMEM_D 0xffffffff",
        "#define TMEM_E -2",
        "#define NOT_TMEM 5",
      ].join("\n"),
    );
    expect([...defines]).toEqual([
      ["TMEM_A", 1],
      ["TMEM_B", 0x4d454d54],
      ["TMEM_C", -71],
      ["TMEM_D", 0xffffffff],
      ["TMEM_E", -2],
    ]);
  });

  it("refuses a TMEM_* value it cannot read, rather than skipping it", () => {
    expect(() => parseTmemDefines("#define TMEM_PAGE_SIZE (1 << TMEM_PAGE_SHIFT)")).toThrow(/TMEM_PAGE_SIZE/);
    expect(() => parseTmemDefines("#define TMEM_EMPTY")).toThrow(/TMEM_EMPTY/);
  });

  it("refuses a name defined twice", () => {
    expect(() => parseTmemDefines("#define TMEM_A 1\n#define TMEM_A 2")).toThrow(/twice/);
  });
});
