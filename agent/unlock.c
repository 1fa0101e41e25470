/*
 * unlock.c - the data key (DEK): made and wrapped at protect time,
 * unwrapped by a passphrase (Argon2id) or an app's keystore, held in
 * secure memory while unlocked, destroyed after too many failed unlocks or
 * on revocation; and the CLI's unlock session (keys.h says what the
 * session file protects and what it does not).
 *
 * The wrap: KEK = Argon2id(passphrase, salt, opslimit, memlimit);
 * dek_wrap = nonce(24) || XChaCha20-Poly1305(KEK, DEK, ad = "gs-dek-v1").
 * With a keystore, that blob is wrapped once more by the app's callback,
 * so a short PIN is backed by the keystore's own attempt limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>

#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypt.h"
#include "crypto.h"
#include "db.h"
#include "gridagent.h"
#include "keys.h"
#include "store.h"
#include "core/banned.h"

#define WRAP_AD "gs-dek-v1"
#define SESSION_AD "gs-session-v1"
#define WRAPPED_BYTES (GS_AEAD_NONCEBYTES + AG_DEK_BYTES + GS_AEAD_TAGBYTES)
#define KS_MAX 4096 /* a keystore's wrapped blob */
#define SESSION_MAGIC "GSS1"
#define SESSION_BYTES (4 + 8 + AG_DEK_BYTES)

/* ------------------------------------------------------------ policy */

int
ag_keys_policy(const char *pass, size_t len, int keystore)
{
	size_t i, digits = 0;

	if (len > AG_PASSPHRASE_MAX)
		return GS_FAIL(GS_EINVAL, "the passphrase is over %d bytes",
		    AG_PASSPHRASE_MAX);
	if (keystore)
		return len >= 4 ? GS_OK : GS_FAIL(GS_EINVAL, "the PIN needs "
		    "at least 4 characters");
	for (i = 0; i < len; i++)
		digits += pass[i] >= '0' && pass[i] <= '9';
	if (len < 10)
		return GS_FAIL(GS_EINVAL, "the passphrase needs at least 10 "
		    "characters (a short PIN is guessed offline in hours; "
		    "use a passphrase, or a keystore)");
	if (digits == len && len < 16)
		return GS_FAIL(GS_EINVAL, "a passphrase of digits only needs "
		    "at least 16 of them (a numeric PIN is guessed offline; "
		    "use words, or a keystore)");
	return GS_OK;
}

/* ------------------------------------------------------------ the row */

struct ring {
	int present, destroyed, keystore;
	unsigned char wrap[KS_MAX];
	size_t wraplen;
	unsigned char salt[GS_PWHASH_SALTBYTES];
	unsigned long long ops;
	size_t mem;
	int64_t failures, max_failures;
	unsigned char session[WRAPPED_BYTES];
	int has_session;
	char why[128];
};

static int
ring_load(struct gs_db *db, struct ring *k)
{
	struct gs_stmt *s = NULL;
	int r;

	memset(k, 0, sizeof(*k));
	if ((r = gs_stmt_prepare(db, "SELECT state, wrap, dek_wrap, salt, "
	    "opslimit, memlimit, failures, max_failures, session_wrap, "
	    "destroyed_why FROM keyring WHERE id = 1", &s)) != GS_OK)
		return r;
	r = gs_stmt_step(s);
	if (r == GS_DONE) {
		r = GS_OK;
		goto out;
	}
	if (r != GS_ROW)
		goto out;
	k->present = 1;
	k->destroyed = strcmp(gs_stmt_text(s, 0) ?: "", "destroyed") == 0;
	k->keystore = strcmp(gs_stmt_text(s, 1) ?: "", "keystore") == 0;
	k->wraplen = gs_stmt_bytes(s, 2);
	if (k->wraplen > sizeof(k->wrap) ||
	    (!k->destroyed && gs_stmt_bytes(s, 3) != GS_PWHASH_SALTBYTES)) {
		r = GS_FAIL(GS_ECORRUPT, "keyring: malformed row");
		goto out;
	}
	/* A passphrase's wrap has one length: any other is damage, not a
	 * wrong passphrase (which was counted, and the right passphrase
	 * given ten times destroyed the data key). */
	if (!k->destroyed && !k->keystore && k->wraplen != WRAPPED_BYTES) {
		r = GS_FAIL(GS_ECORRUPT, "keyring: the wrapped data key is "
		    "%zu bytes, not %d: the store is damaged", k->wraplen,
		    WRAPPED_BYTES);
		goto out;
	}
	if (k->wraplen > 0)
		memcpy(k->wrap, gs_stmt_blob(s, 2), k->wraplen);
	if (!k->destroyed)
		memcpy(k->salt, gs_stmt_blob(s, 3), GS_PWHASH_SALTBYTES);
	k->ops = (unsigned long long)gs_stmt_int64(s, 4);
	k->mem = (size_t)gs_stmt_int64(s, 5);
	k->failures = gs_stmt_int64(s, 6);
	k->max_failures = gs_stmt_int64(s, 7);
	if (gs_stmt_bytes(s, 8) == WRAPPED_BYTES) {
		memcpy(k->session, gs_stmt_blob(s, 8), WRAPPED_BYTES);
		k->has_session = 1;
	}
	gs_strlcpy(k->why, gs_stmt_text(s, 9) ?: "", sizeof(k->why));
	r = GS_OK;
out:
	gs_stmt_finalize(s);
	return r;
}

