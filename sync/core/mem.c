/*
 * mem.c - allocation wrappers with a failure-injection countdown.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "core/mem.h"
#include "core/banned.h"

static long countdown = -1; /* -1: never fail */
static long failed;

static int
should_fail(void)
{
	if (countdown < 0)
		return 0;
	if (countdown == 0) {
		failed++;
		return 1;
	}
	countdown--;
	return 0;
}

void
gs_mem_hint_huge(void *p, size_t n)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
	uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), lo, hi;

	if (p == NULL || n < ((size_t)4 << 20) || pg == 0 ||
	    (pg & (pg - 1)) != 0)
		return;
	/* Whole pages inside the buffer: the kernel wants an aligned
	 * start, and the pages around it may be someone else's. */
	lo = ((uintptr_t)p + pg - 1) & ~(pg - 1);
	hi = ((uintptr_t)p + n) & ~(pg - 1);
	if (hi > lo)
		(void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
	(void)p;
	(void)n;
#endif
}

long
gs_mem_fail_after(long n)
{
	long f = failed;

	countdown = n;
	failed = 0;
	return f;
}

void *
gs_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *
gs_calloc(size_t nmemb, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *
gs_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

char *
gs_strndup(const char *s, size_t n)
{
	char *d;
	size_t len = strnlen(s, n);

	if ((d = gs_malloc(len + 1)) == NULL)
		return NULL;
	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

char *
gs_strdup(const char *s)
{
	return gs_strndup(s, strlen(s));
}

void
gs_free(void *p)
{
	free(p);
}

void
gs_free_wiped(void *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}
