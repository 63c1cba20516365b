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
#include "control/discovery.h"
#include "control/log.h"
#include "security/identity.h"

#include <arpa/inet.h>

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
	    "\n"
	    "Peering (a network of relays; docs/overlay.md). Off without --identity:\n"
	    "  --identity FILE         the relay's Ed25519 identity (made with relay-keys; mode "
	    "0600).\n"
	    "                          With it the relay peers: it serves every stream that has a\n"
	    "                          local subscriber or publisher, finds the other relays of the\n"
	    "                          stream through discovery and links into its overlay\n"
	    "  --seed IP[:PORT][@KEY]  a relay to ask for other relays (static discovery; repeat up\n"
	    "                          to %u times; port default %u). Every relay answers lookups,\n"
	    "                          so any relay can be a seed. With @KEY (its public key, 64\n"
	    "                          hex digits) only that identity is accepted there; without\n"
	    "                          it, whoever answers first from that address is the seed\n"
	    "  --discovery static|dht  discovery backend (default static: the seeds; dht needs a\n"
	    "                          build with -Ddht=enabled, see control/README.md)\n"
	    "  --dht-bind IP:PORT      DHT backend: UDP address of the DHT node (kernel socket)\n"
	    "  --dht-bootstrap LIST    DHT backend: host:port[,host:port...] of known DHT nodes\n"
	    "  --peer-degree N         overlay links a relay makes per stream (default 4)\n"
	    "  --peer-degree-max N     overlay links it accepts per stream (default 8, at most %u)\n"
	    "  --peer-ping-ms MS       keepalive of a peer session (default 1000)\n"
	    "  --peer-dead-ms MS       a peer silent this long is dropped and replaced (default "
	    "3000)\n"
	    "  --ihave-ms MS           summary interval over lazy links (default 50)\n"
	    "  --graft-after-ms MS     a message a summary announced may be this late before the\n"
	    "                          lazy link is grafted back to eager (default 100)\n"
	    "  --peer-keep-fastest     never prune the link that brings some publisher's messages\n"
	    "                          first: fewer holes to repair when a stream has publishers on\n"
	    "                          several relays, at the price of more duplicates (measured in\n"
	    "                          docs/overlay.md)\n"
	    "  --overlays-max N        streams this relay serves in overlays at once (default 1024,\n"
	    "                          3.6 KiB each); more stay local, with a warning\n"
	    "  --serve-linger-s S      a stream is served this long after its last local\n"
	    "                          subscriber or publisher (default 30)\n"
	    "  --disc-ttl-s S          lifetime of this relay's discovery records (default 60)\n"
	    "  --disc-lookup-ms MS     served streams are looked up again this often (default 2000)\n"
	    "\n"
	    "  --exit-with-relay       exit when the relay stops or dies (status 0 if it stopped, "
	    "1 if\n"
	    "                          it died) instead of waiting for it to come back\n"
	    "  --help                  show this help and exit\n"
	    "  --version               show the version and exit\n"
	    "\n"
	    "Exit status: 0 after SIGINT/SIGTERM, 1 on an error (no relay running, another\n"
	    "relay-control attached, unusable secret file, bad option).\n",
	    RLY_INSTANCE_DEFAULT, RLY_INSTANCE_MAX, RLY_CTL_SECRET_DIR, RLY_PEER_SEEDS_MAX,
	    RLY_WIRE_DEFAULT_PORT, RLY_PEER_DEGREE_CAP);
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
	OPT_IDENTITY,
	OPT_SEED,
	OPT_DISCOVERY,
	OPT_DHT_BIND,
	OPT_DHT_BOOTSTRAP,
	OPT_PEER_DEGREE,
	OPT_PEER_DEGREE_MAX,
	OPT_PEER_PING,
	OPT_PEER_DEAD,
	OPT_IHAVE,
	OPT_KEEP_FASTEST,
	OPT_OVERLAYS_MAX,
	OPT_GRAFT_AFTER,
	OPT_SERVE_LINGER,
	OPT_DISC_TTL,
	OPT_DISC_LOOKUP,
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
    {"identity", required_argument, NULL, OPT_IDENTITY},
    {"seed", required_argument, NULL, OPT_SEED},
    {"discovery", required_argument, NULL, OPT_DISCOVERY},
    {"dht-bind", required_argument, NULL, OPT_DHT_BIND},
    {"dht-bootstrap", required_argument, NULL, OPT_DHT_BOOTSTRAP},
    {"peer-degree", required_argument, NULL, OPT_PEER_DEGREE},
    {"peer-degree-max", required_argument, NULL, OPT_PEER_DEGREE_MAX},
    {"peer-ping-ms", required_argument, NULL, OPT_PEER_PING},
    {"peer-dead-ms", required_argument, NULL, OPT_PEER_DEAD},
    {"ihave-ms", required_argument, NULL, OPT_IHAVE},
    {"peer-keep-fastest", no_argument, NULL, OPT_KEEP_FASTEST},
    {"overlays-max", required_argument, NULL, OPT_OVERLAYS_MAX},
    {"graft-after-ms", required_argument, NULL, OPT_GRAFT_AFTER},
    {"serve-linger-s", required_argument, NULL, OPT_SERVE_LINGER},
    {"disc-ttl-s", required_argument, NULL, OPT_DISC_TTL},
    {"disc-lookup-ms", required_argument, NULL, OPT_DISC_LOOKUP},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

