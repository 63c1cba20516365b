/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stream registry (security/grant.c, security/registry.c): stream names, the canonical
 * encoding and its signature, the line format, loading a directory with every refusal reported by
 * file and line, delegation, public grants and the queries. The last tests run the real
 * relay-keys binary (path in RELAY_KEYS) end to end.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "security/identity.h"
#include "security/registry.h"

#define T0 ((uint64_t)1700000000) /* issued time of every test grant */

static char dir[64];
static struct rly_identity owner, alice, bob, carol;
static char stream[RLY_STREAM_NAME_MAX + 1];
static uint8_t skey[RLY_STREAM_KEY_LEN];

/* ------------------------------------------------------------------ fixtures */

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	char sub[1024];

	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		rm_tree(sub);
	}
	closedir(d);
	rmdir(path);
}

static void setup(void)
{
	uint8_t o[RLY_ID_LEN];
	char hex[65];

	cr_assert_geq(sodium_init(), 0);
	snprintf(dir, sizeof(dir), "/tmp/rly-registry-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	crypto_sign_keypair(owner.pk, owner.sk);
	crypto_sign_keypair(alice.pk, alice.sk);
	crypto_sign_keypair(bob.pk, bob.sk);
	crypto_sign_keypair(carol.pk, carol.sk);
	rly_pk_format(owner.pk, hex);
	snprintf(stream, sizeof(stream), "%s/test/stream", hex);
	cr_assert_eq(rly_stream_name_parse(stream, o, skey), 0, "%s", rly_err_msg());
}

static void teardown(void)
{
	rm_tree(dir);
}

TestSuite(registry, .init = setup, .fini = teardown);

/* A grant on @p name by @p issuer to @p grantee (NULL: the public), signed. */
static struct rly_grant make_on(const char *name, const struct rly_identity *issuer,
				const struct rly_identity *grantee, uint32_t perms,
				uint64_t not_after)
{
	struct rly_grant g;

	memset(&g, 0, sizeof(g));
	snprintf(g.stream, sizeof(g.stream), "%s", name);
	if (grantee)
		memcpy(g.grantee, grantee->pk, RLY_ID_LEN);
	g.perms = perms;
	g.not_after = not_after;
	g.issued = T0;
	cr_assert_eq(rly_grant_sign(&g, issuer), 0, "%s", rly_err_msg());
	return g;
}

static struct rly_grant make(const struct rly_identity *issuer, const struct rly_identity *grantee,
			     uint32_t perms, uint64_t not_after)
{
	return make_on(stream, issuer, grantee, perms, not_after);
}

static void put_text(const char *file, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "a");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static void put(const char *file, const struct rly_grant *g)
{
	char line[1100];

	cr_assert_gt(rly_grant_format(g, line, sizeof(line)), 0);
	strcat(line, "\n");
	put_text(file, line);
}

/* Every warning of the last load. */
static struct {
	char file[256];
	unsigned line;
	char why[1024];
} warns[64];
static unsigned n_warns;

static void on_warn(void *ctx, const char *file, unsigned line, const char *why)
{
	(void)ctx;
	cr_assert_lt(n_warns, 64);
	snprintf(warns[n_warns].file, sizeof(warns[0].file), "%s", file);
	warns[n_warns].line = line;
	snprintf(warns[n_warns].why, sizeof(warns[0].why), "%s", why);
	n_warns++;
}

static struct rly_registry *load(int expect_kept)
{
	struct rly_registry *r = NULL;
	int rc;

	n_warns = 0;
	rc = rly_registry_load(&r, dir, on_warn, NULL);
	cr_assert_eq(rc, expect_kept, "kept %d grants, expected %d (%s; first warning: %s)", rc,
		     expect_kept, rly_err_msg(), n_warns ? warns[0].why : "none");
	return r;
}

/* The warning about @p file:@p line, or fail. */
static const char *warning_at(const char *file, unsigned line)
{
	char path[300];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	for (unsigned i = 0; i < n_warns; i++)
		if (strcmp(warns[i].file, path) == 0 && warns[i].line == line)
			return warns[i].why;
	cr_assert_fail("no warning for %s:%u (%u warnings)", file, line, n_warns);
	return NULL;
}

static int allows(const struct rly_registry *r, const struct rly_identity *who, uint32_t perm,
		  uint64_t now)
{
	return rly_registry_allows(r, skey, who ? who->pk : NULL, perm, now);
}

/* ------------------------------------------------------------------ stream names */

Test(registry, stream_name_gives_owner_and_blake2b_128_key_of_the_whole_name)
{
	const char *name = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef/a";
	/* hashlib.blake2b(name, digest_size=16), as client/util.c's rly_stream_key_from_name. */
	const uint8_t expect[16] = {0xdc, 0x6e, 0xd9, 0x36, 0x58, 0x6d, 0xde, 0x6c,
				    0xf2, 0x0e, 0x86, 0x1e, 0x39, 0x7c, 0x9a, 0xfc};
	uint8_t o[RLY_ID_LEN], key[RLY_STREAM_KEY_LEN];

	cr_assert_eq(rly_stream_name_parse(name, o, key), 0, "%s", rly_err_msg());
	cr_assert_arr_eq(key, expect, 16);
	for (unsigned i = 0; i < 32; i++)
		cr_assert_eq(o[i], (i % 8) * 0x22 + 0x01, "owner byte %u", i);
}

Test(registry, stream_name_refuses_bad_owners_paths_and_lengths)
{
	char name[400], hex[65];
	uint8_t o[RLY_ID_LEN], key[RLY_STREAM_KEY_LEN];
	const char *bad_paths[] = {"", "a b", "a\tb", "caf\xc3\xa9", "x\x7f"};

	rly_pk_format(owner.pk, hex);
	for (size_t i = 0; i < sizeof(bad_paths) / sizeof(bad_paths[0]); i++) {
		snprintf(name, sizeof(name), "%s/%s", hex, bad_paths[i]);
		cr_assert_eq(rly_stream_name_parse(name, o, key), -EINVAL, "path '%s'",
			     bad_paths[i]);
	}
	snprintf(name, sizeof(name), "%s", hex);
	cr_assert_eq(rly_stream_name_parse(name, o, key), -EINVAL, "no '/'");
	snprintf(name, sizeof(name), "%.63s/x", hex);
	cr_assert_eq(rly_stream_name_parse(name, o, key), -EINVAL, "63 hex digits");
	snprintf(name, sizeof(name), "%sx/x", hex);
	cr_assert_eq(rly_stream_name_parse(name, o, key), -EINVAL, "65 characters before '/'");
	snprintf(name, sizeof(name), "%s/x", hex);
	name[3] = 'G';
	cr_assert_eq(rly_stream_name_parse(name, o, key), -EINVAL, "non-hex owner");
	snprintf(name, sizeof(name), "%s/x", hex);
	for (int i = 0; i < 64; i++)
		if (name[i] >= 'a')
			name[i] = (char)(name[i] - 32);
	cr_assert_eq(rly_stream_name_parse(name, o, key), -EINVAL, "upper-case owner");
	cr_assert_not_null(strstr(rly_err_msg(), "lower-case"), "%s", rly_err_msg());

	/* 256 bytes is the limit, 257 is over. */
	snprintf(name, sizeof(name), "%s/", hex);
	memset(name + 65, 'p', RLY_STREAM_NAME_MAX - 65);
	name[RLY_STREAM_NAME_MAX] = '\0';
	cr_assert_eq(rly_stream_name_parse(name, o, key), 0, "%s", rly_err_msg());
	cr_assert_arr_eq(o, owner.pk, 32);
	name[RLY_STREAM_NAME_MAX] = 'p';
	name[RLY_STREAM_NAME_MAX + 1] = '\0';
	cr_assert_eq(rly_stream_name_parse(name, o, key), -EINVAL);
}

/* ------------------------------------------------------------------ encoding, signatures */

Test(registry, encoding_is_the_documented_byte_layout)
{
	struct rly_grant g = make(&owner, &alice, RLY_PERM_PUBLISH | RLY_PERM_GRANT, T0 + 0x0102);
	uint8_t out[512], expect[512], *p = expect;
	size_t n = strlen(stream), len;

	/* docs/registry.md: u16 name length, name, grantee, u32 perms, u64 not-after, u64 issued,
	 * issuer; big-endian. */
	*p++ = (uint8_t)(n >> 8);
	*p++ = (uint8_t)n;
	memcpy(p, stream, n), p += n;
	memcpy(p, alice.pk, 32), p += 32;
	*p++ = 0, *p++ = 0, *p++ = 0, *p++ = 0x05;
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)((T0 + 0x0102) >> (8 * i));
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(T0 >> (8 * i));
	memcpy(p, owner.pk, 32), p += 32;

	len = rly_grant_encode(&g, out, sizeof(out));
	cr_assert_eq(len, (size_t)(p - expect));
	cr_assert_eq(len, 2 + n + 84);
	cr_assert_arr_eq(out, expect, len);
	cr_assert_eq(rly_grant_encode(&g, out, len - 1), 0, "a short buffer gets nothing");
}

