/*
 * ingest.c - receiving one sealed batch: checks in the order of DESIGN.md
 * section 6, then one store transaction per batch.
 *
 * Why this order: every step is cheaper than the next and needs only what
 * the previous ones established.  Nothing from the body is trusted before
 * the device's signature verifies, and nothing is decrypted or inflated
 * before that, so a forger costs us one Ed25519 verification.  The
 * idempotency lookup comes after the signature (a forger must not learn
 * which batch ids exist) and before decryption (a retry costs no AEAD and
 * no inflate).  The store transaction is the only place that writes: any
 * error before COMMIT stores nothing, and a receipt is only ever answered
 * for a committed batch.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "batch.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "envelope.h"
#include "ingest.h"
#include "json.h"
#include "merge.h"
#include "receipt.h"
#include "recon.h"
#include "schema.h"
#include "store.h"
#include "validate.h"
#include "core/banned.h"

int
pf_merge_fast_forward(int64_t base_rev, int64_t current_rev,
    int same_device_since_base)
{
	if (base_rev == current_rev)
		return 1;
	/* The device edited on top of its own earlier, already applied
	 * changes (sent in earlier batches before it learnt their revs):
	 * nobody else touched the record since, so nothing can be lost. */
	return base_rev < current_rev && same_device_since_base;
}

/* Test faults, from $GRIDPLATFORM_FAULT (platform.h). */
int
pf_fault_hit(const char *name, long *seen, long *n, uint64_t *v)
{
	const char *e = getenv("GRIDPLATFORM_FAULT");
	size_t len = strlen(name);

	if (e == NULL || strncmp(e, name, len) != 0 || e[len] != '=' ||
	    gs_parse_u64(e + len + 1, 1000000, v) != GS_OK)
		return 0;
	*n = __atomic_add_fetch(seen, 1, __ATOMIC_SEQ_CST);
	return 1;
}

/*
 * Crash tests (tests/integration/fault-*.sh): "kill-before-commit=N" or
 * "kill-after-commit=N" kills the platform with SIGKILL at the Nth batch
 * commit of this process, just before COMMIT or just after it (the batch
 * is stored, the device never hears).
 */
static void
fault_point(const char *name)
{
	static long seen[2];
	long n;
	uint64_t v;

	if (pf_fault_hit(name, &seen[strcmp(name, "kill-after-commit") == 0], &n,
	    &v) && n == (long)v)
		(void)raise(SIGKILL);
}

/* Never trust the device: the shared validators, then DESIGN.md section
 * 3's "a ref is another record" (the change's own uuid). */
static int
validate_record(const struct gs_schema *schema, const struct gs_form *form,
    json_t *fields, const char *uuid, struct gs_problems *p)
{
	int r = gs_record_validate(schema, form, fields, p);

	return r == GS_OK ? gs_record_check_self(form, fields, uuid, p) : r;
}

/*
 * Tests only (tests/integration/agent-sync-inflight.sh):
 * "too-early=N" answers the first N batches sent with ?follows as if the
 * batch they follow were neither committed nor in ingest (the answer a
 * device gets when its two requests are served in the wrong order).
 */
static int
fault_too_early(void)
{
	static long seen;
	long n;
	uint64_t v;

	return pf_fault_hit("too-early", &seen, &n, &v) && n <= (long)v;
}

/*
 * Tests only (tests/unit/platform-ingest.c): "sync-fail=N" makes the
 * first N syncs of an answered batch fail as a disk that reports an
 * error would: the batch is committed, its answer is 500.
 */
static int
fault_sync_fail(void)
{
	static long seen;
	long n;
	uint64_t v;

	return pf_fault_hit("sync-fail", &seen, &n, &v) && n <= (long)v;
}

void
pf_ingest_result_release(struct pf_ingest_result *res)
{
	if (res == NULL)
		return;
	gs_free(res->results);
	res->results = NULL;
}

/*
 * The state of one batch's transaction: what one_change needs to write a
 * change and to account for it.  The counts become the receipt's; the
 * results array becomes the "results" text the receipt hashes.
 */
struct tally {
	unsigned char device[PF_ID_BYTES];
	char key[8 + GS_CHANGE_TYPE_MAX];
	int64_t n;
};

/*
 * A new record's validation, made before the store lock (prevalidate):
 * for a change that only sets fields, the record after it is its fields
 * object whenever the record has no current fields, and validating that
 * needs nothing from the store.  one_change takes the verdict when it
 * is for the same form; otherwise (the record exists, say) it validates
 * under the lock as before.
 */
struct verdict {
	const struct gs_form *form; /* validated with; NULL: not made */
	int r;                      /* GS_OK or GS_EVALIDATION */
	json_t *problems;           /* with GS_EVALIDATION: taken by use */
};

struct ingest {
	struct pf_platform *pf;
	/* The schema this batch is validated with, taken once (pf_schema)
	 * so a publication mid-batch cannot split it across two. */
	const struct gs_schema *schema;
	struct pf_store *st;
	const struct pf_device *dev;
	struct pf_batch_row *row;
	json_t *results;          /* array of non-trivial outcomes */
	struct gs_buf line;       /* one change: its canonical line */
	struct gs_buf fields;     /* the record's fields text after it */
	unsigned applied, conflicted, quarantined;
	int64_t now;
	/* The device tallies this batch moves, added up here and written
	 * once per (device, key) at the end of the batch (tally_flush):
	 * a batch of a thousand new records is two writes, not two
	 * thousand.  A handful of entries (record types, devices). */
	struct tally *tallies;
	size_t ntallies, captallies;
};

/* Adds delta to the batch's tally of (device, key). */
static int
tally(struct ingest *in, const unsigned char *device, const char *prefix,
    const char *type, int64_t delta)
{
	struct tally *t;
	char key[sizeof(t->key)];
	size_t i;

	snprintf(key, sizeof(key), "%s%s", prefix, type);
	for (i = 0; i < in->ntallies; i++) {
		t = &in->tallies[i];
		if (memcmp(t->device, device, PF_ID_BYTES) == 0 &&
		    strcmp(t->key, key) == 0) {
			t->n += delta;
			return GS_OK;
		}
	}
	if (in->ntallies == in->captallies) {
		size_t cap = in->captallies ? in->captallies * 2 : 8;

		if ((t = gs_realloc(in->tallies, cap * sizeof(*t))) == NULL)
			return GS_FAIL(GS_ENOMEM, "tallies");
		in->tallies = t;
		in->captallies = cap;
	}
	t = &in->tallies[in->ntallies++];
	memcpy(t->device, device, PF_ID_BYTES);
	gs_strlcpy(t->key, key, sizeof(t->key));
	t->n = delta;
	return GS_OK;
}

/*
 * The tallies of one revision written by revision_put (what the triggers
 * of schema/platform 0002 counted before 0007): a revision for its
 * device; a new record for its device and type; a record another device
 * wrote last moves to this one.
 */
static int
tally_revision(struct ingest *in, const struct pf_record_state *s,
    const char *type)
{
	int r;

	if ((r = tally(in, in->dev->id, "rev", "", 1)) != GS_OK)
		return r;
	if (s->exists && memcmp(s->device, in->dev->id, PF_ID_BYTES) == 0)
		return GS_OK;
	if (s->exists && (r = tally(in, s->device, "rec:", type, -1)) != GS_OK)
		return r;
	return tally(in, in->dev->id, "rec:", type, 1);
}

static int
tally_flush(struct ingest *in)
{
	size_t i;
	int r;

	for (i = 0; i < in->ntallies; i++)
		if (in->tallies[i].n != 0 &&
		    (r = in->st->ops->tally_add(in->st, in->tallies[i].device,
		    in->tallies[i].key, in->tallies[i].n)) != GS_OK)
			return r;
	return GS_OK;
}

