/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one parser for relay datagrams, shared by the dataplane, relay-control and the client
 * library, so every side refuses exactly the same inputs for exactly the same reasons.
 *
 * It validates the whole datagram before the caller acts on any of it: a datagram with one bad
 * message among good ones is refused as a whole (a relay never forwards a prefix of something it
 * could not fully check). It reads only inside [buf, buf + len) and never writes.
 */
#include <string.h>

#include "relay/wire.h"

int rly_wire_body_size(unsigned type)
{
	switch (type) {
	case RLY_MSG_DATA:
		return 0;
	case RLY_MSG_SUBSCRIBE:
		return (int)sizeof(struct rly_wire_subscribe);
	case RLY_MSG_SUBSCRIBE_SIGNED:
		return (int)sizeof(struct rly_wire_subscribe_signed);
	case RLY_MSG_CHALLENGE:
		return (int)sizeof(struct rly_wire_challenge);
	case RLY_MSG_SUB_ACK:
	case RLY_MSG_UNSUB_ACK:
	case RLY_MSG_HEARTBEAT_ACK:
		return (int)sizeof(struct rly_wire_ack);
	case RLY_MSG_UNSUBSCRIBE:
	case RLY_MSG_HEARTBEAT:
		return (int)sizeof(struct rly_wire_sub_ref);
	case RLY_MSG_NAK:
		return (int)sizeof(struct rly_wire_nak);
	case RLY_MSG_GAP:
		return (int)sizeof(struct rly_wire_gap);
	case RLY_MSG_KEY_REQUEST:
		return (int)sizeof(struct rly_wire_key_request);
	case RLY_MSG_KEY_RESPONSE:
		return (int)sizeof(struct rly_wire_key_response);
	case RLY_MSG_PEER_HELLO:
		return (int)sizeof(struct rly_wire_peer_hello);
	case RLY_MSG_PEER_JOIN:
	case RLY_MSG_PEER_PRUNE:
		return (int)sizeof(struct rly_wire_peer_link);
	case RLY_MSG_PEER_IHAVE:
		return (int)sizeof(struct rly_wire_peer_ihave);
	case RLY_MSG_PEER_IWANT:
		return (int)sizeof(struct rly_wire_peer_iwant);
	case RLY_MSG_PEER_DISCOVER:
		return (int)sizeof(struct rly_wire_peer_discover);
	default:
		return -1;
	}
}

