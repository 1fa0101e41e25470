/*
 * sync-uuid.c - UUIDv7: layout, ordering under bulk generation, parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "uuid.h"

static void
test_layout(void **state)
{
	unsigned char b[16];
	char s[GS_UUID_LEN + 1];
	int64_t now = gs_now_ms(), ms = 0;
	int i;

	(void)state;
	gs_uuid_v7_bytes(b);
	assert_int_equal(b[6] >> 4, 7);       /* version */
	assert_int_equal(b[8] & 0xc0, 0x80);  /* RFC 9562 variant */
	for (i = 0; i < 6; i++)
		ms = (ms << 8) | b[i];
	assert_true(ms >= now - 1000 && ms <= now + 1000);
	gs_uuid_format(s, b);
	assert_int_equal(strlen(s), 36);
	assert_int_equal(s[14], '7');
}

static void
test_monotonic(void **state)
{
	char prev[GS_UUID_LEN + 1], cur[GS_UUID_LEN + 1];
	int i;

	(void)state;
	/* Many per millisecond, as in a bulk import: strictly increasing. */
	gs_uuid_v7(prev);
	for (i = 0; i < 200000; i++) {
		gs_uuid_v7(cur);
		assert_true(strcmp(prev, cur) < 0);
		memcpy(prev, cur, sizeof(cur));
	}
}

static void
test_parse(void **state)
{
	unsigned char b[16], c[16];
	char s[GS_UUID_LEN + 1];

	(void)state;
	gs_uuid_v7_bytes(b);
	gs_uuid_format(s, b);
	assert_int_equal(gs_uuid_parse(s, c), GS_OK);
	assert_memory_equal(b, c, 16);
	assert_int_equal(gs_uuid_parse("0190a6e2-0000-7000-8000-00000000000",
			     c), GS_EINVAL);
	assert_int_equal(gs_uuid_parse("0190a6e2x0000-7000-8000-000000000000",
			     c), GS_EINVAL);
	assert_int_equal(gs_uuid_parse("0190a6e2-0000-7000-8000-00000000000g",
			     c), GS_EINVAL);
	assert_int_equal(gs_uuid_parse("", c), GS_EINVAL);
	/* One character too many: the length is exact, not a minimum. */
	assert_int_equal(gs_uuid_parse("0190a6e2-0000-7000-8000-0000000000000",
			     c), GS_EINVAL);
}

/* Ids are drawn from a random pool: a child after fork() must not make
 * the ids its parent is about to make. */
static void
test_fork(void **state)
{
	unsigned char a[16], b[16];
	int fd[2], st = 0;
	pid_t pid;

	(void)state;
	gs_uuid_v7_bytes(a); /* the pool is filled now */
	assert_int_equal(pipe(fd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		gs_uuid_v7_bytes(b);
		_exit(write(fd[1], b, 16) == 16 ? 0 : 1);
	}
	assert_int_equal(read(fd[0], b, 16), 16);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	gs_uuid_v7_bytes(a);
	/* The 62 random bits of rand_b must differ. */
	assert_memory_not_equal(a + 8, b + 8, 8);
	close(fd[0]);
	close(fd[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_monotonic),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_fork),
	};

	if (gs_crypto_init() != GS_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
