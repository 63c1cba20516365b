/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The small pieces both halves of the client need: error text, stream keys, identities,
 * addresses and the socket set-up.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "client/internal.h"
#include "common/err.h"
#include "common/hex.h"

const char *rly_client_errmsg(void)
{
	return rly_err_msg();
}

int client_sodium_init(void)
{
	/* sodium_init is idempotent and thread-safe: 1 means it had already run. */
	if (sodium_init() < 0)
		return rly_err_set(EIO, "libsodium failed to initialise");
	return 0;
}

uint32_t client_random_u32_nonzero(void)
{
	uint32_t v;

	do
		v = randombytes_random();
	while (v == 0);
	return v;
}

uint64_t client_random_u64_nonzero(void)
{
	uint64_t v;

	do
		randombytes_buf(&v, sizeof(v));
	while (v == 0);
	return v;
}

void rly_stream_key_from_name(const char *name, uint8_t key[RLY_STREAM_KEY_LEN])
{
	/* Hashing needs no randomness, but sodium_init picks the fastest BLAKE2b for this CPU. */
	(void)client_sodium_init();
	crypto_generichash(key, RLY_STREAM_KEY_LEN, (const unsigned char *)name, strlen(name), NULL,
			   0);
}

int rly_stream_key_parse_hex(const char *hex, uint8_t key[RLY_STREAM_KEY_LEN])
{
	uint8_t tmp[RLY_STREAM_KEY_LEN];

	if (hex == NULL || strlen(hex) != 2 * RLY_STREAM_KEY_LEN)
		return rly_err_set(EINVAL, "stream key '%s' must be exactly %u hex digits",
				   hex ? hex : "", 2 * RLY_STREAM_KEY_LEN);
	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++) {
		int hi = rly_hex_digit(hex[2 * i]), lo = rly_hex_digit(hex[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return rly_err_set(EINVAL, "stream key '%s': '%c%c' is not hex", hex,
					   hex[2 * i], hex[2 * i + 1]);
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(key, tmp, sizeof(tmp));
	return 0;
}

void rly_stream_key_format(const uint8_t key[RLY_STREAM_KEY_LEN],
			   char out[2 * RLY_STREAM_KEY_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (unsigned i = 0; i < RLY_STREAM_KEY_LEN; i++) {
		out[2 * i] = digits[key[i] >> 4];
		out[2 * i + 1] = digits[key[i] & 0xf];
	}
	out[2 * RLY_STREAM_KEY_LEN] = '\0';
}

int rly_identity_generate(struct rly_identity *id)
{
	int rc = client_sodium_init();

	if (rc < 0)
		return rc;
	if (crypto_sign_keypair(id->pk, id->sk) != 0)
		return rly_err_set(EIO, "crypto_sign_keypair failed");
	return 0;
}

int rly_parse_addr(const char *s, uint16_t default_port, uint32_t *ip_be, uint16_t *port_be)
{
	char host[INET_ADDRSTRLEN];
	const char *colon;
	struct in_addr a;
	unsigned long port = default_port;
	size_t hlen;

	if (s == NULL || *s == '\0')
		return rly_err_set(EINVAL, "empty address: expected a.b.c.d or a.b.c.d:port");
	colon = strchr(s, ':');
	hlen = colon ? (size_t)(colon - s) : strlen(s);
	if (hlen == 0 || hlen >= sizeof(host))
		return rly_err_set(EINVAL, "address '%s': expected a.b.c.d or a.b.c.d:port", s);
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (inet_pton(AF_INET, host, &a) != 1)
		return rly_err_set(EINVAL, "address '%s': '%s' is not an IPv4 address a.b.c.d", s,
				   host);
	if (colon) {
		char *end;
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (colon[1] == '\0' || *end != '\0' || errno != 0 || port > 65535 ||
		    colon[1] == '-' || colon[1] == '+')
			return rly_err_set(EINVAL, "address '%s': port must be a number 0-65535",
					   s);
	}
	*ip_be = a.s_addr;
	*port_be = htons((uint16_t)port);
	return 0;
}

const char *client_addr_str(const struct sockaddr_in *a, char out[CLIENT_ADDR_STRLEN])
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(out, CLIENT_ADDR_STRLEN, "%s:%u", ip, ntohs(a->sin_port));
	return out;
}

static int to_sockaddr(const char *s, uint16_t default_port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	return rly_parse_addr(s, default_port, &sa->sin_addr.s_addr, &sa->sin_port);
}

static void set_buffer(int fd, int opt, int size)
{
	int got = 0;
	socklen_t len = sizeof(got);

	if (size <= 0)
		return;
	setsockopt(fd, SOL_SOCKET, opt, &size, sizeof(size));
	/* The kernel caps SO_*BUF at net.core.*mem_max; root may go past it with the FORCE
	 * variant. The kernel reports double the usable size, hence the comparison with 2 * size.
	 */
	if (getsockopt(fd, SOL_SOCKET, opt, &got, &len) == 0 && got < 2 * size)
		setsockopt(fd, SOL_SOCKET, opt == SO_RCVBUF ? SO_RCVBUFFORCE : SO_SNDBUFFORCE,
			   &size, sizeof(size));
}

int client_udp_open(const char *relay, const char *bind_addr, int bufopt, int bufsize,
		    struct sockaddr_in *peer)
{
	struct sockaddr_in local;
	int fd, rc;

	rc = to_sockaddr(relay, RLY_WIRE_DEFAULT_PORT, peer);
	if (rc < 0)
		return rly_err_wrap("relay");
	if (peer->sin_port == 0 || peer->sin_addr.s_addr == htonl(INADDR_ANY))
		return rly_err_set(EINVAL, "relay '%s': needs a real address and a nonzero port",
				   relay);
	if (bind_addr) {
		rc = to_sockaddr(bind_addr, 0, &local);
		if (rc < 0)
			return rly_err_wrap("bind");
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rly_err_set(errno, "socket: %s", strerror(errno));
	set_buffer(fd, bufopt, bufsize);
	if (bind_addr && bind(fd, (const struct sockaddr *)&local, sizeof(local)) < 0) {
		rc = rly_err_set(errno, "bind %s: %s", bind_addr, strerror(errno));
		goto fail;
	}
	if (connect(fd, (const struct sockaddr *)peer, sizeof(*peer)) < 0) {
		rc = rly_err_set(errno, "connect %s: %s", relay, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return rc;
}
