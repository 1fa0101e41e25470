/*
 * main.c - the gridplatform command line (DESIGN.md section 7).
 *
 *	gridplatform [--home DIR] COMMAND [ARGS]
 *
 * Every error is one stderr line starting with "gridplatform: " and the
 * exit code comes from the error table (sysexits).  Read commands take
 * --json.  The program is thin: the work is in libgridplatform.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "api.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "enroll.h"
#include "enrollment.h"
#include "export.h"
#include "http.h"
#include "platform.h"
#include "store.h"
#include "attachments.h"
#include "core/banned.h"

static const char usage_text[] =
    "usage: gridplatform [--home DIR] COMMAND [ARGS]\n"
    "\n"
    "commands:\n"
    "  init [--public-url URL]          create a deployment (ids, keys, store)\n"
    "  serve [--listen HOST:PORT]       run the HTTP API (default "
    PF_DEFAULT_LISTEN ")\n"
    "  enroll --worker ID --name NAME --grid CODE [--ttl SECONDS]\n"
    "                                   print a one-time enrollment code\n"
    "  devices [--json]                 list enrolled devices and ledgers\n"
    "  revoke DEVICE_ID                 revoke a device (its batches are\n"
    "                                   still received, into quarantine)\n"
    "  export [--type T] [--grid G] [--format ndjson|csv]\n"
    "                                   print records\n"
    "  quarantine [--json]              list quarantined changes\n"
    "  conflicts [--json]               list changes kept as conflicts\n"
    "  reconcile [--json]               per device: seqs held and missing,\n"
    "                                   chain, records, quarantine, conflicts\n"
    "  attachment get HASH --out FILE | list [--json] [--missing] | limit [N]\n"
    "                                   open (audited) or list stored photos\n"
    "\n"
    "options: --home DIR (else $GRIDPLATFORM_HOME, else ~/.gridplatform),\n"
    "         --help, --version\n";

static const char *const cmd_help[][2] = {
	{ "init", "usage: gridplatform init [--public-url URL]\n"
	    "Creates the deployment in the home directory: a deployment id, "
	    "the batch\nkey (X25519) and the receipt key (Ed25519), and the "
	    "store.  The public URL\n(default " PF_DEFAULT_URL ") goes into "
	    "enrollment codes.  Refuses to\noverwrite an existing "
	    "deployment.\n" },
	{ "serve", "usage: gridplatform serve [--listen HOST:PORT]\n"
	    "Serves the API.  The first line printed is \"listening on URL\" "
	    "with the\nport actually bound (port 0 picks one).  SIGTERM or "
	    "SIGINT stop it.\n" },
	{ "enroll", "usage: gridplatform enroll --worker ID --name NAME "
	    "--grid CODE [--ttl SECONDS]\nPrints a one-time enrollment code "
	    "for the worker's device, valid for --ttl\nseconds (default "
	    "86400).\n" },
	{ "devices", "usage: gridplatform devices [--json]\n"
	    "Lists enrolled devices with their worker, grid, status and "
	    "ledger.\n" },
	{ "revoke", "usage: gridplatform revoke DEVICE_ID\n"
	    "Revokes a device.  Its batches are still verified and kept, "
	    "but in\nquarantine, and answered 403 device_revoked with a "
	    "receipt.\n" },
	{ "export", "usage: gridplatform export [--type TYPE] [--grid CODE] "
	    "[--format ndjson|csv]\nPrints records: NDJSON (default), or CSV "
	    "in UTF-8 with a BOM for Excel.\n" },
	{ "quarantine", "usage: gridplatform quarantine [--json]\n"
	    "Lists changes kept in quarantine and why.\n" },
	{ "reconcile", "usage: gridplatform reconcile [--json]\n"
	    "Per device: batches received, the last seq, the seq ranges that "
	    "never\narrived, the hash chain verdict, last contact, current "
	    "records by type,\nquarantined changes and conflicts.\n" },
	{ "conflicts", "usage: gridplatform conflicts [--json]\n"
	    "Lists changes kept beside their record because another device "
	    "changed it\nsince the change's base revision: both values.\n" },
};

static int
fail(int r)
{
	fprintf(stderr, "gridplatform: %s\n", gs_errmsg(r));
	return gs_error_exit(r);
}

static int
usage_error(const char *fmt, const char *arg)
{
	fputs("gridplatform: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see gridplatform --help)\n", stderr);
	return GS_EX_USAGE;
}

/* --help for a command: prints and returns 1. */
static int
want_help(const char *cmd, int argc, char **argv)
{
	int i;
	size_t k;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "-h") != 0)
			continue;
		for (k = 0; k < sizeof(cmd_help) / sizeof(cmd_help[0]); k++)
			if (strcmp(cmd_help[k][0], cmd) == 0) {
				fputs(cmd_help[k][1], stdout);
				return 1;
			}
	}
	return 0;
}

