/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-stream overlays: which relays a stream's messages are pushed to (eager links, held by the
 * dataplane as peer endpoints), which only get summaries (lazy links), and how the two sets move:
 * Plumtree (Leitao, Pereira, Rodrigues 2007) with gossipsub-style summaries. docs/overlay.md has
 * the whole protocol, its parameters and their reasons.
 *
 *  - A relay serves a stream while it has a local subscriber or publisher (and `linger_ms` after).
 *    It announces itself through discovery, watches the stream's key, and JOINs up to `degree`
 *    of the relays it finds; it ACCEPTs JOINs up to `degree_max`.
 *  - Links start eager. The dataplane drops duplicates and reports one from a peer: that link is
 *    PRUNEd (lazy on both ends), unless it is our last eager link or was grafted a moment ago.
 *  - Every `ihave_ms` each lazy link gets an IHAVE: per recent chain, the highest seq held, read
 *    from the dataplane's dedup region. A relay that still lacks an announced message `miss_ms`
 *    later GRAFTs that link (eager again) and sends IWANT for the range.
 *  - A dead session drops its links; the next upkeep JOINs other candidates.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/clock.h"
#include "control/log.h"
#include "control/peers_int.h"

#define MAINT_MS 100u
#define JOIN_TIMEOUT_MS 2000u
#define REFUSED_FULL_MS 10000u
#define REFUSED_OTHER_MS 30000u
/*
 * A link made eager (new, or grafted) is not pruned for this long: the eager copies that overlap
 * an IWANT answer are duplicates, but not a sign of a redundant link. (Repaired copies themselves
 * prune nothing.) It was 1 s for grafts: bench/RESULTS.md 9.6-9.7.
 */
#define EAGER_HOLD_MS 500u
/* A chain this young prunes nothing: the scores have not seen which link brings it first. */
#define CHAIN_GUARD_MS 300u
#define REPRUNE_MS 1000u
#define SNAP_MAX_AGE_MS 30000u
/* Missing runs asked for at once (one IWANT each). */
#define RLY_IWANT_RUNS 8u
/* Most messages one IWANT is answered with: a hole older than that is better reported. */
#define RLY_REPAIR_MAX 4096u

static uint64_t tsc_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return 0;
#endif
}

int ov_init(struct rly_ctl_peers *p)
{
	p->ov_max = p->cfg.overlays_max ? p->cfg.overlays_max : OV_MAX;
	p->ov = calloc(p->ov_max, sizeof(*p->ov));
	p->snap = calloc(SNAP_MAX, sizeof(*p->snap));
	return p->ov && p->snap ? 0 : -ENOMEM;
}

void ov_free(struct rly_ctl_peers *p)
{
	free(p->ov);
	free(p->snap);
	free(p->seen_tag);
	free(p->seen_ms);
	p->ov = NULL;
	p->snap = NULL;
	p->seen_tag = p->seen_ms = NULL;
}

int ov_region(struct rly_ctl_peers *p)
{
	free(p->seen_tag);
	free(p->seen_ms);
	p->seen_tag = p->seen_ms = NULL;
	if (!p->dedup || !p->dedup_chains)
		return 0;
	p->seen_tag = calloc(p->dedup_chains, sizeof(*p->seen_tag));
	p->seen_ms = calloc(p->dedup_chains, sizeof(*p->seen_ms));
	return p->seen_tag && p->seen_ms ? 0 : -ENOMEM;
}

struct ov_stream *ov_find(const struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
			  uint32_t partition)
{
	for (unsigned i = 0; i < p->ov_max; i++)
		if (p->ov[i].used && p->ov[i].partition == partition &&
		    memcmp(p->ov[i].key, key, RLY_STREAM_KEY_LEN) == 0)
			return &p->ov[i];
	return NULL;
}

static int ov_log(struct rly_ctl_logline *l, enum rly_ctl_log_level lvl, const char *event,
		  const struct ov_stream *ov)
{
	if (!rly_ctl_log_begin(l, lvl, event))
		return 0;
	rly_ctl_log_stream(l, ov->key, ov->partition);
	return 1;
}

static void link_log(const struct rly_ctl_peers *p, const struct ov_stream *ov, int i,
		     const char *event, const char *why)
{
	struct rly_ctl_logline l;
	const struct peer_sess *x = &p->sess[ov->link[i].sess];

	if (!ov_log(&l, RLY_LOG_INFO, event, ov))
		return;
	rly_ctl_log_addr(&l, "peer", x->ep.ip_be, x->ep.udp_port_be);
	if (why)
		rly_ctl_log_str(&l, "reason", why);
	rly_ctl_log_end(&l);
}

/* ---- links ---- */

static int link_find(const struct ov_stream *ov, int s)
{
	for (int i = 0; i < (int)RLY_PEER_DEGREE_CAP; i++)
		if (ov->link[i].st != L_NONE && ov->link[i].sess == s)
			return i;
	return -1;
}

static unsigned link_count(const struct ov_stream *ov, int st)
{
	unsigned n = 0;

	for (unsigned i = 0; i < RLY_PEER_DEGREE_CAP; i++)
		n += st < 0 ? ov->link[i].st != L_NONE : ov->link[i].st == st;
	return n;
}

static int link_add(struct ov_stream *ov, int s, uint8_t st, uint64_t now_ms)
{
	for (int i = 0; i < (int)RLY_PEER_DEGREE_CAP; i++)
		if (ov->link[i].st == L_NONE) {
			memset(&ov->link[i], 0, sizeof(ov->link[i]));
			ov->link[i].st = st;
			ov->link[i].sess = (int16_t)s;
			ov->link[i].since_ms = now_ms;
			return i;
		}
	return -1;
}

static void set_eager(struct rly_ctl_peers *p, struct ov_stream *ov, int i, uint64_t now_ms)
{
	struct ov_link *k = &ov->link[i];

	if (k->st == L_EAGER)
		return;
	k->st = L_EAGER;
	k->since_ms = now_ms;
	if (k->hold_ms < now_ms + EAGER_HOLD_MS)
		k->hold_ms = now_ms + EAGER_HOLD_MS;
	p->io.link(p->io.ctx, 1, ov->key, ov->partition, &p->sess[k->sess].ep);
	if (!ov->first_link_ms) {
		struct rly_ctl_logline l;
		ov->first_link_ms = now_ms;
		if (ov_log(&l, RLY_LOG_INFO, "overlay_linked", ov)) {
			rly_ctl_log_u64(&l, "ms_since_join", now_ms - ov->joined_ms);
			rly_ctl_log_end(&l);
		}
	}
}

