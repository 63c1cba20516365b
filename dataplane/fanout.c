/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fan-out: every data message goes to every endpoint of its stream's subscriber set.
 *
 * Per rx burst, messages are collected into groups by subscriber set (so by stream, in practice),
 * each group a list of slices: runs of consecutive messages of one datagram. Then each group is
 * laid out once into output datagrams of at most dgram_max bytes, several input datagrams' messages
 * sharing one output datagram (MoldUDP64-style; only messages already in hand are combined, none
 * is held back to wait for more), and each output datagram is copied to every endpoint with that
 * endpoint's headers. Its payload checksum is computed once, for the first copy.
 *
 * Why copy rather than chain a shared payload: on this machine a flat copy into a fresh mbuf
 * measured 12.8 ns per 64-byte delivery against 17.9 ns for a header mbuf chained to a refcounted
 * payload and 35 ns for rte_pktmbuf_clone (../shared/notes/dpdk-on-debian12.md, section 4), and a
 * copy is what lets messages of several datagrams share one output datagram.
 * A single subscriber gets the received frame itself, headers rewritten, when an output datagram
 * is exactly one received datagram: no copy at all at fan-out 1. Several subscribers share one
 * payload mbuf per output datagram, made once; each gets a header chained to it, or a copy of it
 * where the port cannot send chains or the datagram is too small for a chain to pay (see
 * emit_shared and bench/RESULTS.md for the measurements behind --chain-min-bytes).
 *
 * Order: within a group, slices keep arrival order and each endpoint's datagrams are sent in
 * layout order on one tx queue, so every subscriber sees each publisher chain in order.
 *
 * Peers (see dataplane/README.md): a set with peer endpoints (n_peers > 0) has its messages
 * checked against the dedup table first, and a message that came from one of its peers skips that
 * peer (split horizon): groups are per (set, skipped endpoint). Sets without peers take none of
 * these branches beyond one test of n_peers per message. Messages from anything but a peer of
 * their stream are reported to relay-control as the stream's publisher now and then (the stream
 * joins the overlay), and duplicates from a peer as such (that eager link is pruned).
 */
#include <rte_memcpy.h>

/* Most frames one payload mbuf is chained under (its reference count is a uint16_t). */
#define RLY_CHAIN_MAX_REFS 32767u

#include "dataplane/worker.h"
#include "relay/wire.h"

void rly_fanout_begin(struct rly_worker *w, struct rte_mbuf **rx, uint16_t port)
{
	struct rly_fanout *fo = &w->fo;

	fo->n_groups = 0;
	fo->n_slices = 0;
	fo->reused_mask = 0;
	fo->rx = rx;
	fo->port = port;
	/* One shared load per burst: a changed table empties the lookup cache. */
	uint64_t gen = rly_subtable_generation(w->table);
	if (unlikely(gen != fo->cache_gen)) {
		for (unsigned i = 0; i < RLY_LOOKUP_CACHE; i++)
			fo->cache[i].used = 0;
		fo->cache_gen = gen;
		fo->admit_on = (uint32_t)rly_subtable_admit_on(w->table);
	}
}

void rly_fanout_close(struct rly_worker *w)
{
	if (w->n_stash)
		rte_pktmbuf_free_bulk(w->stash, w->n_stash);
	w->n_stash = 0;
}

/* The sum of a finished output datagram: its new 8-byte header plus the slices it carries. */
static void finish_out(struct rly_fo_out *o, uint32_t body_sum)
{
	uint8_t hdr[sizeof(struct rly_wire_dgram_hdr)];

	rly_wire_put_dgram_hdr(hdr, RLY_MSG_DATA,
			       (uint16_t)(sizeof(struct rly_wire_dgram_hdr) + o->bytes), o->n_msgs);
	o->sum = rly_sum_fold(rly_sum_bytes(hdr, sizeof(hdr)) + body_sum);
}

/*
 * Lay the group's slices out into output datagrams and work out each one's payload checksum from
 * the slices' sums (known from receive for whole datagrams), so no output byte is read for it.
 * Returns how many datagrams.
 */
