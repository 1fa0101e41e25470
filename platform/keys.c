/*
 * keys.c - the platform's home directory: creating a deployment (ids and
 * key pairs) and opening it again.
 *
 * Key files hold lower-case hex and a newline.  Secret key files are
 * created with O_EXCL and mode 0600 in a 0700 directory, written and
 * fsync'ed before the store records the deployment, so a crash during
 * init leaves either no deployment or a complete one plus stray files that
 * make a second init refuse (and an operator look).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "enroll.h"
#include "envelope.h"
#include "json.h"
#include "platform.h"
#include "reference.h"
#include "schema.h"
#include "store.h"
#include "attachments.h"
#include "core/banned.h"

static const char *const key_files[] = { "batch.key", "batch.pub",
	"receipt.key", "receipt.pub", "root.key", "root.pub", "platform.db" };

int
pf_home_resolve(const char *opt, char **out)
{
	const char *env, *home;
	struct gs_buf b;
	size_t n;
	int r;

	*out = NULL;
	if (opt != NULL && *opt != '\0') {
		*out = gs_strdup(opt);
	} else if ((env = getenv("GRIDPLATFORM_HOME")) != NULL &&
	    *env != '\0') {
		*out = gs_strdup(env);
	} else {
		if ((home = getenv("HOME")) == NULL || *home == '\0')
			return GS_FAIL(GS_EINVAL, "no --home, no "
			    "$GRIDPLATFORM_HOME and no $HOME");
		gs_buf_init(&b, 4096);
		if ((r = gs_buf_printf(&b, "%s/.gridplatform", home)) != GS_OK) {
			gs_buf_release(&b);
			return r;
		}
		*out = gs_buf_detach(&b, &n);
	}
	return *out != NULL ? GS_OK : GS_FAIL(GS_ENOMEM, "home path");
}

static int
path_in(const char *home, const char *name, char *out, size_t outlen)
{
	int n = snprintf(out, outlen, "%s/%s", home, name);

	if (n < 0 || (size_t)n >= outlen)
		return GS_FAIL(GS_EINVAL, "path too long: %s/%s", home, name);
	return GS_OK;
}

/* Writes hex of p[0..n) and a newline to a new file (never replacing). */
static int
write_key_file(const char *home, const char *name, const unsigned char *p,
    size_t n, mode_t mode)
{
	char path[4096], hex[2 * 64 + 2];
	int fd, r = GS_OK;
	size_t len;

	if ((r = path_in(home, name, path, sizeof(path))) != GS_OK)
		return r;
	gs_hex_encode(hex, p, n);
	len = 2 * n;
	hex[len++] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		r = GS_FAIL(errno == EEXIST ? GS_EEXIST : GS_EIO,
		    "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	if (fchmod(fd, mode) != 0 || write(fd, hex, len) != (ssize_t)len ||
	    fsync(fd) != 0)
		r = GS_FAIL(GS_EIO, "cannot write %s: %s", path,
		    strerror(errno));
	if (close(fd) != 0 && r == GS_OK)
		r = GS_FAIL(GS_EIO, "cannot write %s: %s", path,
		    strerror(errno));
out:
	gs_crypto_memzero(hex, sizeof(hex));
	return r;
}

/*
 * Tests only (tests/integration/keys-rotate-live.sh): "retire-while-read=N"
 * does to the Nth batch-*.key this process reads what 'keys retire' in
 * another process may do between our open and our read (rotate.c
 * cmd_retire): rename it away, overwrite it with zeros, unlink it.
 */
