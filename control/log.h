/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Structured log of relay-control: one JSON object per line, flushed per line, e.g.
 *   {"ts":"2026-11-24T20:19:17.123456Z","level":"info","event":"attached","instance":"x",...}
 *
 * A line is built field by field into a fixed buffer and written in one fwrite, so lines from a
 * process never interleave. The logger is process-wide: relay-control has one output.
 */
#ifndef RLY_CONTROL_LOG_H
#define RLY_CONTROL_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "relay/wire.h"

enum rly_ctl_log_level {
	RLY_LOG_DEBUG = 0,
	RLY_LOG_INFO = 1,
	RLY_LOG_WARN = 2,
	RLY_LOG_ERROR = 3,
};

/** One line under construction. */
struct rly_ctl_logline {
	char buf[1024];
	size_t len;
	int on; /* 0: level filtered out, every call is a no-op */
};

/** Route the log to @p out (stdout when NULL) for @p instance, dropping lines below @p level. */
void rly_ctl_log_open(FILE *out, const char *instance, enum rly_ctl_log_level level);

/** Parse "debug", "info", "warn" or "error"; -EINVAL otherwise. */
int rly_ctl_log_level_parse(const char *s, enum rly_ctl_log_level *out);

/** 1 if lines of @p level are written. */
int rly_ctl_log_enabled(enum rly_ctl_log_level level);

/** Start a line with ts, level, event and instance. Returns 0 if the level is filtered out. */
int rly_ctl_log_begin(struct rly_ctl_logline *l, enum rly_ctl_log_level level, const char *event);
/** Add "key":"value" (escaped). */
void rly_ctl_log_str(struct rly_ctl_logline *l, const char *key, const char *val);
/** Add "key":<number>. */
void rly_ctl_log_u64(struct rly_ctl_logline *l, const char *key, uint64_t val);
void rly_ctl_log_i64(struct rly_ctl_logline *l, const char *key, int64_t val);
/** Add "src":"a.b.c.d:port" from network-order address and port. */
void rly_ctl_log_addr(struct rly_ctl_logline *l, const char *key, uint32_t ip_be, uint16_t port_be);
/** Add "stream":"<32 hex>" and "partition":<n>. */
void rly_ctl_log_stream(struct rly_ctl_logline *l, const uint8_t key[RLY_STREAM_KEY_LEN],
			uint32_t partition);
/** Close the object, write the line and flush. */
void rly_ctl_log_end(struct rly_ctl_logline *l);

/** A line with only a "msg" field, for warnings and errors. */
void rly_ctl_log_msg(enum rly_ctl_log_level level, const char *event, const char *msg);

#endif
