/*
 * agent-crypt.c - personal data at rest (issue 6): sealing and opening a
 * record's pii (and refusing a sealed value moved to another record or
 * form version), masks, the passphrase policy, protect/lock/unlock, the
 * failed-unlock limit destroying the key, the keystore hook, the blind
 * index, edits of sealed records, the raw database file holding no pii,
 * and the retention purge.
 */
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

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypt.h"
#include "crypto.h"
#include "db.h"
#include "gridagent.h"
#include "keys.h"
#include "schema.h"
#include "store.h"
#include "uuid.h"

static const char PASS[] = "correct horse battery staple";
static const char PHONE_EDIT[] = "{\"phone\":\"13912345678\"}";
static char home[64];
static struct ag_store *st;

static void
idcard(char out[19], int seq)
{
	static const int w[17] = { 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10,
		5, 8, 4, 2 };
	static const char map[] = "10X98765432";
	int i, sum = 0;

	snprintf(out, 19, "44030719800101%03d", seq % 1000);
	for (i = 0; i < 17; i++)
		sum += (out[i] - '0') * w[i];
	out[17] = map[sum % 11];
	out[18] = '\0';
}

static void
person(char *buf, size_t n, const char *name, int seq)
{
	char id[19];

	idcard(id, seq);
	snprintf(buf, n, "{\"name\":\"%s\",\"pop_type\":\"REGISTERED\","
	    "\"id_number\":\"%s\",\"phone\":\"138%08d\","
	    "\"address\":\"葵涌街道%d号\"}", name, id, seq, seq);
}

/* The first n bytes of s, NUL-terminated, in buf. */
static const char *
strndup_tmp(char *buf, size_t cap, const char *s, size_t n)
{
	snprintf(buf, cap, "%.*s", (int)n, s);
	return buf;
}

static void
exec(const char *sql)
{
	assert_int_equal(gs_db_exec(ag_store_db(st), sql), GS_OK);
}

static int64_t
q_int(const char *sql)
{
	struct gs_stmt *s = NULL;
	int64_t v = -1;

	assert_int_equal(gs_stmt_prepare(ag_store_db(st), sql, &s), GS_OK);
	assert_int_equal(gs_stmt_one_int64(s, -1, &v), GS_OK);
	gs_stmt_finalize(s);
	return v;
}

/* 1 when needle occurs anywhere in the file's bytes. */
static int
file_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	size_t n = strlen(needle), len = 0, cap = 1 << 20, got;
	char *buf;
	int found = 0;

	if (f == NULL)
		return 0;
	buf = malloc(cap);
	while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
		len += got;
		if (len == cap)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	for (size_t i = 0; i + n <= len && !found; i++)
		found = memcmp(buf + i, needle, n) == 0;
	free(buf);
	return found;
}

static int
setup(void **state)
{
	(void)state;
	snprintf(home, sizeof(home), "/tmp/gs-agent-crypt.XXXXXX");
	if (mkdtemp(home) == NULL)
		return -1;
	if (ag_store_init(home, "440307001001001", "w-9", &st) != GS_OK)
		return -1;
	return ag_store_protect(st, PASS, strlen(PASS)) == GS_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	ag_store_close(st);
	st = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", home);
	return system(cmd) == 0 ? 0 : -1;
}

/* ------------------------------------------------------------ sealing */

static void
test_seal_open(void **state)
{
	static const unsigned char dek[AG_DEK_BYTES] = { 1, 2, 3 };
	const struct gs_form *f = gs_schema_form(ag_store_schema(st), "person");
	struct ag_crypt *c = NULL;
	json_t *o, *o2;
	const char *u1 = "01a216d7-02cf-7120-a376-e9fcda75be79";
	const char *u2 = "01a216d7-02cf-7122-aea3-82dd7b9fdf81";
	char *t;

	(void)state;
	assert_int_equal(ag_crypt_new(dek, &c), GS_OK);
	o = json_pack("{s:s,s:s,s:s}", "name", "陈小明", "pop_type",
	    "REGISTERED", "id_number", "440307198001010011");
	assert_int_equal(ag_crypt_seal(c, f, u1, 1, o), GS_OK);
	assert_null(json_object_get(o, "name"));
	assert_null(json_object_get(o, "id_number"));
	assert_string_equal(json_string_value(json_object_get(o, "pop_type")),
	    "REGISTERED");
	t = json_dumps(o, JSON_COMPACT);
	assert_null(strstr(t, "陈"));
	assert_null(strstr(t, "440307198001010011"));
	/* Sealing twice is a bug the sealer refuses. */
	assert_int_equal(ag_crypt_seal(c, f, u1, 1, o), GS_EINVAL);
	/* Moved to another record, or another form version: refused. */
	o2 = json_loads(t, 0, NULL);
	assert_int_equal(ag_crypt_open(c, u2, 1, o2), GS_EDECRYPT);
	assert_null(strstr(gs_errmsg(GS_EDECRYPT), "440307"));
	assert_int_equal(ag_crypt_open(c, u1, 2, o2), GS_EDECRYPT);
	/* Locked (no sealer): GS_EPERM, says how to unlock. */
	assert_int_equal(ag_crypt_open(NULL, u1, 1, o2), GS_EPERM);
	assert_non_null(strstr(gs_errmsg(GS_EPERM), "unlock"));
	/* The right record opens. */
	assert_int_equal(ag_crypt_open(c, u1, 1, o2), GS_OK);
	assert_string_equal(json_string_value(json_object_get(o2, "name")),
	    "陈小明");
	assert_null(json_object_get(o2, AG_PII_MEMBER));
	json_decref(o2);
	/* A flipped ciphertext character: refused. */
	{
		char *p = strstr(t, "\"$pii\":\"") + 8;

		p[10] = p[10] == 'A' ? 'B' : 'A';
		o2 = json_loads(t, 0, NULL);
		assert_int_equal(ag_crypt_open(c, u1, 1, o2), GS_EDECRYPT);
		json_decref(o2);
	}
	free(t);
	json_decref(o);
	ag_crypt_free(c);
}

/*
 * The opener keeps the subkey of the last nonce prefix it met (crypt.c,
 * struct ag_crypt): boxes of three sealers of one key (three prefixes),
 * and of the opener itself, opened in a shuffled order, all open, each
 * to its own text; a box whose prefix is another sealer's, or whose
 * tail is changed, does not, and the next good one still does.
 */
static void
test_open_many_sealers(void **state)
{
	static const unsigned char dek[AG_DEK_BYTES] = { 7, 7, 7 };
	const struct gs_form *f = gs_schema_form(ag_store_schema(st), "person");
	const char *u = "01a216d7-02cf-7120-a376-e9fcda75be79";
	struct ag_crypt *c[4] = { NULL, NULL, NULL, NULL };
	struct gs_buf box[4][3], plain;
	char name[32], want[64];
	const char *keys[AG_PII_MAX_KEYS];
	size_t nkeys;
	int i, j, k, order;

	(void)state;
	for (i = 0; i < 4; i++)
		assert_int_equal(ag_crypt_new(dek, &c[i]), GS_OK);
	for (i = 0; i < 4; i++)
		for (j = 0; j < 3; j++) {
			json_t *o;

			snprintf(name, sizeof name, "name %d %d", i, j);
			o = json_pack("{s:s,s:s}", "name", name, "pop_type",
			    "REGISTERED");
			gs_buf_init(&box[i][j], 1 << 16);
			assert_int_equal(ag_crypt_seal_text(c[i], f, NULL, u, 1,
			    o, &box[i][j], keys, &nkeys), GS_OK);
			assert_int_equal(nkeys, 1);
			json_decref(o);
		}
	gs_buf_init_secret(&plain, 1 << 16);
	/* Opened by c[3]: its own boxes, then the others' interleaved. */
	for (order = 0; order < 60; order++) {
		i = (order * 7 + order / 12) % 4;
		j = (order * 5) % 3;
		snprintf(want, sizeof want, "{\"name\":\"name %d %d\"}", i, j);
		assert_int_equal(ag_crypt_open_text(c[3], u, 1, box[i][j].data,
		    box[i][j].len, &plain), GS_OK);
		assert_int_equal(plain.len, strlen(want));
		assert_memory_equal(plain.data, want, plain.len);
		if (order % 10 != 9)
			continue;
		/* A box with another sealer's prefix (the first 16 bytes,
		 * 21 characters and 2 bits), then with a changed tail. */
		{
			struct gs_buf bad;
			int other = (i + 1) % 4;

			gs_buf_init(&bad, 1 << 16);
			assert_int_equal(gs_buf_append(&bad, box[i][j].data,
			    box[i][j].len), GS_OK);
			memcpy(bad.data, box[other][j].data, 21);
			assert_int_equal(ag_crypt_open_text(c[3], u, 1, bad.data,
			    bad.len, &plain), GS_EDECRYPT);
			memcpy(bad.data, box[i][j].data, 21);
			k = bad.data[25] == 'A' ? 'B' : 'A';
			bad.data[25] = (char)k;
			assert_int_equal(ag_crypt_open_text(c[3], u, 1, bad.data,
			    bad.len, &plain), GS_EDECRYPT);
			gs_buf_release(&bad);
		}
	}
	gs_buf_release(&plain);
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 3; j++)
			gs_buf_release(&box[i][j]);
		ag_crypt_free(c[i]);
	}
}

