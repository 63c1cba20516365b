/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file discovery.h
 * Discovery: which relays serve a (stream key, partition). A relay announces the keys it serves
 * as signed records (struct rly_disc_record, include/relay/wire.h) that expire after a TTL and are
 * re-announced until withdrawn; another relay looks a key up once or watches it, and hears of
 * every verified record through one callback.
 *
 * Two backends behind the same calls:
 *  - RLY_DISC_BACKEND_STATIC (default): rendezvous seeds, like BitTorrent trackers. Records are
 *    announced to every seed in the config and lookups ask every seed, as PEER_DISCOVER messages
 *    that the caller carries through the dataplane (rly_disc_cb.send in, rly_disc_on_message
 *    out). Every relay runs the store, so any relay can be a seed.
 *  - RLY_DISC_BACKEND_DHT: OpenDHT (only in a build with -Ddht=enabled, which makes the
 *    relay-control binary GPL-3+; see control/README.md). Announce is a put, lookup a get, watch a
 *    listen, under the infohash of "relay-stream:<32 hex of the key>:<partition>". OpenDHT runs its
 *    own threads and sockets; what they find is queued and handed over in rly_disc_poll.
 *
 * Threading: one thread calls everything here; callbacks run inside rly_disc_poll and
 * rly_disc_on_message only. Time: `now_ms` is the caller's CLOCK_MONOTONIC milliseconds, never
 * going backwards; records carry CLOCK_REALTIME, got by adding the offset between the two clocks
 * read at open. Calls without a `now_ms` (announce, lookup, watch) use the latest one given to
 * poll or on_message (the monotonic clock at open before the first).
 *
 * Every record that comes in, from a seed, a peer or the DHT, is verified before it is stored or
 * handed on; one that fails is dropped and counted (CTL_DISC_BAD).
 */
#ifndef RLY_CONTROL_DISCOVERY_H
#define RLY_CONTROL_DISCOVERY_H

#include <stdint.h>

#include "relay/client.h"
#include "relay/counters.h"
#include "relay/wire.h"

/** Backends. X(name, value, description) */
#define RLY_FOREACH_DISC_BACKEND(X)                                                                \
	X(STATIC, 0, "static seed list: PEER_DISCOVER through the dataplane")                      \
	X(DHT, 1, "OpenDHT (build with -Ddht=enabled)")

enum rly_disc_backend {
#define X(name, value, desc) RLY_DISC_BACKEND_##name = value,
	RLY_FOREACH_DISC_BACKEND(X)
#undef X
};

/** Most seeds a static configuration names. */
#define RLY_DISC_SEEDS_MAX 16u
/** Most records one LOOKUP is answered with (a random choice when the store holds more). */
#define RLY_DISC_RESULTS_MAX 16u
/** Longest record lifetime accepted: a record expiring later is refused as a bad field. */
#define RLY_DISC_TTL_MAX_MS 3600000u
/** Keys served (announced) at once, and keys watched at once, per instance. */
#define RLY_DISC_KEYS_MAX 4096u

struct rly_disc;

/** What discovery asks of its owner. */
struct rly_disc_cb {
	void *ctx;
	/**
	 * A verified, unexpired record of another relay for a key being looked up or watched.
	 * Called only from rly_disc_poll or rly_disc_on_message, never from another thread. The
	 * same record may come again (every lookup round, every re-announce): the callee keys what
	 * it keeps by rec->relay.
	 */
	void (*on_record)(void *ctx, const struct rly_disc_record *rec);
	/**
	 * Static backend: send this PEER_DISCOVER body to the relay at @p ip_be:@p port (network
	 * order address, host order port). The callee adds the session token and sends it through
	 * the dataplane; it returns 0, or -ENOTCONN while it has no session with that address (the
	 * send is tried again at a later poll), or another -errno (the datagram is given up). It
	 * must not call back into this rly_disc. Unused by the DHT backend (may be NULL).
	 */
	int (*send)(void *ctx, uint32_t ip_be, uint16_t port, struct rly_wire_peer_discover *body);
};

/** A seed of the static backend. */
struct rly_disc_seed {
	uint32_t ip_be; /**< network order */
	uint16_t port;	/**< host order */
};

/** Configuration; zero fields take their defaults. */
struct rly_disc_config {
	int backend;		       /**< enum rly_disc_backend; RLY_DISC_BACKEND_STATIC by default */
	const struct rly_identity *id; /**< signs our records (required) */
	uint32_t ip_be;		       /**< our address, put in our records (network order) */
	uint16_t port;		       /**< our UDP port, put in our records (host order) */
	uint32_t ttl_ms;	       /**< record lifetime, 60000; re-announced every ttl/3 */
	uint32_t lookup_interval_ms;   /**< static: watched keys are looked up this often, 5000 */
	uint32_t n_seeds;	       /**< static backend: seeds[0..n_seeds) */
	struct rly_disc_seed seeds[RLY_DISC_SEEDS_MAX];
	uint32_t store_max;	   /**< records kept, 65536; the one expiring first is evicted */
	const char *dht_bind;	   /**< DHT: IPv4 address to bind, e.g. "127.0.0.1" (required) */
	uint16_t dht_port;	   /**< DHT: UDP port; 0 picks a free one (rly_disc_dht_port) */
	const char *dht_bootstrap; /**< DHT: "host:port[,host:port...]", or NULL for none */
	struct rly_ctr_block *ctr; /**< optional: CTL_DISC_* are counted here */
};

