/*
 * json.c - a fast, strict JSON reader producing jansson values (json.h
 * says why and what it accepts).
 *
 * A recursive-descent parser over a byte range.  Strings are scanned in
 * one pass that checks UTF-8 as it goes; a string without escapes becomes
 * a jansson string straight from the input bytes (json_stringn_nocheck:
 * we have just checked them).  Every error names the column where it was
 * found.
 */
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "core/error.h"
#include "bytes-priv.h"
#include "core/mem.h"
#include "json.h"
#include "core/banned.h"

struct parser {
	const unsigned char *start, *p, *end;
	int depth;
	int nomem;
	int spelled; /* 0 once anything is not the encoder's spelling */
	char *why;
	size_t whylen;
};

static json_t *value(struct parser *ps);

/* Records the first error; returns NULL for the caller to pass up. */
static json_t *
bad(struct parser *ps, const char *what)
{
	if (ps->why[0] == '\0')
		snprintf(ps->why, ps->whylen, "column %zu: %s",
		    (size_t)(ps->p - ps->start) + 1, what);
	return NULL;
}

static json_t *
oom(struct parser *ps)
{
	ps->nomem = 1;
	return bad(ps, "out of memory");
}

static void
skip_ws(struct parser *ps)
{
	const unsigned char *p = ps->p;

	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' ||
	    *ps->p == '\t' || *ps->p == '\r'))
		ps->p++;
	if (ps->p != p)
		ps->spelled = 0;
}

/*
 * Length of the valid UTF-8 sequence starting at p (a byte >= 0x80), or 0
 * when it is not one: overlong forms, surrogates and code points past
 * U+10FFFF are refused, as RFC 3629 and jansson do.
 */
static size_t
utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xbf;

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
	/* The second byte's range is narrower for a few lead bytes. */
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
hex4(const unsigned char *p, const unsigned char *end, uint32_t *out)
{
	uint32_t v = 0;
	int i, d;

	if (end - p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned char c = p[i];

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -1;
		v = v << 4 | (uint32_t)d;
	}
	*out = v;
	return 0;
}

static size_t
put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decodes the escapes of a string body [b, e) that has already been
 * checked for raw bytes, into a new buffer (gs_free) of *n bytes.  The
 * output is never longer than the input: every escape is at least as long
 * as what it stands for.
 */
static char *
unescape(struct parser *ps, const unsigned char *b, const unsigned char *e,
    size_t *n)
{
	char *out = gs_malloc((size_t)(e - b) + 1), *o = out;
	const unsigned char *saved = ps->p;
	uint32_t cp, lo;

	if (out == NULL)
		return (char *)oom(ps);
	/* ps->p follows the escapes only so that an error names the
	 * column; it is put back after the string on success. */
	while (b < e) {
		if (*b != '\\') {
			*o++ = (char)*b++;
			continue;
		}
		ps->p = b;
		b++;
		switch (*b++) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (hex4(b, e, &cp) != 0)
				goto invalid;
			b += 4;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				goto invalid;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				/* A high surrogate needs its low half. */
				if (e - b < 6 || b[0] != '\\' || b[1] != 'u' ||
				    hex4(b + 2, e, &lo) != 0 || lo < 0xdc00 ||
				    lo > 0xdfff)
					goto invalid;
				b += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) +
				    (lo - 0xdc00);
			}
			if (cp == 0) {
				gs_free(out);
				return (char *)bad(ps, "\\u0000 is not allowed");
			}
			o += put_utf8(o, cp);
			break;
		default:
			goto invalid;
		}
	}
	*n = (size_t)(o - out);
	*o = '\0';
	ps->p = saved;
	return out;
invalid:
	gs_free(out);
	return (char *)bad(ps, "invalid escape in a string");
}

/*
 * The bytes a string body takes as they are, without a look at the next
 * one: printable ASCII and DEL, but not '"' or '\\' (json.h: raw
 * controls are refused, bytes >= 0x80 start a UTF-8 sequence).
 */
static const unsigned char plain_byte[256] = {
	/* 0x00-0x1f: controls */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 0x20-0x7f: all but '"' (0x22) and '\\' (0x5c) */
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	/* 0x80-0xff: zero */
};

/* The high bit of each byte of w that is zero, and maybe of bytes
 * above (in memory order) a zero one: the folklore's "has zero", whose
 * lowest flag is always a true one. */
