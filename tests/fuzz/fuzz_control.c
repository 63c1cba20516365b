/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for relay-control's handling of punted records (control/subscriptions.c
 * rly_ctl_subs_on_packet and what is behind it: the handshake, leases, tokens, key holders and
 * key routing in control/keyroute.c, control/key_holders.c), with a fake dataplane (the io
 * callbacks capture what would go to the tx and command rings) and a fake clock.
 *
 * Cookies, tokens and signatures would stop random bytes at the first check, so the input is a
 * script of events, each a kind byte and its arguments (missing bytes read as zero), from a few
 * source addresses, on two streams and the partitions 0, 1 and the key holders' one:
 *   RAW        bytes in a punt record (optionally with a valid datagram header; or flagged as a
 *              worker's SLOW report of a cut slow consumer, optionally naming a stream)
 *   SUBSCRIBE  a first SUBSCRIBE (no cookie)
 *   ANSWER     the answer to one of the last CHALLENGEs sent (plain, or SUBSCRIBE_SIGNED by a
 *              fixed identity, with a good or a bad signature; cookie and source right or wrong)
 *   REF        HEARTBEAT or UNSUBSCRIBE with the right or a wrong token
 *   KEY_REQ    a KEY_REQUEST signed by a fixed identity, with the right or a wrong token
 *   KEY_RESP   a KEY_RESPONSE from a key holder to one of the last requests forwarded
 *   EVENT      the dataplane's answer: DONE for the oldest command (any status) or a later
 *              one, a bogus seq, DUMP_ENTRY, DUMP_END
 *   CLOCK      the clock moves; rly_ctl_subs_tick
 *   RESYNC / DETACH / LOSS   rly_ctl_subs_resync_begin, rly_ctl_subs_on_detach,
 *              rly_ctl_subs_note_control_loss
 *   TX         the tx path crowded (io.tx_crowded: replies to unproven requests are shed) or
 *              full (io.send fails with -ENOBUFS after the harness checked the datagram)
 * Invariants, after every event: the CTL_KEY_HOLDERS gauge equals the holder table's size, which
 * stays within its bound, as do pending key requests; commands pending equal what the harness
 * submitted and the model says is unanswered; no command names the key holders' partition
 * (but the SUB_DEL of such an entry the dataplane reported in a dump);
 * every datagram sent parses with rly_wire_parse and is a relay-to-client type; a reply to a
 * SUBSCRIBE is never larger than the SUBSCRIBE; a SUB_ACK OK carries the token of
 * its destination; no CHALLENGE while the tx path is crowded; a forwarded KEY_REQUEST has its token
 * zeroed and a valid signature, and goes to a registered holder; a KEY_RESPONSE goes only to an
 * address that asked; no leak, no UB.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "control/keyroute.h"
#include "control/log.h"
#include "control/subscriptions.h"
#include "security/e2e.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_control: " __VA_ARGS__);                             \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_EVENTS  128u
#define MAX_CMDS    1024u
#define N_KEEP	    4u
#define N_IDS	    3u
#define N_SRC	    12u
#define HOLDER	    RLY_KEY_HOLDER_PARTITION
#define HOLDERS_MAX 3u
#define PENDING_MAX 4u

enum kind {
	K_RAW,
	K_SUBSCRIBE,
	K_ANSWER,
	K_REF,
	K_KEY_REQ,
	K_KEY_RESP,
	K_EVENT,
	K_CLOCK,
	K_RESYNC,
	K_DETACH,
	K_LOSS,
	K_TX,
	K_MAX
};

struct cmd {
	uint32_t seq;
	uint16_t op;
};

struct sent_to {
	struct rly_endpoint ep;
	uint8_t body[sizeof(struct rly_wire_key_request)];
};

static struct {
	int ready;
	int verbose; /* FUZZ_CONTROL_VERBOSE set: the counters after each input */
	FILE *devnull;
	struct rly_identity ids[N_IDS];
	uint8_t streams[2][RLY_STREAM_KEY_LEN];
	uint8_t secret[RLY_CTL_SECRET_LEN];
} G;

static struct {
	uint64_t now;
	struct rly_ctl_subs *subs;
	/* the fake dataplane */
	uint32_t next_seq;
	struct cmd cmds[MAX_CMDS]; /* submitted and, as far as the model knows, unanswered */
	unsigned cmd_head, cmd_len;
	uint32_t dump_seq;
	uint64_t adds_ok, dump_entries;
	int dumped_holder; /* a DUMP_ENTRY on the key holders' partition was accepted */
	/* what the service sent */
	struct sent_to challenges[N_KEEP], forwarded[N_KEEP];
	unsigned n_challenges, n_forwarded;
	uint32_t requesters[N_SRC]; /* bit per source: sent a KEY_REQUEST */
	/* the tx path: half full (replies to unproven requests shed), or full (send fails) */
	int tx_crowded, tx_full;
	/* the punt being handled, if any */
	const struct rly_pkt_rec *punt;
	unsigned sent_for_punt;
} T;


/* ---- sources ---- */

static void src_of(unsigned i, struct rly_endpoint *ep)
{
	i %= N_SRC;
	memset(ep, 0, sizeof(*ep));
	ep->ip_be = htonl(0x0a000001u + i % 4);
	ep->udp_port_be = htons((uint16_t)(5000 + i / 4));
	ep->port_id = 0;
	ep->mac[0] = 0x02;
	ep->mac[5] = (uint8_t)i;
}

static int src_index(uint32_t ip_be, uint16_t port_be)
{
	for (unsigned i = 0; i < N_SRC; i++) {
		struct rly_endpoint ep;
		src_of(i, &ep);
		if (ep.ip_be == ip_be && ep.udp_port_be == port_be)
			return (int)i;
	}
	return -1;
}

static uint32_t partition_of(uint8_t sel)
{
	static const uint32_t parts[] = {0, 1, HOLDER, 0};

	return parts[sel % 4];
}

/* ---- the fake dataplane ---- */

static int is_from_relay(unsigned type)
{
	return type == RLY_MSG_CHALLENGE || type == RLY_MSG_SUB_ACK || type == RLY_MSG_UNSUB_ACK ||
	       type == RLY_MSG_HEARTBEAT_ACK || type == RLY_MSG_KEY_REQUEST ||
	       type == RLY_MSG_KEY_RESPONSE;
}

static void keep(struct sent_to *ring, unsigned *n, const struct rly_endpoint *ep, const void *body,
		 size_t len)
{
	struct sent_to *t = &ring[*n % N_KEEP];

	t->ep = *ep;
	memset(t->body, 0, sizeof(t->body));
	memcpy(t->body, body, len);
	(*n)++;
}

static int fake_send(void *ctx, struct rly_pkt_rec *rec)
{
	struct rly_wire_view v;
	struct rly_endpoint ep;
	enum rly_wire_err e;

	(void)ctx;
	CHECK(rec->len <= RLY_PKT_REC_DATA, "tx record of %u bytes", rec->len);
	e = rly_wire_parse(rec->data, rec->len, RLY_WIRE_MAX_DGRAM, &v);
	CHECK(e == RLY_WIRE_ERR_OK, "sent a datagram (type 0x%02x) the parser refuses: %s",
	      rec->len >= 4 ? rec->data[3] : 0, rly_wire_err_name(e));
	CHECK(is_from_relay(v.type), "sent a %s", rly_msg_type_name(v.type));
	CHECK(rec->ip_be != 0 && rec->udp_port_be != 0, "sent to no address");
	if (T.tx_crowded)
		CHECK(v.type != RLY_MSG_CHALLENGE, "a CHALLENGE sent while the tx path is crowded");
	memset(&ep, 0, sizeof(ep));
	ep.ip_be = rec->ip_be;
	ep.udp_port_be = rec->udp_port_be;
	ep.port_id = rec->port_id;
	memcpy(ep.mac, rec->mac, sizeof(ep.mac));
	if (T.punt) {
		T.sent_for_punt++;
		/* No amplification: an answer to a SUBSCRIBE, which anyone can send from a spoofed
		 * address, is never larger. (A HEARTBEAT_ACK is 8 bytes larger than its HEARTBEAT,
		 * but only the holder of the address's token gets one.) */
		if (rec->ip_be == T.punt->ip_be && rec->udp_port_be == T.punt->udp_port_be &&
		    (v.type == RLY_MSG_CHALLENGE || v.type == RLY_MSG_SUB_ACK))
			CHECK(rec->len <= T.punt->len, "a %u-byte %s answers a %u-byte datagram",
			      rec->len, rly_msg_type_name(v.type), T.punt->len);
	}
	switch (v.type) {
	case RLY_MSG_CHALLENGE:
		keep(T.challenges, &T.n_challenges, &ep, v.body, sizeof(struct rly_wire_challenge));
		break;
	case RLY_MSG_SUB_ACK: {
		const struct rly_wire_ack *a = (const void *)v.body;
		uint8_t tok[RLY_COOKIE_LEN];
		static const uint8_t zero[RLY_COOKIE_LEN];
		if (rly_be16_load(&a->status) == RLY_SUB_OK) {
			rly_ctl_subs_token(T.subs, rec->ip_be, rec->udp_port_be, a->stream_key,
					   rly_be32_load(&a->partition), tok);
			CHECK(memcmp(tok, a->token, RLY_COOKIE_LEN) == 0,
			      "SUB_ACK OK with another subscription's token");
		} else {
			CHECK(memcmp(zero, a->token, RLY_COOKIE_LEN) == 0,
			      "a refusal carries a token");
		}
		break;
	}
	case RLY_MSG_KEY_REQUEST: {
		const struct rly_wire_key_request *r = (const void *)v.body;
		static const uint8_t zero[RLY_COOKIE_LEN];
		struct rly_ctl_sub_key hk;
		CHECK(memcmp(r->token, zero, RLY_COOKIE_LEN) == 0,
		      "a forwarded KEY_REQUEST still carries the token");
		CHECK(rly_key_request_verify(r), "forwarded a KEY_REQUEST with a bad signature");
		rly_ctl_sub_key_make(&hk, r->stream_key, HOLDER, rec->ip_be, rec->udp_port_be);
		CHECK(rly_ctl_keys_holder_expiry(rly_ctl_subs_keys(T.subs), &hk) != 0,
		      "KEY_REQUEST forwarded to an address that is no key holder of the stream");
		keep(T.forwarded, &T.n_forwarded, &ep, r, sizeof(*r));
		break;
	}
	case RLY_MSG_KEY_RESPONSE: {
		int i = src_index(rec->ip_be, rec->udp_port_be);
		if (rly_be16_load(&((const struct rly_wire_key_response *)v.body)->status) ==
			RLY_SUB_UNAVAILABLE ||
		    rly_be16_load(&((const struct rly_wire_key_response *)v.body)->status) ==
			RLY_SUB_RATE_LIMITED)
			break; /* relay-control's own answer, to the requester */
		CHECK(i >= 0 && (T.requesters[i] & 1),
		      "KEY_RESPONSE forwarded to an address that never asked");
		break;
	}
	default:
		break;
	}
	return 0;
}

static int tx_crowded(void *ctx)
{
	(void)ctx;
	return T.tx_crowded;
}

/* The ring is full: the datagram is checked, then lost (nobody will answer it). */
static int fake_send_or_drop(void *ctx, struct rly_pkt_rec *rec)
{
	struct sent_to keep_ch[N_KEEP], keep_fw[N_KEEP];
	unsigned n_ch = T.n_challenges, n_fw = T.n_forwarded;
	int rc;

	if (!T.tx_full)
		return fake_send(ctx, rec);
	memcpy(keep_ch, T.challenges, sizeof(keep_ch));
	memcpy(keep_fw, T.forwarded, sizeof(keep_fw));
	rc = fake_send(ctx, rec);
	memcpy(T.challenges, keep_ch, sizeof(keep_ch));
	memcpy(T.forwarded, keep_fw, sizeof(keep_fw));
	T.n_challenges = n_ch;
	T.n_forwarded = n_fw;
	return rc < 0 ? rc : -ENOBUFS;
}

static int fake_submit(void *ctx, struct rly_cmd *cmd)
{
	(void)ctx;
	cmd->seq = T.next_seq++;
	/* A key holder never becomes a dataplane entry. The one SUB_DEL allowed there removes
	 * an entry the dataplane itself reported in a dump (a relay-control from before key
	 * holders, or a dataplane bug): it expires like any other entry nobody renews. */
	if (cmd->op == RLY_CMD_SUB_ADD || (cmd->op == RLY_CMD_SUB_DEL && !T.dumped_holder))
		CHECK(cmd->partition != HOLDER,
		      "a dataplane command for the key holders' partition");
	CHECK(T.cmd_len < MAX_CMDS, "more commands than the model holds");
	T.cmds[(T.cmd_head + T.cmd_len++) % MAX_CMDS] =
	    (struct cmd){.seq = cmd->seq, .op = cmd->op};
	if (cmd->op == RLY_CMD_DUMP)
		T.dump_seq = cmd->seq;
	return 0;
}

static void cmd_pop(void)
{
	T.cmd_head = (T.cmd_head + 1) % MAX_CMDS;
	T.cmd_len--;
}

/* ---- punts ---- */

static void punt(struct rly_pkt_rec *rec)
{
	int rc;

	T.punt = rec;
	T.sent_for_punt = 0;
	rc = rly_ctl_subs_on_packet(T.subs, rec, T.now);
	CHECK(rc == 0 || rc == -EPROTO, "rly_ctl_subs_on_packet: %d", rc);
	CHECK(T.sent_for_punt <= RLY_CTL_KEYS_FANOUT, "%u datagrams sent for one punt",
	      T.sent_for_punt);
	T.punt = NULL;
}

static void punt_body(unsigned src, unsigned type, const void *body)
{
	struct rly_pkt_rec rec;
	struct rly_endpoint ep;
	int n;

	src_of(src, &ep);
	memset(&rec, 0, sizeof(rec));
	rec.ip_be = ep.ip_be;
	rec.udp_port_be = ep.udp_port_be;
	memcpy(rec.mac, ep.mac, sizeof(rec.mac));
	n = rly_wire_build_control(rec.data, sizeof(rec.data), type, body);
	if (n <= 0)
		return;
	rec.len = (uint16_t)n;
	punt(&rec);
}

static void ev_raw(void)
{
	static struct rly_pkt_rec rec;
	uint8_t sel = u8(), flags = u8();
	size_t len = u16() % (RLY_PKT_REC_DATA + 1);
	struct rly_endpoint ep;

	memset(&rec, 0, sizeof(rec));
	src_of(sel, &ep);
	rec.ip_be = (flags & 2) ? 0 : ep.ip_be;
	rec.udp_port_be = (flags & 4) ? 0 : ep.udp_port_be;
	take(rec.data, len);
	rec.len = (uint16_t)len;
	if ((flags & 1) && len >= sizeof(struct rly_wire_dgram_hdr)) {
		struct rly_wire_dgram_hdr *d = (void *)rec.data;
		rly_be16_store(&d->magic, RLY_WIRE_MAGIC);
		d->version = RLY_WIRE_VERSION;
		rly_be16_store(&d->length, (uint16_t)len);
	}
	if (flags & 16) {
		/* A worker's SLOW report (issue 6): a slow consumer cut; with flag 32 it names one of
		 * the streams, so it can hit a real subscription and end it. */
		struct rly_slow_report *r = (void *)rec.data;
		rec.flags = RLY_PKT_F_SLOW;
		if ((flags & 32) && len >= sizeof(*r)) {
			memcpy(r->nak.stream_key, G.streams[(sel >> 2) & 1], RLY_STREAM_KEY_LEN);
			rly_be32_store(&r->nak.partition, partition_of(sel));
		}
	}
	if (flags & 8)
		rec.len = (uint16_t)(RLY_PKT_REC_DATA + 1 + u8()); /* a dataplane bug */
	punt(&rec);
}

static void subscribe_body(struct rly_wire_subscribe *b, uint8_t sel)
{
	memset(b, 0, sizeof(*b));
	memcpy(b->stream_key, G.streams[(sel >> 2) & 1], RLY_STREAM_KEY_LEN);
	rly_be32_store(&b->partition, partition_of(sel));
	rly_be32_store(&b->lease_ms, 1 + u16());
	rly_be64_store(&b->request_id, u8());
}

static void ev_subscribe(void)
{
	struct rly_wire_subscribe b;
	uint8_t src = u8(), sel = u8();

	subscribe_body(&b, sel);
	if (sel & 8)
		memcpy(b.subscriber, G.ids[(sel >> 4) % N_IDS].pk, RLY_ID_LEN);
	punt_body(src, RLY_MSG_SUBSCRIBE, &b);
}

static void ev_answer(void)
{
	struct rly_wire_subscribe_signed ss;
	struct rly_wire_subscribe *b = &ss.sub;
	const struct rly_wire_challenge *c;
	const struct sent_to *t;
	uint8_t pick = u8(), sel = u8();
	const struct rly_identity *id = &G.ids[(sel >> 4) % N_IDS];
	unsigned src;

	memset(&ss, 0, sizeof(ss));
	if (T.n_challenges == 0)
		return;
	pick %= T.n_challenges < N_KEEP ? T.n_challenges : N_KEEP;
	t = &T.challenges[(T.n_challenges - 1 - pick) % N_KEEP];
	c = (const void *)t->body;
	src = (unsigned)src_index(t->ep.ip_be, t->ep.udp_port_be);
	if (sel & 1) /* answered from elsewhere: the cookie names another address */
		src = (src + 1 + u8()) % N_SRC;
	memcpy(b->stream_key, c->stream_key, RLY_STREAM_KEY_LEN);
	b->partition = c->partition;
	rly_be32_store(&b->lease_ms, 1 + u16());
	b->request_id = c->request_id;
	b->issued_ms = c->issued_ms;
	memcpy(b->cookie, c->cookie, RLY_COOKIE_LEN);
	if (sel & 2)
		b->cookie[u8() % RLY_COOKIE_LEN] ^= 1;
	if (sel & 4)
		memcpy(b->subscriber, id->pk, RLY_ID_LEN);
	if (sel & 8) {
		uint8_t msg[sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1 + sizeof(*b)];
		memcpy(b->subscriber, id->pk, RLY_ID_LEN);
		memcpy(msg, RLY_SUBSCRIBE_SIG_CONTEXT, sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1);
		memcpy(msg + sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1, b, sizeof(*b));
		crypto_sign_detached(ss.sig, NULL, msg, sizeof(msg), id->sk);
		if (sel & 128)
			ss.sig[u8() % RLY_WIRE_SIG_LEN] ^= 1;
		punt_body(src, RLY_MSG_SUBSCRIBE_SIGNED, &ss);
	} else {
		punt_body(src, RLY_MSG_SUBSCRIBE, b);
	}
}

static void ev_ref(void)
{
	struct rly_wire_sub_ref r;
	uint8_t src = u8(), sel = u8();
	struct rly_endpoint ep;

	src_of(src, &ep);
	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, G.streams[(sel >> 2) & 1], RLY_STREAM_KEY_LEN);
	rly_be32_store(&r.partition, partition_of(sel));
	rly_be64_store(&r.request_id, u8());
	rly_ctl_subs_token(T.subs, ep.ip_be, ep.udp_port_be, r.stream_key, partition_of(sel),
			   r.token);
	if (sel & 16)
		r.token[u8() % RLY_COOKIE_LEN] ^= 1;
	punt_body(src, (sel & 8) ? RLY_MSG_UNSUBSCRIBE : RLY_MSG_HEARTBEAT, &r);
}

