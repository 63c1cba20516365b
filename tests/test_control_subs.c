/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subscription service of relay-control, driven with a fake clock and a fake dataplane: the
 * io callbacks record every datagram and command, and tests answer commands with events the way
 * the manager lcore would.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/err.h"
#include "control/log.h"
#include "control/ratelimit.h"
#include "control/secret.h"
#include "control/sub_table.h"
#include "control/subscriptions.h"
#include "test_control_fake_dp.h"
#include "test_control_helpers.h"

static struct tc_fake_dp dp;
static struct rly_ctl_subs *subs;
static FILE *log_file;
static const uint8_t secret[RLY_CTL_SECRET_LEN] = {7, 7, 7, 7, 1, 2, 3, 4};

static struct rly_ctl_subs *make_subs(const struct rly_ctl_subs_cfg *cfg, const uint8_t *key)
{
	struct rly_ctl_subs_io io = tc_fake_io(&dp);
	struct rly_ctl_subs *s;
	cr_assert_eq(rly_ctl_subs_create(&s, cfg, key, &io), 0);
	return s;
}

static void setup(void)
{
	struct rly_ctl_subs_cfg cfg = RLY_CTL_SUBS_CFG_DEFAULT;

	memset(&dp, 0, sizeof(dp));
	dp.next_seq = 1000;
	log_file = tmpfile();
	rly_ctl_log_open(log_file, "unit", RLY_LOG_DEBUG);
	subs = make_subs(&cfg, secret);
}

static void teardown(void)
{
	rly_ctl_subs_free(subs);
	fclose(log_file);
}

static uint64_t ctr(enum rly_ctr id)
{
	return rly_ctl_subs_counters(subs)->v[id];
}

/* Everything logged so far, as one string (static buffer). */
static const char *logged(void)
{
	return tc_log_text(log_file);
}

static void answer(const struct rly_cmd *c, unsigned status, uint64_t now)
{
	struct rly_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = RLY_EV_DONE;
	ev.seq = c->seq;
	ev.status = (uint16_t)status;
	rly_ctl_subs_on_event(subs, &ev, now);
}

/* Run the whole handshake for ip:port at @p now; returns the SUB_ACK and fills the token. */
static struct rly_wire_ack subscribe(const char *ip, uint16_t port, uint32_t partition,
				     uint32_t lease, uint64_t now, unsigned dp_status)
{
	struct rly_pkt_rec rec;
	const struct rly_wire_challenge *ch;
	const struct rly_wire_ack *ack;
	struct rly_wire_ack out;
	unsigned sent0 = dp.n_sent, cmds0 = dp.n_cmds;

	tc_subscribe(&rec, ip, port, partition, lease, 42, 0, NULL);
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, now), 0);
	cr_assert_eq(dp.n_sent, sent0 + 1,
		     "a SUBSCRIBE without cookie is answered by one CHALLENGE");
	ch = tc_body(&dp.sent[sent0], RLY_MSG_CHALLENGE);
	cr_assert_not_null(ch);
	tc_subscribe(&rec, ip, port, partition, lease, 42, rly_be64_load(&ch->issued_ms),
		     ch->cookie);
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, now), 0);
	cr_assert_eq(dp.n_cmds, cmds0 + 1, "a passed challenge makes one SUB_ADD");
	cr_assert_eq(dp.cmds[cmds0].op, RLY_CMD_SUB_ADD);
	cr_assert_eq(dp.n_sent, sent0 + 1, "no SUB_ACK before the dataplane answered");
	answer(&dp.cmds[cmds0], dp_status, now);
	cr_assert_eq(dp.n_sent, sent0 + 2);
	ack = tc_body(&dp.sent[sent0 + 1], RLY_MSG_SUB_ACK);
	cr_assert_not_null(ack);
	memcpy(&out, ack, sizeof(out));
	return out;
}

TestSuite(control_subs, .init = setup, .fini = teardown);

