/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wire protocol v1 (include/relay/wire.h, common/wire.c): valid datagrams of every kind, one
 * crafted input per refusal reason, and a property test against the reference reading in
 * tests/fuzz/wire_oracle.h.
 *
 * Every parse of a malformed input runs from a buffer that touches a PROT_NONE guard page, once
 * ending at the guard above it and once starting right after the guard below it, so a read one byte
 * outside the datagram in either direction kills the test instead of passing unnoticed.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz/wire_build.h"
#include "fuzz/wire_oracle.h"
#include "relay/wire.h"

#define HDR sizeof(struct rly_wire_dgram_hdr)
#define MSG sizeof(struct rly_wire_msg_hdr)
#define BUF_CAP 4096

static struct rly_wire_msg_hdr *msg_at(uint8_t *buf, size_t off)
{
	return (struct rly_wire_msg_hdr *)(buf + HDR + off);
}

/* ------------------------------------------------------------------ guard pages */

/* guard | one data page | guard, mapped once per test process (Criterion forks per test). */
static uint8_t *guarded_page(void)
{
	static uint8_t *page;
	long ps = sysconf(_SC_PAGESIZE);

	if (page)
		return page;
	uint8_t *m = mmap(NULL, 3 * (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			  -1, 0);
	cr_assert(m != MAP_FAILED, "mmap guard region");
	cr_assert(mprotect(m, (size_t)ps, PROT_NONE) == 0);
	cr_assert(mprotect(m + 2 * ps, (size_t)ps, PROT_NONE) == 0);
	cr_assert(BUF_CAP <= ps);
	page = m + ps;
	return page;
}

/* Parse @p len bytes placed flush against the upper guard, then flush against the lower one. */
static enum rly_wire_err parse_guarded(const uint8_t *data, size_t len, size_t max_len,
				       struct rly_wire_view *v)
{
	long ps = sysconf(_SC_PAGESIZE);
	uint8_t *page = guarded_page();
	uint8_t *end = page + ps - len;
	struct rly_wire_view v_end = {0}, v_start = {0};
	enum rly_wire_err e_end, e_start;

	memmove(end, data, len);
	e_end = rly_wire_parse(end, len, max_len, &v_end);
	memmove(page, end, len);
	e_start = rly_wire_parse(page, len, max_len, &v_start);
	cr_assert_eq(e_end, e_start, "verdict depends on where the buffer lies: %s vs %s",
		     rly_wire_err_name(e_end), rly_wire_err_name(e_start));
	if (e_start == RLY_WIRE_ERR_OK) {
		cr_assert_eq(v_start.body, page + HDR);
		cr_assert_eq(v_end.body, end + HDR);
		*v = v_start;
		/* Callers look at the view through their own copy of the bytes. */
		v->body = data + HDR;
	}
	return e_start;
}

static void on_segv(int sig)
{
	(void)sig;
	_exit(42);
}

Test(wire, guard_page_harness_catches_a_read_one_byte_past_the_end, .exit_code = 42)
{
	long ps = sysconf(_SC_PAGESIZE);
	volatile uint8_t *page = guarded_page();
	struct sigaction sa = {.sa_handler = on_segv};

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	(void)page[ps]; /* the harness is only worth something if this faults */
	cr_assert_fail("read past the data page did not fault");
}

Test(wire, guard_page_harness_catches_a_read_one_byte_before_the_start, .exit_code = 42)
{
	volatile uint8_t *page = guarded_page();
	struct sigaction sa = {.sa_handler = on_segv};

	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
	(void)page[-1];
	cr_assert_fail("read before the data page did not fault");
}

/* ------------------------------------------------------------------ valid datagrams */

static void expect_ok(const uint8_t *buf, size_t len, size_t max_len, struct rly_wire_view *v)
{
	enum rly_wire_err e = parse_guarded(buf, len, max_len, v);

	cr_assert_eq(e, RLY_WIRE_ERR_OK, "refused a valid datagram: %s", rly_wire_err_name(e));
	cr_assert_eq(wo_parse(buf, len, max_len), RLY_WIRE_ERR_OK);
	const char *why = wo_check_view(buf, len, v);
	cr_assert_null(why, "%s", why ? why : "");
}

Test(wire, accepts_one_data_message_and_exposes_its_fields)
{
	uint8_t buf[BUF_CAP];
	struct wb_msg m = {.seq = 42, .prev_seq = 41, .payload_len = 20, .partition = 7,
			   .chain = 0xABCDEF01u, .content_type = 0x0102, .ttl = 9};
	size_t len = HDR + wb_put_msg(buf + HDR, &m);
	struct rly_wire_view v;
	size_t off = 0;

	rly_wire_put_dgram_hdr(buf, RLY_MSG_DATA, (uint16_t)len, 1);
	cr_assert_eq(len, HDR + MSG + 20);
	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
	cr_assert_eq(v.type, RLY_MSG_DATA);
	cr_assert_eq(v.count, 1);
	cr_assert_eq(v.body_len, MSG + 20);

	const struct rly_wire_msg_hdr *h = rly_wire_next_msg(&v, &off);
	cr_assert_not_null(h);
	cr_assert_eq((const uint8_t *)h, buf + HDR);
	cr_assert_eq(rly_be64_load(&h->seq), 42);
	cr_assert_eq(rly_be64_load(&h->prev_seq), 41);
	cr_assert_eq(rly_be32_load(&h->partition), 7);
	cr_assert_eq(rly_be32_load(&h->chain), 0xABCDEF01u);
	cr_assert_eq(rly_be16_load(&h->content_type), 0x0102);
	cr_assert_eq(rly_be16_load(&h->payload_len), 20);
	cr_assert_eq(rly_be16_load(&h->sig_len), 0);
	cr_assert_eq(h->ttl, 9);
	cr_assert_eq(rly_wire_msg_size(h), MSG + 20);
	for (size_t i = 0; i < 20; i++)
		cr_assert_eq(((const uint8_t *)h)[MSG + i], wb_payload_byte(42, i));
	cr_assert_eq(off, MSG + 20);
	cr_assert_null(rly_wire_next_msg(&v, &off));
}

Test(wire, ttl_is_not_checked_so_a_relay_may_rewrite_it)
{
	uint8_t buf[BUF_CAP];
	size_t len = wb_data1(buf, 8);
	struct rly_wire_view v;

	for (unsigned ttl = 0; ttl < 256; ttl += 51) {
		msg_at(buf, 0)->ttl = (uint8_t)ttl;
		expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
	}
}

Test(wire, accepts_messages_filling_the_largest_datagram_exactly)
{
	/* 20 headers (1920 bytes) and 44 bytes of payload spread unevenly fill 1964 = 1972 - 8. */
	uint16_t pl[20] = {0};
	uint8_t buf[BUF_CAP];
	struct rly_wire_view v;

	pl[0] = 1;
	pl[7] = 13;
	pl[19] = 30;
	size_t len = wb_data(buf, 20, 1000, pl, 0, 0);
	cr_assert_eq(len, RLY_WIRE_MAX_DGRAM);
	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
	cr_assert_eq(v.count, 20);
	cr_assert_eq(parse_guarded(buf, len, RLY_WIRE_MAX_DGRAM - 1, &v), RLY_WIRE_ERR_OVERSIZED);

	/* One message with the largest payload, unsigned and signed. */
	uint16_t big = RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, 0);
	len = wb_data(buf, 1, 1, &big, 0, 0);
	cr_assert_eq(len, RLY_WIRE_MAX_DGRAM);
	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
	big = RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, RLY_WIRE_SIG_LEN);
	len = wb_data(buf, 1, 1, &big, 1, 0);
	cr_assert_eq(len, RLY_WIRE_MAX_DGRAM);
	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);

	/* The same for a 1500-byte MTU. */
	big = RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_DGRAM_FOR_MTU(1500u), RLY_WIRE_SIG_LEN);
	len = wb_data(buf, 1, 1, &big, 1, 0);
	cr_assert_eq(len, 1472);
	expect_ok(buf, len, RLY_WIRE_DGRAM_FOR_MTU(1500u), &v);
	cr_assert_eq(parse_guarded(buf, len, 1471, &v), RLY_WIRE_ERR_OVERSIZED);
}

Test(wire, accepts_a_signed_message_with_its_signature_after_the_payload)
{
	uint16_t pl = 33;
	uint8_t buf[BUF_CAP];
	struct rly_wire_view v;
	size_t off = 0, len = wb_data(buf, 1, 5, &pl, 1, 0);

	cr_assert_eq(len, HDR + MSG + 33 + 64);
	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
	const struct rly_wire_msg_hdr *h = rly_wire_next_msg(&v, &off);
	cr_assert_eq(rly_be16_load(&h->flags), RLY_MSG_F_SIGNED);
	cr_assert_eq(rly_be16_load(&h->sig_len), RLY_WIRE_SIG_LEN);
	cr_assert_eq(rly_wire_msg_size(h), MSG + 33 + 64);
	const uint8_t *sig = (const uint8_t *)h + MSG + 33;
	for (size_t i = 0; i < 64; i++)
		cr_assert_eq(sig[i], wb_sig_byte(5, i));
	cr_assert_null(rly_wire_next_msg(&v, &off));
}

Test(wire, accepts_an_encrypted_message_carrying_its_key_id)
{
	uint16_t pl[3] = {16, 0, 40};
	uint8_t buf[BUF_CAP];
	struct rly_wire_view v;
	size_t off = 0, len = wb_data(buf, 3, 9, pl, 1, 0xDEADBEEFu);
	const struct rly_wire_msg_hdr *h;
	unsigned n = 0;

	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
	while ((h = rly_wire_next_msg(&v, &off)) != NULL) {
		cr_assert_eq(rly_be16_load(&h->flags), RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
		cr_assert_eq(rly_be32_load(&h->key_id), 0xDEADBEEFu);
		cr_assert_eq(rly_be16_load(&h->payload_len), pl[n]);
		n++;
	}
	cr_assert_eq(n, 3);

	/* Encrypted but unsigned is allowed too. */
	len = wb_data(buf, 1, 1, pl, 0, 1);
	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
}

Test(wire, accepts_the_largest_sequence_numbers)
{
	uint8_t buf[BUF_CAP];
	struct wb_msg m = {.seq = UINT64_MAX, .prev_seq = UINT64_MAX - 1};
	size_t len = HDR + wb_put_msg(buf + HDR, &m);
	struct rly_wire_view v;

	rly_wire_put_dgram_hdr(buf, RLY_MSG_DATA, (uint16_t)len, 1);
	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
	/* prev_seq may be any value below seq: a publisher that skips numbers says so. */
	rly_be64_store(&msg_at(buf, 0)->prev_seq, 0);
	expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
}

Test(wire, next_msg_walks_exactly_count_messages)
{
	uint8_t buf[BUF_CAP];
	struct rly_wire_view v;

	for (unsigned n = 1; n <= 19; n++) {
		uint16_t pl[19];
		for (unsigned i = 0; i < n; i++)
			pl[i] = (uint16_t)((i * 7) % 5);
		/* signed only while 160-byte messages still fit in one datagram */
		size_t len = wb_data(buf, n, 100, pl, n <= 11 && (n & 1), (n & 2) ? n : 0);
		expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
		cr_assert_eq(v.count, n);

		size_t off = 0;
		unsigned seen = 0;
		const struct rly_wire_msg_hdr *h;
		while ((h = rly_wire_next_msg(&v, &off)) != NULL) {
			cr_assert_eq(rly_be64_load(&h->seq), 100 + seen, "n=%u message %u", n, seen);
			cr_assert_eq(rly_be16_load(&h->payload_len), pl[seen]);
			seen++;
		}
		cr_assert_eq(seen, n, "walked %u of %u messages", seen, n);
		cr_assert_eq(off, v.body_len);
	}
}

/* ------------------------------------------------------------------ control messages */

static const unsigned control_types[] = {
	RLY_MSG_SUBSCRIBE, RLY_MSG_CHALLENGE, RLY_MSG_SUB_ACK, RLY_MSG_UNSUBSCRIBE,
	RLY_MSG_UNSUB_ACK, RLY_MSG_HEARTBEAT, RLY_MSG_HEARTBEAT_ACK, RLY_MSG_SUBSCRIBE_SIGNED,
	RLY_MSG_KEY_REQUEST, RLY_MSG_KEY_RESPONSE, RLY_MSG_PEER_HELLO, RLY_MSG_PEER_JOIN,
	RLY_MSG_PEER_PRUNE, RLY_MSG_PEER_IHAVE, RLY_MSG_PEER_IWANT, RLY_MSG_PEER_DISCOVER,
	RLY_MSG_NAK, RLY_MSG_GAP,
};
#define N_CONTROL (sizeof(control_types) / sizeof(control_types[0]))

/* 0x40-0x44 were reserved until the PEER_* types were defined, 0x20-0x21 until NAK and GAP
 * (section 11 of the document). */
static const unsigned reserved_types[] = {0x50, 0x51};
#define N_RESERVED (sizeof(reserved_types) / sizeof(reserved_types[0]))

Test(wire, body_size_matches_the_protocol_document)
{
	cr_assert_eq(rly_wire_body_size(RLY_MSG_DATA), 0);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_SUBSCRIBE), 96);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_SUBSCRIBE_SIGNED), 160);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_CHALLENGE), 56);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_SUB_ACK), 56);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_UNSUBSCRIBE), 48);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_UNSUB_ACK), 56);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_HEARTBEAT), 48);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_HEARTBEAT_ACK), 56);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_KEY_REQUEST), 256);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_KEY_RESPONSE), 256);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_PEER_HELLO), 192);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_PEER_JOIN), 64);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_PEER_PRUNE), 64);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_PEER_IHAVE), 432);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_PEER_IWANT), 96);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_PEER_DISCOVER), 176);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_NAK), 200);
	cr_assert_eq(rly_wire_body_size(RLY_MSG_GAP), 96);
	cr_assert_eq(rly_wire_body_size(0x46), -1, "0x46: first undefined value after the peers");
	for (size_t i = 0; i < N_RESERVED; i++)
		cr_assert_eq(rly_wire_body_size(reserved_types[i]), -1);
	cr_assert_eq(rly_wire_body_size(0x00), -1);
	cr_assert_eq(rly_wire_body_size(0xFF), -1);
	cr_assert_eq(rly_wire_body_size(0x101), -1, "a type is one byte: 0x101 is not DATA");
}

