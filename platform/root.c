/*
 * root.c - the platform's long-lived ROOT key and the GSK1 key bundle it
 * signs (issue 6, sync/keybundle.h, docs/PROTOCOL.md section 10).
 *
 * Files in the home: root.key (Ed25519 secret, 0600) and root.pub.  They
 * are made by `gridplatform init`; a home made before the root key
 * existed gets them at its first open (the store has no meta root_pk
 * yet).  A home whose store names a root key but whose root.key is gone
 * is refused: silently making a new root would strand every device that
 * pinned the old one.
 *
 * Bundles.  The current bundle is in the store's meta "bundle" (hex) with
 * "bundle_serial"; every issued bundle is also kept as "bundle:<serial>"
 * (the record of what was served, and what the test-only variable
 * GRIDPLATFORM_TEST_BUNDLE_SERIAL serves to simulate a replayed old
 * bundle).  A new bundle (serial + 1) is issued at open when the current
 * one does not name the current batch and receipt keys (after `keys
 * rotate`, which issues one itself) or expires within PF_BUNDLE_RENEW_MS.
 * The root secret key is read only to sign and wiped right after.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"
#include "keybundle.h"
#include "platform.h"
#include "store.h"
#include "core/banned.h"

/* A bundle is valid a year and renewed when less than 30 days remain. */
#define PF_BUNDLE_LIFE_MS (365LL * 24 * 3600 * 1000)
#define PF_BUNDLE_RENEW_MS (30LL * 24 * 3600 * 1000)
/* Devices older than this refuse bundles (and must upgrade). */
static const uint16_t min_agent[3] = { 0, 1, 0 };

static int
root_path(const char *home, const char *name, char *out, size_t n)
{
	int w = snprintf(out, n, "%s/%s", home, name);

	return w < 0 || (size_t)w >= n ?
	    GS_FAIL(GS_EINVAL, "path too long: %s/%s", home, name) : GS_OK;
}

/* Writes hex of p and a newline to a NEW file with mode. */
static int
write_new_hex(const char *path, const unsigned char *p, size_t n, mode_t mode)
{
	char hex[2 * GS_SIGN_SKBYTES + 2];
	int fd, r = GS_OK;
	size_t len = 2 * n + 1;

	gs_hex_encode(hex, p, n);
	hex[2 * n] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		r = GS_FAIL(errno == EEXIST ? GS_EEXIST : GS_EIO,
		    "cannot create %s: %s", path, strerror(errno));
	else {
		if (fchmod(fd, mode) != 0 ||
		    write(fd, hex, len) != (ssize_t)len || fsync(fd) != 0)
			r = GS_FAIL(GS_EIO, "cannot write %s: %s", path,
			    strerror(errno));
		if (close(fd) != 0 && r == GS_OK)
			r = GS_FAIL(GS_EIO, "cannot write %s", path);
	}
	gs_crypto_memzero(hex, sizeof(hex));
	return r;
}

/* Reads root.key into sk (the caller wipes it). */
static int
read_root_sk(const char *home, unsigned char sk[GS_SIGN_SKBYTES])
{
	char path[4096], hex[2 * GS_SIGN_SKBYTES + 4];
	int fd, r;
	ssize_t got;

	if ((r = root_path(home, "root.key", path, sizeof(path))) != GS_OK)
		return r;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return GS_FAIL(errno == ENOENT ? GS_ENOTFOUND : GS_EIO,
		    "cannot open %s: %s", path, strerror(errno));
	got = read(fd, hex, sizeof(hex) - 1);
	(void)close(fd);
	if (got < 0) {
		r = GS_FAIL(GS_EIO, "cannot read %s", path);
		goto out;
	}
	while (got > 0 && (hex[got - 1] == '\n' || hex[got - 1] == '\r'))
		got--;
	hex[got] = '\0';
	r = (size_t)got == 2 * GS_SIGN_SKBYTES &&
	    gs_hex_decode(sk, GS_SIGN_SKBYTES, hex) == GS_OK ? GS_OK :
	    GS_FAIL(GS_ECORRUPT, "%s is damaged", path);
out:
	gs_crypto_memzero(hex, sizeof(hex));
	return r;
}

