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

/*
 * The string scan as it was before its fast paths, kept as the reference
 * they must agree with: 0 and *at = the closing quote's offset in body,
 * or -1 with *at = the offending byte and *what its message.
 */
static size_t
ref_utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static int
ref_scan(const unsigned char *body, size_t len, size_t *at, int *esc,
    const char **what)
{
	const unsigned char *p = body, *end = body + len;
	size_t n;

	*esc = 0;
	while (p < end) {
		unsigned char c = *p;

		if (c == '"') {
			*at = (size_t)(p - body);
			return 0;
		}
		if (c == '\\') {
			*esc = 1;
			p += (end - p >= 2) ? 2 : 1;
			continue;
		}
		if (c < 0x20) {
			*at = (size_t)(p - body);
			*what = "control character in a string";
			return -1;
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		if ((n = ref_utf8_len(p, end)) == 0) {
			*at = (size_t)(p - body);
			*what = "invalid UTF-8";
			return -1;
		}
		p += n;
	}
	*at = len;
	*what = "unterminated string";
	return -1;
}

static int
only_ws(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' &&
		    p[i] != '\n')
			return 0;
	return 1;
}

/*
 * json.h's vchars of a string body b[0..n) (no quotes), by a plain
 * reading of its characters: their count when each one is printable
 * ASCII (0x20-0x7e) or three bytes with lead byte E1, E3-EC, EE or EF
 * and two continuation bytes, else SIZE_MAX.  Only called on bodies the
 * reader took (valid UTF-8 without controls, quotes or backslashes).
 */
static size_t
ref_vchars(const unsigned char *b, size_t n)
{
	size_t i = 0, chars = 0;

	while (i < n) {
		if (b[i] >= 0x20 && b[i] <= 0x7e) {
			i++;
		} else if (n - i >= 3 && b[i] >= 0xe1 && b[i] <= 0xef &&
		    b[i] != 0xe2 && b[i] != 0xed && (b[i + 1] & 0xc0) == 0x80 &&
		    (b[i + 2] & 0xc0) == 0x80) {
			i += 3;
		} else {
			return SIZE_MAX;
		}
		chars++;
	}
	return chars;
}

/*
 * gs_json_plain_object's own string scan (json.c plain_string) takes
 * "<body> as a value and as a key exactly when the reference scan takes
 * it without an escape and it ends at the body's last byte; and a value
 * it takes has ref_vchars' vchars (the validators skip their own reading
 * of it on that count: sync/validate.c check_chars).
 */
static int
same_plain(const unsigned char *body, size_t len)
{
	unsigned char text[176];
	struct gs_json_span m[2];
	const char *what = NULL;
	size_t at, n;
	int esc, want, val, key;

	if (len + 10 > sizeof(text))
		return 1;
	want = ref_scan(body, len, &at, &esc, &what) == 0 && !esc &&
	    at == len - 1;
	memcpy(text, "{\"k\":\"", 6);
	memcpy(text + 6, body, len);
	text[6 + len] = '}';
	val = gs_json_plain_object((const char *)text, len + 7, m, 2, &n);
	if (val && (n != 1 || m[0].vlen != len + 1 ||
	    m[0].val != (const char *)text + 5 ||
	    m[0].vchars != ref_vchars(body, len - 1)))
		val = -1;
	/* The same members, in the other two readers. */
	if (val == 1 && (!gs_json_plain_members((const char *)text, len + 7,
	    m, 2, &n) || m[0].vchars != ref_vchars(body, len - 1) ||
	    !gs_json_plain_sorted((const char *)text, len + 7, m, 2, &n) ||
	    m[0].vchars != ref_vchars(body, len - 1)))
		val = -2;
	text[0] = '{';
	text[1] = '"';
	memcpy(text + 2, body, len);
	memcpy(text + 2 + len, ":1}", 3);
	key = gs_json_plain_object((const char *)text, len + 5, m, 2, &n);
	if (key && (n != 1 || m[0].klen != len - 1))
		key = -1;
	if (val == want && key == want)
		return 1;
	fprintf(stderr, "plain scan differs (want %d, value %d, key %d):",
	    want, val, key);
	for (at = 0; at < len; at++)
		fprintf(stderr, " %02x", body[at]);
	fputc('\n', stderr);
	return 0;
}

/* gs_json_parse of the string value "<body> (no closing quote added: the
 * body decides where it ends) says what the reference scan says, and so
 * does gs_json_plain_object (same_plain). */