Test(wire, every_control_type_round_trips_through_build_control)
{
	for (size_t i = 0; i < N_CONTROL; i++) {
		unsigned type = control_types[i];
		uint8_t body[WB_BODY_MAX], buf[BUF_CAP];
		struct rly_wire_view v;
		int size = wb_control_body(type, body);
		int len = rly_wire_build_control(buf, sizeof(buf), type, body);

		cr_assert_gt(size, 0);
		cr_assert_eq(len, (int)HDR + size, "%s", rly_msg_type_name(type));
		cr_assert_eq(rly_be16_load(buf), RLY_WIRE_MAGIC);
		cr_assert_eq(buf[2], RLY_WIRE_VERSION);
		cr_assert_eq(buf[3], type);
		cr_assert_eq(rly_be16_load(buf + 4), len);
		cr_assert_eq(rly_be16_load(buf + 6), 1);
		expect_ok(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v);
		cr_assert_eq(v.type, type);
		cr_assert_eq(v.count, 1);
		cr_assert_eq(v.body_len, (size_t)size);
		cr_assert_arr_eq(v.body, body, (size_t)size);
	}
}

Test(wire, subscribe_answer_with_cookie_and_every_ack_status_are_accepted)
{
	uint8_t body[128], buf[BUF_CAP];
	struct rly_wire_view v;

	wb_subscribe_body((struct rly_wire_subscribe *)body, 1);
	int len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_SUBSCRIBE, body);
	expect_ok(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v);

	/* An anonymous subscriber (zero key) is allowed. */
	memset(((struct rly_wire_subscribe *)body)->subscriber, 0, RLY_ID_LEN);
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_SUBSCRIBE, body);
	expect_ok(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v);

	for (unsigned status = 0; status <= RLY_SUB_UNAVAILABLE; status++) {
		const unsigned acks[] = {RLY_MSG_SUB_ACK, RLY_MSG_UNSUB_ACK, RLY_MSG_HEARTBEAT_ACK};
		for (size_t i = 0; i < 3; i++) {
			wb_ack_body((struct rly_wire_ack *)body, (uint16_t)status);
			len = rly_wire_build_control(buf, sizeof(buf), acks[i], body);
			expect_ok(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v);
		}
	}
}

Test(wire, subscribe_is_never_smaller_than_the_challenge_it_provokes)
{
	uint8_t buf[BUF_CAP];
	int sub = wb_control(buf, sizeof(buf), RLY_MSG_SUBSCRIBE);
	int chal = wb_control(buf, sizeof(buf), RLY_MSG_CHALLENGE);

	cr_assert_gt(sub, 0);
	cr_assert_geq(sub, chal, "SUBSCRIBE %d bytes < CHALLENGE %d bytes: amplification", sub, chal);
}

Test(wire, build_control_refuses_data_reserved_unknown_types_and_short_buffers)
{
	uint8_t body[WB_BODY_MAX] = {0}, buf[BUF_CAP];

	cr_assert_eq(rly_wire_build_control(buf, sizeof(buf), RLY_MSG_DATA, body), -1);
	for (size_t i = 0; i < N_RESERVED; i++)
		cr_assert_eq(rly_wire_build_control(buf, sizeof(buf), reserved_types[i], body), -1);
	cr_assert_eq(rly_wire_build_control(buf, sizeof(buf), 0x7F, body), -1);

	for (size_t i = 0; i < N_CONTROL; i++) {
		unsigned type = control_types[i];
		size_t total = HDR + (size_t)wb_control_body(type, body);

		memset(buf, 0x77, sizeof(buf));
		cr_assert_eq(rly_wire_build_control(buf, total - 1, type, body), -1);
		cr_assert_eq(buf[0], 0x77, "a refused build wrote into the buffer");
		cr_assert_eq(rly_wire_build_control(buf, total, type, body), (int)total);
		cr_assert_eq(buf[total], 0x77, "build wrote past the datagram");
	}
}

/*
 * A datagram spelled out byte by byte from docs/wire-protocol.md ("Example"): if the structs or
 * the accessors ever disagree with the document, this fails.
 */
Test(wire, documented_example_datagram_parses_as_described)
{
	static const uint8_t ex[] = {
		/* datagram header: "RY", v1, DATA, length 0x006A = 106, count 1 */
		0x52, 0x59, 0x01, 0x01, 0x00, 0x6A, 0x00, 0x01,
		/* stream_key */
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
		/* partition 2, chain 0x01020304 */
		0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04,
		/* publisher */
		0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7,
		0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF,
		0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7,
		0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF,
		/* seq 7, prev_seq 6 */
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
		/* timestamp_ns 1700000000000000000 = 0x17979CFE362A0000 */
		0x17, 0x97, 0x9C, 0xFE, 0x36, 0x2A, 0x00, 0x00,
		/* key_id 0, content_type 0x0101, flags 0, payload_len 2, sig_len 0 */
		0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
		/* ttl 8, reserved */
		0x08, 0x00, 0x00, 0x00,
		/* payload "hi" */
		0x68, 0x69,
	};
	struct rly_wire_view v;
	size_t off = 0;

	cr_assert_eq(sizeof(ex), 106);
	expect_ok(ex, sizeof(ex), RLY_WIRE_MAX_DGRAM, &v);
	const struct rly_wire_msg_hdr *h = rly_wire_next_msg(&v, &off);
	cr_assert_eq(h->stream_key[0], 0x00);
	cr_assert_eq(h->stream_key[15], 0xFF);
	cr_assert_eq(rly_be32_load(&h->partition), 2);
	cr_assert_eq(rly_be32_load(&h->chain), 0x01020304u);
	cr_assert_eq(h->publisher[31], 0xBF);
	cr_assert_eq(rly_be64_load(&h->seq), 7);
	cr_assert_eq(rly_be64_load(&h->prev_seq), 6);
	cr_assert_eq(rly_be64_load(&h->timestamp_ns), 1700000000000000000ull);
	cr_assert_eq(rly_be16_load(&h->content_type), 0x0101);
	cr_assert_eq(rly_be16_load(&h->payload_len), 2);
	cr_assert_eq(h->ttl, 8);
	cr_assert_eq(memcmp((const uint8_t *)h + MSG, "hi", 2), 0);
	cr_assert_null(rly_wire_next_msg(&v, &off));
}

Test(wire, max_len_above_the_protocol_maximum_is_clamped_to_it)
{
	uint8_t buf[BUF_CAP];
	uint16_t big = RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, 0) + 1;
	size_t len = wb_data(buf, 1, 1, &big, 0, 0);
	struct rly_wire_view v;

	cr_assert_eq(len, RLY_WIRE_MAX_DGRAM + 1);
	cr_assert_eq(wo_parse(buf, len, SIZE_MAX), RLY_WIRE_ERR_OVERSIZED);
	cr_assert_eq(parse_guarded(buf, len, SIZE_MAX, &v), RLY_WIRE_ERR_OVERSIZED);
	cr_assert_eq(parse_guarded(buf, len, 65535, &v), RLY_WIRE_ERR_OVERSIZED);
}

/* ------------------------------------------------------------------ one input per reason */

struct bad_case {
	const char *name;
	size_t (*build)(uint8_t *buf, unsigned arg);
	unsigned arg;
	size_t max_len; /* 0: RLY_WIRE_MAX_DGRAM */
	enum rly_wire_err want;
};

static size_t truncated(uint8_t *buf, unsigned n)
{
	wb_data1(buf, 4);
	return n;
}

static size_t magic(uint8_t *buf, unsigned m)
{
	size_t len = wb_data1(buf, 4);
	rly_be16_store(buf, (uint16_t)m);
	return len;
}

static size_t version(uint8_t *buf, unsigned ver)
{
	size_t len = wb_data1(buf, 4);
	buf[2] = (uint8_t)ver;
	return len;
}

static size_t data_of_len(uint8_t *buf, unsigned len)
{
	uint16_t pl = (uint16_t)(len - HDR - MSG);
	return wb_data(buf, 1, 1, &pl, 0, 0);
}

static size_t length_field_off_by(uint8_t *buf, unsigned delta)
{
	size_t len = wb_data1(buf, 10);
	wb_set_len(buf, len + (int16_t)delta);
	return len;
}

/* A datagram of @p type with a 48-byte zero body and count 1. */
static size_t typed(uint8_t *buf, unsigned type)
{
	memset(buf, 0, HDR + 48);
	rly_wire_put_dgram_hdr(buf, type, HDR + 48, 1);
	return HDR + 48;
}

static size_t data_count(uint8_t *buf, unsigned count)
{
	size_t len = wb_data(buf, 2, 1, NULL, 0, 0);
	wb_set_count(buf, (uint16_t)count);
	return len;
}

static size_t control_count(uint8_t *buf, unsigned count)
{
	/* bit 16 picks HEARTBEAT instead of SUBSCRIBE */
	int len = wb_control(buf, BUF_CAP, count & 0x10000 ? RLY_MSG_HEARTBEAT : RLY_MSG_SUBSCRIBE);
	wb_set_count(buf, (uint16_t)count);
	return (size_t)len;
}

/* One message cut @p cut bytes short, header length fixed up so only the message is wrong. */
static size_t cut_message(uint8_t *buf, unsigned cut)
{
	uint16_t pl = 100;
	size_t len = wb_data(buf, 1, 1, &pl, cut >= 1000, 0) - cut % 1000;
	wb_set_len(buf, len);
	return len;
}

/* Two messages with the second one's header cut to @p keep bytes. */
static size_t cut_second_header(uint8_t *buf, unsigned keep)
{
	size_t len = wb_data(buf, 2, 1, NULL, 0, 0) - MSG + keep;
	wb_set_len(buf, len);
	return len;
}

static size_t payload_len_field(uint8_t *buf, unsigned pl)
{
	size_t len = wb_data1(buf, 10);
	rly_be16_store(&msg_at(buf, 0)->payload_len, (uint16_t)pl);
	return len;
}

static size_t extra_bytes(uint8_t *buf, unsigned extra)
{
	size_t len = wb_data1(buf, 10);
	memset(buf + len, 0, extra);
	wb_set_len(buf, len + extra);
	return len + extra;
}

/* A signed message whose sig_len is @p sig, really followed by @p sig bytes after the payload. */
static size_t sig_len(uint8_t *buf, unsigned sig)
{
	size_t len = wb_data(buf, 1, 1, NULL, 1, 0) - RLY_WIRE_SIG_LEN;
	rly_be16_store(&msg_at(buf, 0)->sig_len, (uint16_t)sig);
	if (sig <= 256) {
		memset(buf + len, 0x5A, sig);
		len += sig;
	}
	wb_set_len(buf, len);
	return len;
}

