/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End-to-end encryption primitives. Everything here is a thin, fixed composition of libsodium
 * calls; what matters is that the publisher, the subscriber and relay-control compose them the
 * same way, which is why they live in one place with their own tests (tests/test_e2e.c).
 */
#include "security/e2e.h"

#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "security/identity.h"

#define HDR_LEN sizeof(struct rly_wire_msg_hdr)
#define CTX_LEN(c) (sizeof(c) - 1)
#define REQ_SIGNED_LEN offsetof(struct rly_wire_key_request, token)
#define RESP_SIGNED_LEN offsetof(struct rly_wire_key_response, sig)

static_assert(crypto_box_SEALBYTES == RLY_KEY_SEALED_LEN - RLY_KEY_RECORD_LEN,
	      "wire.h's sealed record size matches libsodium");
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == RLY_MSG_TAG_LEN, "tag size");
static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == RLY_MSG_NONCE_LEN, "nonce size");
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == RLY_GROUP_KEY_LEN, "key size");

void rly_group_key_ratchet(uint8_t key[RLY_GROUP_KEY_LEN])
{
	uint8_t next[RLY_GROUP_KEY_LEN];

	crypto_generichash(next, sizeof(next), (const uint8_t *)RLY_RATCHET_CONTEXT,
			   CTX_LEN(RLY_RATCHET_CONTEXT), key, RLY_GROUP_KEY_LEN);
	memcpy(key, next, sizeof(next));
	sodium_memzero(next, sizeof(next));
}

/* The associated data is the header as the publisher wrote it, ttl zero (relays change ttl). */
static void nonce_and_ad(const struct rly_wire_msg_hdr *h, uint8_t nonce[RLY_MSG_NONCE_LEN],
			 struct rly_wire_msg_hdr *ad)
{
	rly_msg_nonce(nonce, rly_be32_load(&h->chain), rly_be64_load(&h->seq),
		      rly_be32_load(&h->key_id));
	memcpy(ad, h, HDR_LEN);
	ad->ttl = 0;
}

void rly_msg_encrypt(struct rly_wire_msg_hdr *h, const uint8_t key[RLY_GROUP_KEY_LEN])
{
	uint8_t nonce[RLY_MSG_NONCE_LEN];
	struct rly_wire_msg_hdr ad;
	uint8_t *payload = (uint8_t *)(h + 1);
	size_t clear_len = rly_be16_load(&h->payload_len) - RLY_MSG_TAG_LEN;

	nonce_and_ad(h, nonce, &ad);
	/* In place is allowed by libsodium (the ciphertext starts where the plaintext does). */
	crypto_aead_xchacha20poly1305_ietf_encrypt(payload, NULL, payload, clear_len,
						   (const uint8_t *)&ad, HDR_LEN, NULL, nonce, key);
}

int rly_msg_decrypt(const struct rly_wire_msg_hdr *h, const uint8_t key[RLY_GROUP_KEY_LEN],
		    uint8_t *out)
{
	uint8_t nonce[RLY_MSG_NONCE_LEN];
	struct rly_wire_msg_hdr ad;
	size_t len = rly_be16_load(&h->payload_len);
	unsigned long long clear_len;

	if (len < RLY_MSG_TAG_LEN)
		return -EBADMSG;
	nonce_and_ad(h, nonce, &ad);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &clear_len, NULL,
						       (const uint8_t *)(h + 1), len,
						       (const uint8_t *)&ad, HDR_LEN, nonce,
						       key) != 0)
		return -EBADMSG;
	return (int)clear_len;
}

/* Context followed by the first @p n bytes of @p body: what a key message's signature covers. */
static size_t signed_bytes(uint8_t *out, const char *ctx, size_t ctx_len, const void *body,
			   size_t n)
{
	memcpy(out, ctx, ctx_len);
	memcpy(out + ctx_len, body, n);
	return ctx_len + n;
}

