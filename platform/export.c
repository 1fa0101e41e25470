/*
 * export.c - records out of the store, for admins: NDJSON (one record per
 * line, the same keys as `gridagent list --json`, and clock_suspect) or
 * CSV that opens in Excel (UTF-8 with a byte-order mark, CRLF line ends,
 * RFC 4180 quoting).
 *
 * CSV columns: the fixed record columns, then
 *   - with a type whose form is known: one column per field of the form,
 *     in the form's order (a sheet an admin can filter and sort), then
 *     the fields only older versions of the form have (a record kept at
 *     an older version loses nothing);
 *   - otherwise: the fields as one JSON text column, so that records of
 *     every type fit one sheet and nothing is lost.
 * Then clock_suspect, 1 or 0: a revision of the record came with device
 * times that cannot be right (schema/platform 0012).
 * Last come two columns for the photos: attachments_expected (how many
 * the record names) and attachments_present (how many the platform holds),
 * as `reconcile` counts them.
 * A text cell that starts with = + - @, a tab or a carriage return is
 * prefixed with ' so a spreadsheet does not run it as a formula (CSV
 * injection); numbers are left alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/progress.h"
#include "core/util.h"
#include "export.h"
#include "schema.h"
#include "attachments.h"
#include "core/banned.h"

struct walk {
	struct pf_store *st;         /* for the attachments present */
	FILE *out;
	int csv;
	int zh;                      /* Chinese headers: the field labels */
	int per_field;               /* one column per field (a --type) */
	/* The per-field columns: every field of the type's newest form in
	 * its order, then those only older versions have (newest version
	 * first), so that a record kept at an older version loses no value
	 * in the sheet.  The fields belong to the schema. */
	const struct gs_field **cols;
	size_t ncols;
	struct gs_buf cell;          /* scratch for one value */
	size_t n;
	struct gs_progress pg;       /* on a terminal: records written */
};

static int
put_ndjson(struct walk *w, const struct pf_record_view *v)
{
	json_t *o, *fields = NULL;
	json_error_t jerr;
	int64_t aexp = 0, apres = 0;
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
	/* Device times that cannot be right (schema/platform 0012). */
	if (json_object_set_new(o, "clock_suspect",
	    json_boolean(v->clock_suspect)) != 0) {
		json_decref(o);
		return GS_FAIL(GS_ENOMEM, "export line");
	}
	/* Photos: how many the record names and how many arrived. */
	if (w->st != NULL && pf_att_count(w->st, fields, &aexp, &apres) &&
	    json_object_set_new(o, "attachments", json_pack("{s:I,s:I}",
	    "expected", (json_int_t)aexp, "present", (json_int_t)apres)) != 0) {
		json_decref(o);
		return GS_FAIL(GS_ENOMEM, "export line");
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s == NULL)
		return GS_FAIL(GS_ENOMEM, "export line");
	if (fputs(s, w->out) == EOF || fputc('\n', w->out) == EOF)
		r = GS_FAIL(GS_EIO, "cannot write the export");
	free(s);
	return r;
}

/* One CSV cell: quoted when needed; text that looks like a formula is
 * defused when defuse is set. */
static int
put_cell(FILE *out, const char *s, int defuse, int last)
{
	const char *p;
	int quote = 0, formula;

	if (s == NULL)
		s = "";
	/* OWASP's list: = + - @ start a formula, and so do a tab or a
	 * carriage return first (spreadsheets strip them, then read what
	 * follows: "\t=HYPERLINK(...)" runs as well as "=HYPERLINK(...)"). */
	formula = defuse && s[0] != '\0' && strchr("=+-@\t\r", s[0]) != NULL;
	for (p = s; *p; p++)
		if (*p == '"' || *p == ',' || *p == '\n' || *p == '\r')
			quote = 1;
	if ((quote || formula) && fputc('"', out) == EOF)
		return GS_EIO;
	if (formula && fputc('\'', out) == EOF)
		return GS_EIO;
	for (p = s; *p; p++) {
		if (*p == '"' && fputc('"', out) == EOF)
			return GS_EIO;
		if (fputc(*p, out) == EOF)
			return GS_EIO;
	}
	if ((quote || formula) && fputc('"', out) == EOF)
		return GS_EIO;
	if (fputs(last ? "\r\n" : ",", out) == EOF)
		return GS_EIO;
	return GS_OK;
}

