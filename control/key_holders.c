/* SPDX-License-Identifier: Apache-2.0 */
#include "key_holders.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* The pool is a few thousand entries at most, so a single bounded array is simpler than growth. */
#define HOLDERS_LIMIT (1u << 20)

/*
 * Keyed SipHash on both indexes: addresses, streams and identities are all chosen by outsiders,
 * and an unkeyed hash would let them pile every holder into one chain.
 */
static uint32_t addr_bucket(const struct rly_ctl_holder_table *t, const struct rly_ctl_sub_key *k)
{
	uint64_t h;

	crypto_shorthash((unsigned char *)&h, (const unsigned char *)k, sizeof(*k), t->hash_key);
	return (uint32_t)h & (t->n_buckets - 1);
}

static uint32_t id_bucket(const struct rly_ctl_holder_table *t,
			  const uint8_t stream[RLY_STREAM_KEY_LEN], const uint8_t who[RLY_ID_LEN])
{
	uint8_t m[RLY_STREAM_KEY_LEN + RLY_ID_LEN];
	uint64_t h;

	memcpy(m, stream, RLY_STREAM_KEY_LEN);
	memcpy(m + RLY_STREAM_KEY_LEN, who, RLY_ID_LEN);
	crypto_shorthash((unsigned char *)&h, m, sizeof(m), t->hash_key);
	return (uint32_t)h & (t->n_buckets - 1);
}

int rly_ctl_holder_table_init(struct rly_ctl_holder_table *t, uint32_t max)
{
	uint32_t n = 1;

	memset(t, 0, sizeof(*t));
	if (max == 0 || max > HOLDERS_LIMIT)
		return -EINVAL;
	if (sodium_init() < 0)
		return -EIO;
	while (n < max)
		n <<= 1;
	t->slots = calloc(max, sizeof(*t->slots));
	t->by_addr = calloc(n, sizeof(*t->by_addr));
	t->by_id = calloc(n, sizeof(*t->by_id));
	if (!t->slots || !t->by_addr || !t->by_id) {
		rly_ctl_holder_table_close(t);
		return -ENOMEM;
	}
	t->max = max;
	t->n_buckets = n;
	t->next_expiry_ms = UINT64_MAX;
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	for (uint32_t i = max; i-- > 0;) {
		t->slots[i].addr_next = t->free;
		t->free = &t->slots[i];
	}
	return 0;
}

void rly_ctl_holder_table_close(struct rly_ctl_holder_table *t)
{
	free(t->slots);
	free(t->by_addr);
	free(t->by_id);
	memset(t, 0, sizeof(*t));
}

struct rly_ctl_holder *rly_ctl_holder_table_find(const struct rly_ctl_holder_table *t,
						 const struct rly_ctl_sub_key *k)
{
	for (struct rly_ctl_holder *h = t->by_addr[addr_bucket(t, k)]; h; h = h->addr_next)
		if (memcmp(&h->key, k, sizeof(*k)) == 0)
			return h;
	return NULL;
}

static void id_link(struct rly_ctl_holder_table *t, struct rly_ctl_holder *h)
{
	uint32_t b = id_bucket(t, h->key.stream_key, h->who);

	h->id_next = t->by_id[b];
	t->by_id[b] = h;
}

static void id_unlink(struct rly_ctl_holder_table *t, struct rly_ctl_holder *h)
{
	struct rly_ctl_holder **pp = &t->by_id[id_bucket(t, h->key.stream_key, h->who)];

	while (*pp != h)
		pp = &(*pp)->id_next;
	*pp = h->id_next;
	h->id_next = NULL;
}

struct rly_ctl_holder *rly_ctl_holder_table_insert(struct rly_ctl_holder_table *t,
						   const struct rly_ctl_sub_key *k,
						   const struct rly_endpoint *ep,
						   const uint8_t who[RLY_ID_LEN], uint32_t lease_ms,
						   uint64_t expires_ms)
{
	struct rly_ctl_holder *h = t->free;
	uint32_t b;

	if (!h)
		return NULL;
	t->free = h->addr_next;
	memset(h, 0, sizeof(*h));
	h->key = *k;
	h->ep = *ep;
	memcpy(h->who, who, RLY_ID_LEN);
	h->lease_ms = lease_ms;
	h->expires_ms = expires_ms;
	h->used = 1;
	b = addr_bucket(t, k);
	h->addr_next = t->by_addr[b];
	t->by_addr[b] = h;
	id_link(t, h);
	t->count++;
	if (expires_ms < t->next_expiry_ms)
		t->next_expiry_ms = expires_ms;
	return h;
}

void rly_ctl_holder_table_set_who(struct rly_ctl_holder_table *t, struct rly_ctl_holder *h,
				  const uint8_t who[RLY_ID_LEN])
{
	id_unlink(t, h);
	memcpy(h->who, who, RLY_ID_LEN);
	id_link(t, h);
}

void rly_ctl_holder_table_renew(struct rly_ctl_holder_table *t, struct rly_ctl_holder *h,
				uint64_t expires_ms)
{
	h->expires_ms = expires_ms;
	/* A later expiry leaves the bound valid (just loose); an earlier one must lower it. */
	if (expires_ms < t->next_expiry_ms)
		t->next_expiry_ms = expires_ms;
}

void rly_ctl_holder_table_remove(struct rly_ctl_holder_table *t, struct rly_ctl_holder *h)
{
	struct rly_ctl_holder **pp = &t->by_addr[addr_bucket(t, &h->key)];

	while (*pp != h)
		pp = &(*pp)->addr_next;
	*pp = h->addr_next;
	id_unlink(t, h);
	memset(h, 0, sizeof(*h));
	h->addr_next = t->free;
	t->free = h;
	t->count--;
	if (t->count == 0)
		t->next_expiry_ms = UINT64_MAX;
}

unsigned rly_ctl_holder_table_lookup(const struct rly_ctl_holder_table *t,
				     const uint8_t stream[RLY_STREAM_KEY_LEN],
				     const uint8_t who[RLY_ID_LEN], struct rly_ctl_holder **out,
				     unsigned max)
{
	unsigned n = 0;

	for (struct rly_ctl_holder *h = t->by_id[id_bucket(t, stream, who)]; h && n < max;
	     h = h->id_next)
		if (memcmp(h->key.stream_key, stream, RLY_STREAM_KEY_LEN) == 0 &&
		    memcmp(h->who, who, RLY_ID_LEN) == 0)
			out[n++] = h;
	return n;
}

unsigned rly_ctl_holder_table_expire(struct rly_ctl_holder_table *t, uint64_t now_ms,
				     rly_ctl_holder_gone_fn gone, void *ctx)
{
	uint64_t next = UINT64_MAX;
	unsigned n = 0;

	if (now_ms < t->next_expiry_ms)
		return 0;
	for (uint32_t i = 0; i < t->max; i++) {
		struct rly_ctl_holder *h = &t->slots[i];
		if (!h->used)
			continue;
		if (h->expires_ms > now_ms) {
			if (h->expires_ms < next)
				next = h->expires_ms;
			continue;
		}
		if (gone)
			gone(ctx, h);
		rly_ctl_holder_table_remove(t, h);
		n++;
	}
	t->next_expiry_ms = next;
	return n;
}
