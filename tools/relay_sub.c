/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-sub: subscribe to a stream through a relay and report what arrived: counts, gaps,
 * latency percentiles, messages dropped for a missing or bad publisher signature (checked on
 * every message unless --no-verify), and (with --verify) whether every payload is the one
 * relay-pub sent.
 *
 * Encrypted streams (relay-pub --encrypt) need --identity: the library asks the publisher's key
 * holder for the key and hands over plaintext; messages it cannot decrypt are counted as
 * undecryptable, apart from gaps and corrupt payloads.
 *
 * Latency is the subscriber's receive stamp minus the publisher's stamp, both CLOCK_REALTIME:
 * exact on one machine, and as good as the clock sync between two.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/histogram.h"
#include "relay/client.h"
#include "security/identity.h"
#include "tools/args.h"
#include "tools/payload.h"

#define PROG "relay-sub"
/* Chains whose first and last sequence the summary lists one by one. */
#define SHOWN_CHAINS 8u
#define POLL_MS	     100

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: relay-sub --relay ADDR[:PORT] (--stream NAME | --stream-key HEX) [options]\n"
	    "Subscribe to a stream through a relay and report what arrives.\n"
	    "\n"
	    "  --relay ADDR[:PORT]    relay address, IPv4 (port default %u) (required)\n"
	    "  --stream NAME          stream name; the key is the BLAKE2b-128 of the name\n"
	    "  --stream-key HEX       stream key as 32 hex digits, instead of --stream\n"
	    "  --partition N          stream partition (default 0)\n"
	    "  --lease-ms MS          lease to ask for; heartbeats renew it (default 10000)\n"
	    "  --bind ADDR[:PORT]     local address to receive on (default: any, ephemeral)\n"
	    "  --identity FILE        subscribe as this identity: answer the relay's challenge\n"
	    "                         with a SUBSCRIBE_SIGNED (needed where the stream's\n"
	    "                         registry does not let the public subscribe); default:\n"
	    "                         anonymous. Also what encrypted streams need: the\n"
	    "                         publisher gives its key to identities its registry lets\n"
	    "                         subscribe (anonymous subscribers count every encrypted\n"
	    "                         message as undecryptable)\n"
	    "  --no-repair            deliver messages as they arrive and report a gap as soon\n"
	    "                         as it is seen; by default lost messages are asked for\n"
	    "                         again (NAK) and every chain is delivered in order\n"
	    "  --repair-timeout-ms MS how long a gap is asked for before it counts as lost\n"
	    "                         (default 1000)\n"
	    "  --no-verify            accept messages without checking their publisher\n"
	    "                         signatures (by default each one is verified, about 48 us\n"
	    "                         of CPU, so about 21000 msg/s per core, and a missing or\n"
	    "                         bad one is dropped and counted as bad_sig)\n"
	    "  --subscribe-timeout S  give up subscribing after S seconds (default 5)\n"
	    "  --count N              exit after N messages\n"
	    "  --duration S           exit after S seconds (fractions allowed)\n"
	    "  --idle-timeout S       exit when nothing arrived for S seconds, counted from\n"
	    "                         the first message on\n"
	    "  --print                one line per message: publisher key prefix, chain, seq,\n"
	    "                         payload bytes and latency in us; one line per gap and\n"
	    "                         per message dropped for its signature\n"
	    "  --verify               check that each payload is relay-pub's pattern for its\n"
	    "                         sequence number; count the failures (a payload check,\n"
	    "                         apart from the signature check --no-verify turns off)\n"
	    "  --canary TEXT          with --verify, also expect relay-pub --canary TEXT right\n"
	    "                         after the sequence number\n"
	    "  --ready-file PATH      create PATH once subscribed (so scripts can start\n"
	    "                         publishers then)\n"
	    "  --unsubscribe-at-exit  send UNSUBSCRIBE at exit (the default)\n"
	    "  --no-unsubscribe       exit without it (the lease then runs out on its own)\n"
	    "  --json                 end with one JSON summary line on stdout; its\n"
	    "                         first_msg_ms is the time from the first SUB_ACK to the\n"
	    "                         first data message, in ms (null if none arrived; below\n"
	    "                         0 if data overtook the ACK); out_of_order counts\n"
	    "                         messages delivered at or below their chain's last seq;\n"
	    "                         repair_us are the percentiles of the time from a gap's\n"
	    "                         detection to the arrival of each message that filled it\n"
	    "  --help                 this text\n"
	    "\n"
	    "Without --count, --duration or --idle-timeout it runs until SIGINT/SIGTERM.\n"
	    "The rate is measured from the first message received to the last.\n"
	    "Exit status: 0 done, 1 never subscribed (timed out, refused, or the --identity\n"
	    "file unusable), 2 bad arguments.\n",
	    RLY_WIRE_DEFAULT_PORT);
}

