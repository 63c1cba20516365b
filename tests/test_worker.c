/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The worker's handling of everything that is not a well-formed data datagram: every kind of bad
 * frame is dropped, counted under its own reason, and freed; ARP for the relay's address is
 * answered; control datagrams reach relay-control's ring with their source; relay-control's
 * replies go out with the relay's headers; a full tx queue drops and counts, never leaks.
 */
#include <arpa/inet.h>
#include <string.h>

#include <criterion/criterion.h>
#include <rte_arp.h>
#include <rte_ring_elem.h>

#include "dp_harness.h"
#include "relay/wire.h"

static struct harness H;

static uint16_t one_msg(uint8_t *buf, unsigned stream, uint64_t seq)
{
	struct h_msg m = {.chain = 1, .seq = seq, .payload_len = 20, .fill = 9};
	h_key(m.key, stream);
	return h_build_data(buf, &m, 1);
}

static struct rte_ipv4_hdr *ip_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *, RLY_L2_LEN);
}

static struct rte_udp_hdr *udp_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, struct rte_udp_hdr *, RLY_L2_LEN + RLY_L3_LEN);
}

/* Recompute both checksums after a test edits a header, so only the intended fault remains. */
static void fix_csums(struct rte_mbuf *m)
{
	struct rte_ipv4_hdr *ip = ip_of(m);
	struct rte_udp_hdr *udp = udp_of(m);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->dgram_cksum = 0;
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
}

struct bad_case {
	const char *what;
	unsigned counter;
	int wire_err; /* -1: none */
};

static void expect_dropped(struct rte_mbuf *m, const struct bad_case *c)
{
	uint64_t before = h_ctr(&H, c->counter);
	uint64_t wire_before = c->wire_err >= 0 ? h_ctr(&H, RLY_CTR_WIRE_BASE + c->wire_err) : 0;
	struct rte_mbuf *out[4];

	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, c->counter), before + 1, "%s: counter %s did not move", c->what,
		     rly_ctr_name(c->counter));
	if (c->wire_err >= 0)
		cr_assert_eq(h_ctr(&H, RLY_CTR_WIRE_BASE + c->wire_err), wire_before + 1,
			     "%s: wire reason %s", c->what, rly_wire_err_name(c->wire_err));
	cr_assert_eq(h_collect(&H, 0, out, 4), 0, "%s: something was sent", c->what);
}

