/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay: set-up and tear-down of the dataplane process.
 *
 *   relay <EAL args> -- --ip A.B.C.D [relay options]
 *
 * The main lcore runs the manager (dataplane/manager.c); every other lcore runs a worker
 * (dataplane/worker.c). Nothing here is on the packet path.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/shm.h"
#include "dataplane/lcore.h"
#include "dataplane/manager.h"
#include "dataplane/subtable.h"
#include "dataplane/worker.h"
#include "relay/options.h"
#include "relay/ports.h"

#define MBUF_CACHE 256u
#define MANAGER_MAX_SLEEP_US 1000u

static volatile int stop_requested;
static volatile int stop_workers;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* Where "--" is, or argc: EAL gets what is before it, the relay what follows. */
static int split_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0)
			return i;
	return argc;
}

static void print_totals(const struct rly_shm *shm)
{
	static const unsigned shown[] = {RLY_CTR_RX_PKTS, RLY_CTR_RX_MSGS, RLY_CTR_DELIVERIES,
					 RLY_CTR_TX_PKTS, RLY_CTR_TX_DROP, RLY_CTR_PUNTED,
					 RLY_CTR_CTL_TX, RLY_CTR_ARP_REPLIES};
	uint64_t drops = 0;

	fprintf(stderr, "relay: totals:");
	for (size_t i = 0; i < sizeof(shown) / sizeof(shown[0]); i++)
		fprintf(stderr, " %s=%llu", rly_ctr_name(shown[i]),
			(unsigned long long)rly_shm_ctr_sum(shm, shown[i]));
	for (unsigned id = 0; id < RLY_CTR_MAX; id++)
		if (strncmp(rly_ctr_name(id), "drop_", 5) == 0)
			drops += rly_shm_ctr_sum(shm, id);
	fprintf(stderr, " drops=%llu\n", (unsigned long long)drops);
}

/*
 * The history lives in /dev/shm and is written as messages arrive: a tmpfs that fills up later
 * would kill the relay with SIGBUS mid-stream, so a history that cannot fit is refused now.
 */
