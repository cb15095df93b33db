/**
 * A v86 machine's state without its disks, and a restore that puts this run's disks back under it
 * (v86 0.5.462, build/libv86.mjs: CPU.prototype.save_state / restore_state, the IDE drive X and the
 * SyncBuffer z).
 *
 * What v86 does and why tmemu works around it:
 *  - save_state walks every device's get_state. An IDE drive's state (slot 28) is its disk buffer's
 *    get_state, and a SyncBuffer's is [byteLength, the WHOLE disk as a Uint8Array]: a state would
 *    carry every disk, and restore_state would replace each drive's ArrayBuffer by a copy of the
 *    snapshot's (so a run's disk, written in place until then, would silently stop being written).
 *    `captureMachineState` hides the disk contents from the state (the buffer answers
 *    [byteLength, empty] while the state is taken); the caller keeps the disks apart.
 *  - restore_state calls drive.buffer.set_state(slot 28) only when the drive has a buffer, and then
 *    sets drive_connected from it. `restoreMachineState` takes every hard-disk buffer off its drive
 *    before the restore and gives back afterwards the ones this run attaches, with the geometry the
 *    drive was constructed with: the same SyncBuffer objects (emulator/disks.ts's counters wrap
 *    them) over this run's ArrayBuffers.
 *  - Restore needs the same construction: memory size, VGA memory, the same devices (the IDE
 *    channels exist only when hda was given, so every guest that may start from or become a
 *    snapshot is constructed with hda and hdb; a drive that is not used is hidden: no buffer, not
 *    connected, so the kernel never sees it).
 *
 * A boot snapshot is taken with both drives hidden, before any disk is used; after restoring it,
 * the guest picks its disks up with DISK_PICKUP_COMMAND (a libata rescan, then what init does).
 */
import type { V86 } from "v86";
import { BugIndicatingError } from "../hypervisor/errors.ts";
import { machineOf, type V86IdeDriveInternals, type V86SyncBuffer } from "./v86-internals.ts";

export type DriveName = "master" | "slave";
export const DRIVES: readonly DriveName[] = ["master", "slave"];

/** A drive as constructed: its SyncBuffer and geometry (what v86's X constructor computed). */
interface DriveConstruction {
  buffer: V86SyncBuffer;
  sector_count: number;
  cylinder_count: number;
  head_count: number;
  sectors_per_track: number;
}

function primaryOf(emulator: V86): { master: V86IdeDriveInternals; slave: V86IdeDriveInternals } {
  const primary = machineOf(emulator).cpu?.devices?.ide?.primary;
  if (!primary) throw new BugIndicatingError("snapshot: the guest has no primary IDE channel (it must be constructed with hda)");
  return primary;
}

/**
 * Remembers how each hard drive was constructed, then hides the drives that `keep` leaves out (no
 * buffer, not connected). Call in emulator-loaded, before the CPU runs. Returns the constructions,
 * which `restoreMachineState` and `attachDrive` need.
 */
export function prepareDrives(emulator: V86, keep: Record<DriveName, boolean>): Record<DriveName, DriveConstruction> {
  const primary = primaryOf(emulator);
  const out = {} as Record<DriveName, DriveConstruction>;
  for (const name of DRIVES) {
    const d = primary[name];
    if (!d.buffer) throw new BugIndicatingError(`snapshot: IDE ${name} was constructed without a disk`);
    out[name] = { buffer: d.buffer, sector_count: d.sector_count, cylinder_count: d.cylinder_count, head_count: d.head_count, sectors_per_track: d.sectors_per_track };
    if (!keep[name]) hideDrive(d);
  }
  return out;
}

function hideDrive(d: V86IdeDriveInternals): void {
  d.buffer = null;
  d.drive_connected = false;
}

/** Puts a drive back as constructed (buffer, geometry, connected). */
export function attachDrive(emulator: V86, name: DriveName, c: DriveConstruction): void {
  const d = primaryOf(emulator)[name];
  d.buffer = c.buffer;
  d.sector_count = c.sector_count;
  d.cylinder_count = c.cylinder_count;
  d.head_count = c.head_count;
  d.sectors_per_track = c.sectors_per_track;
  d.drive_connected = true;
}

/** Which hard drives are connected now. */
export function connectedDrives(emulator: V86): Record<DriveName, boolean> {
  const primary = primaryOf(emulator);
  return { master: Boolean(primary.master.buffer && primary.master.drive_connected), slave: Boolean(primary.slave.buffer && primary.slave.drive_connected) };
}

