/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-control's copy of the stream registry (security/registry.h): loaded from a directory at
 * start, reloaded when a file in it changes (inotify; no polling of file contents) and the
 * directory has then been quiet for 200 ms (at most 2 s after the change), and flagged
 * as changed when the earliest grant expires, since answers change then even though no file did.
 * Every refused record is logged (event registry_refused, with file and line) and counted.
 */
#ifndef RLY_CONTROL_REGISTRY_SVC_H
#define RLY_CONTROL_REGISTRY_SVC_H

#include <stdint.h>

#include "relay/counters.h"

struct rly_registry;
struct rly_ctl_registry;

/** Load @p dir and watch it. Fails (with a message) when the directory cannot be read. */
int rly_ctl_registry_open(struct rly_ctl_registry **out, const char *dir);
void rly_ctl_registry_close(struct rly_ctl_registry *r);

/** The registry now in force (changes only inside rly_ctl_registry_poll). */
const struct rly_registry *rly_ctl_registry_get(const struct rly_ctl_registry *r);

/** Count loads and refused records in @p block from now on. */
void rly_ctl_registry_set_counters(struct rly_ctl_registry *r, struct rly_ctr_block *block);

/**
 * Reload if a file changed; notice expiries at unix time @p now_s. Returns 1 when the answers may
 * have changed since the last call (the caller then revalidates subscriptions and pushes admission
 * again, and must fetch rly_ctl_registry_get() anew: the previous registry is freed), else 0.
 */
int rly_ctl_registry_poll(struct rly_ctl_registry *r, uint64_t now_s);

#endif
