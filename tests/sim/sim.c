/*
 * sim.c - gssim, the deterministic field simulator (issue 7 item 7).
 *
 *	gssim [--seed S] [--seeds K] [--devices N] [--days D] [--keep]
 *	      [--quiet] [--dir DIR] [--plant lose|ack]
 *
 * ONE process runs a whole world: the REAL platform code (platform/:
 * routes, enrollment, ingest, merge, pull, the SQLite store) and N REAL
 * agents (agent/: store, outbox, sync, pull), each with its own store
 * under DIR (default /dev/shm).  Only the transport is simulated: the
 * agent's ag_http_request hands each request through ag_http_set_transport
 * to the platform's router (pf_api_handler, the same handler libmicrohttpd
 * calls) and the answer back.  Every decision is drawn from one PRNG
 * seeded with S, every random byte of the process (keys, nonces, ids)
 * comes from a stream derived from S (gs_crypto_testing_replayable_random),
 * syncs run without their courier thread (ag_sync_opts.serial), and time
 * is a simulated day counter, never a sleep: so a seed replays the same
 * schedule, the same faults and the same outcome.  (Timestamps inside the
 * stores are the wall clock's; they change no decision of the schedule.)
 * Every seed starts from one enrolled world (a platform and N enrolled
 * devices, made once per process from a fixed key stream, then copied),
 * and runs in its own forked child: seeds cannot leak state into each
 * other, and a seed that dies is still reported with its replay command.
 *
 * Each simulated day, in an order drawn from the seed, every device
 *   - saves 0-4 person records in one import (5% crash mid-save),
 *     sometimes edits or deletes one of its own (10% crash), and edits a
 *     record another device made that the pull brought it (concurrent
 *     edits of shared households: devices share a grid in tens);
 *   - is in coverage with probability 0.6; then it syncs over a link that
 *     is clean (70%), cuts requests before the platform sees them (10%),
 *     cuts answers after the platform committed (10%) or duplicates
 *     requests (10%), each request hit with probability 1/2; 8% of syncs
 *     crash the device at a random statement step.  (A body cut at any
 *     byte is one the platform never handles: http.c dispatches only
 *     complete bodies, so here the offset makes no difference; the
 *     byte-level cuts through real sockets are tests/integration/
 *     fault-cut.sh's.)
 *   - now and then has its store copied away (a backup), and later put
 *     back (a RESTORE FROM BACKUP: the device forgets what it did since,
 *     re-seals seqs the platform already holds; the platform must keep
 *     both branches, flag the fork, and apply each change once).
 * On about half the days the platform crashes at a random statement step
 * of some device's sync (before, inside or just after an ingest COMMIT)
 * and is restarted (store closed and opened again).  At the end the link
 * heals, every device syncs until all is acked, and the invariants 1-5 of
 * DESIGN.md section 8 are checked in C over the platform and every device
 * store, plus the simulator's own ledger of what each worker was told.
 *
 * What a crash here is, exactly (sync/db.c's step hook): from the chosen
 * step on, the crashed side's statements fail before reaching SQLite (the
 * chosen step itself runs, so a crash "just after COMMIT" keeps the
 * commit), the operation unwinds with an error that no worker sees, and
 * the store is closed (SQLite rolls back what was not committed, as
 * recovery after kill -9 would) and opened again.  Requests of a crashed
 * device are not sent; a crashed platform answers nothing (the device
 * sees a reset).  What a real crash can do that this cannot: tear or lose
 * unsynced writes (power loss: tests/unit/agent-powerloss.c's crash VFS
 * covers it), stop inside one sqlite3_step (SQLite's atomic commit makes
 * that the same as before or after it), and forget process memory: here
 * process-wide state (the uuid pool, libsodium) survives the crash, which
 * changes no stored state.  The error paths that run after the crash
 * point can only fail (every later statement is refused), except ROLLBACK,
 * which undoes exactly what recovery would.
 *
 * Output: one line per seed; a failing seed prints its violations and a
 * one-line replay command.  Exit 0 when every seed passed, 1 when one
 * failed, 2 on a usage or setup error.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "enrollment.h"
#include "gridagent.h"
#include "http.h"
#include "ids.h"
#include "platform.h"
#include "store.h"
#include "sync.h"
#include "uploader.h"
#include "core/banned.h"

#define URL "http://sim.invalid"
#define PATHMAX 512

/* ------------------------------------------------------------ the PRNG */

/* xoshiro256** seeded by splitmix64: small, fast, and the same on every
 * machine, which is all a replayable schedule needs. */
static uint64_t
splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

struct rng {
	uint64_t s[4];
};

static void
rng_seed(struct rng *g, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		g->s[i] = splitmix(&seed);
}

