/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The dedup table on its own (dataplane/dedup.{h,c}), over plain memory laid out like the shm
 * region: new, duplicate and too-old messages, the window wrapping, chains kept apart, failing
 * open when the table is full, two threads claiming one chain at once, idle chains reclaimed; and
 * the shm object's dedup region checked at attach.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <urcu-qsbr.h>

#include "common/err.h"
#include "common/shm.h"
#include "dataplane/dedup.h"

static struct rly_dedup D;
static void *mem;

/* A region of @p chains chains of @p window slots, zeroed as ftruncate leaves a shm object. */
static void region(uint32_t chains, uint32_t window, uint64_t idle)
{
	size_t size = (size_t)chains * RLY_DEDUP_STRIDE(window);

	mem = aligned_alloc(64, size);
	cr_assert_not_null(mem);
	memset(mem, 0, size);
	cr_assert_eq(rly_dedup_init(&D, mem, chains, window, idle, 1000), 0);
}

static struct rly_wire_msg_hdr msg(unsigned stream, uint8_t pub, uint32_t chain, uint64_t seq)
{
	struct rly_wire_msg_hdr h;

	memset(&h, 0, sizeof(h));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		h.stream_key[i] = (uint8_t)(stream * 13u + i);
	rly_be32_store(&h.partition, 0);
	rly_be32_store(&h.chain, chain);
	memset(h.publisher, pub, sizeof(h.publisher));
	rly_be64_store(&h.seq, seq);
	return h;
}

static enum rly_dedup_result check(unsigned stream, uint8_t pub, uint32_t chain, uint64_t seq)
{
	struct rly_wire_msg_hdr h = msg(stream, pub, chain, seq);
	return rly_dedup_check(&D, &h, 100, 7);
}

/* Chains holding (stream, pub, chain), counted by walking the whole region. */
static unsigned chains_of(unsigned stream, uint8_t pub, uint32_t chain)
{
	struct rly_wire_msg_hdr h = msg(stream, pub, chain, 1);
	unsigned n = 0;

	for (uint32_t i = 0; i <= D.mask; i++) {
		struct rly_dedup_chain *c = rly_dedup_chain_at(&D, i);
		n += c->tag > RLY_DEDUP_TAG_RECLAIMING && rly_dedup_same(c, &h);
	}
	return n;
}

static void done(void)
{
	free(mem);
	mem = NULL;
}

Test(dedup, a_message_is_new_once_then_a_duplicate_and_older_ones_past_the_window_are_too_old)
{
	struct rly_dedup_chain *c;

	region(64, 64, 1000);
	cr_assert_eq(check(1, 0xab, 1, 5), RLY_DEDUP_NEW);
	cr_assert_eq(check(1, 0xab, 1, 5), RLY_DEDUP_DUPLICATE);
	cr_assert_eq(check(1, 0xab, 1, 3), RLY_DEDUP_NEW, "a late message within the window is new");
	cr_assert_eq(check(1, 0xab, 1, 3), RLY_DEDUP_DUPLICATE);
	cr_assert_eq(check(1, 0xab, 1, 200), RLY_DEDUP_NEW);
	cr_assert_eq(check(1, 0xab, 1, 136), RLY_DEDUP_TOO_OLD, "a whole window below highest");
	cr_assert_eq(check(1, 0xab, 1, 137), RLY_DEDUP_NEW, "just inside the window");
	cr_assert_eq(chains_of(1, 0xab, 1), 1);
	for (uint32_t i = 0; i <= D.mask; i++) {
		c = rly_dedup_chain_at(&D, i);
		if (c->tag > RLY_DEDUP_TAG_RECLAIMING)
			break;
	}
	cr_assert_eq(c->highest, 200);
	cr_assert_eq(c->accepted, 4);
	cr_assert_eq(c->duplicates, 3);
	cr_assert_eq(c->last_tsc, 100);
	cr_assert_eq(c->first_src, 7);
	cr_assert_eq(c->chain, 1);
	cr_assert_eq(c->publisher[0], 0xab);
	done();
}

Test(dedup, a_sequence_a_window_later_takes_the_slot_and_the_earlier_one_is_too_old)
{
	region(64, 64, 1000);
	for (uint64_t s = 1; s <= 64; s++)
		cr_assert_eq(check(2, 1, 7, s), RLY_DEDUP_NEW);
	/* 65 shares seq 1's slot: it replaces it, and 1 is now too old, not new again. */
	cr_assert_eq(check(2, 1, 7, 65), RLY_DEDUP_NEW);
	cr_assert_eq(check(2, 1, 7, 1), RLY_DEDUP_TOO_OLD);
	cr_assert_eq(check(2, 1, 7, 2), RLY_DEDUP_DUPLICATE, "2 is still in the window");
	for (uint64_t s = 66; s <= 1000; s++)
		cr_assert_eq(check(2, 1, 7, s), RLY_DEDUP_NEW, "seq %llu", (unsigned long long)s);
	cr_assert_eq(check(2, 1, 7, 999), RLY_DEDUP_DUPLICATE);
	cr_assert_eq(check(2, 1, 7, 900), RLY_DEDUP_TOO_OLD);
	done();
}

