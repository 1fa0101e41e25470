/*
 * http.c - the libmicrohttpd seam: sockets, thread pool, limits, capped
 * request bodies, and turning our answers into HTTP responses.
 *
 * Hardening follows research/reliability-anchors.md 4.1 and 5.1: MHD's
 * connection timeout only measures inactivity, so a client that dribbles
 * a body byte by byte is cut off by our own wall-clock deadline, and the
 * per-IP and total connection caps bound what slow clients can hold.  A
 * client that dribbles its headers is never idle either, and never reaches
 * a handler: a watchdog thread cuts a connection whose request headers are
 * not in within the header deadline.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include <jansson.h>

#include "core/error.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/util.h"
#include "http.h"
#include "core/banned.h"

/*
 * One open connection as the header watchdog sees it, from MHD's notice
 * that it started to the one that it closed (MHD closes the socket only
 * after that notice, so under mu the fd is still this connection's).
 */
struct conn_watch {
	struct conn_watch *prev, *next;
	int fd;
	int waiting;	  /* the headers of a request are not all in yet */
	int cut;	  /* already shut down by the watchdog */
	int64_t since_us; /* connection opened, or its last answer sent */
	char ip[INET6_ADDRSTRLEN];
};

struct pf_http {
	struct MHD_Daemon *d;
	struct pf_http_handler h;
	struct pf_http_config c;
	pthread_mutex_t mu; /* guards conns and stopping */
	pthread_cond_t cv;
	struct conn_watch *conns;
	int stopping;
	int watching; /* the watchdog thread runs */
	pthread_t watchdog;
	/* While MHD_start_daemon runs: its first message, which becomes
	 * part of our one error line if the start fails. */
	int starting;
	char start_msg[256];
};

/*
 * The state of one request, kept in MHD's per-request pointer (con_cls)
 * from the first call of on_request until on_completed.  The body buffer
 * is capped at what the route allows, so a client can never make us hold
 * more than body_max bytes whatever it declares or sends.
 */
struct req_state {
	struct gs_buf body;
	size_t max;
	int64_t start_us;
	int answered;     /* a response was queued early (413, 404, ...) */
	char ip[INET6_ADDRSTRLEN];
};

void
pf_http_config_init(struct pf_http_config *c)
{
	memset(c, 0, sizeof(*c));
	c->listen = "127.0.0.1:8480";
	c->threads = 4;
	c->max_conns = 512;
	c->max_conns_ip = 8;
	c->idle_timeout = 30;
	c->header_deadline = 60;
	c->body_deadline = 120;
	/* Tests only (tests/integration/hostile-*.sh): a slow sender must be
	 * shown to be dropped in seconds, not in two minutes. */
	{
		const char *e = getenv("GRIDPLATFORM_BODY_DEADLINE");
		uint64_t v;

		if (e != NULL && gs_parse_u64(e, 3600, &v) == GS_OK && v > 0)
			c->body_deadline = (unsigned int)v;
		e = getenv("GRIDPLATFORM_HEADER_DEADLINE");
		if (e != NULL && gs_parse_u64(e, 3600, &v) == GS_OK && v > 0)
			c->header_deadline = (unsigned int)v;
		/* bench/load.sh: 200 simulated devices share one loopback
		 * address, which the per-address cap exists to limit. */
		e = getenv("GRIDPLATFORM_PER_IP_LIMIT");
		if (e != NULL && gs_parse_u64(e, 100000, &v) == GS_OK && v > 0)
			c->max_conns_ip = (unsigned int)v;
	}
}

/*
 * Numeric addresses only: resolving a name here would make the bound
 * address depend on /etc/hosts and DNS at start-up, and an operator who
 * typed "localhost" may get ::1 or 127.0.0.1 depending on the box.
 */
int
pf_http_parse_listen(const char *listen, char *host, size_t hostlen,
    unsigned *port)
{
	const char *colon, *h = listen, *hend;
	uint64_t p;
	unsigned char addr[16];

	if (listen == NULL || *listen == '\0')
		return GS_FAIL(GS_EINVAL, "empty listen address");
	if (*listen == '[') {
		hend = strchr(listen, ']');
		if (hend == NULL || hend[1] != ':')
			return GS_FAIL(GS_EINVAL,
			    "listen address %s: expected [IPV6]:PORT", listen);
		h = listen + 1;
		colon = hend + 1;
	} else {
		colon = strrchr(listen, ':');
		if (colon == NULL)
			return GS_FAIL(GS_EINVAL,
			    "listen address %s: expected HOST:PORT", listen);
		hend = colon;
	}
	if ((size_t)(hend - h) + 1 > hostlen || hend == h)
		return GS_FAIL(GS_EINVAL, "listen address %s: bad host",
		    listen);
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	if (gs_parse_u64(colon + 1, 65535, &p) != GS_OK)
		return GS_FAIL(GS_EINVAL, "listen address %s: bad port",
		    listen);
	if (inet_pton(*listen == '[' ? AF_INET6 : AF_INET, host, addr) != 1)
		return GS_FAIL(GS_EINVAL,
		    "listen address %s: host must be a numeric address",
		    listen);
	*port = (unsigned)p;
	return GS_OK;
}

