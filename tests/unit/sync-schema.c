/*
 * sync-schema.c - unit tests for sync/schema: every embedded form and code
 * table loads, the contract's field names exist with the right kinds, every
 * code table a form names exists, pii is marked where it must be, and
 * broken definitions are refused at load.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "embedded.h"
#include "ids.h"
#include "schema.h"
#include "schema-priv.h"
#include "core/error.h"
#include "core/mem.h"

static void
test_loads(void **state)
{
	struct gs_schema *s = NULL;
	size_t i, k;

	(void)state;
	assert_int_equal(gs_schema_load(&s), GS_OK);
	assert_int_equal(gs_schema_nforms(s), 5);
	for (i = 0; i < gs_schema_nforms(s); i++) {
		const struct gs_form *f = gs_schema_form_at(s, i);

		assert_ptr_equal(gs_schema_form(s, gs_form_type(f)), f);
		assert_int_equal(gs_form_version(f), 1);
		assert_true(strlen(gs_form_label(f)) > 0);
		for (k = 0; k < gs_form_nfields(f); k++) {
			const struct gs_field *fd = gs_form_field_at(f, k);
			const char *t = gs_field_codes(fd);

			assert_ptr_equal(gs_form_field(f, gs_field_name(fd)),
			    fd);
			assert_true(strlen(gs_field_label(fd)) > 0);
			/* Every code table a form names exists and is not
			 * empty. */
			if (gs_field_kind(fd) == GS_KIND_ENUM ||
			    gs_field_kind(fd) == GS_KIND_TAGS) {
				assert_non_null(t);
				assert_true(gs_schema_ncodes(s, t) > 0);
			} else {
				assert_null(t);
			}
		}
		assert_null(gs_form_field(f, "no_such_field"));
		assert_null(gs_form_field_at(f, gs_form_nfields(f)));
	}
	assert_null(gs_schema_form(s, "grid"));
	assert_null(gs_schema_form(s, NULL));
	assert_null(gs_schema_form_at(s, 5));
	gs_schema_free(s);
	gs_schema_free(NULL);
}

struct want {
	const char *type;
	const char *field;
	enum gs_kind kind;
	int pii;
};

/* What the hash lookups must answer: a plain walk over the fields. */
static const struct gs_field *
walk_field(const struct gs_form *f, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < f->nfields; i++)
		if (strlen(f->fields[i].name) == len &&
		    memcmp(f->fields[i].name, name, len) == 0)
			return &f->fields[i];
	return NULL;
}

static const struct gs_code *
walk_code(const struct gs_codetable *t, const char *code)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->v[i].code, code) == 0)
			return &t->v[i];
	return NULL;
}

/* name, then every one-byte change, cut and extension of it. */
static void
same_field(const struct gs_form *f, const char *name)
{
	char buf[80];
	size_t len = strlen(name), i;
	unsigned c;

	assert_true(len + 2 < sizeof(buf));
	memcpy(buf, name, len + 1);
	assert_ptr_equal(gs_form_fieldn(f, buf, len), walk_field(f, buf, len));
	assert_ptr_equal(gs_form_field(f, buf), walk_field(f, buf, len));
	for (i = 0; i <= len; i++) {
		assert_ptr_equal(gs_form_fieldn(f, buf, i),
		    walk_field(f, buf, i));
		for (c = 0; c < 256; c += 7) {
			char was = buf[i];

			buf[i] = (char)c;
			assert_ptr_equal(gs_form_fieldn(f, buf, len + (i ==
			    len)), walk_field(f, buf, len + (i == len)));
			buf[i] = was;
		}
	}
}

static void
same_code(const struct gs_codetable *t, const char *code)
{
	char buf[80];
	size_t len = strlen(code), i;
	unsigned c;

	assert_true(len + 2 < sizeof(buf));
	memcpy(buf, code, len + 1);
	assert_ptr_equal(gs_codetable_find(t, buf), walk_code(t, buf));
	for (i = 0; i <= len; i++) {
		for (c = 0; c < 256; c += 5) {
			char was = buf[i];

			buf[i] = (char)c;
			buf[len + 1] = '\0';
			assert_ptr_equal(gs_codetable_find(t, buf),
			    walk_code(t, buf));
			buf[i] = was;
		}
	}
}

/*
 * The field-name and code hashes find exactly what a walk over the
 * names finds: every name, and every near miss of it (one byte changed,
 * cut short, one byte longer, a NUL inside), in every form and table.
 */
