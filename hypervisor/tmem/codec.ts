/**
 * Page compression for the tmem store: LZ4 (lz4-napi, napi-rs over lz4_flex), synchronous because a
 * put runs inside a hypercall while the guest's vCPU waits. Chosen by throughput and ratio on the
 * workloads' own pages (docs/store-compression.md): on memtouch's half-random pages LZ4 reached
 * 1.93 pages per 4 KiB at about 260,000 pages/s, zstd level 1 1.95 at 89,000, zlib's deflate level 1
 * 1.93 at under 7,000 per call, a pure-JS LZ4 1.96 at 13,000.
 *
 * A compressed page keeps lz4-napi's 4-byte length prefix. A page whose compressed form is longer
 * than MAX_PACKED_SIZE (3/4 of a page; Google's far-memory zswap stops at 2990 bytes) is kept whole:
 * its stored form is the page itself, FRAME_SIZE bytes, which is how decompress() tells them apart.
 *
 * CompressionGate makes compression pay where it does not: after a run of incompressible pages
 * (an encrypted or already compressed file set) a client's puts of that pool type skip the
 * compressor for a growing number of pages (up to MAX_SKIP), then try again.
 */

import { compressSync, uncompressSync } from "lz4-napi";
import { BugIndicatingError } from "../errors.ts";
import { FRAME_SIZE } from "./slab.ts";
import { MAX_PACKED_SIZE } from "./zpool.ts";

export const COMPRESSOR = "lz4";

/**
 * The stored form of `page` (FRAME_SIZE bytes): its LZ4 compression if that is at most
 * MAX_PACKED_SIZE bytes, else `page` itself.
 */
export function compressPage(page: Uint8Array): Uint8Array {
  const view = page instanceof Buffer ? page : Buffer.from(page.buffer, page.byteOffset, FRAME_SIZE);
  const packed = compressSync(view);
  return packed.length <= MAX_PACKED_SIZE ? packed : page;
}

/** Writes the page whose stored form is `stored` into `dst` (FRAME_SIZE bytes). */
export function decompressPage(stored: Uint8Array, dst: Uint8Array): void {
  if (stored.length === FRAME_SIZE) {
    dst.set(stored);
    return;
  }
  const page = uncompressSync(stored);
  if (page.length !== FRAME_SIZE) {
    throw new BugIndicatingError(`tmem codec: a stored page decompressed to ${page.length} bytes`);
  }
  dst.set(page);
}

/** Pages skipped at most after a run of incompressible ones. */
export const MAX_SKIP = 64;

/** Whether compressing one client's pages of one pool type pays (see the file comment). */
export class CompressionGate {
  private skip = 0;
  private backoff = 0;

  /** True while pages skip the compressor: the next shouldTry() will say false. */
  get skipping(): boolean {
    return this.skip > 0;
  }

  /** True if the next page should go through the compressor. */
  shouldTry(): boolean {
    if (this.skip === 0) return true;
    this.skip--;
    return false;
  }

  /** Tells the gate whether the page it let through compressed. */
  record(compressed: boolean): void {
    if (compressed) {
      this.backoff = 0;
    } else {
      this.backoff = Math.min(MAX_SKIP, this.backoff === 0 ? 1 : this.backoff * 2);
      this.skip = this.backoff;
    }
  }
}

/**
 * A 32-bit hash of a page's 1024 words (FNV-1a over words, then a murmur3 finaliser): the dedup
 * index's key; equal hashes are always followed by a full compare.
 */
export function hashPage(words: Uint32Array, offset = 0): number {
  let h = 0x811c9dc5;
  const end = offset + FRAME_SIZE / 4;
  for (let i = offset; i < end; i++) h = Math.imul(h ^ words[i]!, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
