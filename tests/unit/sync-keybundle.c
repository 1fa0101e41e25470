/*
 * sync-keybundle.c - GSK1 key bundles: sign/open round trip, the frozen
 * vector of docs/PROTOCOL.md, every byte's change refused, another root
 * refused, and the device's acceptance rule (rollback, same serial,
 * another deployment, expired, agent too old).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "keybundle.h"

static unsigned char root_pk[GS_SIGN_PKBYTES], root_sk[GS_SIGN_SKBYTES];

/* The vector's inputs: every key from a fixed seed. */
static void
vector_bundle(struct gs_keybundle *b)
{
	unsigned char seed[32], kx_sk[GS_KX_SKBYTES], rsk[GS_SIGN_SKBYTES];

	memset(b, 0, sizeof(*b));
	memset(seed, 0x11, sizeof(seed));
	gs_crypto_sign_seed_keypair(root_pk, root_sk, seed);
	memset(seed, 0x22, sizeof(seed));
	gs_crypto_kx_seed_keypair(b->batch_pk, kx_sk, seed);
	memset(seed, 0x33, sizeof(seed));
	gs_crypto_sign_seed_keypair(b->receipt_pk, rsk, seed);
	b->serial = 7;
	b->not_after = 1800000000000LL;
	b->min_version[0] = 0;
	b->min_version[1] = 1;
	b->min_version[2] = 0;
	memset(b->deployment, 0xd0, sizeof(b->deployment));
}

static int
setup(void **state)
{
	(void)state;
	return gs_crypto_init() == GS_OK ? 0 : -1;
}

static void
test_round_trip(void **state)
{
	struct gs_keybundle b, o;
	unsigned char w[GS_BUNDLE_BYTES];

	(void)state;
	vector_bundle(&b);
	assert_int_equal(gs_keybundle_sign(&b, root_sk, w), GS_OK);
	assert_memory_equal(w, "GSK1", 4);
	assert_int_equal(gs_keybundle_open(w, sizeof(w), root_pk, &o), GS_OK);
	assert_int_equal(o.serial, 7);
	assert_int_equal(o.not_after, 1800000000000LL);
	assert_int_equal(o.min_version[1], 1);
	assert_memory_equal(o.batch_pk, b.batch_pk, GS_KX_PKBYTES);
	assert_memory_equal(o.receipt_pk, b.receipt_pk, GS_SIGN_PKBYTES);
	{
		unsigned char kid[GS_KIDBYTES];

		gs_crypto_key_id(kid, b.batch_pk, GS_KX_PKBYTES);
		assert_memory_equal(o.batch_kid, kid, GS_KIDBYTES);
	}
	b.serial = 0;
	assert_int_equal(gs_keybundle_sign(&b, root_sk, w), GS_EINVAL);
}

/*
 * The frozen vector (docs/PROTOCOL.md, "Key bundle"): Ed25519 signatures
 * are deterministic, so the same inputs give the same 180 bytes forever;
 * a change here is a wire change.
 */
static void
test_frozen_vector(void **state)
{
	static const char want_hex[] =
	    "47534b31070000000000000000505c18a30100000000010000000000"
	    "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d089e2e17b0a384fecb8057084"
	    "b5b1ba5b5c3c0eca440388432103a9c6e152d81ffdfdd6079f913dbe"
	    "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85"
	    "e18080cecb53acd6bbe71b36c90b97728a82ffba80805853f849fad0"
	    "54faf243c6d001d4ca7eaf19bdbbfb36222ad5a19c9e66c1ff8676d7"
	    "62a56240497e8282d102190d";
	struct gs_keybundle b;
	unsigned char w[GS_BUNDLE_BYTES], fp[GS_ROOT_FPBYTES];
	char hex[2 * GS_BUNDLE_BYTES + 1], fph[2 * GS_ROOT_FPBYTES + 1];

	(void)state;
	vector_bundle(&b);
	assert_int_equal(gs_keybundle_sign(&b, root_sk, w), GS_OK);
	gs_hex_encode(hex, w, sizeof(w));
	gs_keybundle_root_fp(fp, root_pk);
	gs_hex_encode(fph, fp, sizeof(fp));
	assert_string_equal(hex, want_hex);
	assert_string_equal(fph, "1d0f5e66226a9113270254a23ffb0200");
}

static void
test_tamper(void **state)
{
	struct gs_keybundle b, o;
	unsigned char w[GS_BUNDLE_BYTES], t[GS_BUNDLE_BYTES + 1];
	unsigned char other_pk[GS_SIGN_PKBYTES], other_sk[GS_SIGN_SKBYTES];
	size_t i;

	(void)state;
	vector_bundle(&b);
	assert_int_equal(gs_keybundle_sign(&b, root_sk, w), GS_OK);
	for (i = 0; i < sizeof(w); i++) {
		memcpy(t, w, sizeof(w));
		t[i] ^= 0x01;
		assert_int_not_equal(gs_keybundle_open(t, sizeof(w), root_pk,
		    &o), GS_OK);
	}
	memcpy(t, w, sizeof(w));
	t[sizeof(w)] = 0;
	assert_int_equal(gs_keybundle_open(t, sizeof(w) + 1, root_pk, &o),
	    GS_EPARSE);
	assert_int_equal(gs_keybundle_open(w, sizeof(w) - 1, root_pk, &o),
	    GS_EPARSE);
	/* Signed by another root: refused. */
	gs_crypto_sign_keypair(other_pk, other_sk);
	assert_int_equal(gs_keybundle_sign(&b, other_sk, t), GS_OK);
	assert_int_equal(gs_keybundle_open(t, GS_BUNDLE_BYTES, root_pk, &o),
	    GS_EBADSIG);
}

static void
test_accept(void **state)
{
	struct gs_keybundle b;
	unsigned char dep[16], other[16];
	int64_t now = 1790000000000LL;

	(void)state;
	vector_bundle(&b);
	memset(dep, 0xd0, sizeof(dep));
	memset(other, 0xd1, sizeof(other));
	assert_int_equal(gs_keybundle_accept(&b, 6, dep, now, "0.1.0"), GS_OK);
	/* The same serial again, or an older one: a rollback. */
	assert_int_equal(gs_keybundle_accept(&b, 7, dep, now, "0.1.0"),
	    GS_EREPLAY);
	assert_int_equal(gs_keybundle_accept(&b, 9, dep, now, "0.1.0"),
	    GS_EREPLAY);
	assert_int_equal(gs_keybundle_accept(&b, 6, other, now, "0.1.0"),
	    GS_EDEPLOYMENT);
	assert_int_equal(gs_keybundle_accept(&b, 6, dep, b.not_after + 1,
	    "0.1.0"), GS_EREJECTED);
	assert_int_equal(gs_keybundle_accept(&b, 6, dep, now, "0.0.9"),
	    GS_EUNSUPPORTED);
	assert_int_equal(gs_keybundle_accept(&b, 6, dep, now, "1.0.0"), GS_OK);
	assert_int_equal(gs_keybundle_accept(&b, 6, dep, now, "0.2"),
	    GS_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_frozen_vector),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_accept),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
