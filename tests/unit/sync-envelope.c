/*
 * sync-envelope.c - GSB1 seal/parse/verify/open: the honest path, and
 * every way an envelope can be damaged, forged, replayed or lie.  Every
 * test runs twice: with suite 1 (the signature over the ciphertext) and
 * suite 2 (over its BLAKE2b-512).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "deflate.h"
#include "envelope.h"

#define MIB (1024u * 1024u)

struct keys {
	unsigned char plat_pk[32], plat_sk[32];  /* batch kx key */
	unsigned char other_pk[32], other_sk[32];
	unsigned char dev_pk[32], dev_sk[64];     /* device Ed25519 */
	unsigned char evil_pk[32], evil_sk[64];   /* another device */
};

static struct keys K;
static const char PLAIN[] =
    "{\"v\":1,\"deployment\":\"d\",\"count\":2}\n"
    "{\"change_id\":\"a\",\"fields\":{\"name\":\"Zhang San\"}}\n"
    "{\"change_id\":\"b\",\"fields\":{\"name\":\"Li Si\"}}\n";
/* The suite the tests seal with (main runs them with each). */
static int suite = GS_ENV_SUITE;
static const unsigned char EPH_SEED[32] = { 7, 7, 7 };
static const unsigned char NONCE[24] = { 9, 9, 9 };

static void
seed_keys(void)
{
	unsigned char s[32];

	memset(s, 1, 32);
	gs_crypto_kx_seed_keypair(K.plat_pk, K.plat_sk, s);
	memset(s, 2, 32);
	gs_crypto_kx_seed_keypair(K.other_pk, K.other_sk, s);
	memset(s, 3, 32);
	gs_crypto_sign_seed_keypair(K.dev_pk, K.dev_sk, s);
	memset(s, 4, 32);
	gs_crypto_sign_seed_keypair(K.evil_pk, K.evil_sk, s);
}

static void
params(struct gs_seal_params *p, uint64_t seq)
{
	memset(p, 0, sizeof *p);
	memset(p->deployment, 0xd1, 16);
	memset(p->device, 0xde, 16);
	memset(p->batch, 0xba, 16);
	p->seq = seq;
	if (seq > 1)
		memset(p->prev_hash, 0x77, 32);
	p->created_at = 1764140673123;
	p->count = 2;
	p->platform_pk = K.plat_pk;
	p->device_sk = K.dev_sk;
	p->suite = suite;
}

/*
 * Signs e (header, then ciphertext: hdr_ct_len bytes) with sk, the
 * signature written after it, as docs/PROTOCOL.md section 3 says for the
 * suite its header names: "GSB1-sig" || header || ciphertext, or
 * "GSB1-sg2" || header || BLAKE2b-512(ciphertext).
 */
static void
sign_as(unsigned char *e, size_t hdr_ct_len, const unsigned char *sk)
{
	unsigned char *msg;
	size_t n;

	msg = gs_malloc(8 + hdr_ct_len);
	assert_non_null(msg);
	if (e[5] == 2) {
		memcpy(msg, "GSB1-sg2", 8);
		memcpy(msg + 8, e, GS_ENV_HDRBYTES);
		gs_crypto_hash(msg + 8 + GS_ENV_HDRBYTES, 64,
		    e + GS_ENV_HDRBYTES, hdr_ct_len - GS_ENV_HDRBYTES, NULL, 0);
		n = 8 + GS_ENV_HDRBYTES + 64;
	} else {
		memcpy(msg, "GSB1-sig", 8);
		memcpy(msg + 8, e, hdr_ct_len);
		n = 8 + hdr_ct_len;
	}
	assert_int_equal(gs_crypto_sign(e + hdr_ct_len, msg, n, sk), GS_OK);
	gs_free(msg);
}

static void
seal_honest(struct gs_buf *env, uint64_t seq)
{
	struct gs_seal_params p;

	params(&p, seq);
	gs_buf_init(env, GS_ENV_MAX_ENVELOPE);
	assert_int_equal(gs_envelope_seal_det(env, &p, PLAIN, strlen(PLAIN),
	    EPH_SEED, NONCE), GS_OK);
}

/* Full platform-side check: parse, verify, open.  Returns the first
 * failure; *plain receives the plaintext on success. */
