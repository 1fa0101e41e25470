/*
 * attach.c - `gridagent attach UUID FILE`: seal a photo for the platform
 * and name it in its record (attach.h).
 *
 * Order, and why it is crash-safe:
 *   1. hash the file, then seal it to a temporary file, fsync, rename it
 *      to attachments/sealed/HASH and fsync the directory;
 *   2. one transaction: the record's "attachments" field (an ordinary
 *      edit, so it travels in the next batch), the attachment row, the
 *      record_attachment row, the audit.
 * A crash after 1 leaves a sealed file no row names: harmless, and the
 * next attach of the same file simply seals it again.  A crash during 2
 * changes nothing.  The row never exists without its sealed file, so the
 * uploader always has what it needs.
 *
 * Sealing happens here, at once, and not at sync time: from this moment
 * the agent holds the photo only in a form nobody but the platform can
 * open (not even this device), and keeps a plaintext copy only when the
 * worker asks (--keep).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "attach.h"
#include "attachment.h"
#include "cli.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "gridagent.h"
#include "schema.h"
#include "store.h"
#include "core/banned.h"

/* --------------------------------------------------------------- files */

static int
make_dir(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return GS_FAIL(GS_EIO, "mkdir %s: %s", path, strerror(errno));
	return GS_OK;
}

static int
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = GS_OK;

	if (fd < 0)
		return GS_FAIL(GS_EIO, "open %s: %s", dir, strerror(errno));
	if (fsync(fd) != 0)
		r = GS_FAIL(GS_EIO, "fsync %s: %s", dir, strerror(errno));
	close(fd);
	return r;
}

/* Writes a file durably: tmp, write by fn, fsync, rename, fsync dir. */
static int
write_durable(
    const char *dir, const char *name, int (*fn)(void *ctx, int fd), void *ctx)
{
	char tmp[4096], final[4096];
	int fd = -1, r;

	if (snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-%ld", dir, name,
		(long)getpid()) >= (int)sizeof(tmp) ||
	    snprintf(final, sizeof(final), "%s/%s", dir, name) >=
		(int)sizeof(final))
		return GS_FAIL(GS_EINVAL, "home path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return GS_FAIL(GS_EIO, "create %s: %s", tmp, strerror(errno));
	if ((r = fn(ctx, fd)) != GS_OK)
		goto out;
	if (fsync(fd) != 0) {
		r = GS_FAIL(GS_EIO, "fsync %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		r = GS_FAIL(GS_EIO, "close %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, final) != 0) {
		r = GS_FAIL(GS_EIO, "rename %s: %s", tmp, strerror(errno));
		goto out;
	}
	r = sync_dir(dir);
out:
	if (fd >= 0)
		close(fd);
	if (r != GS_OK)
		(void)unlink(tmp);
	return r;
}

struct seal_ctx {
	int in;
	const struct gs_att_seal_params *p;
	const unsigned char *hash;
	uint64_t len;
};

static int
seal_into(void *ctx, int fd)
{
	struct seal_ctx *c = ctx;

	return gs_att_seal_fd(fd, c->in, c->p, c->hash, c->len);
}

