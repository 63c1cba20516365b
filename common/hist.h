/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The message history (include/relay/shm.h, struct rly_hist_log): the writer, which a worker runs
 * for every message it accepts as new on a stream with peers, and the reader, which relay-control
 * runs to answer a peer's IWANT. Header-only and DPDK-free: the dataplane, relay-control and their
 * tests share it. The writer is on the packet path (tools/check-hotpath.sh): no syscall, no lock,
 * no allocation.
 */
#ifndef RLY_COMMON_HIST_H
#define RLY_COMMON_HIST_H

#include <stdint.h>
#include <string.h>

#include "relay/shm.h"
#include "relay/wire.h"

/** One worker's end of its log. */
struct rly_hist_writer {
	struct rly_hist_log *log; /* NULL: no history */
	uint8_t *data;
	uint64_t size; /* power of two */
	uint64_t head; /* our copy of log->head */
	unsigned worker;
};

static inline void rly_hist_writer_init(struct rly_hist_writer *hw, struct rly_hist_log *log,
					uint64_t size, unsigned worker)
{
	memset(hw, 0, sizeof(*hw));
	if (log == NULL || size == 0)
		return;
	hw->log = log;
	hw->data = (uint8_t *)(log + 1);
	hw->size = size;
	hw->head = __atomic_load_n(&log->head, __ATOMIC_RELAXED);
	hw->worker = worker;
}

/** Append @p len bytes of message; returns its location (RLY_HIST_LOC), or 0 if it cannot fit. */
static inline uint64_t rly_hist_append(struct rly_hist_writer *hw, const void *msg, uint32_t len)
{
	const uint64_t need = (sizeof(struct rly_hist_rec) + (uint64_t)len + 7u) & ~7ull;
	uint64_t pos = hw->head, off = pos & (hw->size - 1);
	struct rly_hist_rec *r;

	if (hw->log == NULL || need > hw->size)
		return 0;
	if (off + need > hw->size) {
		/* Records never wrap: skip the tail, nobody ever reads it. */
		pos += hw->size - off;
		off = 0;
	}
	hw->head = pos + need;
	/* Reserve first: a reader that copied bytes we are about to overwrite sees the new head. */
	__atomic_store_n(&hw->log->head, hw->head, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	r = (struct rly_hist_rec *)(hw->data + off);
	r->pos = pos;
	r->len = len;
	r->reserved = 0;
	memcpy(r + 1, msg, len);
	return RLY_HIST_LOC(hw->worker, pos);
}

/** relay-control's view of the history region. */
struct rly_hist_reader {
	const uint8_t *base; /* first log */
	uint64_t size;	     /* bytes per log */
	unsigned n_workers;
};

/**
 * Copy message @p seq of chain @p c (a chain of a dedup region with @p window slots) from the
 * history into @p out (@p cap bytes). Returns its length, or 0 when the history does not hold it
 * (never kept, out of the chain's window, or overwritten since). The copy is checked: whole (not
 * overwritten while copied), and the very message asked for.
 */
static inline uint32_t rly_hist_read(const struct rly_hist_reader *hr, struct rly_dedup_chain *c,
				     uint32_t window, uint64_t seq, uint8_t *out, uint32_t cap)
{
	const uint64_t *slots = (const uint64_t *)(c + 1);
	const uint64_t *locs = rly_dedup_locs(c, window);
	const uint32_t i = (uint32_t)(seq & (window - 1));
	const struct rly_hist_log *log;
	const struct rly_wire_msg_hdr *h = (const struct rly_wire_msg_hdr *)out;
	struct rly_hist_rec rec;
	uint64_t loc, pos, off, head;
	unsigned w;

	if (hr->base == NULL || __atomic_load_n(&slots[i], __ATOMIC_ACQUIRE) != seq)
		return 0;
	loc = __atomic_load_n(&locs[i], __ATOMIC_ACQUIRE);
	if (loc == 0 || (w = RLY_HIST_LOC_WORKER(loc)) >= hr->n_workers)
		return 0;
	pos = RLY_HIST_LOC_POS(loc);
	off = pos & (hr->size - 1);
	log = (const struct rly_hist_log *)(hr->base + (uint64_t)w * (sizeof(*log) + hr->size));
	head = __atomic_load_n(&log->head, __ATOMIC_ACQUIRE);
	if (pos >= head || head - pos > hr->size || off + sizeof(rec) > hr->size)
		return 0;
	memcpy(&rec, (const uint8_t *)(log + 1) + off, sizeof(rec));
	if (rec.pos != pos || rec.len < sizeof(*h) || rec.len > cap ||
	    off + sizeof(rec) + rec.len > hr->size)
		return 0;
	memcpy(out, (const uint8_t *)(log + 1) + off + sizeof(rec), rec.len);
	/* Pairs with the writer's fence: had it reused these bytes, we would see its new head. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if (__atomic_load_n(&log->head, __ATOMIC_RELAXED) - pos > hr->size)
		return 0;
	if (rly_be64_load(&h->seq) != seq || rly_be32_load(&h->chain) != c->chain ||
	    memcmp(h->publisher, c->publisher, RLY_ID_LEN) != 0 || rly_wire_msg_size(h) != rec.len)
		return 0;
	return rec.len;
}

#endif
