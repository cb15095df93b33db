import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { encodeRunRequest, parseRunResult, READY_PATTERN, RunAnswerScanner } from "../../emulator/agent.ts";

describe("guest agent protocol", () => {
  it("encodes a request as one line with the command in base64", () => {
    expect(encodeRunRequest("a1", "echo 'hi'; exit 3")).toBe(`TMEMU-RUN a1 ${Buffer.from("echo 'hi'; exit 3").toString("base64")}\n`);
  });

  it("refuses ids that would break the framing", () => {
    expect(() => encodeRunRequest("a b", "true")).toThrow();
  });

  it("finds output and exit code between the markers, even without a final newline", () => {
    const text = "boot noise\nTMEMU-BEGIN x1\nline1\nno-newlineTMEMU-END x1 7\nafter";
    expect(parseRunResult(text, "x1")).toEqual({ output: "line1\nno-newline", exitCode: 7, end: text.indexOf("after") });
  });

  it("waits while the END marker is missing or incomplete", () => {
    expect(parseRunResult("TMEMU-BEGIN x1\npartial", "x1")).toBeUndefined();
    expect(parseRunResult("TMEMU-BEGIN x1\nout TMEMU-END x1 0", "x1")).toBeUndefined();
    expect(parseRunResult("nothing yet", "x1")).toBeUndefined();
  });

  it("ignores markers of another request and output that imitates a marker of another id", () => {
    const text = "TMEMU-BEGIN x2\nTMEMU-END x1 9\nTMEMU-END x2 0\n";
    expect(parseRunResult(text, "x2")).toMatchObject({ output: "TMEMU-END x1 9\n", exitCode: 0 });
  });

  it("turns the console's CRLF into LF", () => {
    expect(parseRunResult("TMEMU-BEGIN y\r\na\r\nb\r\nTMEMU-END y 0\n", "y".trim())?.output).toBe("a\nb\n");
  });

  it("recognises the ready line and the kernel release in it", () => {
    expect("x\nTMEMU-READY 6.1.192\r\n".match(READY_PATTERN)?.[1]).toBe("6.1.192");
  });
});

describe("RunAnswerScanner (line by line)", () => {
  const scan = (text: string, id: string) => {
    const s = new RunAnswerScanner(id);
    const lines = text.split("\n");
    lines.pop(); // the part after the last "\n" is not a complete line yet
    for (const l of lines) {
      const r = s.line(l);
      if (r) return r;
    }
    return undefined;
  };

  it("gives what parseRunResult gives for the same console text (property)", () => {
    const piece = fc.constantFrom("a", "b", " ", "\n", "\r", "\r\n", "TMEMU-END ", "TMEMU-BEGIN ", "id1", "id2", "0", "42", "€");
    const chunk = fc.array(piece, { maxLength: 30 }).map((p) => p.join(""));
    fc.assert(
      fc.property(chunk, chunk, fc.constantFrom("\n", "\r\n"), fc.nat(300), chunk, (before, output, eol, code, after) => {
        const text = `${before}\nTMEMU-BEGIN id1${eol}${output}TMEMU-END id1 ${code}${eol}${after}`;
        const whole = parseRunResult(text, "id1");
        const byLine = scan(text, "id1");
        expect(byLine).toEqual(whole && { output: whole.output, exitCode: whole.exitCode });
      }),
    );
  });

  it("refuses ids that would break the framing", () => {
    expect(() => new RunAnswerScanner("a.b")).toThrow();
  });
});
