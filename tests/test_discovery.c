/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Discovery (control/discovery.h): signed records, and the static seed backend with several
 * rly_disc instances in one process. Their `send` puts each PEER_DISCOVER body, checked by the real
 * wire parser, on one in-memory queue; pump() delivers the queue to each target's
 * rly_disc_on_message. Time is driven through now_ms; nothing sleeps.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"
#include "control/discovery.h"
#include "relay/counters.h"
#include "relay/wire.h"

#define NODES_MAX 48
#define GOT_MAX 256
#define QUEUE_MAX 8192
#define PORT 4747
#define TTL_MS 60000u
#define INTERVAL_MS 5000u

struct node {
	struct rly_disc *d;
	struct rly_identity id;
	uint32_t ip_be;
	uint16_t port;
	int no_session; /* sends to this node return -ENOTCONN */
	unsigned sends; /* send attempts made by this node */
	struct rly_ctr_block ctr;
	struct rly_disc_record got[GOT_MAX];
	unsigned n_got;
};

struct msg {
	uint32_t from_ip, to_ip;
	uint16_t from_port, to_port;
	struct rly_wire_peer_discover b;
};

static struct node nodes[NODES_MAX];
static unsigned n_nodes;
static struct msg queue[QUEUE_MAX];
static unsigned q_head, q_len;
static uint64_t now;		  /* the monotonic ms every instance is driven with */
static uint64_t now0, real0;	  /* now and the wall clock when the test started */
static const uint8_t key[RLY_STREAM_KEY_LEN] = {0x11, 0x22, 0x33};
static const uint8_t key2[RLY_STREAM_KEY_LEN] = {0x44, 0x55};

static void gen_id(struct rly_identity *id)
{
	cr_assert_eq(crypto_sign_keypair(id->pk, id->sk), 0);
}

static struct node *node_at(uint32_t ip_be, uint16_t port)
{
	for (unsigned i = 0; i < n_nodes; i++)
		if (nodes[i].ip_be == ip_be && nodes[i].port == port)
			return &nodes[i];
	return NULL;
}

static uint32_t ip_of(unsigned i)
{
	uint32_t ip;

	rly_be32_store(&ip, 0x0a000001u + i); /* 10.0.0.1 + i */
	return ip;
}

static int fake_send(void *ctx, uint32_t ip_be, uint16_t port, struct rly_wire_peer_discover *b)
{
	struct node *self = ctx, *to = node_at(ip_be, port);
	uint8_t dgram[RLY_WIRE_MAX_DGRAM];
	struct rly_wire_view v;
	int len;

	self->sends++;
	if (!to || to->no_session)
		return -ENOTCONN;
	/* What the caller does: add the session token, then the datagram must pass the parser. */
	memset(b->token, 0xA5, sizeof(b->token));
	len = rly_wire_build_control(dgram, sizeof(dgram), RLY_MSG_PEER_DISCOVER, b);
	cr_assert_gt(len, 0);
	cr_assert_eq(rly_wire_parse(dgram, (size_t)len, sizeof(dgram), &v), RLY_WIRE_ERR_OK,
		     "discovery sent a body the wire parser refuses");
	cr_assert_lt(q_len, QUEUE_MAX);
	struct msg *m = &queue[(q_head + q_len++) % QUEUE_MAX];
	m->from_ip = self->ip_be;
	m->from_port = self->port;
	m->to_ip = ip_be;
	m->to_port = port;
	m->b = *b;
	return 0;
}

static void on_record(void *ctx, const struct rly_disc_record *rec)
{
	struct node *n = ctx;

	cr_assert_lt(n->n_got, GOT_MAX);
	n->got[n->n_got++] = *rec;
}

/* Deliver queued messages (and what they cause) until the queue is empty; returns how many. */
static unsigned pump(void)
{
	unsigned n = 0;

	while (q_len > 0) {
		struct msg m = queue[q_head];
		q_head = (q_head + 1) % QUEUE_MAX;
		q_len--;
		struct node *to = node_at(m.to_ip, m.to_port);
		cr_assert_not_null(to);
		rly_disc_on_message(to->d, m.from_ip, m.from_port, &m.b, now);
		n++;
	}
	return n;
}

