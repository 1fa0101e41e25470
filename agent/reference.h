/*
 * reference.h - reference data on the device (agent/reference.c): form
 * versions and code tables the platform published, fetched at sync
 * (agent/pull.c) and laid over the ones built into the program.
 */
#ifndef AG_REFERENCE_H
#define AG_REFERENCE_H

#include <stddef.h>

#include <jansson.h>

struct ag_store;
struct gs_db;
struct gs_schema;

/*
 * The schema of the store's database: the embedded forms and code tables
 * with every fetched document laid over them.  GS_OK, GS_ENOMEM, or the
 * store's errors.  A stored document that no longer loads (it was checked
 * before it was kept, so only a damaged store) is logged and the embedded
 * schema alone is returned: the device can still collect.
 */
int ag_reference_load(struct gs_db *db, struct gs_schema **out);

/* *have = 1 when a document of that digest is held.  GS_OK or store
 * errors. */
int ag_reference_have(struct ag_store *st, const unsigned char digest[32],
    int *have);

/*
 * Checks and keeps a fetched document whose digest the platform's signed
 * feed listed with that kind ("form" or "codes"), name and version: the
 * size cap (GS_ETOOBIG), BLAKE2b-256 of doc equal to digest (GS_EBADSIG:
 * changed on the way or on the platform), the document being what the
 * listing said (GS_EPROTOCOL), the whole schema loading with it
 * (GS_ECORRUPT, naming what is wrong).  Then stored, and the store
 * validates with the new schema from now on.  On any failure nothing
 * changes.
 */
int ag_reference_accept(struct ag_store *st, const unsigned char digest[32],
    const char *kind, const char *name, int version, const void *doc,
    size_t len);

/* The status part: {"forms":{type:newest version},"fetched":N}. */
int ag_reference_status(struct ag_store *st, json_t *into);

#endif
