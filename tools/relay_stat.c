/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-stat: the relay's counters, read from its shared-memory object without disturbing it
 * (in the spirit of AeronStat and dpdk-proc-info). It maps the object read-only and never takes
 * a lock: every writer owns its counter block, so a reader only sums.
 *
 * It links librelay-common alone, no DPDK: it never touches the rings.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/shm.h"
#include "relay/counters.h"
#include "tools/args.h"

#define PROG "relay-stat"

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: relay-stat [options]\n"
		"Show a running relay's state and counters (read-only; safe at any time).\n"
		"\n"
		"  --instance NAME  relay instance to read, as given to relay (default \"%s\")\n"
		"  --interval MS    time between samples, 10-3600000 (default 1000)\n"
		"  --count N        print N samples, then exit\n"
		"  --once           print one sample now and exit (same as --count 1)\n"
		"  --workers        add a column per counter block: each worker, mgr, ctl\n"
		"  --all            also list counters that are zero\n"
		"  --json           one JSON object per sample (every counter, zero or not)\n"
		"  --help           this text\n"
		"\n"
		"Each sample lists every counter's total and, from the second sample on, its\n"
		"rate per second over the last interval (gauges show their value only), then\n"
		"the wire error reasons that are not zero. Without --count or --once it runs\n"
		"until SIGINT/SIGTERM.\n"
		"Exit status: 0 done, 1 no relay running (or it stopped while watched),\n"
		"2 bad arguments.\n",
		RLY_INSTANCE_DEFAULT);
}

struct opts {
	const char *instance;
	uint64_t interval_ms;
	uint64_t count;
	int workers;
	int all;
	int json;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
	enum { O_INSTANCE = 256, O_INTERVAL, O_COUNT, O_ONCE, O_WORKERS, O_ALL, O_JSON, O_HELP };
	static const struct option lo[] = {
	    {"instance", required_argument, NULL, O_INSTANCE},
	    {"interval", required_argument, NULL, O_INTERVAL},
	    {"count", required_argument, NULL, O_COUNT},
	    {"once", no_argument, NULL, O_ONCE},
	    {"workers", no_argument, NULL, O_WORKERS},
	    {"all", no_argument, NULL, O_ALL},
	    {"json", no_argument, NULL, O_JSON},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	char name[64];
	int c;

	memset(o, 0, sizeof(*o));
	o->instance = RLY_INSTANCE_DEFAULT;
	o->interval_ms = 1000;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", lo, NULL)) != -1) {
		switch (c) {
		case O_INSTANCE:
			o->instance = optarg;
			if (rly_shm_name(name, sizeof(name), optarg) < 0)
				return tool_bad_arg(PROG, "--instance: %s", rly_err_msg());
			break;
		case O_INTERVAL:
			if (tool_parse_u64(PROG, "--interval", optarg, 10, 3600000,
					   &o->interval_ms) < 0)
				return 2;
			break;
		case O_COUNT:
			if (tool_parse_u64(PROG, "--count", optarg, 1, UINT64_MAX, &o->count) < 0)
				return 2;
			break;
		case O_ONCE:
			o->count = 1;
			break;
		case O_WORKERS:
			o->workers = 1;
			break;
		case O_ALL:
			o->all = 1;
			break;
		case O_JSON:
			o->json = 1;
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
	return 0;
}

/* One reading of every slot, per block: rates are differences of two of these. */
struct sample {
	uint64_t mono_ns;
	uint64_t v[RLY_SHM_MAX_WORKERS + 2][RLY_CTR_SLOTS];
	uint64_t sum[RLY_CTR_SLOTS];
};

static void take_sample(const struct rly_shm *s, struct sample *out)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);

	out->mono_ns = rly_mono_ns();
	memset(out->sum, 0, sizeof(out->sum));
	for (unsigned b = 0; b < h->n_blocks; b++) {
		const struct rly_ctr_block *blk = rly_shm_ctr(s, b);
		for (unsigned i = 0; i < RLY_CTR_SLOTS; i++) {
			out->v[b][i] = __atomic_load_n(&blk->v[i], __ATOMIC_RELAXED);
			out->sum[i] += out->v[b][i];
		}
	}
}

