/*
 * agent-attach.c - `gridagent attach` through its API (agent/attach.h):
 * the sealed file opens with the platform key to the photo; the record,
 * its change, the attachment rows and the audit move together in one
 * transaction, and every refusal (validation, duplicate, type, limit, not
 * enrolled, allocation failures) leaves all of them as they were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cmocka.h>

#include <jansson.h>

#include "attach.h"
#include "attachment.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "gridagent.h"
#include "store.h"
#include "uploader.h"
#include "canned_http.h"

struct fx {
	char dir[128], home[160], photo[200], other[200];
	struct ag_store *st;
	struct ag_device *dev;
	unsigned char bpk[32], bsk[32];
	unsigned char rsk[64];
	char event[AG_UUID_LEN + 1], person[AG_UUID_LEN + 1];
};

static const char EVENT[] = "{\"category\":\"CM_MANHOLE\",\"title\":\"井盖\","
			    "\"place\":\"某地\",\"occurred_at\":"
			    "\"2026-04-01T10:00:00Z\",\"urgency\":\"URGENT\"}";

static const char PERSON[] = "{\"name\":\"Nguyen Van An\",\"pop_type\":"
			     "\"FOREIGN\",\"sex\":\"1\",\"nationality\":"
			     "\"VNM\",\"passport_no\":\"C1234567\",\"address\":"
			     "\"鹏城社区二村8号\"}";

static void
write_photo(const char *path, size_t n)
{
	unsigned char *p = malloc(n);
	FILE *f = fopen(path, "wb");

	assert_non_null(p);
	assert_non_null(f);
	gs_random(p, n);
	p[0] = 0xff;
	p[1] = 0xd8;
	p[2] = 0xff;
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
	free(p);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	unsigned char rpk[32];

	assert_non_null(f);
	assert_int_equal(gs_crypto_init(), GS_OK);
	snprintf(f->dir, sizeof(f->dir), "/tmp/agent-attach.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->home, sizeof(f->home), "%s/h", f->dir);
	snprintf(f->photo, sizeof(f->photo), "%s/photo.jpg", f->dir);
	snprintf(f->other, sizeof(f->other), "%s/other.jpg", f->dir);
	write_photo(f->photo, 100000);
	write_photo(f->other, 3000);
	assert_int_equal(ag_store_init(f->home, "G1", "w1", &f->st), GS_OK);
	gs_crypto_kx_keypair(f->bpk, f->bsk);
	gs_crypto_sign_keypair(rpk, f->rsk);
	assert_int_equal(ag_device_new(&f->dev), GS_OK);
	gs_crypto_sign_keypair(f->dev->sign_pk, f->dev->sign_sk);
	gs_random(f->dev->device_id, 16);
	gs_random(f->dev->deployment, 16);
	memcpy(f->dev->batch_pk, f->bpk, 32);
	gs_crypto_key_id(f->dev->batch_kid, f->bpk, 32);
	memcpy(f->dev->receipt_pk, rpk, 32);
	snprintf(f->dev->platform_url, sizeof(f->dev->platform_url),
	    "http://127.0.0.1:9");
	f->dev->max_records = 10000;
	f->dev->max_envelope = 16 << 20;
	f->dev->max_plain = 64 << 20;
	f->dev->enrolled_at = 1;
	assert_int_equal(ag_device_insert(ag_store_db(f->st), f->dev), GS_OK);
	assert_int_equal(ag_collect(f->st, "event", EVENT, strlen(EVENT),
			     f->event),
	    GS_OK);
	assert_int_equal(ag_collect(f->st, "person", PERSON, strlen(PERSON),
			     f->person),
	    GS_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[300];

	ag_device_free(f->dev);
	ag_store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static int64_t
count(struct fx *f, const char *sql)
{
	struct gs_stmt *s = NULL;
	int64_t n = -1;

	assert_int_equal(gs_stmt_prepare(ag_store_db(f->st), sql, &s), GS_OK);
	assert_int_equal(gs_stmt_one_int64(s, 0, &n), GS_OK);
	gs_stmt_finalize(s);
	return n;
}

/* The state that must not move on a refusal. */
struct snap {
	int64_t att, ra, audit, changes;
	char *rec;
};

static void
snap_take(struct fx *f, struct snap *s)
{
	s->att = count(f, "SELECT count(*) FROM attachment");
	s->ra = count(f, "SELECT count(*) FROM record_attachment");
	s->audit = count(f, "SELECT count(*) FROM audit");
	s->changes = count(f, "SELECT count(*) FROM change");
	assert_int_equal(ag_get(f->st, f->event, &s->rec), GS_OK);
}

