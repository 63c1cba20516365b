/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-control's side of the shared-memory contract (include/relay/shm.h): attach and claim the
 * instance, produce commands (with their sequence numbers and a local queue for when the ring is
 * full), consume events and punted packets, produce packets to send, and write the control
 * counter block. Everything here runs on relay-control's one thread.
 */
#ifndef RLY_CONTROL_DP_LINK_H
#define RLY_CONTROL_DP_LINK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/shm.h"
#include "relay/counters.h"
#include "relay/shm.h"

/** The relay as seen through its header. */
enum rly_ctl_relay_state {
	RLY_CTL_RELAY_STARTING, /**< rings exist, not forwarding yet: wait */
	RLY_CTL_RELAY_RUNNING,
	RLY_CTL_RELAY_STOPPING, /**< shutting down: detach */
	RLY_CTL_RELAY_GONE,	/**< its process no longer exists */
};

struct rly_ctl_link {
	struct rly_shm shm;
	int attached;
	pid_t self;
	unsigned n_workers;
	struct rte_ring *cmd;
	struct rte_ring *ev;
	struct rte_ring *tx;
	struct rte_ring *punt[RLY_SHM_MAX_WORKERS];

	uint32_t next_seq;
	/* Commands the ring had no room for yet, oldest first. */
	struct rly_cmd *q;
	size_t q_head, q_len, q_cap;

	struct rly_ctr_block *ctr; /* the shm control block while attached, else own_ctr */
	struct rly_ctr_block own_ctr;
};

/** Prepare a detached link. Command seqs start at a random value (see dp_link.c). */
void rly_ctl_link_init(struct rly_ctl_link *l);
/** Detach if attached and free the local queue. */
void rly_ctl_link_close(struct rly_ctl_link *l);

/**
 * Map /dev/shm/relay.<instance> writable, check its ABI and ring layout, and claim it by setting
 * header.control_pid to our pid (from 0, or from a pid that no longer exists). 0 or -errno with a
 * message: -ENOENT no relay, -ESRCH relay dead, -EAGAIN still being created, -EPROTO layout
 * mismatch, -EBUSY another relay-control holds it (the message names its pid).
 */
int rly_ctl_link_attach(struct rly_ctl_link *l, const char *instance);
/** Give the claim back (control_pid = 0 if it is still ours), drop queued commands, unmap. */
void rly_ctl_link_detach(struct rly_ctl_link *l);

/** The relay's state; with @p check_pid also whether its process still exists (a syscall). */
enum rly_ctl_relay_state rly_ctl_link_relay_state(const struct rly_ctl_link *l, int check_pid);
/** Tell the relay we are alive (header.control_heartbeat_ns). */
void rly_ctl_link_heartbeat(struct rly_ctl_link *l, uint64_t mono_ns);

/** Queue a command with the next seq (written to cmd->seq). 0 or -ENOMEM. Never dropped. */
int rly_ctl_link_submit(struct rly_ctl_link *l, struct rly_cmd *cmd);
/** Move queued commands into the cmd ring while it has room. Returns how many moved. */
unsigned rly_ctl_link_flush(struct rly_ctl_link *l);
/** Commands still waiting for room in the ring. */
size_t rly_ctl_link_queued(const struct rly_ctl_link *l);

/** Put one packet on the tx ring. 0, or -ENOBUFS (counted CTL_TX_FULL, packet dropped). */
int rly_ctl_link_send(struct rly_ctl_link *l, struct rly_pkt_rec *rec);

/** 1 when the tx ring is at least half full (or detached): time to send only what matters. */
int rly_ctl_link_tx_crowded(const struct rly_ctl_link *l);

/** Take up to @p n events. */
unsigned rly_ctl_link_events(struct rly_ctl_link *l, struct rly_event *out, unsigned n);
/** Take up to @p n punted packets from worker @p w's ring. */
unsigned rly_ctl_link_punts(struct rly_ctl_link *l, unsigned w, struct rly_pkt_rec *out,
			    unsigned n);

/** Bump a counter of the control block. */
void rly_ctl_link_count(struct rly_ctl_link *l, enum rly_ctr id);

#endif
