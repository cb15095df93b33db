/**
 * Live migration of one guest between two tmemu processes over TCP (127.0.0.1 by default), with its
 * tmem client, as Xen migrated tmem (DESIGN.md): while the guest runs, every persistent page is
 * sent as (pool, object, index, page), and the client's puts and flushes are logged meanwhile
 * (hypervisor/tmem/change-log.ts); then the guest is paused, and its machine state, its disks and
 * the pages the log names (sent again, or named gone) follow; the other side starts the guest with
 * its client, answers, and the guest goes on there. A command that was running goes on too.
 *
 *   receiver:  tmemu migrate --listen PORT            (prints the command's output, exits with it)
 *   sender:    tmemu boot --cmd ... --migrate-to 127.0.0.1:PORT --migrate-at S
 *
 * Messages: u8 type, u32 length (little-endian), payload.
 *   HELLO   JSON MigrationHello (the receiver checks the images key before anything else)
 *   PAGES   page records (client-state.ts PAGE_RECORD_BYTES each): the pre-copy
 *   FINAL   u32 JSON length, JSON MigrationFinal, then the parts it names, in its order
 *   ACK     (receiver -> sender) JSON { resumedMs }: the guest runs on the receiver
 *   ERROR   (receiver -> sender) JSON { message, hint }
 * The downtime is from the sender's pause to the receiver's ACK (the receiver's vCPU running).
 */
import { createServer, connect, type Socket } from "node:net";
import type { Guest } from "../emulator/guest.ts";
import { packSparse, unpackSparse } from "../emulator/snapshot-file.ts";
import { ensureImages, loadGuestImages } from "../guest-images/index.ts";
import { StderrProgress } from "../guest-images/progress.ts";
import { imagesKeyOf } from "../guest-images/snapshots.ts";
import { ClientChangeLog, parseHandleKey, type HandleKey } from "../hypervisor/tmem/change-log.ts";
import { clientStateHeader, importClientHeader, PAGE_RECORD_BYTES, readPageRecord, restorePage, writePageRecord, type ClientStateHeader, type PageRecord } from "../hypervisor/tmem/client-state.ts";
import type { TmemDevice } from "../hypervisor/tmem/device.ts";
import { TmemStore } from "../hypervisor/tmem/store.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";
import { versionChoice, type VersionFlags } from "./options.ts";
import { startSavedGuest } from "./snapshot-guest.ts";

const MSG = { HELLO: 1, PAGES: 2, FINAL: 3, ACK: 4, ERROR: 5 } as const;
/** Page records per PAGES message during the pre-copy (the guest runs between messages). */
const PRECOPY_BATCH = 256;

export interface MigrationHello {
  imagesKey: string;
  memoryMib: number;
  kernelArgs: string[];
  balloon: boolean;
  tmem: boolean;
  kernelRelease: string;
  running?: { id: string; command: string };
}

/** What the sender adds to the hello: sizes and the client as the pre-copy starts, so the receiver prepares meanwhile. */
interface HelloWire extends MigrationHello {
  dataBytes: number;
  swapBytes: number;
  client: ClientStateHeader | null;
}

export interface MigrationFinal {
  client: ClientStateHeader | null;
  /** Byte lengths of the parts that follow the JSON, in this order (disks packed sparse: snapshot-file.ts). */
  machine: number;
  dataDisk: number;
  swapDisk: number;
  /** Page records that follow the disks: pages changed since they were sent (or all, if pools changed). */
  pages: number;
  /** Handles put or flushed during the pre-copy that hold nothing now. */
  gone: HandleKey[];
  /** Objects flushed whole during the pre-copy ("pool:lo:hi"). */
  flushedObjects: string[];
  /** Pools were created, destroyed or reset during the pre-copy: drop every pre-copied page. */
  poolsChanged: boolean;
}

export interface MigrationReport {
  bytesSent: number;
  precopyPages: number;
  finalPages: number;
  precopyMs: number;
  downtimeMs: number;
}

function frame(type: number, payload: Uint8Array): Uint8Array[] {
  const head = new Uint8Array(5);
  head[0] = type;
  new DataView(head.buffer).setUint32(1, payload.byteLength, true);
  return [head, payload];
}

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

