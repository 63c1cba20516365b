/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rly-gen: traffic generator and sink for the fan-out bench, one DPDK process on one lcore that
 * both sends and drains (a second busy-polling process would starve on a 2-vCPU machine).
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
 * At --rate 0 (as fast as the link takes) only counts are taken: latency under overload is queueing.
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

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_udp.h>

#include "common/histogram.h"
#include "relay/wire.h"

#define BURST 32u
#define MAX_SUBS 4096u
#define TRACK (1u << 16)
#define SUB_PORT 20000u
#define PUB_PORT 30000u

struct sub_ep {
	uint32_t ip_be;
	uint8_t state; /* 0 new, 1 challenged-sent, 2 subscribed */
	uint64_t request_id;
	uint64_t sent_tsc;
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
	unsigned subs, size, per_dgram, lease_ms, sample;
	double rate, warmup, duration;
	int json;
	const char *label;
} opt = {.relay_port = RLY_WIRE_DEFAULT_PORT, .subs = 1, .size = 64, .per_dgram = 1,
	 .lease_ms = 120000, .warmup = 2, .duration = 5, .label = "", .sample = 16};

static struct rte_mempool *pool;
static struct rte_ether_addr my_mac, relay_mac;
static struct sub_ep eps[MAX_SUBS];
static struct track *trk;
static uint64_t hz, tsc0, real0;
static double ns_per_tsc;
static volatile int stop;

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
	printf("Usage: rly-gen <EAL args> -- [options]\n"
	       "  --mode relay|reflect   relay: subscribe and publish through a relay; reflect: the peer\n"
	       "                         is dpdk-testpmd io forwarding (the reference ceiling)\n"
	       "  --relay-ip A.B.C.D     relay address (default 198.18.0.1)\n"
	       "  --pub-ip A.B.C.D       publisher source address (default 198.18.0.2)\n"
	       "  --subs N               subscriber endpoints, 1..%u (default 1)\n"
	       "  --size BYTES           payload bytes per message (default 64)\n"
	       "  --per-dgram N          messages per published datagram (default 1)\n"
	       "  --rate MSGS_PER_S      publish rate; 0 = as fast as the link takes (default 0)\n"
	       "  --warmup S --duration S  seconds before and of measurement (default 2, 5)\n"
	       "  --lease-ms MS          requested lease (default 120000)\n"
	       "  --sample N             latency of every Nth sequence number (default 16; power of 2):\n"
	       "                         keeps the sink's own work from becoming what is measured\n"
	       "  --label TEXT           copied into the JSON line\n"
	       "  --json                 print one JSON object as the last line\n",
	       MAX_SUBS);
}

static int parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"mode", 1, 0, 'm'},     {"relay-ip", 1, 0, 'r'}, {"pub-ip", 1, 0, 'p'},
	    {"subs", 1, 0, 'f'},     {"size", 1, 0, 's'},     {"per-dgram", 1, 0, 'b'},
	    {"rate", 1, 0, 'R'},     {"warmup", 1, 0, 'w'},   {"duration", 1, 0, 'd'},
	    {"lease-ms", 1, 0, 'l'}, {"label", 1, 0, 'L'},    {"json", 0, 0, 'j'},
	    {"sample", 1, 0, 'S'},
	    {"help", 0, 0, 'h'},     {0, 0, 0, 0}};
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
	return 0;
bad:
	fprintf(stderr, "rly-gen: bad option; see --help\n");
	return -1;
}

/* ---- frames ---- */

static struct rte_mbuf *udp_frame(uint32_t src_be, uint16_t sport, const void *payload,
				  uint16_t len, uint16_t csum)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(pool);
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;

	if (m == NULL)
		return NULL;
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)(42 + len));
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	udp = (struct rte_udp_hdr *)(ip + 1);
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
	memcpy(udp + 1, payload, len);
	if (csum)
		udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
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

/* ---- traffic ---- */

