/*
 * schema.c - loads the record types (schema/forms/TYPE.json) and code tables
 * (schema/codes/NAME.json) that the build embeds, and checks them strictly:
 * a typo in a form is a build bug and must fail the first test, not
 * surface as a record that validates against nothing.
 *
 * The format (also in schema/README.md):
 *
 * Code table, schema/codes/NAME.json:
 *	{"name": "sex", "label": "性别", "source": "GB/T 2261.1-2003",
 *	 "codes": [{"code": "1", "label": "男"}, ...]}
 *   name must equal the file name; codes are unique, non-empty strings.
 *
 * Form, schema/forms/TYPE.json:
 *	{"type": "person", "label": "实有人口", "version": 1,
 *	 "fields": [FIELD, ...], "checks": [CHECK, ...]}
 *   FIELD is an object with
 *	name      [a-z0-9_], unique in the form (required)
 *	label     Chinese label (required)
 *	kind      text int real date datetime enum tags bool geo ref idcard
 *	          uscc phone (required)
 *	required  true: the value must be present (not absent, not null)
 *	required_if {"field": OTHER, "in": [VALUE, ...]}: required when the
 *	          OTHER field's value equals one of the VALUEs
 *	min, max  text: length bounds in characters (code points); max is
 *	          mandatory for text; int, real: value bounds (inclusive)
 *	codes     the code table of an enum or tags field (mandatory there,
 *	          refused elsewhere)
 *	charset   text only: "digits", "alnum" or "upper" (ASCII)
 *	multiline text only: true allows tab, LF and CR (long free text);
 *	          every other field refuses them like any control character
 *	past      date, datetime: must not lie in the future
 *	pii       true for personal data (names, id numbers, phones,
 *	          addresses, precise locations of people, free text about
 *	          people); mandatory, true or false
 *   CHECK is a cross-field rule:
 *	{"check": "idcard_sex", "idcard": F, "field": SEX}
 *	{"check": "idcard_birth", "idcard": F, "field": DATE}
 *	{"check": "not_before", "field": LATER, "other": EARLIER}
 *   Unknown keys anywhere are refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "embedded.h"
#include "schema-priv.h"
#include "schema.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "core/banned.h"

static const struct {
	const char *name;
	enum gs_kind kind;
} kinds[] = {
	{ "text", GS_KIND_TEXT },
	{ "int", GS_KIND_INT },
	{ "real", GS_KIND_REAL },
	{ "date", GS_KIND_DATE },
	{ "datetime", GS_KIND_DATETIME },
	{ "enum", GS_KIND_ENUM },
	{ "tags", GS_KIND_TAGS },
	{ "bool", GS_KIND_BOOL },
	{ "geo", GS_KIND_GEO },
	{ "ref", GS_KIND_REF },
	{ "idcard", GS_KIND_IDCARD },
	{ "uscc", GS_KIND_USCC },
	{ "phone", GS_KIND_PHONE },
	{ "attachments", GS_KIND_ATTACHMENTS },
};

static int
cmp_code(const void *a, const void *b)
{
	return strcmp(((const struct gs_code *)a)->code,
	    ((const struct gs_code *)b)->code);
}

static int
cmp_table(const void *a, const void *b)
{
	return strcmp(((const struct gs_codetable *)a)->name,
	    ((const struct gs_codetable *)b)->name);
}

static int
cmp_form(const void *a, const void *b)
{
	return strcmp(((const struct gs_form *)a)->type,
	    ((const struct gs_form *)b)->type);
}

/* By type, then version: the newest version of a type sorts last. */
static int
cmp_form_version(const void *a, const void *b)
{
	const struct gs_form *x = a, *y = b;
	int c = strcmp(x->type, y->type);

	if (c != 0)
		return c;
	return (x->version > y->version) - (x->version < y->version);
}

static int
cmp_field_ptr(const void *a, const void *b)
{
	return strcmp((*(const struct gs_field *const *)a)->name,
	    (*(const struct gs_field *const *)b)->name);
}

/* Refuses keys of obj that are not in the NULL-terminated list: a
 * misspelt "requird" would otherwise silently make a field optional. */
static int
only_keys(const char *file, const char *where, json_t *obj,
    const char *const *allowed)
{
	const char *key;
	json_t *v;
	size_t i;

	json_object_foreach(obj, key, v) {
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (allowed[i] == NULL)
			return GS_FAIL(GS_ECORRUPT, "%s: %s: unknown key \"%s\"",
			    file, where, key);
	}
	return GS_OK;
}

/* A required non-empty string member. */
static int
get_str(const char *file, const char *where, json_t *obj, const char *key,
    const char **out)
{
	json_t *v = json_object_get(obj, key);

	/* The pointer stays valid as long as the document: the schema
	 * keeps every document until gs_schema_free. */
	if (!json_is_string(v) || json_string_length(v) == 0)
		return GS_FAIL(GS_ECORRUPT, "%s: %s: \"%s\" should be a "
		    "non-empty string", file, where, key);
	*out = json_string_value(v);
	return GS_OK;
}

