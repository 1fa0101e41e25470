/*
 * attach_sync.c - uploading sealed attachments after the record batches
 * (attach.h; the wire is docs/PROTOCOL.md section 8).
 *
 * The platform's offset is the only truth about what arrived: every
 * attempt starts by asking for it (GET), and a PUT names the offset it
 * continues from, so a cut connection, a lost answer, a crash of either
 * side or two agents on one home can never duplicate or skip a byte - at
 * worst a chunk is sent again.  The chunk adapts to the link: halved after
 * a transfer that failed mid-way (a weak link loses less per cut), doubled
 * again after a run of successes (a good link pays fewer round trips and
 * fsyncs), but not back to the size that broke until the link has held
 * for RELAX_AFTER chunks.  A failure that made no progress counts against
 * `retries`; progress resets the count, so a link that cuts every few hundred
 * KiB still gets a 20 MB photo through.
 *
 * A chunk is always whole messages of the sealed stream (gs_att_span), so
 * the platform can authenticate each before it keeps a byte, and the
 * chunk's signature covers only its place and length (PROTOCOL.md 8.3).
 *
 * Nothing here writes the database per chunk: the device learns the
 * offset from the platform, so the sent/resent counters are saved once
 * per attachment attempt, for `status` and the benchmark only.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "attach.h"
#include "attachment.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/progress.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "store.h"
#include "uploader.h"
#include "core/banned.h"

#define CHUNK_MIN (64u * 1024)
#define CHUNK_START (1024u * 1024)
#define CHUNK_MAX (8u * 1024 * 1024) /* = the platform's PF_ATT_PUT_MAX */
#define GROW_AFTER 2   /* successes in a row before the chunk doubles */
#define RELAX_AFTER 32 /* ... and before a size that broke is tried again */

struct one {
	unsigned char hash[GS_HASHBYTES];
	char hex[65];
	uint64_t sealed_len;
	uint64_t plain_len;
	int plain_kept;
};

struct up {
	struct ag_store *st;
	struct ag_http *h;
	const struct ag_device *dev;
	int retries;
	volatile sig_atomic_t *stop;
	struct ag_attach_sync_stats *stats;
	uint32_t chunk, chunk_max;
	unsigned streak;
	uint32_t ceiling; /* the chunk size that last broke (0: none) */
	long kill_after_chunk, chunks_here;
	char dev_hex[33];
	/* On a terminal (the store's progress, set by sync): which file of
	 * how many is on its way. */
	struct gs_progress *pg;
	size_t nth, nall;
};

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

static int
stopped(const struct up *u)
{
	return u->stop != NULL && *u->stop != 0;
}

static void
nap_ms(int64_t ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	(void)nanosleep(&ts, NULL);
}

/* The answer of GET or PUT: offset, complete, receipt. */
struct answer {
	uint64_t offset;
	int complete;
	unsigned char receipt[GS_ATT_RECEIPT_BYTES];
	int has_receipt;
};

static int
parse_answer(const struct ag_http_response *resp, struct answer *a)
{
	json_t *o = NULL, *off, *rc;
	json_error_t je;
	const char *hex;
	int r = GS_OK;

	memset(a, 0, sizeof(*a));
	o = json_loadb(
	    resp->body.data ? resp->body.data : "", resp->body.len, 0, &je);
	off = json_object_get(o, "offset");
	if (o == NULL || !json_is_integer(off) || json_integer_value(off) < 0) {
		r = GS_FAIL(GS_EPROTOCOL,
		    "attachment answer without an "
		    "offset (HTTP %ld)",
		    resp->status);
		goto out;
	}
	a->offset = (uint64_t)json_integer_value(off);
	a->complete = json_is_true(json_object_get(o, "complete"));
	rc = json_object_get(o, "receipt");
	hex = json_string_value(rc);
	if (hex != NULL) {
		if (strlen(hex) != 2 * GS_ATT_RECEIPT_BYTES ||
		    gs_hex_decode(a->receipt, GS_ATT_RECEIPT_BYTES, hex) !=
			GS_OK) {
			r = GS_FAIL(GS_EPROTOCOL, "attachment receipt is not "
						  "hex");
			goto out;
		}
		a->has_receipt = 1;
	}
out:
	json_decref(o);
	return r;
}