static void poll_all(void)
{
	for (unsigned i = 0; i < n_nodes; i++)
		rly_disc_poll(nodes[i].d, now);
	pump();
}

/* A node whose seeds are nodes seeds[0..n_seeds). */
static struct node *add_node(const unsigned *seeds, unsigned n_seeds, uint32_t store_max)
{
	struct node *n = &nodes[n_nodes];
	struct rly_disc_config cfg = {0};
	struct rly_disc_cb cb = {.ctx = n, .on_record = on_record, .send = fake_send};

	memset(n, 0, sizeof(*n));
	gen_id(&n->id);
	n->ip_be = ip_of(n_nodes);
	n->port = PORT;
	cfg.id = &n->id;
	cfg.ip_be = n->ip_be;
	cfg.port = n->port;
	cfg.ttl_ms = TTL_MS;
	cfg.lookup_interval_ms = INTERVAL_MS;
	cfg.store_max = store_max;
	cfg.ctr = &n->ctr;
	for (unsigned i = 0; i < n_seeds; i++) {
		cfg.seeds[i].ip_be = ip_of(seeds[i]);
		cfg.seeds[i].port = PORT;
	}
	cfg.n_seeds = n_seeds;
	n_nodes++;
	cr_assert_eq(rly_disc_open(&n->d, &cfg, &cb), 0, "open: %s", rly_err_msg());
	rly_disc_poll(n->d, now); /* the instance's clock is the test's from here on */
	return n;
}

static void setup(void)
{
	cr_assert_geq(sodium_init(), 0);
	n_nodes = 0;
	q_head = q_len = 0;
	now = now0 = rly_mono_ns() / 1000000u;
	real0 = rly_real_ns() / 1000000u;
}

static void teardown(void)
{
	for (unsigned i = 0; i < n_nodes; i++)
		rly_disc_close(nodes[i].d);
	n_nodes = 0;
}

/* The wall clock as the instances see it at `now`. */
static uint64_t real_now(void)
{
	return real0 + (now - now0);
}

static int got_relay(const struct node *n, const struct node *who)
{
	for (unsigned i = 0; i < n->n_got; i++)
		if (memcmp(n->got[i].relay, who->id.pk, RLY_ID_LEN) == 0)
			return 1;
	return 0;
}

/* A record of @p who for (key, 0) at @p ip_be, expiring at @p exp, signed. */
static struct rly_disc_record make_record(const struct node *who, uint32_t ip_be, uint64_t exp)
{
	struct rly_disc_record r;

	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, key, sizeof(key));
	r.ip_be = ip_be;
	rly_be16_store(&r.udp_port, PORT);
	rly_be64_store(&r.expires_ms, exp);
	cr_assert_eq(rly_disc_record_sign(&r, &who->id), 0);
	return r;
}

static void deliver_announce(struct node *to, const struct node *from, uint32_t from_ip,
			     const struct rly_disc_record *r)
{
	struct rly_wire_peer_discover b;

	memset(&b, 0, sizeof(b));
	b.kind = RLY_DISC_ANNOUNCE;
	rly_be64_store(&b.request_id, 7);
	memset(b.token, 0xA5, sizeof(b.token));
	b.rec = *r;
	rly_disc_on_message(to->d, from_ip, from->port, &b, now);
}

TestSuite(discovery, .init = setup, .fini = teardown);

