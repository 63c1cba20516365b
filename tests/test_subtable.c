/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Subscriber table: writer operations and their statuses, and lookups from concurrent reader
 * threads while one writer adds and removes endpoints as fast as it can. Readers check that every
 * set they see is internally consistent (all its endpoints belong to the stream they looked up,
 * in the order the writer keeps). Under ASan (the asan build) a set freed too early is a
 * use-after-free report.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <string.h>

#include <criterion/criterion.h>

#include "dataplane/subtable.h"

#define STREAMS 16u
#define READERS 2u

static void key_of(uint8_t key[16], unsigned s)
{
	memset(key, 0, 16);
	key[0] = (uint8_t)s;
	key[15] = 0xee;
}

static struct rly_endpoint ep_of(unsigned s, unsigned i)
{
	struct rly_endpoint ep = {0};
	ep.ip_be = htonl((s << 16) | i);
	ep.udp_port_be = htons((uint16_t)(1000 + i));
	ep.mac[5] = (uint8_t)i;
	return ep;
}

Test(subtable, add_update_remove_report_their_status)
{
	struct rly_subtable *t = rly_subtable_create(2, 2);
	struct rly_endpoint a = ep_of(1, 1), b = ep_of(1, 2), c = ep_of(1, 3);
	uint8_t k1[16], k2[16], k3[16];
	const struct rly_sub_set *s;

	cr_assert(t);
	rcu_register_thread();
	key_of(k1, 1);
	key_of(k2, 2);
	key_of(k3, 3);
	cr_assert_eq(rly_subtable_add(t, k1, 0, &a), RLY_CMD_OK);
	cr_assert_eq(rly_subtable_add(t, k1, 0, &a), RLY_CMD_EXISTS);
	cr_assert_eq(rly_subtable_add(t, k1, 0, &b), RLY_CMD_OK);
	cr_assert_eq(rly_subtable_add(t, k1, 0, &c), RLY_CMD_SUBS_FULL);
	cr_assert_eq(rly_subtable_add(t, k1, 1, &a), RLY_CMD_OK, "another partition is another stream");
	cr_assert_eq(rly_subtable_add(t, k2, 0, &a), RLY_CMD_STREAMS_FULL);
	b.mac[0] = 0x42;
	cr_assert_eq(rly_subtable_add(t, k1, 0, &b), RLY_CMD_OK, "a new next hop updates in place");
	s = rly_subtable_lookup(t, k1, 0);
	cr_assert(s);
	cr_assert_eq(s->n, 2);
	cr_assert_eq(s->ep[1].mac[0], 0x42);
	cr_assert_null(rly_subtable_lookup(t, k3, 0));
	cr_assert_eq(rly_subtable_del(t, k3, 0, &a), RLY_CMD_NOT_FOUND);
	cr_assert_eq(rly_subtable_del(t, k1, 0, &c), RLY_CMD_NOT_FOUND);
	cr_assert_eq(rly_subtable_del(t, k1, 0, &a), RLY_CMD_OK);
	s = rly_subtable_lookup(t, k1, 0);
	cr_assert_eq(s->n, 1);
	cr_assert_eq(s->ep[0].ip_be, b.ip_be);
	cr_assert_eq(rly_subtable_del(t, k1, 0, &b), RLY_CMD_OK);
	cr_assert_null(rly_subtable_lookup(t, k1, 0), "an empty stream leaves the table");
	cr_assert_eq(t->n_streams, 1);
	cr_assert_eq(t->n_subs, 1);
	cr_assert_gt(rly_subtable_reclaim(t), 0);
	cr_assert_eq(rly_subtable_add(t, k2, 0, &a), RLY_CMD_OK, "room again");
	rly_subtable_free(t);
	rcu_unregister_thread();
}

Test(subtable, cursor_visits_every_endpoint_once)
{
	struct rly_subtable *t = rly_subtable_create(64, 64);
	struct rly_subtable_cursor c = {0};
	unsigned seen[STREAMS][8] = {{0}}, total = 0;
	uint8_t key[16];
	uint32_t part;
	struct rly_endpoint ep;

	rcu_register_thread();
	for (unsigned s = 0; s < STREAMS; s++)
		for (unsigned i = 0; i < 1 + s % 8; i++) {
			key_of(key, s);
			ep = ep_of(s, i);
			cr_assert_eq(rly_subtable_add(t, key, s, &ep), RLY_CMD_OK);
		}
	while (rly_subtable_next(t, &c, key, &part, &ep)) {
		unsigned s = key[0], i = ntohl(ep.ip_be) & 0xffff;
		cr_assert_eq(part, s);
		cr_assert_eq(ntohl(ep.ip_be) >> 16, s);
		seen[s][i]++;
		total++;
	}
	for (unsigned s = 0; s < STREAMS; s++)
		for (unsigned i = 0; i < 8; i++)
			cr_assert_eq(seen[s][i], i < 1 + s % 8 ? 1u : 0u);
	cr_assert_eq(total, t->n_subs);
	rly_subtable_free(t);
	rcu_unregister_thread();
}

