/*
 * feed.c - GSQ1 request signatures and GSF1 feeds (the format is in
 * feed.h and PROTOCOL.md section 8).
 *
 * Why the feed is both signed and sealed: the signature (receipt key,
 * pinned at enrollment) proves it comes from the platform, so a proxy or
 * a captive portal cannot inject records or tasks into a device; the
 * sealing (to the device's own key, converted to X25519) keeps the
 * residents' data in it unreadable to anyone but that device, even where
 * TLS is terminated early.  The signature covers the ciphertext so a
 * device rejects a forgery before it decrypts anything.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "deflate.h"
#include "feed.h"
#include "schema.h"
#include "core/banned.h"

enum {
	O_MAGIC = 0, O_VERSION = 4, O_SUITE = 5, O_FLAGS = 6, O_DEP = 8,
	O_DEV = 24, O_SINCE = 40, O_CURSOR = 48, O_CREATED = 56,
	O_PLAIN = 64, O_CT = 72, O_EPH = 80, O_NONCE = 112
};

static const char req_dom[] = "GSQ1-req";
static const char sig_dom[] = "GSF1-sig";

/* The GSQ1 message: small, so built in one buffer. */
static int
req_message(struct gs_buf *m, const char *method, const char *path,
    uint64_t since, int64_t t, const void *body, size_t len)
{
	unsigned char n[16], h[GS_HASHBYTES];
	int r;

	gs_put_le64(n, since);
	gs_put_le64(n + 8, (uint64_t)t);
	gs_crypto_hash(h, sizeof(h), body, body != NULL ? len : 0, NULL, 0);
	if ((r = gs_buf_append(m, req_dom, 8)) != GS_OK ||
	    (r = gs_buf_append(m, method, strlen(method) + 1)) != GS_OK ||
	    (r = gs_buf_append(m, path, strlen(path) + 1)) != GS_OK ||
	    (r = gs_buf_append(m, n, sizeof(n))) != GS_OK ||
	    (r = gs_buf_append(m, h, sizeof(h))) != GS_OK)
		return r;
	return GS_OK;
}

int
gs_req_sign(unsigned char sig[64], const char *method, const char *path,
    uint64_t since, int64_t t, const void *body, size_t len,
    const unsigned char *device_sk)
{
	struct gs_buf m;
	int r;

	gs_buf_init(&m, 8192);
	if ((r = req_message(&m, method, path, since, t, body, len)) == GS_OK)
		r = gs_crypto_sign(sig, m.data, m.len, device_sk);
	gs_buf_release(&m);
	return r;
}

int
gs_req_verify(const unsigned char sig[64], const char *method,
    const char *path, uint64_t since, int64_t t, const void *body,
    size_t len, const unsigned char *device_pk)
{
	struct gs_buf m;
	int r;

	gs_buf_init(&m, 8192);
	if ((r = req_message(&m, method, path, since, t, body, len)) == GS_OK)
		r = gs_crypto_verify(sig, m.data, m.len, device_pk) == GS_OK ?
		    GS_OK : GS_FAIL(GS_EBADSIG, "request signature does not "
		    "verify with the device's key");
	gs_buf_release(&m);
	return r;
}

static void
put_header(unsigned char *p, const struct gs_feed_header *h)
{
	memcpy(p + O_MAGIC, "GSF1", 4);
	p[O_VERSION] = 1;
	p[O_SUITE] = 1;
	gs_put_le16(p + O_FLAGS, h->flags);
	memcpy(p + O_DEP, h->deployment, 16);
	memcpy(p + O_DEV, h->device, 16);
	gs_put_le64(p + O_SINCE, h->since);
	gs_put_le64(p + O_CURSOR, h->cursor);
	gs_put_le64(p + O_CREATED, (uint64_t)h->created_at);
	gs_put_le64(p + O_PLAIN, h->plain_len);
	gs_put_le64(p + O_CT, h->ct_len);
	memcpy(p + O_EPH, h->eph_pk, 32);
	memcpy(p + O_NONCE, h->nonce, 24);
}

/* Signs "GSF1-sig" || header || ciphertext (contiguous in feed). */
static int
sign_feed(unsigned char sig[64], const unsigned char *feed, size_t n,
    const unsigned char *sk)
{
	unsigned char *m = gs_malloc(n + 8);
	int r;

	if (m == NULL)
		return GS_FAIL(GS_ENOMEM, "feed signature");
	memcpy(m, sig_dom, 8);
	memcpy(m + 8, feed, n);
	r = gs_crypto_sign(sig, m, n + 8, sk);
	gs_free(m);
	return r;
}

