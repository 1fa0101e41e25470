/*
 * api.c - the routes of the platform's HTTP API (docs/PROTOCOL.md
 * section 6), on top of http.c (which knows nothing of routes) and
 * ingest.c / enroll.c (which know nothing of HTTP).
 *
 *	GET  /v1/health
 *	GET  /v1/keys                              (root.c)
 *	POST /v1/enroll
 *	PUT  /v1/devices/{device hex}/batches/{batch hex}
 *	POST /v1/devices/{device hex}/rekey        (rekey.c)
 *	POST /v1/devices/{device hex}/heartbeat    (pull.c, device-signed)
 *	GET  /v1/devices/{device hex}/pull         (pull.c, device-signed)
 *	GET  /v1/devices/{device hex}/reference/{digest hex} (reference.c)
 *	GET, PUT /v1/devices/{device hex}/attachments/{hash hex} (attachments.c)
 *
 * An unknown path is 404 not_found; a known path with another method is
 * 405 method_not_allowed; both are answered without reading a body.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "api.h"
#include "attachments.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "enrollment.h"
#include "ingest.h"
#include "recon.h"
#include "reference.h"
#include "core/banned.h"

enum route {
	R_NONE = 0,
	R_HEALTH,
	R_ENROLL,
	R_BATCH
};

/* "/v1/devices/<32 hex>/batches/<32 hex>": copies the two ids. */
static int
match_batch(const char *path, char *dev, char *batch)
{
	static const char p1[] = "/v1/devices/", p2[] = "/batches/";
	size_t i;

	if (strncmp(path, p1, sizeof(p1) - 1) != 0)
		return 0;
	path += sizeof(p1) - 1;
	for (i = 0; i < 32; i++)
		if (path[i] == '\0' || path[i] == '/')
			return 0;
	if (strncmp(path + 32, p2, sizeof(p2) - 1) != 0)
		return 0;
	memcpy(dev, path, 32);
	dev[32] = '\0';
	path += 32 + sizeof(p2) - 1;
	if (strlen(path) != 32)
		return 0;
	memcpy(batch, path, 33);
	return 1;
}

static enum route
route_of(const char *path, char *dev, char *batch)
{
	if (strcmp(path, "/v1/health") == 0)
		return R_HEALTH;
	if (strcmp(path, "/v1/enroll") == 0)
		return R_ENROLL;
	if (match_batch(path, dev, batch))
		return R_BATCH;
	return R_NONE;
}

static const char *const route_method[] = {
	[R_HEALTH] = "GET",
	[R_ENROLL] = "POST",
	[R_BATCH] = "PUT",
};

/*
 * Ids in a path are lower-case hex (docs/PROTOCOL.md section 6): on every
 * device route an id of the right length spelled otherwise (upper case
 * included) is 400 invalid_argument, the same answer everywhere.  (Some
 * routes took upper case, others answered 404.)  b may be NULL.  1 when
 * refused (the answer is set).
 */
static int
ids_refused(struct pf_response *resp, const char *a, size_t alen,
    const char *b, size_t blen)
{
	if (gs_hex_is_lower(a, alen) && (b == NULL || gs_hex_is_lower(b,
	    blen)))
		return 0;
	pf_http_error(resp, GS_EINVAL, "ids in a path are lower-case hex "
	    "(32 digits for a device or batch, 64 for a hash)");
	return 1;
}

static size_t
body_max(void *ctx, const char *method, const char *path)
{
	struct pf_platform *pf = ctx;
	char dev[33], batch[33], adev[33], ahash[65];
	enum route rt = route_of(path, dev, batch);
	int pull;

	/* Attachment chunks have their own cap (attachments.c). */
	if (pf_att_match(path, adev, ahash))
		return pf_att_body_max(method);
	/* Device key rotation (rekey.c): a small JSON body. */
	if (pf_rekey_match(path, adev))
		return strcmp(method, "POST") == 0 ? 1024 : 0;
	/* Heartbeat and pull (pull.c). */
	if (pf_recon_match(path, adev, &pull))
		return pf_recon_body_max(method, pull);
	if (rt == R_NONE || strcmp(method, route_method[rt]) != 0)
		return 0;
	if (rt == R_ENROLL)
		return PF_ENROLL_BODY_MAX;
	if (rt == R_BATCH)
		return pf->limits.max_envelope;
	return 0;
}

/* Serializes o into the response body with the status. */
static void
send_json(struct pf_response *resp, int status, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s == NULL || gs_buf_puts(&resp->body, s) != GS_OK ||
	    gs_buf_putc(&resp->body, '\n') != GS_OK) {
		free(s);
		pf_http_error(resp, GS_ENOMEM, NULL);
		return;
	}
	free(s);
	resp->status = status;
	resp->content_type = "application/json";
}

