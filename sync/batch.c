/*
 * batch.c - change records and the canonical NDJSON batch plaintext
 * (format in batch.h and docs/PROTOCOL.md).
 *
 * The encoder writes the fixed keys itself (it is the hot path of "batch":
 * a thousand changes per envelope) and lets jansson write the two values
 * with free content, "reason" and "fields".  The decoder reads a change
 * line position by position (fast_change: the fixed keys in their one
 * order, "fields" through sync/json.c), or, for anything else, parses it
 * with jansson and checks every key and type to say what is wrong; both
 * finally re-encode the decoded change and require the very same bytes.
 * That last step is what makes the encoding canonical in practice: there
 * is exactly one accepted spelling of each change, so a signed batch
 * means one thing only.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "batch.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "bytes-priv.h"
#include "ids.h"
#include "json.h"
#include "schema.h"
#include "uuid.h"
#include "core/banned.h"

/* Reals are written with 15 significant digits (DBL_DIG): any such
 * decimal survives text -> double -> text unchanged, which the canonical
 * check needs, and "0.1" stays "0.1" instead of 0.10000000000000001.
 * This is jansson's JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15)
 * output; put_value below writes it. */
#define NKEYS 12

/* The change line's keys, in their one order. */
static const char *const keys[NKEYS] = {"change_id", "uuid", "type",
    "form_version", "grid", "base_rev", "deleted", "created_at", "updated_at",
    "author", "reason", "fields"};

void
gs_change_init(struct gs_change *c)
{
	memset(c, 0, sizeof *c);
}

void
gs_change_release(struct gs_change *c)
{
	if (c == NULL)
		return;
	json_decref(c->fields);
	c->fields = NULL;
	gs_free(c->reason);
	c->reason = NULL;
}

/* ------------------------------------------------------------- encoding */

/*
 * The header line is all numbers and hex, so printf writes it in its one
 * canonical form.  The key order is the envelope header's order.
 */
int
gs_batch_encode_header(struct gs_buf *out, const struct gs_batch_header *h)
{
	char dep[33], dev[33], bat[33];
	size_t start = out->len;
	int r;

	gs_hex_encode(dep, h->deployment, 16);
	gs_hex_encode(dev, h->device, 16);
	gs_hex_encode(bat, h->batch, 16);
	r = gs_buf_printf(out,
	    "{\"v\":%d,\"deployment\":\"%s\",\"device\":"
	    "\"%s\",\"batch\":\"%s\",\"seq\":%" PRIu64 ",\"count\":%" PRIu32
	    "}\n",
	    h->v, dep, dev, bat, h->seq, h->count);
	if (r != GS_OK)
		gs_buf_truncate(out, start);
	return r;
}

/* A canonical lower-case UUID text.  Upper case parses too, but two
 * spellings of one id would give two encodings of one change, and a
 * platform comparing change ids as text would see two changes. */
/* Character classes for check_uuid: lower-case hex digit, upper-case hex
 * digit, dash; anything else (the terminator included) is BAD. */
enum { U_LOW = 1, U_UP = 2, U_DASH = 4, U_BAD = 8 };
static const unsigned char UUID_CLASS[256] = {
#define B U_BAD
#define B16 B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, B
	B16, B16,
	B, B, B, B, B, B, B, B, B, B, B, B, B, U_DASH, B, B,	/* 0x20 */
	U_LOW, U_LOW, U_LOW, U_LOW, U_LOW, U_LOW, U_LOW, U_LOW, /* '0' */
	U_LOW, U_LOW, B, B, B, B, B, B,
	B, U_UP, U_UP, U_UP, U_UP, U_UP, U_UP, B, B, B, B, B, B, B, B, B,
	B16,
	B, U_LOW, U_LOW, U_LOW, U_LOW, U_LOW, U_LOW, B, B, B, B, B, B, B, B, B,
	B16,
	B16, B16, B16, B16, B16, B16, B16, B16,
#undef B16
#undef B
};
/* 1 where a uuid's text has its dashes (8-4-4-4-12). */
static const unsigned char UUID_AT_DASH[GS_UUID_LEN] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1,
	0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* The high bit of each byte of w that is a lower-case hex digit, by
 * carries that stay in their byte (every byte below 0x80 here). */
static inline uint64_t
hex_low8(uint64_t w)
{
	uint64_t x = w & ~GS_HIGHS;

	return ((((x + GS_ONES * 0x50) & ~(x + GS_ONES * 0x46)) |
	    ((x + GS_ONES * 0x1f) & ~(x + GS_ONES * 0x19))) & ~w & GS_HIGHS);
}

/* The high bit of each byte of w equal to c, exactly. */
static inline uint64_t
bytes_eq8(uint64_t w, unsigned char c)
{
	uint64_t y = w ^ (GS_ONES * c);

	return ~((((y & ~GS_HIGHS) + ~GS_HIGHS) | y) & GS_HIGHS) & GS_HIGHS;
}

/* The flag of byte i (memory order) of an 8-byte word. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define BYTE_FLAG(i) (0x80ull << (8 * (7 - (i))))
#else
#define BYTE_FLAG(i) (0x80ull << (8 * (i)))
#endif

/*
 * s is a char[GS_UUID_LEN + 1] (struct gs_change's ids): the common case,
 * a canonical id, is taken first eight bytes at a time (words at 0, 8,
 * 16, 24 and 29: hex digits, the dashes at 8, 13, 18 and 23, the
 * terminator at 36), without a branch per character (where the loop
 * below took 340 instructions); anything else goes through the loop,
 * which says what is wrong.
 */
static int
check_uuid(const char *what, const char s[GS_UUID_LEN + 1])
{
	const uint64_t d1 = BYTE_FLAG(0) | BYTE_FLAG(5),
	    d2 = BYTE_FLAG(2) | BYTE_FLAG(7);
	unsigned char seen[2] = { 0, 0 }; /* classes at digits, at dashes */
	uint64_t w[5];
	size_t i;

	memcpy(&w[0], s, 8);
	memcpy(&w[1], s + 8, 8);
	memcpy(&w[2], s + 16, 8);
	memcpy(&w[3], s + 24, 8);
	memcpy(&w[4], s + 29, 8);
	if ((hex_low8(w[0]) & hex_low8(w[3])) == GS_HIGHS &&
	    ((hex_low8(w[1]) & ~d1) | (bytes_eq8(w[1], '-') & d1)) ==
	    GS_HIGHS &&
	    ((hex_low8(w[2]) & ~d2) | (bytes_eq8(w[2], '-') & d2)) ==
	    GS_HIGHS &&
	    ((hex_low8(w[4]) & ~BYTE_FLAG(7)) |
	    (bytes_eq8(w[4], 0) & BYTE_FLAG(7))) == GS_HIGHS)
		return GS_OK;

	/* One pass by table, where parsing, formatting again and comparing
	 * took about 700 instructions per id (two per line on both sides):
	 * the same verdicts, 8-4-4-4-12 hex digits, and lower case.  A
	 * string shorter than a uuid stops at its terminator. */
	for (i = 0; i < GS_UUID_LEN; i++) {
		unsigned char k = UUID_CLASS[(unsigned char)s[i]];

		if (k == U_BAD)
			break;
		seen[UUID_AT_DASH[i]] |= k;
	}
	if (i < GS_UUID_LEN || s[GS_UUID_LEN] != '\0' || seen[1] != U_DASH ||
	    (seen[0] & U_DASH) != 0)
		return GS_FAIL(GS_EINVAL, "%s is not a uuid", what);
	if (seen[0] & U_UP)
		return GS_FAIL(GS_EINVAL, "%s must be lower case", what);
	return GS_OK;
}

