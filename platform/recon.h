/*
 * recon.h - reconciliation for central admins (issue 4): the ledgers and
 * heartbeats, merge conflicts and their resolution, quarantine decisions,
 * review verdicts, tasks, the pull feed, stats.
 *
 *	recon_sql.c   the queries (SQLite, through pf_store_sqlite_stmt)
 *	reconcile.c   gridplatform reconcile [--json] [--grid] [--worker] [--check]
 *	admin.c       conflicts, resolve, quarantine, review, task, stats
 *	pull.c        POST /v1/devices/{id}/heartbeat, GET .../pull
 *
 * Commands take (pf, argc, argv) with argv[0] the command name and return
 * the process exit code (errors printed as one "gridplatform: " line).
 */
#ifndef PF_RECON_H
#define PF_RECON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "platform.h"
#include "store.h"

struct pf_request;
struct pf_response;

/* The statements of recon_sql.c, by purpose (slots of the store). */
enum pf_recon_q {
	PQ_BASE,
	PQ_CONFLICT_DETAIL,
	PQ_TASK_CLOSE,
	PQ_HB_PUT,
	PQ_DEVICES,
	PQ_MISSING,
	PQ_FORKS,
	PQ_BROKEN,
	PQ_TALLY,
	PQ_QOPEN,
	PQ_COPEN,
	PQ_CLOCK,
	PQ_CONFLICT_LIST,
	PQ_CONFLICT_GET,
	PQ_CONFLICT_DONE,
	PQ_RECORD_GET,
	PQ_RECORD_NEW,
	PQ_RECORD_SET,
	PQ_REVISION_ADD,
	PQ_CHANGE_SET,
	PQ_Q_LIST,
	PQ_Q_GET,
	PQ_Q_DECIDE,
	PQ_REVIEW_ADD,
	PQ_TASK_ADD,
	PQ_STATS,
	PQ_FEED_GRIDS,
	PQ_FEED_GRID,
	PQ_FEED_WORKER,
	PQ_FEED_TOP,
	PQ_FEED_REC,
	PQ_FEED_TASK,
	PQ_FEED_REVIEW,
	PQ_REVIEW_LAST,
	PQ_CONFLICT_ADD,
	PQ_REF_LIST,
	PQ_REF_SERIAL,
	PQ_REF_GET,
	PQ_REF_ADD,
	PQ_COUNT_
};

/* The prepared statement for q (prepared on first use).  GS_OK. */
int pf_recon_stmt(struct pf_store *st, enum pf_recon_q q,
    struct gs_stmt **out);
/* The text of q (tests read its query plan); NULL for no such query. */
const char *pf_recon_sql(enum pf_recon_q q);
/* Prepares every statement (a typo fails the first test).  GS_OK. */
int pf_recon_prepare_all(struct pf_store *st);

/*
 * The fields and tombstone of a record at revision rev (rev 0: none, GS_OK
 * with *fields NULL).  *fields is gs_malloc'd JSON text or NULL (deleted).
 * GS_ENOTFOUND when that revision is not kept.
 */
int pf_recon_base(struct pf_store *st, const char *uuid, int64_t rev,
    char **fields, int *deleted);

/* Adds the per-field detail to the conflict just stored for change_id. */
int pf_recon_conflict_detail(struct pf_store *st, const char *change_id,
    const char *fields_json, const char *merged_json, int merged_deleted);

/* A visit that names a task closes it (no-op when unknown or closed). */
int pf_recon_task_close(struct pf_store *st, const char *task_id,
    const char *visit_uuid, int64_t now);

/* The commands. */
int pf_cmd_reconcile(struct pf_platform *pf, int argc, char **argv);
int pf_cmd_conflicts(struct pf_platform *pf, int argc, char **argv);
int pf_cmd_resolve(struct pf_platform *pf, int argc, char **argv);
int pf_cmd_quarantine(struct pf_platform *pf, int argc, char **argv);
int pf_cmd_review(struct pf_platform *pf, int argc, char **argv);
int pf_cmd_task(struct pf_platform *pf, int argc, char **argv);
int pf_cmd_stats(struct pf_platform *pf, int argc, char **argv);

/* Shared by the commands: print an error line, return its exit code. */
int pf_recon_fail(int r);
/* Prints a JSON document (indented) on stdout.  GS_OK. */
int pf_recon_print_json(json_t *o);
/* The admin's name for the record: --by, else $USER, else "admin". */
const char *pf_recon_admin(const char *by);

/* HTTP: "/v1/devices/<32 hex>/pull" (*pull 1) or ".../heartbeat" (0):
 * 1 and the id copied into dev (33 bytes), else 0. */
int pf_recon_match(const char *path, char *dev, int *pull);

/*
 * The device part of a "/v1/devices/{32 chars}/..." path: copies the id
 * into dev (NUL-terminated) and returns what follows it ("/pull", ...),
 * or NULL when path does not start that way.  Shared by the device routes
 * so they match one way; api.c refuses an id that is not lower-case hex
 * (400 invalid_argument) on every one of them.
 */
const char *pf_path_device(const char *path, char dev[33]);
/* A device's GSQ1-signed request with since = 0 (pull.c): GS_OK and *d, or
 * GS_EUNKNOWNDEVICE / GS_EBADSIG / GS_EINVAL. */
int pf_recon_authenticate(struct pf_platform *pf,
    const struct pf_request *req, const char *dev_hex, struct pf_device *d);
/* Body cap of those routes for a method (0: no body). */
size_t pf_recon_body_max(const char *method, int pull);
/* HTTP: heartbeat (POST) and pull (GET) for a device (hex id). */
void pf_api_heartbeat(struct pf_platform *pf, const struct pf_request *req,
    const char *dev, struct pf_response *resp);
void pf_api_pull(struct pf_platform *pf, const struct pf_request *req,
    const char *dev, struct pf_response *resp);

#endif
