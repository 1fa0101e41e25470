/*
 * cli.c - the store commands of gridagent (init, collect, edit, delete,
 * list, show, status) and the helpers every command shares.
 *
 * Output contract (DESIGN.md section 7): results go to stdout, errors to
 * stderr as lines starting with "gridagent: ", the exit code comes from
 * the error table (gs_error_exit).  A write prints the uuid(s) it saved
 * only after the commit returned.  --json gives one JSON document, or
 * NDJSON for list.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/progress.h"
#include "core/util.h"
#include "crypto.h"
#include "gridagent.h"
#include "json.h"
#include "keys.h"
#include "schema.h"
#include "store.h"
#include "core/banned.h"

#define PROG "gridagent"

/* ------------------------------------------------------------ helpers */

int
ag_cli_error(int err)
{
	fprintf(stderr, PROG ": %s\n", gs_errmsg(err));
	return gs_error_exit(err);
}

/*
 * "usage: gridagent [--home DIR] NAME USAGE", the usage broken before an
 * option group ("[...]") that would pass column 79, the next line
 * indented under the first option.
 */
static void
print_usage(FILE *f, const struct ag_command *c)
{
	const char *u = c->usage, *e;
	int col, indent, depth;

	col = fprintf(f, "usage: " PROG " [--home DIR] %s", c->name);
	indent = col < 40 ? col + 1 : 8;
	while (*u != '\0') {
		while (*u == ' ')
			u++;
		if (*u == '\0')
			break;
		/* One unit: a bracketed group as a whole, else a word. */
		for (e = u, depth = 0; *e != '\0'; e++) {
			if (*e == '[')
				depth++;
			else if (*e == ']')
				depth--;
			else if (*e == ' ' && depth <= 0)
				break;
		}
		if (*u == '[' && col + 1 + (int)(e - u) > 79 && col > indent) {
			fprintf(f, "\n%*s", indent, "");
			col = indent;
		} else {
			fputc(' ', f);
			col++;
		}
		col += fprintf(f, "%.*s", (int)(e - u), u);
		u = e;
	}
	fputc('\n', f);
}

int
ag_cli_usage(struct ag_cli *cli, const char *fmt, ...)
{
	va_list ap;

	fputs(PROG ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cli->cmd != NULL) {
		print_usage(stderr, cli->cmd);
		fprintf(stderr, "(see '" PROG " %s --help')\n",
		    cli->cmd->name);
	}
	return GS_EX_USAGE;
}

static int
print_help(const struct ag_command *c)
{
	print_usage(stdout, c);
	printf("\n%s\n", c->summary);
	if (c->help != NULL)
		printf("\n%s", c->help);
	printf("\nEvery command takes --home DIR (else $GRIDAGENT_HOME, else "
	       "~/.gridagent).\n");
	return GS_EX_OK;
}

/*
 * Options may come anywhere among the arguments ("collect person --json
 * f" and "collect --json f person" both work), because workers and
 * scripts write them both ways.  Only long options are known: a value
 * like "-" (stdin) or "-3.5" must stay an argument.
 */
int
ag_cli_parse(struct ag_cli *cli, const struct ag_opt *opts, int argc,
    char **argv, int *npos)
{
	const struct ag_opt *o;
	int i, n = 0, done = 0;

	for (i = 1; i < argc; i++) {
		char *a = argv[i], *eq;
		size_t len;

		if (!done && strcmp(a, "-h") == 0)
			return print_help(cli->cmd);
		if (done || a[0] != '-' || a[1] != '-') {
			argv[1 + n++] = a; /* "-" (stdin) is an argument too */
			continue;
		}
		if (a[2] == '\0') {
			done = 1;
			continue;
		}
		a += 2;
		eq = strchr(a, '=');
		len = eq != NULL ? (size_t)(eq - a) : strlen(a);
		if (len == 4 && strncmp(a, "help", 4) == 0 && eq == NULL)
			return print_help(cli->cmd);
		if (len == 4 && strncmp(a, "home", 4) == 0) {
			/* Empty is refused as in main.c: not the default. */
			if (eq != NULL)
				cli->home_opt = eq + 1;
			else if (i + 1 < argc)
				cli->home_opt = argv[++i];
			else
				cli->home_opt = "";
			if (cli->home_opt[0] == '\0')
				return ag_cli_usage(cli, "--home needs a "
							 "directory");
			continue;
		}
		for (o = opts; o != NULL && o->name != NULL; o++)
			if (strlen(o->name) == len &&
			    strncmp(o->name, a, len) == 0)
				break;
		if (o == NULL || o->name == NULL)
			return ag_cli_usage(cli, "unknown option --%.*s",
			    (int)len, a);
		if (o->flag != NULL) {
			if (eq != NULL)
				return ag_cli_usage(cli, "--%s takes no value",
				    o->name);
			*o->flag = 1;
		} else if (eq != NULL) {
			*o->value = eq + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			return ag_cli_usage(cli, "--%s needs a value",
			    o->name);
		}
	}
	*npos = n;
	return -1;
}

