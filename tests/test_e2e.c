/* SPDX-License-Identifier: Apache-2.0 */
/*
 * End-to-end encryption primitives (security/e2e.c): message AEAD, the ratchet, key messages'
 * signatures and sealed key records.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "security/e2e.h"
#include "security/msgsig.h"

static void init(void)
{
	cr_assert_geq(sodium_init(), 0);
}

TestSuite(e2e, .init = init);

/* rly_identity_generate lives in the client library; this suite needs only the key pair. */
static int rly_identity_generate_(struct rly_identity *id)
{
	return crypto_sign_keypair(id->pk, id->sk);
}
#define rly_identity_generate rly_identity_generate_

static void hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

Test(e2e, ratchet_is_keyed_blake2b_of_the_context_as_an_independent_implementation_computes_it)
{
	/* Python: hashlib.blake2b(b"relay-ratchet-v1", key=bytes(range(32)), digest_size=32),
	 * then again with that result as the key. */
	uint8_t key[32], want1[32], want2[32];

	for (unsigned i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	hex("c8808df3a12828488fd57c33f2260808ac9864f6e8b6f9820744208e197fa997", want1, 32);
	hex("d9df47671fb2df27e3b5f9781b491b1786a5f0db98da576e892b28e0aa9874f1", want2, 32);
	rly_group_key_ratchet(key);
	cr_assert_arr_eq(key, want1, 32);
	rly_group_key_ratchet(key);
	cr_assert_arr_eq(key, want2, 32);
}

/* A message of @p len plaintext bytes at @p buf, encrypted under @p key and signed by @p id. */
static struct rly_wire_msg_hdr *make(uint8_t *buf, const struct rly_identity *id,
				     const uint8_t *key, uint32_t key_id, uint64_t seq,
				     const void *clear, size_t len)
{
	struct rly_wire_msg_hdr *h = (void *)buf;

	memset(buf, 0, sizeof(*h) + len + RLY_MSG_TAG_LEN + RLY_WIRE_SIG_LEN);
	memset(h->stream_key, 0x5A, sizeof(h->stream_key));
	rly_be32_store(&h->partition, 2);
	rly_be32_store(&h->chain, 0xABCDEF01u);
	memcpy(h->publisher, id->pk, RLY_ID_LEN);
	rly_be64_store(&h->seq, seq);
	rly_be64_store(&h->prev_seq, seq - 1);
	rly_be64_store(&h->timestamp_ns, 1700000000000000000ull);
	rly_be32_store(&h->key_id, key_id);
	/* the header as it will be sent: signing must not change any byte of it afterwards */
	rly_be16_store(&h->flags, RLY_MSG_F_ENCRYPTED | RLY_MSG_F_SIGNED);
	rly_be16_store(&h->sig_len, RLY_WIRE_SIG_LEN);
	rly_be16_store(&h->payload_len, (uint16_t)(len + RLY_MSG_TAG_LEN));
	memcpy(h + 1, clear, len);
	rly_msg_encrypt(h, key);
	rly_msg_sign(id, h);
	return h;
}

Test(e2e, an_encrypted_message_decrypts_verifies_and_hides_its_plaintext)
{
	static const char clear[] = "bid 101.25 x 300, ask 101.27 x 200";
	struct rly_identity id;
	uint8_t key[32], buf[512], out[512];
	struct rly_wire_msg_hdr *h;

	cr_assert_eq(rly_identity_generate(&id), 0);
	randombytes_buf(key, sizeof(key));
	h = make(buf, &id, key, RLY_KEY_ID(1, 0), 7, clear, sizeof(clear));
	cr_assert(rly_msg_verify(h), "the signature covers the ciphertext");
	cr_assert_null(memmem(buf, sizeof(buf), "bid 101", 7), "no plaintext left in the message");
	cr_assert_eq(rly_be16_load(&h->payload_len), sizeof(clear) + RLY_MSG_TAG_LEN);
	cr_assert_eq(rly_msg_decrypt(h, key, out), (int)sizeof(clear));
	cr_assert_str_eq((const char *)out, clear);

	/* a relay may change ttl: still decrypts (and still verifies) */
	h->ttl = 9;
	cr_assert_eq(rly_msg_decrypt(h, key, out), (int)sizeof(clear));
	cr_assert(rly_msg_verify(h));
}

Test(e2e, a_wrong_key_or_any_changed_byte_fails_authentication)
{
	static const char clear[] = "secret";
	struct rly_identity id;
	uint8_t key[32], other[32], buf[512], out[512];
	struct rly_wire_msg_hdr *h;
	size_t total = sizeof(*h) + sizeof(clear) + RLY_MSG_TAG_LEN;

	cr_assert_eq(rly_identity_generate(&id), 0);
	randombytes_buf(key, sizeof(key));
	memcpy(other, key, sizeof(key));
	other[31] ^= 1;
	h = make(buf, &id, key, RLY_KEY_ID(3, 4), 1, clear, sizeof(clear));
	cr_assert_eq(rly_msg_decrypt(h, other, out), -EBADMSG);

	/* every header byte but ttl is associated data; every payload byte is ciphertext or tag */
	for (size_t i = 0; i < total; i++) {
		if (i == offsetof(struct rly_wire_msg_hdr, ttl))
			continue;
		buf[i] ^= 0x01;
		cr_expect_eq(rly_msg_decrypt(h, key, out), -EBADMSG, "byte %zu flipped", i);
		buf[i] ^= 0x01;
	}
	cr_assert_eq(rly_msg_decrypt(h, key, out), (int)sizeof(clear));
}

Test(e2e, the_same_plaintext_under_the_same_key_differs_from_one_sequence_to_the_next)
{
	static const char clear[] = "same words";
	struct rly_identity id;
	uint8_t key[32], a[256], b[256];

	cr_assert_eq(rly_identity_generate(&id), 0);
	randombytes_buf(key, sizeof(key));
	make(a, &id, key, RLY_KEY_ID(1, 0), 1, clear, sizeof(clear));
	make(b, &id, key, RLY_KEY_ID(1, 0), 2, clear, sizeof(clear));
	cr_assert_neq(memcmp(a + 96, b + 96, sizeof(clear)), 0,
		      "a nonce reused across sequence numbers would give equal ciphertexts");
}

Test(e2e, a_ratcheted_key_cannot_open_a_message_of_the_step_before)
{
	struct rly_identity id;
	uint8_t key[32], later[32], buf[256], out[256];
	struct rly_wire_msg_hdr *h;

	cr_assert_eq(rly_identity_generate(&id), 0);
	randombytes_buf(key, sizeof(key));
	memcpy(later, key, 32);
	rly_group_key_ratchet(later);
	h = make(buf, &id, key, RLY_KEY_ID(1, 0), 5, "x", 1);
	cr_assert_eq(rly_msg_decrypt(h, later, out), -EBADMSG);
	h = make(buf, &id, later, RLY_KEY_ID(1, 1), 6, "y", 1);
	rly_group_key_ratchet(key); /* whoever held step 0 derives step 1 */
	cr_assert_eq(rly_msg_decrypt(h, key, out), 1);
	cr_assert_eq(out[0], 'y');
}

static void request_of(struct rly_wire_key_request *r, const struct rly_identity *sub,
		       const uint8_t publisher[32])
{
	memset(r, 0, sizeof(*r));
	memset(r->stream_key, 0x11, sizeof(r->stream_key));
	rly_be32_store(&r->partition, 4);
	rly_be32_store(&r->chain, 77);
	rly_be32_store(&r->key_id, RLY_KEY_ID(2, 9));
	rly_be64_store(&r->request_id, 123456789);
	memcpy(r->publisher, publisher, RLY_ID_LEN);
	memset(r->token, 0xEE, sizeof(r->token));
	rly_key_request_sign(r, sub);
}

Test(e2e, a_key_request_verifies_after_the_relay_zeroes_its_token_and_not_after_any_other_change)
{
	struct rly_identity sub, pub;
	struct rly_wire_key_request r;
	uint8_t *bytes = (uint8_t *)&r;

	cr_assert_eq(rly_identity_generate(&sub), 0);
	cr_assert_eq(rly_identity_generate(&pub), 0);
	request_of(&r, &sub, pub.pk);
	cr_assert_arr_eq(r.requester, sub.pk, 32);
	cr_assert(rly_key_request_verify(&r));
	memset(r.token, 0, sizeof(r.token));
	cr_assert(rly_key_request_verify(&r), "the token is not signed: relays zero it");
	for (size_t i = 0; i < offsetof(struct rly_wire_key_request, token); i++) {
		bytes[i] ^= 0x80;
		cr_expect_not(rly_key_request_verify(&r), "byte %zu flipped", i);
		bytes[i] ^= 0x80;
	}
	r.sig[0] ^= 1;
	cr_assert_not(rly_key_request_verify(&r));
}

Test(e2e, a_sealed_key_opens_only_for_its_requester_and_a_response_verifies_only_unchanged)
{
	struct rly_identity sub, pub, eve;
	struct rly_wire_key_response resp;
	uint8_t key[32], got[32];
	uint32_t key_id = 0;
	uint8_t *bytes = (uint8_t *)&resp;

	cr_assert_eq(rly_identity_generate(&sub), 0);
	cr_assert_eq(rly_identity_generate(&pub), 0);
	cr_assert_eq(rly_identity_generate(&eve), 0);
	randombytes_buf(key, sizeof(key));

	memset(&resp, 0, sizeof(resp));
	rly_be32_store(&resp.key_id, RLY_KEY_ID(2, 10));
	rly_be64_store(&resp.request_id, 5);
	memcpy(resp.publisher, pub.pk, 32);
	memcpy(resp.requester, sub.pk, 32);
	cr_assert_eq(rly_key_seal(resp.sealed, RLY_KEY_ID(2, 10), key, sub.pk), 0);
	rly_key_response_sign(&resp, &pub);
	cr_assert(rly_key_response_verify(&resp));
	cr_assert_null(memmem(&resp, sizeof(resp), key, 32), "the key is not in clear");

	cr_assert_eq(rly_key_open(resp.sealed, &sub, &key_id, got), 0);
	cr_assert_eq(key_id, RLY_KEY_ID(2, 10));
	cr_assert_arr_eq(got, key, 32);
	cr_assert_eq(rly_key_open(resp.sealed, &eve, &key_id, got), -EBADMSG,
		     "sealed to someone else");
	cr_assert_eq(rly_key_open(resp.sealed, &pub, &key_id, got), -EBADMSG,
		     "not even the publisher reopens it");

	for (size_t i = 0; i < sizeof(resp); i++) {
		bytes[i] ^= 0x04;
		cr_expect_not(rly_key_response_verify(&resp), "byte %zu flipped", i);
		if (i >= offsetof(struct rly_wire_key_response, sealed) &&
		    i < offsetof(struct rly_wire_key_response, sig))
			cr_expect_eq(rly_key_open(resp.sealed, &sub, &key_id, got), -EBADMSG,
				     "sealed byte %zu flipped", i - 104);
		bytes[i] ^= 0x04;
	}
}

Test(e2e, sealing_to_a_key_that_is_not_a_curve_point_is_refused)
{
	uint8_t key[32] = {0}, out[RLY_KEY_SEALED_LEN], bad[32];

	/* y = 2 is not the y coordinate of any point on edwards25519. */
	memset(bad, 0, sizeof(bad));
	bad[0] = 2;
	cr_assert_eq(rly_key_seal(out, 1, key, bad), -EINVAL);
}