Test(discovery, a_signed_record_verifies_and_any_changed_signed_byte_is_a_bad_signature)
{
	struct rly_identity id;
	struct rly_disc_record r, t;
	uint64_t t0 = real_now();

	gen_id(&id);
	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, key, sizeof(key));
	rly_be32_store(&r.partition, 3);
	rly_be32_store(&r.ip_be, 0x0a000001);
	rly_be16_store(&r.udp_port, PORT);
	rly_be64_store(&r.expires_ms, t0 + 60000);
	cr_assert_eq(rly_disc_record_sign(&r, &id), 0);
	cr_assert_eq(memcmp(r.relay, id.pk, RLY_ID_LEN), 0, "sign names the signer");
	cr_assert_eq(rly_disc_record_verify(&r, t0), 0);

	for (size_t i = 0; i < offsetof(struct rly_disc_record, sig); i++) {
		t = r;
		((uint8_t *)&t)[i] ^= 0x01;
		cr_assert_eq(rly_disc_record_verify(&t, t0), -EBADMSG, "byte %zu changed", i);
	}
	t = r;
	t.sig[5] ^= 0x80;
	cr_assert_eq(rly_disc_record_verify(&t, t0), -EBADMSG);

	/* The signature covers the context string: one over the bare bytes does not verify. */
	t = r;
	crypto_sign_detached(t.sig, NULL, (const uint8_t *)&t, offsetof(struct rly_disc_record, sig),
			     id.sk);
	cr_assert_eq(rly_disc_record_verify(&t, t0), -EBADMSG);
}

Test(discovery, an_expired_record_is_refused_as_timed_out_and_a_bad_field_as_invalid)
{
	struct rly_identity id;
	struct rly_disc_record r;
	uint64_t t0 = real_now();

	gen_id(&id);
	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, key, sizeof(key));
	rly_be32_store(&r.ip_be, 0x0a000001);
	rly_be16_store(&r.udp_port, PORT);
	rly_be64_store(&r.expires_ms, t0 + 1000);
	cr_assert_eq(rly_disc_record_sign(&r, &id), 0);
	cr_assert_eq(rly_disc_record_verify(&r, t0 + 999), 0);
	cr_assert_eq(rly_disc_record_verify(&r, t0 + 1000), -ETIMEDOUT);
	cr_assert_eq(rly_disc_record_verify(&r, t0 + 50000), -ETIMEDOUT);

	/* Correctly signed, but flags set: a bad field. */
	r.flags = 1;
	cr_assert_eq(rly_disc_record_sign(&r, &id), 0);
	cr_assert_eq(rly_disc_record_verify(&r, t0), -EINVAL);
	/* Correctly signed, but valid for longer than any relay may ask. */
	r.flags = 0;
	rly_be64_store(&r.expires_ms, t0 + RLY_DISC_TTL_MAX_MS + 60000);
	cr_assert_eq(rly_disc_record_sign(&r, &id), 0);
	cr_assert_eq(rly_disc_record_verify(&r, t0), -EINVAL);
}

Test(discovery, a_relay_knowing_only_the_seed_finds_the_announcer)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *a = add_node(&seed, 1, 0);
	struct node *b = add_node(&seed, 1, 0);
	(void)s;

	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	pump();
	cr_assert_eq(rly_disc_store_count(s->d), 1, "the seed stored A's record");
	cr_assert_eq(a->ctr.v[RLY_CTR_CTL_DISC_ANNOUNCES], 1);

	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	poll_all();
	cr_assert_eq(b->n_got, 1, "B got %u records", b->n_got);
	cr_assert_eq(memcmp(b->got[0].relay, a->id.pk, RLY_ID_LEN), 0);
	cr_assert_eq(b->got[0].ip_be, a->ip_be);
	cr_assert_eq(rly_be16_load(&b->got[0].udp_port), PORT);
	cr_assert_eq(rly_disc_record_verify(&b->got[0], real_now()), 0);
	cr_assert_eq(b->ctr.v[RLY_CTR_CTL_DISC_LOOKUPS], 1);
	cr_assert_eq(a->n_got, 0);

	/* Another partition of the same key is another lookup, with nothing in it. */
	b->n_got = 0;
	cr_assert_eq(rly_disc_lookup(b->d, key, 1), 0);
	poll_all();
	cr_assert_eq(b->n_got, 0);
}

Test(discovery, a_seed_looking_a_key_up_finds_the_records_in_its_own_store)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *a = add_node(&seed, 1, 0);

	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	pump();
	cr_assert_eq(rly_disc_lookup(s->d, key, 0), 0);
	cr_assert_eq(q_len, 0, "a seed with no seeds asks nobody");
	cr_assert_eq(s->n_got, 0, "handed over at the next poll, not inside lookup");
	poll_all();
	cr_assert_eq(s->n_got, 1);
	cr_assert(got_relay(s, a));
}

