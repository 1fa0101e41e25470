/*
 * receipt.c - fuzz harness: a GSR1 receipt as the device takes it from an
 * answer.  The first GS_RECEIPT_BYTES bytes are the receipt (shorter input
 * is passed whole), the rest the results text it must hash to; the key is
 * the vectors' receipt key, so seeds from receipt-1.txt verify.
 */
#include "fuzz.h"

#include "core/error.h"
#include "crypto.h"
#include "receipt.h"
#include "core/banned.h"

static unsigned char rc_pk[GS_SIGN_PKBYTES];
static int rc_ready;

int
FUZZ_ENTRY(receipt)(const uint8_t *data, size_t size)
{
	struct gs_receipt r, want;
	size_t n = size < GS_RECEIPT_BYTES ? size : GS_RECEIPT_BYTES;

	if (!rc_ready) {
		unsigned char seed[32], sk[GS_SIGN_SKBYTES];

		(void)gs_crypto_init();
		memset(seed, FUZZ_PLATFORM_RECEIPT_SEED, sizeof(seed));
		gs_crypto_sign_seed_keypair(rc_pk, sk, seed);
		rc_ready = 1;
	}
	memset(&r, 0, sizeof(r));
	if (gs_receipt_verify(&r, data, n, (const char *)data + n, size - n,
		rc_pk) != GS_OK)
		return 0;
	memcpy(&want, &r, sizeof(want));
	(void)gs_receipt_match(&r, &want);
	return 0;
}
