/*
 * agent-store.c - the agent's local store through its public API:
 * init/open, collect, edit, delete, get, list, status, change coalescing
 * and base_rev, tombstones, invalid input changing nothing, bulk import
 * all-or-nothing, and the audit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "db.h"
#include "gridagent.h"
#include "store.h"

static char home[64];
static struct ag_store *st;

/* Problems seen by the callback. */
static struct {
	size_t n;
	size_t lines[64];
	char fields[64][64];
	char rules[64][32];
} seen;

static void
on_problem(void *ctx, size_t line, const char *field, const char *rule,
    const char *message)
{
	(void)ctx;
	(void)message;
	if (seen.n < 64) {
		seen.lines[seen.n] = line;
		snprintf(seen.fields[seen.n], 64, "%s", field);
		snprintf(seen.rules[seen.n], 32, "%s", rule);
	}
	seen.n++;
}

/* A valid GB 11643 number for region 110105, born 1980-01-01, seq. */
static void
idcard(char out[19], int seq)
{
	static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10,
		5, 8, 4, 2 };
	static const char map[] = "10X98765432";
	int i, sum = 0;

	snprintf(out, 19, "11010519800101%03d", seq % 1000);
	for (i = 0; i < 17; i++)
		sum += (out[i] - '0') * w[i];
	out[17] = map[sum % 11];
	out[18] = '\0';
}

/* A person object text with a valid id number. */
static void
person(char *buf, size_t n, const char *name, int seq)
{
	char id[19];

	idcard(id, seq);
	snprintf(buf, n, "{\"name\":\"%s\",\"pop_type\":\"REGISTERED\","
	    "\"id_number\":\"%s\",\"address\":\"大鹏街道%d号\"}", name, id,
	    seq);
}

static int64_t
q_int(const char *sql, const char *arg)
{
	struct gs_stmt *s = NULL;
	int64_t v = -1;

	assert_int_equal(gs_stmt_prepare(ag_store_db(st), sql, &s), GS_OK);
	if (arg != NULL)
		assert_int_equal(gs_stmt_bind_text(s, 1, arg), GS_OK);
	assert_int_equal(gs_stmt_one_int64(s, -1, &v), GS_OK);
	gs_stmt_finalize(s);
	return v;
}

/* The one text column of the one row of a query (malloc'd), or NULL. */
static char *
q_text(const char *sql, const char *arg)
{
	struct gs_stmt *s = NULL;
	char *t = NULL;

	assert_int_equal(gs_stmt_prepare(ag_store_db(st), sql, &s), GS_OK);
	if (arg != NULL)
		assert_int_equal(gs_stmt_bind_text(s, 1, arg), GS_OK);
	if (gs_stmt_step(s) == GS_ROW && gs_stmt_text(s, 0) != NULL)
		t = strdup(gs_stmt_text(s, 0));
	gs_stmt_finalize(s);
	return t;
}

static void
exec(const char *sql)
{
	assert_int_equal(gs_db_exec(ag_store_db(st), sql), GS_OK);
}

/* Takes a store back from version 11 to 10: what 0011-sealed-creation
 * added goes (it holds nothing the tests calling this need). */
static void
undo_0011(void)
{
	exec("DROP TABLE sealed_creation");
	exec("ALTER TABLE outbox DROP COLUMN first_creation");
	exec("ALTER TABLE outbox DROP COLUMN last_creation");
	exec("PRAGMA user_version = 10");
}

/* A JSON object from a text column; fails the test if it is not one. */
static json_t *
q_json(const char *sql, const char *arg)
{
	char *t = q_text(sql, arg);
	json_t *o;

	assert_non_null(t);
	o = json_loads(t, 0, NULL);
	free(t);
	assert_non_null(o);
	return o;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(home, sizeof(home), "/tmp/gs-agent-store.XXXXXX");
	if (mkdtemp(home) == NULL)
		return -1;
	/* A home below the temp dir, so init also makes the directory. */
	strncat(home, "/h", sizeof(home) - strlen(home) - 1);
	if (ag_store_init(home, "440307001001001", "w-007", &st) != GS_OK)
		return -1;
	ag_store_on_problem(st, on_problem, NULL);
	memset(&seen, 0, sizeof(seen));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	ag_store_close(st);
	st = NULL;
	home[strlen(home) - 2] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", home);
	return system(cmd) == 0 ? 0 : -1;
}

static size_t
count_records(void)
{
	return (size_t)q_int("SELECT count(*) FROM record", NULL);
}

static size_t
count_changes(void)
{
	/* A new record's creation waits in pending_creation until it is
	 * batched or edited (schema/agent/0008): a change all the same. */
	return (size_t)q_int("SELECT (SELECT count(*) FROM change) + "
	    "(SELECT count(*) FROM pending_creation)", NULL);
}

/* What the outbox does first when it batches: every pending creation
 * becomes a change row; then sql plays the rest of batching. */
static void
exec_chg(const char *sql)
{
	assert_int_equal(ag_store_pending_flush(ag_store_db(st)), GS_OK);
	exec(sql);
}

