/*
 * attachment.h - sealed attachments (GSA1) and attachment receipts (GSAR):
 * the photos and files a worker attaches to a record, sealed for the
 * platform on the device and opened only by the platform.
 *
 * Sealed file layout (docs/PROTOCOL.md section 8; integers little-endian):
 *
 *	header (GS_ATT_HDRBYTES = 176) || signature (64) || messages
 *
 *	off size field
 *	  0   4 magic "GSA1"
 *	  4   1 version = 1
 *	  5   1 suite = 1 (kx-X25519, secretstream XChaCha20-Poly1305, Ed25519)
 *	  6   2 flags = 0
 *	  8  16 deployment id
 *	 24  16 device id
 *	 40  32 hash: BLAKE2b-256 of the plaintext (the content address)
 *	 72   8 plain_len (bytes of plaintext, >= 1)
 *	 80   8 sealed_len (bytes of the whole sealed file)
 *	 88   4 chunk_size (plaintext bytes per message; the last is shorter)
 *	 92   4 reserved = 0
 *	 96   8 created_at (ms, device clock; informational)
 *	104   8 platform key id (of the platform batch kx public key)
 *	112   8 device key id (of the device's Ed25519 public key)
 *	120  32 ephemeral X25519 public key
 *	152  24 secretstream header
 *
 * signature = Ed25519 by the device key over "GSA1-sig" || header.
 * The key of the stream is the crypto_kx client tx key of the ephemeral
 * key pair against the platform batch key (as in a GSB1 envelope).  The
 * plaintext is cut into ceil(plain_len / chunk_size) messages; the first
 * carries the 176-byte header as additional data, the last carries
 * TAG_FINAL and no other does.  So:
 *	sealed_len = 240 + plain_len + messages * 17
 *
 * Attachment receipt GSAR (GS_ATT_RECEIPT_BYTES = 157):
 *	0 magic "GSAR" | 4 deployment | 20 device | 36 hash | 68 plain_len |
 *	76 sealed_len | 84 server_time | 92 status (1 = stored and verified) |
 *	93 Ed25519 signature by the platform receipt key over bytes 0..92.
 */
#ifndef GS_ATTACHMENT_H
#define GS_ATTACHMENT_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define GS_ATT_MAGIC "GSA1"
#define GS_ATT_VERSION 1
#define GS_ATT_SUITE 1
#define GS_ATT_HDRBYTES 176
#define GS_ATT_SIGCTX "GSA1-sig" /* 8 bytes, signed before the header */
/* The part of a sealed file that must arrive first: header + signature. */
#define GS_ATT_PREFIXBYTES (GS_ATT_HDRBYTES + GS_SIGBYTES)
#define GS_ATT_CHUNK_DEFAULT (64u * 1024)
#define GS_ATT_CHUNK_MIN 1024u
#define GS_ATT_CHUNK_MAX (1024u * 1024)
/* The platform's default limit on one attachment's plaintext, announced
 * as "max_attachment" in the health and enroll answers. */
#define GS_ATT_MAX_DEFAULT (64u * 1024 * 1024)

#define GS_ATT_RECEIPT_MAGIC "GSAR"
#define GS_ATT_RECEIPT_BYTES 157
#define GS_ATT_RECEIPT_SIGNED 93

/* The decoded header. */
struct gs_att_header {
	uint8_t version;
	uint8_t suite;
	uint16_t flags;
	unsigned char deployment[16];
	unsigned char device[16];
	unsigned char hash[GS_HASHBYTES];
	uint64_t plain_len;
	uint64_t sealed_len;
	uint32_t chunk_size;
	int64_t created_at;
	unsigned char platform_kid[GS_KIDBYTES];
	unsigned char device_kid[GS_KIDBYTES];
	unsigned char eph_pk[GS_KX_PKBYTES];
	unsigned char ss_header[GS_SS_HEADERBYTES];
};

/* What the device seals with.  Keys are borrowed, not copied or kept. */
struct gs_att_seal_params {
	unsigned char deployment[16];
	unsigned char device[16];
	int64_t created_at;
	uint32_t chunk_size;		  /* 0 = GS_ATT_CHUNK_DEFAULT */
	const unsigned char *platform_pk; /* GS_KX_PKBYTES: batch key */
	const unsigned char *device_sk;	  /* GS_SIGN_SKBYTES */
};

