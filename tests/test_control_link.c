/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-control's shared-memory side, in one process: the test creates the relay's object with
 * rly_shm_create (so it is "the relay"), and drives relay-control's link and whole loop
 * (rly_ctl_poll_once) with its own clock, reading and writing the rings the dataplane would.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "common/err.h"
#include "common/shm.h"
#include "control/ctl.h"
#include "control/dp_link.h"
#include "test_control_helpers.h"

static struct rly_shm relay;
static char inst[32];
static char secret_path[64];
static FILE *log_file;

static void create_relay(uint32_t cmd_slots, uint32_t tx_slots)
{
	struct rly_shm_sizes z = {.n_workers = 2,
				  .cmd_slots = cmd_slots,
				  .event_slots = 64,
				  .punt_slots = 16,
				  .tx_slots = tx_slots};
	cr_assert_eq(rly_shm_create(&relay, inst, &z), 0, "%s", rly_err_msg());
	rly_shm_hdr(&relay)->n_ports = 2;
}

static void set_state(uint32_t st)
{
	__atomic_store_n(&rly_shm_hdr(&relay)->state, st, __ATOMIC_RELEASE);
}

static void setup(void)
{
	snprintf(inst, sizeof(inst), "ctllink%d", (int)getpid());
	snprintf(secret_path, sizeof(secret_path), "/tmp/rly-ctllink-%d.secret", (int)getpid());
	log_file = tmpfile();
	rly_ctl_log_open(log_file, inst, RLY_LOG_DEBUG);
	create_relay(64, 64);
}

static void teardown(void)
{
	rly_shm_close(&relay);
	unlink(secret_path);
	fclose(log_file);
}

static const char *logged(void)
{
	static char buf[65536];
	size_t n;

	fflush(log_file);
	rewind(log_file);
	n = fread(buf, 1, sizeof(buf) - 1, log_file);
	buf[n] = '\0';
	fseek(log_file, 0, SEEK_END);
	return buf;
}

static unsigned take_cmds(struct rly_cmd *out, unsigned n)
{
	return rte_ring_dequeue_burst_elem(rly_shm_cmd_ring(&relay), out, sizeof(*out), n, NULL);
}

static unsigned take_tx(struct rly_pkt_rec *out, unsigned n)
{
	return rte_ring_dequeue_burst_elem(rly_shm_tx_ring(&relay), out, sizeof(*out), n, NULL);
}

static void put_event(const struct rly_event *ev)
{
	cr_assert_eq(rte_ring_enqueue_elem(rly_shm_event_ring(&relay), (void *)ev, sizeof(*ev)), 0);
}

static void put_punt(unsigned w, const struct rly_pkt_rec *rec)
{
	cr_assert_eq(rte_ring_enqueue_elem(rly_shm_punt_ring(&relay, w), (void *)rec, sizeof(*rec)),
		     0);
}

static uint64_t control_ctr(enum rly_ctr id)
{
	return rly_shm_ctr(&relay, RLY_CTR_BLOCK_CONTROL(2))->v[id];
}

/* A child that lives until killed: a pid that is certainly alive and certainly not ours. */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		pause();
		_exit(0);
	}
	return pid;
}

TestSuite(control_link, .init = setup, .fini = teardown);

Test(control_link, attach_claims_the_instance_and_detach_gives_it_back)
{
	struct rly_ctl_link l;

	rly_ctl_link_init(&l);
	cr_assert_eq(rly_ctl_link_attach(&l, inst), 0, "%s", rly_err_msg());
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, getpid());
	rly_ctl_link_heartbeat(&l, 12345);
	cr_assert_eq(rly_shm_hdr(&relay)->control_heartbeat_ns, 12345);
	rly_ctl_link_count(&l, RLY_CTR_CTL_RESYNCS);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_RESYNCS), 1, "counts land in the control block");
	cr_assert_eq(rly_shm_ctr_sum(&relay, RLY_CTR_CTL_RESYNCS), 1);
	rly_ctl_link_close(&l);
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, 0);
}

Test(control_link, attach_is_refused_while_another_live_relay_control_holds_it)
{
	struct rly_ctl_link l;
	pid_t other = spawn_sleeper();
	char want[64];

	rly_shm_hdr(&relay)->control_pid = other;
	rly_ctl_link_init(&l);
	cr_assert_eq(rly_ctl_link_attach(&l, inst), -EBUSY);
	snprintf(want, sizeof(want), "another relay-control (pid %d)", (int)other);
	cr_assert_not_null(strstr(rly_err_msg(), want), "%s", rly_err_msg());
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, other, "the holder keeps its claim");
	cr_assert_eq(l.attached, 0);
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);

	/* Once it is dead (kill -9 leaves its pid behind) the claim is taken over. */
	cr_assert_eq(rly_ctl_link_attach(&l, inst), 0, "%s", rly_err_msg());
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, getpid());
	rly_ctl_link_close(&l);
}

