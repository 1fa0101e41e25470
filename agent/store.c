/*
 * store.c - the agent's local store: records and their changes.
 *
 * Each save is ONE transaction holding the record row, its change row and
 * an audit row (schema/agent/0001-store.sql).  The database runs in WAL
 * mode with synchronous=FULL, so once ag_collect/ag_edit/ag_delete return
 * GS_OK the save survives a crash or a power cut; if they return anything
 * else, the transaction was rolled back and nothing changed.
 *
 * Changes: a new record queues an 'upsert' change with all its fields and
 * base_rev 0; an edit queues the fields it sets with base_rev = the
 * record's platform rev; a delete marks the record deleted (a tombstone)
 * and queues a 'delete' change without fields.  While a change is unsent
 * (state 0) later changes to the same record fold into it (the unique
 * index change_one_unsent makes two impossible): edits merge their fields,
 * the later value winning, and a delete replaces the pending edits.  Once
 * batched (state 1) a change is in an envelope in flight and is never
 * touched again; the next edit starts a new change.
 *
 * Speed: every statement is prepared once at open; a bulk import parses,
 * validates and inserts each line in one pass inside one transaction and
 * writes one audit row for the whole import.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/progress.h"
#include "core/util.h"
#include "crypt.h"
#include "crypto.h"
#include "db.h"
#include "ids.h"
#include "json.h"
#include "keys.h"
#include "reference.h"
#include "schema.h"
#include "store.h"
#include "uuid.h"
#include "validate.h"
#include "core/banned.h"

#define DB_NAME "agent.db"


/* The time a save stamps on its record and change: the device clock,
 * never below 0.  A handheld whose battery was out can read 1969; the
 * wire wants times >= 0 (docs/PROTOCOL.md), and a save must never become
 * a change that cannot be sent.  The platform flags such times as clock
 * suspect (before GS_TIME_FLOOR_MS); they are kept as read otherwise. */
static int64_t
record_now(void)
{
	int64_t t = gs_now_ms();

	return t > 0 ? t : 0;
}
/*
 * One open home.  grid and worker are read from meta at open and cached:
 * every save stamps them on its rows, and reading them per save would
 * cost two queries on the hot path.
 */
struct ag_store {
	struct gs_db *db;
	struct gs_schema *schema;
	char *home;
	char grid[64];
	char worker[64];
	ag_problem_fn on_problem;
	void *problem_ctx;
	size_t nproblems; /* problems reported by the current call */

	struct gs_stmt *meta_get, *meta_set;
	struct gs_stmt *rec_ins, *rec_get, *rec_upd, *rec_del;
	struct gs_stmt *chg_ins, *chg_unsent, *chg_upd;
	struct gs_stmt *pend_ins, *pend_make, *pend_del;
	struct gs_stmt *sealed_make, *sealed_del;
	struct gs_stmt *audit_ins;
	struct gs_stmt *list;

	/* Personal data at rest (issue 6, agent/crypt.h, agent/unlock.c):
	 * protect is set when the store has a keyring row; crypt holds the
	 * DEK while unlocked (NULL: locked). */
	int protect;
	struct ag_crypt *crypt;
	ag_keystore_wrap_fn ks_wrap;
	ag_keystore_unwrap_fn ks_unwrap;
	void *ks_ctx;
	struct gs_stmt *bidx_ins, *bidx_del;
	/* Issue 4: review verdicts and platform revisions (pull). */
	struct gs_stmt *review_get, *pull_put, *pull_unidx;
	struct gs_progress *progress; /* the caller's; NULL: none */
};

/*
 * The statements, prepared at open so that a typo fails the first test.
 * Column lists are spelled out: later migrations may add columns.
 */
static const char SQL_META_GET[] = "SELECT value FROM meta WHERE key = ?1";
static const char SQL_META_SET[] =
    "INSERT INTO meta(key, value) VALUES(?1, ?2) "
    "ON CONFLICT(key) DO UPDATE SET value = excluded.value";
static const char SQL_REC_INS[] =
    "INSERT INTO record(uuid, type, form_version, grid, fields, rev, "
    "deleted, created_at, updated_at, author) "
    "VALUES(?1, ?2, ?3, ?4, ?5, 0, 0, ?6, ?6, ?7)";
/*
 * "pending": a change of the record is unsent (its creation still in
 * pending_creation, or a change row) or in a batch in flight (its
 * creation in sealed_creation with its batch sealed, or a change row).
 * Lookups by uuid, not "state IN (0, 1)": that form scans every unsent change
 * (100,000 after a bulk import), while state 0 by uuid is one probe of
 * change_one_unsent and the batched changes are few.
 */
static const char SQL_REC_GET[] =
    "SELECT type, form_version, grid, fields, " AG_SQL_REV("record") ", "
    "deleted, created_at, "
    "updated_at, author, "
    "EXISTS(SELECT 1 FROM pending_creation p WHERE p.uuid = ?1) OR "
    "EXISTS(SELECT 1 FROM sealed_creation s WHERE s.uuid = ?1 AND "
    AG_SEALED_IN_FLIGHT ") OR "
    "EXISTS(SELECT 1 FROM change WHERE change.uuid = ?1 AND state = 0) OR "
    "EXISTS(SELECT 1 FROM change WHERE state = 1 AND change.uuid = ?1) "
    "FROM record WHERE uuid = ?1";
static const char SQL_REC_UPD[] =
    "UPDATE record SET fields = ?2, form_version = ?3, updated_at = ?4 "
    "WHERE uuid = ?1";
static const char SQL_REC_DEL[] =
    "UPDATE record SET deleted = 1, updated_at = ?2 WHERE uuid = ?1";
static const char SQL_CHG_INS[] =
    "INSERT INTO change(change_id, uuid, type, form_version, grid, op, "
    "base_rev, fields, reason, author, state, created_at, updated_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0, ?11, ?11)";
/* A new record's creation, unsent (schema/agent/0008). */
static const char SQL_PEND_INS[] =
    "INSERT INTO pending_creation(uuid, change_id) VALUES(?1, ?2)";
/* Its change row, written when first needed: every column but the id
 * follows from the record (0008-pending-creation.sql). */
#define PEND_MAKE \
    "INSERT INTO change(change_id, uuid, type, form_version, grid, op, " \
    "base_rev, fields, reason, author, state, created_at, updated_at) " \
    "SELECT " AG_PEND_AS_CHANGE ", NULL, NULL, r.author, 0, " \
    "r.created_at, r.created_at " AG_PEND_FROM
static const char SQL_PEND_MAKE[] = PEND_MAKE " WHERE p.uuid = ?1";
static const char SQL_PEND_DEL[] =
    "DELETE FROM pending_creation WHERE uuid = ?1";
/* The change row of a creation sealed into a batch in flight (schema/
 * agent/0011), batched as the seal left it: state 1, its batch,
 * updated_at the seal's time.  A delivered one (its batch acked) is
 * history and stays as it is. */
static const char SQL_SEALED_MAKE[] =
    "INSERT INTO change(" AG_CHANGE_COLS ") SELECT " AG_SEALED_AS_CHANGE
    ", 1, s.batch_seq, NULL, r.created_at, " AG_SEALED_AT " "
    AG_SEALED_FROM " WHERE s.uuid = ?1 AND " AG_SEALED_IN_FLIGHT;
static const char SQL_SEALED_DEL[] =
    "DELETE FROM sealed_creation AS s WHERE s.uuid = ?1 AND "
    AG_SEALED_IN_FLIGHT;
static const char SQL_CHG_UNSENT[] =
    "SELECT change_id, op, fields, form_version FROM change "
    "WHERE uuid = ?1 AND state = 0";
/* "AND state = 0": coalescing may only ever touch an unsent change.  If
 * the sync side batched it in between (it cannot while we hold the write
 * lock, but the SQL says so anyway), no row changes and update_change
 * reports it. */
static const char SQL_CHG_UPD[] =
    "UPDATE change SET op = ?2, fields = ?3, reason = ?4, "
    "form_version = ?5, updated_at = ?6 WHERE change_id = ?1 AND state = 0";
static const char SQL_AUDIT_INS[] =
    "INSERT INTO audit(at, action, uuid, type, detail) "
    "VALUES(?1, ?2, ?3, ?4, ?5)";
/* The blind index (0005-pii.sql); OR IGNORE: the same number twice in
 * one record is one row. */
static const char SQL_BIDX_INS[] =
    "INSERT OR IGNORE INTO pii_index(tag, uuid, field) VALUES(?1, ?2, ?3)";
static const char SQL_REVIEW_GET[] =
    "SELECT state, comment, by, at FROM review WHERE uuid = ?1";
/* A platform revision (pull): a tombstone keeps the last fields. */
static const char SQL_PULL_PUT[] =
    "INSERT INTO record(uuid, type, form_version, grid, fields, rev, "
    "deleted, created_at, updated_at, author) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
    "ON CONFLICT(uuid) DO UPDATE SET form_version = excluded.form_version, "
    "grid = excluded.grid, fields = CASE WHEN excluded.deleted "
    "THEN record.fields ELSE excluded.fields END, rev = excluded.rev, "
    "deleted = excluded.deleted, updated_at = excluded.updated_at, "
    "author = excluded.author";
static const char SQL_PULL_UNIDX[] = "DELETE FROM pii_index WHERE uuid = ?1";
static const char SQL_BIDX_DEL[] =
    "DELETE FROM pii_index WHERE tag = ?1 AND uuid = ?2 AND field = ?3";
/* UUIDv7 order is creation order, so "ORDER BY uuid" lists oldest first
 * and walks the primary key without a sort. */
static const char SQL_LIST[] =
    "SELECT uuid, type, form_version, grid, fields, " AG_SQL_REV("record")
    ", deleted, "
    "created_at, updated_at, author FROM record "
    "WHERE (?1 IS NULL OR type = ?1) AND (?2 OR deleted = 0) "
    "ORDER BY uuid";

/* ------------------------------------------------------------ helpers */

static int
db_done(int r)
{
	return r == GS_DONE ? GS_OK : r;
}

/* Reports one problem to the app's callback and counts it. */
static void
report(struct ag_store *st, size_t line, const char *field,
    const char *rule, const char *message)
{
	st->nproblems++;
	/* A problem is a line of its own, not the tail of the progress
	 * line (which comes back at its next redraw). */
	if (st->progress != NULL)
		gs_progress_done(st->progress);
	if (st->on_problem != NULL)
		st->on_problem(st->problem_ctx, line, field, rule, message);
}

static void
report_all(struct ag_store *st, size_t line, const struct gs_problems *p)
{
	char more[64];
	size_t i;

	for (i = 0; i < p->n; i++)
		report(st, line, p->v[i].field, p->v[i].rule,
		    p->v[i].message);
	if (p->dropped > 0) {
		snprintf(more, sizeof(more), "%zu more problems not shown",
		    p->dropped);
		report(st, line, "", "more", more);
	}
}

/*
 * The GS_EVALIDATION return with a one-line summary as the detail: the
 * first problem, which is what a caller that ignores the callback shows.
 */
static int
fail_problems(const struct gs_problems *p)
{
	if (p->n == 0)
		return GS_FAIL(GS_EVALIDATION, "record failed validation");
	if (p->n + p->dropped == 1)
		return GS_FAIL(GS_EVALIDATION, "%s%s%s", p->v[0].field,
		    p->v[0].field[0] ? ": " : "", p->v[0].message);
	return GS_FAIL(GS_EVALIDATION, "%s%s%s (and %zu more problems)",
	    p->v[0].field, p->v[0].field[0] ? ": " : "", p->v[0].message,
	    p->n + p->dropped - 1);
}

static int
check_uuid(const char *uuid)
{
	unsigned char b[16];

	if (uuid == NULL || gs_uuid_parse(uuid, b) != GS_OK)
		return GS_FAIL(GS_EINVAL, "'%.40s' is not a record uuid",
		    uuid != NULL ? uuid : "(null)");
	return GS_OK;
}

/* The form of a type, or GS_EINVAL listing the types there are. */
static int
find_form(struct ag_store *st, const char *type, const struct gs_form **out)
{
	char names[256];
	size_t i, n = 0;

	if (type != NULL && (*out = gs_schema_form(st->schema, type)) != NULL)
		return GS_OK;
	names[0] = '\0';
	for (i = 0; i < gs_schema_nforms(st->schema); i++) {
		const char *t = gs_form_type(gs_schema_form_at(st->schema, i));
		int w = snprintf(names + n, sizeof(names) - n, "%s%s",
		    i ? ", " : "", t);

		if (w < 0 || (size_t)w >= sizeof(names) - n)
			break;
		n += (size_t)w;
	}
	return GS_FAIL(GS_EINVAL, "unknown record type '%.40s' (types: %s)",
	    type != NULL ? type : "", names);
}

/*
 * Parses one JSON object with the fast strict reader (json.h).
 * Duplicate keys are refused: which of two values "wins" must never
 * depend on the parser.
 */
static int
parse_object(const char *text, size_t len, json_t **out, char *why,
    size_t whylen)
{
	char detail[160];
	json_t *o;
	int r;

	*out = NULL;
	if (len > AG_MAX_RECORD_JSON) {
		snprintf(why, whylen, "record of %zu bytes is over the limit "
		    "of %u", len, AG_MAX_RECORD_JSON);
		return GS_ETOOBIG;
	}
	if ((r = ag_json_parse(text, len, &o, detail, sizeof(detail)))
	    != GS_OK) {
		snprintf(why, whylen, "not valid JSON: %s", detail);
		return r;
	}
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(why, whylen, "expected a JSON object of fields");
		return GS_EPARSE;
	}
	*out = o;
	return GS_OK;
}

/* Removes keys whose value is null: stored records hold present fields. */
static void
drop_nulls(json_t *o)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(o, tmp, k, v) {
		if (json_is_null(v))
			json_object_del(o, k);
	}
}

static int put_json_string(struct gs_buf *b, const char *s);
static int put_json(struct gs_buf *b, const json_t *v);

/*
 * The stored text of a fields object (gs_free), or NULL when out of
 * memory.  Every path that stores fields uses put_json, so the same
 * fields are always the same bytes.  dump_shown: the same for fields
 * whose personal data is open, in a secret buffer (core/buf.h); the
 * caller frees the text with gs_free_wiped.
 */
static char *
dump_as(const json_t *o, int secret)
{
	struct gs_buf b;
	char *s = NULL;

	if (secret)
		gs_buf_init_secret(&b, 2 * AG_MAX_RECORD_JSON);
	else
		gs_buf_init(&b, 2 * AG_MAX_RECORD_JSON);
	if (put_json(&b, o) == GS_OK)
		s = gs_buf_detach(&b, NULL);
	gs_buf_release(&b);
	return s;
}

static char *
dump(const json_t *o)
{
	return dump_as(o, 0);
}

static char *
dump_shown(const json_t *o)
{
	return dump_as(o, 1);
}

/*
 * Compact JSON of a value into b (appended), the same text json_dumps
 * gives but about three times faster: it writes straight into one reused
 * buffer instead of through a callback per token.  This matters in a bulk
 * import, where every record is encoded once.  Reals are rare and left to
 * jansson so that their formatting stays exactly its own.
 */
/* Appends one object member "k":x, after a comma unless *first. */
static int
put_member(struct gs_buf *b, const char *k, const json_t *x, int *first)
{
	int r;

	if ((!*first && (r = gs_buf_putc(b, ',')) != GS_OK) ||
	    (r = put_json_string(b, k)) != GS_OK ||
	    (r = gs_buf_putc(b, ':')) != GS_OK ||
	    (r = put_json(b, x)) != GS_OK)
		return r;
	*first = 0;
	return GS_OK;
}

