/* SPDX-License-Identifier: Apache-2.0 */
/* The writer half of the subscriber table (see subtable.h): runs on the manager lcore only. */
#include "subtable.h"

#include <stdlib.h>
#include <sys/random.h>

#include "relay/shm.h"

static int same_endpoint(const struct rly_endpoint *a, const struct rly_endpoint *b)
{
	return a->ip_be == b->ip_be && a->udp_port_be == b->udp_port_be;
}

struct rly_subtable *rly_subtable_create(uint32_t max_streams, uint32_t max_subs)
{
	struct rly_subtable *t = calloc(1, sizeof(*t));
	unsigned long buckets = 1;

	if (t == NULL)
		return NULL;
	while (buckets < max_streams)
		buckets <<= 1;
	/* Fixed size, no auto-resize: no background resize thread and no latency surprise. */
	t->ht = cds_lfht_new(buckets, buckets, buckets, 0, NULL);
	if (t->ht == NULL) {
		free(t);
		return NULL;
	}
	if (getrandom(&t->seed0, sizeof(t->seed0), 0) != sizeof(t->seed0) ||
	    getrandom(&t->seed1, sizeof(t->seed1), 0) != sizeof(t->seed1)) {
		cds_lfht_destroy(t->ht, NULL);
		free(t);
		return NULL;
	}
	t->max_streams = max_streams;
	t->max_subs = max_subs;
	return t;
}

static struct rly_stream_entry *find(struct rly_subtable *t, const uint8_t *key, uint32_t partition)
{
	struct rly_subtable_match m = {key, partition};
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(t->ht, rly_subtable_hash(t, key, partition), rly_subtable_match_fn, &m, &it);
	node = cds_lfht_iter_get_node(&it);
	return node ? caa_container_of(node, struct rly_stream_entry, node) : NULL;
}

static void changed(struct rly_subtable *t)
{
	__atomic_store_n(&t->generation, t->generation + 1, __ATOMIC_RELEASE);
}

static struct rly_sub_set *set_alloc(uint32_t n)
{
	struct rly_sub_set *s = malloc(sizeof(*s) + (size_t)n * sizeof(struct rly_endpoint));
	if (s) {
		s->n = n;
		s->reserved = 0;
		s->retired_next = NULL;
	}
	return s;
}

static void retire_set(struct rly_subtable *t, struct rly_sub_set *s)
{
	s->retired_next = t->retired_sets;
	t->retired_sets = s;
}

int rly_subtable_add(struct rly_subtable *t, const uint8_t *key, uint32_t partition,
		     const struct rly_endpoint *ep)
{
	struct rly_stream_entry *e = find(t, key, partition);
	struct rly_sub_set *old, *s;

	if (e == NULL) {
		if (t->n_streams >= t->max_streams)
			return RLY_CMD_STREAMS_FULL;
		e = calloc(1, sizeof(*e));
		s = set_alloc(1);
		if (e == NULL || s == NULL) {
			free(e);
			free(s);
			return RLY_CMD_NO_MEMORY;
		}
		memcpy(e->key, key, RLY_STREAM_KEY_LEN);
		e->partition = partition;
		s->ep[0] = *ep;
		e->set = s;
		cds_lfht_node_init(&e->node);
		cds_lfht_add(t->ht, rly_subtable_hash(t, key, partition), &e->node);
		e->list_next = t->list;
		if (t->list)
			t->list->list_prev = e;
		t->list = e;
		t->n_streams++;
		t->n_subs++;
		changed(t);
		return RLY_CMD_OK;
	}

	old = e->set;
	for (uint32_t i = 0; i < old->n; i++) {
		if (!same_endpoint(&old->ep[i], ep))
			continue;
		if (memcmp(&old->ep[i], ep, sizeof(*ep)) == 0)
			return RLY_CMD_EXISTS;
		/* Same subscriber, new next hop or port: replace the set with the updated copy. */
		s = set_alloc(old->n);
		if (s == NULL)
			return RLY_CMD_NO_MEMORY;
		memcpy(s->ep, old->ep, old->n * sizeof(*ep));
		s->ep[i] = *ep;
		rcu_assign_pointer(e->set, s);
		retire_set(t, old);
		changed(t);
		return RLY_CMD_OK;
	}
	if (old->n >= t->max_subs)
		return RLY_CMD_SUBS_FULL;
	s = set_alloc(old->n + 1);
	if (s == NULL)
		return RLY_CMD_NO_MEMORY;
	memcpy(s->ep, old->ep, old->n * sizeof(*ep));
	s->ep[old->n] = *ep;
	rcu_assign_pointer(e->set, s);
	retire_set(t, old);
	t->n_subs++;
	changed(t);
	return RLY_CMD_OK;
}

