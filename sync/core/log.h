/*
 * log.h - leveled logging to stderr.
 *
 * Lines look like "gridplatform: warning: message".  The level comes from
 * gs_log_set_level() or, at the first call, from $GRIDSYNC_LOG
 * (error|warning|info|debug).  Never log personal data: callers pass uuids
 * and field names, not field values.
 */
#ifndef GS_CORE_LOG_H
#define GS_CORE_LOG_H

enum gs_log_level {
	GS_LOG_ERROR = 0,
	GS_LOG_WARNING,
	GS_LOG_INFO,
	GS_LOG_DEBUG
};

/* The program name printed before each line; the string must outlive us. */
void gs_log_set_program(const char *name);
const char *gs_log_program(void);
void gs_log_set_level(enum gs_log_level level);
int gs_log_enabled(enum gs_log_level level);
void gs_log(enum gs_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
