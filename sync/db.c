/*
 * db.c - the SQLite seam: the only file of the project that includes
 * <sqlite3.h>.  It opens and migrates databases, keeps prepared statements
 * for their owner, and turns SQLite's result codes into ours (see db.h for
 * the mapping) with SQLite's own message kept as the error detail.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "db.h"
#include "embedded.h"
#include "core/banned.h"

/*
 * A prepared statement and its place in its database's list.  The list
 * exists so that gs_db_close can finalize whatever its owner kept: SQLite
 * refuses to close a connection with live statements, and a forgotten one
 * would otherwise leak the whole connection.
 */
struct gs_stmt {
	sqlite3_stmt *s;
	struct gs_db *db;
	struct gs_stmt *prev, *next; /* the database's list of statements */
};

struct walbuf_file;
static void walbuf_set_defer(struct walbuf_file *w, int on);

/*
 * An open database.  BEGIN, COMMIT and ROLLBACK are prepared once like
 * every other statement: a save runs them each time, and parsing them
 * again per save would be wasted work on the hot path.
 */
struct gs_db {
	sqlite3 *h;
	int version;           /* PRAGMA user_version after migration */
	struct gs_stmt *stmts; /* every statement prepared on it */
	struct gs_stmt *begin, *commit, *rollback;
	/* gs_db_group: transactions begun inside the group's are its
	 * savepoints; depth counts the group's (1) and theirs. */
	struct gs_stmt *sp_begin, *sp_release, *sp_rollback;
	int depth;
	const char *vfs;       /* the VFS it was opened with; NULL: default */
	struct gs_checkpointer *ckpt; /* gs_db_checkpointer_start, or NULL */
	/* gs_db_commit_nosync: the WAL file whose sync is put off while its
	 * COMMIT runs, and the descriptor gs_db_sync_wal syncs (-1: none;
	 * opened with the connection, or by the first such commit when the
	 * WAL did not exist yet: wal_fd_ready). */
	struct walbuf_file *defer_wal;
	int wal_fd;
	/* gs_db_writeback_start's descriptor of the database file (-1:
	 * none yet), closed only after the connection: closing any
	 * descriptor of a file drops every POSIX lock the process holds on
	 * it, the connection's SHARED lock included (close(2)). */
	int wb_fd;
	uint64_t ops;          /* gs_db_count_ops: VM steps counted */
	int ro;                /* gs_db_readonly: 0, GS_DB_RO, GS_DB_RO_SNAPSHOT */
	int normal_sync;       /* opened with GS_DB_NORMAL_SYNC */
	int direct;            /* gs_db_journal_direct: rollback journal now */
};

/* How long a connection waits for another one's lock (sqlite3_busy_timeout):
 * another process (sync --watch beside a collect) may hold the write lock
 * for a moment. */
#define BUSY_MS 5000

/*
 * SQLite's primary result code -> ours (db.h states the mapping).  The
 * extended codes (SQLITE_IOERR_WRITE, ...) share their primary code's low
 * byte, so masking keeps the table short; SQLite's message still carries
 * the specifics into the error detail.
 */
static int
map_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
		return GS_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return GS_EBUSY;
	case SQLITE_FULL:
	case SQLITE_IOERR:
		return GS_EIO;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return GS_ECORRUPT;
	case SQLITE_CONSTRAINT:
		return GS_EEXIST;
	case SQLITE_NOMEM:
		return GS_ENOMEM;
	default:
		return GS_EDB;
	}
}

/*
 * Records an SQLite failure where it starts: our code, plus what SQLite
 * says (its message names the table, the constraint or the syntax error).
 * `what` says what we were doing.
 */
#define DB_FAIL(h, rc, what) \
	GS_FAIL(map_rc(rc), "%s: %s", (what), \
	    (h) ? sqlite3_errmsg(h) : sqlite3_errstr(rc))

/* Puts `what: ` before the current error detail (copied first: the
 * detail lives in the buffer GS_FAIL writes to). */
static int
refail(int r, const char *what)
{
	char old[400];

	gs_strlcpy(old, gs_errmsg(r), sizeof(old));
	return GS_FAIL(r, "%s: %s", what, old);
}

static int
is_blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return 0;
	return 1;
}

/* ------------------------------------------------------------ statements */

int
gs_stmt_prepare(struct gs_db *db, const char *sql, struct gs_stmt **out)
{
	struct gs_stmt *st = NULL;
	const char *tail = NULL;
	int rc;

	*out = NULL;
	if ((st = gs_calloc(1, sizeof(*st))) == NULL)
		return GS_FAIL(GS_ENOMEM, "prepare: out of memory");
	/* PERSISTENT: these live as long as the connection and are reused
	 * for every save, so SQLite may keep them in long-lived memory. */
	rc = sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT,
	    &st->s, &tail);
	if (rc != SQLITE_OK) {
		int r = DB_FAIL(db->h, rc, "prepare");

		gs_free(st);
		return r;
	}
	if (st->s == NULL || (tail != NULL && !is_blank(tail))) {
		/* Empty SQL or a second statement is a bug in our own SQL:
		 * the tail would be silently ignored otherwise. */
		sqlite3_finalize(st->s);
		gs_free(st);
		return GS_FAIL(GS_EDB, "prepare: expected exactly one "
					"statement in \"%.60s\"", sql);
	}
	st->db = db;
	st->next = db->stmts;
	if (db->stmts != NULL)
		db->stmts->prev = st;
	db->stmts = st;
	*out = st;
	return GS_OK;
}

void
gs_stmt_finalize(struct gs_stmt *st)
{
	if (st == NULL)
		return;
	if (st->prev != NULL)
		st->prev->next = st->next;
	else
		st->db->stmts = st->next;
	if (st->next != NULL)
		st->next->prev = st->prev;
	sqlite3_finalize(st->s);
	gs_free(st);
}

static int
bind_rc(struct gs_stmt *st, int rc)
{
	if (rc == SQLITE_OK)
		return GS_OK;
	return DB_FAIL(st->db->h, rc, "bind");
}

int
gs_stmt_bind_int64(struct gs_stmt *st, int i, int64_t v)
{
	return bind_rc(st, sqlite3_bind_int64(st->s, i, v));
}

int
gs_stmt_bind_double(struct gs_stmt *st, int i, double v)
{
	return bind_rc(st, sqlite3_bind_double(st->s, i, v));
}

/*
 * Binding copies (SQLITE_TRANSIENT), as db.h promises: callers may free
 * or reuse their buffers before the step, which is what makes the
 * reused-buffer loops of a bulk import safe.
 */
int
gs_stmt_bind_text(struct gs_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return gs_stmt_bind_null(st, i);
	return bind_rc(st, sqlite3_bind_text(st->s, i, s, -1,
	    SQLITE_TRANSIENT));
}

int
gs_stmt_bind_textn(struct gs_stmt *st, int i, const char *s, size_t n)
{
	if (s == NULL)
		return gs_stmt_bind_null(st, i);
	if (n > 0x7fffffff)
		return GS_FAIL(GS_ETOOBIG, "bind: text of %zu bytes", n);
	return bind_rc(st, sqlite3_bind_text(st->s, i, s, (int)n,
	    SQLITE_TRANSIENT));
}

/* SQLITE_STATIC: SQLite reads s when the statement steps, and
 * gs_stmt_step / gs_stmt_reset clear the binding before the caller may
 * reuse the buffer (db.h states the rule). */
int
gs_stmt_bind_text_nocopy(struct gs_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return gs_stmt_bind_null(st, i);
	return bind_rc(st, sqlite3_bind_text(st->s, i, s, -1, SQLITE_STATIC));
}

int
gs_stmt_bind_textn_nocopy(struct gs_stmt *st, int i, const char *s, size_t n)
{
	if (s == NULL)
		return gs_stmt_bind_null(st, i);
	if (n > 0x7fffffff)
		return GS_FAIL(GS_ETOOBIG, "bind: text of %zu bytes", n);
	return bind_rc(st, sqlite3_bind_text(st->s, i, s, (int)n,
	    SQLITE_STATIC));
}

int
gs_stmt_bind_blob_nocopy(struct gs_stmt *st, int i, const void *p, size_t n)
{
	if (n == 0 || n > 0x7fffffff)
		return GS_FAIL(GS_EINVAL, "bind: blob of %zu bytes", n);
	return bind_rc(st, sqlite3_bind_blob(st->s, i, p, (int)n,
	    SQLITE_STATIC));
}

int
gs_stmt_bind_blob(struct gs_stmt *st, int i, const void *p, size_t n)
{
	if (n > 0x7fffffff)
		return GS_FAIL(GS_ETOOBIG, "bind: blob of %zu bytes", n);
	/* A zero-length blob is a blob, not NULL: p may be NULL then. */
	if (n == 0)
		return bind_rc(st, sqlite3_bind_zeroblob(st->s, i, 0));
	return bind_rc(st, sqlite3_bind_blob(st->s, i, p, (int)n,
	    SQLITE_TRANSIENT));
}

int
gs_stmt_bind_null(struct gs_stmt *st, int i)
{
	return bind_rc(st, sqlite3_bind_null(st->s, i));
}

/*
 * Test hooks (tests/integration/fault-*.sh, tests/unit/agent-powerloss.c).
 * $GRIDSYNC_FAULT = "kill-at-step=N" kills the process with SIGKILL right
 * after its Nth statement step (counted over every database it opens):
 * stepping N = 1, 2, 3 ... through a command crashes it between every two
 * SQL statements, including just before and just after each COMMIT.  Read
 * once; unset (the normal case) costs one load per step.
 */
static long fault_kill_step = -1; /* -1: not read yet, 0: off */
static long fault_steps;
static const char *test_vfs;     /* gs_db_set_vfs; NULL: SQLite's default */
static gs_db_step_hook_fn step_hook; /* gs_db_set_step_hook; NULL: off */
static void *step_hook_ctx;

