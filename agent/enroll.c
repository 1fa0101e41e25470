/*
 * enroll.c - a device's enrollment: keys made on the device, proof of the
 * one-time token without sending it, platform keys pinned against the
 * fingerprint the admin's code carries.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "attach.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "enroll.h" /* sync/enroll.h: the code and the proof */
#include "envelope.h"
#include "gridagent.h"
#include "rootkeys.h"
#include "store.h"
#include "uploader.h"
#include "core/banned.h"

/* Copies a hex string member of exactly n bytes. */
static int
hex_member(json_t *o, const char *key, unsigned char *out, size_t n)
{
	const char *s = json_string_value(json_object_get(o, key));

	if (s == NULL || strlen(s) != 2 * n ||
	    gs_hex_decode(out, n, s) != GS_OK)
		return GS_FAIL(GS_EPROTOCOL,
		    "enroll answer: \"%s\" is not "
		    "%zu hex bytes",
		    key, n);
	return GS_OK;
}

static int
text_member(json_t *o, const char *key, char *out, size_t n)
{
	json_t *v = json_object_get(o, key);

	out[0] = '\0';
	if (v == NULL || json_is_null(v))
		return GS_OK;
	if (!json_is_string(v) || json_string_length(v) >= n)
		return GS_FAIL(GS_EPROTOCOL,
		    "enroll answer: \"%s\" is not a "
		    "string of at most %zu bytes",
		    key, n - 1);
	gs_strlcpy(out, json_string_value(v), n);
	return GS_OK;
}

/* Reads and checks the 200 answer into dev. */
/* The root key pinned at enrollment and the serial of its first bundle. */
struct pin {
	unsigned char root_pk[GS_SIGN_PKBYTES];
	uint64_t serial;
	int64_t max_attachment; /* the platform's limit; 0: not announced */
};

static int
read_answer(struct pin *pin, const struct ag_http_response *resp,
    const struct gs_enroll_code *code, struct ag_device *dev)
{
	json_t *root = NULL, *lim;
	json_error_t je;
	unsigned char id[16], kid[GS_KIDBYTES];
	int r = GS_EINTERNAL;

	root = json_loadb(resp->body.data ? resp->body.data : "",
	    resp->body.len, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL || !json_is_object(root)) {
		r = GS_FAIL(GS_EPROTOCOL, "enroll answer is not a JSON object");
		goto out;
	}
	if ((r = hex_member(root, "deployment", dev->deployment, 16)) !=
		GS_OK ||
	    (r = hex_member(root, "device_id", id, 16)) != GS_OK ||
	    (r = hex_member(root, "batch_pk", dev->batch_pk, GS_KX_PKBYTES)) !=
		GS_OK ||
	    (r = hex_member(root, "batch_kid", dev->batch_kid, GS_KIDBYTES)) !=
		GS_OK ||
	    (r = hex_member(root, "receipt_pk", dev->receipt_pk,
		 GS_SIGN_PKBYTES)) != GS_OK ||
	    (r = text_member(
		 root, "worker", dev->worker, sizeof(dev->worker))) != GS_OK ||
	    (r = text_member(root, "grid", dev->grid, sizeof(dev->grid))) !=
		GS_OK)
		goto out;
	if (memcmp(id, dev->device_id, 16) != 0) {
		r = GS_FAIL(GS_EPROTOCOL, "enroll answer names another device");
		goto out;
	}
	/* The pin: the root key is trusted only because the admin's code,
	 * which came out of band, names its hash; the batch and receipt
	 * keys only because that root key signed the bundle naming them. */
	{
		json_t *keys = json_object_get(root, "keys");
		const char *rh = json_string_value(
		    json_object_get(keys, "root_pk"));
		struct gs_keybundle b;

		if (rh == NULL || strlen(rh) != 2 * GS_SIGN_PKBYTES ||
		    gs_hex_decode(pin->root_pk, GS_SIGN_PKBYTES, rh) != GS_OK) {
			r = GS_FAIL(GS_EPROTOCOL, "enroll answer: no platform "
			    "root key (a platform older than this agent?)");
			goto out;
		}
		if ((r = gs_enroll_check_fingerprint(code->fingerprint,
		    dev->deployment, pin->root_pk)) != GS_OK) {
			r = GS_FAIL(GS_EBADSIG, "the platform's root key does "
			    "not match the fingerprint in the enrollment code: "
			    "refusing to enroll (wrong or impersonated "
			    "platform)");
			goto out;
		}
		if ((r = ag_rootkeys_open(keys, pin->root_pk, dev->deployment,
		    0, &b)) != GS_OK) {
			r = GS_FAIL(r == GS_EPARSE ? GS_EBADSIG : r, "enroll "
			    "answer: the platform's key bundle is refused: %s",
			    gs_errmsg(r));
			goto out;
		}
		/* The bundle's keys, not the plain members, are pinned. */
		memcpy(dev->batch_pk, b.batch_pk, GS_KX_PKBYTES);
		memcpy(dev->batch_kid, b.batch_kid, GS_KIDBYTES);
		memcpy(dev->receipt_pk, b.receipt_pk, GS_SIGN_PKBYTES);
		pin->serial = b.serial;
	}
	gs_crypto_key_id(kid, dev->batch_pk, GS_KX_PKBYTES);
	if (memcmp(kid, dev->batch_kid, GS_KIDBYTES) != 0) {
		r = GS_FAIL(GS_EPROTOCOL, "enroll answer: batch_kid is not "
					  "the key id of batch_pk");
		goto out;
	}
	lim = json_object_get(root, "limits");
	if (json_is_object(lim)) {
		json_t *a = json_object_get(lim, "max_records");
		json_t *b = json_object_get(lim, "max_envelope");
		json_t *c = json_object_get(lim, "max_plain");

		if (json_is_integer(a) && json_integer_value(a) > 0)
			dev->max_records = json_integer_value(a);
		if (json_is_integer(b) && json_integer_value(b) > 0)
			dev->max_envelope = json_integer_value(b);
		if (json_is_integer(c) && json_integer_value(c) > 0)
			dev->max_plain = json_integer_value(c);
		/* Known from the start, so attach refuses an over-limit
		 * file before the first sync (issue 5). */
		c = json_object_get(lim, "max_attachment");
		if (json_is_integer(c) && json_integer_value(c) > 0)
			pin->max_attachment = json_integer_value(c);
	}
	r = GS_OK;
out:
	json_decref(root);
	return r;
}

