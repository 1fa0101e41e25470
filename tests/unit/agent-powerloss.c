/*
 * agent-powerloss.c - power loss under the agent store: every save the
 * store reported as done survives, and the database is intact.
 *
 * kill -9 cannot tell synchronous=FULL from NORMAL (the kernel keeps what
 * was written); only losing the unsynced writes can.  So this test puts a
 * crash VFS under the agent's SQLite (registered here, selected with
 * gs_db_set_vfs): a shim over the default "unix" VFS that writes through
 * but keeps, per file, the old bytes of every write and truncate since
 * that file's last xSync.  At the chosen "power cut" (the Kth xSync call,
 * before it takes effect) it puts the unsynced bytes back the way a disk
 * that lost its cache would leave them:
 *   drop  every unsynced write is lost;
 *   tear  each 512-byte sector of each unsynced write is independently
 *         kept or lost (a seeded coin): torn pages, the classic damage
 *         (2 seeds per cut, GS_POWERLOSS_TEARS=N for more);
 * and the process ends on the spot (_exit, no close, no checkpoint).
 * An unlink is not durable either until its directory is synced: a file
 * deleted without the directory sync (xDelete's dirSync 0) and since
 * then no directory sync (an xDelete with dirSync, or the first xSync
 * of a journal or WAL the VFS created, which syncs the directory) comes
 * back at the cut with what it held.  A rollback journal's unlink is a
 * commit (DELETE mode): only synchronous=EXTRA syncs the directory
 * after it.
 *
 * The workload runs in a forked child (saves, edits, deletes and a bulk
 * import large enough to go through the rollback journal: agent/store.c,
 * gs_db_journal_direct) that reports each uuid the store
 * answered GS_OK for through a pipe (the parent's memory is the "worker's
 * screen").  The parent then opens the store normally and checks: every
 * reported save present, PRAGMA integrity_check ok.  And a control with
 * teeth: a disk that ignores xSync (lies about durability) must lose
 * reported saves at some cut, or the test could not fail.
 *
 * This file includes <sqlite3.h>: a VFS is SQLite-specific by nature and
 * lives with the test, not in the product (sync/db.c stays the only
 * product file that includes it).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "core/error.h"
#include "db.h"
#include "gridagent.h"
#include "core/banned.h"

#define SECTOR 512

/* ------------------------------------------------------------ crash VFS */

/* The old bytes of one unsynced write (or truncate): [off, off+len). */
struct undo {
	sqlite3_int64 off;
	int len;
	unsigned char *old; /* what was there (zeros past the old end) */
	struct undo *next;  /* newer first */
};

struct cfile {
	sqlite3_file base;
	struct cfile *next_open; /* every open file, for the power cut */
	sqlite3_int64 synced_size;
	struct undo *undo;
	int dirsync;             /* its next xSync also syncs the directory */
	sqlite3_file *real; /* follows this struct in the same block */
};

enum { CUT_DROP = 0, CUT_TEAR = 1 };

static sqlite3_vfs *base_vfs;
static sqlite3_vfs crash_vfs;
static struct cfile *open_files;
static long cut_at_sync = -1; /* the power cut falls on this xSync call */
static long syncs;
static int cut_mode;
static int lying_disk;      /* xSync does nothing (the control) */
static uint64_t coin_state;

/* Files deleted since the directory was last synced: a cut brings them
 * back. */
struct gone {
	char *name;
	unsigned char *data;
	size_t len;
	struct gone *next;
};
static struct gone *unsynced_unlinks;

static void
gone_free(void)
{
	while (unsynced_unlinks != NULL) {
		struct gone *g = unsynced_unlinks;

		unsynced_unlinks = g->next;
		free(g->name);
		free(g->data);
		free(g);
	}
}

static int
coin(void)
{
	coin_state = coin_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (int)(coin_state >> 63);
}

static void
undo_free(struct cfile *f)
{
	while (f->undo != NULL) {
		struct undo *u = f->undo;

		f->undo = u->next;
		free(u->old);
		free(u);
	}
}

/* Remembers the current bytes of [off, off+len) before they change. */
static int
remember(struct cfile *f, sqlite3_int64 off, int len)
{
	struct undo *u = calloc(1, sizeof(*u));
	int rc;

	if (u == NULL || (u->old = calloc(1, (size_t)len)) == NULL) {
		free(u);
		return SQLITE_NOMEM;
	}
	rc = f->real->pMethods->xRead(f->real, u->old, len, off);
	if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) {
		free(u->old);
		free(u);
		return rc;
	}
	u->off = off;
	u->len = len;
	u->next = f->undo;
	f->undo = u;
	return SQLITE_OK;
}