static int is_reserved_type(unsigned type)
{
	switch (type) {
#define X(name, value, body, dir, desc)                                                                \
	case value:                                                                                    \
		return __builtin_strcmp(#body, "reserved") == 0;
		RLY_FOREACH_MSG_TYPE(X)
#undef X
	default:
		return 0;
	}
}

static int is_sub_status(unsigned status)
{
	switch (status) {
#define X(name, value, desc)                                                                           \
	case value:                                                                                    \
		return 1;
		RLY_FOREACH_SUB_STATUS(X)
#undef X
	default:
		return 0;
	}
}

static int all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static enum rly_wire_err check_msg(const struct rly_wire_msg_hdr *h, size_t avail, size_t *size)
{
	uint16_t sig_len = rly_be16_load(&h->sig_len);
	uint16_t flags = rly_be16_load(&h->flags);
	uint64_t seq = rly_be64_load(&h->seq);
	uint32_t key_id = rly_be32_load(&h->key_id);

	if (sig_len != 0 && sig_len != RLY_WIRE_SIG_LEN)
		return RLY_WIRE_ERR_BAD_SIG_LEN;
	if ((flags & ~RLY_MSG_F_ALL) != 0 || !(flags & RLY_MSG_F_SIGNED) != (sig_len == 0) ||
	    !(flags & RLY_MSG_F_ENCRYPTED) != (key_id == 0))
		return RLY_WIRE_ERR_BAD_FLAGS;
	if ((h->reserved[0] | h->reserved[1] | h->reserved[2]) != 0)
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (seq == 0 || rly_be64_load(&h->prev_seq) >= seq)
		return RLY_WIRE_ERR_BAD_SEQUENCE;
	*size = rly_wire_msg_size(h);
	if (*size > avail)
		return RLY_WIRE_ERR_TRUNCATED_MESSAGE;
	return RLY_WIRE_ERR_OK;
}

static enum rly_wire_err check_data(const uint8_t *body, size_t len, unsigned count)
{
	size_t off = 0;

	if (count == 0)
		return RLY_WIRE_ERR_BAD_COUNT;
	for (unsigned i = 0; i < count; i++) {
		size_t size;
		enum rly_wire_err e;

		if (len - off < sizeof(struct rly_wire_msg_hdr))
			return RLY_WIRE_ERR_TRUNCATED_MESSAGE;
		e = check_msg((const struct rly_wire_msg_hdr *)(body + off), len - off, &size);
		if (e != RLY_WIRE_ERR_OK)
			return e;
		off += size;
	}
	return off == len ? RLY_WIRE_ERR_OK : RLY_WIRE_ERR_TRAILING_BYTES;
}

static enum rly_wire_err check_nak(const struct rly_wire_nak *b)
{
	uint64_t prev_to = 0;

	if (!all_zero(b->reserved, sizeof(b->reserved)))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (b->n == 0 || b->n > RLY_NAK_RANGES || rly_be64_load(&b->request_id) == 0 ||
	    all_zero(b->publisher, RLY_ID_LEN))
		return RLY_WIRE_ERR_BAD_FIELD;
	for (unsigned i = b->n; i < RLY_NAK_RANGES; i++)
		if (!all_zero((const uint8_t *)&b->r[i], sizeof(b->r[i])))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
	/* Ascending and apart: the relay walks them once, and no seq is asked for twice. */
	for (unsigned i = 0; i < b->n; i++) {
		uint64_t from = rly_be64_load(&b->r[i].from_seq), to = rly_be64_load(&b->r[i].to_seq);
		if (from == 0 || to < from || (i > 0 && from <= prev_to))
			return RLY_WIRE_ERR_BAD_FIELD;
		prev_to = to;
	}
	return RLY_WIRE_ERR_OK;
}

static enum rly_wire_err check_gap(const struct rly_wire_gap *b)
{
	uint64_t from = rly_be64_load(&b->from_seq);

	if (!all_zero(b->reserved, sizeof(b->reserved)))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (b->reason == 0 || b->reason > RLY_GAP_REASON_MAX || from == 0 ||
	    rly_be64_load(&b->to_seq) < from || rly_be64_load(&b->request_id) == 0 ||
	    all_zero(b->publisher, RLY_ID_LEN))
		return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
}

static enum rly_wire_err check_peer_hello(const struct rly_wire_peer_hello *b)
{
	unsigned kind = b->kind;
	int cookied = kind == RLY_PEER_CHALLENGE || kind == RLY_PEER_PROOF;
	int named = kind == RLY_PEER_HELLO || kind == RLY_PEER_PROOF || kind == RLY_PEER_WELCOME;
	int signed_ = kind == RLY_PEER_PROOF || kind == RLY_PEER_WELCOME;
	int tokened = kind >= RLY_PEER_PROOF;

	if (!all_zero(b->reserved0, sizeof(b->reserved0)) || b->reserved1 != 0 ||
	    !all_zero(b->reserved2, sizeof(b->reserved2)))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (kind < RLY_PEER_HELLO || kind > RLY_PEER_HELLO_KIND_MAX ||
	    rly_be64_load(&b->request_id) == 0)
		return RLY_WIRE_ERR_BAD_FIELD;
	/* Each kind carries exactly the fields its step of the handshake needs. */
	if (cookied != (rly_be64_load(&b->issued_ms) != 0) ||
	    cookied == all_zero(b->cookie, sizeof(b->cookie)) ||
	    named == all_zero(b->sender, sizeof(b->sender)) ||
	    signed_ == all_zero(b->sig, sizeof(b->sig)) ||
	    tokened == all_zero(b->token, sizeof(b->token)))
		return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
}

static enum rly_wire_err check_peer_link(unsigned type, const struct rly_wire_peer_link *b)
{
	unsigned lo = type == RLY_MSG_PEER_JOIN ? RLY_LINK_JOIN : RLY_LINK_PRUNE;
	unsigned hi = type == RLY_MSG_PEER_JOIN ? RLY_LINK_GRAFT : RLY_LINK_LEAVE;

	if (b->reserved0 != 0 || !all_zero(b->reserved1, sizeof(b->reserved1)))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (b->kind < lo || b->kind > hi || b->reason > RLY_REASON_MAX ||
	    rly_be64_load(&b->request_id) == 0 || all_zero(b->token, sizeof(b->token)))
		return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
}

static enum rly_wire_err check_peer_ihave(const struct rly_wire_peer_ihave *b)
{
	if (!all_zero(b->reserved0, sizeof(b->reserved0)) ||
	    !all_zero(b->reserved1, sizeof(b->reserved1)))
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	for (unsigned i = 0; i < RLY_IHAVE_MAX; i++)
		if (b->e[i].reserved != 0 ||
		    (i >= b->n && !all_zero((const uint8_t *)&b->e[i], sizeof(b->e[i]))))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (b->n > RLY_IHAVE_MAX || all_zero(b->token, sizeof(b->token)))
		return RLY_WIRE_ERR_BAD_FIELD;
	for (unsigned i = 0; i < b->n; i++)
		if (rly_be64_load(&b->e[i].highest) == 0 || all_zero(b->e[i].publisher, RLY_ID_LEN))
			return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
}

static enum rly_wire_err check_peer_iwant(const struct rly_wire_peer_iwant *b)
{
	uint64_t from = rly_be64_load(&b->from_seq);

	if (from == 0 || rly_be64_load(&b->to_seq) < from || rly_be64_load(&b->request_id) == 0 ||
	    all_zero(b->publisher, RLY_ID_LEN) || all_zero(b->token, sizeof(b->token)))
		return RLY_WIRE_ERR_BAD_FIELD;
	return RLY_WIRE_ERR_OK;
}

static enum rly_wire_err check_peer_discover(const struct rly_wire_peer_discover *b)
{
	const struct rly_disc_record *r = &b->rec;
	/* Everything after the stream key and partition: a LOOKUP leaves it zero. */
	const uint8_t *rest = (const uint8_t *)r + offsetof(struct rly_disc_record, ip_be);
	const size_t rest_len = sizeof(*r) - offsetof(struct rly_disc_record, ip_be);

	if (b->reserved0 != 0 || b->reserved1 != 0 || !all_zero(b->reserved2, sizeof(b->reserved2)) ||
	    r->flags != 0 || r->reserved != 0)
		return RLY_WIRE_ERR_RESERVED_NONZERO;
	if (b->kind < RLY_DISC_ANNOUNCE || b->kind > RLY_DISC_KIND_MAX ||
	    rly_be64_load(&b->request_id) == 0 || all_zero(b->token, sizeof(b->token)))
		return RLY_WIRE_ERR_BAD_FIELD;
	switch (b->kind) {
	case RLY_DISC_ANNOUNCE:
		if (all_zero(r->relay, RLY_ID_LEN) || rly_be64_load(&r->expires_ms) == 0)
			return RLY_WIRE_ERR_BAD_FIELD;
		break;
	case RLY_DISC_LOOKUP:
		if (!all_zero(rest, rest_len))
			return RLY_WIRE_ERR_BAD_FIELD;
		break;
	default: /* RESULT: a record, or nothing at all */
		if (all_zero(r->relay, RLY_ID_LEN) != all_zero((const uint8_t *)r, sizeof(*r)))
			return RLY_WIRE_ERR_BAD_FIELD;
		break;
	}
	return RLY_WIRE_ERR_OK;
}

static enum rly_wire_err check_control(unsigned type, const uint8_t *body)
{
	switch (type) {
	case RLY_MSG_SUBSCRIBE_SIGNED: {
		const struct rly_wire_subscribe *s = (const void *)body;
		/* Only ever the answer to a challenge, from a named subscriber. */
		if (rly_be64_load(&s->issued_ms) == 0 || all_zero(s->subscriber, sizeof(s->subscriber)))
			return all_zero(s->reserved, sizeof(s->reserved)) ? RLY_WIRE_ERR_BAD_FIELD
									   : RLY_WIRE_ERR_RESERVED_NONZERO;
	}
		/* the rest is checked as a SUBSCRIBE */
		__attribute__((fallthrough));
	case RLY_MSG_SUBSCRIBE: {
		const struct rly_wire_subscribe *s = (const void *)body;
		if (!all_zero(s->reserved, sizeof(s->reserved)))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		/* A first attempt carries no cookie; an answer carries both. */
		if ((rly_be64_load(&s->issued_ms) == 0) != all_zero(s->cookie, sizeof(s->cookie)))
			return RLY_WIRE_ERR_BAD_FIELD;
		if (rly_be32_load(&s->lease_ms) == 0)
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	}
	case RLY_MSG_CHALLENGE: {
		const struct rly_wire_challenge *c = (const void *)body;
		if (c->reserved != 0)
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		if (rly_be64_load(&c->issued_ms) == 0)
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	}
	case RLY_MSG_SUB_ACK:
	case RLY_MSG_UNSUB_ACK:
	case RLY_MSG_HEARTBEAT_ACK: {
		const struct rly_wire_ack *a = (const void *)body;
		if (a->reserved != 0)
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		/* From the X-macro list, so a status appended there is accepted without an edit here. */
		if (!is_sub_status(rly_be16_load(&a->status)))
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	}
	case RLY_MSG_UNSUBSCRIBE:
	case RLY_MSG_HEARTBEAT: {
		const struct rly_wire_sub_ref *r = (const void *)body;
		if (r->reserved != 0)
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		return RLY_WIRE_ERR_OK;
	}
	case RLY_MSG_KEY_REQUEST: {
		const struct rly_wire_key_request *r = (const void *)body;
		if (r->reserved != 0 || !all_zero(r->pad, sizeof(r->pad)))
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		/* Nobody can seal a key to, or answer, a request that names no one. */
		if (rly_be64_load(&r->request_id) == 0 || all_zero(r->publisher, RLY_ID_LEN) ||
		    all_zero(r->requester, RLY_ID_LEN))
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	}
	case RLY_MSG_KEY_RESPONSE: {
		const struct rly_wire_key_response *r = (const void *)body;
		unsigned status = rly_be16_load(&r->status);
		if (r->reserved != 0)
			return RLY_WIRE_ERR_RESERVED_NONZERO;
		if (!is_sub_status(status) || rly_be64_load(&r->request_id) == 0 ||
		    all_zero(r->publisher, RLY_ID_LEN) || all_zero(r->requester, RLY_ID_LEN))
			return RLY_WIRE_ERR_BAD_FIELD;
		/* A key comes with its id, and a refusal with neither. */
		if ((status == RLY_SUB_OK) != (rly_be32_load(&r->key_id) != 0))
			return RLY_WIRE_ERR_BAD_FIELD;
		if (status != RLY_SUB_OK && !all_zero(r->sealed, sizeof(r->sealed)))
			return RLY_WIRE_ERR_BAD_FIELD;
		return RLY_WIRE_ERR_OK;
	}
	case RLY_MSG_NAK:
		return check_nak((const void *)body);
	case RLY_MSG_GAP:
		return check_gap((const void *)body);
	case RLY_MSG_PEER_HELLO:
		return check_peer_hello((const void *)body);
	case RLY_MSG_PEER_JOIN:
	case RLY_MSG_PEER_PRUNE:
		return check_peer_link(type, (const void *)body);
	case RLY_MSG_PEER_IHAVE:
		return check_peer_ihave((const void *)body);
	case RLY_MSG_PEER_IWANT:
		return check_peer_iwant((const void *)body);
	case RLY_MSG_PEER_DISCOVER:
		return check_peer_discover((const void *)body);
	default:
		return RLY_WIRE_ERR_UNKNOWN_TYPE;
	}
}

enum rly_wire_err rly_wire_parse(const void *buf, size_t len, size_t max_len, struct rly_wire_view *v)
{
	const uint8_t *p = buf;
	const struct rly_wire_dgram_hdr *h = buf;
	unsigned type, count;
	int body_size;
	enum rly_wire_err e;

	if (len < sizeof(*h))
		return RLY_WIRE_ERR_TRUNCATED_HEADER;
	if (rly_be16_load(&h->magic) != RLY_WIRE_MAGIC)
		return RLY_WIRE_ERR_BAD_MAGIC;
	if (h->version != RLY_WIRE_VERSION)
		return RLY_WIRE_ERR_BAD_VERSION;
	if (max_len > RLY_WIRE_MAX_DGRAM)
		max_len = RLY_WIRE_MAX_DGRAM;
	if (len > max_len)
		return RLY_WIRE_ERR_OVERSIZED;
	if (rly_be16_load(&h->length) != len)
		return RLY_WIRE_ERR_LENGTH_MISMATCH;

	type = h->type;
	count = rly_be16_load(&h->count);
	body_size = rly_wire_body_size(type);
	if (body_size < 0)
		return is_reserved_type(type) ? RLY_WIRE_ERR_RESERVED_TYPE : RLY_WIRE_ERR_UNKNOWN_TYPE;

	len -= sizeof(*h);
	p += sizeof(*h);
	if (type == RLY_MSG_DATA) {
		e = check_data(p, len, count);
	} else if (count != 1) {
		e = RLY_WIRE_ERR_BAD_COUNT;
	} else if (len != (size_t)body_size) {
		e = RLY_WIRE_ERR_BAD_BODY_SIZE;
	} else {
		e = check_control(type, p);
	}
	if (e != RLY_WIRE_ERR_OK)
		return e;

	v->type = (uint8_t)type;
	v->count = (uint16_t)count;
	v->body = p;
	v->body_len = len;
	return RLY_WIRE_ERR_OK;
}

int rly_wire_build_control(void *out, size_t cap, unsigned type, const void *body)
{
	int size = rly_wire_body_size(type);
	size_t total;

	if (size <= 0)
		return -1;
	total = sizeof(struct rly_wire_dgram_hdr) + (size_t)size;
	if (cap < total)
		return -1;
	rly_wire_put_dgram_hdr(out, type, (uint16_t)total, 1);
	memcpy((uint8_t *)out + sizeof(struct rly_wire_dgram_hdr), body, (size_t)size);
	return (int)total;
}