/*
 * The table base64 of sealed fields against libsodium's (the seam's):
 * the same text for every length, the same bytes back, and the same
 * refusals (bad character, lone last character, non-zero unused bits,
 * no room).
 */
static void
test_b64_same_as_sodium(void **state)
{
	unsigned char in[300], a[300], b[300];
	char ta[GS_B64_LEN(300)], tb[GS_B64_LEN(300)];
	static const char *const bad[] = { "A", "AB=", "AB C", "AB+/",
		"AAAAB", "AB", "ABC", "Ag", "AAB", "QQ", "QR", "QUJD", "QUI" };
	size_t n, la, lb, i;
	int ra, rb;

	(void)state;
	/* Every byte value at every position of 20 bytes, every length
	 * (the encoder takes six bytes at a time, then three). */
	for (i = 0; i < 20; i++)
		for (n = 0; n < 256; n++) {
			memset(in, 0x5a, 20);
			in[i] = (unsigned char)n;
			for (la = i + 1; la <= 20; la++) {
				assert_int_equal(ag_crypt_b64_encode(ta, in, la),
				    gs_crypto_b64_encode(tb, in, la));
				assert_string_equal(ta, tb);
			}
		}
	gs_random(in, sizeof(in));
	for (n = 0; n <= sizeof(in); n++) {
		assert_int_equal(ag_crypt_b64_encode(ta, in, n),
		    gs_crypto_b64_encode(tb, in, n));
		assert_string_equal(ta, tb);
		la = lb = 9999;
		assert_int_equal(ag_crypt_b64_decode(a, sizeof(a), &la, ta,
		    strlen(ta)), GS_OK);
		assert_int_equal(la, n);
		assert_memory_equal(a, in, n);
		/* One byte short of room: both refuse. */
		if (n > 0) {
			ra = ag_crypt_b64_decode(a, n - 1, &la, ta, strlen(ta));
			rb = gs_crypto_b64_decode(b, n - 1, &lb, tb,
			    strlen(tb));
			assert_int_equal(ra, rb);
			assert_int_not_equal(ra, GS_OK);
		}
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ra = ag_crypt_b64_decode(a, sizeof(a), &la, bad[i],
		    strlen(bad[i]));
		rb = gs_crypto_b64_decode(b, sizeof(b), &lb, bad[i],
		    strlen(bad[i]));
		assert_int_equal(ra == GS_OK, rb == GS_OK);
		if (ra == GS_OK) {
			assert_int_equal(la, lb);
			assert_memory_equal(a, b, la);
		}
	}
	/* Bytes over 0x7f are refused (libsodium 1.0.18's decoder reads
	 * them as letters: "\x80wg" gives it two bytes). */
	assert_int_equal(ag_crypt_b64_decode(a, sizeof(a), &la, "\x80wg", 3),
	    GS_EPARSE);
	assert_int_equal(ag_crypt_b64_decode(a, sizeof(a), &la, "QUJ\xc4", 4),
	    GS_EPARSE);
	/* Every byte value at every place of texts long enough for the
	 * sixteen-at-a-time path (and its blocks' ends): refused exactly
	 * when the byte is outside the alphabet, else libsodium's bytes. */
	for (n = 45; n <= 50; n++) {
		size_t len = strlen((ag_crypt_b64_encode(ta, in, n), ta));
		unsigned v;

		for (i = 0; i < len; i++)
			for (v = 0; v < 256; v++) {
				int in_alpha = (v >= 'A' && v <= 'Z') ||
				    (v >= 'a' && v <= 'z') ||
				    (v >= '0' && v <= '9') || v == '-' ||
				    v == '_';

				memcpy(tb, ta, len + 1);
				tb[i] = (char)v;
				ra = ag_crypt_b64_decode(a, sizeof(a), &la, tb,
				    len);
				if (!in_alpha) {
					assert_int_equal(ra, GS_EPARSE);
					continue;
				}
				rb = gs_crypto_b64_decode(b, sizeof(b), &lb, tb,
				    len);
				assert_int_equal(ra == GS_OK, rb == GS_OK);
				if (ra == GS_OK) {
					assert_int_equal(la, lb);
					assert_memory_equal(a, b, la);
				}
			}
	}
	/* Random short texts from the alphabet's edges and its ASCII
	 * neighbours: the same verdict and bytes as libsodium's. */
	for (i = 0; i < 20000; i++) {
		static const char chars[] = "AQgwBC-_09az+/=. Z`{@[";
		unsigned char pick[13];
		char t[14];
		size_t len;

		gs_random(pick, sizeof(pick));
		len = pick[0] % 13;
		for (n = 0; n < len; n++)
			t[n] = chars[pick[n + 1] % (sizeof(chars) - 1)];
		t[len] = '\0';
		ra = ag_crypt_b64_decode(a, sizeof(a), &la, t, len);
		rb = gs_crypto_b64_decode(b, sizeof(b), &lb, t, len);
		assert_int_equal(ra == GS_OK, rb == GS_OK);
		if (ra == GS_OK) {
			assert_int_equal(la, lb);
			assert_memory_equal(a, b, la);
		}
	}
}

/* Values that need escaping, and a pii value that is not a string,
 * come back as they went in. */
static void
test_seal_escapes(void **state)
{
	static const unsigned char dek[AG_DEK_BYTES] = { 9 };
	const struct gs_form *f = gs_schema_form(ag_store_schema(st), "person");
	struct ag_crypt *c = NULL;
	const char *u = "01a216d7-02cf-7120-a376-e9fcda75be79";
	json_t *o, *want;

	(void)state;
	assert_int_equal(ag_crypt_new(dek, &c), GS_OK);
	o = json_pack("{s:s,s:s,s:s,s:[i,s]}", "name", "陈\"小\\明\x01\n",
	    "pop_type", "REGISTERED", "address", "a/b\tc", "phone", 1, "x");
	want = json_deep_copy(o);
	assert_int_equal(ag_crypt_seal(c, f, u, 1, o), GS_OK);
	assert_null(json_object_get(o, "name"));
	assert_int_equal(ag_crypt_open(c, u, 1, o), GS_OK);
	assert_true(json_equal(o, want));
	json_decref(o);
	json_decref(want);
	ag_crypt_free(c);
}

/* Every ASCII byte, at every offset of a value, is escaped when it must
 * be and comes back as it went in, through both ways of sealing. */
