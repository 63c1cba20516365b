/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An encrypting publisher's group keys and its key holder (docs/encryption.md, sections 1, 3
 * and 4). The holder is an ordinary subscription object (client/sub.c, client/session.c) on
 * (stream, RLY_KEY_HOLDER_PARTITION) with the publisher's identity, so registration, heartbeats,
 * lease loss and re-registration are the subscriber's code, tested there; what this file adds is
 * the answer to KEY_REQUEST, the ratchet, rekeying and watching the registry.
 *
 * Nothing here runs per message: offer and flush call pub_keys_service, which returns after one
 * comparison unless a millisecond has passed, and then costs one recvmmsg on the holder socket
 * (plus, once a second, a look at the registry directory).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client/pub.h"
#include "client/sub.h"
#include "common/clock.h"
#include "common/err.h"
#include "security/e2e.h"
#include "security/registry.h"

#define MS (1000000ull)

static void key_event(rly_pub_t *p, enum rly_key_event ev, const uint8_t *who, uint32_t key_id)
{
	if (p->keys.on_key_event)
		p->keys.on_key_event(p->keys.ctx, ev, who, key_id);
}

static void set_key_id(rly_pub_t *p, uint32_t key_id)
{
	p->keys.key_id = key_id;
	p->st.key_id = key_id;
	rly_be32_store(&p->tmpl.key_id, key_id);
}

/*
 * A new generation: fresh randomness, nobody holds it yet. Who held the old one is remembered
 * (`prev`) for one generation: they were subscribed before it started, so when they ask (the
 * registry permitting) they get the step they ask for without a rotate, and a rekey costs them
 * no message. Only requesters new to the stream make the holder rotate.
 */
static int rekey(rly_pub_t *p, const uint8_t *who)
{
	struct pub_keys *k = &p->keys;
	uint16_t gen = RLY_KEY_ID_GEN(k->key_id);
	void *prev;

	if (gen == UINT16_MAX)
		return rly_err_set(EOVERFLOW,
				   "publisher chain %u used all 65535 key generations: start a new "
				   "publisher (a new chain)",
				   p->st.chain);
	prev = realloc(k->prev, (size_t)(k->n_granted ? k->n_granted : 1) * RLY_ID_LEN);
	if (prev == NULL)
		return -ENOMEM;
	k->prev = prev;
	for (uint32_t i = 0; i < k->n_granted; i++)
		memcpy(k->prev[i], k->granted[i].who, RLY_ID_LEN);
	k->n_prev = k->n_granted;
	randombytes_buf(k->key, sizeof(k->key));
	memcpy(k->gen_key, k->key, sizeof(k->key));
	k->n_granted = 0;
	set_key_id(p, RLY_KEY_ID(gen + 1, 0));
	p->st.rekeys++;
	key_event(p, RLY_KEY_EV_REKEYED, who, k->key_id);
	return 0;
}

static int rotate(rly_pub_t *p)
{
	struct pub_keys *k = &p->keys;

	if (RLY_KEY_ID_STEP(k->key_id) == UINT16_MAX)
		return rekey(p, NULL);
	rly_group_key_ratchet(k->key);
	set_key_id(p, k->key_id + 1);
	p->st.rotations++;
	key_event(p, RLY_KEY_EV_ROTATED, NULL, k->key_id);
	return 0;
}

static struct pub_grant *granted_find(const struct pub_keys *k, const uint8_t who[RLY_ID_LEN])
{
	for (uint32_t i = 0; i < k->n_granted; i++)
		if (memcmp(k->granted[i].who, who, RLY_ID_LEN) == 0)
			return &k->granted[i];
	return NULL;
}

static int prev_find(const struct pub_keys *k, const uint8_t who[RLY_ID_LEN])
{
	for (uint32_t i = 0; i < k->n_prev; i++)
		if (memcmp(k->prev[i], who, RLY_ID_LEN) == 0)
			return 1;
	return 0;
}

