/*
 * sync.c - the sync loop: seal, upload in seq order, record receipts;
 * back off and probe while the platform is out of reach.
 *
 * Nothing here decides what a receipt means (uploader.c classifies it) or
 * how state moves (outbox.c does it in one transaction per step).  This
 * file only sequences the steps, so a kill -9 anywhere in it is harmless:
 * the next run starts from whatever the database committed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "attach.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/progress.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "envelope.h"
#include "gridagent.h"
#include "json.h"
#include "keys.h"
#include "outbox.h"
#include "rootkeys.h"
#include "pull.h"
#include "receipt.h"
#include "store.h"
#include "sync.h"
#include "uploader.h"
#include "core/banned.h"

void
ag_backoff_init(struct ag_backoff *b, int64_t base_ms, int64_t cap_ms)
{
	b->base_ms = base_ms > 0 ? base_ms : 1;
	b->cap_ms = cap_ms > b->base_ms ? cap_ms : b->base_ms;
	b->attempt = 0;
}

int64_t
ag_backoff_next(struct ag_backoff *b)
{
	int64_t ceil = b->base_ms;
	unsigned i;

	for (i = 0; i < b->attempt && ceil < b->cap_ms; i++)
		ceil *= 2;
	if (ceil > b->cap_ms)
		ceil = b->cap_ms;
	if (b->attempt < 64)
		b->attempt++;
	/* Full jitter: anywhere between no wait and the ceiling. */
	if (ceil >= (int64_t)UINT32_MAX)
		ceil = (int64_t)UINT32_MAX - 1;
	return (int64_t)gs_random_uniform((uint32_t)ceil + 1);
}

void
ag_backoff_reset(struct ag_backoff *b)
{
	b->attempt = 0;
}

void
ag_sync_opts_default(struct ag_sync_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->retries = 2;
	o->base_backoff_ms = 500;
	o->max_backoff_ms = 300000;
	o->idle_ms = 2000;
	o->pull_ms = 300000;
	/* Tests only: the cut-at-every-offset tests retry hundreds of times
	 * in one run and must not spend a quarter second per retry: the
	 * backoff's base and cap both become this many ms. */
	{
		const char *e = getenv("GRIDAGENT_BACKOFF_MS");
		uint64_t v;

		if (e != NULL && gs_parse_u64(e, 60000, &v) == GS_OK && v > 0)
			o->base_backoff_ms = o->max_backoff_ms = (int64_t)v;
	}
}

/* The state of one run, shared by its steps. */
struct run {
	struct ag_store *st;
	struct gs_db *db;
	const struct ag_sync_opts *o;
	struct ag_device *dev;
	struct ag_http *http;
	/* A second connection, for a second batch under way at once when
	 * the platform takes that ("in_flight" in its limits). */
	struct ag_http *http2;
	int64_t in_flight;
	/* The envelope suite to seal with: GS_ENV_SUITE_PH once the probe
	 * found the platform opens it ("suites" in its limits); batches
	 * sealed without an answer (offline) keep suite 1. */
	int suite;
	struct ag_outbox *ob;
	struct ag_backoff bo;
	struct ag_sync_summary *sum;
	int64_t t0;
	int64_t skew;	/* the platform's clock ahead of ours, ms (probe) */
	int skew_known;	/* the probe's answer gave the platform's time */
	int progress_shown;
	int progress_width;	/* columns of the line shown */
	long kill_after_seal, kill_before_ack; /* GRIDAGENT_FAULT; 0 = off */
	long sealed_here, receipts_here;
	/* While the courier runs, the bytes it has sent (its HTTP handle is
	 * its own then), read under its mutex. */
	const uint64_t *courier_sent;
	pthread_mutex_t *courier_mu;
};

/* "name=N" in $GRIDAGENT_FAULT gives N, else 0. */
static long
fault(const char *name)
{
	const char *e = getenv("GRIDAGENT_FAULT");
	size_t n = strlen(name);
	uint64_t v;

	if (e == NULL || strncmp(e, name, n) != 0 || e[n] != '=' ||
	    gs_parse_u64(e + n + 1, 1000000, &v) != GS_OK)
		return 0;
	return (long)v;
}

/*
 * The WAL synced before sealed bytes leave this device (courier_main,
 * upload_one): they were committed without waiting for the disk
 * (record_and_seal).  Tests only: "wal-sync-fail=N" in $GRIDAGENT_FAULT
 * fails the Nth such sync of this process as a disk reporting an error
 * would (tests/integration/agent-sync-kill.sh).
 */
static int
durable(struct gs_db *db)
{
	static long n;
	long at = fault("wal-sync-fail");

	if (at > 0 && __atomic_add_fetch(&n, 1, __ATOMIC_SEQ_CST) == at)
		return GS_FAIL(GS_EIO, "sync of the WAL: failed "
		    "(GRIDAGENT_FAULT)");
	return gs_db_sync_wal(db);
}

/* A crash test asked to die here: as abruptly as a pulled battery. */
static void
crash_point(long at, long count)
{
	if (at > 0 && count == at)
		(void)raise(SIGKILL);
}

static int
stopped(const struct run *x)
{
	return x->o->stop != NULL && *x->o->stop != 0;
}

/* Sleeps ms, in slices, so that a stop request is noticed quickly. */
static void
nap(const struct run *x, int64_t ms)
{
	while (ms > 0 && !stopped(x)) {
		int64_t slice = ms > 100 ? 100 : ms;
		struct timespec ts = {slice / 1000, (slice % 1000) * 1000000};

		(void)nanosleep(&ts, NULL);
		ms -= slice;
	}
}

static void
progress(struct run *x, int final)
{
	struct ag_sync_summary *s = x->sum;
	uint64_t sent = 0;
	double secs, rate;
	char size[GS_TEXT_MAX], speed[GS_TEXT_MAX];
	int w;

	if (!x->o->progress)
		return;
	if (x->courier_mu != NULL) {
		(void)pthread_mutex_lock(x->courier_mu);
		sent = *x->courier_sent;
		(void)pthread_mutex_unlock(x->courier_mu);
	} else {
		/* Both connections, as the summary counts them: the second
		 * carried half the batches, and the last line read only the
		 * first (less sent than the line before it). */
		uint64_t sent2 = 0;

		ag_http_stats(x->http, &sent, NULL, NULL);
		if (x->http2 != NULL)
			ag_http_stats(x->http2, &sent2, NULL, NULL);
		sent += sent2;
	}
	secs = (double)(gs_mono_us() - x->t0) / 1e6;
	rate = secs > 0 ? (double)sent / secs : 0;
	/* Sizes in the unit that fits (B, KiB, MiB), as everywhere. */
	w = fprintf(stderr,
	    "\r%s: sync: sealed %llu, acked %llu/%llu batches, "
	    "%llu records, %s sent, %s/s   ",
	    gs_log_program(), (unsigned long long)s->sealed_batches,
	    (unsigned long long)s->acked_batches,
	    (unsigned long long)(s->acked_batches + s->pending_batches),
	    (unsigned long long)s->acked_records,
	    gs_size_text(size, sizeof(size), sent),
	    gs_size_text(speed, sizeof(speed), (uint64_t)rate));
	x->progress_shown = 1;
	x->progress_width = w > 1 ? w - 1 : 0;
	if (final) {
		fputc('\n', stderr);
		x->progress_shown = 0;
	}
	fflush(stderr);
}

