/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Strings of every X-macro list in include/relay/ (common/names.c): what relay-stat, logs and
 * metrics print. The expectations are rebuilt here from the same X-macro lists, so a name that is
 * missing, truncated or duplicated fails, and so does an id that moved.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <string.h>

#include "relay/counters.h"
#include "relay/shm.h"
#include "relay/wire.h"

static const char *const counter_ids[] = {
#define X(id, kind, desc) #id,
	RLY_FOREACH_COUNTER(X)
#undef X
};

Test(names, every_counter_has_its_id_in_lower_case_and_a_description)
{
	cr_assert_eq(sizeof(counter_ids) / sizeof(counter_ids[0]), RLY_CTR_MAX);
	for (unsigned id = 0; id < RLY_CTR_MAX; id++) {
		const char *name = rly_ctr_name(id), *desc = rly_ctr_desc(id);
		char want[64];
		size_t i;

		for (i = 0; counter_ids[id][i] && i + 1 < sizeof(want); i++)
			want[i] = (char)tolower((unsigned char)counter_ids[id][i]);
		want[i] = '\0';
		cr_assert_not_null(name, "counter %u", id);
		cr_expect_str_eq(name, want, "counter %u: '%s' is not '%s' (truncated?)", id, name, want);
		for (const char *c = name; *c; c++)
			cr_expect(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_',
				  "counter name '%s' has '%c'", name, *c);
		cr_assert_not_null(desc, "counter %s", name);
		cr_expect_gt(strlen(desc), 5, "counter %s: description '%s'", name, desc);
		cr_expect(rly_ctr_kind(id) == RLY_CTR_KIND_COUNT || rly_ctr_kind(id) == RLY_CTR_KIND_GAUGE);
	}
	/* The same pointer comes back on every call: callers may keep it. */
	cr_assert_eq(rly_ctr_name(RLY_CTR_RX_PKTS), rly_ctr_name(RLY_CTR_RX_PKTS));
	cr_assert_str_eq(rly_ctr_name(RLY_CTR_RX_PKTS), "rx_pkts");
	cr_assert_str_eq(rly_ctr_name(RLY_CTR_DROP_WIRE), "drop_wire");
}

Test(names, counter_kinds_mark_levels_as_gauges)
{
	cr_assert_eq(rly_ctr_kind(RLY_CTR_STREAMS), RLY_CTR_KIND_GAUGE);
	cr_assert_eq(rly_ctr_kind(RLY_CTR_SUBSCRIBERS), RLY_CTR_KIND_GAUGE);
	cr_assert_eq(rly_ctr_kind(RLY_CTR_RX_PKTS), RLY_CTR_KIND_COUNT);
	cr_assert_eq(rly_ctr_kind(RLY_CTR_DELIVERIES), RLY_CTR_KIND_COUNT);
}

Test(names, unknown_counter_ids_have_no_name)
{
	cr_assert_null(rly_ctr_name(RLY_CTR_MAX));
	cr_assert_null(rly_ctr_name(RLY_CTR_WIRE_BASE));
	cr_assert_null(rly_ctr_name(~0u));
	cr_assert_null(rly_ctr_desc(RLY_CTR_MAX));
	cr_assert_eq(rly_ctr_kind(RLY_CTR_MAX), RLY_CTR_KIND_COUNT);
}

Test(names, counter_names_are_unique)
{
	for (unsigned a = 0; a < RLY_CTR_MAX; a++)
		for (unsigned b = a + 1; b < RLY_CTR_MAX; b++)
			cr_expect_str_neq(rly_ctr_name(a), rly_ctr_name(b), "ids %u and %u", a, b);
}

Test(names, wire_error_slots_do_not_overlap_counter_ids)
{
	cr_assert_leq(RLY_CTR_MAX, RLY_CTR_WIRE_BASE);
	cr_assert_leq(RLY_CTR_WIRE_BASE + RLY_WIRE_ERR_MAX, RLY_CTR_SLOTS);
	cr_assert_eq(sizeof(struct rly_ctr_block), RLY_CTR_SLOTS * sizeof(uint64_t));
	/* Wire error e has slot RLY_CTR_WIRE_BASE + e: no counter id reaches any of them. */
	for (unsigned e = 0; e < RLY_WIRE_ERR_MAX; e++)
		cr_assert_null(rly_ctr_name(RLY_CTR_WIRE_BASE + e));
}

Test(names, every_wire_error_has_a_name_and_a_description)
{
	static const char *const names[] = {
#define X(name, desc) #name,
		RLY_FOREACH_WIRE_ERR(X)
#undef X
	};

	cr_assert_eq(sizeof(names) / sizeof(names[0]), RLY_WIRE_ERR_MAX);
	for (unsigned e = 0; e < RLY_WIRE_ERR_MAX; e++) {
		cr_assert_str_eq(rly_wire_err_name(e), names[e]);
		cr_expect_gt(strlen(rly_wire_err_str(e)), 5, "%s", names[e]);
		for (unsigned f = e + 1; f < RLY_WIRE_ERR_MAX; f++) {
			cr_expect_str_neq(rly_wire_err_name(e), rly_wire_err_name(f));
			cr_expect_str_neq(rly_wire_err_str(e), rly_wire_err_str(f));
		}
	}
	cr_assert_str_eq(rly_wire_err_name(RLY_WIRE_ERR_OK), "OK");
	cr_assert_str_eq(rly_wire_err_name(RLY_WIRE_ERR_TRUNCATED_HEADER), "TRUNCATED_HEADER");
	cr_assert_str_eq(rly_wire_err_name(RLY_WIRE_ERR_MAX), "UNKNOWN");
	cr_assert_str_eq(rly_wire_err_name((enum rly_wire_err)-1), "UNKNOWN");
	cr_assert_str_eq(rly_wire_err_str(RLY_WIRE_ERR_MAX), "unknown wire error");
}

