/*
 * gsproxy.c - a loopback TCP proxy for tests and benchmarks.
 *
 *	gsproxy --to PORT [--listen PORT] [--stats FILE]
 *	        [--cut-up N] [--cut-down N] [--cut-every N] [--delay-ms N]
 *	        [--sweep-up STEP] [--sweep-down STEP] [--sweep-from N]
 *	        [--random-up MAX] [--random-down MAX] [--seed S]
 *	        [--faults N] [--dup-request] [--stall-up N] [--stall-ms MS]
 *
 * Listens on 127.0.0.1 (port 0 = ephemeral), prints "listening on PORT" as
 * its first stdout line, and relays every accepted connection to
 * 127.0.0.1:PORT.  It counts the bytes that cross it in each direction
 * ("up" = client to server) and writes "up N\ndown N\nconnections N\n
 * cuts N\ndups N\nstalls N\n" to the stats file after every connection
 * closes, so a benchmark reads the bytes on the wire and a test reads how
 * many faults it really injected.
 *
 * Faults, for the tests:
 *   --cut-up N     close a connection after N bytes went up on it (the
 *                  client sees a reset mid-request);
 *   --cut-down N   after N bytes came down (the platform committed, the
 *                  client lost the answer);
 *   --cut-every N  cut each connection after N more bytes in total than
 *                  the previous cut, so a resumable upload makes progress;
 *   --sweep-up STEP, --sweep-down STEP
 *                  the Kth cut falls at byte FROM + K * STEP of its
 *                  connection (K = 0, 1, ...; FROM from --sweep-from,
 *                  default STEP): one client retrying in a loop is cut
 *                  at every STEP bytes of its request (or answer).  K only
 *                  advances when a cut happened, so once the offset is
 *                  past the end, connections go through untouched;
 *   --random-up MAX, --random-down MAX
 *                  cut each connection at a random offset in 1..MAX,
 *                  from --seed S (replayable);
 *   --faults N     only the first N cuts, dups or stalls happen; after
 *                  that every connection goes through (0 = no limit);
 *   --dup-request  send every upstream byte twice, to two server
 *                  connections at once (a duplicated request racing the
 *                  original); the duplicate's answer is read and dropped;
 *   --stall-up N   after N bytes up, stop relaying for --stall-ms ms
 *                  (default 5000), keeping both sockets open, then cut;
 *   --delay-ms N   delay every chunk.
 * A cut is a reset (SO_LINGER 0) on both sides.  Loopback only: it refuses
 * any other target by design.  Connections are relayed at the same time,
 * each on a thread of its own (a device may have two batches under way);
 * each connection's faults are planned when it is accepted, so a client
 * that uses one connection at a time sees a deterministic order of bytes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The counters and the stats file: mu held. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long total_up, total_down, connections;
static unsigned long long n_cuts, n_dups, n_stalls;
static const char *stats_path;
/* --cut-every's next cut and the sweep's step: mu held. */
static unsigned long long cut_every, next_cut, sweep_k;

static void
write_stats(void)
{
	FILE *f;
	char tmp[4096];

	if (stats_path == NULL)
		return;
	/* Written aside and renamed, so a reader never sees half a file. */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path) >=
	    (int)sizeof(tmp))
		return;
	if ((f = fopen(tmp, "w")) == NULL)
		return;
	fprintf(f, "up %llu\ndown %llu\nconnections %llu\ncuts %llu\n"
		   "dups %llu\nstalls %llu\n",
	    total_up, total_down, connections, n_cuts, n_dups, n_stalls);
	fclose(f);
	(void)rename(tmp, stats_path);
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

/* splitmix64: a small, well-mixed generator; the seed replays a run. */
static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
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

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* What to do to one connection (0 = nothing of that kind). */
struct plan {
	unsigned long long cut_up, cut_down, stall_up;
	long stall_ms, delay_ms;
	int dup; /* a second server connection gets the same bytes */
	int to_port;
};

/* Why relay stopped. */
enum { CLOSED = 0, CUT = 1, STALLED = 2 };

/*
 * Relays one connection until either side closes or a fault ends it.
 * Counts the bytes moved through the pointers.
 */
