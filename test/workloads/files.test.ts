import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { compressPage, hashPage } from "../../hypervisor/tmem/codec.ts";
import { CLASS_STEP, framesPerZspage } from "../../hypervisor/tmem/zpool.ts";
import { setFileBytes, setPage, writeFileSet } from "../../workloads/files.ts";

const page = (seed: number, file: number, p: number): Uint32Array => {
  const w = new Uint32Array(1024);
  setPage(seed, file, p, w);
  return w;
};

describe("the workloads' file set", () => {
  it("is pinned: setcheck.c rebuilds these exact words (change both together)", () => {
    const w = page(1, 2, 3);
    expect([w[0], w[1], w[511], w[1023]]).toEqual([1118369900, 3910107518, 1722418872, 804647045]);
    expect(hashPage(w)).toBe(297393640);
  });

  it("compresses about 2:1 with the store's LZ4, page by page, like real files", () => {
    let bytes = 0;
    let worst = 0;
    let slots = 0;
    const pages = 1024;
    for (let i = 0; i < pages; i++) {
      const stored = compressPage(new Uint8Array(page(1, i % 40, i).buffer));
      bytes += stored.length;
      worst = Math.max(worst, stored.length);
      // Its size class's slot, and that slot's share of its zspage's frames (the tail of a zspage is lost).
      const slot = Math.ceil(stored.length / CLASS_STEP) * CLASS_STEP;
      const zsBytes = framesPerZspage(slot) * 4096;
      slots += zsBytes / Math.floor(zsBytes / slot);
    }
    const ratio = (pages * 4096) / bytes;
    const perFrame = (pages * 4096) / slots;
    process.stderr.write(`file set: LZ4 ${(bytes / pages).toFixed(0)} bytes per page (${ratio.toFixed(2)}:1), worst ${worst}, ${perFrame.toFixed(2)} pages per frame in size classes\n`);
    expect(ratio).toBeGreaterThan(1.9);
    expect(ratio).toBeLessThan(2.4);
    // Every page compresses (none kept whole) and fits the size classes at 1.8 pages per frame or better.
    expect(worst).toBeLessThan(2400);
    expect(perFrame).toBeGreaterThan(1.8);
  });

  it("has no two equal pages and no same-filled page (dedup and the same-filled path find nothing)", () => {
    const seen = new Set<string>();
    for (let f = 0; f < 4; f++) {
      for (let p = 0; p < 256; p++) {
        const w = page(5, f, p);
        expect(w.every((x) => x === w[0])).toBe(false);
        seen.add(Buffer.from(w.buffer).toString("base64"));
      }
    }
    expect(seen.size).toBe(4 * 256);
    expect(Buffer.from(page(5, 0, 0).buffer).equals(Buffer.from(page(6, 0, 0).buffer))).toBe(false);
  });

  it("writes files of whole pages named f0000.. and says how many pages there are", () => {
    const root = mkdtempSync(join(tmpdir(), "tmemu-set-"));
    try {
      const set = writeFileSet(root, "set", 9, 4, 3);
      expect(readdirSync(join(root, "set"))).toEqual(["f0000", "f0001", "f0002"]);
      expect(set).toMatchObject({ seed: 3, pages: 9 * 256, filePages: 1024 });
      expect(set.files.map((f) => f.bytes)).toEqual([4, 4, 1].map((m) => m * 1024 * 1024));
      const f1 = readFileSync(join(root, "set", "f0001"));
      expect(f1.equals(setFileBytes(3, 1, 1024))).toBe(true);
      expect(f1.subarray(4096 * 7, 4096 * 8).equals(Buffer.from(page(3, 1, 7).buffer))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
