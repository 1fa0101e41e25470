/*
 * store_sqlite.c - the platform store on SQLite (sync/db.h), schema in
 * schema/platform.
 *
 * Every statement is prepared when the store opens, so a typo in SQL fails
 * the first test that opens a store.  The database is in WAL mode with
 * synchronous=FULL (gs_db_open): a receipt is only signed for a batch whose
 * transaction will be durable once COMMIT returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "db.h"
#include "store.h"
#include "core/banned.h"

enum {
	S_META_GET,
	S_META_SET,
	S_TOKEN_PUT,
	S_TOKEN_GET,
	S_TOKEN_USE,
	S_TOKEN_EXPIRE,
	S_DEVICE_INSERT,
	S_DEVICE_GET,
	S_DEVICE_ALL,
	S_DEVICE_REVOKE,
	S_DEVICE_TOUCH,
	S_DEVICE_MISSING,
	S_BATCH_FIND,
	S_BATCH_INSERT,
	S_BATCH_ENVELOPE,
	S_BATCH_FINISH,
	S_BATCH_HASH_AT,
	S_BATCH_PREV_AT,
	S_BATCH_CHAIN,
	S_LEDGER_SET,
	S_RECORD_GET,
	S_RECORD_OTHERS,
	S_RECORD_INSERT,
	S_RECORD_UPDATE,
	S_FEED_RECORD,
	S_TALLY_ADD,
	S_RECATT_CLEAR,
	S_RECATT_ADD,
	S_REVISION_PUT,
	S_CLOCK_SUSPECT_PUT,
	S_CHANGE_FIND,
	S_CHANGE_PUT,
	S_CHANGE_UNCLAIM,
	S_RUN_BEGIN,
	S_RUN_FROM,
	S_RUN_LEDGER,
	S_RUN_FEED,
	S_RUN_RELEASE,
	S_RUN_UNDO,
	S_CONFLICT_PUT,
	S_QUARANTINE_PUT,
	S_RECORD_EACH,
	S_QUARANTINE_EACH,
	S_CONFLICT_EACH,
	S_MISSING_RANGES,
	S_DEVICE_QUARANTINED,
	S_DEVICE_CONFLICTS,
	S_DEVICE_REVISIONS,
	S_RECORDS_BY_TYPE,
	S_COUNT_
};

/*
 * Every statement of the store, by purpose.  Parameters are numbered so
 * a reader can match binds to columns.  Conditions that make an operation
 * safe against a concurrent one live in the SQL itself (S_TOKEN_USE), not
 * in a read-then-write in C.
 */
