/*
 * validate.c - checks one record's fields against its form.
 *
 * Every problem names the field, a stable rule id and what was expected:
 *	id_number: check digit should be 0, not 5
 * Rule ids (stable; tests and the platform's quarantine reasons use them):
 *	required      a required (or required-if) field is absent, null or
 *	              (text) nothing but spaces
 *	unknown_field a key that is not a field of the form (or of a geo)
 *	type          the JSON type is wrong for the kind
 *	length        too few or too many characters (code points)
 *	utf8          a string is not valid UTF-8
 *	control_char  C0/C1 control characters, DEL or the bidirectional
 *	              controls U+202A-U+202E, U+2066-U+2069; tab, LF and CR
 *	              only in multiline fields
 *	charset       a character outside the field's alphabet
 *	enum          a value outside the field's code table
 *	duplicate     a tags array lists a code twice, or NAME=VALUE
 *	              arguments set one field twice
 *	range         a number (or coordinate) out of bounds
 *	format        the shape is wrong (date, datetime, uuid, phone)
 *	date          a date or time that does not exist (2001-02-29)
 *	future_date   a date or time in the future where "past" is set
 *	province      an id number with no province prefix
 *	check_digit   a wrong GB 11643 or GB 32100 check character
 *	org_code      a USCC whose embedded GB 11714 code check is wrong
 *	coord_sys     a geo value without or with an unknown coord_sys
 *	sex_mismatch  sex disagrees with the id number's 17th digit
 *	birth_mismatch birth_date disagrees with the id number's digits 7-14
 *	order         a time before the one it must follow (ended_at)
 *	self_ref      a ref names the record itself (gs_record_check_self)
 *	unknown_type  no form was given (the type does not exist)
 *
 * Values of pii fields are never quoted in messages, so that a message
 * can be logged.  Validation allocates nothing except when it normalizes a
 * value (json_string_setn on that value).
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ids.h"
#include "json.h"
#include "schema-priv.h"
#include "uuid.h"
#include "validate.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"
#include "core/banned.h"

/* Datetimes may be this far ahead of our clock before they count as in
 * the future: device clocks drift and the platform checks again later. */
#define FUTURE_SLACK_MS (24LL * 3600 * 1000)

/* ------------------------------------------------------------ problems */

void
gs_problems_init(struct gs_problems *p)
{
	p->n = 0;
	p->dropped = 0;
}

void
gs_problems_add(struct gs_problems *p, const char *field, const char *rule,
    const char *fmt, ...)
{
	struct gs_problem *pb;
	va_list ap;

	/* A fixed array keeps validation free of allocation; a record
	 * with more than GS_PROBLEMS_MAX faults is garbage anyway, and the
	 * count of the rest is still reported. */
	if (p->n >= GS_PROBLEMS_MAX) {
		p->dropped++;
		return;
	}
	pb = &p->v[p->n++];
	gs_strlcpy(pb->field, field != NULL ? field : "", sizeof(pb->field));
	gs_strlcpy(pb->rule, rule, sizeof(pb->rule));
	va_start(ap, fmt);
	vsnprintf(pb->message, sizeof(pb->message), fmt, ap);
	va_end(ap);
}

int
gs_problems_format(const struct gs_problems *p, struct gs_buf *out)
{
	size_t i;
	int r;

	for (i = 0; i < p->n; i++) {
		const struct gs_problem *pb = &p->v[i];

		if ((r = gs_buf_printf(out, "%s%s%s%s", i > 0 ? "; " : "",
		    pb->field, pb->field[0] != '\0' ? ": " : "",
		    pb->message)) != GS_OK)
			return r;
	}
	if (p->dropped > 0)
		return gs_buf_printf(out, " (+%zu more)", p->dropped);
	return GS_OK;
}

