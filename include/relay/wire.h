/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file wire.h
 * relay wire protocol, version 1: the bytes inside one UDP datagram.
 *
 * Everything here is fixed-size, packed and in network byte order; fields are read and written
 * through the rly_be*_load/store accessors below, never by casting a multi-byte field. The layout
 * is documented with diagrams in docs/wire-protocol.md; this header is the normative source and
 * the static_asserts at the bottom pin every size and offset.
 *
 * A datagram is one 8-byte rly_wire_dgram_hdr followed by:
 *  - DATA: `count` data messages back to back, each a rly_wire_msg_hdr, its payload, then its
 *    signature (sig_len bytes). Messages are self-contained, so a relay may regroup them into new
 *    datagrams without touching a byte of any message.
 *  - a control type: exactly one fixed-size body whose size is given by rly_wire_body_size().
 *
 * This header includes no DPDK, liburcu or libsodium header: clients, the control process and tools
 * build against it without the dataplane's dependencies.
 */
#ifndef RLY_WIRE_H
#define RLY_WIRE_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/** First two bytes of every relay datagram: "RY". */
#define RLY_WIRE_MAGIC 0x5259u
/** Protocol version this header describes. A different version is refused, never guessed at. */
#define RLY_WIRE_VERSION 1u
/** Default UDP port a relay listens on. */
#define RLY_WIRE_DEFAULT_PORT 4747u
/** Largest UDP payload a relay accepts or sends (jumbo frames up to an mbuf's 2 KiB data room). */
#define RLY_WIRE_MAX_DGRAM 1972u
/** UDP payload that fits a standard 1500-byte Ethernet MTU (1500 - 20 IPv4 - 8 UDP). */
#define RLY_WIRE_DGRAM_FOR_MTU(mtu) ((mtu) - 28u)
/** Bytes in an Ed25519 signature. sig_len is either 0 or this. */
#define RLY_WIRE_SIG_LEN 64u
/** Bytes in a stream key. */
#define RLY_STREAM_KEY_LEN 16u
/** Bytes in a publisher or subscriber identity (an Ed25519 public key). */
#define RLY_ID_LEN 32u
/** Bytes in a return-routability cookie and in a subscription token. */
#define RLY_COOKIE_LEN 16u

/**
 * Message types (the `type` byte of the datagram header). Values are assigned once and never
 * renumbered; reserved ones belong to later protocol features and are refused by v1 parsers with
 * RLY_WIRE_ERR_RESERVED_TYPE (so they are counted apart from garbage).
 *
 * X(name, value, body struct or void, direction, description)
 */
#define RLY_FOREACH_MSG_TYPE(X)                                                                        \
	X(DATA, 0x01, -, "pub->relay, relay->sub", "one or more data messages")                       \
	X(SUBSCRIBE, 0x10, rly_wire_subscribe, "sub->relay", "subscribe request, or its answer to a challenge") \
	X(CHALLENGE, 0x11, rly_wire_challenge, "relay->sub", "return-routability challenge: echo the cookie") \
	X(SUB_ACK, 0x12, rly_wire_ack, "relay->sub", "subscribe result, lease and subscription token") \
	X(UNSUBSCRIBE, 0x13, rly_wire_sub_ref, "sub->relay", "end a subscription (token required)")   \
	X(UNSUB_ACK, 0x14, rly_wire_ack, "relay->sub", "unsubscribe result")                          \
	X(HEARTBEAT, 0x15, rly_wire_sub_ref, "sub->relay", "renew the lease (token required)")        \
	X(HEARTBEAT_ACK, 0x16, rly_wire_ack, "relay->sub", "lease renewed, or NOT_SUBSCRIBED")         \
	X(SUBSCRIBE_SIGNED, 0x17, rly_wire_subscribe_signed, "sub->relay", "SUBSCRIBE with the cookie, signed by the subscriber's identity") \
	X(NAK, 0x20, rly_wire_nak, "sub->relay", "send again missing sequence ranges of one publisher chain") \
	X(GAP, 0x21, rly_wire_gap, "relay->sub", "a range the relay will not send again, and why")     \
	X(KEY_REQUEST, 0x30, rly_wire_key_request, "sub->relay->key holder", "ask a publisher for the group key of its chain") \
	X(KEY_RESPONSE, 0x31, rly_wire_key_response, "key holder->relay->sub", "group key sealed to the requester, or why not") \
	X(PEER_HELLO, 0x40, rly_wire_peer_hello, "relay<->relay", "peer session: hello, challenge, proof, welcome, ping, pong, bye") \
	X(PEER_JOIN, 0x41, rly_wire_peer_link, "relay<->relay", "join a stream overlay, accept or refuse, graft a lazy link") \
	X(PEER_PRUNE, 0x42, rly_wire_peer_link, "relay<->relay", "demote an overlay link to lazy, or leave it") \
	X(PEER_IHAVE, 0x43, rly_wire_peer_ihave, "relay<->relay", "lazy link summary: highest sequence held per chain") \
	X(PEER_IWANT, 0x44, rly_wire_peer_iwant, "relay<->relay", "ask a peer for a range of a chain it holds") \
	X(PEER_DISCOVER, 0x45, rly_wire_peer_discover, "relay<->relay", "discovery: announce a signed record, look a stream up, results") \
	X(RECEIPT, 0x50, reserved, "sub/relay->relay", "reserved: signed per-epoch delivery receipt")  \
	X(RECEIPT_ACK, 0x51, reserved, "relay->sub/relay", "reserved: receipt accepted or refused")