enum flag_case { FL_SIGNED_NO_SIG, FL_SIG_NO_FLAG, FL_ENC_NO_KEY, FL_KEY_NO_ENC };

static size_t flags_inconsistent(uint8_t *buf, unsigned which)
{
	size_t len = wb_data(buf, 1, 1, NULL, which == FL_SIG_NO_FLAG, which == FL_ENC_NO_KEY);
	struct rly_wire_msg_hdr *h = msg_at(buf, 0);

	switch (which) {
	case FL_SIGNED_NO_SIG:
		rly_be16_store(&h->flags, RLY_MSG_F_SIGNED);
		break;
	case FL_SIG_NO_FLAG:
		rly_be16_store(&h->flags, 0);
		break;
	case FL_ENC_NO_KEY:
		rly_be32_store(&h->key_id, 0);
		break;
	case FL_KEY_NO_ENC:
		rly_be32_store(&h->key_id, 5);
		break;
	}
	return len;
}

static size_t unknown_flag(uint8_t *buf, unsigned bit)
{
	size_t len = wb_data(buf, 1, 1, NULL, 1, 3);
	struct rly_wire_msg_hdr *h = msg_at(buf, 0);
	rly_be16_store(&h->flags, (uint16_t)(rly_be16_load(&h->flags) | bit));
	return len;
}

static size_t msg_reserved(uint8_t *buf, unsigned i)
{
	size_t len = wb_data(buf, 2, 1, NULL, 0, 0);
	/* i < 3: first message; else byte i - 3 of the second one */
	msg_at(buf, i < 3 ? 0 : MSG)->reserved[i % 3] = 0x80;
	return len;
}

/* seq/prev pairs, the last one in a second message after a good first. */
static const uint64_t bad_seqs[][2] = {
	{0, 0}, {5, 5}, {5, 6}, {1, UINT64_MAX}, {UINT64_MAX, UINT64_MAX}, {0, 1},
};

static size_t sequence(uint8_t *buf, unsigned i)
{
	size_t len = wb_data(buf, 2, 1, NULL, 0, 0);
	struct rly_wire_msg_hdr *h = msg_at(buf, i % 2 ? MSG : 0);

	rly_be64_store(&h->seq, bad_seqs[i][0]);
	rly_be64_store(&h->prev_seq, bad_seqs[i][1]);
	return len;
}

/* Control datagram of type (arg & 0xFF) with a body (arg >> 8) - 128 bytes off its size. */
static size_t body_size(uint8_t *buf, unsigned arg)
{
	unsigned type = arg & 0xFF;
	int delta = (int)(arg >> 8) - 128;
	int len = wb_control(buf, BUF_CAP, type);
	size_t n = (size_t)((int)len + delta);

	memset(buf + len, 0, delta > 0 ? (size_t)delta : 0);
	wb_set_len(buf, n);
	return n;
}
#define BODY(type, delta) (((unsigned)(128 + (delta)) << 8) | (type))

enum sub_field { SF_COOKIE_NO_ISSUED, SF_ISSUED_NO_COOKIE, SF_LEASE0_FIRST, SF_LEASE0_ANSWER };

static size_t subscribe_field(uint8_t *buf, unsigned which)
{
	struct rly_wire_subscribe s;

	wb_subscribe_body(&s, which == SF_COOKIE_NO_ISSUED || which == SF_ISSUED_NO_COOKIE ||
				      which == SF_LEASE0_ANSWER);
	if (which == SF_COOKIE_NO_ISSUED)
		rly_be64_store(&s.issued_ms, 0);
	if (which == SF_ISSUED_NO_COOKIE)
		memset(s.cookie, 0, sizeof(s.cookie));
	if (which == SF_LEASE0_FIRST || which == SF_LEASE0_ANSWER)
		rly_be32_store(&s.lease_ms, 0);
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_SUBSCRIBE, &s);
}

static size_t subscribe_cookie_one_byte(uint8_t *buf, unsigned i)
{
	struct rly_wire_subscribe s;

	/* issued_ms 0 but a single nonzero cookie byte: still "cookie without issued_ms" */
	wb_subscribe_body(&s, 0);
	s.cookie[i] = 1;
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_SUBSCRIBE, &s);
}

enum signed_field { SS_NO_COOKIE, SS_NO_SUBSCRIBER, SS_RESERVED, SS_LEASE0 };

/* SUBSCRIBE_SIGNED is only the answer to a challenge, from a named subscriber. */
static size_t subscribe_signed_field(uint8_t *buf, unsigned which)
{
	struct rly_wire_subscribe_signed ss;

	wb_control_body(RLY_MSG_SUBSCRIBE_SIGNED, &ss);
	if (which == SS_NO_COOKIE) {
		memset(&ss.sub.issued_ms, 0, sizeof(ss.sub.issued_ms));
		memset(ss.sub.cookie, 0, sizeof(ss.sub.cookie));
	} else if (which == SS_NO_SUBSCRIBER) {
		memset(ss.sub.subscriber, 0, sizeof(ss.sub.subscriber));
	} else if (which == SS_RESERVED) {
		ss.sub.reserved[7] = 1;
	} else {
		memset(&ss.sub.lease_ms, 0, sizeof(ss.sub.lease_ms));
	}
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_SUBSCRIBE_SIGNED, &ss);
}

enum key_request_field { KQ_REQUEST_ID0, KQ_NO_PUBLISHER, KQ_NO_REQUESTER, KQ_RESERVED, KQ_PAD0, KQ_PAD71 };

static size_t key_request_field(uint8_t *buf, unsigned which)
{
	struct rly_wire_key_request r;

	wb_key_request_body(&r);
	switch (which) {
	case KQ_REQUEST_ID0:
		memset(&r.request_id, 0, sizeof(r.request_id));
		break;
	case KQ_NO_PUBLISHER:
		memset(r.publisher, 0, sizeof(r.publisher));
		break;
	case KQ_NO_REQUESTER:
		memset(r.requester, 0, sizeof(r.requester));
		break;
	case KQ_RESERVED:
		rly_be32_store(&r.reserved, 0x100);
		break;
	case KQ_PAD0:
		r.pad[0] = 1;
		break;
	default:
		r.pad[71] = 0x80;
		break;
	}
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_KEY_REQUEST, &r);
}

enum key_response_field {
	KR_OK_NO_KEY_ID, KR_DENIED_WITH_KEY_ID, KR_DENIED_WITH_SEALED, KR_STATUS_UNKNOWN,
	KR_REQUEST_ID0, KR_NO_PUBLISHER, KR_NO_REQUESTER, KR_RESERVED,
};

static size_t key_response_field(uint8_t *buf, unsigned which)
{
	struct rly_wire_key_response r;

	wb_key_response_body(&r, which == KR_DENIED_WITH_KEY_ID || which == KR_DENIED_WITH_SEALED
					 ? RLY_SUB_DENIED
					 : RLY_SUB_OK);
	switch (which) {
	case KR_OK_NO_KEY_ID:
		memset(&r.key_id, 0, sizeof(r.key_id));
		break;
	case KR_DENIED_WITH_KEY_ID:
		rly_be32_store(&r.key_id, 7);
		break;
	case KR_DENIED_WITH_SEALED:
		r.sealed[87] = 1;
		break;
	case KR_STATUS_UNKNOWN:
		rly_be16_store(&r.status, RLY_SUB_SLOW_CONSUMER + 1);
		break;
	case KR_REQUEST_ID0:
		memset(&r.request_id, 0, sizeof(r.request_id));
		break;
	case KR_NO_PUBLISHER:
		memset(r.publisher, 0, sizeof(r.publisher));
		break;
	case KR_NO_REQUESTER:
		memset(r.requester, 0, sizeof(r.requester));
		break;
	default:
		rly_be16_store(&r.reserved, 1);
		break;
	}
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_KEY_RESPONSE, &r);
}

Test(wire, key_messages_with_a_refusal_or_a_key_are_accepted)
{
	static const unsigned statuses[] = {RLY_SUB_OK, RLY_SUB_DENIED, RLY_SUB_UNAVAILABLE,
					    RLY_SUB_RATE_LIMITED, RLY_SUB_NOT_SUBSCRIBED};
	uint8_t buf[BUF_CAP];
	struct rly_wire_view v;

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		struct rly_wire_key_response r;
		int len;

		wb_key_response_body(&r, (uint16_t)statuses[i]);
		len = rly_wire_build_control(buf, BUF_CAP, RLY_MSG_KEY_RESPONSE, &r);
		cr_assert_eq(len, 8 + 256);
		cr_expect_eq(rly_wire_parse(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK,
			     "status %u", statuses[i]);
		cr_expect_eq(wo_parse(buf, (size_t)len, RLY_WIRE_MAX_DGRAM), RLY_WIRE_ERR_OK);
	}
	/* key_id 0 in a request means "the current key" */
	{
		struct rly_wire_key_request q;
		int len;

		wb_key_request_body(&q);
		memset(&q.key_id, 0, sizeof(q.key_id));
		memset(q.token, 0, sizeof(q.token)); /* as forwarded by a relay */
		len = rly_wire_build_control(buf, BUF_CAP, RLY_MSG_KEY_REQUEST, &q);
		cr_assert_eq(rly_wire_parse(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_OK);
		cr_assert_eq(v.type, RLY_MSG_KEY_REQUEST);
	}
}

Test(wire, key_ids_split_into_generation_and_step)
{
	cr_assert_eq(RLY_KEY_ID(1, 0), 0x10000u);
	cr_assert_eq(RLY_KEY_ID(0xFFFF, 0xFFFF), 0xFFFFFFFFu);
	cr_assert_eq(RLY_KEY_ID_GEN(RLY_KEY_ID(0x1234, 0x5678)), 0x1234);
	cr_assert_eq(RLY_KEY_ID_STEP(RLY_KEY_ID(0x1234, 0x5678)), 0x5678);
}

Test(wire, message_nonce_is_chain_seq_key_id_and_zeros)
{
	uint8_t n[RLY_MSG_NONCE_LEN];
	static const uint8_t want[RLY_MSG_NONCE_LEN] = {
	    0x01, 0x02, 0x03, 0x04, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80,
	    0x00, 0x05, 0x00, 0x09, 0, 0, 0, 0, 0, 0, 0, 0,
	};

	memset(n, 0xAA, sizeof(n));
	rly_msg_nonce(n, 0x01020304u, 0x1020304050607080ull, RLY_KEY_ID(5, 9));
	cr_assert_arr_eq(n, want, sizeof(want));
}

static size_t challenge_issued0(uint8_t *buf, unsigned unused)
{
	struct rly_wire_challenge c;

	(void)unused;
	wb_challenge_body(&c);
	rly_be64_store(&c.issued_ms, 0);
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_CHALLENGE, &c);
}

/* Ack of type (arg & 0xFF) with status arg >> 8. */
static size_t ack_status(uint8_t *buf, unsigned arg)
{
	struct rly_wire_ack a;

	wb_ack_body(&a, 0);
	rly_be16_store(&a.status, (uint16_t)(arg >> 8));
	return (size_t)rly_wire_build_control(buf, BUF_CAP, arg & 0xFF, &a);
}
#define ACK(type, status) (((unsigned)(status) << 8) | (type))

/* Control type (arg & 0xFF) with byte (arg >> 8) of its reserved field set. */
static size_t control_reserved(uint8_t *buf, unsigned arg)
{
	unsigned type = arg & 0xFF, byte = arg >> 8;
	int len = wb_control(buf, BUF_CAP, type);
	size_t at;

	switch (type) {
	case RLY_MSG_SUBSCRIBE:
		at = offsetof(struct rly_wire_subscribe, reserved);
		break;
	case RLY_MSG_CHALLENGE:
		at = offsetof(struct rly_wire_challenge, reserved);
		break;
	case RLY_MSG_UNSUBSCRIBE:
	case RLY_MSG_HEARTBEAT:
		at = offsetof(struct rly_wire_sub_ref, reserved);
		break;
	default:
		at = offsetof(struct rly_wire_ack, reserved);
		break;
	}
	buf[HDR + at + byte] = 0x01;
	return (size_t)len;
}
#define RSV(type, byte) (((unsigned)(byte) << 8) | (type))

/* ------------------------------------------------------------------ relay-to-relay bodies */

/* Set the last byte of a field to 1: the least a field can differ from all zero. */
static void set_last(void *field, size_t n)
{
	((uint8_t *)field)[n - 1] = 0x01;
}

