/*
 * envelope.c - the GSB1 batch envelope (layout in envelope.h and
 * docs/PROTOCOL.md).
 *
 * Why this construction: the AEAD key comes from a fresh ephemeral X25519
 * key, so a stolen device cannot open its own sent batches (sender-side
 * forward secrecy); the whole header is the AEAD's additional data, so no
 * header byte can be changed without the platform noticing; and the
 * Ed25519 signature by the device key gives origin authentication that
 * even a holder of the platform's batch key cannot forge (a crypto_box
 * tag could be).  The signature is checked first because it is cheap and
 * needs no secret, so forgeries are refused before any decryption or
 * decompression work.
 */
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "deflate.h"
#include "envelope.h"
#include "core/banned.h"

#define SIGCTX_LEN 8

/* Field offsets, in one place; the header comment of envelope.h and
 * docs/PROTOCOL.md show the same table. */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 4,
	OFF_SUITE = 5,
	OFF_FLAGS = 6,
	OFF_DEPLOYMENT = 8,
	OFF_DEVICE = 24,
	OFF_BATCH = 40,
	OFF_SEQ = 56,
	OFF_PREV = 64,
	OFF_CREATED = 96,
	OFF_COUNT = 104,
	OFF_RESERVED = 108,
	OFF_PLAIN_LEN = 112,
	OFF_CT_LEN = 120,
	OFF_PLATFORM_KID = 128,
	OFF_DEVICE_KID = 136,
	OFF_EPH_PK = 144,
	OFF_NONCE = 176,
	OFF_END = 200
};

_Static_assert(OFF_END == GS_ENV_HDRBYTES, "header size");
_Static_assert(OFF_NONCE == GS_ENV_NONCE_OFF, "nonce offset");
_Static_assert(sizeof(GS_ENV_SIGCTX) - 1 == SIGCTX_LEN, "sig context");
_Static_assert(sizeof(GS_ENV_SIGCTX_PH) - 1 == SIGCTX_LEN, "sig context 2");

void
gs_envelope_limits_default(struct gs_envelope_limits *lim)
{
	lim->max_envelope = GS_ENV_MAX_ENVELOPE;
	lim->max_plain = GS_ENV_MAX_PLAIN;
	lim->max_records = GS_ENV_MAX_RECORDS;
}

/* Header <-> struct, field by field at fixed offsets with explicit
 * little-endian helpers: no struct is ever copied to the wire, so padding
 * and host byte order cannot leak into it. */
static void
write_header(unsigned char *p, const struct gs_envelope_header *h)
{
	memcpy(p + OFF_MAGIC, GS_ENV_MAGIC, 4);
	p[OFF_VERSION] = h->version;
	p[OFF_SUITE] = h->suite;
	gs_put_le16(p + OFF_FLAGS, h->flags);
	memcpy(p + OFF_DEPLOYMENT, h->deployment, 16);
	memcpy(p + OFF_DEVICE, h->device, 16);
	memcpy(p + OFF_BATCH, h->batch, 16);
	gs_put_le64(p + OFF_SEQ, h->seq);
	memcpy(p + OFF_PREV, h->prev_hash, GS_HASHBYTES);
	gs_put_le64(p + OFF_CREATED, (uint64_t)h->created_at);
	gs_put_le32(p + OFF_COUNT, h->count);
	gs_put_le32(p + OFF_RESERVED, 0);
	gs_put_le64(p + OFF_PLAIN_LEN, h->plain_len);
	gs_put_le64(p + OFF_CT_LEN, h->ct_len);
	memcpy(p + OFF_PLATFORM_KID, h->platform_kid, GS_KIDBYTES);
	memcpy(p + OFF_DEVICE_KID, h->device_kid, GS_KIDBYTES);
	memcpy(p + OFF_EPH_PK, h->eph_pk, GS_KX_PKBYTES);
	memcpy(p + OFF_NONCE, h->nonce, GS_AEAD_NONCEBYTES);
}

