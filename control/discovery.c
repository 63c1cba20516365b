/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Discovery: signed records, the store every relay keeps, the keys we serve and query, and the
 * static seed backend. The DHT backend (disc_dht.c) reuses all of it but the PEER_DISCOVER
 * messages: its puts, gets and listens take the place of ANNOUNCE and LOOKUP.
 *
 * The store is a fixed pool sized at open (store_max), found through two keyed hash chains, by
 * (key, partition, relay) to replace a relay's record and by (key, partition) to answer a lookup,
 * plus a min-heap on expiry that serves both expiry and eviction: when the pool is full the record
 * expiring first makes room. Everything in it was verified on the way in, so the only work left
 * for a reader is the expiry check the heap already does.
 */
#include "discovery_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"

#define TTL_DEFAULT_MS 60000u
#define LOOKUP_INTERVAL_DEFAULT_MS 5000u
#define STORE_DEFAULT 65536u
/* A pool of 16 M records would be 3 GiB: far past what one relay-control should hold. */
#define STORE_LIMIT (1u << 24)
/* What a signature covers: the context string, then the record up to its signature. */
#define SIG_CTX_LEN (sizeof(RLY_DISC_RECORD_SIG_CONTEXT) - 1)
#define SIGNED_LEN offsetof(struct rly_disc_record, sig)

static_assert(SIG_CTX_LEN == 20, "the record signature context is 20 bytes");
static_assert(RLY_DISC_SEEDS_MAX <= 32, "seed sets are 32-bit masks");

/* ---- records ---- */

static void signed_message(const struct rly_disc_record *r, uint8_t m[SIG_CTX_LEN + SIGNED_LEN])
{
	memcpy(m, RLY_DISC_RECORD_SIG_CONTEXT, SIG_CTX_LEN);
	memcpy(m + SIG_CTX_LEN, r, SIGNED_LEN);
}

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= b[i];
	return acc == 0;
}

int rly_disc_record_sign(struct rly_disc_record *r, const struct rly_identity *id)
{
	uint8_t m[SIG_CTX_LEN + SIGNED_LEN];

	if (!r || !id)
		return rly_err_set(EINVAL, "sign discovery record: no record or identity");
	if (sodium_init() < 0)
		return rly_err_set(EIO, "sign discovery record: libsodium failed to start");
	memcpy(r->relay, id->pk, RLY_ID_LEN);
	signed_message(r, m);
	crypto_sign_detached(r->sig, NULL, m, sizeof(m), id->sk);
	return 0;
}

int rly_disc_record_verify(const struct rly_disc_record *r, uint64_t now_real_ms)
{
	uint8_t m[SIG_CTX_LEN + SIGNED_LEN];
	uint64_t exp = rly_be64_load(&r->expires_ms);

	/* The signature first: a changed byte anywhere is a forgery, whatever field it lands in. */
	signed_message(r, m);
	if (crypto_sign_verify_detached(r->sig, m, sizeof(m), r->relay) != 0)
		return -EBADMSG;
	if (r->flags != 0 || r->reserved != 0 || all_zero(r->relay, RLY_ID_LEN) || r->ip_be == 0 ||
	    r->udp_port == 0 || exp > now_real_ms + RLY_DISC_TTL_MAX_MS)
		return -EINVAL;
	if (exp <= now_real_ms)
		return -ETIMEDOUT;
	return 0;
}

void rly_disc_dht_key_name(const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition, char out[64])
{
	char hex[2 * RLY_STREAM_KEY_LEN + 1];

	sodium_bin2hex(hex, sizeof(hex), key, RLY_STREAM_KEY_LEN);
	snprintf(out, 64, "relay-stream:%s:%u", hex, partition);
}

/* ---- counters ---- */

void rly_disc_set_counters(struct rly_disc *d, struct rly_ctr_block *ctr)
{
	d->ctr = ctr ? ctr : &d->own_ctr;
}