/* An optional boolean member (absent = 0). */
static int
get_bool(const char *file, const char *where, json_t *obj, const char *key,
    int *out)
{
	json_t *v = json_object_get(obj, key);

	*out = 0;
	if (v == NULL)
		return GS_OK;
	if (!json_is_boolean(v))
		return GS_FAIL(GS_ECORRUPT, "%s: %s: \"%s\" should be true or "
		    "false", file, where, key);
	*out = json_is_true(v);
	return GS_OK;
}

const struct gs_codetable *
gs_schema_table(const struct gs_schema *s, const char *name)
{
	struct gs_codetable key;

	key.name = name;
	return bsearch(&key, s->tables, s->ntables, sizeof(*s->tables),
	    cmp_table);
}

/*
 * A hash lookup rather than the binary search the sorted v allows: this
 * runs for every code of every record (about six per person), and the
 * search cost three string compares through bsearch's callback each.
 * The code is a C string: whatever follows a NUL is not looked at, as
 * strcmp would not.
 */
const struct gs_code *
gs_codetable_find(const struct gs_codetable *t, const char *code)
{
	return gs_codetable_findn(t, code, strlen(code));
}

const struct gs_code *
gs_codetable_findn(const struct gs_codetable *t, const char *code,
    size_t len)
{
	size_t k;
	const struct gs_code *c;

	for (k = gs_name_hash(code, len) & t->mask; t->slot[k] != 0;
	    k = (k + 1) & t->mask) {
		c = &t->v[t->slot[k] - 1];
		if (c->len == len && memcmp(c->code, code, len) == 0)
			return c;
	}
	return NULL;
}

/*
 * One code table.  The codes are sorted once here so that every lookup at
 * validation time is a binary search; duplicates are a build bug (which
 * label would win?), so they fail the load.
 */
static int
load_table(const char *file, json_t *doc, struct gs_codetable *t)
{
	static const char *const top[] = { "name", "label", "source", "codes",
		NULL };
	static const char *const item[] = { "code", "label", NULL };
	const char *base, *dot;
	json_t *codes, *c;
	size_t i, used, nslots, h;
	int r;

	if (!json_is_object(doc))
		return GS_FAIL(GS_ECORRUPT, "%s: should be an object", file);
	if ((r = only_keys(file, "table", doc, top)) != GS_OK ||
	    (r = get_str(file, "table", doc, "name", &t->name)) != GS_OK ||
	    (r = get_str(file, "table", doc, "label", &t->label)) != GS_OK)
		return r;
	/* The name is how forms refer to the table: it must be the file's. */
	base = strrchr(file, '/');
	base = base != NULL ? base + 1 : file;
	dot = strrchr(base, '.');
	if (dot == NULL || (size_t)(dot - base) != strlen(t->name) ||
	    strncmp(base, t->name, (size_t)(dot - base)) != 0)
		return GS_FAIL(GS_ECORRUPT, "%s: name \"%s\" differs from the "
		    "file name", file, t->name);
	codes = json_object_get(doc, "codes");
	if (!json_is_array(codes) || json_array_size(codes) == 0)
		return GS_FAIL(GS_ECORRUPT, "%s: \"codes\" should be a "
		    "non-empty array", file);
	t->n = json_array_size(codes);
	if ((t->v = gs_calloc(t->n, sizeof(*t->v))) == NULL)
		return GS_FAIL(GS_ENOMEM, "%s: %zu codes", file, t->n);
	json_array_foreach(codes, i, c) {
		char where[32];

		snprintf(where, sizeof(where), "code %zu", i + 1);
		if (!json_is_object(c))
			return GS_FAIL(GS_ECORRUPT, "%s: %s: should be an "
			    "object", file, where);
		if ((r = only_keys(file, where, c, item)) != GS_OK ||
		    (r = get_str(file, where, c, "code", &t->v[i].code)) !=
			GS_OK ||
		    (r = get_str(file, where, c, "label", &t->v[i].label)) !=
			GS_OK)
			return r;
	}
	qsort(t->v, t->n, sizeof(*t->v), cmp_code);
	for (i = 1; i < t->n; i++)
		if (strcmp(t->v[i - 1].code, t->v[i].code) == 0)
			return GS_FAIL(GS_ECORRUPT, "%s: code \"%s\" listed "
			    "twice", file, t->v[i].code);
	/* The hash for gs_codetable_find, at most half full. */
	for (nslots = 16; nslots < 2 * t->n; nslots *= 2)
		;
	if ((t->slot = gs_calloc(nslots, sizeof(*t->slot))) == NULL)
		return GS_FAIL(GS_ENOMEM, "%s: %zu codes", file, t->n);
	t->mask = nslots - 1;
	for (i = 0; i < t->n; i++) {
		t->v[i].len = strlen(t->v[i].code);
		for (h = gs_name_hash(t->v[i].code, t->v[i].len) & t->mask;
		    t->slot[h] != 0; h = (h + 1) & t->mask)
			;
		t->slot[h] = (uint32_t)(i + 1);
	}
	/* A short list of the codes, for messages like
	 * "should be one of 0, 1, 2, 9". */
	t->list[0] = '\0';
	used = 0;
	for (i = 0; i < t->n && t->n <= 12; i++) {
		int k = snprintf(t->list + used, sizeof(t->list) - used, "%s%s",
		    i > 0 ? ", " : "", t->v[i].code);

		if (k < 0 || (size_t)k >= sizeof(t->list) - used) {
			t->list[0] = '\0';
			break;
		}
		used += (size_t)k;
	}
	return GS_OK;
}

