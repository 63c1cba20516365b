/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The message history (include/relay/shm.h, struct rly_hist_chain): one slot per publisher chain,
 * taken from a pool when the chain's first message is accepted. Workers append every message they
 * accept as new and answer subscribers' NAKs from it; relay-control answers peers' IWANTs from it.
 * Header-only and DPDK-free: the dataplane, relay-control and their tests share it.
 *
 * The writer (rly_hist_append) and the readers are on the packet path (tools/check-hotpath.sh):
 * no syscall, no lock, no allocation. A slot has any number of writers (a chain's messages reach
 * one worker when they come from one publisher socket, but may reach several from several peer
 * relays): each reserves its bytes with one atomic add, so none waits for another.
 */
#ifndef RLY_COMMON_HIST_H
#define RLY_COMMON_HIST_H

#include <stdint.h>
#include <string.h>

#include "relay/shm.h"
#include "relay/wire.h"

/** A process's view of the history region. */
struct rly_hist {
	uint8_t *base;	 /* first slot; NULL: no history */
	uint64_t stride; /* bytes per slot */
	uint64_t bytes;	 /* ring bytes per slot, a power of two */
	uint32_t index;	 /* index entries per slot, a power of two */
	uint32_t n;	 /* slots */
};

/** Smallest ring a slot may have: two of the largest records fit, so a skip never repeats. */
#define RLY_HIST_MIN_BYTES 8192u

/** What a look-up of one sequence found. X(name, description) */
#define RLY_FOREACH_HIST_RESULT(X)                                                                     \
	X(FOUND, "held: copied out")                                                                   \
	X(EVICTED, "was held, or older than what is held: pushed out by newer messages")               \
	X(MISSING, "never written: the relay did not receive it (or not yet)")

enum rly_hist_result {
#define X(name, desc) RLY_HIST_##name,
	RLY_FOREACH_HIST_RESULT(X)
#undef X
};

static inline void rly_hist_view(struct rly_hist *h, void *base, uint32_t n, uint32_t index,
				 uint64_t bytes)
{
	memset(h, 0, sizeof(*h));
	if (base == NULL || n == 0 || bytes == 0)
		return;
	h->base = (uint8_t *)base;
	h->n = n;
	h->index = index;
	h->bytes = bytes;
	h->stride = RLY_HIST_STRIDE(index, bytes);
}

static inline struct rly_hist_chain *rly_hist_slot(const struct rly_hist *h, uint32_t i)
{
	return (struct rly_hist_chain *)(h->base + (uint64_t)i * h->stride);
}

static inline struct rly_hist_idx *rly_hist_index(struct rly_hist_chain *hc)
{
	return (struct rly_hist_idx *)(hc + 1);
}

static inline uint8_t *rly_hist_ring(const struct rly_hist *h, struct rly_hist_chain *hc)
{
	return (uint8_t *)(rly_hist_index(hc) + h->index);
}

/** Bytes a message of @p len bytes takes in a ring. */
static inline uint64_t rly_hist_need(uint32_t len)
{
	return (sizeof(struct rly_hist_rec) + (uint64_t)len + 7u) & ~7ull;
}

/**
 * The history slot of dedup chain @p c, whose tag the caller read as @p tag; NULL when it has
 * none (never had one, none was free, or it was given to another chain since).
 */
static inline struct rly_hist_chain *rly_hist_of(const struct rly_hist *h,
						 const struct rly_dedup_chain *c, uint64_t tag)
{
	uint32_t s = __atomic_load_n(&c->hist, __ATOMIC_ACQUIRE);
	struct rly_hist_chain *hc;

	if (h->base == NULL || s == 0 || s == RLY_HIST_NONE || s > h->n)
		return NULL;
	hc = rly_hist_slot(h, s - 1);
	/* Pairs with the release store of owner in rly_hist_claim: base is set. */
	return __atomic_load_n(&hc->owner, __ATOMIC_ACQUIRE) == tag ? hc : NULL;
}

