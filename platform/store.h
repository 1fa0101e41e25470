/*
 * store.h - the platform store INTERFACE.
 *
 * Everything the platform keeps goes through this table of operations, so
 * that a PostgreSQL store can implement it later beside the SQLite one
 * (store_sqlite.c) without touching ingest, enrollment or the CLI.  The
 * operations speak in the platform's terms (devices, tokens, batches,
 * revisions), not in SQL; JSON is passed as text.
 *
 * Threads: a store handle is used by one thread at a time.  The server
 * serializes every use with its own mutex (SQLite has one writer anyway);
 * other processes (the CLI) open their own handle and read concurrently
 * (WAL).
 *
 * Transactions: begin() .. commit() / rollback() bracket one batch ingest
 * or one enrollment; the write operations below are meant to run inside
 * one.  Single reads may run outside.
 *
 * Every operation returns GS_OK or an error code of sync/core/error.h:
 * GS_ENOTFOUND when a looked-up row does not exist, GS_EEXIST on a unique
 * key already taken, GS_EBUSY / GS_EIO / GS_EDB / GS_ECORRUPT from the
 * engine.
 */
#ifndef PF_STORE_H
#define PF_STORE_H

#include <stddef.h>
#include <stdint.h>

#define PF_ID_BYTES 16
#define PF_HASH_BYTES 32

struct pf_store;

struct pf_token {
	unsigned char token_id[PF_ID_BYTES];
	unsigned char token[32];   /* secret: wipe after use */
	int has_token;             /* 0 once used or expired (token wiped) */
	char worker[64];
	char name[128];
	char grid[64];
	int64_t created_at, expires_at, used_at; /* used_at 0 = unused */
};

struct pf_device {
	unsigned char id[PF_ID_BYTES];
	unsigned char pk[32];      /* Ed25519 identity key */
	unsigned char token_id[PF_ID_BYTES];
	char worker[64];
	char name[128];
	char grid[64];
	char agent_version[64];
	int revoked;
	int64_t enrolled_at, revoked_at, last_contact; /* 0 = never */
	/* The ledger. */
	uint64_t last_seq;         /* highest seq received */
	unsigned char chain_head[PF_HASH_BYTES]; /* hash of last_seq's envelope */
	int has_head;
	int chain_ok;              /* 0 once a prev hash did not match */
	int64_t batches;           /* batches received */
	int64_t missing;           /* seqs below last_seq never received */
};

/* A batch row.  When returned by batch_find the pointers are owned by the
 * row: release it with pf_batch_row_release. */
struct pf_batch_row {
	int64_t id;                /* set by batch_insert */
	unsigned char device[PF_ID_BYTES];
	unsigned char batch[PF_ID_BYTES];
	uint64_t seq;
	unsigned char prev_hash[PF_HASH_BYTES];
	unsigned char hash[PF_HASH_BYTES];
	unsigned char *envelope;   /* batch_find leaves this NULL (not loaded) */
	size_t envelope_len;
	int64_t received_at;
	int status;                /* receipt status 1 / 2 */
	int http_status;
	uint32_t applied, conflicted, quarantined;
	char chain[8];             /* "ok", "broken", "unknown" */
	unsigned char *receipt;
	size_t receipt_len;
	char *results;             /* JSON text */
};

void pf_batch_row_release(struct pf_batch_row *b);

/* A record's current state, as ingest needs it to decide a change. */
struct pf_record_state {
	int exists;
	char type[32];
	int64_t rev;
	int deleted;
	char *fields;              /* JSON object text or NULL; owned (gs_free) */
	/* 1 when every revision after the asked base_rev was made by the
	 * asking device (the merge rule of WIRE.md). */
	int same_device_since_base;
	/* The device that wrote the current row (its tallies count it). */
	unsigned char device[PF_ID_BYTES];
};

/* What one change did, for the changes ledger. */
enum pf_outcome {
	PF_APPLIED = 1,   /* fast-forward: rev = base_rev + 1 */
	PF_MERGED,        /* applied over the device's own later revisions */
	PF_CONFLICT,      /* kept beside the record, not applied */
	PF_QUARANTINED    /* kept in quarantine, not applied */
};

const char *pf_outcome_name(enum pf_outcome o);