#define ZEROS(w) (((w) - GS_ONES) & ~(w) & GS_HIGHS)

/*
 * The bytes of w (eight of the input, loaded in memory order) that are
 * not plain_byte[] ones: below 0x20, from 0x80, '"' or '\\'.  0 when
 * all are plain; else the lowest flagged byte is the first such byte (a
 * borrow flags only bytes after a flagged one), so plain_run() may skip
 * to it.
 */
static uint64_t
special8(uint64_t w)
{
	uint64_t q = w ^ (GS_ONES * '"'), b = w ^ (GS_ONES * '\\');

	return ((((w - GS_ONES * 0x20) & ~w) | w) & GS_HIGHS) | ZEROS(q) |
	    ZEROS(b);
}

/* Past the plain_byte[] run at p: eight bytes at a time while there are
 * eight, then the rest one by one. */
static const unsigned char *
plain_run(const unsigned char *p, const unsigned char *end)
{
	uint64_t w, m;

	while (end - p >= 8) {
		memcpy(&w, p, 8);
		if ((m = special8(w)) != 0)
			return p + gs_first_flag(m);
		p += 8;
	}
	while (p < end && plain_byte[*p])
		p++;
	return p;
}

/*
 * Scans a string starting at the opening quote.  On success b and e frame
 * the raw body and *esc says whether it holds escapes; ps->p is past the
 * closing quote.
 *
 * Two fast paths take bytes the general code below would take the same
 * way, and leave it everything else: runs of plain bytes (plain_run), and
 * three-byte UTF-8 sequences whose lead byte needs no range check on the
 * second byte (E1-EC, EE, EF: every Chinese character).  So an error is still found at the same byte with the same
 * message; tests/unit/sync-json.c checks this against the plain scan.
 */
static int
scan_string(struct parser *ps, const unsigned char **b,
    const unsigned char **e, int *esc)
{
	const unsigned char *p = ps->p + 1, *end = ps->end;
	size_t n;

	*esc = 0;
	*b = p;
	while (p < end) {
		unsigned char c = *p;

		if (plain_byte[c]) {
			p = plain_run(p, end);
			continue;
		}
		if (c == '"') {
			*e = p;
			ps->p = p + 1;
			return 0;
		}
		if (c == '\\') {
			/* Checked when decoding; skip the escaped byte so an
			 * escaped quote does not end the string. */
			*esc = 1;
			p += (end - p >= 2) ? 2 : 1;
			continue;
		}
		if (c < 0x20) {
			ps->p = p;
			bad(ps, "control character in a string");
			return -1;
		}
		if (end - p >= 3 && gs_plain3(p)) {
			/* Chinese text comes in runs. */
			do
				p += 3;
			while (end - p >= 3 && gs_plain3(p));
			continue;
		}
		if ((n = utf8_len(p, end)) == 0) {
			ps->p = p;
			bad(ps, "invalid UTF-8");
			return -1;
		}
		p += n;
	}
	ps->p = end;
	bad(ps, "unterminated string");
	return -1;
}

static json_t *
string_value(struct parser *ps)
{
	const unsigned char *b, *e;
	char *s;
	size_t n;
	json_t *v;
	int esc;

	if (scan_string(ps, &b, &e, &esc) != 0)
		return NULL;
	if (!esc) {
		v = json_stringn_nocheck((const char *)b, (size_t)(e - b));
		return v != NULL ? v : oom(ps);
	}
	ps->spelled = 0;
	if ((s = unescape(ps, b, e, &n)) == NULL)
		return NULL;
	v = json_stringn_nocheck(s, n);
	gs_free(s);
	return v != NULL ? v : oom(ps);
}

