/* SPDX-License-Identifier: Apache-2.0 */
#include "secret.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"

/* Only the last path component's directory is created: a missing /run is a broken system, not
 * something to paper over. */
static int make_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return rly_err_set(ENAMETOOLONG, "secret file path '%s' is too long", path);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return rly_err_set(errno, "create directory %s for the secret file: %s", dir,
				   strerror(errno));
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Written under a temporary name and renamed, so a crash never leaves a short secret that the
 * next start would refuse, and two starts racing both end up reading the same 32 bytes. */
static int create_secret(const char *path)
{
	char tmp[PATH_MAX];
	uint8_t key[RLY_CTL_SECRET_LEN];
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof(tmp))
		return rly_err_set(ENAMETOOLONG, "secret file path '%s' is too long", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return rly_err_set(errno, "create secret file %s: %s", tmp, strerror(errno));
	randombytes_buf(key, sizeof(key));
	if (write_all(fd, key, sizeof(key)) < 0 || fsync(fd) < 0) {
		rc = rly_err_set(errno ? errno : EIO, "write secret file %s: %s", tmp,
				 strerror(errno));
		goto out;
	}
	/* link() instead of rename(): if another process created the file meanwhile, keep theirs.
	 */
	if (link(tmp, path) < 0 && errno != EEXIST)
		rc = rly_err_set(errno, "install secret file %s: %s", path, strerror(errno));
out:
	sodium_memzero(key, sizeof(key));
	close(fd);
	unlink(tmp);
	return rc;
}

int rly_ctl_secret_load(const char *path, uint8_t out[RLY_CTL_SECRET_LEN], int *created)
{
	struct stat st;
	ssize_t n;
	int fd, rc;

	*created = 0;
	if (sodium_init() < 0)
		return rly_err_set(EIO, "libsodium failed to initialise");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		if ((rc = make_parent_dir(path)) < 0 || (rc = create_secret(path)) < 0)
			return rc;
		*created = 1;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	}
	if (fd < 0)
		return rly_err_set(errno, "open secret file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		rc = rly_err_set(errno, "stat secret file %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = rly_err_set(EINVAL, "secret file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = rly_err_set(
		    EPERM,
		    "secret file %s has mode %04o: group or others can access it; "
		    "run chmod 600 %s (and replace the secret if others may have read it)",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if (st.st_size != RLY_CTL_SECRET_LEN) {
		rc = rly_err_set(
		    EINVAL,
		    "secret file %s holds %lld bytes, not %u: remove it to make a new one "
		    "(outstanding subscription tokens then become invalid)",
		    path, (long long)st.st_size, RLY_CTL_SECRET_LEN);
		goto out;
	}
	n = read(fd, out, RLY_CTL_SECRET_LEN);
	if (n != RLY_CTL_SECRET_LEN) {
		rc = rly_err_set(n < 0 ? errno : EIO, "read secret file %s: %s", path,
				 n < 0 ? strerror(errno) : "short read");
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}
