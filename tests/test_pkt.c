/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The checksum arithmetic the fan-out relies on: rly_sum_bytes agrees with DPDK's rte_raw_cksum
 * on every length and alignment; sums of pieces combine into the sum of the whole (with the byte
 * swap for odd offsets); and frames written from a template carry the checksums DPDK computes.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/pkt.h"

static uint16_t canon(uint16_t v)
{
	return v == 0xffff ? 0 : v; /* 0 and 0xffff are the same ones'-complement number */
}

Test(pkt, sum_bytes_agrees_with_rte_raw_cksum_on_every_length_and_alignment)
{
	static uint8_t buf[2100];

	srand(3);
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rand();
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 2048; len++)
			cr_assert_eq(canon(rly_sum_bytes(buf + off, len)),
				     canon(rte_raw_cksum(buf + off, len)), "len %zu offset %zu", len, off);
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(canon(rly_sum_bytes(buf, 2048)), canon(rte_raw_cksum(buf, 2048)),
		     "all-ones input carries on every add");
}

Test(pkt, sums_of_pieces_combine_into_the_sum_of_the_whole)
{
	uint8_t buf[1500];

	srand(5);
	for (unsigned round = 0; round < 2000; round++) {
		size_t len = 1 + (size_t)rand() % 1400, cut = (size_t)rand() % len;
		uint16_t whole, a, b;
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand();
		whole = rly_sum_bytes(buf, len);
		a = rly_sum_bytes(buf, cut);
		b = rly_sum_bytes(buf + cut, len - cut);
		cr_assert_eq(canon(rly_sum_fold((uint32_t)a + rly_sum_at(b, cut & 1))), canon(whole),
			     "len %zu cut %zu", len, cut);
		cr_assert_eq(canon(rly_sum_sub(whole, a)), canon(rly_sum_at(b, cut & 1)),
			     "subtracting the first piece leaves the second");
	}
}

Test(pkt, template_frames_carry_the_checksums_dpdk_computes)
{
	struct rly_hdr_tmpl t;
	struct rte_ether_addr mac = {{2, 0, 0, 0, 0, 1}};
	uint8_t frame[1600];

	rly_hdr_tmpl_init(&t, &mac, htonl(0xc6120001), htons(4747));
	srand(9);
	for (unsigned round = 0; round < 1000; round++) {
		struct rly_endpoint ep = {.ip_be = (uint32_t)rand(), .udp_port_be = (uint16_t)rand()};
		uint16_t len = (uint16_t)(rand() % 1400);
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + RLY_L2_LEN);
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
		uint16_t ip_ck, udp_ck;

		for (unsigned i = 0; i < len; i++)
			frame[RLY_HDRS_LEN + i] = (uint8_t)rand();
		rly_hdr_write(frame, &t, &ep, len, rly_sum_bytes(frame + RLY_HDRS_LEN, len));
		ip_ck = ip->hdr_checksum;
		udp_ck = udp->dgram_cksum;
		cr_assert_eq(ntohs(ip->total_length), len + 28);
		cr_assert_eq(ntohs(udp->dgram_len), len + 8);
		cr_assert_eq(ip->dst_addr, ep.ip_be);
		cr_assert_eq(udp->dst_port, ep.udp_port_be);
		ip->hdr_checksum = 0;
		cr_assert_eq(ip_ck, rte_ipv4_cksum(ip), "IP checksum, round %u", round);
		ip->hdr_checksum = ip_ck;
		udp->dgram_cksum = 0;
		cr_assert_eq(udp_ck, rte_ipv4_udptcp_cksum(ip, udp), "UDP checksum, round %u", round);
		udp->dgram_cksum = udp_ck;
		cr_assert(rly_udp_csum_ok(ip, udp, (uint16_t)(len + 8),
					  rly_sum_bytes(frame + RLY_HDRS_LEN, len)),
			  "the receive-side check accepts what the send side wrote");
		udp->dgram_cksum ^= 0x10;
		cr_assert_not(rly_udp_csum_ok(ip, udp, (uint16_t)(len + 8),
					      rly_sum_bytes(frame + RLY_HDRS_LEN, len)));
		cr_assert(rly_ipv4_csum_ok(ip, 20));
	}
}