/*
 * The text of one field value for a cell: strings as they are, numbers
 * and booleans as JSON writes them, code lists (tags) joined with ";",
 * anything else (geo) as compact JSON, absent or null as "".  *is_text
 * says whether the cell holds free text (to be defused).
 */
static int
value_text(struct gs_buf *b, json_t *v, int *is_text)
{
	char *s;
	size_t i;
	json_t *e;
	int r = GS_OK;

	gs_buf_reset(b);
	*is_text = 0;
	if (v == NULL || json_is_null(v))
		return gs_buf_puts(b, "");
	if (json_is_string(v)) {
		*is_text = 1;
		return gs_buf_puts(b, json_string_value(v));
	}
	if (json_is_array(v)) {
		*is_text = 1;
		json_array_foreach(v, i, e) {
			if (i > 0 && (r = gs_buf_putc(b, ';')) != GS_OK)
				return r;
			if (json_is_string(e))
				r = gs_buf_puts(b, json_string_value(e));
			if (r != GS_OK)
				return r;
		}
		return GS_OK;
	}
	if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
		return GS_FAIL(GS_ENOMEM, "export cell");
	*is_text = json_is_object(v);
	r = gs_buf_puts(b, s);
	free(s);
	return r;
}

static int
put_csv(struct walk *w, const struct pf_record_view *v)
{
	char rev[24], fv[16], ca[32], ua[32], ae[24], ap[24];
	const char *cells[9];
	int64_t aexp = 0, apres = 0;
	json_t *fields = NULL;
	json_error_t jerr;
	size_t i;
	int r = GS_OK, is_text;

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
	for (i = 0; i < 9; i++)
		if (put_cell(w->out, cells[i], i == 2 || i == 8, 0) != GS_OK)
			return GS_FAIL(GS_EIO, "cannot write the export");
	if (v->fields != NULL &&
	    (fields = json_loads(v->fields, 0, &jerr)) == NULL)
		return GS_FAIL(GS_ECORRUPT, "record %s: stored fields are not "
		    "JSON", v->uuid);
	if (!w->per_field) {
		if (put_cell(w->out, v->fields, 0, 0) != GS_OK)
			r = GS_FAIL(GS_EIO, "cannot write the export");
	} else {
		for (i = 0; i < w->ncols && r == GS_OK; i++) {
			const char *name = gs_field_name(w->cols[i]);

			if ((r = value_text(&w->cell, json_object_get(fields,
			    name), &is_text)) != GS_OK)
				break;
			if (put_cell(w->out, w->cell.data != NULL ?
			    w->cell.data : "", is_text, 0) != GS_OK)
				r = GS_FAIL(GS_EIO, "cannot write the export");
		}
	}
	/* Photos, last: how many the record names, how many arrived. */
	if (r == GS_OK) {
		if (w->st != NULL)
			(void)pf_att_count(w->st, fields, &aexp, &apres);
		snprintf(ae, sizeof(ae), "%lld", (long long)aexp);
		snprintf(ap, sizeof(ap), "%lld", (long long)apres);
		if (put_cell(w->out, v->clock_suspect ? "1" : "0", 0, 0) !=
		    GS_OK || put_cell(w->out, ae, 0, 0) != GS_OK ||
		    put_cell(w->out, ap, 0, 1) != GS_OK)
			r = GS_FAIL(GS_EIO, "cannot write the export");
	}
	json_decref(fields);
	return r;
}

static int
each(void *arg, const struct pf_record_view *v)
{
	struct walk *w = arg;

	w->n++;
	if (gs_progress_due(&w->pg))
		gs_progress_show(&w->pg, "export: %zu records written",
		    w->n - 1);
	return w->csv ? put_csv(w, v) : put_ndjson(w, v);
}

