/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The history per chain (common/hist.h) on its own, over plain memory laid out like the shm
 * region, with the dedup table beside it: a chain's first message gives it a slot; messages come
 * back byte for byte; what the byte ring or the index pushed out is EVICTED and what never came
 * is MISSING; a slot reused by another chain answers nothing for the old one; a full pool is
 * retried only after the retry time; the manager gives a reclaimed chain's slot back; two
 * threads writing one chain at once lose nothing; a reader racing a writer never returns a torn
 * copy.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <urcu-qsbr.h>

#include "common/hist.h"
#include "dataplane/dedup.h"

#define CHAINS 16u
#define WINDOW 64u

static struct rly_dedup D;
static void *dmem, *hmem;

/* @p slots history slots of @p index entries and @p bytes of ring, zeroed as a new shm object. */
static void setup(uint32_t slots, uint32_t index, uint64_t bytes)
{
	size_t dsize = (size_t)CHAINS * RLY_DEDUP_STRIDE(WINDOW);
	size_t hsize = (size_t)slots * RLY_HIST_STRIDE(index, bytes);

	dmem = aligned_alloc(64, dsize);
	hmem = aligned_alloc(64, hsize);
	cr_assert(dmem && hmem);
	memset(dmem, 0, dsize);
	memset(hmem, 0, hsize);
	cr_assert_eq(rly_dedup_init(&D, dmem, CHAINS, WINDOW, 1000, 1000), 0);
	rly_hist_view(&D.hist, hmem, slots, index, bytes);
}

static void teardown(void)
{
	free(dmem);
	free(hmem);
}

/* Message @p seq of chain @p chain: header and a payload of a known pattern; returns its length. */
static uint32_t mk(uint8_t *out, uint32_t chain, uint64_t seq, uint16_t payload)
{
	struct rly_wire_msg_hdr h;

	memset(&h, 0, sizeof(h));
	memset(h.stream_key, 0x42, sizeof(h.stream_key));
	memset(h.publisher, 0x11, sizeof(h.publisher));
	rly_be32_store(&h.chain, chain);
	rly_be64_store(&h.seq, seq);
	rly_be64_store(&h.prev_seq, seq - 1);
	rly_be16_store(&h.payload_len, payload);
	memcpy(out, &h, sizeof(h));
	for (uint16_t i = 0; i < payload; i++)
		out[sizeof(h) + i] = (uint8_t)(seq * 7 + i + chain);
	return (uint32_t)(sizeof(h) + payload);
}

/* Accept message @p seq as a worker does: dedup, then (new) into the chain's history slot. */
static struct rly_hist_chain *accept(uint32_t chain, uint64_t seq, uint16_t payload, uint64_t now)
{
	uint8_t m[2048];
	uint32_t len = mk(m, chain, seq, payload);
	struct rly_dedup_chain *c;
	struct rly_hist_chain *hc;

	if (rly_dedup_check_at(&D, (void *)m, now, 7, &c) != RLY_DEDUP_NEW)
		return NULL;
	hc = rly_hist_of(&D.hist, c, c->tag);
	if (hc == NULL)
		hc = rly_hist_claim(&D.hist, c, c->tag, rly_dedup_index(&D, c), now, 1000);
	if (hc != NULL)
		cr_assert(rly_hist_append(&D.hist, hc, seq, m, len));
	return hc;
}

static struct rly_dedup_chain *chain_of(uint32_t chain, uint64_t *tag)
{
	uint8_t m[256];

	mk(m, chain, 1, 0);
	return rly_dedup_lookup(&D, m, tag);
}

/* Look seq up in chain @p chain's history: the result, and the copy checked byte for byte. */
static enum rly_hist_result get(uint32_t chain, uint64_t seq, uint16_t payload)
{
	uint8_t back[2048], want[2048];
	uint32_t len = 0, wlen = mk(want, chain, seq, payload);
	uint64_t tag;
	struct rly_dedup_chain *c = chain_of(chain, &tag);
	struct rly_hist_chain *hc;
	enum rly_hist_result r;

	cr_assert_not_null(c, "chain %u is in the dedup table", chain);
	hc = rly_hist_of(&D.hist, c, tag);
	cr_assert_not_null(hc, "chain %u has a history slot", chain);
	r = rly_hist_read(&D.hist, hc, tag, seq, back, sizeof(back), &len);
	if (r == RLY_HIST_FOUND) {
		cr_assert_eq(len, wlen);
		cr_assert_arr_eq(back, want, len, "seq %llu comes back byte for byte",
				 (unsigned long long)seq);
	}
	return r;
}

Test(hist, a_chain_gets_a_slot_and_every_kept_message_comes_back)
{
	setup(4, 1024, 65536);
	for (uint64_t seq = 1; seq <= 100; seq++)
		cr_assert_not_null(accept(5, seq, 64, 100));
	for (uint64_t seq = 1; seq <= 100; seq++)
		cr_expect_eq(get(5, seq, 64), RLY_HIST_FOUND, "seq %llu", (unsigned long long)seq);
	cr_expect_eq(get(5, 101, 64), RLY_HIST_MISSING, "not yet received");
	teardown();
}

