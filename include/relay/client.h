/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file client.h
 * librelay-client: publish to and subscribe from a relay over ordinary kernel UDP sockets.
 *
 * Any Linux program can use a relay with this library; it needs no DPDK. A publisher signs every
 * message with its Ed25519 identity, packs messages into datagrams and sends batches with
 * sendmmsg(); a subscriber receives with recvmmsg(), validates every datagram with the same parser
 * the relay uses, verifies every message's signature (unless told not to), keeps its lease alive
 * with heartbeats, and reports sequence gaps per publisher chain.
 *
 * Structures passed in (options, callbacks) grow by appending fields: zero-initialise them
 * (memset or `= {0}`) so that fields a caller does not know about keep their defaults.
 *
 * Threading: one object is used by one thread at a time. Functions return 0 (or a count) on
 * success and a negative errno on failure; rly_client_errmsg() then says what went wrong, with
 * context, for the calling thread. RLY_BACK_PRESSURED is an expected state, not an error.
 */
#ifndef RLY_CLIENT_H
#define RLY_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "relay/wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Returned by rly_pub_offer/rly_pub_flush when the socket buffer is full: retry later. */
#define RLY_BACK_PRESSURED 1

/** Text of the calling thread's last error, with context ("subscribe 10.0.0.1:4747: timed out"). */
const char *rly_client_errmsg(void);

/** Stream key of a stream name: BLAKE2b-128 of the UTF-8 name. */
void rly_stream_key_from_name(const char *name, uint8_t key[RLY_STREAM_KEY_LEN]);
/** Parse 32 hex digits into a stream key. 0, or -EINVAL. */
int rly_stream_key_parse_hex(const char *hex, uint8_t key[RLY_STREAM_KEY_LEN]);
/** Format a stream key as 32 lower-case hex digits plus NUL. */
void rly_stream_key_format(const uint8_t key[RLY_STREAM_KEY_LEN], char out[2 * RLY_STREAM_KEY_LEN + 1]);

/** An Ed25519 identity. */
struct rly_identity {
	uint8_t pk[RLY_ID_LEN];
	uint8_t sk[64];
};
/** Fill @p id with a fresh key pair. 0, or -errno. */
int rly_identity_generate(struct rly_identity *id);

/**
 * Parse "a.b.c.d" or "a.b.c.d:port" (port defaults to @p default_port) into network-order
 * address and port. 0, or -EINVAL with a message.
 */
int rly_parse_addr(const char *s, uint16_t default_port, uint32_t *ip_be, uint16_t *port_be);

/* ------------------------------------------------------------------ publisher */

typedef struct rly_pub rly_pub_t;

/**
 * What an encrypting publisher's key holder did, passed to rly_pub_opts.on_key_event.
 * X(name, value, description)
 */
#define RLY_FOREACH_KEY_EVENT(X)                                                                       \
	X(GRANTED, 1, "group key sealed to a requester the registry allows")                          \
	X(DENIED, 2, "requester may not subscribe: answered DENIED")                                   \
	X(ROTATED, 3, "ratchet moved one step")                                                        \
	X(REKEYED, 4, "new generation with a fresh random key")                                        \
	X(REGISTERED, 5, "key holder registered with the relay")                                       \
	X(HOLDER_LOST, 6, "key holder registration lost; registering again")

enum rly_key_event {
#define X(name, value, desc) RLY_KEY_EV_##name = value,
	RLY_FOREACH_KEY_EVENT(X)
#undef X
};

/** Name of a key event ("GRANTED"), or "UNKNOWN". */
const char *rly_key_event_name(enum rly_key_event ev);

