/* SPDX-License-Identifier: Apache-2.0 */
#include "keyroute.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "control/key_holders.h"
#include "control/log.h"
#include "control/rec_build.h"
#include "security/e2e.h"
#include "security/registry.h"

/* Bounds on the options, so a typo cannot ask for gigabytes at start-up. */
#define KEYS_MAX_LIMIT (1u << 20)

/*
 * A forwarded request waiting for its first response. Every entry waits exactly
 * RLY_CTL_KEYS_PENDING_MS from its last (re)forward, so the deadline order is the order of the
 * last forward: a FIFO list, with a refreshed entry moved to its tail, finds every timeout in
 * O(1) without a heap.
 */
struct key_pending {
	uint64_t request_id;
	uint8_t requester[RLY_ID_LEN];
	uint8_t publisher[RLY_ID_LEN];
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition;	    /* of the subscription it came under, for the log */
	struct rly_endpoint sub_ep; /* where the response goes */
	uint64_t deadline_ms;
	uint8_t via_peers; /* sent to peer relays, not to holders: the answer comes from one of them */
	struct key_pending *hnext; /* hash chain; the free list when unused */
	struct key_pending *prev, *next; /* deadline order */
};

struct rly_ctl_keys {
	struct rly_ctl_keys_cfg cfg;
	struct rly_ctl_keys_io io;
	struct rly_ctl_holder_table holders;

	struct key_pending *pend; /* cfg.max_pending entries */
	struct key_pending **pend_buckets;
	uint32_t pend_n_buckets; /* power of two */
	struct key_pending *pend_free;
	struct key_pending *oldest, *newest;
	size_t pend_count;
	int full_warned; /* one warning per episode of a full table, not one per request */
	uint8_t hash_key[16];

	struct rly_ctr_block *ctr;
	struct rly_ctr_block own_ctr;

	/* key routing between relays (rly_ctl_keys_set_peers) */
	unsigned (*peer_fwd)(void *ctx, const struct rly_wire_key_request *r,
			     const struct rly_endpoint *not);
	void *peer_ctx;
};

static const char *const refusal_name[] = {
#define X(name, why) #name,
	RLY_CTL_FOREACH_KEY_REFUSAL(X)
#undef X
};

static const char *const refusal_why[] = {
#define X(name, why) why,
	RLY_CTL_FOREACH_KEY_REFUSAL(X)
#undef X
};