static const char *const sql[S_COUNT_] = {
	[S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[S_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2) "
	    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
	[S_TOKEN_PUT] = "INSERT INTO enroll_tokens (token_id, token, worker, "
	    "name, grid, created_at, expires_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_TOKEN_GET] = "SELECT token, worker, name, grid, created_at, "
	    "expires_at, used_at FROM enroll_tokens WHERE token_id = ?1",
	/* The condition makes redeeming race-free: only one caller can
	 * turn an unused, unexpired token into a used one. */
	[S_TOKEN_USE] = "UPDATE enroll_tokens SET used_at = ?2, token = NULL, "
	    "device_id = ?3 WHERE token_id = ?1 AND used_at IS NULL "
	    "AND token IS NOT NULL AND expires_at > ?2",
	[S_TOKEN_EXPIRE] = "UPDATE enroll_tokens SET token = NULL "
	    "WHERE token IS NOT NULL AND expires_at <= ?1",
	[S_DEVICE_INSERT] = "INSERT INTO devices (device_id, device_pk, "
	    "token_id, worker, name, grid, agent_version, enrolled_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_DEVICE_GET] = "SELECT device_id, device_pk, token_id, worker, "
	    "name, grid, agent_version, status, enrolled_at, revoked_at, "
	    "last_contact, last_seq, chain_head, chain_ok, batches "
	    "FROM devices WHERE device_id = ?1",
	[S_DEVICE_ALL] = "SELECT device_id, device_pk, token_id, worker, "
	    "name, grid, agent_version, status, enrolled_at, revoked_at, "
	    "last_contact, last_seq, chain_head, chain_ok, batches "
	    "FROM devices ORDER BY enrolled_at, device_id",
	[S_DEVICE_REVOKE] = "UPDATE devices SET status = 'revoked', "
	    "revoked_at = coalesce(revoked_at, ?2) WHERE device_id = ?1",
	[S_DEVICE_TOUCH] = "UPDATE devices SET last_contact = ?2 "
	    "WHERE device_id = ?1",
	/* Seqs below the high-water mark that never arrived. */
	[S_DEVICE_MISSING] = "SELECT d.last_seq - (SELECT count(DISTINCT seq) "
	    "FROM batches b WHERE b.device_id = d.device_id "
	    "AND b.seq <= d.last_seq) FROM devices d WHERE d.device_id = ?1",
	[S_BATCH_FIND] = "SELECT id, seq, prev_hash, envelope_hash, "
	    "received_at, status, http_status, applied, conflicted, "
	    "quarantined, chain, receipt, results FROM batches "
	    "WHERE device_id = ?1 AND batch_id = ?2",
	[S_BATCH_INSERT] = "INSERT INTO batches (device_id, batch_id, seq, "
	    "prev_hash, envelope_hash, received_at, status, "
	    "http_status, applied, conflicted, quarantined, chain, receipt, "
	    "results) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, 0, 0, 0, 0, "
	    "'unknown', x'', '')",
	/* The envelope has a table of its own (schema/platform 0011):
	 * finishing the batch rewrites its row, not the envelope. */
	[S_BATCH_ENVELOPE] = "INSERT INTO batch_envelopes (batch, envelope) "
	    "VALUES (?1, ?2)",
	[S_BATCH_FINISH] = "UPDATE batches SET status = ?2, http_status = ?3, "
	    "applied = ?4, conflicted = ?5, quarantined = ?6, chain = ?7, "
	    "receipt = ?8, results = ?9 WHERE id = ?1",
	[S_BATCH_HASH_AT] = "SELECT envelope_hash FROM batches "
	    "WHERE device_id = ?1 AND seq = ?2 AND id <> ?3 ORDER BY id",
	[S_BATCH_PREV_AT] = "SELECT prev_hash FROM batches "
	    "WHERE device_id = ?1 AND seq = ?2 AND id <> ?3 ORDER BY id",
	[S_BATCH_CHAIN] = "UPDATE batches SET chain = ?2 WHERE id = ?1",
	[S_LEDGER_SET] = "UPDATE devices SET "
	    "chain_head = CASE WHEN ?2 > last_seq THEN ?3 ELSE chain_head END, "
	    "last_seq = max(last_seq, ?2), "
	    "chain_ok = chain_ok AND ?4, batches = batches + 1, "
	    "last_contact = ?5 WHERE device_id = ?1",
	/* A record's fields from record_fields, never from the column: a
	 * new record's are kept once, in its revision (platform 0013). */
	[S_RECORD_GET] = "SELECT type, rev, deleted, fields, device_id "
	    "FROM record_fields WHERE uuid = ?1",
	[S_RECORD_OTHERS] = "SELECT count(*) FROM revisions WHERE uuid = ?1 "
	    "AND rev > ?2 AND device_id <> ?3",
	/* A new record and a record moving on are two statements, not one
	 * upsert: ingest knows which it is (record_state), and a plain
	 * INSERT or UPDATE of one row needs no statement journal. */
	[S_RECORD_INSERT] = "INSERT INTO records (uuid, type, form_version, "
	    "grid, rev, fields, deleted, created_at, updated_at, author, "
	    "device_id, batch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, "
	    "?10, ?11, ?12)",
	[S_RECORD_UPDATE] = "UPDATE records SET form_version = ?3, grid = ?4, "
	    "rev = ?5, fields = ?6, deleted = ?7, updated_at = ?9, "
	    "author = ?10, device_id = ?11, batch = ?12 WHERE uuid = ?1",
	/* The pull feed row of a revision (schema/platform 0007). */
	[S_FEED_RECORD] = "INSERT INTO feed (kind, ref, rev, grid, device_id, "
	    "own) VALUES ('record', ?1, ?2, ?3, ?4, ?5)",
	[S_TALLY_ADD] = "INSERT INTO device_tally (device_id, key, n) "
	    "VALUES (?1, ?2, ?3) ON CONFLICT (device_id, key) "
	    "DO UPDATE SET n = n + excluded.n",
	/* The attachments a record names (schema/platform 0005), as the
	 * triggers of 0005 wrote them before 0009: ?2 is the record's
	 * fields, read only when they name "attachments" at all. */
	[S_RECATT_CLEAR] = "DELETE FROM record_attachments WHERE uuid = ?1",
	[S_RECATT_ADD] = "INSERT OR IGNORE INTO record_attachments (uuid, "
	    "hash) SELECT ?1, lower(json_extract(j.value, '$.hash')) "
	    "FROM json_each(?2, '$.attachments') AS j "
	    "WHERE json_type(j.value, '$.hash') = 'text'",
	[S_REVISION_PUT] = "INSERT INTO revisions (uuid, rev, change_id, "
	    "base_rev, device_id, batch, change, fields, deleted, applied_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	/* schema/platform 0012: written only for a revision whose device
	 * times cannot be right (clock_suspect below). */
	[S_CLOCK_SUSPECT_PUT] = "INSERT OR IGNORE INTO clock_suspect (uuid, "
	    "rev, device_id, created_at, updated_at, received_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_CHANGE_FIND] = "SELECT c.outcome, c.rev, b.device_id FROM changes c "
	    "JOIN batches b ON b.id = c.batch WHERE c.change_id = ?1",
	[S_CHANGE_PUT] = "INSERT INTO changes (change_id, batch, uuid, "
	    "outcome, rev) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_CHANGE_UNCLAIM] = "DELETE FROM changes WHERE change_id = ?1",
	/*
	 * A run of creations (run_begin .. run_end): the record and
	 * revision rows RUN_ROWS at a time, then the ledger rows of every
	 * revision of the run in one statement, read back from the
	 * revisions written since the run began (their rowids are above
	 * the largest before it: revisions are appended), and one feed
	 * row for up to RUN_FEED_BYTES of its uuids (platform 0013): ?2
	 * the uuids, comma-separated, ?1 how many, the row's seq the last
	 * of theirs (the seqs before it are left to its other items).  A
	 * savepoint holds the run, so a key found held undoes all of it.
	 */
	[S_RUN_BEGIN] = "SAVEPOINT create_run",
	[S_RUN_FROM] = "SELECT coalesce(max(rowid), 0) FROM revisions",
	[S_RUN_LEDGER] = "INSERT INTO changes (change_id, batch, uuid, "
	    "outcome, rev) SELECT change_id, batch, uuid, 'applied', rev "
	    "FROM revisions WHERE rowid > ?1 ORDER BY rowid",
	[S_RUN_FEED] = "INSERT INTO feed (seq, kind, ref, rev, grid, "
	    "device_id, own) SELECT coalesce(max(seq), 0) + ?1, 'record', ?2, "
	    "1, ?3, ?4, 1 FROM feed",
	[S_RUN_RELEASE] = "RELEASE create_run",
	[S_RUN_UNDO] = "ROLLBACK TO create_run",
	[S_CONFLICT_PUT] = "INSERT INTO conflicts (uuid, change_id, device_id, "
	    "batch, base_rev, current_rev, change, current_fields, "
	    "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	[S_QUARANTINE_PUT] = "INSERT INTO quarantine (batch, device_id, "
	    "change_id, uuid, type, grid, cause, change, reasons, created_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[S_RECORD_EACH] = "SELECT uuid, type, grid, rev, fields, deleted, "
	    "created_at, updated_at, author, form_version, EXISTS (SELECT 1 "
	    "FROM clock_suspect c WHERE c.uuid = r.uuid) FROM record_fields r "
	    "WHERE (?1 IS NULL OR type = ?1) AND (?2 IS NULL OR grid = ?2) "
	    "ORDER BY uuid",
	[S_QUARANTINE_EACH] = "SELECT id, batch, device_id, change_id, uuid, "
	    "type, grid, cause, reasons, created_at FROM quarantine "
	    "ORDER BY id",
	[S_CONFLICT_EACH] = "SELECT id, batch, device_id, uuid, change_id, "
	    "base_rev, current_rev, change, current_fields, created_at, status "
	    "FROM conflicts ORDER BY id",
	/* Gaps between the seqs held (and before the first), as ranges, so
	 * a device that skipped a million seqs is one line, not a million. */
	[S_MISSING_RANGES] = "WITH s AS (SELECT DISTINCT seq FROM batches "
	    "WHERE device_id = ?1), g AS (SELECT seq, lag(seq, 1, 0) OVER "
	    "(ORDER BY seq) AS prev FROM s) SELECT prev + 1, seq - 1 FROM g "
	    "WHERE seq > prev + 1 ORDER BY seq",
	[S_DEVICE_QUARANTINED] = "SELECT count(*) FROM quarantine "
	    "WHERE device_id = ?1",
	[S_DEVICE_CONFLICTS] = "SELECT count(*) FROM conflicts "
	    "WHERE device_id = ?1",
	[S_DEVICE_REVISIONS] = "SELECT count(*) FROM revisions "
	    "WHERE device_id = ?1",
	[S_RECORDS_BY_TYPE] = "SELECT type, count(*) FROM records "
	    "WHERE device_id = ?1 GROUP BY type ORDER BY type",
};

/* Creations a run writes with one statement per table (s_run_put). */
#define RUN_ROWS 50
/* The most uuids' bytes (commas included) a feed row of a run lists
 * (s_run_put): 221 uuids, about a page of a pull (200 items), which
 * reads the whole row for any of them, and two overflow pages. */
#define RUN_FEED_BYTES 8192

/* The SQLite store: the interface first, so a struct pf_store pointer
 * is also a pointer to this (self() below). */
struct sqlite_store {
	struct pf_store base; /* first: the interface */
	struct gs_db *db;
	struct gs_stmt *st[S_COUNT_];
	/* Statements of the reconciliation queries (platform/recon*.c),
	 * prepared on first use by pf_store_sqlite_stmt. */
	struct gs_stmt *ext[PF_SQLITE_EXT_MAX];
	/* The run of creations under way (run_begin .. run_end): the
	 * largest revisions rowid before it, its grid and its rows; the
	 * creations not written yet (run_flush), and the statements that
	 * write RUN_ROWS of them at once (prepared by the first run); the
	 * run's device, and the uuids its next feed row lists (feed_flush),
	 * how many. */
	int run_open;
	int64_t run_from;
	size_t run_rows;
	char run_grid[64];
	unsigned char run_device[PF_ID_BYTES];
	struct gs_buf run_refs;
	int64_t run_nrefs;
	struct pf_revision run_rev[RUN_ROWS];
	size_t run_pending;
	struct gs_stmt *run_records, *run_revisions;
};

static const struct pf_store_ops sqlite_ops;

static struct sqlite_store *
self(struct pf_store *st)
{
	return (struct sqlite_store *)st;
}

/* Copies a text column into a fixed field; "" for NULL. */
static void
col_text(struct gs_stmt *s, int col, char *out, size_t outlen)
{
	const char *t = gs_stmt_text(s, col);

	gs_strlcpy(out, t != NULL ? t : "", outlen);
}

/* Copies a blob column of exactly n bytes; 0 when absent or sized wrong. */
static int
col_blob(struct gs_stmt *s, int col, unsigned char *out, size_t n)
{
	if (gs_stmt_is_null(s, col) || gs_stmt_bytes(s, col) != n) {
		memset(out, 0, n);
		return 0;
	}
	memcpy(out, gs_stmt_blob(s, col), n);
	return 1;
}

/*
 * The statements of ingest's per-record path (record_state, change_find,
 * revision_put and what it calls) bind text without a copy
 * (gs_stmt_bind_text_nocopy): every value they bind outlives the step
 * that reads it, and a copy is a malloc and a free per value, six to ten
 * per record.
 */

/* Runs a statement that returns no row. */
static int
run(struct gs_stmt *s)
{
	int r = gs_stmt_step(s);

	if (r == GS_DONE)
		return GS_OK;
	if (r == GS_ROW) {
		gs_stmt_reset(s);
		return GS_OK;
	}
	return r;
}

static void
s_close(struct pf_store *st)
{
	struct sqlite_store *s = self(st);

	if (s == NULL)
		return;
	/* A store whose database did not open has no checkpointer. */
	if (s->db != NULL) {
		struct gs_checkpoint_stats cs;

		gs_db_checkpointer_stop(s->db, &cs);
		if (cs.rounds + cs.inline_rounds + cs.failed > 0)
			gs_log(GS_LOG_INFO, "store: %ld checkpoints on their "
			    "own thread, %ld by the writer at the bound, %ld "
			    "that could not run", cs.rounds, cs.inline_rounds,
			    cs.failed);
	}
	gs_db_close(s->db);
	gs_buf_release(&s->run_refs);
	gs_free(s);
}

/*
 * Serving: the WAL is copied into the database by a thread of its own
 * from 4,000 frames (16 MiB, where the writer's autocheckpoint stood),
 * and by the writer itself only from 16,000 (64 MiB), the bound.  The
 * writer's checkpoint after every fourth batch of 1,000 records (a copy
 * of 16 MiB and a sync of the database file, 36 ms) was a third of the
 * time the store lock was held at commit: with the thread, the next
 * batch is applied while the copy runs.
 */
#define SERVE_CKPT_SOFT 4000
#define SERVE_CKPT_HARD 16000

static int
s_serve_start(struct pf_store *st)
{
	return gs_db_checkpointer_start(self(st)->db, SERVE_CKPT_SOFT,
	    SERVE_CKPT_HARD);
}

static int
s_integrity_check(struct pf_store *st)
{
	return gs_db_integrity_check(self(st)->db);
}

static int
s_meta_get(struct pf_store *st, const char *key, char **out)
{
	struct gs_stmt *s = self(st)->st[S_META_GET];
	int r;

	*out = NULL;
	if ((r = gs_stmt_bind_text(s, 1, key)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_ENOTFOUND;
	if (r != GS_ROW)
		return r;
	*out = gs_strdup(gs_stmt_text(s, 0));
	gs_stmt_reset(s);
	return *out != NULL ? GS_OK : GS_FAIL(GS_ENOMEM, "meta %s", key);
}

static int
s_meta_set(struct pf_store *st, const char *key, const char *value)
{
	struct gs_stmt *s = self(st)->st[S_META_SET];
	int r;

	if ((r = gs_stmt_bind_text(s, 1, key)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, value)) != GS_OK)
		return r;
	return run(s);
}

static int
s_begin(struct pf_store *st)
{
	return gs_db_begin(self(st)->db);
}

static int
s_commit(struct pf_store *st)
{
	return gs_db_commit(self(st)->db);
}

static int
s_commit_nosync(struct pf_store *st)
{
	return gs_db_commit_nosync(self(st)->db);
}

static int
s_sync(struct pf_store *st)
{
	return gs_db_sync_wal(self(st)->db);
}

static void
s_rollback(struct pf_store *st)
{
	/* A run still open is undone with the transaction. */
	self(st)->run_open = 0;
	self(st)->run_pending = 0;
	gs_buf_reset(&self(st)->run_refs);
	self(st)->run_nrefs = 0;
	gs_db_rollback(self(st)->db);
}

static int
s_token_put(struct pf_store *st, const struct pf_token *t)
{
	struct gs_stmt *s = self(st)->st[S_TOKEN_PUT];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, t->token_id, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, t->token, 32)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, t->worker)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, t->name)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 5, t->grid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, t->created_at)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 7, t->expires_at)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