/* A change being applied as a new revision. */
struct pf_revision {
	const char *uuid, *change_id, *type, *grid, *author;
	int form_version;
	int64_t rev, base_rev;
	int deleted;
	const char *fields;        /* the record's full fields after it (JSON) */
	const char *change;        /* the change as sent (JSON line) */
	/* Device times; applied_at is the batch's arrival.  Device times
	 * before GS_TIME_FLOOR_MS or over a day after applied_at flag the
	 * revision clock suspect (schema/platform 0012), nothing more. */
	int64_t created_at, updated_at, applied_at;
	const unsigned char *device;
	int64_t batch;             /* batches.id */
	enum pf_outcome outcome;   /* PF_APPLIED or PF_MERGED */
	int record_exists;         /* 0: the revision creates the record */
	/* fields is, character for character, the change line's own
	 * "fields" member: the revision keeps it once, in the line
	 * (platform 0010: revision_fields reads it from there). */
	int fields_in_change;
	/* When not 0, the lengths of change and fields, which then need
	 * no NUL after them (a run's lines, read where the batch's
	 * plaintext has them: ingest's run_one).  0: NUL-ended. */
	size_t change_len, fields_len;
	/* 1: the caller knows fields have no "attachments" member (what
	 * the attachments index reads), and the store does not search
	 * their text for one.  0: it searches. */
	int no_attachments;
};

struct pf_conflict {
	const char *uuid, *change_id, *change, *current_fields;
	int64_t base_rev, current_rev, created_at;
	const unsigned char *device;
	int64_t batch;
};

struct pf_quarantined {
	const char *uuid, *change_id, *type, *grid;
	const char *cause;         /* "invalid", "revoked", "duplicate" */
	const char *change;        /* the change as sent (JSON line) */
	const char *reasons;       /* JSON array text */
	int64_t created_at;
	const unsigned char *device;
	int64_t batch;
	int record_change;         /* 1: also claim change_id in the ledger */
};

/* A record for export.  Pointers valid during the callback only. */
struct pf_record_view {
	const char *uuid, *type, *grid, *fields, *author;
	int64_t rev, created_at, updated_at;
	int form_version, deleted;
	int clock_suspect;  /* a revision of it came with device times that
	                     * cannot be right (schema/platform 0012) */
};

struct pf_quarantine_view {
	int64_t id, batch, created_at;
	const unsigned char *device;
	const char *change_id, *uuid, *type, *grid, *cause, *reasons;
};

struct pf_conflict_view {
	int64_t id, batch, base_rev, current_rev, created_at;
	const unsigned char *device;
	const char *uuid, *change_id, *change, *current_fields, *status;
};

struct pf_store_ops {
	const char *name;
	void (*close)(struct pf_store *st);
	int (*integrity_check)(struct pf_store *st);
	/* The store is about to take ingest as a server, until close:
	 * whatever a long-lived writer wants (SQLite: checkpoints on a
	 * thread of their own, sync/db.h).  NULL: nothing to do.  A failure
	 * leaves the store working as before; the caller logs it. */
	int (*serve_start)(struct pf_store *st);

	/* Deployment settings: key -> text.  get: *out is gs_malloc'd. */
	int (*meta_get)(struct pf_store *st, const char *key, char **out);
	int (*meta_set)(struct pf_store *st, const char *key,
	    const char *value);

	int (*begin)(struct pf_store *st);
	int (*commit)(struct pf_store *st);
	void (*rollback)(struct pf_store *st);
	/* A commit that does not wait for the disk, and the wait for it
	 * (for every commit before too), which needs no lock and may run
	 * while another transaction does.  Until sync has returned GS_OK a
	 * crash of the machine may lose that commit and the ones after it,
	 * nothing else: an answer that promises the data is given only
	 * after sync.  NULL: commit waits for the disk itself. */
	int (*commit_nosync)(struct pf_store *st);
	int (*sync)(struct pf_store *st);

