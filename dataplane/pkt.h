/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ethernet/IPv4/UDP framing for the hot path.
 *
 * Every frame the relay sends starts with the same 42 bytes except destination MAC, destination
 * address and port, and the lengths. So each port keeps a template, and the checksums of the
 * constant parts are summed once at start-up; per frame only the varying words are added
 * (ones'-complement sums commute). The payload's sum is computed once per output datagram and
 * reused for every subscriber that gets the same bytes, so a fan-out to F subscribers reads the
 * payload once, not F times.
 *
 * All sums here are "raw": 32-bit accumulations of 16-bit words in memory order, as
 * rte_raw_cksum produces them; folding and complementing happen only when a field is written.
 */
#ifndef RLY_DATAPLANE_PKT_H
#define RLY_DATAPLANE_PKT_H

#include <stdint.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "relay/shm.h"

#define RLY_L2_LEN ((uint16_t)sizeof(struct rte_ether_hdr))
#define RLY_L3_LEN ((uint16_t)sizeof(struct rte_ipv4_hdr))
#define RLY_L4_LEN ((uint16_t)sizeof(struct rte_udp_hdr))
/** Bytes before the UDP payload in every frame the relay sends. */
#define RLY_HDRS_LEN (RLY_L2_LEN + RLY_L3_LEN + RLY_L4_LEN)

/** Per-port frame template and the raw sums of its constant words. */
struct rly_hdr_tmpl {
	uint8_t bytes[RLY_HDRS_LEN];
	uint32_t ip_sum;  /* IPv4 header with total_length, dst_addr and checksum zero */
	uint32_t udp_sum; /* pseudo-header src + protocol, UDP src port */
};

static inline uint16_t rly_sum_fold(uint32_t sum)
{
	sum = (sum >> 16) + (sum & 0xffff);
	sum = (sum >> 16) + (sum & 0xffff);
	return (uint16_t)sum;
}

static inline uint32_t rly_sum_u32(uint32_t v)
{
	return (v >> 16) + (v & 0xffff);
}

/** Fill @p t for a port with MAC @p mac, sending from @p ip_be : @p udp_port_be. */
static inline void rly_hdr_tmpl_init(struct rly_hdr_tmpl *t, const struct rte_ether_addr *mac,
				     uint32_t ip_be, uint16_t udp_port_be)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)t->bytes;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

	memset(t, 0, sizeof(*t));
	rte_ether_addr_copy(mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = ip_be;
	udp->src_port = udp_port_be;
	t->ip_sum = __rte_raw_cksum(ip, sizeof(*ip), 0);
	t->udp_sum = rly_sum_u32(ip_be) + rte_cpu_to_be_16(IPPROTO_UDP) + udp_port_be;
}

/**
 * Write the 42 header bytes at @p frame for a UDP payload of @p len bytes whose raw sum is
 * @p payload_sum, addressed to @p ep.
 */
static inline void rly_hdr_write(uint8_t *frame, const struct rly_hdr_tmpl *t,
				 const struct rly_endpoint *ep, uint16_t len, uint32_t payload_sum)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint16_t ip_len = rte_cpu_to_be_16((uint16_t)(len + RLY_L3_LEN + RLY_L4_LEN));
	uint16_t udp_len = rte_cpu_to_be_16((uint16_t)(len + RLY_L4_LEN));
	uint32_t dst_sum = rly_sum_u32(ep->ip_be);
	uint16_t csum;

	memcpy(frame, t->bytes, RLY_HDRS_LEN);
	memcpy(&eth->dst_addr, ep->mac, RTE_ETHER_ADDR_LEN);
	ip->total_length = ip_len;
	ip->dst_addr = ep->ip_be;
	ip->hdr_checksum = (uint16_t)~rly_sum_fold(t->ip_sum + ip_len + dst_sum);
	udp->dst_port = ep->udp_port_be;
	udp->dgram_len = udp_len;
	/* udp_len twice: once in the pseudo-header, once in the UDP header itself. */
	csum = (uint16_t)~rly_sum_fold(t->udp_sum + dst_sum + ep->udp_port_be + 2u * udp_len +
				       rly_sum_fold(payload_sum));
	udp->dgram_cksum = csum == 0 ? 0xffff : csum;
}

/** 1 if the IPv4 header checksum of @p ip (@p hlen bytes) is right. */
static inline int rly_ipv4_csum_ok(const struct rte_ipv4_hdr *ip, unsigned hlen)
{
	return rly_sum_fold(__rte_raw_cksum(ip, hlen, 0)) == 0xffff;
}

/** 1 if the UDP checksum is absent (0) or right, for @p udp_len bytes of UDP header + payload. */
static inline int rly_udp_csum_ok(const struct rte_ipv4_hdr *ip, const struct rte_udp_hdr *udp,
				  uint16_t udp_len)
{
	uint32_t sum;

	if (udp->dgram_cksum == 0)
		return 1;
	sum = rly_sum_u32(ip->src_addr) + rly_sum_u32(ip->dst_addr) +
	      rte_cpu_to_be_16(IPPROTO_UDP) + rte_cpu_to_be_16(udp_len);
	sum = __rte_raw_cksum(udp, udp_len, sum);
	return rly_sum_fold(sum) == 0xffff;
}

#endif
