/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-stat against a shared-memory object this test creates and fills itself (it plays the
 * relay: rly_shm_create records our pid as the relay's). The binary comes from RELAY_STAT.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/shm.h"
#include "test_client_proc.h"

static char instance[32];
static struct rly_shm shm;

static void make_relay(void)
{
	struct rly_shm_sizes z = {
	    .n_workers = 2, .cmd_slots = 64, .event_slots = 64, .punt_slots = 16, .tx_slots = 16};
	struct rly_shm_header *h;

	snprintf(instance, sizeof(instance), "clstat%d", getpid());
	cr_assert_eq(rly_shm_create(&shm, instance, &z), 0, "%s", rly_err_msg());
	h = rly_shm_hdr(&shm);
	h->relay_ip_be = inet_addr("10.1.2.3");
	h->relay_udp_port = 4747;
	h->relay_heartbeat_ns = rly_mono_ns();
	__atomic_store_n(&h->state, RLY_SHM_STATE_RUNNING, __ATOMIC_RELAXED);
	rly_shm_ctr(&shm, 0)->v[RLY_CTR_RX_PKTS] = 1000;
	rly_shm_ctr(&shm, 1)->v[RLY_CTR_RX_PKTS] = 234;
	rly_shm_ctr(&shm, RLY_CTR_BLOCK_MANAGER(2))->v[RLY_CTR_DELIVERIES] = 77;
	rly_shm_ctr(&shm, RLY_CTR_BLOCK_MANAGER(2))->v[RLY_CTR_STREAMS] = 5;
	rly_shm_ctr(&shm, RLY_CTR_BLOCK_CONTROL(2))->v[RLY_CTR_CTL_SUB_ADDED] = 3;
	rly_shm_ctr(&shm, 1)->v[RLY_CTR_WIRE_BASE + RLY_WIRE_ERR_BAD_MAGIC] = 9;
}

static void drop_relay(void)
{
	rly_shm_close(&shm);
}

TestSuite(client_stat, .init = make_relay, .fini = drop_relay, .timeout = 30);

static const char *stat_bin(void)
{
	const char *p = getenv("RELAY_STAT");

	cr_assert_not_null(p, "RELAY_STAT is not set: run this test through meson test");
	return p;
}

/* Run relay-stat with these arguments; read its output with tc_finish. */
#define start(fmt, ...) tc_spawn("%s " fmt, stat_bin(), __VA_ARGS__)

/* The line of @p out for counter @p name (the name, then a space), or NULL. */
static const char *row(const char *out, const char *name)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "%s ", name);
	return tc_line_starting(out, prefix);
}

static uint64_t total_of(const char *out, const char *name)
{
	const char *r = row(out, name);
	char got[64];
	uint64_t v;

	cr_assert_not_null(r, "no row for %s in:\n%s", name, out);
	cr_assert_eq(sscanf(r, "%63s %" SCNu64, got, &v), 2, "%s", r);
	return v;
}

Test(client_stat, once_prints_the_relay_state_and_its_nonzero_counters_summed)
{
	static char out[1 << 16];

	cr_assert_eq(tc_finish(start("--instance %s --once", instance), out, sizeof(out)), 0, "%s",
		     out);
	cr_assert(strstr(out, "10.1.2.3:4747") != NULL, "%s", out);
	cr_assert(strstr(out, "state RUNNING") != NULL, "%s", out);
	cr_assert(strstr(out, "workers 2") != NULL, "%s", out);
	cr_assert(strstr(out, "relay-control: NOT attached") != NULL, "%s", out);
	cr_assert_eq(total_of(out, "rx_pkts"), 1234);
	cr_assert_eq(total_of(out, "deliveries"), 77);
	cr_assert_eq(total_of(out, "ctl_sub_added"), 3);
	cr_assert_eq(total_of(out, "streams"), 5);
	cr_assert(strstr(row(out, "streams"), "(gauge)") != NULL, "%s", out);
	cr_assert_eq(total_of(out, "wire_BAD_MAGIC"), 9);
	cr_assert(strstr(row(out, "rx_pkts"), "frames received") != NULL, "descriptions are shown");
	cr_assert_null(row(out, "tx_drop"), "zero counters are hidden without --all:\n%s", out);
	cr_assert_null(row(out, "wire_BAD_VERSION"), "%s", out);
}

Test(client_stat, all_lists_zero_counters_too)
{
	static char out[1 << 16];

	cr_assert_eq(tc_finish(start("--instance %s --once --all", instance), out, sizeof(out)), 0);
	cr_assert_eq(total_of(out, "tx_drop"), 0);
	cr_assert_eq(total_of(out, "idle_sleeps"), 0);
	cr_assert_eq(total_of(out, "wire_BAD_VERSION"), 0);
	cr_assert_null(row(out, "wire_OK"), "OK is not an error:\n%s", out);
}

