/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End-to-end encryption in librelay-client (docs/encryption.md) against the fake relay, which
 * routes KEY_REQUEST and KEY_RESPONSE the way relay-control does (test_client_fake_relay.c).
 * An encrypting publisher is its own key holder; its registry (a temporary directory of grants
 * written with the security API) decides who gets the key. Assertions are on counts, bytes and
 * reasons, never on time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "common/clock.h"
#include "relay/client.h"
#include "security/e2e.h"
#include "security/identity.h"
#include "security/msgsig.h"
#include "security/registry.h"
#include "test_client_fake_relay.h"

#define PARTITION 3u
#define CANARY	  "canary-7d1f0c2e"
#define MAXREC	  256

static char dir[64];
static char stream[RLY_STREAM_NAME_MAX + 1];
static uint8_t skey[RLY_STREAM_KEY_LEN];
/* P publishes (and owns the stream); A and B may subscribe; C may not. */
static struct rly_identity P, A, B, C;
static struct fake_relay fr;

struct rec {
	unsigned n_msgs;
	uint64_t seq[MAXREC];
	uint16_t flags[MAXREC];
	uint32_t key_id[MAXREC];
	char text[MAXREC][64];
	unsigned n_bad;
	int bad_reason[MAXREC];
	uint64_t bad_seq[MAXREC];
	unsigned n_gaps;
};

struct key_events {
	unsigned n;
	enum rly_key_event ev[64];
	uint8_t who[64][RLY_ID_LEN];
	int has_who[64];
	uint32_t key_id[64];
	enum rly_key_event last_ev; /* the latest, however many came */
	uint32_t last_key_id;
	int last_has_who;
};

static void on_message(void *ctx, const struct rly_msg *m)
{
	struct rec *r = ctx;

	if (r->n_msgs < MAXREC) {
		size_t n = m->payload_len < 63 ? m->payload_len : 63;
		r->seq[r->n_msgs] = m->seq;
		r->flags[r->n_msgs] = m->flags;
		r->key_id[r->n_msgs] = m->key_id;
		memcpy(r->text[r->n_msgs], m->payload, n);
		r->text[r->n_msgs][n] = 0;
	}
	r->n_msgs++;
}

static void on_bad(void *ctx, const struct rly_msg *m, int reason)
{
	struct rec *r = ctx;

	if (r->n_bad < MAXREC) {
		r->bad_reason[r->n_bad] = reason;
		r->bad_seq[r->n_bad] = m->seq;
	}
	r->n_bad++;
}

static void on_gap(void *ctx, const struct rly_gap *g)
{
	(void)g;
	((struct rec *)ctx)->n_gaps++;
}

static void on_key_event(void *ctx, enum rly_key_event ev, const uint8_t *who, uint32_t key_id)
{
	struct key_events *k = ctx;

	if (k->n < 64) {
		k->ev[k->n] = ev;
		k->has_who[k->n] = who != NULL;
		if (who)
			memcpy(k->who[k->n], who, RLY_ID_LEN);
		k->key_id[k->n] = key_id;
	}
	k->last_ev = ev;
	k->last_key_id = key_id;
	k->last_has_who = who != NULL;
	k->n++;
}

static unsigned count_events(const struct key_events *k, enum rly_key_event ev)
{
	unsigned n = 0;

	for (unsigned i = 0; i < k->n && i < 64; i++)
		n += k->ev[i] == ev;
	return n;
}

/* A grant by the stream owner P, valid for an hour. */
static void grant_line(FILE *f, const struct rly_identity *to, uint32_t perms)
{
	struct rly_grant g;
	char line[1100];

	memset(&g, 0, sizeof(g));
	snprintf(g.stream, sizeof(g.stream), "%s", stream);
	memcpy(g.grantee, to->pk, RLY_ID_LEN);
	g.perms = perms;
	g.issued = (uint64_t)time(NULL) - 60;
	g.not_after = (uint64_t)time(NULL) + 3600;
	cr_assert_eq(rly_grant_sign(&g, &P), 0, "%s", rly_client_errmsg());
	cr_assert_gt(rly_grant_format(&g, line, sizeof(line)), 0);
	fprintf(f, "%s\n", line);
}

/* Write DIR/x.grants (through a rename, as an operator's tool would) allowing @p n identities to
 * subscribe. */
static void write_grants(const struct rly_identity *const *who, unsigned n)
{
	char tmp[128], path[128];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/.x.tmp", dir);
	snprintf(path, sizeof(path), "%s/x.grants", dir);
	f = fopen(tmp, "w");
	cr_assert_not_null(f);
	for (unsigned i = 0; i < n; i++)
		grant_line(f, who[i], RLY_PERM_SUBSCRIBE);
	fclose(f);
	cr_assert_eq(rename(tmp, path), 0);
}

