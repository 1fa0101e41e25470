/*
 * sync-ids.c - unit tests for sync/ids: GB 11643 and GB 32100 with the
 * worked examples of research/domain-model.md 4.1 and 4.2, phones, UTF-8
 * edge cases, dates and times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "ids.h"

#define TODAY 20261126

static enum gs_idcard_status
idc(const char *s, struct gs_idcard *info)
{
	return gs_idcard_check(s, strlen(s), TODAY, info);
}

static void
test_idcard_worked_examples(void **state)
{
	struct gs_idcard id;

	(void)state;
	/* Valid ones from domain-model.md 4.1. */
	assert_int_equal(idc("440307198503151230", &id), GS_IDCARD_OK);
	assert_int_equal(id.male, 1);
	assert_int_equal(id.birth, 19850315);
	assert_int_equal(idc("44030719780101001X", &id), GS_IDCARD_OK);
	assert_int_equal(id.male, 1); /* 001: odd */
	assert_int_equal(idc("44030719780101001x", &id), GS_IDCARD_OK);
	assert_int_equal(idc("440300199207082461", &id), GS_IDCARD_OK);
	assert_int_equal(idc("11010519491231002X", &id), GS_IDCARD_OK);
	/* Invalid ones. */
	assert_int_equal(idc("440307198503151231", &id), GS_IDCARD_CHECK);
	assert_int_equal(id.check_want, '0');
	assert_int_equal(id.check_got, '1');
	assert_int_equal(idc("440307198513151230", &id), GS_IDCARD_DATE);
	assert_int_equal(idc("440300200102290040", &id), GS_IDCARD_DATE);
	assert_int_equal(idc("4403071985031512", &id), GS_IDCARD_LENGTH);
	/* The check characters of the worked sums. */
	assert_int_equal(gs_idcard_check_char("44030719850315123"), '0');
	assert_int_equal(gs_idcard_check_char("44030719780101001"), 'X');
	assert_int_equal(gs_idcard_check_char("44030019920708246"), '1');
	assert_int_equal(gs_idcard_check_char("44030020010229004"), '0');
}

static void
test_idcard_rules(void **state)
{
	struct gs_idcard id;

	(void)state;
	assert_int_equal(idc("44030719850315123", &id), GS_IDCARD_LENGTH);
	assert_int_equal(idc("4403071985031512300", &id), GS_IDCARD_LENGTH);
	assert_int_equal(idc("", &id), GS_IDCARD_LENGTH);
	assert_int_equal(idc("44030719850315A230", &id), GS_IDCARD_CHARSET);
	assert_int_equal(id.bad_pos, 14);
	assert_int_equal(idc("44030719850315123Y", &id), GS_IDCARD_CHARSET);
	assert_int_equal(id.bad_pos, 17);
	assert_int_equal(idc("X40307198503151230", &id), GS_IDCARD_CHARSET);
	assert_int_equal(id.bad_pos, 0);
	/* Province prefixes: 10, 16, 99 are none; 71, 81, 82, 83 are (83:
	 * the residence permits of Taiwan residents). */
	assert_int_equal(idc("990307198503151230", &id), GS_IDCARD_PROVINCE);
	assert_int_equal(id.province, 99);
	assert_int_equal(idc("100307198503151230", &id), GS_IDCARD_PROVINCE);
	assert_true(gs_province_valid(11) && gs_province_valid(15));
	assert_true(gs_province_valid(71) && gs_province_valid(82) &&
	    gs_province_valid(83));
	assert_int_equal(idc("830000199001011234", &id), GS_IDCARD_OK);
	assert_false(gs_province_valid(16) || gs_province_valid(20) ||
	    gs_province_valid(38) || gs_province_valid(55) ||
	    gs_province_valid(66) || gs_province_valid(84));
	/* Dates: before 1900, day 0, day 31 of a 30-day month. */
	assert_int_equal(idc("440307189912311230", &id), GS_IDCARD_DATE);
	assert_int_equal(idc("440307198504001230", &id), GS_IDCARD_DATE);
	assert_int_equal(idc("440307198504311230", &id), GS_IDCARD_DATE);
	/* Leap years: 2000 is one, 1900 is not. */
	{
		char s[19] = "44030720000229123";

		s[17] = gs_idcard_check_char(s);
		s[18] = '\0';
		assert_int_equal(idc(s, &id), GS_IDCARD_OK);
		memcpy(s + 6, "1900", 4);
		s[17] = gs_idcard_check_char(s);
		assert_int_equal(idc(s, &id), GS_IDCARD_DATE);
	}
	/* The future: tomorrow is refused, today is fine. */
	{
		char s[19] = "44030720261127123";

		s[17] = gs_idcard_check_char(s);
		s[18] = '\0';
		assert_int_equal(idc(s, &id), GS_IDCARD_FUTURE);
		memcpy(s + 6, "20261126", 8);
		s[17] = gs_idcard_check_char(s);
		assert_int_equal(idc(s, &id), GS_IDCARD_OK);
	}
}