int rly_subtable_del(struct rly_subtable *t, const uint8_t *key, uint32_t partition,
		     const struct rly_endpoint *ep)
{
	struct rly_stream_entry *e = find(t, key, partition);
	struct rly_sub_set *old, *s;
	uint32_t i, j;

	if (e == NULL)
		return RLY_CMD_NOT_FOUND;
	old = e->set;
	for (i = 0; i < old->n && !same_endpoint(&old->ep[i], ep); i++)
		;
	if (i == old->n)
		return RLY_CMD_NOT_FOUND;

	if (old->n == 1) {
		/* Last subscriber: unlink the whole entry; readers holding it still see a valid set. */
		cds_lfht_del(t->ht, &e->node);
		if (e->list_prev)
			e->list_prev->list_next = e->list_next;
		else
			t->list = e->list_next;
		if (e->list_next)
			e->list_next->list_prev = e->list_prev;
		e->retired_next = t->retired_entries;
		t->retired_entries = e;
		t->n_streams--;
		t->n_subs--;
		changed(t);
		return RLY_CMD_OK;
	}
	s = set_alloc(old->n - 1);
	if (s == NULL)
		return RLY_CMD_NO_MEMORY;
	/* Keep the others in their order: delivery order across subscribers stays stable. */
	for (j = 0; j < i; j++)
		s->ep[j] = old->ep[j];
	for (j = i + 1; j < old->n; j++)
		s->ep[j - 1] = old->ep[j];
	rcu_assign_pointer(e->set, s);
	retire_set(t, old);
	t->n_subs--;
	changed(t);
	return RLY_CMD_OK;
}

unsigned rly_subtable_reclaim(struct rly_subtable *t)
{
	unsigned n = 0;

	if (t->retired_sets == NULL && t->retired_entries == NULL)
		return 0;
	synchronize_rcu();
	while (t->retired_sets) {
		struct rly_sub_set *s = t->retired_sets;
		t->retired_sets = s->retired_next;
		free(s);
		n++;
	}
	while (t->retired_entries) {
		struct rly_stream_entry *e = t->retired_entries;
		t->retired_entries = e->retired_next;
		free(e->set);
		free(e);
		n++;
	}
	return n;
}

int rly_subtable_next(struct rly_subtable *t, struct rly_subtable_cursor *c, uint8_t *key,
		      uint32_t *partition, struct rly_endpoint *ep)
{
	if (!c->started) {
		c->started = 1;
		c->entry = t->list;
		c->index = 0;
	}
	while (c->entry && c->index >= c->entry->set->n) {
		c->entry = c->entry->list_next;
		c->index = 0;
	}
	if (c->entry == NULL)
		return 0;
	memcpy(key, c->entry->key, RLY_STREAM_KEY_LEN);
	*partition = c->entry->partition;
	*ep = c->entry->set->ep[c->index++];
	return 1;
}

void rly_subtable_free(struct rly_subtable *t)
{
	struct rly_stream_entry *e, *next;

	if (t == NULL)
		return;
	rly_subtable_reclaim(t);
	for (e = t->list; e; e = next) {
		next = e->list_next;
		cds_lfht_del(t->ht, &e->node);
		free(e->set);
		free(e);
	}
	cds_lfht_destroy(t->ht, NULL);
	free(t);
}