static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '_'))
			return 0;
	return 1;
}

/*
 * One field definition.  Every combination that validation would have to
 * guess about is refused here instead: min/max on a kind they do not apply
 * to, codes on a non-enum, a text without a length cap (which would let a
 * single record fill a handheld's flash), a field without a pii decision.
 */
static int
load_field(const struct gs_schema *s, const char *file, json_t *j,
    struct gs_field *fd)
{
	static const char *const keys[] = { "name", "label", "kind",
		"required", "required_if", "min", "max", "codes", "charset",
		"multiline", "past", "pii", NULL };
	const char *kind, *codes;
	json_t *v, *pii;
	size_t i;
	int r;

	if (!json_is_object(j))
		return GS_FAIL(GS_ECORRUPT, "%s: field %zu: should be an "
		    "object", file, fd->index + 1);
	if ((r = get_str(file, "field", j, "name", &fd->name)) != GS_OK)
		return r;
	if (!valid_name(fd->name) || strlen(fd->name) >= 64)
		return GS_FAIL(GS_ECORRUPT, "%s: field name \"%s\" should be "
		    "[a-z0-9_], shorter than 64", file, fd->name);
	if ((r = only_keys(file, fd->name, j, keys)) != GS_OK ||
	    (r = get_str(file, fd->name, j, "label", &fd->label)) != GS_OK ||
	    (r = get_str(file, fd->name, j, "kind", &kind)) != GS_OK ||
	    (r = get_bool(file, fd->name, j, "required", &fd->required)) !=
		GS_OK ||
	    (r = get_bool(file, fd->name, j, "multiline", &fd->multiline)) !=
		GS_OK ||
	    (r = get_bool(file, fd->name, j, "past", &fd->past)) != GS_OK)
		return r;
	fd->kind = 0;
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kind, kinds[i].name) == 0)
			fd->kind = kinds[i].kind;
	if (fd->kind == 0)
		return GS_FAIL(GS_ECORRUPT, "%s: %s: unknown kind \"%s\"", file,
		    fd->name, kind);
	/* pii is mandatory so that nobody adds a field without deciding. */
	pii = json_object_get(j, "pii");
	if (!json_is_boolean(pii))
		return GS_FAIL(GS_ECORRUPT, "%s: %s: \"pii\" should be true or "
		    "false", file, fd->name);
	fd->pii = json_is_true(pii);

	if ((v = json_object_get(j, "min")) != NULL) {
		if (!json_is_number(v))
			return GS_FAIL(GS_ECORRUPT, "%s: %s: min should be a "
			    "number", file, fd->name);
		fd->has_min = 1;
		fd->min = json_number_value(v);
	}
	if ((v = json_object_get(j, "max")) != NULL) {
		if (!json_is_number(v))
			return GS_FAIL(GS_ECORRUPT, "%s: %s: max should be a "
			    "number", file, fd->name);
		fd->has_max = 1;
		fd->max = json_number_value(v);
	}
	if ((fd->has_min || fd->has_max) && fd->kind != GS_KIND_TEXT &&
	    fd->kind != GS_KIND_INT && fd->kind != GS_KIND_REAL)
		return GS_FAIL(GS_ECORRUPT, "%s: %s: min/max only apply to "
		    "text, int and real", file, fd->name);
	if (fd->kind == GS_KIND_TEXT && !fd->has_max)
		return GS_FAIL(GS_ECORRUPT, "%s: %s: a text field needs a max "
		    "length", file, fd->name);
	if (fd->has_min && fd->has_max && fd->min > fd->max)
		return GS_FAIL(GS_ECORRUPT, "%s: %s: min > max", file,
		    fd->name);
	if ((fd->multiline || json_object_get(j, "charset") != NULL) &&
	    fd->kind != GS_KIND_TEXT)
		return GS_FAIL(GS_ECORRUPT, "%s: %s: multiline/charset only "
		    "apply to text", file, fd->name);
	if (fd->past && fd->kind != GS_KIND_DATE &&
	    fd->kind != GS_KIND_DATETIME)
		return GS_FAIL(GS_ECORRUPT, "%s: %s: past only applies to date "
		    "and datetime", file, fd->name);
	if ((v = json_object_get(j, "charset")) != NULL) {
		const char *cs = json_string_value(v);

		if (cs != NULL && strcmp(cs, "digits") == 0)
			fd->charset = GS_CHARSET_DIGITS;
		else if (cs != NULL && strcmp(cs, "alnum") == 0)
			fd->charset = GS_CHARSET_ALNUM;
		else if (cs != NULL && strcmp(cs, "upper") == 0)
			fd->charset = GS_CHARSET_UPPER;
		else
			return GS_FAIL(GS_ECORRUPT, "%s: %s: unknown charset",
			    file, fd->name);
	}

	v = json_object_get(j, "codes");
	if (fd->kind == GS_KIND_ENUM || fd->kind == GS_KIND_TAGS) {
		if ((r = get_str(file, fd->name, j, "codes", &codes)) != GS_OK)
			return r;
		if ((fd->codes = gs_schema_table(s, codes)) == NULL)
			return GS_FAIL(GS_ECORRUPT, "%s: %s: no code table "
			    "\"%s\" (schema/codes/%s.json)", file, fd->name,
			    codes, codes);
	} else if (v != NULL) {
		return GS_FAIL(GS_ECORRUPT, "%s: %s: codes only apply to enum "
		    "and tags", file, fd->name);
	}
	return GS_OK;
}

