/*
 * gsclock.c - an LD_PRELOAD library for tests: a wall clock set to another
 * time, the way a handheld's clock is after its battery was out (reset to
 * 1970 or earlier) or after it jumped (tests/integration/clock-reset.sh).
 *
 *   GSCLOCK_AT=SECONDS   the wall clock starts at SECONDS since the epoch
 *                        (negative: before 1970) when the program starts,
 *                        and runs on at the real pace from there
 *
 * clock_gettime(CLOCK_REALTIME and _COARSE), gettimeofday and time are
 * moved; the monotonic clocks are not (durations and timeouts stay real).
 * Without GSCLOCK_AT the clock is the real one.  A malformed GSCLOCK_AT
 * ends the program with 64 before main: a test must not run on the real
 * clock believing it is shifted.  Not for anything but tests.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_fn)(clockid_t, struct timespec *);

static clock_fn real_clock;
static int shifted;
static int64_t offset_ns; /* added to the real wall clock */

static int
real_now(clockid_t id, struct timespec *ts)
{
	if (real_clock == NULL)
		real_clock = (clock_fn)dlsym(RTLD_NEXT, "clock_gettime");
	if (real_clock == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real_clock(id, ts);
}

__attribute__((constructor)) static void
gsclock_init(void)
{
	const char *e = getenv("GSCLOCK_AT");
	struct timespec ts;
	long long at;
	char *end;

	if (e == NULL)
		return;
	errno = 0;
	at = strtoll(e, &end, 10);
	/* Years 1 to 9999 at most: gmtime must still answer. */
	if (*e == '\0' || *end != '\0' || errno != 0 ||
	    at < -62135596800LL || at > 253402300799LL) {
		fprintf(stderr, "gsclock: GSCLOCK_AT should be whole seconds "
		    "since the epoch, not '%s'\n", e);
		_exit(64);
	}
	if (real_now(CLOCK_REALTIME, &ts) != 0) {
		fprintf(stderr, "gsclock: cannot read the real clock\n");
		_exit(70);
	}
	offset_ns = ((int64_t)at - (int64_t)ts.tv_sec) * 1000000000 -
	    ts.tv_nsec;
	shifted = 1;
}

/* ts moved by the offset, tv_nsec kept in [0, 1e9). */
static void
shift(struct timespec *ts)
{
	int64_t ns = (int64_t)ts->tv_nsec + offset_ns % 1000000000;
	int64_t s = (int64_t)ts->tv_sec + offset_ns / 1000000000;

	if (ns < 0) {
		ns += 1000000000;
		s--;
	} else if (ns >= 1000000000) {
		ns -= 1000000000;
		s++;
	}
	ts->tv_sec = (time_t)s;
	ts->tv_nsec = (long)ns;
}

int
clock_gettime(clockid_t id, struct timespec *ts)
{
	int r = real_now(id, ts);

	if (r == 0 && shifted &&
	    (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		shift(ts);
	return r;
}

int
gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;

	(void)tz;
	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return -1;
	/* glibc declares tv nonnull. */
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
	return 0;
}

time_t
time(time_t *t)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
		return (time_t)-1;
	if (t != NULL)
		*t = ts.tv_sec;
	return ts.tv_sec;
}
