import { describe, expect, it } from "vitest";
import {
  decodePfns,
  toBalloonStats,
  VIRTIO_BALLOON_S_AVAIL,
  VIRTIO_BALLOON_S_CACHES,
  VIRTIO_BALLOON_S_HTLB_PGFAIL,
  VIRTIO_BALLOON_S_MEMTOT,
  VIRTIO_BALLOON_S_SWAP_IN,
  VIRTIO_BALLOON_STAT_NAMES,
} from "../../../hypervisor/balloon/stats.ts";

const MIB = 1 << 20;

describe("virtio-balloon stats tags", () => {
  it("numbers tags as the virtio spec (5.5.6.3) and names them as v86 does", () => {
    expect([VIRTIO_BALLOON_S_SWAP_IN, VIRTIO_BALLOON_S_MEMTOT, VIRTIO_BALLOON_S_AVAIL, VIRTIO_BALLOON_S_CACHES]).toEqual([0, 5, 6, 7]);
    expect(VIRTIO_BALLOON_STAT_NAMES[VIRTIO_BALLOON_S_MEMTOT]).toBe("MEMTOT");
    expect(VIRTIO_BALLOON_STAT_NAMES[VIRTIO_BALLOON_S_HTLB_PGFAIL]).toBe("HTLB_PGFAIL");
    expect(VIRTIO_BALLOON_STAT_NAMES).toHaveLength(10);
  });
});

describe("toBalloonStats", () => {
  it("converts bytes to KiB and swap bytes to 4 KiB pages; fault counts stay counts", () => {
    expect(
      toBalloonStats({
        SWAP_IN: 8192,
        SWAP_OUT: 40960,
        MAJFLT: 3,
        MINFLT: 1000,
        MEMFREE: 10 * MIB,
        MEMTOT: 100 * MIB,
        AVAIL: 50 * MIB,
        CACHES: 30 * MIB,
      }),
    ).toEqual({
      memFreeKib: 10240,
      memAvailableKib: 51200,
      cachesKib: 30720,
      memTotalKib: 102400,
      swapInPages: 2,
      swapOutPages: 10,
      majorFaults: 3,
      minorFaults: 1000,
    });
  });

  it("reads missing counters as 0 and a missing MEMFREE as AVAIL", () => {
    const s = toBalloonStats({ MEMTOT: 64 * MIB, AVAIL: 32 * MIB });
    expect(s).toMatchObject({ memFreeKib: 32768, swapInPages: 0, majorFaults: 0, cachesKib: 0 });
  });

  it("returns undefined without MEMTOT or AVAIL, or when the gauges do not fit together", () => {
    expect(toBalloonStats({})).toBeUndefined();
    expect(toBalloonStats({ MEMTOT: 64 * MIB })).toBeUndefined();
    expect(toBalloonStats({ AVAIL: 64 * MIB })).toBeUndefined();
    expect(toBalloonStats({ MEMTOT: 0, AVAIL: 0 })).toBeUndefined();
    expect(toBalloonStats({ MEMTOT: 64 * MIB, AVAIL: 65 * MIB })).toBeUndefined();
    expect(toBalloonStats({ MEMTOT: 64 * MIB, AVAIL: 1, MEMFREE: 65 * MIB })).toBeUndefined();
    expect(toBalloonStats({ MEMTOT: Number.NaN, AVAIL: 1 })).toBeUndefined();
    expect(toBalloonStats({ MEMTOT: 64 * MIB, AVAIL: -1 })).toBeUndefined();
  });
});

describe("decodePfns", () => {
  it("reads little-endian 32-bit frame numbers and reports trailing bytes", () => {
    const bytes = new Uint8Array([0x01, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12, 0xff, 0xff, 0xff, 0xff, 0xaa]);
    const { pfns, trailingBytes } = decodePfns(bytes);
    expect([...pfns]).toEqual([1, 0x12345678, 0xffffffff]);
    expect(trailingBytes).toBe(1);
  });

  it("respects the view's offset into a larger buffer", () => {
    const backing = new Uint8Array([9, 9, 9, 2, 0, 0, 0]);
    expect([...decodePfns(backing.subarray(3)).pfns]).toEqual([2]);
  });
});
