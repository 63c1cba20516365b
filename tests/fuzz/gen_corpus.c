/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes the seed corpus of fuzz_wire: a valid datagram of every v1 type and shape, and one
 * near-valid datagram per refusal reason (each one byte or one field away from valid), so the
 * fuzzer starts past the header checks. Each file's verdict is checked as it is written.
 *
 *   gen_wire_corpus DIR     (the committed corpus lives in tests/fuzz/corpus/wire)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "wire_build.h"

#define HDR sizeof(struct rly_wire_dgram_hdr)
#define MSG sizeof(struct rly_wire_msg_hdr)

static const char *dir;
static unsigned written, wrong;

static void emit(const char *name, const uint8_t *buf, size_t len, enum rly_wire_err want)
{
	char path[4096];
	struct rly_wire_view v;
	enum rly_wire_err got = rly_wire_parse(buf, len, RLY_WIRE_MAX_DGRAM, &v);
	FILE *f;

	if (got != want) {
		fprintf(stderr, "%s: parser says %s, expected %s\n", name, rly_wire_err_name(got),
			rly_wire_err_name(want));
		wrong++;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(1);
	}
	written++;
}

static struct rly_wire_msg_hdr *msg0(uint8_t *buf)
{
	return (struct rly_wire_msg_hdr *)(buf + HDR);
}

static void emit_body(const char *name, unsigned type, const void *body, enum rly_wire_err want)
{
	uint8_t buf[4096];
	int len = rly_wire_build_control(buf, sizeof(buf), type, body);

	if (len < 0) {
		fprintf(stderr, "%s: cannot build type 0x%02x\n", name, type);
		exit(1);
	}
	emit(name, buf, (size_t)len, want);
}

/* The relay-to-relay kinds the ok_peer_* seeds above (one default kind per type) leave out. */
static void valid_peer(void)
{
	struct rly_wire_peer_hello h;
	struct rly_wire_peer_link l;
	struct rly_wire_peer_ihave ih;
	struct rly_wire_peer_discover d;

	wb_peer_hello_body(&h, RLY_PEER_HELLO);
	emit_body("ok_peer_hello_hello", RLY_MSG_PEER_HELLO, &h, RLY_WIRE_ERR_OK);
	wb_peer_hello_body(&h, RLY_PEER_CHALLENGE);
	emit_body("ok_peer_hello_challenge", RLY_MSG_PEER_HELLO, &h, RLY_WIRE_ERR_OK);
	wb_peer_hello_body(&h, RLY_PEER_WELCOME);
	emit_body("ok_peer_hello_welcome", RLY_MSG_PEER_HELLO, &h, RLY_WIRE_ERR_OK);
	wb_peer_hello_body(&h, RLY_PEER_PING);
	emit_body("ok_peer_hello_ping", RLY_MSG_PEER_HELLO, &h, RLY_WIRE_ERR_OK);
	wb_peer_link_body(&l, RLY_LINK_REFUSE);
	emit_body("ok_peer_join_refuse", RLY_MSG_PEER_JOIN, &l, RLY_WIRE_ERR_OK);
	wb_peer_link_body(&l, RLY_LINK_LEAVE);
	emit_body("ok_peer_prune_leave", RLY_MSG_PEER_PRUNE, &l, RLY_WIRE_ERR_OK);
	wb_peer_ihave_body(&ih, 0);
	emit_body("ok_peer_ihave_empty", RLY_MSG_PEER_IHAVE, &ih, RLY_WIRE_ERR_OK);
	wb_peer_ihave_body(&ih, RLY_IHAVE_MAX);
	emit_body("ok_peer_ihave_full", RLY_MSG_PEER_IHAVE, &ih, RLY_WIRE_ERR_OK);
	wb_peer_discover_body(&d, RLY_DISC_LOOKUP);
	emit_body("ok_peer_discover_lookup", RLY_MSG_PEER_DISCOVER, &d, RLY_WIRE_ERR_OK);
	wb_peer_discover_body(&d, RLY_DISC_RESULT);
	emit_body("ok_peer_discover_result", RLY_MSG_PEER_DISCOVER, &d, RLY_WIRE_ERR_OK);
	memset(&d.rec, 0, sizeof(d.rec));
	emit_body("ok_peer_discover_result_none", RLY_MSG_PEER_DISCOVER, &d, RLY_WIRE_ERR_OK);
}

