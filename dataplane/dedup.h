/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Message de-duplication for streams that have peer relays: has this worker, or any other, already
 * forwarded (publisher, chain, seq) of this stream?
 *
 * The table is the dedup region of the shared-memory object (struct rly_dedup_chain in
 * include/relay/shm.h, where the lock-free protocol is written down), so relay-control reads each
 * chain's `highest` for its IHAVE summaries without asking the dataplane. Workers share it without
 * locks: a chain is found by linear probing over a short window from its keyed hash and claimed
 * with one CAS; a message is accepted by one CAS on its sequence slot. The manager lcore reclaims
 * idle chains (dedup.c) behind an RCU grace period, the way the subscriber table frees sets.
 *
 * Only streams with a peer endpoint pay for this (the fan-out checks rly_sub_set.n_peers first),
 * so a relay without peers forwards exactly as before. When the table has no room, a message is
 * forwarded untracked: failing open costs a duplicate that subscribers drop themselves (they
 * check seq against prev_seq), failing closed would lose messages.
 *
 * Hot path: this header (the reader side) makes no syscall and takes no lock;
 * tools/check-hotpath.sh lists it.
 */
#ifndef RLY_DATAPLANE_DEDUP_H
#define RLY_DATAPLANE_DEDUP_H

#include <stdint.h>
#include <string.h>

#include "common/hist.h"
#include "relay/shm.h"
#include "relay/wire.h"

/** Chains a message's hash may sit in: its home slot and the next RLY_DEDUP_PROBE - 1. */
#define RLY_DEDUP_PROBE 8u

/** What rly_dedup_check found. X(name, description) */
#define RLY_FOREACH_DEDUP_RESULT(X)                                                                    \
	X(NEW, "first time seen: forward it")                                                          \
	X(DUPLICATE, "seen before: drop it")                                                           \
	X(TOO_OLD, "a whole window below the chain's highest, or its slot holds a later seq: drop it") \
	X(UNTRACKED, "no chain slot is free, or one is being claimed: forward it unchecked")

enum rly_dedup_result {
#define X(name, desc) RLY_DEDUP_##name,
	RLY_FOREACH_DEDUP_RESULT(X)
#undef X
};

/** A process's view of the dedup region. Workers read it; dedup.c's manager fields are apart. */
struct rly_dedup {
	uint8_t *base;     /* first chain */
	uint64_t stride;   /* bytes per chain */
	uint32_t mask;     /* chains - 1 */
	uint32_t window;   /* slots per chain, a power of two */
	uint64_t seed0, seed1; /* per process: the hash is keyed, so senders cannot aim at a window */
	/* the history slots that go with the chains (common/hist.h); base NULL: none */
	struct rly_hist hist;
	/* manager only, on a line of their own */
	uint64_t idle_tsc __attribute__((aligned(64))); /* a chain idle this long is reclaimed */
	uint64_t scan_tsc;  /* the table is walked at most this often */
	uint64_t next_scan;
	uint32_t in_use;    /* chains claimed at the last walk (the DEDUP_CHAINS gauge) */
	uint32_t hist_in_use; /* history slots in use at the last walk (the HIST_CHAINS gauge) */
};

static inline struct rly_dedup_chain *rly_dedup_chain_at(const struct rly_dedup *d, uint32_t i)
{
	return (struct rly_dedup_chain *)(d->base + (uint64_t)i * d->stride);
}

static inline uint64_t *rly_dedup_slots(struct rly_dedup_chain *c)
{
	return (uint64_t *)(c + 1);
}

/* The statistics are approximate (shm.h): a lost increment between workers is fine, a locked
 * instruction per message is not. Relaxed atomics keep it a defined race. */