static void
fault_retire(const char *path, int fd)
{
	static long seen;
	long n;
	uint64_t v;
	const char *base = strrchr(path, '/');
	char gone[4200];
	struct stat sb;
	int wfd;

	base = base != NULL ? base + 1 : path;
	if (strncmp(base, "batch-", 6) != 0 || strstr(base, ".key") == NULL ||
	    !pf_fault_hit("retire-while-read", &seen, &n, &v) ||
	    n != (long)v || fstat(fd, &sb) != 0)
		return;
	snprintf(gone, sizeof(gone), "%s.retired", path);
	if (rename(path, gone) != 0 ||
	    (wfd = open(gone, O_WRONLY | O_CLOEXEC)) < 0)
		return;
	while (sb.st_size-- > 0)
		if (write(wfd, "", 1) != 1)
			break;
	(void)close(wfd);
	(void)unlink(gone);
}

int
pf_key_read_hex(const char *path, unsigned char *p, size_t n)
{
	char hex[2 * 64 + 4];
	int fd, r = GS_OK;
	ssize_t got;
	struct stat sb, now;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return GS_FAIL(errno == ENOENT ? GS_ENOTFOUND : GS_EIO,
		    "cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0) {
		r = GS_FAIL(GS_EIO, "cannot stat %s: %s", path,
		    strerror(errno));
		(void)close(fd);
		return r;
	}
	if ((sb.st_mode & 077) != 0 && strstr(path, ".key") != NULL)
		gs_log(GS_LOG_WARNING, "%s is readable by others (mode %o)",
		    path, (unsigned)(sb.st_mode & 0777));
	fault_retire(path, fd);
	got = read(fd, hex, sizeof(hex) - 1);
	(void)close(fd);
	if (got < 0) {
		r = GS_FAIL(GS_EIO, "cannot read %s: %s", path,
		    strerror(errno));
		goto out;
	}
	hex[got] = '\0';
	while (got > 0 && (hex[got - 1] == '\n' || hex[got - 1] == '\r'))
		hex[--got] = '\0';
	if ((size_t)got == 2 * n && gs_hex_decode(p, n, hex) == GS_OK)
		goto out;
	/* What we read is not a key.  If the path no longer names the
	 * file we opened, 'keys retire' took it while we read (and may
	 * have zeroed it): gone, not damaged. */
	if (stat(path, &now) != 0 || now.st_ino != sb.st_ino ||
	    now.st_dev != sb.st_dev)
		r = GS_FAIL(GS_ENOTFOUND, "%s was retired while being read",
		    path);
	else
		r = GS_FAIL(GS_ECORRUPT, "%s is damaged (expected %zu hex "
		    "digits)", path, 2 * n);
out:
	gs_crypto_memzero(hex, sizeof(hex));
	return r;
}

/*
 * Tests only (tests/integration/keys-rotate-live.sh): "open-pause=MS"
 * stops an open for MS milliseconds after it read which batch key the
 * store names and before it reads the key files: the window in which a
 * 'keys rotate' and 'keys retire' in another process made the files
 * look wrong for what the store had said ("batch.pub does not match the
 * store").
 */
