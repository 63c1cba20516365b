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
	case 0x40: return 192;
	case 0x41: case 0x42: return 64;
	case 0x43: return 432;
	case 0x44: return 96;
	case 0x45: return 176;
	case 0x20: return 200;
	case 0x21: return 96;
	case 0x50: case 0x51: return -1;
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

/* Section 9.1, PEER_HELLO: which of the optional fields kind 1..7 carries ("set" or "zero"). */
static inline enum rly_wire_err wo_peer_hello(const uint8_t *b)
{
	unsigned kind = b[0];
	/* kind:              -  HELLO CHAL PROOF WELC PING PONG BYE */
	static const uint8_t cookie[8] = {0, 0, 1, 1, 0, 0, 0, 0};
	static const uint8_t token[8] = {0, 0, 0, 1, 1, 1, 1, 1};
	static const uint8_t sender[8] = {0, 1, 0, 1, 1, 0, 0, 0};
	static const uint8_t sig[8] = {0, 0, 0, 1, 1, 0, 0, 0};

	if (!wo_zero(b + 1, 7) || !wo_zero(b + 120, 8))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (kind < 1 || kind > 7 || wo_be(b + 8, 8) == 0)
		return RLY_WIRE_ERR_BAD_FIELD;
	/*
	 * "set" is not 0 / not all zero, "zero" is 0 / all zero, so a field is wrong when it is all
	 * zero exactly when the kind carries it. target (88..119) is free.
	 */
	if (wo_zero(b + 16, 8) == cookie[kind] || wo_zero(b + 24, 16) == cookie[kind] ||
	    wo_zero(b + 40, 16) == token[kind] || wo_zero(b + 56, 32) == sender[kind] ||
	    wo_zero(b + 128, 64) == sig[kind])
		return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
}

/* Section 9.2: kinds 1..4 belong to PEER_JOIN (0x41), 5 and 6 to PEER_PRUNE (0x42). */
static inline enum rly_wire_err wo_peer_link(unsigned type, const uint8_t *b)
{
	unsigned kind = b[20];
	int join_kind = kind >= 1 && kind <= 4, prune_kind = kind == 5 || kind == 6;

	if (!wo_zero(b + 22, 2) || !wo_zero(b + 48, 16))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (!(type == 0x41 ? join_kind : prune_kind) || b[21] > 5 || wo_be(b + 24, 8) == 0 ||
	    wo_zero(b + 32, 16))
		return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
}

/* Section 9.3: entry i of 48 bytes at 48 + 48 i; unused entries and entry reserved bytes zero. */
static inline enum rly_wire_err wo_peer_ihave(const uint8_t *b)
{
	unsigned n = b[20];

	if (!wo_zero(b + 21, 3) || !wo_zero(b + 40, 8))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	for (unsigned i = 0; i < 8; i++) {
		const uint8_t *e = b + 48 + 48 * i;
		if (!wo_zero(e + 36, 4) || (i >= n && !wo_zero(e, 48)))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
	}
	if (n > 8 || wo_zero(b + 24, 16))
		return RLY_WIRE_ERR_BAD_FIELD;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = b + 48 + 48 * i;
		if (wo_zero(e, 32) || wo_be(e + 40, 8) == 0)
			return RLY_WIRE_ERR_BAD_FIELD;
	}
	return RLY_WIRE_ERR_OK;
}

/* Section 9.4: no reserved field; from >= 1, to >= from, request id, publisher, token. */
static inline enum rly_wire_err wo_peer_iwant(const uint8_t *b)
{
	uint64_t from = wo_be(b + 56, 8), to = wo_be(b + 64, 8);

	if (from == 0 || to < from || wo_be(b + 72, 8) == 0 || wo_zero(b + 24, 32) ||
	    wo_zero(b + 80, 16))
		return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
}

/* Section 9.5: the 136-byte record sits at 32; its flags at 32 + 26, reserved at 32 + 28. */
static inline enum rly_wire_err wo_peer_discover(const uint8_t *b)
{
	const uint8_t *rec = b + 32;

	if (b[1] != 0 || !wo_zero(b + 4, 4) || !wo_zero(b + 168, 8) || !wo_zero(rec + 26, 6))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (b[0] < 1 || b[0] > 3 || wo_be(b + 8, 8) == 0 || wo_zero(b + 16, 16))
		return RLY_WIRE_ERR_BAD_FIELD;
	switch (b[0]) {
	case 1: /* ANNOUNCE: a relay and an expiry */
		if (wo_zero(rec + 40, 32) || wo_be(rec + 32, 8) == 0)
			return RLY_WIRE_ERR_BAD_FIELD;
		break;
	case 2: /* LOOKUP: only stream key and partition */
		if (!wo_zero(rec + 20, 116))
			return RLY_WIRE_ERR_BAD_FIELD;
		break;
	default: /* RESULT: all 136 bytes zero, or a relay */
		if (wo_zero(rec + 40, 32) && !wo_zero(rec, 136))
			return RLY_WIRE_ERR_BAD_FIELD;
		break;
	}
	return RLY_WIRE_ERR_OK;
}

/* Section 8.1, NAK: n (64) ranges of 16 bytes at 72; the unused ones zero; ascending, apart. */
static inline enum rly_wire_err wo_nak(const uint8_t *b)
{
	unsigned n = b[64];
	uint64_t prev_to = 0;

	if (!wo_zero(b + 65, 7))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (n == 0 || n > 8 || wo_be(b + 56, 8) == 0 || wo_zero(b + 24, 32))
		return RLY_WIRE_ERR_BAD_FIELD;
	if (!wo_zero(b + 72 + 16 * n, 16 * (8 - n)))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	for (unsigned i = 0; i < n; i++) {
		uint64_t from = wo_be(b + 72 + 16 * i, 8), to = wo_be(b + 80 + 16 * i, 8);
		if (from == 0 || to < from || (i && from <= prev_to))
			return RLY_WIRE_ERR_BAD_FIELD;
		prev_to = to;
	}
	return RLY_WIRE_ERR_OK;
}

/* Section 8.2, GAP: from 56, to 64, request id 72, lowest 80 (free), reason 88 (1..5). */
static inline enum rly_wire_err wo_gap(const uint8_t *b)
{
	uint64_t from = wo_be(b + 56, 8);

	if (!wo_zero(b + 89, 7))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (b[88] < 1 || b[88] > 5 || from == 0 || wo_be(b + 64, 8) < from || wo_be(b + 72, 8) == 0 ||
	    wo_zero(b + 24, 32))
		return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
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
		return wo_be(b + 20, 2) > 9 ? RLY_WIRE_ERR_BAD_FIELD : RLY_WIRE_ERR_OK;
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
		if (status > 9 || wo_be(b + 32, 8) == 0 || wo_zero(b + 40, 32) || wo_zero(b + 72, 32))
			return RLY_WIRE_ERR_BAD_FIELD;
		/* OK carries a key id and a sealed key; anything else neither */
		if ((status == 0) != (key_id != 0) || (status != 0 && !wo_zero(b + 104, 88)))
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	}
	case 0x20:
		return wo_nak(b);
	case 0x21:
		return wo_gap(b);
	case 0x40:
		return wo_peer_hello(b);
	case 0x41: case 0x42:
		return wo_peer_link(type, b);
	case 0x43:
		return wo_peer_ihave(b);
	case 0x44:
		return wo_peer_iwant(b);
	case 0x45:
		return wo_peer_discover(b);
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
