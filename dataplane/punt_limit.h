/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-source rate limit on what a worker punts to relay-control: a token bucket per source IPv4
 * address, in a fixed table per worker, refilled from the TSC (no syscall, no allocation). It
 * keeps one sender from filling relay-control's ring, so a flood of well-formed SUBSCRIBEs or
 * heartbeats from a few addresses cannot crowd out everyone else's handshakes. Malformed control
 * datagrams never get this far: the parser drops them first.
 *
 * Slots are indexed by a keyed hash of the address; a new address takes over its slot with a
 * full bucket. An attacker with many addresses therefore evicts buckets and gains allowance; it
 * never makes an honest source lose any.
 */
#ifndef RLY_DATAPLANE_PUNT_LIMIT_H
#define RLY_DATAPLANE_PUNT_LIMIT_H

#include <stdint.h>

#define RLY_PUNT_LIMIT_SLOTS 1024u

struct rly_punt_slot {
	uint32_t ip_be;
	uint32_t tokens;
	uint64_t last_tsc;
};

struct rly_punt_limit {
	uint64_t tsc_per_token; /* 0: no limit */
	uint32_t burst;
	uint32_t seed;
	struct rly_punt_slot slot[RLY_PUNT_LIMIT_SLOTS];
};

/** @p per_s datagrams per second per source, @p burst at once; per_s 0 turns the limit off. */
static inline void rly_punt_limit_init(struct rly_punt_limit *l, uint32_t per_s, uint32_t burst,
				       uint64_t tsc_hz, uint32_t seed)
{
	for (unsigned i = 0; i < RLY_PUNT_LIMIT_SLOTS; i++)
		l->slot[i] = (struct rly_punt_slot){0, 0, 0};
	l->tsc_per_token = per_s ? tsc_hz / per_s : 0;
	l->burst = burst ? burst : 1;
	l->seed = seed;
}

/**
 * 1 if source @p ip_be may punt one more datagram at TSC @p now, else 0. The key is an IPv4
 * address, or any 32-bit value standing for a source (the worker keys a subscriber's own
 * traffic by address and port).
 */
static inline int rly_punt_allow(struct rly_punt_limit *l, uint32_t ip_be, uint64_t now)
{
	struct rly_punt_slot *s;
	uint64_t add;

	if (l->tsc_per_token == 0)
		return 1;
	s = &l->slot[((ip_be ^ l->seed) * 0x9e3779b1u) >> (32 - 10)];
	if (s->ip_be != ip_be || s->last_tsc == 0) {
		s->ip_be = ip_be;
		s->tokens = l->burst;
		s->last_tsc = now;
	}
	add = (now - s->last_tsc) / l->tsc_per_token;
	if (add) {
		s->tokens = add >= l->burst - s->tokens ? l->burst : s->tokens + (uint32_t)add;
		s->last_tsc += add * l->tsc_per_token;
	}
	if (s->tokens == 0)
		return 0;
	s->tokens--;
	return 1;
}

#endif