struct rly_pub_opts {
	const char *relay;              /**< "a.b.c.d[:port]" (default port RLY_WIRE_DEFAULT_PORT) */
	const char *bind;               /**< optional local "a.b.c.d[:port]" */
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint16_t content_type;
	uint32_t dgram_max;             /**< largest datagram to send; 0: 1472 (1500-byte MTU) */
	uint32_t msgs_per_dgram;        /**< most messages per datagram; 0: as many as fit */
	/** Signs every message (Ed25519, 64 bytes after each payload). NULL: a fresh identity for
	 *  this publisher, so its messages verify but name nobody a registry knows. */
	const struct rly_identity *identity;
	uint32_t chain;                 /**< 0: random (a new chain per publisher start) */
	int sndbuf;                     /**< SO_SNDBUF bytes; 0: system default */
	/**
	 * Nonzero: encrypt every message under the chain's group key, then sign it
	 * (docs/encryption.md), and hold the keys: the publisher opens a second UDP socket to the
	 * relay (rly_pub_fd), registers it as the stream's key holder and answers subscribers' key
	 * requests (that socket binds to the address of `bind`, if given, on a port of its own).
	 * Each payload grows by RLY_MSG_TAG_LEN bytes on the wire, so the largest one is
	 * RLY_MSG_TAG_LEN smaller (rly_pub_max_payload). Needs registry_dir.
	 */
	int encrypt;
	/**
	 * Directory of the stream registry (*.grants files, docs/registry.md) that decides who may
	 * have the key: a requester gets it only if the registry allows it to SUBSCRIBE to the
	 * stream at that moment. Required when encrypt is set (rly_pub_create fails with -EINVAL
	 * without it), ignored otherwise. Reloaded when it changes (checked at most once a
	 * second); if a reload no longer allows someone who was given the current generation, the
	 * publisher rekeys at once (RLY_KEY_EV_REKEYED).
	 */
	const char *registry_dir;
	/**
	 * Nonzero: a requester gets the step it asked for, back to the start of the current
	 * generation, so a late joiner can read buffered or replayed messages from before it joined.
	 * Default: a requester new to the stream (given no key of this generation or the one
	 * before) triggers a rotate and gets the new step only, so the messages it saw before its
	 * key arrived stay unreadable to it; one that held the previous generation gets the new one
	 * from step 0 without a rotate (a rekey costs the subscribers still allowed nothing); one
	 * asking again gets the step it asked for if not older than its first key of the
	 * generation (docs/encryption.md section 3).
	 */
	int key_history;
	/**
	 * Optional: told about key events (enum rly_key_event) as they happen, from inside the
	 * rly_pub_* call that caused them (offer, flush, poll, register, rotate, rekey). @p who is
	 * the requester (RLY_ID_LEN bytes) for GRANTED and DENIED, the identity whose revocation
	 * caused an automatic REKEYED, else NULL; @p key_id is the key granted (GRANTED), the key
	 * asked for (DENIED; 0 means "current"), or the new current key (ROTATED, REKEYED,
	 * REGISTERED, HOLDER_LOST). Must not call back into the same publisher.
	 */
	void (*on_key_event)(void *ctx, enum rly_key_event ev, const uint8_t *who,
			     uint32_t key_id);
	void *key_event_ctx; /**< passed to on_key_event */
};

/**
 * Open a UDP socket to the relay. 0, or -errno. With opts.encrypt it also loads the registry
 * (-EINVAL without registry_dir, or the loader's -errno), draws generation 1's key
 * (key_id RLY_KEY_ID(1, 0)), opens the key holder's socket and starts its registration without
 * waiting for it (rly_pub_register waits; offer, flush and poll carry it on).
 */
int rly_pub_create(rly_pub_t **out, const struct rly_pub_opts *opts);

/**
 * Queue one message, stamped now (CLOCK_REALTIME) with the next sequence number, and sign it: the
 * signature (RLY_WIRE_SIG_LEN bytes) takes room in the datagram, so the largest payload is
 * RLY_WIRE_MAX_PAYLOAD(dgram_max, RLY_WIRE_SIG_LEN), and signing (one Ed25519 signature, tens of
 * microseconds) is most of the call's cost. Datagrams are sent in batches once the batch is full.
 * An encrypting publisher encrypts the payload under the current group key before signing
 * (the encryption costs far less than the signature).
 * Returns 0, RLY_BACK_PRESSURED (the message is queued; flush later), or -EMSGSIZE if the payload
 * cannot fit in one datagram (longer than rly_pub_max_payload). The queue is bounded: -EAGAIN
 * means it is full while the socket is full, so the message was not queued and took no sequence
 * number (flush, then offer it again). Any other -errno: the message was queued, but the kernel
 * refused an earlier datagram, which was dropped and counted in send_errors.
 */
int rly_pub_offer(rly_pub_t *p, const void *payload, size_t len);

/**
 * Send everything queued. Returns 0, RLY_BACK_PRESSURED (some still queued), or -errno.
 * An encrypting publisher's offer and flush also answer waiting key requests and keep the key
 * holder registered, without blocking and at most about once a millisecond.
 */
int rly_pub_flush(rly_pub_t *p);

/**
 * Largest payload rly_pub_offer accepts: RLY_WIRE_MAX_PAYLOAD(dgram_max, RLY_WIRE_SIG_LEN), less
 * RLY_MSG_TAG_LEN when encrypting.
 */
