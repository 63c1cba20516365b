/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-pub: publish test messages to a relay at a steady rate, for demos and benchmarks.
 *
 * Payloads carry their own sequence number and a pattern derived from it (tools/payload.h), so
 * relay-sub --verify can tell corruption from loss. Every message is signed by the publisher's
 * identity (--identity FILE, or a fresh key per run), so relay-sub also tells forgery from both.
 * Pacing is a token bucket on CLOCK_MONOTONIC that releases small bursts: sleeping once per
 * message would cap the rate at the timer's resolution, and one big burst per second would
 * overflow socket buffers along the way.
 *
 * With --encrypt the stream is end-to-end encrypted (docs/encryption.md): the library registers
 * this process as the stream's key holder and answers subscribers' key requests as the registry
 * allows. Between bursts the tool waits in rly_pub_poll rather than sleeping, so key requests are
 * answered while it paces; SIGUSR1 rekeys and SIGUSR2 rotates, for tests and operators.
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

/* How long --encrypt keeps answering key requests after the last message, by default. */
#define LINGER_DEFAULT_S 1.0

static volatile sig_atomic_t stop_requested, rekey_requested, rotate_requested;
static unsigned warned_refused;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void on_key_signal(int sig)
{
	if (sig == SIGUSR1)
		rekey_requested = 1;
	else
		rotate_requested = 1;
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
	    "  --canary TEXT        put TEXT in every payload right after the sequence\n"
	    "                       number (relay-sub --verify --canary TEXT expects it), so\n"
	    "                       tests can search captures and memory for the plaintext;\n"
	    "                       --size defaults to what it needs\n"
	    "  --json               end with one JSON summary line on stdout (it names the\n"
	    "                       publisher's public key)\n"
	    "\n"
	    "End-to-end encryption (docs/encryption.md):\n"
	    "  --encrypt            encrypt every payload under a group key (XChaCha20-\n"
	    "                       Poly1305; %u bytes more per message), then sign it, and\n"
	    "                       act as the stream's key holder: register with the relay\n"
	    "                       (needs the PUBLISH permission where the relay has a\n"
	    "                       registry) and answer key requests; needs --registry\n"
	    "  --registry DIR       the stream registry (*.grants) that says who may have the\n"
	    "                       key: subscribers it lets SUBSCRIBE now; reloaded when it\n"
	    "                       changes, and a revocation rekeys at once\n"
	    "  --key-history        give late joiners the steps of the current generation\n"
	    "                       from before they joined (default: they get a new step)\n"
	    "  --rotate-every-ms N  move the key one ratchet step every N ms\n"
	    "  --rekey-every-ms N   start a new key generation every N ms\n"
	    "  --linger S           after the last message, keep answering key requests for S\n"
	    "                       seconds (default %.0f), for subscribers that asked late\n"
	    "  SIGUSR1 rekeys now, SIGUSR2 rotates now; each key event is one line on stderr.\n"
	    "  --quiet              no progress lines and no text summary\n"
	    "  --help               this text\n"
	    "\n"
	    "Exit status: 0 done, 1 error (socket or send failure), 2 bad arguments.\n",
	    RLY_WIRE_DEFAULT_PORT, TOOL_PAYLOAD_MIN,
	    (size_t)RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, RLY_WIRE_SIG_LEN), BATCH_MAX,
	    RLY_MSG_TAG_LEN, LINGER_DEFAULT_S);
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
	int size_given;
	const char *canary;
	size_t canary_len;
	int encrypt;
	const char *registry;
	int key_history;
	uint64_t rotate_ms;
	uint64_t rekey_ms;
	double linger;
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
		O_CANARY,
		O_ENCRYPT,
		O_REGISTRY,
		O_KEY_HISTORY,
		O_ROTATE,
		O_REKEY,
		O_LINGER,
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
	    {"canary", required_argument, NULL, O_CANARY},
	    {"encrypt", no_argument, NULL, O_ENCRYPT},
	    {"registry", required_argument, NULL, O_REGISTRY},
	    {"key-history", no_argument, NULL, O_KEY_HISTORY},
	    {"rotate-every-ms", required_argument, NULL, O_ROTATE},
	    {"rekey-every-ms", required_argument, NULL, O_REKEY},
	    {"linger", required_argument, NULL, O_LINGER},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	memset(o, 0, sizeof(*o));
	o->size = 32;
	o->batch = 1;
	o->linger = LINGER_DEFAULT_S;
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
			o->size_given = 1;
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
		case O_CANARY:
			if (tool_parse_canary(PROG, optarg, &o->canary, &o->canary_len) < 0)
				return 2;
			break;
		case O_ENCRYPT:
			o->encrypt = 1;
			break;
		case O_REGISTRY:
			o->registry = optarg;
			break;
		case O_KEY_HISTORY:
			o->key_history = 1;
			break;
		case O_ROTATE:
			if (tool_parse_u64(PROG, "--rotate-every-ms", optarg, 1, 86400000, &o->rotate_ms) < 0)
				return 2;
			break;
		case O_REKEY:
			if (tool_parse_u64(PROG, "--rekey-every-ms", optarg, 1, 86400000, &o->rekey_ms) < 0)
				return 2;
			break;
		case O_LINGER:
			if (tool_parse_double(PROG, "--linger", optarg, 0, 3600, &o->linger) < 0)
				return 2;
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
	if (o->canary) {
		uint32_t need = TOOL_PAYLOAD_MIN + (uint32_t)o->canary_len;
		if (!o->size_given && o->size < need)
			o->size = need;
		if (o->size < need)
			return tool_bad_arg(PROG,
					    "--size %u has no room for the %zu-byte --canary after the "
					    "8-byte sequence number: give --size %u or more",
					    o->size, o->canary_len, need);
	}
	if (o->encrypt && !o->registry)
		return tool_bad_arg(PROG, "--encrypt needs --registry DIR: the registry decides "
					  "who may have the stream's key");
	if (!o->encrypt && (o->registry || o->key_history || o->rotate_ms || o->rekey_ms))
		return tool_bad_arg(PROG, "--registry, --key-history, --rotate-every-ms and "
					  "--rekey-every-ms only apply with --encrypt");
	return 0;
}

