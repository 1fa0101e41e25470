/*
 * feed.h - the pull direction of the wire (PROTOCOL.md section 8): the
 * device-signed request (GSQ1) that authenticates heartbeats and pulls,
 * and the GSF1 feed the platform answers a pull with, signed by the
 * platform's receipt key and sealed to the device's own key.
 *
 * GSQ1 request signature (carried in the query: ?since=N&t=MS&sig=HEX):
 *
 *	m   = "GSQ1-req" || method || 0x00 || path || 0x00 || since (u64 LE)
 *	      || t (i64 LE) || BLAKE2b-256(body)
 *	sig = Ed25519(m, device identity key)
 *
 * GSF1 feed:
 *
 *	feed = header (136) || ciphertext (ct_len) || signature (64)
 *
 *	header: "GSF1" | version 1 (u8) | suite 1 (u8) | flags (u16) |
 *	  deployment (16) | device (16) | since (u64) | cursor (u64) |
 *	  created_at (i64) | plain_len (u64) | ct_len (u64) |
 *	  eph_pk (32) | nonce (24)
 *	keys: (rx, tx) = crypto_kx_client(eph_pk, eph_sk, X25519(device pk));
 *	  the device gets the same as crypto_kx_server with its converted key
 *	ciphertext = XChaCha20-Poly1305-IETF(plain, ad = header, tx)
 *	plain = the JSON text (flags 0), or with GS_FEED_DEFLATED (flags 1,
 *	  only when the pull asked for it with deflate=1): the JSON text's
 *	  length (u64 LE) || its zlib stream
 *	signature  = Ed25519("GSF1-sig" || header || ciphertext, receipt key)
 *
 * The device checks the signature first (with the receipt key pinned at
 * enrollment), then that the header names its deployment, itself and the
 * cursor it asked from, and only then decrypts.
 */
#ifndef GS_FEED_H
#define GS_FEED_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"

#define GS_FEED_HDRBYTES 136
#define GS_FEED_OVERHEAD (GS_FEED_HDRBYTES + 16 + 64)
#define GS_FEED_MAX (32u << 20)     /* a feed page, sealed */
#define GS_REFERENCE_MAX (256u * 1024) /* one reference document */
#define GS_REQ_WINDOW_MS (5 * 60 * 1000) /* request clock skew allowed */

/* flags: the plaintext is the JSON's length (u64 LE) and its zlib
 * stream; the device inflates it to exactly that length (deflate.h). */
#define GS_FEED_DEFLATED 0x0001
/* Pages are built once and read on links that are slow and paid for:
 * 200 exported gridgen persons (124 kB of JSON) deflate to 88 bytes a
 * record at level 6 in 2.0 ms, to 107 at level 2 in 0.5 ms (zlib
 * 1.2.13, this project's 2-core test machine). */
#define GS_FEED_DEFLATE_LEVEL 6

struct gs_feed_header {
	uint16_t flags;            /* 0 or GS_FEED_DEFLATED */
	unsigned char deployment[16];
	unsigned char device[16];
	uint64_t since;            /* the cursor the device asked from */
	uint64_t cursor;           /* the cursor after this page */
	int64_t created_at;
	uint64_t plain_len, ct_len;
	unsigned char eph_pk[32];
	unsigned char nonce[24];
};

/*
 * The GSQ1 signature of a request.  body may be NULL (len 0).  GS_OK or
 * GS_ECRYPTO.  gs_req_verify: GS_OK or GS_EBADSIG.
 */
int gs_req_sign(unsigned char sig[64], const char *method, const char *path,
    uint64_t since, int64_t t, const void *body, size_t len,
    const unsigned char *device_sk);
int gs_req_verify(const unsigned char sig[64], const char *method,
    const char *path, uint64_t since, int64_t t, const void *body,
    size_t len, const unsigned char *device_pk);

/*
 * Seals plain (JSON text) into a feed for the device with Ed25519 public
 * key device_pk, signed with receipt_sk.  h gives flags (GS_FEED_DEFLATED
 * compresses the text first), deployment, device, since, cursor and
 * created_at; the rest is filled in.  out is appended to.  GS_OK,
 * GS_ETOOBIG (over GS_FEED_MAX), GS_ECRYPTO, GS_ENOMEM, GS_EINVAL for an
 * unknown flag.
 * gs_feed_seal_det takes the ephemeral seed and nonce (test vectors).
 */
int gs_feed_seal(struct gs_buf *out, struct gs_feed_header *h,
    const void *plain, size_t len, const unsigned char *device_pk,
    const unsigned char *receipt_sk);
int gs_feed_seal_det(struct gs_buf *out, struct gs_feed_header *h,
    const void *plain, size_t len, const unsigned char *device_pk,
    const unsigned char *receipt_sk, const unsigned char eph_seed[32],
    const unsigned char nonce[24]);
/* Tests and fuzzers only: seals bytes as the plaintext as they are, with
 * h->flags as they are (nothing compressed, any flag): the feeds a
 * platform must never make, for gs_feed_open to refuse. */
int gs_feed_seal_raw_det(struct gs_buf *out, struct gs_feed_header *h,
    const void *bytes, size_t len, const unsigned char *device_pk,
    const unsigned char *receipt_sk, const unsigned char eph_seed[32],
    const unsigned char nonce[24]);

/*
 * Opens a feed: length and header checks, the receipt key's signature,
 * deployment and device, then decryption with the device's Ed25519
 * secret key, and for a deflated feed the bounded inflate.  *h is filled;
 * plain receives the JSON text (capped by its max).  GS_OK; GS_EPROTOCOL
 * for a malformed feed (an unknown flag included); GS_EBADSIG; GS_EINVAL
 * when it names another deployment or device; GS_EDECRYPT; GS_EINFLATE
 * for a deflated text that is not exactly its declared length (or longer
 * than plain's max); GS_ETOOBIG.
 */
int gs_feed_open(struct gs_buf *plain, struct gs_feed_header *h,
    const unsigned char *feed, size_t len, const unsigned char *deployment,
    const unsigned char *device, const unsigned char *receipt_pk,
    const unsigned char *device_sk);

/*
 * The reference data a schema holds, as the pull feed carries it:
 *   {"forms":{"person":1,...},"codes":{"sex":"<16 hex>",...}}
 * (code tables have no version number: their digest is the first 8 bytes
 * of BLAKE2b-256 over "code\n" for every code in order).  New reference,
 * or NULL when out of memory.
 */
struct gs_schema;
json_t *gs_feed_reference(const struct gs_schema *s);

/*
 * What differs between the platform's reference (as received) and ours:
 * a new array of "form person: platform v2, here v1" / "codes sex
 * differ" strings (empty when in step), or NULL when out of memory.
 */
json_t *gs_feed_reference_diff(const struct gs_schema *s,
    const json_t *platform);

#endif
