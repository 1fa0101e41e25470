/*
 * util.h - small helpers with no dependencies: little-endian integers, hex,
 * time, strict number parsing.
 */
#ifndef GS_CORE_UTIL_H
#define GS_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

void gs_put_le16(unsigned char *p, uint16_t v);
void gs_put_le32(unsigned char *p, uint32_t v);
void gs_put_le64(unsigned char *p, uint64_t v);
uint16_t gs_get_le16(const unsigned char *p);
uint32_t gs_get_le32(const unsigned char *p);
uint64_t gs_get_le64(const unsigned char *p);

/* Lower-case hex of n bytes into out, which must hold 2n+1 chars. */
void gs_hex_encode(char *out, const unsigned char *in, size_t n);
/* Exactly 2n hex digits (either case) into n bytes: GS_OK or GS_EPARSE. */
int gs_hex_decode(unsigned char *out, size_t n, const char *in);
/* 1 when s is exactly len lower-case hex digits (the wire's spelling of
 * ids, docs/PROTOCOL.md), else 0. */
int gs_hex_is_lower(const char *s, size_t len);
/* An id typed on a command line (a uuid, a device id, a hash, a key id):
 * when s is only hex digits and dashes, its upper-case A-F become lower
 * case, in place (people type ids; the stores and the wire spell them in
 * lower case).  Anything else is left as it is, for the caller's own
 * check to refuse.  Returns s. */
char *gs_id_lower(char *s);

/* Wall clock in milliseconds / seconds since the epoch (UTC). */
int64_t gs_now_ms(void);

/*
 * The time floor: 2026-01-01T00:00:00Z.  No correct clock reads earlier
 * than the release of this software, so a device clock below it is known
 * to be wrong (a handheld whose battery was out restarts in 1970 or
 * earlier).  Validation judges "not in the future" against
 * max(clock, floor) (gs_now_floor_ms, gs_today_cst), the agent's status
 * tells the worker to set the clock, and the platform flags a record
 * revision whose device times lie below it as clock-suspect.  A release
 * should move it forward to its own date (never back: records saved by
 * the older release must still read as after it).
 */
#define GS_TIME_FLOOR_MS INT64_C(1767225600000)
/* max(gs_now_ms(), GS_TIME_FLOOR_MS): "now" for checks that a date is
 * not in the future, which a clock reset into the past must not fail. */
int64_t gs_now_floor_ms(void);
/* Monotonic clock in microseconds, for durations. */
int64_t gs_mono_us(void);
/* "2026-11-26T07:04:33.123Z" for a millisecond time; out holds 32 chars. */
void gs_time_format(char *out, size_t outlen, int64_t ms);

/*
 * For people (the text output of the command lines; JSON keeps the
 * milliseconds).  Each writes a terminated text into out, which holds
 * GS_TEXT_MAX chars, and returns out.
 *
 * gs_time_text: "2026-11-27T14:05:09Z", ISO 8601 UTC to the second (the
 * milliseconds dropped, rounding down); with GS_TIME_ZERO_NEVER, a time
 * of 0 (a "last done at" never done) is "never".  A time before 1970 is
 * a real time of a wrong clock, shown as such.
 * gs_size_text: "512 B", "293.3 KiB", "20.0 MiB", "1.5 GiB".
 * gs_duration_text: milliseconds as "250 ms", "41 s", "15 min", "2 h 5 min",
 * "3 d 4 h"; a negative one with a leading "-".
 */
#define GS_TEXT_MAX 32
#define GS_TIME_ZERO_NEVER 1
const char *gs_time_text(char *out, size_t outlen, int64_t ms, int flags);
const char *gs_size_text(char *out, size_t outlen, uint64_t bytes);
const char *gs_duration_text(char *out, size_t outlen, int64_t ms);

/*
 * Strict decimal parsing of a whole string: no sign for the unsigned one,
 * no leading space, no trailing junk, range checked.  GS_OK or GS_EINVAL.
 */
/* Flushes stdout: 0 when all it was given reached its file, else the
 * errno of the write that failed (EIO when an earlier one did).  The
 * programs' main() calls it last: output nobody could read is an error. */
int gs_stdout_error(void);

int gs_parse_u64(const char *s, uint64_t max, uint64_t *out);
int gs_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Copies at most outlen-1 bytes and always terminates; returns strlen(src)
 * so truncation is detectable (like strlcpy). */
size_t gs_strlcpy(char *out, const char *src, size_t outlen);

#endif