static int
same_string(const unsigned char *body, size_t len)
{
	unsigned char text[160];
	const char *what = NULL;
	char want[128], why[128];
	json_t *v = NULL;
	size_t at;
	int esc, r, ok = 1;

	if (len + 1 > sizeof(text))
		return 1;
	text[0] = '"';
	memcpy(text + 1, body, len);
	r = gs_json_parse((const char *)text, len + 1, &v, why, sizeof(why));
	if (ref_scan(body, len, &at, &esc, &what) != 0) {
		snprintf(want, sizeof(want), "column %zu: %s", at + 2, what);
		ok = r == GS_EPARSE && strcmp(why, want) == 0;
	} else if (!only_ws(body + at + 1, len - at - 1)) {
		ok = r == GS_EPARSE; /* something after the string */
	} else if (!esc) {
		ok = r == GS_OK && json_string_length(v) == at &&
		    memcmp(json_string_value(v), body, at) == 0;
	}
	if (!ok) {
		size_t i;

		fprintf(stderr, "string scan differs (%d, %s):", r,
		    r == GS_OK ? "ok" : why);
		for (i = 0; i < len; i++)
			fprintf(stderr, " %02x", body[i]);
		fputc('\n', stderr);
	}
	json_decref(v);
	return ok && same_plain(body, len);
}

/* Pieces of string bodies: plain runs of every length around a word,
 * Chinese, the UTF-8 edge cases, escapes, controls, quotes. */
static const char *const pieces[] = {
	"a", "Zz09 ~", "0123456789abcdef", "广东省深圳市", "陈", "\x7f",
	"\\\"", "\\\\", "\\u4e2d", "\\", "\"", "\t", "\n", "\x01", "\x1f",
	"\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xe0\x9f\xbf", "\xed\x9f\xbf",
	"\xed\xa0\x80", "\xee\x80\x80", "\xef\xbf\xbf", "\xe1\x80\x80",
	"\xec\xbf\xbf", "\xf0\x90\x80\x80", "\xf0\x8f\xbf\xbf",
	"\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xc0\xaf",
	"\x80", "\xbf", "\xe9", "\xe9\x99", "\xf0\x9f\x98", "\xfe", "\xff",
	"\xe2\x80\xae", "\xe2\x81\xa6", "\xe2\x80\x94", "\xe3\x80\x80",
	"\xc2\x9f", "\xc2\xa0", "abcdefghijklmno\x7f", "\0",
};

static void
test_string_fast_paths(void **state)
{
	unsigned char buf[128];
	size_t i, n, pos;
	unsigned a, b, c;
	int failures = 0;

	(void)state;
	/* Every byte at every place of a word, every tail length. */
	for (pos = 0; pos < 12; pos++) {
		memset(buf, 'x', sizeof(buf));
		for (a = 0; a < 256; a++) {
			buf[pos] = (unsigned char)a;
			for (n = pos + 1; n <= pos + 10; n++) {
				buf[n] = '"';
				failures += !same_string(buf, n + 1);
				failures += !same_string(buf, n);
				buf[n] = 'x';
			}
		}
	}
	/* Every two-byte and (sampled) three-byte sequence. */
	for (a = 0x80; a < 0x100; a++)
		for (b = 0; b < 256; b++)
			for (c = 0; c < 256; c += (b & 0xc0) == 0x80 ? 1 : 41) {
				memcpy(buf, "abcdefg", 7);
				buf[7] = (unsigned char)a;
				buf[8] = (unsigned char)b;
				buf[9] = (unsigned char)c;
				buf[10] = '"';
				failures += !same_string(buf, 11);
				failures += !same_string(buf + 7, 4);
				failures += !same_string(buf + 7, 3);
				failures += !same_string(buf + 7, 2);
			}
	/* Generated bodies, then mutated. */
	for (i = 0; i < 200000 && failures < 10; i++) {
		size_t k, m = 1 + next() % 12;

		n = 0;
		for (k = 0; k < m; k++) {
			const char *p = pieces[next() % (sizeof(pieces) /
			    sizeof(pieces[0]))];
			size_t pl = p[0] == '\0' ? 1 : strlen(p);

			if (n + pl > sizeof(buf) - 1)
				break;
			memcpy(buf + n, p, pl);
			n += pl;
		}
		buf[n] = '"';
		failures += !same_string(buf, n + 1);
		if (n > 0) {
			buf[next() % n] = (unsigned char)next();
			failures += !same_string(buf, n + 1);
			failures += !same_string(buf, next() % (n + 1));
		}
	}
	assert_int_equal(failures, 0);
}

/*
 * gs_json_span_cmp orders keys as memcmp and "a prefix first" do, its
 * 8-byte prefix integers (k8) included: keys from a two-letter alphabet,
 * 0 to 20 bytes long, so that long common prefixes and prefixes of each
 * other are the rule; spans from gs_json_span_key and from
 * gs_json_plain_object alike.
 */
static int
ref_key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);

	if (c != 0)
		return c < 0 ? -1 : 1;
	return al < bl ? -1 : al > bl;
}

