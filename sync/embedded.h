/*
 * embedded.h - the data files built into the programs: the SQL migrations
 * under schema/agent and schema/platform, and the forms and code tables
 * under schema/forms and schema/codes.
 *
 * Names are paths below schema/ ("agent/0001-init.sql").  The table is
 * sorted by name and ends with an entry whose name is NULL.  Data is static,
 * NUL-terminated (not counted in len), and never freed.
 */
#ifndef GS_EMBEDDED_H
#define GS_EMBEDDED_H

#include <stddef.h>

struct gs_embedded {
	const char *name;
	const unsigned char *data;
	size_t len;
};

extern const struct gs_embedded gs_embedded_files[];

/* The entry with this exact name, or NULL. */
const struct gs_embedded *gs_embedded_find(const char *name);

#endif