/* A short identifier-like string written without escapes: valid UTF-8,
 * no control characters, no quote or backslash.  Empty allowed when
 * may_be_empty.  Refusing the few characters that would need escaping
 * lets the encoder copy grid and author verbatim (the hot path) and keeps
 * them safe to print in logs, CSV and terminals; no real grid code or
 * worker id contains them. */
/* 1 for the bytes check_plain takes as they are: printable ASCII and
 * space, but not '"' or '\\'. */
static const unsigned char LABEL_BYTE[256] = {
#define Y16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,	/* 0x00 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,	/* 0x20: '"' */
	Y16, Y16,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,	/* 0x50: '\\' */
	Y16,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,	/* 0x70: DEL */
	/* 0x80-0xff: 0 (the UTF-8 scan decides) */
#undef Y16
};

static int
check_plain(const char *what, const char *s, size_t max, int may_be_empty)
{
	struct gs_utf8_scan sc;
	size_t n = strnlen(s, max + 1), i;
	unsigned ok = 1;

	/* A grid code or worker id is a few ASCII characters: taken by one
	 * table read each, without the UTF-8 scan and the searches below. */
	for (i = 0; i < n; i++)
		ok &= LABEL_BYTE[(unsigned char)s[i]];
	if (ok && n <= max && (n > 0 || may_be_empty))
		return GS_OK;
	if (n > max)
		return GS_FAIL(
		    GS_EINVAL, "%s is longer than %zu bytes", what, max);
	if (n == 0 && !may_be_empty)
		return GS_FAIL(GS_EINVAL, "%s is empty", what);
	if (gs_utf8_scan(s, n, &sc) != 0)
		return GS_FAIL(GS_EINVAL, "%s is not valid UTF-8", what);
	if (sc.ctrl_at != SIZE_MAX || sc.space_at != SIZE_MAX ||
	    memchr(s, '"', n) != NULL || memchr(s, '\\', n) != NULL)
		return GS_FAIL(GS_EINVAL,
		    "%s has a control character, quote "
		    "or backslash",
		    what);
	return GS_OK;
}

/* Record types are names of forms: a small closed alphabet, so they can
 * be used as they are in file names, SQL and log lines. */
static int
check_type(const char *s)
{
	size_t i, n = strnlen(s, GS_CHANGE_TYPE_MAX + 1);

	if (n == 0 || n > GS_CHANGE_TYPE_MAX)
		return GS_FAIL(GS_EINVAL, "type must be 1 to %d bytes",
		    GS_CHANGE_TYPE_MAX);
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
			(s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return GS_FAIL(GS_EINVAL, "type has a character other "
						  "than a-z, 0-9, _");
	return GS_OK;
}

/* Everything the encoder relies on, checked before a byte is written:
 * the decoder reuses these rules through the re-encode, so the device
 * cannot produce what the platform would refuse as malformed. */
static int
check_reason(const struct gs_change *c)
{
	if (c->reason != NULL) {
		struct gs_utf8_scan sc;
		size_t n = strnlen(c->reason, GS_CHANGE_REASON_MAX + 1);

		if (n > GS_CHANGE_REASON_MAX)
			return GS_FAIL(GS_EINVAL,
			    "reason is longer than %d "
			    "bytes",
			    GS_CHANGE_REASON_MAX);
		if (gs_utf8_scan(c->reason, n, &sc) != 0)
			return GS_FAIL(GS_EINVAL, "reason is not valid UTF-8");
	}
	return GS_OK;
}

int
gs_batch_check_label(const char *what, const char *s, size_t max)
{
	return check_plain(what, s, max, 0);
}

/* Everything of c but its fields and reason. */
static int
check_fixed(const struct gs_change *c)
{
	int r;

	if ((r = check_uuid("change_id", c->change_id)) != GS_OK ||
	    (r = check_uuid("uuid", c->uuid)) != GS_OK ||
	    (r = check_type(c->type)) != GS_OK ||
	    (r = check_plain("grid", c->grid, GS_CHANGE_GRID_MAX, 1)) !=
		GS_OK ||
	    (r = check_plain("author", c->author, GS_CHANGE_AUTHOR_MAX, 1)) !=
		GS_OK)
		return r;
	if (c->form_version < 1)
		return GS_FAIL(GS_EINVAL, "form_version must be >= 1");
	if (c->base_rev < 0 || c->created_at < 0 || c->updated_at < 0)
		return GS_FAIL(GS_EINVAL, "base_rev and times must be >= 0");
	if (c->deleted != 0 && c->deleted != 1)
		return GS_FAIL(GS_EINVAL, "deleted must be 0 or 1");
	return GS_OK;
}

static int
check_change(const struct gs_change *c)
{
	int r;

	if ((r = check_fixed(c)) != GS_OK)
		return r;
	if (c->deleted && c->fields != NULL)
		return GS_FAIL(GS_EINVAL, "a deletion carries no fields");
	if (!c->deleted && !json_is_object(c->fields))
		return GS_FAIL(GS_EINVAL, "fields must be an object");
	return check_reason(c);
}

/*
 * The JSON writer for "reason" and "fields".  It writes exactly what
 * jansson's json_dumps writes with FIELDS_FLAGS (tests/unit/sync-batch.c
 * compares the two on random values), about twice as fast, straight into
 * the capped buffer.  The rules, which are the canonical form:
 *   strings   UTF-8 as is; escaped: " \\ and the C0 controls, as \b \f
 *             \n \r \t or \u00XX (upper-case hex); "/" is not escaped
 *   integers  decimal
 *   reals     %.15g; ".0" appended when there is neither "." nor "e";
 *             exponent without "+" and without leading zeros
 *   objects   keys sorted bytewise (strcmp), no spaces
 */
#define MAX_DEPTH 32

/* The bytes of w (eight of a string, in memory order) that need an
 * escape: below 0x20, '"' and '\\'.  0 when none; else the lowest flag
 * is the first such byte (a borrow flags only bytes after a true one). */
static inline uint64_t
escapes8(uint64_t w)
{
	uint64_t q = w ^ (GS_ONES * '"'), b = w ^ (GS_ONES * '\\');

	return ((w - GS_ONES * 0x20) & ~w & GS_HIGHS) |
	    ((q - GS_ONES) & ~q & GS_HIGHS) | ((b - GS_ONES) & ~b & GS_HIGHS);
}

static int
put_string(struct gs_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, run = 0;
	uint64_t w, m;
	int r;

	if ((r = gs_buf_putc(out, '"')) != GS_OK)
		return r;
	for (i = 0; i < n; i++) {
		unsigned char c;
		char esc[7];
		size_t elen = 2;

		/* Eight bytes at a time up to the next one to escape (most
		 * strings have none). */
		while (n - i >= 8) {
			memcpy(&w, s + i, 8);
			if ((m = escapes8(w)) != 0) {
				i += gs_first_flag(m);
				break;
			}
			i += 8;
		}
		if (i == n)
			break;
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		/* Flush the plain run before this character. */
		if ((r = gs_buf_append(out, s + run, i - run)) != GS_OK)
			return r;
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			elen = 6;
			break;
		}
		if ((r = gs_buf_append(out, esc, elen)) != GS_OK)
			return r;
	}
	if ((r = gs_buf_append(out, s + run, n - run)) != GS_OK)
		return r;
	return gs_buf_putc(out, '"');
}

