/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target for grant lines (security/grant.c) and the registry loader
 * (security/registry.c). The input is the text of a .grants file:
 *  - each line goes through rly_grant_parse_line; a line it accepts must mean something (a valid
 *    stream name with the right owner and key, known permissions, not-after after issued), must
 *    format back into a line no longer than the loader's 1024-byte limit, and that line must parse
 *    into the same grant and format to itself again. rly_grant_sig_ok must answer 0 or 1, and the
 *    grant signed afresh by a fixed key must verify, and fail with one signature bit flipped;
 *  - the whole input is then loaded as a registry directory of one file: the count of kept grants
 *    is bounded by the lines that parsed with a valid signature, every refused line is reported
 *    with a line number inside the file, and every kept grant is honoured by the queries.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "security/identity.h"
#include "security/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX_BYTES (64 * 1024)

static struct rly_identity signer;
static char dir[64], file[128];
static unsigned n_lines, n_warns;

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_grant: " __VA_ARGS__);                               \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void cleanup(void)
{
	unlink(file);
	rmdir(dir);
}

static void init_once(void)
{
	uint8_t seed[crypto_sign_SEEDBYTES] = {42};

	if (dir[0])
		return;
	CHECK(sodium_init() >= 0, "sodium_init");
	crypto_sign_seed_keypair(signer.pk, signer.sk, seed);
	snprintf(dir, sizeof(dir), "/tmp/fuzz-grant-%d", (int)getpid());
	CHECK(mkdir(dir, 0700) == 0 || errno == EEXIST, "mkdir %s", dir);
	snprintf(file, sizeof(file), "%s/input.grants", dir);
	atexit(cleanup);
}

static int same(const struct rly_grant *a, const struct rly_grant *b)
{
	return strcmp(a->stream, b->stream) == 0 &&
	       memcmp(a->stream_key, b->stream_key, sizeof(a->stream_key)) == 0 &&
	       memcmp(a->owner, b->owner, sizeof(a->owner)) == 0 &&
	       memcmp(a->grantee, b->grantee, sizeof(a->grantee)) == 0 && a->perms == b->perms &&
	       a->not_after == b->not_after && a->issued == b->issued &&
	       memcmp(a->issuer, b->issuer, sizeof(a->issuer)) == 0 &&
	       memcmp(a->sig, b->sig, sizeof(a->sig)) == 0;
}

/* Returns 1 if the line is a grant whose signature verifies. */
static int check_line(const char *line)
{
	struct rly_grant g, back;
	uint8_t owner[RLY_ID_LEN], key[RLY_STREAM_KEY_LEN], enc[512];
	char out[1100], again[1100];
	int rc, n, ok;

	rc = rly_grant_parse_line(line, &g);
	CHECK(rc == 1 || rc == 0 || rc == -EINVAL, "parse returned %d", rc);
	if (rc != 1)
		return 0;
	CHECK(rly_stream_name_parse(g.stream, owner, key) == 0, "accepted stream '%s'", g.stream);
	CHECK(memcmp(owner, g.owner, sizeof(owner)) == 0 &&
		  memcmp(key, g.stream_key, sizeof(key)) == 0,
	      "owner or key not derived from '%s'", g.stream);
	CHECK(g.perms != 0 && (g.perms & ~RLY_PERM_ALL) == 0, "perms %#x", g.perms);
	CHECK(g.not_after > g.issued, "not-after %llu <= issued %llu",
	      (unsigned long long)g.not_after, (unsigned long long)g.issued);
	CHECK(rly_grant_encode(&g, enc, sizeof(enc)) == 2 + strlen(g.stream) + 84, "encode length");

	n = rly_grant_format(&g, out, sizeof(out));
	CHECK(n > 0 && (size_t)n == strlen(out) && n <= 1024, "format gave %d", n);
	CHECK(rly_grant_parse_line(out, &back) == 1, "own line refused: %s", out);
	CHECK(same(&g, &back), "round trip changed the grant: %s", out);
	CHECK(rly_grant_format(&back, again, sizeof(again)) == n && strcmp(out, again) == 0,
	      "format is not a fixed point: %s", out);

	ok = rly_grant_sig_ok(&g);
	CHECK(ok == 0 || ok == 1, "sig_ok returned %d", ok);

	/* A fresh signature over the same record verifies; one flipped bit does not. */
	back.issuer[0] ^= 1; /* sign must overwrite it */
	CHECK(rly_grant_sign(&back, &signer) == 0, "sign refused an accepted grant: %s", out);
	CHECK(memcmp(back.issuer, signer.pk, RLY_ID_LEN) == 0, "sign did not set the issuer");
	CHECK(rly_grant_sig_ok(&back) == 1, "fresh signature does not verify");
	back.sig[g.perms % RLY_WIRE_SIG_LEN] ^= 0x10;
	CHECK(rly_grant_sig_ok(&back) == 0, "flipped signature verifies");
	return ok;
}

static void on_warn(void *ctx, const char *path, unsigned line, const char *why)
{
	(void)ctx;
	CHECK(strcmp(path, file) == 0, "warning for %s", path);
	CHECK(line >= 1 && line <= n_lines, "warning for line %u of %u", line, n_lines);
	CHECK(why != NULL && why[0] != '\0', "empty reason");
	n_warns++;
}

/* Every kept grant is valid at time 0 (validity only ends, and every not-after is > 0). */
static void query(void *ctx, const struct rly_grant *g, int valid)
{
	const struct rly_registry *r = ctx;
	uint8_t pubs[4][RLY_ID_LEN];
	int pub;

	CHECK(valid == 1, "kept grant not valid at time 0");
	CHECK(rly_registry_allows(r, g->stream_key, g->grantee, g->perms, 0) == 1,
	      "kept grant not honoured");
	CHECK(rly_registry_publishers(r, g->stream_key, 0, pubs, 4, &pub) >= 0, "publishers");
	CHECK(!(g->perms & RLY_PERM_PUBLISH) || pub == 1 ||
		  rly_registry_publishers(r, g->stream_key, 0, pubs, 0, &pub) > 0,
	      "a publisher is missing");
	CHECK(rly_registry_next_expiry(r, 0) > 0, "next expiry");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rly_registry *r = NULL;
	unsigned good = 0;
	char line[2048];
	size_t start = 0;
	int fd, kept;

	if (size > INPUT_MAX_BYTES)
		return 0;
	init_once();
	n_lines = 0;
	while (start < size) {
		const uint8_t *nl = memchr(data + start, '\n', size - start);
		size_t end = nl ? (size_t)(nl - data) : size, len = end - start;

		n_lines++;
		if (len < sizeof(line)) {
			memcpy(line, data + start, len);
			line[len] = '\0';
			good += check_line(line);
		}
		start = end + 1;
	}

	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0, "open %s", file);
	CHECK(write(fd, data, size) == (ssize_t)size, "write");
	close(fd);
	n_warns = 0;
	kept = rly_registry_load(&r, dir, on_warn, NULL);
	CHECK(kept >= 0 && (unsigned)kept <= good, "kept %d of %u signed lines", kept, good);
	CHECK(n_warns <= n_lines, "%u warnings for %u lines", n_warns, n_lines);
	rly_registry_foreach(r, 0, query, r);
	rly_registry_free(r);
	return 0;
}