/* A deterministic LCG, enough to make many numbers. */
static uint32_t
lcg(uint32_t *x)
{
	*x = *x * 1664525u + 1013904223u;
	return *x >> 8;
}

static void
test_idcard_generated(void **state)
{
	uint32_t x = 42;
	int i, k;

	(void)state;
	/* Every number made with the right check digit passes; changing
	 * any one digit (but the parity-only digit 17 too) is caught. */
	for (i = 0; i < 20000; i++) {
		char s[19];
		struct gs_idcard id;
		int y = 1900 + (int)(lcg(&x) % 120), m = 1 + (int)(lcg(&x) % 12);
		int d = 1 + (int)(lcg(&x) % 28), pos;

		snprintf(s, sizeof(s), "44030%1u%04d%02d%02d%03u",
		    lcg(&x) % 10, y, m, d, lcg(&x) % 1000);
		s[17] = gs_idcard_check_char(s);
		s[18] = '\0';
		assert_int_equal(idc(s, &id), GS_IDCARD_OK);
		assert_int_equal(id.male, (s[16] - '0') & 1);
		/* The sum over all 18 is 1 mod 11 (2^(18-i) weights). */
		{
			int sum = 0;

			for (k = 0; k < 18; k++)
				sum += (s[k] == 'X' ? 10 : s[k] - '0') *
				    (1 << (17 - k)) % 11;
			assert_int_equal(sum % 11, 1);
		}
		/* A single-digit change in the serial is always caught:
		 * MOD 11-2 detects all single substitutions. */
		pos = 14 + (int)(lcg(&x) % 3);
		s[pos] = (char)('0' + (s[pos] - '0' + 1 + (int)(lcg(&x) % 9)) %
		    10);
		assert_int_equal(idc(s, &id), GS_IDCARD_CHECK);
	}
}

/*
 * gs_idcard_check as it was written before its one-pass loop: each step
 * reading the string again (the reference for test_idcard_every_byte).
 */
static int
ref_digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static enum gs_idcard_status
ref_idcard(const char *s, size_t len, int today, struct gs_idcard *info)
{
	size_t i;
	int y, m, d;
	char last;

	memset(info, 0, sizeof(*info));
	if (len != GS_IDCARD_LEN)
		return GS_IDCARD_LENGTH;
	for (i = 0; i < 17; i++)
		if (s[i] < '0' || s[i] > '9') {
			info->bad_pos = i;
			return GS_IDCARD_CHARSET;
		}
	last = s[17] == 'x' ? 'X' : s[17];
	if (!((last >= '0' && last <= '9') || last == 'X')) {
		info->bad_pos = 17;
		return GS_IDCARD_CHARSET;
	}
	info->province = ref_digits(s, 2);
	info->male = (s[16] - '0') & 1;
	if (!gs_province_valid(info->province))
		return GS_IDCARD_PROVINCE;
	y = ref_digits(s + 6, 4);
	m = ref_digits(s + 10, 2);
	d = ref_digits(s + 12, 2);
	info->birth = y * 10000 + m * 100 + d;
	if (y < 1900 || !gs_date_valid(y, m, d))
		return GS_IDCARD_DATE;
	if (info->birth > today)
		return GS_IDCARD_FUTURE;
	info->check_want = gs_idcard_check_char(s);
	info->check_got = last;
	if (info->check_want != last)
		return GS_IDCARD_CHECK;
	return GS_IDCARD_OK;
}