Test(control_subs, challenge_goes_to_the_source_and_its_cookie_subscribes_it)
{
	struct rly_pkt_rec rec;
	const struct rly_wire_challenge *ch;

	tc_subscribe(&rec, "10.0.0.5", 5000, 3, 30000, 77, 0, NULL);
	rec.port_id = 1;
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 123456), 0);
	cr_assert_eq(dp.n_sent, 1);
	cr_assert_eq(dp.n_cmds, 0,
		     "nothing reaches the dataplane before the challenge is answered");
	const struct rly_pkt_rec *out = &dp.sent[0];
	cr_assert_eq(out->ip_be, tc_ip("10.0.0.5"));
	cr_assert_eq(out->udp_port_be, htons(5000));
	cr_assert_eq(out->port_id, 1, "answered through the port the request came in on");
	cr_assert_arr_eq(out->mac, tc_mac, 6);
	ch = tc_body(out, RLY_MSG_CHALLENGE);
	cr_assert_not_null(ch);
	cr_assert_eq(rly_be64_load(&ch->issued_ms), 123456);
	cr_assert_eq(rly_be64_load(&ch->request_id), 77);
	cr_assert_eq(rly_be32_load(&ch->partition), 3);
	cr_assert_arr_eq(ch->stream_key, tc_stream, RLY_STREAM_KEY_LEN);
	cr_assert_leq(out->len, rec.len, "a CHALLENGE is never larger than the SUBSCRIBE");

	uint8_t cookie[RLY_COOKIE_LEN];
	memcpy(cookie, ch->cookie, sizeof(cookie));
	tc_subscribe(&rec, "10.0.0.5", 5000, 3, 30000, 77, 123456, cookie);
	rec.port_id = 1;
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 125000), 0);
	cr_assert_eq(dp.n_cmds, 1);
	const struct rly_cmd *c = &dp.cmds[0];
	cr_assert_eq(c->op, RLY_CMD_SUB_ADD);
	cr_assert_arr_eq(c->stream_key, tc_stream, RLY_STREAM_KEY_LEN);
	cr_assert_eq(c->partition, 3);
	cr_assert_eq(c->ep.ip_be, tc_ip("10.0.0.5"));
	cr_assert_eq(c->ep.udp_port_be, htons(5000));
	cr_assert_eq(c->ep.port_id, 1);
	cr_assert_arr_eq(c->ep.mac, tc_mac, 6, "the endpoint's next hop is the sender's MAC");

	answer(c, RLY_CMD_OK, 125001);
	cr_assert_eq(dp.n_sent, 2);
	const struct rly_wire_ack *ack = tc_body(&dp.sent[1], RLY_MSG_SUB_ACK);
	cr_assert_not_null(ack);
	cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_OK);
	cr_assert_eq(rly_be64_load(&ack->request_id), 77);
	cr_assert_eq(rly_be32_load(&ack->lease_ms), 30000);
	cr_assert_eq(rly_be32_load(&ack->heartbeat_ms), 10000);
	uint8_t tok[RLY_COOKIE_LEN];
	rly_ctl_subs_token(subs, tc_ip("10.0.0.5"), htons(5000), tc_stream, 3, tok);
	cr_assert_arr_eq(ack->token, tok, RLY_COOKIE_LEN);
	cr_assert_eq(rly_ctl_subs_count(subs), 1);
	cr_assert_eq(rly_ctl_subs_expiry(subs, tc_stream, 3, tc_ip("10.0.0.5"), htons(5000)),
		     125001 + 30000);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REQ), 2);
	cr_assert_eq(ctr(RLY_CTR_CTL_CHALLENGES), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_ADDED), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REFUSED), 0);
	cr_assert_not_null(strstr(logged(), "\"event\":\"subscribe_added\""));
	cr_assert_not_null(strstr(logged(), "\"src\":\"10.0.0.5:5000\""));
	cr_assert_not_null(strstr(logged(), "\"stream\":\"deadbeef0102030405060708090a0b0c\""));
}

Test(control_subs, granted_lease_is_capped_by_max_lease)
{
	struct rly_wire_ack a = subscribe("10.0.0.1", 1, 0, 3600000, 1000, RLY_CMD_OK);

	cr_assert_eq(rly_be32_load(&a.lease_ms), 60000);
	cr_assert_eq(rly_be32_load(&a.heartbeat_ms), 20000);
}

Test(control_subs, existing_endpoint_is_acked_ok_but_not_counted_as_added)
{
	struct rly_wire_ack a = subscribe("10.0.0.1", 1, 0, 5000, 1000, RLY_CMD_EXISTS);

	cr_assert_eq(rly_be16_load(&a.status), RLY_SUB_OK);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_ADDED), 0);
	cr_assert_eq(rly_ctl_subs_count(subs), 1);
}

Test(control_subs, tampered_cookie_is_refused_with_bad_cookie)
{
	struct rly_pkt_rec rec;
	uint8_t cookie[RLY_COOKIE_LEN];

	tc_subscribe(&rec, "10.0.0.5", 5000, 0, 1000, 9, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 5000);
	memcpy(cookie,
	       ((const struct rly_wire_challenge *)tc_body(&dp.sent[0], RLY_MSG_CHALLENGE))->cookie,
	       sizeof(cookie));
	cookie[0] ^= 1;
	tc_subscribe(&rec, "10.0.0.5", 5000, 0, 1000, 9, 5000, cookie);
	rly_ctl_subs_on_packet(subs, &rec, 5001);
	cr_assert_eq(dp.n_cmds, 0);
	cr_assert_eq(dp.n_sent, 2);
	const struct rly_wire_ack *ack = tc_body(&dp.sent[1], RLY_MSG_SUB_ACK);
	cr_assert_not_null(ack);
	cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_BAD_COOKIE);
	cr_assert_eq(rly_be32_load(&ack->lease_ms), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REFUSED), 1);
	cr_assert_not_null(strstr(logged(), "\"status\":\"BAD_COOKIE\""));
}

Test(control_subs, cookie_is_bound_to_the_source_address_and_request)
{
	struct rly_pkt_rec rec;
	const struct rly_wire_challenge *ch;
	uint8_t cookie[RLY_COOKIE_LEN];
	uint64_t issued;

	tc_subscribe(&rec, "10.0.0.5", 5000, 0, 1000, 9, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 5000);
	ch = tc_body(&dp.sent[0], RLY_MSG_CHALLENGE);
	memcpy(cookie, ch->cookie, sizeof(cookie));
	issued = rly_be64_load(&ch->issued_ms);

	/* Another port, another address, another request id, another partition: all refused. */
	tc_subscribe(&rec, "10.0.0.5", 5001, 0, 1000, 9, issued, cookie);
	rly_ctl_subs_on_packet(subs, &rec, 5001);
	tc_subscribe(&rec, "10.0.0.6", 5000, 0, 1000, 9, issued, cookie);
	rly_ctl_subs_on_packet(subs, &rec, 5001);
	tc_subscribe(&rec, "10.0.0.5", 5000, 0, 1000, 10, issued, cookie);
	rly_ctl_subs_on_packet(subs, &rec, 5001);
	tc_subscribe(&rec, "10.0.0.5", 5000, 1, 1000, 9, issued, cookie);
	rly_ctl_subs_on_packet(subs, &rec, 5001);
	tc_subscribe(&rec, "10.0.0.5", 5000, 0, 1000, 9, issued + 1, cookie);
	rly_ctl_subs_on_packet(subs, &rec, 5001);
	cr_assert_eq(dp.n_cmds, 0);
	cr_assert_eq(dp.n_sent, 6);
	for (unsigned i = 1; i < 6; i++) {
		const struct rly_wire_ack *ack = tc_body(&dp.sent[i], RLY_MSG_SUB_ACK);
		cr_assert_not_null(ack);
		cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_BAD_COOKIE, "attempt %u", i);
	}
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REFUSED), 5);
}

