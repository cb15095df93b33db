/**
 * A real Linux guest on v86: boot, commands with output and exit codes, the memory toucher, a
 * command that never finishes, guest-physical memory, port traps and disk counters.
 */
import { mkdtempSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Guest } from "../../emulator/guest.ts";
import { makeDataDisk, makeSwapImage } from "../../guest-images/disks.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";
import { bootGuest } from "./helpers.ts";

describe("one guest", () => {
  let guest: Guest;
  const files = mkdtempSync(join(tmpdir(), "tmemu-files-"));
  writeFileSync(join(files, "hello.sh"), "#!/bin/sh\necho \"hello from $0 with $#\"\n");
  chmodSync(join(files, "hello.sh"), 0o755);
  writeFileSync(join(files, "blob.bin"), Buffer.alloc(256 * 1024, 7));

  beforeAll(async () => {
    guest = await bootGuest({ dataDisk: makeDataDisk({ fromDir: files }), swapDisk: makeSwapImage(32) });
  });
  afterAll(async () => {
    await guest?.dispose();
  });

  it("boots Linux 6.1 and reports the release", () => {
    expect(guest.kernelRelease).toMatch(/^6\.1\.\d+/);
  });

  it("returns a command's output and exit code", async () => {
    expect(await guest.run("uname -r")).toEqual({ output: `${guest.kernelRelease}\n`, exitCode: 0 });
    expect(await guest.run("echo out; echo err >&2; exit 3")).toEqual({ output: "out\nerr\n", exitCode: 3 });
  });

  it("runs the user's files from the data disk on /data, and activates the swap disk", async () => {
    expect((await guest.run("hello.sh a b")).output).toBe("hello from /data/hello.sh with 2\n");
    expect((await guest.run("md5sum /data/blob.bin")).output).toMatch(/^[0-9a-f]{32} {2}\/data\/blob.bin/);
    expect((await guest.run("grep -c /dev/sdb /proc/swaps")).output.trim()).toBe("1");
  });

  it("counts sectors read per disk", async () => {
    const before = guest.disks.data.sectorsRead;
    await guest.runChecked("echo 3 > /proc/sys/vm/drop_caches; cat /data/blob.bin > /dev/null");
    // 256 KiB = 512 sectors, at least (plus metadata).
    expect(guest.disks.data.sectorsRead - before).toBeGreaterThanOrEqual(512);
  });

  it("memtouch fills and verifies 32 MiB with 0 mismatches", async () => {
    const r = await guest.run("memtouch 32 11 2");
    expect(r.output).toMatch(/mismatches=0 /);
    expect(r.exitCode).toBe(0);
  });

  it("memtouch rejects bad usage with exit code 2", async () => {
    expect((await guest.run("memtouch lots")).exitCode).toBe(2);
  });

  it("reads and writes guest-physical memory, refusing frames outside RAM and in the VGA hole", async () => {
    const mem = guest.memory;
    expect(mem.sizeBytes).toBe(128 * 1024 * 1024);
    const page = new Uint8Array(4096);
    mem.readPage(0x100, page); // the kernel's first page (loaded at 1 MiB)
    expect(page.some((b) => b !== 0)).toBe(true);
    expect(() => mem.readPage(mem.sizeBytes / 4096, page)).toThrow(RangeError);
    expect(() => mem.readPage(0xa0, page)).toThrow(RangeError);
    expect(() => mem.writePage(-1, page)).toThrow(RangeError);
  });

  it("traps a 32-bit out to a registered port; the handler reads and writes the guest's registers", async () => {
    const seen: number[] = [];
    const trap = guest.registerPortTrap(0x7f0, (regs) => {
      seen.push(regs.eax);
      if (regs.eax === 0x1234) {
        regs.eax = (regs.ebx ^ regs.ecx ^ regs.esi ^ regs.edi) >>> 0;
        regs.ebx = 0xfffffffe;
      }
    });
    try {
      expect((await guest.run("hyperbench bare 0x7f0 100")).output).toMatch(/calls=100 /);
      expect(seen).toEqual([...Array(100).keys()]);
      const echo = await guest.run("hyperbench echo 0x7f0 0x1234");
      expect(echo.output).toBe("eax=0x44444444 ebx=0xfffffffe ecx=0x22222222 esi=0x33333333 edi=0x44444444\n");
    } finally {
      trap.dispose();
    }
    // After dispose the port is unhandled again: the out is ignored and EAX stays as it was.
    expect((await guest.run("hyperbench echo 0x7f0 0x1234")).output).toMatch(/^eax=0x1234 /);
    expect(seen.length).toBe(101);
  });

  it("ends a command that never finishes with a clear timeout error, and marks the guest gone", async () => {
    const err = await guest.run("while :; do :; done", { timeoutMs: 3000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TmemuError);
    expect((err as TmemuError).code).toBe("TIMEOUT");
    expect((err as TmemuError).message).toMatch(/command `while :; do :; done` did not finish within 3 s/);
    expect(guest.isAlive).toBe(false);
    await expect(guest.run("true")).rejects.toMatchObject({ code: "TIMEOUT" });
  });
});
