/**
 * tmemu's snapshot files: a boot snapshot (guest-images/snapshots.ts) and a saved guest
 * (`tmemu boot --save`) are both one file of this layout (little-endian):
 *
 *   offset 0   8 bytes   magic "TMEMUSNP"
 *          8   u32       format version (SNAPSHOT_FORMAT_VERSION)
 *         12   u32       header length H
 *         16   H bytes   header: UTF-8 JSON (SnapshotHeader), naming the sections and their lengths
 *    16 + H    ...       the sections' bytes, in the header's order
 *    end - 32  32 bytes  SHA-256 of every byte before it
 *
 * Reading checks, in order: the length can hold the frame, the magic, the version, the lengths the
 * header gives against the file's, the checksum, then what the caller expects (kind, images key,
 * memory size). Any failure is a TmemuError BAD_SNAPSHOT that says what is wrong and what to do:
 * a damaged file is never restored into a guest.
 */
import { createHash } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { TmemuError } from "../hypervisor/user-errors.ts";

export const SNAPSHOT_MAGIC = "TMEMUSNP";
export const SNAPSHOT_FORMAT_VERSION = 1;
const FRAME_BYTES = 16;
const CHECKSUM_BYTES = 32;

export type SnapshotKind = "boot" | "save";

/** Everything a restore must match or needs, beside the sections. */
export interface SnapshotHeader {
  kind: SnapshotKind;
  /** The guest images' key (kernel and initramfs keys): another key, another kernel in RAM. */
  imagesKey: string;
  memoryMib: number;
  /** Whether the guest was constructed with the tmem device. */
  tmem: boolean;
  balloon: boolean;
  kernelArgs: string[];
  kernelRelease: string;
  createdAt: string;
  /** A command running when the state was saved: its agent request id. */
  running?: { id: string; command: string };
  /** Names and byte lengths of the sections, in file order. */
  sections: { name: string; bytes: number }[];
}

export type SnapshotSections = Record<string, Uint8Array>;

/** What a reader requires of a file (the rest of the header is information). */
export interface SnapshotExpectation {
  kind: SnapshotKind;
  imagesKey: string;
  /** Absent: any (a restore takes the memory size from the file). */
  memoryMib?: number;
  tmem?: boolean;
}

export function encodeSnapshot(header: Omit<SnapshotHeader, "sections">, sections: SnapshotSections): Uint8Array[] {
  const names = Object.keys(sections);
  const full: SnapshotHeader = { ...header, sections: names.map((name) => ({ name, bytes: sections[name]!.byteLength })) };
  const json = new TextEncoder().encode(JSON.stringify(full));
  const frame = new Uint8Array(FRAME_BYTES);
  frame.set(new TextEncoder().encode(SNAPSHOT_MAGIC), 0);
  const v = new DataView(frame.buffer);
  v.setUint32(8, SNAPSHOT_FORMAT_VERSION, true);
  v.setUint32(12, json.byteLength, true);
  const parts = [frame, json, ...names.map((n) => sections[n]!)];
  const hash = createHash("sha256");
  for (const p of parts) hash.update(p);
  return [...parts, new Uint8Array(hash.digest())];
}