static void
snap_same(struct fx *f, struct snap *s)
{
	struct snap now;

	snap_take(f, &now);
	assert_int_equal(now.att, s->att);
	assert_int_equal(now.ra, s->ra);
	assert_int_equal(now.audit, s->audit);
	assert_int_equal(now.changes, s->changes);
	assert_string_equal(now.rec, s->rec);
	ag_free(now.rec);
	ag_free(s->rec);
}

static struct ag_attach_opts
opts(void)
{
	struct ag_attach_opts o;

	memset(&o, 0, sizeof(o));
	o.taken_at = -1;
	return o;
}

static void
test_attach_and_open(void **state)
{
	struct fx *f = *state;
	struct ag_attach_opts o = opts();
	struct ag_attach_result res;
	struct gs_att_header h;
	unsigned char pre[GS_ATT_PREFIXBYTES], want[32];
	char path[400], *rec = NULL;
	json_t *j, *a;
	int in, out;
	FILE *pf;
	unsigned char *back, *orig;
	long n;

	o.phase = "BEFORE";
	o.note = "井盖缺失";
	o.location = "22.59,114.48,8,GCJ02";
	assert_int_equal(ag_attach(f->st, f->event, f->photo, &o, &res), GS_OK);
	assert_string_equal(res.mime, "image/jpeg");
	assert_int_equal(res.size, 100000);
	assert_false(res.reused);
	assert_int_equal(count(f, "SELECT count(*) FROM attachment WHERE "
				  "state = 'sealed'"),
	    1);
	assert_int_equal(count(f, "SELECT count(*) FROM record_attachment"),
	    1);
	assert_int_equal(count(f, "SELECT count(*) FROM audit WHERE action "
				  "= 'attach'"),
	    1);
	/* The record and its unsent change name it. */
	assert_int_equal(ag_get(f->st, f->event, &rec), GS_OK);
	j = json_loads(rec, 0, NULL);
	a = json_array_get(json_object_get(json_object_get(j, "fields"),
			       "attachments"),
	    0);
	assert_string_equal(json_string_value(json_object_get(a, "hash")),
	    res.hash);
	assert_string_equal(json_string_value(json_object_get(a, "phase")),
	    "BEFORE");
	assert_true(json_is_object(json_object_get(a, "location")));
	json_decref(j);
	ag_free(rec);
	/* (An unsent creation sends its record's fields.) */
	assert_int_equal(count(f, "SELECT count(*) FROM change AS c JOIN "
				  "record AS r ON r.uuid = c.uuid WHERE "
				  "c.state = 0 AND coalesce(c.fields, "
				  "r.fields) LIKE '%attachments%'"),
	    1);
	/* The sealed file opens with the platform key to the photo. */
	snprintf(path, sizeof(path), "%s/attachments/sealed/%s", f->home,
	    res.hash);
	in = open(path, O_RDONLY);
	assert_true(in >= 0);
	assert_int_equal(pread(in, pre, sizeof(pre), 0), (ssize_t)sizeof(pre));
	assert_int_equal(gs_att_parse(&h, pre, sizeof(pre), 0), GS_OK);
	assert_int_equal(gs_att_verify(pre, f->dev->sign_pk), GS_OK);
	snprintf(path, sizeof(path), "%s/back.jpg", f->dir);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_int_equal(gs_att_open_fd(in, out, &h, f->bpk, f->bsk), GS_OK);
	close(in);
	close(out);
	pf = fopen(path, "rb");
	back = malloc(100000);
	orig = malloc(100000);
	n = (long)fread(back, 1, 100000, pf);
	fclose(pf);
	assert_int_equal(n, 100000);
	pf = fopen(f->photo, "rb");
	assert_int_equal(fread(orig, 1, 100000, pf), 100000);
	fclose(pf);
	assert_memory_equal(back, orig, 100000);
	gs_crypto_hash(want, 32, orig, 100000, NULL, 0);
	assert_memory_equal(h.hash, want, 32);
	free(back);
	free(orig);
}