static json_t *
number(struct parser *ps)
{
	const unsigned char *p = ps->p, *b = p, *end = ps->end;
	char small[64], *copy = small;
	int real = 0;
	size_t n;
	json_t *v;

	if (p < end && *p == '-')
		p++;
	if (p >= end || *p < '0' || *p > '9')
		return bad(ps, "invalid number");
	if (*p == '0') {
		p++;
		if (p < end && *p >= '0' && *p <= '9')
			return bad(ps, "invalid number (leading zero)");
	} else {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && *p == '.') {
		real = 1;
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return bad(ps, "invalid number");
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		real = 1;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return bad(ps, "invalid number");
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	n = (size_t)(p - b);
	if (n >= sizeof(small) && (copy = gs_malloc(n + 1)) == NULL)
		return oom(ps);
	memcpy(copy, b, n);
	copy[n] = '\0';
	errno = 0;
	/* The encoder writes an integer as %lld: "-0" comes back as "0". */
	if (real || (n == 2 && copy[0] == '-'  && copy[1] == '0'))
		ps->spelled = 0;
	if (!real) {
		long long i = strtoll(copy, NULL, 10);

		if (errno == ERANGE) {
			v = bad(ps, "too big integer");
		} else if ((v = json_integer((json_int_t)i)) == NULL) {
			v = oom(ps);
		}
	} else {
		double d = strtod(copy, NULL);

		if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
			v = bad(ps, "real number overflow");
		else if ((v = json_real(d)) == NULL)
			v = oom(ps);
	}
	if (copy != small)
		gs_free(copy);
	if (v != NULL)
		ps->p = p;
	return v;
}

/*
 * A key's bit in an object's 256-bit filter of the keys seen so far.
 * Equal keys get equal bits, so a key whose bit is still clear is no
 * duplicate and needs no hash lookup (json_object_getn cost as much as
 * the insertion); a set bit only means "look it up".
 */
static unsigned
key_bit(const char *k, size_t n)
{
	return gs_name_hash(k, n) >> 24;
}

static json_t *
object(struct parser *ps)
{
	const unsigned char *b, *e, *prev = NULL;
	json_t *o, *v;
	char *key;
	size_t klen, prevlen = 0;
	uint64_t seen[4] = { 0, 0, 0, 0 };
	unsigned bit;
	int esc;

	ps->p++; /* '{' */
	if ((o = json_object()) == NULL)
		return oom(ps);
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		return o;
	}
	for (;;) {
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != '"') {
			bad(ps, "expected a string as object key");
			goto fail;
		}
		if (scan_string(ps, &b, &e, &esc) != 0)
			goto fail;
		if (esc) {
			if ((key = unescape(ps, b, e, &klen)) == NULL)
				goto fail;
			ps->spelled = 0;
		} else {
			key = (char *)b;
			klen = (size_t)(e - b);
			/* The encoder sorts keys with strcmp: each must be
			 * greater than the one before, byte by byte. */
			if (prev != NULL) {
				int c = memcmp(prev, b, prevlen < klen ? prevlen :
				    klen);

				if (c > 0 || (c == 0 && prevlen >= klen))
					ps->spelled = 0;
			}
			prev = b;
			prevlen = klen;
		}
		bit = key_bit(key, klen);
		if ((seen[bit >> 6] >> (bit & 63) & 1) != 0 &&
		    json_object_getn(o, key, klen) != NULL) {
			if (esc)
				gs_free(key);
			bad(ps, "duplicate object key");
			goto fail;
		}
		seen[bit >> 6] |= (uint64_t)1 << (bit & 63);
		skip_ws(ps);
		if (ps->p >= ps->end || *ps->p != ':') {
			if (esc)
				gs_free(key);
			bad(ps, "expected ':' after the key");
			goto fail;
		}
		ps->p++;
		if ((v = value(ps)) == NULL) {
			if (esc)
				gs_free(key);
			goto fail;
		}
		if (json_object_setn_new_nocheck(o, key, klen, v) != 0) {
			if (esc)
				gs_free(key);
			oom(ps);
			goto fail;
		}
		if (esc)
			gs_free(key);
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			return o;
		}
		bad(ps, "expected ',' or '}'");
		goto fail;
	}
fail:
	json_decref(o);
	return NULL;
}

static json_t *
array(struct parser *ps)
{
	json_t *a, *v;

	ps->p++; /* '[' */
	if ((a = json_array()) == NULL)
		return oom(ps);
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		return a;
	}
	for (;;) {
		if ((v = value(ps)) == NULL)
			goto fail;
		if (json_array_append_new(a, v) != 0) {
			oom(ps);
			goto fail;
		}
		skip_ws(ps);
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return a;
		}
		bad(ps, "expected ',' or ']'");
		goto fail;
	}
fail:
	json_decref(a);
	return NULL;
}

static json_t *
literal(struct parser *ps, const char *word, json_t *v)
{
	size_t n = strlen(word);

	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return bad(ps, "invalid token");
	ps->p += n;
	return v;
}

