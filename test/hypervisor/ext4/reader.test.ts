/**
 * The ext4 reader against real images made by mke2fs -d from a folder: every page of every file
 * reads back as the file's bytes (zeros past the end), sparse files read their holes as zeros, a
 * 1 KiB-block image with a file spread over many block groups needs an extent tree of depth 1, and
 * anything it cannot read is undefined, never wrong bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { bytesReader, Ext4Image } from "../../../hypervisor/ext4/reader.ts";
import { Ext4PageVerifier } from "../../../hypervisor/tmem/shared-verify.ts";

const PAGE = 4096;
let dir = "";

function seeded(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let block = Buffer.alloc(0);
  for (let i = 0; i < n; i += 32) {
    block = createHash("sha256").update(`${seed}:${i}`).digest();
    block.copy(out, i, 0, Math.min(32, n - i));
  }
  return out;
}

function mkfs(from: string, blockSize: number, sizeMib: number, uuid: string): Uint8Array {
  const file = join(dir, `img-${blockSize}.ext4`);
  const r = spawnSync("mke2fs", ["-q", "-F", "-t", "ext4", "-b", String(blockSize), "-U", uuid, "-d", from, file, `${sizeMib}M`], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`mke2fs: ${r.stderr}`);
  return new Uint8Array(readFileSync(file));
}

/** Inode numbers by path, from debugfs (e2fsprogs), so the test does not trust the reader for them. */
function inodeOf(image: string, path: string): number {
  const r = spawnSync("debugfs", ["-R", `stat ${path}`, image], { encoding: "utf8" });
  const m = /Inode: (\d+)/.exec(r.stdout);
  if (!m) throw new Error(`debugfs stat ${path}: ${r.stderr}`);
  return Number(m[1]);
}

function extentDepth(image: string, path: string): number {
  const r = spawnSync("debugfs", ["-R", `ex ${path}`, image], { encoding: "utf8" });
  const levels = [...r.stdout.matchAll(/^\s*(\d+)\/\s*(\d+)/gm)].map((m) => Number(m[2]));
  return Math.max(0, ...levels);
}

const FILES: Record<string, Buffer> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "tmemu-ext4-"));
  const src = join(dir, "src");
  mkdirSync(join(src, "sub"), { recursive: true });
  FILES["small"] = seeded("small", 100);
  FILES["pages"] = seeded("pages", 5 * PAGE + 123);
  FILES["sub/big"] = seeded("big", 40 * 1024 * 1024 + 7);
  for (const [name, data] of Object.entries(FILES)) writeFileSync(join(src, name), data);
  // A sparse file: data, a 1 MiB hole, data.
  const sparse = Buffer.concat([seeded("s1", 3 * PAGE), Buffer.alloc(1 << 20), seeded("s2", 2 * PAGE)]);
  writeFileSync(join(src, "sparse"), seeded("s1", 3 * PAGE));
  const fd = spawnSync("sh", ["-c", `dd if=/dev/zero of=${join(src, "sparse")} bs=1 count=0 seek=${3 * PAGE + (1 << 20)} 2>/dev/null`]);
  expect(fd.status).toBe(0);
  writeFileSync(join(src, "sparse"), seeded("s2", 2 * PAGE), { flag: "a" });
  FILES["sparse"] = sparse;
  expect(statSync(join(src, "sparse")).size).toBe(sparse.length);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each([4096, 1024])("an ext4 image with %i-byte blocks", (blockSize) => {
  const uuid = blockSize === 4096 ? "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0" : "11111111-2222-3333-4444-555555555555";
  let image: Uint8Array;
  let path = "";

  beforeAll(() => {
    image = mkfs(join(dir, "src"), blockSize, 64, uuid);
    path = join(dir, `img-${blockSize}.ext4`);
  });

  it("reads its superblock: block size and the uuid the kernel names the shared pool by", () => {
    const fs = new Ext4Image(bytesReader(image));
    expect(fs.sb.blockSize).toBe(blockSize);
    expect(fs.sb.uuid).toBe(uuid);
  });

  it("gives every page of every file as the file holds it, zeros past the end", () => {
    const fs = new Ext4Image(bytesReader(image));
    for (const [name, data] of Object.entries(FILES)) {
      const ino = inodeOf(path, `/${name}`);
      const pages = Math.ceil(data.length / PAGE);
      for (let i = 0; i <= pages; i++) {
        const want = Buffer.alloc(PAGE);
        if (i * PAGE < data.length) data.copy(want, 0, i * PAGE, Math.min(data.length, (i + 1) * PAGE));
        const got = fs.pageOf(ino, i);
        expect(got, `${name} page ${i}`).toBeDefined();
        if (Buffer.compare(Buffer.from(got!), want) !== 0) expect.fail(`${name} page ${i} differs`);
      }
    }
  });

  it("cannot read a directory, a free inode or an inode number out of range: undefined", () => {
    const fs = new Ext4Image(bytesReader(image));
    expect(fs.pageOf(2, 0)).toBeUndefined(); // the root directory
    expect(fs.pageOf(fs.sb.inodesCount - 1, 0)).toBeUndefined(); // never allocated
    expect(fs.pageOf(0, 0)).toBeUndefined();
    expect(fs.pageOf(fs.sb.inodesCount + 1, 0)).toBeUndefined();
  });

  it("verifies puts: the file's bytes pass, one changed byte or another index is refused", () => {
    const v = new Ext4PageVerifier(image);
    expect(v.uuid).toBe(uuid);
    const ino = inodeOf(path, "/pages");
    const page1 = Buffer.alloc(PAGE);
    FILES["pages"]!.copy(page1, 0, PAGE, 2 * PAGE);
    expect(v.verify(ino, 0, 1, page1)).toBe(true);
    expect(v.verify(ino, 0, 2, page1)).toBe(false);
    expect(v.verify(ino, 1, 1, page1)).toBe(false); // object ids above 2^32 are no inode
    page1[4095] = page1[4095]! ^ 1;
    expect(v.verify(ino, 0, 1, page1)).toBe(false);
    expect([v.accepted, v.refused]).toEqual([1, 3]);
  });

  if (blockSize === 1024) {
    it("follows an extent tree of depth 1 (the big file spans many block groups)", () => {
      expect(extentDepth(path, "/sub/big")).toBeGreaterThanOrEqual(1);
    });
  }
});
