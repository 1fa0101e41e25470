/*
 * reference.c - reference data an admin publishes: form versions and code
 * tables, beside the ones built into the programs (issue 4 item 6).
 *
 *	gridplatform reference [--json]              what is published
 *	gridplatform reference add FILE [--by NAME]  publish one document
 *	GET /v1/devices/{id}/reference/{digest}      a device fetches one
 *
 * A document is checked strictly before it is kept: the parser of the
 * embedded schema (sync/schema.c) loads the whole schema with it laid over
 * what is held, so an unknown key, a form naming a missing code table or
 * a text field without a length cap fails here and changes nothing.  On
 * top of that, a form's version must be above every version of its type
 * held (a form is never replaced: records keep the version they were
 * collected with, and ingest validates each with its own), and a code
 * table must keep every code of the table it replaces (a record collected
 * with a retired code would stop validating).
 *
 * The platform's schema is that overlay: loaded at open, and reloaded by a
 * running server when the publication serial moves (pf_reference_refresh,
 * before each pull).  The pull feed lists every document's digest; the
 * feed is signed by the receipt key, so a device that checks the digest of
 * what it fetched needs no other signature on the document itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "embedded.h"
#include "feed.h"
#include "http.h"
#include "recon.h"
#include "reference.h"
#include "schema.h"
#include "core/banned.h"

/* The published documents as a table for gs_schema_load_extra. */
struct refset {
	struct gs_schema_docs files; /* the documents, for the loader */
	json_t *docs;              /* the feed's listing */
	int64_t serial;            /* the last publication's id */
};

static void
refset_release(struct refset *rs)
{
	gs_schema_docs_release(&rs->files);
	json_decref(rs->docs);
	memset(rs, 0, sizeof(*rs));
}

/* Reads every publication, in order, on st (the caller holds its lock). */
static int
refset_read(struct pf_store *st, struct refset *rs)
{
	struct gs_stmt *s;
	char hex[2 * GS_HASHBYTES + 1];
	int r;

	memset(rs, 0, sizeof(*rs));
	if ((rs->docs = json_array()) == NULL)
		return GS_FAIL(GS_ENOMEM, "reference");
	if ((r = pf_recon_stmt(st, PQ_REF_LIST, &s)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		int is_form = strcmp(gs_stmt_text(s, 2), "form") == 0;
		const char *name = gs_stmt_text(s, 3);
		int version = (int)gs_stmt_int64(s, 4);

		if (gs_stmt_bytes(s, 1) != GS_HASHBYTES) {
			long long id = (long long)gs_stmt_int64(s, 0);

			gs_stmt_reset(s);
			return GS_FAIL(GS_ECORRUPT, "reference %lld: digest",
			    id);
		}
		gs_hex_encode(hex, gs_stmt_blob(s, 1), GS_HASHBYTES);
		if ((r = gs_schema_docs_add(&rs->files, is_form, name, version,
		    gs_stmt_blob(s, 5), gs_stmt_bytes(s, 5))) != GS_OK ||
		    json_array_append_new(rs->docs, json_pack("{s:s,s:s,s:s,"
		    "s:i,s:I}", "digest", hex, "kind", is_form ? "form" :
		    "codes", "name", name, "version", version, "size",
		    (json_int_t)gs_stmt_bytes(s, 5))) != 0) {
			gs_stmt_reset(s);
			return r != GS_OK ? r : GS_FAIL(GS_ENOMEM, "reference");
		}
		rs->serial = gs_stmt_int64(s, 0);
	}
	return r == GS_DONE ? GS_OK : r;
}

int
pf_reference_schema(struct pf_store *st, struct gs_schema **schema,
    json_t **docs, int64_t *serial)
{
	struct refset rs;
	int r;

	*schema = NULL;
	if ((r = refset_read(st, &rs)) == GS_OK) {
		*docs = json_incref(rs.docs);
		*serial = rs.serial;
		r = gs_schema_load_extra(rs.files.v, schema);
		/* Published documents that no longer load (a new build whose
		 * built-in forms now clash with them): the platform must
		 * still open so an admin can see and fix it, so it runs on
		 * the built-in schema, saying so on every start. */
		if (r == GS_ECORRUPT) {
			gs_log(GS_LOG_ERROR, "published reference data does not "
			    "load with this build (%s): using the built-in "
			    "forms and code tables only", gs_errmsg(r));
			r = gs_schema_load(schema);
		}
		if (r != GS_OK) {
			json_decref(*docs);
			*docs = NULL;
		}
	}
	refset_release(&rs);
	return r;
}

int
pf_reference_refresh(struct pf_platform *pf)
{
	struct gs_schema *next = NULL, **retired;
	json_t *docs = NULL;
	struct gs_stmt *s;
	int64_t serial = 0;
	int r;

	(void)pthread_mutex_lock(&pf->ref_lock);
	(void)pthread_mutex_lock(&pf->read_lock);
	if ((r = pf_recon_stmt(pf->reader, PQ_REF_SERIAL, &s)) == GS_OK &&
	    (r = gs_stmt_one_int64(s, 0, &serial)) == GS_OK &&
	    serial != pf->ref_serial)
		r = pf_reference_schema(pf->reader, &next, &docs, &serial);
	(void)pthread_mutex_unlock(&pf->read_lock);
	if (r != GS_OK || next == NULL)
		goto out;
	/*
	 * Other threads (ingest) may be validating with the schema being
	 * replaced, without a lock: it is kept until the platform closes
	 * (one per publication, a handful in a process's life), and the
	 * new pointer is published with a release store so a thread that
	 * sees it sees it whole.
	 */
	if ((retired = gs_realloc(pf->ref_retired, (pf->nref_retired + 1) *
	    sizeof(*retired))) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "reference");
		goto out;
	}
	pf->ref_retired = retired;
	pf->ref_retired[pf->nref_retired++] = pf->schema;
	__atomic_store_n(&pf->schema, next, __ATOMIC_RELEASE);
	next = NULL;
	json_decref(pf->ref_docs);
	pf->ref_docs = docs;
	docs = NULL;
	pf->ref_serial = serial;
	gs_log(GS_LOG_INFO, "reference data reloaded (publication %lld)",
	    (long long)serial);
out:
	(void)pthread_mutex_unlock(&pf->ref_lock);
	gs_schema_free(next);
	json_decref(docs);
	return r;
}

