/*
 * sync-deflate.c - bounded deflate/inflate: round trips, exact sizes,
 * truncation, trailing bytes, bombs, caps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "crypto.h"
#include "deflate.h"

#define MIB (1024u * 1024u)

/* Compresses n bytes of p into z (cap 2n + 64) at level 6, not the
 * batches' default: the tests below depend on the stream's shape (a
 * ratio near 1:1000 for zeros; no unused padding bits in the last byte
 * for the bit flips), which the level decides. */
static void
squeeze(struct gs_buf *z, const void *p, size_t n)
{
	gs_buf_init(z, 2 * n + 64);
	assert_int_equal(gs_deflate(z, p, n, 6), GS_OK);
}

static char *
text(size_t n)
{
	char *p = gs_malloc(n + 1);
	size_t i;

	assert_non_null(p);
	for (i = 0; i < n; i++)
		p[i] = "{\"uuid\":\"0190\",\"type\":\"person\"}\n"[i % 33];
	p[n] = '\0';
	return p;
}

static void
test_round_trip(void **state)
{
	static const size_t sizes[] = { 0, 1, 2, 100, 4096, 100000 };
	static const int levels[] = { 0, 1, 6, 9 }; /* 0: the default */
	size_t i;

	(void)state;
	for (i = 0; i < 4 * (sizeof sizes / sizeof sizes[0]); i++) {
		size_t n = sizes[i / 4];
		char *p = text(n);
		struct gs_buf z, o;

		gs_buf_init(&z, 2 * n + 64);
		assert_int_equal(gs_deflate(&z, p, n, levels[i % 4]), GS_OK);
		gs_buf_init(&o, n);
		assert_int_equal(gs_inflate(&o, z.data, z.len, n), GS_OK);
		assert_int_equal(o.len, n);
		if (n)
			assert_memory_equal(o.data, p, n);
		gs_buf_release(&z);
		gs_buf_release(&o);
		gs_free(p);
	}
}

static void
test_incompressible(void **state)
{
	unsigned char r[65536];
	struct gs_buf z, o;

	(void)state;
	gs_random(r, sizeof r);
	squeeze(&z, r, sizeof r);
	assert_true(z.len > sizeof r); /* stored blocks cost a little */
	gs_buf_init(&o, sizeof r);
	assert_int_equal(gs_inflate(&o, z.data, z.len, sizeof r), GS_OK);
	assert_memory_equal(o.data, r, sizeof r);
	gs_buf_release(&z);
	gs_buf_release(&o);
}

static void
test_appends(void **state)
{
	struct gs_buf z, o;

	(void)state;
	gs_buf_init(&z, 1000);
	assert_int_equal(gs_buf_puts(&z, "HDR"), GS_OK);
	assert_int_equal(gs_deflate(&z, "hello hello hello", 17, 9), GS_OK);
	assert_memory_equal(z.data, "HDR", 3);
	gs_buf_init(&o, 100);
	assert_int_equal(gs_buf_puts(&o, "x:"), GS_OK);
	assert_int_equal(gs_inflate(&o, z.data + 3, z.len - 3, 17), GS_OK);
	assert_string_equal(o.data, "x:hello hello hello");
	gs_buf_release(&z);
	gs_buf_release(&o);
}

static void
test_declared_size_must_be_exact(void **state)
{
	char *p = text(5000);
	struct gs_buf z, o;

	(void)state;
	squeeze(&z, p, 5000);
	gs_buf_init(&o, 10000);
	/* One byte short: the stream is longer than declared. */
	assert_int_equal(gs_inflate(&o, z.data, z.len, 4999), GS_EINFLATE);
	assert_int_equal(o.len, 0);
	/* One byte long: the stream ends early. */
	assert_int_equal(gs_inflate(&o, z.data, z.len, 5001), GS_EINFLATE);
	assert_int_equal(o.len, 0);
	assert_int_equal(gs_inflate(&o, z.data, z.len, 0), GS_EINFLATE);
	assert_int_equal(gs_inflate(&o, z.data, z.len, 5000), GS_OK);
	gs_buf_release(&z);
	gs_buf_release(&o);
	gs_free(p);
}

static void
test_truncated(void **state)
{
	char *p = text(3000);
	struct gs_buf z, o;
	size_t k;

	(void)state;
	squeeze(&z, p, 3000);
	gs_buf_init(&o, 3000);
	/* Every prefix is refused, and none loops. */
	for (k = 0; k < z.len; k++) {
		assert_int_equal(gs_inflate(&o, z.data, k, 3000), GS_EINFLATE);
		assert_int_equal(o.len, 0);
	}
	gs_buf_release(&z);
	gs_buf_release(&o);
	gs_free(p);
}

