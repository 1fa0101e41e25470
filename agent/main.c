/*
 * main.c - gridagent: global options, then one command from the table.
 *
 *	gridagent [--home DIR] COMMAND [ARGS...]
 *	gridagent --help | --version | help [COMMAND]
 *
 * Exit codes are sysexits (DESIGN.md section 7): 0 ok, 64 usage, 65
 * invalid data, 66 no input file, 69 platform unreachable, 70 internal,
 * 73/74 cannot create / I/O, 75 try later, 77 not permitted (also: the
 * home is not initialized, run init first).
 */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "cli.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "gridagent.h"
#include "json.h"
#include "pull.h"
#include "core/banned.h"

/* One row per command, in the order `gridagent --help` lists them. */
const struct ag_command ag_commands[] = {
	{ "init", ag_cmd_init,
	  "[--grid CODE] [--worker ID] [--passphrase-file FILE] "
	  "[--retention-days N]",
	  "Create the agent's home and its local store.",
	  "The home directory is made mode 0700 and agent.db in it 0600.\n"
	  "--grid is the worker's primary grid (records belong to it),\n"
	  "--worker the worker id; enrollment may set both later.  Neither\n"
	  "may hold a control character, quote or backslash (exit 64).\n"
	  "The passphrase (asked on the terminal, or the first line of\n"
	  "--passphrase-file) protects the personal data in the store: at\n"
	  "least 10 characters, 16 if digits only.  init leaves the store\n"
	  "unlocked (see 'gridagent unlock').\n" },
	{ "collect", ag_cmd_collect, "TYPE NAME=VALUE... | TYPE --json FILE|-",
	  "Save a new record; prints its uuid.",
	  "TYPE is person, house, org, event or visit.  Each NAME=VALUE sets\n"
	  "one field, once (see schema/forms); the record is validated\n"
	  "before it is saved and nothing is saved if any field is wrong\n"
	  "(exit 65).  A time is typed with its zone, such as\n"
	  "occurred_at=2026-11-26T15:04:33+08:00, and saved in UTC.\n"
	  "--json FILE reads one JSON object of fields, or NDJSON (one\n"
	  "object per line) for a bulk import: all lines are saved in one\n"
	  "transaction or none is, and every bad line is reported with its\n"
	  "line number; its times must already be UTC (\"...Z\").  FILE -\n"
	  "is standard input; the limit is 256 MiB.\n"
	  "Prints the new uuids, one per line.  On a terminal, a line on\n"
	  "stderr counts the lines checked while a bulk import runs.\n" },
	{ "edit", ag_cmd_edit, "UUID NAME=VALUE...",
	  "Change fields of a record (NAME= with no value clears a field).",
	  "The whole record as edited must still be valid.  Prints the "
	  "uuid.\n" },
	{ "delete", ag_cmd_delete, "UUID [--reason TEXT]",
	  "Delete a record (kept as a tombstone until the platform has it).",
	  "--reason goes to the platform with the delete: at most 500\n"
	  "bytes (exit 65), line breaks allowed but no other control\n"
	  "character (exit 64).  Prints the uuid.\n" },
	{ "list", ag_cmd_list,
	  "[TYPE] [--all] [--json] [--reveal] [--id-number NUMBER]",
	  "List records, oldest first (--all: include deleted ones).",
	  "--json prints one JSON object per line with uuid, type,\n"
	  "form_version, grid, rev, deleted, created_at, updated_at, author\n"
	  "and fields.  Personal data is masked unless --reveal (audited;\n"
	  "exit 77 while locked).  --id-number lists the records whose\n"
	  "id_number is NUMBER, found by the blind index (exit 77 while\n"
	  "locked).  The count goes to stderr (\"5 records\", or \"no records\n"
	  "of type TYPE\").\n" },
	{ "show", ag_cmd_show, "UUID [--json] [--reveal]", "Show one record.",
	  "Personal data is masked unless --reveal (audited; exit 77 while\n"
	  "locked).  When the platform refused its last change (rejected,\n"
	  "quarantined or conflicted) and has no newer revision, the state\n"
	  "says so with the reasons (--json: sync_problem).\n" },
	{ "status", ag_cmd_status, "[--json]",
	  "Show the worker, grid, records by type and changes by state.",
	  "Also the sync state (outbox, chain, pull cursor, tasks, review\n"
	  "verdicts), the records whose change was rejected, quarantined or\n"
	  "conflicted, newest first, with the reasons (problem_records, at\n"
	  "most 20; 'gridagent show UUID' shows one's), the form versions\n"
	  "held (reference: built in or fetched\n"
	  "from the platform; reference_stale lists what differs from the\n"
	  "platform's, reference_error the last failed fetch), the key\n"
	  "bundle serial held (key_bundle) and the clock: whether the device\n"
	  "clock reads before 2026-01-01 (then it is wrong: set the date\n"
	  "and time), how far the platform's clock was ahead at the last sync,\n"
	  "and a warning when either is off.  Times are ISO 8601 UTC (\"never\"\n"
	  "when none), sizes in B/KiB/MiB, durations in ms/s/min/h, empty\n"
	  "parts \"none\"; --json keeps milliseconds since 1970 and bytes.\n" },
	{ "attach", ag_cmd_attach,
	  "UUID FILE [--phase BEFORE|DURING|AFTER] [--note TEXT] "
	  "[--location LAT,LON,ACC,SYS] [--taken-at MS] [--keep] "
	  "[--chunk BYTES] [--json]",
	  "Attach a photo or file to a record; prints its hash.",
	  "The file is sealed for the platform at once (only the platform\n"
	  "can open it, not even this device) and named in the record's\n"
	  "attachments with its type, size, hash, time taken (default: the\n"
	  "file's modification time) and --location.  'gridagent sync'\n"
	  "uploads it after the records, resumably; the same file attached\n"
	  "twice is sealed and sent once.  --keep keeps a plaintext copy\n"
	  "in the home until the platform has receipted it.  Files over the\n"
	  "platform's limit are refused (exit 65).  Needs an enrolled\n"
	  "device (exit 77 otherwise).  --chunk sets the plaintext bytes\n"
	  "per sealed message, 1024..1048576 (default 65536).\n" },
	{ "tasks", ag_cmd_tasks, "[--json]",
	  "List the tasks the platform assigned to this worker.",
	  "Tasks arrive with 'gridagent sync'.  A visit whose task field names\n"
	  "a task closes it (on the platform; the device hears it on the next\n"
	  "sync).  One line a task, open ones first; a done one ends with\n"
	  "the visit that closed it.  With none: \"no tasks\" on stderr.\n"
	  "--json prints an array of {id, kind, subject, due, title, status,\n"
	  "closed_by}.\n" },
	{ "enroll", ag_cmd_enroll,
	  "CODE [--platform URL] [--json] [--passphrase-file FILE]",
	  "Enroll this device with the platform; prints the device id.",
	  "CODE is the one-time code an admin made with 'gridplatform\n"
	  "enroll'.  The device makes its own keys; the platform's root key\n"
	  "is pinned only if it matches the fingerprint in the code, and\n"
	  "the platform's other keys only from a bundle it signed.\n"
	  "--platform URL reaches the platform at another address than the\n"
	  "one in the code.  Records saved before, on a home made without\n"
	  "--worker or --grid and not yet sealed, get the enrolled worker\n"
	  "and grid.  Exit 64 when the code is damaged (its checksum,\n"
	  "before any traffic), 77 when the platform refuses it (used or\n"
	  "expired), 65 when the platform's keys do not match the code,\n"
	  "69 when the platform cannot be reached; nothing is stored on\n"
	  "any failure.\n"
	  "On a home 'gridagent init' has not made, enroll makes it (the\n"
	  "worker and grid from the code) and asks for its passphrase as\n"
	  "init does, or reads the first line of --passphrase-file.\n" },
	{ "sync", ag_cmd_sync,
	  "[--watch] [--json] [--max-backoff SECONDS] [--retries N] "
	  "[--interval SECONDS] [--pull-interval SECONDS] "
	  "[--platform URL] [--batch-records N] "
	  "[--batch-bytes N] [--in-flight N]",
	  "Seal unsent changes into batches and upload them; then pull.",
	  "After the upload the device sends its heartbeat and pulls what\n"
	  "others and the admins changed in its worker's grids, its tasks\n"
	  "and review verdicts.  The last line counts what was sent (its\n"
	  "size and how long it took, or \"nothing waiting to be sent\") and\n"
	  "received (--json: acked_records, pulled_records, pulled_tasks,\n"
	  "pulled_reviews, ...); on a terminal, progress lines count the\n"
	  "batches, each attachment's upload and the pull's pages.\n"
	  "Exit 0 when every batch is acked by a verified receipt, 75 when\n"
	  "the platform is unreachable (everything kept for later), 77 when\n"
	  "the device is revoked or not enrolled, or locked with changes\n"
	  "that wait for 'gridagent unlock' to be sealed (what was sealed\n"
	  "is delivered all the same), 65 when the platform refused a\n"
	  "batch for good (kept on the device; see status), a change\n"
	  "damaged in the store cannot be sent at all (marked rejected,\n"
	  "kept; --json: unsendable) or a reference document (form, code\n"
	  "table) does not match the signed feed's digest (the ones held\n"
	  "are kept; see reference_error in status).\n"
	  "--watch keeps going as coverage comes and goes: a cheap health\n"
	  "probe with exponential backoff and full jitter capped at\n"
	  "--max-backoff (default 300 s), a sync the moment it answers, and\n"
	  "a look for new saves every --interval (default 2 s).  While\n"
	  "there is nothing to send it still syncs every --pull-interval\n"
	  "(default 300 s; 0: only after new saves), so tasks, verdicts\n"
	  "and others' changes come down and the platform hears the\n"
	  "heartbeat.  A refused reference document does not stop it: it\n"
	  "says so in one line each round and asks again the next.\n"
	  "SIGINT or SIGTERM stop it cleanly.\n"
	  "--retries N: extra attempts of a failed request in a one-shot\n"
	  "sync (default 2).  --batch-records and --batch-bytes make\n"
	  "batches smaller than the platform allows (a weak link loses\n"
	  "less per failed upload).  Batches go in seq order, two at once\n"
	  "on two connections when the platform takes that (the next one\n"
	  "goes before the last is answered, so a slow link is not idle a\n"
	  "round trip per batch); --in-flight 1 sends one at a time, on\n"
	  "one connection.\n" },
	{ "rekey", ag_cmd_rekey, "[--platform URL]",
	  "Rotate this device's identity key; prints the new key id.",
	  "The device makes a new key; its current key signs the new one,\n"
	  "and the platform records the chain.  Batches sealed before are\n"
	  "still accepted.  Exit 69 when the platform cannot be reached\n"
	  "(run it again: the same new key is used).\n" },
	{ "unlock", ag_cmd_unlock, "[--passphrase-file FILE]",
	  "Unlock the personal data in the store (asks for the passphrase).",
	  "The passphrase comes from the terminal without echo, or from the\n"
	  "first line of FILE.  The store stays unlocked for this user until\n"
	  "'gridagent lock', a reboot, or lock-idle-seconds (default 900)\n"
	  "without a command.  Each wrong passphrase is counted; at\n"
	  "max-failed-unlocks (default 10) the data key is destroyed and\n"
	  "the personal data on this device is gone for good.  While\n"
	  "locked, collect, edit, show --reveal, list --reveal and list\n"
	  "--id-number exit 77; list and show mask personal data; sync\n"
	  "uploads only what was sealed before, and exits 77 when new\n"
	  "changes wait for the unlock.\n" },
	{ "lock", ag_cmd_lock, "", "Lock the personal data now.", NULL },
	{ "config", ag_cmd_config, "SETTING [VALUE] [--json]",
	  "Show or set retention-days, lock-idle-seconds, max-failed-unlocks.",
	  "retention-days: records the platform has receipted keep their\n"
	  "personal data this many days (default 30), then 'gridagent\n"
	  "purge' (also run by sync) removes it and keeps a stub.\n"
	  "lock-idle-seconds: an unlock lasts this long after the last\n"
	  "command that used it (default 900).  max-failed-unlocks: wrong\n"
	  "passphrases before the data key is destroyed (default 10).\n"
	  "Without VALUE it prints the value in force with its unit\n"
	  "(\"30 days\", \"900 s = 15 min\"), followed by \"(default)\" when\n"
	  "it was never set.  --json prints one object (plain numbers):\n"
	  "{\"setting\", \"value\" (in force), \"default\", \"set\" (false\n"
	  "when never set; max-failed-unlocks is set by init)}; with\n"
	  "VALUE, after setting it.\n" },
	{ "purge", ag_cmd_purge, "[--days N]",
	  "Remove the personal data of records receipted long enough ago.",
	  "--days N: receipted at least N days ago (default: the setting\n"
	  "retention-days).  Prints \"N records purged\".  On a terminal, a\n"
	  "line on stderr counts the records stripped while it runs.\n" },
};
const size_t ag_ncommands = sizeof(ag_commands) / sizeof(ag_commands[0]);

