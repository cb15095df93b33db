/**
 * The messages between a threaded guest's proxy (emulator/threaded-guest.ts, main thread) and its
 * worker (emulator/guest-worker.ts, which owns the v86 Guest). Everything here is structured-
 * cloneable. Calls that go to the worker are listed once, in FORWARDED_CALLS: a Guest method whose
 * arguments and result can be cloned is forwarded by adding its name there (one line) and a one-line
 * method on ThreadedGuest; the types follow Guest's own signature.
 */
import { TmemuError, type TmemuErrorCode } from "../hypervisor/user-errors.ts";
import type { BalloonStats } from "./balloon.ts";
import type { DiskCounters } from "./disks.ts";
import type { TrapWaitCounts } from "./trap-timer.ts";
import type { Guest, GuestBootOptions } from "./guest.ts";

/** Guest methods run in the worker: arguments and result are cloned. */
export const FORWARDED_CALLS = {
  run: true,
  runChecked: true,
  pause: true,
  resume: true,
  saveState: true,
  saveDisks: true,
  resumeRun: true,
} as const satisfies Partial<Record<keyof Guest, true>>;
export type ForwardedCall = keyof typeof FORWARDED_CALLS;

/** Guest methods with no answer: posted, applied in order. */
export const FORWARDED_SENDS = {
  sendInput: true,
  startShell: true,
  registerPciDevice: true,
} as const satisfies Partial<Record<keyof Guest, true>>;
export type ForwardedSend = keyof typeof FORWARDED_SENDS;

type Method = (...args: never[]) => unknown;
export type CallArgs<K extends keyof Guest> = Guest[K] extends Method ? Parameters<Guest[K]> : never;
export type CallResult<K extends keyof Guest> = Guest[K] extends Method ? Awaited<ReturnType<Guest[K]>> : never;

/** Boot options without the callbacks (those stay in the main thread). */
export type WorkerBootOptions = Omit<GuestBootOptions, "onConsole" | "beforeStart">;

export interface WorkerData {
  boot: WorkerBootOptions;
  /** Ports trapped before the CPU runs (their handlers are in the main thread). */
  traps: number[];
  /** Sends made before the CPU runs (registerPciDevice from a beforeStart). */
  early: SendMessage[];
  slot: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
  /** Microseconds the guest's thread spins on a trap's answer before it sleeps (TrapClient). */
  trapSpinUs: number;
  /** Milliseconds between status messages (the heartbeat). */
  statusEveryMs: number;
}

export interface SerializedError {
  message: string;
  code?: string;
  hint?: string;
  stack?: string;
}

export interface GuestStatus {
  disks: { data: DiskCounters; swap: DiskCounters };
  runningCommandId: string | undefined;
  alive: boolean;
  balloonTargetPages: number;
  balloonActualPages: number;
  /** Guest.trapWait(), measured in the worker (the crossing included). */
  trapWait: TrapWaitCounts;
}

export interface SendMessage {
  type: "send";
  method: ForwardedSend;
  args: unknown[];
}

export type ToWorker =
  | { type: "call"; id: number; method: ForwardedCall; args: unknown[] }
  | SendMessage
  | { type: "trap"; port: number; on: boolean }
  | { type: "write"; pfns: number[]; pages: Uint8Array }
  | { type: "balloon-target"; pages: number }
  | { type: "balloon-listen"; on: boolean }
  | { type: "balloon-stats"; id: number; timeoutMs: number | undefined }
  | { type: "dispose"; id: number }
  /** Test-only: make the worker fail the way a bug would (an uncaught throw, a JS loop that never yields). */
  | { type: "fault"; kind: "throw" | "hang" };

export type FromWorker =
  | { type: "booted"; kernelRelease: string; hasBalloon: boolean; status: GuestStatus }
  | { type: "boot-failed"; error: SerializedError }
  | { type: "console"; text: string }
  | { type: "status"; status: GuestStatus }
  | { type: "reply"; id: number; ok: true; value: unknown; status: GuestStatus }
  | { type: "reply"; id: number; ok: false; error: SerializedError; status: GuestStatus }
  | { type: "balloon-stats"; id: number; stats: BalloonStats | undefined }
  | { type: "inflate"; pfns: number[] }
  | { type: "deflate"; pfns: number[] };

export function serializeError(err: unknown): SerializedError {
  if (err instanceof TmemuError) return { message: err.message, code: err.code, ...(err.hint !== undefined ? { hint: err.hint } : {}) };
  if (err instanceof Error) return { message: err.message, ...(err.stack !== undefined ? { stack: err.stack } : {}) };
  return { message: String(err) };
}

/** The error again, in this thread: a TmemuError keeps its code and hint. */
export function deserializeError(e: SerializedError): Error {
  if (e.code !== undefined) return new TmemuError(e.code as TmemuErrorCode, e.message, e.hint);
  const err = new Error(e.message);
  if (e.stack !== undefined) err.stack = e.stack;
  return err;
}

/** Splits boot options into what crosses to the worker and the callbacks that stay. */
export function workerBootOptions(opts: GuestBootOptions): WorkerBootOptions {
  const { onConsole: _onConsole, beforeStart: _beforeStart, ...rest } = opts;
  for (const [k, v] of Object.entries(rest)) {
    if (typeof v === "function") throw new TypeError(`boot option ${k} is a function: a threaded guest cannot take it (add it to the split in worker-protocol.ts)`);
    if (v instanceof Promise || (k === "restore" && (v as { state?: unknown } | undefined)?.state instanceof Promise)) {
      throw new TypeError(`boot option ${k} holds a promise: resolve it before it crosses to the worker (ThreadedGuest.boot does for restore.state)`);
    }
  }
  return rest;
}
