/*
 * store.h - the agent's local store, internal side: what the CLI and the
 * sync half of the agent need beyond the public API in gridagent.h.
 *
 * The tables are schema/agent/0001-store.sql (meta, record, change,
 * audit); later migrations add their own.  Every function here runs on the
 * store's one connection; none is thread-safe.
 */
#ifndef AG_STORE_H
#define AG_STORE_H

#include <jansson.h>

#include "gridagent.h"

struct gs_db;
struct gs_schema;

/* The change states of the change table (0001-store.sql). */
enum ag_change_state {
	AG_CHANGE_UNSENT = 0,    /* waiting; may still coalesce */
	AG_CHANGE_BATCHED = 1,   /* sealed into an outbox envelope */
	AG_CHANGE_DELIVERED = 2, /* the platform's receipt covers it */
	AG_CHANGE_REJECTED = 3,
	AG_CHANGE_QUARANTINED = 4,
	AG_CHANGE_CONFLICTED = 5
};

/*
 * Writes the change row of every new record's creation still waiting in
 * pending_creation and empties it (schema/agent/0008), inside the
 * caller's transaction: the outbox calls it before it marks a creation it
 * cannot send.  Works on a bare database handle (no ag_store needed).
 * Sealed creations (sealed_creation, 0011) are not touched.
 */
int ag_store_pending_flush(struct gs_db *db);

/* A pending creation read as the change row it becomes (every column but
 * the id follows from the record): the change columns change_id, uuid,
 * type, form_version, grid, op, base_rev, then AG_PEND_FROM.  CROSS JOIN
 * keeps pending_creation the outer loop: given "p.uuid <= ?", SQLite would
 * otherwise range-scan record, every record ever batched, each time. */
#define AG_PEND_AS_CHANGE \
	"p.change_id, r.uuid, r.type, r.form_version, r.grid, 'upsert', 0"
#define AG_PEND_FROM \
	"FROM pending_creation AS p CROSS JOIN record AS r ON r.uuid = p.uuid"

/* The change state of a sealed creation (schema/agent/0011) of the batch
 * o: batched (1) while the batch is sealed, delivered (2) once acked.  A
 * rejected or quarantined batch, or one whose receipt listed results,
 * has its creations written out as change rows (agent/outbox.c): none of
 * its rows is left here, and they would count as that state. */
#define AG_SEALED_STATE                                                        \
	"CASE o.state WHEN 'sealed' THEN 1 WHEN 'acked' THEN 2 "               \
	"WHEN 'rejected' THEN 3 ELSE 4 END"
/* A sealed creation of a batch in flight: "AND" this in a WHERE over
 * sealed_creation AS s. */
#define AG_SEALED_IN_FLIGHT                                                    \
	"EXISTS(SELECT 1 FROM outbox AS o WHERE o.seq = s.batch_seq AND "      \
	"o.state = 'sealed')"
/* A sealed creation in flight (schema/agent/0011) read as
 * its change row, state 1 (batched) unless the caller says otherwise:
 * every change column from change_id to author, then state, batch_seq,
 * problem, created_at and updated_at come from the caller, then
 * AG_SEALED_FROM.  Its updated_at as the seal set it is the batch's
 * created_at (AG_SEALED_AT). */
#define AG_SEALED_AS_CHANGE                                                    \
	"s.change_id, r.uuid, r.type, r.form_version, r.grid, 'upsert', 0, "   \
	"NULL, NULL, r.author"
#define AG_SEALED_FROM \
	"FROM sealed_creation AS s CROSS JOIN record AS r ON r.uuid = s.uuid"
#define AG_SEALED_AT \
	"(SELECT o.created_at FROM outbox AS o WHERE o.seq = s.batch_seq)"
/* The change columns AG_SEALED_AS_CHANGE and the caller's five fill. */
#define AG_CHANGE_COLS                                                         \
	"change_id, uuid, type, form_version, grid, op, base_rev, fields, "    \
	"reason, author, state, batch_seq, problem, created_at, updated_at"

/* The platform revision the record in table (or alias) t is at: the
 * larger of record.rev and what receipts recorded in record_rev
 * (schema/agent/0009); without a record_rev row, a record at rev 0 whose
 * creation was delivered by fast-forward with its batch (its
 * sealed_creation row's batch acked, schema/agent/0011) is at rev 1,
 * which no receipt writes down (schema/agent/0012).  Every reader of a
 * record's rev uses this. */
