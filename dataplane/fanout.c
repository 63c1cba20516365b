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
 * The last endpoint of a set gets the received frame itself, headers rewritten, when an output
 * datagram is exactly one received datagram: no copy at all at fan-out 1.
 * With more than one endpoint, an output datagram made of several slices is first assembled once
 * in the worker's scratch area, so each endpoint costs one contiguous copy instead of one per slice
 * (callgrind, F=100, 64-byte messages: 100 -> see bench/RESULTS.md instructions per delivery).
 *
 * Order: within a group, slices keep arrival order and each endpoint's datagrams are sent in
 * layout order on one tx queue, so every subscriber sees each publisher chain in order.
 */
#include <rte_memcpy.h>

#include "dataplane/worker.h"
#include "relay/wire.h"

void rly_fanout_begin(struct rly_worker *w, struct rte_mbuf **rx)
{
	struct rly_fanout *fo = &w->fo;

	fo->n_groups = 0;
	fo->n_slices = 0;
	fo->reused_mask = 0;
	fo->rx = rx;
	fo->last_valid = 0;
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

/*
 * Give every output datagram one contiguous source: a received datagram that is passed on whole is
 * its own source; others are assembled in the scratch area. Worth it only for several endpoints.
 */
static void assemble(struct rly_worker *w, struct rly_fo_out *out, unsigned n_out)
{
	struct rly_fanout *fo = &w->fo;
	uint8_t *p = fo->scratch;

	for (unsigned k = 0; k < n_out; k++) {
		struct rly_fo_out *o = &out[k];
		const struct rly_fo_slice *first = &fo->slice[o->first];

		if (o->n_slices == 1 && first->whole) {
			o->src = first->p - sizeof(struct rly_wire_dgram_hdr);
			continue;
		}
		o->src = p;
		rly_wire_put_dgram_hdr(p, RLY_MSG_DATA,
				       (uint16_t)(sizeof(struct rly_wire_dgram_hdr) + o->bytes), o->n_msgs);
		p += sizeof(struct rly_wire_dgram_hdr);
		for (int16_t s = o->first, i = 0; i < o->n_slices; s = fo->slice[s].next, i++) {
			rte_memcpy(p, fo->slice[s].p, fo->slice[s].len);
			p += fo->slice[s].len;
		}
	}
}

static void emit_group(struct rly_worker *w, const struct rly_fo_group *g)
{
	struct rly_fanout *fo = &w->fo;
	const struct rly_sub_set *set = g->set;
	struct rly_fo_out *out = fo->out;
	const unsigned n_out = layout(w, g, out);
	const int contiguous = set->n > 1;
	uint64_t delivered = 0, dropped = 0;

	if (contiguous)
		assemble(w, out, n_out);

	for (uint32_t e = 0; e < set->n; e++) {
		const struct rly_endpoint *ep = &set->ep[e];
		const struct rly_hdr_tmpl *tmpl = &w->cfg->tmpl[ep->port_id];
		const int last = e + 1 == set->n;

		for (unsigned k = 0; k < n_out; k++) {
			struct rly_fo_out *o = &out[k];
			const uint16_t udp_len = (uint16_t)(sizeof(struct rly_wire_dgram_hdr) + o->bytes);
			struct rte_mbuf *m;
			uint8_t *frame;

			if (last && o->reuse_src >= 0) {
				/* The received frame already holds these exact bytes after its headers. */
				m = fo->rx[o->reuse_src];
				frame = rte_pktmbuf_mtod(m, uint8_t *);
				fo->reused_mask |= 1u << o->reuse_src;
			} else {
				uint8_t *p;

				m = mbuf_get(w);
				if (unlikely(m == NULL)) {
					dropped += o->n_msgs;
					continue;
				}
				frame = rte_pktmbuf_mtod(m, uint8_t *);
				p = frame + RLY_HDRS_LEN;
				if (contiguous) {
					rte_memcpy(p, o->src, udp_len);
				} else {
					rly_wire_put_dgram_hdr(p, RLY_MSG_DATA, udp_len, o->n_msgs);
					p += sizeof(struct rly_wire_dgram_hdr);
					for (int16_t s = o->first, i = 0; i < o->n_slices;
					     s = fo->slice[s].next, i++) {
						rte_memcpy(p, fo->slice[s].p, fo->slice[s].len);
						p += fo->slice[s].len;
					}
				}
			}
			rly_hdr_write(frame, tmpl, ep, udp_len, o->sum);
			m->data_len = (uint16_t)(RLY_HDRS_LEN + udp_len);
			m->pkt_len = m->data_len;
			rly_worker_tx(w, ep->port_id, m);
			delivered += o->n_msgs;
		}
	}
	RLY_CTR_ADD(w, DELIVERIES, delivered);
	RLY_CTR_ADD(w, DROP_NOMBUF, dropped);
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

static const struct rly_sub_set *lookup(struct rly_worker *w, const struct rly_wire_msg_hdr *h)
{
	struct rly_fanout *fo = &w->fo;
	uint32_t partition = rly_be32_load(&h->partition);

	/* Consecutive messages of one stream are the common case (market data): look up once. */
	if (fo->last_valid && fo->last_partition == partition &&
	    memcmp(fo->last_key, h->stream_key, RLY_STREAM_KEY_LEN) == 0)
		return fo->last_set;
	fo->last_set = rly_subtable_lookup(w->table, h->stream_key, partition);
	memcpy(fo->last_key, h->stream_key, RLY_STREAM_KEY_LEN);
	fo->last_partition = partition;
	fo->last_valid = 1;
	return fo->last_set;
}

void rly_fanout_add_dgram(struct rly_worker *w, uint8_t src, int reusable,
			  const struct rly_wire_view *v, uint16_t payload_sum)
{
	struct rly_fanout *fo = &w->fo;
	const struct rly_wire_msg_hdr *h;
	size_t off = 0;
	int cur_group = -1, cur_slice = -1, first_slice = -1;
	unsigned slices_here = 0, flushed = 0, no_subs = 0;

	while ((h = rly_wire_next_msg(v, &off)) != NULL) {
		const struct rly_sub_set *set = lookup(w, h);
		const uint16_t size = (uint16_t)rly_wire_msg_size(h);
		struct rly_fo_group *grp;
		int g;

		if (set == NULL) {
			no_subs++;
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