Test(worker, every_malformed_frame_is_dropped_counted_by_reason_and_freed)
{
	uint8_t buf[2048];
	uint8_t k[16];
	struct rly_endpoint e1 = h_ep(1, 5001);
	struct rte_mbuf *m;
	unsigned base;
	uint16_t len;

	h_setup(&H, 1, 1, 1500);
	h_key(k, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e1), RLY_CMD_OK);
	base = h_mbufs_in_use(&H);
	len = one_msg(buf, 1, 1);

	m = h_frame(&H, 9, 6000, buf, len);
	rte_pktmbuf_trim(m, rte_pktmbuf_data_len(m) - 10);
	expect_dropped(m, &(struct bad_case){"10-byte frame", RLY_CTR_DROP_RUNT, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->ether_type = htons(RTE_ETHER_TYPE_IPV6);
	expect_dropped(m, &(struct bad_case){"IPv6", RLY_CTR_DROP_NOT_IP, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	rte_pktmbuf_trim(m, rte_pktmbuf_data_len(m) - 30);
	expect_dropped(m, &(struct bad_case){"truncated IPv4 header", RLY_CTR_DROP_RUNT, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	ip_of(m)->version_ihl = 0x65;
	fix_csums(m);
	expect_dropped(m, &(struct bad_case){"IP version 6 in an IPv4 frame", RLY_CTR_DROP_IP_HDR, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	ip_of(m)->version_ihl = 0x44;
	expect_dropped(m, &(struct bad_case){"IHL 4", RLY_CTR_DROP_IP_HDR, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	ip_of(m)->total_length = htons(ntohs(ip_of(m)->total_length) + 1);
	fix_csums(m);
	expect_dropped(m, &(struct bad_case){"IP length past the frame", RLY_CTR_DROP_IP_HDR, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	ip_of(m)->hdr_checksum ^= 0x0101;
	expect_dropped(m, &(struct bad_case){"bad IP checksum", RLY_CTR_DROP_IP_CSUM, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	ip_of(m)->fragment_offset = htons(RTE_IPV4_HDR_MF_FLAG);
	fix_csums(m);
	expect_dropped(m, &(struct bad_case){"first fragment", RLY_CTR_DROP_IP_FRAG, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	ip_of(m)->fragment_offset = htons(100);
	fix_csums(m);
	expect_dropped(m, &(struct bad_case){"later fragment", RLY_CTR_DROP_IP_FRAG, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	ip_of(m)->next_proto_id = IPPROTO_TCP;
	fix_csums(m);
	expect_dropped(m, &(struct bad_case){"TCP", RLY_CTR_DROP_NOT_UDP, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	ip_of(m)->dst_addr = htonl(0xc6120002);
	fix_csums(m);
	expect_dropped(m, &(struct bad_case){"another address", RLY_CTR_DROP_NOT_FOR_US, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	udp_of(m)->dst_port = htons(53);
	fix_csums(m);
	expect_dropped(m, &(struct bad_case){"another port", RLY_CTR_DROP_NOT_FOR_US, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	udp_of(m)->dgram_len = htons(ntohs(udp_of(m)->dgram_len) - 1);
	fix_csums(m);
	expect_dropped(m, &(struct bad_case){"UDP length short of IP length", RLY_CTR_DROP_UDP_LEN, -1});

	m = h_frame(&H, 9, 6000, buf, len);
	udp_of(m)->dgram_cksum ^= 0x0100;
	expect_dropped(m, &(struct bad_case){"bad UDP checksum", RLY_CTR_DROP_UDP_CSUM, -1});

	buf[0] ^= 0xff;
	m = h_frame(&H, 9, 6000, buf, len);
	buf[0] ^= 0xff;
	expect_dropped(m, &(struct bad_case){"bad magic", RLY_CTR_DROP_WIRE, RLY_WIRE_ERR_BAD_MAGIC});

	{
		/* 1500 bytes of UDP payload, past the 1472 a 1500-byte MTU allows. */
		struct h_msg big = {.chain = 1, .seq = 1, .payload_len = 1500 - 8 - 96, .fill = 1};
		uint8_t bigbuf[2048];
		memcpy(big.key, k, 16);
		m = h_frame(&H, 9, 6000, bigbuf, h_build_data(bigbuf, &big, 1));
		expect_dropped(m, &(struct bad_case){"oversized datagram", RLY_CTR_DROP_WIRE,
						     RLY_WIRE_ERR_OVERSIZED});
	}

	{
		struct rte_mbuf *tail = rte_pktmbuf_alloc(H.pool);
		m = h_frame(&H, 9, 6000, buf, len);
		cr_assert(rte_pktmbuf_append(tail, 10));
		cr_assert(rte_pktmbuf_chain(m, tail) == 0);
		expect_dropped(m, &(struct bad_case){"two-segment frame", RLY_CTR_DROP_MULTISEG, -1});
	}

	{
		struct rly_wire_challenge ch = {0};
		uint8_t cbuf[128];
		rly_be64_store(&ch.issued_ms, 1);
		int n = rly_wire_build_control(cbuf, sizeof(cbuf), RLY_MSG_CHALLENGE, &ch);
		m = h_frame(&H, 9, 6000, cbuf, (uint16_t)n);
		expect_dropped(m, &(struct bad_case){"CHALLENGE sent to the relay",
						     RLY_CTR_DROP_WRONG_WAY, -1});
	}

	cr_assert_eq(h_ctr(&H, RLY_CTR_DELIVERIES), 0, "nothing malformed was delivered");
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 0);
	cr_assert_eq(h_mbufs_in_use(&H), base, "every dropped frame went back to the pool");
	h_teardown(&H);
}

Test(worker, accepts_udp_without_checksum_and_ipv4_options)
{
	uint8_t buf[2048], k[16];
	struct rly_endpoint e1 = h_ep(1, 5001);
	struct rte_mbuf *m, *out[4];
	struct h_out o;
	uint16_t len;

	h_setup(&H, 1, 0, 1500);
	h_key(k, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e1), RLY_CMD_OK);
	len = one_msg(buf, 1, 1);

	m = h_frame(&H, 9, 6000, buf, len);
	udp_of(m)->dgram_cksum = 0;
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 1, "UDP checksum 0 means none");
	h_decode(out[0], &o);
	rte_pktmbuf_free(out[0]);

	/* A 24-byte IPv4 header (one NOP option word): delivered, as a copy. (Seq 2: the relay
	 * drops a publisher's duplicates.) */
	len = one_msg(buf, 1, 2);
	{
		uint8_t frame[2048];
		struct rte_mbuf *in = h_frame(&H, 9, 6000, buf, len);
		uint16_t flen = rte_pktmbuf_data_len(in);
		struct rte_ipv4_hdr *ip;
		struct rte_udp_hdr *udp;

		memcpy(frame, rte_pktmbuf_mtod(in, void *), RLY_L2_LEN + RLY_L3_LEN);
		memset(frame + RLY_L2_LEN + RLY_L3_LEN, 1, 4); /* NOP options */
		memcpy(frame + RLY_L2_LEN + RLY_L3_LEN + 4,
		       rte_pktmbuf_mtod_offset(in, void *, RLY_L2_LEN + RLY_L3_LEN),
		       flen - RLY_L2_LEN - RLY_L3_LEN);
		ip = (struct rte_ipv4_hdr *)(frame + RLY_L2_LEN);
		ip->version_ihl = 0x46;
		ip->total_length = htons(ntohs(ip->total_length) + 4);
		ip->hdr_checksum = 0;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		udp = (struct rte_udp_hdr *)(frame + RLY_L2_LEN + 24);
		udp->dgram_cksum = 0;
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
		rte_pktmbuf_reset(in);
		memcpy(rte_pktmbuf_append(in, flen + 4), frame, flen + 4);
		h_inject(&H, 0, &in, 1);
		h_run(&H, 10);
		cr_assert_eq(h_collect(&H, 0, out, 4), 1, "IPv4 options are allowed");
		cr_assert_neq(out[0], in, "a frame with options is copied, not reused");
		h_decode(out[0], &o);
		rte_pktmbuf_free(out[0]);
	}
	cr_assert_eq(h_ctr(&H, RLY_CTR_DELIVERIES), 2);
	h_teardown(&H);
}

static struct rte_mbuf *arp_frame(struct harness *h, uint16_t op, const char *target)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(h->pool);
	struct rte_ether_hdr *eth =
	    (struct rte_ether_hdr *)rte_pktmbuf_append(m, RLY_L2_LEN + sizeof(struct rte_arp_hdr));
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);

	memset(eth, 0xff, sizeof(eth->dst_addr));
	memcpy(&eth->src_addr, (uint8_t[]){2, 0, 0, 0, 0, 9}, 6);
	eth->ether_type = htons(RTE_ETHER_TYPE_ARP);
	arp->arp_hardware = htons(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = htons(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = 6;
	arp->arp_plen = 4;
	arp->arp_opcode = htons(op);
	arp->arp_data.arp_sha = eth->src_addr;
	arp->arp_data.arp_sip = htonl(0x0a000009);
	memset(&arp->arp_data.arp_tha, 0, 6);
	inet_pton(AF_INET, target, &arp->arp_data.arp_tip);
	return m;
}

Test(worker, answers_arp_for_its_own_address_only)
{
	struct rte_mbuf *m, *out[4];
	struct rte_ether_hdr *eth;
	struct rte_arp_hdr *arp;

	h_setup(&H, 1, 1, 1500);
	m = arp_frame(&H, RTE_ARP_OP_REQUEST, H_RELAY_IP);
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 1);
	eth = rte_pktmbuf_mtod(out[0], struct rte_ether_hdr *);
	arp = (struct rte_arp_hdr *)(eth + 1);
	cr_assert(rte_is_same_ether_addr(&eth->src_addr, &H.relay_mac));
	cr_assert_eq(eth->dst_addr.addr_bytes[5], 9, "reply goes to the asker");
	cr_assert_eq(arp->arp_opcode, htons(RTE_ARP_OP_REPLY));
	cr_assert(rte_is_same_ether_addr(&arp->arp_data.arp_sha, &H.relay_mac));
	cr_assert_eq(arp->arp_data.arp_sip, H.cfg.ip_be);
	cr_assert_eq(arp->arp_data.arp_tip, htonl(0x0a000009));
	cr_assert_eq(arp->arp_data.arp_tha.addr_bytes[5], 9);
	rte_pktmbuf_free(out[0]);

	m = arp_frame(&H, RTE_ARP_OP_REQUEST, "198.18.0.77");
	h_inject(&H, 0, &m, 1);
	m = arp_frame(&H, RTE_ARP_OP_REPLY, H_RELAY_IP);
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_ARP_REPLIES), 1);
	/* The request for another address is dropped; the reply to us tells relay-control where
	 * its sender is, like the request for us did (see the neighbour test below). */
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_ARP), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_NEIGH_LEARNT), 2);
	h_teardown(&H);
}

Test(worker, punts_control_datagrams_with_their_source_and_counts_a_full_ring)
{
	struct rly_wire_subscribe sub = {0};
	struct rly_pkt_rec rec;
	uint8_t cbuf[256];
	struct rte_mbuf *m;
	int n;
	unsigned base;

	h_setup(&H, 1, 1, 1500);
	base = h_mbufs_in_use(&H);
	h_key(sub.stream_key, 3);
	rly_be32_store(&sub.lease_ms, 5000);
	rly_be64_store(&sub.request_id, 77);
	n = rly_wire_build_control(cbuf, sizeof(cbuf), RLY_MSG_SUBSCRIBE, &sub);
	cr_assert_gt(n, 0);
	m = h_frame(&H, 42, 40001, cbuf, (uint16_t)n);
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 1);
	cr_assert_eq(rte_ring_sc_dequeue_elem(rly_shm_punt_ring(&H.shm, 0), &rec, sizeof(rec)), 0);
	cr_assert_eq(rec.ip_be, htonl(0x0a00002a));
	cr_assert_eq(rec.udp_port_be, htons(40001));
	cr_assert_eq(rec.mac[5], 42);
	cr_assert_eq(rec.port_id, 0);
	cr_assert_eq(rec.worker, 0);
	cr_assert_eq(rec.len, n);
	cr_assert_eq(memcmp(rec.data, cbuf, (size_t)n), 0);

	/* 256-slot ring holds 255: nobody drains it, so the rest are dropped and counted.
	 * Heartbeats from a subscriber: anything else would stop at half the ring (next test). */
	{
		struct rly_wire_sub_ref hb = {0};
		struct rly_endpoint e = h_ep(42, 40001);
		h_key(hb.stream_key, 3);
		cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, hb.stream_key, 0, &e), RLY_CMD_OK);
		n = rly_wire_build_control(cbuf, sizeof(cbuf), RLY_MSG_HEARTBEAT, &hb);
		cr_assert_gt(n, 0);
	}
	for (unsigned i = 0; i < 300; i++) {
		m = h_frame(&H, 42, 40001, cbuf, (uint16_t)n);
		h_inject(&H, 0, &m, 1);
		if (i % 32 == 31)
			h_run(&H, 10);
	}
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 1 + 255);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_FULL), 300 - 255);
	cr_assert_eq(h_mbufs_in_use(&H), base, "punted frames are copied and freed");
	h_teardown(&H);
}

Test(worker, subscribes_fill_only_half_the_punt_ring_so_subscribers_heartbeats_find_room)
{
	struct rly_wire_subscribe sub = {0};
	struct rly_wire_sub_ref hb = {0};
	struct rly_endpoint others[3] = {h_ep(249, 41000), h_ep(251, 41000), h_ep(250, 40999)};
	struct rly_endpoint e = h_ep(250, 41000);
	uint8_t sbuf[256], hbuf[256];
	struct rte_mbuf *m;
	int ns, nh;

	h_setup(&H, 1, 1, 1500);
	h_key(sub.stream_key, 3);
	h_key(hb.stream_key, 3);
	/* 10.0.0.250:41000 subscribes, among neighbours that sort either side of it. */
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, hb.stream_key, 0, &others[0]), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, hb.stream_key, 0, &e), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, hb.stream_key, 0, &others[2]), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, hb.stream_key, 1, &others[1]), RLY_CMD_OK);
	rly_be32_store(&sub.lease_ms, 5000);
	ns = rly_wire_build_control(sbuf, sizeof(sbuf), RLY_MSG_SUBSCRIBE, &sub);
	nh = rly_wire_build_control(hbuf, sizeof(hbuf), RLY_MSG_HEARTBEAT, &hb);
	cr_assert_gt(ns, 0);
	cr_assert_gt(nh, 0);
	/* A flood of SUBSCRIBEs from 200 addresses (one each: the per-source limit never bites),
	 * and nobody drains the ring: they stop at half of its 255 places. */
	for (unsigned i = 0; i < 200; i++) {
		m = h_frame(&H, (uint8_t)(i + 1), (uint16_t)(40000 + i), sbuf, (uint16_t)ns);
		h_inject(&H, 0, &m, 1);
		if (i % 32 == 31)
			h_run(&H, 10);
	}
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 127);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_OPEN), 200 - 127);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_FULL), 0);
	/* Heartbeats for that stream from addresses that are not its subscribers (another port,
	 * another partition's subscriber, a stranger) are treated like SUBSCRIBEs. */
	{
		const unsigned src[3] = {250, 251, 7};
		const uint16_t sport[3] = {41001, 41000, 41000};
		for (unsigned i = 0; i < 3; i++) {
			m = h_frame(&H, src[i], sport[i], hbuf, (uint16_t)nh);
			h_inject(&H, 0, &m, 1);
		}
		h_run(&H, 10);
		cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 127);
		cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_OPEN), 200 - 127 + 3);
	}
	/* Heartbeats of existing subscribers still get in, up to the full ring. */
	for (unsigned i = 0; i < 130; i++) {
		m = h_frame(&H, 250, 41000, hbuf, (uint16_t)nh);
		h_inject(&H, 0, &m, 1);
		if (i % 32 == 31)
			h_run(&H, 10);
	}
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 255);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_FULL), 2);
	/* SUBSCRIBE_SIGNED counts as a SUBSCRIBE: the ring is past half, so it is refused. */
	{
		struct rly_wire_subscribe_signed ss = {0};
		uint8_t buf[512];
		int n2;
		h_key(ss.sub.stream_key, 3);
		rly_be32_store(&ss.sub.lease_ms, 5000);
		rly_be64_store(&ss.sub.issued_ms, 1); /* an answer to a challenge, from someone */
		memset(ss.sub.subscriber, 7, sizeof(ss.sub.subscriber));
		memset(ss.sub.cookie, 9, sizeof(ss.sub.cookie));
		n2 = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_SUBSCRIBE_SIGNED, &ss);
		cr_assert_gt(n2, 0);
		m = h_frame(&H, 251, 41001, buf, (uint16_t)n2);
		h_inject(&H, 0, &m, 1);
		h_run(&H, 10);
		cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_OPEN), 200 - 127 + 3 + 1);
	}
	h_teardown(&H);
}

