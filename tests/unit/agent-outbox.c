/*
 * agent-outbox.c - sealing unsent changes into chained, immutable batches
 * and recording receipts, rejections and revocation, each in one
 * transaction; allocation failures at every point leave a consistent
 * store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "batch.h"
#include "crypt.h"
#include "crypto.h"
#include "db.h"
#include "device.h"
#include "envelope.h"
#include "gridagent.h"
#include "json.h"
#include "outbox.h"
#include "receipt.h"
#include "schema.h"
#include "store.h"
#include "uuid.h"

struct fx {
	char home[128];
	struct ag_store *st;
	struct gs_db *db;
	struct ag_device *dev;
	struct ag_outbox *ob;
	unsigned char bpk[32], bsk[32]; /* platform batch key */
	unsigned char rpk[32], rsk[64]; /* platform receipt key */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(gs_crypto_init(), GS_OK);
	snprintf(f->home, sizeof(f->home), "/tmp/agent-outbox.XXXXXX");
	assert_non_null(mkdtemp(f->home));
	strncat(f->home, "/h", sizeof(f->home) - strlen(f->home) - 1);
	assert_int_equal(ag_store_init(f->home, "G1", "w1", &f->st), GS_OK);
	f->db = ag_store_db(f->st);
	gs_crypto_kx_keypair(f->bpk, f->bsk);
	gs_crypto_sign_keypair(f->rpk, f->rsk);
	assert_int_equal(ag_device_new(&f->dev), GS_OK);
	gs_crypto_sign_keypair(f->dev->sign_pk, f->dev->sign_sk);
	gs_random(f->dev->device_id, 16);
	gs_random(f->dev->deployment, 16);
	memcpy(f->dev->batch_pk, f->bpk, 32);
	gs_crypto_key_id(f->dev->batch_kid, f->bpk, 32);
	memcpy(f->dev->receipt_pk, f->rpk, 32);
	snprintf(f->dev->platform_url, sizeof(f->dev->platform_url),
	    "http://127.0.0.1:9");
	f->dev->max_records = 10000;
	f->dev->max_envelope = 16 << 20;
	f->dev->max_plain = 64 << 20;
	f->dev->enrolled_at = 1;
	assert_int_equal(ag_device_insert(f->db, f->dev), GS_OK);
	assert_int_equal(ag_outbox_new(f->db, &f->ob), GS_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[300];

	ag_outbox_free(f->ob);
	ag_device_free(f->dev);
	ag_store_close(f->st);
	f->home[strlen(f->home) - 2] = '\0';
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->home);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/*
 * Adds n new records as a save would: each with its unsent change row,
 * or, with pending set, with its creation waiting in pending_creation
 * (schema/agent/0008: no change row until a batch takes it).  Pending
 * creations are told apart by author 'w2' and created_at 2.
 */
static void
add_records(struct fx *f, int n, const char *fields, int64_t base_rev,
    int pending)
{
	struct gs_stmt *rec = NULL, *ch = NULL;
	char uuid[37], cid[37];
	int i;

	assert_int_equal(gs_stmt_prepare(f->db,
			     "INSERT INTO record (uuid, type, form_version, "
			     "grid, fields, rev, created_at, updated_at, author) "
			     "VALUES (?1, 'person', 1, 'G1', ?2, ?3, ?4, ?4, ?5)",
			     &rec),
	    GS_OK);
	assert_int_equal(gs_stmt_prepare(f->db, pending ?
			     "INSERT INTO pending_creation (change_id, uuid) "
			     "VALUES (?1, ?2)" :
			     "INSERT INTO change (change_id, uuid, type, "
			     "form_version, grid, op, base_rev, fields, author, "
			     "created_at, updated_at) VALUES (?1, ?2, 'person', "
			     "1, 'G1', 'upsert', ?4, ?3, 'w1', 1, 1)",
			     &ch),
	    GS_OK);
	assert_int_equal(gs_db_begin(f->db), GS_OK);
	for (i = 0; i < n; i++) {
		gs_uuid_v7(uuid);
		gs_uuid_v7(cid);
		assert_int_equal(gs_stmt_bind_text(rec, 1, uuid), GS_OK);
		assert_int_equal(gs_stmt_bind_text(rec, 2, fields), GS_OK);
		assert_int_equal(gs_stmt_bind_int64(rec, 3, base_rev), GS_OK);
		assert_int_equal(gs_stmt_bind_int64(rec, 4, pending ? 2 : 1),
		    GS_OK);
		assert_int_equal(gs_stmt_bind_text(rec, 5, pending ? "w2" : "w1"),
		    GS_OK);
		assert_int_equal(gs_stmt_step(rec), GS_DONE);
		assert_int_equal(gs_stmt_bind_text(ch, 1, cid), GS_OK);
		assert_int_equal(gs_stmt_bind_text(ch, 2, uuid), GS_OK);
		if (!pending) {
			assert_int_equal(gs_stmt_bind_text(ch, 3, fields), GS_OK);
			assert_int_equal(
			    gs_stmt_bind_int64(ch, 4, base_rev), GS_OK);
		}
		assert_int_equal(gs_stmt_step(ch), GS_DONE);
	}
	assert_int_equal(gs_db_commit(f->db), GS_OK);
	gs_stmt_finalize(rec);
	gs_stmt_finalize(ch);
}

static void
add_changes(struct fx *f, int n, const char *fields, int64_t base_rev)
{
	add_records(f, n, fields, base_rev, 0);
}

static void
add_pending(struct fx *f, int n, const char *fields)
{
	add_records(f, n, fields, 0, 1);
}

/* Every change row and every sealed creation (schema/agent/0011) as the
 * batched change it stands for. */
#define BATCHED                                                                \
	"(SELECT change_id, uuid, batch_seq, state FROM change UNION ALL "     \
	"SELECT change_id, uuid, batch_seq, 1 FROM sealed_creation)"

static int64_t
q1(struct fx *f, const char *sql)
{
	struct gs_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(gs_stmt_prepare(f->db, sql, &st), GS_OK);
	assert_int_equal(gs_stmt_one_int64(st, -1, &v), GS_OK);
	gs_stmt_finalize(st);
	return v;
}

/* Opens a stored envelope as the platform would, and decodes it. */
static void
open_row(struct fx *f, const struct ag_outbox_row *row, struct gs_batch *b,
    unsigned char prev[32])
{
	struct gs_envelope_header h;
	struct gs_buf plain;

	gs_buf_init(&plain, 64 << 20);
	assert_int_equal(
	    gs_envelope_parse(&h, row->envelope, row->len, NULL), GS_OK);
	assert_int_equal(
	    gs_envelope_verify(&h, row->envelope, row->len, f->dev->sign_pk),
	    GS_OK);
	assert_int_equal(gs_envelope_open(&plain, &h, row->envelope, row->len,
			     f->bpk, f->bsk),
	    GS_OK);
	assert_int_equal(gs_batch_decode(b, plain.data, plain.len, 0), GS_OK);
	assert_int_equal(gs_batch_check_envelope(&b->hdr, h.deployment,
			     h.device, h.batch, h.seq, h.count),
	    GS_OK);
	assert_int_equal((int64_t)h.seq, row->seq);
	assert_memory_equal(h.batch, row->batch_id, 16);
	memcpy(prev, h.prev_hash, 32);
	gs_buf_release(&plain);
}

/* The plaintext of a stored envelope, as the platform opens it. */
static void
open_plain(struct fx *f, const struct ag_outbox_row *row, struct gs_buf *plain)
{
	struct gs_envelope_header h;

	gs_buf_init(plain, 64 << 20);
	assert_int_equal(
	    gs_envelope_parse(&h, row->envelope, row->len, NULL), GS_OK);
	assert_int_equal(gs_envelope_open(plain, &h, row->envelope, row->len,
			     f->bpk, f->bsk),
	    GS_OK);
}

/* The opener callbacks of a protected store, counted. */
static int opened_json, opened_text;

static int
count_open_json(void *ctx, const char *uuid, int fv, json_t *fields)
{
	opened_json++;
	return ag_store_open_fields_cb(ctx, uuid, fv, fields);
}

static int
count_open_text(void *ctx, const char *uuid, int fv, const char *sealed,
    size_t len, struct gs_buf *out)
{
	opened_text++;
	return ag_store_open_text_cb(ctx, uuid, fv, sealed, len, out);
}

/* Seals every unsent change into one batch and returns its plaintext;
 * then makes them unsent again, and the device's chain as it was. */
static void
seal_plain(struct fx *f, struct gs_buf *plain)
{
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	int found;

	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 1);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_OK);
	assert_true(found);
	open_plain(f, &row, plain);
	ag_outbox_row_release(&row);
	assert_int_equal(gs_db_exec(f->db,
			     "UPDATE change SET state = 0, batch_seq = NULL, "
			     "updated_at = 1; "
			     "DELETE FROM outbox; DELETE FROM outbox_envelope; "
			     "UPDATE device SET "
			     "last_seq = 0, chain_head = zeroblob(32)"),
	    GS_OK);
}

/*
 * Sealing copies stored fields into the line when they are spelled as
 * the encoder writes them (members in any order, personal data sealed in
 * "$pii"), and parses and encodes them otherwise: the batch is the same
 * to the byte either way, and the platform's strict decoder takes it.
 */
