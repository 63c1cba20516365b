/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subscriber table: (stream key, partition) -> the set of endpoints that get its messages.
 *
 * One writer (the manager lcore), many readers (the workers), liburcu QSBR: a reader's lookup is a
 * hash, a bucket walk and a pointer load, with no atomics or fences; workers announce a quiescent
 * state once per loop turn. A change never modifies what a reader may be looking at: the writer
 * builds a new endpoint set, publishes it with one pointer store, and frees the old one only after
 * every worker has passed a quiescent state (rly_subtable_reclaim). So a change never stalls a
 * worker, and a worker never sees a half-made set.
 *
 * The hash is keyed with a per-process random secret: stream keys come from the network, and an
 * unkeyed hash would let anyone who can subscribe pile streams into one bucket.
 */
#ifndef RLY_DATAPLANE_SUBTABLE_H
#define RLY_DATAPLANE_SUBTABLE_H

#include <stdint.h>
#include <string.h>

#include <urcu-qsbr.h>
#include <urcu/rculfhash.h>

#include "relay/shm.h"

/**
 * An immutable set of endpoints, replaced as a whole on every change. n_peers counts the endpoints
 * flagged RLY_EP_F_PEER: the fan-out de-duplicates a set's messages only when it is not 0.
 */
struct rly_sub_set {
	uint32_t n;
	uint32_t n_peers;
	struct rly_sub_set *retired_next; /* writer only */
	struct rly_endpoint ep[];
};

/** A stream's table entry. Readers use node, key, partition and set only. */
struct rly_stream_entry {
	struct cds_lfht_node node;
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	struct rly_sub_set *set; /* RCU pointer; never NULL while the entry is in the table */
	/* writer only */
	struct rly_stream_entry *list_prev, *list_next;
	struct rly_stream_entry *retired_next;
};

/**
 * A stream's publisher admission list, immutable once published (replaced as a whole). Keys are
 * sorted so a long list is searched in log time.
 */
struct rly_admit {
	uint32_t n;
	uint32_t flags; /* RLY_ADMIT_F_* */
	uint32_t epoch; /* relay-control's push epoch (ADMIT_SWEEP) */
	uint32_t reserved;
	struct rly_admit *retired_next; /* writer only */
	uint8_t pk[][RLY_ID_LEN];
};

struct rly_admit_entry {
	struct cds_lfht_node node;
	uint8_t key[RLY_STREAM_KEY_LEN];
	struct rly_admit *admit; /* RCU pointer, never NULL while in the table */
	struct rly_admit_entry *retired_next; /* writer only */
	struct rly_admit_entry *list_prev, *list_next; /* writer only: every entry, for sweeps */
};

struct rly_subtable {
	struct cds_lfht *ht;
	struct cds_lfht *admit_ht;
	uint32_t admit_mode; /* 1: only admitted publishers are forwarded (atomic, read per burst) */
	/*
	 * Bumped (release) after every change and before the grace period that frees what it
	 * replaced: a reader that finds it unchanged may keep using set pointers it looked up
	 * earlier, even across quiescent states (the workers' lookup caches rely on this).
	 */
	uint64_t generation;
	uint64_t seed0, seed1;
	uint32_t max_streams;
	uint32_t max_subs;
	/* writer only */
	uint32_t n_streams;
	uint32_t n_subs;
	struct rly_stream_entry *list;     /* every entry, for dumps */
	struct rly_sub_set *retired_sets;
	struct rly_stream_entry *retired_entries;
	uint32_t n_admit;
	struct rly_admit_entry *admit_list;
	struct rly_admit *retired_admits;
	struct rly_admit_entry *retired_admit_entries;
	/* the list an ADMIT_BEGIN .. ADMIT_COMMIT sequence is building */
	struct rly_admit *building;
	uint32_t building_cap;
	uint8_t building_key[RLY_STREAM_KEY_LEN];
};

static inline unsigned long rly_subtable_hash(const struct rly_subtable *t, const uint8_t *key,
					      uint32_t partition)
{
	uint64_t a, b;
	__uint128_t m;

	memcpy(&a, key, 8);
	memcpy(&b, key + 8, 8);
	m = (__uint128_t)(a ^ t->seed0) * (b ^ t->seed1 ^ partition);
	return (unsigned long)((uint64_t)m ^ (uint64_t)(m >> 64));
}

struct rly_subtable_match {
	const uint8_t *key;
	uint32_t partition;
};

static inline int rly_subtable_match_fn(struct cds_lfht_node *node, const void *arg)
{
	const struct rly_stream_entry *e = caa_container_of(node, struct rly_stream_entry, node);
	const struct rly_subtable_match *m = arg;
	return e->partition == m->partition && memcmp(e->key, m->key, RLY_STREAM_KEY_LEN) == 0;
}

/**
 * The subscriber set of (key, partition), or NULL. Reader side: the calling thread is a registered,
 * online QSBR thread, and the set stays valid until its next quiescent state.
 */
static inline const struct rly_sub_set *rly_subtable_lookup(const struct rly_subtable *t,
							    const uint8_t *key, uint32_t partition)
{
	struct rly_subtable_match m = {key, partition};
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(t->ht, rly_subtable_hash(t, key, partition), rly_subtable_match_fn, &m, &it);
	node = cds_lfht_iter_get_node(&it);
	if (node == NULL)
		return NULL;
	return rcu_dereference(caa_container_of(node, struct rly_stream_entry, node)->set);
}

/** Where an endpoint sorts in a set: by address, then port (both compared as stored). */
static inline uint64_t rly_sub_set_order(uint32_t ip_be, uint16_t udp_port_be)
{
	return (uint64_t)ip_be << 16 | udp_port_be;
}

