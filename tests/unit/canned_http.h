/*
 * A canned HTTP server for the agent's unit tests: it listens on
 * 127.0.0.1 (a port of the kernel's choosing), and a thread accepts one
 * connection at a time, reads the request (headers, then Content-Length
 * bytes of body) and sends what the test's answer function gives.
 *
 * Header-only (static functions): each unit test program is built from
 * one .c file.  Include it after <cmocka.h>.
 */
#ifndef GS_TESTS_CANNED_HTTP_H
#define GS_TESTS_CANNED_HTTP_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

/* Held while the answer function runs and the answer is sent: take it
 * to change what the answer function reads. */
static pthread_mutex_t canned_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * Called on the server thread, with canned_mu held, once a request:
 * req is what was read of it (headers and body, NUL-terminated),
 * body_len the bytes of body.  Sets *ans and *len to the answer to send;
 * *ans NULL sends nothing.
 */
typedef void canned_answer_fn(const char *req, size_t body_len,
    const char **ans, size_t *len);

struct canned_http {
	int lfd;
	int port;
	pthread_t thr;
	canned_answer_fn *answer;
};

static void *
canned_serve(void *arg)
{
	struct canned_http *s = arg;
	char buf[65536];

	for (;;) {
		int c = accept(s->lfd, NULL, NULL);
		size_t n = 0, need = 0, len = 0;
		char *eoh = NULL, *cl;
		const char *ans = NULL;

		if (c < 0)
			return NULL;
		/* Headers, then Content-Length bytes of body. */
		for (;;) {
			ssize_t k = read(c, buf + n, sizeof(buf) - 1 - n);

			if (k <= 0)
				break;
			n += (size_t)k;
			buf[n] = '\0';
			if (eoh == NULL &&
			    (eoh = strstr(buf, "\r\n\r\n")) != NULL) {
				cl = strcasestr(buf, "Content-Length:");
				need = (size_t)(eoh + 4 - buf) +
				       (cl != NULL && cl < eoh
					       ? strtoul(cl + 15, NULL, 10)
					       : 0);
			}
			if (eoh != NULL && n >= need)
				break;
			if (n >= sizeof(buf) - 1)
				n = (size_t)(eoh ? eoh + 4 - buf : 0);
		}
		buf[n] = '\0';
		pthread_mutex_lock(&canned_mu);
		s->answer(buf, eoh != NULL ? n - (size_t)(eoh + 4 - buf) : 0,
		    &ans, &len);
		if (ans != NULL && send(c, ans, len, MSG_NOSIGNAL) < 0) {
			/* the client went away: nothing to do */
		}
		pthread_mutex_unlock(&canned_mu);
		close(c);
	}
}

/* Listens and starts the thread; s->port is then the port. */
static void
canned_start(struct canned_http *s, canned_answer_fn *answer)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	s->answer = answer;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 16), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thr, NULL, canned_serve, s), 0);
}

/* Stops listening and joins the thread. */
static void
canned_stop(struct canned_http *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	close(s->lfd);
	pthread_join(s->thr, NULL);
	s->lfd = -1;
}

#endif
