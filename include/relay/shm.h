/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file shm.h
 * Shared-memory ABI between the relay dataplane and the processes that attach to it
 * (relay-control, relay-stat, tests).
 *
 * One POSIX shared-memory object per relay instance, /dev/shm/relay.<instance>, created by the
 * relay (O_EXCL) and unlinked when it stops. It holds, at the offsets the header gives:
 *
 *   header | counters page (one rly_ctr_block per writer) | cmd ring | event ring |
 *   punt ring per worker | tx ring | dedup region (dedup_chains x dedup_stride bytes) |
 *   history (hist_chains x hist_stride bytes)
 *
 * The rings are DPDK rte_ring structures initialised in place with fixed-size elements
 * (rte_ring_init + rte_ring_*_elem); they hold no pointers, so each process maps the object at its
 * own address and needs librte_ring only, never rte_eal_init. Directions:
 *
 *   cmd ring    relay-control -> manager lcore   struct rly_cmd     (SP/SC)
 *   event ring  manager lcore -> relay-control   struct rly_event   (SP/SC)
 *   punt ring   worker w -> relay-control        struct rly_pkt_rec (SP/SC, one per worker)
 *   tx ring     relay-control -> worker 0        struct rly_pkt_rec (SP/SC)
 *
 * An attacher checks magic, abi_version, header_size and ring_impl (the DPDK version whose rte_ring
 * layout the relay used) and refuses any mismatch with a message that names both values.
 * Fields marked "live" change while the relay runs; read and write them with __atomic builtins.
 */
#ifndef RLY_SHM_H
#define RLY_SHM_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/counters.h"
#include "relay/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/** "RLYSHM01" read as a little-endian u64. */
#define RLY_SHM_MAGIC 0x31304d4853594c52ull
/**
 * Bumped on any change to the layout below or to a record. v2: publisher admission commands.
 * v3: peer endpoints (RLY_EP_F_PEER), packet record flags, the dedup region.
 * v4: the history per chain (struct rly_hist_chain), the SLOW punt record.
 */
#define RLY_SHM_ABI_VERSION 4u
/** shm_open name of an instance: "/relay." followed by the instance name. */
#define RLY_SHM_NAME_PREFIX "/relay."
/** Instance names: 1..31 characters of [A-Za-z0-9_-]. */
#define RLY_INSTANCE_MAX 31u
#define RLY_INSTANCE_DEFAULT "default"
/** Most ports and workers the ABI describes. */
#define RLY_SHM_MAX_PORTS 8u
#define RLY_SHM_MAX_WORKERS 64u

/** Dataplane lifecycle, in rly_shm_header.state. */
enum rly_shm_state {
	RLY_SHM_STATE_STARTING = 1, /**< rings exist, ports not yet started */
	RLY_SHM_STATE_RUNNING = 2,  /**< workers polling */
	RLY_SHM_STATE_STOPPING = 3, /**< shutting down; detach */
};

/** Counter blocks: worker w uses block w; then these two follow the workers. */
#define RLY_CTR_BLOCK_MANAGER(n_workers) (n_workers)
#define RLY_CTR_BLOCK_CONTROL(n_workers) ((n_workers) + 1u)

/** Header at offset 0 of the shared-memory object. */
struct rly_shm_header {
	uint64_t magic;       /**< RLY_SHM_MAGIC */
	uint32_t abi_version; /**< RLY_SHM_ABI_VERSION */
	uint32_t header_size; /**< sizeof(struct rly_shm_header) */
	uint64_t total_size;  /**< bytes in the object */
	uint32_t ring_impl;   /**< RTE_VERSION of the rte_ring layout used for the rings */
	uint32_t n_workers;   /**< worker lcores (and punt rings) */
	uint32_t n_blocks;    /**< counter blocks: n_workers + 2 */
	uint32_t ctr_slots;   /**< RLY_CTR_SLOTS */
	uint64_t counters_off;
	uint64_t cmd_ring_off;
	uint64_t event_ring_off;
	uint64_t punt_ring_off;    /**< ring of worker w at punt_ring_off + w * punt_ring_stride */
	uint64_t punt_ring_stride;
	uint64_t tx_ring_off;
	uint32_t cmd_ring_slots;   /**< power of two */
	uint32_t event_ring_slots;
	uint32_t punt_ring_slots;
	uint32_t tx_ring_slots;
	uint32_t cmd_rec_size;     /**< sizeof(struct rly_cmd) */
	uint32_t event_rec_size;   /**< sizeof(struct rly_event) */
	uint32_t pkt_rec_size;     /**< sizeof(struct rly_pkt_rec) */
	int32_t relay_pid;
	uint32_t relay_ip_be;      /**< relay's IPv4 address, network order */
	uint16_t relay_udp_port;   /**< host order */
	uint16_t n_ports;
	uint32_t dgram_max;        /**< largest UDP payload the relay sends (from its MTU) */
	uint64_t start_realtime_ns;
	uint64_t tsc_hz;           /**< the dataplane's TSC frequency, for tools */
	uint8_t port_mac[RLY_SHM_MAX_PORTS][8]; /**< MAC of each port, 6 bytes used */
	char instance[RLY_INSTANCE_MAX + 1];
	uint64_t dedup_off;        /**< first struct rly_dedup_chain */
	uint64_t dedup_stride;     /**< bytes per chain: RLY_DEDUP_STRIDE(dedup_window) */
	uint32_t dedup_chains;     /**< chains the region holds (power of two); 0: no region */
	uint32_t dedup_window;     /**< sequence slots per chain (power of two) */
	uint64_t hist_off;         /**< first history slot (struct rly_hist_chain) */
	uint64_t hist_bytes;       /**< message bytes per slot (power of two); 0: no history */
	uint32_t hist_chains;      /**< history slots */
	uint32_t hist_index;       /**< index entries per slot (power of two): most messages kept */
	uint64_t hist_stride;      /**< bytes per slot: RLY_HIST_STRIDE(hist_index, hist_bytes) */
	uint8_t reserved0[8];