static void setup(void)
{
	uint8_t owner[RLY_ID_LEN];
	char hex[2 * RLY_ID_LEN + 1];
	const struct rly_identity *allowed[] = {&A, &B};

	cr_assert_geq(sodium_init(), 0);
	cr_assert_eq(rly_identity_generate(&P), 0);
	cr_assert_eq(rly_identity_generate(&A), 0);
	cr_assert_eq(rly_identity_generate(&B), 0);
	cr_assert_eq(rly_identity_generate(&C), 0);
	rly_pk_format(P.pk, hex);
	snprintf(stream, sizeof(stream), "%s/e2e/test", hex);
	cr_assert_eq(rly_stream_name_parse(stream, owner, skey), 0, "%s", rly_client_errmsg());
	snprintf(dir, sizeof(dir), "/tmp/rly-e2e-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	write_grants(allowed, 2);
	memset(&fr, 0, sizeof(fr));
	cr_assert_eq(fake_relay_start(&fr), 0);
}

static void teardown(void)
{
	char cmd[128];

	fake_relay_stop(&fr);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		cr_log_warn("could not remove %s", dir);
}

TestSuite(client_e2e, .init = setup, .fini = teardown, .timeout = 60);

static rly_pub_t *make_pub(int key_history, struct key_events *ev)
{
	struct rly_pub_opts o;
	rly_pub_t *p;

	memset(&o, 0, sizeof(o));
	o.relay = fr.addr;
	memcpy(o.stream_key, skey, RLY_STREAM_KEY_LEN);
	o.partition = PARTITION;
	o.identity = &P;
	o.encrypt = 1;
	o.registry_dir = dir;
	o.key_history = key_history;
	o.on_key_event = on_key_event;
	o.key_event_ctx = ev;
	cr_assert_eq(rly_pub_create(&p, &o), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_pub_register(p, 5000), 0, "%s", rly_client_errmsg());
	return p;
}

static rly_sub_t *make_sub(const struct rly_identity *id, struct rec *rec)
{
	struct rly_sub_opts o;
	rly_sub_t *s;

	memset(&o, 0, sizeof(o));
	o.relay = fr.addr;
	memcpy(o.stream_key, skey, RLY_STREAM_KEY_LEN);
	o.partition = PARTITION;
	o.identity = id;
	o.cb.on_message = on_message;
	o.cb.on_bad_message = on_bad;
	o.cb.on_gap = on_gap;
	o.cb.ctx = rec;
	cr_assert_eq(rly_sub_create(&s, &o), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	return s;
}

static struct rly_sub_stats sst(rly_sub_t *s)
{
	struct rly_sub_stats st;

	rly_sub_stats(s, &st);
	return st;
}

static struct rly_pub_stats pst(rly_pub_t *p)
{
	struct rly_pub_stats st;

	rly_pub_stats(p, &st);
	return st;
}

/* One turn of everyone: the publisher sends and answers key requests, subscribers receive. */
static void turn(rly_pub_t *p, rly_sub_t *a, rly_sub_t *b)
{
	if (p) {
		cr_assert_geq(rly_pub_flush(p), 0, "%s", rly_client_errmsg());
		/* Alone, the publisher waits a little: a test spinning on two vCPUs would starve
		 * the fake relay's thread. */
		cr_assert_geq(rly_pub_poll(p, a || b ? 0 : 2), 0, "%s", rly_client_errmsg());
	}
	if (a)
		cr_assert_geq(rly_sub_poll(a, 2), 0, "%s", rly_client_errmsg());
	if (b)
		cr_assert_geq(rly_sub_poll(b, 2), 0, "%s", rly_client_errmsg());
}

/* Run turns until @p cond holds or @p ms pass; then assert it. */
#define RUN_UNTIL(p, a, b, cond, ms)                                                               \
	do {                                                                                       \
		uint64_t end_ = rly_mono_ns() + (uint64_t)(ms)*1000000ull;                         \
		while (!(cond) && rly_mono_ns() < end_)                                            \
			turn(p, a, b);                                                             \
		cr_assert(cond, "still not true after %d ms: %s (hb %u regs %u)", (int)(ms),       \
			  #cond, FR_GET(&fr, heartbeats), FR_GET(&fr, holder_registrations));      \
	} while (0)

/* Run turns for @p ms whatever happens. */
static void run_for(rly_pub_t *p, rly_sub_t *a, rly_sub_t *b, int ms)
{
	uint64_t end = rly_mono_ns() + (uint64_t)ms * 1000000ull;

	while (rly_mono_ns() < end)
		turn(p, a, b);
}

static void publish(rly_pub_t *p, const char *tag, unsigned from, unsigned n)
{
	char text[64];

	for (unsigned i = from; i < from + n; i++) {
		int len = snprintf(text, sizeof(text), "%s %s %u", CANARY, tag, i);
		cr_assert_geq(rly_pub_offer(p, text, (size_t)len), 0, "%s", rly_client_errmsg());
		cr_assert_geq(rly_pub_flush(p), 0);
	}
}

/*
 * A subscriber reads a chain from the key it is given on: the first message it meets makes it
 * ask, and the holder rotates for a newcomer, so that message (published under the step before)
 * stays unreadable. Publish one, wait for the key, and expect exactly that one as NO_KEY.
 */
static void warm_up(rly_pub_t *p, rly_sub_t *s, struct rec *rec)
{
	uint64_t got = sst(s).keys_received;
	unsigned bad = rec->n_bad;

	publish(p, "warm-up", 0, 1);
	RUN_UNTIL(p, s, NULL, sst(s).keys_received == got + 1 && rec->n_bad == bad + 1, 5000);
	cr_assert_eq(rec->bad_reason[bad], RLY_BAD_NO_KEY);
}

Test(client_e2e,
     an_encrypted_stream_reaches_an_allowed_subscriber_decrypted_and_the_relay_sees_no_plaintext)
{
	struct key_events ev = {0};
	struct rec ra = {0};
	rly_pub_t *p;
	rly_sub_t *a;
	char want[64];

	memcpy(fr.canary, CANARY, strlen(CANARY));
	fr.canary_len = strlen(CANARY);
	FR_SET(&fr, forward_data, 1);
	p = make_pub(0, &ev);
	a = make_sub(&A, &ra);
	cr_assert_eq(count_events(&ev, RLY_KEY_EV_REGISTERED), 1);
	cr_assert_geq(rly_pub_fd(p), 0);
	cr_assert_eq(pst(p).key_id, RLY_KEY_ID(1, 0));

	warm_up(p, a, &ra);
	publish(p, "m", 1, 40);
	RUN_UNTIL(p, a, NULL, ra.n_msgs == 40, 5000);
	for (unsigned i = 0; i < 40; i++) {
		snprintf(want, sizeof(want), "%s m %u", CANARY, i + 1);
		cr_assert_str_eq(ra.text[i], want, "message %u", i);
		cr_assert_eq(ra.seq[i], i + 2);
		cr_assert_eq(ra.flags[i], RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
		cr_assert_eq(ra.key_id[i], RLY_KEY_ID(1, 1), "the newcomer's rotate");
	}
	cr_assert_eq(sst(a).undecryptable, 1);
	cr_assert_eq(sst(a).bad_sig, 0);
	cr_assert_eq(sst(a).gaps, 0);
	cr_assert_eq(sst(a).keys_received, 1);
	/* A resent request (its answer late on a busy machine) is granted again, without another
	 * rotate: A is known in this generation. */
	cr_assert_geq(pst(p).keys_granted, 1);
	cr_assert_eq(pst(p).rotations, 1);
	cr_assert_eq(count_events(&ev, RLY_KEY_EV_GRANTED), pst(p).keys_granted);
	cr_assert(ev.ev[0] == RLY_KEY_EV_REGISTERED && ev.ev[1] == RLY_KEY_EV_ROTATED &&
		      !ev.has_who[1] && ev.key_id[1] == RLY_KEY_ID(1, 1) &&
		      ev.ev[2] == RLY_KEY_EV_GRANTED && ev.has_who[2] &&
		      memcmp(ev.who[2], A.pk, RLY_ID_LEN) == 0 && ev.key_id[2] == RLY_KEY_ID(1, 1),
		  "events: REGISTERED, ROTATED to (1,1), GRANTED (1,1) to A");
	/* Plaintext went to the publisher's socket and never came through the relay. */
	cr_assert_geq(FR_GET(&fr, data_dgrams), 41);
	cr_assert_eq(FR_GET(&fr, canary_seen), 0);
	rly_sub_free(a);
	rly_pub_free(p);
}

Test(client_e2e, anonymous_and_unauthorised_subscribers_get_no_key_for_every_message)
{
	struct key_events ev = {0};
	struct rec rc = {0}, rd = {0};
	rly_pub_t *p;
	rly_sub_t *c, *d;
	uint64_t asked;

	FR_SET(&fr, forward_data, 1);
	p = make_pub(0, &ev);
	c = make_sub(&C, &rc);
	d = make_sub(NULL, &rd);
	publish(p, "m", 0, 10);
	RUN_UNTIL(p, c, d, rc.n_bad == 10 && rd.n_bad == 10, 5000);
	for (unsigned i = 0; i < 10; i++) {
		cr_assert_eq(rc.bad_reason[i], RLY_BAD_NO_KEY);
		cr_assert_eq(rd.bad_reason[i], RLY_BAD_NO_KEY);
	}
	cr_assert_eq(rc.n_msgs + rd.n_msgs, 0);
	/* C asked and was refused with the publisher's signature; the anonymous one cannot ask. */
	cr_assert_geq(sst(c).key_requests, 1);
	cr_assert_eq(sst(c).keys_received, 0);
	cr_assert_eq(sst(d).key_requests, 0);
	cr_assert_geq(pst(p).keys_denied, 1);
	cr_assert_eq(pst(p).keys_granted, 0);
	cr_assert_eq(FR_GET(&fr, key_responses), pst(p).keys_denied);
	cr_assert_eq(count_events(&ev, RLY_KEY_EV_DENIED), pst(p).keys_denied);
	cr_assert_eq(ev.ev[1], RLY_KEY_EV_DENIED);
	cr_assert(ev.has_who[1] && memcmp(ev.who[1], C.pk, RLY_ID_LEN) == 0);

	/* A signed DENIED holds C's requests back for a while: more messages, no more asking. */
	asked = sst(c).key_requests;
	publish(p, "n", 10, 5);
	RUN_UNTIL(p, c, d, rc.n_bad == 15 && rd.n_bad == 15, 5000);
	cr_assert_eq(sst(c).key_requests, asked);
	cr_assert_eq(sst(c).undecryptable, 15);
	cr_assert_eq(sst(d).undecryptable, 15);
	rly_sub_free(c);
	rly_sub_free(d);
	rly_pub_free(p);
}

Test(client_e2e,
     messages_that_arrive_before_their_key_are_held_and_delivered_in_order_without_a_gap)
{
	struct key_events ev = {0};
	struct rec ra = {0};
	rly_pub_t *p;
	rly_sub_t *a;

	FR_SET(&fr, forward_data, 1);
	FR_SET(&fr, drop_key_requests, 1); /* the first request is lost: A must ask again */
	FR_SET(&fr, hold_key_responses, 1);
	p = make_pub(0, &ev);
	a = make_sub(&A, &ra);
	publish(p, "first", 0, 1);
	/* The holder answered (rotating for A); the relay sits on the answer. */
	RUN_UNTIL(p, a, NULL, pst(p).keys_granted >= 1 && FR_GET(&fr, key_responses) >= 1, 5000);
	cr_assert_geq(sst(a).key_requests, 2);
	/* Published under the step A is being given, and arriving before it: held. */
	publish(p, "m", 1, 20);
	RUN_UNTIL(p, a, NULL, FR_GET(&fr, data_dgrams) == 21, 5000);
	run_for(p, a, NULL, 100);
	cr_assert_eq(ra.n_msgs, 0);
	cr_assert_eq(ra.n_bad, 0, "nothing reported while the key is on its way");
	FR_SET(&fr, hold_key_responses, 0);
	RUN_UNTIL(p, a, NULL, ra.n_msgs == 20 && ra.n_bad == 1, 5000);
	/* The first message is behind the newcomer's rotate; the rest come in order. */
	cr_assert_eq(ra.bad_reason[0], RLY_BAD_NO_KEY);
	cr_assert_eq(ra.bad_seq[0], 1);
	for (unsigned i = 0; i < 20; i++)
		cr_assert_eq(ra.seq[i], i + 2, "message %u", i);
	cr_assert_eq(ra.n_gaps, 0);
	cr_assert_eq(sst(a).gaps, 0);
	cr_assert_eq(sst(a).keys_received, 1);
	rly_sub_free(a);
	rly_pub_free(p);
}

/* A joins, reads message X; B joins later and is handed X again by the relay. */
static void late_joiner(int key_history, struct rec *rb, char *x_text)
{
	struct key_events ev = {0};
	struct rec ra = {0};
	uint8_t x[2048];
	size_t xlen;
	rly_pub_t *p;
	rly_sub_t *a, *b;
	uint64_t a_asked;

	FR_SET(&fr, forward_data, 1);
	p = make_pub(key_history, &ev);
	a = make_sub(&A, &ra);
	if (key_history) {
		/* A is given the step it asks for: the first message itself. */
		publish(p, "x", 0, 1);
		RUN_UNTIL(p, a, NULL, ra.n_msgs == 1, 5000);
	} else {
		warm_up(p, a, &ra);
		publish(p, "x", 0, 1);
		RUN_UNTIL(p, a, NULL, ra.n_msgs == 1, 5000);
	}
	strcpy(x_text, ra.text[0]);
	xlen = fake_relay_captured(&fr, FR_GET(&fr, data_dgrams) - 1, x, sizeof(x));

	b = make_sub(&B, rb);
	a_asked = sst(a).key_requests;
	fake_relay_send_to_id(&fr, B.pk, x, xlen);
	RUN_UNTIL(p, a, b, rb->n_msgs + rb->n_bad == 1, 5000);
	cr_assert_eq(sst(b).keys_received, 1);
	/* A still reads on with what it has. */
	publish(p, "after", 0, 3);
	RUN_UNTIL(p, a, b, ra.n_msgs == 4 && rb->n_msgs + rb->n_bad == 4, 5000);
	cr_assert_eq(sst(a).key_requests, a_asked);
	rly_sub_free(a);
	rly_sub_free(b);
	rly_pub_free(p);
}

Test(client_e2e, a_late_joiner_cannot_read_a_message_published_before_it_joined)
{
	struct rec rb = {0};
	char x[64];

	late_joiner(0, &rb, x);
	cr_assert_eq(rb.bad_reason[0], RLY_BAD_NO_KEY, "the replayed message");
	cr_assert_eq(rb.n_bad, 1);
	cr_assert_eq(rb.n_msgs, 3, "what came after it joined");
}

Test(client_e2e, with_key_history_a_late_joiner_reads_a_replayed_older_message)
{
	struct rec rb = {0};
	char x[64];

	late_joiner(1, &rb, x);
	cr_assert_eq(rb.n_bad, 0);
	cr_assert_eq(rb.n_msgs, 4);
	cr_assert_str_eq(rb.text[0], x);
}

Test(client_e2e, after_a_rotate_existing_subscribers_read_on_without_asking_again)
{
	struct key_events ev = {0};
	struct rec ra = {0};
	rly_pub_t *p;
	rly_sub_t *a;
	uint64_t asked;

	FR_SET(&fr, forward_data, 1);
	p = make_pub(0, &ev);
	a = make_sub(&A, &ra);
	warm_up(p, a, &ra);
	asked = sst(a).key_requests;
	for (unsigned r = 0; r < 5; r++) {
		publish(p, "m", r * 3, 3);
		cr_assert_eq(rly_pub_rotate(p), 0);
	}
	publish(p, "m", 15, 3);
	RUN_UNTIL(p, a, NULL, ra.n_msgs == 18, 5000);
	cr_assert_eq(pst(p).key_id, RLY_KEY_ID(1, 6));
	cr_assert_eq(pst(p).rotations, 6);
	cr_assert_eq(ra.key_id[0], RLY_KEY_ID(1, 1));
	cr_assert_eq(ra.key_id[17], RLY_KEY_ID(1, 6));
	cr_assert_eq(sst(a).keys_received, 1);
	cr_assert_eq(sst(a).key_requests, asked, "no request after a rotate");
	cr_assert_eq(pst(p).key_requests, 1);
	cr_assert_eq(sst(a).undecryptable, 1, "the warm-up only");
	cr_assert_eq(count_events(&ev, RLY_KEY_EV_ROTATED), 6);
	rly_sub_free(a);
	rly_pub_free(p);
}

Test(client_e2e, a_revoked_subscriber_reads_nothing_after_the_automatic_rekey, .timeout = 60)
{
	const struct rly_identity *only_a[] = {&A};
	struct key_events ev = {0};
	struct rec ra = {0}, rb = {0};
	rly_pub_t *p;
	rly_sub_t *a, *b;
	unsigned a_msgs, b_bad;
	uint64_t a_undecryptable, b_undecryptable, rotations;

	FR_SET(&fr, forward_data, 1);
	p = make_pub(0, &ev);
	a = make_sub(&A, &ra);
	b = make_sub(&B, &rb);
	publish(p, "warm-up", 0, 1);
	RUN_UNTIL(p, a, b, sst(a).keys_received == 1 && sst(b).keys_received == 1, 5000);
	publish(p, "before", 0, 5);
	RUN_UNTIL(p, a, b, ra.n_msgs == 5 && rb.n_msgs == 5, 5000);

	/* Revoke B: the publisher notices within about a second and rekeys by itself. */
	write_grants(only_a, 1);
	RUN_UNTIL(p, a, b, pst(p).rekeys == 1, 5000);
	cr_assert_eq(RLY_KEY_ID_GEN(pst(p).key_id), 2);
	cr_assert_eq(count_events(&ev, RLY_KEY_EV_REKEYED), 1);
	for (unsigned i = 0; i < ev.n; i++)
		if (ev.ev[i] == RLY_KEY_EV_REKEYED)
			cr_assert(ev.has_who[i] && memcmp(ev.who[i], B.pk, RLY_ID_LEN) == 0,
				  "the rekey names the revoked identity");

	/* A asks for generation 2 and gets it; B asks and is refused. */
	a_msgs = ra.n_msgs;
	a_undecryptable = sst(a).undecryptable;
	rotations = pst(p).rotations;
	b_bad = rb.n_bad;
	b_undecryptable = sst(b).undecryptable;
	publish(p, "warm-up", 1, 1);
	RUN_UNTIL(p, a, b, sst(a).keys_received == 2 && pst(p).keys_denied >= 1, 5000);
	publish(p, "after", 0, 10);
	/* A held generation 1, so its request causes no rotate: it reads generation 2 from its
	 * first message, the one that made it ask; the rekey costs it nothing. */
	RUN_UNTIL(p, a, b, ra.n_msgs == a_msgs + 11 && rb.n_bad == b_bad + 11, 5000);
	cr_assert_eq(sst(a).undecryptable, a_undecryptable, "the rekey cost A no message");
	cr_assert_eq(pst(p).rotations, rotations, "only newcomers make the holder rotate");
	cr_assert_eq(rb.n_msgs, 5, "B read nothing after the rekey");
	cr_assert_eq(sst(b).undecryptable, b_undecryptable + 11,
		     "yet the relay forwarded it every message");
	for (unsigned i = b_bad; i < rb.n_bad; i++)
		cr_assert_eq(rb.bad_reason[i], RLY_BAD_NO_KEY);
	for (unsigned i = a_msgs; i < ra.n_msgs; i++)
		cr_assert_eq(RLY_KEY_ID_GEN(ra.key_id[i]), 2);
	cr_assert_eq(sst(b).keys_received, 1);
	rly_sub_free(a);
	rly_sub_free(b);
	rly_pub_free(p);
}

/* A KEY_RESPONSE as the holder would make it, answering request @p q. */
static void make_response(const struct rly_wire_key_request *q, const struct rly_identity *signer,
			  const uint8_t *seal_to, const uint8_t key[RLY_GROUP_KEY_LEN],
			  uint32_t key_id, uint8_t *dgram, size_t cap, size_t *len)
{
	struct rly_wire_key_response r;
	int n;

	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, q->stream_key, RLY_STREAM_KEY_LEN);
	r.partition = q->partition;
	r.chain = q->chain;
	r.request_id = q->request_id;
	memcpy(r.publisher, q->publisher, RLY_ID_LEN);
	memcpy(r.requester, q->requester, RLY_ID_LEN);
	rly_be16_store(&r.status, RLY_SUB_OK);
	rly_be32_store(&r.key_id, key_id);
	cr_assert_eq(rly_key_seal(r.sealed, key_id, key, seal_to), 0);
	rly_key_response_sign(&r, signer);
	n = rly_wire_build_control(dgram, cap, RLY_MSG_KEY_RESPONSE, &r);
	cr_assert_gt(n, 0);
	*len = (size_t)n;
}

Test(client_e2e, forged_key_responses_are_ignored)
{
	struct key_events ev = {0};
	struct rly_wire_key_request q;
	struct rly_identity M;
	struct rec ra = {0};
	uint8_t key[RLY_GROUP_KEY_LEN], dgram[512];
	uint32_t key_id;
	size_t len;
	rly_pub_t *p;
	rly_sub_t *a;

	FR_SET(&fr, forward_data, 1);
	FR_SET(&fr, drop_key_requests, 1000); /* the real holder never hears of it */
	cr_assert_eq(rly_identity_generate(&M), 0);
	p = make_pub(0, &ev);
	a = make_sub(&A, &ra);
	publish(p, "m", 0, 1);
	RUN_UNTIL(p, a, NULL, FR_GET(&fr, key_requests) >= 1, 5000);
	fake_relay_last_key_request(&fr, &q);
	cr_assert_eq(memcmp(q.requester, A.pk, RLY_ID_LEN), 0);
	key_id = rly_be32_load(&q.key_id);
	cr_assert_eq(key_id, RLY_KEY_ID(1, 0), "A asks for the key id it saw");
	randombytes_buf(key, sizeof(key));

	/* Sealed to A, but signed by M, not by the publisher it names. */
	make_response(&q, &M, A.pk, key, key_id, dgram, sizeof(dgram), &len);
	fake_relay_send_to_id(&fr, A.pk, dgram, len);
	/* Signed by the publisher, but sealed to M. */
	make_response(&q, &P, M.pk, key, key_id, dgram, sizeof(dgram), &len);
	fake_relay_send_to_id(&fr, A.pk, dgram, len);
	/* Signed by the publisher and sealed to A, but answering another request. */
	rly_be64_store(&q.request_id, rly_be64_load(&q.request_id) + 1);
	make_response(&q, &P, A.pk, key, key_id, dgram, sizeof(dgram), &len);
	fake_relay_send_to_id(&fr, A.pk, dgram, len);
	rly_be64_store(&q.request_id, rly_be64_load(&q.request_id) - 1);
	/* A refusal signed by M: were it believed, A would stop waiting and drop the message. */
	{
		struct rly_wire_key_response r;
		int n;
		memset(&r, 0, sizeof(r));
		memcpy(r.stream_key, q.stream_key, RLY_STREAM_KEY_LEN);
		r.partition = q.partition;
		r.chain = q.chain;
		r.request_id = q.request_id;
		memcpy(r.publisher, q.publisher, RLY_ID_LEN);
		memcpy(r.requester, q.requester, RLY_ID_LEN);
		rly_be16_store(&r.status, RLY_SUB_DENIED);
		rly_key_response_sign(&r, &M);
		n = rly_wire_build_control(dgram, sizeof(dgram), RLY_MSG_KEY_RESPONSE, &r);
		cr_assert_gt(n, 0);
		fake_relay_send_to_id(&fr, A.pk, dgram, (size_t)n);
	}
	run_for(p, a, NULL, 150);
	cr_assert_eq(sst(a).keys_received, 0);
	cr_assert_eq(ra.n_msgs + ra.n_bad, 0, "the message is still held");

	/* The control: signed by the publisher, sealed to A, answering it. The key is not the
	 * real one (only the publisher knows that), so the held message fails authentication. */
	make_response(&q, &P, A.pk, key, key_id, dgram, sizeof(dgram), &len);
	fake_relay_send_to_id(&fr, A.pk, dgram, len);
	RUN_UNTIL(p, a, NULL, sst(a).keys_received == 1 && ra.n_bad == 1, 5000);
	cr_assert_eq(ra.bad_reason[0], RLY_BAD_DECRYPT);
	cr_assert_eq(ra.n_msgs, 0);
	rly_sub_free(a);
	rly_pub_free(p);
}

Test(client_e2e, a_tampered_ciphertext_signed_again_by_the_publisher_fails_to_decrypt)
{
	struct key_events ev = {0};
	struct rec ra = {0};
	uint8_t d[2048];
	size_t len;
	struct rly_wire_msg_hdr *h =
	    (struct rly_wire_msg_hdr *)(d + sizeof(struct rly_wire_dgram_hdr));
	rly_pub_t *p;
	rly_sub_t *a;

	FR_SET(&fr, forward_data, 1);
	p = make_pub(0, &ev);
	a = make_sub(&A, &ra);
	warm_up(p, a, &ra);
	FR_SET(&fr, forward_data, 0);
	publish(p, "m", 0, 1);
	RUN_UNTIL(p, a, NULL, FR_GET(&fr, data_dgrams) == 2, 5000);
	len = fake_relay_captured(&fr, 1, d, sizeof(d));
	cr_assert_eq(rly_be16_load(&h->flags), RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
	((uint8_t *)(h + 1))[3] ^= 0x01;
	rly_msg_sign(&P, h); /* a valid signature over the altered ciphertext */
	cr_assert(rly_msg_verify(h));
	fake_relay_send_to_id(&fr, A.pk, d, len);
	RUN_UNTIL(p, a, NULL, ra.n_bad == 2, 5000);
	cr_assert_eq(ra.bad_reason[1], RLY_BAD_DECRYPT);
	cr_assert_eq(ra.n_msgs, 0);
	cr_assert_eq(sst(a).undecryptable, 2);
	cr_assert_eq(sst(a).bad_sig, 0);
	rly_sub_free(a);
	rly_pub_free(p);
}

Test(client_e2e, an_encrypted_publisher_needs_a_registry_and_its_payload_limit_shrinks_by_the_tag)
{
	struct rly_pub_opts o;
	rly_pub_t *p, *plain;
	uint8_t big[2048] = {0};

	memset(&o, 0, sizeof(o));
	o.relay = fr.addr;
	memcpy(o.stream_key, skey, RLY_STREAM_KEY_LEN);
	o.identity = &P;
	o.encrypt = 1;
	cr_assert_eq(rly_pub_create(&p, &o), -EINVAL);
	cr_assert_not_null(strstr(rly_client_errmsg(), "needs a registry"), "%s",
			   rly_client_errmsg());

	o.encrypt = 0;
	cr_assert_eq(rly_pub_create(&plain, &o), 0);
	cr_assert_eq(rly_pub_fd(plain), -1);
	cr_assert_eq(rly_pub_rotate(plain), -EINVAL);
	cr_assert_eq(rly_pub_rekey(plain), -EINVAL);
	cr_assert_eq(rly_pub_register(plain, 10), -EINVAL);
	cr_assert_eq(rly_pub_poll(plain, 0), 0);
	cr_assert_eq(pst(plain).key_id, 0);

	o.encrypt = 1;
	o.registry_dir = dir;
	o.bind = "127.0.0.1:0"; /* the holder takes the address, with a port of its own */
	cr_assert_eq(rly_pub_create(&p, &o), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_pub_register(p, 5000), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_pub_max_payload(p), rly_pub_max_payload(plain) - RLY_MSG_TAG_LEN);
	cr_assert_eq(rly_pub_max_payload(plain), RLY_WIRE_MAX_PAYLOAD(1472u, RLY_WIRE_SIG_LEN));
	cr_assert_eq(rly_pub_offer(p, big, rly_pub_max_payload(p) + 1), -EMSGSIZE);
	cr_assert_not_null(strstr(rly_client_errmsg(), "tag"), "%s", rly_client_errmsg());
	cr_assert_eq(rly_pub_offer(p, big, rly_pub_max_payload(p)), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_pub_offer(plain, big, rly_pub_max_payload(plain)), 0);
	cr_assert_str_eq(rly_key_event_name(RLY_KEY_EV_GRANTED), "GRANTED");
	cr_assert_str_eq(rly_key_event_name(RLY_KEY_EV_HOLDER_LOST), "HOLDER_LOST");
	cr_assert_str_eq(rly_key_event_name((enum rly_key_event)99), "UNKNOWN");
	cr_assert_str_eq(rly_sub_bad_reason_str(RLY_BAD_NO_KEY),
			 "encrypted, and this subscriber has no key that opens it");
	rly_pub_free(p);
	rly_pub_free(plain);
}

Test(client_e2e,
     register_reports_a_refused_key_holder_with_its_status_and_a_silent_relay_as_a_timeout)
{
	struct rly_pub_opts o;
	rly_pub_t *p;
	struct fake_relay *silent = &fr;
	int fd;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char addr[32];

	memset(&o, 0, sizeof(o));
	o.relay = fr.addr;
	memcpy(o.stream_key, skey, RLY_STREAM_KEY_LEN);
	o.identity = &P;
	o.encrypt = 1;
	o.registry_dir = dir;
	FR_SET(&fr, sub_status, RLY_SUB_DENIED);
	cr_assert_eq(rly_pub_create(&p, &o), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_pub_register(p, 3000), -ECONNREFUSED);
	cr_assert_not_null(strstr(rly_client_errmsg(), "refused the key holder: DENIED"), "%s",
			   rly_client_errmsg());
	/* The relay changes its mind: the background registration gets through by itself. */
	FR_SET(&fr, sub_status, RLY_SUB_OK);
	RUN_UNTIL(p, NULL, NULL, FR_GET(&fr, holder_registrations) == 1, 5000);
	cr_assert_eq(rly_pub_register(p, 10), 0);
	rly_pub_free(p);
	(void)silent;

	/* A socket that never answers. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	o.relay = addr;
	cr_assert_eq(rly_pub_create(&p, &o), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_pub_register(p, 300), -ETIMEDOUT);
	cr_assert_not_null(strstr(rly_client_errmsg(), "no answer"), "%s", rly_client_errmsg());
	rly_pub_free(p);
	close(fd);
}

Test(client_e2e, the_key_holder_registers_again_when_the_relay_forgets_it)
{
	struct key_events ev = {0};
	rly_pub_t *p;

	FR_SET(&fr, lease_ms, 600); /* heartbeats every 200 ms */
	FR_SET(&fr, heartbeat_ms, 200);
	p = make_pub(0, &ev);
	cr_assert_eq(FR_GET(&fr, holder_registrations), 1);
	FR_SET(&fr, hb_status_once, RLY_SUB_NOT_SUBSCRIBED);
	/* At least once: a process descheduled for three periods loses the lease to silence too,
	 * and registers again just the same. */
	RUN_UNTIL(p, NULL, NULL, FR_GET(&fr, hb_status_once) == 0, 5000);
	RUN_UNTIL(p, NULL, NULL, FR_GET(&fr, holder_registrations) >= 2, 5000);
	cr_assert_geq(count_events(&ev, RLY_KEY_EV_HOLDER_LOST), 1);
	RUN_UNTIL(p, NULL, NULL,
		  count_events(&ev, RLY_KEY_EV_REGISTERED) == FR_GET(&fr, holder_registrations),
		  5000);
	rly_pub_free(p);
}

Test(client_e2e, step_65535_rotates_into_a_new_generation_and_rekey_forgets_who_had_the_key)
{
	struct key_events ev = {0};
	struct rec ra = {0};
	rly_pub_t *p;
	rly_sub_t *a;

	FR_SET(&fr, forward_data, 1);
	p = make_pub(0, &ev);
	a = make_sub(&A, &ra);
	warm_up(p, a, &ra);
	/* Far ahead in one generation: A derives at most 4096 steps for a message, then asks
	 * (and, being known in this generation, gets the current step without a rotate). */
	for (unsigned i = 0; i < 5000; i++)
		cr_assert_eq(rly_pub_rotate(p), 0);
	publish(p, "far", 0, 1);
	RUN_UNTIL(p, a, NULL, ra.n_msgs == 1, 5000);
	cr_assert_eq(sst(a).keys_received, 2);
	cr_assert_eq(ra.key_id[0], RLY_KEY_ID(1, 5001));
	cr_assert_eq(pst(p).rotations, 5001);

	while (RLY_KEY_ID_STEP(pst(p).key_id) != 0xFFFF)
		cr_assert_eq(rly_pub_rotate(p), 0);
	cr_assert_eq(pst(p).rekeys, 0);
	cr_assert_eq(rly_pub_rotate(p), 0);
	cr_assert_eq(pst(p).key_id, RLY_KEY_ID(2, 0));
	cr_assert_eq(pst(p).rekeys, 1);
	cr_assert_eq(rly_pub_rekey(p), 0);
	cr_assert_eq(pst(p).key_id, RLY_KEY_ID(3, 0));
	cr_assert_eq(ev.last_ev, RLY_KEY_EV_REKEYED);
	cr_assert_eq(ev.last_key_id, RLY_KEY_ID(3, 0));
	cr_assert(!ev.last_has_who);
	/* A must ask again, and as a newcomer to generation 3 it triggers a rotate. */
	publish(p, "g3", 0, 1);
	RUN_UNTIL(p, a, NULL, sst(a).keys_received == 3, 5000);
	cr_assert_eq(pst(p).key_id, RLY_KEY_ID(3, 1));
	publish(p, "g3", 1, 1);
	RUN_UNTIL(p, a, NULL, ra.n_msgs == 2, 5000);
	cr_assert_eq(ra.key_id[1], RLY_KEY_ID(3, 1));
	rly_sub_free(a);
	rly_pub_free(p);
}

Test(client_e2e, a_chain_holds_at_most_256_messages_and_gives_up_its_oldest)
{
	struct key_events ev = {0};
	struct rec ra = {0};
	rly_pub_t *p;
	rly_sub_t *a;

	FR_SET(&fr, forward_data, 1);
	FR_SET(&fr, hold_key_responses, 1);
	p = make_pub(0, &ev);
	a = make_sub(&A, &ra);
	publish(p, "first", 0, 1);
	RUN_UNTIL(p, a, NULL, FR_GET(&fr, key_responses) >= 1, 5000);
	for (unsigned i = 0; i < 300; i++) {
		publish(p, "m", i, 1);
		if (i % 32 == 31)
			run_for(p, a, NULL, 5);
	}
	RUN_UNTIL(p, a, NULL, FR_GET(&fr, data_dgrams) == 301 && ra.n_bad == 45, 5000);
	/* The first (older step) and the 44 oldest of the 300 held. */
	cr_assert_eq(ra.bad_seq[0], 1);
	cr_assert_eq(ra.bad_seq[1], 2);
	cr_assert_eq(ra.bad_seq[44], 45);
	cr_assert_eq(ra.n_msgs, 0);
	FR_SET(&fr, hold_key_responses, 0);
	RUN_UNTIL(p, a, NULL, ra.n_msgs == 256, 5000);
	cr_assert_eq(ra.seq[0], 46);
	cr_assert_eq(ra.seq[255], 301);
	cr_assert_eq(sst(a).gaps, 0);
	rly_sub_free(a);
	rly_pub_free(p);
}

/* An encrypted message from @p pub (which has no key holder) under @p key. */
static size_t encrypted_msg(uint8_t *d, size_t cap, const struct rly_identity *pub, uint64_t seq,
			    const uint8_t key[RLY_GROUP_KEY_LEN])
{
	struct rly_wire_msg_hdr *h =
	    (struct rly_wire_msg_hdr *)(d + sizeof(struct rly_wire_dgram_hdr));
	size_t len =
	    sizeof(struct rly_wire_dgram_hdr) + sizeof(*h) + 5 + RLY_MSG_TAG_LEN + RLY_WIRE_SIG_LEN;

	cr_assert_leq(len, cap);
	memset(d, 0, len);
	memcpy(h->stream_key, skey, RLY_STREAM_KEY_LEN);
	rly_be32_store(&h->partition, PARTITION);
	rly_be32_store(&h->chain, 77);
	memcpy(h->publisher, pub->pk, RLY_ID_LEN);
	rly_be64_store(&h->seq, seq);
	rly_be64_store(&h->prev_seq, seq - 1);
	rly_be32_store(&h->key_id, RLY_KEY_ID(1, 0));
	rly_be16_store(&h->flags, RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
	rly_be16_store(&h->payload_len, 5 + RLY_MSG_TAG_LEN);
	rly_be16_store(&h->sig_len, RLY_WIRE_SIG_LEN);
	memcpy(h + 1, "hello", 5);
	rly_msg_encrypt(h, key);
	rly_msg_sign(pub, h);
	rly_wire_put_dgram_hdr(d, RLY_MSG_DATA, (uint16_t)len, 1);
	return len;
}

Test(client_e2e, with_no_key_holder_a_subscriber_retries_with_back_off_then_gives_up_and_asks_again,
     .timeout = 60)
{
	struct rec ra = {0};
	uint8_t key[RLY_GROUP_KEY_LEN], d[512];
	size_t len;
	rly_sub_t *a;
	uint64_t asked;

	randombytes_buf(key, sizeof(key));
	a = make_sub(&A, &ra);
	len = encrypted_msg(d, sizeof(d), &P, 1, key);
	fake_relay_send_to_id(&fr, A.pk, d, len);
	/* Sent at 0, then after 0.2, 0.6, 1.4, 3.0, 6.2 s: six requests before the give-up at 10 s,
	 * each answered UNAVAILABLE (unsigned), which never ends the wait. */
	RUN_UNTIL(NULL, a, NULL, ra.n_bad == 1, 15000);
	cr_assert_eq(ra.bad_reason[0], RLY_BAD_NO_KEY);
	asked = sst(a).key_requests;
	cr_assert_geq(asked, 3, "a few, however slowly this process was scheduled");
	cr_assert_leq(asked, 7, "back-off: not one per poll");
	cr_assert_eq(FR_GET(&fr, key_no_holder), asked);
	/* A new message asks again at once. */
	len = encrypted_msg(d, sizeof(d), &P, 2, key);
	fake_relay_send_to_id(&fr, A.pk, d, len);
	RUN_UNTIL(NULL, a, NULL, sst(a).key_requests == asked + 1, 2000);
	cr_assert_eq(ra.n_bad, 1, "held again, not reported yet");
	rly_sub_free(a);
}
