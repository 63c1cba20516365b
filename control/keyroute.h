/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key routing (docs/encryption.md section 3): the key holders registered with relay-control, and
 * the KEY_REQUESTs and KEY_RESPONSEs it passes between subscribers and them.
 *
 * A request is forwarded (token zeroed) to at most RLY_CTL_KEYS_FANOUT holders of its publisher
 * and remembered for RLY_CTL_KEYS_PENDING_MS; the first response from one of those holders goes,
 * unchanged, to the subscriber's address. relay-control never opens, checks or stores a key.
 *
 * The subscription service owns the handshake and the subscriptions: it registers holders here
 * once their SUBSCRIBE_SIGNED passed, and answers, through the io callbacks, the questions a
 * request raises about its source (rate, subscription, token, proven identity). Time comes in as
 * `now_ms`, so tests drive it with a fake clock.
 */
#ifndef RLY_CONTROL_KEYROUTE_H
#define RLY_CONTROL_KEYROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "relay/counters.h"
#include "relay/shm.h"
#include "relay/wire.h"

#include "control/sub_table.h"

/** Most key holders a request is forwarded to. */
#define RLY_CTL_KEYS_FANOUT 4u
/** How long a forwarded request waits for its first response. */
#define RLY_CTL_KEYS_PENDING_MS 5000u

/**
 * Why a KEY_REQUEST was dropped without an answer (CTL_KEY_REFUSED), in the order the checks run.
 * X(NAME, "reason").
 */
#define RLY_CTL_FOREACH_KEY_REFUSAL(X)                                                             \
	X(OK, "accepted")                                                                          \
	X(RATE_LIMITED, "over its source address's rate")                                         \
	X(NO_SUBSCRIPTION, "no subscription on (stream, partition) from this address and port")   \
	X(BAD_TOKEN, "the token is not the subscription's")                                      \
	X(NOT_PROVEN, "the subscription proved no identity (plain SUBSCRIBE, or rebuilt by a "    \
		      "resync and not proven again)")                                              \
	X(OTHER_REQUESTER, "the subscription was proven by another identity than requester")      \
	X(BAD_SIGNATURE, "the requester's signature does not verify")

enum rly_ctl_key_refusal {
#define X(name, why) RLY_CTL_KEY_##name,
	RLY_CTL_FOREACH_KEY_REFUSAL(X)
#undef X
};

/** Lower-case name of a refusal ("bad_token"). */
const char *rly_ctl_key_refusal_name(enum rly_ctl_key_refusal r);

struct rly_ctl_keys_cfg {
	uint32_t max_holders; /**< key holders remembered; more get SUB_ACK TABLE_FULL */
	uint32_t max_pending; /**< forwarded requests remembered; more get RATE_LIMITED */
};

#define RLY_CTL_KEYS_CFG_DEFAULT {.max_holders = 4096, .max_pending = 4096}

/** What key routing needs from its owner. */
struct rly_ctl_keys_io {
	void *ctx;
	/** Hand one datagram to the dataplane's tx path. 0, or -ENOBUFS when it was dropped. */
	int (*send)(void *ctx, struct rly_pkt_rec *rec);
	/** 1 if a control datagram from @p ip_be is within its source's rate (takes a token). */
	int (*rate_ok)(void *ctx, uint32_t ip_be, uint64_t now_ms);
	/**
	 * Checks 2 and 3 of a request from @p src: its subscription on (stream, partition), the
	 * token, and the identity that subscription proved. RLY_CTL_KEY_OK or why not.
	 */
	enum rly_ctl_key_refusal (*check_subscription)(void *ctx, const struct rly_endpoint *src,
							const struct rly_wire_key_request *r);
};

struct rly_ctl_keys;
struct rly_registry;

/** 0 or -errno (message set). */
int rly_ctl_keys_create(struct rly_ctl_keys **out, const struct rly_ctl_keys_cfg *cfg,
			const struct rly_ctl_keys_io *io);
void rly_ctl_keys_free(struct rly_ctl_keys *k);

/** Count into @p block (never NULL); the CTL_KEY_HOLDERS gauge is written to it at once. */
void rly_ctl_keys_set_counters(struct rly_ctl_keys *k, struct rly_ctr_block *block);

