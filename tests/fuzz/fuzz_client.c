/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the subscriber side of librelay-client: everything behind the receive path
 * (client/sub.c sub_on_dgram: data messages, signature check, chain order; client/sub_keys.c:
 * held messages, key requests, KEY_RESPONSE, ratchet, decryption; client/session.c: the
 * handshake, acks, heartbeats, timers).
 *
 * Random bytes never get past an Ed25519 signature, so the input is a script of events, each a
 * kind byte and its arguments (missing bytes read as zero):
 *   RAW       bytes handed to sub_on_dgram as they are (optionally with a valid datagram header)
 *   DATA      1-3 messages the harness builds from the input and signs with a fixed publisher key
 *             (or a forger's, or not at all), optionally encrypted with a group key the harness
 *             derives for any key id (generation 1-3, ratchet step 0-8191)
 *   KEY_RESP  a KEY_RESPONSE to one of the KEY_REQUESTs the subscriber sent (read from the
 *             "relay" socket it is connected to), with status, key id, sealed key and signature
 *             right or wrong as the input says
 *   START / CHALLENGE / ACK / UNSUB / CLOCK   the session: a handshake started, answered, acked
 *             (SUB_ACK, HEARTBEAT_ACK, UNSUB_ACK), ended, and the fake clock moved with timers run
 *   SUBSCRIBE the whole handshake at once, so that key requests leave the subscriber
 *   BURST     up to 319 signed messages of one chain in a row (fills a chain's key-wait queue)
 *
 * After every event:
 *  - every datagram the subscriber sent parses; a KEY_REQUEST carries the subscriber's valid
 *    signature and its session's token; KEY_REQUESTs received = stats.key_requests;
 *  - stats add up: msgs + bad_sig + undecryptable + stale + foreign + held = messages fed,
 *    dgrams + malformed = datagrams fed, wire_err sums to malformed, callbacks = counters;
 *  - the key state is consistent (held and waiting counts, bounds);
 *  - before session_next_due, running the timers does nothing (sends, counts, changes nothing).
 * Every delivered message must be one the harness built, byte for byte (plaintext for encrypted
 * ones; only correctly signed ones unless no_verify), and no (publisher, chain, seq) twice.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "client/sub.h"
#include "security/e2e.h"
#include "security/msgsig.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_client: " __VA_ARGS__);                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_EVENTS  96u
#define MAX_RECORDS 1024u
#define MAX_PLAIN   200u
#define MAX_STEP    0x1FFFu
#define N_REQS	    8u
#define PARTITION   7u
#define MS	    1000000ull

enum kind {
	K_RAW,
	K_DATA,
	K_KEY_RESP,
	K_START,
	K_CHALLENGE,
	K_ACK,
	K_UNSUB,
	K_CLOCK,
	K_SUBSCRIBE,
	K_BURST,
	K_GAP,
	K_MAX
};

/* A message the harness built: what a delivery of it must look like. */
struct record {
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint64_t seq, prev_seq, timestamp_ns;
	uint32_t key_id;
	uint16_t content_type, flags, len;
	int authentic; /* signed by its publisher's key and untouched since */
	uint8_t payload[MAX_PLAIN + RLY_MSG_TAG_LEN];
};

struct delivered {
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint64_t seq;
};

/* A range reported lost: none of it may be delivered afterwards. */
struct lost {
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint64_t from, to;
};
#define N_LOST 64u

static struct {
	int ready;
	int verbose; /* FUZZ_CLIENT_VERBOSE set: one line of stats per input */
	int relay_fd;
	char relay_addr[32];
	struct rly_identity pubs[2], forger, me;
	uint8_t stream[RLY_STREAM_KEY_LEN];
	uint8_t gen_key[4][RLY_GROUP_KEY_LEN]; /* generation g's step 0 */
} G;

/* Per input. */
static struct {
	uint64_t mono, real;
	int no_verify;
	struct record rec[MAX_RECORDS];
	unsigned n_rec;
	struct delivered del[MAX_RECORDS];
	unsigned n_del;
	struct lost lost[N_LOST];
	unsigned n_lost_ranges;
	uint64_t fed_msgs, fed_dgrams, cb_msgs, cb_bad_sig, cb_undecryptable, cb_gaps;
	uint64_t cb_seen_gaps, cb_lost, naks_seen;
	int no_repair;
	uint64_t requests_seen, resp_ok_signed, sent;
	struct rly_wire_key_request reqs[N_REQS];
	unsigned n_reqs;
	uint64_t sub_request_id;
	int have_sub_request;
} T;


/* ---- keys ---- */

static void group_key(uint32_t key_id, int wrong, uint8_t out[RLY_GROUP_KEY_LEN])
{
	unsigned gen = RLY_KEY_ID_GEN(key_id) & 3u, step = RLY_KEY_ID_STEP(key_id);

	memcpy(out, G.gen_key[gen], RLY_GROUP_KEY_LEN);
	for (unsigned i = 0; i < step; i++)
		rly_group_key_ratchet(out);
	/* Two different wrong keys: a publisher's mistake (1) and a bad answer (2) must never
	 * meet, or a message nobody could read would decrypt. */
	if (wrong)
		out[0] ^= (uint8_t)(0x5a * wrong);
}

static uint32_t pick_key_id(void)
{
	unsigned gen = 1 + u8() % 3;

	return RLY_KEY_ID(gen, u16() & MAX_STEP);
}

static const struct rly_identity *publisher_of(const uint8_t pk[RLY_ID_LEN])
{
	for (unsigned i = 0; i < 2; i++)
		if (memcmp(G.pubs[i].pk, pk, RLY_ID_LEN) == 0)
			return &G.pubs[i];
	return NULL;
}

/* ---- the relay side: what the subscriber sends ---- */

static void drain_relay(const rly_sub_t *s)
{
	uint8_t buf[4096];
	ssize_t n;

	while ((n = recv(G.relay_fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		struct rly_wire_view v;
		T.sent++;
		enum rly_wire_err e = rly_wire_parse(buf, (size_t)n, RLY_WIRE_MAX_DGRAM, &v);

		CHECK(e == RLY_WIRE_ERR_OK,
		      "the subscriber sent a datagram (type 0x%02x) the parser refuses: %s",
		      n >= 4 ? buf[3] : 0, rly_wire_err_name(e));
		switch (v.type) {
		case RLY_MSG_SUBSCRIBE:
		case RLY_MSG_SUBSCRIBE_SIGNED: {
			const struct rly_wire_subscribe *b = (const void *)v.body;
			CHECK(memcmp(b->stream_key, G.stream, RLY_STREAM_KEY_LEN) == 0 &&
				  rly_be32_load(&b->partition) == PARTITION,
			      "SUBSCRIBE for another stream");
			T.sub_request_id = rly_be64_load(&b->request_id);
			T.have_sub_request = 1;
			break;
		}
		case RLY_MSG_HEARTBEAT:
		case RLY_MSG_UNSUBSCRIBE: {
			const struct rly_wire_sub_ref *r = (const void *)v.body;
			CHECK(s->sess.have_token &&
				  memcmp(r->token, s->sess.token, RLY_COOKIE_LEN) == 0,
			      "%s without the session's token", rly_msg_type_name(v.type));
			break;
		}
		case RLY_MSG_KEY_REQUEST: {
			const struct rly_wire_key_request *r = (const void *)v.body;
			CHECK(rly_key_request_verify(r), "KEY_REQUEST without a valid signature");
			CHECK(memcmp(r->requester, G.me.pk, RLY_ID_LEN) == 0,
			      "KEY_REQUEST names another requester");
			CHECK(s->sess.have_token &&
				  memcmp(r->token, s->sess.token, RLY_COOKIE_LEN) == 0,
			      "KEY_REQUEST without the session's token");
			CHECK(memcmp(r->stream_key, G.stream, RLY_STREAM_KEY_LEN) == 0 &&
				  rly_be32_load(&r->partition) == PARTITION,
			      "KEY_REQUEST for another stream");
			T.reqs[T.n_reqs % N_REQS] = *r;
			T.n_reqs++;
			T.requests_seen++;
			break;
		}
		case RLY_MSG_NAK: {
			const struct rly_wire_nak *k = (const void *)v.body;
			CHECK(!T.no_repair, "a NAK from a subscriber with repair off");
			CHECK(memcmp(k->stream_key, G.stream, RLY_STREAM_KEY_LEN) == 0 &&
				  rly_be32_load(&k->partition) == PARTITION,
			      "NAK for another stream");
			CHECK(s->sess.state == SESS_SUBSCRIBED, "a NAK while not subscribed");
			T.naks_seen++;
			break;
		}
		default:
			CHECK(0, "the subscriber sent a %s", rly_msg_type_name(v.type));
		}
	}
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "recv: %s", strerror(errno));
}

/* ---- callbacks ---- */

static int same_record(const struct record *r, const struct rly_msg *m)
{
	return memcmp(r->publisher, m->publisher, RLY_ID_LEN) == 0 && r->chain == m->chain &&
	       r->seq == m->seq && r->prev_seq == m->prev_seq &&
	       r->timestamp_ns == m->timestamp_ns && r->key_id == m->key_id &&
	       r->content_type == m->content_type && r->flags == m->flags &&
	       r->len == m->payload_len && memcmp(r->payload, m->payload, r->len) == 0;
}

static void on_message(void *ctx, const struct rly_msg *m)
{
	unsigned i;

	(void)ctx;
	T.cb_msgs++;
	CHECK(memcmp(m->stream_key, G.stream, RLY_STREAM_KEY_LEN) == 0 && m->partition == PARTITION,
	      "delivered a message of another stream");
	for (i = 0; i < T.n_rec; i++)
		if (same_record(&T.rec[i], m) && (T.rec[i].authentic || T.no_verify))
			break;
	CHECK(
	    i < T.n_rec,
	    "delivered chain %u seq %llu (key_id 0x%x, flags %u, %u bytes) that the harness never "
	    "published like this",
	    m->chain, (unsigned long long)m->seq, m->key_id, m->flags, m->payload_len);
	for (i = 0; i < T.n_del; i++)
		CHECK(!(T.del[i].chain == m->chain && T.del[i].seq == m->seq &&
			memcmp(T.del[i].publisher, m->publisher, RLY_ID_LEN) == 0),
		      "chain %u seq %llu delivered twice", m->chain, (unsigned long long)m->seq);
	for (i = 0; i < T.n_lost_ranges && !T.no_repair; i++)
		CHECK(!(T.lost[i].chain == m->chain && m->seq >= T.lost[i].from &&
			m->seq <= T.lost[i].to &&
			memcmp(T.lost[i].publisher, m->publisher, RLY_ID_LEN) == 0),
		      "chain %u seq %llu delivered after it was reported lost", m->chain,
		      (unsigned long long)m->seq);
	CHECK(T.n_del < MAX_RECORDS, "more deliveries than messages built");
	memcpy(T.del[T.n_del].publisher, m->publisher, RLY_ID_LEN);
	T.del[T.n_del].chain = m->chain;
	T.del[T.n_del].seq = m->seq;
	T.n_del++;
}

static void on_gap(void *ctx, const struct rly_gap *g)
{
	(void)ctx;
	T.cb_gaps++;
	CHECK(g->from_seq >= 1 && g->from_seq <= g->to_seq, "gap %llu..%llu",
	      (unsigned long long)g->from_seq, (unsigned long long)g->to_seq);
	CHECK(strcmp(rly_sub_gap_reason_name(g->reason), "UNKNOWN") != 0, "gap reason %d",
	      g->reason);
	CHECK(!T.no_repair || g->reason == RLY_SUB_GAP_SEEN, "a repair reason with repair off");
	/* Nothing reported lost may be delivered after (checked in on_message). */
	if (g->reason == RLY_SUB_GAP_SEEN) {
		T.cb_seen_gaps++;
	} else {
		T.cb_lost += g->to_seq - g->from_seq + 1;
		if (T.n_lost_ranges < N_LOST) {
			struct lost *l = &T.lost[T.n_lost_ranges++];
			memcpy(l->publisher, g->publisher, RLY_ID_LEN);
			l->chain = g->chain;
			l->from = g->from_seq;
			l->to = g->to_seq;
		}
	}
}

static void on_event(void *ctx, enum rly_sub_event ev, unsigned status)
{
	(void)ctx;
	(void)ev;
	(void)status;
}

static void on_bad(void *ctx, const struct rly_msg *m, int reason)
{
	(void)ctx;
	(void)m;
	switch (reason) {
	case RLY_BAD_UNSIGNED:
	case RLY_BAD_SIGNATURE:
		T.cb_bad_sig++;
		break;
	case RLY_BAD_NO_KEY:
	case RLY_BAD_DECRYPT:
		CHECK(m->flags & RLY_MSG_F_ENCRYPTED, "a plain message reported undecryptable");
		T.cb_undecryptable++;
		break;
	default:
		CHECK(0, "unknown bad-message reason %d", reason);
	}
}

/* ---- feeding datagrams ---- */

static void record_raw_messages(const struct rly_wire_view *v)
{
	const struct rly_wire_msg_hdr *h;
	size_t off = 0;

	while ((h = rly_wire_next_msg(v, &off)) != NULL) {
		T.fed_msgs++;
		/* Only plain messages can be delivered from raw bytes (with no_verify); nobody
		 * can make ciphertext authenticate without the key. */
		if (rly_be16_load(&h->flags) & RLY_MSG_F_ENCRYPTED || T.n_rec >= MAX_RECORDS ||
		    rly_be16_load(&h->payload_len) > MAX_PLAIN)
			continue;
		struct record *r = &T.rec[T.n_rec++];
		memcpy(r->publisher, h->publisher, RLY_ID_LEN);
		r->chain = rly_be32_load(&h->chain);
		r->seq = rly_be64_load(&h->seq);
		r->prev_seq = rly_be64_load(&h->prev_seq);
		r->timestamp_ns = rly_be64_load(&h->timestamp_ns);
		r->key_id = rly_be32_load(&h->key_id);
		r->content_type = rly_be16_load(&h->content_type);
		r->flags = rly_be16_load(&h->flags);
		r->len = rly_be16_load(&h->payload_len);
		memcpy(r->payload, h + 1, r->len);
		r->authentic = 0;
	}
}

/* Count what a datagram brings, then hand it to the subscriber. */
static void feed(rly_sub_t *s, const uint8_t *buf, size_t len, int raw)
{
	struct rly_wire_view v;
	/* The subscriber's buffer is SUB_BUF bytes: longer datagrams arrive truncated. */
	uint8_t *copy = malloc(len ? len : 1);

	CHECK(copy != NULL, "out of memory");
	memcpy(copy, buf, len);
	T.fed_dgrams++;
	if (raw && rly_wire_parse(copy, len, RLY_WIRE_MAX_DGRAM, &v) == RLY_WIRE_ERR_OK &&
	    v.type == RLY_MSG_DATA)
		record_raw_messages(&v);
	sub_on_dgram(s, copy, len, T.real, T.mono);
	free(copy);
}

static void build_and_feed_control(rly_sub_t *s, unsigned type, const void *body)
{
	uint8_t buf[RLY_WIRE_MAX_DGRAM];
	int n = rly_wire_build_control(buf, sizeof(buf), type, body);

	if (n > 0)
		feed(s, buf, (size_t)n, 0);
}

static void ev_raw(rly_sub_t *s)
{
	uint8_t buf[SUB_BUF];
	uint8_t flags = u8();
	size_t len = u16() % (sizeof(buf) + 1);

	/* Room to record every message it may hold (no_verify may deliver any of them). */
	if (T.n_rec + SUB_BUF / sizeof(struct rly_wire_msg_hdr) > MAX_RECORDS)
		return;

	take(buf, len);
	if ((flags & 1) && len >= sizeof(struct rly_wire_dgram_hdr)) {
		struct rly_wire_dgram_hdr *d = (void *)buf;
		rly_be16_store(&d->magic, RLY_WIRE_MAGIC);
		d->version = RLY_WIRE_VERSION;
		rly_be16_store(&d->length, (uint16_t)len);
	}
	feed(s, buf, len, 1);
}

/* One message at @p at (room for everything); returns its size. */
static size_t build_msg(uint8_t *at)
{
	struct rly_wire_msg_hdr *h = (void *)at;
	uint8_t who = u8(), opts = u8();
	const struct rly_identity *signer = &G.pubs[who & 1];
	unsigned sign_as = (who >> 1) % 4; /* 0, 1: the publisher; 2: a forger; 3: unsigned */
	uint16_t plain_len = u8() % (MAX_PLAIN + 1), wire_len;
	uint64_t seq = 1 + u16();
	uint64_t back = 1 + (u8() % 8);
	int encrypted = opts & 1, wrong_key = encrypted && (opts & 8), tampered;
	uint8_t plain[MAX_PLAIN], key[RLY_GROUP_KEY_LEN];
	uint32_t key_id = 0;

	memset(h, 0, sizeof(*h));
	memcpy(h->stream_key, G.stream, RLY_STREAM_KEY_LEN);
	if (opts & 2)
		h->stream_key[0] ^= 1; /* foreign stream */
	rly_be32_store(&h->partition, (opts & 4) ? PARTITION + 1 : PARTITION);
	rly_be32_store(&h->chain, 1 + (u8() % 4));
	memcpy(h->publisher, signer->pk, RLY_ID_LEN);
	rly_be64_store(&h->seq, seq);
	rly_be64_store(&h->prev_seq, back >= seq ? 0 : seq - back);
	rly_be64_store(&h->timestamp_ns, T.real + seq);
	rly_be16_store(&h->content_type, u8());
	take(plain, plain_len);
	memcpy(h + 1, plain, plain_len);
	wire_len = plain_len;
	if (encrypted) {
		key_id = pick_key_id();
		group_key(key_id, wrong_key ? 1 : 0, key);
		wire_len = (uint16_t)(plain_len + RLY_MSG_TAG_LEN);
		rly_be32_store(&h->key_id, key_id);
		rly_be16_store(&h->flags, RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
		rly_be16_store(&h->sig_len, RLY_WIRE_SIG_LEN);
		rly_be16_store(&h->payload_len, wire_len);
		rly_msg_encrypt(h, key);
		sodium_memzero(key, sizeof(key));
	} else {
		rly_be16_store(&h->payload_len, wire_len);
	}
	if (sign_as == 3) {
		rly_be16_store(&h->flags, rly_be16_load(&h->flags) & ~RLY_MSG_F_SIGNED);
		rly_be16_store(&h->sig_len, 0);
	} else {
		/* A forger's signature over a message that names the publisher. */
		rly_msg_sign(sign_as == 2 ? &G.forger : signer, h);
	}
	/* Tampered in flight: the signature no longer covers the payload. */
	tampered = (opts & 16) && wire_len > 0;
	if (tampered)
		at[sizeof(*h) + u8() % wire_len] ^= (uint8_t)(1 + (opts >> 5));
	h->ttl = u8(); /* not signed: relays may change it */

	/* Ciphertext that cannot authenticate has nothing a delivery could match. */
	if (T.n_rec < MAX_RECORDS && !(encrypted && (tampered || wrong_key))) {
		struct record *r = &T.rec[T.n_rec++];
		memcpy(r->publisher, h->publisher, RLY_ID_LEN);
		r->chain = rly_be32_load(&h->chain);
		r->seq = seq;
		r->prev_seq = rly_be64_load(&h->prev_seq);
		r->timestamp_ns = rly_be64_load(&h->timestamp_ns);
		r->key_id = key_id;
		r->content_type = rly_be16_load(&h->content_type);
		r->flags = rly_be16_load(&h->flags);
		r->len = plain_len;
		memcpy(r->payload, encrypted ? plain : (const uint8_t *)(h + 1), plain_len);
		r->authentic = sign_as < 2 && !tampered;
	}
	return rly_wire_msg_size(h);
}

static void ev_data(rly_sub_t *s)
{
	uint8_t buf[RLY_WIRE_MAX_DGRAM + 512];
	struct rly_wire_dgram_hdr *d = (void *)buf;
	unsigned count = 1 + u8() % 3;
	size_t off = sizeof(*d);
	struct rly_wire_view v;

	if (T.n_rec + count > MAX_RECORDS)
		return;

	for (unsigned i = 0; i < count; i++)
		off += build_msg(buf + off);
	rly_be16_store(&d->magic, RLY_WIRE_MAGIC);
	d->version = RLY_WIRE_VERSION;
	d->type = RLY_MSG_DATA;
	rly_be16_store(&d->length, (uint16_t)off);
	rly_be16_store(&d->count, (uint16_t)count);
	/* Messages of a datagram the parser refuses (a tampered field) are never fed. */
	if (rly_wire_parse(buf, off, RLY_WIRE_MAX_DGRAM, &v) == RLY_WIRE_ERR_OK)
		T.fed_msgs += count;
	feed(s, buf, off, 0);
}

static void ev_key_resp(rly_sub_t *s)
{
	struct rly_wire_key_response a;
	struct rly_wire_key_request q;
	uint8_t flags = u8(), status_sel = u8(), key[RLY_GROUP_KEY_LEN];
	uint32_t key_id;
	const struct rly_identity *pub;
	static const unsigned statuses[] = {RLY_SUB_OK, RLY_SUB_OK, RLY_SUB_DENIED,
					    RLY_SUB_UNAVAILABLE, RLY_SUB_RATE_LIMITED};
	unsigned status = statuses[status_sel % 5];

	if (T.n_reqs) {
		unsigned back = (status_sel >> 4) % N_REQS;
		if (back >= T.n_reqs)
			back = 0;
		q = T.reqs[(T.n_reqs - 1 - back) % N_REQS];
	} else {
		/* Nothing asked yet: an answer to a question never put. */
		memset(&q, 0, sizeof(q));
		memcpy(q.stream_key, G.stream, RLY_STREAM_KEY_LEN);
		rly_be32_store(&q.partition, PARTITION);
		rly_be32_store(&q.chain, 1 + u8() % 4);
		rly_be64_store(&q.request_id, 1 + u8());
		memcpy(q.publisher, G.pubs[flags & 1].pk, RLY_ID_LEN);
		memcpy(q.requester, G.me.pk, RLY_ID_LEN);
	}
	key_id = rly_be32_load(&q.key_id);
	if (key_id == 0 || (flags & 128))
		key_id = pick_key_id();
	memset(&a, 0, sizeof(a));
	memcpy(a.stream_key, q.stream_key, RLY_STREAM_KEY_LEN);
	a.partition = q.partition;
	a.chain = q.chain;
	rly_be16_store(&a.status, (uint16_t)status);
	a.request_id = q.request_id;
	if (flags & 4)
		rly_be64_store(&a.request_id, rly_be64_load(&q.request_id) + 1);
	memcpy(a.publisher, q.publisher, RLY_ID_LEN);
	memcpy(a.requester, q.requester, RLY_ID_LEN);
	if (flags & 8)
		a.requester[0] ^= 1;
	if (status == RLY_SUB_OK) {
		rly_be32_store(&a.key_id, (flags & 16) ? key_id + 1 : key_id);
		group_key(key_id, (flags & 64) ? 2 : 0, key);
		CHECK(rly_key_seal(a.sealed, key_id, key, G.me.pk) == 0, "rly_key_seal");
		sodium_memzero(key, sizeof(key));
		if (flags & 32)
			a.sealed[u8() % RLY_KEY_SEALED_LEN] ^= 1;
	}
	pub = publisher_of(a.publisher);
	switch ((flags >> 1) & 1) {
	case 0: /* signed by the chain's publisher */
		if (pub) {
			rly_key_response_sign(&a, pub);
			if (status == RLY_SUB_OK && !(flags & (4 | 8 | 16 | 32)))
				T.resp_ok_signed++;
		}
		break;
	default: /* the relay's own unsigned answer, or a forger's */
		if (flags & 64)
			rly_key_response_sign(&a, &G.forger);
		break;
	}
	build_and_feed_control(s, RLY_MSG_KEY_RESPONSE, &a);
}

static uint64_t pick_sub_request_id(uint8_t sel)
{
	if (T.have_sub_request && !(sel & 1))
		return T.sub_request_id;
	return 1 + (uint64_t)u8();
}

static void ev_challenge(rly_sub_t *s)
{
	struct rly_wire_challenge c;
	uint8_t sel = u8();

	memset(&c, 0, sizeof(c));
	memcpy(c.stream_key, G.stream, RLY_STREAM_KEY_LEN);
	if (sel & 2)
		c.stream_key[1] ^= 1;
	rly_be32_store(&c.partition, (sel & 4) ? PARTITION + 1 : PARTITION);
	rly_be64_store(&c.request_id, pick_sub_request_id(sel));
	rly_be64_store(&c.issued_ms, 1 + (uint64_t)u16());
	take(c.cookie, 4);
	build_and_feed_control(s, RLY_MSG_CHALLENGE, &c);
}

static void ev_ack(rly_sub_t *s, unsigned type, unsigned status, uint32_t lease, uint32_t hb,
		   uint8_t sel)
{
	struct rly_wire_ack a;

	memset(&a, 0, sizeof(a));
	memcpy(a.stream_key, G.stream, RLY_STREAM_KEY_LEN);
	if (sel & 2)
		a.stream_key[2] ^= 1;
	rly_be32_store(&a.partition, (sel & 4) ? PARTITION + 1 : PARTITION);
	rly_be16_store(&a.status, (uint16_t)status);
	rly_be64_store(&a.request_id, pick_sub_request_id(sel));
	rly_be32_store(&a.lease_ms, lease);
	rly_be32_store(&a.heartbeat_ms, hb);
	a.token[0] = 0x70;
	a.token[1] = sel;
	build_and_feed_control(s, type, &a);
}

static void ev_ack_from_input(rly_sub_t *s)
{
	static const unsigned types[] = {RLY_MSG_SUB_ACK, RLY_MSG_HEARTBEAT_ACK, RLY_MSG_UNSUB_ACK};
	uint8_t sel = u8(), st = u8();
	unsigned type = types[(sel >> 3) % 3];
	uint32_t lease = u16(), hb = u8();

	/* Status OK half of the time: it is the one that changes the most. */
	ev_ack(s, type, (st & 1) ? 0 : (st >> 1) % 10, lease, hb * 10, sel);
}

/* A GAP from the relay for a chain the harness published on (or not), any range, any reason. */
static void ev_gap(rly_sub_t *s)
{
	struct rly_wire_gap g;
	uint8_t buf[256], sel = u8();
	const struct record *r = T.n_rec ? &T.rec[u16() % T.n_rec] : NULL;
	uint64_t from = r ? (r->seq > 8 ? r->seq - (sel & 7) : 1) : 1u + (uint64_t)u8();
	int len;

	memset(&g, 0, sizeof(g));
	memcpy(g.stream_key, G.stream, RLY_STREAM_KEY_LEN);
	rly_be32_store(&g.partition, PARTITION);
	if (r) {
		memcpy(g.publisher, r->publisher, RLY_ID_LEN);
		rly_be32_store(&g.chain, r->chain);
	} else {
		memcpy(g.publisher, G.pubs[sel & 1].pk, RLY_ID_LEN);
		rly_be32_store(&g.chain, 1 + (sel >> 1) % 4);
	}
	rly_be64_store(&g.from_seq, from);
	rly_be64_store(&g.to_seq, from + u8() % 16);
	rly_be64_store(&g.request_id, 1 + u8());
	g.reason = (uint8_t)(1 + (sel >> 3) % RLY_GAP_REASON_MAX);
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_GAP, &g);
	T.fed_dgrams++;
	sub_on_dgram(s, buf, (size_t)len, T.real, T.mono);
}

static void run_timers(rly_sub_t *s)
{
	session_run_timers(s, T.mono);
}

static void ev_clock(rly_sub_t *s)
{
	uint8_t sel = u8();
	uint64_t d = u16();
	uint64_t due = session_next_due(s), sent = T.sent;
	struct rly_sub_stats before = s->st;
	enum session_state state = s->sess.state;
	uint32_t held = s->keys.held, waiting = s->keys.waiting;
	uint64_t naks = T.naks_seen;

	/* Milliseconds, or whole seconds to reach the 5 s and 10 s deadlines quickly. */
	T.mono += (sel & 1) ? d * 1000 * MS / 256 : d * MS / 16;
	T.real += 1000;
	run_timers(s);
	drain_relay(s);
	/* What rly_sub_poll sleeps until: before it, the timers have nothing to do. */
	if (T.mono < due)
		CHECK(T.sent == sent && T.naks_seen == naks && s->sess.state == state &&
			  s->keys.held == held &&
			  s->keys.waiting == waiting &&
			  memcmp(&before, &s->st, sizeof(before)) == 0,
		      "timers acted %llu ns before session_next_due",
		      (unsigned long long)(due - T.mono));
}

/* Up to 319 messages of one chain in a row: enough to fill a chain's key-wait queue (256). */
#define BURST_MSG_MAX (sizeof(struct rly_wire_msg_hdr) + 4 + RLY_MSG_TAG_LEN + RLY_WIRE_SIG_LEN)

static void ev_burst(rly_sub_t *s)
{
	uint8_t sel = u8();
	const struct rly_identity *signer = &G.pubs[sel & 1];
	int encrypted = sel & 2;
	uint32_t chain = 1 + (sel >> 2) % 4, key_id = 0;
	uint8_t c = u8();
	/* Mostly short runs (each message costs a signature and its check); 1 in 8 fills a
	 * chain's key-wait queue and overflows it. */
	unsigned count = c < 224 ? 1u + c % 32u : 257u + 2u * (c - 224u),
		 per_dgram = 1 + (sel >> 4) % 12;
	uint64_t seq = 1 + u16();
	uint8_t key[RLY_GROUP_KEY_LEN];

	if (T.n_rec + count > MAX_RECORDS)
		count = MAX_RECORDS - T.n_rec;
	if (encrypted) {
		key_id = pick_key_id();
		group_key(key_id, 0, key);
	}
	for (unsigned done = 0; done < count;) {
		uint8_t buf[RLY_WIRE_MAX_DGRAM];
		struct rly_wire_dgram_hdr *dh = (void *)buf;
		size_t off = sizeof(*dh);
		unsigned n = 0;

		for (; n < per_dgram && done < count && off + BURST_MSG_MAX <= sizeof(buf);
		     n++, done++, seq++) {
			struct rly_wire_msg_hdr *h = (void *)(buf + off);
			struct record *r = &T.rec[T.n_rec++];
			uint16_t wire_len = encrypted ? 4 + RLY_MSG_TAG_LEN : 4;

			memset(h, 0, sizeof(*h));
			memcpy(h->stream_key, G.stream, RLY_STREAM_KEY_LEN);
			rly_be32_store(&h->partition, PARTITION);
			rly_be32_store(&h->chain, chain);
			memcpy(h->publisher, signer->pk, RLY_ID_LEN);
			rly_be64_store(&h->seq, seq);
			rly_be64_store(&h->prev_seq, seq - 1);
			rly_be64_store(&h->timestamp_ns, T.real + seq);
			rly_be32_store((uint8_t *)(h + 1), done);
			rly_be16_store(&h->payload_len, wire_len);
			if (encrypted) {
				rly_be32_store(&h->key_id, key_id);
				rly_be16_store(&h->flags, RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
				rly_be16_store(&h->sig_len, RLY_WIRE_SIG_LEN);
				rly_msg_encrypt(h, key);
			}
			rly_msg_sign(signer, h);
			memset(r, 0, sizeof(*r));
			memcpy(r->publisher, signer->pk, RLY_ID_LEN);
			r->chain = chain;
			r->seq = seq;
			r->prev_seq = seq - 1;
			r->timestamp_ns = T.real + seq;
			r->key_id = key_id;
			r->flags = rly_be16_load(&h->flags);
			r->len = 4;
			rly_be32_store(r->payload, done);
			r->authentic = 1;
			off += rly_wire_msg_size(h);
		}
		rly_be16_store(&dh->magic, RLY_WIRE_MAGIC);
		dh->version = RLY_WIRE_VERSION;
		dh->type = RLY_MSG_DATA;
		rly_be16_store(&dh->length, (uint16_t)off);
		rly_be16_store(&dh->count, (uint16_t)n);
		T.fed_msgs += n;
		feed(s, buf, off, 0);
	}
	sodium_memzero(key, sizeof(key));
}

static void ev_subscribe(rly_sub_t *s)
{
	struct rly_wire_challenge c;
	uint8_t sel = u8();
	uint32_t lease = 300 + u16();

	session_start(s, sel & 1, T.mono);
	drain_relay(s);
	memset(&c, 0, sizeof(c));
	memcpy(c.stream_key, G.stream, RLY_STREAM_KEY_LEN);
	rly_be32_store(&c.partition, PARTITION);
	rly_be64_store(&c.request_id, T.sub_request_id);
	rly_be64_store(&c.issued_ms, 1000);
	c.cookie[0] = 1;
	build_and_feed_control(s, RLY_MSG_CHALLENGE, &c);
	drain_relay(s);
	ev_ack(s, RLY_MSG_SUB_ACK, RLY_SUB_OK, lease, (sel & 2) ? lease / 3 : 0, 0);
}

/* ---- invariants ---- */

static void check_state(const rly_sub_t *s)
{
	const struct rly_sub_stats *st = &s->st;
	uint64_t wire = 0;
	uint32_t held = 0, waiting = 0;

	for (unsigned i = 0; i < RLY_WIRE_ERR_MAX; i++)
		wire += st->wire_err[i];
	CHECK(st->wire_err[RLY_WIRE_ERR_OK] == 0, "wire_err[OK] counted");
	CHECK(wire == st->malformed, "wire errors %llu, malformed %llu", (unsigned long long)wire,
	      (unsigned long long)st->malformed);
	CHECK(st->dgrams + st->malformed == T.fed_dgrams,
	      "dgrams %llu + malformed %llu != fed %llu", (unsigned long long)st->dgrams,
	      (unsigned long long)st->malformed, (unsigned long long)T.fed_dgrams);
	CHECK(st->msgs == T.cb_msgs, "msgs %llu, on_message %llu", (unsigned long long)st->msgs,
	      (unsigned long long)T.cb_msgs);
	CHECK(st->bad_sig == T.cb_bad_sig && st->undecryptable == T.cb_undecryptable,
	      "bad-message counters and callbacks disagree");
	CHECK(st->missing >= st->gaps, "gap counters");
	CHECK(T.no_repair ? st->gaps == T.cb_seen_gaps : T.cb_seen_gaps == 0,
	      "gaps %llu, reported when seen %llu", (unsigned long long)st->gaps,
	      (unsigned long long)T.cb_seen_gaps);
	CHECK(st->lost == T.cb_lost, "lost %llu, reported lost %llu", (unsigned long long)st->lost,
	      (unsigned long long)T.cb_lost);
	CHECK(st->naks == T.naks_seen, "naks %llu, seen %llu", (unsigned long long)st->naks,
	      (unsigned long long)T.naks_seen);
	{
		/* The repair state: every chain's held copies and holes agree with its counters. */
		uint64_t rheld = 0;
		uint32_t active = 0;
		for (unsigned i = 0; i < REP_CHAINS; i++) {
			const struct rep_chain *rc = &s->rep.rc[i];
			uint32_t n = 0;
			if (!rc->used)
				continue;
			active++;
			for (uint32_t k = 0; rc->ring && k < rc->ring_size; k++)
				n += rc->ring[k] != NULL;
			CHECK(n == rc->held, "chain holds %u, counts %u", n, rc->held);
			CHECK(rc->n_holes <= REP_HOLES, "holes");
			for (uint32_t k = 0; k < rc->n_holes; k++) {
				CHECK(rc->hole[k].lo <= rc->hole[k].hi && rc->hole[k].lo >= rc->base,
				      "hole %llu..%llu, base %llu",
				      (unsigned long long)rc->hole[k].lo,
				      (unsigned long long)rc->hole[k].hi,
				      (unsigned long long)rc->base);
				CHECK(k == 0 || rc->hole[k].lo > rc->hole[k - 1].hi, "holes overlap");
			}
			rheld += n;
		}
		CHECK(active == s->rep.active, "repair chains %u, counted %u", active,
		      s->rep.active);
		CHECK(rheld == st->held, "repair held %llu, counted %llu",
		      (unsigned long long)rheld, (unsigned long long)st->held);
	}
	CHECK(st->chains <= T.fed_msgs, "more chains than messages");
	for (unsigned i = 0; i < SUB_KEY_CHAINS; i++) {
		const struct key_chain *kc = &s->keys.kc[i];
		uint32_t n = 0;
		for (const struct held_msg *m = kc->head; m; m = m->next) {
			n++;
			CHECK(m->next || m == kc->tail, "held list tail");
		}
		CHECK(n == kc->held && n <= SUB_KEY_HELD_CHAIN, "chain holds %u, counts %u", n,
		      kc->held);
		CHECK(!kc->head || kc->used, "an unused chain holds messages");
		held += n;
		waiting += kc->used && kc->waiting;
	}
	CHECK(held == s->keys.held && held <= SUB_KEY_HELD_ALL, "held %u, counted %u", held,
	      s->keys.held);
	CHECK(waiting == s->keys.waiting, "waiting %u, counted %u", waiting, s->keys.waiting);
	CHECK(st->msgs + st->bad_sig + st->undecryptable + st->stale + st->foreign + held +
			  st->held ==
		  T.fed_msgs,
	      "messages: %llu delivered + %llu bad_sig + %llu undecryptable + %llu stale + %llu "
	      "foreign + %u held for a key + %llu held behind a gap != %llu fed",
	      (unsigned long long)st->msgs, (unsigned long long)st->bad_sig,
	      (unsigned long long)st->undecryptable, (unsigned long long)st->stale,
	      (unsigned long long)st->foreign, held, (unsigned long long)st->held,
	      (unsigned long long)T.fed_msgs);
	CHECK(st->key_requests == T.requests_seen, "key_requests %llu, seen %llu",
	      (unsigned long long)st->key_requests, (unsigned long long)T.requests_seen);
	CHECK(st->keys_received <= T.resp_ok_signed, "keys_received %llu > good responses %llu",
	      (unsigned long long)st->keys_received, (unsigned long long)T.resp_ok_signed);
	CHECK(s->sess.state != SESS_SUBSCRIBED || s->sess.have_token, "subscribed without a token");
}

/* ---- setup ---- */

static void init_once(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int buf = 4 << 20;

	if (G.ready)
		return;
	CHECK(sodium_init() >= 0, "sodium_init");
	G.verbose = getenv("FUZZ_CLIENT_VERBOSE") != NULL;
	for (unsigned i = 0; i < 2; i++) {
		uint8_t seed[crypto_sign_SEEDBYTES] = {0x50, (uint8_t)i};
		crypto_sign_seed_keypair(G.pubs[i].pk, G.pubs[i].sk, seed);
	}
	{
		uint8_t seed[crypto_sign_SEEDBYTES] = {0x46};
		crypto_sign_seed_keypair(G.forger.pk, G.forger.sk, seed);
		seed[0] = 0x53;
		crypto_sign_seed_keypair(G.me.pk, G.me.sk, seed);
	}
	for (unsigned g = 0; g < 4; g++)
		for (unsigned i = 0; i < RLY_GROUP_KEY_LEN; i++)
			G.gen_key[g][i] = (uint8_t)(0x4b + 31 * g + i);
	rly_stream_key_from_name("fuzz/client", G.stream);
	G.relay_fd = socket(AF_INET, SOCK_DGRAM, 0);
	CHECK(G.relay_fd >= 0, "socket: %s", strerror(errno));
	(void)setsockopt(G.relay_fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(G.relay_fd, (struct sockaddr *)&a, sizeof(a)) == 0, "bind: %s", strerror(errno));
	CHECK(getsockname(G.relay_fd, (struct sockaddr *)&a, &alen) == 0, "getsockname");
	snprintf(G.relay_addr, sizeof(G.relay_addr), "127.0.0.1:%u", ntohs(a.sin_port));
	G.ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rly_sub_opts o;
	rly_sub_t *s;
	uint8_t mode;

	init_once();
	memset(&T, 0, sizeof(T));
	fz_begin(data, size);
	T.mono = 1000 * 1000 * MS;
	T.real = 1800000000ull * 1000 * MS;
	mode = u8();
	T.no_verify = mode & 1;
	T.no_repair = (mode >> 3) & 1;

	memset(&o, 0, sizeof(o));
	o.relay = G.relay_addr;
	memcpy(o.stream_key, G.stream, RLY_STREAM_KEY_LEN);
	o.partition = PARTITION;
	o.identity = (mode & 2) ? NULL : &G.me;
	o.auto_resubscribe = (mode >> 2) & 1;
	o.no_verify = T.no_verify;
	o.no_repair = T.no_repair;
	/* A short timeout and a small ring, so inputs reach both. */
	o.repair_timeout_ms = 50u + 10u * ((mode >> 4) & 7u);
	o.reorder_max = (mode & 0x80) ? REP_RING_MIN : 0;
	o.rcvbuf = 65536;
	o.cb = (struct rly_sub_callbacks){.on_message = on_message,
					  .on_gap = on_gap,
					  .on_event = on_event,
					  .on_bad_message = on_bad,
					  .ctx = NULL};
	CHECK(rly_sub_create(&s, &o) == 0, "rly_sub_create: %s", rly_client_errmsg());
	drain_relay(s); /* anything a previous input's subscriber left behind */
	T.requests_seen = 0;

	for (unsigned n = 0; n < MAX_EVENTS && fz_left > 0; n++) {
		switch (u8() % K_MAX) {
		case K_RAW:
			ev_raw(s);
			break;
		case K_DATA:
			ev_data(s);
			break;
		case K_KEY_RESP:
			ev_key_resp(s);
			break;
		case K_START:
			session_start(s, u8() & 1, T.mono);
			break;
		case K_CHALLENGE:
			ev_challenge(s);
			break;
		case K_ACK:
			ev_ack_from_input(s);
			break;
		case K_UNSUB:
			(void)session_unsubscribe(s, T.mono);
			break;
		case K_CLOCK:
			ev_clock(s);
			break;
		case K_SUBSCRIBE:
			ev_subscribe(s);
			break;
		case K_BURST:
			ev_burst(s);
			break;
		case K_GAP:
			ev_gap(s);
			break;
		}
		drain_relay(s);
		check_state(s);
	}
	if (G.verbose)
		fprintf(
		    stderr,
		    "fuzz_client: fed %llu msgs in %llu dgrams: %llu delivered, %llu bad_sig, "
		    "%llu undecryptable, %llu stale, %llu foreign, %u held, %llu gaps, %llu key "
		    "requests, %llu keys, state %d\n",
		    (unsigned long long)T.fed_msgs, (unsigned long long)T.fed_dgrams,
		    (unsigned long long)s->st.msgs, (unsigned long long)s->st.bad_sig,
		    (unsigned long long)s->st.undecryptable, (unsigned long long)s->st.stale,
		    (unsigned long long)s->st.foreign, s->keys.held, (unsigned long long)s->st.gaps,
		    (unsigned long long)s->st.key_requests, (unsigned long long)s->st.keys_received,
		    (int)s->sess.state);
	rly_sub_free(s);
	return 0;
}