static void
read_header(struct gs_envelope_header *h, const unsigned char *p)
{
	h->version = p[OFF_VERSION];
	h->suite = p[OFF_SUITE];
	h->flags = gs_get_le16(p + OFF_FLAGS);
	memcpy(h->deployment, p + OFF_DEPLOYMENT, 16);
	memcpy(h->device, p + OFF_DEVICE, 16);
	memcpy(h->batch, p + OFF_BATCH, 16);
	h->seq = gs_get_le64(p + OFF_SEQ);
	memcpy(h->prev_hash, p + OFF_PREV, GS_HASHBYTES);
	h->created_at = (int64_t)gs_get_le64(p + OFF_CREATED);
	h->count = gs_get_le32(p + OFF_COUNT);
	h->plain_len = gs_get_le64(p + OFF_PLAIN_LEN);
	h->ct_len = gs_get_le64(p + OFF_CT_LEN);
	memcpy(h->platform_kid, p + OFF_PLATFORM_KID, GS_KIDBYTES);
	memcpy(h->device_kid, p + OFF_DEVICE_KID, GS_KIDBYTES);
	memcpy(h->eph_pk, p + OFF_EPH_PK, GS_KX_PKBYTES);
	memcpy(h->nonce, p + OFF_NONCE, GS_AEAD_NONCEBYTES);
}

/* Suite 2's signed message: context, header, the ciphertext's hash. */
#define PH_MSGBYTES (SIGCTX_LEN + GS_ENV_HDRBYTES + GS_HASH_MAXBYTES)

/*
 * The signed message.  Suite 1: "GSB1-sig" || header || ciphertext;
 * Ed25519 (non-prehashed) needs it contiguous, so it is assembled in a
 * scratch buffer (*out, to free); envelopes are capped at a few MiB, so
 * the copy is cheap next to the signature's own two passes of SHA-512.
 * Suite 2: "GSB1-sg2" || header || BLAKE2b-512(ciphertext), in ph (*out
 * is NULL).  env holds the header and the ciphertext after it.
 */
static int
signed_message(int suite, unsigned char **out, const unsigned char **msg,
    size_t *msglen, unsigned char ph[PH_MSGBYTES], const unsigned char *env,
    size_t hdr_ct_len)
{
	unsigned char *m;

	*out = NULL;
	if (suite == GS_ENV_SUITE_PH) {
		memcpy(ph, GS_ENV_SIGCTX_PH, SIGCTX_LEN);
		memcpy(ph + SIGCTX_LEN, env, GS_ENV_HDRBYTES);
		gs_crypto_hash(ph + SIGCTX_LEN + GS_ENV_HDRBYTES,
		    GS_HASH_MAXBYTES, env + GS_ENV_HDRBYTES,
		    hdr_ct_len - GS_ENV_HDRBYTES, NULL, 0);
		*msg = ph;
		*msglen = PH_MSGBYTES;
		return GS_OK;
	}
	if ((m = gs_malloc(SIGCTX_LEN + hdr_ct_len)) == NULL)
		return GS_FAIL(GS_ENOMEM, "no memory for the signed message");
	memcpy(m, GS_ENV_SIGCTX, SIGCTX_LEN);
	memcpy(m + SIGCTX_LEN, env, hdr_ct_len);
	*out = m;
	*msg = m;
	*msglen = SIGCTX_LEN + hdr_ct_len;
	return GS_OK;
}