size_t rly_pub_max_payload(const rly_pub_t *p);

/**
 * Encrypting publishers: run the key holder's registration (the subscribe handshake on
 * (stream, RLY_KEY_HOLDER_PARTITION), answered with SUBSCRIBE_SIGNED by the publisher's identity),
 * answering key requests meanwhile, for at most @p timeout_ms. Returns 0 once registered (at
 * once if it already is); -ECONNREFUSED when the relay refused, with a message naming the status
 * ("relay refused the key holder: DENIED (...)": a relay with a registry wants the PUBLISH
 * permission); -ETIMEDOUT; -EINVAL when the publisher does not encrypt. A refused or timed-out
 * holder is retried automatically (every 1.6 s) by later offer/flush/poll calls; so is a lease
 * the relay forgot (NOT_SUBSCRIBED).
 */
int rly_pub_register(rly_pub_t *p, int timeout_ms);

/**
 * Encrypting publishers that idle: answer key requests, keep the holder's lease and reload a
 * changed registry, waiting at most @p timeout_ms (0: don't wait) for the first datagram on
 * rly_pub_fd. It does not send queued data (rly_pub_flush does). Returns the number of key
 * requests answered (GRANTED or DENIED), or -errno; 0 when not encrypting.
 */
int rly_pub_poll(rly_pub_t *p, int timeout_ms);

/** The key holder's socket, for epoll/poll integration (readable: rly_pub_poll has work), or -1
 *  when the publisher does not encrypt. */
int rly_pub_fd(const rly_pub_t *p);

/**
 * Move the group key one ratchet step: messages offered from now on use key_id + 1, which every
 * subscriber holding the current key derives alone; a subscriber that asks later cannot read
 * earlier steps (unless key_history). At step 65535 this is a rekey. 0 (ROTATED or REKEYED
 * fired), or -EINVAL when the publisher does not encrypt.
 */
int rly_pub_rotate(rly_pub_t *p);

/**
 * Start a new generation with a fresh random key (step 0) and forget who was given the old one:
 * every subscriber must ask again, and gets the key only if the registry allows it now. Messages
 * offered from now on use the new key. 0 (REKEYED fired, @p who NULL), -EINVAL when the publisher
 * does not encrypt, or -EOVERFLOW after generation 65535 (the chain must end: create a new
 * publisher).
 */
int rly_pub_rekey(rly_pub_t *p);

/** Flush (best effort) and free. NULL is allowed. */
void rly_pub_free(rly_pub_t *p);

struct rly_pub_stats {
	uint64_t msgs;           /**< messages handed to the kernel */
	uint64_t dgrams;         /**< datagrams handed to the kernel */
	uint64_t bytes;          /**< UDP payload bytes handed to the kernel */
	uint64_t back_pressured; /**< sendmmsg calls that found the socket full */
	uint64_t send_errors;    /**< sendmmsg failures other than a full socket */
	uint64_t last_seq;       /**< sequence of the last message queued */
	uint32_t chain;
	uint32_t key_id;         /**< current group key (generation << 16 | step); 0 when not encrypting */
	uint64_t key_requests;   /**< KEY_REQUESTs for this chain the key holder received and checked */
	uint64_t keys_granted;   /**< answered OK (a sealed key) */
	uint64_t keys_denied;    /**< answered DENIED (registry does not allow the requester) */
	uint64_t rotations;      /**< ratchet steps (rly_pub_rotate and new requesters) */
	uint64_t rekeys;         /**< new generations (rly_pub_rekey, revocations, step 65535) */
};
void rly_pub_stats(const rly_pub_t *p, struct rly_pub_stats *s);
/** The publisher's identity public key. */
const uint8_t *rly_pub_publisher(const rly_pub_t *p);

/* ------------------------------------------------------------------ subscriber */

typedef struct rly_sub rly_sub_t;

/** One received data message, valid only during the callback. */
struct rly_msg {
	const uint8_t *stream_key;
	uint32_t partition;
	uint32_t chain;
	const uint8_t *publisher;
	uint64_t seq;
	uint64_t prev_seq;
	uint64_t timestamp_ns; /**< publisher's stamp */
	uint64_t recv_ns;      /**< CLOCK_REALTIME when the batch holding it was received */
	uint32_t key_id;
	uint16_t content_type;
	uint16_t flags;
	const uint8_t *payload;
	uint16_t payload_len;
	const uint8_t *sig;  /**< the publisher's signature (verified unless opts.no_verify) */
	uint16_t sig_len;    /**< RLY_WIRE_SIG_LEN, or 0 for an unsigned message (only with no_verify) */
	/** It was missing and came again (a repair): ns from the gap's detection to its arrival. */
	uint64_t repair_ns;
	/** It waited in the subscriber for an earlier message (in-order delivery): ns held. */
	uint64_t held_ns;
};