/* Classifies an HTTP answer: GS_OK with *a for 200 and 409 (the offset
 * to go on from); the error of the body otherwise. */
static int
judge(const struct ag_http_response *resp, struct answer *a)
{
	char msg[300];
	int e;

	if (resp->status == 200 || resp->status == 409)
		return parse_answer(resp, a);
	e = ag_http_error_body(resp, msg, sizeof(msg));
	if (e == GS_EPROTOCOL)
		return GS_FAIL(resp->status >= 500 ? GS_EBUSY : GS_EPROTOCOL,
		    "attachment upload: HTTP %ld", resp->status);
	return GS_FAIL(e, "%s", msg);
}

static int
ask(struct up *u, const char *path, struct answer *a)
{
	struct ag_http_response resp;
	int r;

	ag_http_response_init(&resp);
	if ((r = ag_http_request(u->h, "GET", path, NULL, NULL, 0, &resp)) ==
	    GS_OK)
		r = judge(&resp, a);
	ag_http_response_release(&resp);
	return r;
}

static int
send_chunk(struct up *u, const struct one *f, const char *path,
    const unsigned char *buf, size_t n, uint64_t off, struct answer *a)
{
	struct ag_http_response resp;
	unsigned char sig[GS_SIGBYTES];
	char p[512], hex[2 * GS_SIGBYTES + 1];
	int r;

	/* Only this device can add to its upload (PROTOCOL.md 8.3). */
	if ((r = gs_att_chunk_sign(sig, u->dev->device_id, f->hash, off,
		 (uint64_t)n, u->dev->sign_sk)) != GS_OK)
		return r;
	gs_hex_encode(hex, sig, sizeof(sig));
	snprintf(p, sizeof(p), "%s?offset=%llu&sig=%s", path,
	    (unsigned long long)off, hex);
	ag_http_response_init(&resp);
	if ((r = ag_http_request(u->h, "PUT", p, "application/octet-stream",
		 buf, n, &resp)) == GS_OK)
		r = judge(&resp, a);
	ag_http_response_release(&resp);
	return r;
}

/* The receipt must verify and name this device and this content.  Not
 * the sealed length: the platform may hold the same photo sealed by
 * another device, with another chunk size. */
static int
check_receipt(struct up *u, const struct one *f, const struct answer *a)
{
	struct gs_att_receipt rc;
	int r;

	if (!a->has_receipt)
		return GS_FAIL(GS_EPROTOCOL, "complete without a receipt");
	if ((r = gs_att_receipt_verify(&rc, a->receipt, GS_ATT_RECEIPT_BYTES,
		 u->dev->receipt_pk)) != GS_OK)
		return r;
	if (memcmp(rc.deployment, u->dev->deployment, 16) != 0 ||
	    memcmp(rc.device, u->dev->device_id, 16) != 0 ||
	    memcmp(rc.hash, f->hash, GS_HASHBYTES) != 0 ||
	    rc.plain_len != f->plain_len)
		return GS_FAIL(GS_EPROTOCOL, "attachment receipt names "
					     "another attachment");
	return GS_OK;
}

/* Saves the outcome of one attempt; on done also the receipt. */
static int
note(struct up *u, const struct one *f, uint64_t sent, uint64_t resent,
    const struct answer *done, const char *err, int failed)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(ag_store_db(u->st),
		 done != NULL
		     ? "UPDATE attachment SET state = 'done', sent = ?2, "
		       "resent = "
		       "resent + ?3, attempts = attempts + 1, last_error = "
		       "NULL, "
		       "receipt = ?4, done_at = ?5 WHERE hash = ?1"
		     : "UPDATE attachment SET sent = ?2, resent = resent + ?3, "
		       "attempts = attempts + 1, last_error = ?4, state = CASE "
		       "WHEN ?5 THEN 'failed' ELSE 'sealed' END WHERE hash = "
		       "?1",
		 &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_blob(s, 1, f->hash, GS_HASHBYTES)) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 2, (int64_t)sent)) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 3, (int64_t)resent)) == GS_OK &&
	    (r = done != NULL ? gs_stmt_bind_blob(
				    s, 4, done->receipt, GS_ATT_RECEIPT_BYTES)
			      : gs_stmt_bind_text(s, 4, err)) == GS_OK &&
	    (r = gs_stmt_bind_int64(
		 s, 5, done != NULL ? gs_now_ms() : failed)) == GS_OK) {
		r = gs_stmt_step(s);
		r = r == GS_DONE ? GS_OK : r;
	}
	gs_stmt_finalize(s);
	return r;
}

