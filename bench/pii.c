/*
 * pii.c - what field encryption costs the agent's saves (issue 6), side
 * by side on the same machine at the same moment:
 *
 *	bench-pii [--dir DIR] [--saves N] [--only PART] --ndjson FILE
 *
 * For a plain store (ag_store_init only) and a protected one
 * (ag_store_protect: pii sealed under the DEK, blind index on id numbers):
 *   single   N ag_collect calls of gridgen persons, each its own fsync'd
 *            transaction: p50/p90/p99 latency, after a sync and the
 *            disk's own 4 KiB write + fdatasync p50 (bench/lat.h, the
 *            same code as bench/save.c's);
 *   bulk     ag_import_ndjson of the whole FILE in one transaction:
 *            records per second;
 *   list     a masked ag_list of everything (opens every record).
 * Then the key: ag_store_protect (Argon2id derive + wrap) and
 * ag_store_unlock (derive + unwrap) wall time, 5 of each, median.
 *
 * --only PART runs one part alone: plain-single, pii-single, plain-bulk,
 * pii-bulk or key (for callgrind: bench/pii-callgrind.sh).
 *
 * Output: "name value unit" lines (bench/pii.sh writes RESULTS.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"
#include "gridagent.h"
#include "lat.h"
#include "core/banned.h"

static const char PASS[] = "correct horse battery staple";

static int
count_rec(void *ctx, const struct ag_record *rec)
{
	(void)rec;
	(*(size_t *)ctx)++;
	return 0;
}

static int
open_store(const char *dir, const char *name, int protect,
    struct ag_store **st)
{
	char home[600];
	int r;

	snprintf(home, sizeof(home), "%s/%s-%s", dir, name,
	    protect ? "pii" : "plain");
	if ((r = ag_store_init(home, "440307001001001", "bench", st)) != GS_OK)
		return r;
	return protect ? ag_store_protect(*st, PASS, sizeof(PASS) - 1) : GS_OK;
}

/* One profile's part: 0 the single saves, 1 the bulk import and masked
 * list.  main runs both profiles' single saves before either bulk import,
 * so neither profile's saves wait behind the writeback of a bulk import's
 * hundred MB (run second, the protected saves looked 0.26-0.36 ms slower
 * than the plain ones for that reason alone).  The saves are timed as
 * bench/save.c times them (bench/lat.h), after the same fsync probe. */
static int
profile(const char *dir, int protect, const struct gs_buf *in, long saves,
    int part)
{
	const char *tag = protect ? "pii" : "plain";
	struct ag_store *st = NULL;
	struct lat l;
	int64_t t0, t1;
	size_t n = 0;
	int r;

	if (part == 1)
		goto bulk;
	if ((r = open_store(dir, "single", protect, &st)) != GS_OK)
		goto out;
	if (lat_fsync_probe(dir, &l) != 0) {
		r = GS_FAIL(GS_EIO, "fsync probe in %s failed", dir);
		goto out;
	}
	printf("%s_fsync_p50 %.3f ms\n", tag, l.p50);
	if ((r = lat_saves(st, "person", in->data, in->len, saves, &l))
	    != GS_OK)
		goto out;
	printf("%s_single_p50 %.3f ms\n", tag, l.p50);
	printf("%s_single_p90 %.3f ms\n", tag, l.p90);
	printf("%s_single_p99 %.3f ms\n", tag, l.p99);
	goto out;

bulk:
	if ((r = open_store(dir, "bulk", protect, &st)) != GS_OK)
		goto out;
	t0 = gs_mono_us();
	r = ag_import_ndjson(st, "person", in->data, in->len, NULL, NULL, &n);
	t1 = gs_mono_us();
	if (r != GS_OK)
		goto out;
	printf("%s_bulk_records %zu count\n", tag, n);
	printf("%s_bulk_rate %.0f records/s\n", tag, n / ((t1 - t0) / 1e6));
	n = 0;
	t0 = gs_mono_us();
	r = ag_list(st, "person", AG_LIST_MASK, count_rec, &n);
	t1 = gs_mono_us();
	if (r != GS_OK)
		goto out;
	printf("%s_list_masked_rate %.0f records/s\n", tag,
	    n / ((t1 - t0) / 1e6));
out:
	ag_store_close(st);
	return r;
}

