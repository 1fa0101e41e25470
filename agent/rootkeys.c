/*
 * rootkeys.c - the device side of the platform's key bundle (issue 6,
 * sync/keybundle.h, docs/PROTOCOL.md section 10).
 *
 * At enrollment the device pins the platform's ROOT public key (the
 * enrollment code's fingerprint names it) and takes the batch and
 * receipt keys only from a bundle that key signed.  On every sync the
 * platform's health answer carries the current bundle; a newer serial
 * replaces the pinned batch/receipt keys (new batches are sealed to the
 * new batch key; batches sealed earlier keep their kid and still open on
 * the platform, which keeps old keys), an older serial is a rollback and
 * is refused with a warning while the device keeps its keys.
 *
 * Stored in the agent's meta table: "root_pk" (hex) and "bundle_serial".
 * A device enrolled before root keys existed has no root_pk: it keeps the
 * keys it pinned and ignores bundles (it cannot verify them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "gridagent.h"
#include "keybundle.h"
#include "rootkeys.h"
#include "store.h"
#include "core/banned.h"

int
ag_rootkeys_open(const json_t *keys, const unsigned char root_pk[GS_SIGN_PKBYTES],
    const unsigned char deployment[16], uint64_t pinned_serial,
    struct gs_keybundle *b)
{
	const char *txt = json_string_value(json_object_get(keys, "bundle"));
	unsigned char raw[GS_BUNDLE_BYTES + 3];
	size_t n = 0;
	int r;

	if (txt == NULL || gs_crypto_b64_decode(raw, sizeof(raw), &n, txt,
	    strlen(txt)) != GS_OK)
		return GS_FAIL(GS_EPROTOCOL, "the platform's key bundle is "
		    "missing or not base64url");
	if ((r = gs_keybundle_open(raw, n, root_pk, b)) != GS_OK)
		return r;
	return gs_keybundle_accept(b, pinned_serial, deployment, gs_now_ms(),
	    GRIDAGENT_VERSION);
}

int
ag_rootkeys_pin(struct ag_store *st, const unsigned char root_pk[GS_SIGN_PKBYTES],
    uint64_t serial)
{
	char hex[2 * GS_SIGN_PKBYTES + 1], num[24];
	int r;

	gs_hex_encode(hex, root_pk, GS_SIGN_PKBYTES);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)serial);
	if ((r = ag_store_meta_set(st, "root_pk", hex)) != GS_OK ||
	    (r = ag_store_meta_set(st, "bundle_serial", num)) != GS_OK)
		return r;
	return GS_OK;
}

/* The pinned root key and serial: GS_OK, GS_ENOTFOUND (an older device). */
static int
pinned(struct ag_store *st, unsigned char root_pk[GS_SIGN_PKBYTES],
    uint64_t *serial)
{
	char *v = NULL;
	int r;

	if ((r = ag_store_meta_get(st, "root_pk", &v)) != GS_OK)
		return r;
	if (strlen(v) != 2 * GS_SIGN_PKBYTES ||
	    gs_hex_decode(root_pk, GS_SIGN_PKBYTES, v) != GS_OK) {
		gs_free(v);
		return GS_FAIL(GS_ECORRUPT, "the pinned root key is damaged");
	}
	gs_free(v);
	v = NULL;
	*serial = 0;
	if ((r = ag_store_meta_get(st, "bundle_serial", &v)) == GS_OK &&
	    gs_parse_u64(v, UINT64_MAX, serial) != GS_OK)
		r = GS_FAIL(GS_ECORRUPT, "the pinned bundle serial is damaged");
	else if (r == GS_ENOTFOUND)
		r = GS_OK;
	gs_free(v);
	return r;
}