int
pf_root_create(const char *home, unsigned char pk[GS_SIGN_PKBYTES])
{
	unsigned char sk[GS_SIGN_SKBYTES];
	char path[4096];
	int r;

	gs_crypto_sign_keypair(pk, sk);
	if ((r = root_path(home, "root.key", path, sizeof(path))) != GS_OK ||
	    (r = write_new_hex(path, sk, sizeof(sk), 0600)) != GS_OK ||
	    (r = root_path(home, "root.pub", path, sizeof(path))) != GS_OK ||
	    (r = write_new_hex(path, pk, GS_SIGN_PKBYTES, 0644)) != GS_OK)
		goto out;
out:
	gs_crypto_memzero(sk, sizeof(sk));
	return r;
}

/* Reads a hex meta value of n bytes: GS_OK, GS_ENOTFOUND, GS_ECORRUPT. */
static int
meta_bytes(struct pf_store *st, const char *key, unsigned char *out, size_t n)
{
	char *v = NULL;
	int r;

	if ((r = st->ops->meta_get(st, key, &v)) != GS_OK)
		return r;
	if (strlen(v) != 2 * n || gs_hex_decode(out, n, v) != GS_OK)
		r = GS_FAIL(GS_ECORRUPT, "store's %s is damaged", key);
	gs_free(v);
	return r;
}

static uint64_t
meta_u64(struct pf_store *st, const char *key)
{
	char *v = NULL;
	uint64_t x = 0;

	if (st->ops->meta_get(st, key, &v) == GS_OK &&
	    gs_parse_u64(v, UINT64_MAX, &x) != GS_OK)
		x = 0;
	gs_free(v);
	gs_errmsg_clear();
	return x;
}

int
pf_root_issue(struct pf_platform *pf)
{
	struct gs_keybundle b;
	unsigned char sk[GS_SIGN_SKBYTES], pk[GS_SIGN_PKBYTES];
	unsigned char out[GS_BUNDLE_BYTES];
	char hex[2 * GS_BUNDLE_BYTES + 1], key[48], num[24];
	struct pf_store *st = pf->store;
	int r = GS_EINTERNAL, in_tx = 0;

	if ((r = read_root_sk(pf->home, sk)) != GS_OK)
		goto out;
	gs_crypto_sign_sk_to_pk(pk, sk);
	if (memcmp(pk, pf->root.pk, sizeof(pk)) != 0) {
		r = GS_FAIL(GS_ECORRUPT, "root.key does not match the store's "
		    "root_pk");
		goto out;
	}
	if ((r = st->ops->begin(st)) != GS_OK)
		goto out;
	in_tx = 1;
	memset(&b, 0, sizeof(b));
	b.serial = meta_u64(st, "bundle_serial") + 1;
	b.not_after = gs_now_ms() + PF_BUNDLE_LIFE_MS;
	memcpy(b.min_version, min_agent, sizeof(b.min_version));
	memcpy(b.deployment, pf->keys.deployment, 16);
	memcpy(b.batch_pk, pf->keys.batch_pk, GS_KX_PKBYTES);
	memcpy(b.receipt_pk, pf->keys.receipt_pk, GS_SIGN_PKBYTES);
	if ((r = gs_keybundle_sign(&b, sk, out)) != GS_OK)
		goto out;
	gs_hex_encode(hex, out, sizeof(out));
	snprintf(key, sizeof(key), "bundle:%llu",
	    (unsigned long long)b.serial);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)b.serial);
	if ((r = st->ops->meta_set(st, key, hex)) != GS_OK ||
	    (r = st->ops->meta_set(st, "bundle", hex)) != GS_OK ||
	    (r = st->ops->meta_set(st, "bundle_serial", num)) != GS_OK ||
	    (r = st->ops->commit(st)) != GS_OK)
		goto out;
	in_tx = 0;
	memcpy(pf->root.bundle, out, sizeof(out));
	pf->root.serial = b.serial;
	gs_log(GS_LOG_INFO, "key bundle %llu issued (batch key of the bundle "
	    "is current)", (unsigned long long)b.serial);
	r = GS_OK;