char *
ag_cli_home(struct ag_cli *cli)
{
	char *home = ag_home_resolve(cli->home_opt);

	if (home == NULL)
		fprintf(stderr, PROG ": no home directory: use --home DIR or "
				     "set GRIDAGENT_HOME\n");
	return home;
}

/*
 * Every command opens the store through here, so the "not initialized"
 * answer (exit 77 with how to init) and the problem printer are the same
 * everywhere.
 */
static int
cli_open(struct ag_cli *cli, int read_only, struct ag_store **out)
{
	char *home = NULL;
	int r;

	*out = NULL;
	if ((home = ag_cli_home(cli)) == NULL)
		return GS_EX_USAGE;
	r = read_only ? ag_store_open_read(home, out) :
	    ag_store_open(home, out);
	/* A live unlock session (keys.h) unlocks this process too. */
	if (r == GS_OK && (r = ag_session_resume(*out)) != GS_OK) {
		ag_store_close(*out);
		*out = NULL;
	}
	if (r != GS_OK) {
		gs_free(home);
		return ag_cli_error(r);
	}
	/* One line, so that whoever reads the answer knows it is all that
	 * can be had, and why nothing else will work there. */
	if (ag_store_readonly(*out) == 1)
		fprintf(stderr, PROG ": warning: %s is read-only: showing "
		    "what is saved; nothing can be saved there\n", home);
	else if (ag_store_readonly(*out))
		fprintf(stderr, PROG ": warning: %s is read-only: showing "
		    "the store file as it is; nothing can be saved there, "
		    "and a process writing it elsewhere may have changes "
		    "not shown\n", home);
	gs_free(home);
	ag_store_on_problem(*out, ag_cli_problem, NULL);
	return -1;
}

int
ag_cli_open(struct ag_cli *cli, struct ag_store **out)
{
	return cli_open(cli, 0, out);
}

int
ag_cli_open_read(struct ag_cli *cli, struct ag_store **out)
{
	return cli_open(cli, 1, out);
}

void
ag_cli_problem(void *ctx, size_t line, const char *field, const char *rule,
    const char *message)
{
	(void)ctx;
	(void)rule;
	fputs(PROG ": ", stderr);
	if (line > 0)
		fprintf(stderr, "line %zu: ", line);
	if (field != NULL && field[0] != '\0')
		fprintf(stderr, "%s: ", field);
	fprintf(stderr, "%s\n", message);
}

/*
 * Reads a whole file (or stdin for "-") into b, which carries the cap.
 * Returns -1 on success, or an exit code after printing the error.
 */
static int
read_input(const char *path, struct gs_buf *b)
{
	FILE *f = stdin;
	struct stat sb;
	size_t n, room, want;
	char c;
	int r = GS_OK;

	if (strcmp(path, "-") != 0 && (f = fopen(path, "rb")) == NULL) {
		fprintf(stderr, PROG ": cannot open %s: %s\n", path,
		    strerror(errno));
		return errno == ENOENT ? GS_EX_NOINPUT : GS_EX_IOERR;
	}
	/* Straight into b, not through a stdio buffer that would be freed
	 * holding the last of the data. */
	(void)setvbuf(f, NULL, _IONBF, 0);
	/* A file's size is known: room for all of it at once, and the read
	 * goes straight into it (a 40 MB import was read 64 KiB at a time
	 * into a buffer that doubled, copied again at every step).  Past the
	 * cap: refused before anything is read. */
	if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
	    sb.st_size > 0)
		r = (uintmax_t)sb.st_size > b->max ? GS_ETOOBIG :
		    gs_buf_reserve(b, (size_t)sb.st_size);
	if (r == GS_OK && b->data != NULL)
		gs_mem_hint_huge(b->data, b->cap);
	while (r == GS_OK) {
		room = b->data != NULL ? b->cap - b->len - 1 : 0;
		if (room == 0) {
			/* Full: 64 KiB more, up to the cap; at the cap,
			 * one byte more is one too many. */
			want = b->max - b->len < 65536 ? b->max - b->len :
			    65536;
			if (want == 0) {
				if (fread(&c, 1, 1, f) == 1)
					r = GS_ETOOBIG;
				break;
			}
			r = gs_buf_reserve(b, want);
			continue;
		}
		if ((n = fread(b->data + b->len, 1, room, f)) == 0)
			break;
		b->len += n;
		b->data[b->len] = '\0';
	}
	if (r == GS_OK && ferror(f))
		r = GS_FAIL(GS_EIO, "cannot read %s: %s", path,
		    strerror(errno));
	else if (r == GS_ETOOBIG)
		r = GS_FAIL(GS_ETOOBIG, "%s is over the limit of %zu MiB",
		    path, b->max >> 20);
	else if (r != GS_OK)
		r = GS_FAIL(r, "cannot read %s", path);
	if (f != stdin)
		fclose(f);
	/* A UTF-8 byte order mark (spreadsheet exports write one) is not
	 * part of the JSON: drop it (RFC 8259 section 8.1 allows this). */
	if (r == GS_OK && b->len >= 3 && memcmp(b->data, "\xef\xbb\xbf", 3)
	    == 0) {
		memmove(b->data, b->data + 3, b->len - 3 + 1);
		b->len -= 3;
	}
	return r == GS_OK ? -1 : ag_cli_error(r);
}

