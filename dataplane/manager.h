/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manager runs on the main lcore: it drains relay-control's commands, applies them to the
 * subscriber table (it is the table's only writer), answers each with an event, dumps the table on
 * request (how a restarted relay-control resynchronises), waits for grace periods and frees what
 * the workers no longer see. It never touches a packet.
 */
#ifndef RLY_DATAPLANE_MANAGER_H
#define RLY_DATAPLANE_MANAGER_H

#include <stdint.h>

#include <rte_ring.h>

#include "dataplane/dedup.h"
#include "dataplane/subtable.h"
#include "relay/shm.h"

struct rly_manager {
	struct rly_subtable *table;
	struct rte_ring *cmd;
	struct rte_ring *event;
	struct rly_ctr_block *ctr;
	struct rly_shm_header *hdr; /* table_generation is bumped here; may be NULL in tests */
	uint16_t n_ports;
	struct rly_dedup *dedup;    /* idle chains reclaimed here; NULL: no dedup table */
	/* a dump in progress: further commands wait until it ends */
	int dumping;
	uint32_t dump_seq;
	uint32_t dump_count;
	struct rly_subtable_cursor cursor;
};

void rly_manager_init(struct rly_manager *m, struct rly_subtable *table, struct rte_ring *cmd,
		      struct rte_ring *event, struct rly_ctr_block *ctr, struct rly_shm_header *hdr,
		      uint16_t n_ports);

/**
 * One turn: continue a dump, or apply up to a batch of commands and reclaim (table entries, and
 * dedup chains idle longer than the dedup table's idle time). The calling thread is
 * a registered QSBR thread. Returns commands handled plus dump entries sent (0: nothing to do).
 */
unsigned rly_manager_poll_once(struct rly_manager *m);

#endif
