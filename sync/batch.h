/*
 * batch.h - change records and the canonical NDJSON batch plaintext.
 *
 * A batch plaintext (what the envelope seals, before deflate) is:
 *
 *	{"v":1,"deployment":"<32 hex>","device":"<32 hex>","batch":"<32 hex>","seq":N,"count":N}\n
 *	<change line 1>\n
 *	...
 *	<change line count>\n
 *
 * The header line repeats the envelope header so the platform can check
 * they match (gs_batch_check_envelope).  Each change line is one JSON
 * object with exactly these keys in this order (docs/PROTOCOL.md):
 *
 *	{"change_id":"<uuid>","uuid":"<uuid>","type":"person","form_version":1,
 *	 "grid":"...","base_rev":0,"deleted":false,"created_at":ms,
 *	 "updated_at":ms,"author":"...","reason":null|"...","fields":{...}|null}
 *
 * Encoding is canonical: the same struct gives the same bytes (fixed key
 * order, no spaces, fields' keys sorted, UTF-8 unescaped, "/" unescaped).
 * Decoding is strict: it decodes, checks every key and type, and then
 * requires that re-encoding gives back the very same line, so any other
 * spelling (spaces, key order, escapes, 1.0 vs 1) is refused.  Every
 * refusal is GS_EPARSE with the 1-based line number in gs_errmsg().
 */
#ifndef GS_BATCH_H
#define GS_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"

#define GS_BATCH_VERSION 1
#define GS_CHANGE_TYPE_MAX 31     /* bytes, without the terminator */
#define GS_CHANGE_GRID_MAX 63
#define GS_CHANGE_AUTHOR_MAX 63
#define GS_CHANGE_REASON_MAX 1000
/* The longest line (header or change, without "\n") a decoder accepts. */
#define GS_BATCH_LINE_MAX (256 * 1024)

struct gs_change {
	char change_id[37];   /* UUIDv7 text; one applied change per id */
	char uuid[37];        /* the record's UUIDv7 */
	char type[32];        /* "person", "house", "org", "event", "visit" */
	int form_version;     /* >= 1 */
	char grid[64];        /* grid code */
	int64_t base_rev;     /* platform rev edited against; 0 = new record */
	int deleted;          /* 1 = tombstone: fields is NULL */
	json_t *fields;       /* the fields this change sets (an object; a JSON
	                         null value clears a field); owned; NULL iff
	                         deleted */
	char *reason;         /* delete reason or NULL; owned (gs_malloc) */
	int64_t created_at;   /* ms, device clock */
	int64_t updated_at;
	char author[64];      /* worker id */
};

/* Zeroes c (fields and reason NULL). */
void gs_change_init(struct gs_change *c);
/* Frees fields (json_decref) and reason; c may be reused after _init.
 * NULL ok. */
void gs_change_release(struct gs_change *c);

struct gs_batch_header {
	int v;                         /* GS_BATCH_VERSION */
	unsigned char deployment[16];
	unsigned char device[16];
	unsigned char batch[16];
	uint64_t seq;
	uint32_t count;                /* change lines that follow */
};

/* Appends the header line (with its "\n") to out.  GS_OK, GS_ETOOBIG
 * (out->max), GS_ENOMEM. */
int gs_batch_encode_header(struct gs_buf *out,
    const struct gs_batch_header *h);

/* Appends one canonical change line (with its "\n") to out.  GS_OK;
 * GS_EINVAL when c cannot be encoded (a uuid that is not canonical lower
 * case, a type outside [a-z0-9_]{1,31}, an over-long or non-UTF-8 string,
 * a control character, quote or backslash in grid/author, deleted with
 * fields or not deleted without an object, negative base_rev or times,
 * form_version < 1), with the reason in gs_errmsg(); GS_ETOOBIG when
 * out->max or GS_BATCH_LINE_MAX would be passed; GS_ENOMEM.  On failure
 * out->len is as before. */
int gs_batch_encode_change(struct gs_buf *out, const struct gs_change *c);

/*
 * The same line for a change (not a deletion, c->fields NULL) whose fields
 * object is given as its members m[0..n), spelled as the encoder writes
 * them and in strictly increasing key order: the members of objects that
 * gs_json_plain_object (json.h) found plain, merged.  The bytes are those
 * gs_batch_encode_change writes for the object those members make
 * (tests/unit/sync-batch.c compares them).  Members out of order are
 * GS_EINTERNAL; otherwise as gs_batch_encode_change.
 */
