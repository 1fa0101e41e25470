/*
 * progress.c - the progress line of long commands (core/progress.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/util.h"
#include "core/banned.h"

void
gs_progress_init(struct gs_progress *p)
{
	const char *e = getenv("GRIDSYNC_PROGRESS_MS");
	uint64_t ms = GS_PROGRESS_MS;

	memset(p, 0, sizeof(*p));
	/* Scripts and tests read stderr: a line redrawn with \r is for a
	 * person watching, only. */
	p->on = isatty(STDERR_FILENO);
	if (e != NULL && gs_parse_u64(e, 60000, &ms) != GS_OK)
		ms = GS_PROGRESS_MS;
	p->every_us = (int64_t)ms * 1000;
	p->last_us = gs_mono_us();
}

int
gs_progress_due(const struct gs_progress *p)
{
	return p->on && gs_mono_us() - p->last_us >= p->every_us;
}

void
gs_progress_show(struct gs_progress *p, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	int n;
	size_t w;

	if (!p->on)
		return;
	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	w = strlen(gs_log_program()) + 2 + strlen(text);
	/* A shorter line than the last one would leave its tail behind. */
	fprintf(stderr, "\r%s: %s%*s", gs_log_program(), text,
	    p->width > w ? (int)(p->width - w) : 0, "");
	if (w > p->width)
		p->width = w;
	fflush(stderr);
	p->shown = 1;
	p->last_us = gs_mono_us();
}

void
gs_progress_done(struct gs_progress *p)
{
	if (!p->on || !p->shown)
		return;
	fprintf(stderr, "\r%*s\r", (int)p->width, "");
	fflush(stderr);
	p->shown = 0;
	p->width = 0;
}
