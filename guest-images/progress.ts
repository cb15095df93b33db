/**
 * Progress for long build steps, on stderr: phase, elapsed time and, where it can be known, a
 * percentage. On a terminal one line is rewritten in place; elsewhere (CI logs) a line is printed
 * when a phase starts, every 30 s while it runs, and when it ends.
 */

export interface ProgressSink {
  phase(name: string): void;
  update(fraction: number | undefined, detail?: string): void;
  done(summary?: string): void;
  warn(message: string): void;
}

function fmt(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

export class StderrProgress implements ProgressSink {
  private name = "";
  private started = 0;
  private lastPrint = 0;
  private readonly tty: boolean;

  constructor(private readonly out: NodeJS.WriteStream = process.stderr) {
    this.tty = Boolean(out.isTTY);
  }

  phase(name: string): void {
    this.name = name;
    this.started = this.lastPrint = Date.now();
    this.print(`${name} ...`, true);
  }

  update(fraction: number | undefined, detail = ""): void {
    const now = Date.now();
    if (!this.tty && now - this.lastPrint < 30_000) return;
    this.lastPrint = now;
    const pct = fraction === undefined ? "" : ` ${Math.floor(Math.min(fraction, 0.99) * 100)}%`;
    const bar = fraction === undefined || !this.tty ? "" : ` [${"#".repeat(Math.floor(Math.min(fraction, 1) * 20)).padEnd(20, ".")}]`;
    this.print(`${this.name}${bar}${pct} ${fmt(now - this.started)} ${detail}`.trimEnd(), false);
  }

  done(summary = "done"): void {
    this.print(`${this.name}: ${summary} (${fmt(Date.now() - this.started)})`, true);
  }

  warn(message: string): void {
    this.print(`warning: ${message}`, true);
  }

  private print(line: string, keep: boolean): void {
    if (this.tty) this.out.write(`\r\x1b[K[tmemu] ${line}${keep ? "\n" : ""}`);
    else this.out.write(`[tmemu] ${line}\n`);
  }
}

export const silentProgress: ProgressSink = { phase() {}, update() {}, done() {}, warn() {} };
