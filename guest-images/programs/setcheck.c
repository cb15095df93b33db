// SPDX-License-Identifier: MIT
/*
 * setcheck - verify a workload's file set page by page, cheaply.
 *
 *   setcheck DIR SEED PAGES FILE_PAGES
 *
 * DIR holds files f0000, f0001, ... of FILE_PAGES 4 KiB pages each (the last
 * one maybe fewer), PAGES in all, written by workloads/files.ts from SEED.
 * Every page depends only on (SEED, file, page): setcheck runs the same
 * generator (page_ok, setPage in files.ts) over each page it reads and
 * compares word by word, so a page that came back wrong, from the wrong
 * place or not at all is caught and named. It also checks that DIR
 * holds exactly those files, no more, and that each has its exact length.
 *
 * Prints one line per problem (at most MAX_REPORTS), then
 *   setcheck: files=F pages=P mismatches=M ms=T
 * (P: pages compared, M: pages wrong or missing, extra pages and unexpected
 * entries) and, last, "files: ok" when M is 0, else "files: CORRUPT".
 * Exits 0 when ok, 1 when corrupt, 2 on bad usage. A setcheck that did not
 * run to its end prints no result line and no "files:" line.
 *
 * Built static for i386 with the kernel's tools/include/nolibc: no libc.
 */
#include "nolibc.h"
#include "parse.h"
#include "mix.h"

#define PAGE_SIZE	4096u
#define WORDS		(PAGE_SIZE / 4)
#define CHUNK_PAGES	16u
#define MAX_REPORTS	20u
#define LITERAL_MAX	16u
#define MATCH_MIN	2u
#define MATCH_SPAN	24u

static unsigned int buf[CHUNK_PAGES * WORDS];
static char dents[4096];
static unsigned long reports;

/*
 * Whether @w (WORDS words read from the file) is page @page of file @file: the generator of
 * setPage in files.ts (xorshift32 literals, copies of earlier words), checked as it runs. A copy
 * is checked against the words already read, which equal the expected ones up to there, so
 * the page is never built apart and no memcmp is needed.
 */
static int page_ok(unsigned int seed, unsigned int file, unsigned int page,
		   const unsigned int *w)
{
	unsigned int x, pos = 0, lit, len, from, i, r;

	x = mix(seed ^ mix(file * 0x9e3779b9u + mix(page + 0x632be5abu))) | 1;
#define NEXT() (x ^= x << 13, x ^= x >> 17, x ^= x << 5, x)
	while (pos < WORDS) {
		lit = 1 + NEXT() % LITERAL_MAX;
		if (lit > WORDS - pos)
			lit = WORDS - pos;
		for (i = 0; i < lit; i++)
			if (w[pos + i] != NEXT())
				return 0;
		pos += lit;
		if (pos >= WORDS)
			break;
		r = NEXT();
		len = MATCH_MIN + r % MATCH_SPAN;
		if (len > WORDS - pos)
			len = WORDS - pos;
		from = (r >> 8) % pos;
		for (i = 0; i < len; i++)
			if (w[pos + i] != w[from + i])
				return 0;
		pos += len;
	}
#undef NEXT
	return 1;
}

static unsigned long now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (unsigned long)tv.tv_sec * 1000UL + (unsigned long)tv.tv_usec / 1000UL;
}

/* "@dir/fNNNN" into @out (nolibc's printf has no field widths). */
static void file_path(char *out, unsigned long size, const char *dir,
		      unsigned long f)
{
	unsigned long n = strlen(dir);

	if (n > size - 7)
		n = size - 7;
	memcpy(out, dir, n);
	out[n++] = '/';
	out[n++] = 'f';
	out[n++] = (char)('0' + f / 1000 % 10);
	out[n++] = (char)('0' + f / 100 % 10);
	out[n++] = (char)('0' + f / 10 % 10);
	out[n++] = (char)('0' + f % 10);
	out[n] = '\0';
}

static void report(const char *path, const char *what, unsigned long n)
{
	if (reports++ < MAX_REPORTS)
		printf("setcheck: %s: %s %lu\n", path, what, n);
}

/* Fills @len bytes of @p from @fd unless the file ends first: bytes read, or -1. */
static long read_full(int fd, char *p, unsigned long len)
{
	unsigned long got = 0;
	long n;

	while (got < len) {
		n = read(fd, p + got, len - got);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		got += (unsigned long)n;
	}
	return (long)got;
}

