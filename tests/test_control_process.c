/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The real relay-control binary (path in $RELAY_CONTROL) against a fake dataplane played by this
 * test: it creates the relay's shared-memory object, pushes punted datagrams, reads what
 * relay-control asks to send, answers its commands like the manager lcore, and reads its counters.
 * Waits are for events, with generous deadlines; nothing asserts on how long anything took.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <sodium.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/shm.h"
#include "test_control_helpers.h"

#define DEADLINE_MS 15000
#define N_WORKERS   2u

static struct rly_shm relay;
static char inst[32];
static char dir[64];
static char secret_path[96];
static pid_t children[8];
static unsigned n_children;

static void create_relay(void)
{
	struct rly_shm_sizes z = {.n_workers = N_WORKERS,
				  .cmd_slots = 64,
				  .event_slots = 64,
				  .punt_slots = 16,
				  .tx_slots = 64};
	cr_assert_eq(rly_shm_create(&relay, inst, &z), 0, "%s", rly_err_msg());
	rly_shm_hdr(&relay)->n_ports = 2;
	__atomic_store_n(&rly_shm_hdr(&relay)->state, RLY_SHM_STATE_RUNNING, __ATOMIC_RELEASE);
}

static void setup(void)
{
	snprintf(inst, sizeof(inst), "ctlproc%d", (int)getpid());
	snprintf(dir, sizeof(dir), "/tmp/rly-ctlproc-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
	create_relay();
}

static void teardown(void)
{
	char cmd[128];

	for (unsigned i = 0; i < n_children; i++) {
		kill(children[i], SIGKILL);
		waitpid(children[i], NULL, 0);
	}
	rly_shm_close(&relay);
	/* RLY_TEST_KEEP=1 keeps relay-control's logs for a look after the run. */
	if (getenv("RLY_TEST_KEEP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static const char *binary(void)
{
	const char *p = getenv("RELAY_CONTROL");
	cr_assert_not_null(p, "set RELAY_CONTROL to the relay-control binary (meson test does)");
	return p;
}

/* Start relay-control with stdout/stderr in <dir>/<name>.out / .err. */
static pid_t spawn(const char *name, const char *const *extra)
{
	const char *argv[24];
	char out[128], err[128];
	unsigned n = 0;
	pid_t pid;

	argv[n++] = binary();
	argv[n++] = "--instance";
	argv[n++] = inst;
	argv[n++] = "--secret-file";
	argv[n++] = secret_path;
	for (; extra && *extra && n < 22; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	snprintf(out, sizeof(out), "%s/%s.out", dir, name);
	snprintf(err, sizeof(err), "%s/%s.err", dir, name);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fo < 0 || fe < 0)
			_exit(126);
		dup2(fo, 1);
		dup2(fe, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	children[n_children++] = pid;
	return pid;
}

static void forget(pid_t pid)
{
	for (unsigned i = 0; i < n_children; i++)
		if (children[i] == pid)
			children[i] = children[--n_children];
}

static void pause_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Exit status, or -1 if it did not exit before the deadline. */
static int wait_exit(pid_t pid)
{
	int st;

	for (unsigned waited = 0; waited < DEADLINE_MS; waited += 5) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid) {
			forget(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		pause_ms(5);
	}
	return -1;
}

static const char *slurp(const char *name, const char *ext)
{
	static char buf[1 << 16];
	char path[128];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	f = fopen(path, "r");
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void answer(const struct rly_cmd *c, unsigned status);
/* ADMIT_MODE commands seen, and the last mode they set (relay-control sends one per attach). */
static unsigned admit_modes_seen, admit_mode_last;

/* The next subscription command; publisher admission commands are answered OK on the way,
 * as the real manager would, and remembered. */
static int wait_cmd(struct rly_cmd *out)
{
	for (unsigned waited = 0; waited < DEADLINE_MS;) {
		if (rte_ring_dequeue_elem(rly_shm_cmd_ring(&relay), out, sizeof(*out)) == 0) {
			if (out->op < RLY_CMD_ADMIT_MODE)
				return 0;
			if (out->op == RLY_CMD_ADMIT_MODE) {
				admit_modes_seen++;
				admit_mode_last = out->partition;
			}
			answer(out, RLY_CMD_OK);
			continue;
		}
		pause_ms(1);
		waited++;
	}
	return -1;
}

static int wait_tx(struct rly_pkt_rec *out)
{
	for (unsigned waited = 0; waited < DEADLINE_MS; waited++) {
		if (rte_ring_dequeue_elem(rly_shm_tx_ring(&relay), out, sizeof(*out)) == 0)
			return 0;
		pause_ms(1);
	}
	return -1;
}

static int wait_log(const char *name, const char *needle)
{
	for (unsigned waited = 0; waited < DEADLINE_MS; waited += 5) {
		if (strstr(slurp(name, "out"), needle))
			return 0;
		pause_ms(5);
	}
	return -1;
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

static void answer(const struct rly_cmd *c, unsigned status)
{
	struct rly_event ev = {.op = RLY_EV_DONE, .seq = c->seq, .status = (uint16_t)status};
	put_event(&ev);
}

static uint64_t control_ctr(enum rly_ctr id)
{
	return __atomic_load_n(&rly_shm_ctr(&relay, RLY_CTR_BLOCK_CONTROL(N_WORKERS))->v[id],
			       __ATOMIC_RELAXED);
}

static int32_t control_pid(void)
{
	return __atomic_load_n(&rly_shm_hdr(&relay)->control_pid, __ATOMIC_ACQUIRE);
}

/* Expect the DUMP that starts every attach, and answer it with @p n copies of @p ep's entry. */
static void serve_dump(const struct rly_endpoint *ep, uint32_t partition, unsigned n)
{
	struct rly_cmd c;

	cr_assert_eq(wait_cmd(&c), 0, "no command from relay-control");
	cr_assert_eq(c.op, RLY_CMD_DUMP, "first command is op %u, not DUMP", c.op);
	for (unsigned i = 0; i < n; i++) {
		struct rly_event e = {
		    .op = RLY_EV_DUMP_ENTRY, .seq = c.seq, .partition = partition};
		memcpy(e.stream_key, tc_stream, RLY_STREAM_KEY_LEN);
		e.ep = *ep;
		put_event(&e);
	}
	struct rly_event end = {.op = RLY_EV_DUMP_END, .seq = c.seq, .count = n};
	put_event(&end);
}

/* The handshake, as a subscriber at 10.1.2.3:40000 behind relay port 1 would run it. */
static struct rly_wire_ack handshake(uint32_t lease_ms, struct rly_endpoint *ep_out)
{
	struct rly_pkt_rec rec, out;
	struct rly_cmd c;
	struct rly_wire_ack ack;

	tc_subscribe(&rec, "10.1.2.3", 40000, 6, lease_ms, 99, 0, NULL);
	rec.port_id = 1;
	rec.worker = 1;
	put_punt(1, &rec);
	cr_assert_eq(wait_tx(&out), 0, "no CHALLENGE");
	const struct rly_wire_challenge *ch = tc_body(&out, RLY_MSG_CHALLENGE);
	cr_assert_not_null(ch, "reply is not a CHALLENGE");
	cr_assert_eq(out.port_id, 1);
	cr_assert_eq(out.ip_be, tc_ip("10.1.2.3"));
	cr_assert_eq(out.udp_port_be, htons(40000));
	cr_assert_arr_eq(out.mac, tc_mac, 6);

	tc_subscribe(&rec, "10.1.2.3", 40000, 6, lease_ms, 99, rly_be64_load(&ch->issued_ms),
		     ch->cookie);
	rec.port_id = 1;
	put_punt(0, &rec);
	cr_assert_eq(wait_cmd(&c), 0, "no SUB_ADD");
	cr_assert_eq(c.op, RLY_CMD_SUB_ADD);
	cr_assert_geq(admit_modes_seen, 1, "relay-control sets the admission mode at every attach");
	cr_assert_eq(admit_mode_last, 0, "without --registry every publisher is admitted");
	cr_assert_eq(c.partition, 6);
	cr_assert_eq(c.ep.ip_be, tc_ip("10.1.2.3"));
	cr_assert_eq(c.ep.udp_port_be, htons(40000));
	cr_assert_eq(c.ep.port_id, 1);
	cr_assert_arr_eq(c.ep.mac, tc_mac, 6);
	*ep_out = c.ep;
	answer(&c, RLY_CMD_OK);

	cr_assert_eq(wait_tx(&out), 0, "no SUB_ACK");
	const struct rly_wire_ack *a = tc_body(&out, RLY_MSG_SUB_ACK);
	cr_assert_not_null(a, "reply is not a SUB_ACK");
	memcpy(&ack, a, sizeof(ack));
	cr_assert_eq(rly_be16_load(&ack.status), RLY_SUB_OK);
	cr_assert_eq(rly_be64_load(&ack.request_id), 99);
	return ack;
}

TestSuite(control_process, .init = setup, .fini = teardown);

Test(control_process, subscriber_survives_a_kill_9_and_restart_of_relay_control)
{
	struct rly_endpoint ep;
	struct rly_pkt_rec rec, out;
	struct rly_cmd c;
	char want[96];

	pid_t a = spawn("a", NULL);
	serve_dump(NULL, 0, 0);
	cr_assert_eq(control_pid(), a);

	/* A second relay-control is refused and names the first. */
	pid_t b = spawn("b", NULL);
	cr_assert_eq(wait_exit(b), 1);
	snprintf(want, sizeof(want), "another relay-control (pid %d)", (int)a);
	cr_assert_not_null(strstr(slurp("b", "err"), want), "%s", slurp("b", "err"));
	cr_assert_eq(control_pid(), a);

	struct rly_wire_ack ack = handshake(30000, &ep);
	cr_assert_eq(rly_be32_load(&ack.lease_ms), 30000);
	cr_assert_eq(rly_be32_load(&ack.heartbeat_ms), 10000);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_SUB_REQ), 2);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_CHALLENGES), 1);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_SUB_ADDED), 1);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_RESYNCS), 1);
	cr_assert_eq(wait_log("a", "\"event\":\"subscribe_added\""), 0);
	cr_assert_not_null(strstr(slurp("a", "out"), "\"src\":\"10.1.2.3:40000\""));

	/* relay-control keeps telling the relay it is alive. */
	uint64_t hb = rly_shm_hdr(&relay)->control_heartbeat_ns;
	pause_ms(50);
	cr_assert_gt(rly_shm_hdr(&relay)->control_heartbeat_ns, hb);

	kill(a, SIGKILL);
	cr_assert_eq(wait_exit(a), 128 + SIGKILL);
	cr_assert_eq(control_pid(), a, "kill -9 leaves the dead pid behind");

	pid_t d = spawn("d", NULL);
	serve_dump(&ep, 6, 1);
	cr_assert_eq(wait_log("d", "\"event\":\"resync_done\""), 0);
	cr_assert_not_null(strstr(slurp("d", "out"), "\"entries\":1"), "%s", slurp("d", "out"));
	cr_assert_eq(control_pid(), d, "the dead holder's claim was taken over");

	/* The token from before the restart is still good, and the subscriber is still known. */
	tc_ref(&rec, RLY_MSG_HEARTBEAT, "10.1.2.3", 40000, 6, 100, ack.token);
	put_punt(0, &rec);
	cr_assert_eq(wait_tx(&out), 0, "no HEARTBEAT_ACK");
	const struct rly_wire_ack *h = tc_body(&out, RLY_MSG_HEARTBEAT_ACK);
	cr_assert_not_null(h);
	cr_assert_eq(rly_be16_load(&h->status), RLY_SUB_OK);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_HEARTBEATS), 1);

	/* Nothing is removed: watch the command ring for a while (admission commands are fine). */
	pause_ms(500);
	while (rte_ring_dequeue_elem(rly_shm_cmd_ring(&relay), &c, sizeof(c)) == 0) {
		cr_assert_geq(c.op, RLY_CMD_ADMIT_MODE, "unexpected command op %u after the resync",
			      c.op);
		answer(&c, RLY_CMD_OK);
	}
	cr_assert_eq(control_ctr(RLY_CTR_CTL_EXPIRED), 0);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_RESYNCS), 2);

	kill(d, SIGTERM);
	cr_assert_eq(wait_exit(d), 0);
	cr_assert_eq(control_pid(), 0, "a clean exit gives the claim back");
	cr_assert_not_null(strstr(slurp("d", "out"), "\"event\":\"stopped\""));
}

