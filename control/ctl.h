/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The relay-control process as an object: the dataplane link, the subscription service and the
 * attach / resync / relay-lost life cycle, advanced one loop turn at a time by
 * rly_ctl_poll_once(). main.c adds options, signals and the idle back-off around it; tests call it
 * directly.
 */
#ifndef RLY_CONTROL_CTL_H
#define RLY_CONTROL_CTL_H

#include <stdint.h>

#include "control/dp_link.h"
#include "control/log.h"
#include "control/peers.h"
#include "control/subscriptions.h"

struct rly_ctl_opts {
	const char *instance;	 /**< relay instance name */
	const char *secret_file; /**< NULL: /run/relay/<instance>.secret */
	struct rly_ctl_subs_cfg subs;
	int exit_with_relay; /**< stop when the relay goes away instead of waiting for another */
	const char *registry_dir; /**< stream registry directory; NULL: no permission checks */
	struct rly_ctl_peers_cfg peers; /**< peering; off while peers.id is NULL */
};

/** rly_ctl_poll_once() says the process should end (see rly_ctl_exit_code()). */
#define RLY_CTL_STOP 1

struct rly_ctl;

/** Load (or create) the secret and build the services; does not attach. 0 or -errno + message. */
int rly_ctl_create(struct rly_ctl **out, const struct rly_ctl_opts *o);
/** Detach (giving back the claim) and free. NULL is allowed. */
void rly_ctl_free(struct rly_ctl *c);

/**
 * First attach. Fails when no relay runs as the instance, when its layout differs, or when another
 * relay-control holds it (0 or -errno + message). A relay still being created is waited for.
 */
int rly_ctl_start(struct rly_ctl *c, uint64_t mono_ns);

/**
 * One loop turn at monotonic time @p mono_ns: heartbeat, relay liveness, events, punted packets,
 * lease timers, queued commands. *@p work counts what was done (0: idle). Returns 0 to go on,
 * RLY_CTL_STOP when --exit-with-relay saw the relay go, or -errno (fatal, message set).
 */
int rly_ctl_poll_once(struct rly_ctl *c, uint64_t mono_ns, unsigned *work);

/** 1 while attached to a relay. */
int rly_ctl_attached(const struct rly_ctl *c);
/** Exit status after RLY_CTL_STOP: 0 when the relay stopped cleanly, 1 when it died. */
int rly_ctl_exit_code(const struct rly_ctl *c);
/** Count one idle sleep (IDLE_SLEEPS) in the control counter block. */
void rly_ctl_count_idle(struct rly_ctl *c);
/** The subscription service (for tests and diagnostics). */
struct rly_ctl_subs *rly_ctl_subs(struct rly_ctl *c);
/** Peering (for tests and diagnostics). */
struct rly_ctl_peers *rly_ctl_peers(struct rly_ctl *c);

#endif
