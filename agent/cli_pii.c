/*
 * cli_pii.c - the gridagent commands of personal data at rest (issue 6):
 * unlock, lock, config, purge, and list --id-number (the blind index).
 * keys.h explains the unlock session these commands start and end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/progress.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "gridagent.h"
#include "keys.h"
#include "store.h"
#include "core/banned.h"

int
ag_cmd_unlock(struct ag_cli *cli, int argc, char **argv)
{
	const char *passfile = NULL;
	const struct ag_opt opts[] = {
		{ "passphrase-file", &passfile, NULL },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	char *pass = NULL;
	size_t plen = 0;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n != 0)
		return ag_cli_usage(cli, "unexpected argument '%s'", argv[1]);
	if ((ex = ag_cli_open(cli, &st)) >= 0)
		return ex;
	if (!ag_store_locked(st) && ag_store_protected(st)) {
		/* Already unlocked by a live session: refresh it. */
		r = ag_session_start(st);
		goto out;
	}
	r = passfile != NULL ? ag_keys_read_passfile(passfile, &pass, &plen) :
	    ag_keys_read_tty("passphrase: ", &pass, &plen);
	if (r == GS_OK)
		r = ag_store_unlock(st, pass, plen);
	if (r == GS_OK)
		r = ag_session_start(st);
out:
	gs_crypto_secure_free(pass);
	if (r == GS_OK)
		fprintf(stderr, "unlocked\n");
	ex = r == GS_OK ? GS_EX_OK : ag_cli_error(r);
	ag_store_close(st);
	return ex;
}

int
ag_cmd_lock(struct ag_cli *cli, int argc, char **argv)
{
	struct ag_store *st = NULL;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, NULL, argc, argv, &n)) >= 0)
		return r;
	if (n != 0)
		return ag_cli_usage(cli, "unexpected argument '%s'", argv[1]);
	if ((ex = ag_cli_open(cli, &st)) >= 0)
		return ex;
	r = ag_session_end(st);
	if (r == GS_OK)
		fprintf(stderr, "locked\n");
	ex = r == GS_OK ? GS_EX_OK : ag_cli_error(r);
	ag_store_close(st);
	return ex;
}

/* The settings `config` may set, with their bounds and defaults. */
static const struct {
	const char *name, *key;
	int64_t min, max, dflt;
} settings[] = {
	{ "retention-days", "retention_days", 0, 36500,
	    AG_RETENTION_DAYS_DEFAULT },
	{ "lock-idle-seconds", "lock_idle_seconds", 1, 30 * 86400,
	    AG_IDLE_SECONDS_DEFAULT },
	{ "max-failed-unlocks", NULL, 1, 1000, AG_MAX_FAILURES_DEFAULT },
};

/*
 * The text of `config SETTING`: the value with its unit, "30 days",
 * "900 s = 15 min", a count as it is; then " (default)" when it was
 * never set.
 */
static void
print_setting(size_t i, int64_t value, int set)
{
	char d[GS_TEXT_MAX], s[GS_TEXT_MAX];

	if (strcmp(settings[i].name, "retention-days") == 0) {
		printf("%lld day%s", (long long)value, value == 1 ? "" : "s");
	} else if (strcmp(settings[i].name, "lock-idle-seconds") == 0) {
		/* The seconds as set, and in minutes or hours when that
		 * says it better. */
		snprintf(s, sizeof(s), "%lld s", (long long)value);
		gs_duration_text(d, sizeof(d), value * 1000);
		printf("%s%s%s", s, strcmp(s, d) != 0 ? " = " : "",
		    strcmp(s, d) != 0 ? d : "");
	} else {
		printf("%lld", (long long)value);
	}
	printf("%s\n", set ? "" : " (default)");
}

/*
 * The value in force of setting i: *set is 0 when none was ever set (the
 * default is in force).  A stored value out of bounds is read as the
 * default, as the code that uses it does (pii.c, unlock.c).
 */