const char *rly_ctl_key_refusal_name(enum rly_ctl_key_refusal r)
{
	/* Lower case for the log, built once: names are short and few. */
	static char lower[sizeof(refusal_name) / sizeof(refusal_name[0])][32];

	if ((unsigned)r >= sizeof(refusal_name) / sizeof(refusal_name[0]))
		return "unknown";
	if (!lower[r][0]) {
		size_t i;
		for (i = 0; refusal_name[r][i] && i + 1 < sizeof(lower[r]); i++) {
			char c = refusal_name[r][i];
			lower[r][i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
		}
		lower[r][i] = '\0';
	}
	return lower[r];
}

/* ---- counters ---- */

static void count(struct rly_ctl_keys *k, enum rly_ctr id)
{
	/* Same thread as the subscription service, which writes the same block: relaxed is
	 * enough for readers summing it. */
	uint64_t v = __atomic_load_n(&k->ctr->v[id], __ATOMIC_RELAXED);
	__atomic_store_n(&k->ctr->v[id], v + 1, __ATOMIC_RELAXED);
}

static void gauge_holders(struct rly_ctl_keys *k)
{
	__atomic_store_n(&k->ctr->v[RLY_CTR_CTL_KEY_HOLDERS], (uint64_t)k->holders.count,
			 __ATOMIC_RELAXED);
}

void rly_ctl_keys_set_counters(struct rly_ctl_keys *k, struct rly_ctr_block *block)
{
	k->ctr = block ? block : &k->own_ctr;
	gauge_holders(k);
}

/* ---- log ---- */

static void log_hex(struct rly_ctl_logline *l, const char *key, const uint8_t *b, size_t n)
{
	char hex[2 * RLY_ID_LEN + 1];

	sodium_bin2hex(hex, sizeof(hex), b, n < RLY_ID_LEN ? n : RLY_ID_LEN);
	rly_ctl_log_str(l, key, hex);
}

static void log_holder(const char *event, const struct rly_ctl_holder *h, const char *reason)
{
	struct rly_ctl_logline l;

	if (!rly_ctl_log_begin(&l, RLY_LOG_INFO, event))
		return;
	rly_ctl_log_addr(&l, "src", h->key.ip_be, h->key.udp_port_be);
	rly_ctl_log_stream(&l, h->key.stream_key, h->key.partition);
	log_hex(&l, "identity", h->who, RLY_ID_LEN);
	if (reason)
		rly_ctl_log_str(&l, "reason", reason);
	else
		rly_ctl_log_u64(&l, "lease_ms", h->lease_ms);
	rly_ctl_log_end(&l);
}

static int log_request(struct rly_ctl_logline *l, enum rly_ctl_log_level level, const char *event,
		       const struct rly_endpoint *src, const uint8_t stream[RLY_STREAM_KEY_LEN],
		       uint32_t partition, uint64_t request_id)
{
	if (!rly_ctl_log_begin(l, level, event))
		return 0;
	rly_ctl_log_addr(l, "src", src->ip_be, src->udp_port_be);
	rly_ctl_log_stream(l, stream, partition);
	rly_ctl_log_u64(l, "request_id", request_id);
	return 1;
}

/* ---- sending ---- */

static void send_body(struct rly_ctl_keys *k, const struct rly_endpoint *to, unsigned type,
		      const void *body)
{
	struct rly_pkt_rec rec;

	if (rly_ctl_rec_build(&rec, to, type, body) == 0)
		k->io.send(k->io.ctx, &rec);
}

/* The relay's own answer: unsigned, nothing sealed, so a subscriber only ever retries on it. */
static void answer(struct rly_ctl_keys *k, const struct rly_endpoint *to,
		   const struct rly_wire_key_request *r, unsigned status)
{
	struct rly_wire_key_response a;

	memset(&a, 0, sizeof(a));
	memcpy(a.stream_key, r->stream_key, RLY_STREAM_KEY_LEN);
	a.partition = r->partition;
	a.chain = r->chain;
	rly_be16_store(&a.status, (uint16_t)status);
	a.request_id = r->request_id;
	memcpy(a.publisher, r->publisher, RLY_ID_LEN);
	memcpy(a.requester, r->requester, RLY_ID_LEN);
	send_body(k, to, RLY_MSG_KEY_RESPONSE, &a);
}

/* ---- key holders ---- */

int rly_ctl_keys_holder_add(struct rly_ctl_keys *k, const struct rly_ctl_sub_key *key,
			    const struct rly_endpoint *ep, const uint8_t who[RLY_ID_LEN],
			    uint32_t lease_ms, uint64_t now_ms)
{
	struct rly_ctl_holder *h = rly_ctl_holder_table_find(&k->holders, key);

	if (h) {
		/* A registration answers a fresh challenge, so its endpoint and lease are the
		 * newest word; a new identity on the same address is a new holder for the log. */
		int changed = memcmp(h->who, who, RLY_ID_LEN) != 0;
		if (changed)
			rly_ctl_holder_table_set_who(&k->holders, h, who);
		h->ep = *ep;
		h->lease_ms = lease_ms;
		rly_ctl_holder_table_renew(&k->holders, h, now_ms + lease_ms);
		if (changed)
			log_holder("key_holder_added", h, NULL);
		return 0;
	}
	h = rly_ctl_holder_table_insert(&k->holders, key, ep, who, lease_ms, now_ms + lease_ms);
	if (!h)
		return -ENOSPC;
	gauge_holders(k);
	log_holder("key_holder_added", h, NULL);
	return 0;
}

uint32_t rly_ctl_keys_holder_renew(struct rly_ctl_keys *k, const struct rly_ctl_sub_key *key,
				   const struct rly_endpoint *ep, uint64_t now_ms)
{
	struct rly_ctl_holder *h = rly_ctl_holder_table_find(&k->holders, key);

	if (!h)
		return 0;
	h->ep = *ep;
	rly_ctl_holder_table_renew(&k->holders, h, now_ms + h->lease_ms);
	return h->lease_ms;
}

static void remove_holder(struct rly_ctl_keys *k, struct rly_ctl_holder *h, const char *reason)
{
	log_holder("key_holder_removed", h, reason);
	rly_ctl_holder_table_remove(&k->holders, h);
	gauge_holders(k);
}

int rly_ctl_keys_holder_remove(struct rly_ctl_keys *k, const struct rly_ctl_sub_key *key)
{
	struct rly_ctl_holder *h = rly_ctl_holder_table_find(&k->holders, key);

	if (!h)
		return 0;
	remove_holder(k, h, "unsubscribed");
	return 1;
}

unsigned rly_ctl_keys_revalidate(struct rly_ctl_keys *k, const struct rly_registry *reg,
				 uint64_t unix_now)
{
	unsigned removed = 0;

	if (reg == NULL)
		return 0;
	/* A scan of the holders only: a few thousand at most, and a reload is rare. */
	for (uint32_t i = 0; i < k->holders.max; i++) {
		struct rly_ctl_holder *h = &k->holders.slots[i];
		if (!h->used || rly_registry_allows(reg, h->key.stream_key, h->who,
						    RLY_PERM_PUBLISH, unix_now))
			continue;
		remove_holder(k, h, "revoked");
		removed++;
	}
	return removed;
}

static void holder_expired(void *ctx, const struct rly_ctl_holder *h)
{
	(void)ctx;
	log_holder("key_holder_removed", h, "expired");
}

/* ---- pending requests ---- */

static uint32_t pend_bucket(const struct rly_ctl_keys *k, uint64_t request_id,
			    const uint8_t requester[RLY_ID_LEN])
{
	uint8_t m[8 + RLY_ID_LEN];
	uint64_t h;

	memcpy(m, &request_id, 8);
	memcpy(m + 8, requester, RLY_ID_LEN);
	crypto_shorthash((unsigned char *)&h, m, sizeof(m), k->hash_key);
	return (uint32_t)h & (k->pend_n_buckets - 1);
}

static struct key_pending *pend_find(const struct rly_ctl_keys *k, uint64_t request_id,
				     const uint8_t requester[RLY_ID_LEN])
{
	for (struct key_pending *p = k->pend_buckets[pend_bucket(k, request_id, requester)]; p;
	     p = p->hnext)
		if (p->request_id == request_id && memcmp(p->requester, requester, RLY_ID_LEN) == 0)
			return p;
	return NULL;
}

static void fifo_unlink(struct rly_ctl_keys *k, struct key_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		k->oldest = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		k->newest = p->prev;
	p->prev = p->next = NULL;
}

static void fifo_append(struct rly_ctl_keys *k, struct key_pending *p)
{
	p->prev = k->newest;
	p->next = NULL;
	if (k->newest)
		k->newest->next = p;
	else
		k->oldest = p;
	k->newest = p;
}

static struct key_pending *pend_insert(struct rly_ctl_keys *k, uint64_t request_id,
				       const uint8_t requester[RLY_ID_LEN])
{
	struct key_pending *p = k->pend_free;
	uint32_t b;

	if (!p)
		return NULL;
	k->pend_free = p->hnext;
	memset(p, 0, sizeof(*p));
	p->request_id = request_id;
	memcpy(p->requester, requester, RLY_ID_LEN);
	b = pend_bucket(k, request_id, requester);
	p->hnext = k->pend_buckets[b];
	k->pend_buckets[b] = p;
	fifo_append(k, p);
	k->pend_count++;
	return p;
}

static void pend_remove(struct rly_ctl_keys *k, struct key_pending *p)
{
	struct key_pending **pp = &k->pend_buckets[pend_bucket(k, p->request_id, p->requester)];

	while (*pp != p)
		pp = &(*pp)->hnext;
	*pp = p->hnext;
	fifo_unlink(k, p);
	memset(p, 0, sizeof(*p));
	p->hnext = k->pend_free;
	k->pend_free = p;
	k->pend_count--;
	if (k->pend_count < k->cfg.max_pending)
		k->full_warned = 0;
}

/* ---- requests ---- */

static void refuse(struct rly_ctl_keys *k, const struct rly_endpoint *src,
		   const struct rly_wire_key_request *r, enum rly_ctl_key_refusal why)
{
	struct rly_ctl_logline l;

	count(k, RLY_CTR_CTL_KEY_REFUSED);
	if (log_request(&l, RLY_LOG_DEBUG, "key_request_refused", src, r->stream_key,
			rly_be32_load(&r->partition), rly_be64_load(&r->request_id))) {
		rly_ctl_log_str(&l, "reason", rly_ctl_key_refusal_name(why));
		rly_ctl_log_str(&l, "why", refusal_why[why]);
		rly_ctl_log_end(&l);
	}
}

/*
 * The checks run cheapest first and in the order of docs/encryption.md section 3, so a spoofed
 * or unauthenticated source never costs a signature verification and never gets an answer.
 */
void rly_ctl_keys_on_request(struct rly_ctl_keys *k, const struct rly_endpoint *src,
			     const struct rly_wire_key_request *r, uint64_t now_ms)
{
	struct rly_ctl_holder *to[RLY_CTL_KEYS_FANOUT];
	struct rly_wire_key_request fwd;
	struct rly_ctl_logline l;
	enum rly_ctl_key_refusal why;
	struct key_pending *p;
	uint64_t request_id = rly_be64_load(&r->request_id);
	unsigned n;

	if (!k->io.rate_ok(k->io.ctx, src->ip_be, now_ms)) {
		refuse(k, src, r, RLY_CTL_KEY_RATE_LIMITED);
		return;
	}
	why = k->io.check_subscription(k->io.ctx, src, r);
	if (why != RLY_CTL_KEY_OK) {
		refuse(k, src, r, why);
		return;
	}
	if (!rly_key_request_verify(r)) {
		refuse(k, src, r, RLY_CTL_KEY_BAD_SIGNATURE);
		return;
	}

	n = rly_ctl_holder_table_lookup(&k->holders, r->stream_key, r->publisher, to,
					RLY_CTL_KEYS_FANOUT);
	p = pend_find(k, request_id, r->requester);
	if (n == 0 && k->peer_fwd) {
		/* The publisher may be at another relay of the stream: ask the overlay. */
		fwd = *r;
		memset(fwd.token, 0, sizeof(fwd.token));
		if (p || (p = pend_insert(k, request_id, r->requester)) != NULL) {
			if (k->peer_fwd(k->peer_ctx, &fwd, NULL) > 0) {
				memcpy(p->publisher, r->publisher, RLY_ID_LEN);
				memcpy(p->stream_key, r->stream_key, RLY_STREAM_KEY_LEN);
				p->partition = rly_be32_load(&r->partition);
				p->sub_ep = *src;
				p->via_peers = 1;
				p->deadline_ms = now_ms + RLY_CTL_KEYS_PENDING_MS;
				count(k, RLY_CTR_CTL_KEY_REQUESTS);
				if (log_request(&l, RLY_LOG_DEBUG, "key_request_to_peers", src,
						r->stream_key, rly_be32_load(&r->partition),
						request_id))
					rly_ctl_log_end(&l);
				return;
			}
			pend_remove(k, p);
			p = NULL;
		}
	}
	if (n == 0) {
		/* Nobody to wait for: a remembered copy of this request would only time out. */
		if (p)
			pend_remove(k, p);
		count(k, RLY_CTR_CTL_KEY_NO_HOLDER);
		if (log_request(&l, RLY_LOG_DEBUG, "key_request_no_holder", src, r->stream_key,
				rly_be32_load(&r->partition), request_id)) {
			log_hex(&l, "publisher", r->publisher, RLY_ID_LEN);
			rly_ctl_log_end(&l);
		}
		answer(k, src, r, RLY_SUB_UNAVAILABLE);
		return;
	}
	if (p) {
		/* A retransmission: the subscriber lost our forward or the holder's answer. */
		fifo_unlink(k, p);
		fifo_append(k, p);
	} else if (!(p = pend_insert(k, request_id, r->requester))) {
		if (!k->full_warned) {
			k->full_warned = 1;
			if (rly_ctl_log_begin(&l, RLY_LOG_WARN, "key_pending_full")) {
				rly_ctl_log_u64(&l, "max_pending", k->cfg.max_pending);
				rly_ctl_log_end(&l);
			}
		}
		if (log_request(&l, RLY_LOG_DEBUG, "key_request_rate_limited", src, r->stream_key,
				rly_be32_load(&r->partition), request_id))
			rly_ctl_log_end(&l);
		answer(k, src, r, RLY_SUB_RATE_LIMITED);
		return;
	}
	memcpy(p->publisher, r->publisher, RLY_ID_LEN);
	memcpy(p->stream_key, r->stream_key, RLY_STREAM_KEY_LEN);
	p->partition = rly_be32_load(&r->partition);
	p->sub_ep = *src;
	p->deadline_ms = now_ms + RLY_CTL_KEYS_PENDING_MS;

	/* The token authenticates the subscriber to this relay only: a key holder never sees it. */
	fwd = *r;
	memset(fwd.token, 0, sizeof(fwd.token));
	for (unsigned i = 0; i < n; i++)
		send_body(k, &to[i]->ep, RLY_MSG_KEY_REQUEST, &fwd);
	count(k, RLY_CTR_CTL_KEY_REQUESTS);
	if (log_request(&l, RLY_LOG_DEBUG, "key_request_forwarded", src, r->stream_key,
			rly_be32_load(&r->partition), request_id)) {
		log_hex(&l, "publisher", r->publisher, RLY_ID_LEN);
		rly_ctl_log_u64(&l, "holders", n);
		rly_ctl_log_end(&l);
	}
}

/* Hand the KEY_RESPONSE in @p rec, unchanged, to whoever @p p waits for it, and forget @p p. */
static void pass_on(struct rly_ctl_keys *k, struct key_pending *p, const struct rly_pkt_rec *rec)
{
	struct rly_pkt_rec out;

	memset(&out, 0, offsetof(struct rly_pkt_rec, data));
	out.port_id = p->sub_ep.port_id;
	out.ip_be = p->sub_ep.ip_be;
	out.udp_port_be = p->sub_ep.udp_port_be;
	memcpy(out.mac, p->sub_ep.mac, sizeof(out.mac));
	out.len = rec->len;
	memcpy(out.data, rec->data, rec->len);
	pend_remove(k, p);
	count(k, RLY_CTR_CTL_KEY_RESPONSES);
	k->io.send(k->io.ctx, &out);
}

void rly_ctl_keys_set_peers(struct rly_ctl_keys *k,
			    unsigned (*fwd)(void *ctx, const struct rly_wire_key_request *r,
					    const struct rly_endpoint *not),
			    void *ctx)
{
	k->peer_fwd = fwd;
	k->peer_ctx = ctx;
}

void rly_ctl_keys_on_peer_request(struct rly_ctl_keys *k, const struct rly_endpoint *from,
				  const struct rly_wire_key_request *r, uint64_t now_ms)
{
	struct rly_ctl_holder *to[RLY_CTL_KEYS_FANOUT];
	struct rly_ctl_logline l;
	struct key_pending *p;
	uint64_t request_id = rly_be64_load(&r->request_id);
	unsigned n;

	/* Once per request: the overlay may bring it again by another path (it is a flood). */
	if (pend_find(k, request_id, r->requester))
		return;
	if (!rly_key_request_verify(r)) {
		count(k, RLY_CTR_CTL_KEY_REFUSED);
		return;
	}
	n = rly_ctl_holder_table_lookup(&k->holders, r->stream_key, r->publisher, to,
					RLY_CTL_KEYS_FANOUT);
	if (!(p = pend_insert(k, request_id, r->requester)))
		return;
	memcpy(p->publisher, r->publisher, RLY_ID_LEN);
	memcpy(p->stream_key, r->stream_key, RLY_STREAM_KEY_LEN);
	p->partition = rly_be32_load(&r->partition);
	p->sub_ep = *from; /* the answer goes back to the relay that asked */
	p->deadline_ms = now_ms + RLY_CTL_KEYS_PENDING_MS;
	if (n > 0) {
		for (unsigned i = 0; i < n; i++)
			send_body(k, &to[i]->ep, RLY_MSG_KEY_REQUEST, r);
	} else if (!k->peer_fwd || k->peer_fwd(k->peer_ctx, r, from) == 0) {
		pend_remove(k, p); /* nobody further to ask: the asker times out and retries */
		return;
	} else {
		p->via_peers = 1;
	}
	count(k, RLY_CTR_CTL_KEY_REQUESTS);
	if (log_request(&l, RLY_LOG_DEBUG, "key_request_from_peer", from, r->stream_key,
			rly_be32_load(&r->partition), request_id)) {
		rly_ctl_log_u64(&l, "holders", n);
		rly_ctl_log_end(&l);
	}
}

void rly_ctl_keys_on_peer_response(struct rly_ctl_keys *k, const struct rly_pkt_rec *rec,
				   const struct rly_endpoint *from,
				   const struct rly_wire_key_response *r)
{
	struct key_pending *p = pend_find(k, rly_be64_load(&r->request_id), r->requester);

	(void)from;
	/* Only for a request we sent to the peers; the publisher's signature is the subscriber's
	 * to check, as for an answer from a local holder. */
	if (!p || !p->via_peers || memcmp(p->publisher, r->publisher, RLY_ID_LEN) != 0 ||
	    memcmp(p->stream_key, r->stream_key, RLY_STREAM_KEY_LEN) != 0) {
		count(k, RLY_CTR_CTL_KEY_UNEXPECTED);
		return;
	}
	pass_on(k, p, rec);
}

static void unexpected(struct rly_ctl_keys *k, const struct rly_endpoint *src,
		       const struct rly_wire_key_response *r, const char *why)
{
	struct rly_ctl_logline l;

	count(k, RLY_CTR_CTL_KEY_UNEXPECTED);
	if (log_request(&l, RLY_LOG_DEBUG, "key_response_unexpected", src, r->stream_key,
			rly_be32_load(&r->partition), rly_be64_load(&r->request_id))) {
		rly_ctl_log_str(&l, "reason", why);
		rly_ctl_log_end(&l);
	}
}

void rly_ctl_keys_on_response(struct rly_ctl_keys *k, const struct rly_pkt_rec *rec,
			      const struct rly_endpoint *src, const struct rly_wire_key_response *r,
			      uint64_t now_ms)
{
	struct rly_ctl_sub_key hk;
	struct rly_ctl_holder *h;
	struct key_pending *p;
	struct rly_ctl_logline l;

	if (!k->io.rate_ok(k->io.ctx, src->ip_be, now_ms)) {
		unexpected(k, src, r, "rate_limited");
		return;
	}
	rly_ctl_sub_key_make(&hk, r->stream_key, RLY_KEY_HOLDER_PARTITION, src->ip_be,
			     src->udp_port_be);
	h = rly_ctl_holder_table_find(&k->holders, &hk);
	if (!h) {
		unexpected(k, src, r, "not_a_key_holder");
		return;
	}
	if (memcmp(h->who, r->publisher, RLY_ID_LEN) != 0) {
		unexpected(k, src, r, "holder_of_another_identity");
		return;
	}
	p = pend_find(k, rly_be64_load(&r->request_id), r->requester);
	if (!p || memcmp(p->publisher, r->publisher, RLY_ID_LEN) != 0 ||
	    memcmp(p->stream_key, r->stream_key, RLY_STREAM_KEY_LEN) != 0) {
		/* Also the second answer to a request: the first one won and forgot it. */
		unexpected(k, src, r, "no_pending_request");
		return;
	}
	if (log_request(&l, RLY_LOG_DEBUG, "key_response_forwarded", &p->sub_ep, r->stream_key,
			rly_be32_load(&r->partition), p->request_id)) {
		rly_ctl_log_u64(&l, "status", rly_be16_load(&r->status));
		rly_ctl_log_end(&l);
	}
	/* Unchanged: the response is signed by the publisher, and the subscriber checks that. */
	pass_on(k, p, rec);
}

/* ---- timers ---- */

unsigned rly_ctl_keys_tick(struct rly_ctl_keys *k, uint64_t now_ms, int expire_holders)
{
	unsigned n = 0, gone;
	struct rly_ctl_logline l;

	while (k->oldest && k->oldest->deadline_ms <= now_ms) {
		struct key_pending *p = k->oldest;
		if (log_request(&l, RLY_LOG_DEBUG, "key_request_timeout", &p->sub_ep, p->stream_key,
				p->partition, p->request_id))
			rly_ctl_log_end(&l);
		pend_remove(k, p);
		count(k, RLY_CTR_CTL_KEY_TIMEOUTS);
		n++;
	}
	if (expire_holders) {
		gone = rly_ctl_holder_table_expire(&k->holders, now_ms, holder_expired, k);
		if (gone)
			gauge_holders(k);
		n += gone;
	}
	return n;
}

/* ---- queries and lifecycle ---- */

size_t rly_ctl_keys_holders(const struct rly_ctl_keys *k)
{
	return k->holders.count;
}

size_t rly_ctl_keys_pending(const struct rly_ctl_keys *k)
{
	return k->pend_count;
}

uint64_t rly_ctl_keys_holder_expiry(const struct rly_ctl_keys *k, const struct rly_ctl_sub_key *key)
{
	const struct rly_ctl_holder *h = rly_ctl_holder_table_find(&k->holders, key);

	return h ? h->expires_ms : 0;
}

int rly_ctl_keys_create(struct rly_ctl_keys **out, const struct rly_ctl_keys_cfg *cfg,
			const struct rly_ctl_keys_io *io)
{
	struct rly_ctl_keys *k;
	uint32_t n = 1;
	int rc;

	*out = NULL;
	if (cfg->max_holders == 0 || cfg->max_holders > KEYS_MAX_LIMIT || cfg->max_pending == 0 ||
	    cfg->max_pending > KEYS_MAX_LIMIT)
		return rly_err_set(EINVAL, "key holders and pending key requests must be 1 to %u",
				   KEYS_MAX_LIMIT);
	if (!io->send || !io->rate_ok || !io->check_subscription)
		return rly_err_set(EINVAL, "key routing needs send, rate and subscription callbacks");
	if (sodium_init() < 0)
		return rly_err_set(EIO, "libsodium failed to initialise");
	k = calloc(1, sizeof(*k));
	if (!k)
		return rly_err_set(ENOMEM, "allocate key routing");
	k->cfg = *cfg;
	k->io = *io;
	k->ctr = &k->own_ctr;
	if ((rc = rly_ctl_holder_table_init(&k->holders, cfg->max_holders)) < 0) {
		rc = rly_err_set(-rc, "create the key holder table (%u entries)", cfg->max_holders);
		goto fail;
	}
	while (n < cfg->max_pending)
		n <<= 1;
	k->pend = calloc(cfg->max_pending, sizeof(*k->pend));
	k->pend_buckets = calloc(n, sizeof(*k->pend_buckets));
	if (!k->pend || !k->pend_buckets) {
		rc = rly_err_set(ENOMEM, "allocate %u pending key requests", cfg->max_pending);
		goto fail;
	}
	k->pend_n_buckets = n;
	for (uint32_t i = cfg->max_pending; i-- > 0;) {
		k->pend[i].hnext = k->pend_free;
		k->pend_free = &k->pend[i];
	}
	/* Keyed: request ids and identities are chosen by outsiders. */
	randombytes_buf(k->hash_key, sizeof(k->hash_key));
	*out = k;
	return 0;
fail:
	rly_ctl_keys_free(k);
	return rc;
}

void rly_ctl_keys_free(struct rly_ctl_keys *k)
{
	if (!k)
		return;
	rly_ctl_holder_table_close(&k->holders);
	free(k->pend);
	free(k->pend_buckets);
	free(k);
}
