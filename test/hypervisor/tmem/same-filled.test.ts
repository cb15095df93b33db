import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { NOT_SAME_FILLED, sameFilledWord } from "../../../hypervisor/tmem/same-filled.ts";
import { FRAME_WORDS } from "../../../hypervisor/tmem/slab.ts";

describe("sameFilledWord", () => {
  it("returns 0 for a zero page and the word for a page of one repeated word", () => {
    const words = new Uint32Array(2 * FRAME_WORDS);
    expect(sameFilledWord(words, 0)).toBe(0);
    words.fill(0xdeadbeef, FRAME_WORDS);
    expect(sameFilledWord(words, FRAME_WORDS)).toBe(0xdeadbeef);
    expect(sameFilledWord(words, 0)).toBe(0); // the next frame does not leak into this one
  });

  it("returns NOT_SAME_FILLED when any one word differs, first or last", () => {
    const words = new Uint32Array(FRAME_WORDS).fill(0xffffffff);
    words[FRAME_WORDS - 1] = 0xfffffffe;
    expect(sameFilledWord(words, 0)).toBe(NOT_SAME_FILLED);
    words[FRAME_WORDS - 1] = 0xffffffff;
    words[0] = 0;
    expect(sameFilledWord(words, 0)).toBe(NOT_SAME_FILLED);
  });

  it("agrees with a byte-level definition (every byte equals the one 4 before it)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.nat({ max: 4 * FRAME_WORDS - 1 }), fc.nat(255), (w, at, b) => {
        const words = new Uint32Array(FRAME_WORDS).fill(w);
        const bytes = new Uint8Array(words.buffer);
        bytes[at] = b;
        let same = true;
        for (let i = 4; i < bytes.length; i++) if (bytes[i] !== bytes[i - 4]) same = false;
        const r = sameFilledWord(words, 0);
        expect(r !== NOT_SAME_FILLED).toBe(same);
        if (same) expect(r).toBe(words[0]);
      }),
    );
  });
});
