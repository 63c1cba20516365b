/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subscriber: the socket, the receive path and data messages. Every datagram, whatever it
 * claims to be, goes through rly_wire_parse before a byte of it is used, so a subscriber refuses
 * exactly what a relay refuses and counts it under the same reason.
 *
 * The socket is connect()ed to the relay: the kernel then drops datagrams from anyone else, which
 * is what makes the relay's return-routability check meaningful for the subscriber too. The relay
 * itself is not trusted with content: every message's publisher signature is verified before the
 * message touches any state (unless the application turned that off).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "client/sub.h"
#include "common/clock.h"
#include "common/err.h"
#include "security/msgsig.h"

/* Receive batches per rly_sub_poll turn, so a flood cannot starve the heartbeat timer. */
#define SUB_BATCHES_PER_POLL 8

void sub_describe(const rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns,
		  struct rly_msg *m)
{
	m->stream_key = h->stream_key;
	m->partition = s->partition;
	m->chain = rly_be32_load(&h->chain);
	m->publisher = h->publisher;
	m->seq = rly_be64_load(&h->seq);
	m->prev_seq = rly_be64_load(&h->prev_seq);
	m->timestamp_ns = rly_be64_load(&h->timestamp_ns);
	m->recv_ns = recv_ns;
	m->key_id = rly_be32_load(&h->key_id);
	m->content_type = rly_be16_load(&h->content_type);
	m->flags = rly_be16_load(&h->flags);
	m->payload = (const uint8_t *)(h + 1);
	m->payload_len = rly_be16_load(&h->payload_len);
	m->sig = m->payload + m->payload_len;
	m->sig_len = rly_be16_load(&h->sig_len);
	m->repair_ns = s->cur_repair_ns;
	m->held_ns = s->cur_held_ns;
}

void sub_release(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns, uint64_t mono_ns)
{
	struct rly_msg m;

	/* Decryption comes last: an encrypted message is the publisher's (signature) and in
	 * order (chain) before it may cost a decryption or a key request. */
	if (rly_be16_load(&h->flags) & RLY_MSG_F_ENCRYPTED) {
		keys_on_message(s, h, recv_ns, mono_ns);
		return;
	}
	s->st.msgs++;
	s->delivered++;
	if (s->cb.on_message == NULL)
		return;
	sub_describe(s, h, recv_ns, &m);
	s->cb.on_message(s->cb.ctx, &m);
}

void sub_deliver(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns,
		 const uint8_t *payload, uint16_t payload_len)
{
	struct rly_msg m;

	s->st.msgs++;
	s->delivered++;
	if (s->cb.on_message == NULL)
		return;
	sub_describe(s, h, recv_ns, &m);
	m.payload = payload;
	m.payload_len = payload_len;
	s->cb.on_message(s->cb.ctx, &m);
}

void sub_report_bad(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns, int reason)
{
	struct rly_msg m;

	if (reason == RLY_BAD_NO_KEY || reason == RLY_BAD_DECRYPT)
		s->st.undecryptable++;
	else
		s->st.bad_sig++;
	if (s->cb.on_bad_message == NULL)
		return;
	sub_describe(s, h, recv_ns, &m);
	s->cb.on_bad_message(s->cb.ctx, &m, reason);
}

/*
 * 0 if the message may be used, else the reason to drop it. Verification comes before the chain
 * table is even looked at: a forged message must not insert (and so evict) a chain entry, move a
 * chain's last sequence, or provoke a gap report.
 */
static int refuse(const rly_sub_t *s, const struct rly_wire_msg_hdr *h, const struct rly_msg *m)
{
	if (s->no_verify)
		return 0;
	if (!(m->flags & RLY_MSG_F_SIGNED))
		return RLY_BAD_UNSIGNED;
	if (!rly_msg_verify(h))
		return RLY_BAD_SIGNATURE;
	return 0;
}

