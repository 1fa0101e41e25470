/*
 * json.h - a fast, strict JSON reader for the agent's record input.
 *
 * jansson's json_loadb costs about 190 instructions per input byte (a
 * callback per character); a bulk import of 100,000 records spent half
 * its time there.  This reader builds the same jansson values directly
 * from the bytes, several times faster, and accepts exactly what
 * json_loadb(..., JSON_REJECT_DUPLICATES) accepts: RFC 8259 JSON, valid
 * UTF-8 only, no \u0000, no duplicate keys, integers that fit json_int_t,
 * no real overflow, nothing but whitespace after the value.
 * tests/unit/agent-json.c checks that against jansson on many thousands of
 * mutated inputs.
 */
#ifndef AG_JSON_H
#define AG_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Nesting deeper than this is refused (records are at most 3 deep). */
#define AG_JSON_MAX_DEPTH 64

/*
 * Parses text[0..len) (need not be NUL-terminated).  GS_OK and *out (a new
 * reference); or GS_EPARSE with a reason ("column 12: invalid escape")
 * in why, and *out NULL; or GS_ENOMEM.
 */
int ag_json_parse(const char *text, size_t len, json_t **out, char *why,
    size_t whylen);

#endif