static void
test_fast_lines_same_bytes(void **state)
{
	static const char *const stored[] = {
		/* As the store writes a person: form order, pii sealed. */
		"{\"name\":\"陈静红\",\"pop_type\":\"FLOATING\","
		"\"id_number\":\"431224194403170444\",\"sex\":\"2\","
		"\"phone\":\"18685443125\",\"address\":\"广东省深圳市\"}",
		/* Sorted, no pii at all. */
		"{\"pop_type\":\"REGISTERED\",\"sex\":\"1\"}",
		"{}",
		/* Nested values, integers, literals; pii too. */
		"{\"z\":[1,-2,{\"a\":true,\"b\":null}],\"name\":\"x\","
		"\"n\":123456789012345678,\"m\":false}",
		/* The slow way: whitespace, an escape, a real, a nested
		 * object out of order, a 19-digit integer. */
		"{\"pop_type\": \"FLOATING\",\"name\":\"张三\"}",
		"{\"note\":\"a\\\"b\",\"name\":\"李四\"}",
		"{\"height\":1.75,\"name\":\"王五\"}",
		"{\"extra\":{\"b\":1,\"a\":2},\"name\":\"赵六\"}",
		"{\"n\":1234567890123456789,\"name\":\"钱七\"}",
	};
	/* A stored member named like one sealed: the slow way decides. */
	static const char clash[] = "{\"name\":\"shown\",\"sex\":\"1\"}";
	const size_t nstored = sizeof stored / sizeof stored[0];
	struct fx *f = *state;
	const struct gs_form *form =
	    gs_schema_form(ag_store_schema(f->st), "person");
	struct ag_crypt *c = NULL;
	struct gs_stmt *ins = NULL;
	struct gs_buf fast, slow;
	unsigned char dek[AG_DEK_BYTES];
	size_t i;

	assert_non_null(form);
	gs_random(dek, sizeof dek);
	assert_int_equal(ag_crypt_new(dek, &c), GS_OK);
	ag_store_set_crypt(f->st, c);
	ag_outbox_set_opener(f->ob, count_open_json, count_open_text, f->st);
	assert_int_equal(gs_stmt_prepare(f->db,
			     "INSERT INTO change (change_id, uuid, type, "
			     "form_version, grid, op, base_rev, fields, author, "
			     "created_at, updated_at) VALUES (?1, ?2, 'person', "
			     "1, 'G1', 'upsert', 0, ?3, 'w1', 1, 1)",
			     &ins),
	    GS_OK);
	for (i = 0; i <= nstored; i++) {
		char uuid[37], cid[37], why[96];
		json_t *o = NULL;
		char *text;

		gs_uuid_v7(uuid);
		gs_uuid_v7(cid);
		assert_int_equal(gs_json_parse(i < nstored ? stored[i] : clash,
				     strlen(i < nstored ? stored[i] : clash),
				     &o, why, sizeof why),
		    GS_OK);
		/* Sealed as a save seals: the pii members into "$pii". */
		assert_int_equal(ag_crypt_seal(c, form, uuid, 1, o), GS_OK);
		if (i == nstored)
			json_object_set_new(o, "name", json_string("stored"));
		if (i < 4 || i == nstored) {
			/* Written back as jansson orders it (form order,
			 * "$pii" last), as the store does. */
			text = json_dumps(o, JSON_COMPACT);
		} else {
			/* Keep the odd spelling; add the sealed member. */
			json_t *pii = json_object_get(o, AG_PII_MEMBER);
			size_t n = strlen(stored[i]);

			assert_non_null(pii);
			text = malloc(n + strlen(json_string_value(pii)) + 16);
			assert_non_null(text);
			snprintf(text, n + strlen(json_string_value(pii)) + 16,
			    "%.*s,\"$pii\":\"%s\"}", (int)n - 1, stored[i],
			    json_string_value(pii));
		}
		assert_non_null(text);
		assert_int_equal(gs_stmt_bind_text(ins, 1, cid), GS_OK);
		assert_int_equal(gs_stmt_bind_text(ins, 2, uuid), GS_OK);
		assert_int_equal(gs_stmt_bind_text(ins, 3, text), GS_OK);
		assert_int_equal(gs_stmt_step(ins), GS_DONE);
		gs_stmt_reset(ins);
		free(text);
		json_decref(o);
	}
	gs_stmt_finalize(ins);

	opened_json = opened_text = 0;
	seal_plain(f, &fast);
	/* Eight changes hold pii.  Fast: the three spelled as the encoder
	 * writes opened as text; the clash, found then, and the five odd
	 * spellings (never opened as text) went the slow way. */
	assert_int_equal(opened_text, 3);
	assert_int_equal(opened_json, 6);
	ag_outbox_fast_lines(f->ob, 0);
	opened_json = opened_text = 0;
	seal_plain(f, &slow);
	assert_int_equal(opened_text, 0);
	assert_int_equal(opened_json, 8);
	/* The change lines (the header names a new batch id each time). */
	{
		const char *a = memchr(fast.data, '\n', fast.len);
		const char *b = memchr(slow.data, '\n', slow.len);
		size_t na, nb;

		assert_non_null(a);
		assert_non_null(b);
		na = fast.len - (size_t)(a - fast.data);
		nb = slow.len - (size_t)(b - slow.data);
		if (na != nb || memcmp(a, b, na) != 0)
			fail_msg("the two ways differ:\n fast %.*s\n slow %.*s",
			    (int)na, a, (int)nb, b);
	}
	/* The clash: the sealed value wins, as the slow way's update. */
	assert_non_null(strstr(fast.data, "\"name\":\"shown\""));
	assert_null(strstr(fast.data, "\"stored\""));
	{
		struct gs_batch b;

		assert_int_equal(
		    gs_batch_decode(&b, fast.data, fast.len, 0), GS_OK);
		assert_int_equal(b.n, nstored + 1);
		gs_batch_release(&b);
	}
	gs_crypto_memzero(fast.data, fast.len);
	gs_crypto_memzero(slow.data, slow.len);
	gs_buf_release(&fast);
	gs_buf_release(&slow);
}

static void
test_nothing_to_seal(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;

	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox"), 0);
}

static void
test_split_and_chain(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	struct gs_batch b;
	unsigned char prev[32], want_prev[32];
	int64_t after = 0;
	int found, nb = 0, total = 0;

	add_changes(f, 25, "{\"name\":\"张三\"}", 0);
	ag_outbox_limits_for(f->dev, &lim);
	lim.max_records = 10;
	do {
		assert_int_equal(
		    ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	} while (info.seq != 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox"), 3);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM change WHERE state = 1"), 25);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 1 "
			       "AND batch_seq IS NULL"),
	    0);
	assert_int_equal(q1(f, "SELECT last_seq FROM device"), 3);

	/* Every envelope opens, holds its changes in change_id order, and
	 * names the previous envelope's hash: the chain. */
	memset(want_prev, 0, 32);
	for (;;) {
		assert_int_equal(
		    ag_outbox_next_sealed(f->ob, after, &row, &found), GS_OK);
		if (!found)
			break;
		open_row(f, &row, &b, prev);
		assert_memory_equal(prev, want_prev, 32);
		memcpy(want_prev, row.hash, 32);
		assert_int_equal(b.n, row.record_count);
		assert_int_equal(b.n, nb < 2 ? 10 : 5);
		for (size_t i = 1; i < b.n; i++)
			assert_true(strcmp(b.changes[i - 1].change_id,
					b.changes[i].change_id) < 0);
		total += (int)b.n;
		gs_batch_release(&b);
		after = row.seq;
		ag_outbox_row_release(&row);
		nb++;
	}
	assert_int_equal(nb, 3);
	assert_int_equal(total, 25);
	/* The device's chain head is the last envelope's hash. */
	assert_memory_equal(f->dev->chain_head, want_prev, 32);
}

static void
test_byte_budget(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	char fields[1200];
	int batches = 0;

	snprintf(fields, sizeof(fields), "{\"address\":\"%0900d\"}", 7);
	add_changes(f, 20, fields, 0);
	ag_outbox_limits_for(f->dev, &lim);
	lim.max_plain = 5000; /* room for four such lines */
	for (;;) {
		assert_int_equal(
		    ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
		if (info.seq == 0)
			break;
		assert_true(info.plain_bytes <= 5000);
		assert_true(info.count >= 1 && info.count <= 4);
		batches++;
	}
	assert_int_equal(batches, 5);
	assert_int_equal(q1(f, "SELECT sum(record_count) FROM outbox"), 20);
}

static void
test_unsendable_skipped(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;

	add_changes(f, 3, "{\"name\":\"a\"}", 0);
	/* A stored change whose fields are not an object cannot be encoded:
	 * it is marked rejected instead of blocking the queue. */
	assert_int_equal(
	    gs_db_exec(f->db,
		"UPDATE change SET fields = '[1]' "
		"WHERE change_id = (SELECT min(change_id) FROM change)"),
	    GS_OK);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 1);
	assert_int_equal(info.count, 2);
	assert_int_equal(info.skipped, 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 3 "
			       "AND problem IS NOT NULL"),
	    1);
}

/*
 * A change an older agent stored under a clock before 1970 has negative
 * times, which the encoder refuses (docs/PROTOCOL.md: times >= 0): it is
 * sent with them raised to 0, a pending creation as well, and nothing is
 * marked rejected.  The others keep their times.
 */
static void
test_negative_times_sent(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	struct gs_batch b;
	unsigned char prev[32];
	size_t i, zero = 0;
	int found;

	add_changes(f, 3, "{\"name\":\"a\"}", 0);
	add_pending(f, 1, "{\"name\":\"b\"}");
	assert_int_equal(gs_db_exec(f->db,
			     "UPDATE change SET created_at = -86400000, "
			     "updated_at = -5000 WHERE change_id = "
			     "(SELECT min(change_id) FROM change); "
			     "UPDATE record SET created_at = -2000000000000, "
			     "updated_at = -2000000000000 WHERE uuid IN "
			     "(SELECT uuid FROM pending_creation)"),
	    GS_OK);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.count, 4);
	assert_int_equal(info.skipped, 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 3"),
	    0);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_OK);
	assert_true(found);
	memset(&b, 0, sizeof(b));
	open_row(f, &row, &b, prev);
	assert_int_equal(b.n, 4);
	for (i = 0; i < b.n; i++) {
		assert_true(b.changes[i].created_at >= 0);
		assert_true(b.changes[i].updated_at >= 0);
		zero += b.changes[i].created_at == 0;
	}
	assert_int_equal(zero, 2);
	gs_batch_release(&b);
	ag_outbox_row_release(&row);
}

/*
 * Unsent changes and pending creations in the same run of batches: the
 * changes go first, then the creations; a creation's change row is
 * written only by the batch that takes it, already batched, and leaves
 * pending_creation then; every record goes exactly once, with the
 * record's fields; every batch's changes are exactly the rows marked
 * with its seq.
 */
