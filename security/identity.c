/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identity files (format in identity.h). The file holds a secret key, so loading refuses anything
 * that is not exactly the format, and refuses a file others could read: once a secret key has been
 * readable by others it is no longer secret, and silently using it would hide that.
 */
#include "security/identity.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "common/hex.h"
#include "security/sodium_ready.h"

#define ID_HEADER "relay-identity v1"
#define ID_PUBLIC "public "
#define ID_SECRET "secret "
/* Header, two labelled hex lines and their newlines: 18 + 72 + 136 = 226 bytes. */
#define ID_FILE_LEN                                                                                \
	(sizeof(ID_HEADER) + sizeof(ID_PUBLIC) + 2 * RLY_ID_LEN + sizeof(ID_SECRET) + 128)
/* Room to notice that a file is longer than an identity file can be. */
#define ID_READ_MAX 512

void rly_pk_format(const uint8_t pk[RLY_ID_LEN], char out[2 * RLY_ID_LEN + 1])
{
	sodium_bin2hex(out, 2 * RLY_ID_LEN + 1, pk, RLY_ID_LEN);
}

int rly_pk_parse(const char *hex, uint8_t pk[RLY_ID_LEN])
{
	uint8_t tmp[RLY_ID_LEN];

	if (hex == NULL || strnlen(hex, 2 * RLY_ID_LEN + 1) != 2 * RLY_ID_LEN ||
	    rly_hex_decode(hex, tmp, RLY_ID_LEN) < 0)
		return rly_err_set(EINVAL, "public key '%.80s' must be exactly %u hex digits",
				   hex ? hex : "", 2 * RLY_ID_LEN);
	memcpy(pk, tmp, RLY_ID_LEN);
	return 0;
}

/*
 * The secret key is seed || public; re-deriving the pair from the seed catches a file whose public
 * line (or the public half of its secret) was edited, which would otherwise sign under a key that
 * nobody can verify.
 */
