/*
 * pull.c - heartbeat and pull feed on the agent (the formats are in
 * sync/feed.h and PROTOCOL.md section 8).
 *
 * Why one transaction per page, with the cursor inside it: the cursor is
 * the promise "everything up to here is applied".  Advancing it in the
 * same COMMIT as the page's writes means a crash or a cut leaves either
 * the page applied and the cursor past it, or neither; the next pull
 * then asks again from the same place.  Applying twice is harmless
 * anyway (a revision we hold is skipped), skipping never happens.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "db.h"
#include "device.h"
#include "feed.h"
#include "gridagent.h"
#include "json.h"
#include "pull.h"
#include "reference.h"
#include "store.h"
#include "uploader.h"
#include "core/banned.h"

/* One integer from a query with no parameters. */
static int
one_int(struct gs_db *db, const char *sql, int64_t *out)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(db, sql, &s)) != GS_OK)
		return r;
	r = gs_stmt_one_int64(s, 0, out);
	gs_stmt_finalize(s);
	return r;
}

/* Our clock; $GRIDAGENT_CLOCK_SKEW_MS (tests only) makes it wrong by that
 * much, the way a handheld's clock is after a reset. */
static int64_t
local_now(void)
{
	const char *e = getenv("GRIDAGENT_CLOCK_SKEW_MS");

	return gs_now_ms() + (e != NULL ? strtoll(e, NULL, 10) : 0);
}

int64_t
ag_pull_clock(void)
{
	return local_now();
}

int64_t
ag_pull_skew(const json_t *health, int64_t asked)
{
	const json_t *t = json_object_get(health, "time");

	if (!json_is_integer(t))
		return 0;
	return json_integer_value(t) - (asked + local_now()) / 2;
}

/* "/v1/devices/<hex>/<what>?since=N&t=T&sig=S" and then extra (unsigned
 * query parameters, "" for none) into url; the signed path is the part
 * before '?'; t is the platform's time (our clock plus skew). */
static int
signed_path(char *url, size_t len, const struct ag_device *dev,
    const char *method, const char *what, uint64_t since, const void *body,
    size_t blen, int64_t skew, const char *extra)
{
	char hex[33], path[128], sighex[129];
	unsigned char sig[64];
	int64_t t = local_now() + skew;
	int n, r;

	ag_device_id_hex(dev, hex);
	snprintf(path, sizeof(path), "/v1/devices/%s/%s", hex, what);
	if ((r = gs_req_sign(sig, method, path, since, t, body, blen,
	    dev->sign_sk)) != GS_OK)
		return r;
	gs_hex_encode(sighex, sig, sizeof(sig));
	n = snprintf(url, len, "%s?since=%" PRIu64 "&t=%" PRId64 "&sig=%s%s",
	    path, since, t, sighex, extra);
	if (n < 0 || (size_t)n >= len)
		return GS_FAIL(GS_EINTERNAL, "request path too long");
	return GS_OK;
}

/* A non-2xx answer as our error (the platform's code and message). */
static int
answer_error(const struct ag_http_response *resp, const char *what)
{
	char msg[256];
	int e = ag_http_error_body(resp, msg, sizeof(msg));

	if (e == GS_EPROTOCOL)
		return GS_FAIL(GS_EPROTOCOL, "%s: HTTP %ld outside the "
		    "protocol", what, resp->status);
	return GS_FAIL(e, "%s refused: %s", what, msg);
}

