/*
 * sync-vectors.c - the frozen wire test vectors in tests/data/vectors.
 *
 * Everything is computed here from fixed seeds (never from a clock or a
 * random source), through the same functions the programs use, and
 * compared byte for byte with the committed files: a change to any byte
 * on the wire fails this test.  The committed envelopes are also opened
 * with the committed keys, which checks the reading side independently of
 * zlib's exact deflate output.
 *
 *	GS_WRITE_VECTORS=1 build/tests/sync-vectors    rewrites the files
 *
 * Do that only for a deliberate wire change, with a new version number.
 * The directory is $GS_TOP/tests/data/vectors, or ./tests/data/vectors.
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
#include "core/util.h"
#include "crypto.h"
#include "enroll.h"
#include "envelope.h"
#include "receipt.h"
#include "uuid.h"

/* ------------------------------------------------------- fixed inputs */

static unsigned char plat_kx_pk[32], plat_kx_sk[32];
static unsigned char receipt_pk[32], receipt_sk[64];
static unsigned char dev_pk[32], dev_sk[64];
static unsigned char deployment[16], device[16];

static void
fill(unsigned char *p, size_t n, unsigned char v)
{
	memset(p, v, n);
}

static void
keys(void)
{
	unsigned char seed[32];

	fill(seed, 32, 0x11);
	gs_crypto_kx_seed_keypair(plat_kx_pk, plat_kx_sk, seed);
	fill(seed, 32, 0x22);
	gs_crypto_sign_seed_keypair(receipt_pk, receipt_sk, seed);
	fill(seed, 32, 0x33);
	gs_crypto_sign_seed_keypair(dev_pk, dev_sk, seed);
	assert_int_equal(gs_hex_decode(deployment, 16,
	    "00112233445566778899aabbccddeeff"), GS_OK);
	assert_int_equal(gs_uuid_parse("0190a6e2-0000-7000-8000-00000000d001",
	    device), GS_OK);
}

/* ----------------------------------------------------- vector files */

struct vec {
	struct gs_buf text; /* "name: value\n" lines */
};

static void
vec_init(struct vec *v)
{
	gs_buf_init(&v->text, 1 << 20);
}

static void
put_hex(struct vec *v, const char *name, const void *p, size_t n)
{
	char *h = gs_malloc(2 * n + 1);

	assert_non_null(h);
	gs_hex_encode(h, p, n);
	assert_int_equal(gs_buf_printf(&v->text, "%s: %s\n", name, h), GS_OK);
	gs_free(h);
}

static void
put_str(struct vec *v, const char *name, const char *s)
{
	assert_int_equal(gs_buf_printf(&v->text, "%s: %s\n", name, s), GS_OK);
}

static void
put_u64(struct vec *v, const char *name, uint64_t x)
{
	assert_int_equal(gs_buf_printf(&v->text, "%s: %llu\n", name,
	    (unsigned long long)x), GS_OK);
}

static const char *
dir(void)
{
	static char path[1024];
	const char *top = getenv("GS_TOP");

	snprintf(path, sizeof path, "%s%stests/data/vectors",
	    top ? top : ".", "/");
	return path;
}

static char *
slurp(const char *name, size_t *len)
{
	char path[1200];
	FILE *f;
	char *p;
	long n;

	snprintf(path, sizeof path, "%s/%s", dir(), name);
	if ((f = fopen(path, "rb")) == NULL)
		fail_msg("cannot read %s (set GS_TOP, or run from the top "
		    "directory)", path);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	p = gs_malloc((size_t)n + 1);
	assert_non_null(p);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	p[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return p;
}

/* Writes (GS_WRITE_VECTORS set) or compares the named file. */
static void
settle(const char *name, const void *data, size_t len)
{
	char path[1200];
	char *old;
	size_t oldlen;

	if (getenv("GS_WRITE_VECTORS") != NULL) {
		FILE *f;

		snprintf(path, sizeof path, "%s/%s", dir(), name);
		assert_non_null(f = fopen(path, "wb"));
		assert_int_equal(fwrite(data, 1, len, f), len);
		assert_int_equal(fclose(f), 0);
		return;
	}
	old = slurp(name, &oldlen);
	if (oldlen != len || memcmp(old, data, len) != 0)
		fail_msg("%s differs from what this build produces: the wire "
		    "format changed", name);
	gs_free(old);
}

/* The value of "name: value" in a committed vector file. */
static char *
field(const char *text, const char *name)
{
	size_t n = strlen(name);
	const char *p = text;

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, n) == 0 && p[n] == ':' && p[n + 1] == ' ') {
			const char *e = strchr(p, '\n');

			return gs_strndup(p + n + 2, (size_t)(e - p - n - 2));
		}
		p = strchr(p, '\n');
		if (p != NULL)
			p++;
	}
	fail_msg("no field %s", name);
	return NULL;
}

