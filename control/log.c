/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "relay/shm.h"

static FILE *log_out;
static char log_instance[RLY_INSTANCE_MAX + 1];
static enum rly_ctl_log_level log_min = RLY_LOG_INFO;

static const char *const level_name[] = {"debug", "info", "warn", "error"};

void rly_ctl_log_open(FILE *out, const char *instance, enum rly_ctl_log_level level)
{
	log_out = out;
	snprintf(log_instance, sizeof(log_instance), "%s", instance ? instance : "");
	log_min = level;
}

int rly_ctl_log_level_parse(const char *s, enum rly_ctl_log_level *out)
{
	for (unsigned i = 0; i < sizeof(level_name) / sizeof(level_name[0]); i++) {
		if (strcmp(s, level_name[i]) == 0) {
			*out = (enum rly_ctl_log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

int rly_ctl_log_enabled(enum rly_ctl_log_level level)
{
	return level >= log_min;
}

/* Appends never overflow: a field that does not fit is cut, and the closing brace always has room
 * because the buffer keeps a few bytes in reserve for it. */
static void put(struct rly_ctl_logline *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(struct rly_ctl_logline *l, const char *fmt, ...)
{
	size_t cap = sizeof(l->buf) - 4;
	va_list ap;
	int n;

	if (l->len >= cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, cap - l->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	l->len += (size_t)n < cap - l->len ? (size_t)n : cap - l->len - 1;
}

static void put_escaped(struct rly_ctl_logline *l, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			put(l, "\\%c", c);
		else if (c < 0x20)
			put(l, "\\u%04x", c);
		else
			put(l, "%c", c);
	}
}

int rly_ctl_log_begin(struct rly_ctl_logline *l, enum rly_ctl_log_level level, const char *event)
{
	struct timespec ts;
	struct tm tm;

	l->len = 0;
	l->on = rly_ctl_log_enabled(level);
	if (!l->on)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	put(l, "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ\",\"level\":\"%s\",\"event\":\"",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000, level_name[level]);
	put_escaped(l, event);
	put(l, "\",\"instance\":\"");
	put_escaped(l, log_instance);
	put(l, "\"");
	return 1;
}

void rly_ctl_log_str(struct rly_ctl_logline *l, const char *key, const char *val)
{
	if (!l->on)
		return;
	put(l, ",\"%s\":\"", key);
	put_escaped(l, val ? val : "");
	put(l, "\"");
}

void rly_ctl_log_u64(struct rly_ctl_logline *l, const char *key, uint64_t val)
{
	if (l->on)
		put(l, ",\"%s\":%" PRIu64, key, val);
}

void rly_ctl_log_i64(struct rly_ctl_logline *l, const char *key, int64_t val)
{
	if (l->on)
		put(l, ",\"%s\":%" PRId64, key, val);
}

void rly_ctl_log_addr(struct rly_ctl_logline *l, const char *key, uint32_t ip_be, uint16_t port_be)
{
	char ip[INET_ADDRSTRLEN];
	struct in_addr a = {.s_addr = ip_be};

	if (!l->on)
		return;
	inet_ntop(AF_INET, &a, ip, sizeof(ip));
	put(l, ",\"%s\":\"%s:%u\"", key, ip, ntohs(port_be));
}

void rly_ctl_log_stream(struct rly_ctl_logline *l, const uint8_t key[RLY_STREAM_KEY_LEN],
			uint32_t partition)
{
	if (!l->on)
		return;
	put(l, ",\"stream\":\"");
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++)
		put(l, "%02x", key[i]);
	put(l, "\",\"partition\":%u", partition);
}

void rly_ctl_log_end(struct rly_ctl_logline *l)
{
	FILE *out = log_out ? log_out : stdout;

	if (!l->on)
		return;
	/* put() kept 4 bytes free for this. */
	l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
	fwrite(l->buf, 1, l->len, out);
	fflush(out);
}

void rly_ctl_log_msg(enum rly_ctl_log_level level, const char *event, const char *msg)
{
	struct rly_ctl_logline l;

	if (!rly_ctl_log_begin(&l, level, event))
		return;
	rly_ctl_log_str(&l, "msg", msg);
	rly_ctl_log_end(&l);
}
