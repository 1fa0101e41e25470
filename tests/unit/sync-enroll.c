/*
 * sync-enroll.c - enrollment codes (round trip, garbage refused with a
 * clear message), proof and self-signature, fingerprint pinning, key ids.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "enroll.h"

static void
sample(struct gs_enroll_code *c, const char *url)
{
	size_t i;

	memset(c, 0, sizeof *c);
	gs_strlcpy(c->url, url, sizeof c->url);
	for (i = 0; i < 16; i++)
		c->token_id[i] = (unsigned char)i;
	for (i = 0; i < 32; i++)
		c->token[i] = (unsigned char)(0xa0 + i);
	for (i = 0; i < 16; i++)
		c->fingerprint[i] = (unsigned char)(0xf0 ^ i);
}

static char *
encode(struct gs_buf *b, const struct gs_enroll_code *c)
{
	gs_buf_init(b, GS_ENROLL_CODE_MAX);
	assert_int_equal(gs_enroll_code_encode(b, c), GS_OK);
	return b->data;
}

static void
test_round_trip(void **state)
{
	static const char *urls[] = { "http://127.0.0.1:8443",
		"https://grid.example.org/gridsync/?x=1&y=2",
		"http://a" };
	struct gs_enroll_code c, d;
	struct gs_buf b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		char *text;

		sample(&c, urls[i]);
		text = encode(&b, &c);
		assert_memory_equal(text, "GS1-", 4);
		assert_int_equal(text[4 + 109], '-');
		assert_null(strpbrk(text, " \t\n+/=?&:"));
		assert_int_equal(gs_enroll_code_decode(&d, text), GS_OK);
		assert_memory_equal(&c, &d, sizeof c);
		gs_buf_release(&b);
	}

	/* A long URL still fits GS_ENROLL_CODE_MAX. */
	sample(&c, "https://");
	memset(c.url + 8, 'x', GS_ENROLL_URL_MAX - 8);
	c.url[GS_ENROLL_URL_MAX] = '\0';
	encode(&b, &c);
	assert_int_equal(gs_enroll_code_decode(&d, b.data), GS_OK);
	assert_string_equal(d.url, c.url);
	gs_buf_release(&b);
}

static void
test_forgiving(void **state)
{
	struct gs_enroll_code c, d;
	struct gs_buf b, t;
	size_t i;

	(void)state;
	sample(&c, "http://127.0.0.1:8443");
	encode(&b, &c);
	/* Surrounding white space and a lower-cased key part. */
	gs_buf_init(&t, 1000);
	assert_int_equal(gs_buf_printf(&t, "  %s\r\n", b.data), GS_OK);
	for (i = 6; i < 4 + 109; i++)
		if (t.data[i] >= 'A' && t.data[i] <= 'Z')
			t.data[i] = (char)(t.data[i] - 'A' + 'a');
	assert_int_equal(gs_enroll_code_decode(&d, t.data), GS_OK);
	assert_memory_equal(&c, &d, sizeof c);
	gs_buf_release(&t);
	gs_buf_release(&b);
}

static void
expect_refused(const char *text, const char *words)
{
	struct gs_enroll_code d;

	memset(&d, 0x55, sizeof d);
	assert_int_equal(gs_enroll_code_decode(&d, text), GS_EINVAL);
	if (strstr(gs_errmsg(GS_EINVAL), words) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", text,
		    gs_errmsg(GS_EINVAL), words);
	/* Nothing was filled in. */
	assert_int_equal(d.url[0], 0x55);
}