static int
put_json(struct gs_buf *b, const json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;
	char *s;
	int r, first = 1;

	switch (json_typeof(v)) {
	case JSON_OBJECT:
		if ((r = gs_buf_putc(b, '{')) != GS_OK)
			return r;
		json_object_foreach((json_t *)v, k, x)
			if ((r = put_member(b, k, x, &first)) != GS_OK)
				return r;
		return gs_buf_putc(b, '}');
	case JSON_ARRAY:
		if ((r = gs_buf_putc(b, '[')) != GS_OK)
			return r;
		json_array_foreach(v, i, x) {
			if ((i > 0 && (r = gs_buf_putc(b, ',')) != GS_OK) ||
			    (r = put_json(b, x)) != GS_OK)
				return r;
		}
		return gs_buf_putc(b, ']');
	case JSON_STRING:
		/* Strings with NUL inside were refused by the parser. */
		return put_json_string(b, json_string_value(v));
	case JSON_INTEGER:
		return gs_buf_printf(b, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
	case JSON_TRUE:
		return gs_buf_puts(b, "true");
	case JSON_FALSE:
		return gs_buf_puts(b, "false");
	case JSON_NULL:
		return gs_buf_puts(b, "null");
	case JSON_REAL:
	default:
		if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
			return GS_ENOMEM;
		r = gs_buf_puts(b, s);
		/* The bulk import's readers run this in a jansson arena
		 * (json.h): free() would be wrong there. */
		gs_json_free(s);
		return r;
	}
}

/* Appends s as a JSON string (quoted and escaped). */
static int
put_json_string(struct gs_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *run = p;
	size_t n;
	int r;

	/* Fast path, the common case: nothing to escape, so the string goes
	 * in with one reserve and one copy. */
	for (n = 0; p[n] >= 0x20 && p[n] != '"' && p[n] != '\\'; n++)
		;
	if (p[n] == '\0') {
		if ((r = gs_buf_reserve(b, n + 2)) != GS_OK)
			return r;
		b->data[b->len] = '"';
		memcpy(b->data + b->len + 1, p, n);
		b->data[b->len + n + 1] = '"';
		b->len += n + 2;
		b->data[b->len] = '\0';
		return GS_OK;
	}
	if ((r = gs_buf_putc(b, '"')) != GS_OK)
		return r;
	for (; *p != '\0'; p++) {
		char esc[7];

		if (*p >= 0x20 && *p != '"' && *p != '\\')
			continue;
		if ((r = gs_buf_append(b, run, (size_t)(p - run))) != GS_OK)
			return r;
		esc[0] = '\\';
		if (*p == '"' || *p == '\\') {
			esc[1] = (char)*p;
			r = gs_buf_append(b, esc, 2);
		} else {
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[*p >> 4];
			esc[5] = hex[*p & 15];
			r = gs_buf_append(b, esc, 6);
		}
		if (r != GS_OK)
			return r;
		run = p + 1;
	}
	if ((r = gs_buf_append(b, run, (size_t)(p - run))) != GS_OK)
		return r;
	return gs_buf_putc(b, '"');
}

/* One stored record as read from the database. */
struct row {
	const char *uuid, *type, *grid, *fields, *author;
	int form_version, deleted, pending;
	int64_t rev, created_at, updated_at;
};

/*
 * The record line of ag_get and list --json.  The stored fields text is
 * spliced in as it is (we wrote it with jansson, compact), which keeps
 * listing 100,000 records from re-encoding every one.
 */
static int
record_json(struct gs_buf *b, const struct row *w, int with_pending)
{
	int r;

	gs_buf_reset(b);
	if ((r = gs_buf_puts(b, "{\"uuid\":")) != GS_OK ||
	    (r = put_json_string(b, w->uuid)) != GS_OK ||
	    (r = gs_buf_puts(b, ",\"type\":")) != GS_OK ||
	    (r = put_json_string(b, w->type)) != GS_OK ||
	    (r = gs_buf_printf(b, ",\"form_version\":%d,\"grid\":",
	    w->form_version)) != GS_OK ||
	    (r = put_json_string(b, w->grid)) != GS_OK ||
	    (r = gs_buf_printf(b, ",\"rev\":%lld,\"deleted\":%s,"
	    "\"created_at\":%lld,\"updated_at\":%lld,\"author\":",
	    (long long)w->rev, w->deleted ? "true" : "false",
	    (long long)w->created_at, (long long)w->updated_at)) != GS_OK ||
	    (r = put_json_string(b, w->author)) != GS_OK)
		return r;
	if (with_pending && (r = gs_buf_printf(b, ",\"pending\":%s",
	    w->pending ? "true" : "false")) != GS_OK)
		return r;
	if ((r = gs_buf_puts(b, ",\"fields\":")) != GS_OK ||
	    (r = gs_buf_puts(b, w->fields)) != GS_OK ||
	    (r = gs_buf_putc(b, '}')) != GS_OK)
		return r;
	return GS_OK;
}

static int review_splice(struct ag_store *st, struct gs_buf *b,
    const char *uuid);

static const char *
text_or_empty(struct gs_stmt *s, int col)
{
	const char *t = gs_stmt_text(s, col);

	return t != NULL ? t : "";
}

/* ------------------------------------------------------------ open */

static int
prepare_all(struct ag_store *st)
{
	const struct {
		const char *sql;
		struct gs_stmt **st;
	} v[] = {
		{ SQL_META_GET, &st->meta_get },
		{ SQL_META_SET, &st->meta_set },
		{ SQL_REC_INS, &st->rec_ins },
		{ SQL_REC_GET, &st->rec_get },
		{ SQL_REC_UPD, &st->rec_upd },
		{ SQL_REC_DEL, &st->rec_del },
		{ SQL_CHG_INS, &st->chg_ins },
		{ SQL_CHG_UNSENT, &st->chg_unsent },
		{ SQL_CHG_UPD, &st->chg_upd },
		{ SQL_PEND_INS, &st->pend_ins },
		{ SQL_PEND_MAKE, &st->pend_make },
		{ SQL_PEND_DEL, &st->pend_del },
		{ SQL_SEALED_MAKE, &st->sealed_make },
		{ SQL_SEALED_DEL, &st->sealed_del },
		{ SQL_AUDIT_INS, &st->audit_ins },
		{ SQL_LIST, &st->list },
		{ SQL_BIDX_INS, &st->bidx_ins },
		{ SQL_BIDX_DEL, &st->bidx_del },
		{ SQL_REVIEW_GET, &st->review_get },
		{ SQL_PULL_PUT, &st->pull_put },
		{ SQL_PULL_UNIDX, &st->pull_unidx },
	};
	size_t i;
	int r;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if ((r = gs_stmt_prepare(st->db, v[i].sql, v[i].st)) != GS_OK)
			return r;
	return GS_OK;
}

int
ag_store_meta_get(struct ag_store *st, const char *key, char **out)
{
	const char *v;
	int r;

	*out = NULL;
	if ((r = gs_stmt_bind_text(st->meta_get, 1, key)) != GS_OK)
		return r;
	r = gs_stmt_step(st->meta_get);
	if (r == GS_DONE)
		return GS_ENOTFOUND; /* an answer, not an error to explain */
	if (r != GS_ROW)
		return r;
	v = text_or_empty(st->meta_get, 0);
	*out = gs_strdup(v);
	gs_stmt_reset(st->meta_get);
	return *out != NULL ? GS_OK : GS_FAIL(GS_ENOMEM, "meta: no memory");
}

int
ag_store_meta_set(struct ag_store *st, const char *key, const char *value)
{
	int r;

	if ((r = gs_stmt_bind_text(st->meta_set, 1, key)) != GS_OK ||
	    (r = gs_stmt_bind_text(st->meta_set, 2, value)) != GS_OK)
		return r;
	if ((r = db_done(gs_stmt_step(st->meta_set))) != GS_OK)
		return r;
	if (strcmp(key, "grid") == 0)
		gs_strlcpy(st->grid, value, sizeof(st->grid));
	else if (strcmp(key, "worker") == 0)
		gs_strlcpy(st->worker, value, sizeof(st->worker));
	return GS_OK;
}

/*
 * Reads the cached settings; *initialized says whether init finished.
 * created_at is the mark: init writes it last, in the same transaction as
 * the settings, so a crash during init leaves a home that is simply not
 * initialized yet (init may run again), never a half-set one.
 */
static int
load_meta(struct ag_store *st, int *initialized)
{
	char *v = NULL;
	int r;

	*initialized = 0;
	r = ag_store_meta_get(st, "created_at", &v);
	if (r == GS_ENOTFOUND)
		return GS_OK;
	if (r != GS_OK)
		return r;
	gs_free(v);
	*initialized = 1;
	if ((r = ag_store_meta_get(st, "grid", &v)) == GS_OK) {
		gs_strlcpy(st->grid, v, sizeof(st->grid));
		gs_free(v);
	} else if (r != GS_ENOTFOUND) {
		return r;
	}
	if ((r = ag_store_meta_get(st, "worker", &v)) == GS_OK) {
		gs_strlcpy(st->worker, v, sizeof(st->worker));
		gs_free(v);
	} else if (r != GS_ENOTFOUND) {
		return r;
	}
	return GS_OK;
}

static char *
db_path(const char *home)
{
	size_t n = strlen(home) + sizeof(DB_NAME) + 2;
	char *p = gs_malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", home, DB_NAME);
	return p;
}

/*
 * SQLite's unix files take paths of at most 512 bytes, made absolute, and
 * the store's rollback journal is its path and "-journal": a home whose
 * absolute path is longer than HOME_MAX fails to open, and init left an
 * empty agent.db behind.  Checked before anything is made.
 */
#define HOME_MAX (512 - (int)sizeof("/" DB_NAME "-journal") + 1)

static int
home_fits(const char *home)
{
	char cwd[PATH_MAX];
	size_t n = strlen(home);

	if (home[0] != '/') {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return GS_FAIL(GS_EIO, "getcwd: %s", strerror(errno));
		n += strlen(cwd) + 1;
	}
	if (n > HOME_MAX)
		return GS_FAIL(GS_EINVAL, "the home path is %zu bytes long "
		    "(absolute); the store's files allow at most %d", n,
		    HOME_MAX);
	return GS_OK;
}

/* Opens agent.db at path (which must exist) and prepares everything. */
static int
store_new(const char *home, const char *path, int dbflags,
    struct ag_store **out)
{
	struct ag_store *st = NULL;
	int r = GS_EINTERNAL;

	*out = NULL;
	if ((r = gs_crypto_init()) != GS_OK)
		return r;
	if ((st = gs_calloc(1, sizeof(*st))) == NULL ||
	    (st->home = gs_strdup(home)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "store: out of memory");
		goto out;
	}
	/* One thread at a time: the bulk import's reader thread and the
	 * sync's courier never touch the database. */
	if ((r = gs_db_open(path, "agent", dbflags | GS_DB_ONE_THREAD |
	    GS_DB_COALESCE_WAL, &st->db)) != GS_OK)
		goto out;
	/* 16 MiB of page cache (SQLite's default is 2 MiB).  Not more: a
	 * bulk import's pages should not all wait for COMMIT.  Once the
	 * cache is full SQLite writes pages to the WAL as it goes, on the
	 * inserting thread while the readers parse on the other cores, and
	 * COMMIT has little left to write (64 MiB made 100,000 persons
	 * about 15% slower).  Not less: the blind index of a protected
	 * store takes its inserts at random places, and at 8 MiB its pages
	 * were written out and read back again, 16,000 times each way for
	 * 100,000 protected persons (strace); a plain import writes and
	 * reads the same at 8 and 16 MiB.  bench/RESULTS.md, bench-save. */
	if ((r = gs_db_exec(st->db, "PRAGMA cache_size = -16384")) != GS_OK)
		goto out;
	/* The built-in forms and code tables with the reference data
	 * fetched from the platform (agent/reference.c). */
	if ((r = ag_reference_load(st->db, &st->schema)) != GS_OK)
		goto out;
	if ((r = prepare_all(st)) != GS_OK)
		goto out;
	if ((r = ag_keys_load(st)) != GS_OK)
		goto out;
	/* A protected store zeroes what it frees (an edited record's old
	 * sealed text, a purged value) and keeps SQLite's temporary tables
	 * and sorts in memory, never in a temporary file. */
	if (st->protect &&
	    (r = gs_db_exec(st->db, "PRAGMA secure_delete = ON; "
	    "PRAGMA temp_store = MEMORY")) != GS_OK)
		goto out;
	*out = st;
	st = NULL;
	r = GS_OK;
out:
	ag_store_close(st);
	return r;
}

void
ag_store_close(struct ag_store *st)
{
	if (st == NULL)
		return;
	ag_crypt_free(st->crypt);
	gs_db_close(st->db); /* finalizes the statements too */
	gs_schema_free(st->schema);
	gs_free(st->home);
	gs_free(st);
}

char *
ag_home_resolve(const char *option)
{
	const char *e;
	size_t n;
	char *p;

	if (option != NULL && option[0] != '\0')
		return gs_strdup(option);
	if ((e = getenv("GRIDAGENT_HOME")) != NULL && e[0] != '\0')
		return gs_strdup(e);
	if ((e = getenv("HOME")) == NULL || e[0] == '\0')
		return NULL;
	n = strlen(e) + sizeof("/.gridagent");
	if ((p = gs_malloc(n)) != NULL)
		snprintf(p, n, "%s/.gridagent", e);
	return p;
}

/*
 * mkdir -p with mode 0700 for every directory it makes: the store holds
 * personal data (names, id numbers, phones), so no other user of the
 * handheld may even list it.  Existing directories are left as they are.
 */
static int
make_dirs(const char *home)
{
	char path[PATH_MAX];
	size_t i, n = gs_strlcpy(path, home, sizeof(path));
	struct stat sb;

	if (n >= sizeof(path))
		return GS_FAIL(GS_EINVAL, "home path is too long");
	for (i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		/* 73 (cannot create), as the platform's init; a full or
		 * failing disk stays 74. */
		if (mkdir(path, 0700) != 0 && errno != EEXIST)
			return GS_FAIL(errno == ENOSPC || errno == EIO ||
			    errno == EDQUOT ? GS_EIO : GS_ECANTCREATE,
			    "cannot create %s: %s", path, strerror(errno));
		path[i] = i < n ? '/' : '\0';
	}
	if (stat(home, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return GS_FAIL(GS_ECANTCREATE, "cannot create the home %s: "
		    "it exists and is not a directory", home);
	return GS_OK;
}

/*
 * Every record carries the grid and the worker id as they are, and the
 * batch encoder refuses (sync/batch.c, check_plain) what would need
 * escaping or could steer a terminal: a grid or worker with a control
 * character, quote or backslash made every record saved unsendable (each
 * marked rejected at the next sync) and was printed raw by status.  So it
 * is refused here, before anything is made.
 */
static int
plain_id(const char *what, const char *s)
{
	struct gs_utf8_scan sc;
	size_t n;

	if (s == NULL)
		return GS_OK;
	n = strlen(s);
	if (gs_utf8_scan(s, n, &sc) != 0)
		return GS_FAIL(GS_EINVAL, "%s is not valid UTF-8", what);
	if (sc.ctrl_at != SIZE_MAX || sc.space_at != SIZE_MAX ||
	    memchr(s, '"', n) != NULL || memchr(s, '\\', n) != NULL)
		return GS_FAIL(GS_EINVAL, "%s has a control character, quote "
		    "or backslash", what);
	return GS_OK;
}

int
ag_store_init(const char *home, const char *grid, const char *worker,
    struct ag_store **out)
{
	struct ag_store *st = NULL;
	char *path = NULL;
	char now[32];
	int r = GS_EINTERNAL, fd, initialized = 0, in_tx = 0;

	*out = NULL;
	if (home == NULL || home[0] == '\0')
		return GS_FAIL(GS_EINVAL, "no home directory (use --home or "
					  "set GRIDAGENT_HOME)");
	if ((grid != NULL && strlen(grid) >= sizeof(st->grid)) ||
	    (worker != NULL && strlen(worker) >= sizeof(st->worker)))
		return GS_FAIL(GS_EINVAL, "grid and worker are at most %zu "
		    "bytes", sizeof(st->grid) - 1);
	if ((r = plain_id("--grid", grid)) != GS_OK ||
	    (r = plain_id("--worker", worker)) != GS_OK)
		return r;
	if ((r = home_fits(home)) != GS_OK || (r = make_dirs(home)) != GS_OK)
		return r;
	if ((path = db_path(home)) == NULL)
		return GS_FAIL(GS_ENOMEM, "init: out of memory");
	/*
	 * Make the file ourselves so that it is 0600 from the first byte
	 * (SQLite would use 0644 less the umask); SQLite gives its -wal and
	 * -shm files the same mode as the database.
	 */
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		r = GS_FAIL(GS_EIO, "cannot create %s: %s", path,
		    strerror(errno));
		goto out;
	}
	close(fd);
	if ((r = store_new(home, path, GS_DB_CREATE, &st)) != GS_OK)
		goto out;
	/* The settings and created_at in one transaction: created_at is the
	 * mark that init finished, checked again under the write lock. */
	if ((r = gs_db_begin(st->db)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = load_meta(st, &initialized)) != GS_OK)
		goto out;
	if (initialized) {
		r = GS_FAIL(GS_EEXIST, "%s is already initialized (grid "
		    "'%s', worker '%s')", home, st->grid, st->worker);
		goto out;
	}
	snprintf(now, sizeof(now), "%lld", (long long)gs_now_ms());
	if ((r = ag_store_meta_set(st, "grid", grid ? grid : "")) != GS_OK ||
	    (r = ag_store_meta_set(st, "worker", worker ? worker : ""))
	    != GS_OK ||
	    (r = ag_store_meta_set(st, "created_at", now)) != GS_OK)
		goto out;
	if ((r = gs_db_commit(st->db)) != GS_OK)
		goto out;
	in_tx = 0;
	*out = st;
	st = NULL;
out:
	if (in_tx)
		gs_db_rollback(st->db);
	ag_store_close(st);
	gs_free(path);
	return r;
}

/* ag_store_open and ag_store_open_read: dbflags 0 or
 * GS_DB_READ_FALLBACK. */
static int
store_open(const char *home, int dbflags, struct ag_store **out)
{
	struct ag_store *st = NULL;
	struct stat sb;
	char *path = NULL;
	int r = GS_EINTERNAL, initialized = 0;

	*out = NULL;
	if (home == NULL || home[0] == '\0')
		return GS_FAIL(GS_EINVAL, "no home directory (use --home or "
					  "set GRIDAGENT_HOME)");
	if ((r = home_fits(home)) != GS_OK)
		return r;
	if ((path = db_path(home)) == NULL)
		return GS_FAIL(GS_ENOMEM, "open: out of memory");
	/* Look before opening: SQLite would create an empty database, and a
	 * typo in --home must not leave a stray agent.db behind. */
	if (stat(path, &sb) != 0) {
		if (errno == ENOTDIR)
			/* A file where the home should be: init would say
			 * so too, not make one. */
			r = GS_FAIL(GS_EIO, "%s is not a directory", home);
		else if (errno == ENOENT)
			r = GS_FAIL(GS_EPERM, "no agent store in %s; run "
			    "'gridagent init' first", home);
		else
			r = GS_FAIL(GS_EIO, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* Empty: an init that stopped before SQLite wrote (init makes the
	 * file first).  Opening it would migrate it, a write that only
	 * init should make. */
	if (S_ISREG(sb.st_mode) && sb.st_size == 0) {
		r = GS_FAIL(GS_EPERM, "the agent store in %s is empty (not "
		    "initialized); run 'gridagent init' first", home);
		goto out;
	}
	if ((r = store_new(home, path, dbflags, &st)) != GS_OK)
		goto out;
	if ((r = load_meta(st, &initialized)) != GS_OK)
		goto out;
	if (!initialized) {
		r = GS_FAIL(GS_EPERM, "the agent store in %s is not "
		    "initialized; run 'gridagent init' first", home);
		goto out;
	}
	*out = st;
	st = NULL;
out:
	ag_store_close(st);
	gs_free(path);
	return r;
}

int
ag_store_open(const char *home, struct ag_store **out)
{
	return store_open(home, 0, out);
}

int
ag_store_open_read(const char *home, struct ag_store **out)
{
	return store_open(home, GS_DB_READ_FALLBACK, out);
}

int
ag_store_readonly(struct ag_store *st)
{
	return gs_db_readonly(st->db);
}

struct gs_db *
ag_store_db(struct ag_store *st)
{
	return st->db;
}

const struct gs_schema *
ag_store_schema(struct ag_store *st)
{
	return st->schema;
}

void
ag_store_set_progress(struct ag_store *st, struct gs_progress *p)
{
	st->progress = p;
}

struct gs_progress *
ag_store_progress(struct ag_store *st)
{
	return st->progress;
}

void
ag_store_set_schema(struct ag_store *st, struct gs_schema *s)
{
	gs_schema_free(st->schema);
	st->schema = s;
}

const char *
ag_store_home(struct ag_store *st)
{
	return st->home;
}

const char *
ag_store_grid(struct ag_store *st)
{
	return st->grid;
}

const char *
ag_store_worker(struct ag_store *st)
{
	return st->worker;
}

const char *
ag_errmsg(int err)
{
	return gs_errmsg(err);
}

void
ag_store_on_problem(struct ag_store *st, ag_problem_fn fn, void *ctx)
{
	st->on_problem = fn;
	st->problem_ctx = ctx;
}

size_t
ag_problem_count(const struct ag_store *st)
{
	return st->nproblems;
}

void
ag_free(void *p)
{
	gs_free_wiped(p, p != NULL ? strlen(p) : 0);
}

/* ------------------------------------------------ personal data (#6) */

void
ag_store_set_crypt(struct ag_store *st, struct ag_crypt *c)
{
	if (st->crypt != c)
		ag_crypt_free(st->crypt);
	st->crypt = c;
}

struct ag_crypt *
ag_store_crypt(struct ag_store *st)
{
	return st->crypt;
}

void
ag_store_set_protected(struct ag_store *st, int on)
{
	if (on && !st->protect)
		(void)gs_db_exec(st->db, "PRAGMA secure_delete = ON; "
		    "PRAGMA temp_store = MEMORY");
	st->protect = on;
}

int
ag_store_protected(struct ag_store *st)
{
	return st->protect;
}

void
ag_store_set_keystore_fns(struct ag_store *st, ag_keystore_wrap_fn wrap,
    ag_keystore_unwrap_fn unwrap, void *ctx)
{
	st->ks_wrap = wrap;
	st->ks_unwrap = unwrap;
	st->ks_ctx = ctx;
}

void
ag_store_keystore(struct ag_store *st, ag_keystore_wrap_fn *wrap,
    ag_keystore_unwrap_fn *unwrap, void **ctx)
{
	*wrap = st->ks_wrap;
	*unwrap = st->ks_unwrap;
	*ctx = st->ks_ctx;
}

static int audit(struct ag_store *st, int64_t at, const char *action,
    const char *uuid, const char *type, const char *detail);

/* GS_OK when a save may proceed: unprotected, or unlocked. */
static int
need_key(struct ag_store *st)
{
	return st->protect && st->crypt == NULL ? ag_keys_locked_error(st) :
	    GS_OK;
}

/* Blind-index tags of one record's id-number fields. */
/* The most id-number fields a record's index tags cover. */
#define BIDX_MAX 8

struct bidx {
	size_t n;
	const char *field[BIDX_MAX];
	unsigned char tag[BIDX_MAX][AG_BIDX_BYTES];
};

/* The index tags of fields' id numbers into bx; plan (the bulk import's,
 * or NULL) names f's pii id-number fields without a walk of the form. */
static int
bidx_collect(struct ag_store *st, const struct gs_form *f,
    const struct ag_pii_plan *plan, const json_t *fields, struct bidx *bx)
{
	const char *name;
	size_t i, nf = plan != NULL ? 0 : gs_form_nfields(f);
	int r;

	bx->n = 0;
	if (st->crypt == NULL)
		return GS_OK;
	for (i = 0; bx->n < BIDX_MAX; i++) {
		json_t *v;

		if (plan != NULL) {
			if ((name = ag_crypt_plan_idcard(plan, i)) == NULL)
				break;
		} else {
			const struct gs_field *fd;

			if (i >= nf)
				break;
			fd = gs_form_field_at(f, i);
			if (gs_field_kind(fd) != GS_KIND_IDCARD ||
			    !gs_field_pii(fd))
				continue;
			name = gs_field_name(fd);
		}
		v = json_object_get(fields, name);
		if (!json_is_string(v) || json_string_length(v) == 0)
			continue;
		if ((r = ag_crypt_bidx(st->crypt, json_string_value(v),
		    bx->tag[bx->n])) != GS_OK)
			return r;
		bx->field[bx->n++] = name;
	}
	return GS_OK;
}

static int
bidx_apply(struct gs_stmt *s, const char *uuid, const struct bidx *bx)
{
	size_t i;
	int r;

	/* No copies of the texts: they outlive the step (db.h). */
	for (i = 0; i < bx->n; i++)
		if ((r = gs_stmt_bind_blob(s, 1, bx->tag[i], AG_BIDX_BYTES))
		    != GS_OK ||
		    (r = gs_stmt_bind_text_nocopy(s, 2, uuid)) != GS_OK ||
		    (r = gs_stmt_bind_text_nocopy(s, 3, bx->field[i]))
		    != GS_OK ||
		    (r = db_done(gs_stmt_step(s))) != GS_OK)
			return r;
	return GS_OK;
}

/*
 * Seals the pii of a plain fields object for storing (index tags into bx
 * when bx is not NULL).  Unprotected store: nothing happens.
 */
static int
seal_fields(struct ag_store *st, const struct gs_form *f, const char *uuid,
    int fv, json_t *fields, struct bidx *bx)
{
	int r;

	if (bx != NULL)
		bx->n = 0;
	if (!st->protect)
		return GS_OK;
	if (st->crypt == NULL)
		return ag_keys_locked_error(st);
	if (bx != NULL && (r = bidx_collect(st, f, NULL, fields, bx))
	    != GS_OK)
		return r;
	return ag_crypt_seal(st->crypt, f, uuid, fv, fields);
}

/* 1 when the n bytes at s go into a JSON string as they are (no control
 * character, quote or backslash: put_json_string's fast path). */
static int
plain_text(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] == '"' || p[i] == '\\')
			return 0;
	return 1;
}

/*
 * put_member of a member whose key is klen bytes, written in one piece
 * when it is the common case, a string with nothing to escape in it or
 * in its key (the same bytes put_member writes: ,"k":"v").
 */
static int
put_member_fast(struct gs_buf *b, const char *k, size_t klen,
    const json_t *x, int *first)
{
	const char *v;
	size_t vlen;
	char *o;
	int r;

	if (!json_is_string(x))
		return put_member(b, k, x, first);
	v = json_string_value(x);
	vlen = json_string_length(x);
	if (!plain_text(k, klen) || !plain_text(v, vlen))
		return put_member(b, k, x, first);
	if ((r = gs_buf_reserve(b, klen + vlen + 6)) != GS_OK)
		return r;
	o = b->data + b->len;
	if (!*first)
		*o++ = ',';
	*o++ = '"';
	memcpy(o, k, klen);
	o += klen;
	*o++ = '"';
	*o++ = ':';
	*o++ = '"';
	memcpy(o, v, vlen);
	o += vlen;
	*o++ = '"';
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
	*first = 0;
	return GS_OK;
}

/*
 * The stored text of a validated, plain fields object, appended to b (no
 * NUL): what drop_nulls, seal_fields and then put_json give, but written
 * straight from the object in one walk: null members (absent) and the
 * pii members left out, the sealed member added last
 * (ag_crypt_seal_text, which leaves null members out too), so no member
 * is moved in or out of it and none deleted (the bulk import's
 * readers).  bx as seal_fields; plan as ag_crypt_seal_text's; sealed is
 * scratch space.
 */
static int
put_stored(struct ag_store *st, const struct gs_form *f,
    const struct ag_pii_plan *plan, const char *uuid, int fv,
    const json_t *fields, struct bidx *bx, struct gs_buf *b,
    struct gs_buf *sealed)
{
	const char *keys[AG_PII_MAX_KEYS], *k;
	size_t nkeys = 0, j = 0, klen;
	json_t *x;
	int r, first = 1;

	bx->n = 0;
	if (st->protect) {
		if (st->crypt == NULL)
			return ag_keys_locked_error(st);
		gs_buf_reset(sealed);
		if ((r = bidx_collect(st, f, plan, fields, bx)) != GS_OK ||
		    (r = ag_crypt_seal_text(st->crypt, f, plan, uuid, fv,
		    fields, sealed, keys, &nkeys)) != GS_OK)
			return r;
	}
	if ((r = gs_buf_putc(b, '{')) != GS_OK)
		return r;
	/* keys[] are the object's own key strings in its order. */
	json_object_keylen_foreach((json_t *)fields, k, klen, x) {
		if (j < nkeys && k == keys[j]) {
			j++;
			continue;
		}
		if (json_is_null(x))
			continue;
		if ((r = put_member_fast(b, k, klen, x, &first)) != GS_OK)
			return r;
	}
	/* Every pii member was left out, or none of this is stored. */
	if (j != nkeys)
		return GS_FAIL(GS_EINTERNAL, "record %s: sealed members out "
		    "of order", uuid);
	if (nkeys > 0 &&
	    ((!first && (r = gs_buf_putc(b, ',')) != GS_OK) ||
	    (r = gs_buf_puts(b, "\"" AG_PII_MEMBER "\":\"")) != GS_OK ||
	    (r = gs_buf_append(b, sealed->data, sealed->len)) != GS_OK ||
	    (r = gs_buf_putc(b, '"')) != GS_OK))
		return r;
	return gs_buf_putc(b, '}');
}

/* Opens a stored fields object in place (GS_EPERM when locked and it
 * holds sealed data). */
static int
open_fields(struct ag_store *st, const char *uuid, int fv, json_t *fields)
{
	return ag_crypt_open(st->crypt, uuid, fv, fields);
}

/* A stored record's fields text, parsed and opened (*out: a new
 * reference). */
static int
open_stored(struct ag_store *st, const char *uuid, int fv, const char *text,
    json_t **out)
{
	json_error_t je;
	json_t *o;
	int r;

	*out = NULL;
	o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return GS_FAIL(GS_ECORRUPT, "record %s: stored fields are not a "
		    "JSON object", uuid);
	}
	if ((r = open_fields(st, uuid, fv, o)) != GS_OK) {
		json_decref(o);
		return r;
	}
	*out = o;
	return GS_OK;
}

/*
 * The fields text of a stored record for display: opened (plain), or
 * masked when mask is set (a locked store then shows "[locked]").
 * *out is NULL when the stored text can be used as it is; free it with
 * gs_free_wiped.
 */
static int
render_fields(struct ag_store *st, const char *type, const char *uuid,
    int fv, const char *text, int mask, char **out)
{
	const struct gs_form *f = gs_schema_form(st->schema, type);
	json_t *o = NULL;
	json_error_t je;
	int r = GS_EINTERNAL;

	*out = NULL;
	if (!mask && strstr(text, "\"" AG_PII_MEMBER "\"") == NULL)
		return GS_OK;
	if ((o = json_loads(text, JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    !json_is_object(o)) {
		r = GS_FAIL(GS_ECORRUPT, "record %s: stored fields are not a "
		    "JSON object", uuid);
		goto out;
	}
	if ((!mask || st->crypt != NULL) &&
	    (r = open_fields(st, uuid, fv, o)) != GS_OK)
		goto out;
	if (mask && f != NULL && (r = ag_crypt_mask(f, o)) != GS_OK)
		goto out;
	if ((*out = dump_shown(o)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	r = GS_OK;
out:
	json_decref(o);
	return r;
}

int
ag_store_open_fields_cb(void *ctx, const char *uuid, int form_version,
    json_t *fields)
{
	struct ag_store *st = ctx;

	return open_fields(st, uuid, form_version, fields);
}

int
ag_store_open_text_cb(void *ctx, const char *uuid, int form_version,
    const char *sealed, size_t len, struct gs_buf *out)
{
	struct ag_store *st = ctx;

	return ag_crypt_open_text(st->crypt, uuid, form_version, sealed, len,
	    out);
}

int
ag_store_audit(struct ag_store *st, const char *action, const char *uuid,
    const char *type, const char *detail)
{
	/* A store opened read-only (ag_store_open_read on a home that
	 * cannot be written) has nowhere to keep the row.  What is read
	 * from it is still shown: it is the worker's own data, behind the
	 * same unlock, and a worker whose flash went read-only needs it
	 * most; but not without saying that this one went unrecorded. */
	if (gs_db_readonly(st->db)) {
		gs_log(GS_LOG_WARNING, "the home is read-only: this %s is "
		    "not recorded in the audit", action);
		return GS_OK;
	}
	return audit(st, gs_now_ms(), action, uuid, type, detail);
}

/* Seals every record and change of a store being protected for the first
 * time (inside the caller's transaction). */
int
ag_store_seal_existing(struct ag_store *st, const unsigned char *dek)
{
	struct ag_crypt *save = st->crypt, *c = NULL;
	struct gs_stmt *sel = NULL, *upd = NULL;
	int pass, r = GS_EINTERNAL, save_protect = st->protect;

	if ((r = ag_crypt_new(dek, &c)) != GS_OK)
		return r;
	st->crypt = c;
	st->protect = 1;
	for (pass = 0; pass < 2; pass++) {
		if ((r = gs_stmt_prepare(st->db, pass == 0 ?
		    "SELECT uuid, type, form_version, fields, uuid FROM record" :
		    "SELECT uuid, type, form_version, fields, change_id FROM "
		    "change WHERE fields IS NOT NULL", &sel)) != GS_OK ||
		    (r = gs_stmt_prepare(st->db, pass == 0 ?
		    "UPDATE record SET fields = ?2 WHERE uuid = ?1" :
		    "UPDATE change SET fields = ?2 WHERE change_id = ?1", &upd))
		    != GS_OK)
			goto out;
		while ((r = gs_stmt_step(sel)) == GS_ROW) {
			const struct gs_form *f = gs_schema_form(st->schema,
			    text_or_empty(sel, 1));
			const char *uuid = text_or_empty(sel, 0);
			json_t *o = NULL;
			json_error_t je;
			struct bidx bx;
			char *t = NULL;

			if (f == NULL)
				continue;
			o = json_loads(text_or_empty(sel, 3), 0, &je);
			if (o == NULL || ag_crypt_is_sealed(o)) {
				json_decref(o);
				continue;
			}
			r = seal_fields(st, f, uuid, (int)gs_stmt_int64(sel, 2),
			    o, pass == 0 ? &bx : NULL);
			if (r == GS_OK && (t = dump(o)) == NULL)
				r = GS_FAIL(GS_ENOMEM, "out of memory");
			if (r == GS_OK)
				r = gs_stmt_bind_text(upd, 1,
				    text_or_empty(sel, 4));
			if (r == GS_OK)
				r = gs_stmt_bind_text(upd, 2, t);
			if (r == GS_OK)
				r = db_done(gs_stmt_step(upd));
			if (r == GS_OK && pass == 0)
				r = bidx_apply(st->bidx_ins, uuid, &bx);
			json_decref(o);
			gs_free(t);
			if (r != GS_OK)
				goto out;
		}
		if (r != GS_DONE)
			goto out;
		gs_stmt_finalize(sel);
		gs_stmt_finalize(upd);
		sel = upd = NULL;
	}
	r = GS_OK;
out:
	gs_stmt_finalize(sel);
	gs_stmt_finalize(upd);
	st->crypt = save;
	st->protect = save_protect;
	ag_crypt_free(c);
	return r;
}

/* ------------------------------------------------------------ writes */

static int
audit(struct ag_store *st, int64_t at, const char *action,
    const char *uuid, const char *type, const char *detail)
{
	struct gs_stmt *s = st->audit_ins;
	int r;

	if ((r = gs_stmt_bind_int64(s, 1, at)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, action)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, type)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 5, detail)) != GS_OK)
		return r;
	return db_done(gs_stmt_step(s));
}

/*
 * Inserts a change row (state unsent).  fields NULL for a delete.  The
 * change_id is a fresh UUIDv7: the platform applies each change_id once,
 * so an envelope sent twice can never apply a change twice.
 */
static int
insert_change(struct ag_store *st, const char *id, const char *uuid,
    const char *type, int form_version, const char *grid, const char *op,
    int64_t base_rev, const char *fields, const char *reason, int64_t now)
{
	struct gs_stmt *s = st->chg_ins;
	char change_id[GS_UUID_LEN + 1];
	int r;

	if (id == NULL) {
		gs_uuid_v7(change_id);
		id = change_id;
	}
	/* No copies: every text outlives the step (db.h). */
	if ((r = gs_stmt_bind_text_nocopy(s, 1, id)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 2, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 3, type)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, form_version)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 5, grid)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 6, op)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 7, base_rev)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 8, fields)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 9, reason)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 10, st->worker)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 11, now)) != GS_OK)
		return r;
	return db_done(gs_stmt_step(s));
}

