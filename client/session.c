/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subscription's life, as a non-blocking state machine driven by two inputs: control
 * datagrams from the relay (session_on_control) and the clock (session_run_timers). Nothing here
 * blocks, so the same code runs inside rly_sub_subscribe's wait and inside rly_sub_poll, where a
 * lost lease is re-established without the application noticing more than two events.
 *
 * Every message we send is small and answered by at most one message of the same size or smaller
 * (wire.h pads SUBSCRIBE for that; SUBSCRIBE_SIGNED is larger still), and we resend with a doubling
 * interval, so a subscriber that cannot reach its relay costs the network a few datagrams per
 * second at most.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "client/sub.h"
#include "common/err.h"

#define MS (1000000ull)

static void send_control(rly_sub_t *s, unsigned type, const void *body)
{
	uint8_t buf[sizeof(struct rly_wire_dgram_hdr) + sizeof(struct rly_wire_subscribe_signed)];
	int len = rly_wire_build_control(buf, sizeof(buf), type, body);

	/* A full socket or an ICMP error from an earlier send loses this one message; the resend
	 * timer covers that like any other loss. */
	if (len > 0)
		(void)send(s->fd, buf, (size_t)len, MSG_DONTWAIT);
}

/*
 * The answer to a CHALLENGE from a subscriber with an identity. Only this one is signed: the
 * first SUBSCRIBE proves nothing yet (anyone can send it from anywhere), while this one carries
 * the cookie, so the signature binds the key to a source address the relay has seen answer. The
 * context string keeps the signature from being replayed as any other signed relay record.
 */
static void send_subscribe_signed(rly_sub_t *s, const struct rly_wire_subscribe *b)
{
	static const char ctx[] = RLY_SUBSCRIBE_SIG_CONTEXT;
	uint8_t msg[sizeof(ctx) - 1 + sizeof(*b)];
	struct rly_wire_subscribe_signed sb;

	memcpy(msg, ctx, sizeof(ctx) - 1);
	memcpy(msg + sizeof(ctx) - 1, b, sizeof(*b));
	sb.sub = *b;
	crypto_sign_detached(sb.sig, NULL, msg, sizeof(msg), s->id.sk);
	send_control(s, RLY_MSG_SUBSCRIBE_SIGNED, &sb);
}

static void send_subscribe(rly_sub_t *s)
{
	struct rly_wire_subscribe b;

	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, s->stream_key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.partition, s->partition);
	rly_be32_store(&b.lease_ms, s->lease_req_ms);
	rly_be64_store(&b.request_id, s->sess.request_id);
	memcpy(b.subscriber, s->subscriber, RLY_ID_LEN);
	if (s->sess.state == SESS_ACK_WAIT) {
		rly_be64_store(&b.issued_ms, s->sess.issued_ms);
		memcpy(b.cookie, s->sess.cookie, RLY_COOKIE_LEN);
		if (s->have_id) {
			send_subscribe_signed(s, &b);
			return;
		}
	}
	send_control(s, RLY_MSG_SUBSCRIBE, &b);
}

static void send_sub_ref(rly_sub_t *s, unsigned type)
{
	struct rly_wire_sub_ref b;

	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, s->stream_key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.partition, s->partition);
	rly_be64_store(&b.request_id, s->sess.request_id);
	memcpy(b.token, s->sess.token, RLY_COOKIE_LEN);
	send_control(s, type, &b);
}

static void emit(rly_sub_t *s, enum rly_sub_event ev, unsigned status)
{
	if (s->cb.on_event)
		s->cb.on_event(s->cb.ctx, ev, status);
}

/* Send the message of the current state and arm the doubling resend timer. */
static void send_and_arm(rly_sub_t *s, uint64_t now_ns, int first)
{
	struct session *x = &s->sess;

	if (first) {
		x->rto_ns = SUB_RTO_FIRST_MS * MS;
	} else if (x->rto_ns < SUB_RTO_MAX_MS * MS) {
		x->rto_ns *= 2;
	}
	if (x->state == SESS_UNSUB_WAIT)
		send_sub_ref(s, RLY_MSG_UNSUBSCRIBE);
	else
		send_subscribe(s);
	x->sent++;
	x->next_ns = now_ns + x->rto_ns;
}

void session_start(rly_sub_t *s, int automatic, uint64_t now_ns)
{
	struct session *x = &s->sess;

	x->state = SESS_CHALLENGE_WAIT;
	x->automatic = automatic;
	x->request_id = client_random_u64_nonzero();
	x->sent = 0;
	send_and_arm(s, now_ns, 1);
}