static int
s_token_get(struct pf_store *st, const unsigned char *token_id,
    struct pf_token *out)
{
	struct gs_stmt *s = self(st)->st[S_TOKEN_GET];
	unsigned char id[PF_ID_BYTES];
	int r;

	/* token_id may point into *out. */
	memcpy(id, token_id, sizeof(id));
	memset(out, 0, sizeof(*out));
	token_id = id;
	if ((r = gs_stmt_bind_blob(s, 1, token_id, PF_ID_BYTES)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_ENOTFOUND;
	if (r != GS_ROW)
		return r;
	memcpy(out->token_id, token_id, PF_ID_BYTES);
	out->has_token = col_blob(s, 0, out->token, 32);
	col_text(s, 1, out->worker, sizeof(out->worker));
	col_text(s, 2, out->name, sizeof(out->name));
	col_text(s, 3, out->grid, sizeof(out->grid));
	out->created_at = gs_stmt_int64(s, 4);
	out->expires_at = gs_stmt_int64(s, 5);
	out->used_at = gs_stmt_int64(s, 6);
	gs_stmt_reset(s);
	return GS_OK;
}

/*
 * Marks the token used and inserts the device.  The UPDATE's WHERE clause
 * re-checks "unused and unexpired" at the moment of writing, and only one
 * row changing counts as success, so two devices racing with one code
 * cannot both enroll even if both passed the caller's checks.  A device id
 * already taken fails the INSERT (GS_EEXIST) and the caller rolls back, so
 * the token is not burnt.
 */
static int
s_token_redeem(struct pf_store *st, const unsigned char *token_id,
    const struct pf_device *d, int64_t now)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s = ss->st[S_TOKEN_USE];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, token_id, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, now)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, d->id, PF_ID_BYTES)) != GS_OK ||
	    (r = run(s)) != GS_OK)
		return r;
	if (gs_db_changes(ss->db) != 1)
		return GS_FAIL(GS_EAUTH, "enrollment code used or expired");
	s = ss->st[S_DEVICE_INSERT];
	if ((r = gs_stmt_bind_blob(s, 1, d->id, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, d->pk, 32)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, token_id, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, d->worker)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 5, d->name)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 6, d->grid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 7, d->agent_version)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 8, d->enrolled_at)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

static int
s_token_expire(struct pf_store *st, int64_t now)
{
	struct gs_stmt *s = self(st)->st[S_TOKEN_EXPIRE];
	int r;

	if ((r = gs_stmt_bind_int64(s, 1, now)) != GS_OK)
		return r;
	return run(s);
}

static void
device_from_row(struct gs_stmt *s, struct pf_device *d)
{
	char status[16];

	memset(d, 0, sizeof(*d));
	(void)col_blob(s, 0, d->id, PF_ID_BYTES);
	(void)col_blob(s, 1, d->pk, 32);
	(void)col_blob(s, 2, d->token_id, PF_ID_BYTES);
	col_text(s, 3, d->worker, sizeof(d->worker));
	col_text(s, 4, d->name, sizeof(d->name));
	col_text(s, 5, d->grid, sizeof(d->grid));
	col_text(s, 6, d->agent_version, sizeof(d->agent_version));
	col_text(s, 7, status, sizeof(status));
	d->revoked = strcmp(status, "revoked") == 0;
	d->enrolled_at = gs_stmt_int64(s, 8);
	d->revoked_at = gs_stmt_int64(s, 9);
	d->last_contact = gs_stmt_int64(s, 10);
	d->last_seq = (uint64_t)gs_stmt_int64(s, 11);
	d->has_head = col_blob(s, 12, d->chain_head, PF_HASH_BYTES);
	d->chain_ok = (int)gs_stmt_int64(s, 13);
	d->batches = gs_stmt_int64(s, 14);
}

/* How many seqs below the high-water mark never arrived: the batches a
 * network (or a device) withheld, for reconciliation. */
static int
device_missing(struct sqlite_store *ss, struct pf_device *d)
{
	struct gs_stmt *s = ss->st[S_DEVICE_MISSING];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, d->id, PF_ID_BYTES)) != GS_OK)
		return r;
	return gs_stmt_one_int64(s, 0, &d->missing);
}

static int
s_device_get(struct pf_store *st, const unsigned char *id,
    struct pf_device *out)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s = ss->st[S_DEVICE_GET];
	unsigned char key[PF_ID_BYTES];
	int r;

	/* id may point into *out. */
	memcpy(key, id, sizeof(key));
	memset(out, 0, sizeof(*out));
	if ((r = gs_stmt_bind_blob(s, 1, key, PF_ID_BYTES)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_ENOTFOUND;
	if (r != GS_ROW)
		return r;
	device_from_row(s, out);
	gs_stmt_reset(s);
	return device_missing(ss, out);
}

static int
s_device_each(struct pf_store *st,
    int (*cb)(void *arg, const struct pf_device *d), void *arg)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s = ss->st[S_DEVICE_ALL];
	struct pf_device *all = NULL, *tmp;
	size_t n = 0, cap = 0, i;
	int r;

	/* Collect first: the missing-seq query needs its own statement. */
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			tmp = gs_realloc(all, cap * sizeof(*all));
			if (tmp == NULL) {
				gs_stmt_reset(s);
				r = GS_FAIL(GS_ENOMEM, "device list");
				goto out;
			}
			all = tmp;
		}
		device_from_row(s, &all[n++]);
	}
	if (r != GS_DONE)
		goto out;
	r = GS_OK;
	for (i = 0; i < n && r == GS_OK; i++)
		if ((r = device_missing(ss, &all[i])) == GS_OK)
			r = cb(arg, &all[i]);
out:
	gs_free(all);
	return r;
}

static int
s_device_revoke(struct pf_store *st, const unsigned char *id, int64_t now)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s = ss->st[S_DEVICE_REVOKE];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, id, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, now)) != GS_OK ||
	    (r = run(s)) != GS_OK)
		return r;
	return gs_db_changes(ss->db) == 1 ? GS_OK : GS_ENOTFOUND;
}

static int
s_device_touch(struct pf_store *st, const unsigned char *id, int64_t now)
{
	struct gs_stmt *s = self(st)->st[S_DEVICE_TOUCH];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, id, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, now)) != GS_OK)
		return r;
	return run(s);
}

