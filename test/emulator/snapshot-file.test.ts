/**
 * The snapshot file (emulator/snapshot-file.ts): exact frame bytes, a round trip, and every damaged
 * or mismatched file refused with BAD_SNAPSHOT before anything is restored.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { decodeSnapshot, encodeSnapshot, packSparse, readSnapshotFile, unpackSparse, SNAPSHOT_FORMAT_VERSION, writeSnapshotFile, type SnapshotExpectation, type SnapshotHeader } from "../../emulator/snapshot-file.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

const HEADER: Omit<SnapshotHeader, "sections"> = {
  kind: "save",
  imagesKey: "k1.i1.b1",
  memoryMib: 128,
  tmem: true,
  balloon: true,
  kernelArgs: ["quiet"],
  kernelRelease: "6.1.176",
  createdAt: "2026-11-30T00:00:00.000Z",
};
const EXPECT: SnapshotExpectation = { kind: "save", imagesKey: "k1.i1.b1" };

function file(sections = { machine: new Uint8Array([1, 2, 3]), "swap-disk": new Uint8Array(5000).fill(7) }): Uint8Array {
  const parts = encodeSnapshot(HEADER, sections);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

function refusal(bytes: Uint8Array, wanted = EXPECT): TmemuError {
  try {
    decodeSnapshot(bytes, "f.snap", wanted);
  } catch (err) {
    if (err instanceof TmemuError) return err;
    throw err;
  }
  throw new Error("not refused");
}

describe("snapshot file layout", () => {
  it("starts with the magic, the format version and the header length, and ends with a SHA-256", () => {
    const f = file();
    expect(new TextDecoder().decode(f.subarray(0, 8))).toBe("TMEMUSNP");
    const v = new DataView(f.buffer);
    expect(v.getUint32(8, true)).toBe(SNAPSHOT_FORMAT_VERSION);
    const h = v.getUint32(12, true);
    const header = JSON.parse(new TextDecoder().decode(f.subarray(16, 16 + h))) as SnapshotHeader;
    expect(header.sections).toEqual([
      { name: "machine", bytes: 3 },
      { name: "swap-disk", bytes: 5000 },
    ]);
    expect([...f.subarray(16 + h, 16 + h + 3)]).toEqual([1, 2, 3]);
    expect(f.byteLength).toBe(16 + h + 3 + 5000 + 32);
  });

  it("round trip: header and sections come back", () => {
    const { header, sections } = decodeSnapshot(file(), "f.snap", EXPECT);
    expect(header.kernelRelease).toBe("6.1.176");
    expect([...sections["machine"]!]).toEqual([1, 2, 3]);
    expect(sections["swap-disk"]!.every((b) => b === 7)).toBe(true);
  });
});

describe("refused files", () => {
  it("truncated at any point", () => {
    const f = file();
    for (const cut of [0, 10, 20, 100, f.byteLength - 33, f.byteLength - 1]) {
      const e = refusal(f.subarray(0, cut));
      expect(e.code).toBe("BAD_SNAPSHOT");
      expect(e.message).toMatch(/too short|truncated/);
    }
  });

  it("one flipped bit anywhere in the sections: checksum mismatch", () => {
    const f = file();
    const g = f.slice();
    g[g.byteLength - 100]! ^= 0x10;
    expect(refusal(g).message).toMatch(/checksum mismatch/);
    const h = f.slice();
    h[h.byteLength - 1]! ^= 1; // the checksum itself
    expect(refusal(h).message).toMatch(/checksum mismatch/);
  });

  it("not a snapshot, another format version", () => {
    expect(refusal(new Uint8Array(100)).message).toMatch(/not a tmemu snapshot/);
    const f = file();
    new DataView(f.buffer).setUint32(8, 99, true);
    expect(refusal(f).message).toMatch(/format version 99/);
  });

  it("from other images, of another memory size, with/without tmem, of another kind", () => {
    const f = file();
    expect(refusal(f, { ...EXPECT, imagesKey: "k2.i1.b1" }).message).toMatch(/other guest images/);
    expect(refusal(f, { ...EXPECT, memoryMib: 256 }).message).toMatch(/128 MiB guest, not 256/);
    expect(refusal(f, { ...EXPECT, tmem: false }).message).toMatch(/with the tmem device/);
    expect(refusal(f, { ...EXPECT, kind: "boot" }).message).toMatch(/a save snapshot/);
  });
});

describe("files on disk", () => {
  const dir = mkdtempSync(join(tmpdir(), "tmemu-snapfile-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writeSnapshotFile then readSnapshotFile; a missing file is BAD_SNAPSHOT", () => {
    const path = join(dir, "a.snap");
    const bytes = writeSnapshotFile(path, HEADER, { machine: new Uint8Array([9]) });
    expect(readFileSync(path).byteLength).toBe(bytes);
    expect([...readSnapshotFile(path, EXPECT).sections["machine"]!]).toEqual([9]);
    writeFileSync(path, readFileSync(path).subarray(0, bytes - 5));
    expect(() => readSnapshotFile(path, EXPECT)).toThrow(/truncated/);
    expect(() => readSnapshotFile(join(dir, "none.snap"), EXPECT)).toThrow(/cannot read it \(ENOENT\)/);
  });
});

describe("sparse disks", () => {
  it("round trip keeps every byte, stores only the non-zero 4 KiB blocks, and a short last block", () => {
    const disk = new Uint8Array(10 * 4096 + 100);
    disk[5] = 1;
    disk[3 * 4096 + 4095] = 2;
    disk[10 * 4096 + 99] = 3;
    const packed = packSparse(disk);
    expect(packed.byteLength).toBe(8 + 3 * 4 + 4096 + 4096 + 100);
    expect(unpackSparse(packed, "f")).toEqual(disk);
    expect(unpackSparse(packSparse(new Uint8Array(8192)), "f")).toEqual(new Uint8Array(8192));
  });

  it("invalid input: cut short, blocks out of order, trailing bytes", () => {
    const disk = new Uint8Array(4 * 4096).fill(1);
    const packed = packSparse(disk);
    expect(() => unpackSparse(packed.subarray(0, packed.byteLength - 1), "f")).toThrow(/cut short/);
    const swapped = packed.slice();
    new DataView(swapped.buffer).setUint32(8, 3, true);
    expect(() => unpackSparse(swapped, "f")).toThrow(/out of order/);
    const longer = new Uint8Array(packed.byteLength + 1);
    longer.set(packed);
    expect(() => unpackSparse(longer, "f")).toThrow(/trailing/);
  });
});