int session_unsubscribe(rly_sub_t *s, uint64_t now_ns)
{
	struct session *x = &s->sess;

	if (!x->have_token)
		return rly_err_set(ENOTCONN, "unsubscribe from %s: not subscribed", s->relay);
	x->state = SESS_UNSUB_WAIT;
	x->sent = 0;
	send_and_arm(s, now_ns, 1);
	return 0;
}

void session_abandon(rly_sub_t *s)
{
	s->sess.state = SESS_IDLE;
}

void session_lost(rly_sub_t *s, unsigned status, uint64_t now_ns)
{
	s->sess.state = SESS_LOST;
	s->sess.status = status;
	emit(s, RLY_SUB_EV_LOST, status);
	if (s->auto_resubscribe)
		session_start(s, 1, now_ns);
}

static void on_sub_ack(rly_sub_t *s, const struct rly_wire_ack *a, uint64_t now_ns)
{
	struct session *x = &s->sess;
	unsigned status = rly_be16_load(&a->status);

	if ((x->state != SESS_CHALLENGE_WAIT && x->state != SESS_ACK_WAIT) ||
	    rly_be64_load(&a->request_id) != x->request_id)
		return; /* late answer to a handshake we no longer run */
	if (status == RLY_SUB_OK) {
		memcpy(x->token, a->token, RLY_COOKIE_LEN);
		x->have_token = 1;
		x->lease_ms = rly_be32_load(&a->lease_ms);
		x->heartbeat_ms = rly_be32_load(&a->heartbeat_ms);
		if (x->heartbeat_ms == 0)
			x->heartbeat_ms = x->lease_ms / 3;
		/* Never heartbeat faster than the handshake resends: a zero lease must not spin. */
		if (x->heartbeat_ms < SUB_RTO_FIRST_MS)
			x->heartbeat_ms = SUB_RTO_FIRST_MS;
		x->state = SESS_SUBSCRIBED;
		x->last_ack_ns = now_ns;
		x->hb_pending_ns = 0;
		x->next_ns = now_ns + x->heartbeat_ms * MS;
		if (x->ever_subscribed)
			s->st.resubscribes++;
		x->ever_subscribed = 1;
		emit(s, RLY_SUB_EV_SUBSCRIBED, status);
		return;
	}
	if (status == RLY_SUB_COOKIE_EXPIRED) {
		/* The status itself says "subscribe again": a slow round trip, not a refusal. */
		session_start(s, x->automatic, now_ns);
		return;
	}
	x->status = status;
	emit(s, RLY_SUB_EV_REFUSED, status);
	if (x->automatic) {
		x->state = SESS_RETRY_WAIT;
		x->next_ns = now_ns + SUB_RTO_MAX_MS * MS;
	} else {
		x->state = SESS_REFUSED;
	}
}

void session_on_control(rly_sub_t *s, const struct rly_wire_view *v, uint64_t now_ns)
{
	struct session *x = &s->sess;
	/* CHALLENGE and the acks all begin with stream_key and partition. */
	const uint8_t *body = v->body;
	unsigned status;

	if (v->type != RLY_MSG_CHALLENGE && v->type != RLY_MSG_SUB_ACK &&
	    v->type != RLY_MSG_HEARTBEAT_ACK && v->type != RLY_MSG_UNSUB_ACK)
		return; /* valid, but nothing a relay sends to a subscriber */
	if (memcmp(body, s->stream_key, RLY_STREAM_KEY_LEN) != 0 ||
	    rly_be32_load(body + RLY_STREAM_KEY_LEN) != s->partition)
		return;

	switch (v->type) {
	case RLY_MSG_CHALLENGE: {
		const struct rly_wire_challenge *c = (const void *)body;
		static const uint8_t no_cookie[RLY_COOKIE_LEN];
		/* An all-zero cookie cannot be echoed: on the wire it means "no cookie yet", so
		 * every relay would refuse the answer (BAD_FIELD). Wait for a real challenge. */
		if (x->state != SESS_CHALLENGE_WAIT ||
		    rly_be64_load(&c->request_id) != x->request_id ||
		    memcmp(c->cookie, no_cookie, RLY_COOKIE_LEN) == 0)
			return;
		x->issued_ms = rly_be64_load(&c->issued_ms);
		memcpy(x->cookie, c->cookie, RLY_COOKIE_LEN);
		x->state = SESS_ACK_WAIT;
		send_and_arm(s, now_ns, 1);
		return;
	}
	case RLY_MSG_SUB_ACK:
		on_sub_ack(s, (const void *)body, now_ns);
		return;
	case RLY_MSG_HEARTBEAT_ACK:
		if (x->state != SESS_SUBSCRIBED)
			return;
		status = rly_be16_load(&((const struct rly_wire_ack *)body)->status);
		if (status == RLY_SUB_OK) {
			x->last_ack_ns = now_ns;
			if (x->hb_pending_ns) {
				/* Back to the regular period, counted from the answered one. */
				x->next_ns = x->hb_pending_ns + x->heartbeat_ms * MS;
				x->hb_pending_ns = 0;
			}
		}
		else if (status == RLY_SUB_NOT_SUBSCRIBED || status == RLY_SUB_BAD_TOKEN)
			session_lost(s, status, now_ns);
		return;
	case RLY_MSG_UNSUB_ACK:
		if (x->state != SESS_UNSUB_WAIT)
			return;
		/* OK and NOT_SUBSCRIBED both mean the relay holds no subscription now. */
		status = rly_be16_load(&((const struct rly_wire_ack *)body)->status);
		x->state = SESS_IDLE;
		x->have_token = 0;
		emit(s, RLY_SUB_EV_UNSUBSCRIBED, status);
		return;
	}
}

