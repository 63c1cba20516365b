/* SPDX-License-Identifier: Apache-2.0 */
#include "subscriptions.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"
#include "control/keyroute.h"
#include "control/log.h"
#include "control/ratelimit.h"
#include "control/rec_build.h"
#include "control/sub_table.h"
#include "security/registry.h"

/* A heavy expiry burst is spread over several loop turns so that packets keep flowing. */
#define EXPIRE_PER_TICK 1024u
/* A dataplane that has not finished a dump after this long is worth a warning. */
#define RESYNC_SLOW_MS 5000u

/* What an unanswered command was for, so its answer can be turned into a reply. */
enum pending_op {
	P_ADMIT,  /* an ADMIT_* command: nobody to answer, refusals logged */
	P_ADD,	  /* SUBSCRIBE passed the challenge: SUB_ACK when done */
	P_UNSUB,  /* UNSUBSCRIBE: UNSUB_ACK when done */
	P_EXPIRE, /* lease ran out: nobody to answer */
	P_DUMP,	  /* resync */
	P_PEER,	  /* a peer endpoint for peering: nobody to answer, refusals logged */
};

struct pending {
	uint32_t seq;
	uint8_t op;
	uint32_t lease_ms;
	uint64_t request_id;
	struct rly_ctl_sub_key key;
	struct rly_endpoint ep; /* P_ADD: the endpoint added; P_UNSUB: where to answer */
	uint8_t who[RLY_ID_LEN]; /* P_ADD: the identity that proved itself, or zero */
	uint16_t cmd_op;	 /* P_ADMIT: which ADMIT_* it was */
};

struct rly_ctl_subs {
	struct rly_ctl_subs_cfg cfg;
	struct rly_ctl_subs_io io;
	uint8_t cookie_key[32];
	uint8_t token_key[32];
	struct rly_ctl_sub_table table;
	struct rly_ctl_ratelimit rl;
	struct rly_ctl_keys *keys; /* key holders and key requests (keyroute.c) */
	/* peering's hooks (rly_ctl_subs_set_peering) */
	void (*on_subscribed)(void *, const uint8_t[RLY_STREAM_KEY_LEN], uint32_t, uint64_t);
	void (*on_dump_peer)(void *, const uint8_t[RLY_STREAM_KEY_LEN], uint32_t,
			     const struct rly_endpoint *, uint64_t);
	void *peer_ctx;

	/* Commands in the order they were submitted; the manager answers in that order. */
	struct pending *pend;
	size_t p_head, p_len, p_cap;

	struct rly_ctr_block *ctr;
	struct rly_ctr_block own_ctr;

	const struct rly_registry *reg; /* NULL: no permission checks */
	uint64_t (*unix_now)(void);
	uint32_t admit_epoch;

	int resyncing;
	int resync_warned;
	uint32_t dump_seq;
	uint64_t dump_entries;
	uint64_t resync_started_ms;
	uint64_t control_loss_ms; /* last time the dataplane dropped control datagrams; 0: never */
	/* Lines that anyone can cause (a SUBSCRIBE from any address) are limited per second. */
	uint64_t now_ms; /* of the packet or tick being handled */
	uint64_t ulog_second;
	uint32_t ulog_lines;
	uint64_t ulog_suppressed;
};

static const char *const cmd_status_name[] = {
#define X(name, value, desc) [value] = #name,
	RLY_FOREACH_CMD_STATUS(X)
#undef X
};

static const char *cmd_status_str(unsigned st)
{
	return st < sizeof(cmd_status_name) / sizeof(cmd_status_name[0]) && cmd_status_name[st]
		   ? cmd_status_name[st]
		   : "UNKNOWN";
}

static void count_slot(struct rly_ctl_subs *s, unsigned slot)
{
	/* Sole writer of this block: a relaxed store is enough for readers summing it. */
	uint64_t v = __atomic_load_n(&s->ctr->v[slot], __ATOMIC_RELAXED);
	__atomic_store_n(&s->ctr->v[slot], v + 1, __ATOMIC_RELAXED);
}

static void count(struct rly_ctl_subs *s, enum rly_ctr id)
{
	count_slot(s, id);
}

/* ---- keyed MACs ---- */

static void mac16(const uint8_t key[32], const uint8_t *msg, size_t len,
		  uint8_t out[RLY_COOKIE_LEN])
{
	uint8_t full[32];

	crypto_generichash(full, sizeof(full), msg, len, key, 32);
	memcpy(out, full, RLY_COOKIE_LEN);
}

static void cookie_of(const struct rly_ctl_subs *s, uint32_t ip_be, uint16_t port_be,
		      const uint8_t stream[RLY_STREAM_KEY_LEN], uint32_t partition,
		      uint64_t request_id, uint64_t issued_ms, uint8_t out[RLY_COOKIE_LEN])
{
	uint8_t m[4 + 2 + RLY_STREAM_KEY_LEN + 4 + 8 + 8];

	memcpy(m, &ip_be, 4);
	memcpy(m + 4, &port_be, 2);
	memcpy(m + 6, stream, RLY_STREAM_KEY_LEN);
	rly_be32_store(m + 22, partition);
	rly_be64_store(m + 26, request_id);
	rly_be64_store(m + 34, issued_ms);
	mac16(s->cookie_key, m, sizeof(m), out);
}

void rly_ctl_subs_token(const struct rly_ctl_subs *s, uint32_t ip_be, uint16_t udp_port_be,
			const uint8_t stream[RLY_STREAM_KEY_LEN], uint32_t partition,
			uint8_t out[RLY_COOKIE_LEN])
{
	uint8_t m[4 + 2 + RLY_STREAM_KEY_LEN + 4];

	memcpy(m, &ip_be, 4);
	memcpy(m + 4, &udp_port_be, 2);
	memcpy(m + 6, stream, RLY_STREAM_KEY_LEN);
	rly_be32_store(m + 22, partition);
	mac16(s->token_key, m, sizeof(m), out);
}

/* ---- unanswered commands ---- */

