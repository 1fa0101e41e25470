/*
 * uploader.c - the libcurl seam of the agent, and the batch uploader.
 *
 * This is the only file that includes <curl/curl.h>.  Everything the
 * network can do wrong becomes one of our RETRY-class codes here, so the
 * rest of the agent only has to decide "done", "refused" or "later".
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "device.h"
#include "outbox.h"
#include "receipt.h"
#include "uploader.h"
#include "core/banned.h"

struct ag_http {
	CURL *curl;
	char *base; /* base URL without a trailing '/' */
	struct ag_http_opts o;
	size_t cap; /* the answer cap of the next request */
	struct curl_slist *hdr_json;
	struct curl_slist *hdr_octet;
	struct curl_slist *hdr_none;
	volatile sig_atomic_t *cancel;
	char errbuf[CURL_ERROR_SIZE];
	uint64_t sent, recvd, requests;
	int overflow;		      /* the last answer went over its cap */
	int fresh;		      /* the next request on a new connection */
	void (*on_sent)(void *);      /* ag_http_on_sent */
	void *on_sent_ctx;
	int sent_told;		      /* on_sent called for this request */
	struct ag_http_response *cur; /* the answer being received */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static ag_http_transport_fn transport; /* ag_http_set_transport; NULL: curl */
static void *transport_ctx;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void
global_init(void)
{
	/* curl_global_init is not thread-safe in every build; once only. */
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static long
env_long(const char *name, long dflt)
{
	const char *s = getenv(name);
	int64_t v;

	if (s == NULL || gs_parse_i64(s, 0, 86400000, &v) != GS_OK)
		return dflt;
	return (long)v;
}

void
ag_http_opts_default(struct ag_http_opts *o)
{
	/* Starting values from research/reliability-anchors.md 4.2: a weak
	 * radio link can be slow but must not hang forever. */
	o->connect_timeout_ms = env_long("GRIDAGENT_CONNECT_TIMEOUT_MS", 15000);
	o->low_speed_limit = 100;
	o->low_speed_time = env_long("GRIDAGENT_LOW_SPEED_TIME", 60);
	o->total_timeout_ms = env_long("GRIDAGENT_TIMEOUT_MS", 600000);
	/* Receipts, results and error bodies are small; a results list for a
	 * big batch full of quarantined records is the largest answer. */
	o->max_response = (size_t)1 << 20;
}

void
ag_http_response_init(struct ag_http_response *r)
{
	r->status = 0;
	gs_buf_init(&r->body, (size_t)1 << 20);
	r->content_type[0] = '\0';
	r->retry_after_ms = 0;
}

void
ag_http_response_release(struct ag_http_response *r)
{
	if (r == NULL)
		return;
	gs_buf_release(&r->body);
}

static size_t
on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct ag_http *h = arg;
	size_t n = size * nmemb;

	/* Returning less than n makes libcurl stop with CURLE_WRITE_ERROR;
	 * an answer over its cap is not read any further. */
	if (gs_buf_append(&h->cur->body, p, n) != GS_OK) {
		h->overflow = 1;
		return 0;
	}
	return n;
}

/* Picks Retry-After (delta seconds) out of the answer's headers: a
 * platform or proxy that says when to come back is believed, within the
 * caller's cap. */
static size_t
on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	struct ag_http *h = arg;
	size_t n = size * nmemb, i = 12;
	int64_t v = 0;

	if (n > 12 && strncasecmp(p, "Retry-After:", 12) == 0) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		while (i < n && p[i] >= '0' && p[i] <= '9' && v < 86400)
			v = v * 10 + (p[i++] - '0');
		if (v > 86400)
			v = 86400;
		h->cur->retry_after_ms = v * 1000;
	}
	return n;
}

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
    curl_off_t ulnow)
{
	struct ag_http *h = arg;

	(void)dltotal;
	(void)dlnow;
	if (h->on_sent != NULL && !h->sent_told && ultotal > 0 &&
	    ulnow >= ultotal) {
		h->sent_told = 1;
		h->on_sent(h->on_sent_ctx);
	}
	/* Non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
	return h->cancel != NULL && *h->cancel != 0;
}

static int
setopts(struct ag_http *h)
{
	CURL *c = h->curl;
	CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                          \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(c, opt, val);                    \
	} while (0)
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	/* No proxy, not even one named by http_proxy or ALL_PROXY in the
	 * environment: the agent talks to its platform's address and no
	 * other (the proxy got every request, health probe to pull). */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, h->o.connect_timeout_ms);
	SET(CURLOPT_LOW_SPEED_LIMIT, h->o.low_speed_limit);
	SET(CURLOPT_LOW_SPEED_TIME, h->o.low_speed_time);
	SET(CURLOPT_TIMEOUT_MS, h->o.total_timeout_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 30L);
	SET(CURLOPT_TCP_KEEPINTVL, 15L);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->o.max_response);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, h);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, h);
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, h);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_ERRORBUFFER, h->errbuf);
	SET(CURLOPT_USERAGENT, "gridagent/0.1");
