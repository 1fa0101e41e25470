/*
 * pii.c - finding people by id number through the blind index, and the
 * retention purge of receipted records' personal data (issue 6).
 *
 * Purge: a record qualifies when a batch holding one of its changes was
 * acked more than the retention period ago and nothing newer of it is on
 * its way (no unsent or batched change, no batch acked since the cutoff,
 * none rejected or quarantined waiting for a human).  Its sealed member
 * is removed from record.fields and from the fields of its delivered
 * changes (and any plain pii field, in a store that was never protected),
 * leaving a stub that still explains the ledger: uuid, type, rev, the
 * non-pii fields, purged_at.  It needs no key: a locked or revoked device
 * purges too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/progress.h"
#include "core/util.h"
#include "crypt.h"
#include "db.h"
#include "gridagent.h"
#include "keys.h"
#include "schema.h"
#include "store.h"
#include "core/banned.h"

#define DAY_MS (86400LL * 1000)
#define RETENTION_DEFAULT AG_RETENTION_DAYS_DEFAULT

int
ag_find_id_number(struct ag_store *st, const char *id_number, ag_uuid_fn fn,
    void *ctx)
{
	struct ag_crypt *c = ag_store_crypt(st);
	struct gs_stmt *s = NULL;
	unsigned char tag[AG_BIDX_BYTES];
	int r;

	if (!ag_store_protected(st))
		return GS_FAIL(GS_EUNSUPPORTED, "this store is not protected: "
		    "it has no id-number index");
	if (c == NULL)
		return GS_FAIL(GS_EPERM, "locked: run gridagent unlock");
	if ((r = ag_crypt_bidx(c, id_number, tag)) != GS_OK)
		return r;
	if ((r = gs_stmt_prepare(ag_store_db(st), "SELECT DISTINCT p.uuid "
	    "FROM pii_index p JOIN record r ON r.uuid = p.uuid "
	    "WHERE p.tag = ?1 AND r.deleted = 0 ORDER BY p.uuid", &s))
	    != GS_OK)
		return r;
	if ((r = gs_stmt_bind_blob(s, 1, tag, sizeof(tag))) != GS_OK)
		goto out;
	while ((r = gs_stmt_step(s)) == GS_ROW)
		fn(ctx, gs_stmt_text(s, 0));
	if (r == GS_DONE)
		r = GS_OK;
out:
	gs_stmt_finalize(s);
	return r;
}

/* Removes the sealed member and any plain pii field of a fields text;
 * *out the new text (gs_free), NULL when nothing changed. */
