import { describe, expect, it } from "vitest";
import { encodeRunRequest, parseRunResult, READY_PATTERN } from "../../emulator/agent.ts";

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