struct opts {
	struct tool_target t;
	const char *ready_file;
	const char *identity;
	int no_verify;
	int no_repair;
	uint32_t repair_timeout_ms;
	uint32_t lease_ms;
	double subscribe_timeout;
	uint64_t count;
	double duration;
	double idle_timeout;
	int print;
	int verify;
	int unsubscribe;
	int json;
	const char *canary;
	size_t canary_len;
};

struct chain_seen {
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	uint64_t first_seq;
	uint64_t last_seq;
};

struct state {
	const struct opts *o;
	struct rly_hist lat;
	struct rly_hist repair;	  /* gap detection to arrival, of each message that filled one */
	uint64_t out_of_order;	  /* delivered at or below its chain's last delivered seq */
	uint64_t lost_by_reason[32];
	uint64_t msgs;
	uint64_t verify_failures;
	/* Undecryptable messages later in their chain than one this subscriber already read: a
	 * key it lost (or, after a revocation, was refused), not the start-up wait for its first. */
	uint64_t undecryptable_late;
	uint64_t clock_skew; /* messages stamped after we received them */
	uint64_t first_ns;   /* CLOCK_MONOTONIC of the first and last message */
	uint64_t last_ns;
	uint64_t ack_ns; /* CLOCK_MONOTONIC when the first SUB_ACK was handled */
	struct chain_seen shown[SHOWN_CHAINS];
	unsigned n_shown;
	int ever_subscribed;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		O_LEASE = 256,
		O_SUBTO,
		O_COUNT,
		O_DURATION,
		O_IDLE,
		O_PRINT,
		O_VERIFY,
		O_READY,
		O_UNSUB,
		O_NO_UNSUB,
		O_JSON,
		O_IDENTITY,
		O_NO_VERIFY,
		O_CANARY,
		O_NO_REPAIR,
		O_REPAIR_TIMEOUT,
		O_HELP
	};
	static const struct option lo[] = {
	    TOOL_TARGET_LONG_OPTIONS,
	    {"lease-ms", required_argument, NULL, O_LEASE},
	    {"subscribe-timeout", required_argument, NULL, O_SUBTO},
	    {"count", required_argument, NULL, O_COUNT},
	    {"duration", required_argument, NULL, O_DURATION},
	    {"idle-timeout", required_argument, NULL, O_IDLE},
	    {"print", no_argument, NULL, O_PRINT},
	    {"verify", no_argument, NULL, O_VERIFY},
	    {"ready-file", required_argument, NULL, O_READY},
	    {"unsubscribe-at-exit", no_argument, NULL, O_UNSUB},
	    {"no-unsubscribe", no_argument, NULL, O_NO_UNSUB},
	    {"json", no_argument, NULL, O_JSON},
	    {"identity", required_argument, NULL, O_IDENTITY},
	    {"no-verify", no_argument, NULL, O_NO_VERIFY},
	    {"canary", required_argument, NULL, O_CANARY},
	    {"no-repair", no_argument, NULL, O_NO_REPAIR},
	    {"repair-timeout-ms", required_argument, NULL, O_REPAIR_TIMEOUT},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->unsubscribe = 1;
	o->subscribe_timeout = 5;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		int shared = tool_target_option(PROG, &o->t, c, optarg);

		if (shared < 0)
			return 2;
		if (shared > 0)
			continue;
		switch (c) {
		case O_LEASE:
			if (tool_parse_u64(PROG, "--lease-ms", optarg, 100, UINT32_MAX, &v) < 0)
				return 2;
			o->lease_ms = (uint32_t)v;
			break;
		case O_SUBTO:
			if (tool_parse_double(PROG, "--subscribe-timeout", optarg, 0.001, 86400,
					      &o->subscribe_timeout) < 0)
				return 2;
			break;
		case O_COUNT:
			if (tool_parse_u64(PROG, "--count", optarg, 1, UINT64_MAX, &o->count) < 0)
				return 2;
			break;
		case O_DURATION:
			if (tool_parse_double(PROG, "--duration", optarg, 0.001, 1e7,
					      &o->duration) < 0)
				return 2;
			break;
		case O_IDLE:
			if (tool_parse_double(PROG, "--idle-timeout", optarg, 0.001, 1e7,
					      &o->idle_timeout) < 0)
				return 2;
			break;
		case O_PRINT:
			o->print = 1;
			break;
		case O_VERIFY:
			o->verify = 1;
			break;
		case O_READY:
			o->ready_file = optarg;
			break;
		case O_UNSUB:
			o->unsubscribe = 1;
			break;
		case O_NO_UNSUB:
			o->unsubscribe = 0;
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_IDENTITY:
			o->identity = optarg;
			break;
		case O_NO_VERIFY:
			o->no_verify = 1;
			break;
		case O_CANARY:
			if (tool_parse_canary(PROG, optarg, &o->canary, &o->canary_len) < 0)
				return 2;
			break;
		case O_NO_REPAIR:
			o->no_repair = 1;
			break;
		case O_REPAIR_TIMEOUT:
			if (tool_parse_u64(PROG, "--repair-timeout-ms", optarg, 1, 3600000, &v) < 0)
				return 2;
			o->repair_timeout_ms = (uint32_t)v;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			return tool_getopt_error(PROG, c, argv);
		}
	}
	if (optind < argc)
		return tool_bad_arg(PROG, "unexpected argument '%s' (options start with --)",
				    argv[optind]);
	if (tool_target_check(PROG, &o->t) != 0)
		return 2;
	if (o->canary && !o->verify)
		return tool_bad_arg(PROG, "--canary is checked by --verify: add --verify");
	return 0;
}

