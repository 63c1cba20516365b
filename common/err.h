/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Thread-local error context, after Aeron's AERON_SET_ERR / AERON_APPEND_ERR: the function that
 * detects a failure sets the message, each caller on the way up prepends what it was doing, and the
 * top level prints one line that says what failed and why ("attach relay 'x': shm_open
 * /relay.x: No such file or directory").
 */
#ifndef RLY_COMMON_ERR_H
#define RLY_COMMON_ERR_H

#include <errno.h>

/** Set the error (replacing any earlier one) and return -errnum, so callers can `return rly_err_set(...)`. */
int rly_err_set(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Prepend context to the current error ("<context>: <message>") and return the current -errnum. */
int rly_err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** The calling thread's current error message ("" if none). */
const char *rly_err_msg(void);
/** The calling thread's current errno value (positive), 0 if none. */
int rly_err_code(void);
/** Forget the current error. */
void rly_err_clear(void);

#endif