/* After the receipt is committed: the sealed file has served its
 * purpose, and a kept plaintext goes too unless configured otherwise. */
static void
cleanup(struct up *u, const struct one *f)
{
	char p[4096], *keep = NULL;

	snprintf(p, sizeof(p), "%s/attachments/sealed/%s", ag_store_home(u->st),
	    f->hex);
	(void)unlink(p);
	if (!f->plain_kept)
		return;
	if (ag_store_meta_get(u->st, "keep_plain_after_receipt", &keep) ==
		GS_OK &&
	    strcmp(keep, "1") == 0) {
		gs_free(keep);
		return;
	}
	gs_errmsg_clear();
	gs_free(keep);
	snprintf(p, sizeof(p), "%s/attachments/plain/%s", ag_store_home(u->st),
	    f->hex);
	(void)unlink(p);
}

static int
transient(int r)
{
	return gs_error_class(r) == GS_CLASS_RETRY;
}

/* Opens the sealed file and reads its header (for the message
 * boundaries).  A file lost on this device (deleted by hand, a restored
 * backup) is GS_ENOTFOUND: nothing to send, and the platform will show the
 * record's attachment missing; the others go on. */
static int
open_sealed(const char *file, int *fdp, struct gs_att_header *h)
{
	unsigned char pre[GS_ATT_PREFIXBYTES];
	int fd, r;

	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0)
		return GS_FAIL(errno == ENOENT ? GS_ENOTFOUND : GS_EIO,
		    "sealed attachment %s: %s", file, strerror(errno));
	if (pread(fd, pre, sizeof(pre), 0) != (ssize_t)sizeof(pre)) {
		close(fd);
		return GS_FAIL(GS_EIO, "sealed attachment %s is short", file);
	}
	if ((r = gs_att_parse(h, pre, sizeof(pre), 0)) != GS_OK) {
		close(fd);
		return r;
	}
	*fdp = fd;
	return GS_OK;
}

