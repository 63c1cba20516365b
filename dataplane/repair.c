/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A worker answers a subscriber's NAK from the history (see repair.h for the rules). Per NAK:
 * find the subscriber in its stream's set (else drop), its budget slot, the chain and its history
 * slot; then walk the asked ranges in order: held messages are copied straight from the history
 * into DATA datagrams of up to the MTU (several per datagram, `ttl` marked as a repair), and each
 * run of messages it cannot send becomes one GAP with the reason. What is beyond the chain's
 * highest is not answered at all (the relay has not got it yet; the subscriber asks again).
 *
 * Hot path: see repair.h.
 */
#include "dataplane/repair.h"

#include <string.h>

#include <rte_ip.h>
#include <rte_udp.h>

#include "common/hist.h"
#include "dataplane/worker.h"
#include "relay/wire.h"

void rly_repair_init(struct rly_repair *r, uint64_t bytes_s, uint64_t burst, uint64_t tsc_hz,
		     uint32_t seed)
{
	memset(r, 0, sizeof(*r));
	r->tsc_per_byte = bytes_s ? (tsc_hz / bytes_s ? tsc_hz / bytes_s : 1) : 0;
	r->burst = burst ? burst : 1;
	r->seed = seed;
}

/* An answer being built for one NAK: DATA datagrams and GAPs to one subscriber. */
struct answer {
	struct rly_worker *w;
	const struct rly_endpoint *ep;
	const struct rly_wire_nak *nak;
	uint64_t lowest;     /* for GAPs: the lowest seq held, as far as we know */
	struct rte_mbuf *m;  /* the DATA datagram being filled, or NULL */
	uint16_t len;	     /* its UDP payload so far, datagram header included */
	uint16_t count;	     /* messages in it */
	uint32_t msgs;	     /* messages sent in all */
	uint64_t bytes;	     /* their bytes */
	unsigned gaps;	     /* GAP datagrams sent */
};

/* Put our headers on UDP payload @p udp_len bytes long (already at its place in @p m) and send it. */
static void send_udp(struct rly_worker *w, const struct rly_endpoint *ep, struct rte_mbuf *m,
		     uint16_t udp_len)
{
	uint8_t *frame = rte_pktmbuf_mtod(m, uint8_t *);

	rly_hdr_write(frame, &w->cfg->tmpl[ep->port_id], ep, udp_len,
		      rly_sum_bytes(frame + RLY_HDRS_LEN, udp_len));
	m->data_len = (uint16_t)(RLY_HDRS_LEN + udp_len);
	m->pkt_len = m->data_len;
	rly_worker_tx(w, ep->port_id, m);
}

static void data_flush(struct answer *a)
{
	if (a->m == NULL)
		return;
	if (a->count == 0) {
		rte_pktmbuf_free(a->m);
	} else {
		rly_wire_put_dgram_hdr(rte_pktmbuf_mtod_offset(a->m, uint8_t *, RLY_HDRS_LEN),
				       RLY_MSG_DATA, a->len, a->count);
		send_udp(a->w, a->ep, a->m, a->len);
	}
	a->m = NULL;
}

/*
 * Copy message @p seq, whose record is at @p pos of slot @p hc (chain tag @p tag), into the
 * answer. 1: added; 0: it was overwritten as we looked (nothing added); -1: no mbuf.
 */
