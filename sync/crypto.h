/*
 * crypto.h - the libsodium seam.  sync/crypto.c is the only file of the
 * project that includes <sodium.h>; everything else calls these.
 *
 * The primitives (all from libsodium 1.0.18, high-level APIs only):
 *   key exchange  X25519 crypto_kx (client/server session keys)
 *   AEAD          XChaCha20-Poly1305-IETF (24-byte nonce, 16-byte tag)
 *   signatures    Ed25519 detached (crypto_sign_detached)
 *   hashing       BLAKE2b (crypto_generichash), keyed or not, 16..64 bytes
 *
 * Signing and key-exchange keys are never the same key pair (libsodium's
 * advice); the sizes below are fixed by the primitives and by the wire.
 * Secret keys are plain byte arrays owned by the caller; keep them in
 * gs_crypto_secure_alloc() memory while held and gs_crypto_memzero() any
 * stack copy before returning.
 */
#ifndef GS_CRYPTO_H
#define GS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define GS_KX_PKBYTES 32      /* X25519 public key */
#define GS_KX_SKBYTES 32      /* X25519 secret key */
#define GS_KX_SEEDBYTES 32    /* seed for a deterministic kx key pair */
#define GS_KX_SESSIONBYTES 32 /* each of rx and tx */
#define GS_SIGN_PKBYTES 32    /* Ed25519 public key */
#define GS_SIGN_SKBYTES 64    /* Ed25519 secret key (seed || public key) */
#define GS_SIGN_SEEDBYTES 32  /* seed for a deterministic sign key pair */
#define GS_SIGBYTES 64        /* Ed25519 detached signature */
#define GS_AEAD_KEYBYTES 32
#define GS_AEAD_NONCEBYTES 24
#define GS_AEAD_TAGBYTES 16
#define GS_HASHBYTES 32       /* BLAKE2b-256: envelope hashes, key ids */
#define GS_HASH_MINBYTES 16
#define GS_HASH_MAXBYTES 64
#define GS_HASH_KEYMAXBYTES 64
#define GS_KIDBYTES 8         /* key id: first 8 bytes of BLAKE2b-256(pk) */

/* Initializes libsodium once per process (thread-safe, idempotent) and
 * disables core dumps so secrets never reach a core file.  GS_OK or
 * GS_ECRYPTO.  Every gs_crypto_* and gs_random call works only after it. */
int gs_crypto_init(void);

/* n unpredictable bytes. */
void gs_random(void *buf, size_t n);
/* A uniform number in [0, upper). */
uint32_t gs_random_uniform(uint32_t upper);

/*
 * TESTS ONLY (tests/sim/sim.c): from now on every random byte of the
 * process (keys, nonces, ids, jitter) is a stream derived from seed, so
 * that a seeded simulation replays byte for byte.  Calling it again
 * restarts the stream from the new seed.  Keys made this way are
 * predictable: no program of the project calls it.
 */
void gs_crypto_testing_replayable_random(const unsigned char seed[32]);

/* ---------------------------------------------------------------- keys */

/* A fresh X25519 key pair for crypto_kx (platform batch key, per-batch
 * ephemeral key).  Cannot fail. */
void gs_crypto_kx_keypair(unsigned char pk[GS_KX_PKBYTES],
    unsigned char sk[GS_KX_SKBYTES]);
/* The same from a seed: deterministic, for test vectors and tests only. */
void gs_crypto_kx_seed_keypair(unsigned char pk[GS_KX_PKBYTES],
    unsigned char sk[GS_KX_SKBYTES],
    const unsigned char seed[GS_KX_SEEDBYTES]);

/* Session keys.  The client (the device's per-batch ephemeral key) sends
 * with tx; the server (the platform batch key) receives with its rx, which
 * equals the client's tx.  GS_OK, or GS_EDECRYPT when the peer's public key
 * is unacceptable (a low-order point).  rx and tx are secrets: wipe them. */
