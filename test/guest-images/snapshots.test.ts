/**
 * The boot-snapshot cache (guest-images/snapshots.ts): keyed by everything the state depends on,
 * made once, read back, and a damaged file made again (never restored).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { afterAll, describe, expect, it } from "vitest";
import { dirname, join } from "node:path";
import { bootSnapshotKey, ensureBootSnapshot, imagesKeyOf, MAX_CACHED, type BootSnapshotOptions } from "../../guest-images/snapshots.ts";

const O: BootSnapshotOptions = { memoryMib: 128, kernelArgs: [], tmem: true, balloon: true, swapBytes: 64 << 20 };

describe("boot snapshot key", () => {
  it("changes with the images and with every boot option", () => {
    const k = bootSnapshotKey("a.b.c", O);
    expect(bootSnapshotKey("a.b.c", { ...O })).toBe(k);
    for (const other of [
      bootSnapshotKey("a.b.d", O),
      bootSnapshotKey("x.b.c", O),
      bootSnapshotKey("a.b.c", { ...O, memoryMib: 256 }),
      bootSnapshotKey("a.b.c", { ...O, kernelArgs: ["quiet"] }),
      bootSnapshotKey("a.b.c", { ...O, tmem: false }),
      bootSnapshotKey("a.b.c", { ...O, balloon: false }),
      bootSnapshotKey("a.b.c", { ...O, swapBytes: 0 }),
    ]) {
      expect(other).not.toBe(k);
    }
  });

  it("names the images by their stage keys and BIOS build", () => {
    expect(imagesKeyOf({ kernelKey: "k1", initrdKey: "i1", biosPath: "/c/bios/1.16.2-1/bios.bin" })).toBe("k1.i1.1.16.2-1");
  });
});

describe("ensureBootSnapshot", () => {
  const root = mkdtempSync(join(tmpdir(), "tmemu-snapcache-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  let made = 0;
  const make = async () => {
    made++;
    return { state: new Uint8Array([made, 2, 3]), kernelRelease: "6.1.176" };
  };

  it("makes the snapshot once, then reads it; another key makes another", async () => {
    const a = await ensureBootSnapshot("a.b.c", O, make, root);
    expect(a.made).toBe(true);
    const b = await ensureBootSnapshot("a.b.c", O, make, root);
    expect(b.made).toBe(false);
    expect([...b.state]).toEqual([1, 2, 3]);
    expect(b.kernelRelease).toBe("6.1.176");
    expect(made).toBe(1);
    expect((await ensureBootSnapshot("a.b.X", O, make, root)).made).toBe(true);
    expect(made).toBe(2);
  });

  it("a damaged cached file is never restored: it is made again", async () => {
    const a = await ensureBootSnapshot("a.b.c", O, make, root);
    const bytes = readFileSync(a.path);
    bytes[bytes.byteLength - 40]! ^= 1;
    writeFileSync(a.path, bytes);
    const again = await ensureBootSnapshot("a.b.c", O, make, root);
    expect(again.made).toBe(true);
    expect([...again.state]).toEqual([made, 2, 3]);
  });

  it("guests starting at once make it once, and only one of them is told it made it", async () => {
    const before = made;
    const slowMake = async () => {
      await new Promise((r) => setTimeout(r, 200));
      return make();
    };
    const all = await Promise.all(Array.from({ length: 4 }, () => ensureBootSnapshot("c.c.c", O, slowMake, root)));
    expect(made).toBe(before + 1);
    expect(all.filter((s) => s.made)).toHaveLength(1);
    for (const s of all) expect([...s.state]).toEqual([made, 2, 3]);
  });

  it("keeps the snapshots used last: one read all along survives MAX_CACHED others made after it", async () => {
    const keep = await ensureBootSnapshot("keep.b.c", O, make, root);
    for (let i = 0; i < MAX_CACHED; i++) {
      await ensureBootSnapshot(`other${i}.b.c`, O, make, root);
      await new Promise((r) => setTimeout(r, 5)); // distinct mtimes
      expect((await ensureBootSnapshot("keep.b.c", O, make, root)).made).toBe(false);
    }
    expect(existsSync(keep.path)).toBe(true);
    expect(readdirSync(dirname(keep.path))).toHaveLength(MAX_CACHED);
  });
});
