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
#include "batch.h"
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
#include "recon.h"
#include "reference.h"
#include "schema.h"
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
    "  keys [[list] [--json] | rotate | retire KID [--force]]\n"
    "                                   batch-encryption keys, rotation\n"
    "  revoke DEVICE_ID                 revoke a device (its batches are\n"
    "                                   still received, into quarantine)\n"
    "  export [--type T] [--grid G] [--format ndjson|csv | --json]\n"
    "         [--headers zh]            print records\n"
    "  quarantine [--json] [--open]     list quarantined changes\n"
    "  quarantine release ID [--set NAME=VALUE...] | reject ID --reason TEXT\n"
    "             [--by NAME]\n"
    "  conflicts [--json] [--open]      list conflicts, field by field\n"
    "  resolve ID --take device|platform | --set NAME=VALUE... [--by NAME]\n"
    "  reconcile [--json] [--grid CODE] [--worker ID] [--check]\n"
    "                                   per device, worker and grid: what\n"
    "                                   arrived, what is missing or waiting\n"
    "  review UUID --state approved|has_issues|rejected [--comment TEXT]\n"
    "         [--by NAME]\n"
    "  task add --worker ID --kind VISIT|VERIFY_EVENT|DATA_CHECK\n"
    "           [--subject UUID] --due YYYY-MM-DD --title TEXT [--by NAME]\n"
    "  stats [--json] [--since YYYY-MM-DD]  records and visits per worker,\n"
    "                                   day and grid\n"
    "  reference [--json] | reference add FILE [--by NAME]\n"
    "                                   publish a form version or code table\n"
    "  attachment get HASH --out FILE [--as NAME] | list [--json] [--missing]\n"
    "             | limit [BYTES] [--json] | sweep [--older-than S]\n"
    "             | partial-age [S] [--json]\n"
    "                                   open (audited) or list stored photos,\n"
    "                                   sweep abandoned partial uploads\n"
    "\n"
    "options: --home DIR (else $GRIDPLATFORM_HOME, else ~/.gridplatform),\n"
    "         --help, --version; 'gridplatform COMMAND --help' (or\n"
    "         'gridplatform help COMMAND') tells more.\n"
    "\n"
    "Exit codes: 0 ok, 1 reconcile --check found something, 64 usage, 65\n"
    "invalid data, 70 internal, 73 cannot create, 74 I/O error, 75 try\n"
    "later, 77 not permitted (also: no deployment in the home yet, run\n"
    "'gridplatform init').\n";