/* The sealed length for plain_len bytes in chunk_size messages; 0 when
 * plain_len is 0 or chunk_size is outside [MIN, MAX]. */
uint64_t gs_att_sealed_len(uint64_t plain_len, uint32_t chunk_size);

/* A MIME type from the first bytes of a file (magic numbers: JPEG, PNG,
 * GIF, WebP, HEIC/HEIF, MP4, 3GP, PDF, AMR, MP3, WAV); otherwise
 * "application/octet-stream".  A static string. */
const char *gs_att_sniff_mime(const void *p, size_t n);

/* BLAKE2b-256 of the whole file open on fd (read with pread from offset
 * 0) and its length.  GS_OK, GS_EIO, GS_ENOMEM. */
int gs_att_hash_fd(int fd, unsigned char hash[GS_HASHBYTES], uint64_t *len);

/*
 * Seals the plain_len bytes of in_fd (read with pread from offset 0)
 * whose hash is `hash` (gs_att_hash_fd) and writes the sealed file to
 * out_fd at its current position.  The plaintext is hashed again while it
 * is sealed: a file that changed in between is GS_ECONFLICT and the
 * caller must discard what was written.  GS_OK; GS_EINVAL (plain_len 0,
 * chunk size out of range); GS_EDECRYPT (platform_pk unusable); GS_EIO;
 * GS_ENOMEM; GS_ECRYPTO.  Secrets (ephemeral key, session keys, stream
 * state, plaintext buffers) are wiped before returning.
 */
int gs_att_seal_fd(int out_fd, int in_fd, const struct gs_att_seal_params *p,
    const unsigned char hash[GS_HASHBYTES], uint64_t plain_len);
/* The same with the ephemeral kx seed given.  FOR TEST VECTORS ONLY.
 * (The secretstream header is always random: libsodium draws it.) */
int gs_att_seal_fd_det(int out_fd, int in_fd,
    const struct gs_att_seal_params *p,
    const unsigned char hash[GS_HASHBYTES], uint64_t plain_len,
    const unsigned char eph_seed[GS_KX_SEEDBYTES]);

/*
 * Cheap checks of the first GS_ATT_PREFIXBYTES bytes (len must be at
 * least that), no cryptography: magic, version/suite/flags, reserved,
 * chunk size in range, plain_len >= 1 and <= max_plain (0 = no limit),
 * sealed_len equal to gs_att_sealed_len.
 *   GS_OK, GS_EENVELOPE (short, bad magic, inconsistent lengths),
 *   GS_EUNSUPPORTED (version/suite/flags), GS_ETOOBIG (plain_len).
 */
int gs_att_parse(struct gs_att_header *h, const void *prefix, size_t len,
    uint64_t max_plain);

/* GS_OK when the prefix's signature verifies with device_pk, else
 * GS_EBADSIG.  Run after gs_att_parse on the same bytes. */
int gs_att_verify(const void *prefix, const unsigned char device_pk[GS_SIGN_PKBYTES]);

/*
 * Opens the sealed file on in_fd (pread from offset 0; the prefix must
 * have passed gs_att_parse into h and gs_att_verify): decrypts every
 * message, writes the plaintext to out_fd when out_fd >= 0 (else it is
 * only checked and discarded), and checks that the file is exactly
 * sealed_len bytes, that the first message authenticates the header, that
 * only the last message carries TAG_FINAL, and that the plaintext hashes
 * to h->hash.
 *   GS_OK
 *   GS_EENVELOPE  the file is shorter or longer than sealed_len
 *   GS_EDECRYPT   wrong platform key, a message does not verify
 *                 (tampered), the final tag is missing (truncated stream)
 *                 or early, or the plaintext hash differs
 *   GS_EIO, GS_ENOMEM
 * Plaintext buffers and the stream state are wiped.
 */
int gs_att_open_fd(int in_fd, int out_fd, const struct gs_att_header *h,
    const unsigned char platform_pk[GS_KX_PKBYTES],
    const unsigned char platform_sk[GS_KX_SKBYTES]);