Test(control_process, lease_without_heartbeats_is_removed_and_counted)
{
	struct rly_endpoint ep;
	struct rly_cmd c;

	const char *const args[] = {"--max-lease-ms", "200", NULL};
	pid_t a = spawn("a", args);
	serve_dump(NULL, 0, 0);
	struct rly_wire_ack ack = handshake(30000, &ep);
	cr_assert_eq(rly_be32_load(&ack.lease_ms), 200, "capped by --max-lease-ms");
	cr_assert_eq(wait_cmd(&c), 0, "the lease never expired");
	cr_assert_eq(c.op, RLY_CMD_SUB_DEL);
	cr_assert_eq(c.ep.ip_be, tc_ip("10.1.2.3"));
	cr_assert_eq(c.partition, 6);
	answer(&c, RLY_CMD_OK);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_EXPIRED), 1);
	cr_assert_eq(wait_log("a", "\"event\":\"lease_expired\""), 0);
	kill(a, SIGINT);
	cr_assert_eq(wait_exit(a), 0);
}

/* The subscribe body a key holder at 10.1.2.4:41000 sends, signed by @p pk/@p sk when @p ch. */
static void holder_punt(struct rly_pkt_rec *rec, const struct rly_wire_challenge *ch,
			const uint8_t *pk, const uint8_t *sk)
{
	struct rly_wire_subscribe_signed ss;
	uint8_t msg[sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1 + sizeof(ss.sub)];

	memset(&ss, 0, sizeof(ss));
	memcpy(ss.sub.stream_key, tc_stream, RLY_STREAM_KEY_LEN);
	rly_be32_store(&ss.sub.partition, RLY_KEY_HOLDER_PARTITION);
	rly_be32_store(&ss.sub.lease_ms, 30000);
	rly_be64_store(&ss.sub.request_id, 7);
	memcpy(ss.sub.subscriber, pk, RLY_ID_LEN);
	if (!ch) {
		tc_punt(rec, RLY_MSG_SUBSCRIBE, &ss.sub, "10.1.2.4", 41000);
		return;
	}
	ss.sub.issued_ms = ch->issued_ms;
	memcpy(ss.sub.cookie, ch->cookie, RLY_COOKIE_LEN);
	memcpy(msg, RLY_SUBSCRIBE_SIG_CONTEXT, sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1);
	memcpy(msg + sizeof(RLY_SUBSCRIBE_SIG_CONTEXT) - 1, &ss.sub, sizeof(ss.sub));
	crypto_sign_detached(ss.sig, NULL, msg, sizeof(msg), sk);
	tc_punt(rec, RLY_MSG_SUBSCRIBE_SIGNED, &ss, "10.1.2.4", 41000);
}

