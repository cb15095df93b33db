/**
 * Port traps across threads: a guest's vCPU runs in its own worker (emulator/guest-worker.ts) and
 * its port-trap handlers (the tmem device, hypervisor/tmem/device.ts) run in the main thread, next
 * to the one tmem store. A trap stays synchronous for the guest: its thread copies the registers
 * (and the 4 KiB frame EDI names, when EDI names one) into its slot, a SharedArrayBuffer, rings
 * the shared doorbell, spins on the slot for a few tens of microseconds and then sleeps in
 * Atomics.wait until the main thread has answered in the slot; then it writes the registers back
 * and, when the handler wrote a page, copies the page into guest RAM (GuestMemory.writePage:
 * JIT-safe). Guest RAM is v86's own wasm memory, not shareable, so page bytes can only cross by
 * this copy in the guest's thread. docs/scaling.md has the measurements that chose this design
 * over a lock in shared memory, and those of the spinning: on this VM a futex wake-up costs about
 * 45 µs, a crossing between two spinning threads about 2 µs.
 *
 * No node: imports (Atomics and SharedArrayBuffer are language built-ins), so both ends are
 * unit-tested in one thread as well as across real workers.
 */
import { BugIndicatingError } from "../hypervisor/errors.ts";
import { checkGuestFrame, PAGE_SIZE, type GuestMemory } from "../hypervisor/guest-memory.ts";
import type { TrapRegisters } from "../hypervisor/tmem/hypercall.ts";

/** Slot words (Int32). */
const STATE = 0;
const PORT = 1;
const REGS = 2; // EAX EBX ECX EDX ESI EDI at REGS + 0..5
const PAGE_IN = 8; // frame copied into the page area, or -1
const PAGE_OUT = 9; // frame the handler wrote into the page area, or -1
const HEADER_BYTES = 64;
export const SLOT_BYTES = HEADER_BYTES + PAGE_SIZE;

const IDLE = 0;
const REQUEST = 1;
const ANSWERED = 2;

const REG_NAMES = ["eax", "ebx", "ecx", "edx", "esi", "edi"] as const;

/** Spin iterations between two looks at the clock while spinning. */
const SPINS_PER_CLOCK = 64;
/** The most the main thread serves traps in one turn of its event loop. */
const SERVE_SLICE_MS = 10;
/** Atomics.wait slice: the guest thread wakes this often while the main thread is busy. */
const WAIT_SLICE_MS = 1000;

/**
 * The main thread's spin window after answering: spinning is worth its CPU only while the next
 * trap comes within the window. `record` takes the time from the start of a spin to the next ring
 * the server saw (measured after a sleep when the spin missed it: an upper bound, the wake-up
 * included). A ring within `maxUs` restores the full window, a later one halves it, down to
 * `floorUs`. It adapts on the observed gap, not on whether the spin caught the ring: at a window
 * shorter than the gap between a guest's calls a spin never catches one, and a rule that only
 * grew on a catch stayed at its floor for good (measured: put+get fell from 137,000 to 79,000
 * calls/s between two runs of the scaling bench).
 */
export class SpinWindow {
  private current: number;

  constructor(
    readonly maxUs: number,
    readonly floorUs = Math.min(maxUs, 2),
  ) {
    this.current = maxUs;
  }

  /** Microseconds to spin now. */
  get us(): number {
    return this.current;
  }

  /** The next ring came `gapUs` after the spin began. */
  record(gapUs: number): void {
    this.current = gapUs <= this.maxUs ? this.maxUs : Math.max(this.floorUs, this.current / 2);
  }
}

/**
 * Busy-waits until `ia[index]` differs from `value` or `us` microseconds have passed; true if it
 * changed. The clock is read once every SPINS_PER_CLOCK looks.
 */
export function spinWhileEqual(ia: Int32Array, index: number, value: number, us: number): boolean {
  if (us <= 0) return Atomics.load(ia, index) !== value;
  const end = performance.now() + us / 1000;
  for (;;) {
    for (let i = 0; i < SPINS_PER_CLOCK; i++) if (Atomics.load(ia, index) !== value) return true;
    if (performance.now() >= end) return false;
  }
}