static int check_pair(const struct rly_identity *id)
{
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	int same;

	crypto_sign_seed_keypair(pk, sk, id->sk);
	same = sodium_memcmp(pk, id->pk, sizeof(pk)) == 0 &&
	       sodium_memcmp(sk, id->sk, sizeof(sk)) == 0;
	sodium_memzero(sk, sizeof(sk));
	return same ? 0 : -1;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* So that the new name survives a crash as well as the contents; failure here is not fatal. */
static void sync_parent_dir(const char *path)
{
	char copy[4096];
	int dfd;

	if (snprintf(copy, sizeof(copy), "%s", path) >= (int)sizeof(copy))
		return;
	dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
}

int rly_identity_save(const struct rly_identity *id, const char *path)
{
	char text[ID_FILE_LEN + 1], pk_hex[2 * RLY_ID_LEN + 1], sk_hex[2 * sizeof(id->sk) + 1];
	int fd, rc, len;

	if ((rc = rly_sodium_ready()) < 0)
		return rc;
	if (check_pair(id) < 0)
		return rly_err_set(
		    EINVAL, "identity %s: secret key does not belong to the public key", path);
	rly_pk_format(id->pk, pk_hex);
	sodium_bin2hex(sk_hex, sizeof(sk_hex), id->sk, sizeof(id->sk));
	len = snprintf(text, sizeof(text), ID_HEADER "\n" ID_PUBLIC "%s\n" ID_SECRET "%s\n", pk_hex,
		       sk_hex);
	sodium_memzero(sk_hex, sizeof(sk_hex));

	/* O_EXCL: an identity is never overwritten, since a lost secret key cannot be recovered. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = rly_err_set(errno, "create identity %s: %s%s", path, strerror(errno),
				 errno == EEXIST ? " (identities are never overwritten)" : "");
		goto out;
	}
	/* A umask cannot add bits, but a file system with odd defaults could; say it explicitly. */
	if (fchmod(fd, 0600) < 0 || (rc = write_all(fd, text, (size_t)len)) < 0 || fsync(fd) < 0) {
		rc = rly_err_set(rc < 0 ? -rc : errno, "write identity %s: %s", path,
				 strerror(rc < 0 ? -rc : errno));
		close(fd);
		unlink(path);
		goto out;
	}
	if (close(fd) < 0) {
		rc = rly_err_set(errno, "write identity %s: %s", path, strerror(errno));
		unlink(path);
		goto out;
	}
	sync_parent_dir(path);
	rc = 0;
out:
	sodium_memzero(text, sizeof(text));
	return rc;
}

/* Consume "<label><2n hex>\n" at *p; the last newline of the file may be missing. */
static int take_line(const char **p, const char *end, const char *label, uint8_t *out, size_t n)
{
	size_t ll = strlen(label);
	const char *s = *p;

	if ((size_t)(end - s) < ll + 2 * n || memcmp(s, label, ll) != 0)
		return -1;
	if (rly_hex_decode(s + ll, out, n) < 0)
		return -1;
	s += ll + 2 * n;
	if (s < end && *s++ != '\n')
		return -1;
	*p = s;
	return 0;
}

static int parse_identity(const char *text, size_t len, struct rly_identity *id, unsigned *line)
{
	const char *p = text, *end = text + len;
	size_t hl = strlen(ID_HEADER);

	*line = 1;
	if (len < hl + 1 || memcmp(p, ID_HEADER "\n", hl + 1) != 0)
		return -1;
	p += hl + 1;
	*line = 2;
	if (take_line(&p, end, ID_PUBLIC, id->pk, RLY_ID_LEN) < 0)
		return -1;
	*line = 3;
	if (take_line(&p, end, ID_SECRET, id->sk, sizeof(id->sk)) < 0)
		return -1;
	*line = 4;
	return p == end ? 0 : -1;
}

static const char *line_hint(unsigned line)
{
	switch (line) {
	case 1:
		return "expected \"" ID_HEADER "\"";
	case 2:
		return "expected \"public <64 hex digits>\"";
	case 3:
		return "expected \"secret <128 hex digits>\"";
	default:
		return "unexpected text after the secret key";
	}
}

int rly_identity_load(struct rly_identity *id, const char *path)
{
	char text[ID_READ_MAX];
	struct rly_identity tmp;
	struct stat st;
	size_t len = 0;
	unsigned line;
	int fd, rc;

	if ((rc = rly_sodium_ready()) < 0)
		return rc;
	/* No O_NOFOLLOW: a symlink to a private file is fine, and /proc/self/fd/N is one. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return rly_err_set(errno, "identity %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = rly_err_set(errno, "identity %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = rly_err_set(EINVAL, "identity %s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		rc =
		    rly_err_set(EPERM,
				"identity %s: mode %04o lets other users read the secret key; "
				"chmod 600 %s (and make a new identity if others may have read it)",
				path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, text + len, sizeof(text) - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = rly_err_set(errno, "identity %s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == sizeof(text)) {
			rc = rly_err_set(EINVAL,
					 "identity %s: longer than an identity file (%zu bytes)",
					 path, (size_t)ID_FILE_LEN);
			goto out;
		}
	}
	if (parse_identity(text, len, &tmp, &line) < 0) {
		rc = rly_err_set(EINVAL, "identity %s:%u: not an identity file: %s", path, line,
				 line_hint(line));
		goto out;
	}
	if (check_pair(&tmp) < 0) {
		rc = rly_err_set(
		    EINVAL,
		    "identity %s:3: the secret key does not belong to the public key on "
		    "line 2",
		    path);
		goto out;
	}
	*id = tmp;
	rc = 0;
out:
	sodium_memzero(text, sizeof(text));
	sodium_memzero(&tmp, sizeof(tmp));
	close(fd);
	return rc;
}

int rly_identity_x25519(const struct rly_identity *id, uint8_t pk[32], uint8_t *sk)
{
	if (rly_sodium_ready() < 0)
		return -EIO;
	/* Fails for keys of small order or off the curve, which no generated identity has. */
	if (crypto_sign_ed25519_pk_to_curve25519(pk, id->pk) != 0)
		return rly_err_set(EINVAL, "public key is not a valid Ed25519 point");
	if (sk != NULL && crypto_sign_ed25519_sk_to_curve25519(sk, id->sk) != 0)
		return rly_err_set(EINVAL, "secret key cannot be converted to X25519");
	return 0;
}
