/*
 * crypt.h - personal data at rest: the sealing of a record's pii fields
 * under the data key (DEK), the blind index over id numbers, and the
 * masks for display.  The DEK itself, its wrapping and unlocking are in
 * unlock.c (agent/keys.h).
 *
 * Stored form.  Every field the form marks pii is taken out of the fields
 * object and sealed, all of one record's together, into ONE member:
 *
 *	{"pop_type":"REGISTERED", ..., "$pii":"<base64url(nonce || ct)>"}
 *
 * ct = XChaCha20-Poly1305-IETF(key = DEK, nonce = 16 random bytes per
 * process || a 64-bit counter (crypt.c),
 * m = the compact JSON object of the pii fields {"id_number":..,"name":..},
 * ad = "gs-pii-v1" 0x00 uuid 0x00 form_version (4 bytes, little-endian)).
 * The record uuid and form version are the additional data, so a sealed
 * value moved to another record (or to the same record under another form
 * version) does not open; the field NAMES are inside the authenticated
 * plaintext, so a value cannot be moved to another field either.  One AEAD
 * per record rather than one per field: a person has eleven pii fields,
 * and eleven encryptions plus eleven base64 texts per record would cost a
 * bulk import a third of its speed for no gain in what an attacker learns.
 * (What the file still shows: which records exist, their non-pii fields,
 * and the length of each record's pii, rounded to nothing.)
 *
 * "$" cannot begin a form field name, so the member never collides with
 * a field.  A record without "$pii" holds no sealed data (a store that
 * was never protected, or a record whose pii was purged).
 */
#ifndef AG_CRYPT_H
#define AG_CRYPT_H

#include <stddef.h>

#include <jansson.h>

#define AG_DEK_BYTES 32
#define AG_BIDX_BYTES 16
#define AG_PII_MEMBER "$pii"
/* The most pii members one record may have (a form's fields at most). */
#define AG_PII_MAX_KEYS 128

struct gs_buf;
struct gs_form;
struct ag_crypt;
struct ag_pii_plan;

/*
 * A sealer over a copy of dek, kept in secure memory with the blind-index
 * subkey derived from it.  GS_OK and *out (ag_crypt_free), GS_ENOMEM.
 */
int ag_crypt_new(const unsigned char dek[AG_DEK_BYTES], struct ag_crypt **out);
/* Wipes and frees.  NULL ok. */
void ag_crypt_free(struct ag_crypt *c);
/* The DEK (secure memory, valid while c lives): for re-wrapping only. */
const unsigned char *ag_crypt_dek(const struct ag_crypt *c);

/*
 * Moves every pii field of fields (a plain, validated object) into the
 * sealed member.  Nothing to seal: fields unchanged.  GS_OK; GS_EINVAL
 * when fields already holds a sealed member (a bug: seal plain objects
 * only); GS_ENOMEM; GS_ECRYPTO.
 */
int ag_crypt_seal(const struct ag_crypt *c, const struct gs_form *f,
    const char *uuid, int form_version, json_t *fields);

/*
 * The same sealing for a caller that encodes the stored text itself (the
 * bulk import), without changing fields: the base64 of the sealed member
 * is appended to out, and keys[] gets the keys of the pii members in
 * fields' order (*nkeys of them; 0: nothing to seal, out unchanged); plan
 * (ag_crypt_plan_new of f, or NULL) says which members are pii.  The
 * keys are fields' own strings, valid while fields is unchanged.  The
 * stored text is then the members of fields whose keys are not in keys[],
 * in order, and "$pii":"<out>" last: byte for byte the text of fields
 * after ag_crypt_seal.  Errors as ag_crypt_seal's.
 */
int ag_crypt_seal_text(const struct ag_crypt *c, const struct gs_form *f,
    const struct ag_pii_plan *plan, const char *uuid, int form_version,
    const json_t *fields, struct gs_buf *out,
    const char *keys[AG_PII_MAX_KEYS], size_t *nkeys);

/*
 * The same sealed text from a line's members as they are spelled
 * (json.h, gs_json_plain_members): pm[0..n) are the pii members of one
 * record in the record's order, each a plain string value (no escape to
 * make, so its spelling is what encode_pii writes; a value normalized by
 * gs_record_validate_spans_norm lies outside the text).  The plaintext is
 * then byte for byte ag_crypt_seal_text's of the parsed object, without a
 * jansson value or a scan of the strings.  Appends the base64 to out.
 * n 0: GS_EINTERNAL (the caller stores no sealed member then).  Other
 * errors as ag_crypt_seal's.
 */
