/*
 * crypto.c - the libsodium seam: every call into libsodium goes through
 * this file, where its results become our error codes.
 *
 * The wrappers are thin on purpose: the choice of primitives is made once,
 * here, and the rest of the project sees sizes and error codes only.  Size
 * macros in crypto.h are checked against libsodium's at compile time.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <sodium.h>

#include "core/error.h"
#include "core/mem.h"
#include "crypto.h"
#include "core/banned.h"

_Static_assert(GS_KX_PKBYTES == crypto_kx_PUBLICKEYBYTES, "kx pk");
_Static_assert(GS_KX_SKBYTES == crypto_kx_SECRETKEYBYTES, "kx sk");
_Static_assert(GS_KX_SEEDBYTES == crypto_kx_SEEDBYTES, "kx seed");
_Static_assert(GS_KX_SESSIONBYTES == crypto_kx_SESSIONKEYBYTES, "kx sess");
_Static_assert(GS_SIGN_PKBYTES == crypto_sign_PUBLICKEYBYTES, "sign pk");
_Static_assert(GS_SIGN_SKBYTES == crypto_sign_SECRETKEYBYTES, "sign sk");
_Static_assert(GS_SIGN_SEEDBYTES == crypto_sign_SEEDBYTES, "sign seed");
_Static_assert(GS_SIGBYTES == crypto_sign_BYTES, "sig");
_Static_assert(GS_AEAD_KEYBYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
    "aead key");
_Static_assert(
    GS_AEAD_NONCEBYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
    "aead nonce");
_Static_assert(
    GS_AEAD_TAGBYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "aead tag");
_Static_assert(GS_AEAD_KEYBYTES == GS_KX_SESSIONBYTES, "session = aead");
_Static_assert(GS_HASH_MINBYTES == crypto_generichash_BYTES_MIN, "hmin");
_Static_assert(GS_HASH_MAXBYTES == crypto_generichash_BYTES_MAX, "hmax");
_Static_assert(GS_HASH_KEYMAXBYTES == crypto_generichash_KEYBYTES_MAX, "hk");

int
gs_crypto_init(void)
{
	struct rlimit rl = {0, 0};

	/* sodium_init is thread-safe and returns 1 when already done. */
	if (sodium_init() < 0)
		return GS_FAIL(GS_ECRYPTO, "libsodium failed to initialize");
	/* Secrets live in this process's memory: never dump it. */
	(void)setrlimit(RLIMIT_CORE, &rl);
	return GS_OK;
}

void
gs_random(void *buf, size_t n)
{
	randombytes_buf(buf, n);
}

uint32_t
gs_random_uniform(uint32_t upper)
{
	return randombytes_uniform(upper);
}

/*
 * The replayable stream of gs_crypto_testing_replayable_random: call i
 * gives randombytes_buf_deterministic under BLAKE2b-256(key = seed, i).
 * The simulation is single-threaded; the lock only keeps a stray thread
 * from corrupting the counter.
 */
static unsigned char replay_key[crypto_generichash_KEYBYTES];
static uint64_t replay_calls;
static pthread_mutex_t replay_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *
replay_name(void)
{
	return "gridsync-replayable-test-stream";
}

static void
replay_buf(void *buf, size_t n)
{
	unsigned char seed[randombytes_SEEDBYTES], ctr[8];
	uint64_t c;
	int i;

	(void)pthread_mutex_lock(&replay_lock);
	c = replay_calls++;
	for (i = 0; i < 8; i++)
		ctr[i] = (unsigned char)(c >> (8 * i));
	crypto_generichash(seed, sizeof(seed), ctr, sizeof(ctr), replay_key,
	    sizeof(replay_key));
	(void)pthread_mutex_unlock(&replay_lock);
	randombytes_buf_deterministic(buf, n, seed);
	sodium_memzero(seed, sizeof(seed));
}

static uint32_t
replay_random(void)
{
	uint32_t v;

	replay_buf(&v, sizeof(v));
	return v;
}

static randombytes_implementation replay_impl = {
	.implementation_name = replay_name,
	.random = replay_random,
	.buf = replay_buf,
};

void
gs_crypto_testing_replayable_random(const unsigned char seed[32])
{
	(void)pthread_mutex_lock(&replay_lock);
	memcpy(replay_key, seed, 32);
	replay_calls = 0;
	(void)pthread_mutex_unlock(&replay_lock);
	(void)randombytes_set_implementation(&replay_impl);
}

