/*
 * enroll.h - enrollment: the code an admin hands a worker, the proof of
 * knowledge of its token, the device's self-signature, the platform key
 * fingerprint the device pins.
 *
 * The enrollment CODE (printed by `gridplatform enroll`, typed or pasted
 * into `gridagent enroll`) is one token without spaces:
 *
 *	GS1-<B32>-<U64>
 *
 *	B32  RFC 4648 base32 (A-Z 2-7, no padding; lower case accepted on
 *	     input) of token_id (16) || token (32) || fingerprint (16) ||
 *	     check (4) = 68 bytes -> 109 characters
 *	U64  base64url without padding of the platform URL ("http://..." or
 *	     "https://...", printable ASCII, at most GS_ENROLL_URL_MAX bytes)
 *	check = first 4 bytes of BLAKE2b-256("gridsync-code-v1" || token_id ||
 *	     token || fingerprint || url), so a typo is caught before any
 *	     network traffic.
 *
 * fingerprint = BLAKE2b-128("gridsync-root-v1" || deployment (16) ||
 * root_pk (32)).  The device pins the root key of the enroll answer only
 * if it hashes to it, and takes the batch and receipt keys only from the
 * answer's key bundle signed by that root key (sync/keybundle.h).
 *
 * The token never crosses the wire.  The device sends
 *	proof    = BLAKE2b-256 keyed with the 32-byte token, of
 *	           M = "gridsync-enroll-v1" || token_id || device_id || device_pk
 *	self_sig = Ed25519 signature by the new device key of the same M
 */
#ifndef GS_ENROLL_H
#define GS_ENROLL_H

#include <stddef.h>

#include "core/buf.h"
#include "crypto.h"

#define GS_ENROLL_PREFIX "GS1-"
#define GS_ENROLL_URL_MAX 255
#define GS_ENROLL_TOKEN_ID_BYTES 16
#define GS_ENROLL_TOKEN_BYTES 32
#define GS_ENROLL_FP_BYTES 16
#define GS_ENROLL_PROOF_BYTES 32
#define GS_ENROLL_CTX "gridsync-enroll-v1"
/* The longest code text: prefix, 109 base32, '-', base64url of the URL. */
#define GS_ENROLL_CODE_MAX (4 + 109 + 1 + ((GS_ENROLL_URL_MAX + 2) / 3) * 4)

struct gs_enroll_code {
	char url[GS_ENROLL_URL_MAX + 1];
	unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES];
	unsigned char token[GS_ENROLL_TOKEN_BYTES]; /* secret */
	unsigned char fingerprint[GS_ENROLL_FP_BYTES];
};

/* Appends the code text (no newline) to out.  GS_OK; GS_EINVAL when the
 * URL is empty, too long, not http(s):// or not printable ASCII without
 * spaces; GS_ETOOBIG; GS_ENOMEM. */
int gs_enroll_code_encode(struct gs_buf *out, const struct gs_enroll_code *c);

/* Decodes a code typed or pasted by a person: surrounding white space is
 * ignored, base32 may be lower case.  Fills *c only on success.  GS_OK, or
 * GS_EINVAL with a message a worker can act on ("enrollment code is
 * damaged (checksum mismatch): check it for typos", "... must start with
 * GS1-", "... bad character '#' at position 17", ...).  text must be a
 * NUL-terminated string. */
int gs_enroll_code_decode(struct gs_enroll_code *c, const char *text);

/* Wipes the token and everything else in c. */
void gs_enroll_code_wipe(struct gs_enroll_code *c);

/* BLAKE2b-128("gridsync-root-v1" || deployment || root_pk): the pin of
 * the platform's ROOT key (sync/keybundle.h); the batch and receipt keys
 * reach the device in a bundle signed by that key. */
void gs_enroll_fingerprint(unsigned char fp[GS_ENROLL_FP_BYTES],
    const unsigned char deployment[16],
    const unsigned char root_pk[GS_SIGN_PKBYTES]);
/* GS_OK when the root key hashes to fp; else GS_EBADSIG ("platform root
 * key does not match the enrollment code's fingerprint").  Constant
 * time. */
int gs_enroll_check_fingerprint(const unsigned char fp[GS_ENROLL_FP_BYTES],
    const unsigned char deployment[16],
    const unsigned char root_pk[GS_SIGN_PKBYTES]);

/* The proof for M (see above). */
void gs_enroll_proof(unsigned char proof[GS_ENROLL_PROOF_BYTES],
    const unsigned char token[GS_ENROLL_TOKEN_BYTES],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_pk[GS_SIGN_PKBYTES]);
/* Platform side: recomputes and compares in constant time.  GS_OK or
 * GS_EAUTH. */
int gs_enroll_proof_verify(const unsigned char proof[GS_ENROLL_PROOF_BYTES],
    const unsigned char token[GS_ENROLL_TOKEN_BYTES],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_pk[GS_SIGN_PKBYTES]);

/* Device side: self_sig over M with the device's new secret key.  GS_OK or
 * GS_ECRYPTO. */
int gs_enroll_self_sign(unsigned char sig[GS_SIGBYTES],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_sk[GS_SIGN_SKBYTES]);
/* Platform side: GS_OK when sig is device_pk's signature over M; else
 * GS_EBADSIG. */
int gs_enroll_self_verify(const unsigned char sig[GS_SIGBYTES],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_pk[GS_SIGN_PKBYTES]);

/*
 * Device key rotation (`gridagent rekey`, POST /v1/devices/{id}/rekey):
 *	M   = "gridsync-rekey-v1" || new_pk (32) || device_id (16) ||
 *	      new_kid (8, gs_crypto_key_id of new_pk)
 *	sig = Ed25519 signature of M by the device's CURRENT (old) key.
 * sign: GS_OK or GS_ECRYPTO.  verify: GS_OK or GS_EBADSIG.
 */
#define GS_REKEY_CTX "gridsync-rekey-v1"
int gs_rekey_sign(unsigned char sig[GS_SIGBYTES],
    const unsigned char device_id[16],
    const unsigned char new_pk[GS_SIGN_PKBYTES],
    const unsigned char old_sk[GS_SIGN_SKBYTES]);
int gs_rekey_verify(const unsigned char sig[GS_SIGBYTES],
    const unsigned char device_id[16],
    const unsigned char new_pk[GS_SIGN_PKBYTES],
    const unsigned char old_pk[GS_SIGN_PKBYTES]);

#endif
