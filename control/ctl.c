/* SPDX-License-Identifier: Apache-2.0 */
#include "ctl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "control/keyroute.h"
#include "control/registry_svc.h"
#include "control/secret.h"
#include "security/registry.h"

#define PUNT_BURST  32u
#define EVENT_BURST 64u
#define NS_PER_MS   1000000ull
/* How often a missing relay is looked for, and how often a present one's pid is checked. */
#define ATTACH_RETRY_NS (200 * NS_PER_MS)
#define LIVENESS_NS	(100 * NS_PER_MS)

enum phase {
	DETACHED,     /* no relay mapped: looking for one every ATTACH_RETRY_NS */
	WAIT_RUNNING, /* mapped and claimed, relay not forwarding yet */
	RUNNING,      /* resync sent; serving */
};

struct rly_ctl {
	char instance[RLY_INSTANCE_MAX + 1];
	int exit_with_relay;
	struct rly_ctl_link link;
	struct rly_ctl_subs *subs;
	struct rly_ctl_peers *peers;
	enum phase phase;
	int exit_code;
	uint64_t next_attach_ns;
	uint64_t next_liveness_ns;
	/* The relay we lost, so that while it lingers in STOPPING we neither re-attach to it nor
	 * report it lost again at every retry. */
	int lost;
	int32_t lost_pid;
	uint64_t lost_start_ns;
	struct rly_ctl_registry *registry; /* NULL without --registry */
	int admission_due; /* push publisher admission once the table is resynchronised */
	uint64_t punt_full_seen; /* the workers' DROP_PUNT_FULL sum at the last look */
	struct rly_event ev[EVENT_BURST];
	struct rly_pkt_rec punt[PUNT_BURST];
};

static int io_send(void *ctx, struct rly_pkt_rec *rec)
{
	return rly_ctl_link_send(ctx, rec);
}

static int io_tx_crowded(void *ctx)
{
	return rly_ctl_link_tx_crowded(ctx);
}

static int io_submit(void *ctx, struct rly_cmd *cmd)
{
	return rly_ctl_link_submit(ctx, cmd);
}

/* Peering and the subscription service meet here: each learns of the other only through these. */
static void io_on_subscribed(void *ctx, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
			     uint64_t now_ms)
{
	struct rly_ctl *c = ctx;
	rly_ctl_peers_on_subscribed(c->peers, key, partition, now_ms);
}

static void io_on_dump_peer(void *ctx, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
			    const struct rly_endpoint *ep, uint64_t now_ms)
{
	struct rly_ctl *c = ctx;
	rly_ctl_peers_on_dump_peer(c->peers, key, partition, ep, now_ms);
}

static int peers_send(void *ctx, struct rly_pkt_rec *rec)
{
	struct rly_ctl *c = ctx;
	return rly_ctl_link_send(&c->link, rec);
}

static int peers_link(void *ctx, int add, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
		      const struct rly_endpoint *ep)
{
	struct rly_ctl *c = ctx;
	return rly_ctl_subs_peer_link(c->subs, add, key, partition, ep);
}

static void peers_key_request(void *ctx, const struct rly_endpoint *from,
			      const struct rly_wire_key_request *r, uint64_t now_ms)
{
	struct rly_ctl *c = ctx;
	rly_ctl_keys_on_peer_request(rly_ctl_subs_keys(c->subs), from, r, now_ms);
}

static void peers_key_response(void *ctx, const struct rly_pkt_rec *rec,
			       const struct rly_endpoint *from, const struct rly_wire_key_response *r)
{
	struct rly_ctl *c = ctx;
	rly_ctl_keys_on_peer_response(rly_ctl_subs_keys(c->subs), rec, from, r);
}

static unsigned keys_to_peers(void *ctx, const struct rly_wire_key_request *r,
			      const struct rly_endpoint *not)
{
	struct rly_ctl *c = ctx;
	return rly_ctl_peers_key_forward(c->peers, r, not);
}

static void peers_foreach_local(void *ctx,
				void (*cb)(void *arg, const uint8_t key[RLY_STREAM_KEY_LEN],
					   uint32_t partition),
				void *arg)
{
	struct rly_ctl *c = ctx;
	rly_ctl_subs_foreach_stream(c->subs, cb, arg);
}

