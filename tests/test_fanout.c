/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fan-out correctness on net_ring ports, driving the real worker loop: every subscriber gets
 * every message of its streams exactly once, in order, in well-formed frames with the right
 * addresses and checksums.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dp_harness.h"
#include "relay/wire.h"

#define MAX_RECV 8192

/* What one endpoint received, in order. */
struct recv_log {
	struct rly_endpoint ep;
	unsigned n;
	struct {
		uint8_t key0;
		uint32_t chain;
		uint64_t seq;
		uint16_t len;
		uint8_t fill;
	} m[MAX_RECV];
};

static struct harness H;

static void check_frame_and_log(struct harness *h, struct rte_mbuf *m, struct recv_log *logs,
				unsigned n_logs, unsigned *frames_per_log)
{
	static struct h_out o;
	struct rly_wire_view v;
	const struct rly_wire_msg_hdr *mh;
	size_t off = 0;
	struct recv_log *log = NULL;
	unsigned i;

	h_decode(m, &o);
	cr_assert(rte_is_same_ether_addr(&o.src_mac, &h->relay_mac), "source MAC is the port's");
	cr_assert_eq(o.src_ip, h->cfg.ip_be, "source address is the relay's");
	cr_assert_eq(o.src_port, htons(H_RELAY_PORT), "source port is the relay's");
	for (i = 0; i < n_logs; i++)
		if (logs[i].ep.ip_be == o.dst_ip && logs[i].ep.udp_port_be == o.dst_port)
			log = &logs[i];
	cr_assert(log, "frame for an endpoint nobody subscribed: %08x:%u", ntohl(o.dst_ip),
		  ntohs(o.dst_port));
	cr_assert_eq(memcmp(&o.dst_mac, log->ep.mac, 6), 0, "destination MAC is the endpoint's");
	cr_assert_leq(o.len, h->cfg.dgram_max, "datagram within the MTU");
	cr_assert_eq(rly_wire_parse(o.payload, o.len, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK,
		     "relay sent a datagram its own parser refuses");
	cr_assert_eq(v.type, RLY_MSG_DATA);
	frames_per_log[log - logs]++;
	while ((mh = rly_wire_next_msg(&v, &off)) != NULL) {
		unsigned k = log->n++;
		const uint8_t *payload = (const uint8_t *)(mh + 1);
		uint16_t len = rly_be16_load(&mh->payload_len);

		cr_assert_lt(k, MAX_RECV);
		log->m[k].key0 = mh->stream_key[0];
		log->m[k].chain = rly_be32_load(&mh->chain);
		log->m[k].seq = rly_be64_load(&mh->seq);
		log->m[k].len = len;
		log->m[k].fill = len ? payload[0] : 0;
		for (uint16_t b = 0; b < len; b++)
			cr_assert_eq(payload[b], log->m[k].fill, "payload intact");
	}
}

static unsigned drain_and_check(struct harness *h, struct recv_log *logs, unsigned n_logs,
				unsigned *frames_per_log)
{
	struct rte_mbuf *out[256];
	unsigned n, total = 0;

	while ((n = h_collect(h, 0, out, 256)) > 0) {
		for (unsigned i = 0; i < n; i++)
			check_frame_and_log(h, out[i], logs, n_logs, frames_per_log);
		rte_pktmbuf_free_bulk(out, n);
		total += n;
	}
	return total;
}

static void every_subscriber_gets_every_message(void);

Test(fanout, every_subscriber_gets_every_message_once_in_order_with_right_addresses_and_checksums)
{
	h_chain_min = 0; /* every delivery a copy */
	every_subscriber_gets_every_message();
}

Test(fanout, the_same_holds_with_headers_chained_to_shared_payloads)
{
	h_chain_min = 1; /* every multi-subscriber delivery a header chained to a shared payload */
	every_subscriber_gets_every_message();
}

static void every_subscriber_gets_every_message(void)
{
	/* Streams A (3 subscribers), B (2, one shared with A), C (none). Chains per stream. */
	static struct recv_log logs[4];
	unsigned frames[4] = {0};
	uint8_t kA[16], kB[16], kC[16];
	struct rly_endpoint e1 = h_ep(1, 5001), e2 = h_ep(2, 5002), e3 = h_ep(3, 5003),
			    e4 = h_ep(4, 5004);
	uint64_t seqA = 0, seqB = 0, seqC = 0, sentA = 0, sentB = 0, sentC = 0;
	struct rte_mbuf *burst[64];
	uint8_t buf[2048];
	unsigned nb = 0, target = 1;

	h_setup(&H, 1, 1, 1500);
	h_key(kA, 1);
	h_key(kB, 2);
	h_key(kC, 3);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, kA, 0, &e1), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, kA, 0, &e2), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, kA, 0, &e3), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, kB, 0, &e3), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, kB, 0, &e4), RLY_CMD_OK);
	logs[0].ep = e1;
	logs[1].ep = e2;
	logs[2].ep = e3;
	logs[3].ep = e4;

	srand(7);
	for (unsigned d = 0; d < 600; d++) {
		struct h_msg msgs[6];
		unsigned n = 1 + (unsigned)rand() % 5, used = 8;
		for (unsigned i = 0; i < n; i++) {
			unsigned which = (unsigned)rand() % 3;
			uint16_t len = (uint16_t)(rand() % 200);
			if (used + 96 + len > 1472)
				break;
			used += 96u + len;
			memcpy(msgs[i].key, which == 0 ? kA : which == 1 ? kB : kC, 16);
			msgs[i].partition = 0;
			msgs[i].chain = 100 + which;
			msgs[i].seq = which == 0 ? ++seqA : which == 1 ? ++seqB : ++seqC;
			msgs[i].payload_len = len;
			msgs[i].fill = (uint8_t)(msgs[i].seq * 7 + which);
			sentA += which == 0;
			sentB += which == 1;
			sentC += which == 2;
			n = i + 1;
		}
		burst[nb++] = h_frame(&H, 9, 6000, buf, h_build_data(buf, msgs, n));
		/* Uneven bursts: the relay must not care how frames are grouped on arrival. */
		if (nb == target || d == 599) {
			h_inject(&H, 0, burst, nb);
			h_run(&H, 100);
			drain_and_check(&H, logs, 4, frames);
			nb = 0;
			target = 1 + (d * 7) % 40;
		}
	}

	cr_assert_eq(logs[0].n, sentA, "e1 got %u of %llu", logs[0].n, (unsigned long long)sentA);
	cr_assert_eq(logs[1].n, sentA);
	cr_assert_eq(logs[2].n, sentA + sentB, "e3 is on A and B");
	cr_assert_eq(logs[3].n, sentB);
	for (unsigned l = 0; l < 4; l++) {
		uint64_t lastA = 0, lastB = 0;
		for (unsigned k = 0; k < logs[l].n; k++) {
			uint64_t *last = logs[l].m[k].chain == 100 ? &lastA : &lastB;
			cr_assert_neq(logs[l].m[k].chain, 102, "stream C has no subscriber");
			cr_assert_eq(logs[l].m[k].seq, *last + 1, "endpoint %u: chain %u seq %llu after %llu",
				     l, logs[l].m[k].chain, (unsigned long long)logs[l].m[k].seq,
				     (unsigned long long)*last);
			*last = logs[l].m[k].seq;
			if (logs[l].m[k].len)
				cr_assert_eq(logs[l].m[k].fill,
					     (uint8_t)(logs[l].m[k].seq * 7 + (logs[l].m[k].chain - 100)));
		}
	}
	cr_assert_eq(h_ctr(&H, RLY_CTR_RX_MSGS), sentA + sentB + sentC);
	cr_assert_eq(h_ctr(&H, RLY_CTR_NO_SUBSCRIBERS), sentC);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DELIVERIES), 3 * sentA + 2 * sentB);
	cr_assert_eq(h_ctr(&H, RLY_CTR_TX_DROP), 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_TX_PKTS), frames[0] + frames[1] + frames[2] + frames[3]);
	h_teardown(&H);
}

