/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loss repair in the worker (dataplane/repair.c), on the real loop through dp_harness: a NAK from
 * a subscriber is answered from the history with the very messages (byte for byte, repair bit set,
 * in order, several per datagram); strangers get nothing; what the history no longer holds, what
 * never came and a chain without history each get a GAP with the reason; the budget paces a
 * subscriber (GAP PACED) and refills with time; one that stays over it is cut (GAP SLOW_CONSUMER,
 * a SLOW report for relay-control) while the others are still served; the holdoff coalesces a
 * repeated NAK; and a publisher's own duplicates are dropped on a stream without peers.
 */
#include <arpa/inet.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dp_harness.h"
#include "relay/wire.h"

static struct harness H;
static uint8_t K[RLY_STREAM_KEY_LEN];

#define PUB_SRC 50	/* the publisher: 10.0.0.50:7000 */
#define SUB1 1		/* subscribers 10.0.0.1:5001, 10.0.0.2:5002 */
#define SUB2 2
#define CHAIN 9u
#define PAYLOAD 100u	/* 196-byte messages */

static void setup_stream(void)
{
	struct rly_endpoint e1 = h_ep(SUB1, 5000 + SUB1), e2 = h_ep(SUB2, 5000 + SUB2);

	h_key(K, 3);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, K, 0, &e1), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, K, 0, &e2), RLY_CMD_OK);
}

static void drain(void)
{
	struct rte_mbuf *out[256];
	unsigned n;

	while ((n = h_collect(&H, 0, out, 256)) > 0)
		rte_pktmbuf_free_bulk(out, n);
}

/* Publish seqs from..to (skipping @p skip_lo..@p skip_hi), one message per datagram. */
static void publish(uint64_t from, uint64_t to, uint64_t skip_lo, uint64_t skip_hi)
{
	for (uint64_t seq = from; seq <= to; seq++) {
		struct h_msg m = {.chain = CHAIN, .seq = seq, .payload_len = PAYLOAD,
				  .fill = (uint8_t)seq};
		uint8_t buf[512];
		struct rte_mbuf *f;

		if (seq >= skip_lo && seq <= skip_hi)
			continue;
		memcpy(m.key, K, sizeof(K));
		f = h_frame(&H, PUB_SRC, 7000, buf, h_build_data(buf, &m, 1));
		h_inject(&H, 0, &f, 1);
		h_run(&H, 4);
	}
	drain();
}

/* Send a NAK from 10.0.0.<src>:<5000+src> for @p n ranges (pairs in @p r) of our chain. */
static void nak(unsigned src, const uint64_t *r, unsigned n, uint32_t chain)
{
	struct rly_wire_nak b;
	uint8_t buf[512];
	struct rte_mbuf *f;
	int len;

	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, K, sizeof(K));
	rly_be32_store(&b.chain, chain);
	memset(b.publisher, 0xab, sizeof(b.publisher));
	rly_be64_store(&b.request_id, 77);
	b.n = (uint8_t)n;
	for (unsigned i = 0; i < n; i++) {
		rly_be64_store(&b.r[i].from_seq, r[2 * i]);
		rly_be64_store(&b.r[i].to_seq, r[2 * i + 1]);
	}
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_NAK, &b);
	cr_assert_gt(len, 0);
	f = h_frame(&H, src, (uint16_t)(5000 + src), buf, (uint16_t)len);
	h_inject(&H, 0, &f, 1);
	h_run(&H, 4);
}

/* What the relay sent back: repaired seqs in order, GAPs, and datagrams of each type. */
struct answer {
	uint64_t seqs[4096];
	unsigned n_seqs, n_data_dgrams;
	struct rly_wire_gap gaps[32];
	unsigned n_gaps;
	uint32_t to_ip;
};

