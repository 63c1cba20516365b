/* SPDX-License-Identifier: Apache-2.0 */
#include "tools/args.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tool_bad_arg(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see %s --help)\n", prog);
	return 2;
}

int tool_getopt_error(const char *prog, int c, char **argv)
{
	extern int optind;
	const char *arg = argv[optind - 1];

	if (c == ':')
		return tool_bad_arg(prog, "option %s needs a value", arg);
	return tool_bad_arg(prog, "unknown option '%s'", arg);
}

int tool_parse_u64(const char *prog, const char *opt, const char *s, uint64_t min, uint64_t max,
		   uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || strchr(s, '-') != NULL || v < min ||
	    v > max) {
		tool_bad_arg(prog, "%s '%s': expected a whole number from %llu to %llu", opt, s,
			     (unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

int tool_parse_canary(const char *prog, const char *s, const char **out, size_t *len)
{
	size_t n = strlen(s);

	if (n == 0 || n > 256) {
		tool_bad_arg(prog, "--canary: give 1 to 256 characters, not %zu", n);
		return -1;
	}
	*out = s;
	*len = n;
	return 0;
}

int tool_parse_double(const char *prog, const char *opt, const char *s, double min, double max,
		      double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (*s == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < min || v > max) {
		tool_bad_arg(prog, "%s '%s': expected a number from %g to %g", opt, s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

void tool_on_signals(void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}
