/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fake dataplane behind relay-control's subscription service in the Criterion tests
 * (test_control_subs.c, test_control_keys.c, test_control_registry.c): it records every datagram
 * sent and every command submitted, numbers commands, and can play a full or crowded tx ring.
 * Include after <criterion/criterion.h>.
 */
#ifndef RLY_TEST_CONTROL_FAKE_DP_H
#define RLY_TEST_CONTROL_FAKE_DP_H

#include <errno.h>
#include <stdio.h>

#include "control/subscriptions.h"
#include "security/identity.h"
#include "security/registry.h"

#define TC_MAXREC 512

struct tc_fake_dp {
	struct rly_pkt_rec sent[TC_MAXREC];
	unsigned n_sent;
	struct rly_cmd cmds[TC_MAXREC];
	unsigned n_cmds;
	uint32_t next_seq;
	int tx_full; /* send refuses with -ENOBUFS, as a full tx ring does */
	int crowded; /* tx_crowded says the ring is half full */
};

static inline int tc_fake_send(void *ctx, struct rly_pkt_rec *rec)
{
	struct tc_fake_dp *d = ctx;

	if (d->tx_full)
		return -ENOBUFS;
	cr_assert_lt(d->n_sent, TC_MAXREC, "the test sent more than the fake records");
	d->sent[d->n_sent++] = *rec;
	return 0;
}

static inline int tc_fake_submit(void *ctx, struct rly_cmd *cmd)
{
	struct tc_fake_dp *d = ctx;

	cmd->seq = d->next_seq++;
	cr_assert_lt(d->n_cmds, TC_MAXREC, "the test submitted more than the fake records");
	d->cmds[d->n_cmds++] = *cmd;
	return 0;
}

static inline int tc_fake_tx_crowded(void *ctx)
{
	return ((struct tc_fake_dp *)ctx)->crowded;
}

/* The io that connects a subscription service to @p d. */
static inline struct rly_ctl_subs_io tc_fake_io(struct tc_fake_dp *d)
{
	return (struct rly_ctl_subs_io){.ctx = d,
					.send = tc_fake_send,
					.submit = tc_fake_submit,
					.tx_crowded = tc_fake_tx_crowded};
}

/*
 * One grant line on @p f: @p owner lets @p grantee (NULL: the public) have @p perms on @p stream
 * from @p issued to @p not_after, signed and formatted as relay-keys writes it.
 */
static inline void tc_write_grant(FILE *f, const char *stream, const struct rly_identity *owner,
				  const struct rly_identity *grantee, uint32_t perms, uint64_t issued,
				  uint64_t not_after)
{
	struct rly_grant g;
	char line[1024];

	memset(&g, 0, sizeof(g));
	snprintf(g.stream, sizeof(g.stream), "%s", stream);
	if (grantee)
		memcpy(g.grantee, grantee->pk, RLY_ID_LEN);
	g.perms = perms;
	g.issued = issued;
	g.not_after = not_after;
	cr_assert_eq(rly_grant_sign(&g, owner), 0);
	cr_assert_gt(rly_grant_format(&g, line, sizeof(line)), 0);
	fprintf(f, "%s\n", line);
}

/* Everything logged to @p f so far, as one string (static buffer; f stays at its end). */
static inline const char *tc_log_text(FILE *f)
{
	static char buf[1 << 18];
	size_t n;

	fflush(f);
	rewind(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fseek(f, 0, SEEK_END);
	return buf;
}

#endif
