/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rly-gen: traffic generator and sink for the fan-out and flood benches, one DPDK process on one
 * lcore that both sends and drains (a second busy-polling process would starve on a 2-vCPU
 * machine).
 *
 *   rly-gen <EAL: one memif server port> -- --mode relay|reflect [options]
 *
 * relay mode: resolves the relay's MAC with ARP, subscribes --subs endpoints (distinct addresses
 * 10.200.x.y, so relay-control's per-source rate limit does not serialise them) through the real
 * SUBSCRIBE / CHALLENGE / SUB_ACK handshake, then publishes one stream and counts what comes back.
 * reflect mode: the peer is dpdk-testpmd in io mode, which returns every frame unchanged; this is
 * the reference ceiling for the same memif link and the same generator.
 *
 * Latency: each message carries the generator's clock (TSC converted to ns since the epoch); on
 * receipt, per delivery and per message when its last subscriber got it ("fan-out latency").
 * At --rate 0 (as fast as the link takes) only counts are taken: latency under overload is
 * queueing.
 *
 * Control-plane flood (--flood, --flood-schedule): the same lcore also sends bad control datagrams
 * on the same link, interleaved with the data, from spoofed sources in 198.18.128.0/17 and every
 * UDP port. The generator never needs to answer ARP for those addresses: the relay addresses its
 * replies (CHALLENGE, SUB_ACK) to the MAC the request came from, so they come back on this link,
 * where they are counted by type and never taken for deliveries. With --flood-schedule the run is a
 * sequence of measured windows, flood off and on by turns, so each flood setting is compared with
 * the windows either side of it in the same process, on the same placement of the VM's vCPUs.
 * With --instance the relay's counters and relay-control's CPU time are read at each window's
 * edges, so every figure and every drop counter covers exactly the same interval.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "common/err.h"
#include "common/histogram.h"
#include "common/shm.h"
#include "relay/counters.h"
#include "relay/wire.h"

#define BURST 32u
#define MAX_SUBS 4096u
#define TRACK (1u << 16)
#define SUB_PORT 20000u
#define PUB_PORT 30000u
/* Spoofed flood sources: 198.18.128.0/17, apart from the subscribers (10.200/16) and the relay. */
#define FLOOD_SRC_BASE	0xc6128000u
#define FLOOD_SRC_MAX	32768u
#define MAX_FLOOD_ITEMS 32u
#define MAX_WINDOWS	(2 * MAX_FLOOD_ITEMS + 1)
#define GARBAGE_TMPL	32u

/* X(id, name, what it is) */
#define FOREACH_FLOOD_KIND(X)                                                                      \
	X(GARBAGE, "garbage",                                                                      \
	  "random bytes and malformed relay headers: the relay's parser refuses")                  \
	X(SUBSCRIBE, "subscribe",                                                                  \
	  "well-formed SUBSCRIBE for the bench stream: each asks a CHALLENGE")                     \
	X(BADCOOKIE, "badcookie", "SUBSCRIBE answering a challenge with a wrong cookie")           \
	X(HEARTBEAT, "heartbeat", "HEARTBEAT for the bench stream with a wrong token")             \
	X(MIX, "mix", "the four kinds above, round-robin")                                          \
	X(NAK, "nak",                                                                               \
	  "NAKs from the first --slow-subs subscribers (their own address and port) for the last "  \
	  "--nak-span messages published: slow consumers asking for repair")

enum flood_kind {
#define X(id, name, desc) FLOOD_##id,
	FOREACH_FLOOD_KIND(X)
#undef X
	    FLOOD_KINDS
};

static const char *const flood_kind_name[] = {
#define X(id, name, desc) name,
    FOREACH_FLOOD_KIND(X)
#undef X
};

struct flood_item {
	enum flood_kind kind;
	double pps;    /* 0: as fast as the generator sends (a full burst every loop turn) */
	unsigned srcs; /* spoofed source addresses; 0: --flood-srcs */
};

struct sub_ep {
	uint32_t ip_be;
	uint8_t state; /* 0 new, 1 challenged-sent, 2 subscribed */
	uint64_t request_id;
	uint64_t sent_tsc;
	uint8_t token[RLY_COOKIE_LEN];
	uint64_t hb_tsc; /* heartbeat interval the relay asked for, in TSC cycles */
	uint64_t next_hb;
};

struct track {
	uint64_t seq;
	uint32_t count;
	uint32_t reserved;
	uint64_t max_ns;
};

static struct {
	int reflect;
	uint32_t relay_ip_be, pub_ip_be;
	uint16_t relay_port;
	unsigned subs, size, per_dgram, lease_ms, sample, heartbeat_ms;
	double rate, warmup, duration, settle;
	int json, heartbeats, ab;
	const char *label, *instance;
	unsigned flood_srcs, n_items;
	unsigned slow_subs, nak_span;
	struct flood_item flood; /* --flood / --flood-kind */
	struct flood_item items[MAX_FLOOD_ITEMS];
} opt = {.relay_port = RLY_WIRE_DEFAULT_PORT,
	 .subs = 1,
	 .size = 64,
	 .per_dgram = 1,
	 .lease_ms = 120000,
	 .warmup = 2,
	 .duration = 5,
	 .settle = 0.5,
	 .label = "",
	 .sample = 16,
	 .flood_srcs = FLOOD_SRC_MAX,
	 .slow_subs = 0,
	 .nak_span = 1024,
	 .flood = {FLOOD_MIX, -1}};

static struct rte_mempool *pool;
static struct rte_ether_addr my_mac, relay_mac;
static struct sub_ep eps[MAX_SUBS];
static struct track *trk;
static uint64_t hz, tsc0, real0;
static double ns_per_tsc;
static volatile int stop;
static struct rly_shm shm;

static uint64_t now_ns(uint64_t tsc)
{
	return real0 + (uint64_t)((double)(tsc - tsc0) * ns_per_tsc);
}

static void on_signal(int s)
{
	(void)s;
	stop = 1;
}

