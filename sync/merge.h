/*
 * merge.h - the three-way merge rules of DESIGN.md section 6, written once
 * for both ends (the platform merges at ingest; tests and tools may run the
 * same rules anywhere).
 *
 * Pure functions on jansson objects: nothing here touches a store.  A
 * record's state is (fields object, deleted flag).  "base" is the kept
 * revision the device's change was made against, "theirs" the platform's
 * current revision, "ours" the base with the device's change applied.
 *
 * The rules, field by field (an absent field and a JSON null are the same
 * thing: "no value"):
 *
 *   theirs == ours                    -> that value (both made the same edit)
 *   ours == base                      -> theirs (only the platform moved)
 *   theirs == base                    -> ours (only the device moved)
 *   otherwise                         -> CONFLICT on the field; the merged
 *                                        state keeps theirs until an admin
 *                                        decides, and both values are kept
 *
 * and for deletions:
 *
 *   both deleted                      -> deleted, no conflict
 *   ours deleted, theirs == base      -> deleted (nobody else edited)
 *   ours deleted, theirs edited       -> CONFLICT "delete_edit", merged = theirs
 *   theirs deleted, ours == base      -> deleted (nothing of ours is lost)
 *   theirs deleted, ours edited       -> CONFLICT "edit_delete", merged stays
 *                                        deleted
 *
 * A deleted base counts as an empty object.
 */
#ifndef GS_MERGE_H
#define GS_MERGE_H

#include <jansson.h>

struct gs_merge_result {
	json_t *merged;    /* fields after the merge (an object, also when
			      deleted: the last fields, for display); owned */
	int deleted;       /* the merged state is a tombstone */
	/* Array of {"field","rule","base","platform","device"}: rule is
	 * "field" (the same field set to different values), "delete_edit" or
	 * "edit_delete" (field ""); values are JSON (null = no value).  Empty
	 * when the merge is clean.  Owned. */
	json_t *conflicts;
};

/*
 * Merges.  Any of the three objects may be NULL (= empty object).  GS_OK
 * and *out filled (release with gs_merge_result_release), also when there
 * are conflicts: count them with json_array_size(out->conflicts).
 * GS_EINVAL when a non-NULL argument is not an object; GS_ENOMEM.
 */
int gs_merge3(const json_t *base, int base_deleted, const json_t *theirs,
    int theirs_deleted, const json_t *ours, int ours_deleted,
    struct gs_merge_result *out);

/* Frees what a merge result holds; NULL ok. */
void gs_merge_result_release(struct gs_merge_result *r);

/*
 * A change applied to a state: a new object with base's fields, then each
 * of patch's fields set (a JSON null removes the field).  base and patch
 * may be NULL (= empty).  New reference, or NULL (out of memory, or an
 * argument that is not an object).
 */
json_t *gs_merge_apply(const json_t *base, const json_t *patch);

/*
 * The patch that turns base into target: every field whose value differs,
 * with null for a field target lacks.  New reference or NULL.
 */
json_t *gs_merge_diff(const json_t *base, const json_t *target);

#endif
