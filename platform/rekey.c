/*
 * rekey.c - device key rotation (issue 6): POST /v1/devices/{id}/rekey
 * and the lookup of a device's earlier keys at ingest.
 *
 * The device makes a new Ed25519 key pair and signs the new public key
 * with its CURRENT key (sync/enroll.h, gs_rekey_sign).  The platform
 * checks that signature under the key it has on record, then in one
 * transaction records both keys in device_keys (schema/platform
 * 0006-device-keys.sql: the old one with the highest seq it may still
 * sign, the new one with the old key's kid and signature: the chain) and
 * makes the new key the device's key.  From then on heartbeats, pulls
 * and attachments are verified with the new key; a batch whose header
 * names an earlier key id is verified with that key only if its seq is at
 * most what the device had sealed when it rotated, so batches sealed
 * before the rekey still drain, and a stolen old key cannot sign new ones.
 *
 * Request:  {"new_pk":hex32,"sig":hex64,"sealed_through":n}
 * Answer:   200 {"device_kid":hex8}; a retry after success is 200 again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "enroll.h"
#include "http.h"
#include "platform.h"
#include "store.h"
#include "core/banned.h"

/* Statement slots of pf_store_sqlite_stmt used here (recon_sql.c has the
 * first ~31, rotate.c 40..41, attachments.c 48..63). */
#define SLOT_KEY_GET 42
#define SLOT_KEY_OLD 43
#define SLOT_KEY_NEW 44
#define SLOT_DEV_PK 45

int
pf_rekey_match(const char *path, char dev[33])
{
	static const char p1[] = "/v1/devices/", p2[] = "/rekey";

	if (strncmp(path, p1, sizeof(p1) - 1) != 0)
		return 0;
	path += sizeof(p1) - 1;
	if (strlen(path) != 32 + sizeof(p2) - 1 ||
	    strcmp(path + 32, p2) != 0)
		return 0;
	memcpy(dev, path, 32);
	dev[32] = '\0';
	return 1;
}

int
pf_device_old_key(struct pf_platform *pf, const unsigned char device[16],
    const unsigned char kid[GS_KIDBYTES], uint64_t seq,
    unsigned char pk[GS_SIGN_PKBYTES])
{
	struct gs_stmt *s = NULL;
	int r;

	(void)pthread_mutex_lock(&pf->read_lock);
	if ((r = pf_store_sqlite_stmt(pf->reader, SLOT_KEY_GET,
	    "SELECT pk FROM device_keys WHERE device_id = ?1 AND kid = ?2 "
	    "AND last_seq IS NOT NULL AND ?3 <= last_seq", &s)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_blob(s, 1, device, 16)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, kid, GS_KIDBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 3, (int64_t)seq)) != GS_OK)
		goto out;
	r = gs_stmt_step(s);
	if (r == GS_ROW && gs_stmt_bytes(s, 0) == GS_SIGN_PKBYTES) {
		memcpy(pk, gs_stmt_blob(s, 0), GS_SIGN_PKBYTES);
		r = GS_OK;
	} else if (r == GS_DONE || r == GS_ROW)
		r = GS_ENOTFOUND;
out:
	if (s != NULL)
		gs_stmt_reset(s);
	(void)pthread_mutex_unlock(&pf->read_lock);
	return r;
}

