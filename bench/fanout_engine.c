/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fanout-engine: a fixed fan-out workload on the real worker loop, without a NIC or a sink.
 * One worker on a net_ring port, F subscribers of one stream, N published datagrams of one message
 * each, injected 32 at a time and processed by rly_worker_poll_once.
 *
 *   bench/fanout-engine F N SIZE BATCH [BURST [CHAIN_MIN [PEERS]]]
 *     natively: TSC cycles per delivery inside the worker's loop turns (the relay's own capacity,
 *     what a sink that is never the bottleneck would see);
 *   valgrind --tool=callgrind --toggle-collect=rly_worker_poll_once bench/fanout-engine F N SIZE BATCH
 *     instructions per delivery: Ir / the deliveries it prints (repeatable on a noisy machine).
 *
 * PEERS > 0 flags that many of the F endpoints as peer relays: the stream then takes the overlay's
 * path (split horizon, reports). HISTORY (default 1, as a relay runs by default) checks every
 * message against the dedup table and copies it into its chain's history; 0 is --history-chains 0.
 *
 * Only the worker's loop turns count: building input frames and draining the tx ring (a NIC's job)
 * are outside them.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_malloc.h>

#include "common/shm.h"
#include "dataplane/worker.h"

int main(int argc, char **argv)
{
	char *eal[] = {"fanout", "-l", "0", "--no-huge", "-m", "512", "--no-pci", "--no-shconf",
		       "--log-level=error", "--no-telemetry", NULL};
	struct rte_ring *rxr, *txr;
	struct rte_eth_conf conf = {0};
	struct rly_dp_config cfg = {0};
	struct rly_shm shm;
	struct rly_shm_sizes z = {.n_workers = 1, .cmd_slots = 64, .event_slots = 64,
				  .punt_slots = 64, .tx_slots = 64, .dedup_chains = 64,
				  .dedup_window = 1024, .hist_chains = 4, .hist_index = 1u << 17,
				  .hist_bytes = 16u << 20};
	struct rly_dedup dedup;
	struct rte_mempool *pool;
	struct rly_subtable *t;
	struct rly_worker *w;
	struct rte_ether_addr mac;
	unsigned subs, n, size, batch, burst = 32, chain_min = 512, peers = 0, hist = 1;
	uint8_t frame[2048], key[16];
	uint64_t deliveries, cycles = 0;
	char inst[32];

	if (argc < 5 || argc > 9) {
		fprintf(stderr, "usage: fanout-engine SUBS DATAGRAMS PAYLOAD BATCH(0|1) [BURST(1-32) "
				"[CHAIN_MIN_BYTES [PEERS [HISTORY(0|1)]]]]\n");
		return 2;
	}
	if (argc > 8)
		hist = (unsigned)atoi(argv[8]);
	if (!hist)
		z.hist_chains = 0;
	if (argc > 7)
		peers = (unsigned)atoi(argv[7]);
	if (argc > 5)
		burst = (unsigned)atoi(argv[5]);
	if (argc > 6)
		chain_min = (unsigned)atoi(argv[6]);
	if (burst < 1 || burst > 32)
		return 2;
	subs = (unsigned)atoi(argv[1]);
	n = (unsigned)atoi(argv[2]);
	size = (unsigned)atoi(argv[3]);
	batch = (unsigned)atoi(argv[4]);
	if (rte_eal_init(10, eal) < 0)
		return 1;
	pool = rte_pktmbuf_pool_create("p", 65535, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	rxr = rte_ring_create("rx", 65536, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	txr = rte_ring_create("tx", 65536, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!pool || !rxr || !txr || rte_eth_from_rings("r", &rxr, 1, &txr, 1, 0) != 0 ||
	    rte_eth_dev_configure(0, 1, 1, &conf) || rte_eth_rx_queue_setup(0, 0, 1024, 0, NULL, pool) ||
	    rte_eth_tx_queue_setup(0, 0, 1024, 0, NULL) || rte_eth_dev_start(0))
		return 1;
	rte_eth_macaddr_get(0, &mac);
	snprintf(inst, sizeof(inst), "cg%d", getpid());
	if (rly_shm_create(&shm, inst, &z) < 0)
		return 1;
	inet_pton(AF_INET, "198.18.0.1", &cfg.ip_be);
	cfg.udp_port_be = htons(RLY_WIRE_DEFAULT_PORT);
	cfg.dgram_max = 1472;
	cfg.n_ports = 1;
	cfg.batch = (uint8_t)batch;
	cfg.chain_min = (uint16_t)chain_min;
	cfg.port_chain[0] = 1; /* net_ring sends chains */
	cfg.drain_tsc = ~0ull;
	cfg.port_mac[0] = mac;
	rly_hdr_tmpl_init(&cfg.tmpl[0], &mac, cfg.ip_be, cfg.udp_port_be);
	memset(key, 0xb0, sizeof(key));
	rcu_register_thread();
	t = rly_subtable_create(16, subs);
	for (unsigned i = 0; i < subs; i++) {
		struct rly_endpoint ep = {.ip_be = htonl(0x0ac80001u + i), .udp_port_be = htons(20000)};
		ep.mac[0] = 2;
		if (i < peers)
			ep.flags = RLY_EP_F_PEER;
		rly_subtable_add(t, key, 0, &ep);
	}
	if (rly_dedup_init(&dedup, rly_shm_dedup_chain(&shm, 0), z.dedup_chains, z.dedup_window,
			   ~0ull, rte_get_tsc_hz()) < 0)
		return 1;
	rly_hist_view(&dedup.hist, rly_shm_hist_base(&shm), z.hist_chains, z.hist_index, z.hist_bytes);
	cfg.dedup = &dedup;
	cfg.track_all = dedup.hist.base != NULL;
	cfg.hist_retry_tsc = rte_get_tsc_hz();
	w = rte_zmalloc("w", sizeof(*w), 64);
	if (rly_worker_init(w, 0, &cfg, t, pool, rly_shm_ctr(&shm, 0), rly_shm_punt_ring(&shm, 0),
			    NULL, 0) < 0)
		return 1;

	/* One template datagram; only the sequence number changes, and the UDP checksum is off. */
	{
		struct rte_ether_hdr *eth = (struct rte_ether_hdr *)frame;
		struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
		struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);
		struct rly_wire_msg_hdr *h = (struct rly_wire_msg_hdr *)((uint8_t *)(udp + 1) + 8);
		uint16_t dlen = (uint16_t)(8 + 96 + size);
		memset(frame, 0, sizeof(frame));
		eth->dst_addr = mac;
		eth->ether_type = htons(RTE_ETHER_TYPE_IPV4);
		ip->version_ihl = RTE_IPV4_VHL_DEF;
		ip->total_length = htons((uint16_t)(28 + dlen));
		ip->time_to_live = 64;
		ip->next_proto_id = IPPROTO_UDP;
		ip->src_addr = htonl(0xc6120002);
		ip->dst_addr = cfg.ip_be;
		ip->hdr_checksum = rte_ipv4_cksum(ip);
		udp->src_port = htons(30000);
		udp->dst_port = cfg.udp_port_be;
		udp->dgram_len = htons((uint16_t)(8 + dlen));
		rly_wire_put_dgram_hdr(udp + 1, RLY_MSG_DATA, dlen, 1);
		memcpy(h->stream_key, key, 16);
		rly_be16_store(&h->payload_len, (uint16_t)size);
	}
	for (unsigned done = 0; done < n;) {
		struct rte_mbuf *in[32], *out[512];
		unsigned k = n - done < burst ? n - done : burst, got;
		for (unsigned i = 0; i < k; i++) {
			struct rly_wire_msg_hdr *h = (struct rly_wire_msg_hdr *)(frame + 50);
			rly_be64_store(&h->seq, done + i + 1);
			rly_be64_store(&h->prev_seq, done + i);
			in[i] = rte_pktmbuf_alloc(pool);
			memcpy(rte_pktmbuf_append(in[i], (uint16_t)(50 + 96 + size)), frame, 50 + 96 + size);
		}
		rte_ring_enqueue_bulk(rxr, (void **)in, k, NULL);
		uint64_t t0 = rte_rdtsc();
		while (rly_worker_poll_once(w))
			rcu_quiescent_state();
		rly_worker_flush(w);
		cycles += rte_rdtsc() - t0;
		while ((got = rte_ring_dequeue_burst(txr, (void **)out, 512, NULL)) > 0)
			rte_pktmbuf_free_bulk(out, got);
		done += k;
	}
	deliveries = rly_shm_ctr_sum(&shm, RLY_CTR_DELIVERIES);
	printf("subs=%u peers=%u datagrams=%u payload=%u batch=%u burst=%u chain_min=%u deliveries=%llu tx_frames=%llu "
	       "cycles_per_delivery=%.1f ns_per_delivery=%.2f deliveries_per_s=%.0f\n",
	       subs, peers, n, size, batch, burst, chain_min, (unsigned long long)deliveries,
	       (unsigned long long)rly_shm_ctr_sum(&shm, RLY_CTR_TX_PKTS),
	       (double)cycles / (double)deliveries,
	       (double)cycles / (double)deliveries * 1e9 / (double)rte_get_tsc_hz(),
	       (double)deliveries * (double)rte_get_tsc_hz() / (double)cycles);
	rly_shm_close(&shm);
	return deliveries == (uint64_t)subs * n ? 0 : 1;
}