/*
 * Inserts a new, validated record and its creation change (inside the
 * caller's transaction).  text is the compact JSON of the fields, already
 * sealed for the uuid the caller made (seal_fields); bx its index tags
 * (NULL: the caller inserts them); change_id the creation change's id
 * (NULL: a fresh one).
 */
static int
insert_new(struct ag_store *st, const struct gs_form *f, const char *text,
    int64_t now, const char uuid[GS_UUID_LEN + 1], const char *change_id,
    const struct bidx *bx)
{
	struct gs_stmt *s = st->rec_ins;
	const char *type = gs_form_type(f);
	char id[GS_UUID_LEN + 1];
	int fv = gs_form_version(f);
	int r;

	if (bx != NULL && (r = bidx_apply(st->bidx_ins, uuid, bx)) != GS_OK)
		return r;
	/* No copies: every text outlives the step (db.h). */
	if ((r = gs_stmt_bind_text_nocopy(s, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 2, type)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, fv)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 4, st->grid)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 5, text)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, now)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 7, st->worker)) != GS_OK)
		return r;
	if ((r = db_done(gs_stmt_step(s))) != GS_OK)
		return r;
	/* The creation's change is one small row until the outbox batches
	 * it or an edit coalesces into it (0008-pending-creation.sql); it
	 * carries no fields: it sends the record's as they are then. */
	if (change_id == NULL) {
		gs_uuid_v7(id);
		change_id = id;
	}
	s = st->pend_ins;
	if ((r = gs_stmt_bind_text_nocopy(s, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 2, change_id)) != GS_OK)
		return r;
	return db_done(gs_stmt_step(s));
}