static int
seal(struct gs_buf *out, const struct gs_seal_params *p, const void *plain,
    size_t plain_len, const unsigned char *eph_seed, const unsigned char *nonce)
{
	struct gs_envelope_header h;
	struct gs_buf z;
	unsigned char eph_sk[GS_KX_SKBYTES], rx[GS_KX_SESSIONBYTES],
	    tx[GS_KX_SESSIONBYTES], dev_pk[GS_SIGN_PKBYTES];
	unsigned char *env, *scratch = NULL, ph[PH_MSGBYTES];
	const unsigned char *msg;
	size_t start = out->len, total, msglen = 0;
	int r = GS_EINTERNAL;

	gs_buf_init_secret(&z, GS_ENV_MAX_ENVELOPE);
	memset(&h, 0, sizeof h);
	if (p->suite != 0 && p->suite != GS_ENV_SUITE &&
	    p->suite != GS_ENV_SUITE_PH) {
		r = GS_FAIL(GS_EINVAL, "no envelope suite %d", p->suite);
		goto out;
	}
	if (p->seq == 0) {
		r = GS_FAIL(GS_EINVAL, "seq must start at 1");
		goto out;
	}
	if (p->seq == 1 && !gs_crypto_is_zero(p->prev_hash, GS_HASHBYTES)) {
		r = GS_FAIL(GS_EINVAL, "seq 1 has no previous envelope");
		goto out;
	}
	if (plain_len == 0) {
		r = GS_FAIL(GS_EINVAL, "empty batch plaintext");
		goto out;
	}
	/* Refuse what the platform would refuse, before any work. */
	if (plain_len > GS_ENV_MAX_PLAIN) {
		r = GS_FAIL(GS_ETOOBIG,
		    "batch plaintext of %zu bytes exceeds "
		    "%u",
		    plain_len, GS_ENV_MAX_PLAIN);
		goto out;
	}
	if ((r = gs_deflate(&z, plain, plain_len, p->level)) != GS_OK)
		goto out;

	/* The header first: it is the AEAD's additional data. */
	h.version = GS_ENV_VERSION;
	h.suite = p->suite != 0 ? (uint8_t)p->suite : GS_ENV_SUITE;
	h.flags = 0;
	memcpy(h.deployment, p->deployment, 16);
	memcpy(h.device, p->device, 16);
	memcpy(h.batch, p->batch, 16);
	h.seq = p->seq;
	memcpy(h.prev_hash, p->prev_hash, GS_HASHBYTES);
	h.created_at = p->created_at;
	h.count = p->count;
	h.plain_len = plain_len;
	h.ct_len = z.len + GS_AEAD_TAGBYTES;
	gs_crypto_key_id(h.platform_kid, p->platform_pk, GS_KX_PKBYTES);
	gs_crypto_sign_sk_to_pk(dev_pk, p->device_sk);
	gs_crypto_key_id(h.device_kid, dev_pk, GS_SIGN_PKBYTES);
	if (eph_seed != NULL)
		gs_crypto_kx_seed_keypair(h.eph_pk, eph_sk, eph_seed);
	else
		gs_crypto_kx_keypair(h.eph_pk, eph_sk);
	if (nonce != NULL)
		memcpy(h.nonce, nonce, GS_AEAD_NONCEBYTES);
	else
		gs_random(h.nonce, GS_AEAD_NONCEBYTES);
	if (gs_crypto_kx_client(rx, tx, h.eph_pk, eph_sk, p->platform_pk) !=
	    GS_OK) {
		r = GS_FAIL(GS_EDECRYPT, "platform batch key is unusable");
		goto out;
	}

	/* The whole envelope is written in place in the caller's buffer:
	 * header, then the AEAD output right after it, then the signature. */
	total = GS_ENV_HDRBYTES + (size_t)h.ct_len + GS_SIGBYTES;
	if (total > GS_ENV_MAX_ENVELOPE) {
		r = GS_FAIL(GS_ETOOBIG, "envelope of %zu bytes exceeds %u",
		    total, GS_ENV_MAX_ENVELOPE);
		goto out;
	}
	if ((r = gs_buf_reserve(out, total)) != GS_OK) {
		if (r == GS_ETOOBIG)
			r = GS_FAIL(GS_ETOOBIG,
			    "envelope of %zu bytes does "
			    "not fit in %zu",
			    total, out->max - out->len);
		goto out;
	}
	env = (unsigned char *)out->data + start;
	write_header(env, &h);
	if ((r = gs_crypto_aead_encrypt(env + GS_ENV_HDRBYTES, z.data, z.len,
		 env, GS_ENV_HDRBYTES, h.nonce, tx)) != GS_OK)
		goto out;
	if ((r = signed_message(h.suite, &scratch, &msg, &msglen, ph, env,
		 GS_ENV_HDRBYTES + (size_t)h.ct_len)) != GS_OK)
		goto out;
	if ((r = gs_crypto_sign(env + GS_ENV_HDRBYTES + h.ct_len, msg, msglen,
		 p->device_sk)) != GS_OK)
		goto out;
	out->len = start + total;
	out->data[out->len] = '\0';
	r = GS_OK;
out:
	/* The ephemeral secret and the session keys die here: nobody, the
	 * device included, can decrypt this envelope again. */
	gs_crypto_memzero(eph_sk, sizeof eph_sk);
	gs_crypto_memzero(rx, sizeof rx);
	gs_crypto_memzero(tx, sizeof tx);
	gs_buf_release(&z);
	gs_free(scratch);
	if (r != GS_OK)
		gs_buf_truncate(out, start);
	return r;
}

