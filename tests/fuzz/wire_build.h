/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Datagram builders shared by tests/test_wire.c, the corpus generator and the fuzz target. They
 * write bytes through the public accessors of include/relay/wire.h only, so a test built on them
 * checks the parser against the header, not against itself.
 */
#ifndef RLY_TESTS_WIRE_BUILD_H
#define RLY_TESTS_WIRE_BUILD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "relay/wire.h"

/** What to put in one data message; unset fields take recognisable, valid defaults. */
struct wb_msg {
	uint64_t seq;       /* 0 means "1" unless force_zero_seq */
	uint64_t prev_seq;
	uint32_t key_id;    /* nonzero sets RLY_MSG_F_ENCRYPTED */
	uint16_t payload_len;
	int is_signed;      /* 64-byte signature after the payload */
	uint32_t partition;
	uint32_t chain;
	uint16_t content_type;
	uint8_t ttl;
};

/* Bytes of payload/signature are derived from the sequence so a reader can check where they are. */
static inline uint8_t wb_payload_byte(uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 31u + i);
}

static inline uint8_t wb_sig_byte(uint64_t seq, size_t i)
{
	return (uint8_t)(0xA5u ^ (uint8_t)(seq + i));
}

/* Write one message at @p p and return its size. */
static inline size_t wb_put_msg(uint8_t *p, const struct wb_msg *m)
{
	struct rly_wire_msg_hdr *h = (struct rly_wire_msg_hdr *)p;
	uint64_t seq = m->seq ? m->seq : 1;
	uint16_t sig = m->is_signed ? RLY_WIRE_SIG_LEN : 0;
	uint16_t flags = (m->is_signed ? RLY_MSG_F_SIGNED : 0) | (m->key_id ? RLY_MSG_F_ENCRYPTED : 0);

	memset(h, 0, sizeof(*h));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		h->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&h->partition, m->partition);
	rly_be32_store(&h->chain, m->chain ? m->chain : 0xC0FFEEu);
	for (unsigned i = 0; i < RLY_ID_LEN; i++)
		h->publisher[i] = (uint8_t)(0x80 + i);
	rly_be64_store(&h->seq, seq);
	rly_be64_store(&h->prev_seq, m->prev_seq);
	rly_be64_store(&h->timestamp_ns, 1700000000000000000ull + seq);
	rly_be32_store(&h->key_id, m->key_id);
	rly_be16_store(&h->content_type, m->content_type);
	rly_be16_store(&h->flags, flags);
	rly_be16_store(&h->payload_len, m->payload_len);
	rly_be16_store(&h->sig_len, sig);
	h->ttl = m->ttl;
	for (size_t i = 0; i < m->payload_len; i++)
		p[sizeof(*h) + i] = wb_payload_byte(seq, i);
	for (size_t i = 0; i < sig; i++)
		p[sizeof(*h) + m->payload_len + i] = wb_sig_byte(seq, i);
	return sizeof(*h) + m->payload_len + sig;
}

/* Set the header's length field to @p len (for builders that append after the header). */
static inline void wb_set_len(uint8_t *buf, size_t len)
{
	rly_be16_store(&((struct rly_wire_dgram_hdr *)buf)->length, (uint16_t)len);
}

/* Set the header's count field. */
static inline void wb_set_count(uint8_t *buf, uint16_t count)
{
	rly_be16_store(&((struct rly_wire_dgram_hdr *)buf)->count, count);
}

/*
 * A DATA datagram of @p n messages, message i with sequence first_seq + i (prev = seq - 1) and
 * payload_len[i] bytes (all 0 if @p payload_len is NULL). Returns its length.
 */
static inline size_t wb_data(uint8_t *buf, unsigned n, uint64_t first_seq,
			     const uint16_t *payload_len, int is_signed, uint32_t key_id)
{
	size_t off = sizeof(struct rly_wire_dgram_hdr);

	for (unsigned i = 0; i < n; i++) {
		struct wb_msg m = {
			.seq = first_seq + i,
			.prev_seq = first_seq + i - 1,
			.payload_len = payload_len ? payload_len[i] : 0,
			.is_signed = is_signed,
			.key_id = key_id,
		};
		off += wb_put_msg(buf + off, &m);
	}
	rly_wire_put_dgram_hdr(buf, RLY_MSG_DATA, (uint16_t)off, (uint16_t)n);
	return off;
}

/* A one-message DATA datagram with @p payload bytes of payload. */
static inline size_t wb_data1(uint8_t *buf, uint16_t payload)
{
	return wb_data(buf, 1, 1, &payload, 0, 0);
}