/* ---------------------------------------------------------------- keys */

void
gs_crypto_kx_keypair(
    unsigned char pk[GS_KX_PKBYTES], unsigned char sk[GS_KX_SKBYTES])
{
	/* crypto_kx_keypair cannot fail (it always returns 0). */
	(void)crypto_kx_keypair(pk, sk);
}

void
gs_crypto_kx_seed_keypair(unsigned char pk[GS_KX_PKBYTES],
    unsigned char sk[GS_KX_SKBYTES], const unsigned char seed[GS_KX_SEEDBYTES])
{
	(void)crypto_kx_seed_keypair(pk, sk, seed);
}

int
gs_crypto_kx_client(unsigned char rx[GS_KX_SESSIONBYTES],
    unsigned char tx[GS_KX_SESSIONBYTES],
    const unsigned char client_pk[GS_KX_PKBYTES],
    const unsigned char client_sk[GS_KX_SKBYTES],
    const unsigned char server_pk[GS_KX_PKBYTES])
{
	/* -1 means the peer key is a low-order point: the shared secret
	 * would be predictable, so nothing may be sent under it. */
	if (crypto_kx_client_session_keys(
		rx, tx, client_pk, client_sk, server_pk) != 0)
		return GS_EDECRYPT;
	return GS_OK;
}

int
gs_crypto_kx_server(unsigned char rx[GS_KX_SESSIONBYTES],
    unsigned char tx[GS_KX_SESSIONBYTES],
    const unsigned char server_pk[GS_KX_PKBYTES],
    const unsigned char server_sk[GS_KX_SKBYTES],
    const unsigned char client_pk[GS_KX_PKBYTES])
{
	if (crypto_kx_server_session_keys(
		rx, tx, server_pk, server_sk, client_pk) != 0)
		return GS_EDECRYPT;
	return GS_OK;
}

void
gs_crypto_sign_keypair(
    unsigned char pk[GS_SIGN_PKBYTES], unsigned char sk[GS_SIGN_SKBYTES])
{
	(void)crypto_sign_keypair(pk, sk);
}

void
gs_crypto_sign_seed_keypair(unsigned char pk[GS_SIGN_PKBYTES],
    unsigned char sk[GS_SIGN_SKBYTES],
    const unsigned char seed[GS_SIGN_SEEDBYTES])
{
	(void)crypto_sign_seed_keypair(pk, sk, seed);
}

void
gs_crypto_sign_sk_to_pk(
    unsigned char pk[GS_SIGN_PKBYTES], const unsigned char sk[GS_SIGN_SKBYTES])
{
	(void)crypto_sign_ed25519_sk_to_pk(pk, sk);
}

int
gs_crypto_sign_pk_to_kx(unsigned char xpk[GS_KX_PKBYTES],
    const unsigned char pk[GS_SIGN_PKBYTES])
{
	if (crypto_sign_ed25519_pk_to_curve25519(xpk, pk) != 0)
		return GS_FAIL(GS_ECRYPTO, "Ed25519 public key has no X25519 "
		    "form");
	return GS_OK;
}

int
gs_crypto_sign_sk_to_kx(unsigned char xsk[GS_KX_SKBYTES],
    const unsigned char sk[GS_SIGN_SKBYTES])
{
	if (crypto_sign_ed25519_sk_to_curve25519(xsk, sk) != 0)
		return GS_FAIL(GS_ECRYPTO, "Ed25519 secret key conversion");
	return GS_OK;
}

void
gs_crypto_key_id(unsigned char kid[GS_KIDBYTES], const void *pk, size_t pklen)
{
	unsigned char h[GS_HASHBYTES];

	/* A truncated BLAKE2b-256, not BLAKE2b-64: the wire says "the first
	 * 8 bytes of BLAKE2b-256", and BLAKE2b's output length is an input
	 * to the hash, so the two differ. */
	crypto_generichash(h, sizeof h, pk, pklen, NULL, 0);
	memcpy(kid, h, GS_KIDBYTES);
}

/* ----------------------------------------------------------- signatures */