/*
 * The power cut: every open file loses its unsynced writes (all, or torn
 * per sector), newest first so the oldest bytes win, then the process is
 * gone.
 */
static void
power_cut(void)
{
	struct cfile *f;
	struct gone *g;

	for (f = open_files; f != NULL; f = f->next_open) {
		sqlite3_int64 keep_end = f->synced_size;
		struct undo *u;

		for (u = f->undo; u != NULL; u = u->next) {
			int s;

			for (s = 0; s < u->len; s += SECTOR) {
				int n = u->len - s < SECTOR ? u->len - s : SECTOR;

				if (cut_mode == CUT_TEAR && coin()) {
					/* This sector made it to the disk. */
					if (u->off + s + n > keep_end)
						keep_end = u->off + s + n;
					continue;
				}
				(void)f->real->pMethods->xWrite(f->real,
				    u->old + s, n, u->off + s);
			}
		}
		(void)f->real->pMethods->xTruncate(f->real, keep_end);
	}
	/* Oldest last: the first content a name had wins. */
	for (g = unsynced_unlinks; g != NULL; g = g->next) {
		int fd = open(g->name, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0) {
			if (write(fd, g->data, g->len) != (ssize_t)g->len)
				_exit(6);
			(void)close(fd);
		}
	}
	_exit(0);
}

static int
c_close(sqlite3_file *pf)
{
	struct cfile *f = (struct cfile *)pf, **pp;
	int rc = f->real->pMethods->xClose(f->real);

	for (pp = &open_files; *pp != NULL; pp = &(*pp)->next_open)
		if (*pp == f) {
			*pp = f->next_open;
			break;
		}
	undo_free(f);
	return rc;
}

static int
c_read(sqlite3_file *pf, void *p, int n, sqlite3_int64 off)
{
	struct cfile *f = (struct cfile *)pf;

	return f->real->pMethods->xRead(f->real, p, n, off);
}

static int
c_write(sqlite3_file *pf, const void *p, int n, sqlite3_int64 off)
{
	struct cfile *f = (struct cfile *)pf;
	int rc = remember(f, off, n);

	return rc != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, p, n,
	    off);
}

static int
c_truncate(sqlite3_file *pf, sqlite3_int64 size)
{
	struct cfile *f = (struct cfile *)pf;
	sqlite3_int64 cur;
	int rc = f->real->pMethods->xFileSize(f->real, &cur);

	if (rc == SQLITE_OK && cur > size)
		rc = remember(f, size, (int)(cur - size));
	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real,
	    size);
}

static int
c_sync(sqlite3_file *pf, int flags)
{
	struct cfile *f = (struct cfile *)pf;
	int rc;

	if (++syncs == cut_at_sync)
		power_cut();
	if (lying_disk)
		return SQLITE_OK;
	if ((rc = f->real->pMethods->xSync(f->real, flags)) != SQLITE_OK)
		return rc;
	if (f->dirsync) {
		f->dirsync = 0;
		gone_free();
	}
	undo_free(f);
	return f->real->pMethods->xFileSize(f->real, &f->synced_size);
}

static int
c_size(sqlite3_file *pf, sqlite3_int64 *out)
{
	struct cfile *f = (struct cfile *)pf;

	return f->real->pMethods->xFileSize(f->real, out);
}

#define FWD(name, args, call)                                                  \
	static int c_##name args                                              \
	{                                                                     \
		struct cfile *f = (struct cfile *)pf;                         \
		return f->real->pMethods->call;                               \
	}
FWD(lock, (sqlite3_file * pf, int l), xLock(f->real, l))
FWD(unlock, (sqlite3_file * pf, int l), xUnlock(f->real, l))
FWD(check, (sqlite3_file * pf, int *o), xCheckReservedLock(f->real, o))
FWD(fcntl, (sqlite3_file * pf, int op, void *a), xFileControl(f->real, op, a))
FWD(sector, (sqlite3_file * pf), xSectorSize(f->real))
FWD(devchar, (sqlite3_file * pf), xDeviceCharacteristics(f->real))
FWD(shmmap, (sqlite3_file * pf, int i, int sz, int e, void volatile **pp),
    xShmMap(f->real, i, sz, e, pp))