static void
test_pending_creations(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	struct gs_batch b;
	unsigned char prev[32];
	static const int64_t want_pending[] = { 4, 3, 1, 0 };
	char sql[400];
	int64_t after = 0;
	int found, nb = 0, total = 0, creations = 0;

	add_changes(f, 3, "{\"name\":\"a\"}", 0);
	add_pending(f, 4, "{\"name\":\"b\"}");
	ag_outbox_limits_for(f->dev, &lim);
	lim.max_records = 2;
	for (;;) {
		assert_int_equal(
		    ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
		if (info.seq == 0)
			break;
		assert_true(nb < 4);
		assert_int_equal(q1(f, "SELECT count(*) FROM pending_creation"),
		    want_pending[nb]);
		nb++;
	}
	assert_int_equal(nb, 4);
	/* The changes batched as rows, the creations as sealed_creation
	 * rows (schema/agent/0011), every one with its batch. */
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 1 "
			       "AND batch_seq IS NOT NULL"),
	    3);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation AS s "
			       "JOIN record AS r ON r.uuid = s.uuid JOIN outbox "
			       "AS o ON o.seq = s.batch_seq AND s.uuid BETWEEN "
			       "o.first_creation AND o.last_creation WHERE "
			       "r.author = 'w2' AND r.created_at = 2"),
	    4);
	for (;;) {
		assert_int_equal(
		    ag_outbox_next_sealed(f->ob, after, &row, &found), GS_OK);
		if (!found)
			break;
		open_row(f, &row, &b, prev);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM " BATCHED
		    " WHERE batch_seq = %lld", (long long)row.seq);
		assert_int_equal(q1(f, sql), (int64_t)b.n);
		for (size_t i = 0; i < b.n; i++) {
			const char *name = json_string_value(json_object_get(
			    b.changes[i].fields, "name"));

			assert_non_null(name);
			snprintf(sql, sizeof(sql), "SELECT count(*) FROM "
			    BATCHED " WHERE change_id = '%s' AND uuid = '%s' "
			    "AND batch_seq = %lld", b.changes[i].change_id,
			    b.changes[i].uuid, (long long)row.seq);
			assert_int_equal(q1(f, sql), 1);
			/* Changes first, then creations. */
			if (strcmp(name, "b") == 0)
				creations++;
			else
				assert_int_equal(creations, 0);
		}
		total += (int)b.n;
		gs_batch_release(&b);
		after = row.seq;
		ag_outbox_row_release(&row);
	}
	assert_int_equal(total, 7);
	assert_int_equal(creations, 4);
	assert_int_equal(q1(f, "SELECT count(DISTINCT uuid) FROM " BATCHED), 7);
}

/*
 * The pending creations are read with their records by walking record
 * alongside pending_creation (agent/outbox.c pend_next): records that are
 * not pending lie between them, a few (stepped over) or many (sought
 * past), before the first and after the last.  Every creation is sealed
 * once, in uuid order, with its own record's fields and its own change_id,
 * batch after batch, as the join of AG_PEND_FROM would read them.
 */
#define WALK_N 160

static int
walk_pending(int i)
{
	/* Runs of pending creations, gaps of 1, 3 and 20 records between
	 * (PEND_SKIPS is 8), none pending among the first and last 12. */
	if (i < 12 || i >= WALK_N - 12)
		return 0;
	if (i < 40)
		return i % 2 == 0;
	if (i < 80)
		return i % 4 == 1;
	if (i < 120)
		return i % 21 == 0 || i % 21 == 1;
	return i != 130;
}

static int
uuid_order(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_pending_walk(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	struct gs_stmt *rec = NULL, *pend = NULL;
	struct gs_batch b;
	unsigned char prev[32];
	static char uuid[WALK_N][37], cid[WALK_N][37];
	char fields[64], last[37] = "";
	int64_t after = 0;
	int i, found, seen[WALK_N], npend = 0, total = 0;

	for (i = 0; i < WALK_N; i++)
		gs_uuid_v7(uuid[i]);
	qsort(uuid, WALK_N, sizeof(uuid[0]), uuid_order);
	assert_int_equal(gs_stmt_prepare(f->db,
			     "INSERT INTO record (uuid, type, form_version, "
			     "grid, fields, rev, created_at, updated_at, author) "
			     "VALUES (?1, 'person', 1, 'G1', ?2, ?3, 2, 2, 'w2')",
			     &rec),
	    GS_OK);
	assert_int_equal(gs_stmt_prepare(f->db,
			     "INSERT INTO pending_creation (change_id, uuid) "
			     "VALUES (?1, ?2)", &pend),
	    GS_OK);
	assert_int_equal(gs_db_begin(f->db), GS_OK);
	/* Inserted out of order: the tables' order is their keys'. */
	for (int j = 0; j < WALK_N; j++) {
		i = (j * 37) % WALK_N;
		snprintf(fields, sizeof(fields), "{\"name\":\"r%d\"}", i);
		assert_int_equal(gs_stmt_bind_text(rec, 1, uuid[i]), GS_OK);
		assert_int_equal(gs_stmt_bind_text(rec, 2, fields), GS_OK);
		assert_int_equal(gs_stmt_bind_int64(rec, 3,
				     walk_pending(i) ? 0 : 1), GS_OK);
		assert_int_equal(gs_stmt_step(rec), GS_DONE);
		if (!walk_pending(i))
			continue;
		gs_uuid_v7(cid[i]);
		assert_int_equal(gs_stmt_bind_text(pend, 1, cid[i]), GS_OK);
		assert_int_equal(gs_stmt_bind_text(pend, 2, uuid[i]), GS_OK);
		assert_int_equal(gs_stmt_step(pend), GS_DONE);
		npend++;
	}
	assert_int_equal(gs_db_commit(f->db), GS_OK);
	gs_stmt_finalize(rec);
	gs_stmt_finalize(pend);

	ag_outbox_limits_for(f->dev, &lim);
	lim.max_records = 7;
	do
		assert_int_equal(
		    ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	while (info.seq != 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM pending_creation"), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), npend);
	memset(seen, 0, sizeof(seen));
	for (;;) {
		assert_int_equal(
		    ag_outbox_next_sealed(f->ob, after, &row, &found), GS_OK);
		if (!found)
			break;
		open_row(f, &row, &b, prev);
		/* Full batches but the last: no creation passed over. */
		assert_int_equal((int)b.n, npend - total < 7 ? npend - total : 7);
		for (size_t n = 0; n < b.n; n++) {
			const struct gs_change *c = &b.changes[n];
			const char *name = json_string_value(
			    json_object_get(c->fields, "name"));
			char *end = NULL;

			/* In uuid order across every batch. */
			assert_true(strcmp(last, c->uuid) < 0);
			gs_strlcpy(last, c->uuid, sizeof(last));
			assert_non_null(name);
			assert_int_equal(name[0], 'r');
			i = (int)strtol(name + 1, &end, 10);
			assert_true(i >= 0 && i < WALK_N && *end == '\0');
			assert_true(walk_pending(i));
			assert_string_equal(c->uuid, uuid[i]);
			assert_string_equal(c->change_id, cid[i]);
			assert_int_equal(c->base_rev, 0);
			assert_int_equal(c->created_at, 2);
			assert_string_equal(c->author, "w2");
			assert_int_equal(seen[i]++, 0);
			total++;
		}
		gs_batch_release(&b);
		after = row.seq;
		ag_outbox_row_release(&row);
	}
	assert_int_equal(total, npend);
}

/*
 * ag_outbox_pending agrees with ag_outbox_counts at every step of a
 * sealing, and finds its counts in indexes: no scan of the change table
 * (a sync reads it at its end, sync --watch at every look for saves).
 */
static void
test_pending_counts(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_counts c;
	struct gs_stmt *st = NULL;
	int64_t unsent, sealed;
	int steps = 0, r;

	add_changes(f, 3, "{\"name\":\"a\"}", 0);
	add_pending(f, 4, "{\"name\":\"b\"}");
	ag_outbox_limits_for(f->dev, &lim);
	lim.max_records = 2;
	for (;;) {
		assert_int_equal(ag_outbox_counts(f->db, &c), GS_OK);
		assert_int_equal(
		    ag_outbox_pending(f->db, &unsent, &sealed), GS_OK);
		assert_int_equal(unsent, c.changes[0]);
		assert_int_equal(sealed, c.sealed);
		/* Without unsent: the sealed batches alone. */
		sealed = -1;
		assert_int_equal(
		    ag_outbox_pending(f->db, NULL, &sealed), GS_OK);
		assert_int_equal(sealed, c.sealed);
		assert_int_equal(unsent + 2 * sealed - (steps == 4), 7);
		assert_int_equal(
		    ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
		if (info.seq == 0)
			break;
		steps++;
	}
	assert_int_equal(steps, 4);
	assert_int_equal(unsent, 0);
	assert_int_equal(sealed, 4);
	assert_int_equal(gs_stmt_prepare(f->db,
			     "EXPLAIN QUERY PLAN " AG_SQL_PENDING, &st),
	    GS_OK);
	while ((r = gs_stmt_step(st)) == GS_ROW) {
		const char *d = gs_stmt_text(st, 3);

		assert_non_null(d);
		/* Only the partial index of unsent changes is walked. */
		if (strstr(d, "SCAN change") != NULL)
			assert_non_null(strstr(d, "USING INDEX change_unsent"));
		if (strstr(d, "outbox") != NULL)
			assert_non_null(strstr(d, "INDEX outbox_by_state"));
	}
	assert_int_equal(r, GS_DONE);
	gs_stmt_finalize(st);
}

/* An envelope over its cap is sealed again with half the lines: the cut
 * lands among the pending creations, and only those sealed leave
 * pending_creation. */
static void
test_pending_halved(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	unsigned char rnd[1000];
	char fields[2100], hex[2001];
	int i, nb = 0;

	for (i = 0; i < 8; i++) {
		gs_random(rnd, sizeof(rnd));
		gs_hex_encode(hex, rnd, sizeof(rnd));
		snprintf(fields, sizeof(fields), "{\"name\":\"%s\"}", hex);
		if (i == 0)
			add_changes(f, 1, fields, 0);
		else
			add_pending(f, 1, fields);
	}
	ag_outbox_limits_for(f->dev, &lim);
	/* About two such lines (1,000 random bytes in hex deflate to
	 * about 1,100) fit. */
	lim.max_envelope = 3000;
	for (;;) {
		assert_int_equal(
		    ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
		if (info.seq == 0)
			break;
		assert_true(info.bytes <= 3000);
		assert_true(info.count >= 1 && info.count <= 2);
		nb++;
	}
	assert_true(nb >= 4);
	assert_int_equal(q1(f, "SELECT sum(record_count) FROM outbox"), 8);
	assert_int_equal(q1(f, "SELECT count(*) FROM pending_creation"), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM " BATCHED " WHERE "
			       "state = 1 AND batch_seq IS NOT NULL"),
	    8);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox AS o WHERE "
			       "record_count <> (SELECT count(*) FROM " BATCHED
			       " WHERE batch_seq = o.seq)"),
	    0);
}

/* A pending creation that cannot be encoded is written out as a change
 * and marked rejected; the other creations still go. */
static void
test_unsendable_pending(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;

	add_pending(f, 3, "{\"name\":\"a\"}");
	assert_int_equal(gs_db_exec(f->db, "UPDATE record SET fields = '[1]' "
					   "WHERE uuid = (SELECT max(uuid) FROM "
					   "pending_creation)"),
	    GS_OK);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 1);
	assert_int_equal(info.count, 2);
	assert_int_equal(info.skipped, 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 3 "
			       "AND problem LIKE 'cannot be sent: %'"),
	    1);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM change WHERE state = 1"), 2);
	assert_int_equal(q1(f, "SELECT count(*) FROM pending_creation"), 0);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 0);
}