int rly_ctl_create(struct rly_ctl **out, const struct rly_ctl_opts *o)
{
	struct rly_ctl_subs_io io;
	char path[PATH_MAX];
	uint8_t secret[RLY_CTL_SECRET_LEN];
	struct rly_ctl *c;
	int rc, created;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return rly_err_set(ENOMEM, "allocate relay-control");
	snprintf(c->instance, sizeof(c->instance), "%s", o->instance);
	c->exit_with_relay = o->exit_with_relay;
	rly_ctl_link_init(&c->link);

	if (o->secret_file)
		snprintf(path, sizeof(path), "%s", o->secret_file);
	else
		snprintf(path, sizeof(path), RLY_CTL_SECRET_DIR "/%s.secret", o->instance);
	rc = rly_ctl_secret_load(path, secret, &created);
	if (rc < 0)
		goto fail;
	if (created) {
		struct rly_ctl_logline l;
		if (rly_ctl_log_begin(&l, RLY_LOG_INFO, "secret_created")) {
			rly_ctl_log_str(&l, "path", path);
			rly_ctl_log_end(&l);
		}
	}

	memset(&io, 0, sizeof(io));
	io.ctx = &c->link;
	io.send = io_send;
	io.tx_crowded = io_tx_crowded;
	io.submit = io_submit;
	rc = rly_ctl_subs_create(&c->subs, &o->subs, secret, &io);
	if (rc == 0) {
		struct rly_ctl_peers_io pio = {.ctx = c,
					       .send = peers_send,
					       .link = peers_link,
					       .key_request = peers_key_request,
					       .key_response = peers_key_response,
					       .foreach_local = peers_foreach_local};
		rc = rly_ctl_peers_create(&c->peers, &o->peers, secret, &pio);
	}
	sodium_memzero(secret, sizeof(secret));
	if (rc < 0)
		goto fail;
	if (rly_ctl_peers_enabled(c->peers)) {
		rly_ctl_subs_set_peering(c->subs, io_on_subscribed, io_on_dump_peer, c);
		rly_ctl_keys_set_peers(rly_ctl_subs_keys(c->subs), keys_to_peers, c);
	}
	if (o->registry_dir) {
		rc = rly_ctl_registry_open(&c->registry, o->registry_dir);
		if (rc < 0)
			goto fail;
		rly_ctl_subs_set_registry(c->subs, rly_ctl_registry_get(c->registry), NULL);
	}
	*out = c;
	return 0;
fail:
	rly_ctl_free(c);
	return rc;
}

void rly_ctl_free(struct rly_ctl *c)
{
	if (!c)
		return;
	if (c->link.attached) {
		rly_ctl_peers_shutdown(c->peers);
		rly_ctl_log_msg(RLY_LOG_INFO, "detached", "released the relay instance");
	}
	/* Peering counts into the shm: it goes before the link unmaps it. */
	rly_ctl_peers_free(c->peers);
	rly_ctl_link_close(&c->link);
	rly_ctl_subs_free(c->subs);
	rly_ctl_registry_close(c->registry);
	free(c);
}

static void log_attached(struct rly_ctl *c)
{
	const struct rly_shm_header *h = rly_shm_hdr(&c->link.shm);
	struct rly_ctl_logline l;

	if (rly_ctl_log_begin(&l, RLY_LOG_INFO, c->lost ? "relay_back" : "attached")) {
		rly_ctl_log_i64(&l, "relay_pid", h->relay_pid);
		rly_ctl_log_u64(&l, "workers", h->n_workers);
		rly_ctl_log_u64(&l, "ports", h->n_ports);
		rly_ctl_log_str(&l, "shm", c->link.shm.name);
		rly_ctl_log_end(&l);
	}
	/* A relay that came back is also simply attached: keep "attached" greppable on its own. */
	if (c->lost && rly_ctl_log_begin(&l, RLY_LOG_INFO, "attached")) {
		rly_ctl_log_i64(&l, "relay_pid", h->relay_pid);
		rly_ctl_log_str(&l, "shm", c->link.shm.name);
		rly_ctl_log_end(&l);
	}
}

