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
 */
#include <rte_memcpy.h>

/* Most frames one payload mbuf is chained under (its reference count is a uint16_t). */
#define RLY_CHAIN_MAX_REFS 32767u

#include "dataplane/worker.h"
#include "relay/wire.h"

void rly_fanout_begin(struct rly_worker *w, struct rte_mbuf **rx)
{
	struct rly_fanout *fo = &w->fo;

	fo->n_groups = 0;
	fo->n_slices = 0;
	fo->reused_mask = 0;
	fo->rx = rx;
	/* One shared load per burst: a changed table empties the lookup cache. */
	uint64_t gen = rly_subtable_generation(w->table);
	if (unlikely(gen != fo->cache_gen)) {
		for (unsigned i = 0; i < RLY_LOOKUP_CACHE; i++)
			fo->cache[i].used = 0;
		fo->cache_gen = gen;
		fo->admit_on = (uint32_t)rly_subtable_admit_on(w->table);
	}
}

static struct rte_mbuf *mbuf_get(struct rly_worker *w)
{
	if (w->n_stash == 0) {
		if (rte_pktmbuf_alloc_bulk(w->pool, w->stash, RLY_MBUF_STASH) == 0)
			w->n_stash = RLY_MBUF_STASH;
		else
			return rte_pktmbuf_alloc(w->pool); /* pool nearly empty: what is left */
	}
	return w->stash[--w->n_stash];
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
			m = mbuf_get(w);
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
		p = mbuf_get(w);
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
 */
static void emit_shared(struct rly_worker *w, const struct rly_sub_set *set, struct rly_fo_out *out,
			unsigned n_out)
{
	const struct rly_dp_config *cfg = w->cfg;
	uint64_t delivered = 0, dropped = 0;

	for (unsigned k = 0; k < n_out; k++) {
		const struct rly_fo_out *o = &out[k];
		const uint16_t udp_len = (uint16_t)(sizeof(struct rly_wire_dgram_hdr) + o->bytes);
		const int chain_size = cfg->chain_min && udp_len >= cfg->chain_min;
		struct rte_mbuf *p = shared_payload(w, o, udp_len);
		uint32_t refs = 0;

		if (unlikely(p == NULL)) {
			dropped += (uint64_t)o->n_msgs * set->n;
			continue;
		}
		/*
		 * Every reference exists before the first frame leaves: a PMD may free it at once. A
		 * reference count is 16 bits: past RLY_CHAIN_MAX_REFS endpoints the rest get copies.
		 */
		if (chain_size)
			for (uint32_t e = 0; e < set->n && refs < RLY_CHAIN_MAX_REFS; e++)
				refs += cfg->port_chain[set->ep[e].port_id];
		rte_mbuf_refcnt_update(p, (int16_t)refs);

		for (uint32_t e = 0, chained = 0; e < set->n; e++) {
			const struct rly_endpoint *ep = &set->ep[e];
			const int chain = chained < refs && cfg->port_chain[ep->port_id];
			struct rte_mbuf *m = mbuf_get(w);

			chained += (uint32_t)chain;

			if (unlikely(m == NULL)) {
				if (chain)
					rte_pktmbuf_free(p); /* the reference this frame would have held */
				dropped += o->n_msgs;
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
}

static void emit_group(struct rly_worker *w, const struct rly_fo_group *g)
{
	struct rly_fo_out *out = w->fo.out;
	const unsigned n_out = layout(w, g, out);

	if (g->set->n == 1)
		emit_single(w, &g->set->ep[0], out, n_out);
	else
		emit_shared(w, g->set, out, n_out);
}

void rly_fanout_flush(struct rly_worker *w)
{
	struct rly_fanout *fo = &w->fo;

	for (uint16_t g = 0; g < fo->n_groups; g++)
		emit_group(w, &fo->group[g]);
	fo->n_groups = 0;
	fo->n_slices = 0;
}

static int group_of(struct rly_fanout *fo, const struct rly_sub_set *set)
{
	for (uint16_t g = 0; g < fo->n_groups; g++)
		if (fo->group[g].set == set)
			return g;
	if (fo->n_groups == RLY_FANOUT_GROUPS)
		return -1;
	fo->group[fo->n_groups] = (struct rly_fo_group){.set = set, .head = -1, .tail = -1};
	return fo->n_groups++;
}

/*
 * The message's subscriber set, or NULL when it goes nowhere. With admission on, a message whose
 * publisher the stream's admission list does not admit goes nowhere either (*@p refused = 1):
 * a slot remembers the last publisher it admitted, so a run of messages from one publisher costs
 * one 32-byte compare each.
 */
static const struct rly_sub_set *lookup(struct rly_worker *w, const struct rly_wire_msg_hdr *h,
					int *refused)
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
		memcpy(c->key, h->stream_key, RLY_STREAM_KEY_LEN);
		c->partition = partition;
		c->used = 1;
	}
	if (fo->admit_on &&
	    !(c->admitted_valid && memcmp(c->admitted_pk, h->publisher, RLY_ID_LEN) == 0)) {
		if (!rly_admit_allows(c->admit, h->publisher)) {
			*refused = 1;
			return NULL;
		}
		memcpy(c->admitted_pk, h->publisher, RLY_ID_LEN);
		c->admitted_valid = 1;
	}
	return c->set;
}

void rly_fanout_add_dgram(struct rly_worker *w, uint8_t src, int reusable,
			  const struct rly_wire_view *v, uint16_t payload_sum)
{
	struct rly_fanout *fo = &w->fo;
	const struct rly_wire_msg_hdr *h;
	size_t off = 0;
	int cur_group = -1, cur_slice = -1, first_slice = -1;
	unsigned slices_here = 0, flushed = 0, no_subs = 0, refused_msgs = 0;

	while ((h = rly_wire_next_msg(v, &off)) != NULL) {
		int refused = 0;
		const struct rly_sub_set *set = lookup(w, h, &refused);
		const uint16_t size = (uint16_t)rly_wire_msg_size(h);
		struct rly_fo_group *grp;
		int g;

		if (set == NULL) {
			refused_msgs += (unsigned)refused;
			no_subs += (unsigned)!refused;
			cur_group = -1;
			continue;
		}
		g = group_of(fo, set);
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
			g = group_of(fo, set);
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
