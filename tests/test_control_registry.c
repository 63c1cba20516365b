/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-control's subscription service with a stream registry: a subscriber gets in only with the
 * subscribe permission, proved by a SUBSCRIBE_SIGNED unless the permission is public; a bad
 * signature is denied; a grant that goes away (or expires) revokes the subscription; subscribers
 * known only from a resync must prove themselves again; and publisher admission is pushed to the
 * dataplane as lists under a new epoch, then swept.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "control/log.h"
#include "control/subscriptions.h"
#include "security/identity.h"
#include "security/registry.h"
#include "test_control_fake_dp.h"
#include "test_control_helpers.h"

static struct tc_fake_dp dp;

static struct rly_ctl_subs *subs;
static struct rly_registry *reg;
static FILE *log_file;
static char dir[64];
static struct rly_identity owner, alice, bob;
static char stream[RLY_STREAM_NAME_MAX + 1];
static uint8_t key[RLY_STREAM_KEY_LEN];
static uint64_t clock_s = 1800000000;
static const uint8_t secret[RLY_CTL_SECRET_LEN] = {9, 8, 7};

static uint64_t test_now(void)
{
	return clock_s;
}

static uint64_t ctr(enum rly_ctr id)
{
	return rly_ctl_subs_counters(subs)->v[id];
}

/* (Re)write the registry directory with the given grants, and load it. */
static void write_grants(const struct rly_identity *grantee, uint32_t perms, uint64_t not_after,
			 int public_subscribe)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/test.grants", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	if (grantee)
		tc_write_grant(f, stream, &owner, grantee, perms, clock_s - 10, not_after);
	if (public_subscribe)
		tc_write_grant(f, stream, &owner, NULL, RLY_PERM_SUBSCRIBE, clock_s - 10,
			       clock_s + 3600);
	fclose(f);
	rly_registry_free(reg);
	reg = NULL;
	cr_assert_geq(rly_registry_load(&reg, dir, NULL, NULL), 0);
	rly_ctl_subs_set_registry(subs, reg, test_now);
}

static void setup(void)
{
	struct rly_ctl_subs_cfg cfg = RLY_CTL_SUBS_CFG_DEFAULT;
	struct rly_ctl_subs_io io = tc_fake_io(&dp);
	char hex[2 * RLY_ID_LEN + 1];
	uint8_t own[RLY_ID_LEN];

	memset(&dp, 0, sizeof(dp));
	dp.next_seq = 100;
	log_file = tmpfile();
	rly_ctl_log_open(log_file, "unit", RLY_LOG_DEBUG);
	cr_assert_eq(rly_ctl_subs_create(&subs, &cfg, secret, &io), 0);
	snprintf(dir, sizeof(dir), "/tmp/rly-ctlreg-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	crypto_sign_keypair(owner.pk, owner.sk);
	crypto_sign_keypair(alice.pk, alice.sk);
	crypto_sign_keypair(bob.pk, bob.sk);
	rly_pk_format(owner.pk, hex);
	snprintf(stream, sizeof(stream), "%s/prices", hex);
	cr_assert_eq(rly_stream_name_parse(stream, own, key), 0);
	reg = NULL;
}

static void teardown(void)
{
	char cmd[128];

	rly_ctl_subs_free(subs);
	rly_registry_free(reg);
	fclose(log_file);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(control_registry, .init = setup, .fini = teardown);

static void subscribe_body(struct rly_wire_subscribe *b, uint64_t issued, const uint8_t *cookie,
			   const uint8_t *who)
{
	memset(b, 0, sizeof(*b));
	memcpy(b->stream_key, key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&b->lease_ms, 10000);
	rly_be64_store(&b->request_id, 42);
	rly_be64_store(&b->issued_ms, issued);
	if (cookie)
		memcpy(b->cookie, cookie, RLY_COOKIE_LEN);
	if (who)
		memcpy(b->subscriber, who, RLY_ID_LEN);
}

/*
 * Run the handshake from 10.0.0.<n>:5000 as @p id (NULL: anonymous, plain SUBSCRIBE); @p forge
 * corrupts the signature. Returns the dataplane command it produced (SUB_ADD) or NULL, and the
 * reply status through *status when a SUB_ACK came back.
 */
static const struct rly_cmd *handshake(unsigned n, const struct rly_identity *id, int forge,
				       int *status)
{
	struct rly_pkt_rec rec;
	struct rly_wire_subscribe b;
	char ip[32];
	unsigned cmds = dp.n_cmds, sent;
	const struct rly_wire_challenge *ch;

	snprintf(ip, sizeof(ip), "10.0.0.%u", n);
	subscribe_body(&b, 0, NULL, id ? id->pk : NULL);
	tc_punt(&rec, RLY_MSG_SUBSCRIBE, &b, ip, 5000);
	sent = dp.n_sent;
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 1000), 0);
	cr_assert_eq(dp.n_sent, sent + 1);
	ch = tc_body(&dp.sent[sent], RLY_MSG_CHALLENGE);
	cr_assert_not_null(ch);

	subscribe_body(&b, rly_be64_load(&ch->issued_ms), ch->cookie, id ? id->pk : NULL);
	if (id) {
		struct rly_wire_subscribe_signed ss;
		uint8_t msg[sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1 + sizeof(b)];
		ss.sub = b;
		memcpy(msg, RLY_SUBSCRIBE_SIG_CONTEXT, sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1);
		memcpy(msg + sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1, &b, sizeof(b));
		crypto_sign_detached(ss.sig, NULL, msg, sizeof(msg), id->sk);
		if (forge)
			ss.sig[5] ^= 0x20;
		tc_punt(&rec, RLY_MSG_SUBSCRIBE_SIGNED, &ss, ip, 5000);
	} else {
		tc_punt(&rec, RLY_MSG_SUBSCRIBE, &b, ip, 5000);
	}
	sent = dp.n_sent;
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 1001), 0);
	*status = -1;
	if (dp.n_sent > sent) {
		const struct rly_wire_ack *a = tc_body(&dp.sent[sent], RLY_MSG_SUB_ACK);
		cr_assert_not_null(a);
		*status = rly_be16_load(&a->status);
	}
	return dp.n_cmds > cmds ? &dp.cmds[dp.n_cmds - 1] : NULL;
}

