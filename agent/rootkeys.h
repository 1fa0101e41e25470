/*
 * rootkeys.h - the device side of the platform key bundle (rootkeys.c):
 * the root key pinned at enrollment, the bundle taken on every sync.
 */
#ifndef AG_ROOTKEYS_H
#define AG_ROOTKEYS_H

#include <stdint.h>

#include "crypto.h"
#include "keybundle.h"

struct ag_store;
struct ag_device;
struct json_t;

/*
 * Decodes keys {"bundle": base64url, ...} and applies the bundle rules
 * (gs_keybundle_open under root_pk, then gs_keybundle_accept against
 * pinned_serial, deployment, now and GRIDAGENT_VERSION).  GS_OK and *b;
 * GS_EPROTOCOL (no bundle), GS_EPARSE, GS_EBADSIG, GS_EREPLAY (not newer),
 * GS_EDEPLOYMENT, GS_EREJECTED (expired), GS_EUNSUPPORTED.
 */
int ag_rootkeys_open(const struct json_t *keys,
    const unsigned char root_pk[GS_SIGN_PKBYTES],
    const unsigned char deployment[16], uint64_t pinned_serial,
    struct gs_keybundle *b);

/* Stores the pinned root key and bundle serial (caller's transaction). */
int ag_rootkeys_pin(struct ag_store *st,
    const unsigned char root_pk[GS_SIGN_PKBYTES], uint64_t serial);

/*
 * On sync: keys is the "keys" member of the health answer (NULL ok).  A
 * newer valid bundle replaces dev's batch and receipt keys (stored, one
 * transaction); a refused one (rollback, bad signature, expired) is
 * logged as a warning and changes nothing.  GS_OK, or storage errors.
 */
int ag_rootkeys_refresh(struct ag_store *st, struct ag_device *dev,
    const struct json_t *keys);

/* The device key may have been rotated by `gridagent rekey` (rekey.c)
 * since dev was loaded: takes the stored key if it differs.  GS_OK. */
struct gs_db;
int ag_rekey_reload(struct gs_db *db, struct ag_device *dev);

/* The status part: {"key_bundle":{"serial":n,"root":first 8 bytes of the
 * pinned root key, hex}}, nothing for a device without a root key. */
int ag_rootkeys_status(struct ag_store *st, struct json_t *into);

#endif
