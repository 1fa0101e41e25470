/*
 * json.c - differential fuzz harness: the agent's fast strict JSON
 * reader (sync/json.c) against jansson.  Ours may refuse more (duplicate
 * keys, depth, NUL in strings, lone surrogates...) but whatever it
 * accepts, jansson must accept too and read as the same value; a
 * difference aborts.  And the plain scanner (gs_json_plain_object, which
 * lets sealing copy stored fields into a batch line): whatever it calls
 * plain must parse, and the line written from its members must be the
 * line written from the parsed object, byte for byte.
 */
#include "fuzz.h"

#include <string.h>

#include <jansson.h>

#include "batch.h" /* sync/batch.h */
#include "core/buf.h"
#include "json.h" /* sync/json.h */
#include "core/banned.h"

static void
check_plain(const uint8_t *data, size_t size)
{
	struct gs_json_span m[64];
	struct gs_change c;
	struct gs_buf a, b;
	json_t *v = NULL;
	char why[256];
	size_t n;

	if (!gs_json_plain_object((const char *)data, size, m, 64, &n))
		return;
	if (gs_json_parse((const char *)data, size, &v, why, sizeof(why)) != 0
	    || !json_is_object(v) || json_object_size(v) != n)
		abort();
	gs_change_init(&c);
	memcpy(c.change_id, "01a21946-1c8e-7200-9d44-ff9ca208ea5d", 37);
	memcpy(c.uuid, "01a21946-1c8e-7201-9d44-ff9ca208ea5d", 37);
	memcpy(c.type, "person", 7);
	memcpy(c.grid, "440307001001", 13);
	memcpy(c.author, "W1", 3);
	c.form_version = 1;
	gs_buf_init(&a, 1 << 20);
	gs_buf_init(&b, 1 << 20);
	if (gs_batch_encode_change_spans(&a, &c, m, n) != 0)
		abort();
	c.fields = v;
	if (gs_batch_encode_change(&b, &c) != 0 || a.len != b.len ||
	    memcmp(a.data, b.data, a.len) != 0)
		abort();
	gs_change_release(&c);
	gs_buf_release(&a);
	gs_buf_release(&b);
}

int
FUZZ_ENTRY(json)(const uint8_t *data, size_t size)
{
	json_t *ours = NULL, *theirs;
	json_error_t je;
	char why[256];

	check_plain(data, size);
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
