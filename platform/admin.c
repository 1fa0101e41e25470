/*
 * admin.c - the admin's decisions: conflicts and their resolution,
 * quarantine release and rejection, review verdicts, tasks, and the
 * figures workers are assessed by (stats).
 *
 * Every decision that changes a record is a NEW revision (nothing is
 * overwritten: the revisions table keeps every state), made in one
 * transaction with the decision's own row, carries the admin's name
 * (revisions.by_admin), and reaches the devices through the pull feed
 * (write_revision writes its feed row).  Decisions re-validate the record
 * against its form: an admin cannot store what a device could not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "db.h"
#include "merge.h"
#include "recon.h"
#include "schema.h"
#include "uuid.h"
#include "validate.h"
#include "core/banned.h"

/* A record's current row. */
struct cur {
	int exists;
	char type[32], grid[64], author[64];
	int form_version;
	int64_t rev;
	int deleted;
	json_t *fields;            /* owned; empty object when none */
};

static void
cur_release(struct cur *c)
{
	json_decref(c->fields);
	c->fields = NULL;
}

static int
parse_obj(const char *text, json_t **out)
{
	json_error_t e;

	*out = NULL;
	if (text == NULL)
		return GS_OK;
	if ((*out = json_loads(text, JSON_DECODE_ANY, &e)) == NULL)
		return GS_FAIL(GS_ECORRUPT, "stored JSON does not parse");
	if (json_is_null(*out)) {
		json_decref(*out);
		*out = NULL;
	}
	return GS_OK;
}

static int
cur_get(struct pf_store *st, const char *uuid, struct cur *c)
{
	struct gs_stmt *s;
	int r;

	memset(c, 0, sizeof(*c));
	if ((r = pf_recon_stmt(st, PQ_RECORD_GET, &s)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE)
		return GS_OK;
	if (r != GS_ROW)
		return r;
	c->exists = 1;
	gs_strlcpy(c->type, gs_stmt_text(s, 0), sizeof(c->type));
	c->form_version = (int)gs_stmt_int64(s, 1);
	gs_strlcpy(c->grid, gs_stmt_text(s, 2), sizeof(c->grid));
	c->rev = gs_stmt_int64(s, 3);
	r = parse_obj(gs_stmt_text(s, 4), &c->fields);
	c->deleted = (int)gs_stmt_int64(s, 5);
	gs_strlcpy(c->author, gs_stmt_text(s, 6) ? gs_stmt_text(s, 6) : "",
	    sizeof(c->author));
	gs_stmt_reset(s);
	if (r == GS_OK && c->fields == NULL &&
	    (c->fields = json_object()) == NULL)
		r = GS_FAIL(GS_ENOMEM, "record");
	return r;
}

/*
 * The GS_EVALIDATION return for a list of problems, as the agent words it:
 * the first problem is the error line ("FIELD: what is wrong (rule)", no
 * empty "FIELD: " for a problem of the arguments themselves).  Only when
 * there are more is each one printed first, a line apiece, and the error
 * line ends "(and N more problems)".
 */
static int
fail_problems(const struct gs_problems *p)
{
	size_t i, more = p->n + p->dropped - 1;

	if (p->n == 0)
		return GS_FAIL(GS_EVALIDATION, "record failed validation");
	if (more > 0)
		for (i = 0; i < p->n; i++)
			fprintf(stderr, "gridplatform: %s%s%s (%s)\n",
			    p->v[i].field, p->v[i].field[0] ? ": " : "",
			    p->v[i].message, p->v[i].rule);
	if (more == 0)
		return GS_FAIL(GS_EVALIDATION, "%s%s%s (%s)", p->v[0].field,
		    p->v[0].field[0] ? ": " : "", p->v[0].message,
		    p->v[0].rule);
	return GS_FAIL(GS_EVALIDATION, "%s%s%s (%s) (and %zu more problems)",
	    p->v[0].field, p->v[0].field[0] ? ": " : "", p->v[0].message,
	    p->v[0].rule, more);
}

/* Validates fields against the record type's form at the record's
 * version (reference data: platform/reference.c), and that no ref names
 * the record itself (uuid); see fail_problems. */
static int
validate(struct pf_platform *pf, const char *uuid, const char *type,
    int version, json_t *fields)
{
	const struct gs_schema *schema = pf_schema(pf);
	const struct gs_form *form = gs_schema_form_version(schema, type,
	    version);
	struct gs_problems p;
	int r;

	if (form == NULL)
		return GS_FAIL(GS_EVALIDATION, "unknown record type %s or form "
		    "version %d", type, version);
	r = gs_record_validate(schema, form, fields, &p);
	if (r == GS_OK)
		r = gs_record_check_self(form, fields, uuid, &p);
	return r == GS_EVALIDATION ? fail_problems(&p) : r;
}

/* NAME=VALUE arguments typed by the form into `into`. */
static int
typed_args(struct pf_platform *pf, const char *type, char **args, int n,
    json_t *into)
{
	const struct gs_form *form = gs_schema_form(pf_schema(pf), type);
	struct gs_problems p;
	int r;

	if (form == NULL)
		return GS_FAIL(GS_EVALIDATION, "unknown record type %s", type);
	r = gs_fields_from_args(form, args, n, into, &p);
	return r == GS_EVALIDATION ? fail_problems(&p) : r;
}

/*
 * Writes the admin's revision of a record (in the caller's transaction):
 * the record row moves to rev + 1 and the revision row keeps the state,
 * the decision (change_text) and the admin.  A new record (c->exists 0)
 * is inserted at rev 1 with the origin change's metadata.
 */
struct origin {
	const unsigned char *device;
	int64_t batch;
	const char *type, *grid, *author;
	int form_version;
	int64_t created_at;
};

static int
write_revision(struct pf_store *st, const char *uuid, const struct cur *c,
    const struct origin *o, json_t *fields, int deleted,
    const char *change_text, const char *admin)
{
	struct gs_stmt *s = NULL;
	char *ftext = NULL, cid[GS_UUID_LEN + 1], key[48];
	int64_t now = gs_now_ms(), rev = c->exists ? c->rev + 1 : 1;
	int r;

	if (!deleted && (ftext = json_dumps(fields, JSON_COMPACT |
	    JSON_SORT_KEYS)) == NULL)
		return GS_FAIL(GS_ENOMEM, "revision");
	if (c->exists) {
		if ((r = pf_recon_stmt(st, PQ_RECORD_SET, &s)) != GS_OK)
			goto out;
		if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 2, rev)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 3, ftext)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 4, deleted)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 5, now)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 6, c->rev)) != GS_OK)
			goto out;
	} else {
		if ((r = pf_recon_stmt(st, PQ_RECORD_NEW, &s)) != GS_OK)
			goto out;
		if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 2, o->type)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 3, o->form_version)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 4, o->grid)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 5, ftext)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 6, o->created_at)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 7, now)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 8, o->author)) != GS_OK ||
		    (r = gs_stmt_bind_blob(s, 9, o->device, 16)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 10, o->batch)) != GS_OK)
			goto out;
	}
	if ((r = gs_stmt_step(s)) != GS_DONE)
		goto out;
	s = NULL;
	/* The attachments it names (schema/platform 0009: no trigger). */
	if ((r = st->ops->record_attach(st, uuid, ftext, deleted, c->exists))
	    != GS_OK)
		goto out;
	gs_uuid_v7(cid);
	if ((r = pf_recon_stmt(st, PQ_REVISION_ADD, &s)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, rev)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, cid)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, c->exists ? c->rev : 0)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 5, o->device, 16)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, o->batch)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 7, change_text)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 8, ftext)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 9, deleted)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 10, now)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 11, admin)) != GS_OK)
		goto out;
	if ((r = gs_stmt_step(s)) != GS_DONE)
		goto out;
	s = NULL;
	/* The pull feed and the device tallies (schema/platform 0007):
	 * an admin's revision is never a device's own fast-forward. */
	snprintf(key, sizeof(key), "rec:%s", o->type);
	if ((r = st->ops->feed_record(st, uuid, rev, c->exists ? c->grid :
	    o->grid, o->device, 0)) != GS_OK ||
	    (r = st->ops->tally_add(st, o->device, "rev", 1)) != GS_OK ||
	    (!c->exists && (r = st->ops->tally_add(st, o->device, key, 1))
	    != GS_OK))
		goto out;
	r = GS_DONE;
