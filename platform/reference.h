/*
 * reference.h - reference data an admin publishes (platform/reference.c):
 * form versions and code tables laid over the built-in ones, the
 * `gridplatform reference` command, and the route devices fetch them by.
 */
#ifndef PF_REFERENCE_H
#define PF_REFERENCE_H

#include <stdint.h>

#include <jansson.h>

#include "platform.h"

struct pf_request;
struct pf_response;

/*
 * The schema of the store st: the embedded forms and code tables with
 * every published document laid over them (sync/schema.h,
 * gs_schema_load_extra), the feed's listing of the documents (a new
 * array of {"digest","kind","name","version","size"}) and the last
 * publication's id.  GS_OK; GS_ECORRUPT when a stored document no longer
 * loads; store errors.  Free *schema with gs_schema_free, *docs with
 * json_decref.
 */
int pf_reference_schema(struct pf_store *st, struct gs_schema **schema,
    json_t **docs, int64_t *serial);

/*
 * For a running server: when something was published since the schema
 * was loaded (another process ran `reference add`), loads the new one and
 * makes it pf->schema.  The old schema is kept until pf_reference_free,
 * as threads may still be validating with it.  GS_OK or the load's error
 * (pf->schema then stays as it was).
 */
int pf_reference_refresh(struct pf_platform *pf);

/* The feed's listing of the published documents: a new reference. */
json_t *pf_reference_docs(struct pf_platform *pf);

/* Frees the retired schemas and the listing (pf_platform_free). */
void pf_reference_free(struct pf_platform *pf);

/* `gridplatform reference [--json]` and `reference add FILE [--by NAME]`;
 * argv[0] is "reference"; returns the exit code. */
int pf_cmd_reference(struct pf_platform *pf, int argc, char **argv);

/* 1 and dev and digest (as in the path, NUL-terminated) when path is
 * /v1/devices/<32 chars>/reference/<64 chars>, else 0; api.c checks that
 * both are lower-case hex. */
int pf_reference_match(const char *path, char dev[33], char digest[65]);

/* GET /v1/devices/{id}/reference/{digest}: the document as published
 * (signed request as for a pull; 404 when no such digest). */
void pf_api_reference(struct pf_platform *pf, const struct pf_request *req,
    const char *dev, const unsigned char digest[32],
    struct pf_response *resp);

#endif
