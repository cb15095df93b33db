import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { NIL, PageTable } from "../../../hypervisor/tmem/page-table.ts";
import { BugIndicatingError } from "../../../hypervisor/errors.ts";

describe("PageTable lists", () => {
  it("keep LRU order: link at the MRU end, take from the LRU end", () => {
    const pt = new PageTable<string>(16);
    const head = pt.newList();
    const [a, b, c] = [pt.allocSlot(), pt.allocSlot(), pt.allocSlot()];
    pt.linkG(head, a);
    pt.linkG(head, b);
    pt.linkG(head, c);
    expect(pt.firstG(head)).toBe(a);
    pt.unlinkG(a);
    pt.linkG(head, a); // touch
    expect(pt.listG(head)).toEqual([b, c, a]);
    pt.unlinkG(c);
    expect(pt.listG(head)).toEqual([b, a]);
  });

  it("keep the G and C rings independent", () => {
    const pt = new PageTable<string>(16);
    const g = pt.newList();
    const c = pt.newList();
    const s = pt.allocSlot();
    pt.linkG(g, s);
    pt.linkC(c, s);
    pt.unlinkG(s);
    expect(pt.firstG(g)).toBe(NIL);
    expect(pt.firstC(c)).toBe(s);
  });

  it("refuse to free a linked or owned slot, or a non-empty list", () => {
    const pt = new PageTable<string>(16);
    const head = pt.newList();
    const s = pt.allocSlot();
    pt.linkG(head, s);
    expect(() => pt.freeSlot(s)).toThrow(BugIndicatingError);
    expect(() => pt.freeList(head)).toThrow(BugIndicatingError);
    pt.unlinkG(s);
    pt.obj[s] = "owner";
    expect(() => pt.freeSlot(s)).toThrow(BugIndicatingError);
    pt.obj[s] = undefined;
    pt.freeSlot(s);
    pt.freeList(head);
    expect(pt.slotsInUse).toBe(0);
  });

  it("match an array model under random link/unlink/touch, across growth", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(3), fc.nat(1000)), { maxLength: 300 }), (script) => {
        const pt = new PageTable<string>(16); // grows several times
        const head = pt.newList();
        const model: number[] = [];
        const unlinked: number[] = [];
        for (const [kind, pick] of script) {
          if (kind === 0 || (model.length === 0 && unlinked.length === 0)) {
            const s = pt.allocSlot();
            pt.frame[s] = s * 7;
            pt.linkG(head, s);
            model.push(s);
          } else if (kind === 1 && model.length > 0) {
            const [s] = model.splice(pick % model.length, 1);
            pt.unlinkG(s!);
            unlinked.push(s!);
          } else if (kind === 2 && model.length > 0) {
            const [s] = model.splice(pick % model.length, 1);
            pt.unlinkG(s!);
            pt.linkG(head, s!);
            model.push(s!);
          } else if (unlinked.length > 0) {
            const [s] = unlinked.splice(pick % unlinked.length, 1);
            pt.freeSlot(s!);
          }
          expect(pt.listG(head)).toEqual(model);
          for (const s of model) expect(pt.frame[s]).toBe(s * 7); // data survives growth
        }
      }),
    );
  });
});