FWD(shmlock, (sqlite3_file * pf, int o, int n, int fl),
    xShmLock(f->real, o, n, fl))
FWD(shmunmap, (sqlite3_file * pf, int d), xShmUnmap(f->real, d))

static void
c_shmbarrier(sqlite3_file *pf)
{
	struct cfile *f = (struct cfile *)pf;

	f->real->pMethods->xShmBarrier(f->real);
}

static const sqlite3_io_methods crash_io = {
	2, /* no xFetch/xUnfetch: every read goes through xRead */
	c_close, c_read, c_write, c_truncate, c_sync, c_size, c_lock,
	c_unlock, c_check, c_fcntl, c_sector, c_devchar, c_shmmap,
	c_shmlock, c_shmbarrier, c_shmunmap, NULL, NULL,
};

static int
c_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *pf, int flags,
    int *out)
{
	struct cfile *f = (struct cfile *)pf;
	int rc;

	(void)vfs;
	memset(f, 0, sizeof(*f));
	f->real = (sqlite3_file *)(f + 1);
	rc = base_vfs->xOpen(base_vfs, name, f->real, flags, out);
	if (rc != SQLITE_OK) {
		f->base.pMethods = NULL;
		return rc;
	}
	(void)f->real->pMethods->xFileSize(f->real, &f->synced_size);
	/* SQLite's unix VFS syncs the directory at the first sync of a
	 * journal or WAL it created. */
	f->dirsync = (flags & SQLITE_OPEN_CREATE) && (flags &
	    (SQLITE_OPEN_MAIN_JOURNAL | SQLITE_OPEN_SUPER_JOURNAL |
	    SQLITE_OPEN_WAL));
	f->base.pMethods = &crash_io;
	f->next_open = open_files;
	open_files = f;
	return SQLITE_OK;
}

/* A delete without a directory sync can be undone by the cut: what the
 * file held is kept until the directory is synced. */
static int
c_delete(sqlite3_vfs *vfs, const char *name, int dirsync)
{
	struct gone *g;
	struct stat sb;
	int fd;

	(void)vfs;
	if (dirsync) {
		gone_free();
	} else if ((fd = open(name, O_RDONLY)) >= 0) {
		if (fstat(fd, &sb) != 0 || (g = calloc(1, sizeof(*g))) == NULL) {
			(void)close(fd);
			return SQLITE_IOERR_DELETE;
		}
		g->len = (size_t)sb.st_size;
		g->name = strdup(name);
		g->data = malloc(g->len + 1);
		if (g->name == NULL || g->data == NULL ||
		    read(fd, g->data, g->len) != (ssize_t)g->len) {
			free(g->name);
			free(g->data);
			free(g);
			(void)close(fd);
			return SQLITE_IOERR_DELETE;
		}
		(void)close(fd);
		g->next = unsynced_unlinks;
		unsynced_unlinks = g;
	}
	return base_vfs->xDelete(base_vfs, name, dirsync);
}

static void
vfs_register(void)
{
	if (base_vfs != NULL)
		return;
	base_vfs = sqlite3_vfs_find(NULL);
	assert_non_null(base_vfs);
	crash_vfs = *base_vfs;
	crash_vfs.zName = "gs-crash";
	crash_vfs.szOsFile = (int)sizeof(struct cfile) + base_vfs->szOsFile;
	crash_vfs.xOpen = c_open;
	crash_vfs.xDelete = c_delete;
	crash_vfs.pNext = NULL;
	assert_int_equal(sqlite3_vfs_register(&crash_vfs, 0), SQLITE_OK);
}

/* ------------------------------------------------------------ the test */

static char home_tpl[] = "/tmp/gs-powerloss.XXXXXX";
static char *top_dir;

/* tests/data/valid/person-registered.json */
static const char person_json[] =
    "{\"name\": \"陈伟\", \"pop_type\": \"REGISTERED\", "
    "\"id_number\": \"440307198503151230\", \"sex\": \"1\", "
    "\"birth_date\": \"1985-03-15\", \"ethnic\": \"01\", "
    "\"marital\": \"20\", \"education\": \"30\", "
    "\"phone\": \"138 1234 5678\", \"employer\": \"深圳市大鹏新区人民医院\", "
    "\"census_region\": \"440307\", \"residence_region\": \"440307\", "
    "\"address\": \"广东省深圳市大鹏新区葵涌街道三溪社区新村3巷5号201房\", "
    "\"house\": \"0190a6e2-7c1d-7b3e-9f00-2a1b3c4d5e6f\", "
    "\"household_no\": \"004512\", \"household_relation\": \"02\", "
    "\"residence_kind\": \"OWN\", \"tags\": [\"KEY_ATTENTION\"], "
    "\"note\": \"户主，常住。\\n电话可联系。\"}";