int
ag_store_pending_flush(struct gs_db *db)
{
	return gs_db_exec(db, PEND_MAKE "; DELETE FROM pending_creation");
}

/*
 * Writes the change row of a record's pending creation, if it has one,
 * and drops it from pending_creation (inside the caller's transaction):
 * from then on the creation is an unsent change like any other.  A
 * creation sealed into a batch in flight (sealed_creation) is written as
 * the batched change it is, state 1 with its batch: the edit coming next
 * makes a change of its own, and the receipt delivers this one as it
 * delivers every batched change row.  Never as an unsent change: that
 * would send the creation twice.  A delivered creation (its batch acked)
 * is left where it is.
 */
static int
materialize(struct ag_store *st, const char *uuid)
{
	struct gs_stmt *make[2] = { st->pend_make, st->sealed_make };
	struct gs_stmt *del[2] = { st->pend_del, st->sealed_del };
	int i, r;

	for (i = 0; i < 2; i++) {
		if ((r = gs_stmt_bind_text(make[i], 1, uuid)) != GS_OK ||
		    (r = db_done(gs_stmt_step(make[i]))) != GS_OK)
			return r;
		if (gs_db_changes(st->db) == 0)
			continue;
		if ((r = gs_stmt_bind_text(del[i], 1, uuid)) != GS_OK ||
		    (r = db_done(gs_stmt_step(del[i]))) != GS_OK)
			return r;
		if (gs_db_changes(st->db) != 1)
			return GS_FAIL(GS_EINTERNAL, "record %s: its creation "
			    "was written but not dropped", uuid);
	}
	return GS_OK;
}

/*
 * Validates and saves one new record from a parsed object (consumed).
 * Validation and encoding happen before BEGIN: the write lock is held only
 * for the three inserts and the commit, so a sync running beside the
 * worker's app waits microseconds, not the length of a validation.
 */
static int
collect_fields(struct ag_store *st, const struct gs_form *f, json_t *fields,
    char uuid_out[AG_UUID_LEN + 1])
{
	struct gs_problems p;
	struct bidx bx;
	char uuid[GS_UUID_LEN + 1];
	char *text = NULL;
	int64_t now;
	int r = GS_EINTERNAL, in_tx = 0;

	uuid_out[0] = '\0';
	if ((r = need_key(st)) != GS_OK)
		goto out;
	if ((r = gs_record_validate(st->schema, f, fields, &p)) != GS_OK) {
		if (r == GS_EVALIDATION) {
			report_all(st, 0, &p);
			r = fail_problems(&p);
		}
		goto out;
	}
	drop_nulls(fields);
	gs_uuid_v7(uuid);
	if ((r = seal_fields(st, f, uuid, gs_form_version(f), fields, &bx))
	    != GS_OK)
		goto out;
	if ((text = dump(fields)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "collect: cannot encode the record");
		goto out;
	}
	now = record_now();
	if ((r = gs_db_begin(st->db)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = insert_new(st, f, text, now, uuid, NULL, &bx)) != GS_OK ||
	    (r = audit(st, now, "create", uuid, gs_form_type(f), NULL))
	    != GS_OK)
		goto out;
	if ((r = gs_db_commit(st->db)) != GS_OK)
		goto out;
	in_tx = 0;
	memcpy(uuid_out, uuid, sizeof(uuid));
out:
	if (in_tx)
		gs_db_rollback(st->db);
	gs_free(text);
	json_decref(fields);
	return r;
}

int
ag_collect(struct ag_store *st, const char *type, const char *json,
    size_t len, char uuid_out[AG_UUID_LEN + 1])
{
	const struct gs_form *f = NULL;
	json_t *fields = NULL;
	char why[256];
	int r;

	uuid_out[0] = '\0';
	st->nproblems = 0;
	if ((r = find_form(st, type, &f)) != GS_OK)
		return r;
	if ((r = parse_object(json, len, &fields, why, sizeof(why)))
	    != GS_OK) {
		report(st, 0, "", "parse", why);
		return GS_FAIL(r, "%s", why);
	}
	return collect_fields(st, f, fields, uuid_out);
}

int
ag_collect_args(struct ag_store *st, const char *type, char *const *args,
    int n, char uuid_out[AG_UUID_LEN + 1])
{
	const struct gs_form *f = NULL;
	struct gs_problems p;
	json_t *fields = NULL;
	int r;

	uuid_out[0] = '\0';
	st->nproblems = 0;
	if ((r = find_form(st, type, &f)) != GS_OK)
		return r;
	if ((fields = json_object()) == NULL)
		return GS_FAIL(GS_ENOMEM, "collect: out of memory");
	if ((r = gs_fields_from_args(f, args, n, fields, &p)) != GS_OK) {
		if (r == GS_EVALIDATION) {
			report_all(st, 0, &p);
			r = fail_problems(&p);
		}
		json_decref(fields);
		return r;
	}
	return collect_fields(st, f, fields, uuid_out);
}

/* A record row loaded for a read-modify-write. */
struct current {
	char type[64];
	char grid[64];
	int form_version;
	int64_t rev;
	int deleted;
	char *fields; /* owned */
};

/*
 * Loads a record (inside the caller's transaction for writes, so that
 * what is merged is what is there when the write lock is held).
 */
static int
load_record(struct ag_store *st, const char *uuid, struct current *c)
{
	struct gs_stmt *s = st->rec_get;
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_FAIL(GS_ENOTFOUND, "no record %s", uuid);
	if (r != GS_ROW)
		return r;
	gs_strlcpy(c->type, text_or_empty(s, 0), sizeof(c->type));
	c->form_version = (int)gs_stmt_int64(s, 1);
	gs_strlcpy(c->grid, text_or_empty(s, 2), sizeof(c->grid));
	c->fields = gs_strdup(text_or_empty(s, 3));
	c->rev = gs_stmt_int64(s, 4);
	c->deleted = (int)gs_stmt_int64(s, 5);
	gs_stmt_reset(s);
	if (c->fields == NULL)
		return GS_FAIL(GS_ENOMEM, "load: out of memory");
	return GS_OK;
}

/*
 * The unsent change of a record, if any: *found, its change_id, op, and
 * fields text (owned, NULL for a delete).
 */
static int
load_unsent(struct ag_store *st, const char *uuid, int *found,
    char change_id[GS_UUID_LEN + 1], char op[8], char **fields, int *fv)
{
	struct gs_stmt *s = st->chg_unsent;
	const char *t;
	int r;

	*found = 0;
	*fields = NULL;
	if ((r = materialize(st, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_OK;
	if (r != GS_ROW)
		return r;
	*found = 1;
	gs_strlcpy(change_id, text_or_empty(s, 0), GS_UUID_LEN + 1);
	gs_strlcpy(op, text_or_empty(s, 1), 8);
	if (fv != NULL)
		*fv = (int)gs_stmt_int64(s, 3);
	if ((t = gs_stmt_text(s, 2)) != NULL && (*fields = gs_strdup(t))
	    == NULL)
		r = GS_FAIL(GS_ENOMEM, "load: out of memory");
	else
		r = GS_OK;
	gs_stmt_reset(s);
	return r;
}

static int
update_change(struct ag_store *st, const char *change_id, const char *op,
    const char *fields, const char *reason, int form_version, int64_t now)
{
	struct gs_stmt *s = st->chg_upd;
	int r;

	if ((r = gs_stmt_bind_text(s, 1, change_id)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, op)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, fields)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, reason)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, form_version)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, now)) != GS_OK)
		return r;
	if ((r = db_done(gs_stmt_step(s))) != GS_OK)
		return r;
	/* Exactly one row, or our idea of the unsent change was wrong: stop
	 * before a second unsent change could be made beside it. */
	if (gs_db_changes(st->db) != 1)
		return GS_FAIL(GS_EINTERNAL, "unsent change %s vanished",
		    change_id);
	return GS_OK;
}

static void
current_release(struct current *c)
{
	gs_free(c->fields);
	c->fields = NULL;
}

/*
 * Applies an edit (consumed) to a record: merge, validate the merged
 * record, then in one transaction update the record, fold the edit into
 * the unsent change or queue a new one, and audit.  The record is read
 * inside the transaction (BEGIN IMMEDIATE holds the write lock), so two
 * processes editing at once cannot lose one another's fields.
 */