enum rly_msg_type {
#define X(name, value, body, dir, desc) RLY_MSG_##name = value,
	RLY_FOREACH_MSG_TYPE(X)
#undef X
};

/**
 * Why a parser refused a datagram. One counter per reason exists in the counters page
 * (include/relay/counters.h). Ids are appended, never renumbered.
 */
#define RLY_FOREACH_WIRE_ERR(X)                                                                        \
	X(OK, "accepted")                                                                              \
	X(TRUNCATED_HEADER, "shorter than the 8-byte datagram header")                                 \
	X(BAD_MAGIC, "first two bytes are not the relay magic 0x5259")                                 \
	X(BAD_VERSION, "protocol version is not 1")                                                    \
	X(UNKNOWN_TYPE, "message type is not defined by protocol v1")                                  \
	X(RESERVED_TYPE, "message type reserved for a later feature, not handled by v1")               \
	X(LENGTH_MISMATCH, "header length differs from the UDP payload length")                        \
	X(OVERSIZED, "datagram larger than the configured maximum")                                    \
	X(BAD_COUNT, "message count is zero, or not 1 for a control message")                          \
	X(TRUNCATED_MESSAGE, "a data message runs past the end of the datagram")                      \
	X(TRAILING_BYTES, "bytes left over after the last counted message")                            \
	X(BAD_SIG_LEN, "signature length is neither 0 nor 64")                                         \
	X(BAD_FLAGS, "unknown flag bits, or the signed flag disagrees with the signature length")      \
	X(RESERVED_NONZERO, "a reserved field is not zero")                                            \
	X(BAD_SEQUENCE, "sequence is 0, or previous sequence is not below it")                         \
	X(BAD_BODY_SIZE, "control message body is not the size its type requires")                     \
	X(BAD_FIELD, "a control message field is out of range")

enum rly_wire_err {
#define X(name, desc) RLY_WIRE_ERR_##name,
	RLY_FOREACH_WIRE_ERR(X)
#undef X
	RLY_WIRE_ERR_MAX
};

/** Human-readable reason for a wire error ("shorter than the 8-byte datagram header"). */
const char *rly_wire_err_str(enum rly_wire_err e);
/** Short identifier of a wire error ("TRUNCATED_HEADER"), as used in counter names. */
const char *rly_wire_err_name(enum rly_wire_err e);
/** Name of a message type ("SUBSCRIBE"), or NULL if the value is not defined. */
const char *rly_msg_type_name(unsigned type);

/** Big-endian field types: plain integers, named so a reader knows not to use them directly. */
typedef uint16_t rly_be16_t;
typedef uint32_t rly_be32_t;
typedef uint64_t rly_be64_t;

static inline uint16_t rly_be16_load(const void *p)
{
	uint16_t v;
	memcpy(&v, p, sizeof(v));
	return __builtin_bswap16(v);
}
static inline uint32_t rly_be32_load(const void *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v));
	return __builtin_bswap32(v);
}
static inline uint64_t rly_be64_load(const void *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return __builtin_bswap64(v);
}
static inline void rly_be16_store(void *p, uint16_t v)
{
	v = __builtin_bswap16(v);
	memcpy(p, &v, sizeof(v));
}
static inline void rly_be32_store(void *p, uint32_t v)
{
	v = __builtin_bswap32(v);
	memcpy(p, &v, sizeof(v));
}
static inline void rly_be64_store(void *p, uint64_t v)
{
	v = __builtin_bswap64(v);
	memcpy(p, &v, sizeof(v));
}

/** Datagram header: the first 8 bytes of every relay UDP payload. */
struct rly_wire_dgram_hdr {
	rly_be16_t magic;  /**< RLY_WIRE_MAGIC */
	uint8_t version;   /**< RLY_WIRE_VERSION */
	uint8_t type;      /**< enum rly_msg_type */
	rly_be16_t length; /**< whole datagram in bytes, this header included; equals the UDP payload length */
	rly_be16_t count;  /**< DATA: messages that follow (>= 1); control types: 1 */
} __attribute__((packed));

/**
 * Bit 7 of a data message's `ttl` (the one byte relays may change, not signed): a copy sent again
 * by a relay answering a peer's IWANT, kept by every relay that forwards it. A duplicate with it
 * set is expected (the repair reaches relays that had the message already) and prunes no link.
 */
#define RLY_TTL_F_REPAIR 0x80u

/** Data message flags. */
#define RLY_MSG_F_SIGNED 0x0001u    /**< sig_len is 64 and the signature follows the payload */
#define RLY_MSG_F_ENCRYPTED 0x0002u /**< payload is AEAD ciphertext under group key key_id */
#define RLY_MSG_F_ALL (RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED)

/*
 * An encrypted message (RLY_MSG_F_ENCRYPTED, key_id != 0) carries as payload the
 * XChaCha20-Poly1305-IETF ciphertext of the application's bytes (16 bytes longer: the tag), under
 * the group key key_id of its publisher chain, with the 96-byte message header (ttl zero, every
 * other field as sent) as associated data and the nonce RLY_MSG_NONCE below. A chain's group keys
 * are its own (they are derived with the chain number), and seq strictly increases within a chain,
 * so a nonce never repeats under one key, without a random draw or a syscall per message. The
 * signature covers the ciphertext (encrypt, then sign): anybody can check who sent a message;
 * only key holders can read it.
 */