static void
test_trailing(void **state)
{
	char *p = text(3000);
	struct gs_buf z, o;
	size_t n;

	(void)state;
	squeeze(&z, p, 3000);
	n = z.len;
	gs_buf_init(&o, 6000);
	assert_int_equal(gs_buf_putc(&z, 'x'), GS_OK);
	assert_int_equal(gs_inflate(&o, z.data, z.len, 3000), GS_EINFLATE);
	/* A second whole stream after the first is trailing data too. */
	gs_buf_truncate(&z, n);
	assert_int_equal(gs_deflate(&z, p, 3000, 0), GS_OK);
	assert_int_equal(gs_inflate(&o, z.data, z.len, 3000), GS_EINFLATE);
	assert_int_equal(gs_inflate(&o, z.data, z.len, 6000), GS_EINFLATE);
	assert_int_equal(o.len, 0);
	gs_buf_release(&z);
	gs_buf_release(&o);
	gs_free(p);
}

static void
test_bomb(void **state)
{
	size_t n = 16 * MIB;
	char *zeros = gs_calloc(1, n);
	struct gs_buf z, o;

	(void)state;
	assert_non_null(zeros);
	squeeze(&z, zeros, n);
	gs_free(zeros);
	assert_true(z.len < n / 900); /* about 1:1000 */

	/* Declared small, inflates far beyond it: stops at the declared
	 * size, and the output never grew past the cap. */
	gs_buf_init(&o, 64 * 1024);
	assert_int_equal(gs_inflate(&o, z.data, z.len, 64 * 1024),
	    GS_EINFLATE);
	assert_int_equal(o.len, 0);
	assert_true(o.cap <= 64 * 1024 + 1);
	gs_buf_release(&o);

	/* Declared honestly but beyond the caller's cap: refused before
	 * anything is allocated. */
	gs_buf_init(&o, 1 * MIB);
	assert_int_equal(gs_inflate(&o, z.data, z.len, n), GS_EINFLATE);
	assert_null(o.data);

	/* Declared beyond what deflate can do for this many bytes. */
	gs_buf_init(&o, 64 * MIB);
	assert_int_equal(gs_inflate(&o, z.data, 10, 1 * MIB), GS_EINFLATE);
	assert_null(o.data);
	gs_buf_release(&z);
}

static void
test_corrupt(void **state)
{
	char *p = text(3000);
	struct gs_buf z, o;
	size_t i, same = 0;
	int bit;

	(void)state;
	squeeze(&z, p, 3000);
	gs_buf_init(&o, 3000);
	/* A flipped bit anywhere never gives other bytes: it is refused
	 * (the Adler-32 trailer catches what the deflate syntax does not),
	 * or, where it only touched a part of a Huffman table that no code
	 * uses (libdeflate reads such a table; zlib calls it malformed), the
	 * very same 3,000 bytes come out. */
	for (i = 0; i < z.len; i++) {
		for (bit = 0; bit < 8; bit++) {
			int r;

			z.data[i] ^= (char)(1 << bit);
			r = gs_inflate(&o, z.data, z.len, 3000);
			if (r == GS_OK) {
				assert_int_equal(o.len, 3000);
				assert_memory_equal(o.data, p, 3000);
				same++;
				gs_buf_truncate(&o, 0);
			} else {
				assert_int_equal(r, GS_EINFLATE);
				assert_int_equal(o.len, 0);
			}
			z.data[i] ^= (char)(1 << bit);
		}
	}
	/* Nearly all are refused. */
	assert_true(same * 20 < z.len * 8); /* 11 of 528 here */
	gs_buf_release(&z);
	gs_buf_release(&o);
	gs_free(p);
}

