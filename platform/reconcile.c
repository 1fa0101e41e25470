/*
 * reconcile.c - `gridplatform reconcile`: did everything each worker
 * collected arrive, and what needs an admin?
 *
 * Per device the platform's ledger (seqs held and missing, forks, the hash
 * chain, last contact, records by type, open quarantine and conflicts) is
 * set beside what the device itself last said in its signed heartbeat
 * (sealed seqs, unsent changes, outbox, chain head), and every disagreement
 * is spelled out as an issue ("device says 152 batches sealed, platform
 * holds 151: seq 97 missing").  Devices roll up into workers and grids.
 *
 * Cost: one pass per question over indexes and the per-device tallies kept
 * at ingest (recon_sql.c), never a scan of the records, so a deployment of
 * a thousand devices and a million records answers in well under a second
 * (bench/reconcile.sh).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "batch.h"
#include "db.h"
#include "recon.h"
#include "attachments.h"
#include "core/banned.h"

int
pf_recon_fail(int r)
{
	fprintf(stderr, "gridplatform: %s\n", gs_errmsg(r));
	return gs_error_exit(r);
}

int
pf_recon_print_json(json_t *o)
{
	if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0)
		return GS_FAIL(GS_EIO, "cannot write the output");
	return GS_OK;
}

const char *
pf_recon_admin(const char *by)
{
	const char *u;

	if (by != NULL && *by != '\0')
		return by;
	u = getenv("USER");
	return u != NULL && *u != '\0' ? u : "admin";
}

/* The device object of a hex id, or NULL when filtered out. */
static json_t *
dev_of(json_t *byid, struct gs_stmt *s, int col)
{
	char hex[33];

	if (gs_stmt_bytes(s, col) != 16)
		return NULL;
	gs_hex_encode(hex, gs_stmt_blob(s, col), 16);
	return json_object_get(byid, hex);
}

static int
add_int(json_t *o, const char *k, json_int_t d)
{
	json_t *v = json_object_get(o, k);

	return json_object_set_new(o, k, json_integer(json_integer_value(v) +
	    d)) == 0 ? GS_OK : GS_FAIL(GS_ENOMEM, "reconcile");
}

static int
issue(json_t *dev, const char *fmt, ...) __attribute__((format(printf, 2,
    3)));

/* Adds one human-readable issue to a device (needs an admin). */
static int
issue(json_t *dev, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return json_array_append_new(json_object_get(dev, "issues"),
	    json_string(msg)) == 0 ? GS_OK : GS_FAIL(GS_ENOMEM, "reconcile");
}

/* "97, 120-130" from [[97,97],[120,130]] (at most a few ranges). */
static void
ranges_text(const json_t *ranges, char *out, size_t outlen)
{
	size_t i, len = 0;
	json_t *rg;

	out[0] = '\0';
	json_array_foreach(ranges, i, rg) {
		long long a = json_integer_value(json_array_get(rg, 0));
		long long b = json_integer_value(json_array_get(rg, 1));
		int n;

		if (i == 5) {
			snprintf(out + len, outlen - len, ", ... (%zu ranges)",
			    json_array_size(ranges));
			return;
		}
		n = a == b ? snprintf(out + len, outlen - len, "%s%lld",
		    i ? ", " : "", a) : snprintf(out + len, outlen - len,
		    "%s%lld-%lld", i ? ", " : "", a, b);
		if (n < 0 || (size_t)n >= outlen - len)
			return;
		len += (size_t)n;
	}
}