/** Reads framed messages from a socket, one at a time. */
class MessageReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private waiting: (() => void) | undefined;
  private ended: Error | undefined;

  constructor(socket: Socket) {
    socket.on("data", (b: Buffer) => {
      this.chunks.push(b);
      this.have += b.byteLength;
      this.waiting?.();
    });
    const end = (err?: Error) => {
      this.ended ??= err ?? new TmemuError("GUEST_GONE", "migration: the other side closed the connection");
      this.waiting?.();
    };
    socket.on("end", () => end());
    socket.on("error", (e) => end(new TmemuError("GUEST_GONE", `migration: connection failed: ${e.message}`)));
  }

  private async need(n: number): Promise<void> {
    while (this.have < n) {
      if (this.ended) throw this.ended;
      await new Promise<void>((r) => (this.waiting = r));
      this.waiting = undefined;
    }
  }

  /** The first n bytes (one copy, of those bytes only: a backlog of many messages is not copied again). */
  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.byteLength >= n) {
      const out = first.subarray(0, n);
      if (first.byteLength === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.have -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.byteLength, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.byteLength) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.have -= n;
    return out;
  }

  async next(): Promise<{ type: number; payload: Buffer }> {
    await this.need(5);
    const head = this.take(5);
    const len = head.readUInt32LE(1);
    await this.need(len);
    // Socket chunks are fresh buffers, never reused: views into them stay valid.
    return { type: head[0]!, payload: this.take(len) };
  }
}

async function send(socket: Socket, parts: Uint8Array[]): Promise<number> {
  let n = 0;
  for (const p of parts) {
    n += p.byteLength;
    if (!socket.write(p)) await new Promise<void>((r) => socket.once("drain", r));
  }
  return n;
}

export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:([^:]+):)?(\d+)$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || !(port >= 1 && port <= 65535)) throw new TmemuError("USAGE", `${flag} ${text}: not HOST:PORT or PORT`, `for example ${flag} 127.0.0.1:7700`);
  return { host: m[1] ?? "127.0.0.1", port };
}

/**
 * The sending side: pre-copies the client's persistent pages while the guest runs, pauses it and
 * sends the rest. The guest stays paused here (the caller disposes it). Throws if the receiver refuses.
 */
export async function migrateOut(
  target: { host: string; port: number },
  g: { guest: Guest; device: TmemDevice | undefined; store: TmemStore | undefined },
  hello: MigrationHello,
): Promise<MigrationReport> {
  const socket = connect(target.port, target.host);
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", (e) => reject(new TmemuError("USAGE", `migration: cannot connect to ${target.host}:${target.port}: ${e.message}`, "start the receiver first: tmemu migrate --listen PORT")));
  });
  const reader = new MessageReader(socket);
  try {
    const { store, device } = g;
    const t0 = performance.now();
    let precopyPages = 0;
    // From here on, what the guest changes is in the log; the pools and handles are as of now.
    const log = device && store ? new ClientChangeLog(device.handler) : undefined;
    try {
      const sizes = g.guest.saveDisks();
      const wire: HelloWire = {
        ...hello,
        dataBytes: sizes.data?.byteLength ?? 0,
        swapBytes: sizes.swap?.byteLength ?? 0,
        client: device && store ? clientStateHeader(store, device.clientId, device.handler.probed, 0) : null,
      };
      let bytes = await send(socket, frame(MSG.HELLO, json(wire)));
      if (device && store) {
        const keys: [number, number, number, number][] = [];
        store.forEachPersistentPage(device.clientId, (pool, lo, hi, index) => keys.push([pool, lo, hi, index]));
        for (let i = 0; i < keys.length; i += PRECOPY_BATCH) {
          const batch = new Uint8Array(Math.min(PRECOPY_BATCH, keys.length - i) * PAGE_RECORD_BYTES);
          let n = 0;
          for (const [pool, lo, hi, index] of keys.slice(i, i + PRECOPY_BATCH)) {
            const page = store.peekPersistentPage(device.clientId, pool, lo, hi, index);
            if (page === undefined) continue; // flushed since: in the log
            writePageRecord(batch, n * PAGE_RECORD_BYTES, pool, lo, hi, index, page);
            n++;
          }
          bytes += await send(socket, frame(MSG.PAGES, batch.subarray(0, n * PAGE_RECORD_BYTES)));
          precopyPages += n;
          await new Promise<void>((r) => setImmediate(r)); // let the guest run
        }
      }
      const precopyMs = performance.now() - t0;

      // Stop and copy.
      const tPause = performance.now();
      const machine = await g.guest.saveState();
      log?.dispose();
      const saved = g.guest.saveDisks();
      const disks = { ...(saved.data ? { data: packSparse(saved.data) } : {}), ...(saved.swap ? { swap: packSparse(saved.swap) } : {}) };
      const records: Uint8Array[] = [];
      const gone: HandleKey[] = [];
      const add = (pool: number, lo: number, hi: number, index: number, page: Uint8Array) => {
        const r = new Uint8Array(PAGE_RECORD_BYTES);
        writePageRecord(r, 0, pool, lo, hi, index, page);
        records.push(r);
      };
      if (device && store && log) {
        if (log.poolsChanged) {
          store.forEachPersistentPage(device.clientId, add);
        } else {
          for (const key of log.handles) {
            const { pool, lo, hi, index } = parseHandleKey(key);
            const page = store.peekPersistentPage(device.clientId, pool, lo, hi, index);
            if (page === undefined) gone.push(key);
            else add(pool, lo, hi, index, page);
          }
        }
      }
      const final: MigrationFinal = {
        client: device && store ? clientStateHeader(store, device.clientId, device.handler.probed, records.length) : null,
        machine: machine.byteLength,
        dataDisk: disks.data?.byteLength ?? 0,
        swapDisk: disks.swap?.byteLength ?? 0,
        pages: records.length,
        gone,
        flushedObjects: log ? [...log.objects] : [],
        poolsChanged: log?.poolsChanged ?? false,
      };
      const head = json(final);
      const len = new Uint8Array(4);
      new DataView(len.buffer).setUint32(0, head.byteLength, true);
      const parts = [len, head, machine, ...(disks.data ? [disks.data] : []), ...(disks.swap ? [disks.swap] : []), ...records];
      const total = parts.reduce((n, p) => n + p.byteLength, 0);
      const lenHead = new Uint8Array(5);
      lenHead[0] = MSG.FINAL;
      new DataView(lenHead.buffer).setUint32(1, total, true);
      bytes += await send(socket, [lenHead, ...parts]);
      const answer = await reader.next();
      const downtimeMs = performance.now() - tPause;
      if (answer.type === MSG.ERROR) {
        const e = JSON.parse(answer.payload.toString("utf8")) as { message: string; hint?: string };
        throw new TmemuError("BAD_SNAPSHOT", `migration refused by the receiver: ${e.message}`, e.hint ?? "");
      }
      if (answer.type !== MSG.ACK) throw new TmemuError("GUEST_GONE", `migration: unexpected answer ${answer.type}`);
      return { bytesSent: bytes, precopyPages, finalPages: records.length, precopyMs, downtimeMs };
    } finally {
      log?.dispose();
    }
  } finally {
    socket.end();
  }
}

