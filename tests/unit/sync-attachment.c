/*
 * sync-attachment.c - sealed attachments (GSA1) and their receipts (GSAR):
 * round trips, tampering, truncation, limits, MIME sniffing and the frozen
 * vectors in tests/data/attachments.
 *
 *	GS_WRITE_VECTORS=1 build/tests/sync-attachment   rewrites the vectors
 *
 * The secretstream header is drawn by libsodium, so a sealed file cannot
 * be reproduced byte for byte; the vector test checks that the committed
 * sealed file opens with the committed keys to the committed plaintext,
 * and that this build writes the same header bytes up to the stream
 * header (offset 152).  The receipt is deterministic (Ed25519) and is
 * compared byte for byte.
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

#include "attachment.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/mem.h"
#include "core/util.h"
#include "crypto.h"

static unsigned char plat_pk[32], plat_sk[32];
static unsigned char rcpt_pk[32], rcpt_sk[64];
static unsigned char dev_pk[32], dev_sk[64];
static unsigned char deployment[16], device[16];

static void
keys(void)
{
	unsigned char seed[32];

	assert_int_equal(gs_crypto_init(), GS_OK);
	memset(seed, 0x11, 32);
	gs_crypto_kx_seed_keypair(plat_pk, plat_sk, seed);
	memset(seed, 0x22, 32);
	gs_crypto_sign_seed_keypair(rcpt_pk, rcpt_sk, seed);
	memset(seed, 0x33, 32);
	gs_crypto_sign_seed_keypair(dev_pk, dev_sk, seed);
	assert_int_equal(gs_hex_decode(deployment, 16,
			     "00112233445566778899aabbccddeeff"),
	    GS_OK);
	assert_int_equal(gs_hex_decode(device, 16,
			     "0190a6e200007000800000000000d001"),
	    GS_OK);
}

static void
params(struct gs_att_seal_params *p, uint32_t chunk)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->deployment, deployment, 16);
	memcpy(p->device, device, 16);
	p->created_at = 1764140673123LL;
	p->chunk_size = chunk;
	p->platform_pk = plat_pk;
	p->device_sk = dev_sk;
}

/* An anonymous file holding n bytes of data. */
static int
file_with(const void *data, size_t n)
{
	FILE *f = tmpfile();
	int fd;

	assert_non_null(f);
	fd = dup(fileno(f));
	fclose(f);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	return fd;
}

static int
empty_file(void)
{
	return file_with("", 0);
}

static unsigned char *
file_bytes(int fd, size_t *n)
{
	off_t end = lseek(fd, 0, SEEK_END);
	unsigned char *p = malloc((size_t)end + 1);

	assert_non_null(p);
	assert_int_equal(pread(fd, p, (size_t)end, 0), (ssize_t)end);
	*n = (size_t)end;
	return p;
}

static int feed_spans(const unsigned char *s, size_t n, uint64_t want);

/* Seals data; returns the sealed file's fd. */
static int
seal_data(const unsigned char *data, size_t n, uint32_t chunk,
    unsigned char hash[32])
{
	struct gs_att_seal_params p;
	uint64_t len = 0;
	int in = file_with(data, n), out = empty_file();

	params(&p, chunk);
	assert_int_equal(gs_att_hash_fd(in, hash, &len), GS_OK);
	assert_int_equal(len, n);
	assert_int_equal(gs_att_seal_fd(out, in, &p, hash, len), GS_OK);
	close(in);
	return out;
}

/* Parses, verifies and opens the sealed bytes; returns the error. */
static int
open_bytes(const unsigned char *s, size_t n, unsigned char **plain,
    size_t *plain_len)
{
	struct gs_att_header h;
	int in, out = -1, r;

	if ((r = gs_att_parse(&h, s, n, 0)) != GS_OK)
		return r;
	if ((r = gs_att_verify(s, dev_pk)) != GS_OK)
		return r;
	in = file_with(s, n);
	if (plain != NULL)
		out = empty_file();
	r = gs_att_open_fd(in, out, &h, plat_pk, plat_sk);
	if (r == GS_OK && plain != NULL)
		*plain = file_bytes(out, plain_len);
	close(in);
	if (out >= 0)
		close(out);
	return r;
}

