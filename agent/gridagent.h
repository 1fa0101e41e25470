/*
 * gridagent.h - the public C API of the gridsync agent: the one header an
 * app on the handheld includes.  The gridagent CLI is built on it.
 *
 * A store is one agent home directory (agent.db inside it).  Records are
 * collected, edited and deleted locally; every save is one SQLite
 * transaction (WAL, synchronous=FULL) holding the record row and its
 * change row, so when a call returns GS_OK the save is durable, and when
 * it returns anything else nothing was changed.
 *
 * JSON crosses this interface as UTF-8 text, never as library types, so
 * an app needs no JSON library of ours.
 *
 * Return values are the project's error codes (GS_OK = 0, others from
 * sync/core/error.h, repeated as plain numbers in gs_strerror/
 * gs_error_exit terms).  After a failure ag_errmsg() gives one line of
 * human text saying what went wrong, and a failed validation also reports
 * every problem to the problem callback (ag_store_on_problem).
 *
 * Memory: strings returned through `char **` are the caller's and are
 * freed with ag_free().  Strings handed to callbacks and returned by
 * ag_errmsg() belong to the store and are valid only until the callback
 * returns / the next call on the same store.  A store is not thread-safe:
 * use one per thread (each opens its own connection; SQLite serializes
 * the writers).
 *
 * A save from an app, in short:
 *
 *	struct ag_store *st = NULL;
 *	char uuid[AG_UUID_LEN + 1];
 *	const char *rec = "{\"name\":\"...\",\"pop_type\":\"REGISTERED\",...}";
 *	int r;
 *
 *	if ((r = ag_store_open(home, &st)) != GS_OK)	// 0 is GS_OK
 *		show(ag_errmsg(r));
 *	ag_store_on_problem(st, mark_field_red, form);	// one call per problem
 *	r = ag_collect(st, "person", rec, strlen(rec), uuid);
 *	if (r == GS_OK)
 *		show_saved(uuid);			// durable now
 *	else
 *		show(ag_errmsg(r));			// nothing was saved
 *	ag_store_close(st);
 */
#ifndef GRIDAGENT_H
#define GRIDAGENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* GS_OK and the other codes, gs_strerror, gs_error_exit: plain C, no
 * dependencies. */
#include "core/error.h"

struct ag_store;

/* The agent's version (sent to the platform at enrollment, --version). */
#define GRIDAGENT_VERSION "0.1.0"

#define AG_UUID_LEN 36 /* text form, without the terminator */

/* Limits on what one call accepts (bigger input gets GS_ETOOBIG). */
#define AG_MAX_RECORD_JSON (1u << 20)      /* one record's JSON text */
#define AG_MAX_IMPORT (256u << 20)         /* one bulk import */

/*
 * The home directory for a --home option value (may be NULL): the option,
 * else $GRIDAGENT_HOME, else $HOME/.gridagent.  Returns a new string
 * (ag_free) or NULL when none can be found or memory runs out.
 */
char *ag_home_resolve(const char *option);

/*
 * Creates a store in home: the directory (mode 0700, parents as needed),
 * agent.db (mode 0600), the schema, and the settings grid and worker (each
 * may be NULL: enrollment sets them later).  GS_OK and *out (close with
 * ag_store_close); GS_EEXIST when home already holds an initialized
 * store; GS_EIO / GS_EDB when the directory or file cannot be made.
 */
int ag_store_init(const char *home, const char *grid, const char *worker,
    struct ag_store **out);

/*
 * Opens an initialized store and migrates it if this program is newer.
 * GS_OK and *out (ag_store_close).  GS_EPERM when home holds no store
 * ("run 'gridagent init' first"), GS_EDBVERSION when the database was
 * written by a newer program (left untouched), GS_ECORRUPT when agent.db
 * is not a database, GS_EIO when the home cannot be written ("HOME is
 * read-only (Read-only file system): ...", nothing touched), GS_EBUSY,
 * GS_EIO, GS_EDB otherwise.
 */
int ag_store_open(const char *home, struct ag_store **out);
/*
 * ag_store_open for a caller that only reads (list, show, status).  On a
 * home that can be written it is ag_store_open (a store written by an
 * older program is migrated).  On one that cannot (a read-only mount, a
 * chmod a-w home) the store is opened read-only instead of refused:
 * ag_store_readonly then says so, every write fails (GS_EDB), a reveal
 * is not audited (nowhere to write it: a warning says so), a store that
 * needs a migration is refused with GS_EIO and left as it is, and an
 * unlock session is used but neither refreshed nor ended.  ag_store_open
 * refuses such a home at once with GS_EIO, "HOME is read-only (...)".
 */