enum peer_hello_change {
	PH_NONE, PH_RESERVED0, PH_RESERVED1, PH_RESERVED2, PH_REQUEST0,
	/* these flip a field between "set" and "zero" (section 9.1's kind table) */
	PH_ISSUED, PH_COOKIE, PH_TOKEN, PH_SENDER, PH_SIG,
	PH_MAX
};

/* Flip field @p change of a valid PEER_HELLO of its kind between present and absent. */
static void flip_hello_field(struct rly_wire_peer_hello *h, unsigned change)
{
	void *f;
	size_t n;

	switch (change) {
	case PH_ISSUED:
		f = &h->issued_ms, n = sizeof(h->issued_ms);
		break;
	case PH_COOKIE:
		f = h->cookie, n = sizeof(h->cookie);
		break;
	case PH_TOKEN:
		f = h->token, n = sizeof(h->token);
		break;
	case PH_SENDER:
		f = h->sender, n = sizeof(h->sender);
		break;
	default:
		f = h->sig, n = sizeof(h->sig);
		break;
	}
	uint8_t acc = 0;
	for (size_t i = 0; i < n; i++)
		acc |= ((uint8_t *)f)[i];
	if (acc)
		memset(f, 0, n);
	else
		set_last(f, n);
}

/* PEER_HELLO of kind (arg >> 8), valid for that kind, then changed by (arg & 0xFF). */
static size_t peer_hello_field(uint8_t *buf, unsigned arg)
{
	struct rly_wire_peer_hello h;
	unsigned kind = arg >> 8, change = arg & 0xFF;

	wb_peer_hello_body(&h, kind);
	switch (change) {
	case PH_NONE:
		break;
	case PH_RESERVED0:
		h.reserved0[2] = 0x80;
		break;
	case PH_RESERVED1:
		rly_be32_store(&h.reserved1, 1);
		break;
	case PH_RESERVED2:
		set_last(h.reserved2, sizeof(h.reserved2));
		break;
	case PH_REQUEST0:
		memset(&h.request_id, 0, sizeof(h.request_id));
		break;
	default:
		flip_hello_field(&h, change);
		break;
	}
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_PEER_HELLO, &h);
}
#define PH(kind, change) (((unsigned)(kind) << 8) | (change))

enum peer_link_change {
	PL_NONE, PL_RESERVED0, PL_RESERVED1, PL_REASON6, PL_REASON255, PL_REQUEST0, PL_TOKEN0,
};

/* Type (arg & 0xFF), kind (arg >> 8 & 0xFF), then changed by (arg >> 16). */
static size_t peer_link_field(uint8_t *buf, unsigned arg)
{
	struct rly_wire_peer_link l;
	unsigned type = arg & 0xFF, change = arg >> 16;

	wb_peer_link_body(&l, (arg >> 8) & 0xFF);
	switch (change) {
	case PL_RESERVED0:
		rly_be16_store(&l.reserved0, 0x0100);
		break;
	case PL_RESERVED1:
		set_last(l.reserved1, sizeof(l.reserved1));
		break;
	case PL_REASON6:
		l.reason = RLY_REASON_MAX + 1;
		break;
	case PL_REASON255:
		l.reason = 0xFF;
		break;
	case PL_REQUEST0:
		memset(&l.request_id, 0, sizeof(l.request_id));
		break;
	case PL_TOKEN0:
		memset(l.token, 0, sizeof(l.token));
		break;
	default:
		break;
	}
	return (size_t)rly_wire_build_control(buf, BUF_CAP, type, &l);
}
#define PL(type, kind, change) (((unsigned)(change) << 16) | ((unsigned)(kind) << 8) | (type))

enum peer_ihave_change {
	IH_NONE, IH_RESERVED0, IH_RESERVED1, IH_USED_ENTRY_RESERVED, IH_UNUSED_ENTRY_RESERVED,
	IH_UNUSED_FIRST_BYTE, IH_UNUSED_LAST_BYTE, IH_UNUSED_AND_HIGHEST0, IH_HIGHEST0,
	IH_PUBLISHER0, IH_TOKEN0,
};

/*
 * PEER_IHAVE with min(n, 8) entries filled and `n` = (arg >> 8), then changed by (arg & 0xFF).
 * "Used" changes hit the last used entry, "unused" ones the last entry (7).
 */
static size_t peer_ihave_field(uint8_t *buf, unsigned arg)
{
	struct rly_wire_peer_ihave h;
	unsigned n = arg >> 8, last = (n < RLY_IHAVE_MAX ? n : RLY_IHAVE_MAX) - 1;

	wb_peer_ihave_body(&h, n);
	h.n = (uint8_t)n;
	switch (arg & 0xFF) {
	case IH_RESERVED0:
		h.reserved0[0] = 1;
		break;
	case IH_RESERVED1:
		set_last(h.reserved1, sizeof(h.reserved1));
		break;
	case IH_USED_ENTRY_RESERVED:
		rly_be32_store(&h.e[last].reserved, 1);
		break;
	case IH_UNUSED_ENTRY_RESERVED:
		rly_be32_store(&h.e[RLY_IHAVE_MAX - 1].reserved, 0x01000000);
		break;
	case IH_UNUSED_FIRST_BYTE:
		h.e[n].publisher[0] = 1; /* the first unused entry */
		break;
	case IH_UNUSED_LAST_BYTE:
		set_last(&h.e[RLY_IHAVE_MAX - 1].highest, sizeof(h.e[0].highest));
		break;
	case IH_UNUSED_AND_HIGHEST0:
		rly_be32_store(&h.e[RLY_IHAVE_MAX - 1].chain, 1);
		memset(&h.e[0].highest, 0, sizeof(h.e[0].highest));
		break;
	case IH_HIGHEST0:
		memset(&h.e[last].highest, 0, sizeof(h.e[0].highest));
		break;
	case IH_PUBLISHER0:
		memset(h.e[last].publisher, 0, RLY_ID_LEN);
		break;
	case IH_TOKEN0:
		memset(h.token, 0, sizeof(h.token));
		break;
	default:
		break;
	}
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_PEER_IHAVE, &h);
}
#define IH(n, change) (((unsigned)(n) << 8) | (change))

/* A valid PEER_IHAVE datagram whose header and length say a body of @p body bytes. */
static size_t peer_ihave_size(uint8_t *buf, unsigned body)
{
	int len = wb_control(buf, BUF_CAP, RLY_MSG_PEER_IHAVE);

	cr_assert_gt(len, 0);
	memset(buf + len, 0, BUF_CAP - (size_t)len);
	wb_set_len(buf, HDR + body);
	return HDR + body;
}

enum peer_iwant_change {
	IW_NONE, IW_FROM0, IW_TO_BELOW_FROM, IW_FROM0_TO0, IW_REQUEST0, IW_PUBLISHER0, IW_TOKEN0,
	IW_FROM_EQUALS_TO, IW_WIDEST, IW_CHAIN0,
};

static size_t peer_iwant_field(uint8_t *buf, unsigned change)
{
	struct rly_wire_peer_iwant w;

	wb_peer_iwant_body(&w);
	switch (change) {
	case IW_FROM0:
		rly_be64_store(&w.from_seq, 0);
		break;
	case IW_TO_BELOW_FROM:
		rly_be64_store(&w.from_seq, 9);
		rly_be64_store(&w.to_seq, 8);
		break;
	case IW_FROM0_TO0:
		rly_be64_store(&w.from_seq, 0);
		rly_be64_store(&w.to_seq, 0);
		break;
	case IW_REQUEST0:
		memset(&w.request_id, 0, sizeof(w.request_id));
		break;
	case IW_PUBLISHER0:
		memset(w.publisher, 0, sizeof(w.publisher));
		break;
	case IW_TOKEN0:
		memset(w.token, 0, sizeof(w.token));
		break;
	case IW_FROM_EQUALS_TO:
		rly_be64_store(&w.from_seq, 7);
		rly_be64_store(&w.to_seq, 7);
		break;
	case IW_WIDEST:
		rly_be64_store(&w.from_seq, 1);
		rly_be64_store(&w.to_seq, UINT64_MAX);
		break;
	case IW_CHAIN0:
		rly_be32_store(&w.chain, 0);
		break;
	default:
		break;
	}
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_PEER_IWANT, &w);
}

enum peer_discover_change {
	PD_NONE, PD_RESERVED0, PD_RESERVED1, PD_RESERVED2, PD_REC_FLAGS, PD_REC_RESERVED,
	PD_REQUEST0, PD_TOKEN0, PD_RELAY0, PD_EXPIRES0, PD_IP, PD_RELAY, PD_SIG_LAST,
	PD_EMPTY_BUT_PORT, PD_EMPTY,
};

/* PEER_DISCOVER of kind (arg >> 8), valid for that kind, then changed by (arg & 0xFF). */
static size_t peer_discover_field(uint8_t *buf, unsigned arg)
{
	struct rly_wire_peer_discover d;

	wb_peer_discover_body(&d, arg >> 8);
	switch (arg & 0xFF) {
	case PD_RESERVED0:
		d.reserved0 = 0x40;
		break;
	case PD_RESERVED1:
		rly_be32_store(&d.reserved1, 0x80000000u);
		break;
	case PD_RESERVED2:
		set_last(d.reserved2, sizeof(d.reserved2));
		break;
	case PD_REC_FLAGS:
		rly_be16_store(&d.rec.flags, 1);
		break;
	case PD_REC_RESERVED:
		rly_be32_store(&d.rec.reserved, 0x00010000);
		break;
	case PD_REQUEST0:
		memset(&d.request_id, 0, sizeof(d.request_id));
		break;
	case PD_TOKEN0:
		memset(d.token, 0, sizeof(d.token));
		break;
	case PD_RELAY0:
		memset(d.rec.relay, 0, sizeof(d.rec.relay));
		break;
	case PD_EXPIRES0:
		memset(&d.rec.expires_ms, 0, sizeof(d.rec.expires_ms));
		break;
	case PD_IP:
		rly_be32_store(&d.rec.ip_be, 0x0A000001u);
		break;
	case PD_RELAY:
		d.rec.relay[0] = 1;
		break;
	case PD_SIG_LAST:
		set_last(d.rec.sig, sizeof(d.rec.sig));
		break;
	case PD_EMPTY_BUT_PORT:
		memset(&d.rec, 0, sizeof(d.rec));
		rly_be16_store(&d.rec.udp_port, RLY_WIRE_DEFAULT_PORT);
		break;
	case PD_EMPTY:
		memset(&d.rec, 0, sizeof(d.rec));
		break;
	default:
		break;
	}
	return (size_t)rly_wire_build_control(buf, BUF_CAP, RLY_MSG_PEER_DISCOVER, &d);
}
#define PD(kind, change) (((unsigned)(kind) << 8) | (change))

#define C(fn, arg, want) {#fn "(" #arg ")", fn, arg, 0, RLY_WIRE_ERR_##want}
#define CM(fn, arg, max, want) {#fn "(" #arg ") max " #max, fn, arg, max, RLY_WIRE_ERR_##want}

