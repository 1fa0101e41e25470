/*
 * sync-db-sync.c - when the SQLite seam makes things durable: commits
 * whose sync is the caller's (gs_db_commit_nosync, gs_db_sync_wal,
 * gs_db_group_end_nosync) and checkpoints on a thread of their own
 * (gs_db_checkpointer_start).
 *
 * A watching VFS sits under everything here: it is registered as the
 * default before the first gs_db_open, so the WAL coalescer (sync/db.c)
 * wraps it like it wraps "unix" in the programs.  It passes every call
 * through and counts, per kind of file, the xSync calls, and it keeps
 * one rule a crash depends on: no page may be written into the database
 * file by a checkpoint while the WAL holds frames written since its last
 * sync (a crash could then lose the frames and keep the page: a corrupt
 * database).  The rule is checked on the thread that commits, where the
 * WAL hook runs its checkpoints inside COMMIT; the checkpoint thread has
 * its own connection and its own, never-deferred sync.
 *
 * This file includes <sqlite3.h> for the VFS, as agent-powerloss.c does.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/error.h"
#include "db.h"
#include "core/banned.h"

/* ------------------------------------------------------- watching VFS */

struct wfile {
	sqlite3_file base;
	int wal;            /* a WAL file (else: main database or other) */
	int main;           /* the main database file */
	sqlite3_file *real; /* follows this struct in the same block */
};

static sqlite3_vfs *base_vfs;
static sqlite3_vfs watch_vfs;
static int wal_syncs;      /* xSync calls on WAL files */
static int wal_dirty;      /* a WAL write since the last WAL xSync */
static int main_writes;    /* writes into a main database file */
static int ahead;          /* of those, made while wal_dirty (the rule) */
static pthread_t writer;   /* the thread the rule is checked on */
static int watching;       /* check the rule (set by a test) */

#define W(x) ((struct wfile *)(x))
#define R(x) (W(x)->real)

static int
w_close(sqlite3_file *x)
{
	return R(x)->pMethods->xClose(R(x));
}

static int
w_read(sqlite3_file *x, void *p, int n, sqlite3_int64 off)
{
	return R(x)->pMethods->xRead(R(x), p, n, off);
}

static int
w_write(sqlite3_file *x, const void *p, int n, sqlite3_int64 off)
{
	if (W(x)->wal) {
		__atomic_store_n(&wal_dirty, 1, __ATOMIC_SEQ_CST);
	} else if (W(x)->main) {
		__atomic_add_fetch(&main_writes, 1, __ATOMIC_SEQ_CST);
		if (watching && pthread_equal(pthread_self(), writer) &&
		    __atomic_load_n(&wal_dirty, __ATOMIC_SEQ_CST))
			__atomic_add_fetch(&ahead, 1, __ATOMIC_SEQ_CST);
	}
	return R(x)->pMethods->xWrite(R(x), p, n, off);
}

static int
w_truncate(sqlite3_file *x, sqlite3_int64 size)
{
	return R(x)->pMethods->xTruncate(R(x), size);
}

static int
w_sync(sqlite3_file *x, int flags)
{
	int rc = R(x)->pMethods->xSync(R(x), flags);

	if (W(x)->wal && rc == SQLITE_OK) {
		__atomic_add_fetch(&wal_syncs, 1, __ATOMIC_SEQ_CST);
		__atomic_store_n(&wal_dirty, 0, __ATOMIC_SEQ_CST);
	}
	return rc;
}

static int
w_size(sqlite3_file *x, sqlite3_int64 *size)
{
	return R(x)->pMethods->xFileSize(R(x), size);
}

static int
w_lock(sqlite3_file *x, int level)
{
	return R(x)->pMethods->xLock(R(x), level);
}

static int
w_unlock(sqlite3_file *x, int level)
{
	return R(x)->pMethods->xUnlock(R(x), level);
}

static int
w_reserved(sqlite3_file *x, int *out)
{
	return R(x)->pMethods->xCheckReservedLock(R(x), out);
}

