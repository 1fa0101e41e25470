/*
 * reference.c - reference data on the device: form versions and code
 * tables the platform published (platform/reference.c), kept in
 * reference_doc (schema/agent/0007-reference.sql) and laid over the ones
 * built into the program (gs_schema_load_extra).  New collections are
 * validated with the newest version of each form held and the newest code
 * tables; a record keeps the form version it was collected with.
 *
 * Trust: the pull feed, signed by the platform's receipt key and sealed to
 * this device, lists each document's BLAKE2b-256 digest.  A document is
 * fetched by that digest and kept only when its bytes hash to it, it is
 * the form or table the listing named, and the whole schema loads with it
 * (the same strict parser as the built-in files).  Anything else changes
 * nothing and is reported.
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
#include "embedded.h"
#include "feed.h"
#include "reference.h"
#include "schema.h"
#include "store.h"
#include "core/banned.h"

/* Every kept document, in the order the platform published them. */
static int
docs_read(struct gs_db *db, struct gs_schema_docs *d)
{
	struct gs_stmt *s = NULL;
	int r;

	memset(d, 0, sizeof(*d));
	if ((r = gs_stmt_prepare(db, "SELECT kind, name, version, doc FROM "
	    "reference_doc ORDER BY id", &s)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW)
		if ((r = gs_schema_docs_add(d,
		    strcmp(gs_stmt_text(s, 0), "form") == 0,
		    gs_stmt_text(s, 1), (int)gs_stmt_int64(s, 2),
		    gs_stmt_blob(s, 3), gs_stmt_bytes(s, 3))) != GS_OK)
			break;
	gs_stmt_finalize(s);
	return r == GS_DONE ? GS_OK : r;
}

int
ag_reference_load(struct gs_db *db, struct gs_schema **out)
{
	struct gs_schema_docs d;
	int r;

	*out = NULL;
	if ((r = docs_read(db, &d)) != GS_OK) {
		gs_schema_docs_release(&d);
		return r;
	}
	r = d.n > 0 ? gs_schema_load_extra(d.v, out) : gs_schema_load(out);
	gs_schema_docs_release(&d);
	if (r == GS_ECORRUPT) {
		gs_log(GS_LOG_WARNING, "reference data kept here does not load "
		    "(%s): using the built-in forms", gs_errmsg(r));
		r = gs_schema_load(out);
	}
	return r;
}

int
ag_reference_have(struct ag_store *st, const unsigned char digest[32],
    int *have)
{
	struct gs_stmt *s = NULL;
	int64_t n = 0;
	int r;

	*have = 0;
	if ((r = gs_stmt_prepare(ag_store_db(st), "SELECT count(*) FROM "
	    "reference_doc WHERE digest = ?1", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_blob(s, 1, digest, 32)) == GS_OK)
		r = gs_stmt_one_int64(s, 0, &n);
	gs_stmt_finalize(s);
	*have = n > 0;
	return r;
}

int
ag_reference_accept(struct ag_store *st, const unsigned char digest[32],
    const char *kind, const char *name, int version, const void *doc,
    size_t len)
{
	unsigned char h[GS_HASHBYTES];
	char hex[17], dname[GS_SCHEMA_NAME_MAX], why[512];
	struct gs_schema *next = NULL;
	struct gs_stmt *s = NULL;
	struct gs_schema_docs d;
	int r = GS_EINTERNAL, is_form = 0, dversion = 0;

	memset(&d, 0, sizeof(d));
	gs_hex_encode(hex, digest, 8);
	if (len > GS_REFERENCE_MAX)
		return GS_FAIL(GS_ETOOBIG, "reference document %s: %zu bytes, "
		    "over the cap of %u", hex, len, GS_REFERENCE_MAX);
	/* The signed feed vouches for the digest, the digest for the
	 * bytes: nothing else about the document is believed before. */
	gs_crypto_hash(h, sizeof(h), doc, len, NULL, 0);
	if (gs_crypto_memcmp(h, digest, sizeof(h)) != 0)
		return GS_FAIL(GS_EBADSIG, "reference document %s: its bytes "
		    "do not hash to the digest the platform's signed feed "
		    "lists (changed on the way or on the platform)", hex);
	if ((r = gs_schema_doc_info(doc, len, &is_form, dname, &dversion)) !=
	    GS_OK) {
		gs_strlcpy(why, gs_errmsg(r), sizeof(why));
		return GS_FAIL(GS_ECORRUPT, "reference document %s: %s", hex,
		    why);
	}
	if (kind == NULL || name == NULL || strcmp(kind, is_form ? "form" :
	    "codes") != 0 || strcmp(name, dname) != 0 ||
	    (is_form && version != dversion))
		return GS_FAIL(GS_EPROTOCOL, "reference document %s is not the "
		    "%s %s the feed lists", hex, kind ? kind : "?",
		    name ? name : "?");
	if ((r = gs_db_begin(ag_store_db(st))) != GS_OK)
		return r;
	if ((r = docs_read(ag_store_db(st), &d)) != GS_OK ||
	    (r = gs_schema_docs_add(&d, is_form, dname, dversion, doc,
	    len)) != GS_OK)
		goto rollback;
	if ((r = gs_schema_load_extra(d.v, &next)) != GS_OK) {
		if (r != GS_ENOMEM) {
			gs_strlcpy(why, gs_errmsg(r), sizeof(why));
			r = GS_FAIL(GS_ECORRUPT, "reference document %s does "
			    "not load: %s", hex, why);
		}
		goto rollback;
	}
	if ((r = gs_stmt_prepare(ag_store_db(st), "INSERT INTO reference_doc "
	    "(digest, kind, name, version, doc, received_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &s)) != GS_OK)
		goto rollback;
	if ((r = gs_stmt_bind_blob(s, 1, digest, 32)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, is_form ? "form" : "codes")) !=
	    GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, dname)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, is_form ? dversion : 0)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 5, doc, len)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, gs_now_ms())) != GS_OK ||
	    (r = gs_stmt_step(s)) != GS_DONE) {
		if (r == GS_DONE)
			r = GS_EINTERNAL;
		goto rollback;
	}
	gs_stmt_finalize(s);
	s = NULL;
	if ((r = ag_store_audit(st, "reference", NULL, is_form ? dname :
	    NULL, hex)) != GS_OK)
		goto rollback;
	if ((r = gs_db_commit(ag_store_db(st))) != GS_OK)
		goto out;
	ag_store_set_schema(st, next);
	next = NULL;
	if (is_form)
		gs_log(GS_LOG_INFO, "form %s version %d received", dname,
		    dversion);
	else
		gs_log(GS_LOG_INFO, "code table %s received", dname);
	r = GS_OK;
	goto out;
