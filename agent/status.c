/*
 * status.c - `gridagent status` and ag_status(): one JSON object put
 * together from parts.  Each part adds its own keys; the store's part
 * (store.c) knows only the tables of 0001-store.sql, and the sync side
 * adds device, outbox, sequence and chain keys from its own tables.  A new
 * part is one more row in the table below.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "attach.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "db.h"
#include "pull.h"
#include "reference.h"
#include "rootkeys.h"
#include "store.h"
#include "sync.h"
#include "core/banned.h"

typedef int (*status_part_fn)(struct ag_store *st, json_t *into);

/* A clock this far from the platform's at the last sync is worth a word
 * to the worker. */
#define CLOCK_OFF_MS (24 * 3600 * INT64_C(1000))

/*
 * "clock": whether the device's clock reads before the time floor
 * (core/util.h: then it is known to be wrong, typically reset when the
 * battery was out), and how far the platform's clock was ahead of it at
 * the last sync that reached the platform (sync.c keeps "clock_skew" in
 * meta).  "warning" says what to do when either is off.
 */
static int
clock_status(struct ag_store *st, json_t *into)
{
	int64_t now = gs_now_ms(), skew = 0, at = 0;
	char when[32], floor_s[32], at_s[32], warn[400], *v = NULL;
	long long a, b;
	int known = 0, r, n = 0;
	json_t *c;

	r = ag_store_meta_get(st, "clock_skew", &v);
	if (r == GS_OK) {
		/* Written by sync.c as "SKEW_MS AT_MS"; anything else is
		 * ignored (status never fails over it). */
		if (sscanf(v, "%lld %lld%n", &a, &b, &n) == 2 &&
		    v[n] == '\0') {
			skew = a;
			at = b;
			known = 1;
		}
		gs_free(v);
	} else if (r != GS_ENOTFOUND) {
		return r;
	}
	gs_time_format(when, sizeof(when), now);
	gs_time_format(floor_s, sizeof(floor_s), GS_TIME_FLOOR_MS);
	warn[0] = '\0';
	if (now < GS_TIME_FLOOR_MS)
		snprintf(warn, sizeof(warn), "the device clock reads %.10s, "
		    "before %.10s: it is wrong (reset when the battery was "
		    "out?). Set the date and time in the device's settings; "
		    "saves are kept and sent, their times flagged", when,
		    floor_s);
	else if (known && (skew > CLOCK_OFF_MS || skew < -CLOCK_OFF_MS))
		snprintf(warn, sizeof(warn), "at the last sync the device "
		    "clock was %lld hour(s) %s the platform's: set the date "
		    "and time in the device's settings",
		    (long long)((skew < 0 ? -skew : skew) / 3600000),
		    skew > 0 ? "behind" : "ahead of");
	if ((c = json_object()) == NULL ||
	    json_object_set_new(into, "clock", c) != 0)
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	if ((warn[0] != '\0' &&
	    json_object_set_new(c, "warning", json_string(warn)) != 0) ||
	    json_object_set_new(c, "before_floor",
	    json_boolean(now < GS_TIME_FLOOR_MS)) != 0)
		/* Not the time itself: status is the same from one call to
		 * the next while nothing changed (tests/cli/agent-cli.sh). */
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	if (known) {
		gs_time_format(at_s, sizeof(at_s), at);
		if (json_object_set_new(c, "platform_ahead_ms",
		    json_integer(skew)) != 0 ||
		    json_object_set_new(c, "measured_at", json_string(at_s))
		    != 0)
			return GS_FAIL(GS_ENOMEM, "status: out of memory");
	}
	return GS_OK;
}

/*
 * The records whose change was refused, newest first, at most this many:
 * the device must show the worker what to fix (DESIGN.md section 6), and
 * the counts under "changes" alone do not say which records they are.
 */
#define PROBLEM_RECORDS_MAX 20

/*
 * A refused change still stands when the platform has made no revision
 * of the record since the one it was based on: a quarantined change an
 * admin released, or a record someone edited since, arrives as a newer
 * rev and supersedes it.  A conflict is newer than its base by nature
 * and waits for an admin: it always stands.
 */
#define PROBLEM_STANDS \
	"(c.state = 5 OR coalesce((SELECT " AG_SQL_REV("record") \
	" FROM record WHERE record.uuid = c.uuid), 0) <= c.base_rev)"

static const char *const problem_states[] = { "rejected", "quarantined",
	"conflicted" };

/* A change's problem column as JSON: the platform's reasons (an array)
 * as they came, a text otherwise (a batch's reason, "cannot be sent").
 * NULL only when out of memory. */
static json_t *
problem_value(const char *p)
{
	json_t *v;

	if (p == NULL)
		return json_null();
	if (p[0] == '[' && (v = json_loads(p, 0, NULL)) != NULL)
		return v;
	/* A text that is not UTF-8 must not make status fail. */
	if ((v = json_string(p)) == NULL)
		v = json_string("(a reason that is not valid UTF-8)");
	return v;
}

