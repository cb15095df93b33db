/**
 * Page records of the tmem store as a structure of arrays, and the intrusive doubly linked lists
 * that give O(1) LRU updates and eviction (the global and per-client ephemeral lists of Xen's
 * tmem.c, here in typed arrays so that a million pages cost no million JS objects).
 *
 * A record is a slot number. Per slot: the slab frame (or NO_FRAME for a same-filled page, whose
 * repeated word is in `fill`), the page index, the owning object, and two pairs of links: pair G
 * (one global list) and pair C (one per-client list). A list is a ring through a sentinel slot that
 * never holds a page: the LRU end is the sentinel's next, the MRU end its prev. An unlinked slot has
 * both links NIL. The arrays grow by doubling; callers must not keep references to them across
 * allocSlot().
 */

import { BugIndicatingError } from "../errors.ts";

export const NIL = -1;

export class PageTable<O> {
  frame: Int32Array;
  fill: Uint32Array;
  index: Uint32Array;
  gPrev: Int32Array;
  gNext: Int32Array;
  cPrev: Int32Array;
  cNext: Int32Array;
  /** The object a page belongs to; undefined for free slots and sentinels. */
  readonly obj: (O | undefined)[] = [];

  private capacity: number;
  /** Free slots below `highWater`, as a stack. Slots >= highWater have never been used. */
  private freeSlots: Int32Array;
  private freeTop = 0;
  private highWater = 0;
  private inUse = 0;

  constructor(initialCapacity = 1024) {
    const capacity = Math.max(16, initialCapacity);
    this.capacity = capacity;
    this.frame = new Int32Array(capacity);
    this.fill = new Uint32Array(capacity);
    this.index = new Uint32Array(capacity);
    this.gPrev = new Int32Array(capacity).fill(NIL);
    this.gNext = new Int32Array(capacity).fill(NIL);
    this.cPrev = new Int32Array(capacity).fill(NIL);
    this.cNext = new Int32Array(capacity).fill(NIL);
    this.freeSlots = new Int32Array(capacity);
  }

  /** Slots in use (pages and sentinels). */
  get slotsInUse(): number {
    return this.inUse;
  }

  allocSlot(): number {
    let slot: number;
    if (this.freeTop > 0) {
      slot = this.freeSlots[--this.freeTop]!;
    } else {
      if (this.highWater === this.capacity) this.grow();
      slot = this.highWater++;
    }
    this.inUse++;
    return slot;
  }

  /** Frees a slot that is unlinked from both lists and no longer names an object. */
  freeSlot(slot: number): void {
    if (this.gNext[slot] !== NIL || this.cNext[slot] !== NIL || this.obj[slot] !== undefined) {
      throw new BugIndicatingError(`page table: slot ${slot} freed while still linked or owned`);
    }
    this.freeSlots[this.freeTop++] = slot;
    this.inUse--;
  }

  /** A new empty list: a sentinel slot linked to itself on both pairs. */
  newList(): number {
    const s = this.allocSlot();
    this.gPrev[s] = s;
    this.gNext[s] = s;
    this.cPrev[s] = s;
    this.cNext[s] = s;
    return s;
  }

  /** Frees the sentinel of an empty list. */
  freeList(sentinel: number): void {
    if (this.gNext[sentinel] !== sentinel || this.cNext[sentinel] !== sentinel) {
      throw new BugIndicatingError(`page table: list ${sentinel} freed while not empty`);
    }
    this.gPrev[sentinel] = NIL;
    this.gNext[sentinel] = NIL;
    this.cPrev[sentinel] = NIL;
    this.cNext[sentinel] = NIL;
    this.freeSlot(sentinel);
  }

  /** Links `slot` at the MRU end of G-list `head`. */
  linkG(head: number, slot: number): void {
    const last = this.gPrev[head]!;
    this.gPrev[slot] = last;
    this.gNext[slot] = head;
    this.gNext[last] = slot;
    this.gPrev[head] = slot;
  }

  unlinkG(slot: number): void {
    const prev = this.gPrev[slot]!;
    const next = this.gNext[slot]!;
    this.gNext[prev] = next;
    this.gPrev[next] = prev;
    this.gPrev[slot] = NIL;
    this.gNext[slot] = NIL;
  }

  /** Links `slot` at the MRU end of C-list `head`. */
  linkC(head: number, slot: number): void {
    const last = this.cPrev[head]!;
    this.cPrev[slot] = last;
    this.cNext[slot] = head;
    this.cNext[last] = slot;
    this.cPrev[head] = slot;
  }

  unlinkC(slot: number): void {
    const prev = this.cPrev[slot]!;
    const next = this.cNext[slot]!;
    this.cNext[prev] = next;
    this.cPrev[next] = prev;
    this.cPrev[slot] = NIL;
    this.cNext[slot] = NIL;
  }

  /** The LRU slot of G-list `head`, or NIL if it is empty. */
  firstG(head: number): number {
    const s = this.gNext[head]!;
    return s === head ? NIL : s;
  }

  /** The LRU slot of C-list `head`, or NIL if it is empty. */
  firstC(head: number): number {
    const s = this.cNext[head]!;
    return s === head ? NIL : s;
  }

  /** Slots of G-list `head`, LRU first (O(n): for tests, invariant checks and rare host actions). */
  listG(head: number): number[] {
    const out: number[] = [];
    for (let s = this.gNext[head]!; s !== head; s = this.gNext[s]!) out.push(s);
    return out;
  }

  /** Slots of C-list `head`, LRU first (O(n): for tests, invariant checks and rare host actions). */
  listC(head: number): number[] {
    const out: number[] = [];
    for (let s = this.cNext[head]!; s !== head; s = this.cNext[s]!) out.push(s);
    return out;
  }

  private grow(): void {
    const capacity = this.capacity * 2;
    const grownI32 = (a: Int32Array, fillNil: boolean): Int32Array => {
      const b = new Int32Array(capacity);
      if (fillNil) b.fill(NIL, a.length);
      b.set(a);
      return b;
    };
    this.frame = grownI32(this.frame, false);
    this.gPrev = grownI32(this.gPrev, true);
    this.gNext = grownI32(this.gNext, true);
    this.cPrev = grownI32(this.cPrev, true);
    this.cNext = grownI32(this.cNext, true);
    this.freeSlots = grownI32(this.freeSlots, false);
    const fill = new Uint32Array(capacity);
    fill.set(this.fill);
    this.fill = fill;
    const index = new Uint32Array(capacity);
    index.set(this.index);
    this.index = index;
    this.capacity = capacity;
  }
}
