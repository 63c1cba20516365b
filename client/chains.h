/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Last sequence number received per (publisher, chain), in a fixed-size open-addressing table
 * (linear probing, backward-shift deletion). A subscriber cannot choose how many publishers it
 * hears from, so the table never grows: when it holds its maximum, the least recently used of a
 * few entries under a clock hand is evicted. An evicted chain that speaks again starts over as a
 * new chain, which costs gap detection across that one step, never memory.
 */
#ifndef RLY_CLIENT_CHAINS_H
#define RLY_CLIENT_CHAINS_H

#include <stdint.h>

#include "relay/wire.h"

/* Slots in a subscriber's table, and how many of them may be used (75 % keeps probes short). */
#define CLIENT_CHAINS_SLOTS    4096u
#define CLIENT_CHAINS_LOAD_NUM 3u
#define CLIENT_CHAINS_LOAD_DEN 4u
/* Occupied entries examined per eviction. */
#define CLIENT_CHAINS_EVICT_WINDOW 8u

/** Gaps a chain remembers, so a message that fills one later (a relay repaired it) is taken. */
#define CLIENT_HOLES 4u

struct client_chain {
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint32_t hash;
	uint64_t last_seq;
	uint64_t last_use;
	uint32_t used;
	uint32_t rep; /* its repair state (client/repair.c) + 1; 0: no gap open */
	/* reported gaps still open: hole_lo..hole_hi inclusive, empty when lo > hi */
	uint64_t hole_lo[CLIENT_HOLES];
	uint64_t hole_hi[CLIENT_HOLES];
};

/** Remember the gap @p lo..@p hi of @p c (the oldest open one makes room). */
void client_chain_hole_add(struct client_chain *c, uint64_t lo, uint64_t hi);
/** 1 and the hole shrunk when @p seq lies in an open gap of @p c; else 0. */
int client_chain_hole_fill(struct client_chain *c, uint64_t seq);

struct client_chains {
	struct client_chain *slot;
	uint32_t mask;
	uint32_t n;
	uint32_t max;
	uint32_t hand;
	uint64_t tick;
	uint64_t evicted;
	uint8_t hash_key[16];
	/* Told about an entry just before it is evicted (NULL: nobody). */
	void (*on_evict)(void *ctx, struct client_chain *e);
	void *evict_ctx;
};

/* @p slots is a power of two >= 4. 0, or -ENOMEM / -EINVAL with a message. */
int client_chains_init(struct client_chains *t, uint32_t slots);
void client_chains_close(struct client_chains *t);

/*
 * The entry of (publisher, chain). When absent it is inserted (evicting one if the table is full)
 * with last_seq 0 and *@p created set to 1. Never fails; the pointer is valid until the next call.
 */
struct client_chain *client_chains_get(struct client_chains *t, const uint8_t publisher[RLY_ID_LEN],
				       uint32_t chain, int *created);

/* The entry of (publisher, chain), or NULL; inserts nothing, and does not count as a use. */
struct client_chain *client_chains_find(struct client_chains *t, const uint8_t publisher[RLY_ID_LEN],
					uint32_t chain);

#endif