/*
 * "a.b.c.d", "a.b.c.d:port" (port 1..65535, default @p dflt) and, where @p allow_id, an optional
 * "@<64 hex digits>" naming the identity expected there. Network order out.
 */
static int parse_addr(const char *opt, const char *arg, uint16_t dflt, int allow_id,
		      struct rly_ctl_peer_addr *a)
{
	char host[64], buf[160];
	const char *colon, *at;
	size_t n;
	struct in_addr in;
	uint32_t port = dflt;

	memset(a, 0, sizeof(*a));
	if (strlen(arg) >= sizeof(buf))
		goto bad;
	strcpy(buf, arg);
	if (allow_id && (at = strchr(buf, '@')) != NULL) {
		if (rly_pk_parse(at + 1, a->id) < 0) {
			fprintf(stderr,
				"relay-control: %s '%s': after '@' give the relay's public key, 64 hex "
				"digits (relay-keys show FILE)\n",
				opt, arg);
			return -1;
		}
		a->has_id = 1;
		buf[at - buf] = '\0';
	}
	colon = strchr(buf, ':');
	n = colon ? (size_t)(colon - buf) : strlen(buf);
	if (n == 0 || n >= sizeof(host))
		goto bad;
	memcpy(host, buf, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &in) != 1 || in.s_addr == 0)
		goto bad;
	if (colon && parse_u32(opt, colon + 1, 1, 65535, &port) < 0)
		return -1;
	a->ip_be = in.s_addr;
	a->port_be = htons((uint16_t)port);
	return 0;
bad:
	fprintf(stderr,
		"relay-control: %s '%s' is not valid: give an IPv4 address, optionally with :PORT\n"
		"Try 'relay-control --help' for the list of options.\n",
		opt, arg);
	return -1;
}

static struct rly_identity identity;