	/* live: written by the relay */
	uint32_t state __attribute__((aligned(64))); /**< enum rly_shm_state */
	uint32_t reserved1;
	uint64_t relay_heartbeat_ns; /**< CLOCK_MONOTONIC, advanced by the manager lcore every turn */
	uint64_t table_generation;   /**< bumped by the manager after each applied table change */
	uint8_t reserved2[40];

	/* live: written by relay-control */
	int32_t control_pid __attribute__((aligned(64))); /**< attached relay-control, 0 if none */
	uint32_t reserved3;
	uint64_t control_heartbeat_ns; /**< CLOCK_MONOTONIC */
	uint8_t reserved4[48];
} __attribute__((aligned(64)));

static_assert(sizeof(struct rly_shm_header) % 64 == 0, "header is whole cache lines");
static_assert(offsetof(struct rly_shm_header, state) % 64 == 0, "relay live fields own a line");
static_assert(offsetof(struct rly_shm_header, control_pid) % 64 == 0, "control fields own a line");
static_assert(offsetof(struct rly_shm_header, control_pid) - offsetof(struct rly_shm_header, state) == 64,
	      "one cache line of relay live fields");

/** rly_endpoint.flags */
#define RLY_EP_F_PEER 0x01u /**< another relay (an eager overlay link), not a subscriber */

/**
 * A subscriber endpoint as the dataplane stores it: where and how to send. A peer relay's eager
 * overlay link for a stream is an endpoint too, flagged RLY_EP_F_PEER: it gets the stream's
 * messages like a subscriber, except those that came from it (split horizon), and a stream with a
 * peer endpoint has its messages de-duplicated by (publisher, chain, seq).
 */
struct rly_endpoint {
	uint32_t ip_be;       /**< IPv4 address, network order */
	uint16_t udp_port_be; /**< UDP port, network order */
	uint16_t port_id;     /**< relay port the endpoint is reached through */
	uint8_t mac[6];       /**< next-hop MAC (learnt from the subscriber's own frames) */
	uint8_t flags;        /**< RLY_EP_F_* */
	uint8_t reserved;
} __attribute__((packed, aligned(4)));
static_assert(sizeof(struct rly_endpoint) == 16, "endpoint is 16 bytes");

/** Commands, relay-control -> manager. */
enum rly_cmd_op {
	RLY_CMD_SUB_ADD = 1, /**< add ep to (stream_key, partition); idempotent: EXISTS if the same
				  endpoint is there, OK if its port id, MAC or flags changed (updated) */
	RLY_CMD_SUB_DEL = 2, /**< remove ep from (stream_key, partition) */
	RLY_CMD_DUMP = 3,    /**< emit one RLY_EV_DUMP_ENTRY per endpoint, then RLY_EV_DUMP_END */
	RLY_CMD_PING = 4,    /**< answered by RLY_EV_DONE; used to fence earlier commands */
	/**
	 * Publisher admission (the stream registry's publish permission, pushed by relay-control).
	 * ADMIT_MODE partition=1: from now on a data message is forwarded only if its stream has an
	 * admission list that admits its publisher; partition=0: every publisher is admitted (no
	 * registry). A list is built with ADMIT_BEGIN (partition = RLY_ADMIT_F_*), one ADMIT_ADD per
	 * publisher key, and ADMIT_COMMIT (partition = the sender's push epoch), which replaces the
	 * stream's list in one step; ADMIT_CLEAR removes it. ADMIT_SWEEP (partition = epoch) removes
	 * every list committed with another epoch: a restarted relay-control pushes all its lists
	 * under a new epoch, then sweeps, so no admitted publisher is ever refused on the way.
	 * Lists are per stream key, for every partition.
	 */
	RLY_CMD_ADMIT_MODE = 5,
	RLY_CMD_ADMIT_BEGIN = 6,
	RLY_CMD_ADMIT_ADD = 7,
	RLY_CMD_ADMIT_COMMIT = 8,
	RLY_CMD_ADMIT_CLEAR = 9,
	RLY_CMD_ADMIT_SWEEP = 10,
};

