/*
 * rotate.c - rotation of the platform's batch-encryption key (issue 6):
 *
 *	gridplatform keys list [--json]
 *	gridplatform keys rotate
 *	gridplatform keys retire KID [--force]
 *
 * Files.  Every batch key the deployment ever had lives in its home as
 * batch-<kid>.pub (kept for ever: the record of what existed) and, while
 * it can still open batches, batch-<kid>.key (0600).  The store's meta
 * batch_pk names the CURRENT key; batch.key/batch.pub are a copy of it
 * (the names `init` made).  A rotation, in an order that leaves a
 * consistent home at every crash point:
 *   1. the current key is saved as batch-<oldkid>.key/.pub (if not yet);
 *   2. a new key pair is written as batch-<newkid>.key/.pub;
 *   3. meta batch_pk := the new key, and batch_retired_at:<oldkid> := now,
 *      in one transaction (this is the switch);
 *   4. batch.key/batch.pub are replaced by copies of the new key.
 * pf_platform_open reads the current key from batch-<kid>.* when present,
 * else from batch.*, and every other batch-*.key as an old key.
 *
 * What changes for devices.  The rotation issues a new key bundle signed
 * by the root key (root.c); every device takes it at its next sync and
 * seals new batches to the new key.  Batches sealed earlier (a device
 * offline across the rotation) keep opening with the old key.
 * Enrollment codes pin the root key, so codes made before the rotation
 * stay valid.  A running `serve` notices the newer bundle in the store at
 * its next health request (root.c, pf_root_refresh), takes the new batch
 * key from the home with pf_keys_adopt, and only then serves the bundle.
 *
 * Rotate and retire hold the home's keys.lock exclusively from before
 * they open the home to their end; every open of the home holds it
 * shared (keys.c, pf_keys_lock): a command opening the home meanwhile
 * waits, and sees the keys before the rotation or after it.
 *
 * Retire deletes an old secret key (overwritten, fsync'd, unlinked).  It
 * refuses while a device might still seal to it: a device whose last
 * batch used it, or an active device with no batch yet that enrolled
 * before the key stopped being current.  --force retires anyway; such a
 * device's next batch is then refused (GS_EDECRYPT) and stays on it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "db.h"
#include "platform.h"
#include "store.h"
#include "core/banned.h"

#define MAX_OLD 64
/* Statement slots of pf_store_sqlite_stmt used here (recon_sql.c has the
 * first ~30, attachments.c 48..63). */
#define SLOT_LAST_BATCH 40
#define SLOT_NO_BATCH 41

/* ------------------------------------------------------------ files */

static int
key_path(const char *home, const char *kidhex, const char *ext, char *out,
    size_t n)
{
	int w = kidhex != NULL ?
	    snprintf(out, n, "%s/batch-%s.%s", home, kidhex, ext) :
	    snprintf(out, n, "%s/batch.%s", home, ext);

	return w < 0 || (size_t)w >= n ? GS_FAIL(GS_EINVAL, "path too long")
				       : GS_OK;
}

/*
 * Tests only (tests/integration/keys-rotate.sh): "rotate-tmp-crash=N"
 * kills the process (SIGKILL) once the Nth tmp file of write_hex is
 * written and synced, before its rename.
 */
static void
fault_tmp_crash(void)
{
	static long seen;
	long n;
	uint64_t v;

	if (pf_fault_hit("rotate-tmp-crash", &seen, &n, &v) && n == (long)v)
		(void)raise(SIGKILL);
}

/* Writes hex of p and a newline to path (tmp + fsync + rename when
 * replace, else O_EXCL: an existing file is an error).  The tmp name
 * is this process's: two 'keys rotate' at once each wrote and renamed
 * "<path>.tmp", and one found the other had taken it.  The tmp file is
 * locked (flock) while it has its name: pf_keys_finish_retire removes
 * one left by a crash, never one still being written. */