static const char *state_name(uint32_t state)
{
	switch (state) {
	case RLY_SHM_STATE_STARTING:
		return "STARTING";
	case RLY_SHM_STATE_RUNNING:
		return "RUNNING";
	case RLY_SHM_STATE_STOPPING:
		return "STOPPING";
	default:
		return "UNKNOWN";
	}
}

/* What a slot is called in output: counter ids by name, wire error slots as wire_<REASON>. */
static const char *slot_name(unsigned slot, char *buf, size_t cap)
{
	if (slot < RLY_CTR_MAX)
		return rly_ctr_name(slot);
	snprintf(buf, cap, "wire_%s",
		 rly_wire_err_name((enum rly_wire_err)(slot - RLY_CTR_WIRE_BASE)));
	return buf;
}

/* The slots shown, in order: every counter id, then every wire error reason but OK. */
static unsigned shown_slots(unsigned *slots)
{
	unsigned n = 0;

	for (unsigned i = 0; i < RLY_CTR_MAX; i++)
		slots[n++] = i;
	for (unsigned e = 1; e < RLY_WIRE_ERR_MAX; e++)
		slots[n++] = RLY_CTR_WIRE_BASE + e;
	return n;
}

static double rate_of(const struct sample *cur, const struct sample *prev, unsigned slot)
{
	double secs = (double)(cur->mono_ns - prev->mono_ns) / 1e9;

	if (secs <= 0 || cur->sum[slot] < prev->sum[slot])
		return 0;
	return (double)(cur->sum[slot] - prev->sum[slot]) / secs;
}

/*
 * Share of worker @p w's time spent in loop turns that found work, over the interval: its
 * busy_cycles delta over the TSC cycles that elapsed. A busy-spinning worker at 100 % is
 * saturated; below that, the bottleneck is elsewhere (the sender, the NIC, the sink).
 */
static double worker_load(const struct rly_shm_header *h, const struct sample *cur,
			  const struct sample *prev, unsigned w)
{
	double secs = (double)(cur->mono_ns - prev->mono_ns) / 1e9;
	uint64_t a = prev->v[w][RLY_CTR_BUSY_CYCLES], b = cur->v[w][RLY_CTR_BUSY_CYCLES];

	if (secs <= 0 || h->tsc_hz == 0 || b < a)
		return 0;
	return (double)(b - a) / ((double)h->tsc_hz * secs);
}

/* The header's live fields, read once per sample for either output format. */
struct status {
	char addr[INET_ADDRSTRLEN + 6];
	const char *state;
	uint64_t uptime_s;
	double relay_hb_age_ms; /* < 0: the relay has not heartbeaten yet */
	int32_t control_pid;
	int control_attached;	  /* control_pid names a live process */
	double control_hb_age_ms; /* < 0: never */
};

static double age_ms(uint64_t now, uint64_t then)
{
	if (then == 0)
		return -1;
	return now > then ? (double)(now - then) / 1e6 : 0.0;
}

static void read_status(const struct rly_shm_header *h, struct status *st)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr a = {.s_addr = h->relay_ip_be};
	uint64_t now = rly_mono_ns();

	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	snprintf(st->addr, sizeof(st->addr), "%s:%u", ip, h->relay_udp_port);
	st->state = state_name(__atomic_load_n(&h->state, __ATOMIC_RELAXED));
	st->uptime_s = (rly_real_ns() - h->start_realtime_ns) / 1000000000ull;
	st->relay_hb_age_ms =
	    age_ms(now, __atomic_load_n(&h->relay_heartbeat_ns, __ATOMIC_RELAXED));
	st->control_pid = __atomic_load_n(&h->control_pid, __ATOMIC_RELAXED);
	st->control_attached = st->control_pid > 0 && rly_pid_alive(st->control_pid);
	st->control_hb_age_ms =
	    age_ms(now, __atomic_load_n(&h->control_heartbeat_ns, __ATOMIC_RELAXED));
}

