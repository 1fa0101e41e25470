/*
 * sync-receipt.c - receipts: sign/verify, every byte and the results text
 * covered, the wrong key refused, identity fields matched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/error.h"
#include "crypto.h"
#include "receipt.h"

static unsigned char PK[32], SK[64], OPK[32], OSK[64];
static const char RESULTS[] =
    "[{\"change_id\":\"x\",\"uuid\":\"y\",\"status\":\"conflict\",\"rev\":3,"
    "\"reasons\":[]}]";

static void
sample(struct gs_receipt *r)
{
	memset(r, 0, sizeof *r);
	memset(r->deployment, 0xd1, 16);
	memset(r->device, 0xde, 16);
	memset(r->batch, 0xba, 16);
	r->seq = 7;
	memset(r->envelope_hash, 0xe7, 32);
	r->applied = 10;
	r->conflicted = 1;
	r->quarantined = 2;
	r->server_time = 1764140673123;
	r->status = GS_RECEIPT_ACCEPTED;
}

static void
test_good(void **state)
{
	struct gs_receipt r, got;
	unsigned char b[GS_RECEIPT_BYTES];
	unsigned char h[32];

	(void)state;
	memset(&got, 0, sizeof got);
	sample(&r);
	assert_int_equal(gs_receipt_sign(b, &r, RESULTS, strlen(RESULTS), SK),
	    GS_OK);
	gs_crypto_hash(h, 32, RESULTS, strlen(RESULTS), NULL, 0);
	assert_memory_equal(r.results_hash, h, 32);
	assert_memory_equal(b, "GSR1", 4);
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b, RESULTS,
	    strlen(RESULTS), PK), GS_OK);
	assert_memory_equal(&got, &r, sizeof r);
	assert_int_equal(gs_receipt_match(&got, &r), GS_OK);

	/* Revoked device: status 2 and an empty results array. */
	r.status = GS_RECEIPT_QUARANTINED;
	assert_int_equal(gs_receipt_sign(b, &r, "[]", 2, SK), GS_OK);
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b, "[]", 2, PK),
	    GS_OK);
	assert_int_equal(got.status, GS_RECEIPT_QUARANTINED);
	r.status = 3;
	assert_int_equal(gs_receipt_sign(b, &r, "[]", 2, SK), GS_EINVAL);
}

static void
test_every_bit(void **state)
{
	struct gs_receipt r, got;
	unsigned char b[GS_RECEIPT_BYTES];
	size_t i;
	int bit, rc;

	(void)state;
	sample(&r);
	assert_int_equal(gs_receipt_sign(b, &r, RESULTS, strlen(RESULTS), SK),
	    GS_OK);
	for (i = 0; i < sizeof b; i++) {
		for (bit = 0; bit < 8; bit++) {
			b[i] ^= (unsigned char)(1 << bit);
			rc = gs_receipt_verify(&got, b, sizeof b, RESULTS,
			    strlen(RESULTS), PK);
			if (i < 4)
				assert_int_equal(rc, GS_EPROTOCOL);
			else
				assert_int_equal(rc, GS_EBADSIG);
			b[i] ^= (unsigned char)(1 << bit);
		}
	}
}

static void
test_refused(void **state)
{
	struct gs_receipt r, got;
	unsigned char b[GS_RECEIPT_BYTES];
	char res[sizeof RESULTS];

	(void)state;
	sample(&r);
	assert_int_equal(gs_receipt_sign(b, &r, RESULTS, strlen(RESULTS), SK),
	    GS_OK);
	/* Wrong key. */
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b, RESULTS,
	    strlen(RESULTS), OPK), GS_EBADSIG);
	/* Results text changed by one byte, shortened, or swapped. */
	memcpy(res, RESULTS, sizeof res);
	res[30] = 'X';
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b, res,
	    strlen(res), PK), GS_EBADSIG);
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b, RESULTS,
	    strlen(RESULTS) - 1, PK), GS_EBADSIG);
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b, "[]", 2, PK),
	    GS_EBADSIG);
	/* Another results text whose hash agrees with the signed one in
	 * its first byte, and one that agrees in its last: the whole hash
	 * is compared, not a part of it. */
	{
		unsigned char want[32], h[32];
		char alt[64];
		int k, found_first = 0, found_last = 0;

		gs_crypto_hash(want, 32, RESULTS, strlen(RESULTS), NULL, 0);
		for (k = 0; k < 100000 && !(found_first && found_last); k++) {
			snprintf(alt, sizeof alt, "[{\"n\":%d}]", k);
			gs_crypto_hash(h, 32, alt, strlen(alt), NULL, 0);
			if ((!found_first && h[0] == want[0]) ||
			    (!found_last && h[31] == want[31])) {
				found_first |= h[0] == want[0];
				found_last |= h[31] == want[31];
				assert_int_equal(gs_receipt_verify(&got, b,
				    sizeof b, alt, strlen(alt), PK),
				    GS_EBADSIG);
			}
		}
		assert_true(found_first && found_last);
	}
	/* Wrong lengths. */
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b - 1, RESULTS,
	    strlen(RESULTS), PK), GS_EPROTOCOL);
	assert_int_equal(gs_receipt_verify(&got, b, 0, RESULTS,
	    strlen(RESULTS), PK), GS_EPROTOCOL);
	/* Signed by the right key but an unknown status. */
	b[112] = 9;
	assert_int_equal(gs_crypto_sign(b + 145, b, 145, SK), GS_OK);
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b, RESULTS,
	    strlen(RESULTS), PK), GS_EPROTOCOL);
}

static void
test_match(void **state)
{
	struct gs_receipt sent, got;
	size_t i;

	(void)state;
	sample(&sent);
	got = sent;
	/* Counts, time and status are not identity. */
	got.applied = 0;
	got.server_time = 1;
	assert_int_equal(gs_receipt_match(&got, &sent), GS_OK);
	/* Every byte of every id and of the hash counts (a comparison of
	 * a prefix only was a mutant that survived: tests/MUTANTS.md). */
	for (i = 0; i < 16; i++) {
		got = sent;
		got.deployment[i] ^= 1;
		assert_int_equal(gs_receipt_match(&got, &sent), GS_EPROTOCOL);
		got = sent;
		got.device[i] ^= 1;
		assert_int_equal(gs_receipt_match(&got, &sent), GS_EPROTOCOL);
		got = sent;
		got.batch[i] ^= 1;
		assert_int_equal(gs_receipt_match(&got, &sent), GS_EPROTOCOL);
	}
	for (i = 0; i < 32; i++) {
		got = sent;
		got.envelope_hash[i] ^= 0x80;
		assert_int_equal(gs_receipt_match(&got, &sent), GS_EPROTOCOL);
	}
	got = sent;
	got.seq = 8;
	assert_int_equal(gs_receipt_match(&got, &sent), GS_EPROTOCOL);
	assert_non_null(strstr(gs_errmsg(GS_EPROTOCOL), "seq 8"));
	got = sent;
	got.envelope_hash[31] ^= 1;
	assert_int_equal(gs_receipt_match(&got, &sent), GS_EPROTOCOL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_every_bit),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_match),
	};
	unsigned char s[32];

	if (gs_crypto_init() != GS_OK)
		return 1;
	memset(s, 5, 32);
	gs_crypto_sign_seed_keypair(PK, SK, s);
	memset(s, 6, 32);
	gs_crypto_sign_seed_keypair(OPK, OSK, s);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