/* ------------------------------------------------------------ init */

int
ag_cmd_init(struct ag_cli *cli, int argc, char **argv)
{
	const char *grid = NULL, *worker = NULL, *passfile = NULL;
	const char *retention = NULL;
	const struct ag_opt opts[] = {
		{ "grid", &grid, NULL },
		{ "worker", &worker, NULL },
		{ "passphrase-file", &passfile, NULL },
		{ "retention-days", &retention, NULL },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	char *home = NULL, *pass = NULL;
	size_t plen = 0;
	int64_t days = 0;
	int r, n;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n != 0)
		return ag_cli_usage(cli, "unexpected argument '%s'", argv[1]);
	if (retention != NULL &&
	    gs_parse_i64(retention, 0, 36500, &days) != GS_OK)
		return ag_cli_usage(cli, "--retention-days is 0..36500");
	/* The passphrase is read and checked against the policy before
	 * anything is made: a refused one leaves no half-made home. */
	r = passfile != NULL ? ag_keys_read_passfile(passfile, &pass, &plen) :
	    ag_keys_read_tty("new passphrase: ", &pass, &plen);
	if (r == GS_OK)
		r = ag_keys_policy(pass, plen, 0);
	if (r != GS_OK) {
		gs_crypto_secure_free(pass);
		return ag_cli_error(r);
	}
	if ((home = ag_cli_home(cli)) == NULL) {
		gs_crypto_secure_free(pass);
		return GS_EX_USAGE;
	}
	r = ag_store_init(home, grid, worker, &st);
	/* Protect and unlock: init leaves a live session, like a fresh
	 * unlock, so the worker can collect at once. */
	if (r == GS_OK)
		r = ag_store_protect(st, pass, plen);
	if (r == GS_OK && retention != NULL)
		r = ag_store_meta_set(st, "retention_days", retention);
	if (r == GS_OK)
		r = ag_session_start(st);
	if (r == GS_OK)
		printf("initialized %s\n", home);
	gs_crypto_secure_free(pass);
	ag_store_close(st);
	gs_free(home);
	return r == GS_OK ? GS_EX_OK : ag_cli_error(r);
}

/* ------------------------------------------------------------ collect */

static void
print_uuid(void *ctx, const char *uuid)
{
	(void)ctx;
	puts(uuid);
}

/*
 * One JSON object (possibly spread over several lines) or NDJSON?  The
 * input is one record when it parses as exactly one JSON value; anything
 * else is a bulk import, whose errors are then reported per line.
 */
static int
is_single_object(const char *data, size_t len)
{
	char why[160];
	json_t *v = NULL;
	int one;

	if (len > AG_MAX_RECORD_JSON)
		return 0;
	one = ag_json_parse(data, len, &v, why, sizeof(why)) == GS_OK;
	json_decref(v);
	return one;
}