/** Bytes of the AEAD nonce. */
#define RLY_MSG_NONCE_LEN 24u
/** Bytes the AEAD tag adds to an encrypted payload. */
#define RLY_MSG_TAG_LEN 16u

/** Nonce of a message: chain (be32) || seq (be64) || key_id (be32) || eight zero bytes. */
static inline void rly_msg_nonce(uint8_t out[RLY_MSG_NONCE_LEN], uint32_t chain, uint64_t seq,
				 uint32_t key_id)
{
	memset(out, 0, RLY_MSG_NONCE_LEN);
	rly_be32_store(out, chain);
	rly_be64_store(out + 4, seq);
	rly_be32_store(out + 12, key_id);
}

/**
 * Data message header (96 bytes), followed by payload_len bytes of payload and sig_len bytes of
 * signature. The signature, when present, covers this header with `ttl` taken as zero, and the
 * payload; relays change only `ttl`.
 */
struct rly_wire_msg_hdr {
	uint8_t stream_key[RLY_STREAM_KEY_LEN]; /**< stream identity (BLAKE2b-128 of the stream name) */
	rly_be32_t partition;                   /**< partition of the stream */
	rly_be32_t chain;                       /**< publisher's message chain (new on each publisher start) */
	uint8_t publisher[RLY_ID_LEN];          /**< publisher's Ed25519 public key */
	rly_be64_t seq;                         /**< sequence number in the chain, >= 1 */
	rly_be64_t prev_seq;                    /**< previous sequence in the chain; 0 for the first */
	rly_be64_t timestamp_ns;                /**< publisher clock, ns since the Unix epoch (CLOCK_REALTIME) */
	rly_be32_t key_id;                      /**< group key id when encrypted, else 0 */
	rly_be16_t content_type;                /**< application-defined payload type */
	rly_be16_t flags;                       /**< RLY_MSG_F_* */
	rly_be16_t payload_len;                 /**< payload bytes after this header */
	rly_be16_t sig_len;                     /**< 0 or RLY_WIRE_SIG_LEN */
	uint8_t ttl;                            /**< hop limit for relay overlays; not signed */
	uint8_t reserved[3];                    /**< zero */
} __attribute__((packed));

/** Bytes of a whole data message given its header. */
static inline size_t rly_wire_msg_size(const struct rly_wire_msg_hdr *h)
{
	return sizeof(*h) + rly_be16_load(&h->payload_len) + rly_be16_load(&h->sig_len);
}

/** Largest payload one message can carry in a datagram of @p dgram_max bytes, signed or not. */
#define RLY_WIRE_MAX_PAYLOAD(dgram_max, sig)                                                           \
	((dgram_max) - sizeof(struct rly_wire_dgram_hdr) - sizeof(struct rly_wire_msg_hdr) - (sig))

/**
 * SUBSCRIBE body. First sent with issued_ms = 0 and a zero cookie; the relay answers with a
 * CHALLENGE to the source address, and the subscriber sends SUBSCRIBE again with the challenge's
 * issued_ms and cookie. Only then is the source address added. The body is padded so that a
 * SUBSCRIBE is never smaller than the CHALLENGE it provokes (no amplification).
 */
struct rly_wire_subscribe {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t lease_ms;             /**< requested lease; the relay may grant less */
	rly_be64_t request_id;           /**< chosen by the subscriber, echoed in CHALLENGE and SUB_ACK */
	uint8_t subscriber[RLY_ID_LEN];  /**< subscriber's Ed25519 public key, zero if anonymous */
	rly_be64_t issued_ms;            /**< 0, or the CHALLENGE's issued_ms */
	uint8_t cookie[RLY_COOKIE_LEN];  /**< zero, or the CHALLENGE's cookie */
	uint8_t reserved[8];             /**< zero */
} __attribute__((packed));

/** Domain separator that SUBSCRIBE_SIGNED's signature covers, before the 96-byte SUBSCRIBE. */
#define RLY_SUBSCRIBE_SIG_CONTEXT "relay-subscribe-v1"

/**
 * SUBSCRIBE_SIGNED body: the answer to a CHALLENGE (issued_ms and cookie set) from a subscriber
 * with an identity. `sig` is the Ed25519 signature of `sub.subscriber` over
 * RLY_SUBSCRIBE_SIG_CONTEXT (18 bytes, no NUL) followed by the 96 bytes of `sub`. A relay that
 * keeps a stream registry needs it for any stream whose subscribe permission is not public.
 */
struct rly_wire_subscribe_signed {
	struct rly_wire_subscribe sub;
	uint8_t sig[RLY_WIRE_SIG_LEN];
} __attribute__((packed));

/** CHALLENGE body: sent only to the source address of a SUBSCRIBE. */
struct rly_wire_challenge {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t reserved; /**< zero */
	rly_be64_t request_id;
	rly_be64_t issued_ms;           /**< relay clock when the cookie was made; echo it back */
	uint8_t cookie[RLY_COOKIE_LEN]; /**< MAC over source address, port, stream, partition, request, issued_ms */
} __attribute__((packed));

/**
 * Subscription status codes carried in acks (and in control-process logs).
 * X(name, value, description)
 */
