/*
 * enroll.c - enrollment codes, proofs, self-signatures and the platform
 * key fingerprint (formats in enroll.h and docs/PROTOCOL.md).
 *
 * The code is read by people: it is decoded forgivingly where that cannot
 * hurt (white space around it, lower-case base32) and strictly everywhere
 * else, with a checksum so that a typo is reported as a typo instead of as
 * "enrollment refused" after a round trip to the platform.
 */
#include <ctype.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "crypto.h"
#include "enroll.h"
#include "core/banned.h"

#define CODE_CTX "gridsync-code-v1"
#define CHECK_BYTES 4
#define RAW_BYTES                                                              \
	(GS_ENROLL_TOKEN_ID_BYTES + GS_ENROLL_TOKEN_BYTES +                    \
	    GS_ENROLL_FP_BYTES + CHECK_BYTES) /* 68 */
#define B32_CHARS ((RAW_BYTES * 8 + 4) / 5)   /* 109 */
#define PREFIX_LEN (sizeof(GS_ENROLL_PREFIX) - 1)

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* RFC 4648 base32 without padding; out holds B32_CHARS + 1.  Base32
 * because people read codes aloud and type them: one case, no 0/O or 1/l
 * pairs, no characters a shell or a chat client would mangle. */
static void
b32_encode(char *out, const unsigned char *in, size_t n)
{
	unsigned int acc = 0;
	int bits = 0;
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

/* The value of one base32 character, either case; -1 if not one. */
static int
b32_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

/* Exactly B32_CHARS characters into RAW_BYTES bytes.  pos0 is where the
 * text starts in the code, for the error message. */
static int
b32_decode(unsigned char *out, const char *in, size_t pos0)
{
	unsigned int acc = 0;
	int bits = 0, v;
	size_t i, o = 0;

	for (i = 0; i < B32_CHARS; i++) {
		if ((v = b32_value(in[i])) < 0)
			return GS_FAIL(GS_EINVAL,
			    "enrollment code: bad character "
			    "'%c' at position %zu",
			    isprint((unsigned char)in[i]) ? in[i] : '?',
			    pos0 + i + 1);
		acc = (acc << 5) | (unsigned int)v;
		bits += 5;
		if (bits >= 8) {
			out[o++] = (unsigned char)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	/* 109 * 5 = 545 bits for 544: the one spare bit must be zero, so
	 * that each code has exactly one spelling. */
	if ((acc & ((1u << bits) - 1)) != 0)
		return GS_FAIL(GS_EINVAL,
		    "enrollment code is damaged (bad "
		    "last character): check it for typos");
	return GS_OK;
}

/* The platform URL: http(s) only (no file:, no javascript:), printable
 * ASCII without spaces, so that it can be shown and passed to libcurl
 * as it is. */
static int
check_url(const char *url, size_t n)
{
	size_t i;

	if (n == 0 || n > GS_ENROLL_URL_MAX)
		return GS_FAIL(GS_EINVAL, "platform URL must be 1 to %d bytes",
		    GS_ENROLL_URL_MAX);
	if (!(n > 7 && strncmp(url, "http://", 7) == 0) &&
	    !(n > 8 && strncmp(url, "https://", 8) == 0))
		return GS_FAIL(GS_EINVAL, "platform URL must start with "
					  "http:// or https://");
	for (i = 0; i < n; i++)
		if (url[i] <= ' ' || url[i] > '~')
			return GS_FAIL(GS_EINVAL,
			    "platform URL has a space, "
			    "control or non-ASCII character");
	return GS_OK;
}

/* The code's check bytes cover the URL as well as the key part: a URL
 * typed wrong would otherwise send the proof to the wrong host. */
static void
checksum(unsigned char out[CHECK_BYTES], const unsigned char *raw,
    const char *url, size_t urllen)
{
	/* Small and bounded inputs: hash them in one stack buffer rather
	 * than risk an allocation failure in the multi-part API. */
	unsigned char m[sizeof CODE_CTX - 1 + RAW_BYTES + GS_ENROLL_URL_MAX];
	unsigned char h[GS_HASHBYTES];
	size_t n = 0;

	memcpy(m, CODE_CTX, sizeof CODE_CTX - 1);
	n += sizeof CODE_CTX - 1;
	memcpy(m + n, raw, RAW_BYTES - CHECK_BYTES);
	n += RAW_BYTES - CHECK_BYTES;
	memcpy(m + n, url, urllen);
	n += urllen;
	gs_crypto_hash(h, sizeof h, m, n, NULL, 0);
	memcpy(out, h, CHECK_BYTES);
	gs_crypto_memzero(m, sizeof m); /* it held the token */
}

int
gs_enroll_code_encode(struct gs_buf *out, const struct gs_enroll_code *c)
{
	unsigned char raw[RAW_BYTES];
	char text[B32_CHARS + 1], u64[GS_B64_LEN(GS_ENROLL_URL_MAX)];
	size_t urllen = strnlen(c->url, sizeof c->url), start = out->len;
	int r;

	if ((r = check_url(c->url, urllen)) != GS_OK)
		return r;
	memcpy(raw, c->token_id, GS_ENROLL_TOKEN_ID_BYTES);
	memcpy(raw + 16, c->token, GS_ENROLL_TOKEN_BYTES);
	memcpy(raw + 48, c->fingerprint, GS_ENROLL_FP_BYTES);
	checksum(raw + 64, raw, c->url, urllen);
	b32_encode(text, raw, RAW_BYTES);
	gs_crypto_b64_encode(u64, c->url, urllen);
	if ((r = gs_buf_puts(out, GS_ENROLL_PREFIX)) != GS_OK ||
	    (r = gs_buf_puts(out, text)) != GS_OK ||
	    (r = gs_buf_putc(out, '-')) != GS_OK ||
	    (r = gs_buf_puts(out, u64)) != GS_OK)
		gs_buf_truncate(out, start);
	gs_crypto_memzero(raw, sizeof raw);
	gs_crypto_memzero(text, sizeof text);
	return r;
}

int
gs_enroll_code_decode(struct gs_enroll_code *c, const char *text)
{
	struct gs_enroll_code t;
	unsigned char raw[RAW_BYTES], check[CHECK_BYTES];
	const char *p = text, *end, *u;
	size_t n, urllen = 0;
	int r = GS_EINVAL;

	/* Decode into a temporary and copy out only on success: a refused
	 * code leaves the caller's struct as it was. */
	memset(&t, 0, sizeof t);
	/* People paste codes with a newline or spaces around them. */
	while (*p != '\0' && isspace((unsigned char)*p))
		p++;
	end = p + strlen(p);
	while (end > p && isspace((unsigned char)end[-1]))
		end--;
	n = (size_t)(end - p);
	if (n == 0)
		return GS_FAIL(GS_EINVAL, "enrollment code is empty");
	/* A newer code format gets its own message: the fix is to update
	 * the agent, not to ask the admin for another code. */
	if (n < PREFIX_LEN || strncmp(p, GS_ENROLL_PREFIX, PREFIX_LEN) != 0) {
		if (n >= 2 && (p[0] == 'G' || p[0] == 'g') &&
		    (p[1] == 'S' || p[1] == 's') && n >= PREFIX_LEN &&
		    p[3] == '-' && p[2] != '1')
			return GS_FAIL(GS_EINVAL,
			    "enrollment code version "
			    "'%c' is not supported by this agent; update it",
			    isprint((unsigned char)p[2]) ? p[2] : '?');
		return GS_FAIL(GS_EINVAL,
		    "not an enrollment code (it must "
		    "start with %s)",
		    GS_ENROLL_PREFIX);
	}
	if (n > GS_ENROLL_CODE_MAX)
		return GS_FAIL(GS_EINVAL,
		    "enrollment code is too long (%zu "
		    "characters)",
		    n);
	/* The key part has a fixed length; say which way it is wrong. */
	if (n < PREFIX_LEN + B32_CHARS + 2 ||
	    p[PREFIX_LEN + B32_CHARS] != '-') {
		const char *dash = memchr(p + PREFIX_LEN, '-', n - PREFIX_LEN);

		if (dash == NULL)
			return GS_FAIL(GS_EINVAL,
			    "enrollment code is "
			    "incomplete (no platform address part): was it cut "
			    "off?");
		return GS_FAIL(GS_EINVAL,
		    "enrollment code is damaged: its key "
		    "part has %zu characters, not %d",
		    (size_t)(dash - p) - PREFIX_LEN, B32_CHARS);
	}
	if ((r = b32_decode(raw, p + PREFIX_LEN, PREFIX_LEN)) != GS_OK)
		goto out;
	u = p + PREFIX_LEN + B32_CHARS + 1;
	if (gs_crypto_b64_decode((unsigned char *)t.url, GS_ENROLL_URL_MAX,
		&urllen, u, (size_t)(end - u)) != GS_OK) {
		r = GS_FAIL(GS_EINVAL,
		    "enrollment code is damaged: its "
		    "platform address part is not valid base64url");
		goto out;
	}
	t.url[urllen] = '\0';
	if (memchr(t.url, '\0', urllen) != NULL ||
	    check_url(t.url, urllen) != GS_OK) {
		r = GS_FAIL(GS_EINVAL,
		    "enrollment code is damaged: its "
		    "platform address is not an http(s) URL");
		goto out;
	}
	/* Constant time, as the check is derived from the token. */
	checksum(check, raw, t.url, urllen);
	if (gs_crypto_memcmp(check, raw + 64, CHECK_BYTES) != 0) {
		r = GS_FAIL(GS_EINVAL, "enrollment code is damaged (checksum "
				       "mismatch): check it for typos");
		goto out;
	}
	memcpy(t.token_id, raw, GS_ENROLL_TOKEN_ID_BYTES);
	memcpy(t.token, raw + 16, GS_ENROLL_TOKEN_BYTES);
	memcpy(t.fingerprint, raw + 48, GS_ENROLL_FP_BYTES);
	*c = t;
	r = GS_OK;
out:
	gs_crypto_memzero(raw, sizeof raw);
	gs_crypto_memzero(&t, sizeof t);
	return r;
}

void
gs_enroll_code_wipe(struct gs_enroll_code *c)
{
	if (c != NULL)
		gs_crypto_memzero(c, sizeof *c);
}

void
gs_enroll_fingerprint(unsigned char fp[GS_ENROLL_FP_BYTES],
    const unsigned char deployment[16],
    const unsigned char root_pk[GS_SIGN_PKBYTES])
{
	static const char tag[] = "gridsync-root-v1";
	unsigned char m[sizeof(tag) - 1 + 16 + GS_SIGN_PKBYTES];

	memcpy(m, tag, sizeof(tag) - 1);
	memcpy(m + sizeof(tag) - 1, deployment, 16);
	memcpy(m + sizeof(tag) - 1 + 16, root_pk, GS_SIGN_PKBYTES);
	gs_crypto_hash(fp, GS_ENROLL_FP_BYTES, m, sizeof m, NULL, 0);
}

/* The device's only defence against a platform impostor at enrollment:
 * the root key it is about to pin must be the one the admin's code
 * names; every other platform key reaches it in a bundle that root key
 * signed (sync/keybundle.h). */
int
gs_enroll_check_fingerprint(const unsigned char fp[GS_ENROLL_FP_BYTES],
    const unsigned char deployment[16],
    const unsigned char root_pk[GS_SIGN_PKBYTES])
{
	unsigned char got[GS_ENROLL_FP_BYTES];

	gs_enroll_fingerprint(got, deployment, root_pk);
	if (gs_crypto_memcmp(got, fp, GS_ENROLL_FP_BYTES) != 0)
		return GS_FAIL(GS_EBADSIG, "platform root key does not match "
					   "the enrollment code's fingerprint");
	return GS_OK;
}

#define M_LEN                                                                  \
	(sizeof(GS_ENROLL_CTX) - 1 + GS_ENROLL_TOKEN_ID_BYTES + 16 +           \
	    GS_SIGN_PKBYTES)

/* M = "gridsync-enroll-v1" || token_id || device_id || device_pk.  The
 * context string keeps the proof and the self-signature from being valid
 * as anything else; the ids and key bind them to this one enrollment. */
static void
enroll_message(unsigned char m[M_LEN],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_pk[GS_SIGN_PKBYTES])
{
	size_t n = sizeof(GS_ENROLL_CTX) - 1;

	memcpy(m, GS_ENROLL_CTX, n);
	memcpy(m + n, token_id, GS_ENROLL_TOKEN_ID_BYTES);
	n += GS_ENROLL_TOKEN_ID_BYTES;
	memcpy(m + n, device_id, 16);
	n += 16;
	memcpy(m + n, device_pk, GS_SIGN_PKBYTES);
}

void
gs_enroll_proof(unsigned char proof[GS_ENROLL_PROOF_BYTES],
    const unsigned char token[GS_ENROLL_TOKEN_BYTES],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_pk[GS_SIGN_PKBYTES])
{
	unsigned char m[M_LEN];

	enroll_message(m, token_id, device_id, device_pk);
	/* Keyed BLAKE2b is a MAC: it proves the token without showing it,
	 * and binds the proof to this device id and key. */
	gs_crypto_hash(proof, GS_ENROLL_PROOF_BYTES, m, sizeof m, token,
	    GS_ENROLL_TOKEN_BYTES);
}

int
gs_enroll_proof_verify(const unsigned char proof[GS_ENROLL_PROOF_BYTES],
    const unsigned char token[GS_ENROLL_TOKEN_BYTES],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_pk[GS_SIGN_PKBYTES])
{
	unsigned char want[GS_ENROLL_PROOF_BYTES];
	int ok;

	/* Constant time: a timing leak would let a guesser learn the right
	 * proof byte by byte (and a proof is as good as the token). */
	gs_enroll_proof(want, token, token_id, device_id, device_pk);
	ok = gs_crypto_memcmp(want, proof, sizeof want) == 0;
	gs_crypto_memzero(want, sizeof want);
	if (!ok)
		return GS_FAIL(GS_EAUTH, "enrollment proof does not match the "
					 "token");
	return GS_OK;
}

/* The self-signature proves the enrolling party holds the secret key of
 * the public key it registers, so nobody can enroll someone else's key. */
int
gs_enroll_self_sign(unsigned char sig[GS_SIGBYTES],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_sk[GS_SIGN_SKBYTES])
{
	unsigned char m[M_LEN], pk[GS_SIGN_PKBYTES];

	gs_crypto_sign_sk_to_pk(pk, device_sk);
	enroll_message(m, token_id, device_id, pk);
	return gs_crypto_sign(sig, m, sizeof m, device_sk);
}

int
gs_enroll_self_verify(const unsigned char sig[GS_SIGBYTES],
    const unsigned char token_id[GS_ENROLL_TOKEN_ID_BYTES],
    const unsigned char device_id[16],
    const unsigned char device_pk[GS_SIGN_PKBYTES])
{
	unsigned char m[M_LEN];

	enroll_message(m, token_id, device_id, device_pk);
	if (gs_crypto_verify(sig, m, sizeof m, device_pk) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "device self-signature does not "
					   "verify");
	return GS_OK;
}

/* ------------------------------------------------------------- rekey */

/* M = "gridsync-rekey-v1" || new_pk || device_id || kid(new_pk): the old
 * key vouches for exactly this new key of exactly this device. */
#define REKEY_M_LEN (sizeof(GS_REKEY_CTX) - 1 + GS_SIGN_PKBYTES + 16 + \
	GS_KIDBYTES)

static void
rekey_msg(unsigned char m[REKEY_M_LEN], const unsigned char device_id[16],
    const unsigned char new_pk[GS_SIGN_PKBYTES])
{
	size_t o = sizeof(GS_REKEY_CTX) - 1;

	memcpy(m, GS_REKEY_CTX, o);
	memcpy(m + o, new_pk, GS_SIGN_PKBYTES);
	memcpy(m + o + GS_SIGN_PKBYTES, device_id, 16);
	gs_crypto_key_id(m + o + GS_SIGN_PKBYTES + 16, new_pk,
	    GS_SIGN_PKBYTES);
}

int
gs_rekey_sign(unsigned char sig[GS_SIGBYTES], const unsigned char device_id[16],
    const unsigned char new_pk[GS_SIGN_PKBYTES],
    const unsigned char old_sk[GS_SIGN_SKBYTES])
{
	unsigned char m[REKEY_M_LEN];

	rekey_msg(m, device_id, new_pk);
	return gs_crypto_sign(sig, m, sizeof(m), old_sk);
}

int
gs_rekey_verify(const unsigned char sig[GS_SIGBYTES],
    const unsigned char device_id[16],
    const unsigned char new_pk[GS_SIGN_PKBYTES],
    const unsigned char old_pk[GS_SIGN_PKBYTES])
{
	unsigned char m[REKEY_M_LEN];

	rekey_msg(m, device_id, new_pk);
	if (gs_crypto_verify(sig, m, sizeof(m), old_pk) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "rekey: the new key is not signed "
		    "by the device's current key");
	return GS_OK;
}