int
ag_cmd_collect(struct ag_cli *cli, int argc, char **argv)
{
	const char *jsonfile = NULL;
	const struct ag_opt opts[] = {
		{ "json", &jsonfile, NULL },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	struct gs_buf in;
	struct gs_progress pg;
	char uuid[AG_UUID_LEN + 1];
	size_t count = 0;
	int r, n, ex = GS_EX_OK, bulk = 0;

	uuid[0] = '\0';
	/* The file is residents' data in the clear. */
	gs_buf_init_secret(&in, AG_MAX_IMPORT);
	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n < 1)
		return ag_cli_usage(cli, "which record type? (person, house, "
					 "org, event, visit)");
	if (jsonfile != NULL && n > 1)
		return ag_cli_usage(cli, "give either NAME=VALUE fields or "
					 "--json, not both");
	if (jsonfile == NULL && n < 2)
		return ag_cli_usage(cli, "no fields: give NAME=VALUE... or "
					 "--json FILE");
	/* Read all input before opening the store: a slow stdin must not
	 * keep the database open, and an unreadable file changes nothing. */
	if (jsonfile != NULL && (ex = read_input(jsonfile, &in)) >= 0)
		goto out;
	if ((ex = ag_cli_open(cli, &st)) >= 0)
		goto out;
	ex = GS_EX_OK;
	if (jsonfile == NULL) {
		r = ag_collect_args(st, argv[1], argv + 2, n - 1, uuid);
		if (r == GS_OK)
			puts(uuid);
	} else if (is_single_object(in.data ? in.data : "", in.len)) {
		r = ag_collect(st, argv[1], in.data, in.len, uuid);
		if (r == GS_OK)
			puts(uuid);
	} else {
		/* The uuids are printed by the import only after its commit:
		 * a uuid on stdout always means a saved record. */
		bulk = 1;
		gs_progress_init(&pg);
		ag_store_set_progress(st, &pg);
		r = ag_import_ndjson(st, argv[1], in.data ? in.data : "",
		    in.len, print_uuid, NULL, &count);
		ag_store_set_progress(st, NULL);
		if (r == GS_OK)
			fprintf(stderr, PROG ": saved %zu %s records\n",
			    count, argv[1]);
	}
	if (r != GS_OK) {
		/* The problems are printed already; the detail repeats the
		 * first one for a single record (NAME=VALUE or one --json
		 * object), so print it only for an import (the summary) or a
		 * non-validation error. */
		if (r != GS_EVALIDATION || bulk)
			ex = ag_cli_error(r);
		else
			ex = gs_error_exit(r);
	}
out:
	if (ex == GS_EX_OK && gs_stdout_error() != 0) {
		/* Saved all the same: say so, or the worker saves it again
		 * (main would only say the output failed). */
		if (uuid[0] != '\0')
			fprintf(stderr, PROG ": saved %s, but cannot write its "
			    "uuid to the output\n", uuid);
		else
			fprintf(stderr, PROG ": saved %zu records, but cannot "
			    "write their uuids to the output\n", count);
		clearerr(stdout);
		ex = GS_EX_IOERR;
	}
	ag_store_close(st);
	gs_buf_release(&in);
	return ex;
}

/* ------------------------------------------------------------ edit/delete */

int
ag_cmd_edit(struct ag_cli *cli, int argc, char **argv)
{
	const struct ag_opt opts[] = { { NULL, NULL, NULL } };
	struct ag_store *st = NULL;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n < 1)
		return ag_cli_usage(cli, "which record? give its uuid");
	if (n < 2)
		return ag_cli_usage(cli, "nothing to change: give NAME=VALUE");
	gs_id_lower(argv[1]);
	if ((ex = ag_cli_open(cli, &st)) >= 0)
		return ex;
	r = ag_edit_args(st, argv[1], argv + 2, n - 1);
	if (r == GS_OK) {
		puts(argv[1]);
		ex = GS_EX_OK;
	} else if (r == GS_EVALIDATION) {
		ex = gs_error_exit(r); /* the problems are printed */
	} else {
		ex = ag_cli_error(r);
	}
	ag_store_close(st);
	return ex;
}

int
ag_cmd_delete(struct ag_cli *cli, int argc, char **argv)
{
	const char *reason = NULL;
	const struct ag_opt opts[] = {
		{ "reason", &reason, NULL },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n != 1)
		return ag_cli_usage(cli, n ? "one uuid at a time" :
					     "which record? give its uuid");
	gs_id_lower(argv[1]);
	if ((ex = ag_cli_open(cli, &st)) >= 0)
		return ex;
	r = ag_delete(st, argv[1], reason);
	if (r == GS_OK) {
		puts(argv[1]);
		ex = GS_EX_OK;
	} else {
		ex = ag_cli_error(r);
	}
	ag_store_close(st);
	return ex;
}

/* ------------------------------------------------------------ list/show */

struct list_ctx {
	const struct gs_schema *schema;
	int json;
	size_t n;
};

