/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peering: sessions with other relays, per-stream overlays between the relays that serve a stream,
 * and the discovery that finds them (docs/overlay.md).
 *
 * A relay serves a stream while it has local subscribers or a local publisher. It then announces
 * itself under the stream's key (discovery.h), looks the key up, and links to up to `degree` other
 * relays of the stream (accepting at most `degree_max`). A link needs a peer session: the
 * subscribe handshake made mutual and signed by both relays' identities (PEER_HELLO). Every link
 * starts eager: the dataplane holds the peer as an endpoint of the stream flagged RLY_EP_F_PEER,
 * pushes the stream's messages to it and drops duplicates by (publisher, chain, seq). A duplicate
 * that arrives over an eager link makes that link lazy on both ends (PRUNE, as in Plumtree); lazy
 * links carry IHAVE summaries (the highest seq per chain, read from the dataplane's dedup region),
 * and a relay that sees it misses a message for longer than `miss_ms` grafts the link back to
 * eager. A peer that stops answering for `dead_ms` loses its links, and the overlay fills the gap
 * from discovery.
 *
 * Like the subscription service it reaches the dataplane only through callbacks and takes the time
 * as an argument, so tests drive several relays' peering in one process.
 */
#ifndef RLY_CONTROL_PEERS_H
#define RLY_CONTROL_PEERS_H

#include <stdint.h>

#include "relay/client.h"
#include "relay/counters.h"
#include "relay/shm.h"
#include "relay/wire.h"

#include "control/secret.h"

/** Most seeds relay-control takes. */
#define RLY_PEER_SEEDS_MAX 16u
/** Most links one relay keeps per stream (the ceiling for degree_max). */
#define RLY_PEER_DEGREE_CAP 16u

struct rly_ctl_peer_addr {
	uint32_t ip_be;
	uint16_t port_be;
	uint8_t has_id;		/**< a seed whose identity is pinned (--seed IP:PORT@KEY) */
	uint8_t id[RLY_ID_LEN];
};

struct rly_ctl_peers_cfg {
	const struct rly_identity *id; /**< the relay's identity; NULL: peering off */
	uint32_t degree;	       /**< links a relay makes per stream */
	uint32_t degree_max;	       /**< links it accepts per stream */
	uint32_t ping_ms;	       /**< keepalive interval of a session */
	uint32_t dead_ms;	       /**< a session silent this long is dead */
	uint32_t ihave_ms;	       /**< IHAVE interval over lazy links */
	uint32_t miss_ms;	       /**< a message an IHAVE announced may be this late before a GRAFT */
	uint32_t linger_ms;	       /**< a stream is served this long after its last local sign */
	uint32_t challenge_ttl_ms;     /**< PEER_HELLO cookie lifetime */
	int keep_fastest;	       /**< never prune the link that brings a chain first (fewer
					    holes with several publishers, more duplicates) */
	uint32_t overlays_max;	       /**< streams served at once; 0: 1024. Each costs 3.6 KiB */
	uint32_t n_seeds;
	struct rly_ctl_peer_addr seeds[RLY_PEER_SEEDS_MAX];
	/* discovery */
	int disc_backend;	   /**< RLY_DISC_BACKEND_* (discovery.h) */
	uint32_t disc_ttl_ms;	   /**< lifetime of our discovery records */
	uint32_t disc_lookup_ms;   /**< watched streams are looked up again this often */
	const char *dht_bind;	   /**< DHT backend: address and port to bind, bootstrap nodes */
	uint16_t dht_port;
	const char *dht_bootstrap;
};

#define RLY_CTL_PEERS_CFG_DEFAULT                                                                  \
	{                                                                                          \
		.degree = 4, .degree_max = 8, .ping_ms = 1000, .dead_ms = 3000, .ihave_ms = 50,    \
		.miss_ms = 100, .linger_ms = 30000, .challenge_ttl_ms = 10000,                     \
		.disc_ttl_ms = 60000, .disc_lookup_ms = 2000,                                      \
	}

/** How peering reaches the dataplane and the subscription service. */
struct rly_ctl_peers_io {
	void *ctx;
	/** Hand one record to the dataplane's tx path. 0, or -ENOBUFS. */
	int (*send)(void *ctx, struct rly_pkt_rec *rec);
	/** Add (@p add = 1) or remove a peer endpoint of (stream, partition). 0, or -ENOMEM. */
	int (*link)(void *ctx, int add, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
		    const struct rly_endpoint *ep);
	/**
	 * Optional: key routing between relays. A KEY_REQUEST from a peer relay (token checked,
	 * then zeroed) and a KEY_RESPONSE from one, handed to the key routing.
	 */
	void (*key_request)(void *ctx, const struct rly_endpoint *from,
			    const struct rly_wire_key_request *r, uint64_t now_ms);
	void (*key_response)(void *ctx, const struct rly_pkt_rec *rec,
			     const struct rly_endpoint *from, const struct rly_wire_key_response *r);
	/** Call @p cb for every (stream, partition) with a local subscriber. */
	void (*foreach_local)(void *ctx,
			      void (*cb)(void *arg, const uint8_t key[RLY_STREAM_KEY_LEN],
					 uint32_t partition),
			      void *arg);
};

struct rly_ctl_peers;
struct rly_shm;

/** 0, or -errno with a message. Peering is off (every PEER_* refused) when cfg->id is NULL. */
int rly_ctl_peers_create(struct rly_ctl_peers **out, const struct rly_ctl_peers_cfg *cfg,
			 const uint8_t secret[RLY_CTL_SECRET_LEN], const struct rly_ctl_peers_io *io);
void rly_ctl_peers_free(struct rly_ctl_peers *p);

/** 1 when the relay has an identity and peers. */
int rly_ctl_peers_enabled(const struct rly_ctl_peers *p);

/**
 * The dataplane is attached: our address, port and the dedup region come from @p shm, counters
 * go to @p ctr. The first call opens discovery and the sessions to the seeds. 0, or -errno with a
 * message (the discovery backend could not start).
 */
int rly_ctl_peers_attach(struct rly_ctl_peers *p, const struct rly_shm *shm,
			 struct rly_ctr_block *ctr, uint64_t now_ms);
/**
 * For tests without a dataplane: our address (network order), and the dedup region (NULL: none;
 * else @p chains records of @p stride bytes, TSC at @p tsc_hz). Then as rly_ctl_peers_attach.
 */
int rly_ctl_peers_set_self(struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_be,
			   const void *dedup, uint32_t chains, uint64_t stride, uint64_t tsc_hz,
			   uint64_t now_ms);
/** We are stopping: tell every peer (BYE), so it replaces our links at once, not after dead_ms. */
void rly_ctl_peers_shutdown(struct rly_ctl_peers *p);
/** For tests: the history slots that go with the dedup region of rly_ctl_peers_set_self. */
void rly_ctl_peers_set_history(struct rly_ctl_peers *p, void *slots, uint32_t n, uint32_t index,
			       uint64_t bytes);
/** The dataplane went away: its endpoints went with it; sessions are kept, links forgotten. */
void rly_ctl_peers_detach(struct rly_ctl_peers *p);

/**
 * A punted record for peering: a PEER_* datagram, or a flagged record (RLY_PKT_F_NEIGH,
 * PUBLISHED, DUPLICATE). Returns 1 if it was one of those (handled), 0 if not ours.
 */
int rly_ctl_peers_on_packet(struct rly_ctl_peers *p, const struct rly_pkt_rec *rec,
			    uint64_t now_ms);

/** A subscriber was added to (stream, partition): serve the stream from now on. */
void rly_ctl_peers_on_subscribed(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
				 uint32_t partition, uint64_t now_ms);

/**
 * A resync found a peer endpoint in the dataplane's table (left by an earlier relay-control): it
 * keeps forwarding until the link is made again or `dead_ms` passes, then it is removed.
 */
void rly_ctl_peers_on_dump_peer(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
				uint32_t partition, const struct rly_endpoint *ep, uint64_t now_ms);

/** Timers: handshakes, keepalives, overlay upkeep, IHAVE, grafts, discovery. Returns work done. */
unsigned rly_ctl_peers_tick(struct rly_ctl_peers *p, uint64_t now_ms);

/** What a test or relay-stat wants to know about one stream's overlay. */
struct rly_ctl_overlay_info {
	int member;
	unsigned eager, lazy, joining, candidates;
};
/** 0 and @p out filled, or -ENOENT when the relay does not serve the stream. */
int rly_ctl_peers_overlay_info(const struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
			       uint32_t partition, struct rly_ctl_overlay_info *out);
/**
 * Send KEY_REQUEST @p r (its token is replaced by each peer's session token) to every relay linked
 * with us on its stream, eager or lazy, but @p not (NULL: none left out). Returns how many.
 */
unsigned rly_ctl_peers_key_forward(struct rly_ctl_peers *p, const struct rly_wire_key_request *r,
				   const struct rly_endpoint *not);

/** Sessions in state UP. */
unsigned rly_ctl_peers_sessions_up(const struct rly_ctl_peers *p);

#endif