static unsigned char *
field_bin(const char *text, const char *name, size_t *n)
{
	char *h = field(text, name);
	unsigned char *b;

	*n = strlen(h) / 2;
	b = gs_malloc(*n + 1);
	assert_non_null(b);
	assert_int_equal(gs_hex_decode(b, *n, h), GS_OK);
	gs_free(h);
	return b;
}

/* ------------------------------------------------------------ vectors */

static void
test_keys(void **state)
{
	struct vec v;
	unsigned char kid[8];

	(void)state;
	vec_init(&v);
	put_str(&v, "# seeds", "crypto_kx_seed_keypair / "
	    "crypto_sign_seed_keypair");
	put_str(&v, "platform_batch_seed", "11 x 32");
	put_hex(&v, "platform_batch_pk", plat_kx_pk, 32);
	put_hex(&v, "platform_batch_sk", plat_kx_sk, 32);
	gs_crypto_key_id(kid, plat_kx_pk, 32);
	put_hex(&v, "platform_batch_kid", kid, 8);
	put_str(&v, "platform_receipt_seed", "22 x 32");
	put_hex(&v, "platform_receipt_pk", receipt_pk, 32);
	gs_crypto_key_id(kid, receipt_pk, 32);
	put_hex(&v, "platform_receipt_kid", kid, 8);
	put_str(&v, "device_seed", "33 x 32");
	put_hex(&v, "device_pk", dev_pk, 32);
	gs_crypto_key_id(kid, dev_pk, 32);
	put_hex(&v, "device_kid", kid, 8);
	put_hex(&v, "deployment", deployment, 16);
	put_hex(&v, "device_id", device, 16);
	settle("keys.txt", v.text.data, v.text.len);
	gs_buf_release(&v.text);
}

static void
batch_plain(struct gs_buf *out, int which, const unsigned char batch[16],
    uint64_t seq)
{
	struct gs_batch_header h;
	struct gs_change c;

	gs_buf_init(out, 1 << 20);
	memset(&h, 0, sizeof h);
	h.v = 1;
	memcpy(h.deployment, deployment, 16);
	memcpy(h.device, device, 16);
	memcpy(h.batch, batch, 16);
	h.seq = seq;
	h.count = which == 1 ? 2 : 1;
	assert_int_equal(gs_batch_encode_header(out, &h), GS_OK);

	gs_change_init(&c);
	gs_strlcpy(c.type, "person", sizeof c.type);
	c.form_version = 1;
	gs_strlcpy(c.grid, "440106-TH-01", sizeof c.grid);
	gs_strlcpy(c.author, "w042", sizeof c.author);
	if (which == 1) {
		gs_strlcpy(c.change_id, "0190a6e2-0001-7000-8000-0000000c0001",
		    37);
		gs_strlcpy(c.uuid, "0190a6e2-0001-7000-8000-0000000a0001", 37);
		c.created_at = c.updated_at = 1764140600000;
		c.fields = json_pack("{s:s,s:s,s:s,s:s,s:f,s:n}",
		    "name", "张三", "pop_type", "REGISTERED", "id_number",
		    "11010519491231002X", "sex", "1", "lat", 23.12911,
		    "former_name");
		assert_int_equal(gs_batch_encode_change(out, &c), GS_OK);
		gs_change_release(&c);

		gs_strlcpy(c.change_id, "0190a6e2-0002-7000-8000-0000000c0002",
		    37);
		gs_strlcpy(c.uuid, "0190a6e2-0000-7000-8000-0000000a0000", 37);
		c.base_rev = 3;
		c.deleted = 1;
		c.created_at = 1764140000000;
		c.updated_at = 1764140610000;
		c.reason = gs_strdup("重复登记 (duplicate)");
		assert_int_equal(gs_batch_encode_change(out, &c), GS_OK);
		gs_change_release(&c);
	} else {
		gs_strlcpy(c.change_id, "0190a6e2-0003-7000-8000-0000000c0003",
		    37);
		gs_strlcpy(c.uuid, "0190a6e2-0001-7000-8000-0000000a0001", 37);
		c.base_rev = 1;
		c.created_at = 1764140600000;
		c.updated_at = 1764140700000;
		c.fields = json_pack("{s:s}", "phone", "13800138000");
		assert_int_equal(gs_batch_encode_change(out, &c), GS_OK);
		gs_change_release(&c);
	}
}

