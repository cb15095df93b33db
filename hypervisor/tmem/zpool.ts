/**
 * The store's allocator for page data: size classes over slab frames, after Linux's zsmalloc.
 *
 * An object (a compressed page, or a whole 4 KiB page) goes to the class of the smallest size that
 * holds it (CLASS_STEP-byte steps up to MAX_PACKED_SIZE, then one class for whole pages). A class
 * keeps its objects in zspages: groups of 1..MAX_ZSPAGE_FRAMES slab frames seen as one run of
 * bytes, the number of frames chosen so that objects waste the least of it. Objects are laid end to
 * end in that run, so one may span two frames (read back through a copy), which is what lets, say,
 * three 1360-byte objects share one frame or five 2400-byte objects share three. The whole-page
 * class has no zspages: each of its objects is a plain slab frame of its own (its handle records
 * the frame), so a page kept whole costs a frame and a handle, no zspage bookkeeping.
 *
 * A handle names an object and stays valid while the object moves: the store keeps handles, the
 * allocator keeps where each handle's bytes are (zspage and slot). An empty zspage gives its frames
 * back at once, so the only space lost outside objects is the free slots of partly used zspages
 * (external fragmentation) and the tail of each class slot (internal). compact() moves objects from
 * the emptiest zspages of a class into the fullest until at most one is partly used, freeing the
 * frames of the rest; compactableFrames() says how many frames that would free.
 *
 * The frames of the slab are the budget: alloc() takes new frames only while the slab holds at
 * most `frameLimit` of them, and framesUsed is what the slab says, never an estimate.
 */

import { BugIndicatingError } from "../errors.ts";
import { FRAME_SIZE, NO_FRAME, type Slab } from "./slab.ts";

/** Size step of the packed classes, bytes. */
export const CLASS_STEP = 16;
/** Largest object stored in a packed class; bigger ones take a whole page. */
export const MAX_PACKED_SIZE = 3072;
export const MAX_ZSPAGE_FRAMES = 8;
/** alloc() result when there is no room within the frame limit. */
export const NO_HANDLE = -1;

class Zspage {
  /** Objects in use. */
  used = 0;
  /** Free slot numbers (a stack). */
  readonly freeSlots: number[];
  /** The handle in each slot, or NO_HANDLE. */
  readonly slotHandle: Int32Array;
  /** Position in its class's `partial` list, or -1 when full. */
  partialIndex = -1;

  constructor(
    readonly cls: SizeClass,
    readonly frames: number[],
  ) {
    this.slotHandle = new Int32Array(cls.perZspage).fill(NO_HANDLE);
    this.freeSlots = [];
    for (let i = cls.perZspage - 1; i >= 0; i--) this.freeSlots.push(i);
  }

  /** Empty again, for reuse with new frames (an empty zspage has every slot free already). */
  reset(): void {
    this.used = 0;
    this.partialIndex = -1;
    this.frames.length = 0;
  }
}

export class SizeClass {
  /** Zspages with a free slot. */
  readonly partial: Zspage[] = [];
  readonly zspages = new Set<Zspage>();
  objects = 0;
  /** Objects that compaction may move but eviction never frees (persistent pages). */
  pinned = 0;
  /** Frames compaction would free in this class (its share of Zpool.compactableFrames()). */
  compactable = 0;
  /** Released zspages kept for reuse (no allocation per put, at most the zspages ever held at once). */
  readonly spare: Zspage[] = [];
  /**
   * The whole-page class (the last): each object is one plain slab frame of its own, with no
   * zspage (a zspage of one frame and one slot is pure bookkeeping), so framesHeld() is objects.
   */
  readonly whole: boolean;

  constructor(
    readonly index: number,
    /** Slot size, bytes. */
    readonly size: number,
    readonly framesPerZspage: number,
    readonly perZspage: number,
  ) {
    this.whole = size === FRAME_SIZE;
  }

  /** Frames the class holds now. */
  framesHeld(): number {
    return this.whole ? this.objects : this.zspages.size * this.framesPerZspage;
  }

  /** Frames this class would need with every zspage full but the last. */
  minFrames(objects = this.objects): number {
    return Math.ceil(objects / this.perZspage) * this.framesPerZspage;
  }
}