int gs_crypto_kx_client(unsigned char rx[GS_KX_SESSIONBYTES],
    unsigned char tx[GS_KX_SESSIONBYTES],
    const unsigned char client_pk[GS_KX_PKBYTES],
    const unsigned char client_sk[GS_KX_SKBYTES],
    const unsigned char server_pk[GS_KX_PKBYTES]);
int gs_crypto_kx_server(unsigned char rx[GS_KX_SESSIONBYTES],
    unsigned char tx[GS_KX_SESSIONBYTES],
    const unsigned char server_pk[GS_KX_PKBYTES],
    const unsigned char server_sk[GS_KX_SKBYTES],
    const unsigned char client_pk[GS_KX_PKBYTES]);

/* A fresh Ed25519 key pair (device identity, platform receipt key). */
void gs_crypto_sign_keypair(unsigned char pk[GS_SIGN_PKBYTES],
    unsigned char sk[GS_SIGN_SKBYTES]);
/* The same from a seed: deterministic, for test vectors and tests only. */
void gs_crypto_sign_seed_keypair(unsigned char pk[GS_SIGN_PKBYTES],
    unsigned char sk[GS_SIGN_SKBYTES],
    const unsigned char seed[GS_SIGN_SEEDBYTES]);
/* The public key embedded in an Ed25519 secret key. */
void gs_crypto_sign_sk_to_pk(unsigned char pk[GS_SIGN_PKBYTES],
    const unsigned char sk[GS_SIGN_SKBYTES]);

/* The X25519 (crypto_kx) keys of an Ed25519 key pair, so that a device's
 * identity key can also receive sealed data (the pull feed) without a
 * second key at enrollment.  GS_OK, or GS_ECRYPTO for a public key that
 * is not a valid point. */
int gs_crypto_sign_pk_to_kx(unsigned char xpk[GS_KX_PKBYTES],
    const unsigned char pk[GS_SIGN_PKBYTES]);
int gs_crypto_sign_sk_to_kx(unsigned char xsk[GS_KX_SKBYTES],
    const unsigned char sk[GS_SIGN_SKBYTES]);

/* The key id of any public key: the first 8 bytes of BLAKE2b-256(pk).
 * Used in envelope headers and the enroll answer ("batch_kid"). */
void gs_crypto_key_id(unsigned char kid[GS_KIDBYTES], const void *pk,
    size_t pklen);

/* ----------------------------------------------------------- signatures */

/* Ed25519 detached signature of m.  GS_OK or GS_ECRYPTO. */
int gs_crypto_sign(unsigned char sig[GS_SIGBYTES], const void *m, size_t mlen,
    const unsigned char sk[GS_SIGN_SKBYTES]);
/* GS_OK when sig is pk's signature of m, else GS_EBADSIG (no detail is
 * recorded: callers say what was being verified). */
int gs_crypto_verify(const unsigned char sig[GS_SIGBYTES], const void *m,
    size_t mlen, const unsigned char pk[GS_SIGN_PKBYTES]);

/* ----------------------------------------------------------------- AEAD */

/* XChaCha20-Poly1305-IETF.  ct must hold mlen + GS_AEAD_TAGBYTES bytes;
 * ct and m may not overlap.  GS_OK or GS_ECRYPTO. */
int gs_crypto_aead_encrypt(unsigned char *ct, const void *m, size_t mlen,
    const void *ad, size_t adlen,
    const unsigned char nonce[GS_AEAD_NONCEBYTES],
    const unsigned char key[GS_AEAD_KEYBYTES]);
/* m must hold ctlen - GS_AEAD_TAGBYTES bytes.  GS_OK, or GS_EDECRYPT when
 * ctlen is shorter than a tag or the tag does not verify (m is then
 * zeroed).  No detail is recorded. */
int gs_crypto_aead_decrypt(unsigned char *m, const unsigned char *ct,
    size_t ctlen, const void *ad, size_t adlen,
    const unsigned char nonce[GS_AEAD_NONCEBYTES],
    const unsigned char key[GS_AEAD_KEYBYTES]);