Test(discovery, a_seed_answers_a_lookup_with_its_own_record_when_it_serves_the_key)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *b = add_node(&seed, 1, 0);

	cr_assert_eq(rly_disc_announce(s->d, key, 0), 0); /* no seeds: nothing to send */
	cr_assert_eq(q_len, 0);
	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	poll_all();
	cr_assert_eq(b->n_got, 1);
	cr_assert(got_relay(b, s));
}

Test(discovery, a_lookup_of_a_key_with_40_announcers_returns_16_distinct_valid_records)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *b = add_node(&seed, 1, 0);
	uint64_t t = real_now();

	for (unsigned i = 0; i < 40; i++) {
		struct node *a = add_node(&seed, 1, 0);
		cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	}
	pump();
	cr_assert_eq(rly_disc_store_count(s->d), 40);
	cr_assert_eq(s->ctr.v[RLY_CTR_CTL_DISC_RECORDS], 40);

	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	poll_all();
	cr_assert_eq(b->n_got, RLY_DISC_RESULTS_MAX, "got %u", b->n_got);
	for (unsigned i = 0; i < b->n_got; i++) {
		cr_assert_eq(rly_disc_record_verify(&b->got[i], t), 0);
		for (unsigned j = 0; j < i; j++)
			cr_assert_neq(memcmp(b->got[i].relay, b->got[j].relay, RLY_ID_LEN), 0,
				      "records %u and %u are of the same relay", i, j);
		int announcer = 0;
		for (unsigned k = 2; k < n_nodes; k++)
			announcer |= memcmp(b->got[i].relay, nodes[k].id.pk, RLY_ID_LEN) == 0;
		cr_assert(announcer, "record %u is of one of the 40", i);
	}
}

Test(discovery, a_seed_picks_a_random_16_so_repeated_lookups_find_more_than_16_announcers)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *b = add_node(&seed, 1, 0);
	unsigned found = 0;
	(void)s;

	for (unsigned i = 0; i < 40; i++)
		cr_assert_eq(rly_disc_announce(add_node(&seed, 1, 0)->d, key, 0), 0);
	pump();
	for (unsigned round = 0; round < 8; round++) {
		cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
		poll_all();
	}
	for (unsigned k = 2; k < n_nodes; k++)
		found += got_relay(b, &nodes[k]);
	/* A fixed pick finds the same 16 every time; random picks of 16 of 40 all alike: p ~ 1e-75. */
	cr_assert_gt(found, 16, "found %u distinct announcers in 8 lookups", found);
}

Test(discovery, a_watch_sees_a_later_announcer_after_the_next_lookup_interval)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *b = add_node(&seed, 1, 0);
	struct node *a = add_node(&seed, 1, 0);
	(void)s;

	cr_assert_eq(rly_disc_watch(b->d, key, 0), 0);
	poll_all();
	cr_assert_eq(b->n_got, 0);

	now += 1000;
	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	poll_all();
	cr_assert_eq(b->n_got, 0, "nothing before the next round");

	now += INTERVAL_MS - 1000 - 1;
	poll_all();
	cr_assert_eq(b->n_got, 0, "one ms before the interval is up");
	now += 1;
	poll_all();
	cr_assert_eq(b->n_got, 1);
	cr_assert(got_relay(b, a));
	cr_assert_eq(b->ctr.v[RLY_CTR_CTL_DISC_LOOKUPS], 2);

	/* Unwatched: no more rounds. */
	rly_disc_unwatch(b->d, key, 0);
	now += 3 * INTERVAL_MS;
	poll_all();
	cr_assert_eq(b->n_got, 1);
	cr_assert_eq(b->ctr.v[RLY_CTR_CTL_DISC_LOOKUPS], 2);
}

