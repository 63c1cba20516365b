/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-control: options, signals and the loop. A plain Linux process: no rte_eal_init, it only
 * maps the relay's shared-memory object.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/shm.h"
#include "control/ctl.h"
#include "control/log.h"

#ifndef RLY_VERSION
#define RLY_VERSION "unknown"
#endif

/* Idle back-off: a turn that found nothing sleeps, twice as long each time up to the cap, so an
 * idle relay-control leaves its CPU to the workers it shares a machine with. */
#define IDLE_MIN_NS 20000ull
#define IDLE_MAX_NS 1000000ull
/* While no relay is mapped nothing can arrive; sleep longer. */
#define DETACHED_SLEEP_NS 50000000ull

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: relay-control [OPTIONS]\n"
	    "\n"
	    "Control plane of a relay: answers SUBSCRIBE / HEARTBEAT / UNSUBSCRIBE that the relay\n"
	    "punts to it, runs the return-routability challenge and the leases, and tells the "
	    "relay\n"
	    "which endpoints to add or remove. It attaches to a running relay through the "
	    "shared-memory\n"
	    "object /dev/shm/relay.<instance>; start the relay first. It writes one JSON object "
	    "per\n"
	    "line on stdout for every event.\n"
	    "\n"
	    "Options:\n"
	    "  --instance NAME         relay instance to attach to (default \"%s\"; 1-%u "
	    "characters\n"
	    "                          of A-Z a-z 0-9 _ -), the same as the relay's --instance\n"
	    "  --default-lease-ms MS   lease given to subscriptions learnt from the relay's table "
	    "after\n"
	    "                          relay-control (re)starts, until their next heartbeat\n"
	    "                          (default 60000, the default --max-lease-ms: no live client,\n"
	    "                          whatever lease it was granted, can expire across a restart)\n"
	    "  --max-lease-ms MS       longest lease granted; a SUBSCRIBE asking for more gets "
	    "this\n"
	    "                          (default 60000). Clients heartbeat every lease/3.\n"
	    "  --challenge-ttl-ms MS   how long a CHALLENGE cookie stays valid (default 10000)\n"
	    "  --sub-rate N            SUBSCRIBEs handled per second per source address; more are\n"
	    "                          dropped silently (default 50)\n"
	    "  --sub-burst N           SUBSCRIBEs a source may send at once (default 100)\n"
	    "  --secret-file PATH      32-byte secret behind cookies and tokens, created with "
	    "mode\n"
	    "                          0600 if missing (default %s/<instance>.secret). Keep it\n"
	    "                          across restarts so subscribers' tokens stay valid.\n"
	    "  --log-level LEVEL       info (default) or debug (adds heartbeats and refused "
	    "tokens);\n"
	    "                          warn and error are accepted too\n"
	    "  --registry DIR          the stream registry: signed grants in DIR/*.grants (see\n"
	    "                          docs/registry.md). Subscribers need the subscribe permission\n"
	    "                          (proved with a signed subscribe unless granted to the\n"
	    "                          public), and the dataplane forwards only publishers with the\n"
	    "                          publish permission. Files are watched and reloaded on change.\n"
	    "                          Without it, anyone may subscribe and publish.\n"
	    "  --key-holders-max N     key holders (publishers handing out group keys) remembered;\n"
	    "                          more registrations get TABLE_FULL (default 4096)\n"
	    "  --key-pending-max N     forwarded key requests awaiting an answer (5 s each); more\n"
	    "                          are answered RATE_LIMITED (default 4096)\n"
	    "  --exit-with-relay       exit when the relay stops or dies (status 0 if it stopped, "
	    "1 if\n"
	    "                          it died) instead of waiting for it to come back\n"
	    "  --help                  show this help and exit\n"
	    "  --version               show the version and exit\n"
	    "\n"
	    "Exit status: 0 after SIGINT/SIGTERM, 1 on an error (no relay running, another\n"
	    "relay-control attached, unusable secret file, bad option).\n",
	    RLY_INSTANCE_DEFAULT, RLY_INSTANCE_MAX, RLY_CTL_SECRET_DIR);
}