export function createDoorbell(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

export function createSlot(): SharedArrayBuffer {
  return new SharedArrayBuffer(SLOT_BYTES);
}

/** The guest's side: one per guest thread (its vCPU traps one at a time). */
export class TrapClient {
  private readonly ctl: Int32Array;
  private readonly page: Uint8Array;
  private readonly bell: Int32Array;
  /** Traps whose answer came only after this thread had slept (its spin window ran out first). */
  sleeps = 0;

  constructor(
    slot: SharedArrayBuffer,
    doorbell: SharedArrayBuffer,
    private readonly memory: GuestMemory,
    /**
     * Spins on the answer up to this long before sleeping: a store that is awake answers a put or
     * a get in a few microseconds, while a sleep costs a futex wake-up of tens (docs/scaling.md).
     * Fixed, not adaptive: the guest's thread cannot tell a slow answer from its own slow wake-up.
     */
    private readonly spinUs = 0,
  ) {
    this.ctl = new Int32Array(slot, 0, HEADER_BYTES / 4);
    this.page = new Uint8Array(slot, HEADER_BYTES, PAGE_SIZE);
    this.bell = new Int32Array(doorbell);
  }

  /** One trap on `port`: returns when the main thread has answered. Never throws for guest values. */
  trap(port: number, regs: TrapRegisters): void {
    const ctl = this.ctl;
    ctl[PORT] = port;
    for (let i = 0; i < 6; i++) ctl[REGS + i] = regs[REG_NAMES[i] as keyof TrapRegisters] | 0;
    const pfn = regs.edi >>> 0;
    if (checkGuestFrame(pfn, this.memory.sizeBytes)) {
      this.memory.readPage(pfn, this.page);
      ctl[PAGE_IN] = pfn;
    } else {
      ctl[PAGE_IN] = -1;
    }
    ctl[PAGE_OUT] = -1;
    Atomics.store(ctl, STATE, REQUEST);
    Atomics.add(this.bell, 0, 1);
    Atomics.notify(this.bell, 0);
    if (!spinWhileEqual(ctl, STATE, REQUEST, this.spinUs)) {
      this.sleeps++;
      while (Atomics.load(ctl, STATE) === REQUEST) Atomics.wait(ctl, STATE, REQUEST, WAIT_SLICE_MS);
    }
    for (let i = 0; i < 6; i++) {
      const name = REG_NAMES[i] as keyof TrapRegisters;
      const v = (ctl[REGS + i] ?? 0) >>> 0;
      if (regs[name] >>> 0 !== v) regs[name] = v;
    }
    const out = ctl[PAGE_OUT] ?? -1;
    // The handler wrote only through SlotMemory, which accepts only checked frames.
    if (out >= 0 && checkGuestFrame(out, this.memory.sizeBytes)) this.memory.writePage(out, this.page);
    Atomics.store(ctl, STATE, IDLE);
  }
}

type TrapHandler = (regs: TrapRegisters) => void;

/**
 * The guest's memory as a handler in the main thread sees it: during a trap, the frame the guest
 * thread copied in can be read, and one frame can be written (copied into RAM after the answer).
 * Outside a trap a write is handed to `writeLater` (the guest thread applies it in order, before
 * anything the main thread sends after it); a read outside a trap is a host bug.
 */
export class SlotMemory implements GuestMemory {
  private ctl: Int32Array | undefined;
  private page: Uint8Array | undefined;

  constructor(
    readonly sizeBytes: number,
    private readonly writeLater: (pfn: number, src: Uint8Array) => void,
  ) {}

  /** @internal TrapServer: the slot being answered, or undefined between traps. */
  enter(ctl: Int32Array | undefined, page: Uint8Array | undefined): void {
    this.ctl = ctl;
    this.page = page;
  }

  readPage(pfn: number, dst: Uint8Array): void {
    const ctl = this.ctl;
    if (!ctl || !this.page || ctl[PAGE_IN] !== pfn || dst.length !== PAGE_SIZE) {
      throw new BugIndicatingError(`frame ${pfn} of a threaded guest read outside the trap that named it`);
    }
    dst.set(this.page);
  }

  writePage(pfn: number, src: Uint8Array): void {
    if (src.length !== PAGE_SIZE || !checkGuestFrame(pfn, this.sizeBytes)) {
      throw new BugIndicatingError(`guest memory access to frame ${pfn} (${src.length} bytes) was not range-checked`);
    }
    const ctl = this.ctl;
    if (!ctl || !this.page) {
      this.writeLater(pfn, src.slice());
      return;
    }
    const out = ctl[PAGE_OUT] ?? -1;
    if (out >= 0 && out !== pfn) throw new BugIndicatingError(`a threaded guest's trap wrote two frames (${out}, ${pfn})`);
    this.page.set(src);
    ctl[PAGE_OUT] = pfn;
  }
}

interface ServedSlot {
  ctl: Int32Array;
  page: Uint8Array;
  memory: SlotMemory;
  handlers: Map<number, TrapHandler>;
  regs: TrapRegisters;
}

interface AtomicsWithWaitAsync {
  waitAsync(a: Int32Array, index: number, value: number, timeoutMs?: number): { async: false; value: string } | { async: true; value: Promise<string> };
}

/**
 * The main thread's side: answers every guest slot. It sleeps in Atomics.waitAsync on the shared
 * doorbell (so the main thread's event loop keeps running: the memory host, the live table) and
 * serves every slot in the REQUEST state when it rings.
 */
export class TrapServer {
  private readonly bell: Int32Array;
  private readonly slots = new Set<ServedSlot>();
  private readonly spin: SpinWindow;
  /** When the last spin after a serve began, if it saw no ring (SpinWindow.record's gap). */
  private missedAt: number | undefined;
  private looping = false;
  /** Traps answered, for benchmarks and tests. */
  served = 0;

  constructor(
    readonly doorbell: SharedArrayBuffer = createDoorbell(),
    /**
     * After answering, watch the doorbell this long before sleeping: a guest in a burst of
     * hypercalls rings again within microseconds, and a wake-up through the event loop costs tens.
     */
    spinAfterServeUs = 0,
    /**
     * After answering, sleep on the doorbell in this thread (Atomics.wait: a futex, no CPU) this
     * long before going back to the event loop: the next trap of a burst is then answered after a
     * futex wake-up instead of a turn of the event loop. Bounded by SERVE_SLICE_MS per turn.
     */
    private readonly syncWaitUs = 0,
  ) {
    this.bell = new Int32Array(doorbell);
    this.spin = new SpinWindow(spinAfterServeUs);
  }

  /** Serves `slot`; `handlers` is live (ports may be added while the guest runs). */
  attach(slot: SharedArrayBuffer, memory: SlotMemory, handlers: Map<number, TrapHandler>): { dispose(): void } {
    const ctl = new Int32Array(slot, 0, HEADER_BYTES / 4);
    const s: ServedSlot = { ctl, page: new Uint8Array(slot, HEADER_BYTES, PAGE_SIZE), memory, handlers, regs: slotRegisters(ctl) };
    this.slots.add(s);
    this.startLoop();
    return { dispose: () => void this.slots.delete(s) };
  }

  /** Answers every pending request once; returns how many. */
  serveOnce(): number {
    let n = 0;
    for (const s of this.slots) {
      if (Atomics.load(s.ctl, STATE) !== REQUEST) continue;
      const handler = s.handlers.get(s.ctl[PORT] ?? -1);
      s.memory.enter(s.ctl, s.page);
      try {
        // Handlers must not throw (they answer guest mistakes in EAX); a throw here is a host bug
        // that must not leave the guest asleep: the guest is answered with its registers as they were.
        handler?.(s.regs);
      } catch {
        s.ctl[PAGE_OUT] = -1;
      } finally {
        s.memory.enter(undefined, undefined);
      }
      Atomics.store(s.ctl, STATE, ANSWERED);
      Atomics.notify(s.ctl, STATE);
      n++;
    }
    this.served += n;
    return n;
  }

  /** Busy-waits up to the spin window for the doorbell to move past `seen`; true if it did. */
  private spinUntilRung(seen: number): boolean {
    const t0 = performance.now();
    if (spinWhileEqual(this.bell, 0, seen, this.spin.us)) {
      this.spin.record((performance.now() - t0) * 1000);
      return true;
    }
    this.missedAt = t0;
    return false;
  }

  private startLoop(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    const waitAsync = (Atomics as unknown as AtomicsWithWaitAsync).waitAsync.bind(Atomics);
    try {
      let turn = performance.now();
      while (this.slots.size > 0) {
        const seen = Atomics.load(this.bell, 0);
        const served = this.serveOnce();
        if (served > 0 && this.missedAt !== undefined) {
          this.spin.record((performance.now() - this.missedAt) * 1000);
          this.missedAt = undefined;
        }
        if (performance.now() - turn > SERVE_SLICE_MS) {
          // a storm of traps must not starve the event loop (the memory host, messages, timers)
          await new Promise((resolve) => setImmediate(resolve));
          turn = performance.now();
          continue;
        }
        if (served > 0 && this.spin.maxUs > 0 && this.spinUntilRung(seen)) continue;
        if (served > 0 && this.syncWaitUs > 0 && Atomics.wait(this.bell, 0, seen, this.syncWaitUs / 1000) !== "timed-out") continue;
        if (Atomics.load(this.bell, 0) !== seen) continue;
        const w = waitAsync(this.bell, 0, seen, WAIT_SLICE_MS);
        if (w.async) await w.value;
        turn = performance.now();
      }
    } finally {
      this.looping = false;
    }
  }
}

function slotRegisters(ctl: Int32Array): TrapRegisters {
  const props: PropertyDescriptorMap = {};
  REG_NAMES.forEach((name, i) => {
    props[name] = {
      get: () => (ctl[REGS + i] ?? 0) >>> 0,
      set: (v: number) => {
        ctl[REGS + i] = v | 0;
      },
      enumerable: true,
    };
  });
  return Object.defineProperties({} as TrapRegisters, props);
}