/* Signs a receipt for row as the platform would. */
static void
receipt_for(struct fx *f, const struct ag_outbox_row *row, int status,
    const char *results, unsigned char out[GS_RECEIPT_BYTES])
{
	struct gs_receipt r;

	memset(&r, 0, sizeof(r));
	memcpy(r.deployment, f->dev->deployment, 16);
	memcpy(r.device, f->dev->device_id, 16);
	memcpy(r.batch, row->batch_id, 16);
	r.seq = (uint64_t)row->seq;
	memcpy(r.envelope_hash, row->hash, 32);
	r.status = (uint8_t)status;
	assert_int_equal(
	    gs_receipt_sign(out, &r, results, strlen(results), f->rsk), GS_OK);
}

static void
test_ack_results(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	unsigned char rc[GS_RECEIPT_BYTES];
	char results[600], q[400], c1[37], c2[37], c3[37];
	struct gs_stmt *st = NULL;
	int found;

	add_changes(f, 5, "{\"name\":\"a\"}", 0);
	add_changes(f, 1, "{\"name\":\"b\"}", 4); /* an edit of rev 4 */
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.count, 6);
	assert_int_equal(gs_stmt_prepare(f->db,
			     "SELECT change_id FROM change "
			     "ORDER BY change_id",
			     &st),
	    GS_OK);
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	gs_strlcpy(c1, gs_stmt_text(st, 0), sizeof(c1));
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	gs_strlcpy(c2, gs_stmt_text(st, 0), sizeof(c2));
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	gs_strlcpy(c3, gs_stmt_text(st, 0), sizeof(c3));
	gs_stmt_finalize(st);
	snprintf(results, sizeof(results),
	    "[{\"change_id\":\"%s\",\"uuid\":\"u\",\"status\":\"quarantined\","
	    "\"reasons\":[{\"field\":\"id_number\",\"rule\":\"check_digit\","
	    "\"message\":\"bad\"}]},"
	    "{\"change_id\":\"%s\",\"uuid\":\"u\",\"status\":\"conflict\","
	    "\"rev\":2,\"reasons\":[]},"
	    "{\"change_id\":\"%s\",\"uuid\":\"u\",\"status\":\"merged\","
	    "\"rev\":7}]",
	    c1, c2, c3);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_OK);
	assert_true(found);
	receipt_for(f, &row, GS_RECEIPT_ACCEPTED, results, rc);
	assert_int_equal(ag_outbox_ack(f->ob, &row, GS_RECEIPT_ACCEPTED, rc,
			     sizeof(rc), results),
	    GS_OK);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM outbox WHERE state = "
		  "'acked' AND receipt IS NOT NULL AND acked_at IS NOT NULL"),
	    1);
	/* The upload that brought the receipt counts as an attempt, in the
	 * same transaction. */
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox WHERE attempts = "
			       "1 AND last_attempt_at IS NOT NULL"),
	    1);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM change WHERE state = 2"), 4);
	snprintf(q, sizeof(q),
	    "SELECT state FROM change WHERE change_id = "
	    "'%s'",
	    c1);
	assert_int_equal(q1(f, q), 4);
	snprintf(q, sizeof(q),
	    "SELECT state FROM change WHERE change_id = "
	    "'%s'",
	    c2);
	assert_int_equal(q1(f, q), 5);
	snprintf(q, sizeof(q),
	    "SELECT " AG_SQL_REV("r") " FROM record AS r WHERE uuid = "
	    "(SELECT uuid FROM change WHERE change_id = '%s')",
	    c3);
	assert_int_equal(q1(f, q), 7);
	/* Fast-forwarded: rev = base_rev + 1; quarantined/conflicted
	 * records keep theirs. */
	assert_int_equal(q1(f, "SELECT count(*) FROM record AS r WHERE "
			       AG_SQL_REV("r") " = 1"), 2);
	assert_int_equal(q1(f, "SELECT count(*) FROM record AS r WHERE "
			       AG_SQL_REV("r") " = 5"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM record AS r WHERE "
			       AG_SQL_REV("r") " = 0"), 2);
	/* ... recorded in record_rev (schema/agent/0009): no record row
	 * was rewritten to raise its rev. */
	assert_int_equal(q1(f, "SELECT count(*) FROM record_rev"), 4);
	assert_int_equal(q1(f, "SELECT count(*) FROM record WHERE rev = 0"), 5);
	assert_int_equal(q1(f, "SELECT count(*) FROM record WHERE rev = 4"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE problem "
			       "LIKE '%check_digit%'"),
	    1);

	/* A second ack of the same row changes nothing. */
	assert_int_equal(ag_outbox_ack(f->ob, &row, GS_RECEIPT_ACCEPTED, rc,
			     sizeof(rc), results),
	    GS_OK);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM change WHERE state = 2"), 4);
	ag_outbox_row_release(&row);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_OK);
	assert_false(found);
}

/* The rev of one record as ag_list hands it over: ctx is {uuid, rev}. */
struct rev_seen {
	const char *uuid;
	int64_t rev;
};

static int
on_list_rev(void *ctx, const struct ag_record *rec)
{
	struct rev_seen *w = ctx;

	if (strcmp(rec->uuid, w->uuid) == 0)
		w->rev = rec->rev;
	return 0;
}

static int64_t
listed_rev(struct fx *f, const char *uuid)
{
	struct rev_seen w = { uuid, -1 };

	assert_int_equal(ag_list(f->st, NULL, AG_LIST_DELETED, on_list_rev,
			     &w),
	    GS_OK);
	return w.rev;
}

/* ag_get's JSON of uuid, parsed (caller decrefs). */
static json_t *
got_json(struct fx *f, const char *uuid)
{
	char *json = NULL;
	json_t *o;

	assert_int_equal(ag_get(f->st, uuid, &json), GS_OK);
	o = json_loads(json, 0, NULL);
	ag_free(json);
	assert_non_null(o);
	return o;
}

/* The "rev" of ag_get's JSON. */
static int64_t
got_rev(struct fx *f, const char *uuid)
{
	json_t *o = got_json(f, uuid);
	int64_t v;

	assert_true(json_is_integer(json_object_get(o, "rev")));
	v = json_integer_value(json_object_get(o, "rev"));
	json_decref(o);
	return v;
}

/* The "pending" flag get (show) prints for uuid. */
static int
got_pending(struct fx *f, const char *uuid)
{
	json_t *o = got_json(f, uuid);
	int v;

	assert_true(json_is_boolean(json_object_get(o, "pending")));
	v = json_is_true(json_object_get(o, "pending"));
	json_decref(o);
	return v;
}

static int64_t
base_rev_of(struct fx *f, const char *uuid)
{
	char q[200];

	snprintf(q, sizeof(q), "SELECT base_rev FROM change WHERE uuid = "
	    "'%s' AND state = 0", uuid);
	return q1(f, q);
}

/* The uuid of the n-th pending creation in key order (out: 37 bytes). */
static void
nth_pending(struct fx *f, int n, char *out)
{
	struct gs_stmt *st = NULL;

	assert_int_equal(gs_stmt_prepare(f->db, "SELECT uuid FROM "
			     "pending_creation ORDER BY uuid LIMIT 1 OFFSET ?1",
			     &st),
	    GS_OK);
	assert_int_equal(gs_stmt_bind_int64(st, 1, n), GS_OK);
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	gs_strlcpy(out, gs_stmt_text(st, 0), 37);
	gs_stmt_finalize(st);
}

/* Acks (empty results) or quarantines the batch of seq. */
static void
receipt_of(struct fx *f, int64_t seq, int status)
{
	struct ag_outbox_row row;
	unsigned char rc[GS_RECEIPT_BYTES];
	int found;

	assert_int_equal(
	    ag_outbox_next_sealed(f->ob, seq - 1, &row, &found), GS_OK);
	assert_true(found);
	assert_int_equal(row.seq, seq);
	receipt_for(f, &row, status, "[]", rc);
	assert_int_equal(
	    ag_outbox_ack(f->ob, &row, status, rc, sizeof(rc), "[]"), GS_OK);
	ag_outbox_row_release(&row);
}

