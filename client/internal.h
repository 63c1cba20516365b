/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the files of librelay-client share with each other and with nobody else. These names are
 * not exported from the shared library (client/exports.map keeps them local).
 */
#ifndef RLY_CLIENT_INTERNAL_H
#define RLY_CLIENT_INTERNAL_H

#include <netinet/in.h>
#include <stdint.h>

#include "relay/client.h"

/* "a.b.c.d:port" plus NUL. */
#define CLIENT_ADDR_STRLEN 24

/* sodium_init once; -EIO with a message if libsodium cannot start. */
int client_sodium_init(void);

/* Random values that are never 0 (0 means "none" in chain and request_id fields). */
uint32_t client_random_u32_nonzero(void);
uint64_t client_random_u64_nonzero(void);

/*
 * Open a non-blocking UDP socket, bind it to @p bind when given, and connect it to @p relay
 * (default port RLY_WIRE_DEFAULT_PORT), so the kernel accepts datagrams from the relay only.
 * @p bufopt is SO_SNDBUF or SO_RCVBUF and @p bufsize its size (0: leave the default).
 * Returns the fd, or -errno with a message.
 */
int client_udp_open(const char *relay, const char *bind, int bufopt, int bufsize,
		    struct sockaddr_in *peer);

/* Format an IPv4 address and port as "a.b.c.d:port". */
const char *client_addr_str(const struct sockaddr_in *a, char out[CLIENT_ADDR_STRLEN]);

#endif
