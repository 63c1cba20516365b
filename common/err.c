/* SPDX-License-Identifier: Apache-2.0 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERR_MSG_MAX 1024

static __thread char err_msg[ERR_MSG_MAX];
static __thread int err_code;

int rly_err_set(int errnum, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err_msg, sizeof(err_msg), fmt, ap);
	va_end(ap);
	err_code = errnum > 0 ? errnum : -errnum;
	return -err_code;
}

int rly_err_wrap(const char *fmt, ...)
{
	char prefix[ERR_MSG_MAX], old[ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err_msg, sizeof(old));
	snprintf(err_msg, sizeof(err_msg), "%.500s: %.500s", prefix, old);
	return -err_code;
}

const char *rly_err_msg(void)
{
	return err_msg;
}

int rly_err_code(void)
{
	return err_code;
}

void rly_err_clear(void)
{
	err_msg[0] = '\0';
	err_code = 0;
}