static int slot_is_gauge(unsigned slot)
{
	return slot < RLY_CTR_MAX && rly_ctr_kind(slot) == RLY_CTR_KIND_GAUGE;
}

static void print_header_text(const struct rly_shm_header *h)
{
	struct status st;
	uint64_t up;

	read_status(h, &st);
	up = st.uptime_s;
	printf("relay '%s'  pid %d  up %" PRIu64 "d %02" PRIu64 ":%02" PRIu64 ":%02" PRIu64
	       "  workers %u  %s  state %s",
	       h->instance, h->relay_pid, up / 86400, up / 3600 % 24, up / 60 % 60, up % 60,
	       h->n_workers, st.addr, st.state);
	if (st.relay_hb_age_ms >= 0)
		printf("  heartbeat %.1f ms ago\n", st.relay_hb_age_ms);
	else
		printf("  no heartbeat yet\n");
	if (st.control_attached)
		printf("relay-control: attached (pid %d, heartbeat %.1f ms ago)\n", st.control_pid,
		       st.control_hb_age_ms);
	else if (st.control_pid > 0)
		printf("relay-control: NOT attached (pid %d is gone): subscriptions are not "
		       "being served\n",
		       st.control_pid);
	else
		printf("relay-control: NOT attached: subscriptions are not being served\n");
}

static void print_text(const struct rly_shm *s, const struct opts *o, const struct sample *cur,
		       const struct sample *prev)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);
	unsigned slots[RLY_CTR_SLOTS], n = shown_slots(slots);
	char buf[64];

	print_header_text(h);
	if (prev) {
		printf("worker load:");
		for (unsigned w = 0; w < h->n_workers; w++)
			printf("  w%u %.1f%%", w, 100.0 * worker_load(h, cur, prev, w));
		printf("\n");
	}
	printf("%-22s %16s %14s", "counter", "total", prev ? "per second" : "");
	if (o->workers) {
		for (unsigned w = 0; w < h->n_workers; w++) {
			snprintf(buf, sizeof(buf), "w%u", w);
			printf(" %12s", buf);
		}
		printf(" %12s %12s", "mgr", "ctl");
	}
	printf("  description\n");
	for (unsigned k = 0; k < n; k++) {
		unsigned slot = slots[k];
		int gauge = slot_is_gauge(slot);
		const char *desc =
		    slot < RLY_CTR_MAX
			? rly_ctr_desc(slot)
			: rly_wire_err_str((enum rly_wire_err)(slot - RLY_CTR_WIRE_BASE));

		if (cur->sum[slot] == 0 && !o->all)
			continue;
		printf("%-22s %16" PRIu64, slot_name(slot, buf, sizeof(buf)), cur->sum[slot]);
		if (gauge || !prev)
			printf(" %14s", gauge ? "(gauge)" : "");
		else
			printf(" %14.1f", rate_of(cur, prev, slot));
		if (o->workers)
			for (unsigned b = 0; b < h->n_blocks; b++)
				printf(" %12" PRIu64, cur->v[b][slot]);
		printf("  %s\n", desc);
	}
	printf("\n");
	fflush(stdout);
}