#define RLY_FOREACH_SUB_STATUS(X)                                                                      \
	X(OK, 0, "done")                                                                               \
	X(DENIED, 1, "not permitted")                                                                  \
	X(BAD_COOKIE, 2, "cookie does not match this source address and request")                      \
	X(COOKIE_EXPIRED, 3, "cookie is older than the challenge lifetime; subscribe again")           \
	X(NOT_SUBSCRIBED, 4, "no subscription for this source address and stream")                     \
	X(TABLE_FULL, 5, "relay has no room for another subscriber or stream")                         \
	X(RATE_LIMITED, 6, "too many requests from this source; retry later")                          \
	X(BAD_TOKEN, 7, "subscription token does not match")                                           \
	X(UNAVAILABLE, 8, "relay control plane is not ready; retry")                                   \
	X(SLOW_CONSUMER, 9, "cut off as a slow consumer (repair demand above its budget); subscribe again")

enum rly_sub_status {
#define X(name, value, desc) RLY_SUB_##name = value,
	RLY_FOREACH_SUB_STATUS(X)
#undef X
};

/** Text for a subscription status, or "unknown status". */
const char *rly_sub_status_str(unsigned status);
/** Name of a subscription status ("BAD_COOKIE"), or "UNKNOWN". */
const char *rly_sub_status_name(unsigned status);

/** SUB_ACK, UNSUB_ACK and HEARTBEAT_ACK body. */
struct rly_wire_ack {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be16_t status;    /**< enum rly_sub_status */
	rly_be16_t reserved;  /**< zero */
	rly_be64_t request_id;
	rly_be32_t lease_ms;     /**< granted lease (0 when status is not OK) */
	rly_be32_t heartbeat_ms; /**< how often the relay wants a HEARTBEAT */
	uint8_t token[RLY_COOKIE_LEN]; /**< SUB_ACK OK: secret for HEARTBEAT/UNSUBSCRIBE; else zero */
} __attribute__((packed));

/** UNSUBSCRIBE and HEARTBEAT body: names a subscription by its token. */
struct rly_wire_sub_ref {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t reserved; /**< zero */
	rly_be64_t request_id;
	uint8_t token[RLY_COOKIE_LEN];
} __attribute__((packed));

/*
 * Loss repair between a subscriber and its relay (docs/wire-protocol.md section 8). A subscriber
 * that sees a chain's sequence jump asks its relay for the missing ranges (NAK); the relay answers
 * from its history of the chain, without its control plane: DATA datagrams holding the messages
 * byte for byte, `ttl` bit 7 set (RLY_TTL_F_REPAIR), and a GAP for every part of a range it will
 * not send. Only a subscriber of the stream, from the subscription's own address and port, gets an
 * answer, and only within its repair budget.
 */

/** Ranges one NAK carries at most. */
#define RLY_NAK_RANGES 8u

/** One missing range, from_seq..to_seq inclusive. */
struct rly_wire_nak_range {
	rly_be64_t from_seq; /**< >= 1 */
	rly_be64_t to_seq;   /**< >= from_seq */
} __attribute__((packed));

/**
 * NAK body (200 bytes). Ranges are in ascending order and do not touch (each from_seq is above the
 * previous to_seq); entries past `n` are zero. A NAK is never smaller than the GAP it provokes.
 */
struct rly_wire_nak {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t chain;               /**< the publisher chain the ranges belong to */
	uint8_t publisher[RLY_ID_LEN];  /**< the chain's publisher */
	rly_be64_t request_id;          /**< chosen by the subscriber, never 0; echoed in GAPs */
	uint8_t n;                      /**< ranges used, 1..RLY_NAK_RANGES */
	uint8_t reserved[7];            /**< zero */
	struct rly_wire_nak_range r[RLY_NAK_RANGES];
} __attribute__((packed));

/**
 * Why a relay will not send a range again (GAP reason). Final reasons end the subscriber's wait:
 * it reports the range as lost. X(name, value, final, description)
 */
#define RLY_FOREACH_GAP_REASON(X)                                                                      \
	X(EVICTED, 1, 1, "older than what the relay's history of the chain still holds")              \
	X(MISSING, 2, 0, "the relay never received these messages (it may still get them from a peer)") \
	X(UNKNOWN_CHAIN, 3, 1, "the relay keeps no history of this chain (never seen, idle and forgotten, or history full)") \
	X(PACED, 4, 0, "over this subscriber's repair budget: ask again later")                       \
	X(SLOW_CONSUMER, 5, 1, "cut off: repair demand above the budget for too long; the subscription ends, subscribe again")

enum rly_gap_reason {
#define X(name, value, final, desc) RLY_GAP_##name = value,
	RLY_FOREACH_GAP_REASON(X)
#undef X
	RLY_GAP_REASON_MAX = 5
};

/** Name of a GAP reason ("EVICTED"), or "UNKNOWN". */
const char *rly_gap_reason_name(unsigned reason);
/** Description of a GAP reason, or "unknown reason". */
const char *rly_gap_reason_str(unsigned reason);
/** 1 if a GAP with this reason ends the wait for its range (the range is lost), else 0. */
int rly_gap_reason_final(unsigned reason);

