/**
 * The paravirtual tmem device: one store client per guest, reached through the hypercall port
 * (TMEM_IO_PORT, tmem_abi.h). Binds a guest platform (anything that can trap a port and show its
 * physical memory: emulator/guest.ts's Guest, or a test double) to the transport-independent
 * handler. Knows nothing about v86 and nothing about eviction.
 */
import type { GuestMemory } from "../guest-memory.ts";
import { TMEM_IO_PORT } from "./abi.ts";
import { TmemHypercallHandler, type TrapRegisters } from "./hypercall.ts";
import type { CreateClientOptions, TmemStore } from "./store.ts";

export interface TrapTarget {
  readonly memory: GuestMemory;
  registerPortTrap(port: number, handler: (regs: TrapRegisters) => void): { dispose(): void };
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
  }

  /** Unplugs the device and frees everything the guest's client holds in the store. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.trap.dispose();
    this.store.destroyClient(this.clientId);
  }
}