Test(control_subs, cookie_older_than_the_ttl_or_from_the_future_is_expired)
{
	struct rly_pkt_rec rec;
	const struct rly_wire_challenge *ch;
	uint8_t cookie[RLY_COOKIE_LEN];

	tc_subscribe(&rec, "10.0.0.5", 5000, 0, 1000, 9, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 50000);
	ch = tc_body(&dp.sent[0], RLY_MSG_CHALLENGE);
	memcpy(cookie, ch->cookie, sizeof(cookie));

	/* Exactly at the TTL it is still good... */
	tc_subscribe(&rec, "10.0.0.5", 5000, 0, 1000, 9, 50000, cookie);
	rly_ctl_subs_on_packet(subs, &rec, 50000 + 10000);
	cr_assert_eq(dp.n_cmds, 1);
	/* ...one millisecond later it is not. */
	rly_ctl_subs_on_packet(subs, &rec, 50000 + 10001);
	cr_assert_eq(dp.n_cmds, 1);
	const struct rly_wire_ack *ack = tc_body(&dp.sent[1], RLY_MSG_SUB_ACK);
	cr_assert_not_null(ack);
	cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_COOKIE_EXPIRED);
	/* A cookie issued "later" than now (clock reset, forged time) is expired too. */
	rly_ctl_subs_on_packet(subs, &rec, 49999);
	ack = tc_body(&dp.sent[2], RLY_MSG_SUB_ACK);
	cr_assert_not_null(ack);
	cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_COOKIE_EXPIRED);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REFUSED), 2);
}

Test(control_subs, challenge_never_carries_issued_ms_zero)
{
	struct rly_pkt_rec rec;

	tc_subscribe(&rec, "10.0.0.5", 5000, 0, 1000, 9, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 0);
	const struct rly_wire_challenge *ch = tc_body(&dp.sent[0], RLY_MSG_CHALLENGE);
	cr_assert_not_null(ch, "the reply parses, so issued_ms is not 0");
	cr_assert_neq(rly_be64_load(&ch->issued_ms), 0);
}

Test(control_subs, lease_expires_at_its_end_and_not_before)
{
	subscribe("10.0.0.7", 7000, 2, 3000, 10000, RLY_CMD_OK);
	unsigned cmds = dp.n_cmds;

	cr_assert_eq(rly_ctl_subs_tick(subs, 10000 + 2999), 0);
	cr_assert_eq(dp.n_cmds, cmds, "no SUB_DEL a millisecond before the lease ends");
	cr_assert_eq(rly_ctl_subs_tick(subs, 10000 + 3000), 1);
	cr_assert_eq(dp.n_cmds, cmds + 1);
	const struct rly_cmd *c = &dp.cmds[cmds];
	cr_assert_eq(c->op, RLY_CMD_SUB_DEL);
	cr_assert_eq(c->partition, 2);
	cr_assert_eq(c->ep.ip_be, tc_ip("10.0.0.7"));
	cr_assert_eq(c->ep.udp_port_be, htons(7000));
	cr_assert_eq(rly_ctl_subs_count(subs), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_EXPIRED), 1);
	cr_assert_not_null(strstr(logged(), "\"event\":\"lease_expired\""));
	cr_assert_eq(rly_ctl_subs_tick(subs, 10000 + 9000), 0, "expired once only");
	unsigned sent = dp.n_sent;
	answer(c, RLY_CMD_OK, 13001);
	cr_assert_eq(dp.n_sent, sent, "nobody is told about an expiry");
	cr_assert_eq(rly_ctl_subs_pending(subs), 0);
}

Test(control_subs, leases_get_a_bounded_grace_while_the_dataplane_drops_control_datagrams)
{
	subscribe("10.0.0.7", 7000, 0, 3000, 10000, RLY_CMD_OK);
	subscribe("10.0.0.9", 9000, 0, 3000, 10000, RLY_CMD_OK);

	/* Punt drops at 12000: the leases (ending at 13000) may have lost their heartbeats. */
	rly_ctl_subs_note_control_loss(subs, 12000);
	cr_assert_eq(rly_ctl_subs_tick(subs, 13000), 2, "both postponed");
	cr_assert_eq(rly_ctl_subs_count(subs), 2);
	cr_assert_eq(ctr(RLY_CTR_CTL_EXPIRED), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_LEASE_GRACE), 2);
	cr_assert_eq(rly_ctl_subs_expiry(subs, tc_stream, 0, tc_ip("10.0.0.7"), htons(7000)),
		     13000 + 1500 + 1);
	/* The drops go on; each grace is half a lease, four in a row at most. */
	for (uint64_t t = 14501; t < 14501 + 3 * 1501; t += 1501) {
		rly_ctl_subs_note_control_loss(subs, t);
		cr_assert_eq(rly_ctl_subs_tick(subs, t), 2);
	}
	cr_assert_eq(ctr(RLY_CTR_CTL_LEASE_GRACE), 8);
	rly_ctl_subs_note_control_loss(subs, 19004);
	cr_assert_eq(rly_ctl_subs_tick(subs, 19004), 2, "after four graces, they expire");
	cr_assert_eq(rly_ctl_subs_count(subs), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_EXPIRED), 2);
}

