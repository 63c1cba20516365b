/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loss repair and in-order delivery (see repair.h). Everything here runs inside rly_sub_poll (and
 * the other calls that receive), on the subscriber's thread: no locks, no threads.
 *
 * Invariants of a chain's repair state: every sequence in [base, highest] is either held (a copy in
 * the ring), or inside exactly one hole; holes are sorted and disjoint; base is the next sequence
 * to deliver. Draining delivers held copies from base upwards, reports and skips lost holes, skips
 * holes that are not part of the chain, and stops at the first hole still wanted. When nothing is
 * held and no hole is left, the state goes back to the pool.
 */
#include "client/repair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "client/sub.h"
#include "common/clock.h"
#include "common/err.h"

#define MS (1000000ull)

int repair_init(rly_sub_t *s, uint32_t ring_max, uint32_t timeout_ms)
{
	struct sub_repair *r = &s->rep;

	memset(r, 0, sizeof(*r));
	if (ring_max == 0)
		ring_max = REP_RING_DEFAULT;
	if (ring_max < REP_RING_MIN || (ring_max & (ring_max - 1)) != 0 || ring_max > (1u << 24))
		return rly_err_set(EINVAL,
				   "reorder_max %u is not a power of two from %u to 16777216", ring_max,
				   REP_RING_MIN);
	r->ring_max = ring_max;
	r->timeout_ns = (uint64_t)(timeout_ms ? timeout_ms : REP_TIMEOUT_DEFAULT_MS) * MS;
	r->rc = calloc(REP_CHAINS, sizeof(*r->rc));
	if (r->rc == NULL)
		return rly_err_set(ENOMEM, "no memory for the repair state");
	return 0;
}

static void rc_free(rly_sub_t *s, struct rep_chain *rc)
{
	for (uint32_t i = 0; rc->ring && i < rc->ring_size; i++)
		free(rc->ring[i]);
	s->st.held -= rc->held;
	free(rc->ring);
	memset(rc, 0, sizeof(*rc));
	s->rep.active--;
}

void repair_close(rly_sub_t *s)
{
	for (uint32_t i = 0; s->rep.rc && i < REP_CHAINS; i++)
		if (s->rep.rc[i].used)
			rc_free(s, &s->rep.rc[i]);
	free(s->rep.rc);
	s->rep.rc = NULL;
}

static struct rep_chain *rc_of(rly_sub_t *s, const struct client_chain *c)
{
	return c->rep ? &s->rep.rc[c->rep - 1] : NULL;
}

/* ---- holes ---- */

static int hole_find(const struct rep_chain *rc, uint64_t seq)
{
	for (uint32_t i = 0; i < rc->n_holes; i++) {
		if (seq < rc->hole[i].lo)
			return -1;
		if (seq <= rc->hole[i].hi)
			return (int)i;
	}
	return -1;
}

static void hole_remove(struct rep_chain *rc, uint32_t i)
{
	memmove(&rc->hole[i], &rc->hole[i + 1], (rc->n_holes - i - 1) * sizeof(rc->hole[0]));
	rc->n_holes--;
}

/* Make room for one more entry after index @p at (a split), or at the end: 1 if there is. */
static int hole_insert_at(struct rep_chain *rc, uint32_t at, const struct rep_hole *h)
{
	if (rc->n_holes >= REP_HOLES)
		return 0;
	memmove(&rc->hole[at + 1], &rc->hole[at], (rc->n_holes - at) * sizeof(rc->hole[0]));
	rc->hole[at] = *h;
	rc->n_holes++;
	return 1;
}

/*
 * How long a wanted hole is asked for: the repair timeout, or REP_MISSING_FACTOR times it once the
 * relay said it never received the messages (GAP MISSING): a relay in an overlay may still get
 * them from a peer, which takes seconds when a peer relay died.
 */
static uint64_t hole_timeout(const struct rep_chain *rc, const struct rep_hole *h)
{
	return h->reason == RLY_SUB_GAP_MISSING ? rc->timeout_ns * REP_MISSING_FACTOR : rc->timeout_ns;
}

/* When the chain next has something to do: a NAK, or a wanted hole reaching the timeout. */
static void due_update(struct rep_chain *rc)
{
	rc->due_ns = UINT64_MAX;
	for (uint32_t i = 0; i < rc->n_holes; i++) {
		const struct rep_hole *h = &rc->hole[i];
		if (h->state != HOLE_WANT)
			continue;
		if (h->next_ns < rc->due_ns)
			rc->due_ns = h->next_ns;
		if (h->since_ns + hole_timeout(rc, h) < rc->due_ns)
			rc->due_ns = h->since_ns + hole_timeout(rc, h);
	}
}

