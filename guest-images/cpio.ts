/**
 * A writer for the "newc" cpio format the kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). Written here instead of calling
 * cpio(1) so that device nodes (/dev/console) need no root and the archive is byte-for-byte
 * reproducible: fixed mtimes, owners root, inode numbers in entry order.
 */

export type CpioEntry =
  | { kind: "dir"; path: string; mode?: number }
  | { kind: "file"; path: string; data: Uint8Array; mode?: number }
  | { kind: "symlink"; path: string; target: string }
  | { kind: "chardev"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, "0");
}

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

export function writeCpio(entries: readonly CpioEntry[]): Uint8Array {
  const chunks: Uint8Array[] = [];
  const enc = new TextEncoder();
  let ino = 1;
  const push = (name: string, mode: number, data: Uint8Array, rdevMajor = 0, rdevMinor = 0, nlink = 1) => {
    const nameBytes = enc.encode(`${name}\0`);
    const header =
      "070701" +
      hex8(ino++) +
      hex8(mode) +
      hex8(0) + // uid
      hex8(0) + // gid
      hex8(nlink) +
      hex8(0) + // mtime: fixed, for reproducible archives
      hex8(data.length) +
      hex8(0) + // dev major
      hex8(0) + // dev minor
      hex8(rdevMajor) +
      hex8(rdevMinor) +
      hex8(nameBytes.length) +
      hex8(0); // check
    const head = enc.encode(header);
    chunks.push(head, nameBytes, new Uint8Array(pad4(head.length + nameBytes.length)), data, new Uint8Array(pad4(data.length)));
  };
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, "");
    if (!path) throw new RangeError("cpio entry with an empty path");
    switch (e.kind) {
      case "dir":
        push(path, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(0), 0, 0, 2);
        break;
      case "file":
        push(path, S_IFREG | (e.mode ?? 0o644), e.data);
        break;
      case "symlink":
        push(path, S_IFLNK | 0o777, enc.encode(e.target));
        break;
      case "chardev":
        push(path, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(0), e.major, e.minor);
        break;
    }
  }
  push("TRAILER!!!", 0, new Uint8Array(0), 0, 0, 1);
  const total = chunks.reduce((n, c) => n + c.length, 0);
  // Pad the archive to a 512-byte multiple, as cpio(1) does.
  const out = new Uint8Array(total + ((512 - (total % 512)) % 512));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