/* POST /v1/enroll and read the answer into dev. */
static int
ask_platform(const char *url, const struct gs_enroll_code *code,
    struct ag_device *dev, struct pin *pin)
{
	struct ag_http *h = NULL;
	struct ag_http_response resp;
	unsigned char proof[GS_ENROLL_PROOF_BYTES], sig[GS_SIGBYTES];
	char tid[2 * GS_ENROLL_TOKEN_ID_BYTES + 1], did[33],
	    dpk[2 * GS_SIGN_PKBYTES + 1], hproof[2 * GS_ENROLL_PROOF_BYTES + 1],
	    hsig[2 * GS_SIGBYTES + 1], msg[300];
	json_t *req = NULL;
	char *body = NULL;
	int r = GS_EINTERNAL, code_err;

	ag_http_response_init(&resp);
	gs_enroll_proof(
	    proof, code->token, code->token_id, dev->device_id, dev->sign_pk);
	if ((r = gs_enroll_self_sign(
		 sig, code->token_id, dev->device_id, dev->sign_sk)) != GS_OK)
		goto out;
	gs_hex_encode(tid, code->token_id, GS_ENROLL_TOKEN_ID_BYTES);
	gs_hex_encode(did, dev->device_id, 16);
	gs_hex_encode(dpk, dev->sign_pk, GS_SIGN_PKBYTES);
	gs_hex_encode(hproof, proof, sizeof(proof));
	gs_hex_encode(hsig, sig, sizeof(sig));
	req = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "token_id", tid,
	    "device_id", did, "device_pk", dpk, "proof", hproof, "self_sig",
	    hsig, "agent_version", "gridagent 0.1");
	if (req == NULL || (body = json_dumps(req, JSON_COMPACT)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = ag_http_new(url, NULL, &h)) != GS_OK)
		goto out;
	if ((r = ag_http_request(h, "POST", "/v1/enroll", "application/json",
		 body, strlen(body), &resp)) != GS_OK)
		goto out;
	if (resp.status != 200) {
		code_err = ag_http_error_body(&resp, msg, sizeof(msg));
		if (code_err == GS_EAUTH || resp.status == 403)
			r = GS_FAIL(GS_EAUTH,
			    "the platform refused the "
			    "enrollment code: %s",
			    msg);
		else if (code_err != GS_EPROTOCOL && code_err != GS_OK)
			r = GS_FAIL(code_err, "enrollment failed: %s", msg);
		else
			r = GS_FAIL(GS_EPROTOCOL, "enrollment failed: HTTP %ld",
			    resp.status);
		goto out;
	}
	r = read_answer(pin, &resp, code, dev);
out:
	gs_crypto_memzero(proof, sizeof(proof));
	gs_crypto_memzero(hproof, sizeof(hproof));
	free(body);
	json_decref(req);
	ag_http_response_release(&resp);
	ag_http_free(h);
	return r;
}

static int
exec_with(struct gs_db *db, const char *sql, const char *value)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(db, sql, &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, value)) == GS_OK) {
		r = gs_stmt_step(s);
		r = r == GS_DONE ? GS_OK : r;
	}
	gs_stmt_finalize(s);
	return r;
}

/*
 * Saves made before the worker or grid was known (init without --worker
 * or --grid) carry an empty author or grid, and the platform quarantines
 * every record whose author is not the worker the device is enrolled for:
 * each of them stayed in quarantine, waiting for an admin.  Those not
 * sealed yet (no change of theirs has left the unsent state) are this
 * worker's, in this grid: they get the enrolled worker and grid here.  A
 * sealed envelope is never changed.
 */