out:
	if (r == GS_DONE)
		r = GS_OK;
	else if (s != NULL)
		gs_stmt_reset(s);
	free(ftext);
	if (r == GS_OK)
		printf("record %s is now at rev %lld (by %s)\n", uuid,
		    (long long)rev, admin);
	return r;
}

/* ------------------------------------------------------------ conflicts */

/*
 * Runs a listing query (its one parameter: a status, NULL for all) and
 * hands each row to `row`, which prints it or, with --json, appends it to
 * an array printed at the end.  GS_OK or the first error.
 */
static int
list_rows(struct pf_platform *pf, int json, enum pf_recon_q query,
    const char *status,
    int (*row)(struct gs_stmt *s, json_t *arr))
{
	struct gs_stmt *s;
	json_t *arr = NULL;
	int r;

	if (json && (arr = json_array()) == NULL)
		return GS_FAIL(GS_ENOMEM, "listing");
	if ((r = pf_recon_stmt(pf->store, query, &s)) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 1, status)) == GS_OK) {
		while ((r = gs_stmt_step(s)) == GS_ROW)
			if ((r = row(s, arr)) != GS_OK) {
				gs_stmt_reset(s);
				break;
			}
		if (r == GS_DONE)
			r = GS_OK;
	}
	if (r == GS_OK && arr != NULL)
		r = pf_recon_print_json(arr);
	json_decref(arr);
	return r;
}

static int
conflict_row(struct gs_stmt *s, json_t *arr)
{
	char dev[33], when[32];
	json_t *fields = NULL, *o, *f;
	size_t i;
	int r;

	gs_hex_encode(dev, gs_stmt_blob(s, 3), 16);
	if ((r = parse_obj(gs_stmt_text(s, 7), &fields)) != GS_OK)
		return r;
	if (fields == NULL)
		fields = json_array();
	if (arr != NULL) {
		o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:o,s:s,s:I,"
		    "s:s?,s:s?}", "id", (json_int_t)gs_stmt_int64(s, 0),
		    "uuid", gs_stmt_text(s, 1), "type", gs_stmt_text(s, 12),
		    "change_id", gs_stmt_text(s, 2), "device_id", dev,
		    "worker", gs_stmt_text(s, 4),
		    "base_rev", (json_int_t)gs_stmt_int64(s, 5),
		    "current_rev", (json_int_t)gs_stmt_int64(s, 6),
		    "fields", fields, "status", gs_stmt_text(s, 8),
		    "created_at", (json_int_t)gs_stmt_int64(s, 9),
		    "resolved_by", gs_stmt_text(s, 10),
		    "resolution", gs_stmt_text(s, 11));
		return o != NULL && json_array_append_new(arr, o) == 0 ?
		    GS_OK : GS_FAIL(GS_ENOMEM, "conflicts");
	}
	gs_time_format(when, sizeof(when), gs_stmt_int64(s, 9));
	printf("conflict %lld  %s  %s %s  worker %s  base rev %lld, platform "
	    "rev %lld  %s%s%s%s%s%s\n", (long long)gs_stmt_int64(s, 0), when,
	    gs_stmt_text(s, 12), gs_stmt_text(s, 1), gs_stmt_text(s, 4),
	    (long long)gs_stmt_int64(s, 5), (long long)gs_stmt_int64(s, 6),
	    gs_stmt_text(s, 8), gs_stmt_text(s, 10) ? " by " : "",
	    gs_stmt_text(s, 10) ? gs_stmt_text(s, 10) : "",
	    gs_stmt_text(s, 11) ? " (took " : "",
	    gs_stmt_text(s, 11) ? gs_stmt_text(s, 11) : "",
	    gs_stmt_text(s, 11) ? ")" : "");
	json_array_foreach(fields, i, f) {
		char *pv = json_dumps(json_object_get(f, "platform"),
		    JSON_ENCODE_ANY), *dv = json_dumps(json_object_get(f,
		    "device"), JSON_ENCODE_ANY);
		const char *name = json_string_value(json_object_get(f,
		    "field")), *rule = json_string_value(json_object_get(f,
		    "rule"));

		/* A delete against an edit has no field values: say which
		 * side did what ("platform null, device null" told an
		 * admin nothing). */
		if (*name == '\0' && rule != NULL &&
		    strcmp(rule, "delete_edit") == 0)
			printf("    %s: deleted on the device, edited on the "
			    "platform since base rev %lld\n", rule,
			    (long long)gs_stmt_int64(s, 5));
		else if (*name == '\0' && rule != NULL &&
		    strcmp(rule, "edit_delete") == 0)
			printf("    %s: edited on the device, deleted on the "
			    "platform since base rev %lld\n", rule,
			    (long long)gs_stmt_int64(s, 5));
		else
			printf("    %s: platform %s, device %s\n", *name ? name
			    : rule != NULL ? rule : "?", pv ? pv : "?",
			    dv ? dv : "?");
		free(pv);
		free(dv);
	}
	json_decref(fields);
	return GS_OK;
}

