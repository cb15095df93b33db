import { describe, expect, it } from "vitest";
import { GuestBalloon, MAX_PFNS_PER_REQUEST } from "../../emulator/balloon.ts";
import type { V86BufferChain, V86Cpu, V86VirtioBalloon, V86VirtQueue } from "../../emulator/v86-internals.ts";

const RAM_BYTES = 1 << 20;

/** A CPU and balloon device shaped like v86 0.5.462's: read_blob is mem8.subarray, unchecked. */
function fakeGuest() {
  const mem8 = new Uint8Array(RAM_BYTES);
  const reads: [number, number][] = [];
  const cpu = {
    memory_size: new Uint32Array([RAM_BYTES]),
    read_blob(addr: number, len: number) {
      reads.push([addr, len]);
      return mem8.subarray(addr, addr + len);
    },
  } as unknown as V86Cpu;
  let next: V86BufferChain | undefined;
  const queue = (): V86VirtQueue => ({
    enabled: false,
    pop_request: () => {
      if (!next) throw new Error("no request queued");
      return next;
    },
  });
  let getStatsCalls = 0;
  const device = {
    actual: 0,
    num_pages: 0,
    Inflate() {},
    Deflate() {},
    GetStats() {
      getStatsCalls++;
    },
    virtio: { queues: [queue(), queue(), queue(), queue()] },
  } as unknown as V86VirtioBalloon;
  const balloon = new GuestBalloon(cpu, device);
  const inflated: number[][] = [];
  balloon.listen({ onInflate: (p) => inflated.push(p), onDeflate: () => {} });
  /** What the device does on an inflate notification: pops the request (through the tap). */
  const inflate = (bufs: V86BufferChain["read_buffers"]) => {
    next = { read_buffers: bufs, length_readable: bufs.reduce((n, b) => n + b.len, 0), get_next_blob: () => 0 };
    return device.virtio.queues[0]?.pop_request();
  };
  const putPfns = (addr: number, pfns: number[]) => {
    const v = new DataView(mem8.buffer);
    pfns.forEach((p, i) => v.setUint32(addr + 4 * i, p, true));
  };
  return { balloon, device, inflate, inflated, putPfns, reads, getStatsCalls: () => getStatsCalls };
}

describe("GuestBalloon inflate/deflate tap", () => {
  it("delivers the little-endian u32 frame numbers of every readable buffer (happy path)", () => {
    const g = fakeGuest();
    g.putPfns(0x1000, [10, 11, 12]);
    g.putPfns(0x2000, [0xfffff]);
    g.inflate([
      { addr_low: 0x1000, addr_high: 0, len: 12 },
      { addr_low: 0x2000, addr_high: 0, len: 4 },
    ]);
    expect(g.inflated).toEqual([[10, 11, 12, 0xfffff]]);
    expect(g.balloon.bufferReadFails).toBe(0);
  });

  it("skips and counts a buffer that runs past the end of guest RAM, without reading it", () => {
    const g = fakeGuest();
    g.putPfns(0x1000, [5]);
    g.inflate([
      { addr_low: RAM_BYTES - 4, addr_high: 0, len: 8 },
      { addr_low: 0x1000, addr_high: 0, len: 4 },
    ]);
    expect(g.inflated).toEqual([[5]]);
    expect(g.balloon.bufferReadFails).toBe(1);
    expect(g.reads).toEqual([[0x1000, 4]]);
  });

  it("skips a buffer wholly above guest RAM, one above 4 GiB, and one whose address v86 read as negative", () => {
    const g = fakeGuest();
    g.inflate([
      { addr_low: RAM_BYTES + 0x1000, addr_high: 0, len: 4 },
      { addr_low: 0x1000, addr_high: 1, len: 4 },
      // 0xFFFFF000 read with read32s: a raw subarray(-4096, ...) would read the top of RAM.
      { addr_low: -4096, addr_high: 0, len: 4 },
    ]);
    expect(g.inflated).toEqual([[]]);
    expect(g.balloon.bufferReadFails).toBe(3);
    expect(g.reads).toEqual([]);
  });

  it("skips a buffer whose length v86 read as negative (0x80000000 and up)", () => {
    const g = fakeGuest();
    g.inflate([{ addr_low: 0x1000, addr_high: 0, len: -4 }]);
    expect(g.inflated).toEqual([[]]);
    expect(g.balloon.bufferReadFails).toBe(1);
    expect(g.reads).toEqual([]);
  });

  it("takes at most MAX_PFNS_PER_REQUEST frames from one request, over all of its buffers", () => {
    const g = fakeGuest();
    const half = MAX_PFNS_PER_REQUEST * 2; // bytes of half the cap
    g.inflate([
      { addr_low: 0, addr_high: 0, len: half },
      { addr_low: 0, addr_high: 0, len: half },
      { addr_low: 0, addr_high: 0, len: half },
    ]);
    expect(g.inflated[0]?.length).toBe(MAX_PFNS_PER_REQUEST);
    expect(g.balloon.bufferReadFails).toBe(1);
  });
});

describe("GuestBalloon: what v86's device gets after the tap", () => {
  it("only the buffers that were read, cut to whole frame numbers, so `actual` counts what the listener got", () => {
    const g = fakeGuest();
    const req = g.inflate([
      { addr_low: 0x1000, addr_high: 0, len: 10 },
      { addr_low: -4096, addr_high: 0, len: 4 },
      { addr_low: 0x2000, addr_high: 0, len: -256 },
      { addr_low: 0x3000, addr_high: 0, len: 8 },
    ]);
    expect(req?.read_buffers).toEqual([
      { addr_low: 0x1000, addr_high: 0, len: 8 },
      { addr_low: 0x3000, addr_high: 0, len: 8 },
    ]);
    // v86's inflate handler does new Uint8Array(length_readable): it was 10 + 4 - 256 + 8 < 0, a RangeError through the CPU.
    expect(req?.length_readable).toBe(16);
    expect(g.inflated[0]).toHaveLength(4);
    expect(g.balloon.bufferReadFails).toBe(3);
  });
});

describe("GuestBalloon.stats", () => {
  it("answers undefined at once, without touching the device, while the stats queue is not enabled", async () => {
    const g = fakeGuest();
    expect(await g.balloon.stats(10_000)).toBeUndefined();
    expect(g.getStatsCalls()).toBe(0);
  });

  it("asks the device once the guest's driver has enabled the stats queue", async () => {
    const g = fakeGuest();
    const q = g.device.virtio.queues[2];
    if (q) q.enabled = true;
    g.device.GetStats = (cb) => cb({ MEMFREE: 4096 });
    expect(await g.balloon.stats(10_000)).toEqual({ MEMFREE: 4096 });
  });
});
