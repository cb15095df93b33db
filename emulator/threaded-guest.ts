/**
 * A guest whose v86 instance runs in a worker thread of its own (guest-worker.ts), seen from the
 * main thread through the same API as Guest (GuestApi), so cli/ and hypervisor/ do not learn about
 * threads. What the main thread asks often is answered here without a round trip: the console is
 * mirrored (every byte the guest prints is posted here, so offsets, waits and tails are local),
 * disk counters and balloon levels arrive with a status message every STATUS_EVERY_MS (the
 * worker's heartbeat). Commands and other Guest methods go to the worker as messages
 * (FORWARDED_CALLS in worker-protocol.ts). Port traps are answered here, synchronously for the
 * guest, through a SharedArrayBuffer slot (trap-channel.ts).
 *
 * A worker that throws, exits or stops sending heartbeats (hangTimeoutMs) is this guest's failure:
 * the guest is marked gone with the reason (GUEST_GONE), its pending calls and waits reject with
 * it, its worker is terminated; the other guests and the run go on.
 */
import { Worker } from "node:worker_threads";
import { TmemuError } from "../hypervisor/user-errors.ts";
import type { RunResult } from "./agent.ts";
import type { BalloonListener, BalloonStats, GuestBalloon } from "./balloon.ts";
import { ConsoleView, type Disposable } from "./console.ts";
import { emptyDiskCounters, type DiskCounters } from "./disks.ts";
import type { Guest, GuestBootOptions } from "./guest.ts";
import { checkGuestMemoryMib } from "./memory-size.ts";
import { emptyTrapWait, type TrapWaitCounts } from "./trap-timer.ts";
import type { TrapRegisters } from "../hypervisor/tmem/hypercall.ts";
import type { PciDeviceSpec } from "../hypervisor/tmem/pci.ts";
import { createSlot, SlotMemory, TrapServer } from "./trap-channel.ts";
import {
  deserializeError,
  workerBootOptions,
  type CallArgs,
  type CallResult,
  type ForwardedCall,
  type ForwardedSend,
  type FromWorker,
  type GuestStatus,
  type SendMessage,
  type ToWorker,
  type WorkerData,
} from "./worker-protocol.ts";

/** The balloon as the host uses it, in-thread (GuestBalloon) or threaded. */
export type GuestBalloonApi = Pick<GuestBalloon, "listen" | "setTargetPages" | "stats" | "targetPages" | "actualPages">;

/** What every guest offers, whichever thread runs its vCPU: Guest's public API. */
export type GuestApi = Omit<Pick<Guest, keyof Guest>, "balloon" | "memory"> & {
  readonly balloon: GuestBalloonApi | undefined;
  readonly memory: Guest["memory"];
};

export interface ThreadedBootOptions extends Omit<GuestBootOptions, "beforeStart"> {
  /** Called before the worker starts: register port traps and PCI devices here. */
  beforeStart?: (guest: GuestApi) => void;
  /** A worker silent this long is hung (default 60 s). */
  hangTimeoutMs?: number;
}

export const STATUS_EVERY_MS = 250;
const DEFAULT_HANG_TIMEOUT_MS = 60_000;
const DISPOSE_TIMEOUT_MS = 5_000;
const WORKER_ENTRY = new URL("./guest-worker-boot.mjs", import.meta.url);

/**
 * Microseconds the main thread keeps watching the doorbell after answering a trap
 * (TrapServer.spinAfterServeUs; docs/scaling.md has the measurement that chose it).
 * TMEMU_TRAP_SPIN_US overrides it, for measurements.
 */
export const TRAP_SPIN_US = 200;

/**
 * Microseconds a guest's thread spins on a trap's answer before it sleeps (TrapClient's spin
 * window). TMEMU_TRAP_CLIENT_SPIN_US overrides it, for measurements.
 */
export const TRAP_CLIENT_SPIN_US = 50;

/** Microseconds the main thread sleeps on the doorbell after answering (TrapServer.syncWaitUs). */
export const TRAP_SYNC_WAIT_US = 200;

function envMicroseconds(name: string, fallback: number): number {
  const env = process.env[name];
  const us = env === undefined || env === "" ? fallback : Number(env);
  if (!(us >= 0 && us <= 1_000_000)) throw new TmemuError("USAGE", `${name}=${env} is not a number of microseconds (0-1000000)`, "unset it, or give e.g. 50");
  return us;
}

/** One server answers the traps of every threaded guest of this process (one doorbell). */
let sharedServer: TrapServer | undefined;
export function trapServer(): TrapServer {
  sharedServer ??= new TrapServer(undefined, envMicroseconds("TMEMU_TRAP_SPIN_US", TRAP_SPIN_US), envMicroseconds("TMEMU_TRAP_SYNC_WAIT_US", TRAP_SYNC_WAIT_US));
  return sharedServer;
}

