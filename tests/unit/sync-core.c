/*
 * sync-core.c - unit tests for sync/core: the error table, capped buffers,
 * hex and little-endian helpers, strict number parsing.
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
#include "core/mem.h"
#include "core/util.h"

static void
test_error_table(void **state)
{
	(void)state;
	assert_int_equal(GS_OK, 0);
	assert_string_equal(gs_error_code(GS_EVALIDATION), "validation_failed");
	assert_int_equal(gs_error_exit(GS_EVALIDATION), 65);
	assert_int_equal(gs_error_exit(GS_ENETWORK), 75);
	assert_int_equal(gs_error_exit(GS_EREVOKED), 77);
	assert_int_equal(gs_error_exit(GS_EINVAL), 64);
	assert_int_equal(gs_error_http(GS_EBADSIG), 401);
	assert_int_equal(gs_error_http(GS_ETOOBIG), 413);
	assert_int_equal(gs_error_class(GS_ENETWORK), GS_CLASS_RETRY);
	assert_int_equal(gs_error_from_code("bad_signature"), GS_EBADSIG);
	assert_int_equal(gs_error_from_code("nonsense"), GS_EPROTOCOL);
	assert_string_equal(gs_strerror(9999), "unknown error");
	assert_string_equal(gs_strerror(-1), "unknown error");
}

static void
test_error_table_complete(void **state)
{
	int i;

	(void)state;
	/* Every number below the count is a row: no holes, no duplicates. */
	for (i = 0; i < GS_ERROR_COUNT_; i++) {
		assert_string_not_equal(gs_error_code(i), "unknown");
		assert_int_equal(gs_error_from_code(gs_error_code(i)), i);
	}
}

static void
test_error_detail(void **state)
{
	(void)state;
	gs_errmsg_clear();
	assert_string_equal(gs_errmsg(GS_EPARSE), "malformed input");
	assert_int_equal(GS_FAIL(GS_EPARSE, "line %d: bad", 7), GS_EPARSE);
	assert_string_equal(gs_errmsg(GS_EPARSE), "line 7: bad");
	/* A detail belongs to its code only. */
	assert_string_equal(gs_errmsg(GS_EIO), "input/output error");
}