Test(dedup, chains_that_differ_in_stream_publisher_or_chain_number_are_kept_apart)
{
	region(64, 64, 1000);
	cr_assert_eq(check(3, 1, 1, 10), RLY_DEDUP_NEW);
	cr_assert_eq(check(3, 1, 2, 10), RLY_DEDUP_NEW, "another chain of the publisher");
	cr_assert_eq(check(3, 2, 1, 10), RLY_DEDUP_NEW, "another publisher");
	cr_assert_eq(check(4, 1, 1, 10), RLY_DEDUP_NEW, "another stream");
	cr_assert_eq(check(3, 1, 1, 10), RLY_DEDUP_DUPLICATE);
	cr_assert_eq(check(3, 1, 2, 10), RLY_DEDUP_DUPLICATE);
	cr_assert_eq(check(3, 2, 1, 10), RLY_DEDUP_DUPLICATE);
	cr_assert_eq(check(4, 1, 1, 10), RLY_DEDUP_DUPLICATE);
	cr_assert_eq(chains_of(3, 1, 1) + chains_of(3, 1, 2) + chains_of(3, 2, 1) + chains_of(4, 1, 1),
		     4);
	done();
}

Test(dedup, a_full_table_or_a_slot_being_claimed_lets_messages_through_untracked)
{
	unsigned n_new = 0;

	/* Eight chains: every chain's probe window is the whole table. */
	region(8, 64, 1000);
	for (uint8_t p = 1; p <= 8; p++)
		n_new += check(5, p, 1, 1) == RLY_DEDUP_NEW;
	cr_assert_eq(n_new, 8);
	cr_assert_eq(check(5, 9, 1, 1), RLY_DEDUP_UNTRACKED);
	cr_assert_eq(check(5, 9, 1, 1), RLY_DEDUP_UNTRACKED, "untracked is forwarded every time");
	cr_assert_eq(check(5, 3, 1, 1), RLY_DEDUP_DUPLICATE, "chains already in keep working");
	done();

	region(8, 64, 1000);
	rly_dedup_chain_at(&D, 5)->tag = RLY_DEDUP_TAG_CLAIMING;
	cr_assert_eq(check(6, 1, 1, 1), RLY_DEDUP_UNTRACKED,
		     "a slot being claimed may be this chain's: no second slot is claimed");
	cr_assert_eq(chains_of(6, 1, 1), 0);
	rly_dedup_chain_at(&D, 5)->tag = RLY_DEDUP_TAG_FREE;
	cr_assert_eq(check(6, 1, 1, 1), RLY_DEDUP_NEW);
	done();
}

#define RACE_CHAINS 2000u

struct racer {
	unsigned id;
	enum rly_dedup_result res[RACE_CHAINS];
};
static unsigned race_gate[RACE_CHAINS];

static void *race(void *arg)
{
	struct racer *r = arg;

	for (unsigned i = 0; i < RACE_CHAINS; i++) {
		struct rly_wire_msg_hdr h = msg(i, 0x77, i, 1);
		/* Both threads start each chain together, so they claim it at the same moment. */
		__atomic_add_fetch(&race_gate[i], 1, __ATOMIC_ACQ_REL);
		for (unsigned spin = 0; __atomic_load_n(&race_gate[i], __ATOMIC_ACQUIRE) < 2; spin++)
			if (spin > 1000)
				sched_yield();
		r->res[i] = rly_dedup_check(&D, &h, 100, 7);
	}
	return NULL;
}