static int
write_hex(const char *path, const unsigned char *p, size_t n, mode_t mode,
    int replace)
{
	char hex[2 * 64 + 2], tmp[4200];
	const char *target = path;
	int fd, r = GS_OK;

	gs_hex_encode(hex, p, n);
	hex[2 * n] = '\n';
	if (replace) {
		snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path,
		    (long)getpid());
		(void)unlink(tmp);
		target = tmp;
	}
	fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		r = GS_FAIL(errno == EEXIST ? GS_EEXIST : GS_EIO,
		    "cannot create %s: %s", target, strerror(errno));
		goto out;
	}
	if ((replace && flock(fd, LOCK_EX) != 0) ||
	    write(fd, hex, 2 * n + 1) != (ssize_t)(2 * n + 1) ||
	    fsync(fd) != 0)
		r = GS_FAIL(GS_EIO, "cannot write %s: %s", target,
		    strerror(errno));
	if (r == GS_OK && replace)
		fault_tmp_crash();
	if (r != GS_OK && replace)
		(void)unlink(tmp);
	if (r == GS_OK && replace && rename(tmp, path) != 0) {
		r = GS_FAIL(GS_EIO, "cannot rename %s: %s", tmp,
		    strerror(errno));
		(void)unlink(tmp);
	}
	(void)close(fd);
out:
	gs_crypto_memzero(hex, sizeof(hex));
	return r;
}

/* Saves a key pair as batch-<kid>.key/.pub unless already there (then
 * the stored public key must match).  Each file appears whole (tmp +
 * rename), the .key first: another process listing the home meanwhile
 * (any admin command, pf_keys_load_old) sees no file or a whole one, and
 * a .key without its .pub is a rotation still under way. */
static int
save_pair(const char *home, const unsigned char *pk, const unsigned char *sk)
{
	unsigned char kid[GS_KIDBYTES], have[GS_KX_PKBYTES];
	char kh[2 * GS_KIDBYTES + 1], path[4200];
	int r;

	gs_crypto_key_id(kid, pk, GS_KX_PKBYTES);
	gs_hex_encode(kh, kid, sizeof(kid));
	if ((r = key_path(home, kh, "pub", path, sizeof(path))) != GS_OK)
		return r;
	r = pf_key_read_hex(path, have, sizeof(have));
	if (r == GS_OK)
		return memcmp(have, pk, sizeof(have)) == 0 ? GS_OK :
		    GS_FAIL(GS_ECORRUPT, "%s holds another key", path);
	if (r != GS_ENOTFOUND)
		return r;
	if ((r = key_path(home, kh, "key", path, sizeof(path))) != GS_OK ||
	    (r = write_hex(path, sk, GS_KX_SKBYTES, 0600, 1)) != GS_OK ||
	    (r = key_path(home, kh, "pub", path, sizeof(path))) != GS_OK)
		return r;
	return write_hex(path, pk, GS_KX_PKBYTES, 0644, 1);
}

/* ------------------------------------------------------------ old keys */

/*
 * Overwrites the open file fd (path, for messages) with zeros, its whole
 * size (half of it with half set: a test's crash point), and syncs it.
 * GS_OK, or GS_EIO (what could be written is).
 */
static int
zero_file(int fd, const char *path, int half)
{
	static const unsigned char zero[4096];
	struct stat sb;
	off_t left, at = 0;
	ssize_t w;

	if (fstat(fd, &sb) != 0)
		return GS_FAIL(GS_EIO, "cannot stat %s: %s", path,
		    strerror(errno));
	for (left = half ? sb.st_size / 2 : sb.st_size; left > 0;
	    left -= w, at += w)
		if ((w = pwrite(fd, zero, left > (off_t)sizeof(zero) ?
		    sizeof(zero) : (size_t)left, at)) <= 0)
			return GS_FAIL(GS_EIO, "cannot overwrite %s: %s", path,
			    strerror(errno));
	if (fsync(fd) != 0)
		return GS_FAIL(GS_EIO, "cannot overwrite %s: %s", path,
		    strerror(errno));
	return GS_OK;
}

/*
 * The tmp file of a write_hex whose writer is gone: "batch.key.tmp.PID",
 * "batch-<kid>.pub.tmp.PID" and so on.  1 when n is such a name (*secret:
 * a .key) and no process PID exists; a process that does may be the
 * writer, whose file is its own (and its lock says so too, see the
 * caller).
 */
