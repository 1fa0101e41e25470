/*
 * sync-feed.c - GSQ1 request signatures and GSF1 feeds: round trip,
 * refusals, and the frozen vector tests/data/vectors/feed-1.txt
 * (GS_WRITE_VECTORS=1 rewrites it; only for a deliberate wire change).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "feed.h"
#include "schema.h"

static unsigned char rpk[32], rsk[64], dpk[32], dsk[64];
static const unsigned char dep[16] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
	0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const unsigned char dev[16] = { 0x01, 0x90, 0xa6, 0xe2, 0, 0, 0x70,
	0, 0x80, 0, 0, 0, 0, 0, 0xd0, 0x01 };
static const char plain[] = "{\"v\":1,\"cursor\":3,\"more\":false,"
    "\"items\":[{\"kind\":\"task\",\"id\":\"0190a6e2-0003-7000-8000-"
    "0000000f0001\",\"title\":\"走访张三\"}]}";

static int
setup(void **state)
{
	unsigned char seed[32];

	(void)state;
	assert_int_equal(gs_crypto_init(), GS_OK);
	memset(seed, 0x22, sizeof(seed));
	gs_crypto_sign_seed_keypair(rpk, rsk, seed);
	memset(seed, 0x33, sizeof(seed));
	gs_crypto_sign_seed_keypair(dpk, dsk, seed);
	return 0;
}

static void
header(struct gs_feed_header *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->deployment, dep, 16);
	memcpy(h->device, dev, 16);
	h->since = 0;
	h->cursor = 3;
	h->created_at = 1764140700000;
}

static void
seal_vector(struct gs_buf *out)
{
	struct gs_feed_header h;
	unsigned char eph[32], nonce[24];

	memset(eph, 0x77, sizeof(eph));
	memset(nonce, 0x88, sizeof(nonce));
	header(&h);
	gs_buf_init(out, GS_FEED_MAX);
	assert_int_equal(gs_feed_seal_det(out, &h, plain, strlen(plain), dpk,
	    rsk, eph, nonce), GS_OK);
}

static void
test_round_trip(void **state)
{
	struct gs_feed_header h, g;
	struct gs_buf f, p;

	(void)state;
	header(&h);
	gs_buf_init(&f, GS_FEED_MAX);
	gs_buf_init(&p, 1 << 20);
	assert_int_equal(gs_feed_seal(&f, &h, plain, strlen(plain), dpk, rsk),
	    GS_OK);
	assert_int_equal(f.len, GS_FEED_OVERHEAD + strlen(plain));
	assert_int_equal(gs_feed_open(&p, &g, (unsigned char *)f.data, f.len,
	    dep, dev, rpk, dsk), GS_OK);
	assert_string_equal(p.data, plain);
	assert_int_equal(g.cursor, 3);
	assert_int_equal(g.since, 0);
	gs_buf_release(&f);
	gs_buf_release(&p);
}

static void
test_refusals(void **state)
{
	struct gs_feed_header h;
	struct gs_buf f, p;
	unsigned char other[16], osk[64], opk[32], seed[32];
	size_t i;

	(void)state;
	seal_vector(&f);
	gs_buf_init(&p, 1 << 20);
	/* Any flipped bit anywhere: refused (signature, or lengths). */
	for (i = 0; i < f.len; i += 7) {
		f.data[i] ^= 0x04;
		assert_int_not_equal(gs_feed_open(&p, &h, (unsigned char *)
		    f.data, f.len, dep, dev, rpk, dsk), GS_OK);
		f.data[i] ^= 0x04;
	}
	/* Truncated. */
	assert_int_equal(gs_feed_open(&p, &h, (unsigned char *)f.data,
	    f.len - 1, dep, dev, rpk, dsk), GS_EPROTOCOL);
	assert_int_equal(gs_feed_open(&p, &h, (unsigned char *)f.data, 10,
	    dep, dev, rpk, dsk), GS_EPROTOCOL);
	/* Signed by someone else (the device's key is not the receipt key). */
	assert_int_equal(gs_feed_open(&p, &h, (unsigned char *)f.data, f.len,
	    dep, dev, dpk, dsk), GS_EBADSIG);
	/* For another device. */
	memcpy(other, dev, 16);
	other[15] ^= 1;
	assert_int_equal(gs_feed_open(&p, &h, (unsigned char *)f.data, f.len,
	    dep, other, rpk, dsk), GS_EINVAL);
	/* Another device's key cannot open it. */
	memset(seed, 0x44, sizeof(seed));
	gs_crypto_sign_seed_keypair(opk, osk, seed);
	assert_int_equal(gs_feed_open(&p, &h, (unsigned char *)f.data, f.len,
	    dep, dev, rpk, osk), GS_EDECRYPT);
	gs_buf_release(&f);
	gs_buf_release(&p);
}