static const struct ag_command *
find_command(const char *name)
{
	size_t i;

	for (i = 0; i < ag_ncommands; i++)
		if (strcmp(ag_commands[i].name, name) == 0)
			return &ag_commands[i];
	return NULL;
}

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: gridagent [--home DIR] COMMAND [ARGS...]\n"
		   "       gridagent --help | --version | help COMMAND\n\n"
		   "The gridsync agent: collects records on the handheld and "
		   "keeps them until\nthe platform has them.\n\nCommands:\n");
	for (i = 0; i < ag_ncommands; i++)
		fprintf(f, "  %-9s %s\n", ag_commands[i].name,
		    ag_commands[i].summary);
	fprintf(f, "\nThe home is --home DIR, else $GRIDAGENT_HOME, else "
		   "~/.gridagent.\n'gridagent COMMAND --help' tells more.\n"
		   "\nExit codes: 0 ok, 64 usage, 65 invalid data, 66 no "
		   "input file, 69 platform\nunreachable, 70 internal, 73 "
		   "cannot create, 74 I/O error, 75 try later,\n77 not "
		   "permitted (also: home not initialized, run "
		   "'gridagent init').\n");
}

/*
 * stdout's buffer is this array, not a block stdio would malloc and free
 * at exit holding the last of what was printed (a record shown with
 * --reveal): it is wiped after the last flush.
 */
