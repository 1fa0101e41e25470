/*
 * embedded.c - lookup into the generated table of embedded data files.
 */
#include <string.h>

#include "embedded.h"
#include "core/banned.h"

const struct gs_embedded *
gs_embedded_find(const char *name)
{
	const struct gs_embedded *e;

	for (e = gs_embedded_files; e->name != NULL; e++)
		if (strcmp(e->name, name) == 0)
			return e;
	return NULL;
}