static void collect(struct answer *a)
{
	struct rte_mbuf *out[256];
	unsigned n;

	memset(a, 0, sizeof(*a));
	while ((n = h_collect(&H, 0, out, 256)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			static struct h_out o;
			struct rly_wire_view v;
			size_t off = 0;
			const struct rly_wire_msg_hdr *m;

			h_decode(out[i], &o);
			a->to_ip = o.dst_ip;
			cr_assert_eq(rly_wire_parse(o.payload, o.len, RLY_WIRE_MAX_DGRAM, &v),
				     RLY_WIRE_ERR_OK, "the relay sends only valid datagrams");
			if (v.type == RLY_MSG_GAP) {
				cr_assert_lt(a->n_gaps, 32);
				memcpy(&a->gaps[a->n_gaps++], v.body, sizeof(struct rly_wire_gap));
				continue;
			}
			cr_assert_eq(v.type, RLY_MSG_DATA);
			a->n_data_dgrams++;
			while ((m = rly_wire_next_msg(&v, &off)) != NULL) {
				uint64_t seq = rly_be64_load(&m->seq);
				const uint8_t *p = (const uint8_t *)(m + 1);

				cr_assert(m->ttl & RLY_TTL_F_REPAIR, "marked as a repair");
				cr_assert_eq(rly_be16_load(&m->payload_len), PAYLOAD);
				for (unsigned b = 0; b < PAYLOAD; b++)
					cr_assert_eq(p[b], (uint8_t)seq, "seq %llu byte for byte",
						     (unsigned long long)seq);
				a->seqs[a->n_seqs++] = seq;
			}
		}
		rte_pktmbuf_free_bulk(out, n);
	}
}

static void expect_run(const struct answer *a, uint64_t from, uint64_t to)
{
	cr_assert_eq(a->n_seqs, to - from + 1, "%u messages sent again, expected %llu", a->n_seqs,
		     (unsigned long long)(to - from + 1));
	for (unsigned i = 0; i < a->n_seqs; i++)
		cr_assert_eq(a->seqs[i], from + i, "in order");
}

static const struct rly_wire_gap *gap_of(const struct answer *a, unsigned reason)
{
	for (unsigned i = 0; i < a->n_gaps; i++)
		if (a->gaps[i].reason == reason)
			return &a->gaps[i];
	return NULL;
}

Test(repair, a_subscribers_nak_is_answered_with_the_very_messages_several_per_datagram)
{
	struct answer a;

	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 100, 0, 0);
	nak(SUB1, (uint64_t[]){20, 40}, 1, CHAIN);
	collect(&a);
	expect_run(&a, 20, 40);
	cr_expect_eq(a.n_gaps, 0);
	cr_expect_eq(a.to_ip, h_ep(SUB1, 0).ip_be, "to the subscriber that asked, not the others");
	/* 196-byte messages, 1472-byte datagrams: 7 per datagram. */
	cr_expect_eq(a.n_data_dgrams, 3, "%u datagrams", a.n_data_dgrams);
	cr_expect_eq(h_ctr(&H, RLY_CTR_NAK_RX), 1);
	cr_expect_eq(h_ctr(&H, RLY_CTR_REPAIR_MSGS), 21);
	cr_expect_eq(h_ctr(&H, RLY_CTR_PUNTED), 0, "relay-control was not involved");
	h_teardown(&H);
}

Test(repair, several_ranges_of_one_nak_share_datagrams_in_order)
{
	struct answer a;

	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 60, 0, 0);
	nak(SUB2, (uint64_t[]){3, 4, 10, 10, 50, 53}, 3, CHAIN);
	collect(&a);
	cr_assert_eq(a.n_seqs, 7);
	cr_expect_eq(a.seqs[0], 3);
	cr_expect_eq(a.seqs[2], 10);
	cr_expect_eq(a.seqs[6], 53);
	cr_expect_eq(a.n_data_dgrams, 1, "7 messages fit one datagram");
	h_teardown(&H);
}

Test(repair, a_stranger_gets_nothing)
{
	struct answer a;

	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 10, 0, 0);
	nak(9, (uint64_t[]){1, 10}, 1, CHAIN); /* 10.0.0.9 subscribes to nothing */
	collect(&a);
	cr_expect_eq(a.n_seqs + a.n_gaps, 0);
	cr_expect_eq(h_ctr(&H, RLY_CTR_NAK_NOT_SUBSCRIBER), 1);
	h_teardown(&H);
}