int
pf_cmd_conflicts(struct pf_platform *pf, int argc, char **argv)
{
	const char *status = NULL;
	int r, i, json = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--open") == 0)
			status = "open";
		else {
			fprintf(stderr, "gridplatform: conflicts: unknown "
			    "option %s\n", argv[i]);
			return GS_EX_USAGE;
		}
	}
	r = list_rows(pf, json, PQ_CONFLICT_LIST, status, conflict_row);
	return r == GS_OK ? 0 : pf_recon_fail(r);
}

/*
 * The resolution's target state, recomputed from what is kept (base
 * revision, the device's change, the platform's state when the conflict
 * arose) with the same merge rules as ingest, then the conflicting fields
 * taken from the chosen side (or set by the admin).
 */
static int
resolve_target(struct pf_platform *pf, const char *uuid,
    const char *change_text, const char *theirs_text, int64_t base_rev,
    const char *take, char **set, int nset, const char *type,
    json_t **target, int *deleted, json_t **theirs_out)
{
	int r = GS_EINTERNAL, base_del = 0, ours_del;
	char *base_text = NULL;
	json_t *change = NULL, *base = NULL, *theirs = NULL, *ours = NULL;
	json_t *t = NULL, *f, *dv;
	struct gs_merge_result m;
	size_t i;

	memset(&m, 0, sizeof(m));
	if ((r = parse_obj(change_text, &change)) != GS_OK ||
	    (r = pf_recon_base(pf->store, uuid, base_rev, &base_text,
	    &base_del)) != GS_OK || (r = parse_obj(base_text, &base))
	    != GS_OK || (r = parse_obj(theirs_text, &theirs)) != GS_OK)
		goto out;
	ours_del = json_is_true(json_object_get(change, "deleted"));
	ours = ours_del ? json_incref(base) : gs_merge_apply(base,
	    json_object_get(change, "fields"));
	if ((r = gs_merge3(base, base_del, theirs, theirs == NULL, ours,
	    ours_del, &m)) != GS_OK)
		goto out;
	t = json_incref(m.merged);
	*deleted = m.deleted;
	if (take != NULL && strcmp(take, "device") == 0) {
		json_array_foreach(m.conflicts, i, f) {
			const char *name = json_string_value(json_object_get(f,
			    "field"));

			if (*name == '\0') {
				/* Delete against edit: the device's side. */
				*deleted = ours_del;
				if (!ours_del) {
					json_decref(t);
					t = json_deep_copy(ours);
				}
				continue;
			}
			dv = json_object_get(f, "device");
			if (json_is_null(dv))
				(void)json_object_del(t, name);
			else if (json_object_set(t, name, dv) != 0) {
				r = GS_FAIL(GS_ENOMEM, "resolve");
				goto out;
			}
		}
	} else if (nset > 0) {
		*deleted = 0;
		/* An emptied value (NAME=) is null: drop_nulls clears it. */
		if ((r = typed_args(pf, type, set, nset, t)) != GS_OK)
			goto out;
	}
	*target = t;
	t = NULL;
	*theirs_out = theirs;
	theirs = NULL;
	r = GS_OK;
out:
	gs_merge_result_release(&m);
	json_decref(change);
	json_decref(base);
	json_decref(theirs);
	json_decref(ours);
	json_decref(t);
	gs_free(base_text);
	return r;
}

/* Two field values are the same (absent and null are both "no value"). */
static int
same_value(json_t *a, json_t *b)
{
	if (a == NULL || json_is_null(a))
		return b == NULL || json_is_null(b);
	return b != NULL && json_equal(a, b);
}

/* Whether --set names the field. */
static int
set_names(char **set, int nset, const char *name)
{
	size_t n = strlen(name);
	int i;

	for (i = 0; i < nset; i++)
		if (strncmp(set[i], name, n) == 0 && set[i][n] == '=')
			return 1;
	return 0;
}

/*
 * The record may have moved on since the conflict was kept (a later
 * change, a release, another resolution).  The resolution is applied as
 * a patch (what it changes relative to the platform's state then,
 * `theirs`); a field of that patch that has changed since would be
 * overwritten by a choice made between values one of which is stale: the
 * admin took "device" over "甲", and a worker has set "丙" since.  That is
 * refused (GS_ECONFLICT, naming the field and its value now), unless the
 * admin names the field's value with --set.  A record deleted since is
 * kept deleted by --take platform (the platform's state, as it is now)
 * and refused otherwise; one restored since is refused for --take
 * platform, which would delete it again.  *deleted is set when the
 * resolution keeps the record deleted.
 */
static int
moved_on(long long id, const struct cur *c, json_t *theirs, json_t *patch,
    const char *take, char **set, int nset, int *deleted)
{
	const char *k;
	json_t *v, *now;
	char *txt;
	int platform = take != NULL && strcmp(take, "platform") == 0, r;

	if (c->deleted && theirs != NULL) {
		if (platform) {
			json_object_clear(patch);
			*deleted = 1;
			return GS_OK;
		}
		return GS_FAIL(GS_ECONFLICT, "conflict %lld: the record was "
		    "deleted on the platform since (rev %lld); --take "
		    "platform keeps it deleted", id, (long long)c->rev);
	}
	if (!c->deleted && theirs == NULL && platform)
		return GS_FAIL(GS_ECONFLICT, "conflict %lld: the record was "
		    "restored on the platform since (rev %lld); --take "
		    "platform would delete it again: look at it and use "
		    "--take device or --set", id, (long long)c->rev);
	json_object_foreach(patch, k, v) {
		now = json_object_get(c->fields, k);
		if (set_names(set, nset, k) ||
		    same_value(json_object_get(theirs, k), now))
			continue;
		txt = json_dumps(now != NULL ? now : json_null(),
		    JSON_ENCODE_ANY | JSON_COMPACT);
		r = GS_FAIL(GS_ECONFLICT, "conflict %lld: %s changed on the "
		    "platform since (rev %lld, now %.200s): decide it with "
		    "--set %s=VALUE", id, k, (long long)c->rev,
		    txt != NULL ? txt : "?", k);
		free(txt);
		return r;
	}
	return GS_OK;
}