Test(hist, the_byte_ring_keeps_the_newest_and_says_the_rest_was_evicted)
{
	/* 8 KiB ring; 96 + 200 bytes of message + 24 of record = 320 each: the newest 25 fit. */
	setup(2, 1024, 8192);
	for (uint64_t seq = 1; seq <= 200; seq++)
		accept(9, seq, 200, 100);
	for (uint64_t seq = 200; seq > 176; seq--)
		cr_expect_eq(get(9, seq, 200), RLY_HIST_FOUND, "seq %llu", (unsigned long long)seq);
	cr_expect_eq(get(9, 150, 200), RLY_HIST_EVICTED);
	cr_expect_eq(get(9, 1, 200), RLY_HIST_EVICTED);
	teardown();
}

Test(hist, the_index_bounds_the_messages_kept_and_a_wrapped_entry_is_evicted)
{
	/* Plenty of bytes but 1024 index entries: at most 1024 messages. */
	setup(2, 1024, 1u << 20);
	for (uint64_t seq = 1; seq <= 3000; seq++)
		accept(3, seq, 0, 100);
	cr_expect_eq(get(3, 3000, 0), RLY_HIST_FOUND);
	cr_expect_eq(get(3, 3000 - 1023, 0), RLY_HIST_FOUND);
	cr_expect_eq(get(3, 3000 - 1024, 0), RLY_HIST_EVICTED, "its entry holds a later seq");
	teardown();
}

Test(hist, a_hole_is_missing_and_filled_late_it_is_found)
{
	setup(2, 1024, 65536);
	for (uint64_t seq = 1; seq <= 50; seq++)
		if (seq < 20 || seq > 30)
			accept(4, seq, 32, 100);
	for (uint64_t seq = 20; seq <= 30; seq++)
		cr_expect_eq(get(4, seq, 32), RLY_HIST_MISSING);
	accept(4, 25, 32, 100); /* a repair reaches the relay */
	cr_expect_eq(get(4, 25, 32), RLY_HIST_FOUND);
	cr_expect_eq(get(4, 24, 32), RLY_HIST_MISSING);
	teardown();
}

Test(hist, a_copy_is_refused_when_its_bytes_were_reused_or_the_room_is_short)
{
	uint8_t back[64];
	uint32_t len = 0;
	uint64_t tag;
	struct rly_dedup_chain *c;
	struct rly_hist_chain *hc;

	setup(2, 1024, 65536);
	for (uint64_t seq = 1; seq <= 10; seq++)
		accept(6, seq, 100, 100);
	c = chain_of(6, &tag);
	hc = rly_hist_of(&D.hist, c, tag);
	cr_expect_eq(rly_hist_read(&D.hist, hc, tag, 5, back, sizeof(back), &len), RLY_HIST_EVICTED,
		     "196 bytes do not fit 64: not handed out cut short");
	cr_expect_eq(get(6, 9, 100), RLY_HIST_FOUND);
	/* A writer went a whole ring further on: what the reader copied may be another's bytes. */
	hc->head += 65536;
	cr_expect_eq(get(6, 9, 100), RLY_HIST_EVICTED);
	teardown();
}

Test(hist, a_full_pool_is_retried_only_after_the_retry_time)
{
	uint64_t tag;

	setup(1, 1024, 16384);
	cr_assert_not_null(accept(1, 1, 10, 100), "the first chain takes the only slot");
	cr_assert_null(accept(2, 1, 10, 100), "the second finds none");
	cr_expect_eq(chain_of(2, &tag)->hist, RLY_HIST_NONE);
	cr_expect_eq(chain_of(2, &tag)->hist_retry_tsc, 1100);
	/* Give the slot back by hand (as the manager would for a reclaimed chain 1). */
	__atomic_store_n(&rly_hist_slot(&D.hist, 0)->owner, 0, __ATOMIC_RELEASE);
	cr_assert_null(accept(2, 2, 10, 500), "not looked for again before the retry time");
	cr_assert_not_null(accept(2, 3, 10, 1100), "after it, the free slot is found");
	cr_expect_eq(get(2, 3, 10), RLY_HIST_FOUND);
	cr_expect_eq(get(2, 2, 10), RLY_HIST_MISSING, "what came while it had none is not held");
	teardown();
}

Test(hist, a_slot_reused_by_another_chain_answers_nothing_for_the_old_one)
{
	uint64_t tag;
	struct rly_dedup_chain *c;
	struct rly_hist_chain *hc;

	setup(1, 1024, 16384);
	for (uint64_t seq = 1; seq <= 5; seq++)
		accept(1, seq, 10, 100);
	c = chain_of(1, &tag);
	hc = rly_hist_of(&D.hist, c, tag);
	/* Chain 1 forgotten, its slot taken by chain 2, whose seqs overlap chain 1's. */
	__atomic_store_n(&hc->owner, 0, __ATOMIC_RELEASE);
	cr_expect_null(rly_hist_of(&D.hist, c, tag), "chain 1 no longer owns the slot");
	for (uint64_t seq = 1; seq <= 3; seq++)
		accept(2, seq, 10, 100);
	cr_expect_eq(get(2, 2, 10), RLY_HIST_FOUND);
	cr_expect_eq(get(2, 5, 10), RLY_HIST_MISSING, "chain 1's seq 5 is below the new base");
	teardown();
}