static int
verify_feed(const unsigned char sig[64], const unsigned char *feed, size_t n,
    const unsigned char *pk)
{
	unsigned char *m = gs_malloc(n + 8);
	int r;

	if (m == NULL)
		return GS_FAIL(GS_ENOMEM, "feed signature");
	memcpy(m, sig_dom, 8);
	memcpy(m + 8, feed, n);
	r = gs_crypto_verify(sig, m, n + 8, pk);
	gs_free(m);
	return r == GS_OK ? GS_OK : GS_FAIL(GS_EBADSIG, "feed signature does "
	    "not verify with the platform's receipt key");
}

/* raw: plain is sealed as it is, whatever h->flags says (tests). */
static int
seal(struct gs_buf *out, struct gs_feed_header *h, const void *plain,
    size_t len, const unsigned char *device_pk,
    const unsigned char *receipt_sk, const unsigned char *eph_seed,
    const unsigned char *nonce, int raw)
{
	unsigned char xpk[GS_KX_PKBYTES], esk[GS_KX_SKBYTES];
	unsigned char rx[GS_KX_SESSIONBYTES], tx[GS_KX_SESSIONBYTES];
	unsigned char *p, n8[8];
	struct gs_buf z;
	size_t start = out->len, total;
	int r;

	if (len > GS_FEED_MAX - GS_FEED_OVERHEAD)
		return GS_FAIL(GS_ETOOBIG, "feed page of %zu bytes", len);
	if (!raw && (h->flags & ~GS_FEED_DEFLATED) != 0)
		return GS_FAIL(GS_EINVAL, "feed flags 0x%x", h->flags);
	gs_buf_init_secret(&z, GS_FEED_MAX - GS_FEED_OVERHEAD);
	if (!raw && (h->flags & GS_FEED_DEFLATED)) {
		/* The text's length, then its zlib stream: what is sealed. */
		gs_put_le64(n8, len);
		if ((r = gs_buf_append(&z, n8, sizeof(n8))) != GS_OK ||
		    (r = gs_deflate(&z, plain, len, GS_FEED_DEFLATE_LEVEL)) !=
		    GS_OK)
			goto out;
		plain = z.data;
		len = z.len;
	}
	if ((r = gs_crypto_sign_pk_to_kx(xpk, device_pk)) != GS_OK)
		goto out;
	if (eph_seed != NULL)
		gs_crypto_kx_seed_keypair(h->eph_pk, esk, eph_seed);
	else
		gs_crypto_kx_keypair(h->eph_pk, esk);
	if (nonce != NULL)
		memcpy(h->nonce, nonce, sizeof(h->nonce));
	else
		gs_random(h->nonce, sizeof(h->nonce));
	h->plain_len = len;
	h->ct_len = len + GS_AEAD_TAGBYTES;
	total = GS_FEED_HDRBYTES + h->ct_len + 64;
	if ((r = gs_crypto_kx_client(rx, tx, h->eph_pk, esk, xpk)) != GS_OK)
		goto out;
	if ((r = gs_buf_reserve(out, total)) != GS_OK)
		goto out;
	p = (unsigned char *)out->data + start;
	put_header(p, h);
	if ((r = gs_crypto_aead_encrypt(p + GS_FEED_HDRBYTES, plain, len, p,
	    GS_FEED_HDRBYTES, h->nonce, tx)) != GS_OK)
		goto out;
	if ((r = sign_feed(p + GS_FEED_HDRBYTES + h->ct_len, p,
	    GS_FEED_HDRBYTES + h->ct_len, receipt_sk)) != GS_OK)
		goto out;
	out->len = start + total;
out:
	gs_crypto_memzero(esk, sizeof(esk));
	gs_crypto_memzero(rx, sizeof(rx));
	gs_crypto_memzero(tx, sizeof(tx));
	/* The compressed page is the residents' data all the same: z is
	 * secret, wiped as it goes. */
	gs_buf_release(&z);
	return r;
}

int
gs_feed_seal(struct gs_buf *out, struct gs_feed_header *h, const void *plain,
    size_t len, const unsigned char *device_pk,
    const unsigned char *receipt_sk)
{
	return seal(out, h, plain, len, device_pk, receipt_sk, NULL, NULL, 0);
}