static void
test_roundtrip(void **state)
{
	static const size_t sizes[] = { 1, 1023, 1024, 1025, 3072, 200000 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		unsigned char *data = malloc(sizes[i]), *s, *back = NULL;
		unsigned char hash[32], want[32];
		size_t n, bn = 0;
		int fd;

		gs_random(data, sizes[i]);
		gs_crypto_hash(want, 32, data, sizes[i], NULL, 0);
		fd = seal_data(data, sizes[i], 1024, hash);
		assert_memory_equal(hash, want, 32);
		s = file_bytes(fd, &n);
		assert_int_equal(n, gs_att_sealed_len(sizes[i], 1024));
		assert_int_equal(open_bytes(s, n, &back, &bn), GS_OK);
		assert_int_equal(bn, sizes[i]);
		assert_memory_equal(back, data, bn);
		free(back);
		free(s);
		free(data);
		close(fd);
	}
}

static void
test_tamper(void **state)
{
	unsigned char data[5000], hash[32], *s;
	size_t n, i;
	int fd;

	(void)state;
	gs_random(data, sizeof(data));
	fd = seal_data(data, sizeof(data), 1024, hash);
	s = file_bytes(fd, &n);
	/* Every byte of header and signature, and a sample of the
	 * messages: one flipped bit is always refused. */
	for (i = 0; i < n; i += (i < GS_ATT_PREFIXBYTES ? 1 : 97)) {
		s[i] ^= 0x01;
		assert_int_not_equal(open_bytes(s, n, NULL, NULL), GS_OK);
		s[i] ^= 0x01;
	}
	s[n - 1] ^= 0x80;
	assert_int_equal(open_bytes(s, n, NULL, NULL), GS_EDECRYPT);
	s[n - 1] ^= 0x80;
	assert_int_equal(open_bytes(s, n, NULL, NULL), GS_OK);
	free(s);
	close(fd);
}

static void
test_truncated(void **state)
{
	unsigned char data[5000], hash[32], *s, *t;
	struct gs_att_header h;
	size_t n;
	int fd, in;

	(void)state;
	gs_random(data, sizeof(data));
	fd = seal_data(data, sizeof(data), 1024, hash);
	s = file_bytes(fd, &n);
	/* Cut anywhere: short file. */
	assert_int_equal(open_bytes(s, n - 1, NULL, NULL), GS_EENVELOPE);
	assert_int_equal(open_bytes(s, n - (904 + 17), NULL, NULL),
	    GS_EENVELOPE);
	assert_int_equal(open_bytes(s, 100, NULL, NULL), GS_EENVELOPE);
	/* Bytes appended. */
	t = malloc(n + 1);
	memcpy(t, s, n);
	t[n] = 0;
	assert_int_equal(open_bytes(t, n + 1, NULL, NULL), GS_EENVELOPE);
	free(t);
	/* A reader that believed a header claiming one message fewer (as
	 * if the stream had been cut at a message boundary and the header
	 * forged): the last message it reads lacks TAG_FINAL. */
	assert_int_equal(gs_att_parse(&h, s, n, 0), GS_OK);
	h.plain_len = 4096;
	h.sealed_len = gs_att_sealed_len(4096, 1024);
	in = file_with(s, (size_t)h.sealed_len);
	assert_int_equal(gs_att_open_fd(in, -1, &h, plat_pk, plat_sk),
	    GS_EDECRYPT);
	assert_non_null(strstr(gs_errmsg(GS_EDECRYPT), "final tag"));
	close(in);
	free(s);
	close(fd);
}

