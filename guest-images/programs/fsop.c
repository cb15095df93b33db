// SPDX-License-Identifier: MIT
/*
 * fsop - file operations that busybox lacks, for the cleancache coherence
 * check of `tmemu validate`: each changes a file behind the page cache.
 *
 *   fsop punch FILE OFFSET LENGTH      fallocate(PUNCH_HOLE | KEEP_SIZE):
 *                                      the range reads back as zeros
 *   fsop collapse FILE OFFSET LENGTH   fallocate(COLLAPSE_RANGE): the range
 *                                      is removed and what followed it moves
 *                                      down (OFFSET, LENGTH: whole fs blocks)
 *   fsop dwrite FILE OFFSET LENGTH BYTE
 *                                      one O_DIRECT write of LENGTH bytes,
 *                                      all BYTE (0..255), at OFFSET (OFFSET
 *                                      and LENGTH multiples of 4096, LENGTH
 *                                      at most 1 MiB)
 *
 * Prints nothing and exits 0 on success; prints "fsop: <what>: errno N"
 * and exits 1 when the system call fails, 2 on bad usage.
 *
 * Built static for i386 with the kernel's tools/include/nolibc: no libc.
 */
#include "nolibc.h"
#include "parse.h"
#include <linux/falloc.h>

#ifndef O_DIRECT
#define O_DIRECT	040000	/* asm-generic/fcntl.h, which x86 uses */
#endif

#define __NR_fallocate_i386	324	/* i386: sys_ia32_fallocate, 64-bit values as lo, hi */
#define DIO_MAX			(1024u * 1024u)

static unsigned char dio_buf[DIO_MAX] __attribute__((aligned(4096)));

static int usage(void)
{
	printf("usage: fsop punch|collapse FILE OFFSET LENGTH | fsop dwrite FILE OFFSET LENGTH BYTE\n");
	return 2;
}

static int fail(const char *what, long ret)
{
	printf("fsop: %s: errno %ld\n", what, -ret);
	return 1;
}

static int do_fallocate(const char *file, int mode, unsigned long off, unsigned long len)
{
	long ret;
	int fd = open(file, O_RDWR, 0);

	if (fd < 0)
		return fail("open", -errno);
	/* 32-bit values: the high words are 0 */
	ret = my_syscall6(__NR_fallocate_i386, fd, mode, off, 0, len, 0);
	close(fd);
	if (ret < 0)
		return fail("fallocate", ret);
	return 0;
}

static int do_dwrite(const char *file, unsigned long off, unsigned long len, unsigned long byte)
{
	unsigned long i;
	long ret;
	int fd;

	if (off % 4096 || len % 4096 || len == 0 || len > DIO_MAX || byte > 255)
		return usage();
	for (i = 0; i < len; i++)
		dio_buf[i] = (unsigned char)byte;
	fd = open(file, O_WRONLY | O_DIRECT, 0);
	if (fd < 0)
		return fail("open O_DIRECT", -errno);
	ret = lseek(fd, (off_t)off, SEEK_SET);
	if (ret < 0) {
		close(fd);
		return fail("lseek", -errno);
	}
	ret = write(fd, dio_buf, len);
	close(fd);
	if (ret < 0)
		return fail("write", -errno);
	if ((unsigned long)ret != len) {
		printf("fsop: short O_DIRECT write: %ld of %lu bytes\n", ret, len);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long off, len, byte = 0;
	int ok1, ok2, ok3 = 1;

	if (argc < 5)
		return usage();
	off = parse_ulong(argv[3], &ok1);
	len = parse_ulong(argv[4], &ok2);
	if (argc > 5)
		byte = parse_ulong(argv[5], &ok3);
	if (!ok1 || !ok2 || !ok3)
		return usage();
	if (!strcmp(argv[1], "punch") && argc == 5)
		return do_fallocate(argv[2], FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	if (!strcmp(argv[1], "collapse") && argc == 5)
		return do_fallocate(argv[2], FALLOC_FL_COLLAPSE_RANGE, off, len);
	if (!strcmp(argv[1], "dwrite") && argc == 6)
		return do_dwrite(argv[2], off, len, byte);
	return usage();
}
