import { afterEach, describe, expect, it, vi } from "vitest";
import { GuestConsole } from "../../emulator/console.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

const feed = (c: GuestConsole, text: string | Uint8Array) => {
  for (const b of typeof text === "string" ? Buffer.from(text, "utf8") : text) c.write(b);
};

describe("GuestConsole: agent answers", () => {
  it("returns output and exit code of the request it follows, ignoring what came before and other ids", async () => {
    const c = new GuestConsole("g");
    feed(c, "boot noise\nTMEMU-BEGIN old\nold output\n");
    const answer = c.waitForRun("r1", 10_000, "cmd");
    feed(c, "TMEMU-END old 0\nTMEMU-BEGIN r1\r\nline\r\nTMEMU-END x9 4\nno newlineTMEMU-END r1 7\nafter\n");
    expect(await answer).toEqual({ output: "line\nTMEMU-END x9 4\nno newline", exitCode: 7 });
  });

  it("finds the BEGIN marker after a partial line printed before it (a kernel message without newline)", async () => {
    const c = new GuestConsole("g");
    feed(c, "[  1.0] partial");
    const answer = c.waitForRun("r2", 10_000, "cmd");
    feed(c, "TMEMU-BEGIN r2\nout\nTMEMU-END r2 0\n");
    expect(await answer).toEqual({ output: "out\n", exitCode: 0 });
  });

  it("returns an output many times longer than the console log keeps, complete", async () => {
    const c = new GuestConsole("g", 256);
    const lines = Array.from({ length: 2000 }, (_, i) => `line ${i} ${"x".repeat(i % 50)}\n`);
    const answer = c.waitForRun("big", 10_000, "cmd");
    feed(c, `TMEMU-BEGIN big\n${lines.join("")}TMEMU-END big 0\n`);
    const r = await answer;
    expect(r.output).toBe(lines.join(""));
    expect(c.textSince(0).length).toBeLessThanOrEqual(2 * 256);
  });

  it("turns bytes that are not UTF-8 into U+FFFD and keeps the framing", async () => {
    const c = new GuestConsole("g");
    const answer = c.waitForRun("bin", 10_000, "cmd");
    feed(c, "TMEMU-BEGIN bin\n");
    feed(c, new Uint8Array([0x61, 0xff, 0xfe, 0x0a, 0xe2, 0x82])); // "a", two bad bytes, "\n", a cut euro sign
    feed(c, "TMEMU-END bin 0\n");
    expect(await answer).toEqual({ output: "a\ufffd\ufffd\n\ufffd", exitCode: 0 });
  });

  it("keeps a multi-byte UTF-8 character split across writes", async () => {
    const c = new GuestConsole("g");
    const answer = c.waitForRun("u", 10_000, "cmd");
    feed(c, "TMEMU-BEGIN u\n€ ü\nTMEMU-END u 0\n");
    expect((await answer).output).toBe("€ ü\n");
  });
});

describe("GuestConsole: failure", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("rejects a pending answer with GUEST_GONE on a kernel panic line, and every later wait at once", async () => {
    const c = new GuestConsole("g1");
    const answer = c.waitForRun("p", 10_000, "cmd");
    feed(c, "TMEMU-BEGIN p\n[ 9.9] Kernel panic - not syncing: Attempted to kill init!\n");
    await expect(answer).rejects.toMatchObject({ code: "GUEST_GONE", message: "g1: kernel panic" });
    await expect(c.waitForRun("q", 10_000, "cmd")).rejects.toMatchObject({ code: "GUEST_GONE" });
    expect(c.dead).toBeInstanceOf(TmemuError);
  });

  it("times out with a TIMEOUT error naming the wait and showing the console tail", async () => {
    vi.useFakeTimers();
    const c = new GuestConsole("g2");
    feed(c, "last words\n");
    const answer = c.waitForRun("t", 3000, "command `sleep 9`");
    vi.advanceTimersByTime(3000);
    const err = (await answer.catch((e: unknown) => e)) as TmemuError;
    expect(err.code).toBe("TIMEOUT");
    expect(err.message).toBe("g2: command `sleep 9` did not finish within 3 s");
    expect(err.hint).toMatch(/last words/);
  });

  it("keeps the first reason it failed for", () => {
    const c = new GuestConsole("g");
    c.fail(new TmemuError("TIMEOUT", "first"));
    c.fail(new TmemuError("GUEST_GONE", "second"));
    expect(c.dead?.message).toBe("first");
  });
});

describe("GuestConsole: log and waitUntil", () => {
  it("waits for a pattern in the text after an offset, tested at each new line", async () => {
    const c = new GuestConsole("g");
    feed(c, "TMEMU-READY old\n");
    const from = c.offset;
    const ready = c.waitUntil((t) => /TMEMU-READY (\S+)\n/.exec(t)?.[1], 10_000, "boot", from);
    feed(c, "TMEMU-READY 6.1.1\n");
    expect(await ready).toBe("6.1.1");
  });

  it("keeps absolute offsets when it drops old text", () => {
    const c = new GuestConsole("g", 8);
    feed(c, "0123456789abcdefghij\n");
    expect(c.offset).toBe(21);
    expect(c.textSince(18)).toBe("ij\n");
    expect(c.textSince(0).length).toBeLessThan(21);
  });

  it("echoes text to listeners until disposed", () => {
    const c = new GuestConsole("g");
    const seen: string[] = [];
    const l = c.listen((t) => seen.push(t));
    feed(c, "ab");
    l.dispose();
    feed(c, "c");
    expect(seen.join("")).toBe("ab");
  });
});
