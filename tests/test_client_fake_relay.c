/* SPDX-License-Identifier: Apache-2.0 */
#include "test_client_fake_relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "security/msgsig.h"

#define ADD(r, field) __atomic_add_fetch(&(r)->field, 1, __ATOMIC_SEQ_CST)

static void reply(struct fake_relay *r, const struct sockaddr_in *to, unsigned type,
		  const void *body)
{
	uint8_t buf[256];
	int len = rly_wire_build_control(buf, sizeof(buf), type, body);

	/* This runs on the fake relay's thread, where a Criterion assertion cannot stop the test:
	 * a failure here shows up as a missing answer instead. */
	if (len > 0)
		sendto(r->fd, buf, (size_t)len, 0, (const struct sockaddr *)to, sizeof(*to));
}

static void ack(struct fake_relay *r, const struct sockaddr_in *to, unsigned type,
		const uint8_t *key, uint32_t partition_be, uint64_t request_id_be, unsigned status,
		int with_token)
{
	struct rly_wire_ack a;

	memset(&a, 0, sizeof(a));
	memcpy(a.stream_key, key, RLY_STREAM_KEY_LEN);
	a.partition = partition_be;
	rly_be16_store(&a.status, (uint16_t)status);
	a.request_id = request_id_be;
	if (status == RLY_SUB_OK && with_token) {
		rly_be32_store(&a.lease_ms, r->lease_ms);
		rly_be32_store(&a.heartbeat_ms, r->heartbeat_ms);
		memcpy(a.token, r->token, RLY_COOKIE_LEN);
	}
	reply(r, to, type, &a);
}

/* The answer to a CHALLENGE from a subscriber with an identity: check the signature the way
 * docs/wire-protocol.md section 5.1a defines it, with libsodium alone. */
static int subscribe_sig_ok(const struct rly_wire_subscribe_signed *b)
{
	static const char ctx[] = RLY_SUBSCRIBE_SIG_CONTEXT;
	uint8_t msg[sizeof(ctx) - 1 + sizeof(b->sub)];

	memcpy(msg, ctx, sizeof(ctx) - 1);
	memcpy(msg + sizeof(ctx) - 1, &b->sub, sizeof(b->sub));
	return crypto_sign_verify_detached(b->sig, msg, sizeof(msg), b->sub.subscriber) == 0;
}

static void on_subscribe(struct fake_relay *r, const struct rly_wire_subscribe *s,
			 const struct sockaddr_in *from)
{
	r->last_lease_req = rly_be32_load(&s->lease_ms);
	if (rly_be64_load(&s->issued_ms) == 0) {
		struct rly_wire_challenge c;

		ADD(r, subscribes_first);
		if (FR_GET(r, drop_challenges) > 0) {
			__atomic_sub_fetch(&r->drop_challenges, 1, __ATOMIC_SEQ_CST);
			return;
		}
		memset(&c, 0, sizeof(c));
		memcpy(c.stream_key, s->stream_key, RLY_STREAM_KEY_LEN);
		c.partition = s->partition;
		c.request_id = s->request_id;
		rly_be64_store(&c.issued_ms, 424242);
		memcpy(c.cookie, r->cookie, RLY_COOKIE_LEN);
		ADD(r, challenges);
		reply(r, from, RLY_MSG_CHALLENGE, &c);
		return;
	}
	if (memcmp(s->cookie, r->cookie, RLY_COOKIE_LEN) != 0 ||
	    rly_be64_load(&s->issued_ms) != 424242) {
		ADD(r, bad_cookies);
		ack(r, from, RLY_MSG_SUB_ACK, s->stream_key, s->partition, s->request_id,
		    RLY_SUB_BAD_COOKIE, 0);
		return;
	}
	ADD(r, subscribes_cookie);
	if (FR_GET(r, sub_status) == RLY_SUB_OK) {
		r->sub = *from;
		memcpy(r->stream_key, s->stream_key, RLY_STREAM_KEY_LEN);
		r->partition = rly_be32_load(&s->partition);
		FR_SET(r, have_sub, 1);
	}
	ADD(r, sub_acks);
	ack(r, from, RLY_MSG_SUB_ACK, s->stream_key, s->partition, s->request_id,
	    FR_GET(r, sub_status), 1);
}

static void on_sub_ref(struct fake_relay *r, unsigned type, const struct rly_wire_sub_ref *s,
		       const struct sockaddr_in *from)
{
	unsigned status;

	if (memcmp(s->token, r->token, RLY_COOKIE_LEN) != 0) {
		ADD(r, bad_tokens); /* like relay-control: no answer to a wrong token */
		return;
	}
	if (type == RLY_MSG_UNSUBSCRIBE) {
		ADD(r, unsubscribes);
		FR_SET(r, have_sub, 0);
		ack(r, from, RLY_MSG_UNSUB_ACK, s->stream_key, s->partition, s->request_id,
		    RLY_SUB_OK, 0);
		return;
	}
	ADD(r, heartbeats);
	if (FR_GET(r, silent_heartbeats))
		return;
	status = __atomic_exchange_n(&r->hb_status_once, 0, __ATOMIC_SEQ_CST);
	if (status == 0)
		status = FR_GET(r, hb_status);
	ack(r, from, RLY_MSG_HEARTBEAT_ACK, s->stream_key, s->partition, s->request_id, status, 0);
}

/* Where to flip a byte: the last payload byte of the first message, or, when it has no
 * payload, a byte of its timestamp. Either way the message stays well-formed. */