static void
test_span_order(void **state)
{
	char ka[24], kb[24], text[400];
	struct gs_json_span a, b, m[2];
	size_t i, j, n;
	int want, got;

	(void)state;
	for (i = 0; i < 200000; i++) {
		a.klen = next() % 21;
		b.klen = next() % 4 == 0 ? a.klen : next() % 21;
		for (j = 0; j < a.klen; j++)
			ka[j] = next() % 8 == 0 ? 'b' : 'a';
		memcpy(kb, ka, sizeof(kb));
		if (b.klen > 0 && next() % 2)
			kb[next() % b.klen] ^= 3; /* 'a' <-> 'b' */
		for (j = a.klen; j < b.klen; j++)
			kb[j] = next() % 2 ? 'b' : 'a';
		a.key = ka;
		b.key = kb;
		gs_json_span_key(&a);
		gs_json_span_key(&b);
		want = ref_key_cmp(ka, a.klen, kb, b.klen);
		got = gs_json_span_cmp(&a, &b);
		got = got < 0 ? -1 : got > 0;
		if (got != want)
			fail_msg("%.*s vs %.*s: %d, not %d", (int)a.klen, ka,
			    (int)b.klen, kb, got, want);
		/* The same keys read from a text: 2 members, in order. */
		n = (size_t)snprintf(text, sizeof(text), "{\"%.*s\":1,"
		    "\"%.*s\":2}", (int)a.klen, ka, (int)b.klen, kb);
		got = gs_json_plain_object(text, n, m, 2, &n);
		assert_int_equal(got, want != 0);
		if (got) {
			assert_int_equal(m[0].k8 == a.k8 || m[0].k8 == b.k8, 1);
			assert_true(gs_json_span_cmp(&m[0], &m[1]) < 0);
			assert_true(gs_json_span_cmp(&m[1], &m[0]) > 0);
			assert_int_equal(gs_json_span_cmp(&m[0], &m[0]), 0);
			assert_int_equal(m[0].val[0], want < 0 ? '1' : '2');
		}
	}
	/* Objects of up to 12 keys drawn from 14 (duplicates common, in
	 * any place): plain exactly when no key repeats, then in order;
	 * and gs_json_plain_sorted's 1 (which compares the keys' k8 first)
	 * exactly when they came in strictly increasing order, which every
	 * other object's keys are sorted into to make that common. */
	for (i = 0; i < 100000; i++) {
		static const char *const keys[] = { "a", "b", "ab", "ba",
			"aaaaaaaa", "aaaaaaaab", "aaaaaaaaa", "aaaaaaab", "z",
			"zz", "bbbbbbbbbbbbbbbbbb", "bbbbbbbbbbbbbbbbba", "$pii",
			"" };
		struct gs_json_span ms[12], mo[12];
		size_t k, x, nk = 1 + next() % 12, at = 1, got_n, n_o;
		unsigned used = 0, ws[12];
		int dup = 0, inorder = 1;

		for (k = 0; k < nk; k++)
			ws[k] = next() % 14;
		for (k = 1; (i & 1) && k < nk; k++)
			for (x = k; x > 0 && ref_key_cmp(keys[ws[x - 1]],
			    strlen(keys[ws[x - 1]]), keys[ws[x]],
			    strlen(keys[ws[x]])) > 0; x--) {
				unsigned t = ws[x];

				ws[x] = ws[x - 1];
				ws[x - 1] = t;
			}
		for (k = 1; k < nk; k++)
			inorder &= ref_key_cmp(keys[ws[k - 1]],
			    strlen(keys[ws[k - 1]]), keys[ws[k]],
			    strlen(keys[ws[k]])) < 0;
		text[0] = '{';
		for (k = 0; k < nk; k++) {
			unsigned w = ws[k];

			dup |= (used >> w) & 1;
			used |= 1u << w;
			at += (size_t)snprintf(text + at, sizeof(text) - at,
			    "%s\"%s\":%zu", k ? "," : "", keys[w], k);
		}
		text[at++] = '}';
		assert_true(at < sizeof(text));
		got = gs_json_plain_object(text, at, ms, 12, &got_n);
		assert_int_equal(got, !dup);
		assert_int_equal(gs_json_plain_sorted(text, at, mo, 12, &n_o),
		    inorder);
		if (!got)
			continue;
		assert_int_equal(got_n, nk);
		for (k = 1; k < nk; k++)
			assert_true(ref_key_cmp(ms[k - 1].key, ms[k - 1].klen,
			    ms[k].key, ms[k].klen) < 0);
	}
}

/*
 * Duplicate keys, found through the key filter: objects of keys from a
 * small set (so duplicates are common), some with equal filter bits but
 * different bytes, some spelt with escapes.  The first duplicate is
 * refused at the column just after it, as a lookup of every key would.
 */
