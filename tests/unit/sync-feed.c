/*
 * sync-feed.c - GSQ1 request signatures and GSF1 feeds: round trip,
 * refusals, deflated feeds, and the frozen vectors
 * tests/data/vectors/feed-1.txt (plain) and feed-2.txt (deflated)
 * (GS_WRITE_VECTORS=1 rewrites them; only for a deliberate wire change).
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
#include "deflate.h"
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
seal_vector_flags(struct gs_buf *out, uint16_t flags)
{
	struct gs_feed_header h;
	unsigned char eph[32], nonce[24];

	memset(eph, 0x77, sizeof(eph));
	memset(nonce, 0x88, sizeof(nonce));
	header(&h);
	h.flags = flags;
	gs_buf_init(out, GS_FEED_MAX);
	assert_int_equal(gs_feed_seal_det(out, &h, plain, strlen(plain), dpk,
	    rsk, eph, nonce), GS_OK);
}

static void
seal_vector(struct gs_buf *out)
{
	seal_vector_flags(out, 0);
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

/* Signs f as the platform would ("GSF1-sig" || all but the signature),
 * after a test changed it. */
static void
resign(struct gs_buf *f)
{
	unsigned char *m = malloc(f->len - 64 + 8);

	assert_non_null(m);
	memcpy(m, "GSF1-sig", 8);
	memcpy(m + 8, f->data, f->len - 64);
	assert_int_equal(gs_crypto_sign((unsigned char *)f->data + f->len - 64,
	    m, f->len - 64 + 8, rsk), GS_OK);
	free(m);
}

/* Refusals of feeds the platform's key did sign: a signature proves who
 * made a feed, not that it makes sense.  Each is named (PROTOCOL.md
 * section 8): a cursor before since, bytes between the ciphertext and the
 * signature, lengths that do not add up, a feed over GS_FEED_MAX. */
static void
test_signed_refusals(void **state)
{
	struct gs_feed_header h, g;
	struct gs_buf f, p;
	unsigned char *big;
	size_t n;

	(void)state;
	gs_buf_init(&p, 1 << 20);
	/* The cursor before since: a platform going backwards. */
	header(&h);
	h.since = 5;
	h.cursor = 4;
	gs_buf_init(&f, GS_FEED_MAX);
	assert_int_equal(gs_feed_seal(&f, &h, plain, strlen(plain), dpk, rsk),
	    GS_OK);
	assert_int_equal(gs_feed_open(&p, &g, (unsigned char *)f.data, f.len,
	    dep, dev, rpk, dsk), GS_EPROTOCOL);
	assert_int_equal(p.len, 0);
	/* The same cursor as since (nothing new) is fine. */
	gs_buf_reset(&f);
	h.cursor = 5;
	assert_int_equal(gs_feed_seal(&f, &h, plain, strlen(plain), dpk, rsk),
	    GS_OK);
	assert_int_equal(gs_feed_open(&p, &g, (unsigned char *)f.data, f.len,
	    dep, dev, rpk, dsk), GS_OK);
	assert_int_equal(g.cursor, 5);
	gs_buf_release(&f);
	/* A byte between the ciphertext and the signature, signed. */
	seal_vector(&f);
	n = f.len;
	assert_int_equal(gs_buf_append(&f, "0123456789012345678901234567890123"
	    "456789012345678901234567890123456789", 65), GS_OK);
	memmove(f.data + n - 64 + 1, f.data + n - 64, 64);
	f.data[n - 64] = 0;
	f.len = n + 1;
	resign(&f);
	assert_int_equal(gs_feed_open(&p, &g, (unsigned char *)f.data, f.len,
	    dep, dev, rpk, dsk), GS_EPROTOCOL);
	gs_buf_release(&f);
	/* A plaintext length one short of the ciphertext's, signed: refused
	 * as lengths that do not add up, before any decryption. */
	seal_vector(&f);
	gs_put_le64((unsigned char *)f.data + 64,
	    gs_get_le64((unsigned char *)f.data + 64) - 1);
	resign(&f);
	assert_int_equal(gs_feed_open(&p, &g, (unsigned char *)f.data, f.len,
	    dep, dev, rpk, dsk), GS_EPROTOCOL);
	/* Over GS_FEED_MAX by one byte: too big, whatever it holds. */
	big = calloc(1, GS_FEED_MAX + 1);
	assert_non_null(big);
	memcpy(big, f.data, f.len);
	assert_int_equal(gs_feed_open(&p, &g, big, GS_FEED_MAX + 1, dep, dev,
	    rpk, dsk), GS_ETOOBIG);
	assert_int_not_equal(gs_feed_open(&p, &g, big, GS_FEED_MAX, dep, dev,
	    rpk, dsk), GS_ETOOBIG);
	free(big);
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

/* docs/PROTOCOL.md prints the vector's bytes (64 hex digits a line):
 * with its line breaks taken out, the document holds hex whole. */
static void
in_protocol(const char *hex)
{
	const char *top = getenv("GS_TOP");
	char path[512], *doc, *w;
	size_t n, i;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/docs/PROTOCOL.md",
	    top != NULL ? top : ".");
	if ((fp = fopen(path, "rb")) == NULL)
		fail_msg("cannot read %s (set GS_TOP)", path);
	doc = malloc(1 << 20);
	assert_non_null(doc);
	n = fread(doc, 1, (1 << 20) - 1, fp);
	fclose(fp);
	for (i = 0, w = doc; i < n; i++)
		if (doc[i] != '\n')
			*w++ = doc[i];
	*w = '\0';
	if (strstr(doc, hex) == NULL)
		fail_msg("docs/PROTOCOL.md does not print the vector %.16s...",
		    hex);
	free(doc);
}

