/*
 * recon_sql.c - the queries of reconciliation, on the SQLite store.
 *
 * They live here, in one table, rather than in store_sqlite.c so that the
 * store's core (ingest, enrollment) and these admin questions can change
 * apart.  The per-device numbers come from tallies kept at ingest
 * (device_tally, platform/ingest.c), never from counting every
 * record, so `reconcile` costs the same with a million records as with ten.
 */
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "db.h"
#include "recon.h"
#include "core/banned.h"

/* Slots of the store's extension statements taken by this file. */
#define SLOT0 0
/* rotate.c takes 40 and up: two files in one slot would share a
 * statement, the wrong one for one of them. */
_Static_assert(PQ_COUNT_ <= 40, "recon_sql.c statements reach rotate.c's "
    "slots (40..)");

static const char *const qsql[PQ_COUNT_] = {
	/* A revision's fields from revision_fields, never from the column:
	 * a new record's are kept once, in its line (platform 0010). */
	[PQ_BASE] = "SELECT fields, deleted FROM revision_fields "
	    "WHERE uuid = ?1 AND rev = ?2",
	[PQ_CONFLICT_DETAIL] = "UPDATE conflicts SET fields = ?2, merged = ?3, "
	    "merged_deleted = ?4 WHERE id = (SELECT max(id) FROM conflicts "
	    "WHERE change_id = ?1)",
	[PQ_TASK_CLOSE] = "UPDATE tasks SET status = 'done', closed_at = ?3, "
	    "closed_by = ?2 WHERE id = ?1 AND status = 'open'",
	/* A heartbeat older than the one kept (a replay inside the time
	 * window) changes nothing. */
	[PQ_HB_PUT] = "INSERT INTO heartbeats (device_id, received_at, "
	    "device_time, unsent, outbox, last_seq, acked_seq, rejected, "
	    "quarantined, chain_head, version, free_bytes, report) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
	    "ON CONFLICT (device_id) DO UPDATE SET "
	    "received_at = excluded.received_at, "
	    "device_time = excluded.device_time, unsent = excluded.unsent, "
	    "outbox = excluded.outbox, last_seq = excluded.last_seq, "
	    "acked_seq = excluded.acked_seq, rejected = excluded.rejected, "
	    "quarantined = excluded.quarantined, "
	    "chain_head = excluded.chain_head, version = excluded.version, "
	    "free_bytes = excluded.free_bytes, report = excluded.report "
	    "WHERE excluded.device_time > heartbeats.device_time",
	[PQ_DEVICES] = "SELECT d.device_id, d.worker, d.name, d.grid, "
	    "d.status, d.last_seq, d.chain_ok, d.batches, d.last_contact, "
	    "d.chain_head, h.received_at, h.unsent, h.outbox, h.last_seq, "
	    "h.acked_seq, h.rejected, h.quarantined, h.chain_head, h.version, "
	    "h.free_bytes FROM devices d LEFT JOIN heartbeats h "
	    "ON h.device_id = d.device_id "
	    "WHERE (?1 IS NULL OR d.grid = ?1) AND (?2 IS NULL OR d.worker = ?2) "
	    "ORDER BY d.worker, d.enrolled_at, d.device_id",
	/* Gaps below each device's high-water mark, as ranges, for all
	 * devices in one pass over the (device, seq) index. */
	[PQ_MISSING] = "WITH s AS (SELECT device_id, seq FROM batches "
	    "GROUP BY device_id, seq), g AS (SELECT device_id, seq, "
	    "lag(seq, 1, 0) OVER (PARTITION BY device_id ORDER BY seq) AS prev "
	    "FROM s) SELECT device_id, prev + 1, seq - 1 FROM g "
	    "WHERE seq > prev + 1 ORDER BY device_id, seq",
	/* A seq held twice with different envelopes: a fork (a store
	 * restored from an old backup sealed the same seqs again). */
	[PQ_FORKS] = "SELECT device_id, seq, count(*) FROM batches "
	    "GROUP BY device_id, seq HAVING count(*) > 1",
	[PQ_BROKEN] = "SELECT seq FROM batches WHERE device_id = ?1 "
	    "AND chain = 'broken' ORDER BY seq LIMIT 20",
	[PQ_TALLY] = "SELECT device_id, key, n FROM device_tally WHERE n <> 0",
	[PQ_QOPEN] = "SELECT device_id, count(*) FROM quarantine "
	    "WHERE status = 'open' GROUP BY device_id",
	[PQ_COPEN] = "SELECT device_id, count(*) FROM conflicts "
	    "WHERE status = 'open' GROUP BY device_id",
	/* Record revisions whose device times cannot be right (platform
	 * 0012): flagged, not an issue (nothing for an admin to decide). */
	[PQ_CLOCK] = "SELECT device_id, count(*) FROM clock_suspect "
	    "GROUP BY device_id",
	[PQ_CONFLICT_LIST] = "SELECT c.id, c.uuid, c.change_id, c.device_id, "
	    "coalesce(d.worker, ''), c.base_rev, c.current_rev, c.fields, "
	    "c.status, c.created_at, c.resolved_by, c.resolution, "
	    "coalesce(r.type, '') FROM conflicts c "
	    "LEFT JOIN devices d ON d.device_id = c.device_id "
	    "LEFT JOIN records r ON r.uuid = c.uuid "
	    "WHERE (?1 IS NULL OR c.status = ?1) ORDER BY c.id",
	[PQ_CONFLICT_GET] = "SELECT uuid, change, current_fields, status, "
	    "device_id, batch, base_rev FROM conflicts WHERE id = ?1",
	[PQ_CONFLICT_DONE] = "UPDATE conflicts SET status = 'resolved', "
	    "resolved_at = ?2, resolved_by = ?3, resolution = ?4 "
	    "WHERE id = ?1 AND status = 'open'",
	/* From record_fields: a new record's fields are kept once, in its
	 * revision (platform 0013). */
	[PQ_RECORD_GET] = "SELECT type, form_version, grid, rev, fields, "
	    "deleted, author FROM record_fields WHERE uuid = ?1",
	[PQ_RECORD_NEW] = "INSERT INTO records (uuid, type, form_version, "
	    "grid, rev, fields, deleted, created_at, updated_at, author, "
	    "device_id, batch) VALUES (?1, ?2, ?3, ?4, 1, ?5, 0, ?6, ?7, ?8, "
	    "?9, ?10)",
	[PQ_RECORD_SET] = "UPDATE records SET rev = ?2, fields = ?3, "
	    "deleted = ?4, updated_at = ?5 WHERE uuid = ?1 AND rev = ?6",
	[PQ_REVISION_ADD] = "INSERT INTO revisions (uuid, rev, change_id, "
	    "base_rev, device_id, batch, change, fields, deleted, applied_at, "
	    "by_admin) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[PQ_CHANGE_SET] = "INSERT INTO changes (change_id, batch, uuid, "
	    "outcome, rev) VALUES (?1, ?2, ?3, 'applied', ?4) "
	    "ON CONFLICT (change_id) DO UPDATE SET outcome = 'applied', "
	    "rev = excluded.rev",
	[PQ_Q_LIST] = "SELECT q.id, q.batch, q.device_id, "
	    "coalesce(d.worker, ''), coalesce(d.status, ''), q.change_id, "
	    "q.uuid, q.type, q.grid, q.cause, q.reasons, q.created_at, "
	    "q.status, q.decided_by, q.decision, b.seq FROM quarantine q "
	    "LEFT JOIN devices d ON d.device_id = q.device_id "
	    "LEFT JOIN batches b ON b.id = q.batch "
	    "WHERE (?1 IS NULL OR q.status = ?1) ORDER BY q.id",
	[PQ_Q_GET] = "SELECT change, status, device_id, batch, uuid, type "
	    "FROM quarantine WHERE id = ?1",
	[PQ_Q_DECIDE] = "UPDATE quarantine SET status = ?2, decided_at = ?3, "
	    "decided_by = ?4, decision = ?5 WHERE id = ?1 AND status = 'open'",
	[PQ_REVIEW_ADD] = "INSERT INTO reviews (uuid, state, comment, "
	    "by_admin, worker, created_at) SELECT ?1, ?2, ?3, ?4, author, ?5 "
	    "FROM records WHERE uuid = ?1",
	[PQ_TASK_ADD] = "INSERT INTO tasks (id, worker, kind, subject, due, "
	    "title, created_at, created_by) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[PQ_STATS] = "SELECT author, grid, date(created_at / 1000, "
	    "'unixepoch') AS day, count(*), sum(type = 'visit') FROM records "
	    "WHERE deleted = 0 AND created_at >= ?1 "
	    "GROUP BY author, grid, day ORDER BY day, author, grid",
	/* The feed a device hears (pull.c feed_rows), one source a query,
	 * each in its index's order: the records of one grid of its
	 * worker's that it does not already hold exactly (its own
	 * fast-forwards are left out, unless ?5: its chain forked, i.e. its
	 * store went back to an old copy and lost them), then the tasks and
	 * reviews addressed to its worker; after ?2 up to ?3 (PQ_FEED_TOP,
	 * read first). */
	[PQ_FEED_GRIDS] = "SELECT DISTINCT grid FROM devices WHERE worker = ?1",
	[PQ_FEED_GRID] = "SELECT seq, kind, ref, rev FROM feed "
	    "WHERE grid = ?1 AND seq > ?2 AND seq <= ?3 AND kind = 'record' "
	    "AND NOT (own AND device_id = ?4 AND NOT ?5) ORDER BY seq LIMIT ?6",
	[PQ_FEED_WORKER] = "SELECT seq, kind, ref, rev FROM feed "
	    "WHERE worker = ?1 AND seq > ?2 AND seq <= ?3 AND kind <> 'record' "
	    "ORDER BY seq LIMIT ?4",
	[PQ_FEED_TOP] = "SELECT coalesce(max(seq), 0) FROM feed",
	[PQ_FEED_REC] = "SELECT r.type, r.form_version, r.grid, v.fields, "
	    "v.deleted, r.author, r.created_at, v.applied_at, v.by_admin "
	    "FROM revision_fields v JOIN records r ON r.uuid = v.uuid "
	    "WHERE v.uuid = ?1 AND v.rev = ?2",
	[PQ_FEED_TASK] = "SELECT id, kind, coalesce(subject, ''), due, title, "
	    "status, created_at, coalesce(closed_by, '') FROM tasks "
	    "WHERE id = ?1",
	[PQ_FEED_REVIEW] = "SELECT uuid, state, comment, by_admin, created_at "
	    "FROM reviews WHERE id = ?1",
	[PQ_REVIEW_LAST] = "SELECT state, comment, by_admin, created_at "
	    "FROM reviews WHERE uuid = ?1 ORDER BY id DESC LIMIT 1",
	/* A conflict found when a quarantined change is released (its
	 * change id is already in the ledger as quarantined). */
	[PQ_CONFLICT_ADD] = "INSERT INTO conflicts (uuid, change_id, "
	    "device_id, batch, base_rev, current_rev, change, current_fields, "
	    "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
	/* Published reference data (platform/reference.c), in the order
	 * of publication. */
	[PQ_REF_LIST] = "SELECT id, digest, kind, name, version, doc, "
	    "published_at, published_by FROM reference ORDER BY id",
	[PQ_REF_SERIAL] = "SELECT coalesce(max(id), 0) FROM reference",
	[PQ_REF_GET] = "SELECT doc FROM reference WHERE digest = ?1",
	[PQ_REF_ADD] = "INSERT INTO reference (digest, kind, name, version, "
	    "doc, published_at, published_by) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
};

const char *
pf_recon_sql(enum pf_recon_q q)
{
	return (unsigned)q < PQ_COUNT_ ? qsql[q] : NULL;
}

int
pf_recon_stmt(struct pf_store *st, enum pf_recon_q q, struct gs_stmt **out)
{
	if ((unsigned)q >= PQ_COUNT_)
		return GS_FAIL(GS_EINTERNAL, "query %d", (int)q);
	return pf_store_sqlite_stmt(st, SLOT0 + (unsigned)q, qsql[q], out);
}

int
pf_recon_prepare_all(struct pf_store *st)
{
	struct gs_stmt *s;
	int q, r;

	for (q = 0; q < PQ_COUNT_; q++)
		if ((r = pf_recon_stmt(st, (enum pf_recon_q)q, &s)) != GS_OK)
			return r;
	return GS_OK;
}

int
pf_recon_base(struct pf_store *st, const char *uuid, int64_t rev,
    char **fields, int *deleted)
{
	struct gs_stmt *s;
	int r;

	*fields = NULL;
	*deleted = 0;
	if (rev == 0)
		return GS_OK;
	if ((r = pf_recon_stmt(st, PQ_BASE, &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, rev)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_FAIL(GS_ENOTFOUND, "record %s: revision %lld is not "
		    "kept", uuid, (long long)rev);
	if (r != GS_ROW)
		return r;
	*deleted = (int)gs_stmt_int64(s, 1);
	if (!gs_stmt_is_null(s, 0) &&
	    (*fields = gs_strdup(gs_stmt_text(s, 0))) == NULL)
		r = GS_FAIL(GS_ENOMEM, "base fields");
	else
		r = GS_OK;
	gs_stmt_reset(s);
	return r;
}

/* Steps a statement that returns no rows. */
static int
run(struct gs_stmt *s)
{
	int r = gs_stmt_step(s);

	if (r == GS_DONE)
		return GS_OK;
	if (r == GS_ROW) {
		gs_stmt_reset(s);
		return GS_FAIL(GS_EINTERNAL, "statement returned a row");
	}
	return r;
}

int
pf_recon_conflict_detail(struct pf_store *st, const char *change_id,
    const char *fields_json, const char *merged_json, int merged_deleted)
{
	struct gs_stmt *s;
	int r;

	if ((r = pf_recon_stmt(st, PQ_CONFLICT_DETAIL, &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, change_id)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, fields_json)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, merged_json)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, merged_deleted)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}

int
pf_recon_task_close(struct pf_store *st, const char *task_id,
    const char *visit_uuid, int64_t now)
{
	struct gs_stmt *s;
	int r;

	if ((r = pf_recon_stmt(st, PQ_TASK_CLOSE, &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, task_id)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, visit_uuid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, now)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	return run(s);
}