type Pending = { resolve(v: unknown): void; reject(e: Error): void };

/** The console (ConsoleView) is a local mirror of the worker's, fed by its "console" messages. */
export class ThreadedGuest extends ConsoleView implements GuestApi {
  readonly name: string;
  readonly memoryMib: number;
  kernelRelease = "";
  readonly disks: { data: DiskCounters; swap: DiskCounters } = { data: emptyDiskCounters(), swap: emptyDiskCounters() };
  readonly memory: SlotMemory;

  private readonly encoder = new TextEncoder();
  private readonly handlers = new Map<number, (regs: TrapRegisters) => void>();
  private readonly slot = createSlot();
  private worker: Worker | undefined;
  private served: Disposable | undefined;
  private early: SendMessage[] | undefined = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly statsWaiters = new Map<number, (s: BalloonStats | undefined) => void>();
  private status: GuestStatus | undefined;
  private balloonProxy: ThreadedBalloon | undefined;
  private deadWith: TmemuError | undefined;
  private disposed = false;
  private lastBeat = Date.now();
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private writes: { pfns: number[]; pages: Uint8Array[] } | undefined;

  private constructor(opts: ThreadedBootOptions) {
    super(opts.name ?? "guest", opts.onConsole);
    this.name = opts.name ?? "guest";
    this.memoryMib = opts.memoryMib;
    this.memory = new SlotMemory(opts.memoryMib * 1024 * 1024, (pfn, src) => this.writeLater(pfn, src));
  }