static json_t *
value(struct parser *ps)
{
	json_t *v;

	skip_ws(ps);
	if (ps->p >= ps->end)
		return bad(ps, "unexpected end of input");
	switch (*ps->p) {
	case '{':
	case '[':
		if (++ps->depth > GS_JSON_MAX_DEPTH)
			return bad(ps, "nested too deeply");
		if (ps->depth > 32)
			ps->spelled = 0; /* past the encoder's own limit */
		v = *ps->p == '{' ? object(ps) : array(ps);
		ps->depth--;
		return v;
	case '"':
		return string_value(ps);
	case 't':
		return literal(ps, "true", json_true());
	case 'f':
		return literal(ps, "false", json_false());
	case 'n':
		return literal(ps, "null", json_null());
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return number(ps);
		return bad(ps, "invalid token");
	}
}

int
gs_json_parse(const char *text, size_t len, json_t **out, char *why,
    size_t whylen)
{
	int plain;

	return gs_json_parse_plain(text, len, out, &plain, why, whylen);
}

int
gs_json_parse_plain(const char *text, size_t len, json_t **out, int *plain,
    char *why, size_t whylen)
{
	struct parser ps;
	json_t *v;

	*out = NULL;
	*plain = 0;
	why[0] = '\0';
	ps.start = ps.p = (const unsigned char *)text;
	ps.end = ps.start + len;
	ps.depth = 0;
	ps.nomem = 0;
	ps.spelled = 1;
	ps.why = why;
	ps.whylen = whylen;
	if ((v = value(&ps)) == NULL)
		return ps.nomem ? GS_ENOMEM : GS_EPARSE;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		json_decref(v);
		bad(&ps, "end of input expected");
		return GS_EPARSE;
	}
	*out = v;
	*plain = ps.spelled;
	return GS_OK;
}

/* ------------------------------------------------- the plain scanner */

/*
 * gs_json_plain_object's reader: each returns 1 past a value spelled as
 * the encoder writes it, 0 as soon as anything is not (invalid text
 * included; why is then scratch).  Nothing is built.
 */
static int plain_value(struct parser *ps, int depth);

static int
plain_word(struct parser *ps, const char *word, size_t n)
{
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return 0;
	ps->p += n;
	return 1;
}

/* An integer as %lld writes it: no leading zero, no "-0", and at most 18
 * digits, so it fits json_int_t without a range check. */
static int
plain_number(struct parser *ps)
{
	const unsigned char *p = ps->p, *end = ps->end, *d;

	if (p < end && *p == '-')
		p++;
	d = p;
	while (p < end && *p >= '0' && *p <= '9' && p - d <= 18)
		p++;
	if (p == d || p - d > 18 || (*d == '0' && (p - d > 1 || d != ps->p)))
		return 0;
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
		return 0;
	ps->p = p;
	return 1;
}

/* The first 8 bytes of a key [b, b + klen) as a big-endian integer,
 * zero-padded; end bounds what may be read (one load when the text goes
 * on for 8 bytes, which it does for every key but a last one). */