static void
test_init_open(void **state)
{
	struct ag_store *s2 = NULL;
	struct stat sb;
	char path[128], other[128];

	(void)state;
	assert_int_equal(stat(home, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/agent.db", home);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	assert_string_equal(ag_store_grid(st), "440307001001001");
	assert_string_equal(ag_store_worker(st), "w-007");

	/* Twice is refused and changes nothing. */
	assert_int_equal(ag_store_init(home, "X", "Y", &s2), GS_EEXIST);
	assert_null(s2);
	assert_int_equal(ag_store_open(home, &s2), GS_OK);
	assert_string_equal(ag_store_grid(s2), "440307001001001");
	ag_store_close(s2);

	/* A home without a store: "run init first", and nothing is made. */
	snprintf(other, sizeof(other), "%s-none", home);
	s2 = NULL;
	assert_int_equal(ag_store_open(other, &s2), GS_EPERM);
	assert_non_null(strstr(ag_errmsg(GS_EPERM), "gridagent init"));
	assert_int_not_equal(stat(other, &sb), 0);
	ag_store_close(NULL);
}

static void
test_collect_get(void **state)
{
	char uuid[AG_UUID_LEN + 1], rec[512];
	char *json = NULL, *t;
	json_t *o, *c;

	(void)state;
	person(rec, sizeof(rec), "张三", 1);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	assert_int_equal(strlen(uuid), 36);
	assert_int_equal(uuid[14], '7');

	assert_int_equal(ag_get(st, uuid, &json), GS_OK);
	o = json_loads(json, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "uuid")),
	    uuid);
	assert_string_equal(json_string_value(json_object_get(o, "type")),
	    "person");
	assert_string_equal(json_string_value(json_object_get(o, "grid")),
	    "440307001001001");
	assert_string_equal(json_string_value(json_object_get(o, "author")),
	    "w-007");
	assert_int_equal(json_integer_value(json_object_get(o, "rev")), 0);
	assert_true(json_is_false(json_object_get(o, "deleted")));
	assert_true(json_is_true(json_object_get(o, "pending")));
	assert_string_equal(json_string_value(json_object_get(
	    json_object_get(o, "fields"), "name")), "张三");
	json_decref(o);
	ag_free(json);

	/* The creation change waits in pending_creation: no change row
	 * yet (schema/agent/0008). */
	assert_int_equal(count_changes(), 1);
	assert_int_equal(q_int("SELECT count(*) FROM change", NULL), 0);
	assert_int_equal(q_int("SELECT count(*) FROM pending_creation WHERE "
	    "uuid=?1", uuid), 1);
	/* Batching writes it: base_rev 0, unsent, no fields of its own (it
	 * sends the record's: 0006-lean-change.sql), and the id made at the
	 * save. */
	t = q_text("SELECT change_id FROM pending_creation WHERE uuid=?1",
	    uuid);
	assert_int_equal(ag_store_pending_flush(ag_store_db(st)), GS_OK);
	assert_int_equal(count_changes(), 1);
	assert_int_equal(q_int("SELECT count(*) FROM pending_creation", NULL),
	    0);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE "
	    "change_id=?1", t), 1);
	free(t);
	assert_int_equal(q_int("SELECT base_rev FROM change WHERE uuid=?1",
	    uuid), 0);
	assert_int_equal(q_int("SELECT state FROM change WHERE uuid=?1",
	    uuid), 0);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE uuid=?1 "
	    "AND op = 'upsert' AND fields IS NULL", uuid), 1);
	c = q_json("SELECT fields FROM record WHERE uuid=?1", uuid);
	assert_int_equal(json_object_size(c), 4);
	json_decref(c);
	assert_int_equal(q_int("SELECT count(*) FROM audit WHERE "
			       "action='create' AND uuid=?1", uuid), 1);

	/* Not found, and malformed uuids. */
	json = NULL;
	assert_int_equal(ag_get(st, "01890000-0000-7000-8000-000000000000",
	    &json), GS_ENOTFOUND);
	assert_null(json);
	assert_int_equal(ag_get(st, "nope", &json), GS_EINVAL);
}

static void
test_collect_normalizes(void **state)
{
	char uuid[AG_UUID_LEN + 1];
	/* 11010519491231002X with a lower-case x. */
	const char *rec = "{\"name\":\"李四\",\"pop_type\":\"REGISTERED\","
			  "\"id_number\":\"11010519491231002x\","
			  "\"address\":\"a\",\"phone\":null}";
	json_t *f;

	(void)state;
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	f = q_json("SELECT fields FROM record WHERE uuid=?1", uuid);
	assert_string_equal(json_string_value(json_object_get(f,
	    "id_number")), "11010519491231002X");
	/* null = absent: not stored. */
	assert_null(json_object_get(f, "phone"));
	json_decref(f);
}

static void
test_invalid_changes_nothing(void **state)
{
	char uuid[AG_UUID_LEN + 1];
	const char *bad = "{\"name\":\"王五\",\"pop_type\":\"REGISTERED\","
			  "\"id_number\":\"110105194912310025\","
			  "\"address\":\"a\"}";
	const char *notjson = "{\"name\":";
	const char *dup = "{\"name\":\"a\",\"name\":\"b\"}";

	(void)state;
	assert_int_equal(ag_collect(st, "person", bad, strlen(bad), uuid),
	    GS_EVALIDATION);
	assert_string_equal(uuid, "");
	assert_true(seen.n >= 1);
	assert_string_equal(seen.fields[0], "id_number");
	assert_string_equal(seen.rules[0], "check_digit");
	assert_int_equal(seen.lines[0], 0);
	assert_non_null(strstr(ag_errmsg(GS_EVALIDATION), "id_number"));

	assert_int_equal(ag_collect(st, "person", notjson, strlen(notjson),
	    uuid), GS_EPARSE);
	assert_int_equal(ag_collect(st, "person", dup, strlen(dup), uuid),
	    GS_EPARSE);
	assert_int_equal(ag_collect(st, "person", "[1]", 3, uuid), GS_EPARSE);
	assert_int_equal(ag_collect(st, "spaceship", "{}", 2, uuid),
	    GS_EINVAL);
	assert_non_null(strstr(ag_errmsg(GS_EINVAL), "person"));
	assert_int_equal(count_records(), 0);
	assert_int_equal(count_changes(), 0);
	assert_int_equal(q_int("SELECT count(*) FROM audit", NULL), 0);
}

static void
test_collect_args(void **state)
{
	char uuid[AG_UUID_LEN + 1], id[19], arg[64];
	char *args[4];

	(void)state;
	idcard(id, 7);
	snprintf(arg, sizeof(arg), "id_number=%s", id);
	args[0] = (char *)"name=赵六";
	args[1] = (char *)"pop_type=REGISTERED";
	args[2] = arg;
	args[3] = (char *)"address=x";
	assert_int_equal(ag_collect_args(st, "person", args, 4, uuid), GS_OK);
	assert_int_equal(count_records(), 1);
	args[3] = (char *)"nosuchfield=1";
	assert_int_equal(ag_collect_args(st, "person", args, 4, uuid),
	    GS_EVALIDATION);
	assert_int_equal(count_records(), 1);
}

static void
test_edit_coalesces(void **state)
{
	char uuid[AG_UUID_LEN + 1], rec[512];
	const char *e1 = "{\"phone\":\"13800138000\",\"note\":\"a\"}";
	const char *e2 = "{\"note\":\"b\"}";
	json_t *c, *f;

	(void)state;
	person(rec, sizeof(rec), "张三", 2);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	/* Both edits fold into the unsent creation change, which stays a
	 * creation: it sends the record as it is when batched. */
	assert_int_equal(ag_edit(st, uuid, e1, strlen(e1)), GS_OK);
	assert_int_equal(ag_edit(st, uuid, e2, strlen(e2)), GS_OK);
	assert_int_equal(count_changes(), 1);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE uuid=?1 "
	    "AND op = 'upsert' AND base_rev = 0 AND fields IS NULL", uuid), 1);
	c = q_json("SELECT fields FROM record WHERE uuid=?1", uuid);
	assert_string_equal(json_string_value(json_object_get(c, "note")),
	    "b");
	assert_string_equal(json_string_value(json_object_get(c, "phone")),
	    "13800138000");
	assert_string_equal(json_string_value(json_object_get(c, "name")),
	    "张三");
	json_decref(c);
	f = q_json("SELECT fields FROM record WHERE uuid=?1", uuid);
	assert_string_equal(json_string_value(json_object_get(f, "note")),
	    "b");
	json_decref(f);
	assert_int_equal(q_int("SELECT count(*) FROM audit WHERE "
			       "action='edit' AND uuid=?1", uuid), 2);
}