static unsigned frames_for_32_small_datagrams(int batch)
{
	static struct recv_log logs[2];
	unsigned frames[2] = {0};
	uint8_t k[16], buf[2048];
	struct rly_endpoint e1 = h_ep(1, 5001), e2 = h_ep(2, 5002);
	struct rte_mbuf *burst[32];

	memset(logs, 0, sizeof(logs));
	h_setup(&H, 1, batch, 1500);
	h_key(k, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 7, &e1), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 7, &e2), RLY_CMD_OK);
	logs[0].ep = e1;
	logs[1].ep = e2;
	for (unsigned i = 0; i < 32; i++) {
		struct h_msg m = {.partition = 7, .chain = 1, .seq = i + 1, .payload_len = 64,
				  .fill = (uint8_t)i};
		memcpy(m.key, k, 16);
		burst[i] = h_frame(&H, 9, 6000, buf, h_build_data(buf, &m, 1));
	}
	h_inject(&H, 0, burst, 32);
	h_run(&H, 10);
	drain_and_check(&H, logs, 2, frames);
	cr_assert_eq(logs[0].n, 32);
	cr_assert_eq(logs[1].n, 32);
	for (unsigned i = 0; i < 32; i++)
		cr_assert_eq(logs[0].m[i].seq, i + 1);
	cr_assert_eq(frames[0], frames[1]);
	h_teardown(&H);
	return frames[0];
}