rollback:
	gs_stmt_finalize(s);
	gs_db_rollback(ag_store_db(st));
out:
	gs_schema_free(next);
	gs_schema_docs_release(&d);
	return r;
}

int
ag_reference_status(struct ag_store *st, json_t *into)
{
	const struct gs_schema *sc = ag_store_schema(st);
	json_t *forms = json_object(), *o;
	struct gs_stmt *s = NULL;
	int64_t n = 0;
	size_t i;
	int r;

	if (forms == NULL)
		return GS_FAIL(GS_ENOMEM, "status");
	for (i = 0; i < gs_schema_nforms(sc); i++) {
		const struct gs_form *f = gs_schema_form_at(sc, i);

		(void)json_object_set_new(forms, gs_form_type(f),
		    json_integer(gs_form_version(f)));
	}
	if ((r = gs_stmt_prepare(ag_store_db(st), "SELECT count(*) FROM "
	    "reference_doc", &s)) == GS_OK)
		r = gs_stmt_one_int64(s, 0, &n);
	gs_stmt_finalize(s);
	if (r != GS_OK) {
		json_decref(forms);
		return r;
	}
	if ((o = json_pack("{s:o,s:I}", "forms", forms, "fetched",
	    (json_int_t)n)) == NULL ||
	    json_object_set_new(into, "reference", o) != 0)
		return GS_FAIL(GS_ENOMEM, "status");
	return GS_OK;
}
