/*
 * sync-crypto.c - the libsodium seam: the wrappers agree with each other
 * and turn failures into our codes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "crypto.h"

static void
test_kx_aead(void **state)
{
	unsigned char spk[32], ssk[32], cpk[32], csk[32];
	unsigned char crx[32], ctx[32], srx[32], stx[32], zero[32] = { 0 };
	unsigned char nonce[24], m[100], ct[116], back[100];

	(void)state;
	gs_crypto_kx_keypair(spk, ssk);
	gs_crypto_kx_keypair(cpk, csk);
	assert_int_equal(gs_crypto_kx_client(crx, ctx, cpk, csk, spk), GS_OK);
	assert_int_equal(gs_crypto_kx_server(srx, stx, spk, ssk, cpk), GS_OK);
	assert_memory_equal(ctx, srx, 32);
	assert_memory_equal(crx, stx, 32);
	assert_memory_not_equal(ctx, crx, 32);
	/* A low-order point is refused. */
	assert_int_equal(gs_crypto_kx_client(crx, ctx, cpk, csk, zero),
	    GS_EDECRYPT);

	gs_random(nonce, sizeof nonce);
	gs_random(m, sizeof m);
	assert_int_equal(gs_crypto_aead_encrypt(ct, m, sizeof m, "ad", 2,
	    nonce, stx), GS_OK);
	assert_int_equal(gs_crypto_aead_decrypt(back, ct, sizeof ct, "ad", 2,
	    nonce, crx), GS_OK);
	assert_memory_equal(back, m, sizeof m);
	assert_int_equal(gs_crypto_aead_decrypt(back, ct, sizeof ct, "aD", 2,
	    nonce, crx), GS_EDECRYPT);
	assert_true(gs_crypto_is_zero(back, sizeof back));
	ct[50] ^= 1;
	assert_int_equal(gs_crypto_aead_decrypt(back, ct, sizeof ct, "ad", 2,
	    nonce, crx), GS_EDECRYPT);
	assert_int_equal(gs_crypto_aead_decrypt(back, ct, 15, "ad", 2, nonce,
	    crx), GS_EDECRYPT);
}

/* The two-step XChaCha20-Poly1305 (subkey once, then per message) gives
 * the very bytes of the one-step one, for every length and nonce tail,
 * and they open with the one-step decryption; another prefix's subkey
 * gives other bytes. */
static void
test_xaead_subkey(void **state)
{
	unsigned char key[32], sub[32], sub2[32], nonce[24], m[300];
	unsigned char ct1[316], ct2[316], back[300];
	size_t len;
	int i;

	(void)state;
	gs_random(key, sizeof key);
	gs_random(nonce, sizeof nonce);
	gs_random(m, sizeof m);
	gs_crypto_xaead_subkey(sub, key, nonce);
	for (i = 0; i < 40; i++) {
		len = i == 0 ? 0 : (size_t)gs_random_uniform(sizeof m + 1);
		nonce[16 + i % 8] ^= (unsigned char)(i + 1);
		assert_int_equal(gs_crypto_aead_encrypt(ct1, m, len, "gs-ad",
		    5, nonce, key), GS_OK);
		memset(ct2, 0, sizeof ct2);
		assert_int_equal(gs_crypto_xaead_encrypt(ct2, m, len, "gs-ad",
		    5, nonce + 16, sub), GS_OK);
		assert_memory_equal(ct1, ct2, len + 16);
		assert_int_equal(gs_crypto_aead_decrypt(back, ct2, len + 16,
		    "gs-ad", 5, nonce, key), GS_OK);
		if (len > 0)
			assert_memory_equal(back, m, len);
		/* ... and opened with the subkey: the same, and a flipped
		 * bit or another tail is refused with nothing left. */
		memset(back, 0x55, sizeof back);
		assert_int_equal(gs_crypto_xaead_decrypt(back, ct1, len + 16,
		    "gs-ad", 5, nonce + 16, sub), GS_OK);
		if (len > 0)
			assert_memory_equal(back, m, len);
		ct1[i % (len + 16)] ^= 4;
		assert_int_equal(gs_crypto_xaead_decrypt(back, ct1, len + 16,
		    "gs-ad", 5, nonce + 16, sub), GS_EDECRYPT);
		assert_true(len == 0 || gs_crypto_is_zero(back, len));
		ct1[i % (len + 16)] ^= 4;
		nonce[16] ^= 0x80;
		assert_int_equal(gs_crypto_xaead_decrypt(back, ct1, len + 16,
		    "gs-ad", 5, nonce + 16, sub), GS_EDECRYPT);
		nonce[16] ^= 0x80;
		assert_int_equal(gs_crypto_xaead_decrypt(back, ct1, 15,
		    "gs-ad", 5, nonce + 16, sub), GS_EDECRYPT);
	}
	nonce[0] ^= 1;
	gs_crypto_xaead_subkey(sub2, key, nonce);
	assert_memory_not_equal(sub, sub2, sizeof sub);
	assert_int_equal(gs_crypto_xaead_encrypt(ct2, m, 100, "gs-ad", 5,
	    nonce + 16, sub), GS_OK);
	assert_int_equal(gs_crypto_aead_decrypt(back, ct2, 116, "gs-ad", 5,
	    nonce, key), GS_EDECRYPT);
}