/*
 * GET /v1/health: the cheap probe.  It also refreshes the limits the
 * platform advertises and refuses a platform of another deployment
 * (the URL now points somewhere else: never send there).
 */
static int
probe(struct run *x)
{
	struct ag_http_response resp;
	json_t *root = NULL, *lim;
	json_error_t je;
	const char *dep;
	unsigned char depb[16];
	int64_t asked = ag_pull_clock();
	int r = GS_EINTERNAL;

	ag_http_response_init(&resp);
	if ((r = ag_http_request(
		 x->http, "GET", "/v1/health", NULL, NULL, 0, &resp)) != GS_OK)
		goto out;
	if (resp.status != 200) {
		r = GS_FAIL(resp.status == 503 ? GS_EBUSY : GS_EPROTOCOL,
		    "health probe: HTTP %ld", resp.status);
		goto out;
	}
	root = json_loadb(
	    resp.body.data ? resp.body.data : "", resp.body.len, 0, &je);
	dep = json_string_value(json_object_get(root, "deployment"));
	if (root == NULL || dep == NULL || strlen(dep) != 32 ||
	    gs_hex_decode(depb, 16, dep) != GS_OK) {
		/* A captive portal answers 200 with its own page. */
		r = GS_FAIL(GS_EPROTOCOL, "health probe: the answer is not "
					  "the platform's");
		goto out;
	}
	/* Its clock, for the signed requests of the pull (pull.h). */
	x->skew = ag_pull_skew(root, asked);
	x->skew_known = json_is_integer(json_object_get(root, "time"));
	if (memcmp(depb, x->dev->deployment, 16) != 0) {
		r = GS_FAIL(GS_EDEPLOYMENT,
		    "the platform at %s belongs to "
		    "deployment %s, not the one this device enrolled in",
		    x->o->platform ? x->o->platform : x->dev->platform_url,
		    dep);
		goto out;
	}
	/* The platform's current key bundle (rootkeys.c): a newer one
	 * moves new batches to the new batch key; a rolled-back one is
	 * refused and the pinned keys stay. */
	if ((r = ag_rootkeys_refresh(x->st, x->dev,
	    json_object_get(root, "keys"))) != GS_OK ||
	    (r = ag_rekey_reload(x->db, x->dev)) != GS_OK)
		goto out;
	lim = json_object_get(root, "limits");
	if (json_is_object(lim)) {
		json_t *a = json_object_get(lim, "max_records");
		json_t *b = json_object_get(lim, "max_envelope");
		json_t *c = json_object_get(lim, "max_plain");

		if (json_is_integer(a) && json_is_integer(b) &&
		    json_is_integer(c) && json_integer_value(a) > 0 &&
		    json_integer_value(b) > 0 && json_integer_value(c) > 0 &&
		    (json_integer_value(a) != x->dev->max_records ||
			json_integer_value(b) != x->dev->max_envelope ||
			json_integer_value(c) != x->dev->max_plain)) {
			if ((r = ag_device_set_limits(x->db,
				 json_integer_value(a), json_integer_value(b),
				 json_integer_value(c))) != GS_OK)
				goto out;
			x->dev->max_records = json_integer_value(a);
			x->dev->max_envelope = json_integer_value(b);
			x->dev->max_plain = json_integer_value(c);
		}
		/* The envelope suite: 2 when the platform lists it (1 when
		 * it lists none: an older platform). */
		x->suite = GS_ENV_SUITE;
		{
			json_t *v;
			size_t i;

			json_array_foreach(json_object_get(lim, "suites"), i,
			    v)
				if (json_is_integer(v) && json_integer_value(v)
				    == GS_ENV_SUITE_PH)
					x->suite = GS_ENV_SUITE_PH;
		}
		/* Batches the platform takes at once (1 when it says
		 * nothing: an older platform). */
		x->in_flight = 1;
		if (json_is_integer(json_object_get(lim, "in_flight")) &&
		    json_integer_value(json_object_get(lim, "in_flight")) > 1)
			x->in_flight = json_integer_value(
			    json_object_get(lim, "in_flight"));
		/* The attachment limit, for attach-time refusals. */
		if (json_is_integer(json_object_get(lim, "max_attachment")) &&
		    (r = ag_attach_set_limit(x->st, json_integer_value(
			 json_object_get(lim, "max_attachment")))) != GS_OK)
			goto out;
	}
	r = GS_OK;
out:
	json_decref(root);
	ag_http_response_release(&resp);
	return r;
}

/*
 * The checkpoint thread's thresholds in WAL pages (sync/db.h): from 1,000
 * (SQLite's autocheckpoint) on the thread, from 8,000 (32 MiB) on the
 * sync thread itself, the bound.
 */
#define SYNC_CKPT_SOFT 1000
#define SYNC_CKPT_HARD 8000

static int
is_transient(int r)
{
	return gs_error_class(r) == GS_CLASS_RETRY;
}

/* The batch limits: the platform's, ours, and the options'. */
static void
seal_limits(struct run *x, struct ag_outbox_limits *lim)
{
	ag_outbox_limits_for(x->dev, lim);
	if (x->suite != 0)
		lim->suite = x->suite;
	if (x->o->batch_records > 0 && x->o->batch_records < lim->max_records)
		lim->max_records = x->o->batch_records;
	if (x->o->batch_bytes > 0 && x->o->batch_bytes < lim->max_plain)
		lim->max_plain = x->o->batch_bytes;
}

/* What follows a committed seal: counts, log, the crash point. */
static void
sealed(struct run *x, const struct ag_outbox_sealed *info)
{
	x->sum->unsendable += info->skipped;
	if (info->skipped > 0)
		gs_log(GS_LOG_WARNING,
		    "%u change(s) cannot be sent "
		    "and were marked rejected (see status)",
		    info->skipped);
	if (info->seq == 0)
		return;
	x->sum->sealed_batches++;
	x->sum->sealed_records += info->count;
	crash_point(x->kill_after_seal, ++x->sealed_here);
	gs_log(GS_LOG_INFO, "sealed batch %lld: %u changes, %zu bytes",
	    (long long)info->seq, info->count, info->bytes);
}

/* Seals one batch (info->seq 0: nothing left to seal). */
static int
seal_one(struct run *x, const struct ag_outbox_limits *lim,
    struct ag_outbox_sealed *info)
{
	int r;

	if ((r = ag_outbox_seal(x->ob, x->dev, lim, info)) != GS_OK)
		return r;
	sealed(x, info);
	return GS_OK;
}