void
pf_http_error(struct pf_response *resp, int err, const char *msg)
{
	json_t *o;
	char *s = NULL;

	resp->status = gs_error_http(err);
	resp->content_type = "application/json";
	gs_buf_reset(&resp->body);
	o = json_pack("{s:{s:s,s:s}}", "error", "code", gs_error_code(err),
	    "message", msg != NULL ? msg : gs_errmsg(err));
	if (o != NULL)
		s = json_dumps(o, JSON_COMPACT);
	/* Without memory we still owe the client a well-formed answer. */
	if (s == NULL || gs_buf_puts(&resp->body, s) != GS_OK ||
	    gs_buf_putc(&resp->body, '\n') != GS_OK) {
		gs_buf_reset(&resp->body);
		(void)gs_buf_puts(&resp->body,
		    "{\"error\":{\"code\":\"out_of_memory\","
		    "\"message\":\"out of memory\"}}\n");
		resp->status = 503;
	}
	free(s);
	json_decref(o);
}

static const char *
query_get(const struct pf_request *req, const char *name)
{
	return MHD_lookup_connection_value(
	    (struct MHD_Connection *)req->conn_, MHD_GET_ARGUMENT_KIND, name);
}

/*
 * Queues resp on conn.  MHD copies the body (MUST_COPY), so the caller's
 * buffer can be released at once; answers are small (receipts, results,
 * errors), so the copy costs nothing worth a free callback.  "no-store"
 * keeps proxies from caching receipts or health answers.
 */
static enum MHD_Result
send_response(struct MHD_Connection *conn, struct pf_response *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	int status = resp->status != 0 ? resp->status : 500;

	r = MHD_create_response_from_buffer(resp->body.len,
	    resp->body.len ? resp->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	(void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    resp->content_type != NULL ? resp->content_type :
	    "application/json");
	(void)MHD_add_response_header(r, "Cache-Control", "no-store");
	ret = MHD_queue_response(conn, (unsigned int)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* An early error answer, before or while the body is read. */
static enum MHD_Result
send_error(struct MHD_Connection *conn, int err, const char *msg)
{
	struct pf_response resp;
	enum MHD_Result ret;

	memset(&resp, 0, sizeof(resp));
	gs_buf_init(&resp.body, 4096);
	pf_http_error(&resp, err, msg);
	ret = send_response(conn, &resp);
	gs_buf_release(&resp.body);
	return ret;
}

/* The client's address as text, for logs and the enrollment rate limit
 * ("?" when MHD cannot tell, which then shares one counter). */
static void
client_ip(struct MHD_Connection *conn, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci;
	const struct sockaddr *sa;

	gs_strlcpy(out, "?", outlen);
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	sa = ci->client_addr;
	if (sa->sa_family == AF_INET)
		(void)inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
		    out, (socklen_t)outlen);
	else if (sa->sa_family == AF_INET6)
		(void)inet_ntop(AF_INET6,
		    &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
		    out, (socklen_t)outlen);
}

/*
 * The header watchdog.  MHD's connection timeout only measures
 * inactivity, and a client that sends its headers one byte a second is
 * never idle and never reaches on_request: it held its connection (one of
 * the 8 per address, 512 in all) for as long as it liked.  Each
 * connection is watched from its start, and again from each answer sent
 * on it (the next request's headers); a connection whose headers are not
 * all in within header_deadline seconds is shut down, and MHD closes it.
 */
static void
on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
    enum MHD_ConnectionNotificationCode code)
{
	struct pf_http *s = cls;
	struct conn_watch *w = *socket_ctx;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn,
		    MHD_CONNECTION_INFO_CONNECTION_FD);
		/* Not watched when out of memory: the caps still hold. */
		if (ci == NULL || (w = gs_calloc(1, sizeof(*w))) == NULL)
			return;
		w->fd = ci->connect_fd;
		w->waiting = 1;
		w->since_us = gs_mono_us();
		client_ip(conn, w->ip, sizeof(w->ip));
		(void)pthread_mutex_lock(&s->mu);
		w->next = s->conns;
		if (s->conns != NULL)
			s->conns->prev = w;
		s->conns = w;
		(void)pthread_mutex_unlock(&s->mu);
		*socket_ctx = w;
		return;
	}
	if (w == NULL)
		return;
	(void)pthread_mutex_lock(&s->mu);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		s->conns = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	(void)pthread_mutex_unlock(&s->mu);
	gs_free(w);
	*socket_ctx = NULL;
}

