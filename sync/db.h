/*
 * db.h - the SQLite seam, shared by the agent and the platform.
 *
 * sync/db.c is the only file that includes <sqlite3.h>.  SQLite's result
 * codes become ours here: SQLITE_BUSY/LOCKED -> GS_EBUSY, SQLITE_FULL and
 * SQLITE_IOERR -> GS_EIO, SQLITE_CORRUPT/NOTADB -> GS_ECORRUPT,
 * SQLITE_CONSTRAINT -> GS_EEXIST, anything else -> GS_EDB; the SQLite
 * message is kept as the error detail (gs_errmsg).
 *
 * Statements are prepared once and kept: prepare them right after open so
 * that a typo in SQL fails the first test, not the first user.
 */
#ifndef GS_DB_H
#define GS_DB_H

#include <stddef.h>
#include <stdint.h>

struct gs_db;
struct gs_stmt;

/* Returned by gs_stmt_step besides the error codes. */
#define GS_ROW 1000
#define GS_DONE 1001

enum gs_db_flags {
	GS_DB_CREATE = 1,   /* create the file if missing */
	GS_DB_READONLY = 2,
	GS_DB_NORMAL_SYNC = 4, /* synchronous=NORMAL instead of FULL */
	/* The caller promises that one thread at a time uses the
	 * connection: SQLite then takes no mutex on every call
	 * (SQLITE_OPEN_NOMUTEX), about 5% of a bulk insert. */
	GS_DB_ONE_THREAD = 8,
	/* WAL frames reach the file in 64 KiB writes, not two write()
	 * calls each (sync/db.c, "the WAL write coalescer"): for a
	 * connection that writes big transactions.  Ignored with
	 * GS_DB_NORMAL_SYNC: it relies on the sync of every commit. */
	GS_DB_COALESCE_WAL = 16,
	/* The caller only reads: on a file it cannot write (a read-only
	 * mount, chmod a-w) open it read-only rather than fail; see
	 * gs_db_open. */
	GS_DB_READ_FALLBACK = 32,
};

/* gs_db_readonly's answers besides 0 (read-write). */
#define GS_DB_RO 1          /* read-only, the WAL read as a writer would */
#define GS_DB_RO_SNAPSHOT 2 /* read-only, the file alone (immutable=1) */

/*
 * Opens (or creates) the database at path, in WAL mode with
 * synchronous=FULL unless GS_DB_NORMAL_SYNC, foreign keys on, a busy
 * timeout of 5 s, and then migrates it: every embedded file
 * "<migrations>/NNNN-*.sql" with NNNN greater than PRAGMA user_version runs,
 * all of them in one transaction that also sets user_version: a migration
 * that fails leaves the database as it was.
 *
 * A database whose user_version is newer than the newest embedded migration
 * is refused with GS_EDBVERSION ("database schema 7 is newer than this
 * program (5); upgrade the program") and left untouched.  A file that is
 * not a database gives GS_ECORRUPT, and so does, untouched, a database
 * that is not of these migrations: one at user_version 0 that already
 * holds tables, or one past 0 without every table of migration 0001 (the
 * other program's store: "damaged, or not the agent's database: it has
 * no table record"), or without any other table, index, trigger or view
 * that the migrations up to its version leave ("damaged: table outbox is
 * missing; nothing was changed").  *out is the caller's (gs_db_close).
 *
 * A file that exists but cannot be written, with the -wal and -shm that
 * SQLite makes beside it (a read-only mount, even for root; a file or
 * directory the user may not write), is refused with GS_EIO ("DIR is
 * read-only (Read-only file system): nothing can be changed there")
 * before SQLite touches it, unless flags has GS_DB_READ_FALLBACK: then
 * it is opened read-only (gs_db_readonly says how), never migrated (a
 * store that needs a migration is refused with GS_EIO, untouched), and
 * every write on it fails.  GS_DB_READONLY opens read-only whatever
 * the file allows, without the immutable fallback.
 */
int gs_db_open(const char *path, const char *migrations, int flags,
    struct gs_db **out);
/*
 * 0 for a read-write connection; GS_DB_RO when a GS_DB_READ_FALLBACK
 * open found the file read-only and SQLite reads it with its WAL (the
 * -shm was there); GS_DB_RO_SNAPSHOT when there was no -shm and none
 * could be made, so SQLite reads the database file alone as immutable
 * (no -wal with frames was there, so that holds every commit; but a
 * process writing the file through another, writable, path would not
 * be seen, and its latest changes may be missing from what is read).
 */
int gs_db_readonly(struct gs_db *db);
/* Finalizes every statement prepared on it and closes.  NULL ok. */
void gs_db_close(struct gs_db *db);

/*
 * Tests only: later opens use the SQLite VFS registered under name (NULL:
 * the default again), e.g. tests/unit/agent-powerloss.c's crash VFS.
 * The name must stay valid while set.  Not thread-safe: set it before
 * opening.
 */
void gs_db_set_vfs(const char *name);