static void
test_wrong_keys(void **state)
{
	unsigned char data[3000], hash[32], *s, opk[32], osk[32], spk[32],
	    ssk[64];
	struct gs_att_header h;
	size_t n;
	int fd, in;

	(void)state;
	gs_random(data, sizeof(data));
	fd = seal_data(data, sizeof(data), 1024, hash);
	s = file_bytes(fd, &n);
	assert_int_equal(gs_att_parse(&h, s, n, 0), GS_OK);
	gs_crypto_sign_keypair(spk, ssk);
	assert_int_equal(gs_att_verify(s, spk), GS_EBADSIG);
	gs_crypto_kx_keypair(opk, osk);
	in = file_with(s, n);
	assert_int_equal(gs_att_open_fd(in, -1, &h, opk, osk), GS_EDECRYPT);
	/* The right key id but a wrong secret does not verify either. */
	assert_int_equal(gs_att_open_fd(in, -1, &h, plat_pk, osk),
	    GS_EDECRYPT);
	assert_int_equal(gs_att_open_fd(in, -1, &h, plat_pk, plat_sk), GS_OK);
	close(in);
	free(s);
	close(fd);
}

static void
test_parse_limits(void **state)
{
	unsigned char data[3000], hash[32], *s;
	struct gs_att_header h;
	size_t n;
	int fd;

	(void)state;
	gs_random(data, sizeof(data));
	fd = seal_data(data, sizeof(data), 1024, hash);
	s = file_bytes(fd, &n);
	assert_int_equal(gs_att_parse(&h, s, n, 2999), GS_ETOOBIG);
	assert_int_equal(gs_att_parse(&h, s, n, 3000), GS_OK);
	assert_int_equal(h.plain_len, 3000);
	assert_int_equal(h.chunk_size, 1024);
	assert_memory_equal(h.hash, hash, 32);
	assert_int_equal(gs_att_parse(&h, s, GS_ATT_PREFIXBYTES - 1, 0),
	    GS_EENVELOPE);
	s[0] = 'X';
	assert_int_equal(gs_att_parse(&h, s, n, 0), GS_EENVELOPE);
	s[0] = 'G';
	s[4] = 2;
	assert_int_equal(gs_att_parse(&h, s, n, 0), GS_EUNSUPPORTED);
	s[4] = 1;
	s[80] ^= 1; /* sealed_len */
	assert_int_equal(gs_att_parse(&h, s, n, 0), GS_EENVELOPE);
	s[80] ^= 1;
	assert_int_equal(gs_att_parse(&h, s, n, 0), GS_OK);
	free(s);
	close(fd);
}

static void
test_seal_refusals(void **state)
{
	struct gs_att_seal_params p;
	unsigned char hash[32], data[2000];
	int in, out;

	(void)state;
	gs_random(data, sizeof(data));
	in = file_with(data, sizeof(data));
	out = empty_file();
	params(&p, 1024);
	/* A hash that is not the file's: it changed after hashing. */
	memset(hash, 0, 32);
	assert_int_equal(gs_att_seal_fd(out, in, &p, hash, sizeof(data)),
	    GS_ECONFLICT);
	/* What it wrote meanwhile is whole, signed and sealed, and names a
	 * content address its plaintext does not hash to: the platform's
	 * opener refuses it at the end, on the digest alone. */
	{
		unsigned char *s;
		size_t n;

		s = file_bytes(out, &n);
		assert_int_equal(n, gs_att_sealed_len(sizeof(data), 1024));
		assert_int_equal(open_bytes(s, n, NULL, NULL), GS_EDECRYPT);
		assert_int_equal(feed_spans(s, n, 1), GS_EDECRYPT);
		free(s);
		assert_int_equal(ftruncate(out, 0), 0);
		assert_int_equal(lseek(out, 0, SEEK_SET), 0);
	}
	/* Longer than the file: it shrank. */
	assert_int_equal(gs_att_seal_fd(out, in, &p, hash, sizeof(data) + 1),
	    GS_ECONFLICT);
	assert_int_equal(gs_att_seal_fd(out, in, &p, hash, 0), GS_EINVAL);
	p.chunk_size = 100;
	assert_int_equal(gs_att_seal_fd(out, in, &p, hash, sizeof(data)),
	    GS_EINVAL);
	close(in);
	close(out);
}

