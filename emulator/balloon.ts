/**
 * The host side of v86's virtio balloon (virtio spec 5.5; v86 0.5.462's device: queue 0 inflate,
 * 1 deflate, 2 stats, 3 free-page hints). v86 counts inflated pages into `actual` but drops their
 * frame numbers; this module taps the two page queues to see them: each request's readable
 * buffers hold little-endian u32 page frame numbers (VIRTIO_BALLOON_PFN_SHIFT = 12). The frames
 * are read straight from guest memory (the device reads the same bytes right after, unchanged).
 */
import type { V86Cpu, V86VirtioBalloon } from "./v86-internals.ts";

/** virtio-balloon stats tags as v86 names them. */
export type BalloonStats = Partial<Record<"SWAP_IN" | "SWAP_OUT" | "MAJFLT" | "MINFLT" | "MEMFREE" | "MEMTOT" | "AVAIL" | "CACHES" | "HTLB_PGALLOC" | "HTLB_PGFAIL", number>>;

export interface BalloonListener {
  onInflate(pfns: number[]): void;
  onDeflate(pfns: number[]): void;
}

const MAX_PFNS_PER_REQUEST = 1 << 16;

export class GuestBalloon {
  private listener: BalloonListener | undefined;

  constructor(
    private readonly cpu: V86Cpu,
    private readonly device: V86VirtioBalloon,
  ) {
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
   * or undefined after `timeoutMs` (a guest whose driver has not started yet never answers).
   */
  stats(timeoutMs = 2000): Promise<BalloonStats | undefined> {
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
      const pfns: number[] = [];
      for (const buf of req.read_buffers) {
        const n = Math.min(Math.floor(buf.len / 4), MAX_PFNS_PER_REQUEST);
        const bytes = this.cpu.read_blob(buf.addr_low, n * 4);
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        for (let i = 0; i < n; i++) pfns.push(view.getUint32(i * 4, true));
      }
      deliver(pfns);
      return req;
    };
  }
}