static const char *const cmd_help[][2] = {
	{ "init", "usage: gridplatform init [--public-url URL]\n"
	    "Creates the deployment in the home directory: a deployment id, "
	    "the batch\nkey (X25519), the receipt key (Ed25519), the root "
	    "key (Ed25519, root.key:\nback it up and keep it private; it "
	    "signs the key bundles) and the store.\nThe public URL (default "
	    PF_DEFAULT_URL ") goes into enrollment codes:\nhttp:// or "
	    "https://, a host, an optional port (1 to 65535) and path; no\n"
	    "user name, query or fragment.  Refuses to overwrite an "
	    "existing deployment.\n" },
	{ "serve", "usage: gridplatform serve [--listen HOST:PORT]\n"
	    "Serves the API.  The first line printed is \"listening on URL\" "
	    "with the\nport actually bound (port 0 picks one).  SIGTERM or "
	    "SIGINT stop it.\n" },
	{ "enroll", "usage: gridplatform enroll --worker ID --name NAME "
	    "--grid CODE [--ttl SECONDS]\nPrints a one-time enrollment code "
	    "for the worker's device, valid for --ttl\nseconds (1 to 604800, "
	    "default 86400).  The worker id and the grid code go\ninto every "
	    "record the device sends: at most 63 bytes each, without\n"
	    "control characters, quotes or backslashes.\n" },
	{ "keys", "usage: gridplatform keys [list] [--json] | rotate | "
	    "retire KID [--force]\nThe batch-encryption keys: list (the "
	    "default) shows them; rotate makes a\nnew current key (a running "
	    "serve takes it at its next health request, which\nevery sync "
	    "starts with, and devices take it from there in a bundle the\n"
	    "root key signed) and keeps the old ones so batches sealed to "
	    "them still\nopen; enrollment codes pin the root key, so codes "
	    "made before a rotation\nstay valid.  retire deletes an old "
	    "secret key, refused while a device may\nstill use it unless "
	    "--force.  A retire or rotate cut short (a crash) is\nfinished "
	    "by the next command that opens the home, with one warning "
	    "line.\n" },
	{ "devices", "usage: gridplatform devices [--json]\n"
	    "Lists enrolled devices with their worker, grid, status and "
	    "ledger.\n" },
	{ "revoke", "usage: gridplatform revoke DEVICE_ID\n"
	    "Revokes a device.  Its batches are still verified and kept, "
	    "but in\nquarantine, and answered 403 device_revoked with a "
	    "receipt.\n" },
	{ "export", "usage: gridplatform export [--type TYPE] [--grid CODE]"
	    "\n       [--format ndjson|csv | --json] [--headers zh]\nPrints "
	    "records: NDJSON (the default; --json too), or CSV in UTF-8 with "
	    "a BOM\nfor Excel; a --type no form defines is a usage error.  "
	    "CSV text cells that\nstart with = + - @, a tab or a carriage "
	    "return get a leading ' (no formula\nruns when the sheet "
	    "opens).\n"
	    "--headers zh names the CSV columns by the forms' Chinese "
	    "labels.\nEach record also says how many "
	    "attachments it names and how many arrived\n(NDJSON "
	    "\"attachments\": {\"expected\", \"present\"}; CSV: the last "
	    "two columns),\nand whether a revision of it came with device "
	    "times that cannot be right\n(before 2026-01-01 or over a day "
	    "after arrival: NDJSON \"clock_suspect\": true;\nCSV: the "
	    "clock_suspect column before the attachment ones, 1 or 0).\n"
	    "When stderr is a terminal (and stdout is not), a line there "
	    "counts the\nrecords written; it is wiped at the end.\n" },
	{ "quarantine", "usage: gridplatform quarantine [--json] [--open]\n"
	    "       gridplatform quarantine release ID [--set NAME=VALUE...] "
	    "[--by NAME]\n"
	    "       gridplatform quarantine reject ID --reason TEXT [--by "
	    "NAME]\n"
	    "Lists changes kept in quarantine with their reason and origin "
	    "(worker,\ndevice, seq; a revoked device's drained batches "
	    "too).  release applies\nthe change (with the fixes given) as "
	    "ingest would: on the record as it\nis, or through the three-way "
	    "merge when the record moved on since the\nchange's base (the "
	    "same field changed both ways becomes a conflict),\nafter "
	    "validating it; reject keeps "
	    "it, marked rejected with the reason.\n" },
	{ "reconcile", "usage: gridplatform reconcile [--json] [--grid CODE] "
	    "[--worker ID] [--check]\n"
	    "Per device, worker and grid: batches, last seq, missing seqs, "
	    "forks and\nthe hash chain, last contact, records by type, open "
	    "quarantine and\nconflicts, and what the device itself last "
	    "reported (heartbeat), with\nevery disagreement spelled out; "
	    "and clock_suspect: the record revisions\nwhose device times "
	    "cannot be right (before 2026-01-01 or over a day after\n"
	    "arrival: accepted, flagged only).  --check exits 1 when "
	    "anything needs\nan admin.\n" },
	{ "conflicts", "usage: gridplatform conflicts [--json] [--open]\n"
	    "Lists conflicts: the same field set to different values on the "
	    "device and\non the platform since the change's base revision "
	    "(or an edit against a\ndelete), with the base, platform and "
	    "device values.\n" },
	{ "resolve", "usage: gridplatform resolve ID --take device|platform "
	    "[--by NAME]\n       gridplatform resolve ID --set NAME=VALUE... "
	    "[--by NAME]\n"
	    "Resolves a conflict as a new revision of the record made by the "
	    "admin\n(--by, else $USER); it reaches every device of the grid "
	    "on its next sync.\nWhat changed on the record since the conflict "
	    "is never overwritten unseen:\n--take is refused for a field that "
	    "changed since (name its value with\n--set), and a record deleted "
	    "since stays deleted with --take platform.\n" },
	{ "review", "usage: gridplatform review UUID --state "
	    "approved|has_issues|rejected\n       [--comment TEXT] [--by "
	    "NAME]\nRecords a review verdict (the comment: at most 1000 "
	    "bytes); the record's\nworker sees it on the device after the "
	    "next sync.\n" },
	{ "task", "usage: gridplatform task add --worker ID --kind "
	    "VISIT|VERIFY_EVENT|DATA_CHECK\n       [--subject UUID] --due "
	    "YYYY-MM-DD --title TEXT [--by NAME]\n"
	    "Sends a task to the worker's devices (prints its id).  A visit "
	    "whose task\nfield names it closes it.\n" },
	{ "reference", "usage: gridplatform reference [--json]\n"
	    "       gridplatform reference add FILE [--by NAME]\n"
	    "Publishes reference data to the devices: a form (a new version "
	    "of a record\ntype, never replacing an older one: records keep "
	    "the version they were\ncollected with) or a code table (keeping "
	    "every code of the one it\nreplaces), in the format of schema/ "
	    "(schema/README.md), checked strictly,\nat most 256 KiB.  "
	    "Devices fetch it at their next sync.  Without add, lists\nwhat "
	    "is published.  Exit 66 when FILE is not there, 65 when it "
	    "is not\nvalid reference data.\n" },
	{ "stats", "usage: gridplatform stats [--json] [--since "
	    "YYYY-MM-DD]\nRecords and visits collected per worker per day "
	    "and per grid.\n" },
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

/* For a command that only reads: a home that cannot be written is read
 * all the same, with one warning line that says so. */
static int
open_platform_read(const char *home, struct pf_platform **pf)
{
	int r = pf_platform_open_read(home, pf);

	if (r != GS_OK)
		return fail(r);
	pf_platform_readonly_warn(*pf, home);
	return GS_OK;
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
	int i, r, sig = 0, err;

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
	/* After the mask: the store's threads inherit it too. */
	if (pf->store->ops->serve_start != NULL &&
	    (r = pf->store->ops->serve_start(pf->store)) != GS_OK)
		gs_log(GS_LOG_WARNING, "store: %s; the writer checkpoints "
		    "itself", gs_errmsg(r));
	pf_api_handler(pf, &h);
	if ((r = pf_http_start(&c, &h, &srv, &port)) != GS_OK) {
		r = fail(r);
		goto out;
	}
	if (c.listen[0] == '[')
		printf("listening on http://[%s]:%u\n", host, port);
	else
		printf("listening on http://%s:%u\n", host, port);
	/* A server run with stdout closed still serves, and says where in
	 * its log; its exit is not an output error. */
	if ((err = gs_stdout_error()) != 0) {
		gs_log(GS_LOG_WARNING, "listening on port %u, but cannot "
		    "write that to the output: %s", port, strerror(err));
		clearerr(stdout);
	}
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
	int i, r, err;

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
		if ((err = gs_stdout_error()) != 0) {
			/* The code is stored but was seen by no one: it
			 * expires unused. */
			r = fail(GS_FAIL(GS_EIO, "cannot write the enrollment "
			    "code to the output (%s): make a new one",
			    strerror(err)));
			clearerr(stdout);
		}
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
	if ((r = open_platform_read(home, &pf)) != 0)
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
	gs_id_lower(argv[1]);
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

/* The record types the forms define, once each: "person, house, ...". */
static void
known_types(const struct gs_schema *schema, struct gs_buf *out)
{
	size_t i, j, n = gs_schema_nforms(schema);
	const char *t;

	for (i = 0; i < n; i++) {
		t = gs_form_type(gs_schema_form_at(schema, i));
		for (j = 0; j < i; j++)
			if (strcmp(t, gs_form_type(gs_schema_form_at(schema,
			    j))) == 0)
				break;
		if (j == i)
			(void)gs_buf_printf(out, "%s%s", out->len ? ", " : "",
			    t);
	}
}

static int
cmd_export(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	const char *type = NULL, *grid = NULL, *fmt = "ndjson";
	const char *headers = NULL;
	struct gs_buf types;
	enum pf_export_format f;
	int i, r, json = 0;

	for (i = 1; i < argc; i++) {
		const char **slot = NULL;

		/* --json, as on every read command (DESIGN.md section 7:
		 * NDJSON for streams), is --format ndjson. */
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
			continue;
		}
		if (strcmp(argv[i], "--type") == 0)
			slot = &type;
		else if (strcmp(argv[i], "--grid") == 0)
			slot = &grid;
		else if (strcmp(argv[i], "--format") == 0)
			slot = &fmt;
		else if (strcmp(argv[i], "--headers") == 0)
			slot = &headers;
		else
			return usage_error("export: unexpected argument %s",
			    argv[i]);
		if ((*slot = opt_value(argc, argv, &i)) == NULL)
			return usage_error("%s needs a value", argv[i]);
	}
	/* A grid no record can have (empty: an unset shell variable; a
	 * quote, a control character) is a mistake, not an empty export. */
	if (grid != NULL && (r = gs_batch_check_label("--grid", grid,
	    GS_CHANGE_GRID_MAX)) != GS_OK)
		return fail(r);
	if (json && strcmp(fmt, "ndjson") != 0)
		return usage_error("--json is --format ndjson, not %s", fmt);
	if (strcmp(fmt, "ndjson") == 0)
		f = PF_EXPORT_NDJSON;
	else if (strcmp(fmt, "csv") == 0)
		f = PF_EXPORT_CSV;
	else
		return usage_error("--format %s: expected ndjson or csv", fmt);
	/* Chinese column headers (the forms' field labels) for Excel users;
	 * the default headers are the field names (stable for scripts). */
	if (headers != NULL && (strcmp(headers, "zh") != 0 ||
	    f != PF_EXPORT_CSV))
		return usage_error("--headers %s: only 'zh', with --format csv",
		    headers);
	if (headers != NULL)
		f = PF_EXPORT_CSV_ZH;
	if ((r = open_platform_read(home, &pf)) != 0)
		return r;
	/* A type no form defines holds no record: a typo ("persons",
	 * "PERSON") must not pass for an empty export. */
	if (type != NULL && gs_schema_form(pf_schema(pf), type) == NULL) {
		gs_buf_init(&types, 4096);
		known_types(pf_schema(pf), &types);
		fprintf(stderr, "gridplatform: --type %s: no such record "
		    "type (known: %s)\n", type, types.data != NULL ?
		    types.data : "none");
		gs_buf_release(&types);
		pf_platform_free(pf);
		return GS_EX_USAGE;
	}
	r = pf_export(pf->store, pf_schema(pf), type, grid, f, stdout,
	    NULL);
	r = r == GS_OK ? 0 : fail(r);
	pf_platform_free(pf);
	return r;
}

/*
 * The reconciliation commands (platform/recon.h): open the deployment,
 * run, close.
 */
static int
run_recon(const char *home, int argc, char **argv, int read,
    int (*fn)(struct pf_platform *, int, char **))
{
	struct pf_platform *pf = NULL;
	int r;

	/* A listing (no subcommand: quarantine, conflicts, reconcile,
	 * stats, reference) only reads; release, reject, add ... write. */
	if ((r = (read && (argc < 2 || argv[1][0] == '-')) ?
	    open_platform_read(home, &pf) : open_platform(home, &pf)) != 0)
		return r;
	r = fn(pf, argc, argv);
	pf_platform_free(pf);
	return r;
}

#define RECON_CMD(name, read, fn)					\
	static int							\
	name(const char *home, int argc, char **argv)			\
	{								\
		return run_recon(home, argc, argv, read, fn);		\
	}
RECON_CMD(cmd_quarantine, 1, pf_cmd_quarantine)
RECON_CMD(cmd_conflicts, 1, pf_cmd_conflicts)
RECON_CMD(cmd_reconcile, 1, pf_cmd_reconcile)
RECON_CMD(cmd_resolve, 0, pf_cmd_resolve)
RECON_CMD(cmd_review, 0, pf_cmd_review)
RECON_CMD(cmd_task, 0, pf_cmd_task)
RECON_CMD(cmd_stats, 1, pf_cmd_stats)
RECON_CMD(cmd_reference, 1, pf_cmd_reference)

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
	{ "resolve", cmd_resolve },
	{ "review", cmd_review },
	{ "task", cmd_task },
	{ "stats", cmd_stats },
	{ "reference", cmd_reference },
	{ "attachment", pf_cmd_attachment },
	{ "keys", pf_cmd_keys },
};

