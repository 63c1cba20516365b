/* SPDX-License-Identifier: Apache-2.0 */
/* Running the tools as processes from Criterion tests, and picking lines out of their output. */
#ifndef RLY_TEST_CLIENT_PROC_H
#define RLY_TEST_CLIENT_PROC_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

/* popen the command (stderr merged into stdout) for reading. */
static inline FILE *tc_spawn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline FILE *tc_spawn(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	f = popen(cmd, "r");
	cr_assert_not_null(f, "popen %s", cmd);
	return f;
}

/* Read what is left of @p f into @p out, close it, and return the command's exit status. */
static inline int tc_finish(FILE *f, char *out, size_t cap)
{
	size_t n = 0, r;
	int status;

	while (n + 1 < cap && (r = fread(out + n, 1, cap - 1 - n, f)) > 0)
		n += r;
	out[n] = '\0';
	status = pclose(f);
	cr_assert(WIFEXITED(status), "command did not exit normally");
	return WEXITSTATUS(status);
}

/* The first line of @p s at or after @p from that starts with @p prefix, or NULL. */
static inline const char *tc_line_starting(const char *s, const char *prefix)
{
	for (const char *p = s; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return p;
	return NULL;
}

#endif