/* Every byte value at every position of a few numbers (valid, with x
 * and X, a future one, a leap day), and one byte shorter and longer:
 * the same status and the same details as ref_idcard. */
static void
test_idcard_every_byte(void **state)
{
	static const char *const ids[] = { "440307198503151230",
		"11010519491231002x", "11010519491231002X",
		"440301202612310018", "440301200002290011",
		"830000199001011234" };
	struct gs_idcard a, b;
	char s[20];
	size_t k, pos, len;
	unsigned v;
	int ra, rb, n = 0;

	(void)state;
	for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++)
		for (pos = 0; pos < 19; pos++)
			for (v = 0; v < 256; v++) {
				memcpy(s, ids[k], 19);
				s[pos] = (char)v;
				for (len = 17; len <= 19; len++) {
					ra = gs_idcard_check(s, len, TODAY, &a);
					rb = ref_idcard(s, len, TODAY, &b);
					if (ra != rb || a.birth != b.birth ||
					    a.male != b.male ||
					    a.check_want != b.check_want ||
					    a.check_got != b.check_got ||
					    a.bad_pos != b.bad_pos ||
					    a.province != b.province)
						fail_msg("%.*s: %d, not %d",
						    (int)len, s, ra, rb);
					n += ra == GS_IDCARD_OK;
				}
			}
	assert_true(n > 100);
}

static void
test_uscc_worked_examples(void **state)
{
	struct gs_uscc u;

	(void)state;
	assert_int_equal(gs_uscc_check("91350100M000100Y43", 18, &u),
	    GS_USCC_OK);
	assert_int_equal(gs_uscc_check("91310230MA1K314J7C", 18, &u),
	    GS_USCC_OK);
	assert_int_equal(gs_uscc_check("91440300MA5AY4CLX2", 18, &u),
	    GS_USCC_OK);
	assert_int_equal(gs_uscc_check("52440307MA5BJ1XG34", 18, &u),
	    GS_USCC_OK);
	assert_int_equal(gs_uscc_check("91440300MA5AY4CLX3", 18, &u),
	    GS_USCC_CHECK);
	assert_int_equal(u.check_want, '2');
	assert_int_equal(u.check_got, '3');
	assert_int_equal(gs_uscc_check("91440300MA5AY4CLI2", 18, &u),
	    GS_USCC_CHARSET);
	assert_int_equal(u.bad_pos, 16);
	assert_int_equal(u.bad_char, 'I');
	assert_int_equal(gs_uscc_check("91350100M000100Y53", 18, &u),
	    GS_USCC_CHECK);
	assert_int_equal(u.check_want, '6');
	/* The embedded codes. */
	assert_int_equal(gs_orgcode_check_char("M000100Y"), '4');
	assert_int_equal(gs_orgcode_check_char("MA5AY4CL"), 'X');
	assert_int_equal(gs_orgcode_check_char("mA5AY4CL"), 0);
}

