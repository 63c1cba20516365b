/* SPDX-License-Identifier: Apache-2.0 */
/*
 * librelay-client against a fake relay on 127.0.0.1 (test_client_fake_relay.c): the subscribe
 * handshake and its failures (signed by an identity or anonymous), publisher packing and
 * signing, and everything a subscriber does with the datagrams it receives, signature checks
 * included. Assertions are on counts and bytes, never on time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "common/clock.h"
#include "relay/client.h"
#include "security/msgsig.h"
#include "test_client_fake_relay.h"

#define PARTITION 7u

struct rec {
	unsigned ev[5];	       /* count per enum rly_sub_event */
	unsigned ev_status[5]; /* last status per event */
	enum rly_sub_event order[32];
	unsigned n_order;
	uint64_t seq[512];
	uint32_t chain[512];
	uint16_t len[512];
	unsigned n_msgs;
	uint16_t sig_len[512];
	struct rly_gap gap[16];
	unsigned n_gaps;
	int bad_reason[64];
	uint64_t bad_seq[64];
	unsigned n_bad;
};

static void on_message(void *ctx, const struct rly_msg *m)
{
	struct rec *r = ctx;

	if (r->n_msgs < 512) {
		r->seq[r->n_msgs] = m->seq;
		r->chain[r->n_msgs] = m->chain;
		r->len[r->n_msgs] = m->payload_len;
		r->sig_len[r->n_msgs] = m->sig_len;
	}
	r->n_msgs++;
}

static void on_bad_message(void *ctx, const struct rly_msg *m, int reason)
{
	struct rec *r = ctx;

	if (r->n_bad < 64) {
		r->bad_reason[r->n_bad] = reason;
		r->bad_seq[r->n_bad] = m->seq;
	}
	r->n_bad++;
}

static void on_gap(void *ctx, const struct rly_gap *g)
{
	struct rec *r = ctx;

	if (r->n_gaps < 16)
		r->gap[r->n_gaps] = *g;
	r->n_gaps++;
}

static void on_event(void *ctx, enum rly_sub_event ev, unsigned status)
{
	struct rec *r = ctx;

	r->ev[ev]++;
	r->ev_status[ev] = status;
	if (r->n_order < 32)
		r->order[r->n_order++] = ev;
}

static void stream_key(uint8_t key[RLY_STREAM_KEY_LEN])
{
	rly_stream_key_from_name("test.stream", key);
}

/* Subscriber options beyond the defaults: an identity, no verification. */
struct sub_extra {
	const struct rly_identity *identity;
	int no_verify;
	int no_repair; /* deliver as received, report gaps at once (the path before issue 6) */
};

static rly_sub_t *make_sub_with(struct fake_relay *fr, struct rec *rec, int auto_resubscribe,
				const struct sub_extra *x)
{
	struct rly_sub_opts o;
	rly_sub_t *s;

	memset(&o, 0, sizeof(o));
	o.identity = x->identity;
	o.no_verify = x->no_verify;
	o.no_repair = x->no_repair;
	o.cb.on_bad_message = on_bad_message;
	o.relay = fr->addr;
	stream_key(o.stream_key);
	o.partition = PARTITION;
	o.lease_ms = 3000;
	o.auto_resubscribe = auto_resubscribe;
	o.cb.on_message = on_message;
	o.cb.on_gap = on_gap;
	o.cb.on_event = on_event;
	o.cb.ctx = rec;
	cr_assert_eq(rly_sub_create(&s, &o), 0, "%s", rly_client_errmsg());
	return s;
}

static rly_sub_t *make_sub(struct fake_relay *fr, struct rec *rec, int auto_resubscribe)
{
	static const struct sub_extra none;

	return make_sub_with(fr, rec, auto_resubscribe, &none);
}

static rly_sub_t *subscribed_sub(struct fake_relay *fr, struct rec *rec, int auto_resubscribe)
{
	rly_sub_t *s = make_sub(fr, rec, auto_resubscribe);

	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	return s;
}

/* Poll until @p cond holds, for at most 5 s (a generous bound: the check is the condition). */
#define POLL_UNTIL(s, cond)                                                                        \
	do {                                                                                       \
		uint64_t until_ = rly_mono_ns() + 5000000000ull;                                   \
		while (!(cond) && rly_mono_ns() < until_)                                          \
			cr_assert_geq(rly_sub_poll((s), 10), 0, "%s", rly_client_errmsg());        \
	} while (0)

/* A fresh copy of the subscriber's counters, for use inside one expression. */
static const struct rly_sub_stats *stats(rly_sub_t *s)
{
	static struct rly_sub_stats st;

	rly_sub_stats(s, &st);
	return &st;
}

/* Two publishers with real key pairs (each Test runs in a process of its own). */
static const struct rly_identity *pub_id(int which)
{
	static struct rly_identity ids[2];
	static int made;

	if (!made) {
		cr_assert_eq(rly_identity_generate(&ids[0]), 0);
		cr_assert_eq(rly_identity_generate(&ids[1]), 0);
		made = 1;
	}
	return &ids[which];
}
#define PUB_A pub_id(0)
#define PUB_B pub_id(1)

/* Send one DATA datagram with one message signed by @p pub to the subscriber. */
static void send_msg(struct fake_relay *fr, const struct rly_identity *pub, uint32_t chain,
		     uint64_t seq, uint64_t prev)
{
	uint8_t key[RLY_STREAM_KEY_LEN], buf[512];
	struct fake_msg m = {.stream_key = key,
			     .partition = PARTITION,
			     .signer = pub,
			     .chain = chain,
			     .seq = seq,
			     .prev_seq = prev,
			     .payload = "hello",
			     .payload_len = 5};

	stream_key(key);
	fake_relay_send_to_sub(fr, buf, fake_build_data(buf, sizeof(buf), &m, 1));
}

/* ------------------------------------------------------------------ helpers of util.c */

