/*
 * device.c - load and store the device identity row (table device).
 *
 * These run a handful of times per command, so their statements are
 * prepared per call and finalized before returning; the hot paths (the
 * outbox) keep theirs prepared.
 */
#include <string.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "core/banned.h"

int
ag_device_new(struct ag_device **out)
{
	struct ag_device *d;

	if ((d = gs_calloc(1, sizeof(*d))) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	if ((d->sign_sk = gs_crypto_secure_alloc(GS_SIGN_SKBYTES)) == NULL) {
		gs_free(d);
		return GS_FAIL(GS_ENOMEM, "out of secure memory");
	}
	memset(d->sign_sk, 0, GS_SIGN_SKBYTES);
	*out = d;
	return GS_OK;
}

void
ag_device_free(struct ag_device *d)
{
	if (d == NULL)
		return;
	gs_crypto_secure_free(d->sign_sk);
	gs_crypto_memzero(d, sizeof(*d));
	gs_free(d);
}

void
ag_device_id_hex(const struct ag_device *d, char out[33])
{
	gs_hex_encode(out, d->device_id, sizeof(d->device_id));
}

/* Copies a blob column that must have exactly n bytes. */
static int
blob_exact(struct gs_stmt *st, int col, void *out, size_t n, const char *what)
{
	if (gs_stmt_bytes(st, col) != n || gs_stmt_blob(st, col) == NULL)
		return GS_FAIL(GS_ECORRUPT,
		    "device row: %s is %zu bytes, "
		    "not %zu",
		    what, gs_stmt_bytes(st, col), n);
	memcpy(out, gs_stmt_blob(st, col), n);
	return GS_OK;
}

static void
text_col(struct gs_stmt *st, int col, char *out, size_t n)
{
	const char *s = gs_stmt_text(st, col);

	gs_strlcpy(out, s != NULL ? s : "", n);
}

int
ag_device_load(struct gs_db *db, struct ag_device **out)
{
	static const char sql[] =
	    "SELECT device_id, deployment, platform_url, sign_pk, sign_sk, "
	    "sk_wrap, batch_pk, batch_kid, receipt_pk, worker, grid, "
	    "max_records, max_envelope, max_plain, enrolled_at, revoked, "
	    "last_seq, chain_head FROM device WHERE id = 1";
	struct gs_stmt *st = NULL;
	struct ag_device *d = NULL;
	unsigned char pk[GS_SIGN_PKBYTES];
	const char *wrap;
	int r = GS_EINTERNAL;

	if ((r = ag_device_new(&d)) != GS_OK)
		goto out;
	if ((r = gs_stmt_prepare(db, sql, &st)) != GS_OK)
		goto out;
	r = gs_stmt_step(st);
	if (r == GS_DONE) {
		r = GS_FAIL(GS_ENOTENROLLED,
		    "this device is not enrolled: "
		    "run 'gridagent enroll CODE' first");
		goto out;
	}
	if (r != GS_ROW)
		goto out;
	wrap = gs_stmt_text(st, 5);
	if (wrap == NULL || strcmp(wrap, "none") != 0) {
		/* A later program wrapped the key (issue 6); never guess. */
		r = GS_FAIL(GS_EUNSUPPORTED,
		    "device key is stored as '%s', "
		    "which this program cannot read",
		    wrap ? wrap : "?");
		goto out;
	}
	if ((r = blob_exact(st, 0, d->device_id, 16, "device_id")) != GS_OK ||
	    (r = blob_exact(st, 1, d->deployment, 16, "deployment")) != GS_OK ||
	    (r = blob_exact(st, 3, d->sign_pk, GS_SIGN_PKBYTES, "sign_pk")) !=
		GS_OK ||
	    (r = blob_exact(st, 4, d->sign_sk, GS_SIGN_SKBYTES, "sign_sk")) !=
		GS_OK ||
	    (r = blob_exact(st, 6, d->batch_pk, GS_KX_PKBYTES, "batch_pk")) !=
		GS_OK ||
	    (r = blob_exact(st, 7, d->batch_kid, GS_KIDBYTES, "batch_kid")) !=
		GS_OK ||
	    (r = blob_exact(st, 8, d->receipt_pk, GS_SIGN_PKBYTES,
		 "receipt_pk")) != GS_OK ||
	    (r = blob_exact(
		 st, 17, d->chain_head, GS_HASHBYTES, "chain_head")) != GS_OK)
		goto out;
	text_col(st, 2, d->platform_url, sizeof(d->platform_url));
	text_col(st, 9, d->worker, sizeof(d->worker));
	text_col(st, 10, d->grid, sizeof(d->grid));
	d->max_records = gs_stmt_int64(st, 11);
	d->max_envelope = gs_stmt_int64(st, 12);
	d->max_plain = gs_stmt_int64(st, 13);
	d->enrolled_at = gs_stmt_int64(st, 14);
	d->revoked = gs_stmt_int64(st, 15) != 0;
	d->last_seq = gs_stmt_int64(st, 16);
	gs_stmt_reset(st);
	/* The secret key must belong to the public key we enrolled with;
	 * a mismatch would make every batch fail its signature check. */
	gs_crypto_sign_sk_to_pk(pk, d->sign_sk);
	if (gs_crypto_memcmp(pk, d->sign_pk, sizeof(pk)) != 0) {
		r = GS_FAIL(GS_ECORRUPT, "device row: secret key does not "
					 "match the enrolled public key");
		goto out;
	}
	*out = d;
	d = NULL;
	r = GS_OK;
out:
	gs_stmt_finalize(st);
	ag_device_free(d);
	return r;
}

int
ag_device_insert(struct gs_db *db, const struct ag_device *d)
{
	static const char sql[] =
	    "INSERT INTO device (id, device_id, deployment, platform_url, "
	    "sign_pk, sign_sk, sk_wrap, batch_pk, batch_kid, receipt_pk, "
	    "worker, grid, max_records, max_envelope, max_plain, enrolled_at) "
	    "VALUES (1, ?1, ?2, ?3, ?4, ?5, 'none', ?6, ?7, ?8, ?9, ?10, ?11, "
	    "?12, ?13, ?14)";
	struct gs_stmt *st = NULL;
	int r = GS_EINTERNAL;

	if ((r = gs_stmt_prepare(db, sql, &st)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_blob(st, 1, d->device_id, 16)) != GS_OK ||
	    (r = gs_stmt_bind_blob(st, 2, d->deployment, 16)) != GS_OK ||
	    (r = gs_stmt_bind_text(st, 3, d->platform_url)) != GS_OK ||
	    (r = gs_stmt_bind_blob(st, 4, d->sign_pk, GS_SIGN_PKBYTES)) !=
		GS_OK ||
	    (r = gs_stmt_bind_blob(st, 5, d->sign_sk, GS_SIGN_SKBYTES)) !=
		GS_OK ||
	    (r = gs_stmt_bind_blob(st, 6, d->batch_pk, GS_KX_PKBYTES)) !=
		GS_OK ||
	    (r = gs_stmt_bind_blob(st, 7, d->batch_kid, GS_KIDBYTES)) !=
		GS_OK ||
	    (r = gs_stmt_bind_blob(st, 8, d->receipt_pk, GS_SIGN_PKBYTES)) !=
		GS_OK ||
	    (r = gs_stmt_bind_text(st, 9, d->worker[0] ? d->worker : NULL)) !=
		GS_OK ||
	    (r = gs_stmt_bind_text(st, 10, d->grid[0] ? d->grid : NULL)) !=
		GS_OK ||
	    (r = gs_stmt_bind_int64(st, 11, d->max_records)) != GS_OK ||
	    (r = gs_stmt_bind_int64(st, 12, d->max_envelope)) != GS_OK ||
	    (r = gs_stmt_bind_int64(st, 13, d->max_plain)) != GS_OK ||
	    (r = gs_stmt_bind_int64(st, 14, d->enrolled_at)) != GS_OK)
		goto out;
	r = gs_stmt_step(st);
	if (r == GS_EEXIST) {
		r = GS_FAIL(GS_EEXIST, "this home is already enrolled");
		goto out;
	}
	if (r != GS_DONE)
		goto out;
	r = GS_OK;
out:
	gs_stmt_finalize(st);
	return r;
}

/* Runs one UPDATE binding n integer parameters. */
static int
update_ints(struct gs_db *db, const char *sql, int n, const int64_t *v)
{
	struct gs_stmt *st = NULL;
	int i, r = GS_EINTERNAL;

	if ((r = gs_stmt_prepare(db, sql, &st)) != GS_OK)
		goto out;
	for (i = 0; i < n; i++)
		if ((r = gs_stmt_bind_int64(st, i + 1, v[i])) != GS_OK)
			goto out;
	if ((r = gs_stmt_step(st)) != GS_DONE)
		goto out;
	r = GS_OK;
out:
	gs_stmt_finalize(st);
	return r;
}

int
ag_device_set_revoked(struct gs_db *db, int64_t at)
{
	return update_ints(db,
	    "UPDATE device SET revoked = 1, "
	    "revoked_at = coalesce(revoked_at, ?1) WHERE id = 1",
	    1, &at);
}

int
ag_device_set_limits(struct gs_db *db, int64_t max_records,
    int64_t max_envelope, int64_t max_plain)
{
	int64_t v[3] = {max_records, max_envelope, max_plain};

	if (max_records <= 0 || max_envelope <= 0 || max_plain <= 0)
		return GS_FAIL(GS_EPROTOCOL, "platform advertised a "
					     "non-positive limit");
	return update_ints(db,
	    "UPDATE device SET max_records = ?1, "
	    "max_envelope = ?2, max_plain = ?3 WHERE id = 1",
	    3, v);
}

int
ag_device_note_sync(struct gs_db *db, int64_t at, const char *result)
{
	struct gs_stmt *st = NULL;
	int r = GS_EINTERNAL;

	if ((r = gs_stmt_prepare(db,
		 "UPDATE device SET last_sync_at = ?1, "
		 "last_sync_result = ?2 WHERE id = 1",
		 &st)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_int64(st, 1, at)) != GS_OK ||
	    (r = gs_stmt_bind_text(st, 2, result)) != GS_OK)
		goto out;
	if ((r = gs_stmt_step(st)) != GS_DONE)
		goto out;
	r = GS_OK;
out:
	gs_stmt_finalize(st);
	return r;
}