/**
 * Why a subscriber refused a data message, passed to on_bad_message.
 * X(name, value, description)
 */
#define RLY_FOREACH_BAD_MESSAGE(X)                                                                     \
	X(UNSIGNED, 1, "message carries no signature, and the subscriber verifies")                   \
	X(SIGNATURE, 2, "signature does not verify with the message's publisher key")                 \
	X(NO_KEY, 3, "encrypted, and this subscriber has no key that opens it")                        \
	X(DECRYPT, 4, "encrypted payload does not authenticate under the key its key_id names")

enum rly_bad_message {
#define X(name, value, desc) RLY_BAD_##name = value,
	RLY_FOREACH_BAD_MESSAGE(X)
#undef X
};

/** Text for a bad-message reason ("signature does not verify ..."), or "unknown reason". */
const char *rly_sub_bad_reason_str(int reason);

/**
 * Why a range of a chain was lost (rly_gap.reason). Values 1 to 5 are the relay's GAP reasons
 * that end a wait (include/relay/wire.h); the others are the subscriber's own.
 * X(name, value, description)
 */
#define RLY_FOREACH_SUB_GAP_REASON(X)                                                                  \
	X(SEEN, 0, "repair is off (no_repair): reported as soon as a later message shows it missing")  \
	X(EVICTED, 1, "the relay's history no longer holds it")                                        \
	X(MISSING, 2, "the relay never received it (and no peer sent it before the repair timeout)")   \
	X(UNKNOWN_CHAIN, 3, "the relay keeps no history of the chain (restarted, idled out, or full)") \
	X(SLOW_CONSUMER, 5, "the relay cut this subscriber off as a slow consumer")                    \
	X(TIMEOUT, 16, "no answer to its NAKs within the repair timeout")                              \
	X(OVERFLOW, 17, "holding more messages behind it would pass the subscriber's limits")          \
	X(FORGOTTEN, 18, "its chain left the subscriber's chain table (too many publishers)")       \
	X(UNSUBSCRIBED, 19, "the subscription ended (rly_sub_unsubscribe) before it was filled")

enum rly_sub_gap_reason {
#define X(name, value, desc) RLY_SUB_GAP_##name = value,
	RLY_FOREACH_SUB_GAP_REASON(X)
#undef X
};

/** Text for a gap reason ("the relay's history no longer holds it"), or "unknown reason". */
const char *rly_sub_gap_reason_str(int reason);
/** Name of a gap reason ("EVICTED"), or "UNKNOWN". */
const char *rly_sub_gap_reason_name(int reason);

/**
 * Messages of one publisher chain that will never be delivered: sequence numbers
 * from_seq..to_seq (inclusive), for `reason` (enum rly_sub_gap_reason). With repair on (the
 * default) a range is reported once it is known lost, just before the messages after it are
 * delivered; with no_repair, as soon as a later message shows it missing.
 */
struct rly_gap {
	const uint8_t *publisher;
	uint32_t chain;
	uint64_t from_seq;
	uint64_t to_seq;
	int reason;          /**< enum rly_sub_gap_reason */
	uint64_t waited_ns;  /**< how long it was asked for before it was given up (0: not at all) */
};

/** Subscription lifecycle events passed to on_event, with a status from enum rly_sub_status. */
enum rly_sub_event {
	RLY_SUB_EV_SUBSCRIBED = 1,  /**< handshake done; lease granted */
	RLY_SUB_EV_REFUSED = 2,     /**< relay refused (status says why) */
	RLY_SUB_EV_LOST = 3,        /**< no answer to heartbeats, or relay says NOT_SUBSCRIBED */
	RLY_SUB_EV_UNSUBSCRIBED = 4,
};

