/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Hex digits for keys and identities typed by people or read from files: one decoder, so every
 * parser accepts the same text (either case, no prefix, no separators).
 */
#ifndef RLY_COMMON_HEX_H
#define RLY_COMMON_HEX_H

#include <stddef.h>
#include <stdint.h>

/** The value of hex digit @p c, or -1. */
static inline int rly_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/**
 * Decode exactly 2 * @p n hex digits at @p hex (no terminator needed) into @p out. 0, or -1 at the
 * first character that is not a hex digit (@p out is then partly written).
 */
static inline int rly_hex_decode(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = rly_hex_digit(hex[2 * i]), lo = hi < 0 ? -1 : rly_hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

#endif
