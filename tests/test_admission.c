/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publisher admission in the dataplane: with admission on, a data message is forwarded only when
 * its stream's admission list (pushed by relay-control from the stream registry) admits its
 * publisher; everything else is dropped and counted, message by message, even inside a datagram
 * that also carries admitted messages. Lists change in one step and the workers follow at once.
 */
#include <string.h>

#include <criterion/criterion.h>

#include "dp_harness.h"

static struct harness H;
static uint8_t K[16];

static void pk_of(uint8_t pk[32], uint8_t v)
{
	memset(pk, v, 32);
}

/* Send one datagram whose messages come from publishers @p pubs; return messages delivered. */
static unsigned send_from(const uint8_t *pubs, unsigned n, uint64_t *seq)
{
	struct h_msg m[8];
	uint8_t buf[2048];
	struct rte_mbuf *in, *out[64];
	unsigned got, delivered = 0;
	uint64_t before = h_ctr(&H, RLY_CTR_DELIVERIES);

	for (unsigned i = 0; i < n; i++) {
		m[i] = (struct h_msg){.chain = pubs[i], .seq = ++*seq, .payload_len = 16, .pub = pubs[i]};
		memcpy(m[i].key, K, 16);
	}
	in = h_frame(&H, 9, 6000, buf, h_build_data(buf, m, n));
	h_inject(&H, 0, &in, 1);
	h_run(&H, 10);
	while ((got = h_collect(&H, 0, out, 64)) > 0)
		rte_pktmbuf_free_bulk(out, got);
	delivered = (unsigned)(h_ctr(&H, RLY_CTR_DELIVERIES) - before);
	return delivered;
}

static void setup(void)
{
	struct rly_endpoint e1 = h_ep(1, 5001);

	h_setup(&H, 1, 1, 1500);
	h_key(K, 11);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, K, 0, &e1), RLY_CMD_OK);
}

Test(admission, off_by_default_every_publisher_is_forwarded)
{
	uint64_t seq = 0;
	const uint8_t pubs[] = {1, 2, 3};

	setup();
	cr_assert_eq(send_from(pubs, 3, &seq), 3);
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_NOT_ADMITTED), 0);
	h_teardown(&H);
}

Test(admission, on_only_listed_publishers_get_through_message_by_message)
{
	uint64_t seq = 0;
	uint8_t a[32], b[32];
	const uint8_t mixed[] = {0xa1, 0xb2, 0xa1, 0xb2, 0xb2};

	setup();
	pk_of(a, 0xa1);
	pk_of(b, 0xb2);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_MODE, NULL, 1, NULL), RLY_CMD_OK);
	cr_assert_eq(send_from((const uint8_t[]){0xa1}, 1, &seq), 0, "no list yet: closed");
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_NOT_ADMITTED), 1);

	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_BEGIN, K, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_ADD, K, 0, a), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_COMMIT, K, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(h_ctr(&H, RLY_CTR_ADMIT_STREAMS), 1);
	cr_assert_eq(send_from(mixed, 5, &seq), 2, "only publisher a's two messages");
	cr_assert_eq(h_ctr(&H, RLY_CTR_DROP_NOT_ADMITTED), 1 + 3);

	/* Replace the list: now b only. The worker follows at once (its cache is generation-bound). */
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_BEGIN, K, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_ADD, K, 0, b), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_COMMIT, K, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(send_from(mixed, 5, &seq), 3);

	/* Public: anyone. */
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_BEGIN, K, RLY_ADMIT_F_PUBLIC, NULL), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_COMMIT, K, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(send_from(mixed, 5, &seq), 5);

	/* Cleared: closed again; mode off: open again. */
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_CLEAR, K, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(send_from(mixed, 5, &seq), 0);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_CLEAR, K, 0, NULL), RLY_CMD_NOT_FOUND);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_MODE, NULL, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(send_from(mixed, 5, &seq), 5);
	h_teardown(&H);
}

Test(admission, a_long_list_is_searched_and_bounded)
{
	uint64_t seq = 0;
	uint8_t pk[32];

	setup();
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_MODE, NULL, 1, NULL), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_ADD, K, 0, pk), RLY_CMD_ADMIT_ORDER, "ADD before BEGIN");
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_BEGIN, K, 0, NULL), RLY_CMD_OK);
	/* 1000 publishers with keys 0x00..0xff in the first byte, varied after: searched, not scanned. */
	for (unsigned i = 0; i < 1000; i++) {
		memset(pk, (int)(i * 7u), 32);
		pk[31] = (uint8_t)(i >> 8);
		cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_ADD, K, 0, pk), RLY_CMD_OK);
	}
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_COMMIT, K, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_COMMIT, K, 0, NULL), RLY_CMD_ADMIT_ORDER,
		     "a COMMIT needs its own BEGIN");
	/* Publisher 0x46 x32 is i = 10 (10 * 7 = 70 = 0x46, i >> 8 = 0): only with pk[31] = 0. */
	/* 0x46 x 32 would need pk[31] = 0x46, i.e. i >> 8 = 70: not listed. */
	cr_assert_eq(send_from((const uint8_t[]){0x46}, 1, &seq), 0, "pk[31] differs: not listed");
	{
		const struct rly_admit *a = rly_subtable_admit_lookup(H.table, K);
		uint8_t listed[32];
		cr_assert_not_null(a);
		cr_assert_eq(a->n, 1000);
		memset(listed, 0x46, 32);
		listed[31] = 0;
		cr_assert(rly_admit_allows(a, listed));
		listed[31] = 4; /* i >> 8 is at most 3 for i < 1000 */
		cr_assert_not(rly_admit_allows(a, listed));
	}
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_BEGIN, K, 0, NULL), RLY_CMD_OK);
	for (unsigned i = 0; i < RLY_ADMIT_MAX; i++)
		h_admit(&H, RLY_CMD_ADMIT_ADD, K, 0, pk);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_ADD, K, 0, pk), RLY_CMD_ADMIT_FULL);
	h_teardown(&H);
}

Test(admission, a_sweep_removes_lists_of_other_epochs_only)
{
	uint64_t seq = 0;
	uint8_t a[32], k2[16];

	setup();
	pk_of(a, 0xa1);
	h_key(k2, 12);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_MODE, NULL, 1, NULL), RLY_CMD_OK);
	/* Epoch 7 (an earlier relay-control) listed a on both streams. */
	for (unsigned s = 0; s < 2; s++) {
		const uint8_t *key = s ? k2 : K;
		cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_BEGIN, key, 0, NULL), RLY_CMD_OK);
		cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_ADD, key, 0, a), RLY_CMD_OK);
		cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_COMMIT, key, 7, NULL), RLY_CMD_OK);
	}
	/* Epoch 8 pushes only K again; its sweep removes k2's stale list. */
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_BEGIN, K, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_ADD, K, 0, a), RLY_CMD_OK);
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_COMMIT, K, 8, NULL), RLY_CMD_OK);
	cr_assert_eq(send_from((const uint8_t[]){0xa1}, 1, &seq), 1, "admitted before the sweep");
	cr_assert_eq(h_admit(&H, RLY_CMD_ADMIT_SWEEP, NULL, 8, NULL), RLY_CMD_OK);
	cr_assert_eq(h_ctr(&H, RLY_CTR_ADMIT_STREAMS), 1);
	cr_assert_not_null(rly_subtable_admit_lookup(H.table, K));
	cr_assert_null(rly_subtable_admit_lookup(H.table, k2), "the stale list is gone");
	cr_assert_eq(send_from((const uint8_t[]){0xa1}, 1, &seq), 1, "and K's publisher still gets through");
	h_teardown(&H);
}
