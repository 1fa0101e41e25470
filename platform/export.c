/*
 * export.c - records out of the store, for admins: NDJSON (one record per
 * line, the same keys as `gridagent list --json`) or CSV that opens in
 * Excel (UTF-8 with a byte-order mark, CRLF line ends, RFC 4180 quoting).
 *
 * CSV columns: the fixed record columns, then the fields as one JSON text
 * column, so that every record type fits one sheet and nothing is lost.
 * A cell that starts with = + - @ is prefixed with ' so a spreadsheet does
 * not run it as a formula (CSV injection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "export.h"
#include "core/banned.h"

struct walk {
	FILE *out;
	int csv;
	size_t n;
};

static int
put_ndjson(struct walk *w, const struct pf_record_view *v)
{
	json_t *o, *fields = NULL;
	json_error_t jerr;
	char *s;
	int r = GS_OK;

	if (v->fields != NULL &&
	    (fields = json_loads(v->fields, 0, &jerr)) == NULL)
		return GS_FAIL(GS_ECORRUPT, "record %s: stored fields are not "
		    "JSON", v->uuid);
	o = json_pack("{s:s,s:s,s:s,s:I,s:i,s:o,s:b,s:I,s:I,s:s}",
	    "uuid", v->uuid, "type", v->type, "grid", v->grid,
	    "rev", (json_int_t)v->rev, "form_version", v->form_version,
	    "fields", fields != NULL ? fields : json_null(),
	    "deleted", v->deleted,
	    "created_at", (json_int_t)v->created_at,
	    "updated_at", (json_int_t)v->updated_at,
	    "author", v->author != NULL ? v->author : "");
	if (o == NULL)
		return GS_FAIL(GS_ENOMEM, "export line");
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return GS_FAIL(GS_ENOMEM, "export line");
	if (fputs(s, w->out) == EOF || fputc('\n', w->out) == EOF)
		r = GS_FAIL(GS_EIO, "cannot write the export");
	free(s);
	return r;
}

/* One CSV cell: quoted when needed, formula-looking text defused. */
static int
put_cell(FILE *out, const char *s, int last)
{
	const char *p;
	int quote = 0;

	if (s == NULL)
		s = "";
	for (p = s; *p; p++)
		if (*p == '"' || *p == ',' || *p == '\n' || *p == '\r')
			quote = 1;
	if (strchr("=+-@", s[0]) != NULL && s[0] != '\0')
		quote = 1;
	if (quote && fputc('"', out) == EOF)
		return GS_EIO;
	if (strchr("=+-@", s[0]) != NULL && s[0] != '\0' &&
	    fputc('\'', out) == EOF)
		return GS_EIO;
	for (p = s; *p; p++) {
		if (*p == '"' && fputc('"', out) == EOF)
			return GS_EIO;
		if (fputc(*p, out) == EOF)
			return GS_EIO;
	}
	if (quote && fputc('"', out) == EOF)
		return GS_EIO;
	if (fputs(last ? "\r\n" : ",", out) == EOF)
		return GS_EIO;
	return GS_OK;
}

static int
put_csv(struct walk *w, const struct pf_record_view *v)
{
	char rev[24], fv[16], ca[32], ua[32];
	const char *cells[10];
	int i;

	snprintf(rev, sizeof(rev), "%lld", (long long)v->rev);
	snprintf(fv, sizeof(fv), "%d", v->form_version);
	gs_time_format(ca, sizeof(ca), v->created_at);
	gs_time_format(ua, sizeof(ua), v->updated_at);
	cells[0] = v->uuid;
	cells[1] = v->type;
	cells[2] = v->grid;
	cells[3] = rev;
	cells[4] = fv;
	cells[5] = v->deleted ? "1" : "0";
	cells[6] = ca;
	cells[7] = ua;
	cells[8] = v->author;
	cells[9] = v->fields != NULL ? v->fields : "";
	for (i = 0; i < 10; i++)
		if (put_cell(w->out, cells[i], i == 9) != GS_OK)
			return GS_FAIL(GS_EIO, "cannot write the export");
	return GS_OK;
}

static int
each(void *arg, const struct pf_record_view *v)
{
	struct walk *w = arg;

	w->n++;
	return w->csv ? put_csv(w, v) : put_ndjson(w, v);
}

int
pf_export(struct pf_store *st, const char *type, const char *grid,
    enum pf_export_format format, FILE *out, size_t *count)
{
	struct walk w;
	int r;

	memset(&w, 0, sizeof(w));
	w.out = out;
	w.csv = format == PF_EXPORT_CSV;
	if (w.csv) {
		/* The BOM tells Excel the file is UTF-8. */
		if (fputs("\xef\xbb\xbf", out) == EOF ||
		    fputs("uuid,type,grid,rev,form_version,deleted,created_at,"
		    "updated_at,author,fields\r\n", out) == EOF)
			return GS_FAIL(GS_EIO, "cannot write the export");
	}
	r = st->ops->record_each(st, type, grid, each, &w);
	if (r == GS_OK && fflush(out) != 0)
		r = GS_FAIL(GS_EIO, "cannot write the export");
	if (count != NULL)
		*count = w.n;
	return r;
}