Test(fanout, batching_packs_messages_received_in_one_burst_into_full_datagrams)
{
	/* 1472-byte datagrams hold 9 messages of 96 + 64 bytes: 32 messages -> 9 + 9 + 9 + 5. */
	cr_assert_eq(frames_for_32_small_datagrams(1), 4);
}

Test(fanout, batching_off_sends_one_datagram_per_received_datagram)
{
	cr_assert_eq(frames_for_32_small_datagrams(0), 32);
}

Test(fanout, fan_out_of_one_sends_the_received_frame_itself)
{
	static struct recv_log logs[1];
	unsigned frames[1] = {0};
	uint8_t k[16], buf[2048];
	struct rly_endpoint e1 = h_ep(1, 5001);
	struct rte_mbuf *in, *out[4];
	struct h_msg m[3];

	h_setup(&H, 1, 0, 1500);
	h_key(k, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e1), RLY_CMD_OK);
	for (unsigned i = 0; i < 3; i++) {
		m[i] = (struct h_msg){.chain = 1, .seq = i + 1, .payload_len = 10, .fill = 1};
		memcpy(m[i].key, k, 16);
	}
	in = h_frame(&H, 9, 6000, buf, h_build_data(buf, m, 3));
	h_inject(&H, 0, &in, 1);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 1);
	cr_assert_eq(out[0], in, "the received mbuf itself went out, no copy");
	logs[0].ep = e1;
	check_frame_and_log(&H, out[0], logs, 1, frames);
	cr_assert_eq(logs[0].n, 3);
	rte_pktmbuf_free(out[0]);
	h_teardown(&H);
}

Test(fanout, removed_subscriber_gets_nothing_more_and_others_keep_order)
{
	static struct recv_log logs[2];
	unsigned frames[2] = {0};
	uint8_t k[16], buf[2048];
	struct rly_endpoint e1 = h_ep(1, 5001), e2 = h_ep(2, 5002);
	struct rte_mbuf *in;

	h_setup(&H, 1, 1, 1500);
	h_key(k, 4);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e1), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e2), RLY_CMD_OK);
	logs[0].ep = e1;
	logs[1].ep = e2;
	for (unsigned i = 0; i < 20; i++) {
		struct h_msg m = {.chain = 5, .seq = i + 1, .payload_len = 8, .fill = (uint8_t)i};
		memcpy(m.key, k, 16);
		if (i == 10)
			cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_DEL, k, 0, &e1), RLY_CMD_OK);
		in = h_frame(&H, 9, 6000, buf, h_build_data(buf, &m, 1));
		h_inject(&H, 0, &in, 1);
		h_run(&H, 10);
		rcu_quiescent_state();
		drain_and_check(&H, logs, 2, frames);
	}
	cr_assert_eq(logs[0].n, 10, "nothing after removal");
	cr_assert_eq(logs[1].n, 20);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_DEL, k, 0, &e2), RLY_CMD_OK);
	struct h_msg last = {.seq = 21, .chain = 5};
	memcpy(last.key, k, 16);
	in = h_frame(&H, 9, 6000, buf, h_build_data(buf, &last, 1));
	h_inject(&H, 0, &in, 1);
	h_run(&H, 10);
	cr_assert_eq(drain_and_check(&H, logs, 2, frames), 0, "stream with no subscriber sends nothing");
	cr_assert_eq(h_ctr(&H, RLY_CTR_NO_SUBSCRIBERS), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_STREAMS), 0);
	h_teardown(&H);
}

Test(fanout, two_workers_on_two_queues_keep_each_chain_in_order)
{
	static struct recv_log logs[1];
	unsigned frames[1] = {0};
	uint8_t k[16], buf[2048];
	struct rly_endpoint e1 = h_ep(1, 5001);
	struct rte_mbuf *in[2][50], *out[256];
	unsigned n;

	h_setup(&H, 2, 1, 1500);
	h_key(k, 8);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e1), RLY_CMD_OK);
	logs[0].ep = e1;
	/* Chain 1 arrives on queue 0, chain 2 on queue 1 (as RSS would keep each source on one). */
	for (unsigned q = 0; q < 2; q++) {
		for (unsigned i = 0; i < 50; i++) {
			struct h_msg m = {.chain = q + 1, .seq = i + 1, .payload_len = 16, .fill = 3};
			memcpy(m.key, k, 16);
			in[q][i] = h_frame(&H, 10 + q, 6000, buf, h_build_data(buf, &m, 1));
		}
		h_inject(&H, q, in[q], 50);
	}
	h_run(&H, 100);
	for (unsigned q = 0; q < 2; q++) {
		uint64_t last = 0;
		unsigned before = logs[0].n;
		while ((n = h_collect(&H, q, out, 256)) > 0) {
			for (unsigned i = 0; i < n; i++)
				check_frame_and_log(&H, out[i], logs, 1, frames);
			rte_pktmbuf_free_bulk(out, n);
		}
		cr_assert_eq(logs[0].n - before, 50, "worker %u sent its 50 on its own tx queue", q);
		for (unsigned i = before; i < logs[0].n; i++) {
			cr_assert_eq(logs[0].m[i].chain, q + 1);
			cr_assert_eq(logs[0].m[i].seq, ++last);
		}
	}
	h_teardown(&H);
}

