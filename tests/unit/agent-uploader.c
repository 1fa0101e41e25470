/*
 * agent-uploader.c - how the uploader classifies what comes back from a
 * PUT: only a receipt that verifies and names this very batch acks it; a
 * platform's own permanent refusal rejects it; everything else (bare 200,
 * forged or misdirected receipts, proxy pages, 5xx, 429, oversized or
 * missing answers) is retried.  A canned HTTP server on 127.0.0.1 plays
 * the platform.  Also: backoff with full jitter stays within its bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "device.h"
#include "envelope.h"
#include "outbox.h"
#include "receipt.h"
#include "sync.h"
#include "uploader.h"
#include "canned_http.h"

/* ------------------------------------------------------ canned server */

static struct canned_http srv;
static char *canned;	    /* the whole HTTP answer to give */
static char last_path[256]; /* the path of the last request */
static size_t last_body;

static void
give_canned(const char *req, size_t body_len, const char **ans, size_t *len)
{
	sscanf(req, "%*s %255s", last_path);
	last_body = body_len;
	*ans = canned;
	*len = canned != NULL ? strlen(canned) : 0;
}

static void
answer_hdr(long status, const char *ctype, const char *extra, const char *body)
{
	char *s = NULL;

	if (asprintf(&s,
		"HTTP/1.1 %ld X\r\nContent-Type: %s\r\n%s"
		"Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
		status, ctype, extra, strlen(body), body) < 0)
		fail();
	pthread_mutex_lock(&canned_mu);
	free(canned);
	canned = s;
	pthread_mutex_unlock(&canned_mu);
}

static void
answer(long status, const char *ctype, const char *body)
{
	answer_hdr(status, ctype, "", body);
}

/* ----------------------------------------------------------- fixture */

static struct ag_device *dev;
static unsigned char rsk[64];
static unsigned char other_sk[64];
static struct ag_outbox_row row;
static unsigned char env[300];

static int
setup(void **state)
{
	unsigned char opk[32];

	(void)state;
	assert_int_equal(gs_crypto_init(), GS_OK);
	assert_int_equal(ag_device_new(&dev), GS_OK);
	gs_crypto_sign_keypair(dev->sign_pk, dev->sign_sk);
	gs_crypto_sign_keypair(dev->receipt_pk, rsk);
	gs_crypto_sign_keypair(opk, other_sk);
	gs_random(dev->device_id, 16);
	gs_random(dev->deployment, 16);
	gs_random(env, sizeof(env));
	memset(&row, 0, sizeof(row));
	row.seq = 4;
	gs_random(row.batch_id, 16);
	row.envelope = env;
	row.len = sizeof(env);
	row.record_count = 3;
	gs_envelope_hash(row.hash, env, sizeof(env));
	canned_start(&srv, give_canned);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	canned_stop(&srv);
	free(canned);
	ag_device_free(dev);
	return 0;
}

/* A receipt JSON body: signed by sk, for (batch, seq, hash) of `row`
 * unless told otherwise. */
static char *
receipt_body(const unsigned char *sk, int status, uint64_t seq,
    const char *results, const char *sent_results)
{
	struct gs_receipt r;
	unsigned char b[GS_RECEIPT_BYTES];
	char hex[2 * GS_RECEIPT_BYTES + 1];
	char *s = NULL;

	memset(&r, 0, sizeof(r));
	memcpy(r.deployment, dev->deployment, 16);
	memcpy(r.device, dev->device_id, 16);
	memcpy(r.batch, row.batch_id, 16);
	r.seq = seq;
	memcpy(r.envelope_hash, row.hash, 32);
	r.status = (uint8_t)status;
	assert_int_equal(
	    gs_receipt_sign(b, &r, results, strlen(results), sk), GS_OK);
	gs_hex_encode(hex, b, sizeof(b));
	if (asprintf(&s, "{\"receipt\":\"%s\",\"results\":\"%s\"%s}", hex,
		sent_results,
		status == GS_RECEIPT_QUARANTINED
		    ? ",\"error\":{\"code\":\"device_revoked\",\"message\":"
		      "\"r\"}"
		    : "") < 0)
		fail();
	return s;
}

static enum ag_upload_outcome
put(struct ag_upload_result *res)
{
	struct ag_http *h = NULL;
	char url[64];

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	assert_int_equal(ag_http_new(url, NULL, &h), GS_OK);
	memset(res, 0, sizeof(*res));
	assert_int_equal(ag_upload_batch(h, dev, &row, res), GS_OK);
	ag_http_free(h);
	return res->outcome;
}

