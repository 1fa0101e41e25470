/*
 * outbox.c - seal unsent changes into immutable batches and record what
 * the platform's receipts say about them.
 *
 * Every public function that changes state is ONE transaction (BEGIN
 * IMMEDIATE ... COMMIT): no state has changes batched without their
 * envelope stored, or an envelope stored without its changes batched
 * (research/reliability-anchors.md 2.1).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "batch.h"
#include "crypt.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "envelope.h"
#include "json.h"
#include "outbox.h"
#include "receipt.h"
#include "store.h"
#include "core/banned.h"

/* Our own defaults, below the format's caps: a batch of this size seals
 * in milliseconds and survives a weak link in one piece. */
#define OUTBOX_RECORDS 1000u
#define OUTBOX_PLAIN ((size_t)4 << 20)
/* Room kept for the header line in the plaintext budget, and at the
 * front of the seal's body, where the header is written right before the
 * lines: the plaintext is sealed from there, not copied.  The header line
 * is at most about 190 bytes (sync/batch.c gs_batch_encode_header). */
#define HEADER_ROOM 256
/* The most personal data one change's fields may hold once opened (agent/
 * crypt.c seals at most 2 MiB), and the most members fast_line takes
 * from the stored fields and from the personal data each. */
#define OUTBOX_PII ((size_t)2 << 20)
#define FAST_MEMBERS 64

struct ag_outbox {
	struct gs_db *db;
	struct gs_stmt *chain; /* device last_seq, chain_head */
	struct gs_stmt *max_seq;
	struct gs_stmt *pick;	 /* unsent changes in order */
	struct gs_stmt *pend_keys; /* pending creations in order */
	struct gs_stmt *pend_rec;  /* ... their records (pend_next) */
	struct gs_stmt *seal_pend; /* pending creations -> sealed_creation */
	struct gs_stmt *del_pend;  /* ... and out of pending_creation */
	struct gs_stmt *sealed_make; /* a batch's sealed creations written
					out as change rows */
	struct gs_stmt *sealed_del;  /* ... and out of sealed_creation */
	struct gs_stmt *skip;	 /* mark one change unsendable */
	struct gs_stmt *ins;	 /* insert an outbox row */
	struct gs_stmt *mark;	 /* changes -> batched */
	struct gs_stmt *advance; /* device chain head */
	struct gs_stmt *next;	 /* next sealed row */
	struct gs_stmt *env_of;	 /* ... its stored envelope */
	struct gs_stmt *set_acked;
	struct gs_stmt *ins_env;
	struct gs_stmt *res_change; /* one change named by the results */
	struct gs_stmt *res_rev;    /* record rev from a merged result */
	struct gs_stmt *ff_rev;	    /* record rev for fast-forwards */
	struct gs_stmt *ff_state;   /* fast-forwarded changes delivered */
	struct gs_stmt *quar_all;   /* all changes of a batch -> 4 */
	struct gs_stmt *set_rejected;
	struct gs_stmt *rej_changes;
	struct gs_stmt *attempt;
	struct gs_stmt *audit;
	struct gs_stmt *last_ack;
	/* Opens sealed pii in change fields (issue 6; NULL: none set). */
	ag_outbox_open_fn opener;
	ag_outbox_open_text_fn open_text;
	void *opener_ctx;
	/* The opened personal data of the change being sealed (fast_line),
	 * wiped after each. */
	struct gs_buf pii;
	/* A seal's plaintext: HEADER_ROOM bytes for the header, then the
	 * lines.  Kept from one seal to the next and wiped after each: grown
	 * once, not doubled from 64 bytes by a dozen copies per batch. */
	struct gs_buf body;
	int slow_only; /* ag_outbox_fast_lines(ob, 0) */
	/* The envelope of the last seal committed by this handle, kept
	 * for ag_outbox_next_sealed (NULL: none): it is what was stored,
	 * and hashed, a moment ago, so the row that names it (seq, batch id
	 * and hash alike) needs no second read and hash of its bytes. */
	struct {
		int64_t seq;
		unsigned char batch_id[16];
		unsigned char hash[GS_HASHBYTES];
		char *env;
		size_t len;
	} last;
};

void
ag_outbox_set_opener(struct ag_outbox *ob, ag_outbox_open_fn fn,
    ag_outbox_open_text_fn text_fn, void *ctx)
{
	ob->opener = fn;
	ob->open_text = text_fn;
	ob->opener_ctx = ctx;
}

void
ag_outbox_fast_lines(struct ag_outbox *ob, int on)
{
	ob->slow_only = !on;
}

void
ag_outbox_limits_for(const struct ag_device *dev, struct ag_outbox_limits *lim)
{
	lim->max_records = OUTBOX_RECORDS;
	lim->max_plain = OUTBOX_PLAIN;
	lim->max_envelope = GS_ENV_MAX_ENVELOPE;
	lim->suite = GS_ENV_SUITE;
	if (dev != NULL) {
		if (dev->max_records > 0 &&
		    (uint64_t)dev->max_records < lim->max_records)
			lim->max_records = (uint32_t)dev->max_records;
		if (dev->max_plain > 0 &&
		    (uint64_t)dev->max_plain < lim->max_plain)
			lim->max_plain = (size_t)dev->max_plain;
		if (dev->max_envelope > 0 &&
		    (uint64_t)dev->max_envelope < lim->max_envelope)
			lim->max_envelope = (size_t)dev->max_envelope;
	}
	if (lim->max_records > GS_ENV_MAX_RECORDS)
		lim->max_records = GS_ENV_MAX_RECORDS;
}