static void ev_key_req(void)
{
	struct rly_wire_key_request r;
	uint8_t src = u8(), sel = u8(), who = u8();
	struct rly_endpoint ep;

	src_of(src, &ep);
	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, G.streams[(sel >> 2) & 1], RLY_STREAM_KEY_LEN);
	rly_be32_store(&r.partition, partition_of(sel));
	rly_be32_store(&r.chain, 1 + (who >> 4));
	rly_be32_store(&r.key_id, (who & 8) ? RLY_KEY_ID(1, who & 7) : 0);
	rly_be64_store(&r.request_id, 1 + u8());
	memcpy(r.publisher, G.ids[who % N_IDS].pk, RLY_ID_LEN);
	rly_key_request_sign(&r, &G.ids[(who >> 2) % N_IDS]);
	if (sel & 32)
		r.sig[u8() % RLY_WIRE_SIG_LEN] ^= 1;
	rly_ctl_subs_token(T.subs, ep.ip_be, ep.udp_port_be, r.stream_key, partition_of(sel),
			   r.token);
	if (sel & 16)
		r.token[u8() % RLY_COOKIE_LEN] ^= 1;
	T.requesters[src % N_SRC] |= 1;
	punt_body(src, RLY_MSG_KEY_REQUEST, &r);
}

