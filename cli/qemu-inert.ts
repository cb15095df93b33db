/**
 * The inert boot under QEMU (`tmemu validate` inert): the same kernel and initramfs on
 * qemu-system-i386, which has no tmem PCI function. The kernel must boot to the agent's ready line
 * and say "no tmem device, frontends off". QEMU is optional: without it the check says what is
 * missing and does not fail.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { GuestImages } from "../emulator/guest.ts";
import { READY_PATTERN } from "../emulator/agent.ts";

export const QEMU = "qemu-system-i386";

export type QemuInert =
  | { ran: false; why: string }
  | { ran: true; booted: boolean; saysNoDevice: boolean; foundDevice: boolean; seconds: number; tail: string };

export async function qemuInertBoot(images: GuestImages, memoryMib: number, timeoutMs = 300_000): Promise<QemuInert> {
  if (spawnSync(QEMU, ["--version"]).error) return { ran: false, why: `${QEMU} is not installed (apt-get install qemu-system-x86 runs this part)` };
  const dir = mkdtempSync(join(tmpdir(), "tmemu-qemu-"));
  writeFileSync(join(dir, "bzImage"), images.bzImage);
  writeFileSync(join(dir, "initrd"), images.initrd);
  const t0 = Date.now();
  const args = [
    "-m", String(memoryMib), "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-display", "none",
    "-kernel", join(dir, "bzImage"), "-initrd", join(dir, "initrd"),
    "-append", "console=ttyS0 loglevel=7 panic=-1 tsc=reliable mitigations=off",
  ];
  let out = "";
  const child = spawn(QEMU, args, { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const booted = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const onData = (b: Buffer) => {
        out += b.toString("latin1");
        if (READY_PATTERN.test(out)) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stdout.on("data", onData);
      child.stderr.on("data", onData);
      child.on("exit", () => {
        clearTimeout(timer);
        resolve(READY_PATTERN.test(out));
      });
    });
    return {
      ran: true,
      booted,
      saysNoDevice: /tmem: no tmem device, frontends off/.test(out),
      foundDevice: /tmem device, hypercall port|tmem: host ABI/.test(out),
      seconds: (Date.now() - t0) / 1000,
      tail: out.split("\n").filter((l) => /\btmem:/.test(l)).map((l) => l.replace(/^\[[^\]]*\]\s*/, "").trim()).join(" | "),
    };
  } finally {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}
