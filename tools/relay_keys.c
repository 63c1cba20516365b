/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay-keys: identities and the stream registry for operators (docs/registry.md walks through
 * setting up a stream with it). Everything it writes can be read back by the library: identities
 * through rly_identity_load, grant lines through rly_registry_load, so `relay-keys check` on a
 * directory shows exactly what relay-control will enforce.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "security/identity.h"
#include "security/registry.h"
#include "tools/args.h"

#define PROG "relay-keys"

static const char *const usage_main =
    "Usage: relay-keys COMMAND [options]   (relay-keys COMMAND --help for each)\n"
    "Identities and the stream registry (docs/registry.md).\n"
    "\n"
    "  new FILE                      create an identity (never overwrites), print its public key\n"
    "  show FILE                     print an identity's public key and its X25519 public key\n"
    "  stream --owner FILE|HEX PATH  print the stream name <owner>/<PATH> and its stream key\n"
    "  grant --identity FILE --stream NAME --grantee HEX|FILE|'*' --perms LIST\n"
    "        (--valid-for SECONDS | --not-after UNIX) [--out FILE]\n"
    "                                sign a grant: print its line, or append it to FILE\n"
    "  check DIR [--at UNIX]         load a registry directory as relay-control would: list\n"
    "                                kept grants and refused lines\n"
    "\n"
    "Exit status: 0 done, 1 failed (or `check` refused a line), 2 bad arguments.\n";

static const char *const usage_new =
    "Usage: relay-keys new FILE\n"
    "Create a new Ed25519 identity in FILE (mode 0600; an existing FILE is never overwritten)\n"
    "and print its public key (64 hex digits). Keep FILE private: it holds the secret key.\n";

static const char *const usage_show =
    "Usage: relay-keys show FILE\n"
    "Print the identity's public key and the X25519 public key derived from it:\n"
    "  public <64 hex>\n"
    "  x25519 <64 hex>\n";

static const char *const usage_stream =
    "Usage: relay-keys stream --owner FILE|HEX PATH\n"
    "Print the name of the owner's stream PATH and its stream key:\n"
    "  stream <owner hex>/<PATH>\n"
    "  key <32 hex>\n"
    "PATH is printable ASCII without spaces; the name is at most 256 bytes.\n";

static const char *const usage_grant =
    "Usage: relay-keys grant --identity FILE --stream NAME --grantee HEX|FILE|'*'\n"
    "                        --perms LIST (--valid-for SECONDS | --not-after UNIX) [--out FILE]\n"
    "Sign a grant with the identity in FILE (the stream's owner, or someone holding 'grant' on "
    "it).\n"
    "\n"
    "  --identity FILE   the issuer's identity\n"
    "  --stream NAME     the full stream name, <owner hex>/<path> (see relay-keys stream)\n"
    "  --grantee X       a public key (64 hex), an identity file, or '*' for the public\n"
    "  --perms LIST      comma-separated: publish, subscribe, grant ('grant' not for '*')\n"
    "  --valid-for S     valid from now for S seconds\n"
    "  --not-after UNIX  valid until this unix time (exclusive)\n"
    "  --out FILE        append the line to FILE (created with mode 0644) instead of printing it\n";

static const char *const usage_check =
    "Usage: relay-keys check DIR [--at UNIX]\n"
    "Load every *.grants file of DIR, as relay-control does, and print each kept grant with\n"
    "whether it is valid at the time given (default now), then each refused line with its\n"
    "reason. Exit status 1 if any line was refused.\n";

/* One option of a command, from getopt_long: 0, or -1 after printing why it is wrong. */
typedef int (*on_opt_fn)(void *ctx, int c, const char *arg);

/* The options of one command: the index of its first operand, or -1 with the exit status in
 * *status (0 after --help, 2 after an error). */
static int parse_opts(const char *cmd, int argc, char **argv, const struct option *lo,
		      const char *usage, on_opt_fn on_opt, void *ctx, int *status)
{
	char prog[64];
	int c;

	snprintf(prog, sizeof(prog), PROG " %s", cmd);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			*status = 0;
			return -1;
		}
		if (c == '?' || c == ':') {
			*status = tool_getopt_error(prog, c, argv);
			return -1;
		}
		if (on_opt(ctx, c, optarg) < 0) {
			*status = 2;
			return -1;
		}
	}
	return optind;
}

static int fail(const char *cmd)
{
	fprintf(stderr, PROG " %s: %s\n", cmd, rly_err_msg());
	return 1;
}

static int is_pk_hex(const char *s)
{
	uint8_t pk[RLY_ID_LEN];

	return strlen(s) == 2 * RLY_ID_LEN && rly_pk_parse(s, pk) == 0;
}