Test(control_subs, a_heartbeat_resets_the_grace_and_old_drops_give_none)
{
	struct rly_wire_ack a = subscribe("10.0.0.8", 8000, 0, 3000, 1000, RLY_CMD_OK);
	struct rly_pkt_rec rec;

	rly_ctl_subs_note_control_loss(subs, 3500);
	cr_assert_eq(rly_ctl_subs_tick(subs, 4000), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_LEASE_GRACE), 1);
	/* A heartbeat arrives: a full lease from now, and the grace count starts again. */
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.0.8", 8000, 0, 5, a.token);
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 5000), 0);
	cr_assert_eq(rly_ctl_subs_expiry(subs, tc_stream, 0, tc_ip("10.0.0.8"), htons(8000)), 8000);
	/* The drops at 3500 are more than a lease before 8000: no grace, the lease ends. */
	cr_assert_eq(rly_ctl_subs_tick(subs, 8000), 1);
	cr_assert_eq(rly_ctl_subs_count(subs), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_LEASE_GRACE), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_EXPIRED), 1);
}

static unsigned count_in_log(const char *needle)
{
	unsigned n = 0;

	for (const char *p = logged(); (p = strstr(p, needle)); p++)
		n++;
	return n;
}

Test(control_subs, lines_anyone_can_cause_are_limited_per_second_and_summed_up)
{
	struct rly_pkt_rec rec;
	char ip[32];

	/* 250 SUBSCRIBEs from 250 addresses in one second: each gets its CHALLENGE and is
	 * counted, but only the first 100 are logged one by one. */
	for (unsigned i = 0; i < 250; i++) {
		snprintf(ip, sizeof(ip), "10.8.%u.%u", i / 200, 1 + i % 200);
		tc_subscribe(&rec, ip, 1000, 0, 1000, 1, 0, NULL);
		rly_ctl_subs_on_packet(subs, &rec, 5000 + i);
	}
	cr_assert_eq(ctr(RLY_CTR_CTL_CHALLENGES), 250);
	cr_assert_eq(count_in_log("\"event\":\"challenge_sent\""), RLY_CTL_UNAUTH_LOG_PER_S);
	cr_assert_null(strstr(logged(), "log_suppressed"), "not before the second is over");
	/* The next second: one line says how many were left out. */
	rly_ctl_subs_tick(subs, 6000);
	cr_assert_eq(count_in_log("\"event\":\"log_suppressed\""), 1);
	cr_assert_not_null(strstr(logged(), "\"lines\":150"));
	tc_subscribe(&rec, "10.7.0.1", 1000, 0, 1000, 1, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 6001);
	cr_assert_eq(count_in_log("\"event\":\"challenge_sent\""), RLY_CTL_UNAUTH_LOG_PER_S + 1);
}

Test(control_subs, a_crowded_tx_ring_sheds_challenges_and_cookie_refusals_but_not_acks)
{
	struct rly_wire_ack a = subscribe("10.0.0.8", 8000, 0, 6000, 1000, RLY_CMD_OK);
	struct rly_pkt_rec rec;
	uint8_t bad[RLY_COOKIE_LEN];
	unsigned sent;

	dp.crowded = 1;
	sent = dp.n_sent;
	tc_subscribe(&rec, "10.6.0.1", 1000, 0, 1000, 1, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 2000);
	memset(bad, 0x5a, sizeof(bad));
	tc_subscribe(&rec, "10.6.0.2", 1000, 0, 1000, 1, 1990, bad);
	rly_ctl_subs_on_packet(subs, &rec, 2000);
	cr_assert_eq(dp.n_sent, sent, "no CHALLENGE, no BAD_COOKIE while the ring is crowded");
	cr_assert_eq(ctr(RLY_CTR_CTL_REPLY_SHED), 2);
	/* An existing subscriber's heartbeat is still answered. */
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.0.8", 8000, 0, 5, a.token);
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 2000), 0);
	cr_assert_eq(dp.n_sent, sent + 1);
	cr_assert_not_null(tc_body(&dp.sent[sent], RLY_MSG_HEARTBEAT_ACK));
	/* Room again: challenges go out. */
	dp.crowded = 0;
	tc_subscribe(&rec, "10.6.0.1", 1000, 0, 1000, 1, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 2001);
	cr_assert_eq(dp.n_sent, sent + 2);
	cr_assert_not_null(tc_body(&dp.sent[sent + 1], RLY_MSG_CHALLENGE));
}

Test(control_subs, leases_expire_in_order_of_their_end)
{
	subscribe("10.0.0.1", 1, 0, 5000, 1, RLY_CMD_OK);
	subscribe("10.0.0.2", 1, 0, 1000, 1, RLY_CMD_OK);
	subscribe("10.0.0.3", 1, 0, 3000, 1, RLY_CMD_OK);
	unsigned cmds = dp.n_cmds;

	cr_assert_eq(rly_ctl_subs_tick(subs, 1001), 1);
	cr_assert_eq(dp.cmds[cmds].ep.ip_be, tc_ip("10.0.0.2"));
	cr_assert_eq(rly_ctl_subs_tick(subs, 3000), 0);
	cr_assert_eq(rly_ctl_subs_tick(subs, 4000), 1);
	cr_assert_eq(dp.cmds[cmds + 1].ep.ip_be, tc_ip("10.0.0.3"));
	cr_assert_eq(rly_ctl_subs_count(subs), 1);
}

Test(control_subs, heartbeat_with_token_renews_the_lease)
{
	struct rly_wire_ack a = subscribe("10.0.0.8", 8000, 0, 6000, 1000, RLY_CMD_OK);
	struct rly_pkt_rec rec;
	unsigned sent = dp.n_sent;

	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.0.8", 8000, 0, 5, a.token);
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 5000), 0);
	cr_assert_eq(dp.n_sent, sent + 1);
	const struct rly_wire_ack *ack = tc_body(&dp.sent[sent], RLY_MSG_HEARTBEAT_ACK);
	cr_assert_not_null(ack);
	cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_OK);
	cr_assert_eq(rly_be32_load(&ack->lease_ms), 6000);
	cr_assert_eq(rly_be64_load(&ack->request_id), 5);
	cr_assert_eq(rly_ctl_subs_expiry(subs, tc_stream, 0, tc_ip("10.0.0.8"), htons(8000)),
		     11000);
	cr_assert_eq(ctr(RLY_CTR_CTL_HEARTBEATS), 1);

	/* The original lease would have ended at 7000. */
	cr_assert_eq(rly_ctl_subs_tick(subs, 7000), 0);
	cr_assert_eq(rly_ctl_subs_tick(subs, 10999), 0);
	cr_assert_eq(rly_ctl_subs_tick(subs, 11000), 1);
	cr_assert_not_null(strstr(logged(), "\"event\":\"heartbeat\""),
			   "debug level logs renewals");
}

