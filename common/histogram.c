/* SPDX-License-Identifier: Apache-2.0 */
#include "histogram.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
	if (v < 128)
		return (unsigned)v;
	unsigned e = 63u - (unsigned)__builtin_clzll(v); /* 7..63 */
	unsigned mant = (unsigned)(v >> (e - 6));       /* 64..127 */
	return 128u + (e - 7u) * 64u + (mant - 64u);
}

static uint64_t bucket_upper(unsigned i)
{
	if (i < 128)
		return i;
	unsigned e = (i - 128u) / 64u + 7u;
	uint64_t mant = (i - 128u) % 64u + 64u;
	return ((mant + 1) << (e - 6)) - 1;
}

void rly_hist_init(struct rly_hist *h)
{
	memset(h, 0, sizeof(*h));
	h->min = UINT64_MAX;
}

void rly_hist_record(struct rly_hist *h, uint64_t v)
{
	h->bucket[bucket_of(v)]++;
	h->count++;
	h->sum = (h->sum + v < h->sum) ? UINT64_MAX : h->sum + v;
	if (v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
}

void rly_hist_merge(struct rly_hist *dst, const struct rly_hist *src)
{
	for (unsigned i = 0; i < RLY_HIST_BUCKETS; i++)
		dst->bucket[i] += src->bucket[i];
	dst->count += src->count;
	dst->sum = (dst->sum + src->sum < dst->sum) ? UINT64_MAX : dst->sum + src->sum;
	if (src->min < dst->min)
		dst->min = src->min;
	if (src->max > dst->max)
		dst->max = src->max;
}

uint64_t rly_hist_percentile(const struct rly_hist *h, double p)
{
	uint64_t rank, seen = 0;

	if (h->count == 0)
		return 0;
	if (p <= 0)
		return h->min;
	rank = (uint64_t)((p / 100.0) * (double)h->count + 0.999999);
	if (rank == 0)
		rank = 1;
	if (rank > h->count)
		rank = h->count;
	for (unsigned i = 0; i < RLY_HIST_BUCKETS; i++) {
		seen += h->bucket[i];
		if (seen >= rank) {
			uint64_t v = bucket_upper(i);
			if (v > h->max)
				v = h->max;
			if (v < h->min)
				v = h->min;
			return v;
		}
	}
	return h->max;
}

double rly_hist_mean(const struct rly_hist *h)
{
	return h->count ? (double)h->sum / (double)h->count : 0.0;
}

void rly_hist_print(FILE *f, const struct rly_hist *h, double div, const char *unit)
{
	if (h->count == 0) {
		fprintf(f, "n=0");
		return;
	}
	fprintf(f, "n=%llu min=%.1f%s p50=%.1f%s p90=%.1f%s p99=%.1f%s p99.9=%.1f%s max=%.1f%s",
		(unsigned long long)h->count, (double)h->min / div, unit,
		(double)rly_hist_percentile(h, 50) / div, unit, (double)rly_hist_percentile(h, 90) / div,
		unit, (double)rly_hist_percentile(h, 99) / div, unit,
		(double)rly_hist_percentile(h, 99.9) / div, unit, (double)h->max / div, unit);
}
