/*
 * tasks.c - `gridagent tasks [--json]`: the tasks the platform sent to
 * this device's worker (pulled by `gridagent sync`), open ones first.
 * A visit whose "task" field names a task closes it on the platform; the
 * closed state comes back on the next pull.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "core/error.h"
#include "core/util.h"
#include "db.h"
#include "pull.h"
#include "store.h"
#include "core/banned.h"

int
ag_cmd_tasks(struct ag_cli *cli, int argc, char **argv)
{
	struct gs_stmt *s = NULL;
	struct ag_store *st = NULL;
	json_t *arr = NULL, *o;
	int r, n, ex, json = 0;
	size_t ntasks = 0;
	const char *t, *c;
	const struct ag_opt opts[] = {
		{ "json", NULL, &json },
		{ NULL, NULL, NULL },
	};

	if ((r = ag_cli_parse(cli, opts, argc, argv, &n)) >= 0)
		return r;
	if (n != 0)
		return ag_cli_usage(cli, "unexpected argument '%s'", argv[1]);
	if ((ex = ag_cli_open_read(cli, &st)) >= 0)
		return ex;
	if ((r = gs_stmt_prepare(ag_store_db(st), "SELECT id, kind, "
	    "coalesce(subject, ''), due, title, status, coalesce(closed_by, "
	    "'') FROM task ORDER BY status <> 'open', due, id", &s)) != GS_OK)
		goto out;
	if (json && (arr = json_array()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "tasks");
		goto out;
	}
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if (json) {
			o = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "id",
			    gs_stmt_text(s, 0), "kind", gs_stmt_text(s, 1),
			    "subject", gs_stmt_text(s, 2), "due",
			    gs_stmt_text(s, 3), "title", gs_stmt_text(s, 4),
			    "status", gs_stmt_text(s, 5), "closed_by",
			    gs_stmt_text(s, 6));
			if (o == NULL || json_array_append_new(arr, o) != 0) {
				r = GS_FAIL(GS_ENOMEM, "tasks");
				goto out;
			}
			continue;
		}
		t = gs_stmt_text(s, 2);
		c = gs_stmt_text(s, 6);
		ntasks++;
		printf("%-6s %s  due %s  %s  %s%s%s%s%s\n", gs_stmt_text(s, 5),
		    gs_stmt_text(s, 0), gs_stmt_text(s, 3), gs_stmt_text(s, 1),
		    gs_stmt_text(s, 4), *t ? "  subject " : "", t,
		    *c ? "  closed by " : "", c);
	}
	if (r != GS_DONE)
		goto out;
	r = GS_OK;
	/* None: said in words, on stderr like list's count, so that stdout
	 * holds task lines only. */
	if (!json && ntasks == 0)
		fputs("no tasks\n", stderr);
	/* An output error is main's to report (main.c). */
	if (json && json_dumpf(arr, stdout, JSON_INDENT(2)) == 0)
		(void)fputc('\n', stdout);
out:
	gs_stmt_finalize(s);
	json_decref(arr);
	ag_store_close(st);
	return r != GS_OK ? ag_cli_error(r) : gs_stdout_error() == 0 ?
	    GS_EX_OK : GS_EX_IOERR;
}