int
gs_crypto_sign(unsigned char sig[GS_SIGBYTES], const void *m, size_t mlen,
    const unsigned char sk[GS_SIGN_SKBYTES])
{
	if (crypto_sign_detached(sig, NULL, m, mlen, sk) != 0)
		return GS_FAIL(GS_ECRYPTO, "Ed25519 signing failed");
	return GS_OK;
}

int
gs_crypto_verify(const unsigned char sig[GS_SIGBYTES], const void *m,
    size_t mlen, const unsigned char pk[GS_SIGN_PKBYTES])
{
	if (crypto_sign_verify_detached(sig, m, mlen, pk) != 0)
		return GS_EBADSIG;
	return GS_OK;
}

/* ----------------------------------------------------------------- AEAD */

int
gs_crypto_aead_encrypt(unsigned char *ct, const void *m, size_t mlen,
    const void *ad, size_t adlen, const unsigned char nonce[GS_AEAD_NONCEBYTES],
    const unsigned char key[GS_AEAD_KEYBYTES])
{
	unsigned long long clen = 0;

	if (crypto_aead_xchacha20poly1305_ietf_encrypt(
		ct, &clen, m, mlen, ad, adlen, NULL, nonce, key) != 0)
		return GS_FAIL(GS_ECRYPTO, "AEAD encryption failed");
	return GS_OK;
}

void
gs_crypto_xaead_subkey(unsigned char sub[GS_AEAD_KEYBYTES],
    const unsigned char key[GS_AEAD_KEYBYTES], const unsigned char prefix[16])
{
	/* What crypto_aead_xchacha20poly1305_ietf_encrypt does first. */
	(void)crypto_core_hchacha20(sub, prefix, key, NULL);
}

int
gs_crypto_xaead_encrypt(unsigned char *ct, const void *m, size_t mlen,
    const void *ad, size_t adlen, const unsigned char tail[8],
    const unsigned char sub[GS_AEAD_KEYBYTES])
{
	unsigned char npub[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = { 0 };
	unsigned long long clen = 0;

	/* ... and then: ChaCha20-Poly1305-IETF under the subkey, with
	 * 4 zero bytes and the nonce's last 8 as its nonce. */
	memcpy(npub + 4, tail, 8);
	if (crypto_aead_chacha20poly1305_ietf_encrypt(ct, &clen, m, mlen, ad,
	    adlen, NULL, npub, sub) != 0)
		return GS_FAIL(GS_ECRYPTO, "AEAD encryption failed");
	return GS_OK;
}

int
gs_crypto_xaead_decrypt(unsigned char *m, const unsigned char *ct,
    size_t ctlen, const void *ad, size_t adlen, const unsigned char tail[8],
    const unsigned char sub[GS_AEAD_KEYBYTES])
{
	unsigned char npub[crypto_aead_chacha20poly1305_IETF_NPUBBYTES] = { 0 };
	unsigned long long mlen = 0;

	/* What crypto_aead_xchacha20poly1305_ietf_decrypt does after its
	 * HChaCha20 step (as gs_crypto_xaead_encrypt). */
	if (ctlen < GS_AEAD_TAGBYTES)
		return GS_EDECRYPT;
	memcpy(npub + 4, tail, 8);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(m, &mlen, NULL, ct,
	    ctlen, ad, adlen, npub, sub) != 0) {
		sodium_memzero(m, ctlen - GS_AEAD_TAGBYTES);
		return GS_EDECRYPT;
	}
	return GS_OK;
}

int
gs_crypto_aead_decrypt(unsigned char *m, const unsigned char *ct, size_t ctlen,
    const void *ad, size_t adlen, const unsigned char nonce[GS_AEAD_NONCEBYTES],
    const unsigned char key[GS_AEAD_KEYBYTES])
{
	unsigned long long mlen = 0;

	if (ctlen < GS_AEAD_TAGBYTES)
		return GS_EDECRYPT;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(
		m, &mlen, NULL, ct, ctlen, ad, adlen, nonce, key) != 0) {
		/* libsodium leaves m untouched or partial on failure: make
		 * sure no unauthenticated plaintext survives. */
		sodium_memzero(m, ctlen - GS_AEAD_TAGBYTES);
		return GS_EDECRYPT;
	}
	return GS_OK;
}

/* -------------------------------------------------------------- hashing */