static void
fault_open_pause(void)
{
	static long seen;
	long n;
	uint64_t v;
	struct timespec ts;

	if (!pf_fault_hit("open-pause", &seen, &n, &v) || n != 1)
		return;
	gs_log(GS_LOG_WARNING, "TEST: open paused %llu ms after reading the "
	    "store's batch key", (unsigned long long)v);
	ts.tv_sec = (time_t)(v / 1000);
	ts.tv_nsec = (long)(v % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * keys.lock.  A command opening the home reads which batch key the store
 * names, then that key's files, then the old keys and the key bundle;
 * 'keys rotate' and 'keys retire' change all of these, in several steps.
 * Checks after the fact cannot tell a rotation that ran in between from
 * damage (the current key's file retired, batch.* already the next key),
 * and a reader that read the store before a rotation re-issued a bundle
 * naming the old key.  So the open holds keys.lock shared, rotate and
 * retire hold it exclusively from before their own open to their end:
 * a reader sees the home before a rotation or after it, never during.
 * Each hold is short (an open; a rotation), and flock goes with the
 * process that dies holding it.
 */
static int keys_lock_held = -1;

int
pf_keys_lock(const char *home, int exclusive, int *out)
{
	char path[4096];
	struct stat sb;
	int fd, r;

	*out = -1;
	/* Held exclusively by this process already (its own open while it
	 * rotates): flock would wait for ourselves. */
	if (keys_lock_held >= 0)
		return GS_OK;
	/* No deployment: nothing to lock, and the open says so. */
	if ((r = path_in(home, "platform.db", path, sizeof(path))) != GS_OK)
		return r;
	if (stat(path, &sb) != 0)
		return GS_OK;
	if ((r = path_in(home, "keys.lock", path, sizeof(path))) != GS_OK)
		return r;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	/* A home this user cannot write is read with the lock of whoever
	 * can (shared needs no write access), or, before anyone made it,
	 * without one: nothing here can rotate it. */
	if (fd < 0 && !exclusive && (errno == EACCES || errno == EROFS ||
	    errno == EPERM) &&
	    (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0 &&
	    (errno == ENOENT || errno == EACCES))
		return GS_OK;
	if (fd < 0)
		return GS_FAIL(errno == EACCES || errno == EROFS ? GS_EPERM :
		    GS_EIO, "cannot open %s: %s", path, strerror(errno));
	while (flock(fd, exclusive ? LOCK_EX : LOCK_SH) != 0)
		if (errno != EINTR) {
			r = GS_FAIL(GS_EIO, "cannot lock %s: %s", path,
			    strerror(errno));
			(void)close(fd);
			return r;
		}
	if (exclusive)
		keys_lock_held = fd;
	*out = fd;
	return GS_OK;
}

void
pf_keys_unlock(int fd)
{
	if (fd < 0)
		return;
	if (fd == keys_lock_held)
		keys_lock_held = -1;
	(void)close(fd);
}

/* A key file of the home (pf_key_read_hex). */
static int
read_key_file(const char *home, const char *name, unsigned char *p, size_t n)
{
	char path[4096];
	int r;

	if ((r = path_in(home, name, path, sizeof(path))) != GS_OK)
		return r;
	return pf_key_read_hex(path, p, n);
}

/*
 * The public URL goes into every enrollment code, where sync/enroll.h
 * accepts only printable http(s) URLs, and devices send to it: refuse a
 * bad one at init, not at the first enroll or sync.  scheme://host[:port]
 * and an optional path: a host (a name, an IPv4 address or an [IPv6]
 * one), a port of 1 to 65535, no user name (it would be in every code),
 * no query or fragment (paths are appended to it), printable ASCII only.
 */
static int
check_url(const char *url)
{
	size_t i, n = strlen(url), hl;
	const char *h, *end, *colon;
	int64_t port;
	char num[8];

	for (i = 0; i < n; i++)
		if ((unsigned char)url[i] <= ' ' ||
		    (unsigned char)url[i] >= 0x7f)
			return GS_FAIL(GS_EINVAL, "public URL: a space, control "
			    "or non-ASCII character at byte %zu (printable "
			    "ASCII without spaces only)", i + 1);
	if (n == 0 || n > GS_ENROLL_URL_MAX)
		return GS_FAIL(GS_EINVAL, "public URL: 1 to %d bytes, not %zu",
		    GS_ENROLL_URL_MAX, n);
	if (strncmp(url, "http://", 7) == 0)
		h = url + 7;
	else if (strncmp(url, "https://", 8) == 0)
		h = url + 8;
	else
		return GS_FAIL(GS_EINVAL, "public URL %s: expected http://... "
		    "or https://...", url);
	if (strpbrk(url, "?#") != NULL)
		return GS_FAIL(GS_EINVAL, "public URL %s: no query (?) or "
		    "fragment (#): request paths are added to it", url);
	end = h + strcspn(h, "/");
	if (memchr(h, '@', (size_t)(end - h)) != NULL)
		return GS_FAIL(GS_EINVAL, "public URL %s: no user name or "
		    "password (it would be in every enrollment code)", url);
	if (*h == '[') {
		/* [IPv6], then an optional :port. */
		const char *rb = memchr(h, ']', (size_t)(end - h));

		if (rb == NULL || rb == h + 1 ||
		    strspn(h + 1, "0123456789abcdefABCDEF:.") !=
		    (size_t)(rb - h - 1))
			return GS_FAIL(GS_EINVAL, "public URL %s: the host is "
			    "not an [IPv6] address", url);
		colon = rb + 1 < end ? rb + 1 : NULL;
		if (colon != NULL && *colon != ':')
			return GS_FAIL(GS_EINVAL, "public URL %s: expected "
			    ":port after the [IPv6] address", url);
		hl = (size_t)(rb - h + 1);
	} else {
		colon = memchr(h, ':', (size_t)(end - h));
		hl = (size_t)((colon != NULL ? colon : end) - h);
		if (hl > 0 && strspn(h, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") < hl)
			return GS_FAIL(GS_EINVAL, "public URL %s: the host may "
			    "hold letters, digits, '-', '.' and '_' only",
			    url);
	}
	if (hl == 0)
		return GS_FAIL(GS_EINVAL, "public URL %s: no host", url);
	if (colon != NULL) {
		size_t pl = (size_t)(end - colon - 1);

		if (pl == 0 || pl >= sizeof(num) ||
		    strspn(colon + 1, "0123456789") < pl)
			return GS_FAIL(GS_EINVAL, "public URL %s: the port "
			    "must be a number from 1 to 65535", url);
		memcpy(num, colon + 1, pl);
		num[pl] = '\0';
		if (gs_parse_i64(num, 1, 65535, &port) != GS_OK) {
			gs_errmsg_clear();
			return GS_FAIL(GS_EINVAL, "public URL %s: port %s is "
			    "out of range (1 to 65535)", url, num);
		}
	}
	return GS_OK;
}

/*
 * Undoes an init that failed after the check that none of key_files
 * existed: every one of them, and the store's journal files, were made
 * by this init.  Left behind, they made every later init refuse ("already
 * holds a deployment") and every other command say "no deployment": a
 * full disk during init needed an admin to clean the home by hand.
 */
static void
unmake_home(const char *home, int made_home)
{
	static const char *const extra[] = { "platform.db-wal",
		"platform.db-shm", "platform.db-journal", "keys.lock" };
	char path[4096];
	size_t i;

	for (i = 0; i < sizeof(key_files) / sizeof(key_files[0]); i++)
		if (path_in(home, key_files[i], path, sizeof(path)) == GS_OK)
			(void)unlink(path);
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		if (path_in(home, extra[i], path, sizeof(path)) == GS_OK)
			(void)unlink(path);
	if (made_home)
		(void)rmdir(home);
}

int
pf_init_home(const char *home, const char *public_url)
{
	int r = GS_EINTERNAL;
	char path[4096], hex[33];
	unsigned char dep[16], bpk[GS_KX_PKBYTES], bsk[GS_KX_SKBYTES];
	unsigned char rpk[GS_SIGN_PKBYTES], rsk[GS_SIGN_SKBYTES];
	unsigned char rootpk[GS_SIGN_PKBYTES];
	struct pf_store *st = NULL;
	struct stat sb;
	size_t i;
	char pkhex[2 * 32 + 1];
	int made_home = 0;

	if (public_url == NULL)
		public_url = PF_DEFAULT_URL;
	if ((r = check_url(public_url)) != GS_OK)
		return r;
	if ((r = gs_crypto_init()) != GS_OK)
		return r;
	/* Never overwrite an existing deployment: any of its files is
	 * enough to refuse. */
	for (i = 0; i < sizeof(key_files) / sizeof(key_files[0]); i++) {
		if ((r = path_in(home, key_files[i], path, sizeof(path)))
		    != GS_OK)
			return r;
		if (lstat(path, &sb) == 0)
			return GS_FAIL(GS_EEXIST, "%s already holds a "
			    "deployment (%s exists); refusing to overwrite",
			    home, key_files[i]);
	}
	/* 73 (cannot create) for a home that cannot be made, as the
	 * agent's: a missing parent (not made for us: a typo in --home
	 * must not grow a tree holding secret keys), a parent we may not
	 * write, a file in the way.  A full or failing disk stays 74. */
	if (mkdir(home, 0700) == 0)
		made_home = 1;
	else if (errno != EEXIST)
		return GS_FAIL(errno == ENOSPC || errno == EIO ||
		    errno == EDQUOT ? GS_EIO : GS_ECANTCREATE, "cannot "
		    "create the home %s: "
		    "%s%s", home, strerror(errno), errno == ENOENT ?
		    " (its parent directory does not exist)" : "");
	if (stat(home, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return GS_FAIL(GS_ECANTCREATE, "cannot create the home %s: "
		    "it exists and is not a directory", home);
	if (chmod(home, 0700) != 0) {
		r = GS_FAIL(GS_EIO, "cannot chmod %s: %s", home,
		    strerror(errno));
		goto out;
	}

	/* Keys first, store last: the store's meta rows are what marks the
	 * deployment as complete, and they name the public keys, so a later
	 * open can tell key files that do not belong to this store. */
	gs_random(dep, sizeof(dep));
	gs_crypto_kx_keypair(bpk, bsk);
	gs_crypto_sign_keypair(rpk, rsk);
	if ((r = write_key_file(home, "batch.key", bsk, sizeof(bsk), 0600))
	    != GS_OK ||
	    (r = write_key_file(home, "batch.pub", bpk, sizeof(bpk), 0644))
	    != GS_OK ||
	    (r = write_key_file(home, "receipt.key", rsk, sizeof(rsk), 0600))
	    != GS_OK ||
	    (r = write_key_file(home, "receipt.pub", rpk, sizeof(rpk), 0644))
	    != GS_OK)
		goto out;
	/* The root key (root.c) that signs key bundles; its first bundle is
	 * issued at the first open. */
	if ((r = pf_root_create(home, rootpk)) != GS_OK)
		goto out;

	if ((r = path_in(home, "platform.db", path, sizeof(path))) != GS_OK ||
	    (r = pf_store_sqlite_open(path, 1, &st)) != GS_OK ||
	    (r = st->ops->begin(st)) != GS_OK)
		goto out;
	gs_hex_encode(hex, dep, sizeof(dep));
	if ((r = st->ops->meta_set(st, "deployment", hex)) != GS_OK)
		goto rollback;
	gs_hex_encode(pkhex, bpk, sizeof(bpk));
	if ((r = st->ops->meta_set(st, "batch_pk", pkhex)) != GS_OK)
		goto rollback;
	gs_hex_encode(pkhex, rpk, sizeof(rpk));
	if ((r = st->ops->meta_set(st, "receipt_pk", pkhex)) != GS_OK ||
	    (r = st->ops->meta_set(st, "public_url", public_url)) != GS_OK)
		goto rollback;
	gs_hex_encode(pkhex, rootpk, sizeof(rootpk));
	if ((r = st->ops->meta_set(st, "root_pk", pkhex)) != GS_OK)
		goto rollback;
	r = st->ops->commit(st);
	goto out;
rollback:
	st->ops->rollback(st);
out:
	pf_store_close(st);
	gs_crypto_memzero(bsk, sizeof(bsk));
	gs_crypto_memzero(rsk, sizeof(rsk));
	/* The first open issues key bundle 1 (root.c): do it now, so that
	 * it is not raced by the first commands run on the new home. */
	if (r == GS_OK) {
		struct pf_platform *pf = NULL;

		r = pf_platform_open(home, &pf);
		pf_platform_free(pf);
	}
	if (r != GS_OK)
		unmake_home(home, made_home);
	return r;
}

/* A hex meta value of exactly n bytes. */
static int
meta_hex(struct pf_store *st, const char *key, unsigned char *out, size_t n)
{
	char *v = NULL;
	int r;

	if ((r = st->ops->meta_get(st, key, &v)) != GS_OK)
		return r == GS_ENOTFOUND ? GS_FAIL(GS_ECORRUPT, "store has no "
		    "%s", key) : r;
	if (strlen(v) != 2 * n || gs_hex_decode(out, n, v) != GS_OK)
		r = GS_FAIL(GS_ECORRUPT, "store's %s is damaged", key);
	gs_free(v);
	return r;
}

/* pf_platform_open and pf_platform_open_read (read: 1). */
static int
platform_open(const char *home, int read, struct pf_platform **out)
{
	int r = GS_EINTERNAL;
	struct pf_platform *pf = NULL;
	char path[4096];
	unsigned char pk[32], spk[GS_SIGN_PKBYTES];
	struct stat sb;
	struct gs_envelope_limits lim;
	int lock = -1;

	*out = NULL;
	if ((r = gs_crypto_init()) != GS_OK)
		return r;
	/* Ingest decodes each batch in a jansson arena (ingest.c): its
	 * allocators are installed process-wide by the first begin, which
	 * must come before a second thread uses jansson (sync/json.h).
	 * Every server opens the platform before it starts a thread. */
	{
		struct gs_json_arena *a = NULL;

		(void)gs_json_arena_begin(&a);
		gs_json_arena_end(a);
	}
	if ((r = path_in(home, "platform.db", path, sizeof(path))) != GS_OK)
		return r;
	if (stat(path, &sb) != 0)
		/* 77 (not permitted), as the agent's home before its
		 * init: nothing is invalid, the deployment is not made. */
		return GS_FAIL(GS_EPERM, "no deployment in %s: run "
		    "'gridplatform init' first", home);
	/* An empty file holds no deployment: opening it would migrate it
	 * (write our tables into it) before "store has no deployment". */
	if (S_ISREG(sb.st_mode) && sb.st_size == 0)
		return GS_FAIL(GS_ECORRUPT, "%s: empty, it holds no "
		    "deployment", path);
	/* Shared, until the open is done: see pf_keys_lock. */
	if ((r = pf_keys_lock(home, 0, &lock)) != GS_OK)
		return r;
	if ((pf = gs_calloc(1, sizeof(*pf))) == NULL) {
		pf_keys_unlock(lock);
		return GS_FAIL(GS_ENOMEM, "platform");
	}
	(void)pthread_mutex_init(&pf->lock, NULL);
	(void)pthread_mutex_init(&pf->flight_lock, NULL);
	{
		pthread_condattr_t ca;

		/* A wait's deadline must not move with the wall clock. */
		(void)pthread_condattr_init(&ca);
		(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		(void)pthread_cond_init(&pf->flight_cv, &ca);
		(void)pthread_condattr_destroy(&ca);
	}
	(void)pthread_mutex_init(&pf->rate_lock, NULL);
	(void)pthread_mutex_init(&pf->read_lock, NULL);
	(void)pthread_mutex_init(&pf->ref_lock, NULL);
	(void)pthread_mutex_init(&pf->root_lock, NULL);
	if ((pf->home = gs_strdup(home)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "platform");
		goto out;
	}
	pf->keys.batch_sk = gs_crypto_secure_alloc(GS_KX_SKBYTES);
	pf->keys.receipt_sk = gs_crypto_secure_alloc(GS_SIGN_SKBYTES);
	if (pf->keys.batch_sk == NULL || pf->keys.receipt_sk == NULL) {
		r = GS_FAIL(GS_ENOMEM, "secure memory for keys");
		goto out;
	}
	/*
	 * Both connections without SQLite's per-call mutex (2.6k
	 * instructions per ingested record): one thread at a time uses
	 * each.  The audit that says so (session 16; redo it when a server
	 * thread gets a new use of either):
	 * - pf->store, in a running server, is used only with pf->lock
	 *   held: ingest.c (lookup, device_get, commit_batch; the WAL's
	 *   sync after the lock is an fdatasync of a file descriptor, no
	 *   SQLite call), enroll.c (pf_enroll_create, pf_enroll_redeem),
	 *   pull.c (heartbeat), rekey.c (pf_api_rekey and its record),
	 *   attachments.c (an upload's row, maybe_sweep's partial age).
	 *   Its other users run before the server's threads start or after
	 *   they stop (this open, pf_root_load, pf_reference_schema, the
	 *   limits, serve_start, pf_platform_free after pf_http_stop), or
	 *   in command processes of their own (admin.c, reconcile.c,
	 *   rotate.c, export, reference add/list, attachments' commands,
	 *   main.c's device commands), each with its own connections.
	 * - pf->reader is used only with pf->read_lock held (api.c, pull.c,
	 *   reference.c, rekey.c, root.c, attachments.c, ingest.c).
	 * - The store's checkpointer thread (sync/db.c) has a connection of
	 *   its own; its hook on the writer's runs inside the writer's
	 *   COMMIT, on the writer's thread.
	 * Other processes (a second serve, admin commands) have other
	 * connections, which SQLite's file locks order, not these mutexes.
	 */
	if ((r = pf_store_sqlite_open(path, (read ? PF_STORE_READ : 0) |
	    PF_STORE_ONE_THREAD, &pf->store)) != GS_OK ||
	    (r = pf_store_sqlite_open(path, (read ? PF_STORE_READ : 0) |
	    PF_STORE_ONE_THREAD, &pf->reader)) != GS_OK)
		goto out;
	pf->readonly = pf_store_sqlite_readonly(pf->store);
	if ((r = meta_hex(pf->store, "deployment", pf->keys.deployment,
	    sizeof(pf->keys.deployment))) != GS_OK ||
	    (r = meta_hex(pf->store, "batch_pk", pf->keys.batch_pk,
	    sizeof(pf->keys.batch_pk))) != GS_OK ||
	    (r = meta_hex(pf->store, "receipt_pk", pf->keys.receipt_pk,
	    sizeof(pf->keys.receipt_pk))) != GS_OK)
		goto out;
	r = pf->store->ops->meta_get(pf->store, "public_url", &pf->public_url);
	if (r == GS_ENOTFOUND)
		r = (pf->public_url = gs_strdup(PF_DEFAULT_URL)) != NULL ?
		    GS_OK : GS_ENOMEM;
	if (r != GS_OK)
		goto out;

	/* The key files must be the ones the store was made with: a restored
	 * backup with the wrong keys would otherwise sign receipts no
	 * device can verify, or fail to open every batch. */
	gs_crypto_key_id(pf->keys.batch_kid, pf->keys.batch_pk,
	    sizeof(pf->keys.batch_pk));
	fault_open_pause();
	/* After a rotation the current key is batch-<kid>.* (rotate.c);
	 * batch.* is the copy, or the only files of a home never rotated. */
	{
		char kh[2 * GS_KIDBYTES + 1], kn[64], pn[64];

		gs_hex_encode(kh, pf->keys.batch_kid, GS_KIDBYTES);
		snprintf(kn, sizeof(kn), "batch-%s.key", kh);
		snprintf(pn, sizeof(pn), "batch-%s.pub", kh);
		r = read_key_file(home, kn, pf->keys.batch_sk, GS_KX_SKBYTES);
		if (r == GS_OK)
			r = read_key_file(home, pn, pk, sizeof(pk));
		/* Without its .pub the pair is still being written: the
		 * first 'keys rotate' of a home saves the current key under
		 * its batch-<kid> names while we read (rotate.c). */
		if (r == GS_ENOTFOUND &&
		    (r = read_key_file(home, "batch.key", pf->keys.batch_sk,
		    GS_KX_SKBYTES)) == GS_OK)
			r = read_key_file(home, "batch.pub", pk, sizeof(pk));
	}
	if (r != GS_OK ||
	    (r = read_key_file(home, "receipt.key", pf->keys.receipt_sk,
	    GS_SIGN_SKBYTES)) != GS_OK)
		goto out;
	if (memcmp(pk, pf->keys.batch_pk, sizeof(pk)) != 0) {
		r = GS_FAIL(GS_ECORRUPT, "batch.pub does not match the store");
		goto out;
	}
	gs_crypto_sign_sk_to_pk(spk, pf->keys.receipt_sk);
	if (memcmp(spk, pf->keys.receipt_pk, sizeof(spk)) != 0) {
		r = GS_FAIL(GS_ECORRUPT, "receipt.key does not match the "
		    "store");
		goto out;
	}
	/* Before the old keys are listed: a retirement a crash cut short
	 * leaves a secret key under a name they skip. */
	pf_keys_finish_retire(pf);
	if ((r = pf_keys_load_old(pf)) != GS_OK ||
	    (r = pf_root_load(pf)) != GS_OK)
		goto out;
	/* The built-in forms and code tables with what an admin published
	 * (platform/reference.c). */
	if ((r = pf_reference_schema(pf->store, &pf->schema, &pf->ref_docs,
	    &pf->ref_serial)) != GS_OK)
		goto out;
	gs_envelope_limits_default(&lim);
	pf->limits.max_envelope = lim.max_envelope;
	pf->limits.max_plain = lim.max_plain;
	pf->limits.max_records = lim.max_records;
	pf->limits.max_attachment = pf_att_limit_load(pf->store);
	*out = pf;
	pf = NULL;
	r = GS_OK;
out:
	pf_keys_unlock(lock);
	pf_platform_free(pf);
	return r;
}

int
pf_platform_open(const char *home, struct pf_platform **out)
{
	return platform_open(home, 0, out);
}

void
pf_platform_readonly_note(struct pf_platform *pf, const char *note)
{
	size_t n = strlen(pf->ro_notes);

	snprintf(pf->ro_notes + n, sizeof(pf->ro_notes) - n, "; %s", note);
}

void
pf_platform_readonly_warn(const struct pf_platform *pf, const char *home)
{
	if (pf->readonly == 1)
		fprintf(stderr, "gridplatform: warning: %s is read-only: "
		    "showing what is stored; nothing can be changed there%s\n",
		    home, pf->ro_notes);
	else if (pf->readonly)
		fprintf(stderr, "gridplatform: warning: %s is read-only: "
		    "showing the store file as it is; nothing can be changed "
		    "there, and a process writing it elsewhere may have "
		    "changes not shown%s\n", home, pf->ro_notes);
}

int
pf_platform_open_read(const char *home, struct pf_platform **out)
{
	return platform_open(home, 1, out);
}

void
pf_platform_free(struct pf_platform *pf)
{
	if (pf == NULL)
		return;
	pf_att_release(pf);
	pf_store_close(pf->reader);
	pf_store_close(pf->store);
	gs_schema_free(pf->schema);
	pf_reference_free(pf);
	gs_crypto_secure_free(pf->keys.batch_sk);
	gs_crypto_secure_free(pf->keys.receipt_sk);
	pf_keys_free_old(pf);
	(void)pthread_mutex_destroy(&pf->lock);
	(void)pthread_cond_destroy(&pf->flight_cv);
	(void)pthread_mutex_destroy(&pf->flight_lock);
	(void)pthread_mutex_destroy(&pf->rate_lock);
	(void)pthread_mutex_destroy(&pf->read_lock);
	(void)pthread_mutex_destroy(&pf->ref_lock);
	(void)pthread_mutex_destroy(&pf->root_lock);
	gs_free(pf->home);
	gs_free(pf->public_url);
	gs_free(pf);
}

void
pf_platform_fingerprint(const struct pf_platform *pf, unsigned char fp[16])
{
	gs_enroll_fingerprint(fp, pf->keys.deployment, pf->root.pk);
}