/*
 * A sealed creation waits for its receipt in sealed_creation (schema/
 * agent/0011), counted as batched, and the receipt writes its change row
 * in its final state: delivered (rev 1), rejected or quarantined, with
 * every column a creation's change row had before.  A record saved under
 * a clock set back, inside an older batch's range, stays with its own
 * batch; an edit of a creation in flight writes its change row as
 * batched, never as unsent, and is sent once, after it.
 */
static void
test_sealed_creations(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_counts n;
	struct ag_outbox_row row;
	const char *rec = "{\"name\":\"甲\",\"pop_type\":\"REGISTERED\","
			  "\"id_number\":\"440307198503151230\","
			  "\"address\":\"深圳市大鹏新区葵涌街道1号\"}";
	const char *e = "{\"note\":\"x\"}";
	char u[4][AG_UUID_LEN + 1], mid[37], sql[400];
	int i, j, found;

	for (i = 0; i < 3; i++)
		assert_int_equal(ag_collect(f->st, "person", rec, strlen(rec),
		    u[i]), GS_OK);
	/* The middle one is saved "later", under a clock set back: its
	 * creation waits aside while the other two are sealed. */
	nth_pending(f, 1, mid);
	assert_int_equal(gs_db_exec(f->db, "CREATE TEMP TABLE aside AS "
			     "SELECT * FROM pending_creation WHERE uuid = "
			     "(SELECT uuid FROM pending_creation ORDER BY uuid "
			     "LIMIT 1 OFFSET 1); DELETE FROM pending_creation "
			     "WHERE uuid IN (SELECT uuid FROM aside)"),
	    GS_OK);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 1);
	assert_int_equal(info.count, 2);
	assert_int_equal(gs_db_exec(f->db, "INSERT INTO pending_creation "
			     "SELECT * FROM aside; DROP TABLE aside"),
	    GS_OK);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 2);
	assert_int_equal(info.count, 1);
	/* Batch 1's range holds batch 2's creation. */
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM outbox WHERE seq = 1 "
	    "AND '%s' BETWEEN first_creation AND last_creation", mid);
	assert_int_equal(q1(f, sql), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change"), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 3);
	assert_int_equal(ag_outbox_counts(f->db, &n), GS_OK);
	assert_int_equal(n.changes[0], 0);
	assert_int_equal(n.changes[1], 3);

	/* An edit of batch 1's first creation, in flight: its creation
	 * becomes a batched change row (as the seal left it), the edit an
	 * unsent change of its own, based on rev 0. */
	assert_int_equal(q1(f, "SELECT count(*) FROM pending_creation"), 0);
	i = strcmp(u[0], mid) != 0 ? 0 : 1; /* not the one set aside */
	assert_int_equal(ag_edit(f->st, u[i], e, strlen(e)), GS_OK);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM change AS c JOIN "
	    "outbox AS o ON o.seq = c.batch_seq WHERE c.uuid = '%s' AND "
	    "c.state = 1 AND c.batch_seq = 1 AND c.updated_at = o.created_at "
	    "AND c.base_rev = 0 AND c.fields IS NULL", u[i]);
	assert_int_equal(q1(f, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM change WHERE "
	    "uuid = '%s' AND state = 0 AND base_rev = 0", u[i]);
	assert_int_equal(q1(f, sql), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 2);
	assert_int_equal(ag_outbox_counts(f->db, &n), GS_OK);
	assert_int_equal(n.changes[0], 1);
	assert_int_equal(n.changes[1], 3);

	/* Batch 1 delivered: the creation written out by the edit is
	 * delivered as a change row, the other stays a sealed_creation row,
	 * delivered with its batch (no change row); both at rev 1, neither
	 * pending.  Batch 2's creation, inside batch 1's range, still
	 * waits. */
	receipt_of(f, 1, GS_RECEIPT_ACCEPTED);
	for (j = 0; j < 3 && (j == i || strcmp(u[j], mid) == 0); j++)
		;
	assert_true(j < 3);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM sealed_creation "
	    "WHERE batch_seq = 1 AND uuid = '%s'", u[j]);
	assert_int_equal(q1(f, sql), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation WHERE "
			       "batch_seq = 2"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 2);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM change AS c JOIN "
	    "outbox AS o ON o.seq = c.batch_seq WHERE c.uuid = '%s' AND "
	    "c.state = 2 AND c.batch_seq = 1 AND c.updated_at = o.acked_at",
	    u[i]);
	assert_int_equal(q1(f, sql), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 2"),
	    1);
	assert_int_equal(q1(f, "SELECT count(*) FROM record AS r WHERE "
			       AG_SQL_REV("r") " = 1"), 2);
	/* u[i]'s rev in record_rev (its creation was written out as a
	 * change row); u[j]'s is its delivered sealed creation's
	 * (schema/agent/0012): the receipt wrote no row for it. */
	assert_int_equal(q1(f, "SELECT count(*) FROM record_rev"), 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM record_rev WHERE "
	    "uuid = '%s'", u[i]);
	assert_int_equal(q1(f, sql), 1);
	assert_int_equal(got_rev(f, u[i]), 1);
	assert_int_equal(got_rev(f, u[j]), 1);
	assert_int_equal(got_pending(f, u[j]), 0);
	assert_int_equal(got_pending(f, u[i]), 1); /* its edit */
	assert_int_equal(got_pending(f, mid), 1);
	assert_int_equal(ag_outbox_counts(f->db, &n), GS_OK);
	assert_int_equal(n.changes[0], 1);
	assert_int_equal(n.changes[1], 1);
	assert_int_equal(n.changes[2], 2);
	/* An edit of a delivered creation leaves its row alone: an unsent
	 * change of its own, based on rev 1. */
	assert_int_equal(ag_edit(f->st, u[j], e, strlen(e)), GS_OK);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM change WHERE "
	    "uuid = '%s' AND state = 0 AND base_rev = 1", u[j]);
	assert_int_equal(q1(f, sql), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 2);
	assert_int_equal(ag_outbox_counts(f->db, &n), GS_OK);
	assert_int_equal(n.changes[0], 2);
	assert_int_equal(n.changes[2], 2);

	/* Batch 2 rejected: its creation's row is rejected with the
	 * reason, at rev 0. */
	assert_int_equal(ag_outbox_next_sealed(f->ob, 1, &row, &found), GS_OK);
	assert_true(found);
	assert_int_equal(ag_outbox_reject(f->ob, &row, "batch_too_old"),
	    GS_OK);
	ag_outbox_row_release(&row);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 3 "
			       "AND batch_seq = 2 AND problem = 'batch_too_old' "
			       "AND fields IS NULL AND base_rev = 0"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM record AS r WHERE "
			       AG_SQL_REV("r") " = 0"), 1);

	/* The two edits, sent once, and a new creation, quarantined. */
	assert_int_equal(ag_collect(f->st, "person", rec, strlen(rec), u[3]),
	    GS_OK);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 3);
	assert_int_equal(info.count, 3);
	receipt_of(f, 3, GS_RECEIPT_QUARANTINED);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 4 "
			       "AND batch_seq = 3 AND problem LIKE "
			       "'device revoked%'"), 3);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM change WHERE "
	    "uuid = '%s' AND state = 4 AND fields IS NULL AND base_rev = 0",
	    u[3]);
	assert_int_equal(q1(f, sql), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change"), 5);
	assert_int_equal(ag_outbox_counts(f->db, &n), GS_OK);
	assert_int_equal(n.changes[0] + n.changes[1], 0);
	assert_int_equal(n.changes[2], 2);
	assert_int_equal(n.changes[3], 1);
	assert_int_equal(n.changes[4], 3);
}

/* Closes the store and opens it again, as the next command would (its
 * migrations run). */
static void
reopen(struct fx *f)
{
	ag_outbox_free(f->ob);
	ag_store_close(f->st);
	f->ob = NULL;
	f->st = NULL;
	assert_int_equal(ag_store_open(f->home, &f->st), GS_OK);
	f->db = ag_store_db(f->st);
	assert_int_equal(ag_outbox_new(f->db, &f->ob), GS_OK);
}

/* The one text row sql answers, as a new string. */
static char *
dump_query(struct fx *f, const char *sql)
{
	struct gs_stmt *st = NULL;
	char *out = NULL;

	assert_int_equal(gs_stmt_prepare(f->db, sql, &st), GS_OK);
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	assert_non_null(gs_stmt_text(st, 0));
	out = strdup(gs_stmt_text(st, 0));
	assert_non_null(out);
	gs_stmt_finalize(st);
	return out;
}

/* The change rows, pending and sealed creations and outbox rows of the
 * store as one text (a new string). */
static char *
dump_rows(struct fx *f)
{
	return dump_query(f, "SELECT group_concat(x, char(10)) FROM (SELECT "
	    "quote(change_id) || quote(uuid) || quote(type) "
	    "|| quote(form_version) || quote(grid) || "
	    "quote(op) || quote(base_rev) || quote(fields) || "
	    "quote(reason) || quote(author) || quote(state) "
	    "|| quote(batch_seq) || quote(problem) || "
	    "quote(created_at) || quote(updated_at) AS x FROM "
	    "change UNION ALL SELECT 'p' || quote(uuid) || "
	    "quote(change_id) FROM pending_creation UNION ALL "
	    "SELECT 'o' || quote(seq) || quote(state) || "
	    "quote(record_count) || quote(acked_at) FROM "
	    "outbox ORDER BY 1)");
}

/* The change_id of the sealed creation of uuid (out: 37 bytes). */
static void
sealed_id(struct fx *f, const char *uuid, char *out)
{
	struct gs_stmt *st = NULL;

	assert_int_equal(gs_stmt_prepare(f->db, "SELECT change_id FROM "
			     "sealed_creation WHERE uuid = ?1", &st),
	    GS_OK);
	assert_int_equal(gs_stmt_bind_text(st, 1, uuid), GS_OK);
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	gs_strlcpy(out, gs_stmt_text(st, 0), 37);
	gs_stmt_finalize(st);
}

/*
 * Migration 0011 (sealed_creation) on a store as the program before it
 * left it: delivered, rejected and quarantined creations, two creations
 * in flight as batched change rows, an unsent edit and an unsent
 * creation.  Every row is kept as it was; the batch in flight is then
 * acked as before, and what was unsent is sealed the new way and acked:
 * every record delivered once, the refused ones kept refused.
 */