/* A frozen vector: this build must produce it byte for byte, and the
 * committed bytes must open to the committed plaintext.  feed-1 is a
 * plain feed and carries a request signature too; feed-2 is the same
 * page deflated. */
static void
check_vector(const char *name, uint16_t flags)
{
	struct gs_buf f, text, p;
	struct gs_feed_header h;
	unsigned char sig[64], *bytes;
	char *hex, path[512], line[1 << 14];
	const char *top = getenv("GS_TOP");
	FILE *fp;
	size_t n;

	seal_vector_flags(&f, flags);
	gs_buf_init(&text, 1 << 20);
	hex = malloc(2 * f.len + 1);
	assert_non_null(hex);
	gs_hex_encode(hex, (unsigned char *)f.data, f.len);
	assert_int_equal(gs_buf_printf(&text, "feed %s\n", hex), GS_OK);
	if (flags == 0) {
		assert_int_equal(gs_req_sign(sig, "GET",
		    "/v1/devices/0190a6e200007000800000000000d001/pull", 0,
		    1764140700000, NULL, 0, dsk), GS_OK);
		gs_hex_encode(hex, sig, 64);
		assert_int_equal(gs_buf_printf(&text, "request_sig %s\n", hex),
		    GS_OK);
	}
	snprintf(path, sizeof(path), "%s/tests/data/vectors/%s",
	    top != NULL ? top : ".", name);
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
	assert_int_equal(h.flags, flags);
	in_protocol(line + 5);
	free(bytes);
	free(hex);
	gs_buf_release(&p);
	gs_buf_release(&f);
	gs_buf_release(&text);
}

static void
test_vector(void **state)
{
	(void)state;
	check_vector("feed-1.txt", 0);
	check_vector("feed-2.txt", GS_FEED_DEFLATED);
}

/* A deflated page: smaller on the wire, the same text out. */
static void
test_deflated(void **state)
{
	struct gs_feed_header h, g;
	struct gs_buf f, p, big;
	int i;

	(void)state;
	gs_buf_init(&big, 1 << 20);
	assert_int_equal(gs_buf_puts(&big, "{\"v\":1,\"items\":["), GS_OK);
	for (i = 0; i < 200; i++)
		assert_int_equal(gs_buf_printf(&big, "%s{\"kind\":\"record\","
		    "\"uuid\":\"0190a6e2-%04d-7000-8000-000000000001\","
		    "\"fields\":{\"name\":\"张三\",\"address\":\"深圳市大鹏新区"
		    "葵涌街道葵涌社区%d号\"}}", i ? "," : "", i, i), GS_OK);
	assert_int_equal(gs_buf_puts(&big, "]}"), GS_OK);
	header(&h);
	h.flags = GS_FEED_DEFLATED;
	gs_buf_init(&f, GS_FEED_MAX);
	gs_buf_init(&p, GS_FEED_MAX);
	assert_int_equal(gs_feed_seal(&f, &h, big.data, big.len, dpk, rsk),
	    GS_OK);
	assert_true(f.len < GS_FEED_OVERHEAD + big.len / 4);
	assert_int_equal(gs_feed_open(&p, &g, (unsigned char *)f.data, f.len,
	    dep, dev, rpk, dsk), GS_OK);
	assert_int_equal(g.flags, GS_FEED_DEFLATED);
	assert_int_equal(p.len, big.len);
	assert_memory_equal(p.data, big.data, big.len);
	assert_int_equal(p.data[p.len], '\0');
	/* A flag this version does not know is not sealed. */
	h.flags = 0x0002;
	assert_int_equal(gs_feed_seal(&f, &h, plain, strlen(plain), dpk, rsk),
	    GS_EINVAL);
	gs_buf_release(&f);
	gs_buf_release(&p);
	gs_buf_release(&big);
}

