/* SPDX-License-Identifier: Apache-2.0 */
#include "dataplane/lcore.h"

#include <sched.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_pause.h>

#include "dataplane/subtable.h"

#define IDLE_SPINS 64u
#define IDLE_YIELDS 8u
#define IDLE_MIN_PARK_NS 1000u

void rly_idle_init(struct rly_idle *idle, enum rly_idle_mode mode, uint32_t max_park_us)
{
	idle->mode = mode;
	idle->max_park_us = max_park_us ? max_park_us : 1;
	rly_idle_reset(idle);
}

int rly_idle_step(struct rly_idle *idle)
{
	struct timespec ts;

	if (idle->mode == RLY_IDLE_BUSY || idle->spins < IDLE_SPINS) {
		idle->spins++;
		rte_pause();
		return 0;
	}
	rcu_thread_offline();
	if (idle->yields < IDLE_YIELDS) {
		idle->yields++;
		sched_yield();
		rcu_thread_online();
		return 0;
	}
	if (idle->park_ns == 0)
		idle->park_ns = IDLE_MIN_PARK_NS;
	else if (idle->park_ns < (uint64_t)idle->max_park_us * 1000u)
		idle->park_ns *= 2;
	if (idle->park_ns > (uint64_t)idle->max_park_us * 1000u)
		idle->park_ns = (uint64_t)idle->max_park_us * 1000u;
	ts.tv_sec = (time_t)(idle->park_ns / 1000000000u);
	ts.tv_nsec = (long)(idle->park_ns % 1000000000u);
	nanosleep(&ts, NULL);
	rcu_thread_online();
	return 1;
}

int rly_worker_lcore_main(void *arg)
{
	struct rly_lcore_ctx *ctx = arg;
	struct rly_worker *w = ctx->worker;
	struct rly_idle idle;
	unsigned turn = 0;

	rcu_register_thread();
	rly_idle_init(&idle, w->cfg->idle, w->cfg->idle_max_us);
	while (!__atomic_load_n(ctx->stop, __ATOMIC_RELAXED)) {
		/* Two TSC reads per busy turn (of up to 32 frames) buy an honest load figure. */
		uint64_t t0 = rte_rdtsc();
		if (rly_worker_poll_once(w)) {
			w->ctr->v[RLY_CTR_BUSY_CYCLES] += rte_rdtsc() - t0;
			rly_idle_reset(&idle);
		} else if (rly_idle_step(&idle)) {
			w->ctr->v[RLY_CTR_IDLE_SLEEPS]++;
		}
		/*
		 * Every 8th turn: nothing from the table is held across this line except lookup-cache
		 * entries, which the table's generation guards (subtable.h). Each announcement costs
		 * two full fences; a grace period still ends within microseconds of busy turns, and
		 * an idle worker is offline anyway.
		 */
		if ((++turn & 7) == 0)
			rcu_quiescent_state();
	}
	rly_worker_flush(w);
	rcu_unregister_thread();
	return 0;
}