int
gs_batch_put_string(struct gs_buf *out, const char *s, size_t n)
{
	struct gs_utf8_scan u;
	size_t before = out->len;
	int r;

	if (gs_utf8_scan(s, n, &u) != 0)
		return GS_FAIL(GS_EINVAL, "a string that is not UTF-8");
	if ((r = put_string(out, s, n)) != GS_OK)
		out->len = before;
	return r;
}

/* Appends the decimal of v (what printf's %lld writes), without printf:
 * the encoder writes five integers per change, and vsnprintf cost more
 * than the rest of the line together. */
/* v in decimal, written backwards so that it ends right before e (at
 * most 20 characters); returns where it starts. */
/* Two digits at a time: a time in milliseconds has 13. */
static const char DIGIT_PAIRS[] =
    "0001020304050607080910111213141516171819"
    "2021222324252627282930313233343536373839"
    "4041424344454647484950515253545556575859"
    "6061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

static char *
i64_text(char *e, int64_t v)
{
	char *p = e;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

	while (u >= 100) {
		p -= 2;
		memcpy(p, DIGIT_PAIRS + 2 * (u % 100), 2);
		u /= 100;
	}
	if (u >= 10) {
		p -= 2;
		memcpy(p, DIGIT_PAIRS + 2 * u, 2);
	} else {
		*--p = (char)('0' + u);
	}
	if (v < 0)
		*--p = '-';
	return p;
}

static int
put_i64(struct gs_buf *out, int64_t v)
{
	char buf[24], *e = buf + sizeof buf, *p = i64_text(e, v);

	return gs_buf_append(out, p, (size_t)(e - p));
}

#define PUT_LIT(out, s) gs_buf_append((out), (s), sizeof(s) - 1)

static int
put_real(struct gs_buf *out, double d)
{
	char buf[64], *e;
	size_t n;

	n = (size_t)snprintf(buf, sizeof buf - 2, "%.15g", d);
	if (n >= sizeof buf - 2)
		return GS_FAIL(GS_EINTERNAL, "real does not format");
	if ((e = strchr(buf, 'e')) == NULL) {
		/* A real must read back as a real, not an integer. */
		if (strchr(buf, '.') == NULL)
			memcpy(buf + n, ".0", 3);
	} else {
		/* "1e+300" -> "1e300", "1e-05" -> "1e-5", as jansson. */
		char *d0 = e + 1, *src;

		if (*d0 == '-')
			d0++;
		src = d0;
		if (*src == '+')
			src++;
		while (*src == '0' && src[1] != '\0')
			src++;
		memmove(d0, src, strlen(src) + 1);
	}
	return gs_buf_puts(out, buf);
}

/* An object's member as put_value writes it: its key and value. */
struct member {
	const char *k;
	json_t *v;
};

static int
member_cmp(const void *a, const void *b)
{
	return strcmp(((const struct member *)a)->k,
	    ((const struct member *)b)->k);
}

static int
put_value(struct gs_buf *out, json_t *v, int depth)
{
	int r = GS_OK;

	if (depth > MAX_DEPTH)
		return GS_FAIL(
		    GS_EINVAL, "fields nest deeper than %d levels", MAX_DEPTH);
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		struct member stack[32], *ms = stack;
		size_t n = json_object_size(v), i = 0;
		const char *k;
		json_t *x;
		int sorted = 1;

		/* Sorted keys, for one spelling per object.  jansson keeps
		 * an object's keys in the order they were set, which for a
		 * decoded canonical line (the platform's check) or fields
		 * read back from the store is already sorted: then there
		 * is nothing to sort, and no key is looked up again. */
		if (n > sizeof stack / sizeof stack[0] &&
		    (ms = gs_malloc(n * sizeof *ms)) == NULL)
			return GS_FAIL(
			    GS_ENOMEM, "no memory to sort %zu keys", n);
		json_object_foreach(v, k, x) {
			ms[i].k = k;
			ms[i].v = x;
			if (i > 0 && sorted && strcmp(ms[i - 1].k, k) > 0)
				sorted = 0;
			i++;
		}
		if (!sorted)
			qsort(ms, n, sizeof *ms, member_cmp);
		r = gs_buf_putc(out, '{');
		for (i = 0; r == GS_OK && i < n; i++) {
			if (i > 0 && (r = gs_buf_putc(out, ',')) != GS_OK)
				break;
			if ((r = put_string(out, ms[i].k, strlen(ms[i].k))) !=
				GS_OK ||
			    (r = gs_buf_putc(out, ':')) != GS_OK)
				break;
			r = put_value(out, ms[i].v, depth + 1);
		}
		if (r == GS_OK)
			r = gs_buf_putc(out, '}');
		if (ms != stack)
			gs_free(ms);
		return r;
	}
	case JSON_ARRAY: {
		size_t i, n = json_array_size(v);

		r = gs_buf_putc(out, '[');
		for (i = 0; r == GS_OK && i < n; i++) {
			if (i > 0 && (r = gs_buf_putc(out, ',')) != GS_OK)
				break;
			r = put_value(out, json_array_get(v, i), depth + 1);
		}
		return r == GS_OK ? gs_buf_putc(out, ']') : r;
	}
	case JSON_STRING:
		return put_string(
		    out, json_string_value(v), json_string_length(v));
	case JSON_INTEGER:
		return put_i64(out, (int64_t)json_integer_value(v));
	case JSON_REAL:
		return put_real(out, json_real_value(v));
	case JSON_TRUE:
		return gs_buf_puts(out, "true");
	case JSON_FALSE:
		return gs_buf_puts(out, "false");
	case JSON_NULL:
		return gs_buf_puts(out, "null");
	}
	return GS_FAIL(GS_EINTERNAL, "unknown JSON type");
}

int
gs_batch_encode_fields(struct gs_buf *out, json_t *fields)
{
	size_t start = out->len;
	int r;

	if ((r = put_value(out, fields, 0)) != GS_OK)
		gs_buf_truncate(out, start);
	return r;
}

