/*
 * attachments.c - sealed attachments on the platform: resumable uploads,
 * content-addressed storage, signed attachment receipts, and the admin
 * command that opens one (attachments.h has the files and endpoints).
 *
 * Crash safety: an upload's offset is nothing but the length of its
 * partial file, and a PUT is answered only after its bytes are appended
 * and fdatasync'd, so the offset a device is told is always on disk.
 *
 * Every PUT carries whole messages of the sealed stream, and each is
 * authenticated (decrypted, its plaintext added to the running hash)
 * before a byte of it is kept: the partial file never holds anything the
 * device did not seal, and when the last message is in, the only check
 * left is the hash - there is no second pass over the file.  A crash in
 * the middle of an append may leave a torn tail; it is cut off when the
 * upload's stream state is rebuilt from the file (uploads below).  Only
 * when the hash is the address is the file renamed to it: nobody can park
 * garbage under the hash of somebody else's photo, and the same photo
 * sent by two devices or for two records is stored once.
 *
 * Uploads are serialized by one mutex: appends are disk-bound anyway, and
 * it keeps two connections of one device (a retry racing the old one)
 * from interleaving their bytes.  The store lock is taken only for the
 * one row written at completion.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "attachment.h"
#include "attachments.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "http.h"
#include "platform.h"
#include "schema.h"
#include "store.h"
#include "core/banned.h"

static pthread_mutex_t att_lock = PTHREAD_MUTEX_INITIALIZER;

enum {
	Q_PUT = 0, /* the row of a complete attachment */
	Q_ACCESS,  /* the audit of an admin action */
	Q_HAS,	   /* is an attachment stored? */
	Q_TOTALS,  /* records expecting attachments: expected, present */
	Q_MISSING, /* records with an attachment not (yet) stored */
	Q_COUNT_
};

static const char *const qsql[Q_COUNT_] = {
    [Q_PUT] = "INSERT OR IGNORE INTO attachments (hash, device_id, "
	      "plain_len, sealed_len, chunk_size, created_at, received_at) "
	      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_ACCESS] = "INSERT INTO attachment_access (hash, at, actor, action, "
		 "detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    [Q_HAS] = "SELECT count(*) FROM attachments WHERE hash = ?1",
    /* Both read the record_attachments index kept at ingest (platform
     * 0005; written by the store since 0009), joined to the stored blobs by their hex form, so
     * reconcile never parses records' fields. */
    [Q_TOTALS] = "SELECT count(*), count(a.hash), count(DISTINCT ra.uuid), "
		 "(SELECT count(DISTINCT m.uuid) FROM record_attachments m "
		 " WHERE NOT EXISTS (SELECT 1 FROM attachments b "
		 "  WHERE lower(hex(b.hash)) = m.hash)) "
		 "FROM record_attachments ra LEFT JOIN attachments a "
		 "ON lower(hex(a.hash)) = ra.hash",
    [Q_MISSING] = "SELECT ra.uuid, r.type, ra.hash "
		  "FROM record_attachments ra JOIN records r ON r.uuid = ra.uuid "
		  "WHERE NOT EXISTS (SELECT 1 FROM attachments a "
		  " WHERE lower(hex(a.hash)) = ra.hash) "
		  "ORDER BY ra.uuid, ra.hash",
};

static int
stmt(struct pf_store *st, int q, struct gs_stmt **out)
{
	return pf_store_sqlite_stmt(
	    st, PF_ATT_SLOT0 + (unsigned)q, qsql[q], out);
}

/* ------------------------------------------------------------- paths */

static int
is_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
			(s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

int
pf_att_match(const char *path, char *dev, char *hash)
{
	static const char p1[] = "/v1/devices/", p2[] = "/attachments/";

	if (strncmp(path, p1, sizeof(p1) - 1) != 0)
		return 0;
	path += sizeof(p1) - 1;
	if (strlen(path) < 32 || strncmp(path + 32, p2, sizeof(p2) - 1) != 0)
		return 0;
	memcpy(dev, path, 32);
	dev[32] = '\0';
	path += 32 + sizeof(p2) - 1;
	if (strlen(path) != 64)
		return 0;
	memcpy(hash, path, 65);
	return 1;
}

size_t
pf_att_body_max(const char *method)
{
	return strcmp(method, "PUT") == 0 ? PF_ATT_PUT_MAX : 0;
}

static int
path_of(
    char *out, size_t n, const char *home, const char *dev, const char *hash)
{
	int k;

	if (dev != NULL)
		k = snprintf(
		    out, n, "%s/attachments/partial/%s-%s", home, dev, hash);
	else
		k = snprintf(out, n, "%s/attachments/%s", home, hash);
	if (k < 0 || (size_t)k >= n)
		return GS_FAIL(GS_EINVAL, "attachment path too long");
	return GS_OK;
}

static int
make_dirs(const char *home)
{
	char p[4096];

	snprintf(p, sizeof(p), "%s/attachments", home);
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return GS_FAIL(GS_EIO, "mkdir %s: %s", p, strerror(errno));
	snprintf(p, sizeof(p), "%s/attachments/partial", home);
	if (mkdir(p, 0700) != 0 && errno != EEXIST)
		return GS_FAIL(GS_EIO, "mkdir %s: %s", p, strerror(errno));
	return GS_OK;
}

/* fsync of a directory, so a rename into it survives a crash. */
static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY), r = GS_OK;

	if (fd < 0)
		return GS_FAIL(GS_EIO, "open %s: %s", dir, strerror(errno));
	if (fsync(fd) != 0)
		r = GS_FAIL(GS_EIO, "fsync %s: %s", dir, strerror(errno));
	close(fd);
	return r;
}

/* The header of a stored (or partial) sealed file. */
static int
read_prefix(const char *path, struct gs_att_header *h, uint64_t max)
{
	unsigned char pre[GS_ATT_PREFIXBYTES];
	ssize_t k;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return errno == ENOENT ? GS_ENOTFOUND
				       : GS_FAIL(GS_EIO, "open %s: %s", path,
					     strerror(errno));
	k = pread(fd, pre, sizeof(pre), 0);
	close(fd);
	if (k != (ssize_t)sizeof(pre))
		return GS_FAIL(GS_ECORRUPT, "%s: no sealed header", path);
	return gs_att_parse(h, pre, sizeof(pre), max);
}

/* --------------------------------------------------------- answering */

