/*
 * reference.c - fuzz harness: a reference document (a form or a code table
 * an admin published) as the device checks it after its digest matched
 * (agent/reference.c): what it says it is, then the whole schema loaded
 * with it laid over the built-in files.
 */
#include <stdio.h>

#include "fuzz.h"

#include "core/error.h"
#include "embedded.h"
#include "schema.h"
#include "core/banned.h"

int
FUZZ_ENTRY(reference)(const uint8_t *data, size_t size)
{
	struct gs_embedded extra[2];
	struct gs_schema *s = NULL;
	char name[GS_SCHEMA_NAME_MAX], fname[GS_SCHEMA_NAME_MAX + 32];
	int is_form = 0, version = 0;

	if (gs_schema_doc_info(data, size, &is_form, name, &version) != GS_OK)
		return 0;
	if (is_form)
		snprintf(fname, sizeof(fname), "forms/%s@%d.json", name,
		    version);
	else
		snprintf(fname, sizeof(fname), "codes/%s.json", name);
	extra[0].name = fname;
	extra[0].data = data;
	extra[0].len = size;
	extra[1].name = NULL;
	if (gs_schema_load_extra(extra, &s) == GS_OK)
		(void)gs_schema_form_version(s, name, version);
	gs_schema_free(s);
	return 0;
}
