/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake relay for client tests: one UDP socket on 127.0.0.1 served by a thread. It runs the
 * subscription side of wire protocol v1 (CHALLENGE with a cookie it checks, SUB_ACK with a
 * token, HEARTBEAT_ACK, UNSUB_ACK) with knobs to misbehave, and can forward DATA it receives to
 * the subscriber, which is enough to run relay-pub and relay-sub end to end. It checks the
 * signature of a SUBSCRIBE_SIGNED with libsodium directly (not with client code) and refuses a
 * bad one with DENIED.
 *
 * It keeps a table of subscriptions (several sockets may subscribe; DATA goes to every one on a
 * data partition) and routes key messages the way docs/encryption.md section 3 says relay-control
 * does: KEY_REQUEST only from a subscription's address with its token and the identity it proved,
 * with a valid requester signature, forwarded (token zeroed) to the key holders registered on
 * (stream, RLY_KEY_HOLDER_PARTITION) with the publisher's identity, or answered UNAVAILABLE
 * (unsigned) when there is none; KEY_RESPONSE only from such a holder for a remembered request,
 * sent on to the requester's address.
 */
#ifndef RLY_TEST_CLIENT_FAKE_RELAY_H
#define RLY_TEST_CLIENT_FAKE_RELAY_H

#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "relay/client.h"
#include "relay/wire.h"

#define FR_SUBS	   8
#define FR_PENDING 16
#define FR_CAPTURE 32
#define FR_HELD	   8

struct fr_sub {
	int used;
	struct sockaddr_in addr;
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	int proved; /* SUBSCRIBE_SIGNED by id */
	uint8_t id[RLY_ID_LEN];
};

struct fr_pending {
	int used;
	uint64_t request_id;
	uint8_t requester[RLY_ID_LEN];
	struct sockaddr_in to;
};

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
	unsigned drop_key_requests;  /* the next N KEY_REQUESTs vanish (as if lost) */
	unsigned hold_key_responses; /* nonzero: keep routed KEY_RESPONSEs; clearing it sends them */
	uint8_t canary[64];	     /* counted in canary_seen when any datagram contains it */
	size_t canary_len;

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
	unsigned canary_seen;	  /* datagrams (any type, any direction in) holding the canary */
	unsigned key_requests;	  /* KEY_REQUESTs received */
	unsigned key_refused;	  /* dropped: no such subscription, token, identity or signature */
	unsigned key_forwarded;	  /* forwarded to key holders */
	unsigned key_no_holder;	  /* answered UNAVAILABLE */
	unsigned key_responses;	  /* KEY_RESPONSEs routed to a requester */
	unsigned key_unexpected;  /* KEY_RESPONSEs dropped (not from a holder, or no request) */
	unsigned holder_registrations; /* SUB_ACK OK on RLY_KEY_HOLDER_PARTITION */
	unsigned data_captured;	  /* DATA datagrams kept (the first FR_CAPTURE) */

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
	pthread_mutex_t lock; /* the tables below, shared with the test's thread */
	struct fr_sub subs[FR_SUBS];
	struct fr_pending pending[FR_PENDING];
	uint8_t captured[FR_CAPTURE][2048];
	uint16_t captured_len[FR_CAPTURE];
	struct rly_wire_key_request last_key_request; /* as received, token and all */
	uint8_t held[FR_HELD][512];
	uint16_t held_len[FR_HELD];
	struct sockaddr_in held_to[FR_HELD];
	unsigned n_held;
};

#define FR_GET(r, field)    __atomic_load_n(&(r)->field, __ATOMIC_SEQ_CST)
#define FR_SET(r, field, v) __atomic_store_n(&(r)->field, (v), __ATOMIC_SEQ_CST)

/* Bind to 127.0.0.1 on an ephemeral port and start serving. 0, or -errno. */
int fake_relay_start(struct fake_relay *r);
void fake_relay_stop(struct fake_relay *r);
/* Send @p len bytes to the subscribed address (fails the test if nobody subscribed). */
void fake_relay_send_to_sub(struct fake_relay *r, const void *buf, size_t len);

/* Send @p len bytes to the data subscription that proved identity @p id (fails the test if
 * there is none). */
void fake_relay_send_to_id(struct fake_relay *r, const uint8_t id[RLY_ID_LEN], const void *buf,
			   size_t len);
/* Copy captured DATA datagram @p i (0: the first one the relay received) into @p buf; its
 * length (fails the test if there is none). */
size_t fake_relay_captured(struct fake_relay *r, unsigned i, uint8_t *buf, size_t cap);
/* The last KEY_REQUEST received, as received (token included); fails the test if none. */
void fake_relay_last_key_request(struct fake_relay *r, struct rly_wire_key_request *out);

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