static struct pub_grant *granted_add(struct pub_keys *k, const uint8_t who[RLY_ID_LEN],
				     uint16_t from_step)
{
	struct pub_grant *g;

	if (k->n_granted == k->cap_granted) {
		uint32_t cap = k->cap_granted ? 2 * k->cap_granted : 16;
		void *n = realloc(k->granted, (size_t)cap * sizeof(*k->granted));
		if (n == NULL)
			return NULL;
		k->granted = n;
		k->cap_granted = cap;
	}
	g = &k->granted[k->n_granted++];
	memcpy(g->who, who, RLY_ID_LEN);
	g->from_step = from_step;
	return g;
}

/* key(current generation, @p step) into @p out, from the generation's first key. */
static void key_at_step(const struct pub_keys *k, uint16_t step, uint8_t out[RLY_GROUP_KEY_LEN])
{
	memcpy(out, k->gen_key, RLY_GROUP_KEY_LEN);
	for (unsigned i = 0; i < step; i++)
		rly_group_key_ratchet(out);
}

static void send_response(rly_pub_t *p, struct rly_wire_key_response *r)
{
	uint8_t buf[sizeof(struct rly_wire_dgram_hdr) + sizeof(*r)];
	int len;

	rly_key_response_sign(r, &p->id);
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_KEY_RESPONSE, r);
	/* A lost answer is the requester's to retry; it gets the same key again. */
	if (len > 0)
		(void)send(rly_sub_fd(p->keys.holder), buf, (size_t)len, MSG_DONTWAIT);
}

/*
 * One KEY_REQUEST forwarded by the relay. The relay has checked the token and that the requester
 * proved its identity to it; we check again what we can check ourselves (the requester's
 * signature), and decide with our own registry, since the relay is not trusted with keys.
 */
static void on_key_request(void *ctx, const struct rly_wire_key_request *q)
{
	rly_pub_t *p = ctx;
	struct pub_keys *k = &p->keys;
	struct rly_wire_key_response r;
	uint8_t key[RLY_GROUP_KEY_LEN];
	uint32_t asked = rly_be32_load(&q->key_id), key_id;
	uint16_t cur_step, from;
	struct pub_grant *g;

	/* Another publisher object with our identity owns other chains: not ours to answer. */
	if (memcmp(q->stream_key, p->tmpl.stream_key, RLY_STREAM_KEY_LEN) != 0 ||
	    q->partition != p->tmpl.partition || q->chain != p->tmpl.chain ||
	    memcmp(q->publisher, p->id.pk, RLY_ID_LEN) != 0 || !rly_key_request_verify(q))
		return;
	p->st.key_requests++;
	k->answered++;

	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, q->stream_key, RLY_STREAM_KEY_LEN);
	r.partition = q->partition;
	r.chain = q->chain;
	r.request_id = q->request_id;
	memcpy(r.publisher, p->id.pk, RLY_ID_LEN);
	memcpy(r.requester, q->requester, RLY_ID_LEN);

	if (!rly_registry_allows(k->reg, p->tmpl.stream_key, q->requester, RLY_PERM_SUBSCRIBE,
				 (uint64_t)time(NULL))) {
		rly_be16_store(&r.status, RLY_SUB_DENIED);
		send_response(p, &r);
		p->st.keys_denied++;
		key_event(p, RLY_KEY_EV_DENIED, q->requester, asked);
		return;
	}
	/*
	 * The first step of this generation the requester may read: any with key_history; from
	 * the start for one who held the previous generation (it was there before this one
	 * began); from where it first got a key for one asking again (a lost answer, or a step it
	 * skipped); and for a newcomer, from a new step: the holder rotates first, so it reads
	 * nothing published before it asked. The requester is remembered before it holds a key: a
	 * revocation is only noticed for those on the list. Without room, no answer rather than
	 * losing track of one.
	 */
	g = granted_find(k, q->requester);
	if (g == NULL) {
		int newcomer = !k->key_history && !prev_find(k, q->requester);
		if (newcomer && rotate(p) < 0)
			return;
		g = granted_add(k, q->requester,
				newcomer ? RLY_KEY_ID_STEP(k->key_id) : (uint16_t)0);
		if (g == NULL)
			return;
	}
	/* The step asked for when it is one the requester may read, else the current one. */
	cur_step = RLY_KEY_ID_STEP(k->key_id);
	from = g->from_step;
	key_id = k->key_id;
	if (asked != 0 && RLY_KEY_ID_GEN(asked) == RLY_KEY_ID_GEN(k->key_id) &&
	    RLY_KEY_ID_STEP(asked) < cur_step && RLY_KEY_ID_STEP(asked) >= from)
		key_id = asked;
	if (key_id == k->key_id)
		memcpy(key, k->key, sizeof(key));
	else
		key_at_step(k, RLY_KEY_ID_STEP(key_id), key);
	if (rly_key_seal(r.sealed, key_id, key, q->requester) < 0) {
		sodium_memzero(key, sizeof(key));
		return;
	}
	sodium_memzero(key, sizeof(key));
	rly_be16_store(&r.status, RLY_SUB_OK);
	rly_be32_store(&r.key_id, key_id);
	send_response(p, &r);
	p->st.keys_granted++;
	key_event(p, RLY_KEY_EV_GRANTED, q->requester, key_id);
}

