/*
 * sync-db.c - the SQLite seam: open and migrate, refusing newer and
 * non-database files, statements, and the mapping of SQLite errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/mem.h"
#include "db.h"
#include "embedded.h"

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/gs-sync-db.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Reads a whole small file into a malloc'd buffer. */
static char *
slurp(const char *p, size_t *n)
{
	FILE *f = fopen(p, "rb");
	char *b;
	long len;

	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	b = malloc((size_t)len + 1);
	*n = fread(b, 1, (size_t)len, f);
	fclose(f);
	return b;
}

static int
file_exists(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0;
}

static int64_t
one_int(struct gs_db *db, const char *sql)
{
	struct gs_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(gs_stmt_prepare(db, sql, &st), GS_OK);
	assert_int_equal(gs_stmt_one_int64(st, -2, &v), GS_OK);
	gs_stmt_finalize(st);
	return v;
}

static void
test_open_empty(void **state)
{
	struct gs_db *db = NULL;
	int latest = gs_db_latest_version("agent");

	(void)state;
	assert_true(latest >= 1);
	assert_int_equal(gs_db_latest_version("nosuchprefix"), 0);
	/* Without CREATE a missing file is an error, and none is made. */
	assert_int_not_equal(gs_db_open(path, "agent", 0, &db), GS_OK);
	assert_null(db);
	assert_false(file_exists(path));

	assert_int_equal(gs_db_open(path, "agent", GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_version(db), latest);
	assert_int_equal(one_int(db, "SELECT count(*) FROM sqlite_schema "
				     "WHERE name IN ('meta','record','change',"
				     "'audit')"), 4);
	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	gs_db_close(db);
	gs_db_close(NULL);

	/* Opening again runs nothing and finds the same version. */
	assert_int_equal(gs_db_open(path, "agent", 0, &db), GS_OK);
	assert_int_equal(gs_db_version(db), latest);
	assert_int_equal(one_int(db, "PRAGMA user_version"), latest);
	gs_db_close(db);
}

/* The journal mode one connection answers (PRAGMA journal_mode). */
static void
assert_journal(struct gs_db *db, const char *want)
{
	struct gs_stmt *st = NULL;

	assert_int_equal(gs_stmt_prepare(db, "PRAGMA journal_mode", &st),
	    GS_OK);
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	assert_string_equal(gs_stmt_text(st, 0), want);
	gs_stmt_finalize(st);
}

static void
test_pragmas(void **state)
{
	struct gs_db *db = NULL;

	(void)state;
	assert_int_equal(gs_db_open(path, "agent", GS_DB_CREATE, &db), GS_OK);
	assert_journal(db, "wal");
	assert_int_equal(one_int(db, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(one_int(db, "PRAGMA foreign_keys"), 1);
	gs_db_close(db);

	assert_int_equal(gs_db_open(path, "agent", GS_DB_NORMAL_SYNC, &db),
	    GS_OK);
	assert_int_equal(one_int(db, "PRAGMA synchronous"), 1); /* NORMAL */
	gs_db_close(db);
}

/*
 * gs_db_journal_direct: a lone connection goes to the rollback journal
 * (DELETE, synchronous EXTRA) and gs_db_journal_wal brings back WAL and
 * the connection's own synchronous setting; with another connection
 * open, or inside a transaction, it answers 0 at once and nothing
 * changes; a connection closed while direct is WAL again at its next
 * open.
 */
static void
test_journal_direct(void **state)
{
	struct gs_db *db = NULL, *other = NULL;
	char wal[160], journal[160];

	(void)state;
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(journal, sizeof(journal), "%s-journal", path);
	assert_int_equal(gs_db_open(path, "agent", GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);

	assert_int_equal(gs_db_journal_direct(db), 1);
	assert_journal(db, "delete");
	assert_int_equal(one_int(db, "PRAGMA synchronous"), 3); /* EXTRA */
	assert_false(file_exists(wal));
	assert_int_equal(gs_db_journal_direct(db), 0); /* already */
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (1)"), GS_OK);
	assert_true(file_exists(journal));
	assert_int_equal(gs_db_commit(db), GS_OK);
	assert_false(file_exists(journal)); /* the commit unlinked it */
	assert_int_equal(gs_db_journal_wal(db), GS_OK);
	assert_journal(db, "wal");
	assert_int_equal(one_int(db, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(gs_db_journal_wal(db), GS_OK); /* a no-op now */

	/* Inside a transaction: no. */
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_journal_direct(db), 0);
	gs_db_rollback(db);
	assert_journal(db, "wal");

	/* Another connection open: no, without waiting its busy timeout. */
	assert_int_equal(gs_db_open(path, "agent", 0, &other), GS_OK);
	{
		struct timespec a, b;

		clock_gettime(CLOCK_MONOTONIC, &a);
		assert_int_equal(gs_db_journal_direct(db), 0);
		clock_gettime(CLOCK_MONOTONIC, &b);
		assert_true(b.tv_sec - a.tv_sec < 2);
	}
	assert_journal(db, "wal");
	assert_int_equal(one_int(db, "PRAGMA synchronous"), 2);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (2)"), GS_OK);
	assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 2);
	gs_db_close(other);

	/* NORMAL comes back as NORMAL. */
	gs_db_close(db);
	assert_int_equal(gs_db_open(path, "agent", GS_DB_NORMAL_SYNC, &db),
	    GS_OK);
	assert_int_equal(gs_db_journal_direct(db), 1);
	assert_int_equal(gs_db_journal_wal(db), GS_OK);
	assert_int_equal(one_int(db, "PRAGMA synchronous"), 1);

	/* Closed while direct: the next open is in WAL mode again. */
	assert_int_equal(gs_db_journal_direct(db), 1);
	gs_db_close(db);
	assert_int_equal(gs_db_open(path, "agent", 0, &db), GS_OK);
	assert_journal(db, "wal");
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 2);
	gs_db_close(db);
}

/* A database made by the previous program (only 0001, version 1) is
 * brought up to date and keeps its rows. */
static void
test_older_migrates(void **state)
{
	const struct gs_embedded *e = gs_embedded_find("agent/0001-store.sql");
	struct gs_db *db = NULL;
	int latest = gs_db_latest_version("agent");

	(void)state;
	assert_non_null(e);
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_version(db), 0);
	assert_int_equal(gs_db_exec(db, (const char *)e->data), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO meta VALUES('grid','G1');"
					"PRAGMA user_version = 1"), GS_OK);
	gs_db_close(db);

	assert_int_equal(gs_db_open(path, "agent", 0, &db), GS_OK);
	assert_int_equal(gs_db_version(db), latest);
	assert_int_equal(one_int(db, "SELECT count(*) FROM meta "
				     "WHERE key='grid' AND value='G1'"), 1);
	gs_db_close(db);

	/* A version-0 database with unrelated content is not ours: refused
	 * (it was migrated, our tables written in beside its own). */
	unlink(path);
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE junk(x)"), GS_OK);
	gs_db_close(db);
	assert_int_equal(gs_db_open(path, "agent", 0, &db), GS_ECORRUPT);
	assert_null(db);
	assert_int_equal(gs_db_open(path, NULL, 0, &db), GS_OK);
	assert_int_equal(gs_db_version(db), 0);
	assert_int_equal(one_int(db, "SELECT count(*) FROM sqlite_master"), 1);
	gs_db_close(db);

	/* Past 0, a database without the tables of 0001 is not ours. */
	assert_int_equal(gs_db_open(path, NULL, 0, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "PRAGMA user_version = 1"), GS_OK);
	gs_db_close(db);
	assert_int_equal(gs_db_open(path, "agent", 0, &db), GS_ECORRUPT);
	assert_null(db);
}

/* Writes n bytes of b to p, replacing it. */
static void
spit(const char *p, const char *b, size_t n)
{
	FILE *f = fopen(p, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/*
 * A store of ours that lost any one object is refused, untouched: every
 * table, index, trigger and view that a fresh store of each program has
 * is dropped in turn.  This is also the check of sync/db.c's reading of
 * the migrations (schema_expected): an object it does not know of would
 * be dropped unnoticed here, and one it wrongly expects would refuse the
 * fresh store.  A dropped outbox took saves that only sync refused.
 */
static void
test_missing_object(void **state)
{
	static const char *const prefixes[] = { "agent", "platform" };
	struct gs_db *db = NULL;
	struct gs_stmt *st = NULL;
	char names[256][80];
	char *pristine;
	size_t np, k;
	int i, n;

	(void)state;
	for (k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
		unlink(path);
		assert_int_equal(gs_db_open(path, prefixes[k], GS_DB_CREATE,
		    &db), GS_OK);
		assert_int_equal(gs_stmt_prepare(db, "SELECT type, name FROM "
		    "sqlite_master WHERE name NOT LIKE 'sqlite%' ORDER BY 2",
		    &st), GS_OK);
		for (n = 0; gs_stmt_step(st) == GS_ROW && n < 256; n++)
			snprintf(names[n], sizeof(names[n]), "DROP %s %s",
			    gs_stmt_text(st, 0), gs_stmt_text(st, 1));
		gs_stmt_finalize(st);
		gs_db_close(db);
		/* Every kind is there to be lost: tables, indexes, triggers
		 * (and the platform's view). */
		assert_true(n > 20);
		pristine = slurp(path, &np);
		assert_non_null(pristine);
		for (i = 0; i < n; i++) {
			spit(path, pristine, np);
			assert_int_equal(gs_db_open(path, NULL, 0, &db), GS_OK);
			assert_int_equal(gs_db_exec(db, names[i]), GS_OK);
			gs_db_close(db);
			if (gs_db_open(path, prefixes[k], 0, &db) !=
			    GS_ECORRUPT)
				fail_msg("%s store after %s: not refused",
				    prefixes[k], names[i]);
			assert_null(db);
		}
		spit(path, pristine, np);
		free(pristine);
		assert_int_equal(gs_db_open(path, prefixes[k], 0, &db), GS_OK);
		gs_db_close(db);
	}
}

/*
 * A store at each older version, made by running its migrations by hand,
 * is whole for the check (opened read-only: left at that version), and
 * then migrates: the reading of DROP and RENAME follows SQLite's.
 */
static void
test_every_version_whole(void **state)
{
	static const char *const prefixes[] = { "agent", "platform" };
	const struct gs_embedded *e;
	struct gs_db *db = NULL;
	char pragma[64], pfx[16];
	size_t k;
	int v, latest;

	(void)state;
	for (k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
		latest = gs_db_latest_version(prefixes[k]);
		snprintf(pfx, sizeof(pfx), "%s/", prefixes[k]);
		for (v = 1; v <= latest; v++) {
			unlink(path);
			assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE,
			    &db), GS_OK);
			for (e = gs_embedded_files; e->name != NULL; e++) {
				if (strncmp(e->name, pfx, strlen(pfx)) != 0 ||
				    strtol(e->name + strlen(pfx), NULL, 10) >
				    v ||
				    strcmp(e->name + strlen(e->name) - 4,
				    ".sql") != 0)
					continue;
				assert_int_equal(gs_db_exec(db,
				    (const char *)e->data), GS_OK);
			}
			snprintf(pragma, sizeof(pragma),
			    "PRAGMA user_version = %d", v);
			assert_int_equal(gs_db_exec(db, pragma), GS_OK);
			gs_db_close(db);
			if (gs_db_open(path, prefixes[k], GS_DB_READONLY, &db)
			    != GS_OK)
				fail_msg("%s at version %d: refused",
				    prefixes[k], v);
			assert_int_equal(gs_db_version(db), v);
			gs_db_close(db);
			assert_int_equal(gs_db_open(path, prefixes[k], 0, &db),
			    GS_OK);
			assert_int_equal(gs_db_version(db), latest);
			gs_db_close(db);
		}
	}
}

static void
test_newer_refused(void **state)
{
	struct gs_db *db = NULL;
	char sql[64], wal[160];
	char *before, *after;
	size_t nb, na;
	int latest = gs_db_latest_version("agent");

	(void)state;
	/* A rollback-journal database from "the future". */
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "PRAGMA journal_mode=DELETE"), GS_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", latest + 1);
	assert_int_equal(gs_db_exec(db, (const char *)gs_embedded_find(
	    "agent/0001-store.sql")->data), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE future(x);"
					"INSERT INTO future VALUES(1)"), GS_OK);
	assert_int_equal(gs_db_exec(db, sql), GS_OK);
	gs_db_close(db);
	snprintf(wal, sizeof(wal), "%s-wal", path);
	assert_false(file_exists(wal));

	before = slurp(path, &nb);
	assert_non_null(before);
	assert_int_equal(gs_db_open(path, "agent", 0, &db), GS_EDBVERSION);
	assert_null(db);
	assert_non_null(strstr(gs_errmsg(GS_EDBVERSION), "newer than this "
							 "program"));
	after = slurp(path, &na);
	assert_non_null(after);
	/* Untouched: same bytes, not even switched to WAL. */
	assert_int_equal(na, nb);
	assert_memory_equal(before, after, nb);
	assert_false(file_exists(wal));
	free(before);
	free(after);
}

