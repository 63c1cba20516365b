/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key routing in relay-control (docs/encryption.md section 3), driven through the subscription
 * service with a fake clock and a fake dataplane: key holders register on RLY_KEY_HOLDER_PARTITION
 * (signed, with PUBLISH under a registry, never a dataplane command), KEY_REQUESTs pass the checks
 * in order or are dropped silently, go token-zeroed to at most 4 holders of the publisher, and the
 * first KEY_RESPONSE from such a holder goes back unchanged. Requests and responses are real:
 * signed with rly_key_request_sign / rly_key_response_sign by crypto_sign_keypair identities.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "control/key_holders.h"
#include "control/keyroute.h"
#include "control/log.h"
#include "control/subscriptions.h"
#include "security/e2e.h"
#include "security/identity.h"
#include "security/registry.h"
#include "test_control_fake_dp.h"
#include "test_control_helpers.h"

#define HOLDER RLY_KEY_HOLDER_PARTITION

static struct tc_fake_dp dp;

static struct rly_ctl_subs *subs;
static struct rly_registry *reg;
static FILE *log_file;
static char dir[64];
static struct rly_identity owner, pub, alice, bob;
static char stream[RLY_STREAM_NAME_MAX + 1];
static uint8_t key[RLY_STREAM_KEY_LEN];   /* the registry's stream, owned by `owner` */
static uint8_t other[RLY_STREAM_KEY_LEN]; /* another stream */
static uint64_t clock_s = 1800000000;
static const uint8_t secret[RLY_CTL_SECRET_LEN] = {5, 4, 3, 2, 1};

static uint64_t test_now(void)
{
	return clock_s;
}

static uint64_t ctr(enum rly_ctr id)
{
	return rly_ctl_subs_counters(subs)->v[id];
}

static void make_subs(const struct rly_ctl_subs_cfg *cfg)
{
	struct rly_ctl_subs_io io = tc_fake_io(&dp);

	rly_ctl_subs_free(subs);
	cr_assert_eq(rly_ctl_subs_create(&subs, cfg, secret, &io), 0);
}

/* Grants on `stream`: @p n identities with @p perms each; then load and use the registry. */
static void write_grants(const struct rly_identity *const *ids, const uint32_t *perms, unsigned n)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/test.grants", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	for (unsigned i = 0; i < n; i++)
		tc_write_grant(f, stream, &owner, ids[i], perms[i], clock_s - 10, clock_s + 3600);
	fclose(f);
	rly_registry_free(reg);
	reg = NULL;
	cr_assert_geq(rly_registry_load(&reg, dir, NULL, NULL), 0);
	rly_ctl_subs_set_registry(subs, reg, test_now);
}