/* Give the oldest wanted hole up (it is reported when the drain reaches it). 0 if none is left. */
static int give_up_oldest(struct rep_chain *rc, int reason)
{
	for (uint32_t i = 0; i < rc->n_holes; i++) {
		if (rc->hole[i].state != HOLE_WANT)
			continue;
		rc->hole[i].state = HOLE_LOST;
		rc->hole[i].reason = (uint8_t)reason;
		return 1;
	}
	return 0;
}

/* Part lo..hi of wanted holes becomes lost for @p reason (holes split where they straddle it). */
static void mark_lost(struct rep_chain *rc, uint64_t lo, uint64_t hi, int reason)
{
	for (uint32_t i = 0; i < rc->n_holes; i++) {
		struct rep_hole *h = &rc->hole[i];
		struct rep_hole part;

		if (h->state != HOLE_WANT || h->hi < lo || h->lo > hi)
			continue;
		if (h->lo < lo) {
			/* keep lo.. of it apart: [h->lo, lo - 1] stays wanted */
			part = *h;
			part.hi = lo - 1;
			if (!hole_insert_at(rc, i, &part)) {
				h->state = HOLE_LOST; /* no room to split: lose all of it */
				h->reason = (uint8_t)reason;
				continue;
			}
			h = &rc->hole[++i];
			h->lo = lo;
		}
		if (h->hi > hi) {
			part = *h;
			part.lo = hi + 1;
			if (!hole_insert_at(rc, i + 1, &part)) {
				h->state = HOLE_LOST;
				h->reason = (uint8_t)reason;
				continue;
			}
			h = &rc->hole[i];
			h->hi = hi;
		}
		h->state = HOLE_LOST;
		h->reason = (uint8_t)reason;
	}
	due_update(rc);
}

/* Sequence @p seq of wanted hole @p i arrived: take it out of the hole. */
static void hole_fill(struct rep_chain *rc, uint32_t i, uint64_t seq)
{
	struct rep_hole *h = &rc->hole[i];

	if (h->lo == h->hi) {
		hole_remove(rc, i);
	} else if (seq == h->lo) {
		h->lo++;
	} else if (seq == h->hi) {
		h->hi--;
	} else {
		struct rep_hole upper = *h;
		upper.lo = seq + 1;
		h->hi = seq - 1;
		if (!hole_insert_at(rc, i + 1, &upper)) {
			/* No room for the upper part: ask for it with the lower one until it fits. */
			h->hi = upper.hi;
		}
	}
	due_update(rc);
}

/*
 * A new hole lo..hi (not overlapping any other), in its place in the list; it merges with a
 * neighbour of the same kind when it is not wanted. The oldest wanted hole goes if there is no
 * room.
 */
static void hole_put(struct rep_chain *rc, uint64_t lo, uint64_t hi, int state, uint64_t now_ns)
{
	struct rep_hole h = {.lo = lo, .hi = hi, .since_ns = now_ns, .next_ns = now_ns,
			     .state = (uint8_t)state};
	uint32_t at = 0;

	while (at < rc->n_holes && rc->hole[at].lo < lo)
		at++;
	if (state != HOLE_WANT) {
		if (at > 0 && rc->hole[at - 1].state == state && rc->hole[at - 1].hi + 1 == lo) {
			rc->hole[at - 1].hi = hi;
			return;
		}
		if (at < rc->n_holes && rc->hole[at].state == state && hi + 1 == rc->hole[at].lo) {
			rc->hole[at].lo = lo;
			return;
		}
	}
	while (rc->n_holes >= REP_HOLES && give_up_oldest(rc, RLY_SUB_GAP_OVERFLOW))
		;
	if (!hole_insert_at(rc, at, &h)) {
		/* Every entry is a lost or skipped range: this one joins its lower neighbour. */
		struct rep_hole *n = &rc->hole[at ? at - 1 : 0];
		if (at == 0)
			n->lo = lo;
		else
			n->hi = hi;
		if (state == HOLE_WANT) {
			n->state = HOLE_LOST;
			n->reason = RLY_SUB_GAP_OVERFLOW;
		}
	}
	due_update(rc);
}

/* ---- delivery ---- */

