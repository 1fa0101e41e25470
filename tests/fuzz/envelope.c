/*
 * envelope.c - fuzz harness: GSB1 envelopes as the platform takes them,
 * parse -> verify (the vectors' device key) -> open (the vectors' batch
 * key) -> strict batch decode, the order of platform/ingest.c.  Seeds
 * from tests/data/vectors/envelope-*.txt verify, so the fuzzer starts past
 * the signature; mutations mostly stop there, which is the point.
 */
#include "fuzz.h"

#include "batch.h"
#include "core/buf.h"
#include "core/error.h"
#include "crypto.h"
#include "envelope.h"
#include "core/banned.h"

static unsigned char env_dev_pk[GS_SIGN_PKBYTES];
static unsigned char env_bpk[GS_KX_PKBYTES], env_bsk[GS_KX_SKBYTES];
static int env_ready;

static void
env_init(void)
{
	unsigned char seed[32], sk[GS_SIGN_SKBYTES];

	if (env_ready)
		return;
	(void)gs_crypto_init();
	memset(seed, FUZZ_DEVICE_SEED, sizeof(seed));
	gs_crypto_sign_seed_keypair(env_dev_pk, sk, seed);
	memset(seed, FUZZ_PLATFORM_BATCH_SEED, sizeof(seed));
	gs_crypto_kx_seed_keypair(env_bpk, env_bsk, seed);
	env_ready = 1;
}

int
FUZZ_ENTRY(envelope)(const uint8_t *data, size_t size)
{
	struct gs_envelope_header h;
	struct gs_envelope_limits lim;
	struct gs_buf plain;
	struct gs_batch b;

	env_init();
	gs_envelope_limits_default(&lim);
	/* Small caps: the fuzzer should spend its time on structure. */
	lim.max_plain = 1 << 20;
	if (gs_envelope_parse(&h, data, size, &lim) != GS_OK)
		return 0;
	(void)gs_envelope_verify(&h, data, size, env_dev_pk);
	gs_buf_init(&plain, lim.max_plain);
	if (gs_envelope_open(&plain, &h, data, size, env_bpk, env_bsk) ==
	    GS_OK) {
		memset(&b, 0, sizeof(b));
		if (gs_batch_decode(&b, (const char *)plain.data, plain.len,
			lim.max_records) == GS_OK)
			gs_batch_release(&b);
	}
	gs_buf_release(&plain);
	return 0;
}
