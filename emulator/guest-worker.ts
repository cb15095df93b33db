/**
 * The worker side of a threaded guest: owns one v86 Guest (emulator/guest.ts) in a worker_threads
 * worker, so each guest's vCPU has a thread of its own. Started by ThreadedGuest.boot
 * (threaded-guest.ts) through guest-worker-boot.mjs (which loads TypeScript the way bin/tmemu.js
 * does). Console text, disk counters, balloon frames and the heartbeat are posted to the main
 * thread; the guest never waits for them. Port traps are the one synchronous crossing
 * (trap-channel.ts).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { BalloonStats } from "./balloon.ts";
import { Guest } from "./guest.ts";
import { TrapClient } from "./trap-channel.ts";
import { emptyTrapWait } from "./trap-timer.ts";
import { FORWARDED_CALLS, FORWARDED_SENDS, serializeError, type FromWorker, type GuestStatus, type SendMessage, type ToWorker, type WorkerData } from "./worker-protocol.ts";

const port = parentPort;
if (!port) throw new Error("emulator/guest-worker.ts runs inside a worker thread (ThreadedGuest.boot starts it)");
const data = workerData as WorkerData;

let guest: Guest | undefined;
let pendingConsole = "";
let flushQueued = false;

function post(msg: FromWorker, transfer: ArrayBuffer[] = []): void {
  if (msg.type !== "console") flushConsole();
  port!.postMessage(msg, transfer);
}

function flushConsole(): void {
  flushQueued = false;
  if (pendingConsole === "") return;
  const text = pendingConsole;
  pendingConsole = "";
  port!.postMessage({ type: "console", text } satisfies FromWorker);
}

function onConsole(text: string): void {
  pendingConsole += text;
  if (!flushQueued) {
    flushQueued = true;
    setImmediate(flushConsole);
  }
}

function status(): GuestStatus {
  const g = guest;
  return {
    disks: g ? { data: { ...g.disks.data }, swap: { ...g.disks.swap } } : { data: zero(), swap: zero() },
    runningCommandId: g?.runningCommandId,
    alive: g?.isAlive ?? false,
    balloonTargetPages: g?.balloon?.targetPages ?? 0,
    balloonActualPages: g?.balloon?.actualPages ?? 0,
    trapWait: g?.trapWait() ?? emptyTrapWait(),
  };
}

function zero() {
  return { sectorsRead: 0, sectorsWritten: 0, readRequests: 0, writeRequests: 0 };
}

const trapped = new Map<number, { dispose(): void }>();

function trap(g: Guest, client: TrapClient, p: number, on: boolean): void {
  trapped.get(p)?.dispose();
  trapped.delete(p);
  if (on) trapped.set(p, g.registerPortTrap(p, (regs) => client.trap(p, regs)));
}

function applySend(g: Guest, msg: SendMessage): void {
  if (!(msg.method in FORWARDED_SENDS)) throw new Error(`not a forwarded send: ${msg.method}`);
  (g[msg.method] as (...a: unknown[]) => void).apply(g, msg.args);
}

async function handle(msg: ToWorker): Promise<void> {
  const g = guest;
  if (!g) return;
  switch (msg.type) {
    case "call":
      try {
        if (!(msg.method in FORWARDED_CALLS)) throw new Error(`not a forwarded call: ${msg.method}`);
        const value: unknown = await (g[msg.method] as (...a: unknown[]) => unknown).apply(g, msg.args);
        post({ type: "reply", id: msg.id, ok: true, value, status: status() });
      } catch (err) {
        post({ type: "reply", id: msg.id, ok: false, error: serializeError(err), status: status() });
      }
      return;
    case "send":
      applySend(g, msg);
      return;
    case "trap":
      trap(g, client(g), msg.port, msg.on);
      return;
    case "write": {
      const mem = g.memory;
      msg.pfns.forEach((pfn, i) => mem.writePage(pfn, msg.pages.subarray(i * 4096, (i + 1) * 4096)));
      return;
    }
    case "balloon-target":
      g.balloon?.setTargetPages(msg.pages);
      return;
    case "balloon-listen":
      g.balloon?.listen(
        msg.on
          ? {
              onInflate: (pfns) => post({ type: "inflate", pfns }),
              onDeflate: (pfns) => post({ type: "deflate", pfns }),
            }
          : undefined,
      );
      return;
    case "balloon-stats": {
      const stats: BalloonStats | undefined = await g.balloon?.stats(msg.timeoutMs);
      post({ type: "balloon-stats", id: msg.id, stats });
      return;
    }
    case "dispose":
      clearInterval(heartbeat);
      await g.dispose();
      post({ type: "reply", id: msg.id, ok: true, value: undefined, status: status() });
      port!.close();
      return;
    case "fault":
      if (msg.kind === "throw") setImmediate(() => {
        throw new Error("injected fault: the guest worker threw");
      });
      else for (;;) {
        // a worker whose JavaScript never yields: only the main thread's watchdog can see it
      }
      return;
  }
}

let trapClient: TrapClient | undefined;
function client(g: Guest): TrapClient {
  trapClient ??= new TrapClient(data.slot, data.doorbell, g.memory, data.trapSpinUs);
  return trapClient;
}

let heartbeat: ReturnType<typeof setInterval> | undefined;

async function main(): Promise<void> {
  // Messages that arrive while booting wait for the guest (they are applied in order after).
  const early: ToWorker[] = [];
  port!.on("message", (msg: ToWorker) => {
    if (!guest) early.push(msg);
    else void handle(msg);
  });
  try {
    const g = await Guest.boot({
      ...data.boot,
      onConsole,
      beforeStart: (booting) => {
        for (const p of data.traps) trap(booting, client(booting), p, true);
        for (const s of data.early) applySend(booting, s);
      },
    });
    guest = g;
    heartbeat = setInterval(() => post({ type: "status", status: status() }), data.statusEveryMs);
    post({ type: "booted", kernelRelease: g.kernelRelease, hasBalloon: g.balloon !== undefined, status: status() });
    for (const msg of early.splice(0)) void handle(msg);
  } catch (err) {
    post({ type: "boot-failed", error: serializeError(err) });
    port!.close();
  }
}

void main();