static void
ring_wipe(struct ring *k)
{
	gs_crypto_memzero(k, sizeof(*k));
}

/* Runs one statement with up to two blob/int parameters in its own
 * transaction (or the caller's). */
static int
exec1(struct gs_db *db, const char *sql, const void *blob, size_t n,
    int64_t v)
{
	struct gs_stmt *s = NULL;
	int r;

	if ((r = gs_stmt_prepare(db, sql, &s)) != GS_OK)
		return r;
	if (blob != NULL)
		r = gs_stmt_bind_blob(s, 1, blob, n);
	else
		r = gs_stmt_bind_null(s, 1);
	if (r == GS_OK)
		r = gs_stmt_bind_int64(s, 2, v);
	if (r == GS_OK) {
		r = gs_stmt_step(s);
		r = r == GS_DONE ? GS_OK : r;
	}
	gs_stmt_finalize(s);
	return r;
}

int
ag_keys_load(struct ag_store *st)
{
	struct ring k;
	int r;

	if ((r = ring_load(ag_store_db(st), &k)) != GS_OK)
		return r;
	ag_store_set_protected(st, k.present);
	ring_wipe(&k);
	return GS_OK;
}

/* ------------------------------------------------------------ wrap */

static int
derive(unsigned char kek[GS_AEAD_KEYBYTES], const char *pass, size_t len,
    const unsigned char salt[GS_PWHASH_SALTBYTES], unsigned long long ops,
    size_t mem)
{
	return gs_crypto_pwhash(kek, GS_AEAD_KEYBYTES, pass, len, salt, ops,
	    mem);
}

/* The stored wrap of dek under kek, then (keystore) under the app's
 * keystore.  out holds KS_MAX bytes. */
static int
wrap_dek(struct ag_store *st, int keystore, const unsigned char *kek,
    const unsigned char *dek, unsigned char *out, size_t *outlen)
{
	unsigned char box[WRAPPED_BYTES];
	ag_keystore_wrap_fn wrap = NULL;
	ag_keystore_unwrap_fn unwrap = NULL;
	void *ctx = NULL;
	int r;

	gs_random(box, GS_AEAD_NONCEBYTES);
	if ((r = gs_crypto_aead_encrypt(box + GS_AEAD_NONCEBYTES, dek,
	    AG_DEK_BYTES, WRAP_AD, sizeof(WRAP_AD) - 1, box, kek)) != GS_OK)
		return r;
	if (!keystore) {
		memcpy(out, box, sizeof(box));
		*outlen = sizeof(box);
		return GS_OK;
	}
	ag_store_keystore(st, &wrap, &unwrap, &ctx);
	if (wrap == NULL)
		return GS_FAIL(GS_EPERM, "no keystore is set");
	if (wrap(ctx, box, sizeof(box), out, KS_MAX, outlen) != 0 ||
	    *outlen == 0 || *outlen > KS_MAX)
		return GS_FAIL(GS_ECRYPTO, "the keystore could not wrap the "
				       "key");
	return GS_OK;
}

