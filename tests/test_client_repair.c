/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subscriber's loss repair (client/repair.c), driven through its receive path (sub_on_dgram)
 * and timers on a clock the test moves, with a UDP socket on 127.0.0.1 standing in for the relay:
 * the test reads the NAKs the subscriber sends there and answers them (or not) itself. Covered:
 * in-order delivery behind a gap, the NAK and its back-off, several gaps in one NAK, every GAP
 * reason, the repair timeout, the reorder limit, prev_seq jumps, duplicates, a slow-consumer cut,
 * and no_repair keeping the old behaviour.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "client/sub.h"

#define MS 1000000ull
#define CHAIN 42u

static int relay_fd = -1;
static char relay_addr[32];
static uint8_t stream[RLY_STREAM_KEY_LEN], pub[RLY_ID_LEN];
static uint64_t clock_ns;

static uint64_t got[4096];
static unsigned n_got;
static uint64_t repair_ns_of[4096], held_ns_of[4096];
static struct {
	uint64_t from, to, waited;
	int reason;
} gaps[64];
static unsigned n_gaps;
static unsigned events[8], last_status;

static void on_message(void *ctx, const struct rly_msg *m)
{
	(void)ctx;
	cr_assert_lt(n_got, 4096);
	repair_ns_of[n_got] = m->repair_ns;
	held_ns_of[n_got] = m->held_ns;
	got[n_got++] = m->seq;
}

static void on_gap(void *ctx, const struct rly_gap *g)
{
	(void)ctx;
	cr_assert_lt(n_gaps, 64);
	gaps[n_gaps].from = g->from_seq;
	gaps[n_gaps].to = g->to_seq;
	gaps[n_gaps].reason = g->reason;
	gaps[n_gaps].waited = g->waited_ns;
	n_gaps++;
}

static void on_event(void *ctx, enum rly_sub_event ev, unsigned status)
{
	(void)ctx;
	events[ev]++;
	last_status = status;
}