static int data_add(struct answer *a, const struct rly_hist *h, struct rly_hist_chain *hc,
		    uint64_t tag, uint64_t seq, uint64_t pos)
{
	const uint16_t room = a->w->cfg->dgram_max;
	const uint64_t off = pos & (h->bytes - 1);
	const uint8_t *src = rly_hist_ring(h, hc) + off;
	struct rly_wire_msg_hdr *dst;
	struct rly_hist_rec rec;

	memcpy(&rec, src, sizeof(rec));
	if (rec.pos != pos || rec.seq != seq || rec.len < sizeof(*dst) ||
	    rec.len > room - sizeof(struct rly_wire_dgram_hdr) || off + sizeof(rec) + rec.len > h->bytes)
		return 0;
	if (a->m != NULL && a->len + rec.len > room)
		data_flush(a);
	if (a->m == NULL) {
		a->m = rly_worker_mbuf(a->w);
		if (unlikely(a->m == NULL)) {
			RLY_CTR_ADD(a->w, DROP_NOMBUF, 1);
			return -1;
		}
		a->len = sizeof(struct rly_wire_dgram_hdr);
		a->count = 0;
	}
	dst = rte_pktmbuf_mtod_offset(a->m, struct rly_wire_msg_hdr *, RLY_HDRS_LEN + a->len);
	memcpy(dst, src + sizeof(rec), rec.len);
	/* Only now is it known that no writer reused those bytes while we copied them. */
	if (!rly_hist_intact(h, hc, pos) || __atomic_load_n(&hc->owner, __ATOMIC_ACQUIRE) != tag ||
	    rly_be64_load(&dst->seq) != seq || rly_wire_msg_size(dst) != rec.len)
		return 0;
	dst->ttl |= RLY_TTL_F_REPAIR;
	a->len = (uint16_t)(a->len + rec.len);
	a->count++;
	a->msgs++;
	a->bytes += rec.len;
	return 1;
}

/* One GAP to the subscriber: from..to of the NAK's chain will not be sent, for @p reason. */
static void gap_send(struct answer *a, uint64_t from, uint64_t to, unsigned reason)
{
	struct rly_worker *w = a->w;
	struct rly_wire_gap g;
	struct rte_mbuf *m;
	int len;

	if (a->gaps >= RLY_REPAIR_MAX_GAPS || from == 0 || to < from)
		return;
	m = rly_worker_mbuf(w);
	if (unlikely(m == NULL)) {
		RLY_CTR_ADD(w, DROP_NOMBUF, 1);
		return;
	}
	memset(&g, 0, sizeof(g));
	/* Stream key, partition, chain and publisher: the NAK's first 56 bytes, laid out alike. */
	memcpy(&g, a->nak, offsetof(struct rly_wire_gap, from_seq));
	rly_be64_store(&g.from_seq, from);
	rly_be64_store(&g.to_seq, to);
	g.request_id = a->nak->request_id;
	rly_be64_store(&g.lowest, a->lowest);
	g.reason = (uint8_t)reason;
	len = rly_wire_build_control(rte_pktmbuf_mtod_offset(m, uint8_t *, RLY_HDRS_LEN),
				     RLY_WIRE_MAX_DGRAM, RLY_MSG_GAP, &g);
	send_udp(w, a->ep, m, (uint16_t)len);
	a->gaps++;
	RLY_CTR_ADD(w, GAP_SENT, 1);
	if (reason == RLY_GAP_EVICTED)
		RLY_CTR_ADD(w, GAP_EVICTED, to - from + 1);
	else if (reason == RLY_GAP_MISSING)
		RLY_CTR_ADD(w, GAP_MISSING, to - from + 1);
}

/* A run of sequences with the same result, reported as one GAP when it ends. */
struct run {
	unsigned reason; /* 0: none open */
	uint64_t from, to;
};

static void run_add(struct answer *a, struct run *r, unsigned reason, uint64_t from, uint64_t to)
{
	if (r->reason == reason && r->to + 1 == from) {
		r->to = to;
		return;
	}
	if (r->reason)
		gap_send(a, r->from, r->to, r->reason);
	*r = (struct run){.reason = reason, .from = from, .to = to};
}

static void run_end(struct answer *a, struct run *r)
{
	if (r->reason)
		gap_send(a, r->from, r->to, r->reason);
	r->reason = 0;
}

/*
 * Cut subscriber @p ep off: its NAKs have found its budget spent for --slow-cut-ms. It is told
 * (GAP SLOW_CONSUMER over what it asked), its NAKs are refused until cut_until, and relay-control
 * is told to end the subscription (RLY_PKT_F_SLOW, on the subscribers' reserve of the ring).
 */
