/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test payload of relay-pub, checked by relay-sub --verify: the message's sequence number as a
 * little-endian u64, then bytes derived from it. A payload delivered under the wrong sequence
 * number, cut short, or changed in any byte fails the check.
 *
 * A canary (relay-pub --canary TEXT) replaces the bytes right after the sequence number with a
 * fixed text, so tests can look for the plaintext of a stream in packet captures and in the
 * memory of the processes it crossed; relay-sub --canary TEXT expects it there.
 */
#ifndef RLY_TOOLS_PAYLOAD_H
#define RLY_TOOLS_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TOOL_PAYLOAD_MIN 8u

static inline uint8_t tool_payload_byte(uint64_t seq, size_t i)
{
	/* Multiplying by an odd constant spreads every bit of seq over the 8 bytes we cycle. */
	uint64_t x = seq * 0x9e3779b97f4a7c15ull;
	return (uint8_t)((x >> (8 * (i & 7))) + i);
}

static inline void tool_payload_fill(uint8_t *p, size_t len, uint64_t seq)
{
	for (unsigned b = 0; b < 8; b++)
		p[b] = (uint8_t)(seq >> (8 * b));
	for (size_t i = TOOL_PAYLOAD_MIN; i < len; i++)
		p[i] = tool_payload_byte(seq, i);
}

/* tool_payload_fill, then @p canary (@p clen bytes; len >= TOOL_PAYLOAD_MIN + clen) after seq. */
static inline void tool_payload_fill_canary(uint8_t *p, size_t len, uint64_t seq,
					    const char *canary, size_t clen)
{
	tool_payload_fill(p, len, seq);
	if (clen)
		memcpy(p + TOOL_PAYLOAD_MIN, canary, clen);
}

/* 1 if @p p is what tool_payload_fill wrote for @p seq. */
static inline int tool_payload_ok(const uint8_t *p, size_t len, uint64_t seq)
{
	uint64_t got = 0;

	if (len < TOOL_PAYLOAD_MIN)
		return 0;
	for (unsigned b = 0; b < 8; b++)
		got |= (uint64_t)p[b] << (8 * b);
	if (got != seq)
		return 0;
	for (size_t i = TOOL_PAYLOAD_MIN; i < len; i++)
		if (p[i] != tool_payload_byte(seq, i))
			return 0;
	return 1;
}

/* 1 if @p p is what tool_payload_fill_canary wrote for @p seq and this canary. */
static inline int tool_payload_ok_canary(const uint8_t *p, size_t len, uint64_t seq,
					 const char *canary, size_t clen)
{
	uint64_t got = 0;

	if (len < TOOL_PAYLOAD_MIN + clen)
		return 0;
	for (unsigned b = 0; b < 8; b++)
		got |= (uint64_t)p[b] << (8 * b);
	if (got != seq || (clen && memcmp(p + TOOL_PAYLOAD_MIN, canary, clen) != 0))
		return 0;
	for (size_t i = TOOL_PAYLOAD_MIN + clen; i < len; i++)
		if (p[i] != tool_payload_byte(seq, i))
			return 0;
	return 1;
}

#endif
