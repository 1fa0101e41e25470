/*
 * sync-json.c - the fast JSON reader against jansson: fixed cases, then
 * many thousands of mutated inputs on which both must agree (both refuse,
 * or both accept and give equal values).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/error.h"
#include "json.h"

static const char *const seeds[] = {
	"{\"name\":\"陈静红\",\"pop_type\":\"FLOATING\",\"id_number\":"
	"\"431224194403170444\",\"sex\":\"2\",\"birth_date\":\"1944-03-17\","
	"\"address\":\"广东省深圳市大鹏新区大鹏街道布新社区一村27巷28号705房\"}",
	"{\"tags\":[\"ELDERLY_ALONE\",\"LOW_INCOME\"],\"location\":{\"lat\":"
	"22.5912,\"lon\":114.4791,\"accuracy\":12.5,\"coord_sys\":\"WGS84\"},"
	"\"is_rental\":true,\"occupants\":3,\"note\":null,\"x\":false}",
	"{\"esc\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\u4e2d\\ud83d\\ude00\","
	"\"n\":-0.5e-3,\"m\":1E+2,\"k\":-0,\"big\":9223372036854775807}",
	"{ \"a\" : [ 1 , 2 , [ ] , { } ] , \"b\" : \"\" , \"\" : 0 }\r\n",
	"[1,\"two\",{\"three\":3.0},null,true,false,-9223372036854775808]",
};

static int
agree(const char *text, size_t len)
{
	json_error_t err;
	json_t *a, *b = NULL;
	char why[128];
	int r, same;

	a = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
	    &err);
	r = gs_json_parse(text, len, &b, why, sizeof(why));
	/* jansson 2.14 lets a raw NUL byte between tokens pass; we are
	 * stricter on purpose: a NUL anywhere is refused. */
	if (memchr(text, '\0', len) != NULL)
		same = r == GS_EPARSE && b == NULL;
	else if (a == NULL)
		same = r == GS_EPARSE && b == NULL && why[0] != '\0';
	else
		same = r == GS_OK && json_equal(a, b);
	if (!same) {
		fprintf(stderr, "disagree on %zu bytes: jansson %s (%s), "
				"ours %d (%s): ", len, a ? "ok" : "error",
		    a ? "" : err.text, r, why);
		fwrite(text, 1, len, stderr);
		fputc('\n', stderr);
	}
	json_decref(a);
	json_decref(b);
	return same;
}

static void
test_fixed(void **state)
{
	static const char *const good[] = {
		"{}", "[]", "{\"a\":1}", " {\"a\" : [true, false, null]} ",
		"{\"u\":\"\\u00e9\\uD834\\uDD1E\"}", "0", "-1.5e10", "\"x\"",
		"{\"a\":{\"b\":{\"c\":[[[]]]}}}",
	};
	static const char *const badv[] = {
		"", " ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]",
		"{'a':1}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
		"{\"a\":-}", "{\"a\":1e}", "{\"a\":tru}", "{\"a\":nul}",
		"{\"a\":1}x", "{\"a\":1}{}", "{\"a\":\"\\x\"}",
		"{\"a\":\"\\u12\"}", "{\"a\":\"\\ud800\"}",
		"{\"a\":\"\\udc00\"}", "{\"a\":\"\\u0000\"}",
		"{\"a\":\"tab\there\"}", "{\"a\":1,\"a\":2}",
		"{\"a\":99999999999999999999}", "{\"a\":1e999}",
		"{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xff\"}",
		"{\"a\":\"unterminated}",
	};
	json_t *v0 = NULL;
	char why0[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		json_t *v = NULL;
		char why[128];

		assert_int_equal(gs_json_parse(good[i], strlen(good[i]), &v,
		    why, sizeof(why)), GS_OK);
		json_decref(v);
		assert_true(agree(good[i], strlen(good[i])));
	}
	for (i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
		json_t *v = NULL;
		char why[128];

		assert_int_equal(gs_json_parse(badv[i], strlen(badv[i]), &v,
		    why, sizeof(why)), GS_EPARSE);
		assert_null(v);
		assert_non_null(strstr(why, "column "));
		assert_true(agree(badv[i], strlen(badv[i])));
	}
	/* A NUL between tokens is refused. */
	assert_int_equal(gs_json_parse("{\"a\":1\0}", 8, &v0, why0,
	    sizeof(why0)), GS_EPARSE);
	/* Not NUL-terminated: the reader must stop at len. */
	assert_true(agree("{\"a\":12345", 8));
	assert_true(agree("{\"a\":\"xy\"}zzz", 10));
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t
next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 16);
}