void rly_disc_count(struct rly_disc *d, enum rly_ctr id)
{
	/* One writer (the thread that owns d); relaxed is enough for readers summing the block. */
	uint64_t v = __atomic_load_n(&d->ctr->v[id], __ATOMIC_RELAXED);
	__atomic_store_n(&d->ctr->v[id], v + 1, __ATOMIC_RELAXED);
}

static void gauge_records(struct rly_disc *d)
{
	__atomic_store_n(&d->ctr->v[RLY_CTR_CTL_DISC_RECORDS], (uint64_t)d->count + d->n_serves,
			 __ATOMIC_RELAXED);
}

static uint64_t real_ms(const struct rly_disc *d, uint64_t mono_ms)
{
	return (uint64_t)((int64_t)mono_ms + d->real_offset_ms);
}

/* ---- the store ---- */

/*
 * Keyed SipHash: keys, partitions and identities are chosen by outsiders, who could otherwise
 * pile every record into one chain.
 */
static uint32_t stream_bucket(const struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
			      uint32_t partition)
{
	uint8_t m[RLY_STREAM_KEY_LEN + 4];
	uint64_t h;

	memcpy(m, key, RLY_STREAM_KEY_LEN);
	memcpy(m + RLY_STREAM_KEY_LEN, &partition, 4);
	crypto_shorthash((unsigned char *)&h, m, sizeof(m), d->hash_key);
	return (uint32_t)h & (d->n_buckets - 1);
}

static uint32_t rec_bucket(const struct rly_disc *d, const struct rly_disc_record *r)
{
	uint8_t m[RLY_STREAM_KEY_LEN + 4 + RLY_ID_LEN];
	uint64_t h;

	memcpy(m, r->stream_key, RLY_STREAM_KEY_LEN);
	memcpy(m + RLY_STREAM_KEY_LEN, &r->partition, 4);
	memcpy(m + RLY_STREAM_KEY_LEN + 4, r->relay, RLY_ID_LEN);
	crypto_shorthash((unsigned char *)&h, m, sizeof(m), d->hash_key);
	return (uint32_t)h & (d->n_buckets - 1);
}

static int same_stream(const struct rly_disc_record *r, const uint8_t key[RLY_STREAM_KEY_LEN],
		       uint32_t partition_be)
{
	return memcmp(r->stream_key, key, RLY_STREAM_KEY_LEN) == 0 && r->partition == partition_be;
}

static void heap_swap(struct rly_disc *d, uint32_t a, uint32_t b)
{
	struct disc_entry *t = d->heap[a];

	d->heap[a] = d->heap[b];
	d->heap[b] = t;
	d->heap[a]->heap_idx = a;
	d->heap[b]->heap_idx = b;
}

static void heap_up(struct rly_disc *d, uint32_t i)
{
	while (i > 0) {
		uint32_t p = (i - 1) / 2;
		if (d->heap[p]->expires_real_ms <= d->heap[i]->expires_real_ms)
			break;
		heap_swap(d, p, i);
		i = p;
	}
}

static void heap_down(struct rly_disc *d, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < d->count && d->heap[l]->expires_real_ms < d->heap[m]->expires_real_ms)
			m = l;
		if (r < d->count && d->heap[r]->expires_real_ms < d->heap[m]->expires_real_ms)
			m = r;
		if (m == i)
			return;
		heap_swap(d, i, m);
		i = m;
	}
}

static struct disc_entry *store_find(const struct rly_disc *d, const struct rly_disc_record *r)
{
	for (struct disc_entry *e = d->by_rec[rec_bucket(d, r)]; e; e = e->rec_next)
		if (same_stream(&e->rec, r->stream_key, r->partition) &&
		    memcmp(e->rec.relay, r->relay, RLY_ID_LEN) == 0)
			return e;
	return NULL;
}

static void store_remove(struct rly_disc *d, struct disc_entry *e)
{
	struct disc_entry **pp = &d->by_rec[rec_bucket(d, &e->rec)];
	uint32_t i = e->heap_idx;

	while (*pp != e)
		pp = &(*pp)->rec_next;
	*pp = e->rec_next;
	pp = &d->by_stream[stream_bucket(d, e->rec.stream_key, e->rec.partition)];
	while (*pp != e)
		pp = &(*pp)->stream_next;
	*pp = e->stream_next;

	d->count--;
	if (i != d->count) {
		heap_swap(d, i, d->count);
		heap_down(d, i);
		heap_up(d, i);
	}
	memset(e, 0, sizeof(*e));
	e->rec_next = d->free;
	d->free = e;
}