static int
strip(const struct gs_schema *sc, const char *type, const char *text,
    char **out)
{
	const struct gs_form *f = gs_schema_form(sc, type);
	json_t *o = NULL, *v;
	json_error_t je;
	const char *k;
	void *tmp;
	int changed = 0;

	*out = NULL;
	if ((o = json_loads(text, 0, &je)) == NULL || !json_is_object(o)) {
		json_decref(o);
		return GS_OK; /* not ours to judge here: leave it */
	}
	json_object_foreach_safe(o, tmp, k, v) {
		const struct gs_field *fd = f ? gs_form_field(f, k) : NULL;

		if (strcmp(k, AG_PII_MEMBER) == 0 ||
		    (fd != NULL && gs_field_pii(fd))) {
			json_object_del(o, k);
			changed = 1;
		}
	}
	if (changed && (*out = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		return GS_FAIL(GS_ENOMEM, "purge: out of memory");
	}
	json_decref(o);
	return GS_OK;
}

int
ag_purge(struct ag_store *st, int days, int64_t now_ms, size_t *count)
{
	struct gs_db *db = ag_store_db(st);
	const struct gs_schema *sc = ag_store_schema(st);
	struct gs_stmt *sel = NULL, *upd = NULL;
	struct gs_progress *pg = ag_store_progress(st);
	char *v = NULL;
	int64_t cutoff, d = RETENTION_DEFAULT;
	size_t n = 0, nc = 0;
	int r = GS_EINTERNAL, in_tx = 0, pass;

	if (count != NULL)
		*count = 0;
	if (days >= 0) {
		d = days;
	} else if (ag_store_meta_get(st, "retention_days", &v) == GS_OK) {
		if (gs_parse_i64(v, 0, 36500, &d) != GS_OK)
			d = RETENTION_DEFAULT;
	}
	gs_free(v);
	cutoff = now_ms - d * DAY_MS;
	/* Only what an acked batch carried at least d days ago goes: with
	 * no such batch there is nothing to do, and the pass below (which
	 * reads every change of every recent batch) is skipped.  Sync runs
	 * this after each upload, right after acking its batches. */
	if ((r = gs_stmt_prepare(db, "SELECT EXISTS (SELECT 1 FROM outbox "
	    "WHERE state = 'acked' AND acked_at <= ?1)", &sel)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_int64(sel, 1, cutoff)) == GS_OK &&
	    (r = gs_stmt_step(sel)) == GS_ROW)
		r = gs_stmt_int64(sel, 0) ? GS_ROW : GS_DONE;
	gs_stmt_finalize(sel);
	sel = NULL;
	if (r == GS_DONE)
		return GS_OK;
	if (r != GS_ROW)
		return r;
	if ((r = gs_db_exec(db, "PRAGMA secure_delete = ON; "
	    "PRAGMA temp_store = MEMORY")) != GS_OK)
		return r;
	if ((r = gs_db_begin(db)) != GS_OK)
		return r;
	in_tx = 1;
	/* Which uuids go (uuids are not personal data; the temporary
	 * tables live in memory all the same). */
	if ((r = gs_db_exec(db, "CREATE TEMP TABLE IF NOT EXISTS purge_keep("
	    "uuid TEXT PRIMARY KEY) WITHOUT ROWID; "
	    "CREATE TEMP TABLE IF NOT EXISTS purge_go(uuid TEXT PRIMARY KEY) "
	    "WITHOUT ROWID; DELETE FROM purge_keep; DELETE FROM purge_go; "
	    "INSERT OR IGNORE INTO purge_keep SELECT uuid FROM change "
	    "WHERE state IN (0, 1, 3, 4, 5)")) != GS_OK)
		goto out;
	/* A batch's creations are its sealed_creation rows (schema/agent/
	 * 0011), found by the batch's range of uuids, or change rows. */
	if ((r = gs_stmt_prepare(db, "INSERT OR IGNORE INTO purge_keep "
	    "SELECT c.uuid FROM outbox o JOIN change c ON c.batch_seq = o.seq "
	    "WHERE o.state <> 'acked' OR o.acked_at > ?1 UNION ALL "
	    "SELECT s.uuid FROM outbox o JOIN sealed_creation s ON s.uuid "
	    "BETWEEN o.first_creation AND o.last_creation AND s.batch_seq = "
	    "o.seq WHERE o.state <> 'acked' OR o.acked_at > ?1", &sel)) !=
	    GS_OK ||
	    (r = gs_stmt_bind_int64(sel, 1, cutoff)) != GS_OK ||
	    (r = gs_stmt_step(sel)) != GS_DONE)
		goto out;
	gs_stmt_finalize(sel);
	sel = NULL;
	if ((r = gs_stmt_prepare(db, "INSERT OR IGNORE INTO purge_go "
	    "SELECT c.uuid FROM outbox o JOIN change c ON c.batch_seq = o.seq "
	    "JOIN record r ON r.uuid = c.uuid WHERE o.state = 'acked' AND "
	    "o.acked_at <= ?1 AND r.purged_at IS NULL AND c.uuid NOT IN "
	    "(SELECT uuid FROM purge_keep) UNION ALL "
	    "SELECT s.uuid FROM outbox o JOIN sealed_creation s ON s.uuid "
	    "BETWEEN o.first_creation AND o.last_creation AND s.batch_seq = "
	    "o.seq JOIN record r ON r.uuid = s.uuid WHERE o.state = 'acked' "
	    "AND o.acked_at <= ?1 AND r.purged_at IS NULL AND s.uuid NOT IN "
	    "(SELECT uuid FROM purge_keep)", &sel)) != GS_OK ||
	    (r = gs_stmt_bind_int64(sel, 1, cutoff)) != GS_OK ||
	    (r = gs_stmt_step(sel)) != GS_DONE)
		goto out;
	gs_stmt_finalize(sel);
	sel = NULL;
	/* Pass 0 strips the records, pass 1 their delivered changes. */
	for (pass = 0; pass < 2; pass++) {
		if ((r = gs_stmt_prepare(db, pass == 0 ?
		    "SELECT r.uuid, r.type, r.fields FROM purge_go g "
		    "JOIN record r ON r.uuid = g.uuid" :
		    "SELECT c.change_id, c.type, c.fields FROM outbox o "
		    "JOIN change c ON c.batch_seq = o.seq WHERE o.state = "
		    "'acked' AND c.fields IS NOT NULL AND c.uuid IN "
		    "(SELECT uuid FROM purge_go)", &sel)) != GS_OK ||
		    (r = gs_stmt_prepare(db, pass == 0 ?
		    "UPDATE record SET fields = ?2, purged_at = ?3 "
		    "WHERE uuid = ?1" :
		    "UPDATE change SET fields = ?2 WHERE change_id = ?1 AND "
		    "?3 = ?3", &upd)) != GS_OK)
			goto out;
		while ((r = gs_stmt_step(sel)) == GS_ROW) {
			char *t = NULL;
			const char *text = gs_stmt_text(sel, 2);

			if ((r = strip(sc, gs_stmt_text(sel, 1) ?: "",
			    text ? text : "{}", &t)) != GS_OK)
				goto out;
			if (pass == 1 && t == NULL)
				continue;
			r = gs_stmt_bind_text(upd, 1, gs_stmt_text(sel, 0));
			if (r == GS_OK)
				r = gs_stmt_bind_text(upd, 2, t ? t : text);
			if (r == GS_OK)
				r = gs_stmt_bind_int64(upd, 3, now_ms);
			if (r == GS_OK) {
				r = gs_stmt_step(upd);
				r = r == GS_DONE ? GS_OK : r;
			}
			gs_free(t);
			if (r != GS_OK)
				goto out;
			if (pass == 0)
				n++;
			else
				nc++;
			if (pg != NULL && gs_progress_due(pg))
				gs_progress_show(pg, "purge: %zu records, %zu "
				    "changes stripped", n, nc);
		}
		if (r != GS_DONE)
			goto out;
		gs_stmt_finalize(sel);
		gs_stmt_finalize(upd);
		sel = upd = NULL;
	}
	if ((r = gs_db_exec(db, "DELETE FROM pii_index WHERE uuid IN "
	    "(SELECT uuid FROM purge_go); DELETE FROM purge_go; "
	    "DELETE FROM purge_keep")) != GS_OK)
		goto out;
	if (n > 0) {
		char detail[64];
		struct gs_stmt *a = NULL;

		snprintf(detail, sizeof(detail), "{\"count\":%zu,\"days\":%lld}",
		    n, (long long)d);
		if ((r = gs_stmt_prepare(db, "INSERT INTO audit(at, action, "
		    "uuid, type, detail) VALUES(?1, 'purge', NULL, NULL, ?2)",
		    &a)) != GS_OK)
			goto out;
		if ((r = gs_stmt_bind_int64(a, 1, now_ms)) == GS_OK &&
		    (r = gs_stmt_bind_text(a, 2, detail)) == GS_OK)
			r = gs_stmt_step(a) == GS_DONE ? GS_OK : GS_EDB;
		gs_stmt_finalize(a);
		if (r != GS_OK)
			goto out;
	}
	/* Writing out a large purge (secure_delete) takes a while too. */
	if (pg != NULL && pg->shown)
		gs_progress_show(pg, "purge: %zu records, %zu changes "
		    "stripped, saving", n, nc);
	if ((r = gs_db_commit(db)) != GS_OK)
		goto out;
	in_tx = 0;
	/* The old pages live on in the WAL until a checkpoint copies the
	 * new ones over them; TRUNCATE then empties the WAL file. */
	if (n > 0)
		(void)gs_db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	if (count != NULL)
		*count = n;
	r = GS_OK;
out:
	if (pg != NULL)
		gs_progress_done(pg);
	if (in_tx)
		gs_db_rollback(db);
	gs_stmt_finalize(sel);
	gs_stmt_finalize(upd);
	return r;
}