static void
fault_after_step(void)
{
	if (fault_kill_step < 0) {
		const char *e = getenv("GRIDSYNC_FAULT");
		const char *k = "kill-at-step=";
		uint64_t v = 0;

		if (e == NULL || strncmp(e, k, strlen(k)) != 0 ||
		    gs_parse_u64(e + strlen(k), 1000000000, &v) != GS_OK)
			v = 0;
		fault_kill_step = (long)v;
	}
	if (fault_kill_step > 0 &&
	    __atomic_add_fetch(&fault_steps, 1, __ATOMIC_SEQ_CST) ==
		fault_kill_step)
		(void)raise(SIGKILL);
}

void
gs_db_set_vfs(const char *name)
{
	test_vfs = name;
}

void
gs_db_set_step_hook(gs_db_step_hook_fn fn, void *ctx)
{
	step_hook = fn;
	step_hook_ctx = ctx;
}

int
gs_stmt_step(struct gs_stmt *st)
{
	int rc, r;

	/* ROLLBACK is what recovery would do: never refused. */
	if (step_hook != NULL && st != st->db->rollback &&
	    st != st->db->sp_rollback &&
	    step_hook(step_hook_ctx, st->db, 0) != 0)
		return GS_FAIL(GS_EIO, "simulated crash before a step");
	rc = sqlite3_step(st->s);
	if (fault_kill_step != 0)
		fault_after_step();
	if (step_hook != NULL && st != st->db->rollback &&
	    st != st->db->sp_rollback &&
	    step_hook(step_hook_ctx, st->db, 1) != 0) {
		sqlite3_reset(st->s);
		sqlite3_clear_bindings(st->s);
		return GS_FAIL(GS_EIO, "simulated crash after a step");
	}

	if (rc == SQLITE_ROW)
		return GS_ROW;
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st->s);
		sqlite3_clear_bindings(st->s);
		return GS_DONE;
	}
	/* Take the message before the reset, which may replace it, and
	 * name the statement by its first words ("INSERT INTO record"). */
	{
		const char *sql = sqlite3_sql(st->s);
		char what[48];
		size_t n = 0, words = 0;

		for (; sql != NULL && sql[n] != '\0' && n < sizeof(what) - 1;
		    n++) {
			if (sql[n] == ' ' && ++words == 3)
				break;
			what[n] = sql[n] == '\n' || sql[n] == '\t' ? ' ' :
			    sql[n];
		}
		what[n] = '\0';
		r = DB_FAIL(st->db->h, rc, n > 0 ? what : "step");
	}
	sqlite3_reset(st->s);
	sqlite3_clear_bindings(st->s);
	return r;
}

void
gs_stmt_reset(struct gs_stmt *st)
{
	if (st == NULL)
		return;
	sqlite3_reset(st->s);
	sqlite3_clear_bindings(st->s);
}

int64_t
gs_stmt_int64(struct gs_stmt *st, int col)
{
	return sqlite3_column_int64(st->s, col);
}

double
gs_stmt_double(struct gs_stmt *st, int col)
{
	return sqlite3_column_double(st->s, col);
}

const char *
gs_stmt_text(struct gs_stmt *st, int col)
{
	return (const char *)sqlite3_column_text(st->s, col);
}

const void *
gs_stmt_blob(struct gs_stmt *st, int col)
{
	return sqlite3_column_blob(st->s, col);
}

size_t
gs_stmt_bytes(struct gs_stmt *st, int col)
{
	int n = sqlite3_column_bytes(st->s, col);

	return n > 0 ? (size_t)n : 0;
}

int
gs_stmt_is_null(struct gs_stmt *st, int col)
{
	return sqlite3_column_type(st->s, col) == SQLITE_NULL;
}

/* After a row the statement is reset at once: a statement left in the
 * middle of its rows would hold a read transaction open. */
int
gs_stmt_one_int64(struct gs_stmt *st, int64_t dflt, int64_t *out)
{
	int r = gs_stmt_step(st);

	if (r == GS_ROW) {
		*out = sqlite3_column_int64(st->s, 0);
		gs_stmt_reset(st);
		return GS_OK;
	}
	if (r == GS_DONE) {
		*out = dflt;
		return GS_OK;
	}
	return r;
}

/* ------------------------------------------------------------ database */

int
gs_db_exec(struct gs_db *db, const char *sql)
{
	char *msg = NULL;
	int rc, r;

	if (step_hook != NULL && step_hook(step_hook_ctx, db, 0) != 0)
		return GS_FAIL(GS_EIO, "simulated crash before exec");
	rc = sqlite3_exec(db->h, sql, NULL, NULL, &msg);
	if (rc == SQLITE_OK)
		return GS_OK;
	r = GS_FAIL(map_rc(rc), "exec: %s",
	    msg != NULL ? msg : sqlite3_errstr(rc));
	sqlite3_free(msg);
	return r;
}

/*
 * BEGIN IMMEDIATE takes the write lock at once.  A plain BEGIN would
 * start as a reader and upgrade at the first write, and two processes
 * doing that at once (a collect and a sync) deadlock: one of them gets
 * SQLITE_BUSY in the middle of its work instead of waiting at the start.
 */
int
gs_db_begin(struct gs_db *db)
{
	int r;

	if (db->depth > 0) {
		if ((r = gs_stmt_step(db->sp_begin)) != GS_DONE)
			return r == GS_ROW ? GS_EINTERNAL : r;
		db->depth++;
		return GS_OK;
	}
	r = gs_stmt_step(db->begin);
	return r == GS_DONE ? GS_OK : r;
}

/* With synchronous=FULL the WAL is fsync'd before this returns: the
 * moment after which a save may be reported to the worker. */
int
gs_db_commit(struct gs_db *db)
{
	int r;

	if (db->depth > 1) {
		/* Inside a group: the group's end commits. */
		if ((r = gs_stmt_step(db->sp_release)) != GS_DONE)
			return r == GS_ROW ? GS_EINTERNAL : r;
		db->depth--;
		return GS_OK;
	}
	r = gs_stmt_step(db->commit);
	return r == GS_DONE ? GS_OK : r;
}

void
gs_db_rollback(struct gs_db *db)
{
	if (db == NULL)
		return;
	if (db->depth > 1) {
		/* Undo what the savepoint holds; the (now empty) savepoint
		 * goes with the group's end. */
		db->depth--;
		if (!sqlite3_get_autocommit(db->h))
			(void)gs_stmt_step(db->sp_rollback);
		return;
	}
	/* After some errors (SQLITE_FULL, IOERR) SQLite has already rolled
	 * back; a ROLLBACK outside a transaction would only add noise. */
	if (sqlite3_get_autocommit(db->h))
		return;
	(void)gs_stmt_step(db->rollback);
}

int
gs_db_group_begin(struct gs_db *db)
{
	int r;

	if (db->depth != 0 || !sqlite3_get_autocommit(db->h))
		return GS_FAIL(GS_EINTERNAL, "group: a transaction is open");
	if ((r = gs_stmt_step(db->begin)) != GS_DONE)
		return r == GS_ROW ? GS_EINTERNAL : r;
	db->depth = 1;
	return GS_OK;
}

static int commit_step(struct gs_db *db, int nosync);

static int
group_end(struct gs_db *db, int r, int nosync)
{
	int c;

	if (db->depth != 1) {
		/* A transaction of the group was left open: that is a bug,
		 * and none of it may be committed. */
		db->depth = 0;
		if (!sqlite3_get_autocommit(db->h))
			(void)gs_stmt_step(db->rollback);
		return r != GS_OK ? r : GS_FAIL(GS_EINTERNAL,
		    "group: a transaction inside it was not ended");
	}
	db->depth = 0;
	if (r != GS_OK) {
		if (!sqlite3_get_autocommit(db->h))
			(void)gs_stmt_step(db->rollback);
		return r;
	}
	/* SQLite may have rolled all of it back already (IOERR, FULL). */
	if (sqlite3_get_autocommit(db->h))
		return GS_FAIL(GS_EIO, "group: the transaction was rolled "
		    "back by SQLite");
	if ((c = commit_step(db, nosync)) != GS_DONE) {
		if (!sqlite3_get_autocommit(db->h))
			(void)gs_stmt_step(db->rollback);
		return c == GS_ROW ? GS_EINTERNAL : c;
	}
	return GS_OK;
}

int
gs_db_group_end(struct gs_db *db, int r)
{
	return group_end(db, r, 0);
}

int
gs_db_group_end_nosync(struct gs_db *db, int r)
{
	return group_end(db, r, 1);
}

/* ------------------------------------------------- early writeback */

#define WRITEBACK_PERIOD_NS (10 * 1000 * 1000)

struct gs_writeback {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* on CLOCK_MONOTONIC */
	int stop;
	/* The database file (the connection's wb_fd: never closed here)
	 * and its WAL (no lock is ever held on a WAL file), read-only. */
	int fd[2];
	long rounds;           /* how many times it asked (under mu) */
};

static void *
writeback_run(void *arg)
{
	struct gs_writeback *wb = arg;
	struct timespec t;
	int i;

	(void)pthread_mutex_lock(&wb->mu);
	while (!wb->stop) {
		(void)clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += WRITEBACK_PERIOD_NS;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		while (!wb->stop &&
		    pthread_cond_timedwait(&wb->cv, &wb->mu, &t) != ETIMEDOUT)
			;
		if (wb->stop)
			break;
		(void)pthread_mutex_unlock(&wb->mu);
		/* Offset 0, length 0: the whole file.  An error (a file
		 * system without it) only means no early writeback. */
#ifdef __linux__
		for (i = 0; i < 2; i++)
			if (wb->fd[i] >= 0)
				(void)sync_file_range(wb->fd[i], 0, 0,
				    SYNC_FILE_RANGE_WRITE);
#else
		(void)i;
#endif
		(void)pthread_mutex_lock(&wb->mu);
		wb->rounds++;
	}
	(void)pthread_mutex_unlock(&wb->mu);
	return NULL;
}

