/*
 * save.c - benchmark of the agent's saves through the public API.
 *
 *	bench-save [--dir DIR] [--count N] [--saves N] [--ndjson FILE]
 *
 * The records come from --ndjson FILE (e.g. `gridgen --type person
 * --count N`) or, without it, from a built-in generator of --count valid
 * persons (distinct GB 11643 ids).
 * 0. fsync: 200 x (4 KiB pwrite + fdatasync) in DIR, the floor of any
 *    durable save on that disk at that moment (after a sync).
 * 1. Single saves: --saves ag_collect calls (default 2000) of the first
 *    records, each one fsync'd transaction; prints p50/p90/p99/max
 *    latency.  0 and 1 are bench/lat.h, shared with bench/pii.c.
 * 2. Bulk import: ag_import_ndjson of all the records in one
 *    transaction; prints records per second.
 *
 * 3. The floor: the same rows (record with the input line as its fields,
 *    and its pending creation) inserted through the SQLite seam, on one
 *    thread, with no JSON parsing,
 *    validation or encoding: what the store's schema and the disk cost on
 *    their own.
 *
 * Results go to stdout as "name value unit" lines that bench/bench-save.sh
 * turns into bench/RESULTS.md.  DIR (default a new /tmp directory) should
 * be on the disk being measured.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"
#include "db.h"
#include "gridagent.h"
#include "lat.h"
#include "uuid.h"
#include "core/banned.h"

/* A valid id number: region 110105, a birth date from i, check digit. */
static void
idcard(char out[19], long i)
{
	static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10,
		5, 8, 4, 2 };
	static const char map[] = "10X98765432";
	int k, sum = 0;

	snprintf(out, 19, "110105%04ld%02ld%02ld%03ld", 1950 + (i / 28 / 12 /
	    1000) % 60, 1 + (i / 28 / 1000) % 12, 1 + (i / 1000) % 28,
	    i % 1000);
	for (k = 0; k < 17; k++)
		sum += (out[k] - '0') * w[k];
	out[17] = map[sum % 11];
	out[18] = '\0';
}

static int
person(struct gs_buf *b, long i)
{
	static const char *const family[] = { "王", "李", "张", "刘", "陈",
		"杨", "黄", "赵" };
	static const char *const given[] = { "伟", "芳", "娜", "敏", "静",
		"强", "磊", "军" };
	char id[19];

	idcard(id, i);
	return gs_buf_printf(b, "{\"name\":\"%s%s\",\"pop_type\":\"%s\","
	    "\"id_number\":\"%s\",\"phone\":\"138%08ld\",\"address\":"
	    "\"深圳市大鹏新区葵涌街道%ld号%ld室\",\"note\":\"bench\"}",
	    family[i % 8], given[(i / 8) % 8], i % 3 ? "REGISTERED" :
	    "FLOATING\",\"inflow_reason\":\"WORK", id, i % 100000000,
	    1 + i % 300, 100 + i % 50);
}

/*
 * The floor: count rows of record + pending_creation from the lines in
 * data, in one transaction through the seam, as the store would write them
 * but without any per-record JSON work.  Returns GS_OK and *secs.
 */
static int
floor_rate(const char *home, const char *data, size_t len, double *secs,
    size_t *rows)
{
	static const char rec_sql[] =
	    "INSERT INTO record(uuid, type, form_version, grid, fields, rev, "
	    "deleted, created_at, updated_at, author) "
	    "VALUES(?1, 'person', 1, 'G', ?2, 0, 0, ?3, ?3, 'bench')";
	/* A creation waits in pending_creation until it is batched (agent
	 * migration 0008): its change row is written then, not here. */
	static const char chg_sql[] =
	    "INSERT INTO pending_creation(change_id, uuid) VALUES(?1, ?2)";
	struct gs_db *db = NULL;
	struct gs_writeback *wb = NULL;
	struct gs_stmt *rec = NULL, *chg = NULL;
	char path[600], u[GS_UUID_LEN + 1], c[GS_UUID_LEN + 1];
	size_t off = 0, n = 0;
	int64_t t0, now = gs_now_ms();
	int r;

	snprintf(path, sizeof(path), "%s.db", home);
	if ((r = gs_db_open(path, "agent", GS_DB_CREATE, &db)) != GS_OK ||
	    (r = gs_db_exec(db, "PRAGMA cache_size = -16384")) != GS_OK ||
	    (r = gs_stmt_prepare(db, rec_sql, &rec)) != GS_OK ||
	    (r = gs_stmt_prepare(db, chg_sql, &chg)) != GS_OK)
		goto out;
	/* The store's settings: its page cache (agent/store.c) and the
	 * bulk import's early writeback. */
	t0 = gs_mono_us();
	if ((r = gs_db_begin(db)) != GS_OK)
		goto out;
	wb = gs_db_writeback_start(db);
	while (off < len) {
		const char *l = data + off, *nl = memchr(l, '\n', len - off);
		size_t k = nl ? (size_t)(nl - l) : len - off;

		off += k + 1;
		if (k == 0)
			continue;
		gs_uuid_v7(u);
		gs_uuid_v7(c);
		if ((r = gs_stmt_bind_text(rec, 1, u)) != GS_OK ||
		    (r = gs_stmt_bind_textn(rec, 2, l, k)) != GS_OK ||
		    (r = gs_stmt_bind_int64(rec, 3, now)) != GS_OK ||
		    (r = gs_stmt_step(rec)) != GS_DONE ||
		    (r = gs_stmt_bind_text(chg, 1, c)) != GS_OK ||
		    (r = gs_stmt_bind_text(chg, 2, u)) != GS_OK ||
		    (r = gs_stmt_step(chg)) != GS_DONE) {
			gs_db_rollback(db);
			goto out;
		}
		n++;
	}
	if ((r = gs_db_commit(db)) != GS_OK)
		goto out;
	*secs = (gs_mono_us() - t0) / 1e6;
	*rows = n;
out:
	gs_db_writeback_stop(wb);
	gs_db_close(db);
	return r;
}