static const struct bad_case bad_cases[] = {
	C(truncated, 0, TRUNCATED_HEADER),
	C(truncated, 1, TRUNCATED_HEADER),
	C(truncated, 2, TRUNCATED_HEADER),
	C(truncated, 3, TRUNCATED_HEADER),
	C(truncated, 4, TRUNCATED_HEADER),
	C(truncated, 5, TRUNCATED_HEADER),
	C(truncated, 6, TRUNCATED_HEADER),
	C(truncated, 7, TRUNCATED_HEADER),
	C(magic, 0x5952, BAD_MAGIC),
	C(magic, 0x0000, BAD_MAGIC),
	C(magic, 0x52FF, BAD_MAGIC),
	C(magic, 0xFF59, BAD_MAGIC),
	C(version, 0, BAD_VERSION),
	C(version, 2, BAD_VERSION),
	C(version, 0xFF, BAD_VERSION),
	CM(data_of_len, 200, 199, OVERSIZED),
	CM(data_of_len, 1473, 1472, OVERSIZED),
	CM(data_of_len, RLY_WIRE_MAX_DGRAM + 1, SIZE_MAX, OVERSIZED),
	CM(data_of_len, 2048, RLY_WIRE_MAX_DGRAM, OVERSIZED),
	CM(truncated, 8, 7, OVERSIZED),
	C(length_field_off_by, 1, LENGTH_MISMATCH),
	C(length_field_off_by, (unsigned)-1, LENGTH_MISMATCH),
	C(length_field_off_by, 0x8000, LENGTH_MISMATCH),
	C(length_field_off_by, (unsigned)-(int)(HDR + MSG + 10), LENGTH_MISMATCH),
	C(typed, 0x00, UNKNOWN_TYPE),
	C(typed, 0x02, UNKNOWN_TYPE),
	C(typed, 0x0F, UNKNOWN_TYPE),
	C(typed, 0x18, UNKNOWN_TYPE),
	C(typed, 0x22, UNKNOWN_TYPE),
	C(typed, 0x46, UNKNOWN_TYPE),
	C(typed, 0x4F, UNKNOWN_TYPE),
	C(typed, 0x52, UNKNOWN_TYPE),
	C(typed, 0xFF, UNKNOWN_TYPE),
	C(typed, 0x50, RESERVED_TYPE),
	C(typed, 0x51, RESERVED_TYPE),
	C(data_count, 0, BAD_COUNT),
	C(control_count, 0, BAD_COUNT),
	C(control_count, 2, BAD_COUNT),
	C(control_count, 0xFFFF, BAD_COUNT),
	C(control_count, 0x10000, BAD_COUNT), /* HEARTBEAT, count 0 */
	C(control_count, 0x10002, BAD_COUNT), /* HEARTBEAT, count 2 */
	C(data_count, 3, TRUNCATED_MESSAGE), /* count too big: only 2 messages follow */
	C(data_count, 0xFFFF, TRUNCATED_MESSAGE),
	C(cut_message, 1, TRUNCATED_MESSAGE),  /* payload runs past the end by one byte */
	C(cut_message, 50, TRUNCATED_MESSAGE),
	C(cut_message, 100, TRUNCATED_MESSAGE), /* header only, payload missing */
	C(cut_message, 101, TRUNCATED_MESSAGE), /* message header itself cut */
	C(cut_message, 196, TRUNCATED_MESSAGE), /* nothing after the datagram header */
	C(cut_message, 1001, TRUNCATED_MESSAGE), /* signature cut by one byte */
	C(cut_message, 1064, TRUNCATED_MESSAGE), /* signature missing */
	C(cut_second_header, 0, TRUNCATED_MESSAGE),
	C(cut_second_header, 1, TRUNCATED_MESSAGE),
	C(cut_second_header, 95, TRUNCATED_MESSAGE),
	C(payload_len_field, 11, TRUNCATED_MESSAGE),
	C(payload_len_field, 0xFFFF, TRUNCATED_MESSAGE),
	C(data_count, 1, TRAILING_BYTES), /* count too small */
	C(payload_len_field, 9, TRAILING_BYTES),
	C(payload_len_field, 0, TRAILING_BYTES),
	C(extra_bytes, 1, TRAILING_BYTES),
	C(extra_bytes, 95, TRAILING_BYTES),
	C(extra_bytes, 96, TRAILING_BYTES), /* a whole message's worth, but count says 1 */
	C(sig_len, 1, BAD_SIG_LEN),
	C(sig_len, 63, BAD_SIG_LEN),
	C(sig_len, 65, BAD_SIG_LEN),
	C(sig_len, 128, BAD_SIG_LEN),
	C(sig_len, 0xFFFF, BAD_SIG_LEN),
	C(flags_inconsistent, FL_SIGNED_NO_SIG, BAD_FLAGS),
	C(flags_inconsistent, FL_SIG_NO_FLAG, BAD_FLAGS),
	C(flags_inconsistent, FL_ENC_NO_KEY, BAD_FLAGS),
	C(flags_inconsistent, FL_KEY_NO_ENC, BAD_FLAGS),
	C(unknown_flag, 0x0004, BAD_FLAGS),
	C(unknown_flag, 0x0100, BAD_FLAGS),
	C(unknown_flag, 0x8000, BAD_FLAGS),
	C(msg_reserved, 0, RESERVED_NONZERO),
	C(msg_reserved, 1, RESERVED_NONZERO),
	C(msg_reserved, 2, RESERVED_NONZERO),
	C(msg_reserved, 5, RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_SUBSCRIBE, 0), RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_SUBSCRIBE, 7), RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_CHALLENGE, 0), RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_CHALLENGE, 3), RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_SUB_ACK, 1), RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_UNSUB_ACK, 0), RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_HEARTBEAT_ACK, 1), RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_UNSUBSCRIBE, 3), RESERVED_NONZERO),
	C(control_reserved, RSV(RLY_MSG_HEARTBEAT, 0), RESERVED_NONZERO),
	C(sequence, 0, BAD_SEQUENCE), /* seq 0 */
	C(sequence, 1, BAD_SEQUENCE), /* prev == seq, in the second message */
	C(sequence, 2, BAD_SEQUENCE), /* prev > seq */
	C(sequence, 3, BAD_SEQUENCE),
	C(sequence, 4, BAD_SEQUENCE),
	C(sequence, 5, BAD_SEQUENCE),
	C(body_size, BODY(RLY_MSG_SUBSCRIBE, 1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_SUBSCRIBE, -1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_SUBSCRIBE, -96), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_SUBSCRIBE, -40), BAD_BODY_SIZE), /* the size of a CHALLENGE */
	C(body_size, BODY(RLY_MSG_CHALLENGE, 1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_CHALLENGE, -1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_SUB_ACK, 1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_SUB_ACK, -8), BAD_BODY_SIZE), /* the size of a sub_ref */
	C(body_size, BODY(RLY_MSG_UNSUBSCRIBE, 8), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_UNSUBSCRIBE, -1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_UNSUB_ACK, -56), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_HEARTBEAT, 1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_HEARTBEAT_ACK, 127), BAD_BODY_SIZE),
	C(subscribe_field, SF_COOKIE_NO_ISSUED, BAD_FIELD),
	C(subscribe_field, SF_ISSUED_NO_COOKIE, BAD_FIELD),
	C(subscribe_field, SF_LEASE0_FIRST, BAD_FIELD),
	C(subscribe_field, SF_LEASE0_ANSWER, BAD_FIELD),
	C(subscribe_signed_field, SS_NO_COOKIE, BAD_FIELD),
	C(subscribe_signed_field, SS_NO_SUBSCRIBER, BAD_FIELD),
	C(subscribe_signed_field, SS_RESERVED, RESERVED_NONZERO),
	C(subscribe_signed_field, SS_LEASE0, BAD_FIELD),
	C(subscribe_cookie_one_byte, 0, BAD_FIELD),
	C(subscribe_cookie_one_byte, 15, BAD_FIELD),
	C(challenge_issued0, 0, BAD_FIELD),
	C(key_request_field, KQ_REQUEST_ID0, BAD_FIELD),
	C(key_request_field, KQ_NO_PUBLISHER, BAD_FIELD),
	C(key_request_field, KQ_NO_REQUESTER, BAD_FIELD),
	C(key_request_field, KQ_RESERVED, RESERVED_NONZERO),
	C(key_request_field, KQ_PAD0, RESERVED_NONZERO),
	C(key_request_field, KQ_PAD71, RESERVED_NONZERO),
	C(key_response_field, KR_OK_NO_KEY_ID, BAD_FIELD),
	C(key_response_field, KR_DENIED_WITH_KEY_ID, BAD_FIELD),
	C(key_response_field, KR_DENIED_WITH_SEALED, BAD_FIELD),
	C(key_response_field, KR_STATUS_UNKNOWN, BAD_FIELD),
	C(key_response_field, KR_REQUEST_ID0, BAD_FIELD),
	C(key_response_field, KR_NO_PUBLISHER, BAD_FIELD),
	C(key_response_field, KR_NO_REQUESTER, BAD_FIELD),
	C(key_response_field, KR_RESERVED, RESERVED_NONZERO),
	C(body_size, BODY(RLY_MSG_KEY_REQUEST, -72), BAD_BODY_SIZE), /* without the padding */
	C(body_size, BODY(RLY_MSG_KEY_RESPONSE, 1), BAD_BODY_SIZE),
	C(ack_status, ACK(RLY_MSG_SUB_ACK, RLY_SUB_SLOW_CONSUMER + 1), BAD_FIELD),
	C(ack_status, ACK(RLY_MSG_UNSUB_ACK, RLY_SUB_SLOW_CONSUMER + 1), BAD_FIELD),
	C(ack_status, ACK(RLY_MSG_HEARTBEAT_ACK, RLY_SUB_SLOW_CONSUMER + 1), BAD_FIELD),
	C(ack_status, ACK(RLY_MSG_SUB_ACK, 0xFFFF), BAD_FIELD),
	/* the former reserved types are parsed now: a 48-byte body is the wrong size for each */
	C(typed, 0x40, BAD_BODY_SIZE),
	C(typed, 0x41, BAD_BODY_SIZE),
	C(typed, 0x42, BAD_BODY_SIZE),
	C(typed, 0x43, BAD_BODY_SIZE),
	C(typed, 0x44, BAD_BODY_SIZE),
	C(typed, 0x45, BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_PEER_HELLO, 1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_PEER_HELLO, -1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_PEER_HELLO, -64), BAD_BODY_SIZE), /* without the signature */
	C(body_size, BODY(RLY_MSG_PEER_JOIN, 1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_PEER_JOIN, -16), BAD_BODY_SIZE), /* without reserved1 */
	C(body_size, BODY(RLY_MSG_PEER_PRUNE, -1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_PEER_PRUNE, 32), BAD_BODY_SIZE), /* the size of an IWANT */
	C(body_size, BODY(RLY_MSG_PEER_IWANT, 1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_PEER_IWANT, -32), BAD_BODY_SIZE), /* the size of a link */
	C(body_size, BODY(RLY_MSG_PEER_DISCOVER, -1), BAD_BODY_SIZE),
	C(body_size, BODY(RLY_MSG_PEER_DISCOVER, 16), BAD_BODY_SIZE), /* the size of a HELLO */
	C(peer_ihave_size, 431, BAD_BODY_SIZE),
	C(peer_ihave_size, 433, BAD_BODY_SIZE),
	C(peer_ihave_size, 432 - 48, BAD_BODY_SIZE), /* one entry short */
	C(peer_hello_field, PH(RLY_PEER_HELLO, PH_RESERVED0), RESERVED_NONZERO),
	C(peer_hello_field, PH(RLY_PEER_PING, PH_RESERVED1), RESERVED_NONZERO),
	C(peer_hello_field, PH(RLY_PEER_WELCOME, PH_RESERVED2), RESERVED_NONZERO),
	C(peer_hello_field, PH(0, PH_RESERVED2), RESERVED_NONZERO), /* before the kind */
	C(peer_hello_field, PH(0, PH_NONE), BAD_FIELD),
	C(peer_hello_field, PH(8, PH_NONE), BAD_FIELD),
	C(peer_hello_field, PH(0xFF, PH_NONE), BAD_FIELD),
	C(peer_hello_field, PH(RLY_PEER_PROOF, PH_REQUEST0), BAD_FIELD),
	C(peer_hello_field, PH(RLY_PEER_HELLO, PH_REQUEST0), BAD_FIELD),
	C(peer_hello_field, PH(RLY_PEER_HELLO, PH_COOKIE), BAD_FIELD),
	C(peer_hello_field, PH(RLY_PEER_CHALLENGE, PH_SIG), BAD_FIELD), /* CHALLENGE: unsigned */
	C(peer_hello_field, PH(RLY_PEER_CHALLENGE, PH_ISSUED), BAD_FIELD),
	C(peer_hello_field, PH(RLY_PEER_PROOF, PH_TOKEN), BAD_FIELD),
	C(peer_hello_field, PH(RLY_PEER_WELCOME, PH_SIG), BAD_FIELD),
	C(peer_hello_field, PH(RLY_PEER_BYE, PH_SENDER), BAD_FIELD),
	C(peer_hello_field, PH(RLY_PEER_PING, PH_TOKEN), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_JOIN, RLY_LINK_JOIN, PL_RESERVED0), RESERVED_NONZERO),
	C(peer_link_field, PL(RLY_MSG_PEER_PRUNE, RLY_LINK_LEAVE, PL_RESERVED1), RESERVED_NONZERO),
	C(peer_link_field, PL(RLY_MSG_PEER_JOIN, 0, PL_RESERVED1), RESERVED_NONZERO),
	C(peer_link_field, PL(RLY_MSG_PEER_PRUNE, RLY_LINK_JOIN, PL_RESERVED0), RESERVED_NONZERO),
	C(peer_link_field, PL(RLY_MSG_PEER_JOIN, RLY_LINK_PRUNE, PL_NONE), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_JOIN, RLY_LINK_LEAVE, PL_NONE), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_PRUNE, RLY_LINK_JOIN, PL_NONE), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_PRUNE, RLY_LINK_GRAFT, PL_NONE), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_PRUNE, 7, PL_NONE), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_JOIN, 0, PL_NONE), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_JOIN, RLY_LINK_REFUSE, PL_REASON6), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_PRUNE, RLY_LINK_LEAVE, PL_REASON255), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_JOIN, RLY_LINK_ACCEPT, PL_REQUEST0), BAD_FIELD),
	C(peer_link_field, PL(RLY_MSG_PEER_PRUNE, RLY_LINK_PRUNE, PL_TOKEN0), BAD_FIELD),
	C(peer_ihave_field, IH(3, IH_RESERVED0), RESERVED_NONZERO),
	C(peer_ihave_field, IH(3, IH_RESERVED1), RESERVED_NONZERO),
	C(peer_ihave_field, IH(3, IH_USED_ENTRY_RESERVED), RESERVED_NONZERO),
	C(peer_ihave_field, IH(3, IH_UNUSED_ENTRY_RESERVED), RESERVED_NONZERO),
	C(peer_ihave_field, IH(3, IH_UNUSED_FIRST_BYTE), RESERVED_NONZERO),
	C(peer_ihave_field, IH(0, IH_UNUSED_LAST_BYTE), RESERVED_NONZERO),
	C(peer_ihave_field, IH(3, IH_UNUSED_AND_HIGHEST0), RESERVED_NONZERO), /* before BAD_FIELD */
	C(peer_ihave_field, IH(9, IH_NONE), BAD_FIELD),
	C(peer_ihave_field, IH(0xFF, IH_NONE), BAD_FIELD),
	C(peer_ihave_field, IH(9, IH_USED_ENTRY_RESERVED), RESERVED_NONZERO), /* before n */
	C(peer_ihave_field, IH(3, IH_HIGHEST0), BAD_FIELD),
	C(peer_ihave_field, IH(8, IH_HIGHEST0), BAD_FIELD),
	C(peer_ihave_field, IH(3, IH_PUBLISHER0), BAD_FIELD),
	C(peer_ihave_field, IH(1, IH_TOKEN0), BAD_FIELD),
	C(peer_iwant_field, IW_FROM0, BAD_FIELD),
	C(peer_iwant_field, IW_TO_BELOW_FROM, BAD_FIELD),
	C(peer_iwant_field, IW_FROM0_TO0, BAD_FIELD),
	C(peer_iwant_field, IW_REQUEST0, BAD_FIELD),
	C(peer_iwant_field, IW_PUBLISHER0, BAD_FIELD),
	C(peer_iwant_field, IW_TOKEN0, BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_RESERVED0), RESERVED_NONZERO),
	C(peer_discover_field, PD(RLY_DISC_LOOKUP, PD_RESERVED1), RESERVED_NONZERO),
	C(peer_discover_field, PD(RLY_DISC_RESULT, PD_RESERVED2), RESERVED_NONZERO),
	C(peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_REC_FLAGS), RESERVED_NONZERO),
	C(peer_discover_field, PD(RLY_DISC_RESULT, PD_REC_RESERVED), RESERVED_NONZERO),
	/* reserved in a LOOKUP's record: RESERVED_NONZERO, not the LOOKUP rule's BAD_FIELD */
	C(peer_discover_field, PD(RLY_DISC_LOOKUP, PD_REC_FLAGS), RESERVED_NONZERO),
	C(peer_discover_field, PD(0, PD_REC_RESERVED), RESERVED_NONZERO),
	C(peer_discover_field, PD(0, PD_NONE), BAD_FIELD),
	C(peer_discover_field, PD(4, PD_NONE), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_REQUEST0), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_LOOKUP, PD_REQUEST0), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_RESULT, PD_TOKEN0), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_RELAY0), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_EXPIRES0), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_EMPTY), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_LOOKUP, PD_IP), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_LOOKUP, PD_RELAY), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_LOOKUP, PD_SIG_LAST), BAD_FIELD),
	C(peer_discover_field, PD(RLY_DISC_RESULT, PD_RELAY0), BAD_FIELD), /* a record of nobody */
	C(peer_discover_field, PD(RLY_DISC_RESULT, PD_EMPTY_BUT_PORT), BAD_FIELD),
};
#define N_BAD (sizeof(bad_cases) / sizeof(bad_cases[0]))

