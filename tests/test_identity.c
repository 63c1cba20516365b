/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Identity files (security/identity.c): round trip, permissions, the check that the secret key
 * belongs to the public key, strict parsing, X25519 derivation and public-key hex.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "security/identity.h"

static char dir[64];

/* A private temp directory per test (Criterion runs each test in its own process). */
static void make_dir(void)
{
	cr_assert_geq(sodium_init(), 0);
	snprintf(dir, sizeof(dir), "/tmp/rly-identity-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

TestSuite(identity, .init = make_dir, .fini = remove_dir);

static void path_of(char *out, size_t cap, const char *name)
{
	snprintf(out, cap, "%s/%s", dir, name);
}

static void new_identity(struct rly_identity *id)
{
	cr_assert_eq(crypto_sign_keypair(id->pk, id->sk), 0);
}

static void write_file(const char *path, const char *text, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0);
	n = read(fd, buf, cap - 1);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	close(fd);
	return (size_t)n;
}

/* The text of a valid identity file for @p id. */
static void identity_text(const struct rly_identity *id, char *out, size_t cap)
{
	char pk[65], sk[129];

	sodium_bin2hex(pk, sizeof(pk), id->pk, 32);
	sodium_bin2hex(sk, sizeof(sk), id->sk, 64);
	snprintf(out, cap, "relay-identity v1\npublic %s\nsecret %s\n", pk, sk);
}

Test(identity, save_then_load_returns_the_same_key_pair_from_a_private_file)
{
	struct rly_identity id, back;
	char path[256], text[512], expect[512];
	struct stat st;

	new_identity(&id);
	path_of(path, sizeof(path), "me.id");
	cr_assert_eq(rly_identity_save(&id, path), 0, "%s", rly_err_msg());
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	read_file(path, text, sizeof(text));
	identity_text(&id, expect, sizeof(expect));
	cr_assert_str_eq(text, expect);

	memset(&back, 0, sizeof(back));
	cr_assert_eq(rly_identity_load(&back, path), 0, "%s", rly_err_msg());
	cr_assert_arr_eq(back.pk, id.pk, 32);
	cr_assert_arr_eq(back.sk, id.sk, 64);
}

Test(identity, save_refuses_to_overwrite_an_existing_file)
{
	struct rly_identity a, b, back;
	char path[256];

	new_identity(&a);
	new_identity(&b);
	path_of(path, sizeof(path), "me.id");
	cr_assert_eq(rly_identity_save(&a, path), 0);
	cr_assert_eq(rly_identity_save(&b, path), -EEXIST);
	cr_assert_not_null(strstr(rly_err_msg(), path), "%s", rly_err_msg());
	cr_assert_eq(rly_identity_load(&back, path), 0);
	cr_assert_arr_eq(back.pk, a.pk, 32, "the first identity must survive");
}

Test(identity, save_refuses_a_secret_key_of_another_public_key)
{
	struct rly_identity a, b;
	char path[256];

	new_identity(&a);
	new_identity(&b);
	memcpy(a.pk, b.pk, 32);
	path_of(path, sizeof(path), "me.id");
	cr_assert_eq(rly_identity_save(&a, path), -EINVAL);
	cr_assert_eq(access(path, F_OK), -1, "no file may be left behind");
}

Test(identity, load_refuses_a_file_others_can_read_and_says_chmod_600)
{
	struct rly_identity id, back;
	char path[256], text[512], hint[300];

	new_identity(&id);
	identity_text(&id, text, sizeof(text));
	path_of(path, sizeof(path), "open.id");
	snprintf(hint, sizeof(hint), "chmod 600 %s", path);
	for (mode_t mode = 0604; mode != 0; mode = mode == 0604 ? 0640 : mode == 0640 ? 0610 : 0) {
		write_file(path, text, strlen(text), mode);
		cr_assert_eq(rly_identity_load(&back, path), -EPERM, "mode %o", mode);
		cr_assert_not_null(strstr(rly_err_msg(), hint), "%s", rly_err_msg());
	}
	write_file(path, text, strlen(text), 0400);
	cr_assert_eq(rly_identity_load(&back, path), 0, "read-only for the owner is fine");
}

Test(identity, load_refuses_a_public_key_that_does_not_match_the_secret)
{
	struct rly_identity a, b, back;
	char path[256], text[512];

	new_identity(&a);
	new_identity(&b);
	path_of(path, sizeof(path), "mixed.id");

	/* The public line of another identity. */
	memcpy(back.pk, b.pk, 32);
	memcpy(back.sk, a.sk, 64);
	identity_text(&back, text, sizeof(text));
	write_file(path, text, strlen(text), 0600);
	cr_assert_eq(rly_identity_load(&back, path), -EINVAL);
	cr_assert_not_null(strstr(rly_err_msg(), "does not belong"), "%s", rly_err_msg());

	/* Consistent public line and public half of the secret, but a seed of another key. */
	memcpy(back.pk, a.pk, 32);
	memcpy(back.sk, b.sk, 32);
	memcpy(back.sk + 32, a.pk, 32);
	identity_text(&back, text, sizeof(text));
	write_file(path, text, strlen(text), 0600);
	cr_assert_eq(rly_identity_load(&back, path), -EINVAL);
	cr_assert_not_null(strstr(rly_err_msg(), "does not belong"), "%s", rly_err_msg());
}

Test(identity, load_refuses_malformed_files_and_names_the_line)
{
	struct rly_identity id, back;
	char good[512], text[1024], path[256];
	const size_t pub = 18, sec = 18 + 72; /* offsets of the public and secret lines */
	struct {
		const char *what;
		const char *line; /* expected ":<line>:" in the message */
	} cases[] = {
	    {"empty", ":1:"},	       {"wrong header", ":1:"},	  {"short public", ":2:"},
	    {"non-hex public", ":2:"}, {"missing secret", ":3:"}, {"short secret", ":3:"},
	    {"extra line", ":4:"},     {"CRLF", ":1:"},		  {"space before public", ":2:"},
	    {"too long", ""},
	};

	new_identity(&id);
	identity_text(&id, good, sizeof(good));
	path_of(path, sizeof(path), "bad.id");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;

		strcpy(text, good);
		switch (i) {
		case 0:
			text[0] = '\0';
			break;
		case 1:
			text[15] = '2'; /* relay-identity v2 */
			break;
		case 2:
			memmove(text + pub + 7 + 63, text + pub + 7 + 64,
				strlen(text + pub + 7 + 63));
			break;
		case 3:
			text[pub + 7 + 10] = 'g';
			break;
		case 4:
			text[sec] = '\0';
			break;
		case 5:
			text[sec + 7 + 100] = '\n';
			text[sec + 7 + 101] = '\0';
			break;
		case 6:
			strcat(text, "extra\n");
			break;
		case 7:
			memmove(text + pub, text + pub - 1, strlen(text + pub - 1) + 1);
			text[pub - 1] = '\r';
			break;
		case 8:
			memmove(text + pub + 1, text + pub, strlen(text + pub) + 1);
			text[pub] = ' ';
			break;
		case 9:
			memset(text + strlen(text), '#', 600);
			text[strlen(good) + 600] = '\0';
			break;
		}
		len = strlen(text);
		write_file(path, text, len, 0600);
		cr_assert_eq(rly_identity_load(&back, path), -EINVAL, "case '%s' must be refused",
			     cases[i].what);
		cr_assert_not_null(strstr(rly_err_msg(), path), "%s", rly_err_msg());
		cr_assert_not_null(strstr(rly_err_msg(), cases[i].line), "case '%s': %s",
				   cases[i].what, rly_err_msg());
	}
	/* The final newline may be missing; that is the only slack. */
	good[strlen(good) - 1] = '\0';
	write_file(path, good, strlen(good), 0600);
	cr_assert_eq(rly_identity_load(&back, path), 0, "%s", rly_err_msg());
	cr_assert_arr_eq(back.pk, id.pk, 32);
}