void
pf_batch_row_release(struct pf_batch_row *b)
{
	if (b == NULL)
		return;
	gs_free(b->envelope);
	gs_free(b->receipt);
	gs_free(b->results);
	b->envelope = NULL;
	b->receipt = NULL;
	b->results = NULL;
}

static int
s_batch_find(struct pf_store *st, const unsigned char *device,
    const unsigned char *batch, struct pf_batch_row *out)
{
	struct gs_stmt *s = self(st)->st[S_BATCH_FIND];
	unsigned char dev[PF_ID_BYTES], bid[PF_ID_BYTES];
	int r;
	size_t n;

	/* The ids may point into *out. */
	memcpy(dev, device, sizeof(dev));
	memcpy(bid, batch, sizeof(bid));
	device = dev;
	batch = bid;
	memset(out, 0, sizeof(*out));
	if ((r = gs_stmt_bind_blob(s, 1, device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, batch, PF_ID_BYTES)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_ENOTFOUND;
	if (r != GS_ROW)
		return r;
	memcpy(out->device, device, PF_ID_BYTES);
	memcpy(out->batch, batch, PF_ID_BYTES);
	out->id = gs_stmt_int64(s, 0);
	out->seq = (uint64_t)gs_stmt_int64(s, 1);
	(void)col_blob(s, 2, out->prev_hash, PF_HASH_BYTES);
	(void)col_blob(s, 3, out->hash, PF_HASH_BYTES);
	out->received_at = gs_stmt_int64(s, 4);
	out->status = (int)gs_stmt_int64(s, 5);
	out->http_status = (int)gs_stmt_int64(s, 6);
	out->applied = (uint32_t)gs_stmt_int64(s, 7);
	out->conflicted = (uint32_t)gs_stmt_int64(s, 8);
	out->quarantined = (uint32_t)gs_stmt_int64(s, 9);
	col_text(s, 10, out->chain, sizeof(out->chain));
	n = gs_stmt_bytes(s, 11);
	out->receipt = gs_malloc(n ? n : 1);
	out->results = gs_strdup(gs_stmt_text(s, 12) ? gs_stmt_text(s, 12) : "");
	if (out->receipt != NULL && n)
		memcpy(out->receipt, gs_stmt_blob(s, 11), n);
	out->receipt_len = n;
	gs_stmt_reset(s);
	if (out->receipt == NULL || out->results == NULL) {
		pf_batch_row_release(out);
		return GS_FAIL(GS_ENOMEM, "batch row");
	}
	return GS_OK;
}

/*
 * Inserts the batch row with placeholder outcome columns: the row must
 * exist before the changes that point at it, and its receipt can only be
 * signed once their outcomes are counted (batch_finish, same transaction).
 */
static int
s_batch_insert(struct pf_store *st, struct pf_batch_row *b)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s = ss->st[S_BATCH_INSERT];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, b->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, b->batch, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, (int64_t)b->seq)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 4, b->prev_hash, PF_HASH_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 5, b->hash, PF_HASH_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, b->received_at)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	if ((r = run(s)) != GS_OK)
		return r;
	/* The rowid of the insert: the only row with this key. */
	s = ss->st[S_BATCH_FIND];
	if ((r = gs_stmt_bind_blob(s, 1, b->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, b->batch, PF_ID_BYTES)) != GS_OK)
		return r;
	if ((r = gs_stmt_step(s)) != GS_ROW)
		return r == GS_DONE ? GS_FAIL(GS_EDB, "batch row vanished") : r;
	b->id = gs_stmt_int64(s, 0);
	gs_stmt_reset(s);
	s = ss->st[S_BATCH_ENVELOPE];
	if ((r = gs_stmt_bind_int64(s, 1, b->id)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, b->envelope, b->envelope_len))
	    != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

static int
s_batch_finish(struct pf_store *st, const struct pf_batch_row *b)
{
	struct gs_stmt *s = self(st)->st[S_BATCH_FINISH];
	int r;

	if ((r = gs_stmt_bind_int64(s, 1, b->id)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, b->status)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, b->http_status)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, b->applied)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, b->conflicted)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, b->quarantined)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 7, b->chain)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 8, b->receipt, b->receipt_len))
	    != GS_OK ||
	    (r = gs_stmt_bind_text(s, 9, b->results)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

/*
 * The first kept hash column of another batch of this device at seq:
 * *found is 1 when there is one (out filled), else 0.
 */
static int
hash_at(struct sqlite_store *ss, int which, const struct pf_batch_row *b,
    uint64_t seq, unsigned char *out, int *found)
{
	struct gs_stmt *s = ss->st[which];
	int r;

	*found = 0;
	if ((r = gs_stmt_bind_blob(s, 1, b->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, (int64_t)seq)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, b->id)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_ROW) {
		*found = col_blob(s, 0, out, PF_HASH_BYTES);
		gs_stmt_reset(s);
		return GS_OK;
	}
	return r == GS_DONE ? GS_OK : r;
}

static int
s_ledger_update(struct pf_store *st, struct pf_batch_row *b, int64_t now)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s;
	unsigned char h[PF_HASH_BYTES], zero[PF_HASH_BYTES];
	int r, ok = 1, known = 0, found;

	memset(zero, 0, sizeof(zero));
	/* The chain: seq 1 starts from zero; otherwise our prev hash must be
	 * the kept hash of seq - 1, and a kept seq + 1 (arrived out of order)
	 * must point at us.  A second batch under a seq already held is a
	 * fork: the chain is broken either way. */
	if (b->seq == 1) {
		known = 1;
		ok = memcmp(b->prev_hash, zero, sizeof(zero)) == 0;
	} else {
		if ((r = hash_at(ss, S_BATCH_HASH_AT, b, b->seq - 1, h,
		    &found)) != GS_OK)
			return r;
		if (found) {
			known = 1;
			ok = memcmp(b->prev_hash, h, sizeof(h)) == 0;
		}
	}
	if ((r = hash_at(ss, S_BATCH_PREV_AT, b, b->seq + 1, h, &found))
	    != GS_OK)
		return r;
	if (found && memcmp(h, b->hash, sizeof(h)) != 0)
		ok = 0;
	if ((r = hash_at(ss, S_BATCH_HASH_AT, b, b->seq, h, &found)) != GS_OK)
		return r;
	if (found)
		ok = 0;
	gs_strlcpy(b->chain, !ok ? "broken" : known ? "ok" : "unknown",
	    sizeof(b->chain));
	s = ss->st[S_LEDGER_SET];
	if ((r = gs_stmt_bind_blob(s, 1, b->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, (int64_t)b->seq)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, b->hash, PF_HASH_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, ok)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, now)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

void
pf_record_state_release(struct pf_record_state *s)
{
	if (s == NULL)
		return;
	gs_free(s->fields);
	s->fields = NULL;
}

/*
 * The record's current state and, for the merge rule, whether any
 * revision after base_rev came from another device.  Both are read inside
 * the batch's write transaction, so nothing can change between the
 * decision and the write.
 */
static int
s_record_state(struct pf_store *st, const char *uuid,
    const unsigned char *device, int64_t base_rev,
    struct pf_record_state *out)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s = ss->st[S_RECORD_GET];
	int64_t others = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = gs_stmt_bind_text_nocopy(s, 1, uuid)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_ROW) {
		out->exists = 1;
		col_text(s, 0, out->type, sizeof(out->type));
		out->rev = gs_stmt_int64(s, 1);
		out->deleted = (int)gs_stmt_int64(s, 2);
		if (!gs_stmt_is_null(s, 3) &&
		    (out->fields = gs_strdup(gs_stmt_text(s, 3))) == NULL) {
			gs_stmt_reset(s);
			return GS_FAIL(GS_ENOMEM, "record fields");
		}
		(void)col_blob(s, 4, out->device, PF_ID_BYTES);
		gs_stmt_reset(s);
	} else if (r == GS_DONE) {
		/* A new record: no revision after any base, and the merge
		 * rule is not asked (one query less per collected record). */
		out->same_device_since_base = 1;
		return GS_OK;
	} else {
		return r;
	}
	s = ss->st[S_RECORD_OTHERS];
	if ((r = gs_stmt_bind_text_nocopy(s, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, base_rev)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_one_int64(s, 0, &others)) != GS_OK) {
		pf_record_state_release(out);
		return r;
	}
	out->same_device_since_base = others == 0;
	return GS_OK;
}

static const char *const outcome_names[] = {
	[PF_APPLIED] = "applied",
	[PF_MERGED] = "merged",
	[PF_CONFLICT] = "conflict",
	[PF_QUARANTINED] = "quarantined",
};

const char *
pf_outcome_name(enum pf_outcome o)
{
	if ((int)o < PF_APPLIED || o > PF_QUARANTINED)
		return "unknown";
	return outcome_names[o];
}

