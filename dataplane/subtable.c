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
	t->admit_ht = cds_lfht_new(buckets, buckets, buckets, 0, NULL);
	if (t->ht == NULL || t->admit_ht == NULL) {
		if (t->ht)
			cds_lfht_destroy(t->ht, NULL);
		if (t->admit_ht)
			cds_lfht_destroy(t->admit_ht, NULL);
		free(t);
		return NULL;
	}
	if (getrandom(&t->seed0, sizeof(t->seed0), 0) != sizeof(t->seed0) ||
	    getrandom(&t->seed1, sizeof(t->seed1), 0) != sizeof(t->seed1)) {
		cds_lfht_destroy(t->ht, NULL);
		cds_lfht_destroy(t->admit_ht, NULL);
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
		s->n_peers = 0;
		s->retired_next = NULL;
	}
	return s;
}

/* The writer recounts after every change: sets are small and changes rare. */
static void count_peers(struct rly_sub_set *s)
{
	s->n_peers = 0;
	for (uint32_t i = 0; i < s->n; i++)
		s->n_peers += (s->ep[i].flags & RLY_EP_F_PEER) != 0;
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
		count_peers(s);
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
		/*
		 * Same address and port, new next hop, port or flags (a subscriber's address that
		 * turns out to be a peer relay, or the reverse): replace the set with an updated copy.
		 */
		s = set_alloc(old->n);
		if (s == NULL)
			return RLY_CMD_NO_MEMORY;
		memcpy(s->ep, old->ep, old->n * sizeof(*ep));
		s->ep[i] = *ep;
		count_peers(s);
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
	/* In address order (rly_sub_set_has searches it); the others keep their order. */
	{
		uint32_t pos = rly_sub_set_lower_bound(old, ep->ip_be, ep->udp_port_be);
		memcpy(s->ep, old->ep, pos * sizeof(*ep));
		s->ep[pos] = *ep;
		memcpy(s->ep + pos + 1, old->ep + pos, (old->n - pos) * sizeof(*ep));
	}
	count_peers(s);
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
	count_peers(s);
	rcu_assign_pointer(e->set, s);
	retire_set(t, old);
	t->n_subs--;
	changed(t);
	return RLY_CMD_OK;
}

/* ---- publisher admission ---- */

static struct rly_admit_entry *admit_find(struct rly_subtable *t, const uint8_t *key)
{
	struct cds_lfht_iter it;
	struct cds_lfht_node *node;

	cds_lfht_lookup(t->admit_ht, rly_subtable_hash(t, key, 0xadadadad), rly_admit_match_fn, key,
			&it);
	node = cds_lfht_iter_get_node(&it);
	return node ? caa_container_of(node, struct rly_admit_entry, node) : NULL;
}

int rly_subtable_admit_mode(struct rly_subtable *t, int on)
{
	__atomic_store_n(&t->admit_mode, on ? 1u : 0u, __ATOMIC_RELEASE);
	changed(t);
	return RLY_CMD_OK;
}

int rly_subtable_admit_begin(struct rly_subtable *t, const uint8_t *key, uint32_t flags)
{
	if (t->building == NULL) {
		t->building_cap = 16;
		t->building = malloc(sizeof(*t->building) + t->building_cap * RLY_ID_LEN);
		if (t->building == NULL)
			return RLY_CMD_NO_MEMORY;
	}
	t->building->n = 0;
	t->building->flags = flags;
	memcpy(t->building_key, key, RLY_STREAM_KEY_LEN);
	return RLY_CMD_OK;
}

int rly_subtable_admit_add(struct rly_subtable *t, const uint8_t *key, const uint8_t *pk)
{
	struct rly_admit *b = t->building;

	if (b == NULL || memcmp(key, t->building_key, RLY_STREAM_KEY_LEN) != 0)
		return RLY_CMD_ADMIT_ORDER;
	if (b->n >= RLY_ADMIT_MAX)
		return RLY_CMD_ADMIT_FULL;
	if (b->n == t->building_cap) {
		uint32_t cap = t->building_cap * 2;
		struct rly_admit *nb = realloc(b, sizeof(*b) + (size_t)cap * RLY_ID_LEN);
		if (nb == NULL)
			return RLY_CMD_NO_MEMORY;
		t->building = b = nb;
		t->building_cap = cap;
	}
	memcpy(b->pk[b->n++], pk, RLY_ID_LEN);
	return RLY_CMD_OK;
}