static void usage(void)
{
	printf(
	    "Usage: rly-gen <EAL args> -- [options]\n"
	    "  --mode relay|reflect   relay: subscribe and publish through a relay; reflect: the "
	    "peer\n"
	    "                         is dpdk-testpmd io forwarding (the reference ceiling)\n"
	    "  --relay-ip A.B.C.D     relay address (default 198.18.0.1)\n"
	    "  --pub-ip A.B.C.D       publisher source address (default 198.18.0.2)\n"
	    "  --subs N               subscriber endpoints, 1..%u (default 1)\n"
	    "  --size BYTES           payload bytes per message (default 64)\n"
	    "  --per-dgram N          messages per published datagram (default 1)\n"
	    "  --rate MSGS_PER_S      publish rate; 0 = as fast as the link takes (default 0)\n"
	    "  --warmup S --duration S  seconds before and of measurement (default 2, 5)\n"
	    "  --lease-ms MS          requested lease (default 120000)\n"
	    "  --heartbeats           keep the leases alive: HEARTBEAT each endpoint as often as "
	    "its\n"
	    "                         SUB_ACK asks, and count the acks per window\n"
	    "  --heartbeat-ms MS      heartbeats every MS instead (implies --heartbeats): more "
	    "acks\n"
	    "                         to count, as a probe of the control path under a flood\n"
	    "  --sample N             latency of every Nth sequence number (default 16; power of "
	    "2):\n"
	    "                         keeps the sink's own work from becoming what is measured\n"
	    "  --label TEXT           copied into the JSON line\n"
	    "  --json                 print one JSON object per measured window, last\n"
	    "Control-plane flood (relay mode):\n"
	    "  --flood PPS|max        bad control datagrams per second, sent with the data on the "
	    "same\n"
	    "                         link from the start; max: a full burst every loop turn; 0: "
	    "off\n"
	    "  --flood-kind KIND      garbage, subscribe, badcookie, heartbeat or mix (default "
	    "mix)\n"
	    "  --ab                   with --flood: three windows, flood off / on / off\n"
	    "  --flood-schedule LIST  KIND:PPS|max[:SRCS],... : windows off, item 1, off, item 2, "
	    "...,\n"
	    "                         off (at most %u items; replaces --flood); SRCS overrides\n"
	    "                         --flood-srcs for that item\n"
	    "  --settle S             unmeasured seconds after each flood switch (default 0.5)\n"
	    "  --flood-srcs N         spoofed source addresses, 1..%u from 198.18.128.0 (default\n"
	    "                         all); source ports take every value\n"
	    "  --instance NAME        read the relay's counters (/dev/shm/relay.NAME) and\n"
	    "                         relay-control's CPU time at each window's edges\n"
	    "Slow consumers (issue 6):\n"
	    "  --slow-subs N          the first N subscriber endpoints are the slow ones: the kind\n"
	    "                         nak sends NAKs from them; every window's latency and\n"
	    "                         others_s (deliveries/s) count only the other endpoints\n"
	    "  --nak-span N           each NAK asks for the last N messages published (default 1024)\n",
	    MAX_SUBS, MAX_FLOOD_ITEMS, FLOOD_SRC_MAX);
}

static int parse_kind(const char *s, size_t len, enum flood_kind *k)
{
	for (unsigned i = 0; i < FLOOD_KINDS; i++) {
		if (strlen(flood_kind_name[i]) == len && strncmp(s, flood_kind_name[i], len) == 0) {
			*k = (enum flood_kind)i;
			return 0;
		}
	}
	return -1;
}

static int parse_pps(const char *s, double *pps)
{
	char *end;

	if (strcmp(s, "max") == 0) {
		*pps = 0;
		return 0;
	}
	*pps = strtod(s, &end);
	return *end || *pps < 0 ? -1 : 0;
}

/* "KIND:PPS,KIND:max,...": every item is checked before any is used. */
static int parse_schedule(const char *list)
{
	char buf[1024], *save = NULL, *tok;

	if (strlen(list) >= sizeof(buf))
		return -1;
	strcpy(buf, list);
	opt.n_items = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strchr(tok, ':'), *srcs;
		struct flood_item *it = &opt.items[opt.n_items];

		if (opt.n_items == MAX_FLOOD_ITEMS || colon == NULL ||
		    parse_kind(tok, (size_t)(colon - tok), &it->kind) < 0)
			return -1;
		srcs = strchr(colon + 1, ':');
		it->srcs = 0;
		if (srcs) {
			*srcs++ = 0;
			it->srcs = (unsigned)atoi(srcs);
			if (it->srcs < 1 || it->srcs > FLOOD_SRC_MAX)
				return -1;
		}
		if (parse_pps(colon + 1, &it->pps) < 0 ||
		    (it->pps == 0 && strcmp(colon + 1, "max")))
			return -1;
		opt.n_items++;
	}
	return opt.n_items ? 0 : -1;
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"mode", 1, 0, 'm'},	 {"relay-ip", 1, 0, 'r'},	{"pub-ip", 1, 0, 'p'},
	    {"subs", 1, 0, 'f'},	 {"size", 1, 0, 's'},		{"per-dgram", 1, 0, 'b'},
	    {"rate", 1, 0, 'R'},	 {"warmup", 1, 0, 'w'},		{"duration", 1, 0, 'd'},
	    {"lease-ms", 1, 0, 'l'},	 {"label", 1, 0, 'L'},		{"json", 0, 0, 'j'},
	    {"sample", 1, 0, 'S'},	 {"flood", 1, 0, 'F'},		{"flood-kind", 1, 0, 'K'},
	    {"ab", 0, 0, 'A'},		 {"flood-schedule", 1, 0, 'P'}, {"settle", 1, 0, 'T'},
	    {"flood-srcs", 1, 0, 'N'},	 {"instance", 1, 0, 'I'},	{"heartbeats", 0, 0, 'H'},
	    {"heartbeat-ms", 1, 0, 'B'}, {"slow-subs", 1, 0, 'W'},	{"nak-span", 1, 0, 'X'},
	    {"help", 0, 0, 'h'},	 {0, 0, 0, 0}};
	const char *schedule = NULL;
	int c;

	inet_pton(AF_INET, "198.18.0.1", &opt.relay_ip_be);
	inet_pton(AF_INET, "198.18.0.2", &opt.pub_ip_be);
	optind = 1;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (strcmp(optarg, "relay") && strcmp(optarg, "reflect"))
				goto bad;
			opt.reflect = strcmp(optarg, "reflect") == 0;
			break;
		case 'r':
			if (inet_pton(AF_INET, optarg, &opt.relay_ip_be) != 1)
				goto bad;
			break;
		case 'p':
			if (inet_pton(AF_INET, optarg, &opt.pub_ip_be) != 1)
				goto bad;
			break;
		case 'f':
			opt.subs = (unsigned)atoi(optarg);
			break;
		case 's':
			opt.size = (unsigned)atoi(optarg);
			break;
		case 'b':
			opt.per_dgram = (unsigned)atoi(optarg);
			break;
		case 'R':
			opt.rate = atof(optarg);
			break;
		case 'w':
			opt.warmup = atof(optarg);
			break;
		case 'd':
			opt.duration = atof(optarg);
			break;
		case 'l':
			opt.lease_ms = (unsigned)atoi(optarg);
			break;
		case 'L':
			opt.label = optarg;
			break;
		case 'S':
			opt.sample = (unsigned)atoi(optarg);
			if (opt.sample == 0 || (opt.sample & (opt.sample - 1)))
				goto bad;
			break;
		case 'j':
			opt.json = 1;
			break;
		case 'F':
			/* "0" is off; "max" parses to 0 too, so tell them apart here. */
			if (parse_pps(optarg, &opt.flood.pps) < 0)
				goto bad;
			if (opt.flood.pps == 0 && strcmp(optarg, "max"))
				opt.flood.pps = -1;
			break;
		case 'K':
			if (parse_kind(optarg, strlen(optarg), &opt.flood.kind) < 0)
				goto bad;
			break;
		case 'A':
			opt.ab = 1;
			break;
		case 'P':
			schedule = optarg;
			break;
		case 'T':
			opt.settle = atof(optarg);
			break;
		case 'N':
			opt.flood_srcs = (unsigned)atoi(optarg);
			break;
		case 'I':
			opt.instance = optarg;
			break;
		case 'H':
			opt.heartbeats = 1;
			break;
		case 'B':
			opt.heartbeats = 1;
			opt.heartbeat_ms = (unsigned)atoi(optarg);
			break;
		case 'W':
			opt.slow_subs = (unsigned)atoi(optarg);
			break;
		case 'X':
			opt.nak_span = (unsigned)atoi(optarg);
			break;
		case 'h':
			usage();
			exit(0);
		default:
			goto bad;
		}
	}
	if (opt.subs < 1 || opt.subs > MAX_SUBS || opt.size > 1300 || opt.per_dgram < 1 ||
	    8 + opt.per_dgram * (96 + opt.size) > 1472 || opt.duration <= 0 || opt.rate < 0) {
		fprintf(stderr, "rly-gen: options out of range (subs 1..%u, size <= 1300, "
				"per-dgram messages must fit 1472 bytes)\n",
			MAX_SUBS);
		return -1;
	}
	if (schedule && (opt.flood.pps >= 0 || opt.ab)) {
		fprintf(stderr, "rly-gen: --flood-schedule replaces --flood and --ab\n");
		return -1;
	}
	if (schedule && parse_schedule(schedule) < 0) {
		fprintf(stderr,
			"rly-gen: bad --flood-schedule '%s': KIND:PPS|max[:SRCS],... with at "
			"most %u items, KIND one of garbage subscribe badcookie heartbeat mix, "
			"SRCS 1..%u\n",
			schedule, MAX_FLOOD_ITEMS, FLOOD_SRC_MAX);
		return -1;
	}
	if (opt.ab && opt.flood.pps < 0) {
		fprintf(stderr, "rly-gen: --ab needs --flood\n");
		return -1;
	}
	if (opt.flood.pps >= 0 && opt.ab) {
		opt.items[0] = opt.flood;
		opt.items[0].srcs = 0;
		opt.n_items = 1;
	}
	if ((opt.n_items || opt.flood.pps >= 0) && opt.reflect) {
		fprintf(stderr, "rly-gen: a flood needs --mode relay\n");
		return -1;
	}
	if (opt.slow_subs >= opt.subs || opt.nak_span < 1) {
		fprintf(stderr, "rly-gen: --slow-subs must leave at least one other subscriber, "
				"--nak-span >= 1\n");
		return -1;
	}
	if (opt.flood_srcs < 1 || opt.flood_srcs > FLOOD_SRC_MAX || opt.settle < 0) {
		fprintf(stderr, "rly-gen: --flood-srcs is 1..%u, --settle >= 0\n", FLOOD_SRC_MAX);
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "rly-gen: bad option; see --help\n");
	return -1;
}

