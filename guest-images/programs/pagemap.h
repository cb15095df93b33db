/* SPDX-License-Identifier: MIT */
/*
 * Shared by the raw hypercall tools (hyperbench, tmemcall): the guest-physical
 * frame of a page of this process, to name it in a hypercall. Include after
 * nolibc.h.
 */
#ifndef TMEMU_PAGEMAP_H
#define TMEMU_PAGEMAP_H

/*
 * pfn_of - the frame number of the page at @addr
 * @addr: an address in a page of this process, touched so it is present
 *
 * Reads /proc/self/pagemap (bits 0-54 are the frame, bit 63 says present).
 *
 * Return: the frame number, or 0 if the page is not present or pagemap
 * cannot be read.
 */
static inline unsigned int pfn_of(void *addr)
{
	unsigned int entry[2] = { 0, 0 };
	int fd = open("/proc/self/pagemap", O_RDONLY, 0);

	if (fd < 0)
		return 0;
	lseek(fd, (off_t)((unsigned long)addr / 4096 * 8), SEEK_SET);
	if (read(fd, entry, 8) != 8 || !(entry[1] & 0x80000000u))
		entry[0] = 0;
	close(fd);
	return entry[0];
}

#endif /* TMEMU_PAGEMAP_H */