/* Adds {change_id, uuid, status, rev, reasons} to the results.  Takes
 * the reference to reasons (NULL = an empty array). */
static int
result_add(struct ingest *in, const struct gs_change *c, const char *status,
    int64_t rev, json_t *reasons)
{
	json_t *o;

	if (reasons == NULL && (reasons = json_array()) == NULL)
		return GS_FAIL(GS_ENOMEM, "results");
	/* "o" steals the reference, also when json_pack fails. */
	o = json_pack("{s:s,s:s,s:s,s:I,s:o}", "change_id", c->change_id,
	    "uuid", c->uuid, "status", status, "rev", (json_int_t)rev,
	    "reasons", reasons);
	if (o == NULL || json_array_append_new(in->results, o) != 0)
		return GS_FAIL(GS_ENOMEM, "results");
	return GS_OK;
}

/* A one-problem reasons array, in the shape gs_problems_json gives, so a
 * device shows platform-made reasons the same way as validation ones. */
static json_t *
one_reason(const char *field, const char *rule, const char *msg)
{
	return json_pack("[{s:s,s:s,s:s}]", "field", field, "rule", rule,
	    "message", msg);
}

/*
 * The reasons as listed in the results: at most PF_RESULT_REASONS, the
 * rest summed up in one more.  The quarantine table keeps them all; the
 * answer must stay small enough for a device to read whole (the agent
 * caps answers at 1 MiB, and a batch holds up to 1000 changes there).
 * Takes the reference to reasons; returns a new one (NULL: no memory).
 */
#define PF_RESULT_REASONS 4

static json_t *
trim_reasons(json_t *reasons)
{
	json_t *out;
	size_t i, n = json_array_size(reasons);
	char msg[96];

	if (n <= PF_RESULT_REASONS)
		return reasons;
	out = json_array();
	for (i = 0; out != NULL && i < PF_RESULT_REASONS - 1; i++)
		if (json_array_append(out, json_array_get(reasons, i)) != 0) {
			json_decref(out);
			out = NULL;
		}
	snprintf(msg, sizeof(msg), "%zu more problems; the platform keeps "
	    "them all", n - (PF_RESULT_REASONS - 1));
	if (out != NULL && json_array_append_new(out, json_pack("{s:s,s:s,"
	    "s:s}", "field", "", "rule", "more_problems", "message", msg))
	    != 0) {
		json_decref(out);
		out = NULL;
	}
	json_decref(reasons);
	return out;
}

/* Keeps a change in quarantine and lists it.  Takes the reference to
 * reasons (NULL: out of memory). */
static int
quarantine(struct ingest *in, const struct gs_change *c, const char *cause,
    json_t *reasons, int record_change)
{
	struct pf_quarantined q;
	char *text = NULL;
	int r;

	if (reasons == NULL)
		return GS_FAIL(GS_ENOMEM, "quarantine reasons");
	if ((text = json_dumps(reasons, JSON_COMPACT)) == NULL) {
		json_decref(reasons);
		return GS_FAIL(GS_ENOMEM, "quarantine reasons");
	}
	memset(&q, 0, sizeof(q));
	q.uuid = c->uuid;
	q.change_id = c->change_id;
	q.type = c->type;
	q.grid = c->grid;
	q.cause = cause;
	q.change = in->line.data;
	q.reasons = text;
	q.created_at = in->now;
	q.device = in->dev->id;
	q.batch = in->row->id;
	q.record_change = record_change;
	r = in->st->ops->quarantine_put(in->st, &q);
	gs_json_free(text);
	if (r != GS_OK) {
		json_decref(reasons);
		return r;
	}
	in->quarantined++;
	return result_add(in, c, "quarantined", 0, trim_reasons(reasons));
}

/*
 * The record's fields after the change: the current fields (none for a
 * new or deleted record) with the change's fields set, and its nulls
 * removed.  New reference or NULL (out of memory, or stored JSON bad).
 */
static json_t *
candidate(const struct pf_record_state *s, const struct gs_change *c)
{
	json_t *out, *v;
	json_error_t jerr;
	const char *k;

	if (s->exists && !s->deleted && s->fields != NULL)
		out = json_loads(s->fields, 0, &jerr);
	else
		out = json_object();
	if (out == NULL || !json_is_object(out)) {
		json_decref(out);
		return NULL;
	}
	json_object_foreach(c->fields, k, v) {
		if (json_is_null(v)) {
			(void)json_object_del(out, k);
		} else if (json_object_set_new(out, k, json_deep_copy(v)) != 0) {
			json_decref(out);
			return NULL;
		}
	}
	return out;
}

/* Parses stored JSON object text; NULL text gives NULL (no fields). */
static int
parse_obj(const char *text, json_t **out)
{
	json_error_t jerr;

	*out = NULL;
	if (text == NULL)
		return GS_OK;
	if ((*out = json_loads(text, 0, &jerr)) == NULL ||
	    !json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return GS_FAIL(GS_ECORRUPT, "stored fields are not a JSON "
		    "object");
	}
	return GS_OK;
}

/* A visit that names a task closes it (issue 4: tasks back to the field). */
static int
close_task(struct ingest *in, const struct gs_change *c)
{
	json_t *t;

	if (c->deleted || strcmp(c->type, "visit") != 0 ||
	    !json_is_string(t = json_object_get(c->fields, "task")))
		return GS_OK;
	return pf_recon_task_close(in->st, json_string_value(t), c->uuid,
	    in->now);
}

/*
 * A change made against a revision the record has moved past, by another
 * device or an admin: the three-way merge of sync/merge.h against the kept
 * base revision.  Disjoint field edits become one new revision (outcome
 * merged); the same field set to different values, or an edit against a
 * delete, is kept as a conflict with every value (base, platform, device)
 * for an admin, and the record stays as it is.
 */
