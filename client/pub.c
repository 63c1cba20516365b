/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Publisher: messages are written straight into datagram buffers of a fixed queue and signed
 * where they lie, and closed datagrams leave in sendmmsg batches of up to PUB_VEC, so the cost per
 * message is one header copy, one payload copy and one Ed25519 signature (which dominates: see
 * bench/RESULTS.md, section 6), and the cost per syscall is spread over up to 64 datagrams.
 *
 * The queue is a ring of PUB_QUEUE datagram slots: [head, head + closed) are complete and
 * waiting for the kernel, the slot after them is the open datagram being filled. A full socket
 * (EAGAIN) leaves everything where it is; nothing is dropped to make room.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "client/pub.h"
#include "common/clock.h"
#include "common/err.h"
#include "security/e2e.h"
#include "security/msgsig.h"

static struct dgram *open_dgram(rly_pub_t *p)
{
	return &p->q[(p->head + p->closed) & (PUB_QUEUE - 1)];
}

/* Hand closed datagrams to the kernel until none is left or the socket is full. */
static int send_closed(rly_pub_t *p)
{
	unsigned refused = 0;

	while (p->closed > 0) {
		uint32_t n = p->closed, i;
		int r;

		if (n > PUB_VEC)
			n = PUB_VEC;
		if (n > PUB_QUEUE - p->head)
			n = PUB_QUEUE - p->head; /* one contiguous run of the ring per call */
		for (i = 0; i < n; i++) {
			struct dgram *d = &p->q[p->head + i];
			p->iov[i].iov_base = d->buf;
			p->iov[i].iov_len = d->len;
			memset(&p->vec[i].msg_hdr, 0, sizeof(p->vec[i].msg_hdr));
			p->vec[i].msg_hdr.msg_iov = &p->iov[i];
			p->vec[i].msg_hdr.msg_iovlen = 1;
		}
		r = sendmmsg(p->fd, p->vec, n, MSG_DONTWAIT);
		if (r < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
				p->st.back_pressured++;
				return RLY_BACK_PRESSURED;
			}
			p->st.send_errors++;
			/* ECONNREFUSED reports the ICMP "port unreachable" an earlier datagram
			 * provoked; this batch was not sent, and the error is now cleared. */
			if (e == ECONNREFUSED && ++refused <= 2)
				continue;
			if (e == ECONNREFUSED)
				return rly_err_set(e,
						   "send to relay %s: %s (is the relay running?)",
						   p->relay, strerror(e));
			/* Anything else would fail the same way forever: drop the datagram the
			 * kernel refused so the queue can move, and say so. */
			unsigned dropped = p->q[p->head].len;
			p->head = (p->head + 1) & (PUB_QUEUE - 1);
			p->closed--;
			return rly_err_set(
			    e, "send to relay %s: %s (one datagram of %u bytes dropped)", p->relay,
			    strerror(e), dropped);
		}
		for (i = 0; i < (uint32_t)r; i++) {
			struct dgram *d = &p->q[p->head + i];
			p->st.msgs += d->count;
			p->st.dgrams++;
			p->st.bytes += d->len;
		}
		p->head = (p->head + (uint32_t)r) & (PUB_QUEUE - 1);
		p->closed -= (uint32_t)r;
	}
	return 0;
}

/* Complete the open datagram and start the next one; the caller made sure a slot is free. */
static void close_open(rly_pub_t *p)
{
	struct dgram *d = open_dgram(p);

	rly_wire_put_dgram_hdr(d->buf, RLY_MSG_DATA, d->len, d->count);
	p->closed++;
	d = open_dgram(p);
	d->len = HDR_LEN;
	d->count = 0;
}

/* Of two send results, the one the caller must hear about: an error, then back-pressure. */
static int worse(int a, int b)
{
	return a < 0 ? a : b < 0 ? b : a > b ? a : b;
}

