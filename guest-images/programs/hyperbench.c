// SPDX-License-Identifier: MIT
/*
 * hyperbench - port-I/O hypercalls from user space, for tests and benchmarks.
 *
 *   hyperbench bare PORT N        N x "outl" to PORT with EAX = 0..N-1 (a bare trap)
 *   hyperbench echo PORT VALUE    one "outl" with EAX = VALUE; prints EAX after it
 *   hyperbench probe PORT         TMEM_PROBE; prints EAX (magic), EBX (version), ECX (status)
 *   hyperbench putget PORT N      TMEM put + get of one page N times, checking the data
 *
 * Uses ioperm(2) for the port and /proc/self/pagemap for the page's frame
 * number (root only). Rates are printed as calls per second from the guest's
 * own clock (N up to about 4 million). The op numbers are those of include/linux/tmem_abi.h, which this
 * user-space program cannot include; test/integration checks them by use.
 */
#include "nolibc.h"
#include "parse.h"
#include "pagemap.h"

#define TMEM_NEW_POOL	1
#define TMEM_PUT_PAGE	4
#define TMEM_GET_PAGE	5
#define TMEM_PROBE	64
#define TMEM_ABI_VERSION 1

struct regs {
	unsigned int eax, ebx, ecx, esi, edi;
};

static unsigned short port;

static void hcall(struct regs *r)
{
	asm volatile("outl %%eax, %%dx"
		     : "+a"(r->eax), "+b"(r->ebx), "+c"(r->ecx), "+S"(r->esi), "+D"(r->edi)
		     : "d"(port)
		     : "memory");
}

/*
 * Microseconds, modulo 2^32: long is 32 bits on i386, and tv_sec * 1000000 overflows it
 * (undefined behaviour when signed). Differences are right for intervals under 71 minutes.
 */
static unsigned long now_us(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (unsigned long)tv.tv_sec * 1000000UL + (unsigned long)tv.tv_usec;
}

static void report(const char *what, unsigned long calls, unsigned long us)
{
	/* calls per second without 64-bit division (no libgcc): calls * 1000 / ms */
	unsigned long ms = us / 1000;
	unsigned long rate = ms > 0 ? calls * 1000 / ms : 0;

	printf("hyperbench: %s calls=%lu us=%lu rate=%lu\n", what, calls, us, rate);
}

int main(int argc, char **argv)
{
	struct regs r = { 0, 0, 0, 0, 0 };
	unsigned long i, n, t0;

	if (argc < 3) {
		printf("usage: hyperbench bare|echo|probe|putget PORT [N|VALUE]\n");
		return 2;
	}
	port = (unsigned short)parse_num(argv[2]);
	n = argc > 3 ? parse_num(argv[3]) : 1;
	if (my_syscall3(__NR_ioperm, port, 4, 1) != 0) {
		printf("hyperbench: ioperm failed (not root?)\n");
		return 2;
	}

	if (!strcmp(argv[1], "bare")) {
		t0 = now_us();
		for (i = 0; i < n; i++) {
			r.eax = (unsigned int)i;
			hcall(&r);
		}
		report("bare", n, now_us() - t0);
		return 0;
	}
	if (!strcmp(argv[1], "echo")) {
		r.eax = (unsigned int)n;
		r.ebx = 0x11111111;
		r.ecx = 0x22222222;
		r.esi = 0x33333333;
		r.edi = 0x44444444;
		hcall(&r);
		printf("eax=0x%x ebx=0x%x ecx=0x%x esi=0x%x edi=0x%x\n", r.eax, r.ebx, r.ecx, r.esi, r.edi);
		return 0;
	}
	if (!strcmp(argv[1], "probe")) {
		r.eax = TMEM_PROBE;
		r.ebx = TMEM_ABI_VERSION;
		r.ecx = r.esi = r.edi = 0;
		hcall(&r);
		printf("magic=0x%x version=%u status=%d\n", r.eax, r.ebx, (int)r.ecx);
		return r.eax == 0x4d454d54 && r.ecx == 0 ? 0 : 1;
	}
	if (!strcmp(argv[1], "putget")) {
		static unsigned int page[1024] __attribute__((aligned(4096)));
		unsigned int pfn, pool, bad = 0;

		r.eax = TMEM_PROBE;
		r.ebx = TMEM_ABI_VERSION;
		hcall(&r);
		if (r.eax != 0x4d454d54 || r.ecx != 0) {
			printf("hyperbench: no tmem device\n");
			return 1;
		}
		r.eax = TMEM_NEW_POOL;
		r.ebx = r.ecx = r.esi = r.edi = 0;
		hcall(&r);
		pool = r.eax;
		if ((int)pool < 0) {
			printf("hyperbench: new pool failed: %d\n", (int)pool);
			return 1;
		}
		page[0] = 1;
		pfn = pfn_of(page);
		if (!pfn) {
			printf("hyperbench: no frame number in /proc/self/pagemap\n");
			return 1;
		}
		t0 = now_us();
		for (i = 0; i < n; i++) {
			unsigned int j;

			for (j = 0; j < 1024; j += 256)
				page[j] = (unsigned int)i ^ j ^ 0x5a5a5a5au;
			r.eax = TMEM_PUT_PAGE | pool << 8;
			r.ebx = 7;
			r.ecx = 0;
			r.esi = (unsigned int)i & 15;
			r.edi = pfn;
			hcall(&r);
			if (r.eax != 1)
				bad++;
			for (j = 0; j < 1024; j += 256)
				page[j] = 0;
			r.eax = TMEM_GET_PAGE | pool << 8;
			r.ebx = 7;
			r.ecx = 0;
			r.esi = (unsigned int)i & 15;
			r.edi = pfn;
			hcall(&r);
			if (r.eax != 1 || page[256] != ((unsigned int)i ^ 256 ^ 0x5a5a5a5au))
				bad++;
		}
		report("putget", 2 * n, now_us() - t0);
		printf("hyperbench: putget errors=%u\n", bad);
		return bad ? 1 : 0;
	}
	printf("hyperbench: unknown mode %s\n", argv[1]);
	return 2;
}