static int bad_option(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad_option(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "relay-control: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'relay-control --help' for the list of options.\n");
	return 1;
}

/* Whole-string decimal in [lo, hi]; strtoul alone would accept "-1", "10x" and "". */
static int parse_u32(const char *opt, const char *arg, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (arg[0] < '0' || arg[0] > '9')
		goto bad;
	v = strtoull(arg, &end, 10);
	if (errno || *end != '\0' || v < lo || v > hi)
		goto bad;
	*out = (uint32_t)v;
	return 0;
bad:
	fprintf(stderr,
		"relay-control: %s '%s' is not valid: give a whole number from %u to %u\n"
		"Try 'relay-control --help' for the list of options.\n",
		opt, arg, lo, hi);
	return -1;
}

enum {
	OPT_INSTANCE = 256,
	OPT_DEFAULT_LEASE,
	OPT_MAX_LEASE,
	OPT_CHALLENGE_TTL,
	OPT_SUB_RATE,
	OPT_SUB_BURST,
	OPT_SECRET_FILE,
	OPT_LOG_LEVEL,
	OPT_EXIT_WITH_RELAY,
	OPT_REGISTRY,
	OPT_KEY_HOLDERS_MAX,
	OPT_KEY_PENDING_MAX,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option long_opts[] = {
    {"instance", required_argument, NULL, OPT_INSTANCE},
    {"default-lease-ms", required_argument, NULL, OPT_DEFAULT_LEASE},
    {"max-lease-ms", required_argument, NULL, OPT_MAX_LEASE},
    {"challenge-ttl-ms", required_argument, NULL, OPT_CHALLENGE_TTL},
    {"sub-rate", required_argument, NULL, OPT_SUB_RATE},
    {"sub-burst", required_argument, NULL, OPT_SUB_BURST},
    {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"exit-with-relay", no_argument, NULL, OPT_EXIT_WITH_RELAY},
    {"registry", required_argument, NULL, OPT_REGISTRY},
    {"key-holders-max", required_argument, NULL, OPT_KEY_HOLDERS_MAX},
    {"key-pending-max", required_argument, NULL, OPT_KEY_PENDING_MAX},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct rly_ctl_opts *o, enum rly_ctl_log_level *level)
{
	char name[64];
	int opt;
	/* Leases are sent as 32-bit ms; a day is already far past any sane lease. */
	const uint32_t day_ms = 86400000u;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		switch (opt) {
		case OPT_INSTANCE:
			if (rly_shm_name(name, sizeof(name), optarg) < 0)
				return bad_option("--instance: %s", rly_err_msg());
			o->instance = optarg;
			break;
		case OPT_DEFAULT_LEASE:
			if (parse_u32("--default-lease-ms", optarg, 100, day_ms,
				      &o->subs.default_lease_ms) < 0)
				return 1;
			break;
		case OPT_MAX_LEASE:
			if (parse_u32("--max-lease-ms", optarg, 100, day_ms,
				      &o->subs.max_lease_ms) < 0)
				return 1;
			break;
		case OPT_CHALLENGE_TTL:
			if (parse_u32("--challenge-ttl-ms", optarg, 100, day_ms,
				      &o->subs.challenge_ttl_ms) < 0)
				return 1;
			break;
		case OPT_SUB_RATE:
			if (parse_u32("--sub-rate", optarg, 1, 1000000, &o->subs.sub_rate_per_s) <
			    0)
				return 1;
			break;
		case OPT_SUB_BURST:
			if (parse_u32("--sub-burst", optarg, 1, 1000000, &o->subs.sub_burst) < 0)
				return 1;
			break;
		case OPT_SECRET_FILE:
			if (optarg[0] == '\0')
				return bad_option("--secret-file needs a path");
			o->secret_file = optarg;
			break;
		case OPT_LOG_LEVEL:
			if (rly_ctl_log_level_parse(optarg, level) < 0)
				return bad_option(
				    "--log-level '%s' is not valid: use info or debug", optarg);
			break;
		case OPT_EXIT_WITH_RELAY:
			o->exit_with_relay = 1;
			break;
		case OPT_REGISTRY:
			o->registry_dir = optarg;
			break;
		case OPT_KEY_HOLDERS_MAX:
			if (parse_u32("--key-holders-max", optarg, 1, 1u << 20,
				      &o->subs.key_holders_max) < 0)
				return 1;
			break;
		case OPT_KEY_PENDING_MAX:
			if (parse_u32("--key-pending-max", optarg, 1, 1u << 20,
				      &o->subs.key_pending_max) < 0)
				return 1;
			break;
		case OPT_HELP:
			usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("relay-control %s (shm ABI %u, wire protocol %u)\n", RLY_VERSION,
			       RLY_SHM_ABI_VERSION, RLY_WIRE_VERSION);
			return 0;
		case ':':
			return bad_option("%s needs a value", argv[optind - 1]);
		default:
			return bad_option("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad_option("unexpected argument '%s': every option starts with --",
				  argv[optind]);
	return -1;
}

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000ull),
			      .tv_nsec = (long)(ns % 1000000000ull)};
	/* EINTR from a stop signal ends the sleep early, which is what we want. */
	nanosleep(&ts, NULL);
}