/* The DEK from a stored wrap: GS_OK, or GS_EDECRYPT (wrong passphrase /
 * keystore refused). */
static int
unwrap_dek(struct ag_store *st, const struct ring *k,
    const unsigned char *kek, unsigned char dek[AG_DEK_BYTES])
{
	unsigned char box[KS_MAX];
	size_t n = k->wraplen;
	ag_keystore_wrap_fn wrap = NULL;
	ag_keystore_unwrap_fn unwrap = NULL;
	void *ctx = NULL;
	int r;

	if (k->keystore) {
		ag_store_keystore(st, &wrap, &unwrap, &ctx);
		if (unwrap == NULL)
			return GS_FAIL(GS_EPERM, "this store's key is wrapped "
			    "by a keystore: set it first "
			    "(ag_store_set_keystore)");
		if (unwrap(ctx, k->wrap, k->wraplen, box, sizeof(box), &n)
		    != 0 || n > sizeof(box))
			return GS_EDECRYPT;
	} else {
		memcpy(box, k->wrap, n);
	}
	r = n == WRAPPED_BYTES ? gs_crypto_aead_decrypt(dek,
	    box + GS_AEAD_NONCEBYTES, n - GS_AEAD_NONCEBYTES, WRAP_AD,
	    sizeof(WRAP_AD) - 1, box, kek) : GS_EDECRYPT;
	gs_crypto_memzero(box, sizeof(box));
	return r == GS_OK ? GS_OK : GS_EDECRYPT;
}

/* ------------------------------------------------------------ public */

void
ag_store_set_keystore(struct ag_store *st, ag_keystore_wrap_fn wrap,
    ag_keystore_unwrap_fn unwrap, void *ctx)
{
	ag_store_set_keystore_fns(st, wrap, unwrap, ctx);
}

int
ag_store_locked(struct ag_store *st)
{
	return ag_store_protected(st) && ag_store_crypt(st) == NULL;
}

void
ag_store_lock(struct ag_store *st)
{
	ag_store_set_crypt(st, NULL);
}

/* Protects (first time) or re-wraps (unlocked) under a new passphrase. */
int
ag_store_protect(struct ag_store *st, const char *pass, size_t len)
{
	struct gs_db *db = ag_store_db(st);
	unsigned char *sec = NULL; /* dek || kek */
	unsigned char wrap[KS_MAX], salt[GS_PWHASH_SALTBYTES];
	ag_keystore_wrap_fn w = NULL;
	ag_keystore_unwrap_fn u = NULL;
	void *ctx = NULL;
	struct ag_crypt *c = NULL;
	struct gs_stmt *s = NULL;
	struct ring k;
	size_t wraplen = 0;
	int r = GS_EINTERNAL, in_tx = 0, keystore;

	memset(&k, 0, sizeof(k));
	ag_store_keystore(st, &w, &u, &ctx);
	keystore = w != NULL && u != NULL;
	if ((r = ag_keys_policy(pass, len, keystore)) != GS_OK)
		return r;
	if ((r = ring_load(db, &k)) != GS_OK)
		goto out;
	if (k.present && k.destroyed) {
		r = GS_FAIL(GS_EPERM, "the data key was destroyed (%s); this "
		    "store's personal data is gone", k.why);
		goto out;
	}
	if (k.present && ag_store_crypt(st) == NULL) {
		r = GS_FAIL(GS_EPERM, "locked: run gridagent unlock");
		goto out;
	}
	if ((sec = gs_crypto_secure_alloc(AG_DEK_BYTES + GS_AEAD_KEYBYTES))
	    == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of secure memory");
		goto out;
	}
	if (k.present)
		memcpy(sec, ag_crypt_dek(ag_store_crypt(st)), AG_DEK_BYTES);
	else
		gs_random(sec, AG_DEK_BYTES);
	gs_random(salt, sizeof(salt));
	if ((r = derive(sec + AG_DEK_BYTES, pass, len, salt, AG_KDF_OPSLIMIT,
	    AG_KDF_MEMLIMIT)) != GS_OK)
		goto out;
	if ((r = wrap_dek(st, keystore, sec + AG_DEK_BYTES, sec, wrap,
	    &wraplen)) != GS_OK)
		goto out;
	if ((r = gs_db_begin(db)) != GS_OK)
		goto out;
	in_tx = 1;
	if ((r = gs_stmt_prepare(db, "INSERT INTO keyring(id, state, wrap, "
	    "dek_wrap, kdf, salt, opslimit, memlimit, failures, created_at) "
	    "VALUES(1, 'active', ?1, ?2, 'argon2id13', ?3, ?4, ?5, 0, ?6) "
	    "ON CONFLICT(id) DO UPDATE SET wrap = excluded.wrap, "
	    "dek_wrap = excluded.dek_wrap, salt = excluded.salt, "
	    "opslimit = excluded.opslimit, memlimit = excluded.memlimit, "
	    "failures = 0, session_wrap = NULL", &s)) != GS_OK)
		goto out;
	if ((r = gs_stmt_bind_text(s, 1, keystore ? "keystore" :
	    "passphrase")) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 2, wrap, wraplen)) != GS_OK ||
	    (r = gs_stmt_bind_blob(s, 3, salt, sizeof(salt))) != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 4, (int64_t)AG_KDF_OPSLIMIT))
	    != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 5, (int64_t)AG_KDF_MEMLIMIT))
	    != GS_OK ||
	    (r = gs_stmt_bind_int64(s, 6, gs_now_ms())) != GS_OK)
		goto out;
	r = gs_stmt_step(s);
	if (r != GS_DONE)
		goto out;
	if (!k.present && (r = ag_store_seal_existing(st, sec)) != GS_OK)
		goto out;
	if ((r = gs_db_commit(db)) != GS_OK)
		goto out;
	in_tx = 0;
	if (!k.present) {
		if ((r = ag_crypt_new(sec, &c)) != GS_OK)
			goto out;
		ag_store_set_protected(st, 1);
		ag_store_set_crypt(st, c);
	}
	r = GS_OK;