/** ADMIT_BEGIN flags (in rly_cmd.partition). */
#define RLY_ADMIT_F_PUBLIC 0x1u /**< anyone may publish on the stream */

/** Command results, in rly_event.status. X(name, value, description) */
#define RLY_FOREACH_CMD_STATUS(X)                                                                      \
	X(OK, 0, "applied")                                                                            \
	X(EXISTS, 1, "endpoint was already subscribed (nothing changed)")                             \
	X(NOT_FOUND, 2, "no such subscription")                                                        \
	X(STREAMS_FULL, 3, "stream table is full (relay --max-streams)")                              \
	X(SUBS_FULL, 4, "stream has the most subscribers allowed (relay --max-subs-per-stream)")      \
	X(BAD_PORT, 5, "port id is not a port of this relay")                                          \
	X(BAD_OP, 6, "unknown command")                                                                \
	X(NO_MEMORY, 7, "relay could not allocate the new table entry")                               \
	X(ADMIT_FULL, 8, "admission list longer than the relay allows (RLY_ADMIT_MAX publishers)")    \
	X(ADMIT_ORDER, 9, "ADMIT_ADD or ADMIT_COMMIT without a matching ADMIT_BEGIN")

enum rly_cmd_status {
#define X(name, value, desc) RLY_CMD_##name = value,
	RLY_FOREACH_CMD_STATUS(X)
#undef X
};

/** Text for a command status. */
const char *rly_cmd_status_str(unsigned status);

/** Most publishers one stream's admission list holds. */
#define RLY_ADMIT_MAX 4096u

/** One command record (64 bytes). */
struct rly_cmd {
	uint16_t op;       /**< enum rly_cmd_op */
	uint16_t reserved0;
	uint32_t seq;      /**< chosen by relay-control, echoed in the event that answers it */
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition; /**< SUB_*: partition; ADMIT_MODE: on/off; ADMIT_BEGIN: RLY_ADMIT_F_*;
			       ADMIT_COMMIT, ADMIT_SWEEP: epoch */
	uint32_t reserved1;
	union {
		struct {
			struct rly_endpoint ep; /**< SUB_ADD, SUB_DEL */
			uint8_t reserved2[16];
		};
		uint8_t publisher[RLY_ID_LEN]; /**< ADMIT_ADD: the publisher's Ed25519 key */
	};
};
static_assert(sizeof(struct rly_cmd) == 64, "command record is 64 bytes");
static_assert(offsetof(struct rly_cmd, publisher) == offsetof(struct rly_cmd, ep),
	      "ADMIT_ADD's key overlays the endpoint");

/** Events, manager -> relay-control. */
enum rly_event_op {
	RLY_EV_DONE = 1,       /**< command seq finished with status */
	RLY_EV_DUMP_ENTRY = 2, /**< one (stream, partition, endpoint) of the table */
	RLY_EV_DUMP_END = 3,   /**< dump for command seq complete; count = entries sent */
};

/** One event record (64 bytes). */
struct rly_event {
	uint16_t op;     /**< enum rly_event_op */
	uint16_t status; /**< enum rly_cmd_status (RLY_EV_DONE) */
	uint32_t seq;    /**< seq of the command this answers */
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint32_t count;  /**< RLY_EV_DUMP_END: entries sent */
	struct rly_endpoint ep;
	uint8_t reserved[16];
};
static_assert(sizeof(struct rly_event) == 64, "event record is 64 bytes");

/** Room for a UDP payload in a packet record. */
#define RLY_PKT_REC_DATA 2016u
static_assert(RLY_PKT_REC_DATA >= RLY_WIRE_MAX_DGRAM, "a record holds any relay datagram");