static int
edit_fields(struct ag_store *st, const char *uuid, json_t *edit,
    const struct ag_edit_hook *hook)
{
	struct current cur = { 0 };
	struct gs_problems p;
	const struct gs_form *f = NULL;
	json_t *merged = NULL, *chg = NULL, *old = NULL, *names = NULL;
	char *text = NULL, *chg_text = NULL, *old_text = NULL, *detail = NULL;
	char change_id[GS_UUID_LEN + 1], op[8];
	const char *k;
	json_t *v;
	json_error_t err;
	struct bidx bx_old, bx_new;
	int64_t now;
	int r = GS_EINTERNAL, in_tx = 0, found = 0, old_fv = 0, creation = 0;

	if (json_object_size(edit) == 0) {
		r = GS_FAIL(GS_EINVAL, "nothing to change: give at least one "
				       "field");
		goto out;
	}
	if ((r = gs_db_begin(st->db)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = load_record(st, uuid, &cur)) != GS_OK)
		goto out;
	if (cur.deleted) {
		r = GS_FAIL(GS_ENOTFOUND, "record %s is deleted", uuid);
		goto out;
	}
	if ((f = gs_schema_form(st->schema, cur.type)) == NULL) {
		r = GS_FAIL(GS_EUNSUPPORTED, "record %s has type '%s', which "
		    "this program does not know", uuid, cur.type);
		goto out;
	}
	/* Open the sealed pii to merge and validate the whole record; the
	 * old id numbers' index rows go, the new ones come. */
	if ((r = open_stored(st, uuid, cur.form_version, cur.fields,
	    &merged)) != GS_OK ||
	    (r = bidx_collect(st, f, NULL, merged, &bx_old)) != GS_OK)
		goto out;
	/* A hook (gridagent attach) builds its edit from the fields as
	 * they are inside this transaction: no lost update. */
	if (hook != NULL && hook->prepare != NULL &&
	    (r = hook->prepare(hook->ctx, cur.type, merged, edit)) != GS_OK)
		goto out;
	if (json_object_update(merged, edit) != 0) {
		r = GS_FAIL(GS_ENOMEM, "edit: out of memory");
		goto out;
	}
	/* The merged record must be valid as a whole (null = absent), and
	 * name no other record by its own uuid. */
	if ((r = gs_record_validate(st->schema, f, merged, &p)) != GS_OK ||
	    (r = gs_record_check_self(f, merged, uuid, &p)) != GS_OK) {
		if (r == GS_EVALIDATION) {
			report_all(st, 0, &p);
			r = fail_problems(&p);
		}
		goto out;
	}
	/* The change carries the edited fields, normalized as validation
	 * left them in merged; null stays null: "clear this field". */
	if ((chg = json_object()) == NULL || (names = json_array()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "edit: out of memory");
		goto out;
	}
	json_object_foreach(edit, k, v) {
		json_t *nv = json_object_get(merged, k);

		if (json_object_set(chg, k, nv ? nv : json_null()) != 0 ||
		    json_array_append_new(names, json_string(k)) != 0) {
			r = GS_FAIL(GS_ENOMEM, "edit: out of memory");
			goto out;
		}
	}
	drop_nulls(merged);
	if ((r = load_unsent(st, uuid, &found, change_id, op, &old_text,
	    &old_fv)) != GS_OK)
		goto out;
	/* An unsent creation (no fields of its own) stays one: it sends the
	 * merged record as it is when batched. */
	creation = found && old_text == NULL && strcmp(op, "upsert") == 0;
	if (found && old_text != NULL) {
		/* Fold into the unsent change: later values win. */
		old = json_loads(old_text, JSON_REJECT_DUPLICATES, &err);
		if (old == NULL || !json_is_object(old)) {
			r = GS_FAIL(GS_ECORRUPT, "change %s: stored fields are "
			    "not a JSON object", change_id);
			goto out;
		}
		if ((r = open_fields(st, uuid, old_fv, old)) != GS_OK)
			goto out;
		if (json_object_update(old, chg) != 0) {
			r = GS_FAIL(GS_ENOMEM, "edit: out of memory");
			goto out;
		}
		json_decref(chg);
		chg = old;
		old = NULL;
	}
	/* Both are sealed under the form version they are stored with. */
	if ((r = seal_fields(st, f, uuid, gs_form_version(f), merged,
	    &bx_new)) != GS_OK ||
	    (!creation && (r = seal_fields(st, f, uuid, gs_form_version(f),
	    chg, NULL)) != GS_OK))
		goto out;
	text = dump(merged);
	chg_text = creation ? NULL : dump(chg);
	detail = json_dumps(names, JSON_COMPACT);
	if (text == NULL || (!creation && chg_text == NULL) ||
	    detail == NULL) {
		r = GS_FAIL(GS_ENOMEM, "edit: out of memory");
		goto out;
	}
	now = record_now();
	{
		struct gs_stmt *s = st->rec_upd;

		if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 2, text)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 3, gs_form_version(f)))
		    != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 4, now)) != GS_OK ||
		    (r = db_done(gs_stmt_step(s))) != GS_OK)
			goto out;
	}
	if (found) {
		/* Unsent and not a delete (a delete would have marked the
		 * record deleted above). */
		r = update_change(st, change_id, "upsert", chg_text, NULL,
		    gs_form_version(f), now);
	} else {
		r = insert_change(st, NULL, uuid, cur.type,
		    gs_form_version(f), cur.grid, "upsert", cur.rev, chg_text,
		    NULL, now);
	}
	if (r != GS_OK)
		goto out;
	if ((r = bidx_apply(st->bidx_del, uuid, &bx_old)) != GS_OK ||
	    (r = bidx_apply(st->bidx_ins, uuid, &bx_new)) != GS_OK)
		goto out;
	if ((r = audit(st, now, "edit", uuid, cur.type, detail)) != GS_OK)
		goto out;
	if (hook != NULL && hook->commit != NULL &&
	    (r = hook->commit(hook->ctx, st, uuid, cur.type, now)) != GS_OK)
		goto out;
	if ((r = gs_db_commit(st->db)) != GS_OK)
		goto out;
	in_tx = 0;
out:
	if (in_tx)
		gs_db_rollback(st->db);
	current_release(&cur);
	json_decref(edit);
	json_decref(merged);
	json_decref(chg);
	json_decref(old);
	json_decref(names);
	gs_free(text);
	gs_free(chg_text);
	gs_free(old_text);
	gs_free(detail);
	return r;
}

int
ag_edit_hooked(struct ag_store *st, const char *uuid, json_t *edit,
    const struct ag_edit_hook *hook)
{
	st->nproblems = 0;
	if (check_uuid(uuid) != GS_OK) {
		json_decref(edit);
		return GS_EINVAL;
	}
	return edit_fields(st, uuid, edit, hook);
}

int
ag_edit(struct ag_store *st, const char *uuid, const char *json, size_t len)
{
	json_t *edit = NULL;
	char why[256];
	int r;

	st->nproblems = 0;
	if ((r = check_uuid(uuid)) != GS_OK)
		return r;
	if ((r = parse_object(json, len, &edit, why, sizeof(why))) != GS_OK) {
		report(st, 0, "", "parse", why);
		return GS_FAIL(r, "%s", why);
	}
	return edit_fields(st, uuid, edit, NULL);
}

int
ag_edit_args(struct ag_store *st, const char *uuid, char *const *args,
    int n)
{
	struct current cur = { 0 };
	const struct gs_form *f = NULL;
	struct gs_problems p;
	json_t *edit = NULL;
	int r;

	st->nproblems = 0;
	if ((r = check_uuid(uuid)) != GS_OK)
		return r;
	/* The type types the arguments; it never changes, so reading it
	 * outside the edit's transaction is safe. */
	if ((r = load_record(st, uuid, &cur)) != GS_OK)
		goto out;
	if (cur.deleted) {
		r = GS_FAIL(GS_ENOTFOUND, "record %s is deleted", uuid);
		goto out;
	}
	if ((f = gs_schema_form(st->schema, cur.type)) == NULL) {
		r = GS_FAIL(GS_EUNSUPPORTED, "record %s has type '%s', which "
		    "this program does not know", uuid, cur.type);
		goto out;
	}
	if ((edit = json_object()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "edit: out of memory");
		goto out;
	}
	if ((r = gs_fields_from_args(f, args, n, edit, &p)) != GS_OK) {
		if (r == GS_EVALIDATION) {
			report_all(st, 0, &p);
			r = fail_problems(&p);
		}
		goto out;
	}
	r = edit_fields(st, uuid, edit, NULL);
	edit = NULL;
out:
	current_release(&cur);
	json_decref(edit);
	return r;
}

int
ag_delete(struct ag_store *st, const char *uuid, const char *reason)
{
	struct current cur = { 0 };
	char change_id[GS_UUID_LEN + 1], op[8];
	char *old_text = NULL, *detail = NULL;
	json_t *d = NULL;
	int64_t now;
	int r = GS_EINTERNAL, in_tx = 0, found = 0;

	st->nproblems = 0;
	if ((r = check_uuid(uuid)) != GS_OK)
		return r;
	/* The reason travels to the platform in the change: cap it like any
	 * other field. */
	if (reason != NULL && strlen(reason) > 500)
		return GS_FAIL(GS_ETOOBIG, "the reason is over 500 bytes");
	if (reason != NULL) {
		struct gs_utf8_scan sc;

		/* It is shown to admins on the platform, in terminals and
		 * CSV, like a multi-line text field: tab and line breaks,
		 * but no other control character (an escape sequence). */
		if (gs_utf8_scan(reason, strlen(reason), &sc) == 0 &&
		    sc.ctrl_at != SIZE_MAX)
			return GS_FAIL(GS_EINVAL, "the reason should have no "
			    "control characters, not U+%04X at character %zu",
			    (unsigned)sc.ctrl, sc.ctrl_at + 1);
		/* The audit detail is JSON; jansson checks the UTF-8. */
		if ((d = json_pack("{s:s}", "reason", reason)) == NULL)
			return GS_FAIL(GS_EINVAL, "the reason is not valid "
						  "UTF-8");
		detail = json_dumps(d, JSON_COMPACT);
		json_decref(d);
		if (detail == NULL)
			return GS_FAIL(GS_ENOMEM, "delete: out of memory");
	}
	if ((r = gs_db_begin(st->db)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = load_record(st, uuid, &cur)) != GS_OK)
		goto out;
	if (cur.deleted) {
		r = GS_FAIL(GS_ENOTFOUND, "record %s is deleted already",
		    uuid);
		goto out;
	}
	now = record_now();
	if ((r = load_unsent(st, uuid, &found, change_id, op, &old_text,
	    NULL)) != GS_OK)
		goto out;
	/* Pending edits are superseded: one delete goes out, with the
	 * base_rev of the change it replaces. */
	if (found)
		r = update_change(st, change_id, "delete", NULL, reason,
		    cur.form_version, now);
	else
		r = insert_change(st, NULL, uuid, cur.type,
		    cur.form_version, cur.grid, "delete", cur.rev, NULL, reason,
		    now);
	if (r != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_text(st->rec_del, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(st->rec_del, 2, now)) != GS_OK ||
	    (r = db_done(gs_stmt_step(st->rec_del))) != GS_OK)
		goto out;
	if ((r = audit(st, now, "delete", uuid, cur.type, detail)) != GS_OK)
		goto out;
	if ((r = gs_db_commit(st->db)) != GS_OK)
		goto out;
	in_tx = 0;
out:
	if (in_tx)
		gs_db_rollback(st->db);
	current_release(&cur);
	gs_free(old_text);
	gs_free(detail);
	return r;
}

/* ------------------------------------------------------------ import */

/*
 * The uuids of an import, handed out only after the commit: printing
 * them as they are made would tell the worker that records were saved
 * which a later bad line, a full disk or a crash then takes back.
 */
struct uuids {
	char (*v)[GS_UUID_LEN + 1];
	size_t n, cap;
};

static int
uuids_push(struct uuids *u, const char *uuid)
{
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 1024;
		void *p = gs_realloc(u->v, cap * sizeof(*u->v));

		if (p == NULL)
			return GS_FAIL(GS_ENOMEM, "import: out of memory");
		u->v = p;
		u->cap = cap;
	}
	memcpy(u->v[u->n++], uuid, GS_UUID_LEN + 1);
	return GS_OK;
}

/*
 * The blind-index rows of a bulk import, inserted at its end in key
 * order.  Their tags are keyed hashes, so in input order every insert
 * lands at a random place of pii_index: once the record pages of the
 * import had pushed those out of the page cache, SQLite read and wrote
 * them again and again (100,000 protected persons: 29,500 pread calls).
 * In key order each page of the index is written once.  Inserting them
 * in runs while the readers still work (every 16,384 rows, or every
 * chunk) was tried: the runs pushed each other's pages out of the cache
 * again (20,700 -> 28,000-42,000 pread calls) and the import got slower.
 *
 * Each row carries its own copy of the uuid: the sort puts the rows in
 * a random order of the import, and a pointer into the array of uuids
 * made every row's bind a cache miss.  field is a name of the form.
 */
struct tags {
	struct tag {
		unsigned char tag[AG_BIDX_BYTES];
		char uuid[GS_UUID_LEN + 1];
		const char *field;
	} *v;
	size_t n, cap;
};

static int
tags_push(struct tags *t, const struct bidx *bx, const char *uuid)
{
	size_t i;

	for (i = 0; i < bx->n; i++) {
		if (t->n == t->cap) {
			size_t cap = t->cap ? t->cap * 2 : 1024;
			void *p = gs_realloc(t->v, cap * sizeof(*t->v));

			if (p == NULL)
				return GS_FAIL(GS_ENOMEM, "import: out of memory");
			t->v = p;
			t->cap = cap;
		}
		memcpy(t->v[t->n].tag, bx->tag[i], AG_BIDX_BYTES);
		memcpy(t->v[t->n].uuid, uuid, sizeof(t->v[t->n].uuid));
		t->v[t->n].field = bx->field[i];
		t->n++;
	}
	return GS_OK;
}

/* pii_index's key order: tag (a blob, memcmp), uuid, field (BINARY text:
 * strcmp's order for text without NUL). */
static int
tag_cmp(const void *a_, const void *b_)
{
	const struct tag *a = a_, *b = b_;
	int c = memcmp(a->tag, b->tag, AG_BIDX_BYTES);

	if (c == 0)
		c = strcmp(a->uuid, b->uuid);
	return c != 0 ? c : strcmp(a->field, b->field);
}

/* The first 16 bits of a row's tag, its bucket of tags_sort. */
#define TAG_TOP(x) ((size_t)(x)->tag[0] << 8 | (x)->tag[1])

/*
 * Sorts t into key order.  The tags are keyed hashes, evenly spread: a
 * counting sort by their first 16 bits leaves about one row per bucket,
 * and one pass of insertion sort (tag_cmp) orders what shares a bucket;
 * rows of different buckets are in order already, so it moves nothing
 * across them.  About a quarter of qsort's work for 100,000 rows, on the
 * inserting thread while the other core is idle.  Out of memory (the
 * second array or the counts): qsort in place.
 */
static void
tags_sort(struct tags *t)
{
	struct tag *o, x;
	size_t *cnt, i, j, nb = (size_t)1 << 16;

	if (t->n < 4096 ||
	    (o = gs_malloc(t->n * sizeof(*o))) == NULL) {
		qsort(t->v, t->n, sizeof(*t->v), tag_cmp);
		return;
	}
	if ((cnt = gs_calloc(nb + 1, sizeof(*cnt))) == NULL) {
		gs_free(o);
		qsort(t->v, t->n, sizeof(*t->v), tag_cmp);
		return;
	}
	for (i = 0; i < t->n; i++)
		cnt[TAG_TOP(&t->v[i]) + 1]++;
	for (i = 1; i <= nb; i++)
		cnt[i] += cnt[i - 1];
	for (i = 0; i < t->n; i++)
		o[cnt[TAG_TOP(&t->v[i])]++] = t->v[i];
	gs_free(cnt);
	for (i = 1; i < t->n; i++) {
		if (tag_cmp(&o[i - 1], &o[i]) <= 0)
			continue;
		x = o[i];
		for (j = i; j > 0 && tag_cmp(&o[j - 1], &x) > 0; j--)
			o[j] = o[j - 1];
		o[j] = x;
	}
	gs_free(t->v);
	t->v = o;
	t->cap = t->n;
}