Test(worker, sends_relay_control_replies_with_relay_headers_and_refuses_bad_records)
{
	struct rly_pkt_rec rec;
	struct rly_wire_ack ack = {0};
	struct rte_mbuf *out[4];
	struct h_out o;
	int n;

	h_setup(&H, 1, 1, 1500);
	memset(&rec, 0, sizeof(rec));
	n = rly_wire_build_control(rec.data, sizeof(rec.data), RLY_MSG_SUB_ACK, &ack);
	rec.len = (uint16_t)n;
	rec.port_id = 0;
	rec.ip_be = htonl(0x0a000005);
	rec.udp_port_be = htons(7000);
	rec.mac[0] = 2;
	rec.mac[5] = 5;
	cr_assert_eq(rte_ring_sp_enqueue_elem(rly_shm_tx_ring(&H.shm), &rec, sizeof(rec)), 0);
	rec.port_id = 3; /* no such port */
	cr_assert_eq(rte_ring_sp_enqueue_elem(rly_shm_tx_ring(&H.shm), &rec, sizeof(rec)), 0);
	rec.port_id = 0;
	rec.len = 4000; /* longer than a datagram */
	cr_assert_eq(rte_ring_sp_enqueue_elem(rly_shm_tx_ring(&H.shm), &rec, sizeof(rec)), 0);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 1);
	h_decode(out[0], &o);
	cr_assert_eq(o.dst_ip, htonl(0x0a000005));
	cr_assert_eq(o.dst_port, htons(7000));
	cr_assert_eq(o.dst_mac.addr_bytes[5], 5);
	cr_assert_eq(o.src_ip, H.cfg.ip_be);
	cr_assert_eq(o.src_port, htons(H_RELAY_PORT));
	cr_assert_eq(o.len, n);
	cr_assert_eq(memcmp(o.payload, rec.data, (size_t)n), 0);
	rte_pktmbuf_free(out[0]);
	cr_assert_eq(h_ctr(&H, RLY_CTR_CTL_TX), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_CTL_TX_BAD), 2);
	h_teardown(&H);
}

