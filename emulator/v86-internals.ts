/**
 * The one place that types v86's untyped internals (v86 0.5.462, build/libv86.mjs).
 *
 * v86.d.ts types the public V86 class only. tmemu also needs the CPU object behind it
 * (`emulator.v86.cpu`): the port-I/O table, the register file, guest-physical memory and the
 * devices. Their property names survive v86's release build (verified in ../shared/DESIGN.md);
 * everything here is checked at runtime once, in `internalsOf`, so a v86 upgrade that renames
 * them fails loudly at boot instead of corrupting a guest.
 */
import type { V86 } from "v86";
import { BugIndicatingError } from "../hypervisor/errors.ts";

export type PortWrite = (value: number) => void;
export type PortRead = (port: number) => number;

export interface V86Io {
  register_write(port: number, device: object, w8?: PortWrite, w16?: PortWrite, w32?: PortWrite): void;
  register_read(port: number, device: object, r8?: PortRead, r16?: PortRead, r32?: PortRead): void;
}

/** v86's disk buffers (SyncBuffer and friends): byte-addressed, callback style. */
export interface V86DiskBuffer {
  byteLength: number;
  get(start: number, len: number, fn: (data: Uint8Array) => void): void;
  set(start: number, slice: Uint8Array, fn: () => void): void;
}

export interface V86IdeDrive {
  buffer: V86DiskBuffer | null;
}

export interface V86VirtQueue {
  /** Set when the guest's driver enables the queue (after giving it ring addresses); reset clears it. */
  enabled: boolean;
  pop_request(): V86BufferChain;
}

export interface V86BufferChain {
  /** From the guest's descriptor table, read with read32s: addr_low and len may be negative. */
  read_buffers: { addr_low: number; addr_high: number; len: number }[];
  length_readable: number;
  get_next_blob(dest: Uint8Array): number;
}

export interface V86VirtioBalloon {
  actual: number;
  num_pages: number;
  Inflate(pages: number): void;
  Deflate(pages: number): void;
  GetStats(cb: (stats: Record<string, number>) => void): void;
  virtio: { queues: V86VirtQueue[] };
}

export interface V86Cpu {
  io: V86Io;
  /**
   * EAX=0 ECX=1 EDX=2 EBX=3 ESP=4 EBP=5 ESI=6 EDI=7. Not a typed array but a Proxy that builds a
   * new Int32Array over the wasm memory on every access (so it survives memory growth): read it
   * through `registerFile`, which keeps one view.
   */
  reg32: Int32Array;
  /** A Proxy like reg32; memory_size[0] is guest RAM in bytes. */
  memory_size: Uint32Array;
  /** A Proxy like reg32 over guest RAM (a new Uint8Array per access): see guestMemoryOf. */
  mem8?: Uint8Array;
  /** Invalidates JIT-compiled code for guest-physical [start, end) (what write_blob calls). */
  jit_dirty_cache?: (start: number, end: number) => void;
  read_blob(addr: number, len: number): Uint8Array;
  write_blob(bytes: Uint8Array, addr: number): void;
  devices: {
    ide?: { primary?: { master: V86IdeDrive; slave: V86IdeDrive } };
    virtio_balloon?: V86VirtioBalloon;
  };
}

/** Register numbers in `reg32`. */
export const REG = { EAX: 0, ECX: 1, EDX: 2, EBX: 3, ESP: 4, EBP: 5, ESI: 6, EDI: 7 } as const;

export function internalsOf(emulator: V86): V86Cpu {
  const cpu = (emulator as unknown as { v86?: { cpu?: Partial<V86Cpu> } }).v86?.cpu;
  if (
    !cpu ||
    !cpu.io ||
    typeof cpu.io.register_write !== "function" ||
    typeof cpu.reg32 !== "object" ||
    cpu.reg32.length !== 8 ||
    typeof cpu.memory_size?.[0] !== "number" ||
    typeof cpu.read_blob !== "function" ||
    typeof cpu.write_blob !== "function" ||
    !cpu.devices
  ) {
    throw new BugIndicatingError(
      "v86 internals (cpu.io, reg32, memory_size, read_blob, write_blob, devices) not found: " +
        "this v86 version is not the one tmemu was written for (0.5.462)",
    );
  }
  return cpu as V86Cpu;
}

/**
 * A cached Int32Array over the CPU's eight general registers, rebuilt if the wasm memory under it
 * was replaced (a detached view has length 0). One view instead of the Proxy's array per access
 * keeps the hypercall path cheap.
 */
export function registerFile(cpu: V86Cpu): () => Int32Array {
  const make = () => new Int32Array(cpu.reg32.buffer, cpu.reg32.byteOffset, 8);
  let view = make();
  return () => {
    if (view.length === 0) view = make();
    return view;
  };
}

/**
 * What snapshots (emulator/snapshot.ts) need of v86: the machine's save_state / restore_state, and
 * the part of an IDE drive (X) and of its SyncBuffer (z) that a restore must put back (the X
 * constructor computes the geometry from the disk).
 */
export interface V86IdeDriveInternals {
  buffer: V86SyncBuffer | null;
  is_atapi: boolean;
  drive_connected: boolean | V86SyncBuffer | null;
  sector_count: number;
  cylinder_count: number;
  head_count: number;
  sectors_per_track: number;
}

export interface V86SyncBuffer {
  buffer: ArrayBuffer;
  byteLength: number;
  get_state(): unknown[];
}

export interface V86Machine {
  save_state(): ArrayBuffer;
  restore_state(state: ArrayBuffer): void;
  cpu?: { devices?: { ide?: { primary?: { master: V86IdeDriveInternals; slave: V86IdeDriveInternals } } } };
}

export function machineOf(emulator: V86): V86Machine {
  const m = (emulator as unknown as { v86?: V86Machine }).v86;
  if (!m || typeof m.save_state !== "function" || typeof m.restore_state !== "function") {
    throw new BugIndicatingError("v86 save_state/restore_state not found: this v86 is not the one tmemu was written for (0.5.462)");
  }
  return m;
}