static __attribute__((noinline, cold)) void cut(struct answer *a, struct rly_repair_slot *s,
						 uint64_t first, uint64_t last)
{
	struct rly_worker *w = a->w;
	struct rly_pkt_rec *r = &w->punt_rec;
	struct rly_slow_report rep;
	const uint64_t hz = w->pub_every; /* TSC cycles per second */

	/* Long enough for relay-control to end the subscription; if it does not (it is down), the
	 * subscriber is paced again afterwards, and cut again if it stays over. */
	s->cut_until = w->now + (w->cfg->slow_cut_tsc > hz * RLY_REPAIR_CUT_HOLD_MS / 1000u
				     ? w->cfg->slow_cut_tsc
				     : hz * RLY_REPAIR_CUT_HOLD_MS / 1000u);
	s->notice_tsc = w->now;
	gap_send(a, first, last, RLY_GAP_SLOW_CONSUMER);
	RLY_CTR_ADD(w, SLOW_CUTS, 1);

	memset(&rep, 0, sizeof(rep));
	rep.nak = *a->nak;
	rep.over_ms = hz ? (w->now - s->over_since) * 1000u / hz : 0;
	rep.asked_msgs = s->asked;
	rep.sent_msgs = s->sent;
	rep.budget_bytes_s = w->repair.tsc_per_byte ? hz / w->repair.tsc_per_byte : 0;
	r->port_id = a->ep->port_id;
	r->len = sizeof(rep);
	r->ip_be = a->ep->ip_be;
	r->udp_port_be = a->ep->udp_port_be;
	memcpy(r->mac, a->ep->mac, sizeof(r->mac));
	r->worker = w->id;
	r->flags = RLY_PKT_F_SLOW;
	r->reserved2 = 0;
	r->rx_tsc = w->now;
	memcpy(r->data, &rep, sizeof(rep));
	if (rly_worker_punt(w, 1))
		RLY_CTR_ADD(w, PUNT_REPORTS, 1);
}

/*
 * Subscriber slot @p s asked for @p asked messages and its budget is spent: it is over since
 * over_since, and cut once that has lasted --slow-cut-ms.
 */
static void over(struct answer *a, struct rly_repair_slot *s, uint64_t asked, uint64_t first,
		 uint64_t last)
{
	struct rly_worker *w = a->w;

	if (s->over_since == 0) {
		s->over_since = w->now;
		s->asked = 0;
		s->sent = 0;
	}
	s->asked += asked;
	s->sent += a->msgs;
	if (w->cfg->slow_cut_tsc && w->now - s->over_since >= w->cfg->slow_cut_tsc)
		cut(a, s, first, last);
}

/* A NAK that finds the budget spent: counted, told now and then (GAP PACED), nothing looked up. */
static void refuse_paced(struct answer *a, struct rly_repair_slot *s, uint64_t first, uint64_t last)
{
	struct rly_worker *w = a->w;
	uint64_t asked = 0;

	RLY_CTR_ADD(w, NAK_PACED, 1);
	for (unsigned i = 0; i < a->nak->n; i++)
		asked += rly_be64_load(&a->nak->r[i].to_seq) - rly_be64_load(&a->nak->r[i].from_seq) + 1;
	if (w->now - s->paced_tsc >= w->pub_every / 1000u * RLY_REPAIR_PACED_NOTICE_MS) {
		s->paced_tsc = w->now;
		gap_send(a, first, last, RLY_GAP_PACED);
	}
	over(a, s, asked, first, last);
}

/* The subscriber endpoint of @p set at (@p ip_be, @p port_be), or NULL (peers are not subscribers). */
static const struct rly_endpoint *subscriber(const struct rly_sub_set *set, uint32_t ip_be,
					     uint16_t port_be)
{
	uint32_t i;

	if (set == NULL)
		return NULL;
	i = rly_sub_set_lower_bound(set, ip_be, port_be);
	if (i >= set->n || set->ep[i].ip_be != ip_be || set->ep[i].udp_port_be != port_be ||
	    (set->ep[i].flags & RLY_EP_F_PEER))
		return NULL;
	return &set->ep[i];
}