/* Removes null values (a --set NAME= clears the field). */
static void
drop_nulls(json_t *o)
{
	const char *k;
	json_t *v;
	void *tmp;

	json_object_foreach_safe(o, tmp, k, v)
		if (json_is_null(v))
			(void)json_object_del(o, k);
}

int
pf_cmd_resolve(struct pf_platform *pf, int argc, char **argv)
{
	int r = GS_EINTERNAL, i, nset = 0, deleted = 0, in_tx = 0;
	const char *take = NULL, *by = NULL;
	char **set = NULL, *change_text = NULL, *theirs_text = NULL;
	char *res_text = NULL, uuid[64], dev[16];
	long long id;
	int64_t id64, batch = 0, base_rev = 0;
	struct gs_stmt *s;
	struct cur c;
	struct origin o;
	json_t *target = NULL, *theirs = NULL, *patch = NULL, *final = NULL;
	json_t *rj = NULL;

	memset(&c, 0, sizeof(c));
	/* Strictly digits, 1 to INT64_MAX: strtoll took an id past the
	 * range as LLONG_MAX ("no conflict 9223372036854775807"). */
	if (argc < 2 || gs_parse_i64(argv[1], 1, INT64_MAX, &id64) !=
	    GS_OK) {
		fprintf(stderr, "gridplatform: resolve needs a conflict id "
		    "(see gridplatform conflicts)\n");
		return GS_EX_USAGE;
	}
	id = (long long)id64;
	if ((set = gs_calloc((size_t)argc, sizeof(*set))) == NULL)
		return pf_recon_fail(GS_FAIL(GS_ENOMEM, "resolve"));
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--take") == 0 && i + 1 < argc)
			take = argv[++i];
		else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc)
			by = argv[++i];
		else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
			set[nset++] = argv[++i];
		else if (strchr(argv[i], '=') != NULL && nset > 0)
			set[nset++] = argv[i];
		else {
			fprintf(stderr, "gridplatform: resolve: unknown or "
			    "incomplete option %s\n", argv[i]);
			gs_free(set);
			return GS_EX_USAGE;
		}
	}
	if ((take == NULL) == (nset == 0) || (take != NULL &&
	    strcmp(take, "device") != 0 && strcmp(take, "platform") != 0)) {
		fprintf(stderr, "gridplatform: resolve: give either --take "
		    "device|platform or --set NAME=VALUE...\n");
		gs_free(set);
		return GS_EX_USAGE;
	}

	/* One transaction: the record cannot move between our read and our
	 * write, and the conflict is closed with the revision or not at
	 * all. */
	if ((r = pf->store->ops->begin(pf->store)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = pf_recon_stmt(pf->store, PQ_CONFLICT_GET, &s)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 1, id)) != GS_OK)
		goto out;
	if ((r = gs_stmt_step(s)) == GS_DONE) {
		r = GS_FAIL(GS_ENOTFOUND, "no conflict %lld", id);
		goto out;
	}
	if (r != GS_ROW)
		goto out;
	gs_strlcpy(uuid, gs_stmt_text(s, 0), sizeof(uuid));
	change_text = gs_strdup(gs_stmt_text(s, 1));
	theirs_text = gs_stmt_text(s, 2) ? gs_strdup(gs_stmt_text(s, 2)) :
	    NULL;
	if (strcmp(gs_stmt_text(s, 3), "open") != 0) {
		gs_stmt_reset(s);
		r = GS_FAIL(GS_EEXIST, "conflict %lld is already %s", id,
		    "resolved");
		goto out;
	}
	memcpy(dev, gs_stmt_blob(s, 4), 16);
	batch = gs_stmt_int64(s, 5);
	base_rev = gs_stmt_int64(s, 6);
	gs_stmt_reset(s);
	if (change_text == NULL) {
		r = GS_FAIL(GS_ENOMEM, "resolve");
		goto out;
	}
	if ((r = cur_get(pf->store, uuid, &c)) != GS_OK)
		goto out;
	if (!c.exists) {
		r = GS_FAIL(GS_ECORRUPT, "record %s of conflict %lld is gone",
		    uuid, id);
		goto out;
	}
	if ((r = resolve_target(pf, uuid, change_text, theirs_text, base_rev,
	    take, set, nset, c.type, &target, &deleted, &theirs)) != GS_OK)
		goto out;
	/* The record may have moved on since the conflict: carry over only
	 * what the resolution changes relative to the platform's state at
	 * that time. */
	if ((patch = gs_merge_diff(theirs, target)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "resolve");
		goto out;
	}
	if ((r = moved_on(id, &c, theirs, patch, take, set, nset,
	    &deleted)) != GS_OK)
		goto out;
	if ((final = gs_merge_apply(c.fields, patch)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "resolve");
		goto out;
	}
	drop_nulls(final);
	if (!deleted && (r = validate(pf, uuid, c.type, c.form_version,
	    final)) != GS_OK)
		goto out;
	if ((rj = json_pack("{s:s,s:I,s:s,s:O}", "action", "resolve",
	    "conflict", (json_int_t)id, "take", take ? take : "set", "fields",
	    final)) != NULL)
		res_text = json_dumps(rj, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(rj);
	if (res_text == NULL) {
		r = GS_FAIL(GS_ENOMEM, "resolve");
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.device = (const unsigned char *)dev;
	o.batch = batch;
	if ((r = write_revision(pf->store, uuid, &c, &o, final, deleted,
	    res_text, pf_recon_admin(by))) != GS_OK)
		goto out;
	if ((r = pf_recon_stmt(pf->store, PQ_CONFLICT_DONE, &s)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 1, id)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, gs_now_ms())) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, pf_recon_admin(by))) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, take ? take : "set")) != GS_OK ||
	    (r = gs_stmt_step(s)) != GS_DONE)
		goto out;
	if ((r = pf->store->ops->commit(pf->store)) != GS_OK)
		goto out;
	in_tx = 0;
	printf("conflict %lld resolved (%s)\n", id, take ? take : "set");
out:
	if (in_tx)
		pf->store->ops->rollback(pf->store);
	cur_release(&c);
	json_decref(target);
	json_decref(theirs);
	json_decref(patch);
	json_decref(final);
	gs_free(change_text);
	gs_free(theirs_text);
	free(res_text);
	gs_free(set);
	return r == GS_OK ? 0 : pf_recon_fail(r);
}

/* ----------------------------------------------------------- quarantine */

