/* SPDX-License-Identifier: MIT */
/*
 * Shared by memtouch and setcheck: the 32-bit integer hash both derive page
 * contents from. Include after nolibc.h.
 */
#ifndef TMEMU_MIX_H
#define TMEMU_MIX_H

/*
 * mix - a 32-bit integer hash (xorshift-multiply, good avalanche)
 * @x: the input
 *
 * Return: the hashed value.
 */
static inline unsigned int mix(unsigned int x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

#endif /* TMEMU_MIX_H */
