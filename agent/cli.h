/*
 * cli.h - the gridagent command line: the command table (main.c), the
 * commands, and the helpers every command uses so that they all parse
 * options, open the store and report errors the same way.
 *
 * A command is a function `int cmd(struct ag_cli *cli, int argc, char
 * **argv)` that returns the process exit code (sysexits, via
 * ag_cli_error).  argv[0] is the command name; options are parsed with
 * ag_cli_parse.  Adding a command = writing the function, declaring it
 * below, and adding a row to the table in main.c.
 */
#ifndef AG_CLI_H
#define AG_CLI_H

#include <stddef.h>

struct ag_store;
struct ag_cli;

typedef int (*ag_cmd_fn)(struct ag_cli *cli, int argc, char **argv);

struct ag_command {
	const char *name;
	ag_cmd_fn fn;
	const char *usage;   /* after "gridagent NAME ", e.g. "UUID [--json]" */
	const char *summary; /* one line for the command list */
	const char *help;    /* more lines for `NAME --help`, or NULL */
};

/* The global state of one run. */
struct ag_cli {
	const char *home_opt;           /* --home as given, or NULL */
	const struct ag_command *cmd;   /* the command being run */
};

/* One option of a command.  Exactly one of value/flag is set. */
struct ag_opt {
	const char *name;     /* "json" for --json */
	const char **value;   /* --name VALUE or --name=VALUE */
	int *flag;            /* --name: set to 1 */
};

/*
 * Parses argv[1..argc-1] of a command against opts (terminated by a
 * {NULL} row).  --home DIR and --help are understood everywhere; "--" ends
 * options.  The positional arguments are moved to the front of argv+1, in
 * order, and counted in *npos.  Returns -1 to go on, or an exit code to
 * return now: 0 after printing help, 64 after a usage error (already
 * printed).
 */
int ag_cli_parse(struct ag_cli *cli, const struct ag_opt *opts, int argc,
    char **argv, int *npos);

/* Prints "gridagent: MESSAGE" (the detail of err) and returns its exit
 * code (gs_error_exit). */
int ag_cli_error(int err);
/* Prints "gridagent: ..." plus a hint to --help and returns 64. */
int ag_cli_usage(struct ag_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * Opens the store of this run (--home, $GRIDAGENT_HOME, ~/.gridagent).
 * Returns -1 with *out set, or the exit code after printing the error:
 * 77 when the home is not initialized ("run 'gridagent init' first").
 */
int ag_cli_open(struct ag_cli *cli, struct ag_store **out);
/* ag_cli_open for a command that only reads (list, show, status, tasks,
 * config SETTING): on a home that cannot be written the store is opened
 * read-only (ag_store_open_read) and one warning line says so. */
int ag_cli_open_read(struct ag_cli *cli, struct ag_store **out);
/* The resolved home directory (gs_free), or NULL after printing why. */
char *ag_cli_home(struct ag_cli *cli);

/* Prints a validation problem: "gridagent: [line N: ]field: message".
 * Usable as an ag_problem_fn (ctx is ignored). */
void ag_cli_problem(void *ctx, size_t line, const char *field,
    const char *rule, const char *message);

/* The command table (main.c) and its length. */
extern const struct ag_command ag_commands[];
extern const size_t ag_ncommands;

/* The store commands (cli.c). */
int ag_cmd_init(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_collect(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_edit(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_delete(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_list(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_show(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_status(struct ag_cli *cli, int argc, char **argv);

/* The sync commands (enroll, sync, tasks) are declared here too. */
int ag_cmd_enroll(struct ag_cli *cli, int argc, char **argv); /* cli_sync.c */
int ag_cmd_sync(struct ag_cli *cli, int argc, char **argv);   /* cli_sync.c */
int ag_cmd_rekey(struct ag_cli *cli, int argc, char **argv);  /* rekey.c */
/* cli_pii.c: personal data at rest (issue 6) */
int ag_cmd_unlock(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_lock(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_config(struct ag_cli *cli, int argc, char **argv);
int ag_cmd_purge(struct ag_cli *cli, int argc, char **argv);
/* list --id-number: records found by the blind index, printed like list
 * (masked unless reveal; reveal is audited). */
int ag_cli_find(struct ag_store *st, const char *id_number, int reveal,
    int json);
/* enroll: the passphrase for a home enrollment will make (or when
 * passfile is given), checked against the policy; *pass NULL when an
 * existing home needs none.  Then protect that home and unlock it. */
int ag_cli_pass_for_new_home(const char *home, const char *passfile,
    char **pass, size_t *len);
int ag_cli_protect_home(const char *home, const char *pass, size_t len);

#endif