/* The seq of envelope vector `which`: 3 is suite 2's first batch. */
static uint64_t
vector_seq(int which)
{
	return which == 3 ? 1 : (uint64_t)which;
}

/* Seals vector `which` (1 and 2: a chain in suite 1; 3: batch 1's
 * changes in suite 2, the signature over the ciphertext's BLAKE2b-512),
 * writes/compares its files, and returns the envelope hash for the
 * chain. */
static void
envelope_vector(int which, const unsigned char prev[32],
    unsigned char hash_out[32])
{
	static const char *const batch_ids[] = {
		"0190a6e2-0000-7000-8000-00000000b001",
		"0190a6e2-0000-7000-8000-00000000b002",
		"0190a6e2-0000-7000-8000-00000000b003",
	};
	struct gs_seal_params p;
	struct gs_buf plain, env;
	struct vec v;
	unsigned char eph_seed[32], nonce[24], hash[32];
	char name[64];
	int content = which == 3 ? 1 : which;

	memset(&p, 0, sizeof p);
	memcpy(p.deployment, deployment, 16);
	memcpy(p.device, device, 16);
	assert_int_equal(gs_uuid_parse(batch_ids[which - 1], p.batch), GS_OK);
	p.seq = vector_seq(which);
	memcpy(p.prev_hash, prev, 32);
	p.created_at = 1764140673123 + (int64_t)(which - 1) * 100000;
	p.count = content == 1 ? 2 : 1;
	p.platform_pk = plat_kx_pk;
	p.device_sk = dev_sk;
	p.level = 6;
	p.suite = which == 3 ? GS_ENV_SUITE_PH : GS_ENV_SUITE;
	fill(eph_seed, 32, (unsigned char)(0x43 + which));
	fill(nonce, 24, (unsigned char)(0x54 + which));

	batch_plain(&plain, content, p.batch, p.seq);
	snprintf(name, sizeof name, "batch-%d.ndjson", which);
	settle(name, plain.data, plain.len);

	gs_buf_init(&env, GS_ENV_MAX_ENVELOPE);
	assert_int_equal(gs_envelope_seal_det(&env, &p, plain.data, plain.len,
	    eph_seed, nonce), GS_OK);
	gs_envelope_hash(hash, env.data, env.len);

	vec_init(&v);
	put_str(&v, "# inputs", which == 3 ? "keys.txt; plaintext "
	    "batch-3.ndjson; deflate level 6; suite 2" : "keys.txt; plaintext "
	    "batch-N.ndjson; deflate level 6");
	put_hex(&v, "deployment", p.deployment, 16);
	put_hex(&v, "device", p.device, 16);
	put_hex(&v, "batch", p.batch, 16);
	put_u64(&v, "seq", p.seq);
	put_hex(&v, "prev_hash", p.prev_hash, 32);
	put_u64(&v, "created_at", (uint64_t)p.created_at);
	put_u64(&v, "count", p.count);
	put_hex(&v, "eph_seed", eph_seed, 32);
	put_hex(&v, "nonce", nonce, 24);
	put_u64(&v, "plain_len", plain.len);
	put_str(&v, "# outputs", "header 200 bytes || ciphertext || "
	    "signature 64 bytes");
	put_hex(&v, "header", env.data, GS_ENV_HDRBYTES);
	put_hex(&v, "ciphertext", env.data + GS_ENV_HDRBYTES,
	    env.len - GS_ENV_HDRBYTES - 64);
	put_hex(&v, "signature", env.data + env.len - 64, 64);
	put_hex(&v, "envelope", env.data, env.len);
	put_hex(&v, "envelope_hash", hash, 32);
	snprintf(name, sizeof name, "envelope-%d.txt", which);
	settle(name, v.text.data, v.text.len);
	memcpy(hash_out, hash, 32);
	gs_buf_release(&v.text);
	gs_buf_release(&env);
	gs_buf_release(&plain);
}