static unsigned layout(struct rly_worker *w, const struct rly_fo_group *g, struct rly_fo_out *out)
{
	struct rly_fanout *fo = &w->fo;
	const unsigned room = w->cfg->dgram_max - sizeof(struct rly_wire_dgram_hdr);
	uint32_t body_sum = 0;
	unsigned n = 0;

	for (int16_t s = g->head; s >= 0; s = fo->slice[s].next) {
		struct rly_fo_slice *sl = &fo->slice[s];
		struct rly_fo_out *o = &out[n - 1];

		if (n == 0 || !w->cfg->batch || o->bytes + sl->len > room) {
			if (n)
				finish_out(o, body_sum);
			o = &out[n++];
			o->first = s;
			o->n_slices = 0;
			o->bytes = 0;
			o->n_msgs = 0;
			body_sum = 0;
		}
		if (!sl->sum_valid) {
			sl->sum = rly_sum_bytes(sl->p, sl->len);
			sl->sum_valid = 1;
		}
		/* The header is 8 bytes, so a slice's parity in the datagram is that of o->bytes. */
		body_sum += rly_sum_at(sl->sum, o->bytes & 1);
		o->n_slices++;
		o->bytes += sl->len;
		o->n_msgs += sl->n_msgs;
		o->reuse_src = (o->n_slices == 1 && sl->reuse) ? (int8_t)sl->src : -1;
	}
	if (n)
		finish_out(&out[n - 1], body_sum);
	return n;
}

/* Copy the group's slices of output datagram @p o, with its datagram header, to @p p. */
static void copy_slices(const struct rly_fanout *fo, const struct rly_fo_out *o, uint8_t *p)
{
	rly_wire_put_dgram_hdr(p, RLY_MSG_DATA, (uint16_t)(sizeof(struct rly_wire_dgram_hdr) + o->bytes),
			       o->n_msgs);
	p += sizeof(struct rly_wire_dgram_hdr);
	for (int16_t s = o->first, i = 0; i < o->n_slices; s = fo->slice[s].next, i++) {
		rte_memcpy(p, fo->slice[s].p, fo->slice[s].len);
		p += fo->slice[s].len;
	}
}

static void send_frame(struct rly_worker *w, struct rte_mbuf *m, const struct rly_endpoint *ep,
		       const struct rly_fo_out *o, uint16_t udp_len)
{
	rly_hdr_write(rte_pktmbuf_mtod(m, uint8_t *), &w->cfg->tmpl[ep->port_id], ep, udp_len, o->sum);
	m->data_len = (uint16_t)(RLY_HDRS_LEN + udp_len);
	m->pkt_len = m->data_len;
	rly_worker_tx(w, ep->port_id, m);
}

/* One endpoint: copy the slices into a fresh frame, or send a received frame on unchanged. */
static void emit_single(struct rly_worker *w, const struct rly_endpoint *ep, struct rly_fo_out *out,
			unsigned n_out)
{
	struct rly_fanout *fo = &w->fo;
	uint64_t delivered = 0, dropped = 0;

	for (unsigned k = 0; k < n_out; k++) {
		const struct rly_fo_out *o = &out[k];
		const uint16_t udp_len = (uint16_t)(sizeof(struct rly_wire_dgram_hdr) + o->bytes);
		struct rte_mbuf *m;

		if (o->reuse_src >= 0) {
			/* The received frame already holds these exact bytes after its headers. */
			m = fo->rx[o->reuse_src];
			fo->reused_mask |= 1u << o->reuse_src;
		} else {
			m = rly_worker_mbuf(w);
			if (unlikely(m == NULL)) {
				dropped += o->n_msgs;
				continue;
			}
			copy_slices(fo, o, rte_pktmbuf_mtod_offset(m, uint8_t *, RLY_HDRS_LEN));
		}
		send_frame(w, m, ep, o, udp_len);
		delivered += o->n_msgs;
	}
	RLY_CTR_ADD(w, DELIVERIES, delivered);
	RLY_CTR_ADD(w, DROP_NOMBUF, dropped);
	if (unlikely(ep->flags & RLY_EP_F_PEER))
		RLY_CTR_ADD(w, PEER_DELIVERIES, delivered);
}

/*
 * The payload of output datagram @p o as one mbuf holding exactly its UDP payload: the received
 * frame itself, trimmed to it, when it is that frame's whole datagram; else the slices assembled
 * once into a fresh mbuf. NULL if the pool is empty.
 */