static int
run(int argc, char **argv)
{
	static char help_opt[] = "--help";
	char *hv[3];
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
			/* An empty one (an unset shell variable) is not the
			 * default home: that would act on another store. */
			if (i + 1 >= argc || argv[i + 1][0] == '\0')
				return usage_error("%s needs a directory",
				    argv[i]);
			home_opt = argv[i + 1];
			i += 2;
			continue;
		}
		return usage_error("unknown option %s", argv[i]);
	}
	if (i >= argc) {
		fputs("gridplatform: no command given\n", stderr);
		fputs(usage_text, stderr);
		return GS_EX_USAGE;
	}
	/* "help [COMMAND]", as gridagent's: the usage, or COMMAND --help. */
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 == argc) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (i + 2 != argc)
			return usage_error("help takes one command, not %s",
			    argv[i + 2]);
		hv[0] = argv[i + 1];
		hv[1] = help_opt;
		hv[2] = NULL;
		argv = hv;
		argc = 2;
		i = 0;
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
			if (j + 1 >= argc || argv[j + 1][0] == '\0')
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

/*
 * What a command printed must have reached its reader: with stdout
 * closed, on /dev/full or a full disk, devices, stats, keys and even
 * enroll (its one-time code unseen) exited 0.
 */
int
main(int argc, char **argv)
{
	int r = run(argc, argv), err = gs_stdout_error();

	if (err != 0 && r == 0)
		r = fail(GS_FAIL(GS_EIO, "cannot write the output: %s",
		    strerror(err)));
	return r;
}
