/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for the wire parser (common/wire.c). Built with clang -fsanitize=fuzzer as
 * fuzz_wire, and with the project's compiler and replay_main.c as fuzz_wire_replay, which runs the
 * committed corpus in the fast suite.
 *
 * Besides "never crash, never read outside the input" (libFuzzer hands over an exactly-sized heap
 * buffer, so AddressSanitizer sees a one-byte over-read), every verdict is compared with the
 * reference reading in wire_oracle.h, every accepted view is walked and checked, and every accepted
 * control datagram must be rebuilt byte for byte by rly_wire_build_control().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/wire.h"
#include "wire_oracle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const uint8_t *buf, size_t len, size_t max_len,
		 enum rly_wire_err got, enum rly_wire_err want)
{
	fprintf(stderr, "fuzz_wire: %s (len %zu, max_len %zu, parser %s, reference %s)\n", what, len,
		max_len, rly_wire_err_name(got), rly_wire_err_name(want));
	for (size_t i = 0; i < len && i < 128; i++)
		fprintf(stderr, "%02x%s", buf[i], (i % 32 == 31) ? "\n" : " ");
	fputc('\n', stderr);
	abort();
}

/* Read every byte the view says is ours, through the accessors a real consumer would use. */
static unsigned touch_view(const struct rly_wire_view *v)
{
	unsigned acc = 0;

	if (v->type == RLY_MSG_DATA) {
		size_t off = 0;
		const struct rly_wire_msg_hdr *h;
		while ((h = rly_wire_next_msg(v, &off)) != NULL) {
			const uint8_t *p = (const uint8_t *)h;
			acc += (unsigned)rly_be64_load(&h->seq) + rly_be32_load(&h->key_id) + h->ttl;
			for (size_t i = sizeof(*h); i < rly_wire_msg_size(h); i++)
				acc += p[i];
		}
	} else {
		for (size_t i = 0; i < v->body_len; i++)
			acc += v->body[i];
	}
	return acc;
}

static void check(const uint8_t *buf, size_t len, size_t max_len)
{
	struct rly_wire_view v;
	enum rly_wire_err e = rly_wire_parse(buf, len, max_len, &v);
	enum rly_wire_err want = wo_parse(buf, len, max_len);
	static volatile unsigned sink;

	if ((unsigned)e >= RLY_WIRE_ERR_MAX)
		fail("verdict out of range", buf, len, max_len, e, want);
	if (e != want)
		fail("parser and reference disagree", buf, len, max_len, e, want);
	if (e != RLY_WIRE_ERR_OK)
		return;

	const char *why = wo_check_view(buf, len, &v);
	if (why)
		fail(why, buf, len, max_len, e, want);
	sink += touch_view(&v);

	if (v.type != RLY_MSG_DATA) {
		uint8_t out[RLY_WIRE_MAX_DGRAM];
		int n = rly_wire_build_control(out, sizeof(out), v.type, v.body);
		if (n < 0 || (size_t)n != len || memcmp(out, buf, len) != 0)
			fail("rly_wire_build_control does not rebuild an accepted datagram", buf, len,
			     max_len, e, want);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[] = {0, 7, 8, 104, 512, 1472, RLY_WIRE_MAX_DGRAM, SIZE_MAX};

	for (size_t i = 0; i < sizeof(maxes) / sizeof(maxes[0]); i++)
		check(data, size, maxes[i]);

	/*
	 * The same bytes with an honest header: random mutations rarely keep magic, version and
	 * length right, and without them the fuzzer spends its time on the first three checks.
	 */
	if (size >= sizeof(struct rly_wire_dgram_hdr) && size <= 65535) {
		uint8_t *copy = malloc(size);
		if (!copy)
			return 0;
		memcpy(copy, data, size);
		rly_be16_store(copy, RLY_WIRE_MAGIC);
		copy[2] = RLY_WIRE_VERSION;
		rly_be16_store(copy + 4, (uint16_t)size);
		check(copy, size, RLY_WIRE_MAX_DGRAM);
		free(copy);
	}
	return 0;
}