Test(control_process, a_key_holder_registers_without_a_dataplane_command_and_expires)
{
	uint8_t pk[RLY_ID_LEN], sk[64];
	struct rly_pkt_rec rec, out;
	struct rly_cmd c;

	cr_assert_geq(sodium_init(), 0);
	crypto_sign_keypair(pk, sk);
	const char *const args[] = {"--max-lease-ms", "300", NULL};
	pid_t a = spawn("a", args);
	serve_dump(NULL, 0, 0);

	holder_punt(&rec, NULL, pk, sk);
	put_punt(0, &rec);
	cr_assert_eq(wait_tx(&out), 0, "no CHALLENGE");
	const struct rly_wire_challenge *ch = tc_body(&out, RLY_MSG_CHALLENGE);
	cr_assert_not_null(ch);
	struct rly_wire_challenge chc = *ch;
	holder_punt(&rec, &chc, pk, sk);
	put_punt(0, &rec);
	cr_assert_eq(wait_tx(&out), 0, "no SUB_ACK");
	const struct rly_wire_ack *ack = tc_body(&out, RLY_MSG_SUB_ACK);
	cr_assert_not_null(ack);
	cr_assert_eq(rly_be16_load(&ack->status), RLY_SUB_OK);
	cr_assert_eq(rly_be32_load(&ack->lease_ms), 300);
	cr_assert_eq(wait_log("a", "\"event\":\"key_holder_added\""), 0);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_KEY_HOLDERS), 1);

	/* Let the lease run out; the only commands ever seen are the attach's admission ones. */
	cr_assert_eq(wait_log("a", "\"reason\":\"expired\""), 0);
	cr_assert_eq(control_ctr(RLY_CTR_CTL_KEY_HOLDERS), 0);
	while (rte_ring_dequeue_elem(rly_shm_cmd_ring(&relay), &c, sizeof(c)) == 0)
		cr_assert_geq(c.op, RLY_CMD_ADMIT_MODE, "a key holder made command op %u", c.op);
	kill(a, SIGINT);
	cr_assert_eq(wait_exit(a), 0);
}