static void
test_not_a_db(void **state)
{
	struct gs_db *db = NULL;
	FILE *f;
	int i;

	(void)state;
	f = fopen(path, "wb");
	assert_non_null(f);
	for (i = 0; i < 200; i++)
		fputs("this is not a database at all. ", f);
	fclose(f);
	assert_int_equal(gs_db_open(path, "agent", GS_DB_CREATE, &db),
	    GS_ECORRUPT);
	assert_null(db);
	assert_non_null(strstr(gs_errmsg(GS_ECORRUPT), path));
}

static void
test_statements(void **state)
{
	struct gs_db *db = NULL;
	struct gs_stmt *ins = NULL, *sel = NULL, *bad = NULL;
	const unsigned char blob[4] = { 0, 1, 2, 255 };
	int r;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(k TEXT PRIMARY KEY, "
					"i INTEGER, d REAL, b BLOB, n)"), GS_OK);
	assert_int_equal(gs_stmt_prepare(db, "INSERT INTO t VALUES(?,?,?,?,?)",
	    &ins), GS_OK);
	assert_int_equal(gs_stmt_prepare(db, "SELECT k, i, d, b, n FROM t "
					     "ORDER BY k", &sel), GS_OK);

	assert_int_equal(gs_stmt_bind_text(ins, 1, "a"), GS_OK);
	assert_int_equal(gs_stmt_bind_int64(ins, 2, INT64_MAX), GS_OK);
	assert_int_equal(gs_stmt_bind_double(ins, 3, 1.5), GS_OK);
	assert_int_equal(gs_stmt_bind_blob(ins, 4, blob, sizeof(blob)), GS_OK);
	assert_int_equal(gs_stmt_bind_null(ins, 5), GS_OK);
	assert_int_equal(gs_stmt_step(ins), GS_DONE);
	assert_int_equal(gs_db_changes(db), 1);

	/* Bindings were cleared by the step: i, d, b, n are NULL now. */
	assert_int_equal(gs_stmt_bind_textn(ins, 1, "bcd", 1), GS_OK);
	assert_int_equal(gs_stmt_bind_blob(ins, 4, NULL, 0), GS_OK);
	assert_int_equal(gs_stmt_step(ins), GS_DONE);

	assert_int_equal(gs_stmt_step(sel), GS_ROW);
	assert_string_equal(gs_stmt_text(sel, 0), "a");
	assert_true(gs_stmt_int64(sel, 1) == INT64_MAX);
	assert_true(gs_stmt_double(sel, 2) == 1.5);
	assert_int_equal(gs_stmt_bytes(sel, 3), 4);
	assert_memory_equal(gs_stmt_blob(sel, 3), blob, 4);
	assert_true(gs_stmt_is_null(sel, 4));
	assert_int_equal(gs_stmt_step(sel), GS_ROW);
	assert_string_equal(gs_stmt_text(sel, 0), "b");
	assert_true(gs_stmt_is_null(sel, 1));
	assert_null(gs_stmt_text(sel, 1));
	assert_false(gs_stmt_is_null(sel, 3)); /* empty blob, not NULL */
	assert_int_equal(gs_stmt_bytes(sel, 3), 0);
	assert_int_equal(gs_stmt_step(sel), GS_DONE);
	/* Reusable after DONE. */
	assert_int_equal(gs_stmt_step(sel), GS_ROW);
	gs_stmt_reset(sel);

	/* Constraint -> GS_EEXIST, with SQLite's words as the detail. */
	gs_errmsg_clear();
	assert_int_equal(gs_stmt_bind_text(ins, 1, "a"), GS_OK);
	r = gs_stmt_step(ins);
	assert_int_equal(r, GS_EEXIST);
	assert_non_null(strstr(gs_errmsg(r), "UNIQUE"));
	/* ... and the statement is ready again. */
	assert_int_equal(gs_stmt_bind_text(ins, 1, "c"), GS_OK);
	assert_int_equal(gs_stmt_step(ins), GS_DONE);

	/* Syntax errors and two statements at once are refused. */
	assert_int_equal(gs_stmt_prepare(db, "SELEC 1", &bad), GS_EDB);
	assert_null(bad);
	assert_int_equal(gs_stmt_prepare(db, "SELECT 1; SELECT 2", &bad),
	    GS_EDB);
	assert_int_equal(gs_db_exec(db, "INSERT INTO nosuch VALUES(1)"),
	    GS_EDB);
	assert_non_null(strstr(gs_errmsg(GS_EDB), "nosuch"));

	/* Binding out of range. */
	assert_int_equal(gs_stmt_bind_int64(ins, 9, 1), GS_EDB);

	/* one_int64 gives the default when there is no row. */
	{
		struct gs_stmt *q = NULL;
		int64_t v = 0;

		assert_int_equal(gs_stmt_prepare(db, "SELECT i FROM t WHERE "
						     "k = 'zz'", &q), GS_OK);
		assert_int_equal(gs_stmt_one_int64(q, 42, &v), GS_OK);
		assert_true(v == 42);
		gs_stmt_finalize(q);
	}
	gs_stmt_finalize(ins); /* early finalize; the rest go with close */
	gs_db_close(db);
}