static void set_lazy(struct rly_ctl_peers *p, struct ov_stream *ov, int i, uint64_t now_ms)
{
	struct ov_link *k = &ov->link[i];

	if (k->st == L_EAGER)
		p->io.link(p->io.ctx, 0, ov->key, ov->partition, &p->sess[k->sess].ep);
	k->st = L_LAZY;
	k->since_ms = now_ms;
}

static void link_drop(struct rly_ctl_peers *p, struct ov_stream *ov, int i)
{
	struct ov_link *k = &ov->link[i];

	if (k->st == L_EAGER && p->attached)
		p->io.link(p->io.ctx, 0, ov->key, ov->partition, &p->sess[k->sess].ep);
	for (unsigned m = 0; m < MISS_MAX; m++)
		if (ov->miss[m].used && ov->miss[m].from == i)
			ov->miss[m].used = 0;
	for (unsigned f = 0; f < FIRST_CHAINS; f++)
		ov->first[f].score[i] = 0;
	memset(k, 0, sizeof(*k));
}

static void send_link(struct rly_ctl_peers *p, const struct ov_stream *ov, int s, unsigned type,
		      unsigned kind, unsigned reason, uint64_t request_id);

/* Graft a lazy link other than @p not (whose session is up), if there is one. */
static void graft_any(struct rly_ctl_peers *p, struct ov_stream *ov, int not, uint64_t now_ms)
{
	for (int j = 0; j < (int)RLY_PEER_DEGREE_CAP; j++) {
		struct ov_link *k = &ov->link[j];
		if (j == not || k->st != L_LAZY || p->sess[k->sess].st != S_UP)
			continue;
		peers_count(p, RLY_CTR_CTL_GRAFTS);
		k->hold_ms = now_ms + EAGER_HOLD_MS;
		send_link(p, ov, k->sess, RLY_MSG_PEER_JOIN, RLY_LINK_GRAFT, 0, 0);
		set_eager(p, ov, j, now_ms);
		link_log(p, ov, j, "link_grafted", "last eager link pruned");
		return;
	}
}

/* A PEER_JOIN or PEER_PRUNE about (key, partition), whether or not we keep an overlay for it. */
static void send_link_raw(struct rly_ctl_peers *p, int s, const uint8_t key[RLY_STREAM_KEY_LEN],
			  uint32_t partition, unsigned type, unsigned kind, unsigned reason,
			  uint64_t request_id)
{
	struct rly_wire_peer_link b;

	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.partition, partition);
	b.kind = (uint8_t)kind;
	b.reason = (uint8_t)reason;
	rly_be64_store(&b.request_id, request_id ? request_id : peers_rand64());
	memcpy(b.token, p->sess[s].their_token, RLY_COOKIE_LEN);
	sess_send(p, s, type, &b);
}

static void send_link(struct rly_ctl_peers *p, const struct ov_stream *ov, int s, unsigned type,
		      unsigned kind, unsigned reason, uint64_t request_id)
{
	send_link_raw(p, s, ov->key, ov->partition, type, kind, reason, request_id);
}

static struct ov_cand *cand_of(struct ov_stream *ov, uint32_t ip_be, uint16_t port_be)
{
	for (unsigned c = 0; c < CAND_MAX; c++)
		if (ov->cand[c].ip_be == ip_be && ov->cand[c].port_be == port_be)
			return &ov->cand[c];
	return NULL;
}

static void cand_refuse(struct ov_stream *ov, const struct peer_sess *x, uint64_t until_ms)
{
	struct ov_cand *c = cand_of(ov, x->ep.ip_be, x->ep.udp_port_be);

	if (c)
		c->refused_until_ms = until_ms;
}

/* ---- membership ---- */

static struct ov_stream *ov_get(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
				uint32_t partition)
{
	struct ov_stream *ov = ov_find(p, key, partition);

	if (ov)
		return ov;
	for (unsigned i = 0; i < p->ov_max; i++)
		if (!p->ov[i].used) {
			ov = &p->ov[i];
			memset(ov, 0, sizeof(*ov));
			ov->used = 1;
			memcpy(ov->key, key, RLY_STREAM_KEY_LEN);
			ov->partition = partition;
			return ov;
		}
	return NULL;
}

void ov_local(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
	      uint64_t now_ms)
{
	struct ov_stream *ov;
	struct rly_ctl_logline l;

	if (!p->enabled || partition == RLY_KEY_HOLDER_PARTITION)
		return;
	ov = ov_get(p, key, partition);
	if (!ov) {
		rly_ctl_log_msg(RLY_LOG_WARN, "overlays_full",
				"no room for another stream overlay (relay-control --overlays-max); the "
				"stream stays local");
		return;
	}
	ov->local_until_ms = now_ms + p->cfg.linger_ms;
	if (ov->member)
		return;
	ov->member = 1;
	ov->joined_ms = now_ms;
	ov->next_maint_ms = now_ms;
	if (p->disc) {
		/* Discovery keeps the time it was last given: records are stamped from it. */
		rly_disc_poll(p->disc, now_ms);
		rly_disc_announce(p->disc, key, partition);
		rly_disc_watch(p->disc, key, partition);
	}
	if (ov_log(&l, RLY_LOG_INFO, "overlay_joined", ov))
		rly_ctl_log_end(&l);
}

static void ov_leave(struct rly_ctl_peers *p, struct ov_stream *ov)
{
	struct rly_ctl_logline l;

	for (int i = 0; i < (int)RLY_PEER_DEGREE_CAP; i++) {
		if (ov->link[i].st == L_NONE)
			continue;
		if (p->sess[ov->link[i].sess].st == S_UP)
			send_link(p, ov, ov->link[i].sess, RLY_MSG_PEER_PRUNE, RLY_LINK_LEAVE,
				  RLY_REASON_NOT_SERVING, 0);
		link_drop(p, ov, i);
	}
	if (p->disc) {
		rly_disc_withdraw(p->disc, ov->key, ov->partition);
		rly_disc_unwatch(p->disc, ov->key, ov->partition);
	}
	if (ov_log(&l, RLY_LOG_INFO, "overlay_left", ov))
		rly_ctl_log_end(&l);
	memset(ov, 0, sizeof(*ov));
}