int
ag_heartbeat_send(struct ag_store *st, struct ag_http *http,
    const struct ag_device *dev, int64_t skew)
{
	struct gs_db *db = ag_store_db(st);
	int64_t v[6];
	static const char *const q[6] = {
		"SELECT (SELECT count(*) FROM change WHERE state = 0) + "
		    "(SELECT count(*) FROM pending_creation)",
		"SELECT count(*) FROM outbox WHERE state = 'sealed'",
		"SELECT coalesce(max(seq), 0) FROM outbox "
		    "WHERE state IN ('acked', 'quarantined')",
		"SELECT count(*) FROM change WHERE state = 3",
		"SELECT count(*) FROM change WHERE state = 4",
		"SELECT last_seq FROM device WHERE id = 1",
	};
	struct gs_stmt *s = NULL;
	struct statvfs fs;
	struct ag_http_response resp;
	char head[65] = "", url[512], *body = NULL;
	json_t *o = NULL;
	int r, i;

	ag_http_response_init(&resp);
	for (i = 0; i < 6; i++)
		if ((r = one_int(db, q[i], &v[i])) != GS_OK)
			goto out;
	if ((r = gs_stmt_prepare(db, "SELECT chain_head FROM device "
	    "WHERE id = 1", &s)) != GS_OK)
		goto out;
	if (gs_stmt_step(s) == GS_ROW && gs_stmt_bytes(s, 0) == 32)
		gs_hex_encode(head, gs_stmt_blob(s, 0), 32);
	gs_stmt_finalize(s);
	if (statvfs(ag_store_home(st), &fs) != 0)
		memset(&fs, 0, sizeof(fs));
	o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s,s:I}",
	    "unsent", (json_int_t)v[0], "outbox", (json_int_t)v[1],
	    "last_seq", (json_int_t)v[5], "acked_seq", (json_int_t)v[2],
	    "rejected", (json_int_t)v[3], "quarantined", (json_int_t)v[4],
	    "chain_head", head, "version", GRIDAGENT_VERSION,
	    "free_bytes", (json_int_t)((uint64_t)fs.f_bavail * fs.f_frsize));
	if (o == NULL || (body = json_dumps(o, JSON_COMPACT)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "heartbeat");
		goto out;
	}
	if ((r = signed_path(url, sizeof(url), dev, "POST", "heartbeat", 0,
	    body, strlen(body), skew, "")) != GS_OK)
		goto out;
	if ((r = ag_http_request(http, "POST", url, "application/json", body,
	    strlen(body), &resp)) != GS_OK)
		goto out;
	if (resp.status != 200)
		r = answer_error(&resp, "heartbeat");
out:
	ag_http_response_release(&resp);
	json_decref(o);
	free(body);
	return r;
}

/* Writes a task or a review of the feed (in the page's transaction). */
static int
put_task(struct gs_db *db, json_t *it)
{
	struct gs_stmt *s = NULL;
	int r;
	const char *id = json_string_value(json_object_get(it, "id"));

	if (id == NULL)
		return GS_FAIL(GS_EPROTOCOL, "feed: a task without an id");
	if ((r = gs_stmt_prepare(db, "INSERT INTO task (id, kind, subject, "
	    "due, title, status, created_at, closed_by, received_at) VALUES "
	    "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO UPDATE "
	    "SET status = excluded.status, closed_by = excluded.closed_by, "
	    "due = excluded.due, title = excluded.title, "
	    "received_at = excluded.received_at", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, id)) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 2, json_string_value(json_object_get(it,
	    "task_kind")))) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 3, json_string_value(json_object_get(it,
	    "subject")))) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 4, json_string_value(json_object_get(it,
	    "due")))) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 5, json_string_value(json_object_get(it,
	    "title")))) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 6, json_string_value(json_object_get(it,
	    "status")))) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 7, json_integer_value(json_object_get(
	    it, "created_at")))) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 8, json_string_value(json_object_get(it,
	    "closed_by")))) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 9, gs_now_ms())) == GS_OK)
		r = gs_stmt_step(s);
	gs_stmt_finalize(s);
	if (r == GS_EDB)
		return GS_FAIL(GS_EPROTOCOL, "feed: a task lacks a field");
	return r == GS_DONE ? GS_OK : r;
}

static int
put_review(struct gs_db *db, json_t *it)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(db, "INSERT INTO review (uuid, state, "
	    "comment, by, at, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
	    "ON CONFLICT (uuid) DO UPDATE SET state = excluded.state, "
	    "comment = excluded.comment, by = excluded.by, at = excluded.at, "
	    "received_at = excluded.received_at WHERE excluded.at >= review.at",
	    &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, json_string_value(json_object_get(it,
	    "uuid")))) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 2, json_string_value(json_object_get(it,
	    "state")))) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 3, json_string_value(json_object_get(it,
	    "comment")))) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 4, json_string_value(json_object_get(it,
	    "by")))) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 5, json_integer_value(json_object_get(
	    it, "at")))) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 6, gs_now_ms())) == GS_OK)
		r = gs_stmt_step(s);
	gs_stmt_finalize(s);
	if (r == GS_EDB)
		return GS_FAIL(GS_EPROTOCOL, "feed: a review lacks a field");
	return r == GS_DONE ? GS_OK : r;
}