/* ---- frames ---- */

static void put_headers(uint8_t *frame, uint32_t src_be, uint16_t sport, uint16_t len)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

	eth->dst_addr = relay_mac;
	eth->src_addr = my_mac;
	eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = htons((uint16_t)(28 + len));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = src_be;
	ip->dst_addr = opt.relay_ip_be;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = htons(sport);
	udp->dst_port = htons(opt.relay_port);
	udp->dgram_len = htons((uint16_t)(8 + len));
	udp->dgram_cksum = 0;
}

static struct rte_mbuf *udp_frame(uint32_t src_be, uint16_t sport, const void *payload,
				  uint16_t len, uint16_t csum)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	uint8_t *frame;

	if (m == NULL)
		return NULL;
	frame = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(42 + len));
	put_headers(frame, src_be, sport, len);
	memcpy(frame + 42, payload, len);
	if (csum) {
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(frame + 14);
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	}
	return m;
}

static void send1(struct rte_mbuf *m)
{
	if (m && rte_eth_tx_burst(0, 0, &m, 1) != 1)
		rte_pktmbuf_free(m);
}

static int resolve_relay(void)
{
	uint64_t deadline = rte_rdtsc() + 10 * hz, next = 0;
	struct rte_mbuf *rx[BURST];

	while (rte_rdtsc() < deadline && !stop) {
		if (rte_rdtsc() > next) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
			struct rte_ether_hdr *eth =
			    (struct rte_ether_hdr *)rte_pktmbuf_append(m, 14 + sizeof(struct rte_arp_hdr));
			struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
			memset(&eth->dst_addr, 0xff, 6);
			eth->src_addr = my_mac;
			eth->ether_type = htons(RTE_ETHER_TYPE_ARP);
			arp->arp_hardware = htons(RTE_ARP_HRD_ETHER);
			arp->arp_protocol = htons(RTE_ETHER_TYPE_IPV4);
			arp->arp_hlen = 6;
			arp->arp_plen = 4;
			arp->arp_opcode = htons(RTE_ARP_OP_REQUEST);
			arp->arp_data.arp_sha = my_mac;
			arp->arp_data.arp_sip = opt.pub_ip_be;
			memset(&arp->arp_data.arp_tha, 0, 6);
			arp->arp_data.arp_tip = opt.relay_ip_be;
			send1(m);
			next = rte_rdtsc() + hz / 5;
		}
		uint16_t n = rte_eth_rx_burst(0, 0, rx, BURST);
		for (uint16_t i = 0; i < n; i++) {
			struct rte_ether_hdr *eth = rte_pktmbuf_mtod(rx[i], struct rte_ether_hdr *);
			struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
			if (eth->ether_type == htons(RTE_ETHER_TYPE_ARP) &&
			    arp->arp_opcode == htons(RTE_ARP_OP_REPLY) &&
			    arp->arp_data.arp_sip == opt.relay_ip_be) {
				relay_mac = arp->arp_data.arp_sha;
				rte_pktmbuf_free_bulk(rx, n);
				return 0;
			}
		}
		rte_pktmbuf_free_bulk(rx, n);
	}
	fprintf(stderr, "rly-gen: no ARP reply from the relay in 10 s (is it running on the other "
			"end of the memif socket?)\n");
	return -1;
}

static void stream_key(uint8_t key[RLY_STREAM_KEY_LEN])
{
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		key[i] = (uint8_t)(0xb0 + i);
}

static void send_subscribe(unsigned i, const struct rly_wire_challenge *ch)
{
	struct rly_wire_subscribe s;
	uint8_t buf[128];
	int n;

	memset(&s, 0, sizeof(s));
	stream_key(s.stream_key);
	rly_be32_store(&s.lease_ms, opt.lease_ms);
	rly_be64_store(&s.request_id, eps[i].request_id);
	if (ch) {
		s.issued_ms = ch->issued_ms;
		memcpy(s.cookie, ch->cookie, sizeof(s.cookie));
	}
	n = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_SUBSCRIBE, &s);
	send1(udp_frame(eps[i].ip_be, SUB_PORT, buf, (uint16_t)n, 1));
	eps[i].sent_tsc = rte_rdtsc();
}

static struct rte_mbuf *heartbeat_frame(unsigned i)
{
	struct rly_wire_sub_ref r;
	uint8_t buf[128];
	int n;

	memset(&r, 0, sizeof(r));
	stream_key(r.stream_key);
	rly_be64_store(&r.request_id, eps[i].request_id);
	memcpy(r.token, eps[i].token, sizeof(r.token));
	n = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_HEARTBEAT, &r);
	return udp_frame(eps[i].ip_be, SUB_PORT, buf, (uint16_t)n, 1);
}