static int
copy_into(void *ctx, int fd)
{
	struct seal_ctx *c = ctx;
	unsigned char buf[65536];
	uint64_t off = 0;

	while (off < c->len) {
		ssize_t k = pread(c->in, buf, sizeof(buf), (off_t)off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return GS_FAIL(GS_EIO, "read: %s",
			    k < 0 ? strerror(errno) : "file shrank");
		if (write(fd, buf, (size_t)k) != k)
			return GS_FAIL(GS_EIO, "write: %s", strerror(errno));
		off += (uint64_t)k;
	}
	return GS_OK;
}

/* ------------------------------------------------------------ settings */

static uint64_t
limit_of(struct ag_store *st)
{
	char *v = NULL;
	uint64_t n = GS_ATT_MAX_DEFAULT;

	if (ag_store_meta_get(st, "max_attachment", &v) == GS_OK &&
	    gs_parse_u64(v, UINT64_C(1) << 40, &n) != GS_OK)
		n = GS_ATT_MAX_DEFAULT;
	gs_errmsg_clear();
	gs_free(v);
	return n;
}

int
ag_attach_set_limit(struct ag_store *st, int64_t max)
{
	char now[32];

	if (max <= 0 || (uint64_t)max == limit_of(st))
		return GS_OK;
	snprintf(now, sizeof(now), "%lld", (long long)max);
	return ag_store_meta_set(st, "max_attachment", now);
}

static void
human(char *out, size_t n, uint64_t b)
{
	if (b >= 1024 * 1024)
		snprintf(out, n, "%.1f MiB (%llu bytes)",
		    (double)b / (1024.0 * 1024.0), (unsigned long long)b);
	else
		snprintf(out, n, "%llu bytes", (unsigned long long)b);
}

/* "LAT,LON,ACC,SYS" -> a geo object (validated later with the record). */
static int
parse_location(const char *s, json_t **out)
{
	char buf[128], *parts[4], *p, *end;
	double v[3];
	int n = 0, i;
	json_t *o;

	if (gs_strlcpy(buf, s, sizeof(buf)) >= sizeof(buf))
		return GS_FAIL(GS_EINVAL, "--location is too long");
	for (p = buf, n = 0; n < 4; n++) {
		parts[n] = p;
		if ((p = strchr(p, ',')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	if (n != 4 || p != NULL)
		return GS_FAIL(GS_EINVAL,
		    "--location should be LAT,LON,ACC,SYS "
		    "(e.g. 22.59,114.48,8,GCJ02; ACC may be empty)");
	for (i = 0; i < 3; i++) {
		if (i == 2 && parts[2][0] == '\0')
			continue;
		errno = 0;
		v[i] = strtod(parts[i], &end);
		if (errno != 0 || end == parts[i] || *end != '\0')
			return GS_FAIL(GS_EINVAL,
			    "--location: '%s' is not a "
			    "number",
			    parts[i]);
	}
	o = json_pack(
	    "{s:f,s:f,s:s}", "lat", v[0], "lon", v[1], "coord_sys", parts[3]);
	if (o != NULL && parts[2][0] != '\0' &&
	    json_object_set_new(o, "accuracy", json_real(v[2])) != 0) {
		json_decref(o);
		o = NULL;
	}
	if (o == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	*out = o;
	return GS_OK;
}

/* -------------------------------------------------------- the edit hook */

struct hook_ctx {
	struct ag_store *st;
	json_t *item; /* the new attachments entry */
	const unsigned char *hash;
	const char *hexhash;
	const char *mime;
	uint64_t size, sealed_len;
	int keep;
	int reseal; /* a known row whose sealed file was made again */
};

static int
hook_prepare(void *ctx, const char *type, json_t *fields, json_t *edit)
{
	struct hook_ctx *c = ctx;
	const struct gs_form *f = gs_schema_form(ag_store_schema(c->st), type);
	json_t *cur = json_object_get(fields, "attachments"), *arr;
	size_t i;

	if (f == NULL || gs_form_field(f, "attachments") == NULL)
		return GS_FAIL(GS_EINVAL,
		    "records of type %s take no "
		    "attachments",
		    type);
	arr = json_is_array(cur) ? json_deep_copy(cur) : json_array();
	if (arr == NULL)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	for (i = 0; i < json_array_size(arr); i++) {
		const char *h = json_string_value(
		    json_object_get(json_array_get(arr, i), "hash"));

		if (h != NULL && strcmp(h, c->hexhash) == 0) {
			/* Attached before and its sealed file was lost:
			 * made again above, nothing new for the record. */
			if (c->reseal)
				return json_object_set_new(
					   edit, "attachments", arr) == 0
					   ? GS_OK
					   : GS_FAIL(
						 GS_ENOMEM, "out of memory");
			json_decref(arr);
			return GS_FAIL(GS_EEXIST,
			    "this file is already "
			    "attached to the record (%.16s...)",
			    c->hexhash);
		}
	}
	if (json_array_append(arr, c->item) != 0 ||
	    json_object_set_new(edit, "attachments", arr) != 0)
		return GS_FAIL(GS_ENOMEM, "out of memory");
	return GS_OK;
}

static int
step_done(struct gs_stmt *s)
{
	int r = gs_stmt_step(s);

	return r == GS_DONE ? GS_OK : r;
}

static int
hook_commit(void *ctx, struct ag_store *st, const char *uuid, const char *type,
    int64_t now)
{
	struct hook_ctx *c = ctx;
	struct gs_db *db = ag_store_db(st);
	struct gs_stmt *a = NULL, *ra = NULL, *au = NULL;
	char detail[160];
	int r;

	/* A row sealed again goes back to 'sealed' (from 'failed'). */
	if ((r = gs_stmt_prepare(db,
		 "INSERT INTO attachment(hash, mime, "
		 "plain_len, sealed_len, plain_kept, created_at) VALUES(?1, "
		 "?2, "
		 "?3, ?4, ?5, ?6) ON CONFLICT(hash) DO UPDATE SET state = "
		 "'sealed', last_error = NULL, sent = 0 WHERE ?7 AND state <> "
		 "'done'",
		 &a)) != GS_OK ||
	    (r = gs_stmt_prepare(db,
		 "INSERT OR IGNORE INTO "
		 "record_attachment(uuid, hash, added_at) VALUES(?1, ?2, ?3)",
		 &ra)) != GS_OK ||
	    (r = gs_stmt_prepare(db,
		 "INSERT INTO audit(at, action, uuid, "
		 "type, detail) VALUES(?1, 'attach', ?2, ?3, ?4)",
		 &au)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_blob(a, 1, c->hash, GS_HASHBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_text(a, 2, c->mime)) != GS_OK ||
	    (r = gs_stmt_bind_int64(a, 3, (int64_t)c->size)) != GS_OK ||
	    (r = gs_stmt_bind_int64(a, 4, (int64_t)c->sealed_len)) != GS_OK ||
	    (r = gs_stmt_bind_int64(a, 5, c->keep)) != GS_OK ||
	    (r = gs_stmt_bind_int64(a, 6, now)) != GS_OK ||
	    (r = gs_stmt_bind_int64(a, 7, c->reseal)) != GS_OK ||
	    (r = step_done(a)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_text(ra, 1, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_blob(ra, 2, c->hash, GS_HASHBYTES)) != GS_OK ||
	    (r = gs_stmt_bind_int64(ra, 3, now)) != GS_OK ||
	    (r = step_done(ra)) != GS_OK)
		goto out;
	/* The audit names the file by hash and size, never its content. */
	snprintf(detail, sizeof(detail), "%s %s %llu bytes", c->hexhash,
	    c->mime, (unsigned long long)c->size);
	if ((r = gs_stmt_bind_int64(au, 1, now)) != GS_OK ||
	    (r = gs_stmt_bind_text(au, 2, uuid)) != GS_OK ||
	    (r = gs_stmt_bind_text(au, 3, type)) != GS_OK ||
	    (r = gs_stmt_bind_text(au, 4, detail)) != GS_OK ||
	    (r = step_done(au)) != GS_OK)
		goto out;
	r = GS_OK;
out:
	gs_stmt_finalize(a);
	gs_stmt_finalize(ra);
	gs_stmt_finalize(au);
	return r;
}

/* Is this file (by hash) known already?  *known, *sealed_len, and *done
 * when the platform has receipted it. */
static int
known_file(struct gs_db *db, const unsigned char *hash, int *known,
    uint64_t *sealed_len, int *done)
{
	struct gs_stmt *s = NULL;
	int r;

	*known = *done = 0;
	if ((r = gs_stmt_prepare(db,
		 "SELECT sealed_len, state = 'done' FROM "
		 "attachment WHERE hash = ?1",
		 &s)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 1, hash, GS_HASHBYTES)) != GS_OK)
		goto out;
	r = gs_stmt_step(s);
	if (r == GS_ROW) {
		*known = 1;
		*sealed_len = (uint64_t)gs_stmt_int64(s, 0);
		*done = gs_stmt_int64(s, 1) != 0;
		gs_stmt_reset(s);
		r = GS_OK;
	} else if (r == GS_DONE) {
		r = GS_OK;
	}
out:
	gs_stmt_finalize(s);
	return r;
}

int
ag_attach(struct ag_store *st, const char *uuid, const char *path,
    const struct ag_attach_opts *o, struct ag_attach_result *res)
{
	struct ag_device *dev = NULL;
	struct gs_att_seal_params sp;
	struct seal_ctx sc;
	struct hook_ctx hc;
	struct ag_edit_hook hook;
	struct stat sb;
	unsigned char hash[GS_HASHBYTES], head[64];
	char dir[3072], sub[4096], a[64], b[64];
	json_t *item = NULL, *edit = NULL, *loc = NULL;
	uint64_t len = 0, limit;
	ssize_t hn;
	int fd = -1, known = 0, done = 0, reseal = 0, r = GS_EINTERNAL;

	memset(res, 0, sizeof(*res));
	if ((r = gs_crypto_init()) != GS_OK)
		goto out;
	r = ag_device_load(ag_store_db(st), &dev);
	if (r == GS_ENOTENROLLED) {
		r = GS_FAIL(GS_ENOTENROLLED,
		    "attach needs an enrolled device: "
		    "a photo is sealed for the platform the moment it is "
		    "attached (run 'gridagent enroll' first)");
		goto out;
	}
	if (r != GS_OK)
		goto out;
	if (o->location != NULL &&
	    (r = parse_location(o->location, &loc)) != GS_OK)
		goto out;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		r = GS_FAIL(errno == ENOENT ? GS_ENOTFOUND : GS_EIO,
		    "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		r = GS_FAIL(GS_EINVAL, "%s is not a regular file", path);
		goto out;
	}
	if (sb.st_size == 0) {
		r = GS_FAIL(GS_EINVAL, "%s is empty: nothing to attach", path);
		goto out;
	}
	/* Refuse what the platform would refuse, before any work. */
	limit = limit_of(st);
	if ((uint64_t)sb.st_size > limit) {
		human(a, sizeof(a), (uint64_t)sb.st_size);
		human(b, sizeof(b), limit);
		r = GS_FAIL(GS_ETOOBIG,
		    "%s is %s; the platform accepts "
		    "attachments of at most %s",
		    path, a, b);
		goto out;
	}
	hn = pread(fd, head, sizeof(head), 0);
	res->mime = gs_att_sniff_mime(head, hn > 0 ? (size_t)hn : 0);
	if ((r = gs_att_hash_fd(fd, hash, &len)) != GS_OK)
		goto out;
	if (len > limit) {
		r = GS_FAIL(GS_ETOOBIG, "%s grew past the limit", path);
		goto out;
	}
	gs_hex_encode(res->hash, hash, GS_HASHBYTES);
	res->size = len;
	if ((r = known_file(ag_store_db(st), hash, &known, &res->sealed_len,
		 &done)) != GS_OK)
		goto out;
	if (snprintf(dir, sizeof(dir), "%s/attachments", ag_store_home(st)) >=
	    (int)sizeof(dir)) {
		r = GS_FAIL(GS_EINVAL, "home path too long");
		goto out;
	}
	if ((r = make_dir(dir)) != GS_OK)
		goto out;
	/* Known but not receipted and its sealed file gone (deleted, a
	 * restored backup): seal it again, it is the same content. */
	snprintf(sub, sizeof(sub), "%s/sealed/%s", dir, res->hash);
	if (known && !done && access(sub, F_OK) != 0)
		reseal = 1;
	res->reused = known && !reseal;
	if (!known || reseal) {
		memset(&sp, 0, sizeof(sp));
		memcpy(sp.deployment, dev->deployment, 16);
		memcpy(sp.device, dev->device_id, 16);
		sp.created_at = gs_now_ms();
		sp.chunk_size = o->chunk_size;
		sp.platform_pk = dev->batch_pk;
		sp.device_sk = dev->sign_sk;
		sc.in = fd;
		sc.p = &sp;
		sc.hash = hash;
		sc.len = len;
		snprintf(sub, sizeof(sub), "%s/sealed", dir);
		if ((r = make_dir(sub)) != GS_OK ||
		    (r = write_durable(sub, res->hash, seal_into, &sc)) !=
			GS_OK)
			goto out;
		res->sealed_len = gs_att_sealed_len(
		    len, o->chunk_size ? o->chunk_size : GS_ATT_CHUNK_DEFAULT);
		if (o->keep) {
			snprintf(sub, sizeof(sub), "%s/plain", dir);
			if ((r = make_dir(sub)) != GS_OK ||
			    (r = write_durable(
				 sub, res->hash, copy_into, &sc)) != GS_OK)
				goto out;
		}
	}
	item = json_pack("{s:s,s:s,s:I,s:I}", "hash", res->hash, "mime",
	    res->mime, "size", (json_int_t)len, "taken_at",
	    (json_int_t)(o->taken_at >= 0 ? o->taken_at
					  : (int64_t)sb.st_mtim.tv_sec * 1000 +
						sb.st_mtim.tv_nsec / 1000000));
	edit = json_pack("{s:n}", "attachments");
	if (item == NULL || edit == NULL ||
	    (o->phase != NULL && json_object_set_new(item, "phase",
				     json_string(o->phase)) != 0) ||
	    (o->note != NULL &&
		json_object_set_new(item, "note", json_string(o->note)) != 0) ||
	    (loc != NULL && json_object_set(item, "location", loc) != 0)) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	/* A note or phase that is not valid (not UTF-8, unknown phase)
	 * fails validation of the record, like any other edit. */
	memset(&hc, 0, sizeof(hc));
	hc.st = st;
	hc.item = item;
	hc.hash = hash;
	hc.hexhash = res->hash;
	hc.mime = res->mime;
	hc.size = len;
	hc.sealed_len = res->sealed_len;
	hc.keep = known ? 0 : o->keep;
	hc.reseal = reseal;
	hook.prepare = hook_prepare;
	hook.commit = hook_commit;
	hook.ctx = &hc;
	r = ag_edit_hooked(st, uuid, edit, &hook);
	edit = NULL;
out:
	if (fd >= 0)
		close(fd);
	json_decref(item);
	json_decref(edit);
	json_decref(loc);
	ag_device_free(dev);
	return r;
}

/* ------------------------------------------------------------- status */

int
ag_attach_pending(struct ag_store *st, int *yes)
{
	struct gs_stmt *s = NULL;
	int64_t n = 0;
	int r;

	*yes = 0;
	if ((r = gs_stmt_prepare(ag_store_db(st),
		 "SELECT count(*) FROM "
		 "attachment WHERE state = 'sealed'",
		 &s)) != GS_OK)
		return r;
	r = gs_stmt_one_int64(s, 0, &n);
	gs_stmt_finalize(s);
	*yes = n > 0;
	return r;
}

int
ag_attach_status(struct ag_store *st, json_t *into)
{
	struct gs_db *db = ag_store_db(st);
	struct gs_stmt *s = NULL;
	int64_t n[4] = {0, 0, 0, 0}, bytes[4] = {0, 0, 0, 0}, sent = 0,
		waiting = 0;
	json_t *o;
	int r;

	/* pending: nothing on the platform yet; partial: some bytes there;
	 * done: receipted. */
	if ((r = gs_stmt_prepare(db,
		 "SELECT CASE WHEN state = 'done' THEN 2 "
		 "WHEN state = 'failed' THEN 3 WHEN sent > 0 THEN 1 ELSE 0 "
		 "END, "
		 "count(*), sum(sealed_len), sum(sent) FROM attachment GROUP "
		 "BY "
		 "1",
		 &s)) != GS_OK)
		goto out;
	while ((r = gs_stmt_step(s)) == GS_ROW) {
		int64_t k = gs_stmt_int64(s, 0);

		if (k < 0 || k > 3)
			continue;
		n[k] = gs_stmt_int64(s, 1);
		bytes[k] = gs_stmt_int64(s, 2);
		if (k == 1)
			sent = gs_stmt_int64(s, 3);
	}
	if (r != GS_DONE)
		goto out;
	gs_stmt_finalize(s);
	s = NULL;
	/* A record is delivered only when every attachment it names is
	 * receipted too. */
	if ((r = gs_stmt_prepare(db,
		 "SELECT count(DISTINCT ra.uuid) FROM "
		 "record_attachment ra JOIN attachment a ON a.hash = ra.hash "
		 "WHERE a.state <> 'done'",
		 &s)) != GS_OK ||
	    (r = gs_stmt_one_int64(s, 0, &waiting)) != GS_OK)
		goto out;
	o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "failed",
	    (json_int_t)n[3], "pending", (json_int_t)n[0], "pending_bytes",
	    (json_int_t)bytes[0], "partial", (json_int_t)n[1], "partial_bytes",
	    (json_int_t)bytes[1], "partial_sent", (json_int_t)sent, "done",
	    (json_int_t)n[2], "done_bytes", (json_int_t)bytes[2],
	    "records_waiting", (json_int_t)waiting);
	if (o == NULL || json_object_set_new(into, "attachments", o) != 0) {
		r = GS_FAIL(GS_ENOMEM, "out of memory");
		goto out;
	}
	r = GS_OK;
out:
	gs_stmt_finalize(s);
	return r;
}

/* ------------------------------------------------------------ the CLI */

int
ag_cmd_attach(struct ag_cli *cli, int argc, char **argv)
{
	const char *phase = NULL, *note = NULL, *location = NULL, *taken = NULL,
		   *chunk = NULL;
	int keep = 0, json = 0, npos = 0, rc, r;
	const struct ag_opt opts[] = {
	    {"phase", &phase, NULL},
	    {"note", &note, NULL},
	    {"location", &location, NULL},
	    {"taken-at", &taken, NULL},
	    {"chunk", &chunk, NULL},
	    {"keep", NULL, &keep},
	    {"json", NULL, &json},
	    {NULL, NULL, NULL},
	};
	struct ag_attach_opts o;
	struct ag_attach_result res;
	struct ag_store *st = NULL;
	uint64_t v;

	if ((rc = ag_cli_parse(cli, opts, argc, argv, &npos)) >= 0)
		return rc;
	if (npos != 2)
		return ag_cli_usage(
		    cli, "attach needs a record UUID and a FILE");
	memset(&o, 0, sizeof(o));
	o.phase = phase;
	o.note = note;
	o.location = location;
	o.keep = keep;
	o.taken_at = -1;
	if (taken != NULL) {
		if (gs_parse_u64(taken, INT64_MAX, &v) != GS_OK)
			return ag_cli_usage(cli, "--taken-at is a time in ms");
		o.taken_at = (int64_t)v;
	}
	if (chunk != NULL) {
		if (gs_parse_u64(chunk, GS_ATT_CHUNK_MAX, &v) != GS_OK ||
		    v < GS_ATT_CHUNK_MIN)
			return ag_cli_usage(cli, "--chunk is %u to %u bytes",
			    GS_ATT_CHUNK_MIN, GS_ATT_CHUNK_MAX);
		o.chunk_size = (uint32_t)v;
	}
	gs_id_lower(argv[1]);
	if ((rc = ag_cli_open(cli, &st)) >= 0)
		return rc;
	ag_store_on_problem(st, ag_cli_problem, NULL);
	r = ag_attach(st, argv[1], argv[2], &o, &res);
	ag_store_close(st);
	if (r != GS_OK)
		return ag_cli_error(r);
	if (json)
		printf("{\"hash\":\"%s\",\"mime\":\"%s\",\"size\":%llu,"
		       "\"sealed\":%llu,\"reused\":%s}\n",
		    res.hash, res.mime, (unsigned long long)res.size,
		    (unsigned long long)res.sealed_len,
		    res.reused ? "true" : "false");
	else
		printf("%s\n", res.hash);
	return fflush(stdout) == 0 ? GS_EX_OK : GS_EX_IOERR;
}