static int
quarantine_row(struct gs_stmt *s, json_t *arr)
{
	char dev[33], when[32];
	json_t *reasons = NULL, *o;
	int r;

	gs_hex_encode(dev, gs_stmt_blob(s, 2), 16);
	if ((r = parse_obj(gs_stmt_text(s, 10), &reasons)) != GS_OK)
		return r;
	if (reasons == NULL)
		reasons = json_array();
	if (arr != NULL) {
		/* The fields of the first round's list stay as they were;
		 * origin (worker, device status, seq) and the decision are
		 * added. */
		o = json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:s,"
		    "s:s,s:I,s:s,s:s?,s:s?}", "id",
		    (json_int_t)gs_stmt_int64(s, 0), "batch",
		    (json_int_t)gs_stmt_int64(s, 1), "device_id", dev,
		    "change_id", gs_stmt_text(s, 5), "uuid", gs_stmt_text(s, 6),
		    "type", gs_stmt_text(s, 7), "grid", gs_stmt_text(s, 8),
		    "cause", gs_stmt_text(s, 9), "reasons", reasons,
		    "created_at", (json_int_t)gs_stmt_int64(s, 11),
		    "worker", gs_stmt_text(s, 3),
		    "device_status", gs_stmt_text(s, 4),
		    "seq", (json_int_t)gs_stmt_int64(s, 15),
		    "status", gs_stmt_text(s, 12),
		    "decided_by", gs_stmt_text(s, 13),
		    "decision", gs_stmt_text(s, 14));
		return o != NULL && json_array_append_new(arr, o) == 0 ?
		    GS_OK : GS_FAIL(GS_ENOMEM, "quarantine");
	}
	gs_time_format(when, sizeof(when), gs_stmt_int64(s, 11));
	printf("%lld  %s  %s  %s %s  worker %s, device %s%s, seq %lld  %s: "
	    "%s\n", (long long)gs_stmt_int64(s, 0), gs_stmt_text(s, 12), when,
	    gs_stmt_text(s, 7), gs_stmt_text(s, 6), gs_stmt_text(s, 3), dev,
	    strcmp(gs_stmt_text(s, 4), "revoked") == 0 ? " (REVOKED)" : "",
	    (long long)gs_stmt_int64(s, 15), gs_stmt_text(s, 9),
	    gs_stmt_text(s, 10));
	json_decref(reasons);
	return GS_OK;
}

static int
quarantine_list(struct pf_platform *pf, int json, const char *status)
{
	return list_rows(pf, json, PQ_Q_LIST, status, quarantine_row);
}

/* Marks a quarantined change decided (in the caller's transaction). */
static int
decide(struct pf_store *st, long long id, const char *status,
    const char *admin, const char *why)
{
	struct gs_stmt *s;
	int r;

	if ((r = pf_recon_stmt(st, PQ_Q_DECIDE, &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_int64(s, 1, id)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, status)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, gs_now_ms())) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, admin)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 5, why)) != GS_OK) {
		gs_stmt_reset(s);
		return r;
	}
	r = gs_stmt_step(s);
	return r == GS_DONE ? GS_OK : r;
}

/*
 * The record moved past the change's base while the change waited in
 * quarantine (another device, an admin): the same three-way merge as
 * ingest (sync/merge.h) against the kept base revision.  Disjoint field
 * edits merge into *final; the same field set to different values, or an
 * edit against a delete, becomes an open conflict (*conflict 1, its row
 * and detail written in the caller's transaction) and the record stays as
 * it is.  Never an overwrite of what others did since the base.
 */
static int
release_merge(struct pf_platform *pf, const char *uuid, const struct cur *c,
    json_t *change, json_t *patch, int del, int64_t base_rev,
    const unsigned char *dev, int64_t batch, json_t **final, int *deleted,
    int *conflict)
{
	int r = GS_EINTERNAL, base_del = 0;
	char *base_text = NULL, *cur_text = NULL, *ctext = NULL;
	char *detail = NULL, *merged = NULL;
	json_t *base = NULL, *ours = NULL, *cj = NULL;
	struct gs_merge_result m;
	struct gs_stmt *s;

	memset(&m, 0, sizeof(m));
	*conflict = 0;
	if ((r = pf_recon_base(pf->store, uuid, base_rev, &base_text,
	    &base_del)) != GS_OK || (r = parse_obj(base_text, &base)) !=
	    GS_OK)
		goto out;
	if ((ours = del ? json_incref(base) : gs_merge_apply(base, patch)) ==
	    NULL && !del) {
		r = GS_FAIL(GS_ENOMEM, "release");
		goto out;
	}
	if ((r = gs_merge3(base, base_del, c->deleted ? NULL : c->fields,
	    c->deleted, ours, del, &m)) != GS_OK)
		goto out;
	if (json_array_size(m.conflicts) == 0) {
		*final = json_incref(m.merged);
		*deleted = m.deleted;
		r = GS_OK;
		goto out;
	}
	/* A conflict like one found at ingest: the change as released (its
	 * fields with the admin's fixes), both values per field, for
	 * `gridplatform resolve`. */
	if ((cj = json_deep_copy(change)) == NULL ||
	    json_object_set(cj, "fields", patch) != 0 ||
	    (ctext = json_dumps(cj, JSON_COMPACT | JSON_SORT_KEYS)) == NULL ||
	    (!c->deleted && (cur_text = json_dumps(c->fields, JSON_COMPACT |
	    JSON_SORT_KEYS)) == NULL) ||
	    (detail = json_dumps(m.conflicts, JSON_COMPACT)) == NULL ||
	    (merged = json_dumps(m.merged, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL) {
		r = GS_FAIL(GS_ENOMEM, "release");
		goto out;
	}
	if ((r = pf_recon_stmt(pf->store, PQ_CONFLICT_ADD, &s)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, json_string_value(json_object_get(
	    change, "change_id")))) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, dev, 16)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, batch)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, base_rev)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, c->rev)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 7, ctext)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 8, cur_text)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 9, gs_now_ms())) != GS_OK) {
		gs_stmt_reset(s);
		goto out;
	}
	if ((r = gs_stmt_step(s)) != GS_DONE)
		goto out;
	if ((r = pf_recon_conflict_detail(pf->store, json_string_value(
	    json_object_get(change, "change_id")), detail, merged, m.deleted))
	    != GS_OK)
		goto out;
	*conflict = 1;
	r = GS_OK;
out:
	gs_merge_result_release(&m);
	json_decref(base);
	json_decref(ours);
	json_decref(cj);
	gs_free(base_text);
	free(cur_text);
	free(ctext);
	free(detail);
	free(merged);
	return r;
}

/*
 * Release: the kept change, with the admin's fixes (--set), applied as
 * ingest would have applied it: on the record as it is when nothing moved
 * since the change's base revision, else through the three-way merge
 * (release_merge), after validating the result as ingest would.
 */