static int
key_times(const char *dir)
{
	struct ag_store *st = NULL;
	int64_t prot[5], unl[5], t0;
	char home[600];
	int i, r = GS_OK;

	for (i = 0; i < 5 && r == GS_OK; i++) {
		snprintf(home, sizeof(home), "%s/key%d", dir, i);
		if ((r = ag_store_init(home, "g", "w", &st)) != GS_OK)
			break;
		t0 = gs_mono_us();
		r = ag_store_protect(st, PASS, sizeof(PASS) - 1);
		prot[i] = gs_mono_us() - t0;
		ag_store_lock(st);
		t0 = gs_mono_us();
		if (r == GS_OK)
			r = ag_store_unlock(st, PASS, sizeof(PASS) - 1);
		unl[i] = gs_mono_us() - t0;
		ag_store_close(st);
		st = NULL;
	}
	if (r != GS_OK)
		return r;
	qsort(prot, 5, sizeof(prot[0]), lat_cmp);
	qsort(unl, 5, sizeof(unl[0]), lat_cmp);
	printf("protect_median %.1f ms\n", prot[2] / 1000.0);
	printf("unlock_median %.1f ms\n", unl[2] / 1000.0);
	return GS_OK;
}

int
main(int argc, char **argv)
{
	static const char *const parts[] = { "plain-single", "pii-single",
		"plain-bulk", "pii-bulk", "key" };
	const char *dir = NULL, *ndjson = NULL, *only = NULL;
	char tmpl[] = "/tmp/gs-bench-pii.XXXXXX", chunk[65536];
	struct gs_buf in;
	long saves = 2000;
	FILE *f;
	size_t k;
	int r = GS_OK, a, p;

	for (a = 1; a + 1 < argc; a += 2) {
		if (strcmp(argv[a], "--dir") == 0)
			dir = argv[a + 1];
		else if (strcmp(argv[a], "--saves") == 0)
			saves = strtol(argv[a + 1], NULL, 10);
		else if (strcmp(argv[a], "--ndjson") == 0)
			ndjson = argv[a + 1];
		else if (strcmp(argv[a], "--only") == 0)
			only = argv[a + 1];
		else
			break;
	}
	for (p = 0; only != NULL && p < 5; p++)
		if (strcmp(only, parts[p]) == 0)
			break;
	if (a != argc || ndjson == NULL || saves < 10 || p == 5) {
		fprintf(stderr, "usage: bench-pii [--dir DIR] [--saves N] "
				"[--only plain-single|pii-single|plain-bulk|"
				"pii-bulk|key] --ndjson FILE\n");
		return 64;
	}
	if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL) {
		perror("mkdtemp");
		return 73;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		perror(dir);
		return 73;
	}
	gs_buf_init(&in, AG_MAX_IMPORT);
	if ((f = fopen(ndjson, "rb")) == NULL) {
		perror(ndjson);
		return 66;
	}
	while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (gs_buf_append(&in, chunk, k) != GS_OK)
			return 65;
	fclose(f);
	/* Parts in order: both profiles' single saves, both bulk imports,
	 * the key (p is the --only part, or 0 for all). */
	for (a = only != NULL ? p : 0; r == GS_OK && a < 5; a++) {
		r = a < 4 ? profile(dir, a % 2, &in, saves, a / 2) :
		    key_times(dir);
		if (only != NULL)
			break;
	}
	if (r != GS_OK) {
		fprintf(stderr, "bench-pii: %s\n", ag_errmsg(r));
		return gs_error_exit(r);
	}
	gs_buf_release(&in);
	return 0;
}