Test(registry, signature_covers_the_context_and_every_field)
{
	struct rly_grant g = make(&owner, &alice, RLY_PERM_SUBSCRIBE, T0 + 100), h;
	uint8_t msg[600],
	    *fields[] = {(uint8_t *)g.stream + 70, g.grantee + 5, g.issuer + 31, g.sig + 17};
	size_t n;

	cr_assert_eq(rly_grant_sig_ok(&g), 1);
	cr_assert_arr_eq(g.issuer, owner.pk, 32, "sign sets the issuer");
	/* The signature is plain Ed25519 over "relay-grant-v1" || encoding. */
	memcpy(msg, RLY_GRANT_SIG_CONTEXT, 14);
	n = rly_grant_encode(&g, msg + 14, sizeof(msg) - 14);
	cr_assert_eq(crypto_sign_verify_detached(g.sig, msg, 14 + n, owner.pk), 0);
	msg[0] ^= 1;
	cr_assert_neq(crypto_sign_verify_detached(g.sig, msg, 14 + n, owner.pk), 0);

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		h = g;
		fields[i][0] ^= 0x01;
		cr_assert_eq(rly_grant_sig_ok(&g), 0, "field %zu", i);
		g = h;
	}
	h = g;
	g.perms |= RLY_PERM_PUBLISH;
	cr_assert_eq(rly_grant_sig_ok(&g), 0, "perms");
	g = h;
	g.not_after++;
	cr_assert_eq(rly_grant_sig_ok(&g), 0, "not-after");
	g = h;
	g.issued--;
	cr_assert_eq(rly_grant_sig_ok(&g), 0, "issued");
	g = h;
	cr_assert_eq(rly_grant_sig_ok(&g), 1);
}

Test(registry, sign_refuses_what_parsing_would_refuse)
{
	struct rly_grant g;

	memset(&g, 0, sizeof(g));
	strcpy(g.stream, stream);
	g.perms = RLY_PERM_SUBSCRIBE;
	g.issued = T0;
	g.not_after = T0;
	cr_assert_eq(rly_grant_sign(&g, &owner), -EINVAL, "not-after must be after issued");
	g.not_after = T0 + 1;
	g.perms = RLY_PERM_GRANT; /* to the public */
	cr_assert_eq(rly_grant_sign(&g, &owner), -EINVAL, "public grant permission");
	g.perms = 0;
	cr_assert_eq(rly_grant_sign(&g, &owner), -EINVAL, "no permission");
	g.perms = 8;
	cr_assert_eq(rly_grant_sign(&g, &owner), -EINVAL, "unknown permission bit");
	g.perms = RLY_PERM_SUBSCRIBE;
	strcpy(g.stream, "nope/x");
	cr_assert_eq(rly_grant_sign(&g, &owner), -EINVAL, "bad stream name");
}

/* ------------------------------------------------------------------ the line format */

/* Field by field: struct copies need not keep padding bytes. */
static void assert_same_grant(const struct rly_grant *a, const struct rly_grant *b)
{
	cr_assert_str_eq(a->stream, b->stream);
	cr_assert_arr_eq(a->stream_key, b->stream_key, RLY_STREAM_KEY_LEN);
	cr_assert_arr_eq(a->owner, b->owner, RLY_ID_LEN);
	cr_assert_arr_eq(a->grantee, b->grantee, RLY_ID_LEN);
	cr_assert_eq(a->perms, b->perms);
	cr_assert_eq(a->not_after, b->not_after);
	cr_assert_eq(a->issued, b->issued);
	cr_assert_arr_eq(a->issuer, b->issuer, RLY_ID_LEN);
	cr_assert_arr_eq(a->sig, b->sig, RLY_WIRE_SIG_LEN);
}

