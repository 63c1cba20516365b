/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peer sessions: the mutual, signed handshake between relays (PEER_HELLO), keepalives, the
 * neighbour cache that gives a peer's MAC before the first datagram to it, and the dispatch of
 * everything peering receives. Overlay logic lives in overlay.c.
 *
 * The handshake is the subscribe handshake made mutual. The responder keeps nothing for a HELLO:
 * its CHALLENGE carries a keyed MAC over the initiator's address, port, request and identity, and
 * is the same size as the HELLO, so a spoofed HELLO makes the relay send no more than it got. Only
 * a PROOF (cookie echoed, signed by the initiator) costs a signature check, and creates the
 * session. Each side then hands the other a random token; every later peer datagram carries the
 * receiver's token, so checking where it came from costs one compare.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "common/shm.h"
#include "control/log.h"
#include "control/peers_int.h"
#include "control/rec_build.h"

#define SESS_TICK_MS 20u
#define TRY_FIRST_MS 200u
#define TRY_MAX_MS 4000u
#define TRIES_MAX 10u	      /* a handshake to a non-seed gives up after this many sends */
#define PROOF_RATE_PER_S 20u  /* signature checks per source address */
#define PROOF_BURST 40u

/* ---- counters, randomness ---- */

void peers_count(struct rly_ctl_peers *p, enum rly_ctr id)
{
	p->ctr->v[id]++;
}

void peers_gauge(struct rly_ctl_peers *p, enum rly_ctr id, uint64_t v)
{
	__atomic_store_n(&p->ctr->v[id], v, __ATOMIC_RELAXED);
}

uint64_t peers_rand64(void)
{
	uint64_t v;

	do
		randombytes_buf(&v, sizeof(v));
	while (v == 0);
	return v;
}

static int all_zero(const uint8_t *b, size_t n)
{
	return sodium_is_zero(b, n);
}

/* ---- neighbours ---- */

static struct neigh *neigh_find(struct rly_ctl_peers *p, uint32_t ip_be)
{
	for (unsigned i = 0; i < NEIGH_MAX; i++)
		if (p->neigh[i].ip_be == ip_be && ip_be != 0)
			return &p->neigh[i];
	return NULL;
}

static void send_hello(struct rly_ctl_peers *p, int s);

void sess_note_neigh(struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_id, const uint8_t mac[6],
		     uint64_t now_ms)
{
	struct neigh *n = neigh_find(p, ip_be);
	static const uint8_t zero_mac[6];

	if (ip_be == 0 || memcmp(mac, zero_mac, 6) == 0)
		return;
	if (!n) {
		/* The oldest entry makes room: a neighbour we still talk to is refreshed often. */
		n = &p->neigh[0];
		for (unsigned i = 1; i < NEIGH_MAX; i++)
			if (p->neigh[i].seen_ms < n->seen_ms)
				n = &p->neigh[i];
		n->ip_be = ip_be;
	}
	n->port_id = port_id;
	memcpy(n->mac, mac, 6);
	n->seen_ms = now_ms;
	for (unsigned i = 0; i < SESS_MAX; i++) {
		struct peer_sess *x = &p->sess[i];
		if (x->st == S_FREE || x->ep.ip_be != ip_be)
			continue;
		x->ep.port_id = port_id;
		memcpy(x->ep.mac, mac, 6);
		if (x->st == S_ARP) {
			x->tries = 0;
			send_hello(p, (int)i);
		}
	}
}

static void send_arp(struct rly_ctl_peers *p, uint32_t ip_be)
{
	struct rly_pkt_rec rec;

	memset(&rec, 0, offsetof(struct rly_pkt_rec, data));
	rec.flags = RLY_PKT_F_ARP_RESOLVE;
	rec.ip_be = ip_be;
	rec.port_id = 0;
	p->io.send(p->io.ctx, &rec);
}

/* ---- sessions ---- */

int sess_find(const struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_be)
{
	for (unsigned i = 0; i < SESS_MAX; i++)
		if (p->sess[i].st != S_FREE && p->sess[i].ep.ip_be == ip_be &&
		    p->sess[i].ep.udp_port_be == port_be)
			return (int)i;
	return -1;
}

static void sess_log(const struct rly_ctl_peers *p, int s, enum rly_ctl_log_level lvl,
		     const char *event, const char *why)
{
	const struct peer_sess *x = &p->sess[s];
	struct rly_ctl_logline l;
	char hex[2 * RLY_ID_LEN + 1];

	if (!rly_ctl_log_begin(&l, lvl, event))
		return;
	rly_ctl_log_addr(&l, "peer", x->ep.ip_be, x->ep.udp_port_be);
	if (!all_zero(x->id, RLY_ID_LEN)) {
		sodium_bin2hex(hex, sizeof(hex), x->id, RLY_ID_LEN);
		rly_ctl_log_str(&l, "identity", hex);
	}
	if (why)
		rly_ctl_log_str(&l, "reason", why);
	rly_ctl_log_end(&l);
}