static void done(const struct rly_cmd *c, unsigned status)
{
	struct rly_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = RLY_EV_DONE;
	ev.seq = c->seq;
	ev.status = (uint16_t)status;
	rly_ctl_subs_on_event(subs, &ev, 1002);
}

Test(control_registry, only_a_granted_identity_that_signs_gets_in)
{
	const struct rly_cmd *c;
	int st;

	write_grants(&alice, RLY_PERM_SUBSCRIBE, clock_s + 3600, 0);

	c = handshake(1, NULL, 0, &st);
	cr_assert_null(c, "anonymous: no SUB_ADD");
	cr_assert_eq(st, RLY_SUB_DENIED);
	c = handshake(2, &bob, 0, &st);
	cr_assert_null(c, "bob has no grant");
	cr_assert_eq(st, RLY_SUB_DENIED);
	c = handshake(3, &alice, 1, &st);
	cr_assert_null(c, "alice's key, a signature she never made");
	cr_assert_eq(st, RLY_SUB_DENIED);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_DENIED), 3);

	c = handshake(4, &alice, 0, &st);
	cr_assert_not_null(c);
	cr_assert_eq(c->op, RLY_CMD_SUB_ADD);
	cr_assert_eq(st, -1, "SUB_ACK only once the dataplane answers");
	done(c, RLY_CMD_OK);
	cr_assert_eq(rly_ctl_subs_count(subs), 1);
}

Test(control_registry, a_public_grant_lets_anonymous_subscribers_in)
{
	const struct rly_cmd *c;
	int st;

	write_grants(NULL, 0, 0, 1);
	c = handshake(1, NULL, 0, &st);
	cr_assert_not_null(c);
	cr_assert_eq(c->op, RLY_CMD_SUB_ADD);
}

Test(control_registry, a_removed_or_expired_grant_revokes_the_subscription)
{
	const struct rly_cmd *c;
	int st;

	write_grants(&alice, RLY_PERM_SUBSCRIBE, clock_s + 60, 0);
	c = handshake(1, &alice, 0, &st);
	cr_assert_not_null(c);
	done(c, RLY_CMD_OK);
	cr_assert_eq(rly_ctl_subs_revalidate(subs), 0, "still granted");

	clock_s += 61; /* the grant expired */
	unsigned cmds = dp.n_cmds;
	cr_assert_eq(rly_ctl_subs_revalidate(subs), 1);
	cr_assert_eq(dp.n_cmds, cmds + 1);
	cr_assert_eq(dp.cmds[cmds].op, RLY_CMD_SUB_DEL);
	cr_assert_eq(ctr(RLY_CTR_CTL_REVOKED), 1);
	cr_assert_eq(rly_ctl_subs_count(subs), 0);
	clock_s -= 61;
}