/* Returns -1 to go on, or the exit status. */
static int parse_args(int argc, char **argv, struct rly_ctl_opts *o, enum rly_ctl_log_level *level)
{
	char name[64];
	int opt;
	uint32_t v;
	struct rly_ctl_peer_addr dht;
	static char dht_ip[INET_ADDRSTRLEN];
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
		case OPT_IDENTITY:
			if (rly_identity_load(&identity, optarg) < 0)
				return bad_option("--identity: %s", rly_err_msg());
			o->peers.id = &identity;
			break;
		case OPT_SEED:
			if (o->peers.n_seeds == RLY_PEER_SEEDS_MAX)
				return bad_option("--seed: at most %u seeds", RLY_PEER_SEEDS_MAX);
			if (parse_addr("--seed", optarg, RLY_WIRE_DEFAULT_PORT, 1,
				       &o->peers.seeds[o->peers.n_seeds]) < 0)
				return 1;
			o->peers.n_seeds++;
			break;
		case OPT_DISCOVERY:
			if (strcmp(optarg, "static") == 0) {
				o->peers.disc_backend = RLY_DISC_BACKEND_STATIC;
			} else if (strcmp(optarg, "dht") == 0) {
#ifdef RLY_HAVE_DHT
				o->peers.disc_backend = RLY_DISC_BACKEND_DHT;
#else
				return bad_option("--discovery dht: this relay-control was built "
						  "without the DHT backend; rebuild with "
						  "-Ddht=enabled (see control/README.md)");
#endif
			} else {
				return bad_option("--discovery '%s' is not valid: use static or dht",
						  optarg);
			}
			break;
		case OPT_DHT_BIND:
			if (parse_addr("--dht-bind", optarg, 4222, 0, &dht) < 0)
				return 1;
			inet_ntop(AF_INET, &dht.ip_be, dht_ip, sizeof(dht_ip));
			o->peers.dht_bind = dht_ip;
			o->peers.dht_port = ntohs(dht.port_be);
			break;
		case OPT_DHT_BOOTSTRAP:
			o->peers.dht_bootstrap = optarg;
			break;
		case OPT_PEER_DEGREE:
			if (parse_u32("--peer-degree", optarg, 1, RLY_PEER_DEGREE_CAP,
				      &o->peers.degree) < 0)
				return 1;
			break;
		case OPT_PEER_DEGREE_MAX:
			if (parse_u32("--peer-degree-max", optarg, 1, RLY_PEER_DEGREE_CAP,
				      &o->peers.degree_max) < 0)
				return 1;
			break;
		case OPT_PEER_PING:
			if (parse_u32("--peer-ping-ms", optarg, 10, 60000, &o->peers.ping_ms) < 0)
				return 1;
			break;
		case OPT_PEER_DEAD:
			if (parse_u32("--peer-dead-ms", optarg, 50, 600000, &o->peers.dead_ms) < 0)
				return 1;
			break;
		case OPT_IHAVE:
			if (parse_u32("--ihave-ms", optarg, 1, 60000, &o->peers.ihave_ms) < 0)
				return 1;
			break;
		case OPT_KEEP_FASTEST:
			o->peers.keep_fastest = 1;
			break;
		case OPT_OVERLAYS_MAX:
			if (parse_u32("--overlays-max", optarg, 1, 65536, &o->peers.overlays_max) < 0)
				return 1;
			break;
		case OPT_GRAFT_AFTER:
			if (parse_u32("--graft-after-ms", optarg, 1, 60000, &o->peers.miss_ms) < 0)
				return 1;
			break;
		case OPT_SERVE_LINGER:
			if (parse_u32("--serve-linger-s", optarg, 1, 86400, &v) < 0)
				return 1;
			o->peers.linger_ms = v * 1000u;
			break;
		case OPT_DISC_TTL:
			if (parse_u32("--disc-ttl-s", optarg, 5, RLY_DISC_TTL_MAX_MS / 1000, &v) < 0)
				return 1;
			o->peers.disc_ttl_ms = v * 1000u;
			break;
		case OPT_DISC_LOOKUP:
			if (parse_u32("--disc-lookup-ms", optarg, 100, 3600000,
				      &o->peers.disc_lookup_ms) < 0)
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
	if (o->peers.degree > o->peers.degree_max)
		return bad_option("--peer-degree %u is above --peer-degree-max %u", o->peers.degree,
				  o->peers.degree_max);
	if (!o->peers.id && (o->peers.n_seeds || o->peers.disc_backend))
		return bad_option("--seed and --discovery need --identity: peering is off without "
				  "the relay's identity");
	if (o->peers.disc_backend == RLY_DISC_BACKEND_DHT && !o->peers.dht_bind)
		return bad_option("--discovery dht needs --dht-bind IP:PORT");
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
				 .subs = RLY_CTL_SUBS_CFG_DEFAULT,
				 .peers = RLY_CTL_PEERS_CFG_DEFAULT};
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
		if (o.peers.id) {
			char hex[2 * RLY_ID_LEN + 1];
			rly_pk_format(o.peers.id->pk, hex);
			rly_ctl_log_str(&l, "identity", hex);
			rly_ctl_log_u64(&l, "seeds", o.peers.n_seeds);
			rly_ctl_log_u64(&l, "peer_degree", o.peers.degree);
		}
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