/**
 * Give dedup chain @p c (tag @p tag, index @p chain_idx) a free slot; at TSC @p now. Looks at
 * every slot from one that depends on the tag (at most 256), so it is for a chain's first
 * message, not every message: a chain that finds none is marked RLY_HIST_NONE and looks again
 * only after @p retry_tsc. Returns its slot (possibly one another worker claimed for it at the
 * same time), or NULL.
 */
static inline struct rly_hist_chain *rly_hist_claim(const struct rly_hist *h,
						    struct rly_dedup_chain *c, uint64_t tag,
						    uint32_t chain_idx, uint64_t now,
						    uint64_t retry_tsc)
{
	const uint32_t probes = h->n < 256u ? h->n : 256u;
	uint32_t cur = __atomic_load_n(&c->hist, __ATOMIC_ACQUIRE);

	if (h->base == NULL)
		return NULL;
	if (cur == RLY_HIST_NONE && now < __atomic_load_n(&c->hist_retry_tsc, __ATOMIC_RELAXED))
		return NULL;
	for (uint32_t k = 0; k < probes; k++) {
		uint32_t i = (uint32_t)((tag >> 7) + k) % h->n;
		struct rly_hist_chain *hc = rly_hist_slot(h, i);
		uint64_t expect = 0;

		if (__atomic_load_n(&hc->owner, __ATOMIC_RELAXED) != 0 ||
		    !__atomic_compare_exchange_n(&hc->owner, &expect, 1, 0, __ATOMIC_ACQUIRE,
						 __ATOMIC_RELAXED))
			continue;
		/* Positions only grow: index entries below base are the previous chain's. */
		__atomic_store_n(&hc->base, __atomic_load_n(&hc->head, __ATOMIC_RELAXED),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&hc->low_hint, 0, __ATOMIC_RELAXED);
		hc->chain_idx = chain_idx;
		__atomic_store_n(&hc->owner, tag, __ATOMIC_RELEASE);
		if (__atomic_compare_exchange_n(&c->hist, &cur, i + 1, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return hc;
		/* Another worker gave the chain a slot first: use that one, free ours. */
		__atomic_store_n(&hc->owner, 0, __ATOMIC_RELEASE);
		return rly_hist_of(h, c, tag);
	}
	__atomic_store_n(&c->hist_retry_tsc, now + retry_tsc, __ATOMIC_RELAXED);
	__atomic_compare_exchange_n(&c->hist, &cur, RLY_HIST_NONE, 0, __ATOMIC_RELAXED,
				    __ATOMIC_RELAXED);
	return NULL;
}

/**
 * Append message @p msg (@p len bytes, sequence @p seq) to slot @p hc. Returns 1, or 0 when the
 * message is larger than a record may be (cannot happen with rings of RLY_HIST_MIN_BYTES or more).
 */
static inline int rly_hist_append(const struct rly_hist *h, struct rly_hist_chain *hc, uint64_t seq,
				  const void *msg, uint32_t len)
{
	const uint64_t need = rly_hist_need(len), mask = h->bytes - 1;
	struct rly_hist_idx *ix = &rly_hist_index(hc)[seq & (h->index - 1)];
	struct rly_hist_rec *r;
	uint64_t pos, off;

	if (need * 2 > h->bytes)
		return 0;
	for (;;) {
		pos = __atomic_fetch_add(&hc->head, need, __ATOMIC_RELAXED);
		off = pos & mask;
		if (off + need <= h->bytes)
			break;
		/* Records never wrap: the tail of the ring is skipped (nobody reads it). */
	}
	/* The reservation is visible before any byte it covers changes (readers check head). */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	r = (struct rly_hist_rec *)(rly_hist_ring(h, hc) + off);
	r->pos = pos;
	r->seq = seq;
	r->len = len;
	r->reserved = 0;
	memcpy(r + 1, msg, len);
	__atomic_store_n(&ix->pos, pos + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&ix->seq, seq, __ATOMIC_RELEASE);
	return 1;
}

/**
 * Where message @p seq of slot @p hc is: RLY_HIST_FOUND with its record's position in *@p pos
 * (not yet copied: the bytes may still be overwritten; rly_hist_intact says), or why not.
 */
static inline enum rly_hist_result rly_hist_locate(const struct rly_hist *h, struct rly_hist_chain *hc,
						   uint64_t seq, uint64_t *pos)
{
	const struct rly_hist_idx *ix = &rly_hist_index(hc)[seq & (h->index - 1)];
	/* Pairs with the writer's release store of seq: pos is that write's, or a later one's. */
	uint64_t s = __atomic_load_n(&ix->seq, __ATOMIC_ACQUIRE);
	uint64_t p = __atomic_load_n(&ix->pos, __ATOMIC_RELAXED);
	uint64_t base = __atomic_load_n(&hc->base, __ATOMIC_RELAXED);

	if (seq < __atomic_load_n(&hc->low_hint, __ATOMIC_RELAXED))
		return RLY_HIST_EVICTED;
	if (s == 0 || p == 0 || p - 1 < base || s < seq)
		return RLY_HIST_MISSING;
	if (s > seq)
		return RLY_HIST_EVICTED; /* the index went round: seq's entry was reused */
	*pos = p - 1;
	if (__atomic_load_n(&hc->head, __ATOMIC_ACQUIRE) - *pos > h->bytes)
		return RLY_HIST_EVICTED;
	return RLY_HIST_FOUND;
}

/**
 * After copying the record at @p pos: 1 if no writer can have overwritten it meanwhile. Pairs with
 * the writer's release fence: had a writer reserved these bytes again, we would see its head.
 */
static inline int rly_hist_intact(const struct rly_hist *h, struct rly_hist_chain *hc, uint64_t pos)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&hc->head, __ATOMIC_RELAXED) - pos <= h->bytes;
}

