/*
 * outbox.h - sealed batches waiting for, or done with, their receipt.
 *
 * The device pipeline (DESIGN.md section 4), one SQLite transaction per
 * arrow, which is what makes a kill -9 at any point harmless:
 *
 *   seal     unsent changes (state 0) -> one immutable envelope in the
 *            outbox (seq = last seq + 1, chained to the previous
 *            envelope's hash); the changes become batched (state 1),
 *            a new record's creation as a sealed_creation row whose
 *            state is its batch's (schema/agent/0011)
 *   ack      a VERIFIED receipt -> the row acked and its changes delivered
 *            (2), or quarantined (4) / conflicted (5) as the signed results
 *            say; the record's rev follows the platform (in the narrow
 *            record_rev table, schema/agent/0009)
 *   reject   a permanent refusal -> the row rejected with its reason, every
 *            byte kept; its changes rejected (3)
 *
 * A crash before a COMMIT leaves the state before the arrow; after it, the
 * state after.  No row is ever deleted here.
 */
#ifndef AG_OUTBOX_H
#define AG_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

struct gs_db;
struct ag_device;
struct ag_outbox;

/* Batch size limits; each is also capped by what the platform
 * advertised (device row) and by the envelope format's own caps. */
struct ag_outbox_limits {
	uint32_t max_records; /* changes per batch */
	size_t max_plain;     /* NDJSON bytes per batch (the byte budget) */
	size_t max_envelope;  /* sealed bytes per batch */
	/* The envelope suite (sync/envelope.h): GS_ENV_SUITE_PH when the
	 * platform said it opens that ("suites" in its limits), else
	 * GS_ENV_SUITE, which every platform opens. */
	int suite;
};

/* Defaults (1000 changes, 4 MiB of NDJSON) capped by the device's
 * advertised limits and the envelope caps. */
void ag_outbox_limits_for(
    const struct ag_device *dev, struct ag_outbox_limits *lim);

/*
 * Issue 6: change fields of a protected store hold their pii sealed under
 * the device's DEK ("$pii", agent/crypt.h); sealing a batch opens them
 * through fn(ctx, uuid, form_version, fields), which must leave plain
 * fields.  Without an opener such a change stops the seal with GS_EPERM
 * (locked).  Uploading sealed rows never needs it.
 */
struct json_t;
typedef int (*ag_outbox_open_fn)(void *ctx, const char *uuid,
    int form_version, struct json_t *fields);
/*
 * The same for the sealed member's text alone (its base64, without the
 * quotes): its plaintext into out, which the outbox wipes after use
 * (agent/crypt.h, ag_crypt_open_text).  Sealing uses it to copy stored
 * fields into a batch line without parsing them; NULL: every change with
 * sealed pii goes through fn.
 */
struct gs_buf;
typedef int (*ag_outbox_open_text_fn)(void *ctx, const char *uuid,
    int form_version, const char *sealed, size_t len, struct gs_buf *out);
void ag_outbox_set_opener(struct ag_outbox *ob, ag_outbox_open_fn fn,
    ag_outbox_open_text_fn text_fn, void *ctx);

/*
 * Sealing copies a change's stored fields into its line when they are
 * spelled as the encoder writes them (the store writes them so), and
 * parses and encodes them otherwise; both give the same bytes.  on 0
 * makes it always parse and encode: tests compare the two ways.
 */
void ag_outbox_fast_lines(struct ag_outbox *ob, int on);

/* Prepares the outbox's statements on db (borrowed; must outlive it).
 * GS_OK and *out (ag_outbox_free), or an SQL/memory error. */
int ag_outbox_new(struct gs_db *db, struct ag_outbox **out);
void ag_outbox_free(struct ag_outbox *ob);

struct ag_outbox_sealed {
	int64_t seq;	/* 0 when nothing was sealed */
	uint32_t count; /* changes in the batch */
	size_t plain_bytes;
	size_t bytes;	  /* envelope bytes */
	uint32_t skipped; /* unsendable changes marked rejected (3) */
};