/* The headers of conn's request are in (waiting 0), or its answer went
 * out and the next request's are awaited (waiting 1). */
static void
watch_headers_in(struct pf_http *s, struct MHD_Connection *conn, int waiting)
{
	const union MHD_ConnectionInfo *ci;
	struct conn_watch *w;

	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci == NULL || (w = ci->socket_context) == NULL)
		return;
	(void)pthread_mutex_lock(&s->mu);
	w->waiting = waiting;
	w->since_us = gs_mono_us();
	(void)pthread_mutex_unlock(&s->mu);
}

static void *
watchdog(void *arg)
{
	struct pf_http *s = arg;
	struct conn_watch *w;
	struct timespec ts;
	int64_t limit = (int64_t)s->c.header_deadline * 1000000;

	(void)pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		for (w = s->conns; w != NULL; w = w->next) {
			if (!w->waiting || w->cut ||
			    gs_mono_us() - w->since_us <= limit)
				continue;
			/* Not close(): the fd stays MHD's, which sees the
			 * connection end and closes it. */
			(void)shutdown(w->fd, SHUT_RDWR);
			w->cut = 1;
			gs_log(GS_LOG_WARNING, "connection from %s: request "
			    "headers too slow (over %u s), connection closed",
			    w->ip, s->c.header_deadline);
		}
		(void)clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		(void)pthread_cond_timedwait(&s->cv, &s->mu, &ts);
	}
	(void)pthread_mutex_unlock(&s->mu);
	return NULL;
}

/*
 * Runs the handler on a complete request and queues its answer.  The
 * per-thread error detail is cleared first, so a message left by an
 * earlier request on this pool thread can never leak into this answer.
 * early: the body is not read yet; only the handler's refuse() is asked,
 * and its answer queued if it refuses (else nothing is, MHD_YES).
 */
static enum MHD_Result
dispatch(struct pf_http *s, struct MHD_Connection *conn,
    struct req_state *st, const char *url, const char *method, int early)
{
	struct pf_request req;
	struct pf_response resp;
	enum MHD_Result ret;
	int refused = 1;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	req.method = method;
	req.path = url;
	req.ip = st->ip;
	req.body = st->body.len ? (const unsigned char *)st->body.data : NULL;
	req.body_len = st->body.len;
	req.query = query_get;
	req.conn_ = conn;
	/* Answers are usually small, but the results of a batch of
	 * max_records changes that were all quarantined with every reason
	 * can reach tens of MB, and a batch whose answer cannot be sent is
	 * one the device retries forever: the cap only stops runaways. */
	gs_buf_init(&resp.body, PF_HTTP_RESPONSE_MAX);
	gs_errmsg_clear();
	if (!early)
		s->h.handle(s->h.ctx, &req, &resp);
	else if (s->h.refuse == NULL ||
	    !(refused = s->h.refuse(s->h.ctx, &req, &resp))) {
		gs_buf_release(&resp.body);
		return MHD_YES; /* not refused: MHD says "100 Continue" */
	}
	ret = send_response(conn, &resp);
	gs_buf_release(&resp.body);
	st->answered = refused;
	return ret;
}

/*
 * Whether the client waits for "100 Continue" before it sends a body
 * (RFC 9110 10.1.1).  MHD 0.9.75 answers that for any such request
 * whose first handler call queued no answer, with a body or without.
 * Other expectations are ignored, as the RFC allows.
 */
static int
expects_continue(struct MHD_Connection *conn, const char *version)
{
	const char *e = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_EXPECT);

	return e != NULL && strcasecmp(e, "100-continue") == 0 &&
	    version != NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
}

/* Does the request announce a body (a Content-Length above 0, or any
 * Transfer-Encoding)?  Without either it has none (RFC 9112 6.3). */
static int
has_body(struct MHD_Connection *conn, const char *cl)
{
	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL)
		return 1;
	return cl != NULL && strcmp(cl, "0") != 0;
}