/*
 * Tests only (tests/sim/sim.c, the in-process crash): fn is called twice
 * around every statement step, before (after = 0) and after (after = 1)
 * SQLite ran it, and before every gs_db_exec (after = 0).  A non-zero
 * answer makes that step fail with GS_EIO as if the process had died
 * there: before, the statement is not run at all; after, it has run (a
 * COMMIT is committed) but the caller is told it failed.  ROLLBACK is
 * never refused: what it undoes is what recovery after a real crash
 * would undo.  NULL fn: off (the normal case costs one load per step).
 * Not thread-safe: set it while no database is in use.
 */
typedef int (*gs_db_step_hook_fn)(void *ctx, struct gs_db *db, int after);
void gs_db_set_step_hook(gs_db_step_hook_fn fn, void *ctx);

/* The schema version after migration (PRAGMA user_version). */
int gs_db_version(struct gs_db *db);
/* The newest migration number embedded for this prefix. */
int gs_db_latest_version(const char *migrations);

/* One or more statements with no parameters and no result rows. */
int gs_db_exec(struct gs_db *db, const char *sql);
/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (rollback never fails loudly).
 * Inside a group (below) they are a savepoint, its release and its
 * rollback. */
int gs_db_begin(struct gs_db *db);
int gs_db_commit(struct gs_db *db);
void gs_db_rollback(struct gs_db *db);

/*
 * A group: several transactions that commit as one, with one sync of
 * the WAL instead of one each.  Between group_begin (BEGIN IMMEDIATE)
 * and group_end, each gs_db_begin ... gs_db_commit is a savepoint that is
 * released into the group, and a gs_db_rollback undoes only its own
 * savepoint, as its own transaction would have been undone; group_end(db,
 * r) commits them all when r is GS_OK, or rolls all back and returns r.
 * A crash before group_end's COMMIT leaves none of them, so only
 * transactions that may be lost together belong in one group (a
 * receipt's record and the next seal: both come again).  Not nested.
 */
int gs_db_group_begin(struct gs_db *db);
int gs_db_group_end(struct gs_db *db, int r);
/* group_end whose commit is gs_db_commit_nosync's (below). */
int gs_db_group_end_nosync(struct gs_db *db, int r);

/*
 * Early writeback around one big transaction (Linux; elsewhere start
 * returns NULL and nothing changes).  A bulk write leaves tens of
 * megabytes of the WAL, and at the checkpoint of the database file, in
 * the kernel's page cache, and SQLite's fsync then waits while all of it
 * goes to the disk at once.  Between start and stop a thread asks the
 * kernel every 10 ms to begin writing what is dirty in both files
 * (sync_file_range with SYNC_FILE_RANGE_WRITE: it starts writeback, waits
 * for none and promises nothing; durability is still SQLite's fsync), so
 * the disk works while the CPUs do.  NULL when it could not start: the
 * transaction is then only slower.  stop waits for the thread and
 * returns how many times it asked the kernel; stop(NULL) returns 0.
 */
struct gs_writeback;
struct gs_writeback *gs_db_writeback_start(struct gs_db *db);
long gs_db_writeback_stop(struct gs_writeback *wb);

/*
 * One big transaction written once (a bulk import), for a connection no
 * other one has open.  In WAL mode every page of it goes to the WAL,
 * then again into the database file at the checkpoint, and the WAL's
 * file is freed after: for 100,000 persons 85 MB twice, two syncs of it
 * and an unlink.  A rollback journal keeps only the pages the
 * transaction changes that were there before it (few: an import
 * appends), and the new ones go straight into the database file.
 * gs_db_journal_direct, outside any transaction, moves the store to the
 * rollback journal (DELETE, with synchronous=EXTRA: the commit is the
 * journal's unlink, which only EXTRA makes durable) and answers 1; it
 * answers 0 and leaves the store in WAL mode when that cannot be done
 * at once: another connection has the store open (this one never waits
 * for it), a checkpointer is running, the connection is read-only.  The
 * transaction is as safe either way.  After its commit or rollback,
 * gs_db_journal_wal puts WAL mode and the synchronous setting back; if
 * that fails (an I/O error), the next gs_db_open does it.  Meanwhile
 * another process that opens the store waits for the transaction to end
 * (the busy timeout, 5 s) instead of reading beside it.  No other thread
 * may use the connection in between (gs_db_sync_wal's descriptor is
 * dropped: SQLite removes the WAL file when it leaves WAL mode).
 */
int gs_db_journal_direct(struct gs_db *db);
int gs_db_journal_wal(struct gs_db *db);

/*
 * A commit whose sync is the caller's, for a writer that wants the next
 * transaction under way while the disk syncs this one (the platform's
 * ingest: batch N+1 is applied while N's frames reach the disk).
 * commit_nosync commits as gs_db_commit does, the frames written to the
 * WAL file, but does not wait for the disk: until gs_db_sync_wal has
 * returned GS_OK a crash of the machine may lose this commit, and only
 * this one and those after it (recovery keeps a prefix of the WAL's
 * commits), never corrupt the database: a checkpoint, on any
 * connection, syncs the WAL before it copies a frame.  gs_db_sync_wal
 * syncs the WAL file (fdatasync) without touching the connection: it may
 * run on another thread while the next transaction does, once the lock
 * that orders the transactions has been let go; it also covers every
 * commit before.  Where the connection does not go through the WAL
 * coalescer (GS_DB_COALESCE_WAL) or is inside a group, commit_nosync is
 * gs_db_commit.  The descriptor is opened with the connection, so the
 * first gs_db_sync_wal also covers what another process (one that
 * crashed, say) committed without syncing.
 */