static void
test_valid_receipt_acks(void **state)
{
	struct ag_upload_result res;
	char *b = receipt_body(rsk, GS_RECEIPT_ACCEPTED, 4, "[]", "[]");
	char want[128], dh[33], bh[33];

	(void)state;
	answer(200, "application/json", b);
	assert_int_equal(put(&res), AG_UPLOAD_ACKED);
	assert_int_equal(res.receipt_len, GS_RECEIPT_BYTES);
	assert_string_equal(res.results, "[]");
	/* The stored bytes went to the batch's own address. */
	gs_hex_encode(dh, dev->device_id, 16);
	gs_hex_encode(bh, row.batch_id, 16);
	snprintf(want, sizeof(want), "/v1/devices/%s/batches/%s", dh, bh);
	assert_string_equal(last_path, want);
	assert_int_equal(last_body, sizeof(env));
	ag_upload_result_release(&res);
	free(b);
}

static void
test_bad_receipts_retry(void **state)
{
	struct ag_upload_result res;
	char *b;

	(void)state;
	/* Signed by another key. */
	b = receipt_body(other_sk, GS_RECEIPT_ACCEPTED, 4, "[]", "[]");
	answer(200, "application/json", b);
	free(b);
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	assert_null(res.receipt);
	ag_upload_result_release(&res);
	/* A genuine receipt, but for another seq. */
	b = receipt_body(rsk, GS_RECEIPT_ACCEPTED, 5, "[]", "[]");
	answer(200, "application/json", b);
	free(b);
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	/* Results altered after signing. */
	b = receipt_body(rsk, GS_RECEIPT_ACCEPTED, 4, "[]", "[ ]");
	answer(200, "application/json", b);
	free(b);
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	/* A bare 200 and a captive portal's page. */
	answer(200, "text/plain", "OK");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	assert_int_equal(res.err, GS_EPROTOCOL);
	ag_upload_result_release(&res);
	answer(200, "text/html", "<html>login</html>");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
}

