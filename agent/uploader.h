/*
 * uploader.h - the agent's HTTP client (the libcurl seam) and the batch
 * uploader that turns a platform answer into one of four outcomes.
 *
 * agent/uploader.c is the only file of the project that includes
 * <curl/curl.h>.  libcurl's result codes become ours there:
 * could-not-connect, resets and send/receive errors -> GS_ENETWORK,
 * timeouts and stalled links -> GS_ETIMEOUT, an answer larger than its cap
 * or outside the protocol -> GS_EPROTOCOL.  All three are RETRY-class: the
 * data stays where it is and the caller tries again later.
 *
 * One struct ag_http holds one CURL handle that is reused for every
 * request, so consecutive batches travel over one kept-alive connection.
 */
#ifndef AG_UPLOADER_H
#define AG_UPLOADER_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct ag_http;
struct ag_device;
struct ag_outbox_row;

struct ag_http_opts {
	long connect_timeout_ms; /* TCP + TLS handshake; default 15 s */
	long low_speed_limit;	 /* bytes/s below which the link is stalled */
	long low_speed_time;	 /* ... for this many seconds; default 100 B/s
				    for 60 s */
	long total_timeout_ms;	 /* whole request; default 10 min; 0 = none */
	size_t max_response;	 /* answer body cap; default 1 MiB */
};

/* The defaults above, overridden by $GRIDAGENT_CONNECT_TIMEOUT_MS and
 * $GRIDAGENT_TIMEOUT_MS when set (tests use short ones). */
void ag_http_opts_default(struct ag_http_opts *o);

/*
 * A client for the platform at base_url ("http://127.0.0.1:8080" or
 * "https://host/prefix"; a trailing '/' is ignored).  Only http and https
 * are allowed and redirects are never followed.  GS_OK and *out (free
 * with ag_http_free), GS_EINVAL for a URL that is not http(s), GS_ENOMEM.
 */
int ag_http_new(
    const char *base_url, const struct ag_http_opts *o, struct ag_http **out);
void ag_http_free(struct ag_http *h);

/* When *flag becomes non-zero (a signal handler sets it), a transfer in
 * progress is abandoned with GS_ENETWORK ("cancelled").  NULL: never. */
void ag_http_set_cancel(struct ag_http *h, volatile sig_atomic_t *flag);

struct ag_http_response {
	long status;		/* HTTP status, 0 before an answer */
	struct gs_buf body;	/* the answer, capped at max_response */
	char content_type[96];	/* "" when the answer had none */
	int64_t retry_after_ms; /* a Retry-After in seconds, 0 if none */
};

void ag_http_response_init(struct ag_http_response *r);
void ag_http_response_release(struct ag_http_response *r);

/*
 * One request: method "GET", "POST" or "PUT" on base_url + path, with an
 * optional body (content_type may be NULL when body is NULL).  GS_OK when
 * an HTTP answer arrived, whatever its status (the caller judges it);
 * GS_ENETWORK, GS_ETIMEOUT or GS_EPROTOCOL (answer over its cap, not
 * HTTP) otherwise.  resp is reset first and filled in; the caller
 * releases it.
 */
int ag_http_request(struct ag_http *h, const char *method, const char *path,
    const char *content_type, const void *body, size_t len,
    struct ag_http_response *resp);

/*
 * Another transport in place of libcurl for every ag_http of the process
 * (tests/sim/sim.c hands each request to the platform's router in the
 * same process).  fn gets what ag_http_request got, with path including
 * any query, and fills resp (its body is already reset and capped: an
 * append that fails means the answer is over its cap); it returns GS_OK
 * when an answer arrived, or GS_ENETWORK / GS_ETIMEOUT / GS_EPROTOCOL as
 * libcurl's failures would be mapped.  NULL fn: libcurl again.  Set it
 * while no request is in progress.
 */
typedef int (*ag_http_transport_fn)(void *ctx, const char *method,
    const char *path, const char *content_type, const void *body, size_t len,
    struct ag_http_response *resp);
void ag_http_set_transport(ag_http_transport_fn fn, void *ctx);

/*
 * Reads {"error":{"code":"...","message":"..."}} from an error answer.
 * Returns the error number for the machine code (gs_error_from_code;
 * GS_EPROTOCOL when the body is not such an object, or the status is not
 * 4xx or 5xx: a redirect's body is never believed) and copies the
 * message into msg.  A 5xx answer naming a code that is not a temporary
 * one gives GS_EBUSY, and msg says the platform failed.
 */
int ag_http_error_body(
    const struct ag_http_response *resp, char *msg, size_t msglen);

/* Changes the answer body cap for the following requests (0: back to
 * the one given at ag_http_new). */
void ag_http_set_response_cap(struct ag_http *h, size_t max);

/* fn(ctx) is called, on the requesting thread, once the body of a
 * request has been handed to the connection in full (NULL: never). */
void ag_http_on_sent(struct ag_http *h, void (*fn)(void *), void *ctx);

/* The next request goes on a new connection (the kept one is closed). */
void ag_http_fresh_connection(struct ag_http *h);

/* Bytes sent and received and requests made on this client so far. */
void ag_http_stats(const struct ag_http *h, uint64_t *sent, uint64_t *recvd,
    uint64_t *requests);

/* ------------------------------------------------------------- batches */

enum ag_upload_outcome {
	AG_UPLOAD_ACKED = 1,   /* verified receipt, status accepted */
	AG_UPLOAD_QUARANTINED, /* 403 device_revoked + verified receipt
				  with status quarantined */
	AG_UPLOAD_REJECTED,    /* a permanent refusal of this batch */
	AG_UPLOAD_RETRY	       /* anything else: keep it, send again */
};

struct ag_upload_result {
	enum ag_upload_outcome outcome;
	int err;		/* why, for REJECTED and RETRY (a GS_ code) */
	long http_status;	/* 0 when no answer arrived */
	char reason[512];	/* "machine_code: message" for the outbox */
	unsigned char *receipt; /* ACKED / QUARANTINED: the verified receipt */
	size_t receipt_len;
	char *results;		/* ACKED / QUARANTINED: the results JSON text */
	int64_t retry_after_ms; /* RETRY: the answer's Retry-After, or 0 */
};

void ag_upload_result_release(struct ag_upload_result *res);

/*
 * PUTs the stored envelope bytes of row to
 * /v1/devices/{device}/batches/{batch} and classifies the answer.  Never
 * re-seals and never touches the database: the caller records the outcome
 * (ag_outbox_ack and friends).  Only a receipt that verifies against the
 * pinned receipt key and names exactly this deployment, device, batch, seq
 * and envelope hash, with a matching results hash, makes ACKED or
 * QUARANTINED; a bare 200, a proxy page, a timeout or a 5xx is RETRY.
 * Returns GS_OK with *res filled in (release it), or GS_ENOMEM.
 */
int ag_upload_batch(struct ag_http *h, const struct ag_device *dev,
    const struct ag_outbox_row *row, struct ag_upload_result *res);

/*
 * The same, sent while batch follows (row->seq - 1) is still on its way
 * on another connection: "?follows=SEQ" asks the platform to commit it
 * after that one (docs/PROTOCOL.md section 6).  An answer "too_early"
 * (425) is RETRY with res->err GS_ETOOEARLY: send it again once follows
 * has its outcome.
 * follows 0 is ag_upload_batch.
 */
int ag_upload_batch_follows(struct ag_http *h, const struct ag_device *dev,
    const struct ag_outbox_row *row, int64_t follows,
    struct ag_upload_result *res);

#endif