Test(control_subs, wrong_token_gets_no_answer_at_all)
{
	struct rly_wire_ack a = subscribe("10.0.0.8", 8000, 0, 6000, 1000, RLY_CMD_OK);
	struct rly_pkt_rec rec;
	unsigned sent = dp.n_sent, cmds = dp.n_cmds;

	a.token[3] ^= 0x80;
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.0.8", 8000, 0, 5, a.token);
	rly_ctl_subs_on_packet(subs, &rec, 2000);
	tc_ref(&rec, RLY_MSG_UNSUBSCRIBE, "10.0.0.8", 8000, 0, 5, a.token);
	rly_ctl_subs_on_packet(subs, &rec, 2000);
	a.token[3] ^= 0x80;
	/* The right token from another address is a wrong token too. */
	tc_ref(&rec, RLY_MSG_UNSUBSCRIBE, "10.0.0.9", 8000, 0, 5, a.token);
	rly_ctl_subs_on_packet(subs, &rec, 2000);
	cr_assert_eq(dp.n_sent, sent, "nothing sent");
	cr_assert_eq(dp.n_cmds, cmds, "nothing asked of the dataplane");
	cr_assert_eq(ctr(RLY_CTR_CTL_BAD_TOKEN), 3);
	cr_assert_eq(rly_ctl_subs_expiry(subs, tc_stream, 0, tc_ip("10.0.0.8"), htons(8000)), 7000,
		     "lease untouched");
}

Test(control_subs, right_token_without_subscription_answers_not_subscribed)
{
	struct rly_pkt_rec rec;
	uint8_t tok[RLY_COOKIE_LEN];

	rly_ctl_subs_token(subs, tc_ip("10.0.0.8"), htons(8000), tc_stream, 4, tok);
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.0.0.8", 8000, 4, 1, tok);
	rly_ctl_subs_on_packet(subs, &rec, 2000);
	tc_ref(&rec, RLY_MSG_UNSUBSCRIBE, "10.0.0.8", 8000, 4, 2, tok);
	rly_ctl_subs_on_packet(subs, &rec, 2000);
	cr_assert_eq(dp.n_sent, 2);
	const struct rly_wire_ack *hb = tc_body(&dp.sent[0], RLY_MSG_HEARTBEAT_ACK);
	const struct rly_wire_ack *un = tc_body(&dp.sent[1], RLY_MSG_UNSUB_ACK);
	cr_assert_not_null(hb);
	cr_assert_not_null(un);
	cr_assert_eq(rly_be16_load(&hb->status), RLY_SUB_NOT_SUBSCRIBED);
	cr_assert_eq(rly_be16_load(&un->status), RLY_SUB_NOT_SUBSCRIBED);
	cr_assert_eq(dp.n_cmds, 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_BAD_TOKEN), 0);
}

Test(control_subs, unsubscribe_removes_then_acks_after_the_dataplane_did)
{
	struct rly_wire_ack a = subscribe("10.0.0.8", 8000, 1, 6000, 1000, RLY_CMD_OK);
	struct rly_pkt_rec rec;
	unsigned sent = dp.n_sent, cmds = dp.n_cmds;

	tc_ref(&rec, RLY_MSG_UNSUBSCRIBE, "10.0.0.8", 8000, 1, 31, a.token);
	rly_ctl_subs_on_packet(subs, &rec, 2000);
	cr_assert_eq(dp.n_cmds, cmds + 1);
	cr_assert_eq(dp.cmds[cmds].op, RLY_CMD_SUB_DEL);
	cr_assert_eq(dp.cmds[cmds].ep.ip_be, tc_ip("10.0.0.8"));
	cr_assert_eq(dp.n_sent, sent, "UNSUB_ACK waits for the SUB_DEL");
	cr_assert_eq(rly_ctl_subs_count(subs), 0);
	cr_assert_eq(rly_ctl_subs_tick(subs, 100000), 0, "an unsubscribed lease does not expire");

	answer(&dp.cmds[cmds], RLY_CMD_OK, 2001);
	cr_assert_eq(dp.n_sent, sent + 1);
	const struct rly_wire_ack *ack = tc_body(&dp.sent[sent], RLY_MSG_UNSUB_ACK);
	cr_assert_not_null(ack);
	cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_OK);
	cr_assert_eq(rly_be64_load(&ack->request_id), 31);
	cr_assert_eq(ctr(RLY_CTR_CTL_UNSUBSCRIBED), 1);
	cr_assert_not_null(strstr(logged(), "\"event\":\"unsubscribed\""));
}

Test(control_subs, full_dataplane_table_is_refused_as_table_full)
{
	struct rly_wire_ack a = subscribe("10.0.0.1", 1, 0, 5000, 1, RLY_CMD_SUBS_FULL);

	cr_assert_eq(rly_be16_load(&a.status), RLY_SUB_TABLE_FULL);
	cr_assert_eq(rly_be32_load(&a.lease_ms), 0);
	uint8_t zero[RLY_COOKIE_LEN] = {0};
	cr_assert_arr_eq(a.token, zero, RLY_COOKIE_LEN, "no token without a subscription");
	cr_assert_eq(rly_ctl_subs_count(subs), 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REFUSED), 1);
	cr_assert_not_null(strstr(logged(), "\"event\":\"command_refused\""));
	cr_assert_not_null(strstr(logged(), "\"status\":\"SUBS_FULL\""));
	a = subscribe("10.0.0.2", 1, 0, 5000, 1, RLY_CMD_STREAMS_FULL);
	cr_assert_eq(rly_be16_load(&a.status), RLY_SUB_TABLE_FULL);
}