/* Takes the value of option opt at argv[*i]; NULL when missing. */
static const char *
opt_value(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		return NULL;
	return argv[++*i];
}

static int
open_platform(const char *home, struct pf_platform **pf)
{
	int r = pf_platform_open(home, pf);

	return r == GS_OK ? GS_OK : fail(r);
}

static int
cmd_init(const char *home, int argc, char **argv)
{
	const char *url = NULL;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--public-url") == 0) {
			if ((url = opt_value(argc, argv, &i)) == NULL)
				return usage_error("%s needs a value",
				    argv[i]);
		} else {
			return usage_error("init: unexpected argument %s",
			    argv[i]);
		}
	}
	if ((r = pf_init_home(home, url)) != GS_OK)
		return fail(r);
	printf("initialized deployment in %s\n", home);
	return 0;
}

static int
cmd_serve(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	struct pf_http *srv = NULL;
	struct pf_http_config c;
	struct pf_http_handler h;
	char host[64];
	unsigned port;
	sigset_t set;
	int i, r, sig = 0;

	pf_http_config_init(&c);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0) {
			if ((c.listen = opt_value(argc, argv, &i)) == NULL)
				return usage_error("%s needs HOST:PORT",
				    argv[i]);
		} else {
			return usage_error("serve: unexpected argument %s",
			    argv[i]);
		}
	}
	if (pf_http_parse_listen(c.listen, host, sizeof(host), &port) != GS_OK)
		return fail(GS_EINVAL);
	/* A server's log is its audit trail: accepted batches and
	 * enrollments too, unless $GRIDSYNC_LOG says otherwise. */
	if (getenv("GRIDSYNC_LOG") == NULL)
		gs_log_set_level(GS_LOG_INFO);
	if ((r = open_platform(home, &pf)) != 0)
		return r;
	/* Block the stop signals before any thread starts, so that every
	 * thread inherits the mask and only sigwait below receives them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	(void)pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	pf_api_handler(pf, &h);
	if ((r = pf_http_start(&c, &h, &srv, &port)) != GS_OK) {
		r = fail(r);
		goto out;
	}
	if (c.listen[0] == '[')
		printf("listening on http://[%s]:%u\n", host, port);
	else
		printf("listening on http://%s:%u\n", host, port);
	fflush(stdout);
	gs_log(GS_LOG_INFO, "serving deployment %s", home);
	while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
		; /* nothing to reload yet */
	gs_log(GS_LOG_INFO, "stopping on signal %d", sig);
	pf_http_stop(srv);
	r = 0;
out:
	pf_platform_free(pf);
	return r;
}

static int
cmd_enroll(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	const char *worker = NULL, *name = NULL, *grid = NULL, *ttls = NULL;
	int64_t ttl = PF_ENROLL_TTL_DEFAULT;
	struct gs_buf code;
	int i, r;

	for (i = 1; i < argc; i++) {
		const char **slot = NULL;

		if (strcmp(argv[i], "--worker") == 0)
			slot = &worker;
		else if (strcmp(argv[i], "--name") == 0)
			slot = &name;
		else if (strcmp(argv[i], "--grid") == 0)
			slot = &grid;
		else if (strcmp(argv[i], "--ttl") == 0)
			slot = &ttls;
		else
			return usage_error("enroll: unexpected argument %s",
			    argv[i]);
		if ((*slot = opt_value(argc, argv, &i)) == NULL)
			return usage_error("%s needs a value", argv[i]);
	}
	if (worker == NULL || name == NULL || grid == NULL)
		return usage_error("%s", "enroll needs --worker, --name and "
		    "--grid");
	if (ttls != NULL && gs_parse_i64(ttls, 1, PF_ENROLL_TTL_MAX, &ttl)
	    != GS_OK)
		return usage_error("--ttl %s: expected 1 to 604800 seconds",
		    ttls);
	if ((r = open_platform(home, &pf)) != 0)
		return r;
	gs_buf_init(&code, 4096);
	r = pf_enroll_create(pf, worker, name, grid, ttl, &code);
	if (r == GS_OK) {
		printf("%s\n", code.data);
		fflush(stdout);
	} else {
		r = fail(r);
	}
	gs_buf_release(&code);
	pf_platform_free(pf);
	return r;
}

