/* SPDX-License-Identifier: Apache-2.0 */
/* Kept apart from args.c so relay-stat, which has no stream, does not link librelay-client. */
#include "tools/args.h"

#include <getopt.h>
#include <stdio.h>

#include "relay/client.h"

int tool_stream_key(const char *prog, int is_hex, const char *arg, uint8_t key[RLY_STREAM_KEY_LEN])
{
	if (!is_hex) {
		if (*arg == '\0') {
			tool_bad_arg(prog, "--stream needs a non-empty name");
			return -1;
		}
		rly_stream_key_from_name(arg, key);
		return 0;
	}
	if (rly_stream_key_parse_hex(arg, key) < 0) {
		tool_bad_arg(prog, "--stream-key: %s", rly_client_errmsg());
		return -1;
	}
	return 0;
}

int tool_target_option(const char *prog, struct tool_target *t, int c, const char *arg)
{
	uint64_t v;

	switch (c) {
	case TOOL_O_RELAY:
		t->relay = arg;
		return 1;
	case TOOL_O_STREAM:
	case TOOL_O_KEY:
		if (t->have_key) {
			tool_bad_arg(prog, "give one of --stream and --stream-key");
			return -1;
		}
		if (tool_stream_key(prog, c == TOOL_O_KEY, arg, t->key) < 0)
			return -1;
		t->have_key = 1;
		return 1;
	case TOOL_O_PART:
		if (tool_parse_u64(prog, "--partition", arg, 0, UINT32_MAX, &v) < 0)
			return -1;
		t->partition = (uint32_t)v;
		return 1;
	case TOOL_O_BIND:
		t->bind = arg;
		return 1;
	default:
		return 0;
	}
}

int tool_target_check(const char *prog, const struct tool_target *t)
{
	if (t->relay == NULL)
		return tool_bad_arg(prog, "--relay ADDR[:PORT] is required");
	if (!t->have_key)
		return tool_bad_arg(prog, "give the stream: --stream NAME or --stream-key HEX");
	return 0;
}
