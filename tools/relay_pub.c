/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-pub: publish test messages to a relay at a steady rate, for demos and benchmarks.
 *
 * Payloads carry their own sequence number and a pattern derived from it (tools/payload.h), so
 * relay-sub --verify can tell corruption from loss. Every message is signed by the publisher's
 * identity (--identity FILE, or a fresh key per run), so relay-sub also tells forgery from both. Pacing is a token bucket on CLOCK_MONOTONIC
 * that releases small bursts: sleeping once per message would cap the rate at the timer's
 * resolution, and one big burst per second would overflow socket buffers along the way.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "relay/client.h"
#include "security/identity.h"
#include "tools/args.h"
#include "tools/payload.h"

#define PROG "relay-pub"
/* Most messages per datagram --batch accepts; whether they fit is checked against --size. */
#define BATCH_MAX 1024u

/* Largest burst the bucket releases at once, and how much of a second it may hold. */
#define BURST_MAX 256u
#define BURST_NS  1000000ull

static volatile sig_atomic_t stop_requested;
static unsigned warned_refused;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: relay-pub --relay ADDR[:PORT] (--stream NAME | --stream-key HEX) [options]\n"
	    "Publish test messages to a relay over UDP.\n"
	    "\n"
	    "  --relay ADDR[:PORT]  relay address, IPv4 (port default %u) (required)\n"
	    "  --stream NAME        stream name; the key is the BLAKE2b-128 of the name\n"
	    "  --stream-key HEX     stream key as 32 hex digits, instead of --stream\n"
	    "  --partition N        stream partition (default 0)\n"
	    "  --rate MSGS_PER_S    messages per second; 0 = as fast as possible (default)\n"
	    "  --size BYTES         payload bytes, %u-%zu (default 32): the sequence number\n"
	    "                       (u64, little-endian), then a pattern relay-sub --verify\n"
	    "                       checks\n"
	    "  --count N            stop after N messages\n"
	    "  --duration SECONDS   stop after this long (fractions allowed); without\n"
	    "                       --count or --duration, run until SIGINT/SIGTERM\n"
	    "  --batch N            messages per datagram, 1-%u (default 1)\n"
	    "  --bind ADDR[:PORT]   local address to send from\n"
	    "  --identity FILE      sign every message as this identity (an Ed25519 identity\n"
	    "                       file of mode 0600, format in security/identity.h);\n"
	    "                       default: a fresh key pair for this run\n"
	    "  --json               end with one JSON summary line on stdout (it names the\n"
	    "                       publisher's public key)\n"
	    "  --quiet              no progress lines and no text summary\n"
	    "  --help               this text\n"
	    "\n"
	    "Exit status: 0 done, 1 error (socket or send failure), 2 bad arguments.\n",
	    RLY_WIRE_DEFAULT_PORT, TOOL_PAYLOAD_MIN,
	    (size_t)RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, RLY_WIRE_SIG_LEN), BATCH_MAX);
}

struct opts {
	struct tool_target t;
	const char *identity;
	double rate;
	uint32_t size;
	uint64_t count;
	double duration;
	uint32_t batch;
	int json;
	int quiet;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum {
		O_RATE = 256,
		O_SIZE,
		O_COUNT,
		O_DURATION,
		O_BATCH,
		O_JSON,
		O_QUIET,
		O_IDENTITY,
		O_HELP
	};
	static const struct option lo[] = {
	    TOOL_TARGET_LONG_OPTIONS,
	    {"rate", required_argument, NULL, O_RATE},
	    {"size", required_argument, NULL, O_SIZE},
	    {"count", required_argument, NULL, O_COUNT},
	    {"duration", required_argument, NULL, O_DURATION},
	    {"batch", required_argument, NULL, O_BATCH},
	    {"json", no_argument, NULL, O_JSON},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"identity", required_argument, NULL, O_IDENTITY},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->size = 32;
	o->batch = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		int shared = tool_target_option(PROG, &o->t, c, optarg);

		if (shared < 0)
			return 2;
		if (shared > 0)
			continue;
		switch (c) {
		case O_RATE:
			if (tool_parse_double(PROG, "--rate", optarg, 0, 1e9, &o->rate) < 0)
				return 2;
			break;
		case O_SIZE:
			if (tool_parse_u64(PROG, "--size", optarg, TOOL_PAYLOAD_MIN,
					   RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, RLY_WIRE_SIG_LEN),
					   &v) < 0)
				return 2;
			o->size = (uint32_t)v;
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
		case O_BATCH:
			if (tool_parse_u64(PROG, "--batch", optarg, 1, BATCH_MAX, &v) < 0)
				return 2;
			o->batch = (uint32_t)v;
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_QUIET:
			o->quiet = 1;
			break;
		case O_IDENTITY:
			o->identity = optarg;
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
	return 0;
}

