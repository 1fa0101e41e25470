/*
 * cli_sync.c - the sync commands of gridagent: enroll and sync.  (The sync
 * half of `status` is ag_sync_status in sync.c, called from status.c.)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "cli.h"
#include "crypto.h"
#include "device.h"
#include "gridagent.h"
#include "sync.h"
#include "core/banned.h"

static volatile sig_atomic_t stop_requested;

static void
on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* SIGINT/SIGTERM ask the loop to stop between steps (and cancel a
 * transfer); no SA_RESTART, so a sleep is cut short too. */
static void
catch_stop(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	(void)sigaction(SIGINT, &sa, NULL);
	(void)sigaction(SIGTERM, &sa, NULL);
}

static int
fail_line(int r, const char *msg)
{
	fprintf(stderr, "%s: %s\n", gs_log_program(), msg);
	return gs_error_exit(r);
}

int
ag_cmd_enroll(struct ag_cli *cli, int argc, char **argv)
{
	const char *platform = NULL, *passfile = NULL;
	int json = 0, npos = 0, rc;
	const struct ag_opt opts[] = {
	    {"platform", &platform, NULL},
	    {"json", NULL, &json},
	    {"passphrase-file", &passfile, NULL},
	    {NULL, NULL, NULL},
	};
	struct ag_enroll_result res;
	char *home = NULL, *pass = NULL;
	size_t plen = 0;
	int r;

	if ((rc = ag_cli_parse(cli, opts, argc, argv, &npos)) >= 0)
		return rc;
	if (npos != 1)
		return ag_cli_usage(cli, "enroll needs exactly one CODE");
	if ((home = ag_cli_home(cli)) == NULL)
		return GS_EX_USAGE;
	/* A home that enrollment makes is protected at once (issue 6): the
	 * passphrase is read and checked before the platform is asked. */
	r = ag_cli_pass_for_new_home(home, passfile, &pass, &plen);
	if (r == GS_OK)
		r = ag_enroll(home, argv[1], platform, &res);
	if (r == GS_OK && pass != NULL)
		r = ag_cli_protect_home(home, pass, plen);
	gs_crypto_secure_free(pass);
	gs_free(home);
	if (r != GS_OK) {
		rc = ag_cli_error(r);
		/* A command that needs the platform and cannot reach it
		 * says so with 69 (DESIGN.md section 7). */
		return gs_error_class(r) == GS_CLASS_RETRY ? GS_EX_UNAVAILABLE
							   : rc;
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "device_id",
		    res.device_id, "worker", res.worker, "grid", res.grid,
		    "platform", res.platform);

		if (o == NULL || json_dumpf(o, stdout, JSON_COMPACT) != 0) {
			json_decref(o);
			return fail_line(GS_ENOMEM, "out of memory");
		}
		json_decref(o);
		fputc('\n', stdout);
	} else {
		printf("%s\n", res.device_id);
	}
	return fflush(stdout) == 0 ? GS_EX_OK : GS_EX_IOERR;
}