int ag_store_open_read(const char *home, struct ag_store **out);
/* 0: writable.  1: read-only, every save read as a writer would.  2:
 * read-only, the store file alone (no -shm could be made, sync/db.h
 * GS_DB_RO_SNAPSHOT): a process writing it elsewhere may not be seen. */
int ag_store_readonly(struct ag_store *st);
/* Closes and frees.  NULL ok. */
void ag_store_close(struct ag_store *st);

/* The detail of the last failure on this thread; never NULL. */
const char *ag_errmsg(int err);

/*
 * Validation problems.  When a collect, edit or import fails validation
 * (GS_EVALIDATION) the store calls fn once per problem, in order, before
 * returning: line is the 1-based input line of a bulk import (0 for a
 * single record), field is "" for the record as a whole, rule is a stable
 * id ("required", "check_digit", "parse", ...), message is human text
 * without the field name.  NULL fn: problems are only counted.
 */
typedef void (*ag_problem_fn)(void *ctx, size_t line, const char *field,
    const char *rule, const char *message);
void ag_store_on_problem(struct ag_store *st, ag_problem_fn fn, void *ctx);
/* How many problems the last collect, edit or import reported. */
size_t ag_problem_count(const struct ag_store *st);

/*
 * Collects one new record of `type` from a JSON object text (json, len
 * bytes; need not be NUL-terminated).  The fields are validated against
 * the type's form and normalized (e.g. a lower-case x in an id number
 * becomes X).  GS_OK with the new record's UUIDv7 in uuid_out; GS_EINVAL
 * for an unknown type; GS_EPARSE for text that is not one JSON object;
 * GS_EVALIDATION with the problems reported; GS_ETOOBIG; storage errors.
 */
int ag_collect(struct ag_store *st, const char *type, const char *json,
    size_t len, char uuid_out[AG_UUID_LEN + 1]);

/*
 * Bulk import: NDJSON text, one JSON object of `type` fields per line
 * (blank lines are skipped).  All or nothing: every line is checked, every
 * bad line is reported to the problem callback with its line number, and
 * if there was any, nothing is saved (GS_EVALIDATION, or GS_EPARSE when
 * the only faults were unparsable lines).  On success all records are
 * committed in one transaction and on_uuid (may be NULL) is called for
 * each new uuid in input order AFTER the commit; *count (may be NULL) is
 * the number saved.  The local audit gets one 'import' row naming the
 * count and the first and last uuid, not one row per record.
 */
typedef void (*ag_uuid_fn)(void *ctx, const char *uuid);
int ag_import_ndjson(struct ag_store *st, const char *type,
    const char *data, size_t len, ag_uuid_fn on_uuid, void *ctx,
    size_t *count);

/*
 * Edits a record: json is an object of the fields to set (null clears a
 * field).  The MERGED record (current fields plus the edit) is validated;
 * if it fails, nothing changes.  GS_OK; GS_ENOTFOUND when there is no such
 * record or it is deleted; GS_EINVAL for an empty edit; GS_EPARSE;
 * GS_EVALIDATION.  The change carries base_rev = the record's rev; unsent
 * changes to one record coalesce into one.
 */
int ag_edit(struct ag_store *st, const char *uuid, const char *json,
    size_t len);

/*
 * Deletes a record (a tombstone: the record stays, marked deleted, and a
 * delete change is queued).  reason may be NULL.  GS_OK; GS_ENOTFOUND
 * when there is no such record or it is deleted already.
 */
int ag_delete(struct ag_store *st, const char *uuid, const char *reason);

/*
 * One record as a JSON object text:
 *   {"uuid","type","form_version","grid","rev","deleted","created_at",
 *    "updated_at","author","pending","fields":{...}}
 * (times in ms; pending is true while a change of it is not yet
 * delivered to the platform: unsent or in a batch in flight).
 * Tombstones are returned too, with "deleted":true.  GS_OK and *json_out
 * (ag_free); GS_ENOTFOUND; GS_EINVAL for a malformed uuid.
 */
int ag_get(struct ag_store *st, const char *uuid, char **json_out);

/* One record as handed to an ag_list callback. */
struct ag_record {
	const char *uuid;
	const char *type;
	int form_version;
	const char *grid;
	int64_t rev;
	int deleted;
	int64_t created_at, updated_at;
	const char *author;
	const char *fields; /* the fields as a JSON object text */
	const char *json;   /* the whole record as one line, as ag_get */
};

/* Return non-zero to stop the listing early (ag_list then returns GS_OK). */
typedef int (*ag_record_fn)(void *ctx, const struct ag_record *rec);

#define AG_LIST_DELETED 1 /* include tombstones */

