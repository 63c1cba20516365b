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
#include "client/repair.h"

/* Datagrams per recvmmsg; buffer per datagram (more than RLY_WIRE_MAX_DGRAM, so an oversized
 * datagram shows as such). */
#define SUB_BATCH	     64u
#define SUB_BUF		     2048u
#define SUB_LEASE_DEFAULT_MS 10000u
#define SUB_RCVBUF_DEFAULT   (4 << 20)

/* Resend interval of handshake and unsubscribe messages: doubles from the first to the last. */
#define SUB_RTO_FIRST_MS 100u
#define SUB_RTO_MAX_MS	 1600u
/*
 * A heartbeat that goes unanswered is sent again after SUB_HB_RTO_MS, doubling; the subscription
 * counts as lost once one has gone unanswered for a whole heartbeat period while no data arrived
 * either (data still flowing means the relay still serves us, its control plane is only away).
 */
#define SUB_HB_RTO_MS 100u

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
	uint64_t hb_pending_ns; /* when the oldest unanswered heartbeat was sent; 0: none */
	uint64_t hb_rto_ns;     /* resend interval of the unanswered heartbeat */
	unsigned sent;	      /* messages sent for the current handshake or unsubscribe */
	unsigned status;      /* last non-OK status received */
};

/* Encrypted chains (client/sub_keys.c, docs/encryption.md section 3). */
#define SUB_KEY_CHAINS	     256u  /* encrypted publisher chains with key state */
#define SUB_KEY_HELD_CHAIN   256u  /* messages held per chain while its key is asked for */
#define SUB_KEY_HELD_ALL     4096u /* ... and in all */
#define SUB_KEY_MAX_DERIVE   4096u /* ratchet steps derived for one message; more: ask */
#define SUB_KEY_RTO_FIRST_MS 200u
#define SUB_KEY_RTO_MAX_MS   3200u
#define SUB_KEY_GIVE_UP_MS   10000u /* held messages are reported NO_KEY after this */
#define SUB_KEY_DENIED_MS    5000u  /* no requests for a chain after a signed DENIED */

/* A copy of one message waiting for its chain's key. */
struct held_msg {
	struct held_msg *next;
	uint64_t recv_ns;
	uint32_t len;
	uint8_t bytes[];
};

struct key_chain {
	uint8_t publisher[RLY_ID_LEN];
	uint32_t chain;
	int used;
	int have_key;
	uint32_t key_id; /* of key: the newest step derived so far */
	uint8_t key[RLY_GROUP_KEY_LEN];
	int waiting; /* a KEY_REQUEST is outstanding */
	uint32_t want_id;
	uint64_t request_id;
	uint64_t first_ns; /* CLOCK_MONOTONIC: when the request started */
	uint64_t next_ns;  /* next resend */
	uint64_t rto_ns;
	uint64_t denied_until_ns;
	uint64_t last_use;
	struct held_msg *head, *tail;
	uint32_t held;
};

struct sub_keys {
	struct key_chain *kc; /* SUB_KEY_CHAINS entries */
	uint32_t waiting;     /* entries with waiting set */
	uint32_t held;	      /* messages held in all chains */
	uint64_t tick;
	struct key_chain *last; /* the entry chain_get returned last */
	uint8_t *plain;		/* decryption scratch, SUB_BUF bytes */
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
	int no_repair;
	int auto_resubscribe;
	struct rly_sub_callbacks cb;
	struct rly_sub_stats st;
	struct client_chains chains;
	struct session sess;
	int delivered; /* messages delivered during the current receive pass */
	uint64_t last_data_ns; /* CLOCK_MONOTONIC of the last data datagram from the relay */
	struct sub_keys keys;
	struct sub_repair rep;
	/* what the message being delivered waited for (struct rly_msg repair_ns, held_ns) */
	uint64_t cur_repair_ns, cur_held_ns;
	/* Set when this object is an encrypting publisher's key holder (client/pub_keys.c): it
	 * takes KEY_REQUESTs there and ignores data. */
	void (*on_key_request)(void *ctx, const struct rly_wire_key_request *r);
	void *key_request_ctx;
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

/* The message at @p h as an rly_msg (payload as received). */
void sub_describe(const rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns,
		  struct rly_msg *m);
/*
 * A message that passed the signature and chain-order checks, in order: decrypted (keys) or
 * delivered to on_message.
 */
void sub_release(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns, uint64_t mono_ns);
/* The subscription is gone (@p status says why): report it, and re-subscribe if asked to. */
void session_lost(rly_sub_t *s, unsigned status, uint64_t now_ns);
/* Deliver a message that passed every check, with @p payload in place of the received one. */
void sub_deliver(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns,
		 const uint8_t *payload, uint16_t payload_len);
/* Report a message the subscriber refuses (enum rly_bad_message) to on_bad_message. */
void sub_report_bad(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns, int reason);

/*
 * One received datagram: parsed, then data, key messages or the session's control. recv_ns is
 * CLOCK_REALTIME (what messages report), mono_ns CLOCK_MONOTONIC (timers). Called by the receive
 * path, and directly by tests/fuzz/fuzz_client.c, which drives the clock itself.
 */
void sub_on_dgram(rly_sub_t *s, const uint8_t *buf, size_t len, uint64_t recv_ns, uint64_t mono_ns);

typedef int (*sub_stop_fn)(const rly_sub_t *s);
/* Receive, deliver and run timers until @p stop says so, or (@p stop_on_data) a pass received
 * something, or @p deadline_ns (CLOCK_MONOTONIC) passes. 0 or -errno. */
int sub_pump(rly_sub_t *s, uint64_t deadline_ns, sub_stop_fn stop, int stop_on_data);
/* Stop condition of sub_pump: no handshake in progress. */
int sub_stop_handshake_over(const rly_sub_t *s);

/* client/sub_keys.c: key state of encrypted chains. */
int keys_init(rly_sub_t *s);
void keys_close(rly_sub_t *s);
/* An encrypted message that passed the signature and chain-order checks. */
void keys_on_message(rly_sub_t *s, const struct rly_wire_msg_hdr *h, uint64_t recv_ns,
		     uint64_t now_ns);
void keys_on_response(rly_sub_t *s, const struct rly_wire_key_response *r, uint64_t now_ns);
void keys_run_timers(rly_sub_t *s, uint64_t now_ns);
uint64_t keys_next_due(const rly_sub_t *s);

#endif
