/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Grants one at a time: stream names, the canonical encoding a grant signature covers, signing and
 * checking, and the text line of registry.h. docs/registry.md describes the encoding byte by byte
 * and the line format for operators; registry.c loads whole directories of these lines.
 */
#include "security/registry.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "common/err.h"
#include "common/hex.h"
#include "security/identity.h"
#include "security/sodium_ready.h"

/* Canonical encoding: name length, name, grantee, perms, not-after, issued, issuer. */
#define ENC_FIXED   (2 + RLY_ID_LEN + 4 + 8 + 8 + RLY_ID_LEN)
#define ENC_MAX	    (ENC_FIXED + RLY_STREAM_NAME_MAX)
#define CONTEXT_LEN (sizeof(RLY_GRANT_SIG_CONTEXT) - 1)

/* Exactly 2 * n hex digits in [s, s + len): 0, or -1. */
static int hex_decode(const char *s, size_t len, uint8_t *out, size_t n)
{
	return len == 2 * n ? rly_hex_decode(s, out, n) : -1;
}

/* ------------------------------------------------------------------ stream names */

int rly_stream_name_parse(const char *name, uint8_t owner[RLY_ID_LEN],
			  uint8_t key[RLY_STREAM_KEY_LEN])
{
	size_t len = strnlen(name, RLY_STREAM_NAME_MAX + 1);
	uint8_t tmp[RLY_ID_LEN];

	if (len > RLY_STREAM_NAME_MAX)
		return rly_err_set(EINVAL, "stream name is longer than %u bytes",
				   RLY_STREAM_NAME_MAX);
	/*
	 * Lower case only: the key hashes the name's bytes, so an upper-case spelling would be a
	 * second stream of the same owner that looks like the first.
	 */
	for (size_t i = 0; i < 2 * RLY_ID_LEN; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return rly_err_set(EINVAL,
					   "stream name '%.80s' must start with its owner's public "
					   "key in 64 lower-case hex digits",
					   name);
	if (name[2 * RLY_ID_LEN] != '/')
		return rly_err_set(EINVAL, "stream name '%.80s' needs a '/' after the owner key",
				   name);
	if (len == 2 * RLY_ID_LEN + 1)
		return rly_err_set(EINVAL, "stream name '%.80s' has an empty path after '/'", name);
	for (size_t i = 2 * RLY_ID_LEN + 1; i < len; i++)
		if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] > '~')
			return rly_err_set(
			    EINVAL,
			    "stream path has byte 0x%02x at offset %zu: only printable "
			    "ASCII without spaces",
			    (unsigned char)name[i], i);
	if (rly_sodium_ready() < 0)
		return -EIO;
	hex_decode(name, 2 * RLY_ID_LEN, tmp, RLY_ID_LEN);
	memcpy(owner, tmp, RLY_ID_LEN);
	/* The same hash as rly_stream_key_from_name() in client/util.c, which clients use. */
	crypto_generichash(key, RLY_STREAM_KEY_LEN, (const unsigned char *)name, len, NULL, 0);
	return 0;
}

/* ------------------------------------------------------------------ encoding and signatures */

static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
	return p + bytes;
}

size_t rly_grant_encode(const struct rly_grant *g, uint8_t *out, size_t cap)
{
	size_t n = strnlen(g->stream, sizeof(g->stream));
	uint8_t *p = out;

	if (n > RLY_STREAM_NAME_MAX || cap < ENC_FIXED + n)
		return 0;
	p = put_be(p, n, 2);
	memcpy(p, g->stream, n);
	p += n;
	memcpy(p, g->grantee, RLY_ID_LEN);
	p += RLY_ID_LEN;
	p = put_be(p, g->perms, 4);
	p = put_be(p, g->not_after, 8);
	p = put_be(p, g->issued, 8);
	memcpy(p, g->issuer, RLY_ID_LEN);
	p += RLY_ID_LEN;
	return (size_t)(p - out);
}

/* Context then encoding: what the issuer signs. 0 if the grant cannot be encoded. */
static size_t signed_bytes(const struct rly_grant *g, uint8_t out[CONTEXT_LEN + ENC_MAX])
{
	size_t n;

	memcpy(out, RLY_GRANT_SIG_CONTEXT, CONTEXT_LEN);
	n = rly_grant_encode(g, out + CONTEXT_LEN, ENC_MAX);
	return n ? CONTEXT_LEN + n : 0;
}

/* What parsing refuses beyond syntax, so that sign never makes a line that parse refuses. */
static int check_meaning(const struct rly_grant *g)
{
	if (g->perms == 0 || (g->perms & ~RLY_PERM_ALL))
		return rly_err_set(EINVAL, "perms: need one or more of publish, subscribe, grant");
	/* Anyone could then grant anything to anyone: say "public" plainly instead. */
	if ((g->perms & RLY_PERM_GRANT) && sodium_is_zero(g->grantee, RLY_ID_LEN))
		return rly_err_set(EINVAL,
				   "perms: a public grant (grantee=*) cannot carry 'grant'");
	if (g->not_after <= g->issued)
		return rly_err_set(
		    EINVAL, "not-after (%" PRIu64 ") must be later than issued (%" PRIu64 ")",
		    g->not_after, g->issued);
	return 0;
}

