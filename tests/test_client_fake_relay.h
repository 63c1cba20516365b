/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake relay for client tests: one UDP socket on 127.0.0.1 served by a thread. It runs the
 * subscription side of wire protocol v1 (CHALLENGE with a cookie it checks, SUB_ACK with a
 * token, HEARTBEAT_ACK, UNSUB_ACK) with knobs to misbehave, and can forward DATA it receives to
 * the subscriber, which is enough to run relay-pub and relay-sub end to end. It checks the
 * signature of a SUBSCRIBE_SIGNED with libsodium directly (not with client code) and refuses a
 * bad one with DENIED.
 */
#ifndef RLY_TEST_CLIENT_FAKE_RELAY_H
#define RLY_TEST_CLIENT_FAKE_RELAY_H

#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/client.h"
#include "relay/wire.h"

struct fake_relay {
	/* Behaviour: set before fake_relay_start, or later with the FR_SET macro. */
	unsigned drop_challenges; /* SUBSCRIBEs answered with nothing before the first CHALLENGE */
	unsigned sub_status;	  /* SUB_ACK status (RLY_SUB_OK by default) */
	unsigned hb_status;	  /* HEARTBEAT_ACK status */
	unsigned hb_status_once;  /* nonzero: answer the next heartbeat with this status, once */
	unsigned silent_heartbeats; /* nonzero: never answer HEARTBEAT */
	unsigned forward_data;	    /* nonzero: DATA received goes on to the subscriber */
	unsigned corrupt_data;	    /* nonzero: flip a byte in the first message's payload (its last
				     * byte; a header byte when it has none) of forwarded DATA */
	unsigned corrupt_every;	    /* corrupt forwarded datagrams 1, 1 + N, 1 + 2N ... (0: all) */
	unsigned original_too;	    /* nonzero: after a corrupted copy, forward the original too */
	uint32_t lease_ms;
	uint32_t heartbeat_ms;

	/* What it saw (read with FR_GET). */
	unsigned subscribes_first;  /* SUBSCRIBE without cookie */
	unsigned subscribes_cookie; /* SUBSCRIBE or SUBSCRIBE_SIGNED with the right cookie */
	unsigned signed_answers;    /* SUBSCRIBE_SIGNED whose signature verified */
	unsigned bad_signed_answers; /* SUBSCRIBE_SIGNED whose signature did not (answered DENIED) */
	uint8_t last_subscriber[RLY_ID_LEN]; /* subscriber key of the last SUBSCRIBE_SIGNED */
	unsigned bad_cookies;	    /* SUBSCRIBE with a wrong cookie */
	unsigned challenges;
	unsigned sub_acks;
	unsigned heartbeats;
	unsigned unsubscribes;
	unsigned bad_tokens;
	unsigned data_dgrams;
	unsigned corrupted;	    /* forwarded datagrams corrupt_data changed */
	unsigned malformed;
	uint32_t last_lease_req;

	/* Internal. */
	int fd;
	uint16_t port;
	char addr[32]; /* "127.0.0.1:<port>", for --relay / opts.relay */
	pthread_t thread;
	int stop;
	uint8_t cookie[RLY_COOKIE_LEN];
	uint8_t token[RLY_COOKIE_LEN];
	struct sockaddr_in sub;
	int have_sub;
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
};

#define FR_GET(r, field)    __atomic_load_n(&(r)->field, __ATOMIC_SEQ_CST)
#define FR_SET(r, field, v) __atomic_store_n(&(r)->field, (v), __ATOMIC_SEQ_CST)

/* Bind to 127.0.0.1 on an ephemeral port and start serving. 0, or -errno. */
int fake_relay_start(struct fake_relay *r);
void fake_relay_stop(struct fake_relay *r);
/* Send @p len bytes to the subscribed address (fails the test if nobody subscribed). */
void fake_relay_send_to_sub(struct fake_relay *r, const void *buf, size_t len);

/* One data message for fake_build_data. */
struct fake_msg {
	const uint8_t *stream_key;
	uint32_t partition;
	const uint8_t *publisher; /* RLY_ID_LEN bytes; ignored when signer is set */
	const struct rly_identity *signer; /* sign as this identity (publisher = its key); NULL:
					    * unsigned */
	uint32_t chain;
	uint64_t seq;
	uint64_t prev_seq;
	const void *payload;
	uint16_t payload_len;
};

/* Build a DATA datagram of @p n messages (signed by their signer, if any) into @p buf; returns
 * its length. */
size_t fake_build_data(uint8_t *buf, size_t cap, const struct fake_msg *m, unsigned n);

#endif
