/*
 * envelope.h - the GSB1 batch envelope: seal (device) and open (platform).
 *
 * Layout (docs/PROTOCOL.md has every byte; integers little-endian):
 *
 *	header (GS_ENV_HDRBYTES = 200) || ciphertext (ct_len) || signature (64)
 *
 *	off size field
 *	  0   4 magic "GSB1"
 *	  4   1 version = 1
 *	  5   1 suite = 1 or 2 (kx-X25519, XChaCha20-Poly1305-IETF, Ed25519,
 *	        zlib; 2 signs a BLAKE2b-512 of the ciphertext, below)
 *	  6   2 flags = 0
 *	  8  16 deployment id
 *	 24  16 device id
 *	 40  16 batch id (random; the idempotency key)
 *	 56   8 seq (per device, gapless from 1)
 *	 64  32 prev envelope hash (all zero for seq 1)
 *	 96   8 created_at (ms, device clock; informational)
 *	104   4 record count
 *	108   4 reserved = 0
 *	112   8 plain_len (bytes of the NDJSON plaintext before deflate)
 *	120   8 ct_len (= zlib stream length + 16)
 *	128   8 platform key id (of the platform batch kx public key)
 *	136   8 device key id (of the device's Ed25519 public key)
 *	144  32 ephemeral X25519 public key
 *	176  24 nonce
 *
 * Seal: zlib-deflate the plaintext; crypto_kx client session keys of a
 * fresh ephemeral key pair against the platform batch public key; AEAD
 * (XChaCha20-Poly1305-IETF, key = client tx) over the zlib stream with the
 * whole 200-byte header as additional data; Ed25519 detached signature by
 * the device key over "GSB1-sig" || header || ciphertext (suite 1), or
 * over "GSB1-sg2" || header || BLAKE2b-512(ciphertext) (suite 2: Ed25519
 * hashes what it signs twice with SHA-512, and verifying once; BLAKE2b
 * once over the ciphertext is several times cheaper than those passes).
 * Envelope hash = BLAKE2b-256 of all the envelope's bytes.
 *
 * Open, in this order (each step is cheap before the next is allowed):
 *   gs_envelope_parse   sizes and header syntax, caps      -> header
 *   gs_envelope_verify  signature with the device's key    (before any
 *                                                           decryption)
 *   gs_envelope_open    decrypt, bounded inflate to exactly plain_len
 */
#ifndef GS_ENVELOPE_H
#define GS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "crypto.h"

#define GS_ENV_MAGIC "GSB1"
#define GS_ENV_VERSION 1
#define GS_ENV_SUITE 1    /* the signature over the ciphertext itself */
#define GS_ENV_SUITE_PH 2 /* over its BLAKE2b-512 (docs/PROTOCOL.md 3) */
#define GS_ENV_HDRBYTES 200
#define GS_ENV_NONCE_OFF 176
#define GS_ENV_SIGCTX "GSB1-sig" /* 8 bytes, signed before the header */
#define GS_ENV_SIGCTX_PH "GSB1-sg2" /* the same, suite 2 */
/* Header + the smallest ciphertext (a tag) + signature. */
#define GS_ENV_MINBYTES (GS_ENV_HDRBYTES + GS_AEAD_TAGBYTES + GS_SIGBYTES)

/* Default caps, announced by GET /v1/health "limits".  An envelope is
 * signed and held in memory whole, so it stays small. */
#define GS_ENV_MAX_ENVELOPE (16u * 1024 * 1024) /* max_envelope, bytes */
#define GS_ENV_MAX_PLAIN (64u * 1024 * 1024)    /* max_plain, bytes */
#define GS_ENV_MAX_RECORDS 10000u               /* max_records */

struct gs_envelope_limits {
	size_t max_envelope;
	size_t max_plain;
	uint32_t max_records;
};

/* The defaults above. */
void gs_envelope_limits_default(struct gs_envelope_limits *lim);

/* The decoded header. */
struct gs_envelope_header {
	uint8_t version;
	uint8_t suite;
	uint16_t flags;
	unsigned char deployment[16];
	unsigned char device[16];
	unsigned char batch[16];
	uint64_t seq;
	unsigned char prev_hash[GS_HASHBYTES];
	int64_t created_at;
	uint32_t count;
	uint64_t plain_len;
	uint64_t ct_len;
	unsigned char platform_kid[GS_KIDBYTES];
	unsigned char device_kid[GS_KIDBYTES];
	unsigned char eph_pk[GS_KX_PKBYTES];
	unsigned char nonce[GS_AEAD_NONCEBYTES];
};

