/*
 * bytes-priv.h - byte tricks shared by the JSON reader (json.c), the
 * UTF-8 check (ids.c) and the schema's lookups (schema.c): eight bytes of
 * text tested at a time, the three-byte UTF-8 sequences (every Chinese
 * character) that need no further check, and a hash of short names.
 * Internal to sync/.
 */
#ifndef GS_BYTES_PRIV_H
#define GS_BYTES_PRIV_H

#include <stdint.h>
#include <stddef.h>

#define GS_ONES 0x0101010101010101ull
#define GS_HIGHS 0x8080808080808080ull

/* The index in memory order of the first byte flagged in m (not 0). */
static inline size_t
gs_first_flag(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (size_t)__builtin_clzll(m) >> 3;
#else
	return (size_t)__builtin_ctzll(m) >> 3;
#endif
}

/*
 * Whether p starts a three-byte sequence that is valid whatever its
 * second byte's value: lead byte E1-EC, EE or EF (no overlong form, no
 * surrogate, no control: U+1000-U+CFFF, U+E000-U+FFFF) and two
 * continuation bytes.  p[0..2] must be readable.
 */
static inline int
gs_plain3(const unsigned char *p)
{
	return (unsigned)(p[0] - 0xe1) <= 0xef - 0xe1 && p[0] != 0xed &&
	    (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80;
}

/*
 * The hash of field names and codes (schema.c's tables, json.c's filter
 * of keys seen): a few bytes of the name, not all of them, because a
 * lookup compares the name it lands on anyway.
 */
static inline uint32_t
gs_name_hash(const char *s, size_t n)
{
	uint32_t h = (uint32_t)n;

	if (n > 0) {
		h = h * 31 + (unsigned char)s[0];
		h = h * 31 + (unsigned char)s[n / 2];
		h = h * 31 + (unsigned char)s[n - 1];
	}
	h *= 2654435761u;
	return h ^ (h >> 15);
}

#endif