static struct rte_mbuf *shared_payload(struct rly_worker *w, const struct rly_fo_out *o,
				       uint16_t udp_len)
{
	struct rly_fanout *fo = &w->fo;
	struct rte_mbuf *p;

	if (o->reuse_src >= 0) {
		p = fo->rx[o->reuse_src];
		fo->reused_mask |= 1u << o->reuse_src;
		rte_pktmbuf_adj(p, RLY_HDRS_LEN);
	} else {
		p = rly_worker_mbuf(w);
		if (unlikely(p == NULL))
			return NULL;
		copy_slices(fo, o, rte_pktmbuf_mtod(p, uint8_t *));
	}
	p->data_len = udp_len;
	p->pkt_len = udp_len;
	return p;
}

/*
 * Several endpoints. Each output datagram's payload is made once (shared_payload); then every
 * endpoint on a port that sends chained mbufs gets a 42-byte header mbuf chained to it (the
 * ipv4_multicast pattern: the payload's reference count is set once, not touched per copy), and
 * others get a copy. Below --chain-min-bytes a copy is cheaper than the extra mbuf, and is used.
 * Endpoint @p skip (or none, -1) gets nothing: the endpoints are walked as the ranges around it,
 * so the plain case pays no test per endpoint.
 */
static void emit_shared(struct rly_worker *w, const struct rly_sub_set *set, int32_t skip,
			struct rly_fo_out *out, unsigned n_out)
{
	const struct rly_dp_config *cfg = w->cfg;
	const uint32_t targets = set->n - (skip >= 0);
	const unsigned n_ranges = skip >= 0 ? 2 : 1;
	const uint32_t first_end = skip >= 0 ? (uint32_t)skip : set->n;
	uint64_t delivered = 0, dropped = 0, peer_msgs = 0, peer_dropped = 0;

	for (unsigned k = 0; k < n_out; k++) {
		const struct rly_fo_out *o = &out[k];
		const uint16_t udp_len = (uint16_t)(sizeof(struct rly_wire_dgram_hdr) + o->bytes);
		const int chain_size = cfg->chain_min && udp_len >= cfg->chain_min;
		struct rte_mbuf *p = shared_payload(w, o, udp_len);
		uint32_t refs = 0, chained = 0;

		if (unlikely(p == NULL)) {
			dropped += (uint64_t)o->n_msgs * targets;
			continue;
		}
		peer_msgs += o->n_msgs;
		/*
		 * Every reference exists before the first frame leaves: a PMD may free it at once. A
		 * reference count is 16 bits: past RLY_CHAIN_MAX_REFS endpoints the rest get copies.
		 */
		if (chain_size) {
			uint32_t e;
			for (e = 0; e < set->n && refs < RLY_CHAIN_MAX_REFS; e++)
				refs += cfg->port_chain[set->ep[e].port_id];
			/* The skipped endpoint was counted if the walk reached it. */
			if (skip >= 0 && (uint32_t)skip < e)
				refs -= cfg->port_chain[set->ep[skip].port_id];
		}
		rte_mbuf_refcnt_update(p, (int16_t)refs);

		for (unsigned r = 0; r < n_ranges; r++)
		for (uint32_t e = r ? (uint32_t)skip + 1 : 0, end = r ? set->n : first_end; e < end; e++) {
			const struct rly_endpoint *ep = &set->ep[e];
			const int chain = chained < refs && cfg->port_chain[ep->port_id];
			struct rte_mbuf *m = rly_worker_mbuf(w);

			chained += (uint32_t)chain;

			if (unlikely(m == NULL)) {
				if (chain)
					rte_pktmbuf_free(p); /* the reference this frame would have held */
				dropped += o->n_msgs;
				if (ep->flags & RLY_EP_F_PEER)
					peer_dropped += o->n_msgs;
				continue;
			}
			if (chain) {
				rly_hdr_write(rte_pktmbuf_mtod(m, uint8_t *), &cfg->tmpl[ep->port_id], ep,
					      udp_len, o->sum);
				m->data_len = RLY_HDRS_LEN;
				m->next = p;
				m->nb_segs = 2;
				m->pkt_len = (uint32_t)RLY_HDRS_LEN + udp_len;
				rly_worker_tx(w, ep->port_id, m);
			} else {
				rte_memcpy(rte_pktmbuf_mtod_offset(m, uint8_t *, RLY_HDRS_LEN),
					   rte_pktmbuf_mtod(p, const uint8_t *), udp_len);
				send_frame(w, m, ep, o, udp_len);
			}
			delivered += o->n_msgs;
		}
		rte_pktmbuf_free(p); /* our own reference */
	}
	RLY_CTR_ADD(w, DELIVERIES, delivered);
	RLY_CTR_ADD(w, DROP_NOMBUF, dropped);
	if (unlikely(set->n_peers)) {
		uint32_t peers = set->n_peers - (skip >= 0 && (set->ep[skip].flags & RLY_EP_F_PEER));
		RLY_CTR_ADD(w, PEER_DELIVERIES, peer_msgs * peers - peer_dropped);
	}
}