static void track_chain(struct state *st, const struct rly_msg *m)
{
	for (unsigned i = 0; i < st->n_shown; i++) {
		struct chain_seen *c = &st->shown[i];
		if (c->chain == m->chain && memcmp(c->publisher, m->publisher, RLY_ID_LEN) == 0) {
			/* Without repair, a repaired message arrives after later ones: it moves
			 * neither end back, and counts as out of order. */
			if (m->seq > c->last_seq)
				c->last_seq = m->seq;
			else
				st->out_of_order++;
			if (m->seq < c->first_seq)
				c->first_seq = m->seq;
			return;
		}
	}
	if (st->n_shown < SHOWN_CHAINS) {
		struct chain_seen *c = &st->shown[st->n_shown++];
		memcpy(c->publisher, m->publisher, RLY_ID_LEN);
		c->chain = m->chain;
		c->first_seq = c->last_seq = m->seq;
	}
}

/* The first 8 bytes of a publisher key in hex: enough to tell publishers apart by eye. */
static const char *pk_prefix(const uint8_t *pk, char out[17])
{
	char full[2 * RLY_ID_LEN + 1];

	rly_pk_format(pk, full);
	memcpy(out, full, 16);
	out[16] = '\0';
	return out;
}

static void on_message(void *ctx, const struct rly_msg *m)
{
	struct state *st = ctx;
	uint64_t lat = 0;

	if (m->recv_ns >= m->timestamp_ns)
		lat = m->recv_ns - m->timestamp_ns;
	else
		st->clock_skew++;
	rly_hist_record(&st->lat, lat);
	if (m->repair_ns)
		rly_hist_record(&st->repair, m->repair_ns);
	st->last_ns = rly_mono_ns();
	if (st->msgs++ == 0)
		st->first_ns = st->last_ns;
	track_chain(st, m);
	if (st->o->verify && !tool_payload_ok_canary(m->payload, m->payload_len, m->seq,
						     st->o->canary, st->o->canary_len)) {
		st->verify_failures++;
		if (st->o->print)
			printf("verify-failed chain=%08x seq=%" PRIu64 " bytes=%u\n", m->chain,
			       m->seq, m->payload_len);
	}
	if (st->o->print) {
		char pk[17];
		printf("msg pub=%s chain=%08x seq=%" PRIu64 " bytes=%u lat_us=%.1f\n",
		       pk_prefix(m->publisher, pk), m->chain, m->seq, m->payload_len,
		       (double)lat / 1e3);
	}
}