/**
 * Register (or renew) the key holder at @p key (partition RLY_KEY_HOLDER_PARTITION) with the
 * identity @p who it proved, reached at @p ep, for @p lease_ms from @p now_ms. Logged
 * key_holder_added when new or when its identity changed. 0, or -ENOSPC when the table is full.
 */
int rly_ctl_keys_holder_add(struct rly_ctl_keys *k, const struct rly_ctl_sub_key *key,
			    const struct rly_endpoint *ep, const uint8_t who[RLY_ID_LEN],
			    uint32_t lease_ms, uint64_t now_ms);
/**
 * HEARTBEAT: renew the holder at @p key, now reached at @p ep (a restarted relay may see it on
 * another port or behind another MAC). Its lease in ms, or 0 when there is no such holder.
 */
uint32_t rly_ctl_keys_holder_renew(struct rly_ctl_keys *k, const struct rly_ctl_sub_key *key,
				   const struct rly_endpoint *ep, uint64_t now_ms);
/** UNSUBSCRIBE: remove the holder at @p key. 1 if there was one, else 0. */
int rly_ctl_keys_holder_remove(struct rly_ctl_keys *k, const struct rly_ctl_sub_key *key);
/**
 * Remove every holder whose identity @p reg no longer lets publish on its stream at unix time
 * @p unix_now (logged key_holder_removed, reason revoked). Returns the number removed.
 */
unsigned rly_ctl_keys_revalidate(struct rly_ctl_keys *k, const struct rly_registry *reg,
				 uint64_t unix_now);

/**
 * A KEY_REQUEST (parsed body @p r) from @p src: checked, then forwarded to the publisher's
 * holders, or answered UNAVAILABLE / RATE_LIMITED, or dropped (counted).
 */
void rly_ctl_keys_on_request(struct rly_ctl_keys *k, const struct rly_endpoint *src,
			     const struct rly_wire_key_request *r, uint64_t now_ms);

/**
 * Key routing between relays (docs/overlay.md, "Keys across relays"). @p fwd sends a KEY_REQUEST
 * to every overlay peer of its stream but @p not (NULL: all) and returns how many; with it, a
 * request for a publisher that has no key holder here goes to the peers instead of being answered
 * UNAVAILABLE, and the answer comes back the way the request went. NULL: off.
 */
void rly_ctl_keys_set_peers(struct rly_ctl_keys *k,
			    unsigned (*fwd)(void *ctx, const struct rly_wire_key_request *r,
					    const struct rly_endpoint *not),
			    void *ctx);

/**
 * A KEY_REQUEST from a peer relay @p from (peering checked its session and token): its signature
 * is checked, then it goes to the key holders here, or on to the other peers, once per request;
 * the answer goes back to @p from.
 */
void rly_ctl_keys_on_peer_request(struct rly_ctl_keys *k, const struct rly_endpoint *from,
				  const struct rly_wire_key_request *r, uint64_t now_ms);

/** A KEY_RESPONSE from a peer relay @p from: passed on to whoever asked this relay, if anyone. */
void rly_ctl_keys_on_peer_response(struct rly_ctl_keys *k, const struct rly_pkt_rec *rec,
				   const struct rly_endpoint *from,
				   const struct rly_wire_key_response *r);
/**
 * A KEY_RESPONSE (parsed body @p r of the punted datagram @p rec) from @p src: @p rec's datagram
 * forwarded unchanged to the subscriber waiting for it, or dropped (counted).
 */
void rly_ctl_keys_on_response(struct rly_ctl_keys *k, const struct rly_pkt_rec *rec,
			      const struct rly_endpoint *src, const struct rly_wire_key_response *r,
			      uint64_t now_ms);

/**
 * Timers: forget requests past their deadline (CTL_KEY_TIMEOUTS) and, when @p expire_holders,
 * remove holders whose lease ended. Returns the work done.
 */
unsigned rly_ctl_keys_tick(struct rly_ctl_keys *k, uint64_t now_ms, int expire_holders);

/** Key holders registered. */
size_t rly_ctl_keys_holders(const struct rly_ctl_keys *k);
/** Forwarded requests waiting for a response. */
size_t rly_ctl_keys_pending(const struct rly_ctl_keys *k);
/** Lease expiry of the holder at @p key, or 0 when there is none. */
uint64_t rly_ctl_keys_holder_expiry(const struct rly_ctl_keys *k, const struct rly_ctl_sub_key *key);

#endif
