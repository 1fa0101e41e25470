/*
 * receipt.c - the platform's signed receipt (layout in receipt.h and
 * docs/PROTOCOL.md).
 *
 * The receipt is what moves data forward on the device: a batch is acked
 * only on a receipt that verifies with the pinned receipt key, names what
 * the device sent, and covers the results text the device is about to act
 * on.  A bare 200 or a proxy's page never does.
 */
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "receipt.h"
#include "core/banned.h"

enum {
	OFF_MAGIC = 0,
	OFF_DEPLOYMENT = 4,
	OFF_DEVICE = 20,
	OFF_BATCH = 36,
	OFF_SEQ = 52,
	OFF_ENV_HASH = 60,
	OFF_APPLIED = 92,
	OFF_CONFLICTED = 96,
	OFF_QUARANTINED = 100,
	OFF_TIME = 104,
	OFF_STATUS = 112,
	OFF_RESULTS_HASH = 113,
	OFF_SIG = 145
};

_Static_assert(OFF_SIG == GS_RECEIPT_SIGNED_BYTES, "receipt layout");

/* Fixed offsets and explicit little-endian, as for the envelope header:
 * the signed bytes never depend on struct layout or host byte order. */
static void
encode(unsigned char *p, const struct gs_receipt *r)
{
	memcpy(p + OFF_MAGIC, GS_RECEIPT_MAGIC, 4);
	memcpy(p + OFF_DEPLOYMENT, r->deployment, 16);
	memcpy(p + OFF_DEVICE, r->device, 16);
	memcpy(p + OFF_BATCH, r->batch, 16);
	gs_put_le64(p + OFF_SEQ, r->seq);
	memcpy(p + OFF_ENV_HASH, r->envelope_hash, GS_HASHBYTES);
	gs_put_le32(p + OFF_APPLIED, r->applied);
	gs_put_le32(p + OFF_CONFLICTED, r->conflicted);
	gs_put_le32(p + OFF_QUARANTINED, r->quarantined);
	gs_put_le64(p + OFF_TIME, (uint64_t)r->server_time);
	p[OFF_STATUS] = r->status;
	memcpy(p + OFF_RESULTS_HASH, r->results_hash, GS_HASHBYTES);
}

static void
decode(struct gs_receipt *r, const unsigned char *p)
{
	memcpy(r->deployment, p + OFF_DEPLOYMENT, 16);
	memcpy(r->device, p + OFF_DEVICE, 16);
	memcpy(r->batch, p + OFF_BATCH, 16);
	r->seq = gs_get_le64(p + OFF_SEQ);
	memcpy(r->envelope_hash, p + OFF_ENV_HASH, GS_HASHBYTES);
	r->applied = gs_get_le32(p + OFF_APPLIED);
	r->conflicted = gs_get_le32(p + OFF_CONFLICTED);
	r->quarantined = gs_get_le32(p + OFF_QUARANTINED);
	r->server_time = (int64_t)gs_get_le64(p + OFF_TIME);
	r->status = p[OFF_STATUS];
	memcpy(r->results_hash, p + OFF_RESULTS_HASH, GS_HASHBYTES);
}

int
gs_receipt_sign(unsigned char out[GS_RECEIPT_BYTES], struct gs_receipt *r,
    const char *results, size_t results_len,
    const unsigned char receipt_sk[GS_SIGN_SKBYTES])
{
	if (r->status != GS_RECEIPT_ACCEPTED &&
	    r->status != GS_RECEIPT_QUARANTINED)
		return GS_FAIL(
		    GS_EINVAL, "receipt status %u is not 1 or 2", r->status);
	/* The results text is what the device will show the worker and act
	 * on (quarantined, conflicts): the signature covers it by hash. */
	gs_crypto_hash(
	    r->results_hash, GS_HASHBYTES, results, results_len, NULL, 0);
	encode(out, r);
	return gs_crypto_sign(
	    out + OFF_SIG, out, GS_RECEIPT_SIGNED_BYTES, receipt_sk);
}

int
gs_receipt_verify(struct gs_receipt *r, const unsigned char *bytes, size_t len,
    const char *results, size_t results_len,
    const unsigned char receipt_pk[GS_SIGN_PKBYTES])
{
	unsigned char h[GS_HASHBYTES];

	/* Length and magic first: a proxy's HTML page or an old platform's
	 * answer is a protocol problem (retry later), not a forgery. */
	if (len != GS_RECEIPT_BYTES)
		return GS_FAIL(GS_EPROTOCOL,
		    "receipt of %zu bytes, expected %d", len, GS_RECEIPT_BYTES);
	if (memcmp(bytes + OFF_MAGIC, GS_RECEIPT_MAGIC, 4) != 0)
		return GS_FAIL(GS_EPROTOCOL, "not a GSR1 receipt (bad magic)");
	if (gs_crypto_verify(bytes + OFF_SIG, bytes, GS_RECEIPT_SIGNED_BYTES,
		receipt_pk) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "receipt signature does not verify "
					   "with the platform's receipt key");
	/* The status byte is signed, so an unknown one is the platform's
	 * own (newer) idea, not tampering; still, never act on it. */
	if (bytes[OFF_STATUS] != GS_RECEIPT_ACCEPTED &&
	    bytes[OFF_STATUS] != GS_RECEIPT_QUARANTINED)
		return GS_FAIL(GS_EPROTOCOL, "receipt status %u is unknown",
		    bytes[OFF_STATUS]);
	/* The results text travels beside the receipt, outside the
	 * signature; its hash inside the signature ties the two. */
	gs_crypto_hash(h, sizeof h, results, results_len, NULL, 0);
	if (gs_crypto_memcmp(h, bytes + OFF_RESULTS_HASH, GS_HASHBYTES) != 0)
		return GS_FAIL(GS_EBADSIG, "results text does not match the "
					   "receipt's results hash");
	decode(r, bytes);
	return GS_OK;
}

/* A validly signed receipt for another batch (a platform bug, or a
 * replayed answer) must not ack this one. */
int
gs_receipt_match(const struct gs_receipt *got, const struct gs_receipt *sent)
{
	if (memcmp(got->deployment, sent->deployment, 16) != 0)
		return GS_FAIL(
		    GS_EPROTOCOL, "receipt names another deployment");
	if (memcmp(got->device, sent->device, 16) != 0)
		return GS_FAIL(GS_EPROTOCOL, "receipt names another device");
	if (memcmp(got->batch, sent->batch, 16) != 0)
		return GS_FAIL(GS_EPROTOCOL, "receipt names another batch id");
	if (got->seq != sent->seq)
		return GS_FAIL(GS_EPROTOCOL,
		    "receipt names seq %llu, sent %llu",
		    (unsigned long long)got->seq,
		    (unsigned long long)sent->seq);
	if (memcmp(got->envelope_hash, sent->envelope_hash, GS_HASHBYTES) != 0)
		return GS_FAIL(GS_EPROTOCOL, "receipt names another envelope "
					     "hash than the bytes sent");
	return GS_OK;
}