static int
relay(int c, int s, const struct plan *pl, unsigned long long *up,
    unsigned long long *down)
{
	struct pollfd p[3];
	char buf[65536];
	ssize_t n;
	int i, d = -1, np = 2, ret = CLOSED;

	if (pl->dup && (d = connect_to(pl->to_port)) >= 0) {
		pthread_mutex_lock(&mu);
		n_dups++;
		pthread_mutex_unlock(&mu);
		np = 3;
	}
	p[0].fd = c;
	p[1].fd = s;
	p[2].fd = d;
	p[0].events = p[1].events = p[2].events = POLLIN;
	for (;;) {
		if (poll(p, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		/* The duplicate's answer goes nowhere. */
		if (np == 3 && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
			if (read(d, buf, sizeof(buf)) <= 0)
				np = 2;
		}
		for (i = 0; i < 2; i++) {
			unsigned long long *count = i == 0 ? up : down;
			unsigned long long cut = i == 0 ? pl->cut_up :
			    pl->cut_down;
			size_t want = sizeof(buf);

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (cut && cut - *count < want)
				want = (size_t)(cut - *count);
			if (i == 0 && pl->stall_up && *count < pl->stall_up &&
			    pl->stall_up - *count < want)
				want = (size_t)(pl->stall_up - *count);
			n = read(p[i].fd, buf, want);
			if (n <= 0)
				goto done;
			if (pl->delay_ms > 0)
				sleep_ms(pl->delay_ms);
			if (write_all(p[1 - i].fd, buf, (size_t)n) != 0)
				goto done;
			if (i == 0 && np == 3 &&
			    write_all(d, buf, (size_t)n) != 0)
				np = 2;
			*count += (unsigned long long)n;
			if (cut && *count >= cut) {
				ret = CUT;
				goto done;
			}
			if (i == 0 && pl->stall_up && *count == pl->stall_up) {
				/* Both sockets stay open, nothing moves:
				 * what a dead radio link looks like. */
				pthread_mutex_lock(&mu);
				n_stalls++;
				write_stats();
				pthread_mutex_unlock(&mu);
				sleep_ms(pl->stall_ms);
				ret = STALLED;
				goto done;
			}
		}
	}
done:
	if (d >= 0) {
		/* Let the duplicate finish (its answer is dropped), within
		 * a bound: it is the platform's second copy of a request. */
		int k;

		shutdown(d, SHUT_WR);
		for (k = 0; k < 100; k++) {
			struct pollfd q = { d, POLLIN, 0 };

			if (poll(&q, 1, 50) > 0 && read(d, buf, sizeof(buf)) <= 0)
				break;
		}
		close(d);
	}
	return ret;
}

/* One accepted connection, relayed on its own thread. */
struct conn {
	int c, s;
	struct plan pl;
};

static void *
conn_main(void *arg)
{
	struct conn *k = arg;
	unsigned long long up = 0, down = 0;
	int how;

	how = relay(k->c, k->s, &k->pl, &up, &down);
	pthread_mutex_lock(&mu);
	if (cut_every && total_up + up >= next_cut)
		next_cut += cut_every;
	if (how == CUT) {
		n_cuts++;
		sweep_k++;
	}
	total_up += up;
	total_down += down;
	connections++;
	pthread_mutex_unlock(&mu);
	/* RST rather than FIN, so that a cut looks like a cut to both
	 * sides; a normal close stays a FIN so no answer in flight is
	 * lost. */
	if (how != CLOSED) {
		struct linger lg = { 1, 0 };

		setsockopt(k->c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		setsockopt(k->s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	close(k->c);
	close(k->s);
	pthread_mutex_lock(&mu);
	write_stats();
	pthread_mutex_unlock(&mu);
	free(k);
	return NULL;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: gsproxy --to PORT [--listen PORT] [--stats FILE]\n"
	    "  [--cut-up N] [--cut-down N] [--cut-every N] [--delay-ms N]\n"
	    "  [--sweep-up STEP] [--sweep-down STEP] [--sweep-from N]\n"
	    "  [--random-up MAX] [--random-down MAX] [--seed S]\n"
	    "  [--faults N] [--dup-request] [--stall-up N] [--stall-ms MS]\n");
	exit(64);
}

int
main(int argc, char **argv)
{
	unsigned long long cut_up = 0, cut_down = 0;
	unsigned long long sweep_up = 0, sweep_down = 0, sweep_from = 0;
	unsigned long long rand_up = 0, rand_down = 0, faults = 0;
	unsigned long long stall_up = 0;
	long stall_ms = 5000, delay_ms = 0;
	int to_port = -1, listen_port = 0, i, lfd, one = 1, dup = 0;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--dup-request") == 0) {
			dup = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "gsproxy: %s needs a value\n", a);
			return 64;
		}
		if (strcmp(a, "--to") == 0)
			to_port = (int)number(argv[++i]);
		else if (strcmp(a, "--listen") == 0)
			listen_port = (int)number(argv[++i]);
		else if (strcmp(a, "--stats") == 0)
			stats_path = argv[++i];
		else if (strcmp(a, "--cut-up") == 0)
			cut_up = number(argv[++i]);
		else if (strcmp(a, "--cut-down") == 0)
			cut_down = number(argv[++i]);
		else if (strcmp(a, "--cut-every") == 0)
			cut_every = number(argv[++i]);
		else if (strcmp(a, "--delay-ms") == 0)
			delay_ms = (long)number(argv[++i]);
		else if (strcmp(a, "--sweep-up") == 0)
			sweep_up = number(argv[++i]);
		else if (strcmp(a, "--sweep-down") == 0)
			sweep_down = number(argv[++i]);
		else if (strcmp(a, "--sweep-from") == 0)
			sweep_from = number(argv[++i]);
		else if (strcmp(a, "--random-up") == 0)
			rand_up = number(argv[++i]);
		else if (strcmp(a, "--random-down") == 0)
			rand_down = number(argv[++i]);
		else if (strcmp(a, "--seed") == 0)
			rng_state = number(argv[++i]);
		else if (strcmp(a, "--faults") == 0)
			faults = number(argv[++i]);
		else if (strcmp(a, "--stall-up") == 0)
			stall_up = number(argv[++i]);
		else if (strcmp(a, "--stall-ms") == 0)
			stall_ms = (long)number(argv[++i]);
		else {
			fprintf(stderr, "gsproxy: unknown option %s\n", a);
			return 64;
		}
	}
	if (to_port <= 0 || to_port > 65535 || listen_port > 65535 ||
	    (sweep_up && sweep_down))
		usage();
	if (sweep_from == 0)
		sweep_from = sweep_up ? sweep_up : sweep_down;
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

	for (;;) {
		unsigned long long done_faults;
		struct conn *k;
		pthread_t t;
		int c, s;

		if ((c = accept(lfd, NULL, NULL)) < 0) {
			if (errno == EINTR)
				continue;
			return 71;
		}
		if ((s = connect_to(to_port)) < 0) {
			close(c);
			continue;
		}
		if ((k = calloc(1, sizeof(*k))) == NULL) {
			close(c);
			close(s);
			continue;
		}
		k->c = c;
		k->s = s;
		k->pl.to_port = to_port;
		k->pl.delay_ms = delay_ms;
		pthread_mutex_lock(&mu);
		done_faults = n_cuts + n_dups + n_stalls;
		if (faults == 0 || done_faults < faults) {
			k->pl.cut_up = cut_up;
			k->pl.cut_down = cut_down;
			k->pl.dup = dup;
			k->pl.stall_up = stall_up;
			k->pl.stall_ms = stall_ms;
			if (cut_every) {
				/* Cut this connection where the running
				 * total reaches the next multiple. */
				k->pl.cut_up = next_cut > total_up ?
				    next_cut - total_up : 1;
			}
			if (sweep_up)
				k->pl.cut_up = sweep_from + sweep_k * sweep_up;
			if (sweep_down)
				k->pl.cut_down = sweep_from +
				    sweep_k * sweep_down;
			if (rand_up)
				k->pl.cut_up = 1 + rng_next() % rand_up;
			if (rand_down)
				k->pl.cut_down = 1 + rng_next() % rand_down;
		}
		pthread_mutex_unlock(&mu);
		if (pthread_create(&t, NULL, conn_main, k) != 0) {
			close(c);
			close(s);
			free(k);
			continue;
		}
		(void)pthread_detach(t);
	}
}
