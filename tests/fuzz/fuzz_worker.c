/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the dataplane's receive path (issue 6): the real worker loop turn
 * (dataplane/worker.c classify, fanout.c, repair.c answering NAKs from the history) on a net_ring
 * port, with the real manager applying subscriptions, one worker, the harness driving both.
 *
 * The input is a script of events, each a kind byte and its arguments (missing bytes read zero):
 *   RAW     a frame of the input's bytes, as they are (Ethernet and up)
 *   WRAP    the input's bytes as the UDP payload of a well-formed frame to the relay (good IPv4
 *           and UDP checksums), from one of 4 sources: the parser, NAK and GAP paths see it
 *   DATA    1-4 data messages of one of 3 publisher chains on one of 2 streams, sequence numbers
 *           going on from the chain's last (with jumps and repeats), from the publisher's source
 *   NAK     a valid NAK (1-8 ranges near the chain's highest, or anywhere) from a subscriber or
 *           a stranger
 *   SUB     subscribe or unsubscribe one of the 4 sources on one of the streams (SUB_ADD/SUB_DEL)
 *   CLOCK   the worker's clock moves (the repair budgets refill, the holdoff passes)
 *   RECLAIM the dedup table's idle chains reclaimed (their history slots freed)
 * After every event the worker runs until its rx ring is empty and the harness takes what it sent.
 * Checks: every frame sent parses as Ethernet/IPv4/UDP from the relay with right checksums and a
 * datagram rly_wire_parse accepts; a repair (ttl bit 7) or a GAP goes only to a source that is a
 * subscriber of its stream at that moment, and only after that source sent a NAK in the same
 * event; every repaired message is byte for byte the message the harness published with that
 * (chain, seq); rx_pkts counts every frame; no mbuf is leaked (the pool's use returns to its
 * level after the worker's stash is counted); no crash, no undefined behaviour (the target is
 * built with ASan and UBSan).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_malloc.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <urcu-qsbr.h>

#include "common/shm.h"
#include "dataplane/manager.h"
#include "dataplane/worker.h"
#include "fuzz_input.h"
#include "relay/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_worker: " __VA_ARGS__);                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define RELAY_IP 0xc6120001u /* 198.18.0.1 */
#define N_SRC 4u	     /* 10.0.0.1..4 : 5001..5004 */
#define N_CHAINS 3u
#define N_STREAMS 2u
#define MAX_EVENTS 64u
#define MAX_SEQ 4096u

enum kind { K_RAW, K_WRAP, K_DATA, K_NAK, K_SUB, K_CLOCK, K_RECLAIM, K_MAX };

static struct {
	int ready;
	struct rte_mempool *pool;
	struct rte_ring *rx, *tx;
	uint16_t port;
	struct rte_ether_addr mac;
	struct rly_shm shm;
	struct rly_dp_config cfg;
	struct rly_dedup dedup;
	struct rly_worker *w;
	struct rly_manager mgr;
	struct rly_subtable *table;
	uint32_t cmd_seq;
	uint64_t clock;
	unsigned base_in_use;
} G;

/* Per input. */
static struct {
	uint64_t seq[N_CHAINS];	 /* last seq published per chain */
	int subscribed[N_STREAMS][N_SRC];
	int nak_from[N_SRC];	 /* sent a NAK in the current event */
	uint64_t frames;
	/* what the harness published: (chain, seq) -> payload length and fill byte */
	uint16_t len[N_CHAINS][MAX_SEQ];
	uint8_t fill[N_CHAINS][MAX_SEQ];
	uint8_t stream_of[N_CHAINS];
} T;

static void key_of(unsigned stream, uint8_t key[RLY_STREAM_KEY_LEN])
{
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		key[i] = (uint8_t)(0x40 + stream * 16 + i);
}

static void pub_of(unsigned chain, uint8_t pk[RLY_ID_LEN])
{
	memset(pk, 0x70 + (int)chain, RLY_ID_LEN);
}

static struct rly_endpoint ep_of(unsigned src)
{
	struct rly_endpoint ep;

	memset(&ep, 0, sizeof(ep));
	ep.ip_be = htonl(0x0a000001u + src);
	ep.udp_port_be = htons((uint16_t)(5001 + src));
	ep.mac[0] = 2;
	ep.mac[5] = (uint8_t)(src + 1);
	return ep;
}

static unsigned cmd(uint16_t op, unsigned stream, const struct rly_endpoint *ep)
{
	struct rly_cmd c;
	struct rly_event ev;

	memset(&c, 0, sizeof(c));
	c.op = op;
	c.seq = ++G.cmd_seq;
	key_of(stream, c.stream_key);
	c.ep = *ep;
	CHECK(rte_ring_sp_enqueue_elem(rly_shm_cmd_ring(&G.shm), &c, sizeof(c)) == 0, "cmd ring");
	rly_manager_poll_once(&G.mgr);
	CHECK(rte_ring_sc_dequeue_elem(rly_shm_event_ring(&G.shm), &ev, sizeof(ev)) == 0,
	      "no answer from the manager");
	return ev.status;
}

/* The shm object lives as long as the process: removed at exit, and objects of fuzz_worker
 * processes that died without exiting (a crash) are swept when the next one starts. */
static char shm_name[64];

static void unlink_shm_at_exit(void)
{
	if (shm_name[0])
		shm_unlink(shm_name);
}

static void sweep_stale_objects(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		struct rly_shm old;
		if (strncmp(e->d_name, "relay.fzw", 9) != 0)
			continue;
		if (rly_shm_attach(&old, e->d_name + 6, 0) == -ESRCH) {
			char name[300];
			snprintf(name, sizeof(name), "/%s", e->d_name);
			shm_unlink(name);
		} else if (old.base) {
			rly_shm_close(&old);
		}
	}
	closedir(d);
}