static void
test_garbage(void **state)
{
	struct gs_enroll_code c;
	struct gs_buf b;
	char code[GS_ENROLL_CODE_MAX + 1], *p;
	size_t n, i;

	(void)state;
	sample(&c, "http://127.0.0.1:8443");
	encode(&b, &c);
	n = b.len;
	gs_strlcpy(code, b.data, sizeof code);

	expect_refused("", "empty");
	expect_refused("   \n", "empty");
	expect_refused("hello", "not an enrollment code");
	expect_refused("GS2-AAAA-aHR0cDovL2E", "version '2'");
	expect_refused("GS1-", "incomplete");
	expect_refused("GS1-ABCDEF", "incomplete");
	expect_refused("GS1-ABC-aHR0cDovL2E", "has 3 characters");

	/* Cut off anywhere: refused, never accepted or crashing. */
	for (i = 0; i < n; i++) {
		struct gs_enroll_code d;

		code[i] = '\0';
		assert_int_equal(gs_enroll_code_decode(&d, code), GS_EINVAL);
		code[i] = b.data[i];
	}
	/* One character changed anywhere in the key part: the checksum (or
	 * the base32 alphabet) catches it. */
	for (i = 4; i < 4 + 109; i++) {
		struct gs_enroll_code d;
		char was = code[i];

		code[i] = was == 'A' ? 'B' : 'A';
		assert_int_equal(gs_enroll_code_decode(&d, code), GS_EINVAL);
		code[i] = was;
	}
	code[10] = '#';
	expect_refused(code, "bad character '#' at position 11");
	code[10] = b.data[10];
	code[20] = code[20] == 'Q' ? 'R' : 'Q';
	expect_refused(code, "checksum");
	code[20] = b.data[20];

	/* The URL part damaged: a changed character, bad base64, not http. */
	p = code + 4 + 109 + 1;
	p[14] = p[14] == 'x' ? 'y' : 'x';
	expect_refused(code, "checksum");
	p[14] = b.data[(size_t)(p - code) + 14];
	p[3] = '*';
	expect_refused(code, "base64url");
	p[3] = b.data[(size_t)(p - code) + 3];
	gs_strlcpy(p, "ZnRwOi8vYQ", 20); /* "ftp://a" */
	expect_refused(code, "http(s)");

	/* Too long. */
	{
		char big[GS_ENROLL_CODE_MAX + 2];

		memset(big, 'A', sizeof big - 1);
		memcpy(big, "GS1-", 4);
		big[sizeof big - 1] = '\0';
		expect_refused(big, "too long");
	}
	gs_buf_release(&b);
}

static void
test_encode_refuses(void **state)
{
	struct gs_enroll_code c;
	struct gs_buf b;

	(void)state;
	gs_buf_init(&b, GS_ENROLL_CODE_MAX);
	sample(&c, "");
	assert_int_equal(gs_enroll_code_encode(&b, &c), GS_EINVAL);
	sample(&c, "ftp://x");
	assert_int_equal(gs_enroll_code_encode(&b, &c), GS_EINVAL);
	sample(&c, "http://a b");
	assert_int_equal(gs_enroll_code_encode(&b, &c), GS_EINVAL);
	sample(&c, "http://");
	assert_int_equal(gs_enroll_code_encode(&b, &c), GS_EINVAL);
	assert_int_equal(b.len, 0);
	gs_buf_release(&b);
}

static void
test_proof(void **state)
{
	unsigned char token[32], other[32], tid[16], dev[16], pk[32], sk[64],
	    pk2[32], sk2[64], proof[32], sig[64];

	(void)state;
	gs_random(token, 32);
	memcpy(other, token, 32);
	other[31] ^= 1;
	gs_random(tid, 16);
	gs_random(dev, 16);
	gs_crypto_sign_keypair(pk, sk);
	gs_crypto_sign_keypair(pk2, sk2);

	gs_enroll_proof(proof, token, tid, dev, pk);
	assert_int_equal(gs_enroll_proof_verify(proof, token, tid, dev, pk),
	    GS_OK);
	/* Wrong token, or a proof replayed for another device id or key. */
	assert_int_equal(gs_enroll_proof_verify(proof, other, tid, dev, pk),
	    GS_EAUTH);
	dev[0] ^= 1;
	assert_int_equal(gs_enroll_proof_verify(proof, token, tid, dev, pk),
	    GS_EAUTH);
	dev[0] ^= 1;
	assert_int_equal(gs_enroll_proof_verify(proof, token, tid, dev, pk2),
	    GS_EAUTH);
	tid[5] ^= 1;
	assert_int_equal(gs_enroll_proof_verify(proof, token, tid, dev, pk),
	    GS_EAUTH);
	tid[5] ^= 1;

	assert_int_equal(gs_enroll_self_sign(sig, tid, dev, sk), GS_OK);
	assert_int_equal(gs_enroll_self_verify(sig, tid, dev, pk), GS_OK);
	assert_int_equal(gs_enroll_self_verify(sig, tid, dev, pk2),
	    GS_EBADSIG);
	dev[1] ^= 1;
	assert_int_equal(gs_enroll_self_verify(sig, tid, dev, pk),
	    GS_EBADSIG);
}