static void
send_json(struct pf_response *resp, int status, json_t *o)
{
	char *s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s == NULL || gs_buf_puts(&resp->body, s) != GS_OK ||
	    gs_buf_putc(&resp->body, '\n') != GS_OK) {
		free(s);
		pf_http_error(resp, GS_ENOMEM, NULL);
		return;
	}
	free(s);
	resp->status = status;
	resp->content_type = "application/json";
}

/* 200 {"offset","length","complete":true,"receipt"} for a stored file:
 * a fresh receipt naming the asking device (dedup: it may have been sent
 * by another device, or for another record). */
static void
answer_complete(struct pf_platform *pf, const unsigned char *devid,
    const struct gs_att_header *h, struct pf_response *resp)
{
	struct gs_att_receipt rc;
	unsigned char buf[GS_ATT_RECEIPT_BYTES];
	char hex[2 * GS_ATT_RECEIPT_BYTES + 1];
	json_t *o;
	int r;

	memset(&rc, 0, sizeof(rc));
	memcpy(rc.deployment, pf->keys.deployment, 16);
	memcpy(rc.device, devid, 16);
	memcpy(rc.hash, h->hash, GS_HASHBYTES);
	rc.plain_len = h->plain_len;
	rc.sealed_len = h->sealed_len;
	rc.server_time = gs_now_ms();
	rc.status = 1;
	if ((r = gs_att_receipt_sign(buf, &rc, pf->keys.receipt_sk)) != GS_OK) {
		pf_http_error(resp, r, NULL);
		return;
	}
	gs_hex_encode(hex, buf, sizeof(buf));
	o = json_pack("{s:I,s:I,s:b,s:s}", "offset", (json_int_t)h->sealed_len,
	    "length", (json_int_t)h->sealed_len, "complete", 1, "receipt", hex);
	send_json(resp, 200, o);
	json_decref(o);
}

static void
answer_partial(uint64_t offset, uint64_t length, struct pf_response *resp)
{
	json_t *o = json_pack("{s:I,s:o,s:b}", "offset", (json_int_t)offset,
	    "length", length ? json_integer((json_int_t)length) : json_null(),
	    "complete", 0);

	send_json(resp, 200, o);
	json_decref(o);
}

/* 409 with the platform's offset, so the device resends from there. */
static void
answer_conflict(uint64_t offset, uint64_t asked, struct pf_response *resp)
{
	char msg[160];
	json_t *o;

	snprintf(msg, sizeof(msg), "upload offset is %llu, not %llu",
	    (unsigned long long)offset, (unsigned long long)asked);
	o = json_pack("{s:{s:s,s:s},s:I}", "error", "code",
	    gs_error_code(GS_ECONFLICT), "message", msg, "offset",
	    (json_int_t)offset);
	send_json(resp, 409, o);
	json_decref(o);
}

/* The device must be enrolled and not revoked (a revoked device's data
 * stays on it: attachments are not quarantined like batches). */
static int
check_device(
    struct pf_platform *pf, const unsigned char *devid, struct pf_device *d)
{
	int r;

	(void)pthread_mutex_lock(&pf->read_lock);
	r = pf->reader->ops->device_get(pf->reader, devid, d);
	(void)pthread_mutex_unlock(&pf->read_lock);
	if (r == GS_ENOTFOUND)
		return GS_FAIL(
		    GS_EUNKNOWNDEVICE, "device is not enrolled here");
	if (r != GS_OK)
		return r;
	if (d->revoked)
		return GS_FAIL(GS_EREVOKED, "device has been revoked");
	return GS_OK;
}

/* ------------------------------------------------- uploads in progress */

/*
 * Every message of an upload is authenticated when its PUT arrives, before
 * a byte of it is kept, so the stream state (and the running hash of the
 * plaintext) must survive from one PUT to the next: it is kept here, in
 * memory, for the UPLOADS_MAX uploads used last.  It is only a cache: an
 * upload that is not here (the platform restarted, or it was evicted) is
 * rebuilt from its partial file, which holds nothing but authenticated
 * messages; a tail that does not authenticate (bytes written by a crash
 * in the middle of an append) is cut off, and the device resends from
 * there.  All of it is under att_lock.
 */
#define UPLOADS_MAX 64

struct upload {
	const struct pf_platform *pf; /* NULL: the slot is free */
	char key[32 + 1 + 64 + 1];    /* DEVICE-HASH, as the file name */
	struct gs_att_header h;
	struct gs_att_opener *o; /* authenticated up to the file's length */
	uint64_t used;
};

static struct upload uploads[UPLOADS_MAX];
static uint64_t use_clock;

static void
drop(struct upload *u)
{
	gs_att_open_free(u->o);
	memset(u, 0, sizeof(*u));
}

static struct upload *
find(const struct pf_platform *pf, const char *key)
{
	size_t i;

	for (i = 0; i < UPLOADS_MAX; i++)
		if (uploads[i].pf == pf && strcmp(uploads[i].key, key) == 0) {
			uploads[i].used = ++use_clock;
			return &uploads[i];
		}
	return NULL;
}

/* A slot for a new upload: a free one, or the one used longest ago. */
static struct upload *
take(const struct pf_platform *pf, const char *key,
    const struct gs_att_header *h, struct gs_att_opener *o)
{
	struct upload *u = &uploads[0];
	size_t i;

	for (i = 0; i < UPLOADS_MAX && u->pf != NULL; i++)
		if (uploads[i].pf == NULL || uploads[i].used < u->used)
			u = &uploads[i];
	drop(u);
	u->pf = pf;
	gs_strlcpy(u->key, key, sizeof(u->key));
	u->h = *h;
	u->o = o;
	u->used = ++use_clock;
	return u;
}

void
pf_att_release(const struct pf_platform *pf)
{
	size_t i;

	(void)pthread_mutex_lock(&att_lock);
	for (i = 0; i < UPLOADS_MAX; i++)
		if (uploads[i].pf == pf)
			drop(&uploads[i]);
	(void)pthread_mutex_unlock(&att_lock);
}

/* Cuts a partial file back to the bytes that authenticated. */
static int
cut_to(const char *path, int fd, uint64_t len)
{
	gs_log(GS_LOG_WARNING,
	    "%s: unauthenticated tail cut off at %llu bytes "
	    "(an append cut short by a crash?)",
	    path, (unsigned long long)len);
	if (ftruncate(fd, (off_t)len) != 0 || fdatasync(fd) != 0)
		return GS_FAIL(GS_EIO, "truncate %s: %s", path, strerror(errno));
	return GS_OK;
}