Test(repair, what_never_came_is_missing_and_what_is_not_here_yet_gets_no_answer)
{
	struct answer a;
	const struct rly_wire_gap *g;

	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 30, 11, 14);
	nak(SUB1, (uint64_t[]){9, 16, 29, 40}, 2, CHAIN);
	collect(&a);
	cr_assert_eq(a.n_seqs, 2 + 2 + 2, "9, 10, 15, 16, 29, 30");
	g = gap_of(&a, RLY_GAP_MISSING);
	cr_assert_not_null(g);
	cr_expect_eq(rly_be64_load(&g->from_seq), 11);
	cr_expect_eq(rly_be64_load(&g->to_seq), 14);
	cr_expect_eq(rly_be64_load(&g->request_id), 77, "echoes the NAK");
	cr_expect_eq(rly_be32_load(&g->chain), CHAIN);
	cr_expect_eq(a.n_gaps, 1, "31..40 have not reached the relay: nothing said of them");
	cr_expect_eq(h_ctr(&H, RLY_CTR_GAP_MISSING), 4);
	h_teardown(&H);
}

Test(repair, what_the_history_pushed_out_is_evicted_with_the_lowest_held)
{
	static struct answer a;
	uint64_t first_held;
	const struct rly_wire_gap *g;

	h_hist_bytes = 16384; /* 224-byte records: the newest 73 fit */
	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 400, 0, 0);
	nak(SUB1, (uint64_t[]){1, 400}, 1, CHAIN);
	collect(&a);
	g = gap_of(&a, RLY_GAP_EVICTED);
	cr_assert_not_null(g);
	cr_expect_eq(rly_be64_load(&g->from_seq), 1);
	cr_expect_eq(a.seqs[0], rly_be64_load(&g->to_seq) + 1, "evicted up to just below the first sent");
	cr_expect_eq(a.seqs[a.n_seqs - 1], 400);
	cr_expect_geq(a.n_seqs, 60, "%u held", a.n_seqs);
	cr_expect_leq(a.n_seqs, 73);
	first_held = a.seqs[0];
	/* A second NAK for the old part finds the hint the first one's scan left: one GAP that
	 * names the lowest seq held. */
	nak(SUB2, (uint64_t[]){5, 300}, 1, CHAIN);
	collect(&a);
	cr_assert_eq(a.n_gaps, 1);
	cr_expect_eq(a.gaps[0].reason, RLY_GAP_EVICTED);
	cr_expect_eq(rly_be64_load(&a.gaps[0].from_seq), 5);
	cr_expect_eq(rly_be64_load(&a.gaps[0].to_seq), 300);
	cr_expect_eq(rly_be64_load(&a.gaps[0].lowest), first_held);
	cr_expect_eq(a.n_seqs, 0);
	h_teardown(&H);
	h_hist_bytes = 65536;
}

Test(repair, a_chain_without_history_gets_unknown_chain)
{
	struct answer a;

	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 10, 0, 0);
	nak(SUB1, (uint64_t[]){1, 5}, 1, CHAIN + 1);
	collect(&a);
	cr_assert_eq(a.n_gaps, 1);
	cr_expect_eq(a.gaps[0].reason, RLY_GAP_UNKNOWN_CHAIN);
	cr_expect_eq(h_ctr(&H, RLY_CTR_NAK_UNKNOWN_CHAIN), 1);
	h_teardown(&H);
}

Test(repair, without_a_history_every_nak_gets_unknown_chain_and_duplicates_pass)
{
	struct answer a;

	h_hist_chains = 0;
	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 5, 0, 0);
	publish(3, 3, 0, 0); /* sent twice: with no dedup on a stream without peers, forwarded */
	cr_expect_eq(h_ctr(&H, RLY_CTR_DEDUP_DUPLICATES), 0);
	nak(SUB1, (uint64_t[]){1, 5}, 1, CHAIN);
	collect(&a);
	cr_expect_eq(a.n_seqs, 0);
	cr_expect_eq(a.n_gaps, 1);
	cr_expect_eq(a.gaps[0].reason, RLY_GAP_UNKNOWN_CHAIN);
	h_teardown(&H);
	h_hist_chains = 8;
}

Test(repair, a_publishers_duplicate_is_dropped_once_the_relay_keeps_a_history)
{
	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 5, 0, 0);
	publish(3, 3, 0, 0);
	cr_expect_eq(h_ctr(&H, RLY_CTR_DEDUP_DUPLICATES), 1);
	cr_expect_eq(h_ctr(&H, RLY_CTR_DELIVERIES), 10, "5 messages to 2 subscribers, once each");
	h_teardown(&H);
}

