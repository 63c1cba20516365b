/* SPDX-License-Identifier: Apache-2.0 */
#include "dp_harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <sys/mman.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_ring_elem.h>

#include "common/err.h"
#include "relay/wire.h"

unsigned h_tx_ring_slots = 16384;
unsigned h_chain_min = 0;
unsigned h_punt_rate = 0, h_punt_burst = 0;
unsigned h_dedup_chains = 64, h_dedup_window = 64;
unsigned h_hist_chains = 8, h_hist_index = 1024, h_hist_bytes = 65536;
unsigned h_repair_kbs = 0, h_repair_burst_kb = 64, h_slow_cut_ms = 0, h_nak_holdoff_us = 0;

static void eal_init(void)
{
	char *argv[] = {"test", "-l", "0", "--no-huge", "-m", "256", "--no-pci", "--no-shconf",
			"--log-level=error", "--no-telemetry", NULL};
	int rc = rte_eal_init(10, argv);
	cr_assert(rc >= 0, "rte_eal_init failed");
}

static char shm_name[64];

/* A failed assertion ends the test process before h_teardown: remove our object anyway. */
static void unlink_shm_at_exit(void)
{
	if (shm_name[0])
		shm_unlink(shm_name);
}

/* Objects left by test processes that died (crashed) before their exit handlers ran. */
static void sweep_stale_test_objects(void)
{
	DIR *d = opendir("/dev/shm");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		struct rly_shm old;
		if (strncmp(e->d_name, "relay.test", 10) != 0)
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

void h_setup(struct harness *h, uint16_t n_queues, int batch, uint16_t mtu)
{
	struct rte_eth_conf conf;
	struct rly_shm_sizes z = {.n_workers = n_queues,
				  .cmd_slots = 1024,
				  .event_slots = 1024,
				  .punt_slots = 256,
				  .tx_slots = 256,
				  .dedup_chains = h_dedup_chains,
				  .dedup_window = h_dedup_window,
				  .hist_chains = h_dedup_chains ? h_hist_chains : 0,
				  .hist_index = h_hist_index,
				  .hist_bytes = h_hist_bytes};
	char name[32], inst[32];
	int port;

	memset(h, 0, sizeof(*h));
	eal_init();
	h->n_queues = n_queues;
	h->pool = rte_pktmbuf_pool_create("h_pool", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	cr_assert(h->pool, "mbuf pool");
	for (uint16_t q = 0; q < n_queues; q++) {
		snprintf(name, sizeof(name), "h_rx%u", q);
		h->rx[q] = rte_ring_create(name, 16384, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
		snprintf(name, sizeof(name), "h_tx%u", q);
		h->tx[q] = rte_ring_create(name, h_tx_ring_slots, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
		cr_assert(h->rx[q] && h->tx[q]);
	}
	port = rte_eth_from_rings("h_port", h->rx, n_queues, h->tx, n_queues, 0);
	cr_assert(port >= 0, "rte_eth_from_rings");
	h->port = (uint16_t)port;
	cr_assert_eq(h->port, 0, "the relay numbers its ports from 0");
	memset(&conf, 0, sizeof(conf));
	cr_assert(rte_eth_dev_configure(h->port, n_queues, n_queues, &conf) == 0);
	for (uint16_t q = 0; q < n_queues; q++) {
		cr_assert(rte_eth_rx_queue_setup(h->port, q, 1024, 0, NULL, h->pool) == 0);
		cr_assert(rte_eth_tx_queue_setup(h->port, q, 1024, 0, NULL) == 0);
	}
	cr_assert(rte_eth_dev_start(h->port) == 0);
	rte_eth_macaddr_get(h->port, &h->relay_mac);

	snprintf(inst, sizeof(inst), "test%d", getpid());
	sweep_stale_test_objects();
	cr_assert(rly_shm_create(&h->shm, inst, &z) == 0, "%s", rly_err_msg());
	snprintf(shm_name, sizeof(shm_name), "%s", h->shm.name);
	atexit(unlink_shm_at_exit);

	inet_pton(AF_INET, H_RELAY_IP, &h->cfg.ip_be);
	h->cfg.udp_port_be = htons(H_RELAY_PORT);
	h->cfg.dgram_max = (uint16_t)RLY_WIRE_DGRAM_FOR_MTU(mtu);
	h->cfg.n_ports = 1;
	h->cfg.batch = (uint8_t)batch;
	h->cfg.chain_min = h_chain_min;
	h->cfg.punt_rate = h_punt_rate;
	h->cfg.punt_burst = h_punt_burst;
	h->cfg.port_chain[0] = 1;
	h->cfg.drain_tsc = rte_get_tsc_hz() / 10000; /* 100 us */
	h->cfg.port_mac[0] = h->relay_mac;
	if (h_dedup_chains) {
		cr_assert(rly_dedup_init(&h->dedup, rly_shm_dedup_chain(&h->shm, 0), h_dedup_chains,
					 h_dedup_window, rte_get_tsc_hz() / 1000 * H_DEDUP_IDLE_MS,
					 rte_get_tsc_hz()) == 0);
		rly_hist_view(&h->dedup.hist, rly_shm_hist_base(&h->shm), z.hist_chains, h_hist_index,
			      h_hist_bytes);
		h->cfg.dedup = &h->dedup;
		h->cfg.track_all = h->dedup.hist.base != NULL;
	}
	h->cfg.hist_retry_tsc = rte_get_tsc_hz();
	h->cfg.repair_bytes_s = (uint64_t)h_repair_kbs << 10;
	h->cfg.repair_burst = (uint64_t)h_repair_burst_kb << 10;
	h->cfg.slow_cut_tsc = rte_get_tsc_hz() / 1000 * h_slow_cut_ms;
	h->cfg.nak_holdoff_tsc = rte_get_tsc_hz() / 1000000 * h_nak_holdoff_us;
	rly_hdr_tmpl_init(&h->cfg.tmpl[0], &h->relay_mac, h->cfg.ip_be, h->cfg.udp_port_be);

	h->table = rly_subtable_create(64, 64);
	cr_assert(h->table);
	rcu_register_thread();
	for (uint16_t q = 0; q < n_queues; q++) {
		h->w[q] = rte_zmalloc("h_worker", sizeof(struct rly_worker), 64);
		cr_assert(h->w[q]);
		cr_assert(rly_worker_init(h->w[q], q, &h->cfg, h->table, h->pool,
					  rly_shm_ctr(&h->shm, q), rly_shm_punt_ring(&h->shm, q),
					  q == 0 ? rly_shm_tx_ring(&h->shm) : NULL, 0) == 0);
	}
	h->clock = rte_rdtsc();
	rly_manager_init(&h->mgr, h->table, rly_shm_cmd_ring(&h->shm), rly_shm_event_ring(&h->shm),
			 rly_shm_ctr(&h->shm, RLY_CTR_BLOCK_MANAGER(n_queues)), rly_shm_hdr(&h->shm),
			 1);
	h_advance_ms(h, 0);
	/* The manager walks the table on the real clock (so it reclaims nothing: the idle time is a
	 * minute) and keeps the gauge; tests reclaim on the harness clock with h_reclaim. */
	h->mgr.dedup = h_dedup_chains ? &h->dedup : NULL;
}

void h_advance_ms(struct harness *h, uint64_t ms)
{
	h->clock += rte_get_tsc_hz() / 1000 * ms;
	for (uint16_t q = 0; q < h->n_queues; q++)
		h->w[q]->test_clock = h->clock;
}

uint64_t h_now(struct harness *h)
{
	return h->clock;
}

unsigned h_reclaim(struct harness *h)
{
	h->dedup.next_scan = 0; /* the scan interval is the manager's business, not the test's */
	return rly_dedup_reclaim(&h->dedup, h_now(h));
}

unsigned h_punts(struct harness *h, uint16_t q, struct rly_pkt_rec *out, unsigned max,
		 unsigned flags_count[4])
{
	struct rte_ring *r = rly_shm_punt_ring(&h->shm, q);
	struct rly_pkt_rec scratch;
	unsigned n = 0;

	if (flags_count)
		memset(flags_count, 0, 4 * sizeof(unsigned));
	while (rte_ring_sc_dequeue_elem(r, n < max ? &out[n] : &scratch, sizeof(scratch)) == 0) {
		const struct rly_pkt_rec *rec = n < max ? &out[n] : &scratch;
		for (unsigned b = 0; b < 4 && flags_count; b++)
			flags_count[b] += (rec->flags >> b) & 1u;
		if (n < max)
			n++;
	}
	return n;
}

void h_teardown(struct harness *h)
{
	for (uint16_t q = 0; q < h->n_queues; q++) {
		rly_worker_close(h->w[q]);
		rte_free(h->w[q]);
	}
	rly_subtable_free(h->table);
	rcu_unregister_thread();
	rly_shm_close(&h->shm);
	rte_eth_dev_stop(h->port);
	rte_eth_dev_close(h->port);
	rte_eal_cleanup();
}

void h_key(uint8_t key[RLY_STREAM_KEY_LEN], unsigned n)
{
	memset(key, 0, RLY_STREAM_KEY_LEN);
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		key[i] = (uint8_t)(0x5a ^ (n * 31u + i * 7u));
}

struct rly_endpoint h_ep(unsigned n, uint16_t udp_port)
{
	struct rly_endpoint ep;
	memset(&ep, 0, sizeof(ep));
	ep.ip_be = htonl(0x0a000000u | n);
	ep.udp_port_be = htons(udp_port);
	ep.port_id = 0;
	ep.mac[0] = 0x02;
	ep.mac[5] = (uint8_t)n;
	return ep;
}

unsigned h_cmd(struct harness *h, uint16_t op, const uint8_t *key, uint32_t partition,
	       const struct rly_endpoint *ep)
{
	struct rly_cmd c;
	struct rly_event ev;

	memset(&c, 0, sizeof(c));
	c.op = op;
	c.seq = ++h->cmd_seq;
	if (key)
		memcpy(c.stream_key, key, RLY_STREAM_KEY_LEN);
	c.partition = partition;
	if (ep)
		c.ep = *ep;
	cr_assert(rte_ring_sp_enqueue_elem(rly_shm_cmd_ring(&h->shm), &c, sizeof(c)) == 0);
	rly_manager_poll_once(&h->mgr);
	cr_assert(rte_ring_sc_dequeue_elem(rly_shm_event_ring(&h->shm), &ev, sizeof(ev)) == 0,
		  "manager answered nothing");
	cr_assert_eq(ev.op, RLY_EV_DONE);
	cr_assert_eq(ev.seq, c.seq);
	return ev.status;
}

unsigned h_admit(struct harness *h, uint16_t op, const uint8_t *key, uint32_t flags,
		 const uint8_t *pk)
{
	struct rly_cmd c;
	struct rly_event ev;

	memset(&c, 0, sizeof(c));
	c.op = op;
	c.seq = ++h->cmd_seq;
	if (key)
		memcpy(c.stream_key, key, RLY_STREAM_KEY_LEN);
	c.partition = flags;
	if (pk)
		memcpy(c.publisher, pk, RLY_ID_LEN);
	cr_assert(rte_ring_sp_enqueue_elem(rly_shm_cmd_ring(&h->shm), &c, sizeof(c)) == 0);
	rly_manager_poll_once(&h->mgr);
	cr_assert(rte_ring_sc_dequeue_elem(rly_shm_event_ring(&h->shm), &ev, sizeof(ev)) == 0);
	cr_assert_eq(ev.seq, c.seq);
	return ev.status;
}

uint16_t h_build_data(uint8_t *buf, const struct h_msg *msgs, unsigned n)
{
	size_t off = sizeof(struct rly_wire_dgram_hdr);

	for (unsigned i = 0; i < n; i++) {
		struct rly_wire_msg_hdr *m = (struct rly_wire_msg_hdr *)(buf + off);
		memset(m, 0, sizeof(*m));
		memcpy(m->stream_key, msgs[i].key, RLY_STREAM_KEY_LEN);
		rly_be32_store(&m->partition, msgs[i].partition);
		rly_be32_store(&m->chain, msgs[i].chain);
		memset(m->publisher, msgs[i].pub ? msgs[i].pub : 0xab, sizeof(m->publisher));
		rly_be64_store(&m->seq, msgs[i].seq);
		rly_be64_store(&m->prev_seq, msgs[i].seq - 1);
		rly_be64_store(&m->timestamp_ns, 1000000000ull * msgs[i].seq);
		rly_be16_store(&m->payload_len, msgs[i].payload_len);
		memset(buf + off + sizeof(*m), msgs[i].fill, msgs[i].payload_len);
		off += sizeof(*m) + msgs[i].payload_len;
	}
	rly_wire_put_dgram_hdr(buf, RLY_MSG_DATA, (uint16_t)off, (uint16_t)n);
	return (uint16_t)off;
}

struct rte_mbuf *h_frame(struct harness *h, unsigned src, uint16_t sport, const void *payload,
			 uint16_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(h->pool);
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_udp_hdr *udp;

	cr_assert(m);
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)(RLY_HDRS_LEN + len));
	cr_assert(eth);
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	udp = (struct rte_udp_hdr *)(ip + 1);
	eth->dst_addr = h->relay_mac;
	memset(&eth->src_addr, 0, sizeof(eth->src_addr));
	eth->src_addr.addr_bytes[0] = 0x02;
	eth->src_addr.addr_bytes[5] = (uint8_t)src;
	eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = htons((uint16_t)(sizeof(*ip) + sizeof(*udp) + len));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = htonl(0x0a000000u | src);
	ip->dst_addr = h->cfg.ip_be;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = htons(sport);
	udp->dst_port = htons(H_RELAY_PORT);
	udp->dgram_len = htons((uint16_t)(sizeof(*udp) + len));
	udp->dgram_cksum = 0;
	memcpy(udp + 1, payload, len);
	udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
	return m;
}

void h_inject(struct harness *h, uint16_t q, struct rte_mbuf **m, unsigned n)
{
	cr_assert_eq(rte_ring_enqueue_bulk(h->rx[q], (void **)m, n, NULL), n);
}

void h_run(struct harness *h, unsigned max_turns)
{
	for (unsigned t = 0; t < max_turns; t++) {
		unsigned work = 0;
		for (uint16_t q = 0; q < h->n_queues; q++)
			work += rly_worker_poll_once(h->w[q]);
		rcu_quiescent_state();
		if (work == 0)
			break;
	}
	for (uint16_t q = 0; q < h->n_queues; q++)
		rly_worker_flush(h->w[q]);
}

unsigned h_collect(struct harness *h, uint16_t q, struct rte_mbuf **out, unsigned max)
{
	return rte_ring_dequeue_burst(h->tx[q], (void **)out, max, NULL);
}

unsigned h_mbufs_in_use(struct harness *h)
{
	unsigned n = rte_mempool_in_use_count(h->pool);
	for (uint16_t q = 0; q < h->n_queues; q++)
		n -= h->w[q]->n_stash;
	return n;
}

uint64_t h_ctr(struct harness *h, unsigned slot)
{
	return rly_shm_ctr_sum(&h->shm, slot);
}

void h_decode(struct rte_mbuf *m, struct h_out *o)
{
	uint8_t copy[2048];
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip, *cip;
	struct rte_udp_hdr *udp, *cudp;
	uint16_t ip_len, want;
	uint32_t len = rte_pktmbuf_pkt_len(m), seg_sum = 0;

	for (struct rte_mbuf *s = m; s; s = s->next)
		seg_sum += s->data_len;
	cr_assert_eq(seg_sum, len, "pkt_len %u matches the segments' data_len sum %u", len, seg_sum);
	cr_assert_leq(m->nb_segs, 2, "a delivery is one frame, or a header chained to a payload");
	cr_assert_geq(len, RLY_HDRS_LEN);
	cr_assert_leq(len, sizeof(o->frame));
	{
		/* Points into the mbuf when the frame is contiguous, copies into frame[] otherwise. */
		const void *p = rte_pktmbuf_read(m, 0, len, o->frame);
		cr_assert_not_null(p);
		if (p != o->frame)
			memcpy(o->frame, p, len);
	}
	eth = (struct rte_ether_hdr *)o->frame;
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	udp = (struct rte_udp_hdr *)(ip + 1);
	cr_assert_eq(eth->ether_type, htons(RTE_ETHER_TYPE_IPV4));
	cr_assert_eq(ip->version_ihl, RTE_IPV4_VHL_DEF);
	ip_len = ntohs(ip->total_length);
	cr_assert_eq(len, RLY_L2_LEN + ip_len, "frame length matches IP length");
	cr_assert_eq(ntohs(udp->dgram_len), ip_len - sizeof(*ip), "UDP length matches IP length");
	cr_assert_eq(ip->next_proto_id, IPPROTO_UDP);
	cr_assert_eq(ip->fragment_offset & htons(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK), 0);

	/* Checksums recomputed independently, with DPDK's own routines. */
	memcpy(copy, o->frame, len);
	cip = (struct rte_ipv4_hdr *)(copy + RLY_L2_LEN);
	cudp = (struct rte_udp_hdr *)(cip + 1);
	cip->hdr_checksum = 0;
	cr_assert_eq(ip->hdr_checksum, rte_ipv4_cksum(cip), "IPv4 header checksum");
	cudp->dgram_cksum = 0;
	want = rte_ipv4_udptcp_cksum(cip, cudp);
	cr_assert_eq(udp->dgram_cksum, want, "UDP checksum %04x, expected %04x", udp->dgram_cksum,
		     want);

	o->dst_mac = eth->dst_addr;
	o->src_mac = eth->src_addr;
	o->dst_ip = ip->dst_addr;
	o->src_ip = ip->src_addr;
	o->dst_port = udp->dst_port;
	o->src_port = udp->src_port;
	o->payload = (const uint8_t *)(udp + 1);
	o->len = (uint16_t)(ntohs(udp->dgram_len) - sizeof(*udp));
}
