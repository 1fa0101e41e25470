/*
 * error.c - lookups into the error table, and the per-thread error detail.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "core/log.h"
#include "core/banned.h"

struct row {
	const char *code;
	const char *msg;
	enum gs_error_class cls;
	int exit_code;
	int http;
};

static const struct row table[] = {
#define GS_X_ROW(name, num, cls, ex, http, code, msg) \
	[num] = { code, msg, GS_CLASS_##cls, ex, http },
	GS_ERROR_TABLE(GS_X_ROW)
#undef GS_X_ROW
};

static const struct row *
lookup(int err)
{
	if (err < 0 || err >= GS_ERROR_COUNT_ || table[err].code == NULL)
		return NULL;
	return &table[err];
}

const char *
gs_strerror(int err)
{
	const struct row *r = lookup(err);

	return r ? r->msg : "unknown error";
}

const char *
gs_error_code(int err)
{
	const struct row *r = lookup(err);

	return r ? r->code : "unknown";
}

enum gs_error_class
gs_error_class(int err)
{
	const struct row *r = lookup(err);

	return r ? r->cls : GS_CLASS_ALERT;
}

int
gs_error_exit(int err)
{
	const struct row *r = lookup(err);

	return r ? r->exit_code : GS_EX_SOFTWARE;
}

int
gs_error_http(int err)
{
	const struct row *r = lookup(err);

	return r ? r->http : 500;
}

int
gs_error_from_code(const char *code)
{
	int i;

	if (code == NULL)
		return GS_EPROTOCOL;
	for (i = 0; i < GS_ERROR_COUNT_; i++)
		if (table[i].code != NULL && strcmp(table[i].code, code) == 0)
			return i;
	return GS_EPROTOCOL;
}

/* One detail per thread: the platform serves from a thread pool. */
static _Thread_local char detail[512];
static _Thread_local int detail_code = -1;

int
gs_fail_at(const char *file, int line, const char *func, int code,
    const char *fmt, ...)
{
	char full[4 * sizeof(detail)];
	va_list ap;
	int n;

	/*
	 * Formatted apart from detail: a caller may quote the last detail
	 * (GS_FAIL(r, "...: %s", gs_errmsg(r))), and vsnprintf into its own
	 * argument garbled the line.  A line too long for detail (a path
	 * of a few hundred bytes) keeps its start and its end, where the
	 * cause ("unable to open database file") is, and drops the middle.
	 */
	va_start(ap, fmt);
	n = vsnprintf(full, sizeof(full), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(full))
		n = sizeof(full) - 1;
	if ((size_t)n < sizeof(detail)) {
		memcpy(detail, full, (size_t)n + 1);
	} else {
		size_t head = sizeof(detail) / 4, tail = sizeof(detail) -
		    head - sizeof("...");

		memcpy(detail, full, head);
		memcpy(detail + head, "...", 3);
		memcpy(detail + head + 3, full + n - tail, tail + 1);
	}
	detail_code = code;
	gs_log(GS_LOG_DEBUG, "%s:%d %s: %s: %s", file, line, func,
	    gs_error_code(code), detail);
	return code;
}

const char *
gs_errmsg(int err)
{
	if (detail_code == err && err != GS_OK && detail[0] != '\0')
		return detail;
	return gs_strerror(err);
}

void
gs_errmsg_clear(void)
{
	detail[0] = '\0';
	detail_code = -1;
}