static void on_data(rly_sub_t *s, const struct rly_wire_view *v, uint64_t recv_ns, uint64_t mono_ns)
{
	const struct rly_wire_msg_hdr *h;
	size_t off = 0;

	while ((h = rly_wire_next_msg(v, &off)) != NULL) {
		struct client_chain *c;
		struct rly_msg m;
		int created, bad, reason = RLY_SUB_GAP_SEEN;

		if (memcmp(h->stream_key, s->stream_key, RLY_STREAM_KEY_LEN) != 0 ||
		    rly_be32_load(&h->partition) != s->partition) {
			s->st.foreign++;
			continue;
		}
		sub_describe(s, h, recv_ns, &m);
		bad = refuse(s, h, &m);
		if (bad) {
			sub_report_bad(s, h, recv_ns, bad);
			continue;
		}
		c = client_chains_get(&s->chains, h->publisher, m.chain, &created);
		if (created) {
			/* We may have joined mid-chain: what came before us is not a gap. */
			s->st.chains++;
			c->last_seq = m.seq;
			sub_release(s, h, recv_ns, mono_ns);
			continue;
		}
		if (!s->no_repair && (c->rep || m.prev_seq > c->last_seq)) {
			/* A gap is open, or this message opens one: held, asked for, in order. */
			int r = repair_on_message(s, c, h, recv_ns, mono_ns);
			if (r > 0)
				continue;
			if (r == 0) {
				s->st.stale++;
				continue;
			}
			reason = RLY_SUB_GAP_OVERFLOW; /* every repair slot is busy: as without repair */
		}
		if (m.seq <= c->last_seq) {
			/* A relay may send a lost message again (its peers repair holes from their
			 * history): it fills a gap reported earlier, and is delivered late, once. */
			if (s->no_repair && client_chain_hole_fill(c, m.seq)) {
				s->st.repaired++;
				sub_release(s, h, recv_ns, mono_ns);
			} else {
				s->st.stale++;
			}
			continue;
		}
		if (m.prev_seq > c->last_seq) {
			struct rly_gap g = {
			    .publisher = h->publisher,
			    .chain = m.chain,
			    .from_seq = c->last_seq + 1,
			    .to_seq = m.prev_seq,
			    .reason = reason,
			};
			s->st.gaps++;
			s->st.missing += m.prev_seq - c->last_seq;
			if (reason != RLY_SUB_GAP_SEEN)
				s->st.lost += m.prev_seq - c->last_seq;
			client_chain_hole_add(c, c->last_seq + 1, m.prev_seq);
			if (s->cb.on_gap)
				s->cb.on_gap(s->cb.ctx, &g);
		}
		c->last_seq = m.seq;
		sub_release(s, h, recv_ns, mono_ns);
	}
}

void sub_on_dgram(rly_sub_t *s, const uint8_t *buf, size_t len, uint64_t recv_ns, uint64_t mono_ns)
{
	struct rly_wire_view v;
	enum rly_wire_err e = rly_wire_parse(buf, len, RLY_WIRE_MAX_DGRAM, &v);

	if (e != RLY_WIRE_ERR_OK) {
		s->st.malformed++;
		s->st.wire_err[e]++;
		return;
	}
	s->st.dgrams++;
	s->st.bytes += len;
	switch (v.type) {
	case RLY_MSG_DATA:
		s->last_data_ns = mono_ns;
		/* A key holder is subscribed to a partition nobody publishes on: whatever data
		 * reaches it is not its business. */
		if (s->on_key_request == NULL)
			on_data(s, &v, recv_ns, mono_ns);
		return;
	case RLY_MSG_KEY_RESPONSE:
		keys_on_response(s, (const void *)v.body, mono_ns);
		return;
	case RLY_MSG_GAP:
		if (s->on_key_request == NULL && !s->no_repair)
			repair_on_gap(s, (const void *)v.body, mono_ns);
		return;
	case RLY_MSG_KEY_REQUEST:
		if (s->on_key_request)
			s->on_key_request(s->key_request_ctx, (const void *)v.body);
		return;
	default:
		session_on_control(s, &v, mono_ns);
	}
}

/* One recvmmsg batch. Returns datagrams received (0: none waiting), or -errno. */
static int recv_batch(rly_sub_t *s)
{
	uint64_t recv_ns, mono_ns;
	int n;

	n = recvmmsg(s->fd, s->vec, SUB_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		/* ECONNREFUSED is the ICMP answer to an earlier send while nothing listened at
		 * the relay's port: the handshake's resend covers it. */
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
		    errno == ECONNREFUSED)
			return 0;
		return rly_err_set(errno, "receive from relay %s: %s", s->relay, strerror(errno));
	}
	/* One clock read per batch: the datagrams of a batch arrived within microseconds. */
	recv_ns = rly_real_ns();
	mono_ns = rly_mono_ns();
	for (int i = 0; i < n; i++) {
		size_t len = s->vec[i].msg_len;
		/* A datagram longer than our buffer is longer than any relay datagram: let the
		 * parser refuse it as oversized rather than look at a truncated copy. */
		if (s->vec[i].msg_hdr.msg_flags & MSG_TRUNC)
			len = SUB_BUF;
		sub_on_dgram(s, s->bufs + (size_t)i * SUB_BUF, len, recv_ns, mono_ns);
	}
	return n;
}

static int stop_never(const rly_sub_t *s)
{
	(void)s;
	return 0;
}