static void setup(void)
{
	struct rly_ctl_subs_cfg cfg = RLY_CTL_SUBS_CFG_DEFAULT;
	char hex[2 * RLY_ID_LEN + 1];
	uint8_t own[RLY_ID_LEN];

	memset(&dp, 0, sizeof(dp));
	dp.next_seq = 100;
	subs = NULL;
	reg = NULL;
	log_file = tmpfile();
	cr_assert_not_null(log_file);
	rly_ctl_log_open(log_file, "unit", RLY_LOG_DEBUG);
	make_subs(&cfg);
	snprintf(dir, sizeof(dir), "/tmp/rly-ctlkeys-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	crypto_sign_keypair(owner.pk, owner.sk);
	crypto_sign_keypair(pub.pk, pub.sk);
	crypto_sign_keypair(alice.pk, alice.sk);
	crypto_sign_keypair(bob.pk, bob.sk);
	rly_pk_format(owner.pk, hex);
	snprintf(stream, sizeof(stream), "%s/prices", hex);
	cr_assert_eq(rly_stream_name_parse(stream, own, key), 0);
	memcpy(other, key, sizeof(other));
	other[0] ^= 0xff;
}

static void teardown(void)
{
	char cmd[128];

	rly_ctl_subs_free(subs);
	subs = NULL;
	rly_registry_free(reg);
	rly_ctl_log_open(NULL, "unit", RLY_LOG_INFO);
	fclose(log_file);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(control_keys, .init = setup, .fini = teardown);

/* ---- building traffic ---- */

static void punt_body(struct rly_pkt_rec *rec, unsigned type, const void *body, const char *ip,
		      uint16_t port)
{
	tc_punt(rec, type, body, ip, port);
	cr_assert_gt(rec->len, 0);
}

static void feed(const struct rly_pkt_rec *rec, uint64_t now_ms)
{
	cr_assert_eq(rly_ctl_subs_on_packet(subs, rec, now_ms), 0);
}

static void subscribe_body(struct rly_wire_subscribe *b, const uint8_t *stream_key,
			   uint32_t partition, uint64_t issued, const uint8_t *cookie,
			   const uint8_t *who)
{
	memset(b, 0, sizeof(*b));
	memcpy(b->stream_key, stream_key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&b->partition, partition);
	rly_be32_store(&b->lease_ms, 10000);
	rly_be64_store(&b->request_id, 42);
	rly_be64_store(&b->issued_ms, issued);
	if (cookie)
		memcpy(b->cookie, cookie, RLY_COOKIE_LEN);
	if (who)
		memcpy(b->subscriber, who, RLY_ID_LEN);
}

/*
 * The handshake from ip:port on (stream_key, partition) at 1000/1001 ms, answered with
 * SUBSCRIBE_SIGNED by @p id (plain SUBSCRIBE when NULL). A subscription's SUB_ADD is answered OK.
 * Returns the SUB_ACK's status (-1: none) and its token in @p tok.
 */
static int handshake(const char *ip, uint16_t port, const uint8_t *stream_key, uint32_t partition,
		     const struct rly_identity *id, uint8_t tok[RLY_COOKIE_LEN])
{
	struct rly_pkt_rec rec;
	struct rly_wire_subscribe b;
	const struct rly_wire_challenge *ch;
	const struct rly_wire_ack *a = NULL;
	unsigned sent, cmds;

	subscribe_body(&b, stream_key, partition, 0, NULL, id ? id->pk : NULL);
	punt_body(&rec, RLY_MSG_SUBSCRIBE, &b, ip, port);
	sent = dp.n_sent;
	feed(&rec, 1000);
	cr_assert_eq(dp.n_sent, sent + 1);
	ch = tc_body(&dp.sent[sent], RLY_MSG_CHALLENGE);
	cr_assert_not_null(ch);

	subscribe_body(&b, stream_key, partition, rly_be64_load(&ch->issued_ms), ch->cookie,
		       id ? id->pk : NULL);
	if (id) {
		struct rly_wire_subscribe_signed ss;
		uint8_t msg[sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1 + sizeof(b)];
		ss.sub = b;
		memcpy(msg, RLY_SUBSCRIBE_SIG_CONTEXT, sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1);
		memcpy(msg + sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1, &b, sizeof(b));
		crypto_sign_detached(ss.sig, NULL, msg, sizeof(msg), id->sk);
		punt_body(&rec, RLY_MSG_SUBSCRIBE_SIGNED, &ss, ip, port);
	} else {
		punt_body(&rec, RLY_MSG_SUBSCRIBE, &b, ip, port);
	}
	sent = dp.n_sent;
	cmds = dp.n_cmds;
	feed(&rec, 1001);
	if (dp.n_cmds > cmds) {
		struct rly_event ev;
		cr_assert_neq(partition, HOLDER, "a key holder never makes a dataplane command");
		cr_assert_eq(dp.cmds[cmds].op, RLY_CMD_SUB_ADD);
		memset(&ev, 0, sizeof(ev));
		ev.op = RLY_EV_DONE;
		ev.seq = dp.cmds[cmds].seq;
		ev.status = RLY_CMD_OK;
		rly_ctl_subs_on_event(subs, &ev, 1002);
	}
	if (dp.n_sent == sent)
		return -1;
	cr_assert_eq(dp.n_sent, sent + 1);
	a = tc_body(&dp.sent[sent], RLY_MSG_SUB_ACK);
	cr_assert_not_null(a);
	if (tok)
		memcpy(tok, a->token, RLY_COOKIE_LEN);
	return rly_be16_load(&a->status);
}

/* Register a key holder from ip:7000 on `key` as @p id; asserts it was accepted. */
static void holder(const char *ip, const struct rly_identity *id, uint8_t tok[RLY_COOKIE_LEN])
{
	cr_assert_eq(handshake(ip, 7000, key, HOLDER, id, tok), RLY_SUB_OK);
}

/* Subscribe from ip:5000 on (`key`, 0) as @p id; asserts it was accepted. */
static void subscriber(const char *ip, const struct rly_identity *id,
		       uint8_t tok[RLY_COOKIE_LEN])
{
	cr_assert_eq(handshake(ip, 5000, key, 0, id, tok), RLY_SUB_OK);
}

/* A request by @p id for `pub`'s keys on (`key`, 0), chain 3, carrying @p tok. */
static void request(struct rly_wire_key_request *r, const struct rly_identity *id,
		    uint64_t request_id, const uint8_t tok[RLY_COOKIE_LEN])
{
	memset(r, 0, sizeof(*r));
	memcpy(r->stream_key, key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&r->chain, 3);
	rly_be64_store(&r->request_id, request_id);
	memcpy(r->publisher, pub.pk, RLY_ID_LEN);
	rly_key_request_sign(r, id);
	memcpy(r->token, tok, RLY_COOKIE_LEN);
}

/* What a key holder answers to @p r: OK with a sealed key, signed by @p as. */
static void response(struct rly_wire_key_response *a, const struct rly_wire_key_request *r,
		     const struct rly_identity *as)
{
	static const uint8_t group_key[RLY_GROUP_KEY_LEN] = {1, 2, 3};

	memset(a, 0, sizeof(*a));
	memcpy(a->stream_key, r->stream_key, RLY_STREAM_KEY_LEN);
	a->partition = r->partition;
	a->chain = r->chain;
	rly_be32_store(&a->key_id, RLY_KEY_ID(1, 0));
	rly_be16_store(&a->status, RLY_SUB_OK);
	a->request_id = r->request_id;
	memcpy(a->publisher, r->publisher, RLY_ID_LEN);
	memcpy(a->requester, r->requester, RLY_ID_LEN);
	cr_assert_eq(rly_key_seal(a->sealed, RLY_KEY_ID(1, 0), group_key, r->requester), 0);
	rly_key_response_sign(a, as);
}

static void send_request(const struct rly_wire_key_request *r, const char *ip, uint16_t port,
			 uint64_t now_ms)
{
	struct rly_pkt_rec rec;

	punt_body(&rec, RLY_MSG_KEY_REQUEST, r, ip, port);
	feed(&rec, now_ms);
}

static void log_has(const char *needle)
{
	cr_assert_not_null(strstr(tc_log_text(log_file), needle), "log has no '%s'", needle);
}

static struct rly_ctl_sub_key holder_key(const char *ip)
{
	struct rly_ctl_sub_key k;

	rly_ctl_sub_key_make(&k, key, HOLDER, tc_ip(ip), htons(7000));
	return k;
}

/* ---- key holders ---- */

Test(control_keys, a_key_holder_that_does_not_sign_is_denied)
{
	int st = handshake("10.0.1.1", 7000, key, HOLDER, NULL, NULL);

	cr_assert_eq(st, RLY_SUB_DENIED);
	cr_assert_eq(rly_ctl_keys_holders(rly_ctl_subs_keys(subs)), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_DENIED), 1);
	cr_assert_eq(dp.n_cmds, 0);
	log_has("a key holder must sign");
}

Test(control_keys, under_a_registry_only_an_identity_with_publish_holds_keys)
{
	const struct rly_identity *ids[] = {&pub, &alice};
	const uint32_t perms[] = {RLY_PERM_PUBLISH, RLY_PERM_SUBSCRIBE};
	uint8_t tok[RLY_COOKIE_LEN];

	write_grants(ids, perms, 2);
	cr_assert_eq(handshake("10.0.1.1", 7000, key, HOLDER, &alice, NULL), RLY_SUB_DENIED);
	log_has("no publish permission");
	cr_assert_eq(handshake("10.0.1.2", 7000, key, HOLDER, &bob, NULL), RLY_SUB_DENIED);
	cr_assert_eq(rly_ctl_keys_holders(rly_ctl_subs_keys(subs)), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_HOLDERS), 0);

	holder("10.0.1.3", &pub, tok);
	cr_assert_eq(rly_ctl_keys_holders(rly_ctl_subs_keys(subs)), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_HOLDERS), 1);
	cr_assert_eq(dp.n_cmds, 0, "no SUB_ADD (or anything else) for a key holder");
	cr_assert_eq(rly_ctl_subs_count(subs), 0, "not a subscription");
	log_has("\"event\":\"key_holder_added\"");
}