static inline void rly_dedup_bump(uint64_t *v)
{
	__atomic_store_n(v, __atomic_load_n(v, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

static inline uint64_t rly_dedup_mum(uint64_t a, uint64_t b)
{
	__uint128_t m = (__uint128_t)a * b;
	return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/*
 * Keyed hash of (stream key, partition, chain, publisher): the first 56 bytes of a message header,
 * as seven words. Never 0, 1 or 2 (those tags mean free, claiming, reclaiming).
 */
static inline uint64_t rly_dedup_hash(const struct rly_dedup *d, const struct rly_wire_msg_hdr *h)
{
	const uint8_t *p = (const uint8_t *)h;
	uint64_t w[7], x;

	memcpy(w, p, sizeof(w));
	x = rly_dedup_mum(w[0] ^ d->seed0, w[1] ^ d->seed1);
	x = rly_dedup_mum(w[2] ^ d->seed0 ^ x, w[3] ^ d->seed1);
	x = rly_dedup_mum(w[4] ^ d->seed0 ^ x, w[5] ^ d->seed1);
	x = rly_dedup_mum(w[6] ^ d->seed0 ^ x, d->seed1 ^ 0x9e3779b97f4a7c15ull);
	return x > RLY_DEDUP_TAG_RECLAIMING ? x : x + 3;
}

static inline int rly_dedup_same(const struct rly_dedup_chain *c, const struct rly_wire_msg_hdr *h)
{
	return c->partition == rly_be32_load(&h->partition) && c->chain == rly_be32_load(&h->chain) &&
	       memcmp(c->stream_key, h->stream_key, RLY_STREAM_KEY_LEN) == 0 &&
	       memcmp(c->publisher, h->publisher, RLY_ID_LEN) == 0;
}

/*
 * The message's chain: found, or claimed in the first free slot of its probe window. NULL when
 * the window has no free slot, or one is being claimed (possibly for this very chain, by another
 * worker: claiming a second slot would split the chain in two).
 */
static inline struct rly_dedup_chain *rly_dedup_find(const struct rly_dedup *d,
						     const struct rly_wire_msg_hdr *h, uint64_t now)
{
	const uint64_t tag = rly_dedup_hash(d, h);
	struct rly_dedup_chain *free_c = NULL;

	for (uint32_t i = 0; i < RLY_DEDUP_PROBE; i++) {
		struct rly_dedup_chain *c = rly_dedup_chain_at(d, (uint32_t)(tag + i) & d->mask);
		/* Pairs with the release store of the tag in the claim below (or another worker's). */
		uint64_t t = __atomic_load_n(&c->tag, __ATOMIC_ACQUIRE);

		if (t == tag && rly_dedup_same(c, h))
			return c;
		if (t == RLY_DEDUP_TAG_CLAIMING)
			return NULL;
		if (t == RLY_DEDUP_TAG_FREE && free_c == NULL)
			free_c = c;
	}
	if (free_c == NULL)
		return NULL;
	{
		uint64_t expect = RLY_DEDUP_TAG_FREE;
		if (!__atomic_compare_exchange_n(&free_c->tag, &expect, RLY_DEDUP_TAG_CLAIMING, 0,
						 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
			return NULL; /* another worker got there first; this message goes untracked */
	}
	free_c->partition = rly_be32_load(&h->partition);
	free_c->first_seq = rly_be64_load(&h->seq);
	free_c->chain = rly_be32_load(&h->chain);
	memcpy(free_c->stream_key, h->stream_key, RLY_STREAM_KEY_LEN);
	memcpy(free_c->publisher, h->publisher, RLY_ID_LEN);
	/* Before the tag: the manager must never see a claimed chain with no time (idle forever). */
	__atomic_store_n(&free_c->last_tsc, now, __ATOMIC_RELAXED);
	/* Releases the identity: a reader that sees the tag sees the fields (shm.h). */
	__atomic_store_n(&free_c->tag, tag, __ATOMIC_RELEASE);
	return free_c;
}

/** A datagram's source as rly_dedup_chain.first_src holds it. */
static inline uint64_t rly_dedup_src(uint32_t ip_be, uint16_t udp_port_be)
{
	return (uint64_t)ip_be << 16 | udp_port_be;
}

/**
 * Check message @p h, which came from @p src, against its chain @p c (found by rly_dedup_find, or
 * remembered with its tag by the caller, within the same RCU read-side section) at time @p now,
 * and record it when new.
 */
static inline enum rly_dedup_result rly_dedup_check_in(const struct rly_dedup *d,
						       struct rly_dedup_chain *c,
						       const struct rly_wire_msg_hdr *h, uint64_t now,
						       uint64_t src)
{
	const uint64_t seq = rly_be64_load(&h->seq);
	uint64_t *slot, v, hi;

	hi = __atomic_load_n(&c->highest, __ATOMIC_RELAXED);
	if (hi >= d->window && seq <= hi - d->window)
		goto too_old;
	slot = &rly_dedup_slots(c)[seq & (d->window - 1)];
	v = __atomic_load_n(slot, __ATOMIC_RELAXED);
	for (;;) {
		if (v == seq) {
			rly_dedup_bump(&c->duplicates);
			return RLY_DEDUP_DUPLICATE;
		}
		if (v > seq)
			goto too_old;
		/* Only one of the workers racing on this slot moves it to seq. */
		if (__atomic_compare_exchange_n(slot, &v, seq, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			break;
	}
	while (hi < seq &&
	       !__atomic_compare_exchange_n(&c->highest, &hi, seq, 1, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED))
		;
	__atomic_store_n(&c->last_tsc, now, __ATOMIC_RELAXED);
	/* relay-control keeps the eager links that deliver first (Plumtree). */
	__atomic_store_n(&c->first_src, src, __ATOMIC_RELAXED);
	rly_dedup_bump(&c->accepted);
	return RLY_DEDUP_NEW;
too_old:
	rly_dedup_bump(&c->duplicates);
	return RLY_DEDUP_TOO_OLD;
}

/**
 * Check message @p h, which came from @p src (rly_dedup_src), against its chain at time @p now
 * (the worker's TSC) and record it when new; its chain (NULL when untracked) in *@p chain. Any
 * number of workers may call this at once for the same chain: exactly one of them gets
 * RLY_DEDUP_NEW for a given seq.
 */
static inline enum rly_dedup_result rly_dedup_check_at(const struct rly_dedup *d,
						       const struct rly_wire_msg_hdr *h, uint64_t now,
						       uint64_t src, struct rly_dedup_chain **chain)
{
	struct rly_dedup_chain *c = rly_dedup_find(d, h, now);

	*chain = c;
	if (c == NULL)
		return RLY_DEDUP_UNTRACKED;
	return rly_dedup_check_in(d, c, h, now, src);
}

/**
 * 1 if @p c, remembered with tag @p tag, is still message @p h's chain, given that @p h is of the
 * same stream and partition (the caller's lookup slot says so): same tag, chain number and
 * publisher. Far cheaper than rly_dedup_find for a run of messages of one chain.
 */
static inline int rly_dedup_still(const struct rly_dedup_chain *c, uint64_t tag,
				  const struct rly_wire_msg_hdr *h)
{
	return c != NULL && __atomic_load_n(&c->tag, __ATOMIC_ACQUIRE) == tag &&
	       c->chain == rly_be32_load(&h->chain) &&
	       memcmp(c->publisher, h->publisher, RLY_ID_LEN) == 0;
}

/** rly_dedup_check_at without the chain. */
static inline enum rly_dedup_result rly_dedup_check(const struct rly_dedup *d,
						    const struct rly_wire_msg_hdr *h, uint64_t now,
						    uint64_t src)
{
	struct rly_dedup_chain *c;
	return rly_dedup_check_at(d, h, now, src, &c);
}

/**
 * The chain named by the first 56 bytes at @p ident (stream key, partition, chain, publisher: the
 * layout of a message header, a NAK and a GAP alike), or NULL; its tag in *@p tag. Never claims.
 */
static inline struct rly_dedup_chain *rly_dedup_lookup(const struct rly_dedup *d, const void *ident,
							uint64_t *tag)
{
	const struct rly_wire_msg_hdr *h = (const struct rly_wire_msg_hdr *)ident;
	const uint64_t want = rly_dedup_hash(d, h);

	for (uint32_t i = 0; i < RLY_DEDUP_PROBE; i++) {
		struct rly_dedup_chain *c = rly_dedup_chain_at(d, (uint32_t)(want + i) & d->mask);
		uint64_t t = __atomic_load_n(&c->tag, __ATOMIC_ACQUIRE);

		if (t == want && rly_dedup_same(c, h)) {
			*tag = t;
			return c;
		}
	}
	return NULL;
}

/** Index of chain @p c in the region. */
static inline uint32_t rly_dedup_index(const struct rly_dedup *d, const struct rly_dedup_chain *c)
{
	return (uint32_t)(((const uint8_t *)c - d->base) / d->stride);
}

/**
 * Point @p d at @p chains chains of @p window slots at @p base (all zero: a fresh shm region),
 * with random hash seeds. Chains idle for @p idle_tsc cycles are reclaimed by rly_dedup_reclaim.
 * Returns 0 or -errno.
 */
int rly_dedup_init(struct rly_dedup *d, void *base, uint32_t chains, uint32_t window,
		   uint64_t idle_tsc, uint64_t tsc_hz);

/**
 * Manager lcore, a registered QSBR thread: at most every scan interval, reclaim the chains idle
 * longer than idle_tsc at @p now (tag -> RECLAIMING, a grace period, slots zeroed, tag -> FREE).
 * Returns chains reclaimed; d->in_use is the number still claimed.
 */
unsigned rly_dedup_reclaim(struct rly_dedup *d, uint64_t now);

#endif
