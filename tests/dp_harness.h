/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test harness for the dataplane: a real worker and manager on net_ring ports, driven one loop
 * turn at a time from the test thread (no lcores, no threads), with helpers to build frames and
 * to read back what the relay sent.
 */
#ifndef RLY_TESTS_DP_HARNESS_H
#define RLY_TESTS_DP_HARNESS_H

#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "common/shm.h"
#include "dataplane/manager.h"
#include "dataplane/worker.h"

#define H_RELAY_IP "198.18.0.1"
#define H_RELAY_PORT 4747
#define H_MAX_QUEUES 4

struct harness {
	struct rly_shm shm;
	struct rte_mempool *pool;
	struct rte_ring *rx[H_MAX_QUEUES]; /* test -> relay */
	struct rte_ring *tx[H_MAX_QUEUES]; /* relay -> test */
	uint16_t port;
	uint16_t n_queues;
	struct rly_dp_config cfg;
	struct rly_subtable *table;
	struct rly_worker *w[H_MAX_QUEUES];
	struct rly_manager mgr;
	struct rly_dedup dedup;  /* over the shm object's dedup region */
	uint64_t clock;          /* the workers' clock (a TSC value): it moves by h_advance_ms only */
	uint32_t cmd_seq;
	struct rte_ether_addr relay_mac;
};

/** Message to put in a datagram. */
struct h_msg {
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint32_t chain;
	uint64_t seq;
	uint16_t payload_len;
	uint8_t fill; /* payload byte */
	uint8_t pub;  /* publisher key: 32 bytes of this value (0: 0xab) */
};

/** Slots of each tx ring the test reads (set before h_setup to make it overflow). */
extern unsigned h_tx_ring_slots;
/** --chain-min-bytes of the harness relay (0: always copy); set before h_setup. */
extern unsigned h_chain_min;
/** Punt rate limit of the harness relay (per source per second, and burst; 0: none). */
extern unsigned h_punt_rate, h_punt_burst;
/** Dedup region of the harness relay: chains and slots per chain (powers of two); set before h_setup. */
extern unsigned h_dedup_chains, h_dedup_window;
/** History of the harness relay: slots (0: none; like --history-chains 0), index entries, ring bytes. */
extern unsigned h_hist_chains, h_hist_index, h_hist_bytes;
/** Repair settings of the harness relay (--repair-kbs, --repair-burst-kb, --slow-cut-ms,
 *  --nak-holdoff-us); 0 kbs: no budget. Set before h_setup. */
extern unsigned h_repair_kbs, h_repair_burst_kb, h_slow_cut_ms, h_nak_holdoff_us;
/** Idle time after which the manager reclaims a dedup chain, in ms of the harness clock. */
#define H_DEDUP_IDLE_MS 60000u

/** EAL (once per process), a net_ring port with @p n_queues queue pairs, one worker per queue. */
void h_setup(struct harness *h, uint16_t n_queues, int batch, uint16_t mtu);
void h_teardown(struct harness *h);

/** A stream key made from a small number. */
void h_key(uint8_t key[RLY_STREAM_KEY_LEN], unsigned n);
/** An endpoint 10.0.0.<n>:<port>, MAC 02:00:00:00:00:<n>, on port 0. */
struct rly_endpoint h_ep(unsigned n, uint16_t udp_port);

/** Send a command through the cmd ring, run the manager, return the DONE status. */
unsigned h_cmd(struct harness *h, uint16_t op, const uint8_t *key, uint32_t partition,
	       const struct rly_endpoint *ep);

/** Send an ADMIT_* command carrying @p pk (may be NULL) or flags in partition; returns the status. */
unsigned h_admit(struct harness *h, uint16_t op, const uint8_t *key, uint32_t flags,
		 const uint8_t *pk);

/** Build a DATA datagram (UDP payload) of @p n messages into @p buf; returns its length. */
uint16_t h_build_data(uint8_t *buf, const struct h_msg *msgs, unsigned n);
/**
 * Wrap a UDP payload in Ethernet/IPv4/UDP from 10.0.0.<src>:<sport> to the relay, with correct
 * checksums, in a fresh mbuf.
 */
struct rte_mbuf *h_frame(struct harness *h, unsigned src, uint16_t sport, const void *payload,
			 uint16_t len);
/** Put frames on queue @p q's rx ring. */
void h_inject(struct harness *h, uint16_t q, struct rte_mbuf **m, unsigned n);
/** Run each worker's loop turn until all rx rings are empty (at most @p max turns). */
void h_run(struct harness *h, unsigned max_turns);
/** Take up to @p max frames the relay sent on queue @p q. */
unsigned h_collect(struct harness *h, uint16_t q, struct rte_mbuf **out, unsigned max);
/**
 * Move every worker's clock (and the one h_reclaim uses) @p ms forward. The workers' clock is
 * frozen otherwise: rate limits and idle timers see exactly the time the test says passed.
 */
void h_advance_ms(struct harness *h, uint64_t ms);
/** The harness clock. */
uint64_t h_now(struct harness *h);
/** Run the dedup table's idle reclaim at the harness clock; returns chains reclaimed. */
unsigned h_reclaim(struct harness *h);
/**
 * Take the records on worker @p q's punt ring into @p out (at most @p max); returns how many.
 * @p flags_count, if not NULL, gets how many had each of the four RLY_PKT_F_* bits
 * ([0] NEIGH, [1] PUBLISHED, [2] DUPLICATE, [3] ARP_RESOLVE); plain datagrams are not counted.
 */
unsigned h_punts(struct harness *h, uint16_t q, struct rly_pkt_rec *out, unsigned max,
		 unsigned flags_count[4]);
/** Counter summed over all worker blocks and the manager block. */
uint64_t h_ctr(struct harness *h, unsigned slot);

/** mbufs currently out of the pool (in rings, stashes or the test's hands). */
unsigned h_mbufs_in_use(struct harness *h);

/** A sent frame (one segment or a chain), checked and decoded. Fails the test on a bad header or checksum. */
struct h_out {
	struct rte_ether_addr dst_mac, src_mac;
	uint32_t dst_ip, src_ip;
	uint16_t dst_port, src_port;
	const uint8_t *payload; /* into frame[] */
	uint16_t len;
	uint8_t frame[2048];    /* the whole frame, gathered from every segment */
};
void h_decode(struct rte_mbuf *m, struct h_out *o);

#endif