static void
test_migration_0011(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_counts n;
	struct ag_outbox_row row;
	unsigned char rc[GS_RECEIPT_BYTES];
	const char *rec = "{\"name\":\"甲\",\"pop_type\":\"REGISTERED\","
			  "\"id_number\":\"440307198503151230\","
			  "\"address\":\"深圳市大鹏新区葵涌街道1号\"}";
	const char *e = "{\"note\":\"x\"}";
	char u[6][AG_UUID_LEN + 1], cid[37], results[300], *before, *after;
	int i, found;

	ag_outbox_limits_for(f->dev, &lim);
	for (i = 0; i < 6; i++) {
		assert_int_equal(ag_collect(f->st, "person", rec, strlen(rec),
		    u[i]), GS_OK);
		if (i == 3)
			continue; /* D and E in one batch */
		if (i == 5)
			break; /* F stays unsent */
		assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info),
		    GS_OK);
		assert_true(info.seq > 0);
		if (i == 1) { /* B rejected */
			assert_int_equal(ag_outbox_next_sealed(f->ob, 1, &row,
			    &found), GS_OK);
			assert_int_equal(ag_outbox_reject(f->ob, &row,
			    "batch_too_old"), GS_OK);
			ag_outbox_row_release(&row);
		} else if (i == 2) { /* C quarantined by the platform */
			sealed_id(f, u[2], cid);
			snprintf(results, sizeof(results), "[{\"change_id\":"
			    "\"%s\",\"uuid\":\"%s\",\"status\":\"quarantined\","
			    "\"reasons\":[]}]", cid, u[2]);
			assert_int_equal(ag_outbox_next_sealed(f->ob, 2, &row,
			    &found), GS_OK);
			receipt_for(f, &row, GS_RECEIPT_ACCEPTED, results, rc);
			assert_int_equal(ag_outbox_ack(f->ob, &row,
			    GS_RECEIPT_ACCEPTED, rc, sizeof(rc), results), GS_OK);
			ag_outbox_row_release(&row);
		} else if (i == 0) { /* A delivered */
			receipt_of(f, 1, GS_RECEIPT_ACCEPTED);
		}
	}
	assert_int_equal(ag_edit(f->st, u[0], e, strlen(e)), GS_OK);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation WHERE "
			       "batch_seq = 4"), 2);
	/* Back to version 10: the creations as change rows, as the program
	 * before wrote them: batched by the seal, delivered by the receipt
	 * (A's; the others were written out by then). */
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 3);
	assert_int_equal(gs_db_exec(f->db, "INSERT INTO change("
			     AG_CHANGE_COLS ") SELECT " AG_SEALED_AS_CHANGE
			     ", CASE o.state WHEN 'acked' THEN 2 ELSE 1 END, "
			     "s.batch_seq, NULL, r.created_at, CASE o.state "
			     "WHEN 'acked' THEN o.acked_at ELSE o.created_at "
			     "END " AG_SEALED_FROM
			     " JOIN outbox AS o ON o.seq = s.batch_seq; "
			     "DROP TABLE sealed_creation; "
			     "ALTER TABLE outbox DROP COLUMN first_creation; "
			     "ALTER TABLE outbox DROP COLUMN last_creation; "
			     "PRAGMA user_version = 10"),
	    GS_OK);
	before = dump_rows(f);
	reopen(f);
	assert_int_equal(q1(f, "PRAGMA user_version"), 12);
	after = dump_rows(f);
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox WHERE "
			       "first_creation IS NOT NULL OR last_creation IS "
			       "NOT NULL"), 0);
	assert_int_equal(gs_db_integrity_check(f->db), GS_OK);
	assert_int_equal(ag_outbox_counts(f->db, &n), GS_OK);
	assert_int_equal(n.changes[0], 2); /* A's edit, F */
	assert_int_equal(n.changes[1], 2); /* D, E */

	/* The batch in flight, acked as before; the rest sealed anew. */
	receipt_of(f, 4, GS_RECEIPT_ACCEPTED);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 5);
	assert_int_equal(info.count, 2);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 1);
	receipt_of(f, 5, GS_RECEIPT_ACCEPTED);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 0);
	assert_int_equal(ag_outbox_counts(f->db, &n), GS_OK);
	assert_int_equal(n.changes[0] + n.changes[1] + n.changes[5], 0);
	assert_int_equal(n.changes[2], 5); /* A, A's edit, D, E, F */
	assert_int_equal(n.changes[3], 1); /* B */
	assert_int_equal(n.changes[4], 1); /* C */
	/* F's creation, delivered, is the one sealed_creation row left. */
	snprintf(results, sizeof(results), "SELECT count(*) FROM "
	    "sealed_creation WHERE uuid = '%s' AND batch_seq = 5", u[5]);
	assert_int_equal(q1(f, results), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM pending_creation"), 0);
	assert_int_equal(q1(f, "SELECT count(DISTINCT uuid) FROM change"), 5);
	assert_int_equal(got_rev(f, u[0]), 2);
	for (i = 3; i < 6; i++)
		assert_int_equal(got_rev(f, u[i]), 1);
	assert_int_equal(got_rev(f, u[1]), 0);
	assert_int_equal(got_rev(f, u[2]), 0);
}

/* Every record's uuid and rev as read (AG_SQL_REV), as one text (a new
 * string). */
static char *
dump_revs(struct fx *f)
{
	return dump_query(f, "SELECT group_concat(x, char(10)) FROM (SELECT "
	    "uuid || ' ' || " AG_SQL_REV("r") " AS x FROM record AS r "
	    "ORDER BY uuid)");
}

/*
 * Migration 0012 on a store as the program before it left it (version
 * 11): a record_rev row (uuid, 1) for every creation a receipt delivered
 * by fast-forward.  Every row and every rev read is kept.  From then on
 * the usual receipt writes no record_rev row for its creations, whose
 * records read at rev 1 all the same (get, list), and an edit of one is
 * sent against rev 1; a record a pull put at a later rev keeps it.
 */
static void
test_migration_0012(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	const char *rec = "{\"name\":\"甲\",\"pop_type\":\"REGISTERED\","
			  "\"id_number\":\"440307198503151230\","
			  "\"address\":\"深圳市大鹏新区葵涌街道1号\"}";
	const char *e = "{\"note\":\"x\"}";
	char u[4][AG_UUID_LEN + 1], q[200], *before, *after, *rb, *ra;
	int i;

	/* A and B delivered by batch 1, C in flight (batch 2), D unsent. */
	ag_outbox_limits_for(f->dev, &lim);
	for (i = 0; i < 4; i++) {
		assert_int_equal(ag_collect(f->st, "person", rec, strlen(rec),
		    u[i]), GS_OK);
		if (i == 0 || i == 3)
			continue;
		assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info),
		    GS_OK);
		assert_int_equal(info.seq, i);
		if (i == 1)
			receipt_of(f, 1, GS_RECEIPT_ACCEPTED);
	}
	/* B at rev 3 by a pull. */
	snprintf(q, sizeof(q), "UPDATE record SET rev = 3 WHERE uuid = '%s'",
	    u[1]);
	assert_int_equal(gs_db_exec(f->db, q), GS_OK);
	/* Back to version 11: that receipt wrote A's and B's rev 1. */
	assert_int_equal(q1(f, "SELECT count(*) FROM record_rev"), 0);
	assert_int_equal(gs_db_exec(f->db, "INSERT INTO record_rev(uuid, rev) "
			     "SELECT s.uuid, 1 FROM sealed_creation AS s JOIN "
			     "outbox AS o ON o.seq = s.batch_seq WHERE "
			     "o.state = 'acked'; PRAGMA user_version = 11"),
	    GS_OK);
	assert_int_equal(q1(f, "SELECT count(*) FROM record_rev"), 2);
	before = dump_rows(f);
	rb = dump_revs(f);
	reopen(f);
	assert_int_equal(q1(f, "PRAGMA user_version"), 12);
	after = dump_rows(f);
	ra = dump_revs(f);
	assert_string_equal(before, after);
	assert_string_equal(rb, ra);
	free(before);
	free(after);
	free(rb);
	free(ra);
	assert_int_equal(q1(f, "SELECT count(*) FROM record_rev"), 2);
	assert_int_equal(gs_db_integrity_check(f->db), GS_OK);
	assert_int_equal(got_rev(f, u[0]), 1);
	assert_int_equal(got_rev(f, u[1]), 3);
	assert_int_equal(got_rev(f, u[2]), 0);
	assert_int_equal(got_rev(f, u[3]), 0);

	/* C delivered by the usual receipt: no row written, rev 1. */
	receipt_of(f, 2, GS_RECEIPT_ACCEPTED);
	assert_int_equal(q1(f, "SELECT count(*) FROM record_rev"), 2);
	assert_int_equal(got_rev(f, u[2]), 1);
	assert_int_equal(listed_rev(f, u[2]), 1);
	assert_int_equal(got_pending(f, u[2]), 0);
	/* An edit of C goes against rev 1, and its receipt makes it 2. */
	assert_int_equal(ag_edit(f->st, u[2], e, strlen(e)), GS_OK);
	assert_int_equal(base_rev_of(f, u[2]), 1);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 3);
	assert_int_equal(info.count, 2); /* C's edit, D's creation */
	receipt_of(f, 3, GS_RECEIPT_ACCEPTED);
	assert_int_equal(got_rev(f, u[2]), 2);
	assert_int_equal(got_rev(f, u[3]), 1);
	assert_int_equal(listed_rev(f, u[3]), 1);
	assert_int_equal(got_rev(f, u[0]), 1);
	assert_int_equal(got_rev(f, u[1]), 3);
	assert_int_equal(q1(f, "SELECT count(*) FROM record_rev"), 3);
	/* Every record delivered: none left at rev 0. */
	assert_int_equal(q1(f, "SELECT count(*) FROM record AS r WHERE "
			       AG_SQL_REV("r") " = 0"), 0);
}