static void
test_uscc_rules(void **state)
{
	struct gs_uscc u;
	const char *bad = "OSVZ";
	char s[19];
	int i;

	(void)state;
	assert_int_equal(gs_uscc_check("91440300MA5AY4CLX", 17, &u),
	    GS_USCC_LENGTH);
	for (i = 0; bad[i] != '\0'; i++) {
		memcpy(s, "91440300MA5AY4CLX2", 19);
		s[3] = bad[i];
		assert_int_equal(gs_uscc_check(s, 18, &u), GS_USCC_CHARSET);
		assert_int_equal(u.bad_pos, 3);
	}
	/* Embedded organization code wrong, outer check recomputed. */
	memcpy(s, "91440300MA5AY4CL52", 19);
	s[17] = gs_uscc_check_char(s);
	assert_int_equal(gs_uscc_check(s, 18, &u), GS_USCC_ORGCODE);
	assert_int_equal(u.org_want, 'X');
	assert_int_equal(u.org_got, '5');
	/* Remainder 0 gives '0', and organization check 11 gives '0'. */
	for (i = 0; i < 100000; i++) {
		char c;

		snprintf(s, sizeof(s), "9144030%010d", i);
		c = gs_uscc_check_char(s);
		assert_true(c != 0);
		if (c == '0')
			break;
	}
	assert_true(i < 100000);
	s[17] = '0';
	s[18] = '\0';
	assert_int_equal(gs_uscc_check_char(s), '0');
	/* Lower case is not in the alphabet (the validator upper-cases). */
	assert_int_equal(gs_uscc_check("91440300ma5ay4clx2", 18, &u),
	    GS_USCC_CHARSET);
	assert_int_equal(gs_uscc_check_char("9144030OMA5AY4CLX"), 0);
}

static enum gs_phone_kind
ph(const char *s, char *out)
{
	return gs_phone_normalize(s, strlen(s), out);
}

static void
test_phones(void **state)
{
	char out[GS_PHONE_MAX + 1];

	(void)state;
	assert_int_equal(ph("13812345678", out), GS_PHONE_MOBILE);
	assert_string_equal(out, "13812345678");
	assert_int_equal(ph("+86 138-1234-5678", out), GS_PHONE_MOBILE);
	assert_string_equal(out, "13812345678");
	assert_int_equal(ph("0086 13812345678", out), GS_PHONE_MOBILE);
	assert_string_equal(out, "13812345678");
	assert_int_equal(ph("199 1234 5678", out), GS_PHONE_MOBILE);
	assert_int_equal(ph("12812345678", out), GS_PHONE_BAD);
	assert_int_equal(ph("11812345678", out), GS_PHONE_BAD);
	assert_int_equal(ph("1381234567", out), GS_PHONE_BAD);
	assert_int_equal(ph("138123456789", out), GS_PHONE_BAD);
	assert_int_equal(ph("+85 13812345678", out), GS_PHONE_BAD);
	assert_int_equal(ph("138 1234 567a", out), GS_PHONE_BAD);
	assert_int_equal(ph("", out), GS_PHONE_BAD);
	assert_int_equal(ph("+", out), GS_PHONE_BAD);
	assert_int_equal(ph("---", out), GS_PHONE_BAD);
	/* Landlines. */
	assert_int_equal(ph("0755-28881234", out), GS_PHONE_LANDLINE);
	assert_string_equal(out, "075528881234");
	assert_int_equal(ph("010-62751234", out), GS_PHONE_LANDLINE);
	assert_int_equal(ph("020 8888 1234", out), GS_PHONE_LANDLINE);
	assert_int_equal(ph("0753-2212345", out), GS_PHONE_LANDLINE);
	assert_int_equal(ph("+86 755 2888 1234", out), GS_PHONE_LANDLINE);
	assert_string_equal(out, "075528881234");
	assert_int_equal(ph("0755-123", out), GS_PHONE_BAD);
	assert_int_equal(ph("0755-123456789", out), GS_PHONE_BAD);
	assert_int_equal(ph("0755-08881234", out), GS_PHONE_BAD);
	assert_int_equal(ph("00755-28881234", out), GS_PHONE_BAD);
	assert_int_equal(ph("+86 0755 28881234", out), GS_PHONE_BAD);
	assert_int_equal(ph("28881234", out), GS_PHONE_BAD);
	assert_int_equal(ph("075", out), GS_PHONE_BAD);
	assert_int_equal(ph("0", out), GS_PHONE_BAD);
	assert_int_equal(ph("99999999999999999999999999", out), GS_PHONE_BAD);
}