static void report_lost(rly_sub_t *s, const struct rep_chain *rc, const struct rep_hole *h,
			uint64_t now_ns)
{
	struct rly_gap g = {.publisher = rc->publisher,
			    .chain = rc->chain,
			    .from_seq = h->lo,
			    .to_seq = h->hi,
			    .reason = h->reason,
			    .waited_ns = now_ns > h->since_ns ? now_ns - h->since_ns : 0};

	s->st.lost += h->hi - h->lo + 1;
	if (s->cb.on_gap)
		s->cb.on_gap(s->cb.ctx, &g);
}

static void release(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns,
		    uint64_t mono_ns, uint64_t repair_ns, uint64_t held_ns)
{
	s->cur_repair_ns = repair_ns;
	s->cur_held_ns = held_ns;
	if (held_ns)
		s->st.reordered++;
	sub_release(s, h, recv_ns, mono_ns);
	s->cur_repair_ns = 0;
	s->cur_held_ns = 0;
}

/*
 * Deliver what is in order: held copies, lost holes (reported) and skipped ones, until the first
 * hole still wanted, or the message being placed (rc->placing). Frees the state when nothing is
 * left.
 */
static void drain(rly_sub_t *s, struct client_chain *c, struct rep_chain *rc, uint64_t now_ns)
{
	for (;;) {
		struct rep_held *m;

		if (rc->base == rc->placing)
			break;
		m = rc->ring ? rc->ring[rc->base & (rc->ring_size - 1)] : NULL;
		if (m != NULL) {
			rc->ring[rc->base & (rc->ring_size - 1)] = NULL;
			rc->held--;
			s->st.held--;
			rc->base++;
			release(s, (const struct rly_wire_msg_hdr *)m->bytes, m->recv_ns, now_ns,
				m->repair_ns, now_ns - m->mono_ns);
			free(m);
			continue;
		}
		if (rc->n_holes == 0 || rc->hole[0].lo != rc->base || rc->hole[0].state == HOLE_WANT)
			break; /* past highest, or waiting for a wanted hole */
		if (rc->hole[0].state == HOLE_LOST)
			report_lost(s, rc, &rc->hole[0], now_ns);
		rc->base = rc->hole[0].hi + 1;
		hole_remove(rc, 0);
	}
	if (rc->n_holes == 0 && rc->base > rc->highest && rc->placing == 0) {
		c->last_seq = rc->highest;
		c->rep = 0;
		rc_free(s, rc);
	} else {
		due_update(rc);
	}
}

/* Room in the ring for @p seq: 1, or 0 when the ring is at its limit (or no memory). */
static int ring_fit(rly_sub_t *s, struct rep_chain *rc, uint64_t seq)
{
	uint32_t size = rc->ring_size ? rc->ring_size : REP_RING_MIN;
	struct rep_held **ring;

	while (seq - rc->base >= size) {
		if (size >= s->rep.ring_max)
			return 0;
		size <<= 1;
	}
	if (size == rc->ring_size)
		return 1;
	ring = calloc(size, sizeof(*ring));
	if (ring == NULL)
		return 0;
	for (uint32_t i = 0; rc->ring && i < rc->ring_size; i++) {
		struct rep_held *m = rc->ring[i];
		if (m != NULL) {
			uint64_t q = rly_be64_load(&((const struct rly_wire_msg_hdr *)m->bytes)->seq);
			ring[q & (size - 1)] = m;
		}
	}
	free(rc->ring);
	rc->ring = ring;
	rc->ring_size = size;
	return 1;
}

static int hold(rly_sub_t *s, struct rep_chain *rc, const struct rly_wire_msg_hdr *h,
		uint64_t recv_ns, uint64_t mono_ns, uint64_t repair_ns)
{
	const uint64_t seq = rly_be64_load(&h->seq);
	const size_t len = rly_wire_msg_size(h);
	struct rep_held *m = malloc(sizeof(*m) + len);

	if (m == NULL)
		return 0;
	m->recv_ns = recv_ns;
	m->mono_ns = mono_ns;
	m->repair_ns = repair_ns;
	m->len = (uint32_t)len;
	memcpy(m->bytes, h, len);
	rc->ring[seq & (rc->ring_size - 1)] = m;
	rc->held++;
	if (++s->st.held > s->st.held_max)
		s->st.held_max = s->st.held;
	return 1;
}

/* ---- asking ---- */