static void
check_hash_lengths(size_t outlen, const void *key, size_t keylen)
{
	/* Lengths are compile-time choices of the callers, so a wrong one
	 * is a bug, not an input error. */
	if (outlen < GS_HASH_MINBYTES || outlen > GS_HASH_MAXBYTES ||
	    (key != NULL && (keylen < crypto_generichash_KEYBYTES_MIN ||
				keylen > GS_HASH_KEYMAXBYTES)))
		abort();
}

void
gs_crypto_hash(unsigned char *out, size_t outlen, const void *in, size_t inlen,
    const void *key, size_t keylen)
{
	check_hash_lengths(outlen, key, keylen);
	crypto_generichash(
	    out, outlen, in, inlen, key, key != NULL ? keylen : 0);
}

struct gs_hash {
	crypto_generichash_state st;
	size_t outlen;
};

struct gs_hash *
gs_crypto_hash_new(size_t outlen, const void *key, size_t keylen)
{
	struct gs_hash *h;

	check_hash_lengths(outlen, key, keylen);
	/* The state wants 64-byte alignment; gs_malloc gives 16, which
	 * libsodium's portable code accepts, but be exact anyway. */
	if ((h = aligned_alloc(64, (sizeof *h + 63) / 64 * 64)) == NULL)
		return NULL;
	h->outlen = outlen;
	crypto_generichash_init(&h->st, key, key != NULL ? keylen : 0, outlen);
	return h;
}

void
gs_crypto_hash_update(struct gs_hash *h, const void *in, size_t inlen)
{
	if (h != NULL)
		crypto_generichash_update(&h->st, in, inlen);
}

int
gs_crypto_hash_final(struct gs_hash *h, unsigned char *out)
{
	if (h == NULL)
		return GS_ENOMEM;
	crypto_generichash_final(&h->st, out, h->outlen);
	gs_crypto_hash_free(h);
	return GS_OK;
}

void
gs_crypto_hash_free(struct gs_hash *h)
{
	if (h == NULL)
		return;
	/* A keyed state holds the key: wipe it. */
	sodium_memzero(h, sizeof *h);
	free(h);
}

/* ------------------------------------------------------- memory, helpers */

void *
gs_crypto_secure_alloc(size_t n)
{
	return sodium_malloc(n);
}

void
gs_crypto_secure_free(void *p)
{
	if (p != NULL)
		sodium_free(p);
}

int
gs_crypto_secure_noaccess(void *p)
{
	if (sodium_mprotect_noaccess(p) != 0)
		return GS_FAIL(GS_ECRYPTO, "mprotect(noaccess) failed");
	return GS_OK;
}

int
gs_crypto_secure_readonly(void *p)
{
	if (sodium_mprotect_readonly(p) != 0)
		return GS_FAIL(GS_ECRYPTO, "mprotect(readonly) failed");
	return GS_OK;
}

int
gs_crypto_secure_readwrite(void *p)
{
	if (sodium_mprotect_readwrite(p) != 0)
		return GS_FAIL(GS_ECRYPTO, "mprotect(readwrite) failed");
	return GS_OK;
}

void
gs_crypto_memzero(void *p, size_t n)
{
	if (p != NULL && n > 0)
		sodium_memzero(p, n);
}

int
gs_crypto_memcmp(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0 ? 0 : -1;
}

int
gs_crypto_is_zero(const void *p, size_t n)
{
	return sodium_is_zero(p, n);
}