static int
scan(const char *s, size_t len, struct gs_utf8_scan *sc)
{
	return gs_utf8_scan(s, len, sc);
}

static void
test_utf8(void **state)
{
	struct gs_utf8_scan sc;

	(void)state;
	assert_int_equal(scan("", 0, &sc), 0);
	assert_int_equal(sc.chars, 0);
	assert_int_equal(scan("abc", 3, &sc), 0);
	assert_int_equal(sc.chars, 3);
	assert_int_equal(scan("陈伟", 6, &sc), 0);
	assert_int_equal(sc.chars, 2);
	assert_int_equal(scan("\xf0\x9f\x98\x80", 4, &sc), 0); /* U+1F600 */
	assert_int_equal(sc.chars, 1);
	assert_int_equal(scan("\xf4\x8f\xbf\xbf", 4, &sc), 0); /* U+10FFFF */
	/* Invalid: lone continuation, truncated, overlong, surrogates,
	 * above U+10FFFF, 0xC0/0xC1/0xF5+ leads. */
	assert_int_equal(scan("a\x80", 2, &sc), -1);
	assert_int_equal(sc.bad_at, 1);
	assert_int_equal(scan("\xe9\x99", 2, &sc), -1);
	assert_int_equal(sc.bad_at, 0);
	assert_int_equal(scan("\xc3\x28", 2, &sc), -1);
	assert_int_equal(scan("\xc0\xaf", 2, &sc), -1);
	assert_int_equal(scan("\xe0\x80\xaf", 3, &sc), -1);
	assert_int_equal(scan("\xf0\x80\x80\xaf", 4, &sc), -1);
	assert_int_equal(scan("\xed\xa0\x80", 3, &sc), -1);
	assert_int_equal(scan("\xed\xbf\xbf", 3, &sc), -1);
	assert_int_equal(scan("\xf4\x90\x80\x80", 4, &sc), -1);
	assert_int_equal(scan("\xf5\x80\x80\x80", 4, &sc), -1);
	assert_int_equal(scan("\xff", 1, &sc), -1);
	assert_int_equal(scan("ab\xfe", 3, &sc), -1);
	assert_int_equal(sc.bad_at, 2);
	assert_int_equal(sc.chars, 2);
	/* Control characters: C0, DEL, C1 are found; tab/LF/CR apart. */
	assert_int_equal(scan("a\x01", 2, &sc), 0);
	assert_int_equal(sc.ctrl_at, 1);
	assert_int_equal(sc.ctrl, 1);
	assert_int_equal(scan("陈\x7f", 4, &sc), 0);
	assert_int_equal(sc.ctrl_at, 1);
	assert_int_equal(scan("\xc2\x85", 2, &sc), 0);
	assert_int_equal(sc.ctrl, 0x85);
	assert_int_equal(scan("a\0b", 3, &sc), 0);
	assert_int_equal(sc.ctrl_at, 1);
	assert_int_equal(scan("a\tb\nc", 5, &sc), 0);
	assert_int_equal(sc.ctrl_at, SIZE_MAX);
	assert_int_equal(sc.space_at, 1);
	assert_int_equal(scan("\xc2\xa0", 2, &sc), 0); /* NBSP is fine */
	assert_int_equal(sc.ctrl_at, SIZE_MAX);
}

/*
 * The scan as it was before its fast paths (one byte or one sequence at a
 * time), kept as the reference they must agree with.
 */
