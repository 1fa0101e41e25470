/*
 * sync-merge.c - every rule of the three-way merge (sync/merge.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/error.h"
#include "merge.h"

static json_t *
J(const char *text)
{
	json_error_t e;
	json_t *o = json_loads(text, 0, &e);

	assert_non_null(o);
	return o;
}

/* Runs a merge on texts (NULL = empty) and checks merged, deleted and the
 * conflicting fields (a comma list, "" for none). */
static void
check(const char *base, int bd, const char *theirs, int td,
    const char *ours, int od, const char *want, int want_del,
    const char *want_conflicts)
{
	json_t *b = base ? J(base) : NULL, *t = theirs ? J(theirs) : NULL;
	json_t *o = ours ? J(ours) : NULL, *w = J(want), *c;
	struct gs_merge_result m;
	char names[256] = "";
	size_t i;

	assert_int_equal(gs_merge3(b, bd, t, td, o, od, &m), GS_OK);
	assert_true(json_equal(m.merged, w));
	assert_int_equal(m.deleted, want_del);
	json_array_foreach(m.conflicts, i, c) {
		const char *f = json_string_value(json_object_get(c, "field"));

		if (i > 0)
			strncat(names, ",", sizeof(names) - strlen(names) - 1);
		strncat(names, *f ? f : json_string_value(json_object_get(c,
		    "rule")), sizeof(names) - strlen(names) - 1);
	}
	assert_string_equal(names, want_conflicts);
	gs_merge_result_release(&m);
	gs_merge_result_release(&m); /* twice is harmless */
	json_decref(b);
	json_decref(t);
	json_decref(o);
	json_decref(w);
}

static void
test_disjoint(void **state)
{
	(void)state;
	/* The platform changed phone, the device changed address. */
	check("{\"name\":\"a\",\"phone\":\"1\",\"address\":\"x\"}", 0,
	    "{\"name\":\"a\",\"phone\":\"2\",\"address\":\"x\"}", 0,
	    "{\"name\":\"a\",\"phone\":\"1\",\"address\":\"y\"}", 0,
	    "{\"name\":\"a\",\"phone\":\"2\",\"address\":\"y\"}", 0, "");
}

static void
test_same_field_same_value(void **state)
{
	(void)state;
	check("{\"a\":1}", 0, "{\"a\":2}", 0, "{\"a\":2}", 0, "{\"a\":2}", 0,
	    "");
}

static void
test_same_field_conflict(void **state)
{
	json_t *b = J("{\"a\":1,\"b\":1}"), *t = J("{\"a\":2,\"b\":1}");
	json_t *o = J("{\"a\":3,\"b\":5}"), *c;
	struct gs_merge_result m;

	(void)state;
	check("{\"a\":1,\"b\":1}", 0, "{\"a\":2,\"b\":1}", 0,
	    "{\"a\":3,\"b\":5}", 0, "{\"a\":2,\"b\":5}", 0, "a");
	/* Both values (and the base) are kept in the conflict. */
	assert_int_equal(gs_merge3(b, 0, t, 0, o, 0, &m), GS_OK);
	assert_int_equal(json_array_size(m.conflicts), 1);
	c = json_array_get(m.conflicts, 0);
	assert_string_equal(json_string_value(json_object_get(c, "rule")),
	    "field");
	assert_int_equal(json_integer_value(json_object_get(c, "base")), 1);
	assert_int_equal(json_integer_value(json_object_get(c, "platform")),
	    2);
	assert_int_equal(json_integer_value(json_object_get(c, "device")), 3);
	gs_merge_result_release(&m);
	json_decref(b);
	json_decref(t);
	json_decref(o);
}

static void
test_added_and_cleared(void **state)
{
	(void)state;
	/* Device adds a field, platform clears another: both survive. */
	check("{\"a\":1,\"b\":2}", 0, "{\"a\":1}", 0,
	    "{\"a\":1,\"b\":2,\"c\":3}", 0, "{\"a\":1,\"c\":3}", 0, "");
	/* null equals absent. */
	check("{\"a\":1,\"b\":null}", 0, "{\"a\":1}", 0,
	    "{\"a\":1,\"b\":null}", 0, "{\"a\":1}", 0, "");
	/* Both add the same new field with different values. */
	check(NULL, 0, "{\"c\":1}", 0, "{\"c\":2}", 0, "{\"c\":1}", 0, "c");
	/* One clears, the other edits the same field: a conflict. */
	check("{\"a\":1}", 0, "{}", 0, "{\"a\":5}", 0, "{}", 0, "a");
}