struct gs_json_span;
int gs_batch_encode_change_spans(struct gs_buf *out, const struct gs_change *c,
    const struct gs_json_span *m, size_t n);

/* Where change line i is in the text given to gs_batch_decode: its
 * canonical bytes (without the "\n"), which a receiver may keep instead
 * of encoding the change again, and the offset in them of the "fields"
 * value (0 when the decoder did not locate it).  Points into that text:
 * valid while the text is. */
struct gs_batch_line {
	const char *text;
	size_t len;
	size_t fields_off;
	/* gs_batch_decode_spans only: 1 when the change's fields object
	 * was left unbuilt (its c->fields NULL though it is no deletion),
	 * its members then the batch's members[m .. m + nm), in key order. */
	int spans;
	size_t m, nm;
};

/* Appends the canonical JSON text of a fields value (any JSON value), as
 * it appears in a change line: what a receiver stores as a record's
 * fields.  GS_OK; GS_EINVAL (nested deeper than 32); GS_ETOOBIG; GS_ENOMEM.
 * On failure out->len is as before. */
int gs_batch_encode_fields(struct gs_buf *out, json_t *fields);

/* Appends s[0..n) as a JSON string spelled as the encoder writes one
 * (quotes included).  GS_OK; GS_EINVAL when s is not valid UTF-8
 * (nothing appended); GS_ETOOBIG; GS_ENOMEM (out->len as before). */
int gs_batch_put_string(struct gs_buf *out, const char *s, size_t n);

/* A decoded batch: the header and count changes (owned), with their
 * lines (the array owned, the bytes the caller's). */
struct gs_batch {
	struct gs_batch_header hdr;
	struct gs_change *changes;
	struct gs_batch_line *lines;
	size_t n;
	struct gs_json_span *members; /* gs_batch_decode_spans: owned */
	size_t nmembers;
};

/* Strictly decodes a whole plaintext into b (caller's memory, filled only
 * on success).  GS_OK; GS_EPARSE with "line N: ..." in gs_errmsg() for a
 * malformed line, unknown/missing/duplicate key, wrong type, over-long
 * string, bad uuid/hex, non-canonical spelling, a change count that differs
 * from the header's, a missing final "\n", or data after the last line;
 * GS_EUNSUPPORTED for a header "v" other than 1; GS_ETOOBIG when the
 * header's count is above max_count (0 = no limit), before any change is
 * decoded; GS_ENOMEM.  Free with gs_batch_release. */
int gs_batch_decode(struct gs_batch *b, const char *text, size_t len,
    uint32_t max_count);

/*
 * The same decoding, the same verdict and the same errors, except that a
 * change whose "fields" is a plain object (gs_json_plain_object, json.h,
 * with its keys in the encoder's order) is not built: its c->fields stays
 * NULL, and its line's spans, m and nm say where its members are (the
 * batch's members array, pointing into text).  That is the common case,
 * and a receiver that reads the members (gs_record_validate_spans) needs
 * no jansson value for it; gs_batch_fields builds one when it does.
 */
int gs_batch_decode_spans(struct gs_batch *b, const char *text, size_t len,
    uint32_t max_count);
/*
 * Builds change i's fields object if gs_batch_decode_spans left it
 * unbuilt: then it is the very value gs_batch_decode gives.  GS_OK
 * (also when there was nothing to build), GS_ENOMEM.
 */
int gs_batch_fields(struct gs_batch *b, size_t i);
/* Frees every change; NULL ok. */
void gs_batch_release(struct gs_batch *b);

/*
 * A grid code or worker id as a change line must carry it (the rule the
 * encoder applies to grid and author): 1 to max bytes of valid UTF-8
 * without control characters (tabs and line breaks too), quotes or
 * backslashes.  GS_OK, or GS_EINVAL with the reason, naming what ("--grid
 * is empty").  The platform checks what an admin types with it, so that
 * no device is enrolled with a grid or worker its changes could never be
 * sent under.
 */
int gs_batch_check_label(const char *what, const char *s, size_t max);

/* GS_OK when the plaintext header repeats the envelope's deployment,
 * device, batch id, seq and record count; else GS_EPARSE ("line 1: seq 4
 * differs from the envelope's 5").  The arguments are the envelope
 * header's fields (see envelope.h). */
int gs_batch_check_envelope(const struct gs_batch_header *h,
    const unsigned char deployment[16], const unsigned char device[16],
    const unsigned char batch[16], uint64_t seq, uint32_t count);

#endif
