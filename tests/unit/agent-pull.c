/*
 * agent-pull.c - what the agent's pull believes of a feed page the
 * platform's receipt key did sign: a page must answer the cursor it was
 * asked for, and "more" is only followed while the cursor moves.  A
 * canned HTTP server on 127.0.0.1 plays the platform, one answer per
 * request, in order.
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

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "feed.h"
#include "gridagent.h"
#include "pull.h"
#include "rootkeys.h"
#include "store.h"
#include "uploader.h"
#include "canned_http.h"

static struct canned_http srv;
/* The answers, in order; the last one is given again when they run out. */
static struct gs_buf answers[4];
static int nanswers, requests;
static char paths[4][512];

static void
answer(const char *req, size_t body_len, const char **ans, size_t *len)
{
	struct gs_buf *a;

	(void)body_len;
	if (requests < 4)
		sscanf(req, "%*s %511s", paths[requests]);
	a = &answers[requests < nanswers ? requests : nanswers - 1];
	requests++;
	*ans = (const char *)a->data;
	*len = a->len;
}

static struct ag_device *dev;
static unsigned char rsk[64];
static struct ag_store *st;
static char home[64];

/* A signed, sealed feed page for dev as the answer i. */
static void
page(int i, uint64_t since, uint64_t cursor, int more)
{
	struct gs_feed_header h;
	struct gs_buf f;
	char text[256], head[256];

	snprintf(text, sizeof(text), "{\"v\":1,\"since\":%llu,\"cursor\":%llu,"
	    "\"more\":%s,\"items\":[]}", (unsigned long long)since,
	    (unsigned long long)cursor, more ? "true" : "false");
	memset(&h, 0, sizeof(h));
	memcpy(h.deployment, dev->deployment, 16);
	memcpy(h.device, dev->device_id, 16);
	h.since = since;
	h.cursor = cursor;
	h.created_at = gs_now_ms();
	gs_buf_init(&f, GS_FEED_MAX);
	assert_int_equal(gs_feed_seal(&f, &h, text, strlen(text),
	    dev->sign_pk, rsk), GS_OK);
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/octet-stream\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", f.len);
	gs_buf_reset(&answers[i]);
	assert_int_equal(gs_buf_puts(&answers[i], head), GS_OK);
	assert_int_equal(gs_buf_append(&answers[i], f.data, f.len), GS_OK);
	gs_buf_release(&f);
	if (i + 1 > nanswers)
		nanswers = i + 1;
}

static void
fail500(int i)
{
	static const char a[] = "HTTP/1.1 500 X\r\nContent-Type: text/plain\r\n"
	    "Content-Length: 4\r\nConnection: close\r\n\r\noops";

	gs_buf_reset(&answers[i]);
	assert_int_equal(gs_buf_puts(&answers[i], a), GS_OK);
	if (i + 1 > nanswers)
		nanswers = i + 1;
}

static int
pull(struct ag_pull_stats *ps)
{
	struct ag_http *h = NULL;
	char url[64];
	int r;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", srv.port);
	assert_int_equal(ag_http_new(url, NULL, &h), GS_OK);
	memset(ps, 0, sizeof(*ps));
	r = ag_pull_run(st, h, NULL, dev, 0, 0, ps);
	ag_http_free(h);
	return r;
}

/* The stored cursor, or -1 when there is none. */
static long long
cursor(void)
{
	char *v = NULL;
	long long c = -1;

	if (ag_store_meta_get(st, "pull_cursor", &v) == GS_OK)
		c = strtoll(v, NULL, 10);
	gs_free(v);
	return c;
}

static int
setup(void **state)
{
	int i;

	(void)state;
	assert_int_equal(gs_crypto_init(), GS_OK);
	assert_int_equal(ag_device_new(&dev), GS_OK);
	gs_crypto_sign_keypair(dev->sign_pk, dev->sign_sk);
	gs_crypto_sign_keypair(dev->receipt_pk, rsk);
	gs_random(dev->device_id, 16);
	gs_random(dev->deployment, 16);
	snprintf(home, sizeof(home), "/tmp/gs-agent-pull.XXXXXX");
	assert_non_null(mkdtemp(home));
	assert_int_equal(ag_store_init(home, "440307001001001", "w-9", &st),
	    GS_OK);
	for (i = 0; i < 4; i++)
		gs_buf_init(&answers[i], GS_FEED_MAX);
	nanswers = requests = 0;
	canned_start(&srv, answer);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];
	int i;

	(void)state;
	canned_stop(&srv);
	for (i = 0; i < 4; i++)
		gs_buf_release(&answers[i]);
	ag_store_close(st);
	ag_device_free(dev);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
	return system(cmd) == 0 ? 0 : -1;
}