void ov_on_record(void *ctx, const struct rly_disc_record *rec)
{
	struct rly_ctl_peers *p = ctx;
	uint32_t partition = rly_be32_load(&rec->partition);
	struct ov_stream *ov = ov_find(p, rec->stream_key, partition);
	uint16_t port_be = htons(rly_be16_load(&rec->udp_port));
	uint64_t exp_real = rly_be64_load(&rec->expires_ms);
	uint64_t real_ms = rly_real_ns() / 1000000u;
	struct ov_cand *c;

	if (!ov || !ov->member || memcmp(rec->relay, p->id.pk, RLY_ID_LEN) == 0)
		return;
	if (rec->ip_be == p->self_ip_be && port_be == p->self_port_be)
		return;
	c = cand_of(ov, rec->ip_be, port_be);
	if (!c) {
		/* The first free slot, else the one whose record expires first. */
		c = &ov->cand[0];
		for (unsigned i = 0; i < CAND_MAX; i++) {
			if (ov->cand[i].ip_be == 0) {
				c = &ov->cand[i];
				break;
			}
			if (ov->cand[i].expires_ms < c->expires_ms)
				c = &ov->cand[i];
		}
		memset(c, 0, sizeof(*c));
		c->ip_be = rec->ip_be;
		c->port_be = port_be;
	}
	memcpy(c->id, rec->relay, RLY_ID_LEN);
	c->expires_ms = p->now_ms + (exp_real > real_ms ? exp_real - real_ms : 0);
	if (link_count(ov, -1) < p->cfg.degree)
		ov->next_maint_ms = p->now_ms;
}

/* ---- messages from peers ---- */

void ov_on_link_msg(struct rly_ctl_peers *p, int s, unsigned type,
		    const struct rly_wire_peer_link *b, uint64_t now_ms)
{
	uint32_t partition = rly_be32_load(&b->partition);
	struct ov_stream *ov = ov_find(p, b->stream_key, partition);
	uint64_t req = rly_be64_load(&b->request_id);
	int serving = ov && ov->member;
	int i = ov ? link_find(ov, s) : -1;

	(void)type; /* the parser already tied each kind to its type */
	switch (b->kind) {
	case RLY_LINK_JOIN:
	case RLY_LINK_GRAFT:
		if (!serving) {
			peers_count(p, RLY_CTR_CTL_JOIN_REFUSED);
			send_link_raw(p, s, b->stream_key, partition, RLY_MSG_PEER_JOIN,
				      RLY_LINK_REFUSE, RLY_REASON_NOT_SERVING, req);
			return;
		}
		if (i < 0 && (link_count(ov, -1) >= p->cfg.degree_max ||
			      (i = link_add(ov, s, L_LAZY, now_ms)) < 0)) {
			peers_count(p, RLY_CTR_CTL_JOIN_REFUSED);
			send_link(p, ov, s, RLY_MSG_PEER_JOIN, RLY_LINK_REFUSE, RLY_REASON_FULL, req);
			return;
		}
		if (b->kind == RLY_LINK_GRAFT) {
			peers_count(p, RLY_CTR_CTL_GRAFTS);
			ov->link[i].hold_ms = now_ms + EAGER_HOLD_MS;
			link_log(p, ov, i, "link_grafted", "by peer");
		} else {
			link_log(p, ov, i, "link_up", "joined by peer");
		}
		set_eager(p, ov, i, now_ms);
		if (b->kind == RLY_LINK_JOIN)
			send_link(p, ov, s, RLY_MSG_PEER_JOIN, RLY_LINK_ACCEPT, 0, req);
		return;
	case RLY_LINK_ACCEPT:
		if (!serving || i < 0) {
			/* We gave up on it meanwhile: tell the peer to drop its half. */
			send_link_raw(p, s, b->stream_key, partition, RLY_MSG_PEER_PRUNE,
				      RLY_LINK_LEAVE, RLY_REASON_NONE, 0);
			return;
		}
		/* Only the answer to the JOIN we sent: an old or replayed ACCEPT must not turn a
		 * link that was pruned since back to eager. */
		if (ov->link[i].st != L_JOINING || req != ov->link[i].request_id)
			return;
		link_log(p, ov, i, "link_up", "accepted");
		set_eager(p, ov, i, now_ms);
		return;
	case RLY_LINK_REFUSE:
		if (i >= 0 && ov->link[i].st == L_JOINING && req == ov->link[i].request_id) {
			link_log(p, ov, i, "link_refused",
				 b->reason == RLY_REASON_FULL ? "full" : "not serving");
			cand_refuse(ov, &p->sess[s],
				    now_ms + (b->reason == RLY_REASON_FULL ? REFUSED_FULL_MS
									  : REFUSED_OTHER_MS));
			link_drop(p, ov, i);
			ov->next_maint_ms = now_ms;
		}
		return;
	case RLY_LINK_PRUNE:
		if (i >= 0 && ov->link[i].st == L_EAGER) {
			peers_count(p, RLY_CTR_CTL_PRUNES);
			set_lazy(p, ov, i, now_ms);
			/* Both ends of two links may prune at once and leave a relay with no eager
			 * link at all: then it grafts another lazy one at once, not after a hole. */
			if (link_count(ov, L_EAGER) == 0)
				graft_any(p, ov, i, now_ms);
		}
		return;
	case RLY_LINK_LEAVE:
		if (i >= 0) {
			link_log(p, ov, i, "link_down", "peer left");
			link_drop(p, ov, i);
			ov->next_maint_ms = now_ms;
		}
		return;
	default:
		return;
	}
}

static const struct snap_chain *snap_find(const struct rly_ctl_peers *p, const struct ov_stream *ov,
					  const uint8_t publisher[RLY_ID_LEN], uint32_t chain)
{
	for (uint32_t i = 0; i < p->n_snap; i++) {
		const struct snap_chain *c = &p->snap[i];
		if (c->chain == chain && c->partition == ov->partition &&
		    memcmp(c->publisher, publisher, RLY_ID_LEN) == 0 &&
		    memcmp(c->key, ov->key, RLY_STREAM_KEY_LEN) == 0)
			return c;
	}
	return NULL;
}