static int
w_fcntl(sqlite3_file *x, int op, void *arg)
{
	return R(x)->pMethods->xFileControl(R(x), op, arg);
}

static int
w_sector(sqlite3_file *x)
{
	return R(x)->pMethods->xSectorSize(R(x));
}

static int
w_devchar(sqlite3_file *x)
{
	return R(x)->pMethods->xDeviceCharacteristics(R(x));
}

static int
w_shm_map(sqlite3_file *x, int pg, int pgsz, int extend, void volatile **pp)
{
	return R(x)->pMethods->xShmMap(R(x), pg, pgsz, extend, pp);
}

static int
w_shm_lock(sqlite3_file *x, int offset, int n, int flags)
{
	return R(x)->pMethods->xShmLock(R(x), offset, n, flags);
}

static void
w_shm_barrier(sqlite3_file *x)
{
	R(x)->pMethods->xShmBarrier(R(x));
}

static int
w_shm_unmap(sqlite3_file *x, int del)
{
	return R(x)->pMethods->xShmUnmap(R(x), del);
}

static int
w_fetch(sqlite3_file *x, sqlite3_int64 off, int n, void **pp)
{
	*pp = NULL; /* no memory-mapped reads: every read is seen */
	(void)x;
	(void)off;
	(void)n;
	return SQLITE_OK;
}

static int
w_unfetch(sqlite3_file *x, sqlite3_int64 off, void *p)
{
	return R(x)->pMethods->xUnfetch(R(x), off, p);
}

static const sqlite3_io_methods w_methods = {
	3,
	w_close, w_read, w_write, w_truncate, w_sync, w_size, w_lock,
	w_unlock, w_reserved, w_fcntl, w_sector, w_devchar, w_shm_map,
	w_shm_lock, w_shm_barrier, w_shm_unmap, w_fetch, w_unfetch,
};

static int
w_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *x, int flags,
    int *out_flags)
{
	struct wfile *f = W(x);
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	f->wal = (flags & SQLITE_OPEN_WAL) != 0;
	f->main = (flags & SQLITE_OPEN_MAIN_DB) != 0;
	rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out_flags);
	f->base.pMethods = f->real->pMethods != NULL ? &w_methods : NULL;
	return rc;
}

static void
register_watch(void)
{
	base_vfs = sqlite3_vfs_find("unix");
	assert_non_null(base_vfs);
	watch_vfs = *base_vfs;
	watch_vfs.zName = "gs-watch";
	watch_vfs.pNext = NULL;
	watch_vfs.szOsFile = (int)(sizeof(struct wfile) +
	    (size_t)base_vfs->szOsFile);
	watch_vfs.xOpen = w_open;
	/* The default: the coalescer takes the default as its base. */
	assert_int_equal(sqlite3_vfs_register(&watch_vfs, 1), SQLITE_OK);
}

/* ------------------------------------------------------------- helpers */

