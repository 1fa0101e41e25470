/*
 * json.c - differential fuzz harness: the agent's fast strict JSON
 * reader (sync/json.c) against jansson.  Ours may refuse more (duplicate
 * keys, depth, NUL in strings, lone surrogates...) but whatever it
 * accepts, jansson must accept too and read as the same value; a
 * difference aborts.
 */
#include "fuzz.h"

#include <jansson.h>

#include "json.h" /* sync/json.h */
#include "core/banned.h"

int
FUZZ_ENTRY(json)(const uint8_t *data, size_t size)
{
	json_t *ours = NULL, *theirs;
	json_error_t je;
	char why[256];

	if (gs_json_parse((const char *)data, size, &ours, why, sizeof(why)) !=
	    0 || ours == NULL)
		return 0;
	theirs = json_loadb((const char *)data, size,
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (theirs == NULL || !json_equal(ours, theirs))
		abort();
	json_decref(theirs);
	json_decref(ours);
	return 0;
}
