/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Data message signatures (security/msgsig.c): what the signature covers, bit by bit, checked
 * against libsodium directly so that the layout of docs/wire-protocol.md section 4.2 is pinned
 * and not just whatever rly_msg_sign happens to do.
 */
#include <stddef.h>
#include <string.h>

#include <criterion/criterion.h>
#include <sodium.h>

#include "relay/client.h"
#include "relay/wire.h"
#include "security/msgsig.h"

#define HDR sizeof(struct rly_wire_msg_hdr)
#define TTL_OFF offsetof(struct rly_wire_msg_hdr, ttl)

/* A message buffer larger than any message, so a flipped payload_len stays inside it. */
struct msgbuf {
	uint8_t b[2 * RLY_WIRE_MAX_DGRAM];
};

static struct rly_wire_msg_hdr *hdr(struct msgbuf *m)
{
	return (struct rly_wire_msg_hdr *)m->b;
}

/* Build and sign a message of @p payload_len bytes from @p id, with every field nonzero. */
static size_t build(struct msgbuf *m, const struct rly_identity *id, uint16_t payload_len,
		    uint8_t ttl)
{
	struct rly_wire_msg_hdr *h = hdr(m);

	memset(m, 0, sizeof(*m));
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		h->stream_key[i] = (uint8_t)(0x10 + i);
	rly_be32_store(&h->partition, 3);
	rly_be32_store(&h->chain, 0xc0ffee);
	memcpy(h->publisher, id->pk, RLY_ID_LEN);
	rly_be64_store(&h->seq, 42);
	rly_be64_store(&h->prev_seq, 41);
	rly_be64_store(&h->timestamp_ns, 1700000000000000000ull);
	rly_be16_store(&h->content_type, 0x0101);
	rly_be16_store(&h->payload_len, payload_len);
	h->ttl = ttl;
	for (unsigned i = 0; i < payload_len; i++)
		m->b[HDR + i] = (uint8_t)(i * 7 + 1);
	rly_msg_sign(id, h);
	return HDR + payload_len + RLY_WIRE_SIG_LEN;
}

static struct rly_identity identity(void)
{
	struct rly_identity id;

	cr_assert_eq(rly_identity_generate(&id), 0);
	return id;
}

Test(msgsig, a_signed_message_verifies_and_is_marked_signed)
{
	struct rly_identity id = identity();
	struct msgbuf m;
	size_t n = build(&m, &id, 32, 0);

	cr_assert_eq(rly_be16_load(&hdr(&m)->flags), RLY_MSG_F_SIGNED);
	cr_assert_eq(rly_be16_load(&hdr(&m)->sig_len), RLY_WIRE_SIG_LEN);
	cr_assert_eq(rly_wire_msg_size(hdr(&m)), n);
	cr_assert_eq(rly_msg_verify(hdr(&m)), 1);
}

Test(msgsig, the_signature_is_plain_ed25519_over_the_header_with_ttl_zero_then_the_payload)
{
	struct rly_identity id = identity();
	struct msgbuf m;
	uint8_t signed_bytes[HDR + 40];

	build(&m, &id, 40, 9);
	cr_assert_eq(hdr(&m)->ttl, 9, "signing leaves ttl as it was");
	memcpy(signed_bytes, m.b, sizeof(signed_bytes));
	signed_bytes[TTL_OFF] = 0;
	cr_assert_eq(crypto_sign_verify_detached(m.b + HDR + 40, signed_bytes, sizeof(signed_bytes),
						 id.pk),
		     0);
	/* And not over the header as it stands, ttl included. */
	cr_assert_neq(crypto_sign_verify_detached(m.b + HDR + 40, m.b, sizeof(signed_bytes), id.pk),
		      0);
}