/* Attach and claim; a relay incarnation we already lost is let go again without a word. */
static int try_attach(struct rly_ctl *c, uint64_t now_ns)
{
	const struct rly_shm_header *h;
	int rc;

	c->next_attach_ns = now_ns + ATTACH_RETRY_NS;
	rc = rly_ctl_link_attach(&c->link, c->instance);
	if (rc < 0)
		return rc;
	h = rly_shm_hdr(&c->link.shm);
	if (c->lost && h->relay_pid == c->lost_pid && h->start_realtime_ns == c->lost_start_ns) {
		rly_ctl_link_detach(&c->link);
		return -ESRCH;
	}
	rly_ctl_subs_set_counters(c->subs, c->link.ctr);
	if (c->registry)
		rly_ctl_registry_set_counters(c->registry, c->link.ctr);
	/* A new relay knows nothing of admission; one that outlived us keeps lists we re-push. */
	c->admission_due = 1;
	log_attached(c);
	c->phase = WAIT_RUNNING;
	c->next_liveness_ns = now_ns + LIVENESS_NS;
	rly_ctl_link_heartbeat(&c->link, now_ns);
	return 0;
}

int rly_ctl_start(struct rly_ctl *c, uint64_t mono_ns)
{
	int rc = try_attach(c, mono_ns);

	/* Being created (empty object): the relay is on its way, wait for it like for a restart. */
	if (rc == -EAGAIN)
		return 0;
	/* The link's messages already name the instance and say what to do. */
	return rc < 0 ? rc : 0;
}

static int relay_lost(struct rly_ctl *c, enum rly_ctl_relay_state st, uint64_t now_ns)
{
	const struct rly_shm_header *h = rly_shm_hdr(&c->link.shm);
	struct rly_ctl_logline l;

	c->lost = 1;
	c->lost_pid = h->relay_pid;
	c->lost_start_ns = h->start_realtime_ns;
	if (rly_ctl_log_begin(&l, RLY_LOG_WARN, "relay_lost")) {
		rly_ctl_log_i64(&l, "relay_pid", h->relay_pid);
		rly_ctl_log_str(&l, "reason",
				st == RLY_CTL_RELAY_STOPPING ? "relay is stopping"
							     : "relay process is gone");
		rly_ctl_log_u64(&l, "subscriptions", rly_ctl_subs_count(c->subs));
		rly_ctl_log_end(&l);
	}
	rly_ctl_subs_on_detach(c->subs);
	rly_ctl_peers_detach(c->peers);
	rly_ctl_link_detach(&c->link);
	rly_ctl_subs_set_counters(c->subs, c->link.ctr);
	if (c->registry)
		rly_ctl_registry_set_counters(c->registry, c->link.ctr);
	rly_ctl_log_msg(RLY_LOG_INFO, "detached",
			c->exit_with_relay ? "exiting with the relay (--exit-with-relay)"
					   : "waiting for the relay instance to come back");
	c->phase = DETACHED;
	c->next_attach_ns = now_ns + ATTACH_RETRY_NS;
	if (c->exit_with_relay) {
		c->exit_code = st == RLY_CTL_RELAY_STOPPING ? 0 : 1;
		return RLY_CTL_STOP;
	}
	return 0;
}

static unsigned drain_events(struct rly_ctl *c, uint64_t now_ms)
{
	unsigned n = rly_ctl_link_events(&c->link, c->ev, EVENT_BURST);

	for (unsigned i = 0; i < n; i++)
		rly_ctl_subs_on_event(c->subs, &c->ev[i], now_ms);
	return n;
}

static unsigned drain_punts(struct rly_ctl *c, uint64_t now_ms)
{
	unsigned n_ports = rly_shm_hdr(&c->link.shm)->n_ports;
	unsigned total = 0;

	for (unsigned w = 0; w < c->link.n_workers; w++) {
		unsigned n = rly_ctl_link_punts(&c->link, w, c->punt, PUNT_BURST);
		for (unsigned i = 0; i < n; i++) {
			/* A port the relay does not have cannot be answered through. */
			if (n_ports && c->punt[i].port_id >= n_ports) {
				rly_ctl_link_count(&c->link, RLY_CTR_CTL_BAD_RECORD);
				continue;
			}
			if (!rly_ctl_peers_on_packet(c->peers, &c->punt[i], now_ms))
				rly_ctl_subs_on_packet(c->subs, &c->punt[i], now_ms);
		}
		total += n;
	}
	return total;
}

