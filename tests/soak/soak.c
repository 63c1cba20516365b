/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-soak: publish/subscribe churn against a real relay for a long time, with an account kept
 * of every message (issue 6). One process, librelay-client only:
 *
 *   relay-soak --relay ADDR --stream NAME --duration S [--pubs N] [--rate MSGS_S] [--subs N]
 *              [--life-ms LO:HI] [--bind-base A.B.C.D --bind-count N] [--garbage-rate N]
 *              [--seed N] [--json]
 *
 * --pubs publishers (each its own chain) send at --rate messages per second in all, with payload
 * sizes drawn from 0 to 1000 bytes. --subs subscriber slots churn: each subscribes (from one of
 * --bind-count local addresses, an ephemeral port), stays for a time drawn from --life-ms, then
 * unsubscribes, and its slot subscribes again at once: with the defaults a subscribe or an
 * unsubscribe every few milliseconds. --garbage-rate malformed datagrams per second (random bytes,
 * cut or corrupted relay datagrams) go to the relay from another socket.
 *
 * The account: a subscription's window runs from its SUB_ACK to the moment it sends UNSUBSCRIBE,
 * less --tail-ms (a message published just before may reach the relay after the removal). Every
 * message a publisher sent inside the window must have reached that subscriber exactly once, or
 * lie in a range it reported lost (on_gap; rly_sub_unsubscribe gives up what is still missing,
 * reason UNSUBSCRIBED). Anything else is a violation; so is a message delivered twice, or one
 * that was never published. At the end: one line of totals (and with --json one JSON object),
 * exit status 0 only without violations and with every subscription and publisher working.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relay/client.h"

#define MAX_PUBS 16u
#define MAX_SUBS 256u
#define MAX_BINDS 256u
#define MAX_GAPS 256u

static volatile int stop;

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

/* A publisher and when it sent each seq (index seq - 1), for the account. */
struct pub {
	rly_pub_t *p;
	uint32_t chain;
	uint8_t pk[RLY_ID_LEN];
	uint64_t *sent_ns;
	uint64_t n, cap;
};

struct gap {
	int pub;
	uint64_t from, to;
};

/* One subscription's life. */
struct sub {
	rly_sub_t *s;
	int active;
	uint64_t ack_ns;   /* SUB_ACK (the window opens) */
	uint64_t end_ns;   /* when it leaves */
	uint64_t first[MAX_PUBS], last[MAX_PUBS]; /* seqs delivered, for each publisher: range */
	uint8_t *got[MAX_PUBS];			  /* delivered seqs, bit per seq from first */
	uint64_t got_cap[MAX_PUBS];
	struct gap gaps[MAX_GAPS];
	unsigned n_gaps;
	uint64_t foreign_msgs;
};

static struct {
	const char *relay, *stream, *bind_base;
	double duration;
	unsigned pubs, subs, bind_count, life_lo, life_hi, garbage_rate, tail_ms;
	double rate;
	int json;
} opt = {.duration = 600, .pubs = 4, .subs = 32, .bind_count = 1, .life_lo = 20, .life_hi = 400,
	 .garbage_rate = 100, .tail_ms = 50, .rate = 2000};

static struct pub pubs[MAX_PUBS];
static struct sub subs[MAX_SUBS];
static uint8_t key[RLY_STREAM_KEY_LEN];

/* Totals. */
static struct {
	uint64_t published, subscriptions, subscribe_failures, unsubscribe_failures;
	uint64_t expected, delivered_in_window, lost_reported, violations, edge_unseen;
	uint64_t duplicates, unknown, garbage_sent, resubscribes, lost_events;
	uint64_t repaired, naks, gap_notices, reordered;
} T;

static int pub_of(const uint8_t *pk, uint32_t chain)
{
	for (unsigned i = 0; i < opt.pubs; i++)
		if (pubs[i].chain == chain && memcmp(pubs[i].pk, pk, RLY_ID_LEN) == 0)
			return (int)i;
	return -1;
}

