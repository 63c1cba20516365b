/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The OpenDHT discovery backend (built only with -Ddht=enabled): three rly_disc instances, each
 * with its own OpenDHT node on 127.0.0.1 (free ports picked by the kernel), the second and third
 * bootstrapped from the first. One announces; another finds it by lookup and by watch; values put
 * straight under the key by a raw OpenDHT node (a forged signature, a wrong size) are refused.
 *
 * OpenDHT runs on its own threads and real time, so the test polls every 2 ms until what it waits
 * for happens, with a 30 s cap that only turns a hang into a failure. It prints put-to-visible
 * latencies; it asserts none.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"
#include "control/disc_dht_shim.h"
#include "control/discovery.h"
#include "relay/counters.h"
#include "relay/wire.h"

#define NODES 3
#define WAIT_CAP_MS 30000u
#define GOT_MAX 1024

struct node {
	struct rly_disc *d;
	struct rly_identity id;
	struct rly_ctr_block ctr;
	struct rly_disc_record got[GOT_MAX];
	uint64_t got_ms[GOT_MAX]; /* when on_record saw it (monotonic) */
	unsigned n_got;
};

static struct node nodes[NODES];

static uint64_t mono_ms(void)
{
	return rly_mono_ns() / 1000000u;
}

static void on_record(void *ctx, const struct rly_disc_record *rec)
{
	struct node *n = ctx;

	if (n->n_got < GOT_MAX) {
		n->got_ms[n->n_got] = mono_ms();
		n->got[n->n_got++] = *rec;
	}
}

static void open_node(unsigned i, const char *bootstrap)
{
	struct node *n = &nodes[i];
	struct rly_disc_config cfg = {0};
	struct rly_disc_cb cb = {.ctx = n, .on_record = on_record};

	memset(n, 0, sizeof(*n));
	cr_assert_eq(crypto_sign_keypair(n->id.pk, n->id.sk), 0);
	cfg.backend = RLY_DISC_BACKEND_DHT;
	cfg.id = &n->id;
	rly_be32_store(&cfg.ip_be, 0x0a000001u + i);
	cfg.port = 4747;
	cfg.ttl_ms = 60000;
	cfg.dht_bind = "127.0.0.1";
	cfg.dht_port = 0;
	cfg.dht_bootstrap = bootstrap;
	cfg.ctr = &n->ctr;
	cr_assert_eq(rly_disc_open(&n->d, &cfg, &cb), 0, "open: %s", rly_err_msg());
	cr_assert_gt(rly_disc_dht_port(n->d), 0);
}

static void setup(void)
{
	char boot[64];

	cr_assert_geq(sodium_init(), 0);
	open_node(0, NULL);
	snprintf(boot, sizeof(boot), "127.0.0.1:%u", rly_disc_dht_port(nodes[0].d));
	for (unsigned i = 1; i < NODES; i++)
		open_node(i, boot);
}

static void teardown(void)
{
	for (unsigned i = 0; i < NODES; i++)
		rly_disc_close(nodes[i].d);
}

static void poll_all(void)
{
	uint64_t now = mono_ms();

	for (unsigned i = 0; i < NODES; i++)
		rly_disc_poll(nodes[i].d, now);
}

static int has(const struct node *n, const struct node *who, const uint8_t key[RLY_STREAM_KEY_LEN],
	       uint64_t *when)
{
	for (unsigned i = 0; i < n->n_got; i++)
		if (memcmp(n->got[i].relay, who->id.pk, RLY_ID_LEN) == 0 &&
		    memcmp(n->got[i].stream_key, key, RLY_STREAM_KEY_LEN) == 0) {
			if (when)
				*when = n->got_ms[i];
			return 1;
		}
	return 0;
}

/* Poll until @p n has heard of @p who on @p key, or the cap; 1 if it did. */
static int wait_for(const struct node *n, const struct node *who,
		    const uint8_t key[RLY_STREAM_KEY_LEN], uint64_t *when)
{
	uint64_t end = mono_ms() + WAIT_CAP_MS;

	while (mono_ms() < end) {
		poll_all();
		if (has(n, who, key, when))
			return 1;
		usleep(2000);
	}
	return 0;
}