/*
 * The same XChaCha20-Poly1305-IETF in two steps, for many messages under
 * one key whose nonces share their first 16 bytes (a counter in the last
 * 8): gs_crypto_xaead_subkey derives once the HChaCha20 subkey of key and
 * that prefix (secret: keep it in secure memory); gs_crypto_xaead_encrypt
 * then encrypts with the subkey and the nonce's last 8 bytes, byte for
 * byte what gs_crypto_aead_encrypt gives with the whole nonce, without
 * one HChaCha20 per message.  GS_OK or GS_ECRYPTO.
 */
void gs_crypto_xaead_subkey(unsigned char sub[GS_AEAD_KEYBYTES],
    const unsigned char key[GS_AEAD_KEYBYTES], const unsigned char prefix[16]);
int gs_crypto_xaead_encrypt(unsigned char *ct, const void *m, size_t mlen,
    const void *ad, size_t adlen, const unsigned char tail[8],
    const unsigned char sub[GS_AEAD_KEYBYTES]);
/* The opening of the same: gs_crypto_aead_decrypt of a message whose
 * nonce is prefix || tail, given the subkey of key and that prefix.  Same
 * answers (GS_OK; GS_EDECRYPT, m zeroed). */
int gs_crypto_xaead_decrypt(unsigned char *m, const unsigned char *ct,
    size_t ctlen, const void *ad, size_t adlen, const unsigned char tail[8],
    const unsigned char sub[GS_AEAD_KEYBYTES]);

/* -------------------------------------------------------------- hashing */

/* BLAKE2b of in into out[outlen], outlen in [16, 64]; keyed when key is
 * not NULL (keylen in [16, 64]).  Aborts on out-of-range lengths (a bug).*/
void gs_crypto_hash(unsigned char *out, size_t outlen, const void *in,
    size_t inlen, const void *key, size_t keylen);

/* Multi-part BLAKE2b for inputs that are not contiguous.
 *	struct gs_hash *h = gs_crypto_hash_new(32, NULL, 0);
 *	gs_crypto_hash_update(h, a, na); gs_crypto_hash_update(h, b, nb);
 *	gs_crypto_hash_final(h, out);	(frees h)
 * _new returns NULL when out of memory; _final and _free accept NULL h
 * (final then returns GS_ENOMEM so an allocation failure is not lost).
 * outlen and keylen as for gs_crypto_hash. */
struct gs_hash;
struct gs_hash *gs_crypto_hash_new(size_t outlen, const void *key,
    size_t keylen);
void gs_crypto_hash_update(struct gs_hash *h, const void *in, size_t inlen);
int gs_crypto_hash_final(struct gs_hash *h, unsigned char *out);
void gs_crypto_hash_free(struct gs_hash *h);

/* ------------------------------------------------------- memory, helpers */

/* sodium_malloc: guard pages, a canary, never swapped where the OS allows.
 * NULL when out of memory.  Free with gs_crypto_secure_free (NULL ok),
 * which zeroes the memory first. */
void *gs_crypto_secure_alloc(size_t n);
void gs_crypto_secure_free(void *p);
/* Make secure memory inaccessible / read-only / read-write between uses.
 * GS_OK or GS_ECRYPTO. */
int gs_crypto_secure_noaccess(void *p);
int gs_crypto_secure_readonly(void *p);
int gs_crypto_secure_readwrite(void *p);

/* Zeroes n bytes in a way the compiler cannot remove.  NULL ok when n 0. */
void gs_crypto_memzero(void *p, size_t n);
/* Constant-time comparison: 0 when equal, -1 otherwise (never an order). */
int gs_crypto_memcmp(const void *a, const void *b, size_t n);
/* 1 when all n bytes are zero, else 0 (constant time). */
int gs_crypto_is_zero(const void *p, size_t n);