/*
 * A short text for one value: strings as they are, the rest as JSON.
 * Strings are cut at max bytes but never inside a UTF-8 sequence, so a
 * terminal never shows half a Chinese character.
 */
static void
print_value(FILE *f, json_t *v, size_t max)
{
	char *s;

	if (json_is_string(v)) {
		const char *t = json_string_value(v);
		size_t n = strlen(t);

		/* Cut on a UTF-8 boundary. */
		if (n > max) {
			n = max;
			while (n > 0 && ((unsigned char)t[n] & 0xc0) == 0x80)
				n--;
		}
		fprintf(f, "%.*s%s", (int)n, t, n < strlen(t) ? "..." : "");
		return;
	}
	if ((s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)) != NULL) {
		fputs(s, f);
		free(s);
	}
}

/* One line per record: uuid, type, rev, and a short summary taken from
 * the first fields of the form, which are the identifying ones (name,
 * address, title). */
static int
list_one(void *ctx, const struct ag_record *rec)
{
	struct list_ctx *c = ctx;
	const struct gs_form *f;
	json_t *fields, *v;
	size_t i;

	c->n++;
	if (c->json) {
		puts(rec->json);
		return 0;
	}
	printf("%s  %-6s rev %-3lld%s  ", rec->uuid, rec->type,
	    (long long)rec->rev, rec->deleted ? " deleted" : "");
	/* A summary: the first two fields of the form that are set. */
	f = gs_schema_form(c->schema, rec->type);
	fields = json_loads(rec->fields, 0, NULL);
	if (f != NULL && fields != NULL) {
		int shown = 0;

		for (i = 0; i < gs_form_nfields(f) && shown < 2; i++) {
			v = json_object_get(fields,
			    gs_field_name(gs_form_field_at(f, i)));
			if (v == NULL || json_is_null(v))
				continue;
			fputs(shown++ ? ", " : "", stdout);
			print_value(stdout, v, 40);
		}
	}
	json_decref(fields);
	/* A review verdict the platform sent (issue 4); the record line
	 * ends with it when there is one. */
	{
		static const char key[] = ",\"review\":{\"state\":\"";
		const char *p = strstr(rec->json, key), *e;

		if (p != NULL && (e = strchr(p + sizeof(key) - 1, '"')) != NULL)
			printf("  [review: %.*s]", (int)(e - p - sizeof(key) + 1),
			    p + sizeof(key) - 1);
	}
	putchar('\n');
	return 0;
}

int
ag_cmd_list(struct ag_cli *cli, int argc, char **argv)
{
	int json = 0, all = 0, reveal = 0;
	const char *idnum = NULL;
	const struct ag_opt opts[] = {
		{ "json", NULL, &json },
		{ "all", NULL, &all },
		{ "reveal", NULL, &reveal },
		{ "id-number", &idnum, NULL },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	struct list_ctx c = { 0 };
	const char *type = NULL;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n > 1)
		return ag_cli_usage(cli, "at most one record type");
	if (n == 1)
		type = argv[1];
	if ((ex = ag_cli_open_read(cli, &st)) >= 0)
		return ex;
	if (type != NULL && gs_schema_form(ag_store_schema(st), type) == NULL) {
		ag_store_close(st);
		return ag_cli_usage(cli, "unknown record type '%s'", type);
	}
	c.schema = ag_store_schema(st);
	c.json = json;
	if (idnum != NULL) {
		/* Found by the blind index; shown like list (masked unless
		 * --reveal). */
		r = ag_cli_find(st, idnum, reveal, json);
		ex = r == GS_OK ? GS_EX_OK : ag_cli_error(r);
		ag_store_close(st);
		return ex;
	}
	/* Personal data is masked unless --reveal, which is audited. */
	if (reveal && ag_store_locked(st))
		r = GS_FAIL(GS_EPERM, "locked: run gridagent unlock");
	else if (reveal)
		r = ag_store_audit(st, "reveal", NULL, type ? type : "",
		    "{\"what\":\"list\"}");
	else
		r = GS_OK;
	if (r == GS_OK)
		r = ag_list(st, type, (all ? AG_LIST_DELETED : 0) |
		    (reveal ? 0 : AG_LIST_MASK), list_one, &c);
	ex = r == GS_OK ? GS_EX_OK : ag_cli_error(r);
	/* The count on stderr (stdout is the records); none in words. */
	if (r == GS_OK && !json && c.n > 0)
		fprintf(stderr, "%zu records\n", c.n);
	else if (r == GS_OK && !json)
		fprintf(stderr, "no records%s%s\n", type != NULL ?
		    " of type " : "", type != NULL ? type : "");
	if (fflush(stdout) != 0 && ex == GS_EX_OK)
		ex = GS_EX_IOERR;
	ag_store_close(st);
	return ex;
}

