/*
 * deflate.c - the zlib seam: bounded compression and decompression.
 *
 * Both directions work in one shot on buffers that are already in memory
 * (envelopes are capped at a few MiB), which keeps the inflate loop short
 * enough to read at a glance.  That matters: unbounded or retrying inflate
 * loops are a classic source of bombs and hangs (QEMU CVE-2023-3255).
 */
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <libdeflate.h>
#include <zlib.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "deflate.h"
#include "core/banned.h"

/* zlib counts in uInt; feed it in slices no larger than this. */
#define SLICE ((size_t)UINT_MAX)

static size_t
min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/*
 * zlib's blocks come from us: its state holds the data in the clear (the
 * window, the pending output), which is residents' data, so each block is
 * wiped before it is freed (zlib's own free would leave it in the heap).
 * A block's size sits in front of it; the front is 16 bytes to keep the
 * alignment malloc gives.
 */
#define ZFRONT 16

/* A block of n bytes with its size in front (for wiped_free), or NULL. */
static void *
wiped_alloc(size_t n)
{
	unsigned char *p;

	if (n > SIZE_MAX - ZFRONT || (p = gs_malloc(n + ZFRONT)) == NULL)
		return NULL;
	memcpy(p, &n, sizeof(n));
	return p + ZFRONT;
}

/* Wipes a block of wiped_alloc, all of it, and frees it. */
static void
wiped_free(void *q)
{
	unsigned char *p;
	size_t n;

	if (q == NULL)
		return;
	p = (unsigned char *)q - ZFRONT;
	memcpy(&n, p, sizeof(n));
	explicit_bzero(q, n);
	gs_free(p);
}

static voidpf
z_alloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	if (size != 0 && items > (SIZE_MAX - ZFRONT) / size)
		return Z_NULL;
	return wiped_alloc((size_t)items * size);
}

static void
z_free(voidpf opaque, voidpf q)
{
	(void)opaque;
	wiped_free(q);
}

/* libdeflate's memory goes through gs_malloc (failure injection) and is
 * wiped when freed, as zlib's is: its matcher's tables are made from the
 * plaintext.  libdeflate takes one allocator for the whole process, set
 * once before its first compressor or decompressor. */
static pthread_once_t ld_once = PTHREAD_ONCE_INIT;

static void
ld_setup(void)
{
	libdeflate_set_memory_allocator(wiped_alloc, wiped_free);
}

/* The default level: libdeflate's whole-buffer compressor, same zlib
 * stream format (RFC 1950), which zlib's inflate on the platform reads. */