Test(fanout, chained_deliveries_share_one_payload_and_leak_nothing)
{
	uint8_t k[16], buf[2048];
	struct rly_endpoint e1 = h_ep(1, 5001), e2 = h_ep(2, 5002), e3 = h_ep(3, 5003);
	struct rte_mbuf *in[4], *out[16];
	unsigned base, n;

	h_chain_min = 1;
	h_setup(&H, 1, 1, 1500);
	h_key(k, 6);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e1), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e2), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e3), RLY_CMD_OK);
	base = h_mbufs_in_use(&H);
	for (unsigned i = 0; i < 4; i++) {
		struct h_msg m = {.chain = 1, .seq = i + 1, .payload_len = 300, .fill = (uint8_t)i};
		memcpy(m.key, k, 16);
		in[i] = h_frame(&H, 9, 6000, buf, h_build_data(buf, &m, 1));
	}
	h_inject(&H, 0, in, 4);
	h_run(&H, 10);
	n = h_collect(&H, 0, out, 16);
	/* 4 x 396-byte messages fit 3 per datagram: 2 payloads, each chained under 3 headers. */
	cr_assert_eq(n, 6);
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(out[i]->nb_segs, 2);
		cr_assert_eq(out[i]->data_len, RLY_HDRS_LEN, "the header mbuf holds only headers");
		cr_assert_eq(out[i]->next, out[i - i % 3]->next, "subscribers share the payload mbuf");
		cr_assert_neq(out[i]->next, out[(i + 3) % 6]->next, "one payload per output datagram");
		cr_assert_eq(rte_mbuf_refcnt_read(out[i]->next), 3);
	}
	rte_pktmbuf_free_bulk(out, n);
	cr_assert_eq(h_mbufs_in_use(&H), base, "freeing every chain frees the shared payloads");
	cr_assert_eq(h_ctr(&H, RLY_CTR_DELIVERIES), 12);
	h_teardown(&H);
}

/* ---- peers: dedup, split horizon, reports ---- */

static struct rly_endpoint peer_ep(unsigned n, uint16_t port)
{
	struct rly_endpoint e = h_ep(n, port);
	e.flags = RLY_EP_F_PEER;
	return e;
}

static struct h_msg hmsg(unsigned stream, uint32_t partition, uint64_t seq)
{
	struct h_msg m = {.partition = partition, .chain = 1, .seq = seq, .payload_len = 12,
			  .fill = (uint8_t)seq};
	h_key(m.key, stream);
	return m;
}

/* Put one datagram of @p n messages from 10.0.0.<src>:<sport> on the rx ring (not run yet). */
static struct rte_mbuf *push(unsigned src, uint16_t sport, const struct h_msg *m, unsigned n)
{
	static uint8_t buf[2048];
	struct rte_mbuf *f = h_frame(&H, src, sport, buf, h_build_data(buf, m, n));
	h_inject(&H, 0, &f, 1);
	return f;
}

static void expect_seqs(const struct recv_log *log, const uint64_t *seqs, unsigned n)
{
	cr_assert_eq(log->n, n, "endpoint %08x got %u messages, expected %u", ntohl(log->ep.ip_be),
		     log->n, n);
	for (unsigned i = 0; i < n; i++)
		cr_assert_eq(log->m[i].seq, seqs[i], "endpoint %08x: message %u is seq %llu, not %llu",
			     ntohl(log->ep.ip_be), i, (unsigned long long)log->m[i].seq,
			     (unsigned long long)seqs[i]);
}

static void reset_logs(struct recv_log *logs, const struct rly_endpoint *eps, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		logs[i].ep = eps[i];
		logs[i].n = 0;
	}
}

