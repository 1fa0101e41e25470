/*
 * error.h - the one error table of gridsync.
 *
 * Every fallible function in sync/, agent/ and platform/ returns an int that
 * is GS_OK (0) or one of the codes below.  The numbers are part of the
 * protocol (they travel in JSON error bodies as "code") and never change:
 * append new rows, never renumber or reuse one.
 *
 * Each row says what the caller does next (the class), which sysexits code a
 * CLI exits with, and which HTTP status the platform answers with, so that the
 * mapping lives in this one table and nowhere else.
 *
 *   X(NAME, number, class, exit code, http status, "machine_code", "message")
 *
 * Classes: RETRY (transient: keep the data, try later), INPUT (the caller's
 * input is wrong: fix it), ALERT (a bug or a broken environment: tell a
 * human), REFUSE (a peer is not allowed to do this: quarantine or stop).
 */
#ifndef GS_CORE_ERROR_H
#define GS_CORE_ERROR_H

#include <stddef.h>

enum gs_error_class {
	GS_CLASS_OK = 0,
	GS_CLASS_RETRY,
	GS_CLASS_INPUT,
	GS_CLASS_ALERT,
	GS_CLASS_REFUSE
};

/* sysexits(3) values, spelled out so that core needs no <sysexits.h>. */
#define GS_EX_OK 0
#define GS_EX_CHECK 1 /* a --check found something for an admin */
#define GS_EX_USAGE 64
#define GS_EX_DATAERR 65
#define GS_EX_NOINPUT 66
#define GS_EX_UNAVAILABLE 69
#define GS_EX_SOFTWARE 70
#define GS_EX_CANTCREAT 73
#define GS_EX_IOERR 74
#define GS_EX_TEMPFAIL 75
#define GS_EX_NOPERM 77

