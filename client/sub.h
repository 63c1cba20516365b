/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The subscriber object, shared by sub.c (socket, receive path, data messages) and session.c
 * (the subscription's life: handshake, heartbeats, loss, re-subscription, unsubscribe).
 */
#ifndef RLY_CLIENT_SUB_H
#define RLY_CLIENT_SUB_H

#include <sys/socket.h>

#include "client/chains.h"
#include "client/internal.h"

/* Datagrams per recvmmsg; buffer per datagram (more than RLY_WIRE_MAX_DGRAM, so an oversized
 * datagram shows as such). */
#define SUB_BATCH	     64u
#define SUB_BUF		     2048u
#define SUB_LEASE_DEFAULT_MS 10000u
#define SUB_RCVBUF_DEFAULT   (4 << 20)

/* Resend interval of handshake and unsubscribe messages: doubles from the first to the last. */
#define SUB_RTO_FIRST_MS 100u
#define SUB_RTO_MAX_MS	 1600u
/* Heartbeat periods without an ack before the subscription counts as lost. */
#define SUB_HEARTBEAT_MISSES 3u

enum session_state {
	SESS_IDLE,	     /* not subscribed, nothing pending */
	SESS_CHALLENGE_WAIT, /* SUBSCRIBE sent, waiting for CHALLENGE */
	SESS_ACK_WAIT,	     /* SUBSCRIBE with cookie sent, waiting for SUB_ACK */
	SESS_SUBSCRIBED,     /* lease held, heartbeating */
	SESS_REFUSED,	     /* the relay refused; rly_sub_subscribe reports it */
	SESS_LOST,	     /* lease lost and no automatic re-subscription */
	SESS_RETRY_WAIT,     /* auto re-subscription refused; next attempt at next_ns */
	SESS_UNSUB_WAIT,     /* UNSUBSCRIBE sent, waiting for UNSUB_ACK */
};

struct session {
	enum session_state state;
	int automatic; /* handshake started by auto re-subscription: never gives up */
	int ever_subscribed;
	uint64_t request_id;
	uint64_t issued_ms; /* from the CHALLENGE */
	uint8_t cookie[RLY_COOKIE_LEN];
	uint8_t token[RLY_COOKIE_LEN];
	int have_token;
	uint32_t lease_ms; /* granted */
	uint32_t heartbeat_ms;
	uint64_t next_ns; /* CLOCK_MONOTONIC: next resend, heartbeat or retry */
	uint64_t rto_ns;
	uint64_t last_ack_ns; /* last SUB_ACK or HEARTBEAT_ACK OK */
	unsigned sent;	      /* messages sent for the current handshake or unsubscribe */
	unsigned status;      /* last non-OK status received */
};

struct rly_sub {
	int fd;
	char relay[CLIENT_ADDR_STRLEN];
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint32_t lease_req_ms;
	uint8_t subscriber[RLY_ID_LEN];
	struct rly_identity id; /* signs SUBSCRIBE_SIGNED when have_id */
	int have_id;
	int no_verify;
	int auto_resubscribe;
	struct rly_sub_callbacks cb;
	struct rly_sub_stats st;
	struct client_chains chains;
	struct session sess;
	int delivered; /* messages delivered during the current receive pass */
	uint8_t *bufs;
	struct iovec iov[SUB_BATCH];
	struct mmsghdr vec[SUB_BATCH];
};

/* Start a handshake now (a fresh request_id). @p automatic: retry forever, never report. */
void session_start(rly_sub_t *s, int automatic, uint64_t now_ns);
/* Start unsubscribing; -ENOTCONN if there is no subscription to end. */
int session_unsubscribe(rly_sub_t *s, uint64_t now_ns);
/* A validated control datagram from the relay. */
void session_on_control(rly_sub_t *s, const struct rly_wire_view *v, uint64_t now_ns);
/* Resends, heartbeats, loss detection and retries that are due. */
void session_run_timers(rly_sub_t *s, uint64_t now_ns);
/* When session_run_timers next has work (CLOCK_MONOTONIC ns), or UINT64_MAX. */
uint64_t session_next_due(const rly_sub_t *s);
/* Forget the handshake or unsubscribe in progress (the caller gave up waiting). */
void session_abandon(rly_sub_t *s);

#endif