static int
put_record(struct ag_store *st, json_t *it, struct ag_pull_stats *ps)
{
	struct ag_platform_rev p;
	int applied = 0, r;

	memset(&p, 0, sizeof(p));
	p.uuid = json_string_value(json_object_get(it, "uuid"));
	p.type = json_string_value(json_object_get(it, "type"));
	p.grid = json_string_value(json_object_get(it, "grid"));
	p.author = json_string_value(json_object_get(it, "author"));
	p.form_version = (int)json_integer_value(json_object_get(it,
	    "form_version"));
	p.rev = json_integer_value(json_object_get(it, "rev"));
	p.created_at = json_integer_value(json_object_get(it, "created_at"));
	p.updated_at = json_integer_value(json_object_get(it, "updated_at"));
	p.deleted = json_is_true(json_object_get(it, "deleted"));
	p.fields = json_object_get(it, "fields");
	if (p.uuid == NULL || p.type == NULL || p.grid == NULL ||
	    p.author == NULL || p.rev <= 0 || p.form_version <= 0)
		return GS_FAIL(GS_EPROTOCOL, "feed: a record lacks a field");
	if ((r = ag_store_apply_platform(st, &p, &applied)) != GS_OK)
		return r;
	if (applied)
		ps->records++;
	else
		ps->kept_local++;
	return GS_OK;
}

/* Applies one opened page in one transaction with its cursor. */
static int
apply_page(struct ag_store *st, json_t *doc, uint64_t cursor,
    struct ag_pull_stats *ps)
{
	struct gs_db *db = ag_store_db(st);
	json_t *items = json_object_get(doc, "items"), *it, *ref;
	/* The counts are the committed pages' only. */
	struct ag_pull_stats before = *ps;
	char num[32], *rtext = NULL;
	const char *kind;
	size_t i;
	int r;

	if (!json_is_array(items))
		return GS_FAIL(GS_EPROTOCOL, "feed: no items");
	if ((r = gs_db_begin(db)) != GS_OK)
		return r;
	json_array_foreach(items, i, it) {
		kind = json_string_value(json_object_get(it, "kind"));
		if (kind == NULL)
			r = GS_FAIL(GS_EPROTOCOL, "feed: an item without kind");
		else if (strcmp(kind, "record") == 0)
			r = put_record(st, it, ps);
		else if (strcmp(kind, "task") == 0)
			r = (ps->tasks++, put_task(db, it));
		else if (strcmp(kind, "review") == 0)
			r = (ps->reviews++, put_review(db, it));
		/* Unknown kinds are for newer agents: skipped. */
		if (r != GS_OK)
			goto fail;
	}
	if ((ref = json_object_get(doc, "reference")) != NULL &&
	    (rtext = json_dumps(ref, JSON_COMPACT | JSON_SORT_KEYS)) != NULL &&
	    (r = ag_store_meta_set(st, "reference", rtext)) != GS_OK)
		goto fail;
	snprintf(num, sizeof(num), "%" PRIu64, cursor);
	if ((r = ag_store_meta_set(st, "pull_cursor", num)) != GS_OK)
		goto fail;
	snprintf(num, sizeof(num), "%" PRId64, gs_now_ms());
	if ((r = ag_store_meta_set(st, "pull_at", num)) != GS_OK)
		goto fail;
	free(rtext);
	if ((r = gs_db_commit(db)) != GS_OK)
		*ps = before;
	return r;
fail:
	free(rtext);
	gs_db_rollback(db);
	*ps = before;
	return r;
}

/*
 * One reference document the feed lists and we lack: fetched by its
 * digest with a signed request, then checked and kept by
 * ag_reference_accept (digest, kind, the whole schema loading).
 */
static int
fetch_document(struct ag_store *st, struct ag_http *http,
    const struct ag_device *dev, int64_t skew, json_t *d,
    const unsigned char digest[32], const char *hex)
{
	struct ag_http_response resp;
	char url[512], what[96];
	int r;

	ag_http_response_init(&resp);
	snprintf(what, sizeof(what), "reference/%s", hex);
	if ((r = signed_path(url, sizeof(url), dev, "GET", what, 0, NULL, 0,
	    skew, "")) != GS_OK)
		goto out;
	/* A document is small: the cap refuses a platform (or anything on
	 * the way) that sends more. */
	ag_http_set_response_cap(http, GS_REFERENCE_MAX);
	r = ag_http_request(http, "GET", url, NULL, NULL, 0, &resp);
	ag_http_set_response_cap(http, 0);
	if (r != GS_OK) {
		/* The transport's message starts with the signed URL: keep
		 * what follows it. */
		const char *m = gs_errmsg(r), *p = strstr(m, "sig=");
		char why[256];

		if (p != NULL && (p = strstr(p, ": ")) != NULL)
			m = p + 2;
		gs_strlcpy(why, m, sizeof(why));
		r = GS_FAIL(r, "reference document %.16s: %s", hex, why);
		goto out;
	}
	if (resp.status != 200) {
		r = answer_error(&resp, "reference document");
		goto out;
	}
	r = ag_reference_accept(st, digest, json_string_value(
	    json_object_get(d, "kind")), json_string_value(json_object_get(d,
	    "name")), (int)json_integer_value(json_object_get(d, "version")),
	    resp.body.data, resp.body.len);
out:
	ag_http_response_release(&resp);
	return r;
}

