/* SPDX-License-Identifier: Apache-2.0 */
/* libsodium initialised before first use, with one error message (security/ internal). */
#ifndef RLY_SECURITY_SODIUM_READY_H
#define RLY_SECURITY_SODIUM_READY_H

#include <errno.h>

#include <sodium.h>

#include "common/err.h"

/* 0, or -EIO (message set). Idempotent and thread-safe; sodium_init also picks the fastest
 * implementations for this CPU. */
static inline int rly_sodium_ready(void)
{
	if (sodium_init() < 0)
		return rly_err_set(EIO, "libsodium failed to initialise");
	return 0;
}

#endif