int
gs_envelope_seal(struct gs_buf *out, const struct gs_seal_params *p,
    const void *plain, size_t plain_len)
{
	return seal(out, p, plain, plain_len, NULL, NULL);
}

int
gs_envelope_seal_det(struct gs_buf *out, const struct gs_seal_params *p,
    const void *plain, size_t plain_len,
    const unsigned char eph_seed[GS_KX_SEEDBYTES],
    const unsigned char nonce[GS_AEAD_NONCEBYTES])
{
	return seal(out, p, plain, plain_len, eph_seed, nonce);
}

int
gs_envelope_parse(struct gs_envelope_header *h, const void *env, size_t len,
    const struct gs_envelope_limits *lim)
{
	struct gs_envelope_limits def;
	struct gs_envelope_header t;
	const unsigned char *p = env;
	uint64_t body;

	if (lim == NULL) {
		gs_envelope_limits_default(&def);
		lim = &def;
	}
	if (len > lim->max_envelope)
		return GS_FAIL(GS_ETOOBIG, "envelope of %zu bytes exceeds %zu",
		    len, lim->max_envelope);
	if (len < GS_ENV_MINBYTES)
		return GS_FAIL(GS_EENVELOPE,
		    "envelope of %zu bytes is shorter "
		    "than the minimum %d",
		    len, GS_ENV_MINBYTES);
	if (memcmp(p + OFF_MAGIC, GS_ENV_MAGIC, 4) != 0)
		return GS_FAIL(GS_EENVELOPE, "not a GSB1 envelope (bad magic)");
	read_header(&t, p);
	/* Unknown versions are refused, never guessed at: no downgrade. */
	if (t.version != GS_ENV_VERSION || (t.suite != GS_ENV_SUITE &&
	    t.suite != GS_ENV_SUITE_PH) || t.flags != 0)
		return GS_FAIL(GS_EUNSUPPORTED,
		    "envelope version %u suite %u "
		    "flags %u; only version 1, suite 1 or 2, flags 0 are known",
		    t.version, t.suite, t.flags);
	if (gs_get_le32(p + OFF_RESERVED) != 0)
		return GS_FAIL(GS_EENVELOPE, "reserved header bytes are set");
	body = (uint64_t)len - GS_ENV_HDRBYTES - GS_SIGBYTES;
	/* Exact length: a truncated upload and one with bytes appended are
	 * both refused here, before the signature is even looked at. */
	if (t.ct_len != body)
		return GS_FAIL(GS_EENVELOPE,
		    "header says %llu ciphertext bytes,"
		    " envelope holds %llu (truncated or padded)",
		    (unsigned long long)t.ct_len, (unsigned long long)body);
	/* seq and prev_hash are the device's chain; the ledger (platform)
	 * checks continuity, this only refuses the impossible. */
	if (t.seq == 0)
		return GS_FAIL(GS_EENVELOPE, "seq 0 (seq starts at 1)");
	if (t.seq == 1 && !gs_crypto_is_zero(t.prev_hash, GS_HASHBYTES))
		return GS_FAIL(GS_EENVELOPE, "seq 1 names a previous envelope");
	if (t.plain_len > lim->max_plain)
		return GS_FAIL(GS_ETOOBIG,
		    "declared plaintext of %llu bytes "
		    "exceeds %zu",
		    (unsigned long long)t.plain_len, lim->max_plain);
	if (t.count > lim->max_records)
		return GS_FAIL(GS_ETOOBIG, "%u records exceed the limit of %u",
		    t.count, lim->max_records);
	/* A plaintext larger than deflate could ever produce from this
	 * many bytes is a lie: refuse it before any work. */
	if (t.plain_len / GS_INFLATE_MAX_RATIO > t.ct_len - GS_AEAD_TAGBYTES)
		return GS_FAIL(GS_EINFLATE,
		    "declared plaintext of %llu bytes "
		    "is impossible for %llu compressed bytes",
		    (unsigned long long)t.plain_len,
		    (unsigned long long)(t.ct_len - GS_AEAD_TAGBYTES));
	*h = t;
	return GS_OK;
}