/* A detail that quotes the last one, and one longer than the room. */
static void
test_error_detail_quote_long(void **state)
{
	char path[1200];
	const char *m;

	(void)state;
	(void)GS_FAIL(GS_EIO, "the key bundle expired");
	(void)GS_FAIL(GS_EBADSIG, "refused: %s", gs_errmsg(GS_EIO));
	assert_string_equal(gs_errmsg(GS_EBADSIG),
	    "refused: the key bundle expired");
	memset(path, 'd', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	(void)GS_FAIL(GS_EDB, "/%s/agent.db: unable to open database file",
	    path);
	m = gs_errmsg(GS_EDB);
	assert_true(strlen(m) < 512);
	assert_true(strncmp(m, "/ddd", 4) == 0);
	assert_non_null(strstr(m, "d...d"));
	assert_non_null(strstr(m, "/agent.db: unable to open database file"));
}

static void
test_buf_cap(void **state)
{
	struct gs_buf b;
	size_t len;
	char *d;

	(void)state;
	gs_buf_init(&b, 8);
	assert_int_equal(gs_buf_puts(&b, "abcd"), GS_OK);
	assert_int_equal(gs_buf_printf(&b, "%d", 123), GS_OK);
	assert_string_equal(b.data, "abcd123");
	/* Past the cap: refused, and nothing half-appended. */
	assert_int_equal(gs_buf_puts(&b, "xy"), GS_ETOOBIG);
	assert_int_equal(b.len, 7);
	assert_string_equal(b.data, "abcd123");
	assert_int_equal(gs_buf_putc(&b, 'z'), GS_OK);
	assert_int_equal(gs_buf_putc(&b, 'z'), GS_ETOOBIG);
	d = gs_buf_detach(&b, &len);
	assert_int_equal(len, 8);
	assert_string_equal(d, "abcd123z");
	assert_null(b.data);
	gs_free(d);
	gs_buf_release(&b);
	gs_buf_release(NULL);
}

static void
test_buf_enomem(void **state)
{
	struct gs_buf b;

	(void)state;
	gs_buf_init(&b, 1024);
	gs_mem_fail_after(0);
	assert_int_equal(gs_buf_puts(&b, "x"), GS_ENOMEM);
	assert_int_equal(gs_mem_fail_after(-1), 1);
	assert_int_equal(b.len, 0);
	assert_int_equal(gs_buf_puts(&b, "x"), GS_OK);
	gs_buf_release(&b);
}

/* A secret buffer grows by copy (core/buf.h): its bytes, its terminator
 * and its cap come through every move, a failed move changes nothing,
 * and reset leaves every byte it may have held zero. */
static void
test_buf_secret(void **state)
{
	struct gs_buf b;
	char want[5000];
	const char *old;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(want) - 1; i++)
		want[i] = (char)('a' + i % 26);
	want[sizeof(want) - 1] = '\0';
	gs_buf_init_secret(&b, sizeof(want) - 1);
	assert_int_equal(b.secret, 1);
	for (i = 0; i < sizeof(want) - 1; i += 7)
		assert_int_equal(gs_buf_append(&b, want + i,
		    i + 7 < sizeof(want) - 1 ? 7 : sizeof(want) - 1 - i), GS_OK);
	assert_int_equal(b.len, sizeof(want) - 1);
	assert_string_equal(b.data, want);
	assert_int_equal(gs_buf_putc(&b, 'x'), GS_ETOOBIG);

	/* A failed move: the old block and its bytes stay. */
	gs_buf_release(&b);
	assert_null(b.data);
	gs_buf_init_secret(&b, sizeof(want));
	assert_int_equal(gs_buf_puts(&b, "12345"), GS_OK);
	old = b.data;
	gs_mem_fail_after(0);
	assert_int_equal(gs_buf_reserve(&b, 4000), GS_ENOMEM);
	assert_int_equal(gs_mem_fail_after(-1), 1);
	assert_ptr_equal(b.data, old);
	assert_string_equal(b.data, "12345");
	assert_int_equal(gs_buf_reserve(&b, 4000), GS_OK);
	assert_string_equal(b.data, "12345");

	gs_buf_reset(&b);
	assert_int_equal(b.len, 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(b.data[i], 0);

	/* Reset wipes every byte the buffer may have held (its high-water
	 * mark), not just the bytes in use: those dropped by truncation, and
	 * those written into reserved room before len was set. */
	assert_int_equal(gs_buf_puts(&b, "secret words"), GS_OK);
	gs_buf_truncate(&b, 3);
	assert_int_equal(gs_buf_reserve(&b, 100), GS_OK);
	memset(b.data + b.len, 'z', 100);
	old = b.data;
	gs_buf_reset(&b);
	assert_ptr_equal(b.data, old); /* the block is kept */
	for (i = 0; i < 3 + 100 + 1; i++)
		assert_int_equal(b.data[i], 0);
	/* After a move, the new block's mark covers the copy and what was
	 * reserved. */
	assert_int_equal(gs_buf_puts(&b, "abc"), GS_OK);
	assert_int_equal(gs_buf_reserve(&b, 4500), GS_OK);
	memset(b.data + b.len, 'y', 4500);
	gs_buf_truncate(&b, 1);
	gs_buf_reset(&b);
	for (i = 0; i < 3 + 4500 + 1; i++)
		assert_int_equal(b.data[i], 0);
	gs_buf_release(&b);

	/* gs_buf_init makes an ordinary buffer of a released secret one. */
	gs_buf_init(&b, 16);
	assert_int_equal(b.secret, 0);
	gs_buf_release(&b);
}

/* AnonHugePages of this process, in KiB; -1 when it cannot be read. */
static long
anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	char line[256];
	long kb = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/*
 * gs_mem_hint_huge: nothing for NULL or small buffers; a big one filled
 * after the hint is backed by huge pages (where the kernel has them in
 * "madvise" or "always" mode), its bytes as written.
 */
static void
test_mem_hint_huge(void **state)
{
	size_t n = (size_t)32 << 20;
	char mode[128] = "";
	unsigned char *p;
	long before, after;
	FILE *f;

	(void)state;
	gs_mem_hint_huge(NULL, n);
	p = malloc(4096);
	assert_non_null(p);
	gs_mem_hint_huge(p, 4096);
	free(p);
	if ((f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r"))
	    != NULL) {
		if (fgets(mode, sizeof(mode), f) == NULL)
			mode[0] = '\0';
		fclose(f);
	}
	if (strstr(mode, "[madvise]") == NULL && strstr(mode, "[always]") ==
	    NULL)
		skip(); /* no transparent huge pages here */
	p = malloc(n);
	assert_non_null(p);
	gs_mem_hint_huge(p, n);
	before = anon_huge_kb();
	memset(p, 0x5a, n);
	after = anon_huge_kb();
	print_message("AnonHugePages %ld -> %ld kB\n", before, after);
	assert_true(before >= 0);
	assert_true(after - before >= 2048);
	assert_int_equal(p[0], 0x5a);
	assert_int_equal(p[n - 1], 0x5a);
	free(p);
}

static void
test_hex_le(void **state)
{
	unsigned char in[3] = { 0x00, 0xab, 0xff }, out[3];
	unsigned char le[8];
	char hex[7];

	(void)state;
	gs_hex_encode(hex, in, 3);
	assert_string_equal(hex, "00abff");
	assert_int_equal(gs_hex_decode(out, 3, "00ABff"), GS_OK);
	assert_memory_equal(in, out, 3);
	assert_int_equal(gs_hex_decode(out, 3, "00abf"), GS_EPARSE);
	assert_int_equal(gs_hex_decode(out, 3, "00abfg"), GS_EPARSE);
	/* The wire's spelling: lower case only, exactly len digits. */
	assert_true(gs_hex_is_lower("00abff", 6));
	assert_false(gs_hex_is_lower("00ABff", 6));
	assert_false(gs_hex_is_lower("00abf", 6));
	assert_false(gs_hex_is_lower("00abff0", 6));
	assert_false(gs_hex_is_lower("00abfg", 6));
	/* An id typed on a command line: folded only when it is all hex
	 * digits and dashes. */
	{
		char id[] = "0190A6E2-0000-7000-8000-00000000D001";
		char name[] = "Zhang-AB";

		assert_string_equal(gs_id_lower(id),
		    "0190a6e2-0000-7000-8000-00000000d001");
		assert_string_equal(gs_id_lower(name), "Zhang-AB");
	}
	gs_put_le64(le, 0x0102030405060708ULL);
	assert_int_equal(le[0], 8);
	assert_int_equal(le[7], 1);
	assert_true(gs_get_le64(le) == 0x0102030405060708ULL);
	gs_put_le32(le, 0xdeadbeef);
	assert_true(gs_get_le32(le) == 0xdeadbeef);
	gs_put_le16(le, 0xbeef);
	assert_int_equal(gs_get_le16(le), 0xbeef);
}

static void
test_parse_numbers(void **state)
{
	uint64_t u;
	int64_t i;

	(void)state;
	assert_int_equal(gs_parse_u64("42", 100, &u), GS_OK);
	assert_int_equal(u, 42);
	assert_int_equal(gs_parse_u64("101", 100, &u), GS_EINVAL);
	assert_int_equal(gs_parse_u64("-1", 100, &u), GS_EINVAL);
	assert_int_equal(gs_parse_u64(" 1", 100, &u), GS_EINVAL);
	assert_int_equal(gs_parse_u64("1x", 100, &u), GS_EINVAL);
	assert_int_equal(gs_parse_u64("", 100, &u), GS_EINVAL);
	assert_int_equal(gs_parse_u64("99999999999999999999999", UINT64_MAX,
			     &u), GS_EINVAL);
	assert_int_equal(gs_parse_i64("-5", -10, 10, &i), GS_OK);
	assert_int_equal(i, -5);
	assert_int_equal(gs_parse_i64("-11", -10, 10, &i), GS_EINVAL);
}

static void
test_time_format(void **state)
{
	char out[32];

	(void)state;
	gs_time_format(out, sizeof(out), 1795676673123LL);
	assert_string_equal(out, "2026-11-26T07:04:33.123Z");
}

static void
test_text_formats(void **state)
{
	char out[GS_TEXT_MAX];

	(void)state;
	assert_string_equal(gs_time_text(out, sizeof(out), 1795676673999LL,
	    0), "2026-11-26T07:04:33Z");
	assert_string_equal(gs_time_text(out, sizeof(out), 0,
	    GS_TIME_ZERO_NEVER), "never");
	assert_string_equal(gs_time_text(out, sizeof(out), 0, 0),
	    "1970-01-01T00:00:00Z");
	assert_string_equal(gs_time_text(out, sizeof(out), -1, 0),
	    "1969-12-31T23:59:59Z");
	assert_string_equal(gs_size_text(out, sizeof(out), 0), "0 B");
	assert_string_equal(gs_size_text(out, sizeof(out), 1023), "1023 B");
	assert_string_equal(gs_size_text(out, sizeof(out), 300325),
	    "293.3 KiB");
	assert_string_equal(gs_size_text(out, sizeof(out), 1048575),
	    "1.0 MiB");
	assert_string_equal(gs_size_text(out, sizeof(out), 20u << 20),
	    "20.0 MiB");
	assert_string_equal(gs_duration_text(out, sizeof(out), 41), "41 ms");
	assert_string_equal(gs_duration_text(out, sizeof(out), 0), "0 ms");
	assert_string_equal(gs_duration_text(out, sizeof(out), 41999),
	    "41 s");
	assert_string_equal(gs_duration_text(out, sizeof(out), 900000),
	    "15 min");
	assert_string_equal(gs_duration_text(out, sizeof(out), 7500000),
	    "2 h 5 min");
	assert_string_equal(gs_duration_text(out, sizeof(out), -90000000),
	    "-25 h 0 min");
	assert_string_equal(gs_duration_text(out, sizeof(out),
	    INT64_C(3) * 86400000 + 4 * 3600000), "3 d 4 h");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_table),
		cmocka_unit_test(test_error_table_complete),
		cmocka_unit_test(test_error_detail),
		cmocka_unit_test(test_error_detail_quote_long),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_enomem),
		cmocka_unit_test(test_buf_secret),
		cmocka_unit_test(test_mem_hint_huge),
		cmocka_unit_test(test_hex_le),
		cmocka_unit_test(test_parse_numbers),
		cmocka_unit_test(test_time_format),
		cmocka_unit_test(test_text_formats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
