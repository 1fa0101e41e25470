/*
 * attachment.c - sealed attachments GSA1 and attachment receipts GSAR
 * (layout in attachment.h and docs/PROTOCOL.md section 8).
 *
 * Why secretstream and not the envelope's one-shot AEAD: a photo or a
 * video can be tens of MiB, and a one-shot AEAD would need all of it in
 * memory on both ends; secretstream seals and opens it message by message
 * in constant memory, and still detects any truncated, dropped, reordered
 * or duplicated message - provided the reader insists on the final tag,
 * which gs_att_open_fd does.  The key exchange is the envelope's (a fresh
 * ephemeral X25519 key per file against the platform batch key), so a
 * stolen device cannot open what it already sealed.  The device's Ed25519
 * signature over the header tells the platform who sealed it before a
 * single message is decrypted, and the header is also the first message's
 * additional data, so even a reader that skipped the signature could not
 * be fooled about the header.
 *
 * Content address: the plaintext's BLAKE2b-256.  The platform checks it
 * when it opens the stream on arrival, so no device can park garbage
 * under the address of somebody else's photo.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "attachment.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "core/banned.h"

#define SIGCTX_LEN 8

enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 4,
	OFF_SUITE = 5,
	OFF_FLAGS = 6,
	OFF_DEPLOYMENT = 8,
	OFF_DEVICE = 24,
	OFF_HASH = 40,
	OFF_PLAIN_LEN = 72,
	OFF_SEALED_LEN = 80,
	OFF_CHUNK = 88,
	OFF_RESERVED = 92,
	OFF_CREATED = 96,
	OFF_PLATFORM_KID = 104,
	OFF_DEVICE_KID = 112,
	OFF_EPH_PK = 120,
	OFF_SS_HEADER = 152,
	OFF_END = 176
};

_Static_assert(OFF_END == GS_ATT_HDRBYTES, "header size");
_Static_assert(sizeof(GS_ATT_SIGCTX) - 1 == SIGCTX_LEN, "sig context");

/* Receipt offsets. */
enum {
	R_MAGIC = 0,
	R_DEPLOYMENT = 4,
	R_DEVICE = 20,
	R_HASH = 36,
	R_PLAIN_LEN = 68,
	R_SEALED_LEN = 76,
	R_TIME = 84,
	R_STATUS = 92,
	R_SIG = 93,
	R_END = 157
};

_Static_assert(R_SIG == GS_ATT_RECEIPT_SIGNED, "receipt signed part");
_Static_assert(R_END == GS_ATT_RECEIPT_BYTES, "receipt size");

/* ------------------------------------------------------------ file I/O */

/* Exactly n bytes at off, or GS_EIO (a short file is "truncated"). */
static int
pread_full(int fd, void *buf, size_t n, uint64_t off, size_t *got)
{
	unsigned char *p = buf;
	size_t done = 0;

	while (done < n) {
		ssize_t k = pread(fd, p + done, n - done, (off_t)(off + done));

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return GS_FAIL(GS_EIO, "read: %s", strerror(errno));
		if (k == 0)
			break;
		done += (size_t)k;
	}
	if (got != NULL)
		*got = done;
	return GS_OK;
}

static int
write_full(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;

	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return GS_FAIL(GS_EIO, "write: %s", strerror(errno));
		p += k;
		n -= (size_t)k;
	}
	return GS_OK;
}

/* ------------------------------------------------------------- helpers */

uint64_t
gs_att_sealed_len(uint64_t plain_len, uint32_t chunk_size)
{
	uint64_t msgs;

	if (plain_len == 0 || chunk_size < GS_ATT_CHUNK_MIN ||
	    chunk_size > GS_ATT_CHUNK_MAX)
		return 0;
	/* No overflow below 2^63 bytes of plaintext. */
	if (plain_len > (UINT64_C(1) << 62))
		return 0;
	msgs = (plain_len + chunk_size - 1) / chunk_size;
	return GS_ATT_PREFIXBYTES + plain_len + msgs * GS_SS_ABYTES;
}