Test(client, stream_key_is_the_blake2b_128_of_the_name_and_round_trips_as_hex)
{
	uint8_t key[RLY_STREAM_KEY_LEN], back[RLY_STREAM_KEY_LEN];
	char hex[2 * RLY_STREAM_KEY_LEN + 1];

	/* Reference values from Python's hashlib.blake2b(name, digest_size=16). */
	rly_stream_key_from_name("", key);
	rly_stream_key_format(key, hex);
	cr_assert_str_eq(hex, "cae66941d9efbd404e4d88758ea67670");
	rly_stream_key_from_name("market.btc-usd", key);
	rly_stream_key_format(key, hex);
	cr_assert_str_eq(hex, "64d36d7c38d4df0fc6e6a9c9b368038b");

	cr_assert_eq(rly_stream_key_parse_hex("64D36D7C38D4DF0FC6E6A9C9B368038B", back), 0);
	cr_assert_arr_eq(back, key, sizeof(key));
	cr_assert_eq(rly_stream_key_parse_hex("64d36d7c38d4df0fc6e6a9c9b368038", back), -EINVAL);
	cr_assert_eq(rly_stream_key_parse_hex("64d36d7c38d4df0fc6e6a9c9b368038bb", back), -EINVAL);
	cr_assert_eq(rly_stream_key_parse_hex("g4d36d7c38d4df0fc6e6a9c9b368038b", back), -EINVAL);
	cr_assert(strstr(rly_client_errmsg(), "not hex") != NULL, "%s", rly_client_errmsg());
}

Test(client, parse_addr_takes_an_ipv4_address_with_an_optional_port)
{
	uint32_t ip;
	uint16_t port;

	cr_assert_eq(rly_parse_addr("10.1.2.3", 4747, &ip, &port), 0);
	cr_assert_eq(ip, inet_addr("10.1.2.3"));
	cr_assert_eq(port, htons(4747));
	cr_assert_eq(rly_parse_addr("127.0.0.1:9000", 4747, &ip, &port), 0);
	cr_assert_eq(ip, htonl(INADDR_LOOPBACK));
	cr_assert_eq(port, htons(9000));
	cr_assert_eq(rly_parse_addr("127.0.0.1:65536", 4747, &ip, &port), -EINVAL);
	cr_assert_eq(rly_parse_addr("127.0.0.1:", 4747, &ip, &port), -EINVAL);
	cr_assert_eq(rly_parse_addr("127.0.0.1:-1", 4747, &ip, &port), -EINVAL);
	cr_assert_eq(rly_parse_addr("localhost:80", 4747, &ip, &port), -EINVAL);
	cr_assert(strstr(rly_client_errmsg(), "a.b.c.d") != NULL, "%s", rly_client_errmsg());
	cr_assert_eq(rly_parse_addr("1.2.3", 4747, &ip, &port), -EINVAL);
	cr_assert_eq(rly_parse_addr("", 4747, &ip, &port), -EINVAL);
}

Test(client, identities_are_fresh_ed25519_key_pairs)
{
	struct rly_identity a, b;
	static const uint8_t zero[RLY_ID_LEN];

	cr_assert_eq(rly_identity_generate(&a), 0);
	cr_assert_eq(rly_identity_generate(&b), 0);
	cr_assert_arr_neq(a.pk, b.pk, RLY_ID_LEN);
	cr_assert_arr_neq(a.pk, zero, RLY_ID_LEN);
	/* libsodium's secret key ends with the public key. */
	cr_assert_arr_eq(a.sk + 32, a.pk, RLY_ID_LEN);
}

/* ------------------------------------------------------------------ handshake */

Test(client, subscribe_resends_when_the_first_challenge_is_lost, .timeout = 20)
{
	struct fake_relay fr = {.drop_challenges = 1};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub(&fr, &rec, 0);
	cr_assert_eq(rly_sub_is_subscribed(s), 0);
	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_sub_is_subscribed(s), 1);
	cr_assert_eq(FR_GET(&fr, subscribes_first), 2,
		     "one SUBSCRIBE lost its CHALLENGE, one resent");
	cr_assert_eq(FR_GET(&fr, challenges), 1);
	cr_assert_eq(FR_GET(&fr, subscribes_cookie), 1, "the cookie was echoed exactly once");
	cr_assert_eq(FR_GET(&fr, bad_cookies), 0);
	cr_assert_eq(FR_GET(&fr, last_lease_req), 3000);
	cr_assert_eq(rec.ev[RLY_SUB_EV_SUBSCRIBED], 1);
	cr_assert_eq(rec.ev_status[RLY_SUB_EV_SUBSCRIBED], RLY_SUB_OK);
	cr_assert_eq(stats(s)->resubscribes, 0);
	/* Subscribing again while subscribed is a no-op. */
	cr_assert_eq(rly_sub_subscribe(s, 1000), 0);
	cr_assert_eq(FR_GET(&fr, subscribes_first), 2);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, subscribe_reports_a_refusal_with_its_status, .timeout = 20)
{
	struct fake_relay fr = {.sub_status = RLY_SUB_DENIED};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub(&fr, &rec, 0);
	cr_assert_eq(rly_sub_subscribe(s, 5000), -ECONNREFUSED);
	cr_assert(strstr(rly_client_errmsg(), "DENIED") != NULL, "%s", rly_client_errmsg());
	cr_assert_eq(rec.ev[RLY_SUB_EV_REFUSED], 1);
	cr_assert_eq(rec.ev_status[RLY_SUB_EV_REFUSED], RLY_SUB_DENIED);
	cr_assert_eq(rec.ev[RLY_SUB_EV_SUBSCRIBED], 0);
	cr_assert_eq(rly_sub_is_subscribed(s), 0);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, subscribe_times_out_when_nobody_answers, .timeout = 20)
{
	struct fake_relay fr = {.drop_challenges = 1000};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub(&fr, &rec, 0);
	cr_assert_eq(rly_sub_subscribe(s, 400), -ETIMEDOUT);
	cr_assert(strstr(rly_client_errmsg(), "timed out") != NULL, "%s", rly_client_errmsg());
	cr_assert(strstr(rly_client_errmsg(), fr.addr) != NULL, "%s", rly_client_errmsg());
	/* Resends back off: 400 ms leave room for the first and the resends at 100 and 300 ms. */
	cr_assert_geq(FR_GET(&fr, subscribes_first), 2);
	cr_assert_leq(FR_GET(&fr, subscribes_first), 4);
	cr_assert_eq(rec.n_order, 0);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

/* ------------------------------------------------------------------ publisher */

static int plain_socket(struct sockaddr_in *a)
{
	socklen_t alen = sizeof(*a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)a, sizeof(*a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)a, &alen), 0);
	return fd;
}

/* Receive one datagram within 2 s; returns its length. */
static size_t recv_dgram(int fd, uint8_t *buf, size_t cap)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	cr_assert_eq(poll(&p, 1, 2000), 1, "no datagram arrived");
	n = recv(fd, buf, cap, 0);
	cr_assert_gt(n, 0);
	return (size_t)n;
}

static int nothing_waiting(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	return poll(&p, 1, 50) == 0;
}

