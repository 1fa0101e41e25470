/*
 * pull.h - the agent's side of the way back from the platform (issue 4):
 * the signed heartbeat after every push, and the pull feed (records of
 * the worker's grids changed by others or admins, tasks, review verdicts,
 * reference-data versions), applied one transaction per page.
 */
#ifndef AG_PULL_H
#define AG_PULL_H

#include <jansson.h>

struct ag_store;
struct ag_http;
struct ag_device;

struct ag_pull_stats {
	int64_t pages, records, kept_local, tasks, reviews;
	uint64_t cursor;
	/* The error of a reference document refused this pull (its digest,
	 * its kind, its loading), also what the pull returns; GS_OK when
	 * none.  The records, tasks and reviews of the feed were applied
	 * before it: a caller that keeps going (sync --watch) may. */
	int reference_error;
};

/*
 * Signed requests carry the platform's time, not ours: a handheld whose
 * clock was reset (a battery pulled: the 1970 timestamps of field
 * deployments) must still be able to pull.  skew (ms) is how far the
 * platform's clock is ahead of ours: ag_pull_skew of its health answer
 * (its "time"), asked at ag_pull_clock(); 0 when the answer has none.
 * One health probe per sync gives it to everything below.
 */
int64_t ag_pull_clock(void);
int64_t ag_pull_skew(const json_t *health, int64_t asked);

/*
 * Sends the heartbeat (what this device holds: unsent changes, outbox,
 * last seq, chain head, rejected and quarantined counts, version, free
 * storage), signed by the device key.  GS_OK or the request's error.
 */
int ag_heartbeat_send(struct ag_store *st, struct ag_http *http,
    const struct ag_device *dev, int64_t skew);

/*
 * Pulls every page since the stored cursor and applies each in ONE
 * transaction that also advances the cursor, so a cut or a crash never
 * skips or half-applies a page.  A record with a change of ours not yet
 * delivered is left as it is (ag_store_apply_platform).  With ahead (a
 * second connection to the platform; NULL: none), each next page is
 * asked for on a thread of its own while the last one is applied; pages
 * are still opened, checked and applied one after the other, in order.
 * GS_OK; the network errors (75); GS_EBADSIG / GS_EPROTOCOL for a feed
 * that does not verify (nothing applied); storage errors.  A reference
 * document the feed lists that does not verify or load is returned too,
 * after every page was applied, and is also in stats->reference_error;
 * nothing is printed for it (the caller says it once).
 */
int ag_pull_run(struct ag_store *st, struct ag_http *http,
    struct ag_http *ahead, const struct ag_device *dev, int progress,
    int64_t skew, struct ag_pull_stats *stats);

/*
 * Heartbeat then pull: what `gridagent sync` does after its push.  With
 * progress, a line on stderr counts what each page brought (a new
 * device's first pull of a big grid takes a while).  *stats: what was
 * received (zero when nothing was pulled).
 */
int ag_pull_sync(struct ag_store *st, struct ag_http *http,
    struct ag_http *ahead, const struct ag_device *dev, int progress,
    int64_t skew, struct ag_pull_stats *stats);

/* Status part: "tasks" {open, done}, "reviews" {state: n}, "pull"
 * {cursor, at}. */
int ag_pull_status(struct ag_store *st, json_t *into);

/* gridagent tasks [--json] (tasks.c; a command of cli.h's table). */
struct ag_cli;
int ag_cmd_tasks(struct ag_cli *cli, int argc, char **argv);

#endif
