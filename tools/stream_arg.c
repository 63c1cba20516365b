/* SPDX-License-Identifier: Apache-2.0 */
/* Kept apart from args.c so relay-stat, which has no stream, does not link librelay-client. */
#include "tools/args.h"

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
