/*
 * buf.h - a growable byte buffer with a mandatory cap (after curl's dynbuf).
 *
 * Every buffer that holds network or file input has a limit; growing past it
 * fails with GS_ETOOBIG and leaves the buffer as it was.  The data is always
 * NUL-terminated (the terminator is not counted in len and not in max), so a
 * text buffer can be handed to string functions.
 *
 *	struct gs_buf b;
 *	gs_buf_init(&b, 1 << 20);
 *	if ((r = gs_buf_append(&b, p, n)) != GS_OK) goto out;
 *	...
 *	out: gs_buf_release(&b);
 */
#ifndef GS_CORE_BUF_H
#define GS_CORE_BUF_H

#include <stddef.h>

struct gs_buf {
	char *data;  /* NULL until the first append; owned */
	size_t len;  /* bytes used */
	size_t cap;  /* bytes allocated */
	size_t max;  /* the cap: len never exceeds it */
	int secret;  /* gs_buf_init_secret: wiped, see there */
	size_t dirty; /* secret: bytes [0, dirty) may hold data (see there) */
};

/* Caller's memory; no allocation yet. */
void gs_buf_init(struct gs_buf *b, size_t max);
/*
 * The same, for a buffer that will hold personal data or key material in
 * the clear: every block it leaves behind is wiped (explicit_bzero) first.
 * Growing copies into a new block and wipes the old one (realloc(3) would
 * free it as it was: a batch body grew through a dozen such copies, every
 * one of them left in the heap); release and reset wipe every byte the
 * buffer may have held, reset keeping the block.  detach hands the block
 * over unwiped: the caller wipes it.
 *
 * "May have held" is a high-water mark, not the whole block: the most
 * ever reserved (len + n + 1 of every gs_buf_reserve, which every append
 * goes through) and every len the buffer's functions saw (a caller that
 * writes into reserved room sets len; truncate sees the len it drops).
 * A block of 1 MiB holding 600 KB is wiped for 600 KB, not for 1 MiB (the
 * agent's seal wiped about 4 KB per record it never wrote).  A caller may
 * write only into what it reserved, or up to a len it then sets.
 */
void gs_buf_init_secret(struct gs_buf *b, size_t max);
/* Frees the contents (wiped first when secret); the buffer may be reused
 * after gs_buf_init. NULL ok. */
void gs_buf_release(struct gs_buf *b);
/* Forgets the contents but keeps the allocation (wiped first when
 * secret). */
void gs_buf_reset(struct gs_buf *b);

/* GS_OK, GS_ETOOBIG (past max: nothing appended) or GS_ENOMEM. */
int gs_buf_append(struct gs_buf *b, const void *p, size_t n);
int gs_buf_puts(struct gs_buf *b, const char *s);
int gs_buf_putc(struct gs_buf *b, char c);
int gs_buf_printf(struct gs_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Makes room for n more bytes without changing len. */
int gs_buf_reserve(struct gs_buf *b, size_t n);
/* Drops bytes from the end: len becomes n (n <= len). */
void gs_buf_truncate(struct gs_buf *b, size_t n);

/* Hands the data to the caller (free with gs_free); the buffer is empty
 * afterwards.  Returns an allocated "" when nothing was appended, NULL when
 * that allocation fails. */
char *gs_buf_detach(struct gs_buf *b, size_t *len);

#endif
