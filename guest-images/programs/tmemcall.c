// SPDX-License-Identifier: MIT
/*
 * tmemcall - raw tmem hypercalls from user space, for the checks of
 * `tmemu validate` that play a guest the host must not trust.
 *
 *   tmemcall newpool FLAGS [UUID]        TMEM_NEW_POOL; prints pool=ID
 *   tmemcall put POOL OID INDEX BYTE     puts a page of BYTE; prints result=R
 *   tmemcall get POOL OID INDEX          gets into a page of 0x5a; prints
 *                                        result=R byte=B uniform=0|1
 *   tmemcall hostile UUID INO PAGES BYTE joins the shared pool UUID and puts
 *                                        a page of BYTE at (INO, 0..PAGES-1);
 *                                        prints puts= hits= eperm= other=
 *   tmemcall fuzz SECONDS SEED FRAMES    random ops, pool ids, handles,
 *                                        arguments and frames (its own, the
 *                                        kernel's below FRAMES, outside RAM)
 *                                        for SECONDS; prints calls= and
 *                                        results by kind
 *
 * The calls share the guest kernel's tmem client: no probe (a probe would
 * reset the kernel's pools). The fuzzer never sends TMEM_PROBE nor destroys
 * a pool it did not create, and gets only into its own frames, so the guest
 * it runs in survives it; everything else is fair game. Uses ioperm(2) and
 * /proc/self/pagemap (root only). Op numbers as in include/linux/tmem_abi.h.
 */
#include "nolibc.h"
#include "parse.h"
#include "pagemap.h"

#define TMEM_PORT		0x700
#define TMEM_NEW_POOL		1
#define TMEM_DESTROY_POOL	2
#define TMEM_PUT_PAGE		4
#define TMEM_GET_PAGE		5
#define TMEM_FLUSH_PAGE		6
#define TMEM_FLUSH_OBJECT	7
#define TMEM_FLUSH_RANGE	11
#define TMEM_PROBE		64
#define TMEM_POOL_SHARED	2
#define TMEM_EPERM		(-1)

#define NFRAMES 16

struct regs {
	unsigned int eax, ebx, ecx, esi, edi;
};

static unsigned char frames[NFRAMES][4096] __attribute__((aligned(4096)));
static unsigned int pfns[NFRAMES];