Test(wire, every_crafted_malformed_datagram_yields_exactly_its_reason)
{
	for (size_t i = 0; i < N_BAD; i++) {
		const struct bad_case *c = &bad_cases[i];
		uint8_t buf[BUF_CAP];
		struct rly_wire_view v;
		size_t max = c->max_len ? c->max_len : RLY_WIRE_MAX_DGRAM;

		memset(buf, 0, sizeof(buf));
		size_t len = c->build(buf, c->arg);
		cr_assert_leq(len, BUF_CAP);
		enum rly_wire_err e = parse_guarded(buf, len, max, &v);
		cr_expect_eq(e, c->want, "%s: got %s, want %s", c->name, rly_wire_err_name(e),
			     rly_wire_err_name(c->want));
		cr_expect_eq(wo_parse(buf, len, max), c->want, "%s: reference disagrees", c->name);
	}
}

Test(wire, every_wire_error_reason_is_produced_by_a_crafted_datagram)
{
	unsigned hits[RLY_WIRE_ERR_MAX] = {0};

	for (size_t i = 0; i < N_BAD; i++)
		hits[bad_cases[i].want]++;
	cr_assert_eq(hits[RLY_WIRE_ERR_OK], 0);
	for (unsigned e = 1; e < RLY_WIRE_ERR_MAX; e++)
		cr_expect_gt(hits[e], 0, "no crafted datagram for %s", rly_wire_err_name(e));
}

Test(wire, every_type_value_is_defined_reserved_or_unknown)
{
	for (unsigned type = 0; type < 256; type++) {
		uint8_t buf[BUF_CAP];
		struct rly_wire_view v;
		int is_control = 0, is_reserved = 0;

		for (size_t i = 0; i < N_CONTROL; i++)
			is_control |= control_types[i] == type;
		for (size_t i = 0; i < N_RESERVED; i++)
			is_reserved |= reserved_types[i] == type;

		size_t len = type == RLY_MSG_DATA ? wb_data1(buf, 3) : typed(buf, type);
		if (is_control)
			len = (size_t)wb_control(buf, sizeof(buf), type);
		enum rly_wire_err e = parse_guarded(buf, len, RLY_WIRE_MAX_DGRAM, &v);
		if (type == RLY_MSG_DATA || is_control)
			cr_expect_eq(e, RLY_WIRE_ERR_OK, "type 0x%02x: %s", type, rly_wire_err_name(e));
		else if (is_reserved)
			cr_expect_eq(e, RLY_WIRE_ERR_RESERVED_TYPE, "type 0x%02x", type);
		else
			cr_expect_eq(e, RLY_WIRE_ERR_UNKNOWN_TYPE, "type 0x%02x", type);
		cr_expect_eq((rly_msg_type_name(type) != NULL), (type == RLY_MSG_DATA || is_control ||
								is_reserved), "type 0x%02x name", type);
	}
}

Test(wire, one_bad_message_refuses_the_whole_datagram)
{
	uint8_t buf[BUF_CAP];
	struct rly_wire_view v, untouched;
	size_t len = wb_data(buf, 10, 1, NULL, 0, 0);

	msg_at(buf, 9 * MSG)->reserved[0] = 1;
	cr_assert_eq(parse_guarded(buf, len, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_RESERVED_NONZERO);
	memset(&v, 0xAB, sizeof(v));
	memcpy(&untouched, &v, sizeof(v));
	cr_assert_eq(rly_wire_parse(buf, len, RLY_WIRE_MAX_DGRAM, &v), RLY_WIRE_ERR_RESERVED_NONZERO);
	cr_assert_arr_eq(&v, &untouched, sizeof(v), "a refused parse wrote into the view");
}

/* ------------------------------------------------------------------ relay-to-relay messages */

/* Parse with the guard pages and with the reference; both must say @p want. */
static void expect_reason(const uint8_t *buf, size_t len, enum rly_wire_err want, const char *what)
{
	struct rly_wire_view v;
	enum rly_wire_err e = parse_guarded(buf, len, RLY_WIRE_MAX_DGRAM, &v);

	cr_expect_eq(e, want, "%s: got %s, want %s", what, rly_wire_err_name(e),
		     rly_wire_err_name(want));
	cr_expect_eq(wo_parse(buf, len, RLY_WIRE_MAX_DGRAM), want, "%s: reference disagrees", what);
	if (e == RLY_WIRE_ERR_OK) {
		const char *why = wo_check_view(buf, len, &v);
		cr_expect_null(why, "%s: %s", what, why ? why : "");
	}
}

Test(wire, every_peer_hello_kind_with_exactly_its_fields_is_accepted)
{
	for (unsigned kind = RLY_PEER_HELLO; kind <= RLY_PEER_HELLO_KIND_MAX; kind++) {
		uint8_t buf[BUF_CAP];
		char what[64];
		size_t len = peer_hello_field(buf, PH(kind, PH_NONE));

		snprintf(what, sizeof(what), "kind %u", kind);
		cr_assert_eq(len, HDR + 192);
		expect_reason(buf, len, RLY_WIRE_ERR_OK, what);
		/* target is free in every kind: all zero means "any relay" */
		memset(buf + HDR + offsetof(struct rly_wire_peer_hello, target), 0, RLY_ID_LEN);
		expect_reason(buf, len, RLY_WIRE_ERR_OK, what);
	}
}

Test(wire, peer_hello_with_a_field_its_kind_must_not_carry_or_without_one_it_must_is_bad_field)
{
	unsigned checked = 0;

	for (unsigned kind = RLY_PEER_HELLO; kind <= RLY_PEER_HELLO_KIND_MAX; kind++) {
		for (unsigned change = PH_ISSUED; change < PH_MAX; change++) {
			uint8_t buf[BUF_CAP];
			char what[64];
			size_t len = peer_hello_field(buf, PH(kind, change));

			snprintf(what, sizeof(what), "kind %u, field change %u", kind, change);
			expect_reason(buf, len, RLY_WIRE_ERR_BAD_FIELD, what);
			checked++;
		}
	}
	cr_assert_eq(checked, 7 * 5);
}

Test(wire, peer_hello_reserved_bytes_are_refused_before_any_field_rule)
{
	/* every reserved byte of every kind, alone and with a field broken as well */
	static const size_t reserved_at[] = {1, 2, 3, 4, 5, 6, 7, 120, 121, 122, 123, 124, 125, 126,
					     127};

	for (unsigned kind = 0; kind <= RLY_PEER_HELLO_KIND_MAX + 1; kind++) {
		for (size_t i = 0; i < sizeof(reserved_at) / sizeof(reserved_at[0]); i++) {
			uint8_t buf[BUF_CAP];
			char what[64];
			size_t len = peer_hello_field(buf, PH(kind, PH_NONE));

			snprintf(what, sizeof(what), "kind %u, byte %zu", kind, reserved_at[i]);
			buf[HDR + reserved_at[i]] = 0x10;
			expect_reason(buf, len, RLY_WIRE_ERR_RESERVED_NONZERO, what);
			memset(buf + HDR + offsetof(struct rly_wire_peer_hello, request_id), 0, 8);
			expect_reason(buf, len, RLY_WIRE_ERR_RESERVED_NONZERO, what);
		}
	}
}

Test(wire, join_kinds_are_accepted_only_in_peer_join_and_prune_kinds_only_in_peer_prune)
{
	for (unsigned kind = 0; kind <= 8; kind++) {
		uint8_t buf[BUF_CAP];
		char what[64];
		int join_kind = kind >= RLY_LINK_JOIN && kind <= RLY_LINK_GRAFT;
		int prune_kind = kind == RLY_LINK_PRUNE || kind == RLY_LINK_LEAVE;
		size_t len = peer_link_field(buf, PL(RLY_MSG_PEER_JOIN, kind, PL_NONE));

		snprintf(what, sizeof(what), "PEER_JOIN kind %u", kind);
		expect_reason(buf, len, join_kind ? RLY_WIRE_ERR_OK : RLY_WIRE_ERR_BAD_FIELD,
			      what);
		len = peer_link_field(buf, PL(RLY_MSG_PEER_PRUNE, kind, PL_NONE));
		snprintf(what, sizeof(what), "PEER_PRUNE kind %u", kind);
		expect_reason(buf, len, prune_kind ? RLY_WIRE_ERR_OK : RLY_WIRE_ERR_BAD_FIELD,
			      what);
	}
}

Test(wire, every_link_reason_is_accepted_in_a_refuse_and_a_leave)
{
	for (unsigned reason = 0; reason <= RLY_REASON_MAX + 1; reason++) {
		struct rly_wire_peer_link l;
		uint8_t buf[BUF_CAP];
		char what[64];
		enum rly_wire_err want =
			reason <= RLY_REASON_MAX ? RLY_WIRE_ERR_OK : RLY_WIRE_ERR_BAD_FIELD;

		wb_peer_link_body(&l, RLY_LINK_REFUSE);
		l.reason = (uint8_t)reason;
		int len = rly_wire_build_control(buf, BUF_CAP, RLY_MSG_PEER_JOIN, &l);
		snprintf(what, sizeof(what), "REFUSE reason %u", reason);
		expect_reason(buf, (size_t)len, want, what);
		wb_peer_link_body(&l, RLY_LINK_LEAVE);
		l.reason = (uint8_t)reason;
		len = rly_wire_build_control(buf, BUF_CAP, RLY_MSG_PEER_PRUNE, &l);
		snprintf(what, sizeof(what), "LEAVE reason %u", reason);
		expect_reason(buf, (size_t)len, want, what);
	}
}

Test(wire, peer_ihave_with_zero_to_eight_entries_is_accepted)
{
	for (unsigned n = 0; n <= RLY_IHAVE_MAX; n++) {
		uint8_t buf[BUF_CAP];
		char what[64];
		size_t len = peer_ihave_field(buf, IH(n, IH_NONE));

		snprintf(what, sizeof(what), "n %u", n);
		cr_assert_eq(len, HDR + 432);
		expect_reason(buf, len, RLY_WIRE_ERR_OK, what);
		if (n > 0) {
			/* chain 0 is a chain like any other */
			memset(buf + HDR + 48 + 48 * (n - 1) + 32, 0, 4);
			expect_reason(buf, len, RLY_WIRE_ERR_OK, what);
		}
	}
}

Test(wire, peer_ihave_unused_entries_must_be_zero_up_to_the_last_byte)
{
	/* every byte of every entry from n on, for each n: the oracle and the parser must agree */
	for (unsigned n = 0; n < RLY_IHAVE_MAX; n++) {
		for (size_t at = HDR + 48 + 48 * n; at < HDR + 432; at++) {
			uint8_t buf[BUF_CAP];
			char what[64];
			size_t len = peer_ihave_field(buf, IH(n, IH_NONE));

			snprintf(what, sizeof(what), "n %u, byte %zu", n, at - HDR);
			buf[at] = 0x02;
			expect_reason(buf, len, RLY_WIRE_ERR_RESERVED_NONZERO, what);
		}
	}
}

Test(wire, peer_iwant_of_one_message_or_of_the_widest_range_is_accepted)
{
	static const unsigned ok[] = {IW_NONE, IW_FROM_EQUALS_TO, IW_WIDEST, IW_CHAIN0};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint8_t buf[BUF_CAP];
		char what[64];
		size_t len = peer_iwant_field(buf, ok[i]);

		snprintf(what, sizeof(what), "iwant case %u", ok[i]);
		cr_assert_eq(len, HDR + 96);
		expect_reason(buf, len, RLY_WIRE_ERR_OK, what);
	}
}

