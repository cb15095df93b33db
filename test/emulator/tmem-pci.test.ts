/**
 * The tmem PCI function on v86's bus: registered with v86's register_device shape (pci_id =
 * device << 3, a 64-byte config space with tmemu's ids, no BARs) in the first free tmemu slot, and
 * a loud bug when v86's PCI bus is not where tmemu expects it.
 */
import { describe, expect, it } from "vitest";
import { registerPciDevice } from "../../emulator/tmem-pci.ts";
import type { V86Cpu } from "../../emulator/v86-internals.ts";
import { TMEM_PCI_DEVICE } from "../../hypervisor/tmem/pci.ts";
import { TMEM_ABI_VERSION, TMEM_PCI_DEVICE_ID, TMEM_PCI_VENDOR_ID } from "../../hypervisor/tmem/abi.ts";

function fakeCpu(taken: number[] = []): { cpu: V86Cpu; registered: { pci_id: number; pci_space: number[]; pci_bars: unknown[] }[] } {
  const registered: { pci_id: number; pci_space: number[]; pci_bars: unknown[] }[] = [];
  const devices: unknown[] = new Array(256).fill(undefined);
  for (const id of taken) devices[id] = { name: "other" };
  const pci = {
    devices,
    register_device(d: { pci_id: number; pci_space: number[]; pci_bars: unknown[] }) {
      devices[d.pci_id] = d;
      registered.push(d);
    },
  };
  return { cpu: { devices: { pci } } as unknown as V86Cpu, registered };
}

describe("registerPciDevice", () => {
  it("puts tmemu's function at device 0x1c with its ids, class 05/80, the ABI version as revision, no BARs", () => {
    const { cpu, registered } = fakeCpu();
    expect(registerPciDevice(cpu, TMEM_PCI_DEVICE)).toBe(0x1c);
    const d = registered[0]!;
    expect(d.pci_id).toBe(0x1c << 3);
    expect(d.pci_space).toHaveLength(64);
    const s = d.pci_space;
    expect(s[0]! | (s[1]! << 8)).toBe(TMEM_PCI_VENDOR_ID);
    expect(s[2]! | (s[3]! << 8)).toBe(TMEM_PCI_DEVICE_ID);
    expect([s[8], s[0xa], s[0xb]]).toEqual([TMEM_ABI_VERSION, 0x80, 0x05]);
    expect(s.slice(0x10, 0x28).every((b) => b === 0)).toBe(true);
    expect(d.pci_bars).toEqual([]);
  });

  it("takes the next free slot, and fails loudly with none or without v86's PCI bus", () => {
    expect(registerPciDevice(fakeCpu([0x1c << 3]).cpu, TMEM_PCI_DEVICE)).toBe(0x1d);
    expect(() => registerPciDevice(fakeCpu([0x1c << 3, 0x1d << 3]).cpu, TMEM_PCI_DEVICE)).toThrow(/no free PCI slot/);
    expect(() => registerPciDevice({ devices: {} } as unknown as V86Cpu, TMEM_PCI_DEVICE)).toThrow(/PCI bus/);
  });
});