/*
 * The reference documents the feed lists (forms, code tables published on
 * the platform) that this device lacks.  Every one is tried; the first
 * failure is returned (and kept in meta reference_error for status), a
 * failed document changes nothing and is asked for again next sync.
 */
static int
fetch_reference(struct ag_store *st, struct ag_http *http,
    const struct ag_device *dev, int64_t skew, json_t *ref)
{
	json_t *docs = json_object_get(ref, "documents"), *d;
	unsigned char digest[32];
	char why[300];
	const char *hex;
	size_t i;
	int r, first = GS_OK, have, fetched = 0;

	if (docs == NULL)
		return GS_OK; /* an older platform */
	if (!json_is_array(docs))
		return GS_FAIL(GS_EPROTOCOL, "feed: reference documents are "
		    "not a list");
	why[0] = '\0';
	json_array_foreach(docs, i, d) {
		hex = json_string_value(json_object_get(d, "digest"));
		if (hex == NULL || strlen(hex) != 64 ||
		    gs_hex_decode(digest, sizeof(digest), hex) != GS_OK)
			r = GS_FAIL(GS_EPROTOCOL, "feed: a reference document "
			    "without a digest");
		else if ((r = ag_reference_have(st, digest, &have)) == GS_OK &&
		    !have && (r = fetch_document(st, http, dev, skew, d,
		    digest, hex)) == GS_OK)
			fetched++;
		if (r == GS_ENOMEM)
			return r;
		if (r != GS_OK && first == GS_OK) {
			first = r;
			gs_strlcpy(why, gs_errmsg(r), sizeof(why));
		}
	}
	if (first != GS_OK) {
		/* Not logged here: a one-shot sync ends with it as its one
		 * error line, a --watch says it once a round. */
		(void)ag_store_meta_set(st, "reference_error", why);
		return GS_FAIL(first, "%s", why);
	}
	if (fetched > 0)
		gs_log(GS_LOG_INFO, "%d reference document(s) received",
		    fetched);
	return ag_store_meta_set(st, "reference_error", "");
}

/*
 * One page request: its URL and answer, made on the thread that applies
 * the pages, or on a thread of its own (the next page, asked for while
 * this one is applied: the device's SQLite work and the platform's page
 * building then overlap instead of adding up).
 */
struct fetch {
	struct ag_http *http;
	char url[512];
	struct ag_http_response resp;
	int r;
	int started;
	pthread_t thread;
};

static void *
fetch_main(void *arg)
{
	struct fetch *f = arg;

	f->r = ag_http_request(f->http, "GET", f->url, NULL, NULL, 0,
	    &f->resp);
	return NULL;
}

/* Asks f->http for the page after since: on a thread of its own when
 * ahead (here when no thread can be made); fetch_wait gives the result. */
static void
fetch_start(struct fetch *f, const struct ag_device *dev, uint64_t since,
    int64_t skew, int ahead)
{
	f->started = 0;
	/* Pages come deflated (GS_FEED_DEFLATED): about a sixth of the
	 * bytes; a platform before that sends them plain. */
	if ((f->r = signed_path(f->url, sizeof(f->url), dev, "GET", "pull",
	    since, NULL, 0, skew, "&deflate=1")) != GS_OK)
		return;
	if (ahead && pthread_create(&f->thread, NULL, fetch_main, f) == 0) {
		f->started = 1;
		return;
	}
	(void)fetch_main(f);
}

static int
fetch_wait(struct fetch *f)
{
	if (f->started) {
		(void)pthread_join(f->thread, NULL);
		f->started = 0;
	}
	return f->r;
}