Test(wire, peer_discover_announce_lookup_result_and_empty_result_are_accepted)
{
	static const unsigned ok[] = {
		PD(RLY_DISC_ANNOUNCE, PD_NONE), PD(RLY_DISC_LOOKUP, PD_NONE),
		PD(RLY_DISC_RESULT, PD_NONE), PD(RLY_DISC_RESULT, PD_EMPTY),
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		uint8_t buf[BUF_CAP];
		char what[64];
		size_t len = peer_discover_field(buf, ok[i]);

		snprintf(what, sizeof(what), "discover case 0x%x", ok[i]);
		cr_assert_eq(len, HDR + 176);
		expect_reason(buf, len, RLY_WIRE_ERR_OK, what);
	}
}

Test(wire, peer_discover_lookup_refuses_any_record_byte_after_the_partition)
{
	const size_t rec = offsetof(struct rly_wire_peer_discover, rec);

	for (size_t at = 20; at < sizeof(struct rly_disc_record); at++) {
		uint8_t buf[BUF_CAP];
		char what[64];
		size_t len = peer_discover_field(buf, PD(RLY_DISC_LOOKUP, PD_NONE));
		/* flags and reserved are reserved fields, refused as such before the kind's rule */
		int reserved = at >= 26 && at < 32;

		snprintf(what, sizeof(what), "record byte %zu", at);
		buf[HDR + rec + at] = 0x01;
		expect_reason(buf, len,
			      reserved ? RLY_WIRE_ERR_RESERVED_NONZERO : RLY_WIRE_ERR_BAD_FIELD,
			      what);
	}
}

Test(wire, every_peer_kind_round_trips_through_build_control)
{
	struct {
		unsigned type;
		size_t (*build)(uint8_t *buf, unsigned arg);
		unsigned arg;
	} const kinds[] = {
		{RLY_MSG_PEER_HELLO, peer_hello_field, PH(RLY_PEER_HELLO, PH_NONE)},
		{RLY_MSG_PEER_HELLO, peer_hello_field, PH(RLY_PEER_CHALLENGE, PH_NONE)},
		{RLY_MSG_PEER_HELLO, peer_hello_field, PH(RLY_PEER_PROOF, PH_NONE)},
		{RLY_MSG_PEER_HELLO, peer_hello_field, PH(RLY_PEER_WELCOME, PH_NONE)},
		{RLY_MSG_PEER_HELLO, peer_hello_field, PH(RLY_PEER_PING, PH_NONE)},
		{RLY_MSG_PEER_HELLO, peer_hello_field, PH(RLY_PEER_PONG, PH_NONE)},
		{RLY_MSG_PEER_HELLO, peer_hello_field, PH(RLY_PEER_BYE, PH_NONE)},
		{RLY_MSG_PEER_JOIN, peer_link_field,
		 PL(RLY_MSG_PEER_JOIN, RLY_LINK_JOIN, PL_NONE)},
		{RLY_MSG_PEER_JOIN, peer_link_field,
		 PL(RLY_MSG_PEER_JOIN, RLY_LINK_ACCEPT, PL_NONE)},
		{RLY_MSG_PEER_JOIN, peer_link_field,
		 PL(RLY_MSG_PEER_JOIN, RLY_LINK_REFUSE, PL_NONE)},
		{RLY_MSG_PEER_JOIN, peer_link_field,
		 PL(RLY_MSG_PEER_JOIN, RLY_LINK_GRAFT, PL_NONE)},
		{RLY_MSG_PEER_PRUNE, peer_link_field,
		 PL(RLY_MSG_PEER_PRUNE, RLY_LINK_PRUNE, PL_NONE)},
		{RLY_MSG_PEER_PRUNE, peer_link_field,
		 PL(RLY_MSG_PEER_PRUNE, RLY_LINK_LEAVE, PL_NONE)},
		{RLY_MSG_PEER_IHAVE, peer_ihave_field, IH(0, IH_NONE)},
		{RLY_MSG_PEER_IHAVE, peer_ihave_field, IH(RLY_IHAVE_MAX, IH_NONE)},
		{RLY_MSG_PEER_IWANT, peer_iwant_field, IW_NONE},
		{RLY_MSG_PEER_DISCOVER, peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_NONE)},
		{RLY_MSG_PEER_DISCOVER, peer_discover_field, PD(RLY_DISC_LOOKUP, PD_NONE)},
		{RLY_MSG_PEER_DISCOVER, peer_discover_field, PD(RLY_DISC_RESULT, PD_NONE)},
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		uint8_t buf[BUF_CAP], again[BUF_CAP];
		struct rly_wire_view v;
		size_t len = kinds[i].build(buf, kinds[i].arg);

		cr_assert_eq(len, HDR + (size_t)rly_wire_body_size(kinds[i].type), "case %zu", i);
		cr_assert_eq(buf[3], kinds[i].type);
		cr_assert_eq(rly_be16_load(buf + 4), len);
		cr_assert_eq(rly_be16_load(buf + 6), 1);
		expect_ok(buf, len, RLY_WIRE_MAX_DGRAM, &v);
		cr_assert_eq(v.type, kinds[i].type);
		cr_assert_eq(v.body_len, len - HDR);
		/* the view's body rebuilds the same datagram, byte for byte */
		int n = rly_wire_build_control(again, sizeof(again), v.type, v.body);
		cr_assert_eq(n, (int)len);
		cr_assert_arr_eq(again, buf, len, "case %zu", i);
		cr_assert_eq(rly_wire_build_control(again, len - 1, v.type, v.body), -1);
	}
}

/*
 * "Not all zero" means any single byte: each field that must be present, cleared but for its first
 * or its last byte, is still present. Offsets are the body's (docs/wire-protocol.md section 9).
 */
Test(wire, one_non_zero_byte_is_enough_for_a_peer_field_that_must_be_present)
{
	static const struct {
		size_t (*build)(uint8_t *buf, unsigned arg);
		unsigned arg;
		size_t off, len;
	} fields[] = {
		{peer_hello_field, PH(RLY_PEER_PROOF, PH_NONE), 16, 8},    /* issued_ms */
		{peer_hello_field, PH(RLY_PEER_PROOF, PH_NONE), 24, 16},   /* cookie */
		{peer_hello_field, PH(RLY_PEER_PROOF, PH_NONE), 40, 16},   /* token */
		{peer_hello_field, PH(RLY_PEER_PROOF, PH_NONE), 56, 32},   /* sender */
		{peer_hello_field, PH(RLY_PEER_PROOF, PH_NONE), 128, 64},  /* sig */
		{peer_hello_field, PH(RLY_PEER_CHALLENGE, PH_NONE), 8, 8}, /* request_id */
		{peer_link_field, PL(RLY_MSG_PEER_JOIN, RLY_LINK_GRAFT, PL_NONE), 24, 8},
		{peer_link_field, PL(RLY_MSG_PEER_PRUNE, RLY_LINK_LEAVE, PL_NONE), 32, 16},
		{peer_ihave_field, IH(2, IH_NONE), 24, 16},           /* token */
		{peer_ihave_field, IH(2, IH_NONE), 48 + 48, 32},      /* entry 1 publisher */
		{peer_ihave_field, IH(2, IH_NONE), 48 + 48 + 40, 8},  /* entry 1 highest */
		{peer_iwant_field, IW_NONE, 24, 32},                  /* publisher */
		{peer_iwant_field, IW_NONE, 72, 8},                   /* request_id */
		{peer_iwant_field, IW_NONE, 80, 16},                  /* token */
		{peer_discover_field, PD(RLY_DISC_LOOKUP, PD_NONE), 8, 8},    /* request_id */
		{peer_discover_field, PD(RLY_DISC_LOOKUP, PD_NONE), 16, 16},  /* token */
		{peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_NONE), 64, 8}, /* expires_ms */
		{peer_discover_field, PD(RLY_DISC_ANNOUNCE, PD_NONE), 72, 32}, /* relay */
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		for (int keep_last = 0; keep_last <= 1; keep_last++) {
			uint8_t buf[BUF_CAP];
			char what[64];
			size_t len = fields[i].build(buf, fields[i].arg);
			uint8_t *f = buf + HDR + fields[i].off;

			snprintf(what, sizeof(what), "field %zu, %s byte kept", i,
				 keep_last ? "last" : "first");
			memset(f, 0, fields[i].len);
			f[keep_last ? fields[i].len - 1 : 0] = 0x01;
			expect_reason(buf, len, RLY_WIRE_ERR_OK, what);
			f[keep_last ? fields[i].len - 1 : 0] = 0x00;
			expect_reason(buf, len, RLY_WIRE_ERR_BAD_FIELD, what);
		}
	}
}