static int cmp_pk(const void *a, const void *b)
{
	return memcmp(a, b, RLY_ID_LEN);
}

static void retire_admit(struct rly_subtable *t, struct rly_admit *a)
{
	a->retired_next = t->retired_admits;
	t->retired_admits = a;
}

int rly_subtable_admit_commit(struct rly_subtable *t, const uint8_t *key, uint32_t epoch)
{
	struct rly_admit *b = t->building, *a;
	struct rly_admit_entry *e;

	if (b == NULL || memcmp(key, t->building_key, RLY_STREAM_KEY_LEN) != 0)
		return RLY_CMD_ADMIT_ORDER;
	/* A right-sized, sorted copy for readers; the staging buffer stays for the next list. */
	a = malloc(sizeof(*a) + (size_t)b->n * RLY_ID_LEN);
	if (a == NULL)
		return RLY_CMD_NO_MEMORY;
	a->n = b->n;
	a->flags = b->flags;
	a->epoch = epoch;
	a->reserved = 0;
	a->retired_next = NULL;
	memcpy(a->pk, b->pk, (size_t)b->n * RLY_ID_LEN);
	qsort(a->pk, a->n, RLY_ID_LEN, cmp_pk);
	memset(t->building_key, 0, sizeof(t->building_key));
	t->building->n = 0;

	e = admit_find(t, key);
	if (e == NULL) {
		e = calloc(1, sizeof(*e));
		if (e == NULL) {
			free(a);
			return RLY_CMD_NO_MEMORY;
		}
		memcpy(e->key, key, RLY_STREAM_KEY_LEN);
		e->admit = a;
		cds_lfht_node_init(&e->node);
		cds_lfht_add(t->admit_ht, rly_subtable_hash(t, key, 0xadadadad), &e->node);
		e->list_next = t->admit_list;
		if (t->admit_list)
			t->admit_list->list_prev = e;
		t->admit_list = e;
		t->n_admit++;
	} else {
		struct rly_admit *old = e->admit;
		rcu_assign_pointer(e->admit, a);
		retire_admit(t, old);
	}
	changed(t);
	return RLY_CMD_OK;
}

static void admit_unlink(struct rly_subtable *t, struct rly_admit_entry *e)
{
	cds_lfht_del(t->admit_ht, &e->node);
	if (e->list_prev)
		e->list_prev->list_next = e->list_next;
	else
		t->admit_list = e->list_next;
	if (e->list_next)
		e->list_next->list_prev = e->list_prev;
	e->retired_next = t->retired_admit_entries;
	t->retired_admit_entries = e;
	t->n_admit--;
}

int rly_subtable_admit_sweep(struct rly_subtable *t, uint32_t epoch)
{
	struct rly_admit_entry *e, *next;
	unsigned removed = 0;

	for (e = t->admit_list; e; e = next) {
		next = e->list_next;
		if (e->admit->epoch != epoch) {
			admit_unlink(t, e);
			removed++;
		}
	}
	if (removed)
		changed(t);
	return RLY_CMD_OK;
}

int rly_subtable_admit_clear(struct rly_subtable *t, const uint8_t *key)
{
	struct rly_admit_entry *e = admit_find(t, key);

	if (e == NULL)
		return RLY_CMD_NOT_FOUND;
	admit_unlink(t, e);
	changed(t);
	return RLY_CMD_OK;
}


unsigned rly_subtable_reclaim(struct rly_subtable *t)
{
	unsigned n = 0;

	if (t->retired_sets == NULL && t->retired_entries == NULL && t->retired_admits == NULL &&
	    t->retired_admit_entries == NULL)
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
	while (t->retired_admits) {
		struct rly_admit *a = t->retired_admits;
		t->retired_admits = a->retired_next;
		free(a);
		n++;
	}
	while (t->retired_admit_entries) {
		struct rly_admit_entry *e = t->retired_admit_entries;
		t->retired_admit_entries = e->retired_next;
		free(e->admit);
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
	{
		struct cds_lfht_iter it;
		struct cds_lfht_node *node;
		cds_lfht_first(t->admit_ht, &it);
		while ((node = cds_lfht_iter_get_node(&it)) != NULL) {
			struct rly_admit_entry *ae = caa_container_of(node, struct rly_admit_entry, node);
			cds_lfht_next(t->admit_ht, &it);
			cds_lfht_del(t->admit_ht, node);
			free(ae->admit);
			free(ae);
		}
	}
	cds_lfht_destroy(t->admit_ht, NULL);
	free(t->building);
	free(t);
}
