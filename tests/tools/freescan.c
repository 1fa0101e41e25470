/*
 * freescan.c - an LD_PRELOAD library for tests: counts the heap blocks a
 * program frees while they still hold any of a list of strings (residents'
 * id numbers and phones), i.e. personal data left behind in freed memory.
 *
 *   GS_FREESCAN_MARKS=FILE   the strings, one per line (8 to 63 bytes;
 *                            other lines are ignored; at most 1,024)
 *   GS_FREESCAN_OUT=FILE     where the count is written at exit, as
 *                            "freed N held M" (N blocks freed, M of them
 *                            holding a mark)
 *
 * free() scans the block (all malloc_usable_size bytes of it) before
 * handing it to the C library; realloc() is done as malloc, copy, free,
 * so that a block realloc would have moved and freed is scanned too.
 * Not for sanitizer builds (their allocator must come first), nor for
 * anything but tests.
 */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* glibc's own entry points: no dlsym, which may allocate. */
extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

#define MAX_MARKS 1024
#define MARK_MIN 8
#define MARK_MAX 63

static char marks[MAX_MARKS][MARK_MAX + 1];
static size_t lens[MAX_MARKS];
static int nmarks;
static long nfreed, nheld;
static const char *out_path;

static void
scan(void *p)
{
	size_t n = malloc_usable_size(p);
	int i;

	__atomic_fetch_add(&nfreed, 1, __ATOMIC_RELAXED);
	for (i = 0; i < nmarks; i++)
		if (n >= lens[i] && memmem(p, n, marks[i], lens[i]) != NULL) {
			__atomic_fetch_add(&nheld, 1, __ATOMIC_RELAXED);
			return;
		}
}

void
free(void *p)
{
	if (p == NULL)
		return;
	if (nmarks > 0)
		scan(p);
	__libc_free(p);
}

void *
realloc(void *p, size_t n)
{
	size_t old;
	void *q;

	if (p == NULL)
		return __libc_malloc(n);
	if (n == 0) {
		free(p);
		return NULL;
	}
	if ((q = __libc_malloc(n)) == NULL)
		return NULL;
	old = malloc_usable_size(p);
	memcpy(q, p, old < n ? old : n);
	free(p);
	return q;
}

/* The marks file, read with read(2): a stdio buffer would be freed
 * holding every mark. */
__attribute__((constructor)) static void
load(void)
{
	static char text[MAX_MARKS * (MARK_MAX + 2)];
	const char *path = getenv("GS_FREESCAN_MARKS");
	char *line, *end;
	ssize_t got;
	size_t len = 0;
	int fd;

	out_path = getenv("GS_FREESCAN_OUT");
	if (path == NULL || (fd = open(path, O_RDONLY)) < 0)
		return;
	while (len < sizeof(text) - 1 &&
	    (got = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
		len += (size_t)got;
	close(fd);
	text[len] = '\0';
	for (line = text; *line != '\0' && nmarks < MAX_MARKS; line = end) {
		end = line + strcspn(line, "\n");
		len = (size_t)(end - line);
		if (*end == '\n')
			end++;
		if (len < MARK_MIN || len > MARK_MAX)
			continue;
		memcpy(marks[nmarks], line, len);
		lens[nmarks++] = len;
	}
}

__attribute__((destructor)) static void
report(void)
{
	char line[64];
	int fd, n;

	if (out_path == NULL)
		return;
	n = snprintf(line, sizeof(line), "freed %ld held %ld\n", nfreed,
	    nheld);
	fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0) {
		if (write(fd, line, (size_t)n) != n)
			(void)unlink(out_path);
		close(fd);
	}
}