/* Keep @p r (verified) until @p exp: replaces an older record of the same relay. */
static void store_put(struct rly_disc *d, const struct rly_disc_record *r, uint64_t exp)
{
	struct disc_entry *e = store_find(d, r);
	uint32_t b;

	if (e) {
		if (exp <= e->expires_real_ms)
			return; /* a replay of an older or the same announcement */
		e->rec = *r;
		e->expires_real_ms = exp;
		heap_down(d, e->heap_idx); /* later expiry: it can only sink */
		return;
	}
	if (!d->free) {
		/* Full: the record expiring first goes, which may be the newcomer itself. */
		if (exp <= d->heap[0]->expires_real_ms)
			return;
		store_remove(d, d->heap[0]);
	}
	e = d->free;
	d->free = e->rec_next;
	e->rec = *r;
	e->expires_real_ms = exp;
	b = rec_bucket(d, r);
	e->rec_next = d->by_rec[b];
	d->by_rec[b] = e;
	b = stream_bucket(d, r->stream_key, r->partition);
	e->stream_next = d->by_stream[b];
	d->by_stream[b] = e;
	e->heap_idx = d->count;
	d->heap[d->count++] = e;
	heap_up(d, e->heap_idx);
	gauge_records(d);
}

static void store_expire(struct rly_disc *d, uint64_t now_real)
{
	uint32_t before = d->count;

	while (d->count > 0 && d->heap[0]->expires_real_ms <= now_real)
		store_remove(d, d->heap[0]);
	if (d->count != before)
		gauge_records(d);
}

/*
 * Up to @p max unexpired records of (key, partition), a uniform random choice when there are more
 * (reservoir sampling), so that every announcer of a busy key gets found by some lookups.
 */
static unsigned store_sample(const struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
			     uint32_t partition_be, uint64_t now_real, struct rly_disc_record *out,
			     unsigned max)
{
	unsigned seen = 0, n = 0;

	if (max == 0)
		return 0;
	for (const struct disc_entry *e = d->by_stream[stream_bucket(d, key, partition_be)]; e;
	     e = e->stream_next) {
		if (!same_stream(&e->rec, key, partition_be) || e->expires_real_ms <= now_real)
			continue;
		seen++;
		if (n < max) {
			out[n++] = e->rec;
		} else {
			uint32_t j = randombytes_uniform(seen);
			if (j < max)
				out[j] = e->rec;
		}
	}
	return n;
}

uint32_t rly_disc_store_count(const struct rly_disc *d)
{
	return d->count;
}

unsigned rly_disc_store_find(const struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
			     uint32_t partition, struct rly_disc_record *out, unsigned max)
{
	uint32_t p_be;

	rly_be32_store(&p_be, partition);
	return store_sample(d, key, p_be, real_ms(d, d->now_ms), out, max);
}

/* ---- keys served and queried ---- */

static struct disc_serve *serve_find(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
				     uint32_t partition)
{
	for (uint32_t i = 0; i < d->n_serves; i++)
		if (d->serves[i].partition == partition &&
		    memcmp(d->serves[i].key, key, RLY_STREAM_KEY_LEN) == 0)
			return &d->serves[i];
	return NULL;
}

static struct disc_query *watch_find(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
				     uint32_t partition)
{
	for (uint32_t i = 0; i < d->n_queries; i++)
		if (!d->queries[i].once && d->queries[i].partition == partition &&
		    memcmp(d->queries[i].key, key, RLY_STREAM_KEY_LEN) == 0)
			return &d->queries[i];
	return NULL;
}

static int is_watched(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition)
{
	return watch_find(d, key, partition) != NULL;
}