static void
test_lookups(void **state)
{
	struct gs_schema *s = NULL;
	size_t i, k;

	(void)state;
	assert_int_equal(gs_schema_load(&s), GS_OK);
	for (i = 0; i < s->nforms + s->nold; i++) {
		const struct gs_form *f = i < s->nforms ? &s->forms[i] :
		    &s->old[i - s->nforms];

		for (k = 0; k < f->nfields; k++)
			same_field(f, f->fields[k].name);
		same_field(f, "");
		same_field(f, "no_such_field");
	}
	for (i = 0; i < s->ntables; i++) {
		const struct gs_codetable *t = &s->tables[i];

		for (k = 0; k < t->n; k++) {
			assert_ptr_equal(gs_codetable_find(t, t->v[k].code),
			    &t->v[k]);
			same_code(t, t->v[k].code);
		}
		same_code(t, "");
		same_code(t, "ZZZ");
	}
	gs_schema_free(s);
}

static void
test_contract_fields(void **state)
{
	/* DESIGN.md section 3: these names are the contract. */
	static const struct want w[] = {
		{ "person", "name", GS_KIND_TEXT, 1 },
		{ "person", "id_number", GS_KIND_IDCARD, 1 },
		{ "person", "pop_type", GS_KIND_ENUM, 0 },
		{ "person", "sex", GS_KIND_ENUM, 0 },
		{ "person", "phone", GS_KIND_PHONE, 1 },
		{ "person", "address", GS_KIND_TEXT, 1 },
		{ "person", "house", GS_KIND_REF, 0 },
		{ "person", "tags", GS_KIND_TAGS, 0 },
		{ "person", "birth_date", GS_KIND_DATE, 1 },
		{ "house", "address", GS_KIND_TEXT, 1 },
		{ "house", "use", GS_KIND_ENUM, 0 },
		{ "house", "is_rental", GS_KIND_BOOL, 0 },
		{ "house", "owner_name", GS_KIND_TEXT, 1 },
		{ "house", "location", GS_KIND_GEO, 1 },
		{ "house", "tenant_id_number", GS_KIND_IDCARD, 1 },
		{ "org", "name", GS_KIND_TEXT, 0 },
		{ "org", "uscc", GS_KIND_USCC, 0 },
		{ "org", "org_kind", GS_KIND_ENUM, 0 },
		{ "org", "address", GS_KIND_TEXT, 1 },
		{ "org", "contact_phone", GS_KIND_PHONE, 1 },
		{ "org", "legal_rep_id_number", GS_KIND_IDCARD, 1 },
		{ "event", "category", GS_KIND_ENUM, 0 },
		{ "event", "title", GS_KIND_TEXT, 1 },
		{ "event", "description", GS_KIND_TEXT, 1 },
		{ "event", "place", GS_KIND_TEXT, 0 },
		{ "event", "location", GS_KIND_GEO, 0 },
		{ "event", "occurred_at", GS_KIND_DATETIME, 0 },
		{ "event", "urgency", GS_KIND_ENUM, 0 },
		{ "event", "self_handled", GS_KIND_BOOL, 0 },
		{ "visit", "kind", GS_KIND_ENUM, 0 },
		{ "visit", "subject", GS_KIND_REF, 0 },
		{ "visit", "purpose", GS_KIND_ENUM, 0 },
		{ "visit", "outcome", GS_KIND_ENUM, 0 },
		{ "visit", "place", GS_KIND_TEXT, 1 },
		{ "visit", "location", GS_KIND_GEO, 1 },
		{ "visit", "started_at", GS_KIND_DATETIME, 0 },
		{ "visit", "ended_at", GS_KIND_DATETIME, 0 },
		{ "visit", "content", GS_KIND_TEXT, 1 },
		{ "visit", "follow_up", GS_KIND_ENUM, 0 },
	};
	struct gs_schema *s = NULL;
	size_t i;

	(void)state;
	assert_int_equal(gs_schema_load(&s), GS_OK);
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		const struct gs_form *f = gs_schema_form(s, w[i].type);
		const struct gs_field *fd;

		assert_non_null(f);
		fd = gs_form_field(f, w[i].field);
		if (fd == NULL)
			fail_msg("%s.%s is missing", w[i].type, w[i].field);
		if (gs_field_kind(fd) != w[i].kind ||
		    gs_field_pii(fd) != w[i].pii)
			fail_msg("%s.%s: kind %d pii %d", w[i].type,
			    w[i].field, gs_field_kind(fd), gs_field_pii(fd));
	}
	assert_true(gs_field_required(gs_form_field(gs_schema_form(s,
	    "person"), "name")));
	assert_false(gs_field_required(gs_form_field(gs_schema_form(s,
	    "person"), "id_number")));
	gs_schema_free(s);
}