static int
ingest(struct gs_buf *plain, const void *env, size_t len)
{
	struct gs_envelope_header h;
	int r;

	gs_buf_init(plain, GS_ENV_MAX_PLAIN);
	if ((r = gs_envelope_parse(&h, env, len, NULL)) != GS_OK)
		return r;
	if ((r = gs_envelope_verify(&h, env, len, K.dev_pk)) != GS_OK)
		return r;
	return gs_envelope_open(plain, &h, env, len, K.plat_pk, K.plat_sk);
}

/* Open without checking the signature (what an attacker who got past a
 * buggy verify would face): parse, then decrypt. */
static int
open_unverified(const void *env, size_t len)
{
	struct gs_envelope_header h;
	struct gs_buf plain;
	int r;

	gs_buf_init(&plain, GS_ENV_MAX_PLAIN);
	if ((r = gs_envelope_parse(&h, env, len, NULL)) == GS_OK)
		r = gs_envelope_open(&plain, &h, env, len, K.plat_pk,
		    K.plat_sk);
	gs_buf_release(&plain);
	return r;
}

/*
 * A device that holds a valid key but lies: take an honest envelope's
 * header, put zlib bytes z of our choosing under it with plain_len, and
 * encrypt and sign it properly.  The signature verifies, so only the
 * bounded inflate stands between it and the platform.
 */
static void
forge(struct gs_buf *out, const struct gs_buf *honest, const void *z,
    size_t zlen, uint64_t plain_len)
{
	unsigned char eph_pk[32], eph_sk[32], rx[32], tx[32], *e;
	size_t ct_len = zlen + 16, total = GS_ENV_HDRBYTES + ct_len + 64;

	gs_crypto_kx_seed_keypair(eph_pk, eph_sk, EPH_SEED);
	assert_int_equal(gs_crypto_kx_client(rx, tx, eph_pk, eph_sk,
	    K.plat_pk), GS_OK);
	gs_buf_init(out, GS_ENV_MAX_ENVELOPE);
	assert_int_equal(gs_buf_reserve(out, total), GS_OK);
	e = (unsigned char *)out->data;
	memcpy(e, honest->data, GS_ENV_HDRBYTES);
	gs_put_le64(e + 112, plain_len);
	gs_put_le64(e + 120, ct_len);
	assert_int_equal(gs_crypto_aead_encrypt(e + GS_ENV_HDRBYTES, z, zlen,
	    e, GS_ENV_HDRBYTES, e + GS_ENV_NONCE_OFF, tx), GS_OK);
	sign_as(e, GS_ENV_HDRBYTES + ct_len, K.dev_sk);
	out->len = total;
}

static void
test_honest(void **state)
{
	struct gs_buf env, plain, env2;
	struct gs_envelope_header h;
	struct gs_seal_params p;
	unsigned char kid[8], h1[32], h2[32];

	(void)state;
	seal_honest(&env, 1);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_OK);
	assert_int_equal(plain.len, strlen(PLAIN));
	assert_memory_equal(plain.data, PLAIN, plain.len);
	gs_buf_release(&plain);

	assert_int_equal(gs_envelope_parse(&h, env.data, env.len, NULL),
	    GS_OK);
	assert_int_equal(h.seq, 1);
	assert_int_equal(h.suite, suite);
	assert_int_equal(h.count, 2);
	assert_int_equal(h.plain_len, strlen(PLAIN));
	assert_int_equal(h.created_at, 1764140673123);
	assert_int_equal(env.len, GS_ENV_HDRBYTES + h.ct_len + 64);
	gs_crypto_key_id(kid, K.plat_pk, 32);
	assert_memory_equal(h.platform_kid, kid, 8);
	gs_crypto_key_id(kid, K.dev_pk, 32);
	assert_memory_equal(h.device_kid, kid, 8);
	assert_memory_equal(h.nonce, NONCE, 24);
	assert_int_equal(gs_envelope_check_deployment(&h, h.deployment),
	    GS_OK);

	/* Deterministic entry point: same inputs, same bytes. */
	seal_honest(&env2, 1);
	assert_int_equal(env.len, env2.len);
	assert_memory_equal(env.data, env2.data, env.len);
	gs_envelope_hash(h1, env.data, env.len);
	gs_envelope_hash(h2, env2.data, env2.len);
	assert_memory_equal(h1, h2, 32);
	gs_buf_release(&env2);

	/* The real entry point: fresh ephemeral key and nonce each time. */
	params(&p, 1);
	gs_buf_init(&env2, GS_ENV_MAX_ENVELOPE);
	assert_int_equal(gs_envelope_seal(&env2, &p, PLAIN, strlen(PLAIN)),
	    GS_OK);
	assert_int_equal(env.len, env2.len);
	assert_memory_not_equal(env.data + 144, env2.data + 144, 56);
	assert_int_equal(ingest(&plain, env2.data, env2.len), GS_OK);
	assert_memory_equal(plain.data, PLAIN, plain.len);
	gs_buf_release(&plain);
	gs_buf_release(&env2);
	gs_buf_release(&env);
}

