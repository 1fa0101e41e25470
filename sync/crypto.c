/*
 * crypto.c - the libsodium seam: every call into libsodium goes through
 * this file, where its results become our error codes.
 */
#include <sys/resource.h>

#include <sodium.h>

#include "core/error.h"
#include "crypto.h"
#include "core/banned.h"

int
gs_crypto_init(void)
{
	struct rlimit rl = { 0, 0 };

	/* sodium_init is thread-safe and returns 1 when already done. */
	if (sodium_init() < 0)
		return GS_FAIL(GS_ECRYPTO, "libsodium failed to initialize");
	/* Secrets live in this process's memory: never dump it. */
	(void)setrlimit(RLIMIT_CORE, &rl);
	return GS_OK;
}

void
gs_random(void *buf, size_t n)
{
	randombytes_buf(buf, n);
}

uint32_t
gs_random_uniform(uint32_t upper)
{
	return randombytes_uniform(upper);
}
