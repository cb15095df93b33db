/**
 * A guest's serial console as text (used by guest.ts; pure, no v86, so it is unit-tested on its
 * own): bytes are decoded as UTF-8 (a byte that is not valid UTF-8 becomes U+FFFD), kept in a log
 * of the last ~1 MiB, echoed to listeners, and looked at line by line by waiters — a kernel panic
 * line fails them all.
 *
 * Two kinds of waiter. `waitUntil` tests all the text since an offset at each new line: for short
 * waits such as the boot banner. `waitForRun` follows one agent request (agent.ts) with a scanner
 * that sees each line once and keeps the command's output itself, so an answer of any length
 * arrives in linear time even when the log has long since dropped its beginning.
 */
import { TmemuError } from "../hypervisor/user-errors.ts";
import { RunAnswerScanner, type RunResult } from "./agent.ts";

export interface Disposable {
  dispose(): void;
}

/** The log keeps at least this many of the newest characters (and at most twice as many). */
export const CONSOLE_KEEP_CHARS = 1 << 20;

const PANIC = "Kernel panic - not syncing";

interface Waiter {
  /** Sees one complete line (without its "\n"); true when the waiter is done. */
  line(text: string): boolean;
  reject(err: Error): void;
}

export class GuestConsole {
  private log = "";
  /** Characters dropped from the front of `log` so far: absolute offset of log[0]. */
  private logBase = 0;
  /** The line being received (since the last "\n"). */
  private partial = "";
  private readonly waiters = new Set<Waiter>();
  private readonly listeners = new Set<(text: string) => void>();
  private readonly decoder = new TextDecoder("utf-8");
  /** The decoder may hold part of a multi-byte sequence. */
  private inSequence = false;
  private deadWith: TmemuError | undefined;

  constructor(
    /** Shown in errors. */
    private readonly name: string,
    private readonly keepChars = CONSOLE_KEEP_CHARS,
  ) {}

  /** Why the guest is gone (a kernel panic, a timed-out command, shutdown), or undefined. */
  get dead(): TmemuError | undefined {
    return this.deadWith;
  }

  /** One byte from the guest's serial port. */
  write(byte: number): void {
    let text: string;
    if (byte < 0x80 && !this.inSequence) {
      text = String.fromCharCode(byte); // ASCII with no multi-byte sequence pending: skip the decoder
    } else {
      // An ASCII byte always ends whatever sequence the decoder held; any other byte may start one.
      this.inSequence = byte >= 0x80;
      text = this.decoder.decode(new Uint8Array([byte]), { stream: true });
      if (!text) return;
    }
    this.log += text;
    for (const l of this.listeners) l(text);
    if (this.log.length > 2 * this.keepChars) {
      const drop = this.log.length - this.keepChars;
      this.log = this.log.slice(drop);
      this.logBase += drop;
    }
    if (byte !== 0x0a) {
      this.partial += text;
      return;
    }
    // `text` is "\n", or U+FFFD + "\n" when a multi-byte sequence was cut short.
    const line = this.partial + text.slice(0, -1);
    this.partial = "";
    for (const w of this.waiters) {
      if (w.line(line)) this.waiters.delete(w);
    }
    if (!this.deadWith && line.includes(PANIC)) {
      this.fail(new TmemuError("GUEST_GONE", `${this.name}: kernel panic`, `console tail:\n${this.tail(20)}`));
    }
  }

  /** Marks the guest gone and rejects every waiter with `err` (the first reason sticks). */
  fail(err: TmemuError): void {
    this.deadWith ??= err;
    for (const w of this.waiters) w.reject(err);
    this.waiters.clear();
  }

  /** Absolute offset of the end of the console text so far. */
  get offset(): number {
    return this.logBase + this.log.length;
  }

  /** Console text after absolute offset `offset` (what the log still holds of it). */
  textSince(offset: number): string {
    return this.log.slice(Math.max(0, offset - this.logBase));
  }

  tail(lines: number): string {
    return this.log.split("\n").slice(-lines - 1).join("\n");
  }

  listen(listener: (text: string) => void): Disposable {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  }

  clearListeners(): void {
    this.listeners.clear();
  }

  /** Waits until console text after `from` satisfies `fn` (tested at each new line); resolves with what `fn` returned. */
  waitUntil<T>(fn: (text: string) => T | undefined, timeoutMs: number, what: string, from = this.offset): Promise<T> {
    const test = () => fn(this.textSince(from));
    return this.wait(timeoutMs, what, test, test);
  }

  /** Waits for the agent's answer to request `id` (agent.ts), from the next complete line on. */
  waitForRun(id: string, timeoutMs: number, what: string): Promise<RunResult> {
    const scanner = new RunAnswerScanner(id);
    return this.wait(timeoutMs, what, () => undefined, (line) => scanner.line(line));
  }

  private wait<T>(timeoutMs: number, what: string, now: () => T | undefined, onLine: (line: string) => T | undefined): Promise<T> {
    if (this.deadWith) return Promise.reject(this.deadWith);
    return new Promise<T>((resolve, reject) => {
      const early = now();
      if (early !== undefined) return resolve(early);
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new TmemuError(
            "TIMEOUT",
            `${this.name}: ${what} did not finish within ${Math.round(timeoutMs / 1000)} s`,
            `raise --timeout-s if the work is just slow; console tail:\n${this.tail(10)}`,
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        line: (text) => {
          const r = onLine(text);
          if (r === undefined) return false;
          clearTimeout(timer);
          resolve(r);
          return true;
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.add(waiter);
    });
  }
}

/**
 * The console half of a guest's API, the same whether the guest runs in this thread (guest.ts) or
 * in a worker whose console is mirrored here (threaded-guest.ts): both extend this.
 */
export abstract class ConsoleView {
  protected readonly console: GuestConsole;

  protected constructor(name: string, onConsole: ((text: string) => void) | undefined) {
    this.console = new GuestConsole(name);
    if (onConsole) this.console.listen(onConsole);
  }

  /** Absolute console offset: pass to `textSince` or `waitFor` to look only at newer output. */
  get consoleOffset(): number {
    return this.console.offset;
  }

  textSince(offset: number): string {
    return this.console.textSince(offset);
  }

  consoleTail(lines: number): string {
    return this.console.tail(lines);
  }

  /** Live console output. */
  onConsole(listener: (text: string) => void): Disposable {
    return this.console.listen(listener);
  }

  /** Waits until console output after `from` satisfies `fn`; returns what `fn` returned. */
  waitUntil<T>(fn: (text: string) => T | undefined, timeoutMs: number, what: string, from = this.consoleOffset): Promise<T> {
    return this.console.waitUntil(fn, timeoutMs, what, from);
  }

  waitFor(pattern: RegExp, timeoutMs: number, what = `output matching ${pattern}`, from = 0): Promise<RegExpMatchArray> {
    return this.waitUntil((text) => text.match(pattern) ?? undefined, timeoutMs, what, from);
  }
}
