/*
 * pull.c - the device-facing half of reconciliation:
 *
 *	POST /v1/devices/{id}/heartbeat?t=MS&sig=HEX        what the device
 *	     says about itself (JSON body), kept for `reconcile`
 *	GET  /v1/devices/{id}/pull?since=N&t=MS&sig=HEX     the feed: records
 *	     of the worker's grids changed by others or admins, tasks,
 *	     review verdicts, reference-data versions (&deflate=1:
 *	     compressed, for devices that read that)
 *
 * Both are authenticated with the device's key (GSQ1, sync/feed.h): a
 * request is believed only if its signature verifies with the enrolled
 * key and its time is within GS_REQ_WINDOW_MS of ours.  A pull is
 * answered with a GSF1 feed signed by the receipt key and sealed to the
 * device, so only that device can read the residents' data in it.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "batch.h"
#include "crypto.h"
#include "db.h"
#include "feed.h"
#include "json.h"
#include "http.h"
#include "recon.h"
#include "reference.h"
#include "schema.h"
#include "core/banned.h"

#define PULL_PAGE 200         /* feed items per page */
#define HEARTBEAT_MAX 4096    /* heartbeat body bytes */
#define PULL_BYTES (8u << 20) /* JSON bytes per page (items) */

const char *
pf_path_device(const char *path, char dev[33])
{
	static const char p1[] = "/v1/devices/";
	size_t i;

	if (strncmp(path, p1, sizeof(p1) - 1) != 0)
		return NULL;
	path += sizeof(p1) - 1;
	/* Any 32 characters: whether they are lower-case hex is checked
	 * once, for every device route, by api.c (400, not 404). */
	for (i = 0; i < 32; i++)
		if (path[i] == '\0' || path[i] == '/')
			return NULL;
	memcpy(dev, path, 32);
	dev[32] = '\0';
	return path + 32;
}

int
pf_recon_match(const char *path, char *dev, int *pull)
{
	char id[33];
	const char *rest = pf_path_device(path, id);

	if (rest == NULL)
		return 0;
	if (strcmp(rest, "/pull") == 0)
		*pull = 1;
	else if (strcmp(rest, "/heartbeat") == 0)
		*pull = 0;
	else
		return 0;
	memcpy(dev, id, sizeof(id));
	return 1;
}

size_t
pf_recon_body_max(const char *method, int pull)
{
	return !pull && strcmp(method, "POST") == 0 ? HEARTBEAT_MAX : 0;
}

/* A decimal query parameter (u64 / i64). */
static int
query_num(const struct pf_request *req, const char *name, int64_t *out)
{
	const char *v = req->query(req, name);
	char *end = NULL;
	long long n;

	if (v == NULL || *v == '\0')
		return GS_FAIL(GS_EINVAL, "the request needs ?%s=", name);
	n = strtoll(v, &end, 10);
	if (*end != '\0' || n < 0)
		return GS_FAIL(GS_EINVAL, "?%s= is not a number", name);
	*out = n;
	return GS_OK;
}

/*
 * Authenticates a device request: device known, time in the window,
 * GSQ1 signature.  Fills *d.  Locks are the caller's business: reads
 * with the reader handle.
 */
static int
authenticate(struct pf_platform *pf, const struct pf_request *req,
    const char *dev_hex, int64_t since, struct pf_device *d, int64_t *t)
{
	unsigned char id[16], sig[64];
	const char *sh = req->query(req, "sig");
	int64_t now = gs_now_ms();
	int r;

	if (gs_hex_decode(id, sizeof(id), dev_hex) != GS_OK)
		return GS_FAIL(GS_EINVAL, "bad device id");
	if ((r = query_num(req, "t", t)) != GS_OK)
		return r;
	if (sh == NULL || gs_hex_decode(sig, sizeof(sig), sh) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "the request needs ?sig= (128 hex "
		    "digits)");
	(void)pthread_mutex_lock(&pf->read_lock);
	r = pf->reader->ops->device_get(pf->reader, id, d);
	(void)pthread_mutex_unlock(&pf->read_lock);
	if (r == GS_ENOTFOUND)
		return GS_FAIL(GS_EUNKNOWNDEVICE, "device %s is not enrolled "
		    "here", dev_hex);
	if (r != GS_OK)
		return r;
	if (gs_req_verify(sig, req->method, req->path, (uint64_t)since, *t,
	    req->body, req->body_len, d->pk) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "request signature does not verify "
		    "with the device's enrolled key");
	/* After the signature: an old request cannot be replayed later. */
	if (*t < now - GS_REQ_WINDOW_MS || *t > now + GS_REQ_WINDOW_MS)
		return GS_FAIL(GS_EBADSIG, "request time is more than %d s "
		    "away from the platform's clock", GS_REQ_WINDOW_MS / 1000);
	return GS_OK;
}