static int
starts(const unsigned char *p, size_t n, size_t off, const char *magic,
    size_t mlen)
{
	return n >= off + mlen && memcmp(p + off, magic, mlen) == 0;
}

const char *
gs_att_sniff_mime(const void *buf, size_t n)
{
	const unsigned char *p = buf;

	if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
		return "image/jpeg";
	if (starts(p, n, 0, "\x89PNG\r\n\x1a\n", 8))
		return "image/png";
	if (starts(p, n, 0, "GIF87a", 6) || starts(p, n, 0, "GIF89a", 6))
		return "image/gif";
	if (starts(p, n, 0, "RIFF", 4) && starts(p, n, 8, "WEBP", 4))
		return "image/webp";
	if (starts(p, n, 0, "RIFF", 4) && starts(p, n, 8, "WAVE", 4))
		return "audio/wav";
	/* ISO base media: a box size, then "ftyp" and the major brand. */
	if (starts(p, n, 4, "ftyp", 4)) {
		if (starts(p, n, 8, "heic", 4) || starts(p, n, 8, "heix", 4) ||
		    starts(p, n, 8, "mif1", 4) || starts(p, n, 8, "msf1", 4))
			return "image/heic";
		if (starts(p, n, 8, "3gp", 3))
			return "video/3gpp";
		if (starts(p, n, 8, "M4A ", 4))
			return "audio/mp4";
		return "video/mp4";
	}
	if (starts(p, n, 0, "%PDF-", 5))
		return "application/pdf";
	if (starts(p, n, 0, "#!AMR", 5))
		return "audio/amr";
	if (starts(p, n, 0, "ID3", 3) ||
	    (n >= 2 && p[0] == 0xff && (p[1] & 0xe0) == 0xe0))
		return "audio/mpeg";
	return "application/octet-stream";
}

int
gs_att_hash_fd(int fd, unsigned char hash[GS_HASHBYTES], uint64_t *len)
{
	struct gs_hash *h = NULL;
	unsigned char *buf = NULL;
	uint64_t off = 0;
	size_t got;
	int r = GS_EINTERNAL;

	if ((buf = gs_malloc(GS_ATT_CHUNK_MAX)) == NULL ||
	    (h = gs_crypto_hash_new(GS_HASHBYTES, NULL, 0)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "no memory to hash a file");
		goto out;
	}
	for (;;) {
		if ((r = pread_full(fd, buf, GS_ATT_CHUNK_MAX, off, &got)) !=
		    GS_OK)
			goto out;
		if (got == 0)
			break;
		gs_crypto_hash_update(h, buf, got);
		off += got;
	}
	r = gs_crypto_hash_final(h, hash);
	h = NULL;
	if (r == GS_OK)
		*len = off;
out:
	gs_crypto_hash_free(h);
	if (buf != NULL)
		gs_crypto_memzero(buf, GS_ATT_CHUNK_MAX);
	gs_free(buf);
	return r;
}

/* ------------------------------------------------------------- header */

static void
write_header(unsigned char *p, const struct gs_att_header *h)
{
	memcpy(p + OFF_MAGIC, GS_ATT_MAGIC, 4);
	p[OFF_VERSION] = h->version;
	p[OFF_SUITE] = h->suite;
	gs_put_le16(p + OFF_FLAGS, h->flags);
	memcpy(p + OFF_DEPLOYMENT, h->deployment, 16);
	memcpy(p + OFF_DEVICE, h->device, 16);
	memcpy(p + OFF_HASH, h->hash, GS_HASHBYTES);
	gs_put_le64(p + OFF_PLAIN_LEN, h->plain_len);
	gs_put_le64(p + OFF_SEALED_LEN, h->sealed_len);
	gs_put_le32(p + OFF_CHUNK, h->chunk_size);
	gs_put_le32(p + OFF_RESERVED, 0);
	gs_put_le64(p + OFF_CREATED, (uint64_t)h->created_at);
	memcpy(p + OFF_PLATFORM_KID, h->platform_kid, GS_KIDBYTES);
	memcpy(p + OFF_DEVICE_KID, h->device_kid, GS_KIDBYTES);
	memcpy(p + OFF_EPH_PK, h->eph_pk, GS_KX_PKBYTES);
	memcpy(p + OFF_SS_HEADER, h->ss_header, GS_SS_HEADERBYTES);
}

