/*
 * batch.c - fuzz harness: a batch plaintext (NDJSON: header line, change
 * lines) through the strict decoder, then every decoded change's fields
 * through the record validator of its form, as the platform does for each
 * change it applies.
 */
#include "fuzz.h"

#include <jansson.h>

#include "batch.h"
#include "core/error.h"
#include "schema.h"
#include "validate.h"
#include "core/banned.h"

static struct gs_schema *batch_schema;

int
FUZZ_ENTRY(batch)(const uint8_t *data, size_t size)
{
	struct gs_batch b;
	struct gs_problems *p;
	size_t i;

	if (batch_schema == NULL && gs_schema_load(&batch_schema) != GS_OK)
		abort();
	memset(&b, 0, sizeof(b));
	if (gs_batch_decode(&b, (const char *)data, size, 1000) != GS_OK)
		return 0;
	if ((p = malloc(sizeof(*p))) == NULL)
		abort();
	for (i = 0; i < b.n; i++) {
		const struct gs_form *f =
		    gs_schema_form(batch_schema, b.changes[i].type);

		if (b.changes[i].fields != NULL)
			(void)gs_record_validate(batch_schema, f,
			    b.changes[i].fields, p);
	}
	free(p);
	gs_batch_release(&b);
	return 0;
}