static void on_holder_event(void *ctx, enum rly_sub_event ev, unsigned status)
{
	rly_pub_t *p = ctx;

	(void)status;
	if (ev == RLY_SUB_EV_SUBSCRIBED)
		key_event(p, RLY_KEY_EV_REGISTERED, NULL, p->keys.key_id);
	else if (ev == RLY_SUB_EV_LOST)
		key_event(p, RLY_KEY_EV_HOLDER_LOST, NULL, p->keys.key_id);
}

/*
 * What the registry directory looks like now: the directory's own stamps and every *.grants
 * file's identity, size and modification time, summed so that the order readdir returns them in
 * does not matter. Any edit, rename, addition or removal changes it.
 */
static uint64_t registry_fingerprint(const char *dir)
{
	struct stat st;
	struct dirent *e;
	uint64_t sum;
	DIR *d;

	if (stat(dir, &st) < 0)
		return 0;
	sum = (uint64_t)st.st_mtim.tv_sec * 1000000007ull + (uint64_t)st.st_mtim.tv_nsec +
	      (uint64_t)st.st_ino;
	d = opendir(dir);
	if (d == NULL)
		return sum;
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		crypto_generichash_state hs;
		uint64_t h[5];
		uint8_t out[8];
		uint64_t v;

		if (n < 7 || strcmp(e->d_name + n - 7, ".grants") != 0 ||
		    fstatat(dirfd(d), e->d_name, &st, 0) < 0)
			continue;
		h[0] = (uint64_t)st.st_ino;
		h[1] = (uint64_t)st.st_size;
		h[2] = (uint64_t)st.st_mtim.tv_sec;
		h[3] = (uint64_t)st.st_mtim.tv_nsec;
		h[4] = (uint64_t)st.st_ctim.tv_nsec;
		crypto_generichash_init(&hs, NULL, 0, sizeof(out));
		crypto_generichash_update(&hs, (const uint8_t *)h, sizeof(h));
		crypto_generichash_update(&hs, (const uint8_t *)e->d_name, n);
		crypto_generichash_final(&hs, out, sizeof(out));
		memcpy(&v, out, sizeof(v));
		sum += v;
	}
	closedir(d);
	return sum;
}

/*
 * Once a second: reload the registry if its directory changed, then make sure everyone who was
 * given this generation may still subscribe. Checking the list even without a reload catches
 * grants that simply expired. A revoked holder of the current key forces a rekey: it can read on
 * until then, never after.
 */