/*
 * The runs of messages of chain @p sc (NULL: a chain we hold nothing of) that we lack, up to
 * @p want: holes inside the dedup window, at or after the first message we saw of it, then what
 * lies past our highest (an open run, hi = UINT64_MAX). At most @p max runs; returns how many.
 */
static unsigned holes(const struct rly_ctl_peers *p, const struct snap_chain *sc, uint64_t want,
		      uint64_t *lo, uint64_t *hi, unsigned max)
{
	const uint32_t w = p->dedup_window;
	const struct rly_dedup_chain *d;
	const uint64_t *slots;
	uint64_t top, start, end;
	unsigned n = 0;

	if (!sc || !p->dedup || w == 0) {
		/* Nothing of it here: ask for as much as a window holds. */
		lo[0] = w && want > w ? want - w + 1 : 1;
		hi[0] = UINT64_MAX;
		return 1;
	}
	d = (const void *)(p->dedup + (uint64_t)sc->idx * p->dedup_stride);
	slots = (const uint64_t *)(d + 1);
	top = __atomic_load_n(&d->highest, __ATOMIC_ACQUIRE);
	if (top < sc->highest)
		top = sc->highest; /* reclaimed meanwhile: the snapshot is all we know */
	start = top >= w ? top - w + 1 : 1;
	if (start < sc->first_seq)
		start = sc->first_seq;
	end = want < top ? want : top;
	for (uint64_t s = start; s <= end && n < max; s++) {
		if (__atomic_load_n(&slots[s & (w - 1)], __ATOMIC_RELAXED) == s)
			continue;
		lo[n] = s;
		while (s + 1 <= end && __atomic_load_n(&slots[(s + 1) & (w - 1)], __ATOMIC_RELAXED) != s + 1)
			s++;
		hi[n++] = s;
	}
	if (want > top && n < max) {
		lo[n] = top + 1;
		hi[n++] = UINT64_MAX;
	}
	return n;
}

void ov_on_ihave(struct rly_ctl_peers *p, int s, const struct rly_wire_peer_ihave *b,
		 uint64_t now_ms)
{
	struct ov_stream *ov = ov_find(p, b->stream_key, rly_be32_load(&b->partition));
	int i = ov ? link_find(ov, s) : -1;

	if (i < 0)
		return;
	if (ov->link[i].st == L_EAGER) {
		/* The peer holds the link lazy (a PRUNE and a GRAFT crossed): graft it again. */
		if (now_ms - ov->link[i].last_dup_prune_ms >= REPRUNE_MS) {
			ov->link[i].last_dup_prune_ms = now_ms;
			send_link(p, ov, s, RLY_MSG_PEER_JOIN, RLY_LINK_GRAFT, 0, 0);
		}
		return;
	}
	if (ov->link[i].st != L_LAZY)
		return;
	for (unsigned e = 0; e < b->n; e++) {
		const struct rly_wire_ihave_entry *en = &b->e[e];
		uint32_t chain = rly_be32_load(&en->chain);
		uint64_t want = rly_be64_load(&en->highest), lo, hi;
		struct ov_miss *free_slot = NULL, *m = NULL;

		if (holes(p, snap_find(p, ov, en->publisher, chain), want, &lo, &hi, 1) == 0)
			continue;
		for (unsigned k = 0; k < MISS_MAX; k++) {
			struct ov_miss *x = &ov->miss[k];
			if (!x->used) {
				if (!free_slot)
					free_slot = x;
			} else if (x->chain == chain &&
				   memcmp(x->publisher, en->publisher, RLY_ID_LEN) == 0) {
				m = x;
			}
		}
		if (m) {
			/* The first announcer's deadline stands: a later one only raises the bar. */
			if (want > m->want)
				m->want = want;
			continue;
		}
		if (!free_slot)
			continue;
		free_slot->used = 1;
		memcpy(free_slot->publisher, en->publisher, RLY_ID_LEN);
		free_slot->chain = chain;
		free_slot->want = want;
		free_slot->from = (int16_t)i;
		free_slot->deadline_ms = now_ms + p->cfg.miss_ms;
	}
}

/* The chain of the dedup region with this identity, or NULL. */
static struct rly_dedup_chain *chain_find(const struct rly_ctl_peers *p,
					  const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
					  const uint8_t publisher[RLY_ID_LEN], uint32_t chain)
{
	for (uint32_t i = 0; p->dedup && i < p->dedup_chains; i++) {
		struct rly_dedup_chain *c =
		    (struct rly_dedup_chain *)(p->dedup + (uint64_t)i * p->dedup_stride);

		if (__atomic_load_n(&c->tag, __ATOMIC_ACQUIRE) > RLY_DEDUP_TAG_RECLAIMING &&
		    c->chain == chain && c->partition == partition &&
		    memcmp(c->publisher, publisher, RLY_ID_LEN) == 0 &&
		    memcmp(c->stream_key, key, RLY_STREAM_KEY_LEN) == 0)
			return c;
	}
	return NULL;
}

/* Send the DATA datagram being built in @p rec (addressed already), if it holds messages. */
static int repair_flush(struct rly_ctl_peers *p, struct rly_pkt_rec *rec, uint16_t *count)
{
	int rc;

	if (*count == 0)
		return 0;
	rly_wire_put_dgram_hdr(rec->data, RLY_MSG_DATA, rec->len, *count);
	rc = p->io.send(p->io.ctx, rec);
	rec->len = sizeof(struct rly_wire_dgram_hdr);
	*count = 0;
	return rc;
}