/* Seals bytes as the plaintext of a feed with these flags, as no
 * platform would, and opens it: the result code. */
static int
open_raw(uint16_t flags, const void *bytes, size_t n, size_t cap)
{
	struct gs_feed_header h, g;
	struct gs_buf f, p;
	unsigned char eph[32], nonce[24];
	int r;

	memset(eph, 0x77, sizeof(eph));
	memset(nonce, 0x88, sizeof(nonce));
	header(&h);
	h.flags = flags;
	gs_buf_init(&f, GS_FEED_MAX);
	gs_buf_init(&p, cap);
	assert_int_equal(gs_feed_seal_raw_det(&f, &h, bytes, n, dpk, rsk, eph,
	    nonce), GS_OK);
	r = gs_feed_open(&p, &g, (unsigned char *)f.data, f.len, dep, dev,
	    rpk, dsk);
	if (r != GS_OK)
		assert_int_equal(p.len, 0);
	gs_buf_release(&f);
	gs_buf_release(&p);
	return r;
}

/* What a deflated feed's plaintext must be, exactly: its text's length,
 * then one zlib stream of exactly that many bytes, within the cap.
 * Signed by the platform or not, anything else is refused. */
static void
test_deflated_refusals(void **state)
{
	struct gs_buf z, bomb;
	unsigned char n8[8];
	size_t len = strlen(plain);

	(void)state;
	gs_buf_init(&z, 1 << 20);
	gs_put_le64(n8, len);
	assert_int_equal(gs_buf_append(&z, n8, 8), GS_OK);
	assert_int_equal(gs_deflate(&z, plain, len, 6), GS_OK);
	/* As made: opens. */
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len, 1 << 20),
	    GS_OK);
	/* An unknown flag, even signed: refused before decryption. */
	assert_int_equal(open_raw(0x0003, z.data, z.len, 1 << 20),
	    GS_EPROTOCOL);
	assert_int_equal(open_raw(0x8000, plain, len, 1 << 20), GS_EPROTOCOL);
	/* Declared one byte longer, one byte shorter. */
	gs_put_le64((unsigned char *)z.data, len + 1);
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len, 1 << 20),
	    GS_EINFLATE);
	gs_put_le64((unsigned char *)z.data, len - 1);
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len, 1 << 20),
	    GS_EINFLATE);
	gs_put_le64((unsigned char *)z.data, len);
	/* Longer than the reader's cap: refused before inflating. */
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len, len - 1),
	    GS_EINFLATE);
	/* Exactly the cap: no room for the NUL the reader adds. */
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len, len),
	    GS_EINFLATE);
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len, len + 1),
	    GS_OK);
	/* A length past all reason (a bomb's claim). */
	gs_put_le64((unsigned char *)z.data, UINT64_MAX);
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len, 1 << 20),
	    GS_EINFLATE);
	gs_put_le64((unsigned char *)z.data, len);
	/* Truncated stream; bytes after its end; no stream at all. */
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len - 1,
	    1 << 20), GS_EINFLATE);
	assert_int_equal(gs_buf_append(&z, "x", 1), GS_OK);
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, z.len, 1 << 20),
	    GS_EINFLATE);
	assert_int_equal(open_raw(GS_FEED_DEFLATED, z.data, 7, 1 << 20),
	    GS_EINFLATE);
	assert_int_equal(open_raw(GS_FEED_DEFLATED, n8, 8, 1 << 20),
	    GS_EINFLATE);
	/* The plain text flagged as deflated. */
	assert_int_equal(open_raw(GS_FEED_DEFLATED, plain, len, 1 << 20),
	    GS_EINFLATE);
	/* A real bomb: 8 MiB of zeros in a few KiB, against a 1 MiB cap. */
	gs_buf_init(&bomb, 1 << 20);
	{
		char *zeros = calloc(1, 8u << 20);

		assert_non_null(zeros);
		gs_put_le64(n8, 8u << 20);
		assert_int_equal(gs_buf_append(&bomb, n8, 8), GS_OK);
		assert_int_equal(gs_deflate(&bomb, zeros, 8u << 20, 9), GS_OK);
		free(zeros);
	}
	assert_true(bomb.len < 64 * 1024);
	assert_int_equal(open_raw(GS_FEED_DEFLATED, bomb.data, bomb.len,
	    1 << 20), GS_EINFLATE);
	gs_buf_release(&bomb);
	gs_buf_release(&z);
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
		cmocka_unit_test(test_signed_refusals),
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_vector),
		cmocka_unit_test(test_deflated),
		cmocka_unit_test(test_deflated_refusals),
		cmocka_unit_test(test_reference),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