static int
upload(struct up *u, const struct one *f)
{
	struct gs_att_header h;
	struct answer a;
	char path[256], file[4096];
	unsigned char *buf = NULL;
	uint64_t off = 0, resent = 0, sent_here = 0, lost_off = 0, lost_n = 0;
	int fd = -1, fails = 0, r = GS_EINTERNAL, asked = 0;

	snprintf(path, sizeof(path), "/v1/devices/%s/attachments/%s",
	    u->dev_hex, f->hex);
	snprintf(file, sizeof(file), "%s/attachments/sealed/%s",
	    ag_store_home(u->st), f->hex);
	if ((buf = gs_malloc(CHUNK_MAX)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "no memory for an upload chunk");
		goto out;
	}
	for (;;) {
		if (stopped(u)) {
			r = GS_FAIL(GS_ENETWORK, "stopped by a signal");
			goto out;
		}
		if (!asked) {
			if ((r = ask(u, path, &a)) != GS_OK)
				goto failed;
			asked = 1;
			/* A PUT that broke and did not move the offset was
			 * lost whole: the cost of that cut (an upper bound:
			 * the link may have carried only part of it). */
			if (lost_n > 0 && a.offset <= lost_off)
				resent += lost_n;
			lost_n = 0;
		}
		if (a.complete) {
			if ((r = check_receipt(u, f, &a)) != GS_OK)
				goto out;
			if ((r = note(u, f, f->sealed_len, resent, &a, NULL,
				 0)) != GS_OK)
				goto out;
			cleanup(u, f);
			u->stats->done++;
			gs_log(GS_LOG_INFO,
			    "attachment %.16s... receipted "
			    "(%llu bytes sent, %llu again after cuts)",
			    f->hex, (unsigned long long)sent_here,
			    (unsigned long long)resent);
			r = GS_OK;
			goto out;
		}
		if (a.offset > f->sealed_len) {
			r = GS_FAIL(GS_EPROTOCOL,
			    "platform offset %llu is past "
			    "the sealed length",
			    (unsigned long long)a.offset);
			goto out;
		}
		off = a.offset;
		if (u->pg != NULL && gs_progress_due(u->pg))
			gs_progress_show(u->pg, "sync: attachment %zu of %zu, "
			    "%.1f of %.1f MiB sent", u->nth, u->nall,
			    (double)off / 1048576.0,
			    (double)f->sealed_len / 1048576.0);
		if (fd < 0 && (r = open_sealed(file, &fd, &h)) != GS_OK)
			goto out;
		if (h.sealed_len != f->sealed_len) {
			r = GS_FAIL(GS_ECORRUPT,
			    "sealed attachment %s: its "
			    "header says %llu bytes, not %llu",
			    file, (unsigned long long)h.sealed_len,
			    (unsigned long long)f->sealed_len);
			goto out;
		}
		{
			/* Whole messages: the platform checks each before
			 * it keeps it. */
			uint64_t end = gs_att_span(&h, off, u->chunk);
			size_t n = (size_t)(end - off);
			ssize_t k;

			if (end == 0 || end - off > CHUNK_MAX) {
				r = GS_FAIL(GS_EPROTOCOL,
				    "platform offset %llu "
				    "is not where a message of the sealed "
				    "attachment ends",
				    (unsigned long long)off);
				goto out;
			}
			k = pread(fd, buf, n, (off_t)off);

			if (k != (ssize_t)n) {
				r = GS_FAIL(GS_EIO,
				    "sealed attachment %s is "
				    "short",
				    file);
				goto out;
			}
			sent_here += n;
			u->stats->bytes_sent += n;
			r = send_chunk(u, f, path, buf, n, off, &a);
			if (r != GS_OK) {
				lost_off = off;
				lost_n = n;
			}
		}
		if (r != GS_OK)
			goto failed;
		fails = 0;
		/* Grow, but not back to a size that broke, unless the
		 * link has held for a long while since. */
		if (++u->streak >= RELAX_AFTER)
			u->ceiling = 0;
		if (u->streak % GROW_AFTER == 0 && u->chunk < u->chunk_max &&
		    (u->ceiling == 0 || u->chunk * 2 < u->ceiling))
			u->chunk = u->chunk * 2 > u->chunk_max ? u->chunk_max
							       : u->chunk * 2;
		if (u->kill_after_chunk > 0 &&
		    ++u->chunks_here == u->kill_after_chunk)
			(void)raise(SIGKILL);
		continue;
	failed:
		if (!transient(r))
			goto out;
		/* A transfer that broke: smaller chunks from now on, then
		 * ask the platform where to go on from. */
		u->stats->cuts++;
		u->streak = 0;
		u->ceiling = u->chunk;
		if (u->chunk / 2 >= CHUNK_MIN)
			u->chunk /= 2;
		asked = 0;
		if (++fails > u->retries) {
			gs_log(GS_LOG_INFO, "attachment %.16s...: %s", f->hex,
			    gs_errmsg(r));
			goto out;
		}
		/* A short pause only after repeated failures: the common
		 * case, a cut mid-chunk, is best answered at once. */
		if (fails > 1)
			nap_ms(100 * (int64_t)fails);
	}
out:
	if (r != GS_OK) {
		int nr;

		/* Keep the primary error's message. */
		char keepmsg[300];

		gs_strlcpy(keepmsg, gs_errmsg(r), sizeof(keepmsg));
		/* A refusal for good is 'failed': --watch does not spin
		 * on it; an explicit sync tries it again. */
		nr = note(u, f, off, resent, NULL, keepmsg, !transient(r));
		if (nr != GS_OK)
			gs_log(GS_LOG_WARNING,
			    "attachment %.16s...: outcome "
			    "not recorded: %s",
			    f->hex, gs_errmsg(nr));
		(void)GS_FAIL(r, "%s", keepmsg);
	}
	u->stats->bytes_resent += resent;
	if (fd >= 0)
		close(fd);
	gs_free(buf);
	return r;
}