static void
test_sign(void **state)
{
	unsigned char pk[32], sk[64], pk2[32], sk2[64], seed[32], sig[64];

	(void)state;
	memset(seed, 9, sizeof seed);
	gs_crypto_sign_seed_keypair(pk, sk, seed);
	gs_crypto_sign_seed_keypair(pk2, sk2, seed);
	assert_memory_equal(pk, pk2, 32); /* deterministic */
	gs_crypto_sign_sk_to_pk(pk2, sk);
	assert_memory_equal(pk, pk2, 32);
	assert_int_equal(gs_crypto_sign(sig, "msg", 3, sk), GS_OK);
	assert_int_equal(gs_crypto_verify(sig, "msg", 3, pk), GS_OK);
	assert_int_equal(gs_crypto_verify(sig, "msh", 3, pk), GS_EBADSIG);
	gs_crypto_sign_keypair(pk2, sk2);
	assert_int_equal(gs_crypto_verify(sig, "msg", 3, pk2), GS_EBADSIG);
}

static void
test_hash(void **state)
{
	unsigned char a[64], b[64], key[32];
	struct gs_hash *h;

	(void)state;
	memset(key, 7, sizeof key);
	gs_crypto_hash(a, 32, "hello world", 11, NULL, 0);
	h = gs_crypto_hash_new(32, NULL, 0);
	assert_non_null(h);
	gs_crypto_hash_update(h, "hello", 5);
	gs_crypto_hash_update(h, " world", 6);
	assert_int_equal(gs_crypto_hash_final(h, b), GS_OK);
	assert_memory_equal(a, b, 32);
	/* Keyed differs from unkeyed; 16-byte output is not a prefix. */
	gs_crypto_hash(b, 32, "hello world", 11, key, 32);
	assert_memory_not_equal(a, b, 32);
	gs_crypto_hash(b, 16, "hello world", 11, NULL, 0);
	assert_memory_not_equal(a, b, 16);
	h = gs_crypto_hash_new(64, key, 32);
	gs_crypto_hash_update(h, "hello world", 11);
	assert_int_equal(gs_crypto_hash_final(h, b), GS_OK);
	gs_crypto_hash(a, 64, "hello world", 11, key, 32);
	assert_memory_equal(a, b, 64);
	gs_crypto_hash_free(gs_crypto_hash_new(32, NULL, 0));
	gs_crypto_hash_free(NULL);
	assert_int_equal(gs_crypto_hash_final(NULL, b), GS_ENOMEM);
	/* BLAKE2b-256("") from RFC 7693's reference implementation. */
	gs_crypto_hash(a, 32, "", 0, NULL, 0);
	assert_memory_equal(a, "\x0e\x57\x51\xc0\x26\xe5\x43\xb2\xe8\xab\x2e"
	    "\xb0\x60\x99\xda\xa1\xd1\xe5\xdf\x47\x77\x8f\x77\x87\xfa\xab\x45"
	    "\xcd\xf1\x2f\xe3\xa8", 32);
}

static void
test_memory(void **state)
{
	unsigned char *p;

	(void)state;
	p = gs_crypto_secure_alloc(64);
	assert_non_null(p);
	memset(p, 0xab, 64);
	assert_int_equal(gs_crypto_secure_readonly(p), GS_OK);
	assert_int_equal(p[10], 0xab);
	assert_int_equal(gs_crypto_secure_noaccess(p), GS_OK);
	assert_int_equal(gs_crypto_secure_readwrite(p), GS_OK);
	gs_crypto_memzero(p, 64);
	assert_true(gs_crypto_is_zero(p, 64));
	gs_crypto_secure_free(p);
	gs_crypto_secure_free(NULL);
	gs_crypto_memzero(NULL, 0);
	assert_int_equal(gs_crypto_memcmp("abc", "abc", 3), 0);
	assert_int_equal(gs_crypto_memcmp("abc", "abd", 3), -1);
	assert_int_equal(gs_crypto_memcmp("abd", "abc", 3), -1);
}

static void
test_b64(void **state)
{
	char text[GS_B64_LEN(40)];
	unsigned char in[40], out[40];
	size_t n, len, outlen;

	(void)state;
	gs_random(in, sizeof in);
	for (n = 0; n <= sizeof in; n++) {
		len = gs_crypto_b64_encode(text, in, n);
		assert_int_equal(len, strlen(text));
		assert_null(strpbrk(text, "+/="));
		assert_int_equal(gs_crypto_b64_decode(out, sizeof out, &outlen,
		    text, len), GS_OK);
		assert_int_equal(outlen, n);
		assert_memory_equal(out, in, n);
	}
	assert_int_equal(gs_crypto_b64_encode(text, "http://a", 8), 11);
	assert_string_equal(text, "aHR0cDovL2E");
	assert_int_equal(gs_crypto_b64_decode(out, sizeof out, &outlen,
	    "aHR0cDovL2E=", 12), GS_EPARSE);
	assert_int_equal(gs_crypto_b64_decode(out, sizeof out, &outlen,
	    "aHR0c+ovL2E", 11), GS_EPARSE);
	assert_int_equal(gs_crypto_b64_decode(out, sizeof out, &outlen,
	    "aHR0cDovL2F", 11), GS_EPARSE); /* non-zero spare bits */
	assert_int_equal(gs_crypto_b64_decode(out, 4, &outlen, "aHR0cDovL2E",
	    11), GS_ETOOBIG);
}

static void
test_key_id(void **state)
{
	unsigned char pk[32], kid[8], h[32];

	(void)state;
	memset(pk, 1, sizeof pk);
	gs_crypto_key_id(kid, pk, sizeof pk);
	gs_crypto_hash(h, 32, pk, sizeof pk, NULL, 0);
	assert_memory_equal(kid, h, 8);
	assert_int_not_equal(gs_random_uniform(1000), 1000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kx_aead),
		cmocka_unit_test(test_xaead_subkey),
		cmocka_unit_test(test_sign),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_memory),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_key_id),
	};

	if (gs_crypto_init() != GS_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