Test(registry, format_writes_the_documented_line_and_parse_reads_it_back)
{
	struct rly_grant g = make(&owner, &alice, RLY_PERM_ALL, T0 + 60), back;
	char line[1100], expect[1100], a[65], o[65], sig[129];
	int n;

	rly_pk_format(alice.pk, a);
	rly_pk_format(owner.pk, o);
	sodium_bin2hex(sig, sizeof(sig), g.sig, 64);
	snprintf(expect, sizeof(expect),
		 "grant v1 stream=%s grantee=%s perms=publish,subscribe,grant not-after=%" PRIu64
		 " issued=%" PRIu64 " issuer=%s sig=%s",
		 stream, a, T0 + 60, T0, o, sig);
	n = rly_grant_format(&g, line, sizeof(line));
	cr_assert_eq(n, (int)strlen(expect));
	cr_assert_str_eq(line, expect);
	cr_assert_eq(rly_grant_format(&g, line, (size_t)n), -ENOSPC);

	cr_assert_eq(rly_grant_parse_line(expect, &back), 1, "%s", rly_err_msg());
	assert_same_grant(&back, &g);
	strcat(expect, "\n");
	cr_assert_eq(rly_grant_parse_line(expect, &back), 1, "a trailing newline is fine");
	cr_assert_eq(rly_grant_sig_ok(&back), 1);

	g = make(&owner, NULL, RLY_PERM_SUBSCRIBE, T0 + 60);
	rly_grant_format(&g, line, sizeof(line));
	cr_assert_not_null(strstr(line, " grantee=* perms=subscribe "), "%s", line);
	cr_assert_eq(rly_grant_parse_line(line, &back), 1);
	assert_same_grant(&back, &g);
}

Test(registry, parse_skips_blank_and_comment_lines)
{
	struct rly_grant g;

	cr_assert_eq(rly_grant_parse_line("", &g), 0);
	cr_assert_eq(rly_grant_parse_line("\n", &g), 0);
	cr_assert_eq(rly_grant_parse_line("  \t \n", &g), 0);
	cr_assert_eq(rly_grant_parse_line("# grant v1 whatever", &g), 0);
	cr_assert_eq(rly_grant_parse_line("   # indented comment\n", &g), 0);
}

/* Replace the first @p from in @p line with @p to. */
static void edit(char *line, const char *from, const char *to)
{
	char *p = strstr(line, from), rest[1100];

	cr_assert_not_null(p, "'%s' not in line", from);
	strcpy(rest, p + strlen(from));
	strcpy(p, to);
	strcat(p, rest);
}

Test(registry, parse_refuses_every_malformed_field_and_names_it)
{
	struct rly_grant g = make(&owner, &alice, RLY_PERM_SUBSCRIBE, T0 + 60), back;
	char good[1100], line[1100], a[65], o[65], t0[32], tn[32];
	struct {
		const char *from, *to, *msg;
	} cases[] = {
	    {"grant v1", "grant v2", "version"},
	    {"grant v1", "grants v1", "grant line"},
	    {"grant v1 ", " grant v1 ", "grant line"},
	    {" grantee=", "  grantee=", "single spaces"},
	    {" grantee=", " grantee=0", "grantee"},
	    {" grantee=", " owner=", "grantee"},
	    {"perms=subscribe", "perms=read", "unknown permission 'read'"},
	    {"perms=subscribe", "perms=", "perms"},
	    {"perms=subscribe", "perms=subscribe,", "unknown permission ''"},
	    {"perms=subscribe", "perms=subscribe,subscribe", "twice"},
	    {"perms=subscribe", "perms=Subscribe", "unknown permission"},
	    {tn, "0", "later than issued"},
	    {tn, t0, "later than issued"},
	    {tn, "99999999999999999999", "not-after"},
	    {tn, "0017", "not-after"},
	    {tn, "+17", "not-after"},
	    {t0, "-1", "issued"},
	    {" issuer=", " issuer=ab", "issuer"},
	    {" sig=", " sig=0", "sig"},
	    {" sig=", " sig=\t", "0x09"},
	    {"stream=", "stream=X", "stream"},
	    {"/test/stream", "/test stream", "grantee"},
	    {" issued=", " issuer=", "issued"},
	};

	rly_grant_format(&g, good, sizeof(good));
	rly_pk_format(alice.pk, a);
	rly_pk_format(owner.pk, o);
	snprintf(t0, sizeof(t0), "issued=%" PRIu64, T0);
	snprintf(tn, sizeof(tn), "not-after=%" PRIu64, T0 + 60);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char to[64];

		strcpy(line, good);
		/* Number cases replace the value only. */
		if (cases[i].from == tn || cases[i].from == t0)
			snprintf(
			    to, sizeof(to), "%.*s%s",
			    (int)(strchr(cases[i].from, '=') - cases[i].from + 1), cases[i].from,
			    strchr(cases[i].to, '=') ? strchr(cases[i].to, '=') + 1 : cases[i].to);
		else
			snprintf(to, sizeof(to), "%s", cases[i].to);
		edit(line, cases[i].from, to);
		cr_assert_eq(rly_grant_parse_line(line, &back), -EINVAL,
			     "case %zu must be refused: %s", i, line);
		cr_assert_not_null(strstr(rly_err_msg(), cases[i].msg),
				   "case %zu: '%s' not in '%s'", i, cases[i].msg, rly_err_msg());
	}
	/* Missing last field, text after it, a public grant with 'grant'. */
	strcpy(line, good);
	*strstr(line, " sig=") = '\0';
	cr_assert_eq(rly_grant_parse_line(line, &back), -EINVAL);
	cr_assert_not_null(strstr(rly_err_msg(), "sig"), "%s", rly_err_msg());
	strcpy(line, good);
	strcat(line, " x");
	cr_assert_eq(rly_grant_parse_line(line, &back), -EINVAL);
	cr_assert_not_null(strstr(rly_err_msg(), "after sig"), "%s", rly_err_msg());
	strcpy(line, good);
	edit(line, a, "*");
	edit(line, "perms=subscribe", "perms=subscribe,grant");
	cr_assert_eq(rly_grant_parse_line(line, &back), -EINVAL);
	cr_assert_not_null(strstr(rly_err_msg(), "public"), "%s", rly_err_msg());
	/* And the unedited line still parses: the cases above failed for their own reason. */
	cr_assert_eq(rly_grant_parse_line(good, &back), 1, "%s", rly_err_msg());
}

/* ------------------------------------------------------------------ loading and queries */