int
ag_attach_sync(struct ag_store *st, struct ag_http *h,
    const struct ag_device *dev, int retries, volatile sig_atomic_t *stop,
    struct ag_attach_sync_stats *stats)
{
	struct gs_stmt *s = NULL;
	struct one *list = NULL;
	struct up u;
	size_t n = 0, cap = 0, i;
	const char *e;
	uint64_t v;
	int r = GS_OK, first = GS_OK;

	memset(stats, 0, sizeof(*stats));
	memset(&u, 0, sizeof(u));
	u.st = st;
	u.h = h;
	u.dev = dev;
	u.retries = retries;
	u.stop = stop;
	u.stats = stats;
	u.pg = ag_store_progress(st);
	u.chunk_max = CHUNK_MAX;
	/* $GRIDAGENT_ATTACH_CHUNK caps the chunk (tests, benchmarks). */
	if ((e = getenv("GRIDAGENT_ATTACH_CHUNK")) != NULL &&
	    gs_parse_u64(e, CHUNK_MAX, &v) == GS_OK && v >= 1024)
		u.chunk_max = (uint32_t)v;
	u.chunk = CHUNK_START < u.chunk_max ? CHUNK_START : u.chunk_max;
	u.kill_after_chunk = fault("kill-after-chunk");
	ag_device_id_hex(dev, u.dev_hex);
	/* The list first, then the uploads: no statement stays open
	 * across the updates. */
	if ((r = gs_stmt_prepare(ag_store_db(st),
		 "SELECT hash, sealed_len, "
		 "plain_kept, plain_len FROM attachment WHERE state IN "
		 "('sealed', "
		 "'failed') ORDER BY created_at, hash",
		 &s)) != GS_OK)
		goto out;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		if (n == cap) {
			struct one *nl;

			cap = cap ? 2 * cap : 16;
			if ((nl = gs_realloc(list, cap * sizeof(*list))) ==
			    NULL) {
				gs_stmt_reset(s);
				r = GS_FAIL(GS_ENOMEM, "out of memory");
				goto out;
			}
			list = nl;
		}
		if (gs_stmt_bytes(s, 0) != GS_HASHBYTES)
			continue;
		memcpy(list[n].hash, gs_stmt_blob(s, 0), GS_HASHBYTES);
		gs_hex_encode(list[n].hex, list[n].hash, GS_HASHBYTES);
		list[n].sealed_len = (uint64_t)gs_stmt_int64(s, 1);
		list[n].plain_kept = (int)gs_stmt_int64(s, 2);
		list[n].plain_len = (uint64_t)gs_stmt_int64(s, 3);
		n++;
	}
	if (r != GS_DONE)
		goto out;
	r = GS_OK;
	for (i = 0; i < n; i++) {
		if (stopped(&u)) {
			first =
			    first ? first
				  : GS_FAIL(GS_ENETWORK, "stopped by a signal");
			break;
		}
		u.nth = i + 1;
		u.nall = n;
		r = upload(&u, &list[i]);
		if (r == GS_OK)
			continue;
		/* The link is down: the others would fail the same way. */
		if (transient(r)) {
			first = first ? first : r;
			break;
		}
		/* A refusal of one file (damaged on this device?) must not
		 * hold back the others; it is kept and reported, and the
		 * run ends as "rejected" (exit 65; --watch goes on).  The
		 * error is a line of its own, not the progress line's tail. */
		if (u.pg != NULL)
			gs_progress_done(u.pg);
		gs_log(GS_LOG_ERROR,
		    "attachment %.16s... cannot be sent: %s "
		    "(kept on this device; see status)",
		    list[i].hex, gs_errmsg(r));
		if (gs_error_class(r) != GS_CLASS_REFUSE &&
		    gs_error_class(r) != GS_CLASS_INPUT) {
			first = first ? first : r;
			break;
		}
		if (first == GS_OK) {
			char m[400];

			gs_strlcpy(m, gs_errmsg(r), sizeof(m));
			first = GS_FAIL(GS_EREJECTED, "attachment %.16s...: %s",
			    list[i].hex, m);
		}
	}
	r = first;
out:
	if (u.pg != NULL)
		gs_progress_done(u.pg);
	gs_stmt_finalize(s);
	{
		int pend = 0;

		(void)ag_attach_pending(st, &pend);
		stats->pending = (uint64_t)pend;
	}
	gs_free(list);
	return r;
}