/*
 * Rebuilds the state of an upload from its partial file: the prefix,
 * then message after message as long as they authenticate.  *out is NULL
 * (offset 0) when there is no usable partial file: none, or one that does
 * not hold a whole prefix (a first write cut short) - that one is removed.
 */
static int
rebuild(struct pf_platform *pf, const char *partial, const char *key,
    uint64_t limit, struct upload **out)
{
	struct gs_att_header h;
	struct gs_att_opener *o = NULL;
	unsigned char pre[GS_ATT_PREFIXBYTES], *c = NULL;
	const unsigned char *bpk = NULL, *bsk = NULL;
	struct stat sb;
	uint64_t off = GS_ATT_PREFIXBYTES;
	int fd = -1, r = GS_EINTERNAL;

	*out = NULL;
	if ((fd = open(partial, O_RDWR | O_CLOEXEC)) < 0) {
		if (errno == ENOENT)
			return GS_OK;
		return GS_FAIL(GS_EIO, "open %s: %s", partial, strerror(errno));
	}
	if (fstat(fd, &sb) != 0) {
		r = GS_FAIL(GS_EIO, "stat %s: %s", partial, strerror(errno));
		goto out;
	}
	/* The header was checked whole before its first byte was kept;
	 * one that no longer reads back is started again. */
	if (pread(fd, pre, sizeof(pre), 0) != (ssize_t)sizeof(pre) ||
	    gs_att_parse(&h, pre, sizeof(pre), limit) != GS_OK ||
	    pf_batch_key(pf, h.platform_kid, &bpk, &bsk) != GS_OK ||
	    gs_att_open_new(&o, pre, &h, bpk, bsk) != GS_OK) {
		gs_errmsg_clear();
		(void)unlink(partial);
		r = GS_OK;
		goto out;
	}
	if ((c = gs_malloc((size_t)h.chunk_size + GS_SS_ABYTES)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "no memory to read an upload");
		goto out;
	}
	while (off < (uint64_t)sb.st_size) {
		uint64_t end = gs_att_span(&h, off, 1);
		ssize_t k;

		if (end == 0 || end > (uint64_t)sb.st_size)
			break;
		k = pread(fd, c, (size_t)(end - off), (off_t)off);
		if (k != (ssize_t)(end - off) ||
		    gs_att_open_feed(o, c, (size_t)k, -1) != GS_OK) {
			/* The opener is spent: start over up to off. */
			gs_errmsg_clear();
			gs_att_open_free(o);
			o = NULL;
			if ((r = cut_to(partial, fd, off)) != GS_OK)
				goto out;
			close(fd);
			fd = -1;
			r = rebuild(pf, partial, key, limit, out);
			goto out;
		}
		off = end;
	}
	if (off != (uint64_t)sb.st_size &&
	    (r = cut_to(partial, fd, off)) != GS_OK)
		goto out;
	*out = take(pf, key, &h, o);
	o = NULL;
	r = GS_OK;
out:
	if (fd >= 0)
		close(fd);
	gs_free(c);
	gs_att_open_free(o);
	return r;
}

/* The upload (dev, hash) as far as it is on disk: *u NULL and *have 0
 * when none is in progress. */
static int
upload_of(struct pf_platform *pf, const char *partial, const char *key,
    uint64_t limit, struct upload **u, uint64_t *have)
{
	struct stat sb;
	int r;

	*have = 0;
	if ((*u = find(pf, key)) != NULL) {
		/* Trust the cache only while the file agrees with it. */
		if (stat(partial, &sb) == 0 &&
		    (uint64_t)sb.st_size == gs_att_open_offset((*u)->o)) {
			*have = (uint64_t)sb.st_size;
			return GS_OK;
		}
		drop(*u);
		*u = NULL;
	}
	if ((r = rebuild(pf, partial, key, limit, u)) != GS_OK)
		return r;
	if (*u != NULL)
		*have = gs_att_open_offset((*u)->o);
	return GS_OK;
}

/* ------------------------------------------------- abandoned uploads */

/*
 * A device that never comes back (lost, reset, revoked) leaves its partial
 * uploads behind.  One untouched for the configured age (meta
 * "partial_max_age", seconds; PF_ATT_PARTIAL_AGE_DEFAULT) is removed - by
 * `gridplatform attachment sweep`, and by serve when a new upload starts,
 * at most once an hour.  A device that does come back later simply starts
 * that file over: the platform answers offset 0.
 */
#define SWEEP_EVERY_MS (3600 * 1000)

uint64_t
pf_att_partial_age(struct pf_platform *pf)
{
	char *v = NULL;
	uint64_t n = PF_ATT_PARTIAL_AGE_DEFAULT;

	if (pf->store->ops->meta_get(pf->store, "partial_max_age", &v) ==
		GS_OK &&
	    (gs_parse_u64(v, UINT64_C(1) << 40, &n) != GS_OK || n == 0))
		n = PF_ATT_PARTIAL_AGE_DEFAULT;
	gs_errmsg_clear();
	gs_free(v);
	return n;
}

/* The sweep itself; att_lock held. */
static int
sweep_locked(struct pf_platform *pf, uint64_t age_s, uint64_t *removed)
{
	char dir[4096], path[4096 + 256];
	struct dirent *e;
	struct stat sb;
	struct upload *u;
	DIR *d;
	int64_t now = gs_now_ms();
	int r = GS_OK;

	*removed = 0;
	snprintf(dir, sizeof(dir), "%s/attachments/partial", pf->home);
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? GS_OK
				       : GS_FAIL(GS_EIO, "open %s: %s", dir,
					     strerror(errno));
	while ((e = readdir(d)) != NULL) {
		int64_t idle_ms;

		if (e->d_name[0] == '.' || strlen(e->d_name) > 200)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
			continue;
		idle_ms = now - ((int64_t)sb.st_mtim.tv_sec * 1000 +
				    sb.st_mtim.tv_nsec / 1000000);
		if (idle_ms < 0 || (uint64_t)idle_ms / 1000 < age_s)
			continue;
		if (unlink(path) != 0) {
			r = GS_FAIL(GS_EIO, "unlink %s: %s", path,
			    strerror(errno));
			break;
		}
		if ((u = find(pf, e->d_name)) != NULL)
			drop(u);
		(*removed)++;
		gs_log(GS_LOG_INFO,
		    "swept abandoned partial upload %s (%lld "
		    "bytes, untouched for %lld s)",
		    e->d_name, (long long)sb.st_size,
		    (long long)(idle_ms / 1000));
	}
	closedir(d);
	return r;
}