static void
writeback_free(struct gs_writeback *wb)
{
	/* fd[0] is the connection's (struct gs_db, wb_fd). */
	if (wb->fd[1] >= 0)
		(void)close(wb->fd[1]);
	gs_free(wb);
}

struct gs_writeback *
gs_db_writeback_start(struct gs_db *db)
{
#ifdef __linux__
	struct gs_writeback *wb;
	pthread_condattr_t ca;
	sqlite3_filename name = sqlite3_db_filename(db->h, "main");
	int ok;

	/* A database in memory or behind a test VFS has no such files. */
	if (name == NULL || *name == '\0' ||
	    (wb = gs_calloc(1, sizeof(*wb))) == NULL)
		return NULL;
	/* Opened once and kept with the connection (wb_fd). */
	if (db->wb_fd < 0)
		db->wb_fd = open(name, O_RDONLY | O_CLOEXEC);
	wb->fd[0] = db->wb_fd;
	wb->fd[1] = open(sqlite3_filename_wal(name), O_RDONLY | O_CLOEXEC);
	if (wb->fd[0] < 0 && wb->fd[1] < 0) {
		writeback_free(wb);
		return NULL;
	}
	if (pthread_condattr_init(&ca) != 0) {
		writeback_free(wb);
		return NULL;
	}
	ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
	    pthread_cond_init(&wb->cv, &ca) == 0;
	(void)pthread_condattr_destroy(&ca);
	if (!ok) {
		writeback_free(wb);
		return NULL;
	}
	if (pthread_mutex_init(&wb->mu, NULL) != 0) {
		(void)pthread_cond_destroy(&wb->cv);
		writeback_free(wb);
		return NULL;
	}
	if (pthread_create(&wb->thread, NULL, writeback_run, wb) != 0) {
		(void)pthread_mutex_destroy(&wb->mu);
		(void)pthread_cond_destroy(&wb->cv);
		writeback_free(wb);
		return NULL;
	}
	return wb;
#else
	(void)db;
	return NULL;
#endif
}

long
gs_db_writeback_stop(struct gs_writeback *wb)
{
	long rounds;

	if (wb == NULL)
		return 0;
	(void)pthread_mutex_lock(&wb->mu);
	wb->stop = 1;
	(void)pthread_cond_signal(&wb->cv);
	(void)pthread_mutex_unlock(&wb->mu);
	(void)pthread_join(wb->thread, NULL);
	rounds = wb->rounds;
	(void)pthread_mutex_destroy(&wb->mu);
	(void)pthread_cond_destroy(&wb->cv);
	writeback_free(wb);
	return rounds;
}

/* ------------------------------------------------ checkpoint thread */

/*
 * The writer's WAL hook runs after every commit, on the writer's thread,
 * with the frames now in the WAL.  Below hard it only tells the thread
 * (a mutex and a signal: nothing waits on I/O); at hard it checkpoints
 * itself as SQLite's autocheckpoint would, which bounds the WAL even if
 * the thread falls behind.  By then the thread has copied most frames,
 * so that checkpoint copies the rest only.
 */
struct gs_checkpointer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	sqlite3 *h;       /* the thread's own connection */
	struct gs_db *db; /* the writer's */
	int soft, hard;   /* WAL frames: wake the thread; checkpoint inline */
	int frames;       /* in the WAL after the last commit (under mu) */
	int copied;       /* of those, copied into the database (under mu) */
	int stop;
	int busy;         /* the thread is checkpointing (under mu) */
	int idle_at;      /* frames when a round copied nothing (under mu) */
	int hold;         /* the writer's turn: no new round (under mu) */
	struct gs_checkpoint_stats stats; /* under mu */
};

/*
 * Whether the thread has work (mu held): soft frames not yet copied; or,
 * once the WAL is within soft of hard, any frame not yet copied, so that
 * the writer's checkpoint at hard finds almost nothing left to copy and
 * to sync (100,000 records through the platform: four of them took
 * 35-71 ms each under the store lock when up to soft frames were left).
 */
static int
ckpt_due(const struct gs_checkpointer *c)
{
	/* A round that copied nothing (a reader still needs the frames:
	 * an export's long read, say) is not tried again before the next
	 * commit: the thread would spin. */
	if (c->frames == c->idle_at)
		return 0;
	return c->frames - c->copied >= c->soft ||
	    (c->frames >= c->hard - c->soft && c->frames > c->copied);
}

