/*
 * log.c - leveled logging to stderr, one write per line so that lines from
 * the platform's threads do not interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/banned.h"

static const char *program = "gridsync";
static int level = -1;

void
gs_log_set_program(const char *name)
{
	program = name;
}

const char *
gs_log_program(void)
{
	return program;
}

void
gs_log_set_level(enum gs_log_level l)
{
	level = (int)l;
}

static int
current_level(void)
{
	const char *e;

	if (level >= 0)
		return level;
	e = getenv("GRIDSYNC_LOG");
	if (e == NULL || strcmp(e, "warning") == 0)
		level = GS_LOG_WARNING;
	else if (strcmp(e, "error") == 0)
		level = GS_LOG_ERROR;
	else if (strcmp(e, "info") == 0)
		level = GS_LOG_INFO;
	else if (strcmp(e, "debug") == 0)
		level = GS_LOG_DEBUG;
	else
		level = GS_LOG_WARNING;
	return level;
}

int
gs_log_enabled(enum gs_log_level l)
{
	return (int)l <= current_level();
}

void
gs_log(enum gs_log_level l, const char *fmt, ...)
{
	static const char *names[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;
	int n, m;

	if (!gs_log_enabled(l))
		return;
	n = snprintf(line, sizeof(line), "%s: %s: ", program, names[l]);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nowhere left to report a failing stderr. */
	}
}
