/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loss repair for subscribers (issue 6): a worker answers a subscriber's NAK itself, from the
 * history of the chain it names (common/hist.h), without relay-control. Each subscriber has a
 * repair budget, a token bucket of bytes per worker: a NAK that asks for more is answered in part
 * and the rest refused with a GAP PACED (ask again later); a subscriber whose NAKs have found the
 * budget spent for --slow-cut-ms is a slow consumer and is cut off (GAP SLOW_CONSUMER, and a
 * SLOW report makes relay-control end the subscription). A message sent again is not sent again
 * to the same subscriber within --nak-holdoff-us, however often it asks.
 *
 * State lives in a fixed table per worker, indexed by a keyed hash of the subscriber's address
 * and port; a new subscriber takes over its slot with a full budget. Only subscribers of the
 * stream get an answer (the set is searched by address and port), so strangers cannot make the
 * relay send anything, and a subscriber's own address was proven by the subscribe handshake.
 *
 * Hot path: no syscall, lock, allocation (beyond mbufs), stdio or crypto (tools/check-hotpath.sh).
 */
#ifndef RLY_DATAPLANE_REPAIR_H
#define RLY_DATAPLANE_REPAIR_H

#include <stdint.h>

#include "relay/shm.h"

#define RLY_REPAIR_SLOTS 2048u
/** Most messages one NAK is answered with, and most index entries looked at for it. */
#define RLY_REPAIR_MAX_MSGS 1024u
#define RLY_REPAIR_MAX_PROBES 8192u
/** Most GAP datagrams one NAK is answered with. */
#define RLY_REPAIR_MAX_GAPS 8u
/** A subscriber stays cut off for --slow-cut-ms, and at least this many ms. */
#define RLY_REPAIR_CUT_HOLD_MS 1000u
/**
 * While a subscriber's budget is spent, its NAKs are refused before any look-up, with at most one
 * GAP PACED per this many ms (the client waits 10 ms after one before asking again).
 */
#define RLY_REPAIR_PACED_NOTICE_MS 5u
/** While a subscriber is cut off, at most one GAP SLOW_CONSUMER per this many ms. */
#define RLY_REPAIR_CUT_NOTICE_MS 100u

struct rly_repair_slot {
	uint64_t key;        /* ip_be << 16 | udp_port_be, + 1; 0: empty */
	uint64_t tokens;     /* bytes it may still have sent again */
	uint64_t last_tsc;   /* when tokens were last topped up */
	uint64_t over_since; /* TSC since its NAKs have found the budget spent; 0: they do not */
	uint64_t asked;      /* messages its NAKs asked for since over_since */
	uint64_t sent;       /* ... and were sent */
	uint64_t cut_until;  /* TSC until which it is cut off; 0: not cut */
	uint64_t notice_tsc; /* last GAP SLOW_CONSUMER while cut */
	uint64_t paced_tsc;  /* last GAP PACED sent while its budget was spent */
	/* the last range sent again (holdoff): its chain's tag, from, to, when */
	uint64_t h_tag, h_from, h_to, h_tsc;
	struct rly_endpoint last_ep; /* where it was found last (GAP PACED go there) */
	/* ... in which stream, while the table was at which generation: the budget-spent fast
	 * refusal answers only a NAK for that stream, with the table unchanged since */
	uint64_t found_gen;
	uint32_t found_partition;
	uint8_t found_key[RLY_STREAM_KEY_LEN];
};

struct rly_repair {
	uint64_t tsc_per_byte; /* 0: no budget */
	uint64_t burst;	       /* bytes */
	uint32_t seed;
	uint32_t reserved;
	struct rly_repair_slot slot[RLY_REPAIR_SLOTS];
};

/** Where subscriber (@p ip_be, @p udp_port_be) has its slot, if it has one; *@p key its key. */
static inline struct rly_repair_slot *rly_repair_where(struct rly_repair *r, uint32_t ip_be,
						       uint16_t udp_port_be, uint64_t *key)
{
	*key = ((uint64_t)ip_be << 16 | udp_port_be) + 1;
	return &r->slot[(uint32_t)((*key ^ r->seed) * 0x9e3779b97f4a7c15ull >> 40) % RLY_REPAIR_SLOTS];
}

/** The slot of subscriber (@p ip_be, @p udp_port_be): its own, or one taken over for it. */
static inline struct rly_repair_slot *rly_repair_slot(struct rly_repair *r, uint32_t ip_be,
						      uint16_t udp_port_be, uint64_t now)
{
	uint64_t key;
	struct rly_repair_slot *s = rly_repair_where(r, ip_be, udp_port_be, &key);

	if (s->key != key) {
		*s = (struct rly_repair_slot){.key = key, .tokens = r->burst, .last_tsc = now};
		return s;
	}
	if (r->tsc_per_byte && now > s->last_tsc) {
		uint64_t add = (now - s->last_tsc) / r->tsc_per_byte;
		if (add) {
			s->tokens = add >= r->burst - s->tokens ? r->burst : s->tokens + add;
			s->last_tsc += add * r->tsc_per_byte;
		}
	}
	return s;
}

struct rly_worker;
struct rte_ether_hdr;
struct rte_ipv4_hdr;
struct rte_udp_hdr;
struct rly_wire_view;

/** Set the budget: @p bytes_s per second per subscriber (0: none), @p burst bytes at once. */
void rly_repair_init(struct rly_repair *r, uint64_t bytes_s, uint64_t burst, uint64_t tsc_hz,
		     uint32_t seed);

/** A validated NAK datagram received on @p port: answer it, or count why not. */
void rly_repair_on_nak(struct rly_worker *w, uint16_t port, const struct rte_ipv4_hdr *ip,
		       const struct rte_udp_hdr *udp, const struct rly_wire_view *v);

#endif