static void
read_header(struct gs_att_header *h, const unsigned char *p)
{
	h->version = p[OFF_VERSION];
	h->suite = p[OFF_SUITE];
	h->flags = gs_get_le16(p + OFF_FLAGS);
	memcpy(h->deployment, p + OFF_DEPLOYMENT, 16);
	memcpy(h->device, p + OFF_DEVICE, 16);
	memcpy(h->hash, p + OFF_HASH, GS_HASHBYTES);
	h->plain_len = gs_get_le64(p + OFF_PLAIN_LEN);
	h->sealed_len = gs_get_le64(p + OFF_SEALED_LEN);
	h->chunk_size = gs_get_le32(p + OFF_CHUNK);
	h->created_at = (int64_t)gs_get_le64(p + OFF_CREATED);
	memcpy(h->platform_kid, p + OFF_PLATFORM_KID, GS_KIDBYTES);
	memcpy(h->device_kid, p + OFF_DEVICE_KID, GS_KIDBYTES);
	memcpy(h->eph_pk, p + OFF_EPH_PK, GS_KX_PKBYTES);
	memcpy(h->ss_header, p + OFF_SS_HEADER, GS_SS_HEADERBYTES);
}

/* "GSA1-sig" || header: small, so it lives on the stack. */
static void
signed_message(
    unsigned char m[SIGCTX_LEN + GS_ATT_HDRBYTES], const unsigned char *hdr)
{
	memcpy(m, GS_ATT_SIGCTX, SIGCTX_LEN);
	memcpy(m + SIGCTX_LEN, hdr, GS_ATT_HDRBYTES);
}

/* --------------------------------------------------------------- seal */