Test(control_process, relay_restart_is_detected_and_the_new_relay_resynced)
{
	pid_t a = spawn("a", NULL);
	serve_dump(NULL, 0, 0);

	__atomic_store_n(&rly_shm_hdr(&relay)->state, RLY_SHM_STATE_STOPPING, __ATOMIC_RELEASE);
	cr_assert_eq(wait_log("a", "\"event\":\"relay_lost\""), 0);
	for (unsigned i = 0; i < 1000 && control_pid() != 0; i++)
		pause_ms(5);
	cr_assert_eq(control_pid(), 0, "relay-control let go of the stopping relay");

	rly_shm_close(&relay);
	create_relay();
	serve_dump(NULL, 0, 0);
	cr_assert_eq(wait_log("a", "\"event\":\"relay_back\""), 0);
	cr_assert_eq(control_pid(), a);
	kill(a, SIGTERM);
	cr_assert_eq(wait_exit(a), 0);
}

Test(control_process, exit_with_relay_exits_when_the_relay_stops)
{
	const char *const args[] = {"--exit-with-relay", NULL};
	pid_t a = spawn("a", args);
	serve_dump(NULL, 0, 0);
	__atomic_store_n(&rly_shm_hdr(&relay)->state, RLY_SHM_STATE_STOPPING, __ATOMIC_RELEASE);
	cr_assert_eq(wait_exit(a), 0);
	cr_assert_not_null(strstr(slurp("a", "out"), "\"event\":\"relay_lost\""));
}