static void
test_transactions(void **state)
{
	struct gs_db *db = NULL, *db2 = NULL;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES(1)"), GS_OK);
	gs_db_rollback(db);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 0);
	gs_db_rollback(db); /* outside a transaction: harmless */

	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES(1)"), GS_OK);
	assert_int_equal(gs_db_commit(db), GS_OK);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 1);

	/* A second writer while the first holds the lock: GS_EBUSY (after
	 * the busy timeout, which we shorten here). */
	assert_int_equal(gs_db_open(path, NULL, 0, &db2), GS_OK);
	assert_int_equal(gs_db_exec(db2, "PRAGMA busy_timeout = 10"), GS_OK);
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_begin(db2), GS_EBUSY);
	gs_db_rollback(db);
	assert_int_equal(gs_db_begin(db2), GS_OK);
	assert_int_equal(gs_db_commit(db2), GS_OK);
	gs_db_close(db2);

	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	gs_db_close(db);

	/* Read-only: reads work, writes do not. */
	assert_int_equal(gs_db_open(path, NULL, GS_DB_READONLY, &db), GS_OK);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 1);
	assert_int_not_equal(gs_db_exec(db, "INSERT INTO t VALUES(2)"), GS_OK);
	gs_db_close(db);
}

/*
 * Early writeback: a thread that asks the kernel to start writing the
 * database and its WAL during a big transaction.  It must run (rounds),
 * and change nothing SQLite does.
 */