static int
quarantine_release(struct pf_platform *pf, long long id, char **set,
    int nset, const char *by)
{
	int r = GS_EINTERNAL, in_tx = 0, del, conflict = 0;
	struct gs_stmt *s;
	json_t *change = NULL, *patch = NULL, *final = NULL, *rj = NULL;
	char *text = NULL, uuid[64], dev[16];
	int64_t batch, base_rev;
	struct cur c;
	struct origin o;
	const char *type;

	memset(&c, 0, sizeof(c));
	if ((r = pf->store->ops->begin(pf->store)) != GS_OK)
		return r;
	in_tx = 1;
	if ((r = pf_recon_stmt(pf->store, PQ_Q_GET, &s)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 1, id)) != GS_OK)
		goto out;
	if ((r = gs_stmt_step(s)) == GS_DONE) {
		r = GS_FAIL(GS_ENOTFOUND, "no quarantined change %lld", id);
		goto out;
	}
	if (r != GS_ROW)
		goto out;
	if (strcmp(gs_stmt_text(s, 1), "open") != 0) {
		gs_stmt_reset(s);
		r = GS_FAIL(GS_EEXIST, "quarantined change %lld was already "
		    "decided", id);
		goto out;
	}
	r = parse_obj(gs_stmt_text(s, 0), &change);
	memcpy(dev, gs_stmt_blob(s, 2), 16);
	batch = gs_stmt_int64(s, 3);
	gs_strlcpy(uuid, gs_stmt_text(s, 4), sizeof(uuid));
	gs_stmt_reset(s);
	if (r != GS_OK || !json_is_object(change)) {
		r = GS_FAIL(GS_ECORRUPT, "quarantined change %lld does not "
		    "parse", id);
		goto out;
	}
	type = json_string_value(json_object_get(change, "type"));
	del = json_is_true(json_object_get(change, "deleted"));
	if ((r = cur_get(pf->store, uuid, &c)) != GS_OK)
		goto out;
	if (c.exists && strcmp(c.type, type) != 0) {
		r = GS_FAIL(GS_EVALIDATION, "record %s is a %s, the change a "
		    "%s", uuid, c.type, type);
		goto out;
	}
	if (del && nset > 0) {
		r = GS_FAIL(GS_EINVAL, "a delete has no fields to --set");
		goto out;
	}
	if (del && !c.exists) {
		r = GS_FAIL(GS_ENOTFOUND, "record %s does not exist: nothing "
		    "to delete", uuid);
		goto out;
	}
	if ((patch = json_deep_copy(json_object_get(change, "fields"))) == NULL)
		patch = json_object();
	if (patch == NULL || (nset > 0 && (r = typed_args(pf, type, set, nset,
	    patch)) != GS_OK)) {
		if (r == GS_OK)
			r = GS_FAIL(GS_ENOMEM, "release");
		goto out;
	}
	base_rev = json_integer_value(json_object_get(change, "base_rev"));
	/* A base the platform never issued (quarantined as bad_base_rev)
	 * has nothing kept to merge against: the current state is it. */
	if (c.exists && base_rev < c.rev && base_rev >= 0) {
		if ((r = release_merge(pf, uuid, &c, change, patch, del,
		    base_rev, (const unsigned char *)dev, batch, &final, &del,
		    &conflict)) != GS_OK)
			goto out;
		if (conflict) {
			if ((r = decide(pf->store, id, "released",
			    pf_recon_admin(by), "released into a conflict "
			    "(the record moved on since the change's base)"))
			    != GS_OK ||
			    (r = pf->store->ops->commit(pf->store)) != GS_OK)
				goto out;
			in_tx = 0;
			printf("quarantined change %lld released into a "
			    "conflict: record %s moved on since rev %lld (see "
			    "gridplatform conflicts)\n", id, uuid,
			    (long long)base_rev);
			goto out;
		}
	} else if ((final = gs_merge_apply(c.exists && !c.deleted ? c.fields :
	    NULL, patch)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "release");
		goto out;
	}
	if (!del && (r = validate(pf, uuid, type, (int)json_integer_value(
	    json_object_get(change, "form_version")), final)) != GS_OK)
		goto out;
	if ((rj = json_pack("{s:s,s:I,s:s,s:O}", "action", "release",
	    "quarantine", (json_int_t)id, "change_id",
	    json_string_value(json_object_get(change, "change_id")), "fields",
	    patch)) == NULL || (text = json_dumps(rj, JSON_COMPACT |
	    JSON_SORT_KEYS)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "release");
		goto out;
	}
	memset(&o, 0, sizeof(o));
	o.device = (const unsigned char *)dev;
	o.batch = batch;
	o.type = type;
	o.grid = json_string_value(json_object_get(change, "grid"));
	o.author = json_string_value(json_object_get(change, "author"));
	o.form_version = (int)json_integer_value(json_object_get(change,
	    "form_version"));
	o.created_at = json_integer_value(json_object_get(change,
	    "created_at"));
	if (o.grid == NULL || o.author == NULL) {
		r = GS_FAIL(GS_ECORRUPT, "quarantined change %lld lacks grid "
		    "or author", id);
		goto out;
	}
	if ((r = write_revision(pf->store, uuid, &c, &o, final, del, text,
	    pf_recon_admin(by))) != GS_OK ||
	    (r = decide(pf->store, id, "released", pf_recon_admin(by),
	    nset > 0 ? "released after a fix" : "released")) != GS_OK)
		goto out;
	if ((r = pf->store->ops->commit(pf->store)) != GS_OK)
		goto out;
	in_tx = 0;
	printf("quarantined change %lld released\n", id);
out:
	if (in_tx)
		pf->store->ops->rollback(pf->store);
	cur_release(&c);
	json_decref(change);
	json_decref(patch);
	json_decref(final);
	json_decref(rj);
	free(text);
	return r;
}