Test(msgsig, every_single_bit_flip_outside_ttl_makes_verify_fail)
{
	struct rly_identity id = identity();
	struct msgbuf m, orig;
	const uint16_t payload_len = 24;
	size_t n = build(&orig, &id, payload_len, 0);
	unsigned flips = 0;

	cr_assert_eq(rly_msg_verify(hdr(&orig)), 1);
	/* Header (but ttl), payload and signature: every bit of the message. */
	for (size_t byte = 0; byte < n; byte++) {
		if (byte == TTL_OFF)
			continue;
		for (unsigned bit = 0; bit < 8; bit++) {
			m = orig;
			m.b[byte] ^= (uint8_t)(1u << bit);
			cr_assert_eq(rly_msg_verify(hdr(&m)), 0, "flip of bit %u of byte %zu verified",
				     bit, byte);
			flips++;
		}
	}
	cr_assert_eq(flips, (n - 1) * 8);
	cr_assert_eq(n, 96 + 24 + 64);
}

Test(msgsig, any_ttl_keeps_the_signature_valid)
{
	struct rly_identity id = identity();
	struct msgbuf m;

	build(&m, &id, 16, 0);
	for (unsigned ttl = 0; ttl < 256; ttl++) {
		hdr(&m)->ttl = (uint8_t)ttl;
		cr_assert_eq(rly_msg_verify(hdr(&m)), 1, "ttl %u", ttl);
	}
}

Test(msgsig, verify_does_not_change_the_message_it_checks)
{
	struct rly_identity id = identity();
	struct msgbuf m, before;

	build(&m, &id, 100, 77);
	before = m;
	cr_assert_eq(rly_msg_verify(hdr(&m)), 1);
	cr_assert_arr_eq(m.b, before.b, sizeof(m.b));
	m.b[HDR + 5] ^= 1;
	before = m;
	cr_assert_eq(rly_msg_verify(hdr(&m)), 0);
	cr_assert_arr_eq(m.b, before.b, sizeof(m.b));
}

Test(msgsig, another_publisher_key_fails)
{
	struct rly_identity a = identity(), b = identity();
	struct msgbuf m;

	build(&m, &a, 16, 0);
	cr_assert_eq(rly_msg_verify(hdr(&m)), 1);
	/* Claimed by b: a's signature does not verify under b's key. */
	memcpy(hdr(&m)->publisher, b.pk, RLY_ID_LEN);
	cr_assert_eq(rly_msg_verify(hdr(&m)), 0);
	/* Signed by b in a's name: b's signature does not verify under a's key. */
	build(&m, &b, 16, 0);
	memcpy(hdr(&m)->publisher, a.pk, RLY_ID_LEN);
	cr_assert_eq(rly_msg_verify(hdr(&m)), 0);
}

Test(msgsig, an_unsigned_message_never_verifies)
{
	struct rly_identity id = identity();
	struct msgbuf m;

	build(&m, &id, 16, 0);
	rly_be16_store(&hdr(&m)->flags, 0);
	rly_be16_store(&hdr(&m)->sig_len, 0);
	cr_assert_eq(rly_msg_verify(hdr(&m)), 0);
}

Test(msgsig, empty_and_largest_payloads_sign_and_verify_with_any_ttl)
{
	struct rly_identity id = identity();
	const uint16_t largest = RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, RLY_WIRE_SIG_LEN);
	struct msgbuf m;

	cr_assert_eq(largest, 1804);
	cr_assert_eq(build(&m, &id, 0, 3), HDR + RLY_WIRE_SIG_LEN);
	cr_assert_eq(rly_msg_verify(hdr(&m)), 1);
	cr_assert_eq(build(&m, &id, largest, 255), RLY_WIRE_MAX_DGRAM - 8);
	cr_assert_eq(rly_msg_verify(hdr(&m)), 1);
	m.b[HDR + largest - 1] ^= 0x80;
	cr_assert_eq(rly_msg_verify(hdr(&m)), 0);
}

Test(msgsig, a_signed_message_passes_the_wire_parser)
{
	struct rly_identity id = identity();
	struct msgbuf m;
	uint8_t dgram[RLY_WIRE_MAX_DGRAM];
	struct rly_wire_view v;
	size_t n = build(&m, &id, 50, 0);

	memcpy(dgram + 8, m.b, n);
	rly_wire_put_dgram_hdr(dgram, RLY_MSG_DATA, (uint16_t)(8 + n), 1);
	cr_assert_eq(rly_wire_parse(dgram, 8 + n, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK);
	cr_assert_eq(rly_msg_verify((const struct rly_wire_msg_hdr *)v.body), 1);
}