json_t *
pf_reference_docs(struct pf_platform *pf)
{
	json_t *d;

	(void)pthread_mutex_lock(&pf->ref_lock);
	d = pf->ref_docs != NULL ? json_incref(pf->ref_docs) : json_array();
	(void)pthread_mutex_unlock(&pf->ref_lock);
	return d;
}

void
pf_reference_free(struct pf_platform *pf)
{
	size_t i;

	for (i = 0; i < pf->nref_retired; i++)
		gs_schema_free(pf->ref_retired[i]);
	gs_free(pf->ref_retired);
	pf->ref_retired = NULL;
	pf->nref_retired = 0;
	json_decref(pf->ref_docs);
	pf->ref_docs = NULL;
}

/* ------------------------------------------------------------- the CLI */

/* The whole file, at most GS_REFERENCE_MAX bytes. */
static int
read_doc(const char *path, struct gs_buf *b)
{
	FILE *f = fopen(path, "rb");
	char chunk[8192];
	size_t n;
	int r = GS_OK;

	if (f == NULL)
		return GS_FAIL(errno == ENOENT ? GS_ENOTFOUND : GS_EIO,
		    "%s: %s", path, strerror(errno));
	while (r == GS_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (gs_buf_append(b, chunk, n) != GS_OK)
			r = GS_FAIL(GS_ETOOBIG, "%s: a reference document is "
			    "at most %u bytes", path, GS_REFERENCE_MAX);
	if (r == GS_OK && ferror(f))
		r = GS_FAIL(GS_EIO, "%s: read error", path);
	fclose(f);
	return r;
}

/*
 * The rules beyond the parser's, against what is held now (cur) and, for
 * a code table, the schema with the document laid over it (next).
 */
static int
successor_ok(const struct gs_schema *cur, const struct gs_schema *next,
    int is_form, const char *name, int version)
{
	const struct gs_form *f;
	size_t i, n;

	if (is_form) {
		f = gs_schema_form(cur, name);
		if (f != NULL && version <= gs_form_version(f))
			return GS_FAIL(GS_EVALIDATION, "form %s: version %d is "
			    "not above version %d held (a form is never "
			    "replaced: publish version %d)", name, version,
			    gs_form_version(f), gs_form_version(f) + 1);
		return GS_OK;
	}
	n = gs_schema_ncodes(cur, name);
	for (i = 0; i < n; i++) {
		const char *code = gs_schema_code_at(cur, name, i);

		if (gs_schema_code_label(next, name, code) == NULL)
			return GS_FAIL(GS_EVALIDATION, "code table %s: code "
			    "\"%s\" is missing (codes are never retired: "
			    "records carry them)", name, code);
	}
	return GS_OK;
}

static int
reference_add(struct pf_platform *pf, const char *path, const char *by)
{
	struct gs_buf b;
	struct refset rs;
	struct gs_schema *next = NULL;
	struct gs_stmt *s;
	unsigned char digest[GS_HASHBYTES];
	char name[GS_SCHEMA_NAME_MAX], hex[2 * GS_HASHBYTES + 1], why[512];
	int r = GS_EINTERNAL, is_form = 0, version = 0;

	memset(&rs, 0, sizeof(rs));
	gs_buf_init(&b, GS_REFERENCE_MAX);
	if ((r = read_doc(path, &b)) != GS_OK)
		goto out;
	if ((r = gs_schema_doc_info(b.data, b.len, &is_form, name, &version))
	    != GS_OK) {
		gs_strlcpy(why, gs_errmsg(r), sizeof(why));
		r = GS_FAIL(GS_EVALIDATION, "%s: %s", path, why);
		goto out;
	}
	gs_crypto_hash(digest, sizeof(digest), b.data, b.len, NULL, 0);
	gs_hex_encode(hex, digest, sizeof(digest));
	/* One transaction: the check sees exactly what the insert joins. */
	if ((r = pf->store->ops->begin(pf->store)) != GS_OK)
		goto out;
	if ((r = pf_recon_stmt(pf->store, PQ_REF_GET, &s)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 1, digest, sizeof(digest))) != GS_OK)
		goto rollback;
	if ((r = gs_stmt_step(s)) == GS_ROW) {
		gs_stmt_reset(s);
		r = GS_FAIL(GS_EEXIST, "%s is already published (%.16s)", path,
		    hex);
		goto rollback;
	}
	if (r != GS_DONE)
		goto rollback;
	/* A form's version first: "version 1 twice" from the loader would
	 * not say what to do. */
	if (is_form && (r = successor_ok(pf->schema, NULL, 1, name,
	    version)) != GS_OK)
		goto rollback;
	if ((r = refset_read(pf->store, &rs)) != GS_OK ||
	    (r = gs_schema_docs_add(&rs.files, is_form, name, version,
	    b.data, b.len)) != GS_OK)
		goto rollback;
	if ((r = gs_schema_load_extra(rs.files.v, &next)) != GS_OK) {
		gs_strlcpy(why, gs_errmsg(r), sizeof(why));
		r = GS_FAIL(r == GS_ENOMEM ? r : GS_EVALIDATION, "%s", why);
		goto rollback;
	}
	if (!is_form && (r = successor_ok(pf->schema, next, 0, name, 0)) !=
	    GS_OK)
		goto rollback;
	if ((r = pf_recon_stmt(pf->store, PQ_REF_ADD, &s)) != GS_OK)
		goto rollback;
	if ((r = gs_stmt_bind_blob(s, 1, digest, sizeof(digest))) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, is_form ? "form" : "codes")) !=
	    GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, name)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, version)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 5, b.data, b.len)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, gs_now_ms())) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 7, pf_recon_admin(by))) != GS_OK) {
		gs_stmt_reset(s);
		goto rollback;
	}
	if ((r = gs_stmt_step(s)) != GS_DONE)
		goto rollback;
	if ((r = pf->store->ops->commit(pf->store)) != GS_OK)
		goto out;
	if (is_form)
		printf("published form %s version %d (%.16s)\n", name, version,
		    hex);
	else
		printf("published code table %s, %zu codes (%.16s)\n", name,
		    gs_schema_ncodes(next, name), hex);
	r = GS_OK;
	goto out;