Test(fanout, a_message_pushed_by_two_peers_reaches_each_subscriber_once_and_not_the_peer_it_came_from)
{
	static struct recv_log logs[4];
	unsigned frames[4] = {0}, fl[4];
	const struct rly_endpoint eps[4] = {h_ep(1, 5001), h_ep(2, 5002), peer_ep(11, 4747),
					    peer_ep(12, 4747)};
	struct h_msg m = hmsg(1, 0, 1);
	struct rly_pkt_rec rec[4];
	uint8_t wire[2048];

	h_setup(&H, 1, 1, 1500);
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &eps[i]), RLY_CMD_OK);
	reset_logs(logs, eps, 4);
	push(11, 4747, &m, 1);
	push(12, 4747, &m, 1);
	h_run(&H, 10);
	drain_and_check(&H, logs, 4, frames);
	expect_seqs(&logs[0], (uint64_t[]){1}, 1);
	expect_seqs(&logs[1], (uint64_t[]){1}, 1);
	expect_seqs(&logs[2], NULL, 0); /* it came from there */
	expect_seqs(&logs[3], (uint64_t[]){1}, 1); /* pushed by peer 11, and its own copy dropped */
	cr_assert_eq(h_ctr(&H, RLY_CTR_PEER_RX_MSGS), 2);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DEDUP_DUPLICATES), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_SPLIT_HORIZON), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DELIVERIES), 3);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PEER_DELIVERIES), 1);

	/* Peer 12's copy was a duplicate over an eager link: relay-control hears of it. */
	cr_assert_eq(h_punts(&H, 0, rec, 4, fl), 1);
	cr_assert_eq(fl[2], 1, "one DUPLICATE report");
	cr_assert_eq(fl[1], 0, "messages from peers are not reported as published");
	cr_assert_eq(rec[0].flags, RLY_PKT_F_DUPLICATE);
	cr_assert_eq(rec[0].ip_be, htonl(0x0a00000c));
	cr_assert_eq(rec[0].udp_port_be, htons(4747));
	cr_assert_eq(rec[0].mac[5], 12);
	cr_assert_eq(rec[0].len, sizeof(struct rly_wire_msg_hdr));
	h_build_data(wire, &m, 1);
	cr_assert_eq(memcmp(rec[0].data, wire + sizeof(struct rly_wire_dgram_hdr),
			    sizeof(struct rly_wire_msg_hdr)), 0, "the report holds the message header");
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNT_REPORTS), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 0, "reports are not control datagrams");
	/* The chain remembers which link brought the message first, for relay-control. */
	for (uint32_t i = 0; i <= H.dedup.mask; i++) {
		const struct rly_dedup_chain *c = rly_dedup_chain_at(&H.dedup, i);
		if (c->tag > RLY_DEDUP_TAG_RECLAIMING) {
			cr_assert_eq(c->first_src, rly_dedup_src(htonl(0x0a00000b), htons(4747)));
			cr_assert_eq(c->highest, 1);
		}
	}

	/* From a local publisher: everyone, peers included, and a PUBLISHED report. */
	m = hmsg(1, 0, 2);
	reset_logs(logs, eps, 4);
	push(9, 6000, &m, 1);
	h_run(&H, 10);
	drain_and_check(&H, logs, 4, frames);
	for (unsigned i = 0; i < 4; i++)
		expect_seqs(&logs[i], (uint64_t[]){2}, 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PEER_DELIVERIES), 3);
	cr_assert_eq(h_punts(&H, 0, rec, 4, fl), 1);
	cr_assert_eq(fl[1], 1);
	cr_assert_eq(rec[0].ip_be, htonl(0x0a000009));
	cr_assert_eq(rec[0].udp_port_be, htons(6000));

	/* The manager's gauge: one publisher chain. */
	H.dedup.next_scan = 0;
	cr_assert_eq(h_cmd(&H, RLY_CMD_PING, NULL, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DEDUP_CHAINS), 1);
	h_teardown(&H);
}

Test(fanout, split_horizon_keeps_the_zero_copy_path_for_the_one_endpoint_left)
{
	static struct recv_log logs[3];
	unsigned frames[3] = {0};
	const struct rly_endpoint p1 = peer_ep(11, 4747), s1 = h_ep(1, 5001), s2 = h_ep(2, 5002);
	struct h_msg m[3];
	struct rte_mbuf *in, *out[8];
	unsigned base;

	h_setup(&H, 1, 1, 1500);
	/* Stream 1: a peer and one subscriber. */
	h_key(m[0].key, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &p1), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &s1), RLY_CMD_OK);
	base = h_mbufs_in_use(&H);
	for (unsigned i = 0; i < 3; i++)
		m[i] = hmsg(1, 0, i + 1);
	in = push(11, 4747, m, 3);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 8), 1);
	cr_assert_eq(out[0], in, "the one endpoint left gets the received frame itself");
	reset_logs(logs, &s1, 1);
	check_frame_and_log(&H, out[0], logs, 1, frames);
	expect_seqs(&logs[0], (uint64_t[]){1, 2, 3}, 3);
	rte_pktmbuf_free(out[0]);
	cr_assert_eq(h_ctr(&H, RLY_CTR_SPLIT_HORIZON), 3);
	cr_assert_eq(h_mbufs_in_use(&H), base);

	/* Stream 2: the peer alone: nothing goes anywhere. */
	m[0] = hmsg(2, 0, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &p1), RLY_CMD_OK);
	push(11, 4747, m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 8), 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_SPLIT_HORIZON), 4);

	/* Stream 3: the peer sorts first in the set (10.0.0.0), two subscribers after it. */
	const struct rly_endpoint p0 = peer_ep(0, 4747);
	const struct rly_endpoint eps[3] = {s1, s2, p0};
	m[0] = hmsg(3, 0, 1);
	m[1] = hmsg(3, 0, 2);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &eps[i]), RLY_CMD_OK);
	reset_logs(logs, eps, 3);
	push(0, 4747, m, 2);
	h_run(&H, 10);
	drain_and_check(&H, logs, 3, frames);
	expect_seqs(&logs[0], (uint64_t[]){1, 2}, 2);
	expect_seqs(&logs[1], (uint64_t[]){1, 2}, 2);
	expect_seqs(&logs[2], NULL, 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_SPLIT_HORIZON), 6);
	h_teardown(&H);
}