static int
seal(int out_fd, int in_fd, const struct gs_att_seal_params *p,
    const unsigned char hash[GS_HASHBYTES], uint64_t plain_len,
    const unsigned char *eph_seed)
{
	struct gs_att_header h;
	struct gs_ss ss;
	struct gs_hash *check = NULL;
	unsigned char prefix[GS_ATT_PREFIXBYTES];
	unsigned char msg[SIGCTX_LEN + GS_ATT_HDRBYTES];
	unsigned char eph_sk[GS_KX_SKBYTES], rx[GS_KX_SESSIONBYTES],
	    tx[GS_KX_SESSIONBYTES], dev_pk[GS_SIGN_PKBYTES],
	    again[GS_HASHBYTES];
	unsigned char *m = NULL, *c = NULL;
	uint32_t chunk = p->chunk_size ? p->chunk_size : GS_ATT_CHUNK_DEFAULT;
	uint64_t off = 0;
	size_t got;
	int r = GS_EINTERNAL;

	memset(&h, 0, sizeof(h));
	memset(&ss, 0, sizeof(ss));
	if (plain_len == 0) {
		r = GS_FAIL(GS_EINVAL, "an empty file cannot be attached");
		goto out;
	}
	if ((h.sealed_len = gs_att_sealed_len(plain_len, chunk)) == 0) {
		r = GS_FAIL(GS_EINVAL, "chunk size %u is outside %u..%u", chunk,
		    GS_ATT_CHUNK_MIN, GS_ATT_CHUNK_MAX);
		goto out;
	}
	if ((m = gs_malloc(chunk)) == NULL ||
	    (c = gs_malloc((size_t)chunk + GS_SS_ABYTES)) == NULL ||
	    (check = gs_crypto_hash_new(GS_HASHBYTES, NULL, 0)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "no memory to seal an attachment");
		goto out;
	}
	h.version = GS_ATT_VERSION;
	h.suite = GS_ATT_SUITE;
	memcpy(h.deployment, p->deployment, 16);
	memcpy(h.device, p->device, 16);
	memcpy(h.hash, hash, GS_HASHBYTES);
	h.plain_len = plain_len;
	h.chunk_size = chunk;
	h.created_at = p->created_at;
	gs_crypto_key_id(h.platform_kid, p->platform_pk, GS_KX_PKBYTES);
	gs_crypto_sign_sk_to_pk(dev_pk, p->device_sk);
	gs_crypto_key_id(h.device_kid, dev_pk, GS_SIGN_PKBYTES);
	if (eph_seed != NULL)
		gs_crypto_kx_seed_keypair(h.eph_pk, eph_sk, eph_seed);
	else
		gs_crypto_kx_keypair(h.eph_pk, eph_sk);
	if (gs_crypto_kx_client(rx, tx, h.eph_pk, eph_sk, p->platform_pk) !=
	    GS_OK) {
		r = GS_FAIL(GS_EDECRYPT, "platform batch key is unusable");
		goto out;
	}
	/* The stream header is part of our header, so it is signed too. */
	if ((r = gs_crypto_ss_init_push(&ss, h.ss_header, tx)) != GS_OK)
		goto out;
	write_header(prefix, &h);
	signed_message(msg, prefix);
	if ((r = gs_crypto_sign(prefix + GS_ATT_HDRBYTES, msg, sizeof(msg),
		 p->device_sk)) != GS_OK)
		goto out;
	if ((r = write_full(out_fd, prefix, sizeof(prefix))) != GS_OK)
		goto out;
	while (off < plain_len) {
		size_t want =
		    plain_len - off < chunk ? (size_t)(plain_len - off) : chunk;
		int final = off + want == plain_len;

		if ((r = pread_full(in_fd, m, want, off, &got)) != GS_OK)
			goto out;
		if (got != want) {
			r = GS_FAIL(GS_ECONFLICT, "the file shrank while it "
						  "was being sealed");
			goto out;
		}
		gs_crypto_hash_update(check, m, want);
		/* The header is the first message's additional data. */
		if ((r = gs_crypto_ss_push(&ss, c, m, want,
			 off == 0 ? prefix : NULL,
			 off == 0 ? GS_ATT_HDRBYTES : 0, final)) != GS_OK)
			goto out;
		if ((r = write_full(out_fd, c, want + GS_SS_ABYTES)) != GS_OK)
			goto out;
		off += want;
	}
	r = gs_crypto_hash_final(check, again);
	check = NULL;
	if (r != GS_OK)
		goto out;
	/* What was sealed must be what was hashed (and recorded). */
	if (memcmp(again, hash, GS_HASHBYTES) != 0) {
		r = GS_FAIL(GS_ECONFLICT, "the file changed while it was "
					  "being sealed");
		goto out;
	}
	r = GS_OK;
out:
	gs_crypto_memzero(eph_sk, sizeof(eph_sk));
	gs_crypto_memzero(rx, sizeof(rx));
	gs_crypto_memzero(tx, sizeof(tx));
	gs_crypto_ss_wipe(&ss);
	gs_crypto_hash_free(check);
	if (m != NULL)
		gs_crypto_memzero(m, chunk);
	gs_free(m);
	gs_free(c);
	return r;
}

int
gs_att_seal_fd(int out_fd, int in_fd, const struct gs_att_seal_params *p,
    const unsigned char hash[GS_HASHBYTES], uint64_t plain_len)
{
	return seal(out_fd, in_fd, p, hash, plain_len, NULL);
}

int
gs_att_seal_fd_det(int out_fd, int in_fd, const struct gs_att_seal_params *p,
    const unsigned char hash[GS_HASHBYTES], uint64_t plain_len,
    const unsigned char eph_seed[GS_KX_SEEDBYTES])
{
	return seal(out_fd, in_fd, p, hash, plain_len, eph_seed);
}

/* --------------------------------------------------------------- open */

int
gs_att_parse(
    struct gs_att_header *h, const void *prefix, size_t len, uint64_t max_plain)
{
	const unsigned char *p = prefix;
	struct gs_att_header t;
	uint64_t want;