Test(control_process, no_relay_running_exits_1_with_a_message)
{
	char other[48];
	snprintf(other, sizeof(other), "%s-none", inst);
	const char *const args[] = {"--instance", other, NULL};
	pid_t a = spawn("a", args);

	cr_assert_eq(wait_exit(a), 1);
	cr_assert_not_null(strstr(slurp("a", "err"), "no relay running as instance"), "%s",
			   slurp("a", "err"));
	cr_assert_not_null(strstr(slurp("a", "out"), "\"level\":\"error\""));
	cr_assert_eq(control_pid(), 0);
}

Test(control_process, readable_secret_file_is_refused_with_chmod_advice)
{
	int fd = open(secret_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
	close(fd);
	cr_assert_eq(chmod(secret_path, 0644), 0);

	pid_t a = spawn("a", NULL);
	cr_assert_eq(wait_exit(a), 1);
	cr_assert_not_null(strstr(slurp("a", "err"), "chmod 600"), "%s", slurp("a", "err"));
	cr_assert_eq(control_pid(), 0);
}

Test(control_process, bad_options_are_refused_and_help_lists_every_option)
{
	const char *const bad[] = {"--max-lease-ms", "soon", NULL};
	pid_t a = spawn("a", bad);
	cr_assert_eq(wait_exit(a), 1);
	cr_assert_not_null(strstr(slurp("a", "err"), "give a whole number"), "%s",
			   slurp("a", "err"));

	const char *const unknown[] = {"--lease", "5", NULL};
	a = spawn("b", unknown);
	cr_assert_eq(wait_exit(a), 1);
	cr_assert_not_null(strstr(slurp("b", "err"), "--help"), "%s", slurp("b", "err"));

	const char *const help[] = {"--help", NULL};
	a = spawn("c", help);
	cr_assert_eq(wait_exit(a), 0);
	const char *opts[] = {
	    "--instance",    "--default-lease-ms", "--max-lease-ms",	"--challenge-ttl-ms",
	    "--secret-file", "--log-level",	   "--exit-with-relay", "--help",
	    "--version",	   "--registry",	   "--key-holders-max", "--key-pending-max"};
	for (unsigned i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		cr_assert_not_null(strstr(slurp("c", "out"), opts[i]), "--help misses %s", opts[i]);
}