static int
s_change_find(struct pf_store *st, const char *change_id,
    enum pf_outcome *outcome, int64_t *rev, unsigned char *device)
{
	struct gs_stmt *s = self(st)->st[S_CHANGE_FIND];
	const char *name;
	int r, i;

	if ((r = gs_stmt_bind_text_nocopy(s, 1, change_id)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_ENOTFOUND;
	if (r != GS_ROW)
		return r;
	name = gs_stmt_text(s, 0);
	*outcome = PF_QUARANTINED;
	for (i = PF_APPLIED; i <= PF_QUARANTINED; i++)
		if (name != NULL && strcmp(name, outcome_names[i]) == 0)
			*outcome = (enum pf_outcome)i;
	*rev = gs_stmt_int64(s, 1);
	(void)col_blob(s, 2, device, PF_ID_BYTES);
	gs_stmt_reset(s);
	return GS_OK;
}

/* Claims a change id with its outcome.  The primary key makes a second
 * claim fail, so even a bug upstream cannot apply one change twice. */
static int
change_put(struct sqlite_store *ss, const char *change_id, int64_t batch,
    const char *uuid, enum pf_outcome o, int64_t rev)
{
	struct gs_stmt *s = ss->st[S_CHANGE_PUT];
	int r;

	if ((r = gs_stmt_bind_text_nocopy(s, 1, change_id)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, batch)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 3, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 4, pf_outcome_name(o))) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, rev)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

static int
feed_record(struct sqlite_store *ss, const char *uuid, int64_t rev,
    const char *grid, const unsigned char *device, int own)
{
	struct gs_stmt *s = ss->st[S_FEED_RECORD];
	int r;

	if ((r = gs_stmt_bind_text_nocopy(s, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, rev)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 3, grid)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 4, device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, own != 0)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

static int
s_feed_record(struct pf_store *st, const char *uuid, int64_t rev,
    const char *grid, const unsigned char *device, int own)
{
	return feed_record(self(st), uuid, rev, grid, device, own);
}

static int
s_tally_add(struct pf_store *st, const unsigned char *device,
    const char *key, int64_t delta)
{
	struct gs_stmt *s = self(st)->st[S_TALLY_ADD];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, key)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, delta)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

/* Binds a revision's text t without a copy: its n bytes, or up to its
 * NUL when n is 0 (struct pf_revision change_len, fields_len). */
static int
bind_text_len(struct gs_stmt *s, int i, const char *t, size_t n)
{
	return n > 0 ? gs_stmt_bind_textn_nocopy(s, i, t, n) :
	    gs_stmt_bind_text_nocopy(s, i, t);
}

/*
 * Keeps record_attachments equal to the record's fields (what the 0005
 * triggers did, schema/platform 0009): a record that moved on (moved 1)
 * loses its old rows first; a live record whose fields name
 * "attachments" gets one row per attachment hash.  The memmem is the
 * triggers' instr() test: most records name no attachment and cost no
 * statement.  flen: the length of fields, 0 when NUL-ended.
 */
static int
record_attach(struct sqlite_store *ss, const char *uuid, const char *fields,
    size_t flen, int deleted, int moved)
{
	static const char key[] = "\"attachments\"";
	struct gs_stmt *s;
	int r;

	if (moved) {
		s = ss->st[S_RECATT_CLEAR];
		if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
		    (r = run(s)) != GS_OK)
			return r;
	}
	if (deleted || fields == NULL || memmem(fields, flen > 0 ? flen :
	    strlen(fields), key, sizeof(key) - 1) == NULL)
		return GS_OK;
	s = ss->st[S_RECATT_ADD];
	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
	    (r = bind_text_len(s, 2, fields, flen)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

static int
s_record_attach(struct pf_store *st, const char *uuid, const char *fields,
    int deleted, int moved)
{
	return record_attach(self(st), uuid, fields, 0, deleted, moved);
}

/* A day: a device time this far after the batch's arrival is wrong. */
#define CLOCK_AHEAD_MS (24 * 3600 * INT64_C(1000))

/* The device times of v cannot be right: before the time floor (no
 * correct clock reads earlier: core/util.h) or more than a day after the
 * platform received the batch (applied_at).  Two comparisons a record. */
static int
clock_suspect(const struct pf_revision *v)
{
	return v->created_at < GS_TIME_FLOOR_MS ||
	    v->updated_at < GS_TIME_FLOOR_MS ||
	    v->created_at > v->applied_at + CLOCK_AHEAD_MS ||
	    v->updated_at > v->applied_at + CLOCK_AHEAD_MS;
}

static int
clock_suspect_put(struct sqlite_store *ss, const struct pf_revision *v)
{
	struct gs_stmt *s = ss->st[S_CLOCK_SUSPECT_PUT];
	int r;

	if ((r = gs_stmt_bind_text_nocopy(s, 1, v->uuid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, v->rev)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, v->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, v->created_at)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, v->updated_at)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, v->applied_at)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

/*
 * revision_put, create_put with ledger 0 (the ledger row is its
 * caller's), run_put with ledger and feed 0 (run_end writes both for the
 * whole run).  The record row is written first: a record insert refused
 * because its uuid is held sets *held (when not NULL) and writes
 * nothing.
 */
static int
put_revision(struct sqlite_store *ss, const struct pf_revision *v,
    int ledger, int feed, int *held)
{
	struct gs_stmt *s = ss->st[v->record_exists ? S_RECORD_UPDATE :
	    S_RECORD_INSERT];
	int r;

	/* ?2 (type) and ?8 (created_at) are not in the UPDATE: a record
	 * keeps its type and its creation time.  ?6 (fields) is NULL when
	 * they are the line's "fields" member: the revision written below
	 * keeps them (platform 0013: record_fields reads them there). */
	if ((r = gs_stmt_bind_text_nocopy(s, 1, v->uuid)) != GS_OK ||
	    (!v->record_exists &&
	    (r = gs_stmt_bind_text_nocopy(s, 2, v->type)) != GS_OK) ||
	    (r = gs_stmt_bind_int64(s, 3, v->form_version)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 4, v->grid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, v->rev)) != GS_OK ||
	    (r = v->fields_in_change ? gs_stmt_bind_null(s, 6) :
	    bind_text_len(s, 6, v->fields, v->fields_len)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 7, v->deleted)) != GS_OK ||
	    (!v->record_exists &&
	    (r = gs_stmt_bind_int64(s, 8, v->created_at)) != GS_OK) ||
	    (r = gs_stmt_bind_int64(s, 9, v->updated_at)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 10, v->author)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 11, v->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 12, v->batch)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	if ((r = run(s)) != GS_OK) {
		if (r == GS_EEXIST && held != NULL)
			*held = 1;
		return r;
	}
	if (v->record_exists && gs_db_changes(ss->db) != 1)
		return GS_FAIL(GS_EINTERNAL, "record %s: no row to move on",
		    v->uuid);
	if ((!v->no_attachments || v->record_exists) &&
	    (r = record_attach(ss, v->uuid, v->fields, v->fields_len,
	    v->deleted, v->record_exists)) != GS_OK)
		return r;
	s = ss->st[S_REVISION_PUT];
	if ((r = gs_stmt_bind_text_nocopy(s, 1, v->uuid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, v->rev)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 3, v->change_id)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, v->base_rev)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 5, v->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, v->batch)) != GS_OK ||
	    (r = bind_text_len(s, 7, v->change, v->change_len)) != GS_OK ||
	    (r = v->fields_in_change ? gs_stmt_bind_null(s, 8) :
	    bind_text_len(s, 8, v->fields, v->fields_len)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 9, v->deleted)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 10, v->applied_at)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	if ((r = run(s)) != GS_OK)
		return r;
	/* Flagged for admins, never refused (schema/platform 0012). */
	if (clock_suspect(v) && (r = clock_suspect_put(ss, v)) != GS_OK)
		return r;
	if (ledger && (r = change_put(ss, v->change_id, v->batch, v->uuid,
	    v->outcome, v->rev)) != GS_OK)
		return r;
	if (!feed)
		return GS_OK;
	/* What the feed_revision trigger wrote: the grid is the record's
	 * (the one just written), "own" a device's plain fast-forward. */
	return feed_record(ss, v->uuid, v->rev, v->grid, v->device,
	    v->rev == v->base_rev + 1);
}

static int
s_revision_put(struct pf_store *st, const struct pf_revision *v)
{
	return put_revision(self(st), v, 1, 1, NULL);
}

/*
 * The ledger claims the change id first (refused: nothing written), then
 * the record is inserted (refused: the claim is taken back).  Two lookups
 * fewer per collected record than change_find and record_state, under
 * the store lock, where every batch waits its turn.
 */
