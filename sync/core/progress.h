/*
 * progress.h - one progress line on stderr while long work runs, on a
 * terminal only.
 *
 * The style of `gridagent sync`: "\rPROGRAM: TEXT", redrawn in place at
 * most every GS_PROGRESS_MS milliseconds (250; $GRIDSYNC_PROGRESS_MS
 * overrides it, 0 to 60000: tests make it small), never before that much
 * time has passed since gs_progress_init (quick work shows nothing), and
 * wiped at the end so the next line on stderr starts clean.  When stderr
 * is not a terminal (a script, a test, a log file) nothing is ever
 * written: stderr stays the command's errors and summary alone.  Data on
 * stdout is never touched.
 *
 *	struct gs_progress p;
 *
 *	gs_progress_init(&p);
 *	for (...) {
 *		...
 *		if (gs_progress_due(&p))
 *			gs_progress_show(&p, "export: %zu records", n);
 *	}
 *	gs_progress_done(&p);
 *
 * The struct is the caller's memory; nothing to free.
 */
#ifndef GS_CORE_PROGRESS_H
#define GS_CORE_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

#define GS_PROGRESS_MS 250

struct gs_progress {
	int on;			/* stderr is a terminal */
	int64_t every_us;	/* the least time between two redraws */
	int64_t last_us;	/* the last redraw, or gs_progress_init */
	int shown;		/* a line was drawn and not wiped yet */
	/* Columns the line on screen takes: a caller may set it to cover a
	 * line of its own that is on screen (a shorter one would leave its
	 * tail behind). */
	size_t width;
};

/* Off unless stderr is a terminal; reads $GRIDSYNC_PROGRESS_MS. */
void gs_progress_init(struct gs_progress *p);

/* 1 when p is on and a redraw is due, else 0.  Cheap: call it per item. */
int gs_progress_due(const struct gs_progress *p);

/* Draws "\rPROGRAM: TEXT" over the last line drawn (nothing when p is
 * off) and restarts the interval. */
void gs_progress_show(struct gs_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Wipes the line when p drew one; p may be shown again after. */
void gs_progress_done(struct gs_progress *p);

#endif
