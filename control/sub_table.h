/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-control's view of the subscriptions: one entry per (stream, partition, subscriber address),
 * found by key through a hash table and by lease expiry through a min-heap, so renewing a lease
 * and finding the next one to expire are both O(log n) whatever the table size.
 */
#ifndef RLY_CONTROL_SUB_TABLE_H
#define RLY_CONTROL_SUB_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "relay/shm.h"

/** What identifies a subscription (the dataplane's SUB_ADD upsert key). */
struct rly_ctl_sub_key {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint32_t ip_be;
	uint16_t udp_port_be;
	uint16_t pad; /* zero, so keys compare with memcmp */
};

struct rly_ctl_sub {
	struct rly_ctl_sub_key key;
	struct rly_endpoint ep; /* as last sent to the dataplane */
	uint32_t lease_ms;	/* granted lease, the renewal step */
	uint8_t who[RLY_ID_LEN]; /* identity that proved itself (SUBSCRIBE_SIGNED), or zero */
	uint8_t proven;		/* who is known; 0 after a resync under a registry */
	uint8_t graces;		/* lease ends postponed since the last renewal */
	uint64_t expires_ms;
	size_t heap_idx;
	struct rly_ctl_sub *next; /* hash chain */
};

struct rly_ctl_sub_table {
	struct rly_ctl_sub **buckets;
	size_t n_buckets; /* power of two */
	struct rly_ctl_sub **heap;
	size_t count;
	size_t heap_cap;
	uint8_t hash_key[16];
};

/** Build a key; unused bytes are zeroed. */
void rly_ctl_sub_key_make(struct rly_ctl_sub_key *k, const uint8_t stream[RLY_STREAM_KEY_LEN],
			  uint32_t partition, uint32_t ip_be, uint16_t udp_port_be);

/** 0 or -ENOMEM. */
int rly_ctl_sub_table_init(struct rly_ctl_sub_table *t);
void rly_ctl_sub_table_close(struct rly_ctl_sub_table *t);
/** Remove every entry. */
void rly_ctl_sub_table_clear(struct rly_ctl_sub_table *t);

struct rly_ctl_sub *rly_ctl_sub_table_find(const struct rly_ctl_sub_table *t,
					   const struct rly_ctl_sub_key *k);
/**
 * Insert or update the entry for @p k with endpoint @p ep, lease @p lease_ms expiring at
 * @p expires_ms. Returns the entry, or NULL when out of memory.
 */
struct rly_ctl_sub *rly_ctl_sub_table_upsert(struct rly_ctl_sub_table *t,
					     const struct rly_ctl_sub_key *k,
					     const struct rly_endpoint *ep, uint32_t lease_ms,
					     uint64_t expires_ms);
/** Move an entry's expiry. */
void rly_ctl_sub_table_renew(struct rly_ctl_sub_table *t, struct rly_ctl_sub *s,
			     uint64_t expires_ms);
/** Unlink and free an entry. */
void rly_ctl_sub_table_remove(struct rly_ctl_sub_table *t, struct rly_ctl_sub *s);
/** The entry that expires first, or NULL when empty. */
struct rly_ctl_sub *rly_ctl_sub_table_first(const struct rly_ctl_sub_table *t);

#endif
