/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The DHT backend of discovery (built only with -Ddht=enabled): an OpenDHT node of our own,
 * bound to cfg.dht_bind:dht_port through disc_dht_shim.cpp. A record is the value, stored under
 * the infohash (SHA-1) of "relay-stream:<hex key>:<partition>"; announce puts, lookup gets, watch
 * listens.
 *
 * OpenDHT calls back on its own threads. Those callbacks only copy a value of the right size into
 * a bounded queue under a mutex; rly_disc_poll drains it on the owner's thread, where every record
 * is verified (discovery.c, rly_disc_accept) before anyone sees it. A full queue drops values:
 * the next get or listen update brings them again, and nothing waits on a lock held for long.
 */
#include "discovery_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/err.h"
#include "control/disc_dht_shim.h"

/* Values waiting for the owner's thread. 4096 * 156 B = 624 KiB. */
#define QUEUE_MAX 4096u
/* Drained in batches, so the lock is never held while records are verified. */
#define DRAIN_BATCH 64u
/* OpenDHT value type of our records ('RY'). */
#define VALUE_TYPE 0x5259u

static_assert(sizeof(struct rly_disc_record) == RLY_DHT_VALUE_LEN, "a DHT value is one record");

struct dht_item {
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	struct rly_disc_record rec;
};

struct disc_dht {
	dht_runner *runner;
	pthread_mutex_t mu;
	/* under mu */
	struct dht_item items[QUEUE_MAX];
	uint32_t head, n;
	uint64_t bad_size; /* values that cannot be a record */
	uint64_t dropped;  /* values dropped at a full queue */
	/* owner's thread */
	uint64_t bad_size_counted;
};

/* One get or listen: which key its values should be for. Freed by the shim's last callback. */
struct op_ctx {
	struct disc_dht *h;
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
};

static void key_hash(const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
		     uint8_t out[RLY_DHT_HASH_LEN])
{
	char name[64];
	dht_infohash h;

	rly_disc_dht_key_name(key, partition, name);
	dht_infohash_get_from_string(&h, name);
	memcpy(out, h.d, RLY_DHT_HASH_LEN);
}

/* On an OpenDHT thread. */
static void on_value(void *ctx, const uint8_t *data, size_t len)
{
	struct op_ctx *c = ctx;
	struct disc_dht *h = c->h;

	pthread_mutex_lock(&h->mu);
	if (len != sizeof(struct rly_disc_record)) {
		h->bad_size++;
	} else if (h->n == QUEUE_MAX) {
		h->dropped++;
	} else {
		struct dht_item *it = &h->items[(h->head + h->n) % QUEUE_MAX];
		memcpy(it->key, c->key, RLY_STREAM_KEY_LEN);
		it->partition = c->partition;
		memcpy(&it->rec, data, sizeof(it->rec));
		h->n++;
	}
	pthread_mutex_unlock(&h->mu);
}

static void free_ctx(void *ctx)
{
	free(ctx);
}

static struct op_ctx *new_ctx(struct disc_dht *h, const uint8_t key[RLY_STREAM_KEY_LEN],
			      uint32_t partition)
{
	struct op_ctx *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	c->h = h;
	memcpy(c->key, key, RLY_STREAM_KEY_LEN);
	c->partition = partition;
	return c;
}

static int bootstrap(struct disc_dht *h, const char *list)
{
	char buf[1024];
	char *save = NULL;

	if (strlen(list) >= sizeof(buf))
		return rly_err_set(EINVAL, "DHT bootstrap list longer than %zu bytes", sizeof(buf));
	strcpy(buf, list);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(tok, ':');
		if (!colon || colon == tok || !colon[1])
			return rly_err_set(EINVAL, "DHT bootstrap '%s' is not host:port", tok);
		*colon = '\0';
		dht_runner_bootstrap(h->runner, tok, colon + 1);
	}
	return 0;
}

