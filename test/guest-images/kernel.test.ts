import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { applyPatches, firstFailedHunk, listPatches } from "../../guest-images/kernel.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

describe("firstFailedHunk", () => {
  it("names the file and the hunk that failed", () => {
    const out = "patching file mm/filemap.c\nHunk #1 succeeded at 10.\nHunk #2 FAILED at 345.\n1 out of 2 hunks FAILED -- saving rejects";
    expect(firstFailedHunk(out)).toBe("mm/filemap.c: Hunk #2 FAILED at 345.");
  });
  it("reports a patch that was already applied", () => {
    expect(firstFailedHunk("checking file a.c\nReversed (or previously applied) patch detected!  Skipping patch.")).toMatch(/^a.c: Reversed/);
  });
});

describe("applyPatches", () => {
  it("applies a series in order and fails on the first patch that does not apply, naming it and its hunk", () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-patch-"));
    const tree = join(dir, "tree");
    const pdir = join(dir, "patches");
    mkdirSync(tree);
    mkdirSync(pdir);
    writeFileSync(join(tree, "a.txt"), "one\ntwo\nthree\n");
    writeFileSync(join(pdir, "0001-good.patch"), "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n");
    writeFileSync(join(pdir, "0002-bad.patch"), "--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-zwei\n+ZWEI\n three\n");
    const log = join(dir, "log");
    const patches = listPatches(pdir);
    expect(patches.map((p) => p.split("/").pop())).toEqual(["0001-good.patch", "0002-bad.patch"]);
    let err: unknown;
    try {
      applyPatches(tree, patches, log);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TmemuError);
    expect((err as TmemuError).code).toBe("PATCH_FAILED");
    expect((err as TmemuError).message).toMatch(/0002-bad\.patch does not apply: a\.txt: Hunk #1 FAILED/);
    // The good patch went in; the bad one left the tree as it was (dry run first).
    expect(readFileSync(join(tree, "a.txt"), "utf8")).toBe("one\nTWO\nthree\n");
  });

  it("gives a clear error for a missing patch folder", () => {
    expect(() => listPatches("/nonexistent/patches")).toThrow(/does not exist/);
  });
});