  static async boot(opts: ThreadedBootOptions): Promise<ThreadedGuest> {
    checkGuestMemoryMib(opts.memoryMib);
    const g = new ThreadedGuest(opts);
    const { beforeStart, hangTimeoutMs, ...rest } = opts;
    beforeStart?.(g);
    // A machine state may come as a promise (a migration still arriving): it crosses as bytes.
    const boot = rest.restore ? { ...rest, restore: { ...rest.restore, state: await rest.restore.state } } : rest;
    const data: WorkerData = {
      boot: workerBootOptions(boot),
      traps: [...g.handlers.keys()],
      early: g.early ?? [],
      slot: g.slot,
      doorbell: trapServer().doorbell,
      trapSpinUs: envMicroseconds("TMEMU_TRAP_CLIENT_SPIN_US", TRAP_CLIENT_SPIN_US),
      statusEveryMs: STATUS_EVERY_MS,
    };
    g.early = undefined;
    g.served = trapServer().attach(g.slot, g.memory, g.handlers);
    const worker = new Worker(WORKER_ENTRY, { workerData: data, name: `tmemu guest ${g.name}` });
    g.worker = worker;
    // The worker's Guest.boot has its own timeout; this one catches a worker that never answers.
    const bootLimitMs = (opts.bootTimeoutMs ?? 120_000) + 60_000;
    let bootTimer: ReturnType<typeof setTimeout> | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        bootTimer = setTimeout(() => reject(new TmemuError("BOOT_FAILED", `${g.name}: its worker thread did not finish booting in ${Math.round(bootLimitMs / 1000)} s`)), bootLimitMs);
        worker.on("message", (msg: FromWorker) => {
          if (msg.type === "booted") {
            g.kernelRelease = msg.kernelRelease;
            g.applyStatus(msg.status);
            if (msg.hasBalloon) g.balloonProxy = new ThreadedBalloon(g);
            resolve();
          } else if (msg.type === "boot-failed") {
            reject(deserializeError(msg.error));
          } else {
            g.receive(msg);
          }
        });
        worker.on("error", (err) => {
          const e = new TmemuError("GUEST_GONE", `${g.name}: its worker thread crashed: ${err.message}`, "a bug in tmemu or v86: the other guests are not affected; see the console tail in the run's output");
          reject(e);
          g.fail(e);
        });
        worker.on("exit", (code) => {
          const e = new TmemuError("GUEST_GONE", `${g.name}: its worker thread exited (code ${code})`);
          reject(e);
          if (!g.disposed) g.fail(e);
        });
      });
    } catch (err) {
      // The worker will not answer a dispose request: stop it at once.
      g.fail(err instanceof TmemuError ? err : new TmemuError("BOOT_FAILED", `${g.name}: ${String(err)}`));
      await g.dispose();
      throw err;
    } finally {
      clearTimeout(bootTimer);
    }
    g.lastBeat = Date.now();
    const hangMs = hangTimeoutMs ?? DEFAULT_HANG_TIMEOUT_MS;
    let lastCheck = Date.now();
    g.watchdog = setInterval(() => {
      const now = Date.now();
      // A main thread that was itself busy saw no messages: that is not the worker's silence.
      if (now - lastCheck > 2 * Math.min(1000, hangMs)) g.lastBeat = now;
      lastCheck = now;
      if (now - g.lastBeat > hangMs) {
        g.fail(new TmemuError("GUEST_GONE", `${g.name}: its worker thread stopped answering (no heartbeat for ${Math.round((now - g.lastBeat) / 1000)} s)`, "a bug in tmemu or v86 (a JavaScript loop that never yields): the other guests are not affected"));
      }
    }, Math.min(1000, hangMs));
    g.watchdog.unref();
    return g;
  }

  // ---- forwarded to the worker (worker-protocol.ts FORWARDED_CALLS / FORWARDED_SENDS) ----

  run(...a: CallArgs<"run">): Promise<RunResult> { return this.call("run", a); }
  runChecked(...a: CallArgs<"runChecked">): Promise<string> { return this.call("runChecked", a); }
  pause(...a: CallArgs<"pause">): Promise<void> { return this.call("pause", a); }
  resume(...a: CallArgs<"resume">): Promise<void> { return this.call("resume", a); }
  saveState(...a: CallArgs<"saveState">): Promise<Uint8Array> { return this.call("saveState", a); }
  saveDisks(): never { throw new TmemuError("USAGE", `${this.name} runs in a worker thread: saveDisks needs an in-thread guest`, "use --threads off"); }
  saveDisksAsync(...a: CallArgs<"saveDisks">): Promise<CallResult<"saveDisks">> { return this.call("saveDisks", a); }
  resumeRun(...a: CallArgs<"resumeRun">): Promise<RunResult> { return this.call("resumeRun", a); }
  sendInput(...a: CallArgs<"sendInput">): void { this.send("sendInput", a); }
  startShell(...a: CallArgs<"startShell">): void { this.send("startShell", a); }
  registerPciDevice(spec: PciDeviceSpec): void { this.send("registerPciDevice", [spec]); }

  get runningCommandId(): string | undefined {
    return this.status?.runningCommandId;
  }

  registerPortTrap(port: number, handler: (regs: TrapRegisters) => void): Disposable {
    this.handlers.set(port, handler);
    if (this.worker) this.post({ type: "trap", port, on: true });
    return {
      dispose: () => {
        if (this.handlers.get(port) !== handler) return;
        this.handlers.delete(port);
        if (this.worker) this.post({ type: "trap", port, on: false });
      },
    };
  }

  get balloon(): ThreadedBalloon | undefined {
    return this.balloonProxy;
  }

  get isAlive(): boolean {
    return !this.disposed && !this.deadWith && !this.console.dead && (this.status?.alive ?? false);
  }

  /** Why the worker is gone (crash, exit, hang), if it is. */
  get failure(): TmemuError | undefined {
    return this.deadWith;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.console.fail(new TmemuError("GUEST_GONE", `${this.name} was shut down`));
    this.console.clearListeners();
    if (this.watchdog) clearInterval(this.watchdog);
    const worker = this.worker;
    if (worker && !this.deadWith) {
      const id = this.nextId++;
      const done = new Promise<unknown>((resolve, reject) => this.pending.set(id, { resolve, reject }));
      this.post({ type: "dispose", id });
      const timeout = new Promise((resolve) => setTimeout(resolve, DISPOSE_TIMEOUT_MS).unref());
      await Promise.race([done.catch(() => undefined), timeout]);
    }
    this.served?.dispose();
    this.rejectPending(new TmemuError("GUEST_GONE", `${this.name} was shut down`));
    await worker?.terminate();
  }

  /** Test-only: make the worker throw or hang, as a bug would. */
  injectFault(kind: "throw" | "hang"): void {
    this.post({ type: "fault", kind });
  }

  /** @internal ThreadedBalloon */
  post(msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (!this.worker || this.deadWith) return;
    this.worker.postMessage(msg, transfer);
  }

  /** @internal ThreadedBalloon */
  askStats(timeoutMs: number | undefined): Promise<BalloonStats | undefined> {
    if (!this.worker || this.deadWith || this.disposed) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.statsWaiters.set(id, resolve);
      this.post({ type: "balloon-stats", id, timeoutMs });
    });
  }

  /** @internal ThreadedBalloon */
  get balloonStatus(): { target: number; actual: number } {
    return { target: this.status?.balloonTargetPages ?? 0, actual: this.status?.balloonActualPages ?? 0 };
  }

  /** @internal */
  balloonListener: BalloonListener | undefined;

  private call<K extends ForwardedCall>(method: K, args: CallArgs<K>): Promise<CallResult<K>> {
    const dead = this.deadWith ?? (this.disposed ? new TmemuError("GUEST_GONE", `${this.name} was shut down`) : undefined);
    if (dead) return Promise.reject(dead);
    const id = this.nextId++;
    return new Promise<CallResult<K>>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.post({ type: "call", id, method, args: args as unknown[] });
    });
  }

  private send<K extends ForwardedSend>(method: K, args: CallArgs<K>): void {
    const msg: SendMessage = { type: "send", method, args: args as unknown[] };
    if (this.early) this.early.push(msg);
    else this.post(msg);
  }

  private receive(msg: FromWorker): void {
    this.lastBeat = Date.now();
    switch (msg.type) {
      case "console":
        for (const byte of this.encoder.encode(msg.text)) this.console.write(byte);
        return;
      case "status":
        this.applyStatus(msg.status);
        return;
      case "reply": {
        this.applyStatus(msg.status);
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (!p) return;
        if (msg.ok) p.resolve(msg.value);
        else {
          const err = deserializeError(msg.error);
          if (err instanceof TmemuError && err.code === "TIMEOUT") this.console.fail(err);
          p.reject(err);
        }
        return;
      }
      case "balloon-stats": {
        const w = this.statsWaiters.get(msg.id);
        this.statsWaiters.delete(msg.id);
        w?.(msg.stats);
        return;
      }
      case "inflate":
        this.balloonListener?.onInflate(msg.pfns);
        return;
      case "deflate":
        this.balloonListener?.onDeflate(msg.pfns);
        return;
      case "booted":
      case "boot-failed":
        return;
    }
  }

  /** Guest.trapWait() as of the worker's last status (at most STATUS_EVERY_MS old, like `disks`). */
  trapWait(): TrapWaitCounts {
    // Each status is a fresh copy from the worker and is replaced, never changed: no copy needed.
    return this.status?.trapWait ?? emptyTrapWait();
  }

  private applyStatus(s: GuestStatus): void {
    this.status = s;
    Object.assign(this.disks.data, s.disks.data);
    Object.assign(this.disks.swap, s.disks.swap);
  }

  private fail(err: TmemuError): void {
    if (this.deadWith) return;
    this.deadWith = err;
    this.console.fail(err);
    this.rejectPending(err);
    this.served?.dispose();
    if (this.watchdog) clearInterval(this.watchdog);
    void this.worker?.terminate();
  }

  private rejectPending(err: TmemuError): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    for (const w of this.statsWaiters.values()) w(undefined);
    this.statsWaiters.clear();
  }

  /** Writes outside a trap (the balloon ledger zeroing frames): batched, applied in order. */
  private writeLater(pfn: number, src: Uint8Array): void {
    if (!this.writes) {
      this.writes = { pfns: [], pages: [] };
      queueMicrotask(() => {
        const w = this.writes;
        this.writes = undefined;
        if (!w) return;
        const pages = new Uint8Array(w.pfns.length * 4096);
        w.pages.forEach((p, i) => pages.set(p, i * 4096));
        this.post({ type: "write", pfns: w.pfns, pages }, [pages.buffer]);
      });
    }
    this.writes.pfns.push(pfn);
    this.writes.pages.push(src);
  }
}

