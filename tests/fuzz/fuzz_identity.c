/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for identity files (security/identity.c). The input is the file's content,
 * written to a memfd and loaded through its /proc/self/fd/N path:
 *  - with mode 0644 the load must always be refused with -EPERM, whatever the content (the
 *    permission check comes before anything is read);
 *  - with mode 0600 it must either be refused with -EINVAL and a message, or give a key pair whose
 *    secret key really belongs to its public key: it signs a message that verifies, converts to
 *    X25519, and saved again and reloaded it is the same identity.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "security/identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_identity: " __VA_ARGS__);                            \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static char saved[96];

static void check_identity(const struct rly_identity *id)
{
	struct rly_identity back;
	uint8_t sig[crypto_sign_BYTES], xpk[32], xsk[32];

	crypto_sign_detached(sig, NULL, (const uint8_t *)"m", 1, id->sk);
	CHECK(crypto_sign_verify_detached(sig, (const uint8_t *)"m", 1, id->pk) == 0,
	      "loaded secret key does not sign for its public key");
	CHECK(rly_identity_x25519(id, xpk, xsk) == 0, "x25519: %s", rly_err_msg());

	if (saved[0] == '\0')
		snprintf(saved, sizeof(saved), "/tmp/fuzz-identity-%d", (int)getpid());
	unlink(saved);
	CHECK(rly_identity_save(id, saved) == 0, "save: %s", rly_err_msg());
	CHECK(rly_identity_load(&back, saved) == 0, "reload: %s", rly_err_msg());
	CHECK(memcmp(&back, id, sizeof(back)) == 0, "reload differs");
	unlink(saved);
}

static int load_as(const uint8_t *data, size_t size, mode_t mode, struct rly_identity *id)
{
	char path[64];
	int fd, rc;

	fd = memfd_create("fuzz-identity", MFD_CLOEXEC);
	CHECK(fd >= 0, "memfd_create: %s", strerror(errno));
	CHECK(size == 0 || write(fd, data, size) == (ssize_t)size, "write");
	CHECK(fchmod(fd, mode) == 0, "fchmod: %s", strerror(errno));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rc = rly_identity_load(id, path);
	close(fd);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rly_identity id;
	int rc;

	if (size > 4096)
		return 0;
	rc = load_as(data, size, 0644, &id);
	CHECK(rc == -EPERM && strstr(rly_err_msg(), "chmod 600") != NULL, "0644 file gave %d: %s",
	      rc, rly_err_msg());

	rly_err_clear();
	rc = load_as(data, size, 0600, &id);
	if (rc == 0)
		check_identity(&id);
	else
		CHECK(rc == -EINVAL && rly_err_msg()[0] != '\0', "refusal %d: '%s'", rc,
		      rly_err_msg());
	return 0;
}