int
pf_recon_authenticate(struct pf_platform *pf, const struct pf_request *req,
    const char *dev_hex, struct pf_device *d)
{
	int64_t t;

	return authenticate(pf, req, dev_hex, 0, d, &t);
}

static int
hb_int(json_t *o, const char *k, int64_t *out)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return GS_FAIL(GS_EINVAL, "heartbeat: %s must be a "
		    "non-negative integer", k);
	*out = json_integer_value(v);
	return GS_OK;
}

static int
heartbeat(struct pf_platform *pf, const struct pf_request *req,
    const char *dev_hex)
{
	struct pf_device d;
	json_t *o = NULL;
	json_error_t jerr;
	int64_t t = 0, v[7];
	static const char *const keys[7] = { "unsent", "outbox", "last_seq",
		"acked_seq", "rejected", "quarantined", "free_bytes" };
	unsigned char head[32];
	const char *hh, *ver;
	struct gs_stmt *s;
	int r, i, has_head = 0;

	if ((r = authenticate(pf, req, dev_hex, 0, &d, &t)) != GS_OK)
		return r;
	if (req->body == NULL || (o = json_loadb((const char *)req->body,
	    req->body_len, 0, &jerr)) == NULL || !json_is_object(o)) {
		r = GS_FAIL(GS_EPARSE, "heartbeat body is not a JSON object");
		goto out;
	}
	for (i = 0; i < 7; i++)
		if ((r = hb_int(o, keys[i], &v[i])) != GS_OK)
			goto out;
	hh = json_string_value(json_object_get(o, "chain_head"));
	/* Printed by reconcile to an admin's terminal: plain text only (an
	 * escape sequence from a device must not reach it). */
	ver = json_string_value(json_object_get(o, "version"));
	if (ver == NULL || gs_batch_check_label("heartbeat: version", ver,
	    63) != GS_OK) {
		r = GS_FAIL(GS_EINVAL, "heartbeat: version must be a short "
		    "string without control characters, quotes or "
		    "backslashes");
		goto out;
	}
	if (hh != NULL && *hh != '\0') {
		if (gs_hex_decode(head, sizeof(head), hh) != GS_OK) {
			r = GS_FAIL(GS_EINVAL, "heartbeat: chain_head must be "
			    "64 hex digits");
			goto out;
		}
		has_head = 1;
	}
	(void)pthread_mutex_lock(&pf->lock);
	if ((r = pf_recon_stmt(pf->store, PQ_HB_PUT, &s)) == GS_OK) {
		if ((r = gs_stmt_bind_blob(s, 1, d.id, 16)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 2, gs_now_ms())) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 3, t)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 4, v[0])) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 5, v[1])) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 6, v[2])) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 7, v[3])) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 8, v[4])) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 9, v[5])) != GS_OK ||
		    (r = has_head ? gs_stmt_bind_blob(s, 10, head, 32) :
		    gs_stmt_bind_null(s, 10)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 11, ver)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 12, v[6])) != GS_OK ||
		    (r = gs_stmt_bind_textn(s, 13, (const char *)req->body,
		    req->body_len)) != GS_OK)
			gs_stmt_reset(s);
		else if ((r = gs_stmt_step(s)) == GS_DONE)
			r = pf->store->ops->device_touch(pf->store, d.id,
			    gs_now_ms());
	}
	(void)pthread_mutex_unlock(&pf->lock);
out:
	json_decref(o);
	return r;
}

