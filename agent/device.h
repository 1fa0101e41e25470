/*
 * device.h - the device's identity (schema/agent/0002-sync.sql, table
 * device): who this device is to the platform and which platform keys it
 * pinned at enrollment.
 */
#ifndef AG_DEVICE_H
#define AG_DEVICE_H

#include <stdint.h>

#include "crypto.h"

struct gs_db;

struct ag_device {
	unsigned char device_id[16];
	unsigned char deployment[16];
	char platform_url[512];
	unsigned char sign_pk[GS_SIGN_PKBYTES];
	unsigned char *sign_sk; /* GS_SIGN_SKBYTES in secure memory,
				   owned; wiped by ag_device_free */
	unsigned char batch_pk[GS_KX_PKBYTES];
	unsigned char batch_kid[GS_KIDBYTES];
	unsigned char receipt_pk[GS_SIGN_PKBYTES];
	char worker[64];
	char grid[64];
	int64_t max_records;
	int64_t max_envelope;
	int64_t max_plain;
	int64_t enrolled_at;
	int revoked;
	int64_t last_seq;
	unsigned char chain_head[GS_HASHBYTES];
};

/* A zeroed device with sign_sk allocated in secure memory.  GS_OK or
 * GS_ENOMEM; free with ag_device_free. */
int ag_device_new(struct ag_device **out);
/* Wipes and frees; NULL ok. */
void ag_device_free(struct ag_device *d);

/*
 * Loads the device row.  GS_OK and *out (ag_device_free);
 * GS_ENOTENROLLED when this home has no device yet ("run gridagent enroll
 * CODE first"); GS_EUNSUPPORTED when the secret key is stored in a way
 * this program does not know (a newer program wrapped it); GS_ECORRUPT for
 * a row that breaks its own invariants; GS_EDB and friends.
 */
int ag_device_load(struct gs_db *db, struct ag_device **out);

/* Inserts the device row (run inside the caller's transaction).  GS_OK;
 * GS_EEXIST when the home is already enrolled; GS_EDB... */
int ag_device_insert(struct gs_db *db, const struct ag_device *d);

/* Marks the device revoked (inside the caller's transaction). */
int ag_device_set_revoked(struct gs_db *db, int64_t at);

/* Stores the limits a platform advertised in GET /v1/health. */
int ag_device_set_limits(struct gs_db *db, int64_t max_records,
    int64_t max_envelope, int64_t max_plain);

/* Records the outcome of a sync attempt for `status` (own transaction). */
int ag_device_note_sync(struct gs_db *db, int64_t at, const char *result);

/* The device id as 32 lower-case hex digits (out holds 33 chars). */
void ag_device_id_hex(const struct ag_device *d, char out[33]);

/* ------------------------------------------------------ enrollment (enroll.c)
 *
 * `gridagent enroll CODE [--platform URL]`: make this device's identity
 * and register it with the platform named by an admin's one-time
 * enrollment code (sync/enroll.h has the code format and the proof).
 */

struct ag_enroll_result {
	char device_id[33]; /* hex */
	char worker[64];
	char grid[64];
	char platform[512];
};

/*
 * Enrolls the store at home (made here, with the worker and grid the
 * platform bound the code to, when home holds no store yet).  The device
 * makes its Ed25519 key pair and a random device id itself; only the
 * public key, the proof of knowledge of the token and a self-signature go
 * to the platform.  The platform keys in the answer are pinned only if
 * they hash to the fingerprint in the code.  Everything is stored in ONE
 * transaction after all checks passed; on any failure nothing is stored.
 *   GS_OK           *res filled
 *   GS_EINVAL       the code is malformed (typo, checksum, prefix)
 *   GS_EEXIST       this home is already enrolled
 *   GS_EAUTH        the platform refused the code (wrong, used, expired)
 *   GS_EBADSIG      the platform's keys do not match the code's
 *                   fingerprint (wrong or impersonated platform)
 *   GS_ENETWORK, GS_ETIMEOUT, GS_EPROTOCOL  the platform is unreachable
 *                   or answered outside the protocol
 *   storage errors
 */
int ag_enroll(const char *home, const char *code, const char *platform,
    struct ag_enroll_result *res);

#endif