static void init_once(void)
{
	char *argv[] = {"fuzz_worker", "-l", "0", "--no-huge", "-m", "256", "--no-pci",
			"--no-shconf", "--log-level=error", "--no-telemetry", NULL};
	struct rte_eth_conf conf;
	struct rly_shm_sizes z = {.n_workers = 1, .cmd_slots = 256, .event_slots = 256,
				  .punt_slots = 256, .tx_slots = 64, .dedup_chains = 16,
				  .dedup_window = 64, .hist_chains = 4, .hist_index = 1024,
				  .hist_bytes = 16384};
	char inst[32];
	int port;

	if (G.ready)
		return;
	CHECK(rte_eal_init(10, argv) >= 0, "rte_eal_init");
	G.pool = rte_pktmbuf_pool_create("fz_pool", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	G.rx = rte_ring_create("fz_rx", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	G.tx = rte_ring_create("fz_tx", 8192, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	CHECK(G.pool && G.rx && G.tx, "pool and rings");
	port = rte_eth_from_rings("fz_port", &G.rx, 1, &G.tx, 1, 0);
	CHECK(port == 0, "net_ring port 0");
	G.port = (uint16_t)port;
	memset(&conf, 0, sizeof(conf));
	CHECK(rte_eth_dev_configure(0, 1, 1, &conf) == 0 &&
		  rte_eth_rx_queue_setup(0, 0, 1024, 0, NULL, G.pool) == 0 &&
		  rte_eth_tx_queue_setup(0, 0, 1024, 0, NULL) == 0 && rte_eth_dev_start(0) == 0,
	      "port start");
	rte_eth_macaddr_get(0, &G.mac);
	snprintf(inst, sizeof(inst), "fzw%d", getpid());
	sweep_stale_objects();
	CHECK(rly_shm_create(&G.shm, inst, &z) == 0, "shm");
	snprintf(shm_name, sizeof(shm_name), "%s", G.shm.name);
	atexit(unlink_shm_at_exit);
	G.cfg.ip_be = htonl(RELAY_IP);
	G.cfg.udp_port_be = htons(RLY_WIRE_DEFAULT_PORT);
	G.cfg.dgram_max = 1472;
	G.cfg.n_ports = 1;
	G.cfg.batch = 1;
	G.cfg.port_chain[0] = 1;
	G.cfg.chain_min = 64;
	G.cfg.drain_tsc = 1;
	G.cfg.port_mac[0] = G.mac;
	G.cfg.punt_rate = 0;
	CHECK(rly_dedup_init(&G.dedup, rly_shm_dedup_chain(&G.shm, 0), 16, 64, 1000000, 1000000) ==
		  0,
	      "dedup");
	rly_hist_view(&G.dedup.hist, rly_shm_hist_base(&G.shm), 4, 1024, 16384);
	G.cfg.dedup = &G.dedup;
	G.cfg.track_all = 1;
	G.cfg.hist_retry_tsc = 1000000;
	G.cfg.repair_bytes_s = 100000;
	G.cfg.repair_burst = 8192;
	G.cfg.slow_cut_tsc = 50000000;
	G.cfg.nak_holdoff_tsc = 1000000;
	rly_hdr_tmpl_init(&G.cfg.tmpl[0], &G.mac, G.cfg.ip_be, G.cfg.udp_port_be);
	G.table = rly_subtable_create(16, 16);
	CHECK(G.table != NULL, "table");
	rcu_register_thread();
	G.w = rte_zmalloc("fz_w", sizeof(*G.w), 64);
	CHECK(G.w && rly_worker_init(G.w, 0, &G.cfg, G.table, G.pool, rly_shm_ctr(&G.shm, 0),
				     rly_shm_punt_ring(&G.shm, 0), rly_shm_tx_ring(&G.shm), 0) == 0,
	      "worker");
	rly_manager_init(&G.mgr, G.table, rly_shm_cmd_ring(&G.shm), rly_shm_event_ring(&G.shm),
			 rly_shm_ctr(&G.shm, 1), rly_shm_hdr(&G.shm), 1);
	G.clock = 1000000000ull;
	G.ready = 1;
}

/* A frame from 10.0.0.(src+1):(5001+src) to the relay carrying @p len bytes of UDP payload. */
static struct rte_mbuf *frame(unsigned src, const void *payload, uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(G.pool);
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;

	CHECK(m != NULL, "pool empty in the harness");
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)(42 + len));
	CHECK(eth != NULL, "frame too long");
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	udp = (struct rte_udp_hdr *)(ip + 1);
	eth->dst_addr = G.mac;
	memset(&eth->src_addr, 0, sizeof(eth->src_addr));
	eth->src_addr.addr_bytes[0] = 2;
	eth->src_addr.addr_bytes[5] = (uint8_t)(src + 1);
	eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = htons((uint16_t)(28 + len));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = ep_of(src).ip_be;
	ip->dst_addr = G.cfg.ip_be;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = ep_of(src).udp_port_be;
	udp->dst_port = G.cfg.udp_port_be;
	udp->dgram_len = htons((uint16_t)(8 + len));
	udp->dgram_cksum = 0;
	memcpy(udp + 1, payload, len);
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	return m;
}

static void inject(struct rte_mbuf *m)
{
	CHECK(rte_ring_enqueue(G.rx, m) == 0, "rx ring full");
	T.frames++;
}

/* What the relay sent back: each frame checked, repairs checked against what was published. */
static void collect(void)
{
	struct rte_mbuf *out[64];
	unsigned n;

	while ((n = rte_ring_dequeue_burst(G.tx, (void **)out, 64, NULL)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			uint8_t buf[2048];
			const uint8_t *p;
			const struct rte_ipv4_hdr *ip;
			const struct rte_udp_hdr *udp;
			struct rly_wire_view v;
			uint32_t len = rte_pktmbuf_pkt_len(out[i]);
			unsigned dst_src;

			CHECK(len <= sizeof(buf), "frame of %u bytes", len);
			p = rte_pktmbuf_read(out[i], 0, len, buf);
			CHECK(p != NULL, "unreadable frame");
			if (((const struct rte_ether_hdr *)p)->ether_type == htons(RTE_ETHER_TYPE_ARP)) {
				rte_pktmbuf_free(out[i]);
				continue;
			}
			CHECK(len >= 42, "runt frame sent");
			ip = (const struct rte_ipv4_hdr *)(p + 14);
			udp = (const struct rte_udp_hdr *)(ip + 1);
			memcpy(buf, p, len);
			{
				struct rte_ipv4_hdr *cip = (struct rte_ipv4_hdr *)(buf + 14);
				struct rte_udp_hdr *cudp = (struct rte_udp_hdr *)(cip + 1);
				uint16_t ic = cip->hdr_checksum, uc = cudp->dgram_cksum;
				cip->hdr_checksum = 0;
				CHECK(rte_ipv4_cksum(cip) == ic, "bad IPv4 checksum sent");
				cudp->dgram_cksum = 0;
				CHECK(uc == 0 || rte_ipv4_udptcp_cksum(cip, cudp) == uc,
				      "bad UDP checksum sent");
			}
			CHECK(ip->src_addr == G.cfg.ip_be && udp->src_port == G.cfg.udp_port_be,
			      "sent from another address");
			CHECK(rly_wire_parse(p + 42, len - 42, RLY_WIRE_MAX_DGRAM, &v) ==
				  RLY_WIRE_ERR_OK,
			      "sent a datagram the parser refuses");
			dst_src = ntohl(ip->dst_addr) - 0x0a000001u;
			if (v.type == RLY_MSG_GAP) {
				const struct rly_wire_gap *g = (const void *)v.body;
				unsigned stream = g->stream_key[0] == 0x40 ? 0 : 1;
				CHECK(dst_src < N_SRC && T.nak_from[dst_src] &&
					      T.subscribed[stream][dst_src],
				      "a GAP to source %u (stream %u) that asked nothing (%d) or subscribes to nothing (%d)",
				      dst_src, stream, dst_src < N_SRC ? T.nak_from[dst_src] : -1,
				      dst_src < N_SRC ? T.subscribed[stream][dst_src] : -1);
			} else if (v.type == RLY_MSG_DATA) {
				const struct rly_wire_msg_hdr *h;
				size_t off = 0;
				while ((h = rly_wire_next_msg(&v, &off)) != NULL) {
					unsigned c = h->publisher[0] - 0x70u;
					uint64_t seq = rly_be64_load(&h->seq);
					if (!(h->ttl & RLY_TTL_F_REPAIR) || c >= N_CHAINS)
						continue;
					CHECK(dst_src < N_SRC && T.nak_from[dst_src] &&
						      T.subscribed[T.stream_of[c] % N_STREAMS][dst_src],
					      "a repair to a source that did not ask");
					CHECK(c < N_CHAINS && seq >= 1 && seq < MAX_SEQ &&
						      T.len[c][seq] == rly_be16_load(&h->payload_len),
					      "repaired chain %u seq %llu was never published like this", c,
					      (unsigned long long)seq);
					for (unsigned b = 0; b < T.len[c][seq]; b++)
						CHECK(((const uint8_t *)(h + 1))[b] == T.fill[c][seq],
						      "repaired payload differs");
				}
			}
			rte_pktmbuf_free(out[i]);
		}
	}
}

static void run(void)
{
	for (int turn = 0; turn < 64 && rte_ring_count(G.rx); turn++) {
		rly_worker_poll_once(G.w);
		rcu_quiescent_state();
	}
	rly_worker_flush(G.w);
	collect();
}

static void ev_data(void)
{
	uint8_t buf[1500], sel = u8();
	unsigned c = sel % N_CHAINS, n = 1 + (sel >> 2) % 4, src = (sel >> 4) % N_SRC;
	size_t off = sizeof(struct rly_wire_dgram_hdr);

	for (unsigned i = 0; i < n; i++) {
		struct rly_wire_msg_hdr *h = (struct rly_wire_msg_hdr *)(buf + off);
		uint8_t step = u8();
		uint64_t seq = T.seq[c] + (step & 0x80 ? 0 : 1 + step % 8); /* repeats and jumps */
		uint16_t plen = (uint16_t)(u8() % 200);

		if (seq == 0 || seq >= MAX_SEQ || off + sizeof(*h) + plen > sizeof(buf))
			break;
		memset(h, 0, sizeof(*h));
		key_of(T.stream_of[c], h->stream_key);
		rly_be32_store(&h->chain, 100 + c);
		pub_of(c, h->publisher);
		rly_be64_store(&h->seq, seq);
		rly_be64_store(&h->prev_seq, seq - 1);
		rly_be16_store(&h->payload_len, plen);
		/* A seq published again carries the same bytes, as a publisher's retransmit would. */
		if (T.len[c][seq] == 0 && seq > T.seq[c]) {
			T.len[c][seq] = plen;
			T.fill[c][seq] = (uint8_t)(seq * 7 + c);
		}
		plen = T.len[c][seq];
		rly_be16_store(&h->payload_len, plen);
		memset(h + 1, T.fill[c][seq], plen);
		off += sizeof(*h) + plen;
		if (seq > T.seq[c])
			T.seq[c] = seq;
		if (i + 1 == n)
			break;
	}
	if (off == sizeof(struct rly_wire_dgram_hdr))
		return;
	{
		size_t k = sizeof(struct rly_wire_dgram_hdr);
		unsigned count = 0;
		while (k < off) {
			k += rly_wire_msg_size((const struct rly_wire_msg_hdr *)(buf + k));
			count++;
		}
		rly_wire_put_dgram_hdr(buf, RLY_MSG_DATA, (uint16_t)off, (uint16_t)count);
	}
	inject(frame(src, buf, (uint16_t)off));
}

static void ev_nak(void)
{
	struct rly_wire_nak b;
	uint8_t buf[256], sel = u8(), n = 1 + u8() % RLY_NAK_RANGES;
	unsigned c = sel % N_CHAINS, src = (sel >> 2) % N_SRC;
	uint64_t at = (sel & 0x40) ? (T.seq[c] > 64 ? T.seq[c] - 64 : 1) : 1 + u16() % MAX_SEQ;
	int len;

	memset(&b, 0, sizeof(b));
	key_of(T.stream_of[c], b.stream_key);
	rly_be32_store(&b.chain, 100 + c + ((sel & 0x80) ? 7 : 0)); /* sometimes an unknown chain */
	pub_of(c, b.publisher);
	rly_be64_store(&b.request_id, 1 + sel);
	b.n = n;
	for (unsigned i = 0; i < n; i++) {
		uint64_t from = at + u8() % 16, to = from + u8() % 64;
		rly_be64_store(&b.r[i].from_seq, from);
		rly_be64_store(&b.r[i].to_seq, to);
		at = to + 1;
	}
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_NAK, &b);
	CHECK(len > 0, "nak");
	T.nak_from[src] = 1;
	inject(frame(src, buf, (uint16_t)len));
}

