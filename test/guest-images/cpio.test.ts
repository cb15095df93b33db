import { describe, expect, it } from "vitest";
import { writeCpio } from "../../guest-images/cpio.ts";

const text = (b: Uint8Array, from: number, len: number) => Buffer.from(b.subarray(from, from + len)).toString("latin1");

describe("writeCpio (newc)", () => {
  it("writes the exact newc header for a file, with name and data 4-byte aligned", () => {
    const out = writeCpio([{ kind: "file", path: "/init", data: new TextEncoder().encode("hi"), mode: 0o755 }]);
    const header = text(out, 0, 110);
    expect(header).toBe(
      "070701" + "00000001" + "000081ed" + "00000000" + "00000000" + "00000001" + "00000000" + "00000002" + "00000000" + "00000000" + "00000000" + "00000000" + "00000005" + "00000000",
    );
    // 110-byte header + "init\0" = 115, padded to 116; then "hi" padded to 4.
    expect(text(out, 110, 5)).toBe("init\0");
    expect(text(out, 116, 2)).toBe("hi");
    expect(text(out, 120, 6)).toBe("070701");
    expect(text(out, 120 + 110, 11)).toBe("TRAILER!!!\0");
    expect(out.length % 512).toBe(0);
  });

  it("encodes device numbers of a character device and the type bits of each kind", () => {
    const out = writeCpio([
      { kind: "chardev", path: "dev/console", major: 5, minor: 1 },
      { kind: "dir", path: "bin" },
      { kind: "symlink", path: "bin/sh", target: "busybox" },
    ]);
    expect(text(out, 14, 8)).toBe("00002180"); // S_IFCHR | 0600
    expect(text(out, 78, 16)).toBe("0000000500000001"); // rdevmajor, rdevminor
    const second = out.indexOf(0x30, 110 + 12) - 0; // next "070701"
    expect(text(out, second, 6)).toBe("070701");
    expect(text(out, second + 14, 8)).toBe("000041ed"); // S_IFDIR | 0755
  });

  it("is reproducible: the same entries give the same bytes", () => {
    const e = [{ kind: "file" as const, path: "a", data: new Uint8Array([1, 2, 3]) }];
    expect(Buffer.from(writeCpio(e)).equals(Buffer.from(writeCpio(e)))).toBe(true);
  });

  it("refuses an empty path", () => {
    expect(() => writeCpio([{ kind: "dir", path: "/" }])).toThrow(/empty path/);
  });
});