static void
health(struct pf_platform *pf, struct pf_response *resp)
{
	char dep[33];
	json_t *o;

	/* A newer key bundle issued by `keys rotate` since we started
	 * (root.c): devices take it from this answer. */
	(void)pf_root_refresh(pf);
	gs_hex_encode(dep, pf->keys.deployment, sizeof(pf->keys.deployment));
	o = json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "status", "ok",
	    "deployment", dep, "time", (json_int_t)gs_now_ms(), "version",
	    PF_VERSION, "limits", pf_limits_json(pf), "keys",
	    pf_root_keys_json(pf));
	if (o == NULL) {
		pf_http_error(resp, GS_ENOMEM, NULL);
		return;
	}
	send_json(resp, 200, o);
	json_decref(o);
}

static void
enroll(struct pf_platform *pf, const struct pf_request *req,
    struct pf_response *resp)
{
	json_t *answer = NULL;
	int r;

	r = pf_enroll_redeem(pf, req->ip, req->body, req->body_len, &answer);
	if (r != GS_OK) {
		pf_http_error(resp, r, NULL);
		return;
	}
	send_json(resp, 200, answer);
	json_decref(answer);
}

static void
batch(struct pf_platform *pf, const struct pf_request *req, const char *dev,
    const char *bid, struct pf_response *resp)
{
	struct pf_ingest_result res;
	char hex[2 * GS_RECEIPT_BYTES + 1];
	const char *fq = req->query(req, "follows");
	uint64_t follows = 0;
	json_t *o;
	int r;

	memset(&res, 0, sizeof(res));
	/* ?follows=SEQ: sent before batch SEQ was answered (docs/PROTOCOL.md
	 * section 6). */
	if (fq != NULL && (gs_parse_u64(fq, INT64_MAX, &follows) != GS_OK ||
	    follows == 0))
		r = GS_FAIL(GS_EINVAL, "follows must be a seq, 1 or more");
	else
		r = pf_ingest_batch_follows(pf, dev, bid, req->body,
		    req->body_len, follows, &res);
	if (r != GS_OK) {
		/* Refusals of a peer (forged, foreign, unknown, replayed) are
		 * an audit trail; other failures are the usual noise. */
		gs_log(gs_error_class(r) == GS_CLASS_REFUSE ? GS_LOG_WARNING :
		    GS_LOG_INFO, "batch %s from device %s (%s) refused: %s: %s",
		    bid, dev, req->ip, gs_error_code(r), gs_errmsg(r));
		pf_http_error(resp, r, NULL);
		return;
	}
	gs_hex_encode(hex, res.receipt, sizeof(res.receipt));
	if (res.http_status == 403)
		/* Revoked: the error shape, plus the receipt that lets the
		 * device stop re-sending. */
		o = json_pack("{s:{s:s,s:s},s:s,s:s}", "error", "code",
		    gs_error_code(GS_EREVOKED), "message",
		    "device has been revoked; the batch is kept in quarantine",
		    "receipt", hex, "results", res.results);
	else
		o = json_pack("{s:s,s:s}", "receipt", hex, "results",
		    res.results);
	if (o == NULL)
		pf_http_error(resp, GS_ENOMEM, NULL);
	else
		send_json(resp, res.http_status, o);
	json_decref(o);
	pf_ingest_result_release(&res);
}