Test(worker, full_tx_queue_drops_and_counts_without_leaking)
{
	uint8_t buf[2048], k[16];
	struct rly_endpoint e1 = h_ep(1, 5001);
	struct rte_mbuf *burst[32], *out[64];
	unsigned base, got;

	h_tx_ring_slots = 64; /* the port's tx queue takes 63 frames, then refuses */
	h_setup(&H, 1, 0, 1500);
	h_key(k, 1);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &e1), RLY_CMD_OK);
	base = h_mbufs_in_use(&H);
	for (unsigned b = 0; b < 4; b++) {
		for (unsigned i = 0; i < 32; i++) {
			struct h_msg m = {.chain = 1, .seq = b * 32 + i + 1, .payload_len = 8};
			memcpy(m.key, k, 16);
			burst[i] = h_frame(&H, 9, 6000, buf, h_build_data(buf, &m, 1));
		}
		h_inject(&H, 0, burst, 32);
		h_run(&H, 10);
	}
	got = h_collect(&H, 0, out, 64);
	cr_assert_eq(got, 63);
	cr_assert_eq(h_ctr(&H, RLY_CTR_TX_PKTS), 63);
	cr_assert_eq(h_ctr(&H, RLY_CTR_TX_DROP), 128 - 63);
	rte_pktmbuf_free_bulk(out, got);
	cr_assert_eq(h_mbufs_in_use(&H), base, "refused frames were freed");
	h_teardown(&H);
}

