/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A worker lcore: polls its rx queue on every port, validates and classifies each frame, fans data
 * messages out to subscribers, punts control datagrams to relay-control, answers ARP, and (worker
 * 0) sends what relay-control asks it to send.
 *
 * Threading model: one struct rly_worker per worker lcore, touched by that lcore only. The loop
 * is rly_worker_poll_once(), one turn, so tests drive the real loop without threads
 * (Aeron's INVOKER mode); dataplane/lcore.c wraps it in the thread loop with the idle strategy.
 */
#ifndef RLY_DATAPLANE_WORKER_H
#define RLY_DATAPLANE_WORKER_H

#include <stdint.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "common/hist.h"
#include "dataplane/dedup.h"
#include "dataplane/pkt.h"
#include "dataplane/punt_limit.h"
#include "dataplane/repair.h"
#include "dataplane/subtable.h"
#include "relay/counters.h"
#include "relay/shm.h"

#define RLY_BURST 32u
/** Frames a tx buffer holds before it sends them as one burst. */
#define RLY_TX_BUFFER 64u
/** Distinct subscriber sets collected per burst before they are sent. */
#define RLY_FANOUT_GROUPS 16u
/** Message runs collected per burst before they are sent. */
#define RLY_FANOUT_SLICES 256u

/** What a worker does when a loop turn finds no work (Aeron's idle strategies). */
enum rly_idle_mode {
	RLY_IDLE_BUSY = 0,    /**< spin: lowest latency, one full core per worker */
	RLY_IDLE_BACKOFF = 1, /**< spin, then yield, then sleep up to idle_max_us: shares a CPU */
};

/** Dataplane-wide settings, read-only once workers start. */
struct rly_dp_config {
	uint32_t ip_be;          /**< the relay's IPv4 address */
	uint16_t udp_port_be;    /**< the relay's UDP port */
	uint16_t dgram_max;      /**< largest UDP payload received or sent (MTU - 28) */
	uint16_t n_ports;
	uint8_t batch;           /**< regroup messages of several datagrams per subscriber */
	uint8_t reserved;
	uint16_t chain_min;      /**< chain a shared payload from this many UDP bytes; 0: never */
	uint8_t port_chain[RLY_SHM_MAX_PORTS]; /**< port sends chained mbufs */
	uint64_t drain_tsc;      /**< longest a frame waits in a tx buffer, in TSC cycles */
	uint32_t punt_rate;      /**< control datagrams per second per source; 0: unlimited */
	uint32_t punt_burst;
	enum rly_idle_mode idle;
	uint32_t idle_max_us;
	/*
	 * The dedup table in shared memory, with the history slots (dedup->hist); NULL: none,
	 * untracked. Every stream with a subscriber uses it when the relay keeps a history
	 * (track_all), else only streams with peer endpoints.
	 */
	const struct rly_dedup *dedup;
	uint8_t track_all;
	uint64_t hist_retry_tsc;  /**< a chain that found no free history slot looks again after this */
	uint64_t slow_cut_tsc;    /**< cut a subscriber whose NAKs found its budget spent this long; 0: never */
	uint64_t nak_holdoff_tsc; /**< a message sent again is not sent again to the same subscriber sooner */
	uint64_t repair_bytes_s;  /**< each subscriber's repair budget, bytes per second; 0: none */
	uint64_t repair_burst;    /**< ... and bytes at once */
	struct rte_ether_addr port_mac[RLY_SHM_MAX_PORTS];
	struct rly_hdr_tmpl tmpl[RLY_SHM_MAX_PORTS];
};

/** Frames relay-control may ask one worker to send per loop turn (its replies are few). */
#define RLY_CTL_TX_BURST 8u
/** mbufs a worker allocates at once for deliveries. */
#define RLY_MBUF_STASH 64u

/** A run of consecutive messages bound for one subscriber set. */
struct rly_fo_slice {
	const uint8_t *p;
	uint16_t len;
	uint16_t n_msgs;
	int16_t next;     /* next slice of the same group, -1 at the end */
	uint8_t src;      /* rx burst index of the frame it lies in */
	uint8_t whole;    /* it is that frame's entire datagram body: its sum is known */
	uint8_t reuse;    /* whole, and the frame's headers let it be sent on as is */
	uint8_t sum_valid;
	uint16_t sum;     /* rly_sum_bytes of the slice, once known */
};

/** One output datagram of a group: the same bytes go to every subscriber of the group. */
struct rly_fo_out {
	int16_t first;    /* first slice */
	uint16_t n_slices;
	uint16_t bytes;   /* message bytes, datagram header excluded */
	uint16_t n_msgs;
	uint16_t sum;     /* rly_sum_bytes of the whole UDP payload */
	int8_t reuse_src; /* rx frame that already holds exactly this datagram, or -1 */
};

/*
 * Messages for one subscriber set that skip the same endpoint (split horizon: the peer they came
 * from; -1 for none). A set has several groups when its messages came from several peers; only
 * the set's latest group is ever extended, so emitting groups in order keeps every chain's order.
 */
struct rly_fo_group {
	const struct rly_sub_set *set;
	int16_t head, tail;
	int32_t skip;
	uint32_t n_msgs;
};

/*
 * Rate limit of one kind of report for the streams of one lookup slot. A stream always maps to the
 * same slot, and a report is due when the slot's last one is a whole interval old, or half of one
 * when it was about another stream: so each stream is reported at most once per interval, and
 * streams sharing a slot take turns instead of the busiest one taking every turn.
 */
struct rly_report_gate {
	uint64_t tsc;
	uint32_t partition;
	uint8_t key[RLY_STREAM_KEY_LEN];
};

/** Streams a worker remembers the subscriber set of, while the table's generation holds. */
#define RLY_LOOKUP_CACHE 16u

struct rly_lookup_slot {
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint32_t used;
	const struct rly_sub_set *set; /* NULL: no subscriber (cached too) */
	const struct rly_admit *admit; /* the stream's admission list, if admission is on */
	uint32_t admitted_valid;       /* admitted_pk holds the last publisher found admitted */
	uint8_t admitted_pk[RLY_ID_LEN];
	/* the last dedup chain of the stream, and its tag when found (dedup.h rly_dedup_still) */
	struct rly_dedup_chain *chain;
	uint64_t chain_tag;
	/* kept when the slot is refilled or the cache emptied: they belong to the slot */
	struct rly_report_gate published; /* RLY_PKT_F_PUBLISHED, once per second */
	struct rly_report_gate duplicate; /* RLY_PKT_F_DUPLICATE, once per RLY_DUP_REPORT_MS */
};

/** Per-burst fan-out scratch. */
struct rly_fanout {
	uint16_t n_groups;
	uint16_t n_slices;
	struct rly_fo_group group[RLY_FANOUT_GROUPS];
	struct rly_fo_slice slice[RLY_FANOUT_SLICES];
	/* recent lookups, valid while the table's generation is cache_gen */
	uint64_t cache_gen;
	uint32_t admit_on; /* publisher admission enforced, read with the generation */
	struct rly_lookup_slot cache[RLY_LOOKUP_CACHE];
	/* rx frames of the current burst that were sent on as a delivery instead of freed */
	uint32_t reused_mask;
	struct rte_mbuf **rx;
	uint16_t port;        /* the burst's port */
	uint16_t src_port_be; /* source of the datagram being added */
	uint32_t src_ip_be;
	struct rly_fo_out out[RLY_FANOUT_SLICES];
};

struct rly_worker {
	uint16_t id;
	uint16_t n_rx;
	uint16_t rx_port[RLY_SHM_MAX_PORTS];
	uint16_t rx_queue[RLY_SHM_MAX_PORTS];
	uint16_t tx_queue; /* this worker's tx queue on every port */
	const struct rly_dp_config *cfg;
	const struct rly_subtable *table;
	struct rte_mempool *pool;
	struct rly_ctr_block *ctr;
	struct rte_ring *punt;   /* to relay-control */
	uint32_t punt_open_max;  /* what is not from a subscriber is punted only below this fill */
	struct rte_ring *ctl_tx; /* from relay-control; worker 0 only, else NULL */
	struct rte_eth_dev_tx_buffer *txb[RLY_SHM_MAX_PORTS];
	uint64_t last_drain_tsc;
	uint64_t now;            /* TSC at the start of the current burst (rly_worker_tsc) */
	uint64_t test_clock;     /* tests: a TSC value they move by hand; 0: the real TSC */
	uint64_t pub_every;      /* TSC cycles between PUBLISHED reports of a stream */
	uint64_t dup_every;      /* ... and between DUPLICATE reports */
	uint32_t pending_tx;     /* frames sitting in tx buffers */
	uint16_t n_stash;
	struct rte_mbuf *stash[RLY_MBUF_STASH]; /* allocated in bulk, handed out one by one */
	struct rly_fanout fo __rte_cache_aligned;
	struct rly_punt_limit punt_limit;
	/* repair budgets and cut-offs of the subscribers whose NAKs reach this worker */
	struct rly_repair repair;
	/* scratch for the shm rings: records are 2 KiB, too big for the stack */
	struct rly_pkt_rec punt_rec;
	struct rly_pkt_rec ctl_rec[RLY_CTL_TX_BURST];
} __rte_cache_aligned;

/**
 * Set up a worker: tx buffers (allocated here, on @p socket), counters, rings. Receives queue
 * @p id of each of cfg->n_ports ports and sends on tx queue @p id of each.
 */
int rly_worker_init(struct rly_worker *w, uint16_t id, const struct rly_dp_config *cfg,
		    const struct rly_subtable *table, struct rte_mempool *pool,
		    struct rly_ctr_block *ctr, struct rte_ring *punt, struct rte_ring *ctl_tx,
		    int socket);
/** Free the tx buffers (after a final flush). */
void rly_worker_close(struct rly_worker *w);

/**
 * One loop turn: rx bursts on every queue, process, control tx, drain tx buffers when the turn
 * caught up or the drain interval passed. Returns the number of frames handled (0: idle turn).
 * The caller announces the RCU quiescent state after it (rly_worker_quiescent).
 */
unsigned rly_worker_poll_once(struct rly_worker *w);

/** Send everything in the tx buffers now. */
void rly_worker_flush(struct rly_worker *w);

/**
 * The worker's clock, read once per burst: the TSC, or the value a test set (so rate limits and
 * idle times see time pass, or not, exactly as the test says, on however loaded a machine).
 */
static inline uint64_t rly_worker_tsc(const struct rly_worker *w)
{
	return unlikely(w->test_clock) ? w->test_clock : rte_rdtsc();
}

/**
 * Enqueue w->punt_rec (filled by the caller) on the punt ring. @p reserve: it is traffic of an
 * existing subscription and may use the whole ring; anything else only the open half. Counts the
 * drops (DROP_PUNT_OPEN, DROP_PUNT_FULL); returns 1 if enqueued.
 */
int rly_worker_punt(struct rly_worker *w, int reserve);

/* fanout.c */
/** Start collecting a burst whose rx frames are @p rx, received on @p port. */
void rly_fanout_begin(struct rly_worker *w, struct rte_mbuf **rx, uint16_t port);
/**
 * Collect the messages of the validated DATA datagram in rx frame @p src, whose UDP payload sums
 * to @p payload_sum (rly_sum_bytes). @p reusable: the frame's headers are exactly Ethernet +
 * 20-byte IPv4 + UDP, so it can be sent on as a delivery. @p src_ip_be and @p src_port_be are
 * the datagram's source: a peer endpoint of a message's set does not get the message back, and
 * a source that is not one is reported as the stream's publisher.
 */
void rly_fanout_add_dgram(struct rly_worker *w, uint8_t src, int reusable,
			  const struct rly_wire_view *v, uint16_t payload_sum, uint32_t src_ip_be,
			  uint16_t src_port_be);
/** Send every collected group; afterwards the rx frames not reused may be freed. */
void rly_fanout_flush(struct rly_worker *w);

/** Return the stashed mbufs to the pool. */
void rly_fanout_close(struct rly_worker *w);

/** An mbuf for a delivery (from the worker's stash, refilled in bulk), or NULL if the pool is empty. */
static inline struct rte_mbuf *rly_worker_mbuf(struct rly_worker *w)
{
	if (w->n_stash == 0) {
		if (rte_pktmbuf_alloc_bulk(w->pool, w->stash, RLY_MBUF_STASH) == 0)
			w->n_stash = RLY_MBUF_STASH;
		else
			return rte_pktmbuf_alloc(w->pool); /* pool nearly empty: what is left */
	}
	return w->stash[--w->n_stash];
}

/** Queue @p m on @p port's tx buffer. */
void rly_worker_tx(struct rly_worker *w, uint16_t port, struct rte_mbuf *m);

#define RLY_CTR_ADD(w, id, n) ((w)->ctr->v[RLY_CTR_##id] += (n))

#endif