static void
test_code_tables(void **state)
{
	struct gs_schema *s = NULL;
	static const char *const provinces[] = { "11", "12", "13", "14", "15",
		"21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
		"41", "42", "43", "44", "45", "46", "50", "51", "52", "53",
		"54", "61", "62", "63", "64", "65", "71", "81", "82", "83" };
	size_t i;
	char code[3];

	(void)state;
	assert_int_equal(gs_schema_load(&s), GS_OK);
	assert_string_equal(gs_schema_code_label(s, "sex", "1"), "男");
	assert_string_equal(gs_schema_code_label(s, "sex", "2"), "女");
	assert_null(gs_schema_code_label(s, "sex", "3"));
	assert_null(gs_schema_code_label(s, "nope", "1"));
	/* GB 3304: 56 nationalities plus 97 and 98. */
	assert_int_equal(gs_schema_ncodes(s, "ethnic"), 58);
	for (i = 1; i <= 56; i++) {
		snprintf(code, sizeof(code), "%02zu", i);
		assert_non_null(gs_schema_code_label(s, "ethnic", code));
	}
	assert_string_equal(gs_schema_code_label(s, "ethnic", "01"), "汉族");
	assert_string_equal(gs_schema_code_label(s, "ethnic", "56"), "基诺族");
	assert_non_null(gs_schema_code_label(s, "ethnic", "98"));
	assert_int_equal(gs_schema_ncodes(s, "province"), 35);
	for (i = 0; i < 35; i++)
		assert_non_null(gs_schema_code_label(s, "province",
		    provinces[i]));
	/* The id-number check and the table agree on every prefix. */
	for (i = 0; i < 100; i++) {
		snprintf(code, sizeof(code), "%02zu", i);
		assert_int_equal(gs_province_valid((int)i),
		    gs_schema_code_label(s, "province", code) != NULL);
	}
	assert_int_equal(gs_schema_ncodes(s, "coord_sys"), 4);
	assert_int_equal(gs_schema_ncodes(s, "pop_type"), 3);
	assert_int_equal(gs_schema_ncodes(s, "visit_outcome"), 4);
	assert_int_equal(gs_schema_ncodes(s, "visit_kind"), 4);
	assert_non_null(gs_schema_code_label(s, "visit_kind", "HOME_VISIT"));
	assert_non_null(gs_schema_code_label(s, "person_tags", "MENTAL"));
	/* Sorted, so that lookups can bisect. */
	for (i = 1; i < gs_schema_ncodes(s, "event_category"); i++)
		assert_true(strcmp(gs_schema_code_at(s, "event_category",
		    i - 1), gs_schema_code_at(s, "event_category", i)) < 0);
	assert_null(gs_schema_code_at(s, "sex", 4));
	for (i = 1; i < gs_schema_ntables(s); i++)
		assert_true(strcmp(gs_schema_table_name(s, i - 1),
		    gs_schema_table_name(s, i)) < 0);
	gs_schema_free(s);
}

/* ------------------------------------------------ broken definitions */

#define SEX "{\"name\":\"sex\",\"label\":\"性别\",\"codes\":[" \
	"{\"code\":\"1\",\"label\":\"男\"},{\"code\":\"2\",\"label\":\"女\"}]}"

/* Loads one form (forms/t.json) next to the sex table; returns the
 * result and, on failure, checks that the message names the problem. */
static int
load_one(const char *codes_json, const char *form_json, const char *needle)
{
	struct gs_embedded files[3];
	struct gs_schema *s = NULL;
	int r;

	files[0].name = "codes/sex.json";
	files[0].data = (const unsigned char *)codes_json;
	files[0].len = strlen(codes_json);
	files[1].name = "forms/t.json";
	files[1].data = (const unsigned char *)form_json;
	files[1].len = strlen(form_json);
	files[2].name = NULL;
	gs_errmsg_clear();
	r = gs_schema_load_files(files, &s);
	if (r == GS_OK) {
		assert_non_null(s);
		gs_schema_free(s);
	} else {
		assert_null(s);
		if (needle != NULL && strstr(gs_errmsg(r), needle) == NULL)
			fail_msg("message \"%s\" lacks \"%s\"", gs_errmsg(r),
			    needle);
	}
	return r;
}

#define FORM(fields) "{\"type\":\"t\",\"label\":\"测试\",\"version\":1," \
	"\"fields\":[" fields "]}"
#define F_SEX "{\"name\":\"sex\",\"label\":\"性别\",\"kind\":\"enum\"," \
	"\"codes\":\"sex\",\"pii\":false}"

