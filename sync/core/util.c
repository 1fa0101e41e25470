/*
 * util.c - dependency-free helpers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "core/util.h"
#include "core/banned.h"
#include "core/banned.h"

void
gs_put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

void
gs_put_le32(unsigned char *p, uint32_t v)
{
	int i;

	for (i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

void
gs_put_le64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

uint16_t
gs_get_le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t
gs_get_le32(const unsigned char *p)
{
	uint32_t v = 0;
	int i;

	for (i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t
gs_get_le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void
gs_hex_encode(char *out, const unsigned char *in, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
gs_hex_decode(unsigned char *out, size_t n, const char *in)
{
	size_t i;
	int hi, lo;

	if (strlen(in) != 2 * n)
		return GS_EPARSE;
	for (i = 0; i < n; i++) {
		if ((hi = hexval(in[2 * i])) < 0 ||
		    (lo = hexval(in[2 * i + 1])) < 0)
			return GS_EPARSE;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return GS_OK;
}

int
gs_hex_is_lower(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		    (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[len] == '\0';
}

char *
gs_id_lower(char *s)
{
	char *p;

	for (p = s; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		    (*p >= 'A' && *p <= 'F') || *p == '-'))
			return s;
	for (p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'F')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

int64_t
gs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
gs_now_floor_ms(void)
{
	int64_t t = gs_now_ms();

	return t > GS_TIME_FLOOR_MS ? t : GS_TIME_FLOOR_MS;
}

int64_t
gs_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
gs_time_format(char *out, size_t outlen, int64_t ms)
{
	/* Floor division: a time before 1970 (a device clock after a
	 * battery was out) is a second earlier and a positive millisecond. */
	int64_t sec = ms / 1000, milli = ms % 1000;
	time_t t;
	struct tm tm;

	if (milli < 0) {
		milli += 1000;
		sec--;
	}
	t = (time_t)sec;
	memset(&tm, 0, sizeof(tm));
	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, outlen, "(time %lld ms)", (long long)ms);
		return;
	}
	snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, (int)milli);
}

const char *
gs_time_text(char *out, size_t outlen, int64_t ms, int flags)
{
	char full[32];

	if (ms == 0 && (flags & GS_TIME_ZERO_NEVER)) {
		snprintf(out, outlen, "never");
		return out;
	}
	/* The wire's form without ".123": one formatter, one calendar. */
	gs_time_format(full, sizeof(full), ms);
	if (strlen(full) == 24 && full[19] == '.')
		snprintf(out, outlen, "%.19sZ", full);
	else
		snprintf(out, outlen, "%s", full);
	return out;
}

const char *
gs_size_text(char *out, size_t outlen, uint64_t bytes)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	size_t i = 0;

	if (bytes < 1024) {
		snprintf(out, outlen, "%llu B", (unsigned long long)bytes);
		return out;
	}
	v /= 1024.0;
	/* 1023.95 KiB would print as "1024.0 KiB": go up a unit first. */
	while (v >= 1023.95 && i + 1 < sizeof(unit) / sizeof(unit[0])) {
		v /= 1024.0;
		i++;
	}
	snprintf(out, outlen, "%.1f %s", v, unit[i]);
	return out;
}

const char *
gs_duration_text(char *out, size_t outlen, int64_t ms)
{
	const char *sign = ms < 0 ? "-" : "";
	uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
	uint64_t s = a / 1000;

	if (a < 1000)
		snprintf(out, outlen, "%s%llu ms", sign, (unsigned long long)a);
	else if (s < 120)
		snprintf(out, outlen, "%s%llu s", sign, (unsigned long long)s);
	else if (s < 3600)
		snprintf(out, outlen, "%s%llu min", sign,
		    (unsigned long long)(s / 60));
	else if (s < 48 * 3600)
		snprintf(out, outlen, "%s%llu h %llu min", sign,
		    (unsigned long long)(s / 3600),
		    (unsigned long long)(s % 3600 / 60));
	else
		snprintf(out, outlen, "%s%llu d %llu h", sign,
		    (unsigned long long)(s / 86400),
		    (unsigned long long)(s % 86400 / 3600));
	return out;
}

int
gs_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return GS_EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return GS_EINVAL;
	*out = v;
	return GS_OK;
}

int
gs_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	long long v;
	char *end;

	if (s == NULL || !(*s == '-' || (*s >= '0' && *s <= '9')))
		return GS_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return GS_EINVAL;
	*out = v;
	return GS_OK;
}

size_t
gs_strlcpy(char *out, const char *src, size_t outlen)
{
	size_t n = strlen(src);

	if (outlen > 0) {
		size_t c = n < outlen - 1 ? n : outlen - 1;

		memcpy(out, src, c);
		out[c] = '\0';
	}
	return n;
}

int
gs_stdout_error(void)
{
	if (fflush(stdout) != 0)
		return errno != 0 ? errno : EIO;
	return ferror(stdout) ? EIO : 0;
}
