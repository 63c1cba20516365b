/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/histogram.c against a sorted copy of the same values: exact below 128, within the 1.6 %
 * documented in common/histogram.h above, never below the true percentile (the histogram reports a
 * bucket's upper bound), and merge equal to recording everything in one histogram.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/histogram.h"

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Heap-allocated: a histogram is ~30 KiB. */
static struct rly_hist *hist_new(void)
{
	struct rly_hist *h = malloc(sizeof(*h));
	cr_assert_not_null(h);
	rly_hist_init(h);
	return h;
}

/* Percentiles in hundredths of a percent, chosen so p * n / 100 is whole for n = 100000. */
static const unsigned pcts_x100[] = {1,    10,   100,  1000, 2500, 5000,
				     7500, 9000, 9900, 9990, 9999, 10000};
#define N_PCTS (sizeof(pcts_x100) / sizeof(pcts_x100[0]))

/* The value of rank ceil(p * n / 100) in @p sorted: the definition histogram.h documents. */
static uint64_t true_percentile(const uint64_t *sorted, size_t n, unsigned p_x100)
{
	size_t rank = ((size_t)p_x100 * n + 9999) / 10000;
	return sorted[rank ? rank - 1 : 0];
}

static void check_against_reference(const struct rly_hist *h, uint64_t *vals, size_t n)
{
	qsort(vals, n, sizeof(*vals), cmp_u64);
	cr_assert_eq(h->count, n);
	cr_assert_eq(h->min, vals[0]);
	cr_assert_eq(h->max, vals[n - 1]);
	cr_assert_eq(rly_hist_percentile(h, 0), vals[0]);
	for (size_t i = 0; i < N_PCTS; i++) {
		double p = pcts_x100[i] / 100.0;
		uint64_t want = true_percentile(vals, n, pcts_x100[i]);
		uint64_t got = rly_hist_percentile(h, p);

		cr_expect_geq(got, want, "p%.2f: %llu below the true %llu", p, (unsigned long long)got,
			      (unsigned long long)want);
		cr_expect_leq((double)(got - want), 0.016 * (double)want,
			      "p%.2f: %llu more than 1.6 %% above the true %llu", p,
			      (unsigned long long)got, (unsigned long long)want);
	}
}

Test(histogram, empty_histogram_reports_zero_and_prints_n_0)
{
	struct rly_hist *h = hist_new();
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);

	cr_assert_eq(h->count, 0);
	cr_assert_eq(rly_hist_percentile(h, 0), 0);
	cr_assert_eq(rly_hist_percentile(h, 50), 0);
	cr_assert_eq(rly_hist_percentile(h, 100), 0);
	cr_assert_eq(rly_hist_mean(h), 0.0);
	rly_hist_print(f, h, 1.0, "ns");
	fclose(f);
	cr_assert_str_eq(text, "n=0");
	free(text);
	free(h);
}

Test(histogram, values_below_128_are_exact)
{
	struct rly_hist *h = hist_new();
	static uint64_t vals[100000];

	for (size_t i = 0; i < 100000; i++) {
		vals[i] = rnd() % 128;
		rly_hist_record(h, vals[i]);
	}
	qsort(vals, 100000, sizeof(vals[0]), cmp_u64);
	for (size_t i = 0; i < N_PCTS; i++)
		cr_expect_eq(rly_hist_percentile(h, pcts_x100[i] / 100.0),
			     true_percentile(vals, 100000, pcts_x100[i]), "p%.2f",
			     pcts_x100[i] / 100.0);
	/* Every single value below 128 comes back as itself, whatever the neighbours. */
	for (uint64_t v = 0; v < 128; v++) {
		rly_hist_init(h);
		rly_hist_record(h, v);
		rly_hist_record(h, 1000000);
		cr_assert_eq(rly_hist_percentile(h, 50), v);
	}
	free(h);
}

Test(histogram, percentiles_are_within_1_6_percent_of_a_sorted_reference)
{
	static uint64_t vals[100000];
	struct rly_hist *h = hist_new();

	/* Log-uniform over 0 .. 2^48: every magnitude a latency in ns or a byte count takes. */
	for (size_t i = 0; i < 100000; i++) {
		unsigned bits = (unsigned)(rnd() % 49);
		vals[i] = bits ? rnd() >> (64 - bits) : 0;
		rly_hist_record(h, vals[i]);
	}
	check_against_reference(h, vals, 100000);
	free(h);
}

Test(histogram, a_narrow_latency_like_distribution_is_within_the_bound)
{
	static uint64_t vals[100000];
	struct rly_hist *h = hist_new();

	/* 5-20 us with a tail to 2 ms: many values share buckets, so ranks land inside buckets. */
	for (size_t i = 0; i < 100000; i++) {
		vals[i] = 5000 + rnd() % 15000 + ((rnd() % 1000) == 0 ? rnd() % 2000000 : 0);
		rly_hist_record(h, vals[i]);
	}
	check_against_reference(h, vals, 100000);
	free(h);
}