static inline uint64_t
key8(const unsigned char *b, size_t klen, const unsigned char *end)
{
	uint64_t w = 0;
	size_t i;

	if (end - b >= 8) {
		memcpy(&w, b, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		if (klen < 8)
			w &= ~(~0ull >> (8 * klen));
#else
		if (klen < 8)
			w &= (1ull << (8 * klen)) - 1;
		w = __builtin_bswap64(w);
#endif
		return w;
	}
	for (i = 0; i < 8; i++)
		w = w << 8 | (i < klen ? b[i] : 0);
	return w;
}

void
gs_json_span_key(struct gs_json_span *m)
{
	const unsigned char *b = (const unsigned char *)m->key;

	m->k8 = key8(b, m->klen, b + (m->klen < 8 ? m->klen : 8));
	m->vchars = SIZE_MAX;
}

/*
 * Equal k8 mean the same first min(klen, 8) bytes, and the shorter key's
 * padding equal to the longer's bytes there: then only the bytes past the
 * 8th and the lengths decide, as memcmp and "a prefix first" would.
 */
int
gs_json_span_cmp(const struct gs_json_span *a, const struct gs_json_span *b)
{
	size_t n = a->klen < b->klen ? a->klen : b->klen;
	int c;

	if (a->k8 != b->k8)
		return a->k8 < b->k8 ? -1 : 1;
	if (n > 8 && (c = memcmp(a->key + 8, b->key + 8, n - 8)) != 0)
		return c;
	return a->klen < b->klen ? -1 : a->klen > b->klen;
}

/*
 * The bytes of w (eight of the input, loaded in memory order) that end a
 * run of plain_string: special8's, and DEL (0x7f), which a string may
 * hold but a validator must see (json.h, vchars).  0 when none; else the
 * lowest flagged byte is the first such byte ((w + 1) | w flags 0x7f and
 * up, a carry only from a flagged 0xff).
 */
static inline uint64_t
special8_del(uint64_t w)
{
	return special8(w) | (((w + GS_ONES) | w) & GS_HIGHS);
}

/* gs_plain3 but for lead byte E2 (U+2000-U+2FFF, which holds the
 * bidirectional controls): the characters vchars vouches for. */
static inline int
plain3_clean(const unsigned char *p)
{
	/* Lead bytes E1 to EF as bits 0 to 14, of which E2 and ED are not
	 * taken: one test of the lead byte, one of both continuations. */
	unsigned d = (unsigned)p[0] - 0xe1;

	return d <= 14 && ((0x6ffdu >> d) & 1) &&
	    ((p[1] | (unsigned)p[2] << 8) & 0xc0c0) == 0x8080;
}

/*
 * A string at ps->p (its opening quote) spelled as the encoder writes it:
 * exactly what scan_string takes with no escape (the same UTF-8 checks),
 * 0 for anything else.  Sets [b, e) to its body and ps->p past it.
 * Eight bytes at a time, inline: a record's keys and codes are a few
 * bytes long, and a call of scan_string cost more than scanning them.
 *
 * On the way it finds what json.h's vchars says: *odd set when a byte
 * is DEL or starts a character other than plain3_clean's (taken by the
 * general utf8_len), and *extra counts the continuation bytes of the
 * others, so that the body has (e - b) - *extra characters when *odd is
 * not set.  Which path takes a byte changes no verdict: each takes valid
 * UTF-8 and printable ASCII only.  tests/unit/sync-json.c checks both
 * against a plain count.
 */
static inline __attribute__((always_inline)) int
plain_string(struct parser *ps, const unsigned char **b,
    const unsigned char **e, size_t *extra, int *odd)
{
	const unsigned char *p = ps->p + 1, *end = ps->end;
	uint64_t w, m;
	size_t n;

	*b = p;
	for (;;) {
#ifdef __SSE2__
		/* Sixteen at a time: a signed byte plus one below 0x21 is
		 * a control, DEL or one from 0x80, the bytes special8_del
		 * flags with the two. */
		if (end - p >= 16) {
			__m128i v = _mm_loadu_si128((const __m128i *)p);
			int f = _mm_movemask_epi8(_mm_or_si128(
			    _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(1)),
			    _mm_set1_epi8(0x21)),
			    _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
			    _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));

			if (f == 0) {
				p += 16;
				continue;
			}
			p += __builtin_ctz((unsigned)f);
		} else
#endif
		if (end - p >= 8) {
			memcpy(&w, p, 8);
			if ((m = special8_del(w)) == 0) {
				p += 8;
				continue;
			}
			p += gs_first_flag(m);
		} else {
			while (p < end && plain_byte[*p] && *p != 0x7f)
				p++;
			if (p == end)
				return 0; /* unterminated */
		}
		if (*p == '"') {
			*e = p;
			ps->p = p + 1;
			return 1;
		}
		if (*p == 0x7f) {
			*odd = 1;
			p++;
			continue;
		}
		if (*p < 0x80)
			return 0; /* a control, or an escape */
		if (end - p >= 3 && plain3_clean(p)) {
			/* Chinese text comes in runs. */
			do {
				p += 3;
				*extra += 2;
			} while (end - p >= 3 && plain3_clean(p));
			continue;
		}
		if ((n = utf8_len(p, end)) == 0)
			return 0;
		*odd = 1;
		p += n;
	}
}

/*
 * An object at ps->p ('{').  Nested (m NULL) or ordered, its keys must
 * come in strictly increasing order; else the outer object's (m set) may
 * come in any order.  Its members go to m[0..max).
 */