static void ev_key_resp(void)
{
	struct rly_wire_key_response a;
	struct rly_wire_key_request q;
	uint8_t pick = u8(), sel = u8();
	unsigned src;

	if (T.n_forwarded) {
		const struct sent_to *t;
		pick %= T.n_forwarded < N_KEEP ? T.n_forwarded : N_KEEP;
		t = &T.forwarded[(T.n_forwarded - 1 - pick) % N_KEEP];
		memcpy(&q, t->body, sizeof(q));
		src = (unsigned)src_index(t->ep.ip_be, t->ep.udp_port_be);
	} else {
		memset(&q, 0, sizeof(q));
		memcpy(q.stream_key, G.streams[0], RLY_STREAM_KEY_LEN);
		rly_be64_store(&q.request_id, 1 + u8());
		memcpy(q.publisher, G.ids[0].pk, RLY_ID_LEN);
		memcpy(q.requester, G.ids[1].pk, RLY_ID_LEN);
		src = pick;
	}
	if (sel & 1)
		src = (src + 1 + u8()) % N_SRC;
	memset(&a, 0, sizeof(a));
	memcpy(a.stream_key, q.stream_key, RLY_STREAM_KEY_LEN);
	a.partition = q.partition;
	a.chain = q.chain;
	a.request_id = q.request_id;
	if (sel & 2)
		rly_be64_store(&a.request_id, rly_be64_load(&q.request_id) + 1);
	memcpy(a.publisher, q.publisher, RLY_ID_LEN);
	if (sel & 4)
		memcpy(a.publisher, G.ids[(sel >> 5) % N_IDS].pk, RLY_ID_LEN);
	memcpy(a.requester, q.requester, RLY_ID_LEN);
	if (sel & 8) {
		rly_be16_store(&a.status, RLY_SUB_DENIED);
	} else {
		rly_be16_store(&a.status, RLY_SUB_OK);
		rly_be32_store(&a.key_id, RLY_KEY_ID(1, 0));
		take(a.sealed, 8);
	}
	take(a.sig, 4); /* relay-control forwards, the subscriber checks */
	punt_body(src, RLY_MSG_KEY_RESPONSE, &a);
}