static void ev_sub(void)
{
	uint8_t sel = u8();
	unsigned stream = sel % N_STREAMS, src = (sel >> 1) % N_SRC;
	struct rly_endpoint ep = ep_of(src);
	unsigned st = cmd((sel & 0x80) ? RLY_CMD_SUB_DEL : RLY_CMD_SUB_ADD, stream, &ep);

	if (st == RLY_CMD_OK || st == RLY_CMD_EXISTS)
		T.subscribed[stream][src] = !(sel & 0x80);
	else if (st == RLY_CMD_NOT_FOUND)
		T.subscribed[stream][src] = 0;
	rly_subtable_reclaim(G.table);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned in_use;

	init_once();
	memset(&T, 0, sizeof(T));
	fz_begin(data, size);
	for (unsigned c = 0; c < N_CHAINS; c++)
		T.stream_of[c] = (uint8_t)(c % N_STREAMS);
	/* Every input starts from an empty table and a fresh dedup region and history. */
	for (unsigned s = 0; s < N_STREAMS; s++)
		for (unsigned i = 0; i < N_SRC; i++) {
			struct rly_endpoint ep = ep_of(i);
			(void)cmd(RLY_CMD_SUB_DEL, s, &ep);
		}
	rly_subtable_reclaim(G.table);
	G.clock += 3600ull * 1000000000ull;
	G.w->test_clock = G.clock;
	G.dedup.next_scan = 0;
	G.dedup.idle_tsc = 1;
	rly_dedup_reclaim(&G.dedup, G.clock);
	G.dedup.idle_tsc = 1000000000ull;
	memset(&G.w->repair.slot, 0, sizeof(G.w->repair.slot));
	rly_repair_init(&G.w->repair, G.cfg.repair_bytes_s, G.cfg.repair_burst, 1000000000ull, 7);
	if (G.base_in_use == 0)
		G.base_in_use = rte_mempool_in_use_count(G.pool) - G.w->n_stash;
	for (unsigned i = 0; i < N_SRC; i++)
		T.subscribed[0][i] = T.subscribed[1][i] = 0;

	for (unsigned e = 0; e < MAX_EVENTS && fz_left > 0; e++) {
		uint64_t before = rly_shm_ctr_sum(&G.shm, RLY_CTR_RX_PKTS);

		memset(T.nak_from, 0, sizeof(T.nak_from));
		T.frames = 0;
		switch (u8() % K_MAX) {
		case K_RAW: {
			uint8_t b[600];
			uint16_t len = (uint16_t)(14 + u8() * 2);
			struct rte_mbuf *m = rte_pktmbuf_alloc(G.pool);
			take(b, len);
			CHECK(m && rte_pktmbuf_append(m, len), "raw frame");
			memcpy(rte_pktmbuf_mtod(m, void *), b, len);
			inject(m);
			break;
		}
		case K_WRAP: {
			uint8_t b[600], sel = u8();
			uint16_t len = (uint16_t)(u8() * 2);
			struct rly_wire_view v;
			take(b, len);
			if (len >= 8 && (sel & 1)) /* an honest relay header on the random body */
				rly_wire_put_dgram_hdr(b, b[3], len, 1);
			if ((sel & 2) && len >= 8 + sizeof(struct rly_wire_nak)) {
				/* a NAK body of the input's bytes: reaches repair.c's checks */
				len = 8 + sizeof(struct rly_wire_nak);
				rly_wire_put_dgram_hdr(b, RLY_MSG_NAK, len, 1);
			}
			/* Well-formed data from here would be forwarded as it is, ttl bits and all:
			 * DATA events publish, this one looks for what the parser lets through. */
			if (rly_wire_parse(b, len, RLY_WIRE_MAX_DGRAM, &v) == RLY_WIRE_ERR_OK &&
			    v.type == RLY_MSG_DATA)
				break;
			T.nak_from[(sel >> 2) % N_SRC] = 1;
			inject(frame((sel >> 2) % N_SRC, b, len));
			break;
		}
		case K_DATA:
			ev_data();
			break;
		case K_NAK:
			ev_nak();
			break;
		case K_SUB:
			ev_sub();
			break;
		case K_CLOCK:
			G.clock += (uint64_t)u16() * 100000ull;
			G.w->test_clock = G.clock;
			break;
		case K_RECLAIM:
			G.dedup.next_scan = 0;
			G.dedup.idle_tsc = 1;
			rly_dedup_reclaim(&G.dedup, G.clock + 2);
			G.dedup.idle_tsc = 1000000000ull;
			break;
		}
		run();
		CHECK(rly_shm_ctr_sum(&G.shm, RLY_CTR_RX_PKTS) - before == T.frames,
		      "rx_pkts moved by %llu for %llu frames",
		      (unsigned long long)(rly_shm_ctr_sum(&G.shm, RLY_CTR_RX_PKTS) - before),
		      (unsigned long long)T.frames);
		/* The punt ring (SUBSCRIBEs and the like in WRAP) is relay-control's: empty it. */
		{
			struct rly_pkt_rec rec;
			while (rte_ring_sc_dequeue_elem(rly_shm_punt_ring(&G.shm, 0), &rec,
							sizeof(rec)) == 0)
				;
		}
	}
	in_use = rte_mempool_in_use_count(G.pool) - G.w->n_stash;
	CHECK(in_use == G.base_in_use, "%u mbufs in use after the input, %u before", in_use,
	      G.base_in_use);
	return 0;
}
