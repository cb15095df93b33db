// SPDX-License-Identifier: MIT
/*
 * memtouch - allocate anonymous memory, fill every page with a pattern
 * derived from (page number, seed), then verify it, and report mismatches.
 *
 *   memtouch MIB [SEED [PASSES [RANDOM_WORDS]]]
 *
 * Fills MIB MiB once, then reads every page back PASSES times (default 1)
 * and counts the pages whose content differs from the pattern. The first
 * RANDOM_WORDS 32-bit words of a page (1..1024, default all 1024) are
 * distinct hashes of the page number, the seed and the word's place; the
 * rest repeat one word derived from the page number, so that a page
 * compresses roughly as RANDOM_WORDS / 1024 (for zswap comparisons). No page
 * is same-filled, and a page that came back from the wrong place (another
 * page, another seed, another guest) is caught. Prints one line:
 *   memtouch: mib=N pages=P seed=S passes=K mismatches=M fill_ms=F verify_ms=V
 * and exits 0 only when M is 0 (2 on bad usage or allocation failure).
 *
 * Built static for i386 with the kernel's tools/include/nolibc: no libc.
 */
#include "nolibc.h"
#include "parse.h"
#include "mix.h"

#define PAGE_SIZE	4096u
#define WORDS		(PAGE_SIZE / 4)

static unsigned int random_words = 1024;

static unsigned int page_word(unsigned int page, unsigned int seed, unsigned int word)
{
	if (word >= random_words)
		return page * 0x9e3779b9u + seed;
	return mix(page * 0x9e3779b9u ^ mix(seed + word * 0x85ebca6bu));
}

/*
 * Milliseconds, modulo 2^32: long is 32 bits on i386, and tv_sec * 1000 overflows it (undefined
 * behaviour when signed). Differences of these values are right for intervals under 49 days.
 */
static unsigned long now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (unsigned long)tv.tv_sec * 1000UL + (unsigned long)tv.tv_usec / 1000UL;
}

int main(int argc, char **argv)
{
	unsigned long mib, seed = 1, passes = 1, pages, p, mismatches = 0;
	unsigned int *mem;
	unsigned long t0, t1, t2;
	int ok = 1, ok2 = 1, ok3 = 1, ok4 = 1;
	unsigned long pass;

	if (argc < 2 || argc > 5) {
		printf("usage: memtouch MIB [SEED [PASSES [RANDOM_WORDS]]]\n");
		return 2;
	}
	mib = parse_ulong(argv[1], &ok);
	if (argc > 2)
		seed = parse_ulong(argv[2], &ok2);
	if (argc > 3)
		passes = parse_ulong(argv[3], &ok3);
	if (argc > 4)
		random_words = (unsigned int)parse_ulong(argv[4], &ok4);
	if (!ok || !ok2 || !ok3 || !ok4 || mib == 0 || mib > 2048 ||
	    random_words == 0 || random_words > WORDS) {
		printf("memtouch: MIB must be 1..2048, RANDOM_WORDS 1..1024, SEED and PASSES whole numbers 0..4294967295\n");
		return 2;
	}
	pages = mib * (1024 * 1024 / PAGE_SIZE);
	mem = mmap(NULL, pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		printf("memtouch: cannot map %lu MiB\n", mib);
		return 2;
	}

	t0 = now_ms();
	for (p = 0; p < pages; p++) {
		unsigned int *w = mem + p * WORDS;
		unsigned int i;

		for (i = 0; i < WORDS; i++)
			w[i] = page_word((unsigned int)p, (unsigned int)seed, i);
	}
	t1 = now_ms();
	for (pass = 0; pass < passes; pass++) {
		for (p = 0; p < pages; p++) {
			const unsigned int *w = mem + p * WORDS;
			unsigned int i;

			for (i = 0; i < WORDS; i++) {
				if (w[i] != page_word((unsigned int)p, (unsigned int)seed, i)) {
					mismatches++;
					break;
				}
			}
		}
	}
	t2 = now_ms();
	printf("memtouch: mib=%lu pages=%lu seed=%lu passes=%lu random_words=%u mismatches=%lu fill_ms=%lu verify_ms=%lu\n",
	       mib, pages, seed, passes, random_words, mismatches, t1 - t0, t2 - t1);
	return mismatches ? 1 : 0;
}