static int
merge_change(struct ingest *in, const struct gs_change *c,
    const struct pf_record_state *s, const struct gs_form *form)
{
	int r = GS_EINTERNAL, base_del = 0;
	char *base_text = NULL, *merged = NULL, *detail = NULL, msg[160];
	json_t *base = NULL, *theirs = NULL, *ours = NULL, *reasons = NULL;
	json_t *x;
	struct gs_merge_result m;
	struct gs_problems probs;
	struct pf_revision v;
	struct pf_conflict k;
	size_t i;

	memset(&m, 0, sizeof(m));
	if ((r = pf_recon_base(in->st, c->uuid, c->base_rev, &base_text,
	    &base_del)) != GS_OK)
		goto out;
	if ((r = parse_obj(base_text, &base)) != GS_OK ||
	    (r = parse_obj(s->fields, &theirs)) != GS_OK)
		goto out;
	if ((ours = c->deleted ? json_incref(base) :
	    gs_merge_apply(base, c->fields)) == NULL && !c->deleted) {
		r = GS_FAIL(GS_ENOMEM, "record %s: merge", c->uuid);
		goto out;
	}
	if ((r = gs_merge3(base, base_del, theirs, s->deleted, ours,
	    c->deleted, &m)) != GS_OK)
		goto out;

	if (json_array_size(m.conflicts) == 0) {
		if (!m.deleted) {
			/* Never trust a merge either: the merged record
			 * must be valid as a whole. */
			r = validate_record(in->schema, form, m.merged,
			    c->uuid, &probs);
			if (r == GS_EVALIDATION) {
				r = quarantine(in, c, "invalid",
				    gs_problems_json(&probs), 1);
				goto out;
			}
			if (r != GS_OK)
				goto out;
			if ((merged = json_dumps(m.merged, JSON_COMPACT |
			    JSON_SORT_KEYS)) == NULL) {
				r = GS_FAIL(GS_ENOMEM, "merge");
				goto out;
			}
		}
		memset(&v, 0, sizeof(v));
		v.uuid = c->uuid;
		v.change_id = c->change_id;
		v.type = c->type;
		v.grid = c->grid;
		v.author = c->author;
		v.form_version = c->form_version;
		v.rev = s->rev + 1;
		v.base_rev = c->base_rev;
		v.deleted = m.deleted;
		v.fields = merged;
		v.change = in->line.data;
		v.created_at = c->created_at;
		v.updated_at = c->updated_at;
		v.applied_at = in->now;
		v.device = in->dev->id;
		v.batch = in->row->id;
		v.outcome = PF_MERGED;
		v.record_exists = 1;
		if ((r = in->st->ops->revision_put(in->st, &v)) != GS_OK ||
		    (r = tally_revision(in, s, c->type)) != GS_OK ||
		    (r = close_task(in, c)) != GS_OK)
			goto out;
		in->applied++;
		r = result_add(in, c, "merged", v.rev, NULL);
		goto out;
	}

	/* Both values are kept; the decision is an admin's, never a silent
	 * overwrite. */
	memset(&k, 0, sizeof(k));
	k.uuid = c->uuid;
	k.change_id = c->change_id;
	k.change = in->line.data;
	k.current_fields = s->fields;
	k.base_rev = c->base_rev;
	k.current_rev = s->rev;
	k.created_at = in->now;
	k.device = in->dev->id;
	k.batch = in->row->id;
	if ((r = in->st->ops->conflict_put(in->st, &k)) != GS_OK)
		goto out;
	if ((detail = json_dumps(m.conflicts, JSON_COMPACT)) == NULL ||
	    (merged = json_dumps(m.merged, JSON_COMPACT | JSON_SORT_KEYS))
	    == NULL) {
		r = GS_FAIL(GS_ENOMEM, "conflict detail");
		goto out;
	}
	if ((r = pf_recon_conflict_detail(in->st, c->change_id, detail,
	    merged, m.deleted)) != GS_OK)
		goto out;
	in->conflicted++;
	if ((reasons = json_array()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "results");
		goto out;
	}
	json_array_foreach(m.conflicts, i, x) {
		const char *f = json_string_value(json_object_get(x, "field"));
		const char *rule = json_string_value(json_object_get(x,
		    "rule"));

		if (strcmp(rule, "field") == 0)
			snprintf(msg, sizeof(msg), "changed on the platform "
			    "since rev %lld to another value; kept for an "
			    "admin", (long long)c->base_rev);
		else
			snprintf(msg, sizeof(msg), "%s", strcmp(rule,
			    "delete_edit") == 0 ? "deleted here but edited "
			    "on the platform; kept for an admin" : "edited "
			    "here but deleted on the platform; kept for an "
			    "admin");
		if (json_array_append_new(reasons, json_pack("{s:s,s:s,s:s}",
		    "field", f, "rule", "conflict", "message", msg)) != 0) {
			r = GS_FAIL(GS_ENOMEM, "results");
			goto out;
		}
	}
	r = result_add(in, c, "conflict", s->rev, trim_reasons(reasons));
	reasons = NULL;
out:
	json_decref(reasons);
	gs_merge_result_release(&m);
	json_decref(base);
	json_decref(theirs);
	json_decref(ours);
	gs_free(base_text);
	gs_json_free(merged);
	gs_json_free(detail);
	return r;
}

/*
 * Applies, conflicts or quarantines one change, inside the batch's
 * transaction.  Each change gets exactly one outcome, and every outcome
 * keeps the change as the device sent it (its canonical line), so an
 * admin can always see what arrived.  A store error aborts the whole batch
 * (the caller rolls back): a batch is never half applied.
 */
/*
 * Does the change set fields only (no null, which would clear one)?  Then
 * on a record with no current fields the record after it is the change's
 * fields object as it is.
 */
static int
sets_only(const struct gs_change *c)
{
	const char *k;
	json_t *v;

	json_object_foreach(c->fields, k, v)
		if (json_is_null(v))
			return 0;
	return 1;
}

/*
 * The form a change is validated with: its type's, in the version it was
 * collected with (reference data: platform/reference.c).  NULL when the
 * type or that version is not published here: such a change is kept
 * aside, not guessed at.
 */
static const struct gs_form *
change_form(const struct gs_schema *schema, const struct gs_change *c)
{
	const struct gs_form *form = gs_schema_form(schema, c->type);

	if (form != NULL && gs_form_version(form) != c->form_version)
		form = gs_schema_form_version(schema, c->type,
		    c->form_version);
	return form;
}

/*
 * Validates, before the store lock, the record each change that only
 * sets fields would make if the record had no fields yet (struct
 * verdict): on another thread than the batch being committed, while it
 * is.  pre has batch->n entries.
 */
/* sets_only of a change whose fields the decoder left unbuilt. */
static int
sets_only_spans(const struct gs_batch *batch, size_t i)
{
	const struct gs_batch_line *l = &batch->lines[i];
	const struct gs_json_span *m = batch->members + l->m;
	size_t k;

	for (k = 0; k < l->nm; k++)
		if (m[k].vlen == 4 && memcmp(m[k].val, "null", 4) == 0)
			return 0;
	return 1;
}

/*
 * The decoder builds no fields object for the common change
 * (gs_batch_decode_spans): its members are read where they are, and its
 * verdict is gs_record_validate_spans's when that finds it valid.  For
 * everything else (the record invalid, a value to normalize, ...) the
 * object is built, and the shared validators decide as they always did:
 * the outcome and its reasons never depend on the members' path.  Every
 * change that leaves the run path has its object built (fields_of), so
 * one_change and all after it see c->fields as decoded.
 */
static int
fields_of(struct gs_batch *batch, size_t i)
{
	return batch->lines != NULL ? gs_batch_fields(batch, i) : GS_OK;
}

static void
prevalidate(const struct gs_schema *schema, struct gs_batch *batch,
    struct verdict *pre)
{
	struct gs_problems probs;
	const struct gs_change *c;
	const struct gs_batch_line *l;
	size_t i;

	for (i = 0; i < batch->n; i++) {
		c = &batch->changes[i];
		l = batch->lines != NULL ? &batch->lines[i] : NULL;
		if (c->deleted || (l != NULL && l->spans ?
		    !sets_only_spans(batch, i) : !sets_only(c)) ||
		    (pre[i].form = change_form(schema, c)) == NULL)
			continue;
		if (l != NULL && l->spans && gs_record_validate_spans(schema,
		    pre[i].form, batch->members + l->m, l->nm, c->uuid)) {
			pre[i].r = GS_OK;
			continue;
		}
		if (fields_of(batch, i) != GS_OK) {
			pre[i].form = NULL; /* out of memory: again later */
			continue;
		}
		pre[i].r = validate_record(schema, pre[i].form, c->fields,
		    c->uuid, &probs);
		if (pre[i].r == GS_EVALIDATION &&
		    (pre[i].problems = gs_problems_json(&probs)) == NULL)
			pre[i].form = NULL; /* out of memory: again later */
		else if (pre[i].r != GS_OK && pre[i].r != GS_EVALIDATION)
			pre[i].form = NULL;
	}
}

/*
 * The revision a change makes of a record in state s (zeroed: a new
 * record), with fields its text after the change (NULL: deleted).
 */
