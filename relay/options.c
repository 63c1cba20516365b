/* SPDX-License-Identifier: Apache-2.0 */
#include "relay/options.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "relay/wire.h"

enum opt_type { OPT_STR, OPT_U32, OPT_POW2, OPT_IPV4, OPT_CHOICE };

struct opt_def {
	const char *name;
	const char *arg;
	enum opt_type type;
	size_t off;
	size_t size;      /* OPT_STR: buffer size */
	uint32_t min, max;
	const char *const *choices; /* OPT_CHOICE: index stored */
	const char *def;  /* default, as text (also applied from here) */
	const char *help;
};

static const char *const on_off[] = {"off", "on", NULL};
static const char *const idle_modes[] = {"busy", "backoff", NULL};

#define U32(field) OPT_U32, offsetof(struct rly_relay_opts, field), 0
#define POW2(field) OPT_POW2, offsetof(struct rly_relay_opts, field), 0
#define STR(field) OPT_STR, offsetof(struct rly_relay_opts, field), sizeof(((struct rly_relay_opts *)0)->field)
#define CHOICE(field) OPT_CHOICE, offsetof(struct rly_relay_opts, field), 0

static const struct opt_def opts[] = {
	{"ip", "A.B.C.D", OPT_IPV4, offsetof(struct rly_relay_opts, ip), sizeof(((struct rly_relay_opts *)0)->ip), 0, 0, NULL, NULL,
	 "Required. The IPv4 address the relay owns on its ports. It answers ARP for it, and "
	 "publishers and subscribers send to it."},
	{"udp-port", "N", U32(udp_port), 1, 65535, NULL, "4747", "UDP port the relay listens on and sends from."},
	{"instance", "NAME", STR(instance), 0, 0, NULL, RLY_INSTANCE_DEFAULT,
	 "Name of this relay on this machine: its shared memory is /dev/shm/relay.NAME, and "
	 "relay-control and relay-stat attach with the same --instance. 1-31 of A-Z a-z 0-9 _ -."},
	{"mtu", "BYTES", U32(mtu), 576, RLY_WIRE_MAX_DGRAM + 28, NULL, "1500",
	 "IP MTU of the ports. The relay sends datagrams of at most MTU-28 bytes of UDP payload and "
	 "refuses larger ones."},
	{"batch", "on|off", CHOICE(batch), 0, 0, on_off, "on",
	 "on: messages of several datagrams received in one burst for the same subscriber share one "
	 "output datagram (fewer packets at high fan-out; nothing is held back to wait). off: one "
	 "output datagram per input datagram."},
	{"chain-min-bytes", "BYTES", U32(chain_min), 0, RLY_WIRE_MAX_DGRAM, NULL, "64",
	 "With several subscribers, an output datagram of at least BYTES (UDP payload) is made once "
	 "and each subscriber gets a 42-byte header chained to it, on ports that send chained mbufs; "
	 "smaller ones are copied per subscriber. 0: always copy."},
	{"idle", "busy|backoff", CHOICE(idle), 0, 0, idle_modes, "busy",
	 "What a worker does when a loop turn finds no packet. busy: spin (lowest latency, one full "
	 "core per worker; for production). backoff: spin, then yield, then sleep up to "
	 "--idle-max-us (for demos, CI, or several relays sharing CPUs)."},
	{"idle-max-us", "US", U32(idle_max_us), 1, 100000, NULL, "1000",
	 "Longest sleep of the backoff idle strategy, in microseconds."},
	{"tx-drain-us", "US", U32(tx_drain_us), 1, 100000, NULL, "100",
	 "Longest time a frame waits in a tx buffer under sustained load. A worker that has caught "
	 "up sends at once regardless."},
	{"rx-desc", "N", U32(rx_desc), 64, 16384, NULL, "1024", "Rx descriptors per queue."},
	{"tx-desc", "N", U32(tx_desc), 64, 16384, NULL, "1024", "Tx descriptors per queue."},
	{"mbufs", "N", U32(mbufs), 2047, 4194303, NULL, "16383",
	 "mbufs in the packet pool (2176 bytes each). Raise it for high fan-out or many queues."},
	{"max-streams", "N", U32(max_streams), 1, 1u << 24, NULL, "65536",
	 "Most streams with subscribers at once. Further subscriptions are refused with TABLE_FULL."},
	{"max-subs-per-stream", "N", U32(max_subs), 1, 1u << 20, NULL, "4096",
	 "Most subscriber endpoints per stream and partition."},
	{"punt-ring", "SLOTS", POW2(punt_ring), 64, 65536, NULL, "1024",
	 "Slots per worker in the ring of control datagrams to relay-control (power of two)."},
	{"punt-rate", "N", U32(punt_rate), 0, 1000000, NULL, "200",
	 "Control datagrams (SUBSCRIBE, HEARTBEAT, ...) a worker passes to relay-control per second "
	 "per source address; more are dropped and counted (drop_punt_rate). 0: no limit."},
	{"punt-burst", "N", U32(punt_burst), 1, 1000000, NULL, "400",
	 "Control datagrams a source may send at once above --punt-rate."},
	{"cmd-ring", "SLOTS", POW2(cmd_ring), 64, 65536, NULL, "4096",
	 "Slots in the command and event rings shared with relay-control (power of two)."},
	{"dedup-chains", "N", POW2(dedup_chains), 16, 1u << 22, NULL, "1024",
	 "Publisher chains the dedup table tracks at once (power of two). Messages of streams with "
	 "peer relays are de-duplicated by (publisher, chain, sequence); a chain that finds no room "
	 "is forwarded unchecked (dedup_untracked), and subscribers drop the duplicates themselves."},
	{"dedup-window", "N", POW2(dedup_window), 64, 65536, NULL, "1024",
	 "Sequence numbers remembered per chain (power of two). A message more than N below its "
	 "chain's highest is dropped as too old (dedup_too_old). The table takes "
	 "dedup-chains x (128 + 8 x N) bytes of shared memory."},
	{"history-chains", "N", U32(history_chains), 0, 1u << 20, NULL, "64",
	 "Publisher chains whose recent messages the relay keeps, so that subscribers that lost "
	 "some (NAK) and peer relays (IWANT) get them again. A chain takes a slot with its first "
	 "message and gives it back when it is forgotten (--dedup-idle-s); one that finds none is "
	 "forwarded without a history (hist_no_slot). 0: no history, no repair, and streams without "
	 "peer relays skip the dedup table."},
	{"history-chain-mb", "MB", U32(history_chain_mb), 1, 65536, NULL, "16",
	 "Message bytes kept per chain, in MiB (a power of two). With --history-msgs, whichever "
	 "holds fewer messages bounds the history: 16 MiB holds about 75,000 signed 64-byte "
	 "messages. The history takes history-chains x (history-chain-mb + 16 x index entries) of "
	 "shared memory, used as messages arrive."},
	{"history-msgs", "N", POW2(history_msgs), 1024, 1u << 26, NULL, "1048576",
	 "Most messages kept per chain (power of two). The index has min(N, the most records "
	 "history-chain-mb can hold) entries of 16 bytes."},
	{"repair-kbs", "KIB", U32(repair_kbs), 0, 1u << 22, NULL, "4096",
	 "Repair budget of each subscriber: KiB per second of messages sent again in answer to its "
	 "NAKs. Over it, a NAK is answered in part and the subscriber told to ask again later (GAP "
	 "PACED). 0: no limit."},
	{"repair-burst-kb", "KIB", U32(repair_burst_kb), 1, 1u << 22, NULL, "1024",
	 "KiB a subscriber may have sent again at once above --repair-kbs."},
	{"slow-cut-ms", "MS", U32(slow_cut_ms), 0, 3600000, NULL, "2000",
	 "A subscriber whose NAKs have found its repair budget spent for this long is a slow "
	 "consumer: it is cut off (GAP SLOW_CONSUMER, and relay-control ends its subscription; it "
	 "may subscribe again) instead of being served at the others' expense. 0: never cut."},
	{"nak-holdoff-us", "US", U32(nak_holdoff_us), 0, 1000000, NULL, "1000",
	 "A message sent again to a subscriber is not sent again to it within this time, however "
	 "often it asks (coalescing repeated NAKs)."},
	{"dedup-idle-s", "S", U32(dedup_idle_s), 1, 86400, NULL, "60",
	 "A chain with no new message for S seconds is forgotten and its slot reused."},
	{"config", "FILE", STR(config), 0, 0, NULL, "",
	 "Read options from FILE first: one 'key = value' per line, keys as the long options "
	 "without '--', '#' starts a comment. The command line overrides the file."},
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const struct opt_def *find_opt(const char *name)
{
	for (size_t i = 0; i < N_OPTS; i++)
		if (strcmp(opts[i].name, name) == 0)
			return &opts[i];
	return NULL;
}

static unsigned edit_distance(const char *a, const char *b)
{
	unsigned row[64], n = (unsigned)strlen(b), m = (unsigned)strlen(a);

	if (n >= 63 || m >= 63)
		return 99;
	for (unsigned j = 0; j <= n; j++)
		row[j] = j;
	for (unsigned i = 1; i <= m; i++) {
		unsigned prev = row[0];
		row[0] = i;
		for (unsigned j = 1; j <= n; j++) {
			unsigned cur = row[j];
			unsigned best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[n];
}

static const char *closest(const char *name)
{
	const char *best = NULL;
	unsigned best_d = 3;

	for (size_t i = 0; i < N_OPTS; i++) {
		unsigned d = edit_distance(name, opts[i].name);
		if (d < best_d) {
			best_d = d;
			best = opts[i].name;
		}
	}
	return best;
}

static int unknown(const char *where, const char *prefix, const char *name)
{
	const char *guess = closest(name);

	if (guess)
		return rly_err_set(EINVAL, "%sunknown option '%s%s' (did you mean '%s%s'?)", where,
				   prefix, name, prefix, guess);
	return rly_err_set(EINVAL, "%sunknown option '%s%s': see relay --help", where, prefix, name);
}

static int set_value(struct rly_relay_opts *o, const struct opt_def *d, const char *val,
		     const char *where)
{
	void *field = (uint8_t *)o + d->off;
	char *end;
	unsigned long v;

	switch (d->type) {
	case OPT_STR:
		if (strlen(val) >= d->size)
			return rly_err_set(EINVAL, "%s--%s: '%s' is longer than %zu characters", where,
					   d->name, val, d->size - 1);
		strcpy(field, val);
		return 0;
	case OPT_IPV4: {
		struct in_addr a;
		if (inet_pton(AF_INET, val, &a) != 1 || a.s_addr == 0 || a.s_addr == 0xffffffff)
			return rly_err_set(EINVAL,
					   "%s--%s: '%s' is not a usable IPv4 address (want A.B.C.D, e.g. "
					   "198.18.0.1)",
					   where, d->name, val);
		strcpy(field, val);
		o->ip_be = a.s_addr;
		return 0;
	}
	case OPT_U32:
	case OPT_POW2:
		errno = 0;
		v = strtoul(val, &end, 10);
		if (errno || end == val || *end != '\0' || val[0] == '-')
			return rly_err_set(EINVAL, "%s--%s: '%s' is not a number", where, d->name, val);
		if (v < d->min || v > d->max)
			return rly_err_set(EINVAL, "%s--%s: %lu is out of range: use %u to %u", where,
					   d->name, v, d->min, d->max);
		if (d->type == OPT_POW2 && (v & (v - 1)) != 0)
			return rly_err_set(EINVAL, "%s--%s: %lu is not a power of two (e.g. %lu)", where,
					   d->name, v, 1ul << (64 - __builtin_clzl(v)));
		*(uint32_t *)field = (uint32_t)v;
		return 0;
	case OPT_CHOICE:
		for (uint32_t i = 0; d->choices[i]; i++) {
			if (strcmp(d->choices[i], val) == 0) {
				*(uint32_t *)field = i;
				return 0;
			}
		}
		return rly_err_set(EINVAL, "%s--%s: '%s' is not one of %s", where, d->name, val, d->arg);
	}
	return -EINVAL;
}

static void set_defaults(struct rly_relay_opts *o)
{
	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < N_OPTS; i++)
		if (opts[i].def && opts[i].def[0])
			set_value(o, &opts[i], opts[i].def, "");
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int read_config(struct rly_relay_opts *o, const char *path)
{
	char line[512], where[320];
	unsigned lineno = 0;
	FILE *f = fopen(path, "r");
	int rc = 0;

	if (f == NULL)
		return rly_err_set(errno, "--config %s: %s", path, strerror(errno));
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *hash, *key, *val, *eq;
		const struct opt_def *d;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u: ", path, lineno);
		if (strchr(line, '\n') == NULL && !feof(f)) {
			rc = rly_err_set(EINVAL, "%sline longer than %zu characters", where, sizeof(line) - 2);
			break;
		}
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		key = trim(line);
		if (*key == '\0')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			rc = rly_err_set(EINVAL, "%sexpected 'key = value', got '%s'", where, key);
			break;
		}
		*eq = '\0';
		val = trim(eq + 1);
		key = trim(key);
		d = find_opt(key);
		if (d == NULL) {
			const char *guess = closest(key);
			rc = guess ? rly_err_set(EINVAL, "%sunknown key '%s' (did you mean '%s'?)", where,
						 key, guess)
				   : rly_err_set(EINVAL, "%sunknown key '%s': see relay --help", where, key);
		} else if (strcmp(d->name, "config") == 0) {
			rc = rly_err_set(EINVAL, "%sa config file cannot include another", where);
		} else {
			rc = set_value(o, d, val, where);
		}
	}
	fclose(f);
	return rc;
}

uint32_t rly_relay_hist_index(const struct rly_relay_opts *o)
{
	/* The smallest record: 24-byte record header, 96-byte message header, no payload. */
	const uint64_t most = ((uint64_t)o->history_chain_mb << 20) / 120u;
	uint32_t n = 1024;

	while (n < o->history_msgs && n < most)
		n <<= 1;
	return n;
}

int rly_relay_opts_parse(struct rly_relay_opts *o, int argc, char **argv, FILE *out)
{
	int rc;

	set_defaults(o);
	/* --help and --version win wherever they are; then the config file; then the rest. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			rly_relay_usage(out);
			return RLY_OPTS_EXIT;
		}
		if (strcmp(argv[i], "--version") == 0)
			return RLY_OPTS_VERSION;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
			const char *path = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[i + 1] : NULL);
			if (path == NULL)
				return rly_err_set(EINVAL, "--config needs a FILE");
			rc = read_config(o, path);
			if (rc < 0)
				return rc;
			snprintf(o->config, sizeof(o->config), "%s", path);
		}
	}
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *a = argv[i], *val, *eq;
		const struct opt_def *d;

		if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
			return rly_err_set(EINVAL,
					   "unexpected argument '%s': relay options look like --name VALUE "
					   "(EAL options go before '--')",
					   a);
		eq = strchr(a, '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq ? eq - a - 2 : (long)strlen(a) - 2), a + 2);
		d = find_opt(name);
		if (d == NULL)
			return unknown("", "--", name);
		if (eq) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc)
				return rly_err_set(EINVAL, "--%s needs a value: %s", d->name, d->arg);
			val = argv[++i];
		}
		if (strcmp(d->name, "config") == 0)
			continue; /* already read */
		rc = set_value(o, d, val, "");
		if (rc < 0)
			return rc;
	}
	/* 1 GiB: well past any sensible table, and far below what would overflow a size. */
	if ((uint64_t)o->dedup_chains * RLY_DEDUP_STRIDE(o->dedup_window) > (1ull << 30))
		return rly_err_set(EINVAL,
				   "--dedup-chains %u with --dedup-window %u needs %llu MiB of shared "
				   "memory, more than 1024 MiB: lower one of them",
				   o->dedup_chains, o->dedup_window,
				   (unsigned long long)(((uint64_t)o->dedup_chains *
							 RLY_DEDUP_STRIDE(o->dedup_window)) >> 20));
	if (o->history_chain_mb & (o->history_chain_mb - 1))
		return rly_err_set(EINVAL, "--history-chain-mb %u is not a power of two (e.g. %u)",
				   o->history_chain_mb, 1u << (31 - __builtin_clz(o->history_chain_mb)));
	if ((uint64_t)o->history_chains *
		RLY_HIST_STRIDE(rly_relay_hist_index(o), (uint64_t)o->history_chain_mb << 20) >
	    (1ull << 40))
		return rly_err_set(EINVAL,
				   "--history-chains %u of --history-chain-mb %u need more than 1 TiB "
				   "of shared memory: lower one of them",
				   o->history_chains, o->history_chain_mb);
	if (o->ip_be == 0)
		return rly_err_set(EINVAL, "--ip is required: the IPv4 address the relay owns on its "
					   "ports (e.g. --ip 198.18.0.1)");
	return RLY_OPTS_RUN;
}