/* A subscriber to our stream, subscribed as far as its session knows, repair on unless asked. */
static rly_sub_t *make(int no_repair, uint32_t timeout_ms, uint32_t reorder_max)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t alen = sizeof(a);
	struct rly_sub_opts o;
	rly_sub_t *s;

	n_got = n_gaps = 0;
	memset(events, 0, sizeof(events));
	memset(stream, 0x31, sizeof(stream));
	memset(pub, 0x77, sizeof(pub));
	relay_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	cr_assert_geq(relay_fd, 0);
	cr_assert_eq(bind(relay_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(relay_fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(relay_addr, sizeof(relay_addr), "127.0.0.1:%u", ntohs(a.sin_port));

	memset(&o, 0, sizeof(o));
	o.relay = relay_addr;
	memcpy(o.stream_key, stream, sizeof(stream));
	o.no_verify = 1; /* unsigned test messages: signatures are test_client's business */
	o.no_repair = no_repair;
	o.repair_timeout_ms = timeout_ms;
	o.reorder_max = reorder_max;
	o.auto_resubscribe = 1;
	o.cb.on_message = on_message;
	o.cb.on_gap = on_gap;
	o.cb.on_event = on_event;
	cr_assert_eq(rly_sub_create(&s, &o), 0, "%s", rly_client_errmsg());
	/* As if the handshake had just ended (test_client covers it). */
	clock_ns = 1000 * MS;
	s->sess.state = SESS_SUBSCRIBED;
	s->sess.have_token = 1;
	s->sess.heartbeat_ms = 1000000;
	s->sess.last_ack_ns = clock_ns;
	s->sess.next_ns = clock_ns + 1000000 * MS;
	return s;
}

static void done(rly_sub_t *s)
{
	rly_sub_free(s);
	close(relay_fd);
}

/* Feed message seq (prev_seq @p prev, 0: seq - 1) of our chain. */
static void feed_prev(rly_sub_t *s, uint64_t seq, uint64_t prev)
{
	uint8_t buf[256];
	struct rly_wire_msg_hdr *h = (void *)(buf + sizeof(struct rly_wire_dgram_hdr));

	memset(h, 0, sizeof(*h));
	memcpy(h->stream_key, stream, sizeof(stream));
	rly_be32_store(&h->chain, CHAIN);
	memcpy(h->publisher, pub, sizeof(pub));
	rly_be64_store(&h->seq, seq);
	rly_be64_store(&h->prev_seq, prev ? prev : seq - 1);
	rly_be16_store(&h->payload_len, 8);
	memcpy(h + 1, &seq, 8);
	rly_wire_put_dgram_hdr(buf, RLY_MSG_DATA, sizeof(struct rly_wire_dgram_hdr) + 104, 1);
	sub_on_dgram(s, buf, sizeof(struct rly_wire_dgram_hdr) + 104, clock_ns, clock_ns);
}

static void feed(rly_sub_t *s, uint64_t from, uint64_t to)
{
	for (uint64_t q = from; q <= to; q++)
		feed_prev(s, q, 0);
}

static void gap(rly_sub_t *s, uint64_t from, uint64_t to, unsigned reason)
{
	struct rly_wire_gap g;
	uint8_t buf[128];
	int len;

	memset(&g, 0, sizeof(g));
	memcpy(g.stream_key, stream, sizeof(stream));
	rly_be32_store(&g.chain, CHAIN);
	memcpy(g.publisher, pub, sizeof(pub));
	rly_be64_store(&g.from_seq, from);
	rly_be64_store(&g.to_seq, to);
	rly_be64_store(&g.request_id, 9);
	g.reason = (uint8_t)reason;
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_GAP, &g);
	sub_on_dgram(s, buf, (size_t)len, clock_ns, clock_ns);
}

static void advance(rly_sub_t *s, uint64_t ms)
{
	clock_ns += ms * MS;
	session_run_timers(s, clock_ns);
}

/* The NAKs the subscriber sent since the last call; the ranges of the last one in @p r. */
static unsigned naks(struct rly_wire_nak *last)
{
	uint8_t buf[2048];
	unsigned n = 0;
	ssize_t len;

	while ((len = recv(relay_fd, buf, sizeof(buf), 0)) > 0) {
		struct rly_wire_view v;
		cr_assert_eq(rly_wire_parse(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v),
			     RLY_WIRE_ERR_OK, "what the subscriber sends parses");
		if (v.type != RLY_MSG_NAK)
			continue;
		if (last)
			memcpy(last, v.body, sizeof(*last));
		n++;
	}
	return n;
}

static void expect_got(uint64_t from, uint64_t to)
{
	cr_assert_eq(n_got, to - from + 1, "delivered %u, expected %llu", n_got,
		     (unsigned long long)(to - from + 1));
	for (unsigned i = 0; i < n_got; i++)
		cr_assert_eq(got[i], from + i, "in order: #%u is %llu", i, (unsigned long long)got[i]);
}

Test(client_repair, a_gap_is_asked_for_at_once_and_what_follows_waits_for_it)
{
	rly_sub_t *s = make(0, 0, 0);
	struct rly_wire_nak nk;
	struct rly_sub_stats st;

	feed(s, 1, 10);
	feed(s, 13, 15);
	expect_got(1, 10);
	cr_assert_eq(naks(&nk), 1, "one NAK, sent at once");
	cr_expect_eq(nk.n, 1);
	cr_expect_eq(rly_be64_load(&nk.r[0].from_seq), 11);
	cr_expect_eq(rly_be64_load(&nk.r[0].to_seq), 12);
	cr_expect_eq(rly_be32_load(&nk.chain), CHAIN);
	cr_expect_arr_eq(nk.publisher, pub, RLY_ID_LEN);
	advance(s, 1);
	feed(s, 12, 12); /* the relay sends them again, in any order */
	expect_got(1, 10);
	advance(s, 1);
	feed(s, 11, 11);
	expect_got(1, 15);
	cr_expect_gt(repair_ns_of[10], 0, "11 was a repair, %llu ns after the gap",
		     (unsigned long long)repair_ns_of[10]);
	cr_expect_eq(held_ns_of[12], 2 * MS, "13 waited 2 ms for 11 and 12");
	rly_sub_stats(s, &st);
	cr_expect_eq(st.gaps, 1);
	cr_expect_eq(st.missing, 2);
	cr_expect_eq(st.repaired, 2);
	cr_expect_eq(st.lost, 0);
	cr_expect_eq(st.reordered, 4, "12 (held for 11), 13, 14, 15");
	cr_expect_eq(st.held, 0);
	cr_expect_eq(st.held_max, 4);
	cr_expect_eq(n_gaps, 0, "nothing lost, nothing reported");
	cr_expect_eq(s->rep.active, 0, "the chain's repair state went back to the pool");
	feed(s, 16, 16);
	expect_got(1, 16);
	done(s);
}

Test(client_repair, unanswered_naks_back_off_and_the_gap_is_reported_at_the_timeout)
{
	rly_sub_t *s = make(0, 100, 0);
	unsigned sent = 0, at[16], n_at = 0;

	feed(s, 1, 5);
	feed(s, 7, 9);
	for (unsigned t = 0; t <= 100; t++) {
		unsigned n = naks(NULL);
		if (n && n_at < 16)
			at[n_at++] = t;
		sent += n;
		if (t < 100)
			advance(s, 1);
	}
	/* At 0, then 2, 4, 8, 16, 32, 64 ms apart: 0, 2, 6, 14, 30, 62. */
	cr_assert_geq(n_at, 6, "%u NAKs", n_at);
	cr_expect_eq(at[0], 0);
	cr_expect_eq(at[1], 2);
	cr_expect_eq(at[2], 6);
	cr_expect_eq(at[3], 14);
	cr_expect_eq(at[4], 30);
	cr_expect_eq(at[5], 62);
	cr_assert_eq(n_gaps, 1, "reported once, at the timeout");
	cr_expect_eq(gaps[0].from, 6);
	cr_expect_eq(gaps[0].to, 6);
	cr_expect_eq(gaps[0].reason, RLY_SUB_GAP_TIMEOUT);
	cr_expect_geq(gaps[0].waited, 100 * MS);
	cr_assert_eq(n_got, 8);
	cr_expect_eq(got[4], 5);
	cr_expect_eq(got[5], 7, "the lost one is skipped");
	feed(s, 6, 6);
	cr_expect_eq(n_got, 8, "it comes too late: stale");
	done(s);
}

Test(client_repair, several_gaps_go_in_one_nak)
{
	rly_sub_t *s = make(0, 0, 0);
	struct rly_wire_nak nk;

	feed(s, 1, 1);
	feed(s, 3, 3);
	feed(s, 5, 5);
	feed(s, 9, 9);
	naks(NULL);
	advance(s, 2);
	cr_assert_eq(naks(&nk), 1, "the three retries share one NAK");
	cr_expect_eq(nk.n, 3);
	cr_expect_eq(rly_be64_load(&nk.r[0].from_seq), 2);
	cr_expect_eq(rly_be64_load(&nk.r[1].from_seq), 4);
	cr_expect_eq(rly_be64_load(&nk.r[2].from_seq), 6);
	cr_expect_eq(rly_be64_load(&nk.r[2].to_seq), 8);
	feed(s, 2, 2);
	feed(s, 4, 4);
	feed(s, 6, 8);
	expect_got(1, 9);
	done(s);
}

Test(client_repair, a_final_gap_reason_reports_the_range_and_delivery_goes_on)
{
	rly_sub_t *s = make(0, 0, 0);

	feed(s, 1, 3);
	feed(s, 10, 12);
	gap(s, 4, 6, RLY_GAP_EVICTED); /* the relay has 7..9, not 4..6 */
	cr_assert_eq(n_gaps, 1);
	cr_expect_eq(gaps[0].from, 4);
	cr_expect_eq(gaps[0].to, 6);
	cr_expect_eq(gaps[0].reason, RLY_SUB_GAP_EVICTED);
	expect_got(1, 3);
	feed(s, 7, 9);
	cr_assert_eq(n_got, 9);
	cr_expect_eq(got[3], 7);
	cr_expect_eq(got[8], 12);
	done(s);
}

Test(client_repair, missing_keeps_asking_and_is_the_reason_at_the_timeout)
{
	rly_sub_t *s = make(0, 50, 0);

	feed(s, 1, 1);
	feed(s, 3, 3);
	gap(s, 2, 2, RLY_GAP_MISSING);
	cr_expect_eq(n_gaps, 0, "not final: a peer may still bring it");
	naks(NULL);
	advance(s, 2);
	cr_expect_eq(naks(NULL), 1, "still asked for");
	for (int t = 0; t < 60; t++)
		advance(s, 1);
	cr_expect_eq(n_gaps, 0, "past the 50 ms timeout: a relay that said MISSING is waited for longer");
	for (int t = 0; t < 200; t++)
		advance(s, 1);
	cr_assert_eq(n_gaps, 1);
	cr_expect_eq(gaps[0].reason, RLY_SUB_GAP_MISSING);
	cr_assert_eq(n_got, 2);
	cr_expect_eq(got[1], 3);
	done(s);
}

Test(client_repair, paced_waits_before_asking_again)
{
	rly_sub_t *s = make(0, 0, 0);

	feed(s, 1, 1);
	feed(s, 5, 5);
	naks(NULL);
	gap(s, 2, 4, RLY_GAP_PACED);
	for (int t = 1; t < 10; t++) {
		advance(s, 1);
		cr_expect_eq(naks(NULL), 0, "not before 10 ms (t=%d)", t);
	}
	advance(s, 1);
	cr_expect_eq(naks(NULL), 1);
	done(s);
}

Test(client_repair, a_slow_consumer_cut_is_reported_and_resubscribed)
{
	rly_sub_t *s = make(0, 0, 0);

	feed(s, 1, 1);
	feed(s, 4, 4);
	gap(s, 2, 3, RLY_GAP_SLOW_CONSUMER);
	cr_expect_eq(events[RLY_SUB_EV_LOST], 1);
	cr_expect_eq(last_status, RLY_SUB_SLOW_CONSUMER);
	cr_expect_eq(s->sess.state, SESS_CHALLENGE_WAIT, "subscribing again at once");
	cr_assert_eq(n_gaps, 1);
	cr_expect_eq(gaps[0].reason, RLY_SUB_GAP_SLOW_CONSUMER);
	cr_assert_eq(n_got, 2);
	cr_expect_eq(got[1], 4);
	done(s);
}

Test(client_repair, past_the_reorder_limit_the_oldest_gap_is_given_up)
{
	rly_sub_t *s = make(0, 0, 256);

	feed(s, 1, 1);
	feed(s, 3, 300);
	/* 2 is wanted; 3..258 fit behind it; 259 does not: 2 is given up, all flows. */
	cr_assert_eq(n_gaps, 1);
	cr_expect_eq(gaps[0].from, 2);
	cr_expect_eq(gaps[0].reason, RLY_SUB_GAP_OVERFLOW);
	cr_expect_eq(n_got, 299);
	cr_expect_eq(got[n_got - 1], 300);
	done(s);
}

Test(client_repair, a_prev_seq_jump_is_no_gap_and_a_duplicate_is_stale)
{
	rly_sub_t *s = make(0, 0, 0);
	struct rly_sub_stats st;

	feed(s, 1, 2);
	feed_prev(s, 10, 2); /* 3..9 are not part of the chain */
	feed(s, 11, 11);
	cr_expect_eq(naks(NULL), 0);
	cr_expect_eq(n_got, 4);
	feed_prev(s, 20, 15); /* 12..15 missing, 16..19 never existed */
	cr_expect_eq(naks(NULL), 1);
	feed(s, 20, 20);      /* a duplicate of a held message */
	feed(s, 12, 15);
	cr_expect_eq(n_got, 9);
	cr_expect_eq(got[8], 20);
	rly_sub_stats(s, &st);
	cr_expect_eq(st.stale, 1);
	cr_expect_eq(st.missing, 4);
	cr_expect_eq(n_gaps, 0);
	done(s);
}

Test(client_repair, no_repair_delivers_at_once_and_reports_what_it_sees)
{
	rly_sub_t *s = make(1, 0, 0);

	feed(s, 1, 2);
	feed(s, 5, 6);
	cr_expect_eq(naks(NULL), 0, "asks for nothing");
	cr_assert_eq(n_gaps, 1);
	cr_expect_eq(gaps[0].reason, RLY_SUB_GAP_SEEN);
	cr_expect_eq(n_got, 4);
	feed(s, 3, 3); /* a late copy fills the reported gap: delivered once, late */
	cr_expect_eq(n_got, 5);
	cr_expect_eq(got[4], 3);
	done(s);
}

Test(client_repair, a_gap_for_another_stream_or_chain_changes_nothing)
{
	rly_sub_t *s = make(0, 0, 0);

	feed(s, 1, 1);
	feed(s, 3, 3);
	stream[0] ^= 1;
	gap(s, 2, 2, RLY_GAP_EVICTED);
	stream[0] ^= 1;
	pub[0] ^= 1;
	gap(s, 2, 2, RLY_GAP_EVICTED);
	pub[0] ^= 1;
	cr_expect_eq(n_gaps, 0);
	feed(s, 2, 2);
	expect_got(1, 3);
	done(s);
}