static void
revision_of(struct ingest *in, const struct gs_change *c,
    const struct pf_record_state *s, const char *fields,
    struct pf_revision *v)
{
	memset(v, 0, sizeof(*v));
	v->uuid = c->uuid;
	v->change_id = c->change_id;
	v->type = c->type;
	v->grid = c->grid;
	v->author = c->author;
	v->form_version = c->form_version;
	v->rev = (s->exists ? s->rev : 0) + 1;
	v->base_rev = c->base_rev;
	v->deleted = c->deleted;
	v->fields = fields;
	v->change = in->line.data;
	v->created_at = c->created_at;
	v->updated_at = c->updated_at;
	v->applied_at = in->now;
	v->device = in->dev->id;
	v->batch = in->row->id;
	v->outcome = v->rev == c->base_rev + 1 ? PF_APPLIED : PF_MERGED;
	v->record_exists = s->exists;
}

/*
 * The fields text of a record made of c's fields alone, into in->fields:
 * the "fields" text of its line, kept as it came, when there is one
 * (*in_line 1: the revision then keeps it once, in the line).
 */
static int
fresh_fields(struct ingest *in, const struct gs_change *c,
    const struct gs_batch_line *l, int *in_line)
{
	int r;

	gs_buf_reset(&in->fields);
	*in_line = l != NULL && l->fields_off > 0;
	if (*in_line)
		r = gs_buf_append(&in->fields, l->text + l->fields_off,
		    l->len - l->fields_off - 1);
	else
		r = gs_batch_encode_fields(&in->fields, c->fields);
	return r != GS_OK ? GS_FAIL(r, "record %s: fields", c->uuid) : GS_OK;
}

/* Is c a collection create applies (below)? */
static int
creation(const struct ingest *in, const struct gs_change *c,
    const struct verdict *pre)
{
	return pre != NULL && pre->form != NULL && pre->r == GS_OK &&
	    c->base_rev == 0 && !c->deleted &&
	    strcmp(c->author, in->dev->worker) == 0 &&
	    strcmp(c->grid, in->dev->grid) == 0;
}

/*
 * A collection, the common case: a change with base_rev 0 whose fields
 * alone make a valid record (its verdict, made before the lock), by the
 * device's own worker in its own grid.  If neither its change id nor its
 * uuid is known here, it is applied as one_change would apply it (a new
 * record, rev 1), without the two lookups: GS_OK.  GS_EEXIST, with
 * nothing written, when either is known: one_change's way then.
 */
static int
create(struct ingest *in, const struct gs_change *c,
    const struct gs_batch_line *l, const struct verdict *pre)
{
	struct pf_record_state s;
	struct pf_revision v;
	int r, in_line;

	if (in->st->ops->create_put == NULL || !creation(in, c, pre))
		return GS_EEXIST;
	if ((r = fresh_fields(in, c, l, &in_line)) != GS_OK)
		return r;
	memset(&s, 0, sizeof(s));
	revision_of(in, c, &s, in->fields.data, &v);
	v.fields_in_change = in_line;
	if ((r = in->st->ops->create_put(in->st, &v)) != GS_OK)
		return r;
	if ((r = tally_revision(in, &s, c->type)) != GS_OK ||
	    (r = close_task(in, c)) != GS_OK)
		return r;
	in->applied++;
	return GS_OK;
}

/* The change's line as the device sent it, into in->line: the decoder
 * has just checked it is the canonical encoding of c, so it is kept as
 * it came instead of being encoded again. */
static int
line_of(struct ingest *in, const struct gs_change *c,
    const struct gs_batch_line *l)
{
	int r;

	gs_buf_reset(&in->line);
	if (l != NULL)
		return gs_buf_append(&in->line, l->text, l->len);
	if ((r = gs_batch_encode_change(&in->line, c)) == GS_OK)
		/* Keep the line without its "\n". */
		gs_buf_truncate(&in->line, in->line.len - 1);
	return r;
}

static int
one_change(struct ingest *in, const struct gs_change *c,
    const struct gs_batch_line *l, struct verdict *pre)
{
	int r = GS_EINTERNAL;
	struct pf_record_state s;
	const struct gs_form *form;
	struct gs_problems probs;
	enum pf_outcome prev;
	int64_t prev_rev;
	unsigned char prev_dev[16];
	json_t *cand = NULL, *problems = NULL;
	const char *fields = NULL;
	char msg[160];
	struct pf_revision v;
	int in_line = 0;

	memset(&s, 0, sizeof(s));
	if ((r = line_of(in, c, l)) != GS_OK)
		return r;

	/* Revoke but drain: kept, never applied, an admin decides. */
	if (in->dev->revoked)
		return quarantine(in, c, "revoked", one_reason("",
		    "device_revoked", "the device is revoked; kept for an "
		    "admin"), 0);

	if ((r = create(in, c, l, pre)) != GS_EEXIST)
		return r;

	/* One applied change per change id, forever: a change seen again
	 * gets its first outcome reported and nothing is done twice. */
	r = in->st->ops->change_find(in->st, c->change_id, &prev, &prev_rev,
	    prev_dev);
	if (r == GS_OK && memcmp(prev_dev, in->dev->id, sizeof(prev_dev))
	    != 0)
		/* Another device's change id: never its outcome, never
		 * applied; kept for an admin (a bug or a forgery). */
		return quarantine(in, c, "invalid", one_reason("",
		    "change_id_reused", "this change id was sent by another "
		    "device"), 0);
	if (r == GS_OK) {
		switch (prev) {
		case PF_APPLIED:
		case PF_MERGED:
			in->applied++;
			return result_add(in, c, "merged", prev_rev, NULL);
		case PF_CONFLICT:
			in->conflicted++;
			return result_add(in, c, "conflict", prev_rev, NULL);
		default:
			in->quarantined++;
			return result_add(in, c, "quarantined", 0, one_reason(
			    "", "duplicate", "this change id was already "
			    "quarantined"));
		}
	}
	if (r != GS_ENOTFOUND)
		return r;

	/* The device speaks for the worker and grid it was enrolled for,
	 * nobody else: a change naming another is kept aside, never
	 * applied under a name the device does not hold. */
	if (strcmp(c->author, in->dev->worker) != 0) {
		snprintf(msg, sizeof(msg), "author '%.40s' is not the worker "
		    "this device is enrolled for (%.40s)", c->author,
		    in->dev->worker);
		return quarantine(in, c, "invalid", one_reason("author",
		    "author_mismatch", msg), 1);
	}
	if (strcmp(c->grid, in->dev->grid) != 0) {
		snprintf(msg, sizeof(msg), "grid '%.40s' is not the grid this "
		    "device is enrolled for (%.40s)", c->grid, in->dev->grid);
		return quarantine(in, c, "invalid", one_reason("grid",
		    "grid_mismatch", msg), 1);
	}

	/* Quarantine, not refusal, for everything a worker's data can get
	 * wrong: the rest of the batch still applies, and the reasons go
	 * back to the device in the results. */
	if (gs_schema_form(in->schema, c->type) == NULL) {
		snprintf(msg, sizeof(msg), "unknown record type %s", c->type);
		return quarantine(in, c, "invalid", one_reason("",
		    "unknown_type", msg), 1);
	}
	/* Each record is validated with the form version it was collected
	 * with; one the platform never published is kept aside. */
	if ((form = change_form(in->schema, c)) == NULL) {
		snprintf(msg, sizeof(msg), "form %s version %d is not "
		    "published on this platform", c->type, c->form_version);
		return quarantine(in, c, "invalid", one_reason("",
		    "unknown_form_version", msg), 1);
	}
	if ((r = in->st->ops->record_state(in->st, c->uuid, in->dev->id,
	    c->base_rev, &s)) != GS_OK)
		goto out;
	if (s.exists && strcmp(s.type, c->type) != 0) {
		snprintf(msg, sizeof(msg), "record is a %s, not a %s", s.type,
		    c->type);
		r = quarantine(in, c, "invalid", one_reason("", "type_mismatch",
		    msg), 1);
		goto out;
	}
	/* A base the platform never issued would make the merge rule
	 * meaningless (and pf_merge_fast_forward would wrongly see "no
	 * other device since"): such a change is kept aside. */
	if (c->base_rev > (s.exists ? s.rev : 0)) {
		snprintf(msg, sizeof(msg), "base_rev %lld is newer than the "
		    "platform's rev %lld", (long long)c->base_rev,
		    (long long)(s.exists ? s.rev : 0));
		r = quarantine(in, c, "invalid", one_reason("", "bad_base_rev",
		    msg), 1);
		goto out;
	}
	/* Behind the platform (another device or an admin moved the
	 * record since base_rev): merge by field. */
	if (s.exists && !pf_merge_fast_forward(c->base_rev, s.rev,
	    s.same_device_since_base)) {
		r = merge_change(in, c, &s, form);
		goto out;
	}
	if (!c->deleted) {
		int fresh = !(s.exists && !s.deleted && s.fields != NULL) &&
		    sets_only(c);

		/* A new record (the common case: a collection) is the
		 * change's fields as they are: no copy to build. */
		if (fresh)
			cand = json_incref(c->fields);
		else
			cand = candidate(&s, c);
		if (cand == NULL) {
			r = GS_FAIL(GS_ENOMEM, "record %s: fields", c->uuid);
			goto out;
		}
		/* Never trust the device: validate the record as it would
		 * be after the change (before the lock, for a new one). */
		if (fresh && pre != NULL && pre->form == form) {
			r = pre->r;
			problems = pre->problems;
			pre->problems = NULL;
		} else if ((r = validate_record(in->schema, form, cand,
		    c->uuid, &probs)) == GS_EVALIDATION) {
			problems = gs_problems_json(&probs);
		}
		if (r == GS_EVALIDATION) {
			r = quarantine(in, c, "invalid", problems, 1);
			problems = NULL;
			goto out;
		}
		if (r != GS_OK)
			goto out;
		/* Stored in the canonical form of the wire (sorted keys, reals
		 * with 15 digits): for a new record that is exactly the
		 * "fields" text of its line, which is kept as it came. */
		if (fresh) {
			r = fresh_fields(in, c, l, &in_line);
		} else {
			gs_buf_reset(&in->fields);
			if ((r = gs_batch_encode_fields(&in->fields, cand)) !=
			    GS_OK)
				r = GS_FAIL(r, "record %s: fields", c->uuid);
		}
		if (r != GS_OK)
			goto out;
		fields = in->fields.data;
	}

	/* A new revision: the record row moves on and the revision row keeps
	 * both the change and the full fields after it (the base of a later
	 * three-way merge); the changes ledger claims the change id. */
	revision_of(in, c, &s, fields, &v);
	v.fields_in_change = in_line;
	if ((r = in->st->ops->revision_put(in->st, &v)) != GS_OK ||
	    (r = tally_revision(in, &s, c->type)) != GS_OK ||
	    (r = close_task(in, c)) != GS_OK)
		goto out;
	in->applied++;
	/* A plain fast-forward is not listed: the device knows its rev is
	 * base_rev + 1.  Anything else says which rev it got. */
	r = v.outcome == PF_APPLIED ? GS_OK :
	    result_add(in, c, "merged", v.rev, NULL);
out:
	json_decref(problems);
	json_decref(cand);
	pf_record_state_release(&s);
	return r;
}