static size_t corrupt_offset(const struct rly_wire_view *v)
{
	const struct rly_wire_msg_hdr *h = (const void *)v->body;
	size_t hdr = sizeof(struct rly_wire_dgram_hdr), payload_len = rly_be16_load(&h->payload_len);

	if (payload_len == 0)
		return hdr + offsetof(struct rly_wire_msg_hdr, timestamp_ns) + 7;
	return hdr + sizeof(*h) + payload_len - 1;
}

static void *serve(void *arg)
{
	struct fake_relay *r = arg;
	uint8_t buf[4096];

	while (!FR_GET(r, stop)) {
		struct pollfd pfd = {.fd = r->fd, .events = POLLIN};
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		struct rly_wire_view v;
		ssize_t n;

		if (poll(&pfd, 1, 10) <= 0)
			continue;
		n = recvfrom(r->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
			     &flen);
		if (n < 0)
			continue;
		if (rly_wire_parse(buf, (size_t)n, RLY_WIRE_MAX_DGRAM, &v) != RLY_WIRE_ERR_OK) {
			ADD(r, malformed);
			continue;
		}
		switch (v.type) {
		case RLY_MSG_SUBSCRIBE:
			on_subscribe(r, (const void *)v.body, &from);
			break;
		case RLY_MSG_SUBSCRIBE_SIGNED: {
			const struct rly_wire_subscribe_signed *b = (const void *)v.body;
			if (!subscribe_sig_ok(b)) {
				ADD(r, bad_signed_answers);
				ack(r, &from, RLY_MSG_SUB_ACK, b->sub.stream_key, b->sub.partition,
				    b->sub.request_id, RLY_SUB_DENIED, 0);
				break;
			}
			memcpy(r->last_subscriber, b->sub.subscriber, RLY_ID_LEN);
			ADD(r, signed_answers);
			on_subscribe(r, &b->sub, &from);
			break;
		}
		case RLY_MSG_HEARTBEAT:
		case RLY_MSG_UNSUBSCRIBE:
			on_sub_ref(r, v.type, (const void *)v.body, &from);
			break;
		case RLY_MSG_DATA: {
			unsigned k = ADD(r, data_dgrams) - 1, every = FR_GET(r, corrupt_every);
			if (!FR_GET(r, forward_data) || !FR_GET(r, have_sub))
				break;
			if (FR_GET(r, corrupt_data) && (every == 0 || k % every == 0)) {
				size_t at = corrupt_offset(&v);
				ADD(r, corrupted);
				buf[at] ^= 0x5a;
				sendto(r->fd, buf, (size_t)n, 0, (const struct sockaddr *)&r->sub,
				       sizeof(r->sub));
				if (!FR_GET(r, original_too))
					break;
				buf[at] ^= 0x5a;
			}
			sendto(r->fd, buf, (size_t)n, 0, (const struct sockaddr *)&r->sub,
			       sizeof(r->sub));
			break;
		}
		default:
			break;
		}
	}
	return NULL;
}

int fake_relay_start(struct fake_relay *r)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);

	if (r->lease_ms == 0)
		r->lease_ms = 10000;
	if (r->heartbeat_ms == 0)
		r->heartbeat_ms = r->lease_ms / 3;
	if (sodium_init() < 0)
		return -EIO;
	randombytes_buf(r->cookie, sizeof(r->cookie));
	randombytes_buf(r->token, sizeof(r->token));
	r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0)
		return -errno;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(r->fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(r->fd, (struct sockaddr *)&a, &alen) < 0) {
		close(r->fd);
		return -errno;
	}
	r->port = ntohs(a.sin_port);
	snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%u", r->port);
	return -pthread_create(&r->thread, NULL, serve, r);
}

void fake_relay_stop(struct fake_relay *r)
{
	FR_SET(r, stop, 1);
	pthread_join(r->thread, NULL);
	close(r->fd);
}

void fake_relay_send_to_sub(struct fake_relay *r, const void *buf, size_t len)
{
	cr_assert(FR_GET(r, have_sub), "fake relay: nobody subscribed to send to");
	cr_assert_eq(sendto(r->fd, buf, len, 0, (const struct sockaddr *)&r->sub, sizeof(r->sub)),
		     (ssize_t)len);
}

size_t fake_build_data(uint8_t *buf, size_t cap, const struct fake_msg *m, unsigned n)
{
	size_t off = sizeof(struct rly_wire_dgram_hdr);

	for (unsigned i = 0; i < n; i++) {
		struct rly_wire_msg_hdr h;

		size_t at = off, sig = m[i].signer ? RLY_WIRE_SIG_LEN : 0;

		cr_assert_leq(off + sizeof(h) + m[i].payload_len + sig, cap);
		memset(&h, 0, sizeof(h));
		memcpy(h.stream_key, m[i].stream_key, RLY_STREAM_KEY_LEN);
		rly_be32_store(&h.partition, m[i].partition);
		rly_be32_store(&h.chain, m[i].chain);
		memcpy(h.publisher, m[i].signer ? m[i].signer->pk : m[i].publisher, RLY_ID_LEN);
		rly_be64_store(&h.seq, m[i].seq);
		rly_be64_store(&h.prev_seq, m[i].prev_seq);
		rly_be64_store(&h.timestamp_ns, 1);
		rly_be16_store(&h.payload_len, m[i].payload_len);
		memcpy(buf + off, &h, sizeof(h));
		off += sizeof(h);
		if (m[i].payload_len)
			memcpy(buf + off, m[i].payload, m[i].payload_len);
		off += m[i].payload_len;
		if (m[i].signer) {
			rly_msg_sign(m[i].signer, (struct rly_wire_msg_hdr *)(buf + at));
			off += sig;
		}
	}
	rly_wire_put_dgram_hdr(buf, RLY_MSG_DATA, (uint16_t)off, (uint16_t)n);
	return off;
}