void
pf_api_heartbeat(struct pf_platform *pf, const struct pf_request *req,
    const char *dev, struct pf_response *resp)
{
	int r = heartbeat(pf, req, dev);

	if (r != GS_OK) {
		gs_log(GS_LOG_INFO, "heartbeat of device %s refused: %s: %s",
		    dev, gs_error_code(r), gs_errmsg(r));
		pf_http_error(resp, r, NULL);
		return;
	}
	(void)gs_buf_puts(&resp->body, "{\"status\":\"ok\"}\n");
	resp->status = 200;
	resp->content_type = "application/json";
}

/* Appends s (a column's text) as a JSON string, or null for NULL when
 * nullable; a NULL that is not nullable is a damaged row. */
static int
put_str(struct gs_buf *b, const char *s, int nullable)
{
	if (s == NULL)
		return nullable ? gs_buf_puts(b, "null") :
		    GS_FAIL(GS_ECORRUPT, "feed item: a column is empty");
	return gs_batch_put_string(b, s, strlen(s));
}

/* Appends a jansson value's compact text and drops the value (NULL:
 * out of memory, from the json_pack that made it). */
static int
put_json(struct gs_buf *b, json_t *o)
{
	char *t;
	int r;

	if (o == NULL)
		return GS_FAIL(GS_ENOMEM, "feed item");
	t = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(o);
	if (t == NULL)
		return GS_FAIL(GS_ENOMEM, "feed item");
	r = gs_buf_puts(b, t);
	free(t);
	return r;
}

/*
 * Appends a record's stored fields text as a JSON value.  The text is
 * what ingest wrote, in the encoder's spelling: when gs_json_plain_object
 * says so (one pass, no allocation) it goes into the page as it is, which
 * spares parsing it into jansson values and writing them out again (most
 * of building a page).  Anything else is parsed and written again, and
 * text that does not parse is null, as before.
 */
static int
put_fields(struct gs_buf *b, const char *text)
{
	struct gs_json_span m[128];
	json_error_t e;
	json_t *o;
	size_t n, len;

	if (text == NULL)
		return gs_buf_puts(b, "null");
	len = strlen(text);
	if (gs_json_plain_object(text, len, m, sizeof(m) / sizeof(m[0]), &n))
		return gs_buf_append(b, text, len);
	if ((o = json_loads(text, 0, &e)) == NULL)
		return gs_buf_puts(b, "null");
	return put_json(b, o);
}

/* A record item, written as text from its row (PQ_FEED_REC). */
static int
put_record(struct gs_buf *b, struct gs_stmt *s, int64_t seq, const char *uuid,
    int64_t rev)
{
	int r;

	if ((r = gs_buf_printf(b, "{\"kind\":\"record\",\"seq\":%lld,"
	    "\"uuid\":", (long long)seq)) != GS_OK ||
	    (r = put_str(b, uuid, 0)) != GS_OK ||
	    (r = gs_buf_printf(b, ",\"rev\":%lld,\"type\":",
	    (long long)rev)) != GS_OK ||
	    (r = put_str(b, gs_stmt_text(s, 0), 0)) != GS_OK ||
	    (r = gs_buf_printf(b, ",\"form_version\":%lld,\"grid\":",
	    (long long)gs_stmt_int64(s, 1))) != GS_OK ||
	    (r = put_str(b, gs_stmt_text(s, 2), 0)) != GS_OK ||
	    (r = gs_buf_puts(b, ",\"fields\":")) != GS_OK ||
	    (r = put_fields(b, gs_stmt_text(s, 3))) != GS_OK ||
	    (r = gs_buf_printf(b, ",\"deleted\":%s,\"author\":",
	    gs_stmt_int64(s, 4) ? "true" : "false")) != GS_OK ||
	    (r = put_str(b, gs_stmt_text(s, 5), 0)) != GS_OK ||
	    (r = gs_buf_printf(b, ",\"created_at\":%lld,\"updated_at\":%lld,"
	    "\"by_admin\":", (long long)gs_stmt_int64(s, 6),
	    (long long)gs_stmt_int64(s, 7))) != GS_OK ||
	    (r = put_str(b, gs_stmt_text(s, 8), 1)) != GS_OK)
		return r;
	return gs_buf_putc(b, '}');
}