static char dir[64];
static char path[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/gs-sync-db-sync.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/t.db", dir);
	watching = 0;
	ahead = 0;
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

static off_t
wal_size(void)
{
	char wal[160];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	return stat(wal, &sb) == 0 ? sb.st_size : -1;
}

/* One transaction of n rows of 1,000 bytes (about n / 3 pages). */
static void
rows(struct gs_db *db, int n, int nosync)
{
	char sql[200];

	assert_int_equal(gs_db_begin(db), GS_OK);
	snprintf(sql, sizeof(sql), "WITH RECURSIVE n(i) AS (SELECT 1 UNION "
	    "ALL SELECT i + 1 FROM n WHERE i < %d) INSERT INTO t SELECT "
	    "randomblob(1000) FROM n", n);
	assert_int_equal(gs_db_exec(db, sql), GS_OK);
	assert_int_equal(nosync ? gs_db_commit_nosync(db) : gs_db_commit(db),
	    GS_OK);
}

/* --------------------------------------------------------------- tests */

/*
 * commit_nosync: the commit is made and seen (by another connection at
 * once), and the WAL is not synced; gs_db_commit syncs it as ever; the
 * caller's gs_db_sync_wal succeeds; and after closing, all of it is
 * there.
 */
static void
test_commit_nosync(void **state)
{
	struct gs_db *db = NULL, *other = NULL;
	int before;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE |
	    GS_DB_COALESCE_WAL, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	assert_int_equal(gs_db_open(path, NULL, 0, &other), GS_OK);

	before = wal_syncs;
	rows(db, 30, 0);
	assert_true(wal_syncs > before);

	before = wal_syncs;
	rows(db, 30, 1);
	assert_int_equal(wal_syncs, before);
	assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 60);
	assert_int_equal(gs_db_sync_wal(db), GS_OK);

	/* A group ended without the sync: the same. */
	before = wal_syncs;
	assert_int_equal(gs_db_group_begin(db), GS_OK);
	assert_int_equal(gs_db_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (1)"), GS_OK);
	assert_int_equal(gs_db_commit(db), GS_OK);
	assert_int_equal(gs_db_group_end_nosync(db, GS_OK), GS_OK);
	assert_int_equal(wal_syncs, before);
	assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 61);
	/* ... and one ended with an error commits nothing. */
	assert_int_equal(gs_db_group_begin(db), GS_OK);
	assert_int_equal(gs_db_exec(db, "INSERT INTO t VALUES (2)"), GS_OK);
	assert_int_equal(gs_db_group_end_nosync(db, GS_EIO), GS_EIO);
	assert_int_equal(one_int(other, "SELECT count(*) FROM t"), 61);
	assert_int_equal(gs_db_sync_wal(db), GS_OK);

	gs_db_close(other);
	gs_db_close(db);
	assert_int_equal(gs_db_open(path, NULL, 0, &db), GS_OK);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 61);
	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	gs_db_close(db);
}

/*
 * Without the WAL coalescer the sync cannot be put off: commit_nosync is
 * a plain commit, synced.
 */
static void
test_commit_nosync_plain(void **state)
{
	struct gs_db *db = NULL;
	int before;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	before = wal_syncs;
	rows(db, 10, 1);
	assert_true(wal_syncs > before);
	assert_int_equal(gs_db_sync_wal(db), GS_OK);
	gs_db_close(db);
}

/*
 * The checkpoint thread: it runs, the WAL stays bounded however many
 * transactions come, nothing is lost, and bad thresholds are refused.
 */
static void
test_checkpointer(void **state)
{
	struct gs_db *db = NULL;
	struct gs_checkpoint_stats cs;
	off_t most = 0, now;
	int i;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE |
	    GS_DB_COALESCE_WAL, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	assert_int_equal(gs_db_checkpointer_start(db, 0, 10), GS_EINVAL);
	assert_int_equal(gs_db_checkpointer_start(db, 10, 10), GS_EINVAL);
	assert_int_equal(gs_db_checkpointer_start(db, 50, 400), GS_OK);
	assert_int_equal(gs_db_checkpointer_start(db, 50, 400), GS_EINVAL);
	/* 300 transactions of about 10 pages: 3,000 frames without any
	 * checkpoint. */
	for (i = 0; i < 300; i++) {
		rows(db, 30, 0);
		if ((now = wal_size()) > most)
			most = now;
	}
	gs_db_checkpointer_stop(db, &cs);
	print_message("checkpoints: %ld on the thread, %ld inline, %ld "
	    "failed; WAL at most %lld bytes\n", cs.rounds, cs.inline_rounds,
	    cs.failed, (long long)most);
	assert_true(cs.rounds > 0);
	/* Bounded: the hard threshold and a little (a transaction or two
	 * while the thread held the checkpoint lock), nowhere near the
	 * 3,000 frames of 4,120 bytes. */
	assert_true(most < 600 * 4120);
	/* Stopped: stop again is a no-op with empty stats, and the writer
	 * checkpoints itself again. */
	gs_db_checkpointer_stop(db, &cs);
	assert_int_equal(cs.rounds, 0);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 9000);
	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	/* gs_db_close stops a running one. */
	assert_int_equal(gs_db_checkpointer_start(db, 50, 400), GS_OK);
	rows(db, 30, 0);
	gs_db_close(db);

	assert_int_equal(gs_db_open(path, NULL, 0, &db), GS_OK);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 9030);
	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	gs_db_close(db);
}