/* Rows of pii_index per INSERT in tags_apply (the same grouping as the
 * import's records, IMPORT_ROWS below). */
#define TAGS_ROWS 64

/* Binds row i of t as row j of a pii_index INSERT. */
static int
tag_bind(struct gs_stmt *s, int j, const struct tag *x)
{
	int r;

	/* No copies: t outlives every step (db.h). */
	if ((r = gs_stmt_bind_blob_nocopy(s, 3 * j + 1, x->tag,
	    AG_BIDX_BYTES)) != GS_OK ||
	    (r = gs_stmt_bind_textn_nocopy(s, 3 * j + 2, x->uuid,
	    GS_UUID_LEN)) != GS_OK)
		return r;
	return gs_stmt_bind_text_nocopy(s, 3 * j + 3, x->field);
}

/*
 * Inserts every row of t in pii_index's key order (tag, uuid, field),
 * TAGS_ROWS to a statement (SQL_BIDX_INS's, repeated), the last few
 * one by one.
 */
static int
tags_apply(struct ag_store *st, struct tags *t)
{
	struct gs_stmt *s = NULL;
	char sql[96 + TAGS_ROWS * 16];
	size_t i, j, a;
	int r = GS_OK;

	/* An unprotected store has none (and qsort wants an array). */
	if (t->n == 0)
		return GS_OK;
	tags_sort(t);
	i = 0;
	if (t->n >= TAGS_ROWS) {
		a = (size_t)snprintf(sql, sizeof(sql), "INSERT OR IGNORE INTO "
		    "pii_index(tag, uuid, field) VALUES");
		for (j = 0; j < TAGS_ROWS && a < sizeof(sql); j++)
			a += (size_t)snprintf(sql + a, sizeof(sql) - a,
			    "%s(?, ?, ?)", j > 0 ? "," : "");
		if (a >= sizeof(sql))
			return GS_FAIL(GS_EINTERNAL, "import: the grouped "
			    "INSERT does not fit");
		if ((r = gs_stmt_prepare(st->db, sql, &s)) != GS_OK)
			return r;
		for (; r == GS_OK && i + TAGS_ROWS <= t->n; i += TAGS_ROWS) {
			for (j = 0; r == GS_OK && j < TAGS_ROWS; j++)
				r = tag_bind(s, (int)j, &t->v[i + j]);
			if (r == GS_OK)
				r = db_done(gs_stmt_step(s));
		}
		gs_stmt_finalize(s);
	}
	for (; r == GS_OK && i < t->n; i++)
		if ((r = tag_bind(st->bidx_ins, 0, &t->v[i])) == GS_OK)
			r = db_done(gs_stmt_step(st->bidx_ins));
	return r;
}

static int
is_blank_line(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
			return 0;
	return 1;
}

/*
 * The bulk import is a pipeline: reader threads (one per core, at most
 * IMPORT_READERS) parse, validate, seal and encode chunks of lines while
 * the caller's thread inserts the chunks in order (SQLite is about half
 * of the work).  Only the caller's thread touches the database and the
 * problem callback; a reader touches only the chunk it claimed, the input,
 * the schema and the data key (whose nonce counter is atomic).  A chunk
 * is IMPORT_CHUNK lines of the input, claimed in order under the lock;
 * chunks go round a ring of IMPORT_RING slots, so a reader waits when it
 * is that far ahead.  A small import (under two chunks of lines) runs the
 * same reader code inline, without a thread.
 */
#define IMPORT_CHUNK 256
#define IMPORT_RING 8
#define IMPORT_READERS 4

/* What a reader made of one non-blank line: saved, bad (reported by the
 * caller's thread), or an error that stops the import. */
enum { ITEM_OK, ITEM_BAD, ITEM_FATAL };

struct import_item {
	int kind;
	size_t line;           /* 1-based line number */
	int fast;              /* ITEM_OK by put_stored_spans */
	size_t src, srclen;    /* the line in the input */
	size_t off;            /* ITEM_OK: its stored text in chunk->text */
	char uuid[GS_UUID_LEN + 1];
	char change_id[GS_UUID_LEN + 1];
	struct bidx bx;
};

struct import_chunk {
	size_t seq;            /* which chunk of the input */
	int ready;             /* filled (under the lock) */
	size_t n;
	int fatal;             /* ITEM_FATAL: the error, with why */
	char why[256];
	struct gs_buf text;    /* the items' texts, each NUL-terminated */
	struct import_item item[IMPORT_CHUNK];
	/* A record uuid and a change id per line, made when the chunk is
	 * claimed: chunks are claimed in order, so uuids follow the lines
	 * whichever reader fills the chunk (UUIDv7 order is line order). */
	char ids[IMPORT_CHUNK][2][GS_UUID_LEN + 1];
};

struct import {
	struct ag_store *st;
	const struct gs_form *f;
	struct ag_pii_plan *plan; /* protected store: f's pii, looked up fast */
	const char *data;
	size_t len, off, line; /* the next chunk starts here */

	struct import_chunk *ring; /* IMPORT_RING chunks */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t claimed, used;  /* chunks claimed by readers / consumed */
	int stop;              /* the caller gave up */
};

/*
 * Claims the next chunk of lines (under the lock when threaded): its
 * number, where it starts and ends, and its first line number.  Returns
 * 0 at the end of the input.
 */
static int
import_claim(struct import *im, size_t *seq, size_t *from, size_t *to,
    size_t *line)
{
	struct import_chunk *c;
	const char *nl;
	size_t k, n = 0;

	if (im->off >= im->len)
		return 0;
	c = &im->ring[im->claimed % IMPORT_RING];
	*seq = im->claimed++;
	*from = im->off;
	*line = im->line;
	for (k = 0; k < IMPORT_CHUNK && im->off < im->len; k++) {
		nl = memchr(im->data + im->off, '\n', im->len - im->off);
		im->off = nl != NULL ? (size_t)(nl - im->data) + 1 : im->len;
		im->line++;
	}
	*to = im->off;
	while (k-- > 0) {
		gs_uuid_v7(c->ids[n][0]);
		gs_uuid_v7(c->ids[n++][1]);
	}
	return 1;
}

/*
 * The members a line's fast path reads: a form's fields at most
 * (schema.h GS_FORM_MAX_FIELDS).  A line with more has an unknown
 * key or one twice: gs_json_plain_members says 0, and the full path
 * reports it.
 */
#define IMPORT_SPANS GS_FORM_MAX_FIELDS

/* Tests: 0 sends every line through the full path (parse_object,
 * gs_record_validate, put_stored), as before the fast path; and how many
 * saved lines took the fast path (counted by the caller's thread). */
static int import_spans_on = 1;
static size_t import_spans_taken;

size_t
ag_import_spans_set(int on)
{
	size_t n = import_spans_taken;

	import_spans_on = on;
	import_spans_taken = 0;
	return n;
}

/*
 * The common case of a line, without jansson values (reader side): a
 * plain object (json.h, gs_json_plain_members: no whitespace, no escape,
 * no real) that gs_record_validate_spans finds valid as it is, with every
 * pii member a string.  Then its stored text is appended to b straight
 * from the line: the non-pii members as they are spelled, in order, and
 * the sealed member last (ag_crypt_seal_spans), the bytes put_stored
 * writes from the parsed object: a plain value is spelled as put_json
 * writes it, and a plain string is put_json_string's fast path.  bx as
 * put_stored's.  *done 0: not that case, b and bx untouched; the caller
 * parses the line, and gs_record_validate decides and names any problem,
 * so no verdict or message depends on this path.
 */
static int
put_stored_spans(struct import *im, const char *l, size_t n,
    const char *uuid, struct bidx *bx, struct gs_buf *b, int *done)
{
	struct gs_json_span m[IMPORT_SPANS];
	const struct gs_json_span *pm[IMPORT_SPANS];
	const struct gs_field *fd[IMPORT_SPANS];
	/* The canonical spellings of phone numbers to normalize (a dozen
	 * bytes each, quotes included): a form with more than this takes
	 * the full path for them. */
	char norm[8 * (GS_PHONE_MAX + 2)];
	struct ag_store *st = im->st;
	const char *name;
	size_t nm, npm = 0, i, k, len;
	char *o;
	int r, first = 1;

	*done = 0;
	bx->n = 0;
	if (n > AG_MAX_RECORD_JSON ||
	    !gs_json_plain_members(l, n, m, IMPORT_SPANS, &nm) ||
	    !gs_record_validate_spans_norm(st->schema, im->f, m, nm, uuid, fd,
	    norm, sizeof(norm)))
		return GS_OK;
	if (st->protect) {
		if (st->crypt == NULL)
			return ag_keys_locked_error(st);
		for (i = 0; i < nm; i++) {
			/* The plan's verdict (its form is im->f), from the
			 * field the validation found. */
			if (!gs_field_pii(fd[i]))
				continue;
			/* Other values: encode_pii's json_dumpb decides. */
			if (m[i].val[0] != '"')
				return GS_OK;
			pm[npm++] = &m[i];
		}
		/* bidx_collect's tags, in its order: the plan's id-number
		 * fields that are present and not empty. */
		for (i = 0; bx->n < BIDX_MAX &&
		    (name = ag_crypt_plan_idcard(im->plan, i)) != NULL; i++) {
			len = strlen(name);
			for (k = 0; k < npm; k++)
				if (pm[k]->klen == len &&
				    memcmp(pm[k]->key, name, len) == 0)
					break;
			if (k == npm || pm[k]->vlen <= 2)
				continue;
			if ((r = ag_crypt_bidxn(st->crypt, pm[k]->val + 1,
			    pm[k]->vlen - 2, bx->tag[bx->n])) != GS_OK)
				return r;
			bx->field[bx->n++] = name;
		}
	}
	*done = 1;
	/* The members take at most the line's bytes and the normalized
	 * spellings' (never longer than the ones they replace), and the
	 * sealed member's key after them. */
	if ((r = gs_buf_reserve(b, n + 2 + sizeof(norm) +
	    sizeof(",\"" AG_PII_MEMBER "\":\""))) != GS_OK)
		return r;
	o = b->data + b->len;
	*o++ = '{';
	for (i = 0, k = 0; i < nm; i++) {
		if (k < npm && pm[k] == &m[i]) {
			k++;
			continue;
		}
		if (!first)
			*o++ = ',';
		first = 0;
		/* "key":value, its quotes included: one copy from the
		 * line, unless the value was normalized (elsewhere). */
		if (m[i].val == m[i].key + m[i].klen + 2) {
			len = (size_t)(m[i].val + m[i].vlen - m[i].key) + 1;
			memcpy(o, m[i].key - 1, len);
			o += len;
		} else {
			memcpy(o, m[i].key - 1, m[i].klen + 3);
			o += m[i].klen + 3;
			memcpy(o, m[i].val, m[i].vlen);
			o += m[i].vlen;
		}
	}
	/* The sealed member last, written in the room reserved above and
	 * after the box (no call a byte). */
	if (npm > 0) {
		if (!first)
			*o++ = ',';
		memcpy(o, "\"" AG_PII_MEMBER "\":\"",
		    sizeof("\"" AG_PII_MEMBER "\":\"") - 1);
		o += sizeof("\"" AG_PII_MEMBER "\":\"") - 1;
	}
	b->len = (size_t)(o - b->data);
	b->data[b->len] = '\0';
	if (npm > 0 && (r = ag_crypt_seal_spans(st->crypt, uuid,
	    gs_form_version(im->f), pm, npm, b)) != GS_OK)
		return r;
	if ((r = gs_buf_reserve(b, 2)) != GS_OK)
		return r;
	if (npm > 0)
		b->data[b->len++] = '"';
	b->data[b->len++] = '}';
	b->data[b->len] = '\0';
	return GS_OK;
}

/*
 * Fills c with the lines [from, to) of the input, the first being line
 * number line + 1 (reader side).  A bad line is only marked: the
 * caller's thread checks it again to report its problems in order.
 */
static void
import_fill(struct import *im, struct import_chunk *c, size_t from,
    size_t to, size_t line)
{
	struct gs_problems p;
	struct gs_json_arena *arena;
	struct gs_buf sealed;
	char why[256];
	json_t *fields = NULL;
	size_t j = 0;
	int r, done;

	c->n = 0;
	c->fatal = GS_OK;
	gs_buf_reset(&c->text);
	gs_buf_init(&sealed, 2 * AG_MAX_RECORD_JSON);
	/* Each line's values are made and dropped here, on this thread:
	 * from an arena, without a malloc and free each (json.h).  Without
	 * one (out of memory) they come from malloc as usual. */
	(void)gs_json_arena_begin(&arena);
	for (; from < to; j++) {
		const char *l = im->data + from, *nl;
		struct import_item *it = &c->item[c->n];
		size_t n;

		/* Lines end at \n; a \r before it is whitespace to the JSON
		 * reader, so files from Windows import as they are.  The last
		 * line needs no newline. */
		nl = memchr(l, '\n', to - from);
		n = nl != NULL ? (size_t)(nl - l) : to - from;
		it->src = from;
		it->srclen = n;
		from += n + (nl != NULL);
		it->line = ++line;
		if (is_blank_line(l, n))
			continue;
		c->n++;
		it->kind = ITEM_BAD;
		it->bx.n = 0;
		memcpy(it->uuid, c->ids[j][0], sizeof(it->uuid));
		memcpy(it->change_id, c->ids[j][1], sizeof(it->change_id));
		it->off = c->text.len;
		done = 0;
		r = GS_OK;
		if (import_spans_on && (r = put_stored_spans(im, l, n,
		    it->uuid, &it->bx, &c->text, &done)) == GS_OK && done)
			r = gs_buf_putc(&c->text, '\0');
		it->fast = done;
		if (done || r != GS_OK)
			goto stored;
		/* The last line's values are all freed. */
		gs_json_arena_reset(arena);
		/* Not JSON: a bad line.  Out of memory: not the line's
		 * fault, and the import stops (below). */
		if ((r = parse_object(l, n, &fields, why, sizeof(why))) !=
		    GS_OK && r != GS_ENOMEM)
			continue;
		if (r == GS_OK)
			r = gs_record_validate(im->st->schema, im->f, fields,
			    &p);
		if (r == GS_OK) {
			/* Null members (absent) are left out by put_stored:
			 * no drop_nulls, which deletes them one by one. */
			if ((r = put_stored(im->st, im->f, im->plan, it->uuid,
			    gs_form_version(im->f), fields, &it->bx,
			    &c->text, &sealed)) == GS_OK)
				r = gs_buf_putc(&c->text, '\0');
			done = r == GS_OK;
		} else if (r == GS_EVALIDATION) {
			r = GS_OK;
		}
		json_decref(fields);
		fields = NULL;
stored:
		if (done && r == GS_OK)
			it->kind = ITEM_OK;
		if (r != GS_OK) {
			it->kind = ITEM_FATAL;
			c->fatal = r;
			snprintf(c->why, sizeof(c->why), "line %zu: %s",
			    it->line, gs_errmsg(r));
			break;
		}
	}
	gs_json_arena_end(arena);
	gs_buf_release(&sealed);
}