/* Seals every unsent change.  Works offline: the batches wait sealed. */
static int
seal_all(struct run *x)
{
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	int r;

	/* A locked store cannot open its changes' personal data to seal
	 * them; what is sealed already still drains (issue 6). */
	if (ag_store_locked(x->st)) {
		int64_t unsent, sealed;

		if ((r = ag_outbox_pending(x->db, &unsent, &sealed)) != GS_OK)
			return r;
		/* A one-shot sync says so in its last line (final_result);
		 * --watch goes on, and says so at every pass. */
		if (unsent > 0 && x->o->watch)
			gs_log(GS_LOG_WARNING, "locked: %lld change(s) wait for "
			    "'gridagent unlock' to be sealed; uploading what "
			    "is sealed", (long long)unsent);
		return GS_OK;
	}
	seal_limits(x, &lim);
	for (;;) {
		if (stopped(x))
			return GS_OK;
		if ((r = seal_one(x, &lim, &info)) != GS_OK || info.seq == 0)
			return r;
	}
}

/* The sealed batches and, with unsent, the changes not yet sealed (the
 * summary's; the progress line shows only batches). */
static int
count_pending(struct run *x, int unsent)
{
	int64_t n = 0, sealed;
	int r;

	if ((r = ag_outbox_pending(x->db, unsent ? &n : NULL, &sealed)) !=
	    GS_OK)
		return r;
	x->sum->pending_batches = (uint64_t)sealed;
	if (unsent)
		x->sum->unsent = (uint64_t)n;
	return GS_OK;
}

static int record_outcome(struct run *x, const struct ag_outbox_row *row,
    const struct ag_upload_result *res);

/*
 * Uploads one stored batch until it gets an outcome: one-shot runs retry
 * a transient failure o->retries times with backoff; --watch leaves the
 * waiting to its probe loop.  first, when not NULL, is the answer to the
 * first attempt, already made (by the courier).  GS_OK when the batch got
 * a final outcome; a RETRY-class code when the link is down.
 */
static int
upload_one(struct run *x, struct ag_outbox_row *row,
    struct ag_upload_result *first)
{
	struct ag_upload_result res;
	int64_t wait;
	int attempt, r = GS_EINTERNAL;

	memset(&res, 0, sizeof(res));
	for (attempt = 0;; attempt++) {
		ag_upload_result_release(&res);
		if (attempt == 0 && first != NULL) {
			/* The courier's attempt is the first one: take its
			 * answer over (first is left empty). */
			res = *first;
			memset(first, 0, sizeof(*first));
		} else if ((r = durable(x->db)) != GS_OK ||
		    (r = ag_upload_batch(x->http, x->dev, row, &res)) !=
		    GS_OK) {
			/* (The sync: as the courier's, courier_main.) */
			goto out;
		}
		if (res.outcome != AG_UPLOAD_RETRY)
			break;
		/* Sent ahead of the batch before it, which the platform had
		 * not received (yet): that one has its outcome now, so this
		 * is no failed attempt; send it again at once. */
		if (attempt == 0 && first != NULL && res.err == GS_ETOOEARLY)
			continue;
		gs_log(GS_LOG_INFO, "batch %lld: %s", (long long)row->seq,
		    res.reason);
		if ((r = ag_outbox_attempt(x->ob, row->seq, res.reason)) !=
		    GS_OK)
			goto out;
		if (x->o->watch || attempt >= x->o->retries || stopped(x)) {
			r = GS_FAIL(
			    res.err ? res.err : GS_ENETWORK, "%s", res.reason);
			goto out;
		}
		wait = ag_backoff_next(&x->bo);
		if (res.retry_after_ms > wait)
			wait = res.retry_after_ms < x->o->max_backoff_ms
				   ? res.retry_after_ms
				   : x->o->max_backoff_ms;
		nap(x, wait);
	}
	r = record_outcome(x, row, &res);
out:
	ag_upload_result_release(&res);
	return r;
}

/* Records a final outcome (acked, quarantined, rejected) of row's upload:
 * state moves only here, in the sync's own thread and database. */
static int
record_outcome(struct run *x, const struct ag_outbox_row *row,
    const struct ag_upload_result *res_)
{
	const struct ag_upload_result res = *res_;
	int r;

	ag_backoff_reset(&x->bo);
	/* The attempt is counted by the transaction that records the
	 * outcome (ag_outbox_ack, ag_outbox_reject). */
	switch (res.outcome) {
	case AG_UPLOAD_ACKED:
	case AG_UPLOAD_QUARANTINED:
		crash_point(x->kill_before_ack, ++x->receipts_here);
		/* Only now, with a verified receipt, does state move. */
		if ((r = ag_outbox_ack(x->ob, row,
			 res.outcome == AG_UPLOAD_QUARANTINED
			     ? GS_RECEIPT_QUARANTINED
			     : GS_RECEIPT_ACCEPTED,
			 res.receipt, res.receipt_len, res.results)) != GS_OK)
			return r;
		if (res.outcome == AG_UPLOAD_QUARANTINED) {
			x->sum->quarantined_batches++;
			if (!x->dev->revoked)
				gs_log(GS_LOG_ERROR,
				    "the platform says this "
				    "device is revoked; batch %lld is kept in "
				    "its quarantine",
				    (long long)row->seq);
			x->dev->revoked = 1;
		} else {
			x->sum->acked_batches++;
			x->sum->acked_records += row->record_count;
		}
		break;
	case AG_UPLOAD_REJECTED:
		gs_log(GS_LOG_ERROR,
		    "batch %lld refused by the platform: %s "
		    "(kept on this device)",
		    (long long)row->seq, res.reason);
		if ((r = ag_outbox_reject(x->ob, row, res.reason)) != GS_OK)
			return r;
		x->sum->rejected_batches++;
		x->sum->rejected_records += row->record_count;
		break;
	default:
		return GS_FAIL(GS_EINTERNAL, "unexpected upload outcome");
	}
	if (x->sum->pending_batches > 0)
		x->sum->pending_batches--;
	progress(x, 0);
	return GS_OK;
}

/*
 * The courier: one or two carrier threads that do nothing but the HTTP
 * exchanges of sealed batches (ag_upload_batch: PUT, then verify the
 * receipt), in seq order, from a short queue.  While they carry batch N
 * the sync thread seals the next batches and records the outcomes of
 * those already answered; it never waits for an outcome to be recorded
 * before the next batch is sent, so on a two-core machine the platform's
 * ingest of one batch, the device's sealing of the next and the
 * recording of the previous receipt all run at the same time.  When the
 * platform takes two batches of a device at once ("in_flight" 2), a
 * second carrier, on a connection of its own, sends batch N+1 with
 * ?follows=N as soon as N's body is sent: the platform decodes N+1 while
 * it commits N, and commits N+1 after it (PROTOCOL.md section 6), and a
 * slow link is not idle a round trip per batch.
 *
 * The carriers never touch the database: the sync thread records every
 * outcome (record_outcome), in seq order, so each state change is still
 * one transaction in one thread, and a kill -9 anywhere leaves what the
 * database committed, as before (a batch answered but not yet recorded
 * is sent again next time; the platform answers it with the stored
 * receipt).  An answer that is not final (the link went down, the
 * platform is busy, or "too early": N+1 got there before N) halts the
 * courier: nothing further is sent until the sync thread, once no
 * exchange is under way, has taken that batch over on the plain path
 * (upload_one: retries with backoff, attempts counted; a "too early" is
 * sent again at once and not counted) on the first carrier's HTTP handle
 * and got its final outcome; a batch after it answered "too early" too
 * is taken over the same way, in turn.
 */