Test(worker, punts_key_requests_and_key_responses_whole_to_relay_control)
{
	static const unsigned types[] = {RLY_MSG_KEY_REQUEST, RLY_MSG_KEY_RESPONSE};
	struct rly_pkt_rec rec;
	unsigned base;

	h_setup(&H, 1, 1, 1500);
	base = h_mbufs_in_use(&H);
	for (unsigned i = 0; i < 2; i++) {
		uint8_t body[256], cbuf[512];
		struct rte_mbuf *m;
		int n;

		memset(body, 0, sizeof(body));
		if (types[i] == RLY_MSG_KEY_REQUEST) {
			struct rly_wire_key_request *q = (void *)body;
			rly_be64_store(&q->request_id, 9);
			memset(q->publisher, 1, RLY_ID_LEN);
			memset(q->requester, 2, RLY_ID_LEN);
		} else {
			struct rly_wire_key_response *r = (void *)body;
			rly_be16_store(&r->status, RLY_SUB_DENIED);
			rly_be64_store(&r->request_id, 9);
			memset(r->publisher, 1, RLY_ID_LEN);
			memset(r->requester, 2, RLY_ID_LEN);
		}
		n = rly_wire_build_control(cbuf, sizeof(cbuf), types[i], body);
		cr_assert_eq(n, 8 + 256);
		m = h_frame(&H, 42, 40001, cbuf, (uint16_t)n);
		h_inject(&H, 0, &m, 1);
		h_run(&H, 10);
		cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), i + 1, "%s", rly_msg_type_name(types[i]));
		cr_assert_eq(rte_ring_sc_dequeue_elem(rly_shm_punt_ring(&H.shm, 0), &rec, sizeof(rec)),
			     0);
		cr_assert_eq(rec.len, n);
		cr_assert_eq(memcmp(rec.data, cbuf, (size_t)n), 0);
	}
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_WRONG_WAY), 0);
	cr_assert_eq(h_mbufs_in_use(&H), base);
	h_teardown(&H);
}

