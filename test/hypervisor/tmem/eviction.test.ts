import { describe, expect, it } from "vitest";
import { compactionThreshold, COMPACT_FRACTION, COMPACT_MIN_FRAMES, dataVictim, overShare, recordVictim } from "../../../hypervisor/tmem/eviction.ts";
import { NIL, PageTable } from "../../../hypervisor/tmem/page-table.ts";

describe("overShare", () => {
  it("is true past budget x weight / W, false at it and for a client charged nothing", () => {
    // budget 400 bytes, W = 4: a client of weight 1 may hold 100
    expect(overShare(100, 1, 4, 400)).toBe(false);
    expect(overShare(101, 1, 4, 400)).toBe(true);
    expect(overShare(300, 3, 4, 400)).toBe(false);
    expect(overShare(0, 0, 4, 400)).toBe(false);
    expect(overShare(1, 0, 4, 400)).toBe(true);
  });
});

describe("victims", () => {
  function lists() {
    const pt = new PageTable<object>();
    const global = pt.newList();
    const fill = pt.newList();
    const mine = pt.newList();
    const [a, b, c, f] = [pt.allocSlot(), pt.allocSlot(), pt.allocSlot(), pt.allocSlot()];
    pt.linkG(global, a); // a: someone else's, least recently used
    pt.linkG(global, b);
    pt.linkC(mine, b); // b: mine
    pt.linkG(global, c);
    pt.linkC(mine, c);
    pt.linkG(fill, f);
    return { pt, global, fill, mine, a, b, f };
  }
  it("take the putter's own LRU page when it is over its share, else the global LRU page", () => {
    const { pt, global, mine, a, b } = lists();
    expect(dataVictim(pt, mine, true, global)).toBe(b);
    expect(dataVictim(pt, mine, false, global)).toBe(a);
    expect(dataVictim(pt, NIL, true, global)).toBe(a);
    const empty = pt.newList();
    expect(dataVictim(pt, empty, true, global)).toBe(a);
    expect(dataVictim(pt, empty, true, empty)).toBe(NIL);
  });
  it("for a page record, take a same-filled page first", () => {
    const { pt, global, fill, mine, a, b, f } = lists();
    expect(recordVictim(pt, fill, mine, true, global)).toBe(f);
    pt.unlinkG(f);
    expect(recordVictim(pt, fill, mine, true, global)).toBe(b);
    expect(recordVictim(pt, fill, mine, false, global)).toBe(a);
  });
});

describe("compactionThreshold", () => {
  it("is COMPACT_MIN_FRAMES, or 1/COMPACT_FRACTION of the frames used when more", () => {
    expect(compactionThreshold(0)).toBe(COMPACT_MIN_FRAMES);
    expect(compactionThreshold(COMPACT_FRACTION * COMPACT_MIN_FRAMES)).toBe(COMPACT_MIN_FRAMES);
    expect(compactionThreshold(16384)).toBe(16384 / COMPACT_FRACTION);
  });
});
