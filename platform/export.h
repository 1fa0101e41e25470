/*
 * export.h - records out of the store as NDJSON or Excel-friendly CSV.
 */
#ifndef PF_EXPORT_H
#define PF_EXPORT_H

#include <stddef.h>
#include <stdio.h>

#include "store.h"

struct gs_schema;

enum pf_export_format {
	PF_EXPORT_NDJSON = 1,
	PF_EXPORT_CSV,
	PF_EXPORT_CSV_ZH  /* CSV with Chinese column headers (field labels) */
};

/*
 * Writes every record of the type and grid (NULL = all) to out.  NDJSON:
 * one object per line with uuid, type, grid, rev, form_version, fields,
 * deleted, created_at, updated_at, author.  CSV: UTF-8 with a BOM, a
 * header row, CRLF; with a type known to schema (may be NULL), one column
 * per field of its form, else the fields as one JSON column.  *count (may
 * be NULL) is the number of records.  GS_OK, GS_EIO when out cannot be
 * written, GS_ECORRUPT, store errors.
 */
int pf_export(struct pf_store *st, const struct gs_schema *schema,
    const char *type, const char *grid, enum pf_export_format format,
    FILE *out, size_t *count);

#endif
