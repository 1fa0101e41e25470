/*
 * attachments.h - the platform's side of sealed attachments (GSA1,
 * sync/attachment.h): resumable uploads, content-addressed storage,
 * attachment receipts, the admin's `gridplatform attachment` command.
 *
 * Files under the platform home:
 *	attachments/HASH                 a complete, verified sealed file,
 *	                                 named by the plaintext's BLAKE2b-256
 *	attachments/partial/DEVICE-HASH  an upload in progress; its length is
 *	                                 the offset the device resumes from
 *
 * Endpoints (docs/PROTOCOL.md section 8):
 *	GET /v1/devices/{device}/attachments/{hash}
 *	    200 {"offset":N,"length":L|null,"complete":bool[,"receipt":hex]}
 *	PUT /v1/devices/{device}/attachments/{hash}?offset=N
 *	    body: the sealed bytes from N; 200 as GET once they are on disk
 *	    (fdatasync) - or 409 conflict {"error":..,"offset":S} when N is
 *	    not the platform's offset S.
 */
#ifndef PF_ATTACHMENTS_H
#define PF_ATTACHMENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct pf_platform;
struct pf_request;
struct pf_response;

/* The largest body of one PUT (one upload chunk); the agent's chunks are
 * smaller.  Batches keep their own cap (max_envelope). */
#define PF_ATT_PUT_MAX (8u * 1024 * 1024)
/* Statement slots of pf_store_sqlite_stmt used here: 48..63 (the
 * reconciliation queries use the slots from 0). */
#define PF_ATT_SLOT0 48

/* 1 when path is /v1/devices/<32 hex>/attachments/<64 hex>, with the two
 * ids copied out (dev: 33 bytes, hash: 65 bytes). */
int pf_att_match(const char *path, char *dev, char *hash);

/* The body cap of a request on an attachment path: PF_ATT_PUT_MAX for
 * PUT, 0 (no body) for anything else. */
size_t pf_att_body_max(const char *method);

/* Answers GET and PUT on an attachment path (the method was checked). */
void pf_att_handle(struct pf_platform *pf, const struct pf_request *req,
    const char *dev, const char *hash, struct pf_response *resp);

/* The limit on one attachment's plaintext: the store's meta
 * "max_attachment" when set, else GS_ATT_MAX_DEFAULT.  Read once when
 * the platform opens (pf_att_limit_load, into pf->limits), so a change
 * with `gridplatform attachment limit` takes effect at the next start. */
struct pf_store;
uint64_t pf_att_limit_load(struct pf_store *st);
uint64_t pf_att_limit(const struct pf_platform *pf);

/*
 * For `gridplatform reconcile`: {"records": records naming attachments,
 * "complete", "expected", "present", "missing": [{"uuid","type","missing":
 * [hash...]}]}, a new reference (NULL when out of memory or the store
 * fails).  pf_att_print_summary prints it as text (nothing when no record
 * names an attachment).
 */
json_t *pf_att_summary(struct pf_platform *pf);
void pf_att_print_summary(const json_t *summary);

/* For export: the attachments a record's fields name (*expected) and how
 * many of them the store holds (*present).  Returns 1 when the record
 * names any, else 0 (both counts 0). */
int pf_att_count(struct pf_store *st, const json_t *fields,
    int64_t *expected, int64_t *present);

/* Partial uploads untouched this long (seconds) are abandoned: the meta
 * "partial_max_age" when set, else 7 days. */
#define PF_ATT_PARTIAL_AGE_DEFAULT (7u * 24 * 3600)
uint64_t pf_att_partial_age(struct pf_platform *pf);
/* Removes the partial uploads untouched for age_s seconds or more (each
 * logged); *removed counts them.  GS_OK or GS_EIO. */
int pf_att_sweep(struct pf_platform *pf, uint64_t age_s, uint64_t *removed);

/* Forgets the uploads in progress that pf holds in memory (their stream
 * state); pf_platform_free calls it. */
void pf_att_release(const struct pf_platform *pf);

/* `gridplatform attachment get|list|limit ...` (main.c's table). */
int pf_cmd_attachment(const char *home, int argc, char **argv);

#endif