static int history_fits(const struct rly_relay_opts *o, const struct rly_shm_sizes *z)
{
	struct statvfs fs;
	uint64_t need = (uint64_t)z->hist_chains * RLY_HIST_STRIDE(z->hist_index, z->hist_bytes);

	if (need == 0 || statvfs("/dev/shm", &fs) < 0)
		return 0;
	if ((uint64_t)fs.f_bavail * fs.f_frsize < need) {
		fprintf(stderr,
			"relay: the history needs up to %llu MiB of /dev/shm (--history-chains %u x "
			"--history-chain-mb %u plus its index) but only %llu MiB are free: lower "
			"either option, or grow /dev/shm (mount -o remount,size=...)\n",
			(unsigned long long)(need >> 20), o->history_chains, o->history_chain_mb,
			(unsigned long long)(((uint64_t)fs.f_bavail * fs.f_frsize) >> 20));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct rly_relay_opts o;
	struct rly_shm shm = {.fd = -1};
	struct rly_shm_sizes sizes;
	struct rly_dp_config *cfg = NULL;
	struct rly_subtable *table = NULL;
	struct rly_worker *workers = NULL;
	struct rly_lcore_ctx *ctx = NULL;
	struct rte_mempool *pool = NULL;
	struct rly_manager mgr;
	struct rly_dedup dedup;
	struct rly_shm_header *hdr;
	uint16_t n_ports = 0, n_workers;
	int dd = split_args(argc, argv), rc, exit_code = EXIT_FAILURE, ports_started = 0;
	unsigned lcore, w, sleep_us = 0;
	char *app_argv[256];
	int app_argc = 0;

	/* The relay's own options first: a typo is reported before EAL touches any device. */
	app_argv[app_argc++] = argv[0];
	for (int i = dd + 1; i < argc && app_argc < 255; i++)
		app_argv[app_argc++] = argv[i];
	if (dd == argc) {
		/* No "--": only --help/--version make sense on their own. */
		for (int i = 1; i < argc && app_argc < 255; i++)
			if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
			    strcmp(argv[i], "--version") == 0)
				app_argv[app_argc++] = argv[i];
	}
	rc = rly_relay_opts_parse(&o, app_argc, app_argv, stdout);
	if (rc == RLY_OPTS_VERSION)
		rly_relay_version(stdout);
	if (rc == RLY_OPTS_EXIT || rc == RLY_OPTS_VERSION)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "relay: %s\nRun 'relay --help' for every option.\n", rly_err_msg());
		return 2;
	}

	rc = rte_eal_init(dd, argv);
	if (rc < 0)
		rte_exit(EXIT_FAILURE,
			 "relay: EAL initialisation failed: %s. See the EAL messages above; without "
			 "hugepages add --no-huge -m 512, without a NIC add --no-pci and a --vdev.\n",
			 rte_strerror(rte_errno));
	if (rte_lcore_count() < 2)
		rte_exit(EXIT_FAILURE,
			 "relay: needs at least 2 lcores: the main lcore runs the manager and each other "
			 "lcore a worker. Pass e.g. -l 0,1, or --lcores=0@0,1@0 to share one CPU.\n");
	n_workers = (uint16_t)(rte_lcore_count() - 1);
	if (n_workers > RLY_SHM_MAX_WORKERS)
		rte_exit(EXIT_FAILURE, "relay: %u workers, at most %u are supported\n", n_workers,
			 RLY_SHM_MAX_WORKERS);
	n_ports = rte_eth_dev_count_avail();
	if (n_ports == 0)
		rte_exit(EXIT_FAILURE,
			 "relay: no ports. Give it one: --vdev=net_af_xdp0,iface=IFACE for a kernel "
			 "interface, --vdev=net_memif0,... for a shared-memory link, or -a PCI_ADDR for "
			 "a NIC bound to vfio-pci.\n");
	if (n_ports > RLY_SHM_MAX_PORTS)
		rte_exit(EXIT_FAILURE, "relay: %u ports, at most %u are supported\n", n_ports,
			 RLY_SHM_MAX_PORTS);

	/* From here on, failures go through cleanup so the shared memory never outlives us. */
	sizes = (struct rly_shm_sizes){.n_workers = n_workers,
				       .cmd_slots = o.cmd_ring,
				       .event_slots = o.cmd_ring,
				       .punt_slots = o.punt_ring,
				       .tx_slots = o.punt_ring,
				       .dedup_chains = o.dedup_chains,
				       .dedup_window = o.dedup_window,
				       .hist_chains = o.history_chains,
				       .hist_index = rly_relay_hist_index(&o),
				       .hist_bytes = (uint64_t)o.history_chain_mb << 20};
	if (history_fits(&o, &sizes) < 0)
		goto cleanup;
	if (rly_shm_create(&shm, o.instance, &sizes) < 0) {
		fprintf(stderr, "relay: %s\n", rly_err_msg());
		goto cleanup;
	}
	hdr = rly_shm_hdr(&shm);

	pool = rte_pktmbuf_pool_create("rly_mbufs", o.mbufs, MBUF_CACHE, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (pool == NULL) {
		fprintf(stderr,
			"relay: cannot create a pool of %u mbufs (%s): lower --mbufs or give EAL more "
			"memory (-m)\n",
			o.mbufs, rte_strerror(rte_errno));
		goto cleanup;
	}

	cfg = rte_zmalloc("rly_cfg", sizeof(*cfg), RTE_CACHE_LINE_SIZE);
	workers = rte_zmalloc("rly_workers", sizeof(*workers) * n_workers, RTE_CACHE_LINE_SIZE);
	ctx = calloc(n_workers, sizeof(*ctx));
	if (cfg == NULL || workers == NULL || ctx == NULL) {
		fprintf(stderr, "relay: out of memory for worker state: give EAL more memory (-m)\n");
		goto cleanup;
	}
	if (rly_ports_start(n_ports, n_workers, &o, pool, cfg->port_mac, cfg->port_chain) < 0) {
		fprintf(stderr, "relay: %s\n", rly_err_msg());
		goto cleanup;
	}
	ports_started = 1;

	cfg->ip_be = o.ip_be;
	cfg->udp_port_be = htons((uint16_t)o.udp_port);
	cfg->dgram_max = (uint16_t)RLY_WIRE_DGRAM_FOR_MTU(o.mtu);
	cfg->n_ports = n_ports;
	cfg->batch = (uint8_t)o.batch;
	cfg->chain_min = (uint16_t)o.chain_min;
	cfg->drain_tsc = rte_get_tsc_hz() / 1000000u * o.tx_drain_us;
	cfg->punt_rate = o.punt_rate;
	cfg->punt_burst = o.punt_burst;
	cfg->idle = (enum rly_idle_mode)o.idle;
	cfg->idle_max_us = o.idle_max_us;
	cfg->hist_retry_tsc = rte_get_tsc_hz();
	cfg->slow_cut_tsc = rte_get_tsc_hz() / 1000u * o.slow_cut_ms;
	cfg->nak_holdoff_tsc = rte_get_tsc_hz() / 1000000u * o.nak_holdoff_us;
	cfg->repair_bytes_s = (uint64_t)o.repair_kbs << 10;
	cfg->repair_burst = (uint64_t)o.repair_burst_kb << 10;
	for (uint16_t p = 0; p < n_ports; p++) {
		rly_hdr_tmpl_init(&cfg->tmpl[p], &cfg->port_mac[p], cfg->ip_be, cfg->udp_port_be);
		memcpy(hdr->port_mac[p], &cfg->port_mac[p], RTE_ETHER_ADDR_LEN);
	}
	hdr->relay_ip_be = cfg->ip_be;
	hdr->relay_udp_port = (uint16_t)o.udp_port;
	hdr->n_ports = n_ports;
	hdr->dgram_max = cfg->dgram_max;
	hdr->tsc_hz = rte_get_tsc_hz();
	rc = rly_dedup_init(&dedup, rly_shm_dedup_chain(&shm, 0), o.dedup_chains, o.dedup_window,
			    rte_get_tsc_hz() * o.dedup_idle_s, rte_get_tsc_hz());
	if (rc < 0) {
		fprintf(stderr, "relay: cannot set up the dedup table: %s\n", strerror(-rc));
		goto cleanup;
	}
	rly_hist_view(&dedup.hist, rly_shm_hist_base(&shm), hdr->hist_chains, hdr->hist_index,
		      hdr->hist_bytes);
	cfg->dedup = &dedup;
	cfg->track_all = dedup.hist.base != NULL;

	table = rly_subtable_create(o.max_streams, o.max_subs);
	if (table == NULL) {
		fprintf(stderr, "relay: cannot allocate a subscriber table for %u streams\n",
			o.max_streams);
		goto cleanup;
	}
	rcu_register_thread();
	w = 0;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		rc = rly_worker_init(&workers[w], (uint16_t)w, cfg, table, pool, rly_shm_ctr(&shm, w),
				     rly_shm_punt_ring(&shm, w), w == 0 ? rly_shm_tx_ring(&shm) : NULL,
				     (int)rte_lcore_to_socket_id(lcore));
		if (rc < 0) {
			fprintf(stderr, "relay: worker %u: out of memory for tx buffers\n", w);
			goto cleanup_rcu;
		}
		w++;
	}
	rly_manager_init(&mgr, table, rly_shm_cmd_ring(&shm), rly_shm_event_ring(&shm),
			 rly_shm_ctr(&shm, RLY_CTR_BLOCK_MANAGER(n_workers)), hdr, n_ports);
	mgr.dedup = &dedup;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);

	w = 0;
	RTE_LCORE_FOREACH_WORKER(lcore)
	{
		ctx[w] = (struct rly_lcore_ctx){.worker = &workers[w], .stop = &stop_workers};
		rte_eal_remote_launch(rly_worker_lcore_main, &ctx[w], lcore);
		w++;
	}
	__atomic_store_n(&hdr->relay_heartbeat_ns, rly_mono_ns(), __ATOMIC_RELAXED);
	__atomic_store_n(&hdr->state, RLY_SHM_STATE_RUNNING, __ATOMIC_RELEASE);

	fprintf(stderr,
		"relay: running as instance '%s': %s:%u, %u worker%s, %u port%s, mtu %u, batch %s, "
		"idle %s\n",
		o.instance, o.ip, o.udp_port, n_workers, n_workers == 1 ? "" : "s", n_ports,
		n_ports == 1 ? "" : "s", o.mtu, o.batch ? "on" : "off", o.idle ? "backoff" : "busy");
	if (hdr->hist_chains)
		fprintf(stderr,
			"relay: history: %u chains of %u MiB or %u messages, whichever is fewer (at "
			"most %llu MiB of /dev/shm as they fill); repair budget %u KiB/s per "
			"subscriber, slow consumers cut after %u ms\n",
			hdr->hist_chains, o.history_chain_mb, hdr->hist_index,
			(unsigned long long)(((uint64_t)hdr->hist_chains * hdr->hist_stride) >> 20),
			o.repair_kbs, o.slow_cut_ms);
	else
		fprintf(stderr, "relay: no history (--history-chains 0): NAKs get GAP "
				"UNKNOWN_CHAIN, peers' IWANTs go unanswered\n");

	while (!stop_requested) {
		if (rly_manager_poll_once(&mgr)) {
			sleep_us = 0;
		} else {
			/* The manager is not on the packet path: sleep, offline, when idle. */
			sleep_us = sleep_us ? (sleep_us * 2 > MANAGER_MAX_SLEEP_US ? MANAGER_MAX_SLEEP_US
										  : sleep_us * 2)
					    : 50;
			rcu_thread_offline();
			usleep(sleep_us);
			rcu_thread_online();
		}
		__atomic_store_n(&hdr->relay_heartbeat_ns, rly_mono_ns(), __ATOMIC_RELAXED);
	}

	fprintf(stderr, "relay: stopping\n");
	__atomic_store_n(&hdr->state, RLY_SHM_STATE_STOPPING, __ATOMIC_RELEASE);
	stop_workers = 1;
	rcu_thread_offline();
	rte_eal_mp_wait_lcore();
	rcu_thread_online();
	print_totals(&shm);
	exit_code = EXIT_SUCCESS;

cleanup_rcu:
	for (w = 0; w < n_workers && workers; w++)
		rly_worker_close(&workers[w]);
	rly_subtable_free(table);
	table = NULL;
	rcu_unregister_thread();
cleanup:
	if (ports_started)
		rly_ports_stop(n_ports);
	rly_subtable_free(table);
	rte_free(workers);
	rte_free(cfg);
	free(ctx);
	rte_mempool_free(pool);
	rly_shm_close(&shm);
	rte_eal_cleanup();
	return exit_code;
}
