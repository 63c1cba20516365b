/* SPDX-License-Identifier: Apache-2.0 */
#include "ratelimit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

int rly_ctl_ratelimit_init(struct rly_ctl_ratelimit *rl, uint32_t rate_per_s, uint32_t burst,
			   uint32_t n_slots)
{
	uint32_t n = 1;

	memset(rl, 0, sizeof(*rl));
	if (rate_per_s == 0 || burst == 0 || n_slots == 0 || n_slots > (1u << 24))
		return -EINVAL;
	while (n < n_slots)
		n <<= 1;
	if (sodium_init() < 0)
		return -EIO;
	rl->slots = calloc(n, sizeof(*rl->slots));
	if (!rl->slots)
		return -ENOMEM;
	rl->n_slots = n;
	rl->rate_per_s = rate_per_s;
	rl->burst = burst;
	randombytes_buf(rl->hash_key, sizeof(rl->hash_key));
	return 0;
}

void rly_ctl_ratelimit_close(struct rly_ctl_ratelimit *rl)
{
	free(rl->slots);
	memset(rl, 0, sizeof(*rl));
}

int rly_ctl_ratelimit_allow(struct rly_ctl_ratelimit *rl, uint32_t ip_be, uint64_t now_ms)
{
	uint64_t h, cap = (uint64_t)rl->burst * 1000;
	struct rly_ctl_rl_slot *s;

	crypto_shorthash((unsigned char *)&h, (const unsigned char *)&ip_be, sizeof(ip_be),
			 rl->hash_key);
	s = &rl->slots[h & (rl->n_slots - 1)];
	if (!s->used || s->ip_be != ip_be) {
		s->used = 1;
		s->ip_be = ip_be;
		s->milli_tokens = cap;
		s->last_ms = now_ms;
	} else if (now_ms > s->last_ms) {
		/* rate tokens per second is rate milli-tokens per millisecond. */
		uint64_t add = (now_ms - s->last_ms) * rl->rate_per_s;
		s->milli_tokens = add >= cap - s->milli_tokens ? cap : s->milli_tokens + add;
		s->last_ms = now_ms;
	}
	if (s->milli_tokens < 1000)
		return 0;
	s->milli_tokens -= 1000;
	return 1;
}
