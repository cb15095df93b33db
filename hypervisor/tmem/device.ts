/**
 * The paravirtual tmem device: one store client per guest, reached through the hypercall port
 * (TMEM_IO_PORT, tmem_abi.h). Binds a guest platform (anything that can trap a port and show its
 * physical memory: emulator/guest.ts's Guest, or a test double) to the transport-independent
 * handler. Knows nothing about v86 and nothing about eviction.
 */
import type { GuestMemory } from "../guest-memory.ts";
import { TMEM_IO_PORT } from "./abi.ts";
import { TmemHypercallHandler, type TrapRegisters } from "./hypercall.ts";
import { TMEM_PCI_DEVICE, type PciDeviceSpec } from "./pci.ts";
import type { CreateClientOptions, TmemStore } from "./store.ts";

export interface TrapTarget {
  readonly memory: GuestMemory;
  registerPortTrap(port: number, handler: (regs: TrapRegisters) => void): { dispose(): void };
  /** Announces the device on the guest's PCI bus (tmem_abi.h "Discovery"); before the CPU runs. */
  registerPciDevice(spec: PciDeviceSpec): void;
}

export class TmemDevice {
  readonly clientId: number;
  readonly handler: TmemHypercallHandler;
  private readonly trap: { dispose(): void };
  private disposed = false;

  /** Call while the guest is not running yet (before its kernel probes). */
  constructor(
    private readonly store: TmemStore,
    target: TrapTarget,
    name: string,
    options: CreateClientOptions = {},
  ) {
    this.clientId = store.createClient(name, options);
    this.handler = new TmemHypercallHandler(store, this.clientId, target.memory);
    const handler = this.handler;
    this.trap = target.registerPortTrap(TMEM_IO_PORT, (regs) => handler.handle(regs));
    target.registerPciDevice(TMEM_PCI_DEVICE);
  }

  /**
   * For a guest whose tmem state this store does not hold (restored from a snapshot taken on
   * another host or store): drops every pool of the client and answers every op but TMEM_PROBE
   * with TMEM_E_RESET until the guest probes again (TmemStore.resetClient with pending).
   */
  requireReprobe(): void {
    this.store.resetClient(this.clientId, { pending: true });
  }

  /** Unplugs the device and frees everything the guest's client holds in the store. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.trap.dispose();
    this.store.destroyClient(this.clientId);
  }
}