static void ev_event(void)
{
	struct rly_event ev;
	uint8_t sel = u8(), st = u8();
	int ready = rly_ctl_subs_ready(T.subs);

	memset(&ev, 0, sizeof(ev));
	ev.status = (st & 1) ? 0 : (st >> 1) % 11;
	switch (sel % 6) {
	case 0:
	case 1: /* the answer to the oldest command */
		if (T.cmd_len == 0)
			return;
		ev.op = RLY_EV_DONE;
		ev.seq = T.cmds[T.cmd_head].seq;
		if (T.cmds[T.cmd_head].op == RLY_CMD_SUB_ADD && ev.status <= 1)
			T.adds_ok++;
		cmd_pop();
		break;
	case 2: /* the second: the dataplane lost the first (unless it is the dump underway) */
		if (T.cmd_len < 2)
			return;
		ev.op = RLY_EV_DONE;
		ev.seq = T.cmds[(T.cmd_head + 1) % MAX_CMDS].seq;
		if (!ready && T.cmds[T.cmd_head].op == RLY_CMD_DUMP)
			break;
		if (T.cmds[(T.cmd_head + 1) % MAX_CMDS].op == RLY_CMD_SUB_ADD && ev.status <= 1)
			T.adds_ok++;
		cmd_pop();
		cmd_pop();
		break;
	case 3: /* an answer for a previous relay-control */
		ev.op = RLY_EV_DONE;
		ev.seq = (T.cmd_len ? T.cmds[T.cmd_head].seq : T.next_seq) - 1 - u8();
		break;
	case 4: {
		struct rly_endpoint ep;
		src_of(u8(), &ep);
		ev.op = RLY_EV_DUMP_ENTRY;
		ev.seq = (st & 2) ? T.dump_seq + 1 : T.dump_seq;
		memcpy(ev.stream_key, G.streams[(st >> 2) & 1], RLY_STREAM_KEY_LEN);
		ev.partition = partition_of(st >> 3);
		ev.ep = ep;
		if (!ready && ev.seq == T.dump_seq) {
			T.dump_entries++;
			T.dumped_holder |= ev.partition == HOLDER;
		}
		break;
	}
	case 5:
		ev.op = (st & 4) ? 9 : RLY_EV_DUMP_END;
		ev.seq = (st & 2) ? T.dump_seq + 1 : T.dump_seq;
		ev.count = u8();
		if (ev.op == RLY_EV_DUMP_END && !ready && ev.seq == T.dump_seq && T.cmd_len &&
		    T.cmds[T.cmd_head].seq == T.dump_seq)
			cmd_pop();
		break;
	}
	rly_ctl_subs_on_event(T.subs, &ev, T.now);
}

