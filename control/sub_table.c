/* SPDX-License-Identifier: Apache-2.0 */
#include "sub_table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define INITIAL_BUCKETS 1024u

void rly_ctl_sub_key_make(struct rly_ctl_sub_key *k, const uint8_t stream[RLY_STREAM_KEY_LEN],
			  uint32_t partition, uint32_t ip_be, uint16_t udp_port_be)
{
	memset(k, 0, sizeof(*k));
	memcpy(k->stream_key, stream, RLY_STREAM_KEY_LEN);
	k->partition = partition;
	k->ip_be = ip_be;
	k->udp_port_be = udp_port_be;
}

/* Keyed SipHash: subscriber addresses are chosen by outsiders, so an unkeyed hash would let them
 * pile every entry into one chain. */
static size_t bucket_of(const struct rly_ctl_sub_table *t, const struct rly_ctl_sub_key *k)
{
	uint64_t h;

	crypto_shorthash((unsigned char *)&h, (const unsigned char *)k, sizeof(*k), t->hash_key);
	return (size_t)h & (t->n_buckets - 1);
}

int rly_ctl_sub_table_init(struct rly_ctl_sub_table *t)
{
	memset(t, 0, sizeof(*t));
	if (sodium_init() < 0)
		return -EIO;
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	t->n_buckets = INITIAL_BUCKETS;
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	return t->buckets ? 0 : -ENOMEM;
}

void rly_ctl_sub_table_clear(struct rly_ctl_sub_table *t)
{
	for (size_t i = 0; i < t->count; i++)
		free(t->heap[i]);
	t->count = 0;
	if (t->buckets)
		memset(t->buckets, 0, t->n_buckets * sizeof(*t->buckets));
}

void rly_ctl_sub_table_close(struct rly_ctl_sub_table *t)
{
	rly_ctl_sub_table_clear(t);
	free(t->buckets);
	free(t->heap);
	memset(t, 0, sizeof(*t));
}

struct rly_ctl_sub *rly_ctl_sub_table_find(const struct rly_ctl_sub_table *t,
					   const struct rly_ctl_sub_key *k)
{
	for (struct rly_ctl_sub *s = t->buckets[bucket_of(t, k)]; s; s = s->next)
		if (memcmp(&s->key, k, sizeof(*k)) == 0)
			return s;
	return NULL;
}

static void heap_set(struct rly_ctl_sub_table *t, size_t i, struct rly_ctl_sub *s)
{
	t->heap[i] = s;
	s->heap_idx = i;
}

static void sift_up(struct rly_ctl_sub_table *t, size_t i)
{
	struct rly_ctl_sub *s = t->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (t->heap[p]->expires_ms <= s->expires_ms)
			break;
		heap_set(t, i, t->heap[p]);
		i = p;
	}
	heap_set(t, i, s);
}

static void sift_down(struct rly_ctl_sub_table *t, size_t i)
{
	struct rly_ctl_sub *s = t->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->count)
			break;
		if (c + 1 < t->count && t->heap[c + 1]->expires_ms < t->heap[c]->expires_ms)
			c++;
		if (s->expires_ms <= t->heap[c]->expires_ms)
			break;
		heap_set(t, i, t->heap[c]);
		i = c;
	}
	heap_set(t, i, s);
}

/* Doubling keeps chains short; the table never shrinks, which is fine for a control process. */
static void grow_buckets(struct rly_ctl_sub_table *t)
{
	size_t n = t->n_buckets * 2;
	struct rly_ctl_sub **b = calloc(n, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = n;
	for (size_t i = 0; i < t->count; i++) {
		struct rly_ctl_sub *s = t->heap[i];
		size_t h = bucket_of(t, &s->key);
		s->next = b[h];
		b[h] = s;
	}
}

struct rly_ctl_sub *rly_ctl_sub_table_upsert(struct rly_ctl_sub_table *t,
					     const struct rly_ctl_sub_key *k,
					     const struct rly_endpoint *ep, uint32_t lease_ms,
					     uint64_t expires_ms)
{
	struct rly_ctl_sub *s = rly_ctl_sub_table_find(t, k);
	size_t h;

	if (s) {
		s->ep = *ep;
		s->lease_ms = lease_ms;
		s->graces = 0;
		rly_ctl_sub_table_renew(t, s, expires_ms);
		return s;
	}
	if (t->count == t->heap_cap) {
		size_t cap = t->heap_cap ? t->heap_cap * 2 : 256;
		struct rly_ctl_sub **heap = realloc(t->heap, cap * sizeof(*heap));
		if (!heap)
			return NULL;
		t->heap = heap;
		t->heap_cap = cap;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->key = *k;
	s->ep = *ep;
	s->lease_ms = lease_ms;
	s->expires_ms = expires_ms;
	h = bucket_of(t, k);
	s->next = t->buckets[h];
	t->buckets[h] = s;
	heap_set(t, t->count++, s);
	sift_up(t, s->heap_idx);
	if (t->count > t->n_buckets)
		grow_buckets(t);
	return s;
}

void rly_ctl_sub_table_renew(struct rly_ctl_sub_table *t, struct rly_ctl_sub *s,
			     uint64_t expires_ms)
{
	uint64_t old = s->expires_ms;

	s->expires_ms = expires_ms;
	if (expires_ms < old)
		sift_up(t, s->heap_idx);
	else
		sift_down(t, s->heap_idx);
}

void rly_ctl_sub_table_remove(struct rly_ctl_sub_table *t, struct rly_ctl_sub *s)
{
	struct rly_ctl_sub **pp = &t->buckets[bucket_of(t, &s->key)];
	size_t i = s->heap_idx;

	while (*pp != s)
		pp = &(*pp)->next;
	*pp = s->next;

	t->count--;
	if (i != t->count) {
		struct rly_ctl_sub *moved = t->heap[t->count];
		heap_set(t, i, moved);
		/* The moved entry may belong above or below its new slot. */
		sift_up(t, i);
		sift_down(t, moved->heap_idx);
	}
	free(s);
}

struct rly_ctl_sub *rly_ctl_sub_table_first(const struct rly_ctl_sub_table *t)
{
	return t->count ? t->heap[0] : NULL;
}