int rly_grant_sign(struct rly_grant *g, const struct rly_identity *id)
{
	uint8_t msg[CONTEXT_LEN + ENC_MAX];
	size_t len;
	int rc;

	if ((rc = rly_sodium_ready()) < 0)
		return rc;
	if ((rc = rly_stream_name_parse(g->stream, g->owner, g->stream_key)) < 0 ||
	    (rc = check_meaning(g)) < 0)
		return rly_err_wrap("sign grant");
	memcpy(g->issuer, id->pk, RLY_ID_LEN);
	len = signed_bytes(g, msg);
	crypto_sign_detached(g->sig, NULL, msg, len, id->sk);
	return 0;
}

int rly_grant_sig_ok(const struct rly_grant *g)
{
	uint8_t msg[CONTEXT_LEN + ENC_MAX];
	size_t len;

	if (rly_sodium_ready() < 0 || (len = signed_bytes(g, msg)) == 0)
		return 0;
	return crypto_sign_verify_detached(g->sig, msg, len, g->issuer) == 0;
}

/* ------------------------------------------------------------------ the line format */

static const struct {
	uint32_t bit;
	const char *name;
} perm_names[] = {
    {RLY_PERM_PUBLISH, "publish"},
    {RLY_PERM_SUBSCRIBE, "subscribe"},
    {RLY_PERM_GRANT, "grant"},
};
#define N_PERMS (sizeof(perm_names) / sizeof(perm_names[0]))

int rly_grant_format(const struct rly_grant *g, char *out, size_t cap)
{
	char grantee[2 * RLY_ID_LEN + 1], issuer[2 * RLY_ID_LEN + 1], sig[2 * RLY_WIRE_SIG_LEN + 1];
	char perms[32] = "";
	int n;

	if (sodium_is_zero(g->grantee, RLY_ID_LEN))
		strcpy(grantee, "*");
	else
		rly_pk_format(g->grantee, grantee);
	rly_pk_format(g->issuer, issuer);
	sodium_bin2hex(sig, sizeof(sig), g->sig, RLY_WIRE_SIG_LEN);
	for (size_t i = 0; i < N_PERMS; i++)
		if (g->perms & perm_names[i].bit) {
			if (perms[0])
				strcat(perms, ",");
			strcat(perms, perm_names[i].name);
		}
	n = snprintf(out, cap,
		     "grant v1 stream=%.*s grantee=%s perms=%s not-after=%" PRIu64
		     " issued=%" PRIu64 " issuer=%s sig=%s",
		     (int)strnlen(g->stream, RLY_STREAM_NAME_MAX), g->stream, grantee, perms,
		     g->not_after, g->issued, issuer, sig);
	if (n < 0 || (size_t)n >= cap)
		return rly_err_set(ENOSPC, "grant line needs %d bytes, %zu given", n + 1, cap);
	return n;
}