int
pf_cmd_quarantine(struct pf_platform *pf, int argc, char **argv)
{
	int r = GS_OK, i, json = 0, nset = 0;
	const char *by = NULL, *reason = NULL, *status = NULL;
	char **set = NULL;
	long long id = 0;
	int64_t id64 = 0;
	int act = 0; /* 0 list, 1 release, 2 reject */

	if (argc >= 2 && strcmp(argv[1], "release") == 0)
		act = 1;
	else if (argc >= 2 && strcmp(argv[1], "reject") == 0)
		act = 2;
	if (act && (argc < 3 || gs_parse_i64(argv[2], 1, INT64_MAX, &id64)
	    != GS_OK)) {
		fprintf(stderr, "gridplatform: quarantine %s needs an id (see "
		    "gridplatform quarantine)\n", argv[1]);
		return GS_EX_USAGE;
	}
	id = (long long)id64;
	if ((set = gs_calloc((size_t)argc + 1, sizeof(*set))) == NULL)
		return pf_recon_fail(GS_FAIL(GS_ENOMEM, "quarantine"));
	for (i = act ? 3 : 1; i < argc; i++) {
		if (!act && strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (!act && strcmp(argv[i], "--open") == 0)
			status = "open";
		else if (act && strcmp(argv[i], "--by") == 0 && i + 1 < argc)
			by = argv[++i];
		else if (act == 1 && strcmp(argv[i], "--set") == 0 &&
		    i + 1 < argc)
			set[nset++] = argv[++i];
		else if (act == 1 && nset > 0 && strchr(argv[i], '=') != NULL)
			set[nset++] = argv[i];
		else if (act == 2 && strcmp(argv[i], "--reason") == 0 &&
		    i + 1 < argc)
			reason = argv[++i];
		else {
			fprintf(stderr, "gridplatform: quarantine: unknown or "
			    "incomplete option %s\n", argv[i]);
			gs_free(set);
			return GS_EX_USAGE;
		}
	}
	if (act == 2 && (reason == NULL || *reason == '\0')) {
		fprintf(stderr, "gridplatform: quarantine reject needs "
		    "--reason TEXT\n");
		gs_free(set);
		return GS_EX_USAGE;
	}
	if (act == 0) {
		r = quarantine_list(pf, json, status);
	} else if (act == 1) {
		r = quarantine_release(pf, id, set, nset, by);
	} else {
		struct gs_stmt *s;
		int found = 0;

		/* Rejecting keeps every byte: only the decision is added. */
		if ((r = pf_recon_stmt(pf->store, PQ_Q_GET, &s)) == GS_OK &&
		    (r = gs_stmt_bind_int64(s, 1, id)) == GS_OK) {
			if ((r = gs_stmt_step(s)) == GS_ROW) {
				found = strcmp(gs_stmt_text(s, 1), "open") ==
				    0 ? 1 : 2;
				gs_stmt_reset(s);
				r = GS_OK;
			} else if (r == GS_DONE) {
				r = GS_OK;
			}
		}
		if (r == GS_OK && found == 0)
			r = GS_FAIL(GS_ENOTFOUND, "no quarantined change %lld",
			    id);
		else if (r == GS_OK && found == 2)
			r = GS_FAIL(GS_EEXIST, "quarantined change %lld was "
			    "already decided", id);
		if (r == GS_OK)
			r = decide(pf->store, id, "rejected",
			    pf_recon_admin(by), reason);
		if (r == GS_OK)
			printf("quarantined change %lld rejected\n", id);
	}
	gs_free(set);
	return r == GS_OK ? 0 : pf_recon_fail(r);
}

/* --------------------------------------------------------------- review */

int
pf_cmd_review(struct pf_platform *pf, int argc, char **argv)
{
	const char *state = NULL, *comment = NULL, *by = NULL, *uuid;
	struct gs_stmt *s;
	unsigned char raw[16];
	struct cur c;
	int r, i;

	if (argc < 2 || gs_uuid_parse(gs_id_lower(argv[1]), raw) != GS_OK) {
		fprintf(stderr, "gridplatform: review needs a record UUID\n");
		return GS_EX_USAGE;
	}
	uuid = argv[1];
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--state") == 0 && i + 1 < argc)
			state = argv[++i];
		else if (strcmp(argv[i], "--comment") == 0 && i + 1 < argc)
			comment = argv[++i];
		else if (strcmp(argv[i], "--by") == 0 && i + 1 < argc)
			by = argv[++i];
		else {
			fprintf(stderr, "gridplatform: review: unknown or "
			    "incomplete option %s\n", argv[i]);
			return GS_EX_USAGE;
		}
	}
	if (state == NULL || (strcmp(state, "approved") != 0 &&
	    strcmp(state, "has_issues") != 0 &&
	    strcmp(state, "rejected") != 0)) {
		fprintf(stderr, "gridplatform: review needs --state "
		    "approved|has_issues|rejected\n");
		return GS_EX_USAGE;
	}
	if (comment == NULL)
		comment = "";
	if (strlen(comment) > 1000) {
		fprintf(stderr, "gridplatform: review: the comment is longer "
		    "than 1000 bytes\n");
		return GS_EX_USAGE;
	}
	if ((r = cur_get(pf->store, uuid, &c)) != GS_OK)
		return pf_recon_fail(r);
	cur_release(&c);
	if (!c.exists)
		return pf_recon_fail(GS_FAIL(GS_ENOTFOUND, "no record %s",
		    uuid));
	if ((r = pf_recon_stmt(pf->store, PQ_REVIEW_ADD, &s)) != GS_OK)
		return pf_recon_fail(r);
	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, state)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, comment)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, pf_recon_admin(by))) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, gs_now_ms())) != GS_OK) {
		gs_stmt_reset(s);
		return pf_recon_fail(r);
	}
	if ((r = gs_stmt_step(s)) != GS_DONE)
		return pf_recon_fail(r);
	printf("record %s reviewed: %s (the worker %s hears it on the next "
	    "sync)\n", uuid, state, c.author);
	return 0;
}

/* ---------------------------------------------------------------- tasks */

static int
valid_date(const char *d)
{
	struct tm tm;
	const char *e;

	memset(&tm, 0, sizeof(tm));
	e = strptime(d, "%Y-%m-%d", &tm);
	return e != NULL && *e == '\0' && strlen(d) == 10;
}