out:
	if (in_tx)
		gs_db_rollback(db);
	gs_stmt_finalize(s);
	gs_crypto_secure_free(sec);
	gs_crypto_memzero(wrap, sizeof(wrap));
	ring_wipe(&k);
	return r;
}

int
ag_store_unlock(struct ag_store *st, const char *pass, size_t len)
{
	struct gs_db *db = ag_store_db(st);
	unsigned char *sec = NULL; /* dek || kek */
	struct ag_crypt *c = NULL;
	struct ring k;
	int r = GS_EINTERNAL;
	int64_t left;

	if ((r = ring_load(db, &k)) != GS_OK)
		return r;
	if (!k.present) {
		r = GS_FAIL(GS_EINVAL, "this store has no data key to unlock "
				       "(it was never protected)");
		goto out;
	}
	if (k.destroyed) {
		r = GS_FAIL(GS_EPERM, "the data key was destroyed (%s); this "
		    "store's personal data is gone", k.why);
		goto out;
	}
	if (ag_store_crypt(st) != NULL) {
		r = GS_OK;
		goto out;
	}
	/* Count the attempt BEFORE the slow derivation, in its own commit:
	 * killing the process mid-way must still spend it. */
	if ((r = exec1(db, "UPDATE keyring SET failures = failures + 1, "
	    "session_wrap = ?1 WHERE id = 1 AND ?2 = ?2", NULL, 0, 0))
	    != GS_OK)
		goto out;
	k.failures++;
	if ((sec = gs_crypto_secure_alloc(AG_DEK_BYTES + GS_AEAD_KEYBYTES))
	    == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of secure memory");
		goto out;
	}
	if ((r = derive(sec + AG_DEK_BYTES, pass, len, k.salt, k.ops, k.mem))
	    != GS_OK)
		goto out;
	r = unwrap_dek(st, &k, sec + AG_DEK_BYTES, sec);
	if (r == GS_EDECRYPT) {
		left = k.max_failures - k.failures;
		if (left <= 0) {
			if ((r = ag_keys_destroy(st, "too many failed unlocks"))
			    != GS_OK)
				goto out;
			r = GS_FAIL(GS_EPERM, "wrong passphrase; that was the "
			    "last attempt: the data key is destroyed and "
			    "this store's personal data is gone");
		} else {
			r = GS_FAIL(GS_EPERM, "wrong passphrase (%lld attempts "
			    "left before the data key is destroyed)",
			    (long long)left);
		}
		goto out;
	}
	if (r != GS_OK)
		goto out;
	if ((r = exec1(db, "UPDATE keyring SET failures = 0, session_wrap "
	    "= ?1 WHERE id = 1 AND ?2 = ?2", NULL, 0, 0)) != GS_OK)
		goto out;
	if ((r = ag_crypt_new(sec, &c)) != GS_OK)
		goto out;
	ag_store_set_crypt(st, c);
	r = GS_OK;
out:
	gs_crypto_secure_free(sec);
	ring_wipe(&k);
	return r;
}