/* A public key given as 64 hex digits or as an identity file. */
static int key_arg(const char *arg, uint8_t pk[RLY_ID_LEN])
{
	struct rly_identity id;
	int rc;

	if (is_pk_hex(arg))
		return rly_pk_parse(arg, pk);
	if ((rc = rly_identity_load(&id, arg)) < 0)
		return rc;
	memcpy(pk, id.pk, RLY_ID_LEN);
	sodium_memzero(&id, sizeof(id));
	return 0;
}

static void perms_text(uint32_t perms, char out[32])
{
	out[0] = '\0';
	if (perms & RLY_PERM_PUBLISH)
		strcat(out, "publish");
	if (perms & RLY_PERM_SUBSCRIBE)
		strcat(strcat(out, out[0] ? "," : ""), "subscribe");
	if (perms & RLY_PERM_GRANT)
		strcat(strcat(out, out[0] ? "," : ""), "grant");
}

static int no_opt(void *ctx, int c, const char *arg)
{
	(void)ctx;
	(void)c;
	(void)arg;
	return 0;
}

static const struct option help_only[] = {{"help", no_argument, NULL, 'h'}, {0}};

/* ------------------------------------------------------------------ new, show */

static int cmd_new(int argc, char **argv)
{
	struct rly_identity id;
	char hex[2 * RLY_ID_LEN + 1];
	int status, first;

	if ((first = parse_opts("new", argc, argv, help_only, usage_new, no_opt, NULL, &status)) <
	    0)
		return status;
	if (argc - first != 1)
		return tool_bad_arg(PROG " new", "expected exactly one FILE");
	if (sodium_init() < 0 || crypto_sign_keypair(id.pk, id.sk) != 0) {
		fprintf(stderr, PROG " new: cannot generate a key pair\n");
		return 1;
	}
	if (rly_identity_save(&id, argv[first]) < 0) {
		sodium_memzero(&id, sizeof(id));
		return fail("new");
	}
	rly_pk_format(id.pk, hex);
	sodium_memzero(&id, sizeof(id));
	printf("%s\n", hex);
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	char hex[2 * RLY_ID_LEN + 1], xhex[2 * RLY_ID_LEN + 1];
	struct rly_identity id;
	uint8_t xpk[32];
	int status, first;

	if ((first = parse_opts("show", argc, argv, help_only, usage_show, no_opt, NULL, &status)) <
	    0)
		return status;
	if (argc - first != 1)
		return tool_bad_arg(PROG " show", "expected exactly one FILE");
	if (rly_identity_load(&id, argv[first]) < 0 || rly_identity_x25519(&id, xpk, NULL) < 0)
		return fail("show");
	rly_pk_format(id.pk, hex);
	rly_pk_format(xpk, xhex);
	sodium_memzero(&id, sizeof(id));
	printf("public %s\nx25519 %s\n", hex, xhex);
	return 0;
}

/* ------------------------------------------------------------------ stream */

struct stream_opts {
	const char *owner;
};

static int on_stream_opt(void *ctx, int c, const char *arg)
{
	if (c == 'o')
		((struct stream_opts *)ctx)->owner = arg;
	return 0;
}

static int cmd_stream(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"owner", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'}, {0}};
	char name[RLY_STREAM_NAME_MAX + 2], owner_hex[2 * RLY_ID_LEN + 1];
	char key_hex[2 * RLY_STREAM_KEY_LEN + 1];
	uint8_t owner[RLY_ID_LEN], key[RLY_STREAM_KEY_LEN];
	struct stream_opts o = {0};
	int status, first;

	if ((first = parse_opts("stream", argc, argv, lo, usage_stream, on_stream_opt, &o,
				&status)) < 0)
		return status;
	if (o.owner == NULL)
		return tool_bad_arg(PROG " stream", "--owner FILE|HEX is required");
	if (argc - first != 1)
		return tool_bad_arg(PROG " stream", "expected exactly one PATH");
	if (key_arg(o.owner, owner) < 0)
		return fail("stream");
	rly_pk_format(owner, owner_hex);
	if (snprintf(name, sizeof(name), "%s/%s", owner_hex, argv[first]) >
	    (int)RLY_STREAM_NAME_MAX)
		return tool_bad_arg(PROG " stream",
				    "PATH is too long: a stream name has at most %u "
				    "bytes, %u of them for PATH",
				    RLY_STREAM_NAME_MAX, RLY_STREAM_NAME_MAX - 2 * RLY_ID_LEN - 1);
	if (rly_stream_name_parse(name, owner, key) < 0)
		return tool_bad_arg(PROG " stream", "%s", rly_err_msg());
	sodium_bin2hex(key_hex, sizeof(key_hex), key, sizeof(key));
	printf("stream %s\nkey %s\n", name, key_hex);
	return 0;
}

