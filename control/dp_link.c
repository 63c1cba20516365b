/* SPDX-License-Identifier: Apache-2.0 */
#include "dp_link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <sodium.h>

#include "common/err.h"

void rly_ctl_link_init(struct rly_ctl_link *l)
{
	memset(l, 0, sizeof(*l));
	l->shm.fd = -1;
	l->self = getpid();
	l->ctr = &l->own_ctr;
	/*
	 * A random first seq: events answering a previous relay-control's commands may still sit in
	 * the event ring or be produced after we attach, and must not match anything we wait for.
	 */
	if (sodium_init() >= 0)
		l->next_seq = randombytes_random();
}

void rly_ctl_link_close(struct rly_ctl_link *l)
{
	rly_ctl_link_detach(l);
	free(l->q);
	l->q = NULL;
	l->q_cap = 0;
}

/* CAS so that two relay-controls starting together cannot both win; a dead holder's pid (left by
 * kill -9) is replaced the same way, so one of several racing successors wins. */
static int claim(struct rly_ctl_link *l, const char *instance)
{
	int32_t *slot = &rly_shm_hdr(&l->shm)->control_pid;
	int32_t cur = 0;

	for (int tries = 0; tries < 16; tries++) {
		if (__atomic_compare_exchange_n(slot, &cur, (int32_t)l->self, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return 0;
		if (cur == (int32_t)l->self)
			return 0;
		if (rly_pid_alive(cur))
			return rly_err_set(
			    EBUSY,
			    "another relay-control (pid %d) is attached to relay instance "
			    "'%s': stop it first, or pass --instance of another relay",
			    (int)cur, instance);
	}
	return rly_err_set(EBUSY,
			   "relay instance '%s': control_pid keeps changing; is another "
			   "relay-control starting?",
			   instance);
}

int rly_ctl_link_attach(struct rly_ctl_link *l, const char *instance)
{
	const struct rly_shm_header *h;
	int rc;

	if (l->attached)
		return 0;
	rc = rly_shm_attach(&l->shm, instance, 1);
	if (rc < 0)
		return rc;
	rc = rly_shm_check_rings(&l->shm);
	if (rc < 0)
		goto fail;
	h = rly_shm_hdr(&l->shm);
	if (h->n_ports > RLY_SHM_MAX_PORTS) {
		rc = rly_err_set(EPROTO, "relay instance '%s' reports %u ports; the ABI allows %u",
				 instance, h->n_ports, RLY_SHM_MAX_PORTS);
		goto fail;
	}
	rc = claim(l, instance);
	if (rc < 0)
		goto fail;

	l->n_workers = h->n_workers;
	l->cmd = rly_shm_cmd_ring(&l->shm);
	l->ev = rly_shm_event_ring(&l->shm);
	l->tx = rly_shm_tx_ring(&l->shm);
	for (unsigned w = 0; w < l->n_workers; w++)
		l->punt[w] = rly_shm_punt_ring(&l->shm, w);
	l->ctr = rly_shm_ctr(&l->shm, RLY_CTR_BLOCK_CONTROL(l->n_workers));
	l->attached = 1;
	return 0;
fail:
	rly_shm_close(&l->shm);
	return rc;
}

void rly_ctl_link_detach(struct rly_ctl_link *l)
{
	if (l->attached) {
		int32_t me = (int32_t)l->self;
		/* Only our own claim is given back: never clear a successor's. */
		__atomic_compare_exchange_n(&rly_shm_hdr(&l->shm)->control_pid, &me, 0, 0,
					    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
		rly_shm_close(&l->shm);
	}
	l->attached = 0;
	l->ctr = &l->own_ctr;
	l->cmd = l->ev = l->tx = NULL;
	memset(l->punt, 0, sizeof(l->punt));
	l->n_workers = 0;
	/* Queued commands were for the relay that went away. */
	l->q_head = l->q_len = 0;
}

enum rly_ctl_relay_state rly_ctl_link_relay_state(const struct rly_ctl_link *l, int check_pid)
{
	const struct rly_shm_header *h = rly_shm_hdr(&l->shm);

	if (check_pid && !rly_pid_alive(h->relay_pid))
		return RLY_CTL_RELAY_GONE;
	switch (__atomic_load_n(&h->state, __ATOMIC_ACQUIRE)) {
	case RLY_SHM_STATE_RUNNING:
		return RLY_CTL_RELAY_RUNNING;
	case RLY_SHM_STATE_STOPPING:
		return RLY_CTL_RELAY_STOPPING;
	default:
		return RLY_CTL_RELAY_STARTING;
	}
}

void rly_ctl_link_heartbeat(struct rly_ctl_link *l, uint64_t mono_ns)
{
	__atomic_store_n(&rly_shm_hdr(&l->shm)->control_heartbeat_ns, mono_ns, __ATOMIC_RELAXED);
}

int rly_ctl_link_submit(struct rly_ctl_link *l, struct rly_cmd *cmd)
{
	if (l->q_len == l->q_cap) {
		size_t cap = l->q_cap ? l->q_cap * 2 : 256;
		struct rly_cmd *q = malloc(cap * sizeof(*q));
		if (!q)
			return -ENOMEM;
		for (size_t i = 0; i < l->q_len; i++)
			q[i] = l->q[(l->q_head + i) % l->q_cap];
		free(l->q);
		l->q = q;
		l->q_cap = cap;
		l->q_head = 0;
	}
	cmd->seq = l->next_seq++;
	l->q[(l->q_head + l->q_len++) % l->q_cap] = *cmd;
	return 0;
}

unsigned rly_ctl_link_flush(struct rly_ctl_link *l)
{
	unsigned moved = 0;

	if (!l->attached)
		return 0;
	while (l->q_len > 0) {
		/* Enqueue the contiguous run up to the end of the circular queue, then wrap. */
		size_t run = l->q_len;
		if (l->q_head + run > l->q_cap)
			run = l->q_cap - l->q_head;
		unsigned n = rte_ring_enqueue_burst_elem(
		    l->cmd, &l->q[l->q_head], sizeof(struct rly_cmd), (unsigned)run, NULL);
		l->q_head = (l->q_head + n) % l->q_cap;
		l->q_len -= n;
		moved += n;
		if (n < run)
			break; /* ring full: the rest waits for the next turn */
	}
	return moved;
}

size_t rly_ctl_link_queued(const struct rly_ctl_link *l)
{
	return l->q_len;
}

int rly_ctl_link_send(struct rly_ctl_link *l, struct rly_pkt_rec *rec)
{
	/* A full ring means the workers are behind; the client retries, so dropping is safe. */
	if (!l->attached || rte_ring_enqueue_elem(l->tx, rec, sizeof(*rec)) != 0) {
		rly_ctl_link_count(l, RLY_CTR_CTL_TX_FULL);
		return -ENOBUFS;
	}
	return 0;
}

int rly_ctl_link_tx_crowded(const struct rly_ctl_link *l)
{
	return !l->attached || rte_ring_count(l->tx) >= rte_ring_get_capacity(l->tx) / 2;
}

unsigned rly_ctl_link_events(struct rly_ctl_link *l, struct rly_event *out, unsigned n)
{
	if (!l->attached)
		return 0;
	return rte_ring_dequeue_burst_elem(l->ev, out, sizeof(*out), n, NULL);
}

unsigned rly_ctl_link_punts(struct rly_ctl_link *l, unsigned w, struct rly_pkt_rec *out, unsigned n)
{
	if (!l->attached || w >= l->n_workers)
		return 0;
	return rte_ring_dequeue_burst_elem(l->punt[w], out, sizeof(*out), n, NULL);
}

void rly_ctl_link_count(struct rly_ctl_link *l, enum rly_ctr id)
{
	/* Sole writer of the control block: load + store, no read-modify-write atomics needed. */
	uint64_t v = __atomic_load_n(&l->ctr->v[id], __ATOMIC_RELAXED);
	__atomic_store_n(&l->ctr->v[id], v + 1, __ATOMIC_RELAXED);
}