int
ag_outbox_new(struct gs_db *db, struct ag_outbox **out)
{
	struct ag_outbox *ob = NULL;
	int r = GS_EINTERNAL;

	if ((ob = gs_calloc(1, sizeof(*ob))) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	ob->db = db;
	gs_buf_init_secret(&ob->pii, OUTBOX_PII);
	gs_buf_init_secret(&ob->body, OUTBOX_PLAIN);
#define PREP(field, sql)                                                       \
	do {                                                                   \
		r = gs_stmt_prepare(db, sql, &ob->field);                      \
		if (r != GS_OK)                                                \
			goto out;                                              \
	} while (0)
	PREP(chain, "SELECT last_seq, chain_head FROM device WHERE id = 1");
	PREP(max_seq, "SELECT coalesce(max(seq), 0) FROM outbox");
	/* A creation's change has no fields of its own: it sends the
	 * record's fields as they are now (schema/agent/0006), which an
	 * edit can only have changed by coalescing into this change. */
	PREP(pick, "SELECT c.change_id, c.uuid, c.type, c.form_version, "
		   "c.grid, c.op, c.base_rev, CASE WHEN c.op = 'upsert' "
		   "THEN coalesce(c.fields, r.fields) END, c.reason, "
		   "c.author, c.created_at, c.updated_at "
		   "FROM change AS c LEFT JOIN record AS r "
		   "ON c.fields IS NULL AND r.uuid = c.uuid "
		   "WHERE c.state = 0 ORDER BY c.change_id LIMIT ?1");
	/* A new record's creation waits in pending_creation until a batch
	 * takes it (schema/agent/0008): it is read as the change it
	 * becomes (AG_PEND_AS_CHANGE: every column but the id follows from
	 * the record), and its change row is written only when it is
	 * batched, already batched (one row write instead of a write, then
	 * an update moving it between four indexes).  Both tables are in
	 * uuid order, so the records are read by a second cursor walking
	 * record alongside pending_creation (pend_next), not sought from
	 * the root for each creation as AG_PEND_FROM's join does: 2.5k of
	 * the 4.8k instructions of reading a sealed record. */
	PREP(pend_keys, "SELECT uuid, change_id FROM pending_creation "
			"ORDER BY uuid LIMIT ?1");
	PREP(pend_rec, "SELECT uuid, type, form_version, grid, fields, "
		       "author, created_at FROM record WHERE uuid >= ?1 "
		       "ORDER BY uuid");
	/* A batched creation is one narrow row of sealed_creation (schema/
	 * agent/0011) whose state is its batch's: batched until the receipt,
	 * delivered once it is acked, with no change row at all (a change
	 * row in state 1 cost three b-trees here, and moving it to state 2
	 * two more at the receipt). */
	PREP(seal_pend, "INSERT INTO sealed_creation(uuid, change_id, "
			"batch_seq) SELECT uuid, change_id, ?1 FROM "
			"pending_creation WHERE uuid <= ?2");
	PREP(del_pend, "DELETE FROM pending_creation WHERE uuid <= ?2 AND "
		       "?1 = ?1");
	/* The sealed creations of batch ?1: the range of sealed_creation's
	 * key the outbox row names, and only the rows of this batch (a
	 * record saved under a clock set back can lie inside an older
	 * batch's range). */
#define SEALED_OF(t)                                                           \
	t "uuid BETWEEN (SELECT first_creation FROM outbox WHERE seq = ?1) "   \
	  "AND (SELECT last_creation FROM outbox WHERE seq = ?1) AND " t       \
	  "batch_seq = ?1"
	/* As batched: state 1, updated_at the seal's time. */
	PREP(sealed_make, "INSERT INTO change(" AG_CHANGE_COLS ") SELECT "
			  AG_SEALED_AS_CHANGE ", 1, s.batch_seq, NULL, "
			  "r.created_at, " AG_SEALED_AT " " AG_SEALED_FROM
			  " WHERE " SEALED_OF("s."));
	PREP(sealed_del, "DELETE FROM sealed_creation WHERE " SEALED_OF(""));
#undef SEALED_OF
	PREP(skip, "UPDATE change SET state = 3, problem = ?2, "
		   "updated_at = ?3 WHERE change_id = ?1 AND state = 0");
	PREP(ins,
	    "INSERT INTO outbox (seq, batch_id, hash, "
	    "prev_hash, record_count, bytes, plain_bytes, state, created_at, "
	    "first_creation, last_creation) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'sealed', ?8, ?9, ?10)");
	/* The envelope has a table of its own (schema/agent/0010): an
	 * upload's and a receipt's updates of the outbox row do not write
	 * its bytes again. */
	PREP(ins_env, "INSERT INTO outbox_envelope (seq, envelope) "
		      "VALUES (?1, ?2)");
	/* The picked changes are exactly the unsent ones up to the last
	 * change_id put in the batch: the transaction is IMMEDIATE, so no
	 * other writer can have added one in between. */
	PREP(mark, "UPDATE change SET state = 1, batch_seq = ?1, "
		   "updated_at = ?3 WHERE state = 0 AND change_id <= ?2");
	PREP(advance, "UPDATE device SET last_seq = ?1, chain_head = ?2 "
		      "WHERE id = 1 AND last_seq = ?1 - 1");
	PREP(next, "SELECT seq, batch_id, hash, record_count, attempts "
		   "FROM outbox WHERE state = 'sealed' AND seq > ?1 "
		   "ORDER BY seq LIMIT 1");
	PREP(env_of, "SELECT envelope FROM outbox_envelope WHERE seq = ?1");
	PREP(set_acked, "UPDATE outbox SET state = ?2, receipt = ?3, "
			"results = ?4, acked_at = ?5, last_error = NULL "
			"WHERE seq = ?1 AND state = 'sealed'");
	PREP(res_change,
	    "UPDATE change SET state = ?3, problem = ?4, "
	    "updated_at = ?5 WHERE change_id = ?1 AND batch_seq = ?2 "
	    "AND state = 1");
	/* The revs a receipt brings go into the narrow record_rev, never
	 * into the wide record rows (schema/agent/0009: rewriting a
	 * ~700-byte row to raise one integer was most of an ack's cost and
	 * of its pages written).  max(): never lower what we already know;
	 * readers take the larger of this and record.rev (AG_SQL_REV).  A
	 * rev below 1 names no revision and is not recorded. */
	PREP(res_rev, "INSERT INTO record_rev(uuid, rev) SELECT uuid, ?2 "
		      "FROM change WHERE change_id = ?1 AND ?2 > 0 "
		      "ON CONFLICT(uuid) DO UPDATE SET "
		      "rev = max(rev, excluded.rev)");
	/* A change the results do not list was applied by fast-forward:
	 * the platform's rev is now base_rev + 1. */
	PREP(ff_rev, "INSERT INTO record_rev(uuid, rev) SELECT uuid, "
		     "base_rev + 1 FROM change WHERE batch_seq = ?1 AND "
		     "state = 1 ON CONFLICT(uuid) DO UPDATE SET "
		     "rev = max(rev, excluded.rev)");
	PREP(ff_state, "UPDATE change SET state = 2, problem = NULL, "
		       "updated_at = ?2 WHERE batch_seq = ?1 AND state = 1");
	PREP(quar_all, "UPDATE change SET state = 4, problem = ?2, "
		       "updated_at = ?3 WHERE batch_seq = ?1 AND state = 1");
	PREP(set_rejected,
	    "UPDATE outbox SET state = 'rejected', "
	    "reason = ?2, acked_at = ?3 WHERE seq = ?1 AND state = 'sealed'");
	PREP(rej_changes, "UPDATE change SET state = 3, problem = ?2, "
			  "updated_at = ?3 WHERE batch_seq = ?1 AND state = 1");
	PREP(attempt,
	    "UPDATE outbox SET attempts = attempts + 1, "
	    "last_attempt_at = ?2, last_error = coalesce(?3, last_error) "
	    "WHERE seq = ?1");
	PREP(audit, "INSERT INTO audit (at, action, uuid, type, detail) "
		    "VALUES (?1, ?2, NULL, NULL, ?3)");
	PREP(last_ack, "UPDATE device SET last_ack_at = ?1 WHERE id = 1");
#undef PREP
	*out = ob;
	ob = NULL;
	r = GS_OK;
out:
	ag_outbox_free(ob);
	return r;
}

void
ag_outbox_free(struct ag_outbox *ob)
{
	if (ob == NULL)
		return;
	/* The statements belong to the database; finalizing them early
	 * keeps a long-lived connection tidy. */
	gs_buf_release(&ob->pii);
	gs_buf_release(&ob->body);
	gs_free(ob->last.env);
	gs_stmt_finalize(ob->chain);
	gs_stmt_finalize(ob->max_seq);
	gs_stmt_finalize(ob->pick);
	gs_stmt_finalize(ob->pend_keys);
	gs_stmt_finalize(ob->pend_rec);
	gs_stmt_finalize(ob->seal_pend);
	gs_stmt_finalize(ob->del_pend);
	gs_stmt_finalize(ob->sealed_make);
	gs_stmt_finalize(ob->sealed_del);
	gs_stmt_finalize(ob->skip);
	gs_stmt_finalize(ob->ins);
	gs_stmt_finalize(ob->ins_env);
	gs_stmt_finalize(ob->mark);
	gs_stmt_finalize(ob->advance);
	gs_stmt_finalize(ob->next);
	gs_stmt_finalize(ob->env_of);
	gs_stmt_finalize(ob->set_acked);
	gs_stmt_finalize(ob->res_change);
	gs_stmt_finalize(ob->res_rev);
	gs_stmt_finalize(ob->ff_rev);
	gs_stmt_finalize(ob->ff_state);
	gs_stmt_finalize(ob->quar_all);
	gs_stmt_finalize(ob->set_rejected);
	gs_stmt_finalize(ob->rej_changes);
	gs_stmt_finalize(ob->attempt);
	gs_stmt_finalize(ob->audit);
	gs_stmt_finalize(ob->last_ack);
	gs_free(ob);
}

static int audit(struct ag_outbox *ob, int64_t now, const char *action,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
audit(
    struct ag_outbox *ob, int64_t now, const char *action, const char *fmt, ...)
{
	char detail[512];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	if ((r = gs_stmt_bind_int64(ob->audit, 1, now)) != GS_OK ||
	    (r = gs_stmt_bind_text(ob->audit, 2, action)) != GS_OK ||
	    (r = gs_stmt_bind_text(ob->audit, 3, detail)) != GS_OK)
		return r;
	r = gs_stmt_step(ob->audit);
	return r == GS_DONE ? GS_OK : r;
}

/* Runs a statement expected to produce no rows. */
static int
step_done(struct gs_stmt *st)
{
	int r = gs_stmt_step(st);

	return r == GS_DONE ? GS_OK : r == GS_ROW ? GS_EINTERNAL : r;
}

/*
 * One change as pick_from reads it: a row of ob->pick (change_row), or a
 * pending creation and its record (pend_next).  The texts point into the
 * statements' rows, valid until either steps again; NULL for SQL NULL.
 */
struct pick_row {
	const char *change_id, *uuid, *type, *grid, *op, *fields, *reason,
	    *author;
	size_t fields_len;
	int64_t form_version, base_rev, created_at, updated_at;
};

/* The current row of ob->pick (its columns in the order of its SELECT). */
static void
change_row(struct gs_stmt *st, struct pick_row *row)
{
	row->change_id = gs_stmt_text(st, 0);
	row->uuid = gs_stmt_text(st, 1);
	row->type = gs_stmt_text(st, 2);
	row->form_version = gs_stmt_int64(st, 3);
	row->grid = gs_stmt_text(st, 4);
	row->op = gs_stmt_text(st, 5);
	row->base_rev = gs_stmt_int64(st, 6);
	row->fields = gs_stmt_text(st, 7);
	row->fields_len = row->fields != NULL ? gs_stmt_bytes(st, 7) : 0;
	row->reason = gs_stmt_text(st, 8);
	row->author = gs_stmt_text(st, 9);
	row->created_at = gs_stmt_int64(st, 10);
	row->updated_at = gs_stmt_int64(st, 11);
}

/*
 * pend_next's walk through record: pend_rec has a current row (on), and
 * has been started at all (started).
 */
struct pend_walk {
	int started, on;
};

/* The most records pend_next steps over to reach the next pending
 * creation before it seeks instead: a step is about a tenth of a seek, and
 * the records between two pending creations are few (uuids are UUIDv7,
 * a new record's at the end) unless the store holds records pulled or
 * saved under another clock among them. */
#define PEND_SKIPS 8

/* memcmp order, shorter first on a tie: SQLite's BINARY collation, the
 * order of both tables' primary keys. */
static int
key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* Puts pend_rec on the first record at or after uuid[0..n). */
static int
pend_seek(struct ag_outbox *ob, struct pend_walk *w, const char *uuid,
    size_t n)
{
	int r;

	gs_stmt_reset(ob->pend_rec);
	w->started = 1;
	w->on = 0;
	if ((r = gs_stmt_bind_textn(ob->pend_rec, 1, uuid, n)) != GS_OK)
		return r;
	r = gs_stmt_step(ob->pend_rec);
	w->on = r == GS_ROW;
	return r == GS_ROW || r == GS_DONE ? GS_OK : r;
}

/*
 * The next pending creation that has its record, as a row: GS_ROW, GS_DONE
 * or an error.  What AG_PEND_FROM's join yields, in the same order: a
 * pending creation without a record row is passed over as the join
 * passes it (marking then finds the count off, as before).  pend_rec
 * walks forward from the record of the creation before (a merge join),
 * and seeks only when the next one is more than PEND_SKIPS records on.
 */
static int
pend_next(struct ag_outbox *ob, struct pend_walk *w, struct pick_row *row)
{
	struct gs_stmt *k = ob->pend_keys, *rec = ob->pend_rec;
	const char *u, *ru;
	size_t n;
	int r, skips;

	for (;;) {
		if ((r = gs_stmt_step(k)) != GS_ROW)
			return r;
		if ((u = gs_stmt_text(k, 0)) == NULL)
			continue; /* (a primary key: never NULL) */
		n = gs_stmt_bytes(k, 0);
		if (!w->started && (r = pend_seek(ob, w, u, n)) != GS_OK)
			return r;
		for (skips = 0; w->on; skips++) {
			ru = gs_stmt_text(rec, 0);
			if (ru != NULL &&
			    key_cmp(ru, gs_stmt_bytes(rec, 0), u, n) >= 0)
				break;
			if (skips == PEND_SKIPS) {
				if ((r = pend_seek(ob, w, u, n)) != GS_OK)
					return r;
				break;
			}
			r = gs_stmt_step(rec);
			if (r != GS_ROW && r != GS_DONE)
				return r;
			w->on = r == GS_ROW;
		}
		if (!w->on || (ru = gs_stmt_text(rec, 0)) == NULL ||
		    key_cmp(ru, gs_stmt_bytes(rec, 0), u, n) != 0)
			continue; /* no record: the join has no row for it */
		row->change_id = gs_stmt_text(k, 1);
		row->uuid = ru;
		row->type = gs_stmt_text(rec, 1);
		row->form_version = gs_stmt_int64(rec, 2);
		row->grid = gs_stmt_text(rec, 3);
		row->op = "upsert";
		row->base_rev = 0;
		row->fields = gs_stmt_text(rec, 4);
		row->fields_len = row->fields != NULL ? gs_stmt_bytes(rec, 4) :
		    0;
		row->reason = NULL;
		row->author = gs_stmt_text(rec, 5);
		row->created_at = gs_stmt_int64(rec, 6);
		row->updated_at = row->created_at;
		return GS_ROW;
	}
}

/* A row as a gs_change, all but its fields (caller releases c). */
static int
row_head(const struct pick_row *row, struct gs_change *c)
{
	gs_change_init(c);
	gs_strlcpy(c->change_id, row->change_id ?: "", sizeof(c->change_id));
	gs_strlcpy(c->uuid, row->uuid ?: "", sizeof(c->uuid));
	gs_strlcpy(c->type, row->type ?: "", sizeof(c->type));
	c->form_version = (int)row->form_version;
	gs_strlcpy(c->grid, row->grid ?: "", sizeof(c->grid));
	c->base_rev = row->base_rev;
	c->deleted = row->op != NULL && strcmp(row->op, "delete") == 0;
	gs_strlcpy(c->author, row->author ?: "", sizeof(c->author));
	/* A change an older agent stored under a clock before 1970 has
	 * negative times, which the encoder refuses: sent with them raised
	 * to 0 rather than marked rejected (nothing a worker saves is lost).
	 * Such a change was never sent, so nothing delivered changes. */
	c->created_at = row->created_at;
	c->updated_at = row->updated_at;
	if (c->created_at < 0)
		c->created_at = 0;
	if (c->updated_at < 0)
		c->updated_at = 0;
	if (row->reason != NULL &&
	    (c->reason = gs_strdup(row->reason)) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	return GS_OK;
}

/* A row's fields, parsed into c->fields (not a deletion). */
static int
row_fields(const struct pick_row *row, struct gs_change *c)
{
	const char *fields = row->fields;
	char why[128];
	int r;

	/* sync/json.c: what json_loads(JSON_REJECT_DUPLICATES) accepts, at a
	 * fraction of its cost. */
	r = gs_json_parse(fields ? fields : "", row->fields_len, &c->fields,
	    why, sizeof(why));
	if (r == GS_ENOMEM)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	if (r != GS_OK || !json_is_object(c->fields))
		return GS_FAIL(GS_EINVAL,
		    "change %s: stored fields "
		    "are not a JSON object",
		    c->change_id);
	return GS_OK;
}

/* fast_line's "not this way": the change goes the slow way. */
#define FAST_NO 1

/*
 * The fast way to a change's line (not a deletion): the stored fields
 * text copied as it is, with its sealed personal data opened and merged
 * in, when both are spelled as the encoder writes them (json.h,
 * gs_json_plain_object) and share no key; which is what the store writes.
 * It saves parsing both into jansson values and encoding them again, the
 * largest part of sealing.  GS_OK with the line appended, or FAST_NO for
 * anything else, errors included (body as before): the slow way, which is
 * exact, finds the error again and says what it is.
 */
static int
fast_line(struct ag_outbox *ob, const struct pick_row *row,
    const struct gs_change *c, struct gs_buf *body)
{
	struct gs_json_span fm[FAST_MEMBERS], pm[FAST_MEMBERS];
	struct gs_json_span all[2 * FAST_MEMBERS];
	const char *text = row->fields;
	const struct gs_json_span *sealed = NULL;
	size_t nf, np = 0, n = 0, i = 0, j = 0;
	int r = FAST_NO;

	if (text == NULL || !gs_json_plain_object(text, row->fields_len,
	    fm, FAST_MEMBERS, &nf))
		return FAST_NO;
	for (i = 0; i < nf; i++)
		if (fm[i].klen == sizeof(AG_PII_MEMBER) - 1 &&
		    memcmp(fm[i].key, AG_PII_MEMBER, fm[i].klen) == 0)
			sealed = &fm[i];
	if (sealed != NULL) {
		/* A plain string: its quotes around base64. */
		if (ob->open_text == NULL || sealed->vlen < 2 ||
		    sealed->val[0] != '"' ||
		    ob->open_text(ob->opener_ctx, c->uuid, c->form_version,
		    sealed->val + 1, sealed->vlen - 2, &ob->pii) != GS_OK ||
		    !gs_json_plain_object(ob->pii.data, ob->pii.len, pm,
		    FAST_MEMBERS, &np))
			goto out;
	}
	/* Both in key order: merge, leaving the sealed member out. */
	for (i = 0, j = 0; i < nf || j < np;) {
		int cmp;

		if (i < nf && &fm[i] == sealed) {
			i++;
			continue;
		}
		if (i == nf)
			cmp = 1;
		else if (j == np)
			cmp = -1;
		else if (fm[i].k8 != pm[j].k8) /* json.h: the first 8 bytes */
			cmp = fm[i].k8 < pm[j].k8 ? -1 : 1;
		else
			cmp = gs_json_span_cmp(&fm[i], &pm[j]);
		if (cmp == 0) /* the slow way's update would pick one */
			goto out;
		all[n++] = cmp < 0 ? fm[i++] : pm[j++];
	}
	if (gs_batch_encode_change_spans(body, c, all, n) == GS_OK)
		r = GS_OK;
	else
		gs_errmsg_clear();
out:
	gs_buf_reset(&ob->pii);
	return r;
}

/* Offsets of line ends in the body, so a batch can be cut shorter, and
 * each line's key: the first nchg lines are unsent changes (key: the
 * change_id), the rest pending creations (key: the record's uuid). */
struct cuts {
	size_t *end;
	char (*id)[37];
	size_t n, cap, nchg;
};

static int
cuts_push(struct cuts *k, size_t end, const char *id)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 256;
		size_t *e = gs_realloc(k->end, cap * sizeof(*e));

		if (e == NULL)
			return GS_FAIL(GS_ENOMEM, "out of memory");
		k->end = e;
		char(*ids)[37] = gs_realloc(k->id, cap * sizeof(*ids));
		if (ids == NULL)
			return GS_FAIL(GS_ENOMEM, "out of memory");
		k->id = ids;
		k->cap = cap;
	}
	k->end[k->n] = end;
	gs_strlcpy(k->id[k->n], id, sizeof(k->id[k->n]));
	k->n++;
	return GS_OK;
}

/*
 * Appends the canonical lines of the unsent changes (pend 0: ob->pick) or
 * of the pending creations (pend 1: pend_next) to body, up to lim.  GS_OK when it ran out or the batch is full (*full);
 * PICK_BAD with *bad set and why[300] saying why when a change cannot be
 * encoded or its line alone is over the budget: the caller marks it and
 * starts again.
 */
/* pick_from's answer for a change to mark unsendable (not an error code:
 * those are positive). */
#define PICK_BAD (-1)

static int
pick_from(struct ag_outbox *ob, int pend, const struct ag_outbox_limits *lim,
    struct gs_buf *body, struct cuts *k, int *full, struct gs_change *bad,
    char *why, struct gs_json_arena *arena)
{
	struct gs_stmt *stmt = pend ? ob->pend_keys : ob->pick;
	struct pend_walk walk = {0, 0};
	struct pick_row row;
	struct gs_change c;
	int r = GS_EINTERNAL, step;

	gs_change_init(&c);
	*full = 0;
	if ((r = gs_stmt_bind_int64(stmt, 1,
		 (int64_t)(lim->max_records - k->n) + 64)) != GS_OK)
		return r;
	for (;;) {
		size_t before = body->len;

		if (pend)
			step = pend_next(ob, &walk, &row);
		else if ((step = gs_stmt_step(stmt)) == GS_ROW)
			change_row(stmt, &row);
		if (step != GS_ROW)
			break;
		/* Every jansson value of the previous change is freed: its
		 * memory is new again. */
		gs_change_release(&c);
		gs_json_arena_reset(arena);
		r = row_head(&row, &c);
		if (r == GS_OK && !c.deleted && !ob->slow_only &&
		    fast_line(ob, &row, &c, body) == GS_OK)
			goto encoded;
		if (r == GS_OK && !c.deleted)
			r = row_fields(&row, &c);
		/* The platform gets the personal data in the clear inside the
		 * sealed envelope, so sealing opens it; a locked store stops
		 * here (GS_EPERM), with nothing marked. */
		if (r == GS_OK && c.fields != NULL &&
		    json_object_get(c.fields, "$pii") != NULL)
			r = ob->opener != NULL ? ob->opener(ob->opener_ctx,
			    c.uuid, c.form_version, c.fields) :
			    GS_FAIL(GS_EPERM, "locked: run gridagent unlock");
		if (r == GS_OK)
			r = gs_batch_encode_change(body, &c);
		if (r == GS_ETOOBIG && k->n > 0) {
			/* The batch is full; this change goes in the next. */
			*full = 1;
			r = GS_OK;
			break;
		}
		if (r == GS_EINVAL || r == GS_ETOOBIG) {
			snprintf(why, 300, "cannot be sent: %s", gs_errmsg(r));
			body->len = before;
			*bad = c;
			gs_change_init(&c);
			r = PICK_BAD;
			goto out;
		}
		if (r != GS_OK)
			goto out;
encoded:
		if ((r = cuts_push(k, body->len, pend ? c.uuid : c.change_id)) !=
		    GS_OK)
			goto out;
		if (k->n >= lim->max_records) {
			*full = 1;
			break;
		}
	}
	if (step != GS_ROW && step != GS_DONE) {
		r = step;
		goto out;
	}
	r = GS_OK;
out:
	gs_stmt_reset(stmt);
	if (pend)
		gs_stmt_reset(ob->pend_rec);
	gs_change_release(&c);
	return r;
}

/*
 * Fills body with canonical change lines of the oldest unsent changes,
 * then of pending creations, up to lim.  A change that cannot be encoded,
 * or whose line alone is over the budget, is marked rejected (it could
 * never be sent, and must not block every change behind it); when it is a
 * pending creation, every pending creation is first written out as an
 * unsent change (ag_store_pending_flush), so that it has a row to mark.
 *
 * The changes are parsed, opened and encoded one at a time, their
 * jansson values in an arena (sync/json.h) made new for each: malloc and
 * free of their pieces were a tenth of sealing.
 */
static int
pick_all(struct ag_outbox *ob, const struct ag_outbox_limits *lim,
    struct gs_buf *body, struct cuts *k, uint32_t *skipped, int64_t now,
    struct gs_json_arena *arena)
{
	struct gs_change bad;
	char why[300];
	int r, full, pend;

	/* The lines start after the header's room (ag_outbox_seal). */
	if ((r = gs_buf_reserve(body, HEADER_ROOM)) != GS_OK)
		return r;
	for (;;) {
		k->n = k->nchg = 0;
		body->len = HEADER_ROOM;
		gs_change_init(&bad);
		pend = 0;
		r = pick_from(ob, 0, lim, body, k, &full, &bad, why, arena);
		k->nchg = k->n;
		if (r == GS_OK && !full) {
			pend = 1;
			r = pick_from(ob, 1, lim, body, k, &full, &bad, why,
			    arena);
		}
		if (r != PICK_BAD)
			return r;
		gs_log(GS_LOG_WARNING, "%s", why);
		/* Mark it, then pick again from the start: a cursor must not
		 * see its own table change under it. */
		if ((pend && (r = ag_store_pending_flush(ob->db)) != GS_OK) ||
		    (r = gs_stmt_bind_text(ob->skip, 1, bad.change_id)) !=
			GS_OK ||
		    (r = gs_stmt_bind_text(ob->skip, 2, why)) != GS_OK ||
		    (r = gs_stmt_bind_int64(ob->skip, 3, now)) != GS_OK ||
		    (r = step_done(ob->skip)) != GS_OK) {
			gs_change_release(&bad);
			return r;
		}
		gs_change_release(&bad);
		(*skipped)++;
	}
}

static int
pick_changes(struct ag_outbox *ob, const struct ag_outbox_limits *lim,
    struct gs_buf *body, struct cuts *k, uint32_t *skipped, int64_t now)
{
	struct gs_json_arena *arena = NULL;
	int r;

	(void)gs_json_arena_begin(&arena); /* without one: plain malloc */
	r = pick_all(ob, lim, body, k, skipped, now, arena);
	gs_json_arena_end(arena);
	return r;
}

/*
 * Runs one of the marking statements of batch seq (mark: seq, last key,
 * now; seal_pend, del_pend: seq and last key) and checks it touched
 * exactly want rows.
 */
static int
mark(struct ag_outbox *ob, struct gs_stmt *stmt, uint64_t seq,
    const char *last, int64_t now, size_t want)
{
	int r;

	if ((r = gs_stmt_bind_int64(stmt, 1, (int64_t)seq)) == GS_OK &&
	    (r = gs_stmt_bind_text(stmt, 2, last)) == GS_OK && stmt == ob->mark)
		r = gs_stmt_bind_int64(stmt, 3, now);
	if (r != GS_OK || (r = step_done(stmt)) != GS_OK)
		return r;
	if (gs_db_changes(ob->db) != (int64_t)want)
		return GS_FAIL(GS_EINTERNAL,
		    "batch %llu: sealed %zu changes but marked %lld",
		    (unsigned long long)seq, want,
		    (long long)gs_db_changes(ob->db));
	return GS_OK;
}

int
ag_outbox_seal(struct ag_outbox *ob, struct ag_device *dev,
    const struct ag_outbox_limits *lim, struct ag_outbox_sealed *info)
{
	struct gs_buf *body = &ob->body, hdr, env;
	struct cuts k = {NULL, NULL, 0, 0, 0};
	struct gs_batch_header bh;
	struct gs_seal_params sp;
	unsigned char hash[GS_HASHBYTES];
	int64_t last_seq = 0, max_seq = 0, now = gs_now_ms();
	size_t n, nchg, budget, plain_len = 0;
	const char *plain = NULL;
	char *front;
	int in_tx = 0, r = GS_EINTERNAL;

	memset(info, 0, sizeof(*info));
	memset(&sp, 0, sizeof(sp));
	budget = lim->max_plain > HEADER_ROOM ? lim->max_plain - HEADER_ROOM
					      : lim->max_plain;
	/* body holds personal data in the clear (a secret buffer, wiped at
	 * the end of every seal): the header's room, then lines up to the
	 * budget. */
	gs_buf_reset(body);
	body->max = HEADER_ROOM + budget;
	gs_buf_init(&hdr, HEADER_ROOM);
	gs_buf_init(&env, lim->max_envelope);

	if ((r = gs_db_begin(ob->db)) != GS_OK)
		goto out;
	in_tx = 1;
	/* The chain as committed, not as this process last saw it. */
	if ((r = gs_stmt_step(ob->chain)) != GS_ROW) {
		r = r == GS_DONE ? GS_FAIL(GS_ENOTENROLLED, "this device is "
							    "not enrolled")
				 : r;
		goto out;
	}
	last_seq = gs_stmt_int64(ob->chain, 0);
	if (gs_stmt_bytes(ob->chain, 1) != GS_HASHBYTES) {
		gs_stmt_reset(ob->chain);
		r = GS_FAIL(GS_ECORRUPT, "device chain head is damaged");
		goto out;
	}
	memcpy(sp.prev_hash, gs_stmt_blob(ob->chain, 1), GS_HASHBYTES);
	gs_stmt_reset(ob->chain);
	if ((r = gs_stmt_one_int64(ob->max_seq, 0, &max_seq)) != GS_OK)
		goto out;
	if (max_seq > last_seq) {
		r = GS_FAIL(GS_ECORRUPT,
		    "outbox holds seq %lld but the chain "
		    "head is at %lld",
		    (long long)max_seq, (long long)last_seq);
		goto out;
	}

	if ((r = pick_changes(ob, lim, body, &k, &info->skipped, now)) !=
	    GS_OK)
		goto out;
	if (k.n == 0) {
		/* Nothing to send (maybe some changes were marked
		 * unsendable: keep that). */
		if ((r = gs_db_commit(ob->db)) != GS_OK)
			goto out;
		in_tx = 0;
		r = GS_OK;
		goto out;
	}

	memset(&bh, 0, sizeof(bh));
	bh.v = GS_BATCH_VERSION;
	memcpy(bh.deployment, dev->deployment, 16);
	memcpy(bh.device, dev->device_id, 16);
	gs_random(bh.batch, sizeof(bh.batch));
	bh.seq = (uint64_t)last_seq + 1;

	memcpy(sp.deployment, dev->deployment, 16);
	memcpy(sp.device, dev->device_id, 16);
	memcpy(sp.batch, bh.batch, 16);
	sp.seq = bh.seq;
	sp.created_at = now;
	sp.platform_pk = dev->batch_pk;
	sp.device_sk = dev->sign_sk;
	sp.suite = lim->suite;

	/* Seal; when the envelope comes out over its cap (poorly
	 * compressible fields), halve the batch and seal again. */
	n = k.n;
	for (;;) {
		bh.count = (uint32_t)n;
		sp.count = (uint32_t)n;
		/* The header right before the first n lines: the plaintext
		 * is sealed where it lies. */
		gs_buf_reset(&hdr);
		if ((r = gs_batch_encode_header(&hdr, &bh)) != GS_OK)
			goto out;
		plain_len = hdr.len + (k.end[n - 1] - HEADER_ROOM);
		if (plain_len > lim->max_plain) {
			r = GS_FAIL(GS_ETOOBIG, "batch plaintext of %zu bytes "
			    "exceeds %zu", plain_len, lim->max_plain);
			goto out;
		}
		front = body->data + HEADER_ROOM - hdr.len;
		memcpy(front, hdr.data, hdr.len);
		plain = front;
		gs_buf_reset(&env);
		r = gs_envelope_seal(&env, &sp, plain, plain_len);
		if (r == GS_ETOOBIG && n > 1) {
			n /= 2;
			continue;
		}
		if (r != GS_OK)
			goto out;
		break;
	}
	gs_envelope_hash(hash, env.data, env.len);

	/* The envelope must hold exactly the changes marked: its first
	 * lines the unsent changes, the rest pending creations, whose uuids
	 * the outbox row keeps as their range (first, last). */
	nchg = n < k.nchg ? n : k.nchg;
	if ((r = gs_stmt_bind_int64(ob->ins_env, 1, (int64_t)bh.seq)) !=
		GS_OK ||
	    (r = gs_stmt_bind_blob(ob->ins_env, 2, env.data, env.len)) !=
		GS_OK ||
	    (r = step_done(ob->ins_env)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_int64(ob->ins, 1, (int64_t)bh.seq)) != GS_OK ||
	    (r = gs_stmt_bind_blob(ob->ins, 2, bh.batch, 16)) != GS_OK ||
	    (r = gs_stmt_bind_blob(ob->ins, 3, hash, GS_HASHBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(ob->ins, 4, sp.prev_hash, GS_HASHBYTES)) !=
		GS_OK ||
	    (r = gs_stmt_bind_int64(ob->ins, 5, (int64_t)n)) != GS_OK ||
	    (r = gs_stmt_bind_int64(ob->ins, 6, (int64_t)env.len)) != GS_OK ||
	    (r = gs_stmt_bind_int64(ob->ins, 7, (int64_t)plain_len)) != GS_OK ||
	    (r = gs_stmt_bind_int64(ob->ins, 8, now)) != GS_OK ||
	    (r = gs_stmt_bind_text(ob->ins, 9, n > nchg ? k.id[nchg] : NULL)) !=
		GS_OK ||
	    (r = gs_stmt_bind_text(ob->ins, 10, n > nchg ? k.id[n - 1] :
		 NULL)) != GS_OK ||
	    (r = step_done(ob->ins)) != GS_OK)
		goto out;
	if (nchg > 0 &&
	    (r = mark(ob, ob->mark, bh.seq, k.id[nchg - 1], now, nchg)) !=
		GS_OK)
		goto out;
	if (n > nchg &&
	    ((r = mark(ob, ob->seal_pend, bh.seq, k.id[n - 1], now,
		  n - nchg)) != GS_OK ||
		(r = mark(ob, ob->del_pend, bh.seq, k.id[n - 1], now,
		    n - nchg)) !=
		    GS_OK))
		goto out;
	if ((r = gs_stmt_bind_int64(ob->advance, 1, (int64_t)bh.seq)) !=
		GS_OK ||
	    (r = gs_stmt_bind_blob(ob->advance, 2, hash, GS_HASHBYTES)) !=
		GS_OK ||
	    (r = step_done(ob->advance)) != GS_OK)
		goto out;
	if (gs_db_changes(ob->db) != 1) {
		r = GS_FAIL(GS_EINTERNAL, "chain head moved while sealing");
		goto out;
	}
	if ((r = audit(ob, now, "batch", "seq %llu: %zu changes, %zu bytes",
		 (unsigned long long)bh.seq, n, env.len)) != GS_OK)
		goto out;
	if ((r = gs_db_commit(ob->db)) != GS_OK)
		goto out;
	in_tx = 0;
	dev->last_seq = (int64_t)bh.seq;
	memcpy(dev->chain_head, hash, GS_HASHBYTES);
	/* Kept for ag_outbox_next_sealed, which hands it on as the row's
	 * envelope.  Committed here, but maybe inside a caller's group
	 * (gs_db_group_begin) that can still roll it back: the row it
	 * names is then gone, or another seal's (another batch id), and
	 * it is never used. */
	gs_free(ob->last.env);
	ob->last.seq = (int64_t)bh.seq;
	memcpy(ob->last.batch_id, bh.batch, 16);
	memcpy(ob->last.hash, hash, GS_HASHBYTES);
	ob->last.env = gs_buf_detach(&env, &ob->last.len);
	info->seq = (int64_t)bh.seq;
	info->count = (uint32_t)n;
	info->plain_bytes = plain_len;
	info->bytes = env.len;
	r = GS_OK;
out:
	if (in_tx)
		gs_db_rollback(ob->db);
	/* Wiped, the block kept for the next seal. */
	gs_buf_reset(body);
	gs_buf_release(&hdr);
	gs_buf_release(&env);
	gs_free(k.end);
	gs_free(k.id);
	return r;
}

void
ag_outbox_row_release(struct ag_outbox_row *row)
{
	if (row == NULL)
		return;
	gs_free(row->envelope);
	row->envelope = NULL;
	row->len = 0;
}

int
ag_outbox_next_sealed(struct ag_outbox *ob, int64_t after_seq,
    struct ag_outbox_row *row, int *found)
{
	int r = GS_EINTERNAL;
	size_t n;

	*found = 0;
	memset(row, 0, sizeof(*row));
	if ((r = gs_stmt_bind_int64(ob->next, 1, after_seq)) != GS_OK)
		return r;
	r = gs_stmt_step(ob->next);
	if (r == GS_DONE)
		return GS_OK;
	if (r != GS_ROW)
		return r;
	row->seq = gs_stmt_int64(ob->next, 0);
	if (gs_stmt_bytes(ob->next, 1) != 16 ||
	    gs_stmt_bytes(ob->next, 2) != GS_HASHBYTES) {
		r = GS_FAIL(GS_ECORRUPT, "outbox seq %lld is damaged",
		    (long long)row->seq);
		goto out;
	}
	memcpy(row->batch_id, gs_stmt_blob(ob->next, 1), 16);
	memcpy(row->hash, gs_stmt_blob(ob->next, 2), GS_HASHBYTES);
	row->record_count = (uint32_t)gs_stmt_int64(ob->next, 3);
	row->attempts = gs_stmt_int64(ob->next, 4);
	gs_stmt_reset(ob->next);
	/* The envelope this handle sealed last, when the row is the one it
	 * was stored as: the bytes hashed into the row's hash, not read
	 * back (a sealing sync queues each batch right after its seal). */
	if (ob->last.env != NULL && ob->last.seq == row->seq &&
	    memcmp(ob->last.batch_id, row->batch_id, 16) == 0 &&
	    memcmp(ob->last.hash, row->hash, GS_HASHBYTES) == 0) {
		row->envelope = (unsigned char *)ob->last.env;
		row->len = ob->last.len;
		ob->last.env = NULL;
		*found = 1;
		return GS_OK;
	}
	if ((r = gs_stmt_bind_int64(ob->env_of, 1, row->seq)) != GS_OK)
		goto out;
	if ((r = gs_stmt_step(ob->env_of)) != GS_ROW ||
	    gs_stmt_is_null(ob->env_of, 0)) {
		r = r != GS_ROW && r != GS_DONE ? r :
		    GS_FAIL(GS_ECORRUPT, "outbox seq %lld: its envelope is "
		    "missing", (long long)row->seq);
		goto out;
	}
	n = gs_stmt_bytes(ob->env_of, 0);
	if ((row->envelope = gs_malloc(n ? n : 1)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	if (n > 0)
		memcpy(row->envelope, gs_stmt_blob(ob->env_of, 0), n);
	row->len = n;
	/* The stored bytes must still be what was sealed: a damaged row
	 * would only ever be refused by the platform. */
	{
		unsigned char h[GS_HASHBYTES];

		gs_envelope_hash(h, row->envelope, row->len);
		if (gs_crypto_memcmp(h, row->hash, GS_HASHBYTES) != 0) {
			r = GS_FAIL(GS_ECORRUPT,
			    "outbox seq %lld: envelope "
			    "does not match its hash",
			    (long long)row->seq);
			goto out;
		}
	}
	*found = 1;
	r = GS_OK;
out:
	gs_stmt_reset(ob->next);
	gs_stmt_reset(ob->env_of);
	if (r != GS_OK)
		ag_outbox_row_release(row);
	return r;
}

/*
 * The sealed creations of batch seq (schema/agent/0011), inside the
 * caller's transaction, when a receipt does not simply accept them by
 * fast-forward (then their rows stay, delivered with their batch, their
 * records at rev 1 by that alone: AG_SQL_REV, schema/agent/0012): their
 * change rows are written as the seal used to write them, batched (state
 * 1, updated at the seal), and they leave sealed_creation, for the
 * statements that move a batch's change rows on (results, quarantine,
 * rejection): those then see every change of the batch as a change row,
 * as before 0011.
 */
static int
sealed_out(struct ag_outbox *ob, int64_t seq)
{
	int64_t made;
	int r;

	if ((r = gs_stmt_bind_int64(ob->sealed_make, 1, seq)) != GS_OK ||
	    (r = step_done(ob->sealed_make)) != GS_OK)
		return r;
	made = gs_db_changes(ob->db);
	if ((r = gs_stmt_bind_int64(ob->sealed_del, 1, seq)) != GS_OK ||
	    (r = step_done(ob->sealed_del)) != GS_OK)
		return r;
	if (gs_db_changes(ob->db) != made)
		return GS_FAIL(GS_EINTERNAL, "batch %lld: wrote %lld sealed "
		    "creations but dropped %lld", (long long)seq,
		    (long long)made, (long long)gs_db_changes(ob->db));
	return GS_OK;
}

/* Marks what the signed results list.  The results came with a verified
 * receipt, but are still checked for shape: a change the batch does not
 * hold is ignored, never guessed at. */
static int
apply_results(struct ag_outbox *ob, int64_t seq, json_t *arr, int64_t now)
{
	size_t i;
	json_t *e;
	int r = GS_OK;

	json_array_foreach(arr, i, e)
	{
		const char *id, *st;
		json_t *rev, *reasons;
		char *problem = NULL;
		int state;

		id = json_string_value(json_object_get(e, "change_id"));
		st = json_string_value(json_object_get(e, "status"));
		rev = json_object_get(e, "rev");
		reasons = json_object_get(e, "reasons");
		if (id == NULL || st == NULL)
			return GS_FAIL(GS_EPROTOCOL,
			    "results[%zu]: no "
			    "change_id or status",
			    i);
		if (strcmp(st, "quarantined") == 0)
			state = 4;
		else if (strcmp(st, "conflict") == 0)
			state = 5;
		else if (strcmp(st, "merged") == 0 ||
			 strcmp(st, "applied") == 0)
			state = 2;
		else
			return GS_FAIL(GS_EPROTOCOL,
			    "results[%zu]: unknown "
			    "status '%s'",
			    i, st);
		if (state != 2 && reasons != NULL)
			problem = json_dumps(reasons, JSON_COMPACT);
		r = gs_stmt_bind_text(ob->res_change, 1, id);
		if (r == GS_OK)
			r = gs_stmt_bind_int64(ob->res_change, 2, seq);
		if (r == GS_OK)
			r = gs_stmt_bind_int64(ob->res_change, 3, state);
		if (r == GS_OK)
			r = gs_stmt_bind_text(ob->res_change, 4,
			    problem != NULL ? problem
					    : (state == 2 ? NULL : st));
		if (r == GS_OK)
			r = gs_stmt_bind_int64(ob->res_change, 5, now);
		if (r == GS_OK)
			r = step_done(ob->res_change);
		free(problem);
		if (r != GS_OK)
			return r;
		if (gs_db_changes(ob->db) == 0) {
			gs_log(GS_LOG_WARNING,
			    "batch %lld: results name change "
			    "%s, which it does not hold",
			    (long long)seq, id);
			continue;
		}
		if (state == 2 && json_is_integer(rev)) {
			if ((r = gs_stmt_bind_text(ob->res_rev, 1, id)) !=
				GS_OK ||
			    (r = gs_stmt_bind_int64(ob->res_rev, 2,
				 json_integer_value(rev))) != GS_OK ||
			    (r = step_done(ob->res_rev)) != GS_OK)
				return r;
		}
	}
	return GS_OK;
}

int
ag_outbox_ack(struct ag_outbox *ob, const struct ag_outbox_row *row, int status,
    const unsigned char *receipt, size_t receipt_len, const char *results)
{
	json_t *arr = NULL;
	json_error_t je;
	int64_t now = gs_now_ms();
	int fast, in_tx = 0, r = GS_EINTERNAL;

	arr = json_loads(results != NULL ? results : "[]", 0, &je);
	if (arr == NULL || !json_is_array(arr)) {
		r = GS_FAIL(GS_EPROTOCOL, "receipt results are not a JSON "
					  "array");
		goto out;
	}
	if ((r = gs_db_begin(ob->db)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = ag_outbox_attempt(ob, row->seq, NULL)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_int64(ob->set_acked, 1, row->seq)) != GS_OK ||
	    (r = gs_stmt_bind_text(ob->set_acked, 2,
		 status == GS_RECEIPT_QUARANTINED ? "quarantined" : "acked")) !=
		GS_OK ||
	    (r = gs_stmt_bind_blob(ob->set_acked, 3, receipt, receipt_len)) !=
		GS_OK ||
	    (r = gs_stmt_bind_text(ob->set_acked, 4, results)) != GS_OK ||
	    (r = gs_stmt_bind_int64(ob->set_acked, 5, now)) != GS_OK ||
	    (r = step_done(ob->set_acked)) != GS_OK)
		goto out;
	if (gs_db_changes(ob->db) == 0) {
		/* Another sync recorded this receipt first. */
		r = GS_OK;
		goto out;
	}
	/* The usual receipt, every change applied by fast-forward (no
	 * results): the sealed creations are delivered where they are, the
	 * outbox row acked above says so, and their records are at rev 1 by
	 * that alone (AG_SQL_REV, schema/agent/0012: no row written for
	 * them).  Any other: they become batched change rows first, then
	 * everything goes as before. */
	fast = status != GS_RECEIPT_QUARANTINED && json_array_size(arr) == 0;
	if (!fast && (r = sealed_out(ob, row->seq)) != GS_OK)
		goto out;
	if (status == GS_RECEIPT_QUARANTINED) {
		/* Revoked: the platform kept everything in quarantine for an
		 * admin.  Nothing was applied. */
		if ((r = gs_stmt_bind_int64(ob->quar_all, 1, row->seq)) !=
			GS_OK ||
		    (r = gs_stmt_bind_text(ob->quar_all, 2,
			 "device revoked: "
			 "kept in the platform's quarantine for an admin")) !=
			GS_OK ||
		    (r = gs_stmt_bind_int64(ob->quar_all, 3, now)) != GS_OK ||
		    (r = step_done(ob->quar_all)) != GS_OK)
			goto out;
		if ((r = ag_device_set_revoked(ob->db, now)) != GS_OK)
			goto out;
		if ((r = audit(ob, now, "revoked",
			 "seq %lld: device revoked, "
			 "%u changes quarantined on the platform",
			 (long long)row->seq, row->record_count)) != GS_OK)
			goto out;
	} else {
		if ((r = apply_results(ob, row->seq, arr, now)) != GS_OK)
			goto out;
		if ((r = gs_stmt_bind_int64(ob->ff_rev, 1, row->seq)) !=
			GS_OK ||
		    (r = step_done(ob->ff_rev)) != GS_OK)
			goto out;
		if ((r = gs_stmt_bind_int64(ob->ff_state, 1, row->seq)) !=
			GS_OK ||
		    (r = gs_stmt_bind_int64(ob->ff_state, 2, now)) != GS_OK ||
		    (r = step_done(ob->ff_state)) != GS_OK)
			goto out;
		if ((r = audit(ob, now, "acked",
			 "seq %lld: %u changes, %zu "
			 "listed in results",
			 (long long)row->seq, row->record_count,
			 json_array_size(arr))) != GS_OK)
			goto out;
	}
	if ((r = gs_stmt_bind_int64(ob->last_ack, 1, now)) != GS_OK ||
	    (r = step_done(ob->last_ack)) != GS_OK)
		goto out;
	if ((r = gs_db_commit(ob->db)) != GS_OK)
		goto out;
	in_tx = 0;
	r = GS_OK;
out:
	if (in_tx)
		gs_db_rollback(ob->db);
	json_decref(arr);
	return r;
}

int
ag_outbox_reject(
    struct ag_outbox *ob, const struct ag_outbox_row *row, const char *reason)
{
	int64_t now = gs_now_ms();
	int in_tx = 0, r = GS_EINTERNAL;

	if ((r = gs_db_begin(ob->db)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = ag_outbox_attempt(ob, row->seq, NULL)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_int64(ob->set_rejected, 1, row->seq)) != GS_OK ||
	    (r = gs_stmt_bind_text(ob->set_rejected, 2, reason)) != GS_OK ||
	    (r = gs_stmt_bind_int64(ob->set_rejected, 3, now)) != GS_OK ||
	    (r = step_done(ob->set_rejected)) != GS_OK)
		goto out;
	if (gs_db_changes(ob->db) == 0) {
		r = GS_OK;
		goto out;
	}
	if ((r = sealed_out(ob, row->seq)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_int64(ob->rej_changes, 1, row->seq)) != GS_OK ||
	    (r = gs_stmt_bind_text(ob->rej_changes, 2, reason)) != GS_OK ||
	    (r = gs_stmt_bind_int64(ob->rej_changes, 3, now)) != GS_OK ||
	    (r = step_done(ob->rej_changes)) != GS_OK)
		goto out;
	if ((r = audit(ob, now, "rejected", "seq %lld: %.400s",
		 (long long)row->seq, reason)) != GS_OK)
		goto out;
	if ((r = gs_db_commit(ob->db)) != GS_OK)
		goto out;
	in_tx = 0;
	r = GS_OK;
out:
	if (in_tx)
		gs_db_rollback(ob->db);
	return r;
}

int
ag_outbox_attempt(struct ag_outbox *ob, int64_t seq, const char *error)
{
	int r;

	if ((r = gs_stmt_bind_int64(ob->attempt, 1, seq)) != GS_OK ||
	    (r = gs_stmt_bind_int64(ob->attempt, 2, gs_now_ms())) != GS_OK ||
	    (r = gs_stmt_bind_text(ob->attempt, 3, error)) != GS_OK)
		return r;
	return step_done(ob->attempt);
}

int
ag_outbox_pending(struct gs_db *db, int64_t *unsent, int64_t *sealed)
{
	struct gs_stmt *st = NULL;
	int r;

	*sealed = 0;
	if (unsent != NULL)
		*unsent = 0;
	if ((r = gs_stmt_prepare(db, unsent != NULL ? AG_SQL_PENDING :
	    AG_SQL_SEALED, &st)) != GS_OK)
		return r;
	if ((r = gs_stmt_step(st)) == GS_ROW) {
		if (unsent != NULL)
			*unsent = gs_stmt_int64(st, 0);
		*sealed = gs_stmt_int64(st, 1);
		r = GS_OK;
	} else if (r == GS_DONE) {
		r = GS_FAIL(GS_EDB, "pending counts: no row");
	}
	gs_stmt_finalize(st);
	return r;
}

int
ag_outbox_counts(struct gs_db *db, struct ag_outbox_counts *c)
{
	struct gs_stmt *st = NULL;
	int r = GS_EINTERNAL;

	memset(c, 0, sizeof(*c));
	if ((r = gs_stmt_prepare(db, AG_SQL_CHANGE_COUNTS, &st)) != GS_OK)
		goto out;
	while ((r = gs_stmt_step(st)) == GS_ROW) {
		int64_t s = gs_stmt_int64(st, 0);

		if (s >= 0 && s < 6)
			c->changes[s] = gs_stmt_int64(st, 1);
	}
	if (r != GS_DONE)
		goto out;
	gs_stmt_finalize(st);
	st = NULL;
	if ((r = gs_stmt_prepare(db,
		 "SELECT state, count(*), "
		 "sum(record_count), sum(bytes), max(seq) FROM outbox "
		 "GROUP BY state",
		 &st)) != GS_OK)
		goto out;
	while ((r = gs_stmt_step(st)) == GS_ROW) {
		const char *s = gs_stmt_text(st, 0);
		int64_t n = gs_stmt_int64(st, 1);

		if (s == NULL)
			continue;
		if (strcmp(s, "sealed") == 0) {
			c->sealed = n;
			c->sealed_records = gs_stmt_int64(st, 2);
			c->sealed_bytes = gs_stmt_int64(st, 3);
		} else if (strcmp(s, "acked") == 0) {
			c->acked = n;
			c->last_acked_seq = gs_stmt_int64(st, 4);
		} else if (strcmp(s, "quarantined") == 0) {
			c->quarantined = n;
		} else if (strcmp(s, "rejected") == 0) {
			c->rejected = n;
		}
	}
	if (r != GS_DONE)
		goto out;
	r = GS_OK;
out:
	gs_stmt_finalize(st);
	return r;
}