/* The required_if conditions, once every field of the form is known. */
static int
link_required_if(const char *file, json_t *jfields, struct gs_form *f)
{
	static const char *const keys[] = { "field", "in", NULL };
	const char *other;
	json_t *ri, *in, *val;
	size_t i, k;
	int r;

	for (i = 0; i < f->nfields; i++) {
		struct gs_field *fd = &f->fields[i];

		ri = json_object_get(json_array_get(jfields, i), "required_if");
		if (ri == NULL)
			continue;
		if (!json_is_object(ri))
			return GS_FAIL(GS_ECORRUPT, "%s: %s: required_if should "
			    "be an object", file, fd->name);
		if ((r = only_keys(file, fd->name, ri, keys)) != GS_OK ||
		    (r = get_str(file, fd->name, ri, "field", &other)) !=
			GS_OK)
			return r;
		if (fd->required)
			return GS_FAIL(GS_ECORRUPT, "%s: %s: both required and "
			    "required_if", file, fd->name);
		fd->req_if = gs_form_field(f, other);
		if (fd->req_if == NULL || fd->req_if == fd)
			return GS_FAIL(GS_ECORRUPT, "%s: %s: required_if names "
			    "no other field \"%s\"", file, fd->name, other);
		in = json_object_get(ri, "in");
		if (!json_is_array(in) || json_array_size(in) == 0)
			return GS_FAIL(GS_ECORRUPT, "%s: %s: required_if.in "
			    "should be a non-empty array", file, fd->name);
		/* Each value must be one the other field can take, or the
		 * condition could never hold. */
		json_array_foreach(in, k, val) {
			const struct gs_field *o = fd->req_if;
			int okv = 0;

			if (o->kind == GS_KIND_ENUM && json_is_string(val))
				okv = gs_codetable_find(o->codes,
				    json_string_value(val)) != NULL;
			else if (o->kind == GS_KIND_BOOL)
				okv = json_is_boolean(val);
			else if (o->kind == GS_KIND_INT)
				okv = json_is_integer(val);
			else if (o->kind == GS_KIND_TEXT)
				okv = json_is_string(val);
			if (!okv)
				return GS_FAIL(GS_ECORRUPT, "%s: %s: required_if "
				    "value %zu cannot be a value of %s", file,
				    fd->name, k + 1, other);
		}
		fd->req_if_in = in;
	}
	return GS_OK;
}

/*
 * Cross-field rules.  They are data, not code keyed on field names, so a
 * new form can reuse them (an org's legal representative could get an
 * idcard_sex check the day the form gets a sex field), and each names the
 * field its problem is reported on.
 */