out:
	if (in_tx)
		st->ops->rollback(st);
	gs_crypto_memzero(sk, sizeof(sk));
	return r;
}

int
pf_root_load(struct pf_platform *pf)
{
	struct pf_store *st = pf->store;
	struct gs_keybundle b;
	char hex[2 * GS_SIGN_PKBYTES + 1], path[4096];
	const char *e;
	int r;

	r = meta_bytes(st, "root_pk", pf->root.pk, GS_SIGN_PKBYTES);
	if (r == GS_ENOTFOUND && pf->readonly) {
		/* Nothing can be made on a read-only home, and nothing that
		 * only reads needs the root key: without it, no bundle. */
		gs_errmsg_clear();
		pf_platform_readonly_note(pf, "it has no root key yet (made "
		    "by the first command run where the home can be "
		    "written)");
		return GS_OK;
	}
	if (r == GS_ENOTFOUND) {
		/* A home made before the root key existed: make it now. */
		gs_errmsg_clear();
		if ((r = root_path(pf->home, "root.key", path, sizeof(path)))
		    != GS_OK)
			return r;
		if (access(path, F_OK) == 0)
			return GS_FAIL(GS_ECORRUPT, "%s exists but the store "
			    "names no root key", path);
		if ((r = pf_root_create(pf->home, pf->root.pk)) != GS_OK)
			return r;
		gs_hex_encode(hex, pf->root.pk, GS_SIGN_PKBYTES);
		if ((r = st->ops->meta_set(st, "root_pk", hex)) != GS_OK)
			return r;
		gs_log(GS_LOG_INFO, "made the platform root key (root.key): "
		    "enrollment codes now pin it");
	} else if (r != GS_OK)
		return r;

	/* The current bundle, re-issued when it no longer names the keys
	 * in use or nears its end. */
	r = meta_bytes(st, "bundle", pf->root.bundle, GS_BUNDLE_BYTES);
	if (r == GS_OK && gs_keybundle_open(pf->root.bundle, GS_BUNDLE_BYTES,
	    pf->root.pk, &b) == GS_OK &&
	    memcmp(b.batch_pk, pf->keys.batch_pk, GS_KX_PKBYTES) == 0 &&
	    memcmp(b.receipt_pk, pf->keys.receipt_pk, GS_SIGN_PKBYTES) == 0 &&
	    memcmp(b.deployment, pf->keys.deployment, 16) == 0 &&
	    b.not_after - gs_now_ms() > PF_BUNDLE_RENEW_MS) {
		pf->root.serial = b.serial;
	} else if (pf->readonly) {
		/* A read-only home is read as it is: the bundle it holds,
		 * if it holds a valid one, is what a serve of it would have
		 * started from too; none is issued. */
		if (r != GS_OK && r != GS_ENOTFOUND)
			return r;
		gs_errmsg_clear();
		if (r == GS_OK && gs_keybundle_open(pf->root.bundle,
		    GS_BUNDLE_BYTES, pf->root.pk, &b) == GS_OK)
			pf->root.serial = b.serial;
		else
			memset(pf->root.bundle, 0, sizeof(pf->root.bundle));
		pf_platform_readonly_note(pf, "its key bundle is due for "
		    "re-issue (the first command run where the home can be "
		    "written re-issues it)");
	} else {
		if (r != GS_OK && r != GS_ENOTFOUND)
			return r;
		gs_errmsg_clear();
		if ((r = pf_root_issue(pf)) != GS_OK)
			return r;
	}

	/* Tests only: serve an older bundle, as a replaying attacker
	 * would, to check that devices refuse it. */
	if ((e = getenv("GRIDPLATFORM_TEST_BUNDLE_SERIAL")) != NULL) {
		char key[48];

		snprintf(key, sizeof(key), "bundle:%s", e);
		if ((r = meta_bytes(st, key, pf->root.bundle,
		    GS_BUNDLE_BYTES)) != GS_OK)
			return r;
		(void)gs_keybundle_open(pf->root.bundle, GS_BUNDLE_BYTES,
		    pf->root.pk, &b);
		pf->root.serial = b.serial;
		gs_log(GS_LOG_WARNING, "TEST: serving key bundle %s",
		    e);
	}
	return GS_OK;
}