static void
test_edit_base_rev(void **state)
{
	char uuid[AG_UUID_LEN + 1], rec[512];
	const char *e1 = "{\"note\":\"one\"}";
	const char *e2 = "{\"note\":\"two\"}";
	const char *e3 = "{\"phone\":\"13800138000\"}";
	json_t *c;

	(void)state;
	person(rec, sizeof(rec), "张三", 3);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	/* The creation is batched (in flight): untouchable. */
	exec_chg("UPDATE change SET state = 1, batch_seq = 1");
	assert_int_equal(ag_edit(st, uuid, e1, strlen(e1)), GS_OK);
	assert_int_equal(count_changes(), 2);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE state=1 AND "
			       "fields LIKE '%one%'", NULL), 0);
	assert_int_equal(q_int("SELECT base_rev FROM change WHERE state=0",
	    NULL), 0);

	/* The platform acked: rev 1.  The unsent edit keeps its base_rev;
	 * a further edit folds into it. */
	exec_chg("UPDATE change SET state = 2 WHERE state = 1");
	exec("UPDATE record SET rev = 1");
	assert_int_equal(ag_edit(st, uuid, e2, strlen(e2)), GS_OK);
	assert_int_equal(count_changes(), 2);
	c = q_json("SELECT fields FROM change WHERE state=0", NULL);
	assert_int_equal(json_object_size(c), 1);
	assert_string_equal(json_string_value(json_object_get(c, "note")),
	    "two");
	json_decref(c);

	/* All delivered and rev 5: the next edit is based on rev 5. */
	exec_chg("UPDATE change SET state = 2");
	exec("UPDATE record SET rev = 5");
	assert_int_equal(ag_edit(st, uuid, e3, strlen(e3)), GS_OK);
	assert_int_equal(count_changes(), 3);
	assert_int_equal(q_int("SELECT base_rev FROM change WHERE state=0",
	    NULL), 5);
	c = q_json("SELECT fields FROM change WHERE state=0", NULL);
	assert_int_equal(json_object_size(c), 1); /* only what it sets */
	json_decref(c);
}

static void
test_edit_clear_and_invalid(void **state)
{
	char uuid[AG_UUID_LEN + 1], rec[512];
	const char *set = "{\"phone\":\"13800138000\"}";
	const char *clear = "{\"phone\":null}";
	const char *badclear = "{\"name\":null}";
	const char *badid = "{\"id_number\":\"110105194912310025\"}";
	char *before, *after;
	json_t *c, *f;

	(void)state;
	person(rec, sizeof(rec), "张三", 4);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	exec_chg("UPDATE change SET state = 2");
	exec("UPDATE record SET rev = 1");
	assert_int_equal(ag_edit(st, uuid, set, strlen(set)), GS_OK);
	assert_int_equal(ag_edit(st, uuid, clear, strlen(clear)), GS_OK);
	f = q_json("SELECT fields FROM record WHERE uuid=?1", uuid);
	assert_null(json_object_get(f, "phone"));
	json_decref(f);
	c = q_json("SELECT fields FROM change WHERE state=0", NULL);
	assert_true(json_is_null(json_object_get(c, "phone")));
	json_decref(c);

	/* The merged record must be valid: clearing a required field, or a
	 * bad id number, changes nothing at all. */
	before = q_text("SELECT group_concat(fields || updated_at) FROM "
			"(SELECT fields, updated_at FROM record UNION ALL "
			"SELECT coalesce(fields,''), updated_at FROM change)",
	    NULL);
	assert_int_equal(ag_edit(st, uuid, badclear, strlen(badclear)),
	    GS_EVALIDATION);
	assert_string_equal(seen.fields[0], "name");
	assert_string_equal(seen.rules[0], "required");
	assert_int_equal(ag_edit(st, uuid, badid, strlen(badid)),
	    GS_EVALIDATION);
	assert_int_equal(ag_edit(st, uuid, "{}", 2), GS_EINVAL);
	assert_int_equal(ag_edit(st, uuid, "x", 1), GS_EPARSE);
	assert_int_equal(ag_edit(st, "01890000-0000-7000-8000-000000000000",
	    set, strlen(set)), GS_ENOTFOUND);
	after = q_text("SELECT group_concat(fields || updated_at) FROM "
		       "(SELECT fields, updated_at FROM record UNION ALL "
		       "SELECT coalesce(fields,''), updated_at FROM change)",
	    NULL);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void
test_delete(void **state)
{
	char a[AG_UUID_LEN + 1], b[AG_UUID_LEN + 1], rec[512];
	const char *e = "{\"note\":\"x\"}";
	char *json = NULL, *reason;

	(void)state;
	person(rec, sizeof(rec), "甲", 5);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), a),
	    GS_OK);
	person(rec, sizeof(rec), "乙", 6);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), b),
	    GS_OK);

	/* a: delivered at rev 3, then an unsent edit, then a delete: ONE
	 * delete change, based on rev 3, without fields. */
	exec_chg("UPDATE change SET state = 2");
	exec("UPDATE record SET rev = 3");
	assert_int_equal(ag_edit(st, a, e, strlen(e)), GS_OK);
	assert_int_equal(ag_delete(st, a, "moved away"), GS_OK);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE uuid=?1 AND "
			       "state=0", a), 1);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE uuid=?1 AND "
			       "state=0 AND op='delete' AND fields IS NULL "
			       "AND base_rev=3", a), 1);
	reason = q_text("SELECT reason FROM change WHERE uuid=?1 AND state=0",
	    a);
	assert_string_equal(reason, "moved away");
	free(reason);
	assert_int_equal(q_int("SELECT deleted FROM record WHERE uuid=?1", a),
	    1);

	/* A tombstone: get still shows it; edit and delete are refused. */
	assert_int_equal(ag_get(st, a, &json), GS_OK);
	assert_non_null(strstr(json, "\"deleted\":true"));
	ag_free(json);
	assert_int_equal(ag_edit(st, a, e, strlen(e)), GS_ENOTFOUND);
	assert_non_null(strstr(ag_errmsg(GS_ENOTFOUND), "deleted"));
	assert_int_equal(ag_delete(st, a, NULL), GS_ENOTFOUND);

	/* b: its change is in flight: the delete is a new change. */
	exec_chg("UPDATE change SET state = 1 WHERE uuid != '' AND state = 2");
	assert_int_equal(ag_delete(st, b, NULL), GS_OK);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE uuid=?1",
	    b), 2);
	assert_int_equal(q_int("SELECT base_rev FROM change WHERE uuid=?1 AND "
			       "state=0", b), 3);
	assert_int_equal(q_int("SELECT count(*) FROM audit WHERE "
			       "action='delete'", NULL), 2);
	assert_int_equal(ag_delete(st, "bad", NULL), GS_EINVAL);
}