static void
test_fingerprint(void **state)
{
	unsigned char dep[16], bpk[32], bsk[32], rpk[32], rsk[64], fp[16],
	    kid[8], h[32];

	(void)state;
	gs_random(dep, 16);
	gs_crypto_kx_keypair(bpk, bsk);
	gs_crypto_sign_keypair(rpk, rsk);
	/* The code pins the root key (rpk here) and the deployment. */
	gs_enroll_fingerprint(fp, dep, rpk);
	assert_int_equal(gs_enroll_check_fingerprint(fp, dep, rpk), GS_OK);
	/* A swapped root key (a man in the middle) is refused. */
	rpk[31] ^= 1;
	assert_int_equal(gs_enroll_check_fingerprint(fp, dep, rpk),
	    GS_EBADSIG);
	rpk[31] ^= 1;
	dep[7] ^= 1;
	assert_int_equal(gs_enroll_check_fingerprint(fp, dep, rpk),
	    GS_EBADSIG);
	dep[7] ^= 1;
	/* Every byte of the code's fingerprint counts: a code read wrong
	 * anywhere (or a fingerprint matched on a prefix) is refused. */
	{
		size_t i;

		for (i = 0; i < sizeof(fp); i++) {
			fp[i] ^= 0x80;
			assert_int_equal(gs_enroll_check_fingerprint(fp, dep,
			    rpk), GS_EBADSIG);
			fp[i] ^= 0x80;
		}
		assert_int_equal(gs_enroll_check_fingerprint(fp, dep, rpk),
		    GS_OK);
	}

	/* Key id = first 8 bytes of BLAKE2b-256(pk). */
	gs_crypto_key_id(kid, bpk, 32);
	gs_crypto_hash(h, 32, bpk, 32, NULL, 0);
	assert_memory_equal(kid, h, 8);
}

/* Device key rotation: the old key signs the new one for this device. */
static void
test_rekey(void **state)
{
	unsigned char dev[16], opk[32], osk[64], npk[32], nsk[64], xpk[32],
	    xsk[64], sig[64];

	(void)state;
	gs_random(dev, 16);
	gs_crypto_sign_keypair(opk, osk);
	gs_crypto_sign_keypair(npk, nsk);
	gs_crypto_sign_keypair(xpk, xsk);
	assert_int_equal(gs_rekey_sign(sig, dev, npk, osk), GS_OK);
	assert_int_equal(gs_rekey_verify(sig, dev, npk, opk), GS_OK);
	/* Signed by another key (a forger): refused. */
	assert_int_equal(gs_rekey_verify(sig, dev, npk, xpk), GS_EBADSIG);
	/* Another new key, or another device: refused. */
	assert_int_equal(gs_rekey_verify(sig, dev, xpk, opk), GS_EBADSIG);
	dev[0] ^= 1;
	assert_int_equal(gs_rekey_verify(sig, dev, npk, opk), GS_EBADSIG);
	dev[0] ^= 1;
	sig[5] ^= 1;
	assert_int_equal(gs_rekey_verify(sig, dev, npk, opk), GS_EBADSIG);
}

/* Random text and random substitutions: refused, never crashing. */
static void
test_random(void **state)
{
	struct gs_enroll_code c, d;
	struct gs_buf b;
	char junk[400], *code;
	int i;

	(void)state;
	for (i = 0; i < 3000; i++) {
		size_t n = gs_random_uniform(sizeof junk), k;

		for (k = 0; k < n; k++)
			junk[k] = (char)(1 + gs_random_uniform(255));
		junk[n] = '\0';
		if (i % 2 && n >= 4)
			memcpy(junk, "GS1-", 4);
		assert_int_equal(gs_enroll_code_decode(&d, junk), GS_EINVAL);
	}
	sample(&c, "https://grid.example.org:8443/");
	code = encode(&b, &c);
	for (i = 0; i < 3000; i++) {
		size_t at = gs_random_uniform((uint32_t)b.len);
		char was = code[at], now;

		do
			now = (char)(1 + gs_random_uniform(255));
		while (now == was || (now ^ 0x20) == was);
		code[at] = now;
		assert_int_equal(gs_enroll_code_decode(&d, code), GS_EINVAL);
		code[at] = was;
	}
	assert_int_equal(gs_enroll_code_decode(&d, code), GS_OK);
	gs_buf_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_forgiving),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_proof),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_rekey),
		cmocka_unit_test(test_random),
	};

	if (gs_crypto_init() != GS_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