	/* Enrollment. */
	int (*token_put)(struct pf_store *st, const struct pf_token *t);
	int (*token_get)(struct pf_store *st, const unsigned char *token_id,
	    struct pf_token *out);
	/* Marks the token used (wiping the secret) and inserts the device, if
	 * the token is still unused and unexpired at now: else GS_EAUTH.
	 * GS_EEXIST when the device id is taken.  In a transaction. */
	int (*token_redeem)(struct pf_store *st, const unsigned char *token_id,
	    const struct pf_device *d, int64_t now);
	/* Wipes the secret of every token expired at now. */
	int (*token_expire)(struct pf_store *st, int64_t now);

	/* Devices. */
	int (*device_get)(struct pf_store *st, const unsigned char *id,
	    struct pf_device *out);
	int (*device_each)(struct pf_store *st,
	    int (*cb)(void *arg, const struct pf_device *d), void *arg);
	/* GS_ENOTFOUND, or GS_OK (also when it was revoked already). */
	int (*device_revoke)(struct pf_store *st, const unsigned char *id,
	    int64_t now);
	int (*device_touch)(struct pf_store *st, const unsigned char *id,
	    int64_t now);

	/* Batches. */
	int (*batch_find)(struct pf_store *st, const unsigned char *device,
	    const unsigned char *batch, struct pf_batch_row *out);
	/* Inserts the row (envelope included) and sets b->id; GS_EEXIST when
	 * (device, batch id) is taken.  The outcome fields are written later
	 * by batch_finish, in the same transaction. */
	int (*batch_insert)(struct pf_store *st, struct pf_batch_row *b);
	int (*batch_finish)(struct pf_store *st, const struct pf_batch_row *b);
	/* The device's ledger after batch b: raises last_seq and the chain
	 * head, checks b's prev hash against the kept hash of seq - 1 (and the
	 * kept seq + 1 against b's hash), stores the verdict in b->chain. */
	int (*ledger_update)(struct pf_store *st, struct pf_batch_row *b,
	    int64_t now);

	/* Records. */
	int (*record_state)(struct pf_store *st, const char *uuid,
	    const unsigned char *device, int64_t base_rev,
	    struct pf_record_state *out);
	/* GS_ENOTFOUND when the change id was never processed; else its
	 * outcome, rev and the device that sent it (16 bytes). */
	int (*change_find)(struct pf_store *st, const char *change_id,
	    enum pf_outcome *outcome, int64_t *rev, unsigned char *device);
	/* Writes the record row (inserted when !r->record_exists, else
	 * moved on) with its attachments index, the revision row, the
	 * changes ledger row and the pull feed row of the revision.  The
	 * device tallies are the caller's (tally_add), so that a batch
	 * writes each of them once. */
	int (*revision_put)(struct pf_store *st, const struct pf_revision *r);
	/* revision_put for the first revision of a record the platform
	 * does not have, by a change id it has not seen (rev 1, applied,
	 * !record_exists), without looking for either first: the ledger
	 * and the records refuse a key they hold.  GS_EEXIST, with nothing
	 * written, when either is held: the caller then looks, as for any
	 * other change.  NULL: the caller always looks. */
	int (*create_put)(struct pf_store *st, const struct pf_revision *r);
	/*
	 * A run of creations: what create_put writes for each, all of it
	 * by run_end at the latest, so a store may write rows set-wise.
	 * run_put takes a creation: its record (with its attachments index)
	 * and revision rows are written now or with later ones, and the
	 * strings of r must stay valid and unchanged until run_end.
	 * GS_EEXIST from run_put or run_end: a uuid or change id of the run
	 * is held.  run_end(keep 1) writes what is left (the ledger and feed
	 * rows, in the order of the run_puts: a feed row may list many of
	 * them, platform 0013), or undoes the whole run and says GS_EEXIST;
	 * run_end(keep 0) undoes the run.  After an error of run_put the
	 * caller ends the run with keep 0 (or rolls the transaction back).
	 * All the creations of a run have one grid and one device.
	 * Inside a transaction; runs do not nest.  NULL: no runs (the caller
	 * uses create_put).
	 */
	int (*run_begin)(struct pf_store *st);
	int (*run_put)(struct pf_store *st, const struct pf_revision *r);
	int (*run_end)(struct pf_store *st, int keep);
	/* The pull feed row of a revision written outside revision_put (an
	 * admin's, platform/admin.c): grid is the record's, own 1 for a
	 * device's plain fast-forward (the device holds it already). */
	int (*feed_record)(struct pf_store *st, const char *uuid, int64_t rev,
	    const char *grid, const unsigned char *device, int own);
	/* Adds delta to the device's tally `key` ("rev": revisions made;
	 * "rec:<type>": current records last written by the device), which
	 * reconcile reads instead of counting rows. */
	int (*tally_add)(struct pf_store *st, const unsigned char *device,
	    const char *key, int64_t delta);
	/* The attachments index of a record written outside revision_put
	 * (an admin's revision, platform/admin.c), after the record row:
	 * moved 1 when the record existed before (its old entries go).
	 * revision_put keeps it itself (schema/platform 0009). */
	int (*record_attach)(struct pf_store *st, const char *uuid,
	    const char *fields, int deleted, int moved);
	int (*conflict_put)(struct pf_store *st, const struct pf_conflict *c);
	int (*quarantine_put)(struct pf_store *st,
	    const struct pf_quarantined *q);