/*
 * Runs of collections (store.h run_begin): a batch of new records is
 * mostly collections one after the other, each of which one_change would
 * apply through create (create_put: ledger, record, revision and feed
 * rows, four statements).  RUN_MIN or more of them in a row are written
 * as a run instead: their record and revision rows one by one, their
 * ledger and feed rows at the run's end, set-wise.  A member is what
 * create would apply, on a device not revoked, and not a visit that
 * closes a task (close_task writes a task's feed row, which must keep its
 * place among the records' rows: such a visit goes through one_change).
 * When the store finds a uuid or change id of the run held, nothing of
 * the run is kept and its changes take one_change's way, one by one,
 * exactly as without runs: the outcomes never depend on runs.
 */
#define RUN_MIN 4

/* Does a visit name a task (close_task)?  Its fields built or not. */
static int
names_task(const struct gs_batch *batch, size_t i)
{
	const struct gs_change *c = &batch->changes[i];
	const struct gs_batch_line *l = &batch->lines[i];
	const struct gs_json_span *m = batch->members + l->m;
	size_t k;

	if (strcmp(c->type, "visit") != 0)
		return 0;
	if (!l->spans)
		return json_is_string(json_object_get(c->fields, "task"));
	for (k = 0; k < l->nm; k++)
		if (m[k].klen == 4 && memcmp(m[k].key, "task", 4) == 0)
			return m[k].val[0] == '"';
	return 0;
}

/* Have the fields of change i, a run's member, no "attachments"
 * member (store.h no_attachments)?  Their members are in key order. */
static int
no_attachments(const struct gs_batch *batch, size_t i)
{
	static const char key[] = "attachments";
	const struct gs_batch_line *l = &batch->lines[i];
	const struct gs_json_span *m = batch->members + l->m;
	size_t k;

	if (!l->spans)
		return json_object_get(batch->changes[i].fields, key) == NULL;
	for (k = 0; k < l->nm; k++)
		if (m[k].klen == sizeof(key) - 1 &&
		    memcmp(m[k].key, key, sizeof(key) - 1) == 0)
			return 0;
	return 1;
}

static int
run_member(const struct ingest *in, const struct gs_batch *batch, size_t i,
    const struct verdict *pre)
{
	const struct gs_change *c = &batch->changes[i];
	const struct gs_batch_line *l = &batch->lines[i];

	return !in->dev->revoked && l->fields_off > 0 &&
	    l->fields_off + 1 < l->len && creation(in, c, pre) &&
	    !names_task(batch, i);
}

/* A run's member, its line (as sent) and "fields" text read where the
 * batch's plaintext has them, by length: they stay there, unchanged,
 * until the batch is released, after the run has ended. */
static int
run_one(struct ingest *in, const struct gs_batch *batch, size_t i)
{
	const struct gs_change *c = &batch->changes[i];
	const struct gs_batch_line *l = &batch->lines[i];
	struct pf_record_state s;
	struct pf_revision v;

	memset(&s, 0, sizeof(s));
	revision_of(in, c, &s, l->text + l->fields_off, &v);
	v.fields_len = l->len - l->fields_off - 1;
	v.change = l->text;
	v.change_len = l->len;
	/* The revision keeps its fields once, in its line (platform
	 * 0010), as fresh_fields has them for create. */
	v.fields_in_change = 1;
	v.no_attachments = no_attachments(batch, i);
	return in->st->ops->run_put(in->st, &v);
}

/*
 * The run of members starting at change from, if it is long enough:
 * applied as a run (GS_OK), or not (GS_EEXIST: too short, or a key of
 * it held, nothing written); *next is the change after the run.
 */
