/**
 * How a guest from the boot snapshot takes up its disks (emulator/snapshot.ts diskPickupCommand):
 * which drives are rescanned and which device names the data and swap disks get. The commands
 * themselves run in real guests in test/integration/snapshot.test.ts.
 */
import { describe, expect, it } from "vitest";
import { diskPickupCommand } from "../../emulator/snapshot.ts";

const both = { data: true, swap: true };

describe("diskPickupCommand", () => {
  it("a swap disk the snapshot already uses (a fresh image in its place): nothing to do", () => {
    expect(diskPickupCommand({ data: false, swap: true }, { data: false, swap: true })).toBe("");
  });

  it("a swap disk the snapshot did not know: rescan, swapon sda", () => {
    const c = diskPickupCommand({ data: false, swap: true });
    expect(c).toMatch(/host0\/scan/);
    expect(c).toMatch(/swapon \/dev\/sda$/);
  });

  it("a data disk is found by a rescan; next to a known swap disk (sda) it is sdb", () => {
    const c = diskPickupCommand(both, { data: false, swap: true });
    expect(c).toMatch(/^echo '- - -' >\/sys\/class\/scsi_host\/host0\/scan &&\n/);
    expect(c).toMatch(/-lt 2 \]/);
    expect(c).toMatch(/mount -t ext4 -o "\$mode" \/dev\/sdb \/data$/);
    expect(c).not.toMatch(/swapon/);
  });

  it("nothing known: both rescanned, master (data) sda before slave (swap) sdb", () => {
    const c = diskPickupCommand(both);
    expect(c).toMatch(/host0\/scan/);
    expect(c).toMatch(/\/dev\/sda \/data/);
    expect(c).toMatch(/swapon \/dev\/sdb$/);
  });

  it("the data disk honours tmemu.data=ro as init does, and every step must succeed", () => {
    const c = diskPickupCommand({ data: true, swap: false });
    expect(c).toMatch(/if grep -q 'tmemu.data=ro' \/proc\/cmdline; then mode=ro; fi/);
    expect(c.split("\n").slice(0, -1).every((line) => line.endsWith(" &&"))).toBe(true);
  });
});