Test(client_stat, workers_shows_one_column_per_counter_block)
{
	static char out[1 << 16];
	char name[64];
	uint64_t total, w0, w1, mgr, ctl;

	cr_assert_eq(tc_finish(start("--instance %s --once --workers", instance), out, sizeof(out)),
		     0);
	cr_assert_not_null(row(out, "rx_pkts"), "%s", out);
	cr_assert_eq(sscanf(row(out, "rx_pkts"),
			    "%63s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, name,
			    &total, &w0, &w1, &mgr, &ctl),
		     6, "%s", out);
	cr_assert_eq(total, 1234);
	cr_assert_eq(w0, 1000);
	cr_assert_eq(w1, 234);
	cr_assert_eq(mgr, 0);
	cr_assert_eq(ctl, 0);
	cr_assert(strstr(out, " w0 ") && strstr(out, " w1 ") && strstr(out, " mgr ") &&
		      strstr(out, " ctl "),
		  "%s", out);
}

Test(client_stat, json_has_every_counter_and_a_rate_from_the_second_sample)
{
	static char line1[1 << 16], line2[1 << 16], rest[256];
	FILE *f = start("--instance %s --json --count 2 --interval 300", instance);

	cr_assert_not_null(fgets(line1, sizeof(line1), f));
	/* Between the two samples, the "relay" receives 600 more frames. */
	rly_shm_ctr(&shm, 0)->v[RLY_CTR_RX_PKTS] += 600;
	cr_assert_not_null(fgets(line2, sizeof(line2), f));
	cr_assert_eq(tc_finish(f, rest, sizeof(rest)), 0, "%s", rest);

	cr_assert(strstr(line1, "\"rx_pkts\":{\"total\":1234}") != NULL, "%s", line1);
	cr_assert(strstr(line1, "\"streams\":{\"value\":5}") != NULL, "%s", line1);
	cr_assert(strstr(line1, "\"tx_drop\":{\"total\":0}") != NULL, "%s", line1);
	cr_assert(strstr(line1, "\"wire_BAD_MAGIC\":{\"total\":9}") != NULL, "%s", line1);
	cr_assert(strstr(line1, "\"state\":\"RUNNING\"") != NULL, "%s", line1);
	cr_assert(strstr(line1, "\"addr\":\"10.1.2.3:4747\"") != NULL, "%s", line1);
	cr_assert(strstr(line2, "\"rx_pkts\":{\"total\":1834,\"rate\":") != NULL, "%s", line2);
	cr_assert(strstr(line2, "\"tx_drop\":{\"total\":0,\"rate\":0.0}") != NULL, "%s", line2);
	cr_assert(strstr(line2, "\"streams\":{\"value\":5}") != NULL, "gauges have no rate: %s",
		  line2);
	{
		double rate = atof(strstr(line2, "\"rx_pkts\":{\"total\":1834,\"rate\":") + 31);
		cr_assert_gt(rate, 0.0, "%s", line2);
	}
}

Test(client_stat, says_whether_relay_control_is_attached)
{
	static char out[1 << 16];
	struct rly_shm_header *h = rly_shm_hdr(&shm);
	char want[64];

	__atomic_store_n(&h->control_pid, getpid(), __ATOMIC_RELAXED);
	__atomic_store_n(&h->control_heartbeat_ns, rly_mono_ns(), __ATOMIC_RELAXED);
	cr_assert_eq(tc_finish(start("--instance %s --once", instance), out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "relay-control: attached (pid %d,", getpid());
	cr_assert(strstr(out, want) != NULL, "%s", out);
}

Test(client_stat, notices_when_the_relay_stops_while_watching)
{
	static char out[1 << 16];
	char line[512];
	FILE *f = start("--instance %s --interval 50", instance);

	/* Wait for the first sample, then stop the "relay". */
	do
		cr_assert_not_null(fgets(line, sizeof(line), f));
	while (strncmp(line, "rx_pkts", 7) != 0);
	__atomic_store_n(&rly_shm_hdr(&shm)->state, RLY_SHM_STATE_STOPPING, __ATOMIC_RELAXED);
	cr_assert_eq(tc_finish(f, out, sizeof(out)), 1, "%s", out);
	cr_assert(strstr(out, "stopped while being watched") != NULL, "%s", out);
}

Test(client_stat, a_missing_instance_says_no_relay_is_running_and_exits_1)
{
	static char out[4096];

	cr_assert_eq(tc_finish(start("--instance nosuch%d --once", getpid()), out, sizeof(out)), 1,
		     "%s", out);
	cr_assert(strstr(out, "no relay running as instance 'nosuch") != NULL, "%s", out);
}