static int
print_device(void *arg, const struct pf_device *d)
{
	json_t *arr = arg, *o;
	char id[33], head[65], when[32];

	gs_hex_encode(id, d->id, sizeof(d->id));
	gs_hex_encode(head, d->chain_head, sizeof(d->chain_head));
	if (arr != NULL) {
		o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,"
		    "s:s?,s:b}",
		    "device_id", id, "worker", d->worker, "name", d->name,
		    "grid", d->grid, "status", d->revoked ? "revoked" :
		    "active", "agent_version", d->agent_version,
		    "enrolled_at", (json_int_t)d->enrolled_at,
		    "last_contact", (json_int_t)d->last_contact,
		    "batches", (json_int_t)d->batches,
		    "last_seq", (json_int_t)d->last_seq,
		    "missing", (json_int_t)d->missing,
		    "chain_head", d->has_head ? head : NULL,
		    "chain_ok", d->chain_ok);
		if (o == NULL || json_array_append_new(arr, o) != 0)
			return GS_FAIL(GS_ENOMEM, "device list");
		return GS_OK;
	}
	if (d->last_contact)
		gs_time_format(when, sizeof(when), d->last_contact);
	else
		gs_strlcpy(when, "never", sizeof(when));
	printf("%s  %-8s %-12s %-12s seq %llu  missing %lld  chain %s  "
	    "last contact %s  %s\n", id, d->revoked ? "revoked" : "active",
	    d->worker, d->grid, (unsigned long long)d->last_seq,
	    (long long)d->missing, d->chain_ok ? "ok" : "BROKEN", when,
	    d->name);
	return GS_OK;
}

/* Reads a command with only an optional --json flag. */
static int
json_flag(int argc, char **argv, int *json)
{
	int i;

	*json = 0;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			*json = 1;
		else
			return usage_error("unexpected argument %s", argv[i]);
	}
	return 0;
}

static int
print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s == NULL)
		return GS_FAIL(GS_ENOMEM, "output");
	printf("%s\n", s);
	free(s);
	return GS_OK;
}

static int
cmd_devices(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	json_t *arr = NULL;
	int json, r;

	if ((r = json_flag(argc, argv, &json)) != 0)
		return r;
	if ((r = open_platform(home, &pf)) != 0)
		return r;
	if (json && (arr = json_array()) == NULL) {
		r = fail(GS_FAIL(GS_ENOMEM, "device list"));
		goto out;
	}
	r = pf->store->ops->device_each(pf->store, print_device, arr);
	if (r == GS_OK && arr != NULL)
		r = print_json(arr);
	r = r == GS_OK ? 0 : fail(r);
out:
	json_decref(arr);
	pf_platform_free(pf);
	return r;
}

static int
cmd_revoke(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	unsigned char id[16];
	int r;

	if (argc != 2)
		return usage_error("%s", "revoke needs one DEVICE_ID");
	if (strlen(argv[1]) != 32 || gs_hex_decode(id, sizeof(id), argv[1])
	    != GS_OK)
		return fail(GS_FAIL(GS_EINVAL, "device id %s: expected 32 hex "
		    "digits", argv[1]));
	if ((r = open_platform(home, &pf)) != 0)
		return r;
	r = pf->store->ops->device_revoke(pf->store, id, gs_now_ms());
	if (r == GS_ENOTFOUND)
		r = GS_FAIL(GS_ENOTFOUND, "no device %s", argv[1]);
	if (r == GS_OK)
		printf("revoked %s (its batches will be kept in quarantine)\n",
		    argv[1]);
	else
		r = fail(r);
	pf_platform_free(pf);
	return r;
}

