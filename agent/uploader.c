/*
 * uploader.c - the libcurl seam of the agent, and the batch uploader.
 *
 * This is the only file that includes <curl/curl.h>.  Everything the
 * network can do wrong becomes one of our RETRY-class codes here, so the
 * rest of the agent only has to decide "done", "refused" or "later".
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "uploader.h"
#include "core/banned.h"

struct ag_http {
	CURL *curl;
	char *base;             /* base URL without a trailing '/' */
	struct ag_http_opts o;
	struct curl_slist *hdr_json;
	struct curl_slist *hdr_octet;
	struct curl_slist *hdr_none;
	volatile sig_atomic_t *cancel;
	char errbuf[CURL_ERROR_SIZE];
	uint64_t sent, recvd, requests;
	int overflow;           /* the last answer went over its cap */
	struct ag_http_response *cur; /* the answer being received */
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
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

static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct ag_http *h = arg;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	/* Non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
	return h->cancel != NULL && *h->cancel != 0;
}

static int
setopts(struct ag_http *h)
{
	CURL *c = h->curl;
	CURLcode rc = CURLE_OK;

#define SET(opt, val)                                                   \
	do {                                                            \
		if (rc == CURLE_OK)                                     \
			rc = curl_easy_setopt(c, opt, val);             \
	} while (0)
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
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
	SET(CURLOPT_XFERINFOFUNCTION, on_progress);
	SET(CURLOPT_XFERINFODATA, h);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_ERRORBUFFER, h->errbuf);
	SET(CURLOPT_USERAGENT, "gridagent/0.1");
#undef SET
	if (rc == CURLE_OUT_OF_MEMORY)
		return GS_FAIL(GS_ENOMEM, "libcurl: out of memory");
	if (rc != CURLE_OK)
		return GS_FAIL(GS_EINTERNAL, "libcurl: %s",
		    curl_easy_strerror(rc));
	return GS_OK;
}

int
ag_http_new(const char *base_url, const struct ag_http_opts *o,
    struct ag_http **out)
{
	struct ag_http *h = NULL;
	size_t n;
	int r = GS_EINTERNAL;

	if (base_url == NULL || (strncmp(base_url, "http://", 7) != 0 &&
	    strncmp(base_url, "https://", 8) != 0))
		return GS_FAIL(GS_EINVAL, "platform URL must start with "
		    "http:// or https://: %s", base_url ? base_url : "(none)");
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
	h->hdr_json = curl_slist_append(NULL,
	    "Content-Type: application/json");
	h->hdr_json = h->hdr_json ?
	    curl_slist_append(h->hdr_json, "Accept: application/json") : NULL;
	h->hdr_octet = curl_slist_append(NULL,
	    "Content-Type: application/octet-stream");
	h->hdr_octet = h->hdr_octet ?
	    curl_slist_append(h->hdr_octet, "Accept: application/json") : NULL;
	h->hdr_octet = h->hdr_octet ?
	    curl_slist_append(h->hdr_octet, "Expect:") : NULL;
	h->hdr_none = curl_slist_append(NULL, "Accept: application/json");
	if (h->hdr_json == NULL || h->hdr_octet == NULL || h->hdr_none == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
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
ag_http_set_cancel(struct ag_http *h, volatile sig_atomic_t *flag)
{
	h->cancel = flag;
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
		return GS_FAIL(GS_ENOMEM, "%s: %s", url, why);
	case CURLE_ABORTED_BY_CALLBACK:
		return GS_FAIL(GS_ENETWORK, "%s: cancelled", url);
	case CURLE_WRITE_ERROR:
	case CURLE_FILESIZE_EXCEEDED:
		if (h->overflow || rc == CURLE_FILESIZE_EXCEEDED)
			return GS_FAIL(GS_EPROTOCOL, "%s: answer larger "
			    "than %zu bytes", url, h->o.max_response);
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
	gs_buf_init(&resp->body, h->o.max_response);
	resp->content_type[0] = '\0';
	if ((r = gs_buf_printf(&url, "%s%s", h->base, path)) != GS_OK) {
		r = GS_FAIL(r, "URL too long");
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
		rc = curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	if (rc == CURLE_OK && strcmp(method, "GET") == 0) {
		rc = curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST,
			    (char *)NULL);
	} else if (rc == CURLE_OK) {
		/* POSTFIELDS sends the caller's bytes as they are, without a
		 * copy; CUSTOMREQUEST turns the POST into a PUT. */
		rc = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS,
		    body != NULL ? body : "");
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(h->curl,
			    CURLOPT_POSTFIELDSIZE_LARGE,
			    (curl_off_t)(body != NULL ? len : 0));
		if (rc == CURLE_OK)
			rc = curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST,
			    strcmp(method, "POST") == 0 ? (char *)NULL : method);
	}
	if (rc != CURLE_OK) {
		r = GS_FAIL(GS_EINTERNAL, "libcurl setopt: %s",
		    curl_easy_strerror(rc));
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
	(void)curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE,
	    &resp->status);
	if (curl_easy_getinfo(h->curl, CURLINFO_CONTENT_TYPE, &ct) ==
	    CURLE_OK && ct != NULL)
		gs_strlcpy(resp->content_type, ct,
		    sizeof(resp->content_type));
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
ag_http_error_body(const struct ag_http_response *resp, char *msg,
    size_t msglen)
{
	json_t *root = NULL, *err, *code, *m;
	json_error_t je;
	int r = GS_EPROTOCOL;

	if (msglen > 0)
		msg[0] = '\0';
	if (resp->body.len == 0)
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
out:
	if (r == GS_EPROTOCOL && msglen > 0 && msg[0] == '\0')
		snprintf(msg, msglen, "HTTP %ld without an error object",
		    resp->status);
	json_decref(root);
	return r;
}
