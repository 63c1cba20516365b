/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A subscriber's group keys, one state per encrypted publisher chain (docs/encryption.md,
 * section 3). Messages reach this file only after their signature and their chain order were
 * checked, so everything here acts on what the publisher really sent: a key id can move a
 * chain's key forward, never a forger.
 *
 * Within a generation the ratchet only goes forward, and a chain's messages arrive here in
 * sequence order, so one key per chain is enough: the newest step derived so far. A message of an
 * older step (or generation) can no longer be opened; one of a newer generation, or too many steps
 * ahead to derive cheaply, needs a KEY_REQUEST. While a request is outstanding, the chain's
 * messages are held in arrival order and delivered once the key arrives, so an application sees
 * the same order it would without encryption.
 *
 * Requests are resent from the session's timer path (session_run_timers calls keys_run_timers),
 * so a subscriber that only polls for data still asks, retries and gives up on time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "client/sub.h"
#include "common/err.h"
#include "security/e2e.h"

#define MS (1000000ull)

enum open_result { OPEN_DONE, OPEN_NEED_KEY };

int keys_init(rly_sub_t *s)
{
	s->keys.kc = calloc(SUB_KEY_CHAINS, sizeof(*s->keys.kc));
	s->keys.plain = malloc(SUB_BUF);
	if (s->keys.kc == NULL || s->keys.plain == NULL)
		return rly_err_set(ENOMEM, "no memory for group key state");
	return 0;
}

static void drop_held(rly_sub_t *s, struct key_chain *kc, int report)
{
	struct held_msg *m;

	while ((m = kc->head) != NULL) {
		kc->head = m->next;
		if (report)
			sub_report_bad(s, (const void *)m->bytes, m->recv_ns, RLY_BAD_NO_KEY);
		free(m);
		kc->held--;
		s->keys.held--;
	}
	kc->tail = NULL;
}

void keys_close(rly_sub_t *s)
{
	if (s->keys.kc) {
		for (unsigned i = 0; i < SUB_KEY_CHAINS; i++)
			drop_held(s, &s->keys.kc[i], 0);
		sodium_memzero(s->keys.kc, SUB_KEY_CHAINS * sizeof(*s->keys.kc));
		free(s->keys.kc);
	}
	if (s->keys.plain) {
		sodium_memzero(s->keys.plain, SUB_BUF);
		free(s->keys.plain);
	}
}

/*
 * The chain's entry, created if absent. A full table evicts the least recently used chain that
 * neither holds messages nor waits for a key (its key is lost: it asks again if it speaks); when
 * every chain is busy, NULL and the message is reported NO_KEY. A linear scan is fine at this
 * size: each message costs a signature verification (tens of microseconds) before it gets here.
 */
static struct key_chain *chain_get(rly_sub_t *s, const uint8_t *publisher, uint32_t chain)
{
	struct key_chain *free_kc = NULL, *lru = NULL, *last = s->keys.last;

	/* Messages come in runs from one chain: try the last one first. */
	if (last && last->used && last->chain == chain &&
	    memcmp(last->publisher, publisher, RLY_ID_LEN) == 0) {
		last->last_use = ++s->keys.tick;
		return last;
	}
	for (unsigned i = 0; i < SUB_KEY_CHAINS; i++) {
		struct key_chain *kc = &s->keys.kc[i];
		if (!kc->used) {
			if (free_kc == NULL)
				free_kc = kc;
			continue;
		}
		if (kc->chain == chain && memcmp(kc->publisher, publisher, RLY_ID_LEN) == 0) {
			kc->last_use = ++s->keys.tick;
			s->keys.last = kc;
			return kc;
		}
		if (!kc->waiting && kc->held == 0 && (lru == NULL || kc->last_use < lru->last_use))
			lru = kc;
	}
	if (free_kc == NULL)
		free_kc = lru;
	if (free_kc == NULL)
		return NULL;
	sodium_memzero(free_kc, sizeof(*free_kc));
	free_kc->used = 1;
	memcpy(free_kc->publisher, publisher, RLY_ID_LEN);
	free_kc->chain = chain;
	free_kc->last_use = ++s->keys.tick;
	s->keys.last = free_kc;
	return free_kc;
}

static struct key_chain *chain_find(rly_sub_t *s, const uint8_t *publisher, uint32_t chain)
{
	for (unsigned i = 0; i < SUB_KEY_CHAINS; i++) {
		struct key_chain *kc = &s->keys.kc[i];
		if (kc->used && kc->chain == chain &&
		    memcmp(kc->publisher, publisher, RLY_ID_LEN) == 0)
			return kc;
	}
	return NULL;
}

