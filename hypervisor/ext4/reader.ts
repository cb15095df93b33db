/**
 * A read-only ext4 reader, just enough for the host to know what a guest reads from an image it
 * serves: the superblock, group descriptors, inodes and extent trees, to give the bytes of page
 * `index` of inode `ino` as the guest's page cache holds them (file bytes, holes and unwritten
 * extents as zeros, zeros past the end of the file). Pure: it reads through a ReadAt, never a file.
 *
 * Layout (Documentation/filesystems/ext4/ in Linux): superblock at byte 1024; group descriptors
 * in the block after the one holding the superblock; inode `n` in group (n-1) / inodes_per_group
 * at slot (n-1) % inodes_per_group of that group's inode table; i_block holds an extent tree
 * (header magic 0xf30a) when the inode has EXT4_EXTENTS_FL. Files mapped by indirect blocks (ext2
 * style) and inline data are not read: pageOf returns undefined for them, and so for anything it
 * cannot map with certainty (a corrupt tree, a block outside the image).
 */

/** Reads `length` bytes at byte `offset` of the image; may throw for a range outside it. */
export type ReadAt = (offset: number, length: number) => Uint8Array;

export const EXT4_SUPER_MAGIC = 0xef53;
const EXTENT_MAGIC = 0xf30a;
const EXT4_EXTENTS_FL = 0x80000;
const EXT4_INLINE_DATA_FL = 0x10000000;
const INCOMPAT_64BIT = 0x80;
const S_IFMT = 0xf000;
const S_IFREG = 0x8000;
const MAX_EXTENT_DEPTH = 5;
/** An extent longer than this is unwritten (reads as zeros), ee_len - 32768 blocks long. */
const EXT_INIT_MAX_LEN = 32768;

export interface Ext4Superblock {
  blockSize: number;
  inodesCount: number;
  blocksCount: number;
  firstDataBlock: number;
  inodesPerGroup: number;
  inodeSize: number;
  descSize: number;
  is64bit: boolean;
  /** s_uuid as the kernel prints it (sb->s_uuid, %pU). */
  uuid: string;
}

export class Ext4FormatError extends Error {
  override readonly name = "Ext4FormatError";
}

function u16(b: Uint8Array, o: number): number {
  return b[o]! | (b[o + 1]! << 8);
}

function u32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

