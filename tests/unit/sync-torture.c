/*
 * sync-torture.c - curl's torture mode over the public operations of
 * sync/: each operation runs once per allocation it makes, with that
 * allocation failing (gs_mem_fail_after: the Nth and every later one), and
 * must return an error, not crash, not leak (LSan under `make check`,
 * valgrind otherwise) and not report success for work it did not do.
 * The loop stops at the first N where the operation completes without a
 * failed allocation.
 *
 * jansson's allocations are routed through gs_malloc here as well
 * (json_set_alloc_funcs), so the JSON values our code builds and reads
 * fail in turn too: the code paths that trust json_* to never return NULL
 * are exactly the ones this finds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "batch.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "crypto.h"
#include "deflate.h"
#include "enroll.h"
#include "envelope.h"
#include "json.h"
#include "receipt.h"
#include "schema.h"
#include "validate.h"
#include "core/banned.h"

/* An operation under torture: GS_OK when it completed. */
typedef int (*op_fn)(void);

/* Runs op with allocation N failing, N = 0, 1, ... until it completes
 * without a failure; returns how many allocations the operation makes. */
static long
torture(const char *name, op_fn op)
{
	long n, failed;
	int r;

	for (n = 0; n < 200000; n++) {
		gs_mem_fail_after(n);
		r = op();
		failed = gs_mem_fail_after(-1);
		gs_errmsg_clear();
		if (failed == 0) {
			/* Nothing failed: the operation must have worked. */
			if (r != GS_OK)
				fail_msg("%s: failed (%s) with no failed "
					 "allocation", name, gs_error_code(r));
			print_message("%s: %ld allocations, each failed in "
				      "turn\n", name, n);
			return n;
		}
		/* An allocation failed; success is acceptable only where a
		 * failure was absorbed (a cache, a best-effort path), and
		 * the assertions inside op check the result is right. */
	}
	fail_msg("%s: no end after %ld allocations", name, n);
	return n;
}

/* ------------------------------------------------------------ fixtures */

static unsigned char dev_pk[GS_SIGN_PKBYTES], dev_sk[GS_SIGN_SKBYTES];
static unsigned char rc_pk[GS_SIGN_PKBYTES], rc_sk[GS_SIGN_SKBYTES];
static unsigned char bpk[GS_KX_PKBYTES], bsk[GS_KX_SKBYTES];
static struct gs_schema *schema;

/* tests/data/valid/person-registered.json */
static const char record_json[] =
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

static void *
j_malloc(size_t n)
{
	return gs_malloc(n);
}

static void
j_free(void *p)
{
	gs_free(p);
}

static int
setup(void **state)
{
	unsigned char seed[32];

	(void)state;
	assert_int_equal(gs_crypto_init(), GS_OK);
	memset(seed, 0x33, sizeof(seed));
	gs_crypto_sign_seed_keypair(dev_pk, dev_sk, seed);
	memset(seed, 0x22, sizeof(seed));
	gs_crypto_sign_seed_keypair(rc_pk, rc_sk, seed);
	memset(seed, 0x11, sizeof(seed));
	gs_crypto_kx_seed_keypair(bpk, bsk, seed);
	assert_int_equal(gs_schema_load(&schema), GS_OK);
	json_set_alloc_funcs(j_malloc, j_free);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_set_alloc_funcs(malloc, free);
	gs_schema_free(schema);
	return 0;
}

/* ------------------------------------------------------------ operations */

static int
op_buf(void)
{
	struct gs_buf b;
	int r = GS_OK, i;

	gs_buf_init(&b, 1 << 20);
	for (i = 0; i < 64 && r == GS_OK; i++)
		r = gs_buf_printf(&b, "line %d of a growing buffer\n", i);
	if (r == GS_OK)
		assert_true(b.len > 64 * 20);
	gs_buf_release(&b);
	return r;
}