/** GAP body (96 bytes): the range from_seq..to_seq of one chain will not be sent again. */
struct rly_wire_gap {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t chain;
	uint8_t publisher[RLY_ID_LEN];
	rly_be64_t from_seq;            /**< >= 1 */
	rly_be64_t to_seq;              /**< >= from_seq */
	rly_be64_t request_id;          /**< the NAK's, never 0 */
	rly_be64_t lowest;              /**< lowest seq of the chain the relay still holds; 0: none */
	uint8_t reason;                 /**< enum rly_gap_reason */
	uint8_t reserved[7];            /**< zero */
} __attribute__((packed));

/**
 * Partition number a key holder subscribes to. A publisher's client (or a key holder sharing its
 * identity) that hands out group keys runs the subscribe handshake on (stream, this partition)
 * with SUBSCRIBE_SIGNED; the relay then forwards it the KEY_REQUESTs that name its identity as
 * publisher, and never sends it data (nobody subscribes to this partition for data, so data sent
 * to it reaches nobody).
 */
#define RLY_KEY_HOLDER_PARTITION 0xFFFFFFFFu

/** Domain separator of a KEY_REQUEST signature (ASCII, no NUL). */
#define RLY_KEY_REQUEST_SIG_CONTEXT "relay-key-request-v1"
/** Domain separator of a KEY_RESPONSE signature (ASCII, no NUL). */
#define RLY_KEY_RESPONSE_SIG_CONTEXT "relay-key-response-v1"
/** Bytes of a group key (XChaCha20-Poly1305). */
#define RLY_GROUP_KEY_LEN 32u
/** Bytes of the key record sealed in a KEY_RESPONSE: key_id (be32), key, flags (be32, zero). */
#define RLY_KEY_RECORD_LEN (4u + RLY_GROUP_KEY_LEN + 4u)
/** Bytes of crypto_box_seal() output for a key record (libsodium's crypto_box_SEALBYTES is 48). */
#define RLY_KEY_SEALED_LEN (RLY_KEY_RECORD_LEN + 48u)

/**
 * Group key ids: the high 16 bits are the generation (a new random key, rly_pub_rekey), the low 16
 * bits the ratchet step within it (rly_pub_rotate: key(n+1) = BLAKE2b(key(n)), which a holder of
 * key(n) derives itself). 0 means "not encrypted" in a data message, and "the current key" in a
 * KEY_REQUEST.
 */
#define RLY_KEY_ID(gen, step) (((uint32_t)(gen) << 16) | (uint16_t)(step))
#define RLY_KEY_ID_GEN(id) ((uint16_t)((id) >> 16))
#define RLY_KEY_ID_STEP(id) ((uint16_t)((id) & 0xFFFFu))

/**
 * KEY_REQUEST body: a subscriber asks for the group key of one publisher chain. Sent to the relay
 * from the address of the subscription on (stream, partition) with its token; the relay checks the
 * token and that the subscription proved the requester's identity, zeroes the token, and forwards
 * the request to the publisher's key holders. `sig` is the requester's Ed25519 signature over
 * RLY_KEY_REQUEST_SIG_CONTEXT followed by the first 104 bytes (everything before `token`). The
 * body is padded so that a request is never smaller than the response it provokes.
 */
struct rly_wire_key_request {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t chain;               /**< the publisher chain whose key is wanted */
	rly_be32_t key_id;              /**< the key id seen in a message, or 0: the current key */
	rly_be32_t reserved;            /**< zero */
	rly_be64_t request_id;          /**< chosen by the requester (not 0), echoed in the response */
	uint8_t publisher[RLY_ID_LEN];  /**< the chain's publisher: whose key holders are asked */
	uint8_t requester[RLY_ID_LEN];  /**< the requester's identity; the key is sealed to it */
	uint8_t token[RLY_COOKIE_LEN];  /**< the subscription token; zero once the relay forwarded it */
	uint8_t sig[RLY_WIRE_SIG_LEN];
	uint8_t pad[72];                /**< zero */
} __attribute__((packed));

/**
 * KEY_RESPONSE body. From a key holder with status OK: `sealed` is crypto_box_seal() of the key
 * record to the requester's X25519 key (derived from its Ed25519 identity), and `sig` is the
 * publisher's Ed25519 signature over RLY_KEY_RESPONSE_SIG_CONTEXT followed by the first 192 bytes
 * (everything before `sig`). The holder may also answer DENIED (signed, sealed all zero). The relay
 * itself answers UNAVAILABLE (no key holder registered for that publisher) or RATE_LIMITED, with
 * `sealed` and `sig` all zero: a requester treats an unsigned answer as a hint to retry later,
 * never as a refusal.
 */
struct rly_wire_key_response {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t chain;
	rly_be32_t key_id;                 /**< the key sealed inside (status OK), else 0 */
	rly_be16_t status;                 /**< enum rly_sub_status */
	rly_be16_t reserved;               /**< zero */
	rly_be64_t request_id;             /**< the request's */
	uint8_t publisher[RLY_ID_LEN];
	uint8_t requester[RLY_ID_LEN];
	uint8_t sealed[RLY_KEY_SEALED_LEN];
	uint8_t sig[RLY_WIRE_SIG_LEN];
} __attribute__((packed));

