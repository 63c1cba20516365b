/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Loss repair and in-order delivery for a subscriber (client/repair.c, docs/wire-protocol.md
 * section 8). While a chain has a gap, what arrives after the gap is held, the gap is asked for
 * again (NAK) with a short doubling back-off, and messages reach the application in sequence order
 * once the gap is filled, or once it is known lost: the relay said so (a final GAP reason), no
 * answer came within the repair timeout, or holding more would pass the limits. A lost range is
 * reported once (on_gap) and skipped.
 *
 * A chain has repair state only while it has a gap open: a pool entry with the gap list ("holes",
 * each wanted, lost or not part of the chain) and a ring of held copies indexed by sequence, which
 * grows as needed up to its limit. A chain without a gap costs nothing here.
 */
#ifndef RLY_CLIENT_REPAIR_H
#define RLY_CLIENT_REPAIR_H

#include <stdint.h>

#include "relay/wire.h"

struct rly_sub;
struct client_chain;

/* Chains with a gap open at once; a gap on one more chain is reported lost at once. */
#define REP_CHAINS 256u
/* Gaps one chain keeps at once; one more gives the oldest wanted one up. */
#define REP_HOLES 64u
/* Held copies per chain: the ring starts at REP_RING_MIN and doubles up to the option's limit. */
#define REP_RING_MIN 256u
#define REP_RING_DEFAULT (1u << 16)
/* NAK back-off: the first NAK goes at once, then REP_RTO_FIRST_MS, doubling to REP_RTO_MAX_MS. */
#define REP_RTO_FIRST_MS 2u
#define REP_RTO_MAX_MS 64u
/* After a GAP PACED, ask again after this long (the relay's budget refills meanwhile). */
#define REP_PACED_RETRY_MS 10u
#define REP_TIMEOUT_DEFAULT_MS 1000u
/* A gap the relay says it never received is waited for this many times the timeout. */
#define REP_MISSING_FACTOR 5u

enum hole_state {
	HOLE_WANT = 1, /* asked for */
	HOLE_LOST = 2, /* given up: reported, then skipped */
	HOLE_SKIP = 3, /* not part of the chain (prev_seq jumped over it): skipped silently */
};

struct rep_hole {
	uint64_t lo, hi;
	uint64_t since_ns;  /* CLOCK_MONOTONIC: when the gap was seen */
	uint64_t next_ns;   /* next NAK */
	uint32_t tries;     /* NAKs sent for it */
	uint8_t state;      /* enum hole_state */
	uint8_t reason;     /* HOLE_LOST: why (enum rly_sub_gap_reason) */
	uint8_t pad[2];
};

struct rep_held {
	uint64_t recv_ns;   /* CLOCK_REALTIME when it arrived */
	uint64_t mono_ns;   /* CLOCK_MONOTONIC when it arrived */
	uint64_t repair_ns; /* it filled a gap: time from the gap's detection to its arrival */
	uint32_t len;
	uint8_t bytes[];
};

struct rep_chain {
	int used;
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint64_t base;	  /* next seq to deliver */
	uint64_t highest; /* highest seq received */
	uint64_t placing; /* the message being placed (neither held nor delivered yet), or 0 */
	struct rep_held **ring;
	uint32_t ring_size; /* a power of two; ring[seq & (size - 1)] for seq in [base, base + size) */
	uint32_t held;
	struct rep_hole hole[REP_HOLES]; /* sorted by lo, disjoint, all within [base, highest] */
	uint32_t n_holes;
	uint64_t due_ns;     /* next NAK or timeout of its wanted holes */
	uint64_t timeout_ns; /* struct sub_repair's */
};

struct sub_repair {
	struct rep_chain *rc; /* REP_CHAINS entries */
	uint32_t active;
	uint32_t ring_max;     /* most held copies per chain */
	uint64_t timeout_ns;   /* a gap still open after this is lost */
};

int repair_init(struct rly_sub *s, uint32_t ring_max, uint32_t timeout_ms);
void repair_close(struct rly_sub *s);

/*
 * A verified message @p h of chain @p c (which already had a gap open, or whose prev_seq shows a
 * new one): hold it, deliver what is now in order, ask for what is missing. Returns 1 if it took
 * the message (delivered or held), 0 if it is stale (already delivered or given up).
 */
int repair_on_message(struct rly_sub *s, struct client_chain *c, const struct rly_wire_msg_hdr *h,
		      uint64_t recv_ns, uint64_t mono_ns);
/* A GAP from the relay. */
void repair_on_gap(struct rly_sub *s, const struct rly_wire_gap *g, uint64_t mono_ns);
/* NAKs due, and gaps that ran out of time. */
void repair_run_timers(struct rly_sub *s, uint64_t now_ns);
uint64_t repair_next_due(const struct rly_sub *s);
/* Every chain: its gaps given up for @p reason (reported), what it holds delivered. */
void repair_give_up_all(struct rly_sub *s, int reason);
/* Chain @p c leaves the chain table: what it holds is delivered, its gaps reported lost. */
void repair_forget(struct rly_sub *s, struct client_chain *c);

#endif