/*
 * The retention purge finds a delivered creation by its sealed_creation
 * row (schema/agent/0011): the record of a batch acked long enough ago is
 * purged; one acked lately, and one in flight, are kept.
 */
static void
test_sealed_purge(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	const char *rec = "{\"name\":\"甲\",\"pop_type\":\"REGISTERED\","
			  "\"id_number\":\"440307198503151230\","
			  "\"address\":\"深圳市大鹏新区葵涌街道1号\"}";
	char u[3][AG_UUID_LEN + 1], sql[200];
	int64_t now;
	size_t n = 9;
	int i;

	ag_outbox_limits_for(f->dev, &lim);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ag_collect(f->st, "person", rec, strlen(rec),
		    u[i]), GS_OK);
		assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info),
		    GS_OK);
		assert_int_equal(info.seq, i + 1);
		if (i < 2)
			receipt_of(f, i + 1, GS_RECEIPT_ACCEPTED);
	}
	assert_int_equal(q1(f, "SELECT count(*) FROM change"), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM sealed_creation"), 3);
	now = gs_now_ms() + 1; /* after the receipts */
	snprintf(sql, sizeof(sql), "UPDATE outbox SET acked_at = %lld WHERE "
	    "seq = 1", (long long)(now - 40LL * 86400000));
	assert_int_equal(gs_db_exec(f->db, sql), GS_OK);
	assert_int_equal(ag_purge(f->st, 30, now, &n), GS_OK);
	assert_int_equal(n, 1);
	for (i = 0; i < 3; i++) {
		snprintf(sql, sizeof(sql), "SELECT purged_at IS NOT NULL FROM "
		    "record WHERE uuid = '%s'", u[i]);
		assert_int_equal(q1(f, sql), i == 0);
	}
	/* Everything acked is old enough at 0 days; the batch in flight
	 * still keeps its record. */
	assert_int_equal(ag_purge(f->st, 0, now + 1, &n), GS_OK);
	assert_int_equal(n, 1);
	snprintf(sql, sizeof(sql), "SELECT purged_at IS NULL FROM record "
	    "WHERE uuid = '%s'", u[2]);
	assert_int_equal(q1(f, sql), 1);
}

/*
 * A receipt's revs go into record_rev, not into the record rows
 * (schema/agent/0009), and every reader sees them: get, list, the
 * base_rev of the next edit and delete, and pull's newer-than check.
 * A: fast-forwarded (rev 1).  B: merged as rev 7.  C: merged as rev 5,
 * then the platform's revisions 4 (older: not applied), 5 (the same: its
 * merged fields apply) and 6.
 */
static void
test_ack_revs_read(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	struct ag_platform_rev p;
	unsigned char rc[GS_RECEIPT_BYTES];
	const char *rec = "{\"name\":\"甲\",\"pop_type\":\"REGISTERED\","
			  "\"id_number\":\"440307198503151230\","
			  "\"address\":\"深圳市大鹏新区葵涌街道1号\"}";
	const char *e = "{\"note\":\"x\"}";
	char a[AG_UUID_LEN + 1], b[AG_UUID_LEN + 1], c[AG_UUID_LEN + 1];
	char results[600], q[400], cb[37], cc[37];
	json_t *pf;
	int found, applied = -1;

	assert_int_equal(ag_collect(f->st, "person", rec, strlen(rec), a),
	    GS_OK);
	assert_int_equal(ag_collect(f->st, "person", rec, strlen(rec), b),
	    GS_OK);
	assert_int_equal(ag_collect(f->st, "person", rec, strlen(rec), c),
	    GS_OK);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.count, 3);
	snprintf(q, sizeof(q), "SELECT change_id FROM " BATCHED " WHERE "
	    "uuid = '%s'", b);
	{
		struct gs_stmt *st = NULL;

		assert_int_equal(gs_stmt_prepare(f->db, q, &st), GS_OK);
		assert_int_equal(gs_stmt_step(st), GS_ROW);
		gs_strlcpy(cb, gs_stmt_text(st, 0), sizeof(cb));
		gs_stmt_finalize(st);
		snprintf(q, sizeof(q), "SELECT change_id FROM " BATCHED
		    " WHERE uuid = '%s'", c);
		assert_int_equal(gs_stmt_prepare(f->db, q, &st), GS_OK);
		assert_int_equal(gs_stmt_step(st), GS_ROW);
		gs_strlcpy(cc, gs_stmt_text(st, 0), sizeof(cc));
		gs_stmt_finalize(st);
	}
	snprintf(results, sizeof(results),
	    "[{\"change_id\":\"%s\",\"uuid\":\"%s\",\"status\":\"merged\","
	    "\"rev\":7},{\"change_id\":\"%s\",\"uuid\":\"%s\","
	    "\"status\":\"merged\",\"rev\":5}]",
	    cb, b, cc, c);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_OK);
	assert_true(found);
	receipt_for(f, &row, GS_RECEIPT_ACCEPTED, results, rc);
	assert_int_equal(ag_outbox_ack(f->ob, &row, GS_RECEIPT_ACCEPTED, rc,
			     sizeof(rc), results),
	    GS_OK);
	ag_outbox_row_release(&row);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 2"),
	    3);

	/* get (show) and list (export) print the platform's revs. */
	assert_int_equal(got_rev(f, a), 1);
	assert_int_equal(got_rev(f, b), 7);
	assert_int_equal(got_rev(f, c), 5);
	assert_int_equal(listed_rev(f, a), 1);
	assert_int_equal(listed_rev(f, b), 7);
	assert_int_equal(listed_rev(f, c), 5);

	/* The next edit and delete are based on them. */
	assert_int_equal(ag_edit(f->st, a, e, strlen(e)), GS_OK);
	assert_int_equal(base_rev_of(f, a), 1);
	assert_int_equal(ag_delete(f->st, b, "duplicate"), GS_OK);
	assert_int_equal(base_rev_of(f, b), 7);
	assert_int_equal(got_rev(f, b), 7);

	/* Pull: an older platform revision is not applied, the same one
	 * and a newer one are. */
	pf = json_pack("{s:s,s:s}", "name", "乙", "pop_type", "REGISTERED");
	assert_non_null(pf);
	memset(&p, 0, sizeof(p));
	p.uuid = c;
	p.type = "person";
	p.grid = "G1";
	p.author = "other";
	p.form_version = 1;
	p.created_at = p.updated_at = 1;
	p.fields = pf;
	p.rev = 4;
	assert_int_equal(ag_store_apply_platform(f->st, &p, &applied), GS_OK);
	assert_int_equal(applied, 0);
	assert_int_equal(got_rev(f, c), 5);
	snprintf(q, sizeof(q), "SELECT count(*) FROM record WHERE uuid = "
	    "'%s' AND fields LIKE '%%乙%%'", c);
	assert_int_equal(q1(f, q), 0);
	p.rev = 5;
	assert_int_equal(ag_store_apply_platform(f->st, &p, &applied), GS_OK);
	assert_int_equal(applied, 1);
	assert_int_equal(q1(f, q), 1);
	assert_int_equal(got_rev(f, c), 5);
	p.rev = 6;
	assert_int_equal(ag_store_apply_platform(f->st, &p, &applied), GS_OK);
	assert_int_equal(applied, 1);
	assert_int_equal(got_rev(f, c), 6);
	assert_int_equal(listed_rev(f, c), 6);
	json_decref(pf);
}

static void
test_bad_results_change_nothing(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	unsigned char rc[GS_RECEIPT_BYTES];
	int found;

	add_changes(f, 2, "{\"name\":\"a\"}", 0);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_OK);
	receipt_for(f, &row, GS_RECEIPT_ACCEPTED, "{}", rc);
	assert_int_equal(ag_outbox_ack(f->ob, &row, GS_RECEIPT_ACCEPTED, rc,
			     sizeof(rc), "{}"),
	    GS_EPROTOCOL);
	assert_int_equal(ag_outbox_ack(f->ob, &row, GS_RECEIPT_ACCEPTED, rc,
			     sizeof(rc), "[{\"status\":\"merged\"}]"),
	    GS_EPROTOCOL);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox WHERE state = "
			       "'sealed'"),
	    1);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM change WHERE state = 1"), 2);
	ag_outbox_row_release(&row);
}

static void
test_reject_keeps_bytes(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	int found;

	add_changes(f, 4, "{\"name\":\"a\"}", 0);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_OK);
	assert_int_equal(
	    ag_outbox_reject(f->ob, &row, "batch_id_reused: different bytes"),
	    GS_OK);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM outbox WHERE state = "
		  "'rejected' AND reason LIKE "
		  "'batch_id_reused%' AND attempts = 1 AND bytes = (SELECT "
		  "length(envelope) FROM outbox_envelope e WHERE e.seq = "
		  "outbox.seq)"),
	    1);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM change WHERE state = 3"), 4);
	ag_outbox_row_release(&row);
	/* The next batch continues the chain after the rejected one. */
	add_changes(f, 1, "{\"name\":\"a\"}", 0);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 2);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM outbox o1 JOIN outbox o2 "
		  "ON o2.seq = o1.seq + 1 AND o2.prev_hash = o1.hash"),
	    1);
}

static void
test_revoked_quarantines(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	unsigned char rc[GS_RECEIPT_BYTES];
	int found;

	add_changes(f, 3, "{\"name\":\"a\"}", 0);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_OK);
	receipt_for(f, &row, GS_RECEIPT_QUARANTINED, "[]", rc);
	assert_int_equal(ag_outbox_ack(f->ob, &row, GS_RECEIPT_QUARANTINED, rc,
			     sizeof(rc), "[]"),
	    GS_OK);
	assert_int_equal(q1(f, "SELECT revoked FROM device"), 1);
	assert_int_equal(
	    q1(f, "SELECT count(*) FROM change WHERE state = 4"), 3);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox WHERE state = "
			       "'quarantined'"),
	    1);
	ag_outbox_row_release(&row);
}