Test(control_subs, subscribe_flood_from_one_address_is_cut_to_the_rate)
{
	struct rly_pkt_rec rec;

	tc_subscribe(&rec, "10.9.9.9", 1, 0, 1000, 1, 0, NULL);
	for (unsigned i = 0; i < 150; i++)
		rly_ctl_subs_on_packet(subs, &rec, 1000);
	cr_assert_eq(dp.n_sent, 100, "the burst is served");
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REFUSED), 50, "the rest is dropped and counted");
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REQ), 150);

	/* 100 ms at 50/s refills 5. */
	for (unsigned i = 0; i < 10; i++)
		rly_ctl_subs_on_packet(subs, &rec, 1100);
	cr_assert_eq(dp.n_sent, 105);

	/* Another address has its own bucket. */
	tc_subscribe(&rec, "10.9.9.8", 1, 0, 1000, 1, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 1100);
	cr_assert_eq(dp.n_sent, 106);
}

Test(control_subs, token_bucket_refills_at_the_rate_up_to_the_burst)
{
	struct rly_ctl_ratelimit rl;
	unsigned ok = 0;

	cr_assert_eq(rly_ctl_ratelimit_init(&rl, 10, 3, 16), 0);
	for (unsigned i = 0; i < 5; i++)
		ok += (unsigned)rly_ctl_ratelimit_allow(&rl, 1, 0);
	cr_assert_eq(ok, 3);
	cr_assert_eq(rly_ctl_ratelimit_allow(&rl, 1, 99), 0, "less than one token after 99 ms");
	cr_assert_eq(rly_ctl_ratelimit_allow(&rl, 1, 100), 1);
	ok = 0;
	for (unsigned i = 0; i < 10; i++)
		ok += (unsigned)rly_ctl_ratelimit_allow(&rl, 1, 1000000);
	cr_assert_eq(ok, 3, "a long pause refills to the burst, not beyond");
	rly_ctl_ratelimit_close(&rl);
}

static void dump_entry(uint32_t seq, const char *ip, uint16_t port, uint32_t partition,
		       uint64_t now)
{
	struct rly_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = RLY_EV_DUMP_ENTRY;
	ev.seq = seq;
	memcpy(ev.stream_key, tc_stream, RLY_STREAM_KEY_LEN);
	ev.partition = partition;
	ev.ep.ip_be = tc_ip(ip);
	ev.ep.udp_port_be = htons(port);
	ev.ep.port_id = 1;
	memcpy(ev.ep.mac, tc_mac, 6);
	rly_ctl_subs_on_event(subs, &ev, now);
}

static void dump_end(uint32_t seq, uint32_t n, uint64_t now)
{
	struct rly_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = RLY_EV_DUMP_END;
	ev.seq = seq;
	ev.count = n;
	rly_ctl_subs_on_event(subs, &ev, now);
}

Test(control_subs, resync_rebuilds_the_table_from_dump_entries)
{
	/* Something known before the resync is forgotten: only the dataplane's table counts. */
	subscribe("10.0.0.99", 1, 0, 60000, 1, RLY_CMD_OK);
	cr_assert_eq(rly_ctl_subs_resync_begin(subs, 20000), 0);
	cr_assert_eq(rly_ctl_subs_ready(subs), 0);
	unsigned cmds = dp.n_cmds;
	const struct rly_cmd *d = &dp.cmds[cmds - 1];
	cr_assert_eq(d->op, RLY_CMD_DUMP);

	dump_entry(d->seq, "10.1.0.1", 100, 0, 20001);
	dump_entry(d->seq, "10.1.0.2", 200, 5, 20001);
	dump_entry(d->seq + 7, "10.1.0.3", 300, 0, 20001); /* not our dump */
	cr_assert_eq(ctr(RLY_CTR_CTL_BAD_RECORD), 1);
	cr_assert_eq(rly_ctl_subs_tick(subs, 99999999), 0, "nothing expires while resyncing");
	dump_end(d->seq, 2, 20002);
	cr_assert_eq(rly_ctl_subs_ready(subs), 1);
	cr_assert_eq(rly_ctl_subs_count(subs), 2);
	cr_assert_eq(ctr(RLY_CTR_CTL_RESYNCS), 1);
	cr_assert_eq(rly_ctl_subs_expiry(subs, tc_stream, 5, tc_ip("10.1.0.2"), htons(200)),
		     20001 + 60000, "rebuilt with the default lease (the longest lease granted)");
	cr_assert_eq(rly_ctl_subs_expiry(subs, tc_stream, 0, tc_ip("10.0.0.99"), htons(1)), 0);
	cr_assert_not_null(strstr(logged(), "\"event\":\"resync_begin\""));
	cr_assert_not_null(strstr(logged(), "\"event\":\"resync_done\""));
	cr_assert_not_null(strstr(logged(), "\"entries\":2"));

	/* The rebuilt subscriber's token still works: it was never stored. */
	struct rly_pkt_rec rec;
	uint8_t tok[RLY_COOKIE_LEN];
	unsigned sent = dp.n_sent;
	rly_ctl_subs_token(subs, tc_ip("10.1.0.1"), htons(100), tc_stream, 0, tok);
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.1.0.1", 100, 0, 1, tok);
	rly_ctl_subs_on_packet(subs, &rec, 25000);
	const struct rly_wire_ack *ack = tc_body(&dp.sent[sent], RLY_MSG_HEARTBEAT_ACK);
	cr_assert_not_null(ack);
	cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_OK);

	/* Expiry then works on rebuilt entries, keeping the endpoint the dataplane reported. */
	cr_assert_eq(rly_ctl_subs_tick(subs, 80001), 1);
	cr_assert_eq(dp.cmds[dp.n_cmds - 1].op, RLY_CMD_SUB_DEL);
	cr_assert_eq(dp.cmds[dp.n_cmds - 1].ep.ip_be, tc_ip("10.1.0.2"));
	cr_assert_eq(dp.cmds[dp.n_cmds - 1].ep.port_id, 1);
}