Test(control_keys, without_a_registry_any_signed_identity_holds_keys_at_once)
{
	uint8_t tok[RLY_COOKIE_LEN], want[RLY_COOKIE_LEN];
	const struct rly_wire_ack *a;
	struct rly_ctl_sub_key hk = holder_key("10.0.1.1");

	holder("10.0.1.1", &bob, tok);
	a = tc_body(&dp.sent[dp.n_sent - 1], RLY_MSG_SUB_ACK);
	cr_assert_eq(rly_be32_load(&a->partition), HOLDER);
	cr_assert_eq(rly_be32_load(&a->lease_ms), 10000);
	cr_assert_eq(rly_be32_load(&a->heartbeat_ms), 3333);
	rly_ctl_subs_token(subs, tc_ip("10.0.1.1"), htons(7000), key, HOLDER, want);
	cr_assert_arr_eq(tok, want, RLY_COOKIE_LEN);
	cr_assert_eq(rly_ctl_keys_holder_expiry(rly_ctl_subs_keys(subs), &hk), 1001 + 10000);
	cr_assert_eq(dp.n_cmds, 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_HOLDERS), 1);
}

Test(control_keys, a_holder_heartbeat_renews_and_an_unknown_holder_is_told_to_register)
{
	uint8_t tok[RLY_COOKIE_LEN], tok2[RLY_COOKIE_LEN], bad[RLY_COOKIE_LEN] = {0};
	struct rly_ctl_sub_key hk = holder_key("10.0.1.1");
	const struct rly_wire_ack *a;
	struct rly_pkt_rec rec;
	unsigned sent;

	holder("10.0.1.1", &pub, tok);
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.1.1", 7000, HOLDER, 9, tok);
	memcpy(rec.data + sizeof(struct rly_wire_dgram_hdr), key, RLY_STREAM_KEY_LEN);
	rec.port_id = 1; /* e.g. a restarted relay sees it on another port */
	sent = dp.n_sent;
	feed(&rec, 6000);
	cr_assert_eq(dp.n_sent, sent + 1);
	a = tc_body(&dp.sent[sent], RLY_MSG_HEARTBEAT_ACK);
	cr_assert_not_null(a);
	cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_OK);
	cr_assert_eq(rly_be32_load(&a->lease_ms), 10000);
	cr_assert_eq(rly_ctl_keys_holder_expiry(rly_ctl_subs_keys(subs), &hk), 16000);
	cr_assert_eq(dp.sent[sent].port_id, 1);

	/* Requests now go where the heartbeat came from. */
	struct rly_wire_key_request kr;
	uint8_t sub_tok[RLY_COOKIE_LEN];
	subscriber("10.0.0.1", &alice, sub_tok);
	request(&kr, &alice, 1, sub_tok);
	sent = dp.n_sent;
	send_request(&kr, "10.0.0.1", 5000, 6000);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(dp.sent[sent].ip_be, tc_ip("10.0.1.1"));
	cr_assert_eq(dp.sent[sent].port_id, 1);

	/* The holder's first lease ended at 11001; the subscriber's ends at 11002. */
	cr_assert_eq(rly_ctl_subs_tick(subs, 11001), 1, "the request's timeout, nothing else");
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_TIMEOUTS), 1);
	cr_assert_eq(rly_ctl_keys_holders(rly_ctl_subs_keys(subs)), 1, "renewed: still there");

	/* A wrong token: silence. */
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.1.1", 7000, HOLDER, 9, bad);
	memcpy(rec.data + sizeof(struct rly_wire_dgram_hdr), key, RLY_STREAM_KEY_LEN);
	sent = dp.n_sent;
	feed(&rec, 6001);
	cr_assert_eq(dp.n_sent, sent);
	cr_assert_eq(ctr(RLY_CTR_CTL_BAD_TOKEN), 1);

	/* A good token for an address that never registered (a relay-control restart forgot it). */
	rly_ctl_subs_token(subs, tc_ip("10.0.1.2"), htons(7000), key, HOLDER, tok2);
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.1.2", 7000, HOLDER, 9, tok2);
	memcpy(rec.data + sizeof(struct rly_wire_dgram_hdr), key, RLY_STREAM_KEY_LEN);
	feed(&rec, 6002);
	cr_assert_eq(dp.n_sent, sent + 1);
	a = tc_body(&dp.sent[sent], RLY_MSG_HEARTBEAT_ACK);
	cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_NOT_SUBSCRIBED);
	cr_assert_eq(dp.n_cmds, 1, "the subscriber's SUB_ADD only");
}