/*
 * The datagram size follows from --size and --batch: the whole batch, signatures included, must
 * fit one datagram, and a datagram must fit a 1500-byte MTU unless the messages are too big for
 * that.
 */
static uint32_t dgram_size(const struct opts *o, int *err)
{
	size_t per = sizeof(struct rly_wire_msg_hdr) + o->size + RLY_WIRE_SIG_LEN +
		     (o->encrypt ? RLY_MSG_TAG_LEN : 0);
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

/*
 * Wait until @p t_ns. An encrypting publisher waits in rly_pub_poll, so key requests that arrive
 * meanwhile are answered at once rather than at the next burst.
 */
static void sleep_until(rly_pub_t *p, int encrypting, uint64_t t_ns)
{
	struct timespec ts = {(time_t)(t_ns / 1000000000ull), (long)(t_ns % 1000000000ull)};

	if (encrypting) {
		uint64_t now;
		while (!stop_requested && (now = rly_mono_ns()) < t_ns) {
			uint64_t ms = (t_ns - now) / 1000000ull;
			if (ms == 0)
				break; /* under a millisecond: the sleep below */
			if (rly_pub_poll(p, (int)(ms > 1000 ? 1000 : ms)) < 0)
				fprintf(stderr, "relay-pub: %s\n", rly_client_errmsg());
		}
	}
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
	       !stop_requested)
		;
}

/* "1.3": a key id as generation.step. */
static const char *key_str(uint32_t key_id, char out[16])
{
	snprintf(out, 16, "%u.%u", (unsigned)RLY_KEY_ID_GEN(key_id),
		 (unsigned)RLY_KEY_ID_STEP(key_id));
	return out;
}

/* One line per key event on stderr, so logs show who got which key and why keys changed. */
static void on_key_event(void *ctx, enum rly_key_event ev, const uint8_t *who, uint32_t key_id)
{
	char pk[2 * RLY_ID_LEN + 1] = "", k[16];
	const struct opts *o = ctx;

	if (who)
		rly_pk_format(who, pk);
	switch (ev) {
	case RLY_KEY_EV_GRANTED:
		fprintf(stderr, "relay-pub: key %s granted to %.16s\n", key_str(key_id, k), pk);
		break;
	case RLY_KEY_EV_DENIED:
		fprintf(stderr, "relay-pub: key request denied to %.16s: the registry does not let it "
				"subscribe\n",
			pk);
		break;
	case RLY_KEY_EV_ROTATED:
		if (!o->quiet)
			fprintf(stderr, "relay-pub: rotated to key %s\n", key_str(key_id, k));
		break;
	case RLY_KEY_EV_REKEYED:
		if (who)
			fprintf(stderr, "relay-pub: rekeyed to %s: %.16s was granted the old key and "
					"the registry no longer lets it subscribe\n",
				key_str(key_id, k), pk);
		else
			fprintf(stderr, "relay-pub: rekeyed to %s: requested\n", key_str(key_id, k));
		break;
	case RLY_KEY_EV_REGISTERED:
		fprintf(stderr, "relay-pub: key holder registered with the relay (key %s)\n",
			key_str(key_id, k));
		break;
	case RLY_KEY_EV_HOLDER_LOST:
		fprintf(stderr, "relay-pub: key holder registration lost; registering again\n");
		break;
	default:
		fprintf(stderr, "relay-pub: key event %s\n", rly_key_event_name(ev));
	}
}