Test(registry, owner_grants_give_exactly_the_granted_permissions_until_not_after)
{
	struct rly_registry *r;
	struct rly_grant g1 = make(&owner, &alice, RLY_PERM_SUBSCRIBE, T0 + 100);
	struct rly_grant g2 = make(&owner, &bob, RLY_PERM_PUBLISH, T0 + 200);
	uint8_t other_key[RLY_STREAM_KEY_LEN];

	put("a.grants", &g1);
	put("a.grants", &g2);
	r = load(2);
	cr_assert_eq(n_warns, 0);
	cr_assert(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0));
	cr_assert(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0 + 99));
	cr_assert_not(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0 + 100), "not-after is exclusive");
	cr_assert_not(allows(r, &alice, RLY_PERM_PUBLISH, T0));
	cr_assert(allows(r, &bob, RLY_PERM_PUBLISH, T0 + 199));
	cr_assert_not(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0));
	cr_assert_not(allows(r, &bob, RLY_PERM_PUBLISH | RLY_PERM_SUBSCRIBE, T0));
	cr_assert_not(allows(r, &carol, RLY_PERM_SUBSCRIBE, T0));
	cr_assert_not(allows(r, NULL, RLY_PERM_SUBSCRIBE, T0), "no public grant");
	cr_assert_not(allows(r, &owner, RLY_PERM_PUBLISH, T0), "owners grant themselves too");
	memcpy(other_key, skey, sizeof(other_key));
	other_key[0] ^= 1;
	cr_assert_not(rly_registry_allows(r, other_key, alice.pk, RLY_PERM_SUBSCRIBE, T0));
	rly_registry_free(r);
}

Test(registry, permissions_from_several_grants_add_up)
{
	struct rly_registry *r;
	struct rly_grant g1 = make(&owner, &alice, RLY_PERM_SUBSCRIBE, T0 + 100);
	struct rly_grant g2 = make(&owner, &alice, RLY_PERM_PUBLISH, T0 + 50);

	put("a.grants", &g1);
	put("b.grants", &g2);
	r = load(2);
	cr_assert(allows(r, &alice, RLY_PERM_PUBLISH | RLY_PERM_SUBSCRIBE, T0 + 49));
	cr_assert_not(allows(r, &alice, RLY_PERM_PUBLISH | RLY_PERM_SUBSCRIBE, T0 + 50));
	cr_assert(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0 + 50));
	cr_assert_not(allows(r, &alice, 0, T0), "asking for nothing is not a yes");
	rly_registry_free(r);
}

Test(registry, delegated_grant_is_valid_only_while_the_delegate_holds_grant)
{
	struct rly_registry *r;
	/* owner -> alice (grant, until +100) -> bob (subscribe, until +1000) */
	struct rly_grant ga = make(&owner, &alice, RLY_PERM_GRANT, T0 + 100);
	struct rly_grant gb = make(&alice, &bob, RLY_PERM_SUBSCRIBE, T0 + 1000);

	/* The delegated grant comes first: load order must not matter. */
	put("a.grants", &gb);
	put("b.grants", &ga);
	r = load(2);
	cr_assert_eq(n_warns, 0, "%s", n_warns ? warns[0].why : "");
	cr_assert(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0));
	cr_assert(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0 + 99));
	cr_assert_not(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0 + 100), "alice's grant expired");
	cr_assert_not(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0), "grant alone is not subscribe");
	cr_assert_eq(rly_registry_next_expiry(r, T0), T0 + 100);
	cr_assert_eq(rly_registry_next_expiry(r, T0 + 100), T0 + 1000);
	cr_assert_eq(rly_registry_next_expiry(r, T0 + 1000), 0);
	rly_registry_free(r);
}

Test(registry, grant_from_an_issuer_without_grant_permission_is_refused_with_a_warning)
{
	struct rly_registry *r;
	struct rly_grant ga = make(&owner, &alice, RLY_PERM_SUBSCRIBE | RLY_PERM_PUBLISH, T0 + 100);
	struct rly_grant gb = make(&alice, &bob, RLY_PERM_SUBSCRIBE, T0 + 100);
	struct rly_grant gc = make(&carol, &carol, RLY_PERM_PUBLISH, T0 + 100);
	char a[65];

	put("a.grants", &ga);
	put("a.grants", &gb);
	put("a.grants", &gc);
	r = load(1);
	cr_assert_eq(n_warns, 2);
	rly_pk_format(alice.pk, a);
	cr_assert_not_null(strstr(warning_at("a.grants", 2), "neither the owner"));
	cr_assert_not_null(strstr(warning_at("a.grants", 2), a), "the warning names the issuer");
	cr_assert_not_null(strstr(warning_at("a.grants", 3), "neither the owner"));
	cr_assert_not(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0));
	cr_assert_not(allows(r, &carol, RLY_PERM_PUBLISH, T0));
	cr_assert(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0));
	rly_registry_free(r);
}

Test(registry, a_flipped_signature_byte_is_refused_with_file_and_line)
{
	struct rly_registry *r;
	struct rly_grant ga = make(&owner, &alice, RLY_PERM_SUBSCRIBE, T0 + 100);
	struct rly_grant gb = make(&owner, &bob, RLY_PERM_SUBSCRIBE, T0 + 100);

	gb.sig[20] ^= 0x40;
	put_text("x.grants", "# grants for the test stream\n");
	put("x.grants", &ga);
	put("x.grants", &gb);
	r = load(1);
	cr_assert_eq(n_warns, 1);
	cr_assert_not_null(strstr(warning_at("x.grants", 3), "bad signature"), "%s", warns[0].why);
	cr_assert(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0), "the other records still load");
	cr_assert_not(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0));
	rly_registry_free(r);
}

Test(registry, delegation_cycles_without_the_owner_are_refused)
{
	struct rly_registry *r;
	struct rly_grant ab = make(&alice, &bob, RLY_PERM_GRANT | RLY_PERM_SUBSCRIBE, T0 + 100);
	struct rly_grant ba = make(&bob, &alice, RLY_PERM_GRANT | RLY_PERM_SUBSCRIBE, T0 + 100);
	struct rly_grant bc = make(&bob, &carol, RLY_PERM_SUBSCRIBE, T0 + 100);

	put("c.grants", &ab);
	put("c.grants", &ba);
	put("c.grants", &bc);
	r = load(0);
	cr_assert_eq(n_warns, 3);
	cr_assert_not_null(strstr(warning_at("c.grants", 1), "cycle"), "%s", warns[0].why);
	cr_assert_not_null(strstr(warning_at("c.grants", 3), "cycle"));
	cr_assert_not(allows(r, &carol, RLY_PERM_SUBSCRIBE, T0));
	cr_assert_not(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0));
	rly_registry_free(r);
}