struct rly_sub_callbacks {
	/**
	 * A message that passed every check, in chain order: with repair on (the default), exactly
	 * once and in sequence order per chain, a gap being filled or reported (on_gap) before what
	 * follows it is delivered. With no_repair, messages come as they arrive; one that fills a
	 * gap reported earlier (a relay sent it again) comes once, late, and counts in
	 * rly_sub_stats.repaired.
	 */
	void (*on_message)(void *ctx, const struct rly_msg *m);
	/** Messages of a chain that will never be delivered, and why (struct rly_gap). */
	void (*on_gap)(void *ctx, const struct rly_gap *g);
	/** Subscription lifecycle (enum rly_sub_event) with its status (enum rly_sub_status). */
	void (*on_event)(void *ctx, enum rly_sub_event ev, unsigned status);
	void *ctx; /**< passed to every callback */
	/**
	 * A message dropped because its signature is missing (RLY_BAD_UNSIGNED) or does not verify
	 * (RLY_BAD_SIGNATURE); @p m shows it as received, so nothing in it can be trusted, its
	 * publisher least of all. Such a message changes no chain state: it neither advances the
	 * chain's last sequence nor reports a gap, so a forgery can neither hide a loss nor invent
	 * one. Optional; the drop is counted in bad_sig either way.
	 *
	 * Encrypted messages (flags & RLY_MSG_F_ENCRYPTED) are checked in the order signature,
	 * chain order, decryption. One that passed the first two but cannot be read comes here
	 * with RLY_BAD_NO_KEY (anonymous subscriber; key denied; older than the key this subscriber
	 * was given; waited for its key longer than 10 s; or pushed out of a full key-wait queue)
	 * or RLY_BAD_DECRYPT (does not authenticate under the key its key_id names), counted in
	 * undecryptable; @p m then shows the verified header and the ciphertext. Such a message
	 * did advance its chain (it is no gap). Messages waiting for a key are held (256 per
	 * chain, 4096 in all) and reach on_message in order once it arrives, as plaintext with
	 * RLY_MSG_F_ENCRYPTED still set; a gap is reported when it is seen, which can be before
	 * held messages from before it are delivered.
	 */
	void (*on_bad_message)(void *ctx, const struct rly_msg *m, int reason);
};

struct rly_sub_opts {
	const char *relay;          /**< "a.b.c.d[:port]" */
	const char *bind;           /**< optional local "a.b.c.d[:port]" */
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	uint32_t partition;
	uint32_t lease_ms;          /**< requested lease; 0: 10000 */
	/**
	 * NULL: anonymous (plain SUBSCRIBE). Otherwise the subscriber is named by this key and
	 * answers the relay's CHALLENGE with SUBSCRIBE_SIGNED, signed by it, which a relay with a
	 * stream registry requires on any stream whose subscribe permission is not public. The
	 * library keeps a copy (zeroed on rly_sub_free).
	 */
	const struct rly_identity *identity;
	int rcvbuf;                 /**< SO_RCVBUF bytes; 0: 4 MiB */
	int auto_resubscribe;       /**< nonzero: after LOST, keep re-subscribing in rly_sub_poll */
	struct rly_sub_callbacks cb;
	/**
	 * Nonzero: deliver messages without checking their signatures (unsigned ones included).
	 * By default every message is verified before anything else is done with it, which costs
	 * one Ed25519 verification per message: 47-49 us on a 2-vCPU EPYC VM (libsodium 1.0.18),
	 * so one core verifies about 21 000 messages per second, whatever their size
	 * (bench/RESULTS.md, section 6). Turn it off only where a forged message cannot hurt, or
	 * to measure the network rather than the subscriber.
	 */
	int no_verify;
	/**
	 * Nonzero: no loss repair. Messages are delivered as they arrive and a gap is reported as
	 * soon as it is seen (reason SEEN). By default a subscriber asks its relay for what it
	 * missed (NAK: at once, then after 2 ms, doubling to 64 ms), holds what follows a gap and
	 * delivers every chain in order.
	 */
	int no_repair;
	/**
	 * How long a gap is asked for before it is reported lost (TIMEOUT); 0: 1000 ms. A gap the
	 * relay says it never received (GAP MISSING) is waited for five times as long: a relay in
	 * an overlay may still get it from a peer (seconds, when a peer relay died); then it is
	 * reported with reason MISSING.
	 */
	uint32_t repair_timeout_ms;
	/**
	 * Most messages held per chain behind a gap (a power of two; 0: 65536). Past it, the
	 * oldest gap is given up (OVERFLOW) so that the rest can be delivered.
	 */
	uint32_t reorder_max;
	/*
	 * Encrypted streams need nothing more than an identity: a subscriber with one asks the
	 * publisher's key holder (through the relay, KEY_REQUEST signed by this identity, from the
	 * subscription's address and with its token) for the group key of each encrypted chain it
	 * cannot read, and derives later ratchet steps itself. Unanswered requests are resent after
	 * 200 ms, doubling to 3.2 s; a signed DENIED stops requests for that chain for 5 s. Key
	 * requests run in rly_sub_poll (and rly_sub_subscribe) with the heartbeats. Without an
	 * identity every encrypted message is RLY_BAD_NO_KEY at once. Keys are zeroed on
	 * rly_sub_free. With no_verify, encrypted messages are still decrypted (and need a key).
	 */
};