static rly_pub_t *make_pub(const struct sockaddr_in *to, uint32_t dgram_max, uint32_t per_dgram)
{
	struct rly_pub_opts o;
	char addr[32];
	rly_pub_t *p;

	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(to->sin_port));
	memset(&o, 0, sizeof(o));
	o.relay = addr;
	stream_key(o.stream_key);
	o.partition = PARTITION;
	o.content_type = 0x1234;
	o.dgram_max = dgram_max;
	o.msgs_per_dgram = per_dgram;
	cr_assert_eq(rly_pub_create(&p, &o), 0, "%s", rly_client_errmsg());
	return p;
}

Test(client, publisher_packs_messages_into_datagrams_with_consecutive_sequences)
{
	uint8_t buf[4096], key[RLY_STREAM_KEY_LEN], payload[20];
	struct rly_pub_stats st;
	struct sockaddr_in a;
	int fd = plain_socket(&a);
	rly_pub_t *p = make_pub(&a, 0, 4);
	uint64_t before = rly_real_ns(), expect_seq = 1;
	const unsigned counts[] = {4, 4, 2};

	stream_key(key);
	for (unsigned i = 0; i < 10; i++) {
		memset(payload, (int)i, sizeof(payload));
		cr_assert_eq(rly_pub_offer(p, payload, sizeof(payload)), 0);
	}
	cr_assert(nothing_waiting(fd), "datagrams wait for a full vector or a flush");
	cr_assert_eq(rly_pub_flush(p), 0);
	rly_pub_stats(p, &st);
	cr_assert_eq(st.msgs, 10);
	cr_assert_eq(st.dgrams, 3);
	cr_assert_eq(st.last_seq, 10);
	cr_assert_neq(st.chain, 0);

	for (unsigned d = 0; d < 3; d++) {
		size_t n = recv_dgram(fd, buf, sizeof(buf)), off = 0;
		const struct rly_wire_msg_hdr *h;
		struct rly_wire_view v;

		cr_assert_eq(n, 8 + counts[d] * (96 + 20 + 64));
		cr_assert_eq(rly_wire_parse(buf, n, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK);
		cr_assert_eq(v.type, RLY_MSG_DATA);
		cr_assert_eq(v.count, counts[d]);
		while ((h = rly_wire_next_msg(&v, &off)) != NULL) {
			const uint8_t *pl = (const uint8_t *)(h + 1);
			cr_assert_arr_eq(h->stream_key, key, RLY_STREAM_KEY_LEN);
			cr_assert_eq(rly_be32_load(&h->partition), PARTITION);
			cr_assert_eq(rly_be32_load(&h->chain), st.chain);
			cr_assert_arr_eq(h->publisher, rly_pub_publisher(p), RLY_ID_LEN);
			cr_assert_eq(rly_be64_load(&h->seq), expect_seq);
			cr_assert_eq(rly_be64_load(&h->prev_seq), expect_seq - 1);
			cr_assert_geq(rly_be64_load(&h->timestamp_ns), before);
			cr_assert_leq(rly_be64_load(&h->timestamp_ns), rly_real_ns());
			cr_assert_eq(rly_be16_load(&h->content_type), 0x1234);
			cr_assert_eq(rly_be16_load(&h->flags), RLY_MSG_F_SIGNED);
			cr_assert_eq(rly_be16_load(&h->sig_len), 64);
			cr_assert(rly_msg_verify(h), "message %lu is signed by the publisher",
				  (unsigned long)expect_seq);
			cr_assert_eq(rly_be32_load(&h->key_id), 0);
			cr_assert_eq(h->ttl, 0);
			cr_assert_eq(rly_be16_load(&h->payload_len), 20);
			cr_assert_eq(pl[0], expect_seq - 1);
			cr_assert_eq(pl[19], expect_seq - 1);
			expect_seq++;
		}
	}
	cr_assert_eq(expect_seq, 11);
	cr_assert(nothing_waiting(fd));
	rly_pub_free(p);
	close(fd);
}

Test(client, publisher_fills_each_datagram_up_to_dgram_max)
{
	uint8_t buf[4096], payload[80] = {0};
	struct sockaddr_in a;
	int fd = plain_socket(&a);
	rly_pub_t *p = make_pub(&a, 500, 0);
	const unsigned counts[] = {2, 2, 1};

	/* 8 + 2 * (96 + 80 + 64) = 488 bytes; a third message would make 728 > 500. */
	for (unsigned i = 0; i < 5; i++)
		cr_assert_eq(rly_pub_offer(p, payload, sizeof(payload)), 0);
	cr_assert_eq(rly_pub_flush(p), 0);
	for (unsigned d = 0; d < 3; d++) {
		size_t n = recv_dgram(fd, buf, sizeof(buf));
		struct rly_wire_view v;
		cr_assert_eq(rly_wire_parse(buf, n, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK);
		cr_assert_eq(v.count, counts[d]);
		cr_assert_leq(n, 500);
	}
	cr_assert(nothing_waiting(fd));
	rly_pub_free(p);
	close(fd);
}

Test(client, publisher_refuses_a_payload_that_cannot_fit_one_datagram)
{
	uint8_t buf[4096], payload[2000] = {0};
	struct rly_pub_stats st;
	struct sockaddr_in a;
	int fd = plain_socket(&a);
	rly_pub_t *p = make_pub(&a, 0, 0);
	struct rly_wire_view v;
	size_t n;

	/* The signature takes 64 bytes of the datagram too. */
	cr_assert_eq(RLY_WIRE_MAX_PAYLOAD(1472, RLY_WIRE_SIG_LEN), 1472 - 8 - 96 - 64);
	cr_assert_eq(rly_pub_offer(p, payload, 1472 - 8 - 96 - 64 + 1), -EMSGSIZE);
	cr_assert(strstr(rly_client_errmsg(), "does not fit") != NULL, "%s", rly_client_errmsg());
	/* The refused message took no sequence number; the largest one that fits goes out. */
	cr_assert_eq(rly_pub_offer(p, payload, 1472 - 8 - 96 - 64), 0);
	cr_assert_eq(rly_pub_flush(p), 0);
	rly_pub_stats(p, &st);
	cr_assert_eq(st.last_seq, 1);
	n = recv_dgram(fd, buf, sizeof(buf));
	cr_assert_eq(n, 1472);
	cr_assert_eq(rly_wire_parse(buf, n, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK);
	cr_assert_eq(rly_be64_load(v.body + 56), 1);
	rly_pub_free(p);
	close(fd);
}

Test(client, publisher_sends_once_a_full_vector_of_64_datagrams_is_queued)
{
	uint8_t buf[4096];
	struct rly_pub_stats st;
	struct sockaddr_in a;
	int fd = plain_socket(&a);
	rly_pub_t *p = make_pub(&a, 0, 1);

	for (unsigned i = 0; i < 63; i++)
		cr_assert_eq(rly_pub_offer(p, "x", 1), 0);
	rly_pub_stats(p, &st);
	cr_assert_eq(st.dgrams, 0);
	cr_assert(nothing_waiting(fd));
	cr_assert_eq(rly_pub_offer(p, "x", 1), 0);
	rly_pub_stats(p, &st);
	cr_assert_eq(st.dgrams, 64);
	cr_assert_eq(st.msgs, 64);
	cr_assert_eq(st.bytes, 64 * (8 + 96 + 1 + 64));
	for (unsigned i = 0; i < 64; i++)
		cr_assert_eq(recv_dgram(fd, buf, sizeof(buf)), 8 + 96 + 1 + 64);
	rly_pub_free(p);
	close(fd);
}

Test(client, publisher_keeps_its_chain_when_given_and_flushes_on_free)
{
	uint8_t buf[4096];
	struct rly_pub_opts o;
	struct rly_identity id;
	struct sockaddr_in a;
	struct rly_wire_view v;
	int fd = plain_socket(&a);
	char addr[32];
	rly_pub_t *p;
	size_t n;

	cr_assert_eq(rly_identity_generate(&id), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(a.sin_port));
	memset(&o, 0, sizeof(o));
	o.relay = addr;
	o.chain = 0xc0ffee;
	o.identity = &id;
	cr_assert_eq(rly_pub_create(&p, &o), 0, "%s", rly_client_errmsg());
	cr_assert_arr_eq(rly_pub_publisher(p), id.pk, RLY_ID_LEN);
	cr_assert_eq(rly_pub_offer(p, "abc", 3), 0);
	rly_pub_free(p);
	n = recv_dgram(fd, buf, sizeof(buf));
	cr_assert_eq(rly_wire_parse(buf, n, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK);
	cr_assert_eq(rly_be32_load(v.body + 20), 0xc0ffee);
	cr_assert_arr_eq(v.body + 24, id.pk, RLY_ID_LEN);
	cr_assert(rly_msg_verify((const struct rly_wire_msg_hdr *)v.body),
		  "signed by the identity it was given");
	close(fd);
}

Test(client, create_refuses_bad_addresses_with_a_message)
{
	struct rly_pub_opts po = {.relay = "300.1.1.1"};
	struct rly_sub_opts so = {.relay = "127.0.0.1:0"};
	rly_pub_t *p;
	rly_sub_t *s;

	cr_assert_eq(rly_pub_create(&p, &po), -EINVAL);
	cr_assert(strstr(rly_client_errmsg(), "300.1.1.1") != NULL, "%s", rly_client_errmsg());
	cr_assert_null(p);
	cr_assert_eq(rly_sub_create(&s, &so), -EINVAL);
	cr_assert(strstr(rly_client_errmsg(), "nonzero port") != NULL, "%s", rly_client_errmsg());
	po.relay = "127.0.0.1";
	po.dgram_max = 50;
	cr_assert_eq(rly_pub_create(&p, &po), -EINVAL);
	cr_assert(strstr(rly_client_errmsg(), "dgram_max") != NULL, "%s", rly_client_errmsg());
}

/* ------------------------------------------------------------------ subscriber data path */

/* Without repair (no_repair): the gaps are reported as soon as they are seen. With repair the
 * same stream is covered by test_client_repair.c. */
Test(client, without_repair_the_exact_range_of_skipped_sequences_is_reported_at_once,
     .timeout = 20)
{
	static const struct sub_extra no_repair = {.no_repair = 1};
	struct fake_relay fr = {0};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub_with(&fr, &rec, 0, &no_repair);
	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	send_msg(&fr, PUB_A, 9, 1, 0);
	send_msg(&fr, PUB_A, 9, 2, 1);
	send_msg(&fr, PUB_A, 9, 3, 2);
	send_msg(&fr, PUB_A, 9, 7, 6); /* 4, 5 and 6 never came */
	send_msg(&fr, PUB_A, 9, 8, 7);
	send_msg(&fr, PUB_A, 9, 20, 10); /* publisher skipped 9 itself; 10 is missing */
	POLL_UNTIL(s, rec.n_msgs >= 6);
	cr_assert_eq(rec.n_msgs, 6);
	cr_assert_eq(rec.n_gaps, 2);
	cr_assert_eq(rec.gap[0].from_seq, 4);
	cr_assert_eq(rec.gap[0].to_seq, 6);
	cr_assert_eq(rec.gap[0].chain, 9);
	cr_assert_arr_eq(rec.gap[0].publisher, PUB_A->pk, RLY_ID_LEN);
	cr_assert_eq(rec.gap[1].from_seq, 9);
	cr_assert_eq(rec.gap[1].to_seq, 10);
	cr_assert_eq(stats(s)->gaps, 2);
	cr_assert_eq(stats(s)->missing, 5);
	cr_assert_eq(stats(s)->msgs, 6);
	cr_assert_eq(rec.seq[3], 7);
	cr_assert_eq(rec.len[3], 5);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, subscriber_drops_duplicates_and_late_messages_as_stale, .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	send_msg(&fr, PUB_A, 1, 1, 0);
	send_msg(&fr, PUB_A, 1, 2, 1);
	send_msg(&fr, PUB_A, 1, 3, 2);
	send_msg(&fr, PUB_A, 1, 3, 2); /* duplicate */
	send_msg(&fr, PUB_A, 1, 2, 1); /* late */
	send_msg(&fr, PUB_A, 1, 4, 3);
	POLL_UNTIL(s, rec.n_msgs >= 4 && stats(s)->stale >= 2);
	cr_assert_eq(rec.n_msgs, 4);
	cr_assert_eq(stats(s)->stale, 2);
	cr_assert_eq(stats(s)->gaps, 0);
	cr_assert_eq(rec.seq[3], 4);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, without_repair_a_late_message_that_fills_a_reported_gap_is_delivered_once,
     .timeout = 20)
{
	static const struct sub_extra no_repair = {.no_repair = 1};
	struct fake_relay fr = {0};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub_with(&fr, &rec, 0, &no_repair);
	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	send_msg(&fr, PUB_A, 3, 1, 0);
	send_msg(&fr, PUB_A, 3, 5, 4); /* 2..4 missing */
	send_msg(&fr, PUB_A, 3, 3, 2); /* a relay repairs 3: the middle of the hole */
	send_msg(&fr, PUB_A, 3, 3, 2); /* again: now a duplicate */
	send_msg(&fr, PUB_A, 3, 2, 1); /* and 2, the hole's low end */
	send_msg(&fr, PUB_A, 3, 4, 3); /* and 4, what is left of it */
	send_msg(&fr, PUB_A, 3, 4, 3); /* duplicate */
	POLL_UNTIL(s, rec.n_msgs >= 5 && stats(s)->stale >= 2);
	cr_assert_eq(rec.n_msgs, 5, "1, 5, then 3, 2 and 4 once each");
	cr_assert_eq(stats(s)->gaps, 1);
	cr_assert_eq(stats(s)->missing, 3);
	cr_assert_eq(stats(s)->repaired, 3);
	cr_assert_eq(stats(s)->stale, 2);
	cr_assert_eq(rec.seq[2], 3);
	cr_assert_eq(rec.seq[3], 2);
	cr_assert_eq(rec.seq[4], 4);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, subscriber_tracks_each_publisher_chain_apart_and_joins_chains_mid_stream,
     .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	send_msg(&fr, PUB_A, 5, 1, 0);
	send_msg(&fr, PUB_A, 5, 2, 1);
	send_msg(&fr, PUB_A, 6, 50, 49);   /* a new chain we joined late: no gap */
	send_msg(&fr, PUB_B, 5, 900, 899); /* same chain id, other publisher: its own chain */
	send_msg(&fr, PUB_A, 5, 3, 2);
	send_msg(&fr, PUB_A, 6, 51, 50);
	send_msg(&fr, PUB_B, 5, 901, 900);
	POLL_UNTIL(s, rec.n_msgs >= 7);
	cr_assert_eq(rec.n_msgs, 7);
	cr_assert_eq(stats(s)->chains, 3);
	cr_assert_eq(stats(s)->gaps, 0);
	cr_assert_eq(stats(s)->stale, 0);
	cr_assert_eq(rec.chain[2], 6);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, subscriber_counts_malformed_datagrams_by_reason_and_keeps_going, .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	uint8_t key[RLY_STREAM_KEY_LEN], good[512], bad[512];
	struct fake_msg m = {.stream_key = key,
			     .partition = PARTITION,
			     .signer = PUB_A,
			     .chain = 1,
			     .seq = 1,
			     .prev_seq = 0,
			     .payload = "x",
			     .payload_len = 1};
	size_t n;
	rly_sub_t *s;

	stream_key(key);
	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	n = fake_build_data(good, sizeof(good), &m, 1);

	memcpy(bad, good, n);
	bad[0] = 'X'; /* magic */
	fake_relay_send_to_sub(&fr, bad, n);
	fake_relay_send_to_sub(&fr, good, 5); /* shorter than the datagram header */
	memcpy(bad, good, n);
	bad[2] = 2; /* version */
	fake_relay_send_to_sub(&fr, bad, n);
	fake_relay_send_to_sub(&fr, good, n - 1); /* header length says one byte more */
	m.seq = 0;				  /* sequence 0 is never valid */
	fake_relay_send_to_sub(&fr, bad, fake_build_data(bad, sizeof(bad), &m, 1));
	{
		uint8_t big[3000] = {0};
		memcpy(big, good, 8);
		fake_relay_send_to_sub(&fr, big, sizeof(big)); /* past any relay datagram */
	}
	fake_relay_send_to_sub(&fr, good, n);
	POLL_UNTIL(s, rec.n_msgs >= 1 && stats(s)->malformed >= 6);
	cr_assert_eq(rec.n_msgs, 1);
	cr_assert_eq(stats(s)->malformed, 6);
	cr_assert_eq(stats(s)->wire_err[RLY_WIRE_ERR_BAD_MAGIC], 1);
	cr_assert_eq(stats(s)->wire_err[RLY_WIRE_ERR_TRUNCATED_HEADER], 1);
	cr_assert_eq(stats(s)->wire_err[RLY_WIRE_ERR_BAD_VERSION], 1);
	cr_assert_eq(stats(s)->wire_err[RLY_WIRE_ERR_LENGTH_MISMATCH], 1);
	cr_assert_eq(stats(s)->wire_err[RLY_WIRE_ERR_BAD_SEQUENCE], 1);
	cr_assert_eq(stats(s)->wire_err[RLY_WIRE_ERR_OVERSIZED], 1);
	cr_assert_eq(stats(s)->wire_err[RLY_WIRE_ERR_OK], 0);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, subscriber_drops_messages_of_other_streams_and_partitions_as_foreign, .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	uint8_t key[RLY_STREAM_KEY_LEN], other[RLY_STREAM_KEY_LEN], buf[1024];
	struct fake_msg m[3] = {
	    {.stream_key = other, .partition = PARTITION, .signer = PUB_A, .chain = 1, .seq = 1},
	    {.stream_key = key, .partition = PARTITION + 1, .signer = PUB_A, .chain = 1, .seq = 1},
	    {.stream_key = key, .partition = PARTITION, .signer = PUB_A, .chain = 1, .seq = 1},
	};
	rly_sub_t *s;

	stream_key(key);
	rly_stream_key_from_name("another.stream", other);
	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	fake_relay_send_to_sub(&fr, buf, fake_build_data(buf, sizeof(buf), m, 3));
	POLL_UNTIL(s, rec.n_msgs >= 1);
	cr_assert_eq(rec.n_msgs, 1);
	cr_assert_eq(stats(s)->foreign, 2);
	cr_assert_eq(stats(s)->chains, 1, "foreign messages start no chain");
	cr_assert_eq(stats(s)->dgrams, 3, "CHALLENGE, SUB_ACK and the data datagram");
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

/* ------------------------------------------------------------------ lease */

Test(client, heartbeats_renew_the_lease_with_the_token, .timeout = 20)
{
	/* 200 ms periods: the lease is lost after 600 ms without an ack, which a test process
	 * descheduled on a loaded two-vCPU machine must not reach (100 ms periods sometimes did). */
	struct fake_relay fr = {.lease_ms = 600, .heartbeat_ms = 200};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	POLL_UNTIL(s, FR_GET(&fr, heartbeats) >= 5);
	cr_assert_geq(FR_GET(&fr, heartbeats), 5);
	cr_assert_eq(FR_GET(&fr, bad_tokens), 0);
	cr_assert_eq(rec.ev[RLY_SUB_EV_LOST], 0);
	cr_assert_eq(rly_sub_is_subscribed(s), 1);
	cr_assert_geq(stats(s)->heartbeats, 5);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, not_subscribed_answer_loses_the_lease_and_auto_resubscribes, .timeout = 20)
{
	struct fake_relay fr = {.lease_ms = 300, .heartbeat_ms = 100};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 1);
	/* As after a relay restart: the relay no longer knows the subscription. */
	FR_SET(&fr, hb_status_once, RLY_SUB_NOT_SUBSCRIBED);
	POLL_UNTIL(s, stats(s)->resubscribes >= 1);
	cr_assert_eq(stats(s)->resubscribes, 1);
	cr_assert_eq(rec.ev[RLY_SUB_EV_LOST], 1);
	cr_assert_eq(rec.ev_status[RLY_SUB_EV_LOST], RLY_SUB_NOT_SUBSCRIBED);
	cr_assert_eq(rec.ev[RLY_SUB_EV_SUBSCRIBED], 2);
	cr_assert_eq(rec.order[0], RLY_SUB_EV_SUBSCRIBED);
	cr_assert_eq(rec.order[1], RLY_SUB_EV_LOST);
	cr_assert_eq(rec.order[2], RLY_SUB_EV_SUBSCRIBED);
	cr_assert_eq(FR_GET(&fr, subscribes_cookie), 2, "a full handshake, cookie and all");
	cr_assert_eq(rly_sub_is_subscribed(s), 1);
	/* Data flows again on the new subscription. */
	send_msg(&fr, PUB_A, 1, 1, 0);
	POLL_UNTIL(s, rec.n_msgs >= 1);
	cr_assert_eq(rec.n_msgs, 1);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, a_heartbeat_unanswered_for_a_period_with_no_data_loses_the_lease, .timeout = 20)
{
	struct fake_relay fr = {.lease_ms = 300, .heartbeat_ms = 100};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	FR_SET(&fr, silent_heartbeats, 1);
	POLL_UNTIL(s, rec.ev[RLY_SUB_EV_LOST] >= 1);
	cr_assert_eq(rec.ev[RLY_SUB_EV_LOST], 1);
	cr_assert_eq(rec.ev_status[RLY_SUB_EV_LOST], RLY_SUB_UNAVAILABLE);
	cr_assert_eq(rly_sub_is_subscribed(s), 0);
	/* The heartbeat sent at 100 ms, sent again 100 ms later, unanswered for a period (100
	 * ms) and nothing else arrived: lost at about 200 ms. A process descheduled on a loaded
	 * machine may send one fewer (the loss check runs before the resend that is due). */
	cr_assert_geq(FR_GET(&fr, heartbeats), 1);
	cr_assert_leq(FR_GET(&fr, heartbeats), 2);
	/* Without auto_resubscribe it stays lost and stops sending. */
	{
		unsigned hb = FR_GET(&fr, heartbeats);
		for (int i = 0; i < 30; i++)
			cr_assert_geq(rly_sub_poll(s, 10), 0);
		cr_assert_eq(FR_GET(&fr, heartbeats), hb);
		cr_assert_eq(FR_GET(&fr, subscribes_first), 1);
	}
	cr_assert_eq(stats(s)->resubscribes, 0);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, data_still_flowing_keeps_a_subscription_whose_heartbeats_go_unanswered,
     .timeout = 20)
{
	/* relay-control away (killed, restarting): no heartbeat is answered, but the dataplane
	 * still delivers. That is no lost subscription; the heartbeats keep being sent. */
	struct fake_relay fr = {.lease_ms = 600, .heartbeat_ms = 200};
	struct rec rec = {0};
	rly_sub_t *s;
	uint64_t seq = 1;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 1);
	FR_SET(&fr, silent_heartbeats, 1);
	for (uint64_t until = rly_mono_ns() + 1000000000ull; rly_mono_ns() < until;) {
		send_msg(&fr, PUB_A, 4, seq, seq - 1);
		seq++;
		cr_assert_geq(rly_sub_poll(s, 20), 0);
	}
	cr_assert_eq(rec.ev[RLY_SUB_EV_LOST], 0, "data arrived all along");
	cr_assert_geq(FR_GET(&fr, heartbeats), 3, "unanswered heartbeats are sent again");
	/* The data stops too: now it is lost, within a period or two. */
	POLL_UNTIL(s, rec.ev[RLY_SUB_EV_LOST] >= 1);
	cr_assert_eq(rec.ev[RLY_SUB_EV_LOST], 1);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, unsubscribe_sends_the_token_and_waits_for_the_ack, .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub(&fr, &rec, 0);
	cr_assert_eq(rly_sub_unsubscribe(s, 100), -ENOTCONN);
	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	cr_assert_eq(rly_sub_unsubscribe(s, 5000), 0, "%s", rly_client_errmsg());
	cr_assert_eq(FR_GET(&fr, unsubscribes), 1);
	cr_assert_eq(FR_GET(&fr, bad_tokens), 0);
	cr_assert_eq(FR_GET(&fr, have_sub), 0);
	cr_assert_eq(rec.ev[RLY_SUB_EV_UNSUBSCRIBED], 1);
	cr_assert_eq(rec.ev_status[RLY_SUB_EV_UNSUBSCRIBED], RLY_SUB_OK);
	cr_assert_eq(rly_sub_is_subscribed(s), 0);
	/* No heartbeats after unsubscribing. */
	{
		unsigned hb = FR_GET(&fr, heartbeats);
		for (int i = 0; i < 10; i++)
			cr_assert_geq(rly_sub_poll(s, 10), 0);
		cr_assert_eq(FR_GET(&fr, heartbeats), hb);
	}
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, publisher_to_subscriber_through_the_fake_relay_delivers_everything, .timeout = 30)
{
	struct fake_relay fr = {.forward_data = 1};
	struct rec rec = {0};
	struct rly_pub_opts po;
	rly_sub_t *s;
	rly_pub_t *p;
	uint8_t payload[64] = {0};

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	memset(&po, 0, sizeof(po));
	po.relay = fr.addr;
	stream_key(po.stream_key);
	po.partition = PARTITION;
	po.msgs_per_dgram = 5;
	cr_assert_eq(rly_pub_create(&p, &po), 0, "%s", rly_client_errmsg());
	for (unsigned i = 0; i < 300; i++) {
		cr_assert_geq(rly_pub_offer(p, payload, sizeof(payload)), 0);
		if (i % 50 == 49) {
			cr_assert_eq(rly_pub_flush(p), 0);
			POLL_UNTIL(s, rec.n_msgs >= i + 1);
		}
	}
	cr_assert_eq(rec.n_msgs, 300);
	cr_assert_eq(stats(s)->gaps, 0);
	cr_assert_eq(stats(s)->chains, 1);
	cr_assert_eq(stats(s)->bad_sig, 0, "every signature verified");
	cr_assert_eq(rec.n_bad, 0);
	cr_assert_eq(rec.seq[299], 300);
	cr_assert_eq(rec.sig_len[299], 64);
	cr_assert_eq(FR_GET(&fr, data_dgrams), 60);
	rly_pub_free(p);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

/* ------------------------------------------------------------------ signatures */

/* Send @p m (one message) to the subscriber, first changing byte @p flip of the datagram
 * (0: none), as a relay or anyone on the path could. */
static void send_built(struct fake_relay *fr, const struct fake_msg *m, size_t flip)
{
	uint8_t buf[512];
	size_t n = fake_build_data(buf, sizeof(buf), m, 1);

	if (flip) {
		cr_assert_lt(flip, n);
		buf[flip] ^= 0x01;
	}
	fake_relay_send_to_sub(fr, buf, n);
}

Test(client, tampered_messages_are_dropped_counted_reported_and_move_no_sequence, .timeout = 30)
{
	/* The fake relay forwards a copy with one payload byte flipped before each original. */
	struct fake_relay fr = {.forward_data = 1, .corrupt_data = 1, .original_too = 1};
	struct rec rec = {0};
	struct rly_pub_opts po;
	uint8_t payload[24];
	rly_sub_t *s;
	rly_pub_t *p;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	memset(&po, 0, sizeof(po));
	po.relay = fr.addr;
	stream_key(po.stream_key);
	po.partition = PARTITION;
	po.msgs_per_dgram = 1;
	cr_assert_eq(rly_pub_create(&p, &po), 0, "%s", rly_client_errmsg());
	for (unsigned i = 0; i < 20; i++) {
		memset(payload, (int)i, sizeof(payload));
		cr_assert_geq(rly_pub_offer(p, payload, sizeof(payload)), 0);
	}
	cr_assert_eq(rly_pub_flush(p), 0);
	POLL_UNTIL(s, rec.n_msgs >= 20 && rec.n_bad >= 20);
	cr_assert_eq(FR_GET(&fr, corrupted), 20);
	cr_assert_eq(rec.n_bad, 20);
	cr_assert_eq(stats(s)->bad_sig, 20);
	for (unsigned i = 0; i < 20; i++) {
		cr_assert_eq(rec.bad_reason[i], RLY_BAD_SIGNATURE);
		cr_assert_eq(rec.bad_seq[i], i + 1);
	}
	/* Each forgery came first and claimed the original's sequence: had it counted, every
	 * original would now be stale. */
	cr_assert_eq(rec.n_msgs, 20);
	cr_assert_eq(stats(s)->stale, 0);
	cr_assert_eq(stats(s)->gaps, 0);
	cr_assert_eq(stats(s)->chains, 1);
	for (unsigned i = 0; i < 20; i++)
		cr_assert_eq(rec.seq[i], i + 1);
	rly_pub_free(p);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, a_forged_message_can_neither_invent_a_gap_nor_hide_one, .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	uint8_t key[RLY_STREAM_KEY_LEN];
	struct fake_msg m = {.stream_key = key,
			     .partition = PARTITION,
			     .signer = PUB_A,
			     .chain = 4,
			     .payload = "quote",
			     .payload_len = 5};
	rly_sub_t *s;

	stream_key(key);
	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);

	m.seq = 1, m.prev_seq = 0;
	send_built(&fr, &m, 0);
	/* Forged seq 10: had it counted, 2..9 would be reported missing. */
	m.seq = 10, m.prev_seq = 9;
	send_built(&fr, &m, 8 + 96 + 2);
	m.seq = 2, m.prev_seq = 1;
	send_built(&fr, &m, 0);
	/* Forged seq 3 without a signature: had it counted, the loss of 3 would be hidden. */
	m.signer = NULL, m.publisher = PUB_A->pk;
	m.seq = 3, m.prev_seq = 2;
	send_built(&fr, &m, 0);
	m.signer = PUB_A;
	m.seq = 4, m.prev_seq = 3;
	send_built(&fr, &m, 0);
	POLL_UNTIL(s, rec.n_msgs >= 3 && rec.n_bad >= 2);

	cr_assert_eq(rec.n_msgs, 3);
	cr_assert_eq(rec.seq[0], 1);
	cr_assert_eq(rec.seq[1], 2);
	cr_assert_eq(rec.seq[2], 4);
	cr_assert_eq(rec.n_bad, 2);
	cr_assert_eq(rec.bad_reason[0], RLY_BAD_SIGNATURE);
	cr_assert_eq(rec.bad_seq[0], 10);
	cr_assert_eq(rec.bad_reason[1], RLY_BAD_UNSIGNED);
	cr_assert_eq(rec.bad_seq[1], 3);
	cr_assert_eq(stats(s)->bad_sig, 2);
	cr_assert_eq(rec.n_gaps, 1, "only the real loss of seq 3 is a gap");
	cr_assert_eq(rec.gap[0].from_seq, 3);
	cr_assert_eq(rec.gap[0].to_seq, 3);
	cr_assert_eq(stats(s)->stale, 0);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, a_message_signed_by_another_key_than_its_publisher_field_is_dropped, .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	uint8_t key[RLY_STREAM_KEY_LEN], buf[512];
	struct fake_msg m = {.stream_key = key,
			     .partition = PARTITION,
			     .signer = PUB_B,
			     .chain = 1,
			     .seq = 1,
			     .payload = "x",
			     .payload_len = 1};
	size_t n;
	rly_sub_t *s;

	stream_key(key);
	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	/* Signed by B, then relabelled as A's: the signature is good, but not A's. */
	n = fake_build_data(buf, sizeof(buf), &m, 1);
	memcpy(buf + 8 + offsetof(struct rly_wire_msg_hdr, publisher), PUB_A->pk, RLY_ID_LEN);
	fake_relay_send_to_sub(&fr, buf, n);
	send_msg(&fr, PUB_A, 1, 1, 0);
	POLL_UNTIL(s, rec.n_msgs >= 1 && rec.n_bad >= 1);
	cr_assert_eq(rec.n_bad, 1);
	cr_assert_eq(rec.bad_reason[0], RLY_BAD_SIGNATURE);
	cr_assert_eq(rec.n_msgs, 1);
	cr_assert_eq(stats(s)->chains, 1, "the forgery started no chain");
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

/* Subscribe with @p no_verify, then send three unsigned messages and one signed one. */
static void unsigned_messages(int no_verify, struct rec *rec, struct rly_sub_stats *st)
{
	struct fake_relay fr = {0};
	struct sub_extra x = {.no_verify = no_verify};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub_with(&fr, rec, 0, &x);
	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	{
		uint8_t key[RLY_STREAM_KEY_LEN];
		struct fake_msg m = {.stream_key = key,
				     .partition = PARTITION,
				     .publisher = PUB_A->pk,
				     .chain = 2,
				     .payload = "plain",
				     .payload_len = 5};
		stream_key(key);
		for (uint64_t seq = 1; seq <= 3; seq++) {
			m.seq = seq, m.prev_seq = seq - 1;
			send_built(&fr, &m, 0);
		}
	}
	send_msg(&fr, PUB_A, 2, 4, 3);
	POLL_UNTIL(s, rec->n_msgs + rec->n_bad >= 4);
	rly_sub_stats(s, st);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, an_unsigned_message_is_refused_when_verifying_and_accepted_with_no_verify,
     .timeout = 20)
{
	struct rec verifying = {0}, trusting = {0};
	struct rly_sub_stats st;

	unsigned_messages(0, &verifying, &st);
	cr_assert_eq(verifying.n_msgs, 1);
	cr_assert_eq(verifying.seq[0], 4);
	cr_assert_eq(verifying.n_bad, 3);
	cr_assert_eq(verifying.bad_reason[0], RLY_BAD_UNSIGNED);
	cr_assert_eq(verifying.bad_reason[2], RLY_BAD_UNSIGNED);
	cr_assert_eq(st.bad_sig, 3);
	cr_assert_eq(st.gaps, 0, "the chain starts at the first verified message");

	unsigned_messages(1, &trusting, &st);
	cr_assert_eq(trusting.n_msgs, 4);
	cr_assert_eq(trusting.sig_len[0], 0);
	cr_assert_eq(trusting.sig_len[3], 64);
	cr_assert_eq(trusting.n_bad, 0);
	cr_assert_eq(st.bad_sig, 0);
	cr_assert_eq(st.gaps, 0);
}

Test(client, bad_message_reasons_have_text)
{
	cr_assert(strstr(rly_sub_bad_reason_str(RLY_BAD_UNSIGNED), "no signature") != NULL);
	cr_assert(strstr(rly_sub_bad_reason_str(RLY_BAD_SIGNATURE), "does not verify") != NULL);
	cr_assert_str_eq(rly_sub_bad_reason_str(0), "unknown reason");
}

Test(client, a_subscriber_with_an_identity_answers_the_challenge_with_subscribe_signed,
     .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	struct rly_identity id;
	struct sub_extra x = {.identity = &id};
	rly_sub_t *s;

	cr_assert_eq(rly_identity_generate(&id), 0);
	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub_with(&fr, &rec, 0, &x);
	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	/* The fake relay checked the signature with crypto_sign_verify_detached. */
	cr_assert_eq(FR_GET(&fr, signed_answers), 1);
	cr_assert_eq(FR_GET(&fr, bad_signed_answers), 0);
	cr_assert_eq(FR_GET(&fr, subscribes_cookie), 1);
	cr_assert_arr_eq(fr.last_subscriber, id.pk, RLY_ID_LEN);
	cr_assert_eq(rec.ev[RLY_SUB_EV_SUBSCRIBED], 1);
	/* Subscribed, it receives like anyone else. */
	send_msg(&fr, PUB_A, 1, 1, 0);
	POLL_UNTIL(s, rec.n_msgs >= 1);
	cr_assert_eq(rec.n_msgs, 1);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, an_anonymous_subscriber_answers_with_a_plain_subscribe, .timeout = 20)
{
	struct fake_relay fr = {0};
	struct rec rec = {0};
	rly_sub_t *s;

	cr_assert_eq(fake_relay_start(&fr), 0);
	s = subscribed_sub(&fr, &rec, 0);
	cr_assert_eq(FR_GET(&fr, subscribes_cookie), 1);
	cr_assert_eq(FR_GET(&fr, signed_answers), 0);
	cr_assert_eq(FR_GET(&fr, bad_signed_answers), 0);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, re_subscribing_after_a_lost_lease_signs_the_new_challenge_answer, .timeout = 20)
{
	struct fake_relay fr = {.lease_ms = 300, .heartbeat_ms = 100};
	struct rec rec = {0};
	struct rly_identity id;
	struct sub_extra x = {.identity = &id};
	rly_sub_t *s;

	cr_assert_eq(rly_identity_generate(&id), 0);
	cr_assert_eq(fake_relay_start(&fr), 0);
	s = make_sub_with(&fr, &rec, 1, &x);
	cr_assert_eq(rly_sub_subscribe(s, 5000), 0, "%s", rly_client_errmsg());
	FR_SET(&fr, hb_status_once, RLY_SUB_NOT_SUBSCRIBED);
	POLL_UNTIL(s, stats(s)->resubscribes >= 1);
	cr_assert_eq(stats(s)->resubscribes, 1);
	cr_assert_eq(FR_GET(&fr, signed_answers), 2);
	cr_assert_eq(FR_GET(&fr, bad_signed_answers), 0);
	rly_sub_free(s);
	fake_relay_stop(&fr);
}

Test(client, create_refuses_an_identity_whose_halves_do_not_match)
{
	struct rly_identity a, b;
	struct rly_pub_opts po = {.relay = "127.0.0.1:9"};
	struct rly_sub_opts so = {.relay = "127.0.0.1:9"};
	rly_pub_t *p;
	rly_sub_t *s;

	cr_assert_eq(rly_identity_generate(&a), 0);
	cr_assert_eq(rly_identity_generate(&b), 0);
	memcpy(a.pk, b.pk, RLY_ID_LEN);
	po.identity = &a;
	so.identity = &a;
	cr_assert_eq(rly_pub_create(&p, &po), -EINVAL);
	cr_assert(strstr(rly_client_errmsg(), "does not match") != NULL, "%s", rly_client_errmsg());
	cr_assert_eq(rly_sub_create(&s, &so), -EINVAL);
	cr_assert(strstr(rly_client_errmsg(), "does not match") != NULL, "%s", rly_client_errmsg());
	po.identity = &b;
	cr_assert_eq(rly_pub_create(&p, &po), 0, "%s", rly_client_errmsg());
	rly_pub_free(p);
}