/** The virtio balloon of a threaded guest: targets and listeners are messages; levels come with the status. */
export class ThreadedBalloon implements GuestBalloonApi {
  private target: number;

  constructor(private readonly guest: ThreadedGuest) {
    this.target = guest.balloonStatus.target;
  }

  listen(listener: BalloonListener | undefined): void {
    this.guest.balloonListener = listener;
    this.guest.post({ type: "balloon-listen", on: listener !== undefined });
  }

  get targetPages(): number {
    return this.target;
  }

  get actualPages(): number {
    return this.guest.balloonStatus.actual;
  }

  setTargetPages(pages: number): void {
    this.target = Math.max(0, Math.floor(pages));
    this.guest.post({ type: "balloon-target", pages });
  }

  stats(timeoutMs?: number): Promise<BalloonStats | undefined> {
    return this.guest.askStats(timeoutMs);
  }
}

/** Boots a guest in its own worker thread (threads) or in this thread. */
export async function bootGuest(opts: ThreadedBootOptions, threads: boolean): Promise<GuestApi> {
  if (threads) return ThreadedGuest.boot(opts);
  const { Guest } = await import("./guest.ts");
  const { hangTimeoutMs: _h, beforeStart, ...rest } = opts;
  return Guest.boot({ ...rest, ...(beforeStart ? { beforeStart: (g: Guest) => beforeStart(g) } : {}) });
}