static int
stale_tmp(const char *n, int *secret)
{
	const char *t = strstr(n, ".tmp.");
	size_t stem;
	int64_t pid;

	if (t == NULL || strncmp(n, "batch", 5) != 0 ||
	    gs_parse_i64(t + 5, 1, INT32_MAX, &pid) != GS_OK) {
		gs_errmsg_clear();
		return 0;
	}
	stem = (size_t)(t - n);
	if (stem < 4 || (strncmp(t - 4, ".key", 4) != 0 &&
	    strncmp(t - 4, ".pub", 4) != 0))
		return 0;
	/* batch.key, or batch-<16 hex>.key: write_hex's targets. */
	if (stem != 9 && !(stem == 26 && n[5] == '-'))
		return 0;
	if (stem == 9 && n[5] != '.')
		return 0;
	*secret = strncmp(t - 4, ".key", 4) == 0;
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Overwrites (a secret key) and removes a tmp file left by a 'keys
 * rotate' that died (stale_tmp), unless someone holds its lock. */
static void
remove_stale_tmp(struct pf_platform *pf, const char *n, int secret)
{
	char path[4200];
	struct stat sb;
	int fd, r = GS_OK;

	snprintf(path, sizeof(path), "%s/%s", pf->home, n);
	if (pf->readonly) {
		char note[120];

		snprintf(note, sizeof(note), "%.60s is left by a 'keys "
		    "rotate' that stopped", n);
		pf_platform_readonly_note(pf, note);
		return;
	}
	if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &sb) != 0 ||
	    sb.st_nlink == 0 || !S_ISREG(sb.st_mode)) {
		(void)close(fd);
		return;
	}
	if ((!secret || (r = zero_file(fd, path, 0)) == GS_OK) &&
	    unlink(path) != 0 && errno != ENOENT)
		r = GS_FAIL(GS_EIO, "cannot remove %s: %s", path,
		    strerror(errno));
	(void)close(fd);
	if (r == GS_OK)
		gs_log(GS_LOG_WARNING, "removed %s, left by a 'keys rotate' "
		    "that stopped%s", path, secret ? " (overwritten first)" :
		    "");
	else
		gs_log(GS_LOG_WARNING, "%s: left by a 'keys rotate' that "
		    "stopped: %s", path, gs_errmsg(r));
}

