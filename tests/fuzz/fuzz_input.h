/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fuzzer's input as the structure-aware targets (fuzz_client, fuzz_control, fuzz_peers) read
 * it: front to back, a byte or a field at a time. Past its end every read gives zeros, so any
 * input, however short, is a complete script. One input per process at a time (libFuzzer runs
 * inputs one after the other), hence file-scope state.
 */
#ifndef RLY_FUZZ_INPUT_H
#define RLY_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static const uint8_t *fz_p;
static size_t fz_left;

/** Start reading @p size bytes at @p data. */
static inline void fz_begin(const uint8_t *data, size_t size)
{
	fz_p = data;
	fz_left = size;
}

static inline uint8_t u8(void)
{
	if (fz_left == 0)
		return 0;
	fz_left--;
	return *fz_p++;
}

static inline uint16_t u16(void)
{
	return (uint16_t)(u8() << 8 | u8());
}

/** Fill @p out with the next @p n bytes, zeros past the end. */
static inline void take(void *out, size_t n)
{
	size_t k = n < fz_left ? n : fz_left;

	memcpy(out, fz_p, k);
	memset((uint8_t *)out + k, 0, n - k);
	fz_p += k;
	fz_left -= k;
}

#endif