/* First SUBSCRIBE of a handshake (no cookie). */
static inline void wb_subscribe_body(struct rly_wire_subscribe *s, int with_cookie)
{
	memset(s, 0, sizeof(*s));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		s->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&s->partition, 3);
	rly_be32_store(&s->lease_ms, 10000);
	rly_be64_store(&s->request_id, 0x1122334455667788ull);
	for (unsigned i = 0; i < RLY_ID_LEN; i++)
		s->subscriber[i] = (uint8_t)(0x40 + i);
	if (with_cookie) {
		rly_be64_store(&s->issued_ms, 1700000000123ull);
		for (unsigned i = 0; i < RLY_COOKIE_LEN; i++)
			s->cookie[i] = (uint8_t)(0xC0 + i);
	}
}

static inline void wb_challenge_body(struct rly_wire_challenge *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		c->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&c->partition, 3);
	rly_be64_store(&c->request_id, 0x1122334455667788ull);
	rly_be64_store(&c->issued_ms, 1700000000123ull);
	for (unsigned i = 0; i < RLY_COOKIE_LEN; i++)
		c->cookie[i] = (uint8_t)(0xC0 + i);
}

static inline void wb_ack_body(struct rly_wire_ack *a, uint16_t status)
{
	memset(a, 0, sizeof(*a));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		a->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&a->partition, 3);
	rly_be16_store(&a->status, status);
	rly_be64_store(&a->request_id, 0x1122334455667788ull);
	if (status == RLY_SUB_OK) {
		rly_be32_store(&a->lease_ms, 10000);
		rly_be32_store(&a->heartbeat_ms, 3000);
		for (unsigned i = 0; i < RLY_COOKIE_LEN; i++)
			a->token[i] = (uint8_t)(0xE0 + i);
	}
}

static inline void wb_sub_ref_body(struct rly_wire_sub_ref *r)
{
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		r->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&r->partition, 3);
	rly_be64_store(&r->request_id, 0x1122334455667788ull);
	for (unsigned i = 0; i < RLY_COOKIE_LEN; i++)
		r->token[i] = (uint8_t)(0xE0 + i);
}

static inline void wb_key_request_body(struct rly_wire_key_request *r)
{
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		r->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&r->partition, 3);
	rly_be32_store(&r->chain, 0xC0FFEE);
	rly_be32_store(&r->key_id, RLY_KEY_ID(1, 2));
	rly_be64_store(&r->request_id, 0x1122334455667788ull);
	for (unsigned i = 0; i < RLY_ID_LEN; i++) {
		r->publisher[i] = (uint8_t)(0x40 + i);
		r->requester[i] = (uint8_t)(0x70 + i);
	}
	for (unsigned i = 0; i < RLY_COOKIE_LEN; i++)
		r->token[i] = (uint8_t)(0xE0 + i);
	for (unsigned i = 0; i < RLY_WIRE_SIG_LEN; i++)
		r->sig[i] = (uint8_t)(0x90 + i);
}

static inline void wb_key_response_body(struct rly_wire_key_response *r, uint16_t status)
{
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		r->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&r->partition, 3);
	rly_be32_store(&r->chain, 0xC0FFEE);
	rly_be16_store(&r->status, status);
	rly_be64_store(&r->request_id, 0x1122334455667788ull);
	for (unsigned i = 0; i < RLY_ID_LEN; i++) {
		r->publisher[i] = (uint8_t)(0x40 + i);
		r->requester[i] = (uint8_t)(0x70 + i);
	}
	if (status == RLY_SUB_OK) {
		rly_be32_store(&r->key_id, RLY_KEY_ID(1, 2));
		for (unsigned i = 0; i < RLY_KEY_SEALED_LEN; i++)
			r->sealed[i] = (uint8_t)(0xA0 + i);
	}
	for (unsigned i = 0; i < RLY_WIRE_SIG_LEN; i++)
		r->sig[i] = (uint8_t)(0x90 + i);
}

/* Token of a peer session: what the receiver handed out (section 9 of docs/wire-protocol.md). */
static inline void wb_peer_token(uint8_t token[RLY_COOKIE_LEN])
{
	for (unsigned i = 0; i < RLY_COOKIE_LEN; i++)
		token[i] = (uint8_t)(0xD0 + i);
}