static int
cmd_export(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	const char *type = NULL, *grid = NULL, *fmt = "ndjson";
	enum pf_export_format f;
	int i, r;

	for (i = 1; i < argc; i++) {
		const char **slot = NULL;

		if (strcmp(argv[i], "--type") == 0)
			slot = &type;
		else if (strcmp(argv[i], "--grid") == 0)
			slot = &grid;
		else if (strcmp(argv[i], "--format") == 0)
			slot = &fmt;
		else
			return usage_error("export: unexpected argument %s",
			    argv[i]);
		if ((*slot = opt_value(argc, argv, &i)) == NULL)
			return usage_error("%s needs a value", argv[i]);
	}
	if (strcmp(fmt, "ndjson") == 0)
		f = PF_EXPORT_NDJSON;
	else if (strcmp(fmt, "csv") == 0)
		f = PF_EXPORT_CSV;
	else
		return usage_error("--format %s: expected ndjson or csv", fmt);
	if ((r = open_platform(home, &pf)) != 0)
		return r;
	r = pf_export(pf->store, pf->schema, type, grid, f, stdout,
	    NULL);
	r = r == GS_OK ? 0 : fail(r);
	pf_platform_free(pf);
	return r;
}

static int
print_quarantined(void *arg, const struct pf_quarantine_view *q)
{
	json_t *arr = arg, *o, *reasons;
	json_error_t jerr;
	char dev[33], when[32];

	gs_hex_encode(dev, q->device, 16);
	if (arr != NULL) {
		reasons = json_loads(q->reasons != NULL ? q->reasons : "[]", 0,
		    &jerr);
		o = json_pack("{s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:I}",
		    "id", (json_int_t)q->id, "batch", (json_int_t)q->batch,
		    "device_id", dev, "change_id", q->change_id,
		    "uuid", q->uuid, "type", q->type, "grid", q->grid,
		    "cause", q->cause,
		    "reasons", reasons != NULL ? reasons : json_array(),
		    "created_at", (json_int_t)q->created_at);
		if (o == NULL || json_array_append_new(arr, o) != 0)
			return GS_FAIL(GS_ENOMEM, "quarantine list");
		return GS_OK;
	}
	gs_time_format(when, sizeof(when), q->created_at);
	printf("%lld  %s  %s %s  device %s  %s  %s\n", (long long)q->id, when,
	    q->type, q->uuid, dev, q->cause, q->reasons);
	return GS_OK;
}

static int
cmd_quarantine(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	json_t *arr = NULL;
	int json, r;

	if ((r = json_flag(argc, argv, &json)) != 0)
		return r;
	if ((r = open_platform(home, &pf)) != 0)
		return r;
	if (json && (arr = json_array()) == NULL) {
		r = fail(GS_FAIL(GS_ENOMEM, "quarantine list"));
		goto out;
	}
	r = pf->store->ops->quarantine_each(pf->store, print_quarantined, arr);
	if (r == GS_OK && arr != NULL)
		r = print_json(arr);
	r = r == GS_OK ? 0 : fail(r);
out:
	json_decref(arr);
	pf_platform_free(pf);
	return r;
}

static int
print_conflict(void *arg, const struct pf_conflict_view *c)
{
	json_t *arr = arg, *o, *change, *cur;
	json_error_t jerr;
	char dev[33], when[32];

	gs_hex_encode(dev, c->device, 16);
	if (arr != NULL) {
		change = json_loads(c->change != NULL ? c->change : "null",
		    JSON_DECODE_ANY, &jerr);
		cur = json_loads(c->current_fields != NULL ?
		    c->current_fields : "null", JSON_DECODE_ANY, &jerr);
		o = json_pack("{s:I,s:I,s:s,s:s,s:s,s:I,s:I,s:o,s:o,s:s,s:I}",
		    "id", (json_int_t)c->id, "batch", (json_int_t)c->batch,
		    "device_id", dev, "uuid", c->uuid,
		    "change_id", c->change_id,
		    "base_rev", (json_int_t)c->base_rev,
		    "current_rev", (json_int_t)c->current_rev,
		    "change", change != NULL ? change : json_null(),
		    "current_fields", cur != NULL ? cur : json_null(),
		    "status", c->status,
		    "created_at", (json_int_t)c->created_at);
		if (o == NULL || json_array_append_new(arr, o) != 0)
			return GS_FAIL(GS_ENOMEM, "conflict list");
		return GS_OK;
	}
	gs_time_format(when, sizeof(when), c->created_at);
	printf("%lld  %s  record %s  base rev %lld, now rev %lld  device %s  "
	    "%s\n", (long long)c->id, when, c->uuid, (long long)c->base_rev,
	    (long long)c->current_rev, dev, c->status);
	return GS_OK;
}