#define GS_ERROR_TABLE(X)                                                     \
	X(OK, 0, OK, GS_EX_OK, 200, "ok", "success")                          \
	X(EINVAL, 1, INPUT, GS_EX_USAGE, 400, "invalid_argument",             \
	  "invalid argument")                                                 \
	X(EVALIDATION, 2, INPUT, GS_EX_DATAERR, 422, "validation_failed",     \
	  "record failed validation")                                         \
	X(ENOTFOUND, 3, INPUT, GS_EX_DATAERR, 404, "not_found", "not found")  \
	X(EEXIST, 4, INPUT, GS_EX_CANTCREAT, 409, "already_exists",           \
	  "already exists")                                                   \
	X(ETOOBIG, 5, INPUT, GS_EX_DATAERR, 413, "too_large",                 \
	  "input exceeds its size limit")                                     \
	X(EPARSE, 6, INPUT, GS_EX_DATAERR, 400, "malformed",                  \
	  "malformed input")                                                  \
	X(ENOMEM, 7, ALERT, GS_EX_SOFTWARE, 503, "out_of_memory",             \
	  "out of memory")                                                    \
	X(EIO, 8, ALERT, GS_EX_IOERR, 500, "io_error", "input/output error")  \
	X(EDB, 9, ALERT, GS_EX_IOERR, 500, "database_error",                  \
	  "database error")                                                   \
	X(EDBVERSION, 10, ALERT, GS_EX_SOFTWARE, 500, "database_too_new",     \
	  "database was written by a newer program")                          \
	X(ECORRUPT, 11, ALERT, GS_EX_IOERR, 500, "corrupt",                   \
	  "stored data is corrupt")                                           \
	X(ECRYPTO, 12, ALERT, GS_EX_SOFTWARE, 500, "crypto_error",            \
	  "cryptographic library failure")                                    \
	X(EBADSIG, 13, REFUSE, GS_EX_DATAERR, 401, "bad_signature",           \
	  "signature does not verify")                                        \
	X(EDECRYPT, 14, REFUSE, GS_EX_DATAERR, 400, "decrypt_failed",         \
	  "ciphertext does not decrypt")                                      \
	X(EINFLATE, 15, REFUSE, GS_EX_DATAERR, 400, "bad_compression",        \
	  "compressed data is malformed or exceeds its declared size")        \
	X(EENVELOPE, 16, REFUSE, GS_EX_DATAERR, 400, "bad_envelope",          \
	  "malformed batch envelope")                                         \
	X(EDEPLOYMENT, 17, REFUSE, GS_EX_DATAERR, 421, "wrong_deployment",    \
	  "envelope belongs to another deployment")                           \
	X(EUNKNOWNDEVICE, 18, REFUSE, GS_EX_NOPERM, 401, "unknown_device",    \
	  "device is not enrolled here")                                      \
	X(EREVOKED, 19, REFUSE, GS_EX_NOPERM, 403, "device_revoked",          \
	  "device has been revoked")                                          \
	X(EREPLAY, 20, REFUSE, GS_EX_DATAERR, 409, "batch_id_reused",         \
	  "batch id already used with different bytes")                      \
	X(ENETWORK, 21, RETRY, GS_EX_TEMPFAIL, 502, "unreachable",            \
	  "platform unreachable")                                             \
	X(ETIMEOUT, 22, RETRY, GS_EX_TEMPFAIL, 504, "timeout", "timed out")   \
	X(EBUSY, 23, RETRY, GS_EX_TEMPFAIL, 503, "busy",                      \
	  "busy, try again later")                                            \
	X(EPROTOCOL, 24, RETRY, GS_EX_TEMPFAIL, 502, "protocol_error",        \
	  "peer answered outside the protocol")                               \
	X(ENOTENROLLED, 25, REFUSE, GS_EX_NOPERM, 403, "not_enrolled",        \
	  "device is not enrolled")                                           \
	X(EAUTH, 26, REFUSE, GS_EX_NOPERM, 403, "enrollment_refused",         \
	  "enrollment code is wrong, used or expired")                        \
	X(EINTERNAL, 27, ALERT, GS_EX_SOFTWARE, 500, "internal_error",        \
	  "internal error")                                                   \
	X(ECONFLICT, 28, INPUT, GS_EX_DATAERR, 409, "conflict",               \
	  "conflicting change")                                               \
	X(ERATELIMIT, 29, RETRY, GS_EX_TEMPFAIL, 429, "rate_limited",         \
	  "too many requests")                                                \
	X(EPERM, 30, REFUSE, GS_EX_NOPERM, 403, "not_permitted",              \
	  "not permitted")                                                    \
	X(EREJECTED, 31, REFUSE, GS_EX_DATAERR, 422, "rejected",              \
	  "rejected permanently by the platform")                             \
	X(EUNSUPPORTED, 32, INPUT, GS_EX_DATAERR, 400, "unsupported",         \
	  "unsupported version or feature")                                   \
	X(EMETHOD, 33, INPUT, GS_EX_USAGE, 405, "method_not_allowed",         \
	  "method not allowed on this path")                                  \
	X(ETOOEARLY, 34, RETRY, GS_EX_TEMPFAIL, 425, "too_early",             \
	  "the batch this one follows has not been received yet")             \
	X(ECANTCREATE, 35, ALERT, GS_EX_CANTCREAT, 500, "cannot_create",      \
	  "cannot create")

enum gs_error {
#define GS_X_ENUM(name, num, cls, ex, http, code, msg) GS_##name = num,
	GS_ERROR_TABLE(GS_X_ENUM)
#undef GS_X_ENUM
	GS_ERROR_COUNT_
};

/* Static strings; unknown codes give "unknown error" / "unknown". */
const char *gs_strerror(int err);
const char *gs_error_code(int err);
enum gs_error_class gs_error_class(int err);
int gs_error_exit(int err);
int gs_error_http(int err);

/* Map a machine code string back to its number; GS_EPROTOCOL if unknown. */
int gs_error_from_code(const char *code);

/*
 * The detail of the last error on this thread ("id_number: check digit
 * should be 0, not 5").  GS_FAIL records it where the error starts, logs the
 * place at debug level, and evaluates to the code, so that
 *
 *	return GS_FAIL(GS_EPARSE, "line %zu: expected an object", n);
 *
 * both returns and explains.  Callers further up do not add to it.
 */
#define GS_FAIL(code, ...) \
	gs_fail_at(__FILE__, __LINE__, __func__, (code), __VA_ARGS__)

int gs_fail_at(const char *file, int line, const char *func, int code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The detail set by the last GS_FAIL on this thread, or the code's message
 * when none was set since gs_errmsg_clear().  Never NULL. */
const char *gs_errmsg(int err);
void gs_errmsg_clear(void);

#endif