static int
ref_utf8_scan(const char *str, size_t len, struct gs_utf8_scan *out)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, n = 0, need;
	uint32_t cp, min;

	out->bad_at = SIZE_MAX;
	out->ctrl_at = SIZE_MAX;
	out->space_at = SIZE_MAX;
	out->ctrl = 0;
	while (i < len) {
		unsigned char c = s[i];

		if (c >= 0x20 && c < 0x7f) {
			i++;
			n++;
			continue;
		}
		if (c < 0x80) {
			cp = c;
			need = 0;
			min = 0;
		} else if (c >= 0xc2 && c <= 0xdf) {
			cp = c & 0x1f;
			need = 1;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			cp = c & 0x0f;
			need = 2;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			cp = c & 0x07;
			need = 3;
			min = 0x10000;
		} else {
			goto bad;
		}
		if (len - i - 1 < need)
			goto bad;
		for (size_t k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		if (cp == '\t' || cp == '\n' || cp == '\r') {
			if (out->space_at == SIZE_MAX)
				out->space_at = n;
		} else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
			if (out->ctrl_at == SIZE_MAX) {
				out->ctrl_at = n;
				out->ctrl = cp;
			}
		}
		i += need + 1;
		n++;
	}
	out->chars = n;
	return 0;
bad:
	out->chars = n;
	out->bad_at = i;
	return -1;
}

/* gs_utf8_scan and the reference agree on s[0..len), every field. */
static void
same_scan(const char *s, size_t len)
{
	struct gs_utf8_scan a, b;
	int ra, rb;

	memset(&a, 0x5a, sizeof(a));
	memset(&b, 0xa5, sizeof(b));
	ra = gs_utf8_scan(s, len, &a);
	rb = ref_utf8_scan(s, len, &b);
	if (ra != rb || a.chars != b.chars || a.bad_at != b.bad_at ||
	    a.ctrl_at != b.ctrl_at || a.space_at != b.space_at ||
	    (a.ctrl_at != SIZE_MAX && a.ctrl != b.ctrl)) {
		size_t i;

		fprintf(stderr, "utf8 scan differs (%d/%d) on:", ra, rb);
		for (i = 0; i < len; i++)
			fprintf(stderr, " %02x", (unsigned char)s[i]);
		fprintf(stderr, "\n");
		fail();
	}
}

static uint64_t seed = 0x2545f4914f6cdd1dull;

static uint32_t
rnd(uint32_t n)
{
	seed ^= seed << 13;
	seed ^= seed >> 7;
	seed ^= seed << 17;
	return (uint32_t)(seed >> 32) % n;
}

/* Pieces that records and attackers are made of. */
static const char *const pieces[] = {
	"a", "Zz09 ~", "0123456789abcdef", "广东省深圳市", "陈", "\t", "\n",
	"\r", "\x01", "\x1f", "\x7f", " ", "\"\\", "\xc2\x80", "\xc2\x9f",
	"\xc2\xa0", "\xdf\xbf", "\xc3\xa9", "\xe0\xa0\x80", "\xe0\x9f\xbf",
	"\xed\x9f\xbf", "\xed\xa0\x80", "\xee\x80\x80", "\xef\xbf\xbf",
	"\xe1\x80\x80", "\xec\xbf\xbf", "\xf0\x90\x80\x80", "\xf0\x8f\xbf\xbf",
	"\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xc0\xaf",
	"\xc1\xbf", "\x80", "\xbf", "\xe9", "\xe9\x99", "\xf0\x9f\x98",
	"\xfe", "\xff", "\0",
};