/* Seeds other than ourselves, as a mask: a relay that is its own seed asks its own store. */
static uint32_t seed_mask(const struct rly_disc *d)
{
	uint32_t m = 0;

	if (d->cfg.backend != RLY_DISC_BACKEND_STATIC)
		return 0;
	for (uint32_t i = 0; i < d->cfg.n_seeds; i++)
		if (d->cfg.seeds[i].ip_be != d->cfg.ip_be || d->cfg.seeds[i].port != d->cfg.port)
			m |= 1u << i;
	return m;
}

static int seed_index(const struct rly_disc *d, uint32_t ip_be, uint16_t port)
{
	for (uint32_t i = 0; i < d->cfg.n_seeds; i++)
		if (d->cfg.seeds[i].ip_be == ip_be && d->cfg.seeds[i].port == port)
			return (int)i;
	return -1;
}

static uint64_t new_request_id(void)
{
	uint64_t id;

	do
		randombytes_buf(&id, sizeof(id));
	while (id == 0);
	return id;
}

/*
 * Send @p b to every seed in *@p due; a seed whose send succeeded, or failed for good, leaves the
 * mask. Returns the seeds reached. A seed without a session stays, and sets d->retry.
 */
static uint32_t send_due(struct rly_disc *d, uint32_t *due, struct rly_wire_peer_discover *b)
{
	uint32_t reached = 0;

	for (uint32_t i = 0; i < d->cfg.n_seeds; i++) {
		if (!(*due & (1u << i)))
			continue;
		int rc = d->cb.send(d->cb.ctx, d->cfg.seeds[i].ip_be, d->cfg.seeds[i].port, b);
		if (rc == -ENOTCONN || rc == -EAGAIN || rc == -ENOBUFS) {
			d->retry = 1;
			continue;
		}
		*due &= ~(1u << i);
		if (rc == 0)
			reached |= 1u << i;
	}
	return reached;
}

static void send_announce(struct rly_disc *d, struct disc_serve *s)
{
	struct rly_wire_peer_discover b;

	if (!s->due)
		return;
	memset(&b, 0, sizeof(b));
	b.kind = RLY_DISC_ANNOUNCE;
	rly_be64_store(&b.request_id, new_request_id());
	b.rec = s->rec;
	send_due(d, &s->due, &b);
}

static void send_lookup(struct rly_disc *d, struct disc_query *q)
{
	struct rly_wire_peer_discover b;

	if (!q->due)
		return;
	memset(&b, 0, sizeof(b));
	b.kind = RLY_DISC_LOOKUP;
	rly_be64_store(&b.request_id, q->request_id);
	memcpy(b.rec.stream_key, q->key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.rec.partition, q->partition);
	q->asked |= send_due(d, &q->due, &b);
}

/* A fresh record for @p s, valid ttl from now, sent to every seed (DHT: put). */
static int serve_refresh(struct rly_disc *d, struct disc_serve *s)
{
	struct rly_disc_record *r = &s->rec;
	int rc;

	memset(r, 0, sizeof(*r));
	memcpy(r->stream_key, s->key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&r->partition, s->partition);
	r->ip_be = d->cfg.ip_be;
	rly_be16_store(&r->udp_port, d->cfg.port);
	rly_be64_store(&r->expires_ms, real_ms(d, d->now_ms) + d->cfg.ttl_ms);
	rc = rly_disc_record_sign(r, &d->id);
	if (rc < 0)
		return rc;
	s->next_ms = d->now_ms + d->cfg.ttl_ms / 3;
	rly_disc_count(d, RLY_CTR_CTL_DISC_ANNOUNCES);
#ifdef RLY_HAVE_DHT
	if (d->dht)
		return rly_disc_dht_put(d, s);
#endif
	s->due = seed_mask(d);
	send_announce(d, s);
	return 0;
}

