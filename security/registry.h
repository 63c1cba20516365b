/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stream registry: who may publish, subscribe and grant on which stream, as records signed by
 * the stream's owner (or by someone the owner let grant).
 *
 * Streams and owners. A stream name is "<owner public key, 64 hex digits>/<path>", and its stream
 * key is BLAKE2b-128 of the whole name (rly_stream_key_from_name), so the owner is bound to the key:
 * nobody can write records for someone else's stream under another owner.
 *
 * A grant says: on stream S, identity G (or the public) may do P (publish, subscribe, grant) until
 * time T. It is signed by its issuer. It is valid at time t when its signature verifies, t < T, and
 * the issuer is the owner of S or holds a valid GRANT permission on S at t (delegation, followed at
 * most RLY_GRANT_MAX_DEPTH deep, cycles refused).
 *
 * Files. A registry is a directory; every file in it named *.grants holds grants, one per line, '#'
 * starts a comment:
 *   grant v1 stream=<name> grantee=<64 hex|*> perms=<publish,subscribe,grant> not-after=<unix s>
 *         issued=<unix s> issuer=<64 hex> sig=<128 hex>
 * (one line; fields in that order, single spaces). The signature covers RLY_GRANT_SIG_CONTEXT
 * followed by the canonical encoding rly_grant_encode(). docs/registry.md describes it for humans;
 * `relay-keys grant` writes such lines.
 *
 * An on-chain registry can later implement the same queries.
 */
#ifndef RLY_SECURITY_REGISTRY_H
#define RLY_SECURITY_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "relay/client.h"
#include "relay/wire.h"

#define RLY_PERM_PUBLISH 0x1u
#define RLY_PERM_SUBSCRIBE 0x2u
#define RLY_PERM_GRANT 0x4u
#define RLY_PERM_ALL (RLY_PERM_PUBLISH | RLY_PERM_SUBSCRIBE | RLY_PERM_GRANT)

/** Longest stream name: 64 hex digits of owner, '/', and up to 191 bytes of path. */
#define RLY_STREAM_NAME_MAX 256u
/** Deepest chain of GRANT delegations followed from the owner. */
#define RLY_GRANT_MAX_DEPTH 8u
/** Domain separator a grant signature covers first (ASCII, no NUL). */
#define RLY_GRANT_SIG_CONTEXT "relay-grant-v1"

/** One grant. grantee all zero means the public (anyone, anonymous included). */
struct rly_grant {
	char stream[RLY_STREAM_NAME_MAX + 1];
	uint8_t stream_key[RLY_STREAM_KEY_LEN]; /* derived from stream */
	uint8_t owner[RLY_ID_LEN];              /* derived from stream */
	uint8_t grantee[RLY_ID_LEN];
	uint32_t perms;                          /* RLY_PERM_* */
	uint64_t not_after;                      /* unix seconds, exclusive */
	uint64_t issued;                         /* unix seconds */
	uint8_t issuer[RLY_ID_LEN];
	uint8_t sig[RLY_WIRE_SIG_LEN];
};

/** Parse a stream name: its owner and key. 0, or -EINVAL with a message. */
int rly_stream_name_parse(const char *name, uint8_t owner[RLY_ID_LEN],
			  uint8_t key[RLY_STREAM_KEY_LEN]);

/** Canonical bytes the signature covers (after the context); returns the length written. */
size_t rly_grant_encode(const struct rly_grant *g, uint8_t *out, size_t cap);
/** Fill stream_key/owner from g->stream, set issuer to @p id's key and sign. 0, or -errno. */
int rly_grant_sign(struct rly_grant *g, const struct rly_identity *id);
/** 1 if g->sig is @p g->issuer's signature over the record, else 0. */
int rly_grant_sig_ok(const struct rly_grant *g);
/** Format one grant line (without newline) into @p out. Returns its length or -ENOSPC. */
int rly_grant_format(const struct rly_grant *g, char *out, size_t cap);
/**
 * Parse one line. 1 and fills @p g for a grant line, 0 for a blank or comment line, or -EINVAL
 * with a message naming the field that is wrong. Does not check the signature.
 */
int rly_grant_parse_line(const char *line, struct rly_grant *g);

struct rly_registry;

/** Called for every refused record or file while loading: "<file>:<line>: <why>". */
typedef void (*rly_registry_warn_fn)(void *ctx, const char *file, unsigned line, const char *why);

/**
 * Load every *.grants file of @p dir. Records with a bad signature, a bad field, or an issuer
 * without the right to grant are refused one by one through @p warn (the others still load).
 * Returns the number of grants kept (>= 0), or -errno if the directory cannot be read.
 */
int rly_registry_load(struct rly_registry **out, const char *dir, rly_registry_warn_fn warn,
		      void *ctx);
void rly_registry_free(struct rly_registry *r);

/**
 * 1 if @p who (NULL or all zero: anonymous) may do @p perm on the stream with key @p key at unix
 * time @p now, by a valid grant to @p who or to the public; else 0.
 */
int rly_registry_allows(const struct rly_registry *r, const uint8_t key[RLY_STREAM_KEY_LEN],
			const uint8_t *who, uint32_t perm, uint64_t now);

/**
 * The identities that may publish on @p key at @p now: up to @p max of them into @p out, the
 * total count as the return value, and *@p public_publish = 1 when anyone may publish.
 */
int rly_registry_publishers(const struct rly_registry *r, const uint8_t key[RLY_STREAM_KEY_LEN],
			    uint64_t now, uint8_t (*out)[RLY_ID_LEN], unsigned max,
			    int *public_publish);

/**
 * Every stream key that has at least one grant: up to @p max into @p out; returns the total.
 * (relay-control pushes each stream's publishers to the dataplane.)
 */
int rly_registry_streams(const struct rly_registry *r, uint8_t (*out)[RLY_STREAM_KEY_LEN],
			 unsigned max);

/** The wall clock in unix seconds, the time grants are checked against. */
uint64_t rly_registry_now_s(void);

/** Earliest not_after after @p now among all grants (when answers may next change), 0 if none. */
uint64_t rly_registry_next_expiry(const struct rly_registry *r, uint64_t now);

/** Called by rly_registry_foreach for each kept grant; @p valid says whether it is valid then. */
typedef void (*rly_registry_grant_fn)(void *ctx, const struct rly_grant *g, int valid);
/**
 * Visit every grant rly_registry_load kept, ordered by stream key, then grantee, then load order,
 * with its validity at @p now (for listings such as `relay-keys check`). Signatures are checked at
 * load and not kept: g->sig reads as zero.
 */
void rly_registry_foreach(const struct rly_registry *r, uint64_t now, rly_registry_grant_fn fn,
			  void *ctx);

#endif