static void
print_time(const char *label, json_t *v)
{
	char t[GS_TEXT_MAX];

	/* To the second, as every text output; a record's time is a real
	 * one even at 0 (a clock reset before 1970 stamps 0). */
	printf("%-12s %s\n", label, gs_time_text(t, sizeof(t),
	    json_integer_value(v), 0));
}

/*
 * An attachments field (revealed; masked it is one "***"): how many, then
 * one line each with the start of its hash (what `gridagent attach`
 * printed), type, size in B/KiB/MiB, phase and the time it was taken.
 */
static void
print_attachments(json_t *arr)
{
	char sz[GS_TEXT_MAX], t[GS_TEXT_MAX];
	const char *h, *m, *ph;
	json_int_t size;
	json_t *a, *ta;
	size_t i;

	printf("%zu file%s\n", json_array_size(arr),
	    json_array_size(arr) == 1 ? "" : "s");
	json_array_foreach(arr, i, a) {
		h = json_string_value(json_object_get(a, "hash"));
		m = json_string_value(json_object_get(a, "mime"));
		ph = json_string_value(json_object_get(a, "phase"));
		ta = json_object_get(a, "taken_at");
		size = json_integer_value(json_object_get(a, "size"));
		gs_size_text(sz, sizeof(sz), size < 0 ? 0 : (uint64_t)size);
		t[0] = '\0';
		if (json_is_integer(ta))
			gs_time_text(t, sizeof(t), json_integer_value(ta), 0);
		printf("    %.16s  %s  %s%s%s%s%s\n", h ? h : "?", m ? m : "?",
		    sz, ph ? "  " : "", ph ? ph : "", t[0] ? "  taken " : "",
		    t);
	}
}

/* The human form of ag_get's JSON: header lines, then the fields in the
 * order of the form with their Chinese labels. */
static void
show_text(const struct gs_schema *schema, json_t *rec)
{
	json_t *sp = json_object_get(rec, "sync_problem");
	const char *type = json_string_value(json_object_get(rec, "type"));
	json_t *fields = json_object_get(rec, "fields");
	const struct gs_form *f = gs_schema_form(schema, type ? type : "");
	const char *k;
	json_t *v;
	size_t i;

	printf("%-12s %s\n", "uuid",
	    json_string_value(json_object_get(rec, "uuid")));
	printf("%-12s %s%s%s v%lld\n", "type", type,
	    f ? " " : "", f ? gs_form_label(f) : "",
	    (long long)json_integer_value(json_object_get(rec,
	    "form_version")));
	printf("%-12s %s\n", "grid",
	    json_string_value(json_object_get(rec, "grid")));
	printf("%-12s %lld\n", "rev",
	    (long long)json_integer_value(json_object_get(rec, "rev")));
	/* A change the platform refused is not "synced": the worker sees
	 * that it was and why (DESIGN.md section 6), deleted or not. */
	if (json_is_object(sp)) {
		json_t *pb = json_object_get(sp, "problems"), *x;
		size_t j;

		printf("%-12s %s%s\n", "state",
		    json_is_true(json_object_get(rec, "deleted")) ?
		    "deleted, " : "",
		    json_string_value(json_object_get(sp, "state")));
		if (json_is_string(pb))
			printf("%-12s %s\n", "problem", json_string_value(pb));
		json_array_foreach(pb, j, x) {
			const char *fl = json_string_value(json_object_get(x,
			    "field"));
			const char *msg = json_string_value(json_object_get(x,
			    "message"));

			printf("%-12s %s%s%s\n", "problem", fl ? fl : "",
			    fl && *fl ? ": " : "", msg ? msg : "");
		}
	} else {
		printf("%-12s %s\n", "state",
		    json_is_true(json_object_get(rec, "deleted")) ? "deleted" :
		    json_is_true(json_object_get(rec, "pending")) ?
		    "not yet synced" : "synced");
	}
	print_time("created", json_object_get(rec, "created_at"));
	print_time("updated", json_object_get(rec, "updated_at"));
	printf("%-12s %s\n", "author",
	    json_string_value(json_object_get(rec, "author")));
	/* The platform's review verdict, pulled (issue 4). */
	if (json_is_object(json_object_get(rec, "review"))) {
		json_t *rv = json_object_get(rec, "review");

		printf("%-12s %s by %s: %s\n", "review",
		    json_string_value(json_object_get(rv, "state")),
		    json_string_value(json_object_get(rv, "by")),
		    json_string_value(json_object_get(rv, "comment")));
	}
	printf("fields:\n");
	if (f != NULL) {
		for (i = 0; i < gs_form_nfields(f); i++) {
			const struct gs_field *fd = gs_form_field_at(f, i);

			v = json_object_get(fields, gs_field_name(fd));
			if (v == NULL)
				continue;
			printf("  %-20s %s: ", gs_field_name(fd),
			    gs_field_label(fd));
			if (gs_field_kind(fd) == GS_KIND_ATTACHMENTS &&
			    json_is_array(v)) {
				print_attachments(v);
				continue;
			}
			print_value(stdout, v, 4096);
			putchar('\n');
		}
	}
	/* Fields the form does not know (a newer form wrote them). */
	json_object_foreach(fields, k, v) {
		if (f != NULL && gs_form_field(f, k) != NULL)
			continue;
		printf("  %-20s ", k);
		print_value(stdout, v, 4096);
		putchar('\n');
	}
}