/* Sealed batches queued, under way or answered and not yet recorded:
 * two under way, and room for the next while the sync thread records
 * two answers (4 left the carriers idle; 8 was no faster). */
#define COURIER_SLOTS 6
/* At most this many exchanges at once: the platform's "in_flight". */
#define COURIER_THREADS 2

enum slot_state { SLOT_FREE, SLOT_QUEUED, SLOT_BUSY, SLOT_DONE };

struct slot {
	enum slot_state state;
	struct ag_outbox_row row;
	struct ag_upload_result res;
	int rc;
	char why[200]; /* rc's detail, as the carrier's thread had it */
	int final; /* SLOT_DONE: the answer is an outcome (not a retry) */
	int sent;  /* SLOT_BUSY: its body is sent in full */
};

struct courier;

/* One courier thread and its HTTP handle (a connection of its own). */
struct carrier {
	struct courier *k;
	struct ag_http *http;
	pthread_t thread;
	uint64_t sent; /* its handle's bytes sent after its last answer */
	struct slot *cur; /* the slot it carries (mu held to read) */
};

struct courier {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct carrier c[COURIER_THREADS];
	unsigned threads;   /* carriers started */
	unsigned busy;      /* exchanges under way */
	const struct ag_device *dev;
	struct gs_db *db;   /* only for durable() */
	struct slot slot[COURIER_SLOTS]; /* a ring, oldest at head */
	unsigned head, count;
	uint64_t sent; /* the carriers' bytes sent, summed (mu held) */
	int halted, quit;
};

/*
 * The oldest queued slot, or NULL (mu held).  It may go while the batch
 * just before it is still under way (the platform takes two at once),
 * with *follows set to that batch's seq, once that one's body is sent
 * (so it reaches the platform first, which waits for it only once its
 * ingest has started); never past any other, nor past one answered
 * without an outcome: the sync thread sends that one again first (the
 * courier is halted from when it takes it over until it has an outcome).
 */
static struct slot *
courier_next(struct courier *k, int64_t *follows)
{
	struct slot *s, *prev = NULL;
	unsigned i;

	*follows = 0;
	for (i = 0; i < k->count; i++, prev = s) {
		s = &k->slot[(k->head + i) % COURIER_SLOTS];
		if (s->state == SLOT_DONE && !s->final)
			return NULL;
		if (s->state != SLOT_QUEUED)
			continue;
		if (k->busy == 0)
			return s;
		if (k->busy >= k->threads || prev == NULL ||
		    prev->state != SLOT_BUSY || !prev->sent ||
		    prev->row.seq + 1 != s->row.seq)
			return NULL;
		*follows = prev->row.seq;
		return s;
	}
	return NULL;
}

/* ag_http_on_sent: the carrier's batch is sent; a follower may go. */
static void
carrier_sent(void *arg)
{
	struct carrier *c = arg;
	struct courier *k = c->k;

	(void)pthread_mutex_lock(&k->mu);
	if (c->cur != NULL)
		c->cur->sent = 1;
	(void)pthread_cond_broadcast(&k->cv);
	(void)pthread_mutex_unlock(&k->mu);
}

static void *
courier_main(void *arg)
{
	struct carrier *c = arg;
	struct courier *k = c->k;
	struct slot *s;
	int64_t follows;
	unsigned i;
	int final;

	(void)pthread_mutex_lock(&k->mu);
	for (;;) {
		while (!k->quit &&
		    (k->halted || (s = courier_next(k, &follows)) == NULL))
			(void)pthread_cond_wait(&k->cv, &k->mu);
		if (k->quit)
			break;
		s->state = SLOT_BUSY;
		s->sent = 0;
		c->cur = s;
		k->busy++;
		(void)pthread_mutex_unlock(&k->mu);
		/* The device fields read here (ids, keys) are not the ones
		 * sealing or recording updates (last_seq, chain_head,
		 * revoked). */
		memset(&s->res, 0, sizeof(s->res));
		/* The sealed bytes leave only once they are on the disk
		 * (sealed without waiting for it: record_and_seal): sent
		 * and then lost to a power cut, they would be sealed anew,
		 * other bytes under the same seq. */
		s->rc = durable(k->db);
		if (s->rc == GS_OK)
			s->rc = ag_upload_batch_follows(c->http, k->dev,
			    &s->row, follows, &s->res);
		if (s->rc != GS_OK)
			snprintf(s->why, sizeof(s->why), "%s",
			    gs_errmsg(s->rc));
		final = s->rc == GS_OK && s->res.outcome != AG_UPLOAD_RETRY;
		/* The platform served the batch before this one after it
		 * (too early): most likely both connections are served by
		 * one of its threads, one request after the other, so this
		 * handle's next exchange takes a new connection, which may
		 * land on another thread.  (The platform waits only for a
		 * batch another thread is already ingesting.) */
		if (s->rc == GS_OK && s->res.err == GS_ETOOEARLY)
			ag_http_fresh_connection(c->http);
		(void)pthread_mutex_lock(&k->mu);
		ag_http_stats(c->http, &c->sent, NULL, NULL);
		for (k->sent = 0, i = 0; i < k->threads; i++)
			k->sent += k->c[i].sent;
		s->state = SLOT_DONE;
		s->final = final;
		c->cur = NULL;
		k->busy--;
		if (!final)
			k->halted = 1;
		(void)pthread_cond_broadcast(&k->cv);
	}
	(void)pthread_mutex_unlock(&k->mu);
	return NULL;
}

/* Queues row (taken over) when there is room: 1, else 0. */
static int
courier_queue(struct courier *k, struct ag_outbox_row *row)
{
	struct slot *s;

	(void)pthread_mutex_lock(&k->mu);
	if (k->count == COURIER_SLOTS) {
		(void)pthread_mutex_unlock(&k->mu);
		return 0;
	}
	s = &k->slot[(k->head + k->count) % COURIER_SLOTS];
	s->row = *row;
	memset(row, 0, sizeof(*row));
	s->rc = GS_OK;
	s->state = SLOT_QUEUED;
	k->count++;
	(void)pthread_cond_broadcast(&k->cv);
	(void)pthread_mutex_unlock(&k->mu);
	return 1;
}

/*
 * Takes the oldest slot out of the ring once it is answered, waiting for
 * it when wait is set: 1 with *out filled (the caller releases its row and
 * result), 0 when nothing is queued (or, without wait, not answered yet).
 */