static void on_message(void *ctx, const struct rly_msg *m)
{
	struct sub *u = ctx;
	int p = pub_of(m->publisher, m->chain);
	uint64_t off;

	if (p < 0) {
		u->foreign_msgs++;
		return;
	}
	if (m->seq == 0 || m->seq > pubs[p].n) {
		T.unknown++;
		return;
	}
	if (u->first[p] == 0)
		u->first[p] = m->seq;
	if (m->seq < u->first[p]) {
		/* Before the first one it saw: it joined the chain later; not in the account. */
		return;
	}
	off = m->seq - u->first[p];
	if (off >= u->got_cap[p] * 8) {
		uint64_t cap = u->got_cap[p] ? u->got_cap[p] * 2 : 4096;
		while (cap * 8 <= off)
			cap *= 2;
		uint8_t *g = realloc(u->got[p], cap);
		if (g == NULL) {
			fprintf(stderr, "relay-soak: out of memory\n");
			exit(1);
		}
		memset(g + u->got_cap[p], 0, cap - u->got_cap[p]);
		u->got[p] = g;
		u->got_cap[p] = cap;
	}
	if (u->got[p][off / 8] & (1u << (off % 8))) {
		T.duplicates++;
		return;
	}
	u->got[p][off / 8] |= (uint8_t)(1u << (off % 8));
	if (m->seq > u->last[p])
		u->last[p] = m->seq;
}

static void on_gap(void *ctx, const struct rly_gap *g)
{
	struct sub *u = ctx;
	int p = pub_of(g->publisher, g->chain);

	if (p < 0 || u->n_gaps == MAX_GAPS)
		return;
	u->gaps[u->n_gaps++] = (struct gap){p, g->from_seq, g->to_seq};
}

static void on_event(void *ctx, enum rly_sub_event ev, unsigned status)
{
	struct sub *u = ctx;

	(void)status;
	if (ev == RLY_SUB_EV_SUBSCRIBED && u->ack_ns == 0)
		u->ack_ns = mono_ns();
	if (ev == RLY_SUB_EV_LOST)
		T.lost_events++;
}

static int in_gaps(const struct sub *u, int p, uint64_t seq)
{
	for (unsigned i = 0; i < u->n_gaps; i++)
		if (u->gaps[i].pub == p && seq >= u->gaps[i].from && seq <= u->gaps[i].to)
			return 1;
	return 0;
}