/* Reads the devices (with their last heartbeat) into arr and byid. */
static int
load_devices(struct pf_store *st, const char *grid, const char *worker,
    json_t *arr, json_t *byid)
{
	struct gs_stmt *s;
	char id[33], head[65], hbhead[65];
	json_t *d, *hb;
	int r;

	if ((r = pf_recon_stmt(st, PQ_DEVICES, &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_text(s, 1, grid)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 2, worker)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		gs_hex_encode(id, gs_stmt_blob(s, 0), 16);
		head[0] = hbhead[0] = '\0';
		if (gs_stmt_bytes(s, 9) == 32)
			gs_hex_encode(head, gs_stmt_blob(s, 9), 32);
		hb = json_null();
		if (!gs_stmt_is_null(s, 10)) {
			if (gs_stmt_bytes(s, 17) == 32)
				gs_hex_encode(hbhead, gs_stmt_blob(s, 17), 32);
			hb = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s,s:s,"
			    "s:I}",
			    "received_at", (json_int_t)gs_stmt_int64(s, 10),
			    "unsent", (json_int_t)gs_stmt_int64(s, 11),
			    "outbox", (json_int_t)gs_stmt_int64(s, 12),
			    "last_seq", (json_int_t)gs_stmt_int64(s, 13),
			    "acked_seq", (json_int_t)gs_stmt_int64(s, 14),
			    "rejected", (json_int_t)gs_stmt_int64(s, 15),
			    "quarantined", (json_int_t)gs_stmt_int64(s, 16),
			    "chain_head", hbhead,
			    "version", gs_stmt_text(s, 18) ?
			    gs_stmt_text(s, 18) : "",
			    "free_bytes", (json_int_t)gs_stmt_int64(s, 19));
		}
		d = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:[],"
		    "s:[],s:[],s:s,s:s,s:I,s:{},s:I,s:I,s:I,s:o,s:[]}",
		    "device_id", id,
		    "worker", gs_stmt_text(s, 1),
		    "name", gs_stmt_text(s, 2),
		    "grid", gs_stmt_text(s, 3),
		    "status", gs_stmt_text(s, 4),
		    "batches", (json_int_t)gs_stmt_int64(s, 7),
		    "last_seq", (json_int_t)gs_stmt_int64(s, 5),
		    "held_seqs", (json_int_t)gs_stmt_int64(s, 5),
		    "missing", (json_int_t)0,
		    "missing_ranges", "forks", "broken_seqs",
		    "chain", gs_stmt_int64(s, 6) ? "ok" : "broken",
		    "chain_head", head,
		    "last_contact", (json_int_t)gs_stmt_int64(s, 8),
		    "records",
		    "revisions", (json_int_t)0,
		    "quarantined", (json_int_t)0,
		    "conflicts", (json_int_t)0,
		    "device_report", hb != NULL ? hb : json_null(),
		    "issues");
		if (d != NULL && json_object_set_new(d, "clock_suspect",
		    json_integer(0)) != 0) {
			json_decref(d);
			d = NULL;
		}
		if (d == NULL || json_array_append(arr, d) != 0 ||
		    json_object_set_new(byid, id, d) != 0) {
			gs_stmt_reset(s);
			return GS_FAIL(GS_ENOMEM, "reconcile");
		}
	}
	return r == GS_DONE ? GS_OK : r;
}