static int
plain_members(struct parser *ps, int depth, struct gs_json_span *m,
    size_t max, size_t *n, int ordered)
{
	const unsigned char *b, *e, *prev = NULL, *v, *vb, *ve;
	size_t klen, prevlen = 0, k = 0, kextra = 0, vextra;
	uint64_t k8 = 0, prevk8 = 0;
	int c, kodd = 0, vodd, str;

	ps->p++; /* '{' */
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		goto done;
	}
	for (;;) {
		if (ps->p >= ps->end || *ps->p != '"' ||
		    !plain_string(ps, &b, &e, &kextra, &kodd))
			return 0;
		klen = (size_t)(e - b);
		if (m != NULL)
			k8 = key8(b, klen, ps->end);
		/* In order: with k8 (gs_json_span_cmp) most keys are ordered
		 * by their first 8 bytes without a memcmp. */
		if ((m == NULL || ordered) && prev != NULL &&
		    (m == NULL || k8 <= prevk8)) {
			if (m != NULL && k8 < prevk8)
				return 0;
			c = memcmp(prev, b, prevlen < klen ? prevlen : klen);
			if (c > 0 || (c == 0 && prevlen >= klen))
				return 0;
		}
		prev = b;
		prevlen = klen;
		prevk8 = k8;
		if (ps->p >= ps->end || *ps->p != ':')
			return 0;
		v = ++ps->p;
		/* A string, most values of a record, without a call. */
		vextra = 0;
		vodd = 0;
		str = ps->p < ps->end && *ps->p == '"';
		if (str ? !plain_string(ps, &vb, &ve, &vextra, &vodd) :
		    !plain_value(ps, depth))
			return 0;
		if (m != NULL) {
			if (k == max)
				return 0;
			m[k].key = (const char *)b;
			m[k].klen = klen;
			m[k].val = (const char *)v;
			m[k].vlen = (size_t)(ps->p - v);
			m[k].k8 = k8;
			m[k].vchars = str && !vodd ?
			    (size_t)(ps->p - v) - 2 - vextra : SIZE_MAX;
		}
		k++;
		if (ps->p < ps->end && *ps->p == ',') {
			ps->p++;
			continue;
		}
		if (ps->p < ps->end && *ps->p == '}') {
			ps->p++;
			break;
		}
		return 0;
	}
done:
	if (n != NULL)
		*n = k;
	return 1;
}

static int
plain_value(struct parser *ps, int depth)
{
	const unsigned char *b, *e;
	size_t extra = 0;
	int odd = 0;

	if (ps->p >= ps->end)
		return 0;
	switch (*ps->p) {
	case '{':
		return depth < GS_JSON_PLAIN_DEPTH &&
		    plain_members(ps, depth + 1, NULL, 0, NULL, 1);
	case '[':
		if (depth >= GS_JSON_PLAIN_DEPTH)
			return 0;
		if (++ps->p < ps->end && *ps->p == ']') {
			ps->p++;
			return 1;
		}
		for (;;) {
			if (!plain_value(ps, depth + 1))
				return 0;
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				continue;
			}
			if (ps->p < ps->end && *ps->p == ']') {
				ps->p++;
				return 1;
			}
			return 0;
		}
	case '"':
		return plain_string(ps, &b, &e, &extra, &odd);
	case 't':
		return plain_word(ps, "true", 4);
	case 'f':
		return plain_word(ps, "false", 5);
	case 'n':
		return plain_word(ps, "null", 4);
	default:
		return plain_number(ps);
	}
}

/* gs_json_span_cmp, its common case (the first 8 bytes differ) inline. */
static inline int
span_order(const struct gs_json_span *a, const struct gs_json_span *b)
{
	if (a->k8 != b->k8)
		return a->k8 < b->k8 ? -1 : 1;
	return gs_json_span_cmp(a, b);
}

/* A parser over text[0..len) for the plain readers below: spelled as the
 * encoder writes it, its reason (never shown) into why. */
static void
plain_parser(struct parser *ps, const char *text, size_t len, char *why,
    size_t whylen)
{
	ps->start = ps->p = (const unsigned char *)text;
	ps->end = ps->start + len;
	ps->depth = 0;
	ps->nomem = 0;
	ps->spelled = 1;
	why[0] = '\0';
	ps->why = why;
	ps->whylen = whylen;
}