static int
deflate_default(struct gs_buf *out, const void *in, size_t n)
{
	struct libdeflate_compressor *c;
	size_t start = out->len, bound, room, got;
	int r;

	(void)pthread_once(&ld_once, ld_setup);
	if ((c = libdeflate_alloc_compressor(GS_DEFLATE_FAST_LEVEL)) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory (deflate)");
	/* The bound is the worst case for incompressible input; reserve it
	 * within the cap, or what the cap allows: a stream that does not
	 * fit what the cap allows is over the cap. */
	bound = libdeflate_zlib_compress_bound(c, n);
	room = out->max - out->len;
	if ((r = gs_buf_reserve(out, min_size(bound, room))) != GS_OK)
		goto out;
	got = libdeflate_zlib_compress(c, in, n, out->data + start,
	    min_size(bound, room));
	if (got == 0) {
		/* Left as before: the compressor may have written some. */
		if (out->secret)
			explicit_bzero(out->data + start,
			    min_size(bound, room));
		out->data[start] = '\0';
		r = bound <= room ? GS_FAIL(GS_EINTERNAL, "deflate failed")
				  : GS_FAIL(GS_ETOOBIG,
				      "compressed batch exceeds %zu bytes",
				      out->max);
		goto out;
	}
	out->len = start + got;
	out->data[out->len] = '\0';
	r = GS_OK;
out:
	libdeflate_free_compressor(c);
	return r;
}

int
gs_deflate(struct gs_buf *out, const void *in, size_t n, int level)
{
	z_stream zs;
	size_t start = out->len, bound, room;
	int r = GS_EINTERNAL, zr, inited = 0;

	if (level < 0 || level > 9)
		return GS_FAIL(
		    GS_EINVAL, "deflate level %d not in 0..9", level);
	if (n >= SLICE)
		return GS_FAIL(
		    GS_ETOOBIG, "%zu bytes is too much to deflate", n);
	if (level == 0)
		return deflate_default(out, in, n);
	memset(&zs, 0, sizeof zs);
	zs.zalloc = z_alloc;
	zs.zfree = z_free;
	if (deflateInit(&zs, level) != Z_OK) {
		r = GS_FAIL(GS_ENOMEM, "deflateInit failed");
		goto out;
	}
	inited = 1;
	/* deflateBound is the worst case for incompressible input; reserve
	 * it within the cap, or what the cap allows, and let deflate tell us
	 * when that was not enough. */
	bound = deflateBound(&zs, n > ULONG_MAX ? ULONG_MAX : (uLong)n);
	room = out->max - out->len;
	if ((r = gs_buf_reserve(out, min_size(bound, room))) != GS_OK)
		goto out;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)n;
	for (;;) {
		zs.next_out = (Bytef *)out->data + out->len;
		zs.avail_out = (uInt)min_size(out->cap - 1 - out->len, SLICE);
		zr = deflate(&zs, Z_FINISH);
		out->len = (size_t)((char *)zs.next_out - out->data);
		if (zr == Z_STREAM_END)
			break;
		if ((zr != Z_OK && zr != Z_BUF_ERROR) || zs.avail_out != 0) {
			/* With all input given and Z_FINISH, deflate only stops
			 * early for want of output space. */
			r = GS_FAIL(GS_EINTERNAL, "deflate failed (%d)", zr);
			goto out;
		}
		if (out->len >= out->max) {
			r = GS_FAIL(GS_ETOOBIG,
			    "compressed batch exceeds %zu bytes", out->max);
			goto out;
		}
		/* Only reached when the cap cut the first reserve short. */
		if ((r = gs_buf_reserve(out,
			 min_size(out->max - out->len, out->cap))) != GS_OK)
			goto out;
	}
	out->data[out->len] = '\0';
	r = GS_OK;
out:
	if (inited)
		deflateEnd(&zs);
	if (r != GS_OK) {
		/* Leave the buffer as it was: no half stream. */
		gs_buf_truncate(out, start);
	}
	return r;
}

/* inflate_fast's "not decided here", never a GS_ code (those are >= 0). */
#define ASK_ZLIB (-1)

/*
 * The common case, a good stream: libdeflate decompresses the whole
 * buffer in one call, in about a third of zlib's instructions (a batch of
 * 1,000 gridgen persons: 8.8k a record with zlib).  It checks what zlib
 * checks (the header, the Adler-32, distances within what was written)
 * and is told exactly plain_len bytes of room: a longer stream stops
 * there.  Anything but a stream that ends exactly at n with exactly
 * plain_len bytes gives ASK_ZLIB, and zlib, the reference, decides and
 * says what is wrong: so the streams accepted and the errors given are
 * zlib's, as before.  out has room for plain_len (reserved).
 */