Test(fanout, the_same_holds_with_headers_chained_to_shared_payloads_around_the_skipped_peer)
{
	static struct recv_log logs[4];
	unsigned frames[4] = {0};
	const struct rly_endpoint eps[4] = {h_ep(1, 5001), h_ep(2, 5002), peer_ep(3, 4747),
					    h_ep(4, 5004)};
	struct h_msg m[2] = {hmsg(1, 0, 1), hmsg(1, 0, 2)};
	unsigned base;

	h_chain_min = 64;
	h_setup(&H, 1, 1, 1500);
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &eps[i]), RLY_CMD_OK);
	base = h_mbufs_in_use(&H);
	reset_logs(logs, eps, 4);
	push(3, 4747, m, 2);
	h_run(&H, 10);
	drain_and_check(&H, logs, 4, frames);
	expect_seqs(&logs[0], (uint64_t[]){1, 2}, 2);
	expect_seqs(&logs[1], (uint64_t[]){1, 2}, 2);
	expect_seqs(&logs[2], NULL, 0);
	expect_seqs(&logs[3], (uint64_t[]){1, 2}, 2);
	cr_assert_eq(h_mbufs_in_use(&H), base, "the shared payload's references add up");
	cr_assert_eq(h_ctr(&H, RLY_CTR_PEER_DELIVERIES), 0);
	h_teardown(&H);
}

Test(fanout, without_a_history_a_set_without_peers_forwards_the_same_message_twice)
{
	static struct recv_log logs[1];
	unsigned frames[1] = {0};
	const struct rly_endpoint s1 = h_ep(1, 5001);
	struct h_msg m = hmsg(1, 0, 1);

	h_hist_chains = 0; /* relay --history-chains 0: the plain path of before issue 6 */
	h_setup(&H, 1, 1, 1500);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &s1), RLY_CMD_OK);
	reset_logs(logs, &s1, 1);
	push(9, 6000, &m, 1);
	push(9, 6000, &m, 1);
	h_run(&H, 10);
	drain_and_check(&H, logs, 1, frames);
	expect_seqs(&logs[0], (uint64_t[]){1, 1}, 2);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DEDUP_DUPLICATES) + h_ctr(&H, RLY_CTR_DEDUP_TOO_OLD) +
			     h_ctr(&H, RLY_CTR_DEDUP_UNTRACKED),
		     0);
	for (uint32_t i = 0; i <= H.dedup.mask; i++)
		cr_assert_eq(rly_dedup_chain_at(&H.dedup, i)->tag, RLY_DEDUP_TAG_FREE,
			     "no chain was claimed");
	h_teardown(&H);
	h_hist_chains = 8;
}

Test(fanout, a_datagram_of_new_and_duplicate_messages_forwards_only_the_new_ones_in_order)
{
	static struct recv_log logs[3];
	unsigned frames[3] = {0};
	const struct rly_endpoint eps[3] = {h_ep(1, 5001), peer_ep(11, 4747), peer_ep(12, 4747)};
	struct h_msg m[4];

	h_setup(&H, 1, 1, 1500);
	m[0] = hmsg(1, 0, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &eps[0]), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &eps[1]), RLY_CMD_OK);
	reset_logs(logs, eps, 3);
	m[1] = hmsg(1, 0, 2);
	push(9, 6000, m, 2);
	h_run(&H, 10);
	drain_and_check(&H, logs, 3, frames);
	expect_seqs(&logs[0], (uint64_t[]){1, 2}, 2);
	expect_seqs(&logs[1], (uint64_t[]){1, 2}, 2);

	/* Peer 11 pushes 1, 3, 2, 4: only 3 and 4 are new. */
	reset_logs(logs, eps, 3);
	m[0] = hmsg(1, 0, 1);
	m[1] = hmsg(1, 0, 3);
	m[2] = hmsg(1, 0, 2);
	m[3] = hmsg(1, 0, 4);
	push(11, 4747, m, 4);
	h_run(&H, 10);
	drain_and_check(&H, logs, 3, frames);
	expect_seqs(&logs[0], (uint64_t[]){3, 4}, 2);
	expect_seqs(&logs[1], NULL, 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DEDUP_DUPLICATES), 2);

	/* One burst, three sources: each endpoint still sees the chain in order. */
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &eps[2]), RLY_CMD_OK);
	reset_logs(logs, eps, 3);
	m[0] = hmsg(1, 0, 5);
	push(11, 4747, &m[0], 1);
	m[0] = hmsg(1, 0, 6);
	push(12, 4747, &m[0], 1);
	m[0] = hmsg(1, 0, 7);
	push(11, 4747, &m[0], 1);
	m[0] = hmsg(1, 0, 8);
	push(9, 6000, &m[0], 1);
	m[0] = hmsg(1, 0, 9);
	push(12, 4747, &m[0], 1);
	h_run(&H, 10);
	drain_and_check(&H, logs, 3, frames);
	expect_seqs(&logs[0], (uint64_t[]){5, 6, 7, 8, 9}, 5);
	expect_seqs(&logs[1], (uint64_t[]){6, 8, 9}, 3);
	expect_seqs(&logs[2], (uint64_t[]){5, 7, 8}, 3);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DEDUP_DUPLICATES), 2);
	h_teardown(&H);
}