/* Decrypt and deliver (or report) the message if the chain's key can open it. */
static enum open_result try_open(rly_sub_t *s, struct key_chain *kc,
				 const struct rly_wire_msg_hdr *h, uint64_t recv_ns)
{
	uint32_t id = rly_be32_load(&h->key_id);
	int n;

	if (!kc->have_key)
		return OPEN_NEED_KEY;
	if (RLY_KEY_ID_GEN(id) < RLY_KEY_ID_GEN(kc->key_id) ||
	    (RLY_KEY_ID_GEN(id) == RLY_KEY_ID_GEN(kc->key_id) &&
	     RLY_KEY_ID_STEP(id) < RLY_KEY_ID_STEP(kc->key_id))) {
		/* Behind the one-way ratchet, or of a generation we were not given again. */
		sub_report_bad(s, h, recv_ns, RLY_BAD_NO_KEY);
		return OPEN_DONE;
	}
	if (RLY_KEY_ID_GEN(id) != RLY_KEY_ID_GEN(kc->key_id) ||
	    (unsigned)(RLY_KEY_ID_STEP(id) - RLY_KEY_ID_STEP(kc->key_id)) > SUB_KEY_MAX_DERIVE)
		return OPEN_NEED_KEY;
	/* The publisher signed this key id, so moving forward to it is safe: nothing a relay or
	 * a forger sends can make us throw away a step we still need. */
	while (kc->key_id != id) {
		rly_group_key_ratchet(kc->key);
		kc->key_id++;
	}
	n = rly_msg_decrypt(h, kc->key, s->keys.plain);
	if (n < 0)
		sub_report_bad(s, h, recv_ns, RLY_BAD_DECRYPT);
	else
		sub_deliver(s, h, recv_ns, s->keys.plain, (uint16_t)n);
	return OPEN_DONE;
}

static void send_request(rly_sub_t *s, struct key_chain *kc)
{
	uint8_t buf[sizeof(struct rly_wire_dgram_hdr) + sizeof(struct rly_wire_key_request)];
	struct rly_wire_key_request r;
	int len;

	/* The relay checks the request against the subscription of this address and its token:
	 * without one, wait for the session to (re-)establish it. */
	if (s->sess.state != SESS_SUBSCRIBED || !s->sess.have_token)
		return;
	memset(&r, 0, sizeof(r));
	memcpy(r.stream_key, s->stream_key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&r.partition, s->partition);
	rly_be32_store(&r.chain, kc->chain);
	rly_be32_store(&r.key_id, kc->want_id);
	rly_be64_store(&r.request_id, kc->request_id);
	memcpy(r.publisher, kc->publisher, RLY_ID_LEN);
	rly_key_request_sign(&r, &s->id);
	memcpy(r.token, s->sess.token, RLY_COOKIE_LEN);
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_KEY_REQUEST, &r);
	/* A lost request is covered by the resend timer, like any other loss. */
	if (len > 0 && send(s->fd, buf, (size_t)len, MSG_DONTWAIT) == len)
		s->st.key_requests++;
}

static void start_request(rly_sub_t *s, struct key_chain *kc, uint32_t want, uint64_t now_ns)
{
	if (!kc->waiting)
		s->keys.waiting++;
	kc->waiting = 1;
	kc->want_id = want;
	kc->request_id = client_random_u64_nonzero();
	kc->first_ns = now_ns;
	kc->rto_ns = SUB_KEY_RTO_FIRST_MS * MS;
	kc->next_ns = now_ns + kc->rto_ns;
	send_request(s, kc);
}

static void stop_request(rly_sub_t *s, struct key_chain *kc)
{
	if (kc->waiting)
		s->keys.waiting--;
	kc->waiting = 0;
}

/* Keep a copy of the message; a full queue gives up its oldest (the one waited for longest). */
static void hold(rly_sub_t *s, struct key_chain *kc, const struct rly_wire_msg_hdr *h,
		 uint64_t recv_ns)
{
	size_t len = rly_wire_msg_size(h);
	struct held_msg *m;

	if ((kc->held >= SUB_KEY_HELD_CHAIN || s->keys.held >= SUB_KEY_HELD_ALL) && kc->head) {
		m = kc->head;
		kc->head = m->next;
		if (kc->head == NULL)
			kc->tail = NULL;
		kc->held--;
		s->keys.held--;
		sub_report_bad(s, (const void *)m->bytes, m->recv_ns, RLY_BAD_NO_KEY);
		free(m);
	}
	if (s->keys.held >= SUB_KEY_HELD_ALL || (m = malloc(sizeof(*m) + len)) == NULL) {
		sub_report_bad(s, h, recv_ns, RLY_BAD_NO_KEY);
		return;
	}
	m->next = NULL;
	m->recv_ns = recv_ns;
	m->len = (uint32_t)len;
	memcpy(m->bytes, h, len);
	if (kc->tail)
		kc->tail->next = m;
	else
		kc->head = m;
	kc->tail = m;
	kc->held++;
	s->keys.held++;
}