static void
test_writeback(void **state)
{
	struct gs_db *db = NULL;
	struct gs_writeback *wb;

	(void)state;
	assert_int_equal(gs_db_writeback_stop(NULL), 0);
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	assert_int_equal(gs_db_exec(db, "PRAGMA cache_size = 64"), GS_OK);
	assert_int_equal(gs_db_begin(db), GS_OK);
	wb = gs_db_writeback_start(db);
#ifdef __linux__
	assert_non_null(wb);
#endif
	/* 4 MB through a 64-page cache: pages go to the WAL before COMMIT,
	 * and the thread gets a few 10 ms rounds. */
	assert_int_equal(gs_db_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 "
	    "UNION ALL SELECT i + 1 FROM n WHERE i < 4000) "
	    "INSERT INTO t SELECT randomblob(1000) FROM n"), GS_OK);
	(void)usleep(50 * 1000);
	assert_int_equal(gs_db_commit(db), GS_OK);
#ifdef __linux__
	assert_true(gs_db_writeback_stop(wb) >= 1);
#else
	assert_int_equal(gs_db_writeback_stop(wb), 0);
#endif
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 4000);
	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	gs_db_close(db);
}

/*
 * A group: transactions that commit as one.  Each keeps its own
 * all-or-nothing inside it (a rolled back one is undone alone); the
 * group's end commits them all, or none when it is given an error or a
 * transaction inside was left open.
 */