static void
test_chain_seq(void **state)
{
	struct gs_buf env, plain;

	(void)state;
	seal_honest(&env, 42);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_OK);
	gs_buf_release(&plain);
	gs_buf_release(&env);
}

static int
field_checked_by_parse(size_t off)
{
	/* magic, version, suite, flags, seq (a flip may make it 0), reserved,
	 * plain_len, ct_len: parse may refuse these before the signature.
	 * prev hash: at seq 1 it must be zero. */
	return off < 8 || (off >= 56 && off < 96) ||
	    (off >= 104 && off < 128);
}

static void
test_flip_header(void **state)
{
	struct gs_buf env, plain;
	size_t off;
	int bit, r;

	(void)state;
	seal_honest(&env, 1);
	for (off = 0; off < GS_ENV_HDRBYTES; off++) {
		for (bit = 0; bit < 8; bit++) {
			env.data[off] ^= (char)(1 << bit);
			r = ingest(&plain, env.data, env.len);
			gs_buf_release(&plain);
			if (field_checked_by_parse(off))
				assert_int_not_equal(r, GS_OK);
			else
				assert_int_equal(r, GS_EBADSIG);
			/* Even past the signature, the header is the AEAD's
			 * additional data: it would not decrypt. */
			r = open_unverified(env.data, env.len);
			assert_int_not_equal(r, GS_OK);
			if (!field_checked_by_parse(off))
				assert_int_equal(r, GS_EDECRYPT);
			env.data[off] ^= (char)(1 << bit);
		}
	}
	assert_int_equal(ingest(&plain, env.data, env.len), GS_OK);
	gs_buf_release(&plain);
	gs_buf_release(&env);
}

static void
test_flip_body(void **state)
{
	struct gs_buf env, plain;
	size_t off;
	int bit;

	(void)state;
	seal_honest(&env, 1);
	for (off = GS_ENV_HDRBYTES; off < env.len; off++) {
		for (bit = 0; bit < 8; bit++) {
			env.data[off] ^= (char)(1 << bit);
			assert_int_equal(ingest(&plain, env.data, env.len),
			    GS_EBADSIG);
			gs_buf_release(&plain);
			if (off < env.len - 64)
				assert_int_equal(open_unverified(env.data,
				    env.len), GS_EDECRYPT);
			env.data[off] ^= (char)(1 << bit);
		}
	}
	gs_buf_release(&env);
}

static void
test_altered_seq(void **state)
{
	struct gs_buf env, plain;

	(void)state;
	seal_honest(&env, 5);
	gs_put_le64((unsigned char *)env.data + 56, 6);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_EBADSIG);
	gs_buf_release(&plain);
	gs_put_le64((unsigned char *)env.data + 56, 4);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_EBADSIG);
	gs_buf_release(&plain);
	gs_buf_release(&env);
}

static void
test_resigned_by_another_device(void **state)
{
	struct gs_buf env, plain;
	struct gs_envelope_header h;
	unsigned char *e;
	size_t n;

	(void)state;
	seal_honest(&env, 1);
	e = (unsigned char *)env.data;
	n = env.len - 64;
	/* Another enrolled device re-signs a stolen envelope. */
	sign_as(e, n, K.evil_sk);
	/* The header still names the original device, whose key refuses. */
	assert_int_equal(ingest(&plain, env.data, env.len), GS_EBADSIG);
	gs_buf_release(&plain);
	/* Rewriting the device id to its own and re-signing: the signature
	 * is now good, but the header is the AD: it does not decrypt. */
	memset(e + 24, 0xee, 16);
	sign_as(e, n, K.evil_sk);
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL), GS_OK);
	assert_int_equal(gs_envelope_verify(&h, e, env.len, K.evil_pk),
	    GS_OK);
	gs_buf_init(&plain, GS_ENV_MAX_PLAIN);
	assert_int_equal(gs_envelope_open(&plain, &h, e, env.len, K.plat_pk,
	    K.plat_sk), GS_EDECRYPT);
	gs_buf_release(&plain);
	gs_buf_release(&env);
}