static int
put_header(struct walk *w)
{
	size_t i;

	/* The BOM tells Excel the file is UTF-8. */
	if (fputs("\xef\xbb\xbf", w->out) == EOF ||
	    fputs(w->zh ? "记录编号,类型,网格,版本,表单版本,已删除,创建时间,"
	    "更新时间,采集人," : "uuid,type,grid,rev,form_version,deleted,"
	    "created_at,updated_at,author,", w->out) == EOF)
		return GS_FAIL(GS_EIO, "cannot write the export");
	if (!w->per_field) {
		if (fputs(w->zh ? "字段," : "fields,", w->out) == EOF)
			return GS_FAIL(GS_EIO, "cannot write the export");
	} else {
		/* Labels are text from published forms (reference add):
		 * defused like any other text cell. */
		for (i = 0; i < w->ncols; i++)
			if (put_cell(w->out, w->zh ? gs_field_label(
			    w->cols[i]) : gs_field_name(w->cols[i]), 1, 0) !=
			    GS_OK)
				return GS_FAIL(GS_EIO,
				    "cannot write the export");
	}
	if (fputs(w->zh ? "时间存疑,附件应有,附件已到\r\n" :
	    "clock_suspect,attachments_expected,attachments_present\r\n",
	    w->out) == EOF)
		return GS_FAIL(GS_EIO, "cannot write the export");
	return GS_OK;
}

/* Adds the fields of form f that no column names yet. */
static int
add_columns(struct walk *w, const struct gs_form *f, size_t cap)
{
	size_t i, j, nf = gs_form_nfields(f);
	const struct gs_field *fd;

	for (i = 0; i < nf; i++) {
		fd = gs_form_field_at(f, i);
		for (j = 0; j < w->ncols; j++)
			if (strcmp(gs_field_name(w->cols[j]),
			    gs_field_name(fd)) == 0)
				break;
		if (j < w->ncols)
			continue;
		if (w->ncols == cap)
			return GS_FAIL(GS_EINTERNAL, "export columns");
		w->cols[w->ncols++] = fd;
	}
	return GS_OK;
}

/*
 * The per-field columns of type (see struct walk): the newest form's
 * fields, then, version by version downwards, the fields an older version
 * has and no newer one does.  A form published without a field must not
 * take that field's values out of the sheet for the records collected
 * with it.
 */
static int
columns(const struct gs_schema *schema, const char *type, struct walk *w)
{
	const struct gs_form *newest = gs_schema_form(schema, type), *f;
	size_t cap = 0;
	int v, r;

	for (v = gs_form_version(newest); v >= 1; v--)
		if ((f = gs_schema_form_version(schema, type, v)) != NULL)
			cap += gs_form_nfields(f);
	if ((w->cols = gs_calloc(cap > 0 ? cap : 1, sizeof(*w->cols))) ==
	    NULL)
		return GS_FAIL(GS_ENOMEM, "export columns");
	if ((r = add_columns(w, newest, cap)) != GS_OK)
		return r;
	for (v = gs_form_version(newest) - 1; v >= 1; v--)
		if ((f = gs_schema_form_version(schema, type, v)) != NULL &&
		    (r = add_columns(w, f, cap)) != GS_OK)
			return r;
	return GS_OK;
}

int
pf_export(struct pf_store *st, const struct gs_schema *schema,
    const char *type, const char *grid, enum pf_export_format format,
    FILE *out, size_t *count)
{
	struct walk w;
	int r;

	memset(&w, 0, sizeof(w));
	w.st = st;
	w.out = out;
	w.csv = format == PF_EXPORT_CSV || format == PF_EXPORT_CSV_ZH;
	w.zh = format == PF_EXPORT_CSV_ZH;
	gs_buf_init(&w.cell, 1u << 20);
	gs_progress_init(&w.pg);
	/* Records scrolling on the terminal are their own progress; a line
	 * redrawn among them would garble them. */
	if (isatty(fileno(out)))
		w.pg.on = 0;
	if (w.csv && type != NULL && schema != NULL &&
	    gs_schema_form(schema, type) != NULL) {
		w.per_field = 1;
		if ((r = columns(schema, type, &w)) != GS_OK)
			goto out;
	}
	if (w.csv && (r = put_header(&w)) != GS_OK)
		goto out;
	r = st->ops->record_each(st, type, grid, each, &w);
	if (r == GS_OK && fflush(out) != 0)
		r = GS_FAIL(GS_EIO, "cannot write the export");
out:
	gs_progress_done(&w.pg);
	if (count != NULL)
		*count = w.n;
	gs_buf_release(&w.cell);
	gs_free(w.cols);
	return r;
}