static void
test_seal_every_byte(void **state)
{
	static const unsigned char dek[AG_DEK_BYTES] = { 5 };
	const struct gs_form *f = gs_schema_form(ag_store_schema(st), "person");
	const char *u = "01a216d7-02cf-7120-a376-e9fcda75be79";
	struct ag_crypt *c = NULL;
	const char *keys[AG_PII_MAX_KEYS];
	struct gs_buf out;
	char v[24];
	size_t nkeys;
	int b, pos;
	json_t *o, *want, *o2;

	(void)state;
	assert_int_equal(ag_crypt_new(dek, &c), GS_OK);
	gs_buf_init(&out, 1 << 16);
	for (b = 1; b < 128; b++)
		for (pos = 0; pos < 17; pos++) {
			memset(v, 'a', sizeof(v) - 1);
			v[sizeof(v) - 1] = '\0';
			v[pos] = (char)b;
			o = json_pack("{s:s,s:s}", "pop_type", "REGISTERED",
			    "name", v);
			want = json_deep_copy(o);
			/* Sealed in place... */
			assert_int_equal(ag_crypt_seal(c, f, u, 1, o), GS_OK);
			assert_int_equal(ag_crypt_open(c, u, 1, o), GS_OK);
			assert_true(json_equal(o, want));
			/* ... and apart (the bulk import's way). */
			gs_buf_reset(&out);
			assert_int_equal(ag_crypt_seal_text(c, f, NULL, u, 1,
			    want, &out, keys, &nkeys), GS_OK);
			assert_int_equal(nkeys, 1);
			o2 = json_pack("{s:s#}", AG_PII_MEMBER, out.data,
			    (int)out.len);
			assert_int_equal(ag_crypt_open(c, u, 1, o2), GS_OK);
			assert_true(json_equal(json_object_get(o2, "name"),
			    json_object_get(want, "name")));
			json_decref(o2);
			json_decref(o);
			json_decref(want);
		}
	gs_buf_release(&out);
	ag_crypt_free(c);
}

/* Personal data bigger than the sealer's stack buffers (4 KiB) takes the
 * heap and still comes back whole; the non-pii members keep their order,
 * and the sealed member comes last. */
static void
test_seal_large(void **state)
{
	static const unsigned char dek[AG_DEK_BYTES] = { 7 };
	const struct gs_form *f = gs_schema_form(ag_store_schema(st), "person");
	struct ag_crypt *c = NULL;
	const char *u = "01a216d7-02cf-7120-a376-e9fcda75be79";
	static const char head[] = "{\"pop_type\":\"REGISTERED\",\"sex\":"
	    "\"1\",\"$pii\":\"";
	char big[9000], *t;
	json_t *o, *want;

	(void)state;
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	big[100] = '"';
	assert_int_equal(ag_crypt_new(dek, &c), GS_OK);
	o = json_pack("{s:s,s:s,s:s,s:s}", "pop_type", "REGISTERED", "name",
	    "陈小明", "address", big, "sex", "1");
	want = json_deep_copy(o);
	assert_int_equal(ag_crypt_seal(c, f, u, 1, o), GS_OK);
	assert_null(json_object_get(o, "address"));
	t = json_dumps(o, JSON_COMPACT);
	assert_non_null(t);
	assert_int_equal(strncmp(t, head, strlen(head)), 0);
	/* The address is not there in the clear.  Not "aaaa": four letters
	 * in a row turn up in the base64 of 9 KB of ciphertext about once
	 * in 1,400 runs (it failed so once); 48 cannot. */
	memset(big, 'a', 48);
	big[48] = '\0';
	assert_null(strstr(t, big));
	free(t);
	assert_int_equal(ag_crypt_open(c, u, 1, o), GS_OK);
	assert_true(json_equal(o, want));
	json_decref(o);
	json_decref(want);
	ag_crypt_free(c);
}

/*
 * The bulk import's pii plan (a hash of the form's pii names) says pii
 * for exactly the fields the schema marks pii, in every form, and for no
 * other key (a field name cut short or run on, "$pii", the empty key).
 * A plan of another form is refused.
 */
static void
test_plan_matches_schema(void **state)
{
	const struct gs_schema *sc = ag_store_schema(st);
	const struct gs_form *person = gs_schema_form(sc, "person");
	struct ag_pii_plan *plan = NULL;
	struct gs_buf out;
	const char *keys[AG_PII_MAX_KEYS];
	size_t i, j, nkeys, npii = 0, nid, nidcard = 0;
	char buf[200];
	json_t *o;

	(void)state;
	assert_true(gs_schema_nforms(sc) >= 3);
	for (i = 0; i < gs_schema_nforms(sc); i++) {
		const struct gs_form *f = gs_schema_form_at(sc, i);

		assert_int_equal(ag_crypt_plan_new(f, &plan), GS_OK);
		for (j = 0; j < gs_form_nfields(f); j++) {
			const struct gs_field *fd = gs_form_field_at(f, j);
			const char *name = gs_field_name(fd);
			size_t n = strlen(name);

			assert_int_equal(ag_crypt_plan_is_pii(plan, name, n),
			    gs_field_pii(fd) ? 1 : 0);
			npii += gs_field_pii(fd) ? 1 : 0;
			assert_int_equal(ag_crypt_plan_is_pii(plan, name,
			    n - 1), gs_form_field(f, strndup_tmp(buf,
			    sizeof(buf), name, n - 1)) != NULL &&
			    gs_field_pii(gs_form_field(f, buf)));
			snprintf(buf, sizeof(buf), "%sx", name);
			assert_int_equal(ag_crypt_plan_is_pii(plan, buf, n + 1),
			    gs_form_field(f, buf) != NULL &&
			    gs_field_pii(gs_form_field(f, buf)));
		}
		/* Its id-number list: the form's pii idcard fields, in
		 * order. */
		nid = 0;
		for (j = 0; j < gs_form_nfields(f); j++) {
			const struct gs_field *fd = gs_form_field_at(f, j);

			if (gs_field_kind(fd) != GS_KIND_IDCARD ||
			    !gs_field_pii(fd))
				continue;
			assert_non_null(ag_crypt_plan_idcard(plan, nid));
			assert_string_equal(ag_crypt_plan_idcard(plan, nid++),
			    gs_field_name(fd));
			nidcard++;
		}
		assert_null(ag_crypt_plan_idcard(plan, nid));
		assert_int_equal(ag_crypt_plan_is_pii(plan, "$pii", 4), 0);
		assert_int_equal(ag_crypt_plan_is_pii(plan, "", 0), 0);
		ag_crypt_plan_free(plan);
		plan = NULL;
	}
	assert_true(npii >= 10);
	assert_true(nidcard >= 1);
	/* A plan of another form: refused, nothing written. */
	assert_int_equal(ag_crypt_plan_new(gs_schema_form(sc, "house"), &plan),
	    GS_OK);
	gs_buf_init(&out, 1 << 16);
	o = json_pack("{s:s}", "name", "陈小明");
	assert_int_equal(ag_crypt_seal_text(ag_store_crypt(st), person, plan,
	    "01a216d7-02cf-7120-a376-e9fcda75be79", 1, o, &out, keys, &nkeys),
	    GS_EINTERNAL);
	assert_int_equal(out.len, 0);
	json_decref(o);
	gs_buf_release(&out);
	ag_crypt_plan_free(plan);
}

/* The length of a record's stored fields text. */
static int64_t
stored_len(const char *uuid)
{
	struct gs_stmt *s = NULL;
	int64_t n = -1;

	assert_int_equal(gs_stmt_prepare(ag_store_db(st),
	    "SELECT length(fields) FROM record WHERE uuid = ?1", &s), GS_OK);
	assert_int_equal(gs_stmt_bind_text(s, 1, uuid), GS_OK);
	assert_int_equal(gs_stmt_one_int64(s, -1, &n), GS_OK);
	gs_stmt_finalize(s);
	return n;
}

/* The stored fields text of a record, with its sealed member's base64
 * cut out (the ciphertext differs from seal to seal): malloc'd. */
static char *
stored_shape(const char *uuid)
{
	struct gs_stmt *s = NULL;
	const char *t, *p, *e;
	char *out;

	assert_int_equal(gs_stmt_prepare(ag_store_db(st),
	    "SELECT fields FROM record WHERE uuid = ?1", &s), GS_OK);
	assert_int_equal(gs_stmt_bind_text(s, 1, uuid), GS_OK);
	assert_int_equal(gs_stmt_step(s), GS_ROW);
	t = gs_stmt_text(s, 0);
	assert_non_null(t);
	p = strstr(t, "\"$pii\":\"");
	assert_non_null(p);
	p += 8;
	e = strchr(p, '"');
	assert_non_null(e);
	/* The sealed member is the last one. */
	assert_string_equal(e, "\"}");
	out = malloc(strlen(t) + 1);
	memcpy(out, t, (size_t)(p - t));
	strcpy(out + (p - t), e);
	gs_stmt_finalize(s);
	return out;
}