static int
ckpt_hook(void *arg, sqlite3 *h, const char *name, int frames)
{
	struct gs_checkpointer *c = arg;
	int log = 0, done = 0, rc = SQLITE_OK, run = 0;

	if (frames >= c->hard) {
		/* Inside COMMIT: a gs_db_commit_nosync's put-off sync must
		 * not be put off here.  A checkpoint syncs the WAL before it
		 * writes the database: a page copied from frames that a crash
		 * could still lose would be a corrupt database. */
		struct walbuf_file *w = c->db->defer_wal;

		/* The thread's round, if one is running, ends first (it
		 * holds the checkpoint lock, and this one must run: it is
		 * the bound), and none starts until this one is done. */
		(void)pthread_mutex_lock(&c->mu);
		c->hold = 1;
		while (c->busy)
			(void)pthread_cond_wait(&c->cv, &c->mu);
		(void)pthread_mutex_unlock(&c->mu);
		if (w != NULL)
			walbuf_set_defer(w, 0);
		rc = sqlite3_wal_checkpoint_v2(h, name,
		    SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		if (w != NULL)
			walbuf_set_defer(w, 1);
	}
	(void)pthread_mutex_lock(&c->mu);
	c->hold = 0;
	/* Fewer frames than were copied: the WAL started over. */
	if (frames < c->copied)
		c->copied = 0;
	c->frames = frames;
	if (frames >= c->hard) {
		if (rc == SQLITE_OK)
			c->stats.inline_rounds++;
		if (rc == SQLITE_OK && log >= 0 && done >= 0)
			c->copied = done;
	}
	run = ckpt_due(c);
	if (run)
		(void)pthread_cond_broadcast(&c->cv);
	(void)pthread_mutex_unlock(&c->mu);
	return SQLITE_OK;
}

static void *
ckpt_run(void *arg)
{
	struct gs_checkpointer *c = arg;
	int log, done, rc, before, warned = 0;

	(void)pthread_mutex_lock(&c->mu);
	for (;;) {
		while (!c->stop && (c->hold || !ckpt_due(c)))
			(void)pthread_cond_wait(&c->cv, &c->mu);
		if (c->stop)
			break;
		c->busy = 1;
		before = c->copied;
		(void)pthread_mutex_unlock(&c->mu);
		/* PASSIVE: copies what no reader still needs, beside the
		 * writer's next transaction, and waits for nobody. */
		log = done = -1;
		rc = sqlite3_wal_checkpoint_v2(c->h, "main",
		    SQLITE_CHECKPOINT_PASSIVE, &log, &done);
		(void)pthread_mutex_lock(&c->mu);
		c->busy = 0;
		(void)pthread_cond_broadcast(&c->cv);
		if (rc == SQLITE_OK && done >= 0) {
			c->stats.rounds++;
			c->copied = done;
			if (done <= before)
				c->idle_at = c->frames;
		} else {
			/* Busy (another connection's checkpoint: another
			 * process) or an I/O error: the frames stay in the
			 * WAL, which the writer's checkpoint bounds; wait for
			 * the next commit rather than spin. */
			c->stats.failed++;
			c->copied = c->frames;
			if (rc != SQLITE_BUSY && !warned) {
				warned = 1;
				gs_log(GS_LOG_WARNING, "background checkpoint: "
				    "%s", sqlite3_errstr(rc));
			}
		}
	}
	(void)pthread_mutex_unlock(&c->mu);
	return NULL;
}

int
gs_db_checkpointer_start(struct gs_db *db, int soft, int hard)
{
	struct gs_checkpointer *c;
	sqlite3_filename name;
	int rc;

	if (db->ckpt != NULL || soft <= 0 || hard <= soft)
		return GS_FAIL(GS_EINVAL, "checkpointer: soft %d, hard %d",
		    soft, hard);
	name = sqlite3_db_filename(db->h, "main");
	if (name == NULL || *name == '\0')
		return GS_FAIL(GS_EINVAL, "checkpointer: no database file");
	if ((c = gs_calloc(1, sizeof(*c))) == NULL)
		return GS_FAIL(GS_ENOMEM, "checkpointer");
	c->soft = soft;
	c->hard = hard;
	c->db = db;
	c->idle_at = -1;
	rc = sqlite3_open_v2(name, &c->h, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, db->vfs);
	/* FULL, as the writer: the database file is synced before the
	 * WAL's frames count as copied. */
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(c->h, "PRAGMA synchronous=FULL", NULL, NULL,
		    NULL);
	if (rc != SQLITE_OK) {
		int r = GS_FAIL(map_rc(rc), "checkpointer: %s", c->h ?
		    sqlite3_errmsg(c->h) : sqlite3_errstr(rc));

		sqlite3_close_v2(c->h);
		gs_free(c);
		return r;
	}
	(void)pthread_mutex_init(&c->mu, NULL);
	(void)pthread_cond_init(&c->cv, NULL);
	if (pthread_create(&c->thread, NULL, ckpt_run, c) != 0) {
		(void)pthread_mutex_destroy(&c->mu);
		(void)pthread_cond_destroy(&c->cv);
		sqlite3_close_v2(c->h);
		gs_free(c);
		return GS_FAIL(GS_ENOMEM, "checkpointer: no thread");
	}
	/* Replaces the autocheckpoint hook (it is one): from now on the
	 * thread checkpoints, and the writer only at hard. */
	(void)sqlite3_wal_hook(db->h, ckpt_hook, c);
	db->ckpt = c;
	return GS_OK;
}

void
gs_db_checkpointer_stop(struct gs_db *db, struct gs_checkpoint_stats *out)
{
	struct gs_checkpointer *c = db->ckpt;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (c == NULL)
		return;
	/* The writer checkpoints itself again, as before start. */
	(void)sqlite3_wal_autocheckpoint(db->h, c->hard);
	(void)pthread_mutex_lock(&c->mu);
	c->stop = 1;
	(void)pthread_cond_broadcast(&c->cv);
	(void)pthread_mutex_unlock(&c->mu);
	(void)pthread_join(c->thread, NULL);
	if (out != NULL)
		*out = c->stats;
	(void)pthread_mutex_destroy(&c->mu);
	(void)pthread_cond_destroy(&c->cv);
	sqlite3_close_v2(c->h);
	gs_free(c);
	db->ckpt = NULL;
}

int
gs_db_integrity_check(struct gs_db *db)
{
	struct gs_stmt *st = NULL;
	const char *t;
	int r;

	if ((r = gs_stmt_prepare(db, "PRAGMA integrity_check", &st)) != GS_OK)
		return r;
	r = gs_stmt_step(st);
	if (r == GS_ROW) {
		t = gs_stmt_text(st, 0);
		if (t != NULL && strcmp(t, "ok") == 0)
			r = GS_OK;
		else
			r = GS_FAIL(GS_ECORRUPT, "integrity_check: %s",
			    t != NULL ? t : "(null)");
	} else if (r == GS_DONE) {
		r = GS_FAIL(GS_ECORRUPT, "integrity_check: no answer");
	}
	gs_stmt_finalize(st);
	return r;
}

int64_t
gs_db_changes(struct gs_db *db)
{
	return sqlite3_changes64(db->h);
}

static int
count_op(void *arg)
{
	((struct gs_db *)arg)->ops++;
	return 0;
}

void
gs_db_count_ops(struct gs_db *db, int on)
{
	db->ops = 0;
	sqlite3_progress_handler(db->h, on ? 1 : 0, on ? count_op : NULL,
	    on ? db : NULL);
}

uint64_t
gs_db_ops(struct gs_db *db)
{
	return db->ops;
}

int
gs_db_version(struct gs_db *db)
{
	return db->version;
}

/*
 * The migration number of an embedded name "<prefix>/NNNN-*.sql", or -1
 * when the name is not a migration of that prefix.
 */
static int
migration_number(const char *name, const char *prefix)
{
	size_t plen = strlen(prefix), nlen = strlen(name);
	int i, v = 0;

	if (strncmp(name, prefix, plen) != 0 || name[plen] != '/')
		return -1;
	name += plen + 1;
	nlen -= plen + 1;
	if (nlen < 9 || strcmp(name + nlen - 4, ".sql") != 0)
		return -1;
	for (i = 0; i < 4; i++) {
		if (name[i] < '0' || name[i] > '9')
			return -1;
		v = v * 10 + (name[i] - '0');
	}
	return name[4] == '-' ? v : -1;
}

int
gs_db_latest_version(const char *migrations)
{
	const struct gs_embedded *e;
	int v, latest = 0;

	if (migrations == NULL)
		return 0;
	for (e = gs_embedded_files; e->name != NULL; e++)
		if ((v = migration_number(e->name, migrations)) > latest)
			latest = v;
	return latest;
}

static int
read_version(struct gs_db *db, int *out)
{
	struct gs_stmt *st = NULL;
	int64_t v = 0;
	int r;

	if ((r = gs_stmt_prepare(db, "PRAGMA user_version", &st)) != GS_OK)
		return r;
	r = gs_stmt_one_int64(st, 0, &v);
	gs_stmt_finalize(st);
	*out = (int)v;
	return r;
}

/*
 * The schema a set of migrations leaves at a version: every table, index,
 * trigger and view that migrations 1..version create and do not drop
 * again, worked out from the embedded SQL itself, so that a new migration
 * needs nothing written twice.  Only statements that start a line are
 * read, as the migrations are written (schema/README.md):
 *
 *	CREATE [UNIQUE] TABLE|INDEX|TRIGGER|VIEW [IF NOT EXISTS] name ...
 *	    (an index's or trigger's table is the word after ON)
 *	DROP TABLE|INDEX|TRIGGER|VIEW [IF EXISTS] name
 *	    (a dropped table takes its indexes and triggers with it)
 *	ALTER TABLE old RENAME TO new
 *	    (its indexes and triggers follow it)
 *
 * tests/unit/sync-db.c drops every object of a fresh store in turn and
 * expects the open to refuse it: a statement this reading misses fails
 * there.
 */
#define SCHEMA_MAX 256
#define SCHEMA_NAME 64

struct schema_obj {
	char type[8];            /* as sqlite_master says it: "table" ... */
	char name[SCHEMA_NAME];
	char tbl[SCHEMA_NAME];   /* its table; a table's or view's own name */
	int migration;           /* the migration that made it */
	int found;
};

struct schema_set {
	struct schema_obj o[SCHEMA_MAX];
	int n;
};

/*
 * The next word at *p (letters, digits, '_'; or a "quoted" name, without
 * its quotes) into w, skipping white space and commas before it; *p moves
 * past it.  0 when the next thing is not a word ('(', ';', the end).
 */
static size_t
schema_word(const char **p, char *w, size_t cap)
{
	const char *s = *p;
	size_t n = 0;
	int quoted;

	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' ||
	    *s == ',')
		s++;
	quoted = *s == '"';
	if (quoted)
		s++;
	while (n < cap - 1 && (quoted ? *s != '"' && *s != '\0' :
	    *s == '_' || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
	    (*s >= '0' && *s <= '9')))
		w[n++] = *s++;
	if (quoted && *s == '"')
		s++;
	w[n] = '\0';
	*p = s;
	return n;
}

/* Copies name (shorter than SCHEMA_NAME: schema_word's) to dst: snprintf
 * was a third of the reading's time. */
static void
schema_copy(char *dst, const char *name)
{
	size_t n = strlen(name);

	memcpy(dst, name, n + 1);
}

/* Whether word w is the keyword kw (upper case), in any case. */
static int
schema_kw(const char *w, const char *kw)
{
	for (; *w != '\0' && *kw != '\0'; w++, kw++)
		if ((*w >= 'a' && *w <= 'z' ? *w - 'a' + 'A' : *w) != *kw)
			return 0;
	return *w == '\0' && *kw == '\0';
}

/* "table", "index", "trigger", "view" for its keyword, or NULL. */
static const char *
schema_type(const char *w)
{
	static const char *const types[][2] = {
		{ "TABLE", "table" }, { "INDEX", "index" },
		{ "TRIGGER", "trigger" }, { "VIEW", "view" },
	};
	size_t i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (schema_kw(w, types[i][0]))
			return types[i][1];
	return NULL;
}

/* Drops the objects named name (and, for a table, those on it). */
static void
schema_drop(struct schema_set *set, const char *type, const char *name)
{
	int i, k = 0;

	for (i = 0; i < set->n; i++) {
		if (strcmp(set->o[i].name, name) == 0 ||
		    (strcmp(type, "table") == 0 &&
		    strcmp(set->o[i].tbl, name) == 0))
			continue;
		if (k != i)
			set->o[k] = set->o[i];
		k++;
	}
	set->n = k;
}

/* One statement that starts at line p of migration num. */
static int
schema_statement(struct schema_set *set, const char *p, int num,
    const char *file)
{
	char w[SCHEMA_NAME], name[SCHEMA_NAME], tbl[SCHEMA_NAME];
	const char *type;
	struct schema_obj *o;
	int i;

	if (schema_word(&p, w, sizeof(w)) == 0)
		return GS_OK;
	if (schema_kw(w, "CREATE")) {
		schema_word(&p, w, sizeof(w));
		if (schema_kw(w, "UNIQUE"))
			schema_word(&p, w, sizeof(w));
		if ((type = schema_type(w)) == NULL)
			return GS_OK; /* CREATE TEMP ...: not in the file */
		schema_word(&p, name, sizeof(name));
		if (schema_kw(name, "IF")) { /* IF NOT EXISTS name */
			schema_word(&p, w, sizeof(w));
			schema_word(&p, w, sizeof(w));
			schema_word(&p, name, sizeof(name));
		}
		schema_copy(tbl, name);
		if (type[1] == 'n' || type[1] == 'r') { /* index, trigger */
			tbl[0] = '\0';
			for (i = 0; i < 32 && schema_word(&p, w, sizeof(w)) > 0;
			    i++)
				if (schema_kw(w, "ON")) {
					schema_word(&p, tbl, sizeof(tbl));
					break;
				}
		}
		if (name[0] == '\0' || tbl[0] == '\0' || set->n == SCHEMA_MAX)
			return GS_FAIL(GS_EINTERNAL, "%s: a CREATE %s this "
			    "program cannot follow", file, type);
		o = &set->o[set->n++];
		schema_copy(o->type, type);
		schema_copy(o->name, name);
		schema_copy(o->tbl, tbl);
		o->migration = num;
		o->found = 0;
	} else if (schema_kw(w, "DROP")) {
		schema_word(&p, w, sizeof(w));
		if ((type = schema_type(w)) == NULL)
			return GS_OK;
		schema_word(&p, name, sizeof(name));
		if (schema_kw(name, "IF")) { /* IF EXISTS name */
			schema_word(&p, w, sizeof(w));
			schema_word(&p, name, sizeof(name));
		}
		schema_drop(set, type, name);
	} else if (schema_kw(w, "ALTER")) {
		schema_word(&p, w, sizeof(w));
		schema_word(&p, name, sizeof(name));
		schema_word(&p, w, sizeof(w));
		if (!schema_kw(w, "RENAME"))
			return GS_OK; /* ADD or DROP COLUMN */
		schema_word(&p, w, sizeof(w));
		if (!schema_kw(w, "TO"))
			return GS_OK; /* RENAME [COLUMN] a TO b */
		schema_word(&p, tbl, sizeof(tbl));
		for (i = 0; i < set->n; i++) {
			if (strcmp(set->o[i].name, name) == 0)
				schema_copy(set->o[i].name, tbl);
			if (strcmp(set->o[i].tbl, name) == 0)
				schema_copy(set->o[i].tbl, tbl);
		}
	}
	return GS_OK;
}