struct lctx {
	size_t n;
	char last[AG_UUID_LEN + 1];
	int stop_after;
};

static int
count_cb(void *ctx, const struct ag_record *r)
{
	struct lctx *c = ctx;
	json_t *o = json_loads(r->json, 0, NULL);

	/* Every line is one JSON object with the contract's keys. */
	assert_non_null(o);
	assert_non_null(json_object_get(o, "uuid"));
	assert_non_null(json_object_get(o, "fields"));
	assert_non_null(json_object_get(o, "rev"));
	assert_non_null(json_object_get(o, "deleted"));
	assert_non_null(json_object_get(o, "grid"));
	json_decref(o);
	if (c->n > 0)
		assert_true(strcmp(c->last, r->uuid) < 0); /* oldest first */
	snprintf(c->last, sizeof(c->last), "%s", r->uuid);
	c->n++;
	return c->stop_after > 0 && (int)c->n >= c->stop_after;
}

static void
test_list_status(void **state)
{
	char u[3][AG_UUID_LEN + 1], rec[512];
	const char *house = "{\"address\":\"大鹏街道1号\",\"is_rental\":false}";
	struct lctx c = { 0 };
	char *s = NULL;
	json_t *o;
	int i;

	(void)state;
	for (i = 0; i < 2; i++) {
		person(rec, sizeof(rec), "某", 10 + i);
		assert_int_equal(ag_collect(st, "person", rec, strlen(rec),
		    u[i]), GS_OK);
	}
	if (ag_collect(st, "house", house, strlen(house), u[2]) != GS_OK)
		fail_msg("house: %s", ag_errmsg(GS_EVALIDATION));
	assert_int_equal(ag_delete(st, u[0], NULL), GS_OK);

	assert_int_equal(ag_list(st, NULL, 0, count_cb, &c), GS_OK);
	assert_int_equal(c.n, 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ag_list(st, NULL, AG_LIST_DELETED, count_cb, &c),
	    GS_OK);
	assert_int_equal(c.n, 3);
	memset(&c, 0, sizeof(c));
	assert_int_equal(ag_list(st, "person", 0, count_cb, &c), GS_OK);
	assert_int_equal(c.n, 1);
	memset(&c, 0, sizeof(c));
	c.stop_after = 1;
	assert_int_equal(ag_list(st, NULL, AG_LIST_DELETED, count_cb, &c),
	    GS_OK);
	assert_int_equal(c.n, 1);

	assert_int_equal(ag_status(st, &s), GS_OK);
	o = json_loads(s, 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "worker")),
	    "w-007");
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(o, "records"), "person")), 1);
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(o, "records"), "house")), 1);
	assert_int_equal(json_integer_value(json_object_get(o, "deleted")),
	    1);
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(o, "changes"), "unsent")), 3);
	assert_int_equal(json_integer_value(json_object_get(
	    json_object_get(o, "changes"), "conflicted")), 0);
	json_decref(o);
	ag_free(s);
}

static void
on_uuid(void *ctx, const char *uuid)
{
	struct lctx *c = ctx;

	if (c->n > 0)
		assert_true(strcmp(c->last, uuid) < 0);
	snprintf(c->last, sizeof(c->last), "%s", uuid);
	c->n++;
}