static int
s_create_put(struct pf_store *st, const struct pf_revision *v)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s;
	int r, held = 0;

	if (v->record_exists || v->rev != 1 || v->outcome != PF_APPLIED)
		return GS_FAIL(GS_EINTERNAL, "create_put: not a creation");
	if ((r = change_put(ss, v->change_id, v->batch, v->uuid, PF_APPLIED,
	    1)) != GS_OK)
		return r;
	if ((r = put_revision(ss, v, 0, 1, &held)) != GS_EEXIST || !held)
		return r;
	s = ss->st[S_CHANGE_UNCLAIM];
	if ((r = gs_stmt_bind_text_nocopy(s, 1, v->change_id)) != GS_OK ||
	    (r = run(s)) != GS_OK)
		return r;
	return gs_db_changes(ss->db) == 1 ? GS_EEXIST :
	    GS_FAIL(GS_EINTERNAL, "create_put: the claim of %s was not "
	    "taken back", v->change_id);
}

/*
 * Runs of creations (store.h run_begin).  Per collected record,
 * create_put runs four statements (ledger, record, revision, feed), each
 * paying its start, its binds and its halt.  A run writes the record and
 * revision rows RUN_ROWS at a time, one multi-row INSERT per table
 * (run_flush), and the ledger and feed rows of all its revisions at its
 * end, one INSERT ... SELECT each over the revisions appended since the
 * run began (S_RUN_LEDGER, S_RUN_FEED): no binds, one start and one halt
 * for the whole run.  The rows are the ones create_put writes, in the
 * same order.  The run is a savepoint: a uuid found held (run_put's
 * flush, run_end's) or a change id found held (run_end) undoes it, and
 * the caller applies its changes one by one as before.
 */
/*
 * The multi-row INSERTs of a run: RUN_ROWS record rows, RUN_ROWS
 * revision rows.  What every creation of a run shares is bound once (the
 * records' ?1 grid, ?2 author, ?3 device, ?4 batch; the revisions' ?1
 * device, ?2 batch, ?3 applied_at) or written as a constant (rev 1,
 * base_rev 0, not deleted, the revision's fields and the record's NULL:
 * they are the revision's line's, platform 0010 and 0013); the rest is
 * bound per row: 5 and 3 values instead of 12 and 10.
 */
static int
run_prepare(struct sqlite_store *ss)
{
	struct gs_buf q;
	int i, r;

	gs_buf_init(&q, 1u << 20);
	r = gs_buf_puts(&q, "INSERT INTO records (uuid, type, form_version, "
	    "grid, rev, fields, deleted, created_at, updated_at, author, "
	    "device_id, batch) VALUES ");
	for (i = 0; r == GS_OK && i < RUN_ROWS; i++) {
		int p = 5 + 5 * i;

		r = gs_buf_printf(&q, "%s(?%d, ?%d, ?%d, ?1, 1, NULL, 0, ?%d, "
		    "?%d, ?2, ?3, ?4)", i > 0 ? ", " : "", p, p + 1, p + 2,
		    p + 3, p + 4);
	}
	if (r == GS_OK && (r = gs_buf_putc(&q, '\0')) == GS_OK)
		r = gs_stmt_prepare(ss->db, q.data, &ss->run_records);
	gs_buf_reset(&q);
	if (r == GS_OK)
		r = gs_buf_puts(&q, "INSERT INTO revisions (uuid, rev, "
		    "change_id, base_rev, device_id, batch, change, fields, "
		    "deleted, applied_at) VALUES ");
	for (i = 0; r == GS_OK && i < RUN_ROWS; i++) {
		int p = 4 + 3 * i;

		r = gs_buf_printf(&q, "%s(?%d, 1, ?%d, 0, ?1, ?2, ?%d, NULL, "
		    "0, ?3)", i > 0 ? ", " : "", p, p + 1, p + 2);
	}
	if (r == GS_OK && (r = gs_buf_putc(&q, '\0')) == GS_OK)
		r = gs_stmt_prepare(ss->db, q.data, &ss->run_revisions);
	gs_buf_release(&q);
	return r;
}

static int
s_run_begin(struct pf_store *st)
{
	struct sqlite_store *ss = self(st);
	int r;

	if (ss->run_open)
		return GS_FAIL(GS_EINTERNAL, "run_begin: a run is open");
	if (ss->run_revisions == NULL && (r = run_prepare(ss)) != GS_OK)
		return r;
	if ((r = run(ss->st[S_RUN_BEGIN])) != GS_OK)
		return r;
	if ((r = gs_stmt_one_int64(ss->st[S_RUN_FROM], 0, &ss->run_from))
	    != GS_OK) {
		(void)run(ss->st[S_RUN_UNDO]);
		(void)run(ss->st[S_RUN_RELEASE]);
		return r;
	}
	ss->run_open = 1;
	ss->run_rows = 0;
	ss->run_pending = 0;
	ss->run_grid[0] = '\0';
	gs_buf_reset(&ss->run_refs);
	ss->run_nrefs = 0;
	return GS_OK;
}

/* Does v share what the multi-row statements bind once with the first
 * pending creation, and keep its fields in its line? */
static int
run_fits(const struct sqlite_store *ss, const struct pf_revision *v)
{
	const struct pf_revision *f = &ss->run_rev[0];

	if (!v->fields_in_change || v->deleted)
		return 0;
	return ss->run_pending == 0 || (strcmp(v->author, f->author) == 0 &&
	    memcmp(v->device, f->device, PF_ID_BYTES) == 0 &&
	    v->batch == f->batch && v->applied_at == f->applied_at);
}

/*
 * Writes the pending creations: RUN_ROWS of them with the two multi-row
 * statements, fewer one by one (put_revision).  Then what put_revision
 * writes beside the two rows: the attachments index and the clock flag.
 */
static int
run_flush(struct sqlite_store *ss)
{
	struct gs_stmt *s;
	const struct pf_revision *v, *f = &ss->run_rev[0];
	size_t i, n = ss->run_pending;
	int r = GS_OK, p;

	ss->run_pending = 0;
	if (n < RUN_ROWS) {
		for (i = 0; i < n && r == GS_OK; i++)
			r = put_revision(ss, &ss->run_rev[i], 0, 0, NULL);
		if (r == GS_OK)
			ss->run_rows += n;
		return r;
	}
	s = ss->run_records;
	if ((r = gs_stmt_bind_text_nocopy(s, 1, ss->run_grid)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 2, f->author)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, f->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, f->batch)) != GS_OK)
		goto fail;
	for (i = 0; i < n; i++) {
		v = &ss->run_rev[i];
		p = 5 + 5 * (int)i;
		if ((r = gs_stmt_bind_text_nocopy(s, p, v->uuid)) != GS_OK ||
		    (r = gs_stmt_bind_text_nocopy(s, p + 1, v->type))
		    != GS_OK ||
		    (r = gs_stmt_bind_int64(s, p + 2, v->form_version))
		    != GS_OK ||
		    (r = gs_stmt_bind_int64(s, p + 3, v->created_at))
		    != GS_OK ||
		    (r = gs_stmt_bind_int64(s, p + 4, v->updated_at))
		    != GS_OK)
			goto fail;
	}
	if ((r = run(s)) != GS_OK)
		return r;
	s = ss->run_revisions;
	if ((r = gs_stmt_bind_blob(s, 1, f->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, f->batch)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, f->applied_at)) != GS_OK)
		goto fail;
	for (i = 0; i < n; i++) {
		v = &ss->run_rev[i];
		p = 4 + 3 * (int)i;
		if ((r = gs_stmt_bind_text_nocopy(s, p, v->uuid)) != GS_OK ||
		    (r = gs_stmt_bind_text_nocopy(s, p + 1, v->change_id))
		    != GS_OK ||
		    (r = bind_text_len(s, p + 2, v->change, v->change_len))
		    != GS_OK)
			goto fail;
	}
	if ((r = run(s)) != GS_OK)
		return r;
	for (i = 0; i < n; i++) {
		v = &ss->run_rev[i];
		if (!v->no_attachments && (r = record_attach(ss, v->uuid,
		    v->fields, v->fields_len, 0, 0)) != GS_OK)
			return r;
		if (clock_suspect(v) && (r = clock_suspect_put(ss, v)) != GS_OK)
			return r;
	}
	ss->run_rows += n;
	return GS_OK;
fail:
	gs_stmt_reset(s);
	return r;
}

/*
 * The feed rows of a run (platform 0013): one row lists up to
 * RUN_FEED_BYTES of the run's uuids, in the order of the run_puts,
 * instead of a row (and an index entry) each.  The row's seq is the
 * last of its items' (max + n): the n - 1 before it are its other
 * items', and the next row is numbered after it as before.  What each
 * item says is what a row of its own said: kind record, rev 1, the
 * run's grid and device, own (a creation is its device's plain
 * fast-forward).  platform/pull.c rows_add lists the items.
 */