/**
 * Open a discovery instance with @p cfg and @p cb (both copied). 0, or -EINVAL (bad config),
 * -ENOTSUP (DHT backend in a build without it), -ENOMEM, or what starting the DHT returned, each
 * with a message (common/err.h).
 */
int rly_disc_open(struct rly_disc **out, const struct rly_disc_config *cfg,
		  const struct rly_disc_cb *cb);
/** Stop (DHT: shut the node down, joining its threads) and free. NULL is a no-op. */
void rly_disc_close(struct rly_disc *d);
/** Count into @p ctr from now on (NULL: a private block), e.g. when the dataplane's shm goes. */
void rly_disc_set_counters(struct rly_disc *d, struct rly_ctr_block *ctr);

/**
 * We serve (@p key, @p partition): announce our record now and again every ttl/3 until
 * rly_disc_withdraw. Announcing a key already served is a no-op. 0, or -ENOSPC past
 * RLY_DISC_KEYS_MAX keys, or -errno from signing.
 */
int rly_disc_announce(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
		      uint32_t partition);
/**
 * Stop announcing (@p key, @p partition). Records already given out stay valid where they are
 * until they expire (at most ttl_ms later).
 */
void rly_disc_withdraw(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
		       uint32_t partition);

/**
 * Look (@p key, @p partition) up once: records already in the local store are handed to
 * on_record at the next poll, and every seed is asked (DHT: a get); answers are taken for
 * lookup_interval_ms. 0, or -ENOSPC while RLY_DISC_KEYS_MAX watches and lookups are held (one
 * count for both).
 */
int rly_disc_lookup(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition);
/**
 * Watch (@p key, @p partition): look it up now and every lookup_interval_ms (DHT: a listen, so new
 * records come as they are put). Watching a key already watched is a no-op. 0, or -ENOSPC while
 * RLY_DISC_KEYS_MAX watches and lookups are held, or -errno from the DHT.
 */
int rly_disc_watch(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition);
/** Stop watching (@p key, @p partition); no-op if it is not watched. */
void rly_disc_unwatch(struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
		      uint32_t partition);

/**
 * A PEER_DISCOVER body from the relay at @p ip_be:@p port (static backend). The caller has parsed
 * the datagram (rly_wire_parse) and checked the session token. An ANNOUNCE is verified (signature,
 * expiry, and that its address is the sender's: a relay may only announce itself) and stored; a
 * LOOKUP is answered with up to RLY_DISC_RESULTS_MAX RESULTs, one record per datagram with `more`
 * counting down (one all-zero RESULT when there is none); a RESULT is accepted only for a lookup
 * we sent to that address, verified, stored and handed to on_record.
 */
void rly_disc_on_message(struct rly_disc *d, uint32_t ip_be, uint16_t port,
			 const struct rly_wire_peer_discover *b, uint64_t now_ms);

/**
 * One turn of timers at @p now_ms: expire stored records, re-announce, start due lookups, retry
 * sends that found no session; DHT: hand over what its threads found. Cheap when nothing is due.
 */
void rly_disc_poll(struct rly_disc *d, uint64_t now_ms);

/** Records in the local store (learnt from others; our own are not counted). */
uint32_t rly_disc_store_count(const struct rly_disc *d);
/**
 * Copy up to @p max unexpired stored records of (@p key, @p partition) into @p out; returns how
 * many. What a seed would answer a LOOKUP with, less its own record: for tests and tools.
 */
unsigned rly_disc_store_find(const struct rly_disc *d, const uint8_t key[RLY_STREAM_KEY_LEN],
			     uint32_t partition, struct rly_disc_record *out, unsigned max);
/** DHT backend: the UDP port the node is bound to (0 for the static backend). */
uint16_t rly_disc_dht_port(const struct rly_disc *d);

/**
 * Sign @p r (all fields but sig filled in) with @p id: r->sig = Ed25519 over
 * RLY_DISC_RECORD_SIG_CONTEXT || bytes 0..71. Also sets r->relay to @p id's public key. 0, or
 * -EINVAL.
 */
int rly_disc_record_sign(struct rly_disc_record *r, const struct rly_identity *id);
/**
 * Check @p r at @p now_real_ms (CLOCK_REALTIME ms): 0; -EINVAL for a bad field (flags or reserved
 * not zero, no relay, address or port zero, expiry more than RLY_DISC_TTL_MAX_MS ahead); -EBADMSG
 * for a bad signature; -ETIMEDOUT when expires_ms <= @p now_real_ms.
 */
int rly_disc_record_verify(const struct rly_disc_record *r, uint64_t now_real_ms);

/** The DHT key of (@p key, @p partition): "relay-stream:<32 hex digits>:<partition>", NUL-ended. */
void rly_disc_dht_key_name(const uint8_t key[RLY_STREAM_KEY_LEN], uint32_t partition,
			   char out[64]);

#endif