/*
 * MHD calls this several times per request:
 *   1. once the headers are in (*con_cls NULL): we decide from the route
 *      and Content-Length alone, and may answer at once (413; or 404, 405
 *      and any request that sends a body where none is wanted) before one
 *      body byte is read.  A client that sent "Expect: 100-continue"
 *      waits for our word before it sends the body: MHD says "100
 *      Continue" only when this call queued no answer, so a request that
 *      the handler's refuse() already refuses from its headers (a bad
 *      id, an unknown device) is answered now, and so is one that
 *      announces no body at all (a PUT without Content-Length): otherwise
 *      such a client waits for a "100 Continue" it should not get, or
 *      gets one for a body it will not send, and a client that then
 *      sends nothing is only dropped at the idle timeout;
 *   2. for every piece of body (*upload_data_size > 0): appended to the
 *      capped buffer, under the wall-clock deadline that MHD's inactivity
 *      timeout does not give (research 5.1: a dribbling client is never
 *      idle);
 *   3. once more with *upload_data_size == 0: the body is complete and the
 *      handler runs.
 * Returning MHD_NO closes the connection without an answer; we do that
 * only when no answer can be given (out of memory, too slow).
 */
static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct pf_http *s = cls;
	struct req_state *st = *con_cls;
	const char *cl;
	uint64_t declared;
	int r, expect;

	if (st == NULL) {
		/* First call: headers only.  Decide before any body byte. */
		st = gs_calloc(1, sizeof(*st));
		if (st == NULL)
			return MHD_NO;
		*con_cls = st;
		st->start_us = gs_mono_us();
		watch_headers_in(s, conn, 0);
		client_ip(conn, st->ip, sizeof(st->ip));
		st->max = s->h.body_max(s->h.ctx, method, url);
		gs_buf_init(&st->body, st->max);
		cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		    MHD_HTTP_HEADER_CONTENT_LENGTH);
		expect = expects_continue(conn, version);
		if (expect && !has_body(conn, cl))
			/* Complete already: the answer, not "100 Continue".
			 * (MHD closes the connection after an answer queued
			 * now; such a client is rare.) */
			return dispatch(s, conn, st, url, method, 0);
		if (st->max == 0) {
			/* No body wanted (GET, unknown path, wrong method).
			 * Without one (no length, no chunks) the answer waits
			 * for MHD's last call: an answer queued before the
			 * request is complete makes MHD close the connection,
			 * and every health probe and pull page would cost a
			 * new one.  With one, answer now and let MHD drop
			 * whatever follows. */
			if (!has_body(conn, cl))
				return MHD_YES;
			return dispatch(s, conn, st, url, method, 0);
		}
		if (cl != NULL) {
			if (gs_parse_u64(cl, UINT64_MAX, &declared) != GS_OK) {
				st->answered = 1;
				return send_error(conn, GS_EPARSE,
				    "Content-Length is not a number");
			}
			if (declared > st->max) {
				st->answered = 1;
				gs_log(GS_LOG_INFO, "%s %s from %s: body of %llu "
				    "bytes refused (limit %zu)", method, url,
				    st->ip, (unsigned long long)declared,
				    st->max);
				return send_error(conn, GS_ETOOBIG, NULL);
			}
		}
		if (expect)
			return dispatch(s, conn, st, url, method, 1);
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (st->answered) {
			/* An early answer is queued: discard the rest. */
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (s->c.body_deadline != 0 && gs_mono_us() - st->start_us >
		    (int64_t)s->c.body_deadline * 1000000) {
			gs_log(GS_LOG_WARNING, "%s %s from %s: body too slow, "
			    "connection closed", method, url, st->ip);
			return MHD_NO;
		}
		r = gs_buf_append(&st->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		if (r == GS_ETOOBIG) {
			/* A chunked body with no declared length grew past the
			 * cap.  We try to answer 413, but MHD 0.9.75 refuses a
			 * response in the middle of a body, so in practice the
			 * connection is closed: either way, not one more byte
			 * is kept. */
			st->answered = 1;
			gs_buf_release(&st->body);
			return send_error(conn, GS_ETOOBIG, NULL);
		}
		if (r != GS_OK)
			return MHD_NO;
		return MHD_YES;
	}
	if (st->answered)
		return MHD_YES;
	return dispatch(s, conn, st, url, method, 0);
}

/* Called by MHD for every request that got a con_cls, however it ended
 * (answered, timed out, closed by the client): the one place that frees
 * the per-request state, so no path can leak it. */
static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req_state *st = *con_cls;

	(void)toe;
	if (st == NULL)
		return;
	/* A kept-alive connection waits for the next request's headers. */
	watch_headers_in(cls, conn, 1);
	gs_buf_release(&st->body);
	gs_free(st);
	*con_cls = NULL;
}