json_t *
gs_problems_json(const struct gs_problems *p)
{
	json_t *arr = json_array(), *o;
	size_t i;

	if (arr == NULL)
		return NULL;
	for (i = 0; i < p->n; i++) {
		/* Field names and messages may carry bytes from outside
		 * (an unknown key); json_string refuses invalid UTF-8, so
		 * such a problem would vanish: the caller gets NULL instead
		 * and answers with the formatted text. */
		o = json_pack("{s:s, s:s, s:s}", "field", p->v[i].field, "rule",
		    p->v[i].rule, "message", p->v[i].message);
		if (o == NULL || json_array_append_new(arr, o) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* ------------------------------------------------------------- helpers */

/*
 * Quotes a value for a message: at most 40 bytes, with quotes, backslashes,
 * control characters and bytes of invalid UTF-8 written as \xNN, so that a
 * message is always one line of valid UTF-8.  Values of pii fields are
 * withheld.
 */
static const char *
quote(char *out, size_t outlen, const struct gs_field *fd, const char *s,
    size_t len)
{
	struct gs_utf8_scan sc;
	size_t i = 0, o = 0, seq;

	if (fd != NULL && fd->pii) {
		gs_strlcpy(out, "the value given", outlen);
		return out;
	}
	out[o++] = '"';
	while (i < len && i < 40 && o + 8 < outlen) {
		unsigned char c = (unsigned char)s[i];

		seq = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			out[o++] = (char)c;
			i++;
		} else if (c >= 0x80 && seq <= len - i && o + seq + 2 < outlen &&
		    gs_utf8_scan(s + i, seq, &sc) == 0 && sc.chars == 1 &&
		    sc.ctrl_at == SIZE_MAX) {
			memcpy(out + o, s + i, seq);
			o += seq;
			i += seq;
		} else {
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
			i++;
		}
	}
	if (i < len && o + 5 < outlen) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

/* A name from outside (an unknown key) made fit for the field slot: as
 * given when it is short, printable UTF-8, else quoted. */
static const char *
safe_name(char *out, size_t outlen, const char *s, size_t len)
{
	struct gs_utf8_scan sc;

	if (len < 64 && memchr(s, '\0', len) == NULL &&
	    gs_utf8_scan(s, len, &sc) == 0 && sc.ctrl_at == SIZE_MAX &&
	    sc.space_at == SIZE_MAX) {
		memcpy(out, s, len);
		out[len] = '\0';
		return out;
	}
	return quote(out, outlen, NULL, s, len);
}

static const char *
json_kind_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

static void
wrong_type(struct gs_problems *p, const struct gs_field *fd, const char *want,
    const json_t *v)
{
	gs_problems_add(p, fd->name, "type", "should be %s, not %s", want,
	    json_kind_name(v));
}

/*
 * The bidirectional embedding, override and isolate controls (U+202A to
 * U+202E, U+2066 to U+2069) reorder what follows them on the screen:
 * "\u202e" before a phone number shows it reversed, in the admins'
 * lists and in a CSV opened in Excel ("Trojan Source").  Names and
 * addresses in any script display right without them, so they are
 * refused like the C0 and C1 controls.  The text is valid UTF-8 here:
 * the character index counts the bytes that start a character.
 */
static int
check_bidi(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len)
{
	const unsigned char *u = (const unsigned char *)s, *e;
	size_t off = 0, i, at;

	while ((e = memchr(u + off, 0xe2, len - off)) != NULL) {
		off = (size_t)(e - u);
		if (len - off >= 3 && ((e[1] == 0x80 && e[2] >= 0xaa &&
		    e[2] <= 0xae) || (e[1] == 0x81 && e[2] >= 0xa6 &&
		    e[2] <= 0xa9))) {
			for (i = 0, at = 0; i < off; i++)
				at += (u[i] & 0xc0) != 0x80;
			gs_problems_add(p, fd->name, "control_char", "should "
			    "have no control characters, not U+%04X at "
			    "character %zu", (unsigned)(((e[1] & 0x3f) << 6) |
			    (e[2] & 0x3f)) | 0x2000, at + 1);
			return -1;
		}
		off++;
	}
	return 0;
}

/* The bytes of w (eight, in memory order) that are not printable ASCII
 * (below 0x20, or 0x7f and up): 0 when none is. */
static uint64_t
unprintable8(uint64_t w)
{
	uint64_t less = (w - 0x0101010101010101ull * 0x20) & ~w;
	uint64_t more = (w + 0x0101010101010101ull * (127 - 0x7e)) | w;

	return (less | more) & 0x8080808080808080ull;
}

/* Is s[0..len) printable ASCII only (the codes, dates, ids and numbers
 * that most values are)? */
static int
ascii_printable(const char *s, size_t len)
{
	size_t i = 0;
	uint64_t w;

	for (; len - i >= 8; i += 8) {
		memcpy(&w, s + i, 8);
		if (unprintable8(w) != 0)
			return 0;
	}
	for (; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

/*
 * UTF-8 and control characters of any string value.  0 when clean.
 * Codes, dates and numbers go through here too: a code with a NUL in it
 * must be refused as such, not reported as "not in the table" with the
 * NUL cutting the message short.  known is the number of characters of
 * s when the JSON reader vouched for them as it read them (json.h,
 * vchars: printable ASCII and three-byte characters that are neither
 * controls nor bidi controls), SIZE_MAX otherwise.
 */
static int
check_chars(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len, struct gs_utf8_scan *sc, size_t known)
{
	/* What gs_utf8_scan finds there, without a second reading. */
	if (known != SIZE_MAX) {
		sc->chars = known;
		sc->bad_at = SIZE_MAX;
		sc->ctrl = 0;
		sc->ctrl_at = SIZE_MAX;
		sc->space_at = SIZE_MAX;
		return 0;
	}
	/* What gs_utf8_scan finds in printable ASCII, without the call:
	 * a character a byte, no control, no line break, and no bidi
	 * control (none is ASCII). */
	if (ascii_printable(s, len)) {
		sc->chars = len;
		sc->bad_at = SIZE_MAX;
		sc->ctrl = 0;
		sc->ctrl_at = SIZE_MAX;
		sc->space_at = SIZE_MAX;
		return 0;
	}
	if (gs_utf8_scan(s, len, sc) != 0) {
		gs_problems_add(p, fd->name, "utf8", "should be valid UTF-8, "
		    "byte %zu is not", sc->bad_at + 1);
		return -1;
	}
	if (sc->ctrl_at != SIZE_MAX) {
		gs_problems_add(p, fd->name, "control_char", "should have no "
		    "control characters, not U+%04X at character %zu",
		    (unsigned)sc->ctrl, sc->ctrl_at + 1);
		return -1;
	}
	if (sc->space_at != SIZE_MAX && !fd->multiline) {
		gs_problems_add(p, fd->name, "control_char", "should be one "
		    "line without tabs, not a tab or line break at character "
		    "%zu", sc->space_at + 1);
		return -1;
	}
	return check_bidi(p, fd, s, len);
}

/*
 * Free text.  Lengths count code points, not bytes: "max 50" means fifty
 * characters on the worker's screen whether they are Latin or Chinese (a
 * Chinese character is three bytes in UTF-8).
 */
static int
check_text(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len, size_t known)
{
	size_t i;
	struct gs_utf8_scan sc;

	/* check_chars' answer for a value the reader vouched for, inline. */
	if (known != SIZE_MAX)
		sc.chars = known;
	else if (check_chars(p, fd, s, len, &sc, known) != 0)
		return -1;
	if (fd->has_min && (double)sc.chars < fd->min) {
		gs_problems_add(p, fd->name, "length", "should be at least %.0f "
		    "character%s, not %zu", fd->min, fd->min == 1 ? "" : "s",
		    sc.chars);
		return -1;
	}
	if (fd->has_max && (double)sc.chars > fd->max) {
		gs_problems_add(p, fd->name, "length", "should be at most %.0f "
		    "characters, not %zu", fd->max, sc.chars);
		return -1;
	}
	if (fd->charset == GS_CHARSET_ANY)
		return 0;
	/* Charsets are ASCII, so byte index == character index here up to
	 * the first non-ASCII byte, which is itself the offender. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int okc;

		switch (fd->charset) {
		case GS_CHARSET_DIGITS:
			okc = c >= '0' && c <= '9';
			break;
		case GS_CHARSET_UPPER:
			okc = c >= 'A' && c <= 'Z';
			break;
		case GS_CHARSET_ALNUM:
		default:
			okc = (c >= '0' && c <= '9') ||
			    (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
			break;
		}
		if (!okc) {
			gs_problems_add(p, fd->name, "charset", "should be %s "
			    "only, character %zu is not",
			    fd->charset == GS_CHARSET_DIGITS ? "digits 0-9" :
			    fd->charset == GS_CHARSET_UPPER ?
			    "capital letters A-Z" : "letters and digits", i + 1);
			return -1;
		}
	}
	return 0;
}

/*
 * memcmp(a, b, n) == 0 for the few bytes of a code or a field name,
 * inline: by words that overlap rather than byte by byte (every load
 * within a[0..n) and b[0..n)).
 */
static inline int
same_bytes(const char *a, const char *b, size_t n)
{
	uint64_t x, y;
	uint32_t u, v;
	uint16_t h, k;
	size_t i;

	if (n >= 8) {
		for (i = 0; i + 8 < n; i += 8) {
			memcpy(&x, a + i, 8);
			memcpy(&y, b + i, 8);
			if (x != y)
				return 0;
		}
		memcpy(&x, a + n - 8, 8);
		memcpy(&y, b + n - 8, 8);
		return x == y;
	}
	if (n >= 4) {
		memcpy(&u, a, 4);
		memcpy(&v, b, 4);
		if (u != v)
			return 0;
		memcpy(&u, a + n - 4, 4);
		memcpy(&v, b + n - 4, 4);
		return u == v;
	}
	if (n >= 2) {
		memcpy(&h, a, 2);
		memcpy(&k, b, 2);
		if (h != k)
			return 0;
		memcpy(&h, a + n - 2, 2);
		memcpy(&k, b + n - 2, 2);
		return h == k;
	}
	return n == 0 || a[0] == b[0];
}

/*
 * gs_codetable_findn, inline, and with the few bytes of a code compared
 * by same_bytes rather than by a call of memcmp: this runs for about six
 * codes of every record.
 */
static inline const struct gs_code *
code_find(const struct gs_codetable *t, const char *s, size_t len)
{
	const struct gs_code *c;
	size_t k;

	for (k = gs_name_hash(s, len) & t->mask; t->slot[k] != 0;
	    k = (k + 1) & t->mask) {
		c = &t->v[t->slot[k] - 1];
		if (c->len == len && same_bytes(c->code, s, len))
			return c;
	}
	return NULL;
}

/*
 * A string s[0..len) as a code of t.  The lookup is of the string up to
 * its first NUL, as it always was (a C string's lookup); a value that
 * holds one is refused by check_chars before it gets here (checked 1:
 * no need to look), except a tag.
 */
static __attribute__((noinline, cold)) int
code_problem(struct gs_problems *p, const struct gs_field *fd,
    const struct gs_codetable *t, const char *what, const char *s,
    size_t len);

static inline int
check_code_str(struct gs_problems *p, const struct gs_field *fd,
    const struct gs_codetable *t, const char *what, const char *s,
    size_t len, int checked)
{
	const char *nul = checked ? NULL : memchr(s, '\0', len);

	if (code_find(t, s, nul != NULL ? (size_t)(nul - s) : len) != NULL)
		return 0;
	return code_problem(p, fd, t, what, s, len);
}

/* check_code_str's problem, apart: its message buffer is no part of the
 * frame of a code that is found (six a record). */
static int
code_problem(struct gs_problems *p, const struct gs_field *fd,
    const struct gs_codetable *t, const char *what, const char *s,
    size_t len)
{
	char q[200];

	quote(q, sizeof(q), NULL, s, len);
	if (t->list[0] != '\0')
		gs_problems_add(p, fd->name, what[0] == 'c' ? "coord_sys" :
		    "enum", "%sshould be one of %s (%s), not %s", what, t->list,
		    t->name, q);
	else
		gs_problems_add(p, fd->name, what[0] == 'c' ? "coord_sys" :
		    "enum", "%sshould be a code of table %s, not %s", what,
		    t->name, q);
	return -1;
}

static int
check_code(struct gs_problems *p, const struct gs_field *fd,
    const struct gs_codetable *t, const char *what, json_t *v)
{
	if (!json_is_string(v)) {
		gs_problems_add(p, fd->name, what[0] == 'c' ? "coord_sys" :
		    "type", "%sshould be a code of %s, not %s", what, t->name,
		    json_kind_name(v));
		return -1;
	}
	return check_code_str(p, fd, t, what, json_string_value(v),
	    json_string_length(v), 0);
}

static int
check_tags(struct gs_problems *p, const struct gs_field *fd, json_t *v)
{
	size_t i, k, n;
	json_t *a, *b;

	if (!json_is_array(v)) {
		wrong_type(p, fd, "an array of codes", v);
		return -1;
	}
	n = json_array_size(v);
	for (i = 0; i < n; i++) {
		a = json_array_get(v, i);
		if (check_code(p, fd, fd->codes, "", a) != 0)
			return -1;
		/* Tag arrays are short (a handful of codes): quadratic is
		 * cheaper than any set. */
		for (k = 0; k < i; k++) {
			b = json_array_get(v, k);
			if (strcmp(json_string_value(a),
			    json_string_value(b)) == 0) {
				gs_problems_add(p, fd->name, "duplicate",
				    "should list each code once, not %s twice",
				    json_string_value(a));
				return -1;
			}
		}
	}
	return 0;
}

/* int wants a JSON integer (3.0 is refused: a count typed as a fraction
 * is a data error); real takes either. */
static int
check_number(struct gs_problems *p, const struct gs_field *fd, json_t *v)
{
	double x;

	if (fd->kind == GS_KIND_INT ? !json_is_integer(v) :
	    !json_is_number(v)) {
		wrong_type(p, fd, fd->kind == GS_KIND_INT ? "an integer" :
		    "a number", v);
		return -1;
	}
	x = json_number_value(v);
	if (fd->has_min && x < fd->min) {
		gs_problems_add(p, fd->name, "range", "should be at least %g, "
		    "not %g", fd->min, x);
		return -1;
	}
	if (fd->has_max && x > fd->max) {
		gs_problems_add(p, fd->name, "range", "should be at most %g, "
		    "not %g", fd->max, x);
		return -1;
	}
	return 0;
}

static int
check_date(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len, int today)
{
	int y, m, d, r;
	char q[200];

	r = gs_date_parse(s, len, &y, &m, &d);
	if (r == -1) {
		gs_problems_add(p, fd->name, "format", "should be a date "
		    "YYYY-MM-DD, not %s", quote(q, sizeof(q), fd, s, len));
		return -1;
	}
	if (r == -2) {
		gs_problems_add(p, fd->name, "date", "should be a real date, "
		    "%s does not exist", fd->pii ? "the date given" :
		    quote(q, sizeof(q), fd, s, len));
		return -1;
	}
	if (y < 1900) {
		gs_problems_add(p, fd->name, "date", "should be in 1900 or "
		    "later, not %d", y);
		return -1;
	}
	if (fd->past && y * 10000 + m * 100 + d > today) {
		gs_problems_add(p, fd->name, "future_date", "should not be in "
		    "the future (today is %04d-%02d-%02d)", today / 10000,
		    today / 100 % 100, today % 100);
		return -1;
	}
	return 0;
}

static int
check_datetime(struct gs_problems *p, const struct gs_field *fd,
    const char *s, size_t len, int64_t now_ms)
{
	int64_t ms;
	char q[200];
	int r;

	r = gs_datetime_parse(s, len, &ms);
	if (r == -1) {
		gs_problems_add(p, fd->name, "format", "should be a UTC time "
		    "like 2026-11-26T07:04:33Z, not %s",
		    quote(q, sizeof(q), fd, s, len));
		return -1;
	}
	if (r == -2) {
		gs_problems_add(p, fd->name, "date", "should be a real time, "
		    "%s does not exist", quote(q, sizeof(q), fd, s, len));
		return -1;
	}
	if (ms < gs_days_from_civil(1900, 1, 1) * 86400000LL) {
		gs_problems_add(p, fd->name, "date", "should be in 1900 or "
		    "later");
		return -1;
	}
	if (fd->past && ms > now_ms + FUTURE_SLACK_MS) {
		char now[32];

		gs_time_format(now, sizeof(now), now_ms);
		gs_problems_add(p, fd->name, "future_date", "should not be in "
		    "the future (now is %s)", now);
		return -1;
	}
	return 0;
}

/*
 * The normalizing checks (ref, idcard, uscc, phone) take the value's
 * string and the JSON value it is, which they set to the canonical form
 * when it is not; without a value (v NULL: gs_record_validate_spans)
 * they return NORMALIZE instead, and change nothing.
 */
#define NORMALIZE 1

static int
check_ref(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len, json_t *v)
{
	size_t i;
	unsigned char raw[16];
	char low[GS_UUID_LEN + 1], q[200];

	/* The canonical form (8-4-4-4-12 lower-case hex digits) passes as
	 * it is, without a parse. */
	for (i = 0; len == GS_UUID_LEN && i < GS_UUID_LEN; i++)
		if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' :
		    !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' &&
		    s[i] <= 'f')))
			break;
	if (len == GS_UUID_LEN && i == GS_UUID_LEN)
		return 0;
	/* gs_uuid_parse reads a C string: a copy of the 36 bytes. */
	if (len == GS_UUID_LEN)
		memcpy(low, s, GS_UUID_LEN);
	low[len == GS_UUID_LEN ? GS_UUID_LEN : 0] = '\0';
	if (len != GS_UUID_LEN || memchr(s, '\0', len) != NULL ||
	    gs_uuid_parse(low, raw) != GS_OK) {
		gs_problems_add(p, fd->name, "format", "should be a record uuid "
		    "like 0190a6e2-7c1d-7b3e-9f00-2a1b3c4d5e6f, not %s",
		    quote(q, sizeof(q), fd, s, len));
		return -1;
	}
	/* Canonical form is lower case, so that equal ids compare equal. */
	for (i = 0; i < len; i++)
		if (s[i] >= 'A' && s[i] <= 'F')
			break;
	if (i < len) {
		if (v == NULL)
			return NORMALIZE;
		gs_uuid_format(low, raw);
		if (json_string_setn(v, low, GS_UUID_LEN) != 0)
			return GS_ENOMEM;
	}
	return 0;
}

/*
 * A code of want ASCII characters that is len bytes long: the length
 * problem counts characters, as the worker sees them, not bytes.  Returns
 * -1 after adding it, or 0 when there are want characters after all,
 * some of them not ASCII (a full-width digit "１" is three bytes), with
 * *bad_pos the first such (its character index: all before are ASCII).
 * The string passed check_chars: it is valid UTF-8.
 */
static int
length_in_chars(struct gs_problems *p, const struct gs_field *fd,
    const char *s, size_t len, size_t want, size_t *bad_pos)
{
	struct gs_utf8_scan sc;
	size_t i;

	(void)gs_utf8_scan(s, len, &sc);
	if (sc.chars != want) {
		gs_problems_add(p, fd->name, "length", "should be %zu "
		    "characters, not %zu", want, sc.chars);
		return -1;
	}
	for (i = 0; i < len && (unsigned char)s[i] < 0x80; i++)
		continue;
	*bad_pos = i;
	return 0;
}

/*
 * GB 11643.  The messages say what the right value would be (the check
 * digit) but do not repeat the number itself, which is personal data;
 * only the birth-date part is echoed when it does not exist, so the worker
 * can see which digits to look at.
 */
static int
check_idcard(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len, int today, json_t *v)
{
	struct gs_idcard id;
	char fixed[GS_IDCARD_LEN];

	switch (gs_idcard_check(s, len, today, &id)) {
	case GS_IDCARD_OK:
		break;
	case GS_IDCARD_LENGTH:
	case GS_IDCARD_CHARSET:
		/* 18 characters but more bytes is a charset problem too. */
		if (len != GS_IDCARD_LEN && length_in_chars(p, fd, s, len,
		    GS_IDCARD_LEN, &id.bad_pos) != 0)
			return -1;
		gs_problems_add(p, fd->name, "charset", "should be 17 digits "
		    "and a check digit 0-9 or X, character %zu is not",
		    id.bad_pos + 1);
		return -1;
	case GS_IDCARD_PROVINCE:
		gs_problems_add(p, fd->name, "province", "should start with a "
		    "province code (11-15, 21-23, 31-37, 41-46, 50-54, 61-65, "
		    "71, 81-83), not %02d", id.province);
		return -1;
	case GS_IDCARD_DATE:
		gs_problems_add(p, fd->name, "date", "digits 7-14 should be a "
		    "real birth date in 1900 or later, not %04d-%02d-%02d",
		    id.birth / 10000, id.birth / 100 % 100, id.birth % 100);
		return -1;
	case GS_IDCARD_FUTURE:
		gs_problems_add(p, fd->name, "future_date", "digits 7-14 should "
		    "not be a birth date in the future");
		return -1;
	case GS_IDCARD_CHECK:
	default:
		gs_problems_add(p, fd->name, "check_digit", "check digit should "
		    "be %c, not %c", id.check_want, id.check_got);
		return -1;
	}
	/* Valid with a lower-case x: store the canonical upper case so the
	 * same person is the same string on every device. */
	if (s[17] == 'x') {
		if (v == NULL)
			return NORMALIZE;
		memcpy(fixed, s, GS_IDCARD_LEN);
		fixed[17] = 'X';
		if (json_string_setn(v, fixed, GS_IDCARD_LEN) != 0)
			return GS_ENOMEM;
	}
	return 0;
}

static int
check_uscc(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len, json_t *v)
{
	size_t i;
	char up[GS_USCC_LEN];
	struct gs_uscc u;
	int changed = 0;

	if (len != GS_USCC_LEN) {
		if (length_in_chars(p, fd, s, len, GS_USCC_LEN, &i) == 0)
			gs_problems_add(p, fd->name, "charset", "should use 0-9 "
			    "and A-Z without I, O, S, V, Z, character %zu is "
			    "not", i + 1);
		return -1;
	}
	/* Codes are printed in capitals; lower case is the keyboard's
	 * doing, not a different code, so it is accepted and normalized. */
	for (i = 0; i < len; i++) {
		up[i] = s[i];
		if (s[i] >= 'a' && s[i] <= 'z') {
			up[i] = (char)(s[i] - 'a' + 'A');
			changed = 1;
		}
	}
	switch (gs_uscc_check(up, len, &u)) {
	case GS_USCC_OK:
		break;
	case GS_USCC_CHARSET:
		if ((unsigned char)u.bad_char >= 0x21 &&
		    (unsigned char)u.bad_char < 0x7f)
			gs_problems_add(p, fd->name, "charset", "should use 0-9 "
			    "and A-Z without I, O, S, V, Z, not %c at "
			    "character %zu", u.bad_char, u.bad_pos + 1);
		else
			gs_problems_add(p, fd->name, "charset", "should use 0-9 "
			    "and A-Z without I, O, S, V, Z, character %zu is "
			    "not", u.bad_pos + 1);
		return -1;
	case GS_USCC_CHECK:
		gs_problems_add(p, fd->name, "check_digit", "check character "
		    "should be %c, not %c", u.check_want, u.check_got);
		return -1;
	case GS_USCC_ORGCODE:
	default:
		gs_problems_add(p, fd->name, "org_code", "organization code "
		    "check character (17th) should be %c, not %c", u.org_want,
		    u.org_got);
		return -1;
	case GS_USCC_LENGTH:
		return -1; /* not reached: checked above */
	}
	/* Both checks hold for 000000000000000000, the filler typed when
	 * the worker has no code at hand: the structure rules it out.  The
	 * first character is the registering authority (1 机构编制, 5 民政,
	 * 9 工商, Y 其他 ..., never 0), characters 3-8 its GB/T 2260 region
	 * code, digits. */
	if (up[0] == '0') {
		gs_problems_add(p, fd->name, "format", "should start with the "
		    "code of a registering authority (1-9, A-Y), not 0");
		return -1;
	}
	for (i = 2; i < 8; i++)
		if (up[i] < '0' || up[i] > '9') {
			gs_problems_add(p, fd->name, "format", "characters 3-8 "
			    "should be a region code (6 digits), character "
			    "%zu is not", i + 1);
			return -1;
		}
	if (changed && v == NULL)
		return NORMALIZE;
	if (changed && json_string_setn(v, up, GS_USCC_LEN) != 0)
		return GS_ENOMEM;
	return 0;
}

static int
check_phone(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len, json_t *v)
{
	char norm[GS_PHONE_MAX + 1];
	uint64_t w;

	/* A mobile number as it is stored (1, 3-9 and 9 digits): what
	 * gs_phone_normalize gives back unchanged, without its copy.  The
	 * last 8 are digits when each byte's high nibble is 3 and its low
	 * one at most 9 (+ 6 carries out of none). */
	if (len == 11 && s[0] == '1' && s[1] >= '3' && s[1] <= '9' &&
	    s[2] >= '0' && s[2] <= '9') {
		memcpy(&w, s + 3, 8);
		if ((w & 0xf0f0f0f0f0f0f0f0ull) == 0x3030303030303030ull &&
		    (((w & 0x0f0f0f0f0f0f0f0full) + 0x0606060606060606ull) &
		    0xf0f0f0f0f0f0f0f0ull) == 0)
			return 0;
	}
	if (gs_phone_normalize(s, len, norm) == GS_PHONE_BAD) {
		gs_problems_add(p, fd->name, "format", "should be a mobile "
		    "number (1[3-9] and 9 digits) or a landline (0, area code, "
		    "7-8 digits)");
		return -1;
	}
	if (strlen(norm) != len || memcmp(norm, s, len) != 0) {
		if (v == NULL)
			return NORMALIZE;
		if (json_string_set(v, norm) != 0)
			return GS_ENOMEM;
	}
	return 0;
}

static int
check_coord(struct gs_problems *p, const struct gs_field *fd, json_t *g,
    const char *key, double lo, double hi, int need)
{
	json_t *v = json_object_get(g, key);
	double x;

	if (v == NULL || json_is_null(v)) {
		if (need) {
			gs_problems_add(p, fd->name, "required", "%s is "
			    "required", key);
			return -1;
		}
		return 0;
	}
	if (!json_is_number(v)) {
		gs_problems_add(p, fd->name, "type", "%s should be a number, "
		    "not %s", key, json_kind_name(v));
		return -1;
	}
	x = json_number_value(v);
	if (!(x >= lo && x <= hi)) {
		if (hi > 1e300)
			gs_problems_add(p, fd->name, "range", "%s should be at "
			    "least %g, not %g", key, lo, x);
		else
			gs_problems_add(p, fd->name, "range", "%s should be "
			    "between %g and %g, not %g", key, lo, hi, x);
		return -1;
	}
	return 0;
}

static int
check_geo(const struct gs_schema *s, struct gs_problems *p,
    const struct gs_field *fd, json_t *v)
{
	const struct gs_codetable *cs = gs_schema_table(s, "coord_sys");
	const char *key;
	json_t *x;
	int bad = 0;

	if (!json_is_object(v)) {
		wrong_type(p, fd, "an object {lat, lon, accuracy, coord_sys}",
		    v);
		return -1;
	}
	json_object_foreach(v, key, x) {
		if (strcmp(key, "lat") != 0 && strcmp(key, "lon") != 0 &&
		    strcmp(key, "accuracy") != 0 &&
		    strcmp(key, "coord_sys") != 0) {
			char q[200];

			gs_problems_add(p, fd->name, "unknown_field", "should "
			    "have only lat, lon, accuracy, coord_sys, not %s",
			    quote(q, sizeof(q), NULL, key, strlen(key)));
			return -1;
		}
	}
	bad |= check_coord(p, fd, v, "lat", -90, 90, 1);
	bad |= check_coord(p, fd, v, "lon", -180, 180, 1);
	bad |= check_coord(p, fd, v, "accuracy", 0, HUGE_VAL, 0);
	/* A position without its coordinate system is worse than none:
	 * GCJ-02 and WGS 84 differ by hundreds of metres in China. */
	x = json_object_get(v, "coord_sys");
	if (x == NULL || json_is_null(x)) {
		gs_problems_add(p, fd->name, "coord_sys", "coord_sys is "
		    "required (%s)", cs != NULL ? cs->list : "");
		return -1;
	}
	if (cs == NULL)
		return -1;
	bad |= check_code(p, fd, cs, "coord_sys ", x);
	return bad ? -1 : 0;
}

/*
 * An attachments value (gridagent attach writes it; docs/PROTOCOL.md
 * section 8): an array of at most GS_ATTACH_MAX objects
 *	{"hash": 64 lower-case hex (BLAKE2b-256 of the file, unique in the
 *	 array), "mime": "type/subtype", "size": bytes >= 1, "taken_at": ms,
 *	 "phase": code of attachment_phase, "note": one line of text,
 *	 "location": a geo value}
 * hash, mime and size are required.  The platform uses the hashes to know
 * which sealed attachments a record expects.
 */
#define GS_ATTACH_MAX 50
#define GS_ATTACH_NOTE_MAX 500

static int
check_attachment_item(const struct gs_schema *s, struct gs_problems *p,
    const struct gs_field *fd, json_t *a, size_t i)
{
	const struct gs_codetable *ph = gs_schema_table(s, "attachment_phase");
	struct gs_utf8_scan sc;
	const char *key, *str;
	json_t *x;
	size_t k, n;

	if (!json_is_object(a)) {
		gs_problems_add(p, fd->name, "type", "item %zu should be an "
		    "object {hash, mime, size, ...}, not %s", i + 1,
		    json_kind_name(a));
		return -1;
	}
	json_object_foreach(a, key, x) {
		if (strcmp(key, "hash") != 0 && strcmp(key, "mime") != 0 &&
		    strcmp(key, "size") != 0 && strcmp(key, "taken_at") != 0 &&
		    strcmp(key, "phase") != 0 && strcmp(key, "note") != 0 &&
		    strcmp(key, "location") != 0) {
			char q[200];

			gs_problems_add(p, fd->name, "unknown_field", "item "
			    "%zu should have only hash, mime, size, taken_at, "
			    "phase, note, location, not %s", i + 1,
			    quote(q, sizeof(q), NULL, key, strlen(key)));
			return -1;
		}
	}
	x = json_object_get(a, "hash");
	str = json_string_value(x);
	n = json_string_length(x);
	for (k = 0; str != NULL && k < n; k++)
		if (!((str[k] >= '0' && str[k] <= '9') ||
		    (str[k] >= 'a' && str[k] <= 'f')))
			break;
	if (str == NULL || n != 64 || k != n) {
		gs_problems_add(p, fd->name, "format", "item %zu: hash should "
		    "be 64 lower-case hex digits (BLAKE2b-256)", i + 1);
		return -1;
	}
	x = json_object_get(a, "mime");
	str = json_string_value(x);
	n = json_string_length(x);
	for (k = 0; str != NULL && k < n; k++)
		if (str[k] <= ' ' || str[k] > '~' || str[k] == '"' ||
		    str[k] == '\\')
			break;
	if (str == NULL || n < 3 || n > 100 || k != n ||
	    memchr(str, '/', n) == NULL) {
		gs_problems_add(p, fd->name, "format", "item %zu: mime should "
		    "be a media type like image/jpeg", i + 1);
		return -1;
	}
	x = json_object_get(a, "size");
	if (!json_is_integer(x) || json_integer_value(x) < 1) {
		gs_problems_add(p, fd->name, "range", "item %zu: size should "
		    "be a number of bytes >= 1", i + 1);
		return -1;
	}
	x = json_object_get(a, "taken_at");
	if (x != NULL && !json_is_null(x) &&
	    (!json_is_integer(x) || json_integer_value(x) < 0)) {
		gs_problems_add(p, fd->name, "range", "item %zu: taken_at "
		    "should be a time in ms >= 0", i + 1);
		return -1;
	}
	x = json_object_get(a, "phase");
	if (x != NULL && !json_is_null(x)) {
		if (ph == NULL)
			return -1;
		if (check_code(p, fd, ph, "phase ", x) != 0)
			return -1;
	}
	x = json_object_get(a, "note");
	if (x != NULL && !json_is_null(x)) {
		if (!json_is_string(x)) {
			wrong_type(p, fd, "a note string", x);
			return -1;
		}
		if (check_chars(p, fd, json_string_value(x),
		    json_string_length(x), &sc, SIZE_MAX) != 0)
			return -1;
		if (sc.space_at != SIZE_MAX || sc.chars > GS_ATTACH_NOTE_MAX) {
			gs_problems_add(p, fd->name, "length", "item %zu: note "
			    "should be one line of at most %d characters",
			    i + 1, GS_ATTACH_NOTE_MAX);
			return -1;
		}
	}
	x = json_object_get(a, "location");
	if (x != NULL && !json_is_null(x))
		return check_geo(s, p, fd, x);
	return 0;
}

static int
check_attachments(const struct gs_schema *s, struct gs_problems *p,
    const struct gs_field *fd, json_t *v)
{
	size_t i, j;

	if (!json_is_array(v)) {
		wrong_type(p, fd, "an array of attachments", v);
		return -1;
	}
	if (json_array_size(v) > GS_ATTACH_MAX) {
		gs_problems_add(p, fd->name, "length", "should list at most %d "
		    "attachments, not %zu", GS_ATTACH_MAX, json_array_size(v));
		return -1;
	}
	for (i = 0; i < json_array_size(v); i++)
		if (check_attachment_item(s, p, fd, json_array_get(v, i), i)
		    != 0)
			return -1;
	/* The same file twice in one record is a mistake, not a second
	 * photo: the platform stores it once anyway. */
	for (i = 0; i < json_array_size(v); i++)
		for (j = i + 1; j < json_array_size(v); j++)
			if (json_equal(json_object_get(json_array_get(v, i),
			    "hash"), json_object_get(json_array_get(v, j),
			    "hash"))) {
				gs_problems_add(p, fd->name, "duplicate",
				    "items %zu and %zu are the same file",
				    i + 1, j + 1);
				return -1;
			}
	return 0;
}

/* A string value s[0..len) of a string kind (v as for check_ref, known
 * as for check_chars).  Inline: a dispatch a value, whose call cost
 * more than the common checks it leads to. */
static inline __attribute__((always_inline)) int
check_string(struct gs_problems *p, const struct gs_field *fd, const char *s,
    size_t len, json_t *v, int today, int64_t now_ms, size_t known)
{
	struct gs_utf8_scan sc;

	if (fd->kind == GS_KIND_TEXT)
		return check_text(p, fd, s, len, known);
	/* What check_chars says of a value the reader vouched for, without
	 * the call (its scan results are not needed here). */
	if (known == SIZE_MAX && check_chars(p, fd, s, len, &sc, known) != 0)
		return -1;
	switch (fd->kind) {
	case GS_KIND_ENUM:
		return check_code_str(p, fd, fd->codes, "", s, len, 1);
	case GS_KIND_DATE:
		return check_date(p, fd, s, len, today);
	case GS_KIND_DATETIME:
		return check_datetime(p, fd, s, len, now_ms);
	case GS_KIND_REF:
		return check_ref(p, fd, s, len, v);
	case GS_KIND_IDCARD:
		return check_idcard(p, fd, s, len, today, v);
	case GS_KIND_USCC:
		return check_uscc(p, fd, s, len, v);
	case GS_KIND_PHONE:
		return check_phone(p, fd, s, len, v);
	default:
		gs_problems_add(p, fd->name, "type", "has a kind this program "
		    "cannot check");
		return -1;
	}
}

/* Checks one present value.  0 when valid, -1 when a problem was added,
 * GS_ENOMEM when normalization failed. */
static int
check_value(const struct gs_schema *s, struct gs_problems *p,
    const struct gs_field *fd, json_t *v, int today, int64_t now_ms)
{
	switch (fd->kind) {
	case GS_KIND_INT:
	case GS_KIND_REAL:
		return check_number(p, fd, v);
	case GS_KIND_BOOL:
		if (!json_is_boolean(v)) {
			wrong_type(p, fd, "true or false", v);
			return -1;
		}
		return 0;
	case GS_KIND_TAGS:
		return check_tags(p, fd, v);
	case GS_KIND_GEO:
		return check_geo(s, p, fd, v);
	case GS_KIND_ATTACHMENTS:
		return check_attachments(s, p, fd, v);
	default:
		break;
	}
	/* Everything else is a string. */
	if (!json_is_string(v)) {
		wrong_type(p, fd, "a string", v);
		return -1;
	}
	return check_string(p, fd, json_string_value(v), json_string_length(v),
	    v, today, now_ms, SIZE_MAX);
}

/*
 * A text value of nothing but spaces (ASCII space, tab, line breaks, the
 * no-break space U+00A0 and the ideographic space U+3000 a Chinese input
 * method types): a required name of "   " is as absent as none, and
 * counts as absent where a field is required.  An empty string is left to
 * the length rule, which names it.
 */
static int
is_blank(const struct gs_field *fd, const char *s, size_t len)
{
	size_t i = 0;

	if (fd->kind != GS_KIND_TEXT || s == NULL || len == 0)
		return 0;
	while (i < len) {
		if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
			i++;
		else if (len - i >= 2 && memcmp(s + i, "\xc2\xa0", 2) == 0)
			i += 2;
		else if (len - i >= 3 && memcmp(s + i, "\xe3\x80\x80", 3) == 0)
			i += 3;
		else
			return 0;
	}
	return 1;
}

/* The value that makes a required_if hold, or NULL.  Values compare as
 * JSON (json_equal), so a condition on a bool or an int works like one on
 * a code. */
static json_t *
required_by(const struct gs_field *fd, json_t *const *vals)
{
	json_t *other, *want;
	size_t i;

	other = vals[fd->req_if->index];
	if (other == NULL || json_is_null(other))
		return NULL;
	json_array_foreach(fd->req_if_in, i, want)
		if (json_equal(other, want))
			return other;
	return NULL;
}

/*
 * One cross-field check of two values that passed their own: sa[0..la)
 * the field's string, sb[0..lb) the other's (NULL: absent or not a
 * string).  Both are valid, so neither holds a NUL.
 */
static void
cross_check(const struct gs_check *ck, const char *sa, size_t la,
    const char *sb, size_t lb, struct gs_problems *p)
{
	if (sa == NULL || sb == NULL)
		return; /* one is absent */
	switch (ck->kind) {
	case GS_CHECK_IDCARD_SEX: {
		/* Digit 17: odd for men, even for women.  0 (unknown) and 9
		 * (not stated) agree with anything. */
		char want = ((sb[16] - '0') & 1) ? '1' : '2';

		if (la == 1 && (sa[0] == '1' || sa[0] == '2') &&
		    sa[0] != want)
			gs_problems_add(p, ck->field->name, "sex_mismatch",
			    "should be %c to agree with %s, not %c", want,
			    ck->other->name, sa[0]);
		break;
	}
	case GS_CHECK_IDCARD_BIRTH:
		if (sa[0] != sb[6] || sa[1] != sb[7] || sa[2] != sb[8] ||
		    sa[3] != sb[9] || sa[5] != sb[10] || sa[6] != sb[11] ||
		    sa[8] != sb[12] || sa[9] != sb[13])
			gs_problems_add(p, ck->field->name, "birth_mismatch",
			    "should be %.4s-%.2s-%.2s to agree with %s", sb + 6,
			    sb + 10, sb + 12, ck->other->name);
		break;
	case GS_CHECK_NOT_BEFORE: {
		/* Both are valid and the same kind; as UTC timestamps of one
		 * shape they compare as times once parsed. */
		int64_t ta = 0, tb = 0;
		int y, m, d;

		if (ck->field->kind == GS_KIND_DATETIME) {
			gs_datetime_parse(sa, la, &ta);
			gs_datetime_parse(sb, lb, &tb);
		} else {
			gs_date_parse(sa, la, &y, &m, &d);
			ta = gs_days_from_civil(y, m, d);
			gs_date_parse(sb, lb, &y, &m, &d);
			tb = gs_days_from_civil(y, m, d);
		}
		if (ta < tb)
			gs_problems_add(p, ck->field->name, "order", "should not "
			    "be before %s (%.*s)", ck->other->name, (int)lb, sb);
		break;
	}
	}
}

int
gs_record_validate(const struct gs_schema *s, const struct gs_form *f,
    json_t *fields, struct gs_problems *p)
{
	json_t *vals[GS_FORM_MAX_FIELDS];
	char ok[GS_FORM_MAX_FIELDS];
	const struct gs_field *fd;
	const char *key;
	size_t i, klen;
	json_t *v;
	int today, r, blank;
	int64_t now_ms;

	gs_problems_init(p);
	if (f == NULL) {
		/* The caller looked up a type that does not exist. */
		gs_problems_add(p, "", "unknown_type", "is not a record type "
		    "of this schema");
		return GS_EVALIDATION;
	}
	if (!json_is_object(fields)) {
		gs_problems_add(p, "", "type", "fields should be an object, "
		    "not %s", fields != NULL ? json_kind_name(fields) : "null");
		return GS_EVALIDATION;
	}
	/*
	 * One pass over the record's keys finds each value's field (a
	 * hash lookup by name) and refuses unknown keys; the checks below
	 * then read vals[] instead of hashing every field name of the form
	 * again.  A key with an embedded NUL never matches (no field name
	 * holds one).
	 */
	memset(vals, 0, f->nfields * sizeof(vals[0]));
	json_object_keylen_foreach(fields, key, klen, v) {
		fd = gs_form_fieldn(f, key, klen);
		if (fd != NULL) {
			vals[fd->index] = v;
			continue;
		}
		{
			char q[200];

			gs_problems_add(p, safe_name(q, sizeof(q), key, klen),
			    "unknown_field", "is not a field of %s", f->type);
		}
	}
	/* Both never earlier than the time floor (core/util.h). */
	today = gs_today_cst();
	now_ms = gs_now_floor_ms();
	for (i = 0; i < f->nfields; i++) {
		json_t *why;

		fd = &f->fields[i];
		ok[i] = 0;
		v = vals[i];
		blank = v != NULL && is_blank(fd, json_string_value(v),
		    json_string_length(v));
		if (v == NULL || json_is_null(v) || (blank &&
		    (fd->required || (fd->req_if != NULL &&
		    required_by(fd, vals) != NULL)))) {
			const char *sp = blank ? " (only spaces were given)" :
			    "";

			if (fd->required) {
				gs_problems_add(p, fd->name, "required",
				    "is required%s", sp);
			} else if (fd->req_if != NULL &&
			    (why = required_by(fd, vals)) != NULL) {
				char q[200];

				if (json_is_string(why))
					quote(q, sizeof(q), NULL,
					    json_string_value(why),
					    json_string_length(why));
				else
					gs_strlcpy(q, json_is_true(why) ?
					    "true" : json_is_false(why) ?
					    "false" : "set", sizeof(q));
				gs_problems_add(p, fd->name, "required",
				    "is required when %s is %s%s",
				    fd->req_if->name, q, sp);
			}
			continue;
		}
		r = check_value(s, p, fd, v, today, now_ms);
		if (r == GS_ENOMEM)
			return GS_FAIL(GS_ENOMEM, "%s: normalizing", fd->name);
		ok[i] = r == 0;
	}
	for (i = 0; i < f->nchecks; i++) {
		const struct gs_check *ck = &f->checks[i];
		json_t *a = vals[ck->field->index], *b = vals[ck->other->index];

		if (ok[ck->field->index] && ok[ck->other->index])
			cross_check(ck, json_string_value(a),
			    json_string_length(a), json_string_value(b),
			    json_string_length(b), p);
	}
	if (p->n > 0 || p->dropped > 0)
		return GS_EVALIDATION;
	return GS_OK;
}

/* ----------------------------------------------------- plain members */

/*
 * gs_record_validate_spans (validate.h): gs_record_validate's verdict on
 * a valid record without its jansson values.  Each helper below returns
 * 0 when a member passes exactly as check_value passes the JSON value it
 * spells, and nonzero for anything else: a problem, a value that would be
 * normalized, a shape this path does not read.  Then the caller builds
 * the values and runs gs_record_validate, which decides and names the
 * problems; so only "valid" is ever decided here.
 */

/* A member's string value: its body (plain: no escape, so these are the
 * string's bytes), or NULL when the value is not a string. */
static const char *
span_str(const struct gs_json_span *m, size_t *len)
{
	if (m->vlen < 2 || m->val[0] != '"')
		return NULL;
	*len = m->vlen - 2;
	return m->val + 1;
}

/* A plain number is an integer of at most 18 digits (json.h): into *x.
 * -1 when the value is not a number. */
static int
span_int(const struct gs_json_span *m, long long *x)
{
	const char *q = m->val, *e = m->val + m->vlen;
	long long v = 0;
	int neg = 0;

	if (q < e && *q == '-') {
		neg = 1;
		q++;
	}
	if (q == e || e - q > 18)
		return -1;
	for (; q < e; q++) {
		if (*q < '0' || *q > '9')
			return -1;
		v = v * 10 + (*q - '0');
	}
	*x = neg ? -v : v;
	return 0;
}

/* check_tags of a plain array of strings. */
static int
span_tags(struct gs_problems *p, const struct gs_field *fd,
    const struct gs_json_span *m)
{
	const char *q = m->val, *e = m->val + m->vlen, *b, *c;
	const char *item[16];
	size_t ilen[16], n = 0, k;

	if (q == e || *q++ != '[')
		return -1;
	if (q < e && *q == ']')
		return q + 1 == e ? 0 : -1;
	for (;;) {
		if (q == e || *q != '"' || n == 16)
			return -1;
		b = ++q;
		/* Plain: the first quote ends the string. */
		if ((c = memchr(b, '"', (size_t)(e - b))) == NULL ||
		    check_code_str(p, fd, fd->codes, "", b, (size_t)(c - b), 0)
		    != 0)
			return -1;
		for (k = 0; k < n; k++)
			if (ilen[k] == (size_t)(c - b) &&
			    memcmp(item[k], b, ilen[k]) == 0)
				return -1;
		item[n] = b;
		ilen[n++] = (size_t)(c - b);
		q = c + 1;
		if (q < e && *q == ',') {
			q++;
			continue;
		}
		return q < e && *q == ']' && q + 1 == e ? 0 : -1;
	}
}

static int
span_value(struct gs_problems *p, const struct gs_field *fd,
    const struct gs_json_span *m, int today, int64_t now_ms)
{
	const char *str;
	size_t len;
	long long x;

	switch (fd->kind) {
	case GS_KIND_INT:
	case GS_KIND_REAL:
		/* An integer is either kind's number; json_number_value of
		 * it is the double below. */
		if (span_int(m, &x) != 0)
			return -1;
		return (fd->has_min && (double)x < fd->min) ||
		    (fd->has_max && (double)x > fd->max) ? -1 : 0;
	case GS_KIND_BOOL:
		return (m->vlen == 4 && memcmp(m->val, "true", 4) == 0) ||
		    (m->vlen == 5 && memcmp(m->val, "false", 5) == 0) ? 0 : -1;
	case GS_KIND_TAGS:
		return span_tags(p, fd, m);
	case GS_KIND_GEO:
	case GS_KIND_ATTACHMENTS:
		return -1; /* objects: gs_record_validate reads them */
	default:
		break;
	}
	if ((str = span_str(m, &len)) == NULL ||
	    is_blank(fd, str, len))
		return -1;
	return check_string(p, fd, str, len, NULL, today, now_ms, m->vchars);
}

/* required_by for an absent field: 0 when its condition does not hold,
 * -1 when it does or when this path cannot tell (a condition value that
 * is not a string, a boolean or an integer). */
static int
span_required(const struct gs_field *fd, const struct gs_json_span *const *vals)
{
	const struct gs_json_span *o = vals[fd->req_if->index];
	const char *str;
	size_t i, len;
	long long x;
	json_t *want;

	if (o == NULL)
		return 0;
	if (o->vlen == 4 && memcmp(o->val, "null", 4) == 0)
		return 0;
	json_array_foreach(fd->req_if_in, i, want) {
		switch (json_typeof(want)) {
		case JSON_STRING:
			if ((str = span_str(o, &len)) != NULL &&
			    len == json_string_length(want) &&
			    memcmp(str, json_string_value(want), len) == 0)
				return -1;
			break;
		case JSON_TRUE:
		case JSON_FALSE:
			if (o->vlen == (json_is_true(want) ? 4u : 5u) &&
			    memcmp(o->val, json_is_true(want) ? "true" :
			    "false", o->vlen) == 0)
				return -1;
			break;
		case JSON_INTEGER:
			if (span_int(o, &x) == 0 &&
			    x == (long long)json_integer_value(want))
				return -1;
			break;
		default:
			return -1;
		}
	}
	return 0;
}

/*
 * gs_form_fieldn of a member's key, inline, and with its k8 (the key's
 * first 8 bytes) compared instead of a call of memcmp: only a longer key
 * has bytes left to compare (same_bytes).
 */
static inline const struct gs_field *
span_field(const struct gs_form *f, const struct gs_json_span *m)
{
	const struct gs_field *fd;
	size_t k;

	for (k = gs_name_hash(m->key, m->klen) & (GS_FORM_SLOTS - 1);
	    f->slot[k] != 0; k = (k + 1) & (GS_FORM_SLOTS - 1)) {
		fd = &f->fields[f->slot[k] - 1];
		if (fd->k8 == m->k8 && fd->namelen == m->klen &&
		    (m->klen <= 8 || same_bytes(fd->name, m->key, m->klen)))
			return fd;
	}
	return NULL;
}

/*
 * A phone member check_phone would normalize, pointed at its canonical
 * spelling, written at norm[*used..normlen) (gs_record_validate_spans_norm).
 * -1 when there is no room.
 */
static int
span_phone(struct gs_json_span *m, char *norm, size_t normlen, size_t *used)
{
	char out[GS_PHONE_MAX + 1];
	size_t k;

	/* check_phone took it: it normalizes. */
	(void)gs_phone_normalize(m->val + 1, m->vlen - 2, out);
	k = strlen(out);
	if (normlen - *used < k + 2)
		return -1;
	norm[*used] = '"';
	memcpy(norm + *used + 1, out, k);
	norm[*used + k + 1] = '"';
	m->val = norm + *used;
	m->vlen = k + 2;
	m->vchars = k; /* digits */
	*used += k + 2;
	return 0;
}

/*
 * gs_record_validate_spans and gs_record_validate_spans_norm: fdout and
 * norm NULL for the first, which changes nothing in m (so its const).
 */
static int
validate_spans(const struct gs_form *f, struct gs_json_span *m, size_t n,
    const char *uuid, const struct gs_field **fdout, char *norm,
    size_t normlen)
{
	const struct gs_json_span *vals[GS_FORM_MAX_FIELDS];
	const struct gs_field *fd;
	const struct gs_check *ck;
	struct gs_problems p;
	const char *sa, *sb;
	size_t i, la = 0, lb = 0, used = 0;
	int today, r;
	int64_t now_ms;

	if (f == NULL)
		return 0;
	memset(vals, 0, f->nfields * sizeof(vals[0]));
	gs_problems_init(&p);
	today = gs_today_cst();
	now_ms = gs_now_floor_ms();
	/* Each member once, in the record's order: the verdict is "every
	 * one passes", whatever the order they are checked in. */
	for (i = 0; i < n; i++) {
		/* An unknown key, or a key twice (gs_json_plain_members
		 * leaves that to us): the full path decides. */
		if ((fd = span_field(f, &m[i])) == NULL ||
		    vals[fd->index] != NULL)
			return 0;
		vals[fd->index] = &m[i];
		if (fdout != NULL)
			fdout[i] = fd;
		/* A null clears a field: not a record's value. */
		if (m[i].vlen == 4 && memcmp(m[i].val, "null", 4) == 0)
			return 0;
		r = span_value(&p, fd, &m[i], today, now_ms);
		/* A phone number to normalize, for a caller that takes the
		 * canonical spelling (no other value's check looks at a
		 * phone's: no cross check reads one). */
		if (r == NORMALIZE && norm != NULL &&
		    fd->kind == GS_KIND_PHONE &&
		    span_phone(&m[i], norm, normlen, &used) == 0)
			r = 0;
		if (r != 0)
			return 0;
	}
	/* The fields that must be present (form.must: the rest may be
	 * absent). */
	for (i = 0; i < f->nmust; i++) {
		fd = &f->fields[f->must[i]];
		if (vals[f->must[i]] == NULL && (fd->required ||
		    span_required(fd, vals) != 0))
			return 0;
	}
	/* Every present value passed: the cross checks of the strings. */
	for (i = 0; i < f->nchecks; i++) {
		ck = &f->checks[i];
		if (vals[ck->field->index] == NULL ||
		    vals[ck->other->index] == NULL)
			continue;
		sa = span_str(vals[ck->field->index], &la);
		sb = span_str(vals[ck->other->index], &lb);
		cross_check(ck, sa, la, sb, lb, &p);
	}
	if (p.n > 0 || p.dropped > 0)
		return 0;
	/* gs_record_check_self: no ref names the record itself. */
	for (i = 0; i < f->nrefs; i++)
		if (vals[f->refs[i]] != NULL &&
		    (sa = span_str(vals[f->refs[i]], &la)) != NULL &&
		    la == strlen(uuid) && memcmp(sa, uuid, la) == 0)
			return 0;
	return 1;
}

int
gs_record_validate_spans(const struct gs_schema *s, const struct gs_form *f,
    const struct gs_json_span *m, size_t n, const char *uuid)
{
	/* s gives the tables of geo and attachments values, which are
	 * left to gs_record_validate.  Without norm nothing of m is
	 * written. */
	(void)s;
	return validate_spans(f, (struct gs_json_span *)m, n, uuid, NULL,
	    NULL, 0);
}

int
gs_record_validate_spans_norm(const struct gs_schema *s,
    const struct gs_form *f, struct gs_json_span *m, size_t n,
    const char *uuid, const struct gs_field **fd, char *norm,
    size_t normlen)
{
	(void)s;
	return validate_spans(f, m, n, uuid, fd, norm, normlen);
}

/* ------------------------------------------------- command-line values */

/* Strict decimal number: the whole string, finite.  strtod alone also
 * takes hexadecimal ("0x10" is 16), "inf" and "nan": only digits, a
 * sign, a point and a decimal exponent may be in it. */
static int
parse_real(const char *s, double *out)
{
	char *end;

	if (*s == '\0' || s[strspn(s, "0123456789+-.eE")] != '\0')
		return -1;
	*out = strtod(s, &end);
	return *end == '\0' && isfinite(*out) ? 0 : -1;
}

static int
parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "true", "1", "yes", "是", NULL };
	static const char *const no[] = { "false", "0", "no", "否", NULL };
	size_t i;

	for (i = 0; yes[i] != NULL; i++)
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
	for (i = 0; no[i] != NULL; i++)
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	return -1;
}

/* Trims ASCII spaces in place. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ')
		s++;
	e = s + strlen(s);
	while (e > s && e[-1] == ' ')
		*--e = '\0';
	return s;
}

/* "A,B,C" (a full-width comma works too) -> ["A","B","C"]. */
static json_t *
args_tags(const struct gs_field *fd, const char *val, struct gs_problems *p,
    int *nomem)
{
	char buf[1024], *cur, *next, *item;
	json_t *arr;

	if (strlen(val) >= sizeof(buf)) {
		gs_problems_add(p, fd->name, "length", "should be shorter than "
		    "%zu bytes", sizeof(buf));
		return NULL;
	}
	gs_strlcpy(buf, val, sizeof(buf));
	if ((arr = json_array()) == NULL) {
		*nomem = 1;
		return NULL;
	}
	for (cur = buf; cur != NULL; cur = next) {
		char *comma = strchr(cur, ','), *wide = strstr(cur, "，");

		next = NULL;
		if (wide != NULL && (comma == NULL || wide < comma)) {
			*wide = '\0';
			next = wide + strlen("，");
		} else if (comma != NULL) {
			*comma = '\0';
			next = comma + 1;
		}
		item = trim(cur);
		if (*item == '\0') {
			gs_problems_add(p, fd->name, "format", "should be codes "
			    "separated by commas, with no empty one");
			json_decref(arr);
			return NULL;
		}
		if (json_array_append_new(arr, json_string(item)) != 0) {
			/* json_string fails on invalid UTF-8 as well. */
			json_decref(arr);
			gs_problems_add(p, fd->name, "utf8", "should be valid "
			    "UTF-8");
			return NULL;
		}
	}
	return arr;
}

/* "LAT,LON[,ACCURACY[,COORD_SYS]]" -> {"lat":..,"lon":..,...}. */
static json_t *
args_geo(const struct gs_field *fd, const char *val, struct gs_problems *p,
    int *nomem)
{
	static const char *const keys[] = { "lat", "lon", "accuracy",
		"coord_sys" };
	char buf[256], *part[4], *cur, *next;
	size_t n = 0, i;
	json_t *o, *x;
	double d;

	if (strlen(val) >= sizeof(buf))
		goto bad;
	gs_strlcpy(buf, val, sizeof(buf));
	for (cur = buf; cur != NULL; cur = next) {
		char *comma = strchr(cur, ',');

		next = NULL;
		if (comma != NULL) {
			*comma = '\0';
			next = comma + 1;
		}
		if (n == 4)
			goto bad;
		part[n++] = trim(cur);
	}
	if (n < 2)
		goto bad;
	if ((o = json_object()) == NULL) {
		*nomem = 1;
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (i < 3) {
			if (parse_real(part[i], &d) != 0) {
				json_decref(o);
				goto bad;
			}
			x = json_real(d);
		} else {
			x = json_string(part[i]);
		}
		if (x == NULL || json_object_set_new(o, keys[i], x) != 0) {
			json_decref(o);
			if (x == NULL && i == 3)
				goto bad;
			*nomem = 1;
			return NULL;
		}
	}
	return o;
bad:
	gs_problems_add(p, fd->name, "format", "should be LAT,LON[,ACCURACY"
	    "[,COORD_SYS]] such as 22.5917,114.5441,8,WGS84");
	return NULL;
}

/*
 * A worker types the time on the handheld's clock: "+08:00" is taken and
 * made UTC here, because records store UTC only (sync/ids.h), and the
 * validator would call it malformed.  A time without a zone is refused:
 * which zone was meant is a guess.  NULL with a problem added, or NULL and
 * *nomem set.
 */
static json_t *
args_datetime(const struct gs_field *fd, const char *val,
    struct gs_problems *p, int *nomem)
{
	char utc[GS_DATETIME_MAX], q[200];
	size_t len = strlen(val);
	json_t *v;
	int r;

	r = gs_datetime_to_utc(val, len, utc, sizeof(utc));
	if (r == 0) {
		if ((v = json_string(utc)) == NULL)
			*nomem = 1;
		return v;
	}
	if (r == -2)
		gs_problems_add(p, fd->name, "date", "should be a real time, "
		    "%s does not exist", quote(q, sizeof(q), fd, val, len));
	else
		gs_problems_add(p, fd->name, "format", "should be a time "
		    "with its zone, like 2026-11-26T15:04:33+08:00 or "
		    "2026-11-26T07:04:33Z, not %s",
		    quote(q, sizeof(q), fd, val, len));
	return NULL;
}

/* How many of args[0..i-1] set the field name (len bytes). */
static int
given_before(char *const *args, int i, const char *name, size_t len)
{
	int k, n = 0;

	for (k = 0; k < i; k++)
		if (strncmp(args[k], name, len) == 0 && args[k][len] == '=')
			n++;
	return n;
}

int
gs_fields_from_args(const struct gs_form *f, char *const *args, int n,
    json_t *into, struct gs_problems *p)
{
	int i;

	/* Every argument is looked at even after a problem, so that the
	 * worker sees all mistakes of a command line at once. */
	gs_problems_init(p);
	if (f == NULL || !json_is_object(into) || (n > 0 && args == NULL))
		return GS_FAIL(GS_EINVAL, "gs_fields_from_args: no form, no "
		    "object or no arguments");
	for (i = 0; i < n; i++) {
		const char *arg = args[i], *eq = strchr(arg, '='), *val;
		const struct gs_field *fd = NULL;
		char name[64], q[200];
		json_t *v = NULL;
		int nomem = 0, b;
		int64_t iv;
		double d;
		struct gs_utf8_scan sc;

		if (eq == NULL || eq == arg) {
			quote(q, sizeof(q), NULL, arg, strlen(arg));
			gs_problems_add(p, "", "format", "arguments should be "
			    "NAME=VALUE, not %s", q);
			continue;
		}
		if ((size_t)(eq - arg) < sizeof(name)) {
			memcpy(name, arg, (size_t)(eq - arg));
			name[eq - arg] = '\0';
			fd = gs_form_field(f, name);
		}
		if (fd == NULL) {
			safe_name(q, sizeof(q), arg, (size_t)(eq - arg));
			gs_problems_add(p, q, "unknown_field",
			    "is not a field of %s", f->type);
			continue;
		}
		val = eq + 1;
		/* argv bytes are whatever the terminal sent: check UTF-8
		 * here, because json_string() would only say "NULL". */
		if (*val == '\0') {
			v = json_null();
		} else if (gs_utf8_scan(val, strlen(val), &sc) != 0) {
			gs_problems_add(p, fd->name, "utf8", "should be valid "
			    "UTF-8, byte %zu is not", sc.bad_at + 1);
			continue;
		} else {
			switch (fd->kind) {
			case GS_KIND_INT:
				if (gs_parse_i64(val, INT64_MIN, INT64_MAX,
				    &iv) != GS_OK) {
					gs_problems_add(p, fd->name, "type",
					    "should be an integer, not %s",
					    quote(q, sizeof(q), fd, val,
					    strlen(val)));
					continue;
				}
				v = json_integer(iv);
				break;
			case GS_KIND_REAL:
				if (parse_real(val, &d) != 0) {
					gs_problems_add(p, fd->name, "type",
					    "should be a number, not %s",
					    quote(q, sizeof(q), fd, val,
					    strlen(val)));
					continue;
				}
				v = json_real(d);
				break;
			case GS_KIND_BOOL:
				if (parse_bool(val, &b) != 0) {
					gs_problems_add(p, fd->name, "type",
					    "should be true or false (1/0, "
					    "yes/no, 是/否), not %s",
					    quote(q, sizeof(q), fd, val,
					    strlen(val)));
					continue;
				}
				v = json_boolean(b);
				break;
			case GS_KIND_TAGS:
				if ((v = args_tags(fd, val, p, &nomem)) == NULL &&
				    !nomem)
					continue;
				break;
			case GS_KIND_GEO:
				if ((v = args_geo(fd, val, p, &nomem)) == NULL &&
				    !nomem)
					continue;
				break;
			case GS_KIND_ATTACHMENTS:
				gs_problems_add(p, fd->name, "type", "is set by "
				    "'gridagent attach', not NAME=VALUE");
				continue;
			case GS_KIND_DATETIME:
				if ((v = args_datetime(fd, val, p, &nomem)) ==
				    NULL && !nomem)
					continue;
				break;
			default:
				v = json_string(val);
				break;
			}
		}
		if (v == NULL)
			return GS_FAIL(GS_ENOMEM, "%s: value", fd->name);
		/* "name=A ... name=B" would keep B without a word, where
		 * --json refuses a duplicate key: which one was meant?  Said
		 * once, however many times. */
		if ((b = given_before(args, i, name, (size_t)(eq - arg))) > 0) {
			json_decref(v);
			if (b == 1)
				gs_problems_add(p, fd->name, "duplicate",
				    "is given more than once");
			continue;
		}
		if (json_object_set_new(into, fd->name, v) != 0)
			return GS_FAIL(GS_ENOMEM, "%s: set", fd->name);
	}
	return p->n > 0 || p->dropped > 0 ? GS_EVALIDATION : GS_OK;
}

int
gs_record_check_self(const struct gs_form *f, json_t *fields,
    const char *uuid, struct gs_problems *p)
{
	size_t i, n = gs_form_nfields(f);
	int found = 0;

	for (i = 0; i < n; i++) {
		const struct gs_field *fd = gs_form_field_at(f, i);
		const char *v;

		if (gs_field_kind(fd) != GS_KIND_REF)
			continue;
		v = json_string_value(json_object_get(fields,
		    gs_field_name(fd)));
		/* Validated refs are canonical lower case, as uuids are. */
		if (v != NULL && strcmp(v, uuid) == 0) {
			gs_problems_add(p, gs_field_name(fd), "self_ref",
			    "should name another record, not this one");
			found = 1;
		}
	}
	return found ? GS_EVALIDATION : GS_OK;
}