int
ag_cmd_show(struct ag_cli *cli, int argc, char **argv)
{
	int json = 0, reveal = 0;
	const struct ag_opt opts[] = {
		{ "json", NULL, &json },
		{ "reveal", NULL, &reveal },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	json_t *rec = NULL, *problem = NULL;
	char *text = NULL, *s;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n != 1)
		return ag_cli_usage(cli, "give one record uuid");
	gs_id_lower(argv[1]);
	if ((ex = ag_cli_open_read(cli, &st)) >= 0)
		return ex;
	r = reveal ? ag_get(st, argv[1], &text) :
	    ag_get_masked(st, argv[1], &text);
	if (r == GS_OK && reveal)
		r = ag_store_audit(st, "reveal", argv[1], NULL,
		    "{\"what\":\"show\"}");
	if (r == GS_OK)
		r = ag_record_problem(st, argv[1], &problem);
	if (r != GS_OK) {
		ex = ag_cli_error(r);
		goto out;
	}
	if (json && problem == NULL) {
		puts(text);
	} else {
		if ((rec = json_loads(text, 0, NULL)) == NULL) {
			ex = ag_cli_error(GS_FAIL(GS_ECORRUPT, "record %s "
			    "cannot be shown", argv[1]));
			goto out;
		}
		/* Refused by the platform: --json says so too, in
		 * "sync_problem" ({state, problems}). */
		if (problem != NULL && json_object_set(rec, "sync_problem",
		    problem) != 0) {
			ex = ag_cli_error(GS_FAIL(GS_ENOMEM, "show: out of "
			    "memory"));
			goto out;
		}
		if (!json) {
			show_text(ag_store_schema(st), rec);
		} else if ((s = json_dumps(rec, JSON_COMPACT)) != NULL) {
			puts(s);
			free(s);
		} else {
			ex = ag_cli_error(GS_FAIL(GS_ENOMEM, "show: out of "
			    "memory"));
			goto out;
		}
	}
	ex = fflush(stdout) == 0 ? GS_EX_OK : GS_EX_IOERR;
out:
	json_decref(problem);
	json_decref(rec);
	ag_free(text);
	ag_store_close(st);
	return ex;
}

/* ------------------------------------------------------------ status */

/*
 * What a status key's number means, from its name, so that a key a new
 * part adds is shown in words as soon as it follows the naming: "..._at",
 * "at" and "last_sync" are times (milliseconds since 1970 in the JSON),
 * "..._bytes" and "partial_sent" are sizes, "..._ms" durations.
 */
enum status_kind { KIND_PLAIN, KIND_TIME, KIND_SIZE, KIND_DURATION };

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static enum status_kind
status_kind(const char *k)
{
	if (strcmp(k, "at") == 0 || strcmp(k, "last_sync") == 0 ||
	    ends_with(k, "_at"))
		return KIND_TIME;
	if (ends_with(k, "_bytes") || strcmp(k, "partial_sent") == 0)
		return KIND_SIZE;
	if (ends_with(k, "_ms"))
		return KIND_DURATION;
	return KIND_PLAIN;
}

/* One value of the status tree as a worker reads it: times as ISO 8601
 * UTC ("never" for none), sizes in B/KiB/MiB, durations in ms/s/min/h,
 * nothing as "none". */