static void send_nak(rly_sub_t *s, const struct rep_chain *rc, const uint64_t *lo,
		     const uint64_t *hi, unsigned n)
{
	uint8_t buf[sizeof(struct rly_wire_dgram_hdr) + sizeof(struct rly_wire_nak)];
	struct rly_wire_nak b;
	int len;

	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, s->stream_key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.partition, s->partition);
	rly_be32_store(&b.chain, rc->chain);
	memcpy(b.publisher, rc->publisher, RLY_ID_LEN);
	rly_be64_store(&b.request_id, client_random_u64_nonzero());
	b.n = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		rly_be64_store(&b.r[i].from_seq, lo[i]);
		rly_be64_store(&b.r[i].to_seq, hi[i]);
	}
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_NAK, &b);
	/* A full socket loses this NAK like the network would: the back-off asks again. */
	if (len > 0 && send(s->fd, buf, (size_t)len, MSG_DONTWAIT) == len)
		s->st.naks++;
}

/*
 * The wanted holes of @p rc that are due: given up when they waited past the timeout, else asked
 * for, up to RLY_NAK_RANGES in one NAK, each then waiting twice as long as before.
 */
static void ask(rly_sub_t *s, struct rep_chain *rc, uint64_t now_ns)
{
	uint64_t lo[RLY_NAK_RANGES], hi[RLY_NAK_RANGES];
	unsigned n = 0;
	const int subscribed = s->sess.state == SESS_SUBSCRIBED;

	for (uint32_t i = 0; i < rc->n_holes; i++) {
		struct rep_hole *h = &rc->hole[i];
		uint64_t rto;

		if (h->state != HOLE_WANT)
			continue;
		if (now_ns - h->since_ns >= hole_timeout(rc, h)) {
			h->state = HOLE_LOST;
			/* The relay said it never got them: that is why, not our patience. */
			if (h->reason != RLY_SUB_GAP_MISSING)
				h->reason = RLY_SUB_GAP_TIMEOUT;
			continue;
		}
		if (h->next_ns > now_ns)
			continue;
		rto = (uint64_t)REP_RTO_FIRST_MS << (h->tries < 6 ? h->tries : 6);
		h->next_ns = now_ns + (rto > REP_RTO_MAX_MS ? REP_RTO_MAX_MS : rto) * MS;
		if (!subscribed || n == RLY_NAK_RANGES)
			continue; /* nobody to ask now, or no room: at its next turn */
		h->tries++;
		lo[n] = h->lo;
		hi[n] = h->hi;
		n++;
	}
	if (n)
		send_nak(s, rc, lo, hi, n);
	due_update(rc);
}

/* ---- entry points ---- */

static struct rep_chain *rc_open(rly_sub_t *s, struct client_chain *c)
{
	struct sub_repair *r = &s->rep;

	for (uint32_t i = 0; i < REP_CHAINS; i++) {
		struct rep_chain *rc = &r->rc[i];
		if (rc->used)
			continue;
		memset(rc, 0, sizeof(*rc));
		rc->used = 1;
		memcpy(rc->publisher, c->publisher, RLY_ID_LEN);
		rc->chain = c->chain;
		rc->base = c->last_seq + 1;
		rc->highest = c->last_seq;
		rc->due_ns = UINT64_MAX;
		rc->timeout_ns = r->timeout_ns;
		c->rep = i + 1;
		r->active++;
		return rc;
	}
	return NULL;
}

int repair_on_message(rly_sub_t *s, struct client_chain *c, const struct rly_wire_msg_hdr *h,
		      uint64_t recv_ns, uint64_t mono_ns)
{
	const uint64_t seq = rly_be64_load(&h->seq), prev = rly_be64_load(&h->prev_seq);
	struct rep_chain *rc = rc_of(s, c);
	uint64_t repair_ns = 0;
	int i;

	if (rc == NULL && (rc = rc_open(s, c)) == NULL)
		return -1;
	if (seq < rc->base)
		return 0;
	if (seq <= rc->highest) {
		i = hole_find(rc, seq);
		if (i < 0 || rc->hole[i].state != HOLE_WANT)
			return 0; /* held already, or given up */
		s->st.repaired++;
		repair_ns = mono_ns - rc->hole[i].since_ns;
		hole_fill(rc, (uint32_t)i, seq);
	} else {
		const uint64_t skip_from = (prev > rc->highest ? prev : rc->highest) + 1;

		if (prev > rc->highest) {
			s->st.gaps++;
			s->st.missing += prev - rc->highest;
			hole_put(rc, rc->highest + 1, prev, HOLE_WANT, mono_ns);
		}
		/* prev_seq names the previous message: anything between it and seq never existed. */
		if (skip_from < seq)
			hole_put(rc, skip_from, seq - 1, HOLE_SKIP, mono_ns);
		rc->highest = seq;
	}
	rc->placing = seq;
	/* Behind a gap and past the ring's limit: the oldest gaps go until it fits. */
	while (seq != rc->base && !ring_fit(s, rc, seq) && give_up_oldest(rc, RLY_SUB_GAP_OVERFLOW))
		drain(s, c, rc, mono_ns);
	rc->placing = 0;
	if (seq == rc->base) {
		release(s, h, recv_ns, mono_ns, repair_ns, 0);
		rc->base++;
	} else if (!ring_fit(s, rc, seq) || !hold(s, rc, h, recv_ns, mono_ns, repair_ns)) {
		/* No memory to hold it: delivered now (out of order) rather than lost. */
		release(s, h, recv_ns, mono_ns, repair_ns, 0);
		hole_put(rc, seq, seq, HOLE_SKIP, mono_ns);
	}
	ask(s, rc, mono_ns);
	drain(s, c, rc, mono_ns);
	return 1;
}