/* One {uuid, type, state, problems} from the row (uuid, type, state,
 * problem) of s.  NULL when out of memory. */
static json_t *
problem_record(struct gs_stmt *s, int with_id)
{
	int64_t state = gs_stmt_int64(s, 2);
	const char *name = state >= 3 && state <= 5 ?
	    problem_states[state - 3] : "?";
	json_t *o = json_object(), *v = problem_value(gs_stmt_text(s, 3));

	if (o == NULL || v == NULL ||
	    (with_id && (json_object_set_new(o, "uuid",
	    json_string(gs_stmt_text(s, 0))) != 0 ||
	    json_object_set_new(o, "type", json_string(gs_stmt_text(s, 1)))
	    != 0)) ||
	    json_object_set_new(o, "state", json_string(name)) != 0 ||
	    json_object_set(o, "problems", v) != 0) {
		json_decref(o);
		o = NULL;
	}
	json_decref(v); /* o holds its own reference */
	return o;
}

static int
problem_records(struct ag_store *st, json_t *into)
{
	struct gs_stmt *s = NULL;
	json_t *arr = NULL, *o;
	int r;

	if ((r = gs_stmt_prepare(ag_store_db(st), "SELECT c.uuid, c.type, "
	    "c.state, c.problem FROM change AS c WHERE c.state IN (3, 4, 5) "
	    "AND " PROBLEM_STANDS " ORDER BY c.updated_at DESC, "
	    "c.change_id DESC LIMIT ?1", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_int64(s, 1, PROBLEM_RECORDS_MAX)) != GS_OK)
		goto out;
	if ((arr = json_array()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "status: out of memory");
		goto out;
	}
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if ((o = problem_record(s, 1)) == NULL ||
		    json_array_append_new(arr, o) != 0) {
			r = GS_FAIL(GS_ENOMEM, "status: out of memory");
			goto out;
		}
	}
	if (r != GS_DONE)
		goto out;
	r = json_object_set_new(into, "problem_records", arr) == 0 ? GS_OK :
	    GS_FAIL(GS_ENOMEM, "status: out of memory");
	arr = NULL;
out:
	json_decref(arr);
	gs_stmt_finalize(s);
	return r;
}

int
ag_record_problem(struct ag_store *st, const char *uuid, json_t **out)
{
	struct gs_stmt *s = NULL;
	int r;

	*out = NULL;
	/* The latest change decides: a refused one that a later edit
	 * superseded is history, not the record's state. */
	if ((r = gs_stmt_prepare(ag_store_db(st), "SELECT c.uuid, c.type, "
	    "c.state, c.problem, " PROBLEM_STANDS " FROM change AS c "
	    "WHERE c.uuid = ?1 ORDER BY c.updated_at DESC, c.change_id DESC "
	    "LIMIT 1", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, uuid)) != GS_OK)
		goto out;
	r = gs_stmt_step(s);
	if (r == GS_ROW && gs_stmt_int64(s, 2) >= 3 && gs_stmt_int64(s, 4) &&
	    (*out = problem_record(s, 0)) == NULL)
		r = GS_FAIL(GS_ENOMEM, "show: out of memory");
	else if (r == GS_ROW || r == GS_DONE)
		r = GS_OK;
out:
	gs_stmt_finalize(s);
	return r;
}

static const status_part_fn parts[] = {
	ag_store_status,
	ag_sync_status, /* sync.c: device, outbox, last seq, chain head */
	ag_attach_status, /* attach.c: attachments pending/partial/done */
	ag_pull_status, /* pull.c: tasks, review verdicts, pull cursor */
	ag_reference_status, /* reference.c: form versions held */
	ag_rootkeys_status, /* rootkeys.c: the key bundle serial held */
	clock_status, /* here: the device clock against the floor */
	problem_records, /* here: the records refused, with the reasons */
};

int
ag_status_build(struct ag_store *st, json_t **out)
{
	json_t *o = NULL;
	size_t i;
	int r;

	*out = NULL;
	if ((o = json_object()) == NULL)
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if ((r = parts[i](st, o)) != GS_OK) {
			json_decref(o);
			return r;
		}
	}
	*out = o;
	return GS_OK;
}

int
ag_status(struct ag_store *st, char **json_out)
{
	json_t *o = NULL;
	char *s, *copy;
	int r;

	*json_out = NULL;
	if ((r = ag_status_build(st, &o)) != GS_OK)
		return r;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	/* Hand out our allocator's memory: the header says ag_free. */
	copy = gs_strdup(s);
	free(s);
	if (copy == NULL)
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	*json_out = copy;
	return GS_OK;
}