#define AG_SQL_REV(t)                                                          \
	"max(" t ".rev, coalesce((SELECT rr.rev FROM record_rev AS rr "        \
	"WHERE rr.uuid = " t ".uuid), CASE WHEN " t ".rev < 1 THEN (SELECT 1 " \
	"FROM sealed_creation AS s JOIN outbox AS o ON o.seq = s.batch_seq "   \
	"WHERE s.uuid = " t ".uuid AND o.state = 'acked') END, 0))"

/* (state, count) of every change, a pending creation counted as unsent
 * and a sealed one in the state of its batch (AG_SEALED_STATE), read
 * batch by batch through its range of uuids: the one query behind status
 * and the outbox's counts. */
#define AG_SQL_CHANGE_COUNTS \
	"SELECT state, sum(n) FROM (SELECT state, count(*) AS n FROM change " \
	"GROUP BY state UNION ALL SELECT 0, count(*) FROM pending_creation " \
	"UNION ALL SELECT " AG_SEALED_STATE ", count(*) FROM outbox AS o CROSS " \
	"JOIN sealed_creation AS s ON s.uuid BETWEEN o.first_creation AND " \
	"o.last_creation AND s.batch_seq = o.seq GROUP BY 1) GROUP BY state"
/* The unsent changes (state 0) and the sealed batches, through the
 * partial index change_unsent (schema/agent/0006) and outbox_by_state:
 * no change row is read. */
#define AG_SQL_PENDING \
	"SELECT (SELECT count(*) FROM change WHERE state = 0) + " \
	"(SELECT count(*) FROM pending_creation), " \
	"(SELECT count(*) FROM outbox WHERE state = 'sealed')"
/* The sealed batches alone (ag_outbox_pending without unsent). */
#define AG_SQL_SEALED "SELECT 0, count(*) FROM outbox WHERE state = 'sealed'"

/* The store's database and loaded forms; both belong to the store. */
struct gs_db *ag_store_db(struct ag_store *st);
const struct gs_schema *ag_store_schema(struct ag_store *st);
/* The progress line of long work on this store (ag_import_ndjson,
 * ag_purge: core/progress.h); p belongs to the caller and must outlive
 * its use, NULL (the default) for none.  ag_store_progress gives it. */
struct gs_progress;
void ag_store_set_progress(struct ag_store *st, struct gs_progress *p);
struct gs_progress *ag_store_progress(struct ag_store *st);
/* Replaces the schema (reference data fetched: agent/reference.c); the
 * store owns s from now on and frees the old one, so no pointer into the
 * old one may be held across the call. */
void ag_store_set_schema(struct ag_store *st, struct gs_schema *s);
/* The home directory and the settings read at open ("" when unset). */
const char *ag_store_home(struct ag_store *st);
const char *ag_store_grid(struct ag_store *st);
const char *ag_store_worker(struct ag_store *st);

/*
 * A setting of the meta table: GS_OK and *out (gs_free), or GS_ENOTFOUND.
 * ag_store_meta_set inserts or replaces; it runs in the caller's
 * transaction if one is open, and also updates the cached grid/worker.
 */
int ag_store_meta_get(struct ag_store *st, const char *key, char **out);
int ag_store_meta_set(struct ag_store *st, const char *key,
    const char *value);

/*
 * Collect and edit from command-line NAME=VALUE arguments, typed by the
 * form (gs_fields_from_args); problems go to the problem callback.  Same
 * results as ag_collect / ag_edit.
 */
int ag_collect_args(struct ag_store *st, const char *type,
    char *const *args, int n, char uuid_out[AG_UUID_LEN + 1]);
int ag_edit_args(struct ag_store *st, const char *uuid, char *const *args,
    int n);

/*
 * An edit with hooks (gridagent attach, agent/attach.c).  Inside the
 * edit's one transaction: prepare(ctx, type, fields, edit) runs after the
 * record is read - fields are its current fields (read only), and it may
 * add to `edit` - and commit(ctx, st, uuid, type, now) runs after the
 * record, change and audit rows are written, just before COMMIT.  A hook
 * returning an error rolls everything back.  edit is consumed.  Results
 * as ag_edit.
 */