static void
test_import(void **state)
{
	struct gs_buf b;
	char rec[512], *detail;
	struct lctx c = { 0 };
	size_t n = 0;
	int i;

	(void)state;
	gs_buf_init(&b, 1 << 20);
	/* Lines 2 and 4 are bad (check digit; not JSON), line 5 blank. */
	for (i = 1; i <= 6; i++) {
		if (i == 2)
			snprintf(rec, sizeof(rec), "{\"name\":\"x\","
			    "\"pop_type\":\"REGISTERED\",\"id_number\":"
			    "\"110105194912310025\",\"address\":\"a\"}");
		else if (i == 4)
			snprintf(rec, sizeof(rec), "{\"name\":");
		else if (i == 5)
			snprintf(rec, sizeof(rec), "  ");
		else
			person(rec, sizeof(rec), "某", 100 + i);
		assert_int_equal(gs_buf_printf(&b, "%s\n", rec), GS_OK);
	}
	assert_int_equal(ag_import_ndjson(st, "person", b.data, b.len, on_uuid,
	    &c, &n), GS_EVALIDATION);
	assert_int_equal(n, 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(ag_problem_count(st), 2);
	assert_int_equal(seen.lines[0], 2);
	assert_string_equal(seen.fields[0], "id_number");
	assert_int_equal(seen.lines[1], 4);
	assert_string_equal(seen.rules[1], "parse");
	assert_non_null(strstr(ag_errmsg(GS_EVALIDATION), "nothing"));
	assert_int_equal(count_records(), 0);
	assert_int_equal(count_changes(), 0);
	assert_int_equal(q_int("SELECT count(*) FROM audit", NULL), 0);

	/* Only unparsable lines: GS_EPARSE. */
	assert_int_equal(ag_import_ndjson(st, "person", "x\n{\n", 4, NULL,
	    NULL, &n), GS_EPARSE);
	/* Nothing at all. */
	assert_int_equal(ag_import_ndjson(st, "person", "\n\n", 2, NULL,
	    NULL, &n), GS_EPARSE);
	assert_int_equal(ag_import_ndjson(st, "nope", "{}", 2, NULL, NULL,
	    &n), GS_EINVAL);

	/* All good (no final newline on the last line). */
	gs_buf_reset(&b);
	for (i = 0; i < 500; i++) {
		person(rec, sizeof(rec), "某", i);
		assert_int_equal(gs_buf_printf(&b, "%s%s", i ? "\n" : "", rec),
		    GS_OK);
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(ag_import_ndjson(st, "person", b.data, b.len, on_uuid,
	    &c, &n), GS_OK);
	assert_int_equal(n, 500);
	assert_int_equal(c.n, 500);
	assert_int_equal(count_records(), 500);
	assert_int_equal(count_changes(), 500);
	/* One audit row for the whole import, naming count and last uuid. */
	assert_int_equal(q_int("SELECT count(*) FROM audit", NULL), 1);
	detail = q_text("SELECT detail FROM audit WHERE action='import'",
	    NULL);
	assert_non_null(detail);
	assert_non_null(strstr(detail, "\"count\":500"));
	assert_non_null(strstr(detail, c.last));
	free(detail);
	gs_buf_release(&b);
}

/*
 * The bulk import inserts its records and their pending creations many
 * rows to a statement (agent/store.c, IMPORT_ROWS), and a group left
 * short (a blank line, the end of a chunk or of the input) row by row:
 * every row has the columns a single save gives it, and its own change
 * id.
 */
static void
test_import_rows(void **state)
{
	struct gs_buf b;
	char rec[512], uuid[AG_UUID_LEN + 1];
	struct lctx c = { 0 };
	size_t n = 0;
	int i;

	(void)state;
	gs_buf_init(&b, 4 << 20);
	for (i = 1; i <= 700; i++) {
		person(rec, sizeof(rec), "某", 2000 + i);
		assert_int_equal(gs_buf_printf(&b, "%s\n%s", rec,
		    i == 100 ? "\n" : ""), GS_OK);
	}
	assert_int_equal(ag_import_ndjson(st, "person", b.data, b.len, on_uuid,
	    &c, &n), GS_OK);
	assert_int_equal(n, 700);
	person(rec, sizeof(rec), "某", 9999);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	/* Every imported row as the single save's but for its uuid, fields
	 * and times. */
	assert_int_equal(q_int("SELECT count(*) FROM record AS r JOIN "
	    "pending_creation AS p ON p.uuid = r.uuid JOIN record AS s "
	    "ON s.uuid = ?1 WHERE r.uuid <> s.uuid AND r.type = s.type AND "
	    "r.form_version = s.form_version AND r.grid = s.grid AND "
	    "r.rev = 0 AND r.deleted = 0 AND r.author = s.author AND "
	    "r.created_at = r.updated_at AND r.purged_at IS NULL AND "
	    "json_extract(r.fields, '$.name') = '某' AND "
	    "p.change_id <> r.uuid", uuid), 700);
	assert_int_equal(q_int("SELECT count(DISTINCT change_id) FROM "
	    "pending_creation", NULL), 701);
	assert_int_equal(q_int("SELECT count(DISTINCT created_at) FROM record "
	    "WHERE uuid <> ?1", uuid), 1);
	assert_int_equal(q_int("SELECT count(*) FROM record WHERE uuid <> ?1 "
	    "AND json_extract(fields, '$.address') = '大鹏街道' || "
	    "(2000 + (SELECT count(*) FROM record AS o WHERE o.uuid <= "
	    "record.uuid)) || '号'", uuid), 700);
	/* Null members are absent, as in a single save: the same text. */
	{
		static const char nulls[] = "{\"name\":\"某\",\"phone\":null,"
		    "\"pop_type\":\"FOREIGN\",\"nationality\":\"USA\","
		    "\"education\":null,\"passport_no\":\"AB12345\","
		    "\"address\":\"x\",\"marital\":null}\n";
		char *a, *s2;

		memset(&c, 0, sizeof(c));
		assert_int_equal(ag_import_ndjson(st, "person", nulls,
		    strlen(nulls), on_uuid, &c, &n), GS_OK);
		assert_int_equal(n, 1);
		assert_int_equal(ag_collect(st, "person", nulls,
		    strlen(nulls) - 1, uuid), GS_OK);
		a = q_text("SELECT fields FROM record WHERE uuid = ?1",
		    c.last);
		s2 = q_text("SELECT fields FROM record WHERE uuid = ?1", uuid);
		assert_non_null(a);
		assert_non_null(s2);
		assert_string_equal(a, s2);
		assert_null(strstr(a, "null"));
		free(a);
		free(s2);
	}
	gs_buf_release(&b);
}

/* Imports count generated persons (seq from, from + 1, ...) in one bulk
 * import, which must save them all. */
static void
import_people(int from, int count)
{
	struct gs_buf b;
	char rec[512];
	size_t n = 0;
	int i;

	gs_buf_init(&b, 4 << 20);
	for (i = 0; i < count; i++) {
		person(rec, sizeof(rec), "某", from + i);
		assert_int_equal(gs_buf_printf(&b, "%s\n", rec), GS_OK);
	}
	assert_int_equal(ag_import_ndjson(st, "person", b.data, b.len, NULL,
	    NULL, &n), GS_OK);
	assert_int_equal(n, (size_t)count);
	gs_buf_release(&b);
}

/* The size of a file in the home (-1: not there). */
static long long
home_file_size(const char *name)
{
	char p[128];
	struct stat sb;

	snprintf(p, sizeof(p), "%s/%s", home, name);
	return stat(p, &sb) == 0 ? (long long)sb.st_size : -1;
}

/*
 * A large import (two chunks of lines or more) is written once, through
 * a rollback journal (sync/db.c gs_db_journal_direct): right after it,
 * with the store still open, its WAL holds nothing and no journal is
 * left, and the store is back in WAL mode with synchronous FULL.  With
 * another connection on the store it is saved the usual way, through the
 * WAL, and both see it.
 */
static void
test_import_direct(void **state)
{
	struct ag_store *other = NULL;
	char *mode;

	(void)state;
	import_people(3000, 600);
	assert_true(home_file_size("agent.db-wal") <= 0);
	assert_int_equal(home_file_size("agent.db-journal"), -1);
	mode = q_text("PRAGMA journal_mode", NULL);
	assert_string_equal(mode, "wal");
	free(mode);
	assert_int_equal(q_int("PRAGMA synchronous", NULL), 2);
	assert_int_equal(count_records(), 600);
	assert_int_equal(count_changes(), 600);

	/* Another connection open: through the WAL, seen by both. */
	assert_int_equal(ag_store_open(home, &other), GS_OK);
	import_people(4000, 600);
	assert_true(home_file_size("agent.db-wal") > 100 * 1024);
	assert_int_equal(count_records(), 1200);
	{
		struct gs_stmt *q = NULL;
		int64_t v = -1;

		assert_int_equal(gs_stmt_prepare(ag_store_db(other),
		    "SELECT count(*) FROM record", &q), GS_OK);
		assert_int_equal(gs_stmt_one_int64(q, -1, &v), GS_OK);
		gs_stmt_finalize(q);
		assert_int_equal(v, 1200);
	}
	ag_store_close(other);
}

/* The uuids an import saved, in input order (ag_uuid_fn). */
static void
take_uuids(void *ctx, const char *uuid)
{
	char (*u)[AG_UUID_LEN + 1] = ctx;
	int i = 0;

	while (u[i][0] != '\0')
		i++;
	snprintf(u[i], AG_UUID_LEN + 1, "%s", uuid);
}

/*
 * An unprotected store stores a line the bulk import reads without
 * jansson values (agent/store.c put_stored_spans) as the same text as the
 * full path (ag_import_spans_set 0): its members as they came, in order,
 * nulls left out.  Lines for both paths (the first four the fast one):
 * any key order, tags, a ref, phone numbers to normalize (the fast path
 * stores their canonical spelling: gs_record_validate_spans_norm), an
 * escape, a null, whitespace, a ref to normalize.
 */
static void
test_import_spans_plain(void **state)
{
	static const char *const lines[] = {
		"{\"name\":\"陈静红\",\"pop_type\":\"FLOATING\",\"id_number\":"
		"\"%s\",\"ethnic\":\"01\",\"phone\":\"18685443125\","
		"\"address\":\"大鹏街道27巷28号705房\",\"inflow_reason\":\"WORK\","
		"\"inflow_date\":\"2025-06-24\"}",
		"{\"note\":\"备注 ~!@#$%%^&*()\",\"house\":"
		"\"01a216d7-02cf-7120-a376-e9fcda75be79\",\"address\":\"x\","
		"\"tags\":[\"RELEASED\",\"MENTAL\"],\"id_number\":\"%s\","
		"\"pop_type\":\"REGISTERED\",\"name\":\"李\"}",
		"{\"phone\":\"0755-6317 5455\",\"name\":\"郑\",\"pop_type\":"
		"\"REGISTERED\",\"id_number\":\"%s\",\"address\":\"e\"}",
		"{\"name\":\"钱\",\"pop_type\":\"REGISTERED\",\"id_number\":"
		"\"%s\",\"address\":\"f\",\"phone\":\"+86 138-0013-8000\"}",
		"{\"pop_type\":\"REGISTERED\",\"name\":\"陈\\\"一\","
		"\"id_number\":\"%s\",\"address\":\"a\\\\b\\u4e00\"}",
		"{\"name\":\"王\",\"phone\":null,\"pop_type\":\"REGISTERED\","
		"\"id_number\":\"%s\",\"address\":\"b\",\"tags\":[]}",
		"{\"name\": \"周\",\"pop_type\":\"REGISTERED\",\"id_number\":"
		"\"%s\",\"address\":\"c\"}\r",
		"{\"name\":\"吴\",\"pop_type\":\"REGISTERED\",\"id_number\":"
		"\"%s\",\"address\":\"d\",\"house\":"
		"\"01A216D7-02CF-7120-A376-E9FCDA75BE79\"}",
	};
	enum { N = sizeof(lines) / sizeof(lines[0]) };
	char all[N * 700], id[19], one[700];
	char iu[2][N][AG_UUID_LEN + 1];
	size_t len = 0, n = 0;
	int i, way;

	(void)state;
	memset(iu, 0, sizeof(iu));
	for (i = 0; i < N; i++) {
		idcard(id, 600 + i);
		snprintf(one, sizeof(one), lines[i], id);
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s\n",
		    one);
	}
	(void)ag_import_spans_set(1);
	for (way = 0; way < 2; way++) {
		/* The first four lines took the fast path, then none. */
		assert_int_equal(ag_import_spans_set(way == 0), way == 0 ? 0 :
		    4);
		assert_int_equal(ag_import_ndjson(st, "person", all, len,
		    take_uuids, iu[way], &n), GS_OK);
		assert_int_equal(n, N);
	}
	assert_int_equal(ag_import_spans_set(1), 0);
	for (i = 0; i < N; i++) {
		char *a = q_text("SELECT fields FROM record WHERE uuid = ?1",
		    iu[0][i]);
		char *b = q_text("SELECT fields FROM record WHERE uuid = ?1",
		    iu[1][i]);

		assert_non_null(a);
		assert_non_null(b);
		if (strcmp(a, b) != 0)
			fail_msg("line %d: stored %s, not %s", i + 1, a, b);
		free(a);
		free(b);
	}
}

/*
 * Whether some process holds a read lock on the bytes of the database
 * file that SQLite's SHARED lock takes (its unix VFS: a read lock on
 * 510 bytes from PENDING_BYTE + 2), as another process sees it: asked
 * from a child, because closing any descriptor of the file in this
 * process would drop the locks it asks about.
 */
static int
db_shared_held(void)
{
	char path[128];
	pid_t pid;
	int status = 0;

	snprintf(path, sizeof(path), "%s/agent.db", home);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct flock l;
		int fd = open(path, O_RDONLY);

		memset(&l, 0, sizeof(l));
		l.l_type = F_WRLCK;
		l.l_whence = SEEK_SET;
		l.l_start = 0x40000002;
		l.l_len = 510;
		if (fd < 0 || fcntl(fd, F_GETLK, &l) != 0)
			_exit(2);
		_exit(l.l_type == F_RDLCK ? 1 : 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_not_equal(WEXITSTATUS(status), 2);
	return WEXITSTATUS(status) == 1;
}

/*
 * A WAL connection holds a SHARED lock on its database file as long as it
 * is open: another connection that closes sees it and neither
 * checkpoints nor deletes the WAL under it.  The import's early
 * writeback opens a descriptor of that file to ask the kernel to write
 * it; closing it after the import dropped every POSIX lock the process
 * held on the file (close(2) does that), so the store went on without
 * its SHARED lock.  It is kept until the store closes.
 */
static void
test_import_keeps_lock(void **state)
{
	char rec[512], uuid[AG_UUID_LEN + 1];

	(void)state;
	assert_int_equal(count_records(), 0);
	assert_true(db_shared_held());
	/* Enough lines for the reader threads, the early writeback and the
	 * rollback journal (back to WAL after it). */
	import_people(3000, 700);
	assert_true(db_shared_held());
	/* And still after a second import and a single save. */
	import_people(3000, 700);
	person(rec, sizeof(rec), "某", 4000);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	assert_true(db_shared_held());
}

/*
 * A bulk import big enough for the reader thread (agent/store.c: two
 * chunks of lines or more), going round the chunk ring several times:
 * records in line order, and bad lines far apart all reported with their
 * line numbers, nothing saved.
 */
static void
test_import_pipeline(void **state)
{
	struct gs_buf b;
	char rec[512], *t;
	struct lctx c = { 0 };
	size_t n = 0;
	int i;

	(void)state;
	gs_buf_init(&b, 4 << 20);
	for (i = 1; i <= 3000; i++) {
		if (i == 1500)
			snprintf(rec, sizeof(rec), "{\"name\":\"x\","
			    "\"pop_type\":\"REGISTERED\",\"id_number\":"
			    "\"110105194912310025\",\"address\":\"a\"}");
		else if (i == 2000)
			snprintf(rec, sizeof(rec), " ");
		else if (i == 2800)
			snprintf(rec, sizeof(rec), "{\"name\":");
		else
			person(rec, sizeof(rec), "某", 1000 + i);
		assert_int_equal(gs_buf_printf(&b, "%s\n", rec), GS_OK);
	}
	assert_int_equal(ag_import_ndjson(st, "person", b.data, b.len, on_uuid,
	    &c, &n), GS_EVALIDATION);
	assert_int_equal(n, 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(seen.n, 2);
	assert_int_equal(seen.lines[0], 1500);
	assert_string_equal(seen.fields[0], "id_number");
	assert_int_equal(seen.lines[1], 2800);
	assert_string_equal(seen.rules[1], "parse");
	assert_int_equal(count_records(), 0);
	assert_int_equal(count_changes(), 0);

	/* The same without the bad lines: all of them, in line order. */
	gs_buf_reset(&b);
	for (i = 1; i <= 3000; i++) {
		person(rec, sizeof(rec), "某", 1000 + i);
		assert_int_equal(gs_buf_printf(&b, "%s\n%s", rec,
		    i == 2000 ? "\n" : ""), GS_OK);
	}
	assert_int_equal(ag_import_ndjson(st, "person", b.data, b.len, on_uuid,
	    &c, &n), GS_OK);
	assert_int_equal(n, 3000);
	assert_int_equal(c.n, 3000);
	assert_int_equal(count_records(), 3000);
	assert_int_equal(count_changes(), 3000);
	t = q_text("SELECT json_extract(fields, '$.address') FROM record "
	    "ORDER BY uuid LIMIT 1", NULL);
	assert_string_equal(t, "大鹏街道1001号");
	free(t);
	t = q_text("SELECT json_extract(fields, '$.address') FROM record "
	    "ORDER BY uuid DESC LIMIT 1", NULL);
	assert_string_equal(t, "大鹏街道4000号");
	free(t);
	t = q_text("SELECT max(uuid) FROM record", NULL);
	assert_string_equal(t, c.last);
	free(t);
	assert_int_equal(q_int("SELECT count(*) FROM pending_creation", NULL),
	    3000);
	assert_int_equal(ag_store_pending_flush(ag_store_db(st)), GS_OK);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE state = 0 "
	    "AND op = 'upsert' AND fields IS NULL", NULL), 3000);
	gs_buf_release(&b);
}

static void
test_audit_append_only(void **state)
{
	char uuid[AG_UUID_LEN + 1], rec[512];

	(void)state;
	person(rec, sizeof(rec), "某", 1);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	assert_int_not_equal(gs_db_exec(ag_store_db(st), "DELETE FROM audit"),
	    GS_OK);
	assert_int_not_equal(gs_db_exec(ag_store_db(st),
	    "UPDATE audit SET action = 'x'"), GS_OK);
	assert_int_equal(q_int("SELECT count(*) FROM audit", NULL), 1);
}

/*
 * Every allocation of ours failing in turn (curl's torture idea): each
 * save either succeeds or fails cleanly, and records and changes always
 * agree (nothing half-saved).
 */
static void
test_torture(void **state)
{
	char uuid[AG_UUID_LEN + 1], rec[512];
	const char *e = "{\"note\":\"x\"}";
	struct gs_buf b;
	size_t saved;
	long n, before;
	int r, done = 0, added, imported;

	(void)state;
	person(rec, sizeof(rec), "某", 1);
	gs_buf_init(&b, 1 << 16);
	assert_int_equal(gs_buf_printf(&b, "%s\n%s\n", rec, rec), GS_OK);
	for (n = 0; n < 400 && done < 3; n++) {
		done = 0;
		before = (long)count_records();
		gs_mem_fail_after(n);
		r = ag_collect(st, "person", rec, strlen(rec), uuid);
		done += r == GS_OK;
		added = r == GS_OK;
		assert_true(r == GS_OK || r == GS_ENOMEM);
		r = ag_import_ndjson(st, "person", b.data, b.len, NULL, NULL,
		    &saved);
		done += r == GS_OK;
		assert_true(r == GS_OK || r == GS_ENOMEM);
		imported = r == GS_OK;
		if (uuid[0] != '\0') {
			r = ag_edit(st, uuid, e, strlen(e));
			done += r == GS_OK;
			assert_true(r == GS_OK || r == GS_ENOMEM);
		} else {
			done++;
		}
		gs_mem_fail_after(-1);
		assert_int_equal(count_records(), count_changes());
		/* The import saved both lines or neither: a line its first
		 * pass could not read for want of memory was once skipped and
		 * the other saved, the import a success. */
		assert_int_equal((long)count_records() - before,
		    added + (imported ? 2 : 0));
		if (imported)
			assert_int_equal(saved, 2);
	}
	assert_int_equal(done, 3); /* the loop reached a run without faults */
	assert_true(n > 1);       /* ... after runs with faults */
	assert_int_equal(gs_db_integrity_check(ag_store_db(st)), GS_OK);
	gs_buf_release(&b);
}

/* The "rev" of ag_get's JSON for uuid. */
static int64_t
got_rev(const char *uuid)
{
	char *json = NULL;
	json_t *o;
	int64_t v;

	assert_int_equal(ag_get(st, uuid, &json), GS_OK);
	o = json_loads(json, 0, NULL);
	ag_free(json);
	assert_non_null(o);
	assert_true(json_is_integer(json_object_get(o, "rev")));
	v = json_integer_value(json_object_get(o, "rev"));
	json_decref(o);
	return v;
}

/* Every record, change and pending creation row as one text. */
static char *
all_rows(void)
{
	return q_text("SELECT group_concat(x, ';') FROM (SELECT x FROM ("
		      "SELECT uuid || '|' || rev || '|' || deleted || '|' || "
		      "fields AS x FROM record UNION ALL "
		      "SELECT change_id || '|' || uuid || '|' || state || '|' || "
		      "base_rev || '|' || op || '|' || coalesce(fields, '-') "
		      "FROM change UNION ALL "
		      "SELECT uuid || '|' || change_id FROM pending_creation) "
		      "ORDER BY x)", NULL);
}

/*
 * Migration 0009 (record_rev) on a store at version 8 holding delivered
 * records at revs 1 and 4 (in record.rev, where the program before it
 * wrote them), an unsent edit, an unsent delete and an unsent creation:
 * every row is kept as it was, the revs read are the same, the next edit
 * is based on them, and the database is sound.
 */
static void
test_migration_0009(void **state)
{
	char u[5][AG_UUID_LEN + 1], rec[512], sql[160];
	const char *e = "{\"note\":\"x\"}";
	char *before, *after;
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		if (i == 4) {
			/* u[0..3] delivered: revs 1, 4, 1, 1. */
			exec_chg("UPDATE change SET state = 2, batch_seq = 1");
			exec("UPDATE record SET rev = 1");
			snprintf(sql, sizeof(sql), "UPDATE record SET rev = 4 "
			    "WHERE uuid = '%s'", u[1]);
			exec(sql);
		}
		person(rec, sizeof(rec), "迁移", 20 + i);
		assert_int_equal(ag_collect(st, "person", rec, strlen(rec),
		    u[i]), GS_OK);
	}
	assert_int_equal(ag_edit(st, u[0], e, strlen(e)), GS_OK);
	assert_int_equal(ag_delete(st, u[2], "moved away"), GS_OK);
	/* Back to version 8: 0009 only added record_rev; 0010 moved the
	 * envelopes out of the outbox (empty here); 0011 added
	 * sealed_creation and the outbox's creation range. */
	undo_0011();
	exec("DROP TABLE record_rev");
	exec("DROP TABLE outbox_envelope");
	exec("ALTER TABLE outbox ADD COLUMN envelope BLOB");
	exec("PRAGMA user_version = 8");
	before = all_rows();
	assert_non_null(before);
	ag_store_close(st);
	st = NULL;

	assert_int_equal(ag_store_open(home, &st), GS_OK);
	assert_int_equal(q_int("PRAGMA user_version", NULL), 12);
	assert_int_equal(q_int("SELECT count(*) FROM record_rev", NULL), 0);
	after = all_rows();
	assert_non_null(after);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(count_records(), 5);
	assert_int_equal(gs_db_integrity_check(ag_store_db(st)), GS_OK);
	assert_int_equal(got_rev(u[0]), 1);
	assert_int_equal(got_rev(u[1]), 4);
	assert_int_equal(got_rev(u[2]), 1);
	assert_int_equal(got_rev(u[3]), 1);
	assert_int_equal(got_rev(u[4]), 0);
	/* The unsent edit keeps its base; new edits are based on the revs. */
	assert_int_equal(q_int("SELECT base_rev FROM change WHERE state = 0 "
			       "AND uuid = ?1", u[0]), 1);
	assert_int_equal(ag_edit(st, u[1], e, strlen(e)), GS_OK);
	assert_int_equal(q_int("SELECT base_rev FROM change WHERE state = 0 "
			       "AND uuid = ?1", u[1]), 4);
	assert_int_equal(ag_edit(st, u[3], e, strlen(e)), GS_OK);
	assert_int_equal(q_int("SELECT base_rev FROM change WHERE state = 0 "
			       "AND uuid = ?1", u[3]), 1);
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE state = 0",
	    NULL), 4);
	assert_int_equal(q_int("SELECT count(*) FROM pending_creation", NULL),
	    1);
}