/**
 * rly_pkt_rec.flags. A record without flags is a UDP datagram (see below). The others:
 *  - RLY_PKT_F_NEIGH (punt): no datagram (len 0); the worker saw an ARP request or reply from
 *    ip_be with mac on port_id (a neighbour to remember).
 *  - RLY_PKT_F_PUBLISHED (punt): data[0..95] is the header of a data message that arrived from a
 *    source that is not a peer endpoint of its stream (a local publisher), from ip_be:udp_port_be.
 *    At most one per stream per worker per second: relay-control joins the stream's overlay.
 *  - RLY_PKT_F_DUPLICATE (punt): data[0..95] is the header of a data message that arrived again
 *    (dedup) from the peer ip_be:udp_port_be. Rate-limited per stream per worker (RLY_DUP_REPORT_MS):
 *    relay-control prunes that eager link (Plumtree).
 *  - RLY_PKT_F_ARP_RESOLVE (tx): send no datagram; broadcast an ARP request for ip_be on port_id.
 *  - RLY_PKT_F_SLOW (punt): data[] is a struct rly_slow_report: the subscriber ip_be:udp_port_be
 *    of the stream named in it asked for more repair than its budget allows for longer than the
 *    relay's --slow-cut-ms. The worker has sent it a GAP SLOW_CONSUMER and answers no more of its
 *    NAKs; relay-control ends the subscription (a slow consumer is cut, never waited for).
 */
#define RLY_PKT_F_NEIGH 0x0001u
#define RLY_PKT_F_PUBLISHED 0x0002u
#define RLY_PKT_F_DUPLICATE 0x0004u
#define RLY_PKT_F_ARP_RESOLVE 0x0008u
#define RLY_PKT_F_SLOW 0x0010u

/** What a worker tells relay-control about a subscriber it cut off (RLY_PKT_F_SLOW). */
struct rly_slow_report {
	struct rly_wire_nak nak;  /**< the NAK that found the budget spent for too long */
	uint64_t over_ms;         /**< how long its NAKs have found the budget spent */
	uint64_t asked_msgs;      /**< messages its NAKs asked for since the budget ran out */
	uint64_t sent_msgs;       /**< ... of which the relay sent */
	uint64_t budget_bytes_s;  /**< its repair budget, bytes per second */
};

/** Shortest interval between two DUPLICATE reports of one stream from one worker. */
#define RLY_DUP_REPORT_MS 10u

/**
 * A UDP datagram crossing between the dataplane and relay-control (2048 bytes).
 * Punt: what a worker received (addresses are the sender's). Tx: what relay-control wants sent
 * (addresses are the destination's); the worker adds Ethernet, IPv4 and UDP headers from the
 * relay's own address and port. `flags` (RLY_PKT_F_*) marks the records that are not datagrams.
 */
struct rly_pkt_rec {
	uint16_t port_id;
	uint16_t len;         /**< bytes used in data[] */
	uint32_t ip_be;
	uint16_t udp_port_be;
	uint8_t mac[6];
	uint16_t worker;      /**< punt: the worker that received it */
	uint16_t flags;       /**< RLY_PKT_F_* */
	uint32_t reserved2;
	uint64_t rx_tsc;      /**< punt: worker TSC at receive */
	uint8_t data[RLY_PKT_REC_DATA];
};
static_assert(sizeof(struct rly_pkt_rec) == 2048, "packet record is 2048 bytes");
static_assert(offsetof(struct rly_pkt_rec, data) == 32, "record header is 32 bytes");

/**
 * One publisher chain in the dedup region (dedup_stride bytes: this header, then dedup_window
 * uint64_t sequence slots). Workers share it without locks:
 *  - a chain is found by open addressing from its keyed hash (`tag`, never 0, 1 or 2) and
 *    claimed with a CAS of `tag` from 0 (the identity fields are written before the tag is
 *    released, so a reader that sees a tag sees the identity);
 *  - a message is new when a CAS moves slot[seq % window] from a lower value to seq; it is a
 *    duplicate when the slot already holds seq, and too old when it holds more (or when seq is a
 *    whole window below `highest`);
 *  - the manager reclaims chains idle for the relay's --dedup-idle-s: tag -> 2 (reclaiming), and
 *    after an RCU grace period the slots are zeroed and tag -> 0.
 * relay-control reads `highest` per chain for its IHAVE summaries (re-reading `tag` after the
 * identity to be sure it read one chain). Every stream with a subscriber or a peer has its chains
 * here: the chain is how its history slot is found.
 */