/*
 * The datagram size follows from --size and --batch: the whole batch, signatures included, must
 * fit one datagram, and a datagram must fit a 1500-byte MTU unless the messages are too big for
 * that.
 */
static uint32_t dgram_size(const struct opts *o, int *err)
{
	size_t per = sizeof(struct rly_wire_msg_hdr) + o->size + RLY_WIRE_SIG_LEN;
	size_t need = sizeof(struct rly_wire_dgram_hdr) + per * o->batch;
	size_t mtu = RLY_WIRE_DGRAM_FOR_MTU(1500u);

	*err = 0;
	if (need <= mtu)
		return (uint32_t)mtu;
	if (need <= RLY_WIRE_MAX_DGRAM)
		return (uint32_t)need;
	*err = 1;
	return 0;
}

/* Offer one message, waiting out back-pressure. 0, or -errno (message printed). */
static int offer(rly_pub_t *p, const void *buf, size_t len)
{
	for (;;) {
		int rc = rly_pub_offer(p, buf, len);
		if (rc >= 0)
			return 0; /* queued; RLY_BACK_PRESSURED is counted in the stats */
		if (rc == -ECONNREFUSED) {
			/* Queued; the relay's port answered ICMP unreachable. Say it once. */
			if (!warned_refused++)
				fprintf(stderr, "relay-pub: %s\n", rly_client_errmsg());
			return 0;
		}
		if (rc != -EAGAIN) {
			fprintf(stderr, "relay-pub: %s\n", rly_client_errmsg());
			return rc;
		}
		/* The queue is full: give the socket a moment to drain, then flush. */
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
		rc = rly_pub_flush(p);
		if (rc < 0 && rc != -ECONNREFUSED) {
			fprintf(stderr, "relay-pub: %s\n", rly_client_errmsg());
			return rc;
		}
		if (stop_requested)
			return -EINTR;
	}
}