size_t rly_pub_max_payload(const rly_pub_t *p)
{
	return p->dgram_max - HDR_LEN - p->overhead;
}

int rly_pub_offer(rly_pub_t *p, const void *payload, size_t len)
{
	struct dgram *d;
	struct rly_wire_msg_hdr *h;
	uint64_t now = rly_real_ns();
	int rc = 0;

	if (len > rly_pub_max_payload(p))
		return rly_err_set(
		    EMSGSIZE,
		    "payload of %zu bytes does not fit one %u-byte datagram (at most "
		    "%zu, signed%s)",
		    len, p->dgram_max, rly_pub_max_payload(p),
		    p->keys.on ? " and encrypted: the 16-byte tag takes room too" : "");
	/* Before the message is written: answering a new requester may rotate the key. */
	if (p->keys.on)
		pub_keys_service(p, now);
	d = open_dgram(p);
	if (d->count > 0 &&
	    (d->count >= p->msgs_per_dgram || d->len + p->overhead + len > p->dgram_max)) {
		if (p->closed == PUB_QUEUE - 1) {
			rc = send_closed(p);
			if (p->closed == PUB_QUEUE - 1)
				return rly_err_set(
				    EAGAIN,
				    "publisher to %s: %u datagrams queued and the socket is "
				    "full: call rly_pub_flush until it returns 0, then offer "
				    "again",
				    p->relay, PUB_QUEUE - 1);
		}
		close_open(p);
		d = open_dgram(p);
	}

	h = (struct rly_wire_msg_hdr *)(d->buf + d->len);
	memcpy(h, &p->tmpl, sizeof(*h));
	rly_be64_store(&h->seq, p->seq + 1);
	rly_be64_store(&h->prev_seq, p->seq);
	rly_be64_store(&h->timestamp_ns, now);
	if (len)
		memcpy(d->buf + d->len + MSG_LEN, payload, len);
	if (p->keys.on) {
		/* Encrypt, then sign (docs/encryption.md section 2): the header, with key_id and
		 * the longer payload_len, is the ciphertext's associated data. */
		rly_be16_store(&h->payload_len, (uint16_t)(len + RLY_MSG_TAG_LEN));
		rly_msg_encrypt(h, p->keys.key);
	} else {
		rly_be16_store(&h->payload_len, (uint16_t)len);
	}
	rly_msg_sign(&p->id, h);
	d->len = (uint16_t)(d->len + p->overhead + len);
	d->count++;
	p->st.last_seq = ++p->seq;

	/* Close a datagram as soon as it is full, so a flush never waits on the next offer. With
	 * no free slot it stays open; the check above closes it on the next offer. */
	if ((d->count >= p->msgs_per_dgram || d->len + p->overhead > p->dgram_max) &&
	    p->closed < PUB_QUEUE - 1)
		close_open(p);
	if (p->closed >= PUB_VEC)
		rc = worse(rc, send_closed(p));
	return rc;
}

int rly_pub_flush(rly_pub_t *p)
{
	int rc = 0;

	if (p->keys.on)
		pub_keys_service(p, rly_real_ns());
	if (open_dgram(p)->count > 0) {
		if (p->closed == PUB_QUEUE - 1)
			rc = send_closed(p);
		if (p->closed == PUB_QUEUE - 1)
			return rc;
		close_open(p);
	}
	return worse(rc, send_closed(p));
}

