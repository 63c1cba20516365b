/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Peering (control/peers.h) with several relays in one process: each relay's peering talks to a
 * fake dataplane (a list of peer endpoints per stream, a dedup region the test fills) and a fake
 * network that carries tx records to the addressed relay as punt records, answers ARP, and can cut
 * a relay off. Time is the test's: nothing sleeps.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/hist.h"
#include "control/discovery.h"
#include "control/peers.h"
#include "relay/client.h"
#include "relay/counters.h"
#include "relay/shm.h"

#define NR 8
#define QMAX 8192
#define LINKS_MAX 64
#define DD_CHAINS 16u
#define DD_WINDOW 64u
#define DD_STRIDE RLY_DEDUP_STRIDE(DD_WINDOW)
#define TSC_HZ 1000000000ull
#define HIST_BYTES 65536u
#define HIST_SLOTS 2u
#define HIST_INDEX 1024u

static const uint8_t S1[RLY_STREAM_KEY_LEN] = {0x51, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t PUB[RLY_ID_LEN] = {0xaa, 0xbb};

struct dp_link {
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	struct rly_endpoint ep;
};

struct relay {
	int idx;
	uint32_t ip_be;
	uint16_t port_be;
	uint8_t mac[6];
	struct rly_identity id;
	struct rly_ctl_peers *p;
	struct dp_link links[LINKS_MAX]; /* the fake dataplane's peer endpoints */
	unsigned n_links;
	unsigned adds, dels;
	int local; /* has a local subscriber on S1 */
	int cut;   /* unreachable: the network drops everything to and from it */
	uint8_t *dedup;
	uint8_t *hist;	     /* history slots (HIST_SLOTS), as in the dataplane's shm */
	struct rly_hist hv;  /* our view of them */
};

struct qent {
	int dst;
	struct rly_pkt_rec rec;
};

static struct relay R[NR];
static int n_relays;
static struct qent *Q;
static unsigned q_head, q_len;
static uint64_t now_ms;
static unsigned sent_by_type[256];
static struct rly_wire_peer_iwant last_iwant;
static unsigned n_iwant;
/* DATA the relays sent each other (IWANT answers): messages, and how many had the repair bit */
static unsigned repair_msgs, repair_flagged;
static uint64_t repair_seq[256];
static size_t bytes_in_hello[8], bytes_out_hello[8];

static int relay_by_addr(uint32_t ip_be, uint16_t port_be)
{
	for (int i = 0; i < n_relays; i++)
		if (R[i].ip_be == ip_be && (port_be == 0 || R[i].port_be == port_be))
			return i;
	return -1;
}

static void enqueue(int dst, const struct rly_pkt_rec *rec)
{
	cr_assert_lt(q_len, QMAX, "network queue overflow");
	Q[(q_head + q_len) % QMAX].dst = dst;
	Q[(q_head + q_len) % QMAX].rec = *rec;
	q_len++;
}

static int net_send(void *ctx, struct rly_pkt_rec *rec)
{
	struct relay *from = ctx;
	struct rly_pkt_rec in;
	int to;

	if (rec->flags & RLY_PKT_F_ARP_RESOLVE) {
		to = relay_by_addr(rec->ip_be, 0);
		if (to < 0 || from->cut || R[to].cut)
			return 0;
		/* The answer comes back to the asker as a neighbour record. */
		memset(&in, 0, sizeof(in));
		in.flags = RLY_PKT_F_NEIGH;
		in.ip_be = R[to].ip_be;
		memcpy(in.mac, R[to].mac, 6);
		enqueue(from->idx, &in);
		return 0;
	}
	cr_assert_geq(rec->len, 8);
	sent_by_type[rec->data[3]]++;
	if (rec->data[3] == RLY_MSG_DATA) {
		struct rly_wire_view v;
		const struct rly_wire_msg_hdr *h;
		size_t off = 0;

		cr_assert_eq(rly_wire_parse(rec->data, rec->len, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK,
			     "an IWANT answer is a valid DATA datagram");
		cr_assert_leq(rec->len, RLY_WIRE_DGRAM_FOR_MTU(1500));
		while ((h = rly_wire_next_msg(&v, &off)) != NULL) {
			if (repair_msgs < 256)
				repair_seq[repair_msgs] = rly_be64_load(&h->seq);
			repair_msgs++;
			repair_flagged += (h->ttl & RLY_TTL_F_REPAIR) != 0;
		}
	}
	if (rec->data[3] == RLY_MSG_PEER_IWANT) {
		memcpy(&last_iwant, rec->data + 8, sizeof(last_iwant));
		n_iwant++;
	}
	if (rec->data[3] == RLY_MSG_PEER_HELLO) {
		unsigned kind = rec->data[8];
		if (kind == RLY_PEER_HELLO)
			bytes_in_hello[0] += rec->len;
		if (kind == RLY_PEER_CHALLENGE)
			bytes_out_hello[0] += rec->len;
	}
	to = relay_by_addr(rec->ip_be, rec->udp_port_be);
	if (to < 0 || from->cut || R[to].cut)
		return 0;
	/* Sent to the MAC that the sender resolved: it must be the receiver's. */
	cr_assert_eq(memcmp(rec->mac, R[to].mac, 6), 0, "relay %d sent to a wrong MAC", from->idx);
	in = *rec;
	in.ip_be = from->ip_be;
	in.udp_port_be = from->port_be;
	memcpy(in.mac, from->mac, 6);
	in.flags = 0;
	enqueue(to, &in);
	return 0;
}

static struct dp_link *dp_find(struct relay *r, const uint8_t *key, uint32_t partition,
			       const struct rly_endpoint *ep)
{
	for (unsigned i = 0; i < r->n_links; i++)
		if (r->links[i].partition == partition && !memcmp(r->links[i].key, key, 16) &&
		    r->links[i].ep.ip_be == ep->ip_be && r->links[i].ep.udp_port_be == ep->udp_port_be)
			return &r->links[i];
	return NULL;
}

static int dp_link(void *ctx, int add, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
		   const struct rly_endpoint *ep)
{
	struct relay *r = ctx;
	struct dp_link *l = dp_find(r, key, partition, ep);

	cr_assert(ep->flags & RLY_EP_F_PEER, "peer endpoints carry the PEER flag");
	if (add) {
		r->adds++;
		if (!l) {
			cr_assert_lt(r->n_links, LINKS_MAX);
			l = &r->links[r->n_links++];
			memcpy(l->key, key, 16);
			l->partition = partition;
			l->ep = *ep;
		}
	} else {
		r->dels++;
		if (l)
			*l = r->links[--r->n_links];
	}
	return 0;
}

static void dp_foreach_local(void *ctx, void (*cb)(void *, const uint8_t *, uint32_t), void *arg)
{
	struct relay *r = ctx;

	if (r->local)
		cb(arg, S1, 0);
}

static struct rly_ctl_peers_cfg base_cfg(void)
{
	struct rly_ctl_peers_cfg c = RLY_CTL_PEERS_CFG_DEFAULT;
	return c;
}

/* Seeds pinned to an identity: 0 none, 1 relay 0's own, 2 a stranger's. */
static int pin_seed;

/* Relays 0..n-1; every relay but 0 has relay 0 as its only seed. */
static void make_relays(int n, struct rly_ctl_peers_cfg cfg)
{
	uint8_t secret[RLY_CTL_SECRET_LEN];

	cr_assert_eq(sodium_init() >= 0, 1);
	memset(R, 0, sizeof(R));
	memset(sent_by_type, 0, sizeof(sent_by_type));
	if (!Q)
		Q = calloc(QMAX, sizeof(*Q));
	q_head = q_len = 0;
	n_relays = n;
	/* Discovery maps this clock to wall-clock time for record expiry: start from the real one. */
	now_ms = rly_mono_ns() / 1000000u;
	for (int i = 0; i < n; i++) {
		struct relay *r = &R[i];
		struct rly_ctl_peers_io io = {.ctx = r, .send = net_send, .link = dp_link,
					      .foreach_local = dp_foreach_local};
		struct rly_ctl_peers_cfg c = cfg;

		r->idx = i;
		r->ip_be = htonl(0x0a000001u + (uint32_t)i);
		r->port_be = htons(4747);
		memcpy(r->mac, (uint8_t[6]){2, 0, 0, 0, 0, (uint8_t)(i + 1)}, 6);
		crypto_sign_keypair(r->id.pk, r->id.sk);
		c.id = &r->id;
		if (i > 0) {
			c.n_seeds = 1;
			c.seeds[0].ip_be = R[0].ip_be;
			c.seeds[0].port_be = R[0].port_be;
			c.seeds[0].has_id = pin_seed != 0;
			if (pin_seed == 1)
				memcpy(c.seeds[0].id, R[0].id.pk, RLY_ID_LEN);
			else if (pin_seed == 2)
				memset(c.seeds[0].id, 0x5a, RLY_ID_LEN);
		}
		randombytes_buf(secret, sizeof(secret));
		cr_assert_eq(rly_ctl_peers_create(&r->p, &c, secret, &io), 0, "%s", "create");
		r->dedup = calloc(DD_CHAINS, DD_STRIDE);
		cr_assert_eq(rly_ctl_peers_set_self(r->p, r->ip_be, r->port_be, r->dedup, DD_CHAINS,
						    DD_STRIDE, TSC_HZ, now_ms),
			     0);
		r->hist = aligned_alloc(64, HIST_SLOTS * RLY_HIST_STRIDE(HIST_INDEX, HIST_BYTES));
		memset(r->hist, 0, HIST_SLOTS * RLY_HIST_STRIDE(HIST_INDEX, HIST_BYTES));
		rly_hist_view(&r->hv, r->hist, HIST_SLOTS, HIST_INDEX, HIST_BYTES);
		rly_ctl_peers_set_history(r->p, r->hist, HIST_SLOTS, HIST_INDEX, HIST_BYTES);
	}
}

static void free_relays(void)
{
	for (int i = 0; i < n_relays; i++) {
		rly_ctl_peers_free(R[i].p);
		free(R[i].dedup);
		free(R[i].hist);
	}
	n_relays = 0;
}

static uint64_t tsc(void)
{
	return __builtin_ia32_rdtsc();
}

/* The dataplane of relay @p r accepted seq @p seq of our test chain. */
static void dp_accept_one(struct relay *r, uint64_t seq)
{
	struct rly_dedup_chain *c = (void *)r->dedup;

	if (c->tag == 0) {
		memcpy(c->stream_key, S1, 16);
		c->partition = 0;
		memcpy(c->publisher, PUB, RLY_ID_LEN);
		c->chain = 7;
		c->first_seq = seq;
		c->tag = 0x1234567;
		cr_assert_not_null(rly_hist_claim(&r->hv, c, c->tag, 0, 0, 0));
	}
	((uint64_t *)(c + 1))[seq & (DD_WINDOW - 1)] = seq;
	{
		/* The message itself goes to the history, as a worker would keep it. */
		struct rly_wire_msg_hdr h;
		uint8_t m[sizeof(h) + 20];

		memset(&h, 0, sizeof(h));
		memcpy(h.stream_key, S1, 16);
		memcpy(h.publisher, PUB, RLY_ID_LEN);
		rly_be32_store(&h.chain, 7);
		rly_be64_store(&h.seq, seq);
		rly_be64_store(&h.prev_seq, seq - 1);
		rly_be16_store(&h.payload_len, 20);
		memcpy(m, &h, sizeof(h));
		memset(m + sizeof(h), (int)seq, 20);
		cr_assert(rly_hist_append(&r->hv, rly_hist_of(&r->hv, c, c->tag), seq, m, sizeof(m)));
	}
	if (seq > c->highest)
		c->highest = seq;
	c->last_tsc = tsc();
}

/* ... and every seq up to @p seq. */
static void dp_accept(struct relay *r, uint64_t seq)
{
	struct rly_dedup_chain *c = (void *)r->dedup;

	for (uint64_t s = c->tag ? c->highest + 1 : 1; s <= seq; s++)
		dp_accept_one(r, s);
}

/* Deliver everything in flight, then advance time by @p ms in 5 ms steps with ticks. */
static void run_ms(unsigned ms)
{
	for (unsigned t = 0; t <= ms; t += 5) {
		unsigned guard = 0;
		while (q_len) {
			struct qent e = Q[q_head];
			q_head = (q_head + 1) % QMAX;
			q_len--;
			if (!R[e.dst].cut)
				rly_ctl_peers_on_packet(R[e.dst].p, &e.rec, now_ms);
			cr_assert_lt(guard++, 100000u, "message storm");
		}
		for (int i = 0; i < n_relays; i++)
			if (!R[i].cut)
				rly_ctl_peers_tick(R[i].p, now_ms);
		now_ms += 5;
	}
}

/* The dataplane of relay @p at reports a duplicate of our test chain that came from relay @p from. */
static void report_dup(int at, int from, uint64_t seq, uint8_t ttl)
{
	struct rly_pkt_rec rec;
	struct rly_wire_msg_hdr *h = (void *)rec.data;

	memset(&rec, 0, sizeof(rec));
	rec.flags = RLY_PKT_F_DUPLICATE;
	rec.ip_be = R[from].ip_be;
	rec.udp_port_be = R[from].port_be;
	rec.len = sizeof(*h);
	memcpy(h->stream_key, S1, 16);
	memcpy(h->publisher, PUB, RLY_ID_LEN);
	rly_be32_store(&h->chain, 7);
	rly_be64_store(&h->seq, seq);
	h->ttl = ttl;
	rly_ctl_peers_on_packet(R[at].p, &rec, now_ms);
}

static struct rly_ctl_overlay_info info_of(int i)
{
	struct rly_ctl_overlay_info oi;

	memset(&oi, 0, sizeof(oi));
	rly_ctl_peers_overlay_info(R[i].p, S1, 0, &oi);
	return oi;
}

/* Is relay j's dataplane holding relay i as a peer endpoint of S1? */
static int dp_has(int j, int i)
{
	struct rly_endpoint ep = {.ip_be = R[i].ip_be, .udp_port_be = R[i].port_be};
	return dp_find(&R[j], S1, 0, &ep) != NULL;
}

/* Relays reachable from @p start over eager links both ends hold, among those not cut. */
static int reachable(int start)
{
	int seen[NR] = {0}, stack[NR], sp = 0, n = 0;

	stack[sp++] = start;
	seen[start] = 1;
	while (sp) {
		int i = stack[--sp];
		n++;
		for (int j = 0; j < n_relays; j++)
			if (!seen[j] && !R[j].cut && R[j].local && dp_has(i, j) && dp_has(j, i)) {
				seen[j] = 1;
				stack[sp++] = j;
			}
	}
	return n;
}

static int members(void)
{
	int n = 0;
	for (int i = 0; i < n_relays; i++)
		n += R[i].local && !R[i].cut;
	return n;
}

static void serve_all(int from, int to)
{
	for (int i = from; i < to; i++) {
		R[i].local = 1;
		rly_ctl_peers_on_subscribed(R[i].p, S1, 0, now_ms);
	}
}

Test(control_peers, a_session_comes_up_on_both_ends_with_one_signed_exchange)
{
	make_relays(2, base_cfg());
	run_ms(200);
	cr_expect_eq(rly_ctl_peers_sessions_up(R[0].p), 1);
	cr_expect_eq(rly_ctl_peers_sessions_up(R[1].p), 1);
	/* A CHALLENGE is never bigger than the HELLO that provoked it. */
	cr_expect_leq(bytes_out_hello[0], bytes_in_hello[0]);
	free_relays();
}

Test(control_peers, relays_that_serve_a_stream_find_each_other_through_one_seed_and_link)
{
	make_relays(6, base_cfg());
	serve_all(1, 6);
	run_ms(3000);
	for (int i = 1; i < 6; i++) {
		struct rly_ctl_overlay_info oi = info_of(i);
		cr_expect(oi.member, "relay %d serves the stream", i);
		cr_expect_geq(oi.eager + oi.lazy, 1, "relay %d has a link", i);
		cr_expect_leq(oi.eager + oi.lazy + oi.joining, 8, "relay %d within degree_max", i);
		/* The seed knows of relays 1..5 only through their records: it serves nothing. */
	}
	cr_expect_neq(rly_ctl_peers_overlay_info(R[0].p, S1, 0, &(struct rly_ctl_overlay_info){0}),
		      0, "the seed does not serve the stream");
	cr_expect_eq(reachable(1), members(), "the overlay is connected");
	free_relays();
}

Test(control_peers, a_lone_candidate_is_joined_in_the_first_upkeep_not_100_ms_later)
{
	/* The upkeep once drew candidate slots at random with replacement: a stream's only
	 * candidate was missed in 36 % of rounds, and the next round is 100 ms later. */
	make_relays(3, base_cfg());
	run_ms(1500); /* sessions with the seed */
	for (int k = 0; k < 20; k++) {
		uint8_t key[RLY_STREAM_KEY_LEN];
		struct rly_ctl_overlay_info oi;

		memcpy(key, S1, sizeof(key));
		key[0] = (uint8_t)(0x80 + k);
		rly_ctl_peers_on_subscribed(R[1].p, key, 0, now_ms);
		run_ms(50); /* relay 1's record reaches the seed */
		rly_ctl_peers_on_subscribed(R[2].p, key, 0, now_ms);
		run_ms(50); /* lookup, session (first stream only), JOIN, ACCEPT: well under 100 ms */
		memset(&oi, 0, sizeof(oi));
		cr_assert_eq(rly_ctl_peers_overlay_info(R[2].p, key, 0, &oi), 0);
		cr_expect_eq(oi.eager, 1, "stream %d: relay 2 linked to its only candidate at once", k);
	}
	free_relays();
}

Test(control_peers, every_link_is_held_by_both_dataplanes)
{
	make_relays(6, base_cfg());
	serve_all(1, 6);
	run_ms(3000);
	for (int i = 1; i < 6; i++)
		for (int j = 1; j < 6; j++)
			cr_expect_eq(dp_has(i, j), dp_has(j, i), "link %d-%d held by one end only", i,
				     j);
	free_relays();
}

Test(control_peers, no_relay_accepts_more_links_than_degree_max)
{
	struct rly_ctl_peers_cfg c = base_cfg();

	c.degree = 3;
	c.degree_max = 3;
	make_relays(8, c);
	serve_all(1, 8);
	run_ms(5000);
	for (int i = 1; i < 8; i++) {
		struct rly_ctl_overlay_info oi = info_of(i);
		cr_expect_leq(oi.eager + oi.lazy, 3, "relay %d", i);
		cr_expect_leq(R[i].n_links, 3, "relay %d's dataplane", i);
	}
	/* Not asserted here: with degree == degree_max a full clique can leave the others outside
	 * (docs/overlay.md, Limits); the default degree 4 of at most 8 is checked above. */
	free_relays();
}

Test(control_peers, a_duplicate_over_an_eager_link_prunes_it_on_both_ends)
{
	int a = 1, b = -1;

	make_relays(4, base_cfg());
	serve_all(1, 4);
	run_ms(3000);
	for (int j = 2; j < 4; j++)
		if (dp_has(a, j))
			b = j;
	cr_assert_geq(b, 0, "relay 1 has an eager link");
	cr_assert_geq(info_of(a).eager, 2, "relay 1 has two eager links (3 relays, degree 4)");
	dp_accept(&R[a], 5);
	run_ms(1100); /* the chain is known for longer than the guard */
	report_dup(a, b, 5, 0);
	run_ms(50);
	cr_expect(!dp_has(a, b), "pruned at the reporter");
	cr_expect(!dp_has(b, a), "pruned at the peer");
	cr_expect_eq(info_of(a).lazy, 1);
	cr_expect_eq(info_of(b).lazy, 1);
	free_relays();
}

Test(control_peers, a_duplicate_of_a_chain_just_started_or_of_a_repair_prunes_nothing)
{
	struct rly_ctl_peers_cfg c = base_cfg();

	c.keep_fastest = 1;
	make_relays(4, c);
	serve_all(1, 4);
	run_ms(3000);
	cr_assert(dp_has(1, 2) && dp_has(1, 3));
	dp_accept(&R[1], 5);
	run_ms(100);
	/* Nobody knows yet which link brings this chain first. */
	report_dup(1, 2, 5, 0);
	run_ms(50);
	cr_expect(dp_has(1, 2), "a chain younger than the guard prunes nothing");
	run_ms(1100);
	/* A copy sent again for a repair is expected to be a duplicate somewhere. */
	report_dup(1, 2, 5, RLY_TTL_F_REPAIR);
	run_ms(50);
	cr_expect(dp_has(1, 2), "a repaired copy prunes nothing");
	free_relays();
}

Test(control_peers, a_relay_never_prunes_its_last_eager_link)
{
	make_relays(3, base_cfg());
	serve_all(1, 3);
	run_ms(3000);
	cr_assert(dp_has(1, 2));
	dp_accept(&R[1], 5);
	run_ms(1100);
	report_dup(1, 2, 5, 0);
	run_ms(50);
	cr_expect(dp_has(1, 2), "the only link stays eager");
	free_relays();
}

Test(control_peers, a_lazy_peer_that_announces_a_missed_message_is_grafted_back)
{
	unsigned iwant_before;

	make_relays(4, base_cfg());
	serve_all(1, 4);
	run_ms(3000);
	cr_assert(dp_has(1, 2) && dp_has(1, 3), "relay 1 links to both");
	dp_accept(&R[1], 10);
	dp_accept(&R[2], 10);
	dp_accept(&R[3], 10);
	run_ms(1100);
	/* Prune 1-2, then let 2 get ahead of 1 on the chain. */
	report_dup(1, 2, 10, 0);
	run_ms(20);
	cr_assert(!dp_has(1, 2));
	run_ms(300);
	cr_expect(!dp_has(1, 2), "no graft while nothing is missing");
	iwant_before = sent_by_type[RLY_MSG_PEER_IWANT];
	dp_accept(&R[2], 25);
	run_ms(60);
	cr_expect(!dp_has(1, 2), "not before graft-after-ms (the eager copy may be on its way)");
	run_ms(200);
	cr_expect(dp_has(1, 2) && dp_has(2, 1), "grafted on both ends");
	cr_expect_gt(sent_by_type[RLY_MSG_PEER_IWANT], iwant_before, "IWANT for the range");
	cr_expect_eq(rly_be64_load(&last_iwant.from_seq), 11, "from the first missing");
	cr_expect_eq(rly_be64_load(&last_iwant.to_seq), UINT64_MAX, "open-ended");
	free_relays();
}

Test(control_peers, a_hole_below_the_highest_is_asked_for_exactly)
{
	make_relays(4, base_cfg());
	serve_all(1, 4);
	run_ms(3000);
	dp_accept(&R[1], 10);
	dp_accept(&R[2], 40);
	dp_accept(&R[3], 40);
	run_ms(1100);
	report_dup(1, 2, 10, 0);
	run_ms(20);
	cr_assert(!dp_has(1, 2));
	/* Relay 1 gets 11..20 and 31..40 by push, but never 21..30. */
	for (uint64_t q = 11; q <= 40; q++)
		if (q < 21 || q > 30)
			dp_accept_one(&R[1], q);
	n_iwant = 0;
	repair_msgs = repair_flagged = 0;
	run_ms(400);
	cr_expect(dp_has(1, 2), "the hole below the highest grafts");
	cr_expect_eq(n_iwant, 1, "one run");
	cr_expect_eq(rly_be64_load(&last_iwant.from_seq), 21);
	cr_expect_eq(rly_be64_load(&last_iwant.to_seq), 30, "exactly the hole, not everything after");
	/* Relay 2 answers from its history: 21..30, each marked as a repair. */
	cr_expect_eq(repair_msgs, 10);
	cr_expect_eq(repair_flagged, 10);
	for (unsigned k = 0; k < 10 && k < repair_msgs; k++)
		cr_expect_eq(repair_seq[k], 21 + k);
	free_relays();
}

Test(control_peers, a_silent_peer_is_dropped_and_the_overlay_repairs_itself)
{
	int victim = -1, best = -1;

	make_relays(7, base_cfg());
	serve_all(1, 7);
	run_ms(3000);
	cr_assert_eq(reachable(1), members());
	/* Cut the relay with the most links: the worst single failure. */
	for (int i = 2; i < 7; i++)
		if ((int)R[i].n_links > best) {
			best = (int)R[i].n_links;
			victim = i;
		}
	R[victim].cut = 1;
	run_ms(1000);
	{
		int linked = 0;
		for (int i = 1; i < 7; i++)
			linked |= i != victim && dp_has(i, victim);
		cr_expect(linked, "links to a silent peer are kept until dead_ms");
	}
	run_ms(6000);
	for (int i = 1; i < 7; i++)
		cr_expect(i == victim || !dp_has(i, victim), "relay %d dropped the dead peer", i);
	cr_expect_eq(reachable(victim == 1 ? 2 : 1), members(), "connected again without it");
	free_relays();
}

Test(control_peers, bye_drops_the_links_at_once)
{
	make_relays(3, base_cfg());
	serve_all(1, 3);
	run_ms(3000);
	cr_assert(dp_has(1, 2));
	rly_ctl_peers_shutdown(R[2].p);
	R[2].cut = 0;
	run_ms(20);
	cr_expect(!dp_has(1, 2), "BYE ends the link well before dead_ms");
	free_relays();
}

Test(control_peers, a_stream_nobody_serves_any_more_is_left_after_the_linger)
{
	struct rly_ctl_peers_cfg c = base_cfg();

	c.linger_ms = 2000;
	make_relays(3, c);
	serve_all(1, 3);
	run_ms(3000);
	cr_assert(dp_has(1, 2));
	R[2].local = 0;
	run_ms(3000);
	cr_expect(!info_of(2).member, "relay 2 left");
	cr_expect(!dp_has(1, 2) && !dp_has(2, 1), "and its links are gone on both ends");
	free_relays();
}

Test(control_peers, peer_messages_with_a_wrong_token_or_no_session_are_refused)
{
	struct rly_pkt_rec rec;
	struct rly_wire_peer_link b;
	uint64_t before;

	make_relays(2, base_cfg());
	serve_all(0, 2);
	run_ms(1000);
	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, S1, 16);
	b.kind = RLY_LINK_JOIN;
	rly_be64_store(&b.request_id, 9);
	memset(b.token, 0x77, sizeof(b.token));
	memset(&rec, 0, sizeof(rec));
	rec.ip_be = R[1].ip_be;
	rec.udp_port_be = R[1].port_be;
	memcpy(rec.mac, R[1].mac, 6);
	rec.len = (uint16_t)rly_wire_build_control(rec.data, sizeof(rec.data), RLY_MSG_PEER_JOIN, &b);
	before = sent_by_type[RLY_MSG_PEER_JOIN];
	rly_ctl_peers_on_packet(R[0].p, &rec, now_ms);
	cr_expect_eq(sent_by_type[RLY_MSG_PEER_JOIN], before, "nothing answers a wrong token");
	/* From an address with no session at all. */
	rec.ip_be = htonl(0x0a0000fe);
	rly_ctl_peers_on_packet(R[0].p, &rec, now_ms);
	cr_expect_eq(sent_by_type[RLY_MSG_PEER_JOIN], before);
	free_relays();
}

Test(control_peers, a_proof_with_a_bad_signature_makes_no_session)
{
	struct rly_pkt_rec rec;
	struct rly_wire_peer_hello h;
	struct rly_identity other;

	make_relays(1, base_cfg());
	crypto_sign_keypair(other.pk, other.sk);
	/* A PROOF whose cookie is right cannot be made without the challenge; one with a made-up
	 * cookie is refused before the signature is even looked at, and makes no session. */
	memset(&h, 0, sizeof(h));
	h.kind = RLY_PEER_PROOF;
	rly_be64_store(&h.request_id, 1);
	rly_be64_store(&h.issued_ms, now_ms);
	memset(h.cookie, 1, sizeof(h.cookie));
	memset(h.token, 2, sizeof(h.token));
	memcpy(h.sender, other.pk, RLY_ID_LEN);
	memset(h.sig, 3, sizeof(h.sig));
	memset(&rec, 0, sizeof(rec));
	rec.ip_be = htonl(0x0a000063);
	rec.udp_port_be = htons(4747);
	memcpy(rec.mac, R[0].mac, 6);
	rec.len = (uint16_t)rly_wire_build_control(rec.data, sizeof(rec.data), RLY_MSG_PEER_HELLO, &h);
	rly_ctl_peers_on_packet(R[0].p, &rec, now_ms);
	cr_expect_eq(rly_ctl_peers_sessions_up(R[0].p), 0);
	free_relays();
}

Test(control_peers, a_publisher_only_relay_joins_the_overlay_of_what_it_publishes)
{
	struct rly_pkt_rec rec;
	struct rly_wire_msg_hdr *h = (void *)rec.data;

	make_relays(3, base_cfg());
	serve_all(2, 3); /* relay 2 has a subscriber */
	memset(&rec, 0, sizeof(rec));
	rec.flags = RLY_PKT_F_PUBLISHED; /* relay 1 sees a local publisher */
	rec.ip_be = htonl(0xc0a80005);
	rec.udp_port_be = htons(40000);
	rec.len = sizeof(*h);
	memcpy(h->stream_key, S1, 16);
	rly_ctl_peers_on_packet(R[1].p, &rec, now_ms);
	run_ms(3000);
	cr_expect(info_of(1).member);
	cr_expect(dp_has(1, 2) && dp_has(2, 1), "the publisher's relay links to the subscriber's");
	free_relays();
}

Test(control_peers, a_seed_pinned_to_an_identity_is_accepted_only_with_that_identity)
{
	pin_seed = 1;
	make_relays(2, base_cfg());
	run_ms(300);
	cr_expect_eq(rly_ctl_peers_sessions_up(R[1].p), 1, "the right key: up");
	free_relays();
	pin_seed = 2;
	make_relays(2, base_cfg());
	run_ms(300);
	cr_expect_eq(rly_ctl_peers_sessions_up(R[1].p), 0, "another key answered: refused");
	free_relays();
	pin_seed = 0;
}