/* A whole decimal number without sign or leading zeros. */
static int parse_u64(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_perms(const char *s, size_t len, const uint8_t grantee[RLY_ID_LEN], uint32_t *out)
{
	uint32_t perms = 0;
	const char *end = s + len;

	if (len == 0)
		return rly_err_set(EINVAL, "perms: empty (publish, subscribe, grant)");
	while (s <= end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t n = (size_t)((comma ? comma : end) - s);
		size_t i;

		for (i = 0; i < N_PERMS; i++)
			if (strlen(perm_names[i].name) == n &&
			    memcmp(perm_names[i].name, s, n) == 0)
				break;
		if (i == N_PERMS)
			return rly_err_set(EINVAL,
					   "perms: unknown permission '%.*s' (known: publish, "
					   "subscribe, grant)",
					   (int)(n > 32 ? 32 : n), s);
		if (perms & perm_names[i].bit)
			return rly_err_set(EINVAL, "perms: '%s' given twice", perm_names[i].name);
		perms |= perm_names[i].bit;
		if (!comma)
			break;
		s = comma + 1;
	}
	if ((perms & RLY_PERM_GRANT) && sodium_is_zero(grantee, RLY_ID_LEN))
		return rly_err_set(EINVAL,
				   "perms: a public grant (grantee=*) cannot carry 'grant'");
	*out = perms;
	return 0;
}

enum field {
	F_TYPE,
	F_VERSION,
	F_STREAM,
	F_GRANTEE,
	F_PERMS,
	F_NOT_AFTER,
	F_ISSUED,
	F_ISSUER,
	F_SIG,
	F_COUNT
};

static const char *const field_keys[F_COUNT] = {
    "grant", "v1", "stream=", "grantee=", "perms=", "not-after=", "issued=", "issuer=", "sig=",
};

/* One field's value, [v, v + n), into @p g. */
static int parse_field(enum field f, const char *v, size_t n, struct rly_grant *g)
{
	switch (f) {
	case F_STREAM:
		if (n > RLY_STREAM_NAME_MAX)
			return rly_err_set(EINVAL, "stream: name longer than %u bytes",
					   RLY_STREAM_NAME_MAX);
		memcpy(g->stream, v, n);
		g->stream[n] = '\0';
		if (rly_stream_name_parse(g->stream, g->owner, g->stream_key) < 0)
			return rly_err_wrap("stream");
		return 0;
	case F_GRANTEE:
		if (n == 1 && v[0] == '*') {
			memset(g->grantee, 0, RLY_ID_LEN);
			return 0;
		}
		if (hex_decode(v, n, g->grantee, RLY_ID_LEN) < 0)
			return rly_err_set(EINVAL, "grantee: expected '*' or 64 hex digits");
		if (sodium_is_zero(g->grantee, RLY_ID_LEN))
			return rly_err_set(EINVAL,
					   "grantee: all-zero key; write '*' for the public");
		return 0;
	case F_PERMS:
		return parse_perms(v, n, g->grantee, &g->perms);
	case F_NOT_AFTER:
		if (parse_u64(v, n, &g->not_after) < 0)
			return rly_err_set(EINVAL, "not-after: expected unix seconds (decimal)");
		return 0;
	case F_ISSUED:
		if (parse_u64(v, n, &g->issued) < 0)
			return rly_err_set(EINVAL, "issued: expected unix seconds (decimal)");
		return 0;
	case F_ISSUER:
		if (hex_decode(v, n, g->issuer, RLY_ID_LEN) < 0)
			return rly_err_set(EINVAL, "issuer: expected 64 hex digits");
		return 0;
	case F_SIG:
		if (hex_decode(v, n, g->sig, RLY_WIRE_SIG_LEN) < 0)
			return rly_err_set(EINVAL, "sig: expected %u hex digits",
					   2 * RLY_WIRE_SIG_LEN);
		return 0;
	default:
		return 0;
	}
}

int rly_grant_parse_line(const char *line, struct rly_grant *g)
{
	size_t len = strlen(line), i;
	const char *p = line, *end;

	if (len > 0 && line[len - 1] == '\n')
		len--;
	if (len > 0 && line[len - 1] == '\r')
		len--;
	end = line + len;
	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t'); i++)
		;
	if (i == len || line[i] == '#')
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)line[i] < ' ' || (unsigned char)line[i] > '~')
			return rly_err_set(EINVAL,
					   "byte 0x%02x at column %zu: a grant line is printable "
					   "ASCII",
					   (unsigned char)line[i], i + 1);
	memset(g, 0, sizeof(*g));
	for (enum field f = F_TYPE; f < F_COUNT; f++) {
		const char *sp = memchr(p, ' ', (size_t)(end - p)), *tok_end = sp ? sp : end;
		size_t kl = strlen(field_keys[f]), n = (size_t)(tok_end - p);
		int rc;

		if (f == F_TYPE && (n != kl || memcmp(p, "grant", kl) != 0))
			return rly_err_set(EINVAL,
					   "not a grant line: it must start with \"grant v1 \"");
		if (f == F_VERSION && (n != kl || memcmp(p, "v1", kl) != 0))
			return rly_err_set(EINVAL,
					   "unsupported grant version '%.*s' (this build reads v1)",
					   (int)(n > 16 ? 16 : n), p);
		if (f >= F_STREAM && (n < kl || memcmp(p, field_keys[f], kl) != 0))
			return rly_err_set(EINVAL,
					   "expected field '%.*s' at column %zu (fields, in order: "
					   "stream grantee perms not-after issued issuer sig)",
					   (int)(kl - 1), field_keys[f], (size_t)(p - line) + 1);
		if (f >= F_STREAM && (rc = parse_field(f, p + kl, n - kl, g)) < 0)
			return rc;
		if (f == F_SIG) {
			if (sp != NULL)
				return rly_err_set(EINVAL,
						   "unexpected text after sig at column %zu",
						   (size_t)(sp - line) + 1);
			break;
		}
		if (sp == NULL)
			return rly_err_set(EINVAL, "line ends before field '%.*s'",
					   (int)strcspn(field_keys[f + 1], "="), field_keys[f + 1]);
		p = sp + 1;
		if (p == end || *p == ' ')
			return rly_err_set(EINVAL,
					   "fields must be separated by single spaces (column "
					   "%zu)",
					   (size_t)(p - line) + 1);
	}
	if (check_meaning(g) < 0)
		return -EINVAL;
	return 1;
}
