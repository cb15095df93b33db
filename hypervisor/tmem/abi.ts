/**
 * The tmemu tmem hypercall ABI, host side.
 *
 * Mirror of include/linux/tmem_abi.h, which the kernel patch series in patches/ adds to the guest
 * tree; test/hypervisor/tmem/abi-header.test.ts reads the header out of the patch and fails when a
 * name or number here disagrees with it. See that header for the register layout and for where and
 * why this ABI differs from Xen's public/tmem.h.
 */

export const TMEM_ABI_VERSION = 1;
/** "TMEM" read as a little-endian 32-bit word: the answer to TMEM_PROBE, never an op number. */
export const TMEM_MAGIC = 0x4d454d54;
export const TMEM_IO_PORT = 0x0700;
/**
 * The PCI function that announces the device (tmem_abi.h): the frontend looks for it before any
 * port access, and BAR 0 is the I/O port range starting at TMEM_IO_PORT. The ids are tmemu's own,
 * not assigned by the PCI-SIG; nothing else is expected to use them.
 */
export const TMEM_PCI_VENDOR_ID = 0x7e70;
export const TMEM_PCI_DEVICE_ID = 0x0001;

export const TMEM_PAGE_SHIFT = 12;
export const TMEM_PAGE_SIZE = 1 << TMEM_PAGE_SHIFT;
/** Pool ids per client (guest). */
export const TMEM_MAX_POOLS = 16;
/** Pages one TMEM_FLUSH_RANGE may name (a 2 MiB folio). */
export const TMEM_FLUSH_RANGE_MAX = 512;

export const TMEM_EAX_OP_SHIFT = 0;
export const TMEM_EAX_POOL_SHIFT = 8;
export const TMEM_EAX_ARG_SHIFT = 16;

export const TMEM_NEW_POOL = 1;
export const TMEM_DESTROY_POOL = 2;
export const TMEM_PUT_PAGE = 4;
export const TMEM_GET_PAGE = 5;
export const TMEM_FLUSH_PAGE = 6;
export const TMEM_FLUSH_OBJECT = 7;
/** tmemu's: flush pages ESI .. ESI + EDI - 1 of one object (1 <= EDI <= TMEM_FLUSH_RANGE_MAX). */
export const TMEM_FLUSH_RANGE = 11;
export const TMEM_PROBE = 64;

export const TMEM_POOL_PERSIST = 0x1;
export const TMEM_POOL_SHARED = 0x2;

export const TMEM_OBJECT_RESERVED_LO = 0xffffffff;
export const TMEM_OBJECT_RESERVED_HI = 0xffffffff;
export const TMEM_INDEX_RESERVED = 0xffffffff;

export const TMEM_MISS = 0;
export const TMEM_HIT = 1;
export const TMEM_EPERM = -1;
export const TMEM_ENOENT = -2;
export const TMEM_EFAULT = -14;
export const TMEM_EBUSY = -16;
export const TMEM_EINVAL = -22;
export const TMEM_EMFILE = -24;
export const TMEM_ENOSPC = -28;
export const TMEM_ENOSYS = -38;
export const TMEM_EPROTO = -71;
/** The host reset the client (all its pools are gone): the guest must TMEM_PROBE again. */
export const TMEM_E_RESET = -104;

/** Error results by name, for metrics and messages. */
export const TMEM_ERRORS = {
  EPERM: TMEM_EPERM,
  ENOENT: TMEM_ENOENT,
  EFAULT: TMEM_EFAULT,
  EBUSY: TMEM_EBUSY,
  EINVAL: TMEM_EINVAL,
  EMFILE: TMEM_EMFILE,
  ENOSPC: TMEM_ENOSPC,
  ENOSYS: TMEM_ENOSYS,
  EPROTO: TMEM_EPROTO,
  E_RESET: TMEM_E_RESET,
} as const;
export type TmemErrorName = keyof typeof TMEM_ERRORS;

/** Guest physical hole that must never be read or written (legacy VGA and option ROMs). */
export const GUEST_HOLE_START = 0xa0000;
export const GUEST_HOLE_END = 0xc0000;