int
gs_feed_seal_det(struct gs_buf *out, struct gs_feed_header *h,
    const void *plain, size_t len, const unsigned char *device_pk,
    const unsigned char *receipt_sk, const unsigned char eph_seed[32],
    const unsigned char nonce[24])
{
	return seal(out, h, plain, len, device_pk, receipt_sk, eph_seed,
	    nonce, 0);
}

int
gs_feed_seal_raw_det(struct gs_buf *out, struct gs_feed_header *h,
    const void *bytes, size_t len, const unsigned char *device_pk,
    const unsigned char *receipt_sk, const unsigned char eph_seed[32],
    const unsigned char nonce[24])
{
	return seal(out, h, bytes, len, device_pk, receipt_sk, eph_seed,
	    nonce, 1);
}

int
gs_feed_open(struct gs_buf *plain, struct gs_feed_header *h,
    const unsigned char *feed, size_t len, const unsigned char *deployment,
    const unsigned char *device, const unsigned char *receipt_pk,
    const unsigned char *device_sk)
{
	unsigned char xpk[GS_KX_PKBYTES], xsk[GS_KX_SKBYTES];
	unsigned char rx[GS_KX_SESSIONBYTES], tx[GS_KX_SESSIONBYTES];
	unsigned char pk[GS_SIGN_PKBYTES];
	struct gs_buf z, *into = plain;
	uint64_t text_len;
	int r;

	memset(h, 0, sizeof(*h));
	gs_buf_init_secret(&z, GS_FEED_MAX);
	if (len > GS_FEED_MAX)
		return GS_FAIL(GS_ETOOBIG, "feed of %zu bytes", len);
	if (len < GS_FEED_OVERHEAD || memcmp(feed, "GSF1", 4) != 0)
		return GS_FAIL(GS_EPROTOCOL, "the answer is not a feed");
	h->flags = gs_get_le16(feed + O_FLAGS);
	if (feed[O_VERSION] != 1 || feed[O_SUITE] != 1 ||
	    (h->flags & ~GS_FEED_DEFLATED) != 0)
		return GS_FAIL(GS_EPROTOCOL, "feed version, suite or flags "
		    "not supported");
	memcpy(h->deployment, feed + O_DEP, 16);
	memcpy(h->device, feed + O_DEV, 16);
	h->since = gs_get_le64(feed + O_SINCE);
	h->cursor = gs_get_le64(feed + O_CURSOR);
	h->created_at = (int64_t)gs_get_le64(feed + O_CREATED);
	h->plain_len = gs_get_le64(feed + O_PLAIN);
	h->ct_len = gs_get_le64(feed + O_CT);
	memcpy(h->eph_pk, feed + O_EPH, 32);
	memcpy(h->nonce, feed + O_NONCE, 24);
	if (h->ct_len != len - GS_FEED_HDRBYTES - 64 ||
	    h->plain_len + GS_AEAD_TAGBYTES != h->ct_len)
		return GS_FAIL(GS_EPROTOCOL, "feed lengths do not add up");
	/* The signature before anything else is believed. */
	if ((r = verify_feed(feed + len - 64, feed, len - 64, receipt_pk))
	    != GS_OK)
		return r;
	if (memcmp(h->deployment, deployment, 16) != 0 ||
	    memcmp(h->device, device, 16) != 0)
		return GS_FAIL(GS_EINVAL, "the feed is for another deployment "
		    "or device");
	if (h->cursor < h->since)
		return GS_FAIL(GS_EPROTOCOL, "feed cursor goes backwards");
	gs_crypto_sign_sk_to_pk(pk, device_sk);
	if ((r = gs_crypto_sign_pk_to_kx(xpk, pk)) != GS_OK ||
	    (r = gs_crypto_sign_sk_to_kx(xsk, device_sk)) != GS_OK)
		goto out;
	if ((r = gs_crypto_kx_server(rx, tx, xpk, xsk, h->eph_pk)) != GS_OK)
		goto out;
	gs_buf_reset(plain);
	/* A deflated feed is decrypted aside, then inflated into plain. */
	if (h->flags & GS_FEED_DEFLATED)
		into = &z;
	if ((r = gs_buf_reserve(into, h->plain_len + 1)) != GS_OK)
		goto out;
	if ((r = gs_crypto_aead_decrypt((unsigned char *)into->data,
	    feed + GS_FEED_HDRBYTES, h->ct_len, feed, GS_FEED_HDRBYTES,
	    h->nonce, rx)) != GS_OK)
		goto out;
	into->len = h->plain_len;
	if (into == &z) {
		/* Its length first: gs_inflate holds the stream to exactly
		 * that many bytes, within plain's cap, or refuses it. */
		if (z.len < 8) {
			r = GS_FAIL(GS_EINFLATE, "deflated feed of %zu bytes",
			    z.len);
			goto out;
		}
		text_len = gs_get_le64((unsigned char *)z.data);
		if (text_len >= plain->max) {
			r = GS_FAIL(GS_EINFLATE, "feed text of %llu bytes "
			    "exceeds the cap", (unsigned long long)text_len);
			goto out;
		}
		if ((r = gs_inflate(plain, z.data + 8, z.len - 8,
		    (size_t)text_len)) != GS_OK)
			goto out;
	}
	plain->data[plain->len] = '\0';
out:
	gs_crypto_memzero(xsk, sizeof(xsk));
	gs_crypto_memzero(rx, sizeof(rx));
	gs_crypto_memzero(tx, sizeof(tx));
	gs_buf_release(&z);
	if (r != GS_OK)
		gs_buf_reset(plain);
	return r;
}

