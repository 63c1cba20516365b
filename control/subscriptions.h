/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subscription service: return-routability handshake, leases, heartbeats and tokens.
 *
 * It sees the dataplane only through two callbacks (send a datagram, submit a command) and the
 * events fed back to it, and takes the time as an argument, so tests drive it with a fake clock
 * and a fake dataplane. Nothing is stored per challenge: a cookie is a keyed MAC the service can
 * recompute, and a token is a keyed MAC over the subscription's identity, so both survive a
 * restart of relay-control that keeps the same secret.
 */
#ifndef RLY_CONTROL_SUBSCRIPTIONS_H
#define RLY_CONTROL_SUBSCRIPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "relay/counters.h"
#include "relay/shm.h"
#include "relay/wire.h"

#include "control/secret.h"

struct rly_ctl_subs_cfg {
	uint32_t default_lease_ms; /**< lease of entries rebuilt from a DUMP */
	uint32_t max_lease_ms;	   /**< most a SUB_ACK grants */
	uint32_t challenge_ttl_ms; /**< cookie lifetime */
	uint32_t sub_rate_per_s;   /**< SUBSCRIBEs per second per source address */
	uint32_t sub_burst;	   /**< ... and at once */
	uint32_t rate_slots;	   /**< sources the rate limiter tracks */
	uint32_t key_holders_max;  /**< key holders remembered (0: 4096); more get TABLE_FULL */
	uint32_t key_pending_max;  /**< key requests awaiting an answer (0: 4096); more: RATE_LIMITED */
};

/** Defaults of every relay-control option that feeds the service. */
#define RLY_CTL_SUBS_CFG_DEFAULT                                                                   \
	{                                                                                          \
		.default_lease_ms = 60000, .max_lease_ms = 60000, .challenge_ttl_ms = 10000,       \
		.sub_rate_per_s = 50, .sub_burst = 100, .rate_slots = 4096,                        \
		.key_holders_max = 4096, .key_pending_max = 4096,                                  \
	}

/** How the service reaches the dataplane. */
struct rly_ctl_subs_io {
	void *ctx;
	/** Hand one datagram to the dataplane's tx path. 0, or -ENOBUFS when it was dropped. */
	int (*send)(void *ctx, struct rly_pkt_rec *rec);
	/** Queue one command; fills cmd->seq. 0, or -ENOMEM. Commands are sent in submit order. */
	int (*submit)(void *ctx, struct rly_cmd *cmd);
	/**
	 * Optional: 1 when the tx path is at least half full. Replies to requests nobody proved
	 * yet (CHALLENGE, SUB_ACK BAD_COOKIE / COOKIE_EXPIRED) are then not sent (counted
	 * CTL_REPLY_SHED), so acks to existing subscriptions find room during a SUBSCRIBE flood.
	 */
	int (*tx_crowded)(void *ctx);
};

struct rly_ctl_subs;

/** 0 or -errno. @p secret is copied; keys for cookies and tokens are derived from it. */
int rly_ctl_subs_create(struct rly_ctl_subs **out, const struct rly_ctl_subs_cfg *cfg,
			const uint8_t secret[RLY_CTL_SECRET_LEN], const struct rly_ctl_subs_io *io);
void rly_ctl_subs_free(struct rly_ctl_subs *s);

/** Count into @p block (the control block of the shm counters page); NULL: a private block. */
void rly_ctl_subs_set_counters(struct rly_ctl_subs *s, struct rly_ctr_block *block);
/** The block counted into. */
const struct rly_ctr_block *rly_ctl_subs_counters(const struct rly_ctl_subs *s);

/**
 * Handle one punted record (a control datagram from a subscriber). It is parsed again; an
 * unusable record is counted as CTL_BAD_RECORD and -EPROTO is returned. Otherwise 0.
 */
int rly_ctl_subs_on_packet(struct rly_ctl_subs *s, const struct rly_pkt_rec *rec, uint64_t now_ms);

/** Handle one event from the dataplane's manager (DONE, DUMP_ENTRY, DUMP_END). */
void rly_ctl_subs_on_event(struct rly_ctl_subs *s, const struct rly_event *ev, uint64_t now_ms);

/**
 * Forget the table and all unanswered commands, then ask the dataplane for its table (DUMP). Until
 * the dump ends the service is not ready: callers hold back punted packets, and nothing expires.
 */
int rly_ctl_subs_resync_begin(struct rly_ctl_subs *s, uint64_t now_ms);
/** 1 once the last resync finished. */
int rly_ctl_subs_ready(const struct rly_ctl_subs *s);

/** The dataplane went away: its answers will never come, forget what waits for them. */
void rly_ctl_subs_on_detach(struct rly_ctl_subs *s);

/** Log lines a second for events any source can cause (challenge_sent, subscribe_refused,
 *  subscribe_denied); the rest are summed up in a log_suppressed line. */
#define RLY_CTL_UNAUTH_LOG_PER_S 100u