int
pf_att_sweep(struct pf_platform *pf, uint64_t age_s, uint64_t *removed)
{
	int r;

	(void)pthread_mutex_lock(&att_lock);
	r = sweep_locked(pf, age_s, removed);
	(void)pthread_mutex_unlock(&att_lock);
	return r;
}

/* serve's housekeeping, when a new upload starts; att_lock held. */
static void
maybe_sweep(struct pf_platform *pf)
{
	static int64_t last;
	int64_t now = gs_now_ms();
	uint64_t age, n = 0;
	int r;

	if (last != 0 && now - last < SWEEP_EVERY_MS)
		return;
	last = now;
	(void)pthread_mutex_lock(&pf->lock);
	age = pf_att_partial_age(pf);
	(void)pthread_mutex_unlock(&pf->lock);
	if ((r = sweep_locked(pf, age, &n)) != GS_OK)
		gs_log(GS_LOG_WARNING, "sweep of partial uploads: %s",
		    gs_errmsg(r));
}

/* Appends body to the partial file and makes it durable. */
static int
append_durable(const char *path, const void *body, size_t n)
{
	const unsigned char *p = body;
	int fd, r = GS_OK;

	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return GS_FAIL(GS_EIO, "open %s: %s", path, strerror(errno));
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = GS_FAIL(
			    GS_EIO, "write %s: %s", path, strerror(errno));
			break;
		}
		p += k;
		n -= (size_t)k;
	}
	/* The offset we answer must survive a crash: data first. */
	if (r == GS_OK && fdatasync(fd) != 0)
		r = GS_FAIL(GS_EIO, "fdatasync %s: %s", path, strerror(errno));
	close(fd);
	return r;
}

/* The complete upload, every message of it authenticated on arrival:
 * the plaintext's hash must be the address; then the file is renamed to
 * it and recorded.  On a failed check the partial file is dropped.  The
 * upload's slot is freed either way. */
static int
finish(struct pf_platform *pf, struct upload *u, const char *partial,
    const char *final, const unsigned char *devid)
{
	struct gs_att_header h = u->h;
	struct gs_stmt *s = NULL;
	char dir[4096];
	int r;

	r = gs_att_open_done(u->o);
	drop(u);
	if (r != GS_OK) {
		(void)unlink(partial);
		return r;
	}
	if (rename(partial, final) != 0)
		return GS_FAIL(
		    GS_EIO, "rename %s: %s", partial, strerror(errno));
	snprintf(dir, sizeof(dir), "%s/attachments", pf->home);
	if ((r = sync_dir(dir)) != GS_OK)
		return r;
	(void)pthread_mutex_lock(&pf->lock);
	if ((r = stmt(pf->store, Q_PUT, &s)) == GS_OK &&
	    (r = gs_stmt_bind_blob(s, 1, h.hash, GS_HASHBYTES)) == GS_OK &&
	    (r = gs_stmt_bind_blob(s, 2, devid, 16)) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 3, (int64_t)h.plain_len)) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 4, (int64_t)h.sealed_len)) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 5, h.chunk_size)) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 6, h.created_at)) == GS_OK &&
	    (r = gs_stmt_bind_int64(s, 7, gs_now_ms())) == GS_OK) {
		r = gs_stmt_step(s);
		r = r == GS_DONE ? GS_OK : r;
	}
	(void)pthread_mutex_unlock(&pf->lock);
	/* The file is the truth; the row is its index.  A failed insert is
	 * logged, not fatal: the file is stored and verified. */
	if (r != GS_OK)
		gs_log(GS_LOG_WARNING, "attachment row not written: %s",
		    gs_errmsg(r));
	return GS_OK;
}

/* finish, logged; answers the device. */
static void
complete(struct pf_platform *pf, struct upload *u, const char *partial,
    const char *final, const unsigned char *devid, const char *dev,
    const char *hash, const char *ip, struct pf_response *resp)
{
	struct gs_att_header h = u->h;
	int r;

	if ((r = finish(pf, u, partial, final, devid)) != GS_OK) {
		gs_log(GS_LOG_WARNING,
		    "attachment %s from device %s (%s) "
		    "refused: %s",
		    hash, dev, ip, gs_errmsg(r));
		pf_http_error(resp, r, NULL);
		return;
	}
	gs_log(GS_LOG_INFO,
	    "attachment %s from device %s stored (%llu "
	    "bytes sealed)",
	    hash, dev, (unsigned long long)h.sealed_len);
	answer_complete(pf, devid, &h, resp);
}

static int
parse_offset(
    const struct pf_request *req, uint64_t *off, unsigned char sig[GS_SIGBYTES])
{
	const char *v = req->query != NULL ? req->query(req, "offset") : NULL;
	const char *sv = req->query != NULL ? req->query(req, "sig") : NULL;

	if (v == NULL)
		return GS_FAIL(GS_EINVAL, "PUT needs ?offset=N&sig=HEX");
	if (gs_parse_u64(v, UINT64_C(1) << 62, off) != GS_OK)
		return GS_FAIL(GS_EINVAL, "offset is not a number");
	if (sv == NULL || strlen(sv) != 2 * GS_SIGBYTES ||
	    gs_hex_decode(sig, GS_SIGBYTES, sv) != GS_OK)
		return GS_FAIL(GS_EBADSIG, "upload chunk without the device's "
					   "signature (sig)");
	return GS_OK;
}

/* The first chunk: everything about the upload is decided on its header
 * before a byte is kept.  *o is the opener of the new upload. */
static int
first_chunk(struct pf_platform *pf, const struct pf_request *req,
    const unsigned char *devid, const struct pf_device *d,
    const unsigned char *hashb, uint64_t limit, struct gs_att_header *h,
    struct gs_att_opener **o)
{
	unsigned char kid[GS_KIDBYTES];
	const unsigned char *bpk = NULL, *bsk = NULL;
	int r;