Test(control_keys, expiry_and_unsubscribe_remove_holders_and_the_gauge_follows)
{
	uint8_t t1[RLY_COOKIE_LEN], t2[RLY_COOKIE_LEN];
	const struct rly_wire_ack *a;
	struct rly_pkt_rec rec;
	unsigned sent;

	holder("10.0.1.1", &pub, t1);
	holder("10.0.1.2", &pub, t2);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_HOLDERS), 2);

	/* Renew the second only, then let the first run out. */
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.1.2", 7000, HOLDER, 1, t2);
	memcpy(rec.data + sizeof(struct rly_wire_dgram_hdr), key, RLY_STREAM_KEY_LEN);
	feed(&rec, 9000);
	cr_assert_eq(rly_ctl_subs_tick(subs, 11000), 0);
	cr_assert_eq(rly_ctl_subs_tick(subs, 11001), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_HOLDERS), 1);
	log_has("\"reason\":\"expired\"");

	tc_ref(&rec, RLY_MSG_UNSUBSCRIBE, "10.0.1.2", 7000, HOLDER, 2, t2);
	memcpy(rec.data + sizeof(struct rly_wire_dgram_hdr), key, RLY_STREAM_KEY_LEN);
	sent = dp.n_sent;
	feed(&rec, 11002);
	a = tc_body(&dp.sent[sent], RLY_MSG_UNSUB_ACK);
	cr_assert_not_null(a);
	cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_OK);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_HOLDERS), 0);
	log_has("\"reason\":\"unsubscribed\"");

	sent = dp.n_sent;
	feed(&rec, 11003);
	a = tc_body(&dp.sent[sent], RLY_MSG_UNSUB_ACK);
	cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_NOT_SUBSCRIBED);
	cr_assert_eq(dp.n_cmds, 0, "no SUB_DEL for a key holder");
}

Test(control_keys, revalidate_removes_a_holder_whose_identity_lost_publish)
{
	const struct rly_identity *ids[] = {&pub, &bob};
	const uint32_t both[] = {RLY_PERM_PUBLISH, RLY_PERM_PUBLISH};
	const uint32_t only_pub[] = {RLY_PERM_PUBLISH};

	write_grants(ids, both, 2);
	holder("10.0.1.1", &pub, NULL);
	holder("10.0.1.2", &bob, NULL);
	cr_assert_eq(rly_ctl_subs_revalidate(subs), 0);
	write_grants(ids, only_pub, 1);
	cr_assert_eq(rly_ctl_subs_revalidate(subs), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_HOLDERS), 1);
	struct rly_ctl_sub_key gone = holder_key("10.0.1.2"), kept = holder_key("10.0.1.1");
	cr_assert_eq(rly_ctl_keys_holder_expiry(rly_ctl_subs_keys(subs), &gone), 0);
	cr_assert_neq(rly_ctl_keys_holder_expiry(rly_ctl_subs_keys(subs), &kept), 0);
	log_has("\"reason\":\"revoked\"");
	cr_assert_eq(dp.n_cmds, 0);
}

/* ---- requests ---- */

Test(control_keys, requests_failing_a_check_are_dropped_silently_and_counted)
{
	struct rly_wire_key_request r;
	uint8_t tok_a[RLY_COOKIE_LEN], tok_anon[RLY_COOKIE_LEN], bad[RLY_COOKIE_LEN];
	unsigned sent;

	holder("10.0.1.1", &pub, NULL);
	subscriber("10.0.0.1", &alice, tok_a);
	subscriber("10.0.0.2", NULL, tok_anon);
	sent = dp.n_sent;

	/* No subscription from this port. */
	request(&r, &alice, 1, tok_a);
	send_request(&r, "10.0.0.1", 5001, 2000);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REFUSED), 1);
	/* Another partition than the subscription's. */
	rly_be32_store(&r.partition, 1);
	rly_key_request_sign(&r, &alice);
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REFUSED), 2);
	/* A wrong token. */
	memcpy(bad, tok_a, sizeof(bad));
	bad[0] ^= 1;
	request(&r, &alice, 1, bad);
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REFUSED), 3);
	/* A subscription made with a plain SUBSCRIBE proves nobody. */
	request(&r, &alice, 1, tok_anon);
	send_request(&r, "10.0.0.2", 5000, 2000);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REFUSED), 4);
	/* Bob signs, but alice proved the subscription. */
	request(&r, &bob, 1, tok_a);
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REFUSED), 5);
	/* Alice's request, changed after she signed it. */
	request(&r, &alice, 1, tok_a);
	rly_be32_store(&r.chain, 4);
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REFUSED), 6);

	cr_assert_eq(dp.n_sent, sent, "no answer to anything, and nothing forwarded");
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REQUESTS), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_NO_HOLDER), 0);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 0);
	log_has("\"reason\":\"no_subscription\"");
	log_has("\"reason\":\"bad_token\"");
	log_has("\"reason\":\"not_proven\"");
	log_has("\"reason\":\"other_requester\"");
	log_has("\"reason\":\"bad_signature\"");

	/* The control: the same request, intact, is forwarded. */
	request(&r, &alice, 1, tok_a);
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REQUESTS), 1);
}

Test(control_keys, requests_over_the_source_rate_are_dropped)
{
	struct rly_ctl_subs_cfg cfg = RLY_CTL_SUBS_CFG_DEFAULT;
	struct rly_wire_key_request r;
	uint8_t tok[RLY_COOKIE_LEN];
	unsigned sent;

	cfg.sub_rate_per_s = 1;
	cfg.sub_burst = 4; /* two for the handshake, two for requests */
	make_subs(&cfg);
	subscriber("10.0.0.1", &alice, tok);
	request(&r, &alice, 1, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 1002);
	send_request(&r, "10.0.0.1", 5000, 1002);
	cr_assert_eq(dp.n_sent, sent + 2, "two UNAVAILABLE answers");
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_NO_HOLDER), 2);
	send_request(&r, "10.0.0.1", 5000, 1002);
	cr_assert_eq(dp.n_sent, sent + 2);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REFUSED), 1);
	log_has("\"reason\":\"rate_limited\"");
}