static void
test_mutations(void **state)
{
	static const unsigned char interesting[] = { '"', '\\', 'u', '0',
		'9', 0x00, 0x1f, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xed,
		0xef, 0xf0, 0xf4, 0xf5, 0xff, '{', '}', '[', ']', ',', ':',
		'e', 'E', '-', '+', '.', ' ', 'd', 'D', 'n', 't', 'f' };
	unsigned char buf[1024];
	size_t nseeds = sizeof(seeds) / sizeof(seeds[0]);
	int i, k, m, failures = 0;

	(void)state;
	for (i = 0; i < 60000; i++) {
		const char *s = seeds[next() % nseeds];
		size_t len = strlen(s), pos;

		memcpy(buf, s, len);
		for (m = 1 + (int)(next() % 3), k = 0; k < m; k++) {
			pos = len ? next() % len : 0;
			switch (next() % 5) {
			case 0: /* replace with an interesting byte */
				buf[pos] = interesting[next() %
				    sizeof(interesting)];
				break;
			case 1: /* random byte */
				buf[pos] = (unsigned char)next();
				break;
			case 2: /* delete */
				if (len > 0) {
					memmove(buf + pos, buf + pos + 1,
					    len - pos - 1);
					len--;
				}
				break;
			case 3: /* insert */
				if (len < sizeof(buf) - 1) {
					memmove(buf + pos + 1, buf + pos,
					    len - pos);
					buf[pos] = interesting[next() %
					    sizeof(interesting)];
					len++;
				}
				break;
			default: /* truncate */
				len = pos;
				break;
			}
		}
		if (!agree((const char *)buf, len) && ++failures > 10)
			break;
	}
	assert_int_equal(failures, 0);
}

/* Counts what reaches the allocator installed before the arena's. */
static long heap_mallocs;

static void *
count_malloc(size_t n)
{
	heap_mallocs++;
	return malloc(n);
}

static void
count_free(void *p)
{
	free(p);
}

/*
 * The arena (json.h): inside it a parse allocates nothing from the heap,
 * values made before it are freed to the heap, a value too big for it
 * goes to the heap, reset and end leave jansson working as before.  The
 * sanitizer build catches a heap free of arena memory or the reverse.
 */
static void
test_arena(void **state)
{
	struct gs_json_arena *a = NULL;
	json_t *v = NULL, *before = NULL, *want = NULL;
	char why[128], *big;
	size_t i;
	long n;

	(void)state;
	assert_int_equal(gs_json_parse(seeds[0], strlen(seeds[0]), &want,
	    why, sizeof(why)), GS_OK);
	assert_int_equal(gs_json_parse(seeds[1], strlen(seeds[1]), &before,
	    why, sizeof(why)), GS_OK);
	assert_int_equal(gs_json_arena_begin(&a), GS_OK);
	assert_non_null(a);
	n = heap_mallocs;
	for (i = 0; i < 2000; i++) {
		gs_json_arena_reset(a);
		assert_int_equal(gs_json_parse(seeds[i % 2], strlen(seeds[i %
		    2]), &v, why, sizeof(why)), GS_OK);
		if (i % 2 == 0)
			assert_true(json_equal(v, want));
		json_decref(v);
	}
	/* 2,000 parses of about 20 values each: not one from the heap. */
	assert_int_equal(heap_mallocs, n);
	/* Made before the arena: freed to the heap from inside it. */
	json_decref(before);
	/* Too big for a block: from the heap, and back to it. */
	big = malloc(20000);
	assert_non_null(big);
	memset(big, 'x', 19999);
	big[19999] = '\0';
	v = json_string(big);
	assert_non_null(v);
	assert_true(heap_mallocs > n);
	json_decref(v);
	free(big);
	/* json_dumps text inside the arena: gs_json_free, not free(). */
	gs_json_arena_reset(a);
	v = json_real(22.5);
	assert_non_null(v);
	big = json_dumps(v, JSON_ENCODE_ANY);
	assert_non_null(big);
	assert_string_equal(big, "22.5");
	gs_json_free(big);
	json_decref(v);
	gs_json_arena_end(a);
	gs_json_arena_reset(NULL);
	gs_json_arena_end(NULL);
	/* After the end: the heap again. */
	n = heap_mallocs;
	assert_int_equal(gs_json_parse(seeds[0], strlen(seeds[0]), &v, why,
	    sizeof(why)), GS_OK);
	assert_true(heap_mallocs > n);
	assert_true(json_equal(v, want));
	json_decref(v);
	json_decref(want);
}

int
main(void)
{
	/* Before any jansson value exists: the arena's fallback. */
	json_set_alloc_funcs(count_malloc, count_free);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_arena),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