/* Bulk-imported uuids, each reported as saved ("S uuid"). */
static void
report_import(void *ctx, const char *uuid)
{
	char line[64];
	int len = snprintf(line, sizeof(line), "S %s\n", uuid);

	if (write(*(int *)ctx, line, (size_t)len) != len)
		_exit(5);
}

/* Lines in the workload's import: over the two chunks (512) that send an
 * import through the rollback journal. */
#define IMPORT_LINES 520

/*
 * The workload (in the child): saves, edits and deletes, and one bulk
 * import as its seventh step; after each that the store answered GS_OK,
 * "S uuid" / "E uuid" / "D uuid" goes down fd (an import's uuids after
 * it returned).
 */
static void
workload(const char *home, int fd, int n)
{
	struct ag_store *st = NULL;
	char uuid[AG_UUID_LEN + 1], last[AG_UUID_LEN + 1] = "";
	char line[64];
	int i, len;

	gs_db_set_vfs("gs-crash");
	if (ag_store_open(home, &st) != GS_OK)
		_exit(3);
	for (i = 0; i < n; i++) {
		const char *p = person_json;

		if (i == 6) {
			size_t plen = strlen(person_json), count = 0;
			char *all = malloc((plen + 1) * IMPORT_LINES);
			int k;

			if (all == NULL)
				_exit(4);
			for (k = 0; k < IMPORT_LINES; k++) {
				memcpy(all + k * (plen + 1), person_json, plen);
				all[k * (plen + 1) + plen] = '\n';
			}
			if (ag_import_ndjson(st, "person", all,
			    (plen + 1) * IMPORT_LINES, report_import, &fd,
			    &count) != GS_OK || count != IMPORT_LINES)
				_exit(4);
			free(all);
			continue;
		}
		if (i % 5 == 3 && last[0] != '\0') {
			if (ag_edit(st, last, "{\"note\":\"edited\"}", 17) !=
			    GS_OK)
				_exit(4);
			len = snprintf(line, sizeof(line), "E %s\n", last);
		} else if (i % 7 == 6 && last[0] != '\0') {
			if (ag_delete(st, last, "moved") != GS_OK)
				_exit(4);
			len = snprintf(line, sizeof(line), "D %s\n", last);
			last[0] = '\0';
		} else {
			if (ag_collect(st, "person", p, strlen(p), uuid) !=
			    GS_OK)
				_exit(4);
			snprintf(last, sizeof(last), "%s", uuid);
			len = snprintf(line, sizeof(line), "S %s\n", uuid);
		}
		/* The worker saw it: from here on it must survive. */
		if (write(fd, line, (size_t)len) != len)
			_exit(5);
	}
	len = snprintf(line, sizeof(line), "# %ld\n", syncs);
	if (write(fd, line, (size_t)len) != len)
		_exit(5);
	_exit(0); /* no close: the end of the run is a cut as well */
}

struct verdict {
	int child_status;
	int reported, lost, corrupt;
	long syncs; /* xSync calls of a run that was not cut */
};

/* One run: a fresh copy of the store, the workload cut at xSync number
 * cut, then the checks. */
static void
run_one(const char *pristine, long cut, int mode, int lie, uint64_t seed,
    struct verdict *v)
{
	char home[256], cmd[1200], buf[65536];
	int pfd[2], st;
	pid_t pid;
	size_t got = 0;
	ssize_t n;
	sqlite3 *db = NULL;
	char *line, *save;

