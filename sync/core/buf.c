/*
 * buf.c - capped growable buffer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/banned.h"

void
gs_buf_init(struct gs_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->secret = 0;
	b->dirty = 0;
}

/* How much of a secret buffer's block to wipe: every byte it may have
 * held (core/buf.h), never past the block. */
static size_t
wipe_len(const struct gs_buf *b)
{
	size_t n = b->dirty > b->len + 1 ? b->dirty : b->len + 1;

	return n < b->cap ? n : b->cap;
}

void
gs_buf_init_secret(struct gs_buf *b, size_t max)
{
	gs_buf_init(b, max);
	b->secret = 1;
}

void
gs_buf_release(struct gs_buf *b)
{
	if (b == NULL)
		return;
	if (b->secret && b->data != NULL)
		explicit_bzero(b->data, wipe_len(b));
	gs_free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->dirty = 0;
}

void
gs_buf_reset(struct gs_buf *b)
{
	if (b->secret && b->data != NULL) {
		explicit_bzero(b->data, wipe_len(b));
		b->dirty = 0;
	}
	b->len = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

int
gs_buf_reserve(struct gs_buf *b, size_t n)
{
	size_t need, cap;
	char *p;

	if (n > b->max || b->len > b->max - n)
		return GS_ETOOBIG;
	need = b->len + n + 1; /* room for the terminator */
	if (need <= b->cap) {
		if (need > b->dirty)
			b->dirty = need;
		return GS_OK;
	}
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1;
	if (!b->secret || b->data == NULL) {
		if ((p = gs_realloc(b->data, cap)) == NULL)
			return GS_ENOMEM;
	} else {
		/* Not realloc: it would free the old block unwiped. */
		if ((p = gs_malloc(cap)) == NULL)
			return GS_ENOMEM;
		memcpy(p, b->data, b->len + 1);
		explicit_bzero(b->data, wipe_len(b));
		gs_free(b->data);
	}
	b->data = p;
	b->cap = cap;
	b->dirty = need; /* the new block holds the copy, then what is reserved */
	return GS_OK;
}

int
gs_buf_append(struct gs_buf *b, const void *p, size_t n)
{
	int r;

	if ((r = gs_buf_reserve(b, n)) != GS_OK)
		return r;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return GS_OK;
}

int
gs_buf_puts(struct gs_buf *b, const char *s)
{
	return gs_buf_append(b, s, strlen(s));
}

int
gs_buf_putc(struct gs_buf *b, char c)
{
	return gs_buf_append(b, &c, 1);
}

int
gs_buf_printf(struct gs_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return GS_EINVAL;
	if ((r = gs_buf_reserve(b, (size_t)n)) != GS_OK)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return GS_OK;
}

void
gs_buf_truncate(struct gs_buf *b, size_t n)
{
	if (n < b->len) {
		if (b->len + 1 > b->dirty)
			b->dirty = b->len + 1;
		b->len = n;
		b->data[n] = '\0';
	}
}

char *
gs_buf_detach(struct gs_buf *b, size_t *len)
{
	char *d = b->data;

	if (d == NULL && (d = gs_calloc(1, 1)) == NULL)
		return NULL;
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->dirty = 0;
	return d;
}