static int
load_checks(const char *file, json_t *jchecks, struct gs_form *f)
{
	json_t *c;
	size_t i;
	int r;

	if (jchecks == NULL)
		return GS_OK;
	if (!json_is_array(jchecks))
		return GS_FAIL(GS_ECORRUPT, "%s: checks should be an array",
		    file);
	f->nchecks = json_array_size(jchecks);
	if (f->nchecks == 0)
		return GS_OK;
	if ((f->checks = gs_calloc(f->nchecks, sizeof(*f->checks))) == NULL)
		return GS_FAIL(GS_ENOMEM, "%s: checks", file);
	json_array_foreach(jchecks, i, c) {
		static const char *const idk[] = { "check", "idcard", "field",
			NULL };
		static const char *const nbk[] = { "check", "field", "other",
			NULL };
		struct gs_check *ck = &f->checks[i];
		const char *what, *a, *b;
		char where[32];

		snprintf(where, sizeof(where), "check %zu", i + 1);
		if (!json_is_object(c))
			return GS_FAIL(GS_ECORRUPT, "%s: %s: should be an "
			    "object", file, where);
		if ((r = get_str(file, where, c, "check", &what)) != GS_OK ||
		    (r = get_str(file, where, c, "field", &a)) != GS_OK)
			return r;
		ck->field = gs_form_field(f, a);
		if (strcmp(what, "not_before") == 0) {
			if ((r = only_keys(file, where, c, nbk)) != GS_OK ||
			    (r = get_str(file, where, c, "other", &b)) != GS_OK)
				return r;
			ck->kind = GS_CHECK_NOT_BEFORE;
			ck->other = gs_form_field(f, b);
			if (ck->field == NULL || ck->other == NULL ||
			    ck->field->kind != ck->other->kind ||
			    (ck->field->kind != GS_KIND_DATE &&
				ck->field->kind != GS_KIND_DATETIME))
				return GS_FAIL(GS_ECORRUPT, "%s: %s: not_before "
				    "needs two date or two datetime fields",
				    file, where);
			continue;
		}
		if ((r = only_keys(file, where, c, idk)) != GS_OK ||
		    (r = get_str(file, where, c, "idcard", &b)) != GS_OK)
			return r;
		ck->other = gs_form_field(f, b);
		if (ck->other == NULL || ck->other->kind != GS_KIND_IDCARD ||
		    ck->field == NULL)
			return GS_FAIL(GS_ECORRUPT, "%s: %s: needs an idcard "
			    "field and a field", file, where);
		if (strcmp(what, "idcard_sex") == 0 &&
		    ck->field->kind == GS_KIND_ENUM &&
		    strcmp(ck->field->codes->name, "sex") == 0)
			ck->kind = GS_CHECK_IDCARD_SEX;
		else if (strcmp(what, "idcard_birth") == 0 &&
		    ck->field->kind == GS_KIND_DATE)
			ck->kind = GS_CHECK_IDCARD_BIRTH;
		else
			return GS_FAIL(GS_ECORRUPT, "%s: %s: unknown check "
			    "\"%s\" or wrong field kind", file, where, what);
	}
	return GS_OK;
}

/* gs_json_span's k8 (json.h) of a name: its first 8 bytes as a
 * big-endian integer, zero-padded. */
static uint64_t
name_k8(const char *name, size_t len)
{
	uint64_t w = 0;
	size_t i;

	for (i = 0; i < 8; i++)
		w = w << 8 | (i < len ? (unsigned char)name[i] : 0);
	return w;
}

/*
 * One form.  Fields keep their declaration order (the order a UI shows
 * them and problems are reported in); by_name is a second, sorted view
 * that finds a name listed twice, and slot the hash for lookups, which
 * happen once per key of every record validated.
 */
static int
load_form(const struct gs_schema *s, const char *file, json_t *doc,
    struct gs_form *f)
{
	static const char *const top[] = { "type", "label", "version",
		"fields", "checks", NULL };
	json_t *jfields, *jv, *jf;
	size_t i;
	int r;

	if (!json_is_object(doc))
		return GS_FAIL(GS_ECORRUPT, "%s: should be an object", file);
	if ((r = only_keys(file, "form", doc, top)) != GS_OK ||
	    (r = get_str(file, "form", doc, "type", &f->type)) != GS_OK ||
	    (r = get_str(file, "form", doc, "label", &f->label)) != GS_OK)
		return r;
	if (!valid_name(f->type))
		return GS_FAIL(GS_ECORRUPT, "%s: type should be [a-z0-9_]",
		    file);
	jv = json_object_get(doc, "version");
	if (!json_is_integer(jv) || json_integer_value(jv) < 1 ||
	    json_integer_value(jv) > 1000000)
		return GS_FAIL(GS_ECORRUPT, "%s: version should be a positive "
		    "integer", file);
	f->version = (int)json_integer_value(jv);
	jfields = json_object_get(doc, "fields");
	if (!json_is_array(jfields) || json_array_size(jfields) == 0 ||
	    json_array_size(jfields) > GS_FORM_MAX_FIELDS)
		return GS_FAIL(GS_ECORRUPT, "%s: fields should be an array of "
		    "1 to %d fields", file, GS_FORM_MAX_FIELDS);
	f->nfields = json_array_size(jfields);
	f->fields = gs_calloc(f->nfields, sizeof(*f->fields));
	f->by_name = gs_calloc(f->nfields, sizeof(*f->by_name));
	if (f->fields == NULL || f->by_name == NULL)
		return GS_FAIL(GS_ENOMEM, "%s: fields", file);
	json_array_foreach(jfields, i, jf) {
		f->fields[i].index = i;
		if ((r = load_field(s, file, jf, &f->fields[i])) != GS_OK)
			return r;
		f->by_name[i] = &f->fields[i];
	}
	qsort(f->by_name, f->nfields, sizeof(*f->by_name), cmp_field_ptr);
	for (i = 1; i < f->nfields; i++)
		if (strcmp(f->by_name[i - 1]->name, f->by_name[i]->name) == 0)
			return GS_FAIL(GS_ECORRUPT, "%s: field \"%s\" listed "
			    "twice", file, f->by_name[i]->name);
	/* The names' hash (gs_form_fieldn), at most half full. */
	memset(f->slot, 0, sizeof(f->slot));
	for (i = 0; i < f->nfields; i++) {
		struct gs_field *fd = &f->fields[i];
		size_t k;

		fd->namelen = strlen(fd->name);
		fd->k8 = name_k8(fd->name, fd->namelen);
		for (k = gs_name_hash(fd->name, fd->namelen) &
		    (GS_FORM_SLOTS - 1); f->slot[k] != 0;
		    k = (k + 1) & (GS_FORM_SLOTS - 1))
			;
		f->slot[k] = (unsigned char)(i + 1);
	}
	if ((r = link_required_if(file, jfields, f)) != GS_OK)
		return r;
	f->nmust = f->nrefs = 0;
	for (i = 0; i < f->nfields; i++) {
		if (f->fields[i].required || f->fields[i].req_if != NULL)
			f->must[f->nmust++] = (unsigned char)i;
		if (f->fields[i].kind == GS_KIND_REF)
			f->refs[f->nrefs++] = (unsigned char)i;
	}
	return load_checks(file, json_object_get(doc, "checks"), f);
}