static void emit_group(struct rly_worker *w, const struct rly_fo_group *g)
{
	const struct rly_sub_set *set = g->set;
	struct rly_fo_out *out = w->fo.out;
	unsigned n_out;

	const struct rly_endpoint *one = set->n == 1 ? &set->ep[0] : NULL;

	if (unlikely(g->skip >= 0)) {
		RLY_CTR_ADD(w, SPLIT_HORIZON, g->n_msgs);
		if (set->n == 1)
			return; /* its only endpoint is the peer it came from */
		/* One endpoint left: it gets the received frame itself where it can. */
		if (set->n == 2)
			one = &set->ep[g->skip == 0 ? 1 : 0];
	}
	/* One call site each: the compiler keeps both inlined into the flush loop. */
	n_out = layout(w, g, out);
	if (one)
		emit_single(w, one, out, n_out);
	else
		emit_shared(w, set, g->skip, out, n_out);
}

void rly_fanout_flush(struct rly_worker *w)
{
	struct rly_fanout *fo = &w->fo;

	for (uint16_t g = 0; g < fo->n_groups; g++)
		emit_group(w, &fo->group[g]);
	fo->n_groups = 0;
	fo->n_slices = 0;
}

/*
 * The group to append to: the set's latest group if it skips the same endpoint, else a new one
 * (appending to an earlier group of the set would send its messages before ones that arrived
 * earlier in another group). -1 when the scratch is full.
 */
static inline __attribute__((always_inline)) int group_of(struct rly_fanout *fo,
							   const struct rly_sub_set *set,
							   int32_t skip)
{
	for (int g = fo->n_groups - 1; g >= 0; g--) {
		if (fo->group[g].set != set)
			continue;
		if (fo->group[g].skip == skip)
			return g;
		break;
	}
	if (fo->n_groups == RLY_FANOUT_GROUPS)
		return -1;
	fo->group[fo->n_groups] =
		(struct rly_fo_group){.set = set, .head = -1, .tail = -1, .skip = skip};
	return fo->n_groups++;
}

/*
 * The message's lookup slot, whose set (NULL: no subscriber) is where it goes; NULL when
 * admission is on and the stream's admission list does not admit its publisher. A slot remembers
 * the last publisher it admitted, so a run of messages from one publisher costs one 32-byte
 * compare each.
 */
static struct rly_lookup_slot *lookup(struct rly_worker *w, const struct rly_wire_msg_hdr *h)
{
	struct rly_fanout *fo = &w->fo;
	uint32_t partition = rly_be32_load(&h->partition);
	/* Stream keys are hashes already: their first byte spreads streams over the slots. */
	struct rly_lookup_slot *c = &fo->cache[(h->stream_key[0] ^ partition) % RLY_LOOKUP_CACHE];