/* One field or byte away from valid, for each rule of section 9 the others do not reach. */
static void near_valid_peer(void)
{
	struct rly_wire_peer_hello h;
	struct rly_wire_peer_link l;
	struct rly_wire_peer_ihave ih;
	struct rly_wire_peer_iwant w;
	struct rly_wire_peer_discover d;

	wb_peer_hello_body(&h, RLY_PEER_CHALLENGE);
	h.sig[63] = 1;
	emit_body("bad_field_peer_hello_challenge_signed", RLY_MSG_PEER_HELLO, &h,
		  RLY_WIRE_ERR_BAD_FIELD);
	wb_peer_hello_body(&h, RLY_PEER_PONG);
	h.reserved2[0] = 1;
	emit_body("bad_reserved_nonzero_peer_hello", RLY_MSG_PEER_HELLO, &h,
		  RLY_WIRE_ERR_RESERVED_NONZERO);
	wb_peer_link_body(&l, RLY_LINK_PRUNE);
	emit_body("bad_field_peer_join_with_prune_kind", RLY_MSG_PEER_JOIN, &l,
		  RLY_WIRE_ERR_BAD_FIELD);
	wb_peer_ihave_body(&ih, 2);
	rly_be64_store(&ih.e[5].highest, 1);
	emit_body("bad_reserved_nonzero_peer_ihave_unused_entry", RLY_MSG_PEER_IHAVE, &ih,
		  RLY_WIRE_ERR_RESERVED_NONZERO);
	wb_peer_ihave_body(&ih, RLY_IHAVE_MAX);
	ih.n = RLY_IHAVE_MAX + 1;
	emit_body("bad_field_peer_ihave_n_9", RLY_MSG_PEER_IHAVE, &ih, RLY_WIRE_ERR_BAD_FIELD);
	wb_peer_iwant_body(&w);
	rly_be64_store(&w.to_seq, 4);
	emit_body("bad_field_peer_iwant_to_below_from", RLY_MSG_PEER_IWANT, &w,
		  RLY_WIRE_ERR_BAD_FIELD);
	wb_peer_discover_body(&d, RLY_DISC_LOOKUP);
	d.rec.relay[0] = 1;
	emit_body("bad_field_peer_discover_lookup_with_relay", RLY_MSG_PEER_DISCOVER, &d,
		  RLY_WIRE_ERR_BAD_FIELD);
	wb_peer_discover_body(&d, RLY_DISC_ANNOUNCE);
	rly_be16_store(&d.rec.flags, 1);
	emit_body("bad_reserved_nonzero_peer_discover_record_flags", RLY_MSG_PEER_DISCOVER, &d,
		  RLY_WIRE_ERR_RESERVED_NONZERO);
}

/* Section 8: NAKs of one and eight ranges, a GAP of each reason, and one step away from each. */
static void repair(void)
{
	struct rly_wire_nak n;
	struct rly_wire_gap g;

	wb_nak_body(&n, 1);
	emit_body("ok_nak_one_range", RLY_MSG_NAK, &n, RLY_WIRE_ERR_OK);
	wb_nak_body(&n, RLY_NAK_RANGES);
	emit_body("ok_nak_eight_ranges", RLY_MSG_NAK, &n, RLY_WIRE_ERR_OK);
	rly_be64_store(&n.r[4].from_seq, rly_be64_load(&n.r[3].to_seq));
	emit_body("bad_field_nak_ranges_overlap", RLY_MSG_NAK, &n, RLY_WIRE_ERR_BAD_FIELD);
	wb_nak_body(&n, 2);
	rly_be64_store(&n.r[2].from_seq, 1);
	emit_body("bad_reserved_nonzero_nak_unused_range", RLY_MSG_NAK, &n,
		  RLY_WIRE_ERR_RESERVED_NONZERO);
	for (unsigned r = 1; r <= RLY_GAP_REASON_MAX; r++) {
		char name[64];
		wb_gap_body(&g, r);
		snprintf(name, sizeof(name), "ok_gap_%u", r);
		emit_body(name, RLY_MSG_GAP, &g, RLY_WIRE_ERR_OK);
	}
	g.reason = RLY_GAP_REASON_MAX + 1;
	emit_body("bad_field_gap_reason", RLY_MSG_GAP, &g, RLY_WIRE_ERR_BAD_FIELD);
}