/* Two rows are the same to the byte. */
static void
same_row(const struct ag_outbox_row *a, const struct ag_outbox_row *b)
{
	assert_int_equal(a->seq, b->seq);
	assert_memory_equal(a->batch_id, b->batch_id, 16);
	assert_memory_equal(a->hash, b->hash, GS_HASHBYTES);
	assert_int_equal(a->len, b->len);
	assert_memory_equal(a->envelope, b->envelope, a->len);
	assert_int_equal(a->record_count, b->record_count);
	assert_int_equal(a->attempts, b->attempts);
}

/*
 * The handle that sealed a batch hands its envelope on to the next
 * ag_outbox_next_sealed as it sealed it, not read back and hashed again:
 * the same row, to the byte, as one read from the store; once only.  A
 * seal that its caller's group rolled back leaves its envelope behind,
 * never handed on for the row another seal stored under the same seq.
 */
static void
test_sealed_handed_on(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row a, b, c;
	struct ag_outbox *other = NULL;
	unsigned char head[32];
	int found;

	add_changes(f, 3, "{\"name\":\"a\"}", 0);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_new(f->db, &other), GS_OK);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 1);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &a, &found), GS_OK);
	assert_true(found);
	assert_int_equal(ag_outbox_next_sealed(other, 0, &b, &found), GS_OK);
	assert_true(found);
	same_row(&a, &b);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &c, &found), GS_OK);
	assert_true(found);
	same_row(&a, &c);
	ag_outbox_row_release(&a);
	ag_outbox_row_release(&b);
	ag_outbox_row_release(&c);

	/* Seq 2 sealed by f->ob in a group rolled back, then by another
	 * handle for good. */
	add_changes(f, 2, "{\"name\":\"b\"}", 0);
	memcpy(head, f->dev->chain_head, 32);
	assert_int_equal(gs_db_group_begin(f->db), GS_OK);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 2);
	assert_int_equal(gs_db_group_end(f->db, GS_EIO), GS_EIO);
	f->dev->last_seq = 1;
	memcpy(f->dev->chain_head, head, 32);
	assert_int_equal(ag_outbox_seal(other, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 2);
	ag_outbox_free(other);
	other = NULL;
	assert_int_equal(ag_outbox_next_sealed(f->ob, 1, &a, &found), GS_OK);
	assert_true(found);
	assert_int_equal(ag_outbox_new(f->db, &other), GS_OK);
	assert_int_equal(ag_outbox_next_sealed(other, 1, &b, &found), GS_OK);
	assert_true(found);
	same_row(&a, &b);
	ag_outbox_row_release(&a);
	ag_outbox_row_release(&b);
	ag_outbox_free(other);
}

static void
test_damaged_row_refused(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row row;
	int found;

	add_changes(f, 1, "{\"name\":\"a\"}", 0);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(gs_db_exec(f->db, "UPDATE outbox_envelope SET "
			     "envelope = zeroblob(length(envelope))"),
	    GS_OK);
	/* Read by another handle (a later run): the sealing one hands on
	 * the envelope it sealed, never the stored bytes
	 * (test_sealed_handed_on). */
	ag_outbox_free(f->ob);
	assert_int_equal(ag_outbox_new(f->db, &f->ob), GS_OK);
	assert_int_equal(
	    ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_ECORRUPT);
	assert_false(found);
	/* A row without its envelope is refused the same way. */
	assert_int_equal(gs_db_exec(f->db, "DELETE FROM outbox_envelope"),
	    GS_OK);
	assert_int_equal(
	    ag_outbox_next_sealed(f->ob, 0, &row, &found), GS_ECORRUPT);
	assert_false(found);
	assert_non_null(strstr(gs_errmsg(GS_ECORRUPT), "missing"));
}

/* Every allocation of a seal failing in turn: the store is either as
 * before or holds one whole batch, never half of one. */
static void
test_seal_alloc_failures(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	long n;
	int r, ok = 0;

	add_changes(f, 30, "{\"name\":\"a\"}", 0);
	ag_outbox_limits_for(f->dev, &lim);
	lim.max_records = 7;
	for (n = 0; n < 400 && ok < 5; n++) {
		gs_mem_fail_after(n);
		r = ag_outbox_seal(f->ob, f->dev, &lim, &info);
		gs_mem_fail_after(-1);
		if (r == GS_OK && info.seq != 0)
			ok++;
		else
			assert_int_equal(r, GS_ENOMEM);
		assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE "
				       "state = 1"),
		    q1(f, "SELECT coalesce(sum(record_count), 0) "
			  "FROM outbox"));
		assert_int_equal(q1(f, "SELECT last_seq FROM device"),
		    q1(f, "SELECT coalesce(max(seq), 0) FROM outbox"));
		assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE "
				       "state = 1 AND batch_seq NOT IN (SELECT "
				       "seq FROM outbox)"),
		    0);
	}
	assert_true(ok >= 4);
	assert_int_equal(gs_db_integrity_check(f->db), GS_OK);
}

/*
 * Mutation campaign (tests/MUTANTS.md): a receipt moves its own batch
 * and nothing else.  Two batches in flight; the second's receipt, even
 * one whose results name a change of the first, leaves the first's
 * changes in flight; a receipt recorded again (as acked, or now saying
 * "quarantined") changes nothing at all; a rejected batch stays so.
 */
static void
test_ack_only_its_batch(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;
	struct ag_outbox_row r1, r2;
	unsigned char rc[GS_RECEIPT_BYTES];
	char results[300], first[37];
	struct gs_stmt *st = NULL;
	int found;

	ag_outbox_limits_for(f->dev, &lim);
	add_changes(f, 3, "{\"name\":\"a\"}", 0);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 1);
	add_changes(f, 2, "{\"name\":\"b\"}", 0);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 2);
	assert_int_equal(gs_stmt_prepare(f->db, "SELECT change_id FROM change "
	    "WHERE batch_seq = 1 ORDER BY change_id", &st), GS_OK);
	assert_int_equal(gs_stmt_step(st), GS_ROW);
	gs_strlcpy(first, gs_stmt_text(st, 0), sizeof(first));
	gs_stmt_finalize(st);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 0, &r1, &found), GS_OK);
	assert_true(found);
	assert_int_equal(ag_outbox_next_sealed(f->ob, 1, &r2, &found), GS_OK);
	assert_true(found);
	assert_int_equal(r2.seq, 2);

	snprintf(results, sizeof(results),
	    "[{\"change_id\":\"%s\",\"uuid\":\"u\",\"status\":\"quarantined\","
	    "\"reasons\":[]}]", first);
	receipt_for(f, &r2, GS_RECEIPT_ACCEPTED, results, rc);
	assert_int_equal(ag_outbox_ack(f->ob, &r2, GS_RECEIPT_ACCEPTED, rc,
	    sizeof(rc), results), GS_OK);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE "
	    "batch_seq = 2 AND state = 2"), 2);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE "
	    "batch_seq = 1 AND state = 1 AND problem IS NULL"), 3);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox WHERE "
	    "state = 'sealed'"), 1);

	/* The same receipt again, and then one saying "quarantined": the
	 * batch is acked already, so neither counts or changes anything. */
	assert_int_equal(ag_outbox_ack(f->ob, &r2, GS_RECEIPT_ACCEPTED, rc,
	    sizeof(rc), results), GS_OK);
	receipt_for(f, &r2, GS_RECEIPT_QUARANTINED, "[]", rc);
	assert_int_equal(ag_outbox_ack(f->ob, &r2, GS_RECEIPT_QUARANTINED, rc,
	    sizeof(rc), "[]"), GS_OK);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox WHERE seq = 2 "
	    "AND state = 'acked' AND attempts = 1"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM audit WHERE "
	    "action IN ('acked', 'revoked')"), 1);
	assert_int_equal(q1(f, "SELECT revoked FROM device"), 0);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE "
	    "batch_seq = 2 AND state = 2"), 2);

	/* A rejected batch stays rejected, its changes kept. */
	assert_int_equal(ag_outbox_reject(f->ob, &r1, "invalid_argument: x"),
	    GS_OK);
	receipt_for(f, &r1, GS_RECEIPT_ACCEPTED, "[]", rc);
	assert_int_equal(ag_outbox_ack(f->ob, &r1, GS_RECEIPT_ACCEPTED, rc,
	    sizeof(rc), "[]"), GS_OK);
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox WHERE seq = 1 "
	    "AND state = 'rejected'"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE "
	    "batch_seq = 1 AND state = 3"), 3);
	ag_outbox_row_release(&r1);
	ag_outbox_row_release(&r2);
}

/* The device row's chain head behind the outbox by a single batch (a
 * restored or damaged row): sealing refuses it as damage, naming it,
 * and seals nothing (tests/MUTANTS.md). */
static void
test_chain_behind_outbox(void **state)
{
	struct fx *f = *state;
	struct ag_outbox_limits lim;
	struct ag_outbox_sealed info;

	add_changes(f, 1, "{\"name\":\"a\"}", 0);
	ag_outbox_limits_for(f->dev, &lim);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info), GS_OK);
	assert_int_equal(info.seq, 1);
	assert_int_equal(gs_db_exec(f->db, "UPDATE device SET last_seq = 0"),
	    GS_OK);
	add_changes(f, 1, "{\"name\":\"b\"}", 0);
	assert_int_equal(ag_outbox_seal(f->ob, f->dev, &lim, &info),
	    GS_ECORRUPT);
	assert_non_null(strstr(gs_errmsg(GS_ECORRUPT), "chain head"));
	assert_int_equal(q1(f, "SELECT count(*) FROM outbox"), 1);
	assert_int_equal(q1(f, "SELECT count(*) FROM change WHERE state = 0"),
	    1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_nothing_to_seal, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_split_and_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_byte_budget, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_fast_lines_same_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_unsendable_skipped, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_negative_times_sent, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_pending_creations, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_pending_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_unsendable_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_pending_halved, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ack_results, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_pending_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_ack_revs_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_sealed_creations, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_migration_0011, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_migration_0012, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_sealed_purge, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_bad_results_change_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_reject_keeps_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_ack_only_its_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_revoked_quarantines, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_damaged_row_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_sealed_handed_on, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_chain_behind_outbox, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_seal_alloc_failures, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