struct reader_arg {
	struct rly_subtable *t;
	volatile int *stop;
	uint64_t lookups;
	uint64_t found;
	uint64_t bad;
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint8_t key[16];

	rcu_register_thread();
	while (!__atomic_load_n(a->stop, __ATOMIC_RELAXED)) {
		for (unsigned s = 0; s < STREAMS; s++) {
			const struct rly_sub_set *set;
			key_of(key, s);
			set = rly_subtable_lookup(a->t, key, 0);
			__atomic_fetch_add(&a->lookups, 1, __ATOMIC_RELAXED);
			if (set == NULL)
				continue;
			__atomic_fetch_add(&a->found, 1, __ATOMIC_RELAXED);
			if (set->n == 0 || set->n > 64)
				a->bad++;
			for (uint32_t i = 0; i < set->n && i < 64; i++) {
				uint32_t ip = ntohl(set->ep[i].ip_be);
				/* Every endpoint belongs to this stream; the writer keeps them sorted. */
				if (ip >> 16 != s || ntohs(set->ep[i].udp_port_be) != 1000 + (ip & 0xffff) ||
				    (i > 0 && ip <= ntohl(set->ep[i - 1].ip_be)))
					a->bad++;
			}
		}
		rcu_quiescent_state();
	}
	rcu_unregister_thread();
	return NULL;
}

static int readers_busy(struct reader_arg *args)
{
	for (unsigned r = 0; r < READERS; r++)
		if (__atomic_load_n(&args[r].found, __ATOMIC_RELAXED) < 2000)
			return 0;
	return 1;
}

Test(subtable, readers_never_see_a_torn_or_freed_set_while_the_writer_churns, .timeout = 60)
{
	struct rly_subtable *t = rly_subtable_create(64, 64);
	struct reader_arg args[READERS];
	pthread_t th[READERS];
	volatile int stop = 0;
	uint8_t present[STREAMS][32] = {{0}};
	uint64_t ops = 0, lookups_during = 0;
	unsigned rnd = 12345;

	rcu_register_thread();
	for (unsigned r = 0; r < READERS; r++) {
		args[r] = (struct reader_arg){.t = t, .stop = &stop};
		cr_assert_eq(pthread_create(&th[r], NULL, reader, &args[r]), 0);
	}
	/*
	 * Endpoints are only ever inserted in increasing order per stream, so sets stay sorted. The
	 * writer churns for at least 20000 rounds and until every reader has seen 2000 sets while it
	 * does (readers may not get a CPU at first on a loaded machine), within a bound.
	 */
	for (unsigned round = 0; round < 20000 || !readers_busy(args) ; round++) {
		cr_assert_lt(round, 50000000u, "readers made no progress during 50 M writer rounds");
		unsigned s = (rnd = rnd * 1103515245u + 12345u) >> 16;
		uint8_t key[16];
		s %= STREAMS;
		key_of(key, s);
		if (round % 64 < 40) {
			unsigned i = 0;
			while (i < 32 && present[s][i])
				i++;
			/* Append only past the highest present index to keep sorted order. */
			for (unsigned j = 32; j-- > 0;)
				if (present[s][j]) {
					i = j + 1;
					break;
				}
			if (i < 32) {
				struct rly_endpoint ep = ep_of(s, i);
				cr_assert_eq(rly_subtable_add(t, key, 0, &ep), RLY_CMD_OK);
				present[s][i] = 1;
				ops++;
			}
		} else {
			for (unsigned i = 0; i < 32; i++)
				if (present[s][i]) {
					struct rly_endpoint ep = ep_of(s, i);
					cr_assert_eq(rly_subtable_del(t, key, 0, &ep), RLY_CMD_OK);
					present[s][i] = 0;
					ops++;
					break;
				}
		}
		if (round % 16 == 15)
			rly_subtable_reclaim(t);
	}
	for (unsigned r = 0; r < READERS; r++)
		lookups_during += __atomic_load_n(&args[r].lookups, __ATOMIC_RELAXED);
	stop = 1;
	for (unsigned r = 0; r < READERS; r++) {
		pthread_join(th[r], NULL);
		cr_assert_eq(args[r].bad, 0, "reader %u saw %llu inconsistent endpoints", r,
			     (unsigned long long)args[r].bad);
		cr_assert_gt(args[r].found, 0, "reader %u never found a set", r);
	}
	cr_assert_gt(ops, 10000);
	cr_assert_gt(lookups_during, 0, "readers made progress while the writer worked");
	rly_subtable_reclaim(t);
	{
		unsigned expect = 0;
		for (unsigned s = 0; s < STREAMS; s++)
			for (unsigned i = 0; i < 32; i++)
				expect += present[s][i];
		cr_assert_eq(t->n_subs, expect);
	}
	rly_subtable_free(t);
	rcu_unregister_thread();
}