Test(control_keys, a_subscription_rebuilt_by_a_resync_is_not_proof_until_it_subscribes_again)
{
	struct rly_wire_key_request r;
	struct rly_event ev;
	struct rly_pkt_rec rec;
	const struct rly_wire_ack *a;
	uint8_t tok[RLY_COOKIE_LEN];
	const struct rly_cmd *dump;
	unsigned sent;

	holder("10.0.1.1", &pub, NULL);
	subscriber("10.0.0.1", &alice, tok);
	cr_assert_eq(rly_ctl_subs_resync_begin(subs, 1500), 0);
	dump = &dp.cmds[dp.n_cmds - 1];
	memset(&ev, 0, sizeof(ev));
	ev.op = RLY_EV_DUMP_ENTRY;
	ev.seq = dump->seq;
	memcpy(ev.stream_key, key, RLY_STREAM_KEY_LEN);
	ev.ep.ip_be = tc_ip("10.0.0.1");
	ev.ep.udp_port_be = htons(5000);
	rly_ctl_subs_on_event(subs, &ev, 1500);
	ev.op = RLY_EV_DUMP_END;
	ev.count = 1;
	rly_ctl_subs_on_event(subs, &ev, 1500);
	cr_assert(rly_ctl_subs_ready(subs));
	cr_assert_eq(rly_ctl_keys_holders(rly_ctl_subs_keys(subs)), 1, "holders outlive a resync");

	request(&r, &alice, 1, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(dp.n_sent, sent);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REFUSED), 1);
	log_has("\"reason\":\"not_proven\"");

	/* Its next heartbeat asks it to subscribe again, with proof this time. */
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.0.1", 5000, 0, 1, tok);
	memcpy(rec.data + sizeof(struct rly_wire_dgram_hdr), key, RLY_STREAM_KEY_LEN);
	feed(&rec, 2001);
	a = tc_body(&dp.sent[sent], RLY_MSG_HEARTBEAT_ACK);
	cr_assert_not_null(a);
	cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_NOT_SUBSCRIBED);
	subscriber("10.0.0.1", &alice, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 2002);
	cr_assert_eq(dp.n_sent, sent + 1, "forwarded once proven again");
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REQUESTS), 1);
}

Test(control_keys, with_no_holder_the_relay_answers_unavailable_unsigned)
{
	static const uint8_t zero[RLY_KEY_SEALED_LEN + RLY_WIRE_SIG_LEN];
	struct rly_wire_key_request r;
	const struct rly_wire_key_response *a;
	uint8_t tok[RLY_COOKIE_LEN];
	unsigned sent;

	holder("10.0.1.1", &bob, NULL); /* a holder, but of another identity */
	subscriber("10.0.0.1", &alice, tok);
	request(&r, &alice, 77, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(dp.sent[sent].ip_be, tc_ip("10.0.0.1"));
	cr_assert_eq(dp.sent[sent].udp_port_be, htons(5000));
	a = tc_body(&dp.sent[sent], RLY_MSG_KEY_RESPONSE);
	cr_assert_not_null(a);
	cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_UNAVAILABLE);
	cr_assert_eq(rly_be32_load(&a->key_id), 0);
	cr_assert_eq(rly_be64_load(&a->request_id), 77);
	cr_assert_eq(rly_be32_load(&a->chain), 3);
	cr_assert_arr_eq(a->stream_key, key, RLY_STREAM_KEY_LEN);
	cr_assert_arr_eq(a->publisher, pub.pk, RLY_ID_LEN);
	cr_assert_arr_eq(a->requester, alice.pk, RLY_ID_LEN);
	cr_assert_arr_eq(a->sealed, zero, RLY_KEY_SEALED_LEN);
	cr_assert_arr_eq(a->sig, zero, RLY_WIRE_SIG_LEN);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_NO_HOLDER), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REQUESTS), 0);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 0);
}

Test(control_keys, a_request_goes_token_zeroed_to_at_most_four_holders_of_the_publisher)
{
	struct rly_wire_key_request r;
	struct rly_pkt_rec orig;
	uint8_t tok[RLY_COOKIE_LEN];
	char ip[32];
	unsigned sent, seen = 0;
	const size_t tok_at = sizeof(struct rly_wire_dgram_hdr) +
			      offsetof(struct rly_wire_key_request, token);

	for (unsigned i = 1; i <= 6; i++) {
		snprintf(ip, sizeof(ip), "10.0.1.%u", i);
		holder(ip, &pub, NULL);
	}
	holder("10.0.2.1", &bob, NULL);
	cr_assert_eq(handshake("10.0.2.2", 7000, other, HOLDER, &pub, NULL), RLY_SUB_OK);
	subscriber("10.0.0.1", &alice, tok);

	request(&r, &alice, 5, tok);
	punt_body(&orig, RLY_MSG_KEY_REQUEST, &r, "10.0.0.1", 5000);
	sent = dp.n_sent;
	feed(&orig, 2000);
	cr_assert_eq(dp.n_sent, sent + 4);
	for (unsigned i = sent; i < dp.n_sent; i++) {
		const struct rly_pkt_rec *o = &dp.sent[i];
		uint32_t ip_h = ntohl(o->ip_be);
		cr_assert_eq(ip_h >> 8, (10u << 16) | 1u, "only pub's holders on this stream");
		cr_assert(ip_h % 256 >= 1 && ip_h % 256 <= 6);
		cr_assert_eq(seen & (1u << (ip_h % 256)), 0, "each holder once");
		seen |= 1u << (ip_h % 256);
		cr_assert_eq(o->udp_port_be, htons(7000));
		cr_assert_arr_eq(o->mac, tc_mac, 6);
		cr_assert_eq(o->len, orig.len);
		cr_assert_arr_eq(o->data, orig.data, tok_at, "identical before the token");
		for (unsigned j = 0; j < RLY_COOKIE_LEN; j++)
			cr_assert_eq(o->data[tok_at + j], 0, "token zeroed");
		cr_assert_arr_eq(o->data + tok_at + RLY_COOKIE_LEN,
				 orig.data + tok_at + RLY_COOKIE_LEN,
				 orig.len - tok_at - RLY_COOKIE_LEN, "identical after the token");
		cr_assert(rly_key_request_verify(tc_body(o, RLY_MSG_KEY_REQUEST)),
			  "the holder can still check the requester's signature");
	}
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REQUESTS), 1);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 1);

	/* A retransmission is forwarded again and refreshes the same entry. */
	feed(&orig, 4000);
	cr_assert_eq(dp.n_sent, sent + 8);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 1);
	cr_assert_eq(rly_ctl_subs_tick(subs, 7000), 0, "deadline moved by the retransmission");
	cr_assert_eq(rly_ctl_subs_tick(subs, 9000), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_TIMEOUTS), 1);
}