static void
test_group(void **state)
{
	struct gs_db *db = NULL, *other = NULL;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	assert_int_equal(gs_db_open(path, NULL, 0, &other), GS_OK);

	/* Two committed, one rolled back: the two land, at the end only. */
	assert_int_equal(gs_db_group_begin(db), GS_OK);
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (1)"), GS_OK);
	assert_int_equal(gs_db_commit(db), GS_OK);
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (2)"), GS_OK);
	gs_db_rollback(db);
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (3)"), GS_OK);
	assert_int_equal(gs_db_commit(db), GS_OK);
	assert_int_equal(one_int(db, "SELECT sum(x) FROM t"), 4);
	assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 0);
	/* Not nested. */
	assert_int_equal(gs_db_group_begin(db), GS_EINTERNAL);
	assert_int_equal(gs_db_group_end(db, GS_OK), GS_OK);
	assert_int_equal(one_int(other, "SELECT sum(x) FROM t"), 4);

	/* An error given to the end: none of it. */
	assert_int_equal(gs_db_group_begin(db), GS_OK);
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (10)"), GS_OK);
	assert_int_equal(gs_db_commit(db), GS_OK);
	assert_int_equal(gs_db_group_end(db, GS_EIO), GS_EIO);
	assert_int_equal(one_int(other, "SELECT sum(x) FROM t"), 4);

	/* A transaction left open inside: none of it either. */
	assert_int_equal(gs_db_group_begin(db), GS_OK);
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (20)"), GS_OK);
	assert_int_equal(gs_db_group_end(db, GS_OK), GS_EINTERNAL);
	assert_int_equal(one_int(other, "SELECT sum(x) FROM t"), 4);

	/* And plain transactions after a group are their own again. */
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (100)"), GS_OK);
	assert_int_equal(gs_db_commit(db), GS_OK);
	assert_int_equal(one_int(other, "SELECT sum(x) FROM t"), 104);
	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	gs_db_close(other);
	gs_db_close(db);
}