void
pf_keys_finish_retire(struct pf_platform *pf)
{
	DIR *d;
	struct dirent *e;
	char path[4200];
	static const char suffix[] = ".key.retired";
	struct stat sb;
	int fd, r;

	if ((d = opendir(pf->home)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		unsigned char kid[GS_KIDBYTES];
		char kh[17];
		int secret;

		if (stale_tmp(n, &secret)) {
			remove_stale_tmp(pf, n, secret);
			continue;
		}
		/* batch-<16 hex>.key.retired, exactly: cmd_retire's name. */
		if (strncmp(n, "batch-", 6) != 0 ||
		    strlen(n) != 6 + 16 + sizeof(suffix) - 1 ||
		    strcmp(n + 22, suffix) != 0)
			continue;
		memcpy(kh, n + 6, 16);
		kh[16] = '\0';
		if (gs_hex_decode(kid, sizeof(kid), kh) != GS_OK)
			continue;
		snprintf(path, sizeof(path), "%s/%s", pf->home, n);
		if (pf->readonly) {
			char note[96];

			snprintf(note, sizeof(note), "%.40s is left by a 'keys "
			    "retire' that stopped", n);
			pf_platform_readonly_note(pf, note);
			continue;
		}
		/* A retire under way holds the file's lock (cmd_retire):
		 * it is not ours to finish.  Nor is a file it unlinked
		 * while we took the lock. */
		if ((fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			continue;
		if (flock(fd, LOCK_EX | LOCK_NB) != 0 ||
		    fstat(fd, &sb) != 0 || sb.st_nlink == 0 ||
		    !S_ISREG(sb.st_mode)) {
			(void)close(fd);
			continue;
		}
		if ((r = zero_file(fd, path, 0)) == GS_OK &&
		    unlink(path) != 0 && errno != ENOENT)
			r = GS_FAIL(GS_EIO, "cannot remove %s: %s", path,
			    strerror(errno));
		(void)close(fd);
		if (r == GS_OK)
			gs_log(GS_LOG_WARNING, "finished retiring batch key "
			    "%s: %s, left by a 'keys retire' that stopped, "
			    "overwritten and removed", kh, path);
		else
			gs_log(GS_LOG_WARNING, "%s: left by a 'keys retire' "
			    "that stopped: %s", path, gs_errmsg(r));
	}
	closedir(d);
}

int
pf_keys_load_old(struct pf_platform *pf)
{
	DIR *d;
	struct dirent *e;
	int r = GS_OK;

	/* The table is made whole now and never moves: a running server
	 * adds keys to it (pf_keys_adopt) while other threads read it. */
	if (pf->old_keys == NULL &&
	    (pf->old_keys = gs_calloc(MAX_OLD, sizeof(*pf->old_keys))) == NULL)
		return GS_FAIL(GS_ENOMEM, "old keys");
	if ((d = opendir(pf->home)) == NULL)
		return GS_FAIL(GS_EIO, "cannot list %s", pf->home);
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		struct pf_oldkey *k;
		unsigned char kid[GS_KIDBYTES], pk2[GS_KX_PKBYTES];
		char path[4200], kh[2 * GS_KIDBYTES + 1];

		if (strncmp(n, "batch-", 6) != 0 || strlen(n) != 6 + 16 + 4 ||
		    strcmp(n + 22, ".key") != 0)
			continue;
		memcpy(kh, n + 6, 16);
		kh[16] = '\0';
		if (gs_hex_decode(kid, sizeof(kid), kh) != GS_OK ||
		    memcmp(kid, pf->keys.batch_kid, GS_KIDBYTES) == 0)
			continue;
		if (pf->nold_keys == 0 && pf->old_keys == NULL &&
		    (pf->old_keys = gs_calloc(MAX_OLD, sizeof(*k))) == NULL) {
			r = GS_FAIL(GS_ENOMEM, "old keys");
			break;
		}
		if (pf->nold_keys == MAX_OLD) {
			gs_log(GS_LOG_WARNING, "more than %d old batch keys: "
			    "retire some", MAX_OLD);
			break;
		}
		k = &pf->old_keys[pf->nold_keys];
		if ((k->sk = gs_crypto_secure_alloc(GS_KX_SKBYTES)) == NULL) {
			r = GS_FAIL(GS_ENOMEM, "secure memory for keys");
			break;
		}
		pf->nold_keys++;
		memcpy(k->kid, kid, sizeof(kid));
		if ((r = key_path(pf->home, kh, "key", path, sizeof(path)))
		    != GS_OK ||
		    (r = pf_key_read_hex(path, k->sk, GS_KX_SKBYTES)) != GS_OK ||
		    (r = key_path(pf->home, kh, "pub", path, sizeof(path)))
		    != GS_OK ||
		    (r = pf_key_read_hex(path, k->pk, GS_KX_PKBYTES)) != GS_OK) {
			if (r != GS_ENOTFOUND)
				break;
			/* A 'keys rotate' in another process has written
			 * the .key and not yet the .pub (save_pair), or a
			 * 'keys retire' removed it since the listing: not
			 * a key any device seals to now. */
			gs_crypto_secure_free(k->sk);
			k->sk = NULL;
			pf->nold_keys--;
			r = GS_OK;
			continue;
		}
		gs_crypto_key_id(pk2, k->pk, GS_KX_PKBYTES);
		if (memcmp(pk2, kid, GS_KIDBYTES) != 0) {
			r = GS_FAIL(GS_ECORRUPT, "%s: the key does not match "
			    "its name", n);
			break;
		}
	}
	closedir(d);
	return r;
}

int
pf_keys_adopt(struct pf_platform *pf, const unsigned char kid[GS_KIDBYTES])
{
	struct pf_oldkey *k;
	unsigned char pk2[GS_KIDBYTES];
	char path[4200], kh[2 * GS_KIDBYTES + 1];
	size_t i;
	int r;

	if (memcmp(kid, pf->keys.batch_kid, GS_KIDBYTES) == 0)
		return GS_OK;
	for (i = 0; i < pf->nold_keys; i++)
		if (memcmp(kid, pf->old_keys[i].kid, GS_KIDBYTES) == 0)
			return GS_OK;
	if (pf->old_keys == NULL || pf->nold_keys == MAX_OLD)
		return GS_FAIL(GS_ETOOBIG, "more than %d old batch keys: "
		    "retire some and restart", MAX_OLD);
	/* Filled in full before the count makes it visible to readers
	 * (pf_batch_key walks the first nold_keys entries). */
	k = &pf->old_keys[pf->nold_keys];
	memset(k, 0, sizeof(*k));
	if ((k->sk = gs_crypto_secure_alloc(GS_KX_SKBYTES)) == NULL)
		return GS_FAIL(GS_ENOMEM, "secure memory for keys");
	memcpy(k->kid, kid, GS_KIDBYTES);
	gs_hex_encode(kh, kid, GS_KIDBYTES);
	if ((r = key_path(pf->home, kh, "key", path, sizeof(path))) != GS_OK ||
	    (r = pf_key_read_hex(path, k->sk, GS_KX_SKBYTES)) != GS_OK ||
	    (r = key_path(pf->home, kh, "pub", path, sizeof(path))) != GS_OK ||
	    (r = pf_key_read_hex(path, k->pk, GS_KX_PKBYTES)) != GS_OK)
		goto fail;
	gs_crypto_key_id(pk2, k->pk, GS_KX_PKBYTES);
	if (memcmp(pk2, kid, GS_KIDBYTES) != 0) {
		r = GS_FAIL(GS_ECORRUPT, "batch-%s: the key does not match its "
		    "name", kh);
		goto fail;
	}
	__atomic_store_n(&pf->nold_keys, pf->nold_keys + 1, __ATOMIC_RELEASE);
	return GS_OK;
fail:
	gs_crypto_secure_free(k->sk);
	k->sk = NULL;
	return r;
}

void
pf_keys_free_old(struct pf_platform *pf)
{
	size_t i;

	for (i = 0; i < pf->nold_keys; i++)
		gs_crypto_secure_free(pf->old_keys[i].sk);
	gs_free(pf->old_keys);
	pf->old_keys = NULL;
	pf->nold_keys = 0;
}

int
pf_batch_key(const struct pf_platform *pf,
    const unsigned char kid[GS_KIDBYTES], const unsigned char **pk,
    const unsigned char **sk)
{
	size_t i;

	if (gs_crypto_memcmp(kid, pf->keys.batch_kid, GS_KIDBYTES) == 0) {
		*pk = pf->keys.batch_pk;
		*sk = pf->keys.batch_sk;
		return GS_OK;
	}
	for (i = 0; i < pf->nold_keys; i++)
		if (memcmp(kid, pf->old_keys[i].kid, GS_KIDBYTES) == 0) {
			*pk = pf->old_keys[i].pk;
			*sk = pf->old_keys[i].sk;
			return GS_OK;
		}
	return GS_FAIL(GS_EDECRYPT, "envelope is sealed to another platform "
				    "key (unknown or retired)");
}

/* ------------------------------------------------------------ commands */

/* Devices that might still seal to kid: last batch used it, or no batch
 * yet and enrolled before retired_at (0: it is current). */
static int
users_of(struct pf_platform *pf, const unsigned char kid[GS_KIDBYTES],
    int64_t retired_at, int64_t *by_batch, int64_t *unknown)
{
	struct gs_stmt *s = NULL;
	int r;

	*by_batch = *unknown = 0;
	if ((r = pf_store_sqlite_stmt(pf->store, SLOT_LAST_BATCH,
	    "SELECT count(*) FROM "
	    "devices d JOIN batches b ON b.device_id = d.device_id AND "
	    "b.seq = (SELECT max(seq) FROM batches WHERE device_id = "
	    "d.device_id) JOIN batch_envelopes e ON e.batch = b.id "
	    "WHERE substr(e.envelope, 129, 8) = ?1", &s))
	    != GS_OK)
		return r;
	if ((r = gs_stmt_bind_blob(s, 1, kid, GS_KIDBYTES)) != GS_OK ||
	    (r = gs_stmt_one_int64(s, 0, by_batch)) != GS_OK)
		goto out;
	if (retired_at > 0) {
		if ((r = pf_store_sqlite_stmt(pf->store, SLOT_NO_BATCH,
		    "SELECT count(*) FROM "
		    "devices d WHERE status = 'active' AND enrolled_at <= ?1 "
		    "AND NOT EXISTS (SELECT 1 FROM batches b WHERE "
		    "b.device_id = d.device_id)", &s)) != GS_OK)
			return r;
		if ((r = gs_stmt_bind_int64(s, 1, retired_at)) != GS_OK ||
		    (r = gs_stmt_one_int64(s, 0, unknown)) != GS_OK)
			goto out;
	}
out:
	/* The statements belong to the store (kept prepared). */
	if (s != NULL)
		gs_stmt_reset(s);
	return r;
}

static int64_t
retired_at_of(struct pf_platform *pf, const char *kh)
{
	char key[64], *v = NULL;
	int64_t t = 0;

	snprintf(key, sizeof(key), "batch_retired_at:%s", kh);
	if (pf->store->ops->meta_get(pf->store, key, &v) == GS_OK &&
	    gs_parse_i64(v, 0, INT64_MAX, &t) != GS_OK)
		t = 0;
	gs_free(v);
	return t;
}

static int
cmd_list(struct pf_platform *pf, int json)
{
	json_t *arr = json_array();
	DIR *d;
	struct dirent *e;
	int r = GS_OK;

	if (arr == NULL)
		return GS_FAIL(GS_ENOMEM, "keys");
	if ((d = opendir(pf->home)) == NULL) {
		json_decref(arr);
		return GS_FAIL(GS_EIO, "cannot list %s", pf->home);
	}
	while ((e = readdir(d)) != NULL && r == GS_OK) {
		const char *n = e->d_name;
		unsigned char kid[GS_KIDBYTES];
		char kh[17], path[4200];
		struct stat sb;
		int64_t used = 0, unknown = 0, rt;
		int current;
		const char *state;

		if (strncmp(n, "batch-", 6) != 0 || strlen(n) != 26 ||
		    strcmp(n + 22, ".pub") != 0)
			continue;
		memcpy(kh, n + 6, 16);
		kh[16] = '\0';
		if (gs_hex_decode(kid, sizeof(kid), kh) != GS_OK)
			continue;
		current = memcmp(kid, pf->keys.batch_kid, GS_KIDBYTES) == 0;
		(void)key_path(pf->home, kh, "key", path, sizeof(path));
		state = current ? "current" :
		    stat(path, &sb) == 0 ? "old" : "retired";
		rt = current ? 0 : retired_at_of(pf, kh);
		if ((r = users_of(pf, kid, rt, &used, &unknown)) != GS_OK)
			break;
		if (json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,"
		    "s:I}", "kid", kh, "state", state, "last_batch_devices",
		    (json_int_t)used, "devices_without_batch",
		    (json_int_t)unknown, "retired_at", (json_int_t)rt)) != 0)
			r = GS_FAIL(GS_ENOMEM, "keys");
	}
	closedir(d);
	/* The key init made, never rotated, has no batch-<kid> files. */
	if (r == GS_OK && json_array_size(arr) == 0) {
		char kh[17];
		int64_t used = 0, unknown = 0;

		gs_hex_encode(kh, pf->keys.batch_kid, GS_KIDBYTES);
		if ((r = users_of(pf, pf->keys.batch_kid, 0, &used, &unknown))
		    == GS_OK)
			json_array_append_new(arr, json_pack("{s:s,s:s,s:I,s:I,"
			    "s:I}", "kid", kh, "state", "current",
			    "last_batch_devices", (json_int_t)used,
			    "devices_without_batch", (json_int_t)0,
			    "retired_at", (json_int_t)0));
	}
	if (r == GS_OK) {
		size_t i;
		json_t *k;

		if (json) {
			char *t = json_dumps(arr, JSON_COMPACT);

			if (t != NULL)
				puts(t);
			free(t);
		} else {
			json_array_foreach(arr, i, k)
				printf("%s  %-8s  last batch of %lld device(s)"
				    ", %lld enrolled device(s) without a "
				    "batch\n",
				    json_string_value(json_object_get(k, "kid")),
				    json_string_value(json_object_get(k,
				    "state")), (long long)json_integer_value(
				    json_object_get(k, "last_batch_devices")),
				    (long long)json_integer_value(
				    json_object_get(k, "devices_without_batch")));
		}
	}
	json_decref(arr);
	return r;
}