void repair_on_gap(rly_sub_t *s, const struct rly_wire_gap *g, uint64_t mono_ns)
{
	const uint64_t from = rly_be64_load(&g->from_seq), to = rly_be64_load(&g->to_seq);
	struct client_chain *c;
	struct rep_chain *rc;

	if (memcmp(g->stream_key, s->stream_key, RLY_STREAM_KEY_LEN) != 0 ||
	    rly_be32_load(&g->partition) != s->partition)
		return;
	s->st.gap_notices++;
	if (g->reason == RLY_GAP_SLOW_CONSUMER && s->sess.state == SESS_SUBSCRIBED)
		session_lost(s, RLY_SUB_SLOW_CONSUMER, mono_ns);
	c = client_chains_find(&s->chains, g->publisher, rly_be32_load(&g->chain));
	if (c == NULL || (rc = rc_of(s, c)) == NULL)
		return;
	if (rly_gap_reason_final(g->reason)) {
		mark_lost(rc, from, to, g->reason);
	} else {
		for (uint32_t i = 0; i < rc->n_holes; i++) {
			struct rep_hole *h = &rc->hole[i];
			if (h->state != HOLE_WANT || h->hi < from || h->lo > to)
				continue;
			if (g->reason == RLY_GAP_MISSING)
				h->reason = RLY_SUB_GAP_MISSING; /* asked for until the timeout */
			else if (h->next_ns < mono_ns + REP_PACED_RETRY_MS * MS)
				h->next_ns = mono_ns + REP_PACED_RETRY_MS * MS; /* PACED */
		}
		due_update(rc);
	}
	drain(s, c, rc, mono_ns);
}

void repair_run_timers(rly_sub_t *s, uint64_t now_ns)
{
	for (uint32_t i = 0; s->rep.active && i < REP_CHAINS; i++) {
		struct rep_chain *rc = &s->rep.rc[i];
		struct client_chain *c;

		if (!rc->used || rc->due_ns > now_ns)
			continue;
		ask(s, rc, now_ns);
		c = client_chains_find(&s->chains, rc->publisher, rc->chain);
		if (c != NULL && c->rep == i + 1)
			drain(s, c, rc, now_ns);
	}
}

uint64_t repair_next_due(const rly_sub_t *s)
{
	uint64_t due = UINT64_MAX;

	for (uint32_t i = 0; s->rep.active && i < REP_CHAINS; i++)
		if (s->rep.rc[i].used && s->rep.rc[i].due_ns < due)
			due = s->rep.rc[i].due_ns;
	return due;
}

void repair_forget(rly_sub_t *s, struct client_chain *c)
{
	struct rep_chain *rc = rc_of(s, c);

	if (rc == NULL)
		return;
	while (give_up_oldest(rc, RLY_SUB_GAP_FORGOTTEN))
		;
	drain(s, c, rc, rly_mono_ns());
}

void repair_give_up_all(rly_sub_t *s, int reason)
{
	for (uint32_t i = 0; s->rep.active && i < REP_CHAINS; i++) {
		struct rep_chain *rc = &s->rep.rc[i];
		struct client_chain *c;

		if (!rc->used)
			continue;
		while (give_up_oldest(rc, reason))
			;
		c = client_chains_find(&s->chains, rc->publisher, rc->chain);
		if (c != NULL && c->rep == i + 1)
			drain(s, c, rc, rly_mono_ns());
	}
}