/* owner -> ids[0] -> ids[1] -> ... : @p n GRANT links, then ids[n - 1] grants subscribe to last. */
static void chain(struct rly_identity *ids, unsigned n, const struct rly_identity *last,
		  uint64_t not_after, const char *file)
{
	struct rly_grant g;

	for (unsigned i = 0; i < n; i++) {
		crypto_sign_keypair(ids[i].pk, ids[i].sk);
		g = make(i ? &ids[i - 1] : &owner, &ids[i], RLY_PERM_GRANT, not_after);
		put(file, &g);
	}
	g = make(&ids[n - 1], last, RLY_PERM_SUBSCRIBE, not_after);
	put(file, &g);
}

Test(registry, delegation_is_followed_at_most_eight_grants_deep)
{
	struct rly_identity ids[RLY_GRANT_MAX_DEPTH];
	struct rly_registry *r;

	/* 7 GRANT links + the subscribe grant = 8 grants from the owner: valid. */
	chain(ids, RLY_GRANT_MAX_DEPTH - 1, &alice, T0 + 100, "ok.grants");
	r = load(RLY_GRANT_MAX_DEPTH);
	cr_assert_eq(n_warns, 0, "%s", n_warns ? warns[0].why : "");
	cr_assert(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0));
	rly_registry_free(r);

	/* 8 links + 1 = 9: the last one is too deep. */
	rm_tree(dir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	chain(ids, RLY_GRANT_MAX_DEPTH, &bob, T0 + 100, "deep.grants");
	r = load(RLY_GRANT_MAX_DEPTH);
	cr_assert_eq(n_warns, 1);
	cr_assert_not_null(
	    strstr(warning_at("deep.grants", RLY_GRANT_MAX_DEPTH + 1), "longer than 8"), "%s",
	    warns[0].why);
	cr_assert_not(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0));
	rly_registry_free(r);
}

Test(registry, depth_counts_the_chains_still_valid_at_the_time_asked)
{
	struct rly_identity ids[RLY_GRANT_MAX_DEPTH];
	struct rly_registry *r;
	struct rly_grant g;

	/* carol holds grant twice: from the owner until +50, and at depth 8 until +1000. */
	chain(ids, RLY_GRANT_MAX_DEPTH - 1, &alice, T0 + 1000, "long.grants");
	g = make(&ids[RLY_GRANT_MAX_DEPTH - 2], &carol, RLY_PERM_GRANT, T0 + 1000);
	put("long.grants", &g);
	g = make(&owner, &carol, RLY_PERM_GRANT, T0 + 50);
	put("short.grants", &g);
	g = make(&carol, &bob, RLY_PERM_SUBSCRIBE, T0 + 1000);
	put("short.grants", &g);
	r = load(RLY_GRANT_MAX_DEPTH + 3);
	cr_assert(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0 + 49), "depth 2 through the short chain");
	cr_assert_not(allows(r, &bob, RLY_PERM_SUBSCRIBE, T0 + 50),
		      "only the depth-9 chain is left once the short one expires");
	cr_assert(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0 + 999));
	rly_registry_free(r);
}

Test(registry, public_grants_admit_anyone_including_anonymous)
{
	struct rly_registry *r;
	struct rly_grant gp = make(&owner, NULL, RLY_PERM_SUBSCRIBE, T0 + 100);
	uint8_t zero[RLY_ID_LEN] = {0};

	put("p.grants", &gp);
	r = load(1);
	cr_assert(allows(r, NULL, RLY_PERM_SUBSCRIBE, T0));
	cr_assert(rly_registry_allows(r, skey, zero, RLY_PERM_SUBSCRIBE, T0));
	cr_assert(allows(r, &carol, RLY_PERM_SUBSCRIBE, T0));
	cr_assert_not(allows(r, &carol, RLY_PERM_PUBLISH, T0));
	cr_assert_not(allows(r, NULL, RLY_PERM_SUBSCRIBE, T0 + 100));
	rly_registry_free(r);
}

Test(registry, publishers_lists_each_valid_publisher_once)
{
	struct rly_registry *r;
	struct rly_grant g[] = {
	    make(&owner, &alice, RLY_PERM_PUBLISH, T0 + 100),
	    make(&owner, &alice, RLY_PERM_PUBLISH | RLY_PERM_SUBSCRIBE, T0 + 200),
	    make(&owner, &bob, RLY_PERM_PUBLISH, T0 + 50),
	    make(&owner, &carol, RLY_PERM_SUBSCRIBE, T0 + 200),
	    make(&owner, NULL, RLY_PERM_SUBSCRIBE, T0 + 200),
	};
	uint8_t out[4][RLY_ID_LEN];
	int pub = -1, n;

	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
		put("p.grants", &g[i]);
	r = load(5);
	n = rly_registry_publishers(r, skey, T0, out, 4, &pub);
	cr_assert_eq(n, 2);
	cr_assert_eq(pub, 0);
	cr_assert((memcmp(out[0], alice.pk, 32) == 0 && memcmp(out[1], bob.pk, 32) == 0) ||
		  (memcmp(out[0], bob.pk, 32) == 0 && memcmp(out[1], alice.pk, 32) == 0));
	memset(out, 0, sizeof(out));
	cr_assert_eq(rly_registry_publishers(r, skey, T0, out, 1, &pub), 2, "the total, always");
	cr_assert(sodium_is_zero(out[1], 32), "nothing written past max");
	n = rly_registry_publishers(r, skey, T0 + 50, out, 4, &pub);
	cr_assert_eq(n, 1, "bob's grant expired");
	cr_assert_arr_eq(out[0], alice.pk, 32);
	cr_assert_eq(rly_registry_publishers(r, skey, T0 + 200, out, 4, &pub), 0);
	rly_registry_free(r);

	g[0] = make(&owner, NULL, RLY_PERM_PUBLISH, T0 + 100);
	put("q.grants", &g[0]);
	r = load(6);
	cr_assert_eq(rly_registry_publishers(r, skey, T0, out, 4, &pub), 2);
	cr_assert_eq(pub, 1, "anyone may publish");
	cr_assert(allows(r, NULL, RLY_PERM_PUBLISH, T0));
	rly_registry_free(r);
}

/* CLOCK_REALTIME, not time(): glibc's time() reads a coarser clock that can lag a tick. */
static uint64_t wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