void ov_on_iwant(struct rly_ctl_peers *p, int s, const struct rly_wire_peer_iwant *b,
		 uint64_t now_ms)
{
	const uint32_t partition = rly_be32_load(&b->partition);
	const uint32_t chain = rly_be32_load(&b->chain);
	const uint32_t room = p->dgram_max ? p->dgram_max : RLY_WIRE_DGRAM_FOR_MTU(1500);
	struct ov_stream *ov = ov_find(p, b->stream_key, partition);
	uint64_t from = rly_be64_load(&b->from_seq), to = rly_be64_load(&b->to_seq), hi, seq, tag;
	struct rly_dedup_chain *c;
	struct rly_hist_chain *hc;
	struct rly_pkt_rec rec;
	uint8_t msg[RLY_WIRE_MAX_DGRAM];
	uint16_t count = 0;
	unsigned sent = 0, gone = 0;
	struct rly_ctl_logline l;

	(void)now_ms;
	/* Only a peer we link with on this stream may ask, and only for what is still in reach. */
	if (!ov || link_find(ov, s) < 0 || !(c = chain_find(p, b->stream_key, partition, b->publisher,
							     chain)))
		return;
	hi = __atomic_load_n(&c->highest, __ATOMIC_ACQUIRE);
	if (to > hi)
		to = hi; /* all ones: up to the newest we hold */
	if (from + RLY_REPAIR_MAX <= to)
		from = to - RLY_REPAIR_MAX + 1; /* the newest are the ones still worth having */
	memset(&rec, 0, offsetof(struct rly_pkt_rec, data));
	rec.port_id = p->sess[s].ep.port_id;
	rec.ip_be = p->sess[s].ep.ip_be;
	rec.udp_port_be = p->sess[s].ep.udp_port_be;
	memcpy(rec.mac, p->sess[s].ep.mac, sizeof(rec.mac));
	rec.len = sizeof(struct rly_wire_dgram_hdr);
	tag = __atomic_load_n(&c->tag, __ATOMIC_ACQUIRE);
	hc = rly_hist_of(&p->hist, c, tag);
	for (seq = from; seq <= to && from != 0; seq++) {
		uint32_t len = 0;

		if (hc == NULL ||
		    rly_hist_read(&p->hist, hc, tag, seq, msg, sizeof(msg), &len) != RLY_HIST_FOUND) {
			gone++;
			continue;
		}
		/* Marked as a repair: the relays it reaches that have it already prune nothing. */
		((struct rly_wire_msg_hdr *)msg)->ttl |= RLY_TTL_F_REPAIR;
		if (rec.len + len > room && repair_flush(p, &rec, &count) < 0)
			break; /* the tx ring is full: the rest waits for another IWANT */
		if (rec.len + len > room)
			continue; /* one message larger than the datagram: cannot happen, skip it */
		memcpy(rec.data + rec.len, msg, len);
		rec.len = (uint16_t)(rec.len + len);
		count++;
		sent++;
	}
	repair_flush(p, &rec, &count);
	p->ctr->v[RLY_CTR_CTL_REPAIR_SENT] += sent;
	p->ctr->v[RLY_CTR_CTL_REPAIR_UNAVAILABLE] += gone;
	if (rly_ctl_log_begin(&l, RLY_LOG_INFO, "iwant_served")) {
		rly_ctl_log_stream(&l, b->stream_key, partition);
		rly_ctl_log_addr(&l, "peer", p->sess[s].ep.ip_be, p->sess[s].ep.udp_port_be);
		rly_ctl_log_u64(&l, "chain", chain);
		rly_ctl_log_u64(&l, "from_seq", from);
		rly_ctl_log_u64(&l, "to_seq", to);
		rly_ctl_log_u64(&l, "sent", sent);
		rly_ctl_log_u64(&l, "unavailable", gone);
		rly_ctl_log_end(&l);
	}
}

/* Is link @p i the best-scored first link of some chain of the stream? */
static int link_is_first(const struct ov_stream *ov, int i)
{
	for (unsigned k = 0; k < FIRST_CHAINS; k++) {
		const struct ov_first *f = &ov->first[k];
		unsigned best = 0;

		if (!f->used || f->score[i] == 0)
			continue;
		for (unsigned j = 1; j < RLY_PEER_DEGREE_CAP; j++)
			if (f->score[j] > f->score[best])
				best = j;
		if ((int)best == i || f->score[best] == f->score[i])
			return 1;
	}
	return 0;
}

void ov_on_duplicate(struct rly_ctl_peers *p, int s, const struct rly_wire_msg_hdr *h,
		     uint64_t now_ms)
{
	uint32_t partition = rly_be32_load(&h->partition);
	struct ov_stream *ov = ov_find(p, h->stream_key, partition);
	int i = ov ? link_find(ov, s) : -1;
	struct ov_link *k;

	/* A repaired copy is expected to be a duplicate at most relays it reaches (the dataplane
	 * does not report those either). */
	if (h->ttl & RLY_TTL_F_REPAIR)
		return;
	if (i < 0) {
		send_link_raw(p, s, h->stream_key, partition, RLY_MSG_PEER_PRUNE, RLY_LINK_LEAVE,
			      RLY_REASON_NONE, 0);
		return;
	}
	k = &ov->link[i];
	if (k->st == L_LAZY) {
		/* It still pushes: our PRUNE was lost. Say it again, now and then. */
		if (now_ms - k->last_dup_prune_ms >= REPRUNE_MS) {
			k->last_dup_prune_ms = now_ms;
			send_link(p, ov, s, RLY_MSG_PEER_PRUNE, RLY_LINK_PRUNE, 0, 0);
		}
		return;
	}
	/*
	 * Never our last eager link (we would hear only summaries), never right after it was made
	 * eager, and never while it is the first to bring some chain: one eager set serves every
	 * publisher of the stream, and a link that is redundant for one publisher's messages may be
	 * the only path of another's (Plumtree prunes per link, not per source).
	 */
	if (k->st != L_EAGER || now_ms < k->hold_ms || link_count(ov, L_EAGER) < 2 ||
	    (p->cfg.keep_fastest && link_is_first(ov, i)))
		return;
	/* With --peer-keep-fastest, nor for a chain just started: until the scores have seen which
	 * link brings it first, that link cannot be told apart from a redundant one. */
	{
		const struct snap_chain *sc =
		    snap_find(p, ov, h->publisher, rly_be32_load(&h->chain));
		if (p->cfg.keep_fastest && (!sc || now_ms - sc->seen_ms < CHAIN_GUARD_MS))
			return;
	}
	k->last_dup_prune_ms = now_ms;
	peers_count(p, RLY_CTR_CTL_PRUNES);
	send_link(p, ov, s, RLY_MSG_PEER_PRUNE, RLY_LINK_PRUNE, 0, 0);
	set_lazy(p, ov, i, now_ms);
	link_log(p, ov, i, "link_pruned", "duplicate");
}