static void gauge_sessions(struct rly_ctl_peers *p)
{
	peers_gauge(p, RLY_CTR_CTL_PEERS, rly_ctl_peers_sessions_up(p));
}

static void sess_free(struct rly_ctl_peers *p, int s, uint64_t now_ms)
{
	ov_on_session_down(p, s, now_ms);
	sodium_memzero(&p->sess[s], sizeof(p->sess[s]));
	gauge_sessions(p);
}

static void sess_backoff(struct peer_sess *x, uint64_t now_ms)
{
	uint64_t wait = (uint64_t)TRY_FIRST_MS << (x->tries < 5 ? x->tries : 5);

	x->next_try_ms = now_ms + (wait > TRY_MAX_MS ? TRY_MAX_MS : wait);
	x->tries++;
}

int sess_open(struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_be,
	      const uint8_t expect[RLY_ID_LEN], uint64_t now_ms)
{
	int s = sess_find(p, ip_be, port_be);
	struct peer_sess *x;
	struct neigh *n;

	if (s >= 0)
		return s;
	if (ip_be == p->self_ip_be && port_be == p->self_port_be)
		return -1;
	for (s = 0; s < (int)SESS_MAX && p->sess[s].st != S_FREE; s++)
		;
	if (s == (int)SESS_MAX) {
		rly_ctl_log_msg(RLY_LOG_WARN, "peer_sessions_full",
				"no room for another peer session (256); not linking");
		return -1;
	}
	x = &p->sess[s];
	memset(x, 0, sizeof(*x));
	x->initiator = 1;
	x->ep.ip_be = ip_be;
	x->ep.udp_port_be = port_be;
	x->ep.flags = RLY_EP_F_PEER;
	if (expect)
		memcpy(x->expect, expect, RLY_ID_LEN);
	x->opened_ms = now_ms;
	x->request_id = peers_rand64();
	n = neigh_find(p, ip_be);
	if (n) {
		x->ep.port_id = n->port_id;
		memcpy(x->ep.mac, n->mac, 6);
		send_hello(p, s);
	} else {
		x->st = S_ARP;
		send_arp(p, ip_be);
		sess_backoff(x, now_ms);
	}
	return s;
}

/* Send to an address, with or without a session (CHALLENGE, the handshake before UP). */
static int send_to(struct rly_ctl_peers *p, const struct rly_endpoint *to, unsigned type,
		   const void *body)
{
	struct rly_pkt_rec rec;

	if (rly_ctl_rec_build(&rec, to, type, body) < 0)
		return -EINVAL;
	return p->io.send(p->io.ctx, &rec);
}

int sess_send(struct rly_ctl_peers *p, int s, unsigned type, const void *body)
{
	return send_to(p, &p->sess[s].ep, type, body);
}

/* ---- handshake ---- */

static void hello_sign(const struct rly_ctl_peers *p, struct rly_wire_peer_hello *b)
{
	uint8_t m[sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1 + offsetof(struct rly_wire_peer_hello, sig)];

	memcpy(m, RLY_PEER_HELLO_SIG_CONTEXT, sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1);
	memcpy(m + sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1, b, offsetof(struct rly_wire_peer_hello, sig));
	crypto_sign_detached(b->sig, NULL, m, sizeof(m), p->id.sk);
}

static int hello_verify(const struct rly_wire_peer_hello *b)
{
	uint8_t m[sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1 + offsetof(struct rly_wire_peer_hello, sig)];

	memcpy(m, RLY_PEER_HELLO_SIG_CONTEXT, sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1);
	memcpy(m + sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1, b, offsetof(struct rly_wire_peer_hello, sig));
	return crypto_sign_verify_detached(b->sig, m, sizeof(m), b->sender);
}

static void cookie_of(const struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_be,
		      uint64_t request_id, uint64_t issued_ms, const uint8_t sender[RLY_ID_LEN],
		      uint8_t out[RLY_COOKIE_LEN])
{
	uint8_t m[4 + 2 + 8 + 8 + RLY_ID_LEN], full[32];

	memcpy(m, &ip_be, 4);
	memcpy(m + 4, &port_be, 2);
	rly_be64_store(m + 6, request_id);
	rly_be64_store(m + 14, issued_ms);
	memcpy(m + 22, sender, RLY_ID_LEN);
	crypto_generichash(full, sizeof(full), m, sizeof(m), p->cookie_key, sizeof(p->cookie_key));
	memcpy(out, full, RLY_COOKIE_LEN);
}

static void send_hello(struct rly_ctl_peers *p, int s)
{
	struct peer_sess *x = &p->sess[s];
	struct rly_wire_peer_hello b;

	memset(&b, 0, sizeof(b));
	b.kind = RLY_PEER_HELLO;
	rly_be64_store(&b.request_id, x->request_id);
	memcpy(b.sender, p->id.pk, RLY_ID_LEN);
	memcpy(b.target, x->expect, RLY_ID_LEN);
	send_to(p, &x->ep, RLY_MSG_PEER_HELLO, &b);
	x->st = S_HELLO;
	sess_backoff(x, p->now_ms);
}