static void
take_uuid(void *ctx, const char *uuid)
{
	char (*u)[AG_UUID_LEN + 1] = ctx;
	int i = 0;

	while (u[i][0] != '\0')
		i++;
	snprintf(u[i], AG_UUID_LEN + 1, "%s", uuid);
}

/*
 * A bulk import writes a record's stored text straight from the parsed
 * object (put_stored, ag_crypt_seal_text); a single save seals the object
 * and encodes it (ag_crypt_seal).  Both give the same text but for the
 * ciphertext: the non-pii members in their order, escaped alike, and the
 * sealed member last, whatever the order of the pii members among them.
 */
static void
test_import_text_same_as_save(void **state)
{
	static const char *const lines[] = {
		"{\"pop_type\":\"REGISTERED\",\"name\":\"陈\\\"一\","
		"\"ethnic\":\"01\",\"id_number\":\"%s\",\"employer\":"
		"\"a\\\\b \\\"c\\\"\",\"phone\":\"13800000001\",\"marital\":\"20\","
		"\"address\":\"葵涌街道1号\"}",
		"{\"name\":\"陈二\",\"id_number\":\"%s\",\"phone\":"
		"\"13800000002\",\"address\":\"葵涌街道2号\",\"pop_type\":"
		"\"REGISTERED\",\"education\":\"40\"}",
		"{\"pop_type\":\"REGISTERED\",\"education\":\"40\",\"name\":"
		"\"陈三\",\"id_number\":\"%s\",\"phone\":\"13800000003\","
		"\"address\":\"葵涌街道3号\"}",
		/* Null members are absent: neither stored nor sealed. */
		"{\"name\":\"陈四\",\"phone\":null,\"pop_type\":\"REGISTERED\","
		"\"education\":null,\"id_number\":\"%s\",\"address\":"
		"\"葵涌街道4号\",\"marital\":null}",
	};
	char buf[4][600], all[2600], id[19];
	char iu[4][AG_UUID_LEN + 1], su[AG_UUID_LEN + 1];
	char *a, *b;
	size_t len = 0, n = 0;
	int i;

	(void)state;
	memset(iu, 0, sizeof(iu));
	for (i = 0; i < 4; i++) {
		idcard(id, 700 + i);
		snprintf(buf[i], sizeof(buf[i]), lines[i], id);
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s\n",
		    buf[i]);
	}
	assert_int_equal(ag_import_ndjson(st, "person", all, len, take_uuid,
	    iu, &n), GS_OK);
	assert_int_equal(n, 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(ag_collect(st, "person", buf[i],
		    strlen(buf[i]), su), GS_OK);
		a = stored_shape(iu[i]);
		b = stored_shape(su);
		assert_string_equal(a, b);
		/* The sealed text of as many bytes: the same members. */
		assert_int_equal(stored_len(iu[i]), stored_len(su));
		assert_null(strstr(a, "陈"));
		assert_null(strstr(a, "138000"));
		assert_null(strstr(a, "null"));
		free(a);
		free(b);
	}
}

/* The plaintext of a record's sealed member (malloc'd, NUL-terminated). */
static char *
sealed_plain(const char *uuid)
{
	struct gs_stmt *s = NULL;
	struct gs_buf out;
	const char *t;
	char *p;

	gs_buf_init_secret(&out, 1 << 16);
	assert_int_equal(gs_stmt_prepare(ag_store_db(st), "SELECT "
	    "json_extract(fields, '$.\"$pii\"'), form_version FROM record "
	    "WHERE uuid = ?1", &s), GS_OK);
	assert_int_equal(gs_stmt_bind_text(s, 1, uuid), GS_OK);
	assert_int_equal(gs_stmt_step(s), GS_ROW);
	t = gs_stmt_text(s, 0);
	assert_non_null(t);
	assert_int_equal(ag_crypt_open_text(ag_store_crypt(st), uuid,
	    (int)gs_stmt_int64(s, 1), t, strlen(t), &out), GS_OK);
	p = malloc(out.len + 1);
	assert_non_null(p);
	memcpy(p, out.data, out.len);
	p[out.len] = '\0';
	gs_stmt_finalize(s);
	gs_buf_release(&out);
	return p;
}

/* A record's blind-index rows as one text (malloc'd). */
static char *
index_rows(const char *uuid)
{
	struct gs_stmt *s = NULL;
	const char *t;
	char *p;

	assert_int_equal(gs_stmt_prepare(ag_store_db(st), "SELECT "
	    "coalesce(group_concat(hex(tag) || ':' || field, ','), '') FROM "
	    "(SELECT tag, field FROM pii_index WHERE uuid = ?1 ORDER BY "
	    "field, tag)", &s), GS_OK);
	assert_int_equal(gs_stmt_bind_text(s, 1, uuid), GS_OK);
	assert_int_equal(gs_stmt_step(s), GS_ROW);
	t = gs_stmt_text(s, 0);
	assert_non_null(t);
	p = strdup(t);
	gs_stmt_finalize(s);
	return p;
}

/* The "fields" of ag_get's record: opened (a new reference). */
static json_t *
got_fields(const char *uuid)
{
	char *j = NULL;
	json_t *o, *f;

	assert_int_equal(ag_get(st, uuid, &j), GS_OK);
	o = json_loads(j, 0, NULL);
	assert_non_null(o);
	f = json_incref(json_object_get(o, "fields"));
	assert_non_null(f);
	json_decref(o);
	ag_free(j);
	return f;
}

/* The last problem reported (ag_store_on_problem). */
static size_t bad_line;
static char bad_field[64], bad_msg[256];

static void
on_bad(void *ctx, size_t line, const char *field, const char *rule,
    const char *message)
{
	(void)ctx;
	(void)rule;
	bad_line = line;
	snprintf(bad_field, sizeof(bad_field), "%s", field);
	snprintf(bad_msg, sizeof(bad_msg), "%s", message);
}

/*
 * Imports the n lines of all[0..len) as type twice, with the import's
 * fast path on and off: each record the same both ways (its stored text
 * but for the ciphertext, its sealed plaintext byte for byte, its opened
 * fields, its blind-index rows).  Returns how many index rows the first
 * import made.
 */
#define BOTH_MAX 16
static int64_t
same_both_ways(const char *type, const char *all, size_t len, size_t n,
    size_t fast)
{
	char iu[2][BOTH_MAX][AG_UUID_LEN + 1];
	int64_t before = q_int("SELECT count(*) FROM pii_index"), tags = 0;
	size_t got = 0, i;
	int way;

	assert_true(n <= BOTH_MAX);
	memset(iu, 0, sizeof(iu));
	ag_store_on_problem(st, on_bad, NULL);
	(void)ag_import_spans_set(1); /* what earlier imports counted */
	for (way = 0; way < 2; way++) {
		/* The lines the fast path took: fast, then none. */
		assert_int_equal(ag_import_spans_set(way == 0), way == 0 ? 0 :
		    fast);
		if (ag_import_ndjson(st, type, all, len, take_uuid, iu[way],
		    &got) != GS_OK)
			fail_msg("import: %s; line %zu %s: %s", ag_errmsg(0),
			    bad_line, bad_field, bad_msg);
		assert_int_equal(got, n);
		if (way == 0)
			tags = q_int("SELECT count(*) FROM pii_index") - before;
	}
	assert_int_equal(ag_import_spans_set(1), 0);
	for (i = 0; i < n; i++) {
		char *a, *b;
		json_t *fa, *fb;

		a = stored_shape(iu[0][i]);
		b = stored_shape(iu[1][i]);
		if (strcmp(a, b) != 0)
			fail_msg("%s line %zu: stored %s, not %s", type, i + 1,
			    a, b);
		assert_int_equal(stored_len(iu[0][i]), stored_len(iu[1][i]));
		free(a);
		free(b);
		a = sealed_plain(iu[0][i]);
		b = sealed_plain(iu[1][i]);
		if (strcmp(a, b) != 0)
			fail_msg("%s line %zu: sealed %s, not %s", type, i + 1,
			    a, b);
		free(a);
		free(b);
		a = index_rows(iu[0][i]);
		b = index_rows(iu[1][i]);
		assert_string_equal(a, b);
		free(a);
		free(b);
		fa = got_fields(iu[0][i]);
		fb = got_fields(iu[1][i]);
		assert_true(json_equal(fa, fb));
		json_decref(fa);
		json_decref(fb);
	}
	return tags;
}

