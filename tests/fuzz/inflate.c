/*
 * inflate.c - fuzz harness: the bounded inflate of sync/deflate.c.  The
 * first 3 bytes are the declared plain length (little-endian, so at most
 * 16 MiB), the rest the zlib stream; the output cap is 1 MiB, so bombs
 * and lies about the length must be refused without a large allocation.
 */
#include "fuzz.h"

#include "core/buf.h"
#include "core/error.h"
#include "deflate.h"
#include "core/banned.h"

int
FUZZ_ENTRY(inflate)(const uint8_t *data, size_t size)
{
	struct gs_buf out;
	size_t plain;

	if (size < 3)
		return 0;
	plain = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16;
	gs_buf_init(&out, 1 << 20);
	(void)gs_inflate(&out, data + 3, size - 3, plain);
	gs_buf_release(&out);
	return 0;
}
