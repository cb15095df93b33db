/**
 * Deterministic file sets for workloads: the same seed gives the same bytes on every machine, so
 * runs with the same seed read the same data.
 *
 * The workloads' set (writeFileSet) is made of pages that compress like real files, about 2:1 with
 * LZ4: each 4 KiB page is a run of random words (literals), then a copy of earlier words of the
 * same page (a match), and so on, each page drawn from its own seeded generator (setPage). Every
 * page is different (no dedup across pages) and none is same-filled. A page depends only on (seed,
 * file, page), so the guest's verifier (guest-images/programs/setcheck.c, the same generator in C)
 * rebuilds each page and compares it, naming the file and page that differ. Keep the two in step:
 * SETCHECK_VECTORS in test/workloads/files.test.ts pins the generator's output.
 *
 * seededBytes (AES-128-CTR keystream keyed by the seed) is incompressible data for checks that
 * need it.
 */
import { createCipheriv, createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const MIB = 1024 * 1024;
export const SET_PAGE_SIZE = 4096;
const WORDS = SET_PAGE_SIZE / 4;

export function seededBytes(seed: number, label: string, length: number): Buffer {
  const key = createHash("sha256").update(`tmemu:${seed}:${label}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

/** memtouch.c's and setcheck.c's 32-bit mixer (a murmur3-style finaliser). */
function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Literal runs are 1..LITERAL_MAX words, matches MATCH_MIN..MATCH_MIN+MATCH_SPAN-1 words. */
const LITERAL_MAX = 16;
const MATCH_MIN = 2;
const MATCH_SPAN = 24;

/**
 * Writes page `page` of file `file` of the set with seed `seed` into `out` (1024 words). Must
 * match setcheck.c's set_page() word for word.
 */
export function setPage(seed: number, file: number, page: number, out: Uint32Array): void {
  // xorshift32 from a seed mixed out of (seed, file, page); never 0 (xorshift's fixed point)
  let x = mix((seed >>> 0) ^ mix((Math.imul(file, 0x9e3779b9) + mix((page + 0x632be5ab) >>> 0)) >>> 0)) | 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  let pos = 0;
  while (pos < WORDS) {
    let lit = 1 + (next() % LITERAL_MAX);
    if (lit > WORDS - pos) lit = WORDS - pos;
    for (let i = 0; i < lit; i++) out[pos + i] = next();
    pos += lit;
    if (pos >= WORDS) break;
    const m = next();
    let len = MATCH_MIN + (m % MATCH_SPAN);
    if (len > WORDS - pos) len = WORDS - pos;
    // From anywhere earlier in the page; may overlap the words being written (copied forward).
    const from = (m >>> 8) % pos;
    for (let i = 0; i < len; i++) out[pos + i] = out[from + i]!;
    pos += len;
  }
}

export interface FileSet {
  /** Folder inside the data disk, relative to its root (the guest sees /data/<dir>). */
  dir: string;
  files: { name: string; md5: string; bytes: number }[];
  seed: number;
  /** Pages in the whole set, and in each file but maybe the last. */
  pages: number;
  filePages: number;
}

export function setFileName(index: number): string {
  return `f${String(index).padStart(4, "0")}`;
}

/** The bytes of one file of the set (pages first..first+pages-1 of file `index`). */
export function setFileBytes(seed: number, index: number, pages: number): Buffer {
  const data = Buffer.alloc(pages * SET_PAGE_SIZE);
  const words = new Uint32Array(data.buffer, data.byteOffset, pages * WORDS);
  for (let p = 0; p < pages; p++) setPage(seed, index, p, words.subarray(p * WORDS, (p + 1) * WORDS));
  return data;
}

/** Writes `totalMib` of seeded files of `fileMib` each under root/dir; returns names and md5 sums. */
export function writeFileSet(root: string, dir: string, totalMib: number, fileMib: number, seed: number): FileSet {
  const target = join(root, dir);
  mkdirSync(target, { recursive: true });
  const files: FileSet["files"] = [];
  const filePages = (fileMib * MIB) / SET_PAGE_SIZE;
  let pages = 0;
  for (let i = 0; i * fileMib < totalMib; i++) {
    const name = setFileName(i);
    const bytes = Math.min(fileMib, totalMib - i * fileMib) * MIB;
    const data = setFileBytes(seed, i, bytes / SET_PAGE_SIZE);
    writeFileSync(join(target, name), data);
    files.push({ name, md5: createHash("md5").update(data).digest("hex"), bytes });
    pages += bytes / SET_PAGE_SIZE;
  }
  return { dir, files, seed, pages, filePages };
}

/** What `md5sum /data/<dir>/*` prints in the guest for this set. */
export function md5sumListing(set: Pick<FileSet, "dir" | "files">): string {
  return set.files.map((f) => `${f.md5}  /data/${set.dir}/${f.name}\n`).join("");
}