static int
feed_flush(struct sqlite_store *ss)
{
	struct gs_stmt *s = ss->st[S_RUN_FEED];
	int r;

	if (ss->run_nrefs == 0)
		return GS_OK;
	if ((r = gs_stmt_bind_int64(s, 1, ss->run_nrefs)) != GS_OK ||
	    (r = gs_stmt_bind_textn_nocopy(s, 2, ss->run_refs.data,
	    ss->run_refs.len)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 3, ss->run_grid)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 4, ss->run_device, PF_ID_BYTES))
	    != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	if ((r = run(s)) != GS_OK)
		return r;
	gs_buf_reset(&ss->run_refs);
	ss->run_nrefs = 0;
	return GS_OK;
}

/* Adds uuid to the run's next feed row, writing the row first when it
 * is full. */
static int
feed_ref(struct sqlite_store *ss, const char *uuid)
{
	size_t n = strlen(uuid);
	int r;

	/* A comma would split a uuid in two (a validated one has none). */
	if (n == 0 || n >= RUN_FEED_BYTES || strchr(uuid, ',') != NULL)
		return GS_FAIL(GS_EINVAL, "run_put: uuid \"%s\" cannot be "
		    "listed", uuid);
	if (ss->run_refs.len + 1 + n > RUN_FEED_BYTES &&
	    (r = feed_flush(ss)) != GS_OK)
		return r;
	if ((ss->run_nrefs > 0 &&
	    (r = gs_buf_putc(&ss->run_refs, ',')) != GS_OK) ||
	    (r = gs_buf_append(&ss->run_refs, uuid, n)) != GS_OK)
		return r;
	ss->run_nrefs++;
	return GS_OK;
}

static int
s_run_put(struct pf_store *st, const struct pf_revision *v)
{
	struct sqlite_store *ss = self(st);
	int r;

	if (!ss->run_open)
		return GS_FAIL(GS_EINTERNAL, "run_put: no run");
	/* run_end's statements write what create_put would: a creation's
	 * ledger row (applied, rev 1) and its feed row (own: rev 1 on base
	 * 0 is the device's plain fast-forward), in the run's grid. */
	if (v->record_exists || v->rev != 1 || v->base_rev != 0 ||
	    v->outcome != PF_APPLIED)
		return GS_FAIL(GS_EINTERNAL, "run_put: not a creation");
	if (ss->run_rows + ss->run_pending == 0) {
		if (gs_strlcpy(ss->run_grid, v->grid, sizeof(ss->run_grid)) >=
		    sizeof(ss->run_grid))
			return GS_FAIL(GS_EINVAL, "run_put: grid too long");
		memcpy(ss->run_device, v->device, PF_ID_BYTES);
	} else if (strcmp(ss->run_grid, v->grid) != 0 ||
	    memcmp(ss->run_device, v->device, PF_ID_BYTES) != 0) {
		return GS_FAIL(GS_EINTERNAL, "run_put: a run has one grid and "
		    "one device");
	}
	if ((r = feed_ref(ss, v->uuid)) != GS_OK)
		return r;
	if (!run_fits(ss, v)) {
		/* Written now, after the pending ones (the order of the
		 * revisions is the order of the feed rows). */
		if ((r = run_flush(ss)) != GS_OK ||
		    (r = put_revision(ss, v, 0, 0, NULL)) != GS_OK)
			return r;
		ss->run_rows++;
		return GS_OK;
	}
	ss->run_rev[ss->run_pending++] = *v;
	return ss->run_pending == RUN_ROWS ? run_flush(ss) : GS_OK;
}

static int
s_run_end(struct pf_store *st, int keep)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s;
	int r = GS_OK, u;

	if (!ss->run_open)
		return GS_FAIL(GS_EINTERNAL, "run_end: no run");
	ss->run_open = 0;
	if (keep && (r = run_flush(ss)) != GS_OK)
		goto undo;
	ss->run_pending = 0;
	if (keep && ss->run_rows > 0) {
		s = ss->st[S_RUN_LEDGER];
		if ((r = gs_stmt_bind_int64(s, 1, ss->run_from)) != GS_OK ||
		    (r = run(s)) != GS_OK)
			goto undo;
		if ((r = feed_flush(ss)) != GS_OK)
			goto undo;
	}
	if (keep)
		return run(ss->st[S_RUN_RELEASE]);
undo:
	ss->run_pending = 0;
	gs_buf_reset(&ss->run_refs);
	ss->run_nrefs = 0;
	/* ROLLBACK TO keeps the savepoint open: release it too. */
	gs_stmt_reset(ss->st[S_RUN_LEDGER]);
	gs_stmt_reset(ss->st[S_RUN_FEED]);
	if ((u = run(ss->st[S_RUN_UNDO])) == GS_OK)
		u = run(ss->st[S_RUN_RELEASE]);
	/* An undo that failed leaves the run's rows: never say GS_EEXIST
	 * then (the caller would apply them again), but the undo's error,
	 * which rolls the whole batch back. */
	return u != GS_OK ? u : r;
}

static int
s_conflict_put(struct pf_store *st, const struct pf_conflict *c)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s = ss->st[S_CONFLICT_PUT];
	int r;

	if ((r = gs_stmt_bind_text(s, 1, c->uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, c->change_id)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, c->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, c->batch)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, c->base_rev)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, c->current_rev)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 7, c->change)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 8, c->current_fields)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 9, c->created_at)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	if ((r = run(s)) != GS_OK)
		return r;
	return change_put(ss, c->change_id, c->batch, c->uuid, PF_CONFLICT,
	    c->current_rev);
}

static int
s_quarantine_put(struct pf_store *st, const struct pf_quarantined *q)
{
	struct sqlite_store *ss = self(st);
	struct gs_stmt *s = ss->st[S_QUARANTINE_PUT];
	int r;

	if ((r = gs_stmt_bind_int64(s, 1, q->batch)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, q->device, PF_ID_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, q->change_id)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, q->uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 5, q->type)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 6, q->grid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 7, q->cause)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 8, q->change)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 9, q->reasons)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 10, q->created_at)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	if ((r = run(s)) != GS_OK)
		return r;
	if (!q->record_change)
		return GS_OK;
	return change_put(ss, q->change_id, q->batch, q->uuid, PF_QUARANTINED,
	    0);
}

static int
s_record_each(struct pf_store *st, const char *type, const char *grid,
    int (*cb)(void *arg, const struct pf_record_view *r), void *arg)
{
	struct gs_stmt *s = self(st)->st[S_RECORD_EACH];
	struct pf_record_view v;
	int r;

	if ((r = gs_stmt_bind_text(s, 1, type)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, grid)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		memset(&v, 0, sizeof(v));
		v.uuid = gs_stmt_text(s, 0);
		v.type = gs_stmt_text(s, 1);
		v.grid = gs_stmt_text(s, 2);
		v.rev = gs_stmt_int64(s, 3);
		v.fields = gs_stmt_text(s, 4);
		v.deleted = (int)gs_stmt_int64(s, 5);
		v.created_at = gs_stmt_int64(s, 6);
		v.updated_at = gs_stmt_int64(s, 7);
		v.author = gs_stmt_text(s, 8);
		v.form_version = (int)gs_stmt_int64(s, 9);
		v.clock_suspect = (int)gs_stmt_int64(s, 10);
		if ((r = cb(arg, &v)) != GS_OK) {
			gs_stmt_reset(s);
			return r;
		}
	}
	return r == GS_DONE ? GS_OK : r;
}

static int
s_quarantine_each(struct pf_store *st,
    int (*cb)(void *arg, const struct pf_quarantine_view *q), void *arg)
{
	struct gs_stmt *s = self(st)->st[S_QUARANTINE_EACH];
	struct pf_quarantine_view v;
	unsigned char dev[PF_ID_BYTES];
	int r;

	while ((r = gs_stmt_step(s)) == GS_ROW) {
		memset(&v, 0, sizeof(v));
		v.id = gs_stmt_int64(s, 0);
		v.batch = gs_stmt_int64(s, 1);
		(void)col_blob(s, 2, dev, sizeof(dev));
		v.device = dev;
		v.change_id = gs_stmt_text(s, 3);
		v.uuid = gs_stmt_text(s, 4);
		v.type = gs_stmt_text(s, 5);
		v.grid = gs_stmt_text(s, 6);
		v.cause = gs_stmt_text(s, 7);
		v.reasons = gs_stmt_text(s, 8);
		v.created_at = gs_stmt_int64(s, 9);
		if ((r = cb(arg, &v)) != GS_OK) {
			gs_stmt_reset(s);
			return r;
		}
	}
	return r == GS_DONE ? GS_OK : r;
}

