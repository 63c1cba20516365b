/* SPDX-License-Identifier: Apache-2.0 */
#include "dataplane/manager.h"

#include <string.h>

#include <rte_cycles.h>
#include <rte_ring_elem.h>

/* Commands applied per turn before the grace period that frees what they replaced. */
#define CMD_BATCH 64u

void rly_manager_init(struct rly_manager *m, struct rly_subtable *table, struct rte_ring *cmd,
		      struct rte_ring *event, struct rly_ctr_block *ctr, struct rly_shm_header *hdr,
		      uint16_t n_ports)
{
	memset(m, 0, sizeof(*m));
	m->table = table;
	m->cmd = cmd;
	m->event = event;
	m->ctr = ctr;
	m->hdr = hdr;
	m->n_ports = n_ports;
}

static void emit(struct rly_manager *m, const struct rly_event *ev)
{
	/* Space was checked before the command was taken, so this cannot fail. */
	rte_ring_sp_enqueue_elem(m->event, (void *)(uintptr_t)ev, sizeof(*ev));
}

static unsigned continue_dump(struct rly_manager *m)
{
	struct rly_event ev;
	unsigned sent = 0;
	unsigned room = rte_ring_free_count(m->event);

	/* Keep one slot for DUMP_END. */
	while (room > 1) {
		memset(&ev, 0, sizeof(ev));
		if (!rly_subtable_next(m->table, &m->cursor, ev.stream_key, &ev.partition, &ev.ep)) {
			ev.op = RLY_EV_DUMP_END;
			ev.seq = m->dump_seq;
			ev.count = m->dump_count;
			emit(m, &ev);
			m->dumping = 0;
			return sent + 1;
		}
		ev.op = RLY_EV_DUMP_ENTRY;
		ev.seq = m->dump_seq;
		emit(m, &ev);
		m->dump_count++;
		room--;
		sent++;
	}
	return sent;
}

static unsigned apply(struct rly_manager *m, const struct rly_cmd *c)
{
	switch (c->op) {
	case RLY_CMD_SUB_ADD:
		if (c->ep.port_id >= m->n_ports)
			return RLY_CMD_BAD_PORT;
		return (unsigned)rly_subtable_add(m->table, c->stream_key, c->partition, &c->ep);
	case RLY_CMD_SUB_DEL:
		return (unsigned)rly_subtable_del(m->table, c->stream_key, c->partition, &c->ep);
	case RLY_CMD_PING:
		return RLY_CMD_OK;
	case RLY_CMD_ADMIT_MODE:
		return (unsigned)rly_subtable_admit_mode(m->table, c->partition != 0);
	case RLY_CMD_ADMIT_BEGIN:
		return (unsigned)rly_subtable_admit_begin(m->table, c->stream_key, c->partition);
	case RLY_CMD_ADMIT_ADD:
		return (unsigned)rly_subtable_admit_add(m->table, c->stream_key, c->publisher);
	case RLY_CMD_ADMIT_COMMIT:
		return (unsigned)rly_subtable_admit_commit(m->table, c->stream_key, c->partition);
	case RLY_CMD_ADMIT_CLEAR:
		return (unsigned)rly_subtable_admit_clear(m->table, c->stream_key);
	case RLY_CMD_ADMIT_SWEEP:
		return (unsigned)rly_subtable_admit_sweep(m->table, c->partition);
	default:
		return RLY_CMD_BAD_OP;
	}
}

/* Commands that change what workers see (and so need a gauge update and a grace period). */
static int changes_table(uint16_t op)
{
	return op == RLY_CMD_SUB_ADD || op == RLY_CMD_SUB_DEL || op == RLY_CMD_ADMIT_MODE ||
	       op == RLY_CMD_ADMIT_COMMIT || op == RLY_CMD_ADMIT_CLEAR || op == RLY_CMD_ADMIT_SWEEP;
}

unsigned rly_manager_poll_once(struct rly_manager *m)
{
	unsigned handled = 0, changed = 0;
	struct rly_cmd c;

	if (m->dumping)
		return continue_dump(m);

	while (handled < CMD_BATCH && rte_ring_free_count(m->event) > 0 &&
	       rte_ring_sc_dequeue_elem(m->cmd, &c, sizeof(c)) == 0) {
		struct rly_event ev;
		unsigned status;

		handled++;
		if (c.op == RLY_CMD_DUMP) {
			m->dumping = 1;
			m->dump_seq = c.seq;
			m->dump_count = 0;
			memset(&m->cursor, 0, sizeof(m->cursor));
			m->ctr->v[RLY_CTR_CMD_APPLIED]++;
			break; /* later commands wait until the dump is complete */
		}
		status = apply(m, &c);
		if (status == RLY_CMD_OK && changes_table(c.op))
			changed++;
		if (status == RLY_CMD_OK || status == RLY_CMD_EXISTS)
			m->ctr->v[RLY_CTR_CMD_APPLIED]++;
		else
			m->ctr->v[RLY_CTR_CMD_REFUSED]++;
		memset(&ev, 0, sizeof(ev));
		ev.op = RLY_EV_DONE;
		ev.status = (uint16_t)status;
		ev.seq = c.seq;
		memcpy(ev.stream_key, c.stream_key, sizeof(ev.stream_key));
		ev.partition = c.partition;
		ev.ep = c.ep;
		emit(m, &ev);
	}

	if (changed) {
		m->ctr->v[RLY_CTR_STREAMS] = m->table->n_streams;
		m->ctr->v[RLY_CTR_SUBSCRIBERS] = m->table->n_subs;
		m->ctr->v[RLY_CTR_ADMIT_STREAMS] = m->table->n_admit;
		if (m->hdr)
			__atomic_fetch_add(&m->hdr->table_generation, 1, __ATOMIC_RELEASE);
	}
	if (rly_subtable_reclaim(m->table))
		m->ctr->v[RLY_CTR_RCU_SYNCS]++;
	if (m->dedup) {
		if (rly_dedup_reclaim(m->dedup, rte_rdtsc()))
			m->ctr->v[RLY_CTR_RCU_SYNCS]++;
		m->ctr->v[RLY_CTR_DEDUP_CHAINS] = m->dedup->in_use;
		m->ctr->v[RLY_CTR_HIST_CHAINS] = m->dedup->hist_in_use;
	}
	if (m->dumping)
		handled += continue_dump(m);
	return handled;
}
