/*
 * merge.c - three-way merge by field (the rules are in merge.h).
 *
 * Why by field and not by record: two workers who fix different fields of
 * the same resident (one the phone, the other the address) both did the
 * right thing, and neither edit may be lost; only when they disagree on
 * the same field does a human need to decide.  Why the platform's value is
 * kept in the merged state of a conflict: it is what every other device
 * already holds, so nothing changes under anyone's feet until an admin
 * resolves, and the device's value is kept beside it in the conflict.
 */
#include <string.h>

#include "core/error.h"
#include "merge.h"
#include "core/banned.h"

/* A field's value, NULL for "no value" (absent or JSON null). */
static json_t *
value(const json_t *o, const char *k)
{
	json_t *v;

	if (o == NULL)
		return NULL;
	v = json_object_get(o, k);
	return json_is_null(v) ? NULL : v;
}

/* Equality where "no value" equals "no value". */
static int
same(const json_t *a, const json_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return json_equal(a, b);
}

/* Whole states equal (objects, NULL = empty). */
static int
same_state(const json_t *a, const json_t *b)
{
	const char *k;
	json_t *v;

	if (a != NULL)
		json_object_foreach((json_t *)a, k, v)
			if (!same(value(a, k), value(b, k)))
				return 0;
	if (b != NULL)
		json_object_foreach((json_t *)b, k, v)
			if (!same(value(a, k), value(b, k)))
				return 0;
	return 1;
}

/* Copy of a value or JSON null; never NULL unless out of memory. */
static json_t *
copy_or_null(const json_t *v)
{
	return v != NULL ? json_deep_copy(v) : json_null();
}

static int
add_conflict(json_t *arr, const char *field, const char *rule,
    const json_t *b, const json_t *t, const json_t *o)
{
	json_t *c = json_pack("{s:s,s:s,s:o,s:o,s:o}", "field", field,
	    "rule", rule, "base", copy_or_null(b), "platform",
	    copy_or_null(t), "device", copy_or_null(o));

	if (c == NULL || json_array_append_new(arr, c) != 0)
		return GS_FAIL(GS_ENOMEM, "merge conflicts");
	return GS_OK;
}

/* Copy of an object (NULL = empty), without its null values. */
static json_t *
clean_copy(const json_t *o)
{
	json_t *out = json_object(), *v;
	const char *k;

	if (out == NULL || o == NULL)
		return out;
	json_object_foreach((json_t *)o, k, v) {
		if (json_is_null(v))
			continue;
		if (json_object_set_new(out, k, json_deep_copy(v)) != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* One field of a merge where neither side is deleted. */
static int
merge_field(const char *k, const json_t *base, const json_t *theirs,
    const json_t *ours, json_t *merged, json_t *conflicts)
{
	json_t *b = value(base, k), *t = value(theirs, k), *o = value(ours, k);
	json_t *pick;

	if (same(t, o) || same(o, b))
		pick = t;
	else if (same(t, b))
		pick = o;
	else {
		/* Both moved, to different values: the platform's stays. */
		pick = t;
		if (add_conflict(conflicts, k, "field", b, t, o) != GS_OK)
			return GS_ENOMEM;
	}
	if (pick == NULL)
		return json_object_del(merged, k), GS_OK;
	if (json_object_set_new(merged, k, json_deep_copy(pick)) != 0)
		return GS_FAIL(GS_ENOMEM, "merge");
	return GS_OK;
}

int
gs_merge3(const json_t *base, int base_deleted, const json_t *theirs,
    int theirs_deleted, const json_t *ours, int ours_deleted,
    struct gs_merge_result *out)
{
	int r = GS_EINTERNAL;
	const char *k;
	json_t *v;
	const json_t *const all[3] = { base, theirs, ours };
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < 3; i++)
		if (all[i] != NULL && !json_is_object(all[i]))
			return GS_FAIL(GS_EINVAL, "merge: a state is not an "
			    "object");
	if (base_deleted)
		base = NULL;
	if ((out->conflicts = json_array()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "merge");
		goto out;
	}

	if (ours_deleted || theirs_deleted) {
		/* A tombstone against an edit is never decided silently:
		 * "deletes always win" is how other systems lose data. */
		if (ours_deleted && theirs_deleted) {
			out->deleted = 1;
		} else if (ours_deleted) {
			if (same_state(theirs, base))
				out->deleted = 1;
			else if ((r = add_conflict(out->conflicts, "",
			    "delete_edit", NULL, NULL, NULL)) != GS_OK)
				goto out;
		} else {
			out->deleted = 1;
			if (!same_state(ours, base) && (r = add_conflict(
			    out->conflicts, "", "edit_delete", NULL, NULL,
			    NULL)) != GS_OK)
				goto out;
		}
		/* The last fields, for display: theirs unless it is gone. */
		out->merged = clean_copy(theirs_deleted ? ours : theirs);
		if (out->merged == NULL) {
			r = GS_FAIL(GS_ENOMEM, "merge");
			goto out;
		}
		r = GS_OK;
		goto out;
	}

	if ((out->merged = clean_copy(theirs)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "merge");
		goto out;
	}
	/* Every field any of the three has, once: theirs' fields, then
	 * base's that theirs lacks, then ours' that neither has. */
	for (i = 0; i < 3; i++) {
		const json_t *src = i == 0 ? theirs : i == 1 ? base : ours;

		if (src == NULL)
			continue;
		json_object_foreach((json_t *)src, k, v) {
			if (i >= 1 && theirs != NULL &&
			    json_object_get(theirs, k) != NULL)
				continue;
			if (i == 2 && base != NULL &&
			    json_object_get(base, k) != NULL)
				continue;
			if ((r = merge_field(k, base, theirs, ours,
			    out->merged, out->conflicts)) != GS_OK)
				goto out;
		}
	}
	r = GS_OK;
out:
	if (r != GS_OK)
		gs_merge_result_release(out);
	return r;
}

void
gs_merge_result_release(struct gs_merge_result *r)
{
	if (r == NULL)
		return;
	json_decref(r->merged);
	json_decref(r->conflicts);
	r->merged = NULL;
	r->conflicts = NULL;
	r->deleted = 0;
}

json_t *
gs_merge_apply(const json_t *base, const json_t *patch)
{
	json_t *out, *v;
	const char *k;

	if ((base != NULL && !json_is_object(base)) ||
	    (patch != NULL && !json_is_object(patch)))
		return NULL;
	if ((out = clean_copy(base)) == NULL || patch == NULL)
		return out;
	json_object_foreach((json_t *)patch, k, v) {
		if (json_is_null(v)) {
			(void)json_object_del(out, k);
		} else if (json_object_set_new(out, k, json_deep_copy(v))
		    != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

json_t *
gs_merge_diff(const json_t *base, const json_t *target)
{
	json_t *out = json_object(), *v;
	const char *k;

	if (out == NULL)
		return NULL;
	if (target != NULL)
		json_object_foreach((json_t *)target, k, v)
			if (!same(value(base, k), value(target, k)) &&
			    json_object_set_new(out, k, json_deep_copy(v))
			    != 0)
				goto fail;
	if (base != NULL)
		json_object_foreach((json_t *)base, k, v)
			if (value(base, k) != NULL &&
			    value(target, k) == NULL &&
			    json_object_set_new(out, k, json_null()) != 0)
				goto fail;
	return out;
fail:
	json_decref(out);
	return NULL;
}
