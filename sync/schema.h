/*
 * schema.h - record types and code tables, loaded from the JSON files in
 * schema/forms and schema/codes that are embedded at build time.
 *
 * A form (record type) lists its fields: name, Chinese label, kind, whether
 * it is required or required-if, bounds, code table, and the pii flag.  The
 * agent validates against it at save time and the platform again at ingest.
 * The loaded schema is immutable and may be shared between threads.
 */
#ifndef GS_SCHEMA_H
#define GS_SCHEMA_H

#include <stddef.h>

enum gs_kind {
	GS_KIND_TEXT = 1,
	GS_KIND_INT,
	GS_KIND_REAL,
	GS_KIND_DATE,     /* "YYYY-MM-DD" */
	GS_KIND_DATETIME, /* RFC 3339 UTC, "2026-11-26T07:04:33Z" */
	GS_KIND_ENUM,     /* a code of the field's code table */
	GS_KIND_TAGS,     /* an array of codes of the field's code table */
	GS_KIND_BOOL,
	GS_KIND_GEO,      /* {"lat","lon","accuracy","coord_sys"} */
	GS_KIND_REF,      /* the uuid of another record */
	GS_KIND_IDCARD,   /* GB 11643 citizen id number */
	GS_KIND_USCC,     /* GB 32100 unified social credit code */
	GS_KIND_PHONE,    /* mainland mobile or landline */
	GS_KIND_ATTACHMENTS /* [{hash, mime, size, ...}]: set by `gridagent attach` */
};

struct gs_schema;
struct gs_form;
struct gs_field;

/* Loads the embedded forms and code tables.  GS_OK, GS_ENOMEM, or
 * GS_ECORRUPT when an embedded file is malformed (a build bug).
 * Free with gs_schema_free (NULL ok). */
int gs_schema_load(struct gs_schema **out);
void gs_schema_free(struct gs_schema *s);

size_t gs_schema_nforms(const struct gs_schema *s);
const struct gs_form *gs_schema_form_at(const struct gs_schema *s, size_t i);
/* The form for a type name, or NULL when there is no such type. */
const struct gs_form *gs_schema_form(const struct gs_schema *s,
    const char *type);

const char *gs_form_type(const struct gs_form *f);
const char *gs_form_label(const struct gs_form *f);
int gs_form_version(const struct gs_form *f);
size_t gs_form_nfields(const struct gs_form *f);
const struct gs_field *gs_form_field_at(const struct gs_form *f, size_t i);
/* The field of that name, or NULL. */
const struct gs_field *gs_form_field(const struct gs_form *f,
    const char *name);

const char *gs_field_name(const struct gs_field *fd);
const char *gs_field_label(const struct gs_field *fd);
enum gs_kind gs_field_kind(const struct gs_field *fd);
int gs_field_pii(const struct gs_field *fd);

/* The label of a code in a code table ("1" in "sex" -> "男"), or NULL. */
const char *gs_schema_code_label(const struct gs_schema *s,
    const char *table, const char *code);

/* ---- additions (H1): more accessors, and loading from a given table ---- */

struct gs_embedded;

/* Like gs_schema_load, but from `files` (a table shaped like
 * gs_embedded_files: sorted, NULL-terminated) instead of the built-in one.
 * Used by tests to prove that a broken form is refused. */
int gs_schema_load_files(const struct gs_embedded *files,
    struct gs_schema **out);

/* 1 when the field is always required (required-if does not count). */
int gs_field_required(const struct gs_field *fd);
/* The code table name of an enum or tags field, else NULL. */
const char *gs_field_codes(const struct gs_field *fd);

/* Code tables: how many, their names, and their codes in sorted order. */
size_t gs_schema_ntables(const struct gs_schema *s);
const char *gs_schema_table_name(const struct gs_schema *s, size_t i);
/* Number of codes in a table (0 when there is no such table). */
size_t gs_schema_ncodes(const struct gs_schema *s, const char *table);
/* The i-th code of a table, or NULL. */
const char *gs_schema_code_at(const struct gs_schema *s, const char *table,
    size_t i);

/* ---- reference data published by the platform (issue 4 item 6) ---- */

/*
 * The form of a type at exactly that version (the newest or an older one
 * held), or NULL.  gs_schema_form gives the newest.
 */
const struct gs_form *gs_schema_form_version(const struct gs_schema *s,
    const char *type, int version);

/*
 * Like gs_schema_load, with `extra` laid over the embedded files (a table
 * shaped like gs_embedded_files, NULL-terminated, may be NULL; names
 * "codes/NAME.json" or "forms/ANYTHING.json"): an extra code table
 * replaces the embedded one of that name (of several, the last wins), an
 * extra form adds a version beside the others.  Everything must load:
 * GS_OK, GS_ECORRUPT naming the document and what is wrong, GS_ENOMEM.
 * extra's data need only live until the call returns.
 */
int gs_schema_load_extra(const struct gs_embedded *extra,
    struct gs_schema **out);

/*
 * A table of reference documents for gs_schema_load_extra, built by the
 * platform from what it published and by the agent from what it fetched.
 * A zeroed struct is empty (v NULL, which gs_schema_load_extra takes).
 * gs_schema_docs_add copies data under the name the loader wants
 * ("forms/TYPE@VERSION.json" or "codes/NAME.json") and keeps v
 * NULL-terminated: GS_OK or GS_ENOMEM (nothing added).
 * gs_schema_docs_release frees the copies and zeroes d.
 */
struct gs_schema_docs {
	struct gs_embedded *v;
	size_t n, cap;
};
int gs_schema_docs_add(struct gs_schema_docs *d, int is_form,
    const char *name, int version, const void *data, size_t len);
void gs_schema_docs_release(struct gs_schema_docs *d);

/*
 * What a reference document is, before it is loaded: a form (*is_form 1,
 * name = its type, *version) or a code table (*is_form 0, name).  GS_OK,
 * or GS_ECORRUPT (not JSON, duplicate keys, neither kind, a name outside
 * [a-z0-9_] or too long).  The full check is gs_schema_load_extra.
 */
#define GS_SCHEMA_NAME_MAX 64
int gs_schema_doc_info(const void *data, size_t len, int *is_form,
    char name[GS_SCHEMA_NAME_MAX], int *version);

/* The most fields a form may have (a form with more is refused at
 * load): also the most members a valid record has. */
#define GS_FORM_MAX_FIELDS 128

#endif