static void settle(unsigned ms)
{
	uint64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		poll_all();
		usleep(2000);
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void print_ms(const char *what, uint64_t *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("dht %s over %u fresh keys: min %llu ms, median %llu ms, max %llu ms\n", what, n,
	       (unsigned long long)v[0], (unsigned long long)v[n / 2],
	       (unsigned long long)v[n - 1]);
	fflush(stdout);
}

TestSuite(discovery_dht, .init = setup, .fini = teardown, .timeout = 150);

Test(discovery_dht, an_announced_record_is_found_by_lookup_and_by_watch)
{
	uint8_t key[RLY_STREAM_KEY_LEN] = {0xd1, 0x7};
	struct node *a = &nodes[0], *b = &nodes[1], *c = &nodes[2];
	uint64_t seen, t0;

	/* OpenDHT holds operations until its routing table has filled (about 1 s after start). */
	settle(1500);
	cr_assert_eq(rly_disc_watch(c->d, key, 0), 0);
	cr_assert_eq(rly_disc_watch(a->d, key, 0), 0);
	settle(200);
	t0 = mono_ms();
	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	cr_assert(wait_for(c, a, key, &seen), "the watcher never saw the announcement");
	printf("dht first announce -> watcher: %llu ms\n", (unsigned long long)(seen - t0));

	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	cr_assert(wait_for(b, a, key, NULL), "the lookup never found the announcement");
	for (unsigned i = 0; i < b->n_got; i++) {
		cr_assert_eq(rly_disc_record_verify(&b->got[i], rly_real_ns() / 1000000u), 0);
		cr_assert_eq(rly_be32_load(&b->got[i].ip_be), 0x0a000001u, "A's address");
	}
	cr_assert_eq(a->n_got, 0, "a relay is never told of its own record");
	cr_assert_eq(a->ctr.v[RLY_CTR_CTL_DISC_ANNOUNCES], 1);
	cr_assert_eq(b->ctr.v[RLY_CTR_CTL_DISC_LOOKUPS], 1);
	cr_assert_eq(c->ctr.v[RLY_CTR_CTL_DISC_BAD], 0);

	/* Figures: put -> visible to a listener, and lookup -> first record, on fresh keys. */
	enum { N = 20 };
	uint64_t listen_ms[N], get_ms[N];
	for (unsigned i = 0; i < N; i++) {
		uint8_t k[RLY_STREAM_KEY_LEN] = {0xd2, (uint8_t)i};
		cr_assert_eq(rly_disc_watch(c->d, k, 0), 0);
		settle(50);
		t0 = mono_ms();
		cr_assert_eq(rly_disc_announce(a->d, k, 0), 0);
		cr_assert(wait_for(c, a, k, &seen));
		listen_ms[i] = seen - t0;
		t0 = mono_ms();
		cr_assert_eq(rly_disc_lookup(b->d, k, 0), 0);
		cr_assert(wait_for(b, a, k, &seen));
		get_ms[i] = seen - t0;
	}
	print_ms("put -> listener sees it", listen_ms, N);
	print_ms("lookup (get) -> first record", get_ms, N);
}

Test(discovery_dht, a_forged_value_put_under_the_key_is_refused)
{
	uint8_t key[RLY_STREAM_KEY_LEN] = {0xd3};
	struct node *a = &nodes[0], *c = &nodes[2];
	uint8_t hash[RLY_DHT_HASH_LEN];
	struct rly_disc_record r;
	dht_runner *raw = dht_runner_new();
	char name[64], err[128], boot[16];
	dht_infohash h;

	/* A fourth node, not ours: OpenDHT's own API, bound to loopback, bootstrapped like the rest. */
	cr_assert_not_null(raw);
	cr_assert_eq(rly_dht_shim_run(raw, "127.0.0.1", 0, 1, 60, err, sizeof(err)), 0, "%s", err);
	snprintf(boot, sizeof(boot), "%u", rly_disc_dht_port(nodes[0].d));
	dht_runner_bootstrap(raw, "127.0.0.1", boot);
	rly_disc_dht_key_name(key, 0, name);
	dht_infohash_get_from_string(&h, name);
	memcpy(hash, h.d, sizeof(hash));

	settle(1500);
	cr_assert_eq(rly_disc_watch(c->d, key, 0), 0);
	settle(200);

	/* A's record with one signature byte changed, A's record re-pointed at another address, and
	 * something that is no record at all. */
	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, key, sizeof(key));
	rly_be32_store(&r.ip_be, 0x0a000001u);
	rly_be16_store(&r.udp_port, 4747);
	rly_be64_store(&r.expires_ms, rly_real_ns() / 1000000u + 60000);
	cr_assert_eq(rly_disc_record_sign(&r, &a->id), 0);
	r.sig[3] ^= 0x10;
	rly_dht_shim_put(raw, hash, (const uint8_t *)&r, sizeof(r), 0);
	r.sig[3] ^= 0x10;
	rly_be32_store(&r.ip_be, 0xc0000201u);
	rly_dht_shim_put(raw, hash, (const uint8_t *)&r, sizeof(r), 0);
	rly_dht_shim_put(raw, hash, (const uint8_t *)"not a record", 12, 0);

	/* Then the real one; once it is there, the watcher has had every chance to see the rest. */
	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	cr_assert(wait_for(c, a, key, NULL));
	uint64_t end = mono_ms() + WAIT_CAP_MS;
	while (c->ctr.v[RLY_CTR_CTL_DISC_BAD] < 3 && mono_ms() < end) {
		poll_all();
		usleep(2000);
	}
	settle(300);
	printf("dht forged values refused by the watcher: %llu\n",
	       (unsigned long long)c->ctr.v[RLY_CTR_CTL_DISC_BAD]);
	cr_assert_geq(c->ctr.v[RLY_CTR_CTL_DISC_BAD], 3);
	for (unsigned i = 0; i < c->n_got; i++) {
		cr_assert_eq(rly_disc_record_verify(&c->got[i], rly_real_ns() / 1000000u), 0);
		cr_assert_eq(rly_be32_load(&c->got[i].ip_be), 0x0a000001u, "only A's own address");
	}
	dht_runner_delete(raw);
}