/* Write system calls this process made so far (/proc/self/io), or -1. */
static long
write_calls(void)
{
	FILE *f = fopen("/proc/self/io", "r");
	char line[128];
	long n = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "syscw: %ld", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* A 4 MB transaction through a 64-page cache on path: the write system
 * calls it took.  Another connection reads along and sees nothing of it
 * until COMMIT, then all of it. */
static long
big_transaction(int flags)
{
	struct gs_db *db = NULL, *other = NULL;
	long before, after;

	unlink(path);
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE | flags, &db),
	    GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	assert_int_equal(gs_db_open(path, NULL, 0, &other), GS_OK);
	assert_int_equal(gs_db_exec(db, "PRAGMA cache_size = 64"), GS_OK);
	before = write_calls();
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 "
	    "UNION ALL SELECT i + 1 FROM n WHERE i < 4000) "
	    "INSERT INTO t SELECT randomblob(1000) FROM n"), GS_OK);
	/* Read back through the writer: pages spilled to the WAL. */
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 4000);
	assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 0);
	assert_int_equal(gs_db_commit(db), GS_OK);
	after = write_calls();
	assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 4000);
	assert_int_equal(one_int(other,
	    "SELECT sum(length(x)) FROM t"), 4000000);
	assert_int_equal(gs_db_integrity_check(other), GS_OK);
	gs_db_close(other);
	/* Once more after the checkpoint of the commit. */
	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	gs_db_close(db);
	assert_int_equal(gs_db_open(path, NULL, 0, &db), GS_OK);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 4000);
	gs_db_close(db);
	return before >= 0 && after >= 0 ? after - before : -1;
}

/*
 * GS_DB_COALESCE_WAL: the same transaction, the same data seen by the
 * same readers, in far fewer write system calls (SQLite writes a WAL
 * frame as two, and a checkpoint a page as one).
 */
static void
test_coalesce_wal(void **state)
{
	long plain, coalesced;

	(void)state;
	plain = big_transaction(0);
	coalesced = big_transaction(GS_DB_COALESCE_WAL);
	print_message("write calls: plain %ld, coalesced %ld\n", plain, coalesced);
	if (plain < 0 || coalesced < 0)
		skip(); /* no /proc/self/io */
	/* Under valgrind (tests/valgrind.sh) the process's write calls
	 * include valgrind's own, thousands of them: 9,524 against 3,769
	 * where the program alone makes 3,504 against 626. */
	if (getenv("GS_VALGRIND") != NULL)
		skip();
	/* About 1,000 pages: 2,000 frame writes and 1,000 checkpoint
	 * writes, against 16 pages per write. */
	assert_true(plain > 2000);
	assert_true(coalesced * 4 < plain);
}

/*
 * A coalescing connection that rolls back a transaction whose frames
 * were still gathered must not write them later over the frames another
 * connection committed at the same place in the WAL meanwhile.
 */
static void
test_coalesce_rollback(void **state)
{
	struct gs_db *a = NULL, *b = NULL, *c = NULL;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE |
	    GS_DB_COALESCE_WAL, &a), GS_OK);
	assert_int_equal(gs_db_exec(a, "CREATE TABLE t(who, x)"), GS_OK);
	assert_int_equal(gs_db_exec(a, "PRAGMA cache_size = 16"), GS_OK);
	/* Nothing in the WAL: the rollback reads the pages it undoes from
	 * the database file, not the WAL. */
	assert_int_equal(gs_db_exec(a, "PRAGMA wal_checkpoint(TRUNCATE)"),
	    GS_OK);
	assert_int_equal(gs_db_open(path, NULL, 0, &b), GS_OK);
	/* a spills frames, the last of them gathered, and gives up. */
	assert_int_equal(gs_db_begin(a), GS_OK);
	assert_int_equal(gs_db_exec(a, "WITH RECURSIVE n(i) AS (SELECT 1 "
	    "UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
	    "INSERT INTO t SELECT 'a', randomblob(1000) FROM n"), GS_OK);
	gs_db_rollback(a);
	/* b commits where a's frames were. */
	assert_int_equal(gs_db_begin(b), GS_OK);
	assert_int_equal(gs_db_exec(b, "WITH RECURSIVE n(i) AS (SELECT 1 "
	    "UNION ALL SELECT i + 1 FROM n WHERE i < 20) "
	    "INSERT INTO t SELECT 'b', zeroblob(1000) FROM n"), GS_OK);
	assert_int_equal(gs_db_commit(b), GS_OK);
	/* a writes again. */
	assert_int_equal(gs_db_begin(a), GS_OK);
	assert_int_equal(gs_db_exec(a, "INSERT INTO t VALUES('a', 1)"),
	    GS_OK);
	assert_int_equal(gs_db_commit(a), GS_OK);
	gs_db_close(a);
	gs_db_close(b);
	/* b's rows, whole, and a's one. */
	assert_int_equal(gs_db_open(path, NULL, 0, &c), GS_OK);
	assert_int_equal(gs_db_integrity_check(c), GS_OK);
	assert_int_equal(one_int(c, "SELECT count(*) FROM t WHERE who = 'b' "
	    "AND x = zeroblob(1000)"), 20);
	assert_int_equal(one_int(c, "SELECT count(*) FROM t"), 21);
	gs_db_close(c);
}