int gs_db_commit_nosync(struct gs_db *db);
int gs_db_sync_wal(struct gs_db *db);

/*
 * Checkpoints on a thread of their own, for a connection that commits
 * big transactions one after the other (the platform's store while it
 * serves).  SQLite's autocheckpoint copies the WAL into the database
 * file and syncs it on the writer's thread, after the commit that
 * crossed the threshold, while the next transaction waits.  After start,
 * the writer's commits only tell a thread how many frames the WAL holds;
 * once soft frames are not yet copied, the thread copies them (PASSIVE,
 * on its own connection, beside the writer's next transaction).  At hard
 * frames the writer checkpoints itself as before, copying what the
 * thread has not: the WAL stays bounded even if the thread falls behind,
 * or never catches up exactly between two commits (the WAL starts over
 * only when a transaction begins with every frame copied).  Durability
 * does not change: a commit is still synced to the WAL before it
 * returns.  0 < soft < hard, in WAL frames (pages).  stop (also done by
 * gs_db_close) waits for the thread, gives the writer back SQLite's
 * autocheckpoint at hard, and fills *stats (NULL: not wanted).
 */
struct gs_checkpoint_stats {
	long rounds;        /* the thread's checkpoints */
	long inline_rounds; /* the writer's own, at hard */
	long failed;        /* the thread's that could not run (busy, I/O) */
};
int gs_db_checkpointer_start(struct gs_db *db, int soft, int hard);
void gs_db_checkpointer_stop(struct gs_db *db,
    struct gs_checkpoint_stats *stats);

/* "ok" from PRAGMA integrity_check gives GS_OK, anything else GS_ECORRUPT. */
int gs_db_integrity_check(struct gs_db *db);
int64_t gs_db_changes(struct gs_db *db);
/*
 * Counts the virtual-machine steps of every statement run on db from now
 * (on), or stops counting (off); gs_db_ops reads the count.  For tests of
 * how much work an operation does whatever the machine's speed: a
 * statement that walks a whole table shows up as thousands of steps.
 */
void gs_db_count_ops(struct gs_db *db, int on);
uint64_t gs_db_ops(struct gs_db *db);

/*
 * Prepares one statement.  The statement belongs to the database and is
 * finalized by gs_db_close; gs_stmt_finalize may release it earlier.
 */
int gs_stmt_prepare(struct gs_db *db, const char *sql, struct gs_stmt **out);
void gs_stmt_finalize(struct gs_stmt *st);

/* Parameters are numbered from 1.  Text and blobs are copied. */
int gs_stmt_bind_int64(struct gs_stmt *st, int i, int64_t v);
int gs_stmt_bind_double(struct gs_stmt *st, int i, double v);
int gs_stmt_bind_text(struct gs_stmt *st, int i, const char *s); /* NULL: null */
int gs_stmt_bind_textn(struct gs_stmt *st, int i, const char *s, size_t n);
int gs_stmt_bind_blob(struct gs_stmt *st, int i, const void *p, size_t n);
/* Binds text WITHOUT a copy (NULL: null), for large values on hot paths:
 * s must stay valid and unchanged until the statement has been stepped to
 * its end (GS_DONE or an error, which reset it) or reset. */
int gs_stmt_bind_text_nocopy(struct gs_stmt *st, int i, const char *s);
/* The same for n bytes of text (no NUL needed, none counted) and for a
 * blob of n bytes (n > 0), under the same rule. */
int gs_stmt_bind_textn_nocopy(struct gs_stmt *st, int i, const char *s,
    size_t n);
int gs_stmt_bind_blob_nocopy(struct gs_stmt *st, int i, const void *p,
    size_t n);
int gs_stmt_bind_null(struct gs_stmt *st, int i);

/* GS_ROW, GS_DONE or an error.  After GS_DONE or an error the statement
 * is reset automatically (bindings cleared), ready to be used again. */
int gs_stmt_step(struct gs_stmt *st);
/* Resets and clears bindings; needed only to abandon rows early. */
void gs_stmt_reset(struct gs_stmt *st);

/* Columns are numbered from 0; valid until the next step or reset. */
int64_t gs_stmt_int64(struct gs_stmt *st, int col);
double gs_stmt_double(struct gs_stmt *st, int col);
const char *gs_stmt_text(struct gs_stmt *st, int col); /* NULL for null */
const void *gs_stmt_blob(struct gs_stmt *st, int col);
size_t gs_stmt_bytes(struct gs_stmt *st, int col);
int gs_stmt_is_null(struct gs_stmt *st, int col);

/* Runs a statement that returns at most one row with one integer column:
 * *out is that integer, or dflt when there is no row. */
int gs_stmt_one_int64(struct gs_stmt *st, int64_t dflt, int64_t *out);

#endif