/*
 * A reader that keeps an old snapshot (an export's long read) holds the
 * frames after it in the WAL: a round then copies nothing, and the thread
 * must wait for the next commit, not try again at once (it spun at 100%
 * of a core).  Once the reader is done, the next commit lets it copy.
 */
static void
test_checkpointer_reader(void **state)
{
	struct gs_db *db = NULL, *reader = NULL;
	struct gs_checkpoint_stats cs;
	struct gs_stmt *st = NULL;
	int i;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE |
	    GS_DB_COALESCE_WAL, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	rows(db, 30, 0);
	assert_int_equal(gs_db_open(path, NULL, 0, &reader), GS_OK);
	/* A read transaction kept open on the snapshot of now. */
	assert_int_equal(gs_db_exec(reader, "BEGIN"), GS_OK);
	assert_int_equal(gs_stmt_prepare(reader, "SELECT count(*) FROM t",
	    &st), GS_OK);
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	assert_int_equal(gs_db_checkpointer_start(db, 20, 100000), GS_OK);
	for (i = 0; i < 10; i++)
		rows(db, 30, 0);
	/* No commits for 200 ms: a spinning thread would make thousands
	 * of rounds. */
	(void)usleep(200 * 1000);
	gs_db_checkpointer_stop(db, &cs);
	print_message("with the reader: %ld rounds\n", cs.rounds);
	assert_true(cs.rounds <= 20);
	gs_stmt_finalize(st);
	gs_db_rollback(reader);
	gs_db_close(reader);
	/* The reader gone, the next commit's round copies everything. */
	assert_int_equal(gs_db_checkpointer_start(db, 20, 100000), GS_OK);
	rows(db, 30, 0);
	(void)usleep(200 * 1000);
	gs_db_checkpointer_stop(db, &cs);
	assert_true(cs.rounds >= 1);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 360);
	assert_int_equal(gs_db_integrity_check(db), GS_OK);
	gs_db_close(db);
}

/*
 * The writer's own checkpoint at the hard threshold runs inside COMMIT:
 * inside a commit_nosync too, whose WAL sync is put off.  That
 * checkpoint must still sync the WAL before it writes a page into the
 * database (the rule, checked by the watching VFS on this thread).
 */
static void
test_checkpoint_inside_nosync(void **state)
{
	struct gs_db *db = NULL;
	struct gs_checkpoint_stats cs;
	int i;

	(void)state;
	assert_int_equal(gs_db_open(path, NULL, GS_DB_CREATE |
	    GS_DB_COALESCE_WAL, &db), GS_OK);
	assert_int_equal(gs_db_exec(db, "CREATE TABLE t(x)"), GS_OK);
	assert_int_equal(gs_db_checkpointer_start(db, 200, 201), GS_OK);
	writer = pthread_self();
	watching = 1;
	for (i = 0; i < 200; i++)
		rows(db, 90, 1);
	watching = 0;
	gs_db_checkpointer_stop(db, &cs);
	print_message("checkpoints: %ld on the thread, %ld inline; database "
	    "writes %d, %d of them ahead of the WAL's sync\n", cs.rounds,
	    cs.inline_rounds, main_writes, ahead);
	assert_true(cs.inline_rounds > 0);
	assert_int_equal(ahead, 0);
	assert_int_equal(gs_db_sync_wal(db), GS_OK);
	assert_int_equal(one_int(db, "SELECT count(*) FROM t"), 18000);
	gs_db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commit_nosync, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_commit_nosync_plain,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpointer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_checkpointer_reader, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint_inside_nosync,
		    setup, teardown),
	};

	register_watch();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