static int
cmd_rotate(struct pf_platform *pf)
{
	unsigned char pk[GS_KX_PKBYTES], kid[GS_KIDBYTES];
	unsigned char *sk = NULL;
	char hex[2 * GS_KX_PKBYTES + 1], kh[17], okh[17], key[64], now[32];
	char path[4200];
	int r = GS_EINTERNAL, in_tx = 0;

	if ((sk = gs_crypto_secure_alloc(GS_KX_SKBYTES)) == NULL)
		return GS_FAIL(GS_ENOMEM, "secure memory for keys");
	/* 1 and 2: both pairs on disk before the switch. */
	if ((r = save_pair(pf->home, pf->keys.batch_pk, pf->keys.batch_sk))
	    != GS_OK)
		goto out;
	gs_crypto_kx_keypair(pk, sk);
	if ((r = save_pair(pf->home, pk, sk)) != GS_OK)
		goto out;
	/* 3: the switch, one transaction. */
	gs_crypto_key_id(kid, pk, sizeof(pk));
	gs_hex_encode(kh, kid, sizeof(kid));
	gs_hex_encode(okh, pf->keys.batch_kid, GS_KIDBYTES);
	gs_hex_encode(hex, pk, sizeof(pk));
	snprintf(key, sizeof(key), "batch_retired_at:%s", okh);
	snprintf(now, sizeof(now), "%lld", (long long)gs_now_ms());
	if ((r = pf->store->ops->begin(pf->store)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = pf->store->ops->meta_set(pf->store, "batch_pk", hex))
	    != GS_OK ||
	    (r = pf->store->ops->meta_set(pf->store, key, now)) != GS_OK ||
	    (r = pf->store->ops->commit(pf->store)) != GS_OK)
		goto out;
	in_tx = 0;
	/* 4: the names init made follow the current key. */
	if ((r = key_path(pf->home, NULL, "key", path, sizeof(path))) != GS_OK ||
	    (r = write_hex(path, sk, GS_KX_SKBYTES, 0600, 1)) != GS_OK ||
	    (r = key_path(pf->home, NULL, "pub", path, sizeof(path))) != GS_OK ||
	    (r = write_hex(path, pk, GS_KX_PKBYTES, 0644, 1)) != GS_OK)
		goto out;
	/* 5: a new key bundle (root.c) names the new key; devices take it
	 * at their next sync. */
	memcpy(pf->keys.batch_pk, pk, GS_KX_PKBYTES);
	memcpy(pf->keys.batch_kid, kid, GS_KIDBYTES);
	if ((r = pf_root_issue(pf)) != GS_OK)
		goto out;
	printf("%s\n", kh);
	fprintf(stderr, "gridplatform: batch key %s is current (key bundle "
	    "%llu); %s is kept for batches sealed to it.  A running serve "
	    "takes it at its next health request.\n", kh,
	    (unsigned long long)pf->root.serial, okh);
	r = GS_OK;
out:
	if (in_tx)
		pf->store->ops->rollback(pf->store);
	gs_crypto_secure_free(sk);
	return r;
}