	/*
	 * A few hot streams carry most messages (market data): their lookups come from here,
	 * saving the hash-table walk (about 110 instructions per message at one-frame bursts,
	 * callgrind) until the table changes.
	 */
	if (!c->used || c->partition != partition ||
	    memcmp(c->key, h->stream_key, RLY_STREAM_KEY_LEN) != 0) {
		c->set = rly_subtable_lookup(w->table, h->stream_key, partition);
		c->admit = fo->admit_on ? rly_subtable_admit_lookup(w->table, h->stream_key) : NULL;
		c->admitted_valid = 0;
		c->chain = NULL;
		memcpy(c->key, h->stream_key, RLY_STREAM_KEY_LEN);
		c->partition = partition;
		c->used = 1;
	}
	if (fo->admit_on &&
	    !(c->admitted_valid && memcmp(c->admitted_pk, h->publisher, RLY_ID_LEN) == 0)) {
		if (!rly_admit_allows(c->admit, h->publisher))
			return NULL;
		memcpy(c->admitted_pk, h->publisher, RLY_ID_LEN);
		c->admitted_valid = 1;
	}
	return c;
}

/* 1 if a report about message @p h's stream may go now (struct rly_report_gate). */
static int report_due(struct rly_report_gate *g, const struct rly_wire_msg_hdr *h, uint64_t now,
		      uint64_t every)
{
	const uint32_t partition = rly_be32_load(&h->partition);
	const int same = g->partition == partition &&
			 memcmp(g->key, h->stream_key, RLY_STREAM_KEY_LEN) == 0;

	if (now - g->tsc < (same ? every : every / 2))
		return 0;
	g->tsc = now;
	g->partition = partition;
	memcpy(g->key, h->stream_key, RLY_STREAM_KEY_LEN);
	return 1;
}

/*
 * Tell relay-control about message @p h (its 96-byte header) and where it came from: the
 * datagram's source, and the sender's MAC from rx frame @p src. Reports are not subscriber
 * traffic: they use the open half of the punt ring.
 */
static __attribute__((noinline, cold)) void report(struct rly_worker *w, uint16_t flags,
						     const struct rly_wire_msg_hdr *h, uint8_t src)
{
	struct rly_fanout *fo = &w->fo;
	struct rly_pkt_rec *r = &w->punt_rec;
	const struct rte_ether_hdr *eth = rte_pktmbuf_mtod(fo->rx[src], const struct rte_ether_hdr *);

	r->port_id = fo->port;
	r->len = sizeof(*h);
	r->ip_be = fo->src_ip_be;
	r->udp_port_be = fo->src_port_be;
	memcpy(r->mac, &eth->src_addr, sizeof(r->mac));
	r->worker = w->id;
	r->flags = flags;
	r->reserved2 = 0;
	r->rx_tsc = w->now;
	memcpy(r->data, h, sizeof(*h));
	if (rly_worker_punt(w, 0))
		RLY_CTR_ADD(w, PUNT_REPORTS, 1);
}

static __attribute__((noinline, cold)) void report_published(struct rly_worker *w,
							       struct rly_lookup_slot *c,
							       const struct rly_wire_msg_hdr *h,
							       uint8_t src)
{
	if (report_due(&c->published, h, w->now, w->pub_every))
		report(w, RLY_PKT_F_PUBLISHED, h, src);
}

/* A message from a local publisher: report it now and then (once per second per stream). */
static inline void on_published(struct rly_worker *w, struct rly_lookup_slot *c,
				const struct rly_wire_msg_hdr *h, uint8_t src)
{
	/* The common case is one subtraction and one compare: a report went out less than
	 * half an interval ago. */
	if (likely(w->now - c->published.tsc < w->pub_every / 2))
		return;
	report_published(w, c, h, src);
}

static __attribute__((noinline, cold)) struct rly_hist_chain *
claim_hist(struct rly_worker *w, struct rly_dedup_chain *chain, uint64_t tag)
{
	const struct rly_dedup *d = w->cfg->dedup;
	struct rly_hist_chain *hc;

	/* None was free a moment ago: look again only once the retry time has passed. */
	if (__atomic_load_n(&chain->hist, __ATOMIC_RELAXED) == RLY_HIST_NONE &&
	    w->now < __atomic_load_n(&chain->hist_retry_tsc, __ATOMIC_RELAXED))
		return NULL;
	hc = rly_hist_claim(&d->hist, chain, tag, rly_dedup_index(d, chain), w->now,
			    w->cfg->hist_retry_tsc);
	if (hc == NULL)
		RLY_CTR_ADD(w, HIST_NO_SLOT, 1);
	return hc;
}

/*
 * Keep message @p h, just accepted as new in @p chain, in the chain's history (subscribers' NAKs
 * and peers' IWANTs are answered from it). A chain's first message gives it a history slot.
 */