	if (req->body_len < GS_ATT_PREFIXBYTES)
		return GS_FAIL(GS_EENVELOPE,
		    "the first chunk must hold "
		    "the %d-byte sealed header",
		    GS_ATT_PREFIXBYTES);
	if ((r = gs_att_parse(h, req->body, req->body_len, limit)) != GS_OK)
		return r;
	if (memcmp(h->deployment, pf->keys.deployment, 16) != 0)
		return GS_FAIL(GS_EDEPLOYMENT, "attachment is for another "
					       "deployment");
	if (memcmp(h->device, devid, 16) != 0 ||
	    memcmp(h->hash, hashb, GS_HASHBYTES) != 0)
		return GS_FAIL(GS_EINVAL, "the path names another device "
					  "or hash than the sealed header");
	gs_crypto_key_id(kid, d->pk, sizeof(d->pk));
	if (memcmp(kid, h->device_kid, GS_KIDBYTES) != 0)
		return GS_FAIL(GS_EBADSIG, "attachment is signed with "
					   "another key than the device's");
	/* Current or old batch key (issue 6 rotation). */
	if ((r = pf_batch_key(pf, h->platform_kid, &bpk, &bsk)) != GS_OK ||
	    (r = gs_att_verify(req->body, d->pk)) != GS_OK)
		return r;
	return gs_att_open_new(o, req->body, h, bpk, bsk);
}

static void
put(struct pf_platform *pf, const struct pf_request *req,
    const unsigned char *devid, const struct pf_device *d, const char *dev,
    const char *hash, const unsigned char *hashb, struct pf_response *resp)
{
	struct gs_att_header h;
	struct gs_att_opener *fresh = NULL;
	struct upload *u = NULL;
	char partial[4096], final[4096], key[32 + 1 + 64 + 1];
	unsigned char sig[GS_SIGBYTES];
	const unsigned char *msgs;
	uint64_t off = 0, have = 0, end, limit = pf_att_limit(pf);
	int r;

	snprintf(key, sizeof(key), "%s-%s", dev, hash);
	if ((r = parse_offset(req, &off, sig)) != GS_OK ||
	    (r = make_dirs(pf->home)) != GS_OK ||
	    (r = path_of(partial, sizeof(partial), pf->home, dev, hash)) !=
		GS_OK ||
	    (r = path_of(final, sizeof(final), pf->home, NULL, hash)) != GS_OK)
		goto fail;
	/* Stored already (by this device earlier, or by another): the
	 * upload is complete whatever this body holds. */
	if ((r = read_prefix(final, &h, 0)) == GS_OK) {
		answer_complete(pf, devid, &h, resp);
		return;
	}
	if (r != GS_ENOTFOUND)
		goto fail;
	gs_errmsg_clear();
	if ((r = upload_of(pf, partial, key, limit, &u, &have)) != GS_OK)
		goto fail;
	/* Complete on disk, not yet renamed (a crash in between). */
	if (u != NULL && have == u->h.sealed_len) {
		complete(pf, u, partial, final, devid, dev, hash, req->ip,
		    resp);
		return;
	}
	if (off != have) {
		answer_conflict(have, off, resp);
		return;
	}
	/* Only the device may make us work on its upload. */
	if ((r = gs_att_chunk_verify(sig, devid, hashb, off,
		 req->body_len, d->pk)) != GS_OK)
		goto fail;
	if (u == NULL) {
		maybe_sweep(pf);
		if ((r = first_chunk(pf, req, devid, d, hashb, limit, &h,
			 &fresh)) != GS_OK)
			goto fail;
		msgs = (const unsigned char *)req->body + GS_ATT_PREFIXBYTES;
	} else {
		h = u->h;
		msgs = req->body;
	}
	if (req->body_len > h.sealed_len - have) {
		r = GS_FAIL(GS_EENVELOPE,
		    "%zu bytes at offset %llu pass the "
		    "sealed length %llu",
		    req->body_len, (unsigned long long)have,
		    (unsigned long long)h.sealed_len);
		goto fail;
	}
	/* Whole messages only, so each is checked before it is kept. */
	end = have + req->body_len;
	if (end != h.sealed_len && end != GS_ATT_PREFIXBYTES &&
	    gs_att_span(&h, end, 1) == 0) {
		r = GS_FAIL(GS_EENVELOPE,
		    "a chunk must end where a message "
		    "ends (%llu does not)",
		    (unsigned long long)end);
		goto fail;
	}
	if ((r = gs_att_open_feed(fresh != NULL ? fresh : u->o, msgs,
		 req->body_len - (size_t)(msgs - (const unsigned char *)
		     req->body), -1)) != GS_OK) {
		gs_log(GS_LOG_WARNING,
		    "attachment %s from device %s (%s) "
		    "refused at offset %llu: %s",
		    hash, dev, req->ip, (unsigned long long)have,
		    gs_errmsg(r));
		if (u != NULL)
			drop(u); /* rebuilt from the file next time */
		goto fail;
	}
	if ((r = append_durable(partial, req->body, req->body_len)) !=
	    GS_OK) {
		if (u != NULL)
			drop(u);
		goto fail;
	}
	if (fresh != NULL) {
		u = take(pf, key, &h, fresh);
		fresh = NULL;
	}
	if (end < h.sealed_len) {
		answer_partial(end, h.sealed_len, resp);
		return;
	}
	complete(pf, u, partial, final, devid, dev, hash, req->ip, resp);
	return;
fail:
	gs_att_open_free(fresh);
	pf_http_error(resp, r, NULL);
}

static void
get(struct pf_platform *pf, const unsigned char *devid, const char *dev,
    const char *hash, const char *ip, struct pf_response *resp)
{
	struct gs_att_header h;
	struct upload *u = NULL;
	char partial[4096], final[4096], key[32 + 1 + 64 + 1];
	uint64_t have = 0;
	int r;

	snprintf(key, sizeof(key), "%s-%s", dev, hash);
	if ((r = path_of(partial, sizeof(partial), pf->home, dev, hash)) !=
		GS_OK ||
	    (r = path_of(final, sizeof(final), pf->home, NULL, hash)) != GS_OK)
		goto fail;
	if ((r = read_prefix(final, &h, 0)) == GS_OK) {
		answer_complete(pf, devid, &h, resp);
		return;
	}
	if (r != GS_ENOTFOUND)
		goto fail;
	gs_errmsg_clear();
	if ((r = upload_of(pf, partial, key, pf_att_limit(pf), &u, &have)) !=
	    GS_OK)
		goto fail;
	if (u != NULL && have == u->h.sealed_len) {
		complete(pf, u, partial, final, devid, dev, hash, ip, resp);
		return;
	}
	answer_partial(have, u != NULL ? u->h.sealed_len : 0, resp);
	return;
fail:
	pf_http_error(resp, r, NULL);
}