static int
op_schema(void)
{
	struct gs_schema *s = NULL;
	int r = gs_schema_load(&s);

	if (r == GS_OK)
		assert_non_null(gs_schema_form(s, "person"));
	gs_schema_free(s);
	return r;
}

static int
op_json(void)
{
	json_t *v = NULL;
	char why[128];
	int r = gs_json_parse(record_json, strlen(record_json), &v, why,
	    sizeof(why));

	if (r == GS_OK)
		assert_true(json_is_object(v));
	json_decref(v);
	return r;
}

static int
op_validate(void)
{
	json_t *v = NULL;
	struct gs_problems *p = malloc(sizeof(*p));
	char why[128];
	int r;

	assert_non_null(p);
	if ((r = gs_json_parse(record_json, strlen(record_json), &v, why,
		 sizeof(why))) == GS_OK)
		r = gs_record_validate(schema, gs_schema_form(schema, "person"),
		    v, p);
	json_decref(v);
	free(p);
	return r;
}

static int
op_deflate(void)
{
	static char text[20000];
	struct gs_buf z, out;
	int r;

	if (text[0] == '\0') {
		size_t i;

		for (i = 0; i + 1 < sizeof(text); i++)
			text[i] = (char)('a' + (i * 7 + i / 13) % 26);
	}
	gs_buf_init(&z, 1 << 20);
	gs_buf_init(&out, 1 << 20);
	if ((r = gs_deflate(&z, text, strlen(text), 6)) == GS_OK &&
	    (r = gs_inflate(&out, z.data, z.len, strlen(text))) == GS_OK)
		assert_memory_equal(out.data, text, strlen(text));
	gs_buf_release(&z);
	gs_buf_release(&out);
	return r;
}

/* A two-change batch plaintext (header + lines) into out. */
static int
make_batch(struct gs_buf *out)
{
	struct gs_batch_header h;
	struct gs_change c;
	char why[128];
	int r, i;

	memset(&h, 0, sizeof(h));
	h.v = GS_BATCH_VERSION;
	memset(h.deployment, 1, 16);
	memset(h.device, 2, 16);
	memset(h.batch, 3, 16);
	h.seq = 1;
	h.count = 2;
	if ((r = gs_batch_encode_header(out, &h)) != GS_OK)
		return r;
	for (i = 0; i < 2; i++) {
		gs_change_init(&c);
		snprintf(c.change_id, sizeof(c.change_id),
		    "0190a6e2-0002-7000-8000-0000000c000%c", (char)('0' + i));
		snprintf(c.uuid, sizeof(c.uuid),
		    "0190a6e2-0000-7000-8000-0000000a000%c", (char)('0' + i));
		snprintf(c.type, sizeof(c.type), "person");
		c.form_version = 1;
		snprintf(c.grid, sizeof(c.grid), "110101001");
		snprintf(c.author, sizeof(c.author), "w001");
		c.created_at = c.updated_at = 1764140673123;
		r = gs_json_parse(record_json, strlen(record_json), &c.fields,
		    why, sizeof(why));
		if (r == GS_OK)
			r = gs_batch_encode_change(out, &c);
		gs_change_release(&c);
		if (r != GS_OK)
			return r;
	}
	return GS_OK;
}

static int
op_batch(void)
{
	struct gs_buf b;
	struct gs_batch d;
	int r;

	gs_buf_init(&b, 1 << 20);
	memset(&d, 0, sizeof(d));
	if ((r = make_batch(&b)) == GS_OK &&
	    (r = gs_batch_decode(&d, (const char *)b.data, b.len, 100)) ==
		GS_OK) {
		if (d.n != 2)
			fail_msg("batch decode: GS_OK with %zu of 2 changes [%.*s] "
				 "(after %ld failed allocations)", d.n, (int)b.len, (const char *)b.data,
			    gs_mem_fail_after(-1));
		gs_batch_release(&d);
	}
	gs_buf_release(&b);
	return r;
}

