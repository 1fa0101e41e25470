/*
 * mem.h - allocation for sync/, agent/ and platform/.
 *
 * Every allocation in our code goes through these so that the torture tests
 * can make the Nth one fail (curl's torture mode).  They return NULL on
 * failure like malloc(3); the caller frees with gs_free().
 */
#ifndef GS_CORE_MEM_H
#define GS_CORE_MEM_H

#include <stddef.h>

void *gs_malloc(size_t n);
void *gs_calloc(size_t nmemb, size_t size);
void *gs_realloc(void *p, size_t n);
char *gs_strdup(const char *s);
char *gs_strndup(const char *s, size_t n);
void gs_free(void *p);
/* Wipes the n bytes at p (explicit_bzero), then frees p: for memory that
 * held personal data or keys.  NULL ok. */
void gs_free_wiped(void *p, size_t n);

/*
 * A hint that [p, p + n), memory of ours about to be filled at once (a
 * whole file read into one buffer), may be backed by huge pages: on
 * Linux with transparent huge pages in "madvise" mode (Debian's default)
 * 40 MB then fault in 20 times, not 10,000, which on a virtual machine is
 * a tenth of a bulk import.  Only a hint: nothing happens elsewhere, for
 * less than 4 MiB, or when the kernel says no.
 */
void gs_mem_hint_huge(void *p, size_t n);

/*
 * Torture hook: after `n` more successful allocations every further one
 * fails, until gs_mem_fail_after(-1) turns it off.  Returns how many
 * allocations have failed since the last call.  Not thread-safe: tests only.
 */
long gs_mem_fail_after(long n);

#endif