static int
prefixed(const char *name, const char *dir)
{
	size_t n = strlen(dir), len = strlen(name);

	return strncmp(name, dir, n) == 0 && len > n + 5 &&
	    strcmp(name + len - 5, ".json") == 0;
}
/*
 * Parses one embedded file strictly (duplicate keys refused) and keeps the
 * document in s->docs, which owns it from then on.  GS_OK or GS_ECORRUPT
 * naming the file and line.
 */
static int
parse_doc(struct gs_schema *s, const struct gs_embedded *e, json_t **out)
{
	json_error_t err;
	json_t *doc;

	doc = json_loadb((const char *)e->data, e->len, JSON_REJECT_DUPLICATES,
	    &err);
	if (doc == NULL)
		return GS_FAIL(GS_ECORRUPT, "%s:%d: %s", e->name, err.line,
		    err.text);
	s->docs[s->ndocs++] = doc;
	*out = doc;
	return GS_OK;
}


/*
 * The schema keeps every parsed document alive and points into it, so
 * loading copies no strings and freeing is one pass.  Either everything
 * loads or nothing is returned: a half-loaded schema would validate some
 * types and not others.
 */
int
gs_schema_load_files(const struct gs_embedded *files, struct gs_schema **out)
{
	struct gs_schema *s = NULL;
	const struct gs_embedded *e;
	size_t ntab = 0, nform = 0, it, ifo;
	int r = GS_EINTERNAL;

	*out = NULL;
	for (e = files; e->name != NULL; e++) {
		ntab += prefixed(e->name, "codes/");
		nform += prefixed(e->name, "forms/");
	}
	if ((s = gs_calloc(1, sizeof(*s))) == NULL ||
	    (s->docs = gs_calloc(ntab + nform + 1, sizeof(*s->docs))) ==
		NULL ||
	    (s->tables = gs_calloc(ntab + 1, sizeof(*s->tables))) == NULL ||
	    (s->forms = gs_calloc(nform + 1, sizeof(*s->forms))) == NULL ||
	    (s->old = gs_calloc(nform + 1, sizeof(*s->old))) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "schema");
		goto out;
	}
	/* Code tables first: forms refer to them. */
	for (e = files; e->name != NULL; e++) {
		json_t *doc;

		if (!prefixed(e->name, "codes/"))
			continue;
		if ((r = parse_doc(s, e, &doc)) != GS_OK)
			goto out;
		if ((r = load_table(e->name, doc, &s->tables[s->ntables++])) !=
		    GS_OK)
			goto out;
	}
	qsort(s->tables, s->ntables, sizeof(*s->tables), cmp_table);
	for (it = 1; it < s->ntables; it++)
		if (strcmp(s->tables[it - 1].name, s->tables[it].name) == 0) {
			r = GS_FAIL(GS_ECORRUPT, "code table %s twice",
			    s->tables[it].name);
			goto out;
		}
	for (e = files; e->name != NULL; e++) {
		json_t *doc;

		if (!prefixed(e->name, "forms/"))
			continue;
		if ((r = parse_doc(s, e, &doc)) != GS_OK)
			goto out;
		if ((r = load_form(s, e->name, doc, &s->forms[s->nforms++])) !=
		    GS_OK)
			goto out;
	}
	/*
	 * Several versions of a form may be held (reference data published
	 * by the platform: a record keeps the version it was collected
	 * with).  The newest of each type stays in forms, where every
	 * lookup by type finds it; the older ones move to old, found by
	 * gs_schema_form_version.  The same version twice is refused.
	 */
	qsort(s->forms, s->nforms, sizeof(*s->forms), cmp_form_version);
	for (ifo = 1; ifo < s->nforms; ifo++)
		if (cmp_form_version(&s->forms[ifo - 1], &s->forms[ifo]) == 0) {
			r = GS_FAIL(GS_ECORRUPT, "form %s version %d twice",
			    s->forms[ifo].type, s->forms[ifo].version);
			goto out;
		}
	nform = s->nforms;
	s->nforms = 0;
	for (ifo = 0; ifo < nform; ifo++) {
		if (ifo + 1 < nform && strcmp(s->forms[ifo].type,
		    s->forms[ifo + 1].type) == 0)
			s->old[s->nold++] = s->forms[ifo];
		else
			s->forms[s->nforms++] = s->forms[ifo];
	}
	*out = s;
	s = NULL;
	r = GS_OK;