Test(control_link, attach_refuses_a_missing_relay_and_a_foreign_layout)
{
	struct rly_ctl_link l;
	char other[48];

	rly_ctl_link_init(&l);
	snprintf(other, sizeof(other), "%s-none", inst);
	cr_assert_eq(rly_ctl_link_attach(&l, other), -ENOENT);
	cr_assert_not_null(strstr(rly_err_msg(), "no relay running"), "%s", rly_err_msg());

	rly_shm_hdr(&relay)->ring_impl ^= 0x00010000;
	cr_assert_eq(rly_ctl_link_attach(&l, inst), -EPROTO);
	cr_assert_not_null(strstr(rly_err_msg(), "rings with DPDK"), "%s", rly_err_msg());
	rly_shm_hdr(&relay)->ring_impl ^= 0x00010000;

	rly_shm_hdr(&relay)->abi_version = RLY_SHM_ABI_VERSION + 1;
	cr_assert_eq(rly_ctl_link_attach(&l, inst), -EPROTO);
	cr_assert_not_null(strstr(rly_err_msg(), "ABI version"), "%s", rly_err_msg());
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, 0, "nothing claimed on a refused attach");
	rly_shm_hdr(&relay)->abi_version = RLY_SHM_ABI_VERSION;
	rly_ctl_link_close(&l);
}

Test(control_link, commands_wait_locally_when_the_ring_is_full_and_keep_their_order)
{
	struct rly_ctl_link l;
	struct rly_cmd c, got[16];
	uint32_t first = 0;
	unsigned n;

	rly_shm_close(&relay);
	create_relay(4, 64); /* room for 3 */
	rly_ctl_link_init(&l);
	cr_assert_eq(rly_ctl_link_attach(&l, inst), 0, "%s", rly_err_msg());
	for (unsigned i = 0; i < 10; i++) {
		memset(&c, 0, sizeof(c));
		c.op = RLY_CMD_PING;
		c.partition = i;
		cr_assert_eq(rly_ctl_link_submit(&l, &c), 0);
		if (i == 0)
			first = c.seq;
		cr_assert_eq(c.seq, first + i, "seqs increment");
	}
	cr_assert_eq(rly_ctl_link_flush(&l), 3);
	cr_assert_eq(rly_ctl_link_queued(&l), 7);
	cr_assert_eq(rly_ctl_link_flush(&l), 0, "still full");
	unsigned seen = 0;
	while (seen < 10) {
		n = take_cmds(got, 16);
		for (unsigned i = 0; i < n; i++, seen++) {
			cr_assert_eq(got[i].partition, seen, "command %u out of order", seen);
			cr_assert_eq(got[i].seq, first + seen);
		}
		rly_ctl_link_flush(&l);
		cr_assert(n > 0 || seen == 10, "a command was lost");
	}
	cr_assert_eq(rly_ctl_link_queued(&l), 0);
	rly_ctl_link_close(&l);
}

Test(control_link, full_tx_ring_drops_and_counts)
{
	struct rly_ctl_link l;
	struct rly_pkt_rec rec;

	rly_shm_close(&relay);
	create_relay(64, 2); /* room for 1 */
	rly_ctl_link_init(&l);
	cr_assert_eq(rly_ctl_link_attach(&l, inst), 0, "%s", rly_err_msg());
	tc_subscribe(&rec, "10.0.0.1", 1, 0, 1000, 1, 0, NULL);
	cr_assert_eq(rly_ctl_link_send(&l, &rec), 0);
	cr_assert_eq(rly_ctl_link_send(&l, &rec), -ENOBUFS);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_TX_FULL), 1);
	rly_ctl_link_close(&l);
}

/* ---- the whole loop ---- */

static struct rly_ctl *make_ctl(int exit_with_relay)
{
	struct rly_ctl_opts o = {.instance = inst,
				 .secret_file = secret_path,
				 .subs = RLY_CTL_SUBS_CFG_DEFAULT,
				 .exit_with_relay = exit_with_relay};
	struct rly_ctl *c;

	cr_assert_eq(rly_ctl_create(&c, &o), 0, "%s", rly_err_msg());
	return c;
}

static unsigned turn(struct rly_ctl *c, uint64_t now_ns)
{
	unsigned work;
	cr_assert_eq(rly_ctl_poll_once(c, now_ns, &work), 0, "%s", rly_err_msg());
	return work;
}

static void finish_dump(uint32_t seq, uint32_t count)
{
	struct rly_event ev = {.op = RLY_EV_DUMP_END, .seq = seq, .count = count};
	put_event(&ev);
}