static int
courier_take(struct courier *k, struct slot *out, int wait)
{
	struct slot *s;

	(void)pthread_mutex_lock(&k->mu);
	for (;;) {
		if (k->count == 0) {
			(void)pthread_mutex_unlock(&k->mu);
			return 0;
		}
		s = &k->slot[k->head];
		if (s->state == SLOT_DONE)
			break;
		if (!wait) {
			(void)pthread_mutex_unlock(&k->mu);
			return 0;
		}
		(void)pthread_cond_wait(&k->cv, &k->mu);
	}
	*out = *s;
	/* Halted until the sync thread has an outcome for it. */
	if (!s->final)
		k->halted = 1;
	memset(s, 0, sizeof(*s));
	k->head = (k->head + 1) % COURIER_SLOTS;
	k->count--;
	(void)pthread_mutex_unlock(&k->mu);
	return 1;
}

static void
courier_resume(struct courier *k)
{
	(void)pthread_mutex_lock(&k->mu);
	k->halted = 0;
	(void)pthread_cond_broadcast(&k->cv);
	(void)pthread_mutex_unlock(&k->mu);
}

/* Stops the thread after its current exchange (its answer is not
 * recorded: the batch stays sealed and is sent again next time, which
 * the platform answers idempotently) and frees what the ring holds. */
static void
courier_stop(struct courier *k)
{
	unsigned i;

	(void)pthread_mutex_lock(&k->mu);
	k->quit = 1;
	(void)pthread_cond_broadcast(&k->cv);
	(void)pthread_mutex_unlock(&k->mu);
	for (i = 0; i < k->threads; i++)
		(void)pthread_join(k->c[i].thread, NULL);
	for (i = 0; i < COURIER_SLOTS; i++) {
		ag_upload_result_release(&k->slot[i].res);
		ag_outbox_row_release(&k->slot[i].row);
	}
	(void)pthread_cond_destroy(&k->cv);
	(void)pthread_mutex_destroy(&k->mu);
}

/* Waits until no exchange is under way (the courier is halted): then the
 * plain path may use the sync's HTTP handle, which a carrier also uses. */
static void
courier_quiesce(struct courier *k)
{
	(void)pthread_mutex_lock(&k->mu);
	while (k->busy > 0)
		(void)pthread_cond_wait(&k->cv, &k->mu);
	(void)pthread_mutex_unlock(&k->mu);
}

/*
 * Records the courier's answer for one batch (the first attempt; the
 * plain path records it, and retries with backoff if it was not final,
 * the courier halted meanwhile), then lets the courier go on.  Frees
 * what done holds.
 */
static int
record_answer(struct run *x, struct courier *k, struct slot *done)
{
	int r;

	if (done->rc != GS_OK || done->res.outcome == AG_UPLOAD_RETRY)
		courier_quiesce(k);
	if (done->rc == GS_OK)
		r = upload_one(x, &done->row, &done->res);
	else
		r = GS_FAIL(done->rc, "batch %lld: the upload failed (%s)",
		    (long long)done->row.seq, done->why);
	ag_upload_result_release(&done->res);
	ag_outbox_row_release(&done->row);
	if (r == GS_OK)
		courier_resume(k);
	return r;
}

/*
 * Records an answer that acks its batch and seals the next batch in one
 * transaction (gs_db_group): one commit where there were two, on the
 * thread that paces the whole sync; and the sync of the WAL that makes
 * it durable is not made on this thread but on a carrier's, before it
 * sends the new batch (100,000 persons: 100 fsyncs off this thread).  A
 * crash before that sync may lose both, and both come again: the batch
 * is sent again and the platform answers it with its stored receipt;
 * the changes are sealed anew (they were never sent).  *info as
 * seal_one's.
 */
static int
record_and_seal(struct run *x, struct courier *k, struct slot *done,
    const struct ag_outbox_limits *lim, struct ag_outbox_sealed *info)
{
	unsigned char head[GS_HASHBYTES];
	int64_t last_seq = x->dev->last_seq;
	int r;

	memcpy(head, x->dev->chain_head, sizeof(head));
	memset(info, 0, sizeof(*info));
	if ((r = gs_db_group_begin(x->db)) != GS_OK) {
		ag_upload_result_release(&done->res);
		ag_outbox_row_release(&done->row);
		return r;
	}
	r = record_answer(x, k, done);
	if (r == GS_OK)
		r = ag_outbox_seal(x->ob, x->dev, lim, info);
	/* Not waiting for the disk: the courier syncs before it sends the
	 * new batch (courier_main), and an ack lost to a power cut only
	 * means the batch is sent again and answered with its stored
	 * receipt. */
	if ((r = gs_db_group_end_nosync(x->db, r)) != GS_OK) {
		/* Nothing of it was kept: nor is the chain the seal moved
		 * in memory (fields the courier does not read). */
		x->dev->last_seq = last_seq;
		memcpy(x->dev->chain_head, head, sizeof(head));
		return r;
	}
	sealed(x, info);
	return GS_OK;
}

/*
 * Records an answer; an ack together with the next seal while there is
 * one to make (one in, one out: the batches sealed ahead stay as many).
 */
static int
take_answer(struct run *x, struct courier *k, struct slot *done,
    const struct ag_outbox_limits *lim, int *sealing, int *more)
{
	struct ag_outbox_sealed info;
	int r;

	if (!*sealing || done->rc != GS_OK ||
	    done->res.outcome != AG_UPLOAD_ACKED)
		return record_answer(x, k, done);
	if ((r = record_and_seal(x, k, done, lim, &info)) != GS_OK)
		return r;
	if (info.seq == 0) {
		*sealing = 0;
	} else {
		x->sum->pending_batches++;
		*more = 1;
	}
	return GS_OK;
}

/* The second carrier's HTTP handle: the sync's platform and options. */
static int
second_handle(struct run *x)
{
	struct ag_http_opts ho;
	int r;

	ag_http_opts_default(&ho);
	if ((r = ag_http_new(x->o->platform ? x->o->platform :
	    x->dev->platform_url, &ho, &x->http2)) != GS_OK)
		return r;
	ag_http_set_cancel(x->http2, x->o->stop);
	return GS_OK;
}

/*
 * Seals and uploads at the same time: the courier carries the sealed
 * batches in seq order while this thread seals the next ones and records
 * each answer as it comes.  Batches go in seq order, one or two at a time
 * (the platform's in_flight, capped by --in-flight), each only after its
 * seal committed.  GS_OK when everything is sealed
 * and every batch has its outcome.
 */