/*
 * The line up to and including "\"fields\":", for a change whose fixed
 * part check_change has passed.  The ten fixed-form values: uuids, a type
 * of [a-z0-9_], integers, and grid/author already checked to need no
 * escaping.  Not a printf (it cost half the encoder), nor 25 appends (each
 * checking the cap and writing a terminator): the size first, one
 * reserve, then the pieces.
 */
static int
put_head(struct gs_buf *out, const struct gs_change *c)
{
/* The fixed keys, in the line's order. */
#define H_ID "{\"change_id\":\""
#define H_UUID "\",\"uuid\":\""
#define H_TYPE "\",\"type\":\""
#define H_FV "\",\"form_version\":"
#define H_GRID ",\"grid\":\""
#define H_BASE "\",\"base_rev\":"
#define H_DEL_T ",\"deleted\":true"
#define H_DEL_F ",\"deleted\":false"
#define H_CREATED ",\"created_at\":"
#define H_UPDATED ",\"updated_at\":"
#define H_AUTHOR ",\"author\":\""
#define H_REASON "\",\"reason\":"
#define H_NULL_FIELDS "null,\"fields\":"
#define LIT_LEN(s) (sizeof(s) - 1)
#define PUT_RAW(o, p, n) (memcpy((o), (p), (n)), (o) += (n))
	char nb[4][24];
	const char *num[4];
	size_t nlen[4], tlen = strlen(c->type), glen = strlen(c->grid),
	    alen = strlen(c->author), size, i;
	int64_t v[4];
	char *o;
	int r;

	v[0] = c->form_version;
	v[1] = c->base_rev;
	v[2] = c->created_at;
	v[3] = c->updated_at;
	for (i = 0; i < 4; i++) {
		num[i] = i64_text(nb[i] + sizeof nb[i], v[i]);
		nlen[i] = (size_t)(nb[i] + sizeof nb[i] - num[i]);
	}
	size = LIT_LEN(H_ID) + GS_UUID_LEN + LIT_LEN(H_UUID) + GS_UUID_LEN +
	    LIT_LEN(H_TYPE) + tlen + LIT_LEN(H_FV) + nlen[0] +
	    LIT_LEN(H_GRID) + glen + LIT_LEN(H_BASE) + nlen[1] +
	    (c->deleted ? LIT_LEN(H_DEL_T) : LIT_LEN(H_DEL_F)) +
	    LIT_LEN(H_CREATED) + nlen[2] + LIT_LEN(H_UPDATED) + nlen[3] +
	    LIT_LEN(H_AUTHOR) + alen + LIT_LEN(H_REASON) +
	    (c->reason == NULL ? LIT_LEN(H_NULL_FIELDS) : 0);
	if ((r = gs_buf_reserve(out, size)) != GS_OK)
		return r;
	o = out->data + out->len;
	PUT_RAW(o, H_ID, LIT_LEN(H_ID));
	PUT_RAW(o, c->change_id, GS_UUID_LEN);
	PUT_RAW(o, H_UUID, LIT_LEN(H_UUID));
	PUT_RAW(o, c->uuid, GS_UUID_LEN);
	PUT_RAW(o, H_TYPE, LIT_LEN(H_TYPE));
	PUT_RAW(o, c->type, tlen);
	PUT_RAW(o, H_FV, LIT_LEN(H_FV));
	PUT_RAW(o, num[0], nlen[0]);
	PUT_RAW(o, H_GRID, LIT_LEN(H_GRID));
	PUT_RAW(o, c->grid, glen);
	PUT_RAW(o, H_BASE, LIT_LEN(H_BASE));
	PUT_RAW(o, num[1], nlen[1]);
	if (c->deleted)
		PUT_RAW(o, H_DEL_T, LIT_LEN(H_DEL_T));
	else
		PUT_RAW(o, H_DEL_F, LIT_LEN(H_DEL_F));
	PUT_RAW(o, H_CREATED, LIT_LEN(H_CREATED));
	PUT_RAW(o, num[2], nlen[2]);
	PUT_RAW(o, H_UPDATED, LIT_LEN(H_UPDATED));
	PUT_RAW(o, num[3], nlen[3]);
	PUT_RAW(o, H_AUTHOR, LIT_LEN(H_AUTHOR));
	PUT_RAW(o, c->author, alen);
	PUT_RAW(o, H_REASON, LIT_LEN(H_REASON));
	/* No reason, the usual case: the line is written up to its fields
	 * in this one reserve. */
	if (c->reason == NULL)
		PUT_RAW(o, H_NULL_FIELDS, LIT_LEN(H_NULL_FIELDS));
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
#undef PUT_RAW
#undef LIT_LEN
#undef H_ID
#undef H_UUID
#undef H_TYPE
#undef H_FV
#undef H_GRID
#undef H_BASE
#undef H_DEL_T
#undef H_DEL_F
#undef H_CREATED
#undef H_UPDATED
#undef H_AUTHOR
#undef H_REASON
#undef H_NULL_FIELDS
	if (c->reason == NULL)
		return GS_OK;
	if ((r = put_string(out, c->reason, strlen(c->reason))) != GS_OK)
		return r;
	return gs_buf_puts(out, ",\"fields\":");
}

/* The line's end, and the decoder's length limit: a longer line is
 * refused here rather than written. */
static int
put_tail(struct gs_buf *out, const struct gs_change *c, size_t start)
{
	int r;

	if ((r = gs_buf_puts(out, "}\n")) != GS_OK)
		return r;
	if (out->len - start - 1 > GS_BATCH_LINE_MAX)
		return GS_FAIL(GS_ETOOBIG,
		    "change %s encodes to %zu bytes, more than %d",
		    c->change_id, out->len - start - 1, GS_BATCH_LINE_MAX);
	return GS_OK;
}

int
gs_batch_encode_change(struct gs_buf *out, const struct gs_change *c)
{
	size_t start = out->len;
	int r;

	if ((r = check_change(c)) != GS_OK)
		return r;
	if ((r = put_head(out, c)) != GS_OK ||
	    (r = c->fields == NULL ? gs_buf_puts(out, "null") :
		put_value(out, c->fields, 0)) != GS_OK ||
	    (r = put_tail(out, c, start)) != GS_OK)
		gs_buf_truncate(out, start);
	return r;
}

