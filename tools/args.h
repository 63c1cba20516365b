/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Option parsing shared by relay-pub, relay-sub and relay-stat. Every refusal prints one line
 * that names the option, what was wrong and how to fix it, and the tools exit with status 2.
 */
#ifndef RLY_TOOLS_ARGS_H
#define RLY_TOOLS_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "relay/wire.h"

/* Print "<prog>: <message> (see <prog> --help)" to stderr; returns 2, the bad-arguments status. */
int tool_bad_arg(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What getopt_long (optstring starting with ':') returned for an unknown option or a missing
 * value, as a message; returns 2. */
int tool_getopt_error(const char *prog, int c, char **argv);

/* Parse a whole decimal number in [min, max]; on error print why and return -1. */
int tool_parse_u64(const char *prog, const char *opt, const char *s, uint64_t min, uint64_t max,
		   uint64_t *out);
/* Parse a number (fractions allowed) in [min, max]; on error print why and return -1. */
int tool_parse_double(const char *prog, const char *opt, const char *s, double min, double max,
		      double *out);

/* --canary TEXT: 1 to 256 characters into @p out / @p len; on error print why and return -1. */
int tool_parse_canary(const char *prog, const char *s, const char **out, size_t *len);

/* Stream key from --stream NAME (@p is_hex 0) or --stream-key HEX; on error print, return -1.
 * (tools/stream_arg.c: needs librelay-client.) */
int tool_stream_key(const char *prog, int is_hex, const char *arg, uint8_t key[RLY_STREAM_KEY_LEN]);

/* The options relay-pub and relay-sub share: which relay, which stream, from where. */
struct tool_target {
	const char *relay;
	const char *bind;
	uint8_t key[RLY_STREAM_KEY_LEN];
	int have_key;
	uint32_t partition;
};

/* getopt_long values of the shared options, and their table entries (long_options rows). */
enum { TOOL_O_RELAY = 200, TOOL_O_STREAM, TOOL_O_KEY, TOOL_O_PART, TOOL_O_BIND };
#define TOOL_TARGET_LONG_OPTIONS                                                                   \
	{"relay", required_argument, NULL, TOOL_O_RELAY},                                          \
	    {"stream", required_argument, NULL, TOOL_O_STREAM},                                    \
	    {"stream-key", required_argument, NULL, TOOL_O_KEY},                                   \
	    {"partition", required_argument, NULL, TOOL_O_PART},                                   \
	    {"bind", required_argument, NULL, TOOL_O_BIND}

/* Apply getopt's @p c if it is a shared option: 1 done, 0 not one of them, -1 refused (printed).
 * (tools/stream_arg.c: needs librelay-client.) */
int tool_target_option(const char *prog, struct tool_target *t, int c, const char *arg);
/* After parsing: the relay and the stream were given. 0, or 2 with the message printed. */
int tool_target_check(const char *prog, const struct tool_target *t);

/* Route SIGINT and SIGTERM to @p fn without SA_RESTART, so blocking calls return early. */
void tool_on_signals(void (*fn)(int));

#endif
