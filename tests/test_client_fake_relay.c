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

#include "security/e2e.h"
#include "security/msgsig.h"

#define ADD(r, field) __atomic_add_fetch(&(r)->field, 1, __ATOMIC_SEQ_CST)

static void reply(struct fake_relay *r, const struct sockaddr_in *to, unsigned type,
		  const void *body)
{
	uint8_t buf[512];
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

static int same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* The table entry of @p from, or NULL. Called with r->lock held. */
static struct fr_sub *sub_of(struct fake_relay *r, const struct sockaddr_in *from)
{
	for (unsigned i = 0; i < FR_SUBS; i++)
		if (r->subs[i].used && same_addr(&r->subs[i].addr, from))
			return &r->subs[i];
	return NULL;
}

static void table_add(struct fake_relay *r, const struct rly_wire_subscribe *s,
		      const struct sockaddr_in *from, const uint8_t *proved_id)
{
	struct fr_sub *e;

	pthread_mutex_lock(&r->lock);
	e = sub_of(r, from);
	for (unsigned i = 0; e == NULL && i < FR_SUBS; i++)
		if (!r->subs[i].used)
			e = &r->subs[i];
	if (e) {
		memset(e, 0, sizeof(*e));
		e->used = 1;
		e->addr = *from;
		memcpy(e->stream_key, s->stream_key, RLY_STREAM_KEY_LEN);
		e->partition = rly_be32_load(&s->partition);
		if (proved_id) {
			e->proved = 1;
			memcpy(e->id, proved_id, RLY_ID_LEN);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

static void on_subscribe(struct fake_relay *r, const struct rly_wire_subscribe *s,
			 const struct sockaddr_in *from, const uint8_t *proved_id)
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
		table_add(r, s, from, proved_id);
		if (rly_be32_load(&s->partition) == RLY_KEY_HOLDER_PARTITION) {
			ADD(r, holder_registrations);
		} else {
			r->sub = *from;
			memcpy(r->stream_key, s->stream_key, RLY_STREAM_KEY_LEN);
			r->partition = rly_be32_load(&s->partition);
			FR_SET(r, have_sub, 1);
		}
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
		struct fr_sub *e;
		ADD(r, unsubscribes);
		pthread_mutex_lock(&r->lock);
		if ((e = sub_of(r, from)) != NULL)
			e->used = 0;
		pthread_mutex_unlock(&r->lock);
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

/* An unsigned answer from the relay itself ("retry later"), as relay-control sends it. */
static void key_unavailable(struct fake_relay *r, const struct rly_wire_key_request *q,
			    const struct sockaddr_in *to)
{
	struct rly_wire_key_response a;

	memset(&a, 0, sizeof(a));
	memcpy(a.stream_key, q->stream_key, RLY_STREAM_KEY_LEN);
	a.partition = q->partition;
	a.chain = q->chain;
	rly_be16_store(&a.status, RLY_SUB_UNAVAILABLE);
	a.request_id = q->request_id;
	memcpy(a.publisher, q->publisher, RLY_ID_LEN);
	memcpy(a.requester, q->requester, RLY_ID_LEN);
	reply(r, to, RLY_MSG_KEY_RESPONSE, &a);
}

static void on_key_request(struct fake_relay *r, const struct rly_wire_key_request *in,
			   const struct sockaddr_in *from)
{
	struct rly_wire_key_request q = *in;
	struct sockaddr_in holders[4];
	unsigned n = 0, ok;
	struct fr_sub *e;

	ADD(r, key_requests);
	pthread_mutex_lock(&r->lock);
	r->last_key_request = q;
	pthread_mutex_unlock(&r->lock);
	if (FR_GET(r, drop_key_requests) > 0) {
		__atomic_sub_fetch(&r->drop_key_requests, 1, __ATOMIC_SEQ_CST);
		return;
	}
	pthread_mutex_lock(&r->lock);
	e = sub_of(r, from);
	ok = e && memcmp(e->stream_key, q.stream_key, RLY_STREAM_KEY_LEN) == 0 &&
	     e->partition == rly_be32_load(&q.partition) &&
	     memcmp(q.token, r->token, RLY_COOKIE_LEN) == 0 && e->proved &&
	     memcmp(e->id, q.requester, RLY_ID_LEN) == 0;
	for (unsigned i = 0; ok && i < FR_SUBS && n < 4; i++) {
		struct fr_sub *h = &r->subs[i];
		if (h->used && h->proved && h->partition == RLY_KEY_HOLDER_PARTITION &&
		    memcmp(h->stream_key, q.stream_key, RLY_STREAM_KEY_LEN) == 0 &&
		    memcmp(h->id, q.publisher, RLY_ID_LEN) == 0)
			holders[n++] = h->addr;
	}
	pthread_mutex_unlock(&r->lock);
	if (!ok || !rly_key_request_verify(&q)) {
		ADD(r, key_refused);
		return;
	}
	if (n == 0) {
		ADD(r, key_no_holder);
		key_unavailable(r, &q, from);
		return;
	}
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < FR_PENDING; i++) {
		struct fr_pending *p = &r->pending[i];
		if (!p->used) {
			p->used = 1;
			p->request_id = rly_be64_load(&q.request_id);
			memcpy(p->requester, q.requester, RLY_ID_LEN);
			p->to = *from;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	memset(q.token, 0, RLY_COOKIE_LEN);
	for (unsigned i = 0; i < n; i++)
		reply(r, &holders[i], RLY_MSG_KEY_REQUEST, &q);
	ADD(r, key_forwarded);
}

static void on_key_response(struct fake_relay *r, const struct rly_wire_key_response *a,
			    const uint8_t *dgram, size_t len, const struct sockaddr_in *from)
{
	struct sockaddr_in to;
	struct fr_sub *e;
	int ok = 0;

	pthread_mutex_lock(&r->lock);
	e = sub_of(r, from);
	if (e && e->proved && e->partition == RLY_KEY_HOLDER_PARTITION &&
	    memcmp(e->stream_key, a->stream_key, RLY_STREAM_KEY_LEN) == 0 &&
	    memcmp(e->id, a->publisher, RLY_ID_LEN) == 0) {
		for (unsigned i = 0; i < FR_PENDING; i++) {
			struct fr_pending *p = &r->pending[i];
			if (p->used && p->request_id == rly_be64_load(&a->request_id) &&
			    memcmp(p->requester, a->requester, RLY_ID_LEN) == 0) {
				to = p->to;
				p->used = 0;
				ok = 1;
				break;
			}
		}
	}
	if (ok && FR_GET(r, hold_key_responses) && r->n_held < FR_HELD) {
		memcpy(r->held[r->n_held], dgram, len);
		r->held_len[r->n_held] = (uint16_t)len;
		r->held_to[r->n_held++] = to;
		pthread_mutex_unlock(&r->lock);
		ADD(r, key_responses);
		return;
	}
	pthread_mutex_unlock(&r->lock);
	if (!ok) {
		ADD(r, key_unexpected);
		return;
	}
	ADD(r, key_responses);
	sendto(r->fd, dgram, len, 0, (const struct sockaddr *)&to, sizeof(to));
}

static void release_held(struct fake_relay *r)
{
	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < r->n_held; i++)
		sendto(r->fd, r->held[i], r->held_len[i], 0, (const struct sockaddr *)&r->held_to[i],
		       sizeof(r->held_to[i]));
	r->n_held = 0;
	pthread_mutex_unlock(&r->lock);
}

/* DATA goes to every subscription on a data partition (a key holder's gets none). */
static void fan_out(struct fake_relay *r, const uint8_t *buf, size_t len)
{
	struct sockaddr_in to[FR_SUBS];
	unsigned n = 0;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < FR_SUBS; i++)
		if (r->subs[i].used && r->subs[i].partition != RLY_KEY_HOLDER_PARTITION)
			to[n++] = r->subs[i].addr;
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < n; i++)
		sendto(r->fd, buf, len, 0, (const struct sockaddr *)&to[i], sizeof(to[i]));
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

		if (!FR_GET(r, hold_key_responses) && r->n_held > 0)
			release_held(r);
		if (poll(&pfd, 1, 10) <= 0)
			continue;
		n = recvfrom(r->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
			     &flen);
		if (n < 0)
			continue;
		if (r->canary_len && memmem(buf, (size_t)n, r->canary, r->canary_len))
			ADD(r, canary_seen);
		if (rly_wire_parse(buf, (size_t)n, RLY_WIRE_MAX_DGRAM, &v) != RLY_WIRE_ERR_OK) {
			ADD(r, malformed);
			continue;
		}
		switch (v.type) {
		case RLY_MSG_SUBSCRIBE:
			on_subscribe(r, (const void *)v.body, &from, NULL);
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
			on_subscribe(r, &b->sub, &from, b->sub.subscriber);
			break;
		}
		case RLY_MSG_HEARTBEAT:
		case RLY_MSG_UNSUBSCRIBE:
			on_sub_ref(r, v.type, (const void *)v.body, &from);
			break;
		case RLY_MSG_KEY_REQUEST:
			on_key_request(r, (const void *)v.body, &from);
			break;
		case RLY_MSG_KEY_RESPONSE:
			on_key_response(r, (const void *)v.body, buf, (size_t)n, &from);
			break;
		case RLY_MSG_DATA: {
			unsigned k = ADD(r, data_dgrams) - 1, every = FR_GET(r, corrupt_every);
			if (k < FR_CAPTURE) {
				pthread_mutex_lock(&r->lock);
				memcpy(r->captured[k], buf, (size_t)n);
				r->captured_len[k] = (uint16_t)n;
				pthread_mutex_unlock(&r->lock);
				ADD(r, data_captured);
			}
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
			fan_out(r, buf, (size_t)n);
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
	pthread_mutex_init(&r->lock, NULL);
	randombytes_buf(r->cookie, sizeof(r->cookie));
	randombytes_buf(r->token, sizeof(r->token));
	r->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r->fd < 0)
		return -errno;
	{
		/* Tests send bursts of hundreds of datagrams; a relay thread starved for a while
		 * on a loaded machine must not lose them to a small socket buffer. */
		int sz = 4 << 20;
		if (setsockopt(r->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
			(void)setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
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

void fake_relay_send_to_id(struct fake_relay *r, const uint8_t id[RLY_ID_LEN], const void *buf,
			   size_t len)
{
	struct sockaddr_in to;
	int found = 0;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < FR_SUBS; i++) {
		struct fr_sub *e = &r->subs[i];
		if (e->used && e->proved && e->partition != RLY_KEY_HOLDER_PARTITION &&
		    memcmp(e->id, id, RLY_ID_LEN) == 0) {
			to = e->addr;
			found = 1;
		}
	}
	pthread_mutex_unlock(&r->lock);
	cr_assert(found, "fake relay: no data subscription with that identity");
	cr_assert_eq(sendto(r->fd, buf, len, 0, (const struct sockaddr *)&to, sizeof(to)),
		     (ssize_t)len);
}

size_t fake_relay_captured(struct fake_relay *r, unsigned i, uint8_t *buf, size_t cap)
{
	size_t len;

	cr_assert_lt(i, FR_GET(r, data_captured), "fake relay: datagram %u was not captured", i);
	pthread_mutex_lock(&r->lock);
	len = r->captured_len[i];
	cr_assert_leq(len, cap);
	memcpy(buf, r->captured[i], len);
	pthread_mutex_unlock(&r->lock);
	return len;
}

void fake_relay_last_key_request(struct fake_relay *r, struct rly_wire_key_request *out)
{
	cr_assert_gt(FR_GET(r, key_requests), 0, "fake relay: no KEY_REQUEST received");
	pthread_mutex_lock(&r->lock);
	*out = r->last_key_request;
	pthread_mutex_unlock(&r->lock);
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