int
gs_batch_encode_change_spans(struct gs_buf *out, const struct gs_change *c,
    const struct gs_json_span *m, size_t n)
{
	size_t start = out->len, i, size;
	char *o;
	int r;

	if (c->deleted || c->fields != NULL)
		return GS_FAIL(GS_EINVAL, "change %s: fields given twice, or "
		    "given for a deletion", c->change_id);
	if ((r = check_fixed(c)) != GS_OK || (r = check_reason(c)) != GS_OK)
		return r;
	/* Keys whose first 8 bytes already order them need no call. */
	for (i = 1; i < n; i++)
		if (m[i - 1].k8 >= m[i].k8 &&
		    gs_json_span_cmp(&m[i - 1], &m[i]) >= 0)
			return GS_FAIL(GS_EINTERNAL, "change %s: members out "
			    "of order", c->change_id);
	/* The object's size first (and the line's "}\n"), then its bytes
	 * straight into the buffer: about 60 appends a record otherwise. */
	for (i = 0, size = 4; i < n; i++)
		size += m[i].klen + m[i].vlen + 4;
	if ((r = put_head(out, c)) != GS_OK ||
	    (r = gs_buf_reserve(out, size)) != GS_OK)
		goto out;
	o = out->data + out->len;
	*o++ = '{';
	for (i = 0; i < n; i++) {
		if (i > 0)
			*o++ = ',';
		*o++ = '"';
		if (m[i].val == m[i].key + m[i].klen + 2) {
			/* Read from a text (gs_json_plain_object): its
			 * key, '":' and value are already one run. */
			memcpy(o, m[i].key, m[i].klen + 2 + m[i].vlen);
			o += m[i].klen + 2 + m[i].vlen;
			continue;
		}
		memcpy(o, m[i].key, m[i].klen);
		o += m[i].klen;
		*o++ = '"';
		*o++ = ':';
		memcpy(o, m[i].val, m[i].vlen);
		o += m[i].vlen;
	}
	memcpy(o, "}}\n", 3);
	o += 3;
	out->len = (size_t)(o - out->data);
	out->data[out->len] = '\0';
	if (out->len - start - 1 > GS_BATCH_LINE_MAX)
		r = GS_FAIL(GS_ETOOBIG,
		    "change %s encodes to %zu bytes, more than %d",
		    c->change_id, out->len - start - 1, GS_BATCH_LINE_MAX);
out:
	if (r != GS_OK)
		gs_buf_truncate(out, start);
	return r;
}

/* ------------------------------------------------------------- decoding */

/*
 * Typed getters for one key of a decoded line.  Each names the line and
 * the key in its refusal, because the person reading it is an admin
 * looking at a quarantined batch, not a debugger.
 */
static int
get_hex16(unsigned char out[16], json_t *o, const char *key, size_t line)
{
	json_t *v = json_object_get(o, key);
	const char *s;
	char again[33];

	if (!json_is_string(v))
		return GS_FAIL(
		    GS_EPARSE, "line %zu: \"%s\" must be a string", line, key);
	s = json_string_value(v);
	if (json_string_length(v) != 32 || gs_hex_decode(out, 16, s) != GS_OK)
		return GS_FAIL(GS_EPARSE,
		    "line %zu: \"%s\" must be 32 hex "
		    "digits",
		    line, key);
	gs_hex_encode(again, out, 16);
	if (memcmp(again, s, 32) != 0)
		return GS_FAIL(GS_EPARSE,
		    "line %zu: \"%s\" must be lower-case "
		    "hex",
		    line, key);
	return GS_OK;
}

static int
get_int(int64_t *out, json_t *o, const char *key, int64_t min, int64_t max,
    size_t line)
{
	json_t *v = json_object_get(o, key);
	json_int_t i;

	if (!json_is_integer(v))
		return GS_FAIL(GS_EPARSE, "line %zu: \"%s\" must be an integer",
		    line, key);
	i = json_integer_value(v);
	if (i < min || i > max)
		return GS_FAIL(
		    GS_EPARSE, "line %zu: \"%s\" out of range", line, key);
	*out = i;
	return GS_OK;
}

static int
get_str(char *out, size_t outsz, json_t *o, const char *key, size_t line)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return GS_FAIL(
		    GS_EPARSE, "line %zu: \"%s\" must be a string", line, key);
	if (json_string_length(v) >= outsz)
		return GS_FAIL(GS_EPARSE,
		    "line %zu: \"%s\" is longer than %zu "
		    "bytes",
		    line, key, outsz - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return GS_OK;
}

/* A key name for a message: printable ASCII only, at most 40 bytes, so
 * that a hostile key cannot forge log lines. */
static void
safe_name(char out[41], const char *k)
{
	size_t i;

	for (i = 0; i < 40 && k[i] != '\0'; i++)
		out[i] = k[i] >= ' ' && k[i] <= '~' ? k[i] : '?';
	out[i] = '\0';
}

/* Exactly the expected keys: names the first missing or unknown one. */
static int
check_keys(json_t *o, const char *const *want, size_t n, size_t line)
{
	const char *k;
	json_t *v;
	size_t i;

	for (i = 0; i < n; i++)
		if (json_object_get(o, want[i]) == NULL)
			return GS_FAIL(GS_EPARSE,
			    "line %zu: missing key \"%s\"", line, want[i]);
	if (json_object_size(o) == n)
		return GS_OK;
	json_object_foreach(o, k, v)
	{
		for (i = 0; i < n; i++)
			if (strcmp(k, want[i]) == 0)
				break;
		if (i == n) {
			char name[41];

			safe_name(name, k);
			return GS_FAIL(GS_EPARSE,
			    "line %zu: unknown key "
			    "\"%s\"",
			    line, name);
		}
	}
	return GS_FAIL(GS_EPARSE, "line %zu: unexpected keys", line);
}

/* One line of JSON text (without its newline) into an object.  n is at
 * most GS_BATCH_LINE_MAX, so jansson's work per line is bounded. */
static int
load_line(json_t **out, const char *p, size_t n, size_t line)
{
	json_error_t err;
	json_t *o;

	if (n == 0)
		return GS_FAIL(GS_EPARSE, "line %zu: empty line", line);
	/* Duplicate keys would make "the" value of a key ambiguous. */
	if ((o = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err)) == NULL) {
		/* jansson appends "near '<input>'": that is record content,
		 * possibly personal data, and messages end up in logs.  Keep
		 * only the kind of error and where it is. */
		char *near = strstr(err.text, " near ");

		if (near != NULL)
			*near = '\0';
		return GS_FAIL(GS_EPARSE, "line %zu: column %d: %s", line,
		    err.column, err.text);
	}
	if (!json_is_object(o)) {
		json_decref(o);
		return GS_FAIL(GS_EPARSE, "line %zu: not a JSON object", line);
	}
	*out = o;
	return GS_OK;
}

static const char *const header_keys[] = {
    "v", "deployment", "device", "batch", "seq", "count"};

static int
decode_header(
    struct gs_batch_header *h, const char *p, size_t n, struct gs_buf *scratch)
{
	json_t *o = NULL;
	int64_t v, seq, count;
	int r;

	if ((r = load_line(&o, p, n, 1)) != GS_OK)
		return r;
	if ((r = check_keys(o, header_keys, 6, 1)) != GS_OK)
		goto out;
	if ((r = get_int(&v, o, "v", INT32_MIN, INT32_MAX, 1)) != GS_OK)
		goto out;
	if (v != GS_BATCH_VERSION) {
		r = GS_FAIL(GS_EUNSUPPORTED,
		    "line 1: batch version %" PRId64 " is not supported", v);
		goto out;
	}
	if ((r = get_hex16(h->deployment, o, "deployment", 1)) != GS_OK ||
	    (r = get_hex16(h->device, o, "device", 1)) != GS_OK ||
	    (r = get_hex16(h->batch, o, "batch", 1)) != GS_OK ||
	    (r = get_int(&seq, o, "seq", 1, INT64_MAX, 1)) != GS_OK ||
	    (r = get_int(&count, o, "count", 0, UINT32_MAX, 1)) != GS_OK)
		goto out;
	h->v = (int)v;
	h->seq = (uint64_t)seq;
	h->count = (uint32_t)count;
	/* One spelling only, as for changes (see decode_change). */
	gs_buf_reset(scratch);
	if ((r = gs_batch_encode_header(scratch, h)) != GS_OK)
		goto out;
	if (scratch->len != n + 1 || memcmp(scratch->data, p, n) != 0)
		r = GS_FAIL(GS_EPARSE, "line 1: header is not in canonical "
				       "form");
out:
	json_decref(o);
	return r;
}

