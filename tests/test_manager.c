/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The manager's command protocol with relay-control: one DONE per command with the right status,
 * dumps that survive a full event ring, commands after a DUMP held until it ends, and the table
 * gauges and generation that relay-stat and relay-control read.
 */
#include <arpa/inet.h>
#include <string.h>

#include <criterion/criterion.h>
#include <rte_ring_elem.h>

#include "dp_harness.h"

static struct harness H;

Test(manager, answers_every_command_with_its_status)
{
	uint8_t k[16];
	struct rly_endpoint a = h_ep(1, 5001), bad_port = h_ep(2, 5002);
	uint64_t gen0;

	h_setup(&H, 1, 1, 1500);
	h_key(k, 1);
	gen0 = rly_shm_hdr(&H.shm)->table_generation;
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &a), RLY_CMD_OK);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &a), RLY_CMD_EXISTS);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_DEL, k, 9, &a), RLY_CMD_NOT_FOUND);
	bad_port.port_id = 1;
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, 0, &bad_port), RLY_CMD_BAD_PORT);
	cr_assert_eq(h_cmd(&H, 99, k, 0, &a), RLY_CMD_BAD_OP);
	cr_assert_eq(h_cmd(&H, RLY_CMD_PING, NULL, 0, NULL), RLY_CMD_OK);
	cr_assert_eq(rly_shm_hdr(&H.shm)->table_generation, gen0 + 1, "one change, one generation");
	cr_assert_eq(h_ctr(&H, RLY_CTR_STREAMS), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_SUBSCRIBERS), 1);
	cr_assert_eq(h_ctr(&H, RLY_CTR_CMD_APPLIED), 3, "add, exists, ping");
	cr_assert_eq(h_ctr(&H, RLY_CTR_CMD_REFUSED), 3);
	cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_DEL, k, 0, &a), RLY_CMD_OK);
	cr_assert_eq(h_ctr(&H, RLY_CTR_SUBSCRIBERS), 0);
	h_teardown(&H);
}

Test(manager, dump_larger_than_the_event_ring_arrives_whole_and_holds_later_commands)
{
	struct rte_ring *cmd, *ev;
	struct rly_cmd c;
	struct rly_event e;
	unsigned entries = 0, seen[64][64] = {{0}}, turns = 0;
	int ended = 0, pinged = 0;

	h_setup(&H, 1, 1, 1500);
	cmd = rly_shm_cmd_ring(&H.shm);
	ev = rly_shm_event_ring(&H.shm);
	/* 40 streams x 50 endpoints = 2000 entries through a 1024-slot event ring. */
	for (unsigned s = 0; s < 40; s++)
		for (unsigned i = 0; i < 50; i++) {
			uint8_t k[16];
			struct rly_endpoint ep = h_ep(i + 1, (uint16_t)(5000 + s));
			h_key(k, s);
			cr_assert_eq(h_cmd(&H, RLY_CMD_SUB_ADD, k, s, &ep), RLY_CMD_OK);
		}
	memset(&c, 0, sizeof(c));
	c.op = RLY_CMD_DUMP;
	c.seq = 1000;
	cr_assert_eq(rte_ring_sp_enqueue_elem(cmd, &c, sizeof(c)), 0);
	c.op = RLY_CMD_PING;
	c.seq = 1001;
	cr_assert_eq(rte_ring_sp_enqueue_elem(cmd, &c, sizeof(c)), 0);
	while (!pinged && turns++ < 100) {
		rly_manager_poll_once(&H.mgr);
		/* Read slowly: at most 300 events per turn, so the manager finds the ring full. */
		for (unsigned r = 0; r < 300 && rte_ring_sc_dequeue_elem(ev, &e, sizeof(e)) == 0; r++) {
			if (e.op == RLY_EV_DUMP_ENTRY) {
				cr_assert_not(ended, "entry after DUMP_END");
				cr_assert_eq(e.seq, 1000);
				seen[e.partition][ntohl(e.ep.ip_be) & 0xff]++;
				entries++;
			} else if (e.op == RLY_EV_DUMP_END) {
				cr_assert_eq(e.seq, 1000);
				cr_assert_eq(e.count, 2000);
				ended = 1;
			} else {
				cr_assert_eq(e.op, RLY_EV_DONE);
				cr_assert_eq(e.seq, 1001);
				cr_assert(ended, "a command queued after DUMP was answered before it ended");
				pinged = 1;
			}
		}
	}
	cr_assert(pinged);
	cr_assert_eq(entries, 2000);
	for (unsigned s = 0; s < 40; s++)
		for (unsigned i = 1; i <= 50; i++)
			cr_assert_eq(seen[s][i], 1, "stream %u endpoint %u seen %u times", s, i, seen[s][i]);
	h_teardown(&H);
}