Test(repair, the_budget_paces_a_big_nak_and_refills_with_time)
{
	struct answer a;
	const struct rly_wire_gap *g;

	h_repair_kbs = 100;	  /* 100 KiB/s */
	h_repair_burst_kb = 4; /* 4 KiB at once: 20 messages of 196 bytes */
	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 200, 0, 0);
	nak(SUB1, (uint64_t[]){1, 200}, 1, CHAIN);
	collect(&a);
	expect_run(&a, 1, 20);
	g = gap_of(&a, RLY_GAP_PACED);
	cr_assert_not_null(g, "told to ask again later");
	cr_expect_eq(rly_be64_load(&g->from_seq), 21);
	cr_expect_eq(rly_be64_load(&g->to_seq), 200);
	cr_expect_eq(h_ctr(&H, RLY_CTR_NAK_PACED), 1);
	/* The other subscriber has a budget of its own. */
	nak(SUB2, (uint64_t[]){1, 5}, 1, CHAIN);
	collect(&a);
	expect_run(&a, 1, 5);
	/* 20 ms at 100 KiB/s is 2 KiB: 10 more messages. */
	h_advance_ms(&H, 20);
	nak(SUB1, (uint64_t[]){21, 200}, 1, CHAIN);
	collect(&a);
	cr_expect_geq(a.n_seqs, 10);
	cr_expect_leq(a.n_seqs, 11);
	cr_expect_eq(a.seqs[0], 21);
	h_teardown(&H);
	h_repair_kbs = 0;
	h_repair_burst_kb = 64;
}

/* Found by fuzz_worker: the budget-spent refusal skips the look-up, and once answered a NAK for a
 * stream its sender does not subscribe to, and went on answering it after the unsubscribe. */
Test(repair, a_spent_budget_answers_only_nak_for_a_stream_still_subscribed)
{
	struct answer a;
	uint8_t k_sub[RLY_STREAM_KEY_LEN];
	struct rly_endpoint e1 = h_ep(SUB1, 5000 + SUB1);

	h_repair_kbs = 100;
	h_repair_burst_kb = 4;
	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 200, 0, 0);
	nak(SUB1, (uint64_t[]){1, 200}, 1, CHAIN);
	collect(&a);
	expect_run(&a, 1, 20);
	cr_assert_not_null(gap_of(&a, RLY_GAP_PACED));
	/* Budget spent: the same stream is refused (GAP PACED, at most one per 5 ms) ... */
	h_advance_ms(&H, 6);
	nak(SUB1, (uint64_t[]){21, 200}, 1, CHAIN);
	collect(&a);
	cr_expect_not_null(gap_of(&a, RLY_GAP_PACED));
	/* ... another stream, one it does not subscribe to, gets nothing at all. */
	memcpy(k_sub, K, sizeof(K));
	h_key(K, 4);
	h_advance_ms(&H, 6);
	nak(SUB1, (uint64_t[]){21, 200}, 1, CHAIN);
	collect(&a);
	cr_expect_eq(a.n_gaps, 0, "answered a NAK for a stream it does not subscribe to");
	cr_expect_eq(a.n_seqs, 0);
	cr_expect_eq(h_ctr(&H, RLY_CTR_NAK_NOT_SUBSCRIBER), 1);
	/* Unsubscribed: its stream's NAKs get nothing either. */
	memcpy(K, k_sub, sizeof(K));
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_DEL, K, 0, &e1), RLY_CMD_OK);
	h_advance_ms(&H, 6);
	nak(SUB1, (uint64_t[]){21, 200}, 1, CHAIN);
	collect(&a);
	cr_expect_eq(a.n_gaps, 0, "answered a NAK after the unsubscribe");
	cr_expect_eq(h_ctr(&H, RLY_CTR_NAK_NOT_SUBSCRIBER), 2);
	h_teardown(&H);
	h_repair_kbs = 0;
	h_repair_burst_kb = 64;
}