static void send_proof(struct rly_ctl_peers *p, int s)
{
	struct peer_sess *x = &p->sess[s];
	struct rly_wire_peer_hello b;

	memset(&b, 0, sizeof(b));
	b.kind = RLY_PEER_PROOF;
	rly_be64_store(&b.request_id, x->request_id);
	rly_be64_store(&b.issued_ms, x->issued_ms);
	memcpy(b.cookie, x->cookie, RLY_COOKIE_LEN);
	memcpy(b.token, x->my_token, RLY_COOKIE_LEN);
	memcpy(b.sender, p->id.pk, RLY_ID_LEN);
	memcpy(b.target, x->expect, RLY_ID_LEN);
	hello_sign(p, &b);
	send_to(p, &x->ep, RLY_MSG_PEER_HELLO, &b);
	x->st = S_PROOF;
	sess_backoff(x, p->now_ms);
}

static void send_simple(struct rly_ctl_peers *p, int s, unsigned kind)
{
	struct rly_wire_peer_hello b;

	memset(&b, 0, sizeof(b));
	b.kind = (uint8_t)kind;
	rly_be64_store(&b.request_id, peers_rand64());
	memcpy(b.token, p->sess[s].their_token, RLY_COOKIE_LEN);
	sess_send(p, s, RLY_MSG_PEER_HELLO, &b);
}

static void refused(struct rly_ctl_peers *p, const struct rly_endpoint *src, const char *why)
{
	struct rly_ctl_logline l;

	peers_count(p, RLY_CTR_CTL_PEER_REFUSED);
	if (rly_ctl_log_begin(&l, RLY_LOG_DEBUG, "peer_refused")) {
		rly_ctl_log_addr(&l, "src", src->ip_be, src->udp_port_be);
		rly_ctl_log_str(&l, "reason", why);
		rly_ctl_log_end(&l);
	}
}

static void session_up(struct rly_ctl_peers *p, int s, const uint8_t id[RLY_ID_LEN],
		       const char *how)
{
	struct peer_sess *x = &p->sess[s];

	x->st = S_UP;
	memcpy(x->id, id, RLY_ID_LEN);
	x->last_rx_ms = p->now_ms;
	x->last_ping_ms = p->now_ms;
	x->tries = 0;
	gauge_sessions(p);
	sess_log(p, s, RLY_LOG_INFO, "peer_up", how);
	ov_on_session_up(p, s, p->now_ms);
}

static void on_hello(struct rly_ctl_peers *p, const struct rly_endpoint *src,
		     const struct rly_wire_peer_hello *b)
{
	struct rly_wire_peer_hello c;
	uint64_t issued = p->now_ms ? p->now_ms : 1;

	if (memcmp(b->sender, p->id.pk, RLY_ID_LEN) == 0)
		return refused(p, src, "hello from our own identity");
	if (!all_zero(b->target, RLY_ID_LEN) && memcmp(b->target, p->id.pk, RLY_ID_LEN) != 0)
		return refused(p, src, "hello for another identity");
	/* Stateless: everything the PROOF must match is in the cookie. */
	memset(&c, 0, sizeof(c));
	c.kind = RLY_PEER_CHALLENGE;
	c.request_id = b->request_id;
	rly_be64_store(&c.issued_ms, issued);
	cookie_of(p, src->ip_be, src->udp_port_be, rly_be64_load(&b->request_id), issued, b->sender,
		  c.cookie);
	send_to(p, src, RLY_MSG_PEER_HELLO, &c);
}

static void on_challenge(struct rly_ctl_peers *p, const struct rly_endpoint *src,
			 const struct rly_wire_peer_hello *b)
{
	int s = sess_find(p, src->ip_be, src->udp_port_be);
	struct peer_sess *x;

	/* Only an answer to our own HELLO, from where we sent it, is worth a PROOF. */
	if (s < 0 || p->sess[s].st != S_HELLO ||
	    rly_be64_load(&b->request_id) != p->sess[s].request_id)
		return refused(p, src, "challenge nobody asked for");
	x = &p->sess[s];
	x->issued_ms = rly_be64_load(&b->issued_ms);
	memcpy(x->cookie, b->cookie, RLY_COOKIE_LEN);
	randombytes_buf(x->my_token, RLY_COOKIE_LEN);
	x->tries = 0;
	send_proof(p, s);
}