/* A new round of @p q: a fresh request to every seed (DHT: a get), and the local store's records. */
static int query_round(struct rly_disc *d, struct disc_query *q)
{
	q->local_due = 1;
	d->local_pending = 1;
	q->results = 0;
	q->asked = 0;
	q->request_id = new_request_id();
	q->next_ms = d->now_ms + d->cfg.lookup_interval_ms;
	rly_disc_count(d, RLY_CTR_CTL_DISC_LOOKUPS);
#ifdef RLY_HAVE_DHT
	if (d->dht)
		return rly_disc_dht_get(d, q);
#endif
	q->due = seed_mask(d);
	send_lookup(d, q);
	return 0;
}

static void query_remove(struct rly_disc *d, struct disc_query *q)
{
#ifdef RLY_HAVE_DHT
	if (d->dht && q->dht_token)
		rly_disc_dht_listen(d, q, 0);
#endif
	*q = d->queries[--d->n_queries];
}

static void note_due(struct rly_disc *d, uint64_t t)
{
	if (t < d->next_due_ms)
		d->next_due_ms = t;
}

int rly_disc_announce(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition)
{
	struct disc_serve *s;
	int rc;

	if (serve_find(d, key, partition))
		return 0;
	if (d->n_serves >= RLY_DISC_KEYS_MAX)
		return rly_err_set(ENOSPC, "discovery: already serving %u keys", RLY_DISC_KEYS_MAX);
	s = &d->serves[d->n_serves++];
	memset(s, 0, sizeof(*s));
	memcpy(s->key, key, RLY_STREAM_KEY_LEN);
	s->partition = partition;
	rc = serve_refresh(d, s);
	if (rc < 0) {
		d->n_serves--;
		return rly_err_wrap("discovery: announce");
	}
	note_due(d, s->next_ms);
	gauge_records(d);
	return 0;
}

void rly_disc_withdraw(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition)
{
	struct disc_serve *s = serve_find(d, key, partition);

	if (!s)
		return;
	/* DHT: nothing to cancel, the puts are not permanent; the last one expires by itself. */
	*s = d->serves[--d->n_serves];
	gauge_records(d);
}

int rly_disc_lookup(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition)
{
	struct disc_query *q;
	int rc;

	if (d->n_queries >= RLY_DISC_KEYS_MAX)
		return rly_err_set(ENOSPC, "discovery: %u lookups and watches already",
				   RLY_DISC_KEYS_MAX);
	q = &d->queries[d->n_queries++];
	memset(q, 0, sizeof(*q));
	memcpy(q->key, key, RLY_STREAM_KEY_LEN);
	q->partition = partition;
	q->once = 1;
	rc = query_round(d, q);
	if (rc < 0) {
		d->n_queries--;
		return rly_err_wrap("discovery: lookup");
	}
	/* Kept until next_ms, so the seeds' RESULTs still find it. */
	note_due(d, q->next_ms);
	return 0;
}

int rly_disc_watch(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition)
{
	struct disc_query *q;
	int rc;

	if (watch_find(d, key, partition))
		return 0;
	if (d->n_queries >= RLY_DISC_KEYS_MAX)
		return rly_err_set(ENOSPC, "discovery: %u lookups and watches already",
				   RLY_DISC_KEYS_MAX);
	q = &d->queries[d->n_queries++];
	memset(q, 0, sizeof(*q));
	memcpy(q->key, key, RLY_STREAM_KEY_LEN);
	q->partition = partition;
	rc = query_round(d, q);
#ifdef RLY_HAVE_DHT
	if (rc == 0 && d->dht) {
		rc = rly_disc_dht_listen(d, q, 1);
		q->next_ms = UINT64_MAX; /* the listen brings new records; no rounds */
	}
#endif
	if (rc < 0) {
		d->n_queries--;
		return rly_err_wrap("discovery: watch");
	}
	note_due(d, q->next_ms);
	return 0;
}

void rly_disc_unwatch(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition)
{
	struct disc_query *q = watch_find(d, key, partition);

	if (q)
		query_remove(d, q);
}

/* ---- incoming records ---- */