static void
test_refusals_change_nothing(void **state)
{
	struct fx *f = *state;
	struct ag_attach_opts o = opts();
	struct ag_attach_result res;
	struct snap s;

	assert_int_equal(ag_attach(f->st, f->event, f->photo, &o, &res), GS_OK);
	snap_take(f, &s);
	/* twice on one record */
	assert_int_equal(ag_attach(f->st, f->event, f->photo, &o, &res),
	    GS_EEXIST);
	/* a phase outside the code table fails the record's validation
	 * after the hook ran: rolled back */
	o.phase = "LATER";
	assert_int_equal(ag_attach(f->st, f->event, f->other, &o, &res),
	    GS_EVALIDATION);
	o.phase = NULL;
	/* a person takes none */
	assert_int_equal(ag_attach(f->st, f->person, f->other, &o, &res),
	    GS_EINVAL);
	/* a bad location */
	o.location = "22.5,114";
	assert_int_equal(ag_attach(f->st, f->event, f->other, &o, &res),
	    GS_EINVAL);
	o.location = NULL;
	/* no such record, no such file */
	assert_int_equal(ag_attach(f->st, "0190a6e2-0000-7000-8000-0000000000ff",
			     f->other, &o, &res),
	    GS_ENOTFOUND);
	assert_int_equal(ag_attach(f->st, f->event, "/nonexistent/x.jpg", &o,
			     &res),
	    GS_ENOTFOUND);
	/* over the platform's limit */
	assert_int_equal(ag_attach_set_limit(f->st, 2000), GS_OK);
	assert_int_equal(ag_attach(f->st, f->event, f->other, &o, &res),
	    GS_ETOOBIG);
	assert_non_null(strstr(gs_errmsg(GS_ETOOBIG), "at most 2000 bytes"));
	snap_same(f, &s);
}

static void
test_same_file_two_records(void **state)
{
	struct fx *f = *state;
	struct ag_attach_opts o = opts();
	struct ag_attach_result res;
	char second[AG_UUID_LEN + 1];

	assert_int_equal(ag_collect(f->st, "event", EVENT, strlen(EVENT),
			     second),
	    GS_OK);
	assert_int_equal(ag_attach(f->st, f->event, f->photo, &o, &res), GS_OK);
	assert_false(res.reused);
	assert_int_equal(ag_attach(f->st, second, f->photo, &o, &res), GS_OK);
	assert_true(res.reused);
	assert_int_equal(count(f, "SELECT count(*) FROM attachment"), 1);
	assert_int_equal(count(f, "SELECT count(*) FROM record_attachment"),
	    2);
}

/* A sealed file lost before it was sent: attaching the same file again
 * seals it again, without a second entry in the record. */
static void
test_reseal_lost(void **state)
{
	struct fx *f = *state;
	struct ag_attach_opts o = opts();
	struct ag_attach_result res;
	char path[400], *rec1 = NULL, *rec2 = NULL;
	json_t *j;

	assert_int_equal(ag_attach(f->st, f->event, f->photo, &o, &res), GS_OK);
	snprintf(path, sizeof(path), "%s/attachments/sealed/%s", f->home,
	    res.hash);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(ag_get(f->st, f->event, &rec1), GS_OK);
	assert_int_equal(ag_attach(f->st, f->event, f->photo, &o, &res), GS_OK);
	assert_false(res.reused);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(ag_get(f->st, f->event, &rec2), GS_OK);
	j = json_loads(rec2, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j,
			     "fields"), "attachments")),
	    1);
	json_decref(j);
	assert_int_equal(count(f, "SELECT count(*) FROM record_attachment"),
	    1);
	assert_int_equal(count(f, "SELECT count(*) FROM attachment WHERE "
				  "state = 'sealed'"),
	    1);
	ag_free(rec1);
	ag_free(rec2);
}

static void
test_status(void **state)
{
	struct fx *f = *state;
	struct ag_attach_opts o = opts();
	struct ag_attach_result res;
	json_t *st = json_object();
	int yes = 0;

	assert_int_equal(ag_attach_pending(f->st, &yes), GS_OK);
	assert_false(yes);
	assert_int_equal(ag_attach(f->st, f->event, f->photo, &o, &res), GS_OK);
	assert_int_equal(ag_attach_pending(f->st, &yes), GS_OK);
	assert_true(yes);
	assert_int_equal(ag_attach_status(f->st, st), GS_OK);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st,
			     "attachments"), "pending")),
	    1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st,
			     "attachments"), "pending_bytes")),
	    (json_int_t)res.sealed_len);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(st,
			     "attachments"), "records_waiting")),
	    1);
	json_decref(st);
}

/* Every allocation of ours failing in turn: either the attach happened
 * whole, or nothing changed. */
static void
test_alloc_failures(void **state)
{
	struct fx *f = *state;
	struct ag_attach_opts o = opts();
	struct ag_attach_result res;
	long k;
	int r = GS_ENOMEM;

	for (k = 0; k < 400 && r != GS_OK; k++) {
		struct snap s;

		snap_take(f, &s);
		gs_mem_fail_after(k);
		r = ag_attach(f->st, f->event, f->other, &o, &res);
		gs_mem_fail_after(-1);
		if (r != GS_OK)
			snap_same(f, &s);
		else {
			ag_free(s.rec);
			assert_int_equal(count(f, "SELECT count(*) FROM "
						  "record_attachment"),
			    s.ra + 1);
		}
	}
	assert_int_equal(r, GS_OK);
}