static void on_proof(struct rly_ctl_peers *p, const struct rly_endpoint *src,
		     const struct rly_wire_peer_hello *b)
{
	uint8_t want[RLY_COOKIE_LEN];
	uint64_t issued = rly_be64_load(&b->issued_ms);
	uint64_t req = rly_be64_load(&b->request_id);
	struct rly_wire_peer_hello w;
	struct peer_sess *x;
	int s;

	if (!rly_ctl_ratelimit_allow(&p->rl, src->ip_be, p->now_ms))
		return refused(p, src, "rate");
	cookie_of(p, src->ip_be, src->udp_port_be, req, issued, b->sender, want);
	if (sodium_memcmp(want, b->cookie, RLY_COOKIE_LEN) != 0)
		return refused(p, src, "bad cookie");
	if (issued > p->now_ms || p->now_ms - issued > p->cfg.challenge_ttl_ms)
		return refused(p, src, "cookie expired");
	if (!all_zero(b->target, RLY_ID_LEN) && memcmp(b->target, p->id.pk, RLY_ID_LEN) != 0)
		return refused(p, src, "proof for another identity");
	if (memcmp(b->sender, p->id.pk, RLY_ID_LEN) == 0)
		return refused(p, src, "proof from our own identity");
	if (hello_verify(b) != 0)
		return refused(p, src, "bad signature");

	s = sess_find(p, src->ip_be, src->udp_port_be);
	if (s >= 0) {
		x = &p->sess[s];
		if (x->st == S_UP) {
			/* A PROOF we already took (resent because our WELCOME was lost): answer it
			 * again with the same token, but never go back to an older one. */
			if (memcmp(x->their_token, b->token, RLY_COOKIE_LEN) == 0)
				goto welcome;
			if (issued < x->issued_ms)
				return refused(p, src, "older proof");
			if (memcmp(x->id, b->sender, RLY_ID_LEN) != 0) {
				sess_log(p, s, RLY_LOG_INFO, "peer_down", "another identity");
				sess_free(p, s, p->now_ms);
				s = -1;
			}
		} else if (x->initiator && memcmp(p->id.pk, b->sender, RLY_ID_LEN) < 0) {
			/* Both ends opened at once: the lower identity's handshake goes on, the
			 * other end takes our PROOF when it comes. */
			return;
		}
	}
	if (s < 0) {
		for (s = 0; s < (int)SESS_MAX && p->sess[s].st != S_FREE; s++)
			;
		if (s == (int)SESS_MAX)
			return refused(p, src, "no room for another session");
		memset(&p->sess[s], 0, sizeof(p->sess[s]));
		p->sess[s].opened_ms = p->now_ms;
	}
	x = &p->sess[s];
	x->ep = *src;
	x->ep.flags = RLY_EP_F_PEER;
	x->initiator = 0;
	x->issued_ms = issued;
	x->request_id = req;
	memcpy(x->their_token, b->token, RLY_COOKIE_LEN);
	randombytes_buf(x->my_token, RLY_COOKIE_LEN);
	if (x->st != S_UP)
		session_up(p, s, b->sender, "accepted");
	else
		sess_log(p, s, RLY_LOG_INFO, "peer_reconnected", "new proof");
welcome:
	x = &p->sess[s];
	x->last_rx_ms = p->now_ms;
	memset(&w, 0, sizeof(w));
	w.kind = RLY_PEER_WELCOME;
	w.request_id = b->request_id;
	memcpy(w.token, x->my_token, RLY_COOKIE_LEN);
	memcpy(w.sender, p->id.pk, RLY_ID_LEN);
	memcpy(w.target, b->sender, RLY_ID_LEN);
	hello_sign(p, &w);
	sess_send(p, s, RLY_MSG_PEER_HELLO, &w);
}

static void on_welcome(struct rly_ctl_peers *p, const struct rly_endpoint *src,
		       const struct rly_wire_peer_hello *b)
{
	int s = sess_find(p, src->ip_be, src->udp_port_be);
	struct peer_sess *x;

	if (s < 0 || p->sess[s].st != S_PROOF ||
	    rly_be64_load(&b->request_id) != p->sess[s].request_id)
		return refused(p, src, "welcome nobody asked for");
	x = &p->sess[s];
	if (memcmp(b->target, p->id.pk, RLY_ID_LEN) != 0)
		return refused(p, src, "welcome for another identity");
	if (!all_zero(x->expect, RLY_ID_LEN) && memcmp(x->expect, b->sender, RLY_ID_LEN) != 0)
		return refused(p, src, "welcome from another identity than announced");
	if (hello_verify(b) != 0)
		return refused(p, src, "bad signature");
	memcpy(x->their_token, b->token, RLY_COOKIE_LEN);
	session_up(p, s, b->sender, "welcomed");
}

/* The session a token-carrying datagram belongs to, or -1 (counted, logged). */
static int sess_check(struct rly_ctl_peers *p, const struct rly_endpoint *src,
		      const uint8_t token[RLY_COOKIE_LEN])
{
	int s = sess_find(p, src->ip_be, src->udp_port_be);

	if (s < 0 || p->sess[s].st != S_UP) {
		refused(p, src, "no session");
		return -1;
	}
	if (sodium_memcmp(token, p->sess[s].my_token, RLY_COOKIE_LEN) != 0) {
		refused(p, src, "bad token");
		return -1;
	}
	p->sess[s].last_rx_ms = p->now_ms;
	return s;
}