void ov_on_peer_data(struct rly_ctl_peers *p, int s, const struct rly_wire_msg_hdr *h,
		     uint64_t now_ms)
{
	uint32_t partition = rly_be32_load(&h->partition);
	struct ov_stream *ov = ov_find(p, h->stream_key, partition);
	int i = ov ? link_find(ov, s) : -1;

	/* A peer pushes a stream to us without our dataplane holding it as a peer endpoint: the
	 * two ends disagree about the link (a lost JOIN answer, PRUNE or LEAVE, or a restart). */
	if (!ov || !ov->member) {
		send_link_raw(p, s, h->stream_key, partition, RLY_MSG_PEER_PRUNE, RLY_LINK_LEAVE,
			      RLY_REASON_NOT_SERVING, 0);
		return;
	}
	if (i < 0) {
		if (link_count(ov, -1) >= p->cfg.degree_max ||
		    (i = link_add(ov, s, L_JOINING, now_ms)) < 0) {
			send_link(p, ov, s, RLY_MSG_PEER_PRUNE, RLY_LINK_LEAVE, RLY_REASON_FULL, 0);
			return;
		}
		ov->link[i].request_id = peers_rand64();
		ov->link[i].sent = 1;
		send_link(p, ov, s, RLY_MSG_PEER_JOIN, RLY_LINK_JOIN, 0, ov->link[i].request_id);
		return;
	}
	if (ov->link[i].st == L_LAZY && now_ms - ov->link[i].last_dup_prune_ms >= REPRUNE_MS) {
		ov->link[i].last_dup_prune_ms = now_ms;
		send_link(p, ov, s, RLY_MSG_PEER_PRUNE, RLY_LINK_PRUNE, 0, 0);
	} else if (ov->link[i].st == L_EAGER && p->attached) {
		/* We think it is eager, the dataplane does not have it: a fresh dataplane. */
		p->io.link(p->io.ctx, 1, ov->key, ov->partition, &p->sess[s].ep);
	}
}

void ov_on_session_up(struct rly_ctl_peers *p, int s, uint64_t now_ms)
{
	for (unsigned o = 0; o < p->ov_max; o++) {
		struct ov_stream *ov = &p->ov[o];
		int i;

		if (!ov->used || (i = link_find(ov, s)) < 0 || ov->link[i].st != L_JOINING ||
		    ov->link[i].sent)
			continue;
		ov->link[i].sent = 1;
		ov->link[i].since_ms = now_ms;
		send_link(p, ov, s, RLY_MSG_PEER_JOIN, RLY_LINK_JOIN, 0, ov->link[i].request_id);
	}
}

void ov_on_session_down(struct rly_ctl_peers *p, int s, uint64_t now_ms)
{
	for (unsigned o = 0; o < p->ov_max; o++) {
		struct ov_stream *ov = &p->ov[o];
		int i;

		if (!ov->used || (i = link_find(ov, s)) < 0)
			continue;
		link_log(p, ov, i, "link_down", "peer session ended");
		cand_refuse(ov, &p->sess[s], now_ms + REFUSED_FULL_MS);
		link_drop(p, ov, i);
		ov->next_maint_ms = now_ms;
	}
}

void ov_on_dump_peer(struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
		     uint32_t partition, const struct rly_endpoint *ep, uint64_t now_ms)
{
	for (unsigned i = 0; i < ORPHAN_MAX; i++) {
		struct orphan *o = &p->orphan[i];
		if (o->used)
			continue;
		o->used = 1;
		memcpy(o->key, key, RLY_STREAM_KEY_LEN);
		o->partition = partition;
		o->ep = *ep;
		o->deadline_ms = now_ms + 2ull * p->cfg.dead_ms;
		return;
	}
	/* No room to wait for it: take it out now, the overlay makes the link again. */
	p->io.link(p->io.ctx, 0, key, partition, ep);
}

void ov_forget_links(struct rly_ctl_peers *p)
{
	for (unsigned o = 0; o < p->ov_max; o++) {
		if (!p->ov[o].used)
			continue;
		memset(p->ov[o].link, 0, sizeof(p->ov[o].link));
		memset(p->ov[o].miss, 0, sizeof(p->ov[o].miss));
		p->ov[o].next_maint_ms = 0;
	}
	memset(p->orphan, 0, sizeof(p->orphan));
}

/* ---- timers ---- */

static void orphans_tick(struct rly_ctl_peers *p, uint64_t now_ms)
{
	for (unsigned i = 0; i < ORPHAN_MAX; i++) {
		struct orphan *o = &p->orphan[i];
		struct ov_stream *ov;
		int s, k, claimed = 0;

		if (!o->used || now_ms < o->deadline_ms)
			continue;
		ov = ov_find(p, o->key, o->partition);
		s = sess_find(p, o->ep.ip_be, o->ep.udp_port_be);
		if (ov && s >= 0 && (k = link_find(ov, s)) >= 0 && ov->link[k].st == L_EAGER)
			claimed = 1;
		if (!claimed)
			p->io.link(p->io.ctx, 0, o->key, o->partition, &o->ep);
		o->used = 0;
	}
}

static void maint(struct rly_ctl_peers *p, struct ov_stream *ov, uint64_t now_ms)
{
	uint8_t order[CAND_MAX];

	if (now_ms >= ov->local_until_ms) {
		ov_leave(p, ov);
		return;
	}
	for (int i = 0; i < (int)RLY_PEER_DEGREE_CAP; i++) {
		struct ov_link *k = &ov->link[i];
		const struct peer_sess *x;

		if (k->st != L_JOINING)
			continue;
		x = &p->sess[k->sess];
		if (!k->sent && x->st == S_UP) {
			k->sent = 1;
			k->since_ms = now_ms;
			send_link(p, ov, k->sess, RLY_MSG_PEER_JOIN, RLY_LINK_JOIN, 0, k->request_id);
		} else if (now_ms - k->since_ms > (k->sent ? JOIN_TIMEOUT_MS : 10u * JOIN_TIMEOUT_MS)) {
			link_log(p, ov, i, "link_refused", "no answer");
			cand_refuse(ov, x, now_ms + REFUSED_FULL_MS);
			link_drop(p, ov, i);
		}
	}
	/* Fill up to `degree` from the candidates, in random order: each slot once (slots drawn
	 * with replacement missed a lone candidate in 36 % of rounds, and the next round is
	 * MAINT_MS on). */
	for (unsigned c = 0; c < CAND_MAX; c++)
		order[c] = (uint8_t)c;
	for (unsigned left = CAND_MAX; left > 0 && link_count(ov, -1) < p->cfg.degree; left--) {
		unsigned j = randombytes_uniform(left);
		struct ov_cand *c = &ov->cand[order[j]];
		int s, i;

		order[j] = order[left - 1];
		if (c->ip_be == 0 || c->refused_until_ms > now_ms || c->expires_ms <= now_ms)
			continue;
		s = sess_find(p, c->ip_be, c->port_be);
		if (s >= 0 && link_find(ov, s) >= 0)
			continue;
		if (s >= 0 && p->sess[s].st == S_UP && memcmp(p->sess[s].id, c->id, RLY_ID_LEN) != 0) {
			c->refused_until_ms = now_ms + REFUSED_OTHER_MS;
			continue;
		}
		if (s < 0 && (s = sess_open(p, c->ip_be, c->port_be, c->id, now_ms)) < 0) {
			c->refused_until_ms = now_ms + REFUSED_FULL_MS;
			continue;
		}
		if ((i = link_add(ov, s, L_JOINING, now_ms)) < 0)
			break;
		ov->link[i].request_id = peers_rand64();
		if (p->sess[s].st == S_UP) {
			ov->link[i].sent = 1;
			send_link(p, ov, s, RLY_MSG_PEER_JOIN, RLY_LINK_JOIN, 0,
				  ov->link[i].request_id);
		}
	}
}