static void
test_not_enrolled(void **state)
{
	char dir[] = "/tmp/agent-attach-ne.XXXXXX", home[64], cmd[128];
	struct ag_store *st = NULL;
	struct ag_attach_opts o = opts();
	struct ag_attach_result res;
	char uuid[AG_UUID_LEN + 1];

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(home, sizeof(home), "%s/h", dir);
	assert_int_equal(ag_store_init(home, "G1", "w1", &st), GS_OK);
	assert_int_equal(ag_collect(st, "event", EVENT, strlen(EVENT), uuid),
	    GS_OK);
	assert_int_equal(ag_attach(st, uuid, "/etc/hostname", &o, &res),
	    GS_ENOTENROLLED);
	ag_store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* ------------------------------------------- a canned platform (sync) */

static struct canned_http c_srv;
static int c_requests;
static char *c_answer;

/* Answers every request with c_answer. */
static void
c_answer_fn(const char *req, size_t body_len, const char **ans, size_t *len)
{
	(void)req;
	(void)body_len;
	c_requests++;
	*ans = c_answer;
	*len = strlen(c_answer);
}

/* "complete" with a receipt for hash, signed with the pinned key. */
static void
c_complete(struct fx *f, const unsigned char hash[32], uint64_t plain_len,
    uint64_t sealed_len)
{
	struct gs_att_receipt rc;
	unsigned char raw[GS_ATT_RECEIPT_BYTES];
	char hex[2 * GS_ATT_RECEIPT_BYTES + 1], body[512];

	memset(&rc, 0, sizeof(rc));
	memcpy(rc.deployment, f->dev->deployment, 16);
	memcpy(rc.device, f->dev->device_id, 16);
	memcpy(rc.hash, hash, 32);
	rc.plain_len = plain_len;
	rc.sealed_len = sealed_len;
	rc.server_time = gs_now_ms();
	rc.status = 1;
	assert_int_equal(gs_att_receipt_sign(raw, &rc, f->rsk), GS_OK);
	gs_hex_encode(hex, raw, sizeof(raw));
	snprintf(body, sizeof(body), "{\"offset\":%llu,\"length\":%llu,"
	    "\"complete\":true,\"receipt\":\"%s\"}",
	    (unsigned long long)sealed_len, (unsigned long long)sealed_len, hex);
	pthread_mutex_lock(&canned_mu);
	free(c_answer);
	assert_true(asprintf(&c_answer, "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nConnection: close"
	    "\r\n\r\n%s", strlen(body), body) > 0);
	pthread_mutex_unlock(&canned_mu);
}

/*
 * The upload is done only on a receipt that names this very attachment:
 * one that verifies with the pinned key but names another hash (another
 * attachment's, a platform that mixed them up) is refused, and the file
 * stays pending until its own receipt comes.
 */
static void
test_sync_receipt_names_it(void **state)
{
	struct fx *f = *state;
	struct ag_attach_opts o = { 0 };
	struct ag_attach_result res;
	struct ag_attach_sync_stats stats;
	struct ag_http *h = NULL;
	unsigned char hash[32];
	char url[64];

	o.taken_at = -1;
	assert_int_equal(ag_attach(f->st, f->event, f->photo, &o, &res), GS_OK);
	assert_int_equal(gs_hex_decode(hash, 32, res.hash), GS_OK);
	canned_start(&c_srv, c_answer_fn);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", c_srv.port);
	assert_int_equal(ag_http_new(url, NULL, &h), GS_OK);

	hash[31] ^= 1;
	c_complete(f, hash, res.size, res.sealed_len);
	memset(&stats, 0, sizeof(stats));
	assert_int_not_equal(ag_attach_sync(f->st, h, f->dev, 0, NULL,
	    &stats), GS_OK);
	assert_int_equal(stats.done, 0);
	assert_int_equal(count(f, "SELECT count(*) FROM attachment WHERE "
	    "state = 'sealed'"), 1);
	/* Its own receipt: done. */
	hash[31] ^= 1;
	c_complete(f, hash, res.size, res.sealed_len);
	memset(&stats, 0, sizeof(stats));
	assert_int_equal(ag_attach_sync(f->st, h, f->dev, 0, NULL, &stats),
	    GS_OK);
	assert_int_equal(stats.done, 1);
	assert_int_equal(count(f, "SELECT count(*) FROM attachment WHERE "
	    "state = 'sealed'"), 0);
	ag_http_free(h);
	canned_stop(&c_srv);
	free(c_answer);
	c_answer = NULL;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_attach_and_open, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refusals_change_nothing,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_file_two_records,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_reseal_lost, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failures, setup,
		    teardown),
		cmocka_unit_test(test_not_enrolled),
		cmocka_unit_test_setup_teardown(test_sync_receipt_names_it,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