static void
test_refuses_broken(void **state)
{
	(void)state;
	assert_int_equal(load_one(SEX, FORM(F_SEX), NULL), GS_OK);
	/* A form that names a missing code table fails the load. */
	assert_int_equal(load_one(SEX, FORM("{\"name\":\"e\",\"label\":\"民族\","
	    "\"kind\":\"enum\",\"codes\":\"ethnic\",\"pii\":false}"),
	    "no code table \"ethnic\""), GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM("{\"name\":\"x\",\"label\":\"x\","
	    "\"kind\":\"txt\",\"max\":5,\"pii\":false}"), "unknown kind"),
	    GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM("{\"name\":\"x\",\"label\":\"x\","
	    "\"kind\":\"text\",\"pii\":false}"), "needs a max"), GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM("{\"name\":\"x\",\"label\":\"x\","
	    "\"kind\":\"text\",\"max\":5}"), "pii"), GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM("{\"name\":\"x\",\"label\":\"x\","
	    "\"kind\":\"text\",\"max\":5,\"pii\":false,\"requird\":true}"),
	    "unknown key \"requird\""), GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM(F_SEX "," F_SEX), "twice"),
	    GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM("{\"name\":\"Bad Name\","
	    "\"label\":\"x\",\"kind\":\"bool\",\"pii\":false}"), "[a-z0-9_]"),
	    GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM(F_SEX ",{\"name\":\"x\","
	    "\"label\":\"x\",\"kind\":\"bool\",\"pii\":false,\"required_if\":"
	    "{\"field\":\"sex\",\"in\":[\"3\"]}}"), "cannot be a value"),
	    GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM(F_SEX ",{\"name\":\"x\","
	    "\"label\":\"x\",\"kind\":\"bool\",\"pii\":false,\"required_if\":"
	    "{\"field\":\"nope\",\"in\":[\"1\"]}}"), "names no other field"),
	    GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM(F_SEX ",{\"name\":\"x\","
	    "\"label\":\"x\",\"kind\":\"bool\",\"pii\":false,\"required_if\":"
	    "{\"field\":\"sex\",\"in\":[\"1\"]}}"), NULL), GS_OK);
	assert_int_equal(load_one(SEX, FORM("{\"name\":\"x\",\"label\":\"x\","
	    "\"kind\":\"int\",\"codes\":\"sex\",\"pii\":false}"), "codes only"),
	    GS_ECORRUPT);
	assert_int_equal(load_one(SEX, FORM("{\"name\":\"x\",\"label\":\"x\","
	    "\"kind\":\"int\",\"min\":5,\"max\":1,\"pii\":false}"), "min > max"),
	    GS_ECORRUPT);
	assert_int_equal(load_one("{\"name\":\"sex\",\"label\":\"x\","
	    "\"codes\":[{\"code\":\"1\",\"label\":\"a\"},{\"code\":\"1\","
	    "\"label\":\"b\"}]}", FORM(F_SEX), "listed twice"), GS_ECORRUPT);
	assert_int_equal(load_one("{\"name\":\"gender\",\"label\":\"x\","
	    "\"codes\":[{\"code\":\"1\",\"label\":\"a\"}]}", FORM(F_SEX),
	    "differs from the file name"), GS_ECORRUPT);
	assert_int_equal(load_one(SEX, "{\"type\":\"t\",", NULL), GS_ECORRUPT);
	assert_int_equal(load_one(SEX, "{\"type\":\"t\",\"type\":\"u\"}",
	    NULL), GS_ECORRUPT);
	assert_int_equal(load_one(SEX, "{\"type\":\"t\",\"label\":\"x\","
	    "\"version\":0,\"fields\":[" F_SEX "]}", "version"), GS_ECORRUPT);
	assert_int_equal(load_one(SEX, "{\"type\":\"t\",\"label\":\"x\","
	    "\"version\":1,\"fields\":[" F_SEX "],\"checks\":[{\"check\":"
	    "\"idcard_sex\",\"idcard\":\"sex\",\"field\":\"sex\"}]}",
	    "idcard"), GS_ECORRUPT);
}

static void
test_load_enomem(void **state)
{
	struct gs_schema *s = NULL;
	long n;
	int r;

	(void)state;
	/* Every allocation failing in turn: clean failure, no leak. */
	for (n = 0;; n++) {
		gs_mem_fail_after(n);
		r = gs_schema_load(&s);
		gs_mem_fail_after(-1);
		if (r == GS_OK)
			break;
		assert_int_equal(r, GS_ENOMEM);
		assert_null(s);
	}
	assert_true(n > 0);
	gs_schema_free(s);
}