rollback:
	pf->store->ops->rollback(pf->store);
out:
	gs_schema_free(next);
	refset_release(&rs);
	gs_buf_release(&b);
	return r;
}

static int
reference_list(struct pf_platform *pf, int json)
{
	struct gs_stmt *s;
	json_t *arr = NULL;
	char hex[2 * GS_HASHBYTES + 1];
	size_t rows = 0;
	int r;

	if ((arr = json_array()) == NULL)
		return GS_FAIL(GS_ENOMEM, "reference");
	if ((r = pf_recon_stmt(pf->store, PQ_REF_LIST, &s)) != GS_OK)
		goto out;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		const char *kind = gs_stmt_text(s, 2);

		rows++;
		gs_hex_encode(hex, gs_stmt_blob(s, 1), GS_HASHBYTES);
		if (json)
			(void)json_array_append_new(arr, json_pack("{s:I,s:s,"
			    "s:s,s:s,s:I,s:I,s:I,s:s}", "id",
			    (json_int_t)gs_stmt_int64(s, 0), "digest", hex,
			    "kind", kind, "name", gs_stmt_text(s, 3),
			    "version", (json_int_t)gs_stmt_int64(s, 4), "size",
			    (json_int_t)gs_stmt_bytes(s, 5), "published_at",
			    (json_int_t)gs_stmt_int64(s, 6), "published_by",
			    gs_stmt_text(s, 7)));
		else if (strcmp(kind, "form") == 0)
			printf("%-4lld form   %-16s v%-4lld %.16s  by %s\n",
			    (long long)gs_stmt_int64(s, 0), gs_stmt_text(s, 3),
			    (long long)gs_stmt_int64(s, 4), hex,
			    gs_stmt_text(s, 7));
		else
			printf("%-4lld codes  %-16s       %.16s  by %s\n",
			    (long long)gs_stmt_int64(s, 0), gs_stmt_text(s, 3),
			    hex, gs_stmt_text(s, 7));
	}
	if (r != GS_DONE)
		goto out;
	r = GS_OK;
	if (json) {
		json_t *o = json_pack("{s:O,s:o}", "published", arr,
		    "held", gs_feed_reference(pf->schema));

		r = o != NULL ? pf_recon_print_json(o) :
		    GS_FAIL(GS_ENOMEM, "reference");
		json_decref(o);
	} else if (rows == 0) {
		/* Nothing printed yet in the table form: say so. */
		printf("no reference data published (the built-in forms and "
		    "code tables apply)\n");
	}
