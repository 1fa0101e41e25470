/*
 * platform.h - the platform's shared state and its home directory.
 *
 * A home (--home DIR, else $GRIDPLATFORM_HOME, else ~/.gridplatform) holds:
 *
 *	platform.db      the store (SQLite, WAL)
 *	batch.key        X25519 secret of the batch key (crypto_kx), 0600
 *	batch.pub        its public key
 *	receipt.key      Ed25519 secret of the receipt key, 0600
 *	receipt.pub      its public key
 *
 * The deployment id (16 random bytes) and the public URL are kept in the
 * store's meta table.  Secret keys are held in gs_crypto_secure_alloc()
 * memory while the process runs.
 */
#ifndef PF_PLATFORM_H
#define PF_PLATFORM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "keybundle.h"
#include "store.h"

#define PF_VERSION "0.1.0"
#define PF_DEFAULT_URL "http://127.0.0.1:8480"
#define PF_DEFAULT_LISTEN "127.0.0.1:8480"
#define PF_ENROLL_BODY_MAX (16u * 1024)
#define PF_ENROLL_TTL_DEFAULT (24 * 3600)
#define PF_ENROLL_TTL_MAX (7 * 24 * 3600)
/* Failed enrollment attempts per client address before 429. */
#define PF_ENROLL_FAIL_MAX 10
#define PF_ENROLL_FAIL_WINDOW_MS (10 * 60 * 1000)

struct gs_schema;

struct pf_keys {
	unsigned char deployment[16];
	unsigned char batch_pk[GS_KX_PKBYTES];
	unsigned char batch_kid[GS_KIDBYTES];
	unsigned char receipt_pk[GS_SIGN_PKBYTES];
	unsigned char *batch_sk;   /* secure memory, GS_KX_SKBYTES */
	unsigned char *receipt_sk; /* secure memory, GS_SIGN_SKBYTES */
};

struct pf_limits {
	size_t max_envelope;
	size_t max_plain;
	uint32_t max_records;
	uint64_t max_attachment; /* one attachment's plaintext (attachments.c) */
};

/* A batch in ingest (pf_platform.flight): its device and seq; seq 0 is a
 * free slot.  A batch is ingested on a server thread (serve's pool has 4),
 * so the table is never full in practice; if it were, a batch not listed
 * would make one that follows it be told to come again (too early),
 * which is safe. */
#define PF_FLIGHT_SLOTS 64
/* Batches of one device it may send before the first is answered
 * (advertised in the limits as "in_flight"). */
#define PF_IN_FLIGHT 2
struct pf_flight {
	unsigned char device[16];
	uint64_t seq;
};

/* One failed-enrollment counter per client address (a small table). */
#define PF_RATE_SLOTS 256
struct pf_rate_slot {
	char ip[48];
	int64_t window_start;
	unsigned fails;
};

/* The root key's public half and the bundle served (platform/root.c). */
struct pf_root {
	unsigned char pk[GS_SIGN_PKBYTES];
	unsigned char bundle[GS_BUNDLE_BYTES];
	uint64_t serial;
};

struct pf_oldkey {
	unsigned char kid[GS_KIDBYTES];
	unsigned char pk[GS_KX_PKBYTES];
	unsigned char *sk; /* secure memory, GS_KX_SKBYTES */
};

struct pf_platform {
	char *home;
	char *public_url;
	/* pf_platform_open_read on a home that cannot be written: 1 or 2
	 * (gs_db_readonly); 0 otherwise. */
	int readonly;
	/* On such a home, what the open would have written and did not
	 * (a key bundle due for re-issue, ...): "; "-separated, said in
	 * the one warning line (pf_platform_readonly_warn). */
	char ro_notes[512];
	struct pf_store *store;
	/* A second handle on the same database for the checks before an
	 * ingest (device lookup, idempotency), so they do not wait behind a
	 * long batch transaction: WAL lets it read while the writer writes.
	 * Guarded by read_lock. */
	struct pf_store *reader;
	pthread_mutex_t read_lock;
	struct pf_keys keys;
	/* Batch keys of earlier rotations, kept to open batches sealed to
	 * them (platform/rotate.c); secret keys in secure memory. */
	struct pf_oldkey *old_keys;
	size_t nold_keys;
	struct pf_root root;
	/* Guards root.bundle and root.serial, which a running server
	 * replaces when `keys rotate` issued a newer bundle (pf_root_refresh)
	 * while readers copy them out (pf_root_keys_json). */
	pthread_mutex_t root_lock;
	/* The embedded forms and code tables with the published reference
	 * data laid over them (platform/reference.c).  A server replaces it
	 * when something new is published (a release store; readers take
	 * the pointer with pf_schema(), an acquire load, without a lock,
	 * and replaced schemas are kept in ref_retired until the platform
	 * is freed).  ref_lock guards the ref_ fields. */
	struct gs_schema *schema;
	pthread_mutex_t ref_lock;
	struct json_t *ref_docs;
	int64_t ref_serial;
	struct gs_schema **ref_retired;
	size_t nref_retired;
	struct pf_limits limits;
	/* Serializes every use of the store by the server's threads: one
	 * writer, and one store handle.  Held only around store work, never
	 * around signature checks or decryption. */
	pthread_mutex_t lock;
	/* The batches being ingested now, past their signature check
	 * (ingest.c): a batch sent with ?follows=SEQ waits for SEQ of its
	 * device while SEQ is here, and is told "too early" when SEQ is
	 * neither committed nor here (after a short grace).  Guarded by
	 * flight_lock (never held with lock); flight_cv is broadcast when
	 * one is listed or leaves. */
	pthread_mutex_t flight_lock;
	pthread_cond_t flight_cv;
	struct pf_flight flight[PF_FLIGHT_SLOTS];
	pthread_mutex_t rate_lock;
	struct pf_rate_slot rate[PF_RATE_SLOTS];
};