Test(identity, load_refuses_a_missing_file_and_a_directory)
{
	struct rly_identity back;
	char path[256];

	path_of(path, sizeof(path), "none.id");
	cr_assert_eq(rly_identity_load(&back, path), -ENOENT);
	cr_assert_not_null(strstr(rly_err_msg(), path));
	cr_assert_eq(chmod(dir, 0700), 0);
	cr_assert_eq(rly_identity_load(&back, dir), -EINVAL);
	cr_assert_not_null(strstr(rly_err_msg(), "not a regular file"), "%s", rly_err_msg());
}

Test(identity, x25519_keys_form_a_working_sealed_box_pair)
{
	struct rly_identity id;
	uint8_t xpk[32], xpk_only[32], xsk[32], base[32];
	uint8_t sealed[crypto_box_SEALBYTES + 5], opened[5];

	new_identity(&id);
	cr_assert_eq(rly_identity_x25519(&id, xpk, xsk), 0);
	cr_assert_eq(rly_identity_x25519(&id, xpk_only, NULL), 0);
	cr_assert_arr_eq(xpk, xpk_only, 32);
	cr_assert_eq(crypto_scalarmult_base(base, xsk), 0);
	cr_assert_arr_eq(base, xpk, 32, "the derived public key must be the secret's public key");
	cr_assert_eq(crypto_box_seal(sealed, (const uint8_t *)"hello", 5, xpk), 0);
	cr_assert_eq(crypto_box_seal_open(opened, sealed, sizeof(sealed), xpk, xsk), 0);
	cr_assert_arr_eq(opened, "hello", 5);

	/* A public key that is not a point on the curve has no X25519 counterpart. */
	memset(id.pk, 0xff, 32);
	cr_assert_eq(rly_identity_x25519(&id, xpk, NULL), -EINVAL);
}

Test(identity, public_key_hex_round_trips_and_rejects_bad_lengths_and_digits)
{
	uint8_t pk[32], back[32];
	char hex[65], upper[80];

	randombytes_buf(pk, sizeof(pk));
	rly_pk_format(pk, hex);
	cr_assert_eq(strlen(hex), 64);
	for (int i = 0; i < 64; i++)
		cr_assert((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
	cr_assert_eq(rly_pk_parse(hex, back), 0);
	cr_assert_arr_eq(back, pk, 32);
	for (int i = 0; i < 65; i++)
		upper[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 32) : hex[i];
	cr_assert_eq(rly_pk_parse(upper, back), 0);
	cr_assert_arr_eq(back, pk, 32);

	memset(back, 0, sizeof(back));
	hex[63] = '\0';
	cr_assert_eq(rly_pk_parse(hex, back), -EINVAL);
	rly_pk_format(pk, hex);
	cr_assert_eq(rly_pk_parse(strcat(strcpy(upper, hex), "0") /* 65 digits */, back), -EINVAL);
	hex[7] = 'x';
	cr_assert_eq(rly_pk_parse(hex, back), -EINVAL);
	cr_assert_eq(rly_pk_parse(NULL, back), -EINVAL);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(back[i], 0, "a refused parse must not write the key");
}