static_assert(sizeof(struct rly_wire_dgram_hdr) == 8, "dgram header is 8 bytes");
static_assert(sizeof(struct rly_wire_msg_hdr) == 96, "message header is 96 bytes");
static_assert(offsetof(struct rly_wire_msg_hdr, partition) == 16, "partition at 16");
static_assert(offsetof(struct rly_wire_msg_hdr, chain) == 20, "chain at 20");
static_assert(offsetof(struct rly_wire_msg_hdr, publisher) == 24, "publisher at 24");
static_assert(offsetof(struct rly_wire_msg_hdr, seq) == 56, "seq at 56");
static_assert(offsetof(struct rly_wire_msg_hdr, prev_seq) == 64, "prev_seq at 64");
static_assert(offsetof(struct rly_wire_msg_hdr, timestamp_ns) == 72, "timestamp at 72");
static_assert(offsetof(struct rly_wire_msg_hdr, key_id) == 80, "key_id at 80");
static_assert(offsetof(struct rly_wire_msg_hdr, content_type) == 84, "content_type at 84");
static_assert(offsetof(struct rly_wire_msg_hdr, flags) == 86, "flags at 86");
static_assert(offsetof(struct rly_wire_msg_hdr, payload_len) == 88, "payload_len at 88");
static_assert(offsetof(struct rly_wire_msg_hdr, sig_len) == 90, "sig_len at 90");
static_assert(offsetof(struct rly_wire_msg_hdr, ttl) == 92, "ttl at 92");
static_assert(sizeof(struct rly_wire_subscribe) == 96, "subscribe body is 96 bytes");
static_assert(sizeof(struct rly_wire_challenge) == 56, "challenge body is 56 bytes");
static_assert(sizeof(struct rly_wire_ack) == 56, "ack body is 56 bytes");
static_assert(sizeof(struct rly_wire_sub_ref) == 48, "sub_ref body is 48 bytes");
static_assert(sizeof(struct rly_wire_subscribe_signed) == 160, "signed subscribe body is 160 bytes");
static_assert(sizeof(struct rly_wire_nak) == 200, "nak body is 200 bytes");
static_assert(offsetof(struct rly_wire_nak, r) == 72, "nak ranges at 72");
static_assert(sizeof(struct rly_wire_gap) == 96, "gap body is 96 bytes");
static_assert(sizeof(struct rly_wire_nak) >= sizeof(struct rly_wire_gap),
	      "a NAK must not be smaller than the GAP it provokes");
static_assert(sizeof(struct rly_wire_key_request) == 256, "key request body is 256 bytes");
static_assert(offsetof(struct rly_wire_key_request, token) == 104, "key request token at 104");
static_assert(sizeof(struct rly_wire_key_response) == 256, "key response body is 256 bytes");
static_assert(offsetof(struct rly_wire_key_response, sealed) == 104, "key response sealed at 104");
static_assert(offsetof(struct rly_wire_key_response, sig) == 192, "key response sig at 192");
static_assert(sizeof(struct rly_wire_key_request) >= sizeof(struct rly_wire_key_response),
	      "a KEY_REQUEST must not be smaller than the KEY_RESPONSE it provokes");
static_assert(sizeof(struct rly_wire_subscribe) >= sizeof(struct rly_wire_challenge),
	      "a SUBSCRIBE must not be smaller than the CHALLENGE it provokes");

/*
 * Relay-to-relay messages (section 9 of docs/wire-protocol.md). A relay accepts them only from the
 * network side of another relay; clients never send them. Everything but the first two kinds of
 * PEER_HELLO carries a session token: the 16 bytes the receiver handed out when the session was
 * made, so that the receiver can check with one MAC that the datagram comes from the peer's
 * address and session. Only authenticated peers get an answer larger than what they sent.
 */

/** PEER_HELLO kinds. X(name, value, description) */
#define RLY_FOREACH_PEER_HELLO_KIND(X)                                                                 \
	X(HELLO, 1, "open a session: sender identity, no cookie")                                      \
	X(CHALLENGE, 2, "return-routability cookie for a HELLO; unsigned, never larger than it")       \
	X(PROOF, 3, "HELLO with the cookie, the sender's token, signed by the sender")                 \
	X(WELCOME, 4, "session accepted: the responder's identity and token, signed")                  \
	X(PING, 5, "keepalive inside a session")                                                       \
	X(PONG, 6, "keepalive answer")                                                                 \
	X(BYE, 7, "session closed by the sender")

enum rly_peer_hello_kind {
#define X(name, value, desc) RLY_PEER_##name = value,
	RLY_FOREACH_PEER_HELLO_KIND(X)
#undef X
	RLY_PEER_HELLO_KIND_MAX = 7
};

/** Domain separator of a PEER_HELLO signature (PROOF, WELCOME), ASCII, no NUL. */
#define RLY_PEER_HELLO_SIG_CONTEXT "relay-peer-hello-v1"

/**
 * PEER_HELLO body (192 bytes). The session handshake between relays is the subscribe handshake
 * made mutual: HELLO -> CHALLENGE (a MAC over the initiator's address, port and request) ->
 * PROOF (cookie echoed, signed by the initiator's Ed25519 identity, carrying the token the
 * responder must put on everything it sends to the initiator) -> WELCOME (signed by the responder
 * over the same request_id, carrying the responder's token). PING/PONG/BYE carry the receiver's
 * token. `sig` covers RLY_PEER_HELLO_SIG_CONTEXT followed by bytes 0..127; it is zero in the
 * unsigned kinds.
 */