/*
 * The bulk import reads most lines without jansson values (agent/store.c
 * put_stored_spans: the members as the line spells them) and the others
 * the full way.  The same lines imported both ways (same_both_ways) give
 * the same store.  The lines cover the fast path (any key order, pii
 * first, last and between, tags, a ref, integers and booleans, two id
 * numbers, none, phone numbers to normalize, first, last and between
 * the pii: 7 persons and 2 houses) and the ones it leaves (an escape, a
 * null, whitespace and \r, a ref to normalize, an id number to normalize
 * with a phone number, a real, a geo value); a key twice is a bad line
 * both ways.
 */
static void
test_import_spans_same(void **state)
{
	static const char *const persons[] = {
		"{\"name\":\"陈静红\",\"pop_type\":\"FLOATING\",\"id_number\":"
		"\"%s\",\"sex\":\"2\",\"birth_date\":\"1980-01-01\",\"ethnic\":"
		"\"01\",\"marital\":\"20\",\"education\":\"40\",\"phone\":"
		"\"18685443125\",\"census_region\":\"431224\","
		"\"residence_region\":\"440307\",\"address\":\"广东省深圳市大鹏"
		"新区大鹏街道布新社区一村27巷28号705房\",\"inflow_reason\":"
		"\"WORK\",\"inflow_date\":\"2025-06-24\",\"residence_kind\":"
		"\"RENTAL\"}",
		"{\"note\":\"备注 ~!@#$%%^&*()/\",\"house\":"
		"\"01a216d7-02cf-7120-a376-e9fcda75be79\",\"address\":\"x\","
		"\"tags\":[\"RELEASED\",\"MENTAL\"],\"id_number\":\"%s\","
		"\"pop_type\":\"REGISTERED\",\"name\":\"李\"}",
		"{\"pop_type\":\"REGISTERED\",\"sex\":\"2\",\"address\":\"z\","
		"\"id_number\":\"%s\",\"name\":\"赵\"}",
		"{\"pop_type\":\"REGISTERED\",\"name\":\"陈\\\"一\","
		"\"id_number\":\"%s\",\"address\":\"a\\\\b\"}",
		"{\"name\":\"王\",\"phone\":null,\"pop_type\":\"REGISTERED\","
		"\"id_number\":\"%s\",\"address\":\"b\",\"tags\":[]}",
		"{\"name\": \"周\",\"pop_type\":\"REGISTERED\",\"id_number\":"
		"\"%s\",\"address\":\"c\"}\r",
		"{\"name\":\"吴\",\"pop_type\":\"REGISTERED\",\"id_number\":"
		"\"%s\",\"address\":\"d\",\"house\":"
		"\"01A216D7-02CF-7120-A376-E9FCDA75BE79\"}",
		"{\"name\":\"Smith\",\"pop_type\":\"FOREIGN\",\"nationality\":"
		"\"USA\",\"passport_no\":\"AB12345\",\"address\":\"y\"}",
		"{\"phone\":\"0755-63175455\",\"name\":\"郑超\",\"pop_type\":"
		"\"REGISTERED\",\"id_number\":\"%s\",\"address\":\"g\"}",
		"{\"name\":\"钱\",\"pop_type\":\"REGISTERED\",\"id_number\":"
		"\"%s\",\"phone\":\"0086 138 0013 8000\",\"address\":\"h\","
		"\"sex\":\"1\"}",
		"{\"name\":\"孙\",\"pop_type\":\"REGISTERED\",\"address\":"
		"\"i\",\"id_number\":\"%s\",\"marital\":\"20\",\"phone\":"
		"\"+86-755-6317-5455\"}",
		"{\"name\":\"冯\",\"pop_type\":\"REGISTERED\",\"address\":"
		"\"j\",\"id_number\":\"%.17sx\",\"phone\":\"010-6512 3456\"}",
	};
	static const char *const houses[] = {
		"{\"address\":\"大鹏街道1号\",\"is_rental\":true,\"area_m2\":85,"
		"\"occupants\":3,\"max_occupants\":6,\"tenant_name\":\"林强\",\"rental_use\":\"ROOM\","
		"\"owner_id_number\":\"%s\",\"tenant_id_number\":\"%s\","
		"\"has_fire_exit\":false,\"owner_phone\":\"15140444090\"}",
		"{\"house_code\":\"4403070039327727095721816\",\"address\":"
		"\"广东省深圳市大鹏新区大鹏街道水头社区二村15巷3号204房\",\"use\":"
		"\"RESIDENCE\",\"area_m2\":287.16,\"is_rental\":false,"
		"\"owner_name\":\"林强强\",\"owner_id_number\":\"%s\","
		"\"owner_phone\":\"15140444090\"}",
		"{\"address\":\"大鹏街道3号\",\"is_rental\":true,"
		"\"rental_use\":\"ROOM\",\"tenant_name\":\"林\","
		"\"owner_phone\":\"0755 6317 5455\",\"owner_id_number\":\"%s\","
		"\"tenant_id_number\":\"%s\",\"tenant_phone\":"
		"\"+8615140444090\"}",
		"{\"address\":\"大鹏街道2号\",\"is_rental\":false,\"location\":"
		"{\"lat\":22.597585,\"lon\":114.553257,\"accuracy\":13,"
		"\"coord_sys\":\"WGS84\"},\"owner_id_number\":\"%s\"}",
	};
	enum { NP = sizeof(persons) / sizeof(persons[0]),
		NH = sizeof(houses) / sizeof(houses[0]) };
	char one[700], all[BOTH_MAX * 700], id[19], id2[19];
	size_t len = 0, n = 0;
	int i, k, way;

	(void)state;
	for (i = 0; i < NP; i++) {
		idcard(id, 800 + i);
		/* The one with a lower-case x: a number whose check is X. */
		for (k = 0; strstr(persons[i], "%.17sx") != NULL &&
		    id[17] != 'X'; k++)
			idcard(id, 700 + k);
		snprintf(one, sizeof(one), persons[i], id);
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s\n",
		    one);
	}
	/* Every person but the foreign one has an id number. */
	assert_int_equal(same_both_ways("person", all, len, NP, 7), NP - 1);
	for (i = 0, len = 0; i < NH; i++) {
		idcard(id, 850 + i);
		idcard(id2, 860 + i);
		snprintf(one, sizeof(one), houses[i], id, id2);
		len += (size_t)snprintf(all + len, sizeof(all) - len, "%s\n",
		    one);
	}
	assert_int_equal(same_both_ways("house", all, len, NH, 2), NH + 2);

	/* A key twice: the full path's parse error, with its line, both
	 * ways, and nothing saved. */
	idcard(id, 900);
	snprintf(one, sizeof(one), persons[2], id);
	len = (size_t)snprintf(all, sizeof(all), "%s\n{\"name\":\"甲\","
	    "\"pop_type\":\"REGISTERED\",\"id_number\":\"%s\",\"address\":"
	    "\"e\",\"name\":\"乙\"}\n", one, id);
	for (way = 0; way < 2; way++) {
		bad_line = 0;
		ag_import_spans_set(way == 0);
		assert_int_equal(ag_import_ndjson(st, "person", all, len, NULL,
		    NULL, &n), GS_EPARSE);
		assert_int_equal(n, 0);
		assert_int_equal(bad_line, 2);
		assert_non_null(strstr(bad_msg, "duplicate"));
	}
	ag_import_spans_set(1);
	assert_int_equal(q_int("SELECT count(*) FROM record"), 2 * (NP + NH));
}

/* The uuids a bulk import saved, in input order. */
#define IMPORT_MAX 6000
static char import_uuids[IMPORT_MAX][37];
static size_t import_n;

static void
on_import_uuid(void *ctx, const char *uuid)
{
	(void)ctx;
	if (import_n < IMPORT_MAX)
		snprintf(import_uuids[import_n++], 37, "%s", uuid);
}

static int
opens(void *ctx, const struct ag_record *rec)
{
	(void)rec;
	(*(size_t *)ctx)++;
	return 0;
}

/*
 * A bulk import big enough for several reader threads (agent/store.c)
 * seals every record under its own nonce (the counter is shared by the
 * readers), and every record opens again.
 */