/* A PEER_HELLO of @p kind carrying exactly the fields that kind carries; any target. */
static inline void wb_peer_hello_body(struct rly_wire_peer_hello *h, unsigned kind)
{
	memset(h, 0, sizeof(*h));
	h->kind = (uint8_t)kind;
	rly_be64_store(&h->request_id, 0x2233445566778899ull);
	if (kind == RLY_PEER_CHALLENGE || kind == RLY_PEER_PROOF) {
		rly_be64_store(&h->issued_ms, 1700000000123ull);
		for (unsigned i = 0; i < RLY_COOKIE_LEN; i++)
			h->cookie[i] = (uint8_t)(0xC0 + i);
	}
	if (kind >= RLY_PEER_PROOF)
		wb_peer_token(h->token);
	if (kind == RLY_PEER_HELLO || kind == RLY_PEER_PROOF || kind == RLY_PEER_WELCOME)
		for (unsigned i = 0; i < RLY_ID_LEN; i++)
			h->sender[i] = (uint8_t)(0x40 + i);
	for (unsigned i = 0; i < RLY_ID_LEN; i++)
		h->target[i] = (uint8_t)(0x70 + i);
	if (kind == RLY_PEER_PROOF || kind == RLY_PEER_WELCOME)
		for (unsigned i = 0; i < RLY_WIRE_SIG_LEN; i++)
			h->sig[i] = (uint8_t)(0x90 + i);
}

/* A PEER_JOIN (kinds JOIN..GRAFT) or PEER_PRUNE (PRUNE, LEAVE) body of @p kind. */
static inline void wb_peer_link_body(struct rly_wire_peer_link *l, unsigned kind)
{
	memset(l, 0, sizeof(*l));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		l->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&l->partition, 3);
	l->kind = (uint8_t)kind;
	if (kind == RLY_LINK_REFUSE || kind == RLY_LINK_LEAVE)
		l->reason = RLY_REASON_FULL;
	rly_be64_store(&l->request_id, 0x2233445566778899ull);
	wb_peer_token(l->token);
}

/* A PEER_IHAVE with @p n (at most RLY_IHAVE_MAX) used entries, the rest zero. */
static inline void wb_peer_ihave_body(struct rly_wire_peer_ihave *h, unsigned n)
{
	memset(h, 0, sizeof(*h));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		h->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&h->partition, 3);
	h->n = (uint8_t)n;
	wb_peer_token(h->token);
	for (unsigned k = 0; k < n && k < RLY_IHAVE_MAX; k++) {
		for (unsigned i = 0; i < RLY_ID_LEN; i++)
			h->e[k].publisher[i] = (uint8_t)(0x80 + k + i);
		rly_be32_store(&h->e[k].chain, 0xC0FFEE00u + k);
		rly_be64_store(&h->e[k].highest, 100u + k);
	}
}

static inline void wb_peer_iwant_body(struct rly_wire_peer_iwant *w)
{
	memset(w, 0, sizeof(*w));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		w->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&w->partition, 3);
	rly_be32_store(&w->chain, 0xC0FFEE);
	for (unsigned i = 0; i < RLY_ID_LEN; i++)
		w->publisher[i] = (uint8_t)(0x80 + i);
	rly_be64_store(&w->from_seq, 5);
	rly_be64_store(&w->to_seq, 9);
	rly_be64_store(&w->request_id, 0x2233445566778899ull);
	wb_peer_token(w->token);
}

/* A NAK of @p n ranges (1..8): 10..12, 20..20, 30..35, ... of one chain. */
static inline void wb_nak_body(struct rly_wire_nak *b, unsigned n)
{
	memset(b, 0, sizeof(*b));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		b->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&b->partition, 3);
	rly_be32_store(&b->chain, 0xC0FFEE);
	for (unsigned i = 0; i < RLY_ID_LEN; i++)
		b->publisher[i] = (uint8_t)(0x80 + i);
	rly_be64_store(&b->request_id, 0x2233445566778899ull);
	b->n = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		rly_be64_store(&b->r[i].from_seq, 10u * (i + 1));
		rly_be64_store(&b->r[i].to_seq, 10u * (i + 1) + (i % 3) * 2);
	}
}

/* A GAP for 5..9 of one chain, with @p reason. */
static inline void wb_gap_body(struct rly_wire_gap *g, unsigned reason)
{
	memset(g, 0, sizeof(*g));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		g->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&g->partition, 3);
	rly_be32_store(&g->chain, 0xC0FFEE);
	for (unsigned i = 0; i < RLY_ID_LEN; i++)
		g->publisher[i] = (uint8_t)(0x80 + i);
	rly_be64_store(&g->from_seq, 5);
	rly_be64_store(&g->to_seq, 9);
	rly_be64_store(&g->request_id, 0x2233445566778899ull);
	rly_be64_store(&g->lowest, 10);
	g->reason = (uint8_t)reason;
}

/* A signed-looking discovery record (the signature bytes are a pattern, not a signature). */
static inline void wb_disc_record(struct rly_disc_record *r)
{
	memset(r, 0, sizeof(*r));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		r->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&r->partition, 3);
	rly_be32_store(&r->ip_be, 0xC0A80001u); /* 192.168.0.1 */
	rly_be16_store(&r->udp_port, RLY_WIRE_DEFAULT_PORT);
	rly_be64_store(&r->expires_ms, 1700000060000ull);
	for (unsigned i = 0; i < RLY_ID_LEN; i++)
		r->relay[i] = (uint8_t)(0x60 + i);
	for (unsigned i = 0; i < RLY_WIRE_SIG_LEN; i++)
		r->sig[i] = (uint8_t)(0x90 + i);
}

