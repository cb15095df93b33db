/** `tmemu report`: the page of a run or bench document as one self-contained HTML file (no guest, no browser here). */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSummary } from "../../cli/run.ts";
import { normalizeBench, reportCommand, reportState } from "../../cli/report-command.ts";
import { jsonForScript, pageHtml } from "../../cli/ui/bundle.ts";
import { TIMELINE_NOTE } from "../../cli/ui/timeline.ts";
import { guest, summary } from "../cli/bench-fixtures.ts";
import { TmemuError } from "../../hypervisor/user-errors.ts";

const HOSTILE = "</script><script>window.pwned=1</script><!--";

function runDoc() {
  return summary([guest({ name: "g0", output: `memtouch: ok\n${HOSTILE}` }), guest({ name: "g1" })], {
    timeline: {
      note: TIMELINE_NOTE,
      samples: [
        {
          t: 1,
          guests: [],
          store: { budgetFrames: 10, framesTotal: 10, framesUsed: 1, pagesEphemeral: 1, pagesPersistent: 0, evictions: 0, putsRefused: 0, clients: [], pools: [] },
        },
      ],
      decisions: [{ t: 1, target: "g0", from: 0, to: 256, reason: "shrink" }],
    },
  });
}

/** Every place an HTML page could load something from: none may point anywhere. */
function externalRefs(html: string): string[] {
  return [...html.matchAll(/<(script|link|img|iframe|object|embed|source)\b[^>]*\b(src|href|data)\s*=\s*["']?([^"' >]+)/gi)].map((m) => m[0]);
}

describe("tmemu report", () => {
  it("makes the run page's state from a run document: its timeline, its summary as the CLI prints it, the workload output in the consoles", () => {
    const doc = runDoc();
    const st = reportState(JSON.parse(JSON.stringify(doc)), "run.json");
    expect(st).toMatchObject({ kind: "run", live: false, ended: true, consoleWritable: false });
    expect(st.run?.meta.guests).toEqual(["g0", "g1"]);
    expect(st.run?.samples).toEqual(doc.timeline?.samples);
    expect(st.run?.decisions).toEqual(doc.timeline?.decisions);
    expect(st.run?.summaryText).toBe(formatSummary(doc));
    expect(st.run?.consoles["g0"]).toBe(doc.guests[0]?.output);
    expect(JSON.parse(st.run?.links[0]?.inline ?? "")).toEqual(doc);
  });

  it("writes DIR/index.html: one file, the data and libraries inlined, nothing to load, a page that may connect nowhere, data that cannot end its script", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-report-"));
    const file = join(dir, "run.json");
    writeFileSync(file, JSON.stringify(runDoc()));
    expect(await reportCommand(file, { out: join(dir, "out") })).toBe(0);
    const html = readFileSync(join(dir, "out", "index.html"), "utf8");
    expect(externalRefs(html)).toEqual([]);
    // (booleans: a failing toContain would print the whole page)
    expect(html.includes("connect-src 'none'")).toBe(true);
    expect(html.includes(".u-legend")).toBe(true); // the chart library's stylesheet, inlined
    expect(html.includes("paths.stepped") || html.includes("stepped")).toBe(true); // ... and its code
    expect(html.includes("xterm-helper-textarea")).toBe(true); // the terminal's code, inlined
    // Exactly the page's two scripts: the hostile output did not close the data script.
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    expect(html.includes("window.pwned=1</script>")).toBe(false);
    const data = /<script id="tmemu-data" type="application\/json">(.*?)<\/script>/s.exec(html)?.[1] ?? "";
    expect(JSON.parse(data).run.consoles.g0).toContain(HOSTILE);
  }, 60_000);

  it("makes the bench page from a bench document, older ones too (no validity recorded: said so)", async () => {
    const old = JSON.parse(readFileSync("docs/measurements/2026-11-26/bench-phased.json", "utf8"));
    const st = reportState(old, "bench-phased.json");
    expect(st.kind).toBe("bench");
    expect(st.bench?.tableText).toContain("tmemu bench: workload phased, 3 guests x 128 MiB");
    expect(st.bench?.tableText).toContain("note: this document predates run validity");
    expect(st.bench?.svg).toMatch(/^<svg/);
    expect(st.bench?.links.map((l) => l.filename)).toEqual(["bench-phased.json", "bench-phased.svg"]);
    const current = normalizeBench(old);
    expect(normalizeBench(current).notes).toEqual(current.notes); // a current document is left as it is
    const html = await pageHtml(st, "bench");
    expect(externalRefs(html)).toEqual([]);
  }, 60_000);

  it("refuses what is not a run or bench document", () => {
    expect(() => reportState([1, 2], "x.json")).toThrow(TmemuError);
    expect(() => reportState({ hello: 1 }, "x.json")).toThrow(/neither a run document nor a bench document/);
  });

  it("says on one line when the file is missing or not JSON", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tmemu-report-"));
    await expect(reportCommand(join(dir, "none.json"), { out: dir })).rejects.toThrow(/^cannot read .*none\.json: ENOENT$/);
    writeFileSync(join(dir, "bad.json"), "# not\njson\n");
    const err = await reportCommand(join(dir, "bad.json"), { out: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TmemuError);
    expect((err as TmemuError).message).toMatch(/bad\.json is not JSON: /);
    expect((err as TmemuError).message).not.toContain("\n");
  });

  it("escapes JSON for a script element", () => {
    const s = jsonForScript({ a: "</script><!-- & \u2028" });
    expect(s).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(s)).toEqual({ a: "</script><!-- & \u2028" });
  });
});