static void registry_check(rly_pub_t *p, uint64_t now_mono)
{
	struct pub_keys *k = &p->keys;
	uint64_t fp, now = (uint64_t)time(NULL);

	if (now_mono < k->reg_check_ns)
		return;
	k->reg_check_ns = now_mono + PUB_KEYS_REGISTRY_NS;
	fp = registry_fingerprint(k->registry_dir);
	if (fp != k->reg_fingerprint) {
		struct rly_registry *reg;
		/* A registry that fails to load (a half-written file is refused line by line,
		 * not as a whole) keeps the old one: better than granting on nothing. */
		if (rly_registry_load(&reg, k->registry_dir, NULL, NULL) >= 0) {
			rly_registry_free(k->reg);
			k->reg = reg;
			k->reg_fingerprint = fp;
		}
	}
	for (uint32_t i = 0; i < k->n_granted; i++) {
		if (!rly_registry_allows(k->reg, p->tmpl.stream_key, k->granted[i].who,
					 RLY_PERM_SUBSCRIBE, now)) {
			uint8_t who[RLY_ID_LEN];
			memcpy(who, k->granted[i].who, RLY_ID_LEN);
			(void)rekey(p, who);
			return;
		}
	}
}

/* Receive what the holder socket has, run its timers and the registry check; never blocks
 * longer than @p timeout_ms. */
static int poll_holder(rly_pub_t *p, int timeout_ms)
{
	int rc = rly_sub_poll(p->keys.holder, timeout_ms);

	registry_check(p, rly_mono_ns());
	return rc < 0 ? rc : 0;
}

void pub_keys_service(rly_pub_t *p, uint64_t now_real_ns)
{
	/* Unsigned arithmetic: a clock stepped backwards services at once and re-arms. */
	if (now_real_ns - p->keys.service_ns < PUB_KEYS_SERVICE_NS)
		return;
	p->keys.service_ns = now_real_ns;
	(void)poll_holder(p, 0);
}

int pub_keys_init(rly_pub_t *p, const struct rly_pub_opts *o)
{
	struct pub_keys *k = &p->keys;
	struct rly_sub_opts so;
	char bind_ip[CLIENT_ADDR_STRLEN];
	int rc;

	if (o->registry_dir == NULL)
		return rly_err_set(
		    EINVAL, "an encrypted publisher needs a registry (registry_dir) to decide "
			    "who may have its key");
	k->registry_dir = strdup(o->registry_dir);
	if (k->registry_dir == NULL)
		return rly_err_set(ENOMEM, "out of memory");
	k->reg_fingerprint = registry_fingerprint(k->registry_dir);
	rc = rly_registry_load(&k->reg, k->registry_dir, NULL, NULL);
	if (rc < 0)
		return rly_err_wrap("encrypted publisher: registry %s", k->registry_dir);
	k->reg_check_ns = rly_mono_ns() + PUB_KEYS_REGISTRY_NS;
	k->key_history = o->key_history;
	k->on_key_event = o->on_key_event;
	k->ctx = o->key_event_ctx;

	memset(&so, 0, sizeof(so));
	so.relay = o->relay;
	/* The holder leaves from the publisher's address (never its port, which the data socket
	 * holds), so a multi-homed host's relay sees both from the same place. */
	if (o->bind) {
		size_t n = strcspn(o->bind, ":");
		if (n >= sizeof(bind_ip))
			return rly_err_set(EINVAL, "bind address '%s' is too long", o->bind);
		memcpy(bind_ip, o->bind, n);
		bind_ip[n] = 0;
		so.bind = bind_ip;
	}
	memcpy(so.stream_key, o->stream_key, RLY_STREAM_KEY_LEN);
	so.partition = RLY_KEY_HOLDER_PARTITION;
	so.identity = &p->id;
	so.auto_resubscribe = 1;
	so.rcvbuf = 1 << 20;
	so.cb.on_event = on_holder_event;
	so.cb.ctx = p;
	rc = rly_sub_create(&k->holder, &so);
	if (rc < 0)
		return rly_err_wrap("key holder");
	k->holder->on_key_request = on_key_request;
	k->holder->key_request_ctx = p;

	/* Generation 1, step 0: no event, nobody to tell yet. */
	randombytes_buf(k->key, sizeof(k->key));
	memcpy(k->gen_key, k->key, sizeof(k->key));
	set_key_id(p, RLY_KEY_ID(1, 0));
	k->on = 1;
	/* Registration runs in the background (automatic: retried until it holds), so an
	 * application that only offers is a key holder within a round trip or two. */
	session_start(k->holder, 1, rly_mono_ns());
	return 0;
}