Test(histogram, every_magnitude_maps_to_a_bucket_within_the_bound)
{
	struct rly_hist *h = hist_new();

	for (unsigned e = 7; e < 64; e++) {
		uint64_t base = 1ull << e;
		uint64_t probes[] = {base, base + 1, base + (base >> 1), base + (base >> 6) - 1,
				     base + (base >> 6), (base - 1) + base, base + (rnd() % base)};
		for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
			uint64_t v = probes[i];
			/* A larger value keeps v's bucket bound from being capped at max. */
			rly_hist_init(h);
			rly_hist_record(h, v);
			rly_hist_record(h, UINT64_MAX);
			uint64_t got = rly_hist_percentile(h, 50);
			cr_assert_geq(got, v, "2^%u probe %zu", e, i);
			cr_assert_leq((double)(got - v), 0.016 * (double)v, "2^%u probe %zu: %llu for %llu",
				      e, i, (unsigned long long)got, (unsigned long long)v);
		}
	}
	free(h);
}

Test(histogram, huge_values_are_recorded_and_the_sum_saturates)
{
	struct rly_hist *h = hist_new();

	rly_hist_record(h, UINT64_MAX);
	rly_hist_record(h, 1ull << 63);
	rly_hist_record(h, (1ull << 63) - 1);
	cr_assert_eq(h->count, 3);
	cr_assert_eq(h->max, UINT64_MAX);
	cr_assert_eq(h->min, (1ull << 63) - 1);
	cr_assert_eq(h->sum, UINT64_MAX, "sum wrapped instead of saturating");
	cr_assert_eq(rly_hist_percentile(h, 100), UINT64_MAX);
	cr_assert_eq(rly_hist_percentile(h, 0), (1ull << 63) - 1);
	uint64_t p50 = rly_hist_percentile(h, 50);
	cr_assert_geq(p50, 1ull << 63);
	cr_assert_leq(p50, (1ull << 63) + (1ull << 57));

	uint64_t total = 0;
	for (unsigned i = 0; i < RLY_HIST_BUCKETS; i++)
		total += h->bucket[i];
	cr_assert_eq(total, 3, "a huge value fell outside the buckets");
	cr_assert_eq(h->bucket[RLY_HIST_BUCKETS - 1], 1, "UINT64_MAX is not in the last bucket");
	free(h);
}

Test(histogram, merge_equals_recording_everything_in_one)
{
	struct rly_hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *empty = hist_new();

	for (unsigned i = 0; i < 50000; i++) {
		uint64_t v = rnd() >> (rnd() % 64);
		rly_hist_record(i % 3 ? a : b, v);
		rly_hist_record(all, v);
	}
	rly_hist_record(b, UINT64_MAX); /* make b's sum saturate */
	rly_hist_record(all, UINT64_MAX);

	rly_hist_merge(a, empty);
	rly_hist_merge(a, b);
	cr_assert_eq(a->count, all->count);
	cr_assert_eq(a->min, all->min);
	cr_assert_eq(a->max, all->max);
	cr_assert_eq(a->sum, all->sum);
	cr_assert_arr_eq(a->bucket, all->bucket, sizeof(a->bucket));
	for (size_t i = 0; i < N_PCTS; i++)
		cr_assert_eq(rly_hist_percentile(a, pcts_x100[i] / 100.0),
			     rly_hist_percentile(all, pcts_x100[i] / 100.0));

	/* Merging into an empty histogram copies; an empty one keeps min at "none". */
	rly_hist_merge(empty, all);
	cr_assert_eq(empty->min, all->min);
	cr_assert_eq(empty->count, all->count);
	rly_hist_init(b);
	rly_hist_init(empty);
	rly_hist_merge(empty, b);
	cr_assert_eq(empty->count, 0);
	cr_assert_eq(empty->min, UINT64_MAX);
	free(a);
	free(b);
	free(all);
	free(empty);
}

Test(histogram, mean_and_print_report_what_was_recorded)
{
	struct rly_hist *h = hist_new();
	char *text = NULL;
	size_t text_len = 0;
	FILE *f = open_memstream(&text, &text_len);

	rly_hist_record(h, 1000);
	rly_hist_record(h, 2000);
	rly_hist_record(h, 3000);
	cr_assert_float_eq(rly_hist_mean(h), 2000.0, 1e-9);
	rly_hist_print(f, h, 1000.0, "us");
	fclose(f);
	cr_assert(strstr(text, "n=3 min=1.0us") == text, "got '%s'", text);
	cr_assert_not_null(strstr(text, "max=3.0us"), "got '%s'", text);
	cr_assert_not_null(strstr(text, "p50="), "got '%s'", text);
	free(text);
	free(h);
}

Test(histogram, percentile_arguments_outside_0_100_are_clamped)
{
	struct rly_hist *h = hist_new();

	for (uint64_t v = 1; v <= 100; v++)
		rly_hist_record(h, v);
	cr_assert_eq(rly_hist_percentile(h, -5), 1);
	cr_assert_eq(rly_hist_percentile(h, 150), 100);
	cr_assert_eq(rly_hist_percentile(h, 1e-9), 1);
	cr_assert_eq(rly_hist_percentile(h, 50), 50);
	cr_assert_eq(rly_hist_percentile(h, 50.5), 51);
	cr_assert_eq(rly_hist_percentile(h, 50.1), 51, "rank is rounded up, not to nearest");
	free(h);
}