/*
 * The fast path of decode_change.  A line our encoder wrote has its keys
 * in one order and its fixed values in one spelling, so it can be read
 * position by position, with only "fields" going through a JSON parser
 * (sync/json.c: the same acceptance as jansson, several times cheaper
 * than json_loadb, which was the largest cost of ingest).  The line is
 * then re-encoded and compared byte for byte, exactly as on the slow
 * path, so this accepts only lines the slow path accepts, decoded to the
 * same change.  Anything else (a reason, an escape in a fixed string, a
 * negative number, a wrong key, ...) returns 0, and the caller runs the
 * slow path, which finds the line's fault and names it.  Returns 1 with
 * c filled and *fields_off the offset of the "fields" value, or 0 with c
 * released.
 */
struct cursor {
	const char *p, *end;
};

/* Inline, eight bytes a compare: n is a constant (LIT), so this unrolls
 * to a few loads and compares in place of a call of memcmp (eight a
 * line). */
static inline __attribute__((always_inline)) int
lit(struct cursor *k, const char *s, size_t n)
{
	uint64_t a, b;
	size_t i;

	if ((size_t)(k->end - k->p) < n)
		return 0;
	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&a, k->p + i, 8);
		memcpy(&b, s + i, 8);
		if (a != b)
			return 0;
	}
	for (; i < n; i++)
		if (k->p[i] != s[i])
			return 0;
	k->p += n;
	return 1;
}

#define LIT(k, s) lit((k), (s), sizeof(s) - 1)

/* A string value without escapes, up to its closing quote.  Not one
 * with a raw NUL (no JSON either): the C string it is copied to would
 * end there, and the checks and the re-encoding see only that part
 * ("per\0on" read as "per", a second spelling of the change).  One
 * pass finds the first quote, backslash or NUL (the ids, grid and author
 * are a few dozen bytes: three calls of memchr cost more). */
static int
plain_str(struct cursor *k, char *out, size_t outsz)
{
	const unsigned char *p = (const unsigned char *)k->p;
	const unsigned char *end = (const unsigned char *)k->end;
	size_t n;

#ifdef __SSE2__
	while (end - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)p);
		int f = _mm_movemask_epi8(_mm_or_si128(
		    _mm_cmpeq_epi8(v, _mm_setzero_si128()), _mm_or_si128(
		    _mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
		    _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));

		if (f != 0) {
			p += __builtin_ctz((unsigned)f);
			goto found;
		}
		p += 16;
	}
#endif
	while (p < end && *p != '"' && *p != '\\' && *p != '\0')
		p++;
#ifdef __SSE2__
found:
#endif
	if (p == end || *p != '"')
		return 0;
	n = (size_t)(p - (const unsigned char *)k->p);
	if (n >= outsz)
		return 0;
	memcpy(out, k->p, n);
	out[n] = '\0';
	k->p = (const char *)p + 1;
	return 1;
}

/* Digits only, at most max, without a leading zero (the encoder writes
 * none: such a line goes to the slow path, which names the fault). */
static int
digits(struct cursor *k, int64_t max, int64_t *v)
{
	const char *s = k->p, *p = k->p, *end = k->end;
	uint64_t x = 0;

	if (end - p >= 2 && p[0] == '0' && p[1] >= '0' && p[1] <= '9')
		return 0;
	/* At most 19 digits, which an unsigned 64 bits holds (20 without
	 * a leading zero are more than INT64_MAX): then one compare with
	 * max, not a division a digit. */
	while (p < end && *p >= '0' && *p <= '9') {
		if (p - s == 19)
			return 0;
		x = x * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == s || x > (uint64_t)max)
		return 0;
	k->p = p;
	*v = (int64_t)x;
	return 1;
}

/* The members of the unbuilt fields objects (gs_batch_decode_spans). */
struct members {
	struct gs_json_span *v;
	size_t n, cap;
	size_t guess; /* the first capacity to take */
};

/* Members one line may have and stay unbuilt: a form's fields at most
 * (schema.h); a line with more is simply built. */
#define SPANS_MAX GS_FORM_MAX_FIELDS

/*
 * The fields text f[0..n) of a line as members appended to ms, when it
 * is a plain object with its keys in the encoder's (increasing) order
 * (gs_json_plain_sorted): then the encoder writes the object it parses
 * to as these very bytes (json.h), as when gs_json_parse_plain says
 * *plain.  1 with *at and *nm set; 0 (nothing kept) otherwise, or
 * without the memory to keep them.
 */
static int
plain_fields(struct members *ms, const char *f, size_t n, size_t *at,
    size_t *nm)
{
	struct gs_json_span *m;
	size_t cap;

	if (ms->cap - ms->n < SPANS_MAX) {
		/* The first guess from the text's size (decode): a member
		 * takes a few dozen bytes of it. */
		cap = ms->cap != 0 ? 2 * ms->cap : ms->guess > SPANS_MAX ?
		    ms->guess : 16 * SPANS_MAX;
		if ((m = gs_realloc(ms->v, cap * sizeof(*m))) == NULL)
			return 0;
		ms->v = m;
		ms->cap = cap;
	}
	m = ms->v + ms->n;
	if (!gs_json_plain_sorted(f, n, m, SPANS_MAX, nm))
		return 0;
	*at = ms->n;
	ms->n += *nm;
	return 1;
}

static int
fast_change(struct gs_change *c, const char *p, size_t n,
    struct gs_batch_line *l, struct members *ms, struct gs_buf *scratch)
{
	struct cursor k = {p, p + n};
	char why[96];
	int64_t fv = 0;
	int plain = 0;
	size_t *fields_off = &l->fields_off;