Test(dedup, two_threads_claiming_the_same_new_chain_leave_exactly_one)
{
	static struct racer a = {.id = 0}, b = {.id = 1};
	pthread_t ta, tb;
	unsigned both_untracked = 0;

	/* 6 % full: a probe window with no free slot is out of the question. */
	region(32768, 64, 1000);
	cr_assert_eq(pthread_create(&ta, NULL, race, &a), 0);
	cr_assert_eq(pthread_create(&tb, NULL, race, &b), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	for (unsigned i = 0; i < RACE_CHAINS; i++) {
		unsigned news = (a.res[i] == RLY_DEDUP_NEW) + (b.res[i] == RLY_DEDUP_NEW);
		cr_assert_eq(chains_of(i, 0x77, i), 1, "chain %u is in %u slots (results %d %d)", i,
			     chains_of(i, 0x77, i), a.res[i], b.res[i]);
		cr_assert_leq(news, 1, "chain %u: seq 1 was new twice", i);
		both_untracked += a.res[i] == RLY_DEDUP_UNTRACKED && b.res[i] == RLY_DEDUP_UNTRACKED;
	}
	cr_assert_eq(both_untracked, 0, "whoever claims a chain checks its message");
	done();
}

Test(dedup, the_manager_reclaims_chains_idle_longer_than_the_idle_time_and_keeps_busy_ones)
{
	struct rly_wire_msg_hdr quiet = msg(8, 1, 1, 1), busy = msg(8, 2, 1, 1);

	rcu_register_thread();
	region(64, 64, 1000); /* idle after 1000 cycles of the caller's clock */
	cr_assert_eq(rly_dedup_check(&D, &quiet, 100, 7), RLY_DEDUP_NEW);
	cr_assert_eq(rly_dedup_check(&D, &busy, 100, 7), RLY_DEDUP_NEW);
	cr_assert_eq(rly_dedup_reclaim(&D, 1100), 0, "not idle yet");
	cr_assert_eq(D.in_use, 2);
	rly_be64_store(&busy.seq, 2);
	cr_assert_eq(rly_dedup_check(&D, &busy, 1050, 7), RLY_DEDUP_NEW);
	D.next_scan = 0;
	cr_assert_eq(rly_dedup_reclaim(&D, 1101), 1, "the quiet chain is reclaimed");
	cr_assert_eq(D.in_use, 1);
	cr_assert_eq(chains_of(8, 1, 1), 0);
	cr_assert_eq(chains_of(8, 2, 1), 1);
	/* A freed slot is all zero again, and the chain starts over. */
	for (uint32_t i = 0; i <= D.mask; i++) {
		struct rly_dedup_chain *c = rly_dedup_chain_at(&D, i);
		if (c->tag == RLY_DEDUP_TAG_FREE) {
			cr_assert_eq(c->highest, 0);
			cr_assert_eq(c->last_tsc, 0);
			for (uint32_t s = 0; s < D.window; s++)
				cr_assert_eq(rly_dedup_slots(c)[s], 0);
		}
	}
	cr_assert_eq(rly_dedup_check(&D, &quiet, 3000, 7), RLY_DEDUP_NEW);
	rly_be64_store(&busy.seq, 1);
	cr_assert_eq(rly_dedup_check(&D, &busy, 3000, 7), RLY_DEDUP_DUPLICATE);
	cr_assert_eq(rly_dedup_reclaim(&D, 3100), 1, "duplicates do not keep a chain alive");
	cr_assert_eq(D.in_use, 1);
	cr_assert_eq(rly_dedup_reclaim(&D, 3101), 0, "the scan interval (250) has not passed");
	done();
	rcu_unregister_thread();
}

Test(dedup, attach_refuses_a_dedup_region_outside_the_object)
{
	struct rly_shm_sizes z = {.n_workers = 1,
				  .cmd_slots = 64,
				  .event_slots = 64,
				  .punt_slots = 64,
				  .tx_slots = 64,
				  .dedup_chains = 16,
				  .dedup_window = 64};
	struct rly_shm s;
	struct rly_shm_header *h;
	char inst[32];
	uint64_t off;

	snprintf(inst, sizeof(inst), "testdd%d", getpid());
	cr_assert_eq(rly_shm_create(&s, inst, &z), 0, "%s", rly_err_msg());
	h = rly_shm_hdr(&s);
	cr_assert_eq(rly_shm_check_rings(&s), 0, "%s", rly_err_msg());
	cr_assert_eq(h->dedup_chains, 16);
	cr_assert_eq(h->dedup_window, 64);
	cr_assert_eq(h->dedup_stride, 128 + 8 * 64);
	cr_assert_eq(h->dedup_off + 16 * h->dedup_stride, s.size, "the region ends the object");
	cr_assert_eq((uintptr_t)rly_shm_dedup_chain(&s, 1) - (uintptr_t)rly_shm_dedup_chain(&s, 0),
		     h->dedup_stride);

	h->dedup_chains = 32;
	cr_assert_eq(rly_shm_check_rings(&s), -EPROTO, "twice the chains do not fit");
	cr_assert(strstr(rly_err_msg(), "dedup") != NULL, "%s", rly_err_msg());
	h->dedup_chains = 16;
	off = h->dedup_off;
	h->dedup_off = off + 64;
	cr_assert_eq(rly_shm_check_rings(&s), -EPROTO, "shifted past the end");
	h->dedup_off = h->tx_ring_off;
	cr_assert_eq(rly_shm_check_rings(&s), -EPROTO, "overlapping the tx ring");
	h->dedup_off = off;
	h->dedup_stride += 8;
	cr_assert_eq(rly_shm_check_rings(&s), -EPROTO, "a stride that is not the window's");
	h->dedup_stride -= 8;
	h->dedup_off = UINT64_MAX - 63;
	cr_assert_eq(rly_shm_check_rings(&s), -EPROTO, "an offset that would wrap");
	h->dedup_off = off;
	cr_assert_eq(rly_shm_check_rings(&s), 0);
	rly_shm_close(&s);
}

