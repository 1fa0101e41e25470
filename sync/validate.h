/*
 * validate.h - record validation, shared by the agent (at save time) and the
 * platform (at ingest).
 *
 * A failure names the field and the rule, and says what was expected:
 *	id_number: check digit should be 0, not 5
 * Problems are collected in a fixed-size list (no allocation), so that a
 * record with several faults reports all of them at once.
 */
#ifndef GS_VALIDATE_H
#define GS_VALIDATE_H

#include <stddef.h>

#include <jansson.h>

#include "core/buf.h"
#include "schema.h"

#define GS_PROBLEMS_MAX 16

struct gs_problem {
	char field[64];    /* field name, or "" for the record as a whole */
	char rule[32];     /* stable rule id: "required", "check_digit", ... */
	char message[192]; /* human text without the field name */
};

struct gs_problems {
	size_t n;        /* problems kept in v */
	size_t dropped;  /* problems past GS_PROBLEMS_MAX, counted only */
	struct gs_problem v[GS_PROBLEMS_MAX];
};

void gs_problems_init(struct gs_problems *p);
/* Adds one problem (formatted message); counts it as dropped when full. */
void gs_problems_add(struct gs_problems *p, const char *field,
    const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* "field: message; field: message" (and "(+N more)"). */
int gs_problems_format(const struct gs_problems *p, struct gs_buf *out);
/* A JSON array of {"field","rule","message"}; new reference or NULL. */
json_t *gs_problems_json(const struct gs_problems *p);

/*
 * Validates one record's fields against its form, and normalizes them in
 * place (an id number's lower-case x becomes X, phone numbers lose spaces,
 * hyphens and +86, strings are kept as given otherwise).  Checks: no
 * unknown fields, required and required-if, the kind of each value,
 * length bounds counted in characters, valid UTF-8 without control
 * characters, code table membership, GB 11643, GB 32100, phone numbers,
 * coordinates with a coordinate-system tag, and cross-field rules (sex
 * against the id number).  JSON null means "absent".
 *
 * GS_OK, or GS_EVALIDATION with every problem in *p (which this function
 * initializes), or GS_ENOMEM.  A NULL form gives GS_EVALIDATION with the
 * rule "unknown_type".  Rule ids are listed at the top of validate.c.
 */
int gs_record_validate(const struct gs_schema *s, const struct gs_form *f,
    json_t *fields, struct gs_problems *p);

/*
 * The common case of the two calls above without jansson values: 1 when
 * gs_record_validate would give GS_OK for the object whose members are
 * m[0..n) (spelled plain, as gs_json_plain_object or, in any order,
 * gs_json_plain_members finds them: json.h), and leave every value as it
 * is (nothing to normalize), and gs_record_check_self would find no ref
 * naming uuid.  0 for anything else: a problem, a value to normalize, a
 * null, a geo or attachments value, an unknown key, a key twice, a NULL
 * form.  Then the caller builds the object and runs those two, which
 * decide and name the problems; so the verdict and the reasons never
 * depend on this call.
 */
struct gs_json_span;
int gs_record_validate_spans(const struct gs_schema *s,
    const struct gs_form *f, const struct gs_json_span *m, size_t n,
    const char *uuid);
/*
 * The same, and two things more for a caller that stores the members
 * (the agent's bulk import): when it says 1, fd[i] is m[i]'s field; and a
 * phone number that gs_record_validate would normalize ("0755-6317
 * 5455", "+86 138 0013 8000") does not make it 0: its member is pointed
 * at the canonical spelling (a JSON string, quotes included) written
 * into norm[0..normlen), so that m[i].val then no longer follows m[i].key
 * in the text.  1 exactly when gs_record_validate would give GS_OK and
 * leave every value as the members (so changed) spell it, and
 * gs_record_check_self find no ref naming uuid.  Members of a 0 may have
 * been changed.
 */
struct gs_field;
int gs_record_validate_spans_norm(const struct gs_schema *s,
    const struct gs_form *f, struct gs_json_span *m, size_t n,
    const char *uuid, const struct gs_field **fd, char *norm,
    size_t normlen);

/*
 * DESIGN.md section 3: a ref is the uuid of ANOTHER record.  After
 * gs_record_validate (refs canonical), adds a "self_ref" problem to *p
 * (not initialized here) for each ref field of fields equal to uuid, the
 * record's own.  GS_OK, or GS_EVALIDATION when one was added.
 */
int gs_record_check_self(const struct gs_form *f, json_t *fields,
    const char *uuid, struct gs_problems *p);

/*
 * Turns command-line NAME=VALUE arguments into typed JSON values in `into`
 * (an object; existing keys are replaced).  The value's JSON type comes from
 * the field's kind: int and real are numbers, bool accepts
 * true/false/1/0/yes/no/是/否, tags take "A,B,C", geo takes
 * "LAT,LON[,ACCURACY[,COORD_SYS]]", and an empty VALUE gives null (clears
 * the field on edit).  Unknown fields and values of the wrong kind are
 * problems.  GS_OK, GS_EVALIDATION (with *p filled) or GS_ENOMEM
 * (GS_EINVAL when f is NULL or into is not an object: a caller bug).
 */
int gs_fields_from_args(const struct gs_form *f, char *const *args, int n,
    json_t *into, struct gs_problems *p);

#endif