static char out_buf[BUFSIZ];

static void
wipe_out_buf(void)
{
	(void)fflush(stdout);
	explicit_bzero(out_buf, sizeof(out_buf));
}

static int
run(int argc, char **argv)
{
	struct ag_cli cli = { 0 };
	const struct ag_command *c;
	int i;

	gs_log_set_program("gridagent");
	(void)setvbuf(stdout, out_buf, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF,
	    sizeof(out_buf));
	(void)atexit(wipe_out_buf);
	/* The values jansson frees held residents' data (sync/json.h). */
	if ((i = gs_json_wipe_frees()) != GS_OK) {
		fprintf(stderr, "gridagent: %s\n", gs_errmsg(i));
		return GS_EX_SOFTWARE;
	}
#ifdef M_MMAP_THRESHOLD
	/* A sync allocates and frees buffers of a few MiB per batch (its
	 * NDJSON, deflated and sealed copies).  By default glibc gives the
	 * heap's top back after each and grows it again for the next, so
	 * every batch faulted its pages in anew: a 30,000-record sync had
	 * 19,000 page faults and 0.25 s of system time, 6,200 and 0.15 s
	 * with these (bench/RESULTS.md).  Both settings only keep memory
	 * the process has already used. */
	(void)mallopt(M_MMAP_THRESHOLD, 16 << 20);
	(void)mallopt(M_TRIM_THRESHOLD, 64 << 20);
#endif
	/* Global options come before the command. */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return GS_EX_OK;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			printf("gridagent %s\n", GRIDAGENT_VERSION);
			return GS_EX_OK;
		}
		if (strcmp(a, "--home") == 0 || strncmp(a, "--home=", 7) == 0) {
			/* An empty one ("--home $UNSET") is refused, not taken
			 * for no --home: that would be the default home, the
			 * worker's real store, where a script meant another. */
			if (a[6] == '=')
				cli.home_opt = a + 7;
			else if (i + 1 < argc)
				cli.home_opt = argv[++i];
			else
				cli.home_opt = "";
			if (cli.home_opt[0] == '\0') {
				fprintf(stderr, "gridagent: --home needs a "
						"directory\n");
				return GS_EX_USAGE;
			}
		} else {
			fprintf(stderr, "gridagent: unknown option %s\n", a);
			usage(stderr);
			return GS_EX_USAGE;
		}
	}
	if (i == argc) {
		fprintf(stderr, "gridagent: no command given\n");
		usage(stderr);
		return GS_EX_USAGE;
	}
	if (strcmp(argv[i], "help") == 0) {
		if (i + 1 == argc) {
			usage(stdout);
			return GS_EX_OK;
		}
		if ((c = find_command(argv[i + 1])) == NULL) {
			fprintf(stderr, "gridagent: no command '%s'\n",
			    argv[i + 1]);
			return GS_EX_USAGE;
		}
		cli.cmd = c;
		{
			char *hv[] = { argv[i + 1], (char *)"--help", NULL };
			int n;

			return ag_cli_parse(&cli, NULL, 2, hv, &n);
		}
	}
	if ((c = find_command(argv[i])) == NULL) {
		fprintf(stderr, "gridagent: no command '%s' (see 'gridagent "
				"--help')\n", argv[i]);
		return GS_EX_USAGE;
	}
	cli.cmd = c;
	return c->fn(&cli, argc - i, argv + i);
}

/*
 * What a command printed must have reached its reader.  With stdout
 * closed, on /dev/full or a full disk, list, status and collect exited 74
 * without a word, and --help and --version exited 0.  A command that
 * reports its own output error (collect: saved, but its uuid unprinted)
 * clears the stream's error flag.
 */
int
main(int argc, char **argv)
{
	int ex = run(argc, argv), err = gs_stdout_error();

	if (err != 0 && (ex == GS_EX_OK || ex == GS_EX_IOERR)) {
		fprintf(stderr, "gridagent: cannot write the output: %s\n",
		    strerror(err));
		ex = GS_EX_IOERR;
	}
	return ex;
}