struct gs_json_span;
int ag_crypt_seal_spans(const struct ag_crypt *c, const char *uuid,
    int form_version, const struct gs_json_span *const *pm, size_t n,
    struct gs_buf *out);

/*
 * Which members of f's records are pii, worked out once for many seals
 * (ag_crypt_seal_text's plan; NULL there looks each key up in f).  Valid
 * while f is.  GS_OK and *out (ag_crypt_plan_free), GS_ENOMEM.
 */
int ag_crypt_plan_new(const struct gs_form *f, struct ag_pii_plan **out);
void ag_crypt_plan_free(struct ag_pii_plan *p);
/* 1 when key (len bytes) names a pii field of the plan's form; exposed
 * for tests. */
int ag_crypt_plan_is_pii(const struct ag_pii_plan *p, const char *key,
    size_t len);
/* The name of the plan's i-th pii id-number field (kind idcard, in form
 * order, at most 8), or NULL past the last: what the blind index reads. */
const char *ag_crypt_plan_idcard(const struct ag_pii_plan *p, size_t i);

/*
 * The plaintext of a sealed member's text s[0..slen) (the base64 of the
 * "$pii" string) into out (its len set; the bytes of a JSON object if it
 * was sealed by us).  The caller must wipe out->data when done with it.
 * c NULL: GS_EPERM; GS_ECORRUPT when s is not a sealed box; GS_EDECRYPT
 * when it does not open; GS_ETOOBIG/GS_ENOMEM when out has no room.
 */
struct gs_buf;
int ag_crypt_open_text(const struct ag_crypt *c, const char *uuid,
    int form_version, const char *s, size_t slen, struct gs_buf *out);

/*
 * Opens the sealed member back into fields (which then holds plain values
 * only).  No sealed member: GS_OK, unchanged.  c NULL while a sealed
 * member is present: GS_EPERM ("locked: run gridagent unlock").
 * GS_EDECRYPT when it does not open (moved to another record, damaged,
 * another key), GS_ECORRUPT when it opens but is not a JSON object.
 * Error messages name the uuid only, never a value.
 */
int ag_crypt_open(const struct ag_crypt *c, const char *uuid,
    int form_version, json_t *fields);

/* 1 when fields holds a sealed member. */
int ag_crypt_is_sealed(const json_t *fields);

/*
 * The base64 of sealed fields: URL-safe, no padding, byte for byte what
 * gs_crypto_b64_encode/decode give (and refuse), but by table lookup, not
 * in constant time: for ciphertext only, never for a key.  encode writes
 * GS_B64_LEN(n) bytes with the NUL and returns the length; decode
 * returns GS_OK, GS_ETOOBIG (over outmax) or GS_EPARSE.
 */
size_t ag_crypt_b64_encode(char *out, const unsigned char *in, size_t n);
int ag_crypt_b64_decode(unsigned char *out, size_t outmax, size_t *outlen,
    const char *in, size_t inlen);

/*
 * The blind-index tag of an id number (any of the form's idcard fields):
 * BLAKE2b-128 keyed with a subkey of the DEK over the normalized number
 * (spaces and hyphens dropped, x upper-cased).  GS_OK, or GS_EINVAL when
 * the value normalizes to nothing or to more than 64 bytes.
 */
int ag_crypt_bidx(const struct ag_crypt *c, const char *value,
    unsigned char tag[AG_BIDX_BYTES]);
/* The same for the len bytes at value (not NUL-terminated; a NUL ends
 * the number early, as it ends ag_crypt_bidx's string). */
int ag_crypt_bidxn(const struct ag_crypt *c, const char *value, size_t len,
    unsigned char tag[AG_BIDX_BYTES]);

/*
 * Masks the pii fields of a plain fields object in place, for display:
 * id numbers keep their first and last four characters
 * (4403**********1230), mobile phones their first three and last four
 * (138****8000), names their first character (陈*), dates their year,
 * everything else becomes "***".  A sealed member (the store is locked)
 * becomes "$pii":"[locked]".  GS_OK or GS_ENOMEM.
 */
int ag_crypt_mask(const struct gs_form *f, json_t *fields);

/* The mask of one value as new text (gs_free), NULL when out of memory;
 * exposed for tests. */
char *ag_crypt_mask_text(const struct gs_form *f, const char *field,
    const char *value);

#endif
