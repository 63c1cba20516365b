/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The persistent secret behind cookies and tokens: 32 random bytes in a file of mode 0600, so that
 * a restarted relay-control recognises the cookies and tokens its predecessor handed out.
 */
#ifndef RLY_CONTROL_SECRET_H
#define RLY_CONTROL_SECRET_H

#include <stdint.h>

#define RLY_CTL_SECRET_LEN 32u

/** Default path of an instance's secret: /run/relay/<instance>.secret. */
#define RLY_CTL_SECRET_DIR "/run/relay"

/**
 * Read the secret at @p path, creating it (and its directory, mode 0700) with fresh random bytes
 * when missing. Refuses a file that group or others may access, that is not a regular file, or
 * that does not hold exactly 32 bytes. 0 or -errno with a message (common/err.h).
 * *@p created is set to 1 when a new secret was written.
 */
int rly_ctl_secret_load(const char *path, uint8_t out[RLY_CTL_SECRET_LEN], int *created);

#endif