Test(hist, the_manager_gives_a_reclaimed_chains_slot_back)
{
	uint64_t tag;

	rcu_register_thread();
	setup(1, 1024, 16384);
	D.idle_tsc = 10;
	accept(1, 1, 10, 100);
	cr_expect_eq(rly_dedup_reclaim(&D, 200), 1, "idle: reclaimed");
	cr_expect_eq(D.hist_in_use, 0, "its slot is free again");
	cr_expect_null(chain_of(1, &tag));
	cr_assert_not_null(accept(2, 1, 10, 300), "another chain takes it");
	rcu_unregister_thread();
	teardown();
}

Test(hist, low_hint_turns_everything_below_into_evicted)
{
	uint64_t tag;

	setup(2, 1024, 65536);
	for (uint64_t seq = 1; seq <= 10; seq++)
		accept(8, seq, 10, 100);
	struct rly_dedup_chain *c = chain_of(8, &tag);
	rly_hist_raise_low(rly_hist_of(&D.hist, c, tag), 6);
	cr_expect_eq(get(8, 5, 10), RLY_HIST_EVICTED);
	cr_expect_eq(get(8, 6, 10), RLY_HIST_FOUND);
	rly_hist_raise_low(rly_hist_of(&D.hist, c, tag), 3);
	cr_expect_eq(get(8, 5, 10), RLY_HIST_EVICTED, "the hint only rises");
	teardown();
}

/* Two writers, one chain: each accepts every other seq (as two workers fed by two peers would). */
struct writer {
	struct rly_hist_chain *hc;
	uint64_t first, n;
};

static void *write_half(void *arg)
{
	struct writer *w = arg;
	uint8_t m[512];

	for (uint64_t seq = w->first; seq < w->first + 2 * w->n; seq += 2) {
		uint32_t len = mk(m, 77, seq, (uint16_t)(seq % 300));
		rly_hist_append(&D.hist, w->hc, seq, m, len);
	}
	return NULL;
}

Test(hist, two_writers_on_one_chain_lose_nothing)
{
	struct writer a, b;
	pthread_t ta, tb;
	uint64_t tag;

	setup(1, 1u << 16, 1u << 24);
	accept(77, 1, 0, 100);
	struct rly_dedup_chain *c = chain_of(77, &tag);
	a = (struct writer){rly_hist_of(&D.hist, c, tag), 2, 20000};
	b = (struct writer){a.hc, 3, 20000};
	pthread_create(&ta, NULL, write_half, &a);
	pthread_create(&tb, NULL, write_half, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	for (uint64_t seq = 2; seq < 40002; seq++)
		cr_assert_eq(get(77, seq, (uint16_t)(seq % 300)), RLY_HIST_FOUND, "seq %llu",
			     (unsigned long long)seq);
	teardown();
}

/* A reader copying while a writer laps a small ring: every copy it accepts is whole and right. */
static volatile int stop_writing;

static void *lap(void *arg)
{
	struct writer *w = arg;
	uint8_t m[512];

	for (uint64_t seq = w->first; !stop_writing; seq++) {
		uint32_t len = mk(m, 88, seq, (uint16_t)(seq % 400));
		rly_hist_append(&D.hist, w->hc, seq, m, len);
		__atomic_store_n(&w->n, seq, __ATOMIC_RELEASE);
	}
	return NULL;
}

Test(hist, a_reader_racing_a_writer_never_returns_a_torn_copy)
{
	struct writer w;
	pthread_t t;
	uint64_t tag, found = 0, gone = 0;

	setup(1, 1024, 8192);
	accept(88, 1, 0, 100);
	struct rly_dedup_chain *c = chain_of(88, &tag);
	w = (struct writer){rly_hist_of(&D.hist, c, tag), 2, 0};
	stop_writing = 0;
	pthread_create(&t, NULL, lap, &w);
	for (int i = 0; i < 200000; i++) {
		uint64_t hi = __atomic_load_n(&w.n, __ATOMIC_ACQUIRE);
		uint64_t seq = hi > 20 ? hi - (uint64_t)(i % 20) : 2;
		/* get() checks every byte of what it is given. */
		if (get(88, seq, (uint16_t)(seq % 400)) == RLY_HIST_FOUND)
			found++;
		else
			gone++;
	}
	stop_writing = 1;
	pthread_join(t, NULL);
	cr_expect_gt(found, 0, "some reads succeeded (%llu found, %llu gone)",
		     (unsigned long long)found, (unsigned long long)gone);
	teardown();
}