/** The frames per zspage (1..MAX_ZSPAGE_FRAMES) that waste the least for slots of `size` bytes. */
export function framesPerZspage(size: number): number {
  let best = 1;
  let bestWaste = Number.POSITIVE_INFINITY;
  for (let k = 1; k <= MAX_ZSPAGE_FRAMES; k++) {
    const bytes = k * FRAME_SIZE;
    const waste = (bytes % size) / bytes;
    if (waste < bestWaste - 1e-9) {
      best = k;
      bestWaste = waste;
    }
  }
  return best;
}

export interface ZpoolStats {
  /** Objects held. */
  objects: number;
  /** Bytes of the objects themselves. */
  bytesStored: number;
  /** Bytes of the class slots they occupy (bytesStored plus internal waste). */
  bytesAllocated: number;
  framesUsed: number;
  /** Frames that compact() would free now (external fragmentation). */
  compactableFrames: number;
  /** Objects moved and frames freed by compaction so far. */
  compactions: number;
  objectsMoved: number;
  framesCompacted: number;
}

export class Zpool {
  readonly classes: SizeClass[] = [];
  private hZspage: (Zspage | undefined)[] = [];
  private hSlot = new Int32Array(1024);
  private hLen = new Int32Array(1024);
  private hPinned = new Uint8Array(1024);
  private freeHandles: number[] = [];
  private nextHandle = 0;
  private objects = 0;
  private bytesStored = 0;
  private bytesAllocated = 0;
  private compactable = 0;
  private compactions = 0;
  private objectsMoved = 0;
  private framesCompacted = 0;
  /** hZspage of an object of the whole-page class (its hSlot is its frame). */
  private readonly wholeMark: Zspage;
  /** Scratch for objects that span two frames. */
  private readonly spanBuf = new Uint8Array(FRAME_SIZE);

  constructor(readonly slab: Slab) {
    for (let size = CLASS_STEP; size <= MAX_PACKED_SIZE; size += CLASS_STEP) this.addClass(size);
    this.addClass(FRAME_SIZE);
    this.wholeMark = new Zspage(this.classes[this.classes.length - 1]!, []);
  }

  private addClass(size: number): void {
    const k = framesPerZspage(size);
    this.classes.push(new SizeClass(this.classes.length, size, k, Math.floor((k * FRAME_SIZE) / size)));
  }

  /** The class that holds objects of `len` bytes (1..FRAME_SIZE). */
  classFor(len: number): SizeClass {
    if (!Number.isInteger(len) || len < 1 || len > FRAME_SIZE) throw new BugIndicatingError(`zpool: object of ${len} bytes`);
    if (len > MAX_PACKED_SIZE) return this.classes[this.classes.length - 1]!;
    return this.classes[Math.ceil(len / CLASS_STEP) - 1]!;
  }

  get framesUsed(): number {
    return this.slab.framesUsed;
  }

  /** Frames compact() would free now. */
  compactableFrames(): number {
    return this.compactable;
  }

  /**
   * Room for an object of `len` bytes, taking new frames only while the slab would hold at most
   * `frameLimit`. Returns its handle, or NO_HANDLE. `pinned`: counted in minPinnedFrames().
   */
  alloc(len: number, frameLimit: number, pinned = false): number {
    let cls = this.classFor(len);
    // A limit below one zspage of the class (a tiny budget): a slot of the whole-page class.
    if (cls.framesPerZspage > frameLimit && cls.partial.length === 0) cls = this.classes[this.classes.length - 1]!;
    if (cls.whole) return this.allocFrame(cls, len, frameLimit, pinned);
    let zs = cls.partial[cls.partial.length - 1];
    if (zs === undefined) {
      const k = cls.framesPerZspage;
      if (this.slab.framesUsed + k > frameLimit || this.slab.framesFree < k) return NO_HANDLE;
      zs = cls.spare.pop() ?? new Zspage(cls, []);
      for (let i = 0; i < k; i++) {
        const f = this.slab.alloc();
        if (f === NO_FRAME) throw new BugIndicatingError("zpool: slab out of frames it said were free");
        zs.frames.push(f);
      }
      cls.zspages.add(zs);
      this.linkPartial(zs);
    }
    const h = this.newHandle();
    this.place(h, zs, len);
    this.record(h, cls, len, pinned);
    this.updateCompactable(cls);
    return h;
  }

