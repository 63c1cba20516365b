/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subscriber's per-(publisher, chain) table (client/chains.c): bounded, and exact for every
 * entry it still holds, however many chains come and go.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "client/chains.h"

static void pub_of(unsigned i, uint8_t pub[RLY_ID_LEN])
{
	memset(pub, 0, RLY_ID_LEN);
	memcpy(pub, &i, sizeof(i));
}

Test(client_chains, finds_what_it_stored_and_tells_new_from_known)
{
	struct client_chains t;
	uint8_t a[RLY_ID_LEN], b[RLY_ID_LEN];
	struct client_chain *e;
	int created;

	cr_assert_eq(client_chains_init(&t, 64), 0);
	pub_of(1, a);
	pub_of(2, b);
	e = client_chains_get(&t, a, 7, &created);
	cr_assert_eq(created, 1);
	cr_assert_eq(e->last_seq, 0);
	e->last_seq = 41;
	e = client_chains_get(&t, b, 7, &created);
	cr_assert_eq(created, 1, "same chain id, other publisher");
	e->last_seq = 5;
	e = client_chains_get(&t, a, 8, &created);
	cr_assert_eq(created, 1, "same publisher, other chain id");
	e = client_chains_get(&t, a, 7, &created);
	cr_assert_eq(created, 0);
	cr_assert_eq(e->last_seq, 41);
	cr_assert_eq(client_chains_get(&t, b, 7, &created)->last_seq, 5);
	cr_assert_eq(t.n, 3);
	client_chains_close(&t);
}

Test(client_chains, refuses_a_size_that_is_not_a_power_of_two)
{
	struct client_chains t;

	cr_assert_lt(client_chains_init(&t, 100), 0);
	cr_assert_lt(client_chains_init(&t, 2), 0);
}

Test(client_chains, stays_bounded_and_exact_while_many_chains_come_and_go)
{
	enum { SLOTS = 64, CHAINS = 2000 };
	static uint64_t ref[CHAINS]; /* last_seq we stored for chain i, 0 if never */
	struct client_chains t;
	uint8_t pub[RLY_ID_LEN];
	unsigned created_total = 0, found_total = 0;
	uint32_t x = 12345;

	cr_assert_eq(client_chains_init(&t, SLOTS), 0);
	for (unsigned step = 0; step < 200000; step++) {
		struct client_chain *e;
		unsigned i;
		int created;

		/* A skewed mix: a few hot chains, many that show up once in a while. */
		x = x * 1103515245u + 12345u;
		i = (x >> 8) % ((x & 1) ? 16 : CHAINS);
		pub_of(i / 4, pub);
		e = client_chains_get(&t, pub, i % 4, &created);
		cr_assert_leq(t.n, t.max);
		if (created) {
			created_total++;
			cr_assert_eq(e->last_seq, 0);
		} else {
			/* Whatever survived eviction must be exactly what we stored. */
			found_total++;
			cr_assert_eq(e->last_seq, ref[i], "chain %u: %lu != %lu", i,
				     (unsigned long)e->last_seq, (unsigned long)ref[i]);
		}
		e->last_seq = step + 1;
		ref[i] = step + 1;
	}
	cr_assert_eq(t.n, t.max, "a busy table stays full");
	cr_assert_gt(t.evicted, 0);
	cr_assert_eq(created_total - t.evicted, t.n);
	/* Half the lookups are for 16 hot chains. Picking the least recently used of the window
	 * kept 88.5-90 k of them in the table here; evicting blindly (a window of 1) kept 77 k. */
	cr_assert_gt(found_total, 84000, "hot chains stay in the table: %u found, %lu evicted",
		     found_total, (unsigned long)t.evicted);
	client_chains_close(&t);
}
