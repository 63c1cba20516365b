/* SPDX-License-Identifier: Apache-2.0 */
/*
 * overlay-sizes: what one stream costs a relay, from the structures themselves (sizeof, so the
 * figures follow the code), for bench/run-overlay.sh's memory table. It prints the per-stream
 * pieces and the fixed arrays relay-control allocates at start-up whatever the number of streams,
 * because on this design most of a relay's per-stream memory is preallocated: a measured RSS
 * difference between 1 and 200 streams shows only what is allocated on demand.
 *
 *   overlay-sizes [--dedup-window N] [--dedup-chains N] [--degree D] [--subs S] [--json]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/discovery_impl.h"
#include "control/peers_int.h"
#include "control/sub_table.h"
#include "dataplane/subtable.h"
#include "relay/shm.h"

static unsigned long arg_ul(const char *name, const char *v)
{
	char *end;
	unsigned long x = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0') {
		fprintf(stderr, "overlay-sizes: %s wants a number, not '%s'\n", name, v);
		exit(2);
	}
	return x;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"dedup-window", required_argument, NULL, 'w'}, {"dedup-chains", required_argument, NULL, 'c'},
	    {"degree", required_argument, NULL, 'd'},	    {"subs", required_argument, NULL, 's'},
	    {"json", no_argument, NULL, 'j'},		    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long window = 1024, chains = 1024, degree = 4, subs = 1;
	int json = 0, c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'w': window = arg_ul("--dedup-window", optarg); break;
		case 'c': chains = arg_ul("--dedup-chains", optarg); break;
		case 'd': degree = arg_ul("--degree", optarg); break;
		case 's': subs = arg_ul("--subs", optarg); break;
		case 'j': json = 1; break;
		case 'h':
			printf("Usage: overlay-sizes [--dedup-window N (1024)] [--dedup-chains N (1024)]\n"
			       "       [--degree D (4)] [--subs S (1)] [--json]\n"
			       "Bytes per stream per relay from the structures, and the fixed arrays.\n");
			return 0;
		default: return 2;
		}
	}

	/* Per stream, allocated on demand. */
	size_t dp_entry = sizeof(struct rly_stream_entry);
	size_t dp_set = sizeof(struct rly_sub_set) + (subs + degree) * sizeof(struct rly_endpoint);
	size_t dedup_chain = RLY_DEDUP_STRIDE(window); /* per publisher chain */
	size_t ctl_sub = sizeof(struct rly_ctl_sub);		      /* per local subscriber */
	size_t disc_entry = sizeof(struct disc_entry);		      /* per other relay's record */
	/* Per stream, in arrays allocated at start-up. */
	size_t ov = sizeof(struct ov_stream);
	size_t serve = sizeof(struct disc_serve), query = sizeof(struct disc_query);
	size_t per_stream_dp = dp_entry + dp_set + dedup_chain;
	size_t per_stream_ctl = ov + serve + query + subs * ctl_sub + degree * disc_entry;

	if (json) {
		printf("{\"dedup_window\":%lu,\"degree\":%lu,\"subs\":%lu,"
		       "\"rly_stream_entry\":%zu,\"rly_sub_set\":%zu,\"rly_endpoint\":%zu,"
		       "\"rly_dedup_chain\":%zu,\"dedup_chain_total\":%zu,\"rly_ctl_sub\":%zu,"
		       "\"ov_stream\":%zu,\"ov_link\":%zu,\"ov_cand\":%zu,\"ov_miss\":%zu,"
		       "\"disc_serve\":%zu,\"disc_query\":%zu,\"disc_entry\":%zu,"
		       "\"rly_disc_record\":%zu,\"per_stream_dataplane\":%zu,"
		       "\"per_stream_control\":%zu,\"ov_array\":%zu,\"disc_keys_arrays\":%zu,"
		       "\"dedup_region\":%zu}\n",
		       window, degree, subs, dp_entry, dp_set, sizeof(struct rly_endpoint),
		       sizeof(struct rly_dedup_chain), dedup_chain, ctl_sub, ov,
		       sizeof(struct ov_link), sizeof(struct ov_cand), sizeof(struct ov_miss), serve,
		       query, disc_entry, sizeof(struct rly_disc_record), per_stream_dp,
		       per_stream_ctl, (size_t)OV_MAX * ov,
		       (size_t)RLY_DISC_KEYS_MAX * (serve + query), chains * dedup_chain);
		return 0;
	}
	printf("overlay-sizes: dedup window %lu, degree %lu links, %lu local subscriber(s) per "
	       "stream, 1 publisher chain\n\n",
	       window, degree, subs);
	printf("%-44s %8s  %s\n", "structure", "bytes", "where, when");
	printf("%-44s %8zu  dataplane heap, per stream (hash node + key)\n",
	       "struct rly_stream_entry", dp_entry);
	printf("%-44s %8zu  dataplane heap, per stream: %zu + %lu endpoints x %zu\n",
	       "struct rly_sub_set + endpoints", dp_set, sizeof(struct rly_sub_set), subs + degree,
	       sizeof(struct rly_endpoint));
	printf("%-44s %8zu  dataplane shm, per publisher chain: %zu + 16 x %lu (seq + history loc)\n",
	       "struct rly_dedup_chain + window", dedup_chain, sizeof(struct rly_dedup_chain),
	       window);
	printf("%-44s %8zu  relay-control heap, per local subscriber\n", "struct rly_ctl_sub",
	       ctl_sub);
	printf("%-44s %8zu  relay-control, per stream (array of %u, start-up)\n",
	       "struct ov_stream", ov, OV_MAX);
	printf("%-44s %8zu    of which %u links x %zu, %u candidates x %zu, %u misses x %zu\n", "",
	       (size_t)RLY_PEER_DEGREE_CAP * sizeof(struct ov_link) +
		   CAND_MAX * sizeof(struct ov_cand) + MISS_MAX * sizeof(struct ov_miss),
	       RLY_PEER_DEGREE_CAP, sizeof(struct ov_link), CAND_MAX, sizeof(struct ov_cand),
	       MISS_MAX, sizeof(struct ov_miss));
	printf("%-44s %8zu  relay-control, per stream served (array of %u, start-up)\n",
	       "struct disc_serve (our signed record)", serve, RLY_DISC_KEYS_MAX);
	printf("%-44s %8zu  relay-control, per stream watched (array of %u, start-up)\n",
	       "struct disc_query", query, RLY_DISC_KEYS_MAX);
	printf("%-44s %8zu  relay-control, per other relay's record (store, start-up)\n",
	       "struct disc_entry (holds a record)", disc_entry);
	printf("%-44s %8zu  on the wire and inside the two above\n", "struct rly_disc_record",
	       sizeof(struct rly_disc_record));
	printf("\nper stream, dataplane: %zu bytes (entry + set + 1 dedup chain)\n", per_stream_dp);
	printf("per stream, relay-control: %zu bytes (ov_stream + serve + query + %lu sub + %lu "
	       "records)\n",
	       per_stream_ctl, subs, degree);
	printf("fixed at start-up: ov array %zu KiB (%u streams), discovery key arrays %zu KiB "
	       "(%u keys), dedup region %zu KiB (%lu chains)\n",
	       (size_t)OV_MAX * ov / 1024, OV_MAX,
	       (size_t)RLY_DISC_KEYS_MAX * (serve + query) / 1024, RLY_DISC_KEYS_MAX,
	       chains * dedup_chain / 1024, chains);
	return 0;
}