Test(discovery, a_withdrawn_record_is_gone_from_the_seed_once_it_expires)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *a = add_node(&seed, 1, 0);
	struct rly_disc_record out[4];

	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	cr_assert_eq(rly_disc_announce(a->d, key2, 0), 0); /* kept: the control */
	pump();
	cr_assert_eq(rly_disc_store_find(s->d, key, 0, out, 4), 1);
	cr_assert_eq(rly_disc_store_find(s->d, key2, 0, out, 4), 1);

	rly_disc_withdraw(a->d, key, 0);
	/* Re-announces go on for key2 only, every ttl/3. */
	for (unsigned step = 0; step < 4; step++) {
		now += TTL_MS / 3;
		poll_all();
	}
	cr_assert_eq(a->ctr.v[RLY_CTR_CTL_DISC_ANNOUNCES], 2 + 4);
	cr_assert_eq(rly_disc_store_find(s->d, key, 0, out, 4), 0, "withdrawn and expired");
	cr_assert_eq(rly_disc_store_find(s->d, key2, 0, out, 4), 1, "still announced");
	cr_assert_eq(rly_disc_store_count(s->d), 1, "the expired record left the store");
	cr_assert_eq(s->ctr.v[RLY_CTR_CTL_DISC_RECORDS], 1);
}

Test(discovery, a_withdrawn_record_stays_at_the_seed_until_it_expires)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *a = add_node(&seed, 1, 0);
	struct rly_disc_record out[1];

	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	pump();
	rly_disc_withdraw(a->d, key, 0);
	/* 100 ms either side: each instance reads the wall clock once at open, 1 ms apart at most. */
	now += TTL_MS - 100;
	poll_all();
	cr_assert_eq(rly_disc_store_find(s->d, key, 0, out, 1), 1);
	now += 200;
	poll_all();
	cr_assert_eq(rly_disc_store_find(s->d, key, 0, out, 1), 0);
}

Test(discovery, a_forged_announce_is_refused_counted_and_never_handed_on)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *b = add_node(&seed, 1, 0);
	struct node *m = add_node(&seed, 1, 0); /* the forger */
	struct node *victim = add_node(&seed, 1, 0);
	uint64_t exp = real_now() + 30000;
	struct rly_disc_record r;

	cr_assert_eq(rly_disc_watch(s->d, key, 0), 0); /* the seed watches too */

	/* Bad signature. */
	r = make_record(m, m->ip_be, exp);
	r.sig[0] ^= 1;
	deliver_announce(s, m, m->ip_be, &r);
	/* Good signature, but an address that is not the sender's. */
	r = make_record(m, victim->ip_be, exp);
	deliver_announce(s, m, m->ip_be, &r);
	/* Signed by someone else than the relay it names. */
	r = make_record(m, m->ip_be, exp);
	memcpy(r.relay, victim->id.pk, RLY_ID_LEN);
	deliver_announce(s, m, m->ip_be, &r);
	/* Expired. */
	r = make_record(m, m->ip_be, real_now() - 1000);
	deliver_announce(s, m, m->ip_be, &r);

	cr_assert_eq(s->ctr.v[RLY_CTR_CTL_DISC_BAD], 4);
	cr_assert_eq(rly_disc_store_count(s->d), 0);
	cr_assert_eq(s->n_got, 0);

	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	poll_all();
	cr_assert_eq(b->n_got, 0);

	/* The same forger, honest: accepted, and the watching seed hears of it. */
	r = make_record(m, m->ip_be, exp);
	deliver_announce(s, m, m->ip_be, &r);
	cr_assert_eq(s->ctr.v[RLY_CTR_CTL_DISC_BAD], 4);
	cr_assert_eq(rly_disc_store_count(s->d), 1);
	cr_assert_eq(s->n_got, 1);
}

