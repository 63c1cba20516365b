/* SPDX-License-Identifier: Apache-2.0 */
/*
 * overlay-sim: a discrete-event simulation of one stream's relay overlay (issue 5), Plumtree with
 * gossipsub-style IHAVE summaries, at 1,000 to 100,000 relays. README.md in this folder states the
 * model and every detail chosen here; this file follows it.
 *
 * Speed: at 100,000 relays a stream of 1 ms messages makes about 100 deliveries per simulated
 * microsecond, so events live in a timing wheel of 1 us buckets (each a FIFO list of 16-event
 * chunks, so a run is deterministic for a seed) with a binary heap only for the rare timers beyond
 * the wheel's horizon (failure detection, lookups). Chunks come from one pool that grows by
 * doubling; nothing is allocated per message.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/histogram.h"

#define NONE	     UINT32_MAX
#define MAX_PUBS     16
#define MAX_DEGREE   32
#define LOOKUP_SIZE  16
#define WHEEL_BITS   18 /* 262 ms of 1 us buckets: longer than any link latency or T_miss */
#define WHEEL	     (1u << WHEEL_BITS)
#define WHEEL_MASK   (WHEEL - 1)
#define DUP_CONVERGE 0.01 /* a message "still floods" above 1 duplicate per 100 deliveries */

enum ev_type {
	EV_PUBLISH,
	EV_MSG,
	EV_PRUNE,
	EV_GRAFT,
	EV_IWANT,
	EV_IHAVE,
	EV_IHAVE_TICK,
	EV_MISS_TIMER,
	EV_KILL,
	EV_DETECT,
	EV_JOIN_START,
	EV_JOIN_REQ,
	EV_JOIN_REPLY,
	EV_LEAVE,
};

#define F_REPAIR 1 /* EV_MSG: an IWANT answer, or forwarded from one within --flag-hops */
#define F_LATE	 2 /* EV_MSG, statistics only: an IWANT answer or forwarded from one, any hops */

struct ev {
	uint32_t node; /* the relay it happens at */
	uint32_t from; /* the relay that sent it */
	uint32_t seq;
	uint32_t aux;
	uint8_t type;
	uint8_t pub;
	uint8_t hops;
	uint8_t flags;
};

struct heap_ent {
	int64_t t;
	uint64_t order; /* ties broken by insertion order, for determinism */
	struct ev ev;
};

#define CHUNK 16

struct chunk {
	uint32_t next;
	uint16_t n, rd;
	struct ev ev[CHUNK];
};

struct link {
	uint32_t peer;
	uint32_t lat;	/* one-way, us, drawn once when the link forms, the same both ways */
	uint32_t eager; /* bit p: eager for publisher p; all bits move together unless per-chain */
	uint32_t hold_ms;  /* --prune-guard: no PRUNE from this end before then (a graft's hold) */
	uint32_t first_ms; /* --first-guard: when it last brought a first copy, + 1 (0: never) */
};

#define ALL_EAGER 0xffffu

/* One relay's view of one publisher chain. */
struct chain {
	int32_t contig;	   /* every seq below this has been received */
	int32_t max_seq;   /* highest seq received, -1 before the first */
	int32_t miss_high; /* the IHAVE that armed the miss timer */
	uint32_t miss_from;
	int32_t armed_max; /* max_seq when the miss timer was armed */
	int32_t req_high;  /* highest seq asked for by IWANT, and when */
	int32_t last_rep;  /* highest seq whose first copy came by repair, -1 none */
	int64_t req_at;
	uint8_t miss_pending;
};

struct relay {
	uint8_t alive;
	uint8_t deg;
	uint8_t joining;
	uint8_t cand_n;
	uint8_t cand_next;
	uint8_t missed; /* received a repaired first copy after the kill */
	uint16_t join_rounds;
	uint32_t parent; /* who sent the first copy of publisher 0's latest message */
	uint32_t delivered;
	int64_t first_push; /* first copy of a post-kill message that came by push, 0 before */
};

struct msg_stat {
	uint32_t first; /* relays that received it (publisher's relay excluded) */
	uint32_t dup;
	uint32_t rep;		     /* first copies that came by repair */
	uint32_t first_pre, dup_pre; /* the same, counted only before the kill */
};

struct params {
	uint32_t n, d, dmax, pubs, m, seed;
	bool wan, json, check, break_repair, kill_tree;
	double kill_pct;
	int64_t interval, kill_at, t_ihave, t_miss, t_dead, t_ka, proc, drain;
	double dup_bound;
	bool m_given, per_chain, join_lazy, prune_guard, graft_on_stall, first_guard;
	uint32_t flag_hops;
};

struct sim {
	struct params p;
	uint64_t rng[4];
	int64_t now, t_end, t_kill;
	uint32_t lat_lo, lat_span;
	int64_t lookup_delay, retry_gap;

	struct relay *relay;
	struct link *link;   /* n * dmax */
	struct chain *chain; /* n * pubs */
	uint64_t *have;	     /* n * pubs * words */
	uint64_t *answered;  /* the same shape: first copy was an IWANT answer to this relay */
	uint32_t words;
	uint32_t *cand; /* n * LOOKUP_SIZE */
	struct msg_stat *msg;
	uint32_t pub_relay[MAX_PUBS];

	struct chunk *ck;
	uint32_t ck_cap, ck_used, ck_free;
	uint32_t *head, *tail; /* chunk lists, one per wheel bucket */
	struct ev stage;
	int64_t staged_t;
	bool staged;
	uint64_t wheel_n;
	struct heap_ent *heap;
	uint32_t heap_n, heap_cap;
	uint64_t heap_order;

	/* results */
	struct rly_hist hops[MAX_PUBS], lat[MAX_PUBS], rep_delay;
	uint64_t events, sent_msg, sent_repair, lost_to_dead, dup_push, dup_repair;
	uint64_t n_prune, n_graft, n_iwant, n_ihave, n_join_ok, n_join_refused, n_join_gave_up;
	uint64_t n_boot_refused, degree_violations, missed_pairs, shortcuts, answered_first;
	int64_t last_repair_at;
	uint32_t killed, kill_seq, tree_victim, tree_victim_size;
	bool conn_after_kill;
	double eager_mean_pre, deg_mean_pre;
	uint32_t eager_max_pre, eager_links_pre;
	bool pre_measured;
};

/* xoshiro256**, seeded by splitmix64: the same stream for a seed on every machine. */
static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(struct sim *s)
{
	uint64_t *r = s->rng, res = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;

	r[2] ^= r[0];
	r[3] ^= r[1];
	r[1] ^= r[2];
	r[0] ^= r[3];
	r[2] ^= t;
	r[3] = rotl(r[3], 45);
	return res;
}

static void rng_seed(struct sim *s, uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		s->rng[i] = z ^ (z >> 31);
	}
}

static uint32_t rand_below(struct sim *s, uint32_t n)
{
	return (uint32_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n, sz);

	if (!p) {
		fprintf(stderr, "overlay-sim: out of memory (%zu x %zu)\n", n, sz);
		exit(2);
	}
	return p;
}

/* ---- event queue ---- */

static uint32_t chunk_alloc(struct sim *s)
{
	uint32_t c;

	if (s->ck_free != NONE) {
		c = s->ck_free;
		s->ck_free = s->ck[c].next;
	} else {
		if (s->ck_used == s->ck_cap) {
			s->ck_cap *= 2;
			s->ck = realloc(s->ck, (size_t)s->ck_cap * sizeof(*s->ck));
			if (!s->ck) {
				fprintf(stderr, "overlay-sim: out of memory (events)\n");
				exit(2);
			}
		}
		c = s->ck_used++;
	}
	s->ck[c].next = NONE;
	s->ck[c].n = 0;
	s->ck[c].rd = 0;
	return c;
}

static bool heap_less(const struct heap_ent *a, const struct heap_ent *b)
{
	return a->t < b->t || (a->t == b->t && a->order < b->order);
}