/* ------------------------------------------------------------------ grant */

struct grant_opts {
	const char *identity, *stream, *grantee, *perms, *valid_for, *not_after, *out;
};

static int on_grant_opt(void *ctx, int c, const char *arg)
{
	struct grant_opts *o = ctx;

	switch (c) {
	case 'i':
		o->identity = arg;
		break;
	case 's':
		o->stream = arg;
		break;
	case 'g':
		o->grantee = arg;
		break;
	case 'p':
		o->perms = arg;
		break;
	case 'v':
		o->valid_for = arg;
		break;
	case 'n':
		o->not_after = arg;
		break;
	case 'o':
		o->out = arg;
		break;
	}
	return 0;
}

static int parse_perms_arg(const char *s, uint32_t *out)
{
	static const char *const names[] = {"publish", "subscribe", "grant"};
	char copy[128], *save = NULL;
	uint32_t perms = 0;

	if (snprintf(copy, sizeof(copy), "%s", s) >= (int)sizeof(copy))
		return -1;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < 3 && strcmp(t, names[i]) != 0; i++)
			;
		if (i == 3)
			return -1;
		perms |= 1u << i; /* RLY_PERM_PUBLISH, _SUBSCRIBE, _GRANT in this order */
	}
	*out = perms;
	return perms ? 0 : -1;
}

static int append_line(const char *path, const char *line)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	size_t len = strlen(line);
	char buf[1100];

	if (fd < 0)
		return rly_err_set(errno, "%s: %s", path, strerror(errno));
	/* One write of the whole line, so that concurrent appenders never interleave. */
	if (len + 1 > sizeof(buf)) {
		close(fd);
		return rly_err_set(ENOSPC, "grant line too long");
	}
	memcpy(buf, line, len);
	buf[len] = '\n';
	if (write(fd, buf, len + 1) != (ssize_t)(len + 1) || fsync(fd) < 0) {
		int err = errno;

		close(fd);
		return rly_err_set(err, "append to %s: %s", path, strerror(err));
	}
	if (close(fd) < 0)
		return rly_err_set(errno, "append to %s: %s", path, strerror(errno));
	return 0;
}

static int cmd_grant(int argc, char **argv)
{
	static const struct option lo[] = {{"identity", required_argument, NULL, 'i'},
					   {"stream", required_argument, NULL, 's'},
					   {"grantee", required_argument, NULL, 'g'},
					   {"perms", required_argument, NULL, 'p'},
					   {"valid-for", required_argument, NULL, 'v'},
					   {"not-after", required_argument, NULL, 'n'},
					   {"out", required_argument, NULL, 'o'},
					   {"help", no_argument, NULL, 'h'},
					   {0}};
	const char *prog = PROG " grant";
	struct grant_opts o = {0};
	struct rly_identity id;
	struct rly_grant g;
	char line[1100];
	uint64_t now = (uint64_t)time(NULL), v;
	uint8_t owner[RLY_ID_LEN], key[RLY_STREAM_KEY_LEN];
	int status, first;

	if ((first = parse_opts("grant", argc, argv, lo, usage_grant, on_grant_opt, &o, &status)) <
	    0)
		return status;
	if (first != argc)
		return tool_bad_arg(prog, "unexpected argument '%s'", argv[first]);
	if (!o.identity || !o.stream || !o.grantee || !o.perms)
		return tool_bad_arg(prog,
				    "--identity, --stream, --grantee and --perms are required");
	if (!o.valid_for == !o.not_after)
		return tool_bad_arg(prog, "give exactly one of --valid-for and --not-after");

	memset(&g, 0, sizeof(g));
	if (strlen(o.stream) > RLY_STREAM_NAME_MAX ||
	    rly_stream_name_parse(o.stream, owner, key) < 0)
		return tool_bad_arg(prog, "--stream: %s",
				    strlen(o.stream) > RLY_STREAM_NAME_MAX ? "name too long"
									   : rly_err_msg());
	strcpy(g.stream, o.stream);
	if (parse_perms_arg(o.perms, &g.perms) < 0)
		return tool_bad_arg(prog,
				    "--perms '%s': expected a comma-separated list of publish, "
				    "subscribe, grant",
				    o.perms);
	g.issued = now;
	if (o.valid_for) {
		if (tool_parse_u64(prog, "--valid-for", o.valid_for, 1, UINT64_MAX - now, &v) < 0)
			return 2;
		g.not_after = now + v;
	} else {
		if (tool_parse_u64(prog, "--not-after", o.not_after, 0, UINT64_MAX, &v) < 0)
			return 2;
		if (v <= now)
			return tool_bad_arg(prog,
					    "--not-after %" PRIu64 " is not in the future (now is "
					    "%" PRIu64 ")",
					    v, now);
		g.not_after = v;
	}
	if (strcmp(o.grantee, "*") != 0 && key_arg(o.grantee, g.grantee) < 0)
		return fail("grant --grantee");
	if (strcmp(o.grantee, "*") == 0 && (g.perms & RLY_PERM_GRANT))
		return tool_bad_arg(prog, "a public grant ('*') cannot carry 'grant'");
	if (rly_identity_load(&id, o.identity) < 0)
		return fail("grant --identity");
	if (memcmp(id.pk, owner, RLY_ID_LEN) != 0)
		fprintf(
		    stderr,
		    "%s: note: this identity is not the stream's owner; the grant is valid only "
		    "while it holds 'grant' on the stream\n",
		    prog);
	status = rly_grant_sign(&g, &id);
	sodium_memzero(&id, sizeof(id));
	if (status < 0 || rly_grant_format(&g, line, sizeof(line)) < 0)
		return fail("grant");
	if (o.out == NULL) {
		printf("%s\n", line);
		return 0;
	}
	if (append_line(o.out, line) < 0)
		return fail("grant --out");
	return 0;
}