static void valid(void)
{
	uint8_t buf[4096];
	uint16_t pl[20] = {0};
	size_t len;

	emit("ok_data_1msg", buf, wb_data1(buf, 16), RLY_WIRE_ERR_OK);
	emit("ok_data_empty_payload", buf, wb_data1(buf, 0), RLY_WIRE_ERR_OK);
	pl[0] = 40;
	emit("ok_data_signed", buf, wb_data(buf, 1, 7, pl, 1, 0), RLY_WIRE_ERR_OK);
	emit("ok_data_encrypted", buf, wb_data(buf, 1, 7, pl, 0, 12), RLY_WIRE_ERR_OK);
	emit("ok_data_signed_encrypted", buf, wb_data(buf, 1, 7, pl, 1, 12), RLY_WIRE_ERR_OK);
	for (unsigned i = 0; i < 5; i++)
		pl[i] = (uint16_t)(i * 9);
	emit("ok_data_5msgs_signed", buf, wb_data(buf, 5, 100, pl, 1, 0), RLY_WIRE_ERR_OK);
	memset(pl, 0, sizeof(pl));
	pl[19] = 44;
	emit("ok_data_20msgs_max_dgram", buf, wb_data(buf, 20, 1, pl, 0, 0), RLY_WIRE_ERR_OK);
	pl[0] = RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, RLY_WIRE_SIG_LEN);
	emit("ok_data_max_payload_signed", buf, wb_data(buf, 1, 1, pl, 1, 9), RLY_WIRE_ERR_OK);

	const unsigned types[] = {RLY_MSG_SUBSCRIBE, RLY_MSG_CHALLENGE, RLY_MSG_SUB_ACK,
				  RLY_MSG_UNSUBSCRIBE, RLY_MSG_UNSUB_ACK, RLY_MSG_HEARTBEAT,
				  RLY_MSG_HEARTBEAT_ACK, RLY_MSG_SUBSCRIBE_SIGNED,
				  RLY_MSG_KEY_REQUEST, RLY_MSG_KEY_RESPONSE, RLY_MSG_PEER_HELLO,
				  RLY_MSG_PEER_JOIN, RLY_MSG_PEER_PRUNE, RLY_MSG_PEER_IHAVE,
				  RLY_MSG_PEER_IWANT, RLY_MSG_PEER_DISCOVER, RLY_MSG_NAK,
				  RLY_MSG_GAP};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		char name[64];
		snprintf(name, sizeof(name), "ok_%s", rly_msg_type_name(types[i]));
		for (char *c = name; *c; c++)
			*c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
		len = (size_t)wb_control(buf, sizeof(buf), types[i]);
		emit(name, buf, len, RLY_WIRE_ERR_OK);
	}

	struct rly_wire_subscribe s;
	wb_subscribe_body(&s, 1);
	len = (size_t)rly_wire_build_control(buf, sizeof(buf), RLY_MSG_SUBSCRIBE, &s);
	emit("ok_subscribe_with_cookie", buf, len, RLY_WIRE_ERR_OK);
	struct rly_wire_ack a;
	wb_ack_body(&a, RLY_SUB_BAD_COOKIE);
	len = (size_t)rly_wire_build_control(buf, sizeof(buf), RLY_MSG_SUB_ACK, &a);
	emit("ok_sub_ack_bad_cookie", buf, len, RLY_WIRE_ERR_OK);
	struct rly_wire_key_response kr;
	wb_key_response_body(&kr, RLY_SUB_UNAVAILABLE);
	memset(kr.sig, 0, sizeof(kr.sig)); /* as a relay sends it */
	len = (size_t)rly_wire_build_control(buf, sizeof(buf), RLY_MSG_KEY_RESPONSE, &kr);
	emit("ok_key_response_unavailable", buf, len, RLY_WIRE_ERR_OK);
	wb_key_response_body(&kr, RLY_SUB_DENIED);
	rly_be32_store(&kr.key_id, 1);
	len = (size_t)rly_wire_build_control(buf, sizeof(buf), RLY_MSG_KEY_RESPONSE, &kr);
	emit("bad_field_key_response_refusal_with_key_id", buf, len, RLY_WIRE_ERR_BAD_FIELD);
	valid_peer();
	repair();
}