static void on_peer_hello(struct rly_ctl_peers *p, const struct rly_endpoint *src,
			  const struct rly_wire_peer_hello *b)
{
	int s;

	switch (b->kind) {
	case RLY_PEER_HELLO:
		return on_hello(p, src, b);
	case RLY_PEER_CHALLENGE:
		return on_challenge(p, src, b);
	case RLY_PEER_PROOF:
		return on_proof(p, src, b);
	case RLY_PEER_WELCOME:
		return on_welcome(p, src, b);
	case RLY_PEER_PING:
		if ((s = sess_check(p, src, b->token)) >= 0)
			send_simple(p, s, RLY_PEER_PONG);
		return;
	case RLY_PEER_PONG:
		sess_check(p, src, b->token);
		return;
	case RLY_PEER_BYE:
		if ((s = sess_check(p, src, b->token)) >= 0) {
			sess_log(p, s, RLY_LOG_INFO, "peer_down", "bye");
			sess_free(p, s, p->now_ms);
		}
		return;
	default:
		return refused(p, src, "unknown kind");
	}
}

/* ---- discovery glue ---- */

static int disc_send(void *ctx, uint32_t ip_be, uint16_t port, struct rly_wire_peer_discover *body)
{
	struct rly_ctl_peers *p = ctx;
	uint16_t port_be = htons(port);
	int s = sess_find(p, ip_be, port_be);

	if (s < 0 || p->sess[s].st != S_UP) {
		if (s < 0)
			sess_open(p, ip_be, port_be, NULL, p->now_ms);
		return -ENOTCONN;
	}
	memcpy(body->token, p->sess[s].their_token, RLY_COOKIE_LEN);
	return sess_send(p, s, RLY_MSG_PEER_DISCOVER, body);
}

static int disc_open(struct rly_ctl_peers *p)
{
	struct rly_disc_config dc;
	struct rly_disc_cb cb;

	memset(&dc, 0, sizeof(dc));
	dc.backend = p->cfg.disc_backend;
	dc.id = &p->id;
	dc.ip_be = p->self_ip_be;
	dc.port = ntohs(p->self_port_be);
	dc.ttl_ms = p->cfg.disc_ttl_ms;
	dc.lookup_interval_ms = p->cfg.disc_lookup_ms;
	dc.n_seeds = p->cfg.n_seeds;
	for (unsigned i = 0; i < p->cfg.n_seeds; i++) {
		dc.seeds[i].ip_be = p->cfg.seeds[i].ip_be;
		dc.seeds[i].port = ntohs(p->cfg.seeds[i].port_be);
	}
	dc.dht_bind = p->cfg.dht_bind;
	dc.dht_port = p->cfg.dht_port;
	dc.dht_bootstrap = p->cfg.dht_bootstrap;
	dc.ctr = p->ctr;
	memset(&cb, 0, sizeof(cb));
	cb.ctx = p;
	cb.on_record = ov_on_record;
	cb.send = disc_send;
	return rly_disc_open(&p->disc, &dc, &cb);
}

/* ---- the public side ---- */

int rly_ctl_peers_create(struct rly_ctl_peers **out, const struct rly_ctl_peers_cfg *cfg,
			 const uint8_t secret[RLY_CTL_SECRET_LEN], const struct rly_ctl_peers_io *io)
{
	struct rly_ctl_peers *p;
	int rc;

	*out = NULL;
	/* A configuration not built from RLY_CTL_PEERS_CFG_DEFAULT (zeros) gets the defaults. */
	struct rly_ctl_peers_cfg dflt = RLY_CTL_PEERS_CFG_DEFAULT, c = *cfg;
#define DFLT(f) if (c.f == 0) c.f = dflt.f
	DFLT(degree); DFLT(degree_max); DFLT(ping_ms); DFLT(dead_ms); DFLT(ihave_ms); DFLT(miss_ms);
	DFLT(linger_ms); DFLT(challenge_ttl_ms); DFLT(disc_ttl_ms); DFLT(disc_lookup_ms);
#undef DFLT
	cfg = &c;
	if (cfg->degree == 0 || cfg->degree > cfg->degree_max || cfg->degree_max > RLY_PEER_DEGREE_CAP)
		return rly_err_set(EINVAL, "peer degree %u / max %u: need 1 <= degree <= max <= %u",
				   cfg->degree, cfg->degree_max, RLY_PEER_DEGREE_CAP);
	if (cfg->n_seeds > RLY_PEER_SEEDS_MAX)
		return rly_err_set(EINVAL, "at most %u seeds", RLY_PEER_SEEDS_MAX);
	if (sodium_init() < 0)
		return rly_err_set(EIO, "libsodium failed to initialise");
	p = calloc(1, sizeof(*p));
	if (!p)
		return rly_err_set(ENOMEM, "allocate peering");
	p->cfg = *cfg;
	p->io = *io;
	p->ctr = &p->own_ctr;
	if (cfg->id) {
		p->id = *cfg->id;
		p->enabled = 1;
	}
	p->cfg.id = NULL;
	crypto_generichash(p->cookie_key, sizeof(p->cookie_key), secret, RLY_CTL_SECRET_LEN,
			   (const uint8_t *)"relay-peer-cookie", 17);
	rc = rly_ctl_ratelimit_init(&p->rl, PROOF_RATE_PER_S, PROOF_BURST, 1024);
	if (rc < 0 || (rc = ov_init(p)) < 0) {
		rly_ctl_peers_free(p);
		return rly_err_set(-rc, "allocate peering tables");
	}
	*out = p;
	return 0;
}