static int
apply_run(struct ingest *in, const struct gs_batch *batch,
    const struct verdict *pre, size_t from, size_t *next)
{
	size_t i, j, to;
	int r = GS_OK, u;

	for (to = from; pre != NULL && batch->lines != NULL &&
	    to < batch->n && run_member(in, batch, to, &pre[to]); to++)
		;
	*next = to;
	if (in->st->ops->run_begin == NULL || to - from < RUN_MIN)
		return GS_EEXIST;
	if ((r = in->st->ops->run_begin(in->st)) != GS_OK)
		return r;
	for (i = from; i < to && r == GS_OK; i++)
		r = run_one(in, batch, i);
	if (r == GS_OK)
		r = in->st->ops->run_end(in->st, 1);
	else if ((u = in->st->ops->run_end(in->st, 0)) != GS_OK)
		r = u;
	if (r != GS_OK)
		return r;
	/* What create counts for each of them (tally_revision of a new
	 * record), added up: a revision each, a record of its type each. */
	if ((r = tally(in, in->dev->id, "rev", "", (int64_t)(to - from)))
	    != GS_OK)
		return r;
	for (i = from; i < to; i = j) {
		for (j = i + 1; j < to && strcmp(batch->changes[j].type,
		    batch->changes[i].type) == 0; j++)
			;
		if ((r = tally(in, in->dev->id, "rec:",
		    batch->changes[i].type, (int64_t)(j - i))) != GS_OK)
			return r;
	}
	in->applied += (unsigned)(to - from);
	return GS_OK;
}

/* Fills res from a stored batch row: the very bytes answered the first
 * time, so a device that lost our answer gets the same receipt and the
 * same results (and the same HTTP status) however often it retries. */
static int
stored_answer(const struct pf_batch_row *b, struct pf_ingest_result *res)
{
	if (b->receipt_len != GS_RECEIPT_BYTES)
		return GS_FAIL(GS_ECORRUPT, "stored receipt has %zu bytes",
		    b->receipt_len);
	memcpy(res->receipt, b->receipt, GS_RECEIPT_BYTES);
	if ((res->results = gs_strdup(b->results)) == NULL)
		return GS_FAIL(GS_ENOMEM, "results");
	res->http_status = b->http_status;
	res->applied = b->applied;
	res->conflicted = b->conflicted;
	res->quarantined = b->quarantined;
	res->replayed = 1;
	return GS_OK;
}

/*
 * The idempotency rule: the same (device, batch id) with the same bytes
 * gets the stored answer; with other bytes it is refused.  GS_ENOTFOUND
 * when the batch is new.  Called with the lock of st held.
 */
static int
lookup(struct pf_store *st, const struct gs_envelope_header *h,
    const unsigned char *hash, struct pf_ingest_result *res)
{
	struct pf_batch_row b;
	int r;

	r = st->ops->batch_find(st, h->device, h->batch, &b);
	if (r != GS_OK)
		return r;
	if (gs_crypto_memcmp(b.hash, hash, GS_HASHBYTES) != 0)
		r = GS_FAIL(GS_EREPLAY, "batch id already used with "
		    "different bytes");
	else
		r = stored_answer(&b, res);
	pf_batch_row_release(&b);
	return r;
}

/*
 * The transaction: everything about one batch, or nothing.  Order inside
 * it: the batch row first (its unique key claims the batch id, and every
 * record, revision, conflict and quarantine row points at it, so none can
 * exist without a kept, signed envelope: "no phantom"); then the changes;
 * then the ledger; then the receipt, signed over the final counts and the
 * results text, stored with the batch.  The receipt is only handed out
 * after COMMIT returned and the commit is on the disk (the caller's sync,
 * after the lock), so a device never holds a receipt for a batch we do
 * not have, power cut or not ("receipt soundness").
 */
static int
commit_batch(struct pf_platform *pf, const struct pf_device *dev,
    const struct gs_envelope_header *h, const unsigned char *env,
    size_t len, const unsigned char *hash, struct gs_batch *batch,
    const struct gs_schema *schema, struct verdict *pre,
    struct pf_ingest_result *res)
{
	int r = GS_EINTERNAL;
	struct pf_store *st = pf->store;
	struct pf_batch_row row;
	struct ingest in;
	struct gs_receipt rc;
	char *results = NULL;     /* jansson text: gs_json_free */
	size_t i, j, next;
	int in_tx = 0;

	memset(&row, 0, sizeof(row));
	memset(&in, 0, sizeof(in));
	gs_buf_init(&in.line, GS_BATCH_LINE_MAX + 1);
	gs_buf_init(&in.fields, GS_BATCH_LINE_MAX + 1);
	in.pf = pf;
	in.schema = schema;
	in.st = st;
	in.dev = dev;
	in.row = &row;
	in.now = gs_now_ms();
	if ((in.results = json_array()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "results");
		goto out;
	}
	memcpy(row.device, h->device, sizeof(row.device));
	memcpy(row.batch, h->batch, sizeof(row.batch));
	row.seq = h->seq;
	memcpy(row.prev_hash, h->prev_hash, sizeof(row.prev_hash));
	memcpy(row.hash, hash, sizeof(row.hash));
	row.envelope = (unsigned char *)env;
	row.envelope_len = len;
	row.received_at = in.now;

	if ((r = st->ops->begin(st)) != GS_OK)
		goto out;
	in_tx = 1;
	/* The unique key claims the batch id with the work itself. */
	if ((r = st->ops->batch_insert(st, &row)) != GS_OK) {
		/* Claimed since our lookup: the pf->lock that orders the
		 * lookups is this process's, and another process on this
		 * home (a second serve) committed the same batch while we
		 * waited for the write lock.  It is a retry: the stored
		 * answer, not a refusal the device would keep for good. */
		if (r == GS_EEXIST) {
			st->ops->rollback(st);
			in_tx = 0;
			r = lookup(st, h, hash, res);
		}
		goto out;
	}
	for (i = 0; i < batch->n; i = next) {
		r = apply_run(&in, batch, pre, i, &next);
		if (r == GS_OK)
			continue;
		if (r != GS_EEXIST)
			goto out;
		/* Not a run: each change its own way. */
		if (next == i)
			next = i + 1;
		for (j = i; j < next; j++)
			if ((r = fields_of(batch, j)) != GS_OK ||
			    (r = one_change(&in, &batch->changes[j],
			    batch->lines != NULL ? &batch->lines[j] : NULL,
			    pre != NULL ? &pre[j] : NULL)) != GS_OK)
				goto out;
	}
	if ((r = tally_flush(&in)) != GS_OK ||
	    (r = st->ops->ledger_update(st, &row, in.now)) != GS_OK)
		goto out;
	if (strcmp(row.chain, "broken") == 0)
		gs_log(GS_LOG_WARNING, "device chain broken at seq %llu "
		    "(prev hash does not match the kept envelope)",
		    (unsigned long long)row.seq);

	if ((results = json_dumps(in.results, JSON_COMPACT)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "results");
		goto out;
	}
	memset(&rc, 0, sizeof(rc));
	memcpy(rc.deployment, h->deployment, sizeof(rc.deployment));
	memcpy(rc.device, h->device, sizeof(rc.device));
	memcpy(rc.batch, h->batch, sizeof(rc.batch));
	rc.seq = h->seq;
	memcpy(rc.envelope_hash, hash, sizeof(rc.envelope_hash));
	rc.applied = in.applied;
	rc.conflicted = in.conflicted;
	rc.quarantined = in.quarantined;
	rc.server_time = in.now;
	rc.status = dev->revoked ? GS_RECEIPT_QUARANTINED : GS_RECEIPT_ACCEPTED;
	if ((r = gs_receipt_sign(res->receipt, &rc, results, strlen(results),
	    pf->keys.receipt_sk)) != GS_OK)
		goto out;