static void
print_status_value(const char *k, json_t *v)
{
	char t[GS_TEXT_MAX];
	enum status_kind kind = status_kind(k);
	const char *sv;

	if (json_is_integer(v) && kind == KIND_TIME)
		fputs(gs_time_text(t, sizeof(t), json_integer_value(v),
		    GS_TIME_ZERO_NEVER), stdout);
	else if (json_is_integer(v) && kind == KIND_SIZE)
		fputs(gs_size_text(t, sizeof(t), json_integer_value(v) < 0 ? 0 :
		    (uint64_t)json_integer_value(v)), stdout);
	else if (json_is_integer(v) && kind == KIND_DURATION)
		fputs(gs_duration_text(t, sizeof(t), json_integer_value(v)),
		    stdout);
	else if (json_is_null(v))
		fputs(kind == KIND_TIME ? "never" : "none", stdout);
	else if (json_is_string(v) && json_string_length(v) == 0)
		fputs("(none)", stdout);
	else if (json_is_string(v) && kind == KIND_TIME &&
	    json_string_length(v) == 24 &&
	    (sv = json_string_value(v))[19] == '.' && sv[23] == 'Z')
		/* A time the JSON gives as text (gs_time_format): to the
		 * second, like the others. */
		printf("%.19sZ", sv);
	else
		print_value(stdout, v, 200);
}

/* The refused records of status (problem_records): one line each, the
 * reasons under it. */
static void
print_problem_records(json_t *arr, int depth)
{
	json_t *rec, *pb, *x;
	size_t i, j;

	json_array_foreach(arr, i, rec) {
		const char *f, *m;

		printf("%*s%s  %s  %s\n", depth * 2, "",
		    json_string_value(json_object_get(rec, "uuid")),
		    json_string_value(json_object_get(rec, "type")),
		    json_string_value(json_object_get(rec, "state")));
		pb = json_object_get(rec, "problems");
		if (json_is_string(pb))
			printf("%*s%s\n", depth * 2 + 2, "",
			    json_string_value(pb));
		json_array_foreach(pb, j, x) {
			f = json_string_value(json_object_get(x, "field"));
			m = json_string_value(json_object_get(x, "message"));
			printf("%*s%s%s%s\n", depth * 2 + 2, "", f ? f : "",
			    f && *f ? ": " : "", m ? m : "");
		}
	}
}

/* Prints a status object generically, so that keys the sync side adds
 * show up without changes here: nested objects become indented blocks,
 * empty ones and empty lists "none", values as print_status_value. */
static void
print_tree(json_t *o, int depth)
{
	const char *k;
	json_t *v, *x;
	size_t i;

	json_object_foreach(o, k, v) {
		printf("%*s%s:", depth * 2, "", k);
		if (json_is_object(v) && json_object_size(v) > 0) {
			putchar('\n');
			print_tree(v, depth + 1);
			continue;
		}
		if ((json_is_object(v) && json_object_size(v) == 0) ||
		    (json_is_array(v) && json_array_size(v) == 0)) {
			puts(" none");
			continue;
		}
		if (json_is_null(v) && depth == 0 &&
		    strcmp(k, "device") == 0) {
			puts(" not enrolled (run 'gridagent enroll CODE')");
			continue;
		}
		if (json_is_array(v) && strcmp(k, "problem_records") == 0) {
			putchar('\n');
			print_problem_records(v, depth + 1);
			continue;
		}
		if (json_is_array(v)) {
			/* A list: one item a line. */
			putchar('\n');
			json_array_foreach(v, i, x) {
				printf("%*s- ", depth * 2 + 2, "");
				print_status_value("", x);
				putchar('\n');
			}
			continue;
		}
		putchar(' ');
		print_status_value(k, v);
		putchar('\n');
	}
}

int
ag_cmd_status(struct ag_cli *cli, int argc, char **argv)
{
	int json = 0;
	const struct ag_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	json_t *o = NULL;
	char *s;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n != 0)
		return ag_cli_usage(cli, "unexpected argument '%s'", argv[1]);
	if ((ex = ag_cli_open_read(cli, &st)) >= 0)
		return ex;
	if ((r = ag_status_build(st, &o)) != GS_OK) {
		ex = ag_cli_error(r);
		goto out;
	}
	if (json) {
		if ((s = json_dumps(o, JSON_COMPACT)) == NULL) {
			ex = ag_cli_error(GS_FAIL(GS_ENOMEM, "status: out of "
							     "memory"));
			goto out;
		}
		puts(s);
		free(s);
	} else {
		print_tree(o, 0);
	}
	ex = fflush(stdout) == 0 ? GS_EX_OK : GS_EX_IOERR;
out:
	json_decref(o);
	ag_store_close(st);
	return ex;
}
