/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for relay-control's peering (control/peer_sessions.c, overlay.c, discovery.c):
 * two or three relays' rly_ctl_peers in one process, as in tests/test_control_peers.c, each with
 * a fake dataplane (the peer endpoints it holds per stream, a dedup region the input fills) and
 * all of them on a fake network (a queue of datagrams that answers ARP for the relays and for an
 * "outsider", the harness itself at 10.0.0.50, which holds an Ed25519 identity of its own and the
 * relays' identities too). Time is the harness's; libsodium's randomness is a PRNG reseeded for
 * every input, so request ids and tokens are the same on every replay.
 *
 * Random bytes would stop at the first cookie, token or signature, so the input is a script of
 * events, each a kind byte and its arguments (missing bytes read as zero):
 *   RUN      1-64 steps of 20 ms: deliver everything in flight, tick every relay
 *   JUMP     the clock leaps (up to minutes) and every relay ticks once, nothing delivered
 *   DELIVER  the next 1-8 datagrams in flight
 *   NET      the network drops, duplicates, delays or reorders what it carries
 *   SERVE    a relay gets (or loses) a local subscriber of one of 2 streams x 3 partitions
 *   FLAGGED  a record from the dataplane: NEIGH, PUBLISHED, DUPLICATE (any flag bits, headers
 *            and lengths, from any of 8 source addresses)
 *   DEDUP    the dataplane accepts a message: a chain of the dedup region moves
 *   HELLO    a PEER_HELLO of any kind from any source, with what the harness knows filled in on
 *            request: the request of the last HELLO the relay sent there, the cookie of the last
 *            CHALLENGE, a PROOF or WELCOME signed (or not) by a known identity, the right token
 *   LINK     PEER_JOIN / PEER_PRUNE of any kind, right or wrong token, the pending JOIN's request
 *   IHAVE, IWANT   with chains of 2 publishers, right or wrong token
 *   DISC     PEER_DISCOVER: ANNOUNCE or RESULT carrying a record signed by a known identity
 *            (fields from the input, bad signature on request), LOOKUP; RESULT for the relay's
 *            last LOOKUP
 *   REPLAY   the last datagram of a chosen type and kind any relay sent, again, maybe from
 *            elsewhere, maybe to another relay
 *   RAW      bytes as a peer datagram (with or without a valid header)
 *   LIFE     a relay crashes (dataplane and all), shuts down (BYE), comes back, its
 *            relay-control restarts over a live dataplane (endpoints dumped back as orphans),
 *            its dataplane detaches and attaches again
 * At most 400 RUN steps (8 s) per input, so that an input costs milliseconds, not a second.
 * Invariants, after every event and every datagram delivered:
 *  - a session is UP only for an (address, identity) from which the relay received a PROOF or
 *    WELCOME whose signature verifies (checked here with libsodium, independently of the code);
 *  - no two sessions have one address; eager and lazy links name an UP session, joining links a
 *    live one;
 *  - a token-carrying datagram whose token is not the one the relay handed to its source (or
 *    that comes from an address without an UP session) changes no link and no UP session;
 *  - every peer endpoint the fake dataplane holds has RLY_EP_F_PEER (checked when added), and a
 *    session with its address exists or existed within dead_ms (or it was dumped by a resync and
 *    its 2 x dead_ms wait has not ended); while attached the dataplane holds exactly the eager
 *    links (and the dumped endpoints still waiting);
 *  - no relay has more links per stream than degree_max, nor the dataplane more peer endpoints;
 *  - a CHALLENGE is never larger than the HELLO that provoked it, and a datagram from an address
 *    without an UP session (and not a PROOF/WELCOME that verifies) gets answers of no more bytes
 *    in all than it had (the relay's own HELLOs, sent when it learns a MAC, are not answers);
 *  - every datagram a relay sends parses and is a PEER_* type; the network queue stays bounded
 *    and a burst of deliveries at one instant ends (no message storm);
 *  - no crash, no leak, no UB (ASan, UBSan).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "control/discovery.h"
#include "control/log.h"
#include "control/peers.h"
#include "control/peers_int.h"
#include "relay/shm.h"
#include "relay/wire.h"
#include "fuzz_input.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_peers: " __VA_ARGS__);                               \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define NR 3		/* relays at most */
#define N_ADDR 8	/* source addresses the input picks from */
#define N_ID 5		/* identities: the 3 relays', the outsider's, one nobody holds */
#define ID_OUT 3
#define MAX_EVENTS 160u
#define QMAX 1024u	/* datagrams in flight */
#define STORM 4096u	/* deliveries at one instant */
#define DGRAM_MAX 512u	/* the largest PEER_* datagram is 440 bytes */
#define CAP_MAX 64u	/* datagrams remembered */
#define DP_MAX 64u
#define VER_MAX 64u
#define SEEN_MAX 64u
#define DD_CHAINS 4u
#define DD_STRIDE RLY_DEDUP_STRIDE(64u)
#define STEP_MS 20u
#define STEPS_MAX 400u	/* RUN steps per input: each ticks every relay (a scan of 1024 overlays) */
/* Overlays take the first free slot, and the input names 2 streams x 2 partitions (the key holders'
 * one is never served): the checks look at the first OV_SCAN slots and, once per input, that the
 * others are free. */
#define OV_SCAN 8u
#define HDR sizeof(struct rly_wire_dgram_hdr)

/* Discovery's store is sized at open (65536 records by default, 12 MB touched per relay per
 * input). The target links with -Wl,--wrap=rly_disc_open and gets 16: fast, and full often. */
int __real_rly_disc_open(struct rly_disc **out, const struct rly_disc_config *cfg,
			 const struct rly_disc_cb *cb);
int __wrap_rly_disc_open(struct rly_disc **out, const struct rly_disc_config *cfg,
			 const struct rly_disc_cb *cb);
int __wrap_rly_disc_open(struct rly_disc **out, const struct rly_disc_config *cfg,
			 const struct rly_disc_cb *cb)
{
	struct rly_disc_config c = *cfg;

	c.store_max = 16;
	return __real_rly_disc_open(out, &c, cb);
}

struct addr {
	uint32_t ip_be;
	uint16_t port_be;
	uint8_t mac[6];
};

struct dp_ep {
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	struct rly_endpoint ep;
	uint8_t dumped; /* put back by a resync: an orphan until a link claims it */
	uint64_t dumped_ms;
};

struct relay {
	int idx;
	struct rly_ctl_peers *p; /* NULL: down */
	int attached;
	struct dp_ep dp[DP_MAX]; /* the fake dataplane's peer endpoints */
	unsigned n_dp;
	unsigned local; /* bit (stream * 3 + partition selector): a local subscriber */
	uint8_t *dedup;
	uint64_t last_tick_ms;
	unsigned incarnation;
};

struct qent {
	int dst;	/* relay index */
	uint16_t flags; /* RLY_PKT_F_NEIGH for an ARP answer */
	uint32_t ip_be; /* source (NEIGH: the resolved address) */
	uint16_t port_be;
	uint8_t mac[6];
	uint16_t len;
	uint8_t data[DGRAM_MAX];
};

struct cap {
	int from; /* relay index */
	uint32_t to_ip;
	uint16_t to_port;
	uint16_t len;
	uint8_t data[DGRAM_MAX];
};

struct verified {
	int r;
	uint32_t ip_be;
	uint16_t port_be;
	uint8_t id[RLY_ID_LEN];
};

struct seen {
	int r;
	uint32_t ip_be;
	uint16_t port_be;
	uint64_t ms;
};

struct forged_hello {
	int dst;
	unsigned src;
	uint64_t request_id;
	unsigned id;
};

static struct {
	int ready;
	int verbose;
	FILE *devnull;
	struct rly_identity ids[N_ID];
	struct addr addrs[N_ADDR];
	uint8_t streams[2][RLY_STREAM_KEY_LEN];
	uint8_t publishers[2][RLY_ID_LEN];
} G;

static struct {
	uint64_t now, start, real_off;
	uint64_t rng;
	int n;
	unsigned steps;
	struct rly_ctl_peers_cfg cfg;
	struct relay R[NR];
	struct qent q[QMAX];
	unsigned q_head, q_len;
	struct cap cap[CAP_MAX];
	unsigned n_cap;
	struct verified ver[VER_MAX];
	unsigned n_ver;
	struct seen seen[SEEN_MAX];
	unsigned n_seen;
	struct forged_hello fh[8];
	unsigned n_fh;
	/* the delivery being handled */
	int in_dst;
	unsigned in_len, in_hello;
	int counting;
	unsigned bytes_out;
	uint64_t delivered, sent, dropped, up_max;
} T;

/* ---- deterministic randomness for libsodium ---- */

static uint64_t rng_next(void)
{
	/* splitmix64 */
	uint64_t z = (T.rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static const char *rng_name(void)
{
	return "fuzz_peers";
}

static uint32_t rng_random(void)
{
	return (uint32_t)rng_next();
}

static void rng_stir(void)
{
}

static void rng_buf(void *const buf, const size_t size)
{
	uint8_t *b = buf;

	for (size_t i = 0; i < size; i += 8) {
		uint64_t v = rng_next();
		memcpy(b + i, &v, size - i < 8 ? size - i : 8);
	}
}

static struct randombytes_implementation rng_impl = {
	.implementation_name = rng_name,
	.random = rng_random,
	.stir = rng_stir,
	.uniform = NULL,
	.buf = rng_buf,
	.close = NULL,
};

/* ---- addresses ---- */

static int relay_at(uint32_t ip_be, uint16_t port_be)
{
	for (int i = 0; i < T.n; i++)
		if (G.addrs[i].ip_be == ip_be && G.addrs[i].port_be == port_be)
			return i;
	return -1;
}

static const struct addr *addr_of_ip(uint32_t ip_be)
{
	for (unsigned i = 0; i < N_ADDR; i++)
		if (G.addrs[i].ip_be == ip_be && ip_be != 0)
			return &G.addrs[i];
	return NULL;
}

/* The identity that "lives" at address @p a (the outsider's for anything not a relay). */
static unsigned id_at(unsigned a)
{
	return a < NR ? a : ID_OUT;
}

static uint32_t partition_of(uint8_t sel)
{
	static const uint32_t parts[] = {0, 1, RLY_KEY_HOLDER_PARTITION};

	return parts[sel % 3];
}

static uint64_t real_ms(void)
{
	return T.now + T.real_off;
}

/* ---- what the harness learnt ---- */

static void verified_add(int r, uint32_t ip_be, uint16_t port_be, const uint8_t *id)
{
	for (unsigned i = 0; i < T.n_ver; i++)
		if (T.ver[i].r == r && T.ver[i].ip_be == ip_be && T.ver[i].port_be == port_be &&
		    !memcmp(T.ver[i].id, id, RLY_ID_LEN))
			return;
	CHECK(T.n_ver < VER_MAX, "harness: too many verified identities");
	T.ver[T.n_ver].r = r;
	T.ver[T.n_ver].ip_be = ip_be;
	T.ver[T.n_ver].port_be = port_be;
	memcpy(T.ver[T.n_ver].id, id, RLY_ID_LEN);
	T.n_ver++;
}

static int verified_has(int r, uint32_t ip_be, uint16_t port_be, const uint8_t *id)
{
	for (unsigned i = 0; i < T.n_ver; i++)
		if (T.ver[i].r == r && T.ver[i].ip_be == ip_be && T.ver[i].port_be == port_be &&
		    !memcmp(T.ver[i].id, id, RLY_ID_LEN))
			return 1;
	return 0;
}

static struct seen *seen_of(int r, uint32_t ip_be, uint16_t port_be, int make)
{
	for (unsigned i = 0; i < T.n_seen; i++)
		if (T.seen[i].r == r && T.seen[i].ip_be == ip_be && T.seen[i].port_be == port_be)
			return &T.seen[i];
	if (!make)
		return NULL;
	CHECK(T.n_seen < SEEN_MAX, "harness: too many session addresses");
	T.seen[T.n_seen].r = r;
	T.seen[T.n_seen].ip_be = ip_be;
	T.seen[T.n_seen].port_be = port_be;
	return &T.seen[T.n_seen++];
}

/* Independent of peer_sessions.c: does this PEER_HELLO body carry a good signature? */
static int hello_sig_ok(const struct rly_wire_peer_hello *b)
{
	uint8_t m[sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1 + 128];

	memcpy(m, RLY_PEER_HELLO_SIG_CONTEXT, sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1);
	memcpy(m + sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1, b, 128);
	return crypto_sign_verify_detached(b->sig, m, sizeof(m), b->sender) == 0;
}

static void hello_sign(struct rly_wire_peer_hello *b, const struct rly_identity *id)
{
	uint8_t m[sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1 + 128];

	memcpy(m, RLY_PEER_HELLO_SIG_CONTEXT, sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1);
	memcpy(m + sizeof(RLY_PEER_HELLO_SIG_CONTEXT) - 1, b, 128);
	crypto_sign_detached(b->sig, NULL, m, sizeof(m), id->sk);
}

/* The last datagram relay @p from sent to @p to of @p type (and PEER_HELLO / DISCOVER @p kind). */
static const struct cap *cap_last(int from, const struct addr *to, unsigned type, int kind)
{
	unsigned n = T.n_cap < CAP_MAX ? T.n_cap : CAP_MAX;

	for (unsigned k = 1; k <= n; k++) {
		const struct cap *c = &T.cap[(T.n_cap - k) % CAP_MAX];

		if ((from >= 0 && c->from != from) || c->data[3] != type ||
		    (to && (c->to_ip != to->ip_be || c->to_port != to->port_be)))
			continue;
		if (kind >= 0 && c->data[HDR] != kind)
			continue;
		return c;
	}
	return NULL;
}

/* ---- the fake network ---- */

static void enqueue(const struct qent *e)
{
	CHECK(T.q_len < QMAX, "network queue overflow (%u datagrams in flight)", T.q_len);
	T.q[(T.q_head + T.q_len) % QMAX] = *e;
	T.q_len++;
}

static int net_send(void *ctx, struct rly_pkt_rec *rec)
{
	struct relay *from = ctx;
	struct rly_wire_view v;
	enum rly_wire_err e;
	const struct addr *a;
	struct qent q;
	int to;

	CHECK(from->p != NULL, "a relay that is down sent");
	if (rec->flags & RLY_PKT_F_ARP_RESOLVE) {
		/* The answer comes back to the asker as a neighbour record, if anyone has it. */
		a = addr_of_ip(rec->ip_be);
		if (!a)
			return 0;
		to = relay_at(a->ip_be, a->port_be);
		if (to >= 0 && !T.R[to].p)
			return 0;
		memset(&q, 0, offsetof(struct qent, data));
		q.dst = from->idx;
		q.flags = RLY_PKT_F_NEIGH;
		q.ip_be = a->ip_be;
		memcpy(q.mac, a->mac, 6);
		enqueue(&q);
		return 0;
	}
	CHECK(rec->flags == 0, "tx record with flags 0x%x", rec->flags);
	CHECK(rec->len <= DGRAM_MAX, "a %u-byte peer datagram", rec->len);
	e = rly_wire_parse(rec->data, rec->len, RLY_WIRE_MAX_DGRAM, &v);
	CHECK(e == RLY_WIRE_ERR_OK, "relay %d sent a datagram (type 0x%02x) the parser refuses: %s",
	      from->idx, rec->len >= 4 ? rec->data[3] : 0, rly_wire_err_name(e));
	CHECK(v.type >= RLY_MSG_PEER_HELLO && v.type <= RLY_MSG_PEER_DISCOVER,
	      "relay %d sent a %s to a peer", from->idx, rly_msg_type_name(v.type));
	CHECK(rec->ip_be != 0 && rec->udp_port_be != 0, "sent to no address");
	T.sent++;
	/* Remember it: cookies, requests and tokens come from here. */
	{
		struct cap *c = &T.cap[T.n_cap++ % CAP_MAX];
		c->from = from->idx;
		c->to_ip = rec->ip_be;
		c->to_port = rec->udp_port_be;
		c->len = rec->len;
		memcpy(c->data, rec->data, rec->len);
	}
	if (T.in_dst >= 0 && from->idx == T.in_dst) {
		unsigned kind = rec->data[HDR];
		if (v.type == RLY_MSG_PEER_HELLO && kind == RLY_PEER_CHALLENGE)
			CHECK(T.in_hello && rec->len <= T.in_len,
			      "a %u-byte CHALLENGE answers a %u-byte datagram (HELLO: %u)", rec->len,
			      T.in_len, T.in_hello);
		/* The relay's own HELLO (it just learnt the MAC of a peer it wants) is no answer. */
		if (!(v.type == RLY_MSG_PEER_HELLO && kind == RLY_PEER_HELLO))
			T.bytes_out += rec->len;
	}
	a = addr_of_ip(rec->ip_be);
	/* Sent to the MAC the sender resolved: a wrong one (a forged NEIGH) is lost. */
	if (!a || memcmp(rec->mac, a->mac, 6) != 0)
		return 0;
	to = relay_at(rec->ip_be, rec->udp_port_be);
	if (to < 0)
		return 0; /* the outsider: the harness reads it from the capture */
	memset(&q, 0, offsetof(struct qent, data));
	q.dst = to;
	q.ip_be = G.addrs[from->idx].ip_be;
	q.port_be = G.addrs[from->idx].port_be;
	memcpy(q.mac, G.addrs[from->idx].mac, 6);
	q.len = rec->len;
	memcpy(q.data, rec->data, rec->len);
	enqueue(&q);
	return 0;
}

/* ---- the fake dataplane ---- */

static struct dp_ep *dp_find(struct relay *r, const uint8_t *key, uint32_t partition,
			     uint32_t ip_be, uint16_t port_be)
{
	for (unsigned i = 0; i < r->n_dp; i++)
		if (r->dp[i].partition == partition && !memcmp(r->dp[i].key, key, 16) &&
		    r->dp[i].ep.ip_be == ip_be && r->dp[i].ep.udp_port_be == port_be)
			return &r->dp[i];
	return NULL;
}

static int dp_link(void *ctx, int add, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
		   const struct rly_endpoint *ep)
{
	struct relay *r = ctx;
	struct dp_ep *l = dp_find(r, key, partition, ep->ip_be, ep->udp_port_be);

	CHECK(ep->flags & RLY_EP_F_PEER, "relay %d: a peer endpoint without RLY_EP_F_PEER", r->idx);
	CHECK(r->attached, "relay %d changed the dataplane's endpoints while detached", r->idx);
	if (add) {
		if (!l) {
			CHECK(r->n_dp < DP_MAX, "relay %d: %u peer endpoints", r->idx, r->n_dp);
			l = &r->dp[r->n_dp++];
			memset(l, 0, sizeof(*l));
			memcpy(l->key, key, 16);
			l->partition = partition;
		}
		l->ep = *ep;
		l->dumped = 0;
	} else if (l) {
		*l = r->dp[--r->n_dp];
	}
	return 0;
}

static void dp_foreach_local(void *ctx, void (*cb)(void *, const uint8_t *, uint32_t), void *arg)
{
	struct relay *r = ctx;

	for (unsigned b = 0; b < 6; b++)
		if (r->local & (1u << b))
			cb(arg, G.streams[b / 3], partition_of((uint8_t)(b % 3)));
}

/* ---- relays ---- */

static void relay_start(int i)
{
	struct relay *r = &T.R[i];
	struct rly_ctl_peers_io io = {.ctx = r, .send = net_send, .link = dp_link,
				      .foreach_local = dp_foreach_local};
	struct rly_ctl_peers_cfg c = T.cfg;
	uint8_t secret[RLY_CTL_SECRET_LEN];

	c.id = &G.ids[i];
	c.n_seeds = 0;
	if (i > 0) {
		c.seeds[c.n_seeds].ip_be = G.addrs[0].ip_be;
		c.seeds[c.n_seeds++].port_be = G.addrs[0].port_be;
	}
	if (T.cfg.n_seeds && i == 0) {
		/* Mutual seeds: relays 0 and 1 open to each other at once. */
		c.seeds[c.n_seeds].ip_be = G.addrs[1].ip_be;
		c.seeds[c.n_seeds++].port_be = G.addrs[1].port_be;
	}
	memset(secret, 0x50 + i, sizeof(secret));
	secret[0] = (uint8_t)r->incarnation++;
	CHECK(rly_ctl_peers_create(&r->p, &c, secret, &io) == 0, "rly_ctl_peers_create");
	r->attached = 1;
	CHECK(rly_ctl_peers_set_self(r->p, G.addrs[i].ip_be, G.addrs[i].port_be, r->dedup,
				     DD_CHAINS, DD_STRIDE, 1000000000ull, T.now) == 0,
	      "rly_ctl_peers_set_self");
}

static void relay_stop(int i)
{
	rly_ctl_peers_free(T.R[i].p);
	T.R[i].p = NULL;
	T.R[i].attached = 0;
}

static int live(int i)
{
	return T.R[i].p && T.R[i].attached;
}

static void tick_all(void)
{
	for (int i = 0; i < T.n; i++)
		if (live(i)) {
			rly_ctl_peers_tick(T.R[i].p, T.now);
			T.R[i].last_tick_ms = T.now;
		}
}

/* ---- invariants ---- */

static unsigned link_count(const struct ov_stream *ov)
{
	unsigned n = 0;

	for (unsigned k = 0; k < RLY_PEER_DEGREE_CAP; k++)
		n += ov->link[k].st != L_NONE;
	return n;
}

static void check_relay(int r)
{
	struct relay *R = &T.R[r];
	const struct rly_ctl_peers *p = R->p;
	unsigned up = 0;

	for (unsigned s = 0; s < SESS_MAX; s++) {
		const struct peer_sess *x = &p->sess[s];

		if (x->st == S_FREE)
			continue;
		for (unsigned t = s + 1; t < SESS_MAX; t++)
			CHECK(p->sess[t].st == S_FREE || p->sess[t].ep.ip_be != x->ep.ip_be ||
				      p->sess[t].ep.udp_port_be != x->ep.udp_port_be,
			      "relay %d: two sessions (%u, %u) with one address", r, s, t);
		seen_of(r, x->ep.ip_be, x->ep.udp_port_be, 1)->ms = T.now;
		if (x->st != S_UP)
			continue;
		up++;
		CHECK(verified_has(r, x->ep.ip_be, x->ep.udp_port_be, x->id),
		      "relay %d: session %u with %08x:%u is UP for an identity no verified PROOF or "
		      "WELCOME from there named",
		      r, s, ntohl(x->ep.ip_be), ntohs(x->ep.udp_port_be));
	}
	if (up > T.up_max)
		T.up_max = up;
	for (unsigned o = 0; o < OV_SCAN; o++) {
		const struct ov_stream *ov = &p->ov[o];
		unsigned eager = 0;

		if (!ov->used)
			continue;
		CHECK(link_count(ov) <= T.cfg.degree_max, "relay %d: %u links on one stream, max %u",
		      r, link_count(ov), T.cfg.degree_max);
		for (unsigned k = 0; k < RLY_PEER_DEGREE_CAP; k++) {
			const struct ov_link *l = &ov->link[k];
			const struct peer_sess *x;

			if (l->st == L_NONE)
				continue;
			CHECK(l->sess >= 0 && l->sess < (int)SESS_MAX, "relay %d: link to session %d",
			      r, l->sess);
			x = &p->sess[l->sess];
			if (l->st == L_JOINING) {
				CHECK(x->st != S_FREE, "relay %d: a joining link on a freed session", r);
				continue;
			}
			CHECK(x->st == S_UP, "relay %d: an %s link on a session in state %u", r,
			      l->st == L_EAGER ? "eager" : "lazy", x->st);
			if (l->st != L_EAGER)
				continue;
			eager++;
			if (R->attached)
				CHECK(dp_find(R, ov->key, ov->partition, x->ep.ip_be,
					      x->ep.udp_port_be),
				      "relay %d: an eager link the dataplane does not hold", r);
		}
		(void)eager;
	}
	for (unsigned i = 0; i < R->n_dp; i++) {
		const struct dp_ep *d = &R->dp[i];
		const struct ov_stream *ov = ov_find(p, d->key, d->partition);
		int s = sess_find(p, d->ep.ip_be, d->ep.udp_port_be);
		const struct seen *sn = seen_of(r, d->ep.ip_be, d->ep.udp_port_be, 0);
		unsigned n = 0;
		int eager = 0;

		if (d->dumped) {
			/* An orphan: removed at the first tick past its wait, unless claimed. */
			CHECK(R->last_tick_ms < d->dumped_ms + 2ull * T.cfg.dead_ms,
			      "relay %d: a dumped peer endpoint outlived its wait", r);
			continue;
		}
		CHECK(s >= 0 || (sn && T.now - sn->ms <= T.cfg.dead_ms),
		      "relay %d: the dataplane holds %08x:%u, no session with it for %llu ms", r,
		      ntohl(d->ep.ip_be), ntohs(d->ep.udp_port_be),
		      sn ? (unsigned long long)(T.now - sn->ms) : ~0ull);
		if (ov && s >= 0)
			for (unsigned k = 0; k < RLY_PEER_DEGREE_CAP; k++)
				eager |= ov->link[k].st == L_EAGER && ov->link[k].sess == s;
		CHECK(eager, "relay %d: the dataplane holds a peer endpoint that is no eager link", r);
		for (unsigned j = 0; j < R->n_dp; j++)
			n += !R->dp[j].dumped && R->dp[j].partition == d->partition &&
			     !memcmp(R->dp[j].key, d->key, 16);
		CHECK(n <= T.cfg.degree_max, "relay %d: the dataplane holds %u peers of a stream", r,
		      n);
	}
}

static void check_all(void)
{
	CHECK(T.q_len <= QMAX, "queue");
	for (int r = 0; r < T.n; r++)
		if (T.R[r].p)
			check_relay(r);
}

/* What a token-carrying datagram must not change: its links and UP sessions. */
struct snap {
	uint8_t up[SESS_MAX];
	uint8_t link_st[OV_SCAN][RLY_PEER_DEGREE_CAP];
	int16_t link_sess[OV_SCAN][RLY_PEER_DEGREE_CAP];
};
static struct snap snap_before, snap_after;

static void snap_take(const struct rly_ctl_peers *p, struct snap *s)
{
	for (unsigned i = 0; i < SESS_MAX; i++)
		s->up[i] = p->sess[i].st == S_UP;
	for (unsigned o = 0; o < OV_SCAN; o++)
		for (unsigned k = 0; k < RLY_PEER_DEGREE_CAP; k++) {
			s->link_st[o][k] = p->ov[o].used ? p->ov[o].link[k].st : 0;
			s->link_sess[o][k] = p->ov[o].used ? p->ov[o].link[k].sess : 0;
		}
}

/* Where the receiver's token is in a datagram of this type and kind, or -1. */
static int token_off(const uint8_t *d, unsigned len)
{
	if (len < HDR + 1)
		return -1;
	switch (d[3]) {
	case RLY_MSG_PEER_HELLO:
		if (d[HDR] == RLY_PEER_PING || d[HDR] == RLY_PEER_PONG || d[HDR] == RLY_PEER_BYE)
			return (int)(HDR + offsetof(struct rly_wire_peer_hello, token));
		return -1;
	case RLY_MSG_PEER_JOIN:
	case RLY_MSG_PEER_PRUNE:
		return (int)(HDR + offsetof(struct rly_wire_peer_link, token));
	case RLY_MSG_PEER_IHAVE:
		return (int)(HDR + offsetof(struct rly_wire_peer_ihave, token));
	case RLY_MSG_PEER_IWANT:
		return (int)(HDR + offsetof(struct rly_wire_peer_iwant, token));
	case RLY_MSG_PEER_DISCOVER:
		return (int)(HDR + offsetof(struct rly_wire_peer_discover, token));
	default:
		return -1;
	}
}

/* Hand one record to relay @p dst and check what it did. */
static void deliver(int dst, struct rly_pkt_rec *rec)
{
	struct relay *R = &T.R[dst];
	struct rly_ctl_peers *p = R->p;
	int s, authed, proved = 0, wrong_token = 0, tok, datagram;

	if (!live(dst)) {
		T.dropped++;
		return;
	}
	T.delivered++;
	datagram = rec->flags == 0 && rec->len >= HDR && rec->data[3] >= RLY_MSG_PEER_HELLO &&
		   rec->data[3] <= RLY_MSG_PEER_DISCOVER &&
		   rly_wire_parse(rec->data, rec->len, RLY_WIRE_MAX_DGRAM,
				  &(struct rly_wire_view){0}) == RLY_WIRE_ERR_OK &&
		   rec->ip_be != 0 && rec->udp_port_be != 0;
	s = sess_find(p, rec->ip_be, rec->udp_port_be);
	authed = s >= 0 && p->sess[s].st == S_UP;
	if (datagram && rec->data[3] == RLY_MSG_PEER_HELLO &&
	    (rec->data[HDR] == RLY_PEER_PROOF || rec->data[HDR] == RLY_PEER_WELCOME)) {
		const struct rly_wire_peer_hello *b = (const void *)(rec->data + HDR);
		if (hello_sig_ok(b)) {
			verified_add(dst, rec->ip_be, rec->udp_port_be, b->sender);
			proved = 1;
		}
	}
	tok = datagram ? token_off(rec->data, rec->len) : -1;
	if (tok >= 0 && (!authed || memcmp(rec->data + tok, p->sess[s].my_token, RLY_COOKIE_LEN))) {
		wrong_token = 1;
		snap_take(p, &snap_before);
	}
	T.in_dst = dst;
	T.in_len = rec->len;
	T.in_hello = datagram && rec->data[3] == RLY_MSG_PEER_HELLO && rec->data[HDR] == RLY_PEER_HELLO;
	T.counting = datagram && !authed && !proved;
	T.bytes_out = 0;
	rly_ctl_peers_on_packet(p, rec, T.now);
	T.in_dst = -1;
	if (T.counting)
		CHECK(T.bytes_out <= rec->len,
		      "relay %d answered a %u-byte %02x/%u from an address without a session with %u "
		      "bytes",
		      dst, rec->len, rec->data[3], rec->data[HDR], T.bytes_out);
	if (wrong_token) {
		snap_take(p, &snap_after);
		CHECK(memcmp(&snap_before, &snap_after, sizeof(snap_before)) == 0,
		      "relay %d: a %02x/%u with a wrong token (or no session) changed a link or a "
		      "session",
		      dst, rec->data[3], rec->data[HDR]);
	}
	check_all();
}

static void rec_from(struct rly_pkt_rec *rec, unsigned src)
{
	const struct addr *a = &G.addrs[src % N_ADDR];

	memset(rec, 0, offsetof(struct rly_pkt_rec, data));
	rec->ip_be = a->ip_be;
	rec->udp_port_be = a->port_be;
	memcpy(rec->mac, a->mac, 6);
}

static void deliver_body(int dst, unsigned src, unsigned type, const void *body, uint8_t f)
{
	static struct rly_pkt_rec rec;
	int len;

	rec_from(&rec, src);
	len = rly_wire_build_control(rec.data, sizeof(rec.data), type, body);
	if (len < 0)
		return;
	rec.len = (uint16_t)len;
	/* Now and then a reserved byte set, or a short or padded datagram. */
	if (f & 0x80) {
		if (len > (int)HDR + 2)
			rec.data[len - 1 - (f & 7)] ^= 0x01;
	}
	deliver(dst, &rec);
}

/* Deliver what is in flight: at most @p max (0: all), with a storm guard. */
static void flush(unsigned max)
{
	static struct rly_pkt_rec rec;
	unsigned n = 0;

	while (T.q_len && (max == 0 || n < max)) {
		struct qent *e = &T.q[T.q_head];

		T.q_head = (T.q_head + 1) % QMAX;
		T.q_len--;
		CHECK(n++ < STORM, "message storm: %u deliveries at %llu ms", n,
		      (unsigned long long)T.now);
		memset(&rec, 0, offsetof(struct rly_pkt_rec, data));
		rec.flags = e->flags;
		rec.ip_be = e->ip_be;
		rec.udp_port_be = e->port_be;
		memcpy(rec.mac, e->mac, 6);
		rec.len = e->len;
		memcpy(rec.data, e->data, e->len);
		deliver(e->dst, &rec);
	}
}

/* ---- events ---- */

enum kind {
	K_RUN,
	K_JUMP,
	K_DELIVER,
	K_NET,
	K_SERVE,
	K_FLAGGED,
	K_DEDUP,
	K_HELLO,
	K_LINK,
	K_IHAVE,
	K_IWANT,
	K_DISC,
	K_REPLAY,
	K_RAW,
	K_LIFE,
	K_MAX
};

static int pick_relay(uint8_t b)
{
	return b % T.n;
}

static void ev_run(void)
{
	unsigned steps = 1 + u8() % 64;

	for (unsigned i = 0; i < steps && T.steps < STEPS_MAX; i++, T.steps++) {
		flush(0);
		tick_all();
		check_all();
		T.now += STEP_MS;
	}
}

static void ev_jump(void)
{
	uint8_t sel = u8();
	uint64_t d = u16();

	T.now += (sel & 1) ? d * 8 : d / 16;
	tick_all();
	check_all();
}

static void ev_net(void)
{
	uint8_t op = u8(), arg = u8();
	struct qent t;

	if (T.q_len == 0)
		return;
	switch (op % 5) {
	case 0: /* lost */
		T.q_head = (T.q_head + 1) % QMAX;
		T.q_len--;
		break;
	case 1: /* duplicated */
		if (T.q_len < QMAX)
			enqueue(&T.q[T.q_head]);
		break;
	case 2: /* delayed behind everything else */
		t = T.q[T.q_head];
		T.q_head = (T.q_head + 1) % QMAX;
		T.q_len--;
		enqueue(&t);
		break;
	case 3: { /* swapped with a later one */
		unsigned j = (T.q_head + arg % T.q_len) % QMAX;
		t = T.q[T.q_head];
		T.q[T.q_head] = T.q[j];
		T.q[j] = t;
		break;
	}
	case 4: /* everything to one relay lost (a partition) */
		for (unsigned k = 0, n = T.q_len; k < n; k++) {
			t = T.q[T.q_head];
			T.q_head = (T.q_head + 1) % QMAX;
			T.q_len--;
			if (t.dst != pick_relay(arg))
				enqueue(&t);
		}
		break;
	}
}

static void ev_serve(void)
{
	int r = pick_relay(u8());
	uint8_t sel = u8();
	unsigned bit = ((sel >> 1) & 1) * 3 + (sel >> 2) % 3;

	if (!T.R[r].p)
		return;
	if (sel & 1) {
		T.R[r].local &= ~(1u << bit);
		return;
	}
	T.R[r].local |= 1u << bit;
	if (live(r))
		rly_ctl_peers_on_subscribed(T.R[r].p, G.streams[bit / 3],
					    partition_of((uint8_t)(bit % 3)), T.now);
	check_all();
}

static void msg_hdr(struct rly_wire_msg_hdr *h, uint8_t st, uint8_t pub, uint8_t chain,
		    uint64_t seq)
{
	memcpy(h->stream_key, G.streams[st & 1], RLY_STREAM_KEY_LEN);
	rly_be32_store(&h->partition, partition_of(st >> 1));
	rly_be32_store(&h->chain, chain);
	memcpy(h->publisher, G.publishers[pub & 1], RLY_ID_LEN);
	rly_be64_store(&h->seq, seq);
}

static void ev_flagged(void)
{
	static struct rly_pkt_rec rec;
	int r = pick_relay(u8());
	uint8_t fl = u8(), src = u8(), st = u8(), pub = u8(), chain = u8(), seq = u8(),
		lm = u8();

	rec_from(&rec, src);
	rec.flags = (uint16_t)(fl & 7);
	if (fl & 8)
		rec.flags |= (uint16_t)(fl & 0xf0) << 4; /* bits nobody defined */
	rec.worker = fl >> 6;
	if (rec.flags & RLY_PKT_F_NEIGH) {
		rec.port_id = lm & 1;
		if (lm & 2)
			memset(rec.mac, 0, 6);
		else if (lm & 4)
			rec.mac[5] ^= lm;
		rec.len = 0;
	} else {
		msg_hdr((void *)rec.data, st, pub, chain, seq);
		rec.len = (lm & 8) ? (uint16_t)(lm % sizeof(struct rly_wire_msg_hdr))
				   : (uint16_t)sizeof(struct rly_wire_msg_hdr) + (lm >> 4);
	}
	deliver(r, &rec);
}

static void ev_dedup(void)
{
	int r = pick_relay(u8());
	uint8_t slot = u8(), st = u8(), pub = u8(), chain = u8(), fs = u8();
	uint16_t highest = u16();
	struct rly_dedup_chain *c = (void *)(T.R[r].dedup + (slot % DD_CHAINS) * DD_STRIDE);

	if (slot & 0x80) {
		c->tag = slot & 0x40 ? RLY_DEDUP_TAG_RECLAIMING : 0;
		return;
	}
	memcpy(c->stream_key, G.streams[st & 1], RLY_STREAM_KEY_LEN);
	c->partition = partition_of(st >> 1);
	memcpy(c->publisher, G.publishers[pub & 1], RLY_ID_LEN);
	c->chain = chain & 3;
	c->tag = 0x1000 + (slot % DD_CHAINS);
	if (highest > c->highest || (slot & 0x20))
		c->highest = highest;
	c->last_tsc = __builtin_ia32_rdtsc();
	c->first_src = (fs & 8) ? ((uint64_t)G.addrs[fs % N_ADDR].ip_be << 16 |
				   G.addrs[fs % N_ADDR].port_be)
				: 0;
}

/* The token relay @p dst handed to the source @p src (right), or a wrong one. */
static void token_for(int dst, unsigned src, int right, uint8_t out[RLY_COOKIE_LEN])
{
	const struct rly_ctl_peers *p = T.R[dst].p;
	int s = sess_find(p, G.addrs[src % N_ADDR].ip_be, G.addrs[src % N_ADDR].port_be);

	if (s >= 0)
		memcpy(out, p->sess[s].my_token, RLY_COOKIE_LEN);
	else
		memset(out, 0x77, RLY_COOKIE_LEN);
	if (!right)
		out[u8() % RLY_COOKIE_LEN] ^= 1 + u8() % 255;
}

static void ev_hello(void)
{
	int dst = pick_relay(u8());
	unsigned src = u8() % N_ADDR, kind = u8() % 8, id = id_at(src);
	uint8_t f = u8();
	const struct addr *a = &G.addrs[src];
	struct rly_wire_peer_hello b;
	const struct cap *c;
	uint64_t req = 1 + u8();

	if (!live(dst))
		return;
	memset(&b, 0, sizeof(b));
	b.kind = (uint8_t)kind;
	switch (kind) {
	case RLY_PEER_HELLO:
		id = (f & 7) % N_ID;
		memcpy(b.sender, G.ids[id].pk, RLY_ID_LEN);
		if (f & 8)
			memcpy(b.target, G.ids[(f >> 4) % N_ID].pk, RLY_ID_LEN);
		rly_be64_store(&b.request_id, req);
		T.fh[T.n_fh++ % 8] = (struct forged_hello){dst, src, req, id};
		break;
	case RLY_PEER_CHALLENGE:
		/* To the relay's own HELLO (to this address), or made up. */
		if ((f & 1) && (c = cap_last(dst, a, RLY_MSG_PEER_HELLO, RLY_PEER_HELLO)))
			memcpy(&b.request_id, c->data + HDR + offsetof(struct rly_wire_peer_hello,
								 request_id), 8);
		else
			rly_be64_store(&b.request_id, req);
		rly_be64_store(&b.issued_ms, T.now - (f & 2 ? u8() : 0));
		take(b.cookie, 2);
		b.cookie[15] = 1;
		break;
	case RLY_PEER_PROOF:
		/* The answer to the last CHALLENGE the relay sent to this address: its request,
		 * time and cookie, signed by the identity that HELLO named (or another). */
		if ((f & 1) && (c = cap_last(dst, a, RLY_MSG_PEER_HELLO, RLY_PEER_CHALLENGE))) {
			const struct rly_wire_peer_hello *ch = (const void *)(c->data + HDR);
			b.request_id = ch->request_id;
			b.issued_ms = ch->issued_ms;
			memcpy(b.cookie, ch->cookie, RLY_COOKIE_LEN);
			for (unsigned k = 0; k < 8 && k < T.n_fh; k++) {
				const struct forged_hello *h = &T.fh[(T.n_fh - 1 - k) % 8];
				if (h->dst == dst && h->src == src &&
				    h->request_id == rly_be64_load(&ch->request_id)) {
					id = h->id;
					break;
				}
			}
		} else {
			rly_be64_store(&b.request_id, req);
			rly_be64_store(&b.issued_ms, T.now);
			take(b.cookie, 2);
		}
		if (f & 2)
			id = u8() % N_ID;
		if (f & 0x40)
			rly_be64_store(&b.issued_ms, rly_be64_load(&b.issued_ms) - u16());
		memset(b.token, 0x10 + (f >> 5), RLY_COOKIE_LEN);
		b.token[0] = u8();
		memcpy(b.sender, G.ids[id].pk, RLY_ID_LEN);
		if (f & 4)
			memcpy(b.target, G.ids[(f >> 3) % N_ID].pk, RLY_ID_LEN);
		hello_sign(&b, &G.ids[id]);
		if (f & 0x10)
			b.sig[u8() % RLY_WIRE_SIG_LEN] ^= 0x20;
		break;
	case RLY_PEER_WELCOME:
		/* The answer to the last PROOF the relay sent to this address. */
		if ((f & 1) && (c = cap_last(dst, a, RLY_MSG_PEER_HELLO, RLY_PEER_PROOF)))
			memcpy(&b.request_id, c->data + HDR + offsetof(struct rly_wire_peer_hello,
								 request_id), 8);
		else
			rly_be64_store(&b.request_id, req);
		if (f & 2)
			id = u8() % N_ID;
		memset(b.token, 0x20 + (f >> 5), RLY_COOKIE_LEN);
		b.token[0] = u8();
		memcpy(b.sender, G.ids[id].pk, RLY_ID_LEN);
		memcpy(b.target, G.ids[(f & 4) ? (f >> 3) % N_ID : (unsigned)dst].pk, RLY_ID_LEN);
		hello_sign(&b, &G.ids[id]);
		if (f & 0x10)
			b.sig[u8() % RLY_WIRE_SIG_LEN] ^= 0x20;
		break;
	case RLY_PEER_PING:
	case RLY_PEER_PONG:
	case RLY_PEER_BYE:
		rly_be64_store(&b.request_id, req);
		token_for(dst, src, !(f & 1), b.token);
		break;
	default: /* 0: no such kind */
		rly_be64_store(&b.request_id, req);
		break;
	}
	deliver_body(dst, src, RLY_MSG_PEER_HELLO, &b, f & 0x80 ? u8() | 0x80 : 0);
}

static void ev_link(void)
{
	int dst = pick_relay(u8());
	unsigned src = u8() % N_ADDR;
	uint8_t sel = u8(), f = u8(), st = u8();
	struct rly_wire_peer_link b;
	unsigned type = (sel & 1) ? RLY_MSG_PEER_PRUNE : RLY_MSG_PEER_JOIN;

	if (!live(dst))
		return;
	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, G.streams[st & 1], RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.partition, partition_of(st >> 1));
	b.kind = (uint8_t)((sel >> 1) % 7);
	b.reason = (uint8_t)((sel >> 4) % 7);
	rly_be64_store(&b.request_id, 1 + u8());
	if (f & 2) {
		/* The request of the relay's pending JOIN to this source, if any. */
		const struct rly_ctl_peers *p = T.R[dst].p;
		const struct ov_stream *ov = ov_find(p, b.stream_key, rly_be32_load(&b.partition));
		int s = sess_find(p, G.addrs[src].ip_be, G.addrs[src].port_be);
		for (unsigned k = 0; ov && s >= 0 && k < RLY_PEER_DEGREE_CAP; k++)
			if (ov->link[k].st == L_JOINING && ov->link[k].sess == s)
				rly_be64_store(&b.request_id, ov->link[k].request_id);
	}
	token_for(dst, src, !(f & 1), b.token);
	deliver_body(dst, src, type, &b, f & 0x80 ? u8() | 0x80 : 0);
}

static void ev_ihave(void)
{
	int dst = pick_relay(u8());
	unsigned src = u8() % N_ADDR;
	uint8_t f = u8(), st = u8(), n = u8();
	struct rly_wire_peer_ihave b;

	if (!live(dst))
		return;
	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, G.streams[st & 1], RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.partition, partition_of(st >> 1));
	b.n = (uint8_t)(n % (RLY_IHAVE_MAX + 2));
	for (unsigned e = 0; e < b.n && e < RLY_IHAVE_MAX; e++) {
		uint8_t pc = u8();
		memcpy(b.e[e].publisher, G.publishers[pc & 1], RLY_ID_LEN);
		rly_be32_store(&b.e[e].chain, (pc >> 1) & 3);
		rly_be64_store(&b.e[e].highest, u16());
	}
	token_for(dst, src, !(f & 1), b.token);
	deliver_body(dst, src, RLY_MSG_PEER_IHAVE, &b, f & 0x80 ? u8() | 0x80 : 0);
}

static void ev_iwant(void)
{
	int dst = pick_relay(u8());
	unsigned src = u8() % N_ADDR;
	uint8_t f = u8(), st = u8(), pc = u8();
	struct rly_wire_peer_iwant b;

	if (!live(dst))
		return;
	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, G.streams[st & 1], RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.partition, partition_of(st >> 1));
	rly_be32_store(&b.chain, (pc >> 1) & 3);
	memcpy(b.publisher, G.publishers[pc & 1], RLY_ID_LEN);
	rly_be64_store(&b.from_seq, u8());
	rly_be64_store(&b.to_seq, u16());
	rly_be64_store(&b.request_id, u8());
	token_for(dst, src, !(f & 1), b.token);
	deliver_body(dst, src, RLY_MSG_PEER_IWANT, &b, f & 0x80 ? u8() | 0x80 : 0);
}

static void ev_disc(void)
{
	int dst = pick_relay(u8());
	unsigned src = u8() % N_ADDR;
	uint8_t f = u8(), kind = u8(), st = u8();
	struct rly_wire_peer_discover b;
	struct rly_disc_record *r = &b.rec;

	if (!live(dst))
		return;
	memset(&b, 0, sizeof(b));
	b.kind = kind % 4;
	rly_be64_store(&b.request_id, 1 + u8());
	memcpy(r->stream_key, G.streams[st & 1], RLY_STREAM_KEY_LEN);
	rly_be32_store(&r->partition, partition_of(st >> 1));
	if (b.kind == RLY_DISC_RESULT && (f & 8)) {
		/* The answer to the relay's last LOOKUP to this address. */
		const struct cap *c =
			cap_last(dst, &G.addrs[src], RLY_MSG_PEER_DISCOVER, RLY_DISC_LOOKUP);
		if (c)
			memcpy(&b.request_id,
			       c->data + HDR + offsetof(struct rly_wire_peer_discover, request_id), 8);
		rly_be16_store(&b.more, u8());
	}
	if (b.kind != RLY_DISC_LOOKUP && !(f & 0x40)) {
		/* A record of a relay the input picks (at its address, or elsewhere), signed by
		 * the identity living there, or by another. */
		unsigned at = (f & 2) ? src : u8() % N_ADDR, id = id_at(at);
		uint16_t ttl = u16();
		if (f & 0x20)
			id = kind >> 4 < N_ID ? kind >> 4 : ID_OUT;
		r->ip_be = G.addrs[at].ip_be;
		rly_be16_store(&r->udp_port, ntohs(G.addrs[at].port_be));
		rly_be64_store(&r->expires_ms,
			       real_ms() + (ttl & 0x8000 ? (uint64_t)(ttl & 0x7fff) * 256 : 0) -
				       (ttl & 0x8000 ? 0 : ttl));
		if (f & 0x10)
			rly_be16_store(&r->flags, st);
		CHECK(rly_disc_record_sign(r, &G.ids[id]) == 0, "sign a record");
		if (f & 4)
			r->sig[st % RLY_WIRE_SIG_LEN] ^= 0x40;
	}
	token_for(dst, src, !(f & 1), b.token);
	deliver_body(dst, src, RLY_MSG_PEER_DISCOVER, &b, f & 0x80 ? u8() | 0x80 : 0);
}

static void ev_replay(void)
{
	static const struct {
		uint8_t type;
		int kind;
	} what[] = {
		{RLY_MSG_PEER_HELLO, RLY_PEER_HELLO},	  {RLY_MSG_PEER_HELLO, RLY_PEER_CHALLENGE},
		{RLY_MSG_PEER_HELLO, RLY_PEER_PROOF},	  {RLY_MSG_PEER_HELLO, RLY_PEER_WELCOME},
		{RLY_MSG_PEER_HELLO, RLY_PEER_PING},	  {RLY_MSG_PEER_HELLO, RLY_PEER_BYE},
		{RLY_MSG_PEER_JOIN, -1},		  {RLY_MSG_PEER_PRUNE, -1},
		{RLY_MSG_PEER_IHAVE, -1},		  {RLY_MSG_PEER_IWANT, -1},
		{RLY_MSG_PEER_DISCOVER, RLY_DISC_ANNOUNCE}, {RLY_MSG_PEER_DISCOVER, RLY_DISC_RESULT},
		{RLY_MSG_PEER_DISCOVER, RLY_DISC_LOOKUP},
	};
	static struct rly_pkt_rec rec;
	uint8_t sel = u8(), f = u8();
	const struct cap *c = cap_last(-1, NULL, what[sel % 13].type, what[sel % 13].kind);
	int dst;

	if (!c)
		return;
	dst = relay_at(c->to_ip, c->to_port);
	if (f & 1)
		dst = pick_relay(u8());
	if (dst < 0)
		dst = (c->from + 1) % T.n;
	rec_from(&rec, (f & 2) ? u8() : (unsigned)c->from);
	rec.len = c->len;
	memcpy(rec.data, c->data, c->len);
	if (f & 4)
		rec.data[HDR + u8() % (c->len - HDR)] ^= 1u << (f >> 5);
	deliver(dst, &rec);
}

static void ev_raw(void)
{
	static struct rly_pkt_rec rec;
	int dst = pick_relay(u8());
	unsigned src = u8(), len = u8() * 2;

	rec_from(&rec, src);
	take(rec.data, len);
	if (src & 0x80 && len >= HDR) {
		/* A header that holds up (magic, version, length, count) on the input's body. */
		static uint8_t body[sizeof(rec.data)];
		int n;

		memcpy(body, rec.data + HDR, sizeof(body) - HDR);
		n = rly_wire_build_control(rec.data, sizeof(rec.data),
					   RLY_MSG_PEER_HELLO + rec.data[3] % 6, body);
		if (n > 0)
			len = (unsigned)n;
	}
	rec.len = (uint16_t)len;
	if (src & 0x40)
		rec.ip_be = 0;
	deliver(dst, &rec);
}

static void ev_life(void)
{
	int r = pick_relay(u8());
	uint8_t op = u8();
	struct relay *R = &T.R[r];

	switch (op % 6) {
	case 0: /* the whole relay crashes: dataplane, endpoints and all */
		if (!R->p)
			return;
		relay_stop(r);
		R->n_dp = 0;
		break;
	case 1: /* it stops cleanly */
		if (!live(r))
			return;
		rly_ctl_peers_shutdown(R->p);
		relay_stop(r);
		R->n_dp = 0;
		break;
	case 2: /* it comes back (a fresh dataplane, or the one it had) */
		if (R->p)
			return;
		memset(R->dedup, 0, DD_CHAINS * DD_STRIDE);
		relay_start(r);
		break;
	case 3: /* relay-control restarts over a live dataplane: its endpoints come back in a dump */
		if (!live(r))
			return;
		relay_stop(r);
		relay_start(r);
		for (unsigned i = 0; i < R->n_dp; i++) {
			R->dp[i].dumped = 1;
			R->dp[i].dumped_ms = T.now;
			rly_ctl_peers_on_dump_peer(R->p, R->dp[i].key, R->dp[i].partition,
						   &R->dp[i].ep, T.now);
		}
		break;
	case 4: /* the dataplane goes away */
		if (!live(r))
			return;
		rly_ctl_peers_detach(R->p);
		R->attached = 0;
		R->n_dp = 0;
		break;
	case 5: /* and comes back */
		if (!R->p || R->attached)
			return;
		R->attached = 1;
		CHECK(rly_ctl_peers_set_self(R->p, G.addrs[r].ip_be, G.addrs[r].port_be, R->dedup,
					     DD_CHAINS, DD_STRIDE, 1000000000ull, T.now) == 0,
		      "set_self");
		break;
	}
	check_all();
}

/* ---- setup ---- */

static void init_once(void)
{
	if (G.ready)
		return;
	randombytes_set_implementation(&rng_impl);
	CHECK(sodium_init() >= 0, "sodium_init");
	G.verbose = getenv("FUZZ_PEERS_VERBOSE") != NULL;
	for (unsigned i = 0; i < N_ID; i++) {
		uint8_t seed[crypto_sign_SEEDBYTES] = {0x9e, (uint8_t)i};
		crypto_sign_seed_keypair(G.ids[i].pk, G.ids[i].sk, seed);
	}
	/* Nobody holds the last one: a public key with a secret key of another. */
	G.ids[N_ID - 1].pk[0] ^= 0x80;
	for (unsigned i = 0; i < N_ADDR; i++) {
		static const uint32_t ip[N_ADDR] = {0x0a000001, 0x0a000002, 0x0a000003, 0x0a000032,
						    0x0a000032, 0x0a000001, 0x0a000063, 0};
		static const uint16_t port[N_ADDR] = {4747, 4747, 4747, 4747, 4748, 4748, 1, 4747};
		G.addrs[i].ip_be = htonl(ip[i]);
		G.addrs[i].port_be = htons(port[i]);
		memcpy(G.addrs[i].mac, (uint8_t[6]){2, 0, 0, 0, 0, (uint8_t)(ip[i] & 0xff)}, 6);
	}
	for (unsigned i = 0; i < 2; i++) {
		memset(G.streams[i], 0x51 + (int)i, RLY_STREAM_KEY_LEN);
		memset(G.publishers[i], 0xa0 + (int)i, RLY_ID_LEN);
	}
	/* Debug level: the log lines are code the datagrams reach too. */
	G.devnull = fopen("/dev/null", "w");
	CHECK(G.devnull != NULL, "/dev/null");
	rly_ctl_log_open(G.devnull, "fuzz", RLY_LOG_DEBUG);
	G.ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t degree[4][2] = {{1, 1}, {1, 2}, {2, 2}, {2, 3}};
	struct rly_ctl_peers_cfg dflt = RLY_CTL_PEERS_CFG_DEFAULT;
	uint8_t mode;

	init_once();
	for (int i = 0; i < NR; i++)
		free(T.R[i].dedup);
	memset(&T, 0, offsetof(typeof(T), q));
	T.n_cap = T.q_head = T.q_len = 0;
	T.n_ver = T.n_seen = T.n_fh = 0;
	T.delivered = T.sent = T.dropped = T.up_max = 0;
	T.in_dst = -1;
	fz_begin(data, size);
	T.rng = 0x5eed;
	mode = u8();
	/* Discovery maps this clock to wall-clock time for record expiry: start from the real one. */
	T.now = T.start = rly_mono_ns() / 1000000u;
	T.real_off = rly_real_ns() / 1000000u - T.now;
	T.n = (mode & 1) ? 3 : 2;
	T.cfg = dflt;
	/* Two streams x two partitions at most: 8 overlay slots are plenty, and each relay's tables
	 * are then 29 KiB instead of 3.7 MiB, allocated and zeroed for every input. */
	T.cfg.overlays_max = 2 * OV_SCAN;
	T.cfg.degree = degree[(mode >> 1) & 3][0];
	T.cfg.degree_max = degree[(mode >> 1) & 3][1];
	T.cfg.n_seeds = (mode >> 3) & 1; /* a flag here: relays 0 and 1 seed each other */
	if (mode & 0x10) {
		T.cfg.ping_ms = 100;
		T.cfg.dead_ms = 300;
		T.cfg.challenge_ttl_ms = 500;
		T.cfg.linger_ms = 1000;
		T.cfg.disc_ttl_ms = 1500;
		T.cfg.disc_lookup_ms = 400;
	}
	for (int i = 0; i < T.n; i++) {
		T.R[i].idx = i;
		T.R[i].dedup = calloc(DD_CHAINS, DD_STRIDE);
		CHECK(T.R[i].dedup, "calloc");
		relay_start(i);
	}
	check_all();

	for (unsigned n = 0; n < MAX_EVENTS && fz_left > 0; n++) {
		switch (u8() % K_MAX) {
		case K_RUN:
			ev_run();
			break;
		case K_JUMP:
			ev_jump();
			break;
		case K_DELIVER:
			flush(1 + u8() % 8);
			break;
		case K_NET:
			ev_net();
			break;
		case K_SERVE:
			ev_serve();
			break;
		case K_FLAGGED:
			ev_flagged();
			break;
		case K_DEDUP:
			ev_dedup();
			break;
		case K_HELLO:
			ev_hello();
			break;
		case K_LINK:
			ev_link();
			break;
		case K_IHAVE:
			ev_ihave();
			break;
		case K_IWANT:
			ev_iwant();
			break;
		case K_DISC:
			ev_disc();
			break;
		case K_REPLAY:
			ev_replay();
			break;
		case K_RAW:
			ev_raw();
			break;
		case K_LIFE:
			ev_life();
			break;
		}
	}
	if (G.verbose) {
		fprintf(stderr, "fuzz_peers: %d relays, %llu delivered, %llu sent, %llu dropped, "
				"%llu ms, at most %llu sessions up;",
			T.n, (unsigned long long)T.delivered, (unsigned long long)T.sent,
			(unsigned long long)T.dropped, (unsigned long long)(T.now - T.start),
			(unsigned long long)T.up_max);
		for (int i = 0; i < T.n; i++) {
			struct rly_ctl_overlay_info oi;
			if (!T.R[i].p) {
				fprintf(stderr, " r%d down", i);
				continue;
			}
			fprintf(stderr, " r%d: %u up", i, rly_ctl_peers_sessions_up(T.R[i].p));
			for (unsigned s = 0; s < 2; s++)
				if (rly_ctl_peers_overlay_info(T.R[i].p, G.streams[s], 0, &oi) == 0)
					fprintf(stderr, " s%u eager %u lazy %u joining %u cand %u", s,
						oi.eager, oi.lazy, oi.joining, oi.candidates);
			fprintf(stderr, " dp %u;", T.R[i].n_dp);
		}
		fputc('\n', stderr);
	}
	for (int i = 0; i < T.n; i++) {
		if (!T.R[i].p)
			continue;
		for (unsigned o = OV_SCAN; o < T.R[i].p->ov_max; o++)
			CHECK(!T.R[i].p->ov[o].used, "relay %d: overlay slot %u used", i, o);
		relay_stop(i);
	}
	return 0;
}