	gs_change_init(c);
	if (!LIT(&k, "{\"change_id\":\"") ||
	    !plain_str(&k, c->change_id, sizeof c->change_id) ||
	    !LIT(&k, ",\"uuid\":\"") ||
	    !plain_str(&k, c->uuid, sizeof c->uuid) ||
	    !LIT(&k, ",\"type\":\"") ||
	    !plain_str(&k, c->type, sizeof c->type) ||
	    !LIT(&k, ",\"form_version\":") || !digits(&k, INT32_MAX, &fv) ||
	    !LIT(&k, ",\"grid\":\"") ||
	    !plain_str(&k, c->grid, sizeof c->grid) ||
	    !LIT(&k, ",\"base_rev\":") ||
	    !digits(&k, INT64_MAX, &c->base_rev) ||
	    !LIT(&k, ",\"deleted\":"))
		goto slow;
	c->form_version = (int)fv;
	if (LIT(&k, "true"))
		c->deleted = 1;
	else if (!LIT(&k, "false"))
		goto slow;
	if (!LIT(&k, ",\"created_at\":") ||
	    !digits(&k, INT64_MAX, &c->created_at) ||
	    !LIT(&k, ",\"updated_at\":") ||
	    !digits(&k, INT64_MAX, &c->updated_at) ||
	    !LIT(&k, ",\"author\":\"") ||
	    !plain_str(&k, c->author, sizeof c->author) ||
	    !LIT(&k, ",\"reason\":null,\"fields\":"))
		goto slow;
	*fields_off = (size_t)(k.p - p);
	if (c->deleted) {
		if (!LIT(&k, "null}") || k.p != k.end)
			goto slow;
	} else if (ms != NULL && k.end - k.p >= 2 && k.end[-1] == '}' &&
	    plain_fields(ms, k.p, (size_t)(k.end - k.p - 1), &l->m, &l->nm)) {
		/* Canonical as below (plain), the fields unbuilt: what
		 * check_change checks but the fields object. */
		if (check_fixed(c) == GS_OK && check_reason(c) == GS_OK) {
			l->spans = 1;
			return 1;
		}
		ms->n = l->m;
		goto slow;
	} else {
		if (k.end - k.p < 2 || k.end[-1] != '}' ||
		    gs_json_parse_plain(k.p, (size_t)(k.end - k.p - 1),
			&c->fields, &plain, why, sizeof why) != GS_OK)
			goto slow;
		if (!json_is_object(c->fields))
			goto slow;
	}
	/*
	 * Canonical: the fixed part was read literally (its keys, their
	 * order, digits without leading zeros, strings without escapes,
	 * which the encoder writes as they are once check_change accepts
	 * them), and the fields were spelled as the encoder spells them
	 * (gs_json_parse_plain).  Then encoding the change again would give
	 * these very bytes, and is skipped; otherwise it decides.
	 */
	if ((c->deleted || plain) && check_change(c) == GS_OK)
		return 1;
	gs_errmsg_clear();
	gs_buf_reset(scratch);
	if (gs_batch_encode_change(scratch, c) != GS_OK ||
	    scratch->len != n + 1 || memcmp(scratch->data, p, n) != 0)
		goto slow;
	return 1;
slow:
	gs_change_release(c);
	gs_errmsg_clear();
	return 0;
}

static int
decode_change(struct gs_change *c, const char *p, size_t n, size_t line,
    struct gs_buf *scratch, struct gs_batch_line *l, struct members *ms)
{
	json_t *o = NULL, *v;
	int64_t i64;
	int r;

	memset(l, 0, sizeof(*l));
	if (fast_change(c, p, n, l, ms, scratch))
		return GS_OK;
	/* The slow path: it decodes what the fast one refused, or names
	 * what is wrong with the line.  The "fields" value is not located
	 * here (0: unknown). */
	memset(l, 0, sizeof(*l));
	gs_change_init(c);
	if ((r = load_line(&o, p, n, line)) != GS_OK)
		return r;
	if ((r = check_keys(o, keys, NKEYS, line)) != GS_OK)
		goto out;
	if ((r = get_str(c->change_id, sizeof c->change_id, o, "change_id",
		 line)) != GS_OK ||
	    (r = get_str(c->uuid, sizeof c->uuid, o, "uuid", line)) != GS_OK ||
	    (r = get_str(c->type, sizeof c->type, o, "type", line)) != GS_OK ||
	    (r = get_str(c->grid, sizeof c->grid, o, "grid", line)) != GS_OK ||
	    (r = get_str(c->author, sizeof c->author, o, "author", line)) !=
		GS_OK)
		goto out;
	if ((r = get_int(&i64, o, "form_version", 1, INT32_MAX, line)) != GS_OK)
		goto out;
	c->form_version = (int)i64;
	if ((r = get_int(&c->base_rev, o, "base_rev", 0, INT64_MAX, line)) !=
		GS_OK ||
	    (r = get_int(&c->created_at, o, "created_at", 0, INT64_MAX,
		 line)) != GS_OK ||
	    (r = get_int(
		 &c->updated_at, o, "updated_at", 0, INT64_MAX, line)) != GS_OK)
		goto out;
	v = json_object_get(o, "deleted");
	if (!json_is_boolean(v)) {
		r = GS_FAIL(GS_EPARSE,
		    "line %zu: \"deleted\" must be true or "
		    "false",
		    line);
		goto out;
	}
	c->deleted = json_is_true(v);
	v = json_object_get(o, "reason");
	if (json_is_string(v)) {
		if (json_string_length(v) > GS_CHANGE_REASON_MAX) {
			r = GS_FAIL(GS_EPARSE,
			    "line %zu: \"reason\" is longer "
			    "than %d bytes",
			    line, GS_CHANGE_REASON_MAX);
			goto out;
		}
		if ((c->reason = gs_strndup(json_string_value(v),
			 json_string_length(v))) == NULL) {
			r = GS_FAIL(GS_ENOMEM, "no memory for a reason");
			goto out;
		}
	} else if (!json_is_null(v)) {
		r = GS_FAIL(GS_EPARSE,
		    "line %zu: \"reason\" must be a string "
		    "or null",
		    line);
		goto out;
	}
	v = json_object_get(o, "fields");
	if (c->deleted && !json_is_null(v)) {
		r = GS_FAIL(GS_EPARSE,
		    "line %zu: a deletion must have "
		    "\"fields\":null",
		    line);
		goto out;
	}
	if (!c->deleted && !json_is_object(v)) {
		r = GS_FAIL(
		    GS_EPARSE, "line %zu: \"fields\" must be an object", line);
		goto out;
	}
	/* The fields object outlives the line's root: take a reference. */
	if (json_is_object(v))
		c->fields = json_incref(v);
	/* The ids and strings are checked by the encoder's own rules; its
	 * GS_EINVAL detail becomes this line's GS_EPARSE. */
	gs_buf_reset(scratch);
	if ((r = gs_batch_encode_change(scratch, c)) != GS_OK) {
		if (r == GS_EINVAL || r == GS_ETOOBIG) {
			char why[256];

			/* Copy first: GS_FAIL rewrites the message. */
			gs_strlcpy(why, gs_errmsg(r), sizeof why);
			r = GS_FAIL(GS_EPARSE, "line %zu: %s", line, why);
		}
		goto out;
	}
	/* The last and strongest check: the line must be exactly what our
	 * encoder writes for what was decoded.  This also catches what no
	 * key check sees: spaces, key order, escapes, number spellings
	 * ("1e0", "1.50"), and lossy reals. */
	if (scratch->len != n + 1 || memcmp(scratch->data, p, n) != 0)
		r = GS_FAIL(GS_EPARSE,
		    "line %zu: change is not in canonical "
		    "form (key order, spacing, escapes or number spelling)",
		    line);
out:
	json_decref(o);
	if (r != GS_OK)
		gs_change_release(c);
	return r;
}