int sub_stop_handshake_over(const rly_sub_t *s)
{
	return s->sess.state != SESS_CHALLENGE_WAIT && s->sess.state != SESS_ACK_WAIT;
}

static int stop_unsub_over(const rly_sub_t *s)
{
	return s->sess.state != SESS_UNSUB_WAIT;
}

int sub_pump(rly_sub_t *s, uint64_t deadline_ns, sub_stop_fn stop, int stop_on_data)
{
	for (;;) {
		uint64_t now, wake;
		int got = 0, n, b;

		for (b = 0; b < SUB_BATCHES_PER_POLL; b++) {
			n = recv_batch(s);
			if (n < 0)
				return n;
			got += n;
			if (n < (int)SUB_BATCH)
				break;
		}
		/* Timers after receiving: an ack already waiting in the socket must count before
		 * the loss check, or a process that was descheduled would drop a good lease. */
		now = rly_mono_ns();
		session_run_timers(s, now);
		if (stop(s) || (stop_on_data && got > 0))
			return 0;
		if (now >= deadline_ns)
			return 0;
		if (got > 0)
			continue;
		wake = session_next_due(s);
		if (wake > deadline_ns)
			wake = deadline_ns;
		if (wake > now) {
			uint64_t ms = (wake - now + 999999) / 1000000;
			struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
			if (poll(&pfd, 1, ms > INT32_MAX ? -1 : (int)ms) < 0 && errno != EINTR)
				return rly_err_set(errno, "poll: %s", strerror(errno));
		}
	}
}

static uint64_t deadline_after(int timeout_ms)
{
	return timeout_ms < 0 ? UINT64_MAX : rly_mono_ns() + (uint64_t)timeout_ms * 1000000ull;
}

int rly_sub_poll(rly_sub_t *s, int timeout_ms)
{
	int rc;

	s->delivered = 0;
	rc = sub_pump(s, deadline_after(timeout_ms), stop_never, 1);
	return rc < 0 ? rc : s->delivered;
}

int rly_sub_subscribe(rly_sub_t *s, int timeout_ms)
{
	char key[2 * RLY_STREAM_KEY_LEN + 1];
	int rc;

	if (s->sess.state == SESS_SUBSCRIBED)
		return 0;
	rly_stream_key_format(s->stream_key, key);
	session_start(s, 0, rly_mono_ns());
	rc = sub_pump(s, deadline_after(timeout_ms), sub_stop_handshake_over, 0);
	if (rc < 0)
		return rly_err_wrap("subscribe %s stream %s/%u", s->relay, key, s->partition);
	switch (s->sess.state) {
	case SESS_SUBSCRIBED:
		return 0;
	case SESS_REFUSED:
		return rly_err_set(ECONNREFUSED, "subscribe %s stream %s/%u: refused: %s (%s)",
				   s->relay, key, s->partition, rly_sub_status_name(s->sess.status),
				   rly_sub_status_str(s->sess.status));
	default:
		rc = rly_err_set(
		    ETIMEDOUT,
		    "subscribe %s stream %s/%u: timed out after %d ms and %u SUBSCRIBEs "
		    "without %s: is the relay (and relay-control) running there?",
		    s->relay, key, s->partition, timeout_ms, s->sess.sent,
		    s->sess.state == SESS_ACK_WAIT ? "a SUB_ACK" : "a CHALLENGE");
		session_abandon(s);
		return rc;
	}
}

int rly_sub_unsubscribe(rly_sub_t *s, int timeout_ms)
{
	int rc = session_unsubscribe(s, rly_mono_ns());

	if (rc < 0)
		return rc;
	rc = sub_pump(s, deadline_after(timeout_ms), stop_unsub_over, 0);
	/* Nobody will answer NAKs any more: what is still missing is lost to this subscription. */
	repair_give_up_all(s, RLY_SUB_GAP_UNSUBSCRIBED);
	if (rc < 0)
		return rly_err_wrap("unsubscribe from %s", s->relay);
	if (s->sess.state == SESS_UNSUB_WAIT) {
		rc =
		    rly_err_set(ETIMEDOUT,
				"unsubscribe from %s: no UNSUB_ACK after %d ms and %u UNSUBSCRIBEs "
				"(the lease will expire on its own)",
				s->relay, timeout_ms, s->sess.sent);
		session_abandon(s);
		return rc;
	}
	return 0;
}

/* A chain leaves the table (too many publishers): what it holds behind a gap is delivered. */
static void chain_evicted(void *ctx, struct client_chain *c)
{
	repair_forget(ctx, c);
}