static void
test_wrong_platform_key(void **state)
{
	struct gs_buf env, plain;
	struct gs_envelope_header h;

	(void)state;
	seal_honest(&env, 1);
	assert_int_equal(gs_envelope_parse(&h, env.data, env.len, NULL),
	    GS_OK);
	assert_int_equal(gs_envelope_verify(&h, env.data, env.len, K.dev_pk),
	    GS_OK);
	gs_buf_init(&plain, GS_ENV_MAX_PLAIN);
	/* Another key pair: its key id differs, and the message names the
	 * key the envelope wants (after a rotation, which one to pick). */
	assert_int_equal(gs_envelope_open(&plain, &h, env.data, env.len,
	    K.other_pk, K.other_sk), GS_EDECRYPT);
	assert_non_null(strstr(gs_errmsg(GS_EDECRYPT),
	    "sealed to platform key"));
	/* The right public key with another secret key: the AEAD fails. */
	assert_int_equal(gs_envelope_open(&plain, &h, env.data, env.len,
	    K.plat_pk, K.other_sk), GS_EDECRYPT);
	assert_int_equal(plain.len, 0);
	/* The wrong device key. */
	assert_int_equal(gs_envelope_verify(&h, env.data, env.len, K.evil_pk),
	    GS_EBADSIG);
	gs_buf_release(&plain);
	gs_buf_release(&env);
}

static void
test_other_deployment(void **state)
{
	struct gs_buf env;
	struct gs_envelope_header h;
	unsigned char mine[16];

	(void)state;
	seal_honest(&env, 1);
	memset(mine, 0xd2, 16);
	assert_int_equal(gs_envelope_parse(&h, env.data, env.len, NULL),
	    GS_OK);
	assert_int_equal(gs_envelope_check_deployment(&h, mine),
	    GS_EDEPLOYMENT);
	assert_non_null(strstr(gs_errmsg(GS_EDEPLOYMENT),
	    "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1"));
	gs_buf_release(&env);
}

static void
test_truncated(void **state)
{
	struct gs_buf env;
	struct gs_envelope_header h;
	size_t n;

	(void)state;
	seal_honest(&env, 1);
	for (n = 0; n < env.len; n++)
		assert_int_equal(gs_envelope_parse(&h, env.data, n, NULL),
		    GS_EENVELOPE);
	/* Padded by one byte. */
	assert_int_equal(gs_buf_putc(&env, 0), GS_OK);
	assert_int_equal(gs_envelope_parse(&h, env.data, env.len, NULL),
	    GS_EENVELOPE);
	gs_buf_release(&env);
}

static void
test_header_checks(void **state)
{
	struct gs_buf env;
	struct gs_envelope_header h;
	struct gs_envelope_limits lim;
	unsigned char *e;

	(void)state;
	seal_honest(&env, 1);
	e = (unsigned char *)env.data;
	e[4] = 2;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EUNSUPPORTED);
	e[4] = 1;
	e[5] = 3;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EUNSUPPORTED);
	e[5] = 0;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EUNSUPPORTED);
	/* Relabelled as the other suite: a header either suite knows,
	 * signed by neither (no downgrade). */
	e[5] = suite == 2 ? 1 : 2;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL), GS_OK);
	assert_int_equal(h.suite, e[5]);
	assert_int_equal(gs_envelope_verify(&h, e, env.len, K.dev_pk),
	    GS_EBADSIG);
	e[5] = (unsigned char)suite;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL), GS_OK);
	assert_int_equal(h.suite, suite);
	assert_int_equal(gs_envelope_verify(&h, e, env.len, K.dev_pk), GS_OK);
	e[6] = 1;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EUNSUPPORTED);
	e[6] = 0;
	e[0] = 'F';
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EENVELOPE);
	e[0] = 'G';
	e[110] = 1;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EENVELOPE);
	e[110] = 0;
	gs_put_le64(e + 56, 0);
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EENVELOPE);
	gs_put_le64(e + 56, 1);
	e[64] = 1; /* seq 1 with a previous hash */
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EENVELOPE);
	e[64] = 0;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL), GS_OK);

	/* Caps. */
	gs_envelope_limits_default(&lim);
	lim.max_envelope = env.len - 1;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, &lim), GS_ETOOBIG);
	gs_envelope_limits_default(&lim);
	lim.max_plain = strlen(PLAIN) - 1;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, &lim), GS_ETOOBIG);
	gs_envelope_limits_default(&lim);
	lim.max_records = 1;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, &lim), GS_ETOOBIG);
	/* A plaintext claim beyond deflate's ratio for this ciphertext. */
	gs_put_le64(e + 112, 60u * MIB);
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EINFLATE);
	gs_buf_release(&env);
}