/* MHD's own messages ("Server reached connection limit", ...) go to our
 * log as one line each, at info level: they are about clients, not us.
 * While the daemon starts they are kept for our error line instead (a
 * failed bind printed MHD's "info: http: Failed to bind ..." before our
 * "cannot listen"), and logged at debug level (GRIDSYNC_LOG=debug). */
static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct pf_http *s = cls;
	char line[512];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' ||
	    line[n - 1] == '.'))
		line[--n] = '\0';
	if (s != NULL && __atomic_load_n(&s->starting, __ATOMIC_ACQUIRE)) {
		if (s->start_msg[0] == '\0')
			gs_strlcpy(s->start_msg, line, sizeof(s->start_msg));
		gs_log(GS_LOG_DEBUG, "http: %s", line);
		return;
	}
	gs_log(GS_LOG_INFO, "http: %s", line);
}

int
pf_http_start(const struct pf_http_config *c,
    const struct pf_http_handler *h, struct pf_http **out,
    unsigned *port_out)
{
	int r = GS_EINTERNAL;
	struct pf_http *s = NULL;
	char host[64];
	unsigned port;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	const struct sockaddr *sa;
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;

	*out = NULL;
	if ((r = pf_http_parse_listen(c->listen, host, sizeof(host), &port))
	    != GS_OK)
		goto out;
	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (c->listen[0] == '[') {
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons((uint16_t)port);
		(void)inet_pton(AF_INET6, host, &sin6.sin6_addr);
		sa = (const struct sockaddr *)&sin6;
		flags |= MHD_USE_IPv6;
	} else {
		sin.sin_family = AF_INET;
		sin.sin_port = htons((uint16_t)port);
		(void)inet_pton(AF_INET, host, &sin.sin_addr);
		sa = (const struct sockaddr *)&sin;
	}
	if ((s = gs_calloc(1, sizeof(*s))) == NULL) {
		r = GS_FAIL(GS_ENOMEM, "http server state");
		goto out;
	}
	s->h = *h;
	s->c = *c;
	(void)pthread_mutex_init(&s->mu, NULL);
	(void)pthread_cond_init(&s->cv, NULL);
	/*
	 * Hardening of research 4.1: a pool of threads (handlers may block
	 * on the store's lock), total and per-address connection caps (the
	 * only bound on slow-header clients, which never reach a handler),
	 * an inactivity timeout, and a memory cap per connection that bounds
	 * the request line and headers.
	 */
	s->starting = 1;
	s->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request,
	    s, /* First, so MHD's own start-up messages come to us too. */
	    MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, (void *)s,
	    MHD_OPTION_SOCK_ADDR, sa,
	    MHD_OPTION_THREAD_POOL_SIZE, c->threads,
	    MHD_OPTION_CONNECTION_LIMIT, c->max_conns,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->max_conns_ip,
	    MHD_OPTION_CONNECTION_TIMEOUT, c->idle_timeout,
	    /* Bounds the request line and headers. */
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)s,
	    MHD_OPTION_NOTIFY_CONNECTION, on_connection, (void *)s,
	    MHD_OPTION_END);
	__atomic_store_n(&s->starting, 0, __ATOMIC_RELEASE);
	if (s->d == NULL) {
		r = s->start_msg[0] != '\0' ?
		    GS_FAIL(GS_EIO, "cannot listen on %s: %s", c->listen,
		    s->start_msg) :
		    GS_FAIL(GS_EIO, "cannot listen on %s (address in use, "
		    "not local, or not permitted)", c->listen);
		goto out;
	}
	if (c->header_deadline != 0) {
		if (pthread_create(&s->watchdog, NULL, watchdog, s) != 0) {
			r = GS_FAIL(GS_ENOMEM, "header watchdog thread");
			goto out;
		}
		s->watching = 1;
	}
	di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	*port_out = di != NULL ? di->port : port;
	*out = s;
	s = NULL;
	r = GS_OK;
out:
	pf_http_stop(s);
	return r;
}

void
pf_http_stop(struct pf_http *s)
{
	if (s == NULL)
		return;
	/* The watchdog first: it must not shut down a socket that MHD is
	 * closing. */
	if (s->watching) {
		(void)pthread_mutex_lock(&s->mu);
		s->stopping = 1;
		(void)pthread_cond_signal(&s->cv);
		(void)pthread_mutex_unlock(&s->mu);
		(void)pthread_join(s->watchdog, NULL);
	}
	if (s->d != NULL)
		MHD_stop_daemon(s->d);
	(void)pthread_cond_destroy(&s->cv);
	(void)pthread_mutex_destroy(&s->mu);
	gs_free(s);
}