static inline void keep(struct rly_worker *w, struct rly_dedup_chain *chain, uint64_t tag,
			const struct rly_wire_msg_hdr *h)
{
	const struct rly_dedup *d = w->cfg->dedup;
	struct rly_hist_chain *hc;

	if (d->hist.base == NULL || tag <= RLY_DEDUP_TAG_RECLAIMING)
		return;
	hc = rly_hist_of(&d->hist, chain, tag);
	if (unlikely(hc == NULL) && (hc = claim_hist(w, chain, tag)) == NULL)
		return;
	rly_hist_append(&d->hist, hc, rly_be64_load(&h->seq), h, (uint32_t)rly_wire_msg_size(h));
}

/*
 * Check message @p h of lookup slot @p ls's stream against the dedup table: with the chain the
 * slot remembers when it is still h's (a run of one publisher's messages skips the hash and the
 * probe), else found (or claimed) and remembered. Its chain and tag in *@p chain, *@p tag.
 */
static inline enum rly_dedup_result dedup(struct rly_worker *w, struct rly_lookup_slot *ls,
					  const struct rly_wire_msg_hdr *h,
					  struct rly_dedup_chain **chain, uint64_t *tag)
{
	const struct rly_dedup *d = w->cfg->dedup;
	const uint64_t src = rly_dedup_src(w->fo.src_ip_be, w->fo.src_port_be);
	enum rly_dedup_result r;

	if (rly_dedup_still(ls->chain, ls->chain_tag, h)) {
		*chain = ls->chain;
		*tag = ls->chain_tag;
		return rly_dedup_check_in(d, ls->chain, h, w->now, src);
	}
	r = rly_dedup_check_at(d, h, w->now, src, chain);
	if (*chain != NULL) {
		*tag = __atomic_load_n(&(*chain)->tag, __ATOMIC_ACQUIRE);
		ls->chain = *chain;
		ls->chain_tag = *tag;
	}
	return r;
}

/*
 * A message of a set without peers, on a relay that keeps a history: de-duplicated (a publisher's
 * own duplicates included) and kept. 1: forward it; 0: drop it.
 */
static inline int track(struct rly_worker *w, struct rly_lookup_slot *ls,
			const struct rly_wire_msg_hdr *h)
{
	struct rly_dedup_chain *chain;
	uint64_t tag = 0;

	switch (dedup(w, ls, h, &chain, &tag)) {
	case RLY_DEDUP_NEW:
		keep(w, chain, tag, h);
		return 1;
	case RLY_DEDUP_UNTRACKED:
		RLY_CTR_ADD(w, DEDUP_UNTRACKED, 1);
		return 1;
	case RLY_DEDUP_DUPLICATE:
		RLY_CTR_ADD(w, DEDUP_DUPLICATES, 1);
		return 0;
	case RLY_DEDUP_TOO_OLD:
	default:
		RLY_CTR_ADD(w, DEDUP_TOO_OLD, 1);
		return 0;
	}
}

/* What a message of a set with peers does: the endpoint it skips, or SKIP_ALL (not forwarded). */
#define SKIP_ALL (-2)

static __attribute__((noinline)) int32_t on_peer_set(struct rly_worker *w,
						      struct rly_lookup_slot *c,
						      const struct rly_sub_set *set,
						      const struct rly_wire_msg_hdr *h, uint8_t src)
{
	struct rly_fanout *fo = &w->fo;
	const int32_t from = rly_sub_set_peer(set, fo->src_ip_be, fo->src_port_be);
	struct rly_dedup_chain *chain = NULL;
	uint64_t tag = 0;

	if (from >= 0)
		RLY_CTR_ADD(w, PEER_RX_MSGS, 1);
	else
		on_published(w, c, h, src);
	switch (w->cfg->dedup ? dedup(w, c, h, &chain, &tag) : RLY_DEDUP_UNTRACKED) {
	case RLY_DEDUP_NEW:
		keep(w, chain, tag, h);
		return from;
	case RLY_DEDUP_UNTRACKED:
		RLY_CTR_ADD(w, DEDUP_UNTRACKED, 1);
		return from;
	case RLY_DEDUP_DUPLICATE:
		RLY_CTR_ADD(w, DEDUP_DUPLICATES, 1);
		/* Plumtree: a duplicate over an eager link makes relay-control prune it; a repaired
		 * copy (an IWANT answer, forwarded) is expected to be one, and prunes nothing. */
		if (from >= 0 && !(h->ttl & RLY_TTL_F_REPAIR) &&
		    report_due(&c->duplicate, h, w->now, w->dup_every))
			report(w, RLY_PKT_F_DUPLICATE, h, src);
		return SKIP_ALL;
	case RLY_DEDUP_TOO_OLD:
	default:
		RLY_CTR_ADD(w, DEDUP_TOO_OLD, 1);
		return SKIP_ALL;
	}
}