static int
claim_unsent(struct gs_db *db, const char *col, const char *value)
{
	char sql[512];
	int r;

	/* col is one of two literals of this file, never input.  Only
	 * records the platform has never seen (rev 0, nothing sealed). */
	snprintf(sql, sizeof(sql), "UPDATE record SET %s = ?1 WHERE %s = '' "
	    "AND " AG_SQL_REV("record") " = 0 AND NOT EXISTS (SELECT 1 FROM "
	    "change AS c WHERE c.uuid = record.uuid AND c.state <> 0) AND "
	    "NOT EXISTS (SELECT 1 FROM sealed_creation AS s WHERE "
	    "s.uuid = record.uuid)", col, col);
	if ((r = exec_with(db, sql, value)) != GS_OK)
		return r;
	snprintf(sql, sizeof(sql), "UPDATE change SET %s = ?1 WHERE %s = '' "
	    "AND state = 0", col, col);
	return exec_with(db, sql, value);
}

/* Stores the device and its settings in ONE transaction. */
static int
store_device(struct ag_store *st, const struct ag_device *dev,
    const struct pin *pin)
{
	struct gs_db *db = ag_store_db(st);
	int in_tx = 0, r = GS_EINTERNAL;

	if ((r = gs_db_begin(db)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = ag_device_insert(db, dev)) != GS_OK ||
	    (r = ag_rootkeys_pin(st, pin->root_pk, pin->serial)) != GS_OK)
		goto out;
	/* The platform bound the code to a worker and a grid: they are
	 * this device's from now on. */
	if (dev->worker[0] != '\0' &&
	    ((r = ag_store_meta_set(st, "worker", dev->worker)) != GS_OK ||
	    (r = claim_unsent(db, "author", dev->worker)) != GS_OK))
		goto out;
	if (dev->grid[0] != '\0' &&
	    ((r = ag_store_meta_set(st, "grid", dev->grid)) != GS_OK ||
	    (r = claim_unsent(db, "grid", dev->grid)) != GS_OK))
		goto out;
	if (pin->max_attachment > 0 &&
	    (r = ag_attach_set_limit(st, pin->max_attachment)) != GS_OK)
		goto out;
	if ((r = gs_db_commit(db)) != GS_OK)
		goto out;
	in_tx = 0;
	r = GS_OK;
out:
	if (in_tx)
		gs_db_rollback(db);
	return r;
}

int
ag_enroll(const char *home, const char *text, const char *platform,
    struct ag_enroll_result *res)
{
	struct gs_enroll_code code;
	struct pin pin;
	struct ag_store *st = NULL;
	struct ag_device *dev = NULL, *old = NULL;
	const char *url;
	int r = GS_EINTERNAL;

	memset(res, 0, sizeof(*res));
	memset(&code, 0, sizeof(code));
	memset(&pin, 0, sizeof(pin));
	if ((r = gs_crypto_init()) != GS_OK)
		goto out;
	/* A bad code is caught here, before any network traffic. */
	if ((r = gs_enroll_code_decode(&code, text)) != GS_OK)
		goto out;
	url = platform != NULL ? platform : code.url;

	/* An existing store must not be enrolled yet: check before the
	 * one-time code is spent. */
	r = ag_store_open(home, &st);
	if (r == GS_OK) {
		r = ag_device_load(ag_store_db(st), &old);
		if (r == GS_OK) {
			char hex[33];

			ag_device_id_hex(old, hex);
			r = GS_FAIL(GS_EEXIST,
			    "this home is already enrolled "
			    "as device %s",
			    hex);
			goto out;
		}
		if (r != GS_ENOTENROLLED)
			goto out;
	} else if (r != GS_EPERM) {
		goto out;
	}
	gs_errmsg_clear();

	if ((r = ag_device_new(&dev)) != GS_OK)
		goto out;
	/* The identity is made here, on the device: the secret key never
	 * leaves it. */
	gs_crypto_sign_keypair(dev->sign_pk, dev->sign_sk);
	gs_random(dev->device_id, sizeof(dev->device_id));
	gs_strlcpy(dev->platform_url, url, sizeof(dev->platform_url));
	dev->max_records = GS_ENV_MAX_RECORDS;
	dev->max_envelope = GS_ENV_MAX_ENVELOPE;
	dev->max_plain = GS_ENV_MAX_PLAIN;
	dev->enrolled_at = gs_now_ms();

	if ((r = ask_platform(url, &code, dev, &pin)) != GS_OK)
		goto out;
	if (st == NULL &&
	    (r = ag_store_init(home, dev->grid[0] ? dev->grid : NULL,
		 dev->worker[0] ? dev->worker : NULL, &st)) != GS_OK)
		goto out;
	if ((r = store_device(st, dev, &pin)) != GS_OK)
		goto out;
	ag_device_id_hex(dev, res->device_id);
	gs_strlcpy(res->worker, dev->worker, sizeof(res->worker));
	gs_strlcpy(res->grid, dev->grid, sizeof(res->grid));
	gs_strlcpy(res->platform, dev->platform_url, sizeof(res->platform));
	gs_log(GS_LOG_INFO, "enrolled as device %s at %s", res->device_id, url);
	r = GS_OK;
out:
	gs_enroll_code_wipe(&code);
	ag_device_free(dev);
	ag_device_free(old);
	ag_store_close(st);
	return r;
}
