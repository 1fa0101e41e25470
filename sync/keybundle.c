/*
 * keybundle.c - GSK1 key bundles: encode + sign, verify + decode, and the
 * device's acceptance rule (keybundle.h has the byte layout).
 *
 * Verification order matters: length and magic first (cheap, no trust
 * needed), then the signature over the exact bytes received, and only
 * then are the fields read and checked, so an attacker's bytes are never
 * interpreted before the root key vouched for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "keybundle.h"
#include "core/banned.h"

int
gs_keybundle_sign(const struct gs_keybundle *b,
    const unsigned char root_sk[GS_SIGN_SKBYTES],
    unsigned char out[GS_BUNDLE_BYTES])
{
	if (b->serial == 0)
		return GS_FAIL(GS_EINVAL, "key bundle: serial 0 is reserved");
	memset(out, 0, GS_BUNDLE_BYTES);
	memcpy(out, GS_BUNDLE_MAGIC, 4);
	gs_put_le64(out + 4, b->serial);
	gs_put_le64(out + 12, (uint64_t)b->not_after);
	gs_put_le16(out + 20, b->min_version[0]);
	gs_put_le16(out + 22, b->min_version[1]);
	gs_put_le16(out + 24, b->min_version[2]);
	/* 26..27 reserved, zero */
	memcpy(out + 28, b->deployment, 16);
	memcpy(out + 44, b->batch_pk, GS_KX_PKBYTES);
	gs_crypto_key_id(out + 76, b->batch_pk, GS_KX_PKBYTES);
	memcpy(out + 84, b->receipt_pk, GS_SIGN_PKBYTES);
	return gs_crypto_sign(out + GS_BUNDLE_SIGNED, out, GS_BUNDLE_SIGNED,
	    root_sk);
}

int
gs_keybundle_open(const unsigned char *in, size_t len,
    const unsigned char root_pk[GS_SIGN_PKBYTES], struct gs_keybundle *out)
{
	unsigned char kid[GS_KIDBYTES];

	memset(out, 0, sizeof(*out));
	if (len != GS_BUNDLE_BYTES)
		return GS_FAIL(GS_EPARSE, "key bundle: %zu bytes, expected %d",
		    len, GS_BUNDLE_BYTES);
	if (memcmp(in, GS_BUNDLE_MAGIC, 4) != 0)
		return GS_FAIL(GS_EPARSE, "key bundle: bad magic");
	if (gs_crypto_verify(in + GS_BUNDLE_SIGNED, in, GS_BUNDLE_SIGNED,
	    root_pk) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "key bundle: not signed by the "
		    "pinned platform root key");
	if (in[26] != 0 || in[27] != 0)
		return GS_FAIL(GS_EPARSE, "key bundle: reserved bytes set");
	gs_crypto_key_id(kid, in + 44, GS_KX_PKBYTES);
	if (memcmp(kid, in + 76, GS_KIDBYTES) != 0)
		return GS_FAIL(GS_EPARSE, "key bundle: batch_kid does not "
		    "match batch_pk");
	out->serial = gs_get_le64(in + 4);
	if (out->serial == 0)
		return GS_FAIL(GS_EPARSE, "key bundle: serial 0");
	out->not_after = (int64_t)gs_get_le64(in + 12);
	out->min_version[0] = gs_get_le16(in + 20);
	out->min_version[1] = gs_get_le16(in + 22);
	out->min_version[2] = gs_get_le16(in + 24);
	memcpy(out->deployment, in + 28, 16);
	memcpy(out->batch_pk, in + 44, GS_KX_PKBYTES);
	memcpy(out->batch_kid, in + 76, GS_KIDBYTES);
	memcpy(out->receipt_pk, in + 84, GS_SIGN_PKBYTES);
	return GS_OK;
}

/* "1.2.3" -> {1, 2, 3}; GS_EINVAL when it is not three numbers. */
static int
parse_version(const char *s, unsigned v[3])
{
	int i;

	for (i = 0; i < 3; i++) {
		char *end = NULL;
		unsigned long x;

		if (*s < '0' || *s > '9')
			return GS_EINVAL;
		x = strtoul(s, &end, 10);
		if (x > 65535 || (i < 2 && *end != '.') ||
		    (i == 2 && *end != '\0' && *end != '-' && *end != '+'))
			return GS_EINVAL;
		v[i] = (unsigned)x;
		s = end + 1;
	}
	return GS_OK;
}

int
gs_keybundle_accept(const struct gs_keybundle *b, uint64_t pinned_serial,
    const unsigned char deployment[16], int64_t now_ms,
    const char *agent_version)
{
	unsigned v[3];
	int i;

	if (b->serial <= pinned_serial)
		return GS_FAIL(GS_EREPLAY, "key bundle serial %llu is not newer "
		    "than the pinned %llu (a rollback is refused)",
		    (unsigned long long)b->serial,
		    (unsigned long long)pinned_serial);
	if (memcmp(b->deployment, deployment, 16) != 0)
		return GS_FAIL(GS_EDEPLOYMENT, "key bundle of another "
		    "deployment");
	if (now_ms > b->not_after)
		return GS_FAIL(GS_EREJECTED, "key bundle %llu expired",
		    (unsigned long long)b->serial);
	if (parse_version(agent_version, v) != GS_OK)
		return GS_FAIL(GS_EINVAL, "agent version '%.20s' is not "
		    "MAJOR.MINOR.PATCH", agent_version);
	for (i = 0; i < 3; i++) {
		if (v[i] > b->min_version[i])
			break;
		if (v[i] < b->min_version[i])
			return GS_FAIL(GS_EUNSUPPORTED, "the platform needs agent "
			    "%u.%u.%u or newer (this is %s)",
			    b->min_version[0], b->min_version[1],
			    b->min_version[2], agent_version);
	}
	return GS_OK;
}

void
gs_keybundle_root_fp(unsigned char fp[GS_ROOT_FPBYTES],
    const unsigned char root_pk[GS_SIGN_PKBYTES])
{
	static const char tag[] = "gridsync-root-v1";
	unsigned char m[sizeof(tag) - 1 + GS_SIGN_PKBYTES];

	memcpy(m, tag, sizeof(tag) - 1);
	memcpy(m + sizeof(tag) - 1, root_pk, GS_SIGN_PKBYTES);
	gs_crypto_hash(fp, GS_ROOT_FPBYTES, m, sizeof(m), NULL, 0);
}