Test(repair, a_subscriber_over_its_budget_for_too_long_is_cut_and_the_others_still_served)
{
	struct answer a;
	struct rly_pkt_rec rec[8];
	unsigned n, n_slow = 0, flags[4] = {0};
	const struct rly_slow_report *rep;
	const struct rly_pkt_rec *slow = NULL;

	h_repair_kbs = 10;
	h_repair_burst_kb = 2;
	h_slow_cut_ms = 100;
	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 300, 0, 0);
	for (int t = 0; t <= 120; t += 20) {
		nak(SUB1, (uint64_t[]){1, 300}, 1, CHAIN);
		collect(&a);
		if (t < 100)
			cr_assert_null(gap_of(&a, RLY_GAP_SLOW_CONSUMER), "not cut at %d ms", t);
		h_advance_ms(&H, 20);
	}
	cr_expect_eq(h_ctr(&H, RLY_CTR_SLOW_CUTS), 1);
	n = h_punts(&H, 0, rec, 8, flags);
	for (unsigned i = 0; i < n; i++)
		if (rec[i].flags & RLY_PKT_F_SLOW)
			slow = &rec[i], n_slow++;
	cr_assert_eq(n_slow, 1, "one SLOW report for relay-control");
	rep = (const void *)slow->data;
	cr_expect_eq(slow->ip_be, h_ep(SUB1, 0).ip_be);
	cr_expect_eq(slow->udp_port_be, htons(5000 + SUB1));
	cr_expect_eq(slow->len, sizeof(*rep));
	cr_expect_geq(rep->over_ms, 100);
	cr_expect_gt(rep->asked_msgs, rep->sent_msgs);
	cr_expect_eq(rep->budget_bytes_s, 10240);
	/* Cut: no more data for it, a notice instead (at most one per 100 ms). */
	nak(SUB1, (uint64_t[]){1, 300}, 1, CHAIN);
	collect(&a);
	cr_expect_eq(a.n_seqs, 0);
	h_advance_ms(&H, 100);
	nak(SUB1, (uint64_t[]){1, 300}, 1, CHAIN);
	collect(&a);
	cr_expect_eq(a.n_seqs, 0);
	cr_expect_not_null(gap_of(&a, RLY_GAP_SLOW_CONSUMER));
	/* The other subscriber is served as before. */
	nak(SUB2, (uint64_t[]){250, 255}, 1, CHAIN);
	collect(&a);
	expect_run(&a, 250, 255);
	h_teardown(&H);
	h_repair_kbs = 0;
	h_repair_burst_kb = 64;
	h_slow_cut_ms = 0;
}

Test(repair, a_nak_repeated_within_the_holdoff_is_not_answered_twice)
{
	struct answer a;

	h_nak_holdoff_us = 2000;
	h_setup(&H, 1, 1, 1500);
	setup_stream();
	publish(1, 50, 0, 0);
	nak(SUB1, (uint64_t[]){10, 20}, 1, CHAIN);
	collect(&a);
	expect_run(&a, 10, 20);
	nak(SUB1, (uint64_t[]){10, 25}, 1, CHAIN);
	collect(&a);
	expect_run(&a, 21, 25);
	cr_expect_eq(h_ctr(&H, RLY_CTR_NAK_HOLDOFF), 11);
	h_advance_ms(&H, 3);
	nak(SUB1, (uint64_t[]){10, 12}, 1, CHAIN);
	collect(&a);
	expect_run(&a, 10, 12);
	h_teardown(&H);
	h_nak_holdoff_us = 0;
}

Test(repair, a_gap_or_nak_sent_to_the_relay_the_wrong_way_is_dropped)
{
	struct rly_wire_gap g;
	uint8_t buf[256];
	struct rte_mbuf *f;
	int len;

	h_setup(&H, 1, 1, 1500);
	memset(&g, 0, sizeof(g));
	memset(g.publisher, 1, sizeof(g.publisher));
	rly_be64_store(&g.from_seq, 1);
	rly_be64_store(&g.to_seq, 1);
	rly_be64_store(&g.request_id, 1);
	g.reason = RLY_GAP_EVICTED;
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_GAP, &g);
	f = h_frame(&H, 1, 5001, buf, (uint16_t)len);
	h_inject(&H, 0, &f, 1);
	h_run(&H, 4);
	cr_expect_eq(h_ctr(&H, RLY_CTR_DROP_WRONG_WAY), 1);
	h_teardown(&H);
}