static void near_valid(void)
{
	uint8_t buf[4096];
	size_t len;

	len = wb_data1(buf, 4);
	emit("bad_truncated_header", buf, 5, RLY_WIRE_ERR_TRUNCATED_HEADER);
	buf[1] = 'Z';
	emit("bad_magic", buf, len, RLY_WIRE_ERR_BAD_MAGIC);
	buf[1] = 'Y';
	buf[2] = 2;
	emit("bad_version", buf, len, RLY_WIRE_ERR_BAD_VERSION);
	buf[2] = 1;
	wb_set_len(buf, len + 1);
	emit("bad_length_mismatch", buf, len, RLY_WIRE_ERR_LENGTH_MISMATCH);

	uint16_t big = RLY_WIRE_MAX_PAYLOAD(RLY_WIRE_MAX_DGRAM, 0) + 1;
	emit("bad_oversized", buf, wb_data(buf, 1, 1, &big, 0, 0), RLY_WIRE_ERR_OVERSIZED);

	len = (size_t)wb_control(buf, sizeof(buf), RLY_MSG_HEARTBEAT);
	buf[3] = 0x02;
	emit("bad_unknown_type", buf, len, RLY_WIRE_ERR_UNKNOWN_TYPE);
	buf[3] = RLY_MSG_NAK; /* reserved before section 8 defined it */
	emit("bad_body_size_nak_with_a_heartbeat_body", buf, len, RLY_WIRE_ERR_BAD_BODY_SIZE);
	buf[3] = RLY_MSG_RECEIPT;
	emit("bad_reserved_type_receipt", buf, len, RLY_WIRE_ERR_RESERVED_TYPE);
	buf[3] = RLY_MSG_PEER_HELLO; /* reserved before section 9 defined it */
	emit("bad_body_size_peer_hello_with_a_heartbeat_body", buf, len,
	     RLY_WIRE_ERR_BAD_BODY_SIZE);
	buf[3] = RLY_MSG_HEARTBEAT;
	wb_set_count(buf, 2);
	emit("bad_count_control", buf, len, RLY_WIRE_ERR_BAD_COUNT);
	wb_set_count(buf, 1);
	wb_set_len(buf, len - 1);
	emit("bad_body_size", buf, len - 1, RLY_WIRE_ERR_BAD_BODY_SIZE);

	len = wb_data(buf, 2, 1, NULL, 0, 0);
	wb_set_count(buf, 0);
	emit("bad_count_data_zero", buf, len, RLY_WIRE_ERR_BAD_COUNT);
	wb_set_count(buf, 3);
	emit("bad_truncated_message_count_too_big", buf, len, RLY_WIRE_ERR_TRUNCATED_MESSAGE);
	wb_set_count(buf, 1);
	emit("bad_trailing_bytes", buf, len, RLY_WIRE_ERR_TRAILING_BYTES);

	uint16_t pl = 30;
	len = wb_data(buf, 1, 1, &pl, 1, 0);
	wb_set_len(buf, len - 1);
	emit("bad_truncated_signature", buf, len - 1, RLY_WIRE_ERR_TRUNCATED_MESSAGE);
	wb_set_len(buf, len);
	rly_be16_store(&msg0(buf)->sig_len, 63);
	emit("bad_sig_len", buf, len, RLY_WIRE_ERR_BAD_SIG_LEN);
	rly_be16_store(&msg0(buf)->sig_len, 64);
	rly_be16_store(&msg0(buf)->flags, 0);
	emit("bad_flags_signature_without_flag", buf, len, RLY_WIRE_ERR_BAD_FLAGS);
	rly_be16_store(&msg0(buf)->flags, RLY_MSG_F_SIGNED | RLY_MSG_F_ENCRYPTED);
	emit("bad_flags_encrypted_without_key", buf, len, RLY_WIRE_ERR_BAD_FLAGS);
	rly_be16_store(&msg0(buf)->flags, RLY_MSG_F_SIGNED);
	msg0(buf)->reserved[2] = 1;
	emit("bad_reserved_nonzero_msg", buf, len, RLY_WIRE_ERR_RESERVED_NONZERO);
	msg0(buf)->reserved[2] = 0;
	rly_be64_store(&msg0(buf)->prev_seq, 1);
	emit("bad_sequence_prev_equals_seq", buf, len, RLY_WIRE_ERR_BAD_SEQUENCE);

	struct rly_wire_subscribe s;
	wb_subscribe_body(&s, 0);
	s.cookie[3] = 9;
	len = (size_t)rly_wire_build_control(buf, sizeof(buf), RLY_MSG_SUBSCRIBE, &s);
	emit("bad_field_subscribe_cookie_without_issued", buf, len, RLY_WIRE_ERR_BAD_FIELD);
	s.cookie[3] = 0;
	s.reserved[0] = 1;
	len = (size_t)rly_wire_build_control(buf, sizeof(buf), RLY_MSG_SUBSCRIBE, &s);
	emit("bad_reserved_nonzero_subscribe", buf, len, RLY_WIRE_ERR_RESERVED_NONZERO);

	struct rly_wire_ack a;
	wb_ack_body(&a, RLY_SUB_OK);
	rly_be16_store(&a.status, RLY_SUB_SLOW_CONSUMER + 1);
	len = (size_t)rly_wire_build_control(buf, sizeof(buf), RLY_MSG_HEARTBEAT_ACK, &a);
	emit("bad_field_ack_status", buf, len, RLY_WIRE_ERR_BAD_FIELD);
	near_valid_peer();
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		return 1;
	}
	valid();
	near_valid();
	printf("gen_wire_corpus: wrote %u files to %s, %u with an unexpected verdict\n", written, dir,
	       wrong);
	return wrong ? 1 : 0;
}