static void *
import_reader(void *arg)
{
	struct import *im = arg;
	struct import_chunk *c;
	size_t seq, from, to, line;

	(void)pthread_mutex_lock(&im->mu);
	for (;;) {
		/* At most IMPORT_RING chunks ahead of the caller. */
		while (!im->stop && im->claimed - im->used >= IMPORT_RING)
			(void)pthread_cond_wait(&im->cv, &im->mu);
		if (im->stop || !import_claim(im, &seq, &from, &to, &line))
			break;
		c = &im->ring[seq % IMPORT_RING];
		(void)pthread_mutex_unlock(&im->mu);
		import_fill(im, c, from, to, line);
		(void)pthread_mutex_lock(&im->mu);
		c->seq = seq;
		c->ready = 1;
		(void)pthread_cond_broadcast(&im->cv);
	}
	(void)pthread_cond_broadcast(&im->cv);
	(void)pthread_mutex_unlock(&im->mu);
	return NULL;
}

/* The next chunk in order (caller side), or NULL at the end. */
static struct import_chunk *
import_next(struct import *im, int threaded)
{
	struct import_chunk *c = &im->ring[im->used % IMPORT_RING];
	size_t seq, from, to, line;

	if (!threaded) {
		if (!import_claim(im, &seq, &from, &to, &line))
			return NULL;
		import_fill(im, c, from, to, line);
		return c;
	}
	(void)pthread_mutex_lock(&im->mu);
	while (!(c->ready && c->seq == im->used) &&
	    !(im->off >= im->len && im->claimed == im->used))
		(void)pthread_cond_wait(&im->cv, &im->mu);
	if (!(c->ready && c->seq == im->used))
		c = NULL;
	(void)pthread_mutex_unlock(&im->mu);
	return c;
}

/* Gives the chunk the caller is done with back to the readers. */
static void
import_release(struct import *im, int threaded)
{
	if (!threaded) {
		im->used++;
		im->claimed = im->used;
		return;
	}
	(void)pthread_mutex_lock(&im->mu);
	im->ring[im->used % IMPORT_RING].ready = 0;
	im->used++;
	(void)pthread_cond_broadcast(&im->cv);
	(void)pthread_mutex_unlock(&im->mu);
}

/* Reports the problems of a line the reader marked bad (caller side);
 * *parse says whether it is not even JSON. */
static int
import_report(struct import *im, const struct import_item *it, int *parse)
{
	struct gs_problems p;
	char why[256];
	json_t *fields = NULL;
	int r;

	*parse = 0;
	if ((r = parse_object(im->data + it->src, it->srclen, &fields, why,
	    sizeof(why))) != GS_OK) {
		if (r == GS_ENOMEM)
			return GS_FAIL(r, "line %zu: out of memory", it->line);
		report(im->st, it->line, "", "parse", why);
		*parse = 1;
		return GS_OK;
	}
	r = gs_record_validate(im->st->schema, im->f, fields, &p);
	json_decref(fields);
	if (r == GS_EVALIDATION) {
		report_all(im->st, it->line, &p);
		return GS_OK;
	}
	/* Valid after all: the two passes disagree.  Never skip it (the
	 * rest would be saved without it): the import fails whole. */
	return r == GS_OK ? GS_FAIL(GS_EINTERNAL, "line %zu: bad on the "
	    "first reading, good on the second", it->line) : r;
}

/*
 * The rows of a bulk import go in IMPORT_ROWS at a time: one INSERT of
 * that many records and one of as many pending creations, not two
 * statements per record.  SQLite's work per statement (starting and
 * ending it, resetting it, its bindings) was about a fifth of the
 * inserting thread's, and the columns every record of the import shares
 * are bound once per statement.  The same rows as insert_new writes; a
 * group that is not full (the end of a chunk, or lines left out) goes in
 * row by row through insert_new.  16 rows a statement saved 4.1k
 * instructions a record, 64 another 1.8k (bench/pii-callgrind.sh).
 */
#define IMPORT_ROWS 64

struct import_rows {
	struct gs_stmt *rec, *pend; /* NULL until the first full group */
	const struct import_item *it[IMPORT_ROWS];
	const char *text[IMPORT_ROWS];
	size_t n;
};

/* The INSERT of n rows: record's columns spelled as SQL_REC_INS spells
 * them, ?1-?5 the columns of the import (type, form version, grid, time,
 * author), then a uuid and a fields text per row. */
static int
rows_prepare(struct ag_store *st, struct import_rows *g)
{
	char rec[160 + IMPORT_ROWS * 48], pend[64 + IMPORT_ROWS * 24];
	size_t i, a, b;
	int r;

	a = (size_t)snprintf(rec, sizeof(rec), "INSERT INTO record(uuid, "
	    "type, form_version, grid, fields, rev, deleted, created_at, "
	    "updated_at, author) VALUES");
	b = (size_t)snprintf(pend, sizeof(pend), "INSERT INTO "
	    "pending_creation(uuid, change_id) VALUES");
	for (i = 0; i < IMPORT_ROWS; i++) {
		if (a < sizeof(rec))
			a += (size_t)snprintf(rec + a, sizeof(rec) - a,
			    "%s(?%zu, ?1, ?2, ?3, ?%zu, 0, 0, ?4, ?4, ?5)",
			    i > 0 ? "," : "", 6 + 2 * i, 7 + 2 * i);
		if (b < sizeof(pend))
			b += (size_t)snprintf(pend + b, sizeof(pend) - b,
			    "%s(?%zu, ?%zu)", i > 0 ? "," : "", 1 + 2 * i,
			    2 + 2 * i);
	}
	if (a >= sizeof(rec) || b >= sizeof(pend))
		return GS_FAIL(GS_EINTERNAL, "import: the grouped INSERT "
		    "does not fit");
	/* The prepare's own error (out of memory, a damaged schema) is
	 * passed on, as every other prepare's is. */
	if ((r = gs_stmt_prepare(st->db, rec, &g->rec)) != GS_OK)
		return r;
	if ((r = gs_stmt_prepare(st->db, pend, &g->pend)) != GS_OK) {
		/* Both or neither: rows_flush prepares when rec is NULL. */
		gs_stmt_finalize(g->rec);
		g->rec = NULL;
	}
	return r;
}

/* Inserts the rows waiting in g and empties it (caller's thread). */
static int
rows_flush(struct ag_store *st, const struct gs_form *f, struct import_rows *g,
    int64_t now)
{
	struct gs_stmt *s;
	size_t i, n = g->n;
	int r = GS_OK;

	g->n = 0;
	if (n < IMPORT_ROWS) {
		for (i = 0; i < n && r == GS_OK; i++)
			r = insert_new(st, f, g->text[i], now, g->it[i]->uuid,
			    g->it[i]->change_id, NULL);
		return r;
	}
	if (g->rec == NULL && (r = rows_prepare(st, g)) != GS_OK)
		return r;
	/* No copies: every text outlives the step (db.h). */
	s = g->rec;
	if ((r = gs_stmt_bind_text_nocopy(s, 1, gs_form_type(f))) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, gs_form_version(f))) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 3, st->grid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, now)) != GS_OK ||
	    (r = gs_stmt_bind_text_nocopy(s, 5, st->worker)) != GS_OK)
		return r;
	for (i = 0; i < n; i++)
		if ((r = gs_stmt_bind_textn_nocopy(s, (int)(6 + 2 * i),
		    g->it[i]->uuid, GS_UUID_LEN)) != GS_OK ||
		    (r = gs_stmt_bind_text_nocopy(s, (int)(7 + 2 * i),
		    g->text[i])) != GS_OK)
			return r;
	if ((r = db_done(gs_stmt_step(s))) != GS_OK)
		return r;
	s = g->pend;
	for (i = 0; i < n; i++)
		if ((r = gs_stmt_bind_textn_nocopy(s, (int)(1 + 2 * i),
		    g->it[i]->uuid, GS_UUID_LEN)) != GS_OK ||
		    (r = gs_stmt_bind_textn_nocopy(s, (int)(2 + 2 * i),
		    g->it[i]->change_id, GS_UUID_LEN)) != GS_OK)
			return r;
	return db_done(gs_stmt_step(s));
}

/* rows_flush, its failure naming the group's lines. */
static int
rows_insert(struct ag_store *st, const struct gs_form *f,
    struct import_rows *g, int64_t now)
{
	char why[256];
	size_t first, last;
	int r;

	if (g->n == 0)
		return GS_OK;
	first = g->it[0]->line;
	last = g->it[g->n - 1]->line;
	if ((r = rows_flush(st, f, g, now)) == GS_OK)
		return GS_OK;
	gs_strlcpy(why, gs_errmsg(r), sizeof(why));
	if (first == last)
		return GS_FAIL(r, "line %zu: %s", first, why);
	return GS_FAIL(r, "lines %zu-%zu: %s", first, last, why);
}

int
ag_import_ndjson(struct ag_store *st, const char *type, const char *data,
    size_t len, ag_uuid_fn on_uuid, void *ctx, size_t *count)
{
	struct import im;
	struct import_chunk *c;
	struct uuids u = { 0 };
	struct tags tg = { 0 };
	struct import_rows rows = { 0 };
	char *detail = NULL;
	size_t bad = 0, unparsable = 0, i, k, nl = 0, nreaders = 0;
	size_t skipped = 0; /* good lines not saved after a bad one */
	pthread_t reader[IMPORT_READERS];
	struct gs_writeback *wb = NULL;
	long cpus;
	int64_t now;
	int r = GS_EINTERNAL, in_tx = 0, threaded = 0, sync_ok = 0;
	int direct = 0;

	st->nproblems = 0;
	memset(&im, 0, sizeof(im));
	if (count != NULL)
		*count = 0;
	if ((r = find_form(st, type, &im.f)) != GS_OK)
		return r;
	if (len > AG_MAX_IMPORT)
		return GS_FAIL(GS_ETOOBIG, "import of %zu bytes is over the "
		    "limit of %u", len, AG_MAX_IMPORT);
	if ((r = need_key(st)) != GS_OK)
		return r;
	if (st->protect && (r = ag_crypt_plan_new(im.f, &im.plan)) != GS_OK)
		return r;
	im.st = st;
	im.data = data;
	im.len = len;
	if ((im.ring = gs_calloc(IMPORT_RING, sizeof(*im.ring))) == NULL) {
		ag_crypt_plan_free(im.plan);
		return GS_FAIL(GS_ENOMEM, "import: out of memory");
	}
	for (i = 0; i < IMPORT_RING; i++)
		gs_buf_init(&im.ring[i].text,
		    (size_t)IMPORT_CHUNK * 2 * AG_MAX_RECORD_JSON);
	now = record_now();
	/*
	 * Each line is parsed, validated and inserted inside one
	 * transaction.  After the first bad line nothing more is inserted,
	 * but every remaining line is still checked so the worker sees all
	 * faults at once; then the whole transaction is rolled back.
	 */
	/* Two chunks of lines or more: worth a thread, and worth writing
	 * once, through a rollback journal, rather than to the WAL and
	 * again at its checkpoint (gs_db_journal_direct; 100,000 persons:
	 * the collect 0.70 -> 0.57 s, medians of six alternating runs).
	 * With another connection on the store it stays in WAL mode. */
	for (i = 0; i < len && nl < 2 * IMPORT_CHUNK; i++)
		nl += data[i] == '\n';
	if (nl >= 2 * IMPORT_CHUNK)
		direct = gs_db_journal_direct(st->db);
	if ((r = gs_db_begin(st->db)) != GS_OK)
		goto out;
	in_tx = 1;
	if (nl >= 2 * IMPORT_CHUNK) {
		if (pthread_mutex_init(&im.mu, NULL) != 0)
			goto inline_;
		if (pthread_cond_init(&im.cv, NULL) != 0) {
			(void)pthread_mutex_destroy(&im.mu);
			goto inline_;
		}
		sync_ok = 1;
		/* Tens of megabytes go to the WAL, then to the database file:
		 * let the disk start on them while the readers parse. */
		wb = gs_db_writeback_start(st->db);
		/* One reader per core: the caller's thread sleeps while it
		 * waits for the next chunk. */
		cpus = sysconf(_SC_NPROCESSORS_ONLN);
		while (nreaders < IMPORT_READERS &&
		    (nreaders == 0 || (long)nreaders < cpus) &&
		    pthread_create(&reader[nreaders], NULL, import_reader,
		    &im) == 0)
			nreaders++;
		threaded = nreaders > 0;
	}
inline_:
	while ((c = import_next(&im, threaded)) != NULL) {
		for (k = 0; k < c->n; k++) {
			const struct import_item *it = &c->item[k];
			int parse = 0;

			if (st->progress != NULL &&
			    gs_progress_due(st->progress))
				gs_progress_show(st->progress, "collect: line "
				    "%zu checked (%d%%)", it->line,
				    (int)(len > 0 ? (uint64_t)it->src * 100 /
				    len : 100));

			if (it->kind == ITEM_FATAL) {
				r = GS_FAIL(c->fatal, "import: %s", c->why);
				goto out;
			}
			if (it->kind == ITEM_BAD) {
				r = import_report(&im, it, &parse);
				if (r != GS_OK)
					goto out;
				bad++;
				unparsable += parse;
				continue;
			}
			if (bad > 0) {
				skipped++;
				continue; /* nothing more is saved */
			}
			import_spans_taken += (size_t)it->fast;
			rows.it[rows.n] = it;
			rows.text[rows.n++] = c->text.data + it->off;
			if ((rows.n == IMPORT_ROWS &&
			    (r = rows_insert(st, im.f, &rows, now)) != GS_OK) ||
			    (r = tags_push(&tg, &it->bx, it->uuid)) != GS_OK)
				goto out;
			if ((r = uuids_push(&u, it->uuid)) != GS_OK)
				goto out;
		}
		/* The chunk goes back to the readers: its rows first. */
		if ((r = rows_insert(st, im.f, &rows, now)) != GS_OK)
			goto out;
		import_release(&im, threaded);
	}
	if (bad > 0) {
		r = GS_FAIL(unparsable == bad ? GS_EPARSE : GS_EVALIDATION,
		    "%zu of %zu lines are bad; nothing was saved", bad,
		    u.n + skipped + bad);
		goto out;
	}
	if (u.n == 0) {
		r = GS_FAIL(GS_EPARSE, "the input holds no records");
		goto out;
	}
	/* The commit writes tens of megabytes on a large import. */
	if (st->progress != NULL && st->progress->shown)
		gs_progress_show(st->progress, "collect: %zu records "
		    "checked, saving", u.n);
	if ((r = tags_apply(st, &tg)) != GS_OK)
		goto out;
	{
		json_t *d = json_pack("{s:I,s:s,s:s}", "count",
		    (json_int_t)u.n, "first", u.v[0], "last", u.v[u.n - 1]);

		detail = d != NULL ? json_dumps(d, JSON_COMPACT) : NULL;
		json_decref(d);
		if (detail == NULL) {
			r = GS_FAIL(GS_ENOMEM, "import: out of memory");
			goto out;
		}
	}
	if ((r = audit(st, now, "import", NULL, gs_form_type(im.f), detail))
	    != GS_OK)
		goto out;
	if ((r = gs_db_commit(st->db)) != GS_OK)
		goto out;
	in_tx = 0;
	gs_db_writeback_stop(wb);
	wb = NULL;
	/* Only now are these records saved: tell the caller. */
	if (count != NULL)
		*count = u.n;
	if (on_uuid != NULL)
		for (i = 0; i < u.n; i++)
			on_uuid(ctx, u.v[i]);
out:
	if (st->progress != NULL)
		gs_progress_done(st->progress);
	if (threaded) {
		(void)pthread_mutex_lock(&im.mu);
		im.stop = 1;
		(void)pthread_cond_broadcast(&im.cv);
		(void)pthread_mutex_unlock(&im.mu);
		for (i = 0; i < nreaders; i++)
			(void)pthread_join(reader[i], NULL);
	}
	if (sync_ok) {
		(void)pthread_cond_destroy(&im.cv);
		(void)pthread_mutex_destroy(&im.mu);
	}
	if (in_tx)
		gs_db_rollback(st->db);
	gs_db_writeback_stop(wb);
	/* The import's outcome stands whatever this answers: a store left
	 * with its rollback journal is put back in WAL mode by the next
	 * open (gs_db_open). */
	if (direct)
		(void)gs_db_journal_wal(st->db);
	for (i = 0; i < IMPORT_RING; i++)
		gs_buf_release(&im.ring[i].text);
	gs_free(im.ring);
	ag_crypt_plan_free(im.plan);
	gs_free(tg.v);
	gs_stmt_finalize(rows.rec);
	gs_stmt_finalize(rows.pend);
	gs_free(detail);
	gs_free(u.v);
	return r;
}