Test(worker, a_flood_from_a_subscribers_address_on_other_ports_leaves_its_heartbeats_alone)
{
	struct rly_wire_sub_ref hb = {0};
	struct rly_endpoint e = h_ep(42, 40001);
	struct rte_mbuf *m[20];
	uint8_t hbuf[256];
	int n;

	h_punt_rate = 1; /* one per second: within this test, only the burst gets through */
	h_punt_burst = 5;
	h_setup(&H, 1, 1, 1500);
	h_key(hb.stream_key, 3);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, hb.stream_key, 0, &e), RLY_CMD_OK);
	n = rly_wire_build_control(hbuf, sizeof(hbuf), RLY_MSG_HEARTBEAT, &hb);
	cr_assert_gt(n, 0);
	/* 20 heartbeats from 10.0.0.42 on other ports: the address's bucket runs dry. */
	for (unsigned i = 0; i < 20; i++)
		m[i] = h_frame(&H, 42, (uint16_t)(50000 + i), hbuf, (uint16_t)n);
	h_inject(&H, 0, m, 20);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 5);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_RATE), 15);
	/* The subscriber's own heartbeats come from 10.0.0.42:40001: a bucket of their own. */
	for (unsigned i = 0; i < 3; i++)
		m[i] = h_frame(&H, 42, 40001, hbuf, (uint16_t)n);
	h_inject(&H, 0, m, 3);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 8);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_RATE), 15);
	h_teardown(&H);
}

Test(worker, punts_are_rate_limited_per_source_address)
{
	struct rly_wire_subscribe sub = {0};
	struct rte_mbuf *m[20];
	uint8_t cbuf[256];
	int n;

	h_punt_rate = 1; /* one per second: within this test, only the burst gets through */
	h_punt_burst = 5;
	h_setup(&H, 1, 1, 1500);
	rly_be32_store(&sub.lease_ms, 5000);
	n = rly_wire_build_control(cbuf, sizeof(cbuf), RLY_MSG_SUBSCRIBE, &sub);
	for (unsigned i = 0; i < 20; i++)
		m[i] = h_frame(&H, 42, 40001, cbuf, (uint16_t)n);
	h_inject(&H, 0, m, 20);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 5, "the burst from 10.0.0.42");
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_RATE), 15);
	/* Another source has a bucket of its own. */
	for (unsigned i = 0; i < 20; i++)
		m[i] = h_frame(&H, 43, 40001, cbuf, (uint16_t)n);
	h_inject(&H, 0, m, 20);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_RATE), 30);
	h_teardown(&H);
}

/* ---- peer relays: neighbour discovery, overlay control ---- */