void
pf_att_handle(struct pf_platform *pf, const struct pf_request *req,
    const char *dev, const char *hash, struct pf_response *resp)
{
	struct pf_device d;
	unsigned char devid[16], hashb[GS_HASHBYTES];
	int r;

	if (!is_hex(dev, 32) || !is_hex(hash, 64) ||
	    gs_hex_decode(devid, 16, dev) != GS_OK ||
	    gs_hex_decode(hashb, GS_HASHBYTES, hash) != GS_OK) {
		pf_http_error(resp, GS_EINVAL,
		    "device id and hash must be "
		    "lower-case hex");
		return;
	}
	if ((r = check_device(pf, devid, &d)) != GS_OK) {
		pf_http_error(resp, r, NULL);
		return;
	}
	(void)pthread_mutex_lock(&att_lock);
	if (strcmp(req->method, "PUT") == 0)
		put(pf, req, devid, &d, dev, hash, hashb, resp);
	else
		get(pf, devid, dev, hash, req->ip, resp);
	(void)pthread_mutex_unlock(&att_lock);
}

uint64_t
pf_att_limit_load(struct pf_store *st)
{
	char *v = NULL;
	uint64_t n = GS_ATT_MAX_DEFAULT;

	if (st->ops->meta_get(st, "max_attachment", &v) == GS_OK &&
	    gs_parse_u64(v, UINT64_C(1) << 40, &n) != GS_OK)
		n = GS_ATT_MAX_DEFAULT;
	gs_errmsg_clear();
	gs_free(v);
	return n;
}

uint64_t
pf_att_limit(const struct pf_platform *pf)
{
	return pf->limits.max_attachment ? pf->limits.max_attachment
					 : GS_ATT_MAX_DEFAULT;
}

/* ------------------------------------------------------------ the CLI */

static int
fail(int r)
{
	fprintf(stderr, "gridplatform: %s\n", gs_errmsg(r));
	return gs_error_exit(r);
}

static int
usage(const char *msg)
{
	fprintf(stderr,
	    "gridplatform: attachment: %s (see gridplatform "
	    "attachment --help)\n",
	    msg);
	return GS_EX_USAGE;
}

static int
audit(struct pf_platform *pf, const unsigned char *hash, const char *actor,
    const char *action, const char *detail)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = stmt(pf->store, Q_ACCESS, &s)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 1, hash, GS_HASHBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 2, gs_now_ms())) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 3, actor)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 4, action)) != GS_OK ||
	    (r = gs_stmt_bind_text(s, 5, detail)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	return r == GS_DONE ? GS_OK : r;
}

/*
 * `attachment get HASH --out FILE [--as NAME]`: the one place where the
 * platform turns a sealed attachment back into the photo.  The audit row
 * is committed BEFORE any plaintext is written, so no open goes
 * unrecorded; the plaintext goes to a temporary file (0600) renamed to
 * FILE only when the whole stream has verified.
 */
static int
cmd_get(struct pf_platform *pf, const char *hash, const char *outp,
    const char *actor)
{
	struct gs_att_header h;
	unsigned char hb[GS_HASHBYTES];
	char path[4096], tmp[4096];
	int in = -1, out = -1, r;

	if (!is_hex(hash, 64) || gs_hex_decode(hb, sizeof(hb), hash) != GS_OK)
		return GS_FAIL(GS_EINVAL, "HASH must be 64 lower-case hex "
					  "digits");
	if ((r = path_of(path, sizeof(path), pf->home, NULL, hash)) != GS_OK)
		return r;
	if ((r = read_prefix(path, &h, 0)) != GS_OK)
		return r == GS_ENOTFOUND ? GS_FAIL(GS_ENOTFOUND,
					       "no attachment "
					       "%s is stored here",
					       hash)
					 : r;
	if ((r = audit(pf, hb, actor, "open", outp)) != GS_OK)
		return r;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp-%ld", outp, (long)getpid()) >=
	    (int)sizeof(tmp))
		return GS_FAIL(GS_EINVAL, "--out path too long");
	if ((in = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = GS_FAIL(GS_EIO, "open %s: %s", path, strerror(errno));
		goto out;
	}
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) <
	    0) {
		r = GS_FAIL(GS_EIO, "create %s: %s", tmp, strerror(errno));
		goto out;
	}
	{
		const unsigned char *bpk = NULL, *bsk = NULL;

		if ((r = pf_batch_key(pf, h.platform_kid, &bpk, &bsk))
		    != GS_OK ||
		    (r = gs_att_open_fd(in, out, &h, bpk, bsk)) != GS_OK)
			goto out;
	}
	if (fsync(out) != 0) {
		r = GS_FAIL(GS_EIO, "fsync %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (rename(tmp, outp) != 0) {
		r = GS_FAIL(GS_EIO, "rename to %s: %s", outp, strerror(errno));
		goto out;
	}
	gs_log(GS_LOG_INFO, "attachment %s opened by %s into %s", hash, actor,
	    outp);
	r = GS_OK;
out:
	if (in >= 0)
		close(in);
	if (out >= 0) {
		close(out);
		if (r != GS_OK)
			(void)unlink(tmp);
	}
	return r;
}

/* 1 when the attachment with this hex hash is stored (its row is written
 * right after the verified file is renamed into place). */
static int
stored(struct pf_store *st, const char *hex)
{
	struct gs_stmt *s = NULL;
	unsigned char hb[GS_HASHBYTES];
	int64_t n = 0;

	if (!is_hex(hex, 64) || gs_hex_decode(hb, sizeof(hb), hex) != GS_OK ||
	    stmt(st, Q_HAS, &s) != GS_OK ||
	    gs_stmt_bind_blob(s, 1, hb, sizeof(hb)) != GS_OK ||
	    gs_stmt_one_int64(s, 0, &n) != GS_OK)
		return 0;
	return n > 0;
}

