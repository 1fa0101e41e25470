/*
 * keybundle.h - the platform's key bundle (GSK1, issue 6): the public keys
 * a device needs, signed by the platform's long-lived ROOT key, with an
 * increasing serial so that an old bundle cannot be replayed to roll a
 * device back to a retired (maybe compromised) batch key.
 *
 * The format, signing, verification and the device's acceptance rule
 * are here (tests/unit/sync-keybundle.c, the frozen vector in
 * docs/PROTOCOL.md section 10).  The platform's root key and the serving
 * of bundles are in platform/root.c; the device's pinning and refresh on
 * every sync in agent/rootkeys.c.
 *
 * Wire form, all integers little-endian, 180 bytes:
 *
 *	off len
 *	  0   4  magic "GSK1"
 *	  4   8  serial (u64, > 0, strictly increasing per deployment)
 *	 12   8  not_after (i64, Unix ms): devices refuse the bundle after it
 *	 20   2  min agent version major (u16)
 *	 22   2  minor (u16)
 *	 24   2  patch (u16)
 *	 26   2  reserved, 0
 *	 28  16  deployment id
 *	 44  32  batch_pk: the current X25519 batch-encryption public key
 *	 76   8  batch_kid = first 8 bytes of BLAKE2b-256(batch_pk)
 *	 84  32  receipt_pk: the Ed25519 receipt public key
 *	116  64  Ed25519 signature by the root key over bytes 0..115
 *
 * In JSON it travels as base64url without padding ("bundle").  The root
 * public key is pinned by its fingerprint:
 *	fp = BLAKE2b-128("gridsync-root-v1" || root_pk)
 */
#ifndef GS_KEYBUNDLE_H
#define GS_KEYBUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define GS_BUNDLE_MAGIC "GSK1"
#define GS_BUNDLE_SIGNED 116
#define GS_BUNDLE_BYTES (GS_BUNDLE_SIGNED + GS_SIGBYTES) /* 180 */
#define GS_ROOT_FPBYTES 16

struct gs_keybundle {
	uint64_t serial;
	int64_t not_after;
	uint16_t min_version[3]; /* major, minor, patch */
	unsigned char deployment[16];
	unsigned char batch_pk[GS_KX_PKBYTES];
	unsigned char batch_kid[GS_KIDBYTES];
	unsigned char receipt_pk[GS_SIGN_PKBYTES];
};

/*
 * Encodes and signs b with the root secret key into out.  batch_kid is
 * computed from batch_pk here (the caller's value is ignored).  GS_OK;
 * GS_EINVAL for serial 0; GS_ECRYPTO.
 */
int gs_keybundle_sign(const struct gs_keybundle *b,
    const unsigned char root_sk[GS_SIGN_SKBYTES],
    unsigned char out[GS_BUNDLE_BYTES]);

/*
 * Verifies and decodes a bundle: exactly GS_BUNDLE_BYTES, the magic, the
 * root signature, serial > 0, reserved 0, batch_kid matching batch_pk.
 * GS_OK and *out; GS_EPARSE (wrong length, magic, reserved, kid, serial
 * 0), GS_EBADSIG (not signed by this root).  Nothing is trusted before
 * the signature verifies.
 */
int gs_keybundle_open(const unsigned char *in, size_t len,
    const unsigned char root_pk[GS_SIGN_PKBYTES], struct gs_keybundle *out);

/*
 * The device's acceptance rule for a verified bundle:
 *   serial > pinned_serial          else GS_EREPLAY (a rollback, or the
 *                                   same bundle again: nothing to do)
 *   deployment == the device's      else GS_EDEPLOYMENT
 *   now_ms <= not_after             else GS_EREJECTED (expired)
 *   agent_version >= min version    else GS_EUNSUPPORTED (upgrade first)
 * agent_version is "MAJOR.MINOR.PATCH".  GS_OK when it may replace the
 * pinned keys.
 */
int gs_keybundle_accept(const struct gs_keybundle *b, uint64_t pinned_serial,
    const unsigned char deployment[16], int64_t now_ms,
    const char *agent_version);

/* The pin of a root public key (goes in enrollment codes). */
void gs_keybundle_root_fp(unsigned char fp[GS_ROOT_FPBYTES],
    const unsigned char root_pk[GS_SIGN_PKBYTES]);

#endif