Test(worker, arp_for_us_tells_relay_control_the_senders_mac_within_its_punt_rate)
{
	struct rly_pkt_rec rec[4];
	unsigned fl[4], base;
	struct rte_mbuf *m, *out[4];

	h_punt_rate = 1; /* and a burst of 2: the third ARP from 10.0.0.9 is over its rate */
	h_punt_burst = 2;
	h_setup(&H, 1, 1, 1500);
	base = h_mbufs_in_use(&H);
	m = arp_frame(&H, RTE_ARP_OP_REPLY, H_RELAY_IP);
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 0, "a reply is not answered");
	cr_assert_eq(h_punts(&H, 0, rec, 4, fl), 1);
	cr_assert_eq(fl[0], 1);
	cr_assert_eq(rec[0].flags, RLY_PKT_F_NEIGH);
	cr_assert_eq(rec[0].len, 0);
	cr_assert_eq(rec[0].ip_be, htonl(0x0a000009));
	cr_assert_eq(rec[0].mac[0], 2);
	cr_assert_eq(rec[0].mac[5], 9);
	cr_assert_eq(rec[0].port_id, 0);
	cr_assert_eq(rec[0].worker, 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_NEIGH_LEARNT), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 0, "a neighbour is not a control datagram");
	cr_assert_eq(h_mbufs_in_use(&H), base, "the reply frame is freed");

	/* A request for us: answered, and its sender learnt too. */
	m = arp_frame(&H, RTE_ARP_OP_REQUEST, H_RELAY_IP);
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 1);
	rte_pktmbuf_free(out[0]);
	cr_assert_eq(h_punts(&H, 0, rec, 4, fl), 1);
	cr_assert_eq(fl[0], 1);
	cr_assert_eq(rec[0].ip_be, htonl(0x0a000009), "the asker, read before the frame became the reply");
	cr_assert_eq(rec[0].mac[5], 9);

	/* The same source again: over its rate, dropped and counted; the answer still goes out. */
	m = arp_frame(&H, RTE_ARP_OP_REPLY, H_RELAY_IP);
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_punts(&H, 0, rec, 4, NULL), 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_RATE), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_NEIGH_LEARNT), 2);

	/* An address probe (sender 0.0.0.0) teaches nothing. */
	h_advance_ms(&H, 10000);
	m = arp_frame(&H, RTE_ARP_OP_REQUEST, H_RELAY_IP);
	(rte_pktmbuf_mtod_offset(m, struct rte_arp_hdr *, RLY_L2_LEN))->arp_data.arp_sip = 0;
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 1);
	rte_pktmbuf_free(out[0]);
	cr_assert_eq(h_punts(&H, 0, rec, 4, NULL), 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_NEIGH_LEARNT), 2);
	h_teardown(&H);
}

Test(worker, an_arp_resolve_record_sends_a_broadcast_arp_request_from_the_relay)
{
	struct rly_pkt_rec rec;
	struct rte_mbuf *out[4];
	struct rte_ether_hdr *eth;
	struct rte_arp_hdr *arp;

	h_setup(&H, 1, 1, 1500);
	memset(&rec, 0, sizeof(rec));
	rec.flags = RLY_PKT_F_ARP_RESOLVE;
	rec.port_id = 0;
	rec.ip_be = htonl(0x0a00004d);
	cr_assert_eq(rte_ring_sp_enqueue_elem(rly_shm_tx_ring(&H.shm), &rec, sizeof(rec)), 0);
	rec.port_id = 5; /* no such port */
	cr_assert_eq(rte_ring_sp_enqueue_elem(rly_shm_tx_ring(&H.shm), &rec, sizeof(rec)), 0);
	rec.port_id = 0;
	rec.flags = 0x0040; /* a flag this dataplane does not know */
	rec.len = 16;
	cr_assert_eq(rte_ring_sp_enqueue_elem(rly_shm_tx_ring(&H.shm), &rec, sizeof(rec)), 0);
	h_run(&H, 10);
	cr_assert_eq(h_collect(&H, 0, out, 4), 1);
	cr_assert_geq(rte_pktmbuf_data_len(out[0]), 60, "padded to the shortest Ethernet frame");
	eth = rte_pktmbuf_mtod(out[0], struct rte_ether_hdr *);
	arp = (struct rte_arp_hdr *)(eth + 1);
	cr_assert(rte_is_broadcast_ether_addr(&eth->dst_addr));
	cr_assert(rte_is_same_ether_addr(&eth->src_addr, &H.relay_mac));
	cr_assert_eq(eth->ether_type, htons(RTE_ETHER_TYPE_ARP));
	cr_assert_eq(arp->arp_hardware, htons(RTE_ARP_HRD_ETHER));
	cr_assert_eq(arp->arp_protocol, htons(RTE_ETHER_TYPE_IPV4));
	cr_assert_eq(arp->arp_hlen, 6);
	cr_assert_eq(arp->arp_plen, 4);
	cr_assert_eq(arp->arp_opcode, htons(RTE_ARP_OP_REQUEST));
	cr_assert(rte_is_same_ether_addr(&arp->arp_data.arp_sha, &H.relay_mac));
	cr_assert_eq(arp->arp_data.arp_sip, H.cfg.ip_be);
	cr_assert(rte_is_zero_ether_addr(&arp->arp_data.arp_tha));
	cr_assert_eq(arp->arp_data.arp_tip, htonl(0x0a00004d));
	rte_pktmbuf_free(out[0]);
	cr_assert_eq(h_ctr(&H, RLY_CTR_ARP_REQUESTS), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_CTL_TX), 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_CTL_TX_BAD), 2);
	h_teardown(&H);
}

static int peer_link(uint8_t *buf, unsigned type, unsigned stream)
{
	struct rly_wire_peer_link l;

	memset(&l, 0, sizeof(l));
	h_key(l.stream_key, stream);
	l.kind = type == RLY_MSG_PEER_JOIN ? RLY_LINK_JOIN : RLY_LINK_PRUNE;
	rly_be64_store(&l.request_id, 5);
	memset(l.token, 0x11, sizeof(l.token));
	return rly_wire_build_control(buf, 256, type, &l);
}