static void
test_seal_refuses(void **state)
{
	struct gs_buf env;
	struct gs_seal_params p;
	unsigned char zero[32] = { 0 };

	(void)state;
	gs_buf_init(&env, GS_ENV_MAX_ENVELOPE);
	params(&p, 0);
	assert_int_equal(gs_envelope_seal(&env, &p, PLAIN, strlen(PLAIN)),
	    GS_EINVAL);
	params(&p, 1);
	memset(p.prev_hash, 1, 32);
	assert_int_equal(gs_envelope_seal(&env, &p, PLAIN, strlen(PLAIN)),
	    GS_EINVAL);
	params(&p, 1);
	assert_int_equal(gs_envelope_seal(&env, &p, PLAIN, 0), GS_EINVAL);
	/* A suite nobody knows. */
	params(&p, 1);
	p.suite = 3;
	assert_int_equal(gs_envelope_seal(&env, &p, PLAIN, strlen(PLAIN)),
	    GS_EINVAL);
	assert_int_equal(env.len, 0);
	params(&p, 1);
	/* A low-order point as the platform key. */
	p.platform_pk = zero;
	assert_int_equal(gs_envelope_seal(&env, &p, PLAIN, strlen(PLAIN)),
	    GS_EDECRYPT);
	/* Too small an output buffer: nothing appended. */
	params(&p, 1);
	gs_buf_release(&env);
	gs_buf_init(&env, 100);
	assert_int_equal(gs_buf_puts(&env, "x"), GS_OK);
	assert_int_equal(gs_envelope_seal(&env, &p, PLAIN, strlen(PLAIN)),
	    GS_ETOOBIG);
	assert_int_equal(env.len, 1);
	gs_buf_release(&env);
}

static void
test_lying_plain_len(void **state)
{
	struct gs_buf honest, z, env, plain;
	size_t n = strlen(PLAIN);

	(void)state;
	seal_honest(&honest, 1);
	gs_buf_init(&z, 4096);
	assert_int_equal(gs_deflate(&z, PLAIN, n, 0), GS_OK);

	/* Control: the forge helper itself makes good envelopes. */
	forge(&env, &honest, z.data, z.len, n);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_OK);
	gs_buf_release(&plain);
	gs_buf_release(&env);

	forge(&env, &honest, z.data, z.len, n - 1);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_EINFLATE);
	assert_int_equal(plain.len, 0);
	gs_buf_release(&plain);
	gs_buf_release(&env);

	forge(&env, &honest, z.data, z.len, n + 1);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_EINFLATE);
	gs_buf_release(&plain);
	gs_buf_release(&env);

	/* Trailing garbage after the zlib stream. */
	assert_int_equal(gs_buf_puts(&z, "junk"), GS_OK);
	forge(&env, &honest, z.data, z.len, n);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_EINFLATE);
	gs_buf_release(&plain);
	gs_buf_release(&env);

	/* Truncated zlib stream. */
	forge(&env, &honest, z.data, z.len - 4 - 3, n);
	assert_int_equal(ingest(&plain, env.data, env.len), GS_EINFLATE);
	gs_buf_release(&plain);
	gs_buf_release(&env);
	gs_buf_release(&z);
	gs_buf_release(&honest);
}

