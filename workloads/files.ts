/**
 * Deterministic file sets for workloads: the same seed gives the same bytes on every machine
 * (AES-128-CTR keystream keyed by the seed), so runs with the same seed read the same data, and
 * the content does not compress (as real media and binaries do not), so no layer can cheat.
 */
import { createCipheriv, createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const MIB = 1024 * 1024;

export function seededBytes(seed: number, label: string, length: number): Buffer {
  const key = createHash("sha256").update(`tmemu:${seed}:${label}`).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

export interface FileSet {
  /** Folder inside the data disk, relative to its root (the guest sees /data/<dir>). */
  dir: string;
  files: { name: string; md5: string; bytes: number }[];
}

/** Writes `totalMib` of seeded files of `fileMib` each under root/dir; returns names and md5 sums. */
export function writeFileSet(root: string, dir: string, totalMib: number, fileMib: number, seed: number): FileSet {
  const target = join(root, dir);
  mkdirSync(target, { recursive: true });
  const files: FileSet["files"] = [];
  for (let i = 0; i * fileMib < totalMib; i++) {
    const name = `f${String(i).padStart(4, "0")}`;
    const bytes = Math.min(fileMib, totalMib - i * fileMib) * MIB;
    const data = seededBytes(seed, `${dir}/${name}`, bytes);
    writeFileSync(join(target, name), data);
    files.push({ name, md5: createHash("md5").update(data).digest("hex"), bytes });
  }
  return { dir, files };
}

/** What `md5sum /data/<dir>/*` prints in the guest for this set. */
export function md5sumListing(set: FileSet): string {
  return set.files.map((f) => `${f.md5}  /data/${set.dir}/${f.name}\n`).join("");
}