/* SIGUSR1/SIGUSR2 and the --rotate-every-ms / --rekey-every-ms timers. */
static void key_timers(const struct opts *o, rly_pub_t *p, uint64_t now, uint64_t *next_rotate,
		       uint64_t *next_rekey)
{
	if (rekey_requested || (o->rekey_ms && now >= *next_rekey)) {
		rekey_requested = 0;
		if (rly_pub_rekey(p) < 0)
			fprintf(stderr, "relay-pub: rekey: %s\n", rly_client_errmsg());
		if (o->rekey_ms)
			*next_rekey = now + o->rekey_ms * 1000000ull;
	}
	if (rotate_requested || (o->rotate_ms && now >= *next_rotate)) {
		rotate_requested = 0;
		if (rly_pub_rotate(p) < 0)
			fprintf(stderr, "relay-pub: rotate: %s\n", rly_client_errmsg());
		if (o->rotate_ms)
			*next_rotate = now + o->rotate_ms * 1000000ull;
	}
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
	if (!o->quiet && o->encrypt) {
		char k[16];
		printf("relay-pub: encrypted; key %s, %" PRIu64 " key requests, %" PRIu64
		       " granted, %" PRIu64 " denied, %" PRIu64 " rotations, %" PRIu64 " rekeys\n",
		       key_str(st.key_id, k), st.key_requests, st.keys_granted, st.keys_denied,
		       st.rotations, st.rekeys);
	}
	if (json)
		printf(
		    "{\"msgs\":%" PRIu64 ",\"dgrams\":%" PRIu64 ",\"bytes\":%" PRIu64
		    ",\"seconds\":%.6f,\"rate_msgs_s\":%.1f,\"stream_key\":\"%s\",\"partition\":%u"
		    ",\"publisher\":\"%s\",\"chain\":%u,\"last_seq\":%" PRIu64
		    ",\"back_pressured\":%" PRIu64 ",\"send_errors\":%" PRIu64
		    ",\"encrypted\":%s,\"key_id\":%u,\"key_requests\":%" PRIu64
		    ",\"keys_granted\":%" PRIu64 ",\"keys_denied\":%" PRIu64 ",\"rotations\":%" PRIu64
		    ",\"rekeys\":%" PRIu64 "}\n",
		    st.msgs, st.dgrams, st.bytes, secs, rate, key, o->t.partition, pk, st.chain,
		    st.last_seq, st.back_pressured, st.send_errors, o->encrypt ? "true" : "false",
		    st.key_id, st.key_requests, st.keys_granted, st.keys_denied, st.rotations,
		    st.rekeys);
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
	double tokens = 0, ns_per_msg, elapsed;
	uint64_t last_refill, next_rotate = 0, next_rekey = 0;
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
				    "--batch %u %s messages of --size %u do not fit one "
				    "%u-byte datagram: lower --batch or --size",
				    o.batch, o.encrypt ? "encrypted and signed" : "signed", o.size,
				    RLY_WIRE_MAX_DGRAM);
	po.encrypt = o.encrypt;
	po.registry_dir = o.registry;
	po.key_history = o.key_history;
	po.on_key_event = on_key_event;
	po.key_event_ctx = &o;
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
	if (o.encrypt) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_key_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGUSR1, &sa, NULL);
		sigaction(SIGUSR2, &sa, NULL);
		/* Subscribers that join ask the holder for the key: be registered before the first
		 * message, so their first request finds it. */
		if (rly_pub_register(p, 5000) < 0) {
			fprintf(stderr, "relay-pub: %s\n", rly_client_errmsg());
			rly_pub_free(p);
			return 1;
		}
	}

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
	next_rotate = start + o.rotate_ms * 1000000ull;
	next_rekey = start + o.rekey_ms * 1000000ull;
	while (!stop_requested && (o.count == 0 || sent < o.count)) {
		uint64_t now = rly_mono_ns(), n;

		if (now >= end_at)
			break;
		if (o.encrypt)
			key_timers(&o, p, now, &next_rotate, &next_rekey);
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
				if (o.rotate_ms && wake > next_rotate)
					wake = next_rotate;
				if (o.rekey_ms && wake > next_rekey)
					wake = next_rekey;
				sleep_until(p, o.encrypt, wake < end_at ? wake : end_at);
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
			tool_payload_fill_canary(payload, o.size, st.last_seq + 1, o.canary,
						 o.canary_len);
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
	elapsed = (double)(rly_mono_ns() - start) / 1e9; /* the rate leaves the linger out */
	if (o.encrypt && o.linger > 0 && !stop_requested) {
		uint64_t until = rly_mono_ns() + (uint64_t)(o.linger * 1e9);
		sleep_until(p, 1, until);
	}
	summary(&o, p, elapsed, o.json);
	rly_pub_free(p);
	return status;
}
