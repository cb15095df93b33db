/**
 * The PCI function that announces the tmem device to a guest (tmem_abi.h, "Discovery"): the
 * frontend looks for TMEM_PCI_VENDOR_ID:TMEM_PCI_DEVICE_ID on the PCI bus before it touches any
 * port, so a kernel on plain v86, QEMU or bare metal never writes to TMEM_IO_PORT. The function has
 * no BARs (the port is fixed by the ABI; a firmware that relocates I/O BARs cannot move it) and no
 * interrupt. Pure data: emulator/tmem-pci.ts turns it into a v86 PCI device.
 */
import { TMEM_ABI_VERSION, TMEM_PCI_DEVICE_ID, TMEM_PCI_VENDOR_ID } from "./abi.ts";

export interface PciDeviceSpec {
  /** For logs. */
  name: string;
  vendorId: number;
  deviceId: number;
  /** Class code, subclass, programming interface (config space bytes 0x0b, 0x0a, 0x09). */
  classCode: number;
  subclass: number;
  progIf: number;
  revision: number;
}

/** Memory controller (0x05), other (0x80); the revision is the host's ABI version. */
export const TMEM_PCI_DEVICE: PciDeviceSpec = {
  name: "tmemu-tmem",
  vendorId: TMEM_PCI_VENDOR_ID,
  deviceId: TMEM_PCI_DEVICE_ID,
  classCode: 0x05,
  subclass: 0x80,
  progIf: 0,
  revision: TMEM_ABI_VERSION,
};

/** Config space header (type 0) of a function with no BARs, no capabilities, no interrupt: 64 bytes. */
export function pciConfigSpace(spec: PciDeviceSpec): Uint8Array {
  for (const [what, v, max] of [
    ["vendorId", spec.vendorId, 0xfffe],
    ["deviceId", spec.deviceId, 0xffff],
    ["classCode", spec.classCode, 0xff],
    ["subclass", spec.subclass, 0xff],
    ["progIf", spec.progIf, 0xff],
    ["revision", spec.revision, 0xff],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`PCI ${what} ${v} out of range`);
  }
  const s = new Uint8Array(64);
  s[0x00] = spec.vendorId & 0xff;
  s[0x01] = spec.vendorId >>> 8;
  s[0x02] = spec.deviceId & 0xff;
  s[0x03] = spec.deviceId >>> 8;
  s[0x08] = spec.revision;
  s[0x09] = spec.progIf;
  s[0x0a] = spec.subclass;
  s[0x0b] = spec.classCode;
  s[0x0e] = 0x00; // header type 0, single function
  s[0x2c] = s[0x00]; // subsystem vendor and id: the same as the function's
  s[0x2d] = s[0x01];
  s[0x2e] = s[0x02];
  s[0x2f] = s[0x03];
  return s;
}