int
gs_json_plain_object(const char *text, size_t len, struct gs_json_span *m,
    size_t max, size_t *n)
{
	size_t i, j;

	if (!gs_json_plain_members(text, len, m, max, n))
		return 0;
	/* Into the encoder's order (insertion: a record has a few dozen
	 * members, often in order already); equal keys are duplicates.
	 * Every two members that end up side by side were compared when
	 * the later of them went in (it stopped at the one before it, or
	 * it was moved past it), so a duplicate is met here. */
	for (i = 1; i < *n; i++) {
		struct gs_json_span x;
		int c = span_order(&m[i - 1], &m[i]);

		if (c == 0)
			goto no;
		if (c < 0)
			continue;
		x = m[i];
		for (j = i; j > 0 && (c = span_order(&m[j - 1], &x)) > 0; j--)
			m[j] = m[j - 1];
		if (j > 0 && c == 0)
			goto no;
		m[j] = x;
	}
	return 1;
no:
	*n = 0;
	return 0;
}

/* The outer object of text[0..len), its members into m[0..max): in
 * increasing key order only when ordered (plain_members). */
static int
plain_outer(const char *text, size_t len, struct gs_json_span *m,
    size_t max, size_t *n, int ordered)
{
	struct parser ps;
	char why[2];

	*n = 0;
	plain_parser(&ps, text, len, why, sizeof(why));
	if (len == 0 || *ps.p != '{' ||
	    !plain_members(&ps, 1, m, max, n, ordered) || ps.p != ps.end) {
		*n = 0;
		return 0;
	}
	return 1;
}

int
gs_json_plain_members(const char *text, size_t len, struct gs_json_span *m,
    size_t max, size_t *n)
{
	return plain_outer(text, len, m, max, n, 0);
}

/*
 * gs_json_plain_sorted (json.h): plain_members' reading of the outer
 * object, with its keys required in increasing order as they come, so
 * there is nothing to sort and no duplicate to look for.
 */
int
gs_json_plain_sorted(const char *text, size_t len, struct gs_json_span *m,
    size_t max, size_t *n)
{
	return plain_outer(text, len, m, max, n, 1);
}

int
ag_json_parse(const char *text, size_t len, json_t **out, char *why,
    size_t whylen)
{
	return gs_json_parse(text, len, out, why, whylen);
}

/* -------------------------------------------------- the arena (json.h) */

#define ARENA_BLOCK (32 * 1024)       /* bytes of one block's data */
#define ARENA_BIG (ARENA_BLOCK / 4)   /* larger: the previous malloc */
#define ARENA_ALIGN 16

struct arena_block {
	struct arena_block *next;
	size_t used;
	size_t high; /* the most used since begin (what end wipes) */
	_Alignas(ARENA_ALIGN) unsigned char data[ARENA_BLOCK];
};

struct gs_json_arena {
	struct arena_block *head;  /* every block, in order */
	struct arena_block *cur;   /* the one being filled */
	/*
	 * Which pointers are the arena's: every free asks (jansson frees
	 * values made before the arena, and big ones, to the heap).  A
	 * platform batch of 1,000 persons fills about 75 blocks, and a walk
	 * of the list on each free cost more than the malloc it saved.  The block
	 * being filled, then the block of the last free found, answer most
	 * (frees come in about the order of the allocations); the rest is a
	 * binary search of the blocks sorted by address.
	 */
	struct arena_block *last;
	struct arena_block **sorted;
	size_t nsorted, capsorted;
};

static _Thread_local struct gs_json_arena *arena_here;
static json_malloc_t prev_malloc;
static json_free_t prev_free;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static int wipe_frees; /* gs_json_wipe_frees: set once, before threads */

static int
in_block(const struct arena_block *b, uintptr_t q)
{
	return q - (uintptr_t)b->data < ARENA_BLOCK;
}

static int
arena_owns(struct gs_json_arena *a, const void *p)
{
	uintptr_t q = (uintptr_t)p;
	size_t lo = 0, hi = a->nsorted, mid;

	if (in_block(a->cur, q) || (a->last != NULL && in_block(a->last, q)))
		return 1;
	/* The last block that starts at or below q, if any, holds q or
	 * nothing does (blocks do not overlap). */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((uintptr_t)a->sorted[mid]->data <= q)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0 || !in_block(a->sorted[lo - 1], q))
		return 0;
	a->last = a->sorted[lo - 1];
	return 1;
}