Test(registry, now_is_the_wall_clock_in_seconds)
{
	uint64_t before = wall_s(), now = rly_registry_now_s();

	cr_assert_geq(now, before);
	cr_assert_leq(now, wall_s());
}

Test(registry, next_expiry_and_streams_cover_every_stream)
{
	struct rly_registry *r;
	struct rly_grant g1 = make(&owner, &alice, RLY_PERM_PUBLISH, T0 + 300);
	struct rly_grant g2 = make(&owner, &bob, RLY_PERM_PUBLISH, T0 + 100);
	uint8_t other_owner_key[RLY_STREAM_KEY_LEN];
	char other[RLY_STREAM_NAME_MAX + 1], hex[65];
	struct rly_grant g3;

	/* A second stream of another owner counts too. */
	rly_pk_format(carol.pk, hex);
	snprintf(other, sizeof(other), "%s/b", hex);
	g3 = make_on(other, &carol, &alice, RLY_PERM_SUBSCRIBE, T0 + 200);
	put("e.grants", &g1);
	put("e.grants", &g2);
	put("e.grants", &g3);
	r = load(3);
	cr_assert_eq(rly_registry_next_expiry(r, 0), T0 + 100);
	cr_assert_eq(rly_registry_next_expiry(r, T0 + 99), T0 + 100);
	cr_assert_eq(rly_registry_next_expiry(r, T0 + 100), T0 + 200);
	cr_assert_eq(rly_registry_next_expiry(r, T0 + 299), T0 + 300);
	cr_assert_eq(rly_registry_next_expiry(r, T0 + 300), 0);
	cr_assert_eq(rly_stream_name_parse(other, (uint8_t[32]){0}, other_owner_key), 0);
	{
		uint8_t keys[3][RLY_STREAM_KEY_LEN] = {{0}};

		cr_assert_eq(rly_registry_streams(r, NULL, 0), 2);
		cr_assert_eq(rly_registry_streams(r, keys, 1), 2, "the total, always");
		cr_assert(sodium_is_zero(keys[1], RLY_STREAM_KEY_LEN), "nothing past max");
		cr_assert_eq(rly_registry_streams(r, keys, 3), 2);
		cr_assert(
		    (memcmp(keys[0], skey, 16) == 0 && memcmp(keys[1], other_owner_key, 16) == 0) ||
		    (memcmp(keys[1], skey, 16) == 0 && memcmp(keys[0], other_owner_key, 16) == 0));
	}
	cr_assert(rly_registry_allows(r, other_owner_key, alice.pk, RLY_PERM_SUBSCRIBE, T0));
	cr_assert_not(rly_registry_allows(r, other_owner_key, alice.pk, RLY_PERM_PUBLISH, T0));
	rly_registry_free(r);

	rm_tree(dir);
	cr_assert_eq(mkdir(dir, 0700), 0);
	r = load(0);
	cr_assert_eq(rly_registry_next_expiry(r, 0), 0, "an empty registry never changes");
	cr_assert_eq(rly_registry_streams(r, NULL, 0), 0);
	rly_registry_free(r);
}

Test(registry, load_reads_only_grants_files_in_name_order_and_reports_bad_lines)
{
	struct rly_registry *r;
	struct rly_grant g = make(&owner, &alice, RLY_PERM_SUBSCRIBE, T0 + 100);
	char line[1100], longline[1200], path[256];

	rly_grant_format(&g, line, sizeof(line));
	put_text("notes.txt", "garbage that is never read\n");
	put_text(".hidden.grants", "garbage that is never read\n");
	put_text("b.grants", "not a grant\n");
	memset(longline, '#', 1100);
	longline[1100] = '\n';
	longline[1101] = '\0';
	put_text("a.grants", longline);
	put_text("a.grants", line); /* the last line has no newline: still read */
	snprintf(path, sizeof(path), "%s/d.grants", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	r = load(1);
	cr_assert_eq(n_warns, 3, "%u warnings", n_warns);
	/* Files in name order, each line reported where it is. */
	cr_assert(strstr(warns[0].file, "/a.grants") && warns[0].line == 1, "%s:%u", warns[0].file,
		  warns[0].line);
	cr_assert_not_null(strstr(warns[0].why, "longer than 1024"), "%s", warns[0].why);
	cr_assert(strstr(warns[1].file, "/b.grants") && warns[1].line == 1);
	cr_assert_not_null(strstr(warns[1].why, "grant v1"), "%s", warns[1].why);
	cr_assert(strstr(warns[2].file, "/d.grants") && warns[2].line == 0);
	cr_assert_not_null(strstr(warns[2].why, "not a regular file"), "%s", warns[2].why);
	cr_assert(allows(r, &alice, RLY_PERM_SUBSCRIBE, T0));
	rly_registry_free(r);
}

Test(registry, load_skips_files_over_64_mib_and_fails_on_a_missing_directory)
{
	struct rly_registry *r = NULL;
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/huge.grants", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, (64 << 20) + 1), 0); /* sparse: no disk used */
	close(fd);
	r = load(0);
	cr_assert_eq(n_warns, 1);
	cr_assert_not_null(strstr(warning_at("huge.grants", 0), "64 MiB"), "%s", warns[0].why);
	rly_registry_free(r);

	r = NULL;
	snprintf(path, sizeof(path), "%s/none", dir);
	cr_assert_eq(rly_registry_load(&r, path, on_warn, NULL), -ENOENT);
	cr_assert_null(r);
	cr_assert_not_null(strstr(rly_err_msg(), path), "%s", rly_err_msg());
}

static unsigned n_bad_sig, n_limit;
static char limit_at[512];

static void count_warn(void *ctx, const char *file, unsigned line, const char *why)
{
	(void)ctx;
	if (strstr(why, "bad signature"))
		n_bad_sig++;
	else if (strstr(why, "more than 1000000 grant records"))
		snprintf(limit_at, sizeof(limit_at), "%s:%u", file, line), n_limit++;
}

Test(registry, load_stops_after_a_million_grant_records, .timeout = 60)
{
	/* Signatures with S >= L: libsodium refuses them before any curve arithmetic, so a million
	 * records take about a second. One 64 MB file under 6 names (hard links) holds 1.2 M. */
	const unsigned per_file = 200000;
	char line[400], hex[65], path[256], link_path[256], expect[300];
	struct rly_registry *r = NULL;
	size_t len;
	char *buf;
	int fd;

	rly_pk_format(owner.pk, hex);
	len =
	    (size_t)snprintf(line, sizeof(line),
			     "grant v1 stream=%s/a grantee=* perms=subscribe not-after=2 issued=1 "
			     "issuer=%s sig=%0128d\n",
			     hex, hex, 0);
	memset(strstr(line, "sig=") + 4 + 64, 'f', 64);
	cr_assert_lt(per_file * len, 64u << 20, "each file stays under the 64 MiB limit");
	buf = malloc(per_file * len);
	cr_assert_not_null(buf);
	for (unsigned i = 0; i < per_file; i++)
		memcpy(buf + i * len, line, len);
	snprintf(path, sizeof(path), "%s/a.grants", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, buf, per_file * len), (ssize_t)(per_file * len));
	close(fd);
	free(buf);
	for (char c = 'b'; c <= 'f'; c++) {
		snprintf(link_path, sizeof(link_path), "%s/%c.grants", dir, c);
		cr_assert_eq(link(path, link_path), 0, "%s", strerror(errno));
	}

	cr_assert_eq(rly_registry_load(&r, dir, count_warn, NULL), 0);
	cr_assert_eq(n_bad_sig, 1000000u, "every record up to the limit is verified");
	cr_assert_eq(n_limit, 1u, "the limit is reported once");
	snprintf(expect, sizeof(expect), "%s/f.grants:1", dir);
	cr_assert_str_eq(limit_at, expect,
			 "the 1,000,001st record: the first line of the 6th file");
	rly_registry_free(r);
}