/* Flush everything, waiting out back-pressure for up to a second. */
static int flush_all(rly_pub_t *p)
{
	uint64_t give_up = rly_mono_ns() + 1000000000ull;
	int rc;

	while ((rc = rly_pub_flush(p)) != 0) {
		if (rc == -ECONNREFUSED && !warned_refused++)
			fprintf(stderr, "relay-pub: %s\n", rly_client_errmsg());
		if (rc < 0 && rc != -ECONNREFUSED) {
			fprintf(stderr, "relay-pub: %s\n", rly_client_errmsg());
			return rc;
		}
		if (rly_mono_ns() > give_up) {
			fprintf(stderr,
				"relay-pub: socket still full after 1 s: some messages were "
				"not sent\n");
			return -EAGAIN;
		}
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void sleep_until(uint64_t t_ns)
{
	struct timespec ts = {(time_t)(t_ns / 1000000000ull), (long)(t_ns % 1000000000ull)};

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
	       !stop_requested)
		;
}

static void summary(const struct opts *o, rly_pub_t *p, double secs, int json)
{
	struct rly_pub_stats st;
	char key[2 * RLY_STREAM_KEY_LEN + 1], pk[2 * RLY_ID_LEN + 1];
	double rate;

	rly_pub_stats(p, &st);
	rate = secs > 0 ? (double)st.msgs / secs : 0;
	rly_stream_key_format(o->t.key, key);
	rly_pk_format(rly_pub_publisher(p), pk);
	if (!o->quiet)
		printf("relay-pub: %" PRIu64 " messages in %" PRIu64 " datagrams (%" PRIu64
		       " bytes) in %.3f s = %.0f msg/s; stream %s/%u publisher %.16s chain %08x "
		       "last seq %" PRIu64 "; back-pressured %" PRIu64 " times, %" PRIu64
		       " send errors\n",
		       st.msgs, st.dgrams, st.bytes, secs, rate, key, o->t.partition, pk, st.chain,
		       st.last_seq, st.back_pressured, st.send_errors);
	if (json)
		printf(
		    "{\"msgs\":%" PRIu64 ",\"dgrams\":%" PRIu64 ",\"bytes\":%" PRIu64
		    ",\"seconds\":%.6f,\"rate_msgs_s\":%.1f,\"stream_key\":\"%s\",\"partition\":%u"
		    ",\"publisher\":\"%s\",\"chain\":%u,\"last_seq\":%" PRIu64
		    ",\"back_pressured\":%" PRIu64 ",\"send_errors\":%" PRIu64 "}\n",
		    st.msgs, st.dgrams, st.bytes, secs, rate, key, o->t.partition, pk, st.chain,
		    st.last_seq, st.back_pressured, st.send_errors);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct rly_pub_opts po;
	struct rly_identity id;
	struct opts o;
	rly_pub_t *p;
	uint8_t payload[RLY_WIRE_MAX_DGRAM];
	uint64_t start, end_at, next_report, sent = 0, burst;
	double tokens = 0, ns_per_msg;
	uint64_t last_refill;
	int rc, err, status = 0;

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;

	memset(&po, 0, sizeof(po));
	po.relay = o.t.relay;
	po.bind = o.t.bind;
	memcpy(po.stream_key, o.t.key, sizeof(o.t.key));
	po.partition = o.t.partition;
	po.msgs_per_dgram = o.batch;
	po.dgram_max = dgram_size(&o, &err);
	if (err)
		return tool_bad_arg(PROG,
				    "--batch %u signed messages of --size %u do not fit one "
				    "%u-byte datagram: lower --batch or --size",
				    o.batch, o.size, RLY_WIRE_MAX_DGRAM);
	if (o.identity) {
		if (rly_identity_load(&id, o.identity) < 0) {
			fprintf(stderr, "relay-pub: --identity: %s\n", rly_client_errmsg());
			return 1;
		}
		po.identity = &id;
	}
	rc = rly_pub_create(&p, &po);
	/* The publisher keeps its own copy; ours has done its job. */
	explicit_bzero(&id, sizeof(id));
	if (rc < 0) {
		fprintf(stderr, "relay-pub: %s\n", rly_client_errmsg());
		return 1;
	}
	tool_on_signals(on_signal);

	/* Burst size: what the rate releases in BURST_NS, at least one message. */
	ns_per_msg = o.rate > 0 ? 1e9 / o.rate : 0;
	burst = o.rate > 0 ? (uint64_t)(o.rate * (double)BURST_NS / 1e9) : BURST_MAX;
	if (burst < 1)
		burst = 1;
	if (burst > BURST_MAX)
		burst = BURST_MAX;

	start = last_refill = rly_mono_ns();
	end_at = o.duration > 0 ? start + (uint64_t)(o.duration * 1e9) : UINT64_MAX;
	next_report = start + 1000000000ull;
	tokens = (double)burst;
	while (!stop_requested && (o.count == 0 || sent < o.count)) {
		uint64_t now = rly_mono_ns(), n;

		if (now >= end_at)
			break;
		if (o.rate > 0) {
			tokens += (double)(now - last_refill) / ns_per_msg;
			last_refill = now;
			/* Room for two bursts, so oversleeping by less than a burst's time
			 * costs no rate, while a long stall still cannot release a flood. */
			if (tokens > (double)(2 * burst))
				tokens = (double)(2 * burst);
			if (tokens < 1) {
				/* Sleep until one burst's worth is due, flushing what is queued so
				 * nothing waits in our buffers while we sleep. */
				uint64_t wake =
				    now + (uint64_t)(((double)burst - tokens) * ns_per_msg);
				if (flush_all(p) < 0) {
					status = 1;
					break;
				}
				sleep_until(wake < end_at ? wake : end_at);
				continue;
			}
			n = (uint64_t)tokens;
		} else {
			n = burst;
		}
		if (o.count && n > o.count - sent)
			n = o.count - sent;
		for (uint64_t i = 0; i < n; i++) {
			struct rly_pub_stats st;
			rly_pub_stats(p, &st);
			tool_payload_fill(payload, o.size, st.last_seq + 1);
			if (offer(p, payload, o.size) < 0) {
				status = stop_requested ? 0 : 1;
				goto done;
			}
		}
		sent += n;
		tokens -= (double)n;
		if (!o.quiet && !o.json && now >= next_report) {
			struct rly_pub_stats st;
			rly_pub_stats(p, &st);
			fprintf(stderr,
				"relay-pub: %" PRIu64 " messages sent, last seq %" PRIu64 "\n",
				st.msgs, st.last_seq);
			next_report += 1000000000ull;
		}
	}
done:
	if (flush_all(p) < 0)
		status = 1;
	summary(&o, p, (double)(rly_mono_ns() - start) / 1e9, o.json);
	rly_pub_free(p);
	return status;
}