#undef SET
	if (rc == CURLE_OUT_OF_MEMORY)
		return GS_FAIL(GS_ENOMEM, "libcurl: out of memory");
	if (rc != CURLE_OK)
		return GS_FAIL(
		    GS_EINTERNAL, "libcurl: %s", curl_easy_strerror(rc));
	return GS_OK;
}

int
ag_http_new(
    const char *base_url, const struct ag_http_opts *o, struct ag_http **out)
{
	struct ag_http *h = NULL;
	size_t n;
	int r = GS_EINTERNAL;

	if (base_url == NULL || (strncmp(base_url, "http://", 7) != 0 &&
				    strncmp(base_url, "https://", 8) != 0))
		return GS_FAIL(GS_EINVAL,
		    "platform URL must start with "
		    "http:// or https://: %.200s",
		    base_url ? base_url : "(none)");
	/* Not echoed: a newline in it would make the error two lines. */
	for (n = 0; base_url[n] != '\0'; n++)
		if ((unsigned char)base_url[n] <= ' ' ||
		    (unsigned char)base_url[n] == 0x7f)
			return GS_FAIL(GS_EINVAL, "platform URL holds a space "
			    "or a control character (byte %zu)", n + 1);
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return GS_FAIL(GS_EINTERNAL, "curl_global_init: %s",
		    curl_easy_strerror(global_rc));
	if ((h = gs_calloc(1, sizeof(*h))) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	if (o != NULL)
		h->o = *o;
	else
		ag_http_opts_default(&h->o);
	if ((h->base = gs_strdup(base_url)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	n = strlen(h->base);
	while (n > 0 && h->base[n - 1] == '/')
		h->base[--n] = '\0';
	if ((h->curl = curl_easy_init()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "curl_easy_init failed");
		goto out;
	}
	/* "Expect:" with no value stops libcurl from waiting for a
	 * 100-continue on large bodies: the platform answers early refusals
	 * after reading the headers anyway. */
	h->hdr_json = curl_slist_append(NULL, "Content-Type: application/json");
	h->hdr_json = h->hdr_json ? curl_slist_append(
					h->hdr_json, "Accept: application/json")
				  : NULL;
	h->hdr_octet =
	    curl_slist_append(NULL, "Content-Type: application/octet-stream");
	h->hdr_octet = h->hdr_octet ? curl_slist_append(h->hdr_octet,
					  "Accept: application/json")
				    : NULL;
	h->hdr_octet =
	    h->hdr_octet ? curl_slist_append(h->hdr_octet, "Expect:") : NULL;
	h->hdr_none = curl_slist_append(NULL, "Accept: application/json");
	if (h->hdr_json == NULL || h->hdr_octet == NULL ||
	    h->hdr_none == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	h->cap = h->o.max_response;
	if ((r = setopts(h)) != GS_OK)
		goto out;
	*out = h;
	h = NULL;
	r = GS_OK;
out:
	ag_http_free(h);
	return r;
}

void
ag_http_free(struct ag_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	curl_slist_free_all(h->hdr_json);
	curl_slist_free_all(h->hdr_octet);
	curl_slist_free_all(h->hdr_none);
	gs_free(h->base);
	gs_free(h);
}

void
ag_http_set_transport(ag_http_transport_fn fn, void *ctx)
{
	transport = fn;
	transport_ctx = ctx;
}

void
ag_http_set_cancel(struct ag_http *h, volatile sig_atomic_t *flag)
{
	h->cancel = flag;
}

void
ag_http_on_sent(struct ag_http *h, void (*fn)(void *), void *ctx)
{
	h->on_sent = fn;
	h->on_sent_ctx = ctx;
}

void
ag_http_fresh_connection(struct ag_http *h)
{
	h->fresh = 1;
}

void
ag_http_set_response_cap(struct ag_http *h, size_t max)
{
	h->cap = max > 0 ? max : h->o.max_response;
}

void
ag_http_stats(const struct ag_http *h, uint64_t *sent, uint64_t *recvd,
    uint64_t *requests)
{
	if (sent != NULL)
		*sent = h->sent;
	if (recvd != NULL)
		*recvd = h->recvd;
	if (requests != NULL)
		*requests = h->requests;
}

/* libcurl's transfer errors in our terms: all of them mean "not now". */
static int
map_curl(struct ag_http *h, CURLcode rc, const char *url)
{
	const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return GS_FAIL(GS_ETIMEOUT, "%s: %s", url, why);
	case CURLE_OUT_OF_MEMORY:
		/*
		 * libcurl (7.x) also says "out of memory" when one header
		 * line of the answer exceeds its 100 KiB cap: the peer's
		 * doing, not this device's.  Taken as our ENOMEM, a single
		 * 1 MiB header line made "sync" exit 70 (internal error);
		 * everything is kept, so it is a temporary failure.
		 */
		return GS_FAIL(GS_EPROTOCOL, "%s: answer headers too large "
		    "(libcurl: %s)", url, why);
	case CURLE_ABORTED_BY_CALLBACK:
		return GS_FAIL(GS_ENETWORK, "%s: cancelled", url);
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (h->overflow || rc == CURLE_FILESIZE_EXCEEDED)
			return GS_FAIL(GS_EPROTOCOL,
			    "%s: answer larger "
			    "than %zu bytes",
			    url, h->cap);
		return GS_FAIL(GS_ENETWORK, "%s: %s", url, why);
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_HTTP2:
	case CURLE_BAD_CONTENT_ENCODING:
		return GS_FAIL(GS_EPROTOCOL, "%s: %s", url, why);
	default:
		/* Refused, reset, unreachable, TLS handshake failures: the
		 * link, not the data, is the problem. */
		return GS_FAIL(GS_ENETWORK, "%s: %s", url, why);
	}
}

int
ag_http_request(struct ag_http *h, const char *method, const char *path,
    const char *content_type, const void *body, size_t len,
    struct ag_http_response *resp)
{
	struct gs_buf url;
	struct curl_slist *hdrs;
	CURLcode rc = CURLE_OK;
	curl_off_t up = 0, down = 0;
	char *ct = NULL;
	int r = GS_EINTERNAL;

	gs_buf_init(&url, 4096);
	resp->status = 0;
	gs_buf_release(&resp->body);
	gs_buf_init(&resp->body, h->cap);
	resp->content_type[0] = '\0';
	resp->retry_after_ms = 0;
	if ((r = gs_buf_printf(&url, "%s%s", h->base, path)) != GS_OK) {
		r = GS_FAIL(r, "URL too long");
		goto out;
	}
	if (transport != NULL) {
		/* The simulator's transport: no sockets, same contract. */
		h->requests++;
		h->sent += body != NULL ? len : 0;
		r = transport(transport_ctx, method, path, content_type, body,
		    len, resp);
		h->recvd += resp->body.len;
		if (r == GS_OK && (resp->status < 100 || resp->status > 599))
			r = GS_FAIL(GS_EPROTOCOL, "%s: no HTTP status",
			    url.data);
		goto out;
	}
	if (body == NULL)
		hdrs = h->hdr_none;
	else if (content_type != NULL &&
		 strcmp(content_type, "application/json") == 0)
		hdrs = h->hdr_json;
	else
		hdrs = h->hdr_octet;

	h->errbuf[0] = '\0';
	h->overflow = 0;
	h->cur = resp;
	/* The handle is reused (keep-alive), so every request sets every
	 * method-dependent option again. */
	rc = curl_easy_setopt(h->curl, CURLOPT_URL, url.data);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(
		    h->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)h->cap);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	if (rc == CURLE_OK)
		rc = curl_easy_setopt(h->curl, CURLOPT_FRESH_CONNECT,
		    h->fresh ? 1L : 0L);
	h->fresh = 0;
	h->sent_told = 0;
	if (rc == CURLE_OK && strcmp(method, "GET") == 0) {
		rc = curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(
			    h->curl, CURLOPT_CUSTOMREQUEST, (char *)NULL);
	} else if (rc == CURLE_OK) {
		/* POSTFIELDS sends the caller's bytes as they are, without a
		 * copy; CUSTOMREQUEST turns the POST into a PUT. */
		rc = curl_easy_setopt(
		    h->curl, CURLOPT_POSTFIELDS, body != NULL ? body : "");
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(h->curl,
			    CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)(body != NULL ? len : 0));
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST,
			    strcmp(method, "POST") == 0 ? (char *)NULL
							: method);
	}
	if (rc != CURLE_OK) {
		r = GS_FAIL(
		    GS_EINTERNAL, "libcurl setopt: %s", curl_easy_strerror(rc));
		goto out;
	}
	h->requests++;
	rc = curl_easy_perform(h->curl);
	(void)curl_easy_getinfo(h->curl, CURLINFO_SIZE_UPLOAD_T, &up);
	(void)curl_easy_getinfo(h->curl, CURLINFO_SIZE_DOWNLOAD_T, &down);
	h->sent += (uint64_t)(up > 0 ? up : 0);
	h->recvd += (uint64_t)(down > 0 ? down : 0);
	if (rc != CURLE_OK) {
		r = map_curl(h, rc, url.data);
		goto out;
	}
	(void)curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	if (curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct) ==
		CURLE_OK &&
	    ct != NULL)
		gs_strlcpy(resp->content_type, ct, sizeof(resp->content_type));
	if (resp->status < 100 || resp->status > 599) {
		r = GS_FAIL(GS_EPROTOCOL, "%s: no HTTP status", url.data);
		goto out;
	}
	r = GS_OK;