out:
	gs_schema_free(s);
	return r;
}

int
gs_schema_load(struct gs_schema **out)
{
	return gs_schema_load_files(gs_embedded_files, out);
}

/* "codes/NAME.json" of an entry, or NULL for a form. */
static int
same_table(const struct gs_embedded *a, const struct gs_embedded *b)
{
	return prefixed(a->name, "codes/") && strcmp(a->name, b->name) == 0;
}

/*
 * The embedded files with extra's laid over them: a code table of extra
 * replaces the one of the same name (the last of extra wins), a form of
 * extra is added beside the embedded versions.  The merged table only
 * points at the caller's and the embedded data, so it is freed as soon
 * as the schema has parsed its documents.
 */
void
gs_schema_docs_release(struct gs_schema_docs *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		gs_free((void *)d->v[i].name);
		gs_free((void *)d->v[i].data);
	}
	gs_free(d->v);
	memset(d, 0, sizeof(*d));
}

int
gs_schema_docs_add(struct gs_schema_docs *d, int is_form, const char *name,
    int version, const void *data, size_t len)
{
	struct gs_embedded *e;
	char fname[GS_SCHEMA_NAME_MAX + 32];
	unsigned char *copy;

	/* n + 1: the NULL entry that ends the table always has a slot. */
	if (d->n + 1 >= d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;

		if ((e = gs_realloc(d->v, cap * sizeof(*e))) == NULL)
			return GS_FAIL(GS_ENOMEM, "reference documents");
		d->v = e;
		d->cap = cap;
	}
	if (is_form)
		snprintf(fname, sizeof(fname), "forms/%s@%d.json", name,
		    version);
	else
		snprintf(fname, sizeof(fname), "codes/%s.json", name);
	if ((copy = gs_malloc(len + 1)) == NULL)
		return GS_FAIL(GS_ENOMEM, "reference documents");
	memcpy(copy, data, len);
	copy[len] = '\0';
	e = &d->v[d->n];
	e->data = copy;
	e->len = len;
	if ((e->name = gs_strdup(fname)) == NULL) {
		gs_free(copy);
		return GS_FAIL(GS_ENOMEM, "reference documents");
	}
	d->n++;
	d->v[d->n].name = NULL;
	return GS_OK;
}

int
gs_schema_load_extra(const struct gs_embedded *extra, struct gs_schema **out)
{
	const struct gs_embedded *e, *x, *y;
	struct gs_embedded *all = NULL;
	size_t n = 0, k = 0;
	int r = GS_EINTERNAL, skip;

	*out = NULL;
	for (e = gs_embedded_files; e->name != NULL; e++)
		n++;
	for (x = extra; x != NULL && x->name != NULL; x++)
		n++;
	if ((all = gs_calloc(n + 1, sizeof(*all))) == NULL)
		return GS_FAIL(GS_ENOMEM, "schema");
	for (e = gs_embedded_files; e->name != NULL; e++) {
		skip = 0;
		for (x = extra; x != NULL && x->name != NULL && !skip; x++)
			skip = same_table(e, x);
		if (!skip)
			all[k++] = *e;
	}
	for (x = extra; x != NULL && x->name != NULL; x++) {
		skip = 0;
		for (y = x + 1; y->name != NULL && !skip; y++)
			skip = same_table(x, y);
		if (!skip)
			all[k++] = *x;
	}
	all[k].name = NULL;
	r = gs_schema_load_files(all, out);
	gs_free(all);
	return r;
}

int
gs_schema_doc_info(const void *data, size_t len, int *is_form,
    char name[GS_SCHEMA_NAME_MAX], int *version)
{
	json_error_t err;
	json_t *doc, *v;
	const char *nm;
	int r = GS_EINTERNAL;

	*is_form = 0;
	*version = 0;
	name[0] = '\0';
	if ((doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err)) ==
	    NULL)
		return GS_FAIL(GS_ECORRUPT, "line %d: %s", err.line, err.text);
	if (!json_is_object(doc)) {
		r = GS_FAIL(GS_ECORRUPT, "should be a JSON object");
		goto out;
	}
	if (json_object_get(doc, "type") != NULL) {
		*is_form = 1;
		nm = json_string_value(json_object_get(doc, "type"));
		v = json_object_get(doc, "version");
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 1000000) {
			r = GS_FAIL(GS_ECORRUPT, "a form needs a version, a "
			    "positive integer");
			goto out;
		}
		*version = (int)json_integer_value(v);
	} else if (json_object_get(doc, "codes") != NULL) {
		nm = json_string_value(json_object_get(doc, "name"));
	} else {
		r = GS_FAIL(GS_ECORRUPT, "neither a form (\"type\") nor a code "
		    "table (\"codes\")");
		goto out;
	}
	if (nm == NULL || !valid_name(nm) || strlen(nm) >= GS_SCHEMA_NAME_MAX) {
		r = GS_FAIL(GS_ECORRUPT, "%s name should be [a-z0-9_], shorter "
		    "than %d", *is_form ? "the form's type" : "the code table's",
		    GS_SCHEMA_NAME_MAX);
		goto out;
	}
	gs_strlcpy(name, nm, GS_SCHEMA_NAME_MAX);
	r = GS_OK;