static uint64_t
rng_next(struct rng *g)
{
	uint64_t *s = g->s, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

/* Uniform enough in [0, n) for a schedule (n small). */
static unsigned
rnd(struct rng *g, unsigned n)
{
	return n ? (unsigned)(rng_next(g) % n) : 0;
}

/* True with probability pct/1000. */
static int
chance(struct rng *g, unsigned permille)
{
	return rnd(g, 1000) < permille;
}

/* ----------------------------------------------------------- uuid sets */

struct uuids {
	char (*v)[AG_UUID_LEN + 1];
	size_t n, cap;
};

static int
uuids_add(struct uuids *u, const char *s)
{
	if (u->n == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 16;
		void *p = gs_realloc(u->v, cap * sizeof(*u->v));

		if (p == NULL)
			return GS_FAIL(GS_ENOMEM, "out of memory");
		u->v = p;
		u->cap = cap;
	}
	gs_strlcpy(u->v[u->n++], s, sizeof(*u->v));
	return GS_OK;
}

static int
uuids_has(const struct uuids *u, const char *s)
{
	size_t i;

	for (i = 0; i < u->n; i++)
		if (strcmp(u->v[i], s) == 0)
			return 1;
	return 0;
}

static void
uuids_del(struct uuids *u, size_t i)
{
	memmove(u->v[i], u->v[i + 1], (u->n - i - 1) * sizeof(*u->v));
	u->n--;
}

static void
uuids_release(struct uuids *u)
{
	gs_free(u->v);
	memset(u, 0, sizeof(*u));
}

/* -------------------------------------------------------------- world */

struct dev {
	unsigned n;
	char home[PATHMAX], backup[PATHMAX];
	char worker[16], grid[16];
	struct ag_store *st;
	int has_backup, restored;
	struct uuids saved;	/* saves the worker was told about */
	struct uuids own;	/* own records still alive, for edits */
	struct uuids discarded; /* told, then undone by a restore */
	struct uuids delivered; /* delivered before a restore: must stay */
	struct uuids branch;	/* batch ids (as uuid-sized hex slots) the
				   device held before a restore */
};

enum link {
	LINK_CLEAN = 0,
	LINK_CUT_UP,   /* the request never reaches the platform */
	LINK_CUT_DOWN, /* the platform answered; the answer is lost */
	LINK_DUP       /* the request arrives twice */
};

struct stats {
	unsigned long saves, saves_crashed, edits, deletes, shared_edits;
	unsigned long syncs, syncs_crashed, offline, cut_up, cut_down, dups;
	unsigned long pf_crashes, backups, restores, forks, discarded;
	unsigned long requests, conflicts, records, batches;
};

struct sim {
	uint64_t seed;
	unsigned ndev, days;
	int quiet, keep, plant;
	struct rng g;
	char dir[PATHMAX], pfhome[PATHMAX], tmpl[PATHMAX];
	struct pf_platform *pf;
	struct pf_http_handler h;
	struct dev *devs;
	/* faults */
	int in_pf;		/* inside the platform's handler */
	long ag_kill, ag_steps; /* crash the device after step ag_kill */
	int ag_dead;
	long pf_kill, pf_steps; /* crash the platform after step pf_kill */
	int pf_dead;
	enum link link;
	char last_sync[512];	/* the last sync's message */
	struct stats s;
	unsigned violations;
};

static void
violation(struct sim *S, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
violation(struct sim *S, const char *fmt, ...)
{
	va_list ap;

	if (S->violations++ < 30) {
		printf("gssim: seed %llu: VIOLATION ",
		    (unsigned long long)S->seed);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		putchar('\n');
	}
}

/* --------------------------------------------------------- the crash hook */

static int
step_hook(void *ctx, struct gs_db *db, int after)
{
	struct sim *S = ctx;

	(void)db;
	if (S->in_pf) {
		if (S->pf_dead)
			return 1;
		if (after && S->pf_kill > 0 && ++S->pf_steps == S->pf_kill) {
			S->pf_dead = 1;
			S->s.pf_crashes++;
			return 1;
		}
		return 0;
	}
	if (S->ag_dead)
		return 1;
	if (after && S->ag_kill > 0 && ++S->ag_steps == S->ag_kill) {
		S->ag_dead = 1;
		return 1;
	}
	return 0;
}

/* ---------------------------------------------------------- the transport */

struct sim_req {
	struct pf_request req;
	char query[1024];
	const char *name[16], *value[16];
	size_t n;
};

/* Splits "a=1&b=2" in place (the values we send need no decoding:
 * numbers and hex). */
static void
split_query(struct sim_req *q)
{
	char *p = q->query, *amp, *eq;

	while (*p != '\0' && q->n < 16) {
		if ((amp = strchr(p, '&')) != NULL)
			*amp = '\0';
		if ((eq = strchr(p, '=')) != NULL) {
			*eq = '\0';
			q->name[q->n] = p;
			q->value[q->n++] = eq + 1;
		}
		if (amp == NULL)
			break;
		p = amp + 1;
	}
}

static const char *
sim_query(const struct pf_request *req, const char *name)
{
	const struct sim_req *q = req->conn_;
	size_t i;

	for (i = 0; i < q->n; i++)
		if (strcmp(q->name[i], name) == 0)
			return q->value[i];
	return NULL;
}

/* One request through the platform's router, as http.c would hand it. */
static void
serve(struct sim *S, const char *method, const char *path, const void *body,
    size_t len, struct pf_response *resp)
{
	struct sim_req q;
	char p[512];
	const char *qm = strchr(path, '?');
	size_t max, plen = qm ? (size_t)(qm - path) : strlen(path);

	memset(&q, 0, sizeof(q));
	if (plen >= sizeof(p))
		plen = sizeof(p) - 1;
	memcpy(p, path, plen);
	p[plen] = '\0';
	if (qm != NULL) {
		gs_strlcpy(q.query, qm + 1, sizeof(q.query));
		split_query(&q);
	}
	q.req.method = method;
	q.req.path = p;
	q.req.ip = "127.0.0.1";
	q.req.query = sim_query;
	q.req.conn_ = &q;
	S->in_pf = 1;
	max = S->h.body_max(S->h.ctx, method, p);
	gs_errmsg_clear();
	if (max > 0 && len > max) {
		pf_http_error(resp, GS_ETOOBIG, NULL);
	} else {
		q.req.body = max > 0 && len > 0 ? body : NULL;
		q.req.body_len = max > 0 ? len : 0;
		S->h.handle(S->h.ctx, &q.req, resp);
	}
	S->in_pf = 0;
	if (resp->status == 0)
		resp->status = 500;
}

static int
transport(void *ctx, const char *method, const char *path,
    const char *content_type, const void *body, size_t len,
    struct ag_http_response *out)
{
	struct sim *S = ctx;
	struct pf_response resp;
	int times = 1, i, r = GS_OK;

	(void)content_type;
	/* A dead device sends nothing; a dead platform accepts nothing. */
	if (S->ag_dead)
		return GS_FAIL(GS_ENETWORK, "sim: the device has crashed");
	if (S->pf_dead)
		return GS_FAIL(GS_ENETWORK, "sim: connection refused");
	S->s.requests++;
	if (S->link == LINK_CUT_UP && chance(&S->g, 500)) {
		S->s.cut_up++;
		return GS_FAIL(GS_ENETWORK, "sim: connection cut in the request");
	}
	if (S->link == LINK_DUP && chance(&S->g, 500)) {
		S->s.dups++;
		times = 2;
	}
	memset(&resp, 0, sizeof(resp));
	for (i = 0; i < times; i++) {
		gs_buf_release(&resp.body);
		gs_buf_init(&resp.body, PF_HTTP_RESPONSE_MAX);
		resp.status = 0;
		resp.content_type = NULL;
		serve(S, method, path, body, len, &resp);
		if (S->pf_dead)
			break;
	}
	if (S->pf_dead) {
		r = GS_FAIL(GS_ENETWORK, "sim: connection reset (the platform "
		    "crashed)");
		goto out;
	}
	if (S->link == LINK_CUT_DOWN && chance(&S->g, 500)) {
		S->s.cut_down++;
		r = GS_FAIL(GS_ENETWORK, "sim: connection cut in the answer");
		goto out;
	}
	out->status = resp.status;
	gs_strlcpy(out->content_type, resp.content_type ? resp.content_type :
	    "application/json", sizeof(out->content_type));
	if (resp.body.len > 0 &&
	    gs_buf_append(&out->body, resp.body.data, resp.body.len) != GS_OK)
		r = GS_FAIL(GS_EPROTOCOL, "sim: answer over its cap");
out:
	gs_buf_release(&resp.body);
	return r;
}

/* ------------------------------------------------------------- files */

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void
rm_tree(const char *dir)
{
	(void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int
copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in, outfd, r = GS_OK;
	ssize_t n;

	if ((in = open(from, O_RDONLY)) < 0)
		return GS_FAIL(GS_EIO, "%s: %s", from, strerror(errno));
	if ((outfd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0) {
		close(in);
		return GS_FAIL(GS_EIO, "%s: %s", to, strerror(errno));
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(outfd, buf, (size_t)n) != n) {
			r = GS_FAIL(GS_EIO, "%s: %s", to, strerror(errno));
			break;
		}
	if (n < 0)
		r = GS_FAIL(GS_EIO, "%s: %s", from, strerror(errno));
	close(in);
	close(outfd);
	return r;
}

/* Copies the tree under copy_from to copy_to (nftw has no context). */
static const char *copy_from, *copy_to;

static int
copy_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	char to[1024];

	(void)ftw;
	snprintf(to, sizeof(to), "%s%s", copy_to, p + strlen(copy_from));
	if (flag == FTW_D)
		return mkdir(to, sb->st_mode & 0777) == 0 || errno == EEXIST ?
		    0 : -1;
	if (flag == FTW_F)
		return copy_file(p, to) == GS_OK ? 0 : -1;
	return -1;
}

static int
copy_tree(const char *from, const char *to)
{
	copy_from = from;
	copy_to = to;
	if (nftw(from, copy_one, 16, FTW_PHYS) != 0)
		return GS_FAIL(GS_EIO, "cannot copy %s to %s", from, to);
	return GS_OK;
}

static void
pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
pathf(char *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, PATHMAX, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------------ the platform */

static int
pf_start(struct sim *S)
{
	int r;

	S->in_pf = 1;
	r = pf_platform_open(S->pfhome, &S->pf);
	S->in_pf = 0;
	if (r != GS_OK)
		return r;
	pf_api_handler(S->pf, &S->h);
	return GS_OK;
}

/* A crashed platform comes back: its store closed (what was not
 * committed is rolled back) and opened again. */
static int
pf_restart(struct sim *S)
{
	S->in_pf = 1;
	S->pf_dead = 1; /* nothing more reaches the store */
	pf_platform_free(S->pf);
	S->pf = NULL;
	S->in_pf = 0;
	S->pf_dead = 0;
	S->pf_kill = 0;
	return pf_start(S);
}

/* ------------------------------------------------------------- devices */

static int
dev_open(struct dev *d)
{
	return ag_store_open(d->home, &d->st);
}

/* After an operation: a device that crashed in it is closed (its open
 * transaction rolls back) and opened again, as after a reboot. */
static int
after_op(struct sim *S, struct dev *d, int *crashed)
{
	*crashed = S->ag_dead;
	S->ag_kill = 0;
	S->ag_steps = 0;
	if (!S->ag_dead)
		return GS_OK;
	ag_store_close(d->st);
	d->st = NULL;
	S->ag_dead = 0;
	return dev_open(d);
}

static void
arm_device(struct sim *S, unsigned permille, unsigned steps)
{
	S->ag_steps = 0;
	S->ag_kill = chance(&S->g, permille) ? 1 + (long)rnd(&S->g, steps) : 0;
}

struct saved_ctx {
	struct dev *d;
	int err;
};

static void
on_uuid(void *ctx, const char *uuid)
{
	struct saved_ctx *c = ctx;

	if (uuids_add(&c->d->saved, uuid) != GS_OK ||
	    uuids_add(&c->d->own, uuid) != GS_OK)
		c->err = GS_ENOMEM;
}

/* A valid GB 11643 number of someone born in Dongcheng, Beijing. */
static void
id_number(struct rng *g, char out[19])
{
	snprintf(out, 19, "110101%04u%02u%02u%03u", 1950 + rnd(g, 50),
	    1 + rnd(g, 12), 1 + rnd(g, 28), rnd(g, 1000));
	out[17] = gs_idcard_check_char(out);
	out[18] = '\0';
}

static int
save(struct sim *S, struct dev *d)
{
	struct gs_buf nd;
	struct saved_ctx c = {d, GS_OK};
	unsigned k = rnd(&S->g, 5), i;
	char id[19];
	int r, crashed;

	if (k == 0)
		return GS_OK;
	gs_buf_init(&nd, 1 << 20);
	for (i = 0; i < k; i++) {
		id_number(&S->g, id);
		if ((r = gs_buf_printf(&nd, "{\"name\":\"居民%u\",\"pop_type\":"
		    "\"REGISTERED\",\"id_number\":\"%s\",\"address\":\"北京市"
		    "东城区景山街道%u号\",\"phone\":\"1390013%04u\"}\n",
		    rnd(&S->g, 100000), id, 1 + rnd(&S->g, 300),
		    rnd(&S->g, 10000))) != GS_OK)
			goto out;
	}
	arm_device(S, 50, 20);
	r = ag_import_ndjson(d->st, "person", nd.data, nd.len, on_uuid, &c,
	    NULL);
	S->s.saves += k;
	if ((i = (unsigned)S->ag_dead) != 0)
		S->s.saves_crashed++;
	if (r != GS_OK && !i)
		violation(S, "device %u: a valid import failed: %s", d->n,
		    ag_errmsg(r));
	if ((r = after_op(S, d, &crashed)) != GS_OK)
		goto out;
	r = c.err;
out:
	gs_buf_release(&nd);
	return r;
}

struct others {
	const char *worker;
	struct uuids u;
};

static int
other_rec(void *ctx, const struct ag_record *rec)
{
	struct others *o = ctx;

	if (!rec->deleted && strcmp(rec->author, o->worker) != 0)
		(void)uuids_add(&o->u, rec->uuid);
	return 0;
}

static int
edit_day(struct sim *S, struct dev *d)
{
	char json[64];
	int r = GS_OK, crashed;

	if (d->own.n > 0 && chance(&S->g, 250)) {
		size_t i = rnd(&S->g, (unsigned)d->own.n);

		arm_device(S, 100, 20);
		if (chance(&S->g, 200)) {
			r = ag_delete(d->st, d->own.v[i], "moved away");
			S->s.deletes++;
			if (r == GS_OK)
				uuids_del(&d->own, i);
		} else {
			snprintf(json, sizeof(json), "{\"phone\":\"1390013%04u\"}",
			    rnd(&S->g, 10000));
			r = ag_edit(d->st, d->own.v[i], json, strlen(json));
			S->s.edits++;
		}
		if (r != GS_OK && !S->ag_dead && r != GS_ENOTFOUND)
			violation(S, "device %u: edit of its record %s failed: "
			    "%s", d->n, d->own.v[i], ag_errmsg(r));
		if ((r = after_op(S, d, &crashed)) != GS_OK)
			return r;
	}
	if (chance(&S->g, 250)) {
		/* A household another worker recorded, which the pull brought
		 * here: both may edit it before either syncs. */
		struct others o;

		memset(&o, 0, sizeof(o));
		o.worker = d->worker;
		if ((r = ag_list(d->st, "person", 0, other_rec, &o)) == GS_OK &&
		    o.u.n > 0) {
			size_t i = rnd(&S->g, (unsigned)o.u.n);

			snprintf(json, sizeof(json), "{\"phone\":\"1370013%04u\"}",
			    rnd(&S->g, 10000));
			r = ag_edit(d->st, o.u.v[i], json, strlen(json));
			S->s.shared_edits++;
			if (r != GS_OK && r != GS_ENOTFOUND)
				violation(S, "device %u: edit of shared record "
				    "%s failed: %s", d->n, o.u.v[i],
				    ag_errmsg(r));
			r = GS_OK;
		}
		uuids_release(&o.u);
	}
	return r;
}

static int
sync_dev(struct sim *S, struct dev *d, int *ok)
{
	struct ag_sync_opts o;
	struct ag_sync_summary sum;
	int r, crashed;

	ag_sync_opts_default(&o);
	o.retries = 0;
	o.serial = 1;
	r = ag_sync_run(d->st, &o, &sum);
	*ok = r == GS_OK;
	gs_strlcpy(S->last_sync, sum.message, sizeof(S->last_sync));
	if (r == GS_EREJECTED)
		violation(S, "device %u: the platform refused a batch: %s",
		    d->n, sum.message);
	if (S->pf_dead && (r = pf_restart(S)) != GS_OK)
		return r;
	S->pf_kill = 0;
	S->pf_steps = 0;
	if (S->ag_dead)
		S->s.syncs_crashed++;
	return after_op(S, d, &crashed);
}

static int
sync_day(struct sim *S, struct dev *d, int *pf_crash)
{
	unsigned l;
	int ok;

	if (!chance(&S->g, 600)) {
		S->s.offline++;
		return GS_OK;
	}
	l = rnd(&S->g, 10);
	S->link = l < 7 ? LINK_CLEAN : l == 7 ? LINK_CUT_UP :
	    l == 8 ? LINK_CUT_DOWN : LINK_DUP;
	arm_device(S, 80, 90);
	if (*pf_crash) {
		*pf_crash = 0;
		S->pf_steps = 0;
		S->pf_kill = 1 + (long)rnd(&S->g, 60);
	}
	S->s.syncs++;
	return sync_dev(S, d, &ok);
}

/* A copy of the store taken now, to be put back some day. */
static int
backup(struct sim *S, struct dev *d)
{
	char db[PATHMAX];
	int r;

	ag_store_close(d->st);
	d->st = NULL;
	pathf(db, "%s/agent.db", d->home);
	if ((r = copy_file(db, d->backup)) != GS_OK)
		return r;
	d->has_backup = 1;
	S->s.backups++;
	return dev_open(d);
}

static int
own_rec(void *ctx, const struct ag_record *rec)
{
	struct dev *d = ctx;

	if (!rec->deleted && strcmp(rec->author, d->worker) == 0)
		(void)uuids_add(&d->own, rec->uuid);
	return 0;
}

/* The old copy put back.  What the device did since is forgotten by it;
 * the platform must keep what it received and see the fork. */
static int
restore(struct sim *S, struct dev *d)
{
	struct gs_stmt *q = NULL;
	struct gs_db *db = ag_store_db(d->st);
	char path[PATHMAX], hex[AG_UUID_LEN + 1];
	int r;

	/* The batches the device held: the platform may hold them too. */
	if ((r = gs_stmt_prepare(db, "SELECT hex(batch_id) FROM outbox",
	    &q)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(q)) == GS_ROW) {
		gs_strlcpy(hex, gs_stmt_text(q, 0), sizeof(hex));
		if (!uuids_has(&d->branch, hex) &&
		    uuids_add(&d->branch, hex) != GS_OK) {
			gs_stmt_reset(q);
			r = GS_ENOMEM;
			break;
		}
	}
	gs_stmt_finalize(q);
	q = NULL;
	if (r != GS_DONE)
		return r;
	/* Saves whose every change the platform receipted: whatever the
	 * restore does to the device, the platform must keep them. */
	if ((r = gs_stmt_prepare(db, "SELECT r.uuid FROM record r WHERE NOT "
	    "EXISTS (SELECT 1 FROM change c WHERE c.uuid = r.uuid AND "
	    "c.state <> 2) AND NOT EXISTS (SELECT 1 FROM pending_creation p "
	    "WHERE p.uuid = r.uuid) AND NOT EXISTS (SELECT 1 FROM "
	    "sealed_creation s JOIN outbox o ON o.seq = s.batch_seq WHERE "
	    "s.uuid = r.uuid AND o.state <> 'acked')", &q)) != GS_OK)
		return r;
	while ((r = gs_stmt_step(q)) == GS_ROW) {
		const char *u = gs_stmt_text(q, 0);

		if (uuids_has(&d->saved, u) && !uuids_has(&d->delivered, u) &&
		    uuids_add(&d->delivered, u) != GS_OK) {
			gs_stmt_reset(q);
			r = GS_ENOMEM;
			break;
		}
	}
	gs_stmt_finalize(q);
	if (r != GS_DONE)
		return r;
	ag_store_close(d->st);
	d->st = NULL;
	pathf(path, "%s/agent.db", d->home);
	if ((r = copy_file(d->backup, path)) != GS_OK)
		return r;
	pathf(path, "%s/agent.db-wal", d->home);
	(void)unlink(path);
	pathf(path, "%s/agent.db-shm", d->home);
	(void)unlink(path);
	if ((r = dev_open(d)) != GS_OK)
		return r;
	d->restored = 1;
	S->s.restores++;
	/* Reported saves the backup does not hold are checked against the
	 * platform at the end: there if they were delivered before, else
	 * discarded by the restore (the worker's choice, not a loss). */
	d->own.n = 0;
	return ag_list(d->st, "person", 0, own_rec, d);
}

/* Names and places of device d in the world under dir. */
static void
dev_names(struct dev *d, const char *dir)
{
	snprintf(d->worker, sizeof(d->worker), "w%03u", d->n);
	/* Ten workers share a grid: their households overlap. */
	snprintf(d->grid, sizeof(d->grid), "1101010%02u",
	    (1 + d->n / 10) % 100);
	pathf(d->home, "%s/d%03u", dir, d->n);
	pathf(d->backup, "%s/d%03u.backup", dir, d->n);
}

static int
enroll(struct sim *S, struct dev *d)
{
	struct gs_buf code;
	struct ag_enroll_result res;
	char name[32], path[PATHMAX];
	int r;

	dev_names(d, S->dir);
	snprintf(name, sizeof(name), "worker %u", d->n);
	if (mkdir(d->home, 0700) != 0)
		return GS_FAIL(GS_EIO, "%s: %s", d->home, strerror(errno));
	pathf(path, "%s/agent.db", d->home);
	/* A store made once and copied: no migrations per device. */
	if ((r = copy_file(S->tmpl, path)) != GS_OK)
		return r;
	gs_buf_init(&code, 4096);
	S->in_pf = 1;
	r = pf_enroll_create(S->pf, d->worker, name, d->grid, 3600, &code);
	S->in_pf = 0;
	if (r == GS_OK)
		r = ag_enroll(d->home, code.data, NULL, &res);
	gs_buf_release(&code);
	return r;
}

/* --------------------------------------------------------------- checks */

static int64_t
one(struct sim *S, struct gs_db *db, const char *sql, const char *arg)
{
	struct gs_stmt *q = NULL;
	int64_t v = -1;
	int r;

	if ((r = gs_stmt_prepare(db, sql, &q)) != GS_OK ||
	    (arg != NULL && (r = gs_stmt_bind_text(q, 1, arg)) != GS_OK) ||
	    (r = gs_stmt_one_int64(q, 0, &v)) != GS_OK) {
		violation(S, "checker: %s: %s", sql, gs_errmsg(r));
		v = -1;
	}
	gs_stmt_finalize(q);
	return v;
}

/* Each query counts what must not exist. */
struct rule {
	const char *inv, *what, *sql;
};

static const struct rule platform_rules[] = {
	{"I2", "batches held twice", "SELECT count(*) FROM (SELECT 1 FROM "
	    "batches GROUP BY device_id, batch_id HAVING count(*) > 1)"},
	{"I2", "changes that made two revisions", "SELECT count(*) FROM "
	    "(SELECT 1 FROM revisions GROUP BY change_id HAVING count(*) > 1)"},
	{"I3", "batches from unenrolled devices", "SELECT count(*) FROM "
	    "batches WHERE device_id NOT IN (SELECT device_id FROM devices)"},
	{"I3", "records without their batch", "SELECT count(*) FROM records r "
	    "LEFT JOIN batches b ON b.id = r.batch WHERE b.id IS NULL OR "
	    "b.device_id <> r.device_id"},
	{"I3", "revisions without their batch", "SELECT count(*) FROM "
	    "revisions r LEFT JOIN batches b ON b.id = r.batch WHERE b.id IS "
	    "NULL OR b.device_id <> r.device_id"},
	{"I3", "changes without their batch", "SELECT count(*) FROM changes c "
	    "LEFT JOIN batches b ON b.id = c.batch WHERE b.id IS NULL"},
	{"I1", "conflicts not kept", "SELECT count(*) FROM changes c WHERE "
	    "c.outcome = 'conflict' AND NOT EXISTS (SELECT 1 FROM conflicts f "
	    "WHERE f.change_id = c.change_id)"},
};

/* Over the attached device store "a"; ?1 is the device id (hex). */
static const struct rule device_rules[] = {
	{"I1", "changes left unsent after a clean sync", "SELECT count(*) "
	    "FROM a.change WHERE state IN (0, 1) AND ?1 IS NOT NULL"},
	{"I1", "creations left unsent after a clean sync", "SELECT count(*) "
	    "FROM a.pending_creation WHERE ?1 IS NOT NULL"},
	{"I1", "creations left batched after a clean sync", "SELECT count(*) "
	    "FROM a.sealed_creation s JOIN a.outbox o ON o.seq = s.batch_seq "
	    "WHERE o.state <> 'acked' AND ?1 IS NOT NULL"},
	{"I1", "delivered creations the platform does not hold", "SELECT "
	    "count(*) FROM a.sealed_creation s JOIN a.outbox o ON o.seq = "
	    "s.batch_seq WHERE o.state = 'acked' AND ?1 IS NOT NULL AND NOT "
	    "EXISTS (SELECT 1 FROM changes p WHERE p.change_id = "
	    "s.change_id)"},
	{"I1", "valid changes refused (rejected or quarantined)",
	    "SELECT count(*) FROM a.change WHERE state IN (3, 4) AND ?1 IS "
	    "NOT NULL"},
	{"I1", "delivered changes the platform does not hold", "SELECT "
	    "count(*) FROM a.change c WHERE c.state = 2 AND ?1 IS NOT NULL AND "
	    "NOT EXISTS (SELECT 1 FROM changes p WHERE p.change_id = "
	    "c.change_id)"},
	{"I1", "conflicted changes without a kept conflict", "SELECT count(*) "
	    "FROM a.change c WHERE c.state = 5 AND ?1 IS NOT NULL AND NOT "
	    "EXISTS (SELECT 1 FROM conflicts f WHERE f.change_id = "
	    "c.change_id)"},
	{"I1", "batches still sealed after a clean sync", "SELECT count(*) "
	    "FROM a.outbox WHERE state = 'sealed' AND ?1 IS NOT NULL"},
	{"I4", "acked batches the platform does not hold with that receipt",
	    "SELECT count(*) FROM a.outbox o WHERE o.state IN ('acked', "
	    "'quarantined') AND NOT EXISTS (SELECT 1 FROM batches b WHERE "
	    "hex(b.device_id) = ?1 AND b.batch_id = o.batch_id AND "
	    "b.envelope_hash = o.hash AND b.receipt = o.receipt)"},
	{"I1", "records delivered but not on the platform", "SELECT count(*) "
	    "FROM a.record r WHERE ?1 IS NOT NULL AND NOT EXISTS (SELECT 1 "
	    "FROM a.change c WHERE c.uuid = r.uuid AND c.state <> 2) AND NOT "
	    "EXISTS (SELECT 1 FROM records p WHERE p.uuid = r.uuid)"},
};

/* The platform's ledger of a device that was never restored: one
 * unbroken chain, no gap, the same head as the device's. */
static const struct rule ledger_rules[] = {
	{"I3", "batches whose hash chain is not ok", "SELECT count(*) FROM "
	    "batches WHERE hex(device_id) = ?1 AND chain <> 'ok'"},
	{"I1", "seqs missing below the last one", "SELECT (SELECT "
	    "coalesce(max(seq), 0) FROM batches WHERE hex(device_id) = ?1) - "
	    "(SELECT count(DISTINCT seq) FROM batches WHERE hex(device_id) = "
	    "?1)"},
	{"I4", "ledgers (platform last seq, chain head) unlike the device's",
	    "SELECT count(*) FROM devices p, a.device d WHERE "
	    "hex(p.device_id) = ?1 AND (p.last_seq <> d.last_seq OR "
	    "p.chain_ok <> 1 OR (d.last_seq > 0 AND p.chain_head IS NOT "
	    "d.chain_head))"},
};

static void
check_envelopes(struct sim *S, struct gs_db *p)
{
	struct gs_stmt *q = NULL;
	unsigned char h[32];

	if (gs_stmt_prepare(p, "SELECT b.id, e.envelope, b.envelope_hash "
	    "FROM batches AS b LEFT JOIN batch_envelopes AS e "
	    "ON e.batch = b.id", &q) != GS_OK) {
		violation(S, "checker: batches: %s", gs_errmsg(GS_EDB));
		return;
	}
	while (gs_stmt_step(q) == GS_ROW) {
		S->s.batches++;
		gs_crypto_hash(h, sizeof(h), gs_stmt_blob(q, 1),
		    gs_stmt_bytes(q, 1), NULL, 0);
		if (gs_stmt_bytes(q, 1) == 0 || gs_stmt_bytes(q, 2) != 32 ||
		    memcmp(h, gs_stmt_blob(q, 2), 32) != 0)
			violation(S, "I3 platform batch row %lld: the kept "
			    "envelope does not hash to its name",
			    (long long)gs_stmt_int64(q, 0));
	}
	gs_stmt_finalize(q);
}

static void
check_device(struct sim *S, struct gs_db *p, struct dev *d)
{
	struct gs_db *a = NULL;
	struct gs_stmt *q = NULL;
	char path[PATHMAX], sql[PATHMAX + 64], dev[33];
	size_t i;
	int64_t v;

	pathf(path, "%s/agent.db", d->home);
	if (gs_db_open(path, NULL, GS_DB_READONLY, &a) != GS_OK ||
	    gs_db_integrity_check(a) != GS_OK)
		violation(S, "I5 device %u: integrity_check: %s", d->n,
		    gs_errmsg(GS_ECORRUPT));
	gs_db_close(a);
	snprintf(sql, sizeof(sql), "ATTACH DATABASE '%s' AS a", path);
	if (gs_db_exec(p, sql) != GS_OK) {
		violation(S, "checker: %s", gs_errmsg(GS_EDB));
		return;
	}
	dev[0] = '\0';
	if (gs_stmt_prepare(p, "SELECT hex(device_id) FROM a.device", &q) ==
	    GS_OK && gs_stmt_step(q) == GS_ROW) {
		gs_strlcpy(dev, gs_stmt_text(q, 0), sizeof(dev));
		gs_stmt_reset(q);
	}
	gs_stmt_finalize(q);
	q = NULL;
	if (dev[0] == '\0')
		violation(S, "I1 device %u: lost its identity", d->n);
	for (i = 0; i < sizeof(device_rules) / sizeof(device_rules[0]); i++)
		if ((v = one(S, p, device_rules[i].sql, dev)) != 0)
			violation(S, "%s device %u: %lld %s", device_rules[i].inv,
			    d->n, (long long)v, device_rules[i].what);
	for (i = 0; !d->restored &&
	    i < sizeof(ledger_rules) / sizeof(ledger_rules[0]); i++)
		if ((v = one(S, p, ledger_rules[i].sql, dev)) != 0)
			violation(S, "%s device %u: %lld %s", ledger_rules[i].inv,
			    d->n, (long long)v, ledger_rules[i].what);
	/* Every reported save is on the platform, once (records are keyed
	 * by uuid), and still on the device unless a restore took it. */
	for (i = 0; i < d->saved.n; i++) {
		const char *u = d->saved.v[i];

		if (one(S, p, "SELECT count(*) FROM records WHERE uuid = ?1",
		    u) == 1)
			continue;
		if (d->restored && !uuids_has(&d->delivered, u) &&
		    one(S, p, "SELECT count(*) FROM a.record WHERE uuid = ?1",
		    u) == 0) {
			/* Saved after the backup, never delivered, and the
			 * worker put the old copy back. */
			(void)uuids_add(&d->discarded, u);
			continue;
		}
		violation(S, "I1 device %u: reported save %s is not on the "
		    "platform", d->n, u);
	}
	S->s.discarded += d->discarded.n;
	if (!d->restored)
		for (i = 0; i < d->saved.n; i++)
			if (one(S, p, "SELECT count(*) FROM a.record WHERE "
			    "uuid = ?1", d->saved.v[i]) != 1)
				violation(S, "I1 device %u: reported save %s "
				    "is gone from the device", d->n,
				    d->saved.v[i]);
	/* I3: every batch the platform holds from this device is one of its
	 * kept envelopes, or one of a branch a restore forgot. */
	if (gs_stmt_prepare(p, "SELECT hex(b.batch_id) FROM batches b WHERE "
	    "hex(b.device_id) = ?1 AND NOT EXISTS (SELECT 1 FROM a.outbox o "
	    "WHERE o.batch_id = b.batch_id AND o.hash = b.envelope_hash AND "
	    "o.seq = b.seq)", &q) == GS_OK &&
	    gs_stmt_bind_text(q, 1, dev) == GS_OK) {
		while (gs_stmt_step(q) == GS_ROW)
			if (!uuids_has(&d->branch, gs_stmt_text(q, 0)))
				violation(S, "I3 device %u: platform batch %s "
				    "is no envelope the device kept", d->n,
				    gs_stmt_text(q, 0));
	}
	gs_stmt_finalize(q);
	if (d->restored && one(S, p, "SELECT count(*) FROM (SELECT 1 FROM "
	    "batches WHERE hex(device_id) = ?1 GROUP BY seq HAVING "
	    "count(*) > 1)", dev) > 0)
		S->s.forks++;
	(void)gs_db_exec(p, "DETACH DATABASE a");
}

static void
check(struct sim *S)
{
	struct gs_db *p = NULL;
	char path[PATHMAX];
	size_t i;
	int64_t v;
	unsigned n;

	pathf(path, "%s/platform.db", S->pfhome);
	if (gs_db_open(path, NULL, GS_DB_READONLY, &p) != GS_OK) {
		violation(S, "checker: %s: %s", path, gs_errmsg(GS_EDB));
		return;
	}
	if (gs_db_integrity_check(p) != GS_OK)
		violation(S, "I5 platform: integrity_check fails");
	for (i = 0; i < sizeof(platform_rules) / sizeof(platform_rules[0]);
	    i++)
		if ((v = one(S, p, platform_rules[i].sql, NULL)) != 0)
			violation(S, "%s platform: %lld %s",
			    platform_rules[i].inv, (long long)v,
			    platform_rules[i].what);
	check_envelopes(S, p);
	for (n = 0; n < S->ndev; n++)
		check_device(S, p, &S->devs[n]);
	S->s.records = (unsigned long)one(S, p, "SELECT count(*) FROM records",
	    NULL);
	S->s.conflicts = (unsigned long)one(S, p, "SELECT count(*) FROM "
	    "conflicts", NULL);
	gs_db_close(p);
}

/* --plant: damage the world after the run, so a test can see that the
 * checker catches it (a checker that cannot fail proves nothing).  The
 * damage goes to the first device that has something to damage (with few
 * devices and days, device 0 may have saved nothing: seed 1795718013 of
 * 4 x 3 once planted nothing there and passed); a world with nothing to
 * damage anywhere is an error, never a silent pass. */
static int
plant(struct sim *S)
{
	struct gs_db *db = NULL;
	char path[PATHMAX];
	unsigned n;
	int r;

	if (S->plant == 1) {
		/* A lost record: the platform forgets one reported save. */
		char sql[128];

		for (n = 0; n < S->ndev && S->devs[n].saved.n == 0; n++)
			;
		if (n == S->ndev)
			return GS_FAIL(GS_EINTERNAL, "no device saved anything: "
			    "nothing to lose");
		pathf(path, "%s/platform.db", S->pfhome);
		snprintf(sql, sizeof(sql), "PRAGMA foreign_keys=OFF; DELETE "
		    "FROM records WHERE uuid = '%s'", S->devs[n].saved.v[0]);
		if ((r = gs_db_open(path, NULL, 0, &db)) == GS_OK)
			r = gs_db_exec(db, sql);
		gs_db_close(db);
		return r;
	}
	/* A receipt the platform never signed. */
	for (n = 0; n < S->ndev; n++) {
		pathf(path, "%s/agent.db", S->devs[n].home);
		if ((r = gs_db_open(path, NULL, 0, &db)) == GS_OK)
			r = gs_db_exec(db, "UPDATE outbox SET receipt = "
			    "zeroblob(length(receipt)) WHERE seq = (SELECT "
			    "max(seq) FROM outbox WHERE state = 'acked')");
		if (r == GS_OK && gs_db_changes(db) > 0) {
			gs_db_close(db);
			return GS_OK;
		}
		gs_db_close(db);
		db = NULL;
		if (r != GS_OK)
			return r;
	}
	return GS_FAIL(GS_EINTERNAL, "no device has an acked batch: no "
	    "receipt to forge");
}

/* ------------------------------------------------------------- a seed */

static int
heal(struct sim *S)
{
	unsigned n, attempt;
	int r, ok;

	S->link = LINK_CLEAN;
	for (n = 0; n < S->ndev; n++) {
		for (attempt = 0; attempt < 5; attempt++) {
			if ((r = sync_dev(S, &S->devs[n], &ok)) != GS_OK)
				return r;
			if (ok)
				break;
		}
		if (!ok)
			violation(S, "device %u does not complete a clean "
			    "sync: %s", S->devs[n].n, S->last_sync);
	}
	return GS_OK;
}

static int
run_world(struct sim *S)
{
	unsigned *order = NULL, day, i, j, t;
	int r = GS_OK, pf_crash;

	if ((order = gs_calloc(S->ndev, sizeof(*order))) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	for (day = 1; day <= S->days; day++) {
		for (i = 0; i < S->ndev; i++)
			order[i] = i;
		for (i = S->ndev; i > 1; i--) {
			j = rnd(&S->g, i);
			t = order[i - 1];
			order[i - 1] = order[j];
			order[j] = t;
		}
		/* About every second day the platform crashes in the middle
		 * of the first sync of the day that reaches it. */
		pf_crash = chance(&S->g, 500);
		for (i = 0; i < S->ndev; i++) {
			struct dev *d = &S->devs[order[i]];

			if ((r = save(S, d)) != GS_OK ||
			    (r = edit_day(S, d)) != GS_OK)
				goto out;
			if (d->has_backup && chance(&S->g, 20))
				r = restore(S, d);
			else if (chance(&S->g, 30))
				r = backup(S, d);
			if (r != GS_OK || (r = sync_day(S, d, &pf_crash)) !=
			    GS_OK)
				goto out;
		}
	}
	r = heal(S);
out:
	gs_free(order);
	return r;
}

static int
run_seed(struct sim *S, const char *base)
{
	unsigned char key[32];
	char world[PATHMAX];
	unsigned n;
	int64_t t0 = gs_mono_us();
	int r, i;

	memset(&S->s, 0, sizeof(S->s));
	S->violations = 0;
	S->ag_kill = S->pf_kill = 0;
	S->ag_dead = S->pf_dead = 0;
	S->link = LINK_CLEAN;
	rng_seed(&S->g, S->seed);
	for (i = 0; i < 32; i++)
		key[i] = (unsigned char)(rng_next(&S->g) >> 56);
	gs_crypto_testing_replayable_random(key);
	pathf(S->dir, "%s/seed-%llu", base, (unsigned long long)S->seed);
	pathf(world, "%s/world", base);
	rm_tree(S->dir);
	pathf(S->pfhome, "%s/pf", S->dir);
	if ((S->devs = gs_calloc(S->ndev, sizeof(*S->devs))) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	/* Every seed starts from the same enrolled world (made once by
	 * make_world) and goes its own way from there. */
	if ((r = copy_tree(world, S->dir)) != GS_OK ||
	    (r = pf_start(S)) != GS_OK)
		goto out;
	for (n = 0; n < S->ndev; n++) {
		S->devs[n].n = n + 1;
		dev_names(&S->devs[n], S->dir);
		if ((r = dev_open(&S->devs[n])) != GS_OK)
			goto out;
	}
	if ((r = run_world(S)) != GS_OK)
		goto out;
out:
	for (n = 0; n < S->ndev; n++) {
		ag_store_close(S->devs[n].st);
		S->devs[n].st = NULL;
	}
	S->in_pf = 1;
	pf_platform_free(S->pf);
	S->pf = NULL;
	S->in_pf = 0;
	if (r == GS_OK) {
		if (S->plant && (r = plant(S)) != GS_OK)
			violation(S, "plant: %s", gs_errmsg(r));
		check(S);
	} else {
		violation(S, "the run stopped: %s: %s", gs_error_code(r),
		    gs_errmsg(r));
	}
	printf("gssim: seed %llu: %u devices x %u days: %lu saves (%lu "
	    "crashed), %lu edits, %lu deletes, %lu shared edits, %lu syncs "
	    "(%lu crashed), %lu offline device-days, %lu requests (%lu cut "
	    "up, %lu cut down, %lu duplicated), %lu platform crashes, %lu "
	    "backups, %lu restores (%lu forks, %lu saves discarded), "
	    "platform: %lu records, %lu batches, %lu conflicts; %s (%.2fs)\n",
	    (unsigned long long)S->seed, S->ndev, S->days, S->s.saves,
	    S->s.saves_crashed, S->s.edits, S->s.deletes, S->s.shared_edits,
	    S->s.syncs, S->s.syncs_crashed, S->s.offline, S->s.requests,
	    S->s.cut_up, S->s.cut_down, S->s.dups, S->s.pf_crashes,
	    S->s.backups, S->s.restores, S->s.forks, S->s.discarded,
	    S->s.records, S->s.batches, S->s.conflicts,
	    S->violations ? "VIOLATIONS" : "ok",
	    (double)(gs_mono_us() - t0) / 1e6);
	for (n = 0; n < S->ndev; n++) {
		uuids_release(&S->devs[n].saved);
		uuids_release(&S->devs[n].own);
		uuids_release(&S->devs[n].discarded);
		uuids_release(&S->devs[n].delivered);
		uuids_release(&S->devs[n].branch);
	}
	gs_free(S->devs);
	S->devs = NULL;
	if (S->violations == 0 && !S->keep)
		rm_tree(S->dir);
	else
		printf("gssim: kept %s\n", S->dir);
	return S->violations ? 1 : 0;
}

/*
 * The world every seed starts from, made once per process: a platform
 * with ndev enrolled devices (each from a store migrated once and
 * copied).  Its keys come from a fixed stream, so every process makes the
 * same world and a seed replays the same anywhere.
 */
static int
make_world(struct sim *S, const char *base)
{
	static const unsigned char world_key[32] = "gssim: the enrolled world";
	struct ag_store *st = NULL;
	char home[PATHMAX];
	unsigned n;
	int r;

	gs_crypto_testing_replayable_random(world_key);
	pathf(home, "%s/template", base);
	if ((r = ag_store_init(home, NULL, NULL, &st)) != GS_OK)
		return r;
	ag_store_close(st);
	pathf(S->tmpl, "%s/agent.db", home);
	pathf(S->dir, "%s/world", base);
	pathf(S->pfhome, "%s/pf", S->dir);
	if (mkdir(S->dir, 0700) != 0)
		return GS_FAIL(GS_EIO, "%s: %s", S->dir, strerror(errno));
	if ((S->devs = gs_calloc(S->ndev, sizeof(*S->devs))) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	S->in_pf = 1;
	r = pf_init_home(S->pfhome, URL);
	S->in_pf = 0;
	if (r == GS_OK)
		r = pf_start(S);
	for (n = 0; r == GS_OK && n < S->ndev; n++) {
		S->devs[n].n = n + 1;
		r = enroll(S, &S->devs[n]);
	}
	S->in_pf = 1;
	pf_platform_free(S->pf);
	S->pf = NULL;
	S->in_pf = 0;
	gs_free(S->devs);
	S->devs = NULL;
	return r;
}

static void
usage(void)
{
	fprintf(stderr, "usage: gssim [--seed S] [--seeds K] [--devices N] "
	    "[--days D] [--keep] [--quiet] [--dir DIR] [--plant lose|ack]\n");
}

int
main(int argc, char **argv)
{
	struct sim S;
	struct rusage ru;
	char base[PATHMAX];
	const char *dir = NULL;
	uint64_t seed = (uint64_t)time(NULL), seeds = 1, v, k;
	unsigned failed = 0;
	int64_t t0;
	int i, r;

	memset(&S, 0, sizeof(S));
	S.ndev = 100;
	S.days = 14;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *b = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--keep") == 0) {
			S.keep = 1;
			continue;
		}
		if (strcmp(a, "--quiet") == 0) {
			S.quiet = 1;
			continue;
		}
		if (b == NULL) {
			usage();
			return 2;
		}
		i++;
		if (strcmp(a, "--dir") == 0)
			dir = b;
		else if (strcmp(a, "--plant") == 0 && strcmp(b, "lose") == 0)
			S.plant = 1;
		else if (strcmp(a, "--plant") == 0 && strcmp(b, "ack") == 0)
			S.plant = 2;
		else if (gs_parse_u64(b, UINT64_MAX, &v) != GS_OK) {
			usage();
			return 2;
		} else if (strcmp(a, "--seed") == 0)
			seed = v;
		else if (strcmp(a, "--seeds") == 0 && v > 0)
			seeds = v;
		else if (strcmp(a, "--devices") == 0 && v > 0 && v <= 999)
			S.ndev = (unsigned)v;
		else if (strcmp(a, "--days") == 0 && v > 0 && v <= 3650)
			S.days = (unsigned)v;
		else {
			usage();
			return 2;
		}
	}
	gs_log_set_program("gssim");
	gs_log_set_level(GS_LOG_ERROR);
	if (dir == NULL)
		dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" :
		    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	/* mkdtemp, not the pid: a directory left by a run that was killed
	 * must not stop a later run that gets the same pid. */
	pathf(base, "%s/gssim.XXXXXX", dir);
	if (mkdtemp(base) == NULL) {
		fprintf(stderr, "gssim: %s: %s\n", base, strerror(errno));
		return 2;
	}
	gs_db_set_step_hook(step_hook, &S);
	ag_http_set_transport(transport, &S);
	if ((r = gs_crypto_init()) != GS_OK ||
	    (r = make_world(&S, base)) != GS_OK) {
		fprintf(stderr, "gssim: making the world: %s\n", gs_errmsg(r));
		rm_tree(base);
		return 2;
	}
	t0 = gs_mono_us();
	for (k = 0; k < seeds; k++) {
		pid_t pid;
		int st;

		S.seed = seed + k;
		/* Each seed in its own child: it starts from this process's
		 * state exactly (fork also empties the uuid pool), and a seed
		 * that dies still gets its seed printed. */
		fflush(stdout);
		if ((pid = fork()) < 0) {
			fprintf(stderr, "gssim: fork: %s\n", strerror(errno));
			return 2;
		}
		if (pid == 0) {
			r = run_seed(&S, base);
			fflush(stdout);
			exit(r);
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			continue;
		failed++;
		if (WIFSIGNALED(st))
			printf("gssim: seed %llu: DIED of signal %d\n",
			    (unsigned long long)S.seed, WTERMSIG(st));
		printf("gssim: FAILED seed %llu (replay: gssim --seed %llu "
		    "--devices %u --days %u)\n", (unsigned long long)S.seed,
		    (unsigned long long)S.seed, S.ndev, S.days);
	}
	/* The seeds' CPU: the children's, not the world's making. */
	getrusage(RUSAGE_CHILDREN, &ru);
	printf("gssim: %llu seeds, %u failed, %.3f s per seed (%.3f s of CPU)"
	    "\n", (unsigned long long)seeds, failed,
	    (double)(gs_mono_us() - t0) / 1e6 / (double)seeds,
	    ((double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6) /
	    (double)seeds);
	if (failed == 0 && !S.keep)
		rm_tree(base);
	return failed ? 1 : 0;
}