static void
test_envelopes(void **state)
{
	unsigned char zero[32] = { 0 }, h1[32], h2[32];

	(void)state;
	envelope_vector(1, zero, h1);
	envelope_vector(2, h1, h2);
	envelope_vector(3, zero, h2);
}

/* The committed envelopes open with the committed keys and give the
 * committed plaintexts: the reading side, whatever zlib would write. */
static void
test_open_committed(void **state)
{
	int which;

	(void)state;
	if (getenv("GS_WRITE_VECTORS") != NULL)
		skip();
	for (which = 1; which <= 3; which++) {
		char name[64], *txt, *plain;
		unsigned char *env, *hash, mine[32];
		size_t n, hn, tn, pn;
		struct gs_envelope_header h;
		struct gs_buf out;
		struct gs_batch b;

		snprintf(name, sizeof name, "envelope-%d.txt", which);
		txt = slurp(name, &tn);
		env = field_bin(txt, "envelope", &n);
		hash = field_bin(txt, "envelope_hash", &hn);
		snprintf(name, sizeof name, "batch-%d.ndjson", which);
		plain = slurp(name, &pn);

		gs_envelope_hash(mine, env, n);
		assert_memory_equal(mine, hash, 32);
		assert_int_equal(gs_envelope_parse(&h, env, n, NULL), GS_OK);
		assert_int_equal(h.seq, vector_seq(which));
		assert_int_equal(h.suite, which == 3 ? 2 : 1);
		assert_int_equal(gs_envelope_check_deployment(&h, deployment),
		    GS_OK);
		assert_int_equal(gs_envelope_verify(&h, env, n, dev_pk), GS_OK);
		gs_buf_init(&out, GS_ENV_MAX_PLAIN);
		assert_int_equal(gs_envelope_open(&out, &h, env, n, plat_kx_pk,
		    plat_kx_sk), GS_OK);
		assert_int_equal(out.len, pn);
		assert_memory_equal(out.data, plain, pn);
		assert_int_equal(gs_batch_decode(&b, out.data, out.len, 0),
		    GS_OK);
		assert_int_equal(gs_batch_check_envelope(&b.hdr, h.deployment,
		    h.device, h.batch, h.seq, h.count), GS_OK);
		gs_batch_release(&b);
		gs_buf_release(&out);
		gs_free(txt);
		gs_free(env);
		gs_free(hash);
		gs_free(plain);
	}
}

static void
test_receipt(void **state)
{
	static const char results[] =
	    "[{\"change_id\":\"0190a6e2-0002-7000-8000-0000000c0002\","
	    "\"uuid\":\"0190a6e2-0000-7000-8000-0000000a0000\","
	    "\"status\":\"conflict\",\"rev\":5,\"reasons\":[]}]";
	struct gs_receipt r, got;
	unsigned char b[GS_RECEIPT_BYTES];
	struct vec v;
	char *txt;
	size_t tn;

	(void)state;
	memset(&r, 0, sizeof r);
	memcpy(r.deployment, deployment, 16);
	memcpy(r.device, device, 16);
	assert_int_equal(gs_uuid_parse("0190a6e2-0000-7000-8000-00000000b001",
	    r.batch), GS_OK);
	r.seq = 1;
	/* The envelope hash of envelope-1 (computed, not copied, so this
	 * vector follows the envelope's). */
	{
		unsigned char zero[32] = { 0 };

		envelope_vector(1, zero, r.envelope_hash);
	}
	r.applied = 1;
	r.conflicted = 1;
	r.quarantined = 0;
	r.server_time = 1764140680000;
	r.status = GS_RECEIPT_ACCEPTED;
	assert_int_equal(gs_receipt_sign(b, &r, results, strlen(results),
	    receipt_sk), GS_OK);
	memset(&got, 0, sizeof got);
	assert_int_equal(gs_receipt_verify(&got, b, sizeof b, results,
	    strlen(results), receipt_pk), GS_OK);

	vec_init(&v);
	put_str(&v, "# inputs", "keys.txt (platform_receipt); envelope-1");
	put_str(&v, "results", results);
	put_hex(&v, "results_hash", r.results_hash, 32);
	put_hex(&v, "receipt", b, sizeof b);
	settle("receipt-1.txt", v.text.data, v.text.len);
	gs_buf_release(&v.text);

	if (getenv("GS_WRITE_VECTORS") == NULL) {
		unsigned char *rb;
		char *res;
		size_t n;

		txt = slurp("receipt-1.txt", &tn);
		rb = field_bin(txt, "receipt", &n);
		res = field(txt, "results");
		assert_int_equal(gs_receipt_verify(&got, rb, n, res,
		    strlen(res), receipt_pk), GS_OK);
		assert_int_equal(gs_receipt_match(&got, &r), GS_OK);
		gs_free(rb);
		gs_free(res);
		gs_free(txt);
	}
}

