/*
 * uuid.h - UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, 74
 * random bits.  Time-ordered, so records made on one device sort by
 * creation and index well.
 */
#ifndef GS_UUID_H
#define GS_UUID_H

#include <stdint.h>

#define GS_UUID_LEN 36 /* text form without the terminator */

/* Writes "0190a6e2-...-..." (lower case) into out[37].  Needs
 * gs_crypto_init().  Monotonic within a process: two ids made in the same
 * millisecond still sort in the order they were made. */
void gs_uuid_v7(char out[GS_UUID_LEN + 1]);
/* Makes 16 raw bytes of a UUIDv7. */
void gs_uuid_v7_bytes(unsigned char out[16]);
/* GS_OK when s is a canonical lower- or upper-case uuid, else GS_EINVAL. */
int gs_uuid_parse(const char *s, unsigned char out[16]);
void gs_uuid_format(char out[GS_UUID_LEN + 1], const unsigned char in[16]);

#endif