Test(wire, peer_types_are_named_and_kind_maxima_match_their_lists)
{
	cr_assert_str_eq(rly_msg_type_name(0x40), "PEER_HELLO");
	cr_assert_str_eq(rly_msg_type_name(0x41), "PEER_JOIN");
	cr_assert_str_eq(rly_msg_type_name(0x42), "PEER_PRUNE");
	cr_assert_str_eq(rly_msg_type_name(0x43), "PEER_IHAVE");
	cr_assert_str_eq(rly_msg_type_name(0x44), "PEER_IWANT");
	cr_assert_str_eq(rly_msg_type_name(0x45), "PEER_DISCOVER");
	cr_assert_null(rly_msg_type_name(0x46));
	/* the parser's range checks use the _MAX constants: they must be the last listed value */
	unsigned last = 0;
#define X(name, value, desc) last = value;
	RLY_FOREACH_PEER_HELLO_KIND(X)
	cr_assert_eq(last, RLY_PEER_HELLO_KIND_MAX);
	RLY_FOREACH_PEER_LINK_KIND(X)
	cr_assert_eq(last, RLY_LINK_KIND_MAX);
	RLY_FOREACH_PEER_REASON(X)
	cr_assert_eq(last, RLY_REASON_MAX);
	RLY_FOREACH_DISC_KIND(X)
	cr_assert_eq(last, RLY_DISC_KIND_MAX);
#undef X
}

/* ------------------------------------------------------------------ property test */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: fixed seed, so a failure reproduces */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}

/* A valid relay-to-relay datagram of any type and kind, so mutations start from each of them. */
static size_t random_peer(uint8_t *buf)
{
	switch (rnd() % 6) {
	case 0:
		return peer_hello_field(buf, PH(1 + rnd() % RLY_PEER_HELLO_KIND_MAX, PH_NONE));
	case 1:
		return peer_link_field(buf, PL(RLY_MSG_PEER_JOIN, 1 + rnd() % 4, PL_NONE));
	case 2:
		return peer_link_field(buf, PL(RLY_MSG_PEER_PRUNE, 5 + rnd() % 2, PL_NONE));
	case 3:
		return peer_ihave_field(buf, IH(rnd() % (RLY_IHAVE_MAX + 1), IH_NONE));
	case 4:
		return peer_iwant_field(buf, IW_NONE);
	default:
		return peer_discover_field(buf, PD(1 + rnd() % RLY_DISC_KIND_MAX,
						   (rnd() & 3) ? PD_NONE : PD_EMPTY));
	}
}

static size_t random_valid(uint8_t *buf)
{
	unsigned kind = (unsigned)(rnd() % 10);

	if (kind < 4)
		return (size_t)wb_control(buf, BUF_CAP, control_types[rnd() % N_CONTROL]);
	if (kind < 7)
		return random_peer(buf);
	unsigned n = 1 + (unsigned)(rnd() % 6);
	uint16_t pl[6];
	for (unsigned i = 0; i < n; i++)
		pl[i] = (uint16_t)(rnd() % 200);
	return wb_data(buf, n, 1 + rnd() % 1000, pl, (int)(rnd() & 1),
		       (rnd() & 1) ? (uint32_t)rnd() | 1u : 0);
}

static const uint8_t interesting[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
				      0x08, 0x09, 0x3F, 0x40, 0x41, 0x45, 0x7F, 0x80,
				      0xFE, 0xFF, 'R',  'Y',  0x10, 0x20, 0x50, 0x60};

static size_t mutate(uint8_t *buf, size_t len)
{
	unsigned n = 1 + (unsigned)(rnd() % 4);

	for (unsigned k = 0; k < n; k++) {
		size_t at = len ? (size_t)(rnd() % len) : 0;
		switch (rnd() % 8) {
		case 0: /* flip a bit */
			if (len)
				buf[at] ^= (uint8_t)(1u << (rnd() % 8));
			break;
		case 1: /* an interesting byte */
			if (len)
				buf[at] = interesting[rnd() % sizeof(interesting)];
			break;
		case 2: /* random byte */
			if (len)
				buf[at] = (uint8_t)rnd();
			break;
		case 3: /* truncate */
			len = len ? (size_t)(rnd() % len) : 0;
			break;
		case 4: /* grow with random bytes */ {
			size_t grow = (size_t)(rnd() % 120);
			if (len + grow > BUF_CAP - 8)
				grow = 0;
			for (size_t i = 0; i < grow; i++)
				buf[len + i] = (uint8_t)rnd();
			len += grow;
			break;
		}
		case 5: /* a 16-bit field somewhere to an interesting value */
			if (len >= 2) {
				static const uint16_t v16[] = {0, 1, 63, 64, 65, 95, 96, 0x7FFF, 0xFFFF};
				at = (size_t)(rnd() % (len - 1));
				rly_be16_store(buf + at, v16[rnd() % 9]);
			}
			break;
		default:
			break;
		}
	}
	/* Half the time, make the header honest again so the mutation reaches the messages. */
	if (len >= HDR && (rnd() & 1))
		wb_set_len(buf, len);
	return len;
}

Test(wire, random_mutations_agree_with_the_reference_parser_and_never_misread)
{
	const size_t maxes[] = {RLY_WIRE_MAX_DGRAM, 1472, 512, SIZE_MAX};
	unsigned ok = 0, refused[RLY_WIRE_ERR_MAX] = {0};

	for (unsigned iter = 0; iter < 500000; iter++) {
		uint8_t buf[BUF_CAP];
		struct rly_wire_view v = {0};
		size_t max = maxes[iter % 4];
		size_t len = mutate(buf, random_valid(buf));
		enum rly_wire_err e = parse_guarded(buf, len, max, &v);
		enum rly_wire_err want = wo_parse(buf, len, max);

		cr_assert_eq(e, want, "iteration %u (len %zu): parser says %s, reference says %s", iter,
			     len, rly_wire_err_name(e), rly_wire_err_name(want));
		cr_assert_lt((unsigned)e, RLY_WIRE_ERR_MAX);
		if (e == RLY_WIRE_ERR_OK) {
			const char *why = wo_check_view(buf, len, &v);
			cr_assert_null(why, "iteration %u: %s", iter, why ? why : "");
			ok++;
		} else {
			refused[e]++;
		}
	}
	/* The mutations must exercise both sides and the deep reasons, or the test proves little. */
	cr_expect_gt(ok, 1000, "only %u mutated datagrams were still valid", ok);
	for (unsigned e = RLY_WIRE_ERR_TRUNCATED_HEADER; e < RLY_WIRE_ERR_MAX; e++)
		cr_expect_gt(refused[e], 0, "mutations never produced %s", rly_wire_err_name(e));
}

/* Section 8: a NAK of one to eight ranges, and a GAP of each reason, are accepted. */
Test(wire, nak_of_one_to_eight_ranges_and_gap_of_every_reason_are_accepted)
{
	for (unsigned n = 1; n <= RLY_NAK_RANGES; n++) {
		struct rly_wire_nak b;
		uint8_t buf[BUF_CAP];
		struct rly_wire_view v;
		int len;

		wb_nak_body(&b, n);
		len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_NAK, &b);
		cr_assert_eq(len, (int)(HDR + 200));
		expect_ok(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v);
	}
	for (unsigned r = 1; r <= RLY_GAP_REASON_MAX; r++) {
		struct rly_wire_gap g;
		uint8_t buf[BUF_CAP];
		struct rly_wire_view v;
		int len;

		wb_gap_body(&g, r);
		len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_GAP, &g);
		cr_assert_eq(len, (int)(HDR + 96));
		expect_ok(buf, (size_t)len, RLY_WIRE_MAX_DGRAM, &v);
		cr_assert_str_neq(rly_gap_reason_name(r), "UNKNOWN");
	}
	cr_assert_str_eq(rly_gap_reason_name(0), "UNKNOWN");
	cr_assert(rly_gap_reason_final(RLY_GAP_EVICTED));
	cr_assert(!rly_gap_reason_final(RLY_GAP_MISSING));
	cr_assert(!rly_gap_reason_final(RLY_GAP_PACED));
	cr_assert(rly_gap_reason_final(RLY_GAP_SLOW_CONSUMER));
}

static void nak_case(void (*edit)(struct rly_wire_nak *b), enum rly_wire_err want, const char *what)
{
	struct rly_wire_nak b;
	uint8_t buf[BUF_CAP];
	int len;

	wb_nak_body(&b, 3);
	edit(&b);
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_NAK, &b);
	expect_reason(buf, (size_t)len, want, what);
}

static void nak_n0(struct rly_wire_nak *b) { b->n = 0; memset(b->r, 0, sizeof(b->r)); }
static void nak_n9(struct rly_wire_nak *b) { b->n = 9; }
static void nak_req0(struct rly_wire_nak *b) { memset(&b->request_id, 0, 8); }
static void nak_pub0(struct rly_wire_nak *b) { memset(b->publisher, 0, RLY_ID_LEN); }
static void nak_from0(struct rly_wire_nak *b) { rly_be64_store(&b->r[1].from_seq, 0); }
static void nak_to_below(struct rly_wire_nak *b) { rly_be64_store(&b->r[2].to_seq, 29); }
static void nak_overlap(struct rly_wire_nak *b) { rly_be64_store(&b->r[1].from_seq, 10); }
static void nak_touching(struct rly_wire_nak *b) { rly_be64_store(&b->r[1].from_seq, 11); }
static void nak_descending(struct rly_wire_nak *b) { rly_be64_store(&b->r[2].from_seq, 5);
						     rly_be64_store(&b->r[2].to_seq, 6); }
static void nak_unused_range(struct rly_wire_nak *b) { rly_be64_store(&b->r[5].to_seq, 1); }
static void nak_reserved(struct rly_wire_nak *b) { b->reserved[6] = 1; }

Test(wire, nak_fields_are_checked)
{
	nak_case(nak_n0, RLY_WIRE_ERR_BAD_FIELD, "no range");
	nak_case(nak_n9, RLY_WIRE_ERR_BAD_FIELD, "nine ranges");
	nak_case(nak_req0, RLY_WIRE_ERR_BAD_FIELD, "request id 0");
	nak_case(nak_pub0, RLY_WIRE_ERR_BAD_FIELD, "no publisher");
	nak_case(nak_from0, RLY_WIRE_ERR_BAD_FIELD, "a range from 0");
	nak_case(nak_to_below, RLY_WIRE_ERR_BAD_FIELD, "to below from");
	nak_case(nak_overlap, RLY_WIRE_ERR_BAD_FIELD, "ranges overlapping");
	nak_case(nak_touching, RLY_WIRE_ERR_OK, "ranges next to each other (..10, then 11..)");
	nak_case(nak_descending, RLY_WIRE_ERR_BAD_FIELD, "ranges out of order");
	nak_case(nak_unused_range, RLY_WIRE_ERR_RESERVED_NONZERO, "an unused range not zero");
	nak_case(nak_reserved, RLY_WIRE_ERR_RESERVED_NONZERO, "reserved byte");
}

static void gap_case(void (*edit)(struct rly_wire_gap *g), enum rly_wire_err want, const char *what)
{
	struct rly_wire_gap g;
	uint8_t buf[BUF_CAP];
	int len;

	wb_gap_body(&g, RLY_GAP_MISSING);
	edit(&g);
	len = rly_wire_build_control(buf, sizeof(buf), RLY_MSG_GAP, &g);
	expect_reason(buf, (size_t)len, want, what);
}

static void gap_reason0(struct rly_wire_gap *g) { g->reason = 0; }
static void gap_reason6(struct rly_wire_gap *g) { g->reason = RLY_GAP_REASON_MAX + 1; }
static void gap_from0(struct rly_wire_gap *g) { rly_be64_store(&g->from_seq, 0); }
static void gap_to_below(struct rly_wire_gap *g) { rly_be64_store(&g->to_seq, 4); }
static void gap_req0(struct rly_wire_gap *g) { memset(&g->request_id, 0, 8); }
static void gap_pub0(struct rly_wire_gap *g) { memset(g->publisher, 0, RLY_ID_LEN); }
static void gap_lowest0(struct rly_wire_gap *g) { memset(&g->lowest, 0, 8); }
static void gap_reserved(struct rly_wire_gap *g) { g->reserved[0] = 1; }

Test(wire, gap_fields_are_checked)
{
	gap_case(gap_reason0, RLY_WIRE_ERR_BAD_FIELD, "reason 0");
	gap_case(gap_reason6, RLY_WIRE_ERR_BAD_FIELD, "reason past the list");
	gap_case(gap_from0, RLY_WIRE_ERR_BAD_FIELD, "from 0");
	gap_case(gap_to_below, RLY_WIRE_ERR_BAD_FIELD, "to below from");
	gap_case(gap_req0, RLY_WIRE_ERR_BAD_FIELD, "request id 0");
	gap_case(gap_pub0, RLY_WIRE_ERR_BAD_FIELD, "no publisher");
	gap_case(gap_lowest0, RLY_WIRE_ERR_OK, "lowest 0: nothing held");
	gap_case(gap_reserved, RLY_WIRE_ERR_RESERVED_NONZERO, "reserved byte");
}