/* Base64 URL-safe alphabet without padding (RFC 4648 section 5).
 * encode: out must hold GS_B64_LEN(n) bytes incl. the terminator; returns
 * the text length.  decode: exactly the whole of in (no padding, no
 * spaces); GS_OK with *outlen set, GS_EPARSE on a bad character or
 * length, GS_ETOOBIG when it does not fit in outmax bytes. */
#define GS_B64_LEN(n) ((((n) + 2) / 3) * 4 + 1)
size_t gs_crypto_b64_encode(char *out, const void *in, size_t n);
int gs_crypto_b64_decode(unsigned char *out, size_t outmax, size_t *outlen,
    const char *in, size_t inlen);

/* --------------------------------------------------------- secretstream */

/*
 * crypto_secretstream_xchacha20poly1305: an authenticated stream of
 * messages under one key (sealed attachments, sync/attachment.c).  Each
 * pushed message grows by GS_SS_ABYTES; the stream detects truncated,
 * removed, reordered or duplicated messages only if the reader insists on
 * a final message tagged GS_SS_FINAL, which gs_crypto_ss_pull reports.
 * The state holds a key: gs_crypto_ss_wipe it when done.
 */
#define GS_SS_KEYBYTES 32
#define GS_SS_HEADERBYTES 24
#define GS_SS_ABYTES 17
#define GS_SS_STATEBYTES 52

struct gs_ss {
	unsigned char opaque[GS_SS_STATEBYTES];
};

/* Starts a stream to push: writes its header (to send first).  GS_OK or
 * GS_ECRYPTO. */
int gs_crypto_ss_init_push(struct gs_ss *s,
    unsigned char header[GS_SS_HEADERBYTES],
    const unsigned char key[GS_SS_KEYBYTES]);
/* Encrypts m[0..mlen) into c (mlen + GS_SS_ABYTES bytes) with optional
 * additional data; final != 0 tags it as the last message.  GS_OK or
 * GS_ECRYPTO. */
int gs_crypto_ss_push(struct gs_ss *s, unsigned char *c, const void *m,
    size_t mlen, const void *ad, size_t adlen, int final);
/* Starts a stream to pull from its header.  GS_OK or GS_EDECRYPT. */
int gs_crypto_ss_init_pull(struct gs_ss *s,
    const unsigned char header[GS_SS_HEADERBYTES],
    const unsigned char key[GS_SS_KEYBYTES]);
/* Decrypts one message c[0..clen) into m (clen - GS_SS_ABYTES bytes).
 * *final is 1 when it carried the final tag, else 0.  GS_OK, or
 * GS_EDECRYPT when it does not verify, is shorter than GS_SS_ABYTES, or
 * carries a tag other than message/final (we never send others).  No
 * detail is recorded. */
int gs_crypto_ss_pull(struct gs_ss *s, unsigned char *m, int *final,
    const unsigned char *c, size_t clen, const void *ad, size_t adlen);
/* Zeroes the state.  NULL ok. */
void gs_crypto_ss_wipe(struct gs_ss *s);

/* ------------------------------------------------ password hashing (H9) */

/*
 * Argon2id (crypto_pwhash, ALG_ARGON2ID13): a key from a passphrase, for
 * wrapping the agent's data key.  opslimit/memlimit are stored beside the
 * salt so later programs can change the defaults without stranding a
 * store.  GS_OK; GS_EINVAL when a limit is outside libsodium's bounds;
 * GS_ENOMEM when the memory cannot be had (crypto_pwhash fails then).
 * out is a secret: wipe it.
 */
#define GS_PWHASH_SALTBYTES 16
#define GS_PWHASH_OPSMIN 1ULL
#define GS_PWHASH_MEMMIN 8192ULL
int gs_crypto_pwhash(unsigned char *out, size_t outlen, const char *pass,
    size_t passlen, const unsigned char salt[GS_PWHASH_SALTBYTES],
    unsigned long long opslimit, size_t memlimit);

#endif