/* ---- responses ---- */

Test(control_keys, only_the_first_response_from_a_holder_of_the_publisher_reaches_the_subscriber)
{
	struct rly_wire_key_request r;
	struct rly_wire_key_response a;
	struct rly_pkt_rec rec;
	uint8_t tok[RLY_COOKIE_LEN];
	unsigned sent;

	holder("10.0.1.1", &pub, NULL);
	holder("10.0.1.2", &bob, NULL);
	subscriber("10.0.0.1", &alice, tok);
	request(&r, &alice, 5, tok);
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 1);
	response(&a, &r, &pub);
	sent = dp.n_sent;

	/* From an address that holds nothing (even with pub's real signature). */
	punt_body(&rec, RLY_MSG_KEY_RESPONSE, &a, "10.0.9.9", 7000);
	feed(&rec, 2100);
	/* From bob's holder: registered, but not as the publisher named. */
	punt_body(&rec, RLY_MSG_KEY_RESPONSE, &a, "10.0.1.2", 7000);
	feed(&rec, 2100);
	/* From pub's holder, for a request nobody made. */
	rly_be64_store(&a.request_id, 6);
	rly_key_response_sign(&a, &pub);
	punt_body(&rec, RLY_MSG_KEY_RESPONSE, &a, "10.0.1.1", 7000);
	feed(&rec, 2100);
	/* From pub's holder, for another requester with the same request id. */
	response(&a, &r, &pub);
	memcpy(a.requester, bob.pk, RLY_ID_LEN);
	rly_key_response_sign(&a, &pub);
	punt_body(&rec, RLY_MSG_KEY_RESPONSE, &a, "10.0.1.1", 7000);
	feed(&rec, 2100);
	cr_assert_eq(dp.n_sent, sent);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_UNEXPECTED), 4);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 1, "still waiting");
	log_has("\"reason\":\"not_a_key_holder\"");
	log_has("\"reason\":\"holder_of_another_identity\"");
	log_has("\"reason\":\"no_pending_request\"");

	/* The right one, byte for byte. */
	response(&a, &r, &pub);
	punt_body(&rec, RLY_MSG_KEY_RESPONSE, &a, "10.0.1.1", 7000);
	rec.port_id = 1;
	feed(&rec, 2200);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(dp.sent[sent].ip_be, tc_ip("10.0.0.1"));
	cr_assert_eq(dp.sent[sent].udp_port_be, htons(5000));
	cr_assert_eq(dp.sent[sent].port_id, 0, "the subscriber's port, not the holder's");
	cr_assert_arr_eq(dp.sent[sent].mac, tc_mac, 6);
	cr_assert_eq(dp.sent[sent].len, rec.len);
	cr_assert_arr_eq(dp.sent[sent].data, rec.data, rec.len);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_RESPONSES), 1);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 0);

	/* A second answer to the same request: the first one won. */
	feed(&rec, 2300);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_UNEXPECTED), 5);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_RESPONSES), 1);
	cr_assert_eq(rly_ctl_subs_tick(subs, 8000), 0, "nothing left to time out");
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_TIMEOUTS), 0);
}

Test(control_keys, an_unanswered_request_times_out_and_a_late_answer_is_dropped)
{
	struct rly_wire_key_request r;
	struct rly_wire_key_response a;
	struct rly_pkt_rec rec;
	uint8_t tok[RLY_COOKIE_LEN];
	unsigned sent;

	holder("10.0.1.1", &pub, NULL);
	subscriber("10.0.0.1", &alice, tok);
	request(&r, &alice, 5, tok);
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(rly_ctl_subs_tick(subs, 6999), 0);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 1);
	cr_assert_eq(rly_ctl_subs_tick(subs, 7000), 1);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_TIMEOUTS), 1);

	response(&a, &r, &pub);
	punt_body(&rec, RLY_MSG_KEY_RESPONSE, &a, "10.0.1.1", 7000);
	sent = dp.n_sent;
	feed(&rec, 7001);
	cr_assert_eq(dp.n_sent, sent);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_UNEXPECTED), 1);
}

