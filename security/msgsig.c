/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Data message signatures: plain Ed25519 (crypto_sign_detached) over the 96-byte header with ttl
 * read as 0, then the payload. Header and payload are contiguous in every buffer that holds a
 * message, so the common case signs and verifies the bytes where they lie, with no copy at all.
 *
 * libsodium's incremental API (crypto_sign_init/update/final) is Ed25519ph, a different
 * signature over a SHA-512 prehash that a plain verifier refuses; it cannot stand in for a copy.
 */
#include "security/msgsig.h"

#include <string.h>

#include <sodium.h>

#define MSG_HDR_LEN sizeof(struct rly_wire_msg_hdr)

void rly_msg_sign(const struct rly_identity *id, struct rly_wire_msg_hdr *h)
{
	size_t payload_len = rly_be16_load(&h->payload_len);
	uint8_t *sig = (uint8_t *)(h + 1) + payload_len;
	uint8_t ttl = h->ttl;

	rly_be16_store(&h->flags, (uint16_t)(rly_be16_load(&h->flags) | RLY_MSG_F_SIGNED));
	rly_be16_store(&h->sig_len, RLY_WIRE_SIG_LEN);
	/* The buffer is the signer's own, so ttl can be zeroed in place and put back after. */
	h->ttl = 0;
	crypto_sign_detached(sig, NULL, (const unsigned char *)h, MSG_HDR_LEN + payload_len,
			     id->sk);
	h->ttl = ttl;
}

int rly_msg_verify(const struct rly_wire_msg_hdr *h)
{
	/* Header and payload of the largest message, when ttl has to be zeroed in a copy. */
	uint8_t copy[RLY_WIRE_MAX_DGRAM];
	size_t payload_len = rly_be16_load(&h->payload_len);
	const uint8_t *signed_bytes = (const uint8_t *)h;
	const uint8_t *sig = (const uint8_t *)(h + 1) + payload_len;

	if (!(rly_be16_load(&h->flags) & RLY_MSG_F_SIGNED) ||
	    rly_be16_load(&h->sig_len) != RLY_WIRE_SIG_LEN)
		return 0;
	/* A parser-validated message always fits; anything longer is no message of ours. */
	if (MSG_HDR_LEN + payload_len + RLY_WIRE_SIG_LEN > sizeof(copy))
		return 0;
	if (h->ttl != 0) {
		/* The input may be shared (a receive buffer, a relay's mbuf): change a copy. */
		memcpy(copy, h, MSG_HDR_LEN + payload_len);
		((struct rly_wire_msg_hdr *)copy)->ttl = 0;
		signed_bytes = copy;
	}
	return crypto_sign_verify_detached(sig, signed_bytes, MSG_HDR_LEN + payload_len,
					   h->publisher) == 0;
}