static void log_error(const char *event, const char *msg)
{
	rly_ctl_log_msg(RLY_LOG_ERROR, event, msg);
	fprintf(stderr, "relay-control: %s\n", msg);
}

int main(int argc, char **argv)
{
	struct rly_ctl_opts o = {.instance = RLY_INSTANCE_DEFAULT,
				 .subs = RLY_CTL_SUBS_CFG_DEFAULT};
	enum rly_ctl_log_level level = RLY_LOG_INFO;
	struct rly_ctl *c = NULL;
	struct rly_ctl_logline l;
	struct sigaction sa;
	uint64_t backoff = 0;
	int rc, status = 0;

	rc = parse_args(argc, argv, &o, &level);
	if (rc >= 0)
		return rc;
	rly_ctl_log_open(stdout, o.instance, level);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: a signal must cut the idle sleep short */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (rly_ctl_log_begin(&l, RLY_LOG_INFO, "started")) {
		rly_ctl_log_str(&l, "version", RLY_VERSION);
		rly_ctl_log_i64(&l, "pid", getpid());
		rly_ctl_log_u64(&l, "default_lease_ms", o.subs.default_lease_ms);
		rly_ctl_log_u64(&l, "max_lease_ms", o.subs.max_lease_ms);
		rly_ctl_log_u64(&l, "challenge_ttl_ms", o.subs.challenge_ttl_ms);
		rly_ctl_log_end(&l);
	}

	if (rly_ctl_create(&c, &o) < 0) {
		log_error("setup_failed", rly_err_msg());
		return 1;
	}
	if (rly_ctl_start(c, rly_mono_ns()) < 0) {
		log_error("attach_failed", rly_err_msg());
		rly_ctl_free(c);
		return 1;
	}

	while (!stop_signal) {
		unsigned work;

		rc = rly_ctl_poll_once(c, rly_mono_ns(), &work);
		if (rc < 0) {
			log_error("fatal", rly_err_msg());
			status = 1;
			break;
		}
		if (rc == RLY_CTL_STOP) {
			status = rly_ctl_exit_code(c);
			break;
		}
		if (work) {
			backoff = 0;
			continue;
		}
		if (!rly_ctl_attached(c)) {
			sleep_ns(DETACHED_SLEEP_NS);
			continue;
		}
		backoff = backoff ? backoff * 2 : IDLE_MIN_NS;
		if (backoff > IDLE_MAX_NS)
			backoff = IDLE_MAX_NS;
		rly_ctl_count_idle(c);
		sleep_ns(backoff);
	}

	rly_ctl_free(c);
	if (rly_ctl_log_begin(&l, RLY_LOG_INFO, "stopped")) {
		if (stop_signal)
			rly_ctl_log_str(&l, "signal", stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
		rly_ctl_log_i64(&l, "status", status);
		rly_ctl_log_end(&l);
	}
	return status;
}