static void
test_duplicate_keys(void **state)
{
	static const char *const keys[][2] = {
		/* text in the input, the key it stands for */
		{ "a", "a" }, { "\\u0061", "a" }, { "b", "b" },
		{ "axbc", "axbc" }, { "aybc", "aybc" }, { "azbc", "azbc" },
		{ "", "" }, { "id_number", "id_number" },
		{ "id_nu\\u006dber", "id_number" }, { "陈", "陈" },
		{ "k0", "k0" }, { "k1", "k1" }, { "k2", "k2" }, { "k3", "k3" },
		{ "k4", "k4" }, { "k5", "k5" }, { "k6", "k6" }, { "k7", "k7" },
	};
	size_t nk = sizeof(keys) / sizeof(keys[0]);
	char text[2048], why[128], want[128];
	const char *used[64];
	int i, failures = 0;

	(void)state;
	for (i = 0; i < 20000 && failures < 10; i++) {
		size_t m = 1 + next() % 40, k, j, o = 0, dupcol = 0;
		json_t *v = NULL;
		int r;

		text[o++] = '{';
		for (k = 0; k < m; k++) {
			size_t w = next() % nk;

			if (k > 0)
				text[o++] = ',';
			o += (size_t)snprintf(text + o, sizeof(text) - o,
			    "\"%s\"", keys[w][0]);
			for (j = 0; j < k && dupcol == 0; j++)
				if (strcmp(used[j], keys[w][1]) == 0)
					dupcol = o + 1;
			used[k] = keys[w][1];
			o += (size_t)snprintf(text + o, sizeof(text) - o,
			    ":%zu", k);
		}
		text[o++] = '}';
		r = gs_json_parse(text, o, &v, why, sizeof(why));
		if (dupcol != 0) {
			snprintf(want, sizeof(want), "column %zu: duplicate "
			    "object key", dupcol);
			if (r != GS_EPARSE || strcmp(why, want) != 0) {
				fprintf(stderr, "want %s, got %d %s: %.*s\n",
				    want, r, why, (int)o, text);
				failures++;
			}
		} else if (r != GS_OK || json_object_size(v) != m) {
			fprintf(stderr, "refused %.*s: %s\n", (int)o, text, why);
			failures++;
		}
		if (!agree(text, o))
			failures++;
		json_decref(v);
	}
	assert_int_equal(failures, 0);
}

/* Counts what reaches the allocator installed before the arena's. */
static long heap_mallocs, heap_frees;

static void *
count_malloc(size_t n)
{
	heap_mallocs++;
	return malloc(n);
}

static void
count_free(void *p)
{
	if (p != NULL)
		heap_frees++;
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

/*
 * An arena of many blocks (a platform batch fills about fifty): each free
 * must tell the arena's memory, in whichever block, from the heap's.
 * Strings of 6,000 bytes (five to a block) and of 10,000 (the heap),
 * freed in a shuffled order: exactly the heap ones reach the heap's free
 * (one taken for the arena's would be missing; an arena one taken for the
 * heap's would be counted, and crash).
 */
static void
test_arena_blocks(void **state)
{
	enum { NV = 330 };
	struct gs_json_arena *a = NULL;
	json_t *v[NV], *t;
	char *text;
	long m, fr, nheap = 0;
	size_t i, k, round;
	unsigned x = 12345;

	(void)state;
	text = malloc(10001);
	assert_non_null(text);
	assert_int_equal(gs_json_arena_begin(&a), GS_OK);
	/* Twice: the second time in the blocks kept by the reset. */
	for (round = 0; round < 2; round++) {
		m = heap_mallocs;
		fr = heap_frees;
		nheap = 0;
		for (i = 0; i < NV; i++) {
			size_t len = i % 11 == 0 ? 10000 : 6000;

			memset(text, 'a' + (int)(i % 26), len);
			text[len] = '\0';
			nheap += len == 10000;
			v[i] = json_string(text);
			assert_non_null(v[i]);
		}
		assert_int_equal(heap_mallocs - m, nheap);
		for (i = NV - 1; i > 0; i--) {
			x = x * 1103515245u + 12345u;
			k = (x >> 8) % (i + 1);
			t = v[i];
			v[i] = v[k];
			v[k] = t;
		}
		for (i = 0; i < NV; i++)
			json_decref(v[i]);
		assert_int_equal(heap_frees - fr, nheap);
		gs_json_arena_reset(a);
	}
	gs_json_arena_end(a);
	free(text);
}

int
main(void)
{
	/* Before any jansson value exists: the arena's fallback. */
	json_set_alloc_funcs(count_malloc, count_free);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_string_fast_paths),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_span_order),
		cmocka_unit_test(test_arena),
		cmocka_unit_test(test_arena_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