out:
	json_decref(arr);
	return r;
}

int
pf_cmd_reference(struct pf_platform *pf, int argc, char **argv)
{
	const char *by = NULL, *file = NULL;
	int i, json = 0, add = argc >= 2 && strcmp(argv[1], "add") == 0, r;

	for (i = add ? 2 : 1; i < argc; i++) {
		if (!add && strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (add && strcmp(argv[i], "--by") == 0 && i + 1 < argc)
			by = argv[++i];
		else if (add && file == NULL && argv[i][0] != '-')
			file = argv[i];
		else {
			fprintf(stderr, "gridplatform: reference: unknown or "
			    "incomplete argument %s\n", argv[i]);
			return GS_EX_USAGE;
		}
	}
	if (add && file == NULL) {
		fprintf(stderr, "gridplatform: reference add needs a FILE (a "
		    "form or a code table, as in schema/)\n");
		return GS_EX_USAGE;
	}
	/* A FILE that is not there is 66, as for gridagent collect --json. */
	if (add && access(file, F_OK) != 0 && errno == ENOENT) {
		fprintf(stderr, "gridplatform: %s: %s\n", file,
		    strerror(errno));
		return GS_EX_NOINPUT;
	}
	r = add ? reference_add(pf, file, by) : reference_list(pf, json);
	return r == GS_OK ? 0 : pf_recon_fail(r);
}

/* ------------------------------------------------------------- the API */

int
pf_reference_match(const char *path, char dev[33], char digest[65])
{
	static const char p2[] = "/reference/";
	char id[33];
	const char *rest = pf_path_device(path, id);

	if (rest == NULL || strncmp(rest, p2, sizeof(p2) - 1) != 0 ||
	    strlen(rest + sizeof(p2) - 1) != 2 * GS_HASHBYTES ||
	    strchr(rest + sizeof(p2) - 1, '/') != NULL)
		return 0;
	memcpy(dev, id, sizeof(id));
	memcpy(digest, rest + sizeof(p2) - 1, 2 * GS_HASHBYTES + 1);
	return 1;
}

void
pf_api_reference(struct pf_platform *pf, const struct pf_request *req,
    const char *dev, const unsigned char digest[32],
    struct pf_response *resp)
{
	struct pf_device d;
	struct gs_stmt *s;
	int r;

	/* The device's signed request, as for a pull (since = 0). */
	if ((r = pf_recon_authenticate(pf, req, dev, &d)) != GS_OK)
		goto out;
	if (d.revoked) {
		r = GS_FAIL(GS_EREVOKED, "device has been revoked");
		goto out;
	}
	(void)pthread_mutex_lock(&pf->read_lock);
	if ((r = pf_recon_stmt(pf->reader, PQ_REF_GET, &s)) == GS_OK &&
	    (r = gs_stmt_bind_blob(s, 1, digest, GS_HASHBYTES)) == GS_OK) {
		if ((r = gs_stmt_step(s)) == GS_ROW) {
			r = gs_buf_append(&resp->body, gs_stmt_blob(s, 0),
			    gs_stmt_bytes(s, 0));
			gs_stmt_reset(s);
		} else if (r == GS_DONE) {
			r = GS_FAIL(GS_ENOTFOUND, "no reference document with "
			    "that digest");
		}
	}
	(void)pthread_mutex_unlock(&pf->read_lock);
	if (r != GS_OK)
		goto out;
	resp->status = 200;
	resp->content_type = "application/json";
out:
	if (r != GS_OK) {
		gs_log(GS_LOG_INFO, "reference fetch of device %s refused: "
		    "%s: %s", dev, gs_error_code(r), gs_errmsg(r));
		gs_buf_reset(&resp->body);
		pf_http_error(resp, r, NULL);
	}
}