void rly_ctl_peers_free(struct rly_ctl_peers *p)
{
	if (!p)
		return;
	if (p->disc)
		rly_disc_close(p->disc);
	ov_free(p);
	rly_ctl_ratelimit_close(&p->rl);
	sodium_memzero(p, sizeof(*p));
	free(p);
}

int rly_ctl_peers_enabled(const struct rly_ctl_peers *p)
{
	return p->enabled;
}

unsigned rly_ctl_peers_sessions_up(const struct rly_ctl_peers *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < SESS_MAX; i++)
		n += p->sess[i].st == S_UP;
	return n;
}

static int start(struct rly_ctl_peers *p, uint64_t now_ms)
{
	int rc;

	p->attached = 1;
	p->now_ms = now_ms;
	if (!p->enabled)
		return 0;
	if (!p->disc && (rc = disc_open(p)) < 0)
		return rc;
	for (unsigned i = 0; i < p->cfg.n_seeds; i++) {
		const struct rly_ctl_peer_addr *a = &p->cfg.seeds[i];
		int s = sess_open(p, a->ip_be, a->port_be, a->has_id ? a->id : NULL, now_ms);
		if (s >= 0)
			p->sess[s].seed = 1;
	}
	return 0;
}

int rly_ctl_peers_attach(struct rly_ctl_peers *p, const struct rly_shm *shm,
			 struct rly_ctr_block *ctr, uint64_t now_ms)
{
	const struct rly_shm_header *h = rly_shm_hdr(shm);

	p->ctr = ctr ? ctr : &p->own_ctr;
	if (p->disc)
		rly_disc_set_counters(p->disc, p->ctr);
	p->self_ip_be = h->relay_ip_be;
	p->self_port_be = htons(h->relay_udp_port);
	p->dedup = h->dedup_chains ? (const uint8_t *)shm->base + h->dedup_off : NULL;
	p->dedup_chains = h->dedup_chains;
	p->dedup_stride = h->dedup_stride;
	p->dedup_window = h->dedup_window;
	p->tsc_hz = h->tsc_hz;
	p->dgram_max = h->dgram_max;
	/* From the header, not rly_shm_hist_base: the peering links without librte_ring. */
	rly_hist_view(&p->hist, h->hist_chains ? (uint8_t *)shm->base + h->hist_off : NULL,
		      h->hist_chains, h->hist_index, h->hist_bytes);
	if (ov_region(p) < 0)
		return rly_err_set(ENOMEM, "peering: tables for %u dedup chains", p->dedup_chains);
	return start(p, now_ms);
}

int rly_ctl_peers_set_self(struct rly_ctl_peers *p, uint32_t ip_be, uint16_t port_be,
			   const void *dedup, uint32_t chains, uint64_t stride, uint64_t tsc_hz,
			   uint64_t now_ms)
{
	p->self_ip_be = ip_be;
	p->self_port_be = port_be;
	p->dedup = dedup;
	p->dedup_chains = chains;
	p->dedup_stride = stride;
	p->dedup_window = stride > sizeof(struct rly_dedup_chain)
				  ? (uint32_t)((stride - sizeof(struct rly_dedup_chain)) / 8u)
				  : 0;
	p->tsc_hz = tsc_hz;
	p->dgram_max = RLY_WIRE_DGRAM_FOR_MTU(1500);
	if (ov_region(p) < 0)
		return -ENOMEM;
	return start(p, now_ms);
}

void rly_ctl_peers_set_history(struct rly_ctl_peers *p, void *slots, uint32_t n, uint32_t index,
			       uint64_t bytes)
{
	rly_hist_view(&p->hist, slots, n, index, bytes);
}

void rly_ctl_peers_shutdown(struct rly_ctl_peers *p)
{
	if (!p || !p->attached)
		return;
	for (unsigned i = 0; i < SESS_MAX; i++)
		if (p->sess[i].st == S_UP)
			send_simple(p, (int)i, RLY_PEER_BYE);
}

void rly_ctl_peers_detach(struct rly_ctl_peers *p)
{
	/* The dataplane's endpoints are gone with it; the sessions are ours and stay. */
	ov_forget_links(p);
	p->attached = 0;
	p->dedup = NULL;
	memset(&p->hist, 0, sizeof(p->hist));
	/* Both counted into the shm, which is about to be unmapped. */
	p->ctr = &p->own_ctr;
	if (p->disc)
		rly_disc_set_counters(p->disc, NULL);
}

/*
 * A key message from another relay's address (key routing between relays): ours when the address
 * is an UP peer session, else a client's (0: the subscription service takes it). A KEY_REQUEST
 * carries our session token, checked and zeroed here; a KEY_RESPONSE has no token, and is only
 * passed on if the key routing sent that request to the peers.
 */