Test(control_keys, a_full_pending_table_answers_rate_limited)
{
	struct rly_ctl_subs_cfg cfg = RLY_CTL_SUBS_CFG_DEFAULT;
	struct rly_wire_key_request r;
	const struct rly_wire_key_response *a;
	uint8_t tok[RLY_COOKIE_LEN];
	unsigned sent;

	cfg.key_pending_max = 2;
	make_subs(&cfg);
	holder("10.0.1.1", &pub, NULL);
	subscriber("10.0.0.1", &alice, tok);
	request(&r, &alice, 1, tok);
	send_request(&r, "10.0.0.1", 5000, 2000);
	request(&r, &alice, 2, tok);
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 2);

	request(&r, &alice, 3, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(dp.sent[sent].ip_be, tc_ip("10.0.0.1"));
	a = tc_body(&dp.sent[sent], RLY_MSG_KEY_RESPONSE);
	cr_assert_not_null(a);
	cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_RATE_LIMITED);
	cr_assert_eq(rly_be64_load(&a->request_id), 3);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_REQUESTS), 2);
	log_has("key_pending_full");

	/* A retransmission of a remembered request needs no new room. */
	request(&r, &alice, 1, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 2001);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(dp.sent[sent].ip_be, tc_ip("10.0.1.1"), "forwarded to the holder");

	/* Room again once the others time out. */
	cr_assert_eq(rly_ctl_subs_tick(subs, 7000), 1);
	request(&r, &alice, 3, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 7000);
	cr_assert_eq(dp.sent[sent].ip_be, tc_ip("10.0.1.1"));
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 2);
}

Test(control_keys, a_full_holder_table_answers_table_full)
{
	struct rly_ctl_subs_cfg cfg = RLY_CTL_SUBS_CFG_DEFAULT;

	cfg.key_holders_max = 2;
	make_subs(&cfg);
	holder("10.0.1.1", &pub, NULL);
	holder("10.0.1.2", &pub, NULL);
	cr_assert_eq(handshake("10.0.1.3", 7000, key, HOLDER, &pub, NULL), RLY_SUB_TABLE_FULL);
	holder("10.0.1.1", &bob, NULL); /* re-registering takes no new room */
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_HOLDERS), 2);
}

/* ---- the holder table itself ---- */

Test(control_keys, the_holder_table_finds_holders_by_stream_and_identity_and_expires_them)
{
	struct rly_ctl_holder_table t;
	struct rly_ctl_holder *found[64];
	struct rly_ctl_sub_key k;
	struct rly_endpoint ep;
	unsigned removed;

	memset(&ep, 0, sizeof(ep));
	cr_assert_eq(rly_ctl_holder_table_init(&t, 0), -EINVAL);
	cr_assert_eq(rly_ctl_holder_table_init(&t, 64), 0);
	for (unsigned i = 0; i < 64; i++) {
		rly_ctl_sub_key_make(&k, i % 2 ? key : other, HOLDER, htonl(0x0a000000u + i),
				     htons(7000));
		cr_assert_not_null(rly_ctl_holder_table_insert(&t, &k, &ep, i % 4 < 2 ? pub.pk
										: bob.pk,
							       1000, 1000 + i));
	}
	rly_ctl_sub_key_make(&k, key, HOLDER, htonl(0x0b000000u), htons(7000));
	cr_assert_null(rly_ctl_holder_table_insert(&t, &k, &ep, pub.pk, 1000, 5000), "full");
	cr_assert_eq(rly_ctl_holder_table_lookup(&t, key, pub.pk, found, 8), 8, "capped");
	cr_assert_eq(rly_ctl_holder_table_lookup(&t, key, pub.pk, found, 64), 16);
	for (unsigned i = 0; i < 16; i++) {
		cr_assert_arr_eq(found[i]->key.stream_key, key, RLY_STREAM_KEY_LEN);
		cr_assert_arr_eq(found[i]->who, pub.pk, RLY_ID_LEN);
	}
	/* Moving a holder to another identity moves it between lookups. */
	rly_ctl_holder_table_set_who(&t, found[0], alice.pk);
	cr_assert_eq(rly_ctl_holder_table_lookup(&t, key, pub.pk, found, 64), 15);
	cr_assert_eq(rly_ctl_holder_table_lookup(&t, key, alice.pk, found, 64), 1);

	cr_assert_eq(rly_ctl_holder_table_expire(&t, 999 + 0, NULL, NULL), 0);
	removed = rly_ctl_holder_table_expire(&t, 1000 + 31, NULL, NULL);
	cr_assert_eq(removed, 32);
	cr_assert_eq(t.count, 32);
	cr_assert_eq(t.next_expiry_ms, 1032);
	rly_ctl_sub_key_make(&k, key, HOLDER, htonl(0x0a000000u + 33), htons(7000));
	cr_assert_not_null(rly_ctl_holder_table_find(&t, &k));
	rly_ctl_holder_table_remove(&t, rly_ctl_holder_table_find(&t, &k));
	cr_assert_null(rly_ctl_holder_table_find(&t, &k));
	cr_assert_eq(rly_ctl_holder_table_expire(&t, UINT64_MAX - 1, NULL, NULL), 31);
	cr_assert_eq(t.count, 0);
	cr_assert_eq(t.next_expiry_ms, UINT64_MAX);
	rly_ctl_holder_table_close(&t);
}

/* ---- key routing between relays ---- */

/* The fake overlay: how many peers a request goes to, and the last request it was handed. */
static unsigned peer_count;
static struct rly_wire_key_request peer_last;
static unsigned peer_calls;
static struct rly_endpoint peer_not;
static int peer_not_set;

static unsigned fake_peers(void *ctx, const struct rly_wire_key_request *r,
			   const struct rly_endpoint *not)
{
	(void)ctx;
	peer_last = *r;
	peer_calls++;
	peer_not_set = not != NULL;
	if (not)
		peer_not = *not;
	return peer_count;
}

static struct rly_endpoint peer_ep(const char *ip)
{
	struct rly_endpoint e;

	memset(&e, 0, sizeof(e));
	e.ip_be = tc_ip(ip);
	e.udp_port_be = htons(4747);
	memcpy(e.mac, tc_mac, 6);
	return e;
}