static int hcall(unsigned int eax, unsigned int ebx, unsigned int ecx, unsigned int esi, unsigned int edi)
{
	struct regs r = { eax, ebx, ecx, esi, edi };

	asm volatile("outl %%eax, %%dx"
		     : "+a"(r.eax), "+b"(r.ebx), "+c"(r.ecx), "+S"(r.esi), "+D"(r.edi)
		     : "d"((unsigned short)TMEM_PORT)
		     : "memory");
	return (int)r.eax;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A uuid as 4 little-endian words of its 16 bytes (tmem_abi.h); 0 on success. */
static int uuid_words(const char *s, unsigned int w[4])
{
	int n = 0;

	w[0] = w[1] = w[2] = w[3] = 0;
	for (; *s && n < 32; s++) {
		int hi, lo;

		if (*s == '-')
			continue;
		hi = hexval(s[0]);
		lo = s[1] ? hexval(s[1]) : -1;
		if (hi < 0 || lo < 0)
			return -1;
		w[n / 8] |= (unsigned int)(hi << 4 | lo) << (8 * ((n / 2) % 4));
		n += 2;
		s++;
	}
	return n == 32 ? 0 : -1;
}

static int map_frames(void)
{
	int i;

	/* Locked, so the frame numbers stay true while the host reads and writes them */
	my_syscall2(__NR_mlock, frames, sizeof(frames));
	for (i = 0; i < NFRAMES; i++) {
		frames[i][0] = (unsigned char)i;
		pfns[i] = pfn_of(frames[i]);
		if (!pfns[i]) {
			printf("tmemcall: no frame number in /proc/self/pagemap\n");
			return -1;
		}
	}
	return 0;
}

static unsigned int rng;

static unsigned int rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

/* @ram: the guest's RAM in pages (the kernel's frames are below it) */
static int fuzz(unsigned long seconds, unsigned long seed, unsigned int ram)
{
	unsigned long calls = 0, ok = 0, hits = 0, negative = 0, eperm = 0;
	unsigned int mine = 0;
	struct timeval t0, t;

	rng = (unsigned int)seed | 1;
	gettimeofday(&t0, NULL);
	for (;;) {
		unsigned int kind = rnd() % 16, pool = rnd() % 18, eax, ebx, ecx, esi, edi, frame;
		int ret;

		if ((calls & 255) == 0) {
			gettimeofday(&t, NULL);
			if ((unsigned long)(t.tv_sec - t0.tv_sec) >= seconds)
				break;
		}
		/* Frames: mostly ours, else the kernel's, else outside RAM or in the VGA hole */
		switch (rnd() % 8) {
		case 0: case 1: case 2: case 3: case 4:
			frame = pfns[rnd() % NFRAMES];
			break;
		case 5: case 6:
			frame = rnd() % ram;
			break;
		default:
			frame = rnd() % 3 == 0 ? 0xa0 + rnd() % 0x20 : ram + rnd() % 100000;
			break;
		}
		ebx = rnd() % 4 == 0 ? rnd() : rnd() % 8;
		ecx = rnd() % 8 == 0 ? rnd() : 0;
		esi = rnd() % 4 == 0 ? rnd() : rnd() % 32;
		edi = frame;
		switch (kind) {
		case 0: case 1: case 2: case 3:
			eax = TMEM_PUT_PAGE;
			frames[rnd() % NFRAMES][rnd() % 4096] = (unsigned char)rnd();
			break;
		case 4: case 5: case 6:
			eax = TMEM_GET_PAGE;
			edi = pfns[rnd() % NFRAMES]; /* the kernel's frames are not written */
			break;
		case 7:
			eax = TMEM_FLUSH_PAGE;
			break;
		case 8:
			eax = TMEM_FLUSH_OBJECT;
			break;
		case 9:
			eax = TMEM_FLUSH_RANGE;
			edi = rnd() % 4 == 0 ? rnd() : rnd() % 600;
			break;
		case 10:
			eax = TMEM_NEW_POOL | (rnd() % 4 == 0 ? rnd() & 0xffff : rnd() % 4) << 16;
			if (rnd() % 2) {
				/* the shared pool of the root filesystem's uuid, or any */
				ebx = rnd();
				ecx = rnd();
				esi = rnd();
				edi = rnd();
			}
			break;
		case 11:
			/* Destroy only a pool this program created (ids in `mine`) */
			if (!mine)
				continue;
			do
				pool = rnd() % 16;
			while (!(mine & 1u << pool));
			eax = TMEM_DESTROY_POOL;
			mine &= ~(1u << pool);
			break;
		default:
			/* Any EAX at all but the probe and destroy: unknown ops, bad arguments */
			eax = rnd();
			if ((eax & 0xff) == TMEM_PROBE || (eax & 0xff) == TMEM_DESTROY_POOL ||
			    (eax & 0xff) == TMEM_GET_PAGE)
				eax = (eax & ~0xffu) | 3;
			pool = (eax >> 8) & 0xff;
			eax &= ~0xff00u;
			break;
		}
		if (kind != 10)
			eax |= (pool & 0xff) << 8;
		ret = hcall(eax, ebx, ecx, esi, edi);
		calls++;
		if (kind == 10 && ret >= 0 && ret < 16)
			mine |= 1u << ret;
		if (ret == 1)
			hits++;
		if (ret >= 0)
			ok++;
		else if (ret == TMEM_EPERM)
			eperm++;
		else
			negative++;
	}
	/* Leave nothing behind: destroy the pools this program created */
	for (unsigned int p = 0; p < 16; p++)
		if (mine & 1u << p)
			hcall(TMEM_DESTROY_POOL | p << 8, 0, 0, 0, 0);
	printf("tmemcall: fuzz calls=%lu ok=%lu hits=%lu eperm=%lu errors=%lu\n", calls, ok, hits, eperm, negative);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int w[4] = { 0, 0, 0, 0 };

	if (argc < 2) {
		printf("usage: tmemcall newpool|put|get|hostile|fuzz ...\n");
		return 2;
	}
	if (my_syscall3(__NR_ioperm, TMEM_PORT, 4, 1) != 0) {
		printf("tmemcall: ioperm failed (not root?)\n");
		return 2;
	}
	if (map_frames())
		return 1;

	if (!strcmp(argv[1], "newpool") && argc >= 3) {
		unsigned int flags = (unsigned int)parse_num(argv[2]);

		if (argc >= 4 && uuid_words(argv[3], w)) {
			printf("tmemcall: bad uuid %s\n", argv[3]);
			return 2;
		}
		printf("pool=%d\n", hcall(TMEM_NEW_POOL | flags << 16, w[0], w[1], w[2], w[3]));
		return 0;
	}
	if (!strcmp(argv[1], "put") && argc >= 6) {
		unsigned int pool = (unsigned int)parse_num(argv[2]);

		memset(frames[0], (int)parse_num(argv[5]), 4096);
		printf("result=%d\n", hcall(TMEM_PUT_PAGE | pool << 8, (unsigned int)parse_num(argv[3]), 0,
					   (unsigned int)parse_num(argv[4]), pfns[0]));
		return 0;
	}
	if (!strcmp(argv[1], "get") && argc >= 5) {
		unsigned int pool = (unsigned int)parse_num(argv[2]);
		int ret, i, uniform = 1;

		memset(frames[0], 0x5a, 4096);
		ret = hcall(TMEM_GET_PAGE | pool << 8, (unsigned int)parse_num(argv[3]), 0,
			    (unsigned int)parse_num(argv[4]), pfns[0]);
		for (i = 1; i < 4096; i++)
			if (frames[0][i] != frames[0][0])
				uniform = 0;
		printf("result=%d byte=%u uniform=%d\n", ret, frames[0][0], uniform);
		return 0;
	}
	if (!strcmp(argv[1], "hostile") && argc >= 6) {
		unsigned long pages = parse_num(argv[4]), i, hits = 0, eperm = 0, other = 0;
		unsigned int ino = (unsigned int)parse_num(argv[3]);
		int pool;

		if (uuid_words(argv[2], w)) {
			printf("tmemcall: bad uuid %s\n", argv[2]);
			return 2;
		}
		pool = hcall(TMEM_NEW_POOL | TMEM_POOL_SHARED << 16, w[0], w[1], w[2], w[3]);
		if (pool < 0) {
			printf("tmemcall: cannot join the shared pool: %d\n", pool);
			return 1;
		}
		memset(frames[0], (int)parse_num(argv[5]), 4096);
		for (i = 0; i < pages; i++) {
			int ret = hcall(TMEM_PUT_PAGE | (unsigned int)pool << 8, ino, 0, (unsigned int)i, pfns[0]);

			if (ret == 1)
				hits++;
			else if (ret == TMEM_EPERM)
				eperm++;
			else
				other++;
		}
		printf("tmemcall: hostile pool=%d puts=%lu hits=%lu eperm=%lu other=%lu\n", pool, pages, hits, eperm, other);
		return 0;
	}
	if (!strcmp(argv[1], "fuzz") && argc >= 5)
		return fuzz(parse_num(argv[2]), parse_num(argv[3]), (unsigned int)parse_num(argv[4]) | 1);
	printf("tmemcall: bad arguments\n");
	return 2;
}