static void
test_not_zlib(void **state)
{
	/* A gzip header and a raw deflate block: only zlib is accepted. */
	static const unsigned char gz[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0,
		3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const unsigned char raw[] = { 3, 0 };
	/* A hand-made zlib stream with a stored block "abc". */
	static const unsigned char stored[] = { 0x78, 0x01, 0x01, 0x03, 0x00,
		0xfc, 0xff, 'a', 'b', 'c', 0x02, 0x4d, 0x01, 0x27 };
	struct gs_buf o;

	(void)state;
	gs_buf_init(&o, 100);
	assert_int_equal(gs_inflate(&o, gz, sizeof gz, 0), GS_EINFLATE);
	assert_int_equal(gs_inflate(&o, raw, sizeof raw, 0), GS_EINFLATE);
	assert_int_equal(gs_inflate(&o, stored, 1, 3), GS_EINFLATE);
	assert_int_equal(gs_inflate(&o, stored, sizeof stored, 3), GS_OK);
	assert_string_equal(o.data, "abc");
	gs_buf_release(&o);
}

static void
test_deflate_cap(void **state)
{
	unsigned char r[10000];
	struct gs_buf z;

	(void)state;
	gs_random(r, sizeof r);
	gs_buf_init(&z, 200);
	assert_int_equal(gs_buf_puts(&z, "keep"), GS_OK);
	assert_int_equal(gs_deflate(&z, r, sizeof r, 0), GS_ETOOBIG);
	assert_int_equal(z.len, 4);
	assert_string_equal(z.data, "keep");
	assert_int_equal(gs_deflate(&z, r, 10, 10), GS_EINVAL);
	assert_int_equal(gs_deflate(&z, r, 10, -1), GS_EINVAL);
	gs_buf_release(&z);
}

/* Mutation campaign (tests/MUTANTS.md).  The cap at its edge: a buffer
 * of exactly plain_len takes it, one byte less is the inflate refusal
 * (not the buffer's "too big").  Every exact size of small streams at
 * every level inflates (the scratch-byte probe must not turn an exact
 * end into a refusal), and a longer stream is named as such. */
static void
test_edges(void **state)
{
	static const int levels[] = { 0, 1, 6, 9 }; /* 0: libdeflate */
	char *p = text(3000);
	struct gs_buf z, o;
	size_t n, l;
	int r;

	(void)state;
	squeeze(&z, p, 3000);
	gs_buf_init(&o, 3000);
	assert_int_equal(gs_inflate(&o, z.data, z.len, 3000), GS_OK);
	gs_buf_release(&o);
	gs_buf_init(&o, 2999);
	assert_int_equal(gs_inflate(&o, z.data, z.len, 3000), GS_EINFLATE);
	assert_int_equal(o.len, 0);
	gs_buf_release(&o);
	gs_buf_init(&o, 10000);
	r = gs_inflate(&o, z.data, z.len, 2999);
	assert_int_equal(r, GS_EINFLATE);
	assert_non_null(strstr(gs_errmsg(r), "longer than the declared"));
	gs_buf_release(&o);
	gs_buf_release(&z);
	for (l = 0; l < 4; l++) {
		for (n = 1; n <= 600; n++) {
			gs_buf_init(&z, 2 * n + 64);
			assert_int_equal(gs_deflate(&z, p + n % 33, n,
			    levels[l]), GS_OK);
			gs_buf_init(&o, n);
			assert_int_equal(gs_inflate(&o, z.data, z.len, n),
			    GS_OK);
			assert_memory_equal(o.data, p + n % 33, n);
			gs_buf_release(&o);
			gs_buf_release(&z);
		}
	}
	gs_free(p);
}


/* n bytes of batch-like NDJSON: fixed keys and codes, pseudo-random ids
 * and digits (the parts that do not compress), the same on every run. */
static char *
batch_text(size_t n)
{
	static const char *const names[] = { "Wang", "Li", "Zhang", "Liu" };
	char *p = gs_malloc(n + 1);
	uint32_t x = 12345;
	size_t len = 0;

	assert_non_null(p);
	while (len < n) {
		char line[256];
		int k;

		x = x * 1103515245u + 12345u;
		k = snprintf(line, sizeof line,
		    "{\"change_id\":\"0190%08x-7abc\",\"fields\":{"
		    "\"grid\":\"440307001001\",\"name\":\"%s %u\","
		    "\"phone\":\"13%09u\",\"sex\":\"%c\"},"
		    "\"op\":\"upsert\",\"type\":\"person\"}\n",
		    (unsigned)x, names[x >> 30], (unsigned)(x >> 20),
		    (unsigned)(x % 1000000000u), x & 1 ? 'F' : 'M');
		assert_true(k > 0 && (size_t)k < sizeof line);
		if ((size_t)k > n - len)
			k = (int)(n - len);
		memcpy(p + len, line, (size_t)k);
		len += (size_t)k;
	}
	p[n] = '\0';
	return p;
}

/* The batches' default (level 0, libdeflate): a stream zlib inflates back
 * exactly, smaller for a batch than what zlib's level 2 wrote before it
 * (the wire's bytes per record must not grow), and under memory failure
 * an error with the buffer as it was. */
static void
test_default_level(void **state)
{
	size_t n = 400000;
	char *p = batch_text(n);
	struct gs_buf z, z2, o;
	long i;
	int r;

	(void)state;
	gs_buf_init_secret(&z, n + 1024);
	gs_buf_init(&z2, n + 1024);
	assert_int_equal(gs_deflate(&z, p, n, 0), GS_OK);
	assert_int_equal(gs_deflate(&z2, p, n, 2), GS_OK);
	assert_true(z.len < z2.len);
	gs_buf_init(&o, n);
	assert_int_equal(gs_inflate(&o, z.data, z.len, n), GS_OK);
	assert_memory_equal(o.data, p, n);
	gs_buf_release(&o);
	gs_buf_release(&z2);
	gs_buf_release(&z);
	for (i = 0; i < 8; i++) {
		gs_buf_init_secret(&z, n + 1024);
		assert_int_equal(gs_buf_puts(&z, "keep"), GS_OK);
		gs_mem_fail_after(i);
		r = gs_deflate(&z, p, n, 0);
		gs_mem_fail_after(-1);
		if (r == GS_OK) {
			gs_buf_release(&z);
			break;
		}
		assert_int_equal(r, GS_ENOMEM);
		assert_int_equal(z.len, 4);
		assert_string_equal(z.data, "keep");
		gs_buf_release(&z);
	}
	assert_true(i < 8);
	gs_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_incompressible),
		cmocka_unit_test(test_appends),
		cmocka_unit_test(test_declared_size_must_be_exact),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_trailing),
		cmocka_unit_test(test_bomb),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_not_zlib),
		cmocka_unit_test(test_deflate_cap),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_default_level),
	};

	if (gs_crypto_init() != GS_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
