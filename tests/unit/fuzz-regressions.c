/*
 * fuzz-regressions.c - replays the fuzzing corpora on every `make test`.
 *
 * Every libFuzzer harness of tests/fuzz/ is compiled in here with its
 * entry point renamed fuzz_NAME, and fed every file of
 * tests/fuzz/corpus/NAME/ (seeds from real outputs) and
 * tests/fuzz/regressions/NAME/ (inputs that once crashed or tripped a
 * sanitizer: each stays here forever, SQLite's rule "not fixed until a
 * test would exhibit the bug").  Under `make check` the replay runs with
 * ASan and UBSan, so a regression aborts this program.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

/* Every header the harnesses use, before core/banned.h (which each harness
 * includes last) turns banned names into errors. */
#include "api.h"
#include "attachment.h"
#include "batch.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/log.h"
#include "crypto.h"
#include "deflate.h"
#include "enroll.h"
#include "envelope.h"
#include "feed.h"
#include "http.h"
#include "json.h"
#include "platform.h"
#include "receipt.h"
#include "schema.h"
#include "validate.h"

#define FUZZ_ENTRY(name) fuzz_##name
#include "../fuzz/attachment.c"
#include "../fuzz/batch.c"
#include "../fuzz/enroll.c"
#include "../fuzz/envelope.c"
#include "../fuzz/feed.c"
#include "../fuzz/http.c"
#include "../fuzz/inflate.c"
#include "../fuzz/json.c"
#include "../fuzz/receipt.c"
#include "../fuzz/reference.c"

typedef int (*fuzz_fn)(const uint8_t *, size_t);

/* Feeds every regular file of TOP/tests/fuzz/KIND/NAME to fn; returns
 * how many (0 when the directory does not exist). */
static size_t
replay_dir(const char *kind, const char *name, fuzz_fn fn)
{
	const char *top = getenv("GS_TOP");
	char dir[1024], path[2048];
	DIR *d;
	struct dirent *e;
	size_t n = 0;

	snprintf(dir, sizeof(dir), "%s/tests/fuzz/%s/%s",
	    top != NULL ? top : ".", kind, name);
	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		FILE *f;
		uint8_t *buf;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		/* +1: never a zero-size malloc; the harness sees size only. */
		buf = malloc((size_t)st.st_size + 1);
		assert_non_null(buf);
		f = fopen(path, "rb");
		assert_non_null(f);
		assert_int_equal(fread(buf, 1, (size_t)st.st_size, f),
		    (size_t)st.st_size);
		fclose(f);
		fn(buf, (size_t)st.st_size);
		free(buf);
		n++;
	}
	closedir(d);
	return n;
}

static void
replay(const char *name, fuzz_fn fn)
{
	size_t seeds = replay_dir("corpus", name, fn);
	size_t regs = replay_dir("regressions", name, fn);

	print_message("%s: %zu corpus inputs, %zu regressions\n", name, seeds,
	    regs);
	/* A missing corpus would make this test pass without testing. */
	assert_true(seeds > 0);
}

static void t_envelope(void **s) { (void)s; replay("envelope", fuzz_envelope); }
static void t_inflate(void **s) { (void)s; replay("inflate", fuzz_inflate); }
static void t_batch(void **s) { (void)s; replay("batch", fuzz_batch); }
static void t_receipt(void **s) { (void)s; replay("receipt", fuzz_receipt); }
static void t_attachment(void **s) { (void)s; replay("attachment", fuzz_attachment); }
static void t_enroll(void **s) { (void)s; replay("enroll", fuzz_enroll); }
static void t_json(void **s) { (void)s; replay("json", fuzz_json); }
static void t_feed(void **s) { (void)s; replay("feed", fuzz_feed); }
static void t_http(void **s) { (void)s; replay("http", fuzz_http); }
static void t_reference(void **s) { (void)s; replay("reference", fuzz_reference); }

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_envelope),
		cmocka_unit_test(t_inflate),
		cmocka_unit_test(t_batch),
		cmocka_unit_test(t_receipt),
		cmocka_unit_test(t_attachment),
		cmocka_unit_test(t_enroll),
		cmocka_unit_test(t_json),
		cmocka_unit_test(t_feed),
		cmocka_unit_test(t_http),
		cmocka_unit_test(t_reference),
	};
	int r = cmocka_run_group_tests(tests, NULL, NULL);

	/* The platform made for the HTTP harness, and its directory. */
	pf_platform_free(http_pf);
	gs_schema_free(batch_schema);
	if (http_dir[0] != '\0') {
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", http_dir);
		if (system(cmd) != 0)
			r = r != 0 ? r : 1;
	}
	return r;
}