function uuidText(b: Uint8Array): string {
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export function readSuperblock(read: ReadAt): Ext4Superblock {
  const s = read(1024, 1024);
  if (s.length < 1024 || u16(s, 56) !== EXT4_SUPER_MAGIC) throw new Ext4FormatError("not an ext2/3/4 filesystem (no superblock magic)");
  const logBlock = u32(s, 24);
  if (logBlock > 6) throw new Ext4FormatError(`block size 2^${10 + logBlock} is not supported`);
  const incompat = u32(s, 96);
  const is64bit = (incompat & INCOMPAT_64BIT) !== 0;
  const revLevel = u32(s, 76);
  const sb: Ext4Superblock = {
    blockSize: 1024 << logBlock,
    inodesCount: u32(s, 0),
    blocksCount: u32(s, 4) + (is64bit ? u32(s, 0x150) * 2 ** 32 : 0),
    firstDataBlock: u32(s, 20),
    inodesPerGroup: u32(s, 40),
    inodeSize: revLevel === 0 ? 128 : u16(s, 88),
    descSize: is64bit ? u16(s, 254) : 32,
    is64bit,
    uuid: uuidText(s.subarray(104, 120)),
  };
  if (sb.inodesPerGroup === 0 || sb.inodeSize < 128 || sb.descSize < 32) throw new Ext4FormatError("superblock geometry is not valid");
  return sb;
}

/** One run of a file's logical blocks: at `physical` on disk, or zeros (unwritten) if physical < 0. */
interface Run {
  logical: number;
  length: number;
  physical: number;
}

export class Ext4Image {
  readonly sb: Ext4Superblock;

  constructor(private readonly read: ReadAt) {
    this.sb = readSuperblock(read);
  }

  private block(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0 || n >= this.sb.blocksCount) throw new Ext4FormatError(`block ${n} is outside the filesystem`);
    return this.read(n * this.sb.blockSize, this.sb.blockSize);
  }

  /** The raw inode `ino` (1-based), or undefined if the number is out of range. */
  inode(ino: number): Uint8Array | undefined {
    const sb = this.sb;
    if (!Number.isSafeInteger(ino) || ino < 1 || ino > sb.inodesCount) return undefined;
    const group = Math.floor((ino - 1) / sb.inodesPerGroup);
    const slot = (ino - 1) % sb.inodesPerGroup;
    const descBlock = sb.firstDataBlock + 1;
    const descOffset = descBlock * sb.blockSize + group * sb.descSize;
    const desc = this.read(descOffset, sb.descSize);
    const table = u32(desc, 8) + (sb.is64bit && sb.descSize >= 64 ? u32(desc, 0x28) * 2 ** 32 : 0);
    return this.read(table * sb.blockSize + slot * sb.inodeSize, sb.inodeSize);
  }

  /**
   * The 4 KiB page `index` of regular file `ino` as a guest reads it; undefined when this reader
   * cannot tell (no such inode, not a regular file, no extents, inline data, a bad tree).
   */
  pageOf(ino: number, index: number, pageSize = 4096): Uint8Array | undefined {
    try {
      return this.page(ino, index, pageSize);
    } catch (error) {
      if (error instanceof Ext4FormatError || error instanceof RangeError) return undefined;
      throw error;
    }
  }

  private page(ino: number, index: number, pageSize: number): Uint8Array | undefined {
    const inode = this.inode(ino);
    if (inode === undefined) return undefined;
    const mode = u16(inode, 0);
    const flags = u32(inode, 32);
    if ((mode & S_IFMT) !== S_IFREG || (flags & EXT4_EXTENTS_FL) === 0 || (flags & EXT4_INLINE_DATA_FL) !== 0) return undefined;
    if (u16(inode, 26) === 0) return undefined; // i_links_count 0: a deleted inode
    const size = u32(inode, 4) + u32(inode, 108) * 2 ** 32;
    const out = new Uint8Array(pageSize);
    const start = index * pageSize;
    if (start >= size) return out;
    const bs = this.sb.blockSize;
    const runs = this.extents(inode.subarray(40, 100), 0);
    const firstBlock = Math.floor(start / bs);
    const blocks = Math.ceil(pageSize / bs);
    for (let i = 0; i < blocks; i++) {
      const logical = firstBlock + i;
      if (logical * bs >= size) break;
      const run = runs.find((r) => logical >= r.logical && logical < r.logical + r.length);
      if (run === undefined || run.physical < 0) continue; // a hole or unwritten: zeros
      const data = this.block(run.physical + (logical - run.logical));
      const at = logical * bs - start;
      const keep = Math.min(bs, size - logical * bs, pageSize - at);
      out.set(data.subarray(0, keep), at);
    }
    return out;
  }

  /** Every leaf extent under the node `node` (an i_block or a tree block). */
  private extents(node: Uint8Array, level: number): Run[] {
    if (level > MAX_EXTENT_DEPTH) throw new Ext4FormatError("extent tree too deep");
    if (u16(node, 0) !== EXTENT_MAGIC) throw new Ext4FormatError("bad extent header");
    const entries = u16(node, 2);
    const depth = u16(node, 6);
    if (12 + entries * 12 > node.length) throw new Ext4FormatError("extent header claims more entries than fit");
    const runs: Run[] = [];
    for (let e = 0; e < entries; e++) {
      const o = 12 + e * 12;
      if (depth === 0) {
        const len = u16(node, o + 4);
        const physical = u16(node, o + 6) * 2 ** 32 + u32(node, o + 8);
        const unwritten = len > EXT_INIT_MAX_LEN;
        runs.push({ logical: u32(node, o), length: unwritten ? len - EXT_INIT_MAX_LEN : len, physical: unwritten ? -1 : physical });
      } else {
        const leaf = u32(node, o + 4) + u16(node, o + 8) * 2 ** 32;
        runs.push(...this.extents(this.block(leaf), level + 1));
      }
    }
    return runs;
  }
}

/** A ReadAt over an image held in memory; a range outside it throws RangeError. */
export function bytesReader(image: Uint8Array): ReadAt {
  return (offset, length) => {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > image.length) {
      throw new RangeError(`read of ${length} bytes at ${offset} is outside the ${image.length}-byte image`);
    }
    return image.subarray(offset, offset + length);
  };
}