static void
test_nested_values(void **state)
{
	(void)state;
	check("{\"g\":{\"lat\":1}}", 0, "{\"g\":{\"lat\":1}}", 0,
	    "{\"g\":{\"lat\":2}}", 0, "{\"g\":{\"lat\":2}}", 0, "");
	check("{\"t\":[1]}", 0, "{\"t\":[1,2]}", 0, "{\"t\":[1,3]}", 0,
	    "{\"t\":[1,2]}", 0, "t");
}

static void
test_deletes(void **state)
{
	(void)state;
	/* Both deleted. */
	check("{\"a\":1}", 0, "{\"a\":1}", 1, "{\"a\":1}", 1, "{\"a\":1}", 1,
	    "");
	/* Device deletes, nobody else edited: deleted. */
	check("{\"a\":1}", 0, "{\"a\":1}", 0, "{\"a\":1}", 1, "{\"a\":1}", 1,
	    "");
	/* Device deletes, platform edited: conflict, platform's state. */
	check("{\"a\":1}", 0, "{\"a\":2}", 0, "{\"a\":1}", 1, "{\"a\":2}", 0,
	    "delete_edit");
	/* Platform deleted, device did not edit: stays deleted. */
	check("{\"a\":1}", 0, "{\"a\":1}", 1, "{\"a\":1}", 0, "{\"a\":1}", 1,
	    "");
	/* Platform deleted, device edited: conflict, stays deleted. */
	check("{\"a\":1}", 0, "{\"a\":1}", 1, "{\"a\":3}", 0, "{\"a\":3}", 1,
	    "edit_delete");
	/* Device deletes, platform cleared a field (absent, or null): an
	 * edit all the same, a conflict, not a silent delete. */
	check("{\"a\":1,\"b\":2}", 0, "{\"a\":1}", 0, "{\"a\":1}", 1,
	    "{\"a\":1}", 0, "delete_edit");
	check("{\"a\":1,\"b\":2}", 0, "{\"a\":1,\"b\":null}", 0, NULL, 1,
	    "{\"a\":1}", 0, "delete_edit");
	/* Platform deleted, device cleared a field: conflict. */
	check("{\"a\":1,\"b\":2}", 0, "{\"a\":1,\"b\":2}", 1, "{\"a\":1}",
	    0, "{\"a\":1}", 1, "edit_delete");
	/* A deleted base is an empty one. */
	check("{\"a\":1}", 1, "{\"a\":2}", 0, "{\"b\":1}", 0,
	    "{\"a\":2,\"b\":1}", 0, "");
}

static void
test_bad_input(void **state)
{
	json_t *a = json_array(), *o = json_object();
	struct gs_merge_result m;

	(void)state;
	assert_int_equal(gs_merge3(a, 0, o, 0, o, 0, &m), GS_EINVAL);
	assert_null(m.merged);
	assert_int_equal(gs_merge3(o, 0, a, 0, o, 0, &m), GS_EINVAL);
	assert_null(gs_merge_apply(a, NULL));
	json_decref(a);
	json_decref(o);
}

static void
test_apply_and_diff(void **state)
{
	json_t *b = J("{\"a\":1,\"b\":2}"), *p = J("{\"b\":null,\"c\":3}");
	json_t *x, *d, *w = J("{\"a\":1,\"c\":3}");

	(void)state;
	x = gs_merge_apply(b, p);
	assert_true(json_equal(x, w));
	d = gs_merge_diff(b, x);
	assert_true(json_equal(d, p));
	json_decref(x);
	x = gs_merge_apply(NULL, NULL);
	assert_int_equal(json_object_size(x), 0);
	json_decref(x);
	json_decref(d);
	json_decref(b);
	json_decref(p);
	json_decref(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disjoint),
		cmocka_unit_test(test_same_field_same_value),
		cmocka_unit_test(test_same_field_conflict),
		cmocka_unit_test(test_added_and_cleared),
		cmocka_unit_test(test_nested_values),
		cmocka_unit_test(test_deletes),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_apply_and_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