static void on_bad_message(void *ctx, const struct rly_msg *m, int reason)
{
	struct state *st = ctx;
	char pk[17];

	/* The publisher is whoever the message claims: say "claims" so nobody reads it as fact. */
	if (reason == RLY_BAD_NO_KEY || reason == RLY_BAD_DECRYPT) {
		for (unsigned i = 0; i < st->n_shown; i++)
			if (st->shown[i].chain == m->chain &&
			    memcmp(st->shown[i].publisher, m->publisher, RLY_ID_LEN) == 0 &&
			    m->seq > st->shown[i].first_seq)
				st->undecryptable_late++;
	}
	if (!st->o->print)
		return;
	if (reason == RLY_BAD_NO_KEY || reason == RLY_BAD_DECRYPT)
		/* Signed by its publisher, so its header can be trusted; only its payload is
		 * unreadable here. */
		printf("undecryptable pub=%s chain=%08x seq=%" PRIu64 " key=%u.%u reason=%s\n",
		       pk_prefix(m->publisher, pk), m->chain, m->seq,
		       (unsigned)RLY_KEY_ID_GEN(m->key_id), (unsigned)RLY_KEY_ID_STEP(m->key_id),
		       reason == RLY_BAD_NO_KEY ? "no-key" : "decrypt-failed");
	else
		printf("bad-sig claims-pub=%s chain=%08x seq=%" PRIu64 " bytes=%u reason=%s\n",
		       pk_prefix(m->publisher, pk), m->chain, m->seq, m->payload_len,
		       reason == RLY_BAD_UNSIGNED ? "unsigned" : "bad-signature");
}

static void on_gap(void *ctx, const struct rly_gap *g)
{
	struct state *st = ctx;

	if (g->reason >= 0 && g->reason < 32)
		st->lost_by_reason[g->reason] += g->to_seq - g->from_seq + 1;
	if (st->o->print)
		printf("gap chain=%08x from=%" PRIu64 " to=%" PRIu64 " missing=%" PRIu64
		       " reason=%s waited_ms=%.1f\n",
		       g->chain, g->from_seq, g->to_seq, g->to_seq - g->from_seq + 1,
		       rly_sub_gap_reason_name(g->reason), (double)g->waited_ns / 1e6);
}

static void on_event(void *ctx, enum rly_sub_event ev, unsigned status)
{
	struct state *st = ctx;
	static const char *const names[] = {
	    [RLY_SUB_EV_SUBSCRIBED] = "subscribed",
	    [RLY_SUB_EV_REFUSED] = "refused",
	    [RLY_SUB_EV_LOST] = "lost the subscription",
	    [RLY_SUB_EV_UNSUBSCRIBED] = "unsubscribed",
	};

	if (ev == RLY_SUB_EV_SUBSCRIBED) {
		/* The first one is reported by main; later ones are re-subscriptions. */
		if (st->ever_subscribed)
			fprintf(stderr, "relay-sub: re-subscribed\n");
		else
			st->ack_ns = rly_mono_ns();
		st->ever_subscribed = 1;
		return;
	}
	fprintf(stderr, "relay-sub: %s (%s: %s)\n", names[ev], rly_sub_status_name(status),
		rly_sub_status_str(status));
}