static void
test_receipt(void **state)
{
	struct gs_att_receipt r, back;
	unsigned char buf[GS_ATT_RECEIPT_BYTES];
	size_t i;

	(void)state;
	memset(&r, 0, sizeof(r));
	memcpy(r.deployment, deployment, 16);
	memcpy(r.device, device, 16);
	memset(r.hash, 0xab, 32);
	r.plain_len = 3000;
	r.sealed_len = gs_att_sealed_len(3000, 1024);
	r.server_time = 1764140680000LL;
	r.status = 1;
	assert_int_equal(gs_att_receipt_sign(buf, &r, rcpt_sk), GS_OK);
	assert_int_equal(gs_att_receipt_verify(&back, buf, sizeof(buf),
			     rcpt_pk),
	    GS_OK);
	assert_memory_equal(back.hash, r.hash, 32);
	assert_int_equal(back.sealed_len, r.sealed_len);
	for (i = 0; i < sizeof(buf); i++) {
		buf[i] ^= 0x04;
		assert_int_not_equal(gs_att_receipt_verify(&back, buf,
					 sizeof(buf), rcpt_pk),
		    GS_OK);
		buf[i] ^= 0x04;
	}
	assert_int_equal(gs_att_receipt_verify(&back, buf, sizeof(buf) - 1,
			     rcpt_pk),
	    GS_EPROTOCOL);
	assert_int_equal(gs_att_receipt_verify(&back, buf, sizeof(buf),
			     dev_pk),
	    GS_EBADSIG);
}

static void
test_chunk_sig(void **state)
{
	unsigned char sig[64], hash[32], other[64], osk[64];

	(void)state;
	memset(hash, 0x5a, sizeof(hash));
	assert_int_equal(
	    gs_att_chunk_sign(sig, device, hash, 4096, 1000, dev_sk), GS_OK);
	assert_int_equal(
	    gs_att_chunk_verify(sig, device, hash, 4096, 1000, dev_pk), GS_OK);
	/* Another offset, length, hash, device or key: refused. */
	assert_int_equal(
	    gs_att_chunk_verify(sig, device, hash, 4097, 1000, dev_pk),
	    GS_EBADSIG);
	assert_int_equal(
	    gs_att_chunk_verify(sig, device, hash, 4096, 999, dev_pk),
	    GS_EBADSIG);
	hash[0] ^= 1;
	assert_int_equal(
	    gs_att_chunk_verify(sig, device, hash, 4096, 1000, dev_pk),
	    GS_EBADSIG);
	hash[0] ^= 1;
	gs_crypto_sign_keypair(other, osk);
	assert_int_equal(
	    gs_att_chunk_verify(sig, device, hash, 4096, 1000, other),
	    GS_EBADSIG);
	assert_int_equal(
	    gs_att_chunk_verify(sig, deployment, hash, 4096, 1000, dev_pk),
	    GS_EBADSIG);
}

/* Feeds the messages of a sealed file in spans of at most `want` bytes,
 * as the platform gets them in PUTs. */