static int
cmd_conflicts(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	json_t *arr = NULL;
	int json, r;

	if ((r = json_flag(argc, argv, &json)) != 0)
		return r;
	if ((r = open_platform(home, &pf)) != 0)
		return r;
	if (json && (arr = json_array()) == NULL) {
		r = fail(GS_FAIL(GS_ENOMEM, "conflict list"));
		goto out;
	}
	r = pf->store->ops->conflict_each(pf->store, print_conflict, arr);
	if (r == GS_OK && arr != NULL)
		r = print_json(arr);
	r = r == GS_OK ? 0 : fail(r);
out:
	json_decref(arr);
	pf_platform_free(pf);
	return r;
}

struct recon {
	struct pf_store *st;
	json_t *devices;   /* --json: the array being built, else NULL */
	json_t *cur;       /* the device object being filled */
	struct gs_buf line; /* human output: missing ranges */
};

static int
recon_range(void *arg, uint64_t from, uint64_t to)
{
	struct recon *rc = arg;
	json_t *arr = json_object_get(rc->cur, "missing_ranges");

	if (rc->devices != NULL)
		return json_array_append_new(arr, json_pack("[I,I]",
		    (json_int_t)from, (json_int_t)to)) == 0 ? GS_OK :
		    GS_FAIL(GS_ENOMEM, "reconcile");
	if (from == to)
		return gs_buf_printf(&rc->line, " %llu",
		    (unsigned long long)from);
	return gs_buf_printf(&rc->line, " %llu-%llu",
	    (unsigned long long)from, (unsigned long long)to);
}

static int
recon_type(void *arg, const char *type, int64_t n)
{
	struct recon *rc = arg;

	if (rc->devices != NULL)
		return json_object_set_new(json_object_get(rc->cur, "records"),
		    type, json_integer(n)) == 0 ? GS_OK :
		    GS_FAIL(GS_ENOMEM, "reconcile");
	return gs_buf_printf(&rc->line, " %s %lld", type, (long long)n);
}

static int
recon_device(void *arg, const struct pf_device *d)
{
	struct recon *rc = arg;
	struct pf_store *st = rc->st;
	int64_t q = 0, c = 0, v = 0;
	char id[33], head[65], when[32];
	int r;

	gs_hex_encode(id, d->id, sizeof(d->id));
	gs_hex_encode(head, d->chain_head, sizeof(d->chain_head));
	if ((r = st->ops->device_counts(st, d->id, &q, &c, &v)) != GS_OK)
		return r;
	if (rc->devices != NULL) {
		rc->cur = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:[],s:b,"
		    "s:s?,s:I,s:{},s:I,s:I,s:I}",
		    "device_id", id, "worker", d->worker, "grid", d->grid,
		    "status", d->revoked ? "revoked" : "active",
		    "batches", (json_int_t)d->batches,
		    "last_seq", (json_int_t)d->last_seq,
		    "missing", (json_int_t)d->missing,
		    "missing_ranges", "chain_ok", d->chain_ok,
		    "chain_head", d->has_head ? head : NULL,
		    "last_contact", (json_int_t)d->last_contact,
		    "records", "revisions", (json_int_t)v,
		    "quarantined", (json_int_t)q, "conflicts", (json_int_t)c);
		if (rc->cur == NULL ||
		    json_array_append_new(rc->devices, rc->cur) != 0)
			return GS_FAIL(GS_ENOMEM, "reconcile");
		if ((r = st->ops->missing_ranges(st, d->id, recon_range, rc))
		    != GS_OK)
			return r;
		return st->ops->records_by_type(st, d->id, recon_type, rc);
	}
	if (d->last_contact)
		gs_time_format(when, sizeof(when), d->last_contact);
	else
		gs_strlcpy(when, "never", sizeof(when));
	printf("device %s  worker %s  grid %s  %s\n", id, d->worker, d->grid,
	    d->revoked ? "REVOKED" : "active");
	printf("  batches %lld, last seq %llu, chain %s, last contact %s\n",
	    (long long)d->batches, (unsigned long long)d->last_seq,
	    d->chain_ok ? "ok" : "BROKEN", when);
	gs_buf_reset(&rc->line);
	if ((r = st->ops->missing_ranges(st, d->id, recon_range, rc))
	    != GS_OK)
		return r;
	printf("  missing seqs: %s\n", rc->line.len ? rc->line.data + 1 :
	    "none");
	gs_buf_reset(&rc->line);
	if ((r = st->ops->records_by_type(st, d->id, recon_type, rc))
	    != GS_OK)
		return r;
	printf("  records:%s  (revisions %lld)\n", rc->line.len ?
	    rc->line.data : " none", (long long)v);
	printf("  quarantined %lld, conflicts %lld\n", (long long)q,
	    (long long)c);
	return GS_OK;
}

