/*
 * receipt.h - the platform's signed receipt for one batch.
 *
 * Binary form (GS_RECEIPT_BYTES = 209; integers little-endian), carried
 * hex-encoded in the PUT answer {"receipt":hex,"results":"<JSON text>"}:
 *
 *	off size field
 *	  0   4 magic "GSR1" (also the signature's domain separation)
 *	  4  16 deployment id
 *	 20  16 device id
 *	 36  16 batch id
 *	 52   8 seq
 *	 60  32 envelope hash (BLAKE2b-256 of the envelope as received)
 *	 92   4 applied
 *	 96   4 conflicted
 *	100   4 quarantined
 *	104   8 server time (ms)
 *	112   1 status: 1 accepted, 2 quarantined (device revoked)
 *	113  32 results hash: BLAKE2b-256 of the exact "results" text
 *	145  64 Ed25519 signature by the platform receipt key over bytes 0..144
 *
 * The device verifies the signature, the results hash, and that every
 * identity field equals what it sent (gs_receipt_match) before it changes
 * any state: only then is the batch acked.
 */
#ifndef GS_RECEIPT_H
#define GS_RECEIPT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define GS_RECEIPT_MAGIC "GSR1"
#define GS_RECEIPT_SIGNED_BYTES 145
#define GS_RECEIPT_BYTES (GS_RECEIPT_SIGNED_BYTES + GS_SIGBYTES)

enum gs_receipt_status {
	GS_RECEIPT_ACCEPTED = 1,
	GS_RECEIPT_QUARANTINED = 2 /* device revoked: everything quarantined */
};

struct gs_receipt {
	unsigned char deployment[16];
	unsigned char device[16];
	unsigned char batch[16];
	uint64_t seq;
	unsigned char envelope_hash[GS_HASHBYTES];
	uint32_t applied;
	uint32_t conflicted;
	uint32_t quarantined;
	int64_t server_time;
	uint8_t status;                       /* enum gs_receipt_status */
	unsigned char results_hash[GS_HASHBYTES];
};

/* Platform side.  Sets r->results_hash from results[0..results_len) (the
 * exact text sent beside the receipt), then writes the signed binary
 * receipt into out.  GS_OK; GS_EINVAL for a status other than 1 or 2;
 * GS_ECRYPTO. */
int gs_receipt_sign(unsigned char out[GS_RECEIPT_BYTES], struct gs_receipt *r,
    const char *results, size_t results_len,
    const unsigned char receipt_sk[GS_SIGN_SKBYTES]);

/* Device side.  Checks length and magic, the signature with receipt_pk
 * (the key pinned at enrollment) and that results hashes to the signed
 * results hash; fills *r only when all hold.
 *   GS_OK
 *   GS_EPROTOCOL  not GS_RECEIPT_BYTES long, bad magic, unknown status
 *   GS_EBADSIG    signature does not verify, or results text differs
 */
int gs_receipt_verify(struct gs_receipt *r, const unsigned char *bytes,
    size_t len, const char *results, size_t results_len,
    const unsigned char receipt_pk[GS_SIGN_PKBYTES]);

/* Device side, after gs_receipt_verify: GS_OK when the receipt names the
 * deployment, device, batch id, seq and envelope hash the device sent
 * (the fields of `sent`; its counts, time, status are ignored); else
 * GS_EPROTOCOL naming the first field that differs. */
int gs_receipt_match(const struct gs_receipt *got,
    const struct gs_receipt *sent);

#endif