static void heap_push(struct sim *s, int64_t t, const struct ev *e)
{
	uint32_t i;

	if (s->heap_n == s->heap_cap) {
		s->heap_cap = s->heap_cap ? s->heap_cap * 2 : 1024;
		s->heap = realloc(s->heap, (size_t)s->heap_cap * sizeof(*s->heap));
		if (!s->heap) {
			fprintf(stderr, "overlay-sim: out of memory (heap)\n");
			exit(2);
		}
	}
	i = s->heap_n++;
	s->heap[i] = (struct heap_ent){t, s->heap_order++, *e};
	while (i > 0 && heap_less(&s->heap[i], &s->heap[(i - 1) / 2])) {
		struct heap_ent tmp = s->heap[i];
		s->heap[i] = s->heap[(i - 1) / 2];
		s->heap[(i - 1) / 2] = tmp;
		i = (i - 1) / 2;
	}
}

static struct heap_ent heap_pop(struct sim *s)
{
	struct heap_ent top = s->heap[0];
	uint32_t i = 0;

	s->heap[0] = s->heap[--s->heap_n];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < s->heap_n && heap_less(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->heap_n && heap_less(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		struct heap_ent tmp = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = tmp;
		i = m;
	}
	return top;
}

/* Appends to the bucket's last chunk: a bucket is read in order, from contiguous memory. */
static void place(struct sim *s, int64_t t, const struct ev *e)
{
	uint32_t b = (uint32_t)t & WHEEL_MASK, c;

	if (t - s->now >= WHEEL) {
		heap_push(s, t, e);
		return;
	}
	c = s->tail[b];
	if (c == NONE || s->ck[c].n == CHUNK) {
		uint32_t nc = chunk_alloc(s);
		if (c == NONE)
			s->head[b] = nc;
		else
			s->ck[c].next = nc;
		s->tail[b] = nc;
		c = nc;
	}
	s->ck[c].ev[s->ck[c].n++] = *e;
	s->wheel_n++;
}

static void commit(struct sim *s)
{
	if (s->staged) {
		s->staged = false;
		place(s, s->staged_t, &s->stage);
	}
}

/* Returns the new event with type and node set, for the caller to fill in; it is queued at the
 * next post or when the current handler returns. */
static struct ev *post(struct sim *s, int64_t t, uint8_t type, uint32_t node)
{
	commit(s);
	s->stage = (struct ev){.node = node, .from = NONE, .type = type};
	s->staged_t = t < s->now ? s->now : t;
	s->staged = true;
	return &s->stage;
}

/* ---- overlay state ---- */

static struct link *links_of(struct sim *s, uint32_t r)
{
	return &s->link[(size_t)r * s->p.dmax];
}

static int link_find(struct sim *s, uint32_t r, uint32_t peer)
{
	struct link *l = links_of(s, r);

	for (int i = 0; i < s->relay[r].deg; i++)
		if (l[i].peer == peer)
			return i;
	return -1;
}

static void link_add(struct sim *s, uint32_t r, uint32_t peer, uint32_t lat, uint32_t eager)
{
	if (s->relay[r].deg >= s->p.dmax) {
		s->degree_violations++;
		return;
	}
	/* 8f6834a: a link made eager is held 500 ms before it may be pruned. */
	uint32_t hold = s->p.first_guard && eager ? (uint32_t)(s->now / 1000 + 500) : 0;

	links_of(s, r)[s->relay[r].deg++] = (struct link){peer, lat, eager, hold, 0};
}

/* Links made after start-up: eager as specified, or lazy (--new-links lazy) so that a join does
 * not reshape a working tree; IHAVE grafts the new link where it is needed. */
static uint32_t new_link_state(const struct sim *s)
{
	return s->p.join_lazy ? 0 : ALL_EAGER;
}

static void link_del(struct sim *s, uint32_t r, int i)
{
	struct link *l = links_of(s, r);

	l[i] = l[--s->relay[r].deg];
}

static uint32_t lat_draw(struct sim *s)
{
	return s->lat_lo + rand_below(s, s->lat_span + 1);
}

static struct chain *chain_of(struct sim *s, uint32_t r, uint32_t pub)
{
	return &s->chain[(size_t)r * s->p.pubs + pub];
}

static uint64_t *have_of(struct sim *s, uint32_t r, uint32_t pub)
{
	return &s->have[((size_t)r * s->p.pubs + pub) * s->words];
}

static bool bit_test(const uint64_t *b, uint32_t i)
{
	return (b[i >> 6] >> (i & 63)) & 1;
}

static int64_t pub_time(struct sim *s, uint32_t pub, uint32_t seq)
{
	/* Publishers are spread evenly over one interval so their messages interleave. */
	return (int64_t)seq * s->p.interval + (int64_t)pub * s->p.interval / s->p.pubs;
}

/* Up to LOOKUP_SIZE distinct random live members, other than r and its neighbours: what a DHT
 * lookup of the stream key returns, after the joiner drops those it already knows. */
static void lookup(struct sim *s, uint32_t r)
{
	uint32_t *c = &s->cand[(size_t)r * LOOKUP_SIZE];
	uint8_t n = 0;

	for (int tries = 0; tries < 8 * LOOKUP_SIZE && n < LOOKUP_SIZE; tries++) {
		uint32_t x = rand_below(s, s->p.n);
		bool dup = x == r || !s->relay[x].alive || link_find(s, r, x) >= 0;
		for (int i = 0; i < n && !dup; i++)
			dup = c[i] == x;
		if (!dup)
			c[n++] = x;
	}
	s->relay[r].cand_n = n;
	s->relay[r].cand_next = 0;
}

/* Start-up: every relay joins in a random order, instantly (the overlay exists before the stream
 * starts). The same rules as at run time: JOIN to a full relay is refused. */
static void bootstrap(struct sim *s)
{
	uint32_t *order = xcalloc(s->p.n, sizeof(*order));

	for (uint32_t i = 0; i < s->p.n; i++)
		order[i] = i;
	for (uint32_t i = s->p.n - 1; i > 0; i--) {
		uint32_t j = rand_below(s, i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	for (uint32_t k = 0; k < s->p.n; k++) {
		uint32_t r = order[k];
		for (int round = 0; round < 8 && s->relay[r].deg < s->p.d; round++) {
			lookup(s, r);
			for (int i = 0; i < s->relay[r].cand_n && s->relay[r].deg < s->p.d; i++) {
				uint32_t c = s->cand[(size_t)r * LOOKUP_SIZE + i];
				if (link_find(s, r, c) >= 0)
					continue;
				if (s->relay[c].deg >= s->p.dmax) {
					s->n_boot_refused++;
					continue;
				}
				uint32_t lat = lat_draw(s);
				link_add(s, r, c, lat, ALL_EAGER);
				link_add(s, c, r, lat, ALL_EAGER);
			}
		}
	}
	free(order);
}

/* ---- protocol ---- */

static void send_msg(struct sim *s, uint32_t to, uint32_t from, uint32_t lat, uint32_t pub,
		     uint32_t seq, uint32_t hops, uint8_t flags)
{
	struct ev *e = post(s, s->now + s->p.proc + lat, EV_MSG, to);

	e->from = from;
	e->pub = (uint8_t)pub;
	e->seq = seq;
	e->hops = hops > 255 ? 255 : (uint8_t)hops;
	e->flags = flags;
	if (flags & F_LATE)
		s->sent_repair++;
	else
		s->sent_msg++;
}

static void send_ctl(struct sim *s, uint8_t type, uint32_t to, uint32_t from, uint32_t lat,
		     uint32_t pub)
{
	struct ev *e = post(s, s->now + s->p.proc + lat, type, to);

	e->from = from;
	e->pub = (uint8_t)pub;
}

/* The eager bits a PRUNE or GRAFT about publisher pub's chain moves: all of them (the algorithm
 * as specified: one tree per stream) or pub's alone (--trees per-chain: one tree per chain). */
static uint32_t chain_mask(const struct sim *s, uint32_t pub)
{
	return s->p.per_chain ? 1u << pub : ALL_EAGER;
}

/* A repaired copy is forwarded like a fresh one (the relay's own eager subtree missed it too),
 * but keeps its repair flag: a neighbour that already has it must not take the duplicate as a
 * second path and prune, or a relay that just grafted would prune the link it grafted. */
static void forward(struct sim *s, uint32_t r, uint32_t except, uint32_t pub, uint32_t seq,
		    uint32_t hops, uint8_t flags)
{
	struct link *l = links_of(s, r);

	for (int i = 0; i < s->relay[r].deg; i++)
		if ((l[i].eager >> pub & 1) && l[i].peer != except)
			send_msg(s, l[i].peer, r, l[i].lat, pub, seq, hops, flags);
}

/* --prune-guard, the rules of control/overlay.c: never prune our last eager link (we would hear
 * only summaries), never within GRAFT_HOLD_MS (1 s) of a graft on that link. */
static bool prune_guarded(struct sim *s, uint32_t r, int li, uint32_t pub)
{
	const struct link *l = links_of(s, r);
	int eager = 0;

	if (!s->p.prune_guard || !(l[li].eager >> pub & 1))
		return false;
	if (s->now / 1000 < l[li].hold_ms)
		return true;
	/* 8f6834a: nor while it brought the first copy of something in the last second: one eager
	 * set serves every publisher, and this link may be another chain's only path. */
	if (s->p.first_guard && l[li].first_ms && s->now / 1000 + 1 - l[li].first_ms < 1000)
		return true;
	for (int i = 0; i < s->relay[r].deg; i++)
		eager += l[i].eager >> pub & 1;
	return eager < 2;
}

static void graft_hold(struct sim *s, struct link *l)
{
	l->hold_ms = (uint32_t)(s->now / 1000 + 1000);
}

/* Marks seq received; false if it already was (a duplicate). */
static bool deliver(struct sim *s, uint32_t r, uint32_t pub, uint32_t seq)
{
	uint64_t *b = have_of(s, r, pub);
	struct chain *c = chain_of(s, r, pub);

	if (bit_test(b, seq))
		return false;
	b[seq >> 6] |= 1ull << (seq & 63);
	while ((uint32_t)c->contig < s->p.m && bit_test(b, (uint32_t)c->contig))
		c->contig++;
	if ((int32_t)seq > c->max_seq)
		c->max_seq = (int32_t)seq;
	s->relay[r].delivered++;
	return true;
}

static void on_publish(struct sim *s, const struct ev *e)
{
	uint32_t r = e->node, seq = e->seq;

	if (seq + 1 < s->p.m) {
		struct ev *n = post(s, pub_time(s, e->pub, seq + 1), EV_PUBLISH, r);
		n->pub = e->pub;
		n->seq = seq + 1;
	}
	deliver(s, r, e->pub, seq);
	forward(s, r, NONE, e->pub, seq, 1, 0);
}

static void on_msg(struct sim *s, const struct ev *e)
{
	uint32_t r = e->node;
	struct msg_stat *ms = &s->msg[(size_t)e->pub * s->p.m + e->seq];
	bool repair = e->flags & F_REPAIR;
	int li = link_find(s, r, e->from);

	bool pre = s->t_kill < 0 || s->now < s->t_kill;

	if (!deliver(s, r, e->pub, e->seq)) {
		ms->dup++;
		ms->dup_pre += pre;
		if (repair) {
			s->dup_repair++;
			return;
		}
		s->dup_push++;
		/* An eager copy after an IWANT answer: the repair only beat a slower path. */
		uint64_t *a =
		    &s->answered[((size_t)r * s->p.pubs + e->pub) * s->words + (e->seq >> 6)];
		if (*a >> (e->seq & 63) & 1) {
			*a &= ~(1ull << (e->seq & 63));
			s->shortcuts++;
		}
		/* Plumtree: a duplicate pushed over a link means a second path; keep it as a lazy
		 * link (degree unchanged) and tell the sender to do the same. The PRUNE goes out
		 * even if this end already holds the link lazy: the sender pushed, so it holds it
		 * eager, which happens when a PRUNE and a GRAFT cross (README: link state races).
		 */
		if (li >= 0 && !prune_guarded(s, r, li, e->pub)) {
			links_of(s, r)[li].eager &= ~chain_mask(s, e->pub);
			send_ctl(s, EV_PRUNE, e->from, r, links_of(s, r)[li].lat, e->pub);
			s->n_prune++;
		}
		return;
	}
	ms->first++;
	ms->first_pre += pre;
	if (li >= 0)
		links_of(s, r)[li].first_ms = (uint32_t)(s->now / 1000 + 1);
	rly_hist_record(&s->lat[e->pub], (uint64_t)(s->now - pub_time(s, e->pub, e->seq)));
	if (repair && e->hops == 0 && s->t_kill >= 0 && s->now >= s->t_kill)
		s->answered_first++;
	if (repair && e->hops == 0)
		s->answered[((size_t)r * s->p.pubs + e->pub) * s->words + (e->seq >> 6)] |=
		    1ull << (e->seq & 63);
	/* "Missed" means the first copy came through a repair, here or upstream. */
	if (e->flags & F_LATE) {
		struct chain *c = chain_of(s, r, e->pub);
		ms->rep++;
		if ((int32_t)e->seq > c->last_rep)
			c->last_rep = (int32_t)e->seq;
		rly_hist_record(&s->rep_delay, (uint64_t)(s->now - pub_time(s, e->pub, e->seq)));
		if (s->t_kill >= 0 && s->now >= s->t_kill) {
			s->relay[r].missed = 1;
			s->missed_pairs++;
			s->last_repair_at = s->now;
		}
	} else {
		rly_hist_record(&s->hops[e->pub], e->hops);
		if (e->seq >= s->kill_seq && !s->relay[r].first_push)
			s->relay[r].first_push = s->now;
		if (e->pub == 0)
			s->relay[r].parent = e->from;
	}
	forward(s, r, e->from, e->pub, e->seq, e->hops + 1u,
		(e->flags & F_LATE) | (repair && e->hops < s->p.flag_hops ? F_REPAIR : 0));
}

static void on_ihave_tick(struct sim *s, const struct ev *e)
{
	uint32_t r = e->node;
	struct link *l = links_of(s, r);

	if (s->now + s->p.t_ihave <= s->t_end)
		post(s, s->now + s->p.t_ihave, EV_IHAVE_TICK, r);
	for (int i = 0; i < s->relay[r].deg; i++) {
		for (uint32_t p = 0; p < s->p.pubs; p++) {
			int32_t hi = chain_of(s, r, p)->max_seq;
			if (hi < 0 || (l[i].eager >> p & 1))
				continue;
			struct ev *n = post(s, s->now + s->p.proc + l[i].lat, EV_IHAVE, l[i].peer);
			n->from = r;
			n->pub = (uint8_t)p;
			n->seq = (uint32_t)hi;
			s->n_ihave++;
		}
	}
}

static void on_ihave(struct sim *s, const struct ev *e)
{
	struct chain *c = chain_of(s, e->node, e->pub);

	if (c->contig > (int32_t)e->seq || c->miss_pending)
		return;
	/* The eager copy may still be on its way: wait T_miss before asking. */
	c->miss_pending = 1;
	c->armed_max = c->max_seq;
	c->miss_from = e->from;
	c->miss_high = (int32_t)e->seq;
	struct ev *n = post(s, s->now + s->p.t_miss, EV_MISS_TIMER, e->node);
	n->pub = e->pub;
}

static void send_iwant(struct sim *s, uint32_t r, uint32_t to, uint32_t lat, uint32_t pub,
		       uint32_t lo, uint32_t hi)
{
	struct ev *n = post(s, s->now + s->p.proc + lat, EV_IWANT, to);

	n->from = r;
	n->pub = (uint8_t)pub;
	n->seq = lo;
	n->aux = hi;
	s->n_iwant++;
}

static void on_miss_timer(struct sim *s, const struct ev *e)
{
	uint32_t r = e->node;
	struct chain *c = chain_of(s, r, e->pub);
	const uint64_t *b = have_of(s, r, e->pub);
	int li;
	int32_t lo;
	bool full;

	c->miss_pending = 0;
	if (c->contig > c->miss_high || s->p.break_repair)
		return;
	/* --graft-on-stall: nothing is missing below what we have and pushes still arrive, so the
	 * announcer is only ahead of us on a faster path; leave the tree alone. */
	if (s->p.graft_on_stall && c->contig > c->max_seq && c->max_seq > c->armed_max)
		return;
	li = link_find(s, r, c->miss_from);
	if (li < 0)
		return; /* the announcer is gone; the next IHAVE re-arms the timer */
	/* GRAFT even if this end holds the link eager: the announcer sent an IHAVE, so it holds
	 * the link lazy and pushes nothing (the other half of a crossed PRUNE and GRAFT). */
	struct link *l = &links_of(s, r)[li];
	l->eager |= chain_mask(s, e->pub);
	graft_hold(s, l);
	send_ctl(s, EV_GRAFT, l->peer, r, l->lat, e->pub);
	s->n_graft++;
	/* Do not ask twice for what is already on its way (one RTT is at most 160 ms). */
	full = s->now - c->req_at >= s->retry_gap;
	lo = c->contig;
	if (!full && c->req_high + 1 > lo)
		lo = c->req_high + 1;
	for (int32_t q = lo; q <= c->miss_high;) {
		if (bit_test(b, (uint32_t)q)) {
			q++;
			continue;
		}
		int32_t run = q;
		while (q <= c->miss_high && !bit_test(b, (uint32_t)q))
			q++;
		/* A hole that reaches the announced high is asked for open-ended: the announcer
		 * answers up to its own newest, and pushes what comes after over the link just
		 * grafted, so nothing published while the timer ran is left behind. */
		send_iwant(s, r, l->peer, l->lat, e->pub, (uint32_t)run,
			   q > c->miss_high ? UINT32_MAX : (uint32_t)(q - 1));
	}
	/* Holes asked for less than retry_gap ago are left alone; the clock restarts only with a
	 * full request, so a hole the responder could not fill is asked for again. */
	if (full) {
		c->req_at = s->now;
		c->req_high = c->miss_high;
	} else if (c->miss_high > c->req_high) {
		c->req_high = c->miss_high;
	}
}

static void on_iwant(struct sim *s, const struct ev *e)
{
	uint32_t r = e->node;
	int li = link_find(s, r, e->from);
	const uint64_t *b = have_of(s, r, e->pub);

	if (li < 0)
		return;
	/* History holds every message (the model's assumption); a relay answers only with what it
	 * has itself received. */
	int32_t hi = chain_of(s, r, e->pub)->max_seq;

	for (uint32_t q = e->seq; (int32_t)q <= hi && q <= e->aux; q++)
		if (bit_test(b, q))
			send_msg(s, e->from, r, links_of(s, r)[li].lat, e->pub, q, 0,
				 F_REPAIR | F_LATE);
}

static void on_prune_graft(struct sim *s, const struct ev *e)
{
	int li = link_find(s, e->node, e->from);

	if (li < 0)
		return;
	if (e->type == EV_GRAFT) {
		links_of(s, e->node)[li].eager |= chain_mask(s, e->pub);
		graft_hold(s, &links_of(s, e->node)[li]);
	} else {
		links_of(s, e->node)[li].eager &= ~chain_mask(s, e->pub);
	}
}

static void join_start(struct sim *s, uint32_t r)
{
	if (s->relay[r].joining)
		return;
	s->relay[r].joining = 1;
	s->relay[r].join_rounds = 0;
	post(s, s->now + s->lookup_delay, EV_JOIN_START, r);
}

static void join_next(struct sim *s, uint32_t r)
{
	struct relay *y = &s->relay[r];

	while (y->cand_next < y->cand_n) {
		uint32_t c = s->cand[(size_t)r * LOOKUP_SIZE + y->cand_next++];
		if (link_find(s, r, c) >= 0)
			continue;
		uint32_t lat = lat_draw(s);
		struct ev *n = post(s, s->now + s->p.proc + lat, EV_JOIN_REQ, c);
		n->from = r;
		n->aux = lat;
		return;
	}
	if (++y->join_rounds < 20) {
		post(s, s->now + s->lookup_delay, EV_JOIN_START, r);
	} else {
		y->joining = 0;
		s->n_join_gave_up++;
	}
}

static void on_join_start(struct sim *s, const struct ev *e)
{
	uint32_t r = e->node;

	if (s->relay[r].deg >= s->p.d) {
		s->relay[r].joining = 0;
		return;
	}
	lookup(s, r);
	join_next(s, r);
}

static void on_join_req(struct sim *s, const struct ev *e)
{
	uint32_t c = e->node, y = e->from;
	bool ok = s->relay[c].deg < s->p.dmax && link_find(s, c, y) < 0;
	struct ev *n;

	if (ok)
		link_add(s, c, y, e->aux, new_link_state(s));
	else
		s->n_join_refused++;
	n = post(s, s->now + s->p.proc + e->aux, EV_JOIN_REPLY, y);
	n->from = c;
	n->aux = e->aux;
	n->seq = ok;
}

static void on_join_reply(struct sim *s, const struct ev *e)
{
	uint32_t y = e->node, c = e->from;

	if (e->seq) {
		if (s->relay[y].deg < s->p.dmax && link_find(s, y, c) < 0) {
			link_add(s, y, c, e->aux, new_link_state(s));
			s->n_join_ok++;
		} else {
			send_ctl(s, EV_LEAVE, c, y, e->aux,
				 0); /* filled up by inbound joins meanwhile */
		}
	}
	if (s->relay[y].deg < s->p.d) {
		join_next(s, y);
	} else {
		s->relay[y].joining = 0;
	}
}

static void drop_link_to(struct sim *s, uint32_t r, uint32_t peer)
{
	int li = link_find(s, r, peer);

	if (li < 0)
		return;
	link_del(s, r, li);
	if (s->relay[r].deg < s->p.d)
		join_start(s, r);
}

static bool connected(struct sim *s, bool eager_only);
static void measure_eager(struct sim *s);

static void pick_tree_victim(struct sim *s)
{
	uint32_t *size = xcalloc(s->p.n, sizeof(*size));
	uint32_t best = NONE;

	/* Walk up publisher 0's parent pointers from each relay; the depth cap guards against a
	 * cycle formed by pointers from different messages. */
	for (uint32_t r = 0; r < s->p.n; r++) {
		uint32_t x = s->relay[r].parent;
		for (int d = 0; x != NONE && d < 10000; d++) {
			size[x]++;
			x = s->relay[x].parent;
		}
	}
	for (uint32_t r = 0; r < s->p.n; r++) {
		bool is_pub = false;
		for (uint32_t p = 0; p < s->p.pubs; p++)
			is_pub |= s->pub_relay[p] == r;
		if (!is_pub && (best == NONE || size[r] > size[best]))
			best = r;
	}
	s->tree_victim = best;
	s->tree_victim_size = size[best];
	free(size);
}

static void kill_relay(struct sim *s, uint32_t v)
{
	struct link *l = links_of(s, v);

	s->relay[v].alive = 0;
	s->killed++;
	/* Keepalives every t_ka; the last one left v at a random phase before the kill, and its
	 * neighbours declare v dead t_dead after that keepalive arrived. */
	for (int i = 0; i < s->relay[v].deg; i++) {
		int64_t phase = rand_below(s, (uint32_t)s->p.t_ka);
		struct ev *n =
		    post(s, s->now - phase + l[i].lat + s->p.t_dead, EV_DETECT, l[i].peer);
		n->from = v;
	}
}

static void on_kill(struct sim *s)
{
	measure_eager(s);
	s->kill_seq = (uint32_t)((s->now + s->p.interval - 1) / s->p.interval);
	if (s->p.kill_tree) {
		pick_tree_victim(s);
		kill_relay(s, s->tree_victim);
	} else {
		uint32_t want = (uint32_t)((double)s->p.n * s->p.kill_pct / 100.0 + 0.5);
		while (s->killed < want) {
			uint32_t v = rand_below(s, s->p.n);
			bool is_pub = false;
			for (uint32_t p = 0; p < s->p.pubs; p++)
				is_pub |= s->pub_relay[p] == v;
			if (!is_pub && s->relay[v].alive)
				kill_relay(s, v);
		}
	}
	s->conn_after_kill = connected(s, false);
}

static void handle(struct sim *s, const struct ev *e)
{
	s->events++;
	if (e->type != EV_KILL && !s->relay[e->node].alive) {
		if (e->type == EV_MSG)
			s->lost_to_dead++;
		if (e->type == EV_JOIN_REQ) {
			/* No answer: the joiner gives up on this candidate after a timeout. */
			struct ev *n = post(s, s->now + s->p.t_ka, EV_JOIN_REPLY, e->from);
			n->from = e->node;
		}
		return;
	}
	switch (e->type) {
	case EV_PUBLISH:
		on_publish(s, e);
		break;
	case EV_MSG:
		on_msg(s, e);
		break;
	case EV_PRUNE:
	case EV_GRAFT:
		on_prune_graft(s, e);
		break;
	case EV_IWANT:
		on_iwant(s, e);
		break;
	case EV_IHAVE:
		on_ihave(s, e);
		break;
	case EV_IHAVE_TICK:
		on_ihave_tick(s, e);
		break;
	case EV_MISS_TIMER:
		on_miss_timer(s, e);
		break;
	case EV_KILL:
		on_kill(s);
		break;
	case EV_DETECT:
		if (!s->relay[e->from].alive)
			drop_link_to(s, e->node, e->from);
		break;
	case EV_JOIN_START:
		on_join_start(s, e);
		break;
	case EV_JOIN_REQ:
		on_join_req(s, e);
		break;
	case EV_JOIN_REPLY:
		on_join_reply(s, e);
		break;
	case EV_LEAVE:
		drop_link_to(s, e->node, e->from);
		break;
	}
}

/* The event loop is bound by cache misses on relay state; touching the state of a chunk's 16
 * events at once lets those misses overlap (twice as fast at 100,000 relays). */
static void prefetch_chunk(struct sim *s, const struct chunk *c)
{
	for (uint32_t i = c->rd; i < c->n; i++) {
		const struct ev *e = &c->ev[i];
		__builtin_prefetch(&s->relay[e->node]);
		__builtin_prefetch(links_of(s, e->node));
		if (e->type == EV_MSG || e->type == EV_IHAVE) {
			__builtin_prefetch(chain_of(s, e->node, e->pub));
			__builtin_prefetch(&have_of(s, e->node, e->pub)[e->seq >> 6]);
		}
	}
}

static void run(struct sim *s)
{
	commit(s);
	while (s->now <= s->t_end && (s->wheel_n || s->heap_n)) {
		uint32_t b;

		if (!s->wheel_n && s->heap[0].t > s->now)
			s->now = s->heap[0].t; /* nothing in the wheel: jump to the next timer */
		while (s->heap_n && s->heap[0].t - s->now < WHEEL) {
			struct heap_ent h = heap_pop(s);
			place(s, h.t, &h.ev);
		}
		b = (uint32_t)s->now & WHEEL_MASK;
		while (s->head[b] != NONE) {
			uint32_t c = s->head[b];

			prefetch_chunk(s, &s->ck[c]);
			while (s->ck[c].rd < s->ck[c].n) {
				struct ev e = s->ck[c].ev[s->ck[c].rd++];
				s->wheel_n--;
				handle(s, &e);
				commit(s);
			}
			s->head[b] = s->ck[c].next;
			if (s->head[b] == NONE)
				s->tail[b] = NONE;
			s->ck[c].next = s->ck_free;
			s->ck_free = c;
		}
		s->now++;
	}
}

/* ---- measurements ---- */

static bool connected(struct sim *s, bool eager_only)
{
	uint32_t *stack = xcalloc(s->p.n, sizeof(*stack)), sp = 0, seen_n = 0, live = 0,
		 start = NONE;
	uint8_t *seen = xcalloc(s->p.n, 1);

	for (uint32_t r = 0; r < s->p.n; r++)
		if (s->relay[r].alive) {
			live++;
			if (start == NONE)
				start = r;
		}
	if (start != NONE) {
		seen[start] = 1;
		stack[sp++] = start;
		seen_n = 1;
	}
	while (sp) {
		uint32_t r = stack[--sp];
		struct link *l = links_of(s, r);
		for (int i = 0; i < s->relay[r].deg; i++) {
			uint32_t x = l[i].peer;
			if (seen[x] || !s->relay[x].alive || (eager_only && !(l[i].eager & 1)))
				continue;
			seen[x] = 1;
			seen_n++;
			stack[sp++] = x;
		}
	}
	free(stack);
	free(seen);
	return seen_n == live;
}

static void measure_eager(struct sim *s)
{
	uint64_t eager = 0, deg = 0, live = 0;

	s->eager_max_pre = 0;
	for (uint32_t r = 0; r < s->p.n; r++) {
		uint32_t e = 0;
		if (!s->relay[r].alive)
			continue;
		live++;
		for (int i = 0; i < s->relay[r].deg; i++)
			e += links_of(s, r)[i].eager & 1; /* publisher 0's tree */
		eager += e;
		deg += s->relay[r].deg;
		if (e > s->eager_max_pre)
			s->eager_max_pre = e;
	}
	s->eager_mean_pre = live ? (double)eager / (double)live : 0;
	s->deg_mean_pre = live ? (double)deg / (double)live : 0;
	s->eager_links_pre = (uint32_t)(eager / 2);
	s->pre_measured = true;
}

/* Duplicates per delivered message over seqs [lo, hi), all publishers together; with pre, only
 * copies that arrived before the kill, so repair traffic does not count against steady state. */
static double dup_ratio(struct sim *s, uint32_t lo, uint32_t hi, bool pre)
{
	uint64_t d = 0, f = 0;

	for (uint32_t p = 0; p < s->p.pubs; p++)
		for (uint32_t q = lo; q < hi && q < s->p.m; q++) {
			const struct msg_stat *ms = &s->msg[(size_t)p * s->p.m + q];
			d += pre ? ms->dup_pre : ms->dup;
			f += pre ? ms->first_pre : ms->first;
		}
	return f ? (double)d / (double)f : 0;
}

struct report {
	uint32_t steady_lo, steady_hi, converged;
	double dup0, dup10, dup_steady, dup_after_kill;
	uint64_t live, never, short_relays, missed_relays, resume_open;
	bool conn_end, eager_conn_end;
	struct rly_hist resume, first_push;
	int64_t repaired_by;
	uint32_t deg_min, deg_max;
	double deg_mean;
	uint64_t delivered_total;
};

static void analyse(struct sim *s, struct report *rp)
{
	uint32_t end = s->t_kill >= 0 ? s->kill_seq : s->p.m;

	memset(rp, 0, sizeof(*rp));
	rly_hist_init(&rp->resume);
	rly_hist_init(&rp->first_push);
	/* Steady state: the second half of the messages published before any kill. */
	rp->steady_lo = end / 2;
	rp->steady_hi = end;
	rp->dup0 = dup_ratio(s, 0, 1, true);
	rp->dup10 = dup_ratio(s, 0, 10, true);
	rp->dup_steady = dup_ratio(s, rp->steady_lo, rp->steady_hi, true);
	rp->dup_after_kill = s->t_kill >= 0 ? dup_ratio(s, s->kill_seq, s->p.m, false) : 0;
	for (uint32_t q = 0; q < end; q++)
		if (dup_ratio(s, q, q + 1, true) > DUP_CONVERGE)
			rp->converged = q + 1;
	rp->deg_min = UINT32_MAX;
	for (uint32_t r = 0; r < s->p.n; r++) {
		struct relay *y = &s->relay[r];
		if (!y->alive)
			continue;
		rp->live++;
		rp->deg_mean += y->deg;
		if (y->deg < rp->deg_min)
			rp->deg_min = y->deg;
		if (y->deg > rp->deg_max)
			rp->deg_max = y->deg;
		rp->delivered_total += y->delivered;
		if (y->delivered != s->p.pubs * s->p.m)
			rp->short_relays++;
		int64_t resume = -1;
		bool open = false;
		for (uint32_t p = 0; p < s->p.pubs; p++) {
			struct chain *c = chain_of(s, r, p);
			rp->never += s->p.m - (uint32_t)c->contig;
			if ((uint32_t)c->contig < s->p.m)
				open = true;
			if (y->missed && c->last_rep >= 0) {
				if ((uint32_t)c->last_rep + 1 >= s->p.m)
					open = true;
				else if (pub_time(s, p, (uint32_t)c->last_rep + 1) - s->t_kill >
					 resume)
					resume =
					    pub_time(s, p, (uint32_t)c->last_rep + 1) - s->t_kill;
			}
		}
		if (y->missed || open) {
			rp->missed_relays++;
			if (y->first_push)
				rly_hist_record(&rp->first_push,
						(uint64_t)(y->first_push - s->t_kill));
			if (open)
				rp->resume_open++;
			else if (resume >= 0)
				rly_hist_record(&rp->resume, (uint64_t)resume);
		}
	}
	rp->deg_mean = rp->live ? rp->deg_mean / (double)rp->live : 0;
	rp->conn_end = connected(s, false);
	rp->eager_conn_end = connected(s, true);
	rp->repaired_by = s->missed_pairs ? s->last_repair_at - s->t_kill : 0;
	if (!s->pre_measured)
		measure_eager(s);
}

static double ms(uint64_t us)
{
	return (double)us / 1000.0;
}

/* IHAVEs are per lazy link per T_ihave whatever the message rate, so a rate says more than a
 * ratio to deliveries. */
static double ihave_rate(const struct sim *s, const struct report *rp)
{
	return (double)s->n_ihave / (double)rp->live / ((double)s->t_end / 1e6);
}

static void print_text(struct sim *s, struct report *rp)
{
	const struct params *p = &s->p;

	printf("overlay-sim: relays=%u degree=%u max_degree=%u latency=%s (%.1f..%.1f ms one-way) "
	       "publishers=%u messages=%u interval=%.1f ms seed=%u\n",
	       p->n, p->d, p->dmax, p->wan ? "wan" : "dc", ms(s->lat_lo),
	       ms(s->lat_lo + s->lat_span), p->pubs, p->m, ms((uint64_t)p->interval), p->seed);
	printf("  T_ihave=%.0f ms T_miss=%.0f ms T_dead=%.0f ms keepalive=%.0f ms proc=%" PRId64
	       " us lookup=%u members, %.1f ms%s\n",
	       ms((uint64_t)p->t_ihave), ms((uint64_t)p->t_miss), ms((uint64_t)p->t_dead),
	       ms((uint64_t)p->t_ka), p->proc, LOOKUP_SIZE, ms((uint64_t)s->lookup_delay),
	       p->break_repair ? " BREAK-REPAIR (no GRAFT/IWANT)" : "");
	printf("overlay: degree mean %.2f min %u max %u (live relays at the end); bootstrap "
	       "refusals %" PRIu64 "; connected at end: %s\n",
	       rp->deg_mean, rp->deg_min, rp->deg_max, s->n_boot_refused,
	       rp->conn_end ? "yes" : "NO");
	for (uint32_t i = 0; i < p->pubs; i++) {
		printf("publisher %u at relay %u: hops mean %.2f p50 %" PRIu64 " p99 %" PRIu64
		       " max %" PRIu64 "; latency p50 %.2f p99 %.2f max %.2f ms\n",
		       i, s->pub_relay[i], rly_hist_mean(&s->hops[i]),
		       rly_hist_percentile(&s->hops[i], 50), rly_hist_percentile(&s->hops[i], 99),
		       s->hops[i].max, ms(rly_hist_percentile(&s->lat[i], 50)),
		       ms(rly_hist_percentile(&s->lat[i], 99)), ms(s->lat[i].max));
	}
	printf("duplicates per delivered message: msg 0 %.3f, msgs 0-9 %.3f, steady (msgs %u-%u) "
	       "%.4f; converged (<= %.2f) after %u messages\n",
	       rp->dup0, rp->dup10, rp->steady_lo, rp->steady_hi - 1, rp->dup_steady, DUP_CONVERGE,
	       rp->converged);
	printf("eager degree after convergence: mean %.2f max %u; eager links %u (a tree has %u); "
	       "link degree mean %.2f\n",
	       s->eager_mean_pre, s->eager_max_pre, s->eager_links_pre, p->n - 1, s->deg_mean_pre);
	printf("traffic per delivered message: pushes %.3f, repair copies %.4f, prune %.4f, "
	       "graft %.4f, iwant %.4f; IHAVE per relay per second %.1f\n",
	       (double)s->sent_msg / (double)rp->delivered_total,
	       (double)s->sent_repair / (double)rp->delivered_total,
	       (double)s->n_prune / (double)rp->delivered_total,
	       (double)s->n_graft / (double)rp->delivered_total,
	       (double)s->n_iwant / (double)rp->delivered_total, ihave_rate(s, rp));
	if (s->t_kill >= 0) {
		if (p->kill_tree)
			printf("kill: relay %u (eager-tree subtree of %u relays) at %.0f ms (msg "
			       "%u)\n",
			       s->tree_victim, s->tree_victim_size, ms((uint64_t)s->t_kill),
			       s->kill_seq);
		else
			printf("kill: %.1f %% (%u relays) at %.0f ms (msg %u)\n", p->kill_pct,
			       s->killed, ms((uint64_t)s->t_kill), s->kill_seq);
		printf("  connected right after the kill: %s; at end: %s (eager links alone: %s)\n",
		       s->conn_after_kill ? "yes" : "NO", rp->conn_end ? "yes" : "NO",
		       rp->eager_conn_end ? "yes" : "no");
		printf("  relays that missed messages: %" PRIu64 " of %" PRIu64
		       " live; (relay, message) pairs repaired: %" PRIu64 "\n",
		       rp->missed_relays, rp->live, s->missed_pairs);
		printf("  first new message by push after the kill, at those relays: p50 %.1f p99 "
		       "%.1f max %.1f ms\n",
		       ms(rly_hist_percentile(&rp->first_push, 50)),
		       ms(rly_hist_percentile(&rp->first_push, 99)), ms(rp->first_push.max));
		printf(
		    "  losses over (every later message came by push) after: p50 %.1f p99 %.1f max "
		    "%.1f ms%s\n",
		    ms(rly_hist_percentile(&rp->resume, 50)),
		    ms(rly_hist_percentile(&rp->resume, 99)), ms(rp->resume.max),
		    rp->resume_open ? " (some never, before the stream ended)" : "");
		printf("  every missed message repaired by %.1f ms after the kill; repair delay "
		       "(publish to repaired copy) p50 %.1f p99 %.1f max %.1f ms\n",
		       ms((uint64_t)rp->repaired_by), ms(rly_hist_percentile(&s->rep_delay, 50)),
		       ms(rly_hist_percentile(&s->rep_delay, 99)), ms(s->rep_delay.max));
		printf(
		    "  repair traffic: %" PRIu64 " GRAFT, %" PRIu64 " IWANT, %" PRIu64
		    " repaired copies sent; IWANT answers that an eager copy followed (a shortcut, "
		    "not a loss): %" PRIu64 "\n",
		    s->n_graft, s->n_iwant, s->sent_repair, s->shortcuts);
		printf("  duplicates per delivered message after the kill: %.4f; joins %" PRIu64
		       " accepted, %" PRIu64 " refused, %" PRIu64 " gave up\n",
		       rp->dup_after_kill, s->n_join_ok, s->n_join_refused, s->n_join_gave_up);
	}
	printf("messages never received by a live relay: %" PRIu64 "; events %" PRIu64
	       "; lost to dead relays %" PRIu64 "; %.1f s of CPU\n",
	       rp->never, s->events, s->lost_to_dead, (double)clock() / CLOCKS_PER_SEC);
}

static void print_json(struct sim *s, struct report *rp)
{
	const struct params *p = &s->p;

	printf(
	    "{\"relays\":%u,\"degree\":%u,\"max_degree\":%u,\"latency\":\"%s\",\"publishers\":%u,"
	    "\"messages\":%u,\"interval_us\":%" PRId64 ",\"seed\":%u,\"break_repair\":%s,",
	    p->n, p->d, p->dmax, p->wan ? "wan" : "dc", p->pubs, p->m, p->interval, p->seed,
	    p->break_repair ? "true" : "false");
	printf("\"degree_mean\":%.3f,\"degree_max\":%u,\"connected_end\":%s,\"pub\":[",
	       rp->deg_mean, rp->deg_max, rp->conn_end ? "true" : "false");
	for (uint32_t i = 0; i < p->pubs; i++)
		printf("%s{\"relay\":%u,\"hops_mean\":%.3f,\"hops_p50\":%" PRIu64
		       ",\"hops_p99\":%" PRIu64 ",\"hops_max\":%" PRIu64 ",\"lat_p50_us\":%" PRIu64
		       ",\"lat_p99_us\":%" PRIu64 ",\"lat_max_us\":%" PRIu64 "}",
		       i ? "," : "", s->pub_relay[i], rly_hist_mean(&s->hops[i]),
		       rly_hist_percentile(&s->hops[i], 50), rly_hist_percentile(&s->hops[i], 99),
		       s->hops[i].max, rly_hist_percentile(&s->lat[i], 50),
		       rly_hist_percentile(&s->lat[i], 99), s->lat[i].max);
	printf("],\"dup_msg0\":%.4f,\"dup_first10\":%.4f,\"dup_steady\":%.5f,\"converged_msgs\":%u,"
	       "\"eager_mean\":%.3f,\"eager_max\":%u,\"eager_links\":%u,",
	       rp->dup0, rp->dup10, rp->dup_steady, rp->converged, s->eager_mean_pre,
	       s->eager_max_pre, s->eager_links_pre);
	printf("\"ihave_per_relay_s\":%.2f,\"graft\":%" PRIu64 ",\"prune\":%" PRIu64
	       ",\"iwant\":%" PRIu64 ",",
	       ihave_rate(s, rp), s->n_graft, s->n_prune, s->n_iwant);
	printf("\"kill_pct\":%.2f,\"kill_tree\":%s,\"killed\":%u,\"kill_ms\":%.1f,"
	       "\"connected_after_kill\":%s,\"missed_relays\":%" PRIu64
	       ",\"repaired_pairs\":%" PRIu64 ",\"resume_p50_us\":%" PRIu64
	       ",\"resume_p99_us\":%" PRIu64 ",\"resume_max_us\":%" PRIu64
	       ",\"resume_open\":%" PRIu64 ",\"first_push_p50_us\":%" PRIu64
	       ",\"first_push_p99_us\":%" PRIu64 ",\"first_push_max_us\":%" PRIu64
	       ",\"repaired_by_us\":%" PRId64 ",\"dup_after_kill\":%.5f,\"never\":%" PRIu64
	       ",\"events\":%" PRIu64 ",\"rep_p50_us\":%" PRIu64 ",\"rep_p99_us\":%" PRIu64
	       ",\"rep_max_us\":%" PRIu64 ",\"shortcuts\":%" PRIu64
	       ",\"iwant_answers_first\":%" PRIu64 ",\"cpu_s\":%.1f}\n",
	       p->kill_pct, p->kill_tree ? "true" : "false", s->killed,
	       s->t_kill >= 0 ? ms((uint64_t)s->t_kill) : -1.0,
	       s->t_kill < 0 || s->conn_after_kill ? "true" : "false", rp->missed_relays,
	       s->missed_pairs, rly_hist_percentile(&rp->resume, 50),
	       rly_hist_percentile(&rp->resume, 99), rp->resume.max, rp->resume_open,
	       rly_hist_percentile(&rp->first_push, 50), rly_hist_percentile(&rp->first_push, 99),
	       rp->first_push.max, rp->repaired_by, rp->dup_after_kill, rp->never, s->events,
	       rly_hist_percentile(&s->rep_delay, 50), rly_hist_percentile(&s->rep_delay, 99),
	       s->rep_delay.max, s->shortcuts, s->answered_first, (double)clock() / CLOCKS_PER_SEC);
}

/* The invariants the fast test holds the model to; each prints what broke. */
static int check(struct sim *s, struct report *rp)
{
	int bad = 0;

	if (rp->never || rp->short_relays) {
		fprintf(stderr,
			"check: %" PRIu64 " (relay, message) pairs never received, %" PRIu64
			" live relays with a wrong delivery count\n",
			rp->never, rp->short_relays);
		bad++;
	}
	if (rp->delivered_total != rp->live * s->p.pubs * s->p.m) {
		fprintf(stderr, "check: %" PRIu64 " deliveries, expected exactly %" PRIu64 "\n",
			rp->delivered_total, rp->live * s->p.pubs * s->p.m);
		bad++;
	}
	if (!rp->conn_end) {
		fprintf(stderr, "check: the live overlay is not connected at the end\n");
		bad++;
	}
	if (s->degree_violations || rp->deg_max > s->p.dmax) {
		fprintf(stderr,
			"check: %" PRIu64 " links refused past max degree %u (max seen %u)\n",
			s->degree_violations, s->p.dmax, rp->deg_max);
		bad++;
	}
	if (rp->dup_steady > s->p.dup_bound) {
		fprintf(stderr,
			"check: %.4f duplicates per delivered message in steady state, bound "
			"%.4f\n",
			rp->dup_steady, s->p.dup_bound);
		bad++;
	}
	if (rp->converged >= rp->steady_lo) {
		fprintf(stderr,
			"check: duplicates did not converge before the steady window (msg %u)\n",
			rp->converged);
		bad++;
	}
	if (!bad)
		fprintf(stderr, "check: ok\n");
	return bad ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: overlay-sim [--relays N] [--degree D] [--max-degree DMAX] [--seed S]\n"
	    "  [--latency dc|wan] [--publishers K] [--messages M] [--interval-us US]\n"
	    "  [--kill-pct P | --kill-tree] [--kill-at-ms T] [--json] [--check] [--dup-bound X]\n"
	    "  [--break-repair] [--trees shared|per-chain] [--new-links eager|lazy] [--flag-hops "
	    "H]\n"
	    "  [--prune-guard] [--first-guard] [--graft-on-stall]\n"
	    "Defaults: N=1000 D=4 DMAX=2D seed=1 dc K=1, M=1000 (5000 with a kill), 1 ms "
	    "interval,\nkill at 500 ms, dup bound 0.01, shared trees, eager new links, flag-hops "
	    "255.\n"
	    "See bench/overlay-sim/README.md.\n");
}

static int parse(int argc, char **argv, struct params *p)
{
	static const struct option opts[] = {
	    {"relays", 1, 0, 'n'},
	    {"degree", 1, 0, 'd'},
	    {"max-degree", 1, 0, 'x'},
	    {"seed", 1, 0, 's'},
	    {"latency", 1, 0, 'l'},
	    {"publishers", 1, 0, 'k'},
	    {"messages", 1, 0, 'm'},
	    {"interval-us", 1, 0, 'i'},
	    {"kill-pct", 1, 0, 'p'},
	    {"kill-tree", 0, 0, 't'},
	    {"kill-at-ms", 1, 0, 'a'},
	    {"json", 0, 0, 'j'},
	    {"check", 0, 0, 'c'},
	    {"dup-bound", 1, 0, 'b'},
	    {"break-repair", 0, 0, 'r'},
	    {"help", 0, 0, 'h'},
	    {"flag-hops", 1, 0, 'f'},
	    {"trees", 1, 0, 'T'},
	    {"new-links", 1, 0, 'L'},
	    {"prune-guard", 0, 0, 'G'},
	    {"graft-on-stall", 0, 0, 'S'},
	    {"first-guard", 0, 0, 'F'},
	    {0, 0, 0, 0},
	};
	int o;

	*p = (struct params){.n = 1000,
			     .d = 4,
			     .seed = 1,
			     .pubs = 1,
			     .m = 1000,
			     .interval = 1000,
			     .kill_at = 500000,
			     .t_ihave = 50000,
			     .t_miss = 100000,
			     .t_dead = 3000000,
			     .t_ka = 1000000,
			     .proc = 10,
			     .drain = 2000000,
			     .dup_bound = 0.01,
			     .kill_pct = 0,
			     .flag_hops = 255};
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			p->n = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'd':
			p->d = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'x':
			p->dmax = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 's':
			p->seed = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'l':
			if (strcmp(optarg, "dc") && strcmp(optarg, "wan"))
				return -1;
			p->wan = !strcmp(optarg, "wan");
			break;
		case 'k':
			p->pubs = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'm':
			p->m = (uint32_t)strtoul(optarg, NULL, 0);
			p->m_given = true;
			break;
		case 'i':
			p->interval = strtoll(optarg, NULL, 0);
			break;
		case 'p':
			p->kill_pct = strtod(optarg, NULL);
			break;
		case 't':
			p->kill_tree = true;
			break;
		case 'a':
			p->kill_at = strtoll(optarg, NULL, 0) * 1000;
			break;
		case 'j':
			p->json = true;
			break;
		case 'c':
			p->check = true;
			break;
		case 'b':
			p->dup_bound = strtod(optarg, NULL);
			break;
		case 'r':
			p->break_repair = true;
			break;
		case 'T':
			if (strcmp(optarg, "shared") && strcmp(optarg, "per-chain"))
				return -1;
			p->per_chain = !strcmp(optarg, "per-chain");
			break;
		case 'G':
			p->prune_guard = true;
			break;
		case 'F':
			p->first_guard = p->prune_guard = true;
			break;
		case 'S':
			p->graft_on_stall = true;
			break;
		case 'L':
			if (strcmp(optarg, "eager") && strcmp(optarg, "lazy"))
				return -1;
			p->join_lazy = !strcmp(optarg, "lazy");
			break;
		case 'f':
			p->flag_hops = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	if (!p->dmax)
		p->dmax = 2 * p->d;
	if ((p->kill_pct > 0 || p->kill_tree) && !p->m_given)
		p->m = 5000;
	if (p->n < 3 || p->d < 1 || p->dmax < p->d || p->dmax > MAX_DEGREE || p->d >= p->n ||
	    p->pubs < 1 || p->pubs > MAX_PUBS || p->pubs > p->n || p->m < 2 || p->interval < 1 ||
	    p->kill_pct < 0 || p->kill_pct > 50)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct sim *s = xcalloc(1, sizeof(*s));
	struct report rp;
	int64_t last_pub;

	if (parse(argc, argv, &s->p)) {
		usage(stderr);
		return 2;
	}
	rng_seed(s, s->p.seed);
	/* One-way latency per link: datacentre 0.1..2 ms, WAN 5..80 ms. */
	s->lat_lo = s->p.wan ? 5000 : 100;
	s->lat_span = s->p.wan ? 75000 : 1900;
	/* A DHT lookup: about four round trips of an average link (Kademlia at 1e5 nodes). */
	s->lookup_delay = 8 * (s->lat_lo + s->lat_span / 2);
	s->retry_gap = 2 * s->p.t_miss;
	s->t_kill = (s->p.kill_pct > 0 || s->p.kill_tree) ? s->p.kill_at : -1;
	s->kill_seq = UINT32_MAX;
	last_pub = pub_time(s, s->p.pubs - 1, s->p.m - 1);
	s->t_end = last_pub + s->p.drain;

	s->relay = xcalloc(s->p.n, sizeof(*s->relay));
	s->link = xcalloc((size_t)s->p.n * s->p.dmax, sizeof(*s->link));
	s->chain = xcalloc((size_t)s->p.n * s->p.pubs, sizeof(*s->chain));
	s->words = (s->p.m + 63) / 64;
	s->have = xcalloc((size_t)s->p.n * s->p.pubs * s->words, sizeof(uint64_t));
	s->answered = xcalloc((size_t)s->p.n * s->p.pubs * s->words, sizeof(uint64_t));
	s->cand = xcalloc((size_t)s->p.n * LOOKUP_SIZE, sizeof(uint32_t));
	s->msg = xcalloc((size_t)s->p.pubs * s->p.m, sizeof(*s->msg));
	s->head = xcalloc(WHEEL, sizeof(uint32_t));
	s->tail = xcalloc(WHEEL, sizeof(uint32_t));
	memset(s->head, 0xff, WHEEL * sizeof(uint32_t));
	memset(s->tail, 0xff, WHEEL * sizeof(uint32_t));
	s->ck_cap = 1u << 16;
	s->ck = xcalloc(s->ck_cap, sizeof(*s->ck));
	s->ck_free = NONE;
	for (uint32_t i = 0; i < s->p.pubs; i++) {
		rly_hist_init(&s->hops[i]);
		rly_hist_init(&s->lat[i]);
	}
	rly_hist_init(&s->rep_delay);
	for (uint32_t r = 0; r < s->p.n; r++) {
		s->relay[r].alive = 1;
		s->relay[r].parent = NONE;
		for (uint32_t p = 0; p < s->p.pubs; p++)
			*chain_of(s, r, p) = (struct chain){
			    .max_seq = -1, .req_high = -1, .last_rep = -1, .req_at = INT64_MIN / 2};
	}

	bootstrap(s);
	for (uint32_t i = 0; i < s->p.pubs; i++) {
		uint32_t r;
		bool taken;
		do {
			r = rand_below(s, s->p.n);
			taken = false;
			for (uint32_t j = 0; j < i; j++)
				taken |= s->pub_relay[j] == r;
		} while (taken);
		s->pub_relay[i] = r;
		struct ev *e = post(s, pub_time(s, i, 0), EV_PUBLISH, r);
		e->pub = (uint8_t)i;
	}
	for (uint32_t r = 0; r < s->p.n; r++)
		post(s, rand_below(s, (uint32_t)s->p.t_ihave), EV_IHAVE_TICK, r);
	if (s->t_kill >= 0)
		post(s, s->t_kill, EV_KILL, 0);

	run(s);
	analyse(s, &rp);
	if (s->p.json)
		print_json(s, &rp);
	else
		print_text(s, &rp);
	int rc = s->p.check ? check(s, &rp) : 0;
	/* Freed so that the sanitizer build's leak check stays meaningful for the rest. */
	free(s->relay);
	free(s->link);
	free(s->chain);
	free(s->have);
	free(s->answered);
	free(s->cand);
	free(s->msg);
	free(s->head);
	free(s->tail);
	free(s->ck);
	free(s->heap);
	free(s);
	return rc;
}