static void
test_request(void **state)
{
	unsigned char sig[64];
	const char *path = "/v1/devices/0190a6e200007000800000000000d001/pull";

	(void)state;
	assert_int_equal(gs_req_sign(sig, "GET", path, 7, 1764140700000, NULL,
	    0, dsk), GS_OK);
	assert_int_equal(gs_req_verify(sig, "GET", path, 7, 1764140700000,
	    NULL, 0, dpk), GS_OK);
	assert_int_equal(gs_req_verify(sig, "GET", path, 8, 1764140700000,
	    NULL, 0, dpk), GS_EBADSIG);
	assert_int_equal(gs_req_verify(sig, "GET", path, 7, 1764140700001,
	    NULL, 0, dpk), GS_EBADSIG);
	assert_int_equal(gs_req_verify(sig, "POST", path, 7, 1764140700000,
	    NULL, 0, dpk), GS_EBADSIG);
	assert_int_equal(gs_req_verify(sig, "GET", path, 7, 1764140700000,
	    "x", 1, dpk), GS_EBADSIG);
	assert_int_equal(gs_req_verify(sig, "GET", path, 7, 1764140700000,
	    NULL, 0, rpk), GS_EBADSIG);
}

/* The frozen vector: this build must produce it byte for byte, and the
 * committed bytes must open to the committed plaintext. */
static void
test_vector(void **state)
{
	struct gs_buf f, text, p;
	struct gs_feed_header h;
	unsigned char sig[64], *bytes;
	char *hex, path[512], line[1 << 14];
	const char *top = getenv("GS_TOP");
	FILE *fp;
	size_t n;

	(void)state;
	seal_vector(&f);
	assert_int_equal(gs_req_sign(sig, "GET",
	    "/v1/devices/0190a6e200007000800000000000d001/pull", 0,
	    1764140700000, NULL, 0, dsk), GS_OK);
	gs_buf_init(&text, 1 << 20);
	hex = malloc(2 * f.len + 1);
	assert_non_null(hex);
	gs_hex_encode(hex, (unsigned char *)f.data, f.len);
	assert_int_equal(gs_buf_printf(&text, "feed %s\n", hex), GS_OK);
	gs_hex_encode(hex, sig, 64);
	assert_int_equal(gs_buf_printf(&text, "request_sig %s\n", hex), GS_OK);
	snprintf(path, sizeof(path), "%s/tests/data/vectors/feed-1.txt",
	    top != NULL ? top : ".");
	if (getenv("GS_WRITE_VECTORS") != NULL) {
		assert_non_null(fp = fopen(path, "wb"));
		assert_int_equal(fwrite(text.data, 1, text.len, fp), text.len);
		assert_int_equal(fclose(fp), 0);
	}
	if ((fp = fopen(path, "rb")) == NULL)
		fail_msg("cannot read %s (set GS_TOP)", path);
	n = fread(line, 1, sizeof(line) - 1, fp);
	fclose(fp);
	line[n] = '\0';
	assert_string_equal(line, text.data);
	/* The committed bytes open. */
	*strchr(line, '\n') = '\0';
	bytes = malloc(f.len);
	assert_non_null(bytes);
	assert_int_equal(gs_hex_decode(bytes, f.len, line + 5), GS_OK);
	gs_buf_init(&p, 1 << 20);
	assert_int_equal(gs_feed_open(&p, &h, bytes, f.len, dep, dev, rpk,
	    dsk), GS_OK);
	assert_string_equal(p.data, plain);
	free(bytes);
	free(hex);
	gs_buf_release(&p);
	gs_buf_release(&f);
	gs_buf_release(&text);
}

/* Reference data: our own is in step with itself; a newer form version
 * or another code table on the platform is named. */
static void
test_reference(void **state)
{
	struct gs_schema *s = NULL;
	json_t *ref, *diff;

	(void)state;
	assert_int_equal(gs_schema_load(&s), GS_OK);
	assert_non_null(ref = gs_feed_reference(s));
	assert_true(json_is_integer(json_object_get(json_object_get(ref,
	    "forms"), "person")));
	assert_int_equal(strlen(json_string_value(json_object_get(
	    json_object_get(ref, "codes"), "sex"))), 16);
	assert_non_null(diff = gs_feed_reference_diff(s, ref));
	assert_int_equal(json_array_size(diff), 0);
	json_decref(diff);
	json_object_set_new(json_object_get(ref, "forms"), "person",
	    json_integer(99));
	json_object_set_new(json_object_get(ref, "codes"), "sex",
	    json_string("0000000000000000"));
	json_object_set_new(json_object_get(ref, "forms"), "asset",
	    json_integer(1));
	assert_non_null(diff = gs_feed_reference_diff(s, ref));
	assert_int_equal(json_array_size(diff), 3);
	json_decref(diff);
	json_decref(ref);
	gs_schema_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_reference),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