static void misses_tick(struct rly_ctl_peers *p, struct ov_stream *ov, uint64_t now_ms)
{
	for (unsigned m = 0; m < MISS_MAX; m++) {
		struct ov_miss *x = &ov->miss[m];
		uint64_t lo[RLY_IWANT_RUNS], hi[RLY_IWANT_RUNS];
		struct rly_ctl_logline l;
		struct ov_link *k;
		unsigned n;
		int s;

		if (!x->used || now_ms < x->deadline_ms)
			continue;
		x->used = 0;
		k = &ov->link[x->from];
		/* Still missing now, past the wait: not an eager copy running late. */
		n = holes(p, snap_find(p, ov, x->publisher, x->chain), x->want, lo, hi,
			  RLY_IWANT_RUNS);
		if (n == 0 || k->st == L_NONE || k->st == L_JOINING)
			continue;
		s = k->sess;
		/* Graft even if we hold it eager: the peer's IHAVE says it holds the link lazy. */
		peers_count(p, RLY_CTR_CTL_GRAFTS);
		k->hold_ms = now_ms + EAGER_HOLD_MS;
		send_link(p, ov, s, RLY_MSG_PEER_JOIN, RLY_LINK_GRAFT, 0, 0);
		set_eager(p, ov, x->from, now_ms);
		if (ov_log(&l, RLY_LOG_INFO, "link_grafted", ov)) {
			rly_ctl_log_addr(&l, "peer", p->sess[s].ep.ip_be, p->sess[s].ep.udp_port_be);
			rly_ctl_log_u64(&l, "chain", x->chain);
			rly_ctl_log_u64(&l, "first_missing", lo[0]);
			rly_ctl_log_u64(&l, "runs", n);
			rly_ctl_log_u64(&l, "announced", x->want);
			rly_ctl_log_end(&l);
		}
		/* One IWANT per run; the last is open-ended when it runs past our highest: what the
		 * announcer got while we waited was not pushed to us either. */
		for (unsigned r = 0; r < n; r++) {
			struct rly_wire_peer_iwant w;

			memset(&w, 0, sizeof(w));
			memcpy(w.stream_key, ov->key, RLY_STREAM_KEY_LEN);
			rly_be32_store(&w.partition, ov->partition);
			rly_be32_store(&w.chain, x->chain);
			memcpy(w.publisher, x->publisher, RLY_ID_LEN);
			rly_be64_store(&w.from_seq, lo[r]);
			rly_be64_store(&w.to_seq, hi[r]);
			rly_be64_store(&w.request_id, peers_rand64());
			memcpy(w.token, p->sess[s].their_token, RLY_COOKIE_LEN);
			sess_send(p, s, RLY_MSG_PEER_IWANT, &w);
		}
	}
}

/* Read the chains of the dedup region that moved recently. */
static void snapshot(struct rly_ctl_peers *p)
{
	uint64_t now_tsc = tsc_now();

	p->n_snap = 0;
	if (!p->dedup)
		return;
	for (uint32_t i = 0; i < p->dedup_chains && p->n_snap < SNAP_MAX; i++) {
		const struct rly_dedup_chain *d = (const void *)(p->dedup + (uint64_t)i * p->dedup_stride);
		struct snap_chain *c = &p->snap[p->n_snap];
		uint64_t tag = __atomic_load_n(&d->tag, __ATOMIC_ACQUIRE);
		uint64_t last;

		if (tag <= RLY_DEDUP_TAG_RECLAIMING)
			continue;
		memcpy(c->key, d->stream_key, RLY_STREAM_KEY_LEN);
		c->partition = d->partition;
		memcpy(c->publisher, d->publisher, RLY_ID_LEN);
		c->chain = d->chain;
		c->highest = __atomic_load_n(&d->highest, __ATOMIC_ACQUIRE);
		c->first_src = __atomic_load_n(&d->first_src, __ATOMIC_RELAXED);
		c->first_seq = d->first_seq;
		last = __atomic_load_n(&d->last_tsc, __ATOMIC_RELAXED);
		/* The identity we copied belongs to the tag we saw only if the tag did not move. */
		if (__atomic_load_n(&d->tag, __ATOMIC_ACQUIRE) != tag || c->highest == 0)
			continue;
		c->age_ms = p->tsc_hz && now_tsc > last ? (now_tsc - last) * 1000u / p->tsc_hz : 0;
		if (c->age_ms > SNAP_MAX_AGE_MS)
			continue;
		c->idx = i;
		if (p->seen_tag) {
			if (p->seen_tag[i] != tag) {
				p->seen_tag[i] = tag;
				p->seen_ms[i] = p->now_ms;
			}
			c->seen_ms = p->seen_ms[i];
		} else {
			c->seen_ms = p->now_ms;
		}
		p->n_snap++;
	}
}

/*
 * Score, per chain of the stream, the link that brought its newest message (the dataplane's
 * first_src): every look decays all scores by 1/8 and adds 64 to that link's. The link with the
 * best score of some chain is that chain's publisher's fastest path here, and is never pruned:
 * one eager set serves every publisher of the stream, and Plumtree prunes per link, not per
 * source, so without this a link that is redundant for one publisher and the only fast path of
 * another is cut and repaired over and over.
 */