int
pf_root_refresh(struct pf_platform *pf)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	unsigned char bundle[GS_BUNDLE_BYTES], kid[GS_KIDBYTES];
	struct gs_keybundle b;
	uint64_t serial;
	int r = GS_OK, lock = -1;

	(void)pthread_mutex_lock(&pf->read_lock);
	serial = meta_u64(pf->reader, "bundle_serial");
	(void)pthread_mutex_unlock(&pf->read_lock);
	/* The usual case: one meta read.  root.serial is only written under
	 * `once` below, and a stale read only delays the reload. */
	if (serial <= __atomic_load_n(&pf->root.serial, __ATOMIC_ACQUIRE) ||
	    getenv("GRIDPLATFORM_TEST_BUNDLE_SERIAL") != NULL)
		return GS_OK;
	(void)pthread_mutex_lock(&once);
	if (serial <= pf->root.serial)
		goto out;
	/* The bundle and its key's files as one state: a second 'keys
	 * rotate' and a 'keys retire' of this bundle's key do not run
	 * between our reads (pf_keys_lock). */
	if ((r = pf_keys_lock(pf->home, 0, &lock)) != GS_OK)
		goto out;
	(void)pthread_mutex_lock(&pf->read_lock);
	r = meta_bytes(pf->reader, "bundle", bundle, GS_BUNDLE_BYTES);
	(void)pthread_mutex_unlock(&pf->read_lock);
	if (r != GS_OK)
		goto out;
	/* Believed only as a device would: signed by our root key, for our
	 * deployment, naming the receipt key we sign with. */
	if ((r = gs_keybundle_open(bundle, GS_BUNDLE_BYTES, pf->root.pk, &b))
	    != GS_OK ||
	    memcmp(b.deployment, pf->keys.deployment, 16) != 0 ||
	    memcmp(b.receipt_pk, pf->keys.receipt_pk, GS_SIGN_PKBYTES) != 0) {
		r = GS_FAIL(GS_ECORRUPT, "the store's key bundle %llu does not "
		    "verify or names other keys", (unsigned long long)serial);
		goto out;
	}
	/* Its batch key first: a device must never get a bundle naming a
	 * key whose batches we could not open. */
	gs_crypto_key_id(kid, b.batch_pk, GS_KX_PKBYTES);
	if ((r = pf_keys_adopt(pf, kid)) != GS_OK)
		goto out;
	(void)pthread_mutex_lock(&pf->root_lock);
	memcpy(pf->root.bundle, bundle, GS_BUNDLE_BYTES);
	__atomic_store_n(&pf->root.serial, b.serial, __ATOMIC_RELEASE);
	(void)pthread_mutex_unlock(&pf->root_lock);
	gs_log(GS_LOG_INFO, "serving key bundle %llu (keys rotate ran against "
	    "this home)", (unsigned long long)b.serial);
out:
	pf_keys_unlock(lock);
	(void)pthread_mutex_unlock(&once);
	if (r != GS_OK)
		gs_log(GS_LOG_WARNING, "key bundle %llu not served: %s",
		    (unsigned long long)serial, gs_errmsg(r));
	return r;
}

json_t *
pf_root_keys_json(const struct pf_platform *pf)
{
	char pk[2 * GS_SIGN_PKBYTES + 1], b64[GS_B64_LEN(GS_BUNDLE_BYTES)];
	pthread_mutex_t *lock = (pthread_mutex_t *)&pf->root_lock;
	uint64_t serial;

	gs_hex_encode(pk, pf->root.pk, GS_SIGN_PKBYTES);
	/* One bundle, whole: a server may be replacing it. */
	(void)pthread_mutex_lock(lock);
	gs_crypto_b64_encode(b64, pf->root.bundle, GS_BUNDLE_BYTES);
	serial = pf->root.serial;
	(void)pthread_mutex_unlock(lock);
	return json_pack("{s:s,s:I,s:s}", "root_pk", pk, "serial",
	    (json_int_t)serial, "bundle", b64);
}
