/**
 * Swap disk images in the Linux swap v1 format (include/linux/swap.h, union swap_header): page 0
 * holds 1024 bytes of boot block, then version = 1, last_page, nr_badpages = 0, a UUID and a label,
 * and the "SWAPSPACE2" signature in the last 10 bytes of the page. Same layout mkswap(8) writes.
 */
import { randomUUID } from "node:crypto";

const PAGE = 4096;

export function makeSwapImage(sizeMib: number, label = "tmemu-swap", uuid: string = randomUUID()): Uint8Array {
  if (!Number.isInteger(sizeMib) || sizeMib < 1 || sizeMib > 4096) throw new RangeError(`swap size must be 1..4096 MiB, got ${sizeMib}`);
  const bytes = new Uint8Array(sizeMib * 1024 * 1024);
  const view = new DataView(bytes.buffer);
  const pages = bytes.length / PAGE;
  view.setUint32(1024, 1, true); // version
  view.setUint32(1028, pages - 1, true); // last_page
  view.setUint32(1032, 0, true); // nr_badpages
  const hex = uuid.replace(/-/g, "");
  for (let i = 0; i < 16; i++) bytes[1036 + i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  bytes.set(new TextEncoder().encode(label.slice(0, 15)), 1052);
  bytes.set(new TextEncoder().encode("SWAPSPACE2"), PAGE - 10);
  return bytes;
}