/* The first seq of publisher @p b sent at or after @p t (b->n + 1 if none). */
static uint64_t first_at(const struct pub *b, uint64_t t)
{
	uint64_t lo = 0, hi = b->n;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (b->sent_ns[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo + 1;
}

static int delivered(const struct sub *u, unsigned p, uint64_t seq)
{
	uint64_t off;

	if (u->first[p] == 0 || seq < u->first[p])
		return 0;
	off = seq - u->first[p];
	return off < u->got_cap[p] * 8 && (u->got[p][off / 8] & (1u << (off % 8)));
}

/* The account of one subscription that just ended: the messages published in its window. */
static void settle(struct sub *u, uint64_t unsub_ns)
{
	const uint64_t close = unsub_ns - (uint64_t)opt.tail_ms * 1000000ull;

	if (u->ack_ns == 0 || close <= u->ack_ns)
		return;
	for (unsigned p = 0; p < opt.pubs; p++) {
		const struct pub *b = &pubs[p];
		const uint64_t lo = first_at(b, u->ack_ns), hi = first_at(b, close + 1);

		for (uint64_t seq = lo; seq < hi; seq++) {
			T.expected++;
			if (delivered(u, p, seq)) {
				T.delivered_in_window++;
			} else if (in_gaps(u, (int)p, seq)) {
				T.lost_reported++;
			} else if (u->first[p] == 0 || seq < u->first[p] || seq > u->last[p]) {
				/* Lost before the first or after the last message this subscription
				 * saw of the chain: nothing after it showed the hole. Only loss on
				 * the path makes one (soak.sh requires none without it). */
				T.edge_unseen++;
			} else {
				if (T.violations < 20)
					fprintf(stderr,
						"relay-soak: violation: publisher %u seq %" PRIu64
						" published %.1f ms into a subscription of %.1f ms"
						" (first seen %" PRIu64 ") neither arrived nor was"
						" reported lost\n",
						p, seq, (double)(b->sent_ns[seq - 1] - u->ack_ns) / 1e6,
						(double)(close - u->ack_ns) / 1e6, u->first[p]);
				T.violations++;
			}
		}
	}
}

static uint32_t bind_ip(unsigned i)
{
	struct in_addr a;
	inet_pton(AF_INET, opt.bind_base, &a);
	return htonl(ntohl(a.s_addr) + i % opt.bind_count);
}

static int sub_start(struct sub *u)
{
	struct rly_sub_opts o;
	char bind[32];
	struct in_addr a = {.s_addr = bind_ip((unsigned)rnd())};

	for (unsigned p = 0; p < MAX_PUBS; p++)
		free(u->got[p]);
	memset(u, 0, sizeof(*u));
	memset(&o, 0, sizeof(o));
	o.relay = opt.relay;
	if (opt.bind_base) {
		snprintf(bind, sizeof(bind), "%s", inet_ntoa(a));
		o.bind = bind;
	}
	memcpy(o.stream_key, key, sizeof(key));
	o.lease_ms = 10000;
	o.no_verify = 1; /* signatures cost 48 us each: the soak is about the relay */
	o.auto_resubscribe = 1;
	o.cb = (struct rly_sub_callbacks){.on_message = on_message, .on_gap = on_gap,
					  .on_event = on_event, .ctx = u};
	if (rly_sub_create(&u->s, &o) < 0 || rly_sub_subscribe(u->s, 3000) < 0) {
		fprintf(stderr, "relay-soak: subscribe: %s\n", rly_client_errmsg());
		rly_sub_free(u->s);
		u->s = NULL;
		T.subscribe_failures++;
		return -1;
	}
	u->active = 1;
	u->end_ns = mono_ns() + (uint64_t)(opt.life_lo + rnd() % (opt.life_hi - opt.life_lo + 1)) *
				    1000000ull;
	T.subscriptions++;
	return 0;
}

static void sub_end(struct sub *u)
{
	struct rly_sub_stats st;
	uint64_t t = mono_ns();

	if (rly_sub_unsubscribe(u->s, 2000) < 0)
		T.unsubscribe_failures++;
	rly_sub_stats(u->s, &st);
	T.resubscribes += st.resubscribes;
	T.repaired += st.repaired;
	T.naks += st.naks;
	T.gap_notices += st.gap_notices;
	T.reordered += st.reordered;
	settle(u, t);
	rly_sub_free(u->s);
	u->s = NULL;
	u->active = 0;
}

/* A malformed datagram: random bytes, or a relay datagram cut short or with a bad field. */
static void garbage(int fd, const struct sockaddr_in *to)
{
	uint8_t b[600];
	size_t len = 8 + rnd() % 400;

	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)rnd();
	switch (rnd() % 4) {
	case 0:
		break; /* random bytes */
	case 1:	/* a DATA header whose length lies */
		rly_wire_put_dgram_hdr(b, RLY_MSG_DATA, (uint16_t)(len + 1 + rnd() % 50), 1);
		break;
	case 2:	/* a NAK of the wrong size */
		rly_wire_put_dgram_hdr(b, RLY_MSG_NAK, (uint16_t)len, 1);
		break;
	default: /* a well-formed NAK header and body with reserved bytes set */
		len = 8 + sizeof(struct rly_wire_nak);
		rly_wire_put_dgram_hdr(b, RLY_MSG_NAK, (uint16_t)len, 1);
		break;
	}
	if (sendto(fd, b, len, MSG_DONTWAIT, (const struct sockaddr *)to, sizeof(*to)) == (ssize_t)len)
		T.garbage_sent++;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(void)
{
	fprintf(stderr, "usage: relay-soak --relay ADDR --stream NAME [--duration S] [--pubs N] "
			"[--rate MSGS_S] [--subs N] [--life-ms LO:HI] [--bind-base A.B.C.D "
			"--bind-count N] [--garbage-rate N] [--tail-ms MS] [--seed N] [--json]\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"relay", 1, 0, 'r'},      {"stream", 1, 0, 's'},	  {"duration", 1, 0, 'd'},
	    {"pubs", 1, 0, 'p'},       {"rate", 1, 0, 'R'},	  {"subs", 1, 0, 'n'},
	    {"life-ms", 1, 0, 'l'},    {"bind-base", 1, 0, 'b'},  {"bind-count", 1, 0, 'c'},
	    {"garbage-rate", 1, 0, 'g'}, {"tail-ms", 1, 0, 't'},  {"seed", 1, 0, 'S'},
	    {"json", 0, 0, 'j'},       {"help", 0, 0, 'h'},	  {0, 0, 0, 0}};
	struct sockaddr_in relay_addr;
	uint64_t start, end, next_pub, pub_gap, next_garbage = 0, garbage_gap = 0, report_at;
	int c, gfd;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'r': opt.relay = optarg; break;
		case 's': opt.stream = optarg; break;
		case 'd': opt.duration = atof(optarg); break;
		case 'p': opt.pubs = (unsigned)atoi(optarg); break;
		case 'R': opt.rate = atof(optarg); break;
		case 'n': opt.subs = (unsigned)atoi(optarg); break;
		case 'l':
			if (sscanf(optarg, "%u:%u", &opt.life_lo, &opt.life_hi) != 2)
				return usage(), 2;
			break;
		case 'b': opt.bind_base = optarg; break;
		case 'c': opt.bind_count = (unsigned)atoi(optarg); break;
		case 'g': opt.garbage_rate = (unsigned)atoi(optarg); break;
		case 't': opt.tail_ms = (unsigned)atoi(optarg); break;
		case 'S': rng = strtoull(optarg, NULL, 0) | 1; break;
		case 'j': opt.json = 1; break;
		default: usage(); return 2;
		}
	}
	if (!opt.relay || !opt.stream || opt.pubs < 1 || opt.pubs > MAX_PUBS || opt.subs < 1 ||
	    opt.subs > MAX_SUBS || opt.life_hi < opt.life_lo || opt.life_lo < 1 || opt.rate <= 0 ||
	    opt.bind_count < 1 || opt.bind_count > MAX_BINDS || opt.duration <= 0) {
		usage();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rly_stream_key_from_name(opt.stream, key);
	if (rly_parse_addr(opt.relay, RLY_WIRE_DEFAULT_PORT, &relay_addr.sin_addr.s_addr,
			   &relay_addr.sin_port) < 0) {
		fprintf(stderr, "relay-soak: %s\n", rly_client_errmsg());
		return 2;
	}
	relay_addr.sin_family = AF_INET;
	gfd = socket(AF_INET, SOCK_DGRAM, 0);

	for (unsigned i = 0; i < opt.pubs; i++) {
		struct rly_pub_opts po;
		struct rly_pub_stats ps;

		memset(&po, 0, sizeof(po));
		po.relay = opt.relay;
		memcpy(po.stream_key, key, sizeof(key));
		po.msgs_per_dgram = 1 + (unsigned)(rnd() % 4);
		if (rly_pub_create(&pubs[i].p, &po) < 0) {
			fprintf(stderr, "relay-soak: publisher: %s\n", rly_client_errmsg());
			return 1;
		}
		rly_pub_stats(pubs[i].p, &ps);
		pubs[i].chain = ps.chain;
		memcpy(pubs[i].pk, rly_pub_publisher(pubs[i].p), RLY_ID_LEN);
		pubs[i].cap = (uint64_t)(opt.rate * opt.duration / opt.pubs * 1.2) + 1024;
		pubs[i].sent_ns = calloc(pubs[i].cap, sizeof(uint64_t));
		if (pubs[i].sent_ns == NULL)
			return 1;
	}
	for (unsigned i = 0; i < opt.subs; i++)
		sub_start(&subs[i]);

	start = mono_ns();
	end = start + (uint64_t)(opt.duration * 1e9);
	pub_gap = (uint64_t)(1e9 / opt.rate);
	next_pub = start;
	if (opt.garbage_rate)
		garbage_gap = 1000000000ull / opt.garbage_rate;
	report_at = start + 10000000000ull;
	while (!stop) {
		uint64_t now = mono_ns();

		if (now >= end)
			break;
		/* Publish what is due, each message from a random publisher with a random size. */
		for (unsigned k = 0; next_pub <= now && k < 64; k++, next_pub += pub_gap) {
			unsigned p = (unsigned)(rnd() % opt.pubs);
			uint8_t payload[1000];
			size_t len = rnd() % sizeof(payload);
			struct pub *b = &pubs[p];

			if (b->n == b->cap)
				continue;
			memset(payload, (int)(b->n & 0xff), len);
			/* -EAGAIN: not queued (queue and socket full), try later; other results
			 * queued it (another -errno is about an earlier datagram). */
			if (rly_pub_offer(b->p, payload, len) == -EAGAIN) {
				rly_pub_flush(b->p);
				continue;
			}
			b->sent_ns[b->n++] = mono_ns();
			T.published++;
		}
		for (unsigned p = 0; p < opt.pubs; p++)
			rly_pub_flush(pubs[p].p);
		if (garbage_gap && now >= next_garbage) {
			garbage(gfd, &relay_addr);
			next_garbage = now + garbage_gap;
		}
		/* Receive; a subscription whose time is up leaves and its slot starts another. */
		for (unsigned i = 0; i < opt.subs; i++) {
			struct sub *u = &subs[i];
			if (!u->active) {
				sub_start(u);
				continue;
			}
			rly_sub_poll(u->s, 0);
			if (mono_ns() >= u->end_ns) {
				sub_end(u);
				sub_start(u);
			}
		}
		if (now >= report_at) {
			fprintf(stderr,
				"relay-soak: %.0f s: %" PRIu64 " published, %" PRIu64
				" subscriptions, %" PRIu64 " expected, %" PRIu64 " violations\n",
				(double)(now - start) / 1e9, T.published, T.subscriptions, T.expected,
				T.violations);
			report_at += 10000000000ull;
		}
		usleep(200);
	}
	for (unsigned i = 0; i < opt.subs; i++)
		if (subs[i].active)
			sub_end(&subs[i]);
	for (unsigned p = 0; p < opt.pubs; p++)
		rly_pub_free(pubs[p].p);

	printf("relay-soak: %.0f s, %u publishers at %.0f msg/s, %u subscriber slots living %u-%u "
	       "ms: %" PRIu64 " published, %" PRIu64 " subscriptions (%" PRIu64
	       " failed to subscribe, %" PRIu64 " to unsubscribe), %" PRIu64
	       " malformed datagrams sent; in the subscriptions' windows %" PRIu64
	       " messages expected: %" PRIu64 " delivered, %" PRIu64 " reported lost, %" PRIu64
	       " lost unseen at a subscription's edge, %" PRIu64
	       " neither (violations); %" PRIu64 " duplicates, %" PRIu64
	       " never published; %" PRIu64 " repaired, %" PRIu64 " NAKs, %" PRIu64
	       " GAPs, %" PRIu64 " delivered after waiting, %" PRIu64 " lost sessions\n",
	       opt.duration, opt.pubs, opt.rate, opt.subs, opt.life_lo, opt.life_hi, T.published,
	       T.subscriptions, T.subscribe_failures, T.unsubscribe_failures, T.garbage_sent,
	       T.expected, T.delivered_in_window, T.lost_reported, T.edge_unseen, T.violations,
	       T.duplicates, T.unknown, T.repaired, T.naks, T.gap_notices, T.reordered, T.lost_events);
	if (opt.json)
		printf("{\"published\":%" PRIu64 ",\"subscriptions\":%" PRIu64
		       ",\"subscribe_failures\":%" PRIu64 ",\"unsubscribe_failures\":%" PRIu64
		       ",\"garbage_sent\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"delivered\":%" PRIu64
		       ",\"lost_reported\":%" PRIu64 ",\"edge_unseen\":%" PRIu64
		       ",\"violations\":%" PRIu64
		       ",\"duplicates\":%" PRIu64 ",\"unknown\":%" PRIu64 ",\"repaired\":%" PRIu64
		       ",\"naks\":%" PRIu64 ",\"gap_notices\":%" PRIu64 ",\"lost_sessions\":%" PRIu64
		       "}\n",
		       T.published, T.subscriptions, T.subscribe_failures, T.unsubscribe_failures,
		       T.garbage_sent, T.expected, T.delivered_in_window, T.lost_reported,
		       T.edge_unseen, T.violations, T.duplicates, T.unknown, T.repaired, T.naks, T.gap_notices,
		       T.lost_events);
	return T.violations || T.duplicates || T.unknown || T.subscribe_failures ||
			       T.expected == 0
		   ? 1
		   : 0;
}
