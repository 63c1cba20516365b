/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What discovery.c shares with its DHT backend (disc_dht.c): the instance, and the few calls
 * each side makes into the other. Nothing outside control/discovery.c and control/disc_dht.c
 * includes this.
 */
#ifndef RLY_CONTROL_DISCOVERY_IMPL_H
#define RLY_CONTROL_DISCOVERY_IMPL_H

#include "control/discovery.h"

/* A record in the store: one per (key, partition, relay). */
struct disc_entry {
	struct rly_disc_record rec;
	uint64_t expires_real_ms;
	struct disc_entry *rec_next;	/* (key, partition, relay) chain; the free list when unused */
	struct disc_entry *stream_next; /* (key, partition) chain */
	uint32_t heap_idx;		/* position in the expiry heap */
};

/* A key we serve. */
struct disc_serve {
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	struct rly_disc_record rec; /* signed, the one last announced */
	uint64_t next_ms;	    /* re-sign and announce again (monotonic) */
	uint32_t due;		    /* static: seeds still to send the current record to (bits) */
};

/* A key watched, or looked up once. */
struct disc_query {
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint8_t once;	     /* a one-shot lookup: gone once sent everywhere or past deadline */
	uint8_t local_due;   /* hand the local store's records over at the next poll */
	uint32_t due;	     /* static: seeds still to send the current LOOKUP to (bits) */
	uint64_t request_id; /* static: of the current round */
	uint64_t next_ms;    /* static: next round (watch) or give up (once) */
	uint32_t results;    /* static: RESULT records accepted in the current round */
	uint32_t asked;	     /* static: seeds the current round's LOOKUP reached (bits) */
	void *dht_token;     /* DHT: the listen's token, NULL when none */
};

struct disc_dht; /* disc_dht.c */

struct rly_disc {
	struct rly_disc_config cfg;
	struct rly_disc_cb cb;
	struct rly_identity id;
	int64_t real_offset_ms; /* CLOCK_REALTIME - CLOCK_MONOTONIC at open */
	uint64_t now_ms;	/* latest monotonic time seen */

	/* the store */
	struct disc_entry *slots;
	struct disc_entry *free;
	struct disc_entry **by_rec;
	struct disc_entry **by_stream;
	struct disc_entry **heap; /* min-heap on expires_real_ms */
	uint32_t count;
	uint32_t n_buckets;
	uint8_t hash_key[16];

	/* keys served and queried: small arrays, searched linearly (RLY_DISC_KEYS_MAX bounds them) */
	struct disc_serve *serves;
	uint32_t n_serves;
	struct disc_query *queries;
	uint32_t n_queries;
	uint64_t next_due_ms; /* nothing timed happens before this */
	uint8_t retry;	      /* some send found no session: try again at the next poll */
	uint8_t local_pending; /* some query has local_due set */

	struct disc_dht *dht;
	struct rly_ctr_block own_ctr;
	struct rly_ctr_block *ctr;
};

/* ---- discovery.c, for the DHT backend ---- */

/* Bump counter @p id by one. */
void rly_disc_count(struct rly_disc *d, enum rly_ctr id);
/*
 * A record found for (@p key, @p partition): verify it, drop it unless it is of that key and of
 * another relay, else store it and hand it to on_record. 0, or -errno (counted bad).
 */
int rly_disc_accept(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
		    const struct rly_disc_record *rec);

/* ---- disc_dht.c (only with -Ddht=enabled) ---- */

int rly_disc_dht_open(struct rly_disc *d);
void rly_disc_dht_close(struct rly_disc *d);
/* Put @p s->rec under its key. */
int rly_disc_dht_put(struct rly_disc *d, const struct disc_serve *s);
/* Start a get of @p q's key. */
int rly_disc_dht_get(struct rly_disc *d, const struct disc_query *q);
/* Start (@p on) or cancel a listen on @p q's key. */
int rly_disc_dht_listen(struct rly_disc *d, struct disc_query *q, int on);
/* Hand over what OpenDHT's threads queued. */
void rly_disc_dht_drain(struct rly_disc *d);
uint16_t rly_disc_dht_bound_port(const struct rly_disc *d);

#endif