Test(names, wire_error_ids_are_never_renumbered)
{
	/* Counter slots and logs depend on these values: appending is fine, moving is not. */
	cr_assert_eq(RLY_WIRE_ERR_OK, 0);
	cr_assert_eq(RLY_WIRE_ERR_TRUNCATED_HEADER, 1);
	cr_assert_eq(RLY_WIRE_ERR_BAD_MAGIC, 2);
	cr_assert_eq(RLY_WIRE_ERR_BAD_VERSION, 3);
	cr_assert_eq(RLY_WIRE_ERR_UNKNOWN_TYPE, 4);
	cr_assert_eq(RLY_WIRE_ERR_RESERVED_TYPE, 5);
	cr_assert_eq(RLY_WIRE_ERR_LENGTH_MISMATCH, 6);
	cr_assert_eq(RLY_WIRE_ERR_OVERSIZED, 7);
	cr_assert_eq(RLY_WIRE_ERR_BAD_COUNT, 8);
	cr_assert_eq(RLY_WIRE_ERR_TRUNCATED_MESSAGE, 9);
	cr_assert_eq(RLY_WIRE_ERR_TRAILING_BYTES, 10);
	cr_assert_eq(RLY_WIRE_ERR_BAD_SIG_LEN, 11);
	cr_assert_eq(RLY_WIRE_ERR_BAD_FLAGS, 12);
	cr_assert_eq(RLY_WIRE_ERR_RESERVED_NONZERO, 13);
	cr_assert_eq(RLY_WIRE_ERR_BAD_SEQUENCE, 14);
	cr_assert_eq(RLY_WIRE_ERR_BAD_BODY_SIZE, 15);
	cr_assert_eq(RLY_WIRE_ERR_BAD_FIELD, 16);
	cr_assert_geq(RLY_WIRE_ERR_MAX, 17);
}

Test(names, every_subscription_status_has_a_name_and_a_string)
{
	static const struct {
		unsigned value;
		const char *name;
	} all[] = {
#define X(name, value, desc) {value, #name},
		RLY_FOREACH_SUB_STATUS(X)
#undef X
	};
	const size_t n = sizeof(all) / sizeof(all[0]);

	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(rly_sub_status_name(all[i].value), all[i].name);
		cr_expect_str_neq(rly_sub_status_str(all[i].value), "unknown status", "%s", all[i].name);
		cr_expect_eq(all[i].value, i, "status values are dense from 0: %s", all[i].name);
	}
	cr_assert_str_eq(rly_sub_status_name(RLY_SUB_BAD_COOKIE), "BAD_COOKIE");
	cr_assert_str_eq(rly_sub_status_name(n), "UNKNOWN");
	cr_assert_str_eq(rly_sub_status_str(n), "unknown status");
	cr_assert_str_eq(rly_sub_status_str(0xFFFF), "unknown status");
}

Test(names, every_command_status_has_a_string)
{
	static const struct {
		unsigned value;
		const char *desc;
	} all[] = {
#define X(name, value, desc) {value, desc},
		RLY_FOREACH_CMD_STATUS(X)
#undef X
	};
	const size_t n = sizeof(all) / sizeof(all[0]);

	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(rly_cmd_status_str(all[i].value), all[i].desc);
		cr_expect_str_neq(all[i].desc, "unknown command status");
	}
	cr_assert_str_eq(rly_cmd_status_str(RLY_CMD_OK), "applied");
	cr_assert_str_eq(rly_cmd_status_str(1000), "unknown command status");
}

Test(names, every_defined_message_type_has_its_name_and_no_other_value_has_one)
{
	static const struct {
		unsigned value;
		const char *name;
	} all[] = {
#define X(name, value, body, dir, desc) {value, #name},
		RLY_FOREACH_MSG_TYPE(X)
#undef X
	};
	const size_t n = sizeof(all) / sizeof(all[0]);
	unsigned named = 0;

	for (size_t i = 0; i < n; i++) {
		cr_assert_str_eq(rly_msg_type_name(all[i].value), all[i].name);
		for (size_t j = i + 1; j < n; j++)
			cr_assert_neq(all[i].value, all[j].value, "%s and %s share a value", all[i].name,
				      all[j].name);
	}
	for (unsigned t = 0; t < 256; t++)
		named += rly_msg_type_name(t) != NULL;
	cr_assert_eq(named, n, "%u type values have names, %zu are defined", named, n);
	unsigned reserved = 0;
#define X(name, value, body, dir, desc) reserved += __builtin_strcmp(#body, "reserved") == 0;
	RLY_FOREACH_MSG_TYPE(X)
#undef X
	/* docs/wire-protocol.md section 3: RECEIPT and RECEIPT_ACK are reserved */
	cr_assert_eq(n, 21, "protocol v1 names 21 types");
	cr_assert_eq(reserved, 2, "%u reserved types: PEER_* (section 9), NAK and GAP (section 8) are defined",
		     reserved);
	cr_assert_str_eq(rly_msg_type_name(RLY_MSG_PEER_DISCOVER), "PEER_DISCOVER");
	cr_assert_str_eq(rly_msg_type_name(RLY_MSG_SUBSCRIBE), "SUBSCRIBE");
	cr_assert_str_eq(rly_msg_type_name(0x51), "RECEIPT_ACK");
	cr_assert_null(rly_msg_type_name(0x101));
}
