import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { folderBytes } from "../../guest-images/disks.ts";

describe("folderBytes (sizing the --files data disk)", () => {
  it("counts each file rounded up to 4 KiB plus a block per entry, and a block per folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-files-"));
    writeFileSync(join(dir, "a"), Buffer.alloc(5000));
    mkdirSync(join(dir, "sub"));
    writeFileSync(join(dir, "sub", "b"), "");
    expect(folderBytes(dir)).toBe(8192 + 4096 + (4096 + 4096));
  });

  it("does not follow symbolic links: a link to a parent folder and a dangling link are one block each", () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-files-"));
    mkdirSync(join(dir, "sub"));
    symlinkSync("..", join(dir, "sub", "up"));
    symlinkSync("/nonexistent/target", join(dir, "dangling"));
    expect(folderBytes(dir)).toBe(4096 + 4096 + 4096);
  });
});