export interface MigrateFlags extends VersionFlags {
  listen: string;
  storeMib?: number;
  timeoutS: number;
  stats?: boolean;
}

/** `tmemu migrate --listen PORT`: receives one guest, runs it here, exits with its command's exit code. */
export async function migrateCommand(flags: MigrateFlags): Promise<number> {
  const { host, port } = parseHostPort(flags.listen, "--listen");
  const set = await ensureImages({ progress: new StderrProgress(), ...versionChoice(flags) });
  const images = loadGuestImages(set);
  const imagesKey = imagesKeyOf(set);
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(new TmemuError("USAGE", `migration: cannot listen on ${host}:${port}: ${e.message}`, "choose another port")));
    server.listen(port, host, resolve);
  });
  process.stderr.write(`tmemu: waiting for a guest on ${host}:${port}\n`);
  const socket = await new Promise<Socket>((resolve) => server.once("connection", resolve));
  server.close();
  socket.setNoDelay(true);
  const reader = new MessageReader(socket);
  const refuse = async (e: TmemuError) => {
    await send(socket, frame(MSG.ERROR, json({ message: e.message, hint: e.hint })));
    socket.end();
    throw e;
  };
  const hello = await reader.next();
  if (hello.type !== MSG.HELLO) return refuse(new TmemuError("BAD_SNAPSHOT", "migration: the sender did not start with HELLO"));
  const h = JSON.parse(hello.payload.toString("utf8")) as HelloWire;
  if (h.imagesKey !== imagesKey) {
    return refuse(new TmemuError("BAD_SNAPSHOT", `migration: the guest runs other guest images (key ${h.imagesKey}; here ${imagesKey})`, "migrate between tmemu processes of the same checkout and images"));
  }
  // Prepare while the pages come: the emulator, the device and its client (filled page by page);
  // the machine state and the disks' contents arrive with FINAL.
  const store = h.tmem ? new TmemStore({ budgetMib: flags.storeMib ?? h.memoryMib }) : undefined;
  const dataDisk = h.dataBytes ? new Uint8Array(h.dataBytes) : undefined;
  const swapDisk = h.swapBytes ? new Uint8Array(h.swapBytes) : undefined;
  let machineArrived: (m: Uint8Array) => void = () => {};
  let machineFailed: (e: Error) => void = () => {};
  const machine = new Promise<Uint8Array>((resolve, reject) => {
    machineArrived = resolve;
    machineFailed = reject;
  });
  let client: { store: TmemStore; id: number } | undefined;
  const early: PageRecord[] = [];
  const helloClient = h.client;
  const startedP = startSavedGuest(
    {
      header: h,
      machine,
      ...(dataDisk ? { dataDisk } : {}),
      ...(swapDisk ? { swapDisk } : {}),
      ...(helloClient
        ? {
            importClient: (s: TmemStore, id: number) => {
              importClientHeader(s, id, helloClient);
              client = { store: s, id };
              for (const r of early.splice(0)) restorePage(s, id, r);
              return helloClient.probed;
            },
          }
        : {}),
    },
    { images, imagesKey, name: "guest", store, bootTimeoutMs: flags.timeoutS * 1000 },
  );
  startedP.catch(() => undefined); // awaited after FINAL
  let received = 5 + hello.payload.byteLength;
  for (;;) {
    const m = await reader.next();
    received += 5 + m.payload.byteLength;
    if (m.type === MSG.PAGES) {
      for (let at = 0; at < m.payload.byteLength; at += PAGE_RECORD_BYTES) {
        const r = readPageRecord(m.payload, at);
        if (client) restorePage(client.store, client.id, r);
        else early.push(r);
      }
      continue;
    }
    if (m.type !== MSG.FINAL) {
      machineFailed(new TmemuError("BAD_SNAPSHOT", `migration: unexpected message ${m.type}`));
      return refuse(new TmemuError("BAD_SNAPSHOT", `migration: unexpected message ${m.type}`));
    }
    const tFinal = performance.now();
    try {
      const p = m.payload;
      const jlen = p.readUInt32LE(0);
      const final = JSON.parse(p.subarray(4, 4 + jlen).toString("utf8")) as MigrationFinal;
      let at = 4 + jlen;
      const part = (n: number) => {
        const out = new Uint8Array(p.buffer, p.byteOffset + at, n);
        at += n;
        return out;
      };
      const state = part(final.machine);
      if (dataDisk) dataDisk.set(unpackSparse(part(final.dataDisk), "migration"));
      if (swapDisk) swapDisk.set(unpackSparse(part(final.swapDisk), "migration"));
      if (client && final.client) {
        // The log: what the guest changed while its pages were copied.
        const { store: s, id } = client;
        if (final.poolsChanged) {
          s.resetClient(id);
          importClientHeader(s, id, final.client);
        } else {
          for (const o of final.flushedObjects) {
            const { pool, lo, hi } = parseHandleKey(`${o}:0`);
            s.flushObject(id, pool, lo, hi);
          }
          for (const key of final.gone) {
            const { pool, lo, hi, index } = parseHandleKey(key);
            s.flushPage(id, pool, lo, hi, index);
          }
          s.setWeight(id, final.client.weight);
          s.setPersistentAllowance(id, final.client.persistentAllowancePages ?? undefined);
        }
        for (let i = 0; i < final.pages; i++) restorePage(s, id, readPageRecord(p, at + i * PAGE_RECORD_BYTES));
        if (final.client.frozen) s.freeze(id);
        else s.thaw(id);
      }
      machineArrived(state);
    } catch (err) {
      machineFailed(err as Error);
      throw err;
    }
    const tApplied = performance.now();
    const started = await startedP;
    const appliedMs = tApplied - tFinal;
    const resumedMs = performance.now() - tFinal;
    await send(socket, frame(MSG.ACK, json({ resumedMs })));
    socket.end();
    process.stderr.write(
      `tmemu: the guest arrived: ${(received / 2 ** 20).toFixed(1)} MiB received, ${started.persistentPages} persistent tmem pages; running here ${resumedMs.toFixed(0)} ms after the final message arrived (disks and log applied in ${appliedMs.toFixed(0)} ms, then the machine state restored; emulator and client were made during the pre-copy)\n`,
    );
    try {
      if (!h.running) {
        process.stderr.write("tmemu: no command was running; the guest is shut down\n");
        return 0;
      }
      const r = await started.guest.resumeRun(h.running.id, { timeoutMs: flags.timeoutS * 1000 });
      process.stdout.write(r.output);
      if (flags.stats && store && started.device) {
        process.stderr.write(`tmemu: tmem ${store.clientMetrics(started.device.clientId).pagesPersistent} persistent pages at the end\n`);
      }
      if (r.exitCode !== 0) process.stderr.write(`tmemu: the guest command exited with ${r.exitCode}\n`);
      return r.exitCode;
    } finally {
      await started.dispose();
    }
  }
}