static void
test_utf8_fast_paths(void **state)
{
	char buf[96];
	size_t i, n, pos;
	unsigned a, b, c;

	(void)state;
	/* Every one-, two- and three-byte string, at every offset of a
	 * word and with ASCII around it, so that each fast path meets each
	 * byte at each position and each tail length. */
	for (pos = 0; pos < 12; pos++) {
		memset(buf, 'x', sizeof(buf));
		for (a = 0; a < 256; a++) {
			buf[pos] = (char)a;
			for (n = pos + 1; n <= pos + 9; n++)
				same_scan(buf, n);
		}
	}
	for (a = 0; a < 256; a++)
		for (b = 0; b < 256; b++) {
			buf[0] = 'x';
			buf[1] = (char)a;
			buf[2] = (char)b;
			same_scan(buf + 1, 2);
			same_scan(buf, 3);
		}
	for (a = 0xc0; a < 0x100; a++)
		for (b = 0; b < 256; b++)
			for (c = 0; c < 256; c += (b & 0xc0) == 0x80 ? 1 : 37) {
				memcpy(buf, "abcdefg", 7);
				buf[7] = (char)a;
				buf[8] = (char)b;
				buf[9] = (char)c;
				buf[10] = 'z';
				same_scan(buf + 7, 3);
				same_scan(buf, 10);
				same_scan(buf, 11);
				same_scan(buf + 7, 2);
			}
	/* Generated texts of those pieces, then mutated byte by byte. */
	for (i = 0; i < 200000; i++) {
		size_t k, m = 1 + rnd(12);

		n = 0;
		for (k = 0; k < m; k++) {
			const char *p = pieces[rnd(sizeof(pieces) /
			    sizeof(pieces[0]))];
			size_t pl = p[0] == '\0' ? 1 : strlen(p);

			if (n + pl > sizeof(buf))
				break;
			memcpy(buf + n, p, pl);
			n += pl;
		}
		same_scan(buf, n);
		if (n > 0) {
			buf[rnd((uint32_t)n)] = (char)rnd(256);
			same_scan(buf, n);
			same_scan(buf, rnd((uint32_t)n));
		}
	}
}

/* gs_today_cst keeps the day it last computed: its answer must still be
 * gmtime_r's of the same second (asked again until the clock holds
 * still across both reads). */
static void
test_today_span(void)
{
	int i, tries;

	for (i = 0; i < 3; i++) {
		for (tries = 0; tries < 100; tries++) {
			time_t t0 = time(NULL), t;
			int got = gs_today_cst();
			struct tm tm;

			if ((t = time(NULL)) != t0)
				continue;
			t += 8 * 3600;
			assert_non_null(gmtime_r(&t, &tm));
			assert_int_equal(got, (tm.tm_year + 1900) * 10000 +
			    (tm.tm_mon + 1) * 100 + tm.tm_mday);
			break;
		}
		assert_true(tries < 100);
	}
}

/* gs_datetime_to_utc: a typed time with its zone, as records store it. */
static void
test_datetime_to_utc(void)
{
	static const struct {
		const char *in, *out;
		int r;
	} v[] = {
		{ "2026-11-26T07:04:33Z", "2026-11-26T07:04:33Z", 0 },
		{ "2026-11-26T07:04:33.123Z", "2026-11-26T07:04:33.123Z", 0 },
		{ "2026-11-26T15:04:33+08:00", "2026-11-26T07:04:33Z", 0 },
		{ "2026-11-26T15:04:33.007+08:00", "2026-11-26T07:04:33.007Z",
		  0 },
		/* across a day, a month and a year */
		{ "2026-01-01T03:00:00+08:00", "2025-12-31T19:00:00Z", 0 },
		{ "2024-02-28T22:00:00-05:30", "2024-02-29T03:30:00Z", 0 },
		{ "2026-11-26T07:04:33-00:00", "2026-11-26T07:04:33Z", 0 },
		{ "2026-11-26T07:04:33+14:00", "2026-11-25T17:04:33Z", 0 },
		{ "2026-11-26T07:04:33+14:01", NULL, -2 },
		{ "2026-11-26T07:04:33+15:00", NULL, -2 },
		{ "2026-11-26T07:04:33+08:60", NULL, -2 },
		{ "2026-02-30T07:04:33+08:00", NULL, -2 },
		{ "2026-11-26T24:04:33+08:00", NULL, -2 },
		{ "0000-01-01T00:30:00+01:00", NULL, -2 },
		{ "2026-11-26T07:04:33", NULL, -1 },
		{ "2026-11-26T07:04:33+0800", NULL, -1 },
		{ "2026-11-26T07:04:33+8:00", NULL, -1 },
		{ "2026-11-26T07:04:33 08:00", NULL, -1 },
		{ "2026-11-26 07:04:33+08:00", NULL, -1 },
		{ "2026-11-26T07:04:33.12+08:00", NULL, -1 },
		{ "2026-11-26T07:04:33+08:00Z", NULL, -1 },
		{ "", NULL, -1 },
	};
	char out[GS_DATETIME_MAX];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int r = gs_datetime_to_utc(v[i].in, strlen(v[i].in), out,
		    sizeof(out));

		if (r != v[i].r)
			fail_msg("%s: %d, not %d", v[i].in, r, v[i].r);
		if (r == 0)
			assert_string_equal(out, v[i].out);
	}
	/* Too small an output is refused, never cut. */
	assert_int_equal(gs_datetime_to_utc("2026-11-26T07:04:33Z", 20, out,
	    20), -1);
}