static int
decode(struct gs_batch *b, const char *text, size_t len, uint32_t max_count,
    int spans)
{
	struct gs_batch t;
	/* About one member per 32 bytes of text (a person: 14 in 450):
	 * one allocation for a batch of them, not a copy per doubling. */
	struct members ms = {NULL, 0, 0, len / 32 + SPANS_MAX};
	struct gs_buf scratch;
	const char *p = text, *end = text + len, *nl;
	size_t line = 1, cap = 0;
	int r = GS_EINTERNAL;

	/* Decode into a temporary and hand it over only when the whole
	 * batch is good: a batch is applied whole or not at all. */
	memset(&t, 0, sizeof t);
	/* Re-encoding needs room for one line: the longest accepted. */
	gs_buf_init(&scratch, GS_BATCH_LINE_MAX + 1);
	while (p < end) {
		size_t n;

		nl = memchr(p, '\n', (size_t)(end - p));
		n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		if (n > GS_BATCH_LINE_MAX) {
			r = GS_FAIL(GS_EPARSE, "line %zu: longer than %d bytes",
			    line, GS_BATCH_LINE_MAX);
			goto out;
		}
		/* A missing final newline is how a truncated plaintext
		 * looks, so it is refused rather than forgiven. */
		if (nl == NULL) {
			r = GS_FAIL(
			    GS_EPARSE, "line %zu: no final newline", line);
			goto out;
		}
		if (line == 1) {
			if ((r = decode_header(&t.hdr, p, n, &scratch)) !=
			    GS_OK)
				goto out;
			if (max_count != 0 && t.hdr.count > max_count) {
				r = GS_FAIL(GS_ETOOBIG,
				    "line 1: count %" PRIu32
				    " exceeds the limit of %" PRIu32,
				    t.hdr.count, max_count);
				goto out;
			}
		} else {
			if (t.n == t.hdr.count) {
				r = GS_FAIL(GS_EPARSE,
				    "line %zu: more changes "
				    "than the header's count %" PRIu32,
				    line, t.hdr.count);
				goto out;
			}
			if (t.n == cap) {
				/* Grow by doubling; the header's count is not
				 * trusted for a preallocation, unless the
				 * caller's max_count bounds it (checked above):
				 * then it is taken at once, not copied as it
				 * doubles. */
				size_t ncap = cap ? cap * 2 : max_count != 0 ?
				    t.hdr.count : 64;
				struct gs_change *nc;
				struct gs_batch_line *nl2;

				if (ncap > t.hdr.count)
					ncap = t.hdr.count;
				nc = gs_realloc(t.changes, ncap * sizeof *nc);
				if (nc != NULL)
					t.changes = nc;
				nl2 = nc == NULL ? NULL :
				    gs_realloc(t.lines, ncap * sizeof *nl2);
				if (nl2 == NULL) {
					r = GS_FAIL(GS_ENOMEM,
					    "no memory for "
					    "%zu changes",
					    ncap);
					goto out;
				}
				t.lines = nl2;
				cap = ncap;
			}
			if ((r = decode_change(&t.changes[t.n], p, n, line,
				 &scratch, &t.lines[t.n], spans ? &ms : NULL))
			    != GS_OK)
				goto out;
			t.lines[t.n].text = p;
			t.lines[t.n].len = n;
			t.n++;
		}
		p = nl + 1;
		line++;
	}
	if (line == 1) {
		r = GS_FAIL(GS_EPARSE, "line 1: empty batch (no header)");
		goto out;
	}
	if (t.n != t.hdr.count) {
		r = GS_FAIL(GS_EPARSE,
		    "line %zu: header count %" PRIu32 " but %zu changes", line,
		    t.hdr.count, t.n);
		goto out;
	}
	t.members = ms.v;
	t.nmembers = ms.n;
	ms.v = NULL;
	*b = t;
	memset(&t, 0, sizeof t);
	r = GS_OK;
out:
	gs_batch_release(&t);
	gs_free(ms.v);
	gs_buf_release(&scratch);
	return r;
}

int
gs_batch_decode(
    struct gs_batch *b, const char *text, size_t len, uint32_t max_count)
{
	return decode(b, text, len, max_count, 0);
}

int
gs_batch_decode_spans(
    struct gs_batch *b, const char *text, size_t len, uint32_t max_count)
{
	return decode(b, text, len, max_count, 1);
}

int
gs_batch_fields(struct gs_batch *b, size_t i)
{
	struct gs_batch_line *l = &b->lines[i];
	char why[96];
	int r;

	if (!l->spans)
		return GS_OK;
	/* The decoder found this text a plain object: it parses. */
	r = gs_json_parse(l->text + l->fields_off, l->len - l->fields_off - 1,
	    &b->changes[i].fields, why, sizeof(why));
	if (r == GS_OK && !json_is_object(b->changes[i].fields)) {
		json_decref(b->changes[i].fields);
		b->changes[i].fields = NULL;
		r = GS_EINTERNAL;
	}
	if (r != GS_OK)
		return GS_FAIL(r == GS_ENOMEM ? r : GS_EINTERNAL,
		    "line %zu: fields: %s", i + 2, why);
	l->spans = 0;
	return GS_OK;
}

void
gs_batch_release(struct gs_batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++)
		gs_change_release(&b->changes[i]);
	gs_free(b->changes);
	b->changes = NULL;
	gs_free(b->lines);
	b->lines = NULL;
	b->n = 0;
	gs_free(b->members);
	b->members = NULL;
	b->nmembers = 0;
}

/*
 * The plaintext header is inside the AEAD, the envelope header is its
 * additional data: both are authenticated, but only their agreement shows
 * the device meant this plaintext for this (device, batch, seq).  A
 * disagreement is a buggy or malicious device, reported like any other
 * malformed line 1.
 */
int
gs_batch_check_envelope(const struct gs_batch_header *h,
    const unsigned char deployment[16], const unsigned char device[16],
    const unsigned char batch[16], uint64_t seq, uint32_t count)
{
	if (memcmp(h->deployment, deployment, 16) != 0)
		return GS_FAIL(GS_EPARSE, "line 1: deployment differs from the "
					  "envelope's");
	if (memcmp(h->device, device, 16) != 0)
		return GS_FAIL(GS_EPARSE, "line 1: device differs from the "
					  "envelope's");
	if (memcmp(h->batch, batch, 16) != 0)
		return GS_FAIL(GS_EPARSE, "line 1: batch id differs from the "
					  "envelope's");
	if (h->seq != seq)
		return GS_FAIL(GS_EPARSE,
		    "line 1: seq %" PRIu64 " differs from "
		    "the envelope's %" PRIu64,
		    h->seq, seq);
	if (h->count != count)
		return GS_FAIL(GS_EPARSE,
		    "line 1: count %" PRIu32 " differs "
		    "from the envelope's %" PRIu32,
		    h->count, count);
	return GS_OK;
}