static int on_key_msg(struct rly_ctl_peers *p, const struct rly_pkt_rec *rec,
		      const struct rly_endpoint *src, uint64_t now_ms)
{
	struct rly_wire_view v;
	int s = sess_find(p, src->ip_be, src->udp_port_be);

	if (!p->enabled || s < 0 || p->sess[s].st != S_UP)
		return 0;
	if (rly_wire_parse(rec->data, rec->len, RLY_WIRE_MAX_DGRAM, &v) != RLY_WIRE_ERR_OK) {
		peers_count(p, RLY_CTR_CTL_BAD_RECORD);
		return 1;
	}
	if (v.type == RLY_MSG_KEY_REQUEST) {
		struct rly_wire_key_request r;

		memcpy(&r, v.body, sizeof(r));
		if (sess_check(p, src, r.token) < 0)
			return 1;
		memset(r.token, 0, sizeof(r.token)); /* a key holder never sees a token */
		if (p->io.key_request)
			p->io.key_request(p->io.ctx, &p->sess[s].ep, &r, now_ms);
	} else {
		p->sess[s].last_rx_ms = now_ms;
		if (p->io.key_response)
			p->io.key_response(p->io.ctx, rec, &p->sess[s].ep, (const void *)v.body);
	}
	return 1;
}

unsigned rly_ctl_peers_key_forward(struct rly_ctl_peers *p, const struct rly_wire_key_request *r,
				   const struct rly_endpoint *not)
{
	const struct ov_stream *ov = ov_find(p, r->stream_key, rly_be32_load(&r->partition));
	struct rly_wire_key_request fwd = *r;
	unsigned n = 0;

	if (!p->enabled || !ov)
		return 0;
	for (unsigned i = 0; i < RLY_PEER_DEGREE_CAP; i++) {
		const struct peer_sess *x;

		if (ov->link[i].st != L_EAGER && ov->link[i].st != L_LAZY)
			continue;
		x = &p->sess[ov->link[i].sess];
		if (x->st != S_UP || (not && x->ep.ip_be == not->ip_be &&
				      x->ep.udp_port_be == not->udp_port_be))
			continue;
		memcpy(fwd.token, x->their_token, RLY_COOKIE_LEN);
		if (sess_send(p, ov->link[i].sess, RLY_MSG_KEY_REQUEST, &fwd) == 0)
			n++;
	}
	return n;
}

int rly_ctl_peers_on_packet(struct rly_ctl_peers *p, const struct rly_pkt_rec *rec,
			    uint64_t now_ms)
{
	struct rly_endpoint src;
	struct rly_wire_view v;
	int s;

	p->now_ms = now_ms;
	memset(&src, 0, sizeof(src));
	src.ip_be = rec->ip_be;
	src.udp_port_be = rec->udp_port_be;
	src.port_id = rec->port_id;
	memcpy(src.mac, rec->mac, sizeof(src.mac));

	if (rec->flags & RLY_PKT_F_SLOW)
		return 0; /* a subscriber's business */
	if (rec->flags & RLY_PKT_F_NEIGH) {
		sess_note_neigh(p, rec->ip_be, rec->port_id, rec->mac, now_ms);
		return 1;
	}
	if (rec->flags & (RLY_PKT_F_PUBLISHED | RLY_PKT_F_DUPLICATE)) {
		const struct rly_wire_msg_hdr *h = (const void *)rec->data;

		if (rec->len < sizeof(*h)) {
			peers_count(p, RLY_CTR_CTL_BAD_RECORD);
			return 1;
		}
		s = sess_find(p, rec->ip_be, rec->udp_port_be);
		if (s >= 0 && p->sess[s].st != S_UP)
			s = -1;
		if (rec->flags & RLY_PKT_F_DUPLICATE) {
			if (s >= 0)
				ov_on_duplicate(p, s, h, now_ms);
		} else if (s >= 0) {
			ov_on_peer_data(p, s, h, now_ms);
		} else {
			ov_local(p, h->stream_key, rly_be32_load(&h->partition), now_ms);
		}
		return 1;
	}
	if (rec->len >= sizeof(struct rly_wire_dgram_hdr) &&
	    (rec->data[3] == RLY_MSG_KEY_REQUEST || rec->data[3] == RLY_MSG_KEY_RESPONSE))
		return on_key_msg(p, rec, &src, now_ms);
	if (rec->len < sizeof(struct rly_wire_dgram_hdr) || rec->data[3] < RLY_MSG_PEER_HELLO ||
	    rec->data[3] > RLY_MSG_PEER_DISCOVER)
		return 0;
	if (rly_wire_parse(rec->data, rec->len, RLY_WIRE_MAX_DGRAM, &v) != RLY_WIRE_ERR_OK ||
	    rec->ip_be == 0 || rec->udp_port_be == 0) {
		peers_count(p, RLY_CTR_CTL_BAD_RECORD);
		return 1;
	}
	if (!p->enabled) {
		refused(p, &src, "peering is off (relay-control has no --identity)");
		return 1;
	}
	sess_note_neigh(p, rec->ip_be, rec->port_id, rec->mac, now_ms);
	switch (v.type) {
	case RLY_MSG_PEER_HELLO:
		on_peer_hello(p, &src, (const void *)v.body);
		break;
	case RLY_MSG_PEER_JOIN:
	case RLY_MSG_PEER_PRUNE: {
		const struct rly_wire_peer_link *b = (const void *)v.body;
		if ((s = sess_check(p, &src, b->token)) >= 0)
			ov_on_link_msg(p, s, v.type, b, now_ms);
		break;
	}
	case RLY_MSG_PEER_IHAVE: {
		const struct rly_wire_peer_ihave *b = (const void *)v.body;
		if ((s = sess_check(p, &src, b->token)) >= 0)
			ov_on_ihave(p, s, b, now_ms);
		break;
	}
	case RLY_MSG_PEER_IWANT: {
		const struct rly_wire_peer_iwant *b = (const void *)v.body;
		if ((s = sess_check(p, &src, b->token)) >= 0)
			ov_on_iwant(p, s, b, now_ms);
		break;
	}
	case RLY_MSG_PEER_DISCOVER: {
		const struct rly_wire_peer_discover *b = (const void *)v.body;
		if ((s = sess_check(p, &src, b->token)) >= 0 && p->disc)
			rly_disc_on_message(p->disc, src.ip_be, ntohs(src.udp_port_be), b, now_ms);
		break;
	}
	default:
		break;
	}
	return 1;
}