static void note_firsts(struct rly_ctl_peers *p, struct ov_stream *ov, uint64_t now_ms)
{
	for (uint32_t i = 0; i < p->n_snap; i++) {
		const struct snap_chain *c = &p->snap[i];
		struct ov_first *f = NULL, *oldest = &ov->first[0];

		if (!c->first_src || c->age_ms > 2u * p->cfg.ihave_ms ||
		    c->partition != ov->partition || memcmp(c->key, ov->key, RLY_STREAM_KEY_LEN) != 0)
			continue;
		for (unsigned k = 0; k < FIRST_CHAINS && !f; k++) {
			struct ov_first *x = &ov->first[k];
			if (x->used && x->chain == c->chain &&
			    memcmp(x->publisher, c->publisher, RLY_ID_LEN) == 0)
				f = x;
			else if (!x->used || x->seen_ms < oldest->seen_ms)
				oldest = !oldest->used ? oldest : x;
		}
		if (!f) {
			f = oldest;
			memset(f, 0, sizeof(*f));
			f->used = 1;
			memcpy(f->publisher, c->publisher, RLY_ID_LEN);
			f->chain = c->chain;
		}
		f->seen_ms = now_ms;
		for (unsigned k = 0; k < RLY_PEER_DEGREE_CAP; k++) {
			const struct rly_endpoint *ep;

			f->score[k] = (uint16_t)(f->score[k] - f->score[k] / 8u);
			if (ov->link[k].st == L_NONE)
				continue;
			ep = &p->sess[ov->link[k].sess].ep;
			if (((uint64_t)ep->ip_be << 16 | ep->udp_port_be) == c->first_src)
				f->score[k] = (uint16_t)(f->score[k] + 64u);
		}
	}
	/* Chains that stopped moving stop protecting anything. */
	for (unsigned k = 0; k < FIRST_CHAINS; k++)
		if (ov->first[k].used && now_ms - ov->first[k].seen_ms > 10000u)
			ov->first[k].used = 0;
}

static void ihave_send(struct rly_ctl_peers *p, struct ov_stream *ov)
{
	struct rly_wire_peer_ihave b;
	unsigned n = 0;

	if (link_count(ov, L_LAZY) == 0)
		return;
	memset(&b, 0, sizeof(b));
	memcpy(b.stream_key, ov->key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&b.partition, ov->partition);
	/* At most RLY_IHAVE_MAX chains: the most recently active, where a hole is likely. */
	uint64_t age[RLY_IHAVE_MAX];
	for (uint32_t i = 0; i < p->n_snap; i++) {
		const struct snap_chain *c = &p->snap[i];
		unsigned at = n;

		if (c->partition != ov->partition || memcmp(c->key, ov->key, RLY_STREAM_KEY_LEN) != 0)
			continue;
		if (n == RLY_IHAVE_MAX) {
			at = 0;
			for (unsigned k = 1; k < n; k++)
				if (age[k] > age[at])
					at = k;
			if (age[at] <= c->age_ms)
				continue;
		} else {
			n++;
		}
		memcpy(b.e[at].publisher, c->publisher, RLY_ID_LEN);
		rly_be32_store(&b.e[at].chain, c->chain);
		rly_be64_store(&b.e[at].highest, c->highest);
		age[at] = c->age_ms;
	}
	if (n == 0)
		return;
	b.n = (uint8_t)n;
	for (int i = 0; i < (int)RLY_PEER_DEGREE_CAP; i++) {
		if (ov->link[i].st != L_LAZY || p->sess[ov->link[i].sess].st != S_UP)
			continue;
		memcpy(b.token, p->sess[ov->link[i].sess].their_token, RLY_COOKIE_LEN);
		sess_send(p, ov->link[i].sess, RLY_MSG_PEER_IHAVE, &b);
		peers_count(p, RLY_CTR_CTL_IHAVE_SENT);
	}
}

static void local_cb(void *arg, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition)
{
	struct rly_ctl_peers *p = arg;

	ov_local(p, key, partition, p->now_ms);
}

unsigned ov_tick(struct rly_ctl_peers *p, uint64_t now_ms)
{
	unsigned work = 0, overlays = 0, eager = 0, lazy = 0;
	int ihave = now_ms >= p->next_ihave_ms;

	if (now_ms >= p->next_local_ms && p->io.foreach_local) {
		p->next_local_ms = now_ms + 1000;
		p->io.foreach_local(p->io.ctx, local_cb, p);
	}
	if (ihave) {
		p->next_ihave_ms = now_ms + p->cfg.ihave_ms;
		snapshot(p);
	}
	for (unsigned o = 0; o < p->ov_max; o++) {
		struct ov_stream *ov = &p->ov[o];

		if (!ov->used)
			continue;
		if (now_ms >= ov->next_maint_ms) {
			ov->next_maint_ms = now_ms + MAINT_MS;
			maint(p, ov, now_ms);
			work++;
			if (!ov->used)
				continue;
		}
		misses_tick(p, ov, now_ms);
		if (ihave) {
			if (p->cfg.keep_fastest)
				note_firsts(p, ov, now_ms);
			ihave_send(p, ov);
		}
		overlays += ov->member;
		eager += link_count(ov, L_EAGER);
		lazy += link_count(ov, L_LAZY);
	}
	orphans_tick(p, now_ms);
	peers_gauge(p, RLY_CTR_CTL_OVERLAYS, overlays);
	peers_gauge(p, RLY_CTR_CTL_LINKS_EAGER, eager);
	peers_gauge(p, RLY_CTR_CTL_LINKS_LAZY, lazy);
	return work;
}

int rly_ctl_peers_overlay_info(const struct rly_ctl_peers *p, const uint8_t key[RLY_STREAM_KEY_LEN],
			       uint32_t partition, struct rly_ctl_overlay_info *out)
{
	const struct ov_stream *ov = ov_find(p, key, partition);

	memset(out, 0, sizeof(*out));
	if (!ov)
		return -ENOENT;
	out->member = ov->member;
	out->eager = link_count(ov, L_EAGER);
	out->lazy = link_count(ov, L_LAZY);
	out->joining = link_count(ov, L_JOINING);
	for (unsigned c = 0; c < CAND_MAX; c++)
		out->candidates += ov->cand[c].ip_be != 0;
	return 0;
}