/** Most times a lease end is postponed by RLY_CTL_LEASE_GRACE_DIV of the lease. */
#define RLY_CTL_LEASE_GRACES 4u
#define RLY_CTL_LEASE_GRACE_DIV 2u

/**
 * The dataplane dropped control datagrams at @p now_ms (its punt ring was full): heartbeats may
 * have been among them. A lease that ends within one lease period of this is postponed by half
 * a lease instead, at most RLY_CTL_LEASE_GRACES times in a row (counted CTL_LEASE_GRACE), so a
 * flood that crowds out heartbeats does not unsubscribe the subscribers it hid, while one that
 * really left is still removed, two leases later.
 */
void rly_ctl_subs_note_control_loss(struct rly_ctl_subs *s, uint64_t now_ms);

/** Timers: remove subscriptions whose lease passed (SUB_DEL). Returns the work done. */
unsigned rly_ctl_subs_tick(struct rly_ctl_subs *s, uint64_t now_ms);

struct rly_ctl_keys;
/** The key routing the service feeds (key holders on RLY_KEY_HOLDER_PARTITION, KEY_REQUEST,
 * KEY_RESPONSE); owned by the service. */
struct rly_ctl_keys *rly_ctl_subs_keys(const struct rly_ctl_subs *s);

/** Subscriptions in the table. */
size_t rly_ctl_subs_count(const struct rly_ctl_subs *s);
/** Commands submitted and not yet answered. */
size_t rly_ctl_subs_pending(const struct rly_ctl_subs *s);
/** Lease expiry of a subscription, or 0 when there is none. */
uint64_t rly_ctl_subs_expiry(const struct rly_ctl_subs *s, const uint8_t stream[RLY_STREAM_KEY_LEN],
			     uint32_t partition, uint32_t ip_be, uint16_t udp_port_be);

/** The token of a subscription (what SUB_ACK carries). */
struct rly_registry;

/**
 * Check subscriptions against @p reg from now on (NULL: anyone may subscribe, the relay core's
 * behaviour). @p unix_now gives the wall-clock seconds grants expire by. Not owned.
 */
void rly_ctl_subs_set_registry(struct rly_ctl_subs *s, const struct rly_registry *reg,
			       uint64_t (*unix_now)(void));

/**
 * After the registry changed: remove every subscription whose proven identity it no longer
 * allows (SUB_DEL, logged subscription_revoked), and mark those without a proven identity that it
 * does not allow anonymously, so their next heartbeat is asked to subscribe again with proof.
 * Returns the number removed.
 */
unsigned rly_ctl_subs_revalidate(struct rly_ctl_subs *s);

/**
 * Push the registry's publisher admission to the dataplane: ADMIT_MODE, then for every stream of
 * @p reg a list committed under a new epoch, then ADMIT_SWEEP. With @p reg NULL: ADMIT_MODE off.
 * Answers are checked and refusals logged. 0, or -ENOMEM.
 */
int rly_ctl_subs_push_admission(struct rly_ctl_subs *s, const struct rly_registry *reg);

/**
 * Tell peering about the table: @p on_subscribed when a subscriber (not a key holder) was added
 * to (stream, partition), @p on_dump_peer when a resync finds a peer endpoint (RLY_EP_F_PEER) in
 * the dataplane's table. Peer endpoints are peering's (rly_ctl_subs_peer_link), never
 * subscriptions; without hooks a resync removes them.
 */
void rly_ctl_subs_set_peering(
    struct rly_ctl_subs *s,
    void (*on_subscribed)(void *, const uint8_t[RLY_STREAM_KEY_LEN], uint32_t, uint64_t),
    void (*on_dump_peer)(void *, const uint8_t[RLY_STREAM_KEY_LEN], uint32_t,
			 const struct rly_endpoint *, uint64_t),
    void *ctx);

/**
 * Add (@p add = 1) or remove a peer relay's endpoint (RLY_EP_F_PEER) of (stream, partition) in the
 * dataplane, for peering's overlay links: no lease, no reply; refusals are logged. 0, or -ENOMEM.
 */
int rly_ctl_subs_peer_link(struct rly_ctl_subs *s, int add, const uint8_t key[RLY_STREAM_KEY_LEN],
			   uint32_t partition, const struct rly_endpoint *ep);

/** Call @p cb once for every (stream, partition) with at least one subscriber (key holders not). */
void rly_ctl_subs_foreach_stream(const struct rly_ctl_subs *s,
				 void (*cb)(void *arg, const uint8_t key[RLY_STREAM_KEY_LEN],
					    uint32_t partition),
				 void *arg);

void rly_ctl_subs_token(const struct rly_ctl_subs *s, uint32_t ip_be, uint16_t udp_port_be,
			const uint8_t stream[RLY_STREAM_KEY_LEN], uint32_t partition,
			uint8_t out[RLY_COOKIE_LEN]);

#endif