struct rly_wire_peer_hello {
	uint8_t kind;                    /**< enum rly_peer_hello_kind */
	uint8_t reserved0[3];            /**< zero */
	rly_be32_t reserved1;            /**< zero */
	rly_be64_t request_id;           /**< the initiator's, never 0; echoed by every answer */
	rly_be64_t issued_ms;            /**< CHALLENGE, PROOF: the cookie's time; else 0 */
	uint8_t cookie[RLY_COOKIE_LEN];  /**< CHALLENGE, PROOF: the cookie; else zero */
	uint8_t token[RLY_COOKIE_LEN];   /**< PROOF, WELCOME: the sender's token for the receiver to use;
					      PING, PONG, BYE: the receiver's token; else zero */
	uint8_t sender[RLY_ID_LEN];      /**< HELLO, PROOF, WELCOME: the sender's identity */
	uint8_t target[RLY_ID_LEN];      /**< identity the sender expects to reach, or zero: any */
	uint8_t reserved2[8];            /**< zero */
	uint8_t sig[RLY_WIRE_SIG_LEN];   /**< PROOF, WELCOME: signature by `sender`; else zero */
} __attribute__((packed));

/** PEER_JOIN and PEER_PRUNE kinds (one space for both types). X(name, value, description) */
#define RLY_FOREACH_PEER_LINK_KIND(X)                                                                  \
	X(JOIN, 1, "PEER_JOIN: make an eager overlay link for the stream")                             \
	X(ACCEPT, 2, "PEER_JOIN: the link exists (eager)")                                             \
	X(REFUSE, 3, "PEER_JOIN: no link; `reason` says why")                                          \
	X(GRAFT, 4, "PEER_JOIN: make a lazy link eager again (a message was missed)")                  \
	X(PRUNE, 5, "PEER_PRUNE: make an eager link lazy (a duplicate arrived over it)")               \
	X(LEAVE, 6, "PEER_PRUNE: drop the link")

enum rly_peer_link_kind {
#define X(name, value, desc) RLY_LINK_##name = value,
	RLY_FOREACH_PEER_LINK_KIND(X)
#undef X
	RLY_LINK_KIND_MAX = 6
};

/** Why a JOIN was refused or a link left. */
#define RLY_FOREACH_PEER_REASON(X)                                                                     \
	X(NONE, 0, "no reason given")                                                                  \
	X(FULL, 1, "the relay has the most links it takes for this stream")                            \
	X(NOT_SERVING, 2, "the relay does not serve this stream")                                      \
	X(NO_SESSION, 3, "no peer session with the sender")                                            \
	X(SHUTDOWN, 4, "the relay is stopping")                                                        \
	X(DEAD, 5, "the peer stopped answering")

enum rly_peer_reason {
#define X(name, value, desc) RLY_REASON_##name = value,
	RLY_FOREACH_PEER_REASON(X)
#undef X
	RLY_REASON_MAX = 5
};

/** PEER_JOIN and PEER_PRUNE body (64 bytes). */
struct rly_wire_peer_link {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	uint8_t kind;                   /**< enum rly_peer_link_kind: JOIN..GRAFT in PEER_JOIN,
					     PRUNE and LEAVE in PEER_PRUNE */
	uint8_t reason;                 /**< enum rly_peer_reason (REFUSE, LEAVE); else 0 */
	rly_be16_t reserved0;           /**< zero */
	rly_be64_t request_id;          /**< never 0; an ACCEPT or REFUSE echoes the JOIN's */
	uint8_t token[RLY_COOKIE_LEN];  /**< the receiver's session token */
	uint8_t reserved1[16];          /**< zero */
} __attribute__((packed));

/** Chains one PEER_IHAVE describes at most. */
#define RLY_IHAVE_MAX 8u

/** One chain in a PEER_IHAVE. */
struct rly_wire_ihave_entry {
	uint8_t publisher[RLY_ID_LEN];
	rly_be32_t chain;
	rly_be32_t reserved; /**< zero */
	rly_be64_t highest;  /**< highest seq the sender holds of (publisher, chain); >= 1 */
} __attribute__((packed));

/** PEER_IHAVE body (432 bytes): sent over lazy links, the gossipsub-style summary. */
struct rly_wire_peer_ihave {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	uint8_t n;                      /**< entries used, 0..RLY_IHAVE_MAX; the rest are zero */
	uint8_t reserved0[3];           /**< zero */
	uint8_t token[RLY_COOKIE_LEN];  /**< the receiver's session token */
	uint8_t reserved1[8];           /**< zero */
	struct rly_wire_ihave_entry e[RLY_IHAVE_MAX];
} __attribute__((packed));

/** PEER_IWANT body (96 bytes): the range [from_seq, to_seq] of one chain. */
struct rly_wire_peer_iwant {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t chain;
	uint8_t publisher[RLY_ID_LEN];
	rly_be64_t from_seq;            /**< >= 1 */
	rly_be64_t to_seq;              /**< >= from_seq */
	rly_be64_t request_id;          /**< never 0 */
	uint8_t token[RLY_COOKIE_LEN];  /**< the receiver's session token */
} __attribute__((packed));

/** Domain separator of a discovery record signature, ASCII, no NUL. */
#define RLY_DISC_RECORD_SIG_CONTEXT "relay-disc-record-v1"

/**
 * A discovery record (136 bytes): "relay `relay` at ip:port serves (stream, partition) until
 * expires_ms". Signed by the relay's identity over RLY_DISC_RECORD_SIG_CONTEXT followed by bytes
 * 0..71; every reader verifies it and drops it after expires_ms. The same bytes are the value
 * stored in a DHT.
 */