static void
test_import_threads_seal(void **state)
{
	char *buf = malloc(1 << 20), rec[512];
	size_t len = 0, n = 0;
	int i;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < 2000; i++) {
		person(rec, sizeof(rec), "陈", 5000 + i);
		len += (size_t)snprintf(buf + len, (1 << 20) - len, "%s\n",
		    rec);
	}
	import_n = 0;
	assert_int_equal(ag_import_ndjson(st, "person", buf, len,
	    on_import_uuid, NULL, &n), GS_OK);
	assert_int_equal(n, 2000);
	assert_int_equal(import_n, 2000);
	/* Each record is in the blind index under its own id number (the
	 * import inserts those rows last, in key order). */
	for (i = 0; i < 2000; i++) {
		unsigned char tag[AG_BIDX_BYTES];
		struct gs_stmt *q = NULL;
		char id[19];
		int64_t hits = -1;

		idcard(id, 5000 + i);
		assert_int_equal(ag_crypt_bidx(ag_store_crypt(st), id, tag),
		    GS_OK);
		assert_int_equal(gs_stmt_prepare(ag_store_db(st), "SELECT "
		    "count(*) FROM pii_index WHERE tag = ?1 AND uuid = ?2 AND "
		    "field = 'id_number'", &q), GS_OK);
		assert_int_equal(gs_stmt_bind_blob(q, 1, tag, sizeof(tag)),
		    GS_OK);
		assert_int_equal(gs_stmt_bind_text(q, 2, import_uuids[i]),
		    GS_OK);
		assert_int_equal(gs_stmt_one_int64(q, -1, &hits), GS_OK);
		gs_stmt_finalize(q);
		if (hits != 1)
			fail_msg("person %d (%s) is not indexed under its id "
			    "number", i, import_uuids[i]);
	}
	/* The nonce is the first 24 bytes of the box: 32 base64 chars. */
	assert_int_equal(q_int("SELECT count(DISTINCT substr(json_extract("
	    "fields, '$.\"$pii\"'), 1, 32)) FROM record"), 2000);
	assert_int_equal(q_int("SELECT count(*) FROM pii_index"), 2000);
	n = 0;
	assert_int_equal(ag_list(st, "person", 0, opens, &n), GS_OK);
	assert_int_equal(n, 2000);
	free(buf);
}

/* How many pii_index rows hold the id number of seq under uuid (NULL:
 * under any uuid). */
static int64_t
index_hits(int seq, const char *uuid)
{
	unsigned char tag[AG_BIDX_BYTES];
	struct gs_stmt *q = NULL;
	char id[19];
	int64_t hits = -1;

	idcard(id, seq);
	assert_int_equal(ag_crypt_bidx(ag_store_crypt(st), id, tag), GS_OK);
	assert_int_equal(gs_stmt_prepare(ag_store_db(st), "SELECT count(*) "
	    "FROM pii_index WHERE tag = ?1 AND (?2 IS NULL OR uuid = ?2) AND "
	    "field = 'id_number'", &q), GS_OK);
	assert_int_equal(gs_stmt_bind_blob(q, 1, tag, sizeof(tag)), GS_OK);
	assert_int_equal(gs_stmt_bind_text(q, 2, uuid), GS_OK);
	assert_int_equal(gs_stmt_one_int64(q, -1, &hits), GS_OK);
	gs_stmt_finalize(q);
	return hits;
}

/*
 * An import with more blind-index rows than qsort is left to (4,096:
 * agent/store.c tags_sort counts them into buckets by their first 16
 * bits, then orders each bucket): every row is there once, the six
 * records of each id number (one tag, ordered by uuid) included, and the
 * index is whole.
 */
static void
test_import_many_tags(void **state)
{
	enum { N = IMPORT_MAX };
	char *buf = malloc(4 << 20), rec[512];
	size_t len = 0, n = 0;
	int i;

	(void)state;
	assert_non_null(buf);
	/* idcard() makes 1,000 id numbers: six persons share each. */
	for (i = 0; i < N; i++) {
		person(rec, sizeof(rec), "陈", 7000 + i);
		len += (size_t)snprintf(buf + len, (4 << 20) - len, "%s\n",
		    rec);
	}
	import_n = 0;
	assert_int_equal(ag_import_ndjson(st, "person", buf, len,
	    on_import_uuid, NULL, &n), GS_OK);
	assert_int_equal(n, N);
	assert_int_equal(import_n, N);
	assert_int_equal(q_int("SELECT count(*) FROM pii_index"), N);
	for (i = 0; i < N; i++)
		if (index_hits(7000 + i, import_uuids[i]) != 1)
			fail_msg("person %d (%s) is not indexed under its id "
			    "number", i, import_uuids[i]);
	for (i = 0; i < 1000; i++)
		assert_int_equal(index_hits(7000 + i, NULL), N / 1000);
	assert_int_equal(q_int("SELECT count(*) FROM pragma_integrity_check "
	    "WHERE integrity_check <> 'ok'"), 0);
	free(buf);
}

static void
test_masks(void **state)
{
	const struct gs_form *f = gs_schema_form(ag_store_schema(st), "person");
	struct {
		const char *field, *in, *out;
	} v[] = {
		{ "id_number", "440307198001011230", "4403**********1230" },
		{ "phone", "13800138000", "138****8000" },
		{ "phone", "075588886666", "********6666" },
		{ "name", "陈伟", "陈*" },
		{ "name", "欧阳小明", "欧***" },
		{ "birth_date", "1980-01-01", "1980-**-**" },
		{ "address", "葵涌街道1号", "***" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *m = ag_crypt_mask_text(f, v[i].field, v[i].in);

		assert_non_null(m);
		assert_string_equal(m, v[i].out);
		gs_free(m);
	}
}

static void
test_policy(void **state)
{
	(void)state;
	assert_int_equal(ag_keys_policy("123456", 6, 0), GS_EINVAL);
	assert_int_equal(ag_keys_policy("1234567890", 10, 0), GS_EINVAL);
	assert_int_equal(ag_keys_policy("short pw", 8, 0), GS_EINVAL);
	assert_int_equal(ag_keys_policy("1234567890123456", 16, 0), GS_OK);
	assert_int_equal(ag_keys_policy(PASS, strlen(PASS), 0), GS_OK);
	/* A keystore with its own attempt limits allows a PIN. */
	assert_int_equal(ag_keys_policy("123456", 6, 1), GS_OK);
	assert_int_equal(ag_keys_policy("123", 3, 1), GS_EINVAL);
}

/* ------------------------------------------------------------ store */

static void
test_file_holds_no_pii(void **state)
{
	char rec[512], path[128], id[19], uuid[AG_UUID_LEN + 1];
	char *text = NULL;
	int i;

	(void)state;
	for (i = 0; i < 20; i++) {
		person(rec, sizeof(rec), "林秀英", i);
		assert_int_equal(ag_collect(st, "person", rec, strlen(rec),
		    uuid), GS_OK);
	}
	/* An edit and a reveal go through the sealed form too. */
	assert_int_equal(ag_edit(st, uuid, PHONE_EDIT, strlen(PHONE_EDIT)),
	    GS_OK);
	assert_int_equal(ag_get(st, uuid, &text), GS_OK);
	assert_non_null(strstr(text, "13912345678"));
	assert_non_null(strstr(text, "林秀英"));
	ag_free(text);
	assert_int_equal(ag_get_masked(st, uuid, &text), GS_OK);
	assert_null(strstr(text, "13912345678"));
	assert_non_null(strstr(text, "139****5678"));
	ag_free(text);
	ag_store_close(st);
	st = NULL;
	for (const char *sfx = ""; sfx != NULL;
	    sfx = sfx[0] == '\0' ? "-wal" : NULL) {
		snprintf(path, sizeof(path), "%s/agent.db%s", home, sfx);
		assert_false(file_has(path, "林秀英"));
		assert_false(file_has(path, "13912345678"));
		assert_false(file_has(path, "葵涌街道"));
		for (i = 0; i < 20; i++) {
			idcard(id, i);
			assert_false(file_has(path, id));
		}
	}
	assert_int_equal(ag_store_open(home, &st), GS_OK);
}

static void
test_lock_unlock_limit(void **state)
{
	char rec[512], uuid[AG_UUID_LEN + 1], other[AG_UUID_LEN + 1];
	char *text = NULL;
	int i;

	(void)state;
	person(rec, sizeof(rec), "王芳", 7);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), uuid),
	    GS_OK);
	ag_store_lock(st);
	assert_true(ag_store_locked(st));
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), other),
	    GS_EPERM);
	assert_int_equal(ag_get(st, uuid, &text), GS_EPERM);
	assert_int_equal(ag_edit(st, uuid, PHONE_EDIT, strlen(PHONE_EDIT)),
	    GS_EPERM);
	assert_int_equal(ag_get_masked(st, uuid, &text), GS_OK);
	assert_non_null(strstr(text, "[locked]"));
	ag_free(text);
	/* A wrong passphrase unlocks nothing and is counted. */
	assert_int_equal(ag_store_unlock(st, "wrong horse battery", 19),
	    GS_EPERM);
	assert_true(ag_store_locked(st));
	assert_int_equal(q_int("SELECT failures FROM keyring"), 1);
	/* The right one unlocks and resets the count. */
	assert_int_equal(ag_store_unlock(st, PASS, strlen(PASS)), GS_OK);
	assert_false(ag_store_locked(st));
	assert_int_equal(q_int("SELECT failures FROM keyring"), 0);
	/* A new passphrase re-wraps the same key. */
	assert_int_equal(ag_store_protect(st, "a new passphrase 2", 18),
	    GS_OK);
	ag_store_lock(st);
	assert_int_equal(ag_store_unlock(st, PASS, strlen(PASS)), GS_EPERM);
	assert_int_equal(ag_store_unlock(st, "a new passphrase 2", 18), GS_OK);
	assert_int_equal(ag_get(st, uuid, &text), GS_OK);
	ag_free(text);
	/* The limit: three wrong in a row destroy the key for good. */
	ag_store_lock(st);
	exec("UPDATE keyring SET max_failures = 3");
	for (i = 0; i < 3; i++)
		assert_int_equal(ag_store_unlock(st, "nope nope nope", 14),
		    GS_EPERM);
	assert_int_equal(q_int("SELECT count(*) FROM keyring WHERE state = "
	    "'destroyed' AND dek_wrap IS NULL"), 1);
	assert_int_equal(ag_store_unlock(st, "a new passphrase 2", 18),
	    GS_EPERM);
	assert_non_null(strstr(gs_errmsg(GS_EPERM), "destroyed"));
	{
		json_t *o = NULL;

		assert_int_equal(ag_status_build(st, &o), GS_OK);
		assert_true(json_is_true(json_object_get(json_object_get(o,
		    "pii"), "destroyed")));
		json_decref(o);
	}
}

