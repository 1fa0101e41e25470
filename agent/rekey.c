/*
 * rekey.c - `gridagent rekey [--platform URL]`: rotate this device's
 * Ed25519 identity key (issue 6).
 *
 * The device makes a new key pair; its CURRENT key signs the new public
 * key (sync/enroll.h, gs_rekey_sign); POST /v1/devices/{id}/rekey with
 * {"new_pk","sig","sealed_through"}; once the platform answers 200 the
 * device row takes the new key.  Batches sealed before keep their
 * signatures under the old key, and the platform verifies them with it
 * (their seq is at most sealed_through, platform/rekey.c).
 *
 * Crash safety: the new key is first stored as pending (meta
 * "rekey_pending", hex of the secret key, as protected as the device key
 * itself), so a rekey interrupted after the platform switched is finished
 * by running the command again with the same new key (the platform
 * answers a repeat with 200).  Sealing waits while the device row is
 * switched (one write transaction around the request), so nothing is
 * sealed under the old key after sealed_through by another command on this
 * home.  A `sync --watch` started before the rekey picks up the new key at
 * its next pass.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "cli.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "enroll.h"
#include "rootkeys.h"
#include "store.h"
#include "uploader.h"
#include "core/banned.h"

/* The pending new key: loaded, or made and stored (own transaction). */
static int
pending_key(struct ag_store *st, unsigned char pk[GS_SIGN_PKBYTES],
    unsigned char *sk)
{
	struct gs_db *db = ag_store_db(st);
	char *v = NULL, hex[2 * GS_SIGN_SKBYTES + 1];
	int r;

	r = ag_store_meta_get(st, "rekey_pending", &v);
	if (r == GS_OK) {
		r = strlen(v) == 2 * GS_SIGN_SKBYTES &&
		    gs_hex_decode(sk, GS_SIGN_SKBYTES, v) == GS_OK ? GS_OK :
		    GS_FAIL(GS_ECORRUPT, "the pending rekey is damaged");
		gs_crypto_memzero(v, strlen(v));
		gs_free(v);
		if (r == GS_OK)
			gs_crypto_sign_sk_to_pk(pk, sk);
		return r;
	}
	if (r != GS_ENOTFOUND)
		return r;
	gs_errmsg_clear();
	gs_crypto_sign_keypair(pk, sk);
	gs_hex_encode(hex, sk, GS_SIGN_SKBYTES);
	if ((r = gs_db_begin(db)) == GS_OK) {
		if ((r = ag_store_meta_set(st, "rekey_pending", hex)) == GS_OK)
			r = gs_db_commit(db);
		else
			gs_db_rollback(db);
	}
	gs_crypto_memzero(hex, sizeof(hex));
	return r;
}

/* POST the rekey; GS_OK on 200. */
static int
post(const char *url, const struct ag_device *dev,
    const unsigned char pk[GS_SIGN_PKBYTES], const unsigned char *sig)
{
	struct ag_http *h = NULL;
	struct ag_http_response resp;
	char did[33], pkh[2 * GS_SIGN_PKBYTES + 1], sigh[2 * GS_SIGBYTES + 1];
	char path[80], msg[300];
	json_t *req = NULL;
	char *body = NULL;
	int r, e;

	ag_http_response_init(&resp);
	ag_device_id_hex(dev, did);
	gs_hex_encode(pkh, pk, GS_SIGN_PKBYTES);
	gs_hex_encode(sigh, sig, GS_SIGBYTES);
	snprintf(path, sizeof(path), "/v1/devices/%s/rekey", did);
	req = json_pack("{s:s,s:s,s:I}", "new_pk", pkh, "sig", sigh,
	    "sealed_through", (json_int_t)dev->last_seq);
	if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = ag_http_new(url, NULL, &h)) != GS_OK ||
	    (r = ag_http_request(h, "POST", path, "application/json", body,
	    strlen(body), &resp)) != GS_OK)
		goto out;
	if (resp.status != 200) {
		e = ag_http_error_body(&resp, msg, sizeof(msg));
		r = GS_FAIL(e != GS_OK && e != GS_EPROTOCOL ? e : GS_EPROTOCOL,
		    "the platform refused the new key: %s (HTTP %ld)", msg,
		    resp.status);
		goto out;
	}
	r = GS_OK;
out:
	free(body);
	json_decref(req);
	ag_http_response_release(&resp);
	ag_http_free(h);
	return r;
}

