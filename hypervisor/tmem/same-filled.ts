/**
 * Same-filled page detection (the idea of zswap's same_filled_pages): a 4 KiB page whose 1024
 * 32-bit words are all equal (all zero being the common case) is kept as that one word, without a
 * slab frame. The word is read and written back through a Uint32Array in native byte order, so the
 * page's bytes round-trip exactly on any host.
 */

import { FRAME_WORDS } from "./slab.ts";

/** Result of sameFilledWord for a page that is not same-filled. */
export const NOT_SAME_FILLED = -1;

/**
 * The repeated word (a u32) if words[offset .. offset + 1024) are all equal, else NOT_SAME_FILLED.
 * Random data differs at the second word, so the common "no" costs two reads.
 */
export function sameFilledWord(words: Uint32Array, offset: number): number {
  const first = words[offset]!;
  const end = offset + FRAME_WORDS;
  for (let i = offset + 1; i < end; i++) {
    if (words[i] !== first) return NOT_SAME_FILLED;
  }
  return first;
}
