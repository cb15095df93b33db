/* SPDX-License-Identifier: MIT */
/*
 * Shared by the guest programs: numeric arguments without libc. Include after
 * nolibc.h.
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
static inline unsigned long parse_ulong(const char *s, int *ok)
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

/*
 * parse_num - a decimal or 0x-prefixed hexadecimal argument, unchecked
 * @s: the text
 *
 * For the raw hypercall tools (hyperbench, tmemcall), whose arguments may be
 * anything on purpose: a non-digit is taken as a digit value, and large
 * values wrap.
 *
 * Return: the number.
 */
static inline unsigned long parse_num(const char *s)
{
	unsigned long v = 0;

	if (s[0] == '0' && s[1] == 'x') {
		for (s += 2; *s; s++)
			v = v * 16 + (unsigned long)(*s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10);
		return v;
	}
	for (; *s; s++)
		v = v * 10 + (unsigned long)(*s - '0');
	return v;
}

#endif /* TMEMU_PARSE_H */