	/* Reads for the CLI.  type / grid NULL = all.  A callback returning
	 * non-zero stops the walk with that code. */
	int (*record_each)(struct pf_store *st, const char *type,
	    const char *grid,
	    int (*cb)(void *arg, const struct pf_record_view *r), void *arg);
	int (*quarantine_each)(struct pf_store *st,
	    int (*cb)(void *arg, const struct pf_quarantine_view *q),
	    void *arg);
	int (*conflict_each)(struct pf_store *st,
	    int (*cb)(void *arg, const struct pf_conflict_view *c),
	    void *arg);
	/* Reconciliation, per device: the seq ranges below the high-water
	 * mark that never arrived ([from, to], in order), and what the
	 * device's batches became. */
	int (*missing_ranges)(struct pf_store *st, const unsigned char *device,
	    int (*cb)(void *arg, uint64_t from, uint64_t to), void *arg);
	int (*device_counts)(struct pf_store *st, const unsigned char *device,
	    int64_t *quarantined, int64_t *conflicts, int64_t *revisions);
	/* Current records last written by the device, by type. */
	int (*records_by_type)(struct pf_store *st,
	    const unsigned char *device,
	    int (*cb)(void *arg, const char *type, int64_t n), void *arg);
	/* How many rows a table holds (tests and health). */
	int (*count)(struct pf_store *st, const char *what, int64_t *out);
};

struct pf_store {
	const struct pf_store_ops *ops;
};

/* Frees a record state's fields; NULL ok. */
void pf_record_state_release(struct pf_record_state *s);

/*
 * The SQLite store at path (created with GS_DB_CREATE when flags has
 * PF_STORE_CREATE), WAL, synchronous=FULL, migrated to schema/platform.
 * PF_STORE_READ: the caller only reads, and a store whose home cannot be
 * written is opened read-only (GS_DB_READ_FALLBACK, sync/db.h) instead
 * of refused; pf_store_sqlite_readonly then says so (gs_db_readonly's
 * answer).  GS_OK, or the errors of gs_db_open.  Close with
 * st->ops->close(st).
 */
#define PF_STORE_CREATE 1
#define PF_STORE_READ 2
/* The caller promises that one thread at a time uses the store (its lock
 * held, or one thread only): no SQLite mutex on every call
 * (GS_DB_ONE_THREAD, SQLITE_OPEN_NOMUTEX). */
#define PF_STORE_ONE_THREAD 4
int pf_store_sqlite_open(const char *path, int flags, struct pf_store **out);
int pf_store_sqlite_readonly(struct pf_store *st);

/*
 * The reconciliation queries (platform/recon_sql.c: ledgers, heartbeats,
 * merge conflicts, reviews, tasks, the pull feed) are written for SQLite
 * for now and run on the store's database through this: the statement
 * `text` prepared once into `slot` (< PF_SQLITE_EXT_MAX) and kept until
 * the store closes.  GS_EINTERNAL when st is not a SQLite store (a
 * PostgreSQL store would bring its own recon_sql), or the prepare error.
 */
#define PF_SQLITE_EXT_MAX 64
struct gs_stmt;
int pf_store_sqlite_stmt(struct pf_store *st, unsigned slot,
    const char *text, struct gs_stmt **out);

/* Closes any store; NULL ok. */
void pf_store_close(struct pf_store *st);

#endif