static void collect(void *ctx, const struct rly_grant *g, int valid)
{
	unsigned *n = ctx;

	cr_assert_str_eq(g->stream, stream);
	cr_assert_arr_eq(g->stream_key, skey, RLY_STREAM_KEY_LEN);
	cr_assert_arr_eq(g->owner, owner.pk, 32);
	if (memcmp(g->grantee, alice.pk, 32) == 0) {
		cr_assert_eq(g->perms, RLY_PERM_GRANT);
		cr_assert_eq(valid, 0, "expired at the time asked");
	} else {
		cr_assert_arr_eq(g->grantee, bob.pk, 32);
		cr_assert_arr_eq(g->issuer, alice.pk, 32);
		cr_assert_eq(g->not_after, T0 + 1000);
		cr_assert_eq(valid, 0, "its issuer's grant expired");
	}
	n[valid]++;
}

Test(registry, foreach_visits_kept_grants_with_their_validity)
{
	struct rly_registry *r;
	struct rly_grant ga = make(&owner, &alice, RLY_PERM_GRANT, T0 + 100);
	struct rly_grant gb = make(&alice, &bob, RLY_PERM_SUBSCRIBE, T0 + 1000);
	unsigned n[2] = {0, 0};

	put("a.grants", &ga);
	put("a.grants", &gb);
	r = load(2);
	rly_registry_foreach(r, T0 + 100, collect, n);
	cr_assert_eq(n[0], 2);
	cr_assert_eq(n[1], 0);
	rly_registry_free(r);
}

/* ------------------------------------------------------------------ relay-keys, end to end */

/* Run relay-keys with @p args (a shell word list) in the test directory; its stdout+stderr. */
static int run_keys(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int run_keys(char *out, size_t cap, const char *fmt, ...)
{
	const char *bin = getenv("RELAY_KEYS");
	char args[2048], cmd[4096];
	size_t n = 0, got;
	va_list ap;
	FILE *f;
	int st;

	cr_assert_not_null(bin, "RELAY_KEYS must name the relay-keys binary (set by meson)");
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "cd %s && %s %s 2>&1", dir, bin, args);
	f = popen(cmd, "r");
	cr_assert_not_null(f);
	while (n + 1 < cap && (got = fread(out + n, 1, cap - 1 - n, f)) > 0)
		n += got;
	out[n] = '\0';
	st = pclose(f);
	cr_assert(WIFEXITED(st), "%s did not exit", cmd);
	return WEXITSTATUS(st);
}

/* The rest of the line after @p label in @p text, into @p out. */
static void field(const char *text, const char *label, char *out, size_t cap)
{
	const char *p = strstr(text, label);

	cr_assert_not_null(p, "'%s' not in: %s", label, text);
	p += strlen(label);
	snprintf(out, cap, "%.*s", (int)strcspn(p, "\n"), p);
}

/* Change the first hex digit of the signature on line @p lineno of @p path (relative to dir). */
static void flip_sig_digit(const char *path, unsigned lineno)
{
	char text[8192], *p = text;
	size_t n;
	FILE *f = fopen(path, "r+");

	cr_assert_not_null(f, "%s", path);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	for (unsigned i = 1; i < lineno; i++)
		cr_assert_not_null(p = strchr(p, '\n') + 1);
	cr_assert_not_null(p = strstr(p, " sig="));
	p[5] = p[5] == '0' ? '1' : '0';
	rewind(f);
	cr_assert_eq(fwrite(text, 1, n, f), n);
	fclose(f);
}

