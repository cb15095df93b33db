/**
 * Plugs a PCI function described by a PciDeviceSpec (hypervisor/tmem/pci.ts) into a v86 machine,
 * the way v86's own devices do (src/pci.js register_device: pci_id = device << 3, a config space
 * of at least 64 bytes, pci_bars). The function has no BARs, so firmware and guest can size and
 * write its BAR registers but never move a port. Call it before the CPU runs (the BIOS and the
 * guest enumerate the bus at boot).
 */
import { BugIndicatingError } from "../hypervisor/errors.ts";
import { pciConfigSpace, type PciDeviceSpec } from "../hypervisor/tmem/pci.ts";
import type { V86Cpu } from "./v86-internals.ts";

interface V86PciDevice {
  name: string;
  pci_id: number;
  pci_space: number[];
  pci_bars: unknown[];
}

interface V86Pci {
  devices: (V86PciDevice | undefined)[];
  register_device(device: V86PciDevice): void;
}

/**
 * Bus 0 device numbers tmemu gives its own functions, after those v86 0.5.462 uses (0 host bridge,
 * 1 ISA bridge, 5/8+ network, 6-7 IDE, 10-12 virtio, 18, 30 VGA).
 */
const FIRST_FREE_DEVICE = 0x1c;
const LAST_FREE_DEVICE = 0x1d;

function pciOf(cpu: V86Cpu): V86Pci {
  const pci = (cpu.devices as { pci?: Partial<V86Pci> }).pci;
  if (pci === undefined || typeof pci.register_device !== "function" || !Array.isArray(pci.devices)) {
    throw new BugIndicatingError("v86's PCI bus (cpu.devices.pci.register_device) was not found: tmemu was written for v86 0.5.462");
  }
  return pci as V86Pci;
}

/** Registers the function on bus 0 in the first free tmemu slot; returns its device number. */
export function registerPciDevice(cpu: V86Cpu, spec: PciDeviceSpec): number {
  const pci = pciOf(cpu);
  for (let dev = FIRST_FREE_DEVICE; dev <= LAST_FREE_DEVICE; dev++) {
    const pciId = dev << 3;
    if (pci.devices[pciId] !== undefined) continue;
    pci.register_device({ name: spec.name, pci_id: pciId, pci_space: [...pciConfigSpace(spec)], pci_bars: [] });
    return dev;
  }
  throw new BugIndicatingError(`no free PCI slot for ${spec.name}: a guest takes one tmem device`);
}