static void
test_corrupt_page(void **state)
{
	struct gs_db *db = NULL;
	FILE *f;
	int i, r;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "PRAGMA journal_mode=DELETE;"
					"CREATE TABLE t(x);"), GS_OK);
	for (i = 0; i < 50; i++)
		assert_int_equal(gs_db_exec(db, "INSERT INTO t "
						"VALUES(randomblob(1000))"),
		    GS_OK);
	gs_db_close(db);
	/* Scribble over the second page (the table's b-tree). */
	f = fopen(path, "r+b");
	assert_non_null(f);
	fseek(f, 4096 + 10, SEEK_SET);
	for (i = 0; i < 200; i++)
		fputc(0xa5, f);
	fclose(f);
	assert_int_equal(gs_db_open(path, NULL, 0, &db), GS_OK);
	r = gs_db_integrity_check(db);
	if (r == GS_OK) /* the check may not even get that far */
		fail_msg("integrity_check passed a scribbled page");
	assert_true(r == GS_ECORRUPT);
	gs_db_close(db);
}

/*
 * The migration runner applies every migration numbered above the
 * database's user_version, so a number that is skipped and later filled
 * would never run on a database already past it.  Each side's embedded
 * migrations must therefore be numbered 1, 2, 3... with no gap and no
 * repeat (this failed when a migration 0050 came after 0003).
 */
static void
check_contiguous(const char *prefix)
{
	const struct gs_embedded *e;
	size_t plen = strlen(prefix);
	char side[32];
	int want = 1;

	for (e = gs_embedded_files; e->name != NULL; e++) {
		const char *n = e->name;

		if (strncmp(n, prefix, plen) != 0 ||
		    strstr(n, ".sql") == NULL)
			continue;
		n += plen;
		if (strlen(n) < 5 || n[4] != '-')
			fail_msg("%s: name is not NNNN-*.sql", e->name);
		if ((n[0] - '0') * 1000 + (n[1] - '0') * 100 +
			(n[2] - '0') * 10 + (n[3] - '0') != want)
			fail_msg("%s: expected migration %04d next", e->name,
			    want);
		want++;
	}
	assert_true(want > 1);
	/* gs_db_open takes the folder name without its slash. */
	snprintf(side, sizeof(side), "%.*s", (int)(plen - 1), prefix);
	assert_int_equal(gs_db_latest_version(side), want - 1);
}

static void
test_migrations_contiguous(void **state)
{
	(void)state;
	check_contiguous("agent/");
	check_contiguous("platform/");
}

/*
 * A home that cannot be written.  Root writes through any mode, so as
 * root the checks run in a child that became nobody; each failed check
 * sets a bit of its exit status.
 */