struct results {
	uint64_t sent_msgs, sent_dgrams, tx_refused;
	uint64_t rx_frames, deliveries, window_msgs;
	uint64_t completed;
	double secs;
	struct rly_hist each, last;
};

static uint8_t tmpl[2048];
static uint16_t tmpl_len;

static void build_template(void)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)tmpl;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
	uint8_t *p = (uint8_t *)(udp + 1);
	uint16_t dlen = (uint16_t)(8 + opt.per_dgram * (96 + opt.size));

	eth->dst_addr = relay_mac;
	eth->src_addr = my_mac;
	eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = htons((uint16_t)(28 + dlen));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = opt.pub_ip_be;
	ip->dst_addr = opt.relay_ip_be;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = htons(PUB_PORT);
	udp->dst_port = htons(opt.relay_port);
	udp->dgram_len = htons((uint16_t)(8 + dlen));
	udp->dgram_cksum = 0; /* none: the payload changes per frame */
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

static inline void on_message(struct results *r, const struct rly_wire_msg_hdr *h, uint64_t t,
			      int measure)
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
	if (measure) {
		rly_hist_record(&r->each, lat);
		if (k->count == opt.subs) {
			rly_hist_record(&r->last, k->max_ns);
			r->completed++;
		}
	}
}

static void run(struct results *r)
{
	const int paced = opt.rate > 0, lat = paced;
	const uint64_t t_start = rte_rdtsc();
	const uint64_t t_measure = t_start + (uint64_t)(opt.warmup * (double)hz);
	const uint64_t t_end = t_measure + (uint64_t)(opt.duration * (double)hz);
	const uint64_t t_drain = t_end + hz / 5;
	const double msgs_per_tsc = opt.rate / (double)hz;
	uint64_t seq = 0, first_window_seq = 0, last_window_seq = 0;
	struct rte_mbuf *tx[BURST], *rx[BURST];
	unsigned n_pending = 0;

	memset(r, 0, sizeof(*r));
	rly_hist_init(&r->each);
	rly_hist_init(&r->last);
	for (;;) {
		uint64_t now = rte_rdtsc();
		int measuring = now >= t_measure && now < t_end;
		unsigned want = BURST;

		if (now >= t_drain || stop)
			break;
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
			if (measuring) {
				uint64_t first = rly_be64_load(rte_pktmbuf_mtod_offset(
				    tx[0], const uint8_t *, 50 + offsetof(struct rly_wire_msg_hdr, seq)));
				if (first_window_seq == 0 && sent)
					first_window_seq = first;
				if (sent < n_pending)
					r->tx_refused += n_pending - sent;
				r->sent_dgrams += sent;
				r->sent_msgs += (uint64_t)sent * opt.per_dgram;
				if (sent)
					last_window_seq = first + (uint64_t)sent * opt.per_dgram - 1;
			}
			memmove(tx, tx + sent, (n_pending - sent) * sizeof(tx[0]));
			n_pending -= sent;
		}

		uint16_t n = rte_eth_rx_burst(0, 0, rx, BURST);
		if (n == 0)
			continue;
		uint64_t t = now_ns(rte_rdtsc());
		for (uint16_t i = 0; i < n; i++) {
			const uint8_t *p;
			const struct rly_wire_dgram_hdr *d;
			unsigned cnt;
			/* A relay sharing one payload between subscribers sends header + payload segments. */
			if (rx[i]->nb_segs > 1 && rte_pktmbuf_linearize(rx[i]) != 0)
				continue;
			p = rte_pktmbuf_mtod(rx[i], const uint8_t *);
			d = (const struct rly_wire_dgram_hdr *)(p + 42);
			if (rte_pktmbuf_data_len(rx[i]) < 50 || d->type != RLY_MSG_DATA)
				continue;
			cnt = rly_be16_load(&d->count);
			if (measuring) {
				r->rx_frames++;
				r->deliveries += cnt;
			}
			if (lat) {
				const uint8_t *m = p + 50;
				for (unsigned k = 0; k < cnt; k++) {
					const struct rly_wire_msg_hdr *h = (const struct rly_wire_msg_hdr *)m;
					uint64_t s = rly_be64_load(&h->seq);
					if ((s & (opt.sample - 1)) == 0)
						on_message(r, h, t,
							   s >= first_window_seq && s <= last_window_seq &&
							       first_window_seq);
					m += 96 + rly_be16_load(&h->payload_len) + rly_be16_load(&h->sig_len);
				}
			}
		}
		rte_pktmbuf_free_bulk(rx, n);
	}
	/* Probes: the sampled sequence numbers sent in the window. */
	r->window_msgs = last_window_seq >= first_window_seq && first_window_seq
			     ? last_window_seq / opt.sample - (first_window_seq - 1) / opt.sample
			     : 0;
	r->secs = opt.duration;
}