static void run_session_timers(rly_sub_t *s, uint64_t now_ns)
{
	struct session *x = &s->sess;

	switch (x->state) {
	case SESS_CHALLENGE_WAIT:
	case SESS_ACK_WAIT:
	case SESS_UNSUB_WAIT:
		if (now_ns >= x->next_ns)
			send_and_arm(s, now_ns, 0);
		return;
	case SESS_SUBSCRIBED:
		if (x->hb_pending_ns && now_ns - x->hb_pending_ns >= x->heartbeat_ms * MS &&
		    now_ns - s->last_data_ns >= x->heartbeat_ms * MS) {
			/* Silence is reported as UNAVAILABLE: nobody answered for the control
			 * plane, and the dataplane sent nothing either. */
			session_lost(s, RLY_SUB_UNAVAILABLE, now_ns);
			return;
		}
		if (now_ns >= x->next_ns) {
			send_sub_ref(s, RLY_MSG_HEARTBEAT);
			s->st.heartbeats++;
			if (x->hb_pending_ns == 0) {
				x->hb_pending_ns = now_ns;
				x->hb_rto_ns = SUB_HB_RTO_MS * MS;
			} else if (x->hb_rto_ns < x->heartbeat_ms * MS / 2) {
				x->hb_rto_ns *= 2;
			}
			/* Unanswered: again soon; answered, the ack moves it to the period. */
			x->next_ns = now_ns + (x->hb_rto_ns < x->heartbeat_ms * MS ? x->hb_rto_ns
										   : x->heartbeat_ms * MS);
		}
		return;
	case SESS_RETRY_WAIT:
		if (now_ns >= x->next_ns)
			session_start(s, 1, now_ns);
		return;
	default:
		return;
	}
}

/* Key requests share this path so that whatever drives heartbeats also drives them. */
void session_run_timers(rly_sub_t *s, uint64_t now_ns)
{
	run_session_timers(s, now_ns);
	keys_run_timers(s, now_ns);
	repair_run_timers(s, now_ns);
}

static uint64_t session_due(const rly_sub_t *s)
{
	const struct session *x = &s->sess;
	uint64_t lost_at;

	switch (x->state) {
	case SESS_CHALLENGE_WAIT:
	case SESS_ACK_WAIT:
	case SESS_UNSUB_WAIT:
	case SESS_RETRY_WAIT:
		return x->next_ns;
	case SESS_SUBSCRIBED:
		if (x->hb_pending_ns == 0)
			return x->next_ns;
		lost_at = x->hb_pending_ns + x->heartbeat_ms * MS;
		if (lost_at < s->last_data_ns + x->heartbeat_ms * MS)
			lost_at = s->last_data_ns + x->heartbeat_ms * MS;
		return lost_at < x->next_ns ? lost_at : x->next_ns;
	default:
		return UINT64_MAX;
	}
}

uint64_t session_next_due(const rly_sub_t *s)
{
	uint64_t a = session_due(s), b = keys_next_due(s), c = repair_next_due(s);

	if (b < a)
		a = b;
	return c < a ? c : a;
}
