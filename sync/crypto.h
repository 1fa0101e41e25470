/*
 * crypto.h - the libsodium seam.  sync/crypto.c is the only file of the
 * project that includes <sodium.h>; everything else calls these.
 */
#ifndef GS_CRYPTO_H
#define GS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* Initializes libsodium once per process (thread-safe, idempotent) and
 * disables core dumps so secrets never reach a core file.  GS_OK or
 * GS_ECRYPTO.  Every gs_crypto_* and gs_random call works only after it. */
int gs_crypto_init(void);

/* n unpredictable bytes. */
void gs_random(void *buf, size_t n);
/* A uniform number in [0, upper). */
uint32_t gs_random_uniform(uint32_t upper);

#endif
