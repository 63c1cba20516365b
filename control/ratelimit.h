/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-source-address token buckets in a fixed table: the basic SUBSCRIBE rate limit. Each address
 * hashes (keyed) to one slot; a different address landing on an occupied slot takes it over with a
 * full bucket. That bounds memory whatever the number of sources, at the price of letting an
 * attacker with many addresses reset buckets; a later hardening replaces the eviction rule.
 */
#ifndef RLY_CONTROL_RATELIMIT_H
#define RLY_CONTROL_RATELIMIT_H

#include <stdint.h>

struct rly_ctl_rl_slot {
	uint32_t ip_be;
	uint32_t used; /* slot holds a bucket */
	uint64_t milli_tokens;
	uint64_t last_ms;
};

struct rly_ctl_ratelimit {
	struct rly_ctl_rl_slot *slots;
	uint32_t n_slots; /* power of two */
	uint32_t rate_per_s;
	uint32_t burst;
	uint8_t hash_key[16];
};

/** @p rate_per_s requests per second, @p burst at once; @p n_slots rounded up to a power of two. */
int rly_ctl_ratelimit_init(struct rly_ctl_ratelimit *rl, uint32_t rate_per_s, uint32_t burst,
			   uint32_t n_slots);
void rly_ctl_ratelimit_close(struct rly_ctl_ratelimit *rl);
/** 1 if a request from @p ip_be at @p now_ms is within the limit (and take a token), else 0. */
int rly_ctl_ratelimit_allow(struct rly_ctl_ratelimit *rl, uint32_t ip_be, uint64_t now_ms);

#endif
