/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The key holders relay-control knows: one entry per (stream, holder address), each with the
 * identity it proved. A fixed pool sized at start-up, found two ways through keyed hash chains:
 * by address (heartbeats, unsubscribes, responses) and by (stream, identity) (which holders a
 * KEY_REQUEST goes to), so neither walks the subscriptions nor the other holders.
 *
 * Leases are checked by a scan of the pool, but only once the earliest possible expiry has come:
 * `next_expiry_ms` is a lower bound kept on insert and renew, made exact again by each scan.
 */
#ifndef RLY_CONTROL_KEY_HOLDERS_H
#define RLY_CONTROL_KEY_HOLDERS_H

#include <stddef.h>
#include <stdint.h>

#include "relay/shm.h"
#include "relay/wire.h"

#include "control/sub_table.h"

struct rly_ctl_holder {
	struct rly_ctl_sub_key key; /* stream, RLY_KEY_HOLDER_PARTITION, holder address */
	struct rly_endpoint ep;	    /* where forwarded requests go */
	uint8_t who[RLY_ID_LEN];    /* the identity it proved (SUBSCRIBE_SIGNED) */
	uint32_t lease_ms;
	uint64_t expires_ms;
	struct rly_ctl_holder *addr_next; /* address chain; the free list when unused */
	struct rly_ctl_holder *id_next;	  /* (stream, identity) chain */
	uint8_t used;
};

struct rly_ctl_holder_table {
	struct rly_ctl_holder *slots; /* `max` entries, allocated once */
	struct rly_ctl_holder *free;
	struct rly_ctl_holder **by_addr;
	struct rly_ctl_holder **by_id;
	uint32_t max;
	uint32_t n_buckets; /* power of two, per index */
	uint32_t count;
	uint64_t next_expiry_ms; /* no entry expires before this; UINT64_MAX when empty */
	uint8_t hash_key[16];
};

/** Room for @p max holders (at least 1). 0, -EINVAL or -ENOMEM. */
int rly_ctl_holder_table_init(struct rly_ctl_holder_table *t, uint32_t max);
void rly_ctl_holder_table_close(struct rly_ctl_holder_table *t);

struct rly_ctl_holder *rly_ctl_holder_table_find(const struct rly_ctl_holder_table *t,
						 const struct rly_ctl_sub_key *k);
/** Add an entry for @p k, which must not be in the table. NULL when the table is full. */
struct rly_ctl_holder *rly_ctl_holder_table_insert(struct rly_ctl_holder_table *t,
						   const struct rly_ctl_sub_key *k,
						   const struct rly_endpoint *ep,
						   const uint8_t who[RLY_ID_LEN], uint32_t lease_ms,
						   uint64_t expires_ms);
/** Change the identity of an entry (moves it between identity chains). */
void rly_ctl_holder_table_set_who(struct rly_ctl_holder_table *t, struct rly_ctl_holder *h,
				  const uint8_t who[RLY_ID_LEN]);
void rly_ctl_holder_table_renew(struct rly_ctl_holder_table *t, struct rly_ctl_holder *h,
				uint64_t expires_ms);
/** Unlink an entry and give its slot back. */
void rly_ctl_holder_table_remove(struct rly_ctl_holder_table *t, struct rly_ctl_holder *h);

/**
 * Up to @p max holders on @p stream whose identity is @p who into @p out; returns how many. The
 * order is the chain's (most recently registered first).
 */
unsigned rly_ctl_holder_table_lookup(const struct rly_ctl_holder_table *t,
				     const uint8_t stream[RLY_STREAM_KEY_LEN],
				     const uint8_t who[RLY_ID_LEN], struct rly_ctl_holder **out,
				     unsigned max);

/** Called with each entry about to be removed; the entry is valid during the call only. */
typedef void (*rly_ctl_holder_gone_fn)(void *ctx, const struct rly_ctl_holder *h);

/**
 * Remove every entry whose lease ended at @p now_ms, calling @p gone for each first. Costs
 * nothing before next_expiry_ms. Returns the number removed.
 */
unsigned rly_ctl_holder_table_expire(struct rly_ctl_holder_table *t, uint64_t now_ms,
				     rly_ctl_holder_gone_fn gone, void *ctx);

#endif