/*
 * Opening as the bytes arrive (the platform, chunk by chunk): every
 * message is authenticated, in order, before the caller keeps it.  The
 * prefix must have passed gs_att_parse into h and gs_att_verify.  Then
 * gs_att_open_feed takes whole messages (any number, in order; see
 * gs_att_span), and gs_att_open_done, after the last one, checks the
 * plaintext's hash.  An error leaves the opener unusable (free it and
 * start again from the file).  Secrets are wiped by gs_att_open_free.
 */
struct gs_att_opener;
/* GS_OK; GS_EDECRYPT (another platform key, unusable key or stream
 * header); GS_EENVELOPE (chunk size); GS_ENOMEM. */
int gs_att_open_new(struct gs_att_opener **out, const void *prefix,
    const struct gs_att_header *h,
    const unsigned char platform_pk[GS_KX_PKBYTES],
    const unsigned char platform_sk[GS_KX_SKBYTES]);
/* Decrypts and hashes n bytes of whole messages that follow what was fed
 * (plaintext written to out_fd when >= 0).  GS_OK; GS_EENVELOPE (not whole
 * messages, or past sealed_len); GS_EDECRYPT (a message does not verify,
 * the final tag missing or early); GS_EIO. */
int gs_att_open_feed(struct gs_att_opener *o, const void *msgs, size_t n,
    int out_fd);
/* The bytes of the sealed file accounted for: prefix + messages fed. */
uint64_t gs_att_open_offset(const struct gs_att_opener *o);
/* After the last message: GS_OK when the plaintext hashes to the
 * address; GS_EENVELOPE when messages are missing; GS_EDECRYPT. */
int gs_att_open_done(struct gs_att_opener *o);
void gs_att_open_free(struct gs_att_opener *o);

/*
 * The end of the longest run of whole messages starting at off (0, or
 * the end of a message) that is at most `want` bytes long (the prefix
 * included when off is 0), and never less than one message (or the prefix
 * and one message).  0 when off is not such a boundary or is sealed_len.
 */
uint64_t gs_att_span(const struct gs_att_header *h, uint64_t off,
    uint64_t want);

/*
 * Upload chunks are signed by the device, so that no one else can make
 * the platform work on its partial uploads: sig = Ed25519 over
 *	"GSA1-up2" || device (16) || hash (32) || offset (u64 LE) ||
 *	length (u64 LE)
 * carried as the query parameter sig (128 hex) of the PUT.  The body is
 * not hashed into it: the platform authenticates every message of the
 * body (gs_att_open_feed) before it keeps a byte, which binds the bytes
 * more strongly than a signature could, without a second pass over them.
 * A replayed chunk is harmless: its offset no longer matches, and another
 * body under its signature does not decrypt.
 */
int gs_att_chunk_sign(unsigned char sig[GS_SIGBYTES],
    const unsigned char device[16], const unsigned char hash[GS_HASHBYTES],
    uint64_t offset, uint64_t length,
    const unsigned char device_sk[GS_SIGN_SKBYTES]);
/* GS_OK or GS_EBADSIG. */
int gs_att_chunk_verify(const unsigned char sig[GS_SIGBYTES],
    const unsigned char device[16], const unsigned char hash[GS_HASHBYTES],
    uint64_t offset, uint64_t length,
    const unsigned char device_pk[GS_SIGN_PKBYTES]);

/* An attachment receipt, decoded. */
struct gs_att_receipt {
	unsigned char deployment[16];
	unsigned char device[16];
	unsigned char hash[GS_HASHBYTES];
	uint64_t plain_len;
	uint64_t sealed_len;
	int64_t server_time;
	uint8_t status; /* 1 = stored and verified */
};

/* Writes the 157 signed bytes.  GS_OK or GS_ECRYPTO. */
int gs_att_receipt_sign(unsigned char out[GS_ATT_RECEIPT_BYTES],
    const struct gs_att_receipt *r,
    const unsigned char receipt_sk[GS_SIGN_SKBYTES]);
/* Length, magic, status 1 and the signature with the pinned receipt key.
 * GS_OK with *r filled, GS_EPROTOCOL (shape) or GS_EBADSIG. */
int gs_att_receipt_verify(struct gs_att_receipt *r, const void *buf,
    size_t len, const unsigned char receipt_pk[GS_SIGN_PKBYTES]);

#endif
