/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The stream registry: loading a directory of grant lines (grant.c reads and checks each one) and
 * the queries of registry.h. docs/registry.md describes the model for operators.
 *
 * Loading does all the expensive work once: every signature is verified, and every grant gets a
 * `valid_until` time, the end of the longest-lived chain of GRANT delegations from the stream's
 * owner that backs it. Validity only ever ends (a grant valid at t is valid at every earlier time,
 * since each link is "t < not_after"), so one number per grant answers every question about time,
 * and rly_registry_allows(), which relay-control asks on every subscribe, is two binary searches
 * in sorted arrays and a scan of the caller's own grants.
 */
#include "security/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/err.h"
#include "security/identity.h"
#include "security/sodium_ready.h"

/* Bounds on what a registry directory can make relay-control allocate and verify. */
#define MAX_GRANTS     1000000u
#define MAX_FILE_BYTES (64u << 20)
#define MAX_LINE       1024u
#define GRANTS_SUFFIX  ".grants"

static const uint8_t zero_id[RLY_ID_LEN];

struct rec {
	uint32_t stream; /* index into streams */
	uint32_t perms;
	uint64_t not_after;
	uint64_t issued;
	uint64_t valid_until; /* end of the best delegation chain; 0: never valid */
	uint32_t file;	      /* while loading: where it came from, for warnings and ordering */
	uint32_t line;
	uint8_t grantee[RLY_ID_LEN];
	uint8_t issuer[RLY_ID_LEN];
};

struct stream_ent {
	char *name;
	uint8_t key[RLY_STREAM_KEY_LEN];
	uint8_t owner[RLY_ID_LEN];
	uint32_t first, count; /* its records, recs[first .. first + count) */
};

struct rly_registry {
	struct stream_ent *streams; /* sorted by key */
	uint32_t n_streams;
	struct rec *recs; /* grouped by stream, then sorted by grantee, then file and line */
	uint32_t n_recs;
	uint64_t *expiries; /* every not_after, sorted */
};

/* Everything a load needs while it reads; only the finished arrays move into the registry. */
struct loader {
	const char *dir;
	rly_registry_warn_fn warn;
	void *ctx;
	char **files;
	size_t n_files;
	struct rec *recs;
	size_t n_recs, cap_recs;
	struct stream_ent *streams;
	size_t n_streams, cap_streams;
	uint32_t *slots; /* open-addressing table of stream index + 1, by key */
	size_t n_slots;
	size_t n_seen; /* grant records read, signed or not */
	int full;      /* the grant limit was reached: read nothing more */
};