static int
usage(void)
{
	fprintf(stderr, "usage: bench-save [--dir DIR] [--count N] "
			"[--saves N] [--ndjson FILE]\n");
	return 64;
}

int
main(int argc, char **argv)
{
	const char *dir = NULL, *ndjson = NULL;
	char tmpl[] = "/tmp/gs-bench-save.XXXXXX", home[512];
	long count = 100000, saves = 2000, i;
	struct ag_store *st = NULL;
	struct gs_buf bulk;
	struct lat l;
	int64_t t0, t1;
	size_t n = 0;
	int r, a;

	for (a = 1; a < argc; a++) {
		if (a + 1 >= argc)
			return usage();
		if (strcmp(argv[a], "--dir") == 0)
			dir = argv[++a];
		else if (strcmp(argv[a], "--count") == 0)
			count = strtol(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--saves") == 0)
			saves = strtol(argv[++a], NULL, 10);
		else if (strcmp(argv[a], "--ndjson") == 0)
			ndjson = argv[++a];
		else
			return usage();
	}
	if (count < 1 || saves < 1)
		return usage();
	if (dir == NULL && (dir = mkdtemp(tmpl)) == NULL) {
		perror("mkdtemp");
		return 73;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		perror(dir);
		return 73;
	}
	gs_buf_init(&bulk, AG_MAX_IMPORT);
	if (ndjson != NULL) {
		FILE *f = fopen(ndjson, "rb");
		char chunk[65536];
		size_t k;

		if (f == NULL) {
			perror(ndjson);
			return 66;
		}
		while ((k = fread(chunk, 1, sizeof(chunk), f)) > 0)
			if ((r = gs_buf_append(&bulk, chunk, k)) != GS_OK)
				goto fail;
		fclose(f);
	} else {
		for (i = 0; i < count; i++)
			if ((r = person(&bulk, 1000000 + i)) != GS_OK ||
			    (r = gs_buf_putc(&bulk, '\n')) != GS_OK)
				goto fail;
	}

	/* 0. What one 4 KiB write + fdatasync costs on this disk right now
	 * (after flushing a previous run's writeback): the floor of any
	 * durable save. */
	if (lat_fsync_probe(dir, &l) != 0) {
		perror("fsync probe");
		return 74;
	}
	printf("fsync_p50 %.3f ms\n", l.p50);

	/* 1. Single saves, each its own fsync'd transaction. */
	snprintf(home, sizeof(home), "%s/single", dir);
	if ((r = ag_store_init(home, "440307001001001", "bench", &st))
	    != GS_OK ||
	    (r = lat_saves(st, "person", bulk.data, bulk.len, saves, &l))
	    != GS_OK)
		goto fail;
	ag_store_close(st);
	st = NULL;
	printf("single_saves %ld count\n", l.n);
	printf("single_p50 %.3f ms\n", l.p50);
	printf("single_p90 %.3f ms\n", l.p90);
	printf("single_p99 %.3f ms\n", l.p99);
	printf("single_max %.3f ms\n", l.max);

	/* 2. Bulk import of all of them in one transaction. */
	snprintf(home, sizeof(home), "%s/bulk", dir);
	if ((r = ag_store_init(home, "440307001001001", "bench", &st))
	    != GS_OK)
		goto fail;
	t0 = gs_mono_us();
	r = ag_import_ndjson(st, "person", bulk.data, bulk.len, NULL, NULL,
	    &n);
	t1 = gs_mono_us();
	if (r != GS_OK)
		goto fail;
	ag_store_close(st);
	st = NULL;
	printf("bulk_records %zu count\n", n);
	printf("bulk_bytes %zu bytes\n", bulk.len);
	printf("bulk_seconds %.3f s\n", (t1 - t0) / 1e6);
	printf("bulk_rate %.0f records/s\n", n / ((t1 - t0) / 1e6));

	/* 3. The floor, on the same input. */
	{
		double secs = 0;
		size_t rows = 0;

		snprintf(home, sizeof(home), "%s/floor", dir);
		if ((r = floor_rate(home, bulk.data, bulk.len, &secs, &rows))
		    != GS_OK)
			goto fail;
		printf("floor_seconds %.3f s\n", secs);
		printf("floor_rate %.0f records/s\n", rows / secs);
	}
	gs_buf_release(&bulk);
	return 0;
fail:
	fprintf(stderr, "bench-save: %s\n", ag_errmsg(r));
	ag_store_close(st);
	return gs_error_exit(r);
}
