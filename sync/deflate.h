/*
 * deflate.h - the zlib seam: bounded compression and decompression.
 * sync/deflate.c is the only file of the project that includes <zlib.h>
 * or <libdeflate.h>.
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

/* The level used for batches, level 0 of gs_deflate: libdeflate's
 * whole-buffer compressor at its level 1, which writes the same zlib
 * stream format (RFC 1950, window 15) as zlib, read by zlib's inflate.
 * It compresses a batch of 1,000 gridgen persons (417 bytes each) to 80
 * bytes a record with about half the instructions of zlib's level 2 (82
 * bytes a record), which had been chosen over level 6 (65 bytes, 2.8
 * times slower): deflate was the largest single cost of sealing
 * (bench/RESULTS.md, "End to end").  The level is not part of the format
 * (docs/PROTOCOL.md section 3). */
#define GS_DEFLATE_FAST_LEVEL 1

/* Appends the zlib stream of in[0..n) to out: at level 0 with libdeflate
 * (GS_DEFLATE_FAST_LEVEL), at level 1..9 with zlib, whose bytes for a
 * given level are what the frozen vectors hold (level 6).  GS_OK;
 * GS_ETOOBIG when the stream would pass out->max (out is then as before);
 * GS_ENOMEM; GS_EINVAL for a bad level; GS_EINTERNAL if the compressor
 * fails. */
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
 * plain_len + 1 bytes beyond what out held.  libdeflate reads a good
 * stream; zlib decides and names what is wrong with any other.  The one
 * difference from zlib alone: a stream whose Huffman tables hold lengths
 * no code uses (which zlib calls malformed) is read, giving the bytes
 * its Adler-32 vouches for. */
int gs_inflate(struct gs_buf *out, const void *in, size_t n,
    size_t plain_len);

#endif
