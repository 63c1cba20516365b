/* SPDX-License-Identifier: Apache-2.0 */
#include "client/chains.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/internal.h"
#include "common/err.h"

int client_chains_init(struct client_chains *t, uint32_t slots)
{
	int rc;

	memset(t, 0, sizeof(*t));
	if (slots < 4 || (slots & (slots - 1)) != 0)
		return rly_err_set(EINVAL, "chain table: %u slots is not a power of two >= 4",
				   slots);
	rc = client_sodium_init();
	if (rc < 0)
		return rc;
	t->slot = calloc(slots, sizeof(*t->slot));
	if (t->slot == NULL)
		return rly_err_set(ENOMEM, "chain table: no memory for %u slots", slots);
	t->mask = slots - 1;
	t->max = slots / CLIENT_CHAINS_LOAD_DEN * CLIENT_CHAINS_LOAD_NUM;
	/* Publishers pick their own keys and chain ids: a secret hash key stops anyone from
	 * choosing ids that all land in one probe run. */
	crypto_shorthash_keygen(t->hash_key);
	return 0;
}

void client_chains_close(struct client_chains *t)
{
	free(t->slot);
	t->slot = NULL;
}

static uint32_t hash_of(const struct client_chains *t, const uint8_t *publisher, uint32_t chain)
{
	uint8_t in[RLY_ID_LEN + 4];
	uint64_t h;

	memcpy(in, publisher, RLY_ID_LEN);
	memcpy(in + RLY_ID_LEN, &chain, 4);
	crypto_shorthash((unsigned char *)&h, in, sizeof(in), t->hash_key);
	return (uint32_t)h;
}

/* Is @p k (a home slot) cyclically within (i, j]? Then the entry at j may not move to i. */
static int between(uint32_t i, uint32_t k, uint32_t j)
{
	return i <= j ? (i < k && k <= j) : (i < k || k <= j);
}

static void remove_at(struct client_chains *t, uint32_t i)
{
	uint32_t j = i;

	/* Backward shift: pull later members of the probe run into the hole so lookups, which
	 * stop at the first empty slot, still find them. */
	t->slot[i].used = 0;
	for (;;) {
		j = (j + 1) & t->mask;
		if (!t->slot[j].used)
			break;
		if (between(i, t->slot[j].hash & t->mask, j))
			continue;
		t->slot[i] = t->slot[j];
		t->slot[j].used = 0;
		i = j;
	}
	t->n--;
}

static void evict_one(struct client_chains *t)
{
	uint32_t victim = UINT32_MAX, seen = 0;
	uint64_t oldest = UINT64_MAX;

	/* Approximate LRU in O(window): the table is at 75 % load, so the hand finds the window's
	 * occupied entries within a few more slots. */
	for (uint32_t k = 0; k <= t->mask && seen < CLIENT_CHAINS_EVICT_WINDOW; k++) {
		uint32_t i = (t->hand + k) & t->mask;
		if (!t->slot[i].used)
			continue;
		seen++;
		if (t->slot[i].last_use < oldest) {
			oldest = t->slot[i].last_use;
			victim = i;
		}
	}
	t->hand = (victim + 1) & t->mask;
	if (t->on_evict)
		t->on_evict(t->evict_ctx, &t->slot[victim]);
	remove_at(t, victim);
	t->evicted++;
}

struct client_chain *client_chains_get(struct client_chains *t, const uint8_t publisher[RLY_ID_LEN],
				       uint32_t chain, int *created)
{
	uint32_t h = hash_of(t, publisher, chain), i;
	struct client_chain *e;

	*created = 0;
	for (i = h & t->mask;; i = (i + 1) & t->mask) {
		e = &t->slot[i];
		if (!e->used)
			break;
		if (e->hash == h && e->chain == chain &&
		    memcmp(e->publisher, publisher, RLY_ID_LEN) == 0) {
			e->last_use = ++t->tick;
			return e;
		}
	}
	if (t->n >= t->max) {
		evict_one(t);
		/* The hole may have moved entries of our probe run: look for a free slot again. */
		for (i = h & t->mask; t->slot[i].used; i = (i + 1) & t->mask)
			;
		e = &t->slot[i];
	}
	memcpy(e->publisher, publisher, RLY_ID_LEN);
	e->chain = chain;
	e->hash = h;
	e->last_seq = 0;
	memset(e->hole_lo, 0xff, sizeof(e->hole_lo));
	memset(e->hole_hi, 0, sizeof(e->hole_hi));
	e->last_use = ++t->tick;
	e->rep = 0;
	e->used = 1;
	t->n++;
	*created = 1;
	return e;
}

struct client_chain *client_chains_find(struct client_chains *t, const uint8_t publisher[RLY_ID_LEN],
					uint32_t chain)
{
	uint32_t h = hash_of(t, publisher, chain);

	for (uint32_t i = h & t->mask;; i = (i + 1) & t->mask) {
		struct client_chain *e = &t->slot[i];
		if (!e->used)
			return NULL;
		if (e->hash == h && e->chain == chain && memcmp(e->publisher, publisher, RLY_ID_LEN) == 0)
			return e;
	}
}

static int hole_empty(const struct client_chain *c, unsigned i)
{
	return c->hole_lo[i] > c->hole_hi[i];
}

void client_chain_hole_add(struct client_chain *c, uint64_t lo, uint64_t hi)
{
	unsigned at = 0;

	/* An empty slot, else the oldest gap: gaps only grow upwards, so the lowest is oldest. */
	for (unsigned i = 0; i < CLIENT_HOLES; i++) {
		if (hole_empty(c, i)) {
			at = i;
			break;
		}
		if (c->hole_lo[i] < c->hole_lo[at])
			at = i;
	}
	c->hole_lo[at] = lo;
	c->hole_hi[at] = hi;
}

int client_chain_hole_fill(struct client_chain *c, uint64_t seq)
{
	for (unsigned i = 0; i < CLIENT_HOLES; i++) {
		if (hole_empty(c, i) || seq < c->hole_lo[i] || seq > c->hole_hi[i])
			continue;
		if (seq == c->hole_lo[i]) {
			c->hole_lo[i]++;
		} else if (seq == c->hole_hi[i]) {
			c->hole_hi[i]--;
		} else {
			/* In the middle: two holes, if there is room for the upper one; else the
			 * upper part is forgotten (a message there later counts as stale). */
			uint64_t up_lo = seq + 1, up_hi = c->hole_hi[i];
			c->hole_hi[i] = seq - 1;
			for (unsigned j = 0; j < CLIENT_HOLES; j++)
				if (hole_empty(c, j)) {
					c->hole_lo[j] = up_lo;
					c->hole_hi[j] = up_hi;
					break;
				}
		}
		return 1;
	}
	return 0;
}