/*
 * Appends one feed item from a feed row to b as JSON text.  *gone when
 * what the row names is not there any more (nothing appended: skip it).
 * On failure b->len is as before.
 */
static int
feed_item(struct pf_store *st, struct gs_buf *b, int64_t seq,
    const char *kind, const char *ref, int64_t rev, int *gone)
{
	struct gs_stmt *s;
	size_t before = b->len;
	int r;

	*gone = 0;
	if (strcmp(kind, "record") == 0) {
		if ((r = pf_recon_stmt(st, PQ_FEED_REC, &s)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 1, ref)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 2, rev)) != GS_OK)
			return r;
		if ((r = gs_stmt_step(s)) == GS_ROW)
			r = put_record(b, s, seq, ref, rev);
	} else if (strcmp(kind, "task") == 0) {
		if ((r = pf_recon_stmt(st, PQ_FEED_TASK, &s)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 1, ref)) != GS_OK)
			return r;
		if ((r = gs_stmt_step(s)) == GS_ROW)
			r = put_json(b, json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s,"
			    "s:s,s:I,s:s}", "kind", "task", "seq",
			    (json_int_t)seq, "id", gs_stmt_text(s, 0),
			    "task_kind", gs_stmt_text(s, 1), "subject",
			    gs_stmt_text(s, 2), "due", gs_stmt_text(s, 3),
			    "title", gs_stmt_text(s, 4), "status",
			    gs_stmt_text(s, 5), "created_at",
			    (json_int_t)gs_stmt_int64(s, 6), "closed_by",
			    gs_stmt_text(s, 7)));
	} else {
		if ((r = pf_recon_stmt(st, PQ_FEED_REVIEW, &s)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 1, strtoll(ref, NULL, 10)))
		    != GS_OK)
			return r;
		if ((r = gs_stmt_step(s)) == GS_ROW)
			r = put_json(b, json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:I}",
			    "kind", "review", "seq", (json_int_t)seq, "uuid",
			    gs_stmt_text(s, 0), "state", gs_stmt_text(s, 1),
			    "comment", gs_stmt_text(s, 2), "by",
			    gs_stmt_text(s, 3), "at",
			    (json_int_t)gs_stmt_int64(s, 4)));
	}
	if (r == GS_DONE) {
		*gone = 1;
		return GS_OK;
	}
	gs_stmt_reset(s);
	if (r != GS_OK)
		b->len = before;
	return r;
}

/* The reference data the device should hold: form versions, code table
 * digests (sync/feed.c), the published documents by digest (for GET
 * .../reference/{digest}: the signed feed vouches for each digest), and
 * our version. */
static json_t *
reference(struct pf_platform *pf)
{
	json_t *r = gs_feed_reference(pf_schema(pf));

	if (r != NULL && (json_object_set_new(r, "platform_version",
	    json_string(PF_VERSION)) != 0 || json_object_set_new(r,
	    "documents", pf_reference_docs(pf)) != 0)) {
		json_decref(r);
		return NULL;
	}
	return r;
}

/* One feed row a page may list. */
struct feed_row {
	int64_t seq, rev;
	char *kind, *ref;
};

struct feed_rows {
	struct feed_row *v;
	size_t n, cap;
};

/* Appends one item to rows: ref is its n bytes. */
static int
item_add(struct feed_rows *rows, int64_t seq, const char *kind,
    const char *ref, size_t n, int64_t rev)
{
	struct feed_row *w;
	void *p;
	size_t cap;

	if (rows->n == rows->cap) {
		cap = rows->cap ? rows->cap * 2 : 2 * (PULL_PAGE + 1);
		if ((p = gs_realloc(rows->v, cap * sizeof(*rows->v))) == NULL)
			return GS_FAIL(GS_ENOMEM, "feed");
		rows->v = p;
		rows->cap = cap;
	}
	w = &rows->v[rows->n];
	w->seq = seq;
	w->rev = rev;
	w->kind = gs_strdup(kind);
	w->ref = gs_strndup(ref, n);
	if (w->kind == NULL || w->ref == NULL) {
		gs_free(w->kind);
		gs_free(w->ref);
		return GS_FAIL(GS_ENOMEM, "feed");
	}
	rows->n++;
	return GS_OK;
}