int
ag_pull_run(struct ag_store *st, struct ag_http *http, struct ag_http *ahead,
    const struct ag_device *dev, int progress, int64_t skew,
    struct ag_pull_stats *ps)
{
	struct fetch fx[2];
	struct gs_feed_header h;
	struct gs_buf plain;
	char *cur = NULL;
	uint64_t since = 0;
	json_t *doc = NULL;
	char why[128];
	int r = GS_OK, more = 1, at = 0, i;
	int64_t shown = 0;

	memset(ps, 0, sizeof(*ps));
	memset(fx, 0, sizeof(fx));
	fx[0].http = http;
	fx[1].http = ahead;
	for (i = 0; i < 2; i++)
		ag_http_response_init(&fx[i].resp);
	gs_buf_init_secret(&plain, GS_FEED_MAX);
	if (ag_store_meta_get(st, "pull_cursor", &cur) == GS_OK) {
		since = strtoull(cur, NULL, 10);
		gs_free(cur);
	}
	ag_http_set_response_cap(http, GS_FEED_MAX);
	if (ahead != NULL)
		ag_http_set_response_cap(ahead, GS_FEED_MAX);
	fetch_start(&fx[0], dev, since, skew, 0);
	while (more) {
		struct ag_http_response *resp = &fx[at].resp;

		if ((r = fetch_wait(&fx[at])) != GS_OK)
			break;
		if (resp->status != 200) {
			r = answer_error(resp, "pull");
			break;
		}
		/* Signature, deployment, device, then decryption: nothing of
		 * a feed is believed before it verifies. */
		if ((r = gs_feed_open(&plain, &h, (const unsigned char *)
		    resp->body.data, resp->body.len, dev->deployment,
		    dev->device_id, dev->receipt_pk, dev->sign_sk)) != GS_OK)
			break;
		if (h.since != since) {
			r = GS_FAIL(GS_EPROTOCOL, "feed answers from cursor %"
			    PRIu64 ", asked %" PRIu64, h.since, since);
			break;
		}
		json_decref(doc);
		doc = NULL;
		/* sync/json.c's reader: strict as jansson's with
		 * JSON_REJECT_DUPLICATES, and most of a page's cost was
		 * jansson's parse. */
		if ((r = gs_json_parse(plain.data, plain.len, &doc, why,
		    sizeof(why))) == GS_ENOMEM)
			break;
		if (r != GS_OK || !json_is_object(doc)) {
			r = GS_FAIL(GS_EPROTOCOL, "feed: not a JSON object%s%s",
			    r != GS_OK ? ": " : "", r != GS_OK ? why : "");
			break;
		}
		more = json_is_true(json_object_get(doc, "more")) &&
		    h.cursor > since;
		/* The next page is asked for on the other connection while
		 * this one is applied.  Nothing of it is believed before it
		 * is opened and checked, in its turn, like this one; if this
		 * page fails, it is dropped. */
		if (more && ahead != NULL)
			fetch_start(&fx[1 - at], dev, h.cursor, skew, 1);
		if ((r = apply_page(st, doc, h.cursor, ps)) != GS_OK)
			break;
		ps->pages++;
		/* On a terminal: the line is redrawn four times a second at
		 * most, and once at the end. */
		if (progress && (more || ps->pages > 1) &&
		    (!more || gs_mono_us() - shown >= 250000)) {
			shown = gs_mono_us();
			fprintf(stderr, "\r%s: pull: %lld record(s), %lld "
			    "task(s), %lld review(s) received, %lld page(s)   ",
			    gs_log_program(), (long long)ps->records,
			    (long long)ps->tasks, (long long)ps->reviews,
			    (long long)ps->pages);
			if (!more)
				fputc('\n', stderr);
			fflush(stderr);
		}
		since = h.cursor;
		gs_buf_reset(&plain);
		if (!more)
			break;
		if (ahead != NULL)
			at = 1 - at;
		else
			fetch_start(&fx[at], dev, since, skew, 0);
	}
	/* A page asked for ahead and not used: wait for it, then drop it. */
	for (i = 0; i < 2; i++)
		(void)fetch_wait(&fx[i]);
	ps->cursor = since;
	ag_http_set_response_cap(http, 0);
	if (ahead != NULL)
		ag_http_set_response_cap(ahead, 0);
	/* The feed (signed) lists the reference documents by digest: fetch
	 * the ones we lack. */
	if (r == GS_OK && doc != NULL &&
	    (r = fetch_reference(st, http, dev, skew, json_object_get(doc,
	    "reference"))) != GS_OK)
		ps->reference_error = r;
	json_decref(doc);
	gs_buf_release(&plain);
	for (i = 0; i < 2; i++)
		ag_http_response_release(&fx[i].resp);
	return r;
}