static void
test_revoked(void **state)
{
	struct ag_upload_result res;
	char *b;

	(void)state;
	b = receipt_body(rsk, GS_RECEIPT_QUARANTINED, 4, "[]", "[]");
	answer(403, "application/json", b);
	free(b);
	assert_int_equal(put(&res), AG_UPLOAD_QUARANTINED);
	assert_int_equal(res.err, GS_EREVOKED);
	assert_non_null(res.receipt);
	ag_upload_result_release(&res);
	/* Claimed without a receipt: not believed. */
	answer(403, "application/json",
	    "{\"error\":{\"code\":\"device_revoked\",\"message\":\"x\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	/* A 403 "revoked" whose valid receipt says "accepted" contradicts
	 * itself: neither believed (tests/MUTANTS.md). */
	{
		char *acc = receipt_body(rsk, GS_RECEIPT_ACCEPTED, 4, "[]",
		    "[]");
		char *both = NULL;

		if (asprintf(&both, "%.*s,\"error\":{\"code\":"
		    "\"device_revoked\",\"message\":\"r\"}}",
		    (int)strlen(acc) - 1, acc) < 0)
			fail();
		answer(403, "application/json", both);
		assert_int_equal(put(&res), AG_UPLOAD_RETRY);
		assert_null(res.receipt);
		ag_upload_result_release(&res);
		free(both);
		free(acc);
	}
}

static void
test_permanent_refusals_reject(void **state)
{
	struct ag_upload_result res;

	(void)state;
	answer(409, "application/json",
	    "{\"error\":{\"code\":"
	    "\"batch_id_reused\",\"message\":\"different bytes\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_REJECTED);
	assert_int_equal(res.err, GS_EREPLAY);
	assert_non_null(strstr(res.reason, "batch_id_reused"));
	ag_upload_result_release(&res);
	answer(401, "application/json",
	    "{\"error\":{\"code\":"
	    "\"bad_signature\",\"message\":\"no\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_REJECTED);
	ag_upload_result_release(&res);
	answer(413, "application/json",
	    "{\"error\":{\"code\":"
	    "\"too_large\",\"message\":\"no\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_REJECTED);
	ag_upload_result_release(&res);
}

static void
test_transient_answers_retry(void **state)
{
	struct ag_upload_result res;
	static char big[2 << 20]; /* over the cap of a 3-change batch */

	(void)state;
	answer(503, "application/json",
	    "{\"error\":{\"code\":\"busy\","
	    "\"message\":\"later\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	assert_int_equal(res.retry_after_ms, 0);
	answer_hdr(503, "application/json", "Retry-After: 7\r\n",
	    "{\"error\":{\"code\":\"busy\",\"message\":\"later\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	assert_int_equal(res.retry_after_ms, 7000);
	ag_upload_result_release(&res);
	answer(500, "application/json",
	    "{\"error\":{\"code\":"
	    "\"internal_error\",\"message\":\"oops\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	answer(429, "application/json",
	    "{\"error\":{\"code\":"
	    "\"rate_limited\",\"message\":\"slow\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	/* A 408 or 429 naming a code that would be a refusal elsewhere is
	 * still "later", never "rejected" (tests/MUTANTS.md). */
	answer(429, "application/json",
	    "{\"error\":{\"code\":\"not_found\",\"message\":\"x\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	answer(408, "application/json",
	    "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"x\"}}");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	/* A 4xx without the platform's error object: maybe a proxy. */
	answer(404, "text/html", "<html>not here</html>");
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	ag_upload_result_release(&res);
	/* An answer over its cap (1 MiB + 4 KiB a change) is not read to
	 * the end. */
	memset(big, 'x', sizeof(big) - 1);
	answer(200, "application/json", big);
	assert_int_equal(put(&res), AG_UPLOAD_RETRY);
	assert_int_equal(res.err, GS_EPROTOCOL);
	ag_upload_result_release(&res);
}

static void
test_unreachable_retry(void **state)
{
	struct ag_http *h = NULL;
	struct ag_upload_result res;

	(void)state;
	/* Port 1 on loopback: nothing listens there. */
	assert_int_equal(ag_http_new("http://127.0.0.1:1", NULL, &h), GS_OK);
	assert_int_equal(ag_upload_batch(h, dev, &row, &res), GS_OK);
	assert_int_equal(res.outcome, AG_UPLOAD_RETRY);
	assert_int_equal(res.err, GS_ENETWORK);
	ag_upload_result_release(&res);
	ag_http_free(h);
	assert_int_equal(ag_http_new("ftp://127.0.0.1", NULL, &h), GS_EINVAL);
}

static void
test_backoff_full_jitter(void **state)
{
	struct ag_backoff b;
	int64_t w, max_seen = 0;
	int i;

	(void)state;
	ag_backoff_init(&b, 100, 1000);
	for (i = 0; i < 200; i++) {
		w = ag_backoff_next(&b);
		assert_true(w >= 0 && w <= 1000);
		if (i == 0)
			assert_true(w <= 100);
		if (i == 2)
			assert_true(w <= 400);
		if (w > max_seen)
			max_seen = w;
	}
	/* Capped, but it does reach up towards the cap. */
	assert_true(max_seen > 500);
	ag_backoff_reset(&b);
	assert_true(ag_backoff_next(&b) <= 100);
}

/*
 * Full jitter is the whole range [0, ceiling]: the ceiling itself can be
 * drawn (base and cap of 1 ms: 0 or 1, never only 0), and so can a wait
 * under half of it (not "equal jitter").  The odds of a false failure
 * are 2^-200 each.
 */
static void
test_backoff_jitter_range(void **state)
{
	struct ag_backoff b;
	int i, top = 0, low = 0;
	int64_t w;

	(void)state;
	ag_backoff_init(&b, 1, 1);
	for (i = 0; i < 200; i++) {
		w = ag_backoff_next(&b);
		assert_true(w == 0 || w == 1);
		top += w == 1;
	}
	assert_true(top > 0);
	ag_backoff_init(&b, 1000, 1000);
	for (i = 0; i < 200; i++) {
		w = ag_backoff_next(&b);
		assert_true(w >= 0 && w <= 1000);
		low += w < 500;
	}
	assert_true(low > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_receipt_acks),
	    cmocka_unit_test(test_bad_receipts_retry),
	    cmocka_unit_test(test_revoked),
	    cmocka_unit_test(test_permanent_refusals_reject),
	    cmocka_unit_test(test_transient_answers_retry),
	    cmocka_unit_test(test_unreachable_retry),
	    cmocka_unit_test(test_backoff_full_jitter),
	    cmocka_unit_test(test_backoff_jitter_range),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