struct ag_edit_hook {
	int (*prepare)(void *ctx, const char *type, json_t *fields,
	    json_t *edit);
	int (*commit)(void *ctx, struct ag_store *st, const char *uuid,
	    const char *type, int64_t now);
	void *ctx;
};
int ag_edit_hooked(struct ag_store *st, const char *uuid, json_t *edit,
    const struct ag_edit_hook *hook);

/* ------------------------------------------- personal data (issue 6)
 * Hooks for agent/unlock.c and agent/pii.c (crypt.h, keys.h). */
struct ag_crypt;
/* Hands the store a sealer (owned; NULL = lock: the old one is wiped). */
void ag_store_set_crypt(struct ag_store *st, struct ag_crypt *c);
/* The store's sealer, NULL while locked or unprotected. */
struct ag_crypt *ag_store_crypt(struct ag_store *st);
/* Whether the store has a data key (a keyring row). */
void ag_store_set_protected(struct ag_store *st, int on);
int ag_store_protected(struct ag_store *st);
void ag_store_set_keystore_fns(struct ag_store *st, ag_keystore_wrap_fn wrap,
    ag_keystore_unwrap_fn unwrap, void *ctx);
void ag_store_keystore(struct ag_store *st, ag_keystore_wrap_fn *wrap,
    ag_keystore_unwrap_fn *unwrap, void **ctx);
/* Seals the pii of every stored record and change under dek (inside the
 * caller's transaction): the first ag_store_protect of a store that
 * already holds records. */
int ag_store_seal_existing(struct ag_store *st, const unsigned char *dek);
/* Opens the sealed pii of a fields object in place (an ag_outbox_open_fn:
 * ctx is the store).  GS_EPERM when locked. */
struct json_t;
int ag_store_open_fields_cb(void *ctx, const char *uuid, int form_version,
    struct json_t *fields);
/* The plaintext of a sealed member's text (an ag_outbox_open_text_fn:
 * ctx is the store).  GS_EPERM when locked. */
struct gs_buf;
int ag_store_open_text_cb(void *ctx, const char *uuid, int form_version,
    const char *sealed, size_t len, struct gs_buf *out);
/* One local audit row in its own statement (e.g. 'reveal': personal
 * data shown unmasked).  detail: JSON text without field values. */
int ag_store_audit(struct ag_store *st, const char *action, const char *uuid,
    const char *type, const char *detail);

/*
 * A record revision the platform sent down (the pull feed, issue 4).
 * ag_store_apply_platform writes it, inside the caller's transaction,
 * unless the record has a change of ours not yet delivered (the worker's
 * own edit wins locally and merges on the platform) or we hold that rev
 * or a newer one already, or the type is unknown: then *applied is 0.
 * Fields go through the same sealing as a local save.  GS_OK or a
 * storage error.
 */
struct ag_platform_rev {
	const char *uuid, *type, *grid, *author;
	int form_version;
	int64_t rev, created_at, updated_at;
	int deleted;
	const json_t *fields;      /* object, or NULL/null when deleted */
};
int ag_store_apply_platform(struct ag_store *st,
    const struct ag_platform_rev *p, int *applied);

/* Adds the store's part of the status to `into` (see ag_status). */
int ag_store_status(struct ag_store *st, json_t *into);

/*
 * The whole status as a JSON object (new reference in *out): the store's
 * part and every other part listed in status.c.  ag_status dumps it.
 */
int ag_status_build(struct ag_store *st, json_t **out);

/*
 * The sync problem of one record (status.c), for show: when the record's
 * latest change was rejected (3), quarantined (4) or conflicted (5), *out
 * is a new object {"state": "rejected"|"quarantined"|"conflicted",
 * "problems": the reasons the platform gave (an array of {field, rule,
 * message}) or a text, or null}; else NULL.  GS_OK or a storage error.
 */
int ag_record_problem(struct ag_store *st, const char *uuid, json_t **out);

/* Tests: on 0, the bulk import reads every line the full way (jansson
 * values, gs_record_validate), as before its fast path; 1 (the default)
 * again.  Process-wide.  Returns how many lines imports saved by the fast
 * path since the last call. */
size_t ag_import_spans_set(int on);

#endif