int rly_sub_create(rly_sub_t **out, const struct rly_sub_opts *o)
{
	struct sockaddr_in peer;
	rly_sub_t *s;
	int rc;

	*out = NULL;
	if (o->relay == NULL)
		return rly_err_set(EINVAL, "subscriber: no relay address given");
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return rly_err_set(ENOMEM, "subscriber: out of memory");
	s->fd = -1;
	memcpy(s->stream_key, o->stream_key, RLY_STREAM_KEY_LEN);
	s->partition = o->partition;
	s->lease_req_ms = o->lease_ms ? o->lease_ms : SUB_LEASE_DEFAULT_MS;
	if (o->identity) {
		uint8_t pk[RLY_ID_LEN];

		rc = client_sodium_init();
		if (rc < 0)
			goto fail;
		/* A mismatched pair would make every SUBSCRIBE_SIGNED fail at the relay with a
		 * status that does not say why: refuse it here instead. */
		crypto_sign_ed25519_sk_to_pk(pk, o->identity->sk);
		if (sodium_memcmp(pk, o->identity->pk, RLY_ID_LEN) != 0) {
			rc = rly_err_set(EINVAL, "identity: secret key does not match public key");
			goto fail;
		}
		s->id = *o->identity;
		s->have_id = 1;
		memcpy(s->subscriber, o->identity->pk, RLY_ID_LEN);
	}
	s->auto_resubscribe = o->auto_resubscribe;
	s->no_verify = o->no_verify;
	s->cb = o->cb;
	if (!s->no_verify && (rc = client_sodium_init()) < 0)
		goto fail;

	s->no_repair = o->no_repair;
	rc = repair_init(s, o->reorder_max, o->repair_timeout_ms);
	if (rc < 0)
		goto fail;
	rc = client_chains_init(&s->chains, CLIENT_CHAINS_SLOTS);
	if (rc < 0)
		goto fail;
	s->chains.on_evict = chain_evicted;
	s->chains.evict_ctx = s;
	rc = keys_init(s);
	if (rc < 0)
		goto fail;
	s->bufs = malloc((size_t)SUB_BATCH * SUB_BUF);
	if (s->bufs == NULL) {
		rc = rly_err_set(ENOMEM, "no memory for receive buffers");
		goto fail;
	}
	for (unsigned i = 0; i < SUB_BATCH; i++) {
		s->iov[i].iov_base = s->bufs + (size_t)i * SUB_BUF;
		s->iov[i].iov_len = SUB_BUF;
		s->vec[i].msg_hdr.msg_iov = &s->iov[i];
		s->vec[i].msg_hdr.msg_iovlen = 1;
	}
	rc = client_udp_open(o->relay, o->bind, SO_RCVBUF,
			     o->rcvbuf ? o->rcvbuf : SUB_RCVBUF_DEFAULT, &peer);
	if (rc < 0)
		goto fail;
	s->fd = rc;
	client_addr_str(&peer, s->relay);
	*out = s;
	return 0;
fail:
	rly_err_wrap("subscriber to %s", o->relay);
	rly_sub_free(s);
	return rc;
}

void rly_sub_free(rly_sub_t *s)
{
	if (s == NULL)
		return;
	if (s->fd >= 0)
		close(s->fd);
	repair_close(s);
	client_chains_close(&s->chains);
	keys_close(s);
	free(s->bufs);
	sodium_memzero(&s->id, sizeof(s->id));
	free(s);
}

int rly_sub_fd(const rly_sub_t *s)
{
	return s->fd;
}

void rly_sub_stats(const rly_sub_t *s, struct rly_sub_stats *st)
{
	*st = s->st;
}

int rly_sub_is_subscribed(const rly_sub_t *s)
{
	return s->sess.state == SESS_SUBSCRIBED;
}

const char *rly_sub_bad_reason_str(int reason)
{
	switch (reason) {
#define X(name, value, desc)                                                                       \
	case RLY_BAD_##name:                                                                       \
		return desc;
		RLY_FOREACH_BAD_MESSAGE(X)
#undef X
	default:
		return "unknown reason";
	}
}

const char *rly_sub_gap_reason_str(int reason)
{
	switch (reason) {
#define X(name, value, desc)                                                                       \
	case value:                                                                                \
		return desc;
		RLY_FOREACH_SUB_GAP_REASON(X)
#undef X
	default:
		return "unknown reason";
	}
}

const char *rly_sub_gap_reason_name(int reason)
{
	switch (reason) {
#define X(name, value, desc)                                                                       \
	case value:                                                                                \
		return #name;
		RLY_FOREACH_SUB_GAP_REASON(X)
#undef X
	default:
		return "UNKNOWN";
	}
}
