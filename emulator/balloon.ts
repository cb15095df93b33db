/**
 * The host side of v86's virtio balloon (virtio spec 5.5; v86 0.5.462's device: queue 0 inflate,
 * 1 deflate, 2 stats, 3 free-page hints). v86 counts inflated pages into `actual` but drops their
 * frame numbers; this module taps the two page queues to see them: each request's readable
 * buffers hold little-endian u32 page frame numbers (VIRTIO_BALLOON_PFN_SHIFT = 12). The frames
 * are read straight from guest memory (the device reads the same bytes right after, unchanged).
 *
 * Trust (STYLE.md, item 10): a buffer's address and length come from the guest's descriptor table
 * (v86 reads them as signed 32-bit numbers and drops addr_high). A buffer that does not lie wholly
 * in guest RAM is skipped and counted in `bufferReadFails`, never read: v86's read_blob does not
 * check, and a short or negative-offset view would either throw through the emulated CPU or read
 * the wrong bytes. The request is then handed to v86's device with only the buffers that were
 * read (cut to whole frame numbers): the device sizes a buffer by the sum of the guest's lengths
 * (a negative sum throws through the CPU) and counts `actual` from it, which now matches the frames
 * the listener got. The frame numbers themselves are checked by whoever listens (the host's ledger).
 */
import { BugIndicatingError } from "../hypervisor/errors.ts";
import type { V86BufferChain, V86Cpu, V86VirtioBalloon } from "./v86-internals.ts";

/** virtio-balloon stats tags as v86 names them. */
export type BalloonStats = Partial<Record<"SWAP_IN" | "SWAP_OUT" | "MAJFLT" | "MINFLT" | "MEMFREE" | "MEMTOT" | "AVAIL" | "CACHES" | "HTLB_PGALLOC" | "HTLB_PGFAIL", number>>;

export interface BalloonListener {
  onInflate(pfns: number[]): void;
  onDeflate(pfns: number[]): void;
}

/**
 * At most this many frame numbers are taken from one request (Linux sends at most
 * VIRTIO_BALLOON_ARRAY_PFNS_MAX = 256; a 2 GiB guest has 512 Ki frames). The rest are dropped and the
 * request counted in `bufferReadFails`.
 */
export const MAX_PFNS_PER_REQUEST = 1 << 16;

const STATS_QUEUE = 2;

export class GuestBalloon {
  private listener: BalloonListener | undefined;
  /** Guest RAM in bytes (v86 memory_size; fixed for the life of the guest). */
  private readonly ramBytes: number;
  /** Inflate/deflate buffers skipped because they were not wholly in guest RAM, or cut short by the per-request cap. */
  bufferReadFails = 0;

  constructor(
    private readonly cpu: V86Cpu,
    private readonly device: V86VirtioBalloon,
  ) {
    this.ramBytes = cpu.memory_size[0] ?? 0;
    if (typeof device.virtio.queues[STATS_QUEUE]?.enabled !== "boolean") {
      throw new BugIndicatingError("v86's virtio-balloon has no stats queue with an `enabled` flag: not the v86 tmemu was written for (0.5.462)");
    }
    this.tap(0, (pfns) => this.listener?.onInflate(pfns));
    this.tap(1, (pfns) => this.listener?.onDeflate(pfns));
  }

  /** Where inflated and deflated frame numbers go (one listener; the host's balloon ledger). */
  listen(listener: BalloonListener | undefined): void {
    this.listener = listener;
  }

  /** Pages the host asked the guest to give (num_pages). */
  get targetPages(): number {
    return this.device.num_pages;
  }

  /** Pages the guest has given (actual), as the device counts them. */
  get actualPages(): number {
    return this.device.actual;
  }

  /** Asks the guest to hold `pages` pages in its balloon; it inflates or deflates on its own time. */
  setTargetPages(pages: number): void {
    const target = Math.max(0, Math.floor(pages));
    const delta = target - this.device.num_pages;
    if (delta > 0) this.device.Inflate(delta);
    else if (delta < 0) this.device.Deflate(-delta);
  }

  /**
   * The guest's memory statistics (virtio-balloon stats queue). Resolves when the guest answers,
   * or undefined after `timeoutMs`. Undefined at once while the guest's driver has not enabled the
   * stats queue: v86's GetStats would otherwise walk the unconfigured queue, whose ring addresses
   * are 0, and write "replies" over guest-physical page 0.
   */
  stats(timeoutMs = 2000): Promise<BalloonStats | undefined> {
    if (!this.device.virtio.queues[STATS_QUEUE]?.enabled) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      this.device.GetStats((s) => {
        clearTimeout(timer);
        resolve(s as BalloonStats);
      });
    });
  }

  private tap(queue: number, deliver: (pfns: number[]) => void): void {
    const q = this.device.virtio.queues[queue];
    if (!q) return;
    const pop = q.pop_request.bind(q);
    q.pop_request = () => {
      const req = pop();
      deliver(this.framesOf(req));
      return req;
    };
  }

  /**
   * The frame numbers in a request's device-readable buffers, each buffer range-checked first.
   * Leaves in `req` only what was read, so that v86's device reads and counts the same frames.
   */
  private framesOf(req: V86BufferChain): number[] {
    const pfns: number[] = [];
    const kept: V86BufferChain["read_buffers"] = [];
    for (const buf of req.read_buffers) {
      const addr = buf.addr_low >>> 0;
      const len = buf.len >>> 0;
      if (buf.addr_high !== 0 || addr + len > this.ramBytes) {
        this.bufferReadFails++;
        continue;
      }
      let n = Math.floor(len / 4);
      if (n > MAX_PFNS_PER_REQUEST - pfns.length || len % 4 !== 0) {
        n = Math.min(n, MAX_PFNS_PER_REQUEST - pfns.length);
        this.bufferReadFails++;
      }
      if (n === 0) continue;
      const bytes = this.cpu.read_blob(addr, n * 4);
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      for (let i = 0; i < n; i++) pfns.push(view.getUint32(i * 4, true));
      kept.push({ addr_low: addr, addr_high: 0, len: n * 4 });
    }
    req.read_buffers = kept;
    req.length_readable = pfns.length * 4;
    return pfns;
  }
}