static int
op_envelope(void)
{
	struct gs_buf plain, env, out;
	struct gs_seal_params p;
	struct gs_envelope_header h;
	struct gs_envelope_limits lim;
	int r;

	gs_buf_init(&plain, 1 << 20);
	gs_buf_init(&env, GS_ENV_MAX_ENVELOPE);
	gs_buf_init(&out, 1 << 20);
	memset(&p, 0, sizeof(p));
	memset(p.deployment, 1, 16);
	memset(p.device, 2, 16);
	memset(p.batch, 3, 16);
	p.seq = 1;
	p.created_at = 1764140673123;
	p.count = 2;
	p.platform_pk = bpk;
	p.device_sk = dev_sk;
	gs_envelope_limits_default(&lim);
	if ((r = make_batch(&plain)) != GS_OK)
		goto out;
	if ((r = gs_envelope_seal(&env, &p, plain.data, plain.len)) != GS_OK)
		goto out;
	if ((r = gs_envelope_parse(&h, env.data, env.len, &lim)) != GS_OK ||
	    (r = gs_envelope_verify(&h, env.data, env.len, dev_pk)) != GS_OK ||
	    (r = gs_envelope_open(&out, &h, env.data, env.len, bpk, bsk)) !=
		GS_OK)
		goto out;
	assert_int_equal(out.len, plain.len);
	assert_memory_equal(out.data, plain.data, plain.len);
out:
	gs_buf_release(&plain);
	gs_buf_release(&env);
	gs_buf_release(&out);
	return r;
}

static int
op_receipt(void)
{
	static const char results[] = "[]";
	unsigned char bytes[GS_RECEIPT_BYTES];
	struct gs_receipt rc, got;
	int r;

	memset(&rc, 0, sizeof(rc));
	memset(rc.deployment, 1, 16);
	memset(rc.device, 2, 16);
	memset(rc.batch, 3, 16);
	rc.seq = 7;
	rc.applied = 2;
	rc.server_time = 1764140673123;
	rc.status = GS_RECEIPT_ACCEPTED;
	if ((r = gs_receipt_sign(bytes, &rc, results, 2, rc_sk)) != GS_OK)
		return r;
	memset(&got, 0, sizeof(got));
	if ((r = gs_receipt_verify(&got, bytes, sizeof(bytes), results, 2,
		 rc_pk)) != GS_OK)
		return r;
	assert_int_equal(got.seq, 7);
	return gs_receipt_match(&got, &rc);
}

static int
op_enroll(void)
{
	struct gs_enroll_code c, d;
	struct gs_buf b;
	int r;

	memset(&c, 0, sizeof(c));
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:8443");
	memset(c.token_id, 0x0e, sizeof(c.token_id));
	memset(c.token, 0x66, sizeof(c.token));
	memset(c.fingerprint, 0x77, sizeof(c.fingerprint));
	gs_buf_init(&b, 4096);
	if ((r = gs_enroll_code_encode(&b, &c)) == GS_OK &&
	    (r = gs_buf_putc(&b, '\0')) == GS_OK &&
	    (r = gs_enroll_code_decode(&d, (const char *)b.data)) == GS_OK) {
		assert_memory_equal(&c, &d, sizeof(c));
		gs_enroll_code_wipe(&d);
	}
	gs_buf_release(&b);
	return r;
}

#define T(name)                                                                \
	static void t_##name(void **s)                                        \
	{                                                                     \
		(void)s;                                                      \
		assert_true(torture(#name, op_##name) >= 0);                  \
	}
T(buf)
T(schema)
T(json)
T(validate)
T(deflate)
T(batch)
T(envelope)
T(receipt)
T(enroll)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_buf),
		cmocka_unit_test(t_schema),
		cmocka_unit_test(t_json),
		cmocka_unit_test(t_validate),
		cmocka_unit_test(t_deflate),
		cmocka_unit_test(t_batch),
		cmocka_unit_test(t_envelope),
		cmocka_unit_test(t_receipt),
		cmocka_unit_test(t_enroll),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