/** Writes the file atomically (a temporary file renamed over `path`). */
export function writeSnapshotFile(path: string, header: Omit<SnapshotHeader, "sections">, sections: SnapshotSections): number {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w");
  let bytes = 0;
  try {
    for (const p of encodeSnapshot(header, sections)) {
      for (let off = 0; off < p.byteLength; ) off += writeSync(fd, p, off, p.byteLength - off);
      bytes += p.byteLength;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return bytes;
}

export interface DecodedSnapshot {
  header: SnapshotHeader;
  sections: SnapshotSections;
}

/** Parses and checks a snapshot file's bytes; `what` names it in errors (its path). */
export function decodeSnapshot(bytes: Uint8Array, what: string, expect: SnapshotExpectation): DecodedSnapshot {
  const refuse = (problem: string, hint: string) => new TmemuError("BAD_SNAPSHOT", `${what}: ${problem}`, hint);
  const damaged = "the file is damaged (cut short or changed): make it again (tmemu boot --save), or boot afresh";
  if (bytes.byteLength < FRAME_BYTES + CHECKSUM_BYTES) throw refuse(`too short to be a tmemu snapshot (${bytes.byteLength} bytes)`, damaged);
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== SNAPSHOT_MAGIC) {
    throw refuse("not a tmemu snapshot file (wrong magic)", "give a file written by tmemu boot --save");
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, FRAME_BYTES);
  const version = v.getUint32(8, true);
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw refuse(`snapshot format version ${version}; this tmemu reads version ${SNAPSHOT_FORMAT_VERSION}`, "save the guest again with this tmemu, or use the tmemu that wrote it");
  }
  const headerBytes = v.getUint32(12, true);
  if (FRAME_BYTES + headerBytes + CHECKSUM_BYTES > bytes.byteLength) throw refuse("truncated: its header runs past the end of the file", damaged);
  let header: SnapshotHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(FRAME_BYTES, FRAME_BYTES + headerBytes))) as SnapshotHeader;
  } catch {
    throw refuse("its header is not valid JSON", damaged);
  }
  if (!Array.isArray(header.sections) || header.sections.some((s) => typeof s.name !== "string" || !Number.isSafeInteger(s.bytes) || s.bytes < 0)) {
    throw refuse("its header names no valid sections", damaged);
  }
  const body = header.sections.reduce((n, s) => n + s.bytes, 0);
  const expected = FRAME_BYTES + headerBytes + body + CHECKSUM_BYTES;
  if (expected !== bytes.byteLength) {
    throw refuse(expected > bytes.byteLength ? `truncated: ${bytes.byteLength} bytes, its header says ${expected}` : `${bytes.byteLength - expected} bytes too long`, damaged);
  }
  const end = bytes.byteLength - CHECKSUM_BYTES;
  const sum = createHash("sha256").update(bytes.subarray(0, end)).digest();
  if (!Buffer.from(bytes.subarray(end)).equals(sum)) throw refuse("checksum mismatch: its contents were changed or damaged", damaged);

  if (header.kind !== expect.kind) {
    throw refuse(`a ${header.kind} snapshot, not a ${expect.kind} file`, expect.kind === "save" ? "give a file written by tmemu boot --save" : "delete it; it is made again");
  }
  if (header.imagesKey !== expect.imagesKey) {
    throw refuse(
      `made with other guest images (key ${header.imagesKey}; these are ${expect.imagesKey})`,
      "restore it with the tmemu checkout and patches that saved it (tmemu images shows the keys), or boot afresh",
    );
  }
  if (expect.memoryMib !== undefined && header.memoryMib !== expect.memoryMib) {
    throw refuse(`a ${header.memoryMib} MiB guest, not ${expect.memoryMib} MiB`, `restore it with --memory-mib ${header.memoryMib}`);
  }
  if (expect.tmem !== undefined && header.tmem !== expect.tmem) {
    throw refuse(`saved ${header.tmem ? "with" : "without"} the tmem device`, header.tmem ? "restore it without --no-tmem" : "restore it with --no-tmem");
  }
  const sections: SnapshotSections = {};
  let at = FRAME_BYTES + headerBytes;
  for (const s of header.sections) {
    sections[s.name] = bytes.subarray(at, at + s.bytes);
    at += s.bytes;
  }
  return { header, sections };
}

export function readSnapshotFile(path: string, expect: SnapshotExpectation): DecodedSnapshot {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new TmemuError("BAD_SNAPSHOT", `${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`, "give the path of a file written by tmemu boot --save");
  }
  return decodeSnapshot(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path, expect);
}

/** Disks travel sparse: 4 KiB blocks, only those that are not all zero (a swap disk is mostly unused). */
export const SPARSE_BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(SPARSE_BLOCK);

/**
 * u32 byte length, u32 count of stored blocks, then per stored block its u32 block number, then
 * the blocks (the last one may be short). unpackSparse is the inverse.
 */
export function packSparse(bytes: Uint8Array): Uint8Array {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const blocks = Math.ceil(bytes.byteLength / SPARSE_BLOCK);
  const kept: number[] = [];
  for (let b = 0; b < blocks; b++) {
    const start = b * SPARSE_BLOCK;
    const end = Math.min(start + SPARSE_BLOCK, bytes.byteLength);
    if (buf.compare(ZERO_BLOCK, 0, end - start, start, end) !== 0) kept.push(b);
  }
  const head = 8 + 4 * kept.length;
  let size = head;
  for (const b of kept) size += Math.min(SPARSE_BLOCK, bytes.byteLength - b * SPARSE_BLOCK);
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  v.setUint32(0, bytes.byteLength, true);
  v.setUint32(4, kept.length, true);
  let at = head;
  kept.forEach((b, i) => {
    v.setUint32(8 + 4 * i, b, true);
    const start = b * SPARSE_BLOCK;
    const piece = bytes.subarray(start, Math.min(start + SPARSE_BLOCK, bytes.byteLength));
    out.set(piece, at);
    at += piece.byteLength;
  });
  return out;
}

export function unpackSparse(packed: Uint8Array, what: string): Uint8Array {
  const bad = (problem: string) => new TmemuError("BAD_SNAPSHOT", `${what}: a disk in it is malformed (${problem})`, "the file is damaged: make it again");
  if (packed.byteLength < 8) throw bad("too short");
  const v = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const length = v.getUint32(0, true);
  const count = v.getUint32(4, true);
  const blocks = Math.ceil(length / SPARSE_BLOCK);
  if (8 + 4 * count > packed.byteLength) throw bad("block list cut short");
  const out = new Uint8Array(length);
  let at = 8 + 4 * count;
  let last = -1;
  for (let i = 0; i < count; i++) {
    const b = v.getUint32(8 + 4 * i, true);
    if (b >= blocks || b <= last) throw bad(`block ${b} out of order or range`);
    last = b;
    const n = Math.min(SPARSE_BLOCK, length - b * SPARSE_BLOCK);
    if (at + n > packed.byteLength) throw bad("blocks cut short");
    out.set(packed.subarray(at, at + n), b * SPARSE_BLOCK);
    at += n;
  }
  if (at !== packed.byteLength) throw bad("trailing bytes");
  return out;
}