Test(fanout, a_local_publisher_is_reported_once_per_second_per_stream_with_or_without_subscribers)
{
	const struct rly_endpoint s1 = h_ep(1, 5001), p1 = peer_ep(11, 4747);
	struct h_msg m = hmsg(1, 0, 1), a = hmsg(5, 0, 1), b = hmsg(5, 16, 1);
	struct rly_pkt_rec rec[8];
	unsigned fl[4];
	uint8_t wire[2048];

	h_setup(&H, 1, 1, 1500);
	/* Stream 1 has no subscriber here: the relay still has to join its overlay. */
	for (unsigned i = 0; i < 3; i++)
		push(9, 6000, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_NO_SUBSCRIBERS), 3);
	cr_assert_eq(h_punts(&H, 0, rec, 8, fl), 1);
	cr_assert_eq(fl[1], 1);
	cr_assert_eq(rec[0].flags, RLY_PKT_F_PUBLISHED);
	cr_assert_eq(rec[0].len, sizeof(struct rly_wire_msg_hdr));
	cr_assert_eq(rec[0].ip_be, htonl(0x0a000009));
	cr_assert_eq(rec[0].udp_port_be, htons(6000));
	cr_assert_eq(rec[0].mac[5], 9);
	cr_assert_eq(rec[0].port_id, 0);
	cr_assert_eq(rec[0].worker, 0);
	h_build_data(wire, &m, 1);
	cr_assert_eq(memcmp(rec[0].data, wire + 8, sizeof(struct rly_wire_msg_hdr)), 0);
	h_advance_ms(&H, 999);
	push(9, 6000, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, NULL), 0, "not within the second");
	h_advance_ms(&H, 1);
	push(9, 6000, &m, 1);
	push(9, 6000, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, NULL), 1, "once the second has passed");

	/* With a subscriber, no peer: reported the same way. Messages from a peer: never. */
	m = hmsg(2, 0, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &s1), RLY_CMD_OK);
	push(9, 6000, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, fl), 1);
	cr_assert_eq(fl[1], 1);
	m = hmsg(3, 0, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &p1), RLY_CMD_OK);
	push(11, 4747, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, NULL), 0, "a peer is not a publisher");
	m.seq = 2;
	push(9, 6000, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, fl), 1);
	cr_assert_eq(rec[0].ip_be, htonl(0x0a000009));

	/*
	 * Streams a and b share a lookup slot (same key, partitions 0 and 16): they take turns at
	 * half-second steps, and neither is reported twice within a second.
	 */
	h_advance_ms(&H, 5000);
	push(9, 6000, &a, 1);
	push(9, 6000, &b, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, NULL), 1);
	cr_assert_eq(rly_be32_load(rec[0].data + 16), 0, "stream a first");
	h_advance_ms(&H, 500);
	push(9, 6000, &a, 1);
	push(9, 6000, &b, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, NULL), 1);
	cr_assert_eq(rly_be32_load(rec[0].data + 16), 16, "then b, though a came first again");
	h_advance_ms(&H, 499);
	push(9, 6000, &a, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, NULL), 0);
	h_advance_ms(&H, 1);
	push(9, 6000, &a, 1);
	push(9, 6000, &b, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, NULL), 1);
	cr_assert_eq(rly_be32_load(rec[0].data + 16), 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNT_REPORTS), 7);
	h_teardown(&H);
}