Test(registry, relay_keys_sets_up_a_stream_end_to_end)
{
	char out[8192], owner_hex[80], alice_hex[80], name[300], key[40], xpk_hex[80], expect[65];
	char path[64];
	struct rly_identity o;
	FILE *f;
	struct rly_registry *r;
	uint8_t xpk[32], k[16], a[32];

	cr_assert_eq(run_keys(out, sizeof(out), "new owner.id"), 0, "%s", out);
	snprintf(owner_hex, sizeof(owner_hex), "%.64s", out);
	cr_assert_eq(run_keys(out, sizeof(out), "new alice.id"), 0, "%s", out);
	snprintf(alice_hex, sizeof(alice_hex), "%.64s", out);
	cr_assert_eq(rly_pk_parse(alice_hex, a), 0);
	cr_assert_eq(run_keys(out, sizeof(out), "new owner.id"), 1, "never overwrites: %s", out);
	cr_assert_not_null(strstr(out, "File exists"), "%s", out);

	cr_assert_eq(chdir(dir), 0);
	cr_assert_eq(rly_identity_load(&o, "owner.id"), 0, "%s", rly_err_msg());
	rly_pk_format(o.pk, expect);
	cr_assert_str_eq(owner_hex, expect, "new prints the public key");
	cr_assert_eq(run_keys(out, sizeof(out), "show owner.id"), 0);
	field(out, "public ", name, sizeof(name));
	cr_assert_str_eq(name, owner_hex);
	field(out, "x25519 ", xpk_hex, sizeof(xpk_hex));
	cr_assert_eq(rly_identity_x25519(&o, xpk, NULL), 0);
	rly_pk_format(xpk, expect);
	cr_assert_str_eq(xpk_hex, expect);

	/* The owner by file or by key gives the same stream. */
	cr_assert_eq(run_keys(out, sizeof(out), "stream --owner owner.id prices/btc"), 0, "%s",
		     out);
	field(out, "stream ", name, sizeof(name));
	field(out, "key ", key, sizeof(key));
	cr_assert_eq(rly_stream_name_parse(name, a, k), 0, "%s", rly_err_msg());
	cr_assert_arr_eq(a, o.pk, 32);
	sodium_bin2hex(expect, sizeof(expect), k, 16);
	cr_assert_str_eq(key, expect);
	cr_assert_eq(run_keys(out, sizeof(out), "stream --owner %s prices/btc", owner_hex), 0);
	cr_assert_not_null(strstr(out, name));
	cr_assert_eq(run_keys(out, sizeof(out), "stream --owner owner.id 'bad path'"), 2);

	cr_assert_eq(mkdir("reg", 0755), 0);
	cr_assert_eq(run_keys(out, sizeof(out),
			      "grant --identity owner.id --stream %s --grantee alice.id "
			      "--perms publish,grant --valid-for 3600 --out reg/main.grants",
			      name),
		     0, "%s", out);
	cr_assert_eq(
	    run_keys(out, sizeof(out),
		     "grant --identity owner.id --stream %s --grantee '*' --perms subscribe "
		     "--valid-for 3600 --out reg/main.grants",
		     name),
	    0, "%s", out);
	/* alice delegates: the line is printed, with a note that alice is not the owner. */
	cr_assert_eq(
	    run_keys(out, sizeof(out),
		     "grant --identity alice.id --stream %s --grantee %s --perms subscribe "
		     "--not-after 99999999999",
		     name, owner_hex),
	    0, "%s", out);
	cr_assert_not_null(strstr(out, "not the stream's owner"), "%s", out);
	{
		char line[1100];

		field(out, "grant v1 ", line, sizeof(line));
		snprintf(path, sizeof(path), "reg/alice.grants");
		cr_assert_not_null(f = fopen(path, "w"));
		fprintf(f, "grant v1 %s\n", line);
		fclose(f);
	}
	{
		struct stat st;
		cr_assert_eq(stat("reg/main.grants", &st), 0);
		cr_assert_eq(st.st_mode & 0777, 0644);
	}

	cr_assert_eq(run_keys(out, sizeof(out), "check reg"), 0, "%s", out);
	cr_assert_not_null(strstr(out, "3 grants kept (3 valid"), "%s", out);
	cr_assert_not_null(strstr(out, "grantee=* perms=subscribe"), "%s", out);
	cr_assert_eq(rly_registry_load(&r, "reg", NULL, NULL), 3);
	cr_assert_eq(rly_stream_name_parse(name, a, k), 0);
	cr_assert(rly_registry_allows(r, k, NULL, RLY_PERM_SUBSCRIBE, (uint64_t)time(NULL)));
	cr_assert_eq(rly_pk_parse(alice_hex, a), 0);
	cr_assert(rly_registry_allows(r, k, a, RLY_PERM_PUBLISH, (uint64_t)time(NULL)));
	rly_registry_free(r);
	cr_assert_eq(run_keys(out, sizeof(out), "check reg --at 99999999999"), 0, "%s", out);
	cr_assert_not_null(strstr(out, "(0 valid at 99999999999)"), "%s", out);

	/* Tamper with one signature: check names the line and fails. */
	flip_sig_digit("reg/main.grants", 2);
	cr_assert_eq(run_keys(out, sizeof(out), "check reg"), 1, "%s", out);
	cr_assert_not_null(strstr(out, "refused reg/main.grants:2: bad signature"), "%s", out);
	cr_assert_not_null(strstr(out, "2 grants kept"), "%s", out);
}

Test(registry, relay_keys_refuses_bad_usage_with_status_2)
{
	char out[4096];

	cr_assert_eq(run_keys(out, sizeof(out), "%s", ""), 2);
	cr_assert_eq(run_keys(out, sizeof(out), "frobnicate"), 2);
	cr_assert_not_null(strstr(out, "unknown command"), "%s", out);
	cr_assert_eq(run_keys(out, sizeof(out), "--help"), 0);
	cr_assert_not_null(strstr(out, "Usage: relay-keys"), "%s", out);
	cr_assert_eq(run_keys(out, sizeof(out), "grant --help"), 0);
	cr_assert_not_null(strstr(out, "--valid-for"), "%s", out);
	cr_assert_eq(run_keys(out, sizeof(out), "new"), 2);
	cr_assert_eq(run_keys(out, sizeof(out), "check"), 2);
	cr_assert_eq(run_keys(out, sizeof(out), "check . --at soon"), 2);
	cr_assert_eq(run_keys(out, sizeof(out), "stream prices"), 2, "--owner is required");
	cr_assert_eq(run_keys(out, sizeof(out), "grant --bogus"), 2);
	cr_assert_not_null(strstr(out, "unknown option '--bogus'"), "%s", out);
	cr_assert_eq(run_keys(out, sizeof(out), "new me.id"), 0);
	cr_assert_eq(run_keys(out, sizeof(out),
			      "grant --identity me.id --stream x --grantee '*' --perms subscribe "
			      "--valid-for 10"),
		     2, "bad stream name");
	cr_assert_eq(run_keys(out, sizeof(out), "stream --owner me.id x"), 0);
	{
		char name[300];

		field(out, "stream ", name, sizeof(name));
		cr_assert_eq(run_keys(out, sizeof(out),
				      "grant --identity me.id --stream %s --grantee '*' "
				      "--perms subscribe,read --valid-for 10",
				      name),
			     2);
		cr_assert_eq(run_keys(out, sizeof(out),
				      "grant --identity me.id --stream %s --grantee '*' "
				      "--perms subscribe --valid-for 10 --not-after 5",
				      name),
			     2, "exactly one of --valid-for and --not-after");
		cr_assert_eq(run_keys(out, sizeof(out),
				      "grant --identity me.id --stream %s --grantee '*' "
				      "--perms grant --valid-for 10",
				      name),
			     2, "no public grant permission");
		cr_assert_eq(run_keys(out, sizeof(out),
				      "grant --identity me.id --stream %s --grantee '*' "
				      "--perms subscribe --not-after 5",
				      name),
			     2, "in the past");
	}
	cr_assert_eq(run_keys(out, sizeof(out), "show none.id"), 1);
	cr_assert_not_null(strstr(out, "none.id"), "%s", out);
}