Test(control_subs, answers_to_unknown_commands_are_counted_and_ignored)
{
	struct rly_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = RLY_EV_DONE;
	ev.seq = 5;
	rly_ctl_subs_on_event(subs, &ev, 0);
	ev.op = RLY_EV_DUMP_END;
	rly_ctl_subs_on_event(subs, &ev, 0);
	ev.op = 99;
	rly_ctl_subs_on_event(subs, &ev, 0);
	cr_assert_eq(ctr(RLY_CTR_CTL_BAD_RECORD), 3);
	cr_assert_eq(dp.n_sent, 0);
}

Test(control_subs, unusable_punt_records_are_counted_and_ignored)
{
	struct rly_pkt_rec rec;

	tc_subscribe(&rec, "10.0.0.1", 1, 0, 1000, 1, 0, NULL);
	rec.data[0] ^= 0xff; /* bad magic */
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 0), -EPROTO);
	tc_subscribe(&rec, "10.0.0.1", 1, 0, 1000, 1, 0, NULL);
	rec.len = 60000; /* longer than the record */
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 0), -EPROTO);
	tc_subscribe(&rec, "10.0.0.1", 1, 0, 1000, 1, 0, NULL);
	rec.len -= 1;
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 0), -EPROTO);
	/* Well-formed, but a type only a relay sends. */
	struct rly_wire_challenge ch;
	memset(&ch, 0, sizeof(ch));
	rly_be64_store(&ch.issued_ms, 1);
	tc_punt(&rec, RLY_MSG_CHALLENGE, &ch, "10.0.0.1", 1);
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 0), -EPROTO);
	cr_assert_eq(ctr(RLY_CTR_CTL_BAD_RECORD), 4);
	cr_assert_eq(ctr(RLY_CTR_WIRE_BASE + RLY_WIRE_ERR_BAD_MAGIC), 1, "refusals counted by reason");
	cr_assert_eq(ctr(RLY_CTR_WIRE_BASE + RLY_WIRE_ERR_LENGTH_MISMATCH), 1);
	cr_assert_eq(ctr(RLY_CTR_CTL_SUB_REQ), 0);
	cr_assert_eq(dp.n_sent, 0);
}

Test(control_subs, tokens_and_cookies_survive_a_restart_with_the_same_secret)
{
	struct rly_ctl_subs_cfg cfg = RLY_CTL_SUBS_CFG_DEFAULT;
	uint8_t other_secret[RLY_CTL_SECRET_LEN] = {1};
	struct rly_ctl_subs *again = make_subs(&cfg, secret);
	struct rly_ctl_subs *other = make_subs(&cfg, other_secret);
	uint8_t t1[RLY_COOKIE_LEN], t2[RLY_COOKIE_LEN], t3[RLY_COOKIE_LEN];

	rly_ctl_subs_token(subs, tc_ip("10.0.0.1"), htons(9), tc_stream, 0, t1);
	rly_ctl_subs_token(again, tc_ip("10.0.0.1"), htons(9), tc_stream, 0, t2);
	rly_ctl_subs_token(other, tc_ip("10.0.0.1"), htons(9), tc_stream, 0, t3);
	cr_assert_arr_eq(t1, t2, RLY_COOKIE_LEN);
	cr_assert_arr_neq(t1, t3, RLY_COOKIE_LEN);

	/* A challenge issued by one instance is accepted by its successor. */
	struct rly_pkt_rec rec;
	tc_subscribe(&rec, "10.0.0.1", 9, 0, 1000, 1, 0, NULL);
	rly_ctl_subs_on_packet(subs, &rec, 777);
	const struct rly_wire_challenge *ch = tc_body(&dp.sent[0], RLY_MSG_CHALLENGE);
	tc_subscribe(&rec, "10.0.0.1", 9, 0, 1000, 1, 777, ch->cookie);
	rly_ctl_subs_on_packet(again, &rec, 800);
	cr_assert_eq(dp.n_cmds, 1);
	cr_assert_eq(dp.cmds[0].op, RLY_CMD_SUB_ADD);
	rly_ctl_subs_on_packet(other, &rec, 800);
	cr_assert_eq(dp.n_cmds, 1, "a different secret refuses it");
	rly_ctl_subs_free(again);
	rly_ctl_subs_free(other);
}

Test(control_subs, full_tx_ring_drops_the_reply_and_the_retry_is_answered)
{
	struct rly_pkt_rec rec;

	dp.tx_full = 1;
	tc_subscribe(&rec, "10.0.0.1", 9, 0, 1000, 1, 0, NULL);
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 777), 0);
	cr_assert_eq(dp.n_sent, 0);
	dp.tx_full = 0;
	cr_assert_eq(rly_ctl_subs_on_packet(subs, &rec, 778), 0);
	cr_assert_eq(dp.n_sent, 1);
}

/* ---- the table behind the service ---- */