struct rly_disc_record {
	uint8_t stream_key[RLY_STREAM_KEY_LEN];
	rly_be32_t partition;
	rly_be32_t ip_be;               /**< the relay's IPv4 address (network order, as on the wire) */
	rly_be16_t udp_port;            /**< the relay's UDP port */
	rly_be16_t flags;               /**< zero */
	rly_be32_t reserved;            /**< zero */
	rly_be64_t expires_ms;          /**< CLOCK_REALTIME, ms since the epoch */
	uint8_t relay[RLY_ID_LEN];      /**< the relay's Ed25519 identity */
	uint8_t sig[RLY_WIRE_SIG_LEN];
} __attribute__((packed));

/** PEER_DISCOVER kinds. X(name, value, description) */
#define RLY_FOREACH_DISC_KIND(X)                                                                       \
	X(ANNOUNCE, 1, "store this signed record until it expires")                                    \
	X(LOOKUP, 2, "which relays serve record.stream_key/partition? (the rest of record is zero)")   \
	X(RESULT, 3, "one record answering a LOOKUP (all zero: none); `more` records follow")

enum rly_disc_kind {
#define X(name, value, desc) RLY_DISC_##name = value,
	RLY_FOREACH_DISC_KIND(X)
#undef X
	RLY_DISC_KIND_MAX = 3
};

/** PEER_DISCOVER body (176 bytes): the static-seed discovery backend's messages. */
struct rly_wire_peer_discover {
	uint8_t kind;                   /**< enum rly_disc_kind */
	uint8_t reserved0;              /**< zero */
	rly_be16_t more;                /**< RESULT: records still to come for this request */
	rly_be32_t reserved1;           /**< zero */
	rly_be64_t request_id;          /**< never 0; a RESULT echoes the LOOKUP's */
	uint8_t token[RLY_COOKIE_LEN];  /**< the receiver's session token */
	struct rly_disc_record rec;
	uint8_t reserved2[8];           /**< zero */
} __attribute__((packed));

static_assert(sizeof(struct rly_wire_peer_hello) == 192, "peer hello body is 192 bytes");
static_assert(offsetof(struct rly_wire_peer_hello, sig) == 128, "peer hello sig at 128");
static_assert(sizeof(struct rly_wire_peer_link) == 64, "peer link body is 64 bytes");
static_assert(sizeof(struct rly_wire_ihave_entry) == 48, "ihave entry is 48 bytes");
static_assert(sizeof(struct rly_wire_peer_ihave) == 432, "peer ihave body is 432 bytes");
static_assert(sizeof(struct rly_wire_peer_iwant) == 96, "peer iwant body is 96 bytes");
static_assert(sizeof(struct rly_disc_record) == 136, "discovery record is 136 bytes");
static_assert(offsetof(struct rly_disc_record, sig) == 72, "discovery record sig at 72");
static_assert(sizeof(struct rly_wire_peer_discover) == 176, "peer discover body is 176 bytes");

/**
 * Body size a control type requires, 0 for DATA (variable), or -1 for an undefined or reserved
 * type.
 */
int rly_wire_body_size(unsigned type);

/** A validated datagram: what rly_wire_parse() found. Points into the caller's buffer. */
struct rly_wire_view {
	uint8_t type;        /**< enum rly_msg_type */
	uint16_t count;      /**< messages (DATA) or 1 */
	const uint8_t *body; /**< first byte after the datagram header */
	size_t body_len;     /**< bytes after the datagram header */
};

/**
 * Validate one datagram of @p len bytes completely: header, every message header and every length,
 * before the caller trusts any of it. Returns RLY_WIRE_ERR_OK and fills @p v, or the reason it was
 * refused. @p max_len is the largest datagram the caller accepts (at most RLY_WIRE_MAX_DGRAM).
 * Pure function: no allocation, no I/O; safe on any input.
 */
enum rly_wire_err rly_wire_parse(const void *buf, size_t len, size_t max_len,
				 struct rly_wire_view *v);

/**
 * Step through the messages of a validated DATA view. Set *@p off to 0 before the first call;
 * returns the next message header (and advances *@p off) or NULL after the last one.
 */
static inline const struct rly_wire_msg_hdr *rly_wire_next_msg(const struct rly_wire_view *v,
								size_t *off)
{
	if (*off >= v->body_len)
		return NULL;
	const struct rly_wire_msg_hdr *h = (const struct rly_wire_msg_hdr *)(v->body + *off);
	*off += rly_wire_msg_size(h);
	return h;
}

/** Write a datagram header at @p buf. */
static inline void rly_wire_put_dgram_hdr(void *buf, unsigned type, uint16_t length, uint16_t count)
{
	struct rly_wire_dgram_hdr *h = (struct rly_wire_dgram_hdr *)buf;
	rly_be16_store(&h->magic, RLY_WIRE_MAGIC);
	h->version = RLY_WIRE_VERSION;
	h->type = (uint8_t)type;
	rly_be16_store(&h->length, length);
	rly_be16_store(&h->count, count);
}

/**
 * Build a complete control datagram (header + @p body of the size @p type requires) into @p out of
 * @p cap bytes. Returns the datagram length, or -1 if the type has no fixed body or @p cap is too
 * small.
 */
int rly_wire_build_control(void *out, size_t cap, unsigned type, const void *body);

#ifdef __cplusplus
}
#endif
#endif /* RLY_WIRE_H */
