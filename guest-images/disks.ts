/**
 * Disk images for guests: an ext4 data disk populated from a folder with `mke2fs -d` (no root, no
 * loop mount), and a swap disk (swap.ts). Both are plain byte arrays that v86 writes in place.
 */
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { TmemuError } from "../hypervisor/user-errors.ts";

export { makeSwapImage } from "./swap.ts";

const MIB = 1024 * 1024;

/**
 * Bytes the content of `dir` needs on the disk: each file rounded up to 4 KiB blocks, plus a block
 * per entry. Symbolic links are not followed (mke2fs -d copies them as links): a link to a parent
 * folder would otherwise recurse until ELOOP, and a dangling one would fail with ENOENT.
 */
export function folderBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new TmemuError("BAD_INPUT", `cannot read the folder ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, "every folder under --files must be readable");
  }
  for (const name of names) {
    const path = join(dir, name);
    const st = lstatSync(path);
    if (st.isDirectory()) total += 4096 + folderBytes(path);
    else if (st.isFile()) total += Math.ceil(st.size / 4096) * 4096 + 4096;
    else total += 4096; // a symlink, device node, fifo or socket: an inode and at most a block
  }
  return total;
}

export interface DataDiskOptions {
  /** Folder whose content becomes the disk's root; an empty disk without it. */
  fromDir?: string;
  /** Size; by default the content plus a third plus 16 MiB. */
  sizeMib?: number;
  label?: string;
  /** Fixed filesystem UUID (guests that share a read-only image must see the same one). */
  uuid?: string;
}

export function makeDataDisk(opts: DataDiskOptions = {}): Uint8Array {
  if (opts.fromDir) {
    let st;
    try {
      st = statSync(opts.fromDir);
    } catch {
      throw new TmemuError("BAD_INPUT", `--files ${opts.fromDir} does not exist`, "pass a folder whose content should appear on /data in the guest");
    }
    if (!st.isDirectory()) throw new TmemuError("BAD_INPUT", `--files ${opts.fromDir} is not a folder`, "pass a folder, not a file");
  }
  const need = opts.fromDir ? folderBytes(opts.fromDir) : 0;
  const sizeMib = opts.sizeMib ?? Math.ceil((need * 4) / 3 / MIB) + 16;
  const tmp = mkdtempSync(join(tmpdir(), "tmemu-disk-"));
  try {
    const file = join(tmp, "data.ext4");
    const args = ["-q", "-F", "-t", "ext4", "-b", "4096", "-m", "0", "-L", opts.label ?? "tmemu-data", "-E", "root_owner=0:0"];
    if (opts.uuid) args.push("-U", opts.uuid);
    if (opts.fromDir) args.push("-d", opts.fromDir);
    args.push(file, `${sizeMib}M`);
    const r = spawnSync("mke2fs", args, { encoding: "utf8" });
    if (r.error) throw new TmemuError("MISSING_TOOL", "mke2fs is not installed", "apt-get install e2fsprogs");
    if (r.status !== 0) throw new TmemuError("BAD_INPUT", `mke2fs failed: ${(r.stderr || r.stdout).trim()}`, `check --files ${opts.fromDir ?? ""} (size ${sizeMib} MiB)`);
    return new Uint8Array(readFileSync(file));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