static int
seal_and_send(struct run *x)
{
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	struct courier k;
	struct slot done;
	int64_t queued_after = 0;
	int r = GS_OK, found, sealing, more = 1, have = 0;

	memset(&row, 0, sizeof(row));
	memset(&k, 0, sizeof(k));
	k.dev = x->dev;
	k.db = x->db;
	/* A locked store seals nothing (seal_all says why); it only
	 * drains what is sealed. */
	sealing = !ag_store_locked(x->st);
	if (!sealing && (r = seal_all(x)) != GS_OK)
		return r;
	if (x->o->serial) {
		int64_t after = 0;

		/* tests/sim: the same steps without a second thread, so a
		 * seed always gives the same interleaving. */
		if ((r = seal_all(x)) != GS_OK ||
		    (r = count_pending(x, 1)) != GS_OK)
			return r;
		for (;;) {
			if ((r = ag_outbox_next_sealed(x->ob, after, &row,
			    &found)) != GS_OK || !found)
				return r;
			after = row.seq;
			r = upload_one(x, &row, NULL);
			ag_outbox_row_release(&row);
			if (r != GS_OK)
				return r;
		}
	}
	seal_limits(x, &lim);
	/* Sealing parses into a jansson arena (outbox.c): install its
	 * allocators before a second thread uses jansson (sync/json.h). */
	{
		struct gs_json_arena *a = NULL;

		(void)gs_json_arena_begin(&a);
		gs_json_arena_end(a);
	}
	if (pthread_mutex_init(&k.mu, NULL) != 0)
		return GS_FAIL(GS_ENOMEM, "courier mutex");
	if (pthread_cond_init(&k.cv, NULL) != 0) {
		(void)pthread_mutex_destroy(&k.mu);
		return GS_FAIL(GS_ENOMEM, "courier condition");
	}
	{
		int64_t cap = x->o->in_flight > 0 && x->o->in_flight <
		    x->in_flight ? x->o->in_flight : x->in_flight;
		unsigned i, want = cap >= COURIER_THREADS ?
		    COURIER_THREADS : 1;

		/* The first carrier shares the sync's handle (the plain path
		 * uses it only while no exchange is under way); a second has
		 * a connection of its own. */
		if (want > 1 && x->http2 == NULL && second_handle(x) != GS_OK)
			want = 1;
		k.c[0].http = x->http;
		k.c[1].http = x->http2;
		/* mu held: the carriers see threads only once all started. */
		(void)pthread_mutex_lock(&k.mu);
		for (i = 0; i < want; i++) {
			k.c[i].k = &k;
			if (want > 1)
				ag_http_on_sent(k.c[i].http, carrier_sent,
				    &k.c[i]);
			if (pthread_create(&k.c[i].thread, NULL, courier_main,
			    &k.c[i]) != 0)
				break;
		}
		k.threads = i;
		(void)pthread_mutex_unlock(&k.mu);
		if (k.threads == 0) {
			(void)pthread_cond_destroy(&k.cv);
			(void)pthread_mutex_destroy(&k.mu);
			return GS_FAIL(GS_ENOMEM, "courier thread");
		}
	}
	x->courier_sent = &k.sent;
	x->courier_mu = &k.mu;
	for (;;) {
		if (stopped(x)) {
			r = GS_FAIL(GS_ENETWORK, "stopped by a signal");
			break;
		}
		/* Keep the courier's queue full of sealed batches, first:
		 * recording two answers is two commits, and a carrier done
		 * meanwhile would wait for work (100,000 persons on loopback:
		 * sync 3.45 -> 3.0 s with this order and six slots, medians of
		 * alternating runs). */
		if (more && !have) {
			if ((r = ag_outbox_next_sealed(x->ob, queued_after,
			    &row, &found)) != GS_OK)
				break;
			if (!found) {
				more = 0;
			} else {
				queued_after = row.seq;
				have = 1;
			}
		}
		if (have && courier_queue(&k, &row)) {
			have = 0;
			continue;
		}
		/* Record every answer already in, oldest first. */
		if (courier_take(&k, &done, 0)) {
			if ((r = take_answer(x, &k, &done, &lim, &sealing,
			    &more)) != GS_OK)
				break;
			continue;
		}
		/* Seal while the courier's queue has room: at most a few
		 * batches ahead of the answers, so that the pages sealing read
		 * are still in the cache when the receipt's records are
		 * written (sealing all of a large backlog first read every
		 * record twice from the file: 88,000 pread calls for 100,000
		 * persons) and the next batch is ready when the courier is. */
		if (sealing && !have) {
			if ((r = seal_one(x, &lim, &info)) != GS_OK)
				break;
			if (info.seq == 0)
				sealing = 0;
			else {
				x->sum->pending_batches++;
				more = 1;
			}
			continue;
		}
		/* Wait for the oldest answer; none queued and nothing left
		 * to seal or queue: done. */
		if (courier_take(&k, &done, 1)) {
			if ((r = take_answer(x, &k, &done, &lim, &sealing,
			    &more)) != GS_OK)
				break;
			continue;
		}
		if (!have && !more && !sealing)
			break;
	}
	x->courier_sent = NULL;
	x->courier_mu = NULL;
	courier_stop(&k);
	/* The carriers' callbacks point into k, which ends here. */
	ag_http_on_sent(x->http, NULL, NULL);
	if (x->http2 != NULL)
		ag_http_on_sent(x->http2, NULL, NULL);
	ag_outbox_row_release(&row);
	return r;
}

/* One pass: probe, seal everything, upload every sealed row in order. */
static int
pass(struct run *x)
{
	int r, pr, attempt;

	/* Probe first: it refreshes the limits the batches must fit.
	 * Unreachable is not yet a failure: sealing works offline. */
	for (attempt = 0;; attempt++) {
		pr = probe(x);
		if (!is_transient(pr) || x->o->watch ||
		    attempt >= x->o->retries || stopped(x))
			break;
		nap(x, ag_backoff_next(&x->bo));
	}
	if (pr != GS_OK && !is_transient(pr))
		return pr;
	if (pr != GS_OK) {
		/* Out of coverage: seal everything; the batches wait. */
		if ((r = seal_all(x)) != GS_OK ||
		    (r = count_pending(x, 1)) != GS_OK)
			return r;
		return pr;
	}
	/* Everything unsent is about to be sealed: its count can wait for
	 * the summary. */
	if ((r = count_pending(x, 0)) != GS_OK)
		return r;
	ag_backoff_reset(&x->bo);
	progress(x, 0);
	if ((r = seal_and_send(x)) != GS_OK)
		return r;
	/* Attachments after the records, so a photo never delays data. */
	{
		struct ag_attach_sync_stats as;
		struct gs_progress pg;

		/* On a terminal: a line of its own over the batches' one,
		 * wiped after (the summary draws that one again). */
		gs_progress_init(&pg);
		if (x->o->progress && x->progress_shown)
			pg.width = (size_t)x->progress_width;
		if (x->o->progress)
			ag_store_set_progress(x->st, &pg);
		r = ag_attach_sync(x->st, x->http, x->dev, x->o->retries,
		    x->o->stop, &as);
		ag_store_set_progress(x->st, NULL);
		if (as.done > 0 || as.pending > 0)
			gs_log(GS_LOG_INFO, "attachments: %llu receipted, "
			    "%llu KiB sent (%llu KiB again after %llu cuts)%s",
			    (unsigned long long)as.done,
			    (unsigned long long)(as.bytes_sent / 1024),
			    (unsigned long long)(as.bytes_resent / 1024),
			    (unsigned long long)as.cuts,
			    as.pending ? "; some still pending" : "");
		if (r != GS_OK)
			return r;
	}
	/* Then the way back (issue 4): what this device holds, signed, for
	 * the platform's reconciliation, and the feed of what others and
	 * the admins changed, tasks and review verdicts. */
	{
		struct ag_pull_stats ps;

		/* The next page is fetched on the second connection while
		 * one is applied; not in the simulator's one order of
		 * events (serial). */
		if (!x->o->serial && x->http2 == NULL)
			(void)second_handle(x); /* else one at a time */
		r = ag_pull_sync(x->st, x->http, x->o->serial ? NULL :
		    x->http2, x->dev, x->o->progress, x->skew, &ps);
		/* Each page was applied with its cursor: what came before a
		 * failure counts. */
		x->sum->pulled_records += (uint64_t)ps.records;
		x->sum->pulled_tasks += (uint64_t)ps.tasks;
		x->sum->pulled_reviews += (uint64_t)ps.reviews;
		/* A reference document that does not verify (changed on the
		 * platform or on the way) ends a one-shot sync with 65.  A
		 * watch must not stop over it: the worker's saves would
		 * wait for a restart.  It says so once a round (status has
		 * it too, as reference_error), keeps the documents it holds
		 * and asks again next round. */
		if (r != GS_OK && r == ps.reference_error && x->o->watch &&
		    !is_transient(r)) {
			gs_log(GS_LOG_WARNING, "%s; kept the reference data held,"
			    " asking again next round", gs_errmsg(r));
			r = GS_OK;
		}
		return r;
	}
}