/*
 * Seals the oldest unsent changes (change_id order) into ONE batch that
 * fits lim, in ONE transaction.  dev supplies the keys and ids; its
 * last_seq and chain_head are read again inside the transaction (another
 * process may have sealed meanwhile) and updated on success.
 * GS_OK with info->seq = 0 when there is nothing to seal.  A single
 * change that cannot be encoded or is larger than any batch may be is
 * marked rejected (3) with the reason instead of blocking the queue
 * (counted in info->skipped).  Errors leave the database unchanged.
 */
int ag_outbox_seal(struct ag_outbox *ob, struct ag_device *dev,
    const struct ag_outbox_limits *lim, struct ag_outbox_sealed *info);

/* One stored batch, as it will be sent. */
struct ag_outbox_row {
	int64_t seq;
	unsigned char batch_id[16];
	unsigned char hash[GS_HASHBYTES];
	unsigned char *envelope; /* owned (gs_free) */
	size_t len;
	uint32_t record_count;
	int64_t attempts;
};

void ag_outbox_row_release(struct ag_outbox_row *row);

/* The sealed (not yet acked, not rejected) row with the lowest seq greater
 * than after_seq.  GS_OK with *found 1 and row filled (release it), or
 * *found 0. */
int ag_outbox_next_sealed(struct ag_outbox *ob, int64_t after_seq,
    struct ag_outbox_row *row, int *found);

/*
 * Records a verified receipt, in ONE transaction: the row becomes acked
 * (status 1) or quarantined (status 2: the device was revoked; the device
 * row is marked revoked and every change of the batch quarantined), the
 * receipt and results are stored, and with status 1 every change the
 * results list is marked as they say (quarantined 4, conflict 5, merged
 * 2 with the given rev) while every other change of the batch is
 * delivered (2; a sealed creation by the outbox row's state alone when
 * the results list nothing, schema/agent/0011) with its record's rev
 * raised to base_rev + 1 (revs are recorded in record_rev, never lowered,
 * and the record rows are not rewritten: schema/agent/0009, AG_SQL_REV in
 * store.h); the upload that brought the receipt is counted as an attempt
 * (ag_outbox_attempt) in the same transaction, one commit less per batch.
 * Idempotent: a row that is no longer sealed is left alone (the attempt
 * is still counted).  GS_OK; GS_EPROTOCOL when results is not the JSON
 * array the protocol says (nothing changed).
 */
int ag_outbox_ack(struct ag_outbox *ob, const struct ag_outbox_row *row,
    int status, const unsigned char *receipt, size_t receipt_len,
    const char *results);

/* A permanent refusal, in ONE transaction: the attempt counted, the row
 * rejected with reason, its changes rejected (3) with the same problem
 * text. */
int ag_outbox_reject(
    struct ag_outbox *ob, const struct ag_outbox_row *row, const char *reason);

/* Counts one more upload attempt (error NULL: none to keep). */
int ag_outbox_attempt(struct ag_outbox *ob, int64_t seq, const char *error);

struct ag_outbox_counts {
	int64_t changes[6]; /* by change state 0..5 */
	int64_t sealed;	    /* outbox rows by state */
	int64_t acked;
	int64_t quarantined;
	int64_t rejected;
	int64_t sealed_records; /* changes inside sealed rows */
	int64_t sealed_bytes;
	int64_t last_acked_seq;
};

int ag_outbox_counts(struct gs_db *db, struct ag_outbox_counts *c);

/*
 * What a sync still has to do: the unsent changes (changes[0] of
 * ag_outbox_counts) and the sealed batches, from the indexes on them
 * alone.  ag_outbox_counts reads every change row to count them all by
 * state: 40 ms for a store of 100,000 synced changes, at the end of each
 * sync and at every look for new saves of sync --watch.  With unsent
 * NULL only the sealed batches are counted: the unsent ones walk every
 * new record's pending_creation row, 50 ms for 100,000, which a sync
 * about to seal them all does not need to know first.
 */
int ag_outbox_pending(struct gs_db *db, int64_t *unsent, int64_t *sealed);

#endif