int
ag_keys_destroy(struct ag_store *st, const char *why)
{
	struct gs_db *db = ag_store_db(st);
	struct gs_stmt *s = NULL;
	int r;

	ag_store_set_crypt(st, NULL);
	/* secure_delete: the freed bytes of the old row are zeroed in the
	 * page, not just unlinked; the checkpoint then moves the page into
	 * the database file and truncates the WAL that held the old one. */
	if ((r = gs_db_exec(db, "PRAGMA secure_delete = ON")) != GS_OK)
		return r;
	if ((r = gs_stmt_prepare(db, "UPDATE keyring SET state = "
	    "'destroyed', dek_wrap = NULL, salt = NULL, session_wrap = NULL, "
	    "destroyed_at = ?1, destroyed_why = ?2 WHERE id = 1 AND state = "
	    "'active'", &s)) != GS_OK)
		return r;
	if ((r = gs_stmt_bind_int64(s, 1, gs_now_ms())) == GS_OK &&
	    (r = gs_stmt_bind_text(s, 2, why)) == GS_OK) {
		r = gs_stmt_step(s);
		r = r == GS_DONE ? GS_OK : r;
	}
	gs_stmt_finalize(s);
	if (r != GS_OK)
		return r;
	(void)ag_session_end(st);
	(void)gs_db_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
	return GS_OK;
}

int
ag_keys_status(struct ag_store *st, json_t *into)
{
	struct ring k;
	json_t *o;
	int r;

	if ((r = ring_load(ag_store_db(st), &k)) != GS_OK)
		return r;
	o = json_pack("{s:b,s:b,s:b,s:s,s:I,s:I}", "protected", k.present,
	    "locked", k.present && ag_store_crypt(st) == NULL, "destroyed",
	    k.destroyed, "wrap", !k.present ? "none" : k.keystore ?
	    "keystore" : "passphrase", "failed_unlocks",
	    (json_int_t)k.failures, "max_failed_unlocks",
	    (json_int_t)k.max_failures);
	if (o != NULL && k.destroyed)
		json_object_set_new(o, "destroyed_why", json_string(k.why));
	ring_wipe(&k);
	if (o == NULL || json_object_set_new(into, "pii", o) != 0)
		return GS_FAIL(GS_ENOMEM, "status: out of memory");
	return GS_OK;
}

/* ------------------------------------------------------------ session */

static int
session_path(struct ag_store *st, char *out, size_t outlen)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	const char *home = ag_store_home(st);
	char abs[4096];
	unsigned char h[16];
	char hex[33];
	struct stat sb;

	if (rt != NULL && rt[0] == '/' && stat(rt, &sb) == 0 &&
	    S_ISDIR(sb.st_mode) && sb.st_uid == getuid()) {
		if (realpath(home, abs) == NULL)
			gs_strlcpy(abs, home, sizeof(abs));
		gs_crypto_hash(h, sizeof(h), abs, strlen(abs), NULL, 0);
		gs_hex_encode(hex, h, 8);
		if ((size_t)snprintf(out, outlen, "%s/gridagent-%.16s.session",
		    rt, hex) >= outlen)
			return GS_FAIL(GS_EINVAL, "session path is too long");
		return GS_OK;
	}
	if ((size_t)snprintf(out, outlen, "%s/session", home) >= outlen)
		return GS_FAIL(GS_EINVAL, "session path is too long");
	return GS_OK;
}