/* The objects migrations 1..version of this prefix leave, into set. */
static int
schema_expected(struct schema_set *set, const char *migrations, int version)
{
	const struct gs_embedded *e;
	const char *p;
	int num, r;

	set->n = 0;
	/* The table is sorted by name, so migrations come in order. */
	for (e = gs_embedded_files; e->name != NULL; e++) {
		num = migration_number(e->name, migrations);
		if (num < 1 || num > version)
			continue;
		for (p = (const char *)e->data; p != NULL;
		    p = strchr(p, '\n')) {
			if (*p == '\n')
				p++;
			/* Most lines are column definitions and comments:
			 * only C, D and A can start a statement we read. */
			if (*p != 'C' && *p != 'D' && *p != 'A' && *p != 'c' &&
			    *p != 'd' && *p != 'a')
				continue;
			if ((r = schema_statement(set, p, num, e->name)) !=
			    GS_OK)
				return r;
		}
	}
	return GS_OK;
}

/*
 * Whether the database is one of this set of migrations, whole, before
 * anything is written to it: a file that SQLite opens is not necessarily
 * ours (the other program's store, any SQLite database), and migrating it
 * would write our tables into it; and a store of ours that lost a table,
 * an index or a trigger (a DROP by hand, a bad restore) would take saves
 * that a later step cannot use (a collect wrote into a store without an
 * outbox, and only sync failed), or quietly lose what the object kept
 * true (an audit trigger, a unique index).
 *
 * - Version 0 is a new database only while it holds nothing: with tables
 *   in it, it was made by something else, or it is one of ours whose
 *   user_version was lost (running migration 0001 on it would fail at
 *   best).
 * - Past 0, every object that migrations 1..version leave
 *   (schema_expected) is there; past the newest migration embedded, only
 *   the tables of 0001.  A missing table of migration 0001 says
 *   "not the agent's database" too: the two programs' first tables
 *   differ, and the tables 0001 makes are never dropped for good.
 *
 * The version and the names are read by one statement, so one snapshot:
 * another process that migrates meanwhile is seen whole or not at all.
 * The cost, on every open: one scan of sqlite_master, which SQLite has
 * just read to parse the schema, and one pass over the embedded SQL, about
 * 0.02 ms for the agent's store and 0.04 ms for the platform's; less than
 * the check of 0001's tables alone that it replaced, which prepared a
 * statement per table.  GS_ECORRUPT, naming the path, when it is not ours
 * or not whole.
 */
static int
check_ours(struct gs_db *db, const char *path, const char *migrations)
{
	struct schema_set *set = NULL;
	struct gs_stmt *st = NULL;
	const char *type, *name;
	int r, i, version, step, future;

	if ((r = gs_stmt_prepare(db, "SELECT type, name, (SELECT "
	    "user_version FROM pragma_user_version) FROM sqlite_master",
	    &st)) != GS_OK)
		return r;
	step = gs_stmt_step(st);
	version = step == GS_ROW ? (int)gs_stmt_int64(st, 2) : db->version;
	if (step != GS_ROW && step != GS_DONE) {
		r = step;
		goto out;
	}
	if (version == 0) {
		if (step == GS_ROW)
			r = GS_FAIL(GS_ECORRUPT, "%s: damaged, or not the %s's "
			    "database: it holds tables but no schema version",
			    path, migrations);
		goto out;
	}
	/* A store newer than this program is refused as such (gs_db_open):
	 * its later migrations are unknown here, but the tables of 0001
	 * still tell whether it is ours at all. */
	future = version > gs_db_latest_version(migrations);
	if (future)
		version = 1;
	if ((set = gs_calloc(1, sizeof(*set))) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "open: out of memory");
		goto out;
	}
	if ((r = schema_expected(set, migrations, version)) != GS_OK)
		goto out;
	for (; step == GS_ROW; step = gs_stmt_step(st)) {
		type = gs_stmt_text(st, 0);
		name = gs_stmt_text(st, 1);
		if (type == NULL || name == NULL)
			continue;
		for (i = 0; i < set->n; i++)
			if (strcmp(set->o[i].name, name) == 0 &&
			    strcmp(set->o[i].type, type) == 0) {
				set->o[i].found = 1;
				break;
			}
	}
	if (step != GS_DONE) {
		r = step;
		goto out;
	}
	for (i = 0; i < set->n; i++) {
		if (set->o[i].found || (future &&
		    strcmp(set->o[i].type, "table") != 0))
			continue;
		if (set->o[i].migration == 1 &&
		    strcmp(set->o[i].type, "table") == 0)
			r = GS_FAIL(GS_ECORRUPT, "%s: damaged, or not the %s's "
			    "database: it has no table %s", path, migrations,
			    set->o[i].name);
		else
			r = GS_FAIL(GS_ECORRUPT, "%s: damaged: %s %s is "
			    "missing; nothing was changed", path,
			    set->o[i].type, set->o[i].name);
		goto out;
	}
	r = GS_OK;
out:
	gs_stmt_finalize(st);
	gs_free(set);
	return r;
}

/*
 * Runs every migration past the database's version in one transaction,
 * each with the user_version it brings, so a crash leaves the database at
 * the old version or the newest, never in between.  One transaction for
 * all, not one each: when one fails, those before it are rolled back too,
 * and a store that cannot be migrated is left exactly as it was (a store
 * whose user_version was set back ran again the migrations that happen to
 * succeed twice, which rebuilt tables and committed, before the next one
 * failed on a table it already had).  The version is read again inside
 * the transaction: another process may have migrated since we looked.
 */
static int
migrate(struct gs_db *db, const char *migrations)
{
	const struct gs_embedded *e;
	char pragma[64];
	int r, num, from;

	if ((r = gs_db_begin(db)) != GS_OK)
		return r;
	if ((r = read_version(db, &from)) != GS_OK)
		goto out;
	/* The table is sorted by name, so migrations run in number order. */
	for (e = gs_embedded_files; e->name != NULL; e++) {
		num = migration_number(e->name, migrations);
		if (num <= from)
			continue;
		if ((r = gs_db_exec(db, (const char *)e->data)) != GS_OK) {
			/* Name the file: the detail came from SQLite alone. */
			r = refail(r, e->name);
			goto out;
		}
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d",
		    num);
		if ((r = gs_db_exec(db, pragma)) != GS_OK)
			goto out;
	}
	if ((r = gs_db_commit(db)) != GS_OK)
		goto out;
	if ((r = read_version(db, &db->version)) != GS_OK)
		return r;
	if (db->version > from)
		gs_log(GS_LOG_INFO, "database migrated from schema %d to %d",
		    from, db->version);
	return GS_OK;
out:
	gs_db_rollback(db);
	return r;
}

/* Runs a pragma that answers with a row (journal_mode does). */
static int
pragma_row(struct gs_db *db, const char *sql, const char *want)
{
	struct gs_stmt *st = NULL;
	const char *t;
	int r;

	if ((r = gs_stmt_prepare(db, sql, &st)) != GS_OK)
		return r;
	r = gs_stmt_step(st);
	if (r == GS_ROW) {
		t = gs_stmt_text(st, 0);
		if (want != NULL && (t == NULL || strcmp(t, want) != 0))
			r = GS_FAIL(GS_EDB, "%s: got %s, wanted %s", sql,
			    t != NULL ? t : "(null)", want);
		else
			r = GS_OK;
	} else if (r == GS_DONE) {
		r = GS_OK;
	}
	gs_stmt_finalize(st);
	return r;
}

/* The synchronous setting the connection was opened with. */
static const char *
sync_pragma(const struct gs_db *db)
{
	return db->normal_sync ? "PRAGMA synchronous=NORMAL" :
	    "PRAGMA synchronous=FULL";
}

int
gs_db_journal_direct(struct gs_db *db)
{
	int ok;

	if (db == NULL || db->ro || db->direct || db->ckpt != NULL ||
	    !sqlite3_get_autocommit(db->h))
		return 0;
	/* Leaving WAL mode needs the only connection to the store: SQLite
	 * answers busy at once when there is another, and the busy timeout
	 * would only make the caller wait for that connection to close. */
	sqlite3_busy_timeout(db->h, 0);
	ok = gs_db_exec(db, "PRAGMA synchronous=EXTRA") == GS_OK &&
	    pragma_row(db, "PRAGMA journal_mode=DELETE", "delete") == GS_OK;
	sqlite3_busy_timeout(db->h, BUSY_MS);
	if (!ok) {
		(void)gs_db_exec(db, sync_pragma(db));
		gs_errmsg_clear();
		return 0;
	}
	db->direct = 1;
	/* The WAL file it synced is gone; wal_fd_ready opens the next. */
	if (db->wal_fd >= 0) {
		(void)close(db->wal_fd);
		db->wal_fd = -1;
	}
	return 1;
}

int
gs_db_journal_wal(struct gs_db *db)
{
	int r;

	if (db == NULL || !db->direct)
		return GS_OK;
	/* WAL mode and the synchronous setting back, then a read: in WAL
	 * mode a connection keeps a SHARED lock on the database file from
	 * its first read on, and without it another connection that closes
	 * would take itself for the last one and delete the WAL under this
	 * one (tests/unit/agent-store.c test_import_keeps_lock). */
	if ((r = pragma_row(db, "PRAGMA journal_mode=WAL", "wal")) != GS_OK ||
	    (r = gs_db_exec(db, sync_pragma(db))) != GS_OK ||
	    (r = pragma_row(db, "SELECT count(*) FROM sqlite_schema", NULL)) !=
	    GS_OK)
		return r;
	db->direct = 0;
	return GS_OK;
}