out:
	h->cur = NULL;
	gs_buf_release(&url);
	return r;
}

int
ag_http_error_body(
    const struct ag_http_response *resp, char *msg, size_t msglen)
{
	json_t *root = NULL, *err, *code, *m;
	json_error_t je;
	int r = GS_EPROTOCOL;

	if (msglen > 0)
		msg[0] = '\0';
	/*
	 * Only a 4xx or 5xx answer carries an error object.  A redirect,
	 * a 1xx or a 2xx other than the one expected is outside the
	 * protocol, whatever its body says: believed, a 302 whose body
	 * named "not_found" made "sync" exit 65 as if the platform had
	 * refused the data, where everything was kept for later (75).
	 */
	if (resp->body.len == 0 || resp->status < 400 || resp->status > 599)
		goto out;
	root = json_loadb(resp->body.data, resp->body.len, 0, &je);
	if (root == NULL || (err = json_object_get(root, "error")) == NULL ||
	    !json_is_object(err))
		goto out;
	code = json_object_get(err, "code");
	m = json_object_get(err, "message");
	if (json_is_string(m) && msglen > 0)
		gs_strlcpy(msg, json_string_value(m), msglen);
	if (json_is_string(code))
		r = gs_error_from_code(json_string_value(code));
	/*
	 * A 5xx is the platform's own failure (its disk full, a bug), never
	 * this device's: whatever code it names, the request is good and is
	 * made again later, so it is a temporary failure here.  Taken as
	 * its io_error, a platform with a full disk made every "sync" exit
	 * 74 and every "sync --watch" stop, and its "database or disk is
	 * full" read as this device's own disk.
	 */
	if (resp->status >= 500 && r != GS_EPROTOCOL &&
	    gs_error_class(r) != GS_CLASS_RETRY) {
		if (msglen > 0) {
			char m2[512];

			snprintf(m2, sizeof(m2), "the platform failed: %s (%s)",
			    msg, gs_error_code(r));
			gs_strlcpy(msg, m2, msglen);
		}
		r = GS_EBUSY;
	}
out:
	if (r == GS_EPROTOCOL && msglen > 0 && msg[0] == '\0')
		snprintf(msg, msglen, resp->status >= 400 ?
		    "HTTP %ld without an error object" :
		    "HTTP %ld outside the protocol", resp->status);
	json_decref(root);
	return r;
}