/*
 * Tests only (tests/integration/keys-rotate.sh): "retire-crash=1" kills
 * 'keys retire' (SIGKILL) just after it renamed the key to .retired,
 * "retire-crash=2" once half of that file is overwritten.  The point, or
 * 0.
 */
static int
fault_retire_crash(void)
{
	static long seen;
	long n;
	uint64_t v;

	return pf_fault_hit("retire-crash", &seen, &n, &v) ? (int)v : 0;
}

static int
cmd_retire(struct pf_platform *pf, const char *kh, int force)
{
	unsigned char kid[GS_KIDBYTES];
	char path[4200], gone[sizeof(path) + 8];
	int64_t used = 0, unknown = 0;
	struct stat sb;
	int fd, r, crash;

	if (strlen(kh) != 16 || gs_hex_decode(kid, sizeof(kid), kh) != GS_OK)
		return GS_FAIL(GS_EINVAL, "'%.40s' is not a key id (16 hex "
		    "digits, see 'gridplatform keys list')", kh);
	if (memcmp(kid, pf->keys.batch_kid, GS_KIDBYTES) == 0)
		return GS_FAIL(GS_EPERM, "%s is the current key: rotate "
		    "first", kh);
	if ((r = key_path(pf->home, kh, "key", path, sizeof(path))) != GS_OK)
		return r;
	if (stat(path, &sb) != 0)
		return GS_FAIL(GS_ENOTFOUND, "no secret key %s (retired "
		    "already, or never ours)", kh);
	if ((r = users_of(pf, kid, retired_at_of(pf, kh), &used, &unknown))
	    != GS_OK)
		return r;
	if ((used > 0 || unknown > 0) && !force)
		return GS_FAIL(GS_EPERM, "%s may still be in use: the last "
		    "batch of %lld device(s) used it and %lld device(s) "
		    "enrolled before the rotation have sent nothing yet "
		    "(--force retires it anyway; their next batches are then "
		    "refused)", kh, (long long)used, (long long)unknown);
	/* Out of sight first: another process listing the home (any admin
	 * command, pf_keys_load_old) would read the file half overwritten
	 * and stop at "is damaged"; a .key gone since the listing it skips.
	 * Then overwrite, sync, unlink: the secret is gone from the file
	 * system as far as we can make it (a journaling disk may keep
	 * copies).  The file stays locked (flock) from before its rename
	 * to after its unlink: a command that opens the home meanwhile and
	 * finds the .retired name leaves it to us; one that finds it
	 * unlocked finishes what a crash here cut short
	 * (pf_keys_finish_retire). */
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 ||
	    flock(fd, LOCK_EX) != 0) {
		r = GS_FAIL(GS_EIO, "cannot open %s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			(void)close(fd);
		return r;
	}
	snprintf(gone, sizeof(gone), "%s.retired", path);
	if (rename(path, gone) != 0) {
		r = GS_FAIL(GS_EIO, "cannot remove %s: %s", path,
		    strerror(errno));
		(void)close(fd);
		return r;
	}
	if ((crash = fault_retire_crash()) == 1)
		(void)raise(SIGKILL);
	if (crash == 2) {
		(void)zero_file(fd, gone, 1);
		(void)raise(SIGKILL);
	}
	if ((r = zero_file(fd, gone, 0)) != GS_OK)
		gs_log(GS_LOG_WARNING, "%s", gs_errmsg(r));
	r = unlink(gone) != 0 ? GS_FAIL(GS_EIO, "cannot remove %s: %s", gone,
	    strerror(errno)) : GS_OK;
	(void)close(fd);
	if (r != GS_OK)
		return r;
	printf("retired %s\n", kh);
	return GS_OK;
}

