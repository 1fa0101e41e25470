/*
 * http.h - the HTTP server of the platform, on libmicrohttpd.
 *
 * platform/http.c is the only file that includes <microhttpd.h>.  It owns
 * the sockets, the thread pool, the connection limits and timeouts, and the
 * reading of request bodies into capped buffers; it knows nothing about
 * routes.  For every request it asks the handler two questions:
 *
 *   body_max(method, path)  how many body bytes this request may carry.  A
 *                           declared Content-Length above it is answered
 *                           413 at once, before one body byte is read, and
 *                           a chunked body that grows past it is cut off
 *                           with 413 too.  0 means "no body needed": the
 *                           request is answered without reading any.
 *   refuse(request, resp)   (optional) asked, once the headers are in,
 *                           of a request whose client waits for "100
 *                           Continue" before it sends the body (Expect:
 *                           100-continue): non-zero when the request will
 *                           be refused whatever its body (a malformed id,
 *                           an unknown device), with that answer in resp.
 *                           It is sent at once instead of "100 Continue",
 *                           so the client never sends the body.
 *   handle(request, resp)   the answer, once the body is complete.
 *
 * Handlers run on the pool's threads, several at a time.
 */
#ifndef PF_HTTP_H
#define PF_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct pf_http;

/* The largest answer a handler may build (bytes). */
#define PF_HTTP_RESPONSE_MAX (128u << 20)

struct pf_request {
	const char *method;       /* "GET", "PUT", ... */
	const char *path;         /* the URL path without the query */
	const char *ip;           /* the client's address as text */
	const unsigned char *body; /* NULL when there is none */
	size_t body_len;
	/* A query parameter by name, or NULL (valid during handle only). */
	const char *(*query)(const struct pf_request *req, const char *name);
	void *conn_;              /* private to http.c */
};

struct pf_response {
	int status;               /* HTTP status; 500 when left 0 */
	const char *content_type; /* static string; "application/json" if NULL */
	struct gs_buf body;       /* the handler fills it; http.c frees it */
};

struct pf_http_handler {
	size_t (*body_max)(void *ctx, const char *method, const char *path);
	void (*handle)(void *ctx, const struct pf_request *req,
	    struct pf_response *resp);
	/* NULL: nothing is refused before the body.  req has no body. */
	int (*refuse)(void *ctx, const struct pf_request *req,
	    struct pf_response *resp);
	void *ctx;
};

struct pf_http_config {
	const char *listen;          /* "HOST:PORT" (IPv4 or [IPv6]); port 0 ok */
	unsigned int threads;        /* thread pool size */
	unsigned int max_conns;      /* total connection limit */
	unsigned int max_conns_ip;   /* per client address */
	unsigned int idle_timeout;   /* seconds of inactivity before closing */
	unsigned int header_deadline; /* seconds a request's headers may take,
					 from the connection's start or its
					 last answer; 0: no limit */
	unsigned int body_deadline;  /* seconds a request may take to upload */
};

/* Fills the defaults: 127.0.0.1:8480, 4 threads, 512 / 8 connections,
 * 30 s idle timeout, 60 s header deadline, 120 s body deadline
 * ($GRIDPLATFORM_HEADER_DEADLINE and $GRIDPLATFORM_BODY_DEADLINE, for
 * tests, override the deadlines). */
void pf_http_config_init(struct pf_http_config *c);

/*
 * Parses "HOST:PORT" strictly (numeric IPv4, or [IPv6], port 0-65535).
 * GS_OK or GS_EINVAL.  host must hold 64 bytes.
 */
int pf_http_parse_listen(const char *listen, char *host, size_t hostlen,
    unsigned *port);

/*
 * Starts the server with its own threads.  *port_out is the port actually
 * bound (useful with port 0).  GS_OK, GS_EINVAL (bad listen address) or
 * GS_EIO (cannot bind; the detail says why).  Free with pf_http_stop.
 */
int pf_http_start(const struct pf_http_config *c,
    const struct pf_http_handler *h, struct pf_http **out,
    unsigned *port_out);
/* Stops accepting, waits for the running handlers, frees.  NULL ok. */
void pf_http_stop(struct pf_http *s);

/* A JSON error body {"error":{"code":..,"message":..}} with the status of
 * the error table; the message is gs_errmsg(err) unless msg is given. */
void pf_http_error(struct pf_response *resp, int err, const char *msg);

#endif
