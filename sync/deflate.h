/*
 * deflate.h - the zlib seam: bounded compression and decompression.
 * sync/deflate.c is the only file of the project that includes <zlib.h>.
 *
 * The stream format is a zlib stream (RFC 1950: 2-byte header, deflate
 * data, Adler-32 trailer), window 15, no preset dictionary.  Inflating
 * never trusts the input: the caller states the exact decompressed size
 * (from the signed envelope header), the output never grows past it, and
 * anything else - a bomb, a stream that is shorter or longer than declared,
 * a truncated stream, bytes after the end of the stream, a gzip or raw
 * stream, a bad checksum - is GS_EINFLATE.
 */
#ifndef GS_DEFLATE_H
#define GS_DEFLATE_H

#include <stddef.h>

#include "core/buf.h"

/* deflate cannot do better than about 1032:1 (258-byte matches coded in
 * 2 bits), so a declared size above GS_INFLATE_MAX_RATIO * compressed
 * bytes (+ a small constant for tiny streams) is a lie we refuse before
 * allocating anything. */
#define GS_INFLATE_MAX_RATIO 1032

/* The level used for batches.  Level 2 (zlib's fast matcher) compresses
 * a batch of 1,000 gridgen persons (417 bytes each) to 82 bytes a record
 * in 2.9 ms where level 6 takes 8.1 ms for 65 bytes: deflate was the
 * largest single cost of sealing, and the wire stays well under its
 * 150-byte target (bench/RESULTS.md, "End to end"). */
#define GS_DEFLATE_LEVEL 2

/* Appends the zlib stream of in[0..n) at level (1..9, or 0 for
 * GS_DEFLATE_LEVEL) to out.  GS_OK; GS_ETOOBIG when the stream would pass
 * out->max (out is then as before); GS_ENOMEM; GS_EINVAL for a bad level;
 * GS_EINTERNAL if zlib fails. */
int gs_deflate(struct gs_buf *out, const void *in, size_t n, int level);

/* Appends exactly plain_len decompressed bytes of the zlib stream
 * in[0..n) to out.  The whole input must be one complete zlib stream that
 * decompresses to exactly plain_len bytes.
 *   GS_OK
 *   GS_EINFLATE  malformed, truncated, trailing bytes, bad checksum, more or
 *                fewer than plain_len bytes, plain_len impossible for n
 *                (beyond GS_INFLATE_MAX_RATIO), or plain_len does not fit
 *                in out (out->max): the size checks come first, before
 *                anything is allocated
 *   GS_ENOMEM
 * On failure out is as before (len unchanged).  Never allocates more than
 * plain_len + 1 bytes beyond what out held. */
int gs_inflate(struct gs_buf *out, const void *in, size_t n,
    size_t plain_len);

#endif