out:
	json_decref(doc);
	return r;
}

void
gs_schema_free(struct gs_schema *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; s->forms != NULL && i < s->nforms; i++) {
		gs_free(s->forms[i].fields);
		gs_free(s->forms[i].by_name);
		gs_free(s->forms[i].checks);
	}
	for (i = 0; s->old != NULL && i < s->nold; i++) {
		gs_free(s->old[i].fields);
		gs_free(s->old[i].by_name);
		gs_free(s->old[i].checks);
	}
	gs_free(s->old);
	for (i = 0; s->tables != NULL && i < s->ntables; i++) {
		gs_free(s->tables[i].v);
		gs_free(s->tables[i].slot);
	}
	for (i = 0; s->docs != NULL && i < s->ndocs; i++)
		json_decref(s->docs[i]);
	gs_free(s->forms);
	gs_free(s->tables);
	gs_free(s->docs);
	gs_free(s);
}

size_t
gs_schema_nforms(const struct gs_schema *s)
{
	return s->nforms;
}

const struct gs_form *
gs_schema_form_at(const struct gs_schema *s, size_t i)
{
	return i < s->nforms ? &s->forms[i] : NULL;
}

const struct gs_form *
gs_schema_form(const struct gs_schema *s, const char *type)
{
	struct gs_form key;

	if (type == NULL)
		return NULL;
	key.type = type;
	return bsearch(&key, s->forms, s->nforms, sizeof(*s->forms),
	    cmp_form);
}

const struct gs_form *
gs_schema_form_version(const struct gs_schema *s, const char *type,
    int version)
{
	const struct gs_form *f = gs_schema_form(s, type);
	struct gs_form key;

	if (f == NULL || f->version == version)
		return f;
	key.type = type;
	key.version = version;
	return bsearch(&key, s->old, s->nold, sizeof(*s->old),
	    cmp_form_version);
}

const char *
gs_form_type(const struct gs_form *f)
{
	return f->type;
}

const char *
gs_form_label(const struct gs_form *f)
{
	return f->label;
}

int
gs_form_version(const struct gs_form *f)
{
	return f->version;
}

size_t
gs_form_nfields(const struct gs_form *f)
{
	return f->nfields;
}

const struct gs_field *
gs_form_field_at(const struct gs_form *f, size_t i)
{
	return i < f->nfields ? &f->fields[i] : NULL;
}

/*
 * A hash lookup: this runs for every key of every record validated, and
 * the binary search it replaces cost five string compares a key.
 */
const struct gs_field *
gs_form_fieldn(const struct gs_form *f, const char *name, size_t len)
{
	const struct gs_field *fd;
	size_t k;

	for (k = gs_name_hash(name, len) & (GS_FORM_SLOTS - 1);
	    f->slot[k] != 0; k = (k + 1) & (GS_FORM_SLOTS - 1)) {
		fd = &f->fields[f->slot[k] - 1];
		if (fd->namelen == len && memcmp(fd->name, name, len) == 0)
			return fd;
	}
	return NULL;
}

const struct gs_field *
gs_form_field(const struct gs_form *f, const char *name)
{
	if (name == NULL)
		return NULL;
	return gs_form_fieldn(f, name, strlen(name));
}

const char *
gs_field_name(const struct gs_field *fd)
{
	return fd->name;
}

const char *
gs_field_label(const struct gs_field *fd)
{
	return fd->label;
}

enum gs_kind
gs_field_kind(const struct gs_field *fd)
{
	return fd->kind;
}

int
gs_field_pii(const struct gs_field *fd)
{
	return fd->pii;
}

int
gs_field_required(const struct gs_field *fd)
{
	return fd->required;
}

const char *
gs_field_codes(const struct gs_field *fd)
{
	return fd->codes != NULL ? fd->codes->name : NULL;
}

const char *
gs_schema_code_label(const struct gs_schema *s, const char *table,
    const char *code)
{
	const struct gs_codetable *t;
	const struct gs_code *c;

	if (table == NULL || code == NULL ||
	    (t = gs_schema_table(s, table)) == NULL ||
	    (c = gs_codetable_find(t, code)) == NULL)
		return NULL;
	return c->label;
}

size_t
gs_schema_ntables(const struct gs_schema *s)
{
	return s->ntables;
}

const char *
gs_schema_table_name(const struct gs_schema *s, size_t i)
{
	return i < s->ntables ? s->tables[i].name : NULL;
}

size_t
gs_schema_ncodes(const struct gs_schema *s, const char *table)
{
	const struct gs_codetable *t = gs_schema_table(s, table);

	return t != NULL ? t->n : 0;
}

const char *
gs_schema_code_at(const struct gs_schema *s, const char *table, size_t i)
{
	const struct gs_codetable *t = gs_schema_table(s, table);

	return t != NULL && i < t->n ? t->v[i].code : NULL;
}
