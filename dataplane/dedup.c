/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manager's half of the dedup table (see dedup.h): start-up, and reclaiming chains whose
 * publisher went quiet so that their slots serve new chains. Runs on the manager lcore only.
 */
#include "dataplane/dedup.h"

#include <errno.h>
#include <sys/random.h>

#include <urcu-qsbr.h>

int rly_dedup_init(struct rly_dedup *d, void *base, uint32_t chains, uint32_t window,
		   uint64_t idle_tsc, uint64_t tsc_hz)
{
	memset(d, 0, sizeof(*d));
	if (base == NULL || chains < RLY_DEDUP_PROBE || (chains & (chains - 1)) != 0 ||
	    window == 0 || (window & (window - 1)) != 0)
		return -EINVAL;
	if (getrandom(&d->seed0, sizeof(d->seed0), 0) != sizeof(d->seed0) ||
	    getrandom(&d->seed1, sizeof(d->seed1), 0) != sizeof(d->seed1))
		return -errno;
	d->base = base;
	d->stride = RLY_DEDUP_STRIDE(window);
	d->mask = chains - 1;
	d->window = window;
	d->idle_tsc = idle_tsc;
	/* Walk a few times per idle period, at most once a second: 1024 chains are 1024 lines. */
	d->scan_tsc = idle_tsc / 4 < tsc_hz ? idle_tsc / 4 : tsc_hz;
	return 0;
}

/* Free the history slot of chain @p c, which is being reclaimed (tag RECLAIMING). */
static void rly_dedup_release_hist(struct rly_dedup *d, struct rly_dedup_chain *c)
{
	uint32_t s = __atomic_load_n(&c->hist, __ATOMIC_ACQUIRE);

	if (d->hist.base != NULL && s != 0 && s != RLY_HIST_NONE && s <= d->hist.n) {
		struct rly_hist_chain *hc = rly_hist_slot(&d->hist, s - 1);
		if (hc->chain_idx == rly_dedup_index(d, c))
			__atomic_store_n(&hc->owner, 0, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&c->hist, 0, __ATOMIC_RELEASE);
}

/* History slots in use (the HIST_CHAINS gauge). */
static uint32_t hist_in_use(const struct rly_dedup *d)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < d->hist.n; i++)
		n += __atomic_load_n(&rly_hist_slot(&d->hist, i)->owner, __ATOMIC_RELAXED) != 0;
	return n;
}

unsigned rly_dedup_reclaim(struct rly_dedup *d, uint64_t now)
{
	unsigned marked = 0, in_use = 0;

	if (d == NULL || d->base == NULL || now < d->next_scan)
		return 0;
	d->next_scan = now + d->scan_tsc;
	for (uint32_t i = 0; i <= d->mask; i++) {
		struct rly_dedup_chain *c = rly_dedup_chain_at(d, i);
		uint64_t t = __atomic_load_n(&c->tag, __ATOMIC_ACQUIRE);
		uint64_t last = __atomic_load_n(&c->last_tsc, __ATOMIC_RELAXED);

		if (t <= RLY_DEDUP_TAG_RECLAIMING)
			continue;
		/* A worker's clock may run a little ahead of ours: that chain is not idle. */
		if (now <= last || now - last <= d->idle_tsc ||
		    !__atomic_compare_exchange_n(&c->tag, &t, RLY_DEDUP_TAG_RECLAIMING, 0,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
			in_use++;
			continue;
		}
		marked++;
	}
	if (marked) {
		/*
		 * A worker that read the old tag before the CAS may still be writing this chain's
		 * slots in the burst it is in; after the grace period no worker holds it.
		 */
		synchronize_rcu();
		for (uint32_t i = 0; i <= d->mask; i++) {
			struct rly_dedup_chain *c = rly_dedup_chain_at(d, i);

			if (__atomic_load_n(&c->tag, __ATOMIC_RELAXED) != RLY_DEDUP_TAG_RECLAIMING)
				continue;
			/* Its history slot goes back to the pool (tagged with the chain's old tag,
			 * which the chain no longer shows: the slot is matched by index). */
			rly_dedup_release_hist(d, c);
			memset((uint8_t *)c + sizeof(c->tag), 0, d->stride - sizeof(c->tag));
			/* Publishes the zeroed chain to the next claim (its acquire CAS). */
			__atomic_store_n(&c->tag, RLY_DEDUP_TAG_FREE, __ATOMIC_RELEASE);
		}
	}
	d->in_use = in_use;
	d->hist_in_use = hist_in_use(d);
	return marked;
}