/* The unlock session is kept for lock_idle_seconds after its last use;
 * past its expiry it unlocks nothing, and is ended. */
static void
test_session_expires(void **state)
{
	char path[256];
	unsigned char buf[64];
	FILE *fp;
	size_t n;

	(void)state;
	assert_int_equal(unsetenv("XDG_RUNTIME_DIR"), 0);
	assert_false(ag_store_locked(st));
	assert_int_equal(ag_store_meta_set(st, "lock_idle_seconds", "600"),
	    GS_OK);
	assert_int_equal(ag_session_start(st), GS_OK);
	ag_store_lock(st);
	assert_true(ag_store_locked(st));
	/* Within the idle time: unlocked again without the passphrase. */
	assert_int_equal(ag_session_resume(st), GS_OK);
	assert_false(ag_store_locked(st));
	ag_store_lock(st);
	/* Expired a millisecond ago: stays locked. */
	snprintf(path, sizeof(path), "%s/session", home);
	fp = fopen(path, "r+b");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	assert_true(n > 12);
	assert_memory_equal(buf, "GSS1", 4);
	gs_put_le64(buf + 4, (uint64_t)(gs_now_ms() - 1));
	assert_int_equal(fseek(fp, 0, SEEK_SET), 0);
	assert_int_equal(fwrite(buf, 1, n, fp), n);
	assert_int_equal(fclose(fp), 0);
	assert_int_equal(ag_session_resume(st), GS_OK);
	assert_true(ag_store_locked(st));
	/* Ended: the file is gone. */
	assert_int_not_equal(access(path, F_OK), 0);
}

static void
test_moved_ciphertext(void **state)
{
	char rec[512], u1[AG_UUID_LEN + 1], u2[AG_UUID_LEN + 1];
	char sql[256], *text = NULL;

	(void)state;
	person(rec, sizeof(rec), "甲", 1);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), u1), GS_OK);
	person(rec, sizeof(rec), "乙", 2);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), u2), GS_OK);
	/* An attacker with the file copies record 1's sealed fields over
	 * record 2's: record 2 no longer opens. */
	snprintf(sql, sizeof(sql), "UPDATE record SET fields = (SELECT fields "
	    "FROM record WHERE uuid = '%s') WHERE uuid = '%s'", u1, u2);
	exec(sql);
	assert_int_equal(ag_get(st, u2, &text), GS_EDECRYPT);
	assert_int_equal(ag_get(st, u1, &text), GS_OK);
	ag_free(text);
}

struct found {
	int n;
	char uuid[AG_UUID_LEN + 1];
};

static void
on_found(void *ctx, const char *uuid)
{
	struct found *f = ctx;

	f->n++;
	snprintf(f->uuid, sizeof(f->uuid), "%s", uuid);
}

static void
test_blind_index(void **state)
{
	char rec[512], id[19], id2[19], u[AG_UUID_LEN + 1];
	char edit[64];
	struct found f = { 0 };
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		person(rec, sizeof(rec), "赵", 100 + i);
		assert_int_equal(ag_collect(st, "person", rec, strlen(rec), u),
		    GS_OK);
	}
	idcard(id, 104);
	assert_int_equal(ag_find_id_number(st, id, on_found, &f), GS_OK);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.uuid, u);
	/* The index holds tags, never the number. */
	assert_int_equal(q_int("SELECT count(*) FROM pii_index"), 5);
	/* An edit moves the index to the new number. */
	idcard(id2, 200);
	snprintf(edit, sizeof(edit), "{\"id_number\":\"%s\"}", id2);
	assert_int_equal(ag_edit(st, u, edit, strlen(edit)), GS_OK);
	f.n = 0;
	assert_int_equal(ag_find_id_number(st, id, on_found, &f), GS_OK);
	assert_int_equal(f.n, 0);
	assert_int_equal(ag_find_id_number(st, id2, on_found, &f), GS_OK);
	assert_int_equal(f.n, 1);
	/* Lower-case x and spaces normalize the same way. */
	for (i = 300; i < 1000; i++) {
		idcard(id, i);
		if (id[17] == 'X')
			break;
	}
	assert_true(i < 1000);
	person(rec, sizeof(rec), "孙", i);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), u),
	    GS_OK);
	{
		char lower[40];

		snprintf(lower, sizeof(lower), "%.6s %.8s-%.3s%c", id, id + 6,
		    id + 14, 'x');
		f.n = 0;
		assert_int_equal(ag_find_id_number(st, lower, on_found, &f),
		    GS_OK);
		assert_int_equal(f.n, 1);
		assert_string_equal(f.uuid, u);
		/* A deleted record is not found (its tag may stay until the
		 * delete is delivered and purged). */
		assert_int_equal(ag_delete(st, u, "test"), GS_OK);
		f.n = 0;
		assert_int_equal(ag_find_id_number(st, lower, on_found, &f),
		    GS_OK);
		assert_int_equal(f.n, 0);
		assert_int_equal(ag_find_id_number(st, id, on_found, &f),
		    GS_OK);
		assert_int_equal(f.n, 0);
	}
	ag_store_lock(st);
	assert_int_equal(ag_find_id_number(st, id2, on_found, &f), GS_EPERM);
}

