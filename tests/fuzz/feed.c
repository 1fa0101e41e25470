/*
 * feed.c - fuzz harness: the pull feed (issue 4) as the device takes it
 * from the platform: gs_feed_open with the keys of the frozen vector
 * tests/data/vectors/feed-1.txt (deployment, device, receipt key, device
 * key), then the strict JSON reader over the opened text.  Seeds from the
 * vector open, so mutations start past the signature.
 */
#include "fuzz.h"

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "crypto.h"
#include "feed.h"
#include "json.h"
#include "core/banned.h"

static unsigned char feed_rpk[GS_SIGN_PKBYTES];
static unsigned char feed_dsk[GS_SIGN_SKBYTES];
static const unsigned char feed_dep[16] = { 0x00, 0x11, 0x22, 0x33, 0x44,
	0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff };
static const unsigned char feed_dev[16] = { 0x01, 0x90, 0xa6, 0xe2, 0x00,
	0x00, 0x70, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x01 };
static int feed_ready;

int
FUZZ_ENTRY(feed)(const uint8_t *data, size_t size)
{
	struct gs_feed_header h;
	struct gs_buf plain;
	json_t *v = NULL;
	char why[128];

	if (!feed_ready) {
		unsigned char seed[32], pk[GS_SIGN_PKBYTES], sk[GS_SIGN_SKBYTES];

		(void)gs_crypto_init();
		memset(seed, FUZZ_PLATFORM_RECEIPT_SEED, sizeof(seed));
		gs_crypto_sign_seed_keypair(feed_rpk, sk, seed);
		memset(seed, FUZZ_DEVICE_SEED, sizeof(seed));
		gs_crypto_sign_seed_keypair(pk, feed_dsk, seed);
		feed_ready = 1;
	}
	gs_buf_init(&plain, 1 << 20);
	if (gs_feed_open(&plain, &h, data, size, feed_dep, feed_dev, feed_rpk,
		feed_dsk) == GS_OK &&
	    gs_json_parse((const char *)plain.data, plain.len, &v, why,
		sizeof(why)) == GS_OK)
		json_decref(v);
	gs_buf_release(&plain);
	return 0;
}
