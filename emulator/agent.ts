/**
 * The host side of the guest agent protocol spoken over ttyS0 (the other side is the loop at the
 * end of guest-images/init). Pure: no v86 here, so the framing is unit-tested on its own.
 *
 *   host -> guest   TMEMU-RUN <id> <base64 command>\n
 *   guest -> host   TMEMU-BEGIN <id>\n <output> TMEMU-END <id> <exit code>\n
 *
 * The END marker follows the output directly, even when the output does not end in a newline, so
 * the parser looks for it anywhere. Ids are fresh per request, so a marker printed by a command
 * cannot be mistaken for the agent's. A "\r" before a "\n" is dropped (as if the console mapped
 * "\n" to "\r\n").
 */

export const READY_PATTERN = /TMEMU-READY (\S+)\r?\n/;

/** The guest reads requests with the tty in canonical mode: a line must fit N_TTY_BUF_SIZE (4096). */
export const MAX_REQUEST_BYTES = 4000;

export interface RunResult {
  /** What the command wrote to stdout and stderr, in order. */
  output: string;
  exitCode: number;
}

export function encodeRunRequest(id: string, command: string): string {
  if (!/^[A-Za-z0-9]+$/.test(id)) throw new Error(`agent request id must be alphanumeric: ${id}`);
  return `TMEMU-RUN ${id} ${Buffer.from(command, "utf8").toString("base64")}\n`;
}

export const SHELL_REQUEST = "TMEMU-SHELL\n";

/**
 * Finds the answer to request `id` in console text. Returns undefined while it is incomplete.
 * `end` is the offset just past the END marker, so the caller can drop what it has consumed.
 */
export function parseRunResult(text: string, id: string): (RunResult & { end: number }) | undefined {
  const begin = new RegExp(`TMEMU-BEGIN ${id}\\r?\\n`).exec(text);
  if (!begin) return undefined;
  const bodyStart = begin.index + begin[0].length;
  const endRe = new RegExp(`TMEMU-END ${id} (\\d+)\\r?\\n`, "g");
  endRe.lastIndex = bodyStart;
  const m = endRe.exec(text);
  if (!m || m[1] === undefined) return undefined;
  return {
    output: text.slice(bodyStart, m.index).replace(/\r\n/g, "\n"),
    exitCode: Number.parseInt(m[1], 10),
    end: m.index + m[0].length,
  };
}

/**
 * The answer to one request, read line by line as the console delivers complete lines (without
 * their "\n"). Each line is looked at once and the output is kept here, so an answer of any length
 * is found in linear time; `parseRunResult` gives the same result from the whole text at once.
 */
export class RunAnswerScanner {
  private begun = false;
  private readonly body: string[] = [];
  private readonly begin: string;
  private readonly end: RegExp;

  constructor(id: string) {
    if (!/^[A-Za-z0-9]+$/.test(id)) throw new Error(`agent request id must be alphanumeric: ${id}`);
    this.begin = `TMEMU-BEGIN ${id}`;
    this.end = new RegExp(`TMEMU-END ${id} (\\d+)$`);
  }

  /** One complete console line; returns the result when it holds the END marker. */
  line(text: string): RunResult | undefined {
    const t = text.endsWith("\r") ? text.slice(0, -1) : text;
    if (!this.begun) {
      this.begun = t.endsWith(this.begin);
      return undefined;
    }
    const m = this.end.exec(t);
    if (!m || m[1] === undefined) {
      this.body.push(t, "\n");
      return undefined;
    }
    this.body.push(t.slice(0, m.index));
    return { output: this.body.join(""), exitCode: Number.parseInt(m[1], 10) };
  }
}