/*
 * The home directory: opt if given, else $GRIDPLATFORM_HOME, else
 * $HOME/.gridplatform.  *out is gs_malloc'd.  GS_OK, GS_EINVAL (no HOME),
 * GS_ENOMEM.
 */
int pf_home_resolve(const char *opt, char **out);

/*
 * Creates a new deployment in home: the directory (0700), the store, a
 * deployment id, the batch and receipt key pairs (secret files 0600) and
 * the public URL (NULL = PF_DEFAULT_URL).  Refuses with GS_EEXIST when home
 * already holds a deployment (a store or a key file), changing nothing.
 * GS_EINVAL for a bad URL; GS_EIO when files cannot be written.
 */
int pf_init_home(const char *home, const char *public_url);

/*
 * Opens the deployment in home: the store, the keys, the schema, the
 * default limits.  GS_EPERM (77: "no deployment in DIR: run 'gridplatform
 * init' first") when there is none; GS_ECORRUPT when a key file is damaged or does
 * not match the store.  Free with pf_platform_free (NULL ok), which wipes
 * the secret keys.  Installs the jansson arena's allocators (sync/json.h)
 * for ingest: open the platform before starting threads that use jansson.
 */
int pf_platform_open(const char *home, struct pf_platform **out);
/*
 * pf_platform_open for a command that only reads (devices, export,
 * reconcile, ...): on a home that cannot be written the store is opened
 * read-only (sync/db.h GS_DB_READ_FALLBACK) and pf->readonly says so
 * (gs_db_readonly's answer); pf_platform_open refuses such a home with
 * GS_EIO ("HOME is read-only (...)").
 */
int pf_platform_open_read(const char *home, struct pf_platform **out);
/* The one warning line of a read on a home that cannot be written
 * (pf->readonly), on stderr, with its notes; nothing when it can be. */
void pf_platform_readonly_warn(const struct pf_platform *pf,
    const char *home);
/* Adds a note to that line (a static or short string): what the open of
 * a read-only home left undone. */
void pf_platform_readonly_note(struct pf_platform *pf, const char *note);
void pf_platform_free(struct pf_platform *pf);

/* Key fingerprint of the deployment (for enrollment codes). */
/* ------------------------------------------- batch key rotation (rotate.c)
 * `gridplatform keys rotate|list|retire`: a new batch key becomes current
 * (new enrollments pin it); the old ones stay in the home as
 * batch-<kid>.key/.pub, loaded at open, so batches sealed to them still
 * open; retire deletes an old secret key once no device can still use it.
 */
/* Loads the old keys of the home (at open); frees them. */
int pf_keys_load_old(struct pf_platform *pf);
/*
 * Finishes the retirements that stopped half-way (at open, before the old
 * keys are loaded): 'keys retire' renames batch-<kid>.key to
 * batch-<kid>.key.retired, overwrites it with zeros and unlinks it, and a
 * crash between the rename and the unlink left the secret key, whole or
 * half zeroed, under that name.  Each such file is overwritten, synced
 * and unlinked, with one warning line.  So is the tmp file of a 'keys
 * rotate' that died before its rename (batch*.key.tmp.PID, and the .pub
 * ones without the overwrite): only when no process PID exists and the
 * file is not locked by its writer.  On a home that cannot be written
 * it only says so, in the read-only warning (pf_platform_readonly_note).
 * Never fails: what cannot be removed is left, with its line.
 */
void pf_keys_finish_retire(struct pf_platform *pf);
void pf_keys_free_old(struct pf_platform *pf);
/* The batch key pair for a header's platform kid: the current one or an
 * old one.  GS_OK, or GS_EDECRYPT when no key of that kid is held (sealed
 * to a retired or foreign key). */
int pf_batch_key(const struct pf_platform *pf,
    const unsigned char kid[GS_KIDBYTES], const unsigned char **pk,
    const unsigned char **sk);
/* The CLI command (platform/main.c). */
int pf_cmd_keys(const char *home, int argc, char **argv);

