/*
 * ingest.h - receiving one sealed batch (DESIGN.md section 6).
 *
 * Order: cheap checks (size, header syntax, path ids equal header ids,
 * deployment), known device, signature BEFORE any decryption or inflate,
 * idempotency by (device, batch id), decrypt, bounded inflate, strict
 * decode, then ONE transaction: the batch row with the kept envelope,
 * every change applied / conflicted / quarantined (with reasons), the
 * device ledger, and the signed receipt.
 */
#ifndef PF_INGEST_H
#define PF_INGEST_H

#include <stddef.h>

#include "core/buf.h"
#include "platform.h"
#include "receipt.h"

struct pf_ingest_result {
	int http_status;          /* 200, or 403 for a revoked device */
	unsigned char receipt[GS_RECEIPT_BYTES];
	char *results;            /* JSON array text; owned (gs_free) */
	int replayed;             /* 1 when the stored answer was returned */
	unsigned applied, conflicted, quarantined;
};

/*
 * Ingests env[0..len) sent under PUT /v1/devices/<device_hex>/batches/
 * <batch_hex>.  GS_OK with *res filled (also for a revoked device, whose
 * batch lands in quarantine: res->http_status 403 and a status-2 receipt),
 * or an error whose HTTP status and code come from the error table:
 * GS_EENVELOPE / GS_EUNSUPPORTED / GS_ETOOBIG / GS_EINVAL (path ids differ
 * from the header), GS_EDEPLOYMENT, GS_EUNKNOWNDEVICE, GS_EBADSIG,
 * GS_EREPLAY (same batch id, other bytes), GS_EDECRYPT, GS_EINFLATE,
 * GS_EPARSE (plaintext), store errors.  An error stores nothing.
 * Release res with pf_ingest_result_release.
 */
int pf_ingest_batch(struct pf_platform *pf, const char *device_hex,
    const char *batch_hex, const unsigned char *env, size_t len,
    struct pf_ingest_result *res);
/*
 * The same for a batch sent before the one it follows (seq follows, which
 * must be the header's seq - 1) was answered: checked, opened and decoded
 * at once, then committed only after follows is (the changes are applied
 * in seq order).  It waits while follows is in ingest on another thread;
 * when follows is then neither committed nor in ingest: GS_ETOOEARLY, and
 * nothing stored (the device sends it again after follows).  follows 0 is
 * pf_ingest_batch.
 */
int pf_ingest_batch_follows(struct pf_platform *pf, const char *device_hex,
    const char *batch_hex, const unsigned char *env, size_t len,
    uint64_t follows, struct pf_ingest_result *res);
void pf_ingest_result_release(struct pf_ingest_result *res);

/* The merge rule of WIRE.md: applied when base_rev is the current rev, or
 * when every revision after base_rev came from the sending device. */
int pf_merge_fast_forward(int64_t base_rev, int64_t current_rev,
    int same_device_since_base);

#endif