/*
 * Migration 0010 (outbox_envelope) on a store at version 9 whose outbox
 * rows hold their envelopes: each envelope moves, byte for byte, to the
 * row of its seq in outbox_envelope; the outbox keeps every other column
 * and no longer has one for the envelope.
 */
static void
test_migration_0010(void **state)
{
	(void)state;
	undo_0011();
	exec("DROP TABLE outbox_envelope");
	exec("ALTER TABLE outbox ADD COLUMN envelope BLOB");
	exec("INSERT INTO outbox (seq, batch_id, envelope, hash, prev_hash, "
	     "record_count, bytes, plain_bytes, state, created_at, attempts) "
	     "VALUES (1, randomblob(16), x'00ff01', zeroblob(32), "
	     "zeroblob(32), 3, 3, 30, 'acked', 5, 1), "
	     "(2, randomblob(16), zeroblob(70000), zeroblob(32), "
	     "zeroblob(32), 7, 70000, 700, 'sealed', 6, 0)");
	exec("PRAGMA user_version = 9");
	ag_store_close(st);
	st = NULL;

	assert_int_equal(ag_store_open(home, &st), GS_OK);
	assert_int_equal(q_int("PRAGMA user_version", NULL), 12);
	assert_int_equal(q_int("SELECT count(*) FROM pragma_table_info("
	    "'outbox') WHERE name = 'envelope'", NULL), 0);
	assert_int_equal(q_int("SELECT count(*) FROM outbox_envelope", NULL),
	    2);
	assert_int_equal(q_int("SELECT count(*) FROM outbox_envelope WHERE "
	    "seq = 1 AND envelope = x'00ff01'", NULL), 1);
	assert_int_equal(q_int("SELECT count(*) FROM outbox_envelope WHERE "
	    "seq = 2 AND envelope = zeroblob(70000)", NULL), 1);
	assert_int_equal(q_int("SELECT count(*) FROM outbox WHERE "
	    "(seq = 1 AND record_count = 3 AND bytes = 3 AND state = 'acked' "
	    "AND attempts = 1) OR (seq = 2 AND record_count = 7 AND "
	    "bytes = 70000 AND state = 'sealed' AND created_at = 6)", NULL), 2);
	assert_int_equal(gs_db_integrity_check(ag_store_db(st)), GS_OK);
}