static void wrap(FILE *f, const char *text, int indent, int width)
{
	int col = indent;
	const char *p = text;

	fprintf(f, "%*s", indent, "");
	while (*p) {
		const char *sp = strchr(p, ' ');
		int len = sp ? (int)(sp - p) : (int)strlen(p);
		if (col + len > width && col > indent) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		}
		fprintf(f, "%.*s ", len, p);
		col += len + 1;
		p += len;
		while (*p == ' ')
			p++;
	}
	fputc('\n', f);
}

void rly_relay_usage(FILE *f)
{
	fprintf(f,
		"Usage: relay [EAL options] -- --ip A.B.C.D [relay options]\n"
		"\n"
		"relay is the DPDK dataplane of a relay node: it receives publishers' datagrams on its\n"
		"ports and sends every message to every subscriber of its stream. Run relay-control\n"
		"beside it to accept subscriptions, and relay-stat to watch its counters.\n"
		"\n"
		"EAL options (before '--'), see the DPDK documentation; typical ones:\n"
		"  -l 0,1                      lcores: the first runs the manager, each other one a worker\n"
		"  --lcores=0@0,1@0            two lcores sharing CPU 0 (demo and CI on a small machine)\n"
		"  --no-huge -m 512            no hugepages, 512 MB of ordinary memory\n"
		"  --no-pci --vdev=net_af_xdp0,iface=veth0      a kernel interface through AF_XDP\n"
		"  --vdev=net_memif0,role=client,socket=/run/x.sock   a shared-memory link to another process\n"
		"  -a 0000:3b:00.0             a physical NIC, once bound to vfio-pci (see README)\n"
		"  --no-shconf                 no /var/run/dpdk files: several relays side by side\n"
		"\n"
		"Relay options (after '--'):\n");
	for (size_t i = 0; i < N_OPTS; i++) {
		char head[64];
		snprintf(head, sizeof(head), "--%s %s", opts[i].name, opts[i].arg);
		fprintf(f, "  %s", head);
		if (opts[i].def && opts[i].def[0])
			fprintf(f, "   (default %s)", opts[i].def);
		fputc('\n', f);
		wrap(f, opts[i].help, 6, 96);
	}
	fprintf(f, "  --help, --version\n"
		   "\n"
		   "Signals: SIGINT or SIGTERM stop the workers, flush, print the counters and remove\n"
		   "/dev/shm/relay.<instance>.\n");
}