/* ------------------------------------------------------------- batches */

void
ag_upload_result_release(struct ag_upload_result *res)
{
	if (res == NULL)
		return;
	gs_free(res->receipt);
	res->receipt = NULL;
	gs_free(res->results);
	res->results = NULL;
}

static void set_reason(struct ag_upload_result *res, int err, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
set_reason(struct ag_upload_result *res, int err, const char *fmt, ...)
{
	va_list ap;

	res->err = err;
	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
}

/*
 * Finds {"receipt":hex,"results":"..."} in an answer and verifies it:
 * signature by the pinned receipt key, results hash, and every identity
 * field equal to what was sent.  GS_OK with *rc filled and the receipt
 * bytes and results text handed to res; anything else means "no valid
 * receipt here" (the detail says why).
 */
static int
take_receipt(const struct ag_http_response *resp, const struct ag_device *dev,
    const struct ag_outbox_row *row, struct gs_receipt *rc,
    struct ag_upload_result *res)
{
	json_t *root = NULL, *jr, *js;
	json_error_t je;
	struct gs_receipt sent;
	unsigned char bytes[GS_RECEIPT_BYTES];
	const char *hex, *results;
	size_t rlen;
	int r = GS_EPROTOCOL;

	if (resp->body.len == 0) {
		r = GS_FAIL(GS_EPROTOCOL, "empty answer");
		goto out;
	}
	root = json_loadb(
	    resp->body.data, resp->body.len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL || !json_is_object(root)) {
		r = GS_FAIL(GS_EPROTOCOL, "answer is not a JSON object");
		goto out;
	}
	jr = json_object_get(root, "receipt");
	js = json_object_get(root, "results");
	if (!json_is_string(jr) || !json_is_string(js)) {
		r = GS_FAIL(GS_EPROTOCOL, "answer carries no receipt");
		goto out;
	}
	hex = json_string_value(jr);
	if (strlen(hex) != 2 * GS_RECEIPT_BYTES ||
	    gs_hex_decode(bytes, sizeof(bytes), hex) != GS_OK) {
		r = GS_FAIL(GS_EPROTOCOL, "receipt is not %d hex bytes",
		    GS_RECEIPT_BYTES);
		goto out;
	}
	results = json_string_value(js);
	rlen = json_string_length(js);
	if ((r = gs_receipt_verify(rc, bytes, sizeof(bytes), results, rlen,
		 dev->receipt_pk)) != GS_OK) {
		r = GS_FAIL(r, "receipt does not verify with the pinned "
			       "receipt key");
		goto out;
	}
	memset(&sent, 0, sizeof(sent));
	memcpy(sent.deployment, dev->deployment, 16);
	memcpy(sent.device, dev->device_id, 16);
	memcpy(sent.batch, row->batch_id, 16);
	sent.seq = (uint64_t)row->seq;
	memcpy(sent.envelope_hash, row->hash, GS_HASHBYTES);
	if ((r = gs_receipt_match(rc, &sent)) != GS_OK)
		goto out;
	if ((res->receipt = gs_malloc(sizeof(bytes))) == NULL ||
	    (res->results = gs_strndup(results, rlen)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	memcpy(res->receipt, bytes, sizeof(bytes));
	res->receipt_len = sizeof(bytes);
	r = GS_OK;
out:
	if (r != GS_OK) {
		gs_free(res->receipt);
		res->receipt = NULL;
		gs_free(res->results);
		res->results = NULL;
	}
	json_decref(root);
	return r;
}

int
ag_upload_batch(struct ag_http *h, const struct ag_device *dev,
    const struct ag_outbox_row *row, struct ag_upload_result *res)
{
	return ag_upload_batch_follows(h, dev, row, 0, res);
}

int
ag_upload_batch_follows(struct ag_http *h, const struct ag_device *dev,
    const struct ag_outbox_row *row, int64_t follows,
    struct ag_upload_result *res)
{
	struct ag_http_response resp;
	struct gs_receipt rc;
	char path[160], dev_hex[33], batch_hex[33], msg[300];
	int r, code;

	memset(res, 0, sizeof(*res));
	ag_http_response_init(&resp);
	gs_hex_encode(dev_hex, dev->device_id, 16);
	gs_hex_encode(batch_hex, row->batch_id, 16);
	if (follows > 0)
		snprintf(path, sizeof(path),
		    "/v1/devices/%s/batches/%s?follows=%lld", dev_hex,
		    batch_hex, (long long)follows);
	else
		snprintf(path, sizeof(path), "/v1/devices/%s/batches/%s",
		    dev_hex, batch_hex);

	/* The results list one entry per change that was not simply
	 * applied, so the answer grows with the batch: allow 4 KiB per
	 * change on top of the usual cap (the platform keeps entries short;
	 * an answer we cannot read would leave the batch unacked forever). */
	ag_http_set_response_cap(
	    h, ((size_t)1 << 20) + (size_t)row->record_count * 4096);
	/* The stored bytes, exactly: a retry is the same request. */
	r = ag_http_request(h, "PUT", path, "application/octet-stream",
	    row->envelope, row->len, &resp);
	ag_http_set_response_cap(h, 0);
	if (r == GS_ENOMEM)
		goto out;
	if (r != GS_OK) {
		res->outcome = AG_UPLOAD_RETRY;
		set_reason(res, r, "%s", gs_errmsg(r));
		r = GS_OK;
		goto out;
	}
	res->http_status = resp.status;

	if (resp.status == 200 || resp.status == 201) {
		if ((r = take_receipt(&resp, dev, row, &rc, res)) == GS_OK) {
			res->outcome = rc.status == GS_RECEIPT_QUARANTINED
					   ? AG_UPLOAD_QUARANTINED
					   : AG_UPLOAD_ACKED;
			res->err = GS_OK;
			goto out;
		}
		if (r == GS_ENOMEM)
			goto out;
		/* A bare 200, a captive portal's page, a forged receipt:
		 * none of them proves the platform committed the batch. */
		res->outcome = AG_UPLOAD_RETRY;
		set_reason(res, GS_EPROTOCOL,
		    "HTTP %ld without a valid "
		    "receipt: %s",
		    resp.status, gs_errmsg(r));
		r = GS_OK;
		goto out;
	}

	code = ag_http_error_body(&resp, msg, sizeof(msg));
	if (resp.status == 403 && code == GS_EREVOKED) {
		/* Revoked: the platform still verified and kept the batch,
		 * in quarantine, and proves it with a receipt (status 2).
		 * Without a valid receipt the claim is not believed. */
		if ((r = take_receipt(&resp, dev, row, &rc, res)) == GS_OK &&
		    rc.status == GS_RECEIPT_QUARANTINED) {
			res->outcome = AG_UPLOAD_QUARANTINED;
			res->err = GS_EREVOKED;
			snprintf(res->reason, sizeof(res->reason),
			    "device_revoked: %s", msg);
			goto out;
		}
		if (r == GS_ENOMEM)
			goto out;
		ag_upload_result_release(res);
		res->outcome = AG_UPLOAD_RETRY;
		set_reason(res, GS_EPROTOCOL,
		    "HTTP 403 device_revoked "
		    "without a valid receipt: %s",
		    gs_errmsg(r));
		r = GS_OK;
		goto out;
	}
	if (resp.status >= 400 && resp.status < 500 && code != GS_EPROTOCOL &&
	    code != GS_OK && gs_error_class(code) != GS_CLASS_RETRY &&
	    resp.status != 408 && resp.status != 429) {
		/* The platform itself (its JSON error object, a known code)
		 * refuses this batch for good.  A 4xx page without our error
		 * object may come from a proxy and proves nothing. */
		res->outcome = AG_UPLOAD_REJECTED;
		set_reason(res, code, "%s: %s", gs_error_code(code), msg);
		r = GS_OK;
		goto out;
	}
	/* Kept for later, so the reason is a temporary one whatever code
	 * the answer named (a 429 naming "not_found" is no refusal). */
	res->outcome = AG_UPLOAD_RETRY;
	res->retry_after_ms = resp.retry_after_ms;
	set_reason(res,
	    gs_error_class(code) == GS_CLASS_RETRY ? code : GS_EPROTOCOL,
	    "HTTP %ld: %s", resp.status, msg);
	r = GS_OK;
out:
	ag_http_response_release(&resp);
	return r;
}