static int
inflate_fast(struct gs_buf *out, const void *in, size_t n, size_t plain_len)
{
	struct libdeflate_decompressor *d;
	enum libdeflate_result lr;
	size_t used = 0, got = 0;

	(void)pthread_once(&ld_once, ld_setup);
	if ((d = libdeflate_alloc_decompressor()) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory (inflate)");
	lr = libdeflate_zlib_decompress_ex(d, in, n, out->data + out->len,
	    plain_len, &used, &got);
	libdeflate_free_decompressor(d);
	if (lr != LIBDEFLATE_SUCCESS || used != n || got != plain_len) {
		/* What it wrote is not kept: zlib writes over it, or the
		 * failure path wipes it. */
		return ASK_ZLIB;
	}
	out->len += plain_len;
	out->data[out->len] = '\0';
	return GS_OK;
}

int
gs_inflate(struct gs_buf *out, const void *in, size_t n, size_t plain_len)
{
	z_stream zs;
	size_t start = out->len;
	unsigned char extra;
	int r = GS_EINTERNAL, zr, inited = 0;

	/* Every claim is checked before anything is allocated: the size
	 * must fit the caller's cap, and must be possible at all for this
	 * much compressed input (deflate's best ratio is about 1032:1; the
	 * constant covers the zlib header and trailer of tiny streams). */
	if (plain_len > out->max - out->len)
		return GS_FAIL(GS_EINFLATE,
		    "declared plaintext of %zu bytes exceeds the cap of %zu",
		    plain_len, out->max - out->len);
	if (n < 2 || plain_len / GS_INFLATE_MAX_RATIO > n)
		return GS_FAIL(GS_EINFLATE,
		    "%zu compressed bytes cannot hold %zu bytes", n, plain_len);
	if (n > SLICE || plain_len >= SLICE)
		return GS_FAIL(GS_EINFLATE, "stream too large for one pass");
	if ((r = gs_buf_reserve(out, plain_len)) != GS_OK)
		return r;
	if ((r = inflate_fast(out, in, n, plain_len)) != ASK_ZLIB)
		return r;
	memset(&zs, 0, sizeof zs);
	zs.zalloc = z_alloc;
	zs.zfree = z_free;
	/* 15: the zlib wrapper only; no gzip or raw auto-detection. */
	if (inflateInit2(&zs, 15) != Z_OK) {
		r = GS_FAIL(GS_ENOMEM, "inflateInit failed");
		goto out;
	}
	inited = 1;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)n;
	zs.next_out = (Bytef *)out->data + out->len;
	zs.avail_out = (uInt)plain_len;
	/*
	 * Everything is in memory, so one inflate call with Z_FINISH either
	 * reaches the end of the stream or it does not: there is no "call
	 * again" case, and hence no loop to spin in.  When the output space
	 * (exactly plain_len) runs out first, zlib says Z_BUF_ERROR: the
	 * stream is longer than declared.
	 */
	zr = inflate(&zs, Z_FINISH);
	if (zr == Z_BUF_ERROR && zs.avail_out == 0) {
		/* Exactly full but not at the end: is there more output to
		 * come, or only the end of the stream?  Offer one scratch byte
		 * that is never kept.  (Do not judge by avail_in: zlib may hold
		 * the last bits of the stream in its bit buffer.) */
		zs.next_out = &extra;
		zs.avail_out = 1;
		zr = inflate(&zs, Z_FINISH);
		if (zs.avail_out == 0) {
			r = GS_FAIL(GS_EINFLATE,
			    "stream is longer than the declared %zu bytes",
			    plain_len);
			goto out;
		}
	}
	if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT) {
		r = GS_FAIL(GS_EINFLATE, "corrupt zlib stream%s%s",
		    zs.msg ? ": " : "", zs.msg ? zs.msg : "");
		goto out;
	}
	if (zr == Z_MEM_ERROR) {
		r = GS_FAIL(GS_ENOMEM, "inflate out of memory");
		goto out;
	}
	if (zr != Z_STREAM_END) {
		/* Z_BUF_ERROR with output space left: the input ran out. */
		r = GS_FAIL(GS_EINFLATE, "stream is truncated");
		goto out;
	}
	if (zs.total_out != plain_len) {
		r = GS_FAIL(GS_EINFLATE, "stream gives %lu bytes, %zu declared",
		    zs.total_out, plain_len);
		goto out;
	}
	if (zs.avail_in != 0) {
		r = GS_FAIL(GS_EINFLATE, "%u bytes after the end of the stream",
		    zs.avail_in);
		goto out;
	}
	out->len += plain_len;
	out->data[out->len] = '\0';
	r = GS_OK;
out:
	if (inited)
		inflateEnd(&zs);
	if (r != GS_OK && out->data != NULL) {
		/* Nothing of a refused stream is left behind. */
		memset(out->data + start, 0, plain_len);
		gs_buf_truncate(out, start);
	}
	return r;
}