static int
cmd_reconcile(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	struct recon rc;
	json_t *doc = NULL;
	int json, r;

	if ((r = json_flag(argc, argv, &json)) != 0)
		return r;
	if ((r = open_platform(home, &pf)) != 0)
		return r;
	memset(&rc, 0, sizeof(rc));
	rc.st = pf->store;
	gs_buf_init(&rc.line, 1u << 20);
	if (json && ((rc.devices = json_array()) == NULL ||
	    (doc = json_pack("{s:O}", "devices", rc.devices)) == NULL)) {
		r = fail(GS_FAIL(GS_ENOMEM, "reconcile"));
		goto out;
	}
	r = pf->store->ops->device_each(pf->store, recon_device, &rc);
	if (r == GS_OK && doc != NULL)
		r = print_json(doc);
	r = r == GS_OK ? 0 : fail(r);
out:
	json_decref(rc.devices);
	json_decref(doc);
	gs_buf_release(&rc.line);
	pf_platform_free(pf);
	return r;
}

static const struct {
	const char *name;
	int (*fn)(const char *home, int argc, char **argv);
} commands[] = {
	{ "init", cmd_init },
	{ "serve", cmd_serve },
	{ "enroll", cmd_enroll },
	{ "devices", cmd_devices },
	{ "revoke", cmd_revoke },
	{ "export", cmd_export },
	{ "quarantine", cmd_quarantine },
	{ "conflicts", cmd_conflicts },
	{ "reconcile", cmd_reconcile },
	{ "attachment", pf_cmd_attachment },
};

int
main(int argc, char **argv)
{
	const char *home_opt = NULL;
	char *home = NULL;
	int i = 1, r;
	size_t k;

	gs_log_set_program("gridplatform");
	/* The store, its WAL and every file we make hold personal data or
	 * keys: readable by the platform's user only. */
	umask(077);
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--version") == 0) {
			printf("gridplatform %s\n", PF_VERSION);
			return 0;
		}
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--home") == 0) {
			if (i + 1 >= argc)
				return usage_error("%s needs a directory",
				    argv[i]);
			home_opt = argv[i + 1];
			i += 2;
			continue;
		}
		return usage_error("unknown option %s", argv[i]);
	}
	if (i >= argc) {
		fputs(usage_text, stderr);
		return GS_EX_USAGE;
	}
	for (k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(commands[k].name, argv[i]) == 0)
			break;
	if (k == sizeof(commands) / sizeof(commands[0]))
		return usage_error("unknown command %s", argv[i]);
	if (want_help(argv[i], argc - i, argv + i))
		return 0;
	/* --home may also follow the command. */
	for (int j = i + 1; j < argc; j++) {
		if (strcmp(argv[j], "--home") == 0) {
			if (j + 1 >= argc)
				return usage_error("%s needs a directory",
				    argv[j]);
			home_opt = argv[j + 1];
			memmove(&argv[j], &argv[j + 2],
			    (size_t)(argc - j - 2) * sizeof(*argv));
			argc -= 2;
			j--;
		}
	}
	if ((r = pf_home_resolve(home_opt, &home)) != GS_OK)
		return fail(r);
	r = commands[k].fn(home, argc - i, argv + i);
	gs_free(home);
	return r;
}
