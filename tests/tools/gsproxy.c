/*
 * gsproxy.c - a loopback TCP proxy for tests and benchmarks.
 *
 *	gsproxy --to PORT [--listen PORT] [--stats FILE]
 *	        [--cut-up N] [--cut-down N] [--cut-every N] [--delay-ms N]
 *
 * Listens on 127.0.0.1 (port 0 = ephemeral), prints "listening on PORT" as
 * its first stdout line, and relays every accepted connection to
 * 127.0.0.1:PORT.  It counts the bytes that cross it in each direction
 * ("up" = client to server) and writes "up N\ndown N\nconnections N\n" to
 * the stats file after every connection closes, so a benchmark reads the
 * bytes on the wire.
 *
 * Faults, for the tests: --cut-up N closes a connection after N bytes went
 * up on it (the client sees a reset mid-request); --cut-down N after N
 * bytes came down (the platform committed, the client lost the answer);
 * --cut-every N cuts each connection after N more bytes in total than the
 * previous cut, so a resumable upload makes progress; --delay-ms delays
 * every chunk.  Loopback only: it refuses any other target by design.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned long long total_up, total_down, connections;
static const char *stats_path;

static void
write_stats(void)
{
	FILE *f;

	if (stats_path == NULL)
		return;
	if ((f = fopen(stats_path, "w")) == NULL)
		return;
	fprintf(f, "up %llu\ndown %llu\nconnections %llu\n", total_up,
	    total_down, connections);
	fclose(f);
}

static unsigned long long
number(const char *s)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || *s < '0' || *s > '9') {
		fprintf(stderr, "gsproxy: not a number: %s\n", s);
		exit(64);
	}
	return v;
}

static int
connect_to(int port)
{
	struct sockaddr_in sa;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Relays one connection in this (forked) process until either side closes
 * or a cut limit is reached.  Counts the bytes moved through the pointers;
 * returns 1 when a cut ended it, 0 when a side closed.
 */
static int
relay(int c, int s, unsigned long long cut_up, unsigned long long cut_down,
    int delay_ms, unsigned long long *up, unsigned long long *down)
{
	struct pollfd p[2];
	char buf[16384];
	ssize_t n;
	int i;

	p[0].fd = c;
	p[1].fd = s;
	p[0].events = p[1].events = POLLIN;
	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 0;
		}
		for (i = 0; i < 2; i++) {
			unsigned long long *count = i == 0 ? up : down;
			unsigned long long cut = i == 0 ? cut_up : cut_down;
			size_t want = sizeof(buf);

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (cut && cut - *count < want)
				want = (size_t)(cut - *count);
			n = read(p[i].fd, buf, want);
			if (n <= 0)
				return 0;
			if (delay_ms > 0) {
				struct timespec ts = { delay_ms / 1000,
					(delay_ms % 1000) * 1000000L };
				nanosleep(&ts, NULL);
			}
			if (write(p[1 - i].fd, buf, (size_t)n) != n)
				return 0;
			*count += (unsigned long long)n;
			if (cut && *count >= cut)
				return 1;
		}
	}
}

int
main(int argc, char **argv)
{
	unsigned long long cut_up = 0, cut_down = 0, cut_every = 0;
	unsigned long long next_cut = 0;
	int to_port = -1, listen_port = 0, delay_ms = 0, i, lfd, one = 1;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	for (i = 1; i < argc; i++) {
		if (i + 1 >= argc) {
			fprintf(stderr, "gsproxy: %s needs a value\n", argv[i]);
			return 64;
		}
		if (strcmp(argv[i], "--to") == 0)
			to_port = (int)number(argv[++i]);
		else if (strcmp(argv[i], "--listen") == 0)
			listen_port = (int)number(argv[++i]);
		else if (strcmp(argv[i], "--stats") == 0)
			stats_path = argv[++i];
		else if (strcmp(argv[i], "--cut-up") == 0)
			cut_up = number(argv[++i]);
		else if (strcmp(argv[i], "--cut-down") == 0)
			cut_down = number(argv[++i]);
		else if (strcmp(argv[i], "--cut-every") == 0)
			cut_every = number(argv[++i]);
		else if (strcmp(argv[i], "--delay-ms") == 0)
			delay_ms = (int)number(argv[++i]);
		else {
			fprintf(stderr, "gsproxy: unknown option %s\n", argv[i]);
			return 64;
		}
	}
	if (to_port <= 0 || to_port > 65535 || listen_port > 65535) {
		fprintf(stderr, "usage: gsproxy --to PORT [--listen PORT] "
				"[--stats FILE] [--cut-up N] [--cut-down N] "
				"[--cut-every N] [--delay-ms N]\n");
		return 64;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return 71;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)listen_port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(lfd, 64) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &len) != 0) {
		perror("gsproxy: listen");
		return 71;
	}
	printf("listening on %d\n", ntohs(sa.sin_port));
	fflush(stdout);
	write_stats();
	if (cut_every)
		next_cut = cut_every;

	/* One connection at a time: tests want a deterministic byte order. */
	for (;;) {
		unsigned long long up = 0, down = 0, cu = cut_up;
		int c, s, cut;

		if ((c = accept(lfd, NULL, NULL)) < 0) {
			if (errno == EINTR)
				continue;
			return 71;
		}
		if ((s = connect_to(to_port)) < 0) {
			close(c);
			continue;
		}
		if (cut_every) {
			/* Cut this connection where the running total
			 * reaches the next multiple of cut_every. */
			cu = next_cut > total_up ? next_cut - total_up : 1;
		}
		cut = relay(c, s, cu, cut_down, delay_ms, &up, &down);
		if (cut_every && total_up + up >= next_cut)
			next_cut += cut_every;
		total_up += up;
		total_down += down;
		connections++;
		/* RST rather than FIN, so that a cut looks like a cut to
		 * both sides; a normal close stays a FIN so no answer in
		 * flight is lost. */
		if (cut) {
			struct linger lg = { 1, 0 };

			setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		close(c);
		close(s);
		write_stats();
	}
}