Test(control_link, loop_waits_for_running_then_resyncs_before_serving)
{
	struct rly_ctl *c = make_ctl(0);
	struct rly_cmd cmd;
	struct rly_pkt_rec rec, out;
	uint64_t t = 1000000000ull;

	cr_assert_eq(rly_ctl_start(c, t), 0, "%s", rly_err_msg());
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, getpid());

	/* STARTING: nothing is asked of the relay, and the punted SUBSCRIBE waits. */
	tc_subscribe(&rec, "10.0.0.1", 4000, 0, 1000, 1, 0, NULL);
	put_punt(1, &rec);
	turn(c, t += 1000000);
	cr_assert_eq(take_cmds(&cmd, 1), 0);
	cr_assert_eq(rly_shm_hdr(&relay)->control_heartbeat_ns, t);

	/* An answer left over from a previous relay-control must not confuse the resync. */
	struct rly_event stale = {.op = RLY_EV_DUMP_END, .seq = 1};
	put_event(&stale);

	set_state(RLY_SHM_STATE_RUNNING);
	turn(c, t += 1000000);
	cr_assert_eq(take_cmds(&cmd, 1), 1);
	cr_assert_eq(cmd.op, RLY_CMD_DUMP, "the first command is the DUMP");
	turn(c, t += 1000000);
	cr_assert_eq(take_tx(&out, 1), 0, "punts wait until the dump ends");

	finish_dump(cmd.seq, 0);
	turn(c, t += 1000000);
	cr_assert_eq(take_tx(&out, 1), 1);
	cr_assert_not_null(tc_body(&out, RLY_MSG_CHALLENGE));
	cr_assert_eq(out.ip_be, tc_ip("10.0.0.1"));
	cr_assert_eq(out.udp_port_be, htons(4000));
	cr_assert_eq(control_ctr(RLY_CTR_CTL_RESYNCS), 1);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_CHALLENGES), 1);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_BAD_RECORD), 0, "the stale answer was discarded");

	/* A record from a port the relay does not have is refused. */
	rec.port_id = 5;
	put_punt(0, &rec);
	turn(c, t += 1000000);
	cr_assert_eq(take_tx(&out, 1), 0);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_BAD_RECORD), 1);

	cr_assert_eq(turn(c, t += 1000000), 0, "an idle turn reports no work");
	rly_ctl_free(c);
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, 0);
	cr_assert_not_null(strstr(logged(), "\"event\":\"attached\""));
	cr_assert_not_null(strstr(logged(), "\"event\":\"resync_done\""));
}

Test(control_link, stopping_relay_is_left_and_its_successor_attached_and_resynced)
{
	struct rly_ctl *c = make_ctl(0);
	struct rly_cmd cmd;
	uint64_t t = 1000000000ull;

	set_state(RLY_SHM_STATE_RUNNING);
	cr_assert_eq(rly_ctl_start(c, t), 0, "%s", rly_err_msg());
	turn(c, t += 1000000);
	cr_assert_eq(take_cmds(&cmd, 1), 1);
	finish_dump(cmd.seq, 0);
	turn(c, t += 1000000);

	set_state(RLY_SHM_STATE_STOPPING);
	turn(c, t += 1000000);
	cr_assert_eq(rly_ctl_attached(c), 0);
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, 0, "claim given back");
	cr_assert_not_null(strstr(logged(), "\"event\":\"relay_lost\""));

	/* While the old relay lingers in STOPPING it is not attached again. */
	for (int i = 0; i < 5; i++)
		turn(c, t += 250000000ull);
	cr_assert_eq(rly_ctl_attached(c), 0);

	/* A new relay of the same instance. */
	rly_shm_close(&relay);
	create_relay(64, 64);
	turn(c, t += 250000000ull);
	cr_assert_eq(rly_ctl_attached(c), 1);
	cr_assert_eq(rly_shm_hdr(&relay)->control_pid, getpid());
	cr_assert_eq(take_cmds(&cmd, 1), 0, "waits for RUNNING");
	set_state(RLY_SHM_STATE_RUNNING);
	turn(c, t += 1000000);
	cr_assert_eq(take_cmds(&cmd, 1), 1);
	cr_assert_eq(cmd.op, RLY_CMD_DUMP);
	cr_assert_not_null(strstr(logged(), "\"event\":\"relay_back\""));
	rly_ctl_free(c);
}

Test(control_link, exit_with_relay_stops_the_loop_when_the_relay_stops)
{
	struct rly_ctl *c = make_ctl(1);
	unsigned work;
	uint64_t t = 1000000000ull;

	set_state(RLY_SHM_STATE_RUNNING);
	cr_assert_eq(rly_ctl_start(c, t), 0, "%s", rly_err_msg());
	turn(c, t += 1000000);
	set_state(RLY_SHM_STATE_STOPPING);
	cr_assert_eq(rly_ctl_poll_once(c, t += 1000000, &work), RLY_CTL_STOP);
	cr_assert_eq(rly_ctl_exit_code(c), 0);
	rly_ctl_free(c);
}