int rly_pub_create(rly_pub_t **out, const struct rly_pub_opts *o)
{
	rly_pub_t *p;
	int rc;

	*out = NULL;
	if (o->relay == NULL)
		return rly_err_set(EINVAL, "publisher: no relay address given");
	rc = client_sodium_init();
	if (rc < 0)
		return rc;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return rly_err_set(ENOMEM, "publisher: out of memory");
	p->fd = -1;
	p->dgram_max = o->dgram_max ? o->dgram_max : PUB_DGRAM_DEFAULT;
	if (p->dgram_max < HDR_LEN + MSG_OVERHEAD || p->dgram_max > RLY_WIRE_MAX_DGRAM) {
		rc = rly_err_set(EINVAL, "dgram_max %u is outside %zu-%u", p->dgram_max,
				 HDR_LEN + MSG_OVERHEAD, RLY_WIRE_MAX_DGRAM);
		goto fail;
	}
	p->msgs_per_dgram = o->msgs_per_dgram ? o->msgs_per_dgram : UINT16_MAX;
	if (p->msgs_per_dgram > UINT16_MAX)
		p->msgs_per_dgram = UINT16_MAX;

	if (o->identity) {
		uint8_t pk[RLY_ID_LEN];

		p->id = *o->identity;
		/* A mismatched pair would sign every message with a key nobody can check them
		 * against: refuse it here rather than have every subscriber drop everything. */
		crypto_sign_ed25519_sk_to_pk(pk, p->id.sk);
		if (sodium_memcmp(pk, p->id.pk, RLY_ID_LEN) != 0) {
			rc = rly_err_set(EINVAL, "identity: secret key does not match public key");
			goto fail;
		}
	} else if ((rc = rly_identity_generate(&p->id)) < 0) {
		goto fail;
	}
	memcpy(p->tmpl.stream_key, o->stream_key, RLY_STREAM_KEY_LEN);
	rly_be32_store(&p->tmpl.partition, o->partition);
	p->st.chain = o->chain ? o->chain : client_random_u32_nonzero();
	rly_be32_store(&p->tmpl.chain, p->st.chain);
	memcpy(p->tmpl.publisher, p->id.pk, RLY_ID_LEN);
	rly_be16_store(&p->tmpl.content_type, o->content_type);
	rly_be16_store(&p->tmpl.flags, RLY_MSG_F_SIGNED);
	rly_be16_store(&p->tmpl.sig_len, SIG_LEN);
	p->overhead = MSG_OVERHEAD;
	if (o->encrypt) {
		p->overhead += RLY_MSG_TAG_LEN;
		rly_be16_store(&p->tmpl.flags, RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
	}
	if (p->dgram_max < HDR_LEN + p->overhead) {
		rc = rly_err_set(EINVAL, "dgram_max %u leaves no room for one encrypted message",
				 p->dgram_max);
		goto fail;
	}

	p->mem = malloc((size_t)PUB_QUEUE * p->dgram_max);
	if (p->mem == NULL) {
		rc = rly_err_set(ENOMEM, "no memory for %u datagrams", PUB_QUEUE);
		goto fail;
	}
	for (unsigned i = 0; i < PUB_QUEUE; i++)
		p->q[i].buf = p->mem + (size_t)i * p->dgram_max;
	p->q[0].len = HDR_LEN;

	{
		struct sockaddr_in peer;
		rc = client_udp_open(o->relay, o->bind, SO_SNDBUF, o->sndbuf, &peer);
		if (rc < 0)
			goto fail;
		p->fd = rc;
		client_addr_str(&peer, p->relay);
	}
	if (o->encrypt && (rc = pub_keys_init(p, o)) < 0)
		goto fail;
	*out = p;
	return 0;
fail:
	rly_err_wrap("publisher to %s", o->relay);
	rly_pub_free(p);
	return rc;
}

void rly_pub_free(rly_pub_t *p)
{
	if (p == NULL)
		return;
	if (p->fd >= 0) {
		(void)rly_pub_flush(p);
		close(p->fd);
	}
	pub_keys_close(p);
	sodium_memzero(&p->id, sizeof(p->id));
	free(p->mem);
	free(p);
}

void rly_pub_stats(const rly_pub_t *p, struct rly_pub_stats *s)
{
	*s = p->st;
}

const uint8_t *rly_pub_publisher(const rly_pub_t *p)
{
	return p->id.pk;
}