size_t
gs_crypto_b64_encode(char *out, const void *in, size_t n)
{
	sodium_bin2base64(out, GS_B64_LEN(n), in, n,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return strlen(out);
}

int
gs_crypto_b64_decode(unsigned char *out, size_t outmax, size_t *outlen,
    const char *in, size_t inlen)
{
	const char *end = NULL;
	size_t n = 0;

	/* A decoded length that cannot fit is refused before decoding, so
	 * that "too big" is told apart from "bad character". */
	if (inlen / 4 * 3 + (inlen % 4 ? inlen % 4 - 1 : 0) > outmax)
		return GS_ETOOBIG;
	if (sodium_base642bin(out, outmax, in, inlen, NULL, &n, &end,
		sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != in + inlen)
		return GS_EPARSE;
	*outlen = n;
	return GS_OK;
}

/* --------------------------------------------------------- secretstream */

_Static_assert(GS_SS_KEYBYTES == crypto_secretstream_xchacha20poly1305_KEYBYTES,
    "ss key");
_Static_assert(
    GS_SS_HEADERBYTES == crypto_secretstream_xchacha20poly1305_HEADERBYTES,
    "ss header");
_Static_assert(GS_SS_ABYTES == crypto_secretstream_xchacha20poly1305_ABYTES,
    "ss abytes");
_Static_assert(sizeof(crypto_secretstream_xchacha20poly1305_state) ==
	GS_SS_STATEBYTES,
    "ss state");
_Static_assert(_Alignof(crypto_secretstream_xchacha20poly1305_state) == 1,
    "ss state alignment");

/* The state is libsodium's struct of byte arrays, kept in our opaque
 * bytes of the same size and alignment (both checked above). */
static crypto_secretstream_xchacha20poly1305_state *
ss_state(struct gs_ss *s)
{
	return (crypto_secretstream_xchacha20poly1305_state *)(void *)s->opaque;
}

int
gs_crypto_ss_init_push(struct gs_ss *s,
    unsigned char header[GS_SS_HEADERBYTES],
    const unsigned char key[GS_SS_KEYBYTES])
{
	if (crypto_secretstream_xchacha20poly1305_init_push(ss_state(s), header,
		key) != 0)
		return GS_FAIL(GS_ECRYPTO, "secretstream init failed");
	return GS_OK;
}

int
gs_crypto_ss_push(struct gs_ss *s, unsigned char *c, const void *m,
    size_t mlen, const void *ad, size_t adlen, int final)
{
	unsigned char tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
				  : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;

	if (crypto_secretstream_xchacha20poly1305_push(ss_state(s), c, NULL, m,
		mlen, ad, adlen, tag) != 0)
		return GS_FAIL(GS_ECRYPTO, "secretstream push failed");
	return GS_OK;
}

int
gs_crypto_ss_init_pull(struct gs_ss *s,
    const unsigned char header[GS_SS_HEADERBYTES],
    const unsigned char key[GS_SS_KEYBYTES])
{
	if (crypto_secretstream_xchacha20poly1305_init_pull(ss_state(s), header,
		key) != 0)
		return GS_EDECRYPT;
	return GS_OK;
}

int
gs_crypto_ss_pull(struct gs_ss *s, unsigned char *m, int *final,
    const unsigned char *c, size_t clen, const void *ad, size_t adlen)
{
	unsigned char tag = 0xff;

	*final = 0;
	if (clen < GS_SS_ABYTES ||
	    crypto_secretstream_xchacha20poly1305_pull(ss_state(s), m, NULL, &tag,
		c, clen, ad, adlen) != 0)
		return GS_EDECRYPT;
	/* PUSH and REKEY are valid libsodium tags, but our writer never
	 * sends them: anything unexpected is refused, not interpreted. */
	if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL)
		*final = 1;
	else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE)
		return GS_EDECRYPT;
	return GS_OK;
}

void
gs_crypto_ss_wipe(struct gs_ss *s)
{
	if (s != NULL)
		sodium_memzero(s, sizeof(*s));
}

/* ------------------------------------------------ password hashing (H9) */

_Static_assert(GS_PWHASH_SALTBYTES == crypto_pwhash_SALTBYTES, "pwhash salt");

int
gs_crypto_pwhash(unsigned char *out, size_t outlen, const char *pass,
    size_t passlen, const unsigned char salt[GS_PWHASH_SALTBYTES],
    unsigned long long opslimit, size_t memlimit)
{
	if (opslimit < crypto_pwhash_OPSLIMIT_MIN ||
	    opslimit > crypto_pwhash_OPSLIMIT_MAX ||
	    memlimit < crypto_pwhash_MEMLIMIT_MIN ||
	    memlimit > crypto_pwhash_MEMLIMIT_MAX ||
	    outlen < crypto_pwhash_BYTES_MIN)
		return GS_FAIL(GS_EINVAL, "pwhash: limits out of range "
		    "(ops %llu, mem %zu)", opslimit, memlimit);
	if (crypto_pwhash(out, outlen, pass, passlen, salt, opslimit,
	    memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return GS_FAIL(GS_ENOMEM, "pwhash: cannot get %zu bytes of "
		    "memory", memlimit);
	return GS_OK;
}
