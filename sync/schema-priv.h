/*
 * schema-priv.h - the loaded schema's structures, shared by schema.c (which
 * builds them from JSON) and validate.c (which walks them).  Nothing outside
 * those two files includes this; everyone else uses the accessors in
 * schema.h.
 *
 * Every string points into the parsed JSON documents that the schema keeps
 * (docs), so loading copies no strings and the schema frees them at once.
 */
#ifndef GS_SCHEMA_PRIV_H
#define GS_SCHEMA_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "schema.h"

#include "bytes-priv.h"

/* Slots of a form's field-name hash: a power of two, at least twice
 * GS_FORM_MAX_FIELDS, so that a probe ends at an empty slot soon. */
#define GS_FORM_SLOTS 256

/* The hash of those tables is gs_name_hash (bytes-priv.h). */

struct gs_code {
	const char *code;
	const char *label;
	size_t len; /* strlen(code) */
};

/* A code table; v is sorted by code (strcmp), and slot (mask + 1 of
 * them) is an open-addressing hash of the codes: 1 + the index in v, or
 * 0 for an empty slot. */
struct gs_codetable {
	const char *name;
	const char *label;
	struct gs_code *v;
	size_t n;
	uint32_t *slot;
	size_t mask;
	char list[96]; /* "0, 1, 2, 9" when short enough for messages */
};

enum gs_charset {
	GS_CHARSET_ANY = 0,
	GS_CHARSET_DIGITS, /* 0-9 */
	GS_CHARSET_ALNUM,  /* 0-9 A-Z a-z */
	GS_CHARSET_UPPER   /* A-Z */
};

struct gs_field {
	const char *name;
	const char *label;
	enum gs_kind kind;
	int required;
	int pii;
	int multiline; /* text: tab, LF and CR allowed */
	int past;      /* date/datetime: not in the future */
	int has_min, has_max;
	double min, max; /* characters for text, values for int/real */
	enum gs_charset charset;
	const struct gs_codetable *codes; /* enum, tags */
	const struct gs_field *req_if;    /* required when req_if's value */
	json_t *req_if_in;                /* is one of this array */
	size_t index;                     /* position in the form */
	size_t namelen;                   /* strlen(name) */
	/* The name's first 8 bytes as gs_json_span's k8 (json.h): a key
	 * with the same k8 and length differs at most past them. */
	uint64_t k8;
};

enum gs_check_kind {
	GS_CHECK_IDCARD_SEX = 1, /* field (sex) agrees with digit 17 */
	GS_CHECK_IDCARD_BIRTH,   /* field (date) agrees with digits 7-14 */
	GS_CHECK_NOT_BEFORE      /* field (datetime) >= other */
};

struct gs_check {
	enum gs_check_kind kind;
	const struct gs_field *field; /* where a problem is reported */
	const struct gs_field *other; /* the idcard, or the earlier time */
};

struct gs_form {
	const char *type;
	const char *label;
	int version;
	struct gs_field *fields; /* in declaration order */
	size_t nfields;
	const struct gs_field **by_name; /* sorted by name */
	/* Field-name hash: 1 + the field's index, or 0 for an empty slot. */
	unsigned char slot[GS_FORM_SLOTS];
	struct gs_check *checks;
	size_t nchecks;
	/* The indexes of the fields that are required or required_if, and
	 * of the ref fields, in form order: what gs_record_validate_spans
	 * reads besides the members a record has. */
	unsigned char must[GS_FORM_MAX_FIELDS];
	size_t nmust;
	unsigned char refs[GS_FORM_MAX_FIELDS];
	size_t nrefs;
};

struct gs_schema {
	json_t **docs;
	size_t ndocs;
	struct gs_codetable *tables; /* sorted by name */
	size_t ntables;
	struct gs_form *forms; /* sorted by type: the newest version of each */
	size_t nforms;
	struct gs_form *old; /* older versions, sorted by type and version */
	size_t nold;
};

/* The table of that name, or NULL. */
const struct gs_codetable *gs_schema_table(const struct gs_schema *s,
    const char *name);
/* The code entry in a table, or NULL. */
const struct gs_code *gs_codetable_find(const struct gs_codetable *t,
    const char *code);
/* The same for code[0..len), which need not be NUL-terminated. */
const struct gs_code *gs_codetable_findn(const struct gs_codetable *t,
    const char *code, size_t len);
/* The field of that name (len bytes, which may hold a NUL: then it is no
 * field's), or NULL: gs_form_field for a name that is not a C string. */
const struct gs_field *gs_form_fieldn(const struct gs_form *f,
    const char *name, size_t len);

#endif
