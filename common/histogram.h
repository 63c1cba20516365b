/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Log-linear latency histogram (HdrHistogram's layout with 64 sub-buckets per power of two):
 * values below 128 are exact, larger ones land in buckets 1/64 of their power of two wide, so a
 * reported percentile is within 1.6 % of the true value. Recording is a few instructions and no
 * allocation, so the bench sinks and relay-sub record every message.
 */
#ifndef RLY_COMMON_HISTOGRAM_H
#define RLY_COMMON_HISTOGRAM_H

#include <stdint.h>
#include <stdio.h>

#define RLY_HIST_BUCKETS (128 + 57 * 64)

struct rly_hist {
	uint64_t count;
	uint64_t min;
	uint64_t max;
	uint64_t sum; /* saturates instead of wrapping */
	uint64_t bucket[RLY_HIST_BUCKETS];
};

void rly_hist_init(struct rly_hist *h);
void rly_hist_record(struct rly_hist *h, uint64_t v);
void rly_hist_merge(struct rly_hist *dst, const struct rly_hist *src);
/** Smallest recorded value v such that at least p % of values are <= v (bucket upper bound, capped at max). */
uint64_t rly_hist_percentile(const struct rly_hist *h, double p);
double rly_hist_mean(const struct rly_hist *h);
/** One line: "n=... min=... p50=... p90=... p99=... p99.9=... max=..." with values divided by @p div. */
void rly_hist_print(FILE *f, const struct rly_hist *h, double div, const char *unit);

#endif
