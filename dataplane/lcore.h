/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Thread entry points: the worker lcore loop (rly_worker_poll_once + RCU quiescent state + idle
 * strategy) and the idle strategy itself. This is the one dataplane file allowed to make
 * syscalls (sched_yield, nanosleep), and only when a loop turn found no work, as in Aeron's
 * BackoffIdleStrategy. tools/check-hotpath.sh exempts it by name.
 */
#ifndef RLY_DATAPLANE_LCORE_H
#define RLY_DATAPLANE_LCORE_H

#include <stdint.h>

#include "dataplane/worker.h"

struct rly_idle {
	enum rly_idle_mode mode;
	uint32_t max_park_us;
	uint32_t spins;
	uint32_t yields;
	uint64_t park_ns;
};

void rly_idle_init(struct rly_idle *idle, enum rly_idle_mode mode, uint32_t max_park_us);
/** A turn did work: start over from spinning. */
static inline void rly_idle_reset(struct rly_idle *idle)
{
	idle->spins = 0;
	idle->yields = 0;
	idle->park_ns = 0;
}
/**
 * A turn found no work: spin, then yield, then sleep with doubling periods up to max_park_us.
 * The calling QSBR thread goes offline while it yields or sleeps, so it never holds up a grace
 * period. Returns 1 if it slept.
 */
int rly_idle_step(struct rly_idle *idle);

/** Arguments of a worker lcore. */
struct rly_lcore_ctx {
	struct rly_worker *worker;
	const volatile int *stop;
};

/** rte_eal_remote_launch entry: run the worker until *stop, then flush. */
int rly_worker_lcore_main(void *arg);

#endif