void pub_keys_close(rly_pub_t *p)
{
	struct pub_keys *k = &p->keys;

	rly_sub_free(k->holder);
	k->holder = NULL;
	rly_registry_free(k->reg);
	k->reg = NULL;
	free(k->registry_dir);
	k->registry_dir = NULL;
	free(k->granted);
	k->granted = NULL;
	free(k->prev);
	k->prev = NULL;
	sodium_memzero(k->key, sizeof(k->key));
	sodium_memzero(k->gen_key, sizeof(k->gen_key));
	k->on = 0;
}

static int need_keys(const rly_pub_t *p, const char *what)
{
	if (!p->keys.on)
		return rly_err_set(EINVAL, "%s: the publisher does not encrypt (opts.encrypt)",
				   what);
	return 0;
}

int rly_pub_rotate(rly_pub_t *p)
{
	int rc = need_keys(p, "rotate");

	return rc < 0 ? rc : rotate(p);
}

int rly_pub_rekey(rly_pub_t *p)
{
	int rc = need_keys(p, "rekey");

	return rc < 0 ? rc : rekey(p, NULL);
}

int rly_pub_fd(const rly_pub_t *p)
{
	return p->keys.on ? rly_sub_fd(p->keys.holder) : -1;
}

int rly_pub_poll(rly_pub_t *p, int timeout_ms)
{
	int rc;

	if (!p->keys.on)
		return 0;
	p->keys.answered = 0;
	rc = poll_holder(p, timeout_ms);
	return rc < 0 ? rc : p->keys.answered;
}

int rly_pub_register(rly_pub_t *p, int timeout_ms)
{
	rly_sub_t *h;
	uint64_t now;
	int rc = need_keys(p, "register the key holder");

	if (rc < 0)
		return rc;
	h = p->keys.holder;
	if (h->sess.state == SESS_SUBSCRIBED)
		return 0;
	/* Not automatic while we wait, so that a refusal ends the wait. A handshake already under
	 * way (the background registration) is waited for, not restarted: a fresh request would
	 * only make the relay challenge twice. */
	now = rly_mono_ns();
	if (h->sess.state == SESS_CHALLENGE_WAIT || h->sess.state == SESS_ACK_WAIT)
		h->sess.automatic = 0;
	else
		session_start(h, 0, now);
	rc = sub_pump(h, timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)timeout_ms * MS,
		      sub_stop_handshake_over, 0);
	registry_check(p, rly_mono_ns());
	if (rc < 0)
		return rly_err_wrap("register the key holder with %s", p->relay);
	if (h->sess.state == SESS_SUBSCRIBED)
		return 0;
	/* From here on the background registration takes over again and retries. */
	h->sess.automatic = 1;
	if (h->sess.state == SESS_REFUSED) {
		h->sess.state = SESS_RETRY_WAIT;
		h->sess.next_ns = rly_mono_ns() + SUB_RTO_MAX_MS * MS;
		return rly_err_set(ECONNREFUSED,
				   "relay %s refused the key holder: %s (%s; a relay with a "
				   "registry wants the publish permission on the stream)",
				   p->relay, rly_sub_status_name(h->sess.status),
				   rly_sub_status_str(h->sess.status));
	}
	return rly_err_set(ETIMEDOUT,
			   "key holder: no answer from %s after %d ms and %u SUBSCRIBEs (is "
			   "relay-control running there?)",
			   p->relay, timeout_ms, h->sess.sent);
}

const char *rly_key_event_name(enum rly_key_event ev)
{
	switch (ev) {
#define X(name, value, desc)                                                                       \
	case RLY_KEY_EV_##name:                                                                    \
		return #name;
		RLY_FOREACH_KEY_EVENT(X)
#undef X
	default:
		return "UNKNOWN";
	}
}