static int
feed_spans(const unsigned char *s, size_t n, uint64_t want)
{
	struct gs_att_header h;
	struct gs_att_opener *o = NULL;
	uint64_t off = 0, end;
	int r;

	assert_int_equal(gs_att_parse(&h, s, n, 0), GS_OK);
	assert_int_equal(
	    gs_att_open_new(&o, s, &h, plat_pk, plat_sk), GS_OK);
	while (off < h.sealed_len) {
		end = gs_att_span(&h, off, want);
		assert_true(end > off && end <= h.sealed_len);
		if (end - off > want)
			/* Never more than one message over the wish. */
			assert_true(end - off <= (off == 0 ?
				GS_ATT_PREFIXBYTES : 0) + h.chunk_size + 17);
		if (end > n) {
			r = gs_att_open_feed(o, s + (off ? off :
			    GS_ATT_PREFIXBYTES), n - (off ? off :
			    GS_ATT_PREFIXBYTES), -1);
			if (r == GS_OK)
				r = gs_att_open_done(o);
			gs_att_open_free(o);
			return r;
		}
		r = gs_att_open_feed(o, s + (off ? off : GS_ATT_PREFIXBYTES),
		    end - (off ? off : GS_ATT_PREFIXBYTES), -1);
		if (r != GS_OK) {
			gs_att_open_free(o);
			return r;
		}
		/* Off a message boundary there is no span. */
		assert_int_equal(gs_att_span(&h, end - 1, want), 0);
		off = end;
		assert_int_equal(gs_att_open_offset(o), off);
	}
	r = gs_att_open_done(o);
	gs_att_open_free(o);
	return r;
}

static void
test_incremental(void **state)
{
	unsigned char data[20000], hash[32], *s;
	size_t n;
	int fd;

	(void)state;
	gs_random(data, sizeof(data));
	fd = seal_data(data, sizeof(data), 1024, hash);
	s = file_bytes(fd, &n);
	close(fd);
	/* One message at a time, a few, all at once. */
	assert_int_equal(feed_spans(s, n, 1), GS_OK);
	assert_int_equal(feed_spans(s, n, 3 * 1041 + 240), GS_OK);
	assert_int_equal(feed_spans(s, n, UINT64_C(1) << 40), GS_OK);
	/* A flipped bit in message 7 is caught when that span arrives. */
	s[GS_ATT_PREFIXBYTES + 7 * 1041 + 5] ^= 1;
	assert_int_equal(feed_spans(s, n, 2048), GS_EDECRYPT);
	s[GS_ATT_PREFIXBYTES + 7 * 1041 + 5] ^= 1;
	/* Cut short at a message boundary: no final tag, so done refuses. */
	assert_int_equal(feed_spans(s, n - (n - GS_ATT_PREFIXBYTES) % 1041 -
	    1041, 1), GS_EENVELOPE);
	free(s);
}

static void
test_mime(void **state)
{
	(void)state;
	assert_string_equal(gs_att_sniff_mime("\xff\xd8\xff\xe0", 4),
	    "image/jpeg");
	assert_string_equal(gs_att_sniff_mime("\x89PNG\r\n\x1a\n", 8),
	    "image/png");
	assert_string_equal(gs_att_sniff_mime("GIF89a", 6), "image/gif");
	assert_string_equal(gs_att_sniff_mime("RIFF\0\0\0\0WEBP", 12),
	    "image/webp");
	assert_string_equal(gs_att_sniff_mime("\0\0\0\x18" "ftypheic", 12),
	    "image/heic");
	assert_string_equal(gs_att_sniff_mime("\0\0\0\x18" "ftypisom", 12),
	    "video/mp4");
	assert_string_equal(gs_att_sniff_mime("%PDF-1.7", 8),
	    "application/pdf");
	assert_string_equal(gs_att_sniff_mime("#!AMR\n", 6), "audio/amr");
	assert_string_equal(gs_att_sniff_mime("hello", 5),
	    "application/octet-stream");
	assert_string_equal(gs_att_sniff_mime("\xff", 1),
	    "application/octet-stream");
	assert_string_equal(gs_att_sniff_mime("", 0),
	    "application/octet-stream");
}

/* ------------------------------------------------------------ vectors */

static char *
vec_path(const char *name)
{
	const char *top = getenv("GS_TOP");
	static char path[4096];

	snprintf(path, sizeof(path), "%s/tests/data/attachments/%s",
	    top ? top : ".", name);
	return path;
}