static void
test_bomb(void **state)
{
	struct gs_buf honest, z, env, plain;
	struct gs_envelope_header h;
	size_t big = 32 * MIB;
	char *zeros;

	(void)state;
	seal_honest(&honest, 1);
	zeros = gs_calloc(1, big);
	assert_non_null(zeros);
	gs_buf_init(&z, big);
	assert_int_equal(gs_deflate(&z, zeros, big, 9), GS_OK);
	gs_free(zeros);
	assert_true(z.len < 64 * 1024); /* a 32 KiB stream for 32 MiB */

	/* Claims 1 MiB, holds 32 MiB: stopped at 1 MiB, the output buffer
	 * never grew past the claim. */
	forge(&env, &honest, z.data, z.len, 1 * MIB);
	assert_int_equal(gs_envelope_parse(&h, env.data, env.len, NULL),
	    GS_OK);
	assert_int_equal(gs_envelope_verify(&h, env.data, env.len, K.dev_pk),
	    GS_OK);
	gs_buf_init(&plain, 1 * MIB);
	assert_int_equal(gs_envelope_open(&plain, &h, env.data, env.len,
	    K.plat_pk, K.plat_sk), GS_EINFLATE);
	assert_true(plain.cap <= 1 * MIB + 1);
	assert_int_equal(plain.len, 0);
	gs_buf_release(&plain);
	/* The caller's cap is smaller than the claim: refused, nothing
	 * allocated. */
	gs_buf_init(&plain, 64 * 1024);
	assert_int_equal(gs_envelope_open(&plain, &h, env.data, env.len,
	    K.plat_pk, K.plat_sk), GS_EINFLATE);
	assert_null(plain.data);
	gs_buf_release(&env);

	/* Claims 100 MiB: beyond max_plain, refused by the header check. */
	forge(&env, &honest, z.data, z.len, 100 * MIB);
	assert_int_equal(gs_envelope_parse(&h, env.data, env.len, NULL),
	    GS_ETOOBIG);
	gs_buf_release(&env);
	gs_buf_release(&z);
	gs_buf_release(&honest);
}

/* Random damage (overwritten bytes, truncation, extension) never crashes
 * and never opens; random buffers are refused by the cheap checks. */
static void
test_random_damage(void **state)
{
	struct gs_buf env, plain;
	unsigned char *copy, junk[1024];
	struct gs_envelope_header h;
	int i, k;

	(void)state;
	seal_honest(&env, 3);
	copy = gs_malloc(env.len + 64);
	assert_non_null(copy);
	for (i = 0; i < 3000; i++) {
		size_t len = env.len;
		int hits = 1 + (int)gs_random_uniform(4);

		memcpy(copy, env.data, env.len);
		for (k = 0; k < hits; k++)
			copy[gs_random_uniform((uint32_t)env.len)] ^=
			    (unsigned char)(1 + gs_random_uniform(255));
		if (i % 3 == 1)
			len = gs_random_uniform((uint32_t)env.len);
		else if (i % 3 == 2)
			len = env.len + gs_random_uniform(64);
		assert_int_not_equal(ingest(&plain, copy, len), GS_OK);
		assert_int_equal(plain.len, 0);
		gs_buf_release(&plain);
	}
	for (i = 0; i < 3000; i++) {
		size_t len = gs_random_uniform(sizeof junk);

		gs_random(junk, len);
		if (i % 2)
			memcpy(junk, "GSB1\1\1\0\0", len < 8 ? len : 8);
		assert_int_not_equal(gs_envelope_parse(&h, junk, len, NULL),
		    GS_OK);
	}
	gs_free(copy);
	gs_buf_release(&env);
}

/* Every allocation of seal and of open failing in turn: GS_ENOMEM (or
 * success once nothing fails), nothing appended, nothing leaked. */