/* Reference data laid over the embedded files (gs_schema_load_extra):
 * a code table replaces the built-in one, a form version is added beside
 * the older one, and each version stays reachable. */
static void
test_load_extra(void **state)
{
	static const char sex2[] = "{\"name\":\"sex\",\"label\":\"性别\","
	    "\"codes\":[{\"code\":\"1\",\"label\":\"男\"},{\"code\":\"2\","
	    "\"label\":\"女\"},{\"code\":\"0\",\"label\":\"未知\"},"
	    "{\"code\":\"9\",\"label\":\"未说明\"},{\"code\":\"8\","
	    "\"label\":\"新\"}]}";
	const struct gs_embedded *pe = gs_embedded_find("forms/event.json");
	struct gs_embedded extra[4];
	struct gs_schema *s = NULL;
	const struct gs_form *f;
	char *v2 = NULL, *p, name[GS_SCHEMA_NAME_MAX];
	size_t n;
	int is_form, version;

	(void)state;
	assert_non_null(pe);
	/* event.json with version 2 and one more field (after "fields":[). */
	n = pe->len + 200;
	v2 = gs_malloc(n);
	assert_non_null(v2);
	p = strstr((const char *)pe->data, "\"version\": 1");
	assert_non_null(p);
	snprintf(v2, n, "%.*s\"version\": 2%s",
	    (int)(p - (const char *)pe->data), (const char *)pe->data,
	    p + strlen("\"version\": 1"));
	p = strstr(v2, "\"fields\": [");
	assert_non_null(p);
	p += strlen("\"fields\": [");
	memmove(p + 70, p, strlen(p) + 1);
	memcpy(p, "{\"name\":\"weather\",\"label\":\"天气\",\"kind\":\"text\","
	    "\"max\":9,\"pii\":false},", 70);
	assert_int_equal(gs_schema_doc_info(v2, strlen(v2), &is_form, name,
	    &version), GS_OK);
	assert_true(is_form);
	assert_string_equal(name, "event");
	assert_int_equal(version, 2);

	extra[0].name = "codes/sex.json";
	extra[0].data = (const unsigned char *)sex2;
	extra[0].len = strlen(sex2);
	extra[1].name = "forms/event@2.json";
	extra[1].data = (const unsigned char *)v2;
	extra[1].len = strlen(v2);
	extra[2].name = NULL;
	assert_int_equal(gs_schema_load_extra(extra, &s), GS_OK);
	f = gs_schema_form(s, "event");
	assert_int_equal(gs_form_version(f), 2);
	assert_non_null(gs_form_field(f, "weather"));
	f = gs_schema_form_version(s, "event", 1);
	assert_non_null(f);
	assert_int_equal(gs_form_version(f), 1);
	assert_null(gs_form_field(f, "weather"));
	assert_null(gs_schema_form_version(s, "event", 3));
	assert_int_equal(gs_schema_form_version(s, "person", 1) ==
	    gs_schema_form(s, "person"), 1);
	assert_string_equal(gs_schema_code_label(s, "sex", "8"), "新");
	/* One entry per type still: listings do not see versions twice. */
	for (n = 0; n < gs_schema_nforms(s); n++)
		assert_true(n == 0 || strcmp(gs_form_type(gs_schema_form_at(s,
		    n - 1)), gs_form_type(gs_schema_form_at(s, n))) != 0);
	gs_schema_free(s);
	s = NULL;

	/* The same version twice is refused, naming it. */
	extra[2] = extra[1];
	extra[2].name = "forms/event@2b.json";
	extra[3].name = NULL;
	gs_errmsg_clear();
	assert_int_equal(gs_schema_load_extra(extra, &s), GS_ECORRUPT);
	assert_null(s);
	assert_non_null(strstr(gs_errmsg(GS_ECORRUPT), "version 2 twice"));
	/* Neither kind, or a bad name: refused before any load. */
	assert_int_equal(gs_schema_doc_info("{\"x\":1}", 7, &is_form, name,
	    &version), GS_ECORRUPT);
	assert_int_equal(gs_schema_doc_info("{\"name\":\"A-b\",\"codes\":[]}",
	    25, &is_form, name, &version), GS_ECORRUPT);
	gs_free(v2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loads),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_contract_fields),
		cmocka_unit_test(test_code_tables),
		cmocka_unit_test(test_refuses_broken),
		cmocka_unit_test(test_load_enomem),
		cmocka_unit_test(test_load_extra),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