/* Deliver held messages in order until one needs a key we do not have: ask for that one. */
static void drain(rly_sub_t *s, struct key_chain *kc, uint64_t now_ns)
{
	struct held_msg *m;

	while ((m = kc->head) != NULL) {
		const struct rly_wire_msg_hdr *h = (const void *)m->bytes;
		if (try_open(s, kc, h, m->recv_ns) == OPEN_NEED_KEY) {
			start_request(s, kc, rly_be32_load(&h->key_id), now_ns);
			return;
		}
		kc->head = m->next;
		if (kc->head == NULL)
			kc->tail = NULL;
		kc->held--;
		s->keys.held--;
		free(m);
	}
}

void keys_on_message(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns,
		     uint64_t now_ns)
{
	struct key_chain *kc;

	/* No identity, no X25519 key for a publisher to seal a key to. */
	if (!s->have_id || (kc = chain_get(s, h->publisher, rly_be32_load(&h->chain))) == NULL) {
		sub_report_bad(s, h, recv_ns, RLY_BAD_NO_KEY);
		return;
	}
	if (kc->head) {
		hold(s, kc, h, recv_ns); /* behind messages still waiting: keep the order */
		return;
	}
	if (try_open(s, kc, h, recv_ns) == OPEN_DONE)
		return;
	if (now_ns < kc->denied_until_ns) {
		sub_report_bad(s, h, recv_ns, RLY_BAD_NO_KEY);
		return;
	}
	hold(s, kc, h, recv_ns);
	if (kc->head)
		start_request(s, kc, rly_be32_load(&h->key_id), now_ns);
}

void keys_on_response(rly_sub_t *s, const struct rly_wire_key_response *r, uint64_t now_ns)
{
	struct key_chain *kc;
	uint8_t key[RLY_GROUP_KEY_LEN];
	uint32_t key_id;
	unsigned status = rly_be16_load(&r->status);

	if (!s->have_id || memcmp(r->stream_key, s->stream_key, RLY_STREAM_KEY_LEN) != 0 ||
	    rly_be32_load(&r->partition) != s->partition ||
	    memcmp(r->requester, s->id.pk, RLY_ID_LEN) != 0)
		return;
	kc = chain_find(s, r->publisher, rly_be32_load(&r->chain));
	if (kc == NULL || !kc->waiting || rly_be64_load(&r->request_id) != kc->request_id)
		return;
	/* Only the publisher's signature makes an answer final. An unsigned one (the relay's
	 * UNAVAILABLE or RATE_LIMITED) or a forged one changes nothing: the resend timer asks
	 * again. */
	if (!rly_key_response_verify(r))
		return;
	if (status == RLY_SUB_DENIED) {
		stop_request(s, kc);
		kc->denied_until_ns = now_ns + SUB_KEY_DENIED_MS * MS;
		drop_held(s, kc, 1);
		return;
	}
	if (status != RLY_SUB_OK || rly_key_open(r->sealed, &s->id, &key_id, key) < 0)
		return;
	if (key_id != rly_be32_load(&r->key_id)) {
		sodium_memzero(key, sizeof(key));
		return;
	}
	memcpy(kc->key, key, sizeof(key));
	sodium_memzero(key, sizeof(key));
	kc->key_id = key_id;
	kc->have_key = 1;
	s->st.keys_received++;
	stop_request(s, kc);
	drain(s, kc, now_ns);
}

void keys_run_timers(rly_sub_t *s, uint64_t now_ns)
{
	if (s->keys.waiting == 0)
		return;
	for (unsigned i = 0; i < SUB_KEY_CHAINS; i++) {
		struct key_chain *kc = &s->keys.kc[i];
		if (!kc->used || !kc->waiting)
			continue;
		if (now_ns - kc->first_ns >= SUB_KEY_GIVE_UP_MS * MS) {
			/* Report what waited, but ask again for whatever comes next: the key
			 * holder may just have been away. */
			stop_request(s, kc);
			drop_held(s, kc, 1);
			continue;
		}
		if (now_ns >= kc->next_ns) {
			send_request(s, kc);
			if (kc->rto_ns < SUB_KEY_RTO_MAX_MS * MS)
				kc->rto_ns *= 2;
			kc->next_ns = now_ns + kc->rto_ns;
		}
	}
}

uint64_t keys_next_due(const rly_sub_t *s)
{
	uint64_t due = UINT64_MAX;

	if (s->keys.waiting == 0)
		return due;
	for (unsigned i = 0; i < SUB_KEY_CHAINS; i++) {
		const struct key_chain *kc = &s->keys.kc[i];
		uint64_t give_up = kc->first_ns + SUB_KEY_GIVE_UP_MS * MS;
		if (!kc->used || !kc->waiting)
			continue;
		if (kc->next_ns < due)
			due = kc->next_ns;
		if (give_up < due)
			due = give_up;
	}
	return due;
}