/** Create the socket. Does not contact the relay. 0, or -errno. */
int rly_sub_create(rly_sub_t **out, const struct rly_sub_opts *opts);

/**
 * Run the subscribe handshake (SUBSCRIBE, CHALLENGE, SUBSCRIBE with the cookie -- or
 * SUBSCRIBE_SIGNED when the subscriber has an identity -- then SUB_ACK), resending on loss, for
 * at most @p timeout_ms. Data that arrives meanwhile is delivered. 0 once subscribed; -ETIMEDOUT,
 * -ECONNREFUSED (refused; errmsg gives the status), or -errno.
 */
int rly_sub_subscribe(rly_sub_t *s, int timeout_ms);

/**
 * Receive and deliver what has arrived, waiting at most @p timeout_ms (0: don't wait) for the
 * first datagram, and run timers (heartbeats, lease loss, re-subscription). Returns messages
 * delivered to on_message (dropped ones, bad signatures included, do not count), or -errno.
 */
int rly_sub_poll(rly_sub_t *s, int timeout_ms);

/**
 * Send UNSUBSCRIBE and wait at most @p timeout_ms for UNSUB_ACK. 0, -ETIMEDOUT or -errno. Either
 * way, gaps still being asked for are then given up (on_gap, reason UNSUBSCRIBED) and what was
 * held behind them is delivered, so every message published while subscribed is accounted for.
 */
int rly_sub_unsubscribe(rly_sub_t *s, int timeout_ms);

/** Free (does not unsubscribe). NULL is allowed. */
void rly_sub_free(rly_sub_t *s);

/** The socket, for epoll/poll integration: readable means rly_sub_poll has work. */
int rly_sub_fd(const rly_sub_t *s);

struct rly_sub_stats {
	uint64_t msgs;           /**< messages delivered to on_message */
	uint64_t dgrams;         /**< datagrams accepted */
	uint64_t bytes;          /**< UDP payload bytes accepted */
	uint64_t gaps;           /**< gap reports */
	uint64_t missing;        /**< messages in all gap reports */
	uint64_t stale;          /**< messages at or below the last sequence seen (duplicate or late), dropped */
	uint64_t malformed;      /**< datagrams the parser refused */
	uint64_t foreign;        /**< messages for another stream or partition, dropped */
	uint64_t chains;         /**< publisher chains seen */
	uint64_t heartbeats;     /**< HEARTBEATs sent */
	uint64_t resubscribes;   /**< handshakes after the first */
	uint64_t wire_err[RLY_WIRE_ERR_MAX]; /**< malformed datagrams by reason */
	uint64_t bad_sig;        /**< messages dropped as unsigned or with a bad signature (on_bad_message) */
	uint64_t undecryptable;  /**< encrypted messages dropped as NO_KEY or DECRYPT */
	uint64_t key_requests;   /**< KEY_REQUESTs sent, resends included */
	uint64_t keys_received;  /**< KEY_RESPONSE OK accepted (signed, answering us, opened) */
	uint64_t repaired;       /**< messages that filled a gap (a relay sent them again). With
				      repair on, missing - repaired = lost, once no gap is open */
	uint64_t lost;           /**< messages in ranges reported lost (on_gap) */
	uint64_t naks;           /**< NAKs sent (each asks for up to 8 ranges of one chain) */
	uint64_t gap_notices;    /**< GAPs received from the relay */
	uint64_t reordered;      /**< messages delivered after waiting for an earlier one */
	uint64_t held;           /**< messages held behind a gap now */
	uint64_t held_max;       /**< most messages held at once */
};
void rly_sub_stats(const rly_sub_t *s, struct rly_sub_stats *st);
/** 1 while the subscription is established, else 0. */
int rly_sub_is_subscribed(const rly_sub_t *s);

#ifdef __cplusplus
}
#endif
#endif /* RLY_CLIENT_H */