Test(control_subs, table_keeps_hash_and_expiry_order_consistent_under_churn)
{
	struct rly_ctl_sub_table t;
	struct rly_endpoint ep = {0};
	enum { N = 3000 };
	static uint64_t exp[N];
	unsigned live = 0;

	cr_assert_eq(rly_ctl_sub_table_init(&t), 0);
	srand(7);
	for (unsigned i = 0; i < N; i++) {
		struct rly_ctl_sub_key k;
		rly_ctl_sub_key_make(&k, tc_stream, i % 7, htonl(0x0a000000u + i), htons(1));
		exp[i] = 1 + (uint64_t)(rand() % 100000);
		cr_assert_not_null(rly_ctl_sub_table_upsert(&t, &k, &ep, 1, exp[i]));
		live++;
	}
	/* Renew a third, remove a third. */
	for (unsigned i = 0; i < N; i++) {
		struct rly_ctl_sub_key k;
		rly_ctl_sub_key_make(&k, tc_stream, i % 7, htonl(0x0a000000u + i), htons(1));
		struct rly_ctl_sub *s = rly_ctl_sub_table_find(&t, &k);
		cr_assert_not_null(s);
		if (i % 3 == 0) {
			exp[i] = 1 + (uint64_t)(rand() % 100000);
			rly_ctl_sub_table_renew(&t, s, exp[i]);
		} else if (i % 3 == 1) {
			rly_ctl_sub_table_remove(&t, s);
			exp[i] = 0;
			live--;
		}
	}
	cr_assert_eq(t.count, live);
	uint64_t last = 0;
	unsigned popped = 0;
	struct rly_ctl_sub *s;
	while ((s = rly_ctl_sub_table_first(&t))) {
		cr_assert_geq(s->expires_ms, last, "heap order");
		last = s->expires_ms;
		unsigned i = ntohl(s->key.ip_be) - 0x0a000000u;
		cr_assert_eq(s->expires_ms, exp[i]);
		rly_ctl_sub_table_remove(&t, s);
		popped++;
	}
	cr_assert_eq(popped, live);
	rly_ctl_sub_table_close(&t);
}

/* ---- secret file ---- */

static char tmpdir[64];

static void secret_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rly-ctl-secret-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void secret_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(control_secret, .init = secret_setup, .fini = secret_teardown);

Test(control_secret, missing_secret_is_created_private_and_then_reused)
{
	char path[128];
	uint8_t a[RLY_CTL_SECRET_LEN], b[RLY_CTL_SECRET_LEN], zero[RLY_CTL_SECRET_LEN] = {0};
	struct stat st;
	int created;

	snprintf(path, sizeof(path), "%s/sub/x.secret", tmpdir);
	cr_assert_eq(rly_ctl_secret_load(path, a, &created), 0, "%s", rly_err_msg());
	cr_assert_eq(created, 1);
	cr_assert_arr_neq(a, zero, sizeof(a));
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(st.st_size, 32);
	snprintf(path, sizeof(path), "%s/sub", tmpdir);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0700);

	snprintf(path, sizeof(path), "%s/sub/x.secret", tmpdir);
	cr_assert_eq(rly_ctl_secret_load(path, b, &created), 0);
	cr_assert_eq(created, 0);
	cr_assert_arr_eq(a, b, sizeof(a));
}

Test(control_secret, group_readable_secret_is_refused_with_chmod_advice)
{
	char path[128];
	uint8_t a[RLY_CTL_SECRET_LEN];
	int created;

	snprintf(path, sizeof(path), "%s/x.secret", tmpdir);
	cr_assert_eq(rly_ctl_secret_load(path, a, &created), 0);
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(rly_ctl_secret_load(path, a, &created), -EPERM);
	cr_assert_not_null(strstr(rly_err_msg(), "chmod 600"), "%s", rly_err_msg());
	cr_assert_eq(chmod(path, 0604), 0);
	cr_assert_eq(rly_ctl_secret_load(path, a, &created), -EPERM);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(rly_ctl_secret_load(path, a, &created), 0);
}

Test(control_secret, secret_of_the_wrong_size_is_refused)
{
	char path[128];
	uint8_t a[RLY_CTL_SECRET_LEN];
	int created;
	FILE *f;

	snprintf(path, sizeof(path), "%s/short.secret", tmpdir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("short", f);
	fclose(f);
	cr_assert_eq(chmod(path, 0600), 0);
	cr_assert_eq(rly_ctl_secret_load(path, a, &created), -EINVAL);
	cr_assert_not_null(strstr(rly_err_msg(), "holds 5 bytes"), "%s", rly_err_msg());
}

/* ---- log ---- */

Test(control_log, each_event_is_one_json_line_with_utc_microseconds)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct rly_ctl_logline l;

	rly_ctl_log_open(f, "inst-1", RLY_LOG_INFO);
	cr_assert_eq(rly_ctl_log_begin(&l, RLY_LOG_DEBUG, "hidden"), 0);
	rly_ctl_log_end(&l);
	cr_assert_eq(rly_ctl_log_begin(&l, RLY_LOG_INFO, "subscribe_added"), 1);
	rly_ctl_log_addr(&l, "src", tc_ip("192.0.2.1"), htons(4000));
	rly_ctl_log_stream(&l, tc_stream, 9);
	rly_ctl_log_u64(&l, "lease_ms", 5000);
	rly_ctl_log_str(&l, "note", "a \"quoted\"\nline");
	rly_ctl_log_end(&l);
	fclose(f);

	cr_assert_eq(strchr(buf, '\n'), buf + len - 1, "one line: %s", buf);
	cr_assert_eq(strncmp(buf, "{\"ts\":\"", 7), 0);
	/* 2026-11-24T20:19:17.123456Z */
	const char *ts = buf + 7;
	cr_assert_eq(ts[4], '-');
	cr_assert_eq(ts[10], 'T');
	cr_assert_eq(ts[19], '.');
	cr_assert_eq(ts[26], 'Z');
	cr_assert_not_null(strstr(buf,
				  "\"level\":\"info\",\"event\":\"subscribe_added\","
				  "\"instance\":\"inst-1\",\"src\":\"192.0.2.1:4000\","
				  "\"stream\":\"deadbeef0102030405060708090a0b0c\",\"partition\":9,"
				  "\"lease_ms\":5000,\"note\":\"a \\\"quoted\\\"\\u000aline\"}\n"),
			   "%s", buf);
	free(buf);
}