/* The device row takes the new key; the pending key goes. */
static int
switch_key(struct ag_store *st, const unsigned char pk[GS_SIGN_PKBYTES],
    const unsigned char *sk)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(ag_store_db(st), "UPDATE device SET "
	    "sign_pk = ?1, sign_sk = ?2 WHERE id = 1", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_blob(s, 1, pk, GS_SIGN_PKBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, sk, GS_SIGN_SKBYTES)) != GS_OK ||
	    (r = gs_stmt_step(s)) != GS_DONE)
		goto out;
	gs_stmt_finalize(s);
	s = NULL;
	if ((r = gs_stmt_prepare(ag_store_db(st), "DELETE FROM meta WHERE "
	    "key = 'rekey_pending'", &s)) != GS_OK ||
	    (r = gs_stmt_step(s)) != GS_DONE)
		goto out;
	r = GS_OK;
out:
	gs_stmt_finalize(s);
	return r;
}

int
ag_cmd_rekey(struct ag_cli *cli, int argc, char **argv)
{
	const char *platform = NULL;
	int npos = 0, rc, r, in_tx = 0;
	const struct ag_opt opts[] = {
	    {"platform", &platform, NULL},
	    {NULL, NULL, NULL},
	};
	struct ag_store *st = NULL;
	struct ag_device *dev = NULL;
	unsigned char pk[GS_SIGN_PKBYTES], sig[GS_SIGBYTES], kid[GS_KIDBYTES];
	unsigned char *sk = NULL;
	char kh[2 * GS_KIDBYTES + 1];

	if ((rc = ag_cli_parse(cli, opts, argc, argv, &npos)) >= 0)
		return rc;
	if (npos != 0)
		return ag_cli_usage(cli, "rekey takes no arguments");
	if ((rc = ag_cli_open(cli, &st)) >= 0)
		return rc;
	if ((sk = gs_crypto_secure_alloc(GS_SIGN_SKBYTES)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "secure memory");
		goto out;
	}
	if ((r = gs_crypto_init()) != GS_OK ||
	    (r = pending_key(st, pk, sk)) != GS_OK)
		goto out;
	/* One write transaction from reading what was sealed to the
	 * switch: nothing is sealed under the old key meanwhile. */
	if ((r = gs_db_begin(ag_store_db(st))) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = ag_device_load(ag_store_db(st), &dev)) != GS_OK)
		goto out;
	if (dev->revoked) {
		r = GS_FAIL(GS_EREVOKED, "this device is revoked");
		goto out;
	}
	if ((r = gs_rekey_sign(sig, dev->device_id, pk, dev->sign_sk)) !=
	    GS_OK ||
	    (r = post(platform ? platform : dev->platform_url, dev, pk, sig))
	    != GS_OK ||
	    (r = switch_key(st, pk, sk)) != GS_OK ||
	    (r = gs_db_commit(ag_store_db(st))) != GS_OK)
		goto out;
	in_tx = 0;
	gs_crypto_key_id(kid, pk, GS_SIGN_PKBYTES);
	gs_hex_encode(kh, kid, GS_KIDBYTES);
	printf("%s\n", kh);
	r = GS_OK;
out:
	if (in_tx)
		gs_db_rollback(ag_store_db(st));
	gs_crypto_secure_free(sk);
	ag_device_free(dev);
	ag_store_close(st);
	if (r != GS_OK) {
		rc = ag_cli_error(r);
		return gs_error_class(r) == GS_CLASS_RETRY ? GS_EX_UNAVAILABLE
							   : rc;
	}
	return fflush(stdout) == 0 ? GS_EX_OK : GS_EX_IOERR;
}

int
ag_rekey_reload(struct gs_db *db, struct ag_device *dev)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(db, "SELECT sign_pk, sign_sk FROM device "
	    "WHERE id = 1", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_step(s)) != GS_ROW) {
		r = r == GS_DONE ? GS_FAIL(GS_ENOTENROLLED, "no device") : r;
		goto out;
	}
	r = GS_OK;
	if (gs_stmt_bytes(s, 0) != GS_SIGN_PKBYTES ||
	    gs_stmt_bytes(s, 1) != GS_SIGN_SKBYTES) {
		r = GS_FAIL(GS_ECORRUPT, "device key");
		goto out;
	}
	/* Another command rekeyed this device since the run began. */
	if (memcmp(gs_stmt_blob(s, 0), dev->sign_pk, GS_SIGN_PKBYTES) != 0) {
		memcpy(dev->sign_pk, gs_stmt_blob(s, 0), GS_SIGN_PKBYTES);
		memcpy(dev->sign_sk, gs_stmt_blob(s, 1), GS_SIGN_SKBYTES);
		gs_log(GS_LOG_INFO, "device key changed (gridagent rekey): "
		    "signing with the new key");
	}
out:
	gs_stmt_finalize(s);
	return r;
}