Test(discovery, a_forged_or_unasked_result_is_refused_and_never_handed_on)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *b = add_node(&seed, 1, 0);
	struct node *m = add_node(NULL, 0, 0);
	struct rly_wire_peer_discover res;
	uint64_t exp = real_now() + 30000;

	/* Catch B's LOOKUP on its way to the seed to learn its request_id. */
	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	cr_assert_eq(q_len, 1);
	uint64_t rid = rly_be64_load(&queue[q_head].b.request_id);
	q_head = q_len = 0;

	memset(&res, 0, sizeof(res));
	res.kind = RLY_DISC_RESULT;
	memset(res.token, 0xA5, sizeof(res.token));
	res.rec = make_record(m, m->ip_be, exp);

	/* From the seed, but for a request B never made. */
	rly_be64_store(&res.request_id, rid + 1);
	rly_disc_on_message(b->d, s->ip_be, PORT, &res, now);
	/* The right request, but from a relay that is not a seed. */
	rly_be64_store(&res.request_id, rid);
	rly_disc_on_message(b->d, m->ip_be, PORT, &res, now);
	cr_assert_eq(b->n_got, 0);
	cr_assert_eq(b->ctr.v[RLY_CTR_CTL_DISC_BAD], 0, "ignored, not verified");

	/* The right request from the seed, but forged or for another key. */
	res.rec.sig[9] ^= 4;
	rly_disc_on_message(b->d, s->ip_be, PORT, &res, now);
	res.rec = make_record(m, m->ip_be, exp);
	memcpy(res.rec.stream_key, key2, sizeof(key2));
	cr_assert_eq(rly_disc_record_sign(&res.rec, &m->id), 0);
	rly_disc_on_message(b->d, s->ip_be, PORT, &res, now);
	cr_assert_eq(b->n_got, 0);
	cr_assert_eq(b->ctr.v[RLY_CTR_CTL_DISC_BAD], 2);

	/* And a good one goes through. */
	res.rec = make_record(m, m->ip_be, exp);
	rly_disc_on_message(b->d, s->ip_be, PORT, &res, now);
	cr_assert_eq(b->n_got, 1);
	cr_assert(got_relay(b, m));
}

Test(discovery, a_result_from_a_seed_the_lookup_did_not_reach_is_ignored)
{
	unsigned seeds[2] = {0, 1};
	struct node *s = add_node(NULL, 0, 0);
	struct node *t = add_node(NULL, 0, 0);
	struct node *b = add_node(seeds, 2, 0);
	struct node *m = add_node(NULL, 0, 0);
	struct rly_wire_peer_discover res;
	(void)s;

	t->no_session = 1;
	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	cr_assert_eq(q_len, 1, "only the seed with a session was asked");
	memset(&res, 0, sizeof(res));
	res.kind = RLY_DISC_RESULT;
	res.request_id = queue[q_head].b.request_id;
	memset(res.token, 0xA5, sizeof(res.token));
	res.rec = make_record(m, m->ip_be, real_now() + 30000);
	rly_disc_on_message(b->d, t->ip_be, PORT, &res, now);
	cr_assert_eq(b->n_got, 0);
	rly_disc_on_message(b->d, s->ip_be, PORT, &res, now);
	cr_assert_eq(b->n_got, 1);
}

Test(discovery, a_send_without_a_session_is_retried_at_the_next_poll)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *a = add_node(&seed, 1, 0);
	struct node *b = add_node(&seed, 1, 0);

	s->no_session = 1;
	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	cr_assert_eq(a->sends, 1);
	cr_assert_eq(b->sends, 1);
	poll_all();
	cr_assert_eq(a->sends, 2, "tried again at the poll");
	cr_assert_eq(b->sends, 2);
	cr_assert_eq(rly_disc_store_count(s->d), 0);

	s->no_session = 0;
	poll_all(); /* A's ANNOUNCE and B's LOOKUP both reach the seed, in that order */
	cr_assert_eq(rly_disc_store_count(s->d), 1);
	cr_assert_eq(b->n_got, 1);
	cr_assert(got_relay(b, a));

	/* Delivered: nothing more to retry. */
	unsigned sa = a->sends, sb = b->sends;
	poll_all();
	cr_assert_eq(a->sends, sa);
	cr_assert_eq(b->sends, sb);
}