/* Replaces the device row's platform keys (in the caller's transaction). */
static int
set_keys(struct gs_db *db, const struct gs_keybundle *b)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(db, "UPDATE device SET batch_pk = ?1, "
	    "batch_kid = ?2, receipt_pk = ?3 WHERE id = 1", &s)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_blob(s, 1, b->batch_pk, GS_KX_PKBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, b->batch_kid, GS_KIDBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, b->receipt_pk, GS_SIGN_PKBYTES)) !=
	    GS_OK)
		goto out;
	r = gs_stmt_step(s) == GS_DONE ? GS_OK : GS_FAIL(GS_EDB, "device keys");
out:
	gs_stmt_finalize(s);
	return r;
}

int
ag_rootkeys_refresh(struct ag_store *st, struct ag_device *dev,
    const json_t *keys)
{
	struct gs_db *db = ag_store_db(st);
	struct gs_keybundle b;
	unsigned char root[GS_SIGN_PKBYTES];
	uint64_t serial = 0;
	json_t *js;
	int r, in_tx = 0;

	if ((r = pinned(st, root, &serial)) == GS_ENOTFOUND) {
		gs_errmsg_clear();
		return GS_OK; /* enrolled before root keys: nothing to check */
	}
	if (r != GS_OK)
		return r;
	if (!json_is_object(keys))
		return GS_OK; /* an older platform: keep the pinned keys */
	/* The same serial again is the usual case: nothing to verify. */
	js = json_object_get(keys, "serial");
	if (json_is_integer(js) &&
	    (uint64_t)json_integer_value(js) == serial)
		return GS_OK;
	r = ag_rootkeys_open(keys, root, dev->deployment, serial, &b);
	if (r != GS_OK) {
		/* Refused (rolled back, forged, expired...): the device
		 * keeps sealing to the keys it has, which the platform can
		 * still open. */
		if (r == GS_EREPLAY)
			gs_log(GS_LOG_WARNING, "refusing the platform's key "
			    "bundle: it is rolled back (%s); keeping the "
			    "keys of bundle %llu", gs_errmsg(r),
			    (unsigned long long)serial);
		else
			gs_log(GS_LOG_WARNING, "refusing the platform's key "
			    "bundle: %s; keeping the keys of bundle %llu",
			    gs_errmsg(r), (unsigned long long)serial);
		return GS_OK;
	}
	if ((r = gs_db_begin(db)) != GS_OK)
		return r;
	in_tx = 1;
	if ((r = set_keys(db, &b)) != GS_OK ||
	    (r = ag_rootkeys_pin(st, root, b.serial)) != GS_OK ||
	    (r = gs_db_commit(db)) != GS_OK)
		goto out;
	in_tx = 0;
	memcpy(dev->batch_pk, b.batch_pk, GS_KX_PKBYTES);
	memcpy(dev->batch_kid, b.batch_kid, GS_KIDBYTES);
	memcpy(dev->receipt_pk, b.receipt_pk, GS_SIGN_PKBYTES);
	{
		char kh[2 * GS_KIDBYTES + 1];

		gs_hex_encode(kh, b.batch_kid, GS_KIDBYTES);
		gs_log(GS_LOG_INFO, "key bundle %llu accepted: new batches "
		    "are sealed to batch key %s",
		    (unsigned long long)b.serial, kh);
	}
	r = GS_OK;
out:
	if (in_tx)
		gs_db_rollback(db);
	return r;
}

int
ag_rootkeys_status(struct ag_store *st, json_t *into)
{
	unsigned char root[GS_SIGN_PKBYTES];
	char hex[17];
	uint64_t serial = 0;
	int r;

	/* A device enrolled before root keys existed holds no bundle. */
	if ((r = pinned(st, root, &serial)) == GS_ENOTFOUND)
		return GS_OK;
	if (r != GS_OK)
		return r;
	gs_hex_encode(hex, root, 8);
	if (json_object_set_new(into, "key_bundle", json_pack("{s:I,s:s}",
	    "serial", (json_int_t)serial, "root", hex)) != 0)
		return GS_FAIL(GS_ENOMEM, "status");
	return GS_OK;
}