/* A platform revision of a person with id number seq (pull). */
static int
pull_person(const char *uuid, int64_t rev, int seq, uint64_t *ops)
{
	struct ag_platform_rev p;
	char rec[512];
	json_t *fields;
	int applied = 0, r;

	person(rec, sizeof(rec), "钱", seq);
	fields = json_loads(rec, 0, NULL);
	assert_non_null(fields);
	memset(&p, 0, sizeof(p));
	p.uuid = uuid;
	p.type = "person";
	p.grid = "440307001001";
	p.author = "w-other";
	p.form_version = 1;
	p.rev = rev;
	p.created_at = p.updated_at = 1;
	p.fields = fields;
	gs_db_count_ops(ag_store_db(st), 1);
	r = ag_store_apply_platform(st, &p, &applied);
	*ops = gs_db_ops(ag_store_db(st));
	gs_db_count_ops(ag_store_db(st), 0);
	json_decref(fields);
	assert_int_equal(r, GS_OK);
	return applied;
}

/*
 * A pulled revision moves the blind index by key: the rows of its old id
 * number out, the new one in, the other records' rows untouched, and
 * without a walk of the index (keyed by tag, so "every row of a uuid"
 * walked all of it: a new device's first pull of 100,000 records took
 * six minutes).  The work is counted in SQLite steps, which do not
 * depend on the machine's speed.
 */
static void
test_pull_moves_index(void **state)
{
	enum { N = 3000 };
	char rec[512], id[19], uuid[GS_UUID_LEN + 1];
	struct gs_buf in;
	struct found f = { 0 };
	uint64_t ops;
	size_t count = 0;
	int i;

	(void)state;
	gs_buf_init(&in, 1 << 22);
	for (i = 0; i < N; i++) {
		person(rec, sizeof(rec), "孙", i);
		assert_int_equal(gs_buf_puts(&in, rec), GS_OK);
		assert_int_equal(gs_buf_putc(&in, '\n'), GS_OK);
	}
	assert_int_equal(ag_import_ndjson(st, "person", in.data, in.len, NULL,
	    NULL, &count), GS_OK);
	assert_int_equal(count, N);
	gs_buf_release(&in);
	assert_int_equal(q_int("SELECT count(*) FROM pii_index"), N);

	/* A record new here: its tag goes in. */
	gs_uuid_v7(uuid);
	assert_int_equal(pull_person(uuid, 1, 5001, &ops), 1);
	assert_int_equal(q_int("SELECT count(*) FROM pii_index"), N + 1);
	assert_true(ops < N);
	/* Its next revision, another id number: the old tag goes out. */
	assert_int_equal(pull_person(uuid, 2, 5002, &ops), 1);
	assert_int_equal(q_int("SELECT count(*) FROM pii_index"), N + 1);
	assert_true(ops < N);
	idcard(id, 5001);
	assert_int_equal(ag_find_id_number(st, id, on_found, &f), GS_OK);
	/* idcard wraps at 1000: 5001 is the number of the imported 1, 1001
	 * and 2001, and no longer the pulled record's (the newest uuid,
	 * which would be found last). */
	assert_int_equal(f.n, 3);
	assert_string_not_equal(f.uuid, uuid);
	f.n = 0;
	idcard(id, 5002);
	assert_int_equal(ag_find_id_number(st, id, on_found, &f), GS_OK);
	assert_int_equal(f.n, 4);
	assert_string_equal(f.uuid, uuid);
}

/* A fake keystore: XOR with a constant (the test only checks the hook). */
static int
ks_xor(void *ctx, const unsigned char *in, size_t inlen, unsigned char *out,
    size_t outmax, size_t *outlen)
{
	size_t i;

	(*(int *)ctx)++;
	if (inlen > outmax)
		return -1;
	for (i = 0; i < inlen; i++)
		out[i] = in[i] ^ 0x5a;
	*outlen = inlen;
	return 0;
}

static void
test_keystore(void **state)
{
	struct ag_store *s2 = NULL;
	char h2[80];
	int calls = 0;

	(void)state;
	snprintf(h2, sizeof(h2), "%s/ks", home);
	assert_int_equal(ag_store_init(h2, "g", "w", &s2), GS_OK);
	/* Without a keystore a PIN is refused... */
	assert_int_equal(ag_store_protect(s2, "123456", 6), GS_EINVAL);
	/* ...with one it is allowed, and the keystore wraps the key. */
	ag_store_set_keystore(s2, ks_xor, ks_xor, &calls);
	assert_int_equal(ag_store_protect(s2, "123456", 6), GS_OK);
	assert_int_equal(calls, 1);
	ag_store_close(s2);
	assert_int_equal(ag_store_open(h2, &s2), GS_OK);
	assert_true(ag_store_locked(s2));
	/* Without the keystore set, it cannot be unlocked. */
	assert_int_equal(ag_store_unlock(s2, "123456", 6), GS_EPERM);
	ag_store_set_keystore(s2, ks_xor, ks_xor, &calls);
	assert_int_equal(ag_store_unlock(s2, "654321", 6), GS_EPERM);
	assert_int_equal(ag_store_unlock(s2, "123456", 6), GS_OK);
	assert_false(ag_store_locked(s2));
	ag_store_close(s2);
}

static void
test_purge(void **state)
{
	char rec[512], u1[AG_UUID_LEN + 1], u2[AG_UUID_LEN + 1];
	char sql[512], *text = NULL;
	size_t n = 9;
	int64_t now = 1800000000000LL;

	(void)state;
	person(rec, sizeof(rec), "孙", 11);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), u1), GS_OK);
	/* u1's creation gets its change row, as batching does. */
	assert_int_equal(ag_store_pending_flush(ag_store_db(st)), GS_OK);
	person(rec, sizeof(rec), "周", 12);
	assert_int_equal(ag_collect(st, "person", rec, strlen(rec), u2), GS_OK);
	/* u1's change went out in batch 1, acked 40 days ago; u2's is
	 * still unsent (its creation still in pending_creation). */
	snprintf(sql, sizeof(sql), "INSERT INTO outbox(seq, batch_id, "
	    "hash, prev_hash, record_count, bytes, plain_bytes, "
	    "state, created_at, acked_at) VALUES(1, zeroblob(16), "
	    "zeroblob(32), zeroblob(32), 1, 1, 1, 'acked', 0, %lld); "
	    "INSERT INTO outbox_envelope(seq, envelope) VALUES(1, x'00'); "
	    "UPDATE change SET state = 2, batch_seq = 1 WHERE uuid = '%s'",
	    (long long)(now - 40LL * 86400000), u1);
	exec(sql);
	/* 60 days of retention: nothing yet. */
	assert_int_equal(ag_purge(st, 60, now, &n), GS_OK);
	assert_int_equal(n, 0);
	assert_int_equal(ag_purge(st, 30, now, &n), GS_OK);
	assert_int_equal(n, 1);
	assert_int_equal(q_int("SELECT count(*) FROM record WHERE purged_at "
	    "IS NOT NULL"), 1);
	assert_int_equal(q_int("SELECT count(*) FROM record WHERE fields "
	    "LIKE '%$pii%'"), 1); /* u2 only */
	/* u2's unsent creation sends its record's (sealed) fields: the
	 * change row holds none of its own. */
	assert_int_equal(q_int("SELECT count(*) FROM change WHERE fields "
	    "LIKE '%$pii%'"), 0);
	assert_int_equal(q_int("SELECT count(*) FROM pii_index"), 1);
	/* The stub still explains the ledger, and opens (nothing sealed). */
	assert_int_equal(ag_get(st, u1, &text), GS_OK);
	assert_non_null(strstr(text, "\"pop_type\":\"REGISTERED\""));
	assert_null(strstr(text, "孙"));
	ag_free(text);
	/* Purging needs no key. */
	ag_store_lock(st);
	assert_int_equal(ag_purge(st, 0, now, &n), GS_OK);
	assert_int_equal(n, 0); /* u2 is unsent: kept */
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_seal_open),
		T(test_open_many_sealers),
		T(test_b64_same_as_sodium),
		T(test_seal_escapes),
		T(test_seal_large),
		T(test_seal_every_byte),
		T(test_import_threads_seal),
		T(test_import_many_tags),
		T(test_import_text_same_as_save),
		T(test_import_spans_same),
		T(test_plan_matches_schema),
		T(test_masks),
		T(test_policy),
		T(test_file_holds_no_pii),
		T(test_lock_unlock_limit),
		T(test_session_expires),
		T(test_moved_ciphertext),
		T(test_blind_index),
		T(test_pull_moves_index),
		T(test_keystore),
		T(test_purge),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
