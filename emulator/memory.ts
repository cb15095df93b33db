/**
 * Guest-physical memory of a v86 guest as the hypervisor's GuestMemory (hypervisor/guest-memory.ts):
 * whole 4 KiB frames, each access range-checked here again, whatever the caller checked. v86's
 * read_blob and write_blob check nothing (a frame past the end would give a short view or write
 * past guest RAM into the rest of v86's wasm memory).
 */
import { checkGuestFrame, PAGE_SIZE, type GuestMemory } from "../hypervisor/guest-memory.ts";
import type { V86Cpu } from "./v86-internals.ts";

export function guestMemoryOf(cpu: Pick<V86Cpu, "memory_size" | "read_blob" | "write_blob">): GuestMemory {
  const sizeBytes = cpu.memory_size[0] ?? 0;
  const check = (pfn: number, bytes: Uint8Array): number => {
    if (!checkGuestFrame(pfn, sizeBytes)) throw new RangeError(`guest frame ${pfn} is outside guest RAM or in the VGA hole`);
    if (bytes.length !== PAGE_SIZE) throw new RangeError(`a guest page is ${PAGE_SIZE} bytes, not ${bytes.length}`);
    return pfn * PAGE_SIZE;
  };
  return {
    sizeBytes,
    readPage: (pfn, dst) => dst.set(cpu.read_blob(check(pfn, dst), PAGE_SIZE)),
    // Through write_blob: it invalidates JIT-compiled code on the page (DESIGN.md).
    writePage: (pfn, src) => cpu.write_blob(src, check(pfn, src)),
  };
}