static int subscribe_all(void)
{
	uint64_t deadline = rte_rdtsc() + 60 * hz;
	unsigned done = 0, window = 64;
	struct rte_mbuf *rx[BURST];

	for (unsigned i = 0; i < opt.subs; i++) {
		eps[i].ip_be = htonl(0x0ac80000u | (i + 1)); /* 10.200.x.y */
		eps[i].request_id = 1000 + i;
		eps[i].state = 0;
	}
	while (done < opt.subs && rte_rdtsc() < deadline && !stop) {
		unsigned inflight = 0;
		uint64_t now = rte_rdtsc();
		for (unsigned i = 0; i < opt.subs; i++) {
			if (eps[i].state == 2)
				continue;
			if (eps[i].sent_tsc && now - eps[i].sent_tsc < hz / 2) {
				inflight++;
				continue;
			}
			if (inflight >= window)
				continue;
			eps[i].state = 0;
			send_subscribe(i, NULL);
			inflight++;
		}
		for (int spin = 0; spin < 1000; spin++) {
			uint16_t n = rte_eth_rx_burst(0, 0, rx, BURST);
			for (uint16_t k = 0; k < n; k++) {
				struct rte_ipv4_hdr *ip =
				    rte_pktmbuf_mtod_offset(rx[k], struct rte_ipv4_hdr *, 14);
				struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
				struct rly_wire_view v;
				uint32_t i = ntohl(ip->dst_addr) - 0x0ac80001u;

				if (rte_pktmbuf_data_len(rx[k]) < 42 || i >= opt.subs ||
				    rly_wire_parse(udp + 1, ntohs(udp->dgram_len) - 8, RLY_WIRE_MAX_DGRAM,
						   &v) != RLY_WIRE_ERR_OK)
					continue;
				if (v.type == RLY_MSG_CHALLENGE && eps[i].state == 0) {
					eps[i].state = 1;
					send_subscribe(i, (const struct rly_wire_challenge *)v.body);
				} else if (v.type == RLY_MSG_SUB_ACK && eps[i].state != 2) {
					const struct rly_wire_ack *a = (const struct rly_wire_ack *)v.body;
					if (rly_be16_load(&a->status) != RLY_SUB_OK) {
						fprintf(stderr, "rly-gen: subscribe %u refused: %s\n", i,
							rly_sub_status_str(rly_be16_load(&a->status)));
						return -1;
					}
					memcpy(eps[i].token, a->token, sizeof(eps[i].token));
					eps[i].hb_tsc =
					    (opt.heartbeat_ms ? opt.heartbeat_ms
							      : rly_be32_load(&a->heartbeat_ms)) *
					    hz / 1000;
					eps[i].state = 2;
					done++;
				}
			}
			rte_pktmbuf_free_bulk(rx, n);
		}
	}
	if (done < opt.subs) {
		fprintf(stderr, "rly-gen: only %u of %u endpoints subscribed in 60 s (is relay-control "
				"running?)\n",
			done, opt.subs);
		return -1;
	}
	return 0;
}

/* ---- the flood ---- */

struct flood_tmpl {
	uint16_t len; /* whole frame */
	uint16_t
	    rand_off; /* bytes [rand_off, rand_off + rand_len) get fresh random bits per frame */
	uint16_t rand_len; /* a multiple of 8 */
	uint8_t frame[256];
};

static struct flood_tmpl garbage[GARBAGE_TMPL], fl_subscribe, fl_badcookie, fl_heartbeat;
static uint64_t rnd_state = 0x9e3779b97f4a7c15ull;
static uint64_t flood_seq;

/* xorshift64*: a few cycles per frame, so the flood's cost stays the relay's, not ours. */
static inline uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545f4914f6cdd1dull;
}

static void tmpl_control(struct flood_tmpl *t, unsigned type, const void *body, size_t rand_off,
			 size_t rand_len)
{
	int n = rly_wire_build_control(t->frame + 42, sizeof(t->frame) - 42, type, body);

	put_headers(t->frame, 0, 0, (uint16_t)n);
	t->len = (uint16_t)(42 + n);
	t->rand_off = (uint16_t)(42 + 8 + rand_off);
	t->rand_len = (uint16_t)rand_len;
}

/*
 * Garbage reaches the relay's wire parser (good IPv4, UDP to the relay's port, no UDP checksum)
 * and fails it at different depths, one refusal reason per variant.
 */
static void tmpl_garbage(struct flood_tmpl *t, unsigned variant)
{
	uint8_t *p = t->frame + 42;
	uint16_t len = (uint16_t)(16 + rnd() % 150);

	for (unsigned i = 0; i < len; i++)
		p[i] = (uint8_t)rnd();
	switch (variant % 8) {
	case 0: /* random bytes: BAD_MAGIC (or TRUNCATED_HEADER below) */
		if (p[0] == 0x52 && p[1] == 0x59)
			p[0] = 0;
		break;
	case 1:
		len = (uint16_t)(1 + rnd() % 7); /* TRUNCATED_HEADER */
		break;
	case 2:
		rly_wire_put_dgram_hdr(p, RLY_MSG_SUBSCRIBE, len, 1);
		p[2] = 2; /* BAD_VERSION */
		break;
	case 3:
		rly_wire_put_dgram_hdr(p, 0x7f, len, 1); /* UNKNOWN_TYPE */
		break;
	case 4:
		rly_wire_put_dgram_hdr(p, RLY_MSG_NAK, len, 1); /* RESERVED_TYPE */
		break;
	case 5:
		rly_wire_put_dgram_hdr(p, RLY_MSG_SUBSCRIBE, (uint16_t)(len + 1),
				       1); /* LENGTH_MISMATCH */
		break;
	case 6:
		len = 8 + sizeof(struct rly_wire_subscribe);
		rly_wire_put_dgram_hdr(p, RLY_MSG_SUBSCRIBE, len, 2); /* BAD_COUNT */
		break;
	default:
		len = 8 + 40;
		rly_wire_put_dgram_hdr(p, RLY_MSG_HEARTBEAT, len, 1); /* BAD_BODY_SIZE */
		break;
	}
	put_headers(t->frame, 0, 0, len);
	t->len = (uint16_t)(42 + len);
	t->rand_len = 0;
}

static void build_flood_templates(void)
{
	struct rly_wire_subscribe s;
	struct rly_wire_sub_ref r;

	for (unsigned i = 0; i < GARBAGE_TMPL; i++)
		tmpl_garbage(&garbage[i], i);
	memset(&s, 0, sizeof(s));
	stream_key(s.stream_key);
	rly_be32_store(&s.lease_ms, 10000);
	/* A fresh request_id per frame, as a real subscriber population would send. */
	tmpl_control(&fl_subscribe, RLY_MSG_SUBSCRIBE, &s,
		     offsetof(struct rly_wire_subscribe, request_id), 8);
	/* issued_ms != 0 makes it the challenge answer; the cookie is random, so never right. */
	rly_be64_store(&s.issued_ms, 1);
	tmpl_control(&fl_badcookie, RLY_MSG_SUBSCRIBE, &s,
		     offsetof(struct rly_wire_subscribe, cookie), RLY_COOKIE_LEN);
	memset(&r, 0, sizeof(r));
	stream_key(r.stream_key);
	tmpl_control(&fl_heartbeat, RLY_MSG_HEARTBEAT, &r,
		     offsetof(struct rly_wire_sub_ref, request_id), 8 + RLY_COOKIE_LEN);
}

/* The last sequence number published (the NAKs ask for what lies below it). */
static uint64_t pub_seq;

/* A NAK from slow subscriber endpoint (flood_seq % --slow-subs) for the last --nak-span messages. */
static void nak_frame(struct rte_mbuf *m)
{
	const unsigned i = opt.slow_subs ? (unsigned)(flood_seq % opt.slow_subs) : 0;
	const uint64_t hi = pub_seq > 1 ? pub_seq - 1 : 1;
	struct rly_wire_nak b;
	int n;

	memset(&b, 0, sizeof(b));
	stream_key(b.stream_key);
	rly_be32_store(&b.chain, 0x600d);
	memset(b.publisher, 0x11, sizeof(b.publisher));
	rly_be64_store(&b.request_id, rnd() | 1);
	b.n = 1;
	rly_be64_store(&b.r[0].from_seq, hi > opt.nak_span ? hi - opt.nak_span + 1 : 1);
	rly_be64_store(&b.r[0].to_seq, hi);
	n = rly_wire_build_control(rte_pktmbuf_mtod_offset(m, uint8_t *, 42), 256, RLY_MSG_NAK, &b);
	put_headers(rte_pktmbuf_mtod(m, uint8_t *), eps[i].ip_be, SUB_PORT, (uint16_t)n);
	m->data_len = m->pkt_len = (uint16_t)(42 + n);
	flood_seq++;
}