	if (len < GS_ATT_PREFIXBYTES)
		return GS_FAIL(GS_EENVELOPE,
		    "sealed attachment of %zu bytes "
		    "is shorter than its %d-byte header",
		    len, GS_ATT_PREFIXBYTES);
	if (memcmp(p + OFF_MAGIC, GS_ATT_MAGIC, 4) != 0)
		return GS_FAIL(GS_EENVELOPE, "not a GSA1 sealed attachment "
					     "(bad magic)");
	read_header(&t, p);
	if (t.version != GS_ATT_VERSION || t.suite != GS_ATT_SUITE ||
	    t.flags != 0)
		return GS_FAIL(GS_EUNSUPPORTED,
		    "sealed attachment version %u "
		    "suite %u flags %u; only 1/1/0 is known",
		    t.version, t.suite, t.flags);
	if (gs_get_le32(p + OFF_RESERVED) != 0)
		return GS_FAIL(GS_EENVELOPE, "reserved header bytes are set");
	if (t.plain_len == 0)
		return GS_FAIL(GS_EENVELOPE, "sealed attachment is empty");
	if (max_plain > 0 && t.plain_len > max_plain)
		return GS_FAIL(GS_ETOOBIG,
		    "attachment of %llu bytes exceeds "
		    "the limit of %llu",
		    (unsigned long long)t.plain_len,
		    (unsigned long long)max_plain);
	want = gs_att_sealed_len(t.plain_len, t.chunk_size);
	if (want == 0)
		return GS_FAIL(GS_EENVELOPE, "chunk size %u is outside %u..%u",
		    t.chunk_size, GS_ATT_CHUNK_MIN, GS_ATT_CHUNK_MAX);
	if (t.sealed_len != want)
		return GS_FAIL(GS_EENVELOPE,
		    "header says %llu sealed bytes, "
		    "its sizes make %llu",
		    (unsigned long long)t.sealed_len, (unsigned long long)want);
	*h = t;
	return GS_OK;
}

int
gs_att_verify(
    const void *prefix, const unsigned char device_pk[GS_SIGN_PKBYTES])
{
	const unsigned char *p = prefix;
	unsigned char msg[SIGCTX_LEN + GS_ATT_HDRBYTES];

	signed_message(msg, p);
	if (gs_crypto_verify(
		p + GS_ATT_HDRBYTES, msg, sizeof(msg), device_pk) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "sealed attachment signature does "
					   "not verify with the device's key");
	return GS_OK;
}

/* Incremental opening: the state between two feeds. */
struct gs_att_opener {
	struct gs_att_header h;
	unsigned char hdr[GS_ATT_HDRBYTES]; /* the first message's AD */
	struct gs_ss ss;
	struct gs_hash *hh;
	uint64_t off;	  /* sealed bytes accounted for */
	uint64_t plain;	  /* plaintext bytes so far */
	uint64_t msgno;
	int broken;
};

void
gs_att_open_free(struct gs_att_opener *o)
{
	if (o == NULL)
		return;
	gs_crypto_ss_wipe(&o->ss);
	gs_crypto_hash_free(o->hh);
	gs_crypto_memzero(o, sizeof(*o));
	gs_free(o);
}

int
gs_att_open_new(struct gs_att_opener **out, const void *prefix,
    const struct gs_att_header *h,
    const unsigned char platform_pk[GS_KX_PKBYTES],
    const unsigned char platform_sk[GS_KX_SKBYTES])
{
	struct gs_att_opener *o = NULL;
	unsigned char kid[GS_KIDBYTES];
	unsigned char rx[GS_KX_SESSIONBYTES], tx[GS_KX_SESSIONBYTES];
	int r = GS_EINTERNAL;

	*out = NULL;
	gs_crypto_key_id(kid, platform_pk, GS_KX_PKBYTES);
	if (memcmp(kid, h->platform_kid, GS_KIDBYTES) != 0)
		return GS_FAIL(GS_EDECRYPT, "attachment is sealed to another "
					    "platform key");
	if (h->chunk_size < GS_ATT_CHUNK_MIN ||
	    h->chunk_size > GS_ATT_CHUNK_MAX)
		return GS_FAIL(GS_EENVELOPE, "chunk size out of range");
	if ((o = gs_calloc(1, sizeof(*o))) == NULL ||
	    (o->hh = gs_crypto_hash_new(GS_HASHBYTES, NULL, 0)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "no memory to open an attachment");
		goto out;
	}
	o->h = *h;
	/* The header as stored is the additional data, byte for byte. */
	memcpy(o->hdr, prefix, GS_ATT_HDRBYTES);
	o->off = GS_ATT_PREFIXBYTES;
	if (gs_crypto_kx_server(rx, tx, platform_pk, platform_sk, h->eph_pk) !=
	    GS_OK) {
		r = GS_FAIL(GS_EDECRYPT, "ephemeral key is unusable");
		goto out;
	}
	if (gs_crypto_ss_init_pull(&o->ss, h->ss_header, rx) != GS_OK) {
		r = GS_FAIL(GS_EDECRYPT, "stream header is unusable");
		goto out;
	}
	*out = o;
	o = NULL;
	r = GS_OK;
out:
	gs_crypto_memzero(rx, sizeof(rx));
	gs_crypto_memzero(tx, sizeof(tx));
	gs_att_open_free(o);
	return r;
}

