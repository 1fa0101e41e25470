/*
 * enrollment.h - one-time enrollment codes (platform side).
 *
 * (Named enrollment.h because sync/enroll.h, the code format and proof
 * helpers both ends share, already owns "enroll.h" on the include path.)
 */
#ifndef PF_ENROLLMENT_H
#define PF_ENROLLMENT_H

#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "platform.h"

/*
 * Makes a one-time code for a worker and grid, valid for ttl seconds
 * (1 .. PF_ENROLL_TTL_MAX), and appends its text (sync/enroll.h format,
 * no newline) to code.  The token is stored until used or expired.
 * GS_OK, GS_EINVAL (empty or over-long worker/name/grid, bad ttl), or a
 * store error.
 */
int pf_enroll_create(struct pf_platform *pf, const char *worker,
    const char *name, const char *grid, int64_t ttl, struct gs_buf *code);

/*
 * Redeems a code: body is the JSON of POST /v1/enroll.  On GS_OK *answer
 * is the JSON answer (new reference).  GS_EPARSE for a malformed body,
 * GS_EAUTH for an unknown, used or expired code or a wrong proof or
 * self-signature (one answer for all, so a prober learns nothing),
 * GS_ERATELIMIT when ip failed too often recently, GS_EEXIST when the
 * device id is taken.  Takes pf->lock around store work.
 */
int pf_enroll_redeem(struct pf_platform *pf, const char *ip,
    const unsigned char *body, size_t len, json_t **answer);

/* The "limits" object of health and the enroll answer (new reference). */
json_t *pf_limits_json(const struct pf_platform *pf);

#endif
