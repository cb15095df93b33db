/**
 * Booting a guest wired to a tmem store: the composition of emulator/ (the v86 Guest) and
 * hypervisor/ (the device, the store). Used by validate, run and bench.
 */
import { Guest, type GuestBootOptions, type GuestImages } from "../emulator/guest.ts";
import { bootGuest, type GuestApi } from "../emulator/threaded-guest.ts";
import { parseTmemStats, parseVmstat, TMEM_STATS_COMMAND, VMSTAT_COMMAND, type TmemGuestStats, type VmStats } from "../hypervisor/guest/stats.ts";
import type { HostedGuest } from "../hypervisor/host.ts";
import { TmemDevice } from "../hypervisor/tmem/device.ts";
import type { CreateClientOptions, TmemStore } from "../hypervisor/tmem/store.ts";
import { TmemuError } from "../hypervisor/user-errors.ts";

export interface TmemGuestOptions extends Omit<GuestBootOptions, "images" | "beforeStart"> {
  images: GuestImages;
  name: string;
  /** The store to attach to; none boots the guest without a tmem device (plain v86). */
  store?: TmemStore;
  client?: CreateClientOptions;
  /** Called with the device right after it is created, before the guest runs (authorise here). */
  onDevice?: (device: TmemDevice) => void;
}

export interface TmemGuest<G extends GuestApi = Guest> {
  guest: G;
  device: TmemDevice | undefined;
  dispose(): Promise<void>;
}

export async function bootTmemGuest(opts: TmemGuestOptions): Promise<TmemGuest> {
  return wire(opts, (boot) => Guest.boot(boot));
}

/**
 * Like bootTmemGuest, with the guest's vCPU in a worker thread of its own when `threads` is true
 * (emulator/threaded-guest.ts; the device and its store stay in this thread and answer the guest's
 * hypercalls synchronously), else in this thread.
 */
export async function bootTmemGuestOn(opts: TmemGuestOptions & { threads: boolean; hangTimeoutMs?: number }): Promise<TmemGuest<GuestApi>> {
  const { threads, hangTimeoutMs, ...rest } = opts;
  return wire(rest, (boot) => bootGuest({ ...boot, ...(hangTimeoutMs !== undefined ? { hangTimeoutMs } : {}) }, threads));
}

async function wire<G extends GuestApi>(opts: TmemGuestOptions, boot: (o: GuestBootOptions & { beforeStart: (g: G) => void }) => Promise<G>): Promise<TmemGuest<G>> {
  let device: TmemDevice | undefined;
  const { store, client, onDevice, ...rest } = opts;
  try {
    const guest = await boot({
      ...rest,
      beforeStart: (g) => {
        if (store) {
          device = new TmemDevice(store, g, opts.name, client ?? {});
          onDevice?.(device);
        }
      },
    });
    return {
      guest,
      device,
      async dispose() {
        await guest.dispose();
        device?.dispose();
      },
    };
  } catch (err) {
    device?.dispose();
    throw err;
  }
}

export async function guestTmemStats(guest: GuestApi): Promise<TmemGuestStats | undefined> {
  return parseTmemStats(await guest.runChecked(TMEM_STATS_COMMAND, { timeoutMs: 60_000 }));
}

/** Guest RAM as Linux sees it (MemTotal), in MiB. */
export async function guestMemTotalMib(guest: GuestApi): Promise<number> {
  return parseMemTotalMib(guest.name, await guest.runChecked("sed -n 's/^MemTotal: *\\([0-9]*\\) kB/\\1/p' /proc/meminfo"));
}

/** MemTotal in kB (the sed above prints only the number) to MiB; anything else is an error, never 0. */
export function parseMemTotalMib(guestName: string, out: string): number {
  const text = out.trim();
  if (!/^\d+$/.test(text) || Number(text) < 1024) {
    throw new TmemuError("GUEST_COMMAND_FAILED", `${guestName}: cannot read MemTotal from /proc/meminfo: got ${JSON.stringify(abbreviate(out))}`, "the guest's /proc/meminfo should have a line `MemTotal: N kB`");
  }
  return Math.floor(Number(text) / 1024);
}

export async function guestVmstat(guest: GuestApi): Promise<VmStats> {
  return parseVmstat(await guest.runChecked(VMSTAT_COMMAND, { timeoutMs: 60_000 }));
}

/** The v86 Guest as the memory host sees it. */
export function hostedGuest(guest: GuestApi): HostedGuest {
  const memory = guest.memory;
  return { name: guest.name, ramMib: guest.memoryMib, memory, balloon: guest.balloon };
}

/** OOM kills the guest kernel reported so far (its log, via dmesg). */
export async function oomKills(guest: GuestApi): Promise<number> {
  return parseOomCount(guest.name, await guest.runChecked("dmesg | grep -c 'Out of memory: Killed process' || true", { timeoutMs: 60_000 }));
}

/** grep -c's count (0 included); anything else (dmesg missing, an error text) is an error, never 0. */
export function parseOomCount(guestName: string, out: string): number {
  const text = out.trim();
  if (!/^\d+$/.test(text)) {
    throw new TmemuError("GUEST_COMMAND_FAILED", `${guestName}: cannot count OOM kills: \`dmesg | grep -c\` printed ${JSON.stringify(abbreviate(out))}`, "the guest's busybox needs dmesg and grep");
  }
  return Number(text);
}

function abbreviate(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}...` : s;
}