/** save_state with every disk's contents left out (see the header). The CPU should be stopped. */
export function captureMachineState(emulator: V86): Uint8Array {
  const machine = machineOf(emulator);
  const primary = machine.cpu?.devices?.ide?.primary;
  const patched: V86SyncBuffer[] = [];
  try {
    for (const name of DRIVES) {
      const b = primary?.[name].buffer;
      if (!b) continue;
      const own = Object.prototype.hasOwnProperty.call(b, "get_state");
      if (own) throw new BugIndicatingError("snapshot: a disk buffer's get_state is already patched");
      b.get_state = () => [b.byteLength, new Uint8Array(0)];
      patched.push(b);
    }
    return new Uint8Array(machine.save_state());
  } finally {
    for (const b of patched) delete (b as Partial<V86SyncBuffer>).get_state;
  }
}

/**
 * restore_state of a state from captureMachineState, then reattaches the drives named in `attach`
 * (from `prepareDrives`) over `disks` (this run's disk bytes, used in place). Drives not named stay
 * hidden. Call in emulator-loaded, before the CPU runs.
 */
export function restoreMachineState(
  emulator: V86,
  state: Uint8Array,
  drives: Record<DriveName, DriveConstruction>,
  attach: Partial<Record<DriveName, ArrayBuffer>>,
): void {
  const machine = machineOf(emulator);
  const primary = primaryOf(emulator);
  for (const name of DRIVES) hideDrive(primary[name]);
  const copy = state.byteOffset === 0 && state.byteLength === state.buffer.byteLength && state.buffer instanceof ArrayBuffer ? state.buffer : state.slice().buffer;
  machine.restore_state(copy);
  for (const name of DRIVES) {
    const bytes = attach[name];
    if (bytes === undefined) continue;
    const c = drives[name];
    if (bytes.byteLength !== c.buffer.byteLength) {
      throw new BugIndicatingError(`snapshot: IDE ${name} disk is ${bytes.byteLength} bytes, constructed with ${c.buffer.byteLength}`);
    }
    c.buffer.buffer = bytes;
    attachDrive(emulator, name, c);
  }
}

/**
 * Run in a guest restored from a boot snapshot once this run's disks are attached. `known` says
 * which of them the snapshot's kernel already uses: a swap disk the snapshot was taken with (a
 * fresh swap image of the same size, swapped on by init and holding no page, so this run's fresh
 * image is equivalent: the kernel reads a slot only after writing it) needs nothing. The others are
 * found by a libata rescan of the primary channel (scsi host0: an EH reset and probe; the sd devices
 * appear a little later). Names follow probe order: a known swap disk (slave) is sda and a
 * rescanned data disk (master) sdb; with nothing known, master before slave. Then the disks are
 * activated as guest-images/init does at boot (ext4 on /data, read-only under tmemu.data=ro;
 * swapon). An empty command: nothing to do.
 */
export function diskPickupCommand(disks: { data: boolean; swap: boolean }, known: { data: boolean; swap: boolean } = { data: false, swap: false }): string {
  if (known.data) throw new BugIndicatingError("snapshot: a boot snapshot never knows the data disk (its size follows the files)");
  const n = (disks.data ? 1 : 0) + (disks.swap ? 1 : 0);
  const lines: string[] = [];
  if (disks.data) {
    const dataDev = known.swap && disks.swap ? "sdb" : "sda";
    lines.push(
      "echo '- - -' >/sys/class/scsi_host/host0/scan",
      `i=0; while [ $(ls /dev/sd? 2>/dev/null | wc -l) -lt ${n} ] && [ $i -lt 1000 ]; do usleep 5000; i=$((i+1)); done`,
      "mode=rw; if grep -q 'tmemu.data=ro' /proc/cmdline; then mode=ro; fi",
      `mount -t ext4 -o "$mode" /dev/${dataDev} /data`,
    );
  }
  if (disks.swap && !known.swap) {
    if (!disks.data) {
      lines.push(
        "echo '- - -' >/sys/class/scsi_host/host0/scan",
        `i=0; while [ $(ls /dev/sd? 2>/dev/null | wc -l) -lt 1 ] && [ $i -lt 1000 ]; do usleep 5000; i=$((i+1)); done`,
      );
    }
    lines.push(`swapon /dev/${disks.data ? "sdb" : "sda"}`);
  }
  return lines.join(" &&\n");
}

/** Run in the guest just before a boot snapshot is taken: no page of it may sit on the swap disk. */
export const SNAPSHOT_SWAP_CHECK = "swapoff /dev/sda && swapon /dev/sda && awk 'NR > 1 && $4 != 0 { bad = 1 } END { exit bad }' /proc/swaps";