static void
test_dates(void **state)
{
	int y, m, d;
	int64_t ms;

	(void)state;
	assert_int_equal(gs_date_parse("2026-11-26", 10, &y, &m, &d), 0);
	assert_int_equal(y * 10000 + m * 100 + d, 20261126);
	assert_int_equal(gs_date_parse("2024-02-29", 10, &y, &m, &d), 0);
	assert_int_equal(gs_date_parse("2001-02-29", 10, &y, &m, &d), -2);
	assert_int_equal(gs_date_parse("2026-13-01", 10, &y, &m, &d), -2);
	assert_int_equal(gs_date_parse("2026-1-01", 9, &y, &m, &d), -1);
	assert_int_equal(gs_date_parse("20261126", 8, &y, &m, &d), -1);
	assert_int_equal(gs_date_parse("2026/11/26", 10, &y, &m, &d), -1);
	assert_int_equal(gs_date_parse("2026-11-2a", 10, &y, &m, &d), -1);
	assert_int_equal(gs_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(gs_days_from_civil(2025, 1, 1), 20089);
	assert_int_equal(gs_datetime_parse("2026-11-26T07:04:33Z", 20, &ms), 0);
	assert_int_equal(ms, 1795676673000LL);
	assert_int_equal(gs_datetime_parse("2026-11-26T07:04:33.123Z", 24,
	    &ms), 0);
	assert_int_equal(ms, 1795676673123LL);
	assert_int_equal(gs_datetime_parse("2026-11-26T07:04:33.12Z", 23, &ms),
	    -1);
	assert_int_equal(gs_datetime_parse("2026-11-26T07:04:33", 19, &ms),
	    -1);
	assert_int_equal(gs_datetime_parse("2026-11-26 07:04:33Z", 20, &ms),
	    -1);
	assert_int_equal(gs_datetime_parse("2026-11-26t07:04:33z", 20, &ms),
	    -1);
	assert_int_equal(gs_datetime_parse("2026-11-26T07:04:33+08:00", 25,
	    &ms), -1);
	assert_int_equal(gs_datetime_parse("2026-11-26T24:00:00Z", 20, &ms),
	    -2);
	assert_int_equal(gs_datetime_parse("2026-11-26T23:60:00Z", 20, &ms),
	    -2);
	assert_int_equal(gs_datetime_parse("2026-02-30T00:00:00Z", 20, &ms),
	    -2);
	assert_true(gs_today_cst() >= 20260101);
	test_today_span();
	test_datetime_to_utc();
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idcard_worked_examples),
		cmocka_unit_test(test_idcard_rules),
		cmocka_unit_test(test_idcard_generated),
		cmocka_unit_test(test_idcard_every_byte),
		cmocka_unit_test(test_uscc_worked_examples),
		cmocka_unit_test(test_uscc_rules),
		cmocka_unit_test(test_phones),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_utf8_fast_paths),
		cmocka_unit_test(test_dates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