static void
handle(void *ctx, const struct pf_request *req, struct pf_response *resp)
{
	struct pf_platform *pf = ctx;
	char dev[33], bid[33], adev[33], ahash[65], adigest[65];
	unsigned char digest[32];
	enum route rt = route_of(req->path, dev, bid);
	int pull;

	/* GET and PUT /v1/devices/{id}/attachments/{hash}: attachments.c. */
	if (pf_att_match(req->path, adev, ahash)) {
		if (strcmp(req->method, "GET") != 0 &&
		    strcmp(req->method, "PUT") != 0)
			pf_http_error(resp, GS_EMETHOD, NULL);
		else if (!ids_refused(resp, adev, 32, ahash, 64))
			pf_att_handle(pf, req, adev, ahash, resp);
		return;
	}

	/* GET /v1/devices/{id}/reference/{digest} (reference.c). */
	if (pf_reference_match(req->path, adev, adigest)) {
		if (strcmp(req->method, "GET") != 0)
			pf_http_error(resp, GS_EMETHOD, NULL);
		else if (!ids_refused(resp, adev, 32, adigest, 64) &&
		    gs_hex_decode(digest, sizeof(digest), adigest) == GS_OK)
			pf_api_reference(pf, req, adev, digest, resp);
		return;
	}
	if (pf_recon_match(req->path, adev, &pull)) {
		if (strcmp(req->method, pull ? "GET" : "POST") != 0)
			pf_http_error(resp, GS_EMETHOD, NULL);
		else if (ids_refused(resp, adev, 32, NULL, 0))
			;
		else if (pull)
			pf_api_pull(pf, req, adev, resp);
		else
			pf_api_heartbeat(pf, req, adev, resp);
		return;
	}

	/* POST /v1/devices/{id}/rekey (rekey.c). */
	if (pf_rekey_match(req->path, adev)) {
		if (strcmp(req->method, "POST") != 0)
			pf_http_error(resp, GS_EMETHOD, NULL);
		else if (!ids_refused(resp, adev, 32, NULL, 0))
			pf_api_rekey(pf, req, adev, resp);
		return;
	}
	/* GET /v1/keys: the current key bundle (root.c). */
	if (strcmp(req->path, "/v1/keys") == 0) {
		json_t *k;

		if (strcmp(req->method, "GET") != 0) {
			pf_http_error(resp, GS_EMETHOD, NULL);
			return;
		}
		if ((k = pf_root_keys_json(pf)) == NULL) {
			pf_http_error(resp, GS_ENOMEM, NULL);
			return;
		}
		send_json(resp, 200, k);
		json_decref(k);
		return;
	}
	if (rt == R_NONE) {
		pf_http_error(resp, GS_ENOTFOUND, "no such path");
		return;
	}
	if (strcmp(req->method, route_method[rt]) != 0) {
		pf_http_error(resp, GS_EMETHOD, NULL);
		return;
	}
	switch (rt) {
	case R_HEALTH:
		health(pf, resp);
		break;
	case R_ENROLL:
		enroll(pf, req, resp);
		break;
	case R_BATCH:
		if (!ids_refused(resp, dev, 32, bid, 32))
			batch(pf, req, dev, bid, resp);
		break;
	default:
		pf_http_error(resp, GS_EINTERNAL, NULL);
	}
}

/*
 * The handler's refuse (http.h), for a request that waits for "100
 * Continue" before its body: refused from its headers alone when an id
 * in its path is not lower-case hex, or its device is not enrolled here,
 * or (attachments, rekey) revoked: what handle() would answer once the
 * body was in, whatever the body (a batch's envelope must name the
 * path's device).  A revoked device's batch is not refused: it is
 * quarantined and answered with a receipt (ingest.c), body needed.
 * Enrollment has nothing to refuse before its body.
 */
static int
refuse(void *ctx, const struct pf_request *req, struct pf_response *resp)
{
	struct pf_platform *pf = ctx;
	char dev[33], bid[33], ahash[65], msg[96];
	unsigned char id[16];
	struct pf_device d;
	int pull, revoked_too = 0, r;

	if (pf_att_match(req->path, dev, ahash)) {
		if (ids_refused(resp, dev, 32, ahash, 64))
			goto refused;
		revoked_too = 1;
	} else if (pf_rekey_match(req->path, dev)) {
		if (ids_refused(resp, dev, 32, NULL, 0))
			goto refused;
		revoked_too = 1;
	} else if (pf_recon_match(req->path, dev, &pull)) {
		if (ids_refused(resp, dev, 32, NULL, 0))
			goto refused;
	} else if (route_of(req->path, dev, bid) == R_BATCH) {
		if (ids_refused(resp, dev, 32, bid, 32))
			goto refused;
	} else
		return 0;
	if (gs_hex_decode(id, sizeof(id), dev) != GS_OK)
		return 0;
	(void)pthread_mutex_lock(&pf->read_lock);
	r = pf->reader->ops->device_get(pf->reader, id, &d);
	(void)pthread_mutex_unlock(&pf->read_lock);
	if (r == GS_ENOTFOUND) {
		snprintf(msg, sizeof(msg), "device %s is not enrolled here",
		    dev);
		pf_http_error(resp, GS_EUNKNOWNDEVICE, msg);
		goto refused;
	}
	if (r == GS_OK && revoked_too && d.revoked) {
		pf_http_error(resp, GS_EREVOKED, "device has been revoked");
		goto refused;
	}
	/* Known (or not found out now: handle() will say): go on. */
	return 0;
refused:
	gs_log(GS_LOG_INFO, "%s %s from %s: refused before its body "
	    "(Expect: 100-continue): %d", req->method, req->path, req->ip,
	    resp->status);
	return 1;
}

void
pf_api_handler(struct pf_platform *pf, struct pf_http_handler *h)
{
	memset(h, 0, sizeof(*h));
	h->body_max = body_max;
	h->handle = handle;
	h->refuse = refuse;
	h->ctx = pf;
}