/*
 * SQLite's memory statistics take a global mutex on every allocation
 * (several per statement) and nothing here reads them: off, once, before
 * SQLite initializes.  A no-op (SQLITE_MISUSE, ignored) if something
 * initialized SQLite first.
 */

/* ------------------------------------------- the WAL write coalescer */

/*
 * A VFS over SQLite's default one that gathers the writes SQLite makes to
 * a WAL file into one write() while they follow each other in the file.
 * SQLite writes a WAL frame as two write() calls, its 24-byte header and
 * its page; a bulk import of 100,000 persons makes about 40,000 of them,
 * each a system call on the inserting thread, which is the import's
 * slowest.  Here they go out up to WALBUF_CAP bytes at a time.
 *
 * The rules that keep this invisible to SQLite:
 * - the bytes are written, in order, before any other call on that file
 *   returns (read, sync, truncate, size, lock, unlock, file control,
 *   close): SQLite cannot see the file but through those calls;
 * - a WAL's bytes are also written before any lock call on its
 *   database's file (the shared-memory locks included): a transaction
 *   that rolled back must not leave frames behind that would be written
 *   later, over what another connection committed at the same place
 *   once the write lock was free (the WAL's file knows its database's
 *   by the name SQLite opened both with, sqlite3_filename_database);
 * - SQLite syncs the WAL before a commit is published in the WAL index
 *   (synchronous=FULL, every connection here: gs_db_open), and the
 *   database file after a checkpoint before the WAL index says so, so no
 *   reader is ever pointed at bytes that are not in the file yet;
 * - a write that fails is reported by the call that made it happen, and
 *   from then on every sync, read and write of that file fails with it
 *   until a lock of the database's shared memory is released (a
 *   transaction's end, which SQLite reaches by rolling back when any
 *   call failed): what SQLite believes written is never committed
 *   without it.
 * A crash loses at most what was not synced, which recovery ignores
 * anyway.  The main database file is gathered the same way (a
 * checkpoint writes its pages in order); other files pass straight
 * through.
 */
/* Under 128 KiB: SQLite's unix VFS writes at most 0x1ffff bytes per
 * pwrite() call, and a multiple of 128 KiB would be cut to nothing. */
#define WALBUF_CAP (64 * 1024)
#define WALBUF_VFS "gridsync-walbuf"

struct walbuf_file {
	sqlite3_file base;         /* pMethods: walbuf_methods */
	sqlite3_file *real;        /* the default VFS's file, right after */
	int coalesce;              /* a WAL or main database file */
	int defer;                 /* a WAL: xSync writes, does not sync */
	int err;                   /* a gathered write failed: this code */
	unsigned char *buf;        /* WALBUF_CAP bytes, made at first use */
	size_t len;                /* bytes waiting */
	sqlite3_int64 off;         /* where they go */
	/* A main database file: the name it was opened by, its WAL's file
	 * while that is open, and the list of them (under walbuf_mu).  A WAL
	 * file: its database's file (under walbuf_mu). */
	const char *name;
	struct walbuf_file *wal, *db, *next;
};

static sqlite3_vfs walbuf_vfs;
static sqlite3_vfs *walbuf_base;
static int walbuf_ok;
static pthread_mutex_t walbuf_mu = PTHREAD_MUTEX_INITIALIZER;
static struct walbuf_file *walbuf_dbs;

static int
walbuf_flush(struct walbuf_file *f)
{
	size_t n = f->len;
	int rc;

	if (f->err != SQLITE_OK)
		return f->err;
	if (n == 0)
		return SQLITE_OK;
	f->len = 0;
	rc = f->real->pMethods->xWrite(f->real, f->buf, (int)n, f->off);
	if (rc != SQLITE_OK)
		f->err = rc;
	return rc;
}

/* Before a lock call on a database file: its WAL's bytes. */
static int
walbuf_flush_wal(struct walbuf_file *db)
{
	return db->wal != NULL ? walbuf_flush(db->wal) : SQLITE_OK;
}

#define WB(x) ((struct walbuf_file *)(x))
#define REAL(x) (WB(x)->real)
/* Flushes, then forwards the call: every method but write. */
#define WB_FLUSHED(x, call) do { \
	int rc_ = walbuf_flush(WB(x)); \
	if (rc_ != SQLITE_OK) \
		return rc_; \
	return REAL(x)->pMethods->call; \
} while (0)

static int
walbuf_close(sqlite3_file *x)
{
	struct walbuf_file *f = WB(x), **pp;
	int rc = walbuf_flush(f), rc2;

	(void)pthread_mutex_lock(&walbuf_mu);
	if (f->db != NULL)
		f->db->wal = NULL;
	if (f->wal != NULL)
		f->wal->db = NULL;
	for (pp = &walbuf_dbs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == f) {
			*pp = f->next;
			break;
		}
	(void)pthread_mutex_unlock(&walbuf_mu);
	rc2 = REAL(x)->pMethods->xClose(REAL(x));
	sqlite3_free(WB(x)->buf);
	WB(x)->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int
walbuf_read(sqlite3_file *x, void *p, int n, sqlite3_int64 off)
{
	WB_FLUSHED(x, xRead(REAL(x), p, n, off));
}

static int
walbuf_write(sqlite3_file *x, const void *p, int n, sqlite3_int64 off)
{
	struct walbuf_file *f = WB(x);
	int rc;

	if (!f->coalesce || n <= 0)
		return f->real->pMethods->xWrite(f->real, p, n, off);
	if (f->err != SQLITE_OK)
		return f->err;
	if (f->len > 0 && off == f->off + (sqlite3_int64)f->len &&
	    f->len + (size_t)n <= WALBUF_CAP) {
		memcpy(f->buf + f->len, p, (size_t)n);
		f->len += (size_t)n;
		return SQLITE_OK;
	}
	if ((rc = walbuf_flush(f)) != SQLITE_OK)
		return rc;
	if ((size_t)n >= WALBUF_CAP / 2)
		return f->real->pMethods->xWrite(f->real, p, n, off);
	if (f->buf == NULL && (f->buf = sqlite3_malloc(WALBUF_CAP)) == NULL)
		return f->real->pMethods->xWrite(f->real, p, n, off);
	memcpy(f->buf, p, (size_t)n);
	f->len = (size_t)n;
	f->off = off;
	return SQLITE_OK;
}

static int
walbuf_truncate(sqlite3_file *x, sqlite3_int64 size)
{
	WB_FLUSHED(x, xTruncate(REAL(x), size));
}

static void
walbuf_set_defer(struct walbuf_file *w, int on)
{
	w->defer = on;
}

static int
walbuf_sync(sqlite3_file *x, int flags)
{
	/* gs_db_commit_nosync: the frames reach the file (the rule above
	 * still holds), the disk is the caller's gs_db_sync_wal. */
	if (WB(x)->defer)
		return walbuf_flush(WB(x));
	WB_FLUSHED(x, xSync(REAL(x), flags));
}

static int
walbuf_size(sqlite3_file *x, sqlite3_int64 *size)
{
	WB_FLUSHED(x, xFileSize(REAL(x), size));
}

static int
walbuf_lock(sqlite3_file *x, int level)
{
	int rc = walbuf_flush_wal(WB(x));

	if (rc != SQLITE_OK)
		return rc;
	WB_FLUSHED(x, xLock(REAL(x), level));
}

static int
walbuf_unlock(sqlite3_file *x, int level)
{
	/* An unlock goes ahead whatever: the failure stays with the file
	 * (walbuf_flush), where the next sync finds it. */
	(void)walbuf_flush_wal(WB(x));
	(void)walbuf_flush(WB(x));
	return REAL(x)->pMethods->xUnlock(REAL(x), level);
}

static int
walbuf_reserved(sqlite3_file *x, int *out)
{
	WB_FLUSHED(x, xCheckReservedLock(REAL(x), out));
}

static int
walbuf_fcntl(sqlite3_file *x, int op, void *arg)
{
	WB_FLUSHED(x, xFileControl(REAL(x), op, arg));
}

static int
walbuf_sector(sqlite3_file *x)
{
	return REAL(x)->pMethods->xSectorSize(REAL(x));
}

static int
walbuf_devchar(sqlite3_file *x)
{
	return REAL(x)->pMethods->xDeviceCharacteristics(REAL(x));
}

static int
walbuf_shm_map(sqlite3_file *x, int pg, int pgsz, int extend,
    void volatile **pp)
{
	WB_FLUSHED(x, xShmMap(REAL(x), pg, pgsz, extend, pp));
}

static int
walbuf_shm_lock(sqlite3_file *x, int offset, int n, int flags)
{
	struct walbuf_file *f = WB(x);
	int rc = walbuf_flush_wal(f);

	if (rc == SQLITE_OK)
		rc = walbuf_flush(f);
	if (flags & SQLITE_SHM_UNLOCK) {
		/* An unlock goes ahead whatever.  A transaction ends with
		 * one: it committed only if its sync saw no failed write,
		 * so what a failure lost was rolled back, and the files may
		 * be written again. */
		f->err = SQLITE_OK;
		if (f->wal != NULL)
			f->wal->err = SQLITE_OK;
	} else if (rc != SQLITE_OK) {
		return rc;
	}
	return REAL(x)->pMethods->xShmLock(REAL(x), offset, n, flags);
}

static void
walbuf_shm_barrier(sqlite3_file *x)
{
	(void)walbuf_flush_wal(WB(x));
	(void)walbuf_flush(WB(x));
	REAL(x)->pMethods->xShmBarrier(REAL(x));
}

static int
walbuf_shm_unmap(sqlite3_file *x, int del)
{
	WB_FLUSHED(x, xShmUnmap(REAL(x), del));
}

static int
walbuf_fetch(sqlite3_file *x, sqlite3_int64 off, int n, void **pp)
{
	WB_FLUSHED(x, xFetch(REAL(x), off, n, pp));
}

static int
walbuf_unfetch(sqlite3_file *x, sqlite3_int64 off, void *p)
{
	WB_FLUSHED(x, xUnfetch(REAL(x), off, p));
}

static const sqlite3_io_methods walbuf_methods = {
	3,
	walbuf_close, walbuf_read, walbuf_write, walbuf_truncate,
	walbuf_sync, walbuf_size, walbuf_lock, walbuf_unlock,
	walbuf_reserved, walbuf_fcntl, walbuf_sector, walbuf_devchar,
	walbuf_shm_map, walbuf_shm_lock, walbuf_shm_barrier,
	walbuf_shm_unmap, walbuf_fetch, walbuf_unfetch,
};

static int
walbuf_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *x,
    int flags, int *out_flags)
{
	struct walbuf_file *f = WB(x);
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	f->coalesce = (flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_DB)) != 0;
	rc = walbuf_base->xOpen(walbuf_base, name, f->real, flags, out_flags);
	/* SQLite closes a file whose open failed only if pMethods is set. */
	f->base.pMethods = f->real->pMethods != NULL ? &walbuf_methods : NULL;
	if (rc != SQLITE_OK || f->base.pMethods == NULL || name == NULL)
		return rc;
	(void)pthread_mutex_lock(&walbuf_mu);
	if (flags & SQLITE_OPEN_MAIN_DB) {
		f->name = name;
		f->next = walbuf_dbs;
		walbuf_dbs = f;
	} else if (flags & SQLITE_OPEN_WAL) {
		/* The same pointer the pager opened its database by. */
		const char *db = sqlite3_filename_database(name);
		struct walbuf_file *d;

		for (d = walbuf_dbs; d != NULL; d = d->next)
			if (d->name == db && d->wal == NULL) {
				d->wal = f;
				f->db = d;
				break;
			}
	}
	(void)pthread_mutex_unlock(&walbuf_mu);
	return rc;
}

