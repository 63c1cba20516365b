/* SPDX-License-Identifier: Apache-2.0 */
/* Kept out of options.c so the option parser builds (and is fuzzed) without DPDK or jemalloc. */
#include <jemalloc/jemalloc.h>
#include <rte_version.h>

#include "relay/options.h"
#include "relay/wire.h"

void rly_relay_version(FILE *f)
{
	const char *je = "not linked";
	size_t len = sizeof(je);

	/* mallctl only answers if jemalloc really is the allocator this process uses. */
	if (mallctl("version", &je, &len, NULL, 0) != 0)
		je = "unavailable";
	fprintf(f, "relay %s (wire protocol v%u, shm ABI v%u, %s, allocator jemalloc %s)\n",
		RLY_VERSION, RLY_WIRE_VERSION, RLY_SHM_ABI_VERSION, rte_version(), je);
}