struct rly_dedup_chain {
	uint64_t tag;        /**< live: 0 free, 1 being claimed, 2 being reclaimed, else in use */
	uint64_t highest;    /**< live: highest seq accepted */
	uint64_t last_tsc;   /**< live: dataplane TSC of the last accepted message */
	uint64_t accepted;   /**< live: messages accepted (approximate under concurrency) */
	uint64_t duplicates; /**< live: duplicates and too-old messages dropped (approximate) */
	uint32_t partition;  /**< host order */
	uint32_t chain;      /**< host order */
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint8_t publisher[RLY_ID_LEN];
	/**
	 * live: where the last message accepted as new came from (the link that brought it first),
	 * (uint64_t)ip_be << 16 | udp_port_be, both as on the wire; 0 before the first
	 */
	uint64_t first_src;
	uint64_t first_seq;  /**< the seq of the message that claimed the chain: holes below it are
				  not ours (we joined mid-chain) */
	/**
	 * live: its history slot + 1 (0: none yet; RLY_HIST_NONE: none was free, retried at
	 * hist_retry_tsc)
	 */
	uint32_t hist;
	uint32_t reserved;
	uint64_t hist_retry_tsc; /**< live: dataplane TSC after which a slot is looked for again */
	/* uint64_t slot[dedup_window] follows */
} __attribute__((aligned(64)));
static_assert(sizeof(struct rly_dedup_chain) == 128, "dedup chain header is 128 bytes");

/**
 * History (docs/overlay.md section 6, docs/wire-protocol.md section 8): the recent messages of
 * each publisher chain, which workers send again to a subscriber that asks (NAK) and relay-control
 * to a peer relay that asks (IWANT). A pool of hist_chains slots; a chain of the dedup region
 * takes one when its first message is accepted (rly_dedup_chain.hist) and gives it back when it is
 * reclaimed. A slot is this header, then hist_index uint64_t pairs {seq, pos + 1} indexed by
 * seq % hist_index, then a byte ring of hist_bytes holding records (struct rly_hist_rec and the
 * message: 96-byte header, payload, signature, padded to 8 bytes) that never wrap (a writer skips
 * the ring's tail instead). So a chain keeps at most hist_index messages and hist_bytes bytes,
 * whichever is fewer, and no chain can push another's messages out.
 *
 * Writers (workers that accept a new message of the chain; usually one, any number may) reserve
 * with an atomic add on `head`, which only grows, then write the record, then publish the index
 * entry: pos first, then seq (release). A reader loads seq (acquire), then pos, then seq again;
 * copies the record; then (acquire fence) reads `head`: the copy is whole when head - pos <=
 * hist_bytes, the record's own pos and seq are the ones it looked for and `owner` is still its
 * chain's tag. Index entries below `base` belong to the slot's previous chain.
 */
struct rly_hist_chain {
	uint64_t owner;      /**< live: tag of the dedup chain using the slot; 0 free, 1 being claimed */
	uint64_t head;       /**< live: bytes reserved so far: the next record's position */
	uint64_t base;       /**< head when the slot was claimed */
	uint64_t low_hint;   /**< live: every seq below it is gone (a hint that readers raise) */
	uint64_t chain_idx;  /**< the dedup chain's index */
	uint8_t reserved[24];
} __attribute__((aligned(64)));
static_assert(sizeof(struct rly_hist_chain) == 64, "history chain header is one cache line");

struct rly_hist_idx {
	uint64_t seq; /**< live: the seq whose record is at pos; 0: none */
	uint64_t pos; /**< live: its position + 1 */
};
static_assert(sizeof(struct rly_hist_idx) == 16, "history index entry is 16 bytes");

struct rly_hist_rec {
	uint64_t pos; /**< the record's position: a reader checks it */
	uint64_t seq; /**< the message's sequence */
	uint32_t len; /**< message bytes that follow */
	uint32_t reserved;
};
static_assert(sizeof(struct rly_hist_rec) == 24, "history record header is 24 bytes");

/** Bytes per history slot. */
#define RLY_HIST_STRIDE(index, bytes)                                                                  \
	(sizeof(struct rly_hist_chain) + sizeof(struct rly_hist_idx) * (uint64_t)(index) + (uint64_t)(bytes))

/** rly_dedup_chain.hist: no slot yet, and none was free the last time one was looked for. */
#define RLY_HIST_NONE 0xFFFFFFFFu

/** Bytes per chain in the dedup region: the header, then a sequence slot per window entry. */
#define RLY_DEDUP_STRIDE(window) (sizeof(struct rly_dedup_chain) + 8u * (uint64_t)(window))

#define RLY_DEDUP_TAG_FREE 0u
#define RLY_DEDUP_TAG_CLAIMING 1u
#define RLY_DEDUP_TAG_RECLAIMING 2u

#ifdef __cplusplus
}
#endif
#endif /* RLY_SHM_H */
