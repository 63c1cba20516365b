/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identity files: one Ed25519 key pair per file, for publishers, subscribers and relays.
 *
 * Format (text, so an operator can read the public half and diff it):
 *   relay-identity v1
 *   public <64 hex digits>
 *   secret <128 hex digits>        (libsodium's 64-byte Ed25519 secret key: seed || public)
 * Created with O_EXCL and mode 0600; a file that is group- or world-accessible is refused on load
 * with a message that says "chmod 600 <path>". The X25519 pair for sealed boxes is derived from the
 * Ed25519 one (crypto_sign_ed25519_*_to_curve25519), never stored.
 */
#ifndef RLY_SECURITY_IDENTITY_H
#define RLY_SECURITY_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "relay/client.h" /* struct rly_identity */

/** Write @p id to @p path (new file only, mode 0600). 0, or -errno with a message (common/err.h). */
int rly_identity_save(const struct rly_identity *id, const char *path);

/** Read @p path into @p id, checking permissions, format, and that the secret matches the public key. */
int rly_identity_load(struct rly_identity *id, const char *path);

/** The X25519 key pair derived from @p id (@p sk may be NULL). 0, or -EINVAL. */
int rly_identity_x25519(const struct rly_identity *id, uint8_t pk[32], uint8_t *sk);

/** Format a 32-byte public key as 64 lower-case hex digits plus NUL. */
void rly_pk_format(const uint8_t pk[RLY_ID_LEN], char out[2 * RLY_ID_LEN + 1]);
/** Parse 64 hex digits. 0, or -EINVAL. */
int rly_pk_parse(const char *hex, uint8_t pk[RLY_ID_LEN]);

#endif