void rly_fanout_add_dgram(struct rly_worker *w, uint8_t src, int reusable,
			  const struct rly_wire_view *v, uint16_t payload_sum, uint32_t src_ip_be,
			  uint16_t src_port_be)
{
	struct rly_fanout *fo = &w->fo;
	const struct rly_wire_msg_hdr *h;
	size_t off = 0;
	int cur_group = -1, cur_slice = -1, first_slice = -1;
	unsigned slices_here = 0, flushed = 0, no_subs = 0, refused_msgs = 0;

	fo->src_ip_be = src_ip_be;
	fo->src_port_be = src_port_be;
	while ((h = rly_wire_next_msg(v, &off)) != NULL) {
		struct rly_lookup_slot *c = lookup(w, h);
		const struct rly_sub_set *set;
		const uint16_t size = (uint16_t)rly_wire_msg_size(h);
		struct rly_fo_group *grp;
		int32_t skip = -1;
		int g;

		if (unlikely(c == NULL)) {
			refused_msgs++;
			cur_group = -1;
			continue;
		}
		set = c->set;
		if (likely(set == NULL || set->n_peers == 0)) {
			/* No peer here: the source is a publisher (joining the overlay needs it). */
			on_published(w, c, h, src);
			if (set == NULL) {
				no_subs++;
				cur_group = -1;
				continue;
			}
			if (w->cfg->track_all && !track(w, c, h)) {
				cur_group = -1;
				continue;
			}
		} else {
			skip = on_peer_set(w, c, set, h, src);
			if (skip == SKIP_ALL) {
				cur_group = -1;
				continue;
			}
		}
		g = group_of(fo, set, skip);
		if (g >= 0 && g == cur_group) {
			fo->slice[cur_slice].len += size;
			fo->slice[cur_slice].n_msgs++;
			fo->group[g].n_msgs++;
			continue;
		}
		if (g < 0 || fo->n_slices == RLY_FANOUT_SLICES) {
			/* Scratch full: send what is collected, then go on with an empty one. */
			rly_fanout_flush(w);
			flushed = 1;
			g = group_of(fo, set, skip);
		}
		grp = &fo->group[g];
		cur_slice = fo->n_slices++;
		fo->slice[cur_slice] = (struct rly_fo_slice){
			.p = (const uint8_t *)h, .len = size, .n_msgs = 1, .next = -1, .src = src};
		if (grp->tail >= 0)
			fo->slice[grp->tail].next = (int16_t)cur_slice;
		else
			grp->head = (int16_t)cur_slice;
		grp->tail = (int16_t)cur_slice;
		grp->n_msgs++;
		cur_group = g;
		if (slices_here++ == 0)
			first_slice = cur_slice;
	}
	if (no_subs)
		RLY_CTR_ADD(w, NO_SUBSCRIBERS, no_subs);
	if (refused_msgs)
		RLY_CTR_ADD(w, DROP_NOT_ADMITTED, refused_msgs);
	if (!flushed && slices_here == 1 && fo->slice[first_slice].n_msgs == v->count) {
		struct rly_fo_slice *sl = &fo->slice[first_slice];
		/* The body's sum is the payload's less its 8-byte header's: no pass over the bytes. */
		sl->whole = 1;
		sl->reuse = (uint8_t)reusable;
		sl->sum = rly_sum_sub(payload_sum, rly_sum_bytes(v->body - sizeof(struct rly_wire_dgram_hdr),
								  sizeof(struct rly_wire_dgram_hdr)));
		sl->sum_valid = 1;
	}
}
