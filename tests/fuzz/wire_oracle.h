/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A second, deliberately naive reading of protocol v1 (docs/wire-protocol.md), used as an oracle by
 * the property test and the fuzz target: rly_wire_parse() must give the same verdict, reason
 * included, for every input. It reads bytes at literal offsets from the protocol document rather
 * than through the structs of include/relay/wire.h, so a layout change in the header that the
 * document does not describe makes the two disagree.
 *
 * Reasons are checked in the document's order: a receiver that counts refusals by reason counts
 * the same datagram under the same reason whichever implementation it runs.
 */
#ifndef RLY_TESTS_WIRE_ORACLE_H
#define RLY_TESTS_WIRE_ORACLE_H

#include <stddef.h>
#include <stdint.h>

#include "relay/wire.h"

static inline uint64_t wo_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline int wo_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* Fixed body size of a v1 control type, 0 for DATA, -1 reserved, -2 unknown. */
static inline int wo_type_body(unsigned type)
{
	switch (type) {
	case 0x01: return 0;
	case 0x10: return 96;
	case 0x17: return 160;
	case 0x11: case 0x12: case 0x14: case 0x16: return 56;
	case 0x13: case 0x15: return 48;
	case 0x30: case 0x31: return 256;
	case 0x20: case 0x21: case 0x40: case 0x41: case 0x42: case 0x43:
	case 0x44: case 0x50: case 0x51: return -1;
	default: return -2;
	}
}

static inline enum rly_wire_err wo_data_msg(const uint8_t *m, size_t avail, size_t *size)
{
	uint64_t sig = wo_be(m + 90, 2), flags = wo_be(m + 86, 2), key_id = wo_be(m + 80, 4);
	uint64_t seq = wo_be(m + 56, 8), prev = wo_be(m + 64, 8);

	if (sig != 0 && sig != 64)
		return RLY_WIRE_ERR_BAD_SIG_LEN;
	if (flags > 3 || ((flags & 1) != 0) != (sig == 64) || ((flags & 2) != 0) != (key_id != 0))
		return RLY_WIRE_ERR_BAD_FLAGS;
	if (!wo_zero(m + 93, 3))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (seq == 0 || prev >= seq)
		return RLY_WIRE_ERR_BAD_SEQUENCE;
	*size = 96 + wo_be(m + 88, 2) + sig;
	return *size > avail ? RLY_WIRE_ERR_TRUNCATED_MESSAGE : RLY_WIRE_ERR_OK;
}

static inline enum rly_wire_err wo_control(unsigned type, const uint8_t *b)
{
	switch (type) {
	case 0x17:
		/* a SUBSCRIBE answering a challenge, with a named subscriber, plus a signature */
		if (wo_be(b + 64, 8) == 0 || wo_zero(b + 32, 32))
			return wo_zero(b + 88, 8) ? RLY_WIRE_ERR_BAD_FIELD : RLY_WIRE_ERR_RESERVED_NONZERO;
		/* fall through */
	case 0x10:
		if (!wo_zero(b + 88, 8))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		if ((wo_be(b + 64, 8) == 0) != wo_zero(b + 72, 16) || wo_be(b + 20, 4) == 0)
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	case 0x11:
		if (!wo_zero(b + 20, 4))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		return wo_be(b + 32, 8) == 0 ? RLY_WIRE_ERR_BAD_FIELD : RLY_WIRE_ERR_OK;
	case 0x12: case 0x14: case 0x16:
		if (!wo_zero(b + 22, 2))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		return wo_be(b + 20, 2) > 8 ? RLY_WIRE_ERR_BAD_FIELD : RLY_WIRE_ERR_OK;
	case 0x30:
		/* reserved u32 at 28 and 72 bytes of padding at 184; request id, publisher, requester */
		if (!wo_zero(b + 28, 4) || !wo_zero(b + 184, 72))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		if (wo_be(b + 32, 8) == 0 || wo_zero(b + 40, 32) || wo_zero(b + 72, 32))
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	case 0x31: {
		uint64_t status = wo_be(b + 28, 2), key_id = wo_be(b + 24, 4);
		if (!wo_zero(b + 30, 2))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		if (status > 8 || wo_be(b + 32, 8) == 0 || wo_zero(b + 40, 32) || wo_zero(b + 72, 32))
			return RLY_WIRE_ERR_BAD_FIELD;
		/* OK carries a key id and a sealed key; anything else neither */
		if ((status == 0) != (key_id != 0) || (status != 0 && !wo_zero(b + 104, 88)))
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	}
	default: /* 0x13, 0x15 */
		return wo_zero(b + 20, 4) ? RLY_WIRE_ERR_OK : RLY_WIRE_ERR_RESERVED_NONZERO;
	}
}