/**
 * Where (@p ip_be, @p udp_port_be) is or would go in @p s: the first index whose endpoint does not
 * sort before it (sets are kept sorted by rly_sub_set_order). A binary search.
 */
static inline uint32_t rly_sub_set_lower_bound(const struct rly_sub_set *s, uint32_t ip_be,
					       uint16_t udp_port_be)
{
	uint64_t want = rly_sub_set_order(ip_be, udp_port_be);
	uint32_t lo = 0, hi = s->n;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (rly_sub_set_order(s->ep[mid].ip_be, s->ep[mid].udp_port_be) < want)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/**
 * 1 if @p s has the endpoint (@p ip_be, @p udp_port_be): cheap enough for the worker to ask it of
 * every control datagram that claims a subscription.
 */
static inline int rly_sub_set_has(const struct rly_sub_set *s, uint32_t ip_be, uint16_t udp_port_be)
{
	uint32_t i = rly_sub_set_lower_bound(s, ip_be, udp_port_be);

	return i < s->n && s->ep[i].ip_be == ip_be && s->ep[i].udp_port_be == udp_port_be;
}

/** Index of the peer endpoint (@p ip_be, @p udp_port_be) in @p s, or -1 if it is not a peer of it. */
static inline int32_t rly_sub_set_peer(const struct rly_sub_set *s, uint32_t ip_be,
				       uint16_t udp_port_be)
{
	uint32_t i = rly_sub_set_lower_bound(s, ip_be, udp_port_be);

	if (i < s->n && s->ep[i].ip_be == ip_be && s->ep[i].udp_port_be == udp_port_be &&
	    (s->ep[i].flags & RLY_EP_F_PEER))
		return (int32_t)i;
	return -1;
}

/** Allocate a table for at most @p max_streams streams of at most @p max_subs endpoints each. */
struct rly_subtable *rly_subtable_create(uint32_t max_streams, uint32_t max_subs);
/** Free the table and everything in it; no reader may be using it. */
void rly_subtable_free(struct rly_subtable *t);

/* Writer side: one thread only, registered with rcu_register_thread() and online. */

/**
 * Add or update @p ep (keyed by address and UDP port) under (key, partition): RLY_CMD_EXISTS when
 * an identical endpoint is there already, RLY_CMD_OK when it was added or when an endpoint with
 * that address and port had another port id, MAC or flags (it is replaced).
 */
int rly_subtable_add(struct rly_subtable *t, const uint8_t *key, uint32_t partition,
		     const struct rly_endpoint *ep);
/** Remove the endpoint with @p ep's address and UDP port from (key, partition). */
int rly_subtable_del(struct rly_subtable *t, const uint8_t *key, uint32_t partition,
		     const struct rly_endpoint *ep);
static inline int rly_admit_match_fn(struct cds_lfht_node *node, const void *key)
{
	const struct rly_admit_entry *e = caa_container_of(node, struct rly_admit_entry, node);
	return memcmp(e->key, key, RLY_STREAM_KEY_LEN) == 0;
}

/** The stream's admission list, or NULL. Reader side, like rly_subtable_lookup. */
static inline const struct rly_admit *rly_subtable_admit_lookup(const struct rly_subtable *t,
								 const uint8_t *key)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(t->admit_ht, rly_subtable_hash(t, key, 0xadadadad), rly_admit_match_fn, key,
			&it);
	node = cds_lfht_iter_get_node(&it);
	if (node == NULL)
		return NULL;
	return rcu_dereference(caa_container_of(node, struct rly_admit_entry, node)->admit);
}

/** 1 if @p a admits publisher @p pk (NULL @p a: no list, so not admitted). */
static inline int rly_admit_allows(const struct rly_admit *a, const uint8_t *pk)
{
	uint32_t lo = 0, hi;

	if (a == NULL)
		return 0;
	if (a->flags & RLY_ADMIT_F_PUBLIC)
		return 1;
	hi = a->n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(pk, a->pk[mid], RLY_ID_LEN);
		if (c == 0)
			return 1;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return 0;
}

/** 1 while publisher admission is enforced. */
static inline int rly_subtable_admit_on(const struct rly_subtable *t)
{
	return (int)__atomic_load_n(&t->admit_mode, __ATOMIC_ACQUIRE);
}

static inline uint64_t rly_subtable_generation(const struct rly_subtable *t)
{
	return __atomic_load_n(&t->generation, __ATOMIC_ACQUIRE);
}

/* Publisher admission (writer side): results are enum rly_cmd_status values. */
int rly_subtable_admit_mode(struct rly_subtable *t, int on);
int rly_subtable_admit_begin(struct rly_subtable *t, const uint8_t *key, uint32_t flags);
int rly_subtable_admit_add(struct rly_subtable *t, const uint8_t *key, const uint8_t *pk);
int rly_subtable_admit_commit(struct rly_subtable *t, const uint8_t *key, uint32_t epoch);
int rly_subtable_admit_clear(struct rly_subtable *t, const uint8_t *key);
/** Remove every list committed with an epoch other than @p epoch. */
int rly_subtable_admit_sweep(struct rly_subtable *t, uint32_t epoch);

/** Wait for a grace period if anything was retired, then free it. Returns objects freed. */
unsigned rly_subtable_reclaim(struct rly_subtable *t);

/** Resumable walk over every (stream, endpoint), for dumps. */
struct rly_subtable_cursor {
	struct rly_stream_entry *entry;
	uint32_t index;
	int started;
};
/** Next endpoint; 1 and fills the outputs, or 0 at the end. The table must not change between calls. */
int rly_subtable_next(struct rly_subtable *t, struct rly_subtable_cursor *c, uint8_t *key,
		      uint32_t *partition, struct rly_endpoint *ep);

#endif