/* Files b in the sorted list.  GS_OK or GS_ENOMEM (b not filed). */
static int
arena_file(struct gs_json_arena *a, struct arena_block *b)
{
	struct arena_block **ns;
	size_t i, cap;

	if (a->nsorted == a->capsorted) {
		cap = a->capsorted != 0 ? 2 * a->capsorted : 16;
		if ((ns = gs_realloc(a->sorted, cap * sizeof(*ns))) == NULL)
			return GS_ENOMEM;
		a->sorted = ns;
		a->capsorted = cap;
	}
	for (i = a->nsorted; i > 0 && (uintptr_t)a->sorted[i - 1]->data >
	    (uintptr_t)b->data; i--)
		a->sorted[i] = a->sorted[i - 1];
	a->sorted[i] = b;
	a->nsorted++;
	return GS_OK;
}

static void *
arena_alloc(struct gs_json_arena *a, size_t n)
{
	struct arena_block *b = a->cur;

	n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	while (b != NULL && ARENA_BLOCK - b->used < n) {
		/* A block kept from before the last reset, or a new one. */
		if (b->next == NULL) {
			struct arena_block *nb = gs_malloc(sizeof(*nb));

			if (nb == NULL)
				return NULL;
			if (arena_file(a, nb) != GS_OK) {
				gs_free(nb);
				return NULL;
			}
			nb->next = NULL;
			nb->used = 0;
			nb->high = 0;
			b->next = nb;
		}
		b = a->cur = b->next;
	}
	b->used += n;
	return b->data + b->used - n;
}

static void *
arena_malloc(size_t n)
{
	struct gs_json_arena *a = arena_here;

	if (a != NULL && n <= ARENA_BIG)
		return arena_alloc(a, n);
	return prev_malloc(n);
}

static void
arena_free(void *p)
{
	struct gs_json_arena *a = arena_here;

	if (p == NULL || (a != NULL && arena_owns(a, p)))
		return;
	if (wipe_frees)
		explicit_bzero(p, malloc_usable_size(p));
	prev_free(p);
}

static void
arena_install(void)
{
	json_get_alloc_funcs(&prev_malloc, &prev_free);
	json_set_alloc_funcs(arena_malloc, arena_free);
}

int
gs_json_wipe_frees(void)
{
	if (pthread_once(&arena_once, arena_install) != 0)
		return GS_FAIL(GS_EINTERNAL, "json: pthread_once");
	/* malloc_usable_size is only good for the C library's blocks. */
	if (prev_malloc != malloc || prev_free != free)
		return GS_FAIL(GS_EINVAL, "json: allocation functions of "
		    "someone else's installed");
	wipe_frees = 1;
	return GS_OK;
}

void
gs_json_free(void *p)
{
	json_malloc_t m;
	json_free_t f;

	json_get_alloc_funcs(&m, &f);
	f(p);
}

int
gs_json_arena_begin(struct gs_json_arena **out)
{
	struct gs_json_arena *a;

	*out = NULL;
	if (pthread_once(&arena_once, arena_install) != 0)
		return GS_FAIL(GS_EINTERNAL, "json arena: pthread_once");
	if ((a = gs_calloc(1, sizeof(*a))) == NULL ||
	    (a->head = gs_malloc(sizeof(*a->head))) == NULL ||
	    arena_file(a, a->head) != GS_OK) {
		if (a != NULL)
			gs_free(a->head);
		gs_free(a);
		return GS_FAIL(GS_ENOMEM, "json arena: out of memory");
	}
	a->head->next = NULL;
	a->head->used = 0;
	a->head->high = 0;
	a->cur = a->head;
	arena_here = a;
	*out = a;
	return GS_OK;
}

void
gs_json_arena_reset(struct gs_json_arena *a)
{
	struct arena_block *b;

	if (a == NULL)
		return;
	/* Not wiped here: the memory stays the arena's, and is written
	 * over by what comes next; end wipes all it ever held. */
	for (b = a->head; b != NULL; b = b->next) {
		if (b->used > b->high)
			b->high = b->used;
		b->used = 0;
	}
	a->cur = a->head;
}

void
gs_json_arena_end(struct gs_json_arena *a)
{
	struct arena_block *b, *next;

	if (a == NULL)
		return;
	if (arena_here == a)
		arena_here = NULL;
	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		if (wipe_frees)
			explicit_bzero(b->data, b->used > b->high ? b->used :
			    b->high);
		gs_free(b);
	}
	gs_free(a->sorted);
	gs_free(a);
}