/** The verdict protocol v1 gives datagram @p buf of @p len bytes at a receiver taking max_len. */
static inline enum rly_wire_err wo_parse(const uint8_t *buf, size_t len, size_t max_len)
{
	unsigned type, count;
	int body;

	if (len < 8)
		return RLY_WIRE_ERR_TRUNCATED_HEADER;
	if (buf[0] != 'R' || buf[1] != 'Y')
		return RLY_WIRE_ERR_BAD_MAGIC;
	if (buf[2] != 1)
		return RLY_WIRE_ERR_BAD_VERSION;
	if (len > (max_len < 1972 ? max_len : 1972))
		return RLY_WIRE_ERR_OVERSIZED;
	if (wo_be(buf + 4, 2) != len)
		return RLY_WIRE_ERR_LENGTH_MISMATCH;
	type = buf[3];
	count = (unsigned)wo_be(buf + 6, 2);
	body = wo_type_body(type);
	if (body == -1)
		return RLY_WIRE_ERR_RESERVED_TYPE;
	if (body == -2)
		return RLY_WIRE_ERR_UNKNOWN_TYPE;
	if (body > 0) {
		if (count != 1)
			return RLY_WIRE_ERR_BAD_COUNT;
		if (len - 8 != (size_t)body)
			return RLY_WIRE_ERR_BAD_BODY_SIZE;
		return wo_control(type, buf + 8);
	}
	if (count == 0)
		return RLY_WIRE_ERR_BAD_COUNT;
	size_t off = 8;
	for (unsigned i = 0; i < count; i++) {
		size_t size = 0;
		enum rly_wire_err e;

		if (len - off < 96)
			return RLY_WIRE_ERR_TRUNCATED_MESSAGE;
		e = wo_data_msg(buf + off, len - off, &size);
		if (e != RLY_WIRE_ERR_OK)
			return e;
		off += size;
	}
	return off == len ? RLY_WIRE_ERR_OK : RLY_WIRE_ERR_TRAILING_BYTES;
}

/*
 * For a datagram rly_wire_parse() accepted into @p v: NULL if the view is what the bytes say (type,
 * count, body bounds, and rly_wire_next_msg walking exactly `count` messages that tile the body),
 * else what is wrong with it.
 */
static inline const char *wo_check_view(const uint8_t *buf, size_t len,
					const struct rly_wire_view *v)
{
	if (v->type != buf[3])
		return "view type differs from the header";
	if (v->count != wo_be(buf + 6, 2))
		return "view count differs from the header";
	if (v->body != buf + 8 || v->body_len != len - 8)
		return "view body is not the bytes after the header";
	if (rly_msg_type_name(v->type) == NULL)
		return "accepted an undefined type";
	if (v->type != RLY_MSG_DATA) {
		if (v->count != 1 || (int)v->body_len != rly_wire_body_size(v->type))
			return "control view has the wrong count or body size";
		return NULL;
	}

	size_t off = 0, prev_off = 0;
	unsigned n = 0;
	const struct rly_wire_msg_hdr *h;

	while ((h = rly_wire_next_msg(v, &off)) != NULL) {
		if ((const uint8_t *)h != v->body + prev_off)
			return "next_msg returned a header that is not where the previous message ended";
		if (off > v->body_len || off - prev_off != rly_wire_msg_size(h))
			return "a message runs past the body";
		if (++n > v->count)
			return "next_msg walked more messages than count";
		prev_off = off;
	}
	if (n != v->count)
		return "next_msg walked fewer messages than count";
	if (off != v->body_len)
		return "messages do not tile the body";
	return NULL;
}

#endif