static int
readonly_checks(const char *cur, const char *old, const char *live,
    const char *walonly)
{
	struct gs_db *db = NULL;
	struct stat sb;
	char shm[160];
	int64_t n = -1;
	struct gs_stmt *st = NULL;
	int bad = 0;

	/* A writer is refused before SQLite touches the file. */
	if (gs_db_open(cur, "agent", 0, &db) != GS_EIO ||
	    strstr(gs_errmsg(GS_EIO), "is read-only") == NULL)
		bad |= 1;
	gs_db_close(db);
	db = NULL;
	/* A reader of a store closed cleanly: the file alone. */
	if (gs_db_open(cur, "agent", GS_DB_READ_FALLBACK, &db) != GS_OK ||
	    gs_db_readonly(db) != GS_DB_RO_SNAPSHOT ||
	    gs_db_version(db) != gs_db_latest_version("agent") ||
	    gs_db_exec(db, "CREATE TABLE x(y)") == GS_OK)
		bad |= 2;
	gs_db_close(db);
	db = NULL;
	snprintf(shm, sizeof(shm), "%s-shm", cur);
	if (stat(shm, &sb) == 0)
		bad |= 4;
	/* One that needs a migration: refused, never migrated. */
	if (gs_db_open(old, "agent", GS_DB_READ_FALLBACK, &db) != GS_EIO ||
	    strstr(gs_errmsg(GS_EIO), "needs its schema upgraded") == NULL)
		bad |= 8;
	gs_db_close(db);
	db = NULL;
	/* One with a -wal and -shm (its writer still has it open): read
	 * with the WAL, the row only there included. */
	if (gs_db_open(live, NULL, GS_DB_READ_FALLBACK, &db) != GS_OK ||
	    gs_db_readonly(db) != GS_DB_RO ||
	    gs_stmt_prepare(db, "SELECT count(*) FROM t", &st) != GS_OK ||
	    gs_stmt_one_int64(st, 0, &n) != GS_OK || n != 1)
		bad |= 16;
	gs_db_close(db);
	db = NULL;
	/* A -wal with frames and no -shm: immutable would show the store
	 * without them, so it is refused. */
	if (gs_db_open(walonly, NULL, GS_DB_READ_FALLBACK, &db) != GS_EIO ||
	    strstr(gs_errmsg(GS_EIO), "-wal") == NULL)
		bad |= 32;
	gs_db_close(db);
	return bad;
}

static void
copy_file(const char *from, const char *to)
{
	size_t n;
	char *b = slurp(from, &n);
	FILE *f = fopen(to, "wb");

	assert_non_null(b);
	assert_non_null(f);
	assert_int_equal(fwrite(b, 1, n, f), n);
	fclose(f);
	free(b);
}

static void
test_readonly_home(void **state)
{
	struct gs_db *db = NULL, *w = NULL;
	char cur[160], old[160], live[160], walonly[160], sub[128], from[170],
	    to[170], cmd[700];
	int status, bad;
	pid_t pid;

	(void)state;
	snprintf(sub, sizeof(sub), "%s/ro", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	snprintf(cur, sizeof(cur), "%s/cur.db", sub);
	snprintf(old, sizeof(old), "%s/old.db", sub);
	snprintf(live, sizeof(live), "%s/live.db", sub);
	snprintf(walonly, sizeof(walonly), "%s/walonly.db", sub);
	assert_int_equal(gs_db_open(cur, "agent", GS_DB_CREATE, &db), GS_OK);
	gs_db_close(db);
	assert_int_equal(gs_db_open(old, "agent", GS_DB_CREATE, &db), GS_OK);
	snprintf(cmd, sizeof(cmd), "PRAGMA user_version = %d",
	    gs_db_latest_version("agent") - 1);
	assert_int_equal(gs_db_exec(db, cmd), GS_OK);
	gs_db_close(db);
	/* live.db stays open in w, a row in its -wal only. */
	assert_int_equal(gs_db_open(live, NULL, GS_DB_CREATE, &w), GS_OK);
	assert_int_equal(gs_db_exec(w, "PRAGMA wal_autocheckpoint = 0; "
	    "CREATE TABLE t(x); INSERT INTO t VALUES (1)"), GS_OK);
	snprintf(from, sizeof(from), "%s", live);
	copy_file(from, walonly);
	snprintf(from, sizeof(from), "%s-wal", live);
	snprintf(to, sizeof(to), "%s-wal", walonly);
	copy_file(from, to);

	snprintf(cmd, sizeof(cmd), "chmod 755 '%s' && chmod a-w '%s' '%s'/*",
	    dir, sub, sub);
	if (geteuid() == 0)
		snprintf(cmd, sizeof(cmd), "chmod 755 '%s' && chown -R "
		    "65534:65534 '%s' && chmod a-w '%s' '%s'/*", dir, sub, sub,
		    sub);
	assert_int_equal(system(cmd), 0);
	if (geteuid() != 0) {
		bad = readonly_checks(cur, old, live, walonly);
	} else {
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(64);
			_exit(readonly_checks(cur, old, live, walonly));
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status));
		bad = WEXITSTATUS(status);
	}
	gs_db_close(w);
	snprintf(cmd, sizeof(cmd), "chmod -R u+w '%s'", sub);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(bad, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_migrations_contiguous),
		cmocka_unit_test_setup_teardown(test_open_empty, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_direct, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_older_migrates, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_newer_refused, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_missing_object, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_every_version_whole,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_db, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_statements, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_writeback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_coalesce_wal, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_coalesce_rollback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_page, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_readonly_home, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
