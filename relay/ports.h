/* SPDX-License-Identifier: Apache-2.0 */
/* Port bring-up: one rx and one tx queue per worker on every port, RSS where the port has it. */
#ifndef RLY_RELAY_PORTS_H
#define RLY_RELAY_PORTS_H

#include <stdint.h>

#include <rte_ether.h>
#include <rte_mempool.h>

#include "relay/options.h"

/**
 * Configure and start ports 0..n_ports-1 with @p n_queues queue pairs each, receiving into
 * @p pool. Fills @p macs, and @p chain[p] = 1 where the port sends chained mbufs (multi-segment
 * tx, which the fan-out uses to share one payload between subscribers). Errors name the port, its
 * driver and the fix.
 */
int rly_ports_start(uint16_t n_ports, uint16_t n_queues, const struct rly_relay_opts *o,
		    struct rte_mempool *pool, struct rte_ether_addr *macs, uint8_t *chain);

/** Stop and close ports 0..n_ports-1. */
void rly_ports_stop(uint16_t n_ports);

#endif
