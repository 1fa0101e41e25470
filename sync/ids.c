/*
 * ids.c - GB 11643, GB 32100 / GB 11714, phone numbers, UTF-8 and dates.
 *
 * The algorithms and worked examples are in research/domain-model.md 4.1,
 * 4.2 and 4.5; the unit tests (tests/unit/sync-ids.c) freeze them.
 */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "bytes-priv.h"
#include "core/util.h"
#include "ids.h"
#include "core/banned.h"

/* ------------------------------------------------------------ dates */

static int
is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
gs_date_valid(int y, int m, int d)
{
	static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30,
		31, 30, 31 };

	if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
		return 0;
	if (m == 2 && is_leap(y))
		return d <= 29;
	return d <= mdays[m - 1];
}

/* Howard Hinnant's days_from_civil: exact for the proleptic Gregorian
 * calendar, no table, no time zone. */
int64_t
gs_days_from_civil(int y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/*
 * Birth dates and other calendar dates are written in Beijing time, so
 * "today" is the date in UTC+8: a baby born at 07:00 local time on the 1st
 * is born on the 1st even though it is still the 31st in UTC.  China has no
 * daylight saving time, so a fixed offset is exact.
 */
int
gs_today_cst(void)
{
	/* The date of the day this thread last asked about and the span of
	 * seconds it covers: the bulk import asks once per record, and
	 * gmtime_r for each answer cost more than the rest of a date check.
	 * Any t inside [day_from, day_to) has that same date, so the answer
	 * is the one gmtime_r would give, to the second. */
	static _Thread_local time_t day_from, day_to;
	static _Thread_local int day;
	time_t t = time(NULL);
	struct tm tm;

	/* A clock reset into the past (util.h: the time floor) must not
	 * turn real birth dates into dates in the future. */
	if (t < (time_t)(GS_TIME_FLOOR_MS / 1000))
		t = (time_t)(GS_TIME_FLOOR_MS / 1000);
	t += 8 * 3600;

	if (day != 0 && t >= day_from && t < day_to)
		return day;
	if (gmtime_r(&t, &tm) == NULL)
		return 99991231;
	day = (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 +
	    tm.tm_mday;
	day_from = t - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
	/* POSIX time has no leap seconds: every day is 86400 of them. */
	day_to = day_from + 86400;
	return day;
}

/* n decimal digits at s, or -1 if one is not a digit.  Used instead of
 * strtol so that signs, spaces and longer runs can never slip through. */
static inline __attribute__((always_inline)) int
digits(const char *s, int n)
{
	int v = 0, i;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

int
gs_date_parse(const char *s, size_t len, int *y, int *m, int *d)
{
	if (len != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	if ((*y = digits(s, 4)) < 0 || (*m = digits(s + 5, 2)) < 0 ||
	    (*d = digits(s + 8, 2)) < 0)
		return -1;
	return gs_date_valid(*y, *m, *d) ? 0 : -2;
}

int
gs_datetime_parse(const char *s, size_t len, int64_t *ms)
{
	int y, m, d, hh, mi, ss, frac = 0, r;

	/* Exactly two shapes: 20 bytes, or 24 with ".mmm".  Offsets other
	 * than Z are refused on purpose: the record format stores UTC only,
	 * so two devices never write the same instant two ways. */
	if (len != 20 && len != 24)
		return -1;
	if (s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[len - 1] != 'Z')
		return -1;
	if ((r = gs_date_parse(s, 10, &y, &m, &d)) == -1)
		return -1;
	if ((hh = digits(s + 11, 2)) < 0 || (mi = digits(s + 14, 2)) < 0 ||
	    (ss = digits(s + 17, 2)) < 0)
		return -1;
	if (len == 24) {
		if (s[19] != '.' || (frac = digits(s + 20, 3)) < 0)
			return -1;
	}
	if (r == -2 || hh > 23 || mi > 59 || ss > 59)
		return -2;
	*ms = ((gs_days_from_civil(y, m, d) * 86400 + hh * 3600 + mi * 60 +
	    ss) * 1000) + frac;
	return 0;
}

int
gs_datetime_to_utc(const char *s, size_t len, char *out, size_t outlen)
{
	char z[GS_DATETIME_MAX];
	size_t base;
	int64_t ms;
	int oh, om, sign, r;

	/* The local part is what gs_datetime_parse reads; only the zone
	 * differs.  It is copied with a "Z" so that one parser decides
	 * what a well-formed time is. */
	if (outlen < GS_DATETIME_MAX)
		return -1;
	if (len == 20 || len == 24) {
		if ((r = gs_datetime_parse(s, len, &ms)) != 0)
			return r;
		memcpy(out, s, len);
		out[len] = '\0';
		return 0;
	}
	if (len != 25 && len != 29)
		return -1;
	base = len - 6;
	if ((s[base] != '+' && s[base] != '-') || s[base + 3] != ':')
		return -1;
	if ((oh = digits(s + base + 1, 2)) < 0 ||
	    (om = digits(s + base + 4, 2)) < 0)
		return -1;
	memcpy(z, s, base);
	z[base] = 'Z';
	if ((r = gs_datetime_parse(z, base + 1, &ms)) != 0)
		return r;
	/* Zones in use run from -12:00 to +14:00; "-00:00" is RFC 3339's
	 * "UTC, local offset unknown". */
	if (oh > 14 || om > 59 || oh * 60 + om > 14 * 60)
		return -2;
	sign = s[base] == '+' ? 1 : -1;
	ms -= sign * ((int64_t)oh * 3600 + om * 60) * 1000;
	gs_time_format(out, outlen, ms);
	/* An offset can push year 0000 or 9999 out of four digits. */
	if (strlen(out) != 24 || out[4] != '-')
		return -2;
	/* Keep the precision given: no ".000" on a time typed to the
	 * second. */
	if (base == 19)
		memcpy(out + 19, "Z", 2);
	return 0;
}

/* ---------------------------------------------------- GB 11643 id number */

/* W_i = 2^(18-i) mod 11 for positions 1..17. */
static const int id_weights[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10,
	5, 8, 4, 2 };

/*
 * ISO 7064 MOD 11-2: the weighted sum of the 17 digits modulo 11 indexes
 * "10X98765432".  It catches every single-digit error and every swap of
 * two adjacent digits, which are the typos a worker makes on a keypad.
 */
char
gs_idcard_check_char(const char *s17)
{
	int sum = 0, i;

	for (i = 0; i < 17; i++)
		sum += (s17[i] - '0') * id_weights[i];
	return "10X98765432"[sum % 11];
}

int
gs_province_valid(int p)
{
	/* GB/T 2260 province-level prefixes, including 71 (Taiwan), and the
	 * 81, 82 and 83 that the residence permits of Hong Kong, Macao and
	 * Taiwan residents (港澳台居民居住证, 2018) carry as 810000, 820000
	 * and 830000: such a resident living here is a FLOATING person,
	 * whose id_number is required. */
	return (p >= 11 && p <= 15) || (p >= 21 && p <= 23) ||
	    (p >= 31 && p <= 37) || (p >= 41 && p <= 46) ||
	    (p >= 50 && p <= 54) || (p >= 61 && p <= 65) || p == 71 ||
	    p == 81 || p == 82 || p == 83;
}

enum gs_idcard_status
gs_idcard_check(const char *s, size_t len, int today, struct gs_idcard *info)
{
	size_t i;
	int y, m, d, dg[17], sum = 0;
	char last;

	/* The order matters for the message the worker sees: the first
	 * thing wrong is reported, and later steps rely on the earlier ones
	 * (the date and check steps read digits the charset step vouched
	 * for).  The province comes before the date because a wrong prefix
	 * usually means the whole number was mistyped or invented. */
	memset(info, 0, sizeof(*info));
	if (len != GS_IDCARD_LEN)
		return GS_IDCARD_LENGTH;
	/* One pass over the 17 digits: their values and the weighted sum
	 * of gs_idcard_check_char, used only once the steps before the
	 * check character have passed. */
	for (i = 0; i < 17; i++) {
		unsigned v = (unsigned)(unsigned char)s[i] - '0';

		if (v > 9) {
			info->bad_pos = i;
			return GS_IDCARD_CHARSET;
		}
		dg[i] = (int)v;
		sum += (int)v * id_weights[i];
	}
	last = s[17];
	if (last == 'x')
		last = 'X';
	if (!((last >= '0' && last <= '9') || last == 'X')) {
		info->bad_pos = 17;
		return GS_IDCARD_CHARSET;
	}
	/* Digit 17 is the sequence number's last digit: odd for men, even
	 * for women (GB 11643 4.3). */
	info->province = dg[0] * 10 + dg[1];
	info->male = dg[16] & 1;
	if (!gs_province_valid(info->province))
		return GS_IDCARD_PROVINCE;
	y = ((dg[6] * 10 + dg[7]) * 10 + dg[8]) * 10 + dg[9];
	m = dg[10] * 10 + dg[11];
	d = dg[12] * 10 + dg[13];
	info->birth = y * 10000 + m * 100 + d;
	/* 1900 is the standard's floor; a date after today is a typo in
	 * the year far more often than a record made in advance. */
	if (y < 1900 || !gs_date_valid(y, m, d))
		return GS_IDCARD_DATE;
	if (today == 0)
		today = gs_today_cst();
	if (info->birth > today)
		return GS_IDCARD_FUTURE;
	info->check_want = "10X98765432"[sum % 11]; /* gs_idcard_check_char */
	info->check_got = last;
	if (info->check_want != last)
		return GS_IDCARD_CHECK;
	return GS_IDCARD_OK;
}

/* ------------------------------------------------- GB 32100 credit code */

/* The 31 characters of GB 32100, value = index: no I, O, S, V, Z because
 * they are easily misread as 1, 0, 5, U, 2. */
static const char uscc_alphabet[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/* W_i = 3^(i-1) mod 31 for positions 1..17. */
static const int uscc_weights[17] = { 1, 3, 9, 27, 19, 26, 16, 17, 20, 29,
	25, 13, 8, 24, 10, 30, 28 };

static int
uscc_value(char c)
{
	const char *p;

	if (c == '\0' || (p = strchr(uscc_alphabet, c)) == NULL)
		return -1;
	return (int)(p - uscc_alphabet);
}

char
gs_uscc_check_char(const char *s17)
{
	int sum = 0, v, i;

	for (i = 0; i < 17; i++) {
		if ((v = uscc_value(s17[i])) < 0)
			return 0;
		sum += v * uscc_weights[i];
	}
	/* A remainder of 0 gives '0' (go-gb wrongly gives nothing). */
	return uscc_alphabet[(31 - sum % 31) % 31];
}

/*
 * GB 11714 (the nine-character organization code inside a USCC): letters
 * count 10..35 here, unlike in the USCC alphabet, and the result 10 is
 * written X and 11 is written 0 (go-gb forgets the 11 case).
 */
char
gs_orgcode_check_char(const char *s8)
{
	static const int w[8] = { 3, 7, 9, 10, 5, 8, 4, 2 };
	int sum = 0, v, i, c;

	for (i = 0; i < 8; i++) {
		if (s8[i] >= '0' && s8[i] <= '9')
			v = s8[i] - '0';
		else if (s8[i] >= 'A' && s8[i] <= 'Z')
			v = s8[i] - 'A' + 10;
		else
			return 0;
		sum += v * w[i];
	}
	c = 11 - sum % 11;
	if (c == 10)
		return 'X';
	if (c == 11)
		return '0';
	return (char)('0' + c);
}

enum gs_uscc_status
gs_uscc_check(const char *s, size_t len, struct gs_uscc *info)
{
	size_t i;

	memset(info, 0, sizeof(*info));
	if (len != GS_USCC_LEN)
		return GS_USCC_LENGTH;
	for (i = 0; i < GS_USCC_LEN; i++) {
		if (uscc_value(s[i]) < 0) {
			info->bad_pos = i;
			info->bad_char = s[i];
			return GS_USCC_CHARSET;
		}
	}
	/* The outer check first: a typo anywhere shows up here, and only a
	 * code whose outer check holds can have a fabricated inner one. */
	info->check_want = gs_uscc_check_char(s);
	info->check_got = s[17];
	if (info->check_want != s[17])
		return GS_USCC_CHECK;
	info->org_want = gs_orgcode_check_char(s + 8);
	info->org_got = s[16];
	if (info->org_want != s[16])
		return GS_USCC_ORGCODE;
	return GS_USCC_OK;
}

/* ------------------------------------------------------------- phones */

/*
 * Workers type numbers as residents say them: "138 1234 5678", "+86
 * 13812345678", "0755-2888 1234".  Separators carry no meaning, so they go;
 * what remains must be one of the two shapes a mainland number can have.
 * The stored form is the bare digits, which makes equal numbers compare
 * equal (duplicate detection, search) whatever the worker typed.
 */
enum gs_phone_kind
gs_phone_normalize(const char *s, size_t len, char out[GS_PHONE_MAX + 1])
{
	char dg[GS_PHONE_MAX + 8];
	size_t n = 0, i, start = 0, area, local;
	int intl = 0;

	out[0] = '\0';
	for (i = 0; i < len; i++) {
		if (s[i] == ' ' || s[i] == '-')
			continue;
		if (s[i] == '+' && n == 0 && !intl) {
			intl = 1; /* must be followed by 86 */
			continue;
		}
		if (s[i] < '0' || s[i] > '9' || n >= sizeof(dg) - 1)
			return GS_PHONE_BAD;
		dg[n++] = s[i];
	}
	dg[n] = '\0';
	if (intl) {
		if (n < 2 || dg[0] != '8' || dg[1] != '6')
			return GS_PHONE_BAD;
		start = 2;
	} else if (n > 4 && memcmp(dg, "0086", 4) == 0) {
		start = 4;
	}
	if (start > 0) {
		/* After the country code a mobile starts with 1 and a
		 * landline with its area code, without the trunk 0. */
		if (n - start == 11 && dg[start] == '1')
			goto mobile;
		if (dg[start] == '0')
			return GS_PHONE_BAD;
		start--;
		dg[start] = '0';
	}
	/* Mobile numbers are 1 + [3-9] + 9 digits: no subscriber number
	 * starts 10, 11 or 12, so those are typos (or made up). */
	if (dg[start] == '1') {
mobile:
		if (n - start != 11 || dg[start + 1] < '3')
			return GS_PHONE_BAD;
		memcpy(out, dg + start, 11);
		out[11] = '\0';
		return GS_PHONE_MOBILE;
	}
	if (dg[start] != '0' || n - start < 3)
		return GS_PHONE_BAD;
	/* 010 and 02x are the two-digit area codes (Beijing, Shanghai,
	 * Tianjin, Chongqing, Guangzhou ...); every other one has three. */
	area = (dg[start + 1] == '1' || dg[start + 1] == '2') ? 2 : 3;
	if (dg[start + 1] == '0' || n - start < 1 + area + 7)
		return GS_PHONE_BAD;
	local = n - start - 1 - area;
	if (local > 8 || dg[start + 1 + area] < '2')
		return GS_PHONE_BAD;
	memcpy(out, dg + start, n - start);
	out[n - start] = '\0';
	return GS_PHONE_LANDLINE;
}

/* -------------------------------------------------------------- UTF-8 */

/*
 * Strict UTF-8 (RFC 3629): overlong forms and surrogates are refused
 * because they let one text have two spellings (a filter that looks for
 * "<" misses "\xc0\xbc").  The scan also finds the first control
 * character, so validation reads every string once: this runs for every
 * text value of every record at import speed.
 *
 * Two fast paths take what is common in records and could not be anything
 * but valid and printable, and leave everything else to the general code
 * below them, which sees the same bytes it would have seen without them:
 * eight printable ASCII bytes at a time, and three-byte sequences whose
 * lead byte needs no range check on the second byte (E1-EC, EE, EF: every
 * Chinese character), which can be neither overlong, a surrogate nor a
 * control.  tests/unit/sync-ids.c compares this with a plain scan.
 */

/*
 * The bytes of w (eight of the text, loaded in memory order) that are not
 * printable ASCII (0x20-0x7e): the folklore's exact "has less than 0x20"
 * and "has more than 0x7e" tests.  0 when all are printable; else the
 * lowest flagged byte is the first such byte (a borrow or a carry flags
 * only bytes after a flagged one).
 */
static uint64_t
unprintable8(uint64_t w)
{
	uint64_t less = (w - GS_ONES * 0x20) & ~w;
	uint64_t more = (w + GS_ONES * (127 - 0x7e)) | w;

	return (less | more) & GS_HIGHS;
}

int
gs_utf8_scan(const char *str, size_t len, struct gs_utf8_scan *out)
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
			/* The common case: printable ASCII, by the word
			 * while there are words left, up to the first byte
			 * that is not. */
			uint64_t w, m;
			size_t k;

			while (len - i >= 8) {
				memcpy(&w, s + i, 8);
				m = unprintable8(w);
				k = m != 0 ? gs_first_flag(m) : 8;
				i += k;
				n += k;
				if (k < 8)
					break;
			}
			if (i < len && s[i] >= 0x20 && s[i] < 0x7f) {
				i++;
				n++;
			}
			continue;
		}
		if (len - i >= 3 && gs_plain3(s + i)) {
			/* Chinese text comes in runs. */
			do {
				i += 3;
				n++;
			} while (len - i >= 3 && gs_plain3(s + i));
			continue;
		}
		/* The lead byte gives the length and the smallest code point
		 * that length may encode (anything smaller is overlong). */
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
			goto bad; /* continuation byte, 0xc0/0xc1, 0xf5+ */
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
		/* Tab, LF and CR are tracked apart: multi-line free text
		 * may hold them, every other field may not.  C1 controls
		 * (U+0080-U+009F) are as invisible and as dangerous in a
		 * terminal as C0 ones. */
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