  /**
   * alloc(FRAME_SIZE, frameLimit, pinned) for a whole page: a slot of the whole-page class, whose
   * zspage is one frame holding one object, so the object's bytes are exactly one frame.
   */
  allocWhole(frameLimit: number, pinned: boolean): number {
    return this.alloc(FRAME_SIZE, frameLimit, pinned);
  }

  /** An object of the whole-page class: a frame of its own. */
  private allocFrame(cls: SizeClass, len: number, frameLimit: number, pinned: boolean): number {
    if (this.slab.framesUsed + 1 > frameLimit) return NO_HANDLE;
    const f = this.slab.alloc();
    if (f === NO_FRAME) return NO_HANDLE;
    const h = this.newHandle();
    this.hZspage[h] = this.wholeMark;
    this.hSlot[h] = f;
    this.hLen[h] = len;
    this.record(h, cls, len, pinned);
    return h;
  }

  /** The accounting of a new object `h` of `len` bytes in class `cls` (forget undoes it). */
  private record(h: number, cls: SizeClass, len: number, pinned: boolean): void {
    cls.objects++;
    if (pinned) cls.pinned++;
    this.hPinned[h] = pinned ? 1 : 0;
    this.objects++;
    this.bytesStored += len;
    this.bytesAllocated += cls.size;
  }

  /** The accounting of freeing object `h` of class `cls`; the handle goes back to the free list. */
  private forget(h: number, cls: SizeClass): void {
    cls.objects--;
    if (this.hPinned[h] === 1) cls.pinned--;
    this.objects--;
    this.bytesStored -= this.hLen[h]!;
    this.bytesAllocated -= cls.size;
    this.hZspage[h] = undefined;
    this.freeHandles.push(h);
  }

  /** Frees object `h`; an emptied zspage gives its frames back. */
  free(h: number): void {
    const zs = this.zspageOf(h);
    const cls = zs.cls;
    if (zs === this.wholeMark) {
      this.slab.free(this.hSlot[h]!);
      this.forget(h, cls);
      return;
    }
    this.unplace(h, zs);
    this.forget(h, cls);
    if (zs.used === 0) this.releaseZspage(zs);
    this.updateCompactable(cls);
  }

  /** Length of object `h`, bytes. */
  length(h: number): number {
    this.zspageOf(h);
    return this.hLen[h]!;
  }

  isPinned(h: number): boolean {
    return this.hPinned[h] === 1;
  }

  /** Copies `src` (exactly the object's length) into object `h`. */
  write(h: number, src: Uint8Array): void {
    const len = this.hLen[h]!;
    if (src.length !== len) throw new BugIndicatingError(`zpool: write of ${src.length} bytes to a ${len}-byte object`);
    this.location(h);
    const a = this.locA;
    const b = this.locB;
    const firstLen = this.locFirst;
    const bytes = this.slab.bytes;
    if (b < 0) {
      bytes.set(src, a);
    } else {
      bytes.set(src.subarray(0, firstLen), a);
      bytes.set(src.subarray(firstLen), b);
    }
  }

  /**
   * Object `h`'s bytes: a view into the slab when it lies in one frame, else a copy in a scratch
   * buffer that the next read() overwrites. Valid until the next alloc, free, read or compact.
   */
  read(h: number): Uint8Array {
    const len = this.hLen[h]!;
    this.location(h);
    const a = this.locA;
    const b = this.locB;
    const firstLen = this.locFirst;
    const bytes = this.slab.bytes;
    if (b < 0) return bytes.subarray(a, a + len);
    this.spanBuf.set(bytes.subarray(a, a + firstLen), 0);
    this.spanBuf.set(bytes.subarray(b, b + len - firstLen), firstLen);
    return this.spanBuf.subarray(0, len);
  }

  /**
   * Frames the pinned objects would need with their classes fully compacted and nothing else held:
   * a frame limit below this cannot be reached by freeing unpinned objects.
   */
  minPinnedFrames(): number {
    let n = 0;
    for (const cls of this.classes) n += cls.minFrames(cls.pinned);
    return n;
  }