int rly_disc_accept(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
		    const struct rly_disc_record *rec)
{
	uint64_t now_real = real_ms(d, d->now_ms);
	uint32_t p_be;
	int rc = rly_disc_record_verify(rec, now_real);

	rly_be32_store(&p_be, partition);
	if (rc == 0 && !same_stream(rec, key, p_be))
		rc = -EINVAL; /* a valid record, but not an answer to what we asked */
	if (rc < 0) {
		rly_disc_count(d, RLY_CTR_CTL_DISC_BAD);
		return rc;
	}
	if (memcmp(rec->relay, d->id.pk, RLY_ID_LEN) == 0)
		return 0; /* our own, come back through a seed */
	store_put(d, rec, rly_be64_load(&rec->expires_ms));
	d->cb.on_record(d->cb.ctx, rec);
	return 0;
}

static void on_announce(struct rly_disc *d, uint32_t ip_be, const struct rly_disc_record *r)
{
	uint64_t now_real = real_ms(d, d->now_ms);

	/* A relay may only announce itself: anything else would point others at a third party. */
	if (rly_disc_record_verify(r, now_real) != 0 || r->ip_be != ip_be) {
		rly_disc_count(d, RLY_CTR_CTL_DISC_BAD);
		return;
	}
	if (memcmp(r->relay, d->id.pk, RLY_ID_LEN) == 0)
		return;
	store_put(d, r, rly_be64_load(&r->expires_ms));
	/* A seed that watches the key itself hears of the announcer at once. */
	if (is_watched(d, r->stream_key, rly_be32_load(&r->partition)))
		d->cb.on_record(d->cb.ctx, r);
}

static void on_lookup(struct rly_disc *d, uint32_t ip_be, uint16_t port,
		      const struct rly_wire_peer_discover *req)
{
	struct rly_disc_record recs[RLY_DISC_RESULTS_MAX];
	struct rly_wire_peer_discover b;
	const struct disc_serve *s =
		serve_find(d, req->rec.stream_key, rly_be32_load(&req->rec.partition));
	unsigned n = 0;

	if (s)
		recs[n++] = s->rec;
	n += store_sample(d, req->rec.stream_key, req->rec.partition, real_ms(d, d->now_ms),
			  recs + n, RLY_DISC_RESULTS_MAX - n);

	memset(&b, 0, sizeof(b));
	b.kind = RLY_DISC_RESULT;
	b.request_id = req->request_id;
	if (n == 0) {
		d->cb.send(d->cb.ctx, ip_be, port, &b);
		return;
	}
	/* A lost RESULT is not sent again: the asker's next round asks again. */
	for (unsigned i = 0; i < n; i++) {
		rly_be16_store(&b.more, (uint16_t)(n - 1 - i));
		b.rec = recs[i];
		memset(b.token, 0, sizeof(b.token));
		d->cb.send(d->cb.ctx, ip_be, port, &b);
	}
}

static void on_result(struct rly_disc *d, uint32_t ip_be, uint16_t port,
		      const struct rly_wire_peer_discover *b)
{
	uint64_t id = rly_be64_load(&b->request_id);
	int seed = seed_index(d, ip_be, port);
	struct disc_query *q = NULL;

	if (seed < 0 || id == 0)
		return;
	for (uint32_t i = 0; i < d->n_queries; i++)
		if (d->queries[i].request_id == id) {
			q = &d->queries[i];
			break;
		}
	/* Only answers to a round still open, from a seed it reached, and no more than it may send. */
	if (!q || !(q->asked & (1u << seed)) || all_zero(&b->rec, sizeof(b->rec)))
		return;
	if (q->results >= RLY_DISC_RESULTS_MAX * d->cfg.n_seeds)
		return;
	q->results++;
	rly_disc_accept(d, q->key, q->partition, &b->rec);
}

void rly_disc_on_message(struct rly_disc *d, uint32_t ip_be, uint16_t port,
			 const struct rly_wire_peer_discover *b, uint64_t now_ms)
{
	d->now_ms = now_ms;
	if (d->cfg.backend != RLY_DISC_BACKEND_STATIC)
		return;
	switch (b->kind) {
	case RLY_DISC_ANNOUNCE:
		on_announce(d, ip_be, &b->rec);
		break;
	case RLY_DISC_LOOKUP:
		on_lookup(d, ip_be, port, b);
		break;
	case RLY_DISC_RESULT:
		on_result(d, ip_be, port, b);
		break;
	default:
		break; /* the parser refuses other kinds; nothing to do with one anyway */
	}
}

