/*
 * attachment.c - fuzz harness: what the platform takes from a device for
 * an attachment, and what the device takes back.  The first byte chooses:
 *
 *   0          the rest is a GSAR attachment receipt (gs_att_receipt_verify
 *              with the vectors' receipt key)
 *   otherwise  the rest is a sealed GSA1 stream as it arrives in PUTs:
 *              gs_att_parse (limit 64 MiB), gs_att_verify with the vectors'
 *              device key, then - whatever the signature said, to reach
 *              the stream code - gs_att_open_new with the vectors' platform
 *              key and gs_att_open_feed span by span (gs_att_span, the
 *              first byte times 1041 bytes a span, as the agent cuts its
 *              chunks) up to the bytes there are, then gs_att_open_done;
 *              the bytes after the last whole span are fed too (a body
 *              that does not end on a message).
 *
 * Seeds: tests/data/attachments/vector-1.{sealed,receipt} and variants
 * (tests/fuzz/make-corpus.py), so the stream decrypts to the end.
 */
#include "fuzz.h"

#include "attachment.h"
#include "core/error.h"
#include "crypto.h"
#include "core/banned.h"

static unsigned char att_plat_pk[GS_KX_PKBYTES], att_plat_sk[GS_KX_SKBYTES];
static unsigned char att_dev_pk[GS_SIGN_PKBYTES], att_rc_pk[GS_SIGN_PKBYTES];
static int att_ready;

static void
att_keys(void)
{
	unsigned char seed[32], sk[GS_SIGN_SKBYTES];

	(void)gs_crypto_init();
	memset(seed, FUZZ_PLATFORM_BATCH_SEED, sizeof(seed));
	gs_crypto_kx_seed_keypair(att_plat_pk, att_plat_sk, seed);
	memset(seed, FUZZ_PLATFORM_RECEIPT_SEED, sizeof(seed));
	gs_crypto_sign_seed_keypair(att_rc_pk, sk, seed);
	memset(seed, FUZZ_DEVICE_SEED, sizeof(seed));
	gs_crypto_sign_seed_keypair(att_dev_pk, sk, seed);
	att_ready = 1;
}

static void
att_stream(const uint8_t *p, size_t n, unsigned want)
{
	struct gs_att_header h;
	struct gs_att_opener *o = NULL;
	uint64_t off = 0, end;

	if (gs_att_parse(&h, p, n, UINT64_C(64) << 20) != GS_OK)
		return;
	(void)gs_att_verify(p, att_dev_pk);
	if (gs_att_open_new(&o, p, &h, att_plat_pk, att_plat_sk) != GS_OK)
		return;
	for (;;) {
		size_t from = off == 0 ? GS_ATT_PREFIXBYTES : (size_t)off;

		end = gs_att_span(&h, off, (uint64_t)want * 1041u);
		if (end == 0)
			break;
		if (end > n) {
			/* What is left, not ending on a message. */
			if (n > from)
				(void)gs_att_open_feed(o, p + from, n - from, -1);
			break;
		}
		if (gs_att_open_feed(o, p + from, (size_t)end - from, -1) !=
		    GS_OK)
			break;
		if (gs_att_open_offset(o) != end)
			abort(); /* the opener and the spans must agree */
		off = end;
	}
	(void)gs_att_open_done(o);
	gs_att_open_free(o);
}

int
FUZZ_ENTRY(attachment)(const uint8_t *data, size_t size)
{
	struct gs_att_receipt rc;

	if (!att_ready)
		att_keys();
	if (size < 1)
		return 0;
	if (data[0] == 0)
		(void)gs_att_receipt_verify(&rc, data + 1, size - 1, att_rc_pk);
	else
		att_stream(data + 1, size - 1, data[0]);
	gs_errmsg_clear();
	return 0;
}
