/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared-memory ABI: create and attach, every refusal with a message that says what to do,
 * and rings that carry records between two processes that map the object at different addresses
 * without EAL.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <rte_ring_elem.h>

#include "common/err.h"
#include "common/shm.h"

static const struct rly_shm_sizes Z = {
    .n_workers = 2, .cmd_slots = 64, .event_slots = 64, .punt_slots = 64, .tx_slots = 64};

static void inst(char *out, size_t cap, const char *tag)
{
	snprintf(out, cap, "t%d%s", getpid(), tag);
}

Test(shm, attach_sees_what_create_wrote_and_close_unlinks)
{
	struct rly_shm a, b;
	char name[32], path[64];

	inst(name, sizeof(name), "a");
	cr_assert_eq(rly_shm_create(&a, name, &Z), 0, "%s", rly_err_msg());
	cr_assert_eq(rly_shm_attach(&b, name, 0), 0, "%s", rly_err_msg());
	cr_assert_eq(rly_shm_hdr(&b)->n_workers, 2);
	cr_assert_eq(rly_shm_hdr(&b)->n_blocks, 4);
	cr_assert_eq(rly_shm_hdr(&b)->relay_pid, getpid());
	cr_assert_str_eq(rly_shm_hdr(&b)->instance, name);
	cr_assert_eq(rly_shm_check_rings(&b), 0);
	rly_shm_ctr(&a, 0)->v[RLY_CTR_RX_PKTS] = 5;
	rly_shm_ctr(&a, 1)->v[RLY_CTR_RX_PKTS] = 7;
	rly_shm_ctr(&a, RLY_CTR_BLOCK_CONTROL(2))->v[RLY_CTR_WIRE_BASE + 3] = 2;
	cr_assert_eq(rly_shm_ctr_sum(&b, RLY_CTR_RX_PKTS), 12, "readers sum every block");
	cr_assert_eq(rly_shm_ctr_sum(&b, RLY_CTR_WIRE_BASE + 3), 2);
	rly_shm_close(&b);
	rly_shm_close(&a);
	snprintf(path, sizeof(path), "/dev/shm/relay.%s", name);
	cr_assert_neq(access(path, F_OK), 0, "the owner's close removes the object");
}

Test(shm, refusals_say_what_to_do)
{
	struct rly_shm a, b;
	char name[32];

	cr_assert_eq(rly_shm_attach(&b, "nosuchrelay", 0), -ENOENT);
	cr_assert(strstr(rly_err_msg(), "no relay running as instance 'nosuchrelay'"), "%s",
		  rly_err_msg());
	cr_assert_eq(rly_shm_create(&a, "bad/name", &Z), -EINVAL);
	cr_assert(strstr(rly_err_msg(), "instance name"), "%s", rly_err_msg());

	inst(name, sizeof(name), "b");
	cr_assert_eq(rly_shm_create(&a, name, &Z), 0);
	cr_assert_eq(rly_shm_create(&b, name, &Z), -EBUSY, "a live relay keeps its instance");
	cr_assert(strstr(rly_err_msg(), "already running"), "%s", rly_err_msg());

	rly_shm_hdr(&a)->abi_version = RLY_SHM_ABI_VERSION + 1;
	cr_assert_eq(rly_shm_attach(&b, name, 0), -EPROTO);
	cr_assert(strstr(rly_err_msg(), "shm ABI version"), "%s", rly_err_msg());
	rly_shm_hdr(&a)->abi_version = RLY_SHM_ABI_VERSION;

	rly_shm_hdr(&a)->ring_impl ^= 1;
	cr_assert_eq(rly_shm_attach(&b, name, 0), 0);
	cr_assert_eq(rly_shm_check_rings(&b), -EPROTO);
	cr_assert(strstr(rly_err_msg(), "rebuild both"), "%s", rly_err_msg());
	rly_shm_close(&b);
	rly_shm_hdr(&a)->ring_impl ^= 1;

	rly_shm_hdr(&a)->magic = 0;
	cr_assert_eq(rly_shm_attach(&b, name, 0), -EPROTO);
	cr_assert(strstr(rly_err_msg(), "bad magic"), "%s", rly_err_msg());
	rly_shm_hdr(&a)->magic = RLY_SHM_MAGIC;
	rly_shm_close(&a);
}

Test(shm, a_dead_relays_object_is_reported_then_replaced)
{
	struct rly_shm a, b;
	char name[32];
	pid_t child;

	inst(name, sizeof(name), "c");
	child = fork();
	if (child == 0) {
		struct rly_shm c;
		/* Exit without closing: the object stays behind, owned by a dead pid. */
		_exit(rly_shm_create(&c, name, &Z) == 0 ? 0 : 1);
	}
	cr_assert_eq(waitpid(child, NULL, 0), child);
	cr_assert_eq(rly_shm_attach(&b, name, 0), -ESRCH);
	cr_assert(strstr(rly_err_msg(), "is not running"), "%s", rly_err_msg());
	cr_assert_eq(rly_shm_create(&a, name, &Z), 0, "stale object replaced: %s", rly_err_msg());
	cr_assert_eq(rly_shm_hdr(&a)->relay_pid, getpid());
	rly_shm_close(&a);
}

Test(shm, rings_carry_records_between_processes_in_order)
{
	struct rly_shm a;
	char name[32];
	pid_t child;
	int status;
	uint32_t got = 0;

	inst(name, sizeof(name), "d");
	cr_assert_eq(rly_shm_create(&a, name, &Z), 0);
	child = fork();
	if (child == 0) {
		/* A separate mapping, as relay-control has: attach writable and produce commands. */
		struct rly_shm c;
		struct rly_cmd cmd;
		if (rly_shm_attach(&c, name, 1) != 0 || rly_shm_check_rings(&c) != 0)
			_exit(2);
		memset(&cmd, 0, sizeof(cmd));
		for (uint32_t i = 1; i <= 100000;) {
			cmd.seq = i;
			cmd.partition = i * 3;
			if (rte_ring_sp_enqueue_elem(rly_shm_cmd_ring(&c), &cmd, sizeof(cmd)) == 0)
				i++;
		}
		_exit(0);
	}
	while (got < 100000) {
		struct rly_cmd cmd;
		if (rte_ring_sc_dequeue_elem(rly_shm_cmd_ring(&a), &cmd, sizeof(cmd)) != 0)
			continue;
		got++;
		cr_assert_eq(cmd.seq, got);
		cr_assert_eq(cmd.partition, got * 3);
	}
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	rly_shm_close(&a);
}