int
pf_cmd_task(struct pf_platform *pf, int argc, char **argv)
{
	const char *worker = NULL, *kind = NULL, *subject = NULL, *due = NULL;
	const char *title = NULL, *by = NULL;
	char id[GS_UUID_LEN + 1];
	unsigned char raw[16];
	struct gs_stmt *s;
	int r, i;

	if (argc < 2 || strcmp(argv[1], "add") != 0) {
		fprintf(stderr, "gridplatform: usage: task add --worker ID "
		    "--kind VISIT|VERIFY_EVENT|DATA_CHECK --subject UUID --due "
		    "YYYY-MM-DD --title TEXT\n");
		return GS_EX_USAGE;
	}
	for (i = 2; i < argc; i++) {
		const char **slot = strcmp(argv[i], "--worker") == 0 ? &worker :
		    strcmp(argv[i], "--kind") == 0 ? &kind :
		    strcmp(argv[i], "--subject") == 0 ? &subject :
		    strcmp(argv[i], "--due") == 0 ? &due :
		    strcmp(argv[i], "--title") == 0 ? &title :
		    strcmp(argv[i], "--by") == 0 ? &by : NULL;

		if (slot == NULL || i + 1 >= argc) {
			fprintf(stderr, "gridplatform: task add: unknown or "
			    "incomplete option %s\n", argv[i]);
			return GS_EX_USAGE;
		}
		*slot = argv[++i];
		if (slot == &subject)
			gs_id_lower(argv[i]);
	}
	if (worker == NULL || *worker == '\0' || kind == NULL ||
	    due == NULL || title == NULL || *title == '\0' ||
	    strlen(title) > 200 || strlen(worker) > 63) {
		fprintf(stderr, "gridplatform: task add needs --worker, --kind, "
		    "--due and --title (200 bytes at most)\n");
		return GS_EX_USAGE;
	}
	if (strcmp(kind, "VISIT") != 0 && strcmp(kind, "VERIFY_EVENT") != 0 &&
	    strcmp(kind, "DATA_CHECK") != 0) {
		fprintf(stderr, "gridplatform: task add: --kind must be VISIT, "
		    "VERIFY_EVENT or DATA_CHECK\n");
		return GS_EX_USAGE;
	}
	if (!valid_date(due)) {
		fprintf(stderr, "gridplatform: task add: --due must be a date "
		    "YYYY-MM-DD\n");
		return GS_EX_USAGE;
	}
	if (subject != NULL && gs_uuid_parse(subject, raw) != GS_OK) {
		fprintf(stderr, "gridplatform: task add: --subject must be a "
		    "record UUID\n");
		return GS_EX_USAGE;
	}
	gs_uuid_v7(id);
	if ((r = pf_recon_stmt(pf->store, PQ_TASK_ADD, &s)) != GS_OK)
		return pf_recon_fail(r);
	if ((r = gs_stmt_bind_text(s, 1, id)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, worker)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, kind)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, subject)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 5, due)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 6, title)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 7, gs_now_ms())) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 8, pf_recon_admin(by))) != GS_OK) {
		gs_stmt_reset(s);
		return pf_recon_fail(r);
	}
	if ((r = gs_stmt_step(s)) != GS_DONE)
		return pf_recon_fail(r);
	printf("%s\n", id);
	return 0;
}

/* ---------------------------------------------------------------- stats */

int
pf_cmd_stats(struct pf_platform *pf, int argc, char **argv)
{
	int r, i, json = 0;
	int64_t since = 0;
	struct gs_stmt *s;
	json_t *rows = NULL, *workers = NULL, *grids = NULL, *doc = NULL;
	json_t *w, *g;
	struct tm tm;
	const char *e, *who, *grid;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			memset(&tm, 0, sizeof(tm));
			e = strptime(argv[++i], "%Y-%m-%d", &tm);
			if (e == NULL || *e != '\0') {
				fprintf(stderr, "gridplatform: stats: --since "
				    "must be a date YYYY-MM-DD\n");
				return GS_EX_USAGE;
			}
			since = (int64_t)timegm(&tm) * 1000;
		} else {
			fprintf(stderr, "gridplatform: stats: unknown or "
			    "incomplete option %s\n", argv[i]);
			return GS_EX_USAGE;
		}
	}
	if ((rows = json_array()) == NULL || (workers = json_object()) == NULL
	    || (grids = json_object()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "stats");
		goto out;
	}
	if ((r = pf_recon_stmt(pf->store, PQ_STATS, &s)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 1, since)) != GS_OK)
		goto out;
	if (!json)
		printf("%-10s  %-12s  %-14s  %8s  %6s\n", "day", "worker",
		    "grid", "records", "visits");
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		json_int_t n = gs_stmt_int64(s, 3), v = gs_stmt_int64(s, 4);

		who = gs_stmt_text(s, 0);
		grid = gs_stmt_text(s, 1);
		if (!json)
			printf("%-10s  %-12s  %-14s  %8lld  %6lld\n",
			    gs_stmt_text(s, 2), who, grid, (long long)n,
			    (long long)v);
		if (json_array_append_new(rows, json_pack("{s:s,s:s,s:s,s:I,"
		    "s:I}", "day", gs_stmt_text(s, 2), "worker", who, "grid",
		    grid, "records", n, "visits", v)) != 0) {
			gs_stmt_reset(s);
			r = GS_FAIL(GS_ENOMEM, "stats");
			goto out;
		}
		for (int k = 0; k < 2; k++) {
			json_t *map = k ? grids : workers;
			const char *key = k ? grid : who;

			if ((w = json_object_get(map, key)) == NULL) {
				w = json_pack("{s:I,s:I}", "records",
				    (json_int_t)0, "visits", (json_int_t)0);
				if (w == NULL || json_object_set_new(map, key,
				    w) != 0) {
					gs_stmt_reset(s);
					r = GS_FAIL(GS_ENOMEM, "stats");
					goto out;
				}
			}
			g = json_object_get(w, "records");
			json_integer_set(g, json_integer_value(g) + n);
			g = json_object_get(w, "visits");
			json_integer_set(g, json_integer_value(g) + v);
		}
	}
	if (r != GS_DONE)
		goto out;
	r = GS_OK;
	if (json) {
		doc = json_pack("{s:I,s:O,s:O,s:O}", "since", (json_int_t)since,
		    "by_day", rows, "workers", workers, "grids", grids);
		r = doc != NULL ? pf_recon_print_json(doc) :
		    GS_FAIL(GS_ENOMEM, "stats");
	} else {
		const char *k;

		printf("\n%-14s  %8s  %6s\n", "worker", "records", "visits");
		json_object_foreach(workers, k, w)
			printf("%-14s  %8lld  %6lld\n", k, (long long)
			    json_integer_value(json_object_get(w, "records")),
			    (long long)json_integer_value(json_object_get(w,
			    "visits")));
		printf("\n%-14s  %8s  %6s\n", "grid", "records", "visits");
		json_object_foreach(grids, k, w)
			printf("%-14s  %8lld  %6lld\n", k, (long long)
			    json_integer_value(json_object_get(w, "records")),
			    (long long)json_integer_value(json_object_get(w,
			    "visits")));
	}
out:
	json_decref(rows);
	json_decref(workers);
	json_decref(grids);
	json_decref(doc);
	return r == GS_OK ? 0 : pf_recon_fail(r);
}