int
ag_cmd_sync(struct ag_cli *cli, int argc, char **argv)
{
	const char *max_backoff = NULL, *platform = NULL, *retries = NULL,
		   *interval = NULL, *brecords = NULL, *bbytes = NULL,
		   *in_flight = NULL, *pull_interval = NULL;
	int json = 0, watch = 0, npos = 0, rc;
	const struct ag_opt opts[] = {
	    {"watch", NULL, &watch},
	    {"json", NULL, &json},
	    {"max-backoff", &max_backoff, NULL},
	    {"retries", &retries, NULL},
	    {"interval", &interval, NULL},
	    {"pull-interval", &pull_interval, NULL},
	    {"platform", &platform, NULL},
	    {"batch-records", &brecords, NULL},
	    {"batch-bytes", &bbytes, NULL},
	    {"in-flight", &in_flight, NULL},
	    {NULL, NULL, NULL},
	};
	struct ag_sync_opts o;
	struct ag_sync_summary sum;
	struct ag_store *st = NULL;
	uint64_t v;
	int r;

	if ((rc = ag_cli_parse(cli, opts, argc, argv, &npos)) >= 0)
		return rc;
	if (npos != 0)
		return ag_cli_usage(cli, "sync takes no arguments");
	ag_sync_opts_default(&o);
	if (max_backoff != NULL) {
		if (gs_parse_u64(max_backoff, 86400, &v) != GS_OK || v == 0)
			return ag_cli_usage(cli, "--max-backoff wants seconds "
						 "(1..86400)");
		o.max_backoff_ms = (int64_t)v * 1000;
		if (o.base_backoff_ms > o.max_backoff_ms)
			o.base_backoff_ms = o.max_backoff_ms;
	}
	if (retries != NULL) {
		if (gs_parse_u64(retries, 100, &v) != GS_OK)
			return ag_cli_usage(cli, "--retries wants 0..100");
		o.retries = (int)v;
	}
	if (interval != NULL) {
		if (gs_parse_u64(interval, 86400, &v) != GS_OK || v == 0)
			return ag_cli_usage(cli, "--interval wants seconds "
						 "(1..86400)");
		o.idle_ms = (int64_t)v * 1000;
	}
	if (pull_interval != NULL) {
		if (gs_parse_u64(pull_interval, 86400, &v) != GS_OK)
			return ag_cli_usage(cli, "--pull-interval wants seconds "
						 "(0..86400)");
		o.pull_ms = (int64_t)v * 1000;
	}
	if (brecords != NULL) {
		if (gs_parse_u64(brecords, 1000000, &v) != GS_OK || v == 0)
			return ag_cli_usage(cli, "--batch-records wants a "
						 "positive count");
		o.batch_records = (uint32_t)v;
	}
	if (bbytes != NULL) {
		if (gs_parse_u64(bbytes, (uint64_t)1 << 30, &v) != GS_OK ||
		    v < 1024)
			return ag_cli_usage(cli, "--batch-bytes wants at least "
						 "1024");
		o.batch_bytes = (size_t)v;
	}
	if (in_flight != NULL) {
		if (gs_parse_u64(in_flight, 2, &v) != GS_OK || v == 0)
			return ag_cli_usage(cli, "--in-flight wants 1 or 2");
		o.in_flight = (int)v;
	}
	o.watch = watch;
	o.platform = platform;
	o.progress = isatty(STDERR_FILENO);
	o.stop = &stop_requested;
	catch_stop();

	if ((rc = ag_cli_open(cli, &st)) >= 0)
		return rc;
	r = ag_sync_run(st, &o, &sum);
	ag_store_close(st);

	if (json) {
		json_t *s = ag_sync_summary_json(&sum);

		if (s == NULL || json_dumpf(s, stdout, JSON_COMPACT) != 0) {
			json_decref(s);
			return fail_line(GS_ENOMEM, "out of memory");
		}
		json_decref(s);
		fputc('\n', stdout);
	} else if (r == GS_OK) {
		char size[GS_TEXT_MAX], took[GS_TEXT_MAX];

		/* What went up, with its size and how long the run took;
		 * nothing in words (a "0 batch(es)" reads like a failure). */
		if (sum.acked_batches > 0)
			printf("all acked: %llu batch(es), %llu record(s) "
			    "sent, %s in %s",
			    (unsigned long long)sum.acked_batches,
			    (unsigned long long)sum.acked_records,
			    gs_size_text(size, sizeof(size), sum.bytes_sent),
			    gs_duration_text(took, sizeof(took),
			    sum.elapsed_ms));
		else
			printf("all acked: nothing waiting to be sent");
		if (sum.pulled_records || sum.pulled_tasks ||
		    sum.pulled_reviews)
			printf("; received %llu record(s), %llu task(s), %llu "
			    "review(s)", (unsigned long long)sum.pulled_records,
			    (unsigned long long)sum.pulled_tasks,
			    (unsigned long long)sum.pulled_reviews);
		putchar('\n');
	}
	if (fflush(stdout) != 0)
		return GS_EX_IOERR;
	if (r != GS_OK) {
		if (gs_error_class(r) == GS_CLASS_RETRY && stop_requested)
			fprintf(stderr,
			    "%s: stopped by a signal; %llu batch(es) and "
			    "%llu unsent change(s) kept for later\n",
			    gs_log_program(),
			    (unsigned long long)sum.pending_batches,
			    (unsigned long long)sum.unsent);
		else if (gs_error_class(r) == GS_CLASS_RETRY &&
		    sum.pending_batches == 0 && sum.unsent == 0)
			fprintf(stderr,
			    "%s: platform unreachable (%s); nothing "
			    "waiting to be sent\n",
			    gs_log_program(), sum.message);
		else if (gs_error_class(r) == GS_CLASS_RETRY)
			fprintf(stderr,
			    "%s: platform unreachable (%s); "
			    "%llu batch(es) and %llu unsent change(s) kept "
			    "for later\n",
			    gs_log_program(), sum.message,
			    (unsigned long long)sum.pending_batches,
			    (unsigned long long)sum.unsent);
		else
			fprintf(
			    stderr, "%s: %s\n", gs_log_program(), sum.message);
		return gs_error_exit(r);
	}
	return GS_EX_OK;
}