static void flood_frame(struct rte_mbuf *m, enum flood_kind kind, unsigned srcs)
{
	const struct flood_tmpl *t;
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(p + 14);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint64_t r = rnd();

	if (kind == FLOOD_NAK) {
		nak_frame(m);
		return;
	}
	if (kind == FLOOD_MIX)
		kind = (enum flood_kind)(flood_seq % FLOOD_MIX);
	switch (kind) {
	case FLOOD_GARBAGE:
		t = &garbage[(flood_seq / FLOOD_MIX) % GARBAGE_TMPL];
		break;
	case FLOOD_SUBSCRIBE:
		t = &fl_subscribe;
		break;
	case FLOOD_BADCOOKIE:
		t = &fl_badcookie;
		break;
	default:
		t = &fl_heartbeat;
		break;
	}
	flood_seq++;
	rte_memcpy(p, t->frame, t->len);
	m->data_len = m->pkt_len = t->len;
	for (unsigned o = 0; o < t->rand_len; o += 8) {
		uint64_t v = rnd();
		memcpy(p + t->rand_off + o, &v, 8);
	}
	ip->src_addr = htonl(FLOOD_SRC_BASE + (uint32_t)(r % srcs));
	udp->src_port = (uint16_t)((r >> 32) % 65535 + 1);
	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
}

/* ---- measurement windows ---- */

struct results {
	uint64_t sent_msgs, sent_dgrams, tx_refused;
	uint64_t rx_frames, deliveries, window_msgs;
	uint64_t others, slow, repairs, gaps_rx; /* deliveries to the others, to the slow ones; repaired
						    messages and GAPs the slow ones got */
	uint64_t completed;
	uint64_t flood_sent, flood_refused;
	uint64_t rx_challenge, rx_sub_ack, rx_hb_ack_ok, rx_hb_ack_other, rx_other;
	uint64_t hb_sent;
	double secs;
	struct rly_hist each, last;
};

/* The relay's counters (summed over its blocks) and relay-control's CPU at one instant. */
struct relay_snap {
	uint64_t sum[RLY_CTR_SLOTS];
	uint64_t busy; /* worker blocks only */
	long ctl_ticks;
	uint64_t tsc;
};

struct window {
	char name[16];
	uint64_t seg0;	 /* when this window's flood state began (the previous window's end) */
	uint64_t t0, t1; /* measured interval */
	const struct flood_item *flood; /* NULL: no flood */
	int started;
	uint64_t first_seq, last_seq;
	struct results r;
	struct relay_snap s0, s1;
};

static struct window *win;
static unsigned n_win;