int rly_ctl_poll_once(struct rly_ctl *c, uint64_t mono_ns, unsigned *work)
{
	uint64_t now_ms = mono_ns / NS_PER_MS;
	enum rly_ctl_relay_state st;
	int check_pid, rc;

	*work = 0;
	if (c->phase == DETACHED) {
		if (mono_ns < c->next_attach_ns)
			return 0;
		rc = try_attach(c, mono_ns);
		if (rc == -ENOENT || rc == -ESRCH || rc == -EAGAIN)
			return 0; /* not back yet */
		if (rc < 0)
			return rly_err_wrap("re-attach after the relay restarted");
		*work = 1;
	}

	rly_ctl_link_heartbeat(&c->link, mono_ns);
	check_pid = mono_ns >= c->next_liveness_ns;
	if (check_pid)
		c->next_liveness_ns = mono_ns + LIVENESS_NS;
	st = rly_ctl_link_relay_state(&c->link, check_pid);
	if (st == RLY_CTL_RELAY_GONE || st == RLY_CTL_RELAY_STOPPING) {
		*work += 1;
		return relay_lost(c, st, mono_ns);
	}

	if (c->phase == WAIT_RUNNING) {
		if (st != RLY_CTL_RELAY_RUNNING)
			return 0;
		/* Answers to a previous relay-control's commands: nothing of ours waits for them.
		 */
		while (rly_ctl_link_events(&c->link, c->ev, EVENT_BURST) > 0)
			;
		rc = rly_ctl_subs_resync_begin(c->subs, now_ms);
		if (rc < 0)
			return rly_err_set(-rc, "start the resync");
		rc = rly_ctl_peers_attach(c->peers, &c->link.shm, c->link.ctr, now_ms);
		if (rc < 0)
			return rly_err_wrap("start peering");
		c->phase = RUNNING;
		*work += 1;
	}

	*work += drain_events(c, now_ms);
	/* While the table is rebuilt, packets wait in the punt rings: a heartbeat handled now would
	 * be told NOT_SUBSCRIBED although the dump is about to list it. */
	if (rly_ctl_subs_ready(c->subs)) {
		if (c->registry && rly_ctl_registry_poll(c->registry, rly_registry_now_s())) {
			/* A file changed or a grant expired: check everyone against the new answers. */
			rly_ctl_subs_set_registry(c->subs, rly_ctl_registry_get(c->registry), NULL);
			*work += rly_ctl_subs_revalidate(c->subs);
			c->admission_due = 1;
		}
		if (c->admission_due) {
			rc = rly_ctl_subs_push_admission(
			    c->subs, c->registry ? rly_ctl_registry_get(c->registry) : NULL);
			if (rc < 0)
				return rly_err_set(-rc, "push publisher admission to the dataplane");
			c->admission_due = 0;
			*work += 1;
		}
		*work += drain_punts(c, now_ms);
	}
	if (c->link.attached) {
		/* Control datagrams dropped at a full punt ring: heartbeats may be among them, so
		 * leases get a grace rather than end (a new relay's counters start again at 0). */
		uint64_t full = rly_shm_ctr_sum(&c->link.shm, RLY_CTR_DROP_PUNT_FULL);
		if (full > c->punt_full_seen)
			rly_ctl_subs_note_control_loss(c->subs, now_ms);
		c->punt_full_seen = full;
	}
	*work += rly_ctl_subs_tick(c->subs, now_ms);
	if (c->phase == RUNNING && rly_ctl_subs_ready(c->subs))
		*work += rly_ctl_peers_tick(c->peers, now_ms);
	*work += rly_ctl_link_flush(&c->link);
	return 0;
}

int rly_ctl_attached(const struct rly_ctl *c)
{
	return c->link.attached;
}

int rly_ctl_exit_code(const struct rly_ctl *c)
{
	return c->exit_code;
}

void rly_ctl_count_idle(struct rly_ctl *c)
{
	if (c->link.attached)
		rly_ctl_link_count(&c->link, RLY_CTR_IDLE_SLEEPS);
}

struct rly_ctl_subs *rly_ctl_subs(struct rly_ctl *c)
{
	return c->subs;
}

struct rly_ctl_peers *rly_ctl_peers(struct rly_ctl *c)
{
	return c->peers;
}
