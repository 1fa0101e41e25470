/*
 * sync.h - `gridagent sync`: seal every unsent change, then upload every
 * sealed batch in seq order until each has a verified receipt; with
 * --watch keep doing it as coverage comes and goes.  And the sync half of
 * `gridagent status`.
 */
#ifndef AG_SYNC_H
#define AG_SYNC_H

#include <signal.h>
#include <stdint.h>

#include <jansson.h>

struct ag_store;

/* Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff And Jitter"): the n-th wait is uniform in [0, min(cap, base *
 * 2^n)], so a fleet of devices that lost coverage together does not come
 * back in lock step. */
struct ag_backoff {
	int64_t base_ms;
	int64_t cap_ms;
	unsigned attempt;
};

void ag_backoff_init(struct ag_backoff *b, int64_t base_ms, int64_t cap_ms);
/* The next wait in ms (and counts the attempt). */
int64_t ag_backoff_next(struct ag_backoff *b);
/* After a success: start again from base. */
void ag_backoff_reset(struct ag_backoff *b);

struct ag_sync_opts {
	int watch;		 /* keep going until SIGINT/SIGTERM */
	int progress;		 /* a progress line on stderr */
	int retries;		 /* one-shot: extra attempts per transient
				    failure (default 2) */
	int64_t base_backoff_ms; /* default 500 ms */
	int64_t max_backoff_ms;	 /* cap; default 300 s */
	int64_t idle_ms;	 /* --watch: how often to look for new
				    changes when all is sent; default 2 s */
	int64_t pull_ms;	 /* --watch: how often to pull (and send the
				    heartbeat) when nothing is to be sent;
				    default 300 s; 0: only after sending */
	const char *platform;	 /* overrides the enrolled URL (NULL: no) */
	uint32_t batch_records;	 /* at most this many changes per batch, on
				    top of the platform's limits (0: ours) */
	size_t batch_bytes;	 /* at most this much NDJSON per batch (0) */
	int in_flight;		 /* at most this many batches under way at
				    once, on top of the platform's
				    "in_flight" (0: the platform's) */
	volatile sig_atomic_t *stop; /* set by a signal handler (NULL ok) */
	int serial;		 /* seal everything, then upload, in this one
				    thread (no courier): one order of events
				    for the deterministic simulator */
};

void ag_sync_opts_default(struct ag_sync_opts *o);

struct ag_sync_summary {
	uint64_t sealed_batches, sealed_records;
	uint64_t acked_batches, acked_records;
	uint64_t quarantined_batches, rejected_batches, rejected_records;
	/* Changes marked rejected at sealing, because they cannot be
	 * encoded at all (damaged in the store): kept, never sent. */
	uint64_t unsendable;
	uint64_t bytes_sent, requests;
	uint64_t pending_batches; /* sealed, not acked, at the end */
	uint64_t unsent;	  /* changes not yet sealed at the end */
	/* What the pull brought down and applied (committed pages; a
	 * record left as edited here is not counted). */
	uint64_t pulled_records, pulled_tasks, pulled_reviews;
	int64_t elapsed_ms;
	int result; /* GS_OK or the error that ended it */
	char message[512];
};

/*
 * Fault injection for the crash tests: $GRIDAGENT_FAULT set to
 * "kill-after-seal=N" makes the process SIGKILL itself right after the
 * N-th batch of the run is committed to the outbox, and
 * "kill-before-ack=N" right after the N-th verified receipt arrived but
 * before it is recorded (the platform has committed, the device has not):
 * the two windows a crash can hit between sealing and acking.
 *
 * Runs a sync on an open store.  Returns the outcome, which maps to the
 * exit code with gs_error_exit():
 *   GS_OK           everything sealed and acked
 *   GS_ENETWORK / GS_ETIMEOUT / GS_EPROTOCOL / GS_EBUSY  (75) the platform
 *                   is unreachable or misbehaving: everything is kept
 *   GS_ENOTENROLLED (77) no device identity; GS_EREVOKED (77) the platform
 *                   says this device is revoked (with a signed receipt)
 *   GS_EREJECTED    (65) at least one batch was refused for good, or a
 *                   change cannot be sent at all (marked rejected)
 *   others          local failures (database, memory)
 * *sum is filled in either way.
 */
int ag_sync_run(struct ag_store *st, const struct ag_sync_opts *o,
    struct ag_sync_summary *sum);

/* The summary as a JSON object (new reference, NULL when out of memory). */
json_t *ag_sync_summary_json(const struct ag_sync_summary *sum);

/*
 * Adds the sync half of `status` to `into`: "device" (id, platform,
 * deployment, enrolled_at, revoked), "outbox" (sealed, sealed_records,
 * acked, quarantined, rejected), "last_seq", "chain_head", "last_sync"
 * and "last_sync_result".  A home that is not enrolled gets
 * "device": null.  GS_OK or a storage error.
 */
int ag_sync_status(struct ag_store *st, json_t *into);

#endif