void pf_platform_fingerprint(const struct pf_platform *pf,
    unsigned char fp[16]);

/* ------------------------------------------ root key and bundle (root.c)
 * The long-lived root key signs GSK1 bundles naming the current batch and
 * receipt keys; enrollment codes pin the root key (sync/enroll.h). */
/* Makes root.key (0600) and root.pub in home (never replacing); pk out. */
int pf_root_create(const char *home, unsigned char pk[GS_SIGN_PKBYTES]);
/* At open: the root key (made for an older home without one), the current
 * bundle (re-issued when stale).  GS_ECORRUPT when the store names a root
 * key whose file is missing or different.  On a read-only home
 * (pf->readonly) it writes nothing: a stale bundle is kept as it is (none,
 * serial 0, when the store has no valid one), a missing root key stays
 * missing, and each says so in a note (pf_platform_readonly_note). */
int pf_root_load(struct pf_platform *pf);
/* Signs and stores a new bundle (serial + 1) of pf->keys; pf->root. */
int pf_root_issue(struct pf_platform *pf);
/*
 * For a running server: when the store holds a newer bundle than the one
 * served (`gridplatform keys rotate` ran against the same home), takes its
 * batch key from the home's files into the keys held (so batches sealed to
 * it open) and then serves the bundle.  Cheap when nothing changed (one
 * read of the store's meta).  GS_OK, or an error with the old bundle still
 * served (a bundle is never served before its key is held).
 */
int pf_root_refresh(struct pf_platform *pf);
/*
 * Test faults, from $GRIDPLATFORM_FAULT = "NAME=N" (platform/ingest.c):
 * 1 when it names name (*n is then how many times this process has
 * asked, this one included, counted in *seen, and *v is N), else 0.
 */
int pf_fault_hit(const char *name, long *seen, long *n, uint64_t *v);
/*
 * Takes the home's keys.lock (made 0600 when missing), shared or
 * exclusive, waiting for it: the open of the home holds it shared, 'keys
 * rotate' and 'keys retire' exclusively around their open and their
 * work (keys.c says why).  *fd is then the lock to give to pf_keys_unlock,
 * or -1 when nothing was taken: the home has no deployment, this process
 * holds it exclusively already, or (shared) the home cannot be written
 * and has no lock file.  GS_OK, or GS_EIO/GS_EPERM (the lock file cannot
 * be opened or locked).
 */
int pf_keys_lock(const char *home, int exclusive, int *fd);
/* Releases a lock of pf_keys_lock; -1 is nothing. */
void pf_keys_unlock(int fd);
/*
 * Reads a key file of exactly n bytes of hex (and a newline) into p.
 * GS_ENOTFOUND when it is not there, or when it was taken away while we
 * read it: 'keys retire' renames a key file, then overwrites it with
 * zeros before unlinking it, so a reader that opened it just before the
 * rename can read zeros; that is a key retired meanwhile, not a damaged
 * one (GS_ECORRUPT only when the path still names the file read).
 */
int pf_key_read_hex(const char *path, unsigned char *p, size_t n);
/* Adds the pair batch-<kid hex>.key/.pub of the home to the old keys
 * (rotate.c) unless held.  GS_OK; GS_ENOTFOUND, GS_ECORRUPT, GS_ENOMEM,
 * GS_ETOOBIG (the table is full). */
int pf_keys_adopt(struct pf_platform *pf,
    const unsigned char kid[GS_KIDBYTES]);
/* ------------------------------------------ device key rotation (rekey.c)
 * POST /v1/devices/{id}/rekey; the earlier keys of a device at ingest. */
struct pf_request;
struct pf_response;
/* 1 and dev (hex) when path is /v1/devices/<hex32>/rekey. */
int pf_rekey_match(const char *path, char dev[33]);
void pf_api_rekey(struct pf_platform *pf, const struct pf_request *req,
    const char *devhex, struct pf_response *resp);
/* An earlier key of the device with key id kid that may sign batch seq:
 * GS_OK and pk, GS_ENOTFOUND, or a store error. */
int pf_device_old_key(struct pf_platform *pf, const unsigned char device[16],
    const unsigned char kid[GS_KIDBYTES], uint64_t seq,
    unsigned char pk[GS_SIGN_PKBYTES]);

/* {"root_pk":hex,"serial":n,"bundle":b64url}: new reference or NULL. */
struct json_t *pf_root_keys_json(const struct pf_platform *pf);

/*
 * The schema to validate with now: an acquire load that pairs with the
 * release store of pf_reference_refresh(), so a thread that sees a new
 * schema sees it whole.  The pointer stays valid until pf is freed.
 * Take it once per unit of work (a batch, an admin action) so the whole
 * unit is checked against one schema.
 */
static inline const struct gs_schema *
pf_schema(struct pf_platform *pf)
{
	return __atomic_load_n(&pf->schema, __ATOMIC_ACQUIRE);
}

#endif