uint64_t
gs_att_open_offset(const struct gs_att_opener *o)
{
	return o->off;
}

/* One message's plaintext goes to m (chunk_size bytes, the caller's). */
static int
feed(struct gs_att_opener *o, unsigned char *m, const unsigned char *p,
    size_t n, int out_fd)
{
	const struct gs_att_header *h = &o->h;
	int final = 0, r;

	while (n > 0) {
		size_t want = h->plain_len - o->plain < h->chunk_size
				  ? (size_t)(h->plain_len - o->plain)
				  : h->chunk_size;

		if (o->plain == h->plain_len)
			return GS_FAIL(GS_EENVELOPE, "sealed attachment has "
						     "bytes after its final "
						     "message");
		if (n < want + GS_SS_ABYTES)
			return GS_FAIL(GS_EENVELOPE,
			    "sealed attachment is "
			    "truncated: %llu of %llu bytes",
			    (unsigned long long)(o->off + n),
			    (unsigned long long)h->sealed_len);
		if (gs_crypto_ss_pull(&o->ss, m, &final, p,
			want + GS_SS_ABYTES, o->msgno == 0 ? o->hdr : NULL,
			o->msgno == 0 ? GS_ATT_HDRBYTES : 0) != GS_OK)
			return GS_FAIL(GS_EDECRYPT,
			    "message %llu of the sealed "
			    "attachment does not verify (tampered or not "
			    "for this platform)",
			    (unsigned long long)o->msgno);
		o->plain += want;
		/* TAG_FINAL exactly on the last message: an early one means
		 * a stream cut short and padded out, a missing one a stream
		 * truncated at a message boundary. */
		if (final != (o->plain == h->plain_len))
			return GS_FAIL(GS_EDECRYPT,
			    final
				? "sealed attachment ends early (final tag on "
				  "message %llu)"
				: "sealed attachment has no final tag "
				  "(truncated stream)",
			    (unsigned long long)o->msgno);
		gs_crypto_hash_update(o->hh, m, want);
		if (out_fd >= 0 && (r = write_full(out_fd, m, want)) != GS_OK)
			return r;
		o->off += want + GS_SS_ABYTES;
		p += want + GS_SS_ABYTES;
		n -= want + GS_SS_ABYTES;
		o->msgno++;
	}
	return GS_OK;
}

int
gs_att_open_feed(struct gs_att_opener *o, const void *msgs, size_t n,
    int out_fd)
{
	unsigned char *m = NULL;
	int r;

	if (o->broken)
		return GS_FAIL(GS_EINTERNAL, "attachment opener used after an "
					     "error");
	/* The plaintext lives only for the length of one call. */
	if ((m = gs_malloc(o->h.chunk_size)) == NULL) {
		o->broken = 1;
		return GS_FAIL(GS_ENOMEM, "no memory to open an attachment");
	}
	r = feed(o, m, msgs, n, out_fd);
	gs_crypto_memzero(m, o->h.chunk_size);
	gs_free(m);
	if (r != GS_OK)
		o->broken = 1;
	return r;
}