static void warn(struct loader *l, uint32_t file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void warn(struct loader *l, uint32_t file, unsigned line, const char *fmt, ...)
{
	char path[4096 + 256], why[1024];
	va_list ap;

	if (l->warn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", l->dir, l->files[file]);
	l->warn(l->ctx, path, line, why);
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 64;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	p = realloc(*arr, n * elem);
	if (p == NULL)
		return rly_err_set(ENOMEM, "registry: out of memory for %zu entries", n);
	*arr = p;
	*cap = n;
	return 0;
}

static uint64_t key_hash(const uint8_t key[RLY_STREAM_KEY_LEN])
{
	uint64_t h;

	/* The key is already a BLAKE2b output: any 8 of its bytes are a good hash. */
	memcpy(&h, key, sizeof(h));
	return h;
}

static int rehash(struct loader *l)
{
	size_t n = l->n_slots ? 2 * l->n_slots : 1024;
	uint32_t *slots = calloc(n, sizeof(*slots));

	if (slots == NULL)
		return rly_err_set(ENOMEM, "registry: out of memory for the stream table");
	for (size_t i = 0; i < l->n_streams; i++) {
		size_t s = key_hash(l->streams[i].key) & (n - 1);

		while (slots[s])
			s = (s + 1) & (n - 1);
		slots[s] = (uint32_t)i + 1;
	}
	free(l->slots);
	l->slots = slots;
	l->n_slots = n;
	return 0;
}

/* The index of @p g's stream, added on first sight. */
static int intern_stream(struct loader *l, const struct rly_grant *g, uint32_t *idx)
{
	size_t s;
	int rc;

	if (2 * (l->n_streams + 1) > l->n_slots && (rc = rehash(l)) < 0)
		return rc;
	for (s = key_hash(g->stream_key) & (l->n_slots - 1); l->slots[s];
	     s = (s + 1) & (l->n_slots - 1)) {
		if (memcmp(l->streams[l->slots[s] - 1].key, g->stream_key, RLY_STREAM_KEY_LEN) ==
		    0) {
			*idx = l->slots[s] - 1;
			return 0;
		}
	}
	if ((rc = grow((void **)&l->streams, &l->cap_streams, l->n_streams + 1,
		       sizeof(*l->streams))) < 0)
		return rc;
	struct stream_ent *e = &l->streams[l->n_streams];
	memset(e, 0, sizeof(*e));
	if ((e->name = strdup(g->stream)) == NULL)
		return rly_err_set(ENOMEM, "registry: out of memory");
	memcpy(e->key, g->stream_key, RLY_STREAM_KEY_LEN);
	memcpy(e->owner, g->owner, RLY_ID_LEN);
	l->slots[s] = (uint32_t)l->n_streams + 1;
	*idx = (uint32_t)l->n_streams++;
	return 0;
}

static int on_line(struct loader *l, uint32_t file, unsigned lineno, const char *text)
{
	char hex[2 * RLY_ID_LEN + 1];
	struct rly_grant g;
	struct rec *r;
	uint32_t stream = 0;
	int rc;

	rc = rly_grant_parse_line(text, &g);
	if (rc < 0) {
		warn(l, file, lineno, "%s", rly_err_msg());
		return 0;
	}
	if (rc == 0)
		return 0;
	/* Counted before the signature check, so that the limit also bounds the verifications. */
	if (++l->n_seen > MAX_GRANTS) {
		warn(l, file, lineno,
		     "more than %u grant records: this one and every later one are ignored",
		     MAX_GRANTS);
		l->full = 1;
		return 0;
	}
	if (!rly_grant_sig_ok(&g)) {
		rly_pk_format(g.issuer, hex);
		warn(l, file, lineno, "bad signature: the record is not signed by its issuer %s",
		     hex);
		return 0;
	}
	if ((rc = intern_stream(l, &g, &stream)) < 0 ||
	    (rc = grow((void **)&l->recs, &l->cap_recs, l->n_recs + 1, sizeof(*l->recs))) < 0)
		return rc;
	r = &l->recs[l->n_recs++];
	r->stream = stream;
	r->perms = g.perms;
	r->not_after = g.not_after;
	r->issued = g.issued;
	r->valid_until = 0;
	r->file = file;
	r->line = lineno;
	memcpy(r->grantee, g.grantee, RLY_ID_LEN);
	memcpy(r->issuer, g.issuer, RLY_ID_LEN);
	return 0;
}

/* Read one file line by line; lines over MAX_LINE and NUL bytes are refused, not truncated. */
static int load_file(struct loader *l, int dfd, uint32_t file)
{
	const char *name = l->files[file];
	char line[MAX_LINE + 2];
	size_t len = 0, total = 0;
	unsigned lineno = 1;
	int fd, c, bad = 0, rc = 0;
	struct stat st;
	FILE *f;

	/* O_NONBLOCK: a FIFO named *.grants must not hang the load; it is refused below. */
	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		warn(l, file, 0, "cannot open: %s", strerror(errno));
		return 0;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		warn(l, file, 0, "not a regular file; skipped");
		close(fd);
		return 0;
	}
	if (st.st_size > MAX_FILE_BYTES) {
		warn(l, file, 0, "larger than 64 MiB (%lld bytes); skipped", (long long)st.st_size);
		close(fd);
		return 0;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		close(fd);
		return rly_err_set(ENOMEM, "registry: fdopen: %s", strerror(errno));
	}
	while (!l->full && rc == 0 && (c = getc_unlocked(f)) != EOF) {
		/* The file may grow while it is read; the bound holds for what is read. */
		if (++total > MAX_FILE_BYTES) {
			warn(l, file, lineno,
			     "file grew past 64 MiB while being read; rest ignored");
			break;
		}
		if (c != '\n') {
			if (c == '\0')
				bad |= 2;
			else if (len <= MAX_LINE)
				line[len++] = (char)c;
			else
				bad |= 1;
			continue;
		}
		line[len] = '\0';
		if (bad & 1)
			warn(l, file, lineno, "line longer than %u bytes", MAX_LINE);
		else if (bad & 2)
			warn(l, file, lineno, "NUL byte in line");
		else
			rc = on_line(l, file, lineno, line);
		len = 0;
		bad = 0;
		lineno++;
	}
	/* A last line without its newline still counts. */
	if (!l->full && rc == 0 && (len > 0 || bad)) {
		line[len] = '\0';
		if (bad & 1)
			warn(l, file, lineno, "line longer than %u bytes", MAX_LINE);
		else if (bad & 2)
			warn(l, file, lineno, "NUL byte in line");
		else
			rc = on_line(l, file, lineno, line);
	}
	if (rc == 0 && ferror(f))
		warn(l, file, lineno, "read error: %s", strerror(errno));
	fclose(f);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_grants_file(const char *name)
{
	size_t n = strlen(name), sl = strlen(GRANTS_SUFFIX);

	/* Like the shell's *.grants: hidden files (editor and sync leftovers) do not count. */
	return name[0] != '.' && n > sl && strcmp(name + n - sl, GRANTS_SUFFIX) == 0;
}

static int list_files(struct loader *l, DIR *d)
{
	size_t cap = 0;
	struct dirent *e;
	int rc;

	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (!is_grants_file(e->d_name))
			continue;
		if ((rc = grow((void **)&l->files, &cap, l->n_files + 1, sizeof(char *))) < 0)
			return rc;
		if ((l->files[l->n_files] = strdup(e->d_name)) == NULL)
			return rly_err_set(ENOMEM, "registry: out of memory");
		l->n_files++;
		errno = 0;
	}
	if (errno)
		return rly_err_set(errno, "registry %s: %s", l->dir, strerror(errno));
	if (l->n_files)
		qsort(l->files, l->n_files, sizeof(char *), by_name);
	return 0;
}

/* ------------------------------------------------------------------ resolving delegation */

static int by_key(const void *a, const void *b)
{
	return memcmp(((const struct stream_ent *)a)->key, ((const struct stream_ent *)b)->key,
		      RLY_STREAM_KEY_LEN);
}

static int by_stream_grantee_origin(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c;

	if (x->stream != y->stream)
		return x->stream < y->stream ? -1 : 1;
	if ((c = memcmp(x->grantee, y->grantee, RLY_ID_LEN)) != 0)
		return c;
	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* First record of [lo, hi) with grantee >= @p who (records sorted by grantee). */
static uint32_t lower_bound(const struct rec *recs, uint32_t lo, uint32_t hi, const uint8_t *who)
{
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (memcmp(recs[mid].grantee, who, RLY_ID_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The first record of @p who's group in [lo, hi), or UINT32_MAX if nothing is granted to it. */
static uint32_t group_of(const struct rec *recs, uint32_t lo, uint32_t hi, const uint8_t *who)
{
	uint32_t i = lower_bound(recs, lo, hi, who);

	return i < hi && memcmp(recs[i].grantee, who, RLY_ID_LEN) == 0 ? i : UINT32_MAX;
}

/*
 * For each grantee of [lo, hi), at the index of its group's first record: the latest @p until
 * among its records that carry GRANT. Done once per round, so that an issuer with many grants of
 * its own costs one lookup per record it issued, not a scan of its grants for each of them.
 */
static void best_grant_per_group(const struct rec *recs, const uint64_t *until, uint32_t lo,
				 uint32_t hi, uint64_t *best)
{
	for (uint32_t i = lo, j; i < hi; i = j) {
		uint64_t b = 0;

		for (j = i; j < hi && memcmp(recs[j].grantee, recs[i].grantee, RLY_ID_LEN) == 0;
		     j++)
			if ((recs[j].perms & RLY_PERM_GRANT) && until[j - lo] > b)
				b = until[j - lo];
		best[i - lo] = b;
	}
}

/*
 * valid_until of each record of one stream: min(not_after, until when its issuer holds GRANT),
 * where the owner holds it forever. Round k computes it from round k - 1 only (not in place), so
 * after RLY_GRANT_MAX_DEPTH rounds exactly the chains of at most that many grants count; a cycle
 * not rooted at the owner never gets above 0, and the rounds stop early once nothing changes.
 * @p until, @p best and @p issuer_group have room for the stream's records.
 */
static void resolve_stream(struct rec *recs, const struct stream_ent *s, uint64_t *until,
			   uint64_t *best, uint32_t *issuer_group)
{
	uint32_t lo = s->first, hi = s->first + s->count;

	for (uint32_t i = lo; i < hi; i++) {
		until[i - lo] = 0;
		issuer_group[i - lo] = memcmp(recs[i].issuer, s->owner, RLY_ID_LEN) == 0
					   ? UINT32_MAX - 1 /* the owner */
					   : group_of(recs, lo, hi, recs[i].issuer);
	}
	for (unsigned round = 0; round < RLY_GRANT_MAX_DEPTH; round++) {
		int changed = 0;

		best_grant_per_group(recs, until, lo, hi, best);
		for (uint32_t i = lo; i < hi; i++) {
			uint32_t g = issuer_group[i - lo];
			uint64_t issuer = g == UINT32_MAX - 1 ? UINT64_MAX
					  : g == UINT32_MAX   ? 0
							      : best[g - lo];
			uint64_t u = recs[i].not_after < issuer ? recs[i].not_after : issuer;

			changed |= u != until[i - lo];
			until[i - lo] = u; /* in place is safe: this round reads only best[] */
		}
		if (!changed)
			break;
	}
	for (uint32_t i = lo; i < hi; i++)
		recs[i].valid_until = until[i - lo];
}

static void set_ranges(struct stream_ent *streams, uint32_t n_streams, const struct rec *recs,
		       uint32_t n_recs)
{
	uint32_t i = 0;

	for (uint32_t s = 0; s < n_streams; s++) {
		streams[s].first = i;
		while (i < n_recs && recs[i].stream == s)
			i++;
		streams[s].count = i - streams[s].first;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A refused record, remembered so that the warnings come out in file and line order. */
struct refusal {
	uint32_t file, line, rec;
	int cycle;
};

static int by_origin(const void *a, const void *b)
{
	const struct refusal *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Warn about the records no chain from the owner backs, in file and line order. */
static int warn_unbacked(struct loader *l, uint64_t *ones, uint64_t *holds)
{
	char hex[2 * RLY_ID_LEN + 1];
	struct refusal *ref;
	uint32_t n_ref = 0;

	for (size_t i = 0; i < l->n_recs; i++)
		n_ref += l->recs[i].valid_until == 0;
	if (n_ref == 0)
		return 0;
	if ((ref = malloc(n_ref * sizeof(*ref))) == NULL)
		return rly_err_set(ENOMEM, "registry: out of memory");
	n_ref = 0;
	for (size_t i = 0; i < l->n_recs; i++)
		ones[i] = 1;
	for (size_t s = 0; s < l->n_streams; s++) {
		const struct stream_ent *e = &l->streams[s];
		uint32_t lo = e->first, hi = e->first + e->count;

		/* Which grantees hold GRANT at all, whatever the chain: the reason differs. */
		best_grant_per_group(l->recs, ones + lo, lo, hi, holds + lo);
		for (uint32_t i = lo; i < hi; i++) {
			uint32_t g;

			if (l->recs[i].valid_until != 0)
				continue;
			g = group_of(l->recs, lo, hi, l->recs[i].issuer);
			ref[n_ref++] = (struct refusal){
			    .file = l->recs[i].file,
			    .line = l->recs[i].line,
			    .rec = i,
			    .cycle = g != UINT32_MAX && holds[g] != 0,
			};
		}
	}
	qsort(ref, n_ref, sizeof(*ref), by_origin);
	for (uint32_t i = 0; i < n_ref; i++) {
		const struct rec *x = &l->recs[ref[i].rec];

		rly_pk_format(x->issuer, hex);
		if (ref[i].cycle)
			warn(l, ref[i].file, ref[i].line,
			     "issuer %s holds 'grant' on %s only through a cycle or a chain longer "
			     "than %u delegations from the owner",
			     hex, l->streams[x->stream].name, RLY_GRANT_MAX_DEPTH);
		else
			warn(l, ref[i].file, ref[i].line,
			     "issuer %s is neither the owner of %s nor holds 'grant' on it", hex,
			     l->streams[x->stream].name);
	}
	free(ref);
	return 0;
}

/* Sort, resolve every stream, warn about and drop records no chain backs, build the registry. */
static int finish(struct loader *l, struct rly_registry *r)
{
	uint32_t *remap = NULL, *groups = NULL, n = (uint32_t)l->n_recs, kept = 0;
	uint64_t *until = NULL, *best = NULL;
	int rc;

	remap = malloc((l->n_streams + 1) * sizeof(*remap));
	groups = malloc((n + 1) * sizeof(*groups));
	until = malloc((n + 1) * sizeof(*until));
	best = malloc((n + 1) * sizeof(*best));
	r->streams = calloc(l->n_streams + 1, sizeof(*r->streams));
	r->expiries = malloc((n + 1) * sizeof(*r->expiries));
	if (!remap || !groups || !until || !best || !r->streams || !r->expiries) {
		rc = rly_err_set(ENOMEM, "registry: out of memory for %u grants", n);
		goto out;
	}
	/* Streams by key, so that queries can binary-search them; records follow their stream. */
	for (size_t i = 0; i < l->n_streams; i++)
		l->streams[i].first = (uint32_t)i; /* the index records use, across the sort */
	if (n > 0) { /* an empty registry has no arrays at all, and qsort wants one */
		qsort(l->streams, l->n_streams, sizeof(*l->streams), by_key);
		for (size_t i = 0; i < l->n_streams; i++)
			remap[l->streams[i].first] = (uint32_t)i;
		for (uint32_t i = 0; i < n; i++)
			l->recs[i].stream = remap[l->recs[i].stream];
		qsort(l->recs, n, sizeof(*l->recs), by_stream_grantee_origin);
	}
	set_ranges(l->streams, (uint32_t)l->n_streams, l->recs, n);

	for (size_t s = 0; s < l->n_streams; s++)
		resolve_stream(l->recs, &l->streams[s], until, best, groups);
	if ((rc = warn_unbacked(l, until, best)) < 0)
		goto out;

	/* Keep the backed records in order; a stream left without records goes. */
	for (size_t s = 0; s < l->n_streams; s++)
		remap[s] = UINT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		struct rec x = l->recs[i];

		if (x.valid_until == 0)
			continue;
		if (remap[x.stream] == UINT32_MAX) {
			r->streams[r->n_streams] = l->streams[x.stream];
			l->streams[x.stream].name = NULL; /* moved */
			remap[x.stream] = r->n_streams++;
		}
		x.stream = remap[x.stream];
		l->recs[kept++] = x;
	}
	r->recs = l->recs;
	r->n_recs = kept;
	l->recs = NULL;
	set_ranges(r->streams, r->n_streams, r->recs, r->n_recs);
	for (uint32_t i = 0; i < kept; i++)
		r->expiries[i] = r->recs[i].not_after;
	qsort(r->expiries, kept, sizeof(*r->expiries), cmp_u64);
	rc = 0;
out:
	free(remap);
	free(groups);
	free(until);
	free(best);
	return rc;
}

static void loader_free(struct loader *l)
{
	for (size_t i = 0; i < l->n_files; i++)
		free(l->files[i]);
	free(l->files);
	for (size_t i = 0; i < l->n_streams; i++)
		free(l->streams[i].name);
	free(l->streams);
	free(l->recs);
	free(l->slots);
}

int rly_registry_load(struct rly_registry **out, const char *dir, rly_registry_warn_fn warn_fn,
		      void *ctx)
{
	struct loader l = {.dir = dir, .warn = warn_fn, .ctx = ctx};
	struct rly_registry *r = NULL;
	DIR *d = NULL;
	int rc;

	if ((rc = rly_sodium_ready()) < 0)
		return rc;
	d = opendir(dir);
	if (d == NULL)
		return rly_err_set(errno, "registry %s: %s", dir, strerror(errno));
	if ((rc = list_files(&l, d)) < 0)
		goto out;
	for (size_t i = 0; i < l.n_files && !l.full; i++)
		if ((rc = load_file(&l, dirfd(d), (uint32_t)i)) < 0)
			goto out;
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		rc = rly_err_set(ENOMEM, "registry: out of memory");
		goto out;
	}
	if ((rc = finish(&l, r)) < 0)
		goto out;
	*out = r;
	r = NULL;
	rc = (int)(*out)->n_recs;
out:
	if (rc < 0)
		rly_err_wrap("load registry %s", dir);
	rly_registry_free(r);
	loader_free(&l);
	closedir(d);
	return rc;
}

void rly_registry_free(struct rly_registry *r)
{
	if (r == NULL)
		return;
	for (uint32_t i = 0; i < r->n_streams; i++)
		free(r->streams[i].name);
	free(r->streams);
	free(r->recs);
	free(r->expiries);
	free(r);
}

/* ------------------------------------------------------------------ queries */

static const struct stream_ent *find_stream(const struct rly_registry *r,
					    const uint8_t key[RLY_STREAM_KEY_LEN])
{
	uint32_t lo = 0, hi = r->n_streams;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int c = memcmp(r->streams[mid].key, key, RLY_STREAM_KEY_LEN);

		if (c == 0)
			return &r->streams[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The permissions @p who holds on stream @p s at @p now by grants made out to it. */
static uint32_t perms_of(const struct rly_registry *r, const struct stream_ent *s,
			 const uint8_t *who, uint64_t now)
{
	uint32_t perms = 0, end = s->first + s->count;

	for (uint32_t i = lower_bound(r->recs, s->first, end, who);
	     i < end && memcmp(r->recs[i].grantee, who, RLY_ID_LEN) == 0; i++)
		if (now < r->recs[i].valid_until)
			perms |= r->recs[i].perms;
	return perms;
}

int rly_registry_allows(const struct rly_registry *r, const uint8_t key[RLY_STREAM_KEY_LEN],
			const uint8_t *who, uint32_t perm, uint64_t now)
{
	const struct stream_ent *s;
	uint32_t perms;

	if (r == NULL || perm == 0 || (s = find_stream(r, key)) == NULL)
		return 0;
	/* Several grants may add up: publish from one, subscribe from another, or the public's. */
	perms = perms_of(r, s, zero_id, now);
	if (who != NULL && !sodium_is_zero(who, RLY_ID_LEN))
		perms |= perms_of(r, s, who, now);
	return (perms & perm) == perm;
}

int rly_registry_publishers(const struct rly_registry *r, const uint8_t key[RLY_STREAM_KEY_LEN],
			    uint64_t now, uint8_t (*out)[RLY_ID_LEN], unsigned max,
			    int *public_publish)
{
	const struct stream_ent *s;
	const uint8_t *last = NULL;
	int count = 0;

	if (public_publish)
		*public_publish = 0;
	if (r == NULL || (s = find_stream(r, key)) == NULL)
		return 0;
	for (uint32_t i = s->first; i < s->first + s->count; i++) {
		const struct rec *x = &r->recs[i];

		if (!(x->perms & RLY_PERM_PUBLISH) || now >= x->valid_until)
			continue;
		if (sodium_is_zero(x->grantee, RLY_ID_LEN)) {
			if (public_publish)
				*public_publish = 1;
			continue;
		}
		/* Sorted by grantee: a second grant to the same identity is adjacent. */
		if (last != NULL && memcmp(last, x->grantee, RLY_ID_LEN) == 0)
			continue;
		last = x->grantee;
		if ((unsigned)count < max)
			memcpy(out[count], x->grantee, RLY_ID_LEN);
		count++;
	}
	return count;
}

int rly_registry_streams(const struct rly_registry *r, uint8_t (*out)[RLY_STREAM_KEY_LEN],
			 unsigned max)
{
	if (r == NULL)
		return 0;
	/* Loading drops streams whose every grant was refused, so each one here has a grant. */
	for (uint32_t i = 0; i < r->n_streams && i < max; i++)
		memcpy(out[i], r->streams[i].key, RLY_STREAM_KEY_LEN);
	return (int)r->n_streams;
}

uint64_t rly_registry_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

uint64_t rly_registry_next_expiry(const struct rly_registry *r, uint64_t now)
{
	uint32_t lo = 0, hi;

	if (r == NULL)
		return 0;
	hi = r->n_recs;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (r->expiries[mid] <= now)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n_recs ? r->expiries[lo] : 0;
}

void rly_registry_foreach(const struct rly_registry *r, uint64_t now, rly_registry_grant_fn fn,
			  void *ctx)
{
	struct rly_grant g;

	if (r == NULL)
		return;
	for (uint32_t i = 0; i < r->n_recs; i++) {
		const struct rec *x = &r->recs[i];
		const struct stream_ent *s = &r->streams[x->stream];

		memset(&g, 0, sizeof(g));
		snprintf(g.stream, sizeof(g.stream), "%s", s->name);
		memcpy(g.stream_key, s->key, RLY_STREAM_KEY_LEN);
		memcpy(g.owner, s->owner, RLY_ID_LEN);
		memcpy(g.grantee, x->grantee, RLY_ID_LEN);
		g.perms = x->perms;
		g.not_after = x->not_after;
		g.issued = x->issued;
		memcpy(g.issuer, x->issuer, RLY_ID_LEN);
		fn(ctx, &g, now < x->valid_until);
	}
}