Test(control_keys, with_no_holder_here_a_request_goes_to_the_peers_and_their_answer_comes_back)
{
	struct rly_ctl_keys *k = rly_ctl_subs_keys(subs);
	struct rly_wire_key_request r;
	struct rly_wire_key_response a;
	struct rly_pkt_rec rec;
	struct rly_endpoint from = peer_ep("10.9.0.2");
	uint8_t tok[RLY_COOKIE_LEN];
	unsigned sent;

	rly_ctl_keys_set_peers(k, fake_peers, NULL);
	peer_count = 2;
	peer_calls = 0;
	subscriber("10.0.0.1", &alice, tok);
	request(&r, &alice, 91, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(dp.n_sent, sent, "no UNAVAILABLE: the peers are asked");
	cr_assert_eq(peer_calls, 1);
	cr_assert(!peer_not_set, "a local request goes to every peer");
	for (unsigned j = 0; j < RLY_COOKIE_LEN; j++)
		cr_assert_eq(peer_last.token[j], 0, "the subscription token stays here");
	cr_assert(rly_key_request_verify(&peer_last));
	cr_assert_eq(rly_ctl_keys_pending(k), 1);

	/* A peer's answer goes, unchanged, to the subscriber that asked. */
	response(&a, &r, &pub);
	punt_body(&rec, RLY_MSG_KEY_RESPONSE, &a, "10.9.0.2", 4747);
	rly_ctl_keys_on_peer_response(k, &rec, &from, &a);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(dp.sent[sent].ip_be, tc_ip("10.0.0.1"));
	cr_assert_eq(dp.sent[sent].udp_port_be, htons(5000));
	cr_assert_arr_eq(dp.sent[sent].data, rec.data, rec.len);
	cr_assert_eq(rly_ctl_keys_pending(k), 0);
	/* A second answer finds nothing waiting for it. */
	rly_ctl_keys_on_peer_response(k, &rec, &from, &a);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_KEY_UNEXPECTED), 1);
}

Test(control_keys, without_peers_to_ask_the_relay_still_answers_unavailable)
{
	struct rly_wire_key_request r;
	uint8_t tok[RLY_COOKIE_LEN];
	unsigned sent;

	rly_ctl_keys_set_peers(rly_ctl_subs_keys(subs), fake_peers, NULL);
	peer_count = 0;
	subscriber("10.0.0.1", &alice, tok);
	request(&r, &alice, 92, tok);
	sent = dp.n_sent;
	send_request(&r, "10.0.0.1", 5000, 2000);
	cr_assert_eq(dp.n_sent, sent + 1);
	{
		const struct rly_wire_key_response *a = tc_body(&dp.sent[sent], RLY_MSG_KEY_RESPONSE);
		cr_assert_not_null(a);
		cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_UNAVAILABLE);
	}
	cr_assert_eq(rly_ctl_keys_pending(rly_ctl_subs_keys(subs)), 0);
}

Test(control_keys, a_peer_request_reaches_the_holders_here_once_and_the_answer_goes_back_to_that_peer)
{
	struct rly_ctl_keys *k = rly_ctl_subs_keys(subs);
	struct rly_wire_key_request r, bad;
	struct rly_wire_key_response a;
	struct rly_pkt_rec rec;
	struct rly_endpoint from = peer_ep("10.9.0.3");
	unsigned sent;

	rly_ctl_keys_set_peers(k, fake_peers, NULL);
	peer_count = 3;
	peer_calls = 0;
	holder("10.0.1.1", &pub, NULL);
	request(&r, &alice, 93, (const uint8_t[RLY_COOKIE_LEN]){0});
	/* A peer request whose signature does not verify goes nowhere. */
	bad = r;
	bad.chain ^= 1;
	sent = dp.n_sent;
	rly_ctl_keys_on_peer_request(k, &from, &bad, 2000);
	cr_assert_eq(dp.n_sent, sent);
	cr_assert_eq(rly_ctl_keys_pending(k), 0);

	rly_ctl_keys_on_peer_request(k, &from, &r, 2000);
	cr_assert_eq(dp.n_sent, sent + 1, "to the local holder");
	cr_assert_eq(dp.sent[sent].ip_be, tc_ip("10.0.1.1"));
	cr_assert_eq(peer_calls, 0, "a holder here: the overlay is not asked");
	/* The flood brings it again over another link: handled once. */
	rly_ctl_keys_on_peer_request(k, &from, &r, 2100);
	cr_assert_eq(dp.n_sent, sent + 1);

	response(&a, &r, &pub);
	punt_body(&rec, RLY_MSG_KEY_RESPONSE, &a, "10.0.1.1", 7000);
	feed(&rec, 2200);
	cr_assert_eq(dp.n_sent, sent + 2);
	cr_assert_eq(dp.sent[sent + 1].ip_be, from.ip_be, "back to the relay that asked");
	cr_assert_eq(dp.sent[sent + 1].udp_port_be, from.udp_port_be);
}

Test(control_keys, a_peer_request_with_no_holder_here_goes_on_to_the_other_peers)
{
	struct rly_ctl_keys *k = rly_ctl_subs_keys(subs);
	struct rly_wire_key_request r;
	struct rly_endpoint from = peer_ep("10.9.0.4");

	rly_ctl_keys_set_peers(k, fake_peers, NULL);
	peer_count = 1;
	peer_calls = 0;
	request(&r, &alice, 94, (const uint8_t[RLY_COOKIE_LEN]){0});
	rly_ctl_keys_on_peer_request(k, &from, &r, 2000);
	cr_assert_eq(peer_calls, 1);
	cr_assert(peer_not_set && peer_not.ip_be == from.ip_be, "not back to where it came from");
	cr_assert_eq(rly_ctl_keys_pending(k), 1);
	/* With nobody left to ask, nothing is kept. */
	peer_count = 0;
	request(&r, &alice, 95, (const uint8_t[RLY_COOKIE_LEN]){0});
	rly_ctl_keys_on_peer_request(k, &from, &r, 2000);
	cr_assert_eq(rly_ctl_keys_pending(k), 1);
}