/*
 * A PEER_DISCOVER of @p kind: ANNOUNCE and RESULT carry a record, LOOKUP only its stream key and
 * partition.
 */
static inline void wb_peer_discover_body(struct rly_wire_peer_discover *d, unsigned kind)
{
	memset(d, 0, sizeof(*d));
	d->kind = (uint8_t)kind;
	rly_be64_store(&d->request_id, 0x2233445566778899ull);
	wb_peer_token(d->token);
	wb_disc_record(&d->rec);
	if (kind == RLY_DISC_LOOKUP) {
		uint8_t *rec = (uint8_t *)&d->rec;
		size_t keep = offsetof(struct rly_disc_record, ip_be);
		memset(rec + keep, 0, sizeof(d->rec) - keep);
	}
	if (kind == RLY_DISC_RESULT)
		rly_be16_store(&d->more, 2);
}

/*
 * A valid body for control type @p type into @p body (room for WB_BODY_MAX bytes); returns the
 * body size, or -1 if @p type has no fixed body.
 */
static inline int wb_control_body(unsigned type, void *body)
{
	switch (type) {
	case RLY_MSG_SUBSCRIBE:
		wb_subscribe_body(body, 0);
		break;
	case RLY_MSG_SUBSCRIBE_SIGNED: {
		struct rly_wire_subscribe_signed *ss = body;
		wb_subscribe_body(&ss->sub, 1);
		for (unsigned i = 0; i < RLY_WIRE_SIG_LEN; i++)
			ss->sig[i] = (uint8_t)(0x90 + i);
		break;
	}
	case RLY_MSG_CHALLENGE:
		wb_challenge_body(body);
		break;
	case RLY_MSG_SUB_ACK:
	case RLY_MSG_UNSUB_ACK:
	case RLY_MSG_HEARTBEAT_ACK:
		wb_ack_body(body, RLY_SUB_OK);
		break;
	case RLY_MSG_UNSUBSCRIBE:
	case RLY_MSG_HEARTBEAT:
		wb_sub_ref_body(body);
		break;
	case RLY_MSG_KEY_REQUEST:
		wb_key_request_body(body);
		break;
	case RLY_MSG_KEY_RESPONSE:
		wb_key_response_body(body, RLY_SUB_OK);
		break;
	case RLY_MSG_NAK:
		wb_nak_body(body, 3);
		break;
	case RLY_MSG_GAP:
		wb_gap_body(body, RLY_GAP_EVICTED);
		break;
	case RLY_MSG_PEER_HELLO:
		/* the kind with every optional field set */
		wb_peer_hello_body(body, RLY_PEER_PROOF);
		break;
	case RLY_MSG_PEER_JOIN:
		wb_peer_link_body(body, RLY_LINK_JOIN);
		break;
	case RLY_MSG_PEER_PRUNE:
		wb_peer_link_body(body, RLY_LINK_PRUNE);
		break;
	case RLY_MSG_PEER_IHAVE:
		wb_peer_ihave_body(body, 3);
		break;
	case RLY_MSG_PEER_IWANT:
		wb_peer_iwant_body(body);
		break;
	case RLY_MSG_PEER_DISCOVER:
		wb_peer_discover_body(body, RLY_DISC_ANNOUNCE);
		break;
	default:
		return -1;
	}
	return rly_wire_body_size(type);
}

/* Room for the largest control body (PEER_IHAVE). */
#define WB_BODY_MAX 512

static_assert(sizeof(struct rly_wire_key_request) <= WB_BODY_MAX, "room for every body");
static_assert(sizeof(struct rly_wire_key_response) <= WB_BODY_MAX, "room for every body");
static_assert(sizeof(struct rly_wire_subscribe_signed) <= WB_BODY_MAX, "room for every body");
static_assert(sizeof(struct rly_wire_peer_hello) <= WB_BODY_MAX, "room for every body");
static_assert(sizeof(struct rly_wire_peer_ihave) <= WB_BODY_MAX, "room for every body");
static_assert(sizeof(struct rly_wire_peer_discover) <= WB_BODY_MAX, "room for every body");

/* A valid control datagram of @p type; returns its length or -1. */
static inline int wb_control(uint8_t *buf, size_t cap, unsigned type)
{
	uint8_t body[WB_BODY_MAX];

	if (wb_control_body(type, body) < 0)
		return -1;
	return rly_wire_build_control(buf, cap, type, body);
}

#endif
