/* SPDX-License-Identifier: MIT */
/*
 * Shared by the guest programs (memtouch, fsop): decimal arguments without
 * libc. Include after nolibc.h.
 */
#ifndef TMEMU_PARSE_H
#define TMEMU_PARSE_H

/*
 * parse_ulong - a decimal number that fits in an unsigned long (32 bits here)
 * @s: the text, digits only
 * @ok: set to 1 if @s was a number, 0 if it was empty, had a non-digit, or
 *      would not fit (it would wrap to a small number)
 *
 * Return: the number, or 0 when *@ok is 0.
 */
static unsigned long parse_ulong(const char *s, int *ok)
{
	unsigned long v = 0;

	*ok = *s != '\0';
	for (; *s; s++) {
		unsigned long d = (unsigned long)(*s - '0');

		if (*s < '0' || *s > '9' || v > (~0UL - d) / 10) {
			*ok = 0;
			return 0;
		}
		v = v * 10 + d;
	}
	return v;
}

#endif /* TMEMU_PARSE_H */