/* What the device seals.  Keys are borrowed, not copied or kept. */
struct gs_seal_params {
	unsigned char deployment[16];
	unsigned char device[16];
	unsigned char batch[16];
	uint64_t seq;                          /* >= 1 */
	unsigned char prev_hash[GS_HASHBYTES]; /* zero for seq 1 */
	int64_t created_at;                    /* ms */
	uint32_t count;                        /* change lines in plain */
	const unsigned char *platform_pk;      /* GS_KX_PKBYTES: batch key */
	const unsigned char *device_sk;        /* GS_SIGN_SKBYTES */
	int level;                             /* deflate level; 0 = default */
	int suite;      /* GS_ENV_SUITE (0 means it) or GS_ENV_SUITE_PH */
};

/* Seals plain[0..plain_len) and appends the whole envelope to out.  The
 * key ids are computed from platform_pk and device_sk's public half.
 * GS_OK; GS_EINVAL (seq 0, prev hash not zero for seq 1,
 * plain_len 0); GS_ETOOBIG (plain_len > GS_ENV_MAX_PLAIN, or the envelope
 * would pass out->max or GS_ENV_MAX_ENVELOPE); GS_EDECRYPT (platform_pk is
 * not a usable X25519 key); GS_ENOMEM; GS_ECRYPTO.  On failure out->len is
 * as before.  Secrets (ephemeral key, session keys, the zlib copy of the
 * plaintext) are wiped before returning. */
int gs_envelope_seal(struct gs_buf *out, const struct gs_seal_params *p,
    const void *plain, size_t plain_len);

/* The same with the ephemeral kx seed and the nonce given: deterministic.
 * FOR TEST VECTORS AND TESTS ONLY - a repeated seed or nonce destroys
 * confidentiality. */
int gs_envelope_seal_det(struct gs_buf *out, const struct gs_seal_params *p,
    const void *plain, size_t plain_len,
    const unsigned char eph_seed[GS_KX_SEEDBYTES],
    const unsigned char nonce[GS_AEAD_NONCEBYTES]);

/* Cheap checks only, no cryptography: length >= GS_ENV_MINBYTES, magic,
 * reserved = 0, ct_len consistent with len, seq >= 1, caps.  lim NULL =
 * defaults.
 *   GS_OK         *h filled
 *   GS_EENVELOPE  too short / truncated, bad magic, lengths inconsistent,
 *                 reserved bits set, seq 0, prev hash not zero at seq 1
 *   GS_EUNSUPPORTED  version, suite or flags not 1, 1 or 2, 0
 *   GS_ETOOBIG    len > max_envelope, plain_len > max_plain, or
 *                 count > max_records
 *   GS_EINFLATE   plain_len impossible for ct_len (beyond deflate's ratio)
 */
int gs_envelope_parse(struct gs_envelope_header *h, const void *env,
    size_t len, const struct gs_envelope_limits *lim);

/* GS_OK when the signature verifies with device_pk (the enrolled key the
 * caller looked up by h->device and h->device_kid); else GS_EBADSIG.  env,
 * len as given to gs_envelope_parse (which must have succeeded; a len
 * that does not match h is GS_EENVELOPE).  GS_ENOMEM: the signed message
 * is assembled in a scratch copy of the envelope. */
int gs_envelope_verify(const struct gs_envelope_header *h, const void *env,
    size_t len, const unsigned char device_pk[GS_SIGN_PKBYTES]);

/* Decrypts and inflates; appends exactly h->plain_len bytes to plain.
 * Call only after gs_envelope_parse and gs_envelope_verify succeeded.
 * platform_pk/sk: the batch key pair whose key id is h->platform_kid.
 *   GS_OK
 *   GS_EDECRYPT  wrong platform key, unusable ephemeral key, tag fails
 *   GS_EINFLATE  the zlib stream is bad or does not give exactly plain_len,
 *                or plain_len does not fit in plain->max (size it from the
 *                limits: max_plain)
 *   GS_EENVELOPE len does not match the header
 *   GS_ENOMEM
 * On failure plain->len is as before; the decrypted zlib bytes and session
 * keys are wiped. */
int gs_envelope_open(struct gs_buf *plain, const struct gs_envelope_header *h,
    const void *env, size_t len,
    const unsigned char platform_pk[GS_KX_PKBYTES],
    const unsigned char platform_sk[GS_KX_SKBYTES]);

/* BLAKE2b-256 of the whole envelope (the device's hash chain, receipts). */
void gs_envelope_hash(unsigned char out[GS_HASHBYTES], const void *env,
    size_t len);

/* GS_OK when the header names this deployment, else GS_EDEPLOYMENT
 * ("envelope is for deployment <hex>").  Run after gs_envelope_parse. */
int gs_envelope_check_deployment(const struct gs_envelope_header *h,
    const unsigned char deployment[16]);

#endif