static unsigned char *
read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	unsigned char *p;
	long end;

	if (f == NULL)
		fail_msg("cannot read %s (set GS_TOP, or run from the top "
			 "directory)", path);
	fseek(f, 0, SEEK_END);
	end = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)end + 1);
	assert_int_equal(fread(p, 1, (size_t)end, f), (size_t)end);
	fclose(f);
	*n = (size_t)end;
	return p;
}

static void
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

/* The vector plaintext: 3000 bytes, three messages of 1024 (the last
 * 952), made from a fixed pattern. */
static void
vector_plain(unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 31 + 7) & 0xff);
}

static void
test_vectors(void **state)
{
	struct gs_att_seal_params p;
	struct gs_att_receipt r;
	struct gs_att_header h;
	unsigned char plain[3000], hash[32], eph[32],
	    rc[GS_ATT_RECEIPT_BYTES], *sealed, *mine, *back = NULL,
	    *want_rc;
	size_t n, mn, bn = 0, rn;
	uint64_t len;
	int in, out;

	(void)state;
	vector_plain(plain, sizeof(plain));
	in = file_with(plain, sizeof(plain));
	out = empty_file();
	assert_int_equal(gs_att_hash_fd(in, hash, &len), GS_OK);
	params(&p, 1024);
	memset(eph, 0x77, 32);
	assert_int_equal(gs_att_seal_fd_det(out, in, &p, hash, len, eph),
	    GS_OK);
	mine = file_bytes(out, &mn);
	memset(&r, 0, sizeof(r));
	memcpy(r.deployment, deployment, 16);
	memcpy(r.device, device, 16);
	memcpy(r.hash, hash, 32);
	r.plain_len = len;
	r.sealed_len = mn;
	r.server_time = 1764140680000LL;
	r.status = 1;
	assert_int_equal(gs_att_receipt_sign(rc, &r, rcpt_sk), GS_OK);
	if (getenv("GS_WRITE_VECTORS") != NULL) {
		write_file(vec_path("vector-1.plain"), plain, sizeof(plain));
		write_file(vec_path("vector-1.sealed"), mine, mn);
		write_file(vec_path("vector-1.receipt"), rc, sizeof(rc));
	}
	/* The committed plaintext is this pattern. */
	free(back);
	back = read_file(vec_path("vector-1.plain"), &bn);
	assert_int_equal(bn, sizeof(plain));
	assert_memory_equal(back, plain, bn);
	free(back);
	back = NULL;
	/* The committed sealed file opens to it with the committed keys. */
	sealed = read_file(vec_path("vector-1.sealed"), &n);
	assert_int_equal(n, mn);
	assert_int_equal(open_bytes(sealed, n, &back, &bn), GS_OK);
	assert_int_equal(bn, sizeof(plain));
	assert_memory_equal(back, plain, bn);
	/* Same header up to the (random) stream header. */
	assert_memory_equal(sealed, mine, 152);
	assert_int_equal(gs_att_parse(&h, sealed, n, 0), GS_OK);
	assert_memory_equal(h.hash, hash, 32);
	/* The receipt, byte for byte. */
	want_rc = read_file(vec_path("vector-1.receipt"), &rn);
	assert_int_equal(rn, sizeof(rc));
	assert_memory_equal(want_rc, rc, rn);
	free(want_rc);
	free(back);
	free(sealed);
	free(mine);
	close(in);
	close(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_wrong_keys),
		cmocka_unit_test(test_parse_limits),
		cmocka_unit_test(test_seal_refusals),
		cmocka_unit_test(test_receipt),
		cmocka_unit_test(test_chunk_sig),
		cmocka_unit_test(test_incremental),
		cmocka_unit_test(test_mime),
		cmocka_unit_test(test_vectors),
	};

	keys();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