static void ev_clock(void)
{
	uint8_t sel = u8();
	uint64_t d = u16();

	T.now += (sel & 1) ? d * 16 : d / 16;
	(void)rly_ctl_subs_tick(T.subs, T.now);
}

/* ---- invariants ---- */

static void check_state(void)
{
	const struct rly_ctr_block *c = rly_ctl_subs_counters(T.subs);
	const struct rly_ctl_keys *k = rly_ctl_subs_keys(T.subs);

	CHECK(c->v[RLY_CTR_CTL_KEY_HOLDERS] == rly_ctl_keys_holders(k),
	      "CTL_KEY_HOLDERS gauge %llu, table holds %zu",
	      (unsigned long long)c->v[RLY_CTR_CTL_KEY_HOLDERS], rly_ctl_keys_holders(k));
	CHECK(rly_ctl_keys_holders(k) <= HOLDERS_MAX, "%zu key holders", rly_ctl_keys_holders(k));
	CHECK(rly_ctl_keys_pending(k) <= PENDING_MAX, "%zu key requests pending",
	      rly_ctl_keys_pending(k));
	CHECK(rly_ctl_subs_pending(T.subs) == T.cmd_len, "%zu commands pending, the model says %u",
	      rly_ctl_subs_pending(T.subs), T.cmd_len);
	CHECK(rly_ctl_subs_count(T.subs) <= T.adds_ok + T.dump_entries,
	      "%zu subscriptions from %llu added and %llu dumped", rly_ctl_subs_count(T.subs),
	      (unsigned long long)T.adds_ok, (unsigned long long)T.dump_entries);
}

