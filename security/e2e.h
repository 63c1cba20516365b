/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End-to-end encryption primitives (docs/encryption.md): message encryption under a group key,
 * the group-key ratchet, and the key messages' signatures and sealed key records. No state, no
 * I/O: the client library keeps the keys, relay-control only checks request signatures.
 */
#ifndef RLY_SECURITY_E2E_H
#define RLY_SECURITY_E2E_H

#include <stddef.h>
#include <stdint.h>

#include "relay/client.h"
#include "relay/wire.h"

/** Domain separator of the ratchet step (ASCII, no NUL). */
#define RLY_RATCHET_CONTEXT "relay-ratchet-v1"

/** One ratchet step in place: key = BLAKE2b-256(key = key, message = RLY_RATCHET_CONTEXT). */
void rly_group_key_ratchet(uint8_t key[RLY_GROUP_KEY_LEN]);

/**
 * Encrypt the message at @p h in place under @p key. The caller wrote the whole header exactly as
 * it will be sent (flags = SIGNED | ENCRYPTED, sig_len = 64, key_id, payload_len = plaintext +
 * RLY_MSG_TAG_LEN, ttl 0: the header is the associated data, so rly_msg_sign must find nothing to
 * change in it) and the plaintext right after it, with RLY_MSG_TAG_LEN bytes of room after the
 * plaintext. Sign after this, never before.
 */
void rly_msg_encrypt(struct rly_wire_msg_hdr *h, const uint8_t key[RLY_GROUP_KEY_LEN]);

/**
 * Decrypt the (parser-validated, encrypted) message at @p h with @p key into @p out, which has
 * room for payload_len - RLY_MSG_TAG_LEN bytes. @p h is not modified. Returns the plaintext
 * length, or -EBADMSG when the payload does not authenticate under @p key (wrong key, tampering).
 */
int rly_msg_decrypt(const struct rly_wire_msg_hdr *h, const uint8_t key[RLY_GROUP_KEY_LEN],
		    uint8_t *out);

/** Set requester = @p id's public key and sign the request (everything before the token). */
void rly_key_request_sign(struct rly_wire_key_request *r, const struct rly_identity *id);
/** 1 if @p r carries its requester's valid signature, else 0. */
int rly_key_request_verify(const struct rly_wire_key_request *r);

/** Sign the response (everything before sig) with the publisher identity @p id. */
void rly_key_response_sign(struct rly_wire_key_response *r, const struct rly_identity *id);
/** 1 if @p r carries the signature of r->publisher, else 0. */
int rly_key_response_verify(const struct rly_wire_key_response *r);

/**
 * Seal the key record (key_id, key) to the X25519 key derived from @p requester (an Ed25519
 * public key). 0, or -EINVAL when @p requester is not a usable Ed25519 public key.
 */
int rly_key_seal(uint8_t out[RLY_KEY_SEALED_LEN], uint32_t key_id,
		 const uint8_t key[RLY_GROUP_KEY_LEN], const uint8_t requester[RLY_ID_LEN]);

/**
 * Open a sealed key record with @p me's X25519 key pair. 0 and fills @p key_id and @p key, or
 * -EBADMSG when it was not sealed to @p me or was altered, or its flags are not zero.
 */
int rly_key_open(const uint8_t sealed[RLY_KEY_SEALED_LEN], const struct rly_identity *me,
		 uint32_t *key_id, uint8_t key[RLY_GROUP_KEY_LEN]);

#endif