Test(discovery, the_store_never_holds_more_than_store_max_and_keeps_the_latest_expiring)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 4);
	struct rly_disc_record out[16];

	for (unsigned i = 0; i < 10; i++) {
		now += 10; /* each announcer's record expires 10 ms after the one before */
		cr_assert_eq(rly_disc_announce(add_node(&seed, 1, 0)->d, key, 0), 0);
		pump();
		cr_assert_leq(rly_disc_store_count(s->d), 4);
	}
	cr_assert_eq(rly_disc_store_count(s->d), 4);
	cr_assert_eq(s->ctr.v[RLY_CTR_CTL_DISC_RECORDS], 4);
	cr_assert_eq(rly_disc_store_find(s->d, key, 0, out, 16), 4);
	for (unsigned k = n_nodes - 4; k < n_nodes; k++) {
		int kept = 0;
		for (unsigned j = 0; j < 4; j++)
			kept |= memcmp(out[j].relay, nodes[k].id.pk, RLY_ID_LEN) == 0;
		cr_assert(kept, "announcer %u (among the last 4) was kept", k);
	}

	/* A newcomer expiring before everything kept is the one that goes. */
	struct node *late = add_node(&seed, 1, 0);
	struct rly_disc_record r = make_record(late, late->ip_be, real_now() + 1000);
	deliver_announce(s, late, late->ip_be, &r);
	cr_assert_eq(rly_disc_store_count(s->d), 4);
	cr_assert_eq(rly_disc_store_find(s->d, key, 0, out, 16), 4);
	for (unsigned j = 0; j < 4; j++)
		cr_assert_neq(memcmp(out[j].relay, late->id.pk, RLY_ID_LEN), 0);
}

Test(discovery, a_reannounce_replaces_the_relays_record_and_a_replay_does_not)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *a = add_node(&seed, 1, 0);
	struct rly_disc_record first, out[2];

	cr_assert_eq(rly_disc_announce(a->d, key, 0), 0);
	first = queue[q_head].b.rec;
	pump();
	now += TTL_MS / 3;
	poll_all();
	cr_assert_eq(rly_disc_store_find(s->d, key, 0, out, 2), 1, "one record per relay");
	cr_assert_gt(rly_be64_load(&out[0].expires_ms), rly_be64_load(&first.expires_ms));

	deliver_announce(s, a, a->ip_be, &first); /* a replay of the older one */
	cr_assert_eq(rly_disc_store_find(s->d, key, 0, out, 2), 1);
	cr_assert_gt(rly_be64_load(&out[0].expires_ms), rly_be64_load(&first.expires_ms));
}

Test(discovery, a_lookup_with_nothing_to_find_is_answered_by_one_empty_result)
{
	unsigned seed = 0;
	struct node *s = add_node(NULL, 0, 0);
	struct node *b = add_node(&seed, 1, 0);
	(void)s;

	cr_assert_eq(rly_disc_lookup(b->d, key, 0), 0);
	cr_assert_eq(pump(), 2, "the LOOKUP and one RESULT");
	cr_assert_eq(b->n_got, 0);
	cr_assert_eq(b->ctr.v[RLY_CTR_CTL_DISC_BAD], 0);
}

Test(discovery, a_bad_configuration_is_refused_with_a_message)
{
	struct rly_identity id;
	struct rly_disc_config cfg = {0};
	struct rly_disc_cb cb = {.on_record = on_record, .send = fake_send};
	struct rly_disc *d;

	gen_id(&id);
	cfg.id = &id;
	cfg.ip_be = ip_of(0);
	cfg.port = PORT;
	cfg.n_seeds = RLY_DISC_SEEDS_MAX + 1;
	cr_assert_eq(rly_disc_open(&d, &cfg, &cb), -EINVAL);
	cfg.n_seeds = 0;
	cfg.ttl_ms = RLY_DISC_TTL_MAX_MS + 1;
	cr_assert_eq(rly_disc_open(&d, &cfg, &cb), -EINVAL);
	cfg.ttl_ms = 0;
	cb.send = NULL;
	cr_assert_eq(rly_disc_open(&d, &cfg, &cb), -EINVAL);
	cr_assert_neq(strstr(rly_err_msg(), "send"), NULL);
#ifndef RLY_TEST_HAVE_DHT
	cfg.backend = RLY_DISC_BACKEND_DHT;
	cfg.dht_bind = "127.0.0.1";
	cr_assert_eq(rly_disc_open(&d, &cfg, &cb), -ENOTSUP);
	cr_assert_neq(strstr(rly_err_msg(), "-Ddht=enabled"), NULL);
#endif
}