void rly_ctl_peers_on_subscribed(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
				 uint32_t partition, uint64_t now_ms)
{
	p->now_ms = now_ms;
	if (p->enabled)
		ov_local(p, key, partition, now_ms);
}

void rly_ctl_peers_on_dump_peer(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
				uint32_t partition, const struct rly_endpoint *ep, uint64_t now_ms)
{
	ov_on_dump_peer(p, key, partition, ep, now_ms);
}

static unsigned sess_tick(struct rly_ctl_peers *p, uint64_t now_ms)
{
	unsigned work = 0;

	for (unsigned i = 0; i < SESS_MAX; i++) {
		struct peer_sess *x = &p->sess[i];

		switch (x->st) {
		case S_FREE:
			continue;
		case S_UP:
			if (now_ms - x->last_rx_ms > p->cfg.dead_ms) {
				peers_count(p, RLY_CTR_CTL_PEER_DEAD);
				sess_log(p, (int)i, RLY_LOG_WARN, "peer_dead", "no answer");
				if (x->seed) {
					/* A seed is worth reaching again: start over. */
					ov_on_session_down(p, (int)i, now_ms);
					memset(x->id, 0, RLY_ID_LEN);
					x->initiator = 1;
					x->tries = 0;
					x->request_id = peers_rand64();
					x->st = S_ARP;
					x->next_try_ms = now_ms;
					gauge_sessions(p);
				} else {
					sess_free(p, (int)i, now_ms);
				}
				work++;
			} else if (now_ms - x->last_ping_ms >= p->cfg.ping_ms) {
				x->last_ping_ms = now_ms;
				send_simple(p, (int)i, RLY_PEER_PING);
				work++;
			}
			continue;
		default:
			break;
		}
		if (now_ms < x->next_try_ms)
			continue;
		work++;
		if (!x->seed && x->tries >= TRIES_MAX) {
			sess_log(p, (int)i, RLY_LOG_WARN, "peer_unreachable",
				 x->st == S_ARP ? "no ARP answer" : "no handshake answer");
			sess_free(p, (int)i, now_ms);
			continue;
		}
		if (x->st == S_ARP) {
			struct neigh *n = neigh_find(p, x->ep.ip_be);
			if (n) {
				x->ep.port_id = n->port_id;
				memcpy(x->ep.mac, n->mac, 6);
				send_hello(p, (int)i);
			} else {
				send_arp(p, x->ep.ip_be);
				sess_backoff(x, now_ms);
			}
		} else if (x->st == S_HELLO) {
			send_hello(p, (int)i);
		} else if (x->st == S_PROOF) {
			/* The cookie ages out: past its lifetime, ask for a new one. */
			if (now_ms - x->issued_ms > p->cfg.challenge_ttl_ms / 2)
				send_hello(p, (int)i);
			else
				send_proof(p, (int)i);
		}
	}
	return work;
}

unsigned rly_ctl_peers_tick(struct rly_ctl_peers *p, uint64_t now_ms)
{
	unsigned work = 0;

	p->now_ms = now_ms;
	if (!p->enabled || !p->attached)
		return 0;
	if (now_ms >= p->next_sess_ms) {
		p->next_sess_ms = now_ms + SESS_TICK_MS;
		work += sess_tick(p, now_ms);
	}
	if (p->disc)
		rly_disc_poll(p->disc, now_ms);
	work += ov_tick(p, now_ms);
	return work;
}