static void
test_newer_refused(void **state)
{
	struct ag_store *s2 = NULL;

	(void)state;
	exec("PRAGMA user_version = 9999");
	assert_int_equal(ag_store_open(home, &s2), GS_EDBVERSION);
	assert_null(s2);
	assert_non_null(strstr(ag_errmsg(GS_EDBVERSION), "newer"));
}

/*
 * A creation waiting in pending_creation (schema/agent/0008) is an unsent
 * change: a platform revision of the same uuid (a restore, a fork) must
 * not overwrite it, status counts it, and once its change is delivered
 * the platform's newer revision applies.
 */
static void
test_pending_creation(void **state)
{
	char uuid[AG_UUID_LEN + 1], rec[512], *json = NULL;
	struct ag_platform_rev p;
	json_t *o, *f;
	int applied = 1;

	(void)state;
	person(rec, sizeof(rec), "赵六", 7);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	assert_int_equal(q_int("SELECT count(*) FROM pending_creation", NULL),
	    1);
	assert_int_equal(ag_status(st, &json), GS_OK);
	o = json_loads(json, 0, NULL);
	ag_free(json);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(
	    o, "changes"), "unsent")), 1);
	json_decref(o);

	f = json_pack("{s:s,s:s}", "name", "别人", "pop_type", "REGISTERED");
	assert_non_null(f);
	memset(&p, 0, sizeof(p));
	p.uuid = uuid;
	p.type = "person";
	p.grid = "440307001001";
	p.author = "other";
	p.form_version = 1;
	p.rev = 1;
	p.created_at = p.updated_at = 1;
	p.fields = f;
	assert_int_equal(ag_store_apply_platform(st, &p, &applied), GS_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(q_int("SELECT count(*) FROM record WHERE fields LIKE "
	    "'%赵六%'", NULL), 1);

	/* Batched and delivered: the platform's rev 2 applies. */
	exec_chg("UPDATE change SET state = 2");
	p.rev = 2;
	assert_int_equal(ag_store_apply_platform(st, &p, &applied), GS_OK);
	assert_int_equal(applied, 1);
	assert_int_equal(q_int("SELECT count(*) FROM record WHERE fields LIKE "
	    "'%别人%'", NULL), 1);
	json_decref(f);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_init_open),
		T(test_collect_get),
		T(test_collect_normalizes),
		T(test_invalid_changes_nothing),
		T(test_collect_args),
		T(test_edit_coalesces),
		T(test_edit_base_rev),
		T(test_edit_clear_and_invalid),
		T(test_delete),
		T(test_pending_creation),
		T(test_migration_0009),
		T(test_migration_0010),
		T(test_list_status),
		T(test_import),
		T(test_import_pipeline),
		T(test_import_rows),
		T(test_import_direct),
		T(test_import_spans_plain),
		T(test_import_keeps_lock),
		T(test_audit_append_only),
		T(test_torture),
		T(test_newer_refused),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