int
gs_att_open_done(struct gs_att_opener *o)
{
	unsigned char got_hash[GS_HASHBYTES];
	int r;

	if (o->broken || o->hh == NULL)
		return GS_FAIL(GS_EINTERNAL, "attachment opener used after an "
					     "error");
	if (o->plain != o->h.plain_len) {
		o->broken = 1;
		return GS_FAIL(GS_EENVELOPE,
		    "sealed attachment is truncated: "
		    "%llu of %llu bytes",
		    (unsigned long long)o->off,
		    (unsigned long long)o->h.sealed_len);
	}
	r = gs_crypto_hash_final(o->hh, got_hash);
	o->hh = NULL;
	o->broken = 1; /* done once */
	if (r != GS_OK)
		return r;
	if (gs_crypto_memcmp(got_hash, o->h.hash, GS_HASHBYTES) != 0)
		return GS_FAIL(GS_EDECRYPT, "attachment plaintext does not hash "
					    "to its content address");
	return GS_OK;
}

int
gs_att_open_fd(int in_fd, int out_fd, const struct gs_att_header *h,
    const unsigned char platform_pk[GS_KX_PKBYTES],
    const unsigned char platform_sk[GS_KX_SKBYTES])
{
	struct gs_att_opener *o = NULL;
	unsigned char hdr[GS_ATT_HDRBYTES], extra;
	unsigned char *c = NULL;
	uint64_t off = GS_ATT_PREFIXBYTES;
	size_t got;
	int r = GS_EINTERNAL;

	if ((r = pread_full(in_fd, hdr, sizeof(hdr), 0, &got)) != GS_OK)
		goto out;
	if (got != sizeof(hdr)) {
		r = GS_FAIL(GS_EENVELOPE, "sealed attachment is truncated "
					  "(no header)");
		goto out;
	}
	if ((r = gs_att_open_new(&o, hdr, h, platform_pk, platform_sk)) !=
	    GS_OK)
		goto out;
	if ((c = gs_malloc((size_t)h->chunk_size + GS_SS_ABYTES)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "no memory to open an attachment");
		goto out;
	}
	while (off < h->sealed_len) {
		uint64_t left = h->sealed_len - off;
		size_t want = left < (uint64_t)h->chunk_size + GS_SS_ABYTES
				  ? (size_t)left
				  : (size_t)h->chunk_size + GS_SS_ABYTES;

		if ((r = pread_full(in_fd, c, want, off, &got)) != GS_OK)
			goto out;
		if (got != want) {
			r = GS_FAIL(GS_EENVELOPE,
			    "sealed attachment is "
			    "truncated: %llu of %llu bytes",
			    (unsigned long long)(off + got),
			    (unsigned long long)h->sealed_len);
			goto out;
		}
		if ((r = gs_att_open_feed(o, c, got, out_fd)) != GS_OK)
			goto out;
		off += got;
	}
	if ((r = pread_full(in_fd, &extra, 1, off, &got)) != GS_OK)
		goto out;
	if (got != 0) {
		r = GS_FAIL(GS_EENVELOPE, "sealed attachment has bytes after "
					  "its final message");
		goto out;
	}
	r = gs_att_open_done(o);
out:
	gs_att_open_free(o);
	gs_free(c);
	return r;
}

uint64_t
gs_att_span(const struct gs_att_header *h, uint64_t off, uint64_t want)
{
	uint64_t msg = (uint64_t)h->chunk_size + GS_SS_ABYTES, pos, k, j, n;

	if (h->chunk_size < GS_ATT_CHUNK_MIN ||
	    h->chunk_size > GS_ATT_CHUNK_MAX || off >= h->sealed_len)
		return 0;
	if (off != 0 && (off < GS_ATT_PREFIXBYTES ||
			    (off - GS_ATT_PREFIXBYTES) % msg != 0))
		return 0;
	n = (h->plain_len + h->chunk_size - 1) / h->chunk_size;
	pos = off == 0 ? GS_ATT_PREFIXBYTES : off;
	k = (pos - GS_ATT_PREFIXBYTES) / msg;
	if (k >= n)
		return 0;
	j = want > pos - off ? (want - (pos - off)) / msg : 0;
	if (j < 1)
		j = 1;
	if (j >= n - k)
		return h->sealed_len;
	return pos + j * msg;
}

