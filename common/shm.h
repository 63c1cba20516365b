/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Mapping the relay's shared-memory object (layout in include/relay/shm.h).
 *
 * shm.c maps, validates and unmaps and needs no DPDK at all, so relay-stat links it alone.
 * shm_rings.c creates the object with its rte_rings and hands out ring pointers; the relay and
 * relay-control link it (librte_ring only, no EAL).
 */
#ifndef RLY_COMMON_SHM_H
#define RLY_COMMON_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "relay/shm.h"

struct rte_ring;

struct rly_shm {
	char name[8 + RLY_INSTANCE_MAX + 1]; /* "/relay.<instance>" */
	int fd;
	void *base;
	size_t size;
	int owner;    /* created by us: unlinked on close */
	int writable;
};

/** Ring sizes for rly_shm_create (slots, powers of two). */
struct rly_shm_sizes {
	uint32_t n_workers;
	uint32_t cmd_slots;
	uint32_t event_slots;
	uint32_t punt_slots;
	uint32_t tx_slots;
	/* The dedup region (rly_dedup_chain): chains and window are powers of two; 0 chains: none. */
	uint32_t dedup_chains;
	uint32_t dedup_window;
	/* The history (struct rly_hist_chain): slots, index entries and ring bytes per slot (both
	 * powers of two); 0 slots: none. */
	uint32_t hist_chains;
	uint32_t hist_index;
	uint64_t hist_bytes;
};

/** Build "/relay.<instance>" into @p out, refusing invalid instance names with a message. */
int rly_shm_name(char *out, size_t cap, const char *instance);

/**
 * Map an existing instance's object, check magic, ABI version and sizes, and that its relay
 * process is alive. Errors say what to do ("no relay running as instance 'x' ... start relay").
 */
int rly_shm_attach(struct rly_shm *s, const char *instance, int writable);

/** Unmap; the owner (the relay) also unlinks the object. Safe on a zeroed struct. */
void rly_shm_close(struct rly_shm *s);

static inline struct rly_shm_header *rly_shm_hdr(const struct rly_shm *s)
{
	return (struct rly_shm_header *)s->base;
}

/** Counter block @p i (see RLY_CTR_BLOCK_*). */
struct rly_ctr_block *rly_shm_ctr(const struct rly_shm *s, unsigned i);

/** Sum of counter slot @p slot over all blocks. */
uint64_t rly_shm_ctr_sum(const struct rly_shm *s, unsigned slot);

/** 1 if a process with this pid exists. */
int rly_pid_alive(pid_t pid);

/* ---- shm_rings.c (links librte_ring) ---- */

/**
 * Create the object for @p instance with O_EXCL. If one exists whose relay is dead, it is
 * removed first; if its relay is alive, this fails with a message naming the pid.
 * Leaves state = RLY_SHM_STATE_STARTING.
 */
int rly_shm_create(struct rly_shm *s, const char *instance, const struct rly_shm_sizes *z);

/**
 * Check that the rings were laid out by the same rte_ring implementation as ours, and that the
 * rings and the dedup region lie inside the object.
 */
int rly_shm_check_rings(const struct rly_shm *s);

struct rte_ring *rly_shm_cmd_ring(const struct rly_shm *s);
struct rte_ring *rly_shm_event_ring(const struct rly_shm *s);
struct rte_ring *rly_shm_punt_ring(const struct rly_shm *s, unsigned worker);
struct rte_ring *rly_shm_tx_ring(const struct rly_shm *s);
/** Chain @p i of the dedup region (i < dedup_chains; after rly_shm_check_rings). */
struct rly_dedup_chain *rly_shm_dedup_chain(const struct rly_shm *s, uint32_t i);
/** The first history slot, or NULL when the relay keeps none (after rly_shm_check_rings). */
struct rly_hist_chain *rly_shm_hist_base(const struct rly_shm *s);

#endif
