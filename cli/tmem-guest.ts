/**
 * Booting a guest wired to a tmem store: the composition of emulator/ (the v86 Guest) and
 * hypervisor/ (the device, the store). Used by validate, run and bench.
 */
import { Guest, type GuestBootOptions, type GuestImages } from "../emulator/guest.ts";
import { parseTmemStats, parseVmstat, TMEM_STATS_COMMAND, VMSTAT_COMMAND, type TmemGuestStats, type VmStats } from "../hypervisor/guest/stats.ts";
import { TmemDevice } from "../hypervisor/tmem/device.ts";
import type { CreateClientOptions, TmemStore } from "../hypervisor/tmem/store.ts";

export interface TmemGuestOptions extends Omit<GuestBootOptions, "images" | "beforeStart"> {
  images: GuestImages;
  name: string;
  /** The store to attach to; none boots the guest without a tmem device (plain v86). */
  store?: TmemStore;
  client?: CreateClientOptions;
}

export interface TmemGuest {
  guest: Guest;
  device: TmemDevice | undefined;
  dispose(): Promise<void>;
}

export async function bootTmemGuest(opts: TmemGuestOptions): Promise<TmemGuest> {
  let device: TmemDevice | undefined;
  const { store, client, ...boot } = opts;
  try {
    const guest = await Guest.boot({
      ...boot,
      beforeStart: (g) => {
        if (store) device = new TmemDevice(store, g, opts.name, client ?? {});
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

export async function guestTmemStats(guest: Guest): Promise<TmemGuestStats | undefined> {
  return parseTmemStats(await guest.runChecked(TMEM_STATS_COMMAND, { timeoutMs: 60_000 }));
}

export async function guestVmstat(guest: Guest): Promise<VmStats> {
  return parseVmstat(await guest.runChecked(VMSTAT_COMMAND, { timeoutMs: 60_000 }));
}
