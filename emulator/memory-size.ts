/**
 * The guest RAM sizes tmemu can boot, known before any image exists, so that the CLI refuses a bad
 * --memory-mib before it resolves, builds or boots anything (Guest.boot checks again, as a guard).
 *
 * v86 loads the initrd at a fixed guest-physical 64 MiB and shows the top 16 MiB of memory as
 * reserved in the e820 map (DESIGN.md); the kernel needs room above the initrd to unpack it and
 * run /init. The initramfs build refuses an initrd larger than INITRD_MAX_MIB, so the smallest
 * size is a constant rather than a function of the image.
 */
import { TmemuError } from "../hypervisor/user-errors.ts";

const MIB = 1024 * 1024;

/** v86 loads the initrd at this fixed guest-physical address. */
export const INITRD_LOAD_ADDRESS = 64 * MIB;
/** v86 shows the top 16 MiB of memory as reserved in the e820 map. */
export const RESERVED_TOP_MIB = 16;
/** Room the kernel needs above the initrd to unpack it and run /init. */
const WORKING_ROOM_MIB = 8;
/** The largest initrd the guest build may produce (today's is about 2.1 MiB: busybox and two programs). */
export const INITRD_MAX_MIB = 4;
/** v86 takes at most 2 GiB of guest RAM. */
export const MAX_GUEST_MEMORY_MIB = 2048;

/** The smallest memory size that fits v86's fixed initrd placement for an initrd of this size. */
export function minimumMemoryMib(initrdBytes: number): number {
  return INITRD_LOAD_ADDRESS / MIB + Math.ceil(initrdBytes / MIB) + RESERVED_TOP_MIB + WORKING_ROOM_MIB;
}

/** The smallest guest RAM tmemu boots: room for the largest initrd the build allows. */
export const MIN_GUEST_MEMORY_MIB = minimumMemoryMib(INITRD_MAX_MIB * MIB);

/** Throws MEMORY_TOO_SMALL (a usage error) unless `memoryMib` is a whole number in MIN..MAX. */
export function checkGuestMemoryMib(memoryMib: number): void {
  if (Number.isInteger(memoryMib) && memoryMib >= MIN_GUEST_MEMORY_MIB && memoryMib <= MAX_GUEST_MEMORY_MIB) return;
  throw new TmemuError(
    "MEMORY_TOO_SMALL",
    `guest memory ${memoryMib} MiB is outside ${MIN_GUEST_MEMORY_MIB}..${MAX_GUEST_MEMORY_MIB} MiB`,
    `v86 loads the initrd (up to ${INITRD_MAX_MIB} MiB) at ${INITRD_LOAD_ADDRESS / MIB} MiB and reserves the top ${RESERVED_TOP_MIB} MiB: ` +
      `use --memory-mib ${MIN_GUEST_MEMORY_MIB} or more`,
  );
}

/** Throws IMAGE_MISSING when an initrd is larger than the memory range allows for. */
export function checkInitrdSize(initrdBytes: number): void {
  if (initrdBytes <= INITRD_MAX_MIB * MIB) return;
  throw new TmemuError(
    "IMAGE_MISSING",
    `the initrd is ${(initrdBytes / MIB).toFixed(1)} MiB, more than the ${INITRD_MAX_MIB} MiB the guest memory range allows for`,
    "raise INITRD_MAX_MIB in emulator/memory-size.ts (it raises the smallest --memory-mib), or make the initramfs smaller, then `tmemu images --rebuild`",
  );
}