/* Is there anything to do (unsent changes or sealed batches)? */
static int
has_work(struct run *x, int *yes)
{
	int64_t unsent, sealed;
	int r;

	if ((r = ag_outbox_pending(x->db, &unsent, &sealed)) != GS_OK)
		return r;
	*yes = unsent > 0 || sealed > 0;
	if (!*yes)
		return ag_attach_pending(x->st, yes);
	return GS_OK;
}

static void
note(struct run *x, int r)
{
	char text[600];

	if (r == GS_OK)
		snprintf(text, sizeof(text), "ok");
	else
		snprintf(text, sizeof(text), "%s: %s", gs_error_code(r),
		    x->sum->message);
	/* Best effort: a failure to write the note must not hide the
	 * sync's own outcome. */
	(void)ag_device_note_sync(x->db, gs_now_ms(), text);
	/* The platform's clock against ours, for status (status.c): a
	 * device clock far off is the worker's to set. */
	if (x->skew_known) {
		char v[48];

		/* "SKEW_MS AT_MS": one write, AT by our own clock. */
		snprintf(v, sizeof(v), "%lld %lld", (long long)x->skew,
		    (long long)gs_now_ms());
		(void)ag_store_meta_set(x->st, "clock_skew", v);
	}
}

static int
final_result(struct run *x, int r)
{
	if (r != GS_OK && !is_transient(r))
		return r;
	if (x->dev != NULL && x->dev->revoked)
		return GS_FAIL(GS_EREVOKED,
		    "this device has been revoked by "
		    "the platform; its data was kept in the platform's "
		    "quarantine for an admin");
	if (r != GS_OK)
		return r;
	if (x->sum->rejected_batches > 0)
		return GS_FAIL(GS_EREJECTED,
		    "%llu batch(es) with %llu "
		    "change(s) refused by the platform; kept on this device",
		    (unsigned long long)x->sum->rejected_batches,
		    (unsigned long long)x->sum->rejected_records);
	/* Not "all acked" either: they will never be (status shows them
	 * rejected, with the problem). */
	if (x->sum->unsendable > 0)
		return GS_FAIL(GS_EREJECTED,
		    "%llu change(s) cannot be sent and were marked rejected; "
		    "kept on this device (see status)",
		    (unsigned long long)x->sum->unsendable);
	/* 0 says everything is acked: not while changes wait for the
	 * unlock to be sealed (a script that wipes a device after a good
	 * sync would lose them).  --watch goes on draining and says so
	 * in its warnings instead. */
	if (!x->o->watch && x->sum->unsent > 0 && ag_store_locked(x->st))
		return GS_FAIL(GS_EPERM, "locked: %llu change(s) wait for "
		    "'gridagent unlock' to be sealed; what was sealed is "
		    "delivered", (unsigned long long)x->sum->unsent);
	return GS_OK;
}

int
ag_sync_run(struct ag_store *st, const struct ag_sync_opts *o,
    struct ag_sync_summary *sum)
{
	struct run x;
	struct ag_http_opts ho;
	int r = GS_EINTERNAL, work, synced = 0;
	int64_t idle_since;

	memset(sum, 0, sizeof(*sum));
	memset(&x, 0, sizeof(x));
	x.st = st;
	x.db = ag_store_db(st);
	x.o = o;
	x.sum = sum;
	x.t0 = gs_mono_us();
	ag_backoff_init(&x.bo, o->base_backoff_ms, o->max_backoff_ms);
	x.kill_after_seal = fault("kill-after-seal");
	x.kill_before_ack = fault("kill-before-ack");

	if ((r = gs_crypto_init()) != GS_OK)
		goto out;
	if ((r = ag_device_load(x.db, &x.dev)) != GS_OK)
		goto out;
	ag_http_opts_default(&ho);
	if ((r = ag_http_new(o->platform ? o->platform : x.dev->platform_url,
		 &ho, &x.http)) != GS_OK)
		goto out;
	ag_http_set_cancel(x.http, o->stop);
	if ((r = ag_outbox_new(x.db, &x.ob)) != GS_OK)
		goto out;
	ag_outbox_set_opener(x.ob, ag_store_open_fields_cb,
	    ag_store_open_text_cb, st);
	/* Checkpoints on a thread of their own while this runs: not on the
	 * sync thread, between an answer and the next seal.  Without it
	 * the thread checkpoints itself, as before. */
	if ((r = gs_db_checkpointer_start(x.db, SYNC_CKPT_SOFT,
	    SYNC_CKPT_HARD)) != GS_OK)
		gs_log(GS_LOG_DEBUG, "no checkpoint thread: %s", gs_errmsg(r));