static int
setting_get(struct ag_store *st, size_t i, int64_t *value, int *set)
{
	struct gs_stmt *s = NULL;
	char *v = NULL;
	int r;

	*value = settings[i].dflt;
	*set = 0;
	if (settings[i].key != NULL) {
		/* In the store's meta table. */
		r = ag_store_meta_get(st, settings[i].key, &v);
		if (r == GS_ENOTFOUND)
			return GS_OK;
		if (r != GS_OK)
			return r;
		*set = 1;
		if (gs_parse_i64(v, settings[i].min, settings[i].max, value) !=
		    GS_OK)
			*value = settings[i].dflt;
		gs_free(v);
		return GS_OK;
	}
	/* max-failed-unlocks lives in the keyring row. */
	if ((r = gs_stmt_prepare(ag_store_db(st), "SELECT max_failures FROM "
	    "keyring WHERE id = 1", &s)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_ROW) {
		*value = gs_stmt_int64(s, 0);
		*set = 1;
	}
	r = r == GS_ROW || r == GS_DONE ? GS_OK : r;
	gs_stmt_finalize(s);
	return r;
}

int
ag_cmd_config(struct ag_cli *cli, int argc, char **argv)
{
	int json = 0, set = 0;
	const struct ag_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	int64_t x, value;
	size_t i;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n < 1 || n > 2)
		return ag_cli_usage(cli, "give a setting and maybe a value");
	for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++)
		if (strcmp(settings[i].name, argv[1]) == 0)
			break;
	if (i == sizeof(settings) / sizeof(settings[0]))
		return ag_cli_usage(cli, "unknown setting '%s' (retention-days, "
		    "lock-idle-seconds, max-failed-unlocks)", argv[1]);
	if (n == 2 && gs_parse_i64(argv[2], settings[i].min, settings[i].max,
	    &x) != GS_OK)
		return ag_cli_usage(cli, "%s is %lld..%lld", argv[1],
		    (long long)settings[i].min, (long long)settings[i].max);
	if ((ex = n == 2 ? ag_cli_open(cli, &st) :
	    ag_cli_open_read(cli, &st)) >= 0)
		return ex;
	r = GS_OK;
	if (n == 2 && settings[i].key == NULL) {
		/* max-failed-unlocks lives in the keyring row. */
		struct gs_stmt *s = NULL;

		r = gs_stmt_prepare(ag_store_db(st), "UPDATE keyring SET "
		    "max_failures = ?1 WHERE id = 1", &s);
		if (r == GS_OK && (r = gs_stmt_bind_int64(s, 1, x)) == GS_OK &&
		    (r = gs_stmt_step(s)) == GS_DONE)
			r = GS_OK;
		gs_stmt_finalize(s);
	} else if (n == 2) {
		r = ag_store_meta_set(st, settings[i].key, argv[2]);
	}
	/* Showing: the value in force; --json also with a VALUE, what is
	 * now in force (one document). */
	if (r == GS_OK && (n == 1 || json) &&
	    (r = setting_get(st, i, &value, &set)) == GS_OK) {
		if (json) {
			json_t *o = json_pack("{s:s, s:I, s:I, s:b}",
			    "setting", settings[i].name, "value",
			    (json_int_t)value, "default",
			    (json_int_t)settings[i].dflt, "set", set);
			char *s = o != NULL ? json_dumps(o, JSON_COMPACT) :
			    NULL;

			json_decref(o);
			if (s == NULL)
				r = GS_FAIL(GS_ENOMEM, "config: out of memory");
			else
				puts(s);
			free(s);
		} else {
			print_setting(i, value, set);
		}
	}
	ex = r == GS_OK ? GS_EX_OK : ag_cli_error(r);
	ag_store_close(st);
	if (ex == GS_EX_OK && fflush(stdout) != 0)
		ex = GS_EX_IOERR;
	return ex;
}

int
ag_cmd_purge(struct ag_cli *cli, int argc, char **argv)
{
	const char *days = NULL;
	const struct ag_opt opts[] = {
		{ "days", &days, NULL },
		{ NULL, NULL, NULL },
	};
	struct ag_store *st = NULL;
	struct gs_progress pg;
	int64_t d = -1;
	size_t count = 0;
	int r, n, ex;

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n != 0)
		return ag_cli_usage(cli, "unexpected argument '%s'", argv[1]);
	if (days != NULL && gs_parse_i64(days, 0, 36500, &d) != GS_OK)
		return ag_cli_usage(cli, "--days is 0..36500");
	if ((ex = ag_cli_open(cli, &st)) >= 0)
		return ex;
	gs_progress_init(&pg);
	ag_store_set_progress(st, &pg);
	r = ag_purge(st, (int)d, gs_now_ms(), &count);
	ag_store_set_progress(st, NULL);
	if (r == GS_OK)
		printf("%zu records purged\n", count);
	ex = r == GS_OK ? GS_EX_OK : ag_cli_error(r);
	ag_store_close(st);
	return ex;
}

struct find_ctx {
	struct ag_store *st;
	int reveal, json;
	size_t n;
	int r;
};

static void
found_one(void *ctx, const char *uuid)
{
	struct find_ctx *c = ctx;
	char *text = NULL;
	int r;

	if (c->r != GS_OK)
		return;
	r = c->reveal ? ag_get(c->st, uuid, &text) :
	    ag_get_masked(c->st, uuid, &text);
	if (r != GS_OK) {
		c->r = r;
		return;
	}
	if (c->json)
		puts(text);
	else
		printf("%s\n", uuid);
	c->n++;
	ag_free(text);
}

int
ag_cli_find(struct ag_store *st, const char *id_number, int reveal, int json)
{
	struct find_ctx c = { st, reveal, json, 0, GS_OK };
	int r;

	if (reveal && (r = ag_store_audit(st, "reveal", NULL, NULL,
	    "{\"what\":\"find\"}")) != GS_OK)
		return r;
	r = ag_find_id_number(st, id_number, found_one, &c);
	if (r == GS_OK)
		r = c.r;
	if (r == GS_OK && !json)
		fprintf(stderr, "%zu records\n", c.n);
	return r;
}

int
ag_cli_pass_for_new_home(const char *home, const char *passfile,
    char **pass, size_t *len)
{
	char path[4200];
	struct stat sb;
	int r;

	*pass = NULL;
	*len = 0;
	snprintf(path, sizeof(path), "%s/agent.db", home);
	if (passfile == NULL && stat(path, &sb) == 0)
		return GS_OK; /* an existing home keeps its own protection */
	r = passfile != NULL ? ag_keys_read_passfile(passfile, pass, len) :
	    ag_keys_read_tty("new passphrase: ", pass, len);
	if (r == GS_OK)
		r = ag_keys_policy(*pass, *len, 0);
	if (r != GS_OK) {
		gs_crypto_secure_free(*pass);
		*pass = NULL;
	}
	return r;
}

int
ag_cli_protect_home(const char *home, const char *pass, size_t len)
{
	struct ag_store *st = NULL;
	int r;

	if ((r = ag_store_open(home, &st)) != GS_OK)
		return r;
	if ((r = ag_session_resume(st)) == GS_OK && !ag_store_protected(st)) {
		if ((r = ag_store_protect(st, pass, len)) == GS_OK)
			r = ag_session_start(st);
	}
	ag_store_close(st);
	return r;
}
