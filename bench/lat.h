/*
 * lat.h - how bench/save.c and bench/pii.c time single saves: one
 * measuring routine, so that their figures can be compared.
 *
 * Before 2026-11-26 13:00 each program had its own loop, and the two
 * reported a plain single save p50 of 0.348 ms (save.c, 11:39) and
 * 0.559 ms (pii.c, 12:03) on the same disk.  Run alternately in the same
 * minutes they agreed within the run-to-run spread (12:26, load 2.6:
 * save.c 0.615 / 0.602 / 0.462 ms, pii.c 0.628 / 0.575 / 0.476 ms): the
 * difference was the moment (the disk's fdatasync, 0.24-0.42 ms today),
 * not the method, and pii.c did not record the disk's figure beside its
 * own.  So now both do the same, in this order: flush every dirty page
 * (sync: a previous run's bulk import leaves a hundred MB whose
 * writeback slows every fdatasync), time 200 x (4 KiB pwrite +
 * fdatasync) in the store's directory, then the saves, each ag_collect
 * of one line of the same gridgen persons timed alone.
 */
#ifndef BENCH_LAT_H
#define BENCH_LAT_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "gridagent.h"

struct lat {
	long n;                    /* saves timed */
	double p50, p90, p99, max; /* ms */
};

static int
lat_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void
lat_summary(int64_t *us, long n, struct lat *out)
{
	qsort(us, (size_t)n, sizeof(*us), lat_cmp);
	out->n = n;
	out->p50 = us[n / 2] / 1000.0;
	out->p90 = us[n * 9 / 10] / 1000.0;
	out->p99 = us[n * 99 / 100] / 1000.0;
	out->max = us[n - 1] / 1000.0;
}

/* Flushes the page cache, then times 200 x (4 KiB pwrite + fdatasync) in
 * dir: the floor of any durable save on that disk right now.  0 or -1. */
static int
lat_fsync_probe(const char *dir, struct lat *out)
{
	char path[600], page[4096];
	int64_t us[200], t0;
	int fd, i;

	sync();
	snprintf(path, sizeof(path), "%s/fsync.probe", dir);
	memset(page, 'x', sizeof(page));
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
		return -1;
	for (i = 0; i < 200; i++) {
		t0 = gs_mono_us();
		if (pwrite(fd, page, sizeof(page), (off_t)(i % 16) *
		    (off_t)sizeof(page)) != (ssize_t)sizeof(page) ||
		    fdatasync(fd) != 0) {
			close(fd);
			return -1;
		}
		us[i] = gs_mono_us() - t0;
	}
	close(fd);
	unlink(path);
	lat_summary(us, 200, out);
	return 0;
}

/*
 * Up to saves ag_collect calls of type, one per non-empty line of
 * data[0, len), each its own fsync'd transaction, each timed alone.
 * GS_OK and *out, or the first save's error.
 */
static int
lat_saves(struct ag_store *st, const char *type, const char *data,
    size_t len, long saves, struct lat *out)
{
	char uuid[AG_UUID_LEN + 1];
	int64_t *us, t0;
	size_t off = 0;
	long i = 0;
	int r = GS_OK;

	if (saves < 1 || (us = calloc((size_t)saves, sizeof(*us))) == NULL)
		return GS_ENOMEM;
	while (i < saves && off < len) {
		const char *l = data + off, *nl = memchr(l, '\n', len - off);
		size_t n = nl ? (size_t)(nl - l) : len - off;

		off += n + 1;
		if (n == 0)
			continue;
		t0 = gs_mono_us();
		r = ag_collect(st, type, l, n, uuid);
		us[i++] = gs_mono_us() - t0;
		if (r != GS_OK)
			break;
	}
	if (r == GS_OK && i > 0)
		lat_summary(us, i, out);
	else if (r == GS_OK)
		r = GS_EINVAL;
	free(us);
	return r;
}

#endif
