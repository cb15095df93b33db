/**
 * Guest-physical memory of a v86 guest as the hypervisor's GuestMemory (hypervisor/guest-memory.ts):
 * whole 4 KiB frames, each access range-checked here again, whatever the caller checked. v86's
 * read_blob and write_blob check nothing (a frame past the end would give a short view or write
 * past guest RAM into the rest of v86's wasm memory).
 */
import { checkGuestFrame, PAGE_SIZE, type GuestMemory } from "../hypervisor/guest-memory.ts";
import type { V86Cpu } from "./v86-internals.ts";

export function guestMemoryOf(cpu: Pick<V86Cpu, "memory_size" | "read_blob" | "write_blob" | "mem8" | "jit_dirty_cache">): GuestMemory {
  const sizeBytes = cpu.memory_size[0] ?? 0;
  const ram = ramView(cpu);
  const check = (pfn: number, bytes: Uint8Array): number => {
    if (!checkGuestFrame(pfn, sizeBytes)) throw new RangeError(`guest frame ${pfn} is outside guest RAM or in the VGA hole`);
    if (bytes.length !== PAGE_SIZE) throw new RangeError(`a guest page is ${PAGE_SIZE} bytes, not ${bytes.length}`);
    return pfn * PAGE_SIZE;
  };
  const dirty = cpu.jit_dirty_cache;
  if (!ram || !dirty) {
    return {
      sizeBytes,
      readPage: (pfn, dst) => dst.set(cpu.read_blob(check(pfn, dst), PAGE_SIZE)),
      // Through write_blob: it invalidates JIT-compiled code on the page (DESIGN.md).
      writePage: (pfn, src) => cpu.write_blob(src, check(pfn, src)),
    };
  }
  // The hypercall path: the same steps as read_blob and write_blob (invalidate compiled code on
  // the page, then copy), over one cached view instead of v86's Proxy, which builds a new
  // Uint8Array over all of guest RAM on every access (measured: most of a tmem get's cost).
  return {
    sizeBytes,
    readPage: (pfn, dst) => {
      const addr = check(pfn, dst);
      dst.set(ram().subarray(addr, addr + PAGE_SIZE));
    },
    writePage: (pfn, src) => {
      const addr = check(pfn, src);
      dirty(addr, addr + PAGE_SIZE);
      ram().set(src, addr);
    },
  };
}

/** One Uint8Array over guest RAM, rebuilt if the wasm memory under it was replaced (detached). */
function ramView(cpu: Pick<V86Cpu, "mem8" | "memory_size">): (() => Uint8Array) | undefined {
  const proxy = cpu.mem8;
  if (!proxy || typeof proxy !== "object" || !(proxy.buffer instanceof ArrayBuffer || proxy.buffer instanceof SharedArrayBuffer)) return undefined;
  const make = () => new Uint8Array(proxy.buffer, proxy.byteOffset, cpu.memory_size[0] ?? 0);
  let view = make();
  return () => {
    if (view.length === 0) view = make();
    return view;
  };
}