static void
test_enroll(void **state)
{
	struct gs_enroll_code c, d;
	struct gs_buf code;
	struct vec v;
	unsigned char proof[32], sig[64], root_seed[32], root_pk[32],
	    root_sk[64];

	(void)state;
	memset(&c, 0, sizeof c);
	gs_strlcpy(c.url, "http://127.0.0.1:8443", sizeof c.url);
	assert_int_equal(gs_hex_decode(c.token_id, 16,
	    "0190a6e2000070008000000000000e01"), GS_OK);
	fill(c.token, 32, 0x66);
	/* The code pins the platform's root key (seed 0x77 x 32). */
	fill(root_seed, 32, 0x77);
	gs_crypto_sign_seed_keypair(root_pk, root_sk, root_seed);
	gs_enroll_fingerprint(c.fingerprint, deployment, root_pk);
	gs_buf_init(&code, GS_ENROLL_CODE_MAX);
	assert_int_equal(gs_enroll_code_encode(&code, &c), GS_OK);
	assert_int_equal(gs_enroll_code_decode(&d, code.data), GS_OK);
	assert_memory_equal(&c, &d, sizeof c);
	gs_enroll_proof(proof, c.token, c.token_id, device, dev_pk);
	assert_int_equal(gs_enroll_self_sign(sig, c.token_id, device, dev_sk),
	    GS_OK);

	vec_init(&v);
	put_str(&v, "# inputs", "keys.txt");
	put_str(&v, "url", c.url);
	put_hex(&v, "token_id", c.token_id, 16);
	put_hex(&v, "token", c.token, 32);
	put_hex(&v, "root_seed", root_seed, 32);
	put_hex(&v, "root_pk", root_pk, 32);
	put_hex(&v, "fingerprint", c.fingerprint, 16);
	put_str(&v, "code", code.data);
	put_hex(&v, "proof", proof, 32);
	put_hex(&v, "self_sig", sig, 64);
	settle("enroll-1.txt", v.text.data, v.text.len);
	gs_buf_release(&v.text);
	gs_buf_release(&code);
}

/* docs/PROTOCOL.md lists every row of the error table as it is in
 * sync/core/error.h ("| 13 | `bad_signature` | 401 | 65 |"): the codes are
 * part of the protocol, so the document must follow the table. */
static void
test_protocol_error_table(void **state)
{
	char path[1200], row[200], *doc;
	size_t n;
	int i;

	(void)state;
	snprintf(path, sizeof path, "../../../docs/PROTOCOL.md");
	doc = slurp(path, &n);
	for (i = 0; i < GS_ERROR_COUNT_; i++) {
		if (gs_error_code(i)[0] == 'u' &&
		    strcmp(gs_error_code(i), "unknown") == 0)
			continue;
		snprintf(row, sizeof row, "| %d | `%s` | %d | %d |", i,
		    gs_error_code(i), gs_error_http(i), gs_error_exit(i));
		if (strstr(doc, row) == NULL)
			fail_msg("docs/PROTOCOL.md section 6 lacks the error "
			    "table row \"%s\": add it", row);
	}
	gs_free(doc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_envelopes),
		cmocka_unit_test(test_open_committed),
		cmocka_unit_test(test_receipt),
		cmocka_unit_test(test_enroll),
		cmocka_unit_test(test_protocol_error_table),
	};

	if (gs_crypto_init() != GS_OK)
		return 1;
	keys();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