static void report(const struct results *r)
{
	double mps = (double)r->sent_msgs / r->secs, dps = (double)r->deliveries / r->secs;

	printf("setup: mode=%s subs=%u payload=%uB msgs/dgram=%u rate=%s warmup=%.1fs "
	       "measured=%.1fs latency sample 1/%u\n",
	       opt.reflect ? "reflect" : "relay", opt.subs, opt.size, opt.per_dgram,
	       opt.rate > 0 ? "paced" : "max", opt.warmup, opt.duration, opt.sample);
	printf("published %.3f M msgs/s (%" PRIu64 " msgs, %" PRIu64 " tx retries), received %.3f M "
	       "frames/s, deliveries %.3f M/s (%.2f per published message)\n",
	       mps / 1e6, r->sent_msgs, r->tx_refused, (double)r->rx_frames / r->secs / 1e6, dps / 1e6,
	       r->sent_msgs ? (double)r->deliveries / (double)r->sent_msgs : 0.0);
	if (r->each.count) {
		printf("latency per delivery:  ");
		rly_hist_print(stdout, &r->each, 1000.0, "us");
		printf("\nfan-out latency (to last subscriber): ");
		rly_hist_print(stdout, &r->last, 1000.0, "us");
		printf("\ncomplete probe messages (every %u-th sequence number): %" PRIu64 " of %" PRIu64
		       "\n", opt.sample, r->completed, r->window_msgs);
	}
	if (opt.json) {
		printf("{\"label\":\"%s\",\"mode\":\"%s\",\"subs\":%u,\"size\":%u,\"per_dgram\":%u,"
		       "\"paced_rate\":%.0f,\"pub_msgs_s\":%.0f,\"deliveries_s\":%.0f,\"rx_frames_s\":%.0f,"
		       "\"tx_refused\":%" PRIu64 ",\"complete\":%" PRIu64 ",\"window_msgs\":%" PRIu64,
		       opt.label, opt.reflect ? "reflect" : "relay", opt.subs, opt.size, opt.per_dgram,
		       opt.rate, mps, dps, (double)r->rx_frames / r->secs, r->tx_refused, r->completed,
		       r->window_msgs);
		if (r->last.count)
			printf(",\"fanout_us\":{\"p50\":%.2f,\"p99\":%.2f,\"p999\":%.2f,\"max\":%.2f},"
			       "\"each_us\":{\"p50\":%.2f,\"p99\":%.2f}",
			       rly_hist_percentile(&r->last, 50) / 1e3,
			       rly_hist_percentile(&r->last, 99) / 1e3,
			       rly_hist_percentile(&r->last, 99.9) / 1e3, r->last.max / 1e3,
			       rly_hist_percentile(&r->each, 50) / 1e3,
			       rly_hist_percentile(&r->each, 99) / 1e3);
		printf("}\n");
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct results res;
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
	/* The bench driver waits for this line to time its own sampling of the relay. */
	printf("ready: measuring in %.1f s for %.1f s\n", opt.warmup, opt.duration);
	fflush(stdout);
	build_template();
	run(&res);
	report(&res);
	rte_eth_dev_stop(0);
	rte_eal_cleanup();
	return 0;
}