int
pf_att_count(struct pf_store *st, const json_t *fields, int64_t *expected,
    int64_t *present)
{
	const json_t *arr = json_object_get(fields, "attachments");
	size_t i;

	*expected = *present = 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return 0;
	for (i = 0; i < json_array_size(arr); i++) {
		const char *h = json_string_value(
		    json_object_get(json_array_get(arr, i), "hash"));

		(*expected)++;
		if (h != NULL && stored(st, h))
			(*present)++;
	}
	return 1;
}

/* The attachments a record expects and how many are stored. */
struct list_ctx {
	struct pf_platform *pf;
	int json, missing_only;
	int64_t records, complete, incomplete, expected, present;
};

static int
list_one(void *arg, const struct pf_record_view *rv)
{
	struct list_ctx *c = arg;
	json_t *fields = NULL, *arr, *missing = NULL, *o;
	size_t i, n, have = 0;
	int r = GS_OK;

	if (rv->deleted || rv->fields == NULL)
		return 0;
	fields = json_loads(rv->fields, 0, NULL);
	arr = json_object_get(fields, "attachments");
	if (!json_is_array(arr) || (n = json_array_size(arr)) == 0)
		goto out;
	if ((missing = json_array()) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		const char *h = json_string_value(
		    json_object_get(json_array_get(arr, i), "hash"));

		if (h == NULL || !is_hex(h, 64))
			continue;
		if (stored(c->pf->store, h))
			have++;
		else
			json_array_append_new(missing, json_string(h));
	}
	c->records++;
	c->expected += (int64_t)n;
	c->present += (int64_t)have;
	if (have == n)
		c->complete++;
	else
		c->incomplete++;
	if (c->missing_only && have == n)
		goto out;
	if (c->json) {
		o = json_pack("{s:s,s:s,s:I,s:I,s:O,s:s}", "uuid", rv->uuid,
		    "type", rv->type, "expected", (json_int_t)n, "present",
		    (json_int_t)have, "missing", missing, "status",
		    have == n ? "complete" : "missing");
		if (o != NULL) {
			json_dumpf(o, stdout, JSON_COMPACT);
			fputc('\n', stdout);
		}
		json_decref(o);
	} else {
		printf("%s %-6s expected %zu present %zu%s", rv->uuid, rv->type,
		    n, have, have == n ? "" : "  MISSING");
		for (i = 0; i < json_array_size(missing); i++)
			printf(" %s",
			    json_string_value(json_array_get(missing, i)));
		putchar('\n');
	}
out:
	json_decref(missing);
	json_decref(fields);
	return r;
}

static int
cmd_list(struct pf_platform *pf, int json, int missing_only)
{
	struct list_ctx c;
	int r;

	memset(&c, 0, sizeof(c));
	c.pf = pf;
	c.json = json;
	c.missing_only = missing_only;
	if ((r = pf->store->ops->record_each(
		 pf->store, NULL, NULL, list_one, &c)) != GS_OK)
		return r;
	if (!json)
		printf("records with attachments: %lld (complete %lld, "
		       "missing attachments %lld); attachments expected "
		       "%lld, present %lld\n",
		    (long long)c.records, (long long)c.complete,
		    (long long)c.incomplete, (long long)c.expected,
		    (long long)c.present);
	return fflush(stdout) == 0 ? GS_OK : GS_FAIL(GS_EIO,
	    "cannot write the output");
}

json_t *
pf_att_summary(struct pf_platform *pf)
{
	json_t *o = NULL, *missing = NULL, *cur = NULL, *hashes = NULL;
	struct gs_stmt *s = NULL;
	int64_t expected = 0, present = 0, records = 0, incomplete = 0;
	int r;

	if ((missing = json_array()) == NULL)
		goto fail;
	if (stmt(pf->store, Q_TOTALS, &s) != GS_OK)
		goto fail;
	if ((r = gs_stmt_step(s)) == GS_ROW) {
		expected = gs_stmt_int64(s, 0);
		present = gs_stmt_int64(s, 1);
		records = gs_stmt_int64(s, 2);
		incomplete = gs_stmt_int64(s, 3);
		gs_stmt_reset(s);
	} else if (r != GS_DONE)
		goto fail;
	if (stmt(pf->store, Q_MISSING, &s) != GS_OK)
		goto fail;
	/* One entry per record, its missing hashes in order: rows come
	 * sorted by uuid, so a record's rows are adjacent. */
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		const char *uuid = gs_stmt_text(s, 0);

		if (cur == NULL || strcmp(json_string_value(
			json_object_get(cur, "uuid")), uuid) != 0) {
			if ((hashes = json_array()) == NULL ||
			    (cur = json_pack("{s:s,s:s,s:o}", "uuid", uuid,
				 "type", gs_stmt_text(s, 1), "missing",
				 hashes)) == NULL ||
			    json_array_append_new(missing, cur) != 0) {
				gs_stmt_reset(s);
				goto fail;
			}
		}
		if (json_array_append_new(hashes,
			json_string(gs_stmt_text(s, 2))) != 0) {
			gs_stmt_reset(s);
			goto fail;
		}
	}
	if (r != GS_DONE)
		goto fail;
	o = json_pack("{s:I,s:I,s:I,s:I,s:o}", "records", (json_int_t)records,
	    "complete", (json_int_t)(records - incomplete), "expected",
	    (json_int_t)expected, "present", (json_int_t)present, "missing",
	    missing);
	return o;
fail:
	json_decref(missing);
	return NULL;
}

void
pf_att_print_summary(const json_t *s)
{
	const json_t *m = json_object_get(s, "missing"), *e;
	size_t i, j;

	if (s == NULL || json_integer_value(json_object_get(s, "records")) == 0)
		return;
	printf("\nattachments: %lld record(s) expect %lld, %lld present; "
	       "%zu record(s) missing attachments\n",
	    (long long)json_integer_value(json_object_get(s, "records")),
	    (long long)json_integer_value(json_object_get(s, "expected")),
	    (long long)json_integer_value(json_object_get(s, "present")),
	    json_array_size(m));
	json_array_foreach(m, i, e)
	{
		const json_t *h, *hs = json_object_get(e, "missing");

		printf("  MISSING %s %s:",
		    json_string_value(json_object_get(e, "uuid")),
		    json_string_value(json_object_get(e, "type")));
		json_array_foreach(hs, j, h)
		    printf(" %s", json_string_value(h));
		putchar('\n');
	}
}