/*
 * Appends the items of the rows of s (bound; each source asks for at
 * most PULL_PAGE + 1 rows) after since to rows, at most PULL_PAGE + 1 of
 * them: a page needs no more of one source.  A record row whose ref
 * lists uuids, comma-separated, is a run of creations (platform 0013,
 * store_sqlite.c feed_flush): n items, the row's seq the last of
 * theirs, each what a row of its own said (kind, rev); those at or
 * before since were on an earlier page.
 */
static int
rows_add(struct gs_stmt *s, int64_t since, struct feed_rows *rows)
{
	const char *kind, *ref, *c, *e;
	size_t from = rows->n, k, n;
	int64_t seq, rev, at;
	int r = GS_DONE, err;

	while (rows->n - from <= PULL_PAGE) {
		if ((r = gs_stmt_step(s)) != GS_ROW)
			break;
		seq = gs_stmt_int64(s, 0);
		kind = gs_stmt_text(s, 1);
		ref = gs_stmt_text(s, 2);
		rev = gs_stmt_int64(s, 3);
		if (kind == NULL || ref == NULL) {
			err = GS_FAIL(GS_ECORRUPT, "feed row %lld: no kind or "
			    "ref", (long long)seq);
			goto fail;
		}
		if (strcmp(kind, "record") != 0 || strchr(ref, ',') == NULL) {
			if ((err = item_add(rows, seq, kind, ref, strlen(ref),
			    rev)) != GS_OK)
				goto fail;
			continue;
		}
		for (n = 1, c = ref; (c = strchr(c, ',')) != NULL; c++)
			n++;
		if ((int64_t)n > seq) {
			err = GS_FAIL(GS_ECORRUPT, "feed row %lld lists %zu "
			    "items", (long long)seq, n);
			goto fail;
		}
		for (k = 0, c = ref; k < n && rows->n - from <= PULL_PAGE;
		    k++, c = e + 1) {
			if ((e = strchr(c, ',')) == NULL)
				e = c + strlen(c);
			if (e == c) {
				err = GS_FAIL(GS_ECORRUPT, "feed row %lld: an "
				    "empty item", (long long)seq);
				goto fail;
			}
			/* The k-th of n items: seq - (n - 1 - k). */
			at = seq - (int64_t)(n - 1 - k);
			if (at > since && (err = item_add(rows, at, kind, c,
			    (size_t)(e - c), rev)) != GS_OK)
				goto fail;
		}
	}
	if (r == GS_ROW) {
		/* Enough items: the rest of the rows are not needed. */
		gs_stmt_reset(s);
		return GS_OK;
	}
	return r == GS_DONE ? GS_OK : r;
fail:
	gs_stmt_reset(s);
	return err;
}

static int
row_cmp(const void *a_, const void *b_)
{
	const struct feed_row *a = a_, *b = b_;

	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/*
 * The rows after since up to top that the device hears, in feed order,
 * at most PULL_PAGE + 1 of them: the records of each grid of its worker
 * and the tasks and reviews of the worker, one query per source, each in
 * its index's order and stopped by its LIMIT, merged here.  One query
 * with an OR of the sources gathered every matching row up to top and
 * sorted them all for each page: a new device's pull of a 100,000-record
 * grid cost the platform 21 ms a page, 10.6 s in all.
 */
static int
feed_rows(struct pf_store *rd, const struct pf_device *d, int64_t since,
    int64_t top, struct feed_rows *rows)
{
	struct gs_stmt *s;
	char **grids = NULL;
	size_t ng = 0, cap = 0, i;
	void *p;
	int r;

	if ((r = pf_recon_stmt(rd, PQ_FEED_GRIDS, &s)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 1, d->worker)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if (ng == cap) {
			cap = cap ? cap * 2 : 4;
			if ((p = gs_realloc(grids, cap * sizeof(*grids))) ==
			    NULL) {
				gs_stmt_reset(s);
				r = GS_FAIL(GS_ENOMEM, "feed");
				goto out;
			}
			grids = p;
		}
		if ((grids[ng] = gs_strdup(gs_stmt_text(s, 0))) == NULL) {
			gs_stmt_reset(s);
			r = GS_FAIL(GS_ENOMEM, "feed");
			goto out;
		}
		ng++;
	}
	if (r != GS_DONE)
		goto out;
	for (i = 0; i < ng; i++)
		if ((r = pf_recon_stmt(rd, PQ_FEED_GRID, &s)) != GS_OK ||
		    (r = gs_stmt_bind_text(s, 1, grids[i])) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 2, since)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 3, top)) != GS_OK ||
		    (r = gs_stmt_bind_blob(s, 4, d->id, 16)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 5, !d->chain_ok)) != GS_OK ||
		    (r = gs_stmt_bind_int64(s, 6, PULL_PAGE + 1)) != GS_OK ||
		    (r = rows_add(s, since, rows)) != GS_OK)
			goto out;
	if ((r = pf_recon_stmt(rd, PQ_FEED_WORKER, &s)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 1, d->worker)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, since)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, top)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, PULL_PAGE + 1)) != GS_OK ||
	    (r = rows_add(s, since, rows)) != GS_OK)
		goto out;
	/* A row is in one source only (its grid, or its worker). */
	if (rows->n > 1)
		qsort(rows->v, rows->n, sizeof(*rows->v), row_cmp);
	r = GS_OK;