  /** Compacts every class that would free a frame; returns the frames freed. */
  compact(): number {
    if (this.compactable === 0) return 0;
    const before = this.slab.framesUsed;
    for (const cls of this.classes) {
      if (cls.framesHeld() > cls.minFrames()) this.compactClass(cls);
    }
    const freed = before - this.slab.framesUsed;
    this.compactions++;
    this.framesCompacted += freed;
    return freed;
  }

  stats(): ZpoolStats {
    return {
      objects: this.objects,
      bytesStored: this.bytesStored,
      bytesAllocated: this.bytesAllocated,
      framesUsed: this.slab.framesUsed,
      compactableFrames: this.compactable,
      compactions: this.compactions,
      objectsMoved: this.objectsMoved,
      framesCompacted: this.framesCompacted,
    };
  }

  /** Throws BugIndicatingError if the allocator's bookkeeping does not balance. O(objects). */
  checkInvariants(): void {
    const bug = (what: string): never => {
      throw new BugIndicatingError(`zpool invariant: ${what}`);
    };
    let frames = 0;
    let objects = 0;
    let compactable = 0;
    const seen = new Set<number>();
    for (const cls of this.classes) {
      let n = 0;
      let pinned = 0;
      if (cls.whole) {
        if (cls.zspages.size !== 0 || cls.partial.length !== 0) bug("whole-page class with zspages");
        for (let h = 0; h < this.nextHandle; h++) {
          if (this.hZspage[h] !== this.wholeMark) continue;
          if (!this.slab.isAllocated(this.hSlot[h]!)) bug(`frame ${this.hSlot[h]} of whole object ${h} is free`);
          if (this.hLen[h]! > cls.size || this.hLen[h]! < 1) bug(`handle ${h} of ${this.hLen[h]} bytes in the whole-page class`);
          if (this.hPinned[h] === 1) pinned++;
          seen.add(h);
          n++;
        }
        frames += n;
      }
      for (const zs of cls.zspages) {
        if (zs.cls !== cls || zs.frames.length !== cls.framesPerZspage) bug(`class ${cls.size} zspage misfiled`);
        let used = 0;
        zs.slotHandle.forEach((h, slot) => {
          if (h === NO_HANDLE) return;
          used++;
          if (this.hZspage[h] !== zs || this.hSlot[h] !== slot) bug(`handle ${h} misplaced`);
          if (this.hLen[h]! > cls.size || this.hLen[h]! < 1) bug(`handle ${h} of ${this.hLen[h]} bytes in class ${cls.size}`);
          if (this.hPinned[h] === 1) pinned++;
          if (seen.has(h)) bug(`handle ${h} twice`);
          seen.add(h);
        });
        if (used !== zs.used || used === 0) bug(`zspage of class ${cls.size} counts ${zs.used}, holds ${used}`);
        if (zs.freeSlots.length !== cls.perZspage - used) bug("free slot list");
        if ((zs.partialIndex >= 0) !== (used < cls.perZspage)) bug("partial list membership");
        if (zs.partialIndex >= 0 && cls.partial[zs.partialIndex] !== zs) bug("partial index");
        for (const f of zs.frames) if (!this.slab.isAllocated(f)) bug(`frame ${f} of a zspage is free`);
        frames += zs.frames.length;
        n += used;
      }
      if (n !== cls.objects || pinned !== cls.pinned) bug(`class ${cls.size} counts`);
      if (cls.partial.length > cls.zspages.size) bug("partial list too long");
      objects += n;
      compactable += cls.framesHeld() - cls.minFrames();
    }
    if (objects !== this.objects) bug("object count");
    if (frames !== this.slab.framesUsed) bug(`zspages hold ${frames} frames, the slab has ${this.slab.framesUsed} in use`);
    if (compactable !== this.compactable) bug("compactable frames");
  }

  // ---------------------------------------------------------------------------------------------

  private zspageOf(h: number): Zspage {
    const zs = Number.isInteger(h) && h >= 0 ? this.hZspage[h] : undefined;
    if (zs === undefined) throw new BugIndicatingError(`zpool: handle ${h} is not allocated`);
    return zs;
  }

  private newHandle(): number {
    const h = this.freeHandles.pop();
    if (h !== undefined) return h;
    if (this.nextHandle === this.hSlot.length) {
      const grow = <T extends Int32Array | Uint8Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.hSlot = grow(this.hSlot, (n) => new Int32Array(n));
      this.hLen = grow(this.hLen, (n) => new Int32Array(n));
      this.hPinned = grow(this.hPinned, (n) => new Uint8Array(n));
    }
    return this.nextHandle++;
  }