void rly_key_request_sign(struct rly_wire_key_request *r, const struct rly_identity *id)
{
	uint8_t msg[CTX_LEN(RLY_KEY_REQUEST_SIG_CONTEXT) + REQ_SIGNED_LEN];
	size_t n;

	memcpy(r->requester, id->pk, RLY_ID_LEN);
	n = signed_bytes(msg, RLY_KEY_REQUEST_SIG_CONTEXT, CTX_LEN(RLY_KEY_REQUEST_SIG_CONTEXT), r,
			 REQ_SIGNED_LEN);
	crypto_sign_detached(r->sig, NULL, msg, n, id->sk);
}

int rly_key_request_verify(const struct rly_wire_key_request *r)
{
	uint8_t msg[CTX_LEN(RLY_KEY_REQUEST_SIG_CONTEXT) + REQ_SIGNED_LEN];
	size_t n = signed_bytes(msg, RLY_KEY_REQUEST_SIG_CONTEXT,
				CTX_LEN(RLY_KEY_REQUEST_SIG_CONTEXT), r, REQ_SIGNED_LEN);

	return crypto_sign_verify_detached(r->sig, msg, n, r->requester) == 0;
}

void rly_key_response_sign(struct rly_wire_key_response *r, const struct rly_identity *id)
{
	uint8_t msg[CTX_LEN(RLY_KEY_RESPONSE_SIG_CONTEXT) + RESP_SIGNED_LEN];
	size_t n = signed_bytes(msg, RLY_KEY_RESPONSE_SIG_CONTEXT,
				CTX_LEN(RLY_KEY_RESPONSE_SIG_CONTEXT), r, RESP_SIGNED_LEN);

	crypto_sign_detached(r->sig, NULL, msg, n, id->sk);
}

int rly_key_response_verify(const struct rly_wire_key_response *r)
{
	uint8_t msg[CTX_LEN(RLY_KEY_RESPONSE_SIG_CONTEXT) + RESP_SIGNED_LEN];
	size_t n = signed_bytes(msg, RLY_KEY_RESPONSE_SIG_CONTEXT,
				CTX_LEN(RLY_KEY_RESPONSE_SIG_CONTEXT), r, RESP_SIGNED_LEN);

	return crypto_sign_verify_detached(r->sig, msg, n, r->publisher) == 0;
}

int rly_key_seal(uint8_t out[RLY_KEY_SEALED_LEN], uint32_t key_id,
		 const uint8_t key[RLY_GROUP_KEY_LEN], const uint8_t requester[RLY_ID_LEN])
{
	uint8_t record[RLY_KEY_RECORD_LEN], xpk[crypto_box_PUBLICKEYBYTES];
	int rc = 0;

	if (crypto_sign_ed25519_pk_to_curve25519(xpk, requester) != 0)
		return -EINVAL;
	rly_be32_store(record, key_id);
	memcpy(record + 4, key, RLY_GROUP_KEY_LEN);
	rly_be32_store(record + 4 + RLY_GROUP_KEY_LEN, 0);
	if (crypto_box_seal(out, record, sizeof(record), xpk) != 0)
		rc = -EINVAL;
	sodium_memzero(record, sizeof(record));
	return rc;
}

int rly_key_open(const uint8_t sealed[RLY_KEY_SEALED_LEN], const struct rly_identity *me,
		 uint32_t *key_id, uint8_t key[RLY_GROUP_KEY_LEN])
{
	uint8_t record[RLY_KEY_RECORD_LEN], xpk[32], xsk[32];
	int rc = -EBADMSG;

	if (rly_identity_x25519(me, xpk, xsk) < 0)
		return -EBADMSG;
	if (crypto_box_seal_open(record, sealed, RLY_KEY_SEALED_LEN, xpk, xsk) == 0 &&
	    rly_be32_load(record + 4 + RLY_GROUP_KEY_LEN) == 0) {
		*key_id = rly_be32_load(record);
		memcpy(key, record + 4, RLY_GROUP_KEY_LEN);
		rc = 0;
	}
	sodium_memzero(xsk, sizeof(xsk));
	sodium_memzero(record, sizeof(record));
	return rc;
}