out:
	for (i = 0; i < ng; i++)
		gs_free(grids[i]);
	gs_free(grids);
	return r;
}

/*
 * The page after `since` as JSON text, into text (which it resets):
 *   {"v":1,"since":S,"cursor":C,"more":B,"items":[...],"reference":{...}}
 * The items are written as text (feed_item), the rest around them.
 */
static int
page(struct pf_platform *pf, const struct pf_device *d, int64_t since,
    struct gs_buf *text, int64_t *cursor)
{
	struct gs_stmt *s;
	struct feed_rows rows = { 0 };
	struct gs_buf items;
	char *ref = NULL;
	int r, gone, more = 0;
	int64_t top = 0;
	size_t i, n = 0, mark, budget = PULL_BYTES;
	const char *env = getenv("GRIDPLATFORM_PULL_BYTES");
	uint64_t v;

	/* Tests make pages small to see the byte budget work. */
	if (env != NULL && gs_parse_u64(env, PULL_BYTES, &v) == GS_OK && v > 0)
		budget = (size_t)v;
	*cursor = since;
	gs_buf_reset(text);
	gs_buf_init_secret(&items, GS_FEED_MAX);
	/*
	 * Pages are read on the reader connection, which sees what is
	 * committed: a pull never waits behind a batch transaction on the
	 * writer (with 200 devices syncing at once, pulls queued behind
	 * ingest and each other on the writer's lock).
	 */
	(void)pthread_mutex_lock(&pf->read_lock);
	/*
	 * The newest seq first, then the page up to it.  Feed rows are
	 * numbered in commit order (one writer at a time), so every row up
	 * to top is committed, and the page's queries, whose snapshots are
	 * no older, see them all.  A page that is not full has looked at
	 * every row up to top, so its cursor moves there even when none of
	 * them is for this device.  Before, a device alone in its grid,
	 * which hears none of its own fast-forwards, kept its cursor where
	 * its last task or verdict had left it, and every pull walked all
	 * of its own rows since: 40 ms a pull after 100,000 records, and
	 * growing with every record it sent.
	 */
	if ((r = pf_recon_stmt(pf->reader, PQ_FEED_TOP, &s)) != GS_OK ||
	    (r = gs_stmt_one_int64(s, 0, &top)) != GS_OK ||
	    (r = feed_rows(pf->reader, d, since, top, &rows)) != GS_OK)
		goto unlock;
	n = rows.n;
	if (n > PULL_PAGE) {
		more = 1;
		n = PULL_PAGE;
	}
	for (i = 0; i < n; i++) {
		const struct feed_row *w = &rows.v[i];

		mark = items.len;
		if (mark > 0 && (r = gs_buf_putc(&items, ',')) != GS_OK)
			goto unlock;
		if ((r = feed_item(pf->reader, &items, w->seq, w->kind, w->ref,
		    w->rev, &gone)) != GS_OK)
			goto unlock;
		if (gone) {
			items.len = mark;
		} else if (mark > 0 && items.len > budget) {
			/* A byte budget besides the item count: big records
			 * must not make a page that can never be sealed (and
			 * so block the device's feed for good).  One item
			 * always fits. */
			items.len = mark;
			more = 1;
			break;
		}
		*cursor = w->seq;
	}
	if (!more && top > *cursor)
		*cursor = top;
unlock:
	(void)pthread_mutex_unlock(&pf->read_lock);
	for (i = 0; i < rows.n; i++) {
		gs_free(rows.v[i].kind);
		gs_free(rows.v[i].ref);
	}
	gs_free(rows.v);
	if (r != GS_OK)
		goto out;
	{
		json_t *o = reference(pf);

		ref = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
	}
	if (ref == NULL) {
		r = GS_FAIL(GS_ENOMEM, "feed");
		goto out;
	}
	if ((r = gs_buf_printf(text, "{\"v\":1,\"since\":%lld,\"cursor\":%lld,"
	    "\"more\":%s,\"items\":[", (long long)since, (long long)*cursor,
	    more ? "true" : "false")) == GS_OK &&
	    (r = gs_buf_append(text, items.data, items.len)) == GS_OK &&
	    (r = gs_buf_puts(text, "],\"reference\":")) == GS_OK &&
	    (r = gs_buf_puts(text, ref)) == GS_OK)
		r = gs_buf_putc(text, '}');
out:
	free(ref);
	/* The items hold personal data: items is secret, wiped. */
	gs_buf_release(&items);
	return r;
}