static void print_json(const struct rly_shm *s, const struct opts *o, const struct sample *cur,
		       const struct sample *prev)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);
	unsigned slots[RLY_CTR_SLOTS], n = shown_slots(slots);
	struct status st;
	char buf[64];

	read_status(h, &st);
	printf("{\"ts_ns\":%" PRIu64 ",\"instance\":\"%s\",\"pid\":%d,\"uptime_s\":%" PRIu64
	       ",\"workers\":%u,\"addr\":\"%s\",\"state\":\"%s\",\"heartbeat_age_ms\":%.1f,"
	       "\"control\":{\"attached\":%s,\"pid\":%d,\"heartbeat_age_ms\":%.1f},"
	       "\"interval_s\":%.3f,\"counters\":{",
	       rly_real_ns(), h->instance, h->relay_pid, st.uptime_s, h->n_workers, st.addr,
	       st.state, st.relay_hb_age_ms, st.control_attached ? "true" : "false", st.control_pid,
	       st.control_hb_age_ms, prev ? (double)(cur->mono_ns - prev->mono_ns) / 1e9 : 0.0);
	for (unsigned k = 0; k < n; k++) {
		unsigned slot = slots[k];
		int gauge = slot_is_gauge(slot);

		printf("%s\"%s\":{\"%s\":%" PRIu64, k ? "," : "", slot_name(slot, buf, sizeof(buf)),
		       gauge ? "value" : "total", cur->sum[slot]);
		if (!gauge && prev)
			printf(",\"rate\":%.1f", rate_of(cur, prev, slot));
		if (o->workers) {
			printf(",\"blocks\":[");
			for (unsigned b = 0; b < h->n_blocks; b++)
				printf("%s%" PRIu64, b ? "," : "", cur->v[b][slot]);
			printf("]");
		}
		printf("}");
	}
	printf("}");
	if (prev) {
		printf(",\"load\":[");
		for (unsigned w = 0; w < h->n_workers; w++)
			printf("%s%.4f", w ? "," : "", worker_load(h, cur, prev, w));
		printf("]");
	}
	printf("}\n");
	fflush(stdout);
}

/* Is the relay we attached to still the one behind the name? 1 yes, 0 gone (message printed). */
static int still_running(const struct rly_shm *s, const struct stat *attached, int json)
{
	const struct rly_shm_header *h = rly_shm_hdr(s);
	char path[128];
	struct stat now;
	const char *why = NULL;

	snprintf(path, sizeof(path), "/dev/shm%s", s->name);
	if (!rly_pid_alive(h->relay_pid))
		why = "its process is gone";
	else if (__atomic_load_n(&h->state, __ATOMIC_RELAXED) == RLY_SHM_STATE_STOPPING)
		why = "it is stopping";
	else if (stat(path, &now) < 0 || now.st_ino != attached->st_ino)
		why = "its shared-memory object was removed or replaced";
	if (why == NULL)
		return 1;
	if (json)
		printf("{\"instance\":\"%s\",\"stopped\":true,\"pid\":%d}\n", h->instance,
		       h->relay_pid);
	fflush(stdout);
	fprintf(stderr, "relay-stat: relay '%s' (pid %d) stopped while being watched: %s\n",
		h->instance, h->relay_pid, why);
	return 0;
}

static void sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL); /* SIGINT cuts it short, which is what we want */
}

int main(int argc, char **argv)
{
	struct sample *cur, *prev, *tmp;
	struct rly_shm shm;
	struct stat attached;
	struct opts o;
	uint64_t printed = 0;
	int rc, status = 0, have_prev = 0;

	rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;
	if (rly_shm_attach(&shm, o.instance, 0) < 0) {
		fprintf(stderr, "relay-stat: %s\n", rly_err_msg());
		return 1;
	}
	if (fstat(shm.fd, &attached) < 0)
		memset(&attached, 0, sizeof(attached));
	cur = calloc(1, sizeof(*cur));
	prev = calloc(1, sizeof(*prev));
	if (cur == NULL || prev == NULL) {
		fprintf(stderr, "relay-stat: out of memory\n");
		status = 1;
		goto out;
	}
	tool_on_signals(on_signal);

	while (!stop_requested) {
		if (!still_running(&shm, &attached, o.json)) {
			status = 1;
			break;
		}
		take_sample(&shm, cur);
		if (o.json)
			print_json(&shm, &o, cur, have_prev ? prev : NULL);
		else
			print_text(&shm, &o, cur, have_prev ? prev : NULL);
		if (o.count && ++printed >= o.count)
			break;
		tmp = prev;
		prev = cur;
		cur = tmp;
		have_prev = 1;
		sleep_ms(o.interval_ms);
	}
out:
	free(cur);
	free(prev);
	rly_shm_close(&shm);
	return status;
}