int
gs_envelope_verify(const struct gs_envelope_header *h, const void *env,
    size_t len, const unsigned char device_pk[GS_SIGN_PKBYTES])
{
	const unsigned char *p = env, *msg;
	unsigned char *scratch = NULL, ph[PH_MSGBYTES];
	size_t n = GS_ENV_HDRBYTES + (size_t)h->ct_len, msglen = 0;
	int r;

	/* parse checked this; check again rather than read out of bounds
	 * if a caller skipped it. */
	if (len != n + GS_SIGBYTES)
		return GS_FAIL(GS_EENVELOPE, "envelope length does not match "
					     "its header");
	/* The suite as the bytes say (parse refused any other): a header
	 * edited from one suite to the other is signed by neither. */
	if ((r = signed_message(p[OFF_SUITE], &scratch, &msg, &msglen, ph, p,
	    n)) != GS_OK)
		return r;
	r = gs_crypto_verify(p + n, msg, msglen, device_pk);
	gs_free(scratch);
	if (r != GS_OK)
		return GS_FAIL(GS_EBADSIG, "envelope signature does not verify "
					   "with the device's key");
	return GS_OK;
}

int
gs_envelope_open(struct gs_buf *plain, const struct gs_envelope_header *h,
    const void *env, size_t len, const unsigned char platform_pk[GS_KX_PKBYTES],
    const unsigned char platform_sk[GS_KX_SKBYTES])
{
	const unsigned char *p = env;
	unsigned char rx[GS_KX_SESSIONBYTES], tx[GS_KX_SESSIONBYTES];
	unsigned char kid[GS_KIDBYTES];
	unsigned char *z = NULL;
	size_t zlen;
	int r = GS_EINTERNAL;

	if (len != GS_ENV_HDRBYTES + h->ct_len + GS_SIGBYTES ||
	    h->ct_len < GS_AEAD_TAGBYTES)
		return GS_FAIL(GS_EENVELOPE, "envelope length does not match "
					     "its header");
	zlen = (size_t)h->ct_len - GS_AEAD_TAGBYTES;
	/* Key ids are public, so a plain comparison is fine.  After a
	 * rotation the caller picks the key pair by h->platform_kid; this
	 * check turns a wrong pick into a clear message. */
	gs_crypto_key_id(kid, platform_pk, GS_KX_PKBYTES);
	if (memcmp(kid, h->platform_kid, GS_KIDBYTES) != 0) {
		/* Not an error of the envelope as such, but it cannot
		 * decrypt: say which key it wants. */
		char want[2 * GS_KIDBYTES + 1];

		gs_hex_encode(want, h->platform_kid, GS_KIDBYTES);
		return GS_FAIL(GS_EDECRYPT,
		    "envelope is sealed to platform key "
		    "%s, not this one",
		    want);
	}
	if (gs_crypto_kx_server(rx, tx, platform_pk, platform_sk, h->eph_pk) !=
	    GS_OK) {
		r = GS_FAIL(GS_EDECRYPT, "ephemeral key is unusable");
		goto out;
	}
	if ((z = gs_malloc(zlen ? zlen : 1)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "no memory to decrypt %zu bytes", zlen);
		goto out;
	}
	/* The header as written is the additional data, byte for byte. */
	if (gs_crypto_aead_decrypt(z, p + GS_ENV_HDRBYTES, (size_t)h->ct_len, p,
		GS_ENV_HDRBYTES, p + OFF_NONCE, rx) != GS_OK) {
		r = GS_FAIL(GS_EDECRYPT, "envelope does not decrypt with this "
					 "platform key");
		goto out;
	}
	/* plain_len was checked against the caps by parse; gs_inflate also
	 * refuses it if it does not fit the caller's buffer. */
	r = gs_inflate(plain, z, zlen, (size_t)h->plain_len);
out:
	gs_crypto_memzero(rx, sizeof rx);
	gs_crypto_memzero(tx, sizeof tx);
	if (z != NULL)
		gs_crypto_memzero(z, zlen);
	gs_free(z);
	return r;
}

void
gs_envelope_hash(unsigned char out[GS_HASHBYTES], const void *env, size_t len)
{
	gs_crypto_hash(out, GS_HASHBYTES, env, len, NULL, 0);
}

int
gs_envelope_check_deployment(
    const struct gs_envelope_header *h, const unsigned char deployment[16])
{
	char hex[33];

	if (memcmp(h->deployment, deployment, 16) == 0)
		return GS_OK;
	gs_hex_encode(hex, h->deployment, 16);
	return GS_FAIL(GS_EDEPLOYMENT, "envelope is for deployment %s", hex);
}