/*
 * Calls fn for every record of `type` (NULL: all types), oldest first.
 * GS_OK, or a storage error.  Do not call other functions on this store
 * from inside fn.
 */
int ag_list(struct ag_store *st, const char *type, int flags,
    ag_record_fn fn, void *ctx);

/*
 * The store's status as one JSON object text (ag_free):
 *   {"home","worker","grid","schema","records":{"person":N,...},
 *    "deleted":N,"changes":{"unsent":N,"batched":N,"delivered":N,
 *    "rejected":N,"quarantined":N,"conflicted":N}, ...}
 * plus whatever the sync side adds (device, outbox, last seq, chain head).
 */
int ag_status(struct ag_store *st, char **json_out);

/* ------------------------------------------- personal data at rest (#6)
 *
 * A protected store keeps every field its form marks pii sealed under a
 * random data key (DEK): XChaCha20-Poly1305 bound to the record uuid and
 * form version (agent/crypt.h has the stored form).  The DEK is wrapped
 * by a key derived from the worker's passphrase with Argon2id, or, when
 * the app set a keystore, by that too (then a short PIN is allowed: the
 * keystore limits attempts).  While the store is locked, calls that need
 * personal data (collect, import, edit, ag_get, an unmasked ag_list of a
 * record with pii) fail with GS_EPERM ("locked: run gridagent unlock");
 * masked listings, deletes, status and uploading already sealed batches
 * work.  A store made by ag_store_init is NOT protected until
 * ag_store_protect is called (the gridagent CLI always does).
 */

/*
 * The app's keystore (Android Keystore, iOS Keychain...): wrap turns the
 * in bytes into at most outmax bytes in out (*outlen), unwrap reverses
 * it; each returns 0 on success.  Set it before ag_store_protect /
 * ag_store_unlock; ctx is passed through.  NULL functions: no keystore.
 */
typedef int (*ag_keystore_wrap_fn)(void *ctx, const unsigned char *in,
    size_t inlen, unsigned char *out, size_t outmax, size_t *outlen);
typedef int (*ag_keystore_unwrap_fn)(void *ctx, const unsigned char *in,
    size_t inlen, unsigned char *out, size_t outmax, size_t *outlen);
void ag_store_set_keystore(struct ag_store *st, ag_keystore_wrap_fn wrap,
    ag_keystore_unwrap_fn unwrap, void *ctx);

/*
 * Protects the store under a passphrase (len bytes, any bytes): the first
 * call makes the DEK and seals the pii of every record already stored, in
 * one transaction, and leaves the store unlocked; a later call (unlocked)
 * re-wraps the same DEK under a new passphrase.  GS_OK; GS_EINVAL when
 * the passphrase breaks the policy (at least 10 characters, 16 if only
 * digits; 4 with a keystore); GS_EPERM when locked or the key was
 * destroyed.
 */
int ag_store_protect(struct ag_store *st, const char *pass, size_t len);
/*
 * Unlocks: GS_OK (also when already unlocked); GS_EPERM for a wrong
 * passphrase (each failure is counted; at the limit, default 10, the DEK
 * is destroyed and the pii is gone for good) or a destroyed key; GS_EINVAL
 * when the store was never protected.
 */
int ag_store_unlock(struct ag_store *st, const char *pass, size_t len);
/* Forgets the DEK (wiped from memory).  The store stays open. */
void ag_store_lock(struct ag_store *st);
/* 1 when the store is protected and locked. */
int ag_store_locked(struct ag_store *st);

#define AG_LIST_MASK 2 /* ag_list: pii shown masked (4403**********1230);
			  works while locked */

/* ag_get with the pii masked (works while locked). */
int ag_get_masked(struct ag_store *st, const char *uuid, char **json_out);

/*
 * The records holding this id number in any id-number field, found by
 * the blind index (no decryption): fn once per uuid (deleted records
 * left out).  GS_OK; GS_EPERM when locked; GS_EINVAL for an empty number.
 */
int ag_find_id_number(struct ag_store *st, const char *id_number,
    ag_uuid_fn fn, void *ctx);

/*
 * Purges the pii of records whose every change the platform has
 * receipted more than `days` days before now_ms (days < 0: the store's
 * setting 'retention_days', default 30): the sealed member is removed,
 * purged_at set, the index rows deleted, with secure_delete on and the
 * WAL truncated after.  Needs no key.  *count (may be NULL) = records
 * purged.
 */
int ag_purge(struct ag_store *st, int days, int64_t now_ms, size_t *count);

/* Frees what this API returned through a char ** (a text; wiped first:
 * a record's text may hold personal data).  NULL ok. */
void ag_free(void *p);

#ifdef __cplusplus
}
#endif

#endif