/* ------------------------------------------------------------------ check */

struct refused {
	char *file;
	unsigned line;
	char *why;
};

struct check_state {
	struct refused *refused;
	size_t n_refused, cap;
	unsigned kept, valid;
	int oom;
};

static void on_refused(void *ctx, const char *file, unsigned line, const char *why)
{
	struct check_state *st = ctx;

	if (st->n_refused == st->cap) {
		size_t cap = st->cap ? 2 * st->cap : 16;
		struct refused *p = realloc(st->refused, cap * sizeof(*p));

		if (p == NULL) {
			st->oom = 1;
			return;
		}
		st->refused = p;
		st->cap = cap;
	}
	st->refused[st->n_refused++] = (struct refused){strdup(file), line, strdup(why)};
}

static void on_kept(void *ctx, const struct rly_grant *g, int valid)
{
	struct check_state *st = ctx;
	char grantee[2 * RLY_ID_LEN + 1], perms[32];

	if (sodium_is_zero(g->grantee, RLY_ID_LEN))
		strcpy(grantee, "*");
	else
		rly_pk_format(g->grantee, grantee);
	perms_text(g->perms, perms);
	printf("grant %s grantee=%s perms=%s not-after=%" PRIu64 " %s\n", g->stream, grantee, perms,
	       g->not_after, valid ? "valid" : "not-valid");
	st->kept++;
	st->valid += valid != 0;
}

static int by_origin(const void *a, const void *b)
{
	const struct refused *x = a, *y = b;
	int c = strcmp(x->file ? x->file : "", y->file ? y->file : "");

	return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int on_check_opt(void *ctx, int c, const char *arg)
{
	if (c == 'a')
		*(const char **)ctx = arg;
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"at", required_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {0}};
	struct check_state st = {0};
	struct rly_registry *r = NULL;
	const char *at = NULL;
	uint64_t now = (uint64_t)time(NULL);
	int status, first, rc;

	if ((first = parse_opts("check", argc, argv, lo, usage_check, on_check_opt, &at, &status)) <
	    0)
		return status;
	if (argc - first != 1)
		return tool_bad_arg(PROG " check", "expected exactly one DIR");
	if (at && tool_parse_u64(PROG " check", "--at", at, 0, UINT64_MAX, &now) < 0)
		return 2;
	if ((rc = rly_registry_load(&r, argv[first], on_refused, &st)) < 0)
		return fail("check");
	rly_registry_foreach(r, now, on_kept, &st);
	if (st.n_refused)
		qsort(st.refused, st.n_refused, sizeof(*st.refused), by_origin);
	for (size_t i = 0; i < st.n_refused; i++) {
		printf("refused %s:%u: %s\n", st.refused[i].file ? st.refused[i].file : "?",
		       st.refused[i].line, st.refused[i].why ? st.refused[i].why : "?");
		free(st.refused[i].file);
		free(st.refused[i].why);
	}
	printf("%u grants kept (%u valid at %" PRIu64 "), %zu lines refused%s\n", st.kept, st.valid,
	       now, st.n_refused, st.oom ? " (and more not listed: out of memory)" : "");
	free(st.refused);
	rly_registry_free(r);
	return st.n_refused || st.oom ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
	    {"new", cmd_new},	  {"show", cmd_show},	{"stream", cmd_stream},
	    {"grant", cmd_grant}, {"check", cmd_check},
	};

	if (argc < 2) {
		fputs(usage_main, stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		fputs(usage_main, stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[1], cmds[i].name) == 0)
			return cmds[i].fn(argc - 1, argv + 1);
	return tool_bad_arg(PROG, "unknown command '%s'", argv[1]);
}
