/*
 * wire.c - throughput of the device's batch pipeline: encode 1,000 changes
 * as canonical NDJSON, deflate, seal (kx + AEAD) and sign; and the
 * platform's side: parse, verify, open (decrypt + bounded inflate) and
 * strictly decode.
 *
 *	wire [BATCHES] [LEVEL]     default 200 batches of 1,000, the
 *	                           batches' level (libdeflate, GS_DEFLATE_FAST_LEVEL)
 *
 * Records are synthetic "person" changes of about 400 bytes of NDJSON
 * each, with random uuids, id numbers and phones (the parts that do not
 * compress) and repeated keys and codes (the parts that do).  Prints one
 * line per measure; bench/RESULTS.md ("wire") keeps the numbers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "batch.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/util.h"
#include "crypto.h"
#include "deflate.h"
#include "envelope.h"
#include "uuid.h"
#include "core/banned.h"

#define PER_BATCH 1000

static const char *const surnames[] = { "王", "李", "张", "刘", "陈", "杨",
	"黄", "赵", "吴", "周" };
static const char *const given[] = { "伟", "芳", "娜", "秀英", "敏", "静",
	"丽", "强", "磊", "军", "洋", "勇" };
static const char *const streets[] = { "天河路", "中山大道", "黄埔大道西",
	"五山路", "岑村东街" };

static void
digits(char *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		out[i] = (char)('0' + gs_random_uniform(10));
	out[n] = '\0';
}

static void
make_change(struct gs_change *c, int64_t now)
{
	char name[32], id[19], phone[12], addr[128], ref[GS_UUID_LEN + 1];

	gs_change_init(c);
	gs_uuid_v7(c->change_id);
	gs_uuid_v7(c->uuid);
	gs_uuid_v7(ref);
	snprintf(c->type, sizeof c->type, "person");
	c->form_version = 1;
	snprintf(c->grid, sizeof c->grid, "440106-TH-0%u",
	    1 + gs_random_uniform(9));
	snprintf(c->author, sizeof c->author, "w%03u", gs_random_uniform(40));
	c->created_at = now;
	c->updated_at = now + gs_random_uniform(60000);
	snprintf(name, sizeof name, "%s%s", surnames[gs_random_uniform(10)],
	    given[gs_random_uniform(12)]);
	digits(id, 18);
	phone[0] = '1';
	phone[1] = '3';
	digits(phone + 2, 9);
	snprintf(addr, sizeof addr, "%s%u号%u栋%u室",
	    streets[gs_random_uniform(5)], 1 + gs_random_uniform(300),
	    1 + gs_random_uniform(20), 101 + gs_random_uniform(1500));
	c->fields = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:f,s:f}",
	    "name", name, "pop_type", "REGISTERED", "id_number", id,
	    "sex", gs_random_uniform(2) ? "1" : "2", "phone", phone,
	    "residence_address", addr,
	    "lat", 23.1 + gs_random_uniform(100000) / 1e6,
	    "lon", 113.3 + gs_random_uniform(100000) / 1e6);
	(void)ref;
}

static int
encode_batch(struct gs_buf *out, struct gs_change *cs, size_t n,
    const struct gs_seal_params *p)
{
	struct gs_batch_header h;
	size_t i;
	int r;

	memset(&h, 0, sizeof h);
	h.v = GS_BATCH_VERSION;
	memcpy(h.deployment, p->deployment, 16);
	memcpy(h.device, p->device, 16);
	memcpy(h.batch, p->batch, 16);
	h.seq = p->seq;
	h.count = (uint32_t)n;
	if ((r = gs_batch_encode_header(out, &h)) != GS_OK)
		return r;
	for (i = 0; i < n; i++)
		if ((r = gs_batch_encode_change(out, &cs[i])) != GS_OK)
			return r;
	return GS_OK;
}

int
main(int argc, char **argv)
{
	unsigned char ppk[32], psk[32], dpk[32], dsk[64];
	struct gs_seal_params p;
	struct gs_buf plain, env, opened;
	struct gs_change *cs;
	struct gs_envelope_header h;
	struct gs_batch d;
	size_t nb = argc > 1 ? strtoul(argv[1], NULL, 10) : 200, b, i;
	int level = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 0;
	int64_t t0, dt, t_enc = 0, t_seal = 0, t_open = 0, t_dec = 0;
	int64_t m_enc = INT64_MAX, m_seal = INT64_MAX, m_open = INT64_MAX,
	    m_dec = INT64_MAX;
	uint64_t plain_bytes = 0, env_bytes = 0;

	if (nb == 0 || gs_crypto_init() != GS_OK)
		return 1;
	gs_crypto_kx_keypair(ppk, psk);
	gs_crypto_sign_keypair(dpk, dsk);
	memset(&p, 0, sizeof p);
	gs_random(p.deployment, 16);
	gs_random(p.device, 16);
	p.platform_pk = ppk;
	p.device_sk = dsk;
	p.level = level;
	p.count = PER_BATCH;
	if ((cs = calloc(PER_BATCH, sizeof *cs)) == NULL)
		return 1;
	gs_buf_init(&plain, GS_ENV_MAX_PLAIN);
	gs_buf_init(&env, GS_ENV_MAX_ENVELOPE);
	gs_buf_init(&opened, GS_ENV_MAX_PLAIN);
	for (b = 0; b < nb; b++) {
		int64_t now = gs_now_ms();

		for (i = 0; i < PER_BATCH; i++)
			make_change(&cs[i], now);
		gs_random(p.batch, 16);
		p.seq = b + 1;
		p.created_at = now;
		gs_buf_reset(&plain);
		gs_buf_reset(&env);
		gs_buf_reset(&opened);

		t0 = gs_mono_us();
		if (encode_batch(&plain, cs, PER_BATCH, &p) != GS_OK)
			goto fail;
		dt = gs_mono_us() - t0;
		t_enc += dt;
		if (dt < m_enc)
			m_enc = dt;

		t0 = gs_mono_us();
		if (gs_envelope_seal(&env, &p, plain.data, plain.len) != GS_OK)
			goto fail;
		dt = gs_mono_us() - t0;
		t_seal += dt;
		if (dt < m_seal)
			m_seal = dt;
		gs_envelope_hash(p.prev_hash, env.data, env.len);

		t0 = gs_mono_us();
		if (gs_envelope_parse(&h, env.data, env.len, NULL) != GS_OK ||
		    gs_envelope_verify(&h, env.data, env.len, dpk) != GS_OK ||
		    gs_envelope_open(&opened, &h, env.data, env.len, ppk,
		    psk) != GS_OK)
			goto fail;
		dt = gs_mono_us() - t0;
		t_open += dt;
		if (dt < m_open)
			m_open = dt;

		t0 = gs_mono_us();
		if (gs_batch_decode(&d, opened.data, opened.len, 0) != GS_OK)
			goto fail;
		dt = gs_mono_us() - t0;
		t_dec += dt;
		if (dt < m_dec)
			m_dec = dt;
		gs_batch_release(&d);

		plain_bytes += plain.len;
		env_bytes += env.len;
		for (i = 0; i < PER_BATCH; i++)
			gs_change_release(&cs[i]);
	}
	{
		double recs = (double)nb * PER_BATCH;

		if (level != 0)
			printf("wire: %zu batches of %d records, zlib level "
			    "%d\n", nb, PER_BATCH, level);
		else
			printf("wire: %zu batches of %d records, libdeflate "
			    "level %d\n", nb, PER_BATCH, GS_DEFLATE_FAST_LEVEL);
		printf("plain bytes per record     %.1f\n", plain_bytes / recs);
		printf("envelope bytes per record  %.1f\n", env_bytes / recs);
		/* Mean over all batches, and the best batch: the box is
		 * shared, so the best batch is the machine's real speed. */
		printf("%-26s %9s %9s  records/s\n", "", "mean", "best");
#define ROW(what, t, m) printf("%-26s %9.0f %9.0f\n", what, \
	    recs / ((t) / 1e6), PER_BATCH / ((m) / 1e6))
		ROW("encode NDJSON", t_enc, m_enc);
		ROW("deflate+seal+sign", t_seal, m_seal);
		ROW("encode+deflate+seal+sign", t_enc + t_seal, m_enc + m_seal);
		ROW("parse+verify+open", t_open, m_open);
		ROW("strict decode", t_dec, m_dec);
#undef ROW
	}
	gs_buf_release(&plain);
	gs_buf_release(&env);
	gs_buf_release(&opened);
	free(cs);
	return 0;
fail:
	fprintf(stderr, "wire: %s\n", gs_errmsg(GS_EINTERNAL));
	return 1;
}