Test(worker, overlay_messages_from_a_peer_endpoint_of_their_stream_use_the_punt_reserve)
{
	struct rly_wire_subscribe sub = {0};
	struct rly_wire_peer_hello hello;
	struct rly_endpoint peer = h_ep(20, 4747), stranger = h_ep(21, 4747), s1 = h_ep(22, 4747);
	uint8_t sbuf[256], jbuf[256], pbuf[256], hbuf[512], ibuf[512];
	struct rly_wire_peer_ihave ih;
	struct rly_pkt_rec rec[256];
	struct rte_mbuf *m;
	int ns, nj, np, nh, ni;
	unsigned n;

	h_setup(&H, 1, 1, 1500);
	peer.flags = RLY_EP_F_PEER;
	h_key(sub.stream_key, 4);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, sub.stream_key, 0, &peer), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, sub.stream_key, 0, &s1), RLY_CMD_OK);
	rly_be32_store(&sub.lease_ms, 5000);
	ns = rly_wire_build_control(sbuf, sizeof(sbuf), RLY_MSG_SUBSCRIBE, &sub);
	nj = peer_link(jbuf, RLY_MSG_PEER_JOIN, 4);
	np = peer_link(pbuf, RLY_MSG_PEER_PRUNE, 4);
	memset(&hello, 0, sizeof(hello));
	hello.kind = RLY_PEER_HELLO;
	rly_be64_store(&hello.request_id, 9);
	memset(hello.sender, 0x22, sizeof(hello.sender));
	nh = rly_wire_build_control(hbuf, sizeof(hbuf), RLY_MSG_PEER_HELLO, &hello);
	memset(&ih, 0, sizeof(ih));
	h_key(ih.stream_key, 4);
	memset(ih.token, 0x11, sizeof(ih.token));
	ni = rly_wire_build_control(ibuf, sizeof(ibuf), RLY_MSG_PEER_IHAVE, &ih);
	cr_assert(ns > 0 && nj > 0 && np > 0 && nh > 0 && ni > 0);

	/* Every PEER_* type reaches relay-control while the ring has room. */
	m = h_frame(&H, 21, 4747, hbuf, (uint16_t)nh);
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 1);
	cr_assert_eq(h_punts(&H, 0, rec, 1, NULL), 1);
	cr_assert_eq(rec[0].data[3], RLY_MSG_PEER_HELLO);
	cr_assert_eq(rec[0].flags, 0);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_WRONG_WAY), 0);

	/* Fill the open half with SUBSCRIBEs from many addresses. */
	for (unsigned i = 0; i < 140; i++) {
		m = h_frame(&H, 100 + i, 40000, sbuf, (uint16_t)ns);
		h_inject(&H, 0, &m, 1);
		if (i % 32 == 31)
			h_run(&H, 10);
	}
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 1 + 127);
	n = (unsigned)h_ctr(&H, RLY_CTR_DROP_PUNT_OPEN);

	/* Past half: the link's peer gets in; a stranger, a subscriber that is no peer, and a
	 * HELLO (no stream: not a link's traffic) do not. */
	m = h_frame(&H, 20, 4747, jbuf, (uint16_t)nj);
	h_inject(&H, 0, &m, 1);
	m = h_frame(&H, 20, 4747, pbuf, (uint16_t)np);
	h_inject(&H, 0, &m, 1);
	m = h_frame(&H, 20, 4747, ibuf, (uint16_t)ni);
	h_inject(&H, 0, &m, 1);
	m = h_frame(&H, 21, 4747, jbuf, (uint16_t)nj);
	h_inject(&H, 0, &m, 1);
	m = h_frame(&H, 22, 4747, jbuf, (uint16_t)nj);
	h_inject(&H, 0, &m, 1);
	m = h_frame(&H, 20, 4747, hbuf, (uint16_t)nh);
	h_inject(&H, 0, &m, 1);
	m = h_frame(&H, 20, 4748, jbuf, (uint16_t)nj); /* the peer's address, another port */
	h_inject(&H, 0, &m, 1);
	h_run(&H, 10);
	cr_assert_eq(h_ctr(&H, RLY_CTR_PUNTED), 1 + 127 + 3);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_PUNT_OPEN), n + 4);
	cr_assert_eq(h_punts(&H, 0, rec, 256, NULL), 127 + 3);
	cr_assert_eq(rec[127].data[3], RLY_MSG_PEER_JOIN);
	cr_assert_eq(rec[128].data[3], RLY_MSG_PEER_PRUNE);
	cr_assert_eq(rec[129].data[3], RLY_MSG_PEER_IHAVE);
	cr_assert_eq(rec[129].ip_be, peer.ip_be);
	(void)stranger;
	h_teardown(&H);
}