Test(control_registry, resynced_subscribers_must_prove_themselves_again)
{
	struct rly_event ev;
	struct rly_pkt_rec rec;
	uint8_t tok[RLY_COOKIE_LEN];
	const struct rly_cmd *dump;
	const struct rly_wire_ack *a;
	unsigned sent;

	write_grants(&alice, RLY_PERM_SUBSCRIBE, clock_s + 3600, 0);
	cr_assert_eq(rly_ctl_subs_resync_begin(subs, 1000), 0);
	dump = &dp.cmds[dp.n_cmds - 1];
	memset(&ev, 0, sizeof(ev));
	ev.op = RLY_EV_DUMP_ENTRY;
	ev.seq = dump->seq;
	memcpy(ev.stream_key, key, RLY_STREAM_KEY_LEN);
	ev.ep.ip_be = tc_ip("10.0.0.7");
	ev.ep.udp_port_be = htons(5000);
	rly_ctl_subs_on_event(subs, &ev, 1000);
	ev.op = RLY_EV_DUMP_END;
	ev.count = 1;
	rly_ctl_subs_on_event(subs, &ev, 1000);
	cr_assert(rly_ctl_subs_ready(subs));

	/* Its token is good, but nobody knows who it is: NOT_SUBSCRIBED asks for a new handshake. */
	rly_ctl_subs_token(subs, tc_ip("10.0.0.7"), htons(5000), key, 0, tok);
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.0.7", 5000, 0, 1, tok);
	memcpy(((struct rly_wire_sub_ref *)(rec.data + sizeof(struct rly_wire_dgram_hdr)))->stream_key,
	       key, RLY_STREAM_KEY_LEN);
	sent = dp.n_sent;
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 1100), 0);
	cr_assert_eq(dp.n_sent, sent + 1);
	a = tc_body(&dp.sent[sent], RLY_MSG_HEARTBEAT_ACK);
	cr_assert_not_null(a);
	cr_assert_eq(rly_be16_load(&a->status), RLY_SUB_NOT_SUBSCRIBED);
	cr_assert_eq(rly_ctl_subs_count(subs), 1, "kept (and forwarded to) meanwhile");
}

Test(control_registry, admission_is_pushed_as_lists_under_a_new_epoch_then_swept)
{
	unsigned from = dp.n_cmds;

	write_grants(&alice, RLY_PERM_PUBLISH | RLY_PERM_SUBSCRIBE, clock_s + 3600, 0);
	cr_assert_eq(rly_ctl_subs_push_admission(subs, reg), 0);
	cr_assert_eq(dp.n_cmds - from, 5, "BEGIN, ADD, COMMIT, MODE, SWEEP");
	cr_assert_eq(dp.cmds[from].op, RLY_CMD_ADMIT_BEGIN);
	cr_assert_eq(memcmp(dp.cmds[from].stream_key, key, RLY_STREAM_KEY_LEN), 0);
	cr_assert_eq(dp.cmds[from].partition, 0, "not public");
	cr_assert_eq(dp.cmds[from + 1].op, RLY_CMD_ADMIT_ADD);
	cr_assert_eq(memcmp(dp.cmds[from + 1].publisher, alice.pk, RLY_ID_LEN), 0);
	cr_assert_eq(dp.cmds[from + 2].op, RLY_CMD_ADMIT_COMMIT);
	cr_assert_eq(dp.cmds[from + 3].op, RLY_CMD_ADMIT_MODE);
	cr_assert_eq(dp.cmds[from + 3].partition, 1);
	cr_assert_eq(dp.cmds[from + 4].op, RLY_CMD_ADMIT_SWEEP);
	cr_assert_eq(dp.cmds[from + 4].partition, dp.cmds[from + 2].partition,
		     "the sweep keeps exactly the lists just committed");
	uint32_t epoch = dp.cmds[from + 2].partition;

	from = dp.n_cmds;
	cr_assert_eq(rly_ctl_subs_push_admission(subs, reg), 0);
	cr_assert_eq(dp.cmds[from + 2].partition, epoch + 1, "every push has its own epoch");

	from = dp.n_cmds;
	cr_assert_eq(rly_ctl_subs_push_admission(subs, NULL), 0);
	cr_assert_eq(dp.n_cmds - from, 1);
	cr_assert_eq(dp.cmds[from].op, RLY_CMD_ADMIT_MODE);
	cr_assert_eq(dp.cmds[from].partition, 0, "no registry: admission off");
}