/* Registers the VFS (once, from config_sqlite); walbuf_ok says whether
 * it is there.  The default VFS must be version 3 (unix is). */
static void
walbuf_register(void)
{
	sqlite3_vfs *base = sqlite3_vfs_find(NULL);

	if (base == NULL || base->iVersion < 3 ||
	    base->szOsFile < 0)
		return;
	walbuf_base = base;
	walbuf_vfs = *base;
	walbuf_vfs.zName = WALBUF_VFS;
	walbuf_vfs.pNext = NULL;
	/* Our part first, then the real file, aligned as a pointer. */
	walbuf_vfs.szOsFile = (int)(sizeof(struct walbuf_file) +
	    (size_t)base->szOsFile);
	walbuf_vfs.xOpen = walbuf_open;
	walbuf_ok = sqlite3_vfs_register(&walbuf_vfs, 0) == SQLITE_OK;
}

static pthread_once_t config_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------- commits synced later */

/* The WAL file of db's main database when it goes through walbuf. */
static struct walbuf_file *
wal_of(struct gs_db *db)
{
	sqlite3_file *f = NULL;

	if (sqlite3_file_control(db->h, "main", SQLITE_FCNTL_JOURNAL_POINTER,
	    &f) != SQLITE_OK || f == NULL || f->pMethods != &walbuf_methods ||
	    !WB(f)->coalesce)
		return NULL;
	return WB(f);
}

/* The WAL's name, or NULL (a database in memory). */
static const char *
wal_name(struct gs_db *db)
{
	sqlite3_filename name = sqlite3_db_filename(db->h, "main");

	if (name == NULL || *name == '\0')
		return NULL;
	return sqlite3_filename_wal(name);
}

/* A descriptor of the WAL file to sync, or -1 (none yet: no WAL). */
static int
wal_open(struct gs_db *db)
{
	const char *wal = wal_name(db);

	return wal != NULL ? open(wal, O_RDONLY | O_CLOEXEC) : -1;
}

/*
 * GS_OK when the descriptor gs_db_sync_wal syncs is the WAL's file,
 * opened now if the WAL did not exist when the connection was opened (a
 * new database).  SQLite removes a WAL only when the last connection
 * closes, never while this one is open (gs_db_journal_direct, which
 * takes the store out of WAL mode, drops the descriptor); if the name
 * ever named another file, the caller commits the usual way and the
 * descriptor is left alone (a gs_db_sync_wal may be using it).  Called inside the caller's
 * transaction; the descriptor is published with an atomic store, and a
 * thread that syncs has seen the commit it syncs for through the lock
 * that orders it after that commit.
 */
static int
wal_fd_ready(struct gs_db *db)
{
	const char *wal = wal_name(db);
	struct stat a, b;
	int fd;

	if (db->wal_fd < 0 && wal != NULL && (fd = open(wal, O_RDONLY |
	    O_CLOEXEC)) >= 0)
		__atomic_store_n(&db->wal_fd, fd, __ATOMIC_RELEASE);
	if (db->wal_fd < 0 || wal == NULL || fstat(db->wal_fd, &a) != 0 ||
	    stat(wal, &b) != 0 || a.st_dev != b.st_dev ||
	    a.st_ino != b.st_ino)
		return GS_EIO;
	return GS_OK;
}

/* Steps COMMIT; with nosync, without waiting for the disk where the
 * WAL goes through walbuf (gs_db_commit_nosync). */
static int
commit_step(struct gs_db *db, int nosync)
{
	struct walbuf_file *w;
	int r;

	if (!nosync || (w = wal_of(db)) == NULL || wal_fd_ready(db) != GS_OK)
		return gs_stmt_step(db->commit);
	w->defer = 1;
	db->defer_wal = w;
	r = gs_stmt_step(db->commit);
	db->defer_wal = NULL;
	w->defer = 0;
	return r;
}

int
gs_db_commit_nosync(struct gs_db *db)
{
	int r;

	if (db->depth > 1)
		return gs_db_commit(db);
	r = commit_step(db, 1);
	return r == GS_DONE ? GS_OK : r;
}

int
gs_db_sync_wal(struct gs_db *db)
{
	int fd = __atomic_load_n(&db->wal_fd, __ATOMIC_ACQUIRE);

	if (fd < 0)
		return GS_OK;
	if (fdatasync(fd) != 0)
		return GS_FAIL(GS_EIO, "sync of the WAL: %s", strerror(errno));
	return GS_OK;
}

/* ------------------------------------------------ a home that is read-only */

/* The directory that holds path, for messages ("." when none is named). */
static void
dir_of(const char *path, char *dir, size_t n)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		gs_strlcpy(dir, ".", n);
	else
		snprintf(dir, n, "%.*s", slash == path ? 1 :
		    (int)(slash - path), path);
}

/*
 * Whether the database file at path can be written, with SQLite's WAL
 * beside it: 0, or the errno that says why not (EROFS: a read-only mount,
 * even for root; EACCES: permissions).  SQLite makes the -wal and -shm
 * files in the file's directory, so that must be writable too, unless
 * both are there already and writable.  A file that is not there (or any
 * other trouble looking) gives 0: the open reports it as before.
 */
static int
cannot_write(const char *path)
{
	char dir[PATH_MAX], aux[PATH_MAX + 8];
	int e;

	if (access(path, F_OK) != 0)
		return 0;
	if (access(path, W_OK) != 0)
		return errno == EROFS || errno == EACCES || errno == EPERM ?
		    errno : 0;
	dir_of(path, dir, sizeof(dir));
	if (access(dir, W_OK) == 0)
		return 0;
	e = errno;
	if (e != EROFS && e != EACCES && e != EPERM)
		return 0;
	snprintf(aux, sizeof(aux), "%s-wal", path);
	if (access(aux, W_OK) == 0) {
		snprintf(aux, sizeof(aux), "%s-shm", path);
		if (access(aux, W_OK) == 0)
			return 0;
	}
	return e;
}

/*
 * "file:" URI of path with immutable=1 (SQLITE_OPEN_URI).  '%', '?' and
 * '#' are escaped, and so is every byte outside printable ASCII; an
 * absolute path gets an empty authority ("file:///..."), so that one
 * beginning with "//" is not read as a host.
 */
static int
immutable_uri(const char *path, char *uri, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	const unsigned char *p;
	const char *pre = path[0] == '/' ? "file://" : "file:";
	const char *post = "?immutable=1";

	if (strlen(pre) >= n)
		return GS_FAIL(GS_EINVAL, "%s: path too long", path);
	o = gs_strlcpy(uri, pre, n);
	for (p = (const unsigned char *)path; *p != '\0'; p++) {
		if (o + 4 >= n)
			return GS_FAIL(GS_EINVAL, "%s: path too long", path);
		if (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' ||
		    *p >= 0x7f) {
			uri[o++] = '%';
			uri[o++] = hex[*p >> 4];
			uri[o++] = hex[*p & 15];
		} else {
			uri[o++] = (char)*p;
		}
	}
	uri[o] = '\0';
	if (o + strlen(post) >= n)
		return GS_FAIL(GS_EINVAL, "%s: path too long", path);
	gs_strlcpy(uri + o, post, n - o);
	return GS_OK;
}

/*
 * Opens a database that cannot be written, for a caller that only reads
 * (GS_DB_READ_FALLBACK), and reads its version.  What SQLite documents
 * for a WAL database opened read-only (since 3.22.0): it opens if its
 * -wal and -shm files are there (the -shm then read into private memory,
 * not written), or can be made, or if the database is declared
 * immutable.  So:
 *
 * 1. SQLITE_OPEN_READONLY.  Enough when the -shm is there: a program
 *    that stopped without closing (a crash, power lost, the flash
 *    remounted read-only under it) leaves both files, and this reads
 *    every commit in the WAL as a writer would.
 * 2. Only when that fails with SQLITE_CANTOPEN or SQLITE_READONLY_* (no
 *    -shm, and none can be made: the normal state of a store closed cleanly, whose last close
 *    checkpointed and removed both files), immutable=1: SQLite reads the
 *    database file alone, with no lock and no -shm.  That is exact when
 *    no -wal is there, since then the file holds every commit.  With a
 *    -wal that holds frames it would silently show an older store
 *    (immutable ignores the WAL), so that is refused instead.
 *
 * The danger of immutable=1 is a writer that SQLite cannot see: another
 * process writing the same file through a writable path (a read-only
 * bind mount over a writable directory, a chmod that a process of
 * another user ignores).  A read could then meet pages a checkpoint is
 * rewriting, and answer from a mix of old and new (or report the file
 * damaged).  It never writes, so the store itself is not at risk, and
 * the caller tells the user the view may miss a writer's latest changes
 * (gs_db_readonly gives GS_DB_RO_SNAPSHOT).
 */