Test(fanout, duplicate_reports_are_rate_limited_per_stream_and_only_for_peers)
{
	const struct rly_endpoint eps[3] = {h_ep(1, 5001), peer_ep(11, 4747), peer_ep(12, 4747)};
	struct h_msg m[5];
	struct rly_pkt_rec rec[8];
	unsigned fl[4];
	struct rte_mbuf *out[64];
	unsigned n;

	h_setup(&H, 1, 1, 1500);
	for (unsigned i = 0; i < 5; i++)
		m[i] = hmsg(1, 0, i + 1);
	for (unsigned i = 0; i < 3; i++)
		cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m[0].key, 0, &eps[i]), RLY_CMD_OK);
	push(11, 4747, m, 5);
	for (unsigned i = 0; i < 5; i++)
		push(12, 4747, &m[i], 1);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DEDUP_DUPLICATES), 5);
	cr_assert_eq(h_punts(&H, 0, rec, 8, fl), 1);
	cr_assert_eq(fl[2], 1, "five duplicates, one report");
	h_advance_ms(&H, RLY_DUP_REPORT_MS - 1);
	push(12, 4747, m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, NULL), 0);
	h_advance_ms(&H, 1);
	push(12, 4747, m, 1);
	push(12, 4747, m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 8, fl), 1);
	cr_assert_eq(fl[2], 1);
	cr_assert_eq(rec[0].ip_be, htonl(0x0a00000c));
	/* A local publisher repeating itself is dropped, but it is no overlay link to prune. */
	h_advance_ms(&H, 1000);
	push(9, 6000, m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DEDUP_DUPLICATES), 9);
	cr_assert_eq(h_punts(&H, 0, rec, 8, fl), 1);
	cr_assert_eq(fl[2], 0);
	cr_assert_eq(fl[1], 1, "only its PUBLISHED report");
	while ((n = h_collect(&H, 0, out, 64)) > 0)
		rte_pktmbuf_free_bulk(out, n);
	h_teardown(&H);
}

Test(fanout, re_adding_an_endpoint_with_other_flags_updates_it_and_dumps_show_them)
{
	static struct recv_log logs[2];
	unsigned frames[2] = {0};
	struct rly_endpoint s1 = h_ep(1, 5001);
	const struct rly_endpoint s2 = h_ep(2, 5002);
	struct h_msg m = hmsg(1, 0, 1);
	struct rly_cmd c;
	struct rly_event ev;
	unsigned entries = 0, peers = 0;

	h_setup(&H, 1, 1, 1500);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &s1), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &s2), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &s1), RLY_CMD_EXISTS);
	s1.flags = RLY_EP_F_PEER;
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &s1), RLY_CMD_OK, "flags changed");
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &s1), RLY_CMD_EXISTS);
	cr_assert_eq(rly_subtable_lookup(H.table, m.key, 0)->n_peers, 1);

	memset(&c, 0, sizeof(c));
	c.op = RLY_CMD_DUMP;
	c.seq = 99;
	cr_assert_eq(rte_ring_sp_enqueue_elem(rly_shm_cmd_ring(&H.shm), &c, sizeof(c)), 0);
	rly_manager_poll_once(&H.mgr);
	while (rte_ring_sc_dequeue_elem(rly_shm_event_ring(&H.shm), &ev, sizeof(ev)) == 0 &&
	       ev.op == RLY_EV_DUMP_ENTRY) {
		entries++;
		if (ev.ep.ip_be == s1.ip_be)
			peers += ev.ep.flags == RLY_EP_F_PEER;
		else
			cr_assert_eq(ev.ep.flags, 0);
	}
	cr_assert_eq(ev.op, RLY_EV_DUMP_END);
	cr_assert_eq(entries, 2);
	cr_assert_eq(peers, 1, "the dump carries the peer flag");

	/* Now a peer: what comes from it is de-duplicated and not sent back. */
	reset_logs(logs, (struct rly_endpoint[]){s1, s2}, 2);
	push(1, 5001, &m, 1);
	push(1, 5001, &m, 1);
	h_run(&H, 10);
	drain_and_check(&H, logs, 2, frames);
	expect_seqs(&logs[0], NULL, 0);
	expect_seqs(&logs[1], (uint64_t[]){1}, 1);

	/* And back to a subscriber: no split horizon, its own messages included; seq 1 is a
	 * duplicate for the chain (every stream is de-duplicated when the relay keeps a history),
	 * seq 2 is new. */
	s1.flags = 0;
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, m.key, 0, &s1), RLY_CMD_OK);
	cr_assert_eq(rly_subtable_lookup(H.table, m.key, 0)->n_peers, 0);
	reset_logs(logs, (struct rly_endpoint[]){s1, s2}, 2);
	push(1, 5001, &m, 1);
	m.seq = 2;
	push(1, 5001, &m, 1);
	h_run(&H, 10);
	drain_and_check(&H, logs, 2, frames);
	expect_seqs(&logs[0], (uint64_t[]){2}, 1);
	expect_seqs(&logs[1], (uint64_t[]){2}, 1);
	h_teardown(&H);
}