  private place(h: number, zs: Zspage, len: number): void {
    const slot = zs.freeSlots.pop();
    if (slot === undefined) throw new BugIndicatingError("zpool: full zspage on the partial list");
    zs.slotHandle[slot] = h;
    zs.used++;
    if (zs.used === zs.cls.perZspage) this.unlinkPartial(zs);
    this.hZspage[h] = zs;
    this.hSlot[h] = slot;
    this.hLen[h] = len;
  }

  private unplace(h: number, zs: Zspage): void {
    const slot = this.hSlot[h]!;
    zs.slotHandle[slot] = NO_HANDLE;
    zs.freeSlots.push(slot);
    if (zs.used === zs.cls.perZspage) this.linkPartial(zs);
    zs.used--;
  }

  private linkPartial(zs: Zspage): void {
    zs.partialIndex = zs.cls.partial.length;
    zs.cls.partial.push(zs);
  }

  private unlinkPartial(zs: Zspage): void {
    const list = zs.cls.partial;
    const last = list.pop()!;
    if (last !== zs) {
      list[zs.partialIndex] = last;
      last.partialIndex = zs.partialIndex;
    }
    zs.partialIndex = -1;
  }

  private releaseZspage(zs: Zspage): void {
    if (zs.partialIndex >= 0) this.unlinkPartial(zs);
    zs.cls.zspages.delete(zs);
    for (const f of zs.frames) this.slab.free(f);
    zs.reset();
    // Kept for reuse, all of them: a class never holds more zspages than the slab has room for, and
    // whole-page traffic (a zspage per put, released by the exclusive get) then allocates nothing.
    zs.cls.spare.push(zs);
  }

  /** Keeps `compactable` the sum over classes of (frames held - minFrames) after a class changed. */
  private updateCompactable(cls: SizeClass): void {
    const now = cls.framesHeld() - cls.minFrames();
    this.compactable += now - cls.compactable;
    cls.compactable = now;
  }

  /** Where location() put object h's bytes: first part, second part or -1, first part's length. */
  private locA = 0;
  private locB = -1;
  private locFirst = 0;

  /** Sets locA, locB, locFirst for object `h` (fields, not an array: no allocation per access). */
  private location(h: number): void {
    const zs = this.zspageOf(h);
    if (zs === this.wholeMark) {
      this.locA = this.hSlot[h]! * FRAME_SIZE;
      this.locB = -1;
      this.locFirst = this.hLen[h]!;
      return;
    }
    const size = zs.cls.size;
    const off = this.hSlot[h]! * size;
    const i = Math.floor(off / FRAME_SIZE);
    const within = off - i * FRAME_SIZE;
    const len = this.hLen[h]!;
    this.locA = zs.frames[i]! * FRAME_SIZE + within;
    if (within + len <= FRAME_SIZE) {
      this.locB = -1;
      this.locFirst = len;
    } else {
      this.locB = zs.frames[i + 1]! * FRAME_SIZE;
      this.locFirst = FRAME_SIZE - within;
    }
  }

  /** Moves objects from the emptiest zspages into the fullest until at most one is partly used. */
  private compactClass(cls: SizeClass): void {
    const pages = [...cls.zspages].sort((x, y) => x.used - y.used);
    let src = 0;
    let dst = pages.length - 1;
    const tmp = new Uint8Array(cls.size);
    while (src < dst) {
      const from = pages[src]!;
      const to = pages[dst]!;
      if (to.used === cls.perZspage) {
        dst--;
        continue;
      }
      if (from.used === 0) {
        src++;
        continue;
      }
      const slot = from.slotHandle.findIndex((h) => h !== NO_HANDLE);
      const h = from.slotHandle[slot]!;
      const len = this.hLen[h]!;
      tmp.set(this.read(h));
      this.unplace(h, from);
      this.place(h, to, len);
      this.write(h, tmp.subarray(0, len));
      this.objectsMoved++;
      if (from.used === 0) {
        this.releaseZspage(from);
        src++;
      }
    }
    this.updateCompactable(cls);
  }
}