static int64_t
idle_ms(struct ag_store *st)
{
	char *v = NULL;
	int64_t s = AG_IDLE_SECONDS_DEFAULT;

	if (ag_store_meta_get(st, "lock_idle_seconds", &v) == GS_OK &&
	    gs_parse_i64(v, 1, 30 * 86400, &s) != GS_OK)
		s = AG_IDLE_SECONDS_DEFAULT;
	gs_free(v);
	return s * 1000;
}

/* Writes "GSS1" || expires(le64) || key to path, 0600, atomically. */
static int
session_write(const char *path, int64_t expires, const unsigned char *key)
{
	unsigned char buf[SESSION_BYTES];
	char tmp[4200];
	int fd, r = GS_OK;

	memcpy(buf, SESSION_MAGIC, 4);
	gs_put_le64(buf + 4, (uint64_t)expires);
	memcpy(buf + 12, key, AG_DEK_BYTES);
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
		r = GS_FAIL(GS_EIO, "cannot write the session file: %s",
		    strerror(errno));
	if (fd >= 0)
		close(fd);
	if (r == GS_OK && rename(tmp, path) != 0)
		r = GS_FAIL(GS_EIO, "cannot write the session file: %s",
		    strerror(errno));
	if (r != GS_OK)
		unlink(tmp);
	gs_crypto_memzero(buf, sizeof(buf));
	return r;
}

int
ag_keys_locked_error(struct ag_store *st)
{
	struct ring k;
	int r;

	if (ring_load(ag_store_db(st), &k) == GS_OK && k.present &&
	    k.destroyed)
		r = GS_FAIL(GS_EPERM, "the data key was destroyed (%s): "
		    "nothing with personal data can be saved on this device "
		    "again", k.why);
	else
		r = GS_FAIL(GS_EPERM, "locked: run gridagent unlock");
	gs_crypto_memzero(&k, sizeof(k));
	return r;
}

int
ag_session_start(struct ag_store *st)
{
	struct ag_crypt *c = ag_store_crypt(st);
	unsigned char *sk = NULL;
	unsigned char box[WRAPPED_BYTES];
	char path[4200];
	int r;

	if (c == NULL)
		return GS_FAIL(GS_EPERM, "locked: run gridagent unlock");
	if ((r = session_path(st, path, sizeof(path))) != GS_OK)
		return r;
	if ((sk = gs_crypto_secure_alloc(AG_DEK_BYTES)) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of secure memory");
	gs_random(sk, AG_DEK_BYTES);
	gs_random(box, GS_AEAD_NONCEBYTES);
	r = gs_crypto_aead_encrypt(box + GS_AEAD_NONCEBYTES, ag_crypt_dek(c),
	    AG_DEK_BYTES, SESSION_AD, sizeof(SESSION_AD) - 1, box, sk);
	if (r == GS_OK)
		r = exec1(ag_store_db(st), "UPDATE keyring SET session_wrap = "
		    "?1 WHERE id = 1 AND ?2 = ?2", box, sizeof(box), 0);
	if (r == GS_OK)
		r = session_write(path, gs_now_ms() + idle_ms(st), sk);
	gs_crypto_secure_free(sk);
	return r;
}

int
ag_session_end(struct ag_store *st)
{
	char path[4200];
	int r;

	ag_store_set_crypt(st, NULL);
	if (session_path(st, path, sizeof(path)) == GS_OK)
		(void)unlink(path);
	r = exec1(ag_store_db(st), "UPDATE keyring SET session_wrap = ?1 "
	    "WHERE id = 1 AND ?2 = ?2", NULL, 0, 0);
	return r;
}

int
ag_session_resume(struct ag_store *st)
{
	unsigned char buf[SESSION_BYTES + 1];
	unsigned char *dek = NULL;
	struct ag_crypt *c = NULL;
	struct stat sb;
	struct ring k;
	char path[4200];
	ssize_t n;
	int fd, r = GS_OK;
	int64_t expires, now = gs_now_ms();

	memset(&k, 0, sizeof(k));
	if (!ag_store_protected(st) || ag_store_crypt(st) != NULL)
		return GS_OK;
	if (session_path(st, path, sizeof(path)) != GS_OK)
		return GS_OK;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return GS_OK;
	/* Only a file of ours that nobody else can read counts. */
	if (fstat(fd, &sb) != 0 || sb.st_uid != getuid() ||
	    (sb.st_mode & 077) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return GS_OK;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n != SESSION_BYTES || memcmp(buf, SESSION_MAGIC, 4) != 0)
		goto expired;
	expires = (int64_t)gs_get_le64(buf + 4);
	if (expires <= now)
		goto expired;
	if ((r = ring_load(ag_store_db(st), &k)) != GS_OK)
		goto out;
	if (!k.present || k.destroyed || !k.has_session)
		goto expired;
	if ((dek = gs_crypto_secure_alloc(AG_DEK_BYTES)) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "out of secure memory");
		goto out;
	}
	if (gs_crypto_aead_decrypt(dek, k.session + GS_AEAD_NONCEBYTES,
	    WRAPPED_BYTES - GS_AEAD_NONCEBYTES, SESSION_AD,
	    sizeof(SESSION_AD) - 1, k.session, buf + 12) != GS_OK)
		goto expired;
	if ((r = ag_crypt_new(dek, &c)) != GS_OK)
		goto out;
	ag_store_set_crypt(st, c);
	/* Idle lock: every use moves the expiry forward.  A failure to
	 * refresh only shortens the session.  A read-only home
	 * (ag_store_open_read) is not written at all. */
	if (!ag_store_readonly(st))
		(void)session_write(path, now + idle_ms(st), buf + 12);
	r = GS_OK;
	goto out;
expired:
	/* Locked either way; ending it is a write, left to the next
	 * command on a writable home. */
	if (!ag_store_readonly(st))
		(void)ag_session_end(st);
	r = GS_OK;
out:
	gs_crypto_memzero(buf, sizeof(buf));
	gs_crypto_secure_free(dek);
	ring_wipe(&k);
	return r;
}