	for (;;) {
		r = pass(&x);
		if (!o->watch || stopped(&x))
			break;
		if (r != GS_OK && !is_transient(r) && r != GS_EREJECTED)
			break;
		if (x.dev->revoked)
			break;
		if (r != GS_OK) {
			/* Out of coverage: wait, then probe cheaply; the
			 * moment the platform answers, sync again. */
			snprintf(sum->message, sizeof(sum->message), "%s",
			    gs_errmsg(r));
			note(&x, r);
			if (x.progress_shown)
				progress(&x, 1);
			gs_log(GS_LOG_INFO,
			    "platform unreachable (%s); "
			    "backing off",
			    gs_errmsg(r));
			for (;;) {
				nap(&x, ag_backoff_next(&x.bo));
				if (stopped(&x))
					break;
				r = probe(&x);
				if (r == GS_OK || !is_transient(r))
					break;
			}
			if (stopped(&x) || (r != GS_OK && !is_transient(r)))
				break;
			ag_backoff_reset(&x.bo);
			continue;
		}
		note(&x, r);
		/* All sent: look for new saves now and then, and go to the
		 * platform now and then all the same: tasks, verdicts and
		 * others' changes come down only with a pass, and the
		 * heartbeat tells the platform this device is still there. */
		idle_since = gs_mono_us();
		for (work = 0; !work && !stopped(&x);) {
			nap(&x, o->idle_ms);
			if ((r = has_work(&x, &work)) != GS_OK)
				goto out;
			if (o->pull_ms > 0 &&
			    gs_mono_us() - idle_since >= o->pull_ms * 1000)
				work = 1;
		}
		if (stopped(&x))
			break;
	}
	/* What this run recorded without waiting for the disk (its acks)
	 * is on it before the run says what it did. */
	if (x.db != NULL) {
		int rs;

		gs_db_checkpointer_stop(x.db, NULL);
		rs = gs_db_sync_wal(x.db);
		synced = 1;
		if (r == GS_OK)
			r = rs;
	}
	if (r == GS_OK || is_transient(r))
		(void)count_pending(&x, 1);
	/* Issue 6: a revoked device crypto-shreds its data key once the
	 * platform has said so (sealed batches drain without it), and
	 * receipted records lose their pii after the retention period. */
	if (x.dev != NULL && x.dev->revoked && ag_store_protected(st))
		(void)ag_keys_destroy(st, "the platform revoked this device");
	(void)ag_purge(st, -1, gs_now_ms(), NULL);
	/* Stopped by a signal: say so.  The transfer it cut may have been
	 * the page ahead's, on the pull's second thread, whose detail this
	 * thread never sees: a stop during the pull read "platform
	 * unreachable (platform unreachable)". */
	if (r != GS_OK && is_transient(r) && stopped(&x))
		r = GS_FAIL(GS_ENETWORK, "stopped by a signal");
	r = final_result(&x, r);
out:
	if (x.db != NULL && !synced) {
		/* A run that failed on the way may have recorded acks. */
		gs_db_checkpointer_stop(x.db, NULL);
		(void)gs_db_sync_wal(x.db);
	}
	if (r != GS_OK)
		snprintf(
		    sum->message, sizeof(sum->message), "%s", gs_errmsg(r));
	sum->result = r;
	if (x.http != NULL) {
		ag_http_stats(x.http, &sum->bytes_sent, NULL, &sum->requests);
		if (x.http2 != NULL) {
			uint64_t sent2, req2;

			ag_http_stats(x.http2, &sent2, NULL, &req2);
			sum->bytes_sent += sent2;
			sum->requests += req2;
		}
		if (x.progress_shown || o->progress)
			progress(&x, 1);
	}
	sum->elapsed_ms = (gs_mono_us() - x.t0) / 1000;
	if (x.dev != NULL)
		note(&x, r);
	ag_outbox_free(x.ob);
	ag_http_free(x.http);
	ag_http_free(x.http2);
	ag_device_free(x.dev);
	return r;
}

json_t *
ag_sync_summary_json(const struct ag_sync_summary *s)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
			 "s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	    "result", s->result == GS_OK ? "ok" : gs_error_code(s->result),
	    "message", s->result == GS_OK ? "" : s->message, "outcome",
	    s->result == GS_OK ? "all acked" :
	    /* Refused here, not by the platform (final_result). */
	    s->result == GS_EREJECTED && s->rejected_batches == 0 &&
	    s->unsendable > 0 ? "cannot be sent, kept on the device" :
	    gs_strerror(s->result),
	    "sealed_batches", (json_int_t)s->sealed_batches, "sealed_records",
	    (json_int_t)s->sealed_records, "acked_batches",
	    (json_int_t)s->acked_batches, "acked_records",
	    (json_int_t)s->acked_records, "quarantined_batches",
	    (json_int_t)s->quarantined_batches, "rejected_batches",
	    (json_int_t)s->rejected_batches, "rejected_records",
	    (json_int_t)s->rejected_records, "unsendable",
	    (json_int_t)s->unsendable, "pending_batches",
	    (json_int_t)s->pending_batches, "unsent", (json_int_t)s->unsent,
	    "bytes_sent", (json_int_t)s->bytes_sent, "requests",
	    (json_int_t)s->requests, "elapsed_ms", (json_int_t)s->elapsed_ms,
	    "pulled_records", (json_int_t)s->pulled_records, "pulled_tasks",
	    (json_int_t)s->pulled_tasks, "pulled_reviews",
	    (json_int_t)s->pulled_reviews);
}

int
ag_sync_status(struct ag_store *st, json_t *into)
{
	struct gs_db *db = ag_store_db(st);
	struct ag_device *dev = NULL;
	struct ag_outbox_counts c;
	struct gs_stmt *q = NULL;
	json_t *o = NULL;
	char hex[2 * GS_HASHBYTES + 1];
	int r = GS_EINTERNAL;

	if ((r = ag_outbox_counts(db, &c)) != GS_OK)
		goto out;
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "sealed",
	    (json_int_t)c.sealed, "sealed_records",
	    (json_int_t)c.sealed_records, "sealed_bytes",
	    (json_int_t)c.sealed_bytes, "acked", (json_int_t)c.acked,
	    "quarantined", (json_int_t)c.quarantined, "rejected",
	    (json_int_t)c.rejected);
	if (o == NULL || json_object_set_new(into, "outbox", o) != 0) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	r = ag_device_load(db, &dev);
	if (r == GS_ENOTENROLLED) {
		gs_errmsg_clear();
		r = json_object_set_new(into, "device", json_null()) == 0
			? GS_OK
			: GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	if (r != GS_OK)
		goto out;
	{
		char id[33], dep[33];

		gs_hex_encode(id, dev->device_id, 16);
		gs_hex_encode(dep, dev->deployment, 16);
		o = json_pack("{s:s, s:s, s:s, s:I, s:b}", "id", id, "platform",
		    dev->platform_url, "deployment", dep, "enrolled_at",
		    (json_int_t)dev->enrolled_at, "revoked", dev->revoked);
	}
	if (o == NULL || json_object_set_new(into, "device", o) != 0) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	gs_hex_encode(hex, dev->chain_head, GS_HASHBYTES);
	if (json_object_set_new(
		into, "last_seq", json_integer(dev->last_seq)) != 0 ||
	    json_object_set_new(into, "chain_head", json_string(hex)) != 0 ||
	    json_object_set_new(into, "revoked", json_boolean(dev->revoked)) !=
		0) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	if ((r = gs_stmt_prepare(db,
		 "SELECT last_sync_at, last_sync_result "
		 "FROM device WHERE id = 1",
		 &q)) != GS_OK)
		goto out;
	if ((r = gs_stmt_step(q)) == GS_ROW) {
		json_t *at = gs_stmt_is_null(q, 0)
				 ? json_null()
				 : json_integer(gs_stmt_int64(q, 0));
		json_t *res = gs_stmt_is_null(q, 1)
				  ? json_null()
				  : json_string(gs_stmt_text(q, 1));

		if (json_object_set_new(into, "last_sync", at) != 0 ||
		    json_object_set_new(into, "last_sync_result", res) != 0) {
			gs_stmt_reset(q);
			r = GS_FAIL(GS_ENOMEM, "out of memory");
			goto out;
		}
		gs_stmt_reset(q);
	} else if (r != GS_DONE) {
		goto out;
	}
	r = GS_OK;
out:
	gs_stmt_finalize(q);
	ag_device_free(dev);
	return r;
}