static int seq_before(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static struct pending *pending_push(struct rly_ctl_subs *s)
{
	if (s->p_len == s->p_cap) {
		size_t cap = s->p_cap ? s->p_cap * 2 : 64;
		struct pending *p = malloc(cap * sizeof(*p));
		if (!p)
			return NULL;
		for (size_t i = 0; i < s->p_len; i++)
			p[i] = s->pend[(s->p_head + i) % s->p_cap];
		free(s->pend);
		s->pend = p;
		s->p_cap = cap;
		s->p_head = 0;
	}
	struct pending *p = &s->pend[(s->p_head + s->p_len++) % s->p_cap];
	memset(p, 0, sizeof(*p));
	return p;
}

static struct pending *pending_front(struct rly_ctl_subs *s)
{
	return s->p_len ? &s->pend[s->p_head] : NULL;
}

static void pending_pop(struct rly_ctl_subs *s)
{
	s->p_head = (s->p_head + 1) % s->p_cap;
	s->p_len--;
}

/* Submit a command and remember what it was for. The pending slot is filled by the caller. */
static struct pending *submit(struct rly_ctl_subs *s, uint16_t op, const struct rly_ctl_sub_key *k,
			      const struct rly_endpoint *ep)
{
	struct rly_cmd cmd;
	struct pending *p;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = op;
	if (k) {
		memcpy(cmd.stream_key, k->stream_key, RLY_STREAM_KEY_LEN);
		cmd.partition = k->partition;
	}
	if (ep)
		cmd.ep = *ep;
	p = pending_push(s);
	if (!p || s->io.submit(s->io.ctx, &cmd) < 0) {
		if (p)
			s->p_len--;
		rly_ctl_log_msg(RLY_LOG_ERROR, "command_lost", "out of memory queueing a command");
		return NULL;
	}
	p->seq = cmd.seq;
	if (k)
		p->key = *k;
	if (ep)
		p->ep = *ep;
	return p;
}

/*
 * The manager answers every command exactly once and in order, so the answer to @p seq is for the
 * oldest unanswered command. Older ones still waiting were lost by the dataplane (a bug there):
 * say so and forget them. A seq we never sent (an answer meant for a previous relay-control) finds
 * nothing.
 */
static struct pending *pending_take(struct rly_ctl_subs *s, uint32_t seq)
{
	struct pending *p;

	while ((p = pending_front(s)) && seq_before(p->seq, seq)) {
		struct rly_ctl_logline l;
		if (p->op == P_DUMP && s->resyncing)
			break; /* the running dump ends with its DUMP_END, nothing else */
		if (rly_ctl_log_begin(&l, RLY_LOG_WARN, "command_unanswered")) {
			rly_ctl_log_u64(&l, "seq", p->seq);
			rly_ctl_log_end(&l);
		}
		pending_pop(s);
	}
	p = pending_front(s);
	return p && p->seq == seq ? p : NULL;
}

/* ---- replies ---- */

static void send_control(struct rly_ctl_subs *s, const struct rly_endpoint *to, unsigned type,
			 const void *body)
{
	struct rly_pkt_rec rec;

	if (rly_ctl_rec_build(&rec, to, type, body) == 0)
		s->io.send(s->io.ctx, &rec);
}

static void send_ack(struct rly_ctl_subs *s, const struct rly_endpoint *to, unsigned type,
		     const struct rly_ctl_sub_key *k, uint64_t request_id, unsigned status,
		     uint32_t lease_ms, const uint8_t *token)
{
	struct rly_wire_ack a;

	memset(&a, 0, sizeof(a));
	memcpy(a.stream_key, k->stream_key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&a.partition, k->partition);
	rly_be16_store(&a.status, (uint16_t)status);
	rly_be64_store(&a.request_id, request_id);
	if (status == RLY_SUB_OK) {
		uint32_t hb = lease_ms / 3;
		rly_be32_store(&a.lease_ms, lease_ms);
		rly_be32_store(&a.heartbeat_ms, hb ? hb : 1);
	}
	if (token)
		memcpy(a.token, token, RLY_COOKIE_LEN);
	send_control(s, to, type, &a);
}

static int log_sub(struct rly_ctl_logline *l, enum rly_ctl_log_level level, const char *event,
		   const struct rly_ctl_sub_key *k)
{
	if (!rly_ctl_log_begin(l, level, event))
		return 0;
	rly_ctl_log_addr(l, "src", k->ip_be, k->udp_port_be);
	rly_ctl_log_stream(l, k->stream_key, k->partition);
	return 1;
}

/* Say how many lines the limit below dropped in the second that just ended. */
static void ulog_flush(struct rly_ctl_subs *s)
{
	struct rly_ctl_logline l;

	if (s->ulog_suppressed && rly_ctl_log_begin(&l, RLY_LOG_WARN, "log_suppressed")) {
		rly_ctl_log_u64(&l, "lines", s->ulog_suppressed);
		rly_ctl_log_u64(&l, "limit_per_s", RLY_CTL_UNAUTH_LOG_PER_S);
		rly_ctl_log_str(&l, "events", "challenge_sent, subscribe_refused, subscribe_denied");
		rly_ctl_log_end(&l);
	}
	s->ulog_suppressed = 0;
}

/*
 * log_sub for events any source can cause at will: at most RLY_CTL_UNAUTH_LOG_PER_S lines a
 * second, the rest counted and summed up in one log_suppressed line, so a SUBSCRIBE flood
 * neither fills the disk nor spends relay-control's time formatting lines (the counters still
 * count every one).
 */
static int log_unauth(struct rly_ctl_subs *s, struct rly_ctl_logline *l, const char *event,
		      const struct rly_ctl_sub_key *k)
{
	uint64_t second = s->now_ms / 1000;

	if (!rly_ctl_log_enabled(RLY_LOG_INFO))
		return 0;
	if (second != s->ulog_second) {
		ulog_flush(s);
		s->ulog_second = second;
		s->ulog_lines = 0;
	}
	if (s->ulog_lines >= RLY_CTL_UNAUTH_LOG_PER_S) {
		s->ulog_suppressed++;
		return 0;
	}
	s->ulog_lines++;
	return log_sub(l, RLY_LOG_INFO, event, k);
}

/*
 * 1 (counted) when a reply to a request nobody proved yet should not be sent: the tx ring is half
 * full, and what room is left belongs to the acks of existing subscriptions. The requester
 * retries, as it would after any loss.
 */
static int shed_reply(struct rly_ctl_subs *s)
{
	if (s->io.tx_crowded == NULL || !s->io.tx_crowded(s->io.ctx))
		return 0;
	count(s, RLY_CTR_CTL_REPLY_SHED);
	return 1;
}

static void refuse(struct rly_ctl_subs *s, const struct rly_endpoint *to,
		   const struct rly_ctl_sub_key *k, uint64_t request_id, unsigned status)
{
	struct rly_ctl_logline l;

	count(s, RLY_CTR_CTL_SUB_REFUSED);
	if (log_unauth(s, &l, "subscribe_refused", k)) {
		rly_ctl_log_str(&l, "status", rly_sub_status_name(status));
		rly_ctl_log_end(&l);
	}
	send_ack(s, to, RLY_MSG_SUB_ACK, k, request_id, status, 0, NULL);
}

/* ---- requests ---- */

static uint64_t real_unix_now(void)
{
	return rly_real_ns() / 1000000000ull;
}

/* Refuse a SUBSCRIBE on permission grounds: counted apart, logged with the reason. */
static void deny(struct rly_ctl_subs *s, const struct rly_endpoint *to,
		 const struct rly_ctl_sub_key *k, uint64_t request_id, const uint8_t *who,
		 const char *why)
{
	struct rly_ctl_logline l;
	char hex[2 * RLY_ID_LEN + 1];

	count(s, RLY_CTR_CTL_SUB_DENIED);
	if (log_unauth(s, &l, "subscribe_denied", k)) {
		if (who) {
			sodium_bin2hex(hex, sizeof(hex), who, RLY_ID_LEN);
			rly_ctl_log_str(&l, "identity", hex);
		} else {
			rly_ctl_log_str(&l, "identity", "anonymous");
		}
		rly_ctl_log_str(&l, "reason", why);
		rly_ctl_log_end(&l);
	}
	send_ack(s, to, RLY_MSG_SUB_ACK, k, request_id, RLY_SUB_DENIED, 0, NULL);
}

/*
 * A SUBSCRIBE_SIGNED on RLY_KEY_HOLDER_PARTITION that passed its cookie and signature checks.
 * A key holder is relay-control's business only: no dataplane command, an answer at once.
 */
static void on_holder_register(struct rly_ctl_subs *s, const struct rly_endpoint *src,
			       const struct rly_ctl_sub_key *k, const struct rly_wire_subscribe *b,
			       uint64_t request_id, uint64_t now_ms)
{
	uint8_t tok[RLY_COOKIE_LEN];
	uint32_t lease = rly_be32_load(&b->lease_ms);

	if (s->reg && !rly_registry_allows(s->reg, b->stream_key, b->subscriber, RLY_PERM_PUBLISH,
					   s->unix_now())) {
		deny(s, src, k, request_id, b->subscriber,
		     "the stream registry grants this identity no publish permission, so it cannot "
		     "hold the stream's keys");
		return;
	}
	if (lease > s->cfg.max_lease_ms)
		lease = s->cfg.max_lease_ms;
	if (rly_ctl_keys_holder_add(s->keys, k, src, b->subscriber, lease, now_ms) < 0) {
		refuse(s, src, k, request_id, RLY_SUB_TABLE_FULL);
		return;
	}
	rly_ctl_subs_token(s, k->ip_be, k->udp_port_be, k->stream_key, k->partition, tok);
	send_ack(s, src, RLY_MSG_SUB_ACK, k, request_id, RLY_SUB_OK, lease, tok);
}

/*
 * @p sig is the SUBSCRIBE_SIGNED signature, or NULL for a plain SUBSCRIBE. The cheap checks (rate
 * limit, cookie MAC) come first, so a flood of signed junk costs no signature verification.
 */
static void on_subscribe(struct rly_ctl_subs *s, const struct rly_endpoint *src,
			 const struct rly_wire_subscribe *b, const uint8_t *sig, uint64_t now_ms)
{
	struct rly_ctl_sub_key k;
	uint8_t cookie[RLY_COOKIE_LEN];
	uint32_t partition = rly_be32_load(&b->partition);
	uint64_t request_id = rly_be64_load(&b->request_id);
	uint64_t issued = rly_be64_load(&b->issued_ms);
	struct rly_ctl_logline l;

	count(s, RLY_CTR_CTL_SUB_REQ);
	rly_ctl_sub_key_make(&k, b->stream_key, partition, src->ip_be, src->udp_port_be);
	if (!rly_ctl_ratelimit_allow(&s->rl, src->ip_be, now_ms)) {
		/* Silent: answering would let a flood make us send as much as we receive. */
		count(s, RLY_CTR_CTL_SUB_REFUSED);
		if (log_sub(&l, RLY_LOG_DEBUG, "subscribe_rate_limited", &k))
			rly_ctl_log_end(&l);
		return;
	}

	if (issued == 0) {
		struct rly_wire_challenge c;
		/* issued_ms 0 means "no cookie yet" on the wire, so a cookie never carries it. */
		uint64_t now = now_ms ? now_ms : 1;

		if (shed_reply(s))
			return;
		cookie_of(s, src->ip_be, src->udp_port_be, b->stream_key, partition, request_id,
			  now, cookie);
		memset(&c, 0, sizeof(c));
		memcpy(c.stream_key, b->stream_key, RLY_STREAM_KEY_LEN);
		rly_be32_store(&c.partition, partition);
		rly_be64_store(&c.request_id, request_id);
		rly_be64_store(&c.issued_ms, now);
		memcpy(c.cookie, cookie, RLY_COOKIE_LEN);
		send_control(s, src, RLY_MSG_CHALLENGE, &c);
		count(s, RLY_CTR_CTL_CHALLENGES);
		if (log_unauth(s, &l, "challenge_sent", &k)) {
			rly_ctl_log_u64(&l, "request_id", request_id);
			rly_ctl_log_end(&l);
		}
		return;
	}

	cookie_of(s, src->ip_be, src->udp_port_be, b->stream_key, partition, request_id, issued,
		  cookie);
	if (sodium_memcmp(cookie, b->cookie, RLY_COOKIE_LEN) != 0) {
		if (!shed_reply(s))
			refuse(s, src, &k, request_id, RLY_SUB_BAD_COOKIE);
		return;
	}
	if (issued > now_ms || now_ms - issued > s->cfg.challenge_ttl_ms) {
		if (!shed_reply(s))
			refuse(s, src, &k, request_id, RLY_SUB_COOKIE_EXPIRED);
		return;
	}

	/* A key holder gets keys requests on behalf of an identity, so a claim is not enough. */
	if (partition == RLY_KEY_HOLDER_PARTITION && !sig) {
		deny(s, src, &k, request_id, NULL,
		     "a key holder must sign its registration (answer the challenge with "
		     "SUBSCRIBE_SIGNED)");
		return;
	}

	/* Only a signature proves an identity: a plain SUBSCRIBE's subscriber field is a claim. */
	static const uint8_t anonymous[RLY_ID_LEN];
	const uint8_t *who = anonymous;
	if (sig) {
		uint8_t msg[sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1 + sizeof(*b)];
		memcpy(msg, RLY_SUBSCRIBE_SIG_CONTEXT, sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1);
		memcpy(msg + sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1, b, sizeof(*b));
		if (crypto_sign_verify_detached(sig, msg, sizeof(msg), b->subscriber) != 0) {
			deny(s, src, &k, request_id, b->subscriber, "bad identity signature");
			return;
		}
		who = b->subscriber;
	}
	if (partition == RLY_KEY_HOLDER_PARTITION) {
		on_holder_register(s, src, &k, b, request_id, now_ms);
		return;
	}
	if (s->reg && !rly_registry_allows(s->reg, b->stream_key, who, RLY_PERM_SUBSCRIBE,
					   s->unix_now())) {
		deny(s, src, &k, request_id, sig ? who : NULL,
		     sig ? "the stream registry grants this identity no subscribe permission"
			 : "the stream registry does not let anonymous subscribers in (sign the "
			   "subscribe with an identity)");
		return;
	}

	uint32_t lease = rly_be32_load(&b->lease_ms);
	struct pending *p = submit(s, RLY_CMD_SUB_ADD, &k, src);
	if (!p)
		return; /* the client retries */
	p->op = P_ADD;
	p->request_id = request_id;
	p->lease_ms = lease < s->cfg.max_lease_ms ? lease : s->cfg.max_lease_ms;
	memcpy(p->who, who, RLY_ID_LEN);
}

/* A wrong token gets no answer at all: never reply to unauthenticated traffic. */
static int token_ok(struct rly_ctl_subs *s, const struct rly_ctl_sub_key *k,
		    const struct rly_wire_sub_ref *r)
{
	uint8_t tok[RLY_COOKIE_LEN];
	struct rly_ctl_logline l;

	rly_ctl_subs_token(s, k->ip_be, k->udp_port_be, k->stream_key, k->partition, tok);
	if (sodium_memcmp(tok, r->token, RLY_COOKIE_LEN) == 0)
		return 1;
	count(s, RLY_CTR_CTL_BAD_TOKEN);
	if (log_sub(&l, RLY_LOG_DEBUG, "bad_token", k))
		rly_ctl_log_end(&l);
	return 0;
}

static void on_heartbeat(struct rly_ctl_subs *s, const struct rly_endpoint *src,
			 const struct rly_wire_sub_ref *r, uint64_t now_ms)
{
	struct rly_ctl_sub_key k;
	struct rly_ctl_sub *sub;
	uint64_t request_id = rly_be64_load(&r->request_id);
	struct rly_ctl_logline l;

	rly_ctl_sub_key_make(&k, r->stream_key, rly_be32_load(&r->partition), src->ip_be,
			     src->udp_port_be);
	if (!token_ok(s, &k, r))
		return;
	if (k.partition == RLY_KEY_HOLDER_PARTITION) {
		/* NOT_SUBSCRIBED is how a holder learns to register again (lease ran out, or
		 * relay-control restarted and forgot it). */
		uint32_t lease = rly_ctl_keys_holder_renew(s->keys, &k, src, now_ms);
		if (lease)
			count(s, RLY_CTR_CTL_HEARTBEATS);
		send_ack(s, src, RLY_MSG_HEARTBEAT_ACK, &k, request_id,
			 lease ? RLY_SUB_OK : RLY_SUB_NOT_SUBSCRIBED, lease, NULL);
		return;
	}
	sub = rly_ctl_sub_table_find(&s->table, &k);
	if (!sub) {
		if (log_sub(&l, RLY_LOG_DEBUG, "heartbeat_not_subscribed", &k))
			rly_ctl_log_end(&l);
		send_ack(s, src, RLY_MSG_HEARTBEAT_ACK, &k, request_id, RLY_SUB_NOT_SUBSCRIBED, 0,
			 NULL);
		return;
	}
	if (!sub->proven) {
		/*
		 * Known from a resync only, and the registry needs to know who it is: ask for a new
		 * subscribe with proof. The dataplane keeps forwarding meanwhile (SUB_ADD is an
		 * upsert), so the subscriber misses nothing; without one, the lease runs out.
		 */
		if (log_sub(&l, RLY_LOG_INFO, "identity_requested", &k))
			rly_ctl_log_end(&l);
		send_ack(s, src, RLY_MSG_HEARTBEAT_ACK, &k, request_id, RLY_SUB_NOT_SUBSCRIBED, 0,
			 NULL);
		return;
	}
	sub->graces = 0;
	rly_ctl_sub_table_renew(&s->table, sub, now_ms + sub->lease_ms);
	count(s, RLY_CTR_CTL_HEARTBEATS);
	if (log_sub(&l, RLY_LOG_DEBUG, "heartbeat", &k)) {
		rly_ctl_log_u64(&l, "lease_ms", sub->lease_ms);
		rly_ctl_log_end(&l);
	}
	send_ack(s, src, RLY_MSG_HEARTBEAT_ACK, &k, request_id, RLY_SUB_OK, sub->lease_ms, NULL);
}

static void on_unsubscribe(struct rly_ctl_subs *s, const struct rly_endpoint *src,
			   const struct rly_wire_sub_ref *r)
{
	struct rly_ctl_sub_key k;
	struct rly_ctl_sub *sub;
	struct rly_endpoint ep;
	uint64_t request_id = rly_be64_load(&r->request_id);

	rly_ctl_sub_key_make(&k, r->stream_key, rly_be32_load(&r->partition), src->ip_be,
			     src->udp_port_be);
	if (!token_ok(s, &k, r))
		return;
	if (k.partition == RLY_KEY_HOLDER_PARTITION) {
		int had = rly_ctl_keys_holder_remove(s->keys, &k);
		send_ack(s, src, RLY_MSG_UNSUB_ACK, &k, request_id,
			 had ? RLY_SUB_OK : RLY_SUB_NOT_SUBSCRIBED, 0, NULL);
		return;
	}
	sub = rly_ctl_sub_table_find(&s->table, &k);
	if (!sub) {
		send_ack(s, src, RLY_MSG_UNSUB_ACK, &k, request_id, RLY_SUB_NOT_SUBSCRIBED, 0,
			 NULL);
		return;
	}
	/* Gone from our table now, so its lease cannot also expire it while SUB_DEL is in flight.
	 */
	ep = sub->ep;
	rly_ctl_sub_table_remove(&s->table, sub);
	struct pending *p = submit(s, RLY_CMD_SUB_DEL, &k, &ep);
	if (!p)
		return;
	p->op = P_UNSUB;
	p->request_id = request_id;
	p->ep = *src;
}

/*
 * A worker cut a slow consumer off (RLY_PKT_F_SLOW): its NAKs asked for more repair than its
 * budget for longer than the relay's --slow-cut-ms. It was told (GAP SLOW_CONSUMER); here its
 * subscription ends, so it costs nothing more until it subscribes again, and the log says who and
 * why.
 */
static void on_slow(struct rly_ctl_subs *s, const struct rly_pkt_rec *rec)
{
	const struct rly_slow_report *r = (const void *)rec->data;
	struct rly_ctl_logline l;
	struct rly_ctl_sub_key k;
	struct rly_ctl_sub *sub;
	struct rly_endpoint ep;
	struct pending *p;

	if (rec->len < sizeof(*r) || rec->ip_be == 0 || rec->udp_port_be == 0) {
		count(s, RLY_CTR_CTL_BAD_RECORD);
		return;
	}
	rly_ctl_sub_key_make(&k, r->nak.stream_key, rly_be32_load(&r->nak.partition), rec->ip_be,
			     rec->udp_port_be);
	sub = rly_ctl_sub_table_find(&s->table, &k);
	if (!sub) {
		if (log_sub(&l, RLY_LOG_DEBUG, "slow_consumer_gone", &k))
			rly_ctl_log_end(&l);
		return;
	}
	ep = sub->ep;
	rly_ctl_sub_table_remove(&s->table, sub);
	p = submit(s, RLY_CMD_SUB_DEL, &k, &ep);
	if (p)
		p->op = P_EXPIRE;
	count(s, RLY_CTR_CTL_SLOW_CUT);
	if (log_sub(&l, RLY_LOG_WARN, "slow_consumer_cut", &k)) {
		rly_ctl_log_str(&l, "reason", "its NAKs asked for more repair than its budget");
		rly_ctl_log_u64(&l, "over_ms", r->over_ms);
		rly_ctl_log_u64(&l, "asked_msgs", r->asked_msgs);
		rly_ctl_log_u64(&l, "sent_msgs", r->sent_msgs);
		rly_ctl_log_u64(&l, "budget_bytes_s", r->budget_bytes_s);
		rly_ctl_log_u64(&l, "chain", rly_be32_load(&r->nak.chain));
		rly_ctl_log_end(&l);
	}
}

int rly_ctl_subs_on_packet(struct rly_ctl_subs *s, const struct rly_pkt_rec *rec, uint64_t now_ms)
{
	struct rly_wire_view v;
	struct rly_endpoint src;
	enum rly_wire_err err = RLY_WIRE_ERR_OK;

	s->now_ms = now_ms;
	if (rec->flags & RLY_PKT_F_SLOW) {
		on_slow(s, rec);
		return 0;
	}
	/* The worker validated it already; a second parse costs little and keeps a dataplane bug
	 * from becoming a control-plane one. A refusal is counted by reason, as everywhere. */
	if (rec->len > RLY_PKT_REC_DATA ||
	    (err = rly_wire_parse(rec->data, rec->len, RLY_WIRE_MAX_DGRAM, &v)) != RLY_WIRE_ERR_OK ||
	    rec->ip_be == 0 || rec->udp_port_be == 0) {
		count(s, RLY_CTR_CTL_BAD_RECORD);
		if (err != RLY_WIRE_ERR_OK)
			count_slot(s, RLY_CTR_WIRE_BASE + err);
		return -EPROTO;
	}
	memset(&src, 0, sizeof(src));
	src.ip_be = rec->ip_be;
	src.udp_port_be = rec->udp_port_be;
	src.port_id = rec->port_id;
	memcpy(src.mac, rec->mac, sizeof(src.mac));

	switch (v.type) {
	case RLY_MSG_SUBSCRIBE:
		on_subscribe(s, &src, (const struct rly_wire_subscribe *)v.body, NULL, now_ms);
		return 0;
	case RLY_MSG_SUBSCRIBE_SIGNED: {
		const struct rly_wire_subscribe_signed *ss = (const void *)v.body;
		on_subscribe(s, &src, &ss->sub, ss->sig, now_ms);
		return 0;
	}
	case RLY_MSG_HEARTBEAT:
		on_heartbeat(s, &src, (const struct rly_wire_sub_ref *)v.body, now_ms);
		return 0;
	case RLY_MSG_UNSUBSCRIBE:
		on_unsubscribe(s, &src, (const struct rly_wire_sub_ref *)v.body);
		return 0;
	case RLY_MSG_KEY_REQUEST:
		rly_ctl_keys_on_request(s->keys, &src, (const struct rly_wire_key_request *)v.body,
					now_ms);
		return 0;
	case RLY_MSG_KEY_RESPONSE:
		rly_ctl_keys_on_response(s->keys, rec, &src,
					 (const struct rly_wire_key_response *)v.body, now_ms);
		return 0;
	default:
		/* Data, or a type that only a relay sends: the worker should not have punted it. */
		count(s, RLY_CTR_CTL_BAD_RECORD);
		return -EPROTO;
	}
}

/* ---- answers from the dataplane ---- */

static void command_refused(const char *cmd, const struct pending *p, unsigned status)
{
	struct rly_ctl_logline l;

	if (!rly_ctl_log_begin(&l, RLY_LOG_WARN, "command_refused"))
		return;
	rly_ctl_log_str(&l, "cmd", cmd);
	rly_ctl_log_str(&l, "status", cmd_status_str(status));
	rly_ctl_log_addr(&l, "src", p->key.ip_be, p->key.udp_port_be);
	rly_ctl_log_stream(&l, p->key.stream_key, p->key.partition);
	rly_ctl_log_end(&l);
}

static void add_done(struct rly_ctl_subs *s, const struct pending *p, unsigned status,
		     uint64_t now_ms)
{
	struct rly_ctl_logline l;
	uint8_t tok[RLY_COOKIE_LEN];
	/* Declared here: a declaration right after a case label is C23, which clang 14 refuses. */
	struct rly_ctl_sub *sub;

	switch (status) {
	case RLY_CMD_OK:
	case RLY_CMD_EXISTS:
		sub = rly_ctl_sub_table_upsert(&s->table, &p->key, &p->ep, p->lease_ms,
					       now_ms + p->lease_ms);
		if (!sub) {
			/* The dataplane has it and we cannot track its lease: take it back. */
			rly_ctl_log_msg(RLY_LOG_ERROR, "subscribe_untracked",
					"out of memory adding a subscription; removing it again");
			struct pending *q = submit(s, RLY_CMD_SUB_DEL, &p->key, &p->ep);
			if (q)
				q->op = P_EXPIRE;
			refuse(s, &p->ep, &p->key, p->request_id, RLY_SUB_UNAVAILABLE);
			return;
		}
		memcpy(sub->who, p->who, RLY_ID_LEN);
		sub->proven = 1;
		if (status == RLY_CMD_OK)
			count(s, RLY_CTR_CTL_SUB_ADDED);
		if (log_sub(&l, RLY_LOG_INFO, "subscribe_added", &p->key)) {
			rly_ctl_log_u64(&l, "lease_ms", p->lease_ms);
			rly_ctl_log_str(&l, "dataplane", cmd_status_str(status));
			rly_ctl_log_end(&l);
		}
		rly_ctl_subs_token(s, p->key.ip_be, p->key.udp_port_be, p->key.stream_key,
				   p->key.partition, tok);
		send_ack(s, &p->ep, RLY_MSG_SUB_ACK, &p->key, p->request_id, RLY_SUB_OK,
			 p->lease_ms, tok);
		if (s->on_subscribed && p->key.partition != RLY_KEY_HOLDER_PARTITION)
			s->on_subscribed(s->peer_ctx, p->key.stream_key, p->key.partition, now_ms);
		return;
	case RLY_CMD_STREAMS_FULL:
	case RLY_CMD_SUBS_FULL:
	case RLY_CMD_NO_MEMORY:
		command_refused("SUB_ADD", p, status);
		refuse(s, &p->ep, &p->key, p->request_id, RLY_SUB_TABLE_FULL);
		return;
	case RLY_CMD_BAD_PORT:
		command_refused("SUB_ADD", p, status);
		refuse(s, &p->ep, &p->key, p->request_id, RLY_SUB_DENIED);
		return;
	default:
		command_refused("SUB_ADD", p, status);
		refuse(s, &p->ep, &p->key, p->request_id, RLY_SUB_UNAVAILABLE);
		return;
	}
}

static void del_done(struct rly_ctl_subs *s, const struct pending *p, unsigned status)
{
	struct rly_ctl_logline l;
	/* NOT_FOUND still means "not subscribed any more", which is what was asked for. */
	int gone = status == RLY_CMD_OK || status == RLY_CMD_NOT_FOUND;

	if (!gone)
		command_refused("SUB_DEL", p, status);
	if (p->op != P_UNSUB)
		return;
	if (gone) {
		count(s, RLY_CTR_CTL_UNSUBSCRIBED);
		if (log_sub(&l, RLY_LOG_INFO, "unsubscribed", &p->key))
			rly_ctl_log_end(&l);
	}
	send_ack(s, &p->ep, RLY_MSG_UNSUB_ACK, &p->key, p->request_id,
		 gone ? RLY_SUB_OK : RLY_SUB_UNAVAILABLE, 0, NULL);
}

static void resync_done(struct rly_ctl_subs *s, uint64_t reported, int complete)
{
	struct rly_ctl_logline l;

	s->resyncing = 0;
	count(s, RLY_CTR_CTL_RESYNCS);
	if (rly_ctl_log_begin(&l, complete ? RLY_LOG_INFO : RLY_LOG_WARN, "resync_done")) {
		rly_ctl_log_u64(&l, "entries", s->dump_entries);
		if (reported != s->dump_entries)
			rly_ctl_log_u64(&l, "reported", reported);
		rly_ctl_log_end(&l);
	}
}

static void on_dump_entry(struct rly_ctl_subs *s, const struct rly_event *ev, uint64_t now_ms)
{
	struct rly_ctl_sub_key k;

	if (!s->resyncing || ev->seq != s->dump_seq || ev->ep.ip_be == 0) {
		count(s, RLY_CTR_CTL_BAD_RECORD);
		return;
	}
	if (ev->ep.flags & RLY_EP_F_PEER) {
		/* An overlay link, not a subscription: peering decides whether it stays. */
		s->dump_entries++;
		if (s->on_dump_peer) {
			s->on_dump_peer(s->peer_ctx, ev->stream_key, ev->partition, &ev->ep, now_ms);
		} else {
			rly_ctl_sub_key_make(&k, ev->stream_key, ev->partition, ev->ep.ip_be,
					     ev->ep.udp_port_be);
			struct pending *q = submit(s, RLY_CMD_SUB_DEL, &k, &ev->ep);
			if (q)
				q->op = P_PEER;
		}
		return;
	}
	rly_ctl_sub_key_make(&k, ev->stream_key, ev->partition, ev->ep.ip_be, ev->ep.udp_port_be);
	/* We no longer know the lease granted; the subscriber's next heartbeat renews this one. */
	struct rly_ctl_sub *sub = rly_ctl_sub_table_upsert(&s->table, &k, &ev->ep,
							   s->cfg.default_lease_ms,
							   now_ms + s->cfg.default_lease_ms);
	if (!sub) {
		rly_ctl_log_msg(RLY_LOG_ERROR, "resync_entry_lost", "out of memory during resync");
		return;
	}
	/* The dataplane does not know who proved this subscription: only an anonymous one is
	 * known to be allowed. The others prove themselves again at their next heartbeat. */
	sub->proven = s->reg == NULL || rly_registry_allows(s->reg, k.stream_key, NULL,
							    RLY_PERM_SUBSCRIBE, s->unix_now());
	s->dump_entries++;
}

void rly_ctl_subs_on_event(struct rly_ctl_subs *s, const struct rly_event *ev, uint64_t now_ms)
{
	struct pending *p, copy;

	switch (ev->op) {
	case RLY_EV_DUMP_ENTRY:
		on_dump_entry(s, ev, now_ms);
		return;
	case RLY_EV_DUMP_END:
		if (!s->resyncing || ev->seq != s->dump_seq || !(p = pending_take(s, ev->seq))) {
			count(s, RLY_CTR_CTL_BAD_RECORD);
			return;
		}
		pending_pop(s);
		resync_done(s, ev->count, 1);
		return;
	case RLY_EV_DONE:
		p = pending_take(s, ev->seq);
		if (!p) {
			count(s, RLY_CTR_CTL_BAD_RECORD);
			return;
		}
		copy = *p;
		pending_pop(s);
		switch (copy.op) {
		case P_ADMIT:
			if (ev->status != RLY_CMD_OK && !(copy.cmd_op == RLY_CMD_ADMIT_CLEAR &&
							    ev->status == RLY_CMD_NOT_FOUND))
				command_refused("ADMIT", &copy, ev->status);
			return;
		case P_ADD:
			add_done(s, &copy, ev->status, now_ms);
			return;
		case P_UNSUB:
		case P_EXPIRE:
			del_done(s, &copy, ev->status);
			return;
		case P_PEER:
			if (ev->status != RLY_CMD_OK && ev->status != RLY_CMD_EXISTS &&
			    !(copy.cmd_op == RLY_CMD_SUB_DEL && ev->status == RLY_CMD_NOT_FOUND))
				command_refused(copy.cmd_op == RLY_CMD_SUB_DEL ? "SUB_DEL peer"
									       : "SUB_ADD peer",
						&copy, ev->status);
			return;
		case P_DUMP:
			/* A manager that cannot dump answers DONE (BAD_OP): go on with what we
			 * have. */
			command_refused("DUMP", &copy, ev->status);
			resync_done(s, 0, 0);
			return;
		}
		return;
	default:
		count(s, RLY_CTR_CTL_BAD_RECORD);
		return;
	}
}

/* ---- the stream registry ---- */

void rly_ctl_subs_set_registry(struct rly_ctl_subs *s, const struct rly_registry *reg,
			       uint64_t (*unix_now)(void))
{
	s->reg = reg;
	s->unix_now = unix_now ? unix_now : real_unix_now;
}

unsigned rly_ctl_subs_revalidate(struct rly_ctl_subs *s)
{
	struct rly_ctl_logline l;
	uint64_t now = s->unix_now();
	unsigned removed = 0;
	size_t i = 0;

	if (s->reg == NULL)
		return 0;
	/* Holders live in relay-control alone, so a resync in progress does not concern them. */
	removed += rly_ctl_keys_revalidate(s->keys, s->reg, now);
	if (s->resyncing)
		return removed;
	/* The expiry heap lists every entry; removing one moves another into its slot. */
	while (i < s->table.count) {
		struct rly_ctl_sub *sub = s->table.heap[i];
		if (!sub->proven) {
			i++;
			continue;
		}
		if (rly_registry_allows(s->reg, sub->key.stream_key, sub->who, RLY_PERM_SUBSCRIBE,
					now)) {
			i++;
			continue;
		}
		struct rly_ctl_sub_key k = sub->key;
		struct rly_endpoint ep = sub->ep;
		rly_ctl_sub_table_remove(&s->table, sub);
		struct pending *p = submit(s, RLY_CMD_SUB_DEL, &k, &ep);
		if (p)
			p->op = P_EXPIRE;
		count(s, RLY_CTR_CTL_REVOKED);
		if (log_sub(&l, RLY_LOG_INFO, "subscription_revoked", &k)) {
			rly_ctl_log_str(&l, "reason", "the stream registry no longer allows it");
			rly_ctl_log_end(&l);
		}
		removed++;
	}
	return removed;
}

static int admit_cmd(struct rly_ctl_subs *s, uint16_t op, const uint8_t *key, uint32_t arg,
		     const uint8_t *pk)
{
	struct rly_cmd cmd;
	struct pending *p;

	memset(&cmd, 0, sizeof(cmd));
	cmd.op = op;
	if (key)
		memcpy(cmd.stream_key, key, RLY_STREAM_KEY_LEN);
	cmd.partition = arg;
	if (pk)
		memcpy(cmd.publisher, pk, RLY_ID_LEN);
	p = pending_push(s);
	if (!p || s->io.submit(s->io.ctx, &cmd) < 0) {
		if (p)
			s->p_len--;
		rly_ctl_log_msg(RLY_LOG_ERROR, "command_lost", "out of memory queueing a command");
		return -ENOMEM;
	}
	p->seq = cmd.seq;
	p->op = P_ADMIT;
	p->cmd_op = op;
	if (key)
		memcpy(p->key.stream_key, key, RLY_STREAM_KEY_LEN);
	return 0;
}

int rly_ctl_subs_push_admission(struct rly_ctl_subs *s, const struct rly_registry *reg)
{
	uint8_t (*keys)[RLY_STREAM_KEY_LEN] = NULL, (*pks)[RLY_ID_LEN] = NULL;
	uint64_t now = s->unix_now();
	int n_streams, rc = 0;
	struct rly_ctl_logline l;
	unsigned pushed = 0;

	if (reg == NULL)
		return admit_cmd(s, RLY_CMD_ADMIT_MODE, NULL, 0, NULL);
	n_streams = rly_registry_streams(reg, NULL, 0);
	keys = malloc((size_t)(n_streams > 0 ? n_streams : 1) * sizeof(*keys));
	pks = malloc(RLY_ADMIT_MAX * sizeof(*pks));
	if (keys == NULL || pks == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	n_streams = rly_registry_streams(reg, keys, (unsigned)n_streams);
	/* Lists first, under a new epoch, then mode on and the sweep: no window in which an
	 * admitted publisher is refused, whether this is the first push or a reload. */
	s->admit_epoch++;
	for (int i = 0; i < n_streams && rc == 0; i++) {
		int pub = 0;
		int n = rly_registry_publishers(reg, keys[i], now, pks, RLY_ADMIT_MAX, &pub);
		if (n > (int)RLY_ADMIT_MAX) {
			char hex[2 * RLY_STREAM_KEY_LEN + 1];
			sodium_bin2hex(hex, sizeof(hex), keys[i], RLY_STREAM_KEY_LEN);
			if (rly_ctl_log_begin(&l, RLY_LOG_WARN, "admission_truncated")) {
				rly_ctl_log_str(&l, "stream", hex);
				rly_ctl_log_u64(&l, "publishers", (uint64_t)n);
				rly_ctl_log_u64(&l, "admitted", RLY_ADMIT_MAX);
				rly_ctl_log_end(&l);
			}
			n = (int)RLY_ADMIT_MAX;
		}
		rc = admit_cmd(s, RLY_CMD_ADMIT_BEGIN, keys[i], pub ? RLY_ADMIT_F_PUBLIC : 0, NULL);
		for (int j = 0; j < n && rc == 0; j++)
			rc = admit_cmd(s, RLY_CMD_ADMIT_ADD, keys[i], 0, pks[j]);
		if (rc == 0)
			rc = admit_cmd(s, RLY_CMD_ADMIT_COMMIT, keys[i], s->admit_epoch, NULL);
		pushed++;
	}
	if (rc == 0)
		rc = admit_cmd(s, RLY_CMD_ADMIT_MODE, NULL, 1, NULL);
	if (rc == 0)
		rc = admit_cmd(s, RLY_CMD_ADMIT_SWEEP, NULL, s->admit_epoch, NULL);
	if (rc == 0 && rly_ctl_log_begin(&l, RLY_LOG_INFO, "admission_pushed")) {
		rly_ctl_log_u64(&l, "streams", pushed);
		rly_ctl_log_u64(&l, "epoch", s->admit_epoch);
		rly_ctl_log_end(&l);
	}
out:
	free(keys);
	free(pks);
	return rc;
}

/* ---- what key routing asks about a request's source ---- */

static int keys_send(void *ctx, struct rly_pkt_rec *rec)
{
	struct rly_ctl_subs *s = ctx;

	return s->io.send(s->io.ctx, rec);
}

static int keys_rate_ok(void *ctx, uint32_t ip_be, uint64_t now_ms)
{
	struct rly_ctl_subs *s = ctx;

	return rly_ctl_ratelimit_allow(&s->rl, ip_be, now_ms);
}

static enum rly_ctl_key_refusal keys_check_subscription(void *ctx, const struct rly_endpoint *src,
							const struct rly_wire_key_request *r)
{
	static const uint8_t zero[RLY_ID_LEN];
	struct rly_ctl_subs *s = ctx;
	struct rly_ctl_sub_key k;
	struct rly_ctl_sub *sub;
	uint8_t tok[RLY_COOKIE_LEN];

	rly_ctl_sub_key_make(&k, r->stream_key, rly_be32_load(&r->partition), src->ip_be,
			     src->udp_port_be);
	sub = rly_ctl_sub_table_find(&s->table, &k);
	if (!sub)
		return RLY_CTL_KEY_NO_SUBSCRIPTION;
	rly_ctl_subs_token(s, k.ip_be, k.udp_port_be, k.stream_key, k.partition, tok);
	if (sodium_memcmp(tok, r->token, RLY_COOKIE_LEN) != 0)
		return RLY_CTL_KEY_BAD_TOKEN;
	if (!sub->proven || sodium_memcmp(sub->who, zero, RLY_ID_LEN) == 0) {
		/*
		 * The source holds the token, so it is the subscriber, and it wants keys: it has an
		 * identity this entry does not know (rebuilt by a resync, or subscribed without
		 * signing). Its next heartbeat asks it to subscribe again with proof; data keeps
		 * flowing meanwhile.
		 */
		sub->proven = 0;
		return RLY_CTL_KEY_NOT_PROVEN;
	}
	if (memcmp(sub->who, r->requester, RLY_ID_LEN) != 0)
		return RLY_CTL_KEY_OTHER_REQUESTER;
	return RLY_CTL_KEY_OK;
}

/* ---- lifecycle ---- */

void rly_ctl_subs_set_peering(
    struct rly_ctl_subs *s,
    void (*on_subscribed)(void *, const uint8_t[RLY_STREAM_KEY_LEN], uint32_t, uint64_t),
    void (*on_dump_peer)(void *, const uint8_t[RLY_STREAM_KEY_LEN], uint32_t,
			 const struct rly_endpoint *, uint64_t),
    void *ctx)
{
	s->on_subscribed = on_subscribed;
	s->on_dump_peer = on_dump_peer;
	s->peer_ctx = ctx;
}

int rly_ctl_subs_peer_link(struct rly_ctl_subs *s, int add, const uint8_t key[RLY_STREAM_KEY_LEN],
			   uint32_t partition, const struct rly_endpoint *ep)
{
	struct rly_ctl_sub_key k;
	struct rly_endpoint e = *ep;
	uint16_t op = add ? RLY_CMD_SUB_ADD : RLY_CMD_SUB_DEL;
	struct pending *p;

	e.flags |= RLY_EP_F_PEER;
	rly_ctl_sub_key_make(&k, key, partition, e.ip_be, e.udp_port_be);
	p = submit(s, op, &k, &e);
	if (!p)
		return -ENOMEM;
	p->op = P_PEER;
	p->cmd_op = op;
	return 0;
}

void rly_ctl_subs_foreach_stream(const struct rly_ctl_subs *s,
				 void (*cb)(void *arg, const uint8_t key[RLY_STREAM_KEY_LEN],
					    uint32_t partition),
				 void *arg)
{
	const struct rly_ctl_sub_table *t = &s->table;

	/* A stream with several subscribers is reported once per subscriber: the callers only
	 * refresh a timestamp, so that costs less than remembering what was reported. */
	for (size_t b = 0; b < t->n_buckets; b++)
		for (const struct rly_ctl_sub *x = t->buckets[b]; x; x = x->next)
			if (x->key.partition != RLY_KEY_HOLDER_PARTITION)
				cb(arg, x->key.stream_key, x->key.partition);
}

int rly_ctl_subs_resync_begin(struct rly_ctl_subs *s, uint64_t now_ms)
{
	struct pending *p;

	rly_ctl_sub_table_clear(&s->table);
	s->p_len = 0;
	s->resyncing = 1;
	s->resync_warned = 0;
	s->dump_entries = 0;
	s->resync_started_ms = now_ms;
	rly_ctl_log_msg(RLY_LOG_INFO, "resync_begin",
			"asking the dataplane for its subscriber table");
	p = submit(s, RLY_CMD_DUMP, NULL, NULL);
	if (!p)
		return -ENOMEM;
	p->op = P_DUMP;
	s->dump_seq = p->seq;
	return 0;
}

int rly_ctl_subs_ready(const struct rly_ctl_subs *s)
{
	return !s->resyncing;
}

void rly_ctl_subs_on_detach(struct rly_ctl_subs *s)
{
	s->p_len = 0;
	s->resyncing = 0;
}

void rly_ctl_subs_note_control_loss(struct rly_ctl_subs *s, uint64_t now_ms)
{
	s->control_loss_ms = now_ms ? now_ms : 1;
}

unsigned rly_ctl_subs_tick(struct rly_ctl_subs *s, uint64_t now_ms)
{
	struct rly_ctl_sub *sub;
	struct rly_ctl_logline l;
	unsigned n;

	s->now_ms = now_ms;
	if (s->ulog_suppressed && now_ms / 1000 != s->ulog_second)
		ulog_flush(s);
	/* Holders' heartbeats wait with the other punted packets during a resync, so their leases
	 * wait too; a pending key request has a deadline of its own. */
	n = rly_ctl_keys_tick(s->keys, now_ms, !s->resyncing);
	if (s->resyncing) {
		/* Expiring now would act on a table we have not finished rebuilding. */
		if (!s->resync_warned && now_ms - s->resync_started_ms > RESYNC_SLOW_MS) {
			s->resync_warned = 1;
			rly_ctl_log_msg(
			    RLY_LOG_WARN, "resync_slow",
			    "the dataplane has not finished its table dump; still waiting");
		}
		return n;
	}
	while (n < EXPIRE_PER_TICK && (sub = rly_ctl_sub_table_first(&s->table)) &&
	       sub->expires_ms <= now_ms) {
		struct rly_ctl_sub_key k = sub->key;
		struct rly_endpoint ep = sub->ep;
		uint32_t lease = sub->lease_ms;

		if (s->control_loss_ms && now_ms - s->control_loss_ms < lease &&
		    sub->graces < RLY_CTL_LEASE_GRACES) {
			/* Its heartbeats may have been dropped with the flood: not proof it left. */
			sub->graces++;
			rly_ctl_sub_table_renew(&s->table, sub,
						now_ms + lease / RLY_CTL_LEASE_GRACE_DIV + 1);
			count(s, RLY_CTR_CTL_LEASE_GRACE);
			if (log_sub(&l, RLY_LOG_DEBUG, "lease_grace", &k)) {
				rly_ctl_log_u64(&l, "grace", sub->graces);
				rly_ctl_log_end(&l);
			}
			n++;
			continue;
		}
		rly_ctl_sub_table_remove(&s->table, sub);
		struct pending *p = submit(s, RLY_CMD_SUB_DEL, &k, &ep);
		if (p)
			p->op = P_EXPIRE;
		count(s, RLY_CTR_CTL_EXPIRED);
		if (log_sub(&l, RLY_LOG_INFO, "lease_expired", &k)) {
			rly_ctl_log_u64(&l, "lease_ms", lease);
			rly_ctl_log_end(&l);
		}
		n++;
	}
	return n;
}

size_t rly_ctl_subs_count(const struct rly_ctl_subs *s)
{
	return s->table.count;
}

size_t rly_ctl_subs_pending(const struct rly_ctl_subs *s)
{
	return s->p_len;
}

uint64_t rly_ctl_subs_expiry(const struct rly_ctl_subs *s, const uint8_t stream[RLY_STREAM_KEY_LEN],
			     uint32_t partition, uint32_t ip_be, uint16_t udp_port_be)
{
	struct rly_ctl_sub_key k;
	struct rly_ctl_sub *sub;

	rly_ctl_sub_key_make(&k, stream, partition, ip_be, udp_port_be);
	sub = rly_ctl_sub_table_find(&s->table, &k);
	return sub ? sub->expires_ms : 0;
}

void rly_ctl_subs_set_counters(struct rly_ctl_subs *s, struct rly_ctr_block *block)
{
	s->ctr = block ? block : &s->own_ctr;
	rly_ctl_keys_set_counters(s->keys, s->ctr);
}

struct rly_ctl_keys *rly_ctl_subs_keys(const struct rly_ctl_subs *s)
{
	return s->keys;
}

const struct rly_ctr_block *rly_ctl_subs_counters(const struct rly_ctl_subs *s)
{
	return s->ctr;
}

int rly_ctl_subs_create(struct rly_ctl_subs **out, const struct rly_ctl_subs_cfg *cfg,
			const uint8_t secret[RLY_CTL_SECRET_LEN], const struct rly_ctl_subs_io *io)
{
	struct rly_ctl_keys_cfg kcfg = RLY_CTL_KEYS_CFG_DEFAULT;
	struct rly_ctl_keys_io kio;
	struct rly_ctl_subs *s;
	int rc;

	*out = NULL;
	if (sodium_init() < 0)
		return rly_err_set(EIO, "libsodium failed to initialise");
	if (cfg->default_lease_ms == 0 || cfg->max_lease_ms == 0 || cfg->challenge_ttl_ms == 0)
		return rly_err_set(EINVAL, "leases and the challenge lifetime must be above 0 ms");
	s = calloc(1, sizeof(*s));
	if (!s)
		return rly_err_set(ENOMEM, "allocate the subscription service");
	s->cfg = *cfg;
	s->io = *io;
	s->ctr = &s->own_ctr;
	/* 0 in a configuration built without RLY_CTL_SUBS_CFG_DEFAULT means the default. */
	if (cfg->key_holders_max)
		kcfg.max_holders = cfg->key_holders_max;
	if (cfg->key_pending_max)
		kcfg.max_pending = cfg->key_pending_max;
	kio = (struct rly_ctl_keys_io){.ctx = s,
				       .send = keys_send,
				       .rate_ok = keys_rate_ok,
				       .check_subscription = keys_check_subscription};
	s->unix_now = real_unix_now;
	/* Separate keys, so a cookie can never be replayed as a token or the other way round. */
	crypto_kdf_derive_from_key(s->cookie_key, sizeof(s->cookie_key), 1, "rlycooki", secret);
	crypto_kdf_derive_from_key(s->token_key, sizeof(s->token_key), 2, "rlytoken", secret);
	if ((rc = rly_ctl_sub_table_init(&s->table)) < 0) {
		rc = rly_err_set(-rc, "create the subscription table");
		goto fail;
	}
	if ((rc = rly_ctl_ratelimit_init(&s->rl, cfg->sub_rate_per_s, cfg->sub_burst,
					 cfg->rate_slots)) < 0) {
		rc = rly_err_set(-rc, "create the rate limiter (rate %u/s, burst %u)",
				 cfg->sub_rate_per_s, cfg->sub_burst);
		goto fail;
	}
	if ((rc = rly_ctl_keys_create(&s->keys, &kcfg, &kio)) < 0)
		goto fail;
	rly_ctl_keys_set_counters(s->keys, s->ctr);
	*out = s;
	return 0;
fail:
	rly_ctl_subs_free(s);
	return rc;
}

void rly_ctl_subs_free(struct rly_ctl_subs *s)
{
	if (!s)
		return;
	rly_ctl_keys_free(s->keys);
	rly_ctl_sub_table_close(&s->table);
	rly_ctl_ratelimit_close(&s->rl);
	free(s->pend);
	sodium_memzero(s->cookie_key, sizeof(s->cookie_key));
	sodium_memzero(s->token_key, sizeof(s->token_key));
	free(s);
}