/* ------------------------------------------------------------ reads */

static int get_record(struct ag_store *st, const char *uuid, int mask,
    char **json_out);

int
ag_get(struct ag_store *st, const char *uuid, char **json_out)
{
	return get_record(st, uuid, 0, json_out);
}

int
ag_get_masked(struct ag_store *st, const char *uuid, char **json_out)
{
	return get_record(st, uuid, 1, json_out);
}

static int
get_record(struct ag_store *st, const char *uuid, int mask, char **json_out)
{
	struct gs_stmt *s = st->rec_get;
	struct gs_buf b;
	struct row w;
	char *shown = NULL;
	int r;

	*json_out = NULL;
	if ((r = check_uuid(uuid)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_FAIL(GS_ENOTFOUND, "no record %s", uuid);
	if (r != GS_ROW)
		return r;
	w.uuid = uuid;
	w.type = text_or_empty(s, 0);
	w.form_version = (int)gs_stmt_int64(s, 1);
	w.grid = text_or_empty(s, 2);
	w.fields = text_or_empty(s, 3);
	w.rev = gs_stmt_int64(s, 4);
	w.deleted = (int)gs_stmt_int64(s, 5);
	w.created_at = gs_stmt_int64(s, 6);
	w.updated_at = gs_stmt_int64(s, 7);
	w.author = text_or_empty(s, 8);
	w.pending = (int)gs_stmt_int64(s, 9);
	/* The record as shown: personal data, when revealed. */
	gs_buf_init_secret(&b, 2 * AG_MAX_RECORD_JSON);
	r = render_fields(st, w.type, uuid, w.form_version, w.fields, mask,
	    &shown);
	if (r == GS_OK && shown != NULL)
		w.fields = shown;
	if (r == GS_OK)
		r = record_json(&b, &w, 1);
	gs_stmt_reset(s);
	if (r == GS_OK)
		r = review_splice(st, &b, uuid);
	gs_free_wiped(shown, shown != NULL ? strlen(shown) : 0);
	if (r == GS_OK && (*json_out = gs_buf_detach(&b, NULL)) == NULL)
		r = GS_FAIL(GS_ENOMEM, "get: out of memory");
	gs_buf_release(&b);
	return r;
}

int
ag_list(struct ag_store *st, const char *type, int flags, ag_record_fn fn,
    void *ctx)
{
	struct gs_stmt *s = st->list;
	struct ag_record rec;
	struct gs_buf b;
	struct row w;
	char *shown = NULL;
	int r;

	/* Each record as shown: personal data, when revealed. */
	gs_buf_init_secret(&b, 2 * AG_MAX_RECORD_JSON);
	if ((r = gs_stmt_bind_text(s, 1, type)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, (flags & AG_LIST_DELETED) ? 1 : 0))
	    != GS_OK)
		goto out;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		memset(&w, 0, sizeof(w));
		w.uuid = text_or_empty(s, 0);
		w.type = text_or_empty(s, 1);
		w.form_version = (int)gs_stmt_int64(s, 2);
		w.grid = text_or_empty(s, 3);
		w.fields = text_or_empty(s, 4);
		w.rev = gs_stmt_int64(s, 5);
		w.deleted = (int)gs_stmt_int64(s, 6);
		w.created_at = gs_stmt_int64(s, 7);
		w.updated_at = gs_stmt_int64(s, 8);
		w.author = text_or_empty(s, 9);
		gs_free_wiped(shown, shown != NULL ? strlen(shown) : 0);
		shown = NULL;
		if ((r = render_fields(st, w.type, w.uuid, w.form_version,
		    w.fields, (flags & AG_LIST_MASK) != 0, &shown)) != GS_OK)
			goto out;
		if (shown != NULL)
			w.fields = shown;
		if ((r = record_json(&b, &w, 0)) != GS_OK ||
		    (r = review_splice(st, &b, w.uuid)) != GS_OK)
			goto out;
		rec.uuid = w.uuid;
		rec.type = w.type;
		rec.form_version = w.form_version;
		rec.grid = w.grid;
		rec.rev = w.rev;
		rec.deleted = w.deleted;
		rec.created_at = w.created_at;
		rec.updated_at = w.updated_at;
		rec.author = w.author;
		rec.fields = w.fields;
		rec.json = b.data;
		if (fn(ctx, &rec) != 0) {
			r = GS_DONE;
			break;
		}
	}
	if (r == GS_DONE)
		r = GS_OK;
out:
	gs_stmt_reset(s);
	gs_buf_release(&b);
	gs_free_wiped(shown, shown != NULL ? strlen(shown) : 0);
	return r;
}

/* Adds {name: count} rows of a two-column query to obj. */
static int
add_counts(struct gs_db *db, const char *sql, json_t *obj)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(db, sql, &s)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		const char *k = gs_stmt_text(s, 0);

		if (k != NULL && json_object_set_new(obj, k,
		    json_integer(gs_stmt_int64(s, 1))) != 0) {
			r = GS_FAIL(GS_ENOMEM, "status: out of memory");
			break;
		}
	}
	gs_stmt_finalize(s);
	return r == GS_DONE ? GS_OK : r;
}


/*
 * A path as a JSON string.  A path is bytes and JSON text is UTF-8:
 * json_string refused a home such as /data/\377x, and status --json said
 * "out of memory".  Each byte that is not UTF-8 shows as U+FFFD.
 */
static json_t *
json_path(const char *p)
{
	struct gs_utf8_scan sc;
	struct gs_buf b;
	size_t n = strlen(p);
	json_t *j = NULL;
	int r = GS_OK;

	if (gs_utf8_scan(p, n, &sc) == 0)
		return json_string(p);
	gs_buf_init(&b, 3 * n + 1);
	while (r == GS_OK && gs_utf8_scan(p, n, &sc) != 0) {
		if ((r = gs_buf_append(&b, p, sc.bad_at)) == GS_OK)
			r = gs_buf_puts(&b, "\xef\xbf\xbd");
		p += sc.bad_at + 1;
		n -= sc.bad_at + 1;
	}
	if (r == GS_OK && gs_buf_append(&b, p, n) == GS_OK)
		j = json_string(b.data);
	gs_buf_release(&b);
	return j;
}

int
ag_store_status(struct ag_store *st, json_t *into)
{
	static const char *const states[] = { "unsent", "batched",
		"delivered", "rejected", "quarantined", "conflicted" };
	json_t *records = NULL, *changes = NULL, *bystate = NULL;
	struct gs_stmt *s = NULL;
	char *created = NULL;
	int64_t deleted = 0;
	size_t i;
	int r = GS_EINTERNAL;

	if ((records = json_object()) == NULL ||
	    (changes = json_object()) == NULL ||
	    (bystate = json_object()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "status: out of memory");
		goto out;
	}
	if ((r = add_counts(st->db, "SELECT type, count(*) FROM record "
	    "WHERE deleted = 0 GROUP BY type ORDER BY type", records))
	    != GS_OK)
		goto out;
	/* Pending creations are unsent changes too (schema/agent/0008),
	 * sealed ones batched (0011). */
	if ((r = add_counts(st->db, AG_SQL_CHANGE_COUNTS, bystate)) != GS_OK)
		goto out;
	/* Every state is shown, zero or not: a script reads them by name, and
	 * "rejected: 0" is information too. */
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		char k[4];
		json_t *n;

		snprintf(k, sizeof(k), "%zu", i);
		n = json_object_get(bystate, k);
		if (json_object_set_new(changes, states[i],
		    json_integer(n ? json_integer_value(n) : 0)) != 0) {
			r = GS_FAIL(GS_ENOMEM, "status: out of memory");
			goto out;
		}
	}
	if ((r = gs_stmt_prepare(st->db, "SELECT count(*) FROM record "
	    "WHERE deleted = 1", &s)) != GS_OK ||
	    (r = gs_stmt_one_int64(s, 0, &deleted)) != GS_OK)
		goto out;
	r = ag_store_meta_get(st, "created_at", &created);
	if (r != GS_OK && r != GS_ENOTFOUND)
		goto out;
	if (json_object_set_new(into, "home", json_path(st->home)) != 0 ||
	    json_object_set_new(into, "worker", json_string(st->worker))
	    != 0 ||
	    json_object_set_new(into, "grid", json_string(st->grid)) != 0 ||
	    json_object_set_new(into, "schema",
	    json_integer(gs_db_version(st->db))) != 0 ||
	    json_object_set_new(into, "created_at", json_integer(created ?
	    strtoll(created, NULL, 10) : 0)) != 0 ||
	    json_object_set(into, "records", records) != 0 ||
	    json_object_set_new(into, "deleted", json_integer(deleted)) != 0 ||
	    json_object_set(into, "changes", changes) != 0) {
		r = GS_FAIL(GS_ENOMEM, "status: out of memory");
		goto out;
	}
	/* Protected, locked, destroyed, failed unlocks (issue 6). */
	if ((r = ag_keys_status(st, into)) != GS_OK)
		goto out;
	r = GS_OK;
out:
	gs_stmt_finalize(s);
	gs_free(created);
	json_decref(records);
	json_decref(changes);
	json_decref(bystate);
	return r;
}

/* ------------------------------------------------ platform side (issue 4) */

/*
 * Appends ,"review":{...} to a record line (which ends in '}') when the
 * platform sent a verdict on the record.
 */
static int
review_splice(struct ag_store *st, struct gs_buf *b, const char *uuid)
{
	struct gs_stmt *s = st->review_get;
	json_t *o;
	char *t;
	int r;

	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_OK;
	if (r != GS_ROW)
		return r;
	o = json_pack("{s:s,s:s,s:s,s:I}", "state", text_or_empty(s, 0),
	    "comment", text_or_empty(s, 1), "by", text_or_empty(s, 2), "at",
	    (json_int_t)gs_stmt_int64(s, 3));
	gs_stmt_reset(s);
	t = o != NULL ? dump(o) : NULL;
	json_decref(o);
	if (t == NULL)
		return GS_FAIL(GS_ENOMEM, "review: out of memory");
	gs_buf_truncate(b, b->len - 1);
	if ((r = gs_buf_puts(b, ",\"review\":")) == GS_OK &&
	    (r = gs_buf_puts(b, t)) == GS_OK)
		r = gs_buf_putc(b, '}');
	gs_free(t);
	return r;
}

/*
 * The blind-index tags of a stored record's fields text (its sealed part
 * opened): the rows an update takes out of pii_index by key.  None in a
 * store without a key (it writes none either).
 */
static int
stored_tags(struct ag_store *st, const struct gs_form *f, const char *uuid,
    int fv, const char *text, struct bidx *bx)
{
	json_t *o = NULL;
	int r;

	bx->n = 0;
	if (st->crypt == NULL)
		return GS_OK;
	if ((r = open_stored(st, uuid, fv, text, &o)) == GS_OK)
		r = bidx_collect(st, f, NULL, o, bx);
	json_decref(o);
	return r;
}

int
ag_store_apply_platform(struct ag_store *st,
    const struct ag_platform_rev *p, int *applied)
{
	struct gs_stmt *s = st->rec_get;
	const struct gs_form *f;
	struct bidx bx, bx_old;
	json_t *fields = NULL;
	char *text = NULL, *old = NULL, detail[64];
	int r, exists = 0, pending = 0, old_fv = 0;
	int64_t rev = 0;

	*applied = 0;
	memset(&bx, 0, sizeof(bx));
	if ((r = check_uuid(p->uuid)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, p->uuid)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_ROW) {
		exists = 1;
		rev = gs_stmt_int64(s, 4);
		pending = (int)gs_stmt_int64(s, 9);
		old_fv = (int)gs_stmt_int64(s, 1);
		/* Its fields as they are: the blind-index rows to take out
		 * (stored_tags) if the revision applies. */
		old = gs_strdup(text_or_empty(s, 3));
		gs_stmt_reset(s);
		if (old == NULL)
			return GS_FAIL(GS_ENOMEM, "pull: out of memory");
	} else if (r != GS_DONE) {
		return r;
	}
	/* The worker's own unsent edit wins here: it goes up on the next
	 * sync and merges on the platform, whose result comes back down.
	 * Nothing older than what we hold is applied either; the same rev
	 * is (a receipt told us our change became rev N by a merge, whose
	 * merged fields only the feed carries).  rev is what the record is
	 * at, receipts included (AG_SQL_REV), so the record.rev written
	 * below is never lower than a rev record_rev holds for it. */
	if ((exists && pending) || (exists && rev > p->rev)) {
		r = GS_OK;
		goto out;
	}
	/* A type this program does not know (newer reference data): kept on
	 * the platform, not here. */
	if ((f = gs_schema_form(st->schema, p->type)) == NULL) {
		r = GS_OK;
		goto out;
	}
	if ((fields = p->fields != NULL && json_is_object(p->fields) ?
	    json_deep_copy(p->fields) : json_object()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "pull: out of memory");
		goto out;
	}
	/* Through the same sealing as a local save (issue 6: pii). */
	if (!p->deleted && (r = seal_fields(st, f, p->uuid, p->form_version,
	    fields, &bx)) != GS_OK)
		goto out;
	if ((text = dump(fields)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "pull: out of memory");
		goto out;
	}
	s = st->pull_put;
	if ((r = gs_stmt_bind_text(s, 1, p->uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, p->type)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, p->form_version)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, p->grid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 5, text)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, p->rev)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 7, p->deleted)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 8, p->created_at)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 9, p->updated_at)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 10, p->author)) != GS_OK ||
	    (r = db_done(gs_stmt_step(s))) != GS_OK)
		goto out;
	/*
	 * The blind index follows the new fields.  The old rows are taken
	 * out by their keys, from the tags of the fields the record had: the
	 * index is keyed by tag, so "every row of this uuid" is a walk of
	 * all of it, which made a new device's first pull of a 100,000-record
	 * grid take six minutes.  A new record has no rows to take out.  Old
	 * fields that cannot be read (damaged) fall back to that walk.
	 */
	if (!p->deleted) {
		if (exists) {
			r = stored_tags(st, f, p->uuid, old_fv, old, &bx_old);
			if (r == GS_OK) {
				r = bidx_apply(st->bidx_del, p->uuid, &bx_old);
			} else if (r != GS_ENOMEM) {
				s = st->pull_unidx;
				if ((r = gs_stmt_bind_text(s, 1, p->uuid)) ==
				    GS_OK)
					r = db_done(gs_stmt_step(s));
			}
			if (r != GS_OK)
				goto out;
		}
		if ((r = bidx_apply(st->bidx_ins, p->uuid, &bx)) != GS_OK)
			goto out;
	}
	snprintf(detail, sizeof(detail), "platform rev %lld",
	    (long long)p->rev);
	if ((r = audit(st, gs_now_ms(), "pull", p->uuid, p->type, detail))
	    != GS_OK)
		goto out;
	*applied = 1;
out:
	json_decref(fields);
	gs_free(text);
	gs_free(old);
	return r;
}