int
pf_cmd_keys(const char *home, int argc, char **argv)
{
	struct pf_platform *pf = NULL;
	int r, json = 0, force = 0, i = 2, lock = -1;
	const char *sub = argc > 1 ? argv[1] : "list", *arg = NULL;

	/* "keys --json" is "keys list --json", as "keys" is "keys list":
	 * --json on every read command (DESIGN.md section 7). */
	if (argc > 1 && argv[1][0] == '-') {
		sub = "list";
		i = 1;
	}
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--force") == 0)
			force = 1;
		else if (argv[i][0] != '-' && arg == NULL)
			arg = gs_id_lower(argv[i]);
		else {
			fprintf(stderr, "gridplatform: keys: unexpected "
					"argument %s (see gridplatform keys "
					"--help)\n", argv[i]);
			return GS_EX_USAGE;
		}
	}
	if (strcmp(sub, "list") != 0 && strcmp(sub, "rotate") != 0 &&
	    strcmp(sub, "retire") != 0) {
		fprintf(stderr, "gridplatform: keys: expected list, rotate "
				"or retire (see gridplatform keys --help)\n");
		return GS_EX_USAGE;
	}
	if (strcmp(sub, "retire") == 0 && arg == NULL) {
		fprintf(stderr, "gridplatform: keys retire needs a key id "
				"(see gridplatform keys list)\n");
		return GS_EX_USAGE;
	}
	/* rotate and retire hold keys.lock from before their open (which
	 * reads the current key) to their end: no other open sees a
	 * rotation half done, and two rotations do not interleave
	 * (pf_keys_lock). */
	if (strcmp(sub, "list") != 0 &&
	    (r = pf_keys_lock(home, 1, &lock)) != GS_OK) {
		fprintf(stderr, "gridplatform: %s\n", gs_errmsg(r));
		return gs_error_exit(r);
	}
	/* list only reads: a home that cannot be written is read all the
	 * same. */
	r = strcmp(sub, "list") == 0 ? pf_platform_open_read(home, &pf) :
	    pf_platform_open(home, &pf);
	if (r != GS_OK) {
		pf_keys_unlock(lock);
		fprintf(stderr, "gridplatform: %s\n", gs_errmsg(r));
		return gs_error_exit(r);
	}
	pf_platform_readonly_warn(pf, home);
	if (strcmp(sub, "list") == 0)
		r = cmd_list(pf, json);
	else if (strcmp(sub, "rotate") == 0)
		r = cmd_rotate(pf);
	else
		r = cmd_retire(pf, arg, force);
	pf_platform_free(pf);
	pf_keys_unlock(lock);
	if (r != GS_OK) {
		fprintf(stderr, "gridplatform: %s\n", gs_errmsg(r));
		return gs_error_exit(r);
	}
	return 0;
}