/* utime + stime of @p pid in clock ticks, or -1. */
static long proc_cpu_ticks(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The command name may hold spaces; fields count from the last ')'. utime is field 14. */
	p = strrchr(buf, ')');
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

static void snap(struct relay_snap *s, uint64_t now)
{
	const struct rly_shm_header *h;

	s->tsc = now;
	if (shm.base == NULL)
		return;
	h = rly_shm_hdr(&shm);
	for (unsigned slot = 0; slot < RLY_CTR_SLOTS; slot++)
		s->sum[slot] = rly_shm_ctr_sum(&shm, slot);
	s->busy = 0;
	for (unsigned w = 0; w < h->n_workers; w++)
		s->busy += rly_shm_ctr(&shm, w)->v[RLY_CTR_BUSY_CYCLES];
	s->ctl_ticks = proc_cpu_ticks(__atomic_load_n(&h->control_pid, __ATOMIC_RELAXED));
}

/*
 * Without a flood schedule: one window after the warm-up, the flood (if any) on from the start.
 * With one: off, item 1, off, item 2, ..., off; every switch is followed by --settle unmeasured
 * seconds, so the relay-control backlog of the previous state is not charged to the next.
 */
static int plan_windows(uint64_t t_start)
{
	const uint64_t d = (uint64_t)(opt.duration * (double)hz);
	const uint64_t settle = (uint64_t)(opt.settle * (double)hz);
	uint64_t t = t_start + (uint64_t)(opt.warmup * (double)hz);

	n_win = opt.n_items ? 2 * opt.n_items + 1 : 1;
	win = calloc(n_win, sizeof(*win));
	if (win == NULL)
		return -1;
	for (unsigned i = 0; i < n_win; i++) {
		struct window *w = &win[i];

		w->seg0 = i ? win[i - 1].t1 : t_start;
		w->t0 = i ? w->seg0 + settle : t;
		w->t1 = w->t0 + d;
		if (opt.n_items == 0) {
			w->flood = opt.flood.pps >= 0 ? &opt.flood : NULL;
			snprintf(w->name, sizeof(w->name), "all");
		} else if (i % 2) {
			w->flood = &opt.items[i / 2];
			snprintf(w->name, sizeof(w->name), "on%u", i / 2 + 1);
		} else {
			snprintf(w->name, sizeof(w->name), "off%u", i / 2 + 1);
		}
		rly_hist_init(&w->r.each);
		rly_hist_init(&w->r.last);
		w->r.secs = opt.duration;
	}
	return 0;
}

static uint8_t tmpl[2048];
static uint16_t tmpl_len;

static void build_template(void)
{
	uint8_t *p = tmpl + 42;
	uint16_t dlen = (uint16_t)(8 + opt.per_dgram * (96 + opt.size));

	put_headers(tmpl, opt.pub_ip_be, PUB_PORT,
		    dlen); /* no UDP checksum: payload changes per frame */
	rly_wire_put_dgram_hdr(p, RLY_MSG_DATA, dlen, (uint16_t)opt.per_dgram);
	p += 8;
	for (unsigned i = 0; i < opt.per_dgram; i++) {
		struct rly_wire_msg_hdr *h = (struct rly_wire_msg_hdr *)p;
		memset(h, 0, sizeof(*h));
		stream_key(h->stream_key);
		rly_be32_store(&h->chain, 0x600d);
		memset(h->publisher, 0x11, sizeof(h->publisher));
		rly_be16_store(&h->payload_len, (uint16_t)opt.size);
		memset(p + 96, 0x5a, opt.size);
		p += 96 + opt.size;
	}
	tmpl_len = (uint16_t)(p - tmpl);
}

static inline void on_message(struct results *r, const struct rly_wire_msg_hdr *h, uint64_t t)
{
	uint64_t seq = rly_be64_load(&h->seq);
	uint64_t lat = t - rly_be64_load(&h->timestamp_ns);
	struct track *k = &trk[seq & (TRACK - 1)];

	if (lat > 60ull * 1000000000ull)
		lat = 0; /* clock went backwards: impossible with one TSC, guard anyway */
	if (k->seq != seq) {
		k->seq = seq;
		k->count = 0;
		k->max_ns = 0;
	}
	k->count++;
	if (lat > k->max_ns)
		k->max_ns = lat;
	if (r) {
		rly_hist_record(&r->each, lat);
		if (k->count == opt.subs - opt.slow_subs) {
			rly_hist_record(&r->last, k->max_ns);
			r->completed++;
		}
	}
}

/* The window whose sent sequence numbers hold @p s, if any. */
static inline struct results *window_of_seq(uint64_t s)
{
	for (unsigned i = 0; i < n_win; i++)
		if (win[i].first_seq && s >= win[i].first_seq && s <= win[i].last_seq)
			return &win[i].r;
	return NULL;
}

/* A frame that is not a delivery: the relay's answers to the flood or to our heartbeats. */
static void on_reply(struct results *r, const uint8_t *dgram, unsigned len)
{
	const struct rly_wire_dgram_hdr *d = (const struct rly_wire_dgram_hdr *)dgram;

	if (r == NULL)
		return;
	if (len < sizeof(*d) || rly_be16_load(&d->magic) != RLY_WIRE_MAGIC) {
		r->rx_other++;
	} else if (d->type == RLY_MSG_CHALLENGE) {
		r->rx_challenge++;
	} else if (d->type == RLY_MSG_SUB_ACK) {
		r->rx_sub_ack++;
	} else if (d->type == RLY_MSG_GAP) {
		r->gaps_rx++;
	} else if (d->type == RLY_MSG_HEARTBEAT_ACK &&
		   len >= sizeof(*d) + sizeof(struct rly_wire_ack)) {
		const struct rly_wire_ack *a = (const struct rly_wire_ack *)(d + 1);
		if (rly_be16_load(&a->status) == RLY_SUB_OK)
			r->rx_hb_ack_ok++;
		else
			r->rx_hb_ack_other++;
	} else {
		r->rx_other++;
	}
}

/*
 * Heartbeats wait here until the port takes them, and go ahead of the flood and the data: on a
 * full link a heartbeat dropped on the generator's side would be charged to the relay.
 */
static struct rte_mbuf *hbq[MAX_SUBS];
static unsigned n_hbq;

static void heartbeats(uint64_t now)
{
	for (unsigned i = 0; i < opt.subs && n_hbq < MAX_SUBS; i++) {
		struct rte_mbuf *m;

		if (eps[i].hb_tsc == 0 || now < eps[i].next_hb)
			continue;
		m = heartbeat_frame(i);
		/* An empty pool: the endpoints not yet served try again at the next check. */
		if (m == NULL)
			break;
		hbq[n_hbq++] = m;
		eps[i].next_hb = now + eps[i].hb_tsc;
	}
}

static void run(void)
{
	const int paced = opt.rate > 0, lat = paced;
	const uint64_t t_start = rte_rdtsc();
	const double msgs_per_tsc = opt.rate / (double)hz;
	uint64_t t_end, t_drain, seq = 0, flood_issued = 0, next_hb_check = 0;
	struct rte_mbuf *tx[BURST], *rx[BURST], *ftx[BURST];
	unsigned n_pending = 0, n_fpending = 0, cur = 0, flood_seg = ~0u;

	if (plan_windows(t_start) < 0)
		rte_exit(1, "rly-gen: out of memory\n");
	t_end = win[n_win - 1].t1;
	t_drain = t_end + hz / 5;
	/* Spread the endpoints' heartbeats over one interval rather than sending them in a burst.
	 */
	for (unsigned i = 0; opt.heartbeats && i < opt.subs; i++)
		eps[i].next_hb = t_start + eps[i].hb_tsc * i / opt.subs;
	for (;;) {
		uint64_t now = rte_rdtsc();
		struct window *w = NULL;
		struct results *r = NULL;
		unsigned want = BURST;

		if (now >= t_drain || stop)
			break;
		while (cur < n_win && now >= win[cur].t1) {
			snap(&win[cur].s1, now);
			cur++;
		}
		if (cur < n_win && now >= win[cur].t0) {
			w = &win[cur];
			r = &w->r;
			if (!w->started) {
				w->started = 1;
				snap(&w->s0, now);
			}
		}
		if (n_hbq) {
			uint16_t sent = rte_eth_tx_burst(0, 0, hbq, (uint16_t)n_hbq);
			if (r)
				r->hb_sent += sent;
			memmove(hbq, hbq + sent, (n_hbq - sent) * sizeof(hbq[0]));
			n_hbq -= sent;
		}
		/*
		 * The flood goes first in the loop turn and its refused frames stay queued, as the
		 * data's do: an attacker does not yield to the publisher, so at full load the link
		 * carries the flood at its rate and the data gets what is left. Its state is that
		 * of the window ahead (cur), from the end of the previous window on.
		 */
		if (cur < n_win && win[cur].flood && now < t_end) {
			const struct flood_item *f = win[cur].flood;
			unsigned nf = BURST;

			if (flood_seg != cur) {
				flood_seg = cur;
				flood_issued = 0;
			}
			if (f->pps > 0) {
				uint64_t due =
				    (uint64_t)((double)(now - win[cur].seg0) * f->pps / (double)hz);
				uint64_t owe = due > flood_issued ? due - flood_issued : 0;
				nf = n_fpending + owe < BURST ? n_fpending + (unsigned)owe : BURST;
			}
			if (nf > n_fpending &&
			    rte_pktmbuf_alloc_bulk(pool, ftx + n_fpending, nf - n_fpending) == 0) {
				for (unsigned i = n_fpending; i < nf; i++)
					flood_frame(ftx[i], f->kind,
						    f->srcs ? f->srcs : opt.flood_srcs);
				flood_issued += nf - n_fpending;
				n_fpending = nf;
			}
		} else if (n_fpending) {
			rte_pktmbuf_free_bulk(ftx, n_fpending);
			n_fpending = 0;
		}
		if (n_fpending) {
			uint16_t sent = rte_eth_tx_burst(0, 0, ftx, (uint16_t)n_fpending);
			if (r) {
				r->flood_sent += sent;
				r->flood_refused += n_fpending - sent;
			}
			memmove(ftx, ftx + sent, (n_fpending - sent) * sizeof(ftx[0]));
			n_fpending -= sent;
		}
		if (now >= t_end) {
			want = 0;
			if (n_pending) {
				rte_pktmbuf_free_bulk(tx, n_pending);
				n_pending = 0;
			}
		} else if (paced) {
			uint64_t due = (uint64_t)((double)(now - t_start) * msgs_per_tsc);
			uint64_t owe = due > seq ? (due - seq + opt.per_dgram - 1) / opt.per_dgram : 0;
			want = n_pending + owe < BURST ? n_pending + (unsigned)owe : BURST;
		}
		/*
		 * Frames the port refused stay queued and go first next turn: building frames only to
		 * free them would make the generator, not the device under test, the bottleneck.
		 */
		if (want > n_pending && rte_pktmbuf_alloc_bulk(pool, tx + n_pending, want - n_pending) == 0) {
			uint64_t t = now_ns(now);
			for (unsigned i = n_pending; i < want; i++) {
				uint8_t *p = rte_pktmbuf_mtod(tx[i], uint8_t *);
				rte_memcpy(p, tmpl, tmpl_len);
				tx[i]->data_len = tx[i]->pkt_len = tmpl_len;
				p += 50;
				for (unsigned k = 0; k < opt.per_dgram; k++) {
					struct rly_wire_msg_hdr *h = (struct rly_wire_msg_hdr *)p;
					seq++;
					pub_seq = seq;
					rly_be64_store(&h->seq, seq);
					rly_be64_store(&h->prev_seq, seq - 1);
					rly_be64_store(&h->timestamp_ns, t);
					p += 96 + opt.size;
				}
			}
			n_pending = want;
		}
		if (n_pending) {
			uint16_t sent = rte_eth_tx_burst(0, 0, tx, (uint16_t)n_pending);
			if (r) {
				uint64_t first = rly_be64_load(rte_pktmbuf_mtod_offset(
				    tx[0], const uint8_t *, 50 + offsetof(struct rly_wire_msg_hdr, seq)));
				if (w->first_seq == 0 && sent)
					w->first_seq = first;
				if (sent < n_pending)
					r->tx_refused += n_pending - sent;
				r->sent_dgrams += sent;
				r->sent_msgs += (uint64_t)sent * opt.per_dgram;
				if (sent)
					w->last_seq = first + (uint64_t)sent * opt.per_dgram - 1;
			}
			memmove(tx, tx + sent, (n_pending - sent) * sizeof(tx[0]));
			n_pending -= sent;
		}

		if (opt.heartbeats && now >= next_hb_check && now < t_end) {
			heartbeats(now);
			next_hb_check = now + hz / 1000;
		}

		uint16_t n = rte_eth_rx_burst(0, 0, rx, BURST);
		if (n == 0)
			continue;
		uint64_t t = now_ns(rte_rdtsc());
		for (uint16_t i = 0; i < n; i++) {
			const uint8_t *p;
			const struct rly_wire_dgram_hdr *d;
			unsigned cnt;
			int is_slow;
			/* A relay sharing one payload between subscribers sends header + payload segments. */
			if (rx[i]->nb_segs > 1 && rte_pktmbuf_linearize(rx[i]) != 0)
				continue;
			p = rte_pktmbuf_mtod(rx[i], const uint8_t *);
			d = (const struct rly_wire_dgram_hdr *)(p + 42);
			if (rte_pktmbuf_data_len(rx[i]) < 50 || d->type != RLY_MSG_DATA) {
				if (rte_pktmbuf_data_len(rx[i]) >= 42)
					on_reply(r, p + 42, rte_pktmbuf_data_len(rx[i]) - 42u);
				else if (r)
					r->rx_other++;
				continue;
			}
			cnt = rly_be16_load(&d->count);
			{
				/* 10.200.0.(i + 1): endpoint i; the first --slow-subs are the slow ones. */
				uint32_t dst = ntohl(((const struct rte_ipv4_hdr *)(p + 14))->dst_addr);
				is_slow = dst - 0x0ac80001u < opt.slow_subs;
			}
			if (r) {
				r->rx_frames++;
				r->deliveries += cnt;
				if (is_slow) {
					r->slow += cnt;
					if (((const struct rly_wire_msg_hdr *)(p + 50))->ttl &
					    RLY_TTL_F_REPAIR)
						r->repairs += cnt;
				} else {
					r->others += cnt;
				}
			}
			if (lat && !is_slow) {
				const uint8_t *m = p + 50;
				for (unsigned k = 0; k < cnt; k++) {
					const struct rly_wire_msg_hdr *h = (const struct rly_wire_msg_hdr *)m;
					uint64_t s = rly_be64_load(&h->seq);
					if ((s & (opt.sample - 1)) == 0)
						on_message(window_of_seq(s), h, t);
					m += 96 + rly_be16_load(&h->payload_len) + rly_be16_load(&h->sig_len);
				}
			}
		}
		rte_pktmbuf_free_bulk(rx, n);
	}
	if (n_hbq)
		rte_pktmbuf_free_bulk(hbq, n_hbq);
	/* A window cut short by a signal ends where the run did. */
	for (; cur < n_win; cur++)
		if (win[cur].started)
			snap(&win[cur].s1, rte_rdtsc());
	/* Probes: the sampled sequence numbers sent in each window. */
	for (unsigned i = 0; i < n_win; i++) {
		struct window *w = &win[i];
		w->r.window_msgs = w->last_seq >= w->first_seq && w->first_seq
				       ? w->last_seq / opt.sample - (w->first_seq - 1) / opt.sample
				       : 0;
	}
}

/* ---- report ---- */

static void print_flood_json(const struct window *w)
{
	const struct flood_item *f = w->flood;

	if (f == NULL) {
		printf(",\"flood\":null");
		return;
	}
	printf(",\"flood\":{\"kind\":\"%s\",", flood_kind_name[f->kind]);
	if (f->pps > 0)
		printf("\"pps\":%.0f,", f->pps);
	else
		printf("\"pps\":\"max\",");
	printf("\"srcs\":%u,\"sent\":%" PRIu64 ",\"sent_s\":%.0f,\"tx_retries\":%" PRIu64 "}",
	       f->srcs ? f->srcs : opt.flood_srcs, w->r.flood_sent,
	       (double)w->r.flood_sent / w->r.secs, w->r.flood_refused);
}

/* Every counter that moved in the window, the relay worker's load and relay-control's CPU. */
static void print_relay_json(const struct window *w)
{
	const struct rly_shm_header *h = rly_shm_hdr(&shm);
	double secs = (double)(w->s1.tsc - w->s0.tsc) / (double)hz;
	const char *sep = "";
	long tck = sysconf(_SC_CLK_TCK);

	printf(",\"relay\":{\"secs\":%.3f,\"tsc_hz\":%" PRIu64 ",\"load\":%.4f", secs, h->tsc_hz,
	       secs > 0 ? (double)(w->s1.busy - w->s0.busy) / (double)h->tsc_hz / secs /
			      (double)h->n_workers
			: 0.0);
	if (w->s0.ctl_ticks >= 0 && w->s1.ctl_ticks >= 0 && secs > 0 && tck > 0)
		printf(",\"ctl_cpu\":%.3f",
		       (double)(w->s1.ctl_ticks - w->s0.ctl_ticks) / (double)tck / secs);
	printf(",\"subscribers\":%" PRIu64 ",\"counters\":{", w->s1.sum[RLY_CTR_SUBSCRIBERS]);
	for (unsigned id = 0; id < RLY_CTR_MAX; id++) {
		uint64_t d = w->s1.sum[id] - w->s0.sum[id];
		if (rly_ctr_kind(id) != RLY_CTR_KIND_COUNT || d == 0 || rly_ctr_name(id) == NULL)
			continue;
		printf("%s\"%s\":%" PRIu64, sep, rly_ctr_name(id), d);
		sep = ",";
	}
	printf("},\"wire\":{");
	sep = "";
	for (unsigned e = 1; e < RLY_WIRE_ERR_MAX; e++) {
		uint64_t d = w->s1.sum[RLY_CTR_WIRE_BASE + e] - w->s0.sum[RLY_CTR_WIRE_BASE + e];
		if (d == 0)
			continue;
		printf("%s\"%s\":%" PRIu64, sep, rly_wire_err_name((enum rly_wire_err)e), d);
		sep = ",";
	}
	printf("}}");
}

static void report_window(const struct window *w)
{
	const struct results *r = &w->r;
	double mps = (double)r->sent_msgs / r->secs, dps = (double)r->deliveries / r->secs;
	const char *pre = n_win > 1 ? w->name : "";

	if (n_win > 1)
		printf("[%s] ", w->name);
	printf("published %.3f M msgs/s (%" PRIu64 " msgs, %" PRIu64 " tx retries), received %.3f M "
	       "frames/s, deliveries %.3f M/s (%.2f per published message)\n",
	       mps / 1e6, r->sent_msgs, r->tx_refused, (double)r->rx_frames / r->secs / 1e6, dps / 1e6,
	       r->sent_msgs ? (double)r->deliveries / (double)r->sent_msgs : 0.0);
	if (opt.slow_subs)
		printf("%*sto the %u others %.3f M/s; to the %u slow ones %.3f M/s, of which repairs "
		       "%.3f M/s; GAPs to them %" PRIu64 "\n",
		       n_win > 1 ? (int)strlen(pre) + 3 : 0, "", opt.subs - opt.slow_subs,
		       (double)r->others / r->secs / 1e6, opt.slow_subs,
		       (double)r->slow / r->secs / 1e6, (double)r->repairs / r->secs / 1e6,
		       r->gaps_rx);
	if (w->flood)
		printf("%*sflood %s: %.3f M frames/s sent (%" PRIu64 " tx retries); replies "
		       "received: %" PRIu64 " CHALLENGE, %" PRIu64 " SUB_ACK, %" PRIu64 " other\n",
		       n_win > 1 ? (int)strlen(pre) + 3 : 0, "", flood_kind_name[w->flood->kind],
		       (double)r->flood_sent / r->secs / 1e6, r->flood_refused, r->rx_challenge,
		       r->rx_sub_ack, r->rx_other);
	if (r->each.count) {
		printf("latency per delivery:  ");
		rly_hist_print(stdout, &r->each, 1000.0, "us");
		printf("\nfan-out latency (to last subscriber): ");
		rly_hist_print(stdout, &r->last, 1000.0, "us");
		printf("\ncomplete probe messages (every %u-th sequence number): %" PRIu64 " of %" PRIu64
		       "\n", opt.sample, r->completed, r->window_msgs);
	}
}

static void json_window(const struct window *w)
{
	const struct results *r = &w->r;
	double mps = (double)r->sent_msgs / r->secs, dps = (double)r->deliveries / r->secs;

	printf("{\"label\":\"%s\",\"window\":\"%s\",\"mode\":\"%s\",\"subs\":%u,\"size\":%u,"
	       "\"per_dgram\":%u,\"paced_rate\":%.0f,\"pub_msgs_s\":%.0f,\"deliveries_s\":%.0f,"
	       "\"rx_frames_s\":%.0f,\"tx_refused\":%" PRIu64 ",\"complete\":%" PRIu64
	       ",\"window_msgs\":%" PRIu64,
	       opt.label, w->name, opt.reflect ? "reflect" : "relay", opt.subs, opt.size,
	       opt.per_dgram, opt.rate, mps, dps, (double)r->rx_frames / r->secs, r->tx_refused,
	       r->completed, r->window_msgs);
	if (opt.slow_subs)
		printf(",\"slow_subs\":%u,\"nak_span\":%u,\"others_s\":%.0f,\"slow_s\":%.0f,"
		       "\"repairs_s\":%.0f,\"gaps_rx\":%" PRIu64,
		       opt.slow_subs, opt.nak_span, (double)r->others / r->secs,
		       (double)r->slow / r->secs, (double)r->repairs / r->secs, r->gaps_rx);
	if (r->last.count)
		printf(",\"fanout_us\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f},"
		       "\"each_us\":{\"p50\":%.2f,\"p99\":%.2f}",
		       rly_hist_percentile(&r->last, 50) / 1e3,
		       rly_hist_percentile(&r->last, 99) / 1e3,
		       rly_hist_percentile(&r->last, 99.9) / 1e3, r->last.max / 1e3,
		       rly_hist_percentile(&r->each, 50) / 1e3,
		       rly_hist_percentile(&r->each, 99) / 1e3);
	if (opt.n_items || opt.flood.pps >= 0)
		print_flood_json(w);
	if (!opt.reflect)
		printf(",\"replies\":{\"challenge\":%" PRIu64 ",\"sub_ack\":%" PRIu64
		       ",\"hb_ack_ok\":%" PRIu64 ",\"hb_ack_other\":%" PRIu64 ",\"other\":%" PRIu64
		       "}",
		       r->rx_challenge, r->rx_sub_ack, r->rx_hb_ack_ok, r->rx_hb_ack_other,
		       r->rx_other);
	if (opt.heartbeats)
		printf(",\"heartbeats_sent\":%" PRIu64, r->hb_sent);
	if (shm.base && w->started)
		print_relay_json(w);
	printf("}\n");
}

static void report(void)
{
	printf("setup: mode=%s subs=%u payload=%uB msgs/dgram=%u rate=%s warmup=%.1fs "
	       "measured=%.1fs latency sample 1/%u",
	       opt.reflect ? "reflect" : "relay", opt.subs, opt.size, opt.per_dgram,
	       opt.rate > 0 ? "paced" : "max", opt.warmup, opt.duration, opt.sample);
	if (n_win > 1)
		printf(" per window, %u windows, %.1fs settle after each flood switch", n_win,
		       opt.settle);
	if (opt.n_items || opt.flood.pps >= 0)
		printf(", flood from spoofed sources in 198.18.128.0/17 (%u unless the item says)",
		       opt.flood_srcs);
	printf("\n");
	for (unsigned i = 0; i < n_win; i++)
		report_window(&win[i]);
	if (opt.json)
		for (unsigned i = 0; i < n_win; i++)
			json_window(&win[i]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct rte_eth_conf conf;
	struct rte_eth_link link;
	struct timespec ts;
	uint64_t deadline;
	int n = rte_eal_init(argc, argv);

	if (n < 0)
		rte_exit(1, "rly-gen: EAL init failed\n");
	if (parse_args(argc - n, argv + n) < 0)
		return 2;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (rte_eth_dev_count_avail() != 1)
		rte_exit(1, "rly-gen: needs exactly one port (a memif server vdev)\n");
	pool = rte_pktmbuf_pool_create("gen", 32767, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	trk = calloc(TRACK, sizeof(*trk));
	if (pool == NULL || trk == NULL)
		rte_exit(1, "rly-gen: out of memory (give EAL -m 512)\n");
	memset(&conf, 0, sizeof(conf));
	if (rte_eth_dev_configure(0, 1, 1, &conf) < 0 ||
	    rte_eth_rx_queue_setup(0, 0, 4096, 0, NULL, pool) < 0 ||
	    rte_eth_tx_queue_setup(0, 0, 4096, 0, NULL) < 0 || rte_eth_dev_start(0) < 0)
		rte_exit(1, "rly-gen: port setup failed\n");
	rte_eth_macaddr_get(0, &my_mac);
	hz = rte_get_tsc_hz();
	ns_per_tsc = 1e9 / (double)hz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tsc0 = rte_rdtsc();
	real0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;

	deadline = rte_rdtsc() + 20 * hz;
	do {
		rte_eth_link_get_nowait(0, &link);
	} while (!link.link_status && rte_rdtsc() < deadline && !stop);
	if (!link.link_status)
		rte_exit(1, "rly-gen: memif link did not come up in 20 s\n");

	if (opt.reflect) {
		memset(&relay_mac, 0x02, sizeof(relay_mac));
		opt.subs = 1;
	} else if (resolve_relay() < 0 || subscribe_all() < 0) {
		return 1;
	}
	if (opt.instance && rly_shm_attach(&shm, opt.instance, 0) < 0) {
		fprintf(stderr, "rly-gen: --instance: %s\n", rly_err_msg());
		return 1;
	}
	/* The bench drivers wait for this line to time their own sampling of the relay. */
	printf("ready: measuring in %.1f s for %.1f s\n", opt.warmup, opt.duration);
	fflush(stdout);
	build_template();
	build_flood_templates();
	run();
	report();
	rly_shm_close(&shm);
	rte_eth_dev_stop(0);
	rte_eal_cleanup();
	return 0;
}