	row.status = rc.status;
	row.http_status = dev->revoked ? 403 : 200;
	row.applied = in.applied;
	row.conflicted = in.conflicted;
	row.quarantined = in.quarantined;
	row.receipt = res->receipt;
	row.receipt_len = GS_RECEIPT_BYTES;
	row.results = results;
	if ((r = st->ops->batch_finish(st, &row)) != GS_OK)
		goto out;
	/* Everything the answer needs is made before COMMIT: after it,
	 * nothing may fail, or the device would be told "error" about a
	 * batch we hold. */
	if ((res->results = gs_strdup(results)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "results");
		goto out;
	}
	fault_point("kill-before-commit");
	/* The disk's sync comes after the lock (pf_ingest_batch_follows):
	 * the next batch is applied meanwhile. */
	if ((r = st->ops->commit_nosync != NULL ? st->ops->commit_nosync(st) :
	    st->ops->commit(st)) != GS_OK)
		goto out;
	in_tx = 0;
	fault_point("kill-after-commit");

	res->http_status = row.http_status;
	res->applied = in.applied;
	res->conflicted = in.conflicted;
	res->quarantined = in.quarantined;
out:
	if (in_tx)
		st->ops->rollback(st);
	gs_json_free(results);
	json_decref(in.results);
	gs_free(in.tallies);
	gs_buf_release(&in.line);
	gs_buf_release(&in.fields);
	return r;
}

/*
 * Batches in ingest (pf_platform.flight).  A device may send a batch
 * before the one it follows has been answered (?follows=SEQ, PROTOCOL.md
 * section 6): both are checked, opened and decoded at the same time on
 * two server threads, and the later one waits for the earlier one's
 * commit before its own, so the changes are applied in seq order as when
 * sent one at a time.  It waits while SEQ is listed here (its handler
 * runs on another thread, past its signature check: the wait ends when
 * that handler does; FOLLOW_WAIT_MS bounds it anyway), and for at most
 * FOLLOW_GRACE_MS for SEQ to be listed at all: sent first, SEQ may still
 * be on its way (a busy proxy, a busy core).  If SEQ's connection is
 * served by this very thread, it cannot be listed while we wait: the
 * grace runs out and the answer is "too early" (the device then takes a
 * new connection for its next batch sent ahead).
 */
#define FOLLOW_WAIT_MS 10000
#define FOLLOW_GRACE_MS 100

/* Lists (device, seq): the slot's index, or -1 when the table is full
 * (the batch is then not listed, and one that follows it is told "too
 * early", which is safe). */
static int
flight_enter(struct pf_platform *pf, const unsigned char *device,
    uint64_t seq)
{
	int i, at = -1;

	if (seq == 0)
		return -1;
	(void)pthread_mutex_lock(&pf->flight_lock);
	for (i = 0; i < PF_FLIGHT_SLOTS; i++)
		if (pf->flight[i].seq == 0) {
			memcpy(pf->flight[i].device, device,
			    sizeof(pf->flight[i].device));
			pf->flight[i].seq = seq;
			at = i;
			break;
		}
	if (at >= 0)
		(void)pthread_cond_broadcast(&pf->flight_cv);
	(void)pthread_mutex_unlock(&pf->flight_lock);
	return at;
}

static void
flight_leave(struct pf_platform *pf, int at)
{
	if (at < 0)
		return;
	(void)pthread_mutex_lock(&pf->flight_lock);
	pf->flight[at].seq = 0;
	(void)pthread_cond_broadcast(&pf->flight_cv);
	(void)pthread_mutex_unlock(&pf->flight_lock);
}

/* Is (device, seq) listed?  flight_lock held. */
static int
flight_listed(const struct pf_platform *pf, const unsigned char *device,
    uint64_t seq)
{
	int i;

	for (i = 0; i < PF_FLIGHT_SLOTS; i++)
		if (pf->flight[i].seq == seq &&
		    memcmp(pf->flight[i].device, device, 16) == 0)
			return 1;
	return 0;
}