/* ---- timers ---- */

/* Hand the local store's records of each query that asked for them to on_record. */
static void deliver_local(struct rly_disc *d)
{
	uint64_t now_real = real_ms(d, d->now_ms);

	if (!d->local_pending)
		return;
	d->local_pending = 0;
	for (uint32_t i = 0; i < d->n_queries; i++) {
		struct rly_disc_record recs[RLY_DISC_RESULTS_MAX];
		struct disc_query *q = &d->queries[i];
		uint32_t p_be;
		unsigned n;

		if (!q->local_due)
			continue;
		q->local_due = 0;
		rly_be32_store(&p_be, q->partition);
		/* Copied out first: on_record may announce, watch or unwatch, which moves entries. */
		n = store_sample(d, q->key, p_be, now_real, recs, RLY_DISC_RESULTS_MAX);
		for (unsigned j = 0; j < n; j++)
			d->cb.on_record(d->cb.ctx, &recs[j]);
	}
}

static void run_timers(struct rly_disc *d)
{
	uint64_t now = d->now_ms, next = UINT64_MAX;

	for (uint32_t i = 0; i < d->n_serves; i++) {
		struct disc_serve *s = &d->serves[i];
		if (now >= s->next_ms)
			serve_refresh(d, s); /* a failed put is tried again ttl/3 later */
		else
			send_announce(d, s);
		if (s->next_ms < next)
			next = s->next_ms;
	}
	for (uint32_t i = 0; i < d->n_queries;) {
		struct disc_query *q = &d->queries[i];
		if (now >= q->next_ms) {
			if (q->once) {
				query_remove(d, q);
				continue; /* the last entry moved into slot i */
			}
			query_round(d, q);
		} else {
			send_lookup(d, q);
		}
		if (q->next_ms < next)
			next = q->next_ms;
		i++;
	}
	d->next_due_ms = next;
}

void rly_disc_poll(struct rly_disc *d, uint64_t now_ms)
{
	d->now_ms = now_ms;
	store_expire(d, real_ms(d, d->now_ms));
#ifdef RLY_HAVE_DHT
	if (d->dht)
		rly_disc_dht_drain(d);
#endif
	if (d->now_ms >= d->next_due_ms || d->retry) {
		d->retry = 0;
		run_timers(d);
	}
	deliver_local(d);
}

/* ---- open, close ---- */

static int check_config(const struct rly_disc_config *c, const struct rly_disc_cb *cb)
{
	if (!c->id)
		return rly_err_set(EINVAL, "discovery: no identity to sign records with");
	if (!cb || !cb->on_record)
		return rly_err_set(EINVAL, "discovery: no on_record callback");
	if (c->ip_be == 0 || c->port == 0)
		return rly_err_set(EINVAL, "discovery: our address and port go in every record");
	if (c->ttl_ms < 3 || c->ttl_ms > RLY_DISC_TTL_MAX_MS)
		return rly_err_set(EINVAL, "discovery: ttl %u ms is outside 3..%u", c->ttl_ms,
				   RLY_DISC_TTL_MAX_MS);
	if (c->store_max > STORE_LIMIT)
		return rly_err_set(EINVAL, "discovery: store of %u records is over %u",
				   c->store_max, STORE_LIMIT);
	switch (c->backend) {
	case RLY_DISC_BACKEND_STATIC:
		if (!cb->send)
			return rly_err_set(EINVAL, "discovery: the static backend needs a send callback");
		if (c->n_seeds > RLY_DISC_SEEDS_MAX)
			return rly_err_set(EINVAL, "discovery: %u seeds, at most %u", c->n_seeds,
					   RLY_DISC_SEEDS_MAX);
		for (uint32_t i = 0; i < c->n_seeds; i++)
			if (c->seeds[i].ip_be == 0 || c->seeds[i].port == 0)
				return rly_err_set(EINVAL, "discovery: seed %u has no address", i);
		return 0;
	case RLY_DISC_BACKEND_DHT:
#ifdef RLY_HAVE_DHT
		if (!c->dht_bind)
			return rly_err_set(EINVAL, "discovery: the DHT needs an address to bind");
		return 0;
#else
		return rly_err_set(ENOTSUP, "discovery: the DHT backend is not in this build "
					    "(meson setup -Ddht=enabled; see control/README.md)");
#endif
	default:
		return rly_err_set(EINVAL, "discovery: unknown backend %d", c->backend);
	}
}