static int write_ready_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, "relay-sub: --ready-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (write(fd, "subscribed\n", 11) != 11) {
		fprintf(stderr, "relay-sub: --ready-file %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static void summary(const struct state *st, const struct rly_sub_stats *ss, int json)
{
	double secs = (double)(st->last_ns - st->first_ns) / 1e9;
	double rate = st->msgs > 1 && secs > 0 ? (double)(st->msgs - 1) / secs : 0;
	const struct rly_hist *h = &st->lat;
	double p50 = (double)rly_hist_percentile(h, 50) / 1e3,
	       p90 = (double)rly_hist_percentile(h, 90) / 1e3,
	       p99 = (double)rly_hist_percentile(h, 99) / 1e3,
	       p999 = (double)rly_hist_percentile(h, 99.9) / 1e3, max = (double)h->max / 1e3;
	char first_msg[32] = "null";

	/* Signed: a message handled before the ACK (it overtook it) gives a negative time. */
	if (st->msgs && st->ever_subscribed)
		snprintf(first_msg, sizeof(first_msg), "%.3f",
			 ((double)st->first_ns - (double)st->ack_ns) / 1e6);

	printf("relay-sub: %" PRIu64 " messages, %.0f msg/s; gaps %" PRIu64 " (missing %" PRIu64
	       ", repaired %" PRIu64 "), stale %" PRIu64 ", malformed %" PRIu64 ", foreign %" PRIu64 ", bad_sig %" PRIu64
	       "%s, chains %" PRIu64 ", resubscribes %" PRIu64 ", verify failures %" PRIu64 "\n",
	       st->msgs, rate, ss->gaps, ss->missing, ss->repaired, ss->stale, ss->malformed,
	       ss->foreign, ss->bad_sig, st->o->no_verify ? " (signatures not checked)" : "", ss->chains,
	       ss->resubscribes, st->verify_failures);
	if (ss->undecryptable || ss->key_requests || ss->keys_received)
		printf("  encrypted: %" PRIu64 " undecryptable (%" PRIu64 " after the first message "
		       "read in their chain), %" PRIu64 " key requests sent, %" PRIu64
		       " keys received\n",
		       ss->undecryptable, st->undecryptable_late, ss->key_requests,
		       ss->keys_received);
	if (ss->chains <= SHOWN_CHAINS)
		for (unsigned i = 0; i < st->n_shown; i++)
			printf("  chain %08x: seq %" PRIu64 "..%" PRIu64 "\n", st->shown[i].chain,
			       st->shown[i].first_seq, st->shown[i].last_seq);
	for (unsigned e = 1; e < RLY_WIRE_ERR_MAX; e++)
		if (ss->wire_err[e])
			printf("  malformed %s: %" PRIu64 " (%s)\n", rly_wire_err_name(e),
			       ss->wire_err[e], rly_wire_err_str(e));
	if (h->count)
		printf("  latency us: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n", p50, p90,
		       p99, p999, max);
	if (!st->o->no_repair && (ss->gaps || ss->naks || ss->gap_notices))
		printf("  repair: %" PRIu64 " NAKs, %" PRIu64 " GAP notices, %" PRIu64
		       " repaired, %" PRIu64 " lost, %" PRIu64 " delivered after waiting (at most %"
		       PRIu64 " held), out of order %" PRIu64 "\n",
		       ss->naks, ss->gap_notices, ss->repaired, ss->lost, ss->reordered,
		       ss->held_max, st->out_of_order);
	if (st->repair.count)
		printf("  repair us (gap seen to message back): p50 %.1f p90 %.1f p99 %.1f max %.1f\n",
		       (double)rly_hist_percentile(&st->repair, 50) / 1e3,
		       (double)rly_hist_percentile(&st->repair, 90) / 1e3,
		       (double)rly_hist_percentile(&st->repair, 99) / 1e3,
		       (double)st->repair.max / 1e3);
	for (int r = 0; r < 32; r++)
		if (st->lost_by_reason[r])
			printf("  lost %s: %" PRIu64 " (%s)\n", rly_sub_gap_reason_name(r),
			       st->lost_by_reason[r], rly_sub_gap_reason_str(r));
	if (st->clock_skew)
		printf("  %" PRIu64 " messages were stamped after they arrived (clocks disagree); "
		       "their latency counts as 0\n",
		       st->clock_skew);
	if (json)
		printf(
		    "{\"msgs\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"missing\":%" PRIu64
		    ",\"repaired\":%" PRIu64 ",\"stale\":%" PRIu64 ",\"malformed\":%" PRIu64 ",\"foreign\":%" PRIu64
		    ",\"bad_sig\":%" PRIu64 ",\"sig_checked\":%s"
		    ",\"chains\":%" PRIu64 ",\"resubscribes\":%" PRIu64
		    ",\"verify_failures\":%" PRIu64 ",\"undecryptable\":%" PRIu64
		    ",\"undecryptable_late\":%" PRIu64 ",\"key_requests\":%" PRIu64 ",\"keys_received\":%" PRIu64
		    ",\"rate_msgs_s\":%.1f,\"lat_us\":{\"p50\":%.1f"
		    ",\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},\"first_msg_ms\":%s,\"subscribed\":%s"
		    ",\"repair\":%s,\"lost\":%" PRIu64 ",\"naks\":%" PRIu64 ",\"gap_notices\":%" PRIu64
		    ",\"reordered\":%" PRIu64 ",\"held_max\":%" PRIu64 ",\"out_of_order\":%" PRIu64
		    ",\"repair_us\":{\"n\":%" PRIu64 ",\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
		    st->msgs, ss->gaps, ss->missing, ss->repaired, ss->stale, ss->malformed,
		    ss->foreign, ss->bad_sig, st->o->no_verify ? "false" : "true", ss->chains,
		    ss->resubscribes, st->verify_failures, ss->undecryptable, st->undecryptable_late, ss->key_requests,
		    ss->keys_received, rate, p50, p90, p99, p999,
		    max, first_msg, st->ever_subscribed ? "true" : "false",
		    st->o->no_repair ? "false" : "true", ss->lost, ss->naks, ss->gap_notices,
		    ss->reordered, ss->held_max, st->out_of_order, st->repair.count,
		    (double)rly_hist_percentile(&st->repair, 50) / 1e3,
		    (double)rly_hist_percentile(&st->repair, 90) / 1e3,
		    (double)rly_hist_percentile(&st->repair, 99) / 1e3,
		    (double)st->repair.max / 1e3);
	if (json) {
		const char *sep = "";
		printf(",\"lost_reasons\":{");
		for (int r = 0; r < 32; r++)
			if (st->lost_by_reason[r]) {
				printf("%s\"%s\":%" PRIu64, sep, rly_sub_gap_reason_name(r),
				       st->lost_by_reason[r]);
				sep = ",";
			}
		printf("}}\n");
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct rly_sub_opts so;
	struct rly_sub_stats ss;
	struct rly_identity id;
	struct state st;
	struct opts o;
	rly_sub_t *s;
	uint64_t start, end_at;
	int rc, status = 0;

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	memset(&st, 0, sizeof(st));
	st.o = &o;
	rly_hist_init(&st.lat);
	rly_hist_init(&st.repair);

	memset(&so, 0, sizeof(so));
	so.relay = o.t.relay;
	so.bind = o.t.bind;
	memcpy(so.stream_key, o.t.key, sizeof(o.t.key));
	so.partition = o.t.partition;
	so.lease_ms = o.lease_ms;
	so.auto_resubscribe = 1;
	so.cb.on_message = on_message;
	so.cb.on_gap = on_gap;
	so.cb.on_event = on_event;
	so.cb.on_bad_message = on_bad_message;
	so.cb.ctx = &st;
	so.no_verify = o.no_verify;
	so.no_repair = o.no_repair;
	so.repair_timeout_ms = o.repair_timeout_ms;
	if (o.identity) {
		if (rly_identity_load(&id, o.identity) < 0) {
			fprintf(stderr, "relay-sub: --identity: %s\n", rly_client_errmsg());
			return 1;
		}
		so.identity = &id;
	}
	rc = rly_sub_create(&s, &so);
	/* The subscriber keeps its own copy; ours has done its job. */
	explicit_bzero(&id, sizeof(id));
	if (rc < 0) {
		fprintf(stderr, "relay-sub: %s\n", rly_client_errmsg());
		return 1;
	}
	tool_on_signals(on_signal);

	start = rly_mono_ns();
	if (rly_sub_subscribe(s, (int)(o.subscribe_timeout * 1000)) < 0) {
		fprintf(stderr, "relay-sub: %s\n", rly_client_errmsg());
		status = 1;
		goto out;
	}
	fprintf(stderr, "relay-sub: subscribed\n");
	if (o.ready_file && write_ready_file(o.ready_file) < 0) {
		status = 1;
		goto out;
	}

	end_at = o.duration > 0 ? start + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
	while (!stop_requested) {
		uint64_t now = rly_mono_ns();
		int wait = POLL_MS;

		if (o.count && st.msgs >= o.count)
			break;
		if (now >= end_at)
			break;
		if (o.idle_timeout > 0 && st.msgs > 0 &&
		    now - st.last_ns >= (uint64_t)(o.idle_timeout * 1e9))
			break;
		if (end_at - now < (uint64_t)wait * 1000000ull)
			wait = (int)((end_at - now) / 1000000ull);
		if (rly_sub_poll(s, wait) < 0 && !stop_requested) {
			fprintf(stderr, "relay-sub: %s\n", rly_client_errmsg());
			break;
		}
	}
	if (o.unsubscribe && rly_sub_is_subscribed(s) && rly_sub_unsubscribe(s, 1000) < 0)
		fprintf(stderr, "relay-sub: %s\n", rly_client_errmsg());
out:
	rly_sub_stats(s, &ss);
	summary(&st, &ss, o.json);
	rly_sub_free(s);
	return status;
}