/* The digest of a code table's codes (hex, 16 digits) into out[17]. */
static void
table_digest(const struct gs_schema *s, const char *table, char out[17])
{
	unsigned char h[GS_HASHBYTES];
	struct gs_buf b;
	size_t i, n = gs_schema_ncodes(s, table);

	gs_buf_init(&b, 1u << 20);
	for (i = 0; i < n; i++)
		if (gs_buf_puts(&b, gs_schema_code_at(s, table, i)) != GS_OK ||
		    gs_buf_putc(&b, '\n') != GS_OK)
			break;
	gs_crypto_hash(h, sizeof(h), b.data, b.len, NULL, 0);
	gs_buf_release(&b);
	gs_hex_encode(out, h, 8);
}

json_t *
gs_feed_reference(const struct gs_schema *s)
{
	json_t *forms = json_object(), *codes = json_object();
	char d[17];
	size_t i;

	if (forms == NULL || codes == NULL)
		goto fail;
	for (i = 0; i < gs_schema_nforms(s); i++) {
		const struct gs_form *f = gs_schema_form_at(s, i);

		if (json_object_set_new(forms, gs_form_type(f),
		    json_integer(gs_form_version(f))) != 0)
			goto fail;
	}
	for (i = 0; i < gs_schema_ntables(s); i++) {
		table_digest(s, gs_schema_table_name(s, i), d);
		if (json_object_set_new(codes, gs_schema_table_name(s, i),
		    json_string(d)) != 0)
			goto fail;
	}
	return json_pack("{s:o,s:o}", "forms", forms, "codes", codes);
fail:
	json_decref(forms);
	json_decref(codes);
	return NULL;
}

json_t *
gs_feed_reference_diff(const struct gs_schema *s, const json_t *platform)
{
	json_t *out = json_array(), *mine = gs_feed_reference(s), *v;
	const char *k;
	char msg[160];

	if (out == NULL || mine == NULL) {
		json_decref(out);
		json_decref(mine);
		return NULL;
	}
	json_object_foreach(json_object_get(platform, "forms"), k, v) {
		json_t *m = json_object_get(json_object_get(mine, "forms"), k);

		if (m != NULL && json_equal(m, v))
			continue;
		if (m == NULL)
			snprintf(msg, sizeof(msg), "form %.40s: platform v%lld, "
			    "unknown here", k, (long long)json_integer_value(v));
		else
			snprintf(msg, sizeof(msg), "form %.40s: platform v%lld, "
			    "here v%lld", k, (long long)json_integer_value(v),
			    (long long)json_integer_value(m));
		(void)json_array_append_new(out, json_string(msg));
	}
	json_object_foreach(json_object_get(platform, "codes"), k, v) {
		json_t *m = json_object_get(json_object_get(mine, "codes"), k);

		if (m != NULL && json_equal(m, v))
			continue;
		snprintf(msg, sizeof(msg), "code table %.40s differs from the "
		    "platform's", k);
		(void)json_array_append_new(out, json_string(msg));
	}
	json_decref(mine);
	return out;
}
