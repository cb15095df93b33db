/** The run timeline's SVG (cli/ui/run-chart.ts). */
import { describe, expect, it } from "vitest";
import { runTimelineSvg } from "../../cli/ui/run-chart.ts";
import { TIMELINE_NOTE, type TimelineGuest, type TimelineSample } from "../../cli/ui/timeline.ts";
import { guest, summary } from "../cli/bench-fixtures.ts";

function g(name: string, over: Partial<TimelineGuest>): TimelineGuest {
  return { name, ramMib: 128, balloonPages: 0, balloonTargetPages: 0, memAvailableMib: null, tmemPagesEphemeral: 0, tmemPagesPersistent: 0, tmemPuts: 0, tmemGets: 0, tmemGetHits: 0, tmemPutsRefused: 0, tmemEvictions: 0, dataSectorsRead: 0, swapSectorsRead: 0, swapSectorsWritten: 0, ...over };
}

function sample(t: number, balloon: number, pers: number): TimelineSample {
  return { t, guests: [g("g0", { balloonPages: balloon, tmemPagesPersistent: pers }), g("g1", {})], store: { budgetFrames: 512, framesTotal: 1024, framesUsed: pers, pagesEphemeral: 0, pagesPersistent: pers, evictions: 0, putsRefused: 0, clients: [], pools: [] } };
}

describe("runTimelineSvg", () => {
  it("draws a panel per guest and one for the store, with the values at the end of the window in the legend", () => {
    const s = summary([guest({ name: "g0" }), guest({ name: "g1" })], { timeline: { note: TIMELINE_NOTE, samples: [sample(0, 0, 0), sample(1, 256, 128), sample(2, 512, 640)], decisions: [] } });
    const svg = runTimelineSvg(s) ?? "";
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg.match(/<polyline /g)).toHaveLength(2 * 4 + 2);
    expect(svg).toContain("g0: memory (MiB)");
    expect(svg).toContain("g1: memory (MiB)");
    expect(svg).toContain("balloon: 2<"); // 512 pages = 2 MiB, at the end
    expect(svg).toContain("RAM not ballooned: 126<");
    expect(svg).toContain("tmem persistent: 2.5<"); // 640 pages
    expect(svg).toContain("budget: 2<");
  });

  it("is null for a run without a timeline", () => {
    expect(runTimelineSvg(summary([guest()]))).toBeNull();
  });
});
