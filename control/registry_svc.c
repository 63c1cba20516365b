/* SPDX-License-Identifier: Apache-2.0 */
#include "control/registry_svc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "control/log.h"
#include "security/registry.h"

/*
 * A change is applied once the directory has been quiet for REGISTRY_QUIET_MS, or at the latest
 * REGISTRY_MAX_WAIT_MS after the first event: a file rewritten in place (truncated, then written)
 * is read whole, not in between, which would revoke every subscriber it grants for a moment.
 */
#define REGISTRY_QUIET_MS 200u
#define REGISTRY_MAX_WAIT_MS 2000u

struct rly_ctl_registry {
	char dir[PATH_MAX];
	int ifd;
	struct rly_registry *reg;
	uint64_t next_expiry; /* unix s, 0: none */
	uint64_t dirty_since_ns; /* CLOCK_MONOTONIC of the first event not yet applied; 0: none */
	uint64_t last_event_ns;
	struct rly_ctr_block *ctr;
	struct rly_ctr_block own_ctr;
};

static void bump(struct rly_ctl_registry *r, unsigned id)
{
	uint64_t v = __atomic_load_n(&r->ctr->v[id], __ATOMIC_RELAXED);
	__atomic_store_n(&r->ctr->v[id], v + 1, __ATOMIC_RELAXED);
}

static void on_refused(void *ctx, const char *file, unsigned line, const char *why)
{
	struct rly_ctl_registry *r = ctx;
	struct rly_ctl_logline l;

	bump(r, RLY_CTR_CTL_REGISTRY_REFUSED);
	if (rly_ctl_log_begin(&l, RLY_LOG_WARN, "registry_refused")) {
		rly_ctl_log_str(&l, "file", file);
		rly_ctl_log_u64(&l, "line", line);
		rly_ctl_log_str(&l, "reason", why);
		rly_ctl_log_end(&l);
	}
}

/* Load the directory into a new registry; the old one stays in force if that fails. */
static int reload(struct rly_ctl_registry *r, uint64_t now_s)
{
	struct rly_registry *fresh = NULL;
	struct rly_ctl_logline l;
	int n = rly_registry_load(&fresh, r->dir, on_refused, r);

	if (n < 0) {
		if (rly_ctl_log_begin(&l, RLY_LOG_ERROR, "registry_unreadable")) {
			rly_ctl_log_str(&l, "dir", r->dir);
			rly_ctl_log_str(&l, "error", rly_err_msg());
			rly_ctl_log_str(&l, "msg", "keeping the registry loaded before");
			rly_ctl_log_end(&l);
		}
		return n;
	}
	rly_registry_free(r->reg);
	r->reg = fresh;
	r->next_expiry = rly_registry_next_expiry(fresh, now_s);
	bump(r, RLY_CTR_CTL_REGISTRY_LOADS);
	if (rly_ctl_log_begin(&l, RLY_LOG_INFO, "registry_loaded")) {
		rly_ctl_log_str(&l, "dir", r->dir);
		rly_ctl_log_u64(&l, "grants", (uint64_t)n);
		rly_ctl_log_u64(&l, "next_expiry", r->next_expiry);
		rly_ctl_log_end(&l);
	}
	return 0;
}

int rly_ctl_registry_open(struct rly_ctl_registry **out, const char *dir)
{
	struct rly_ctl_registry *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return rly_err_set(ENOMEM, "registry: out of memory");
	if (snprintf(r->dir, sizeof(r->dir), "%s", dir) >= (int)sizeof(r->dir)) {
		free(r);
		return rly_err_set(ENAMETOOLONG, "--registry %s: path too long", dir);
	}
	r->ctr = &r->own_ctr;
	r->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (r->ifd < 0 ||
	    inotify_add_watch(r->ifd, dir,
			      IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
				  IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
		rc = rly_err_set(errno, "--registry %s: cannot watch it: %s", dir, strerror(errno));
		if (r->ifd >= 0)
			close(r->ifd);
		free(r);
		return rc;
	}
	rc = reload(r, rly_registry_now_s());
	if (rc < 0) {
		rly_err_wrap("--registry %s", dir);
		close(r->ifd);
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

void rly_ctl_registry_close(struct rly_ctl_registry *r)
{
	if (r == NULL)
		return;
	if (r->ifd >= 0)
		close(r->ifd);
	rly_registry_free(r->reg);
	free(r);
}

const struct rly_registry *rly_ctl_registry_get(const struct rly_ctl_registry *r)
{
	return r->reg;
}

void rly_ctl_registry_set_counters(struct rly_ctl_registry *r, struct rly_ctr_block *block)
{
	r->ctr = block ? block : &r->own_ctr;
}

int rly_ctl_registry_poll(struct rly_ctl_registry *r, uint64_t now_s)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int touched = 0;
	ssize_t n;

	/* Editors and copies make several events per change: drain them all, reload once the
	 * directory is quiet. */
	while ((n = read(r->ifd, buf, sizeof(buf))) > 0)
		touched = 1;
	if (touched) {
		uint64_t now = rly_mono_ns();
		if (r->dirty_since_ns == 0)
			r->dirty_since_ns = now;
		r->last_event_ns = now;
	}
	if (r->dirty_since_ns) {
		uint64_t now = rly_mono_ns();
		if (now - r->last_event_ns >= REGISTRY_QUIET_MS * 1000000ull ||
		    now - r->dirty_since_ns >= REGISTRY_MAX_WAIT_MS * 1000000ull) {
			r->dirty_since_ns = 0;
			reload(r, now_s);
			return 1;
		}
	}
	if (r->next_expiry && now_s >= r->next_expiry) {
		r->next_expiry = rly_registry_next_expiry(r->reg, now_s);
		return 1;
	}
	return 0;
}