static int
open_readonly(struct gs_db *db, const char *path, int oflags)
{
	char uri[PATH_MAX * 3 + 32];
	struct stat sb;
	int r, rc;

	rc = sqlite3_open_v2(path, &db->h, oflags | SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_EXRESCODE, test_vfs);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db->h, BUSY_MS);
		if ((r = read_version(db, &db->version)) == GS_OK) {
			db->ro = GS_DB_RO;
			return GS_OK;
		}
		rc = sqlite3_errcode(db->h);
	}
	/* No -shm and none can be made: SQLITE_CANTOPEN on a read-only
	 * mount, SQLITE_READONLY_DIRECTORY (or another SQLITE_READONLY_*)
	 * in a directory the user may not write. */
	if ((rc & 0xff) != SQLITE_CANTOPEN && (rc & 0xff) != SQLITE_READONLY) {
		r = GS_FAIL(map_rc(rc), "%s: %s", path, db->h ?
		    sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
		return r;
	}
	snprintf(uri, sizeof(uri), "%s-wal", path);
	if (stat(uri, &sb) == 0 && sb.st_size > 0)
		return GS_FAIL(GS_EIO, "%s: its -wal file holds changes that "
		    "only a writable home can read (no -shm file, and none "
		    "can be made)", path);
	while (db->stmts != NULL)
		gs_stmt_finalize(db->stmts);
	sqlite3_close_v2(db->h);
	db->h = NULL;
	if ((r = immutable_uri(path, uri, sizeof(uri))) != GS_OK)
		return r;
	rc = sqlite3_open_v2(uri, &db->h, oflags | SQLITE_OPEN_READONLY |
	    SQLITE_OPEN_URI | SQLITE_OPEN_EXRESCODE, test_vfs);
	if (rc != SQLITE_OK)
		return GS_FAIL(map_rc(rc), "%s: %s", path, db->h ?
		    sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
	if ((r = read_version(db, &db->version)) != GS_OK)
		return r;
	db->ro = GS_DB_RO_SNAPSHOT;
	return GS_OK;
}

int
gs_db_readonly(struct gs_db *db)
{
	return db->ro;
}

static void
config_sqlite(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	walbuf_register();
}

int
gs_db_open(const char *path, const char *migrations, int flags,
    struct gs_db **out)
{
	struct gs_db *db = NULL;
	int r = GS_EINTERNAL, rc, oflags, latest, e;

	*out = NULL;
	(void)pthread_once(&config_once, config_sqlite);
	if ((db = gs_calloc(1, sizeof(*db))) == NULL)
		return GS_FAIL(GS_ENOMEM, "open: out of memory");
	db->wal_fd = -1;
	db->wb_fd = -1;
	if (flags & GS_DB_READONLY)
		oflags = SQLITE_OPEN_READONLY;
	else
		oflags = SQLITE_OPEN_READWRITE |
		    ((flags & GS_DB_CREATE) ? SQLITE_OPEN_CREATE : 0);
	/* EXRESCODE: extended result codes from the start, so that even an
	 * open that fails says which I/O step failed. */
	if (flags & GS_DB_ONE_THREAD)
		oflags |= SQLITE_OPEN_NOMUTEX;
	/*
	 * A home that cannot be written (a read-only mount, chmod a-w):
	 * SQLite would open the file read-only anyway and then fail on the
	 * -shm it cannot make, "unable to open database file", for reads
	 * too.  Say what is wrong before anything is tried, and for a
	 * caller that only reads, open it read-only (open_readonly).
	 */
	if (!(flags & GS_DB_READONLY) && (e = cannot_write(path)) != 0) {
		char dir[PATH_MAX];

		dir_of(path, dir, sizeof(dir));
		if (!(flags & GS_DB_READ_FALLBACK)) {
			r = GS_FAIL(GS_EIO, "%s is read-only (%s): nothing "
			    "can be changed there", dir, strerror(e));
			goto out;
		}
		db->vfs = NULL;
		if ((r = open_readonly(db, path, oflags & SQLITE_OPEN_NOMUTEX))
		    != GS_OK)
			goto out;
		sqlite3_extended_result_codes(db->h, 1);
	} else {
		db->vfs = test_vfs != NULL ? test_vfs :
		    (flags & GS_DB_COALESCE_WAL) &&
		    !(flags & GS_DB_NORMAL_SYNC) && walbuf_ok ? WALBUF_VFS :
		    NULL;
		rc = sqlite3_open_v2(path, &db->h, oflags |
		    SQLITE_OPEN_EXRESCODE, db->vfs);
		if (rc != SQLITE_OK) {
			r = GS_FAIL(map_rc(rc), "%s: %s", path,
			    db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc));
			goto out;
		}
		sqlite3_extended_result_codes(db->h, 1);
		/* Another process (sync --watch beside a collect) may hold
		 * the write lock for a moment; wait for it rather than fail
		 * the save. */
		sqlite3_busy_timeout(db->h, BUSY_MS);

		/*
		 * Read the version before anything writes: the first read
		 * is where a file that is not a database shows up
		 * (SQLITE_NOTADB), and a database from a newer program must
		 * be refused before even the journal mode is touched, so
		 * that it is left exactly as it was.
		 */
		if ((r = read_version(db, &db->version)) != GS_OK) {
			r = refail(r, path);
			goto out;
		}
	}
	if (db->ro)
		flags |= GS_DB_READONLY;
	if (migrations != NULL &&
	    (r = check_ours(db, path, migrations)) != GS_OK)
		goto out;
	latest = gs_db_latest_version(migrations);
	if (migrations != NULL && db->version > latest) {
		r = GS_FAIL(GS_EDBVERSION, "database schema %d is newer than "
		    "this program (%d); upgrade the program", db->version,
		    latest);
		goto out;
	}

	if (!(flags & GS_DB_READONLY)) {
		/* WAL: readers never block the writer, and a commit is one
		 * append + fsync.  FULL: a commit survives power loss, which
		 * is what "saved" promises the worker. */
		if ((r = pragma_row(db, "PRAGMA journal_mode=WAL", "wal"))
		    != GS_OK)
			goto out;
		db->normal_sync = (flags & GS_DB_NORMAL_SYNC) != 0;
		if ((r = gs_db_exec(db, sync_pragma(db))) != GS_OK)
			goto out;
	}
	if ((r = gs_db_exec(db, "PRAGMA foreign_keys=ON")) != GS_OK)
		goto out;
	/* Temporary b-trees (the lists of CHECK ... IN (...), sorts) and
	 * statement journals stay in memory: as files they cost a write()
	 * per page, about ten per record at ingest, for data that is never
	 * needed after the statement.  Durability is the WAL's business and
	 * does not change. */
	if ((r = gs_db_exec(db, "PRAGMA temp_store=MEMORY")) != GS_OK)
		goto out;
	if ((r = gs_stmt_prepare(db, "BEGIN IMMEDIATE", &db->begin)) != GS_OK ||
	    (r = gs_stmt_prepare(db, "COMMIT", &db->commit)) != GS_OK ||
	    (r = gs_stmt_prepare(db, "ROLLBACK", &db->rollback)) != GS_OK ||
	    (r = gs_stmt_prepare(db, "SAVEPOINT gs_group", &db->sp_begin)) !=
	    GS_OK ||
	    (r = gs_stmt_prepare(db, "RELEASE gs_group", &db->sp_release)) !=
	    GS_OK ||
	    (r = gs_stmt_prepare(db, "ROLLBACK TO gs_group",
	    &db->sp_rollback)) != GS_OK)
		goto out;
	/* A read-only open never migrates; a store opened read-only
	 * because its home cannot be written says why it cannot be read. */
	if (migrations != NULL && db->ro && db->version < latest) {
		r = GS_FAIL(GS_EIO, "%s needs its schema upgraded (%d to %d) "
		    "and its home is read-only: nothing was changed; make it "
		    "writable and run this again", path, db->version, latest);
		goto out;
	}
	if (migrations != NULL && !(flags & GS_DB_READONLY) &&
	    db->version < latest && (r = migrate(db, migrations)) != GS_OK) {
		r = refail(r, path);
		goto out;
	}
	/* gs_db_commit_nosync's descriptor, opened now so that the first
	 * gs_db_sync_wal of this connection also covers what an earlier
	 * process committed without waiting for the disk. */
	if (db->vfs != NULL && strcmp(db->vfs, WALBUF_VFS) == 0 &&
	    !(flags & GS_DB_READONLY))
		db->wal_fd = wal_open(db);
	*out = db;
	db = NULL;
	r = GS_OK;
out:
	gs_db_close(db);
	return r;
}

void
gs_db_close(struct gs_db *db)
{
	if (db == NULL)
		return;
	gs_db_checkpointer_stop(db, NULL);
	if (db->wal_fd >= 0)
		(void)close(db->wal_fd);
	while (db->stmts != NULL)
		gs_stmt_finalize(db->stmts);
	/* sqlite3_close_v2 also copes with a handle that failed to open. */
	sqlite3_close_v2(db->h);
	/* Only now: SQLite has let go of its locks on the file. */
	if (db->wb_fd >= 0)
		(void)close(db->wb_fd);
	gs_free(db);
}
