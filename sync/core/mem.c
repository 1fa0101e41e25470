/*
 * mem.c - allocation wrappers with a failure-injection countdown.
 */
#include <stdlib.h>
#include <string.h>

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