static int
s_conflict_each(struct pf_store *st,
    int (*cb)(void *arg, const struct pf_conflict_view *c), void *arg)
{
	struct gs_stmt *s = self(st)->st[S_CONFLICT_EACH];
	struct pf_conflict_view v;
	unsigned char dev[PF_ID_BYTES];
	int r;

	while ((r = gs_stmt_step(s)) == GS_ROW) {
		memset(&v, 0, sizeof(v));
		v.id = gs_stmt_int64(s, 0);
		v.batch = gs_stmt_int64(s, 1);
		(void)col_blob(s, 2, dev, sizeof(dev));
		v.device = dev;
		v.uuid = gs_stmt_text(s, 3);
		v.change_id = gs_stmt_text(s, 4);
		v.base_rev = gs_stmt_int64(s, 5);
		v.current_rev = gs_stmt_int64(s, 6);
		v.change = gs_stmt_text(s, 7);
		v.current_fields = gs_stmt_text(s, 8);
		v.created_at = gs_stmt_int64(s, 9);
		v.status = gs_stmt_text(s, 10);
		if ((r = cb(arg, &v)) != GS_OK) {
			gs_stmt_reset(s);
			return r;
		}
	}
	return r == GS_DONE ? GS_OK : r;
}

static int
s_missing_ranges(struct pf_store *st, const unsigned char *device,
    int (*cb)(void *arg, uint64_t from, uint64_t to), void *arg)
{
	struct gs_stmt *s = self(st)->st[S_MISSING_RANGES];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, device, PF_ID_BYTES)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if ((r = cb(arg, (uint64_t)gs_stmt_int64(s, 0),
		    (uint64_t)gs_stmt_int64(s, 1))) != GS_OK) {
			gs_stmt_reset(s);
			return r;
		}
	}
	return r == GS_DONE ? GS_OK : r;
}

static int
count_for(struct sqlite_store *ss, int which, const unsigned char *device,
    int64_t *out)
{
	struct gs_stmt *s = ss->st[which];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, device, PF_ID_BYTES)) != GS_OK)
		return r;
	return gs_stmt_one_int64(s, 0, out);
}

static int
s_device_counts(struct pf_store *st, const unsigned char *device,
    int64_t *quarantined, int64_t *conflicts, int64_t *revisions)
{
	struct sqlite_store *ss = self(st);
	int r;

	if ((r = count_for(ss, S_DEVICE_QUARANTINED, device, quarantined))
	    != GS_OK ||
	    (r = count_for(ss, S_DEVICE_CONFLICTS, device, conflicts))
	    != GS_OK)
		return r;
	return count_for(ss, S_DEVICE_REVISIONS, device, revisions);
}

static int
s_records_by_type(struct pf_store *st, const unsigned char *device,
    int (*cb)(void *arg, const char *type, int64_t n), void *arg)
{
	struct gs_stmt *s = self(st)->st[S_RECORDS_BY_TYPE];
	int r;

	if ((r = gs_stmt_bind_blob(s, 1, device, PF_ID_BYTES)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if ((r = cb(arg, gs_stmt_text(s, 0), gs_stmt_int64(s, 1)))
		    != GS_OK) {
			gs_stmt_reset(s);
			return r;
		}
	}
	return r == GS_DONE ? GS_OK : r;
}

static int
s_count(struct pf_store *st, const char *what, int64_t *out)
{
	static const char *const tables[] = { "devices", "batches", "records",
		"revisions", "changes", "conflicts", "quarantine",
		"enroll_tokens" };
	struct gs_stmt *s = NULL;
	char q[64];
	size_t i;
	int r;

	/* Table names cannot be bound: only these fixed names are allowed. */
	for (i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		if (strcmp(what, tables[i]) == 0)
			break;
	if (i == sizeof(tables) / sizeof(tables[0]))
		return GS_FAIL(GS_EINVAL, "no table %s", what);
	snprintf(q, sizeof(q), "SELECT count(*) FROM %s", tables[i]);
	if ((r = gs_stmt_prepare(self(st)->db, q, &s)) != GS_OK)
		return r;
	r = gs_stmt_one_int64(s, 0, out);
	gs_stmt_finalize(s);
	return r;
}

int
pf_store_sqlite_stmt(struct pf_store *st, unsigned slot, const char *text,
    struct gs_stmt **out)
{
	struct sqlite_store *ss = self(st);
	int r;

	*out = NULL;
	if (st == NULL || st->ops != &sqlite_ops || slot >= PF_SQLITE_EXT_MAX)
		return GS_FAIL(GS_EINTERNAL, "no SQLite statement slot %u",
		    slot);
	if (ss->ext[slot] == NULL &&
	    (r = gs_stmt_prepare(ss->db, text, &ss->ext[slot])) != GS_OK)
		return r;
	*out = ss->ext[slot];
	return GS_OK;
}

static const struct pf_store_ops sqlite_ops = {
	.name = "sqlite",
	.close = s_close,
	.integrity_check = s_integrity_check,
	.meta_get = s_meta_get,
	.meta_set = s_meta_set,
	.begin = s_begin,
	.commit = s_commit,
	.commit_nosync = s_commit_nosync,
	.sync = s_sync,
	.rollback = s_rollback,
	.token_put = s_token_put,
	.token_get = s_token_get,
	.token_redeem = s_token_redeem,
	.token_expire = s_token_expire,
	.device_get = s_device_get,
	.device_each = s_device_each,
	.device_revoke = s_device_revoke,
	.device_touch = s_device_touch,
	.batch_find = s_batch_find,
	.batch_insert = s_batch_insert,
	.batch_finish = s_batch_finish,
	.ledger_update = s_ledger_update,
	.record_state = s_record_state,
	.change_find = s_change_find,
	.revision_put = s_revision_put,
	.create_put = s_create_put,
	.run_begin = s_run_begin,
	.run_put = s_run_put,
	.run_end = s_run_end,
	.serve_start = s_serve_start,
	.feed_record = s_feed_record,
	.tally_add = s_tally_add,
	.record_attach = s_record_attach,
	.conflict_put = s_conflict_put,
	.quarantine_put = s_quarantine_put,
	.record_each = s_record_each,
	.quarantine_each = s_quarantine_each,
	.conflict_each = s_conflict_each,
	.missing_ranges = s_missing_ranges,
	.device_counts = s_device_counts,
	.records_by_type = s_records_by_type,
	.count = s_count,
};

int
pf_store_sqlite_open(const char *path, int flags, struct pf_store **out)
{
	int r = GS_EINTERNAL;
	struct sqlite_store *s = NULL;
	int i;

	*out = NULL;
	if ((s = gs_calloc(1, sizeof(*s))) == NULL)
		return GS_FAIL(GS_ENOMEM, "store");
	s->base.ops = &sqlite_ops;
	gs_buf_init(&s->run_refs, RUN_FEED_BYTES);
	/* A batch's commit writes hundreds of WAL frames: in 64 KiB
	 * writes, not two write() calls each (sync/db.h). */
	if ((r = gs_db_open(path, "platform", ((flags & PF_STORE_CREATE) ?
	    GS_DB_CREATE : 0) | ((flags & PF_STORE_READ) ?
	    GS_DB_READ_FALLBACK : 0) | ((flags & PF_STORE_ONE_THREAD) ?
	    GS_DB_ONE_THREAD : 0) | GS_DB_COALESCE_WAL, &s->db)) != GS_OK)
		goto out;
	/*
	 * A server's page cache: 64 MiB (SQLite's default is 2 MiB).  With
	 * the default, a batch's transaction outgrew the cache and SQLite
	 * spilled its dirty pages to the WAL one at a time before the
	 * commit, and read them back: 100 batches of 1,000 persons made
	 * 81,600 pwrite and 137,900 pread calls, 10,100 and 65,200 with
	 * this cache.  A checkpoint every 4,000 WAL pages (16 MiB) instead
	 * of 1,000: a page written by several batches in a row (the end of
	 * every table and index) is copied into the database once, and 108
	 * fewer fsyncs per 100 batches.  The cache is allocated as used, so
	 * a short admin command pays nothing for it.
	 */
	if ((r = gs_db_exec(s->db, "PRAGMA cache_size = -65536; "
	    "PRAGMA wal_autocheckpoint = 4000")) != GS_OK)
		goto out;
	for (i = 0; i < S_COUNT_; i++)
		if ((r = gs_stmt_prepare(s->db, sql[i], &s->st[i])) != GS_OK)
			goto out;
	*out = &s->base;
	s = NULL;
	r = GS_OK;
out:
	if (s != NULL)
		s_close(&s->base);
	return r;
}

int
pf_store_sqlite_readonly(struct pf_store *st)
{
	return gs_db_readonly(((struct sqlite_store *)st)->db);
}

void
pf_store_close(struct pf_store *st)
{
	if (st != NULL)
		st->ops->close(st);
}