static void
test_torture(void **state)
{
	struct gs_buf env, out, plain;
	struct gs_seal_params p;
	struct gs_envelope_header h;
	long n, failed;
	int r, done;

	(void)state;
	params(&p, 1);
	for (n = 0, done = 0; !done; n++) {
		gs_buf_init(&out, GS_ENV_MAX_ENVELOPE);
		(void)gs_mem_fail_after(n);
		r = gs_envelope_seal(&out, &p, PLAIN, strlen(PLAIN));
		failed = gs_mem_fail_after(-1);
		if (r == GS_OK) {
			done = failed == 0;
		} else {
			assert_int_equal(r, GS_ENOMEM);
			assert_int_equal(out.len, 0);
		}
		gs_buf_release(&out);
	}
	seal_honest(&env, 1);
	assert_int_equal(gs_envelope_parse(&h, env.data, env.len, NULL),
	    GS_OK);
	for (n = 0, done = 0; !done; n++) {
		gs_buf_init(&plain, GS_ENV_MAX_PLAIN);
		(void)gs_mem_fail_after(n);
		r = gs_envelope_verify(&h, env.data, env.len, K.dev_pk);
		if (r == GS_OK)
			r = gs_envelope_open(&plain, &h, env.data, env.len,
			    K.plat_pk, K.plat_sk);
		failed = gs_mem_fail_after(-1);
		if (r == GS_OK) {
			assert_memory_equal(plain.data, PLAIN, plain.len);
			done = failed == 0;
		} else {
			assert_int_equal(r, GS_ENOMEM);
			assert_int_equal(plain.len, 0);
		}
		gs_buf_release(&plain);
	}
	gs_buf_release(&env);
}

/* Mutation campaign (tests/MUTANTS.md): each bound at its very edge, so
 * that a check loosened by one (a byte, a unit) is seen. */
static void
test_edges(void **state)
{
	struct gs_buf env;
	struct gs_envelope_header h;
	unsigned char *e, mine[16];
	uint64_t ct;

	(void)state;
	seal_honest(&env, 1);
	e = (unsigned char *)env.data;
	/* reserved = 1, the smallest value that is not 0. */
	e[108] = 1;
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EENVELOPE);
	e[108] = 0;
	/* The ratio bound counts the zlib bytes, not the AEAD tag:
	 * 1032 x (ct_len - 16) is the most, one ratio-step more is not. */
	ct = gs_get_le64(e + 120);
	gs_put_le64(e + 112, GS_INFLATE_MAX_RATIO * (ct - 16) +
	    GS_INFLATE_MAX_RATIO - 1);
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL), GS_OK);
	gs_put_le64(e + 112, GS_INFLATE_MAX_RATIO * (ct - 16 + 1));
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL),
	    GS_EINFLATE);
	gs_put_le64(e + 112, strlen(PLAIN));
	assert_int_equal(gs_envelope_parse(&h, e, env.len, NULL), GS_OK);
	/* A deployment that differs in its last byte only. */
	memset(mine, 0xd1, 16);
	mine[15] = 0xd2;
	assert_int_equal(gs_envelope_check_deployment(&h, mine),
	    GS_EDEPLOYMENT);
	mine[15] = 0xd1;
	assert_int_equal(gs_envelope_check_deployment(&h, mine), GS_OK);
	/* verify checks the length again for a caller that skipped parse:
	 * a byte appended after the signature is refused there too. */
	assert_int_equal(gs_envelope_verify(&h, e, env.len, K.dev_pk), GS_OK);
	assert_int_equal(gs_buf_putc(&env, 0), GS_OK);
	e = (unsigned char *)env.data;
	assert_int_equal(gs_envelope_verify(&h, e, env.len, K.dev_pk),
	    GS_EENVELOPE);
	gs_buf_release(&env);
}

static int
suite1(void **state)
{
	(void)state;
	suite = GS_ENV_SUITE;
	return 0;
}

static int
suite2(void **state)
{
	(void)state;
	suite = GS_ENV_SUITE_PH;
	return 0;
}

/* Each test with suite 1, then with suite 2. */
#define BOTH(f) { #f, f, suite1, NULL, NULL }, \
	{ #f " (suite 2)", f, suite2, NULL, NULL }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		BOTH(test_honest),
		BOTH(test_chain_seq),
		BOTH(test_flip_header),
		BOTH(test_flip_body),
		BOTH(test_altered_seq),
		BOTH(test_resigned_by_another_device),
		BOTH(test_wrong_platform_key),
		BOTH(test_other_deployment),
		BOTH(test_truncated),
		BOTH(test_header_checks),
		BOTH(test_seal_refuses),
		BOTH(test_lying_plain_len),
		BOTH(test_bomb),
		BOTH(test_random_damage),
		BOTH(test_torture),
		BOTH(test_edges),
	};

	if (gs_crypto_init() != GS_OK)
		return 1;
	seed_keys();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