/* Compares file @f with its @pages expected pages: the number of bad pages. */
static unsigned long check_file(const char *dir, unsigned long seed,
				unsigned long f, unsigned long pages,
				unsigned long *compared)
{
	char path[256];
	unsigned long bad = 0, p = 0, k, extra = 0;
	long n;
	int fd;

	file_path(path, sizeof(path), dir, f);
	fd = open(path, O_RDONLY, 0);
	if (fd < 0) {
		report(path, "cannot open, errno", (unsigned long)errno);
		return pages;
	}
	for (;;) {
		n = read_full(fd, (char *)buf, sizeof(buf));
		if (n < 0) {
			report(path, "read error at page", p);
			close(fd);
			return bad + (pages - p);
		}
		if (n == 0)
			break;
		if ((unsigned long)n % PAGE_SIZE)
			report(path, "length not whole pages, last part bytes",
			       (unsigned long)n % PAGE_SIZE);
		for (k = 0; k * PAGE_SIZE < (unsigned long)n; k++, p++) {
			if (p >= pages) {
				extra++;
				continue;
			}
			(*compared)++;
			if ((k + 1) * PAGE_SIZE > (unsigned long)n ||
			    !page_ok((unsigned int)seed, (unsigned int)f,
				     (unsigned int)p, buf + k * WORDS)) {
				report(path, "mismatch at page", p);
				bad++;
			}
		}
	}
	close(fd);
	if (p < pages) {
		report(path, "missing pages from page", p);
		bad += pages - p;
	}
	if (extra) {
		report(path, "extra pages past the end", extra);
		bad += extra;
	}
	return bad;
}

/* Entries of @dir other than f0000..f(@files - 1), ".", "..": each is reported. */
static unsigned long unexpected_entries(const char *dir, unsigned long files,
					unsigned long *seen)
{
	struct linux_dirent64 *d;
	unsigned long bad = 0, idx;
	int fd, n, off, ok;
	const char *name;

	fd = open(dir, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0) {
		printf("setcheck: %s: cannot open, errno %d\n", dir, errno);
		return 1;
	}
	while ((n = getdents64(fd, (void *)dents, sizeof(dents))) > 0) {
		for (off = 0; off < n; off += d->d_reclen) {
			d = (struct linux_dirent64 *)(dents + off);
			name = d->d_name;
			if (!strcmp(name, ".") || !strcmp(name, ".."))
				continue;
			ok = name[0] == 'f' && strlen(name) == 5;
			idx = ok ? parse_ulong(name + 1, &ok) : 0;
			if (ok && idx < files) {
				(*seen)++;
				continue;
			}
			if (reports++ < MAX_REPORTS)
				printf("setcheck: %s: unexpected entry %s\n", dir, name);
			bad++;
		}
	}
	if (n < 0) {
		printf("setcheck: %s: getdents64 failed, errno %d\n", dir, errno);
		bad++;
	}
	close(fd);
	return bad;
}

int main(int argc, char **argv)
{
	unsigned long seed, pages, file_pages, files, f, left, compared = 0;
	unsigned long bad, seen = 0, t0;
	int ok1, ok2, ok3;
	const char *dir;

	if (argc != 5) {
		printf("usage: setcheck DIR SEED PAGES FILE_PAGES\n");
		return 2;
	}
	dir = argv[1];
	seed = parse_ulong(argv[2], &ok1);
	pages = parse_ulong(argv[3], &ok2);
	file_pages = parse_ulong(argv[4], &ok3);
	files = ok2 && ok3 && file_pages ? (pages + file_pages - 1) / file_pages : 0;
	if (!ok1 || !ok2 || !ok3 || pages == 0 || file_pages == 0 || files > 10000) {
		printf("setcheck: bad SEED, PAGES or FILE_PAGES\n");
		return 2;
	}
	t0 = now_ms();
	bad = unexpected_entries(dir, files, &seen);
	for (f = 0, left = pages; f < files; f++) {
		unsigned long n = left < file_pages ? left : file_pages;

		bad += check_file(dir, seed, f, n, &compared);
		left -= n;
	}
	if (seen != files && reports++ < MAX_REPORTS)
		printf("setcheck: %s: %lu of %lu files listed\n", dir, seen, files);
	if (reports > MAX_REPORTS)
		printf("setcheck: %lu more problems not shown\n", reports - MAX_REPORTS);
	printf("setcheck: files=%lu pages=%lu mismatches=%lu ms=%lu\n",
	       files, compared, bad, now_ms() - t0);
	printf(bad ? "files: CORRUPT\n" : "files: ok\n");
	return bad ? 1 : 0;
}