/* The three writes of a rekey, inside the caller's transaction. */
static int
record(struct pf_platform *pf, const struct pf_device *dev,
    const unsigned char new_pk[GS_SIGN_PKBYTES],
    const unsigned char sig[GS_SIGBYTES], int64_t sealed_through)
{
	unsigned char okid[GS_KIDBYTES], nkid[GS_KIDBYTES];
	struct gs_stmt *s = NULL;
	int64_t now = gs_now_ms();
	int r;

	gs_crypto_key_id(okid, dev->pk, GS_SIGN_PKBYTES);
	gs_crypto_key_id(nkid, new_pk, GS_SIGN_PKBYTES);
	/* The old key: recorded (the enrolled key at the first rekey) and
	 * closed at what the device had sealed with it. */
	if ((r = pf_store_sqlite_stmt(pf->store, SLOT_KEY_OLD,
	    "INSERT INTO device_keys (device_id, kid, pk, created_at, "
	    "last_seq) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (device_id, "
	    "kid) DO UPDATE SET last_seq = excluded.last_seq", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_blob(s, 1, dev->id, 16)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, okid, GS_KIDBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, dev->pk, GS_SIGN_PKBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, dev->enrolled_at)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, sealed_through)) != GS_OK ||
	    (r = gs_stmt_step(s)) != GS_DONE)
		goto out;
	gs_stmt_reset(s);
	if ((r = pf_store_sqlite_stmt(pf->store, SLOT_KEY_NEW,
	    "INSERT INTO device_keys (device_id, kid, pk, prev_kid, sig, "
	    "created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_blob(s, 1, dev->id, 16)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, nkid, GS_KIDBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, new_pk, GS_SIGN_PKBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 4, okid, GS_KIDBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 5, sig, GS_SIGBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, now)) != GS_OK)
		goto out;
	if ((r = gs_stmt_step(s)) != GS_DONE) {
		if (r == GS_EEXIST)
			r = GS_FAIL(GS_EEXIST, "rekey: this key was the "
			    "device's before");
		goto out;
	}
	gs_stmt_reset(s);
	if ((r = pf_store_sqlite_stmt(pf->store, SLOT_DEV_PK,
	    "UPDATE devices SET device_pk = ?2 WHERE device_id = ?1", &s))
	    != GS_OK)
		return r;
	if ((r = gs_stmt_bind_blob(s, 1, dev->id, 16)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, new_pk, GS_SIGN_PKBYTES)) != GS_OK ||
	    (r = gs_stmt_step(s)) != GS_DONE)
		goto out;
	r = GS_OK;
out:
	if (s != NULL)
		gs_stmt_reset(s);
	return r;
}

/* Reads {"new_pk","sig","sealed_through"}. */
static int
parse(const struct pf_request *req, unsigned char new_pk[GS_SIGN_PKBYTES],
    unsigned char sig[GS_SIGBYTES], int64_t *sealed)
{
	json_t *o;
	json_error_t je;
	const char *a, *b;
	json_t *n;
	int r = GS_OK;

	o = json_loadb(req->body ? (const char *)req->body : "",
	    req->body_len, JSON_REJECT_DUPLICATES, &je);
	a = json_string_value(json_object_get(o, "new_pk"));
	b = json_string_value(json_object_get(o, "sig"));
	n = json_object_get(o, "sealed_through");
	if (o == NULL || a == NULL || b == NULL || !json_is_integer(n) ||
	    json_integer_value(n) < 0 || strlen(a) != 2 * GS_SIGN_PKBYTES ||
	    strlen(b) != 2 * GS_SIGBYTES ||
	    gs_hex_decode(new_pk, GS_SIGN_PKBYTES, a) != GS_OK ||
	    gs_hex_decode(sig, GS_SIGBYTES, b) != GS_OK)
		r = GS_FAIL(GS_EPARSE, "rekey: expected {\"new_pk\":hex32,"
		    "\"sig\":hex64,\"sealed_through\":n}");
	else
		*sealed = json_integer_value(n);
	json_decref(o);
	return r;
}

void
pf_api_rekey(struct pf_platform *pf, const struct pf_request *req,
    const char *devhex, struct pf_response *resp)
{
	unsigned char id[16], new_pk[GS_SIGN_PKBYTES], sig[GS_SIGBYTES];
	unsigned char nkid[GS_KIDBYTES];
	char kh[2 * GS_KIDBYTES + 1], *s = NULL;
	struct pf_device dev;
	int64_t sealed = 0;
	int r, in_tx = 0;
	json_t *o;

	if (gs_hex_decode(id, 16, devhex) != GS_OK) {
		pf_http_error(resp, GS_EINVAL, "bad device id");
		return;
	}
	if ((r = parse(req, new_pk, sig, &sealed)) != GS_OK) {
		pf_http_error(resp, r, NULL);
		return;
	}
	(void)pthread_mutex_lock(&pf->lock);
	r = pf->store->ops->device_get(pf->store, id, &dev);
	if (r == GS_ENOTFOUND)
		r = GS_FAIL(GS_EUNKNOWNDEVICE, "device %s is not enrolled here",
		    devhex);
	if (r != GS_OK)
		goto out;
	if (dev.revoked) {
		r = GS_FAIL(GS_EREVOKED, "device %s is revoked", devhex);
		goto out;
	}
	/* A retry after the switch: the same answer. */
	if (gs_crypto_memcmp(dev.pk, new_pk, GS_SIGN_PKBYTES) == 0) {
		r = GS_OK;
		goto out;
	}
	if ((r = gs_rekey_verify(sig, id, new_pk, dev.pk)) != GS_OK)
		goto out;
	if ((r = pf->store->ops->begin(pf->store)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = record(pf, &dev, new_pk, sig, sealed)) != GS_OK ||
	    (r = pf->store->ops->commit(pf->store)) != GS_OK)
		goto out;
	in_tx = 0;
	r = GS_OK;
out:
	if (in_tx)
		pf->store->ops->rollback(pf->store);
	(void)pthread_mutex_unlock(&pf->lock);
	if (r != GS_OK) {
		gs_log(GS_LOG_WARNING, "rekey of device %s refused: %s",
		    devhex, gs_errmsg(r));
		pf_http_error(resp, r, NULL);
		return;
	}
	gs_crypto_key_id(nkid, new_pk, GS_SIGN_PKBYTES);
	gs_hex_encode(kh, nkid, GS_KIDBYTES);
	gs_log(GS_LOG_INFO, "device %s rekeyed: key %s (batches through seq "
	    "%lld under the old key)", devhex, kh, (long long)sealed);
	o = json_pack("{s:s}", "device_kid", kh);
	s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s == NULL || gs_buf_puts(&resp->body, s) != GS_OK) {
		pf_http_error(resp, GS_ENOMEM, NULL);
	} else {
		resp->status = 200;
		resp->content_type = "application/json";
	}
	free(s);
	json_decref(o);
}