static void
deadline(struct timespec *t, long ms)
{
	(void)clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static int
after(const struct timespec *t)
{
	struct timespec now;

	(void)clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec ||
	    (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/*
 * One step of the wait for (device, seq), not committed when the caller
 * looked: while it is listed, until it leaves (or until ends); while it
 * is not listed and the grace lasts, until something is listed or leaves
 * (or the grace ends).  0 when seq is not listed and the grace is over,
 * or until has passed: too early.  1: look at the store again.
 */
static int
flight_wait(struct pf_platform *pf, const unsigned char *device,
    uint64_t seq, const struct timespec *grace, const struct timespec *until)
{
	int more = 1;

	(void)pthread_mutex_lock(&pf->flight_lock);
	if (flight_listed(pf, device, seq)) {
		while (flight_listed(pf, device, seq) && !after(until))
			(void)pthread_cond_timedwait(&pf->flight_cv,
			    &pf->flight_lock, until);
		more = !flight_listed(pf, device, seq);
	} else if (after(grace)) {
		more = 0;
	} else {
		/* Woken when something is listed or leaves: seq may have
		 * come, or come and gone (committed). */
		(void)pthread_cond_timedwait(&pf->flight_cv, &pf->flight_lock,
		    grace);
	}
	(void)pthread_mutex_unlock(&pf->flight_lock);
	return more;
}

int
pf_ingest_batch(struct pf_platform *pf, const char *device_hex,
    const char *batch_hex, const unsigned char *env, size_t len,
    struct pf_ingest_result *res)
{
	return pf_ingest_batch_follows(pf, device_hex, batch_hex, env, len, 0,
	    res);
}

int
pf_ingest_batch_follows(struct pf_platform *pf, const char *device_hex,
    const char *batch_hex, const unsigned char *env, size_t len,
    uint64_t follows, struct pf_ingest_result *res)
{
	int r = GS_EINTERNAL;
	struct gs_envelope_header h;
	struct gs_envelope_limits lim;
	unsigned char dev_id[16], batch_id[16], hash[GS_HASHBYTES];
	unsigned char kid[GS_KIDBYTES];
	const unsigned char *bpk = NULL, *bsk = NULL;
	struct pf_device dev;
	struct gs_buf plain;
	struct gs_batch batch;
	struct gs_json_arena *arena = NULL;
	const struct gs_schema *schema = NULL;
	struct verdict *pre = NULL;
	size_t i;
	int locked = 0, decoded = 0, listed = -1;

	memset(res, 0, sizeof(*res));
	memset(&batch, 0, sizeof(batch));
	gs_buf_init_secret(&plain, pf->limits.max_plain);

	/* 1. Cheap checks: no cryptography yet.  The path ids must equal the
	 * signed header's, so a proxy or client bug cannot file a batch
	 * under another device's or batch's name. */
	if (gs_hex_decode(dev_id, sizeof(dev_id), device_hex) != GS_OK ||
	    gs_hex_decode(batch_id, sizeof(batch_id), batch_hex) != GS_OK) {
		r = GS_FAIL(GS_EINVAL, "device and batch ids in the path must "
		    "be 32 hex digits");
		goto out;
	}
	lim.max_envelope = pf->limits.max_envelope;
	lim.max_plain = pf->limits.max_plain;
	lim.max_records = pf->limits.max_records;
	if (env == NULL || len == 0) {
		r = GS_FAIL(GS_EENVELOPE, "empty body");
		goto out;
	}
	if ((r = gs_envelope_parse(&h, env, len, &lim)) != GS_OK)
		goto out;
	if (memcmp(h.device, dev_id, sizeof(dev_id)) != 0 ||
	    memcmp(h.batch, batch_id, sizeof(batch_id)) != 0) {
		r = GS_FAIL(GS_EINVAL, "the path's device or batch id differs "
		    "from the envelope's");
		goto out;
	}
	if ((r = gs_envelope_check_deployment(&h, pf->keys.deployment))
	    != GS_OK)
		goto out;
	if (follows != 0 && follows + 1 != h.seq) {
		r = GS_FAIL(GS_EINVAL, "follows=%llu: a batch follows the one "
		    "before it (seq %llu - 1)", (unsigned long long)follows,
		    (unsigned long long)h.seq);
		goto out;
	}

	/* 2. Known device: its enrolled key is what the signature is checked
	 * against.  Revoked devices pass here on purpose (revoke but
	 * drain); their batches are told apart in the transaction. */
	(void)pthread_mutex_lock(&pf->read_lock);
	r = pf->reader->ops->device_get(pf->reader, h.device, &dev);
	(void)pthread_mutex_unlock(&pf->read_lock);
	if (r == GS_ENOTFOUND) {
		r = GS_FAIL(GS_EUNKNOWNDEVICE, "device %s is not enrolled here",
		    device_hex);
		goto out;
	}
	if (r != GS_OK)
		goto out;

	/* 3. The signature, before any decryption or inflate. */
	/* The header's device kid picks the key: the current one, or an
	 * earlier one (rekey.c) for a batch sealed before the device
	 * rotated its key. */
	gs_crypto_key_id(kid, dev.pk, sizeof(dev.pk));
	if (gs_crypto_memcmp(kid, h.device_kid, sizeof(kid)) != 0) {
		r = pf_device_old_key(pf, h.device, h.device_kid, h.seq,
		    dev.pk);
		if (r == GS_ENOTFOUND)
			r = GS_FAIL(GS_EBADSIG, "envelope names another device "
			    "key");
		if (r != GS_OK)
			goto out;
	}
	if ((r = gs_envelope_verify(&h, env, len, dev.pk)) != GS_OK) {
		r = GS_FAIL(GS_EBADSIG, "envelope signature does not verify "
		    "with the device's enrolled key");
		goto out;
	}
	gs_envelope_hash(hash, env, len);
	listed = flight_enter(pf, h.device, h.seq);

	/* 4. Idempotency: a retry gets the stored answer. */
	(void)pthread_mutex_lock(&pf->read_lock);
	r = lookup(pf->reader, &h, hash, res);
	(void)pthread_mutex_unlock(&pf->read_lock);
	if (r != GS_ENOTFOUND)
		goto out;

	/* 5. Decrypt and inflate (bounded), then decode strictly. */
	/* The current batch key or an old one kept since a rotation
	 * (platform/rotate.c): the header's platform kid picks it. */
	if ((r = pf_batch_key(pf, h.platform_kid, &bpk, &bsk)) != GS_OK)
		goto out;
	if ((r = gs_envelope_open(&plain, &h, env, len, bpk, bsk)) != GS_OK)
		goto out;
	/*
	 * From here to the batch's release every jansson value (the decoded
	 * lines, the candidates and problems of the validation, the merges,
	 * the results and their text) comes from a per-thread arena
	 * (sync/json.h): a batch of a thousand lines was about 25,000
	 * mallocs and as many frees per record.  Nothing made in it
	 * outlives it: json_dumps text is freed with gs_json_free, and the
	 * answer's results are a gs_strdup copy.  Without an arena (out of
	 * memory) jansson allocates as usual.  The allocators were
	 * installed by pf_platform_open, before any server thread.
	 */
	(void)gs_json_arena_begin(&arena);
	if ((r = gs_batch_decode_spans(&batch, plain.data, plain.len,
	    pf->limits.max_records)) != GS_OK)
		goto out;
	decoded = 1;
	if ((r = gs_batch_check_envelope(&batch.hdr, h.deployment, h.device,
	    h.batch, h.seq, h.count)) != GS_OK)
		goto out;
	/* The schema the whole batch is checked with, taken once: a
	 * publication meanwhile cannot split it across two.  New records
	 * are validated now, outside the lock (without memory for the
	 * verdicts: under it, as before). */
	schema = pf_schema(pf);
	if (!dev.revoked && batch.n > 0 &&
	    (pre = gs_calloc(batch.n, sizeof(*pre))) != NULL)
		prevalidate(schema, &batch, pre);

	/* 6. One transaction. */
	(void)pthread_mutex_lock(&pf->lock);
	locked = 1;
	/* The device may have been revoked, or the batch stored by a
	 * concurrent retry, while we decrypted: look again under the lock. */
	if ((r = pf->store->ops->device_get(pf->store, h.device, &dev))
	    != GS_OK)
		goto out;
	r = lookup(pf->store, &h, hash, res);
	if (r == GS_ENOTFOUND && follows != 0 && fault_too_early())
		r = GS_FAIL(GS_ETOOEARLY, "batch %llu follows batch %llu: "
		    "too early (GRIDPLATFORM_FAULT)", (unsigned long long)h.seq,
		    (unsigned long long)follows);
	if (r == GS_ENOTFOUND && follows != 0 && dev.last_seq < follows) {
		/* Sent before the batch it follows was answered: wait for
		 * that one's commit (ordered as if sent one at a time). */
		struct timespec grace, until;

		deadline(&grace, FOLLOW_GRACE_MS);
		deadline(&until, FOLLOW_WAIT_MS);
		do {
			(void)pthread_mutex_unlock(&pf->lock);
			locked = 0;
			if (!flight_wait(pf, h.device, follows, &grace,
			    &until)) {
				r = GS_FAIL(GS_ETOOEARLY, "batch %llu follows "
				    "batch %llu, which has not been received",
				    (unsigned long long)h.seq,
				    (unsigned long long)follows);
				goto out;
			}
			(void)pthread_mutex_lock(&pf->lock);
			locked = 1;
			if ((r = pf->store->ops->device_get(pf->store,
			    h.device, &dev)) != GS_OK)
				goto out;
			r = lookup(pf->store, &h, hash, res);
		} while (r == GS_ENOTFOUND && dev.last_seq < follows);
	}
	if (r == GS_ENOTFOUND)
		r = commit_batch(pf, &dev, &h, env, len, hash, &batch, schema,
		    pre, res);
	if (r == GS_OK && !res->replayed)
		gs_log(GS_LOG_INFO, "batch %s seq %llu from device %s: %u "
		    "applied, %u conflicted, %u quarantined%s%s", batch_hex,
		    (unsigned long long)h.seq, device_hex, res->applied,
		    res->conflicted, res->quarantined,
		    dev.revoked ? " (device revoked)" : "",
		    follows != 0 ? " (sent ahead)" : "");
out:
	if (locked)
		(void)pthread_mutex_unlock(&pf->lock);
	flight_leave(pf, listed);
	/* A receipt, new or stored, goes out only once what it proves is on
	 * the disk: this batch's commit, or the one it found (made by
	 * another thread, maybe not synced yet).  Outside the lock and out
	 * of the flight table, while the next batch is applied.  If the
	 * sync fails, the device is told 500 and sends the batch again. */
	if (r == GS_OK && pf->store->ops->sync != NULL)
		r = fault_sync_fail() ? GS_FAIL(GS_EIO, "sync of the WAL: "
		    "failed (GRIDPLATFORM_FAULT)") :
		    pf->store->ops->sync(pf->store);
	if (pre != NULL) {
		for (i = 0; i < batch.n; i++)
			json_decref(pre[i].problems);
		gs_free(pre);
	}
	if (decoded)
		gs_batch_release(&batch);
	gs_json_arena_end(arena);
	/* The plaintext holds personal data: plain is secret, wiped. */
	gs_buf_release(&plain);
	if (r != GS_OK)
		pf_ingest_result_release(res);
	return r;
}
