/*
 * ids.h - identifier formats of the domain: GB 11643 citizen id numbers,
 * GB 32100 unified social credit codes (with the GB 11714 organization code
 * inside), mainland phone numbers, strict UTF-8 and calendar dates.
 *
 * Pure functions on caller memory: no allocation, no global state except
 * the clock read by gs_today_cst() (and the day it keeps per thread).
 * validate.c turns their results into problems; the generator
 * (tools/gridgen.c) and the tests use them to make and check identifiers.
 */
#ifndef GS_IDS_H
#define GS_IDS_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ dates */

/* 1 when y-m-d is a real Gregorian date (any year 1..9999), else 0. */
int gs_date_valid(int y, int m, int d);
/* Days since 1970-01-01 of a valid date (negative before). */
int64_t gs_days_from_civil(int y, int m, int d);
/* Today's date in China Standard Time (UTC+8) as YYYYMMDD: birth dates and
 * other local dates are judged in the time zone they were written in.
 * Reads the clock every call, never earlier than GS_TIME_FLOOR_MS
 * (core/util.h: a clock reset into the past is known to be wrong); the
 * date is worked out again only when the day changed since the calling
 * thread last asked. */
int gs_today_cst(void);

/* "YYYY-MM-DD" exactly (len bytes, no terminator needed).  0 and y/m/d set
 * when well formed and a real date; -1 when not of that shape; -2 when the
 * shape is right but the date does not exist (y/m/d still set). */
int gs_date_parse(const char *s, size_t len, int *y, int *m, int *d);
/* RFC 3339 in UTC: "YYYY-MM-DDTHH:MM:SSZ" with an optional ".mmm" (exactly
 * three digits).  0 and *ms (milliseconds since the epoch) on success, -1
 * when malformed, -2 when a component is out of range. */
int gs_datetime_parse(const char *s, size_t len, int64_t *ms);
/* Room for a UTC time as gs_datetime_to_utc writes it, terminator
 * included ("YYYY-MM-DDTHH:MM:SS.mmmZ" is 24 bytes). */
#define GS_DATETIME_MAX 32
/* A time as a person types it: RFC 3339 ending in "Z" or in a numeric
 * offset such as "+08:00" (the handheld's own zone), with or without
 * ".mmm".  Writes the same instant as the UTC text records store (the
 * milliseconds only when given) into out (outlen >= GS_DATETIME_MAX) and
 * returns 0; -1 when malformed (a time with no zone at all is ambiguous
 * and malformed); -2 when a component or the offset (beyond 14:00) is
 * out of range. */
int gs_datetime_to_utc(const char *s, size_t len, char *out, size_t outlen);

/* ---------------------------------------------------- GB 11643 id number */

#define GS_IDCARD_LEN 18

enum gs_idcard_status {
	GS_IDCARD_OK = 0,
	GS_IDCARD_LENGTH,   /* not 18 characters */
	GS_IDCARD_CHARSET,  /* not 17 digits and one of 0-9, X, x */
	GS_IDCARD_PROVINCE, /* the first two digits are no province */
	GS_IDCARD_DATE,     /* digits 7-14 are no real date >= 1900-01-01 */
	GS_IDCARD_FUTURE,   /* the birth date is after today */
	GS_IDCARD_CHECK     /* the check digit is wrong */
};

struct gs_idcard {
	int birth;        /* YYYYMMDD from digits 7-14 (set from DATE on) */
	int male;         /* 1 when digit 17 is odd, 0 when even */
	char check_want;  /* the right check character (set from CHECK on) */
	char check_got;   /* the given one, upper-cased */
	size_t bad_pos;   /* CHARSET: 0-based index of the first bad char */
	int province;     /* the two-digit prefix */
};

/*
 * Checks s[0..len) as a GB 11643-1999 number, in this order: length,
 * character set, province prefix, birth date (real, >= 1900, not after
 * `today` given as YYYYMMDD, 0 meaning gs_today_cst()), check digit.
 * Returns the first failing status and fills *info as far as it got.  A
 * lower-case x check character is accepted; the caller upper-cases it.
 */
enum gs_idcard_status gs_idcard_check(const char *s, size_t len, int today,
    struct gs_idcard *info);
/* The MOD 11-2 check character ('0'-'9' or 'X') of 17 digits. */
char gs_idcard_check_char(const char *s17);
/* 1 when a two-digit prefix (11, 44, ...) is a province of GB/T 2260. */
int gs_province_valid(int prefix);

/* ------------------------------------------------- GB 32100 credit code */

#define GS_USCC_LEN 18

enum gs_uscc_status {
	GS_USCC_OK = 0,
	GS_USCC_LENGTH,  /* not 18 characters */
	GS_USCC_CHARSET, /* a character outside 0-9 A-Z without I O S V Z */
	GS_USCC_CHECK,   /* the 18th character is wrong */
	GS_USCC_ORGCODE  /* the embedded GB 11714 code's check is wrong */
};

struct gs_uscc {
	size_t bad_pos;  /* CHARSET: 0-based index */
	char bad_char;
	char check_want; /* CHECK */
	char check_got;
	char org_want;   /* ORGCODE: the right 17th character */
	char org_got;
};

/* Checks s[0..len) (upper case; the caller upper-cases first) in the order
 * length, character set, check character, embedded organization code. */
enum gs_uscc_status gs_uscc_check(const char *s, size_t len,
    struct gs_uscc *info);
/* The check character of 17 USCC characters, or 0 if one is not in the
 * alphabet. */
char gs_uscc_check_char(const char *s17);
/* The GB 11714 check character ('0'-'9' or 'X') of 8 characters 0-9 A-Z,
 * or 0 if one is not. */
char gs_orgcode_check_char(const char *s8);

/* ------------------------------------------------------------- phones */

#define GS_PHONE_MAX 16 /* normalized digits, without the terminator */

enum gs_phone_kind {
	GS_PHONE_BAD = 0,
	GS_PHONE_MOBILE,  /* 1[3-9] + 9 digits */
	GS_PHONE_LANDLINE /* 0 + 2-3 digit area code + 7-8 digit number */
};

/*
 * Normalizes a mainland number: spaces and hyphens are dropped, a leading
 * +86 or 0086 is removed (and a landline's trunk 0 put back), and the rest
 * must be a mobile or a landline number.  Writes the digits to out (which
 * holds GS_PHONE_MAX + 1 bytes) and returns the kind, or GS_PHONE_BAD.
 */
enum gs_phone_kind gs_phone_normalize(const char *s, size_t len,
    char out[GS_PHONE_MAX + 1]);

/* -------------------------------------------------------------- UTF-8 */

struct gs_utf8_scan {
	size_t chars;      /* code points counted */
	size_t bad_at;     /* byte offset of the first invalid sequence, or
			    * SIZE_MAX when the text is valid UTF-8 */
	uint32_t ctrl;     /* the first control character other than tab,
			    * LF, CR (C0, DEL, C1), when ctrl_at != SIZE_MAX */
	size_t ctrl_at;    /* its character index, or SIZE_MAX */
	size_t space_at;   /* character index of the first tab/LF/CR, or
			    * SIZE_MAX */
};

/* Scans strict UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
 * Returns 0 when valid, -1 when not (counts stop at the bad byte). */
int gs_utf8_scan(const char *s, size_t len, struct gs_utf8_scan *out);

#endif