int rly_disc_open(struct rly_disc **out, const struct rly_disc_config *cfg,
		  const struct rly_disc_cb *cb)
{
	struct rly_disc_config c = *cfg;
	struct rly_disc *d;
	uint32_t n = 1;
	int rc;

	*out = NULL;
	if (!c.ttl_ms)
		c.ttl_ms = TTL_DEFAULT_MS;
	if (!c.lookup_interval_ms)
		c.lookup_interval_ms = LOOKUP_INTERVAL_DEFAULT_MS;
	if (!c.store_max)
		c.store_max = STORE_DEFAULT;
	rc = check_config(&c, cb);
	if (rc < 0)
		return rc;
	if (sodium_init() < 0)
		return rly_err_set(EIO, "discovery: libsodium failed to start");

	d = calloc(1, sizeof(*d));
	if (!d)
		return rly_err_set(ENOMEM, "discovery: out of memory");
	d->cfg = c;
	d->cb = *cb;
	d->id = *cfg->id;
	d->cfg.id = &d->id;
	d->ctr = cfg->ctr ? cfg->ctr : &d->own_ctr;
	d->now_ms = rly_mono_ns() / 1000000u;
	d->real_offset_ms = (int64_t)(rly_real_ns() / 1000000u) - (int64_t)d->now_ms;
	d->next_due_ms = UINT64_MAX;
	randombytes_buf(d->hash_key, sizeof(d->hash_key));
	while (n < c.store_max)
		n <<= 1;
	d->n_buckets = n;
	d->slots = calloc(c.store_max, sizeof(*d->slots));
	d->by_rec = calloc(n, sizeof(*d->by_rec));
	d->by_stream = calloc(n, sizeof(*d->by_stream));
	d->heap = calloc(c.store_max, sizeof(*d->heap));
	d->serves = calloc(RLY_DISC_KEYS_MAX, sizeof(*d->serves));
	d->queries = calloc(RLY_DISC_KEYS_MAX, sizeof(*d->queries));
	if (!d->slots || !d->by_rec || !d->by_stream || !d->heap || !d->serves || !d->queries) {
		rc = rly_err_set(ENOMEM, "discovery: no memory for a store of %u", c.store_max);
		goto fail;
	}
	for (uint32_t i = c.store_max; i-- > 0;) {
		d->slots[i].rec_next = d->free;
		d->free = &d->slots[i];
	}
#ifdef RLY_HAVE_DHT
	if (c.backend == RLY_DISC_BACKEND_DHT) {
		rc = rly_disc_dht_open(d);
		if (rc < 0)
			goto fail;
	}
#endif
	gauge_records(d);
	*out = d;
	return 0;
fail:
	rly_disc_close(d);
	return rc;
}

void rly_disc_close(struct rly_disc *d)
{
	if (!d)
		return;
#ifdef RLY_HAVE_DHT
	if (d->dht)
		rly_disc_dht_close(d);
#endif
	__atomic_store_n(&d->ctr->v[RLY_CTR_CTL_DISC_RECORDS], 0, __ATOMIC_RELAXED);
	free(d->slots);
	free(d->by_rec);
	free(d->by_stream);
	free(d->heap);
	free(d->serves);
	free(d->queries);
	sodium_memzero(&d->id, sizeof(d->id));
	free(d);
}

uint16_t rly_disc_dht_port(const struct rly_disc *d)
{
#ifdef RLY_HAVE_DHT
	if (d->dht)
		return rly_disc_dht_bound_port(d);
#endif
	(void)d;
	return 0;
}