/* ------------------------------------------------------------ input */

int
ag_keys_read_passfile(const char *path, char **out, size_t *len)
{
	char *p = NULL;
	FILE *f;
	size_t n;
	int r;

	*out = NULL;
	*len = 0;
	if ((r = gs_crypto_init()) != GS_OK)
		return r;
	if ((f = fopen(path, "rb")) == NULL)
		return GS_FAIL(GS_EIO, "cannot open %s: %s", path,
		    strerror(errno));
	if ((p = gs_crypto_secure_alloc(AG_PASSPHRASE_MAX + 2)) == NULL) {
		fclose(f);
		return GS_FAIL(GS_ENOMEM, "out of secure memory");
	}
	n = fread(p, 1, AG_PASSPHRASE_MAX + 1, f);
	fclose(f);
	if (n > AG_PASSPHRASE_MAX) {
		gs_crypto_secure_free(p);
		return GS_FAIL(GS_ETOOBIG, "%s: the passphrase is over %d "
		    "bytes", path, AG_PASSPHRASE_MAX);
	}
	p[n] = '\0';
	/* The first line: a trailing newline is not part of it. */
	n = strcspn(p, "\r\n");
	p[n] = '\0';
	*out = p;
	*len = n;
	return GS_OK;
}

int
ag_keys_read_tty(const char *prompt, char **out, size_t *len)
{
	struct termios old, quiet;
	char *p = NULL;
	int c;
	size_t n = 0;

	*out = NULL;
	*len = 0;
	if ((c = gs_crypto_init()) != GS_OK)
		return c;
	if (!isatty(STDIN_FILENO))
		return GS_FAIL(GS_EINVAL, "no terminal to ask for the "
		    "passphrase: use --passphrase-file FILE");
	if ((p = gs_crypto_secure_alloc(AG_PASSPHRASE_MAX + 1)) == NULL)
		return GS_FAIL(GS_ENOMEM, "out of secure memory");
	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	while ((c = getchar()) != EOF && c != '\n' && c != '\r')
		if (n < AG_PASSPHRASE_MAX)
			p[n++] = (char)c;
	p[n] = '\0';
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	fputc('\n', stderr);
	*out = p;
	*len = n;
	return GS_OK;
}