/* Two honest pages: applied, the cursor where the last one left it. */
static void
test_pages(void **state)
{
	struct ag_pull_stats ps;

	(void)state;
	page(0, 0, 5, 1);
	page(1, 5, 9, 0);
	fail500(2);
	assert_int_equal(pull(&ps), GS_OK);
	assert_int_equal(requests, 2);
	assert_int_equal(ps.pages, 2);
	assert_int_equal(ps.cursor, 9);
	assert_int_equal(cursor(), 9);
	assert_non_null(strstr(paths[1], "since=5&"));
}

/* A page answering another cursor than the one asked for (a replayed or
 * misdirected page, signed all the same): refused, nothing applied, the
 * cursor unmoved. */
static void
test_page_for_another_cursor(void **state)
{
	struct ag_pull_stats ps;

	(void)state;
	page(0, 7, 9, 0);
	assert_int_equal(pull(&ps), GS_EPROTOCOL);
	assert_int_equal(ps.pages, 0);
	assert_int_equal(cursor(), -1);
	/* Asked from 3, answered from 0: refused as well. */
	page(0, 0, 3, 0);
	assert_int_equal(pull(&ps), GS_OK);
	assert_int_equal(cursor(), 3);
	requests = 0;
	page(0, 0, 9, 0);
	assert_int_equal(pull(&ps), GS_EPROTOCOL);
	assert_int_equal(cursor(), 3);
}

/* "more" with a cursor that did not move: the pull stops there (asking
 * for the same page again would loop for ever), with what it has. */
static void
test_more_without_progress(void **state)
{
	struct ag_pull_stats ps;

	(void)state;
	page(0, 0, 0, 1);
	fail500(1);
	assert_int_equal(pull(&ps), GS_OK);
	assert_int_equal(requests, 1);
	assert_int_equal(ps.pages, 1);
	assert_int_equal(cursor(), 0);
}

/* A running sync signs with the key another command (gridagent rekey)
 * switched the device to since the sync began: the platform knows only
 * the new one now. */
static void
test_rekey_reload(void **state)
{
	struct gs_db *db = ag_store_db(st);
	struct gs_stmt *s = NULL;
	unsigned char pk[32], sk[64], old[32];

	(void)state;
	dev->enrolled_at = 1;
	dev->max_records = 10000;
	dev->max_envelope = 16 << 20;
	dev->max_plain = 64 << 20;
	snprintf(dev->platform_url, sizeof(dev->platform_url),
	    "http://127.0.0.1:%d", srv.port);
	assert_int_equal(ag_device_insert(db, dev), GS_OK);
	memcpy(old, dev->sign_pk, 32);
	/* Nothing changed: nothing moves. */
	assert_int_equal(ag_rekey_reload(db, dev), GS_OK);
	assert_memory_equal(dev->sign_pk, old, 32);
	gs_crypto_sign_keypair(pk, sk);
	assert_int_equal(gs_stmt_prepare(db, "UPDATE device SET sign_pk = ?1, "
	    "sign_sk = ?2 WHERE id = 1", &s), GS_OK);
	assert_int_equal(gs_stmt_bind_blob(s, 1, pk, 32), GS_OK);
	assert_int_equal(gs_stmt_bind_blob(s, 2, sk, 64), GS_OK);
	assert_int_equal(gs_stmt_step(s), GS_DONE);
	gs_stmt_finalize(s);
	assert_int_equal(ag_rekey_reload(db, dev), GS_OK);
	assert_memory_equal(dev->sign_pk, pk, 32);
	assert_memory_equal(dev->sign_sk, sk, 64);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_for_another_cursor,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_more_without_progress,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_reload, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