	memset(v, 0, sizeof(*v));
	snprintf(home, sizeof(home), "%s/run", top_dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", home,
	    pristine, home);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		cut_at_sync = cut;
		cut_mode = mode;
		lying_disk = lie;
		coin_state = seed;
		syncs = 0;
		workload(home, pfd[1], 12);
	}
	close(pfd[1]);
	while ((n = read(pfd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(pfd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	v->child_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;

	/* After the "reboot": the default VFS, a normal open. */
	snprintf(cmd, sizeof(cmd), "%s/agent.db", home);
	assert_int_equal(sqlite3_open(cmd, &db), SQLITE_OK);
	{
		sqlite3_stmt *q = NULL;

		if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q,
			NULL) != SQLITE_OK ||
		    sqlite3_step(q) != SQLITE_ROW ||
		    strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0)
			v->corrupt = 1;
		sqlite3_finalize(q);
	}
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		sqlite3_stmt *q = NULL;
		const char *sql = line[0] == 'S' ?
		    "SELECT count(*) FROM record WHERE uuid = ?1" :
		    line[0] == 'E' ?
		    "SELECT count(*) FROM record WHERE uuid = ?1 AND "
		    "(updated_at > created_at OR fields LIKE '%edited%')" :
		    "SELECT count(*) FROM record WHERE uuid = ?1 AND deleted = 1";

		if (line[0] == '#') {
			v->syncs = strtol(line + 2, NULL, 10);
			continue;
		}
		v->reported++;
		if (v->corrupt)
			continue;
		if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) {
			v->corrupt = 1;
			continue;
		}
		sqlite3_bind_text(q, 1, line + 2, -1, SQLITE_TRANSIENT);
		if (sqlite3_step(q) != SQLITE_ROW ||
		    sqlite3_column_int(q, 0) != 1) {
			/* A delete may coalesce a record away entirely
			 * only if it was never sent; ours keep a tombstone,
			 * so absence is a loss. */
			v->lost++;
		}
		sqlite3_finalize(q);
	}
	sqlite3_close(db);
}

static char pristine[300];
static long total_syncs;

static int
setup(void **state)
{
	struct ag_store *st = NULL;
	struct verdict v;

	(void)state;
	vfs_register();
	top_dir = mkdtemp(home_tpl);
	assert_non_null(top_dir);
	snprintf(pristine, sizeof(pristine), "%s/pristine", top_dir);
	assert_int_equal(ag_store_init(pristine, "110101001", "w001", &st),
	    GS_OK);
	ag_store_close(st);
	/* A run without a cut counts the xSync calls of the workload
	 * (and must itself lose nothing). */
	run_one(pristine, -1, CUT_DROP, 0, 1, &v);
	assert_int_equal(v.child_status, 0);
	assert_int_equal(v.reported, 11 + IMPORT_LINES);
	assert_int_equal(v.lost, 0);
	total_syncs = v.syncs;
	print_message("the workload (11 saves, edits, deletes and an "
		      "import of %d) makes %ld xSync calls\n", IMPORT_LINES,
	    total_syncs);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Power cut at every xSync, both damage modes. */
static void
t_every_sync_point(void **state)
{
	long k;
	int mode, seed, cuts = 0, lost = 0, corrupt = 0, reported = 0;
	/* Torn-write variants per cut: 2 in `make test`, more in the
	 * campaign ($GS_POWERLOSS_TEARS). */
	int tears = getenv("GS_POWERLOSS_TEARS") != NULL ?
	    (int)strtol(getenv("GS_POWERLOSS_TEARS"), NULL, 10) : 2;

	(void)state;
	assert_true(total_syncs >= 12);
	for (k = 1; k <= total_syncs; k++)
		for (mode = CUT_DROP; mode <= CUT_TEAR; mode++)
			for (seed = 1; seed <= (mode == CUT_TEAR ? tears : 1);
			     seed++) {
				struct verdict v;

				run_one(pristine, k, mode, 0,
				    (uint64_t)(k * 131 + seed), &v);
				cuts++;
				reported += v.reported;
				if (v.lost || v.corrupt)
					print_message("cut at sync %ld (%s, "
						      "seed %d): %d lost, "
						      "corrupt %d\n",
					    k, mode ? "tear" : "drop", seed,
					    v.lost, v.corrupt);
				lost += v.lost;
				corrupt += v.corrupt;
			}
	print_message("%d power cuts, %d reported saves checked: %d lost, "
		      "%d corrupt\n", cuts, reported, lost, corrupt);
	assert_int_equal(lost, 0);
	assert_int_equal(corrupt, 0);
}

/* The control: a disk that lies about xSync loses reported saves. */
static void
t_lying_disk_loses(void **state)
{
	long k;
	int lost = 0;

	(void)state;
	for (k = 2; k <= total_syncs && lost == 0; k += 2) {
		struct verdict v;

		run_one(pristine, k, CUT_DROP, 1, 7, &v);
		lost += v.lost + v.corrupt;
	}
	print_message("lying disk: %d reported saves lost (the test has "
		      "teeth)\n", lost);
	assert_true(lost > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_every_sync_point),
		cmocka_unit_test(t_lying_disk_loses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