int rly_disc_dht_open(struct rly_disc *d)
{
	struct disc_dht *h = calloc(1, sizeof(*h));
	char err[256] = "";
	uint32_t expire_s = (d->cfg.ttl_ms + 999) / 1000;
	int rc;

	if (!h)
		return rly_err_set(ENOMEM, "DHT: out of memory");
	pthread_mutex_init(&h->mu, NULL);
	d->dht = h;
	h->runner = dht_runner_new();
	if (!h->runner) {
		rc = rly_err_set(ENOMEM, "DHT: cannot make a runner");
		goto fail;
	}
	if (rly_dht_shim_run(h->runner, d->cfg.dht_bind, d->cfg.dht_port, VALUE_TYPE, expire_s, err,
			     sizeof(err)) != 0) {
		rc = rly_err_set(EADDRNOTAVAIL, "DHT: cannot run on %s:%u: %s", d->cfg.dht_bind,
				 d->cfg.dht_port, err);
		goto fail;
	}
	if (d->cfg.dht_bootstrap) {
		rc = bootstrap(h, d->cfg.dht_bootstrap);
		if (rc < 0)
			goto fail;
	}
	return 0;
fail:
	rly_disc_dht_close(d);
	return rc;
}

void rly_disc_dht_close(struct rly_disc *d)
{
	struct disc_dht *h = d->dht;

	if (!h)
		return;
	/* Joins OpenDHT's threads and drops every callback, which frees the op contexts. */
	if (h->runner)
		dht_runner_delete(h->runner);
	for (uint32_t i = 0; i < d->n_queries; i++)
		if (d->queries[i].dht_token) {
			static const uint8_t none[RLY_DHT_HASH_LEN];
			/* The runner is gone: only the token's memory is left to free. */
			rly_dht_shim_cancel(NULL, none, d->queries[i].dht_token);
			d->queries[i].dht_token = NULL;
		}
	pthread_mutex_destroy(&h->mu);
	free(h);
	d->dht = NULL;
}

int rly_disc_dht_put(struct rly_disc *d, const struct disc_serve *s)
{
	uint8_t hash[RLY_DHT_HASH_LEN];

	key_hash(s->key, s->partition, hash);
	rly_dht_shim_put(d->dht->runner, hash, (const uint8_t *)&s->rec, sizeof(s->rec), VALUE_TYPE);
	return 0;
}

int rly_disc_dht_get(struct rly_disc *d, const struct disc_query *q)
{
	uint8_t hash[RLY_DHT_HASH_LEN];
	struct op_ctx *c = new_ctx(d->dht, q->key, q->partition);

	if (!c)
		return rly_err_set(ENOMEM, "DHT get: out of memory");
	key_hash(q->key, q->partition, hash);
	if (rly_dht_shim_get(d->dht->runner, hash, on_value, c, free_ctx) != 0)
		return rly_err_set(EIO, "DHT get: OpenDHT refused it");
	return 0;
}

int rly_disc_dht_listen(struct rly_disc *d, struct disc_query *q, int on)
{
	uint8_t hash[RLY_DHT_HASH_LEN];
	struct op_ctx *c;

	key_hash(q->key, q->partition, hash);
	if (!on) {
		if (q->dht_token)
			rly_dht_shim_cancel(d->dht->runner, hash, q->dht_token);
		q->dht_token = NULL;
		return 0;
	}
	c = new_ctx(d->dht, q->key, q->partition);
	if (!c)
		return rly_err_set(ENOMEM, "DHT listen: out of memory");
	q->dht_token = rly_dht_shim_listen(d->dht->runner, hash, on_value, c, free_ctx);
	if (!q->dht_token)
		return rly_err_set(EIO, "DHT listen: OpenDHT refused it");
	return 0;
}

void rly_disc_dht_drain(struct rly_disc *d)
{
	struct disc_dht *h = d->dht;
	struct dht_item batch[DRAIN_BATCH];
	uint64_t bad;

	for (;;) {
		uint32_t n = 0;

		pthread_mutex_lock(&h->mu);
		while (n < DRAIN_BATCH && h->n > 0) {
			batch[n++] = h->items[h->head];
			h->head = (h->head + 1) % QUEUE_MAX;
			h->n--;
		}
		bad = h->bad_size;
		pthread_mutex_unlock(&h->mu);

		for (; h->bad_size_counted < bad; h->bad_size_counted++)
			rly_disc_count(d, RLY_CTR_CTL_DISC_BAD);
		for (uint32_t i = 0; i < n; i++)
			rly_disc_accept(d, batch[i].key, batch[i].partition, &batch[i].rec);
		if (n < DRAIN_BATCH)
			return;
	}
}

uint16_t rly_disc_dht_bound_port(const struct rly_disc *d)
{
	return dht_runner_get_bound_port(d->dht->runner, AF_INET);
}