/* Missing ranges, forks, tallies, open quarantine and conflicts. */
static int
load_ledgers(struct pf_store *st, json_t *byid)
{
	struct gs_stmt *s;
	json_t *d;
	int r;
	const char *k;

	if ((r = pf_recon_stmt(st, PQ_MISSING, &s)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		int64_t a = gs_stmt_int64(s, 1), b = gs_stmt_int64(s, 2);

		if ((d = dev_of(byid, s, 0)) == NULL)
			continue;
		if (json_array_append_new(json_object_get(d,
		    "missing_ranges"), json_pack("[I,I]", (json_int_t)a,
		    (json_int_t)b)) != 0 || add_int(d, "missing", b - a + 1)
		    != GS_OK || add_int(d, "held_seqs", -(b - a + 1)) != GS_OK) {
			gs_stmt_reset(s);
			return GS_FAIL(GS_ENOMEM, "reconcile");
		}
	}
	if (r != GS_DONE)
		return r;
	if ((r = pf_recon_stmt(st, PQ_FORKS, &s)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if ((d = dev_of(byid, s, 0)) == NULL)
			continue;
		if (json_array_append_new(json_object_get(d, "forks"),
		    json_integer(gs_stmt_int64(s, 1))) != 0) {
			gs_stmt_reset(s);
			return GS_FAIL(GS_ENOMEM, "reconcile");
		}
	}
	if (r != GS_DONE)
		return r;
	if ((r = pf_recon_stmt(st, PQ_TALLY, &s)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if ((d = dev_of(byid, s, 0)) == NULL ||
		    (k = gs_stmt_text(s, 1)) == NULL)
			continue;
		if (strcmp(k, "rev") == 0)
			r = add_int(d, "revisions", gs_stmt_int64(s, 2));
		else if (strncmp(k, "rec:", 4) == 0)
			r = json_object_set_new(json_object_get(d, "records"),
			    k + 4, json_integer(gs_stmt_int64(s, 2))) == 0 ?
			    GS_OK : GS_FAIL(GS_ENOMEM, "reconcile");
		if (r != GS_OK) {
			gs_stmt_reset(s);
			return r;
		}
	}
	if (r != GS_DONE)
		return r;
	if ((r = pf_recon_stmt(st, PQ_CLOCK, &s)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if ((d = dev_of(byid, s, 0)) == NULL)
			continue;
		if ((r = add_int(d, "clock_suspect", gs_stmt_int64(s, 1)))
		    != GS_OK) {
			gs_stmt_reset(s);
			return r;
		}
	}
	if (r != GS_DONE)
		return r;
	for (int pass = 0; pass < 2; pass++) {
		if ((r = pf_recon_stmt(st, pass ? PQ_COPEN : PQ_QOPEN, &s))
		    != GS_OK)
			return r;
		while ((r = gs_stmt_step(s)) == GS_ROW) {
			if ((d = dev_of(byid, s, 0)) == NULL)
				continue;
			if ((r = add_int(d, pass ? "conflicts" : "quarantined",
			    gs_stmt_int64(s, 1))) != GS_OK) {
				gs_stmt_reset(s);
				return r;
			}
		}
		if (r != GS_DONE)
			return r;
	}
	return GS_OK;
}

#define JI(o, k) ((long long)json_integer_value(json_object_get((o), (k))))

/* The verdict on one device: its issues, in an admin's words. */
static int
judge(struct pf_store *st, json_t *d)
{
	json_t *hb = json_object_get(d, "device_report");
	json_t *miss = json_object_get(d, "missing_ranges");
	json_t *forks = json_object_get(d, "forks");
	long long last = JI(d, "last_seq"), held = JI(d, "held_seqs");
	char txt[256], id[33];
	unsigned char raw[16];
	struct gs_stmt *s;
	int r;

	ranges_text(miss, txt, sizeof(txt));
	if (json_array_size(miss) > 0) {
		if (json_is_object(hb) && JI(hb, "last_seq") >= last)
			r = issue(d, "device says %lld batches sealed, "
			    "platform holds %lld: seq %s missing",
			    JI(hb, "last_seq"), held, txt);
		else
			r = issue(d, "platform holds %lld of seqs 1-%lld: "
			    "seq %s missing", held, last, txt);
		if (r != GS_OK)
			return r;
	}
	if (json_is_object(hb)) {
		long long hs = JI(hb, "last_seq");
		const char *hh = json_string_value(json_object_get(hb,
		    "chain_head"));
		const char *ph = json_string_value(json_object_get(d,
		    "chain_head"));

		if (hs > last && (r = issue(d, "device says %lld batches "
		    "sealed, platform holds %lld: seq %lld-%lld not arrived "
		    "(%lld in the device's outbox)", hs, held, last + 1, hs,
		    JI(hb, "outbox"))) != GS_OK)
			return r;
		if (hs < last && (r = issue(d, "device says its last seq is "
		    "%lld, platform holds up to %lld: the device's store "
		    "went back (restored from an old backup?)", hs, last))
		    != GS_OK)
			return r;
		if (hs == last && hs > 0 && hh != NULL && ph != NULL &&
		    strcmp(hh, ph) != 0 && (r = issue(d, "device's chain head "
		    "%.16s differs from the platform's %.16s at seq %lld",
		    hh, ph, hs)) != GS_OK)
			return r;
		if (JI(hb, "rejected") > 0 && (r = issue(d, "device holds %lld "
		    "changes the platform rejected", JI(hb, "rejected")))
		    != GS_OK)
			return r;
	}
	if (json_array_size(forks) > 0) {
		json_t *x;
		size_t i, len = 0;

		txt[0] = '\0';
		json_array_foreach(forks, i, x) {
			int n = snprintf(txt + len, sizeof(txt) - len, "%s%lld",
			    i ? ", " : "", (long long)json_integer_value(x));

			if (n < 0 || (size_t)n >= sizeof(txt) - len)
				break;
			len += (size_t)n;
		}
		if ((r = issue(d, "FORK: seq %s held twice with different "
		    "envelopes (both kept; the device's store was restored "
		    "from an old copy?)", txt)) != GS_OK)
			return r;
	}
	if (strcmp(json_string_value(json_object_get(d, "chain")), "ok")
	    != 0) {
		gs_strlcpy(id, json_string_value(json_object_get(d,
		    "device_id")), sizeof(id));
		if (gs_hex_decode(raw, sizeof(raw), id) == GS_OK &&
		    pf_recon_stmt(st, PQ_BROKEN, &s) == GS_OK &&
		    gs_stmt_bind_blob(s, 1, raw, 16) == GS_OK)
			while ((r = gs_stmt_step(s)) == GS_ROW)
				(void)json_array_append_new(json_object_get(d,
				    "broken_seqs"), json_integer(
				    gs_stmt_int64(s, 0)));
		if (json_array_size(forks) == 0 && (r = issue(d, "hash chain "
		    "broken: a batch's prev hash does not match the kept "
		    "envelope before it")) != GS_OK)
			return r;
	}
	if (JI(d, "quarantined") > 0 && (r = issue(d, "%lld quarantined "
	    "change(s) wait for a decision%s", JI(d, "quarantined"),
	    strcmp(json_string_value(json_object_get(d, "status")),
	    "revoked") == 0 ? " (revoked device, drained)" : "")) != GS_OK)
		return r;
	if (JI(d, "conflicts") > 0 && (r = issue(d, "%lld conflict(s) to "
	    "resolve", JI(d, "conflicts"))) != GS_OK)
		return r;
	return GS_OK;
}

/* Adds device d into the roll-up object of its worker or grid. */
static int
roll_up(json_t *map, const char *key, const char *keyname, json_t *d)
{
	json_t *g = json_object_get(map, key), *recs, *v;
	const char *k;
	int r;

	if (g == NULL) {
		g = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:{},s:I}",
		    keyname, key, "devices", (json_int_t)0,
		    "batches", (json_int_t)0, "missing", (json_int_t)0,
		    "quarantined", (json_int_t)0, "conflicts", (json_int_t)0,
		    "last_contact", (json_int_t)0, "records", "issues",
		    (json_int_t)0);
		if (g == NULL || json_object_set_new(map, key, g) != 0)
			return GS_FAIL(GS_ENOMEM, "reconcile");
	}
	if ((r = add_int(g, "devices", 1)) != GS_OK ||
	    (r = add_int(g, "batches", JI(d, "batches"))) != GS_OK ||
	    (r = add_int(g, "missing", JI(d, "missing"))) != GS_OK ||
	    (r = add_int(g, "quarantined", JI(d, "quarantined"))) != GS_OK ||
	    (r = add_int(g, "conflicts", JI(d, "conflicts"))) != GS_OK ||
	    (r = add_int(g, "issues", (json_int_t)json_array_size(
	    json_object_get(d, "issues")))) != GS_OK)
		return r;
	if (JI(d, "last_contact") > JI(g, "last_contact") &&
	    json_object_set(g, "last_contact", json_object_get(d,
	    "last_contact")) != 0)
		return GS_FAIL(GS_ENOMEM, "reconcile");
	recs = json_object_get(g, "records");
	json_object_foreach(json_object_get(d, "records"), k, v)
		if ((r = add_int(recs, k, json_integer_value(v))) != GS_OK)
			return r;
	return GS_OK;
}

static void
print_device(const json_t *d)
{
	char when[32], recs[256];
	const json_t *hb = json_object_get(d, "device_report"), *v, *x;
	const char *k;
	size_t len = 0, i;

	if (JI(d, "last_contact") > 0)
		gs_time_format(when, sizeof(when), JI(d, "last_contact"));
	else
		gs_strlcpy(when, "never", sizeof(when));
	recs[0] = '\0';
	json_object_foreach((json_t *)json_object_get(d, "records"), k, v) {
		int n = snprintf(recs + len, sizeof(recs) - len, " %s %lld", k,
		    (long long)json_integer_value(v));

		if (n < 0 || (size_t)n >= sizeof(recs) - len)
			break;
		len += (size_t)n;
	}
	printf("%s device %s  worker %s  grid %s  %s\n",
	    json_array_size(json_object_get(d, "issues")) ? "!!" : "ok",
	    json_string_value(json_object_get(d, "device_id")),
	    json_string_value(json_object_get(d, "worker")),
	    json_string_value(json_object_get(d, "grid")),
	    json_string_value(json_object_get(d, "status")));
	printf("   platform: batches %lld, last seq %lld, missing %lld, chain "
	    "%s, last contact %s\n", JI(d, "batches"), JI(d, "last_seq"),
	    JI(d, "missing"), json_string_value(json_object_get(d, "chain")),
	    when);
	printf("   records:%s  (revisions %lld), quarantined %lld, conflicts "
	    "%lld\n", len ? recs : " none", JI(d, "revisions"),
	    JI(d, "quarantined"), JI(d, "conflicts"));
	if (JI(d, "clock_suspect") > 0) {
		gs_time_format(when, sizeof(when), GS_TIME_FLOOR_MS);
		printf("   clock suspect: %lld revision(s) with device times "
		    "before %.10s or over a day after arrival (accepted; "
		    "seq gives the order, the times are the device's)\n",
		    JI(d, "clock_suspect"), when);
	}
	if (json_is_object(hb)) {
		gs_time_format(when, sizeof(when), JI(hb, "received_at"));
		printf("   device says: last seq %lld, acked %lld, unsent %lld, "
		    "outbox %lld, rejected %lld, quarantined %lld, version %s "
		    "(%s)\n", JI(hb, "last_seq"), JI(hb, "acked_seq"),
		    JI(hb, "unsent"), JI(hb, "outbox"), JI(hb, "rejected"),
		    JI(hb, "quarantined"), json_string_value(json_object_get(
		    hb, "version")), when);
	} else {
		printf("   device says: no heartbeat yet\n");
	}
	json_array_foreach(json_object_get(d, "issues"), i, x)
		printf("   !! %s\n", json_string_value(x));
}

static void
print_rollup(const char *title, const char *keyname, json_t *arr)
{
	size_t i;
	json_t *g;

	printf("\n%-14s %7s %8s %7s %11s %9s %6s\n", title, "devices",
	    "batches", "missing", "quarantined", "conflicts", "issues");
	json_array_foreach(arr, i, g)
		printf("%-14s %7lld %8lld %7lld %11lld %9lld %6lld\n",
		    json_string_value(json_object_get(g, keyname)),
		    JI(g, "devices"), JI(g, "batches"), JI(g, "missing"),
		    JI(g, "quarantined"), JI(g, "conflicts"), JI(g, "issues"));
}

/* An object's values as an array (keys are already in each value). */
static json_t *
values(json_t *map)
{
	json_t *arr = json_array(), *v;
	const char *k;

	json_object_foreach(map, k, v)
		if (arr != NULL && json_array_append(arr, v) != 0) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

int
pf_cmd_reconcile(struct pf_platform *pf, int argc, char **argv)
{
	int r = GS_EINTERNAL, json = 0, check = 0, i;
	const char *grid = NULL, *worker = NULL;
	json_t *devs = NULL, *byid = NULL, *workers = NULL, *grids = NULL;
	json_t *doc = NULL, *d, *att = NULL;
	size_t k, issues = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else if (strcmp(argv[i], "--grid") == 0 && i + 1 < argc)
			grid = argv[++i];
		else if (strcmp(argv[i], "--worker") == 0 && i + 1 < argc)
			worker = argv[++i];
		else {
			fprintf(stderr, "gridplatform: reconcile: unknown or "
			    "incomplete option %s (see gridplatform reconcile "
			    "--help)\n", argv[i]);
			return GS_EX_USAGE;
		}
	}
	/* As for export: a filter no device can match is a mistake. */
	if ((grid != NULL && (r = gs_batch_check_label("--grid", grid,
	    GS_CHANGE_GRID_MAX)) != GS_OK) || (worker != NULL &&
	    (r = gs_batch_check_label("--worker", worker,
	    GS_CHANGE_AUTHOR_MAX)) != GS_OK))
		return pf_recon_fail(r);
	if ((devs = json_array()) == NULL || (byid = json_object()) == NULL ||
	    (workers = json_object()) == NULL ||
	    (grids = json_object()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "reconcile");
		goto out;
	}
	if ((r = load_devices(pf->store, grid, worker, devs, byid)) != GS_OK ||
	    (r = load_ledgers(pf->store, byid)) != GS_OK)
		goto out;
	json_array_foreach(devs, k, d) {
		if ((r = judge(pf->store, d)) != GS_OK ||
		    (r = roll_up(workers, json_string_value(json_object_get(d,
		    "worker")), "worker", d)) != GS_OK ||
		    (r = roll_up(grids, json_string_value(json_object_get(d,
		    "grid")), "grid", d)) != GS_OK)
			goto out;
		issues += json_array_size(json_object_get(d, "issues"));
	}
	/* Records whose attachments never arrived (attachments.c). */
	if ((att = pf_att_summary(pf)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "reconcile: attachments");
		goto out;
	}
	issues += json_array_size(json_object_get(att, "missing"));
	doc = json_pack("{s:I,s:O,s:o,s:o,s:I,s:b,s:O}", "generated_at",
	    (json_int_t)gs_now_ms(), "devices", devs, "workers",
	    values(workers), "grids", values(grids), "issues",
	    (json_int_t)issues, "needs_admin", issues > 0, "attachments",
	    att);
	if (doc == NULL) {
		r = GS_FAIL(GS_ENOMEM, "reconcile");
		goto out;
	}
	if (json) {
		r = pf_recon_print_json(doc);
	} else {
		json_array_foreach(devs, k, d)
			print_device(d);
		print_rollup("worker", "worker", json_object_get(doc,
		    "workers"));
		print_rollup("grid", "grid", json_object_get(doc, "grids"));
		pf_att_print_summary(att);
		printf("\n%zu device(s), %zu issue(s)%s\n",
		    json_array_size(devs), issues, issues ? ": an admin is "
		    "needed" : ": nothing missing, nothing waiting");
		r = fflush(stdout) == 0 ? GS_OK : GS_FAIL(GS_EIO,
		    "cannot write the output");
	}
out:
	json_decref(devs);
	json_decref(byid);
	json_decref(workers);
	json_decref(grids);
	json_decref(doc);
	json_decref(att);
	if (r != GS_OK)
		return pf_recon_fail(r);
	return check && issues > 0 ? GS_EX_CHECK : 0;
}