/* ------------------------------------------------------- upload chunks */

#define PUTCTX "GSA1-up2"
#define PUTMSG (8 + 16 + GS_HASHBYTES + 8 + 8)

static void
chunk_message(unsigned char m[PUTMSG], const unsigned char *device,
    const unsigned char *hash, uint64_t offset, uint64_t length)
{
	memcpy(m, PUTCTX, 8);
	memcpy(m + 8, device, 16);
	memcpy(m + 24, hash, GS_HASHBYTES);
	gs_put_le64(m + 56, offset);
	gs_put_le64(m + 64, length);
}

int
gs_att_chunk_sign(unsigned char sig[GS_SIGBYTES],
    const unsigned char device[16], const unsigned char hash[GS_HASHBYTES],
    uint64_t offset, uint64_t length,
    const unsigned char device_sk[GS_SIGN_SKBYTES])
{
	unsigned char m[PUTMSG];

	chunk_message(m, device, hash, offset, length);
	return gs_crypto_sign(sig, m, sizeof(m), device_sk);
}

int
gs_att_chunk_verify(const unsigned char sig[GS_SIGBYTES],
    const unsigned char device[16], const unsigned char hash[GS_HASHBYTES],
    uint64_t offset, uint64_t length,
    const unsigned char device_pk[GS_SIGN_PKBYTES])
{
	unsigned char m[PUTMSG];

	chunk_message(m, device, hash, offset, length);
	if (gs_crypto_verify(sig, m, sizeof(m), device_pk) != GS_OK)
		return GS_FAIL(GS_EBADSIG,
		    "upload chunk at offset %llu is not "
		    "signed by the device",
		    (unsigned long long)offset);
	return GS_OK;
}

/* ------------------------------------------------------------ receipts */

int
gs_att_receipt_sign(unsigned char out[GS_ATT_RECEIPT_BYTES],
    const struct gs_att_receipt *r,
    const unsigned char receipt_sk[GS_SIGN_SKBYTES])
{
	memcpy(out + R_MAGIC, GS_ATT_RECEIPT_MAGIC, 4);
	memcpy(out + R_DEPLOYMENT, r->deployment, 16);
	memcpy(out + R_DEVICE, r->device, 16);
	memcpy(out + R_HASH, r->hash, GS_HASHBYTES);
	gs_put_le64(out + R_PLAIN_LEN, r->plain_len);
	gs_put_le64(out + R_SEALED_LEN, r->sealed_len);
	gs_put_le64(out + R_TIME, (uint64_t)r->server_time);
	out[R_STATUS] = r->status;
	return gs_crypto_sign(out + R_SIG, out, R_SIG, receipt_sk);
}

int
gs_att_receipt_verify(struct gs_att_receipt *r, const void *buf, size_t len,
    const unsigned char receipt_pk[GS_SIGN_PKBYTES])
{
	const unsigned char *p = buf;

	if (len != GS_ATT_RECEIPT_BYTES ||
	    memcmp(p + R_MAGIC, GS_ATT_RECEIPT_MAGIC, 4) != 0)
		return GS_FAIL(GS_EPROTOCOL, "not an attachment receipt");
	if (gs_crypto_verify(p + R_SIG, p, R_SIG, receipt_pk) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "attachment receipt signature does "
					   "not verify with the pinned key");
	if (p[R_STATUS] != 1)
		return GS_FAIL(
		    GS_EPROTOCOL, "attachment receipt status %u", p[R_STATUS]);
	memcpy(r->deployment, p + R_DEPLOYMENT, 16);
	memcpy(r->device, p + R_DEVICE, 16);
	memcpy(r->hash, p + R_HASH, GS_HASHBYTES);
	r->plain_len = gs_get_le64(p + R_PLAIN_LEN);
	r->sealed_len = gs_get_le64(p + R_SEALED_LEN);
	r->server_time = (int64_t)gs_get_le64(p + R_TIME);
	r->status = p[R_STATUS];
	return GS_OK;
}