/**
 * Copy message @p seq of slot @p hc, owned by the chain of tag @p tag, into @p out (@p cap bytes):
 * RLY_HIST_FOUND with its length in *@p len, or why not. The copy is checked whole (not
 * overwritten while copied), the very message asked for, and still the chain's.
 */
static inline enum rly_hist_result rly_hist_read(const struct rly_hist *h, struct rly_hist_chain *hc,
						 uint64_t tag, uint64_t seq, uint8_t *out,
						 uint32_t cap, uint32_t *len)
{
	const struct rly_wire_msg_hdr *m = (const struct rly_wire_msg_hdr *)out;
	struct rly_hist_rec rec;
	enum rly_hist_result res;
	uint64_t pos, off;

	res = rly_hist_locate(h, hc, seq, &pos);
	if (res != RLY_HIST_FOUND)
		return res;
	off = pos & (h->bytes - 1);
	memcpy(&rec, rly_hist_ring(h, hc) + off, sizeof(rec));
	if (rec.pos != pos || rec.seq != seq || rec.len < sizeof(*m) || rec.len > cap ||
	    off + sizeof(rec) + rec.len > h->bytes)
		return RLY_HIST_EVICTED; /* being overwritten as we look */
	memcpy(out, rly_hist_ring(h, hc) + off + sizeof(rec), rec.len);
	if (!rly_hist_intact(h, hc, pos))
		return RLY_HIST_EVICTED;
	if (__atomic_load_n(&hc->owner, __ATOMIC_ACQUIRE) != tag ||
	    rly_be64_load(&m->seq) != seq || rly_wire_msg_size(m) != rec.len)
		return RLY_HIST_MISSING;
	*len = rec.len;
	return RLY_HIST_FOUND;
}

/** Raise the slot's low_hint to @p seq: every sequence below it is known to be gone. */
static inline void rly_hist_raise_low(struct rly_hist_chain *hc, uint64_t seq)
{
	uint64_t cur = __atomic_load_n(&hc->low_hint, __ATOMIC_RELAXED);

	while (cur < seq && !__atomic_compare_exchange_n(&hc->low_hint, &cur, seq, 1,
							 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

#endif