void
pf_api_pull(struct pf_platform *pf, const struct pf_request *req,
    const char *dev, struct pf_response *resp)
{
	struct pf_device d;
	struct gs_feed_header h;
	int64_t since = 0, t = 0, cursor = 0;
	const char *z = req->query(req, "deflate");
	struct gs_buf text;
	int r;

	gs_buf_init_secret(&text, GS_FEED_MAX);
	if ((r = query_num(req, "since", &since)) != GS_OK ||
	    (r = authenticate(pf, req, dev, since, &d, &t)) != GS_OK)
		goto out;
	/* deflate=1: the device reads deflated pages (PROTOCOL.md 9.4).
	 * Not signed: taking it away only costs bytes. */
	if (z != NULL && strcmp(z, "0") != 0 && strcmp(z, "1") != 0) {
		r = GS_FAIL(GS_EINVAL, "?deflate= is 0 or 1");
		goto out;
	}
	/* Reference data published since we loaded ours (by `gridplatform
	 * reference add` in another process): the feed must list it, and
	 * ingest must know the form versions the device will use. */
	if ((r = pf_reference_refresh(pf)) != GS_OK)
		gs_log(GS_LOG_WARNING, "reference data not reloaded: %s",
		    gs_errmsg(r));
	/* A revoked device hears nothing more (its data stays with us). */
	if (d.revoked) {
		r = GS_FAIL(GS_EREVOKED, "device has been revoked");
		goto out;
	}
	if ((r = page(pf, &d, since, &text, &cursor)) != GS_OK)
		goto out;
	memset(&h, 0, sizeof(h));
	if (z != NULL && strcmp(z, "1") == 0)
		h.flags = GS_FEED_DEFLATED;
	memcpy(h.deployment, pf->keys.deployment, 16);
	memcpy(h.device, d.id, 16);
	h.since = (uint64_t)since;
	h.cursor = (uint64_t)cursor;
	h.created_at = gs_now_ms();
	if ((r = gs_feed_seal(&resp->body, &h, text.data, text.len, d.pk,
	    pf->keys.receipt_sk)) != GS_OK)
		goto out;
	resp->status = 200;
	resp->content_type = "application/octet-stream";
out:
	/* The page holds personal data: text is secret, wiped. */
	gs_buf_release(&text);
	if (r != GS_OK) {
		gs_log(GS_LOG_INFO, "pull of device %s refused: %s: %s", dev,
		    gs_error_code(r), gs_errmsg(r));
		gs_buf_reset(&resp->body);
		pf_http_error(resp, r, NULL);
	}
}