int
ag_pull_sync(struct ag_store *st, struct ag_http *http, struct ag_http *ahead,
    const struct ag_device *dev, int progress, int64_t skew,
    struct ag_pull_stats *ps)
{
	int r;

	memset(ps, 0, sizeof(*ps));
	if (dev->revoked)
		return GS_OK;
	if ((r = ag_heartbeat_send(st, http, dev, skew)) != GS_OK)
		return r;
	/* A locked store cannot seal the personal data of what it would
	 * receive (issue 6): the feed waits, its cursor unmoved. */
	if (ag_store_protected(st) && ag_store_crypt(st) == NULL) {
		gs_log(GS_LOG_INFO, "store locked: pulling waits for 'gridagent "
		    "unlock'");
		return GS_OK;
	}
	if ((r = ag_pull_run(st, http, ahead, dev, progress, skew, ps)) !=
	    GS_OK)
		return r;
	if (ps->records || ps->kept_local || ps->tasks || ps->reviews)
		gs_log(GS_LOG_INFO, "pulled %lld record(s) (%lld kept as "
		    "edited here), %lld task(s), %lld review(s); cursor %"
		    PRIu64, (long long)ps->records, (long long)ps->kept_local,
		    (long long)ps->tasks, (long long)ps->reviews, ps->cursor);
	return GS_OK;
}

int
ag_pull_status(struct ag_store *st, json_t *into)
{
	struct gs_db *db = ag_store_db(st);
	struct gs_stmt *s = NULL;
	json_t *tasks = NULL, *reviews = NULL, *stale = NULL;
	char *cur = NULL, *at = NULL, *ref = NULL, *rerr = NULL;
	int r;

	if ((tasks = json_pack("{s:i,s:i}", "open", 0, "done", 0)) == NULL ||
	    (reviews = json_object()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "status");
		goto out;
	}
	if ((r = gs_stmt_prepare(db, "SELECT status, count(*) FROM task "
	    "GROUP BY status", &s)) != GS_OK)
		goto out;
	while ((r = gs_stmt_step(s)) == GS_ROW)
		(void)json_object_set_new(tasks, gs_stmt_text(s, 0),
		    json_integer(gs_stmt_int64(s, 1)));
	gs_stmt_finalize(s);
	if ((r = gs_stmt_prepare(db, "SELECT state, count(*) FROM review "
	    "GROUP BY state", &s)) != GS_OK)
		goto out;
	while ((r = gs_stmt_step(s)) == GS_ROW)
		(void)json_object_set_new(reviews, gs_stmt_text(s, 0),
		    json_integer(gs_stmt_int64(s, 1)));
	gs_stmt_finalize(s);
	(void)ag_store_meta_get(st, "pull_cursor", &cur);
	(void)ag_store_meta_get(st, "pull_at", &at);
	/* Stale reference data (forms, code tables) is shown, not hidden:
	 * the worker's device must be updated to collect what the platform
	 * now expects. */
	if (ag_store_meta_get(st, "reference", &ref) == GS_OK) {
		json_error_t jerr;
		json_t *pr = json_loads(ref, 0, &jerr);

		stale = pr != NULL ? gs_feed_reference_diff(ag_store_schema(st),
		    pr) : NULL;
		json_decref(pr);
	}
	if (json_object_set(into, "tasks", tasks) != 0 ||
	    json_object_set(into, "reviews", reviews) != 0 ||
	    json_object_set_new(into, "pull", json_pack("{s:I,s:I}", "cursor",
	    (json_int_t)(cur ? strtoll(cur, NULL, 10) : 0), "at",
	    (json_int_t)(at ? strtoll(at, NULL, 10) : 0))) != 0 ||
	    (stale != NULL && json_object_set(into, "reference_stale", stale)
	    != 0) ||
	    (ag_store_meta_get(st, "reference_error", &rerr) == GS_OK &&
	    *rerr != '\0' && json_object_set_new(into, "reference_error",
	    json_string(rerr)) != 0)) {
		r = GS_FAIL(GS_ENOMEM, "status");
		goto out;
	}
	r = GS_OK;
out:
	gs_free(cur);
	gs_free(at);
	gs_free(ref);
	gs_free(rerr);
	json_decref(stale);
	json_decref(tasks);
	json_decref(reviews);
	return r;
}