/* ---- setup ---- */

static void init_once(void)
{
	if (G.ready)
		return;
	CHECK(sodium_init() >= 0, "sodium_init");
	G.verbose = getenv("FUZZ_CONTROL_VERBOSE") != NULL;
	for (unsigned i = 0; i < N_IDS; i++) {
		uint8_t seed[crypto_sign_SEEDBYTES] = {0x43, (uint8_t)i};
		crypto_sign_seed_keypair(G.ids[i].pk, G.ids[i].sk, seed);
	}
	for (unsigned i = 0; i < 2; i++)
		memset(G.streams[i], 0x30 + (int)i, RLY_STREAM_KEY_LEN);
	memset(G.secret, 0x5e, sizeof(G.secret));
	/* Debug level: the log lines are code the packets reach too. */
	G.devnull = fopen("/dev/null", "w");
	CHECK(G.devnull != NULL, "/dev/null");
	rly_ctl_log_open(G.devnull, "fuzz", RLY_LOG_DEBUG);
	G.ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rly_ctl_subs_cfg cfg = RLY_CTL_SUBS_CFG_DEFAULT;
	struct rly_ctl_subs_io io = {.ctx = NULL,
				     .send = fake_send_or_drop,
				     .submit = fake_submit,
				     .tx_crowded = tx_crowded};
	uint8_t mode;

	init_once();
	memset(&T, 0, sizeof(T));
	fz_begin(data, size);
	mode = u8();
	T.now = 1000;
	/* Near the wrap of the command sequence now and then: answers are matched by seq order. */
	T.next_seq = (mode & 1) ? 0xFFFFFFF0u : 100;
	cfg.key_holders_max = HOLDERS_MAX;
	cfg.key_pending_max = PENDING_MAX;
	cfg.challenge_ttl_ms = 2000;
	cfg.max_lease_ms = 5000;
	cfg.default_lease_ms = 3000;
	cfg.sub_burst = (mode & 2) ? 3 : 100;
	cfg.rate_slots = 8;
	CHECK(rly_ctl_subs_create(&T.subs, &cfg, G.secret, &io) == 0, "rly_ctl_subs_create");

	for (unsigned n = 0; n < MAX_EVENTS && fz_left > 0; n++) {
		switch (u8() % K_MAX) {
		case K_RAW:
			ev_raw();
			break;
		case K_SUBSCRIBE:
			ev_subscribe();
			break;
		case K_ANSWER:
			ev_answer();
			break;
		case K_REF:
			ev_ref();
			break;
		case K_KEY_REQ:
			ev_key_req();
			break;
		case K_KEY_RESP:
			ev_key_resp();
			break;
		case K_EVENT:
			ev_event();
			break;
		case K_CLOCK:
			ev_clock();
			break;
		case K_RESYNC:
			T.cmd_len = 0;
			CHECK(rly_ctl_subs_resync_begin(T.subs, T.now) == 0, "resync_begin");
			break;
		case K_DETACH:
			T.cmd_len = 0;
			rly_ctl_subs_on_detach(T.subs);
			break;
		case K_LOSS:
			rly_ctl_subs_note_control_loss(T.subs, T.now);
			break;
		case K_TX: {
			uint8_t sel = u8();
			T.tx_crowded = sel & 1;
			T.tx_full = (sel >> 1) & 1;
			break;
		}
		}
		check_state();
	}
	if (G.verbose) {
		const struct rly_ctr_block *c = rly_ctl_subs_counters(T.subs);
		static const enum rly_ctr shown[] = {
		    RLY_CTR_CTL_SUB_REQ,       RLY_CTR_CTL_CHALLENGES,
		    RLY_CTR_CTL_SUB_ADDED,     RLY_CTR_CTL_SUB_REFUSED,
		    RLY_CTR_CTL_SUB_DENIED,    RLY_CTR_CTL_HEARTBEATS,
		    RLY_CTR_CTL_UNSUBSCRIBED,  RLY_CTR_CTL_EXPIRED,
		    RLY_CTR_CTL_BAD_TOKEN,     RLY_CTR_CTL_RESYNCS,
		    RLY_CTR_CTL_BAD_RECORD,    RLY_CTR_CTL_KEY_REQUESTS,
		    RLY_CTR_CTL_KEY_REFUSED,   RLY_CTR_CTL_KEY_NO_HOLDER,
		    RLY_CTR_CTL_KEY_RESPONSES, RLY_CTR_CTL_KEY_UNEXPECTED,
		    RLY_CTR_CTL_KEY_TIMEOUTS,  RLY_CTR_CTL_KEY_HOLDERS};
		fprintf(stderr, "fuzz_control: %zu subscriptions, %zu pending;",
			rly_ctl_subs_count(T.subs), rly_ctl_subs_pending(T.subs));
		for (unsigned i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
			if (c->v[shown[i]])
				fprintf(stderr, " %s=%llu", rly_ctr_name(shown[i]),
					(unsigned long long)c->v[shown[i]]);
		fputc('\n', stderr);
	}
	rly_ctl_subs_free(T.subs);
	return 0;
}