static const char help[] =
    "usage: gridplatform attachment get HASH --out FILE [--as NAME]\n"
    "       gridplatform attachment list [--json] [--missing]\n"
    "       gridplatform attachment limit [BYTES] [--json]\n"
    "       gridplatform attachment sweep [--older-than SECONDS]\n"
    "       gridplatform attachment partial-age [SECONDS] [--json]\n"
    "get opens a stored sealed attachment into FILE (mode 0600); every\n"
    "open is recorded (who, when, where to) before a byte is written.\n"
    "list shows, per record that names attachments, how many are expected\n"
    "and how many are stored; records whose attachments never arrived are\n"
    "flagged MISSING with the missing hashes.  limit shows or sets the\n"
    "largest attachment the platform accepts (announced to devices).\n"
    "sweep removes partial uploads untouched for the partial age (or\n"
    "--older-than SECONDS), each logged; serve also sweeps when a new\n"
    "upload starts, at most once an hour.  A device that comes back later\n"
    "starts that file over.  partial-age shows or sets that age (default\n"
    "604800, 7 days).  limit and partial-age print the value in force;\n"
    "with --json one object {\"setting\", \"value\", \"default\"}, also\n"
    "after setting a value.\n";

/* limit and partial-age: the value, or one JSON object with --json. */
static int
print_setting(const char *name, uint64_t value, uint64_t dflt, int json)
{
	json_t *o;
	char *s;

	if (!json) {
		printf("%llu\n", (unsigned long long)value);
		return GS_OK;
	}
	o = json_pack("{s:s, s:I, s:I}", "setting", name, "value",
	    (json_int_t)value, "default", (json_int_t)dflt);
	s = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (s == NULL)
		return GS_FAIL(GS_ENOMEM, "attachment: out of memory");
	puts(s);
	free(s);
	return GS_OK;
}

int
pf_cmd_attachment(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	const char *sub, *hash = NULL, *outp = NULL, *actor = NULL,
			 *bytes = NULL, *older = NULL;
	int i, json = 0, missing = 0, r;
	uint64_t n, age = 0;

	if (argc < 2) {
		fputs("gridplatform: attachment needs a subcommand\n", stderr);
		fputs(help, stderr);
		return GS_EX_USAGE;
	}
	/* --help anywhere, as for every other command (main.c). */
	for (i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(help, stdout);
			return 0;
		}
	sub = argv[1];
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			outp = argv[++i];
		else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc)
			actor = argv[++i];
		else if (strcmp(argv[i], "--older-than") == 0 && i + 1 < argc)
			older = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--missing") == 0)
			missing = 1;
		else if (argv[i][0] != '-' && hash == NULL)
			hash = bytes = gs_id_lower(argv[i]);
		else
			return usage("unexpected argument");
	}
	if (strcmp(sub, "get") == 0 && (hash == NULL || outp == NULL))
		return usage("get needs HASH and --out FILE");
	if (strcmp(sub, "get") != 0 && strcmp(sub, "list") != 0 &&
	    strcmp(sub, "limit") != 0 && strcmp(sub, "sweep") != 0 &&
	    strcmp(sub, "partial-age") != 0)
		return usage("expected get, list, limit, sweep or "
			     "partial-age");
	if (older != NULL && (strcmp(sub, "sweep") != 0 ||
	    gs_parse_u64(older, UINT64_C(1) << 40, &age) != GS_OK))
		return usage("--older-than SECONDS goes with sweep");
	if (actor == NULL && (actor = getenv("USER")) == NULL)
		actor = "admin";
	/* list, and limit or partial-age shown (no value given), only
	 * read: a home that cannot be written is read all the same. */
	if (strcmp(sub, "list") == 0 || (bytes == NULL &&
	    (strcmp(sub, "limit") == 0 || strcmp(sub, "partial-age") == 0))) {
		if ((r = pf_platform_open_read(home, &pf)) != GS_OK)
			return fail(r);
		pf_platform_readonly_warn(pf, home);
	} else if ((r = pf_platform_open(home, &pf)) != GS_OK) {
		return fail(r);
	}
	if (strcmp(sub, "get") == 0) {
		r = cmd_get(pf, hash, outp, actor);
	} else if (strcmp(sub, "list") == 0) {
		r = cmd_list(pf, json, missing);
	} else if (strcmp(sub, "sweep") == 0) {
		/* Each removal is logged, as serve logs its sweeps. */
		if (getenv("GRIDSYNC_LOG") == NULL)
			gs_log_set_level(GS_LOG_INFO);
		if (older == NULL)
			age = pf_att_partial_age(pf);
		if (hash != NULL)
			r = GS_FAIL(GS_EINVAL, "sweep takes no argument");
		else if ((r = pf_att_sweep(pf, age, &n)) == GS_OK)
			printf("%llu abandoned partial upload(s) removed "
			       "(untouched for %llu s or more)\n",
			    (unsigned long long)n, (unsigned long long)age);
	} else if (strcmp(sub, "partial-age") == 0) {
		if (bytes == NULL) {
			r = print_setting(sub, pf_att_partial_age(pf),
			    PF_ATT_PARTIAL_AGE_DEFAULT, json);
		} else if (gs_parse_u64(bytes, UINT64_C(1) << 40, &n) !=
			       GS_OK ||
			   n == 0) {
			r = GS_FAIL(GS_EINVAL, "the partial age must be a "
					       "number of seconds >= 1");
		} else if ((r = pf->store->ops->meta_set(pf->store,
		    "partial_max_age", bytes)) == GS_OK && json) {
			r = print_setting(sub, n, PF_ATT_PARTIAL_AGE_DEFAULT,
			    json);
		}
	} else if (bytes == NULL) {
		r = print_setting(sub, pf_att_limit(pf), GS_ATT_MAX_DEFAULT,
		    json);
	} else if (gs_parse_u64(bytes, UINT64_C(1) << 40, &n) != GS_OK ||
		   n == 0) {
		r = GS_FAIL(GS_EINVAL, "limit must be a number of bytes >= 1");
	} else if ((r = pf->store->ops->meta_set(pf->store, "max_attachment",
	    bytes)) == GS_OK && json) {
		/* (pf's limits were read at open: the new value is n.) */
		r = print_setting(sub, n, GS_ATT_MAX_DEFAULT, json);
	}
	pf_platform_free(pf);
	return r == GS_OK ? 0 : fail(r);
}