void rly_repair_on_nak(struct rly_worker *w, uint16_t port, const struct rte_ipv4_hdr *ip,
		       const struct rte_udp_hdr *udp, const struct rly_wire_view *v)
{
	const struct rly_wire_nak *nak = (const struct rly_wire_nak *)v->body;
	const struct rly_dp_config *cfg = w->cfg;
	const struct rly_dedup *d = cfg->dedup;
	const uint64_t first = rly_be64_load(&nak->r[0].from_seq);
	const uint64_t last = rly_be64_load(&nak->r[nak->n - 1].to_seq);
	const struct rly_endpoint *ep;
	struct rly_repair_slot *s;
	struct rly_dedup_chain *c = NULL;
	struct rly_hist_chain *hc = NULL;
	const struct rly_hist *h;
	struct answer a;
	struct run run = {0};
	uint64_t tag = 0, highest, low, asked = 0, paced_at = 0, seq = 0, gen;
	unsigned probes = 0;
	int stop = 0;

	(void)port;
	RLY_CTR_ADD(w, NAK_RX, 1);
	{
		/*
		 * A subscriber whose budget is spent (and not refilled since) is refused before
		 * anything is looked up: its slot exists only because it was found in its
		 * stream's set before, and a refusal sends it at most a GAP PACED now and then.
		 */
		uint64_t key;
		struct rly_repair_slot *p = rly_repair_where(&w->repair, ip->src_addr, udp->src_port, &key);

		if (p->key == key && w->repair.tsc_per_byte && p->tokens < RLY_WIRE_MAX_DGRAM &&
		    w->now - p->last_tsc < w->repair.tsc_per_byte * RLY_WIRE_MAX_DGRAM &&
		    p->cut_until == 0 && p->last_ep.ip_be == ip->src_addr &&
		    p->found_gen == __atomic_load_n(&w->table->generation, __ATOMIC_ACQUIRE) &&
		    p->found_partition == nak->partition &&
		    memcmp(p->found_key, nak->stream_key, RLY_STREAM_KEY_LEN) == 0) {
			a = (struct answer){.w = w, .ep = &p->last_ep, .nak = nak};
			refuse_paced(&a, p, first, last);
			return;
		}
	}
	gen = __atomic_load_n(&w->table->generation, __ATOMIC_ACQUIRE);
	ep = subscriber(rly_subtable_lookup(w->table, nak->stream_key, rly_be32_load(&nak->partition)),
			ip->src_addr, udp->src_port);
	if (ep == NULL) {
		RLY_CTR_ADD(w, NAK_NOT_SUBSCRIBER, 1);
		return;
	}
	s = rly_repair_slot(&w->repair, ip->src_addr, udp->src_port, w->now);
	s->last_ep = *ep;
	s->found_gen = gen;
	s->found_partition = nak->partition;
	memcpy(s->found_key, nak->stream_key, RLY_STREAM_KEY_LEN);
	a = (struct answer){.w = w, .ep = ep, .nak = nak};
	if (s->cut_until) {
		if (w->now < s->cut_until) {
			if (w->now - s->notice_tsc >= w->pub_every / 1000u * RLY_REPAIR_CUT_NOTICE_MS) {
				s->notice_tsc = w->now;
				gap_send(&a, first, last, RLY_GAP_SLOW_CONSUMER);
			}
			return;
		}
		/* Still subscribed after its cut (relay-control did not end it): a fresh start. */
		s->cut_until = 0;
		s->over_since = 0;
		s->tokens = w->repair.burst;
	}
	if (w->repair.tsc_per_byte && s->tokens < RLY_WIRE_MAX_DGRAM) {
		/* Its budget is spent: refused before any look-up, so that a subscriber asking
		 * again and again costs little more than receiving its NAKs. */
		refuse_paced(&a, s, first, last);
		return;
	}
	h = d ? &d->hist : NULL;
	if (h && h->base && (c = rly_dedup_lookup(d, nak, &tag)) != NULL)
		hc = rly_hist_of(h, c, tag);
	if (hc == NULL) {
		RLY_CTR_ADD(w, NAK_UNKNOWN_CHAIN, 1);
		gap_send(&a, first, last, RLY_GAP_UNKNOWN_CHAIN);
		return;
	}
	highest = __atomic_load_n(&c->highest, __ATOMIC_ACQUIRE);
	/* Below the index's reach, below the hint and below the relay's first message of the
	 * chain, nothing is held or ever will be: one GAP EVICTED, without looking. */
	low = highest >= h->index ? highest - h->index + 1 : 1;
	if (low < __atomic_load_n(&hc->low_hint, __ATOMIC_RELAXED))
		low = __atomic_load_n(&hc->low_hint, __ATOMIC_RELAXED);
	if (low < c->first_seq)
		low = c->first_seq;
	a.lowest = low <= highest ? low : 0;

	for (unsigned i = 0; i < nak->n && !stop; i++) {
		uint64_t from = rly_be64_load(&nak->r[i].from_seq);
		uint64_t to = rly_be64_load(&nak->r[i].to_seq);
		int gone_below = 0; /* everything from low up to seq is known gone */

		if (from > highest)
			break; /* ranges ascend: the rest has not reached the relay yet */
		if (to > highest)
			to = highest;
		asked += to - from + 1;
		if (s->h_tag == tag && w->now - s->h_tsc < cfg->nak_holdoff_tsc && from >= s->h_from &&
		    from <= s->h_to) {
			uint64_t upto = to < s->h_to ? to : s->h_to;
			RLY_CTR_ADD(w, NAK_HOLDOFF, upto - from + 1);
			from = upto + 1;
			if (from > to)
				continue;
		}
		if (from < low) {
			uint64_t upto = to < low - 1 ? to : low - 1;
			run_add(&a, &run, RLY_GAP_EVICTED, from, upto);
			from = upto + 1;
			gone_below = 1;
		} else {
			gone_below = from == low;
		}
		for (seq = from; seq <= to; seq++) {
			enum rly_hist_result res;
			uint64_t pos = 0;

			if (probes++ >= RLY_REPAIR_MAX_PROBES || a.msgs >= RLY_REPAIR_MAX_MSGS) {
				/* Enough for one NAK: the rest waits for the next one. */
				paced_at = seq;
				stop = 1;
				break;
			}
			res = rly_hist_locate(h, hc, seq, &pos);
			if (res == RLY_HIST_FOUND) {
				const struct rly_hist_rec *rec =
				    (const void *)(rly_hist_ring(h, hc) + (pos & (h->bytes - 1)));
				/* Read before the copy is checked: a torn value only delays this one. */
				uint64_t need = __atomic_load_n(&rec->len, __ATOMIC_RELAXED);
				const uint64_t before = a.bytes;
				int rc;

				if (need > RLY_WIRE_MAX_DGRAM)
					need = RLY_WIRE_MAX_DGRAM;
				if (w->repair.tsc_per_byte && s->tokens < need) {
					paced_at = seq;
					stop = 1;
					break;
				}
				rc = data_add(&a, h, hc, tag, seq, pos);
				if (rc < 0) {
					stop = 1;
					break;
				}
				if (rc > 0) {
					if (w->repair.tsc_per_byte)
						s->tokens -= a.bytes - before;
					run_end(&a, &run);
					if (gone_below && seq > low)
						rly_hist_raise_low(hc, seq);
					gone_below = 0;
					continue;
				}
				res = RLY_HIST_EVICTED; /* overwritten as we copied it */
			}
			if (res != RLY_HIST_EVICTED)
				gone_below = 0;
			run_add(&a, &run, res == RLY_HIST_EVICTED ? RLY_GAP_EVICTED : RLY_GAP_MISSING, seq,
				seq);
		}
		if (seq > from) {
			s->h_tag = tag;
			s->h_from = from;
			s->h_to = seq - 1;
			s->h_tsc = w->now;
		}
	}
	data_flush(&a);
	run_end(&a, &run);
	RLY_CTR_ADD(w, REPAIR_MSGS, a.msgs);
	RLY_CTR_ADD(w, REPAIR_BYTES, a.bytes);
	if (paced_at == 0) {
		s->over_since = 0;
		return;
	}
	RLY_CTR_ADD(w, NAK_PACED, 1);
	gap_send(&a, paced_at, last < highest ? last : highest, RLY_GAP_PACED);
	/* Only a spent budget makes a slow consumer; the per-NAK caps do not. */
	if (!w->repair.tsc_per_byte || s->tokens >= RLY_WIRE_MAX_DGRAM) {
		s->over_since = 0;
		return;
	}
	s->paced_tsc = w->now;
	over(&a, s, asked, first, last);
}
